"""The tempered start (`aemix.tempering`): the evidence against exact values, and the start that
finds a posterior far narrower than its prior."""

import aesara.tensor as at
import numpy as np
import pytest
import scipy.stats as st

import aemix
from tests.helpers import stat_scale


def test_the_evidence_of_a_conjugate_normal_model_is_exact_within_its_error():
    y = np.random.default_rng(0).normal(1.5, 1.0, size=20)
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 2.0, name="mu")
    y_rv = srng.normal(mu_rv, 1.0, size=20, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: y})
    n_particles = max(512, int(2000 * stat_scale()))
    result = sampler.sample(
        200, n_chains=16, seed=0, warmup=200, start="tempered", n_particles=n_particles
    )
    exact = st.multivariate_normal(np.zeros(20), np.eye(20) + 4.0 * np.ones((20, 20))).logpdf(y)
    assert np.isfinite(result.log_evidence_se) and result.log_evidence_se < 0.2
    assert abs(result.log_evidence - exact) < 5 * result.log_evidence_se + 0.02
    assert result.tempering.betas[0] == 0.0 and result.tempering.betas[-1] == 1.0
    # The chains start at the posterior: their first draws already have its mean.
    post_var = 1.0 / (1.0 / 4.0 + 20.0)
    post_mean = post_var * y.sum()
    first = result.draws["mu"][:, 0]
    assert abs(first.mean() - post_mean) < 5 * np.sqrt(post_var / 16)


def test_a_model_without_data_has_evidence_one(seed_sampler):
    result = seed_sampler.sample(
        20, n_chains=8, seed=0, warmup=10, start="tempered", n_particles=64
    )
    assert result.log_evidence == 0.0
    assert result.tempering.betas == [0.0, 1.0]


def test_a_posterior_far_narrower_than_the_prior_is_found():
    # A regression on predictors of scale 100 with a wide prior: prior-started chains stall far
    # from the posterior (and the diagnostics say so); the tempered start reaches it.
    rng = np.random.default_rng(2)
    x = rng.normal(100.0, 15.0, size=200)
    y = 20.0 + 0.5 * x + rng.normal(0.0, 15.0, size=200)
    srng = at.random.RandomStream(0)
    beta_rv = srng.normal(0.0, 100.0, size=2, name="beta")
    y_rv = srng.normal(beta_rv[0] + beta_rv[1] * x, 15.0, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: y})
    result = sampler.sample(500, n_chains=8, seed=1, warmup=500, start="tempered")
    design = np.c_[np.ones(200), x]
    precision = design.T @ design / 225.0 + np.eye(2) / 1e4
    cov = np.linalg.inv(precision)
    mean = cov @ design.T @ y / 225.0
    draws = result.draws["beta"]
    import arviz as az

    for j in range(2):
        ess = float(az.ess(draws[..., j]))
        assert abs(draws[..., j].mean() - mean[j]) < 5 * np.sqrt(cov[j, j] / ess)


def test_tempered_start_refuses_initial_values(seed_sampler):
    with pytest.raises(ValueError, match="tempered"):
        seed_sampler.sample(5, start="tempered", initial_values={"Y": 0.0})
    with pytest.raises(ValueError, match="start"):
        seed_sampler.sample(5, start="smc")


def test_the_evidence_of_the_change_point_model_is_exact_within_its_error():
    # Coal mining: the change point is summed out by the prefix-sum rewrite, the gamma rates
    # integrate out in closed form, so p(y) = sum_tau p(tau) prod_segments NegBin-like terms.
    from scipy.special import gammaln, logsumexp

    from examples.coal_mining import RATE_RATE, RATE_SHAPE, load_counts, model

    _, counts = load_counts()
    outputs, observed = model(counts)
    sampler = aemix.build_sampler(outputs, observed)
    n_particles = max(512, int(2000 * stat_scale()))
    result = sampler.sample(
        100, n_chains=16, seed=3, warmup=100, start="tempered", n_particles=n_particles
    )
    T, a, b = len(counts), RATE_SHAPE, RATE_RATE
    t = np.arange(T)
    before = np.concatenate([[0], np.cumsum(counts)])[:T]
    after = counts.sum() - before

    def segment(total, length):
        return a * np.log(b) - gammaln(a) + gammaln(a + total) - (a + total) * np.log(b + length)

    log_terms = segment(before, t) + segment(after, T - t) - np.log(T)
    exact = logsumexp(log_terms) - gammaln(counts + 1.0).sum()
    assert np.isfinite(result.log_evidence_se) and result.log_evidence_se < 0.2
    assert abs(result.log_evidence - exact) < 5 * result.log_evidence_se + 0.02
