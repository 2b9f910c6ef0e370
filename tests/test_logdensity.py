import aesara
import aesara.tensor as at
import arviz as az
import numpy as np
import pytest
import scipy.stats as st

import aemix
from aemix.errors import ValuesError

DATA = np.random.default_rng(1).normal(3.0, 2.0, size=20)


@pytest.fixture(scope="module")
def constrained_model():
    """Unbounded, positive and simplex latents, integer literals, observed data."""
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0, 10, name="mu")
    sigma_rv = srng.halfnormal(0, 5, name="sigma")
    w_rv = srng.dirichlet(np.array([1.0, 2.0, 3.0]), name="w")
    y_rv = srng.normal(mu_rv, sigma_rv, size=20, name="y")
    return aemix.build_sampler([y_rv, w_rv], observed={y_rv: DATA})


def reference_logpdf(mu, sigma, w):
    return (
        st.norm(0, 10).logpdf(mu)
        + st.halfnorm(0, 5).logpdf(sigma)
        + st.dirichlet([1.0, 2.0, 3.0]).logpdf(w)
        + st.norm(mu, sigma).logpdf(DATA).sum()
    )


def test_layout(constrained_model):
    assert set(constrained_model.latent) == {"mu", "sigma", "w"}
    assert constrained_model.observed == ("y",)
    layout = {item.name: item for item in constrained_model._density.layout}
    assert layout["w"].shape == (3,) and layout["w"].unconstrained_shape == (2,)
    assert constrained_model.dim == 4


@pytest.mark.parametrize(
    "mu,sigma,w", [(1.0, 2.0, [0.2, 0.3, 0.5]), (-30.0, 0.01, [0.9, 0.05, 0.05])]
)
def test_constrained_logdensity_is_float64_exact(constrained_model, mu, sigma, w):
    got = constrained_model.logdensity({"mu": mu, "sigma": sigma, "w": np.array(w)})
    np.testing.assert_allclose(got, reference_logpdf(mu, sigma, np.array(w)), rtol=1e-13)


def test_unconstrained_logdensity_adds_the_log_jacobian(constrained_model):
    density = constrained_model._density
    position = density.position
    f_u = aesara.function([position], density.logdensity)
    f_c = aesara.function([position], density.constrained)
    names = [item.name for item in density.layout]
    rng = np.random.default_rng(0)
    for _ in range(5):
        u = rng.normal(size=constrained_model.dim)
        values = dict(zip(names, f_c(u)))
        assert values["sigma"] > 0 and np.isclose(values["w"].sum(), 1) and np.all(values["w"] > 0)

        # log|det J| of u -> (sigma, w_1, w_2) by central finite differences (w_3 = 1 - w_1 - w_2).
        def forward(v):
            d = dict(zip(names, f_c(v)))
            return np.concatenate([[d["sigma"], d["mu"]], d["w"][:2]])

        order = [names.index("sigma"), names.index("mu")]
        w_start = density.layout[names.index("w")].start
        cols = [density.layout[i].start for i in order] + [w_start, w_start + 1]
        h = 1e-6
        jac = np.empty((4, 4))
        for j, col in enumerate(cols):
            e = np.zeros_like(u)
            e[col] = h
            jac[:, j] = (forward(u + e) - forward(u - e)) / (2 * h)
        log_jac = np.log(abs(np.linalg.det(jac)))
        expected = constrained_model.logdensity(values) + log_jac
        np.testing.assert_allclose(f_u(u), expected, rtol=1e-7)


def test_draws_respect_constraints_and_find_the_data(constrained_model):
    result = constrained_model.sample(500, n_chains=50, seed=1, warmup=500, start="prior")
    assert np.all(result.draws["sigma"] > 0)
    w = result.draws["w"]
    assert w.shape == (50, 500, 3) and np.all(w > 0)
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-12)
    assert 0.1 < result.acceptance_rate.mean() < 0.6

    # Tolerances: 4 Monte Carlo standard errors from the effective sample size.
    def mc_error(draws):
        return 4 * draws.std() / np.sqrt(float(az.ess(draws)))

    # mu's posterior mean is the data mean up to the prior's shrinkage, which is below
    # (sd_likelihood / sd_prior)^2 * |mean| ~ (0.45 / 10)^2 * 3 < 0.01.
    mu = result.draws["mu"]
    assert abs(mu.mean() - DATA.mean()) < mc_error(mu) + 0.01
    # The data say nothing about w: its posterior is its Dirichlet(1, 2, 3) prior, mean (1, 2, 3) / 6.
    for k, expected in enumerate(np.array([1, 2, 3]) / 6):
        assert abs(w[..., k].mean() - expected) < mc_error(w[..., k])


def test_initial_values_of_constrained_variables(constrained_model):
    init = {"mu": 3.0, "sigma": [1.5, 2.5], "w": np.array([0.2, 0.3, 0.5])}
    result = constrained_model.sample(
        1, n_chains=2, seed=0, warmup=0, step_size=1e-9, initial_values=init
    )
    np.testing.assert_allclose(result.draws["sigma"][:, 0], [1.5, 2.5], rtol=1e-6)
    np.testing.assert_allclose(result.draws["w"][0, 0], init["w"], rtol=1e-6)
    with pytest.raises(ValuesError, match="'sigma'.*outside the variable's support"):
        constrained_model.sample(1, n_chains=2, initial_values={**init, "sigma": -1.0})


def test_warmup_scales_match_the_posterior_spread():
    # Posterior sd of each coordinate is about 0.1 (100 observations, unit noise), far from the
    # prior's 10: the tuned proposal scales must come from the posterior, not the walk in.  (Two
    # coordinates: the proposal is a factor L of a covariance; its coordinates' sds are the
    # row norms of L, and the posterior's correlation is 0.)
    srng = at.random.RandomStream(0)
    x_rv = srng.normal(0.0, 10.0, size=2, name="x")
    y_rv = srng.normal(x_rv, 1.0, size=(100, 2), name="y")
    data = np.random.default_rng(0).normal([1.0, -1.0], 1.0, size=(100, 2))
    result = aemix.build_sampler(y_rv, observed={y_rv: data}).sample(
        200, n_chains=16, seed=0, start="prior"
    )
    assert result.scale.shape == (2, 2)
    np.testing.assert_allclose(np.linalg.norm(result.scale, axis=1), 0.1, rtol=0.3)
    assert abs(result.scale[1, 0]) < 0.3 * 0.1


def test_float32_literals_give_float64_accurate_densities():
    # Python literals become float32 (3.0, 0.1) or int8 constants; aemix upcasts them.
    srng = at.random.RandomStream(0)
    lam_rv = srng.gamma(2.0, 3.0, name="lam")
    y_rv = srng.poisson(lam_rv * 0.1, name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: 4})
    for lam in [0.3, 7.7, 31.0]:
        ref = st.gamma(2.0, scale=1 / 3.0).logpdf(lam) + st.poisson(lam * 0.1).logpmf(4)
        np.testing.assert_allclose(sampler.logdensity({"lam": lam}), ref, rtol=1e-13)


def test_integers_density_is_registered():
    from aeppl import joint_logprob

    srng = at.random.RandomStream(0)
    k_rv = srng.integers(2, 7)
    logp, (k_vv,) = joint_logprob(k_rv)
    f = aesara.function([k_vv], logp)
    assert np.isclose(f(2), -np.log(5)) and np.isclose(f(6), -np.log(5))
    assert f(7) == -np.inf and f(1) == -np.inf


IDENTITIES = {
    "b * 1.0": lambda a, b: b * 1.0,
    "a + b * 0.0 (a dummy covariate)": lambda a, b: a + b * 0.0,
    "b - 0.0": lambda a, b: b - 0.0,
    "b / 1.0": lambda a, b: b / 1.0,
    "b ** 1.0": lambda a, b: b**1.0,
    "-(-b)": lambda a, b: at.neg(at.neg(b)),
    "a + b * x[0], x[0] = 0": lambda a, b: a + b * at.as_tensor(np.array([0.0, 2.0]))[0],
}


@pytest.mark.parametrize("name", list(IDENTITIES))
def test_a_mean_that_simplifies_to_a_latent_variable_has_its_density(name):
    """aeppl 0.1.5's ``joint_logprob`` fails on an assertion when an expression simplifies to a
    random variable (its canonicalization's undo step replaces the variable by the expression);
    per-observation regressions with 0/1 covariates write exactly that.  The density is the
    brute-force one."""
    srng = at.random.RandomStream(0)
    a = srng.normal(0.0, 1.0, name="a")
    b = srng.normal(0.0, 2.0, name="b")
    mean = IDENTITIES[name](a, b)
    y = srng.normal(mean, 1.0, name="y")
    sampler = aemix.build_sampler([y, a], observed={y: 0.7}, mode="FAST_COMPILE")
    for av, bv in [(0.3, -1.1), (-2.0, 0.5)]:
        m = {"b * 1.0": bv, "b - 0.0": bv, "b / 1.0": bv, "b ** 1.0": bv, "-(-b)": bv}.get(name, av)
        expected = st.norm(0, 1).logpdf(av) + st.norm(0, 2).logpdf(bv) + st.norm(m, 1).logpdf(0.7)
        got = sampler.logdensity({"a": av, "b": bv})
        np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize(
    "name, make, prior",
    [
        ("pareto(3, 1)", lambda s: s.pareto(3.0, 1.0), st.pareto(3.0, scale=1.0)),
        ("halfcauchy(-1, 1)", lambda s: s.halfcauchy(-1.0, 1.0), st.halfcauchy(-1.0, 1.0)),
    ],
)
def test_a_latent_with_a_lower_bound_explores_its_whole_support(name, make, prior):
    """aeppl's default transforms put pareto's lower bound at its shape (3 here, not its scale 1)
    and halfcauchy's at 0 (not its loc): the values in between were never proposed.  The posterior
    mean given one observation ``y ~ N(theta, 1)`` matches quadrature within Monte Carlo error."""
    from scipy.integrate import quad

    srng = at.random.RandomStream(0)
    theta = make(srng)
    theta.name = "theta"
    y = srng.normal(theta, 1.0, name="y")
    sampler = aemix.build_sampler(y, observed={y: 0.5}, mode="FAST_COMPILE")
    post = lambda t: np.exp(prior.logpdf(t) + st.norm(t, 1.0).logpdf(0.5))  # noqa: E731
    low = prior.support()[0]
    norm = quad(post, low, np.inf)[0]
    mean = quad(lambda t: t * post(t), low, np.inf)[0] / norm
    result = sampler.sample(2000, n_chains=8, seed=0)
    draws = np.asarray(result.draws["theta"])
    assert draws.min() < 3.0 if name.startswith("pareto") else draws.min() < 0.0
    error = float(az.mcse(az.convert_to_dataset(draws)).x)
    assert abs(draws.mean() - mean) < 5 * error, (draws.mean(), mean, error)


def test_a_distribution_without_a_density_is_refused_by_name():
    srng = at.random.RandomStream(0)
    theta = srng.truncexpon(3.0, 0.0, 1.0, name="theta")
    y = srng.normal(theta, 1.0, name="y")
    with pytest.raises(aemix.ModelError, match="'theta'.*no density for the truncexpon"):
        aemix.build_sampler(y, observed={y: 0.5})


def test_a_slice_that_is_the_whole_latent_vector_has_its_density():
    """``normal(b[:3], 1)`` for a 3-vector ``b``: the slice simplifies to ``b`` only with shape
    inference, which aeppl's rewrites run (and then fail on, as on ``b * 1.0``)."""
    srng = at.random.RandomStream(0)
    b = srng.normal(0.0, 1.0, size=3, name="b")
    y = srng.normal(b[:3], 1.0, name="y")
    data = np.array([0.3, -0.2, 1.0])
    sampler = aemix.build_sampler(y, observed={y: data}, mode="FAST_COMPILE")
    value = np.array([0.1, 0.5, -0.4])
    expected = st.norm().logpdf(value).sum() + st.norm(value, 1.0).logpdf(data).sum()
    np.testing.assert_allclose(sampler.logdensity({"b": value}), expected, rtol=1e-12)


def test_a_dirichlet_multinomial_has_its_density_and_conjugate_posterior():
    # aeppl checks sum(p) == 1 exactly; a Dirichlet's stick-breaking values miss it by rounding,
    # and the textbook model was refused at its prior draws.
    y = np.array([2, 5, 3])
    srng = at.random.RandomStream(0)
    theta = srng.dirichlet(np.ones(3), name="theta")
    y_rv = srng.multinomial(10, theta, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: y})
    point = np.random.default_rng(0).dirichlet(np.ones(3))
    assert point.sum() != 1.0  # (off by rounding)
    exact = st.dirichlet(np.ones(3)).logpdf(point) + st.multinomial(10, point).logpmf(y)
    np.testing.assert_allclose(sampler.logdensity({"theta": point}), exact, rtol=1e-10)
    result = sampler.sample(400, n_chains=16, seed=1)
    draws = result.draws["theta"]
    posterior_mean = (1 + y) / (3 + y.sum())
    for k in range(3):
        mcse = draws[..., k].std() / np.sqrt(float(az.ess(draws[..., k])))
        assert abs(draws[..., k].mean() - posterior_mean[k]) < 5 * mcse
    # The pointwise log-likelihood is checked within the same rounding (it raised at draws off
    # by 2e-16, so that az.loo failed on this model).
    assert (draws.sum(-1) != 1.0).any()
    log_lik = result.log_likelihood["y"]
    exact = np.array([st.multinomial(10, t).logpmf(y) for t in draws.reshape(-1, 3)])
    np.testing.assert_allclose(log_lik.ravel(), exact, rtol=1e-10)
