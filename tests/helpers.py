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
