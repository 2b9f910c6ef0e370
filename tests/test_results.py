"""What a run gives back besides the draws (`aemix.results`): the log_likelihood group, reprs."""

import aesara.tensor as at
import arviz as az
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import aemix
from aemix.errors import ValuesError
from tests.helpers import every_variable

MIXTURE_Y = np.array([-1.3, -0.8, -1.1, 0.9, 1.4, 1.2, -0.2, 2.0])
PLAIN_Z = np.array([0.3, -0.1, 0.5])
WEIGHTS = np.array([0.4, 0.6])
Y_SCALE = 0.7


@pytest.fixture(scope="module")
def mixture_run():
    """A two-component normal mixture with one membership per observation (summed per element),
    beside a plain observed normal whose scale is latent."""
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(np.array([-1.0, 1.0]), 1.0, name="mu")
    s_rv = srng.halfnormal(1.0, name="s")
    I_rv = srng.categorical(WEIGHTS, size=8, name="I")
    y_rv = srng.normal(mu_rv[I_rv], Y_SCALE, name="y")
    z_rv = srng.normal(mu_rv[0] + mu_rv[1], s_rv, size=3, name="z")
    sampler = aemix.build_sampler([y_rv, z_rv], observed={y_rv: MIXTURE_Y, z_rv: PLAIN_Z})
    return sampler, sampler.sample(
        200, n_chains=4, seed=0, warmup=200, start="prior", var_names=every_variable(sampler)
    )


def _brute_force_log_likelihood(draws):
    mu, s = draws["mu"], draws["s"]
    y = stats.norm.logpdf(MIXTURE_Y[:, None], mu[:, :, None, :], Y_SCALE)
    y = logsumexp(np.log(WEIGHTS) + y, axis=-1)
    z = stats.norm.logpdf(PLAIN_Z, (mu[..., 0] + mu[..., 1])[..., None], s[..., None])
    return {"y": y, "z": z}


def test_the_log_likelihood_is_the_marginal_density_of_each_observation(mixture_run):
    _, result = mixture_run
    expected = _brute_force_log_likelihood(result.draws)
    assert set(result.log_likelihood) == {"y", "z"}
    assert result.log_likelihood["y"].shape == (4, 200, 8)
    assert result.log_likelihood["z"].shape == (4, 200, 3)
    for name in ("y", "z"):
        np.testing.assert_allclose(result.log_likelihood[name], expected[name], rtol=0, atol=1e-8)


@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")
def test_loo_runs_on_the_inference_data_and_agrees_with_the_brute_force(mixture_run):
    _, result = mixture_run
    idata = result.to_inference_data()
    assert set(idata.log_likelihood.data_vars) == {"y", "z"}
    expected = _brute_force_log_likelihood(result.draws)
    brute = az.from_dict(posterior=dict(result.draws), log_likelihood=expected)
    for name in ("y", "z"):
        loo = az.loo(idata, var_name=name)
        reference = az.loo(brute, var_name=name)
        assert abs(loo.elpd_loo - reference.elpd_loo) < 1e-8
        # Leaving a point out can only lower its predictive density: below the in-sample
        # sum_i log mean_s exp(ll_is).
        ll = expected[name].reshape(-1, expected[name].shape[-1])
        in_sample = np.sum(logsumexp(ll, axis=0) - np.log(len(ll)))
        assert loo.elpd_loo < in_sample
    assert np.isfinite(az.waic(idata, var_name="y").elpd_waic)


def test_a_single_observed_variable_needs_no_var_name():
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    y_rv = srng.normal(mu_rv, 1.0, size=5, name="y")
    y = np.array([0.1, -0.4, 0.3, 0.9, 0.2])
    sampler = aemix.build_sampler(y_rv, observed={y_rv: y})
    result = sampler.sample(100, n_chains=4, seed=1, warmup=100, start="prior")
    loo = az.loo(result.to_inference_data())
    expected = stats.norm.logpdf(y, result.draws["mu"][..., None], 1.0)
    np.testing.assert_allclose(result.log_likelihood["y"], expected, rtol=0, atol=1e-8)
    assert np.isfinite(loo.elpd_loo)
    assert "log_likelihood" not in result.to_inference_data(log_likelihood=False).groups()


def test_two_observations_of_one_membership_are_one_point_per_element():
    # z_i feeds y1[i] and y2[i]: log sum_k P(z_i = k) p(y1_i | k) p(y2_i | k) per i, under y1.
    y1 = np.array([-1.8, 0.2, 2.5, -0.4])
    y2 = np.array([1, 4, 7, 2])
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 3.0, size=2, name="mu")
    z_rv = srng.categorical(np.array([0.4, 0.6]), size=4, name="z")
    y1_rv = srng.normal(mu_rv[z_rv], 1.0, name="y1")
    y2_rv = srng.poisson(at.as_tensor(np.array([1.0, 5.0]))[z_rv], name="y2")
    sampler = aemix.build_sampler([y1_rv, y2_rv], observed={y1_rv: y1, y2_rv: y2})
    result = sampler.sample(30, n_chains=2, seed=2, warmup=30, start="prior", diagnose=False)
    assert set(result.log_likelihood) == {"y1"}
    mu = result.draws["mu"]
    per_k = (
        np.log([0.4, 0.6])
        + stats.norm.logpdf(y1[:, None], mu[..., None, :], 1.0)
        + stats.poisson.logpmf(y2[:, None], np.array([1.0, 5.0]))
    )
    expected = logsumexp(per_k, axis=-1)
    assert result.log_likelihood["y1"].shape == (2, 30, 4)
    np.testing.assert_allclose(result.log_likelihood["y1"], expected, rtol=0, atol=1e-8)


def test_a_change_point_counts_as_one_point():
    # One discrete variable for the whole observed array: the marginal density is one term.
    counts = np.array([4, 5, 3, 6, 1, 0, 2, 1])
    srng = at.random.RandomStream(0)
    tau_rv = srng.integers(0, 8, name="tau")
    early_rv = srng.gamma(2.0, 1.0, name="early")
    late_rv = srng.gamma(2.0, 1.0, name="late")
    y_rv = srng.poisson(at.switch(at.arange(8) < tau_rv, early_rv, late_rv), name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: counts})
    result = sampler.sample(50, n_chains=2, seed=2, warmup=50, start="prior")
    early, late = result.draws["early"], result.draws["late"]
    rates = np.where(
        np.arange(8) < np.arange(8)[:, None], early[..., None, None], late[..., None, None]
    )
    per_tau = stats.poisson.logpmf(counts, rates).sum(axis=-1) - np.log(8)
    expected = logsumexp(per_tau, axis=-1)
    assert result.log_likelihood["y"].shape == (2, 50)
    np.testing.assert_allclose(result.log_likelihood["y"], expected, rtol=0, atol=1e-8)


def test_reprs_name_the_variables_and_their_shapes_without_arrays(mixture_run):
    sampler, result = mixture_run
    text = repr(result)
    assert text.startswith("SampleResult(")
    for part in ("mu: (2,)", "s: ()", "I: (8,)", "n_chains=4", "n_samples=200", "loop='fused'"):
        assert part in text
    assert f"acceptance_rate={result.acceptance_rate.mean():.3f}" in text
    assert "array" not in text and "[" not in text and len(text) < 200
    summary = sampler.sample(
        30,
        n_chains=3,
        seed=3,
        warmup=30,
        summary_only=True,
        start="prior",
        var_names=every_variable(sampler),
    )
    text = repr(summary)
    assert text.startswith("SampleSummary(")
    for part in ("mu: (2,)", "s: ()", "I: (8,)", "n_chains=3", "n_samples=30"):
        assert part in text
    assert f"acceptance_rate={summary.acceptance_rate.mean():.3f}" in text
    assert "array" not in text and "[" not in text


def _mean_and_se(stat: np.ndarray) -> tuple[float, float]:
    """Mean of a ``(chains, draws)`` statistic and its Monte Carlo standard error (ArviZ's ESS)."""
    ess = float(az.ess(az.convert_to_dataset(stat)).to_array().values.squeeze())
    return float(stat.mean()), float(stat.std() / np.sqrt(ess))


def test_the_posterior_predictive_of_a_conjugate_normal_is_exact():
    # mu ~ N(0, 2^2), y_i ~ N(mu, 1): the predictive of each y_i is N(m_n, s_n^2 + 1).
    y = np.array([0.8, 1.9, 1.1, 0.4, 1.6, 2.2, 0.9, 1.3, 1.0, 1.7])
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 2.0, name="mu")
    y_rv = srng.normal(mu_rv, 1.0, size=10, name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: y})
    result = sampler.sample(1000, n_chains=8, seed=4, warmup=500, start="prior")
    state = y_rv.owner.inputs[0].get_value().bit_generator.state
    predictive = sampler.posterior_predictive(result, seed=5)
    assert y_rv.owner.inputs[0].get_value().bit_generator.state == state
    assert predictive["y"].shape == (8, 1000, 10)
    precision = 1 / 2.0**2 + len(y)
    m_n, v_n = y.sum() / precision, 1 / precision
    mean, se = _mean_and_se(predictive["y"].mean(axis=-1))
    print(f"predictive mean {mean:.4f} +- {se:.4f} (exact {m_n:.4f})")
    assert abs(mean - m_n) < 5 * se
    variance, se = _mean_and_se(((predictive["y"] - m_n) ** 2).mean(axis=-1))
    print(f"predictive variance {variance:.4f} +- {se:.4f} (exact {v_n + 1:.4f})")
    assert abs(variance - (v_n + 1)) < 5 * se
    # Fresh draws per draw, the same ones for the same seed, and the model's generators untouched.
    again = sampler.posterior_predictive(result, seed=5)
    np.testing.assert_array_equal(again["y"], predictive["y"])
    other = sampler.posterior_predictive(result, seed=6)
    assert not np.array_equal(other["y"], predictive["y"])
    # The same model given other data (or another model) refuses this result: its draws are
    # not that posterior's.
    srng = at.random.RandomStream(0)
    mu2 = srng.normal(0.0, 2.0, name="mu")
    y2 = srng.normal(mu2, 1.0, size=10, name="y")
    other_data = aemix.build_sampler(y2, observed={y2: y + 1}, mode="FAST_COMPILE")
    with pytest.raises(ValuesError, match="'y'.*other observed data"):
        other_data.posterior_predictive(result, seed=0)
    mu3 = srng.normal(0.0, 2.0, size=2, name="mu")
    y3 = srng.normal(mu3.sum(), 1.0, size=10, name="y")
    other_model = aemix.build_sampler(y3, observed={y3: y}, mode="FAST_COMPILE")
    with pytest.raises(ValuesError, match="'mu'.*another model"):
        other_model.posterior_predictive(result, seed=0)


def test_the_posterior_predictive_follows_the_drawn_memberships(mixture_run):
    sampler, result = mixture_run
    predictive = sampler.posterior_predictive(result, seed=0)
    assert predictive["y"].shape == (4, 200, 8) and predictive["z"].shape == (4, 200, 3)
    # y_i given I_i is N(mu[I_i], 0.7): standardized residuals are standard normal.
    mu = np.take_along_axis(result.draws["mu"], result.draws["I"], axis=-1)
    residuals = (predictive["y"] - mu) / Y_SCALE
    assert abs(residuals.mean()) < 5 / np.sqrt(residuals.size)
    assert abs(residuals.var() - 1) < 5 * np.sqrt(2 / residuals.size)


def test_rows_that_share_a_membership_are_one_point_each():
    """``y[i, :] ~ N(mu[z_i, :], 1)``: the columns of a row read one membership, so the
    pointwise log-likelihood has one term per row, each the row's marginal density."""
    rng = np.random.default_rng(5)
    weights, data = np.array([0.4, 0.6]), rng.normal(size=(6, 3))
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 2.0, size=(2, 3), name="mu")
    z_rv = srng.categorical(weights, size=6, name="z")
    y_rv = srng.normal(mu_rv[z_rv, :], 1.0, name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: data}, mode="FAST_COMPILE")
    result = sampler.sample(10, n_chains=2, warmup=50, seed=1, loop="scan")
    mu = result.draws["mu"]
    per_row = np.stack(
        [stats.norm(mu[..., k, None, :], 1).logpdf(data).sum(-1) for k in range(2)], axis=-1
    )
    expected = logsumexp(np.log(weights) + per_row, axis=-1)
    assert result.log_likelihood["y"].shape == (2, 10, 6)
    np.testing.assert_allclose(result.log_likelihood["y"], expected, rtol=1e-10)
    idata = result.to_inference_data(dims={"y": ["row", "column"]})
    assert idata.log_likelihood["y"].dims == ("chain", "draw", "row")
    assert np.isfinite(az.loo(idata).elpd_loo)
