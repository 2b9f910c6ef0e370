"""Regression tests of enumeration and the rules' scope, each against brute force.

Every test here failed on the code before issue 10's fixes: a vector summed jointly counted each
child once per element; a 6-point mixture whose index had an unknown static shape took that joint
path; ``r[I]`` feeding a Poisson rate became a nameless latent; an observed ``N[I]`` with ``I``
observed was silently dropped; ``integers(0, 10**8)`` built its support before the budget check;
``categorical(T[I])`` was refused for an unknown static length.
"""

import itertools
import warnings

import aesara.tensor as at
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logsumexp

import aemix

FAST = "FAST_COMPILE"


def test_a_vector_summed_jointly_counts_its_child_once():
    srng = at.random.RandomStream(0)
    theta_rv = srng.normal(0.0, 1.0, name="theta")
    z_rv = srng.bernoulli(np.float64(0.3), size=2, name="z")
    y_rv = srng.normal(theta_rv + z_rv.sum(), 1.0, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: 1.5}, mode=FAST)
    for theta in (-1.0, 0.2, 2.5):
        exact = st.norm(0, 1).logpdf(theta) + logsumexp(
            [
                np.log(0.3 ** (a + b) * 0.7 ** (2 - a - b)) + st.norm(theta + a + b, 1).logpdf(1.5)
                for a, b in itertools.product((0, 1), (0, 1))
            ]
        )
        assert sampler.logdensity({"theta": theta}) == pytest.approx(exact, rel=1e-12)


def test_over_budget_with_warn_still_gives_the_exact_density():
    srng = at.random.RandomStream(0)
    theta_rv = srng.normal(0.0, 1.0, name="theta")
    z_rv = srng.bernoulli(np.float64(0.4), size=3, name="z")
    y_rv = srng.normal(theta_rv * z_rv.sum(), 1.0, name="y")
    with pytest.warns(UserWarning, match="budget"):
        sampler = aemix.build_sampler(
            y_rv, {y_rv: 2.0}, mode=FAST, support_budget=4, on_budget="warn"
        )
    theta = 0.7
    exact = st.norm(0, 1).logpdf(theta) + logsumexp(
        [
            np.log(np.prod(np.where(np.array(c) == 1, 0.4, 0.6)))
            + st.norm(theta * sum(c), 1).logpdf(2.0)
            for c in itertools.product((0, 1), repeat=3)
        ]
    )
    assert sampler.logdensity({"theta": theta}) == pytest.approx(exact, rel=1e-12)


def test_an_index_of_unknown_static_shape_is_summed_per_element_and_exactly():
    data = np.array([-2.1, -1.7, 0.2, 2.8, 3.1, 2.2])
    w = np.array([0.3, 0.7])
    c = np.array([-2.0, 3.0])
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    n = at.as_tensor_variable(np.int64(len(data)))
    z_rv = srng.categorical(w, size=(n,), name="z")
    y_rv = srng.normal(mu_rv + at.as_tensor(c)[z_rv], 1.0, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: data}, mode=FAST)
    assert "summed per element" in sampler.explain()
    mu = 0.3
    exact = (
        st.norm(0, 1).logpdf(mu)
        + logsumexp(np.log(w) + st.norm(mu + c, 1).logpdf(data[:, None]), axis=1).sum()
    )
    assert sampler.logdensity({"mu": mu}) == pytest.approx(exact, rel=1e-12)


def test_an_indexed_vector_that_feeds_a_rate_stays_a_latent():
    srng = at.random.RandomStream(0)
    r_rv = srng.gamma(np.float64(2.0), np.float64(1.0), size=3, name="r")
    I_rv = srng.categorical(np.array([0.2, 0.3, 0.5]), name="I")
    y_rv = srng.poisson(r_rv[I_rv], name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: 3}, mode=FAST)
    assert sampler.latent == ("r",)
    r = np.array([0.5, 2.0, 4.0])
    exact = st.gamma(2.0, scale=1.0).logpdf(r).sum() + logsumexp(
        np.log([0.2, 0.3, 0.5]) + st.poisson(r).logpmf(3)
    )
    assert sampler.logdensity({"r": r}) == pytest.approx(exact, rel=1e-12)


def test_an_observed_deterministic_variable_is_refused_not_dropped():
    srng = at.random.RandomStream(0)
    theta_rv = srng.normal(0.0, 1.0, name="theta")
    N_rv = srng.normal(at.stack([theta_rv, theta_rv + 1.0]), 1.0, name="N")
    I_rv = srng.categorical(np.array([0.5, 0.5]), size=3, name="I")
    Y = N_rv[I_rv]
    Y.name = "Y"
    with pytest.raises(aemix.ModelError, match="'Y'.*not a random variable"):
        aemix.build_sampler([Y], {Y: np.array([-1.0, 0.0, 1.0]), I_rv: np.array([0, 1, 0])})


@pytest.mark.parametrize("high", [10**8, 2**40])
def test_a_huge_support_is_refused_before_it_is_built(high):
    import tracemalloc

    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    k_rv = srng.integers(0, high, name="k")
    y_rv = srng.normal(mu_rv + k_rv, 1.0, name="y")
    tracemalloc.start()
    try:
        with pytest.raises(aemix.MarginalizationError, match="'k'.*budget"):
            aemix.build_sampler(y_rv, {y_rv: 1.0}, mode=FAST)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Building the support first took 800 MB for 10**8 values and an untyped MemoryError for
    # 2**40; the refusal comes before any of it is allocated.
    assert peak < 50 * 2**20


def test_a_categorical_of_a_row_picked_by_another_discrete_is_summed_out():
    T = np.array([[0.8, 0.2], [0.3, 0.7]])
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    I_rv = srng.categorical(np.array([0.6, 0.4]), name="I")
    J_rv = srng.categorical(at.as_tensor(T)[I_rv], name="J")
    y_rv = srng.normal(mu_rv + 2.0 * J_rv, 1.0, name="y")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sampler = aemix.build_sampler(y_rv, {y_rv: 1.2}, mode=FAST)
    assert set(sampler.marginalized) == {"I", "J"}
    mu = -0.4
    exact = st.norm(0, 1).logpdf(mu) + logsumexp(
        [
            np.log([0.6, 0.4][i] * T[i, j]) + st.norm(mu + 2.0 * j, 1).logpdf(1.2)
            for i, j in itertools.product((0, 1), (0, 1))
        ]
    )
    assert sampler.logdensity({"mu": mu}) == pytest.approx(exact, rel=1e-12)


def test_a_zero_inflated_normal_is_a_hurdle_density_when_observed():
    # Was refused with "a deterministic function of it (y) is an output of the model" although y
    # is observed.  With respect to Lebesgue measure plus a unit mass at 0: p at a zero, (1 - p)
    # times the normal density elsewhere.
    data = np.array([0.0, 1.2, 0.0, -0.3, 0.5])
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    z_rv = srng.bernoulli(np.float64(0.3), size=5, name="z")
    y = at.switch(z_rv, 0.0, srng.normal(mu_rv, 1.0, size=5))
    y.name = "y"
    sampler = aemix.build_sampler(y, {y: data}, mode=FAST)
    mu = 0.4
    per_obs = np.where(data == 0, np.log(0.3), np.log(0.7) + st.norm(mu, 1).logpdf(data))
    exact = st.norm(0, 1).logpdf(mu) + per_obs.sum()
    assert sampler.logdensity({"mu": mu}) == pytest.approx(exact, rel=1e-12)


def test_a_latent_hurdle_is_refused_with_the_reason():
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    z_rv = srng.bernoulli(np.float64(0.3), name="z")
    x = at.switch(z_rv, 0.0, srng.normal(mu_rv, 1.0))
    x.name = "x"
    with pytest.raises(aemix.ModelError, match="'x'.*point mass"):
        aemix.build_sampler(x, mode=FAST)


def test_a_switch_feeding_a_parameter_is_enumerated_exactly():
    srng = at.random.RandomStream(0)
    n_rv = srng.normal(1.0, 1.0, name="n")
    z_rv = srng.bernoulli(np.float64(0.3), name="z")
    y_rv = srng.normal(at.switch(z_rv, 0.0, n_rv), 1.0, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: 0.3}, mode=FAST)
    n = 1.7
    exact = st.norm(1, 1).logpdf(n) + logsumexp(
        [np.log(0.3) + st.norm(0, 1).logpdf(0.3), np.log(0.7) + st.norm(n, 1).logpdf(0.3)]
    )
    assert sampler.logdensity({"n": n}) == pytest.approx(exact, rel=1e-12)


def test_dependents_through_an_op_without_a_batching_rule_are_summed_exactly():
    # `sort` has no batching rule: it is mapped over the support's values (was a refusal).
    srng = at.random.RandomStream(0)
    K_rv = srng.bernoulli(np.float64(0.4), size=3, name="K")
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    y_rv = srng.normal(mu_rv + at.sort(K_rv * 1.0), 1.0, name="y")
    data = np.array([0.1, 0.9, 1.4])
    sampler = aemix.build_sampler(y_rv, {y_rv: data}, mode=FAST)
    mu = 0.3
    exact = st.norm(0, 1).logpdf(mu) + logsumexp(
        [
            np.log(np.prod(np.where(np.array(c) == 1, 0.4, 0.6)))
            + st.norm(mu + np.sort(c), 1).logpdf(data).sum()
            for c in itertools.product((0, 1), repeat=3)
        ]
    )
    assert sampler.logdensity({"mu": mu}) == pytest.approx(exact, rel=1e-12)


# -- the elimination order and its cost ----------------------------------------------------------

LOCS = np.array([-2.0, -0.5, 1.0, 3.0])
STAR_DATA = np.array([0.3, -1.2, 2.5])


def star_model(scalar_first: bool):
    """``l ~ Cat(1/4, size=3)``, ``c ~ Bernoulli(.5)``, ``y ~ N(locs[l] + 2 c + mu, 1)``, with the
    scalar created (and read) first or last: the order a user writes must not change the cost."""
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    if scalar_first:
        c_rv = srng.bernoulli(0.5, name="c")
        l_rv = srng.categorical(np.ones(4) / 4, size=3, name="l")
        mean = 2.0 * c_rv + at.as_tensor(LOCS)[l_rv]
    else:
        l_rv = srng.categorical(np.ones(4) / 4, size=3, name="l")
        c_rv = srng.bernoulli(0.5, name="c")
        mean = at.as_tensor(LOCS)[l_rv] + 2.0 * c_rv
    y_rv = srng.normal(mean + mu_rv, 1.0, name="y")
    return y_rv


def star_brute_force(mu: float) -> float:
    terms = []
    for c in (0, 1):
        for ls in itertools.product(range(4), repeat=3):
            mean = LOCS[list(ls)] + 2.0 * c + mu
            terms.append(np.log(0.5) + 3 * np.log(0.25) + st.norm(mean, 1).logpdf(STAR_DATA).sum())
    return logsumexp(terms) + st.norm(0, 1).logpdf(mu)


@pytest.mark.parametrize("scalar_first", [True, False])
def test_the_elimination_order_is_chosen_by_cost_not_by_how_the_model_is_written(scalar_first):
    # Summing out c first would leave l read through c's factor, jointly: 2 * 4**3 = 128
    # configurations, over this budget; l first costs 4 * 2 = 8.
    y_rv = star_model(scalar_first)
    sampler = aemix.build_sampler(y_rv, observed={y_rv: STAR_DATA}, support_budget=50, mode=FAST)
    steps = [(m.discrete.name, m.cost, m.scope) for m in sampler._model.marginalizations]
    assert steps == [("l", 8, ("c",)), ("c", 2, ())]
    text = sampler.explain()
    assert "order: l, c (chosen by cost" in text
    assert "8 configurations evaluated, at each value of c" in text
    for mu in (-0.7, 0.4):
        np.testing.assert_allclose(sampler.logdensity({"mu": mu}), star_brute_force(mu), rtol=1e-10)


def test_the_budget_applies_to_a_step_with_the_variables_it_is_evaluated_again_for():
    # Two scalars of 60 values read by one child: whichever goes first is evaluated at each
    # value of the other, 3600 configurations; each alone is 60.
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    a_rv = srng.integers(0, 60, name="a")
    b_rv = srng.integers(0, 60, name="b")
    y_rv = srng.normal(mu_rv + 0.01 * a_rv - 0.02 * b_rv, 1.0, name="y")
    with pytest.raises(aemix.MarginalizationError, match=r"costs 3600 evaluations .*60 of its own"):
        aemix.build_sampler(y_rv, observed={y_rv: 0.5}, support_budget=1000, mode=FAST)
    sampler = aemix.build_sampler(y_rv, observed={y_rv: 0.5}, support_budget=4000, mode=FAST)
    a, b = np.meshgrid(np.arange(60), np.arange(60))
    exact = logsumexp(st.norm(0.2 + 0.01 * a - 0.02 * b, 1).logpdf(0.5)) - 2 * np.log(60)
    np.testing.assert_allclose(
        sampler.logdensity({"mu": 0.2}), exact + st.norm(0, 1).logpdf(0.2), rtol=1e-10
    )


# -- per-element summation, however the index is written ------------------------------------------

N_OBS, N_COMP, N_COL = 5, 3, 2
WEIGHTS = np.array([0.3, 0.5, 0.2])
_rng = np.random.default_rng(11)
DATA_MATRIX = _rng.normal(size=(N_OBS, N_COL))
DATA_VECTOR = _rng.normal(size=N_OBS)
COVARIATES = _rng.normal(size=(N_OBS, N_COL))


def _indexed(writing: str):
    """``(y, data, loc(params, k) -> the mean of every row in component k, params)``."""
    srng = at.random.RandomStream(0)
    z = srng.categorical(WEIGHTS, size=N_OBS, name="z")
    if writing in ("mu[z, :]", "mu[z]"):
        mu = srng.normal(0.0, 3.0, size=(N_COMP, N_COL), name="mu")
        mean = mu[z, :] if writing == "mu[z, :]" else mu[z]
        return srng.normal(mean, 1.0, name="y"), DATA_MATRIX, lambda p, k: p[k], (N_COMP, N_COL)
    if writing == "mu[:, z].T":
        mu = srng.normal(0.0, 3.0, size=(N_COL, N_COMP), name="mu")
        y = srng.normal(mu[:, z].T, 1.0, name="y")
        return y, DATA_MATRIX, lambda p, k: p[:, k], (N_COL, N_COMP)
    if writing == "(X * beta[z]).sum(1)":
        mu = srng.normal(0.0, 3.0, size=(N_COMP, N_COL), name="mu")
        y = srng.normal((at.as_tensor(COVARIATES) * mu[z]).sum(axis=1), 1.0, name="y")
        return y, DATA_VECTOR, lambda p, k: COVARIATES @ p[k], (N_COMP, N_COL)
    mu = srng.normal(0.0, 3.0, size=N_COMP, name="mu")
    if writing == "mu[z].reshape((n, 1))":
        # (each row's mean, made a column by a reshape: row i reads z_i)
        y = srng.normal(mu[z].reshape((N_OBS, 1)), 1.0, size=(N_OBS, N_COL), name="y")
        return y, DATA_MATRIX, lambda p, k: p[k], (N_COMP,)
    if writing == "stack(comps)[z, arange(n)]":
        # (one row per component, one column per observation: observation i takes row z_i)
        x = COVARIATES[:, 0]
        comps = at.stack([mu[k] * x for k in range(N_COMP)])
        y = srng.normal(comps[z, at.arange(N_OBS)], 1.0, name="y")
        return y, DATA_VECTOR, lambda p, k: p[k] * x, (N_COMP,)
    if writing == "table[z, group]":
        table = srng.normal(0.0, 3.0, size=(N_COMP, 3), name="mu")
        group = np.array([0, 1, 2, 0, 1])
        y = srng.normal(table[z, at.as_tensor(group)], 1.0, name="y")
        return y, DATA_VECTOR, lambda p, k: p[k, group], (N_COMP, 3)
    if writing == "expand_dims(mu[z], 1)":
        y = srng.normal(at.expand_dims(mu[z], 1), 1.0, size=(N_OBS, N_COL), name="y")
        return y, DATA_MATRIX, lambda p, k: p[k], (N_COMP,)
    if writing == "one_hot(z) @ mu":
        one_hot = at.eq(z[:, None], at.arange(N_COMP)[None, :]).astype("float64")
        mean = at.dot(one_hot, mu)
    else:  # "take(mu, z)"
        mean = at.take(mu, z)
    return srng.normal(mean, 1.0, name="y"), DATA_VECTOR, lambda p, k: p[k], (N_COMP,)


@pytest.mark.parametrize(
    "writing",
    [
        "mu[z]",
        "mu[z, :]",
        "mu[:, z].T",
        "(X * beta[z]).sum(1)",
        "one_hot(z) @ mu",
        "take(mu, z)",
        "mu[z].reshape((n, 1))",
        "expand_dims(mu[z], 1)",
        "stack(comps)[z, arange(n)]",
        "table[z, group]",
    ],
)
def test_each_way_of_indexing_by_a_membership_is_summed_per_element_and_exactly(writing):
    y_rv, data, loc, shape = _indexed(writing)
    # Jointly, the 3**5 configurations would be over this budget.
    sampler = aemix.build_sampler(y_rv, observed={y_rv: data}, support_budget=100, mode=FAST)
    (step,) = sampler._model.marginalizations
    assert step.node.op.elementwise and step.cost == N_COMP
    params = np.random.default_rng(len(writing)).normal(size=shape)
    per_row = np.stack(
        [st.norm(loc(params, k), 1).logpdf(data).reshape(N_OBS, -1).sum(1) for k in range(N_COMP)],
        axis=1,
    )
    exact = logsumexp(np.log(WEIGHTS) + per_row, axis=1).sum()
    exact += st.norm(0, 3).logpdf(params).sum()
    np.testing.assert_allclose(sampler.logdensity({"mu": params}), exact, rtol=1e-10)


@pytest.mark.parametrize("writing", ["mu[:, z].T", "one_hot(z) @ mu", "table[z, group]"])
def test_memberships_read_through_a_transpose_or_a_product_are_recovered_exactly(writing):
    y_rv, data, loc, _ = _indexed(writing)
    sampler = aemix.build_sampler(y_rv, observed={y_rv: data}, mode=FAST)
    result = sampler.sample(3, n_chains=2, warmup=30, seed=0, loop="scan", var_names=["mu", "z"])
    probs = result.conditional_probabilities["z"]
    assert probs.shape == (2, 3, N_OBS, N_COMP)
    for c in range(2):
        for d in range(3):
            mu = result.draws["mu"][c, d]
            log_lik = np.stack(
                [
                    st.norm(loc(mu, k), 1).logpdf(data).reshape(N_OBS, -1).sum(1)
                    for k in range(N_COMP)
                ],
                axis=1,
            )
            log_post = np.log(WEIGHTS) + log_lik
            exact = np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))
            np.testing.assert_allclose(probs[c, d], exact, atol=1e-12)


def test_a_discrete_child_of_each_of_forty_elements_is_summed_per_element():
    # z0_i ~ Cat(w), z1_i ~ Cat(P[z0_i]), y_i ~ N(mu[z1_i], 1): the cost model must see that z0
    # stays per element once z1 is summed out (its categorical's last axis is its core axis),
    # or it estimates 2 * 3**40 evaluations and refuses the model.
    w0, transition = np.array([0.2, 0.5, 0.3]), np.array([[0.7, 0.3], [0.4, 0.6], [0.1, 0.9]])
    data = np.random.default_rng(0).normal(size=40) * 2
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 3.0, size=2, name="mu")
    z0_rv = srng.categorical(w0, size=40, name="z0")
    z1_rv = srng.categorical(at.as_tensor(transition)[z0_rv], name="z1")
    y_rv = srng.normal(mu_rv[z1_rv], 1.0, name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: data}, mode=FAST)
    assert [(m.discrete.name, m.cost) for m in sampler._model.marginalizations] == [
        ("z1", 6),
        ("z0", 3),
    ]
    mu = np.array([-0.5, 1.2])
    per_value = w0 @ transition  # P(z1_i = k)
    exact = logsumexp(np.log(per_value) + st.norm(mu, 1).logpdf(data[:, None]), axis=1).sum()
    exact += st.norm(0, 3).logpdf(mu).sum()
    np.testing.assert_allclose(sampler.logdensity({"mu": mu}), exact, rtol=1e-10)


@pytest.mark.parametrize(
    "make, support, logpmf",
    [
        (lambda s: s.betabinom(5, 2.0, 3.0), range(6), st.betabinom(5, 2.0, 3.0).logpmf),
        (lambda s: s.hypergeometric(5, 4, 3), range(4), st.hypergeom(9, 5, 3).logpmf),
    ],
    ids=["betabinom", "hypergeometric"],
)
def test_beta_binomial_and_hypergeometric_latents_are_summed_exactly(make, support, logpmf):
    """Latent counts of finite support (the support rules for both are new): the marginal density
    against brute force over the support."""
    srng = at.random.RandomStream(0)
    k = make(srng)
    k.name = "k"
    mu = srng.normal(0.0, 1.0, name="mu")
    y = srng.normal(mu + 0.5 * k, 1.0, size=3, name="y")
    data = np.array([0.8, 1.3, 2.2])
    sampler = aemix.build_sampler(y, observed={y: data}, mode="FAST_COMPILE")
    for m in (0.3, -1.2):
        joint = np.array(
            [logpmf(v) + st.norm(m + 0.5 * v, 1.0).logpdf(data).sum() for v in support]
        )
        expected = st.norm().logpdf(m) + logsumexp(joint)
        np.testing.assert_allclose(sampler.logdensity({"mu": m}), expected, rtol=1e-10)


def test_a_mixture_of_multivariate_normals_is_exact_for_many_chains_at_once():
    # The batched log-density maps aeppl's multivariate normal density over chains; a node that
    # reads one variable at two inputs made the loop's inputs repeat, which Aesara refuses (the
    # model could not be sampled).
    data = np.array([[-2.0, 0.1], [-1.5, -0.4], [-2.2, 1.0]])
    cov = np.array([[1.0, 0.3], [0.3, 1.0]])
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, 2.0, size=(2, 2), name="mu")
    z = srng.categorical(np.array([0.4, 0.6]), name="z")
    y = srng.multivariate_normal(mu[z], cov, size=3, name="y")
    sampler = aemix.build_sampler(y, {y: data})
    points = np.random.default_rng(3).normal(size=(5, 4))
    exact = [
        st.norm(0, 2).logpdf(p).sum()
        + logsumexp(
            [
                np.log(w) + st.multivariate_normal(p.reshape(2, 2)[k], cov).logpdf(data).sum()
                for k, w in enumerate([0.4, 0.6])
            ]
        )
        for p in points
    ]
    np.testing.assert_allclose(sampler._logdensity_batch(points), exact, rtol=1e-10)
    result = sampler.sample(20, n_chains=4, seed=1, warmup=20, loop="scan", diagnose=False)
    assert result.draws["mu"].shape == (4, 20, 2, 2)
