"""Counts with unbounded support summed over a truncated range (`aemix.truncation`).

Densities are checked against scipy sums to 2000 terms; the N-mixture's posterior against 2-D
quadrature; the range against the data and the prior it was chosen from; the tail check against
a range the chains outgrow.
"""

import warnings

import aesara.tensor as at
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logsumexp

import aemix
from aemix import TruncationWarning
from tests.helpers import (
    N_MIXTURE_PRIOR,
    every_variable,
    n_mixture_logdensity,
    n_mixture_posterior,
    stat_scale,
)

FAST = "FAST_COMPILE"
N_TERMS = np.arange(2000)


def _n_mixture(y, **kwargs):
    """The N-mixture model of `tests.helpers` for the counts ``y`` (sites x visits)."""
    S, J = np.shape(y)
    srng = at.random.RandomStream(0)
    lam_rv = srng.gamma(*N_MIXTURE_PRIOR["lam"], name="lam")
    p_rv = srng.beta(*N_MIXTURE_PRIOR["p"], name="p")
    N_rv = srng.poisson(lam_rv, size=S, name="N")
    y_rv = srng.binomial(N_rv[:, None], p_rv, size=(S, J), name="y")
    return aemix.build_sampler(y_rv, {y_rv: y}, **kwargs)


def _n_mixture_data(S=8, J=4, lam=5.0, p=0.5, seed=3):
    rng = np.random.default_rng(seed)
    return rng.binomial(rng.poisson(lam, S)[:, None], p, size=(S, J))


def test_a_poisson_count_with_a_binomial_child_is_summed_exactly():
    y = np.array([3, 5, 2, 4])
    srng = at.random.RandomStream(0)
    lam_rv = srng.gamma(2.0, 0.5, name="lam")
    p_rv = srng.beta(2.0, 2.0, name="p")
    N_rv = srng.poisson(lam_rv, name="N")
    y_rv = srng.binomial(N_rv, p_rv, size=4, name="y")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sampler = aemix.build_sampler(y_rv, {y_rv: y}, mode=FAST)
    assert sampler.marginalized == ("N",)
    for lam, p in [(4.0, 0.5), (12.0, 0.3), (0.7, 0.9), (30.0, 0.1)]:
        exact = (
            st.gamma(2.0, scale=2.0).logpdf(lam)
            + st.beta(2, 2).logpdf(p)
            + logsumexp(
                st.poisson(lam).logpmf(N_TERMS) + st.binom(N_TERMS[:, None], p).logpmf(y).sum(-1)
            )
        )
        got = sampler.logdensity({"lam": lam, "p": p})
        assert got == pytest.approx(exact, rel=1e-9, abs=1e-9), (lam, p)


def test_the_n_mixture_is_summed_per_site_and_exactly():
    y = _n_mixture_data(S=6, J=3)
    sampler = _n_mixture(y, mode=FAST)
    (m,) = sampler._model.marginalizations
    assert m.node.op.elementwise  # each site's row of y reads its own count: 6 sums, not K ** 6
    rng = np.random.default_rng(0)
    for lam, p in zip(rng.uniform(0.5, 15.0, 6), rng.uniform(0.1, 0.9, 6)):
        got = sampler.logdensity({"lam": lam, "p": p})
        assert got == pytest.approx(n_mixture_logdensity(y, lam, p), rel=1e-9, abs=1e-9)


def test_the_range_starts_at_the_data_and_ends_past_the_prior_quantile():
    y = _n_mixture_data(S=6, J=3)
    truncation = _n_mixture(y, mode=FAST)._truncations()["N"]
    rows = y.max(axis=1)
    assert truncation.low == rows.min() and truncation.data_low == rows.max()
    assert truncation.n_prior_draws > 0 and not truncation.capped
    # The bound covers the prior at a rate far in the Gamma(2, rate 0.5) prior's tail.
    assert st.poisson(25.0).sf(truncation.bound - rows.max()) < 1e-12
    assert truncation.prior_tail < 1e-12


def test_explain_states_the_range_and_the_tolerance():
    text = _n_mixture(_n_mixture_data(S=6, J=3), mode=FAST, tail_tolerance=1e-10).explain()
    assert "N ~ poisson" in text and "rule 'truncated_count'" in text
    assert "summed per element over (6,) elements" in text
    assert "summed over [" in text and "tail tolerance 1e-10" in text
    assert "prior quantile" in text and "checked after sampling" in text


def test_a_constant_rate_is_cut_at_its_exact_quantile():
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    K_rv = srng.poisson(3.0, name="K")
    y_rv = srng.normal(mu_rv + K_rv, 1.0, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: 2.5}, mode=FAST)
    truncation = sampler._truncations()["K"]
    assert truncation.n_prior_draws == 0 and truncation.low == 0
    assert truncation.quantile == st.poisson(3.0).isf(1e-12)
    for mu in (-1.0, 0.3, 2.0):
        exact = st.norm(0, 1).logpdf(mu) + logsumexp(
            st.poisson(3.0).logpmf(N_TERMS) + st.norm(mu + N_TERMS, 1.0).logpdf(2.5)
        )
        assert sampler.logdensity({"mu": mu}) == pytest.approx(exact, rel=1e-9, abs=1e-9)


def test_negative_binomial_counts_are_summed_exactly():
    y = np.array([[2, 4, 3], [0, 1, 0], [6, 5, 7]])
    srng = at.random.RandomStream(0)
    q_rv = srng.beta(5.0, 2.0, name="q")
    p_rv = srng.beta(2.0, 2.0, name="p")
    N_rv = srng.negative_binomial(3.0, q_rv, size=3, name="N")
    y_rv = srng.binomial(N_rv[:, None], p_rv, size=(3, 3), name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: y}, mode=FAST)
    assert sampler._truncations()["N"].family == "nbinom"
    for q, p in [(0.6, 0.5), (0.4, 0.7), (0.9, 0.3)]:
        sites = st.nbinom(3.0, q).logpmf(N_TERMS)[:, None] + st.binom(
            N_TERMS[:, None, None], p
        ).logpmf(y).sum(-1)
        exact = st.beta(5, 2).logpdf(q) + st.beta(2, 2).logpdf(p) + logsumexp(sites, axis=0).sum()
        got = sampler.logdensity({"q": q, "p": p})
        assert got == pytest.approx(exact, rel=1e-9, abs=1e-9), (q, p)


def test_geometric_counts_are_summed_exactly():
    # numpy's geometric counts trials: its support starts at 1.
    y = np.array([7, 2, 11])
    srng = at.random.RandomStream(0)
    q_rv = srng.beta(2.0, 5.0, name="q")
    mu_rv = srng.gamma(2.0, 1.0, name="mu")
    N_rv = srng.geometric(q_rv, name="N")
    y_rv = srng.poisson(mu_rv * N_rv, size=3, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: y}, mode=FAST)
    assert sampler._truncations()["N"].low == 1
    n = N_TERMS[1:]
    for q, mu in [(0.3, 1.5), (0.1, 0.4), (0.6, 4.0)]:
        exact = (
            st.beta(2, 5).logpdf(q)
            + st.gamma(2.0, scale=1.0).logpdf(mu)
            + logsumexp(st.geom(q).logpmf(n) + st.poisson(mu * n[:, None]).logpmf(y).sum(-1))
        )
        got = sampler.logdensity({"q": q, "mu": mu})
        assert got == pytest.approx(exact, rel=1e-9, abs=1e-9), (q, mu)


def test_counts_are_drawn_from_their_exact_truncated_conditionals():
    y = _n_mixture_data(S=5, J=3)
    sampler = _n_mixture(y, mode=FAST)
    result = sampler.sample(
        5,
        n_chains=2,
        seed=0,
        warmup=20,
        diagnose=False,
        start="prior",
        var_names=every_variable(sampler),
    )
    support = sampler._recovery_graphs()[0].support
    probs = result.conditional_probabilities["N"]
    for c in range(2):
        lam, p = result.draws["lam"][c, -1], result.draws["p"][c, -1]
        log_joint = st.poisson(lam).logpmf(support)[:, None] + st.binom(
            support[:, None, None], p
        ).logpmf(y).sum(-1)
        exact = np.exp(log_joint - logsumexp(log_joint, axis=0)).T
        np.testing.assert_allclose(probs[c, -1], exact, rtol=1e-9, atol=1e-15)
    # Every drawn count can have produced its row.
    assert np.all(result.draws["N"] >= y.max(axis=1))
    assert result.truncation_tail["N"] < 1e-12


def test_a_name_in_count_bounds_that_is_no_summed_count_is_refused():
    y = _n_mixture_data(S=5, J=3)
    with pytest.raises(
        aemix.ModelError, match=r"count_bounds.*the counts summed over a range: \['N'\]"
    ):
        _n_mixture(y, mode=FAST, count_bounds={"n": 60})


def test_a_range_the_chains_outgrow_warns_after_sampling():
    y = _n_mixture_data(S=5, J=3)
    sampler = _n_mixture(y, mode=FAST, count_bounds={"N": 9})
    assert "bound set by count_bounds" in sampler.explain()
    with pytest.warns(
        TruncationWarning, match=r"N was summed over \[\d+, 9\].*count_bounds"
    ) as record:
        result = sampler.sample(20, n_chains=2, seed=0, warmup=50, diagnose=False, start="prior")
    assert record[0].filename == __file__  # attributed to the caller's line
    assert result.truncation_tail["N"] > 1e-12
    with pytest.warns(TruncationWarning, match="N was summed over"):
        summary = sampler.sample(
            20,
            n_chains=2,
            seed=0,
            warmup=50,
            diagnose=False,
            summary_only=True,
            start="prior",
        )
    assert summary.truncation_tail["N"] > 1e-12


def test_a_constant_rate_beyond_the_support_budget_is_refused_or_warned():
    def model():
        srng = at.random.RandomStream(0)
        mu_rv = srng.normal(0.0, 1.0, name="mu")
        K_rv = srng.poisson(200.0, name="K")
        y_rv = srng.normal(mu_rv + K_rv, 1.0, name="y")
        return y_rv

    y_rv = model()
    with pytest.raises(aemix.MarginalizationError, match="'K'.*unbounded.*support_budget"):
        aemix.build_sampler(y_rv, {y_rv: 200.0}, support_budget=100, mode=FAST)
    y_rv = model()
    with pytest.warns(UserWarning, match="'K'.*beyond"):
        sampler = aemix.build_sampler(
            y_rv, {y_rv: 200.0}, support_budget=100, on_budget="warn", mode=FAST
        )
    truncation = sampler._truncations()["K"]
    assert truncation.capped and truncation.size == 100
    assert "capped by support_budget" in sampler.explain()


def test_a_count_whose_parameters_cannot_be_drawn_is_refused_with_what_to_do():
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 1.0, name="mu")
    K_rv = srng.poisson(at.dscalar("rate"), name="K")
    y_rv = srng.normal(mu_rv + K_rv, 1.0, name="y")
    with pytest.raises(aemix.MarginalizationError, match="'K'.*count_bounds"):
        aemix.build_sampler(y_rv, {y_rv: 2.0}, mode=FAST)


def test_a_count_read_per_column_is_summed_per_element():
    # y[j, i] reads N_i alone: N's axis is y's axis 1, and column i is summed into N_i's term.
    y = np.array([[1, 0], [2, 1], [1, 3]])
    srng = at.random.RandomStream(0)
    p_rv = srng.beta(2.0, 2.0, name="p")
    N_rv = srng.binomial(3, 0.5, size=2, name="N")
    y_rv = srng.binomial(N_rv[None, :], p_rv, size=(3, 2), name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: y}, mode=FAST)
    (m,) = sampler._model.marginalizations
    assert m.node.op.elementwise and m.node.op.axes == ((1,),)
    assert "summed per element" in sampler.explain()
    n = np.arange(4)
    for p in (0.3, 0.6):
        sites = st.binom(3, 0.5).logpmf(n)[:, None] + st.binom(n[:, None, None], p).logpmf(y.T).sum(
            -1
        )
        exact = st.beta(2, 2).logpdf(p) + logsumexp(sites, axis=0).sum()
        assert sampler.logdensity({"p": p}) == pytest.approx(exact, rel=1e-9, abs=1e-9)


def test_a_poisson_count_read_per_column_starts_at_its_column_maximum():
    # The N-mixture model written with sites on the columns: y[j, i] ~ Bin(N_i, p).
    y = np.array([[1, 0, 3, 2], [2, 1, 0, 4], [0, 0, 1, 3]])
    srng = at.random.RandomStream(0)
    lam_rv = srng.gamma(2.0, 0.5, name="lam")
    p_rv = srng.beta(2.0, 2.0, name="p")
    N_rv = srng.poisson(lam_rv, size=4, name="N")
    y_rv = srng.binomial(N_rv[None, :], p_rv, size=(3, 4), name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: y}, mode=FAST)
    (m,) = sampler._model.marginalizations
    assert m.node.op.elementwise
    # N_i >= max_j y[j, i] = (2, 1, 3, 4): the range starts at the smallest, 1, and reaches 4 more.
    assert m.truncation.low == 1 and m.truncation.data_low == 4
    n = np.arange(400)
    for lam, p in ((3.0, 0.4), (0.7, 0.8)):
        sites = st.poisson(lam).logpmf(n)[:, None] + st.binom(n[:, None, None], p).logpmf(y.T).sum(
            -1
        )
        exact = (
            st.gamma(2.0, scale=2.0).logpdf(lam)
            + st.beta(2, 2).logpdf(p)
            + logsumexp(sites, axis=0).sum()
        )
        got = sampler.logdensity({"lam": lam, "p": p})
        assert got == pytest.approx(exact, rel=1e-9, abs=1e-9)


@pytest.mark.slow
def test_n_mixture_posterior_means_match_quadrature():
    y = _n_mixture_data()
    sampler = _n_mixture(y)
    result = sampler.sample(
        max(100, int(400 * stat_scale())),
        n_chains=max(64, int(200 * stat_scale() ** 2)),
        seed=5,
        warmup=1000,
    )
    exact = n_mixture_posterior(y)
    assert exact["edge"] < 1e-6  # the quadrature's lam range holds the posterior
    for name in ("lam", "p"):
        mean, sd = exact[name]
        ess = float(result.diagnostics.ess_bulk[name])
        se = sd / np.sqrt(ess)
        assert abs(result.draws[name].mean() - mean) < 5 * se, (name, mean, se)
    assert result.truncation_tail["N"] < 1e-12


def test_the_log_density_at_values_a_range_does_not_cover_warns():
    """``K ~ poisson(2)`` read by ``normal(K, s)`` at data near 40: the range from the prior ends
    near 23, and at those values the density returned is off: said, as after sampling."""
    srng = at.random.RandomStream(0)
    s_rv = srng.halfnormal(0.0, 1.0, name="s")
    K_rv = srng.poisson(2.0, name="K")
    y_rv = srng.normal(K_rv, s_rv, size=2, name="y")
    sampler = aemix.build_sampler([y_rv, s_rv], {y_rv: np.array([40.0, 40.2])}, mode=FAST)
    with pytest.warns(TruncationWarning, match=r"K was summed over .* but at these values"):
        sampler.logdensity({"s": 0.5})
    # Data the range covers: exact, and nothing said.
    near = aemix.build_sampler([y_rv, s_rv], {y_rv: np.array([1.0, 2.2])}, mode=FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        got = near.logdensity({"s": 0.5})
    k = np.arange(300)
    exact = st.halfnorm.logpdf(0.5) + logsumexp(
        st.poisson(2.0).logpmf(k) + st.norm(k[:, None], 0.5).logpdf([1.0, 2.2]).sum(-1)
    )
    assert got == pytest.approx(exact, rel=1e-10)


def test_a_scalar_count_samples_in_python_mode_too():
    # (the range check after the loop reduces a scalar over no axis: Aesara's Python
    # implementation of that reduction failed)
    srng = at.random.RandomStream(0)
    lam_rv = srng.gamma(2.0, 0.5, name="lam")
    p_rv = srng.beta(2.0, 2.0, name="p")
    N_rv = srng.poisson(lam_rv, name="N")
    y_rv = srng.binomial(N_rv, p_rv, size=3, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: np.array([3, 4, 2])}, mode=FAST)
    result = sampler.sample(20, n_chains=2, seed=0, warmup=20, diagnose=False)
    assert 0 <= result.truncation_tail["N"] < 1e-12
