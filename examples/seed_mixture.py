"""The seed's 4-component normal mixture, sampled by a sampler aemix builds from the model graph.

The model is written exactly as in the seed text; aemix finds the categorical index ``I``, sums it out
(``Y``'s density becomes ``logsumexp_k(log w_k + log N(y; loc_k, scale_k))``), builds a random-walk
Metropolis kernel for one chain, batches it over 1000 chains and compiles it with Aesara's C backend.
The script prints what was marginalized, the acceptance rate, the mean, variance and quantiles of the
draws beside the exact mixture values, and writes a histogram over the exact density.

Run: ``python examples/seed_mixture.py [--out seed_mixture.png] [--samples 2000]``
"""

from __future__ import annotations

import argparse
import time

import aesara.tensor as at
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.optimize as so  # noqa: E402
import scipy.stats as st  # noqa: E402

import aemix  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000, help="kept draws per chain")
    parser.add_argument("--chains", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="seed_mixture.png", help="where to write the histogram")
    args = parser.parse_args(argv)

    # The seed's model, as written there.
    srng = at.random.RandomStream(0)
    loc = np.array([-2, 0, 3.2, 2.5])
    scale = np.array([1.2, 1, 5, 2.8])
    weights = np.array([0.2, 0.3, 0.1, 0.4])
    N_rv = srng.normal(loc, scale, name="N")
    I_rv = srng.categorical(weights, name="I")
    Y_rv = N_rv[I_rv]

    start = time.perf_counter()
    sampler = aemix.build_sampler(Y_rv)
    print(f"latent variables:       {sampler.latent}")
    print(f"marginalized variables: {sampler.marginalized}")
    print(f"log p(Y = 10) = {sampler.logdensity({'Y': 10.0}):.12f}")
    result = sampler.sample(args.samples, n_chains=args.chains, seed=args.seed, warmup=args.warmup)
    elapsed = time.perf_counter() - start
    y = result.draws["Y"]
    print(
        f"{args.chains} chains x {args.samples} draws (+{result.warmup_steps} warm-up) in {elapsed:.1f} s "
        "(build, compile and sample)"
    )
    print(
        f"tuned step size {result.step_size:.3f}, acceptance rate {result.acceptance_rate.mean():.3f}"
    )

    components = st.norm(loc, scale)
    mean = np.sum(weights * loc)
    var = np.sum(weights * (scale**2 + loc**2)) - mean**2

    def cdf(v):
        return np.sum(weights * components.cdf(v))

    print(f"{'':>10} {'draws':>9} {'exact':>9}")
    print(f"{'mean':>10} {y.mean():9.4f} {mean:9.4f}")
    print(f"{'variance':>10} {y.var():9.4f} {var:9.4f}")
    for q in (0.05, 0.25, 0.5, 0.75, 0.95):
        exact_q = so.brentq(lambda v, q=q: cdf(v) - q, -50, 50)
        print(f"{f'q{q:.2f}':>10} {np.quantile(y, q):9.4f} {exact_q:9.4f}")
    freq = np.bincount(result.draws["I"].ravel(), minlength=4) / result.draws["I"].size
    print(f"recovered I frequencies {np.round(freq, 4)} (weights {weights})")
    summary = result.summary(var_names=["Y"], kind="diagnostics")
    print(
        f"ArviZ: ess_bulk {summary['ess_bulk'].iloc[0]:.0f}, r_hat {summary['r_hat'].iloc[0]:.4f}"
    )

    grid = np.linspace(-12, 18, 600)
    density = np.exp([sampler.logdensity({"Y": g}) for g in grid])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(y.ravel(), bins=200, range=(-12, 18), density=True, alpha=0.6, label="aemix draws")
    ax.plot(grid, density, color="k", lw=1.5, label="exact marginal density")
    ax.set_xlabel("Y")
    ax.set_ylabel("density")
    ax.set_title(f"Seed mixture: {args.chains} chains x {args.samples} draws, I marginalized")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    plt.close(fig)  # (pyplot keeps every open figure alive)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
