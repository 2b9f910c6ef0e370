"""The outputs a PyMC or NumPyro user expects: derived quantities, prior draws, ArviZ dims."""

import aesara.tensor as at
import numpy as np
import pytest
from scipy import stats

import aemix
from aemix.errors import ModelError, ValuesError
from tests.helpers import every_variable

FAST = "FAST_COMPILE"
SCHOOLS_Y = np.array([1.0, 2.0, -1.0])
MIXTURE_Y = np.array([1.0, 2.0, -1.0, 3.0])
LOOPS = ["scan", "fused"]


def _mode(loop: str):
    # The fused loop needs Aesara's C backend; the scan runs in any mode.
    return None if loop == "fused" else FAST


def _schools(loop: str):
    """A non-centered hierarchy with the centered effects ``theta`` asked for as an output."""
    srng = at.random.RandomStream(1)
    mu_rv = srng.normal(0.0, 5.0, name="mu")
    tau_rv = srng.halfnormal(0.0, 5.0, name="tau")
    z_rv = srng.normal(0.0, 1.0, size=3, name="z")
    theta = mu_rv + tau_rv * z_rv
    y_rv = srng.normal(theta, 1.0, name="y")
    return aemix.build_sampler({"y": y_rv, "theta": theta}, {y_rv: SCHOOLS_Y}, mode=_mode(loop))


@pytest.fixture(scope="module", params=LOOPS)
def schools(request):
    loop = request.param
    sampler = _schools(loop)
    return (
        loop,
        sampler,
        sampler.sample(100, n_chains=4, warmup=100, seed=0, loop=loop, start="prior"),
    )


def _theta(draws):
    return draws["mu"][..., None] + draws["tau"][..., None] * draws["z"]


def test_a_derived_quantity_is_the_formula_at_each_draw(schools):
    loop, sampler, result = schools
    assert result.loop == loop
    assert sampler.derived == ("theta",) and "theta" not in sampler.latent
    assert result.draws["theta"].shape == (4, 100, 3)
    np.testing.assert_allclose(result.draws["theta"], _theta(result.draws), rtol=0, atol=1e-12)
    posterior = result.to_inference_data().posterior
    assert posterior["theta"].shape == (4, 100, 3)


def test_a_derived_quantity_is_not_sampled_and_has_no_density(schools):
    _, sampler, _ = schools
    assert sampler.dim == 5  # z (3), tau, mu: theta adds no coordinate
    values = {"mu": 0.5, "tau": 1.5, "z": np.array([0.1, -0.4, 0.9])}
    theta = values["mu"] + values["tau"] * values["z"]
    exact = (
        stats.norm.logpdf(values["mu"], 0, 5)
        + stats.halfnorm.logpdf(values["tau"], 0, 5)
        + stats.norm.logpdf(values["z"]).sum()
        + stats.norm.logpdf(SCHOOLS_Y, theta, 1).sum()
    )
    assert sampler.logdensity(values) == pytest.approx(exact, rel=1e-12)
    with pytest.raises(ValuesError, match="'theta'.*not a latent"):
        sampler.logdensity({**values, "theta": theta})
    assert "derived (computed from each draw, not sampled):\n  theta: shape (3,)" in (
        sampler.explain()
    )


def test_var_names_selects_a_derived_quantity_alone(schools):
    loop, sampler, result = schools
    alone = sampler.sample(
        100, n_chains=4, warmup=100, seed=0, loop=loop, var_names=["theta"], start="prior"
    )
    assert set(alone.draws) == {"theta"}
    # The chains' moves do not depend on var_names: the same draws of theta (up to rounding: the
    # compiled record that computes theta differs with what else is kept).
    np.testing.assert_allclose(alone.draws["theta"], result.draws["theta"], rtol=1e-12, atol=1e-12)
    # (the log-likelihood needs every latent's draws)
    posterior = alone.to_inference_data(log_likelihood=False).posterior
    assert list(posterior.data_vars) == ["theta"]


def test_summary_only_keeps_the_running_moments_of_a_derived_quantity(schools):
    loop, sampler, result = schools
    summary = sampler.sample(
        100, n_chains=4, warmup=100, seed=0, loop=loop, summary_only=True, start="prior"
    )
    theta = result.draws["theta"]
    np.testing.assert_allclose(summary.mean["theta"], theta.mean(axis=1), rtol=0, atol=1e-10)
    np.testing.assert_allclose(summary.variance["theta"], theta.var(axis=1), rtol=1e-9)
    with pytest.raises(TypeError, match="SampleSummary.*sample without summary_only"):
        sampler.posterior_predictive(summary)


def _indexed_mixture(loop: str):
    """Per-observation memberships ``I`` summed out; ``w = 2 mu[I]`` reads them."""
    srng = at.random.RandomStream(2)
    mu_rv = srng.normal(0.0, 3.0, size=2, name="mu")
    I_rv = srng.categorical(np.array([0.3, 0.7]), size=4, name="I")
    y_rv = srng.normal(mu_rv[I_rv], 1.0, name="y")
    sampler = aemix.build_sampler(
        {"y": y_rv, "w": 2.0 * mu_rv[I_rv]}, {y_rv: MIXTURE_Y}, mode=_mode(loop)
    )
    return sampler, "w", lambda d: 2.0 * np.take_along_axis(d["mu"], d["I"], axis=-1)


def _doubled_bernoulli(loop: str):
    """A summed-out Bernoulli ``K`` and ``2 K``, unnamed in a list: named by the caller's
    identifier."""
    srng = at.random.RandomStream(3)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    K_rv = srng.bernoulli(0.4, name="K")
    y_rv = srng.normal(mu_rv + 3.0 * K_rv, 1.0, name="y")
    doubled = 2 * K_rv
    sampler = aemix.build_sampler([doubled, y_rv], {y_rv: 2.5}, mode=_mode(loop))
    return sampler, "doubled", lambda d: 2 * d["K"]


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("make", [_indexed_mixture, _doubled_bernoulli], ids=lambda f: f.__name__)
def test_a_derived_quantity_of_a_summed_out_variable_is_computed_from_its_draws(make, loop):
    sampler, name, formula = make(loop)
    assert sampler.derived == (name,) and sampler.marginalized
    result = sampler.sample(
        100,
        n_chains=4,
        warmup=100,
        seed=1,
        loop=loop,
        start="prior",
        var_names=every_variable(sampler),
    )
    assert result.loop == loop
    np.testing.assert_allclose(result.draws[name], formula(result.draws), rtol=0, atol=1e-12)
    # Kept alone, it still reads the discrete draws (made, not kept), the same ones.
    alone = sampler.sample(
        100, n_chains=4, warmup=100, seed=1, loop=loop, var_names=[name], start="prior"
    )
    np.testing.assert_array_equal(alone.draws[name], result.draws[name])


def test_a_derived_quantity_of_a_discrete_variable_nothing_depends_on_is_generated():
    # Nothing random depends on I (N is kept whole, so N[I] is no mixture): I and Y are drawn
    # forward from each draw of N (`aemix.generated`).
    srng = at.random.RandomStream(4)
    N_rv = srng.normal(np.array([-2.0, 3.0]), 1.0, name="N")
    I_rv = srng.categorical(np.array([0.3, 0.7]), name="I")
    sampler = aemix.build_sampler({"Y": N_rv[I_rv], "N": N_rv}, mode=FAST)
    assert sampler.latent == ("N",) and sampler.generated == ("I", "Y")
    result = sampler.sample(20, n_chains=4, seed=0, warmup=20, diagnose=False)
    chosen = np.take_along_axis(result.draws["N"], result.draws["I"][..., None], axis=-1)
    np.testing.assert_array_equal(result.draws["Y"], chosen[..., 0])


def test_a_derived_quantity_named_like_a_latent_is_refused():
    srng = at.random.RandomStream(5)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    y_rv = srng.normal(mu_rv, 1.0, name="y")
    with pytest.raises(ModelError, match="'mu'.*a latent and a derived variable share this name"):
        aemix.build_sampler({"y": y_rv, "mu": 2.0 * mu_rv}, {y_rv: 0.3}, mode=FAST)


def test_an_output_key_that_is_not_its_variables_name_is_refused():
    # Results are keyed by names: draws["obs"] would not exist for a variable named "y".
    srng = at.random.RandomStream(5)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    y_rv = srng.normal(mu_rv, 1.0, name="y")
    with pytest.raises(ModelError, match="'obs'.*names the variable 'y'"):
        aemix.build_sampler({"obs": y_rv}, {y_rv: 0.3}, mode=FAST)
    twice = 2.0 * mu_rv
    twice.name = "twice"
    with pytest.raises(ModelError, match="'dd'.*names the variable 'twice'"):
        aemix.build_sampler({"y": y_rv, "dd": twice}, {y_rv: 0.3}, mode=FAST)


def test_an_unnamed_derived_quantity_gets_a_plain_name():
    srng = at.random.RandomStream(6)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    y_rv = srng.normal(mu_rv, 1.0, name="y")
    sampler = aemix.build_sampler([y_rv, mu_rv**2], {y_rv: 0.3}, mode=FAST)
    assert sampler.derived == ("var_0",)


# -- prior draws -----------------------------------------------------------------------------

PRIOR_DRAWS = 20_000
P_K = 0.3


def _prior_model():
    """``mu ~ N(1, 2)``, ``K_i ~ Bernoulli(0.3)`` summed out, ``y_i ~ N(mu + 3 K_i, 1)`` observed,
    and the derived mean ``m = mu + 3 K``."""
    srng = at.random.RandomStream(7)
    mu_rv = srng.normal(1.0, 2.0, name="mu")
    K_rv = srng.bernoulli(P_K, size=3, name="K")
    m = mu_rv + 3.0 * K_rv
    y_rv = srng.normal(m, 1.0, name="y")
    sampler = aemix.build_sampler({"y": y_rv, "m": m}, {y_rv: SCHOOLS_Y}, mode=FAST)
    return sampler, y_rv


@pytest.fixture(scope="module")
def prior_model():
    return _prior_model()


def _assert_moments(draws, mean, variance):
    """Mean and variance of ``draws`` (first axis) within 5 Monte Carlo standard errors."""
    n = len(draws)
    centered = draws - draws.mean(axis=0)
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 5 * np.sqrt(variance / n))
    # The variance's standard error from the fourth central moment (the draws need not be normal).
    var_se = np.sqrt((np.mean(centered**4, axis=0) - draws.var(axis=0) ** 2) / n)
    assert np.all(np.abs(draws.var(axis=0) - variance) < 5 * var_se)


def test_prior_draws_follow_the_prior(prior_model):
    sampler, _ = prior_model
    draws = sampler.prior_predictive(PRIOR_DRAWS, seed=0)
    assert set(draws) == {"mu", "K", "y", "m"}
    assert {k: v.shape for k, v in draws.items()} == {
        "mu": (PRIOR_DRAWS,),
        "K": (PRIOR_DRAWS, 3),
        "y": (PRIOR_DRAWS, 3),
        "m": (PRIOR_DRAWS, 3),
    }
    _assert_moments(draws["mu"], 1.0, 4.0)
    # The discrete latent's frequencies, with their binomial standard error.
    frequency = draws["K"].mean(axis=0)
    assert np.all(np.abs(frequency - P_K) < 5 * np.sqrt(P_K * (1 - P_K) / PRIOR_DRAWS))
    # The observed variable redrawn: a mixture with mean 1 + 3 p and variance 4 + 9 p (1 - p) + 1.
    _assert_moments(draws["y"], 1.0 + 3 * P_K, 4.0 + 9 * P_K * (1 - P_K) + 1.0)
    # One joint draw: the derived quantity of the same draw, and y around it with unit variance.
    np.testing.assert_allclose(draws["m"], draws["mu"][:, None] + 3.0 * draws["K"], atol=1e-12)
    _assert_moments(draws["y"] - draws["m"], 0.0, 1.0)


def test_prior_draws_are_reproducible_and_leave_the_models_generators_alone(prior_model):
    sampler, y_rv = prior_model
    rng = y_rv.owner.inputs[0]
    state = rng.get_value().bit_generator.state
    first = sampler.prior_predictive(50, seed=3)
    again = sampler.prior_predictive(50, seed=3)
    other = sampler.prior_predictive(50, seed=4)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["mu"], other["mu"])
    assert rng.get_value().bit_generator.state == state
    with pytest.raises(ValueError, match="n must be at least 1"):
        sampler.prior_predictive(0)


# -- ArviZ groups, dims and coords ---------------------------------------------------------------


@pytest.fixture(scope="module")
def prior_run(prior_model):
    sampler, _ = prior_model
    result = sampler.sample(
        50,
        n_chains=2,
        warmup=50,
        seed=0,
        loop="scan",
        start="prior",
        var_names=every_variable(sampler),
    )
    return sampler, result


def test_the_prior_goes_to_the_prior_groups_as_one_chain(prior_run):
    sampler, result = prior_run
    prior = sampler.prior_predictive(30, seed=0)
    idata = result.to_inference_data(prior=prior)
    assert set(idata.prior.data_vars) == {"mu", "K", "m"}
    assert set(idata.prior_predictive.data_vars) == {"y"}
    assert idata.prior["K"].shape == (1, 30, 3)
    assert idata.prior_predictive["y"].shape == (1, 30, 3)
    np.testing.assert_array_equal(idata.prior["mu"].values[0], prior["mu"])


def test_dims_and_coords_reach_every_group(prior_run):
    sampler, result = prior_run
    idata = result.to_inference_data(
        prior=sampler.prior_predictive(30, seed=0),
        posterior_predictive=sampler.posterior_predictive(result, seed=0),
        dims={"y": ["school"], "K": ["school"], "m": ["school"]},
        coords={"school": ["a", "b", "c"]},
    )
    for group, name in [
        ("posterior", "K"),
        ("posterior", "m"),
        ("observed_data", "y"),
        ("log_likelihood", "y"),
        ("posterior_predictive", "y"),
        ("prior", "m"),
        ("prior_predictive", "y"),
    ]:
        var = getattr(idata, group)[name]
        assert var.dims[-1] == "school", (group, name)
        assert list(var.coords["school"].values) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "dims, coords, fragment",
    [
        ({"K": ["school", "extra"]}, None, r"'K'.*2 axes \['school', 'extra'\].*has 1"),
        ({"K": ["school"]}, {"school": ["a", "b"]}, r"'K'.*coords\['school'\] has 2 values"),
        ({"Kay": ["school"]}, None, r"'Kay'.*does not have"),
        ({"K": "school"}, None, r"'K'.*list of dimension names"),
        ({"K": ["school"], "mu": ["school"]}, None, r"'mu'.*the variable has 0"),
    ],
)
def test_dims_that_do_not_fit_a_variable_are_refused_by_its_name(prior_run, dims, coords, fragment):
    _, result = prior_run
    with pytest.raises(ValuesError, match=fragment):
        result.to_inference_data(dims=dims, coords=coords)


def test_without_dims_an_observed_variable_keeps_one_default_dim_across_groups(prior_run):
    _, result = prior_run
    idata = result.to_inference_data()
    assert idata.observed_data["y"].dims == ("y_dim_0",)
    assert idata.log_likelihood["y"].dims == ("chain", "draw", "y_dim_0")
    assert idata.posterior["m"].dims == ("chain", "draw", "m_dim_0")


def test_a_derived_quantity_reads_an_observed_variable_at_its_data():
    srng = at.random.RandomStream(8)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    y_rv = srng.normal(mu_rv, 1.0, size=3, name="y")
    sampler = aemix.build_sampler(
        {"y": y_rv, "residual": y_rv - mu_rv}, {y_rv: SCHOOLS_Y}, mode=FAST
    )
    result = sampler.sample(20, n_chains=2, warmup=20, seed=0, start="prior")
    np.testing.assert_allclose(
        result.draws["residual"], SCHOOLS_Y - result.draws["mu"][..., None], rtol=0, atol=1e-12
    )


def test_a_derived_quantity_of_a_variable_without_draws_is_refused():
    # A random variable that is no latent, observed or summed-out variable of the sampler (one
    # absorbed into a marginal density) has no draws to compute the quantity from.
    from aemix.derived import derived_graphs

    srng = at.random.RandomStream(9)
    x_rv = srng.normal(0.0, 1.0, name="x")
    doubled = 2.0 * x_rv
    doubled.name = "doubled"
    with pytest.raises(ModelError, match="'doubled'.*computed from x, which the sampler has no"):
        derived_graphs([doubled], {}, {}, [()])
