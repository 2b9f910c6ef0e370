"""Peak memory of a record computed after the loop: the coal-mining change point (T = 112).

The change point's conditional takes K x T = 112 x 112 values per draw, so its record does not
lower to the fused loop: the loop keeps the positions and the record is computed after it, in
batches of draws bounded by ``aemix.runners.RECORD_MEMORY_BUDGET``.  Prints the growth of the
process's peak resident memory over one ``sample`` call (25 chains x 1000 draws; compiled before),
beside the size of the draws.

Run: ``.venv/bin/python benchmarks/record_memory.py [--summary-only] [--loop fused|scan]``
"""

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import coal_mining  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--chains", type=int, default=25)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args(argv)
    _, counts = coal_mining.load_counts()
    sampler = coal_mining.build(counts)
    kwargs = dict(
        n_chains=args.chains, seed=0, warmup=0, loop=args.loop, summary_only=args.summary_only
    )
    sampler.sample(5, **kwargs)  # compile
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = sampler.sample(args.samples, **kwargs)
    elapsed = time.perf_counter() - start
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    draws = 0 if args.summary_only else sum(v.nbytes for v in result.draws.values()) / 2**20
    print(
        f"loop {result.loop}, {'summary only' if args.summary_only else 'stored'}: peak RSS grew "
        f"{growth:.1f} MB for {draws:.2f} MB of draws, in {elapsed:.1f} s"
    )


if __name__ == "__main__":
    main()
