"""Zero-inflated Poisson on simulated counts: the structural-zero indicators are summed out.

Data: ``n = 200`` counts simulated with a known truth (``pi = 0.3`` of them structural zeros, the
rest Poisson with ``lam = 3.5``), so the estimates can be checked against it.

Model (`model` below)::

    pi     ~ Beta(1, 1)                        probability of a structural zero
    lam    ~ Gamma(2, rate 0.5)                Poisson rate of the other counts
    z_i    ~ Bernoulli(pi)                     i = 1..n, summed out by aemix
    y_i    = 0 if z_i else Poisson(lam)        observed: at.switch(z, 0, poisson(lam, size=n))

aemix reads ``at.switch(z, 0, ...)`` as a mixture of a point mass at 0 and the Poisson
(``p(y_i) = pi * [y_i = 0] + (1 - pi) * Poisson(y_i; lam)``), random-walks over ``pi`` and ``lam``
and draws each ``z_i`` back from its conditional: a zero is structural with probability
``pi / (pi + (1 - pi) * exp(-lam))``, a positive count never.

Run: ``python examples/zero_inflated_poisson.py [--out zero_inflated_poisson.png] [--seed 0]``
"""

from __future__ import annotations

import argparse
import time

import aesara.tensor as at
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import poisson  # noqa: E402

import aemix  # noqa: E402

TRUTH = dict(pi=0.3, lam=3.5)
N = 200

# Priors: pi ~ Beta(PI_A, PI_B), lam ~ Gamma(LAM_SHAPE, rate LAM_RATE).
PI_A, PI_B = 1.0, 1.0
LAM_SHAPE, LAM_RATE = 2.0, 0.5

# The draws of z are kept beside their probabilities, to show both (by default a result gives the
# probabilities of a per-observation variable only).
SETTINGS = dict(n_chains=16, n_samples=1000, warmup=1000, thin=1, var_names=("pi", "lam", "z"))


def simulate(n: int = N, pi: float = TRUTH["pi"], lam: float = TRUTH["lam"], seed: int = 0):
    """``(y, z)``: ``n`` counts and the true structural-zero indicators (NumPy, reproducible)."""
    rng = np.random.default_rng(seed)
    z = rng.random(n) < pi
    y = np.where(z, 0, rng.poisson(lam, n))
    return y, z


def model(y: np.ndarray, seed: int = 0):
    """The ZIP graph for the counts ``y``: returns ``(outputs, observed)``.

    ``y`` of shape ``(n,)`` is one data set.  ``y`` of shape ``(..., n)`` gives one independent
    ``(pi, lam)`` per row (a batch of data sets in one model; the tests use it for calibration).
    """
    y = np.asarray(y)
    batch = y.shape[:-1]
    srng = at.random.RandomStream(seed)
    pi_rv = srng.beta(PI_A, PI_B, size=batch or None, name="pi")
    lam_rv = srng.gamma(LAM_SHAPE, LAM_RATE, size=batch or None, name="lam")
    if batch:
        pi, lam = pi_rv[..., None], lam_rv[..., None]
    else:
        pi, lam = pi_rv, lam_rv
    z_rv = srng.bernoulli(pi, size=y.shape, name="z")
    y_rv = at.switch(z_rv, 0, srng.poisson(lam, size=y.shape, name="counts"))
    y_rv.name = "y"
    return {"y": y_rv}, {y_rv: y}


def build(y: np.ndarray) -> aemix.Sampler:
    outputs, observed = model(y)
    return aemix.build_sampler(outputs, observed=observed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=N, help="number of simulated counts")
    parser.add_argument("--chains", type=int, default=SETTINGS["n_chains"])
    parser.add_argument("--samples", type=int, default=SETTINGS["n_samples"], help="kept per chain")
    parser.add_argument("--warmup", type=int, default=SETTINGS["warmup"])
    parser.add_argument("--seed", type=int, default=0, help="seeds the simulation and the sampler")
    parser.add_argument("--out", default="zero_inflated_poisson.png", help="the figure")
    args = parser.parse_args(argv)

    y, z_true = simulate(args.n, seed=args.seed)
    print(
        f"simulated {args.n} counts (pi = {TRUTH['pi']}, lam = {TRUTH['lam']}, seed {args.seed}): "
        f"{int(np.sum(y == 0))} zeros, {int(z_true.sum())} of them structural"
    )
    start = time.perf_counter()
    sampler = build(y)
    print(sampler.explain())
    result = sampler.sample(
        args.samples,
        n_chains=args.chains,
        seed=args.seed,
        warmup=args.warmup,
        var_names=SETTINGS["var_names"],
    )
    elapsed = time.perf_counter() - start
    print(
        f"\n{args.chains} chains x {args.samples} draws (+{result.warmup_steps} warm-up) in {elapsed:.1f} s "
        "(build, compile and sample)"
    )
    print(
        f"tuned step size {result.step_size:.3f}, "
        f"acceptance rate {result.acceptance_rate.mean():.3f}"
    )

    print(f"\n{'':<6} {'truth':>6} {'mean':>7} {'90% interval':>17}")
    for name in ("pi", "lam"):
        x = result.draws[name]
        lo, hi = np.quantile(x, [0.05, 0.95])
        print(f"{name:<6} {TRUTH[name]:6.2f} {x.mean():7.3f} {f'[{lo:.3f}, {hi:.3f}]':>17}")

    p_struct = result.posterior_probabilities["z"][..., 1]  # Rao-Blackwellized
    zeros = y == 0
    print(
        f"\nP(structural | y = 0) = {p_struct[zeros].mean():.3f} "
        f"(truth: {z_true[zeros].mean():.3f} of the observed zeros are structural)"
    )
    print(f"P(structural | y > 0) = {p_struct[~zeros].max():.3g} (at most)")
    recovered = result.draws["z"].mean(axis=(0, 1))
    print(
        f"number of structural zeros: {recovered.sum():.1f} (posterior mean), "
        f"truth {int(z_true.sum())}"
    )

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    k = np.arange(0, y.max() + 3)
    observed = np.bincount(y, minlength=len(k))[: len(k)] / len(y)
    pi = result.draws["pi"].reshape(-1)[:, None]
    lam = result.draws["lam"].reshape(-1)[:, None]
    pmf = (1 - pi) * poisson.pmf(k[None, :], lam) + pi * (k[None, :] == 0)
    ax1.bar(k, observed, color="0.75", label="observed")
    ax1.errorbar(
        k,
        pmf.mean(0),
        yerr=np.abs(np.quantile(pmf, [0.05, 0.95], axis=0) - pmf.mean(0)),
        fmt="o",
        color="C0",
        label="posterior pmf (90%)",
    )
    ax1.set_xlabel("count")
    ax1.set_ylabel("frequency")
    ax1.legend()
    ax2.plot(result.draws["pi"].ravel(), result.draws["lam"].ravel(), ",", alpha=0.3)
    ax2.plot(TRUTH["pi"], TRUTH["lam"], "r*", ms=14, label="truth")
    ax2.set_xlabel("pi")
    ax2.set_ylabel("lam")
    ax2.legend()
    fig.suptitle("Zero-inflated Poisson: structural zeros summed out")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    plt.close(fig)  # (pyplot keeps every open figure alive)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
