"""ESS per second of the random walk, MALA and HMC (`sample(kernel=...)`) on a regression with 30
correlated predictors (the model of ``benchmarks/low_rank.py``, exact posterior) and on the
non-centered eight schools.  For each kernel: the seconds of a first `sample` call (with
compilation) and of a second one (compiled), the warm-up steps, the acceptance, the minimum bulk ESS
over coordinates and that ESS per second of the second call; for the regression, also the largest
|z| of the posterior means against the exact ones.

Run: ``PYTHONPATH=. python benchmarks/kernels.py [--loop fused|scan|auto] [--chains 32]``
"""

from __future__ import annotations

import argparse
import time
import warnings

import aesara.tensor as at
import arviz as az
import numpy as np

import aemix

# Thinning per kernel: about one kept draw per autocorrelation time of each on these models.
THIN = {"rmh": "auto", "mala": 5, "hmc": 1}


def regression():
    rng = np.random.default_rng(1)
    n, d = 200, 30
    X = 0.3 * rng.normal(size=(n, d)) + rng.normal(size=(n, 2)) @ rng.normal(size=(2, d))
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    srng = at.random.RandomStream(0)
    beta = srng.normal(0.0, 1.0, size=d, name="beta")
    y_rv = srng.normal(at.dot(X, beta), 1.0, name="y")
    cov = np.linalg.inv(X.T @ X + np.eye(d))
    return aemix.build_sampler(y_rv, {y_rv: y}), {"beta": (cov @ X.T @ y, np.diag(cov))}


def eight_schools():
    y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
    sigma = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
    srng = at.random.RandomStream(0)
    mu = srng.normal(0, 5, name="mu")
    tau = srng.halfcauchy(0, 5, name="tau")
    z = srng.normal(0, 1, size=8, name="z")
    y_rv = srng.normal(mu + tau * z, sigma, name="y")
    return aemix.build_sampler(y_rv, {y_rv: y}), {}


def min_ess(result, names) -> float:
    values = []
    for name in names:
        draws = result.draws[name]
        flat = draws.reshape(draws.shape[0], draws.shape[1], -1)
        values += [float(az.ess(flat[..., j])) for j in range(flat.shape[-1])]
    return min(values)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--chains", type=int, default=32)
    parser.add_argument("--kernels", default="rmh,mala,hmc")
    args = parser.parse_args(argv)
    for name, build in (("regression-30", regression), ("eight-schools", eight_schools)):
        sampler, exact = build()
        for kernel in args.kernels.split(","):
            options = dict(n_chains=args.chains, kernel=kernel, loop=args.loop, thin=THIN[kernel])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                sampler.sample(1000, seed=0, **options)
                first = time.perf_counter() - start
                start = time.perf_counter()
                result = sampler.sample(1000, seed=1, **options)
                second = time.perf_counter() - start
            ess = min_ess(result, sampler.latent)
            line = (
                f"{name:14s} {kernel:4s} loop {result.loop:5s} first {first:6.1f} s, second "
                f"{second:6.1f} s, warm-up {result.warmup_steps}, acceptance "
                f"{result.acceptance_rate.mean():.2f}, min bulk ESS {ess:7.0f}, "
                f"ESS/s {ess / second:8.1f}"
            )
            for var, (mean, variance) in exact.items():
                draws = result.draws[var]
                var_ess = np.array([float(az.ess(draws[..., j])) for j in range(len(mean))])
                z = (draws.mean(axis=(0, 1)) - mean) / np.sqrt(variance / var_ess)
                line += f", max |z| {np.abs(z).max():.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
