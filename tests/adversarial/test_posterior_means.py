"""Posterior means from aemix's draws against quadrature of the exact marginal, within 5 MCSE."""

from __future__ import annotations

import aesara.tensor as at
import arviz as az
import numpy as np
import pytest
import scipy.stats as st
from scipy.integrate import quad

import aemix
from tests.helpers import stat_scale

Y_OBS = 1.5
LOOPS = ["auto", "scan"]


def _posterior_mean(weight, f, lo=-30.0, hi=30.0):
    """E[f(t)] under the unnormalized density ``weight(t)`` (scipy quad)."""
    norm = quad(weight, lo, hi, limit=200, epsabs=0)[0]
    return quad(lambda t: f(t) * weight(t), lo, hi, limit=200, epsabs=0)[0] / norm


def _assert_within_mcse(draws: np.ndarray, exact: float, what: str) -> None:
    """``draws`` (chains, draws): mean within 5 Monte Carlo standard errors (ArviZ's ESS)."""
    ess = float(az.ess(draws))
    mcse = draws.std() / np.sqrt(ess)
    assert abs(draws.mean() - exact) <= 5 * mcse + 1e-12, (what, draws.mean(), exact, mcse, ess)


def _sample(sampler, loop, seed):
    return sampler.sample(
        max(100, int(400 * stat_scale())),
        n_chains=200,
        seed=seed,
        warmup=500,
        loop=loop,
        start="prior",
    )


@pytest.mark.slow
@pytest.mark.parametrize("loop", LOOPS)
def test_joint_vector_posterior_means(loop):
    # z ~ bernoulli(.3, size=2), theta ~ N(0, 2), y ~ N(theta + z.sum(), 1): z summed out jointly.
    srng = at.random.RandomStream(0)
    theta_rv = srng.normal(0.0, 2.0, name="theta")
    z_rv = srng.bernoulli(0.3, size=2, name="z")
    y_rv = srng.normal(theta_rv + z_rv.sum(), 1.0, name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: Y_OBS})
    result = _sample(sampler, loop, seed=21)
    prior_sum = np.array([0.49, 0.42, 0.09])  # P(z.sum() = 0, 1, 2)

    def per_sum(t):
        return st.norm.pdf(t, 0, 2) * prior_sum * st.norm.pdf(Y_OBS, t + np.arange(3), 1)

    weight = lambda t: per_sum(t).sum()  # noqa: E731
    _assert_within_mcse(result.draws["theta"], _posterior_mean(weight, lambda t: t), "theta")
    # E[z_i | y] = E[z.sum() | y] / 2 by symmetry; P(z_i = 1 | sum = 1) = 1/2.
    e_sum = _posterior_mean(weight, lambda t: per_sum(t) @ np.arange(3) / weight(t))
    for i in range(2):
        _assert_within_mcse(result.draws["z"][..., i].astype(float), e_sum / 2, f"z[{i}]")


@pytest.mark.slow
@pytest.mark.parametrize("loop", LOOPS)
def test_latent_child_posterior_means(loop):
    # z ~ bernoulli(.4), x ~ N(m[z], s[z]) latent, y ~ N(x, 1) observed.
    m, s = np.array([-1.0, 2.0]), np.array([0.8, 1.5])
    srng = at.random.RandomStream(0)
    z_rv = srng.bernoulli(0.4, name="z")
    x_rv = srng.normal(at.as_tensor(m)[z_rv], at.as_tensor(s)[z_rv], name="x")
    y_rv = srng.normal(x_rv, 1.0, name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: Y_OBS})
    assert sampler.latent == ("x",)
    result = _sample(sampler, loop, seed=22)

    def per_z(t):
        return np.array([0.6, 0.4]) * st.norm.pdf(t, m, s) * st.norm.pdf(Y_OBS, t, 1)

    weight = lambda t: per_z(t).sum()  # noqa: E731
    _assert_within_mcse(result.draws["x"], _posterior_mean(weight, lambda t: t), "x")
    p1 = _posterior_mean(weight, lambda t: per_z(t)[1] / weight(t))
    _assert_within_mcse(result.draws["z"].astype(float), p1, "z")


@pytest.mark.slow
@pytest.mark.parametrize("loop", LOOPS)
def test_two_discrete_latents_sharing_a_child_posterior_means(loop):
    # z0, z1 ~ bernoulli, each with its own child and one child reading both (see the report).
    c = np.array([0.0, 2.0])
    srng = at.random.RandomStream(0)
    theta_rv = srng.normal(0.0, 2.0, name="theta")
    z0_rv = srng.bernoulli(0.3, name="z0")
    z1_rv = srng.bernoulli(0.6, name="z1")
    y0_rv = srng.normal(theta_rv + at.as_tensor(c)[z0_rv], 1.0, name="y0")
    y1_rv = srng.normal(theta_rv + at.as_tensor(c)[z1_rv], 1.0, name="y1")
    y2_rv = srng.normal(theta_rv * z0_rv + at.as_tensor(c)[z1_rv], 1.0, name="y2")
    data = {y0_rv: 0.2, y1_rv: 1.8, y2_rv: 0.5}
    sampler = aemix.build_sampler([y0_rv, y1_rv, y2_rv], observed=data)
    result = _sample(sampler, loop, seed=23)
    prior = np.array([[0.7 * 0.4, 0.7 * 0.6], [0.3 * 0.4, 0.3 * 0.6]])
    a, b = np.meshgrid([0, 1], [0, 1], indexing="ij")

    def per_config(t):
        lik = (
            st.norm.pdf(0.2, t + c[a], 1)
            * st.norm.pdf(1.8, t + c[b], 1)
            * st.norm.pdf(0.5, t * a + c[b], 1)
        )
        return st.norm.pdf(t, 0, 2) * prior * lik

    weight = lambda t: per_config(t).sum()  # noqa: E731
    _assert_within_mcse(result.draws["theta"], _posterior_mean(weight, lambda t: t), "theta")

    def share(t, pick):
        # P(z = 1 | theta = t); where the density underflows the integrand is 0 whatever it is.
        w = weight(t)
        return pick(per_config(t)).sum() / w if w > 0 else 0.0

    p_z0 = _posterior_mean(weight, lambda t: share(t, lambda c: c[1]))
    p_z1 = _posterior_mean(weight, lambda t: share(t, lambda c: c[:, 1]))
    _assert_within_mcse(result.draws["z0"].astype(float), p_z0, "z0")
    _assert_within_mcse(result.draws["z1"].astype(float), p_z1, "z1")
