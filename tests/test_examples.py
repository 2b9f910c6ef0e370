"""The worked examples (examples/*.py) and their shipped data, checked against independent references.

* Data files: sizes and known values of the sources (R's ``faithful``, ``boot::coal``).
* Each example's script runs end to end at a tiny size (fast).
* Statistical (``slow``): each model's posterior against a reference computed without aemix, with
  tolerances from Monte Carlo error (ESS), never tuned seeds:
  Old Faithful vs a conjugate Gibbs sampler with the memberships sampled explicitly;
  coal mining vs the exact posterior (rates integrated out in closed form);
  zero-inflated Poisson vs 2-D quadrature over ``(pi, lam)``;
  the hidden Markov model vs a Gibbs sampler that draws the regimes' paths explicitly (and its
  log-density, fast, vs a NumPy forward algorithm);
  membership recovery on a simulated well-separated mixture; the warm-up's acceptance rates;
  simulation-based calibration of the zero-inflated Poisson.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import arviz as az
import numpy as np
import pytest
import scipy.stats as st

from tests.helpers import (
    change_point_posterior,
    change_point_rate_means,
    load_example,
    normal_mixture_gibbs,
    poisson_hmm_gibbs,
    poisson_hmm_loglik,
    stat_scale,
    zero_inflated_poisson_grid,
)

ROOT = Path(__file__).resolve().parent.parent


def mcse(x) -> float:
    """Monte Carlo standard error of the mean of ``x`` (chains, draws), from ArviZ's ESS."""
    return np.asarray(az.mcse(np.asarray(x, dtype=float))).item()


def ess(x) -> float:
    return np.asarray(az.ess(np.asarray(x, dtype=float))).item()


def assert_within_mc_error(name, estimate, error, reference, reference_error=0.0, z=4.0):
    """``|estimate - reference| <= z * sqrt(error^2 + reference_error^2)``."""
    tolerance = z * np.hypot(error, reference_error)
    assert abs(estimate - reference) <= tolerance, (
        f"{name}: {estimate:.6g} vs reference {reference:.6g}, "
        f"difference {abs(estimate - reference):.3g} > {tolerance:.3g} ({z} combined MC errors)"
    )


def assert_acceptance_in_band(result, lo=0.1, hi=0.6):
    rates = result.acceptance_rate
    assert np.all((rates > lo) & (rates < hi)), (
        f"acceptance rates outside ({lo}, {hi}): min {rates.min():.3f}, max {rates.max():.3f}, "
        f"mean {rates.mean():.3f}, step size {result.step_size:.4g}"
    )


# -- shipped data -------------------------------------------------------------------------------


def test_faithful_data_is_rs_faithful():
    of = load_example("old_faithful")
    table = np.loadtxt(ROOT / "data" / "faithful.csv", delimiter=",", skiprows=1)
    assert table.shape == (272, 2)
    np.testing.assert_array_equal(table[0], [3.6, 79])
    np.testing.assert_array_equal(table[-1], [4.467, 74])
    # R: mean(faithful$eruptions) = 3.487783, mean(faithful$waiting) = 70.89706
    np.testing.assert_allclose(table.mean(0), [3.487783, 70.89706], atol=5e-6)
    np.testing.assert_array_equal(of.load_eruptions(), table[:, 0])


def test_coal_counts_are_the_binned_dates_of_boot_coal():
    cm = load_example("coal_mining")
    years, counts = cm.load_counts()
    np.testing.assert_array_equal(years, np.arange(1851, 1963))
    assert counts[0] == 4 and counts.sum() == 191
    dates = np.loadtxt(ROOT / "data" / "coal_mining_disaster_dates.csv", skiprows=1)
    assert len(dates) == 191 and 1851 < dates.min() < dates.max() < 1963
    binned = np.array([np.sum(np.floor(dates) == year) for year in years])
    np.testing.assert_array_equal(counts, binned)


# -- exact densities ---------------------------------------------------------------------------------


def test_hmm_logdensity_is_the_forward_algorithm():
    """The hidden Markov model's density (regimes summed out by aemix's forward node) against a
    NumPy forward algorithm in probability space plus scipy's priors, at several points; outside
    the ordered region (``log_rate[0] >= log_rate[1]``) it is 0."""
    hm = load_example("hmm")
    _, counts = hm.load_counts()
    sampler = hm.build(counts)
    rng = np.random.default_rng(5)
    points = [(np.log([0.9, 3.0]), np.array([[0.97, 0.03], [0.07, 0.93]]))]
    points += [
        (np.sort(rng.normal(0.0, 1.0, 2)), rng.dirichlet(np.ones(2), size=2)) for _ in range(4)
    ]
    for log_rate, transition in points:
        prior = st.norm(hm.LOG_RATE_LOC, hm.LOG_RATE_SD).logpdf(log_rate).sum() + sum(
            st.dirichlet(np.full(2, hm.ROW_CONCENTRATION)).logpdf(row) for row in transition
        )
        expected = prior + poisson_hmm_loglik(counts, np.exp(log_rate), transition, hm.INITIAL)
        got = sampler.logdensity({"log_rate": log_rate, "P": transition})
        np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert sampler.logdensity({"log_rate": np.log([3.0, 0.9]), "P": points[0][1]}) == -np.inf


# -- shared runs (module scope: each model is compiled and sampled once) --------------------------


def _samples(n: int) -> int:
    return max(n // 4, int(n * stat_scale()))


def _run_script(name, tmp_path_factory, settings, seed, **extra):
    """Run example ``name``'s script end to end at ``settings`` (`SETTINGS`, fewer draws in CI)
    and check what it prints and writes; its result is the one the posterior tests read, so
    each model is compiled and sampled once (module scope)."""
    out = tmp_path_factory.mktemp(name) / f"{name}.png"
    args = ["--chains", settings["n_chains"], "--samples", _samples(settings["n_samples"])]
    args += ["--warmup", settings["warmup"], "--seed", seed]
    args += [item for key, value in extra.items() for item in (f"--{key}", value)]
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        result = load_example(name).main([*map(str, args), "--out", str(out)])
    text = text.getvalue()
    assert "marginalized:" in text and "acceptance rate" in text and f"wrote {out}" in text
    assert out.stat().st_size > 10_000
    return result


@pytest.fixture(scope="module")
def faithful_run(tmp_path_factory):
    of = load_example("old_faithful")
    settings = of.SETTINGS
    result = _run_script("old_faithful", tmp_path_factory, settings, 101, thin=settings["thin"])
    return of, of.load_eruptions(), result


@pytest.fixture(scope="module")
def coal_run(tmp_path_factory):
    cm = load_example("coal_mining")
    _, counts = cm.load_counts()
    return cm, counts, _run_script("coal_mining", tmp_path_factory, cm.SETTINGS, 102)


@pytest.fixture(scope="module")
def zip_run(tmp_path_factory):
    zp = load_example("zero_inflated_poisson")
    # (the script's seed seeds its simulated data and the sampler)
    y, _ = zp.simulate(seed=103)
    return zp, y, _run_script("zero_inflated_poisson", tmp_path_factory, zp.SETTINGS, 103)


@pytest.fixture(scope="module")
def hmm_run(tmp_path_factory):
    hm = load_example("hmm")
    _, counts = hm.load_counts()
    settings = hm.SETTINGS
    result = _run_script("hmm", tmp_path_factory, settings, 106, thin=settings["thin"])
    return hm, counts, result


@pytest.mark.parametrize("run", ["faithful_run", "coal_run", "zip_run", "hmm_run"])
def test_example_script_runs(run, request):
    """Each example's script runs end to end, prints its summary and writes its figure (the
    checks are in `_run_script`; the run is the one the posterior tests below read)."""
    _, _, result = request.getfixturevalue(run)
    assert np.all(np.isfinite(result.acceptance_rate))


# -- posteriors against independent references ------------------------------------------------------


@pytest.mark.slow
def test_old_faithful_matches_an_independent_gibbs_sampler(faithful_run):
    of, y, result = faithful_run
    # The warm-up lands the acceptance in its band (each run is made once, for this test).
    assert_acceptance_in_band(result)
    draws = of.relabel(result)
    track = (int(np.argmin(np.abs(y - 2.9))), int(np.argmin(np.abs(y - 3.067))))
    reference = normal_mixture_gibbs(
        y,
        concentration=of.W_CONCENTRATION,
        mu_loc=of.MU_LOC,
        mu_sd=of.MU_SD,
        tau_shape=of.TAU_SHAPE,
        tau_rate=of.TAU_RATE,
        # The samplers are vectorized over chains: many chains, few sweeps (each sweep is a
        # Python loop over the observations).
        n_iter=max(200, int(800 * stat_scale())),
        n_chains=32,
        burn=300,
        seed=7,
        track=track,
    )
    pairs = [(f"{name}{k}", draws[name][..., k]) for name in ("w", "mu", "sigma") for k in (0, 1)]
    pairs += [(f"p1_{i}", draws["p_long"][..., i]) for i in track]
    for name, x in pairs:
        # MCSEs from ESS are only trustworthy with enough effective draws.
        assert ess(x) > 100, (name, ess(x))
        assert_within_mc_error(
            name, x.mean(), mcse(x), reference[name].mean(), mcse(reference[name])
        )
    # The recovered memberships are draws from those conditionals.
    z_long = draws["z"][..., track[0]]
    p_ref = reference[f"p1_{track[0]}"]
    assert_within_mc_error("z draws", z_long.mean(), mcse(z_long), p_ref.mean(), mcse(p_ref))


@pytest.mark.slow
def test_coal_mining_change_point_matches_the_exact_posterior(coal_run):
    cm, counts, result = coal_run
    # The warm-up lands the acceptance in its band (each run is made once, for this test).
    assert_acceptance_in_band(result)
    exact = change_point_posterior(counts, cm.RATE_SHAPE, cm.RATE_RATE)
    probs = result.conditional_probabilities["tau"]  # (chains, draws, T)
    tau = result.draws["tau"]
    for t in np.flatnonzero(exact > 1e-3):
        # Rao-Blackwellized: the average conditional probability of each year.
        assert_within_mc_error(
            f"P(tau={t}) RB", probs[..., t].mean(), mcse(probs[..., t]), exact[t]
        )
        # Recovered draws: frequency of each year, error from the indicator's ESS.
        hit = (tau == t).astype(float)
        sd = np.sqrt(exact[t] * (1 - exact[t]) / ess(hit))
        assert_within_mc_error(f"P(tau={t}) drawn", hit.mean(), sd, exact[t])
    # Years the exact posterior rules out are (almost) never drawn.
    assert np.mean(exact[tau] < 1e-6) < 1e-3
    early, late = change_point_rate_means(counts, cm.RATE_SHAPE, cm.RATE_RATE)
    for name, value in (("early", early), ("late", late)):
        x = result.draws[name]
        assert_within_mc_error(name, x.mean(), mcse(x), value)


@pytest.mark.slow
def test_zero_inflated_poisson_matches_grid_quadrature(zip_run):
    zp, y, result = zip_run
    # The warm-up lands the acceptance in its band (each run is made once, for this test).
    assert_acceptance_in_band(result)
    grid = zero_inflated_poisson_grid(y, zp.PI_A, zp.PI_B, zp.LAM_SHAPE, zp.LAM_RATE)
    for name in ("pi", "lam"):
        x = result.draws[name]
        mean, sd = grid[name]
        assert_within_mc_error(f"mean {name}", x.mean(), mcse(x), mean)
        # Posterior sd: E[(x - mean)^2] has its own Monte Carlo error.
        sq = (x - mean) ** 2
        assert_within_mc_error(f"var {name}", sq.mean(), mcse(sq), sd**2)
    zeros = y == 0
    p = result.conditional_probabilities["z"][..., zeros, 1].mean(-1)  # same for every zero
    assert_within_mc_error("P(structural | y=0)", p.mean(), mcse(p), grid["p_structural_zero"])
    assert np.all(result.conditional_probabilities["z"][..., ~zeros, 1] == 0)
    assert np.all(result.draws["z"][..., ~zeros] == 0)


@pytest.mark.slow
def test_hmm_matches_an_independent_gibbs_sampler(hmm_run):
    """Rates, transition probabilities and the regime of the years in doubt against a Gibbs
    sampler that draws the paths explicitly; aemix's regime probabilities are its smoothed
    marginals averaged (Rao-Blackwellized) and the frequencies of its FFBS paths."""
    hm, counts, result = hmm_run
    # The warm-up lands the acceptance in its band (each run is made once, for this test).
    assert_acceptance_in_band(result)
    reference = poisson_hmm_gibbs(
        counts,
        log_rate_loc=hm.LOG_RATE_LOC,
        log_rate_sd=hm.LOG_RATE_SD,
        row_concentration=hm.ROW_CONCENTRATION,
        initial=hm.INITIAL,
        # The samplers are vectorized over chains: many chains, few sweeps (each sweep is a
        # Python loop over the observations).
        n_iter=max(200, int(800 * stat_scale())),
        n_chains=32,
        burn=300,
        seed=8,
    )
    rate, transition = result.draws["rate"], result.draws["P"]
    pairs = [(f"rate{k}", rate[..., k]) for k in (0, 1)]
    pairs += [(f"P{j}{1 - j}", transition[..., j, 1 - j]) for j in (0, 1)]
    for name, x in pairs:
        assert ess(x) > 100 and ess(reference[name]) > 100, name
        assert_within_mc_error(
            name, x.mean(), mcse(x), reference[name].mean(), mcse(reference[name]), z=5.0
        )
    # Years whose regime is in doubt: the change around 1890 and the blips of the 1930s-40s.
    doubtful = np.flatnonzero(
        (reference["z"].mean((0, 1)) > 0.05) & (reference["z"].mean((0, 1)) < 0.95)
    )
    assert len(doubtful) >= 5
    for t in doubtful:
        ref = (reference["z"][..., t] == 1).astype(float)
        smoothed = result.conditional_probabilities[f"z{t}"][..., 1]
        drawn = (result.draws[f"z{t}"] == 1).astype(float)
        for label, x in (("smoothed", smoothed), ("drawn", drawn)):
            assert_within_mc_error(
                f"P(z{t} = high) {label}", x.mean(), mcse(x), ref.mean(), mcse(ref), z=5.0
            )


@pytest.mark.slow
def test_mixture_recovers_memberships_of_well_separated_components():
    of = load_example("old_faithful")
    rng = np.random.default_rng(2024)
    n = 200
    truth = rng.random(n) < 0.6  # True: component 1 (the larger mean)
    y = np.where(truth, rng.normal(4.5, 0.4, n), rng.normal(1.5, 0.3, n))
    result = of.build(y).sample(
        max(50, int(200 * stat_scale())),
        n_chains=16,
        seed=104,
        warmup=3000,
        thin=5,
        var_names=of.SETTINGS["var_names"],
    )
    draws = of.relabel(result)
    p_long = draws["p_long"].mean(axis=(0, 1))
    assert np.mean((p_long > 0.5) == truth) > 0.95
    z_majority = draws["z"].mean(axis=(0, 1)) > 0.5
    assert np.mean(z_majority == truth) > 0.95
    assert_acceptance_in_band(result)


# -- simulation-based calibration ---------------------------------------------------------------------


@pytest.mark.slow
def test_zero_inflated_poisson_simulation_based_calibration():
    """Talts et al. (2018): with truths drawn from the prior and data from the truths, the rank of
    each truth among independent posterior draws is uniform if the sampler is right.

    The data sets go into one model as rows (``model`` gives each row its own ``(pi, lam)``; the
    posterior factorizes), so one compiled sampler serves them all.  The posterior draws are the
    last draws of independent chains, so they are independent given the data.
    """
    zp = load_example("zero_inflated_poisson")
    n_sets = max(20, int(40 * stat_scale()))
    n_obs = 30
    n_chains = 100
    rng = np.random.default_rng(31)
    pi = rng.beta(zp.PI_A, zp.PI_B, n_sets)
    lam = rng.gamma(zp.LAM_SHAPE, 1.0 / zp.LAM_RATE, n_sets)
    y = np.where(
        rng.random((n_sets, n_obs)) < pi[:, None], 0, rng.poisson(lam[:, None], (n_sets, n_obs))
    )
    # Chains from prior draws, each run long enough to forget its start.
    result = zp.build(y).sample(
        1, n_chains=n_chains, seed=105, warmup=2000, thin=300, start="prior", kernel="rmh"
    )
    for name, truth in (("pi", pi), ("lam", lam)):
        post = result.draws[name][:, 0, :]  # (chains, data sets)
        ranks = np.sum(post < truth, axis=0)  # 0..n_chains
        u = (ranks + rng.random(n_sets)) / (n_chains + 1)
        ks = st.kstest(u, "uniform")
        assert ks.pvalue > 1e-3, (name, ks, np.sort(ranks))
