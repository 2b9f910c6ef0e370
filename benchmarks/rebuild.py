"""Time a model built again in the same process: its functions are copies of the first build's.

    python benchmarks/rebuild.py [--builds 3] [--loops fused scan]

The coal-mining change point of the tests (12 counts), built ``--builds`` times in one process
and sampled once per build (``sample(100, n_chains=64, warmup=200, start="prior")``, the same
seed).  The first build compiles (a warm Aesara cache makes it the rewriting and linking alone);
each later build finds its Aesara functions in `aemix.compilation.function`'s cache (the graphs
compute the same thing) and copies them, so what is left is building the graph, the fused
loop's lowering to scalar code (not cached) and the run.  The draws of every build are
checked to be the same.
"""

import argparse
import time
import warnings

import aesara.tensor as at
import numpy as np

import aemix

COUNTS = np.array([5, 3, 6, 4, 5, 7, 1, 0, 2, 1, 1, 0])


def build():
    srng = at.random.RandomStream(0)
    T = len(COUNTS)
    tau = srng.integers(0, T, name="tau")
    early = srng.gamma(2.0, 1.0, name="e")
    late = srng.gamma(2.0, 1.0, name="l")
    y = srng.poisson(at.switch(at.arange(T) < tau, early, late), name="y")
    return aemix.build_sampler(y, observed={y: COUNTS})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=3)
    parser.add_argument("--loops", nargs="+", default=["fused", "scan"])
    args = parser.parse_args(argv)
    print("| loop | build | build + first sample (s) |")
    print("| --- | --- | --- |")
    for loop in args.loops:
        first = None
        for k in range(args.builds):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", aemix.ConvergenceWarning)
                result = build().sample(
                    100, n_chains=64, seed=1, warmup=200, loop=loop, start="prior"
                )
            elapsed = time.perf_counter() - start
            draws = result.draws["e"]
            first = draws if first is None else first
            assert np.array_equal(draws, first), "a rebuilt model drew differently"
            print(f"| {loop} | {k + 1} | {elapsed:.2f} |")


if __name__ == "__main__":
    main()
