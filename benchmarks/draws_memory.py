"""Peak memory of keeping every recovered membership: a 2-component mixture of 500 observations.

``z_i ~ Categorical(w)``, ``y_i ~ Normal(mu[z_i], sigma[z_i])``, i = 1..500, ``z`` summed out and
drawn back at every kept draw.  The default call, ``sampler.sample(1000, seed=0)`` (32 chains x 1000
draws, the tempered start, ``thin="auto"``), is run once to compile and once measured: the peak of
the memory traced by ``tracemalloc`` (NumPy's arrays included) over the measured call, the growth of
the process's peak resident memory over it, and the size of the draws kept (``z`` and the others).

Run: ``.venv/bin/python benchmarks/draws_memory.py [--loop auto|fused|scan]``
"""

import argparse
import resource
import time
import tracemalloc

import aesara.tensor as at
import numpy as np

import aemix


def build(n_observations: int = 500) -> aemix.Sampler:
    rng = np.random.default_rng(1)
    y = np.where(rng.random(n_observations) < 0.4, 2.0, 4.3) + 0.4 * rng.normal(size=n_observations)
    srng = at.random.RandomStream(0)
    w_rv = srng.dirichlet(np.full(2, 2.0), name="w")
    mu_rv = srng.normal(3.0, 1.0, size=2, name="mu")
    tau_rv = srng.gamma(2.0, 0.2, size=2, name="tau")
    z_rv = srng.categorical(w_rv, size=n_observations, name="z")
    y_rv = srng.normal(mu_rv[z_rv], 1.0 / at.sqrt(tau_rv[z_rv]), name="y")
    return aemix.build_sampler({"y": y_rv}, observed={y_rv: y})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args(argv)
    sampler = build()
    sampler.sample(5, seed=0, warmup=10, loop=args.loop, diagnose=False)  # compile
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = time.perf_counter()
    result = sampler.sample(args.samples, seed=0, loop=args.loop)
    elapsed = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    z = result.draws["z"]
    total = sum(v.nbytes for v in result.draws.values()) + result.logdensity.nbytes
    print(
        f"loop {result.loop}: z {z.dtype} {z.shape} = {z.nbytes / 2**20:.1f} MiB, all kept "
        f"{total / 2**20:.1f} MiB; traced peak {traced_peak / 2**20:.1f} MiB, peak RSS grew "
        f"{rss_growth:.1f} MiB, in {elapsed:.1f} s"
    )


if __name__ == "__main__":
    main()
