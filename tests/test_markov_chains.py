"""Markov chains written as Python loops: exact marginal densities and exact joint state draws.

Each state ``z_t`` is summed out with the next state's enumeration among its children, so the
nested enumerations are the backward algorithm; the references here are hand-written forward
algorithms (log space) and forward-filtering backward-smoothing in NumPy.
"""

import aesara.tensor as at
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logsumexp

import aemix
from tests.helpers import stat_scale

FAST = "FAST_COMPILE"
P2 = np.array([[0.9, 0.1], [0.2, 0.8]])


def hidden_markov_model(data, transition, initial, mu_observed=None):
    """``z_0 ~ Cat(initial)``, ``z_t ~ Cat(P_t[z_{t-1}])``, ``y_t ~ N(mu[z_t], 1)``.

    ``transition`` is ``(K, K)`` or time-varying ``(T, K, K)``; ``mu`` is latent (``N(0, 1)``
    per state) unless ``mu_observed`` is given, then it is observed at that value.
    """
    k = len(initial)
    srng = at.random.RandomStream(0)
    mu = srng.normal(np.zeros(k), 1.0, name="mu")
    z = srng.categorical(initial, name="z0")
    observed = {} if mu_observed is None else {mu: mu_observed}
    ys = []
    for t, y_t in enumerate(data):
        if t > 0:
            p_t = transition[t] if transition.ndim == 3 else transition
            z = srng.categorical(at.as_tensor(p_t)[z], name=f"z{t}")
        y = srng.normal(mu[z], 1.0, name=f"y{t}")
        ys.append(y)
        observed[y] = y_t
    outputs = ys if mu_observed is None else [mu, *ys]
    return outputs, observed


def forward_messages(data, transition, initial, mu):
    """Log forward messages ``alpha_t(k) = log p(y_0..y_t, z_t = k)``."""
    emission = st.norm(mu[None, :], 1.0).logpdf(np.asarray(data)[:, None])
    alphas = [np.log(initial) + emission[0]]
    for t in range(1, len(data)):
        p_t = transition[t] if transition.ndim == 3 else transition
        alphas.append(logsumexp(alphas[-1][:, None] + np.log(p_t), axis=0) + emission[t])
    return np.array(alphas), emission


def forward_logdensity(data, transition, initial, mu):
    alphas, _ = forward_messages(data, transition, initial, mu)
    return st.norm(0.0, 1.0).logpdf(mu).sum() + logsumexp(alphas[-1])


def smoothed_marginals(data, transition, initial, mu):
    """``P(z_t = k | y)`` by forward-backward."""
    alphas, emission = forward_messages(data, transition, initial, mu)
    betas = np.zeros_like(alphas)
    for t in range(len(data) - 2, -1, -1):
        p_t = transition[t + 1] if transition.ndim == 3 else transition
        betas[t] = logsumexp(np.log(p_t) + (emission[t + 1] + betas[t + 1])[None, :], axis=1)
    log_post = alphas + betas
    return np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))


@pytest.mark.parametrize(
    "n_steps", [5, 50, pytest.param(200, marks=pytest.mark.slow, id="200-slow")]
)
def test_hidden_markov_model_density_is_the_forward_algorithm(n_steps):
    if n_steps == 200:
        n_steps = max(60, int(200 * stat_scale() ** 2))
    data = np.random.default_rng(n_steps).normal(size=n_steps)
    outputs, observed = hidden_markov_model(data, P2, np.array([0.5, 0.5]))
    sampler = aemix.build_sampler(outputs, observed, mode=FAST)
    assert sorted(sampler.marginalized) == sorted(f"z{t}" for t in range(n_steps))
    for mu in (np.array([-1.0, 1.0]), np.array([0.3, -2.0])):
        expected = forward_logdensity(data, P2, np.array([0.5, 0.5]), mu)
        np.testing.assert_allclose(sampler.logdensity({"mu": mu}), expected, rtol=1e-9)


def test_time_varying_three_state_chain_is_exact():
    n_steps, k = 30, 3
    rng = np.random.default_rng(3)
    transition = rng.dirichlet(np.ones(k), size=(n_steps, k))
    initial = np.array([0.2, 0.5, 0.3])
    data = rng.normal(size=n_steps) * 2
    outputs, observed = hidden_markov_model(data, transition, initial)
    sampler = aemix.build_sampler(outputs, observed, mode=FAST)
    mu = np.array([-2.0, 0.0, 1.5])
    expected = forward_logdensity(data, transition, initial, mu)
    np.testing.assert_allclose(sampler.logdensity({"mu": mu}), expected, rtol=1e-9)


def test_recovered_states_are_joint_posterior_draws():
    """With ``mu`` observed the states' posterior is exact forward-backward; the mean of each
    recovered state over the draws must match its smoothed marginal within Monte Carlo error
    (draws given the same continuous values are independent across chains and iterations)."""
    n_steps = 12
    mu = np.array([-1.0, 1.0])
    data = np.random.default_rng(1).normal(size=n_steps) + np.repeat([-1.0, 1.0, -1.0], 4)
    outputs, observed = hidden_markov_model(data, P2, np.array([0.5, 0.5]), mu_observed=mu)
    srng = at.random.RandomStream(1)
    nuisance = srng.normal(0.0, 1.0, name="nuisance")  # the kernel needs a latent to move
    sampler = aemix.build_sampler([*outputs, nuisance], observed, mode=FAST)
    result = sampler.sample(200, n_chains=8, warmup=50, seed=0, start="prior")
    exact = smoothed_marginals(data, P2, np.array([0.5, 0.5]), mu)[:, 1]
    n = 200 * 8
    for t in range(n_steps):
        draws = np.asarray(result.draws[f"z{t}"]).ravel()
        se = np.sqrt(exact[t] * (1 - exact[t]) / n)
        assert abs(draws.mean() - exact[t]) < 5 * se + 1e-12, (t, draws.mean(), exact[t])
