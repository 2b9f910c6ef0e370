"""UK coal-mining disasters 1851-1962: when did the rate change?  The change point is summed out.

Data: ``data/coal_mining_disasters.csv``, the yearly counts of the 191 explosions (10 or more
deaths) of Jarrett (1979), 112 years.

Model (`model` below), the change-point model of PyMC's tutorial with the change point summed out::

    tau      ~ Integers(0, T)                  T = 112; years t < tau have the early rate
    early    ~ Gamma(1, rate 1)                (= Exponential(1))
    late     ~ Gamma(1, rate 1)
    y_t      ~ Poisson(early if t < tau else late)      observed, t = 0..T-1

aemix sums the 112 values of ``tau`` out (``log p(y) = logsumexp_tau(log p(tau) + sum_t log
Poisson(y_t; rate_t(tau)))``) and random-walks over the two rates only.  The rule
``change_point`` sees that ``tau`` is read only through ``arange(T) < tau``: the inner sums are
prefix sums of the early rate's terms plus suffix sums of the late rate's, so one log-density
costs ``O(T + K)``, not ``O(T K)``.  The first year of the late
regime is ``1851 + tau``.  Its posterior comes two ways: the frequencies of ``tau`` drawn back from
its conditional given each kept draw, and the average of the conditional probabilities themselves
(Rao-Blackwellized, smoother).

With gamma priors on the rates both integrate out in closed form, so the script prints the exact
posterior beside the estimates.

Run: ``python examples/coal_mining.py [--out coal_mining.png] [--seed 0]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import aesara.tensor as at
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import gammaln, logsumexp  # noqa: E402

import aemix  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data" / "coal_mining_disasters.csv"
FIRST_YEAR = 1851

# Gamma(shape, rate) prior of both rates.
RATE_SHAPE, RATE_RATE = 1.0, 1.0

SETTINGS = dict(n_chains=16, n_samples=1000, warmup=1000, thin=1)


def load_counts(path: Path | str = DATA) -> tuple[np.ndarray, np.ndarray]:
    """``(years, counts)``, both of shape ``(112,)``."""
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=int)
    return table[:, 0], table[:, 1]


def model(counts: np.ndarray, seed: int = 0):
    """The change-point model's graph for the yearly ``counts``: returns ``(outputs, observed)``."""
    counts = np.asarray(counts)
    T = len(counts)
    srng = at.random.RandomStream(seed)
    tau_rv = srng.integers(0, T, name="tau")
    early_rv = srng.gamma(RATE_SHAPE, RATE_RATE, name="early")
    late_rv = srng.gamma(RATE_SHAPE, RATE_RATE, name="late")
    rate = at.switch(at.arange(T) < tau_rv, early_rv, late_rv)
    y_rv = srng.poisson(rate, name="disasters")
    return {"disasters": y_rv}, {y_rv: counts}


def build(counts: np.ndarray) -> aemix.Sampler:
    outputs, observed = model(counts)
    return aemix.build_sampler(outputs, observed=observed)


def exact_posterior(counts: np.ndarray):
    """Closed form: ``P(tau = t | y)`` for t = 0..T-1, and the posterior means of both rates."""
    counts = np.asarray(counts)
    T = len(counts)
    before = np.concatenate([[0], np.cumsum(counts)])[:T]  # disasters in years < t
    after = counts.sum() - before
    a, b = RATE_SHAPE, RATE_RATE
    t = np.arange(T)
    log_p = (
        gammaln(a + before)
        - (a + before) * np.log(b + t)
        + gammaln(a + after)
        - (a + after) * np.log(b + T - t)
    )
    p = np.exp(log_p - logsumexp(log_p))
    early = np.sum(p * (a + before) / (b + t))
    late = np.sum(p * (a + after) / (b + T - t))
    return p, early, late


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=SETTINGS["n_chains"])
    parser.add_argument("--samples", type=int, default=SETTINGS["n_samples"], help="kept per chain")
    parser.add_argument("--warmup", type=int, default=SETTINGS["warmup"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="coal_mining.png", help="where to write the figure")
    args = parser.parse_args(argv)

    years, counts = load_counts()
    start = time.perf_counter()
    sampler = build(counts)
    print(sampler.explain())
    result = sampler.sample(args.samples, n_chains=args.chains, seed=args.seed, warmup=args.warmup)
    elapsed = time.perf_counter() - start
    print(
        f"\n{len(counts)} years, {counts.sum()} disasters; {args.chains} chains x {args.samples} "
        f"draws (+{result.warmup_steps} warm-up) in {elapsed:.1f} s (build, compile and sample)"
    )
    print(
        f"tuned step size {result.step_size:.3f}, "
        f"acceptance rate {result.acceptance_rate.mean():.3f}"
    )

    exact, early_exact, late_exact = exact_posterior(counts)
    rao_blackwell = result.conditional_probabilities["tau"].mean(axis=(0, 1))
    drawn = (
        np.bincount(result.draws["tau"].ravel(), minlength=len(counts)) / result.draws["tau"].size
    )
    print("\nfirst year of the late regime (1851 + tau), most probable years:")
    print(f"{'year':>6} {'P (drawn)':>10} {'P (RB)':>8} {'exact':>8}")
    for t in np.argsort(exact)[::-1][:6]:
        print(f"{years[t]:6d} {drawn[t]:10.4f} {rao_blackwell[t]:8.4f} {exact[t]:8.4f}")
    tau_years = FIRST_YEAR + result.draws["tau"].astype(np.int64)  # (stored in int8)
    lo, hi = np.quantile(tau_years, [0.05, 0.95])
    print(f"90% interval: {lo:.0f}-{hi:.0f}")

    print(f"\n{'rate':<6} {'mean':>7} {'90% interval':>16} {'exact mean':>11}")
    for name, value in (("early", early_exact), ("late", late_exact)):
        x = result.draws[name]
        lo, hi = np.quantile(x, [0.05, 0.95])
        print(f"{name:<6} {x.mean():7.3f} {f'[{lo:.3f}, {hi:.3f}]':>16} {value:11.3f}")

    # Expected rate per year: P(t < tau) * early + P(t >= tau) * late, averaged over the draws.
    tau = result.draws["tau"].reshape(-1)
    early = result.draws["early"].reshape(-1)
    late = result.draws["late"].reshape(-1)
    t = np.arange(len(counts))
    rates = np.where(t[None, :] < tau[:, None], early[:, None], late[:, None])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6))
    ax1.bar(years, counts, color="0.7", label="disasters")
    ax1.plot(years, rates.mean(0), color="C0", lw=2, label="posterior mean rate")
    ax1.fill_between(years, *np.quantile(rates, [0.05, 0.95], axis=0), color="C0", alpha=0.3)
    ax1.set_xlabel("year")
    ax1.set_ylabel("disasters per year")
    ax1.legend(loc="upper right")  # (a fixed place: "best" searches every bar)
    ax2.bar(years, rao_blackwell, color="C0", alpha=0.7, label="aemix (Rao-Blackwellized)")
    ax2.plot(years, exact, "k.", label="exact")
    ax2.set_xlim(1875, 1910)
    ax2.set_xlabel("first year of the late regime")
    ax2.set_ylabel("posterior probability")
    ax2.legend(loc="upper left")
    fig.suptitle("Coal-mining disasters: change point summed out")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    plt.close(fig)  # (pyplot keeps every open figure alive)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
