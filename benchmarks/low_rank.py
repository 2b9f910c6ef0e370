"""The proposal above 20 coordinates: a regression with 30 correlated predictors (conjugate, so the
posterior is exact), default ``sample(1000)``, with the low-rank proposal and with one scale per
coordinate (``--diagonal``, the form used before).  Prints the minimum bulk ESS, the largest
|z| of the posterior means against the exact ones, and any warning.

Run: ``PYTHONPATH=. python benchmarks/low_rank.py [--diagonal] [--loop scan|fused|auto]``
"""

from __future__ import annotations

import argparse
import time
import warnings

import arviz as az
import numpy as np

import aemix.adaptation as adaptation
import aemix.sampler as sampler_module
from benchmarks.kernels import regression


def use_diagonal_above_the_dense_dimension():
    def form(dim):
        if dim == 1 or dim > adaptation.DENSE_MAX_DIM:
            return "diagonal"
        return "dense"

    def length(dim):
        return dim if form(dim) == "diagonal" else dim * dim

    for module in (adaptation, sampler_module):
        module.proposal_form, module.scale_length = form, length
    adaptation.identity_scale = sampler_module.identity_scale = lambda dim: (
        np.ones(dim) if form(dim) == "diagonal" else np.eye(dim).ravel()
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diagonal", action="store_true")
    parser.add_argument("--loop", default="auto")
    args = parser.parse_args(argv)
    if args.diagonal:
        use_diagonal_above_the_dense_dimension()
    sampler, exact = regression()
    (mean, variance), d = exact["beta"], sampler.dim
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sampler.sample(1000, seed=0, loop=args.loop)
    elapsed = time.perf_counter() - start
    draws = result.draws["beta"]
    ess = np.array([float(az.ess(draws[..., j])) for j in range(d)])
    z = (draws.mean(axis=(0, 1)) - mean) / np.sqrt(variance / ess)
    print(
        f"proposal {sampler.proposal_form if not args.diagonal else 'diagonal'}, loop "
        f"{result.loop}: {elapsed:.1f} s (with compilation), warm-up {result.warmup_steps}, "
        f"acceptance {result.acceptance_rate.mean():.3f}, min bulk ESS {ess.min():.0f}, "
        f"max |z| {np.abs(z).max():.2f}"
    )
    for w in caught:
        print("warning:", str(w.message)[:160])


if __name__ == "__main__":
    main()
