"""The warm-up's adaptation (`aemix.adaptation`): its windows, its measure of a settled proposal,
and the warm-up length it chooses on targets that settle and on chains that never agree."""

import warnings

import aesara.tensor as at
import arviz as az
import numpy as np
import pytest

import aemix
from aemix.adaptation import proposal_inefficiency, window_schedule


def test_windows_double_after_the_walk_in_and_leave_the_last_phase_to_the_step_size():
    assert window_schedule(1000) == ([(100, 200), (200, 400), (400, 850)], 150)
    assert window_schedule(2000) == ([(100, 200), (200, 400), (400, 800), (800, 1850)], 150)
    assert window_schedule(100) == ([(10, 20), (20, 40), (40, 85)], 15)
    for n in (1, 2, 5, 17, 333, 5000, 10**5):
        windows, final = window_schedule(n)
        assert final >= 1
        ends = [0] + [b for w in windows for b in w]
        assert ends == sorted(ends) and (not windows or windows[-1][1] == n - final)
        # Contiguous windows, each at least as long as the one before.
        assert all(
            a[1] == b[0] and b[1] - b[0] >= a[1] - a[0] for a, b in zip(windows, windows[1:])
        )


def test_the_inefficiency_is_roberts_and_rosenthals_factor():
    rng = np.random.default_rng(0)
    dim = 4
    factor = np.linalg.cholesky(np.cov(rng.normal(size=(50, dim)), rowvar=False))
    # Proportional proposals are equally efficient: the step size absorbs the factor.
    assert proposal_inefficiency(factor.ravel(), 3.0 * factor.ravel(), dim) == pytest.approx(1.0)
    # Per-coordinate scales off by s: b = mean(s^2) / mean(s)^2.
    s = np.array([1.0, 2.0, 0.5, 4.0])
    sd = np.array([0.3, 1.0, 2.0, 5.0])
    expected = np.mean(s**2) / np.mean(s) ** 2
    assert proposal_inefficiency(
        np.diag(sd).ravel(), np.diag(sd * s).ravel(), dim
    ) == pytest.approx(expected)
    # The same, seen through any factor of the covariances (rotations of L change nothing).
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    new = (factor @ np.diag(s)) @ rotation
    assert proposal_inefficiency(factor.ravel(), new.ravel(), dim) == pytest.approx(expected)


def _two_modes():
    srng = at.random.RandomStream(0)
    index = srng.categorical(np.array([0.5, 0.5]), name="I")
    x = srng.normal(at.as_tensor([-10.0, 10.0])[index], 1.0, name="x")
    return aemix.build_sampler(x)


@pytest.mark.parametrize(
    "sd, settled_by",
    [
        # Well scaled: the third window (ending at 800) agrees with the second.
        (np.array([1.0, 2.0, 0.5]), 950),
        # Scales 100x apart: the first windows' chains do not mix along the wide coordinate (the
        # step size follows the narrow one), so the fourth window (ending at 1600) is needed.
        (np.array([1.0, 10.0, 0.1]), 1750),
    ],
)
def test_a_warm_up_stops_once_the_proposal_has_settled(sd, settled_by):
    srng = at.random.RandomStream(0)
    x = srng.normal(np.zeros(3), sd, name="x")
    sampler = aemix.build_sampler(x)
    result = sampler.sample(100, n_chains=32, seed=0, warmup=4000, start="prior", diagnose=False)
    assert result.warmup_steps <= settled_by
    # What it settled on is the target's covariance, up to the step size's common factor.
    factor = result.scale
    ratio = np.sqrt(np.diag(factor @ factor.T)) / sd
    assert np.all(np.abs(ratio / ratio.mean() - 1) < 0.2), ratio


def test_chains_that_never_agree_use_the_whole_warm_up_and_are_flagged():
    sampler = _two_modes()
    starts = np.repeat([-10.0, 10.0], 8)
    with pytest.warns(aemix.ConvergenceWarning) as record:
        result = sampler.sample(100, n_chains=16, seed=0, warmup=600, initial_values={"x": starts})
    assert result.warmup_steps == 600
    assert record[0].filename == __file__  # attributed to the caller's line


def test_the_low_rank_scale_keeps_the_correlations_that_stand_out_of_the_noise():
    from aemix.adaptation import LOW_RANK, as_factor, low_rank_scale

    rng = np.random.default_rng(1)
    dim = 30
    vectors, _ = np.linalg.qr(rng.normal(size=(dim, 3)))
    corr = np.eye(dim) + vectors @ np.diag([20.0, 5.0, -0.9]) @ vectors.T
    sd = rng.uniform(0.1, 10.0, size=dim)
    # From many points, three spikes: the covariance is rebuilt exactly.
    factor = as_factor(low_rank_scale(sd, corr, 10**9), dim)
    np.testing.assert_allclose(factor @ factor.T, np.outer(sd, sd) * corr, atol=1e-9)
    # The sample correlation of uncorrelated coordinates has eigenvalues spread by noise alone
    # (0.4 to 1.9 here): none of them bends the proposal.
    points = rng.normal(size=(300, dim))
    noise = np.corrcoef(points, rowvar=False)
    flat = low_rank_scale(sd, noise, 300)
    assert np.all(flat[dim + dim * LOW_RANK :] == 0.0)


@pytest.mark.parametrize("loop", ["fused", "scan"])
def test_a_correlated_posterior_above_the_dense_dimension_mixes(loop):
    # (the random walk's proposal: 25 coordinates, where kernel="auto" would take HMC)
    # 24 coordinates tied to their mean (correlation 0.99 between any two): one coordinate scale
    # each cannot follow it, the low-rank correction along (1, ..., 1) can.
    srng = at.random.RandomStream(0)
    m = srng.normal(0.0, 1.0, name="m")
    x = srng.normal(m, 0.1, size=24, name="x")
    sampler = aemix.build_sampler([m, x], mode=None if loop == "fused" else "FAST_COMPILE")
    assert sampler.proposal_form == "low-rank"
    with warnings.catch_warnings():
        warnings.simplefilter("error", aemix.ConvergenceWarning)
        result = sampler.sample(400, n_chains=32, seed=0, start="prior", loop=loop, kernel="rmh")
    assert result.loop == loop
    draws = np.concatenate([result.draws["m"][..., None], result.draws["x"]], axis=-1)
    exact_sd = np.r_[1.0, np.full(24, np.sqrt(1.01))]
    for j in (0, 1, 24):
        ess = float(az.ess(draws[..., j]))
        assert abs(draws[..., j].mean()) < 5 * exact_sd[j] / np.sqrt(ess)
        # sd of a sample sd: about sd / sqrt(2 ESS).
        assert abs(draws[..., j].std() / exact_sd[j] - 1) < 5 / np.sqrt(2 * ess)


def test_the_spread_between_chains_counts_up_to_twice_the_spread_within():
    from aemix.adaptation import BETWEEN_CAP, with_between_chains

    rng = np.random.default_rng(5)
    sd, corr = np.array([1.0, 2.0]), np.eye(2)
    # Chains whose means spread about as much as their draws (a slow direction): it all counts.
    means = rng.normal(size=(4000, 2)) * np.array([0.8, 0.0])
    total_sd, total_corr = with_between_chains(sd, corr, means)
    assert total_sd[0] == pytest.approx(np.sqrt(1.0 + 0.64), rel=0.05)
    assert total_sd[1] == pytest.approx(2.0, rel=1e-6)
    # Chains in two modes 20 apart along the first coordinate: the stretch stops at the cap.
    modes = np.repeat([[-10.0, 0.0], [10.0, 0.0]], 16, axis=0)
    total_sd, _ = with_between_chains(sd, corr, modes)
    assert total_sd[0] == pytest.approx(np.sqrt(1.0 + BETWEEN_CAP), rel=1e-9)
    assert total_sd[1] == pytest.approx(2.0, rel=1e-9)
