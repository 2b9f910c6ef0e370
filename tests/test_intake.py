"""Intake checks (`aemix.intake`): observed data, constant parameters, names, values and arguments."""

import warnings

import aesara
import aesara.tensor as at
import arviz as az
import numpy as np
import pytest
import scipy.stats as st

import aemix
from aemix.errors import ConfigurationError, ModelError, ValuesError
from tests.helpers import stat_scale

FAST = "FAST_COMPILE"


def _refused(rv, data, *fragments):
    with pytest.raises(ModelError) as info:
        aemix.build_sampler(rv, {rv: data}, mode=FAST)
    assert info.value.variable == rv.name
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


# -- 1. observed data inside its distribution's support ------------------------------------------


def _support_cases():
    srng = at.random.RandomStream(0)
    p = srng.beta(2.0, 2.0, name="p")
    return [
        (srng.poisson(3.0, size=5, name="y"), [1, 2, 3, -1, 2], "(3,)", "poisson"),
        (srng.binomial(10, p, size=3, name="y"), [1, 11, 2], "(1,)", "binomial"),
        # n broadcast along the last axis: 4 > n[0] = 3 at (1, 0)
        (
            srng.binomial(np.array([3, 5]), 0.4, size=(2, 2), name="y"),
            [[1, 2], [4, 5]],
            "(1, 0)",
            "binomial",
        ),
        (srng.geometric(0.3, size=3, name="y"), [1, 0, 2], "(1,)", "geometric"),
        (srng.negative_binomial(3.0, 0.4, size=3, name="y"), [1, 2, -2], "(2,)", "nbinom"),
        (srng.integers(2, 5, size=3, name="y"), [2, 5, 3], "(1,)", "integers"),
        (srng.categorical(np.array([0.2, 0.8]), size=3, name="y"), [0, 1, 2], "(2,)", "categ"),
        (srng.bernoulli(p, size=3, name="y"), [0, 1, 2], "(2,)", "bernoulli"),
        (srng.beta(2.0, 2.0, size=3, name="y"), [0.5, 1.5, 0.2], "(1,)", "beta"),
        # (at an end, the beta density is 0 or infinite by its parameters: a latent a < 1 makes
        # the posterior improper)
        (srng.beta(p, 2.0, size=3, name="y"), [0.5, 0.0, 0.2], "(1,)", "beta"),
        (
            srng.multinomial(10, np.array([0.2, 0.3, 0.5]), size=2, name="y"),
            [[2, 3, 5], [5, 5, 5]],
            "sum to 15",
            "not n = 10",
        ),
        (srng.uniform(-1.0, 2.0, size=3, name="y"), [0.0, 2.5, 0.0], "(1,)", "uniform"),
        (srng.exponential(2.0, size=3, name="y"), [1.0, -0.1, 1.0], "(1,)", "exponential"),
        (srng.gamma(2.0, 1.0, size=3, name="y"), [-1.0, 1.0, 1.0], "(0,)", "gamma"),
        # (at 0, a gamma, chi-square or Weibull density is 0 or infinite by its shape parameter,
        # an inverse gamma one 0: a latent shape makes the posterior degenerate or improper)
        (srng.gamma(p, 1.0, size=3, name="y"), [1.0, 0.0, 1.0], "(1,)", "gamma"),
        (srng.gamma(2.0, 1.0, size=3, name="y"), [1.0, 0.0, 1.0], "(1,)", "alpha is 1"),
        (srng.chisquare(p, size=3, name="y"), [0.0, 1.0, 1.0], "(0,)", "chisquare"),
        (srng.weibull(p, size=3, name="y"), [1.0, 1.0, 0.0], "(2,)", "weibull"),
        (srng.invgamma(p, 1.0, size=3, name="y"), [1.0, 0.0, 1.0], "(1,)", "invgamma"),
        (srng.hypergeometric(5, 3, 6, size=3, name="y"), [3, 2, 4], "(1,)", "hypergeometric"),
        (srng.triangular(0.0, p, 2.0, size=3, name="y"), [1.0, 2.5, 1.0], "(1,)", "triangular"),
        (srng.halfnormal(0.0, 1.0, size=3, name="y"), [1.0, 1.0, -3.0], "(2,)", "halfnormal"),
        (srng.halfcauchy(0.0, 1.0, size=3, name="y"), [1.0, -1.0, 1.0], "(1,)", "halfcauchy"),
        (srng.lognormal(0.0, 1.0, size=3, name="y"), [1.0, 0.0, 1.0], "(1,)", "lognormal"),
        (
            srng.dirichlet(np.ones(3), size=2, name="y"),
            [[0.2, 0.8, 0.0], [0.5, 0.6, -0.1]],
            "(1, 2)",
            "dirichlet",
        ),
        (
            srng.dirichlet(np.ones(3), size=2, name="y"),
            [[0.2, 0.8, 0.0], [0.5, 0.4, 0.2]],
            "(1,)",
            "simplex",
        ),
    ]


@pytest.mark.parametrize("case", range(len(_support_cases())))
def test_observed_data_outside_the_support_is_refused_with_its_index(case):
    rv, data, index, distribution = _support_cases()[case]
    _refused(rv, np.asarray(data), index, distribution)


def test_observed_data_on_the_support_boundary_is_accepted():
    srng = at.random.RandomStream(0)
    p = srng.beta(2.0, 2.0, name="p")
    y = srng.binomial(np.array([3, 5]), p, size=(2, 2), name="y")
    d = srng.dirichlet(np.ones(3), name="d")
    with pytest.warns(aemix.ModelWarning, match="'d' is connected to no unobserved"):
        sampler = aemix.build_sampler([y, d], {y: [[0, 5], [3, 0]], d: [0.1, 0.2, 0.7]}, mode=FAST)
    assert sampler.latent == ("p",)


@pytest.mark.parametrize(
    "make, data, reference",
    [
        # (the density at 0 is finite where the shape makes it so: an exponential's)
        (
            lambda s, a: s.gamma(1.0, a, size=3, name="y"),
            [0.0, 1.0, 2.0],
            lambda a, y: st.gamma(1.0, scale=1 / a).logpdf(y),  # (Aesara's gamma takes a rate)
        ),
        (
            lambda s, a: s.chisquare(2.0, size=3, name="y"),
            [0.0, 1.0, 2.0],
            lambda a, y: st.chi2(2.0).logpdf(y),
        ),
        (
            lambda s, a: s.exponential(a, size=3, name="y"),
            [0.0, 1.0, 2.0],
            lambda a, y: st.expon(scale=a).logpdf(y),
        ),
        (
            lambda s, a: s.hypergeometric(5, 3, 6, size=3, name="y"),
            [3, 5, 4],
            lambda a, y: st.hypergeom(8, 5, 6).logpmf(y),
        ),
    ],
)
def test_observed_data_on_a_boundary_with_a_finite_density_is_accepted(make, data, reference):
    srng = at.random.RandomStream(0)
    a = srng.exponential(1.0, name="a")
    y = make(srng, a)
    with warnings.catch_warnings():
        # (a y of constant parameters is connected to no latent: said, and accepted)
        warnings.simplefilter("ignore", aemix.ModelWarning)
        sampler = aemix.build_sampler([y, a], {y: np.asarray(data)}, mode=FAST)
    for value in (0.5, 2.0):
        expected = st.expon.logpdf(value) + reference(value, np.asarray(data)).sum()
        np.testing.assert_allclose(sampler.logdensity({"a": value}), expected, rtol=1e-6)


def test_observed_count_beyond_the_integer_dtype_is_refused_not_wrapped():
    srng = at.random.RandomStream(0)
    y = srng.poisson(3.0, size=3, name="y")
    _refused(y, np.array([1.0, 1e30, 2.0]), "1e+30", "does not fit", "int64")


@pytest.mark.parametrize(
    "data, fragment",
    [
        (None, "None"),
        (np.array([1.0, 2.0, 1j]), "complex"),
        (np.array([1.0, 2.0, 3.0], dtype=object), "object"),
        ([1.0, None, 2.0], "object"),
        (np.array([1.0, np.nan, 2.0]), "finite"),
        # The value under a mask would be read as data (a -999 code moved the mean to -141).
        (np.ma.masked_equal([1.0, -999.0, 2.0], -999.0), "masked (missing) entries at index (1,)"),
    ],
)
def test_observed_data_that_is_no_real_number_is_a_model_error(data, fragment):
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, 1.0, name="mu")
    y = srng.normal(mu, 1.0, size=3, name="y")
    _refused(y, data, fragment)


# -- 2. values given to logdensity and as initial values -----------------------------------------


@pytest.fixture(scope="module")
def simplex_sampler():
    srng = at.random.RandomStream(0)
    w = srng.dirichlet(np.ones(3), name="w")
    s = srng.halfnormal(0.0, 1.0, name="s")
    y = srng.normal(0.0, s, size=3, name="y")
    return aemix.build_sampler([w, y], {y: np.array([0.1, -0.4, 0.3])}, mode=FAST)


@pytest.mark.parametrize(
    "values, name, fragment",
    [
        ({"w": None, "s": 1.0}, "w", "None"),
        ({"w": [0.2, 0.3, 0.5], "s": 1.0 + 1j}, "s", "complex"),
        ({"w": [0.2, np.nan, 0.8], "s": 1.0}, "w", "finite"),
        ({"w": np.array(["a", "b", "c"]), "s": 1.0}, "w", "numeric"),
    ],
)
def test_logdensity_refuses_values_that_are_no_real_numbers(
    simplex_sampler, values, name, fragment
):
    with pytest.raises(ValuesError) as info:
        simplex_sampler.logdensity(values)
    assert info.value.variable == name
    assert fragment in str(info.value)


def test_logdensity_is_minus_infinity_off_the_support_and_off_the_simplex(simplex_sampler):
    inside = simplex_sampler.logdensity({"w": [0.2, 0.3, 0.5], "s": 1.0})
    assert np.isfinite(inside)
    assert simplex_sampler.logdensity({"w": [0.2, 0.3, 0.5], "s": -1.0}) == -np.inf
    # Each element in [0, 1] but the sum 1.1: aeppl's Dirichlet density alone is finite here.
    assert simplex_sampler.logdensity({"w": [0.2, 0.4, 0.5], "s": 1.0}) == -np.inf


@pytest.mark.parametrize(
    "values, name, fragment",
    [
        ({"w": [0.2, 0.4, 0.5], "s": 1.0}, "w", "sum to 1.1"),
        ({"w": [0.2, 0.3, 0.5], "s": -1.0}, "s", "outside the support"),
        ({"w": [0.2, 0.3, 0.5], "s": None}, "s", "None"),
        ({"w": [0.2, 0.3, 0.5], "s": 1j}, "s", "complex"),
        ({"w": [0.2, 0.3, 0.5], "s": np.nan}, "s", "finite"),
    ],
)
def test_initial_values_off_the_support_are_refused_not_projected(
    simplex_sampler, values, name, fragment
):
    with pytest.raises(ValuesError) as info:
        simplex_sampler.sample(2, n_chains=2, warmup=0, seed=0, loop="scan", initial_values=values)
    assert info.value.variable == name
    assert fragment in str(info.value), str(info.value)


# -- 3. sample's arguments ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def normal_sampler():
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, 1.0, name="mu")
    y = srng.normal(mu, 1.0, size=3, name="y")
    return aemix.build_sampler(y, {y: np.array([0.1, -0.4, 0.3])}, mode=FAST)


@pytest.mark.parametrize("target", [0.0, 1.0, 1.5, -0.2, float("nan")])
def test_target_acceptance_outside_the_open_unit_interval_is_refused(normal_sampler, target):
    with pytest.raises(ValueError, match="target_acceptance"):
        normal_sampler.sample(
            2, n_chains=2, warmup=0, target_acceptance=target, loop="scan", start="prior"
        )


def test_target_acceptance_is_used_as_given(normal_sampler):
    low = normal_sampler.sample(
        20,
        n_chains=2,
        warmup=200,
        seed=3,
        target_acceptance=0.05,
        loop="scan",
        start="prior",
    )
    high = normal_sampler.sample(
        20,
        n_chains=2,
        warmup=200,
        seed=3,
        target_acceptance=0.95,
        loop="scan",
        start="prior",
    )
    assert low.step_size > 3 * high.step_size


def test_seed_may_be_a_generator_or_a_seed_sequence(normal_sampler):
    def draws(seed):
        return normal_sampler.sample(
            3, n_chains=2, warmup=0, seed=seed, loop="scan", start="prior"
        ).draws["mu"]

    np.testing.assert_array_equal(draws(np.random.default_rng(5)), draws(np.random.default_rng(5)))
    np.testing.assert_array_equal(
        draws(np.random.SeedSequence(7)), draws(np.random.SeedSequence(7))
    )
    with pytest.raises(TypeError, match="seed"):
        draws("seven")
    with pytest.raises(TypeError, match="seed"):
        draws(1.5)


# -- 4. names ------------------------------------------------------------------------------------


def test_two_latents_with_one_name_are_refused():
    srng = at.random.RandomStream(0)
    first = srng.normal(0.0, 1.0, name="mu")
    second = srng.normal(first, 1.0, name="mu")
    with pytest.raises(ModelError, match="two latent variables share this name"):
        aemix.build_sampler([first, second], mode=FAST)


def test_a_latent_named_like_a_marginalized_variable_is_refused():
    srng = at.random.RandomStream(0)
    scale = srng.halfnormal(0.0, 1.0, name="I")  # continuous, kept latent
    N_rv = srng.normal(np.array([-2.0, 3.0]), scale, name="N")
    I_rv = srng.categorical(np.array([0.3, 0.7]), name="I")
    with pytest.raises(ModelError, match="a latent and a marginalized variable"):
        aemix.build_sampler({"Y": N_rv[I_rv]}, mode=FAST)


def test_an_observed_variable_named_like_a_latent_is_refused():
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, 1.0, name="mu")
    y = srng.normal(mu, 1.0, size=3, name="mu")
    with pytest.raises(ModelError, match="a latent and an? observed variable"):
        aemix.build_sampler(y, {y: np.zeros(3)}, mode=FAST)


# -- 5. parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, fragment",
    [
        (
            lambda srng, mu: srng.normal(mu, -1.0, size=3, name="y"),
            "sigma must be positive, got -1.0",
        ),
        (lambda srng, mu: srng.binomial(5, 1.5, size=3, name="y"), "p must be in [0, 1], got 1.5"),
        (
            lambda srng, mu: srng.poisson(np.array([1.0, -2.0, 1.0]), name="y"),
            "mu must be non-negative, got -2.0 at index (1,)",
        ),
        (
            lambda srng, mu: srng.binomial(np.array([5.5, 3.0, 2.0]), 0.5, name="y"),
            "n must be a non-negative integer, got 5.5 at index (0,)",
        ),
        (
            lambda srng, mu: srng.multivariate_normal(
                at.stack([mu, mu, mu]), np.array([[1.0, 2, 0], [2, 1, 0], [0, 0, 1]]), name="y"
            ),
            "covariance is not positive definite (smallest eigenvalue -1)",
        ),
        (
            lambda srng, mu: srng.multivariate_normal(
                at.stack([mu, mu, mu]), np.array([[1.0, 0.5, 0], [0.3, 1, 0], [0, 0, 1]]), name="y"
            ),
            "covariance is not symmetric",
        ),
    ],
)
def test_a_constant_invalid_parameter_is_refused_by_name(make, fragment):
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, 1.0, name="mu")
    y = make(srng, mu)
    with pytest.raises(ModelError) as info:
        aemix.build_sampler(y, {y: np.ones(3, dtype=y.dtype)}, mode=FAST)
    assert info.value.variable == "y"
    assert fragment in str(info.value), str(info.value)


def test_categorical_probabilities_that_do_not_sum_to_one_are_refused():
    # aeppl's density would normalize them and Aesara's prior draws would not: refused by name.
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, 3.0, size=2, name="mu")
    z = srng.categorical(np.array([0.5, 0.6]), name="z")
    y = srng.normal(mu[z], 1.0, name="y")
    with pytest.raises(ModelError, match="probabilities sum to 1.1, not 1") as info:
        aemix.build_sampler(y, {y: 0.3}, mode=FAST)
    assert info.value.variable == "z"
    # Float32 probabilities (Aesara's cast of literals) that sum to one up to rounding are kept.
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, 3.0, size=3, name="mu")
    z = srng.categorical(np.array([0.1, 0.2, 0.7], dtype="float32"), name="z")
    y = srng.normal(mu[z], 1.0, name="y")
    assert list(aemix.build_sampler(y, {y: 0.3}, mode=FAST).marginalized) == ["z"]


def test_a_latent_parameter_out_of_its_domain_is_reported_without_a_graph_dump():
    srng = at.random.RandomStream(0)
    sigma = srng.normal(0.0, 1.0, name="sigma")  # a scale that may go negative: the model's bug
    y = srng.normal(0.0, sigma, size=3, name="y")
    sampler = aemix.build_sampler(y, {y: np.array([0.1, -0.4, 0.3])}, mode=FAST)
    with pytest.raises(ValuesError) as info:
        sampler.logdensity({"sigma": -1.0})
    message = str(info.value)
    assert "sigma > 0" in message and "'y'" in message
    assert "Apply node" not in message and info.value.__suppress_context__


@pytest.mark.parametrize("loop", ["fused", "scan"])
def test_where_a_parameter_check_fails_the_density_is_zero_in_every_loop(loop):
    # sigma ~ normal(1, 0.3) puts mass on sigma < 0, where y's density is undefined: every
    # seed and loop samples the prior restricted to sigma > 0 (PyMC's -inf), and says so once.
    data = np.array([0.3, -0.8, 1.2, 0.1, -0.4])
    srng = at.random.RandomStream(0)
    sigma = srng.normal(1.0, 0.3, name="sigma")
    y = srng.normal(0.0, sigma, size=5, name="y")
    sampler = aemix.build_sampler(y, {y: data}, mode=None if loop == "fused" else FAST)
    with pytest.warns(aemix.ModelWarning, match=r"sigma > 0.*restricted to where the checks"):
        result = sampler.sample(
            max(200, int(500 * stat_scale())), n_chains=16, seed=0, loop=loop, diagnose=False
        )
    assert result.loop == loop
    grid = np.linspace(1e-6, 4.0, 40001)
    log_post = st.norm.logpdf(grid, 1.0, 0.3) + st.norm.logpdf(data[:, None], 0.0, grid).sum(0)
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    mean = (w * grid).sum()
    sd = np.sqrt((w * (grid - mean) ** 2).sum())
    draws = result.draws["sigma"]
    assert draws.min() > 0
    assert abs(draws.mean() - mean) < 5 * sd / np.sqrt(float(az.ess(draws)))
    # Started inside the domain with a step that leaves it: rejections, not an error.
    sampler.sample(
        20,
        n_chains=4,
        warmup=0,
        seed=0,
        step_size=3.0,
        loop=loop,
        initial_values={"sigma": 0.5},
        diagnose=False,
    )


# -- 6. float64 densities ------------------------------------------------------------------------


def test_binomial_with_a_literal_n_is_evaluated_in_float64():
    srng = at.random.RandomStream(0)
    p = srng.beta(2.0, 2.0, name="p")
    y = srng.binomial(10, p, size=1000, name="y")
    data = np.random.default_rng(0).binomial(10, 0.3, size=1000)
    sampler = aemix.build_sampler(y, {y: data}, mode=FAST)
    for value in (0.05, 0.3, 0.77):
        want = st.binom.logpmf(data, 10, value).sum() + st.beta(2, 2).logpdf(value)
        assert sampler.logdensity({"p": value}) == pytest.approx(want, rel=1e-9, abs=0)


# -- 7. floatX -----------------------------------------------------------------------------------


def test_float32_floatx_is_refused_with_a_typed_error():
    with aesara.config.change_flags(floatX="float32"):
        srng = at.random.RandomStream(0)
        mu = srng.normal(0.0, 1.0, name="mu")
        y = srng.normal(mu, 1.0, size=3, name="y")
        with pytest.raises(ConfigurationError, match="floatX"):
            aemix.build_sampler(y, {y: np.array([0.1, -0.4, 0.3])}, mode=FAST)


def test_shared_data_is_compiled_in_and_a_changed_value_is_refused():
    # Covariates and a prior scale held in aesara.shared, the observation too: every loop runs
    # the model at the values it was built with, and a later set_value is refused by name.
    x = np.linspace(-1.0, 1.0, 20)
    y = 2.0 * x + 0.1
    x_shared = aesara.shared(x, name="x")
    sd_shared = aesara.shared(10.0, name="prior_sd")
    y_shared = aesara.shared(y, name="y_data")
    srng = at.random.RandomStream(0)
    b = srng.normal(0.0, sd_shared, name="b")
    y_rv = srng.normal(b * x_shared, 1.0, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: y_shared})
    exact = st.norm.logpdf(1.5, 0.0, 10.0) + st.norm.logpdf(y, 1.5 * x, 1.0).sum()
    assert sampler.logdensity({"b": 1.5}) == pytest.approx(exact, rel=1e-12)
    precision = x @ x + 1 / 100
    mean, sd = (x @ y) / precision, 1 / np.sqrt(precision)
    for loop in ("fused", "scan"):
        result = sampler.sample(200, n_chains=8, seed=0, loop=loop, diagnose=False)
        assert result.loop == loop
        draws = result.draws["b"]
        assert abs(draws.mean() - mean) < 5 * sd / np.sqrt(float(az.ess(draws)))
    x_shared.set_value(2 * x)
    with pytest.raises(ModelError, match="'x'.*changed after build_sampler"):
        sampler.sample(10)
    x_shared.set_value(x)
    y_shared.set_value(y + 1.0)
    with pytest.raises(ModelError, match="'y_data'.*changed after build_sampler"):
        sampler.logdensity({"b": 1.5})


def test_a_nan_in_a_constant_or_shared_array_is_refused_by_the_variable_that_reads_it():
    X = np.random.default_rng(0).normal(size=(20, 3))
    X[4, 1] = np.nan
    for data in (X, aesara.shared(X, name="X")):
        srng = at.random.RandomStream(0)
        b = srng.normal(0.0, 1.0, size=3, name="b")
        y = srng.normal(at.dot(data, b), 1.0, name="y")
        with pytest.raises(ModelError, match=r"'y'.*holds NaN at index \(4, 1\)"):
            aemix.build_sampler(y, {y: np.zeros(20)}, mode=FAST)


def test_an_observed_variable_no_latent_reaches_is_accepted_with_a_warning():
    """Data of a variable of another model, passed in ``observed`` by mistake, enter the log
    density as a constant: accepted (the density is still exact), and said."""
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, 1.0, name="mu")
    y = srng.normal(mu, 1.0, name="y")
    other = at.random.RandomStream(1).normal(0.0, 1.0, name="other")
    with pytest.warns(aemix.ModelWarning, match="'other' is connected to no unobserved variable"):
        sampler = aemix.build_sampler([y, mu], {y: 0.3, other: 2.0}, mode=FAST)
    expected = st.norm.logpdf(0.5) + st.norm.logpdf(0.3, 0.5) + st.norm.logpdf(2.0)
    np.testing.assert_allclose(sampler.logdensity({"mu": 0.5}), expected, rtol=1e-12)


def test_an_observation_no_parameter_can_explain_is_named_when_no_start_is_found():
    # A zero-inflated count written with switch: its support is not known before marginalization,
    # so a negative count passes the intake; no start is found, and the error names the datum.
    srng = at.random.RandomStream(3)
    pi = srng.beta(1.0, 1.0, name="pi")
    lam = srng.gamma(2.0, 0.5, name="lam")
    z = srng.bernoulli(pi, size=4, name="z")
    y = at.switch(z, 0, srng.poisson(lam, size=4, name="counts"))
    sampler = aemix.build_sampler(
        {"pi": pi, "lam": lam, "y": y}, observed={y: np.array([0, 1, -2, 3])}, mode="FAST_COMPILE"
    )
    with pytest.raises(aemix.InitializationError, match=r"probability zero .*y\[2\] = -2"):
        sampler.sample(10, n_chains=4, seed=0, warmup=10, start="prior")


def test_a_censored_observation_is_refused_as_censored():
    srng = at.random.RandomStream(1)
    mu = srng.normal(0.0, 3.0, name="mu")
    y = at.clip(srng.normal(mu, 1.0, size=5, name="raw"), -1.0, 1.0)
    data = np.array([-1.0, 0.2, 1.0, 0.5, 1.0])
    with pytest.raises(ModelError, match=r"'y'.*clip of a random variable: a censored"):
        aemix.build_sampler({"mu": mu, "y": y}, observed={y: data}, mode="FAST_COMPILE")
