"""UK coal-mining disasters 1851-1962 as a two-regime hidden Markov model; the regimes are summed out.

Data: ``data/coal_mining_disasters.csv``, the yearly counts of the 191 explosions (10 or more
deaths) of Jarrett (1979), 112 years (the data of ``coal_mining.py``).

``coal_mining.py`` asks when the one change happened; this model lets the years switch between
a low-rate and a high-rate regime as often as the data say.  Model (`model` below)::

    log_rate ~ Normal(0, 1) per regime, ordered: log_rate[0] < log_rate[1];  rate = exp(log_rate)
    P[j]     ~ Dirichlet(1, 1)                 j = 0, 1: the transition matrix's rows
    z_0      ~ Categorical(1/2, 1/2)           the regime of 1851 (0: low rate, 1: high rate)
    z_t      ~ Categorical(P[z_{t-1}])         t = 1..111, written as a Python loop
    y_t      ~ Poisson(rate[z_t])              observed

The rule ``markov_chain`` sees that ``z_0, ..., z_111`` form a Markov chain whose emissions read one
state each and sums all ``2**112`` paths out by the forward algorithm in ``O(T K^2)`` (``alpha_t =
logsumexp_j(alpha_{t-1}[j] + log P[j, :]) + log Poisson(y_t; rate)``); the random walk moves the two
log-rates and the two rows of ``P`` only.  Each kept draw's path is drawn back jointly by
forward-filter backward-sample, and ``result.conditional_probabilities["z<t>"]`` holds the smoothed
marginals ``P(z_t = k | y, rate, P)``, whose average over the draws is the posterior probability of
each year's regime (Rao-Blackwellized: smoother than the frequencies of the drawn paths).

Label switching: swapping the regimes' names (rates and the rows and columns of ``P``) leaves the
likelihood and the exchangeable priors unchanged, so the unrestricted posterior has two mirror
modes.  ``build_sampler(..., ordered=["log_rate"])`` samples the posterior restricted to
``log_rate[0] < log_rate[1]``, which for this symmetric model is exactly the posterior of the
relabelled draws, and regime 1 is the high-rate one in every chain.  (``ordered`` takes variables
on the whole real line, hence the normal prior on the log-rates; ``rate`` is a derived quantity.)

Check: the log-density aemix samples is compared, at the posterior mean, with a hand-written NumPy
forward algorithm; ``tests/test_examples.py`` compares it at more points and the posterior with an
independent Gibbs sampler that draws the regimes explicitly.

Run: ``python examples/hmm.py [--out hmm.png] [--seed 0]``
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
from scipy.special import logsumexp  # noqa: E402
from scipy.stats import dirichlet, norm, poisson  # noqa: E402

import aemix  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data" / "coal_mining_disasters.csv"

# Priors (the reference Gibbs sampler in the tests reads them from here).
LOG_RATE_LOC, LOG_RATE_SD = 0.0, 1.0
ROW_CONCENTRATION = 1.0
INITIAL = np.array([0.5, 0.5])

SETTINGS = dict(n_chains=32, n_samples=500, warmup=1000, thin=5)


def load_counts(path: Path | str = DATA) -> tuple[np.ndarray, np.ndarray]:
    """``(years, counts)``, both of shape ``(112,)``."""
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=int)
    return table[:, 0], table[:, 1]


def model(counts: np.ndarray, seed: int = 0):
    """The hidden Markov model's graph for the yearly ``counts``: returns ``(outputs, observed)``.

    The states are ``z0, ..., z<T-1>`` and the observations ``y0, ..., y<T-1>``."""
    srng = at.random.RandomStream(seed)
    log_rate = srng.normal(LOG_RATE_LOC, LOG_RATE_SD, size=2, name="log_rate")
    rate = at.exp(log_rate)
    transition = srng.dirichlet(np.full((2, 2), ROW_CONCENTRATION), name="P")
    z = srng.categorical(INITIAL, name="z0")
    outputs, observed = {"rate": rate}, {}
    for t, count in enumerate(np.asarray(counts)):
        if t > 0:
            z = srng.categorical(transition[z], name=f"z{t}")
        y = srng.poisson(rate[z], name=f"y{t}")
        outputs[f"y{t}"] = y
        observed[y] = count
    return outputs, observed


def build(counts: np.ndarray) -> aemix.Sampler:
    outputs, observed = model(counts)
    return aemix.build_sampler(outputs, observed=observed, ordered=["log_rate"])


def forward_logdensity(counts: np.ndarray, log_rate: np.ndarray, transition: np.ndarray) -> float:
    """The model's log-density at ``(log_rate, P)`` with the regimes summed out, in NumPy: the
    priors plus ``logsumexp`` of the forward algorithm's last message (no Jacobian, as
    `aemix.Sampler.logdensity`)."""
    emission = poisson(np.exp(log_rate)[None, :]).logpmf(np.asarray(counts)[:, None])  # (T, 2)
    alpha = np.log(INITIAL) + emission[0]
    for e in emission[1:]:
        alpha = logsumexp(alpha[:, None] + np.log(transition), axis=0) + e
    prior = norm(LOG_RATE_LOC, LOG_RATE_SD).logpdf(log_rate).sum() + sum(
        dirichlet(np.full(2, ROW_CONCENTRATION)).logpdf(row) for row in transition
    )
    return prior + logsumexp(alpha)


def regime_paths(result, n_years: int) -> np.ndarray:
    """The drawn paths ``(chains, draws, T)``: one joint draw of the regimes per kept draw."""
    return np.stack([result.draws[f"z{t}"] for t in range(n_years)], axis=-1).astype(np.int64)


def regime_periods(path: np.ndarray, years: np.ndarray) -> str:
    """``path`` (regimes per year) as runs, e.g. ``"1851-1886 high, 1887-1962 low"``."""
    starts = np.flatnonzero(np.diff(path, prepend=-1))
    ends = np.append(starts[1:], len(path)) - 1
    names = ("low", "high")
    return ", ".join(
        f"{years[a]}-{years[b]} {names[path[a]]}" if a < b else f"{years[a]} {names[path[a]]}"
        for a, b in zip(starts, ends)
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=SETTINGS["n_chains"])
    parser.add_argument("--samples", type=int, default=SETTINGS["n_samples"], help="kept per chain")
    parser.add_argument("--warmup", type=int, default=SETTINGS["warmup"])
    parser.add_argument("--thin", type=int, default=SETTINGS["thin"], help="steps per kept draw")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="hmm.png", help="where to write the figure")
    args = parser.parse_args(argv)

    years, counts = load_counts()
    T = len(counts)
    start = time.perf_counter()
    sampler = build(counts)
    print(sampler.explain())
    result = sampler.sample(
        args.samples, n_chains=args.chains, seed=args.seed, warmup=args.warmup, thin=args.thin
    )
    elapsed = time.perf_counter() - start
    print(
        f"\n{T} years, {counts.sum()} disasters; {args.chains} chains x {args.samples} draws "
        f"(thin {args.thin}, +{result.warmup_steps} warm-up) in {elapsed:.1f} s (build, compile "
        "and sample)"
    )
    print(
        f"tuned step size {result.step_size:.3f}, "
        f"acceptance rate {result.acceptance_rate.mean():.3f}"
    )

    rate, transition = result.draws["rate"], result.draws["P"]
    diagnostics = result.diagnostics
    print(f"\n{'parameter':<10} {'mean':>7} {'90% interval':>16} {'ESS':>6} {'R-hat':>6}")
    summaries = [(f"rate[{k}]", rate[..., k], "log_rate", k) for k in (0, 1)]
    summaries += [
        (f"P[{j},{k}]", transition[..., j, k], "P", (j, k)) for j in (0, 1) for k in (0, 1)
    ]
    for name, x, var, index in summaries:
        lo, hi = np.quantile(x, [0.05, 0.95])
        print(
            f"{name:<10} {x.mean():7.3f} {f'[{lo:.3f}, {hi:.3f}]':>16} "
            f"{diagnostics.ess_bulk[var][index]:6.0f} {diagnostics.rhat[var][index]:6.3f}"
        )
    stay = 1 / (1 - transition[..., [0, 1], [0, 1]])
    print(
        "expected stay in a regime (years, posterior median): "
        f"low {np.median(stay[..., 0]):.0f}, high {np.median(stay[..., 1]):.0f}"
    )

    # The check: the density the random walk targets is the forward algorithm's marginal.
    point = {"log_rate": result.draws["log_rate"].mean((0, 1)), "P": transition.mean((0, 1))}
    ours = sampler.logdensity(point)
    numpy_forward = forward_logdensity(counts, point["log_rate"], point["P"])
    print(
        f"\nlog-density at the posterior mean: aemix {ours:.10f}, NumPy forward algorithm "
        f"{numpy_forward:.10f} (difference {abs(ours - numpy_forward):.1e})"
    )

    p_high = np.mean([result.conditional_probabilities[f"z{t}"][..., 1] for t in range(T)], (1, 2))
    paths = regime_paths(result, T)
    drawn_high = paths.mean(axis=(0, 1))
    print(
        "\nposterior probability of the high-rate regime (smoothed marginals averaged over the "
        f"draws; frequency in the drawn paths differs by at most {np.abs(p_high - drawn_high).max():.3f}):"
    )
    for row in range(0, T, 8):
        print("  " + "  ".join(f"{years[t]} {p_high[t]:.2f}" for t in range(row, min(row + 8, T))))
    flat = paths.reshape(-1, T)
    unique, frequency = np.unique(flat, axis=0, return_counts=True)
    order = np.argsort(frequency)[::-1]
    print(f"\n{len(unique)} distinct paths among {len(flat)} draws; the most frequent:")
    for i in order[:3]:
        print(f"  {frequency[i] / len(flat):6.1%}  {regime_periods(unique[i], years)}")

    # Expected rate of each year: rate[z_t], averaged over the joint draws of rates and paths.
    yearly_rate = np.take_along_axis(rate, paths, axis=-1).reshape(-1, T)
    fig, (ax1, ax2, ax3) = plt.subplots(
        3, 1, figsize=(9, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2, 1.2]}
    )
    ax1.bar(years, counts, color="0.7", label="disasters")
    ax1.plot(years, yearly_rate.mean(0), color="C0", lw=2, label="posterior mean rate")
    ax1.fill_between(
        years, *np.quantile(yearly_rate, [0.05, 0.95], axis=0), color="C0", alpha=0.3, lw=0
    )
    ax1.set_ylabel("disasters per year")
    ax1.legend()
    ax2.plot(years, p_high, color="C3", lw=2, label="smoothed marginals, averaged")
    ax2.plot(years, drawn_high, "k.", ms=3, label="frequency in the drawn paths")
    ax2.set_ylim(-0.03, 1.03)
    ax2.set_ylabel("P(high-rate regime)")
    ax2.legend(loc="upper right")
    rng = np.random.default_rng(args.seed)
    shown = flat[rng.choice(len(flat), size=min(20, len(flat)), replace=False)]
    ax3.imshow(
        shown,
        aspect="auto",
        cmap="coolwarm",
        interpolation="nearest",
        extent=(years[0] - 0.5, years[-1] + 0.5, len(shown), 0),
    )
    ax3.set_yticks([])
    ax3.set_ylabel(f"{len(shown)} paths")
    ax3.set_xlabel("year (paths: red = high-rate regime, blue = low; joint FFBS draws)")
    fig.suptitle("Coal-mining disasters: two-regime hidden Markov model, regimes summed out")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    plt.close(fig)  # (pyplot keeps every open figure alive)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
