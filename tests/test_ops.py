import aesara
import aesara.tensor as at
import numpy as np
import pytest
import scipy.stats as st
from aeppl import joint_logprob
from scipy.special import logsumexp as np_logsumexp

from aemix.marginalize import marginalize
from aemix.ops import logsumexp
from tests.helpers import SEED_LOC, SEED_SCALE, SEED_WEIGHTS, mixture_logpdf, seed_model, stat_scale


def marginal_logpdf_fn(outputs, value_rv):
    model = marginalize(outputs)
    marginal = model.original_to_marginal[value_rv]
    logp, (y_vv,) = joint_logprob(marginal)
    return aesara.function([y_vv], logp)


def test_logsumexp_is_stable_and_exact():
    x = at.matrix("x")
    f = aesara.function([x], logsumexp(x, axis=1))
    values = np.array([[1000.0, 1000.0], [-1000.0, -1001.0], [-np.inf, -np.inf], [-np.inf, 0.0]])
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(f(values), np_logsumexp(values, axis=1))


def test_seed_joint_logprob_matches_the_seed_text():
    _, I_rv, Y_rv = seed_model()
    logp, (y_vv, i_vv) = joint_logprob(Y_rv, I_rv)
    assert np.isclose(logp.eval({y_vv: 10.0, i_vv: 3}), -6.452221131239579, rtol=0, atol=1e-12)


def test_vector_mixture_density_matches_scipy_including_far_tails():
    _, _, Y_rv = seed_model()
    f = marginal_logpdf_fn([Y_rv], Y_rv)
    ys = np.concatenate(
        [np.linspace(-50, 50, 990), [-1e3, -300, 300, 1e3, 1e4, -1e4, 0, 3.2, 2.5, -2]]
    )
    got = np.array([f(y) for y in ys])
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, mixture_logpdf(ys), rtol=1e-12, atol=1e-12)


def test_stacked_mixture_of_different_families_matches_scipy():
    srng = at.random.RandomStream(0)
    comps = [srng.normal(1.0, 2.0), srng.gamma(2.0, 4.0), srng.exponential(0.5)]
    w = np.array([0.5, 0.3, 0.2])
    I_rv = srng.categorical(w)
    Y_rv = at.stack(comps)[I_rv]
    f = marginal_logpdf_fn([Y_rv], Y_rv)
    for y in [-3.0, 0.5, 2.0, 40.0]:
        with np.errstate(divide="ignore"):
            ref = np_logsumexp(
                np.log(w)
                + np.array(
                    [
                        st.norm(1, 2).logpdf(y),
                        st.gamma(2.0, scale=1 / 4.0).logpdf(y),
                        st.expon(scale=0.5).logpdf(y),
                    ]
                )
            )
        np.testing.assert_allclose(f(y), ref, rtol=1e-12)


def test_seed_marginal_at_ten():
    _, _, Y_rv = seed_model()
    f = marginal_logpdf_fn([Y_rv], Y_rv)
    exact = np_logsumexp(np.log(SEED_WEIGHTS) + st.norm(SEED_LOC, SEED_SCALE).logpdf(10.0))
    np.testing.assert_allclose(f(10.0), exact, rtol=0, atol=1e-12)


# -- exactness against brute-force enumeration (issue: rule library) --------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as hst  # noqa: E402

import aemix  # noqa: E402
from tests.helpers import brute_force_logdensity  # noqa: E402

FAST = "FAST_COMPILE"
probability = hst.floats(0.05, 0.95)
location = hst.floats(-5, 5)
exact = settings(max_examples=max(5, int(10 * stat_scale())), deadline=None)


def assert_exact(got, reference):
    np.testing.assert_allclose(got, reference, rtol=1e-8)


@exact
@given(
    n=hst.integers(1, 3),
    weights=hst.lists(hst.floats(0.05, 1.0), min_size=2, max_size=3),
    mu=hst.lists(location, min_size=3, max_size=3),
    data=hst.lists(location, min_size=3, max_size=3),
)
def test_per_observation_categorical_index_is_exact(n, weights, mu, data):
    w = np.array(weights) / np.sum(weights)
    k = len(w)
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 3.0, size=k, name="mu")
    z_rv = srng.categorical(w, size=n, name="z")
    y_rv = srng.normal(mu_rv[z_rv], 1.5, name="y")
    y = np.array(data[:n])
    sampler = aemix.build_sampler(y_rv, observed={y_rv: y}, mode=FAST)
    assert sampler.marginalized == ("z",)
    mu_value = np.array(mu[:k])
    ref = brute_force_logdensity({mu_rv: mu_value}, {z_rv: range(k)}, {y_rv: y})
    assert_exact(sampler.logdensity({"mu": mu_value}), ref)


@exact
@given(
    n=hst.integers(1, 3),
    p=probability,
    a=location,
    b=location,
    data=hst.lists(location, min_size=3, max_size=3),
)
def test_per_observation_bernoulli_index_is_exact(n, p, a, b, data):
    srng = at.random.RandomStream(0)
    a_rv = srng.normal(0.0, 3.0, name="a")
    b_rv = srng.normal(0.0, 3.0, name="b")
    z_rv = srng.bernoulli(np.float64(p), size=n, name="z")
    y_rv = srng.normal(at.switch(z_rv, a_rv, b_rv), 1.0, name="y")
    y = np.array(data[:n])
    sampler = aemix.build_sampler(y_rv, observed={y_rv: y}, mode=FAST)
    ref = brute_force_logdensity({a_rv: a, b_rv: b}, {z_rv: (0, 1)}, {y_rv: y})
    assert_exact(sampler.logdensity({"a": a, "b": b}), ref)


@exact
@given(
    p=probability,
    lam=hst.floats(0.1, 8.0),
    data=hst.lists(hst.integers(0, 6), min_size=1, max_size=4),
)
def test_zero_inflated_poisson_switch_is_exact(p, lam, data):
    y = np.array(data)
    n = len(y)
    srng = at.random.RandomStream(0)
    lam_rv = srng.gamma(2.0, 1.0, name="lam")
    # A Python float literal: aemix must be float64-accurate anyway (the reference is scipy).
    z_rv = srng.bernoulli(p, size=n, name="z")
    y_rv = at.switch(z_rv, 0, srng.poisson(lam_rv, size=n))
    sampler = aemix.build_sampler({"y": y_rv}, observed={y_rv: y}, mode=FAST)
    assert sampler.marginalized == ("z",) and sampler.latent == ("lam",)
    # Brute force by hand: y_i is 0 when z_i = 1, Poisson when z_i = 0 (aeppl has no point mass).
    per_obs = np_logsumexp(
        [np.log(p) + np.where(y == 0, 0.0, -np.inf), np.log1p(-p) + st.poisson(lam).logpmf(y)],
        axis=0,
    )
    ref = st.gamma(2.0).logpdf(lam) + per_obs.sum()
    assert_exact(sampler.logdensity({"lam": lam}), ref)


# The switch's condition written as users write it: each is ``switch(z, 0, counts)``.
_CONDITIONS = {
    "eq(z, 1)": lambda z, c: at.switch(at.eq(z, 1), 0, c),
    "z > 0": lambda z, c: at.switch(z > 0, 0, c),
    "eq(z, 0), branches swapped": lambda z, c: at.switch(at.eq(z, 0), c, 0),
    "z as bool": lambda z, c: at.switch(z.astype("bool"), 0, c),
    "1 - z, branches swapped": lambda z, c: at.switch(1 - z, c, 0),
    "neq(z, 0)": lambda z, c: at.switch(at.neq(z, 0), 0, c),
}


def test_a_zero_inflation_whose_condition_is_a_function_of_the_switch_is_exact():
    # One observed zero inflation per form, each with its own switch (one model, one compile).
    y = np.array([0, 0, 3, 5, 0, 2])
    srng = at.random.RandomStream(0)
    p_rv = srng.beta(1.0, 1.0, name="p")
    lam_rv = srng.gamma(2.0, 1.0, name="lam")
    observed = {}
    for k, form in enumerate(_CONDITIONS.values()):
        z_rv = srng.bernoulli(p_rv, size=6, name=f"z{k}")
        y_rv = form(z_rv, srng.poisson(lam_rv, size=6))
        y_rv.name = f"y{k}"
        observed[y_rv] = y
    sampler = aemix.build_sampler(list(observed), observed=observed, mode=FAST)
    assert set(sampler.marginalized) == {f"z{k}" for k in range(len(_CONDITIONS))}
    assert sampler.explain().count("switch_mixture") == len(_CONDITIONS)
    p, lam = 0.3, 2.5
    per_obs = np.log(np.where(y == 0, p, 0.0) + (1 - p) * st.poisson(lam).pmf(y))
    ref = st.beta(1, 1).logpdf(p) + st.gamma(2.0).logpdf(lam) + len(_CONDITIONS) * per_obs.sum()
    assert_exact(sampler.logdensity({"p": p, "lam": lam}), ref)


def test_a_scalar_switch_condition_on_a_vector_of_counts_is_exact():
    # One eq(z, 1) for the whole vector (broadcast by the switch): all structural zeros or none.
    srng = at.random.RandomStream(0)
    lam_rv = srng.gamma(2.0, 1.0, name="lam")
    z_rv = srng.bernoulli(0.3, name="z")
    y_rv = at.switch(at.eq(z_rv, 1), 0, srng.poisson(lam_rv, size=4))
    for y in (np.array([0, 1, 0, 2]), np.zeros(4, dtype=int)):
        sampler = aemix.build_sampler({"y": y_rv}, observed={y_rv: y}, mode=FAST)
        counts = st.poisson(1.5).logpmf(y).sum()
        ref = st.gamma(2.0).logpdf(1.5) + np.logaddexp(
            np.log(0.3) + (0.0 if not y.any() else -np.inf), np.log(0.7) + counts
        )
        assert_exact(sampler.logdensity({"lam": 1.5}), ref)


# (a condition on the rows, and whether it is true where the site is occupied)
_ROW_CONDITIONS = {
    "eq(z, 1)[:, None]": (lambda z: at.eq(z, 1)[:, None], True),
    "gt(z, 0).dimshuffle(0, 'x')": (lambda z: at.gt(z, 0).dimshuffle(0, "x"), True),
    "(1 - z)[:, None]": (lambda z: (1 - z)[:, None], False),
}


@pytest.mark.parametrize("n_sites, n_visits", [(4, 4), (5, 3), (3, 6)])
@pytest.mark.parametrize("form", list(_ROW_CONDITIONS))
def test_an_occupancy_condition_read_per_row_is_each_sites_own(form, n_sites, n_visits):
    # Site i is occupied (z_i = 1) or not; each of its visits detects with p when occupied.  The
    # condition, put on the rows by [:, None], was read as z's own layout: with as many sites as
    # visits it summed the wrong elements silently, otherwise Aesara failed on the shapes.
    import itertools

    condition, true_when_occupied = _ROW_CONDITIONS[form]
    y = (np.random.default_rng(n_sites).random((n_sites, n_visits)) < 0.4).astype(int)
    y[1] = 0
    srng = at.random.RandomStream(0)
    psi_rv = srng.beta(1.0, 1.0, name="psi")
    p_rv = srng.beta(1.0, 1.0, name="p")
    z_rv = srng.bernoulli(psi_rv, size=n_sites, name="z")
    branches = (p_rv, 0.0) if true_when_occupied else (0.0, p_rv)
    y_rv = srng.bernoulli(at.switch(condition(z_rv), *branches), size=(n_sites, n_visits), name="y")
    sampler = aemix.build_sampler({"y": y_rv}, observed={y_rv: y}, mode=FAST)
    assert sampler.marginalized == ("z",)
    psi, p = 0.6, 0.35
    # By enumeration of every occupancy configuration (2^n_sites), in NumPy.
    terms = []
    for config in itertools.product((0, 1), repeat=n_sites):
        occupied = np.array(config)[:, None]
        detect = np.where(occupied == 1, p, 0.0) * np.ones((n_sites, n_visits))
        terms.append(st.bernoulli(psi).logpmf(config).sum() + st.bernoulli(detect).logpmf(y).sum())
    # (FAST_COMPILE's NumPy log warns at the unoccupied branch's log(0) = -inf, its value)
    with np.errstate(divide="ignore"):
        assert_exact(sampler.logdensity({"psi": psi, "p": p}), np_logsumexp(terms))


def test_a_switch_condition_that_is_not_the_bernoulli_is_left_alone():
    # eq(z, 2) is false at both values: not a switch on z (refused as before, not rewritten).
    srng = at.random.RandomStream(0)
    z_rv = srng.bernoulli(0.5, size=3, name="z")
    y_rv = at.switch(at.eq(z_rv, 2), 0, srng.poisson(2.0, size=3))
    with pytest.raises(aemix.MarginalizationError, match="'z'"):
        aemix.build_sampler({"y": y_rv}, observed={y_rv: np.array([0, 1, 2])}, mode=FAST)


@exact
@given(
    e=hst.floats(0.1, 6.0),
    l=hst.floats(0.1, 6.0),
    counts=hst.lists(hst.integers(0, 8), min_size=2, max_size=6),
)
def test_change_point_is_exact(e, l, counts):
    y = np.array(counts)
    T = len(y)
    srng = at.random.RandomStream(0)
    tau_rv = srng.integers(0, T, name="tau")
    e_rv = srng.exponential(1.0, name="e")
    l_rv = srng.exponential(1.0, name="l")
    y_rv = srng.poisson(at.switch(at.arange(T) < tau_rv, e_rv, l_rv), name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: y}, mode=FAST)
    assert sampler.marginalized == ("tau",)
    ref = brute_force_logdensity({e_rv: e, l_rv: l}, {tau_rv: range(T)}, {y_rv: y})
    assert_exact(sampler.logdensity({"e": e, "l": l}), ref)


@exact
@given(p=probability, q=probability, a=location, data=hst.lists(location, min_size=2, max_size=2))
def test_two_independent_discrete_latents_and_a_shared_index(p, q, a, data):
    # z1 is shared by two observed variables; z2 is a second, independent switch.
    srng = at.random.RandomStream(0)
    a_rv = srng.normal(0.0, 2.0, name="a")
    z1_rv = srng.bernoulli(np.float64(p), name="z1")
    z2_rv = srng.bernoulli(np.float64(q), name="z2")
    y1_rv = srng.normal(a_rv + 3.0 * z1_rv, 1.0, name="y1")
    y2_rv = srng.normal(a_rv - 2.0 * z1_rv + z2_rv, 1.0, name="y2")
    observed = {y1_rv: data[0], y2_rv: data[1]}
    sampler = aemix.build_sampler([y1_rv, y2_rv], observed=observed, mode=FAST)
    assert set(sampler.marginalized) == {"z1", "z2"}
    ref = brute_force_logdensity({a_rv: a}, {z1_rv: (0, 1), z2_rv: (0, 1)}, observed)
    assert_exact(sampler.logdensity({"a": a}), ref)


@exact
@given(
    w=hst.lists(hst.floats(0.05, 1.0), min_size=2, max_size=2),
    v=hst.lists(hst.floats(0.05, 1.0), min_size=2, max_size=2),
    y=location,
)
def test_nested_mixture_is_exact(w, v, y):
    # Y = stack([X, M])[I], where M = N[J] is itself a mixture.
    w, v = np.array(w) / sum(w), np.array(v) / sum(v)
    srng = at.random.RandomStream(0)
    N_rv = srng.normal(np.array([-1.0, 2.0]), np.array([0.5, 1.5]), name="N")
    J_rv = srng.categorical(v, name="J")
    X_rv = srng.normal(4.0, 2.0, name="X")
    I_rv = srng.categorical(w, name="I")
    Y_rv = at.stack([X_rv, N_rv[J_rv]])[I_rv]
    sampler = aemix.build_sampler({"Y": Y_rv}, mode=FAST)
    assert set(sampler.marginalized) == {"I", "J"}
    inner = np_logsumexp(np.log(v) + st.norm([-1.0, 2.0], [0.5, 1.5]).logpdf(y))
    ref = np_logsumexp([np.log(w[0]) + st.norm(4.0, 2.0).logpdf(y), np.log(w[1]) + inner])
    assert_exact(sampler.logdensity({"Y": y}), ref)


@exact
@given(p=probability, n_data=hst.integers(0, 3))
def test_binomial_latent_is_exact(p, n_data):
    srng = at.random.RandomStream(0)
    # float64 literals: the brute-force reference evaluates the user's graph as written.
    p_rv = srng.beta(np.float64(2.0), np.float64(2.0), name="p")
    # (an int64 n: the reference evaluates the graph as written, and aeppl computes the binomial
    # coefficient of a small integer literal in float32; aemix upcasts it)
    k_rv = srng.binomial(np.int64(3), p_rv, name="k")
    y_rv = srng.binomial(k_rv, np.float64(0.5), name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: n_data}, mode=FAST)
    ref = brute_force_logdensity({p_rv: p}, {k_rv: range(4)}, {y_rv: n_data})
    assert_exact(sampler.logdensity({"p": p}), ref)
