"""Recovery of the summed-out variables (`aemix.recovery`), checked against brute-force posteriors.

Each model here failed before the recovery was made outermost-first with private copies for aeppl:
a latent continuous child was ignored (the conditional was the prior), and two discrete latents
feeding one observation, or nested mixtures, raised ``KeyError`` in ``sample()``.
"""

import itertools

import aesara.tensor as at
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logsumexp

import aemix

FAST = "FAST_COMPILE"


def _normalize(log_w):
    log_w = np.asarray(log_w, dtype=float)
    return np.exp(log_w - logsumexp(log_w, axis=-1, keepdims=True))


def test_a_latent_continuous_child_enters_the_conditional():
    m, s = np.array([-1.0, 2.0]), np.array([1.0, 0.5])
    srng = at.random.RandomStream(0)
    z_rv = srng.bernoulli(np.float64(0.3), name="z")
    x_rv = srng.normal(at.as_tensor(m)[z_rv], at.as_tensor(s)[z_rv], name="x")
    y_rv = srng.normal(x_rv, 1.0, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: 1.0}, mode=FAST)
    result = sampler.sample(20, n_chains=3, seed=1, warmup=10, loop="scan", start="prior")
    x = result.draws["x"]
    exact = _normalize(
        np.stack(
            [
                np.log(0.7) + st.norm(m[0], s[0]).logpdf(x),
                np.log(0.3) + st.norm(m[1], s[1]).logpdf(x),
            ],
            axis=-1,
        )
    )
    np.testing.assert_allclose(result.conditional_probabilities["z"], exact, rtol=1e-9, atol=1e-12)


def _two_bernoullis(p_a, p_b, mode=FAST):
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    a_rv = srng.bernoulli(np.float64(p_a), name="a")
    b_rv = srng.bernoulli(np.float64(p_b), name="b")
    y_rv = srng.normal(mu_rv + a_rv + 2.0 * b_rv, 1.0, name="y")
    return aemix.build_sampler(y_rv, {y_rv: 1.0}, mode=mode)


def _two_bernoullis_log_joint(mu, p_a, p_b):
    """Brute force: log P(a, b, y = 1 | mu) at each draw of mu, configurations (a, b) last."""
    return np.stack(
        [
            np.log([1 - p_a, p_a][a])
            + np.log([1 - p_b, p_b][b])
            + st.norm(mu + a + 2 * b, 1).logpdf(1.0)
            for a, b in itertools.product((0, 1), (0, 1))
        ],
        axis=-1,
    )


def test_two_discrete_latents_of_one_observation_are_drawn_jointly_from_their_posterior():
    p_a, p_b = 0.3, 0.6
    sampler = _two_bernoullis(p_a, p_b)
    result = sampler.sample(40, n_chains=4, seed=2, warmup=20, loop="scan", start="prior")
    mu = result.draws["mu"]
    log_joint = _two_bernoullis_log_joint(mu, p_a, p_b)
    joint = _normalize(log_joint).reshape(*mu.shape, 2, 2)
    # The outermost variable's conditional is its marginal posterior; the inner one's is given the
    # outer draw.
    outer = sampler.marginalized[-1]  # the last summed out encloses the others
    probs = result.conditional_probabilities
    a_draw, b_draw = result.draws["a"], result.draws["b"]
    if outer == "a":
        np.testing.assert_allclose(probs["a"][..., 1], joint[..., 1, :].sum(-1), rtol=1e-9)
        given = np.take_along_axis(joint, a_draw[..., None, None], axis=-2)[..., 0, :]
        np.testing.assert_allclose(probs["b"], given / given.sum(-1, keepdims=True), rtol=1e-9)
    else:
        np.testing.assert_allclose(probs["b"][..., 1], joint[..., :, 1].sum(-1), rtol=1e-9)
        given = np.take_along_axis(joint, b_draw[..., None, None], axis=-1)[..., 0]
        np.testing.assert_allclose(probs["a"], given / given.sum(-1, keepdims=True), rtol=1e-9)


@pytest.mark.parametrize("loop", ["scan", "fused"])
def test_joint_draws_of_two_discrete_latents_match_the_posterior(loop):
    # Frequencies of the four configurations against the exact posterior averaged over the mu
    # draws (Rao-Blackwell); the tolerance is 5 binomial standard errors per configuration.
    p_a, p_b = 0.3, 0.6
    sampler = _two_bernoullis(p_a, p_b, mode=None)
    result = sampler.sample(500, n_chains=40, seed=3, warmup=300, loop=loop, start="prior")
    mu = result.draws["mu"]
    log_joint = _two_bernoullis_log_joint(mu, p_a, p_b)
    expected = _normalize(log_joint).mean(axis=(0, 1))
    config = 2 * result.draws["a"] + result.draws["b"]
    n = config.size
    for k in range(4):
        freq = np.mean(config == k)
        assert abs(freq - expected[k]) < 5 * np.sqrt(expected[k] * (1 - expected[k]) / n) + 1e-3


def test_nested_mixture_recovers_the_inner_index_given_the_outer():
    w, v = np.array([0.4, 0.6]), np.array([0.3, 0.7])
    loc, scale = np.array([-1.0, 2.0]), np.array([0.5, 1.5])
    srng = at.random.RandomStream(0)
    N_rv = srng.normal(loc, scale, name="N")
    J_rv = srng.categorical(v, name="J")
    X_rv = srng.normal(4.0, 2.0, name="X")
    I_rv = srng.categorical(w, name="I")
    Y_rv = at.stack([X_rv, N_rv[J_rv]])[I_rv]
    sampler = aemix.build_sampler({"Y": Y_rv}, mode=FAST)
    result = sampler.sample(30, n_chains=4, seed=4, warmup=10, loop="scan", start="prior")
    y = result.draws["Y"]
    inner = np.log(v) + st.norm(loc, scale).logpdf(y[..., None])
    outer = np.stack(
        [np.log(w[0]) + st.norm(4.0, 2.0).logpdf(y), np.log(w[1]) + logsumexp(inner, -1)], -1
    )
    probs = result.conditional_probabilities
    np.testing.assert_allclose(probs["I"], _normalize(outer), rtol=1e-9)
    # J given I: its posterior given Y when the inner mixture was selected, else its prior.
    selected = (result.draws["I"] == 1)[..., None]
    expected_j = np.where(selected, _normalize(inner), v)
    np.testing.assert_allclose(probs["J"], expected_j, rtol=1e-9)


def _membership_model(n=20):
    # y_i ~ w N(mu, 1) + (1 - w) N(0, 1), mu ~ N(2, 1): one latent, so quadrature is exact.
    y = np.r_[np.random.default_rng(3).normal(2.5, 1.0, n // 2), np.zeros(n - n // 2)]
    srng = at.random.RandomStream(0)
    mu = srng.normal(2.0, 1.0, name="mu")
    z = srng.bernoulli(0.4, size=n, name="z")
    y_rv = srng.normal(at.switch(z, mu, 0.0), 1.0, name="y")
    return aemix.build_sampler({"y": y_rv}, observed={y_rv: y}), y


def _exact_memberships(y):
    grid = np.linspace(-6.0, 10.0, 4001)
    one = np.log(0.4) + st.norm(grid[:, None], 1.0).logpdf(y)
    zero = np.log(0.6) + st.norm(0.0, 1.0).logpdf(y)[None, :]
    per_obs = np.logaddexp(one, zero)
    log_post = st.norm(2.0, 1.0).logpdf(grid) + per_obs.sum(axis=1)
    weights = np.exp(log_post - logsumexp(log_post))
    return weights @ np.exp(one - per_obs)


@pytest.mark.parametrize("loop", ["fused", "scan"])
def test_memberships_are_given_as_rao_blackwellized_probabilities_by_default(loop):
    sampler, y = _membership_model()
    assert sampler.per_observation == ("z",)
    result = sampler.sample(300, n_chains=16, seed=0, start="prior", loop=loop)
    assert "z" not in result.draws  # no per-draw memberships unless asked for
    p = result.posterior_probabilities["z"]
    se = result.posterior_probabilities_se["z"]
    assert p.shape == (20, 2) and np.allclose(p.sum(axis=-1), 1.0)
    exact = _exact_memberships(y)
    assert np.all(np.abs(p[:, 1] - exact) < 5 * se[:, 1] + 1e-6)
    # The average of the per-draw conditionals, computed batch by batch.
    np.testing.assert_allclose(
        p, result.conditional_probabilities["z"].mean(axis=(0, 1)), rtol=1e-10, atol=1e-12
    )
    # Named, the draws are kept, and follow the same probabilities.
    kept = sampler.sample(300, n_chains=16, seed=0, start="prior", loop=loop, var_names=["mu", "z"])
    np.testing.assert_array_equal(kept.draws["mu"], result.draws["mu"])
    # Given the same draws of mu, the two differ by the Bernoulli draws' noise alone, whose
    # variance E[p (1 - p)] / N is at most p_bar (1 - p_bar) / N.
    frequency = kept.draws["z"].mean(axis=(0, 1))
    sd = np.sqrt(p[:, 1] * (1 - p[:, 1]) / kept.draws["z"][..., 0].size)
    assert np.all(np.abs(frequency - p[:, 1]) < 5 * sd + 1e-9)
