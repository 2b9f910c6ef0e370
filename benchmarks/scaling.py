"""How aemix's time per chain-step scales with the number of chains, on the seed's model.

For each number of chains (100 to 100,000) the number of kept samples is chosen so that every run
does the same number of chain-steps (``--chain-steps``, 10^7 by default; or ``--samples N`` for the
same number of samples in every run), and the best of
``--repeats`` end-to-end ``sampler.sample(..., warmup=0, step_size=2.0)`` calls is reported in
nanoseconds per chain-step, for the fused loop on one thread, on every core, and the scan loop.
Flat scaling means the same number in every row of a column.

Examples
--------
::

    .venv/bin/python benchmarks/scaling.py --quick     # 10^6 chain-steps per run
    .venv/bin/python benchmarks/scaling.py             # 10^7 chain-steps per run
"""

from __future__ import annotations

import argparse
import gc
import time
import warnings

import numpy as np

LOC = np.array([-2.0, 0.0, 3.2, 2.5])
SCALE = np.array([1.2, 1.0, 5.0, 2.8])
WEIGHTS = np.array([0.2, 0.3, 0.1, 0.4])
CHAINS = (100, 1_000, 10_000, 100_000)
CONFIGS = {"fused, 1 thread": dict(n_threads=1), "fused, all cores": {}, "scan": dict(loop="scan")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain-steps", type=float, default=1e7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--samples", type=int, default=None, help="a fixed number of samples for every row instead"
    )
    parser.add_argument("--quick", action="store_true", help="10^6 chain-steps, 2 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.chain_steps, args.repeats = 1e6, 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import aesara.tensor as at

        import aemix

    srng = at.random.RandomStream(0)
    N_rv = srng.normal(LOC, SCALE, name="N")
    I_rv = srng.categorical(WEIGHTS, name="I")
    sampler = aemix.build_sampler(N_rv[I_rv])
    for config in CONFIGS.values():
        sampler.sample(1, n_chains=100, seed=0, warmup=0, step_size=2.0, **config)

    per_run = f"{args.samples} samples" if args.samples else f"{args.chain_steps:.0e} chain-steps"
    print(f"ns per chain-step, {per_run} per run, best of {args.repeats}")
    print(f"{'chains':>8} {'samples':>8} " + " ".join(f"{name:>17}" for name in CONFIGS))
    for chains in CHAINS:
        samples = args.samples or max(1, int(args.chain_steps // chains))
        cells = []
        for config in CONFIGS.values():
            best = np.inf
            for _ in range(args.repeats):
                gc.collect()
                start = time.perf_counter()
                out = sampler.sample(
                    samples, n_chains=chains, seed=0, warmup=0, step_size=2.0, **config
                )
                best = min(best, time.perf_counter() - start)
                del out
            cells.append(best / (chains * samples) * 1e9)
        print(f"{chains:>8} {samples:>8} " + " ".join(f"{c:>17.1f}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
