"""`aemix.diagnostics`: the numbers, and the warning that a run cannot be trusted."""

import warnings

import numpy as np
import pytest

import aemix
from aemix.diagnostics import ConvergenceWarning, diagnose_draws, diagnose_moments


def _iid(n_chains=8, n_samples=1000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_chains, n_samples))
    return x, -0.5 * x**2


def test_independent_chains_have_no_problem():
    x, lp = _iid()
    d = diagnose_draws({"x": x}, lp, np.full(8, 0.4))
    assert d.problems() == []
    assert abs(float(d.rhat["x"]) - 1) < 0.01
    assert float(d.ess_bulk["x"]) > 4000


def test_a_chain_elsewhere_raises_rhat_and_a_stuck_chain_is_found():
    x, lp = _iid()
    x[0] += 3.0
    lp[1] -= 40.0  # one chain far below the others' log-density
    d = diagnose_draws({"x": x}, lp, np.full(8, 0.4))
    problems = " ".join(d.problems())
    assert "R-hat" in problems and "'x'" in problems
    assert d.stuck_chains.tolist() == [1]


def test_one_chain_is_diagnosed_between_its_halves():
    x, lp = _iid(n_chains=1, n_samples=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no NumPy warning about NaN from ArviZ)
        d = diagnose_draws({"x": x}, lp, np.full(1, 0.4))
    assert d.problems() == [] and abs(float(d.rhat["x"]) - 1) < 0.01
    # A chain whose second half moved away: the halves disagree.
    x[0, 1000:] += 1.0
    d = diagnose_draws({"x": x}, lp, np.full(1, 0.4))
    assert any("R-hat" in p for p in d.problems())


def test_autocorrelated_draws_have_a_small_ess():
    rng = np.random.default_rng(1)
    walk = np.cumsum(rng.normal(size=(4, 200)), axis=1)
    d = diagnose_draws({"w": walk}, -0.5 * walk**2, np.full(4, 0.9))
    assert any("effective sample size" in p for p in d.problems())


def test_moments_give_the_classic_rhat():
    x, _ = _iid()
    d = diagnose_moments({"x": (x.mean(axis=1), x.var(axis=1))}, 1000, np.full(8, 0.4))
    assert abs(float(d.rhat["x"]) - 1) < 0.01
    x[0] += 3.0
    d = diagnose_moments({"x": (x.mean(axis=1), x.var(axis=1))}, 1000, np.full(8, 0.4))
    assert float(d.rhat["x"]) > 1.1


def test_a_run_that_cannot_be_trusted_warns_and_a_good_one_does_not(seed_sampler):
    with pytest.warns(ConvergenceWarning, match="effective sample size"):
        seed_sampler.sample(50, n_chains=4, seed=0, warmup=0, step_size=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        result = seed_sampler.sample(1000, n_chains=64, seed=0)
    assert result.diagnostics.problems() == []
    assert set(result.diagnostics.rhat) == {"Y"}


def test_a_run_too_short_to_diagnose_warns_that_it_cannot_be_checked(seed_sampler):
    # One draw per chain, or one chain summarized by its moments: no R-hat, no ESS, and no
    # warning before (the draws of a run with no warm-up passed for the posterior).
    with pytest.warns(ConvergenceWarning, match="cannot be checked: 1 draw"):
        result = seed_sampler.sample(1, n_chains=8, seed=0, warmup=0, start="prior")
    assert result.diagnostics.unchecked is not None
    with pytest.warns(ConvergenceWarning, match="cannot be checked.*2 chains"):
        seed_sampler.sample(30, n_chains=1, seed=0, warmup=0, summary_only=True)


def test_diagnose_false_skips_the_diagnostics(seed_sampler):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        result = seed_sampler.sample(20, n_chains=2, seed=0, warmup=0, diagnose=False)
    assert result.diagnostics is None
    assert aemix.ConvergenceWarning is ConvergenceWarning


def test_a_run_that_keeps_only_a_derived_quantity_is_diagnosed():
    """With ``var_names`` naming a derived quantity alone, the run is diagnosed on it and on the
    log density (which every latent moves): an unconverged run still warns."""
    import aesara.tensor as at

    from aemix.diagnostics import LOG_DENSITY

    srng = at.random.RandomStream(0)
    mu = srng.normal(0, 1, size=2, name="mu")
    y = srng.normal(mu, 1, name="y")
    sampler = aemix.build_sampler({"y": y, "mu": mu, "theta": 2 * mu}, observed={y: [0.5, 1.0]})
    short = dict(n_chains=4, seed=0, warmup=0, step_size=0.01, var_names=["theta"])
    with pytest.warns(ConvergenceWarning, match="effective sample size"):
        result = sampler.sample(50, **short)
    assert set(result.draws) == {"theta"}
    assert set(result.diagnostics.ess_bulk) == {"theta", LOG_DENSITY}
    with pytest.warns(ConvergenceWarning, match="R-hat"):
        summary = sampler.sample(50, summary_only=True, **short)
    assert set(summary.diagnostics.rhat) == {"theta"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        result = sampler.sample(1000, n_chains=16, seed=0, var_names=["theta"])
    assert result.diagnostics.problems() == []


def test_the_largest_rhat_is_shown_with_the_digits_that_put_it_above_the_limit():
    from aemix.diagnostics import Diagnostics

    d = Diagnostics(acceptance_rate=0.3)
    d.rhat, d.ess_bulk, d.ess_tail = {"lam": np.array(1.0118)}, {}, {}
    (problem,) = d.problems()
    assert "largest 1.0118" in problem


def test_the_advice_of_a_change_point_speaks_of_no_labels():
    import aesara.tensor as at

    srng = at.random.RandomStream(0)
    early = srng.exponential(1.0, name="early")
    late = srng.exponential(1.0, name="late")
    tau = srng.integers(0, 10, name="tau")
    y = srng.poisson(at.switch(at.arange(10) < tau, early, late), name="y")
    sampler = aemix.build_sampler([y], observed={y: [4, 5, 3, 4, 6, 0, 1, 0, 1, 2]})
    with pytest.warns(ConvergenceWarning) as caught:
        sampler.sample(10, n_chains=4, seed=0, warmup=10, n_particles=64)
    assert "ordering of the locations" not in str(caught[0].message)
