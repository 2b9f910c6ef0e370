"""Time the Markov chain's forward messages (`aemix.markov.ChainMessages`) in C against NumPy.

    python benchmarks/markov_messages.py [--chains 32] [--steps 112] [--states 2]

The HMM example's size by default: one call per log-density of a batch of chains.
"""

import argparse
import time

import aesara
import aesara.tensor as at
import numpy as np

from aemix.markov import ChainMessages


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=32)
    parser.add_argument("--steps", type=int, default=112)
    parser.add_argument("--states", type=int, default=2)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    k = args.states
    inputs = (
        np.log(np.full((args.chains, k), 1.0 / k)),
        np.log(rng.dirichlet(np.ones(k), size=(args.chains, k))),
        rng.normal(size=(args.chains, args.steps, k)),
    )
    variables = [at.tensor("float64", shape=(None,) * x.ndim) for x in inputs]
    times = {}
    for linker in ("py", "c"):
        mode = aesara.compile.mode.Mode(linker=linker, optimizer=None)
        fn = aesara.function(variables, ChainMessages(True, True)(*variables), mode=mode)
        fn(*inputs)
        start = time.perf_counter()
        for _ in range(args.calls):
            fn(*inputs)
        times[linker] = (time.perf_counter() - start) / args.calls
    print(
        f"{args.chains} chains x {args.steps} steps x {k} states: NumPy {times['py'] * 1e3:.2f} ms, "
        f"C {times['c'] * 1e3:.2f} ms per call ({times['py'] / times['c']:.1f}x)"
    )


if __name__ == "__main__":
    main()
