"""Old Faithful: a two-component normal mixture of eruption durations, memberships summed out.

Data: R's ``faithful`` (``data/faithful.csv``), the durations in minutes of 272 eruptions of the Old
Faithful geyser.  The durations are bimodal (short eruptions near 2 minutes, long ones near 4.3).

Model (`model` below)::

    w      ~ Dirichlet(2, 2)                   component weights
    mu_k   ~ Normal(3, 1)                      k = 0, 1, the same prior for both
    tau_k  ~ Gamma(2, rate 0.2)                precisions; sigma_k = tau_k ** -0.5
    z_i    ~ Categorical(w)                    i = 1..272, summed out by aemix
    y_i    ~ Normal(mu[z_i], sigma[z_i])       observed

aemix finds ``z``, sums it out elementwise (``log p(y_i) = logsumexp_k(log w_k + log N(y_i; mu_k,
sigma_k))``) and random-walks over ``w``, ``mu`` and ``tau`` in unconstrained space.  Each ``z_i`` is
drawn back from its conditional given every kept draw, and the conditional probabilities themselves
(``P(z_i = k | y, w, mu, tau)``) are averaged into each eruption's membership probability.

Three choices in the model, each made to keep the posterior one that a random walk can sample:

* Label switching.  The prior treats both components alike, so the posterior has two mirror-image
  modes (swap the labels), each holding half the mass.  A random-walk chain stays in the mode it
  falls into, which is harmless here: the draws are relabelled afterwards so that ``mu_0 < mu_1``
  ("short" is component 0, "long" is 1), and since the modes are exact mirror images this gives
  the posterior restricted to ``mu_0 < mu_1`` exactly.  An asymmetric prior (e.g.
  ``mu ~ Normal([2, 4.5], 1)``) does not remove the swapped mode, only shrinks its mass, and chains
  started from prior draws still land in it now and then, which gives it far too much weight.
* Precisions, not a half-normal on ``sigma``.  The durations are rounded (many ties), and with two
  or more tied values a component can collapse onto them: the likelihood grows like
  ``sigma ** -(m - 1)`` for ``m`` ties, so under any prior on ``sigma`` with a positive density at 0
  (a half-normal) the posterior is improper.  A gamma prior on the precision vanishes fast enough.
* ``Dirichlet(2, 2)`` rather than ``Dirichlet(1, 1)``: it keeps chains out of "empty component"
  local modes (one component holding all the data, the other parked outside it with weight near 0).

Mixing: the random walk's per-coordinate scales, tuned in warm-up, come out much larger than the
posterior's spread (tenfold and more for the means), so the chains move slowly; the script runs 32
chains for 4000 + 10000 steps, keeps every 10th draw and prints the ESS and R-hat of each summary.

Run: ``python examples/old_faithful.py [--out old_faithful.png] [--seed 0] [--chains 32]``
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
from scipy.stats import norm  # noqa: E402

import aemix  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data" / "faithful.csv"

# Prior hyperparameters (the reference Gibbs sampler in the tests reads them from here).
W_CONCENTRATION = 2.0
MU_LOC, MU_SD = 3.0, 1.0
TAU_SHAPE, TAU_RATE = 2.0, 0.2

# Sampler settings used by `main` (and by the tests).
# The memberships' draws are kept (by default a result gives their posterior probabilities
# only): `relabel` swaps them with the components.
SETTINGS = dict(
    n_chains=32, n_samples=1000, warmup=4000, thin=10, var_names=("w", "mu", "tau", "z")
)


def load_eruptions(path: Path | str = DATA) -> np.ndarray:
    """Eruption durations in minutes, shape ``(272,)``."""
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=0)


def model(y: np.ndarray, seed: int = 0):
    """The mixture's graph for the durations ``y``: returns ``(outputs, observed)``.

    ``aemix.build_sampler(*model(y))`` builds its sampler.
    """
    y = np.asarray(y, dtype=float)
    srng = at.random.RandomStream(seed)
    w_rv = srng.dirichlet(np.full(2, W_CONCENTRATION), name="w")
    mu_rv = srng.normal(MU_LOC, MU_SD, size=2, name="mu")
    tau_rv = srng.gamma(TAU_SHAPE, TAU_RATE, size=2, name="tau")
    sigma = 1.0 / at.sqrt(tau_rv)
    z_rv = srng.categorical(w_rv, size=len(y), name="z")
    y_rv = srng.normal(mu_rv[z_rv], sigma[z_rv], name="y")
    return {"y": y_rv}, {y_rv: y}


def build(y: np.ndarray) -> aemix.Sampler:
    outputs, observed = model(y)
    return aemix.build_sampler(outputs, observed=observed)


def relabel(result: aemix.SampleResult) -> dict[str, np.ndarray]:
    """Draws with the components ordered by their means (0: short eruptions, 1: long ones).

    Returns ``name -> (n_chains, n_samples, ...)`` arrays: ``w``, ``mu``, ``sigma``, ``tau`` (last
    axis the component), ``z`` (the recovered memberships, 1 = long) and ``p_long`` (each draw's
    conditional probability that an eruption is long).
    """
    swap = result.draws["mu"][..., 0] > result.draws["mu"][..., 1]  # (chains, samples)

    def ordered(x):
        return np.where(swap[..., None], x[..., ::-1], x)

    draws = {name: ordered(result.draws[name]) for name in ("w", "mu", "tau")}
    draws["sigma"] = draws["tau"] ** -0.5
    z = result.draws["z"]
    draws["z"] = np.where(swap[..., None], 1 - z, z)
    probs = result.conditional_probabilities["z"]
    draws["p_long"] = np.where(swap[..., None], probs[..., 0], probs[..., 1])
    return draws


def interval(x: np.ndarray, level: float = 0.9) -> tuple[float, float]:
    lo, hi = np.quantile(x, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=SETTINGS["n_chains"])
    parser.add_argument("--samples", type=int, default=SETTINGS["n_samples"], help="kept per chain")
    parser.add_argument("--warmup", type=int, default=SETTINGS["warmup"])
    parser.add_argument("--thin", type=int, default=SETTINGS["thin"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="old_faithful.png", help="where to write the figure")
    args = parser.parse_args(argv)

    y = load_eruptions()
    start = time.perf_counter()
    sampler = build(y)
    print(sampler.explain())
    # The priors are exchangeable, so chains settle in either labelling of the components and
    # R-hat of the raw labels is (rightly) high: the diagnostics are computed below on the draws
    # relabelled by their means, not by `sample`.
    result = sampler.sample(
        args.samples,
        n_chains=args.chains,
        seed=args.seed,
        warmup=args.warmup,
        thin=args.thin,
        diagnose=False,
        var_names=SETTINGS["var_names"],
    )
    elapsed = time.perf_counter() - start
    print(
        f"\n{len(y)} eruptions; {args.chains} chains x {args.samples} draws (thin {args.thin}, "
        f"+{result.warmup_steps} warm-up) in {elapsed:.1f} s (build, compile and sample)"
    )
    print(
        f"tuned step size {result.step_size:.3f}, "
        f"acceptance rate {result.acceptance_rate.mean():.3f}"
    )
    draws = relabel(result)
    swapped = np.mean(result.draws["mu"][..., 0] > result.draws["mu"][..., 1])
    print(f"draws relabelled (mu_0 > mu_1 before ordering): {swapped:.1%}")

    import arviz as az

    print(f"\n{'posterior':<16} {'mean':>7} {'90% interval':>18} {'ess':>7} {'r_hat':>6}")
    for name, label in (("w", "weight"), ("mu", "mean"), ("sigma", "scale")):
        for k, comp in enumerate(("short", "long")):
            x = draws[name][..., k]
            lo, hi = interval(x)
            ess = float(az.ess(x))
            rhat = float(az.rhat(x))
            print(
                f"{label + ' ' + comp:<16} {x.mean():7.3f} {f'[{lo:.3f}, {hi:.3f}]':>18} "
                f"{ess:7.0f} {rhat:6.3f}"
            )

    p_long = draws["p_long"].mean(axis=(0, 1))  # Rao-Blackwellized P(long | y)
    z_freq = draws["z"].mean(axis=(0, 1))  # frequency of the recovered draws
    print("\nmembership, P(long eruption | data):")
    print(f"{'row':>5} {'minutes':>8} {'P(long)':>8} {'recovered z':>12}")
    picks = [int(np.argmin(np.abs(y - v))) for v in (1.8, 2.9, 3.1, 3.333, 3.6, 4.5)]
    for i in picks:
        print(f"{i + 1:5d} {y[i]:8.3f} {p_long[i]:8.3f} {z_freq[i]:12.3f}")
    print(
        f"eruptions classified long (P > 0.5): {int(np.sum(p_long > 0.5))} of {len(y)}; "
        f"ambiguous (0.1 < P < 0.9): {int(np.sum((p_long > 0.1) & (p_long < 0.9)))}"
    )

    # Posterior mean density and a 90% band, over a thinned subset of the draws.
    grid = np.linspace(1.0, 6.0, 400)
    flat = {k: draws[k].reshape(-1, 2) for k in ("w", "mu", "sigma")}
    idx = np.random.default_rng(args.seed).choice(
        len(flat["w"]), min(1000, len(flat["w"])), replace=False
    )
    comps = flat["w"][idx, None, :] * norm.pdf(
        grid[None, :, None], flat["mu"][idx, None, :], flat["sigma"][idx, None, :]
    )
    dens = comps.sum(-1)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(y, bins=40, density=True, color="0.8", edgecolor="0.5", label="eruptions")
    ax.fill_between(grid, *np.quantile(dens, [0.05, 0.95], axis=0), alpha=0.3, color="C0")
    ax.plot(grid, dens.mean(0), color="C0", lw=2, label="posterior mean density (90% band)")
    for k, comp in enumerate(("short", "long")):
        ax.plot(grid, comps[..., k].mean(0), ls="--", color=f"C{k + 1}", label=f"{comp} component")
    ax.set_xlabel("eruption duration (minutes)")
    ax.set_ylabel("density")
    ax.set_title("Old Faithful: two-component mixture, memberships marginalized")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    plt.close(fig)  # (pyplot keeps every open figure alive)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
