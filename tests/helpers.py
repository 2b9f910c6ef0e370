"""Models and exact reference values shared by the tests."""

from __future__ import annotations

import aesara.tensor as at
import numpy as np
import scipy.stats as st
from scipy.special import logsumexp

SEED_LOC = np.array([-2, 0, 3.2, 2.5])
SEED_SCALE = np.array([1.2, 1, 5, 2.8])
SEED_WEIGHTS = np.array([0.2, 0.3, 0.1, 0.4])


def seed_model(seed: int = 0):
    """The seed text's model, written exactly as there: returns ``(N_rv, I_rv, Y_rv)``."""
    srng = at.random.RandomStream(seed)
    N_rv = srng.normal(SEED_LOC, SEED_SCALE, name="N")
    I_rv = srng.categorical(SEED_WEIGHTS, name="I")
    Y_rv = N_rv[I_rv]
    return N_rv, I_rv, Y_rv


def mixture_logpdf(y, weights=SEED_WEIGHTS, loc=SEED_LOC, scale=SEED_SCALE):
    """Exact log-density of a normal mixture (scipy)."""
    y = np.asarray(y, dtype=float)[..., None]
    return logsumexp(np.log(weights) + st.norm(loc, scale).logpdf(y), axis=-1)


def mixture_cdf(y, weights=SEED_WEIGHTS, loc=SEED_LOC, scale=SEED_SCALE):
    """Exact CDF of a normal mixture (scipy)."""
    y = np.asarray(y, dtype=float)[..., None]
    return np.sum(weights * st.norm(loc, scale).cdf(y), axis=-1)


def mixture_moments(weights=SEED_WEIGHTS, loc=SEED_LOC, scale=SEED_SCALE):
    """Exact mean and variance of a normal mixture."""
    mean = np.sum(weights * loc)
    return mean, np.sum(weights * (scale**2 + loc**2)) - mean**2


def stat_scale() -> float:
    """Size factor of the statistical suites (``AEMIX_STAT_SCALE``; CI runs them smaller)."""
    import os

    return float(os.environ.get("AEMIX_STAT_SCALE", "1.0"))


def brute_force_logdensity(continuous, discrete, observed):
    """log of the sum, over every configuration of the discrete variables, of exp(joint log-prob).

    The joint log-probability comes from aeppl with every variable given a value.

    Parameters
    ----------
    continuous
        ``{rv: value}`` for the continuous latents.
    discrete
        ``{rv: support}``; every element of ``rv`` ranges over ``support`` independently.
    observed
        ``{rv: data}``.
    """
    import itertools

    import aesara
    from aeppl import joint_logprob

    rvs = list(continuous) + list(discrete)
    logp, value_vars = joint_logprob(
        *rvs, realized={rv: at.as_tensor(np.asarray(d)) for rv, d in observed.items()}
    )
    fn = aesara.function(value_vars, logp, mode="FAST_COMPILE")
    shapes = [tuple(aesara.function([], rv.shape, mode="FAST_COMPILE")()) for rv in discrete]
    sizes = [int(np.prod(s)) for s in shapes]
    terms = []
    for config in itertools.product(
        *[itertools.product(support, repeat=n) for support, n in zip(discrete.values(), sizes)]
    ):
        values = [np.asarray(c, dtype="int64").reshape(s) for c, s in zip(config, shapes)]
        terms.append(fn(*continuous.values(), *values))
    return logsumexp(terms)


def change_point_posterior(counts, alpha, beta):
    """Exact posterior of the change-point ``tau ~ integers(0, T)`` with Gamma(alpha, beta) rates.

    ``y_t ~ Poisson(e)`` for ``t < tau`` and ``Poisson(l)`` otherwise, ``e, l ~ Gamma(alpha, beta)``
    (rate ``beta``) independent: each rate integrates out in closed form.
    """
    from scipy.special import gammaln

    counts = np.asarray(counts)
    T = len(counts)

    def segment(y):
        s, n = y.sum(), len(y)
        return (
            alpha * np.log(beta)
            - gammaln(alpha)
            + gammaln(alpha + s)
            - (alpha + s) * np.log(beta + n)
        )

    log_post = np.array([segment(counts[:t]) + segment(counts[t:]) for t in range(T)])
    return np.exp(log_post - logsumexp(log_post))


def change_point_rate_means(counts, alpha, beta):
    """Exact posterior means of the early and late rates of the change-point model above.

    Given ``tau = t`` the early rate is Gamma(alpha + sum(y[:t]), beta + t), the late one
    Gamma(alpha + sum(y[t:]), beta + T - t); average their means over the exact posterior of tau.
    """
    counts = np.asarray(counts)
    T = len(counts)
    p = change_point_posterior(counts, alpha, beta)
    t = np.arange(T)
    before = np.array([counts[:k].sum() for k in range(T)])
    after = counts.sum() - before
    return np.sum(p * (alpha + before) / (beta + t)), np.sum(p * (alpha + after) / (beta + T - t))


def zero_inflated_poisson_grid(y, pi_a, pi_b, lam_shape, lam_rate, n_pi=1500, n_lam=1500):
    """Posterior summaries of a zero-inflated Poisson by 2-D quadrature (midpoint rule).

    Model: ``pi ~ Beta(pi_a, pi_b)``, ``lam ~ Gamma(lam_shape, rate lam_rate)``, each ``y_i`` a
    structural zero with probability ``pi``, Poisson(lam) otherwise.  The ``lam`` grid spans the
    likelihood's support (found on a coarse pass), so the grid error is far below Monte Carlo error.

    Returns ``{"pi": (mean, sd), "lam": (mean, sd), "p_structural_zero": P(z_i = 1 | y_i = 0)}``.
    """
    y = np.asarray(y)
    n0 = np.sum(y == 0)
    n_pos = np.sum(y > 0)
    s = y.sum()

    def log_post(pi, lam):
        return (
            n0 * np.log(pi + (1 - pi) * np.exp(-lam))
            + n_pos * np.log1p(-pi)
            + s * np.log(lam)
            - n_pos * lam
            + (pi_a - 1) * np.log(pi)
            + (pi_b - 1) * np.log1p(-pi)
            + (lam_shape - 1) * np.log(lam)
            - lam_rate * lam
        )

    def grid(lo, hi, n):
        h = (hi - lo) / n
        return lo + h * (np.arange(n) + 0.5)

    pi = grid(0.0, 1.0, n_pi)
    # Coarse pass over a wide lam range, then a fine grid where the mass is.
    lam_wide = grid(0.0, 10 * (s / max(n_pos, 1)) + 20.0, 400)
    lp = log_post(pi[::10, None], lam_wide[None, :])
    mass = np.exp(lp - lp.max()).sum(0)
    keep = np.flatnonzero(mass > 1e-16 * mass.sum())
    step = lam_wide[1] - lam_wide[0]
    lam = grid(max(lam_wide[keep[0]] - 2 * step, 0.0), lam_wide[keep[-1]] + 2 * step, n_lam)
    lp = log_post(pi[:, None], lam[None, :])
    weights = np.exp(lp - lp.max())
    weights /= weights.sum()
    p_pi, p_lam = weights.sum(1), weights.sum(0)
    out = {}
    for name, x, p in (("pi", pi, p_pi), ("lam", lam, p_lam)):
        mean = np.sum(p * x)
        out[name] = (mean, np.sqrt(np.sum(p * (x - mean) ** 2)))
    structural = pi[:, None] / (pi[:, None] + (1 - pi[:, None]) * np.exp(-lam[None, :]))
    out["p_structural_zero"] = np.sum(weights * structural)
    return out


def normal_mixture_gibbs(
    y,
    *,
    concentration,
    mu_loc,
    mu_sd,
    tau_shape,
    tau_rate,
    n_iter,
    n_chains,
    burn,
    seed,
    track=(),
    n_components=2,
):
    """A conjugate Gibbs sampler (NumPy, vectorized over chains) for a normal mixture of
    ``n_components`` (default two).

    Model: ``w ~ Dirichlet(concentration, ..., concentration)``, ``mu_k ~ Normal(mu_loc, mu_sd)``,
    ``tau_k ~ Gamma(tau_shape, rate tau_rate)`` (precisions), ``z_i ~ Categorical(w)``,
    ``y_i ~ Normal(mu[z_i], tau[z_i] ** -0.5)``.  It samples the memberships explicitly (no
    marginalization), then ``w | z``, ``mu | z, tau``, ``tau | z, mu`` from their conjugate
    conditionals.  Each kept draw is relabelled so that ``mu_0 < mu_1 < ...``.

    Returns ``name -> (n_chains, n_iter)`` arrays: ``w0, w1, mu0, mu1, sigma0, sigma1`` and, for each
    index ``i`` in ``track`` (two components only), ``p1_<i>``: the conditional probability that
    ``y_i`` is in component 1.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(y, dtype=float)
    C, K = n_chains, n_components
    if len(track) and K != 2:
        raise ValueError("track needs two components")
    mu = np.sort(rng.choice(y, size=(C, K)), axis=1) + 0.01 * np.arange(K)
    tau = np.full((C, K), 1.0 / y.var())
    w = np.full((C, K), 1.0 / K)
    out = {f"{p}{k}": np.empty((C, n_iter)) for p in ("w", "mu", "sigma") for k in range(K)}
    out.update({f"p1_{i}": np.empty((C, n_iter)) for i in track})
    track = np.asarray(track, dtype=int)
    for it in range(-burn, n_iter):
        # z | w, mu, tau
        log_p = (
            np.log(w)[:, None, :]
            + 0.5 * np.log(tau)[:, None, :]
            - 0.5 * tau[:, None, :] * (y[None, :, None] - mu[:, None, :]) ** 2
        )
        probs = np.exp(log_p - log_p.max(-1, keepdims=True))
        cdf = np.cumsum(probs / probs.sum(-1, keepdims=True), axis=-1)  # (C, n, K)
        z = (rng.random(cdf.shape[:-1])[..., None] > cdf[..., :-1]).sum(-1)
        onehot = (z[..., None] == np.arange(K)).astype(float)
        n_k = onehot.sum(1)
        s_k = np.einsum("cnk,n->ck", onehot, y)
        # w | z
        g = rng.gamma(concentration + n_k)
        w = g / g.sum(1, keepdims=True)
        # mu | z, tau
        prec = 1.0 / mu_sd**2 + n_k * tau
        mean = (mu_loc / mu_sd**2 + tau * s_k) / prec
        mu = mean + rng.standard_normal((C, K)) / np.sqrt(prec)
        # tau | z, mu
        ss = np.einsum("cnk,cnk->ck", onehot, (y[None, :, None] - mu[:, None, :]) ** 2)
        tau = rng.gamma(tau_shape + n_k / 2, 1.0 / (tau_rate + ss / 2))
        if it < 0:
            continue
        order = np.argsort(mu, axis=1)
        rows = np.arange(C)[:, None]
        for name, x in (("w", w), ("mu", mu), ("sigma", tau**-0.5)):
            xs = x[rows, order]
            for k in range(K):
                out[f"{name}{k}"][:, it] = xs[:, k]
        if len(track):
            # Conditional membership probability under the current (ordered) parameters.
            lp = (
                np.log(w)[:, None, :]
                + 0.5 * np.log(tau)[:, None, :]
                - 0.5 * tau[:, None, :] * (y[None, track, None] - mu[:, None, :]) ** 2
            )
            lp = np.take_along_axis(lp, order[:, None, :], axis=2)
            prob1 = 1.0 / (1.0 + np.exp(lp[..., 0] - lp[..., 1]))
            for j, i in enumerate(track):
                out[f"p1_{i}"][:, it] = prob1[:, j]
    return out


def poisson_hmm_loglik(counts, rate, transition, initial):
    """``log p(y | rate, P)`` of a Poisson hidden Markov model, every path of states summed: the
    forward algorithm in probability space, each message rescaled to sum to one (the log of the
    scales adds up to the marginal)."""
    emission = st.poisson(np.asarray(rate)[None, :]).pmf(np.asarray(counts)[:, None])  # (T, K)
    message, total = np.asarray(initial, dtype=float), 0.0
    for t, e in enumerate(emission):
        message = (message if t == 0 else message @ transition) * e
        scale = message.sum()
        total += np.log(scale)
        message = message / scale
    return total


def poisson_hmm_gibbs(
    counts,
    *,
    log_rate_loc,
    log_rate_sd,
    row_concentration,
    initial,
    n_iter,
    n_chains,
    burn,
    seed,
):
    """A Gibbs sampler (NumPy, vectorized over chains) for a Poisson hidden Markov model whose
    log-rates are ordered.

    Model: ``log_rate_k ~ Normal(log_rate_loc, log_rate_sd)`` restricted to ``log_rate_0 <
    log_rate_1 < ...``, rows ``P[j] ~ Dirichlet(row_concentration)``, ``z_0 ~ Cat(initial)``,
    ``z_t ~ Cat(P[z_{t-1}])``, ``y_t ~ Poisson(exp(log_rate[z_t]))``.  Each sweep draws the path
    ``z | rates, P`` jointly (forward filter, backward sample), ``P[j] | z`` from its conjugate
    Dirichlet (the transition counts), and each log-rate given ``z`` and the others by slice
    sampling (Neal 2003, stepping out) on its conditional ``Normal(log_rate_loc, log_rate_sd)
    x exp(n_k x - m_k e^x)`` (``n_k`` counts in ``m_k`` years of state ``k``), which is
    log-concave, cut to the interval between its neighbours.

    Returns ``name -> (n_chains, n_iter)``: ``rate0, rate1, ...`` and ``P<j><k>``, and ``"z"``:
    the drawn paths, ``(n_chains, n_iter, T)``.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(counts)
    T, C, K = len(y), n_chains, len(initial)
    chains = np.arange(C)
    log_rate = np.sort(rng.normal(log_rate_loc, log_rate_sd, (C, K)), axis=1)
    transition = rng.dirichlet(np.full(K, row_concentration), size=(C, K))
    out = {f"rate{k}": np.empty((C, n_iter)) for k in range(K)}
    out.update({f"P{j}{k}": np.empty((C, n_iter)) for j in range(K) for k in range(K)})
    out["z"] = np.empty((C, n_iter, T), dtype=np.int8)

    def conditional(x, n_k, m_k, lo, hi):
        inside = (x > lo) & (x < hi)
        with np.errstate(over="ignore"):
            f = -0.5 * ((x - log_rate_loc) / log_rate_sd) ** 2 + n_k * x - m_k * np.exp(x)
        return np.where(inside, f, -np.inf)

    for it in range(-burn, n_iter):
        # z | rates, P: forward filter, then backward sample.
        emission = st.poisson(np.exp(log_rate)[:, None, :]).pmf(y[None, :, None])  # (C, T, K)
        filtered = np.empty((C, T, K))
        message = np.broadcast_to(np.asarray(initial, dtype=float), (C, K))
        for t in range(T):
            if t > 0:
                message = np.einsum("cj,cjk->ck", message, transition)
            message = message * emission[:, t]
            message = message / message.sum(1, keepdims=True)
            filtered[:, t] = message
        z = np.empty((C, T), dtype=int)
        u = rng.random((C, T))
        for t in range(T - 1, -1, -1):
            p = (
                filtered[:, t]
                if t == T - 1
                else filtered[:, t] * transition[chains, :, z[:, t + 1]]
            )
            cdf = np.cumsum(p / p.sum(1, keepdims=True), axis=1)
            z[:, t] = (u[:, t, None] > cdf[:, :-1]).sum(1)
        # P | z
        pairs = np.zeros((C, K, K))
        np.add.at(pairs, (chains[:, None], z[:, :-1], z[:, 1:]), 1.0)
        g = rng.gamma(row_concentration + pairs)
        transition = g / g.sum(2, keepdims=True)
        # log_rate_k | z, the other log-rates: slice sampling.
        onehot = z[..., None] == np.arange(K)
        n_all, m_all = np.einsum("ctk,t->ck", onehot, y), onehot.sum(1)
        for k in range(K):
            n_k, m_k, x = n_all[:, k], m_all[:, k], log_rate[:, k]
            lo = log_rate[:, k - 1] if k > 0 else np.full(C, -np.inf)
            hi = log_rate[:, k + 1] if k < K - 1 else np.full(C, np.inf)
            level = conditional(x, n_k, m_k, lo, hi) - rng.exponential(size=C)
            width = 0.5
            left = x - width * rng.random(C)
            right = left + width
            for _ in range(200):
                grow = conditional(left, n_k, m_k, lo, hi) > level
                if not grow.any():
                    break
                left = np.where(grow, left - width, left)
            for _ in range(200):
                grow = conditional(right, n_k, m_k, lo, hi) > level
                if not grow.any():
                    break
                right = np.where(grow, right + width, right)
            pending = np.ones(C, dtype=bool)
            while pending.any():
                proposal = left + (right - left) * rng.random(C)
                accept = pending & (conditional(proposal, n_k, m_k, lo, hi) > level)
                x = np.where(accept, proposal, x)
                pending &= ~accept
                left = np.where(pending & (proposal < x), proposal, left)
                right = np.where(pending & (proposal >= x), proposal, right)
            log_rate[:, k] = x
        if it < 0:
            continue
        for k in range(K):
            out[f"rate{k}"][:, it] = np.exp(log_rate[:, k])
            for j in range(K):
                out[f"P{j}{k}"][:, it] = transition[:, j, k]
        out["z"][:, it] = z
    return out


# The N-mixture model of the truncation tests: lam ~ Gamma(2, rate 0.5), p ~ Beta(2, 2),
# N_i ~ Poisson(lam), y_ij ~ Bin(N_i, p).
N_MIXTURE_PRIOR = {"lam": (2.0, 0.5), "p": (2.0, 2.0)}


def n_mixture_site_loglik(y, lam, p, n_max=2000):
    """``sum_i log sum_{n < n_max} Pois(n; lam) prod_j Bin(y_ij; n, p)`` by brute force (scipy)."""
    n = np.arange(n_max)
    y = np.asarray(y)
    terms = st.poisson(lam).logpmf(n)[:, None] + st.binom(n[:, None, None], p).logpmf(y).sum(-1)
    return float(logsumexp(terms, axis=0).sum())


def n_mixture_logdensity(y, lam, p, n_max=2000):
    """The N-mixture's log-density at ``(lam, p)`` with the counts summed out to ``n_max``."""
    (a, rate), (b1, b2) = N_MIXTURE_PRIOR["lam"], N_MIXTURE_PRIOR["p"]
    prior = st.gamma(a, scale=1 / rate).logpdf(lam) + st.beta(b1, b2).logpdf(p)
    return prior + n_mixture_site_loglik(y, lam, p, n_max)


def n_mixture_posterior(y, lam_max=40.0, n_lam=600, n_p=300, n_max=300):
    """Posterior means and standard deviations of ``lam`` and ``p`` by 2-D quadrature (midpoint
    rule over ``(0, lam_max] x (0, 1)``), the counts summed to ``n_max``.

    The likelihood is a matrix product: per ``p``, the sites' binomial products over ``n``; per
    ``lam``, the Poisson weights over ``n``.  Returns ``{"lam": (mean, sd), "p": (mean, sd),
    "edge": mass in the last 1% of the lam range}``.
    """
    y = np.asarray(y)
    lam = (np.arange(n_lam) + 0.5) * lam_max / n_lam
    p = (np.arange(n_p) + 0.5) / n_p
    n = np.arange(n_max)
    # log prod_j Bin(y_ij; n, p): (n_p, S, n), a few values of p at a time (the (n_p, S, n, J)
    # array and scipy's temporaries would hold hundreds of MB)
    log_b = np.concatenate(
        [
            st.binom(n[None, None, :, None], chunk[:, None, None, None])
            .logpmf(y[None, :, None, :])
            .sum(-1)
            for chunk in np.array_split(p, 10)
        ]
    )
    shift_b = log_b.max(axis=-1, keepdims=True)
    log_pois = st.poisson(lam[:, None]).logpmf(n[None, :])  # (n_lam, n)
    shift_p = log_pois.max(axis=-1, keepdims=True)
    sums = np.exp(log_pois - shift_p) @ np.exp(log_b - shift_b).reshape(-1, n_max).T
    with np.errstate(divide="ignore"):
        log_sites = np.log(sums).reshape(n_lam, n_p, -1) + shift_p[:, :, None]
    log_sites = log_sites + shift_b[None, :, :, 0]
    (a, rate), (b1, b2) = N_MIXTURE_PRIOR["lam"], N_MIXTURE_PRIOR["p"]
    log_post = (
        log_sites.sum(-1)
        + st.gamma(a, scale=1 / rate).logpdf(lam)[:, None]
        + st.beta(b1, b2).logpdf(p)[None, :]
    )
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    out = {}
    for name, grid, marginal in (("lam", lam, w.sum(1)), ("p", p, w.sum(0))):
        mean = np.sum(marginal * grid)
        out[name] = (mean, np.sqrt(np.sum(marginal * (grid - mean) ** 2)))
    out["edge"] = w[-n_lam // 100 :].sum()
    return out


def every_variable(sampler) -> list[str]:
    """``var_names`` that keep every variable's draws, the per-observation ones included (by
    default `Sampler.sample` gives their posterior probabilities instead)."""
    return [*sampler.latent, *sampler.marginalized, *sampler.derived]


def load_example(name: str):
    """Import ``examples/<name>.py`` (examples/ is not a package)."""
    import importlib.util
    import sys
    from pathlib import Path

    module_name = f"examples_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def conjugate_regression(n: int = 20, p: int = 3, seed: int = 0):
    """A normal regression ``y ~ N(X @ beta, 1)``, ``beta ~ N(0, I)``: ``(outputs, observed,
    mean, cov)`` with the exact posterior ``N(mean, cov)``, ``cov = (I + X^T X)^-1``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = X @ np.linspace(1.0, -0.5, p) + rng.normal(size=n)
    srng = at.random.RandomStream(seed)
    beta_rv = srng.normal(0, 1, size=p, name="beta")
    y_rv = srng.normal(X @ beta_rv, 1.0, name="y")
    cov = np.linalg.inv(np.eye(p) + X.T @ X)
    return {"y": y_rv}, {y_rv: y}, cov @ X.T @ y, cov


EIGHT_SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
EIGHT_SCHOOLS_SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def eight_schools(seed: int = 0):
    """Eight schools, non-centered: ``(outputs, observed)``."""
    srng = at.random.RandomStream(seed)
    mu_rv = srng.normal(0, 5, name="mu")
    tau_rv = srng.halfcauchy(0, 5, name="tau")
    z_rv = srng.normal(0, 1, size=8, name="z")
    y_rv = srng.normal(mu_rv + tau_rv * z_rv, EIGHT_SCHOOLS_SIGMA, name="y")
    return {"y": y_rv}, {y_rv: EIGHT_SCHOOLS_Y}
