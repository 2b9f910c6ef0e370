"""Change points summed out in ``O(T + K)`` (`aemix.ops.ChangePointRV`), against brute force.

Every log-density here is compared with the sum over every value of the change point of aeppl's
joint log-probability (`tests.helpers.brute_force_logdensity`), and every conditional with that
sum's terms normalized, at ``1e-9``.
"""

import aesara
import aesara.tensor as at
import numpy as np
import pytest
import scipy.stats as st
from aeppl import joint_logprob
from hypothesis import given, settings
from hypothesis import strategies as hst
from scipy.special import logsumexp

import aemix
from aemix.ops import ChangePointRV, FiniteEnumerationRV
from tests.helpers import brute_force_logdensity, change_point_posterior

FAST = "FAST_COMPILE"
# float64 parameters: Aesara makes float32 (or int8) constants of literals, and the brute force
# (aeppl on the user's graph, which the sampler upcasts) would compute in their precision.
F = np.float64
few = settings(max_examples=4, deadline=None)
counts = hst.lists(hst.integers(0, 9), min_size=3, max_size=8)
rate = hst.floats(0.05, 20.0)
location = hst.floats(-5.0, 5.0)

FORMS = {
    "t < tau": lambda t, d: t < d,
    "t <= tau": lambda t, d: t <= d,
    "t > tau": lambda t, d: t > d,
    "t >= tau": lambda t, d: t >= d,
    "tau > t": lambda t, d: d > t,
    "tau >= t": lambda t, d: d >= t,
    "tau < t": lambda t, d: d < t,
    "tau <= t": lambda t, d: d <= t,
}


def assert_exact(got, reference):
    np.testing.assert_allclose(got, reference, rtol=1e-9, atol=1e-9)


def placeholder_of(sampler):
    (m,) = sampler._model.marginalizations
    return m


def poisson_change_point(y, form=FORMS["t < tau"], reversed_branches=False, tau=None):
    T = len(y)
    srng = at.random.RandomStream(0)
    tau_rv = srng.integers(0, T, name="tau") if tau is None else tau(srng, T)
    e_rv = srng.gamma(F(2.0), F(1.0), name="e")
    l_rv = srng.gamma(F(2.0), F(1.0), name="l")
    mask = form(at.arange(T), tau_rv)
    branches = (l_rv, e_rv) if reversed_branches else (e_rv, l_rv)
    y_rv = srng.poisson(at.switch(mask, *branches), name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: y}, mode=FAST)
    return sampler, (tau_rv, e_rv, l_rv, y_rv)


def support_of(sampler):
    return placeholder_of(sampler).node.inputs[1].data


@pytest.mark.parametrize(
    "form,reversed_branches", [(form, i % 2 == 1) for i, form in enumerate(FORMS)]
)
def test_every_comparison_is_exact(form, reversed_branches):
    y = np.array([4, 6, 3, 0, 1, 2, 0])
    sampler, (tau_rv, e_rv, l_rv, y_rv) = poisson_change_point(y, FORMS[form], reversed_branches)
    m = placeholder_of(sampler)
    assert m.rule == "change_point" and isinstance(m.node.op, ChangePointRV)
    for e, l in [(3.5, 0.6), (0.2, 7.0), (1.0, 1.0)]:
        ref = brute_force_logdensity({e_rv: e, l_rv: l}, {tau_rv: range(len(y))}, {y_rv: y})
        assert_exact(sampler.logdensity({"e": e, "l": l}), ref)


@few
@given(y=counts, e=rate, l=rate)
def test_poisson_children_on_random_data(y, e, l):
    y = np.array(y)
    sampler, (tau_rv, e_rv, l_rv, y_rv) = poisson_change_point(y)
    ref = brute_force_logdensity({e_rv: e, l_rv: l}, {tau_rv: range(len(y))}, {y_rv: y})
    assert_exact(sampler.logdensity({"e": e, "l": l}), ref)


@few
@given(
    y=hst.lists(location, min_size=3, max_size=8),
    m1=location,
    m2=location,
    s=hst.floats(0.2, 5.0),
    form=hst.sampled_from(list(FORMS)),
)
def test_normal_children_on_random_data(y, m1, m2, s, form):
    # The change point moves the mean; the shared scale is a latent that does not read it.
    y = np.array(y)
    T = len(y)
    srng = at.random.RandomStream(0)
    tau_rv = srng.categorical(np.arange(1.0, T + 2) / np.sum(np.arange(1.0, T + 2)), name="tau")
    m1_rv, m2_rv = srng.normal(F(0.0), F(3.0), name="m1"), srng.normal(F(0.0), F(3.0), name="m2")
    s_rv = srng.gamma(F(2.0), F(1.0), name="s")
    mean = at.switch(FORMS[form](at.arange(T), tau_rv), m1_rv, m2_rv)
    y_rv = srng.normal(mean, s_rv, name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: y}, mode=FAST)
    assert placeholder_of(sampler).rule == "change_point"
    ref = brute_force_logdensity({m1_rv: m1, m2_rv: m2, s_rv: s}, {tau_rv: range(T + 1)}, {y_rv: y})
    assert_exact(sampler.logdensity({"m1": m1, "m2": m2, "s": s}), ref)


def test_a_changing_scale_and_a_support_beyond_the_series():
    # tau in -2..T+2: the values before 0 and after T put every element in one regime (clipped).
    y = np.array([0.3, -1.2, 4.0, 2.2, 5.1])
    T = len(y)
    srng = at.random.RandomStream(0)
    tau_rv = srng.integers(-2, T + 3, name="tau")
    s1_rv, s2_rv = srng.gamma(F(2.0), F(1.0), name="s1"), srng.gamma(F(2.0), F(1.0), name="s2")
    y_rv = srng.normal(F(1.0), at.switch(at.arange(T) <= tau_rv, s1_rv, s2_rv), name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: y}, mode=FAST)
    assert placeholder_of(sampler).rule == "change_point"
    for s1, s2 in [(0.5, 3.0), (2.0, 0.7)]:
        ref = brute_force_logdensity({s1_rv: s1, s2_rv: s2}, {tau_rv: range(-2, T + 3)}, {y_rv: y})
        assert_exact(sampler.logdensity({"s1": s1, "s2": s2}), ref)


def test_two_children_share_the_change_point():
    # Different lengths, comparisons and families; one child has a second axis (the regime
    # broadcast over its rows), another reads the mask through `[:, None]` (time first).
    y1 = np.array([3, 5, 4, 0, 1, 0])
    y2 = np.array([[0.5, 1.5, -2.0, -1.0], [1.0, 0.2, -3.0, -2.5]])
    y3 = np.array([[1, 2], [0, 0], [2, 3]])
    srng = at.random.RandomStream(0)
    tau_rv = srng.integers(0, 5, name="tau")
    e_rv, l_rv = srng.gamma(F(2.0), F(1.0), name="e"), srng.gamma(F(2.0), F(1.0), name="l")
    m_rv = srng.normal(F(0.0), F(2.0), name="m")
    y1_rv = srng.poisson(at.switch(at.arange(6) < tau_rv, e_rv, l_rv), name="y1")
    mean2 = at.switch(tau_rv <= at.arange(4), m_rv, -m_rv)
    y2_rv = srng.normal(mean2, F(1.0), size=(2, 4), name="y2")
    mask3 = (at.arange(3) > tau_rv)[:, None]
    y3_rv = srng.poisson(at.switch(mask3, e_rv, F(2.0) * l_rv) * at.ones((3, 2)), name="y3")
    observed = {y1_rv: y1, y2_rv: y2, y3_rv: y3}
    sampler = aemix.build_sampler([y1_rv, y2_rv, y3_rv], observed=observed, mode=FAST)
    m = placeholder_of(sampler)
    assert isinstance(m.node.op, ChangePointRV)
    assert sorted((c.length, c.axis) for c in m.node.op.cuts) == [(3, 0), (4, 1), (6, 0)]
    for e, l, mu in [(2.0, 0.5, 1.0), (0.3, 4.0, -0.7)]:
        ref = brute_force_logdensity({e_rv: e, l_rv: l, m_rv: mu}, {tau_rv: range(5)}, observed)
        assert_exact(sampler.logdensity({"e": e, "l": l, "m": mu}), ref)


def test_a_child_that_reads_the_variable_otherwise_is_enumerated():
    y = np.array([1, 4, 2, 0])
    srng = at.random.RandomStream(0)
    tau_rv = srng.integers(0, 4, name="tau")
    e_rv = srng.gamma(F(2.0), F(1.0), name="e")
    y_rv = srng.poisson(at.switch(at.arange(4) < tau_rv, e_rv, F(1.0)) * (1 + tau_rv), name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: y}, mode=FAST)
    m = placeholder_of(sampler)
    assert m.rule == "finite_support" and type(m.node.op) is FiniteEnumerationRV
    assert "change point" not in sampler.explain()
    ref = brute_force_logdensity({e_rv: 1.5}, {tau_rv: range(4)}, {y_rv: y})
    assert_exact(sampler.logdensity({"e": 1.5}), ref)


def _brute_conditionals(rvs, tau_rv, support, observed, values):
    """``P(tau = k | values, data)`` by aeppl's joint log-probability at every ``k``."""
    logp, value_vars = joint_logprob(
        *rvs, tau_rv, realized={rv: at.as_tensor(d) for rv, d in observed.items()}
    )
    fn = aesara.function(value_vars, logp, mode=FAST)
    terms = np.array([fn(*values, np.int64(k)) for k in support])
    return np.exp(terms - logsumexp(terms))


@pytest.mark.parametrize("form", ["t < tau", "tau < t"])
def test_conditional_probabilities_are_exact(form):
    y = np.array([5, 3, 6, 4, 5, 1, 0, 2, 1, 0])
    sampler, (tau_rv, e_rv, l_rv, y_rv) = poisson_change_point(y, FORMS[form])
    result = sampler.sample(4, n_chains=3, seed=3, warmup=10, loop="scan", start="prior")
    probs = result.conditional_probabilities["tau"]
    assert probs.shape == (3, 4, len(y))
    for c, s in [(0, 0), (1, 2), (2, 3)]:
        values = [result.draws["e"][c, s], result.draws["l"][c, s]]
        exact = _brute_conditionals([e_rv, l_rv], tau_rv, range(len(y)), {y_rv: y}, values)
        np.testing.assert_allclose(probs[c, s], exact, rtol=1e-9, atol=1e-12)


def test_a_latent_child_and_an_observed_one():
    # x is latent and reads the change point: it is an output of the placeholder beside y.
    y = np.array([2, 0, 3, 5, 6])
    srng = at.random.RandomStream(0)
    tau_rv = srng.integers(0, 5, name="tau")
    x_rv = srng.normal(at.switch(at.arange(5) < tau_rv, F(-1.0), F(1.0)), F(1.0), name="x")
    r_rv = srng.gamma(F(2.0), F(1.0), name="r")
    y_rv = srng.poisson(at.switch(at.arange(5) < tau_rv, r_rv, 2 * r_rv), name="y")
    sampler = aemix.build_sampler([x_rv, y_rv], observed={y_rv: y}, mode=FAST)
    assert isinstance(placeholder_of(sampler).node.op, ChangePointRV)
    x = np.array([-0.5, -1.2, 0.8, 1.1, 0.4])
    ref = brute_force_logdensity({x_rv: x, r_rv: 1.3}, {tau_rv: range(5)}, {y_rv: y})
    assert_exact(sampler.logdensity({"x": x, "r": 1.3}), ref)
    # The log-likelihood of y given x: the joint over tau with and without y.
    draws = {"x": x[None, None], "r": np.array([[1.3]])}
    got = sampler.log_likelihood(draws)["y"]
    x_only = brute_force_logdensity({x_rv: x, r_rv: 1.3}, {tau_rv: range(5)}, {})
    assert_exact(np.sum(got), ref - x_only)
    exact = _brute_conditionals([x_rv, r_rv], tau_rv, range(5), {y_rv: y}, [x, 1.3])
    result = sampler.sample(2, n_chains=2, seed=0, warmup=5, loop="scan", start="prior")
    probs = result.conditional_probabilities["tau"]
    values = [result.draws["x"][1, 1], result.draws["r"][1, 1]]
    exact = _brute_conditionals([x_rv, r_rv], tau_rv, range(5), {y_rv: y}, values)
    np.testing.assert_allclose(probs[1, 1], exact, rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module")
def coal_sampler():
    counts = np.array([4, 5, 4, 1, 0, 4, 3, 4, 0, 6, 3, 3, 4, 0, 2, 6, 3, 3, 5, 4, 5, 3, 1, 4])
    counts = np.concatenate([counts, np.array([0, 1, 1, 0, 0, 1, 0, 2, 0, 1, 0, 0, 1, 1])])
    srng = at.random.RandomStream(0)
    T = len(counts)
    tau_rv = srng.integers(0, T, name="tau")
    e_rv = srng.gamma(F(2.0), F(1.0), name="e")
    l_rv = srng.gamma(F(2.0), F(1.0), name="l")
    y_rv = srng.poisson(at.switch(at.arange(T) < tau_rv, e_rv, l_rv), name="y")
    return counts, aemix.build_sampler(y_rv, observed={y_rv: counts})


def test_the_fused_loop_runs_the_change_point(coal_sampler):
    counts, sampler = coal_sampler
    text = sampler.explain()
    assert "rule 'change_point': y = ChangePoint(tau; y)" in text
    assert "cumulative sums over 38 elements" in text
    assert "loop: fused C loop" in text
    result = sampler.sample(200, n_chains=200, seed=5, warmup=300, loop="fused", start="prior")
    assert result.loop == "fused"
    # The Rao-Blackwellized posterior of tau against the exact one (rates integrated out).
    exact = change_point_posterior(counts, 2.0, 1.0)
    probs = result.conditional_probabilities["tau"].reshape(-1, len(counts))
    assert np.allclose(probs.sum(axis=1), 1.0)
    per_chain = result.conditional_probabilities["tau"].mean(axis=1)
    se = per_chain.std(axis=0) / np.sqrt(per_chain.shape[0]) + 1e-4
    assert np.all(np.abs(probs.mean(axis=0) - exact) < 5 * se), (probs.mean(axis=0), exact)


def test_without_the_rule_the_change_point_is_enumerated_to_the_same_density():
    from aemix.relations import RuleRegistry, registry

    rules = RuleRegistry()
    for rule in registry.rules():
        if rule.kind != "threshold":
            rules.register(rule.name, rule.relation, kind=rule.kind)
    y = np.array([4, 6, 3, 0, 1])
    fast, _ = poisson_change_point(y)
    srng = at.random.RandomStream(0)
    tau_rv = srng.integers(0, 5, name="tau")
    e_rv, l_rv = srng.gamma(F(2.0), F(1.0), name="e"), srng.gamma(F(2.0), F(1.0), name="l")
    y_rv = srng.poisson(at.switch(at.arange(5) < tau_rv, e_rv, l_rv), name="y")
    slow = aemix.build_sampler(y_rv, observed={y_rv: y}, mode=FAST, rules=rules)
    assert type(placeholder_of(slow).node.op) is FiniteEnumerationRV
    assert_exact(fast.logdensity({"e": 1.7, "l": 0.4}), slow.logdensity({"e": 1.7, "l": 0.4}))


def test_a_change_point_inside_another_enumeration():
    # z is summed out around the change point's placeholder (its child); tau's conditional is
    # given z's draw.
    y = np.array([3, 5, 0, 1, 2, 6])
    srng = at.random.RandomStream(0)
    tau_rv = srng.integers(0, 6, name="tau")
    z_rv = srng.bernoulli(F(0.3), name="z")
    e_rv, l_rv = srng.gamma(F(2.0), F(1.0), name="e"), srng.gamma(F(2.0), F(1.0), name="l")
    rate = at.switch(at.arange(6) >= tau_rv, e_rv, l_rv) * (1 + z_rv)
    y_rv = srng.poisson(rate, name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: y}, mode=FAST)
    rules = {m.discrete.name: m.rule for m in sampler._model.marginalizations}
    assert rules == {"tau": "change_point", "z": "finite_support"}
    for e, l in [(1.2, 3.0), (4.0, 0.5)]:
        ref = brute_force_logdensity(
            {e_rv: e, l_rv: l}, {tau_rv: range(6), z_rv: (0, 1)}, {y_rv: y}
        )
        assert_exact(sampler.logdensity({"e": e, "l": l}), ref)


def test_two_change_points_over_a_long_series_build_at_the_default_budget_and_are_exact():
    # tau2 is evaluated at each of tau1's 112 values, but as a change point (two evaluations of
    # the data's densities and cumulative sums), not at 112 * 112 configurations: the default
    # budget allows it, as it did before the budget counted the variables evaluated again.
    n_years = 112
    rng = np.random.default_rng(0)
    data = np.r_[rng.poisson(3, 40), rng.poisson(1, 40), rng.poisson(2, 32)]
    srng = at.random.RandomStream(0)
    rates = [srng.exponential(1.0, name=f"r{k}") for k in (1, 2, 3)]
    tau1 = srng.integers(0, n_years, name="tau1")
    tau2 = srng.integers(0, n_years, name="tau2")
    t = at.arange(n_years)
    rate = at.switch(t < tau1, rates[0], at.switch(t < tau2, rates[1], rates[2]))
    y = srng.poisson(rate, name="y")
    sampler = aemix.build_sampler(y, observed={y: data}, mode="FAST_COMPILE")
    assert max(m.cost for m in sampler._model.marginalizations) <= 2 * n_years
    point = {"r1": 2.5, "r2": 1.2, "r3": 1.8}
    a, b, years = np.meshgrid(*(np.arange(n_years),) * 3, indexing="ij")
    per_year = np.where(years < a, 2.5, np.where(years < b, 1.2, 1.8))
    log_lik = st.poisson(per_year).logpmf(data[years]).sum(-1)
    exact = logsumexp(log_lik) - 2 * np.log(n_years)
    exact += sum(st.expon().logpdf(v) for v in point.values())
    np.testing.assert_allclose(sampler.logdensity(point), exact, rtol=1e-10)
