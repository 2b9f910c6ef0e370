"""Models a newcomer writes first, against posteriordb's reference posteriors
(``../shared/posteriordb/refs.json``: pooled Stan draws, means and sds).

Means within 5 Monte Carlo standard errors (ArviZ ESS of aemix's draws, combined with the
reference's own error from its ESS), sds within 20%.  Skipped when the shared references are
absent.
"""

import json
import warnings
from pathlib import Path

import aesara.tensor as at
import arviz as az
import numpy as np
import pytest

import aemix
from tests.helpers import normal_mixture_gibbs, stat_scale

REFS = Path(__file__).resolve().parents[2] / "shared" / "posteriordb" / "refs.json"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REFS.exists(), reason="posteriordb references not present"),
]


def _reference(name):
    return json.loads(REFS.read_text())["posteriors"][name]


def _check(ref, draws: dict):
    for key, x in draws.items():
        x = np.asarray(x, dtype=float)
        ess = float(az.ess(x))
        error = np.hypot(x.std() / np.sqrt(ess), ref["sd"][key] / np.sqrt(ref["ref_ess_bulk"][key]))
        assert abs(x.mean() - ref["mean"][key]) < 5 * error, (
            key,
            x.mean(),
            ref["mean"][key],
            error,
        )
        assert abs(x.std() / ref["sd"][key] - 1) < 0.2, (key, x.std(), ref["sd"][key])


def _n(n):
    return max(n // 2, int(n * stat_scale()))


def _default_run(sampler):
    """The call a newcomer makes, ``sample(1000)`` (half at CI size): it must not warn, and every
    R-hat is below 1.01."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", aemix.ConvergenceWarning)
        result = sampler.sample(_n(1000), seed=0)
    assert max(float(np.max(r)) for r in result.diagnostics.rhat.values()) < 1.01
    return result


def test_eight_schools_noncentered():
    ref = _reference("eight_schools-eight_schools_noncentered")
    data = ref["data"]
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 5.0, name="mu")
    tau_rv = srng.halfcauchy(0.0, 5.0, name="tau")
    eta_rv = srng.normal(0.0, 1.0, size=8, name="theta_tilde")
    theta = mu_rv + tau_rv * eta_rv
    y_rv = srng.normal(theta, np.asarray(data["sigma"], float), name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: np.asarray(data["y"], float)})
    result = _default_run(sampler)
    draws = {"mu": result.draws["mu"], "tau": result.draws["tau"]}
    theta_draws = (
        result.draws["mu"][..., None] + result.draws["tau"][..., None] * result.draws["theta_tilde"]
    )
    draws.update({f"theta[{j + 1}]": theta_draws[..., j] for j in range(8)})
    _check(ref, draws)


def test_regression_with_predictors_on_another_scale():
    # kid_score ~ beta1 + beta2 mom_hs + beta3 mom_iq: mom_iq is around 100, so the intercept and
    # its slope correlate at -0.99 and the posterior is a sliver of the wide prior (Stan's flat
    # prior: normal(0, 100) here, whose pull is below 0.4% of a posterior sd).
    ref = _reference("kidiq-kidscore_momhsiq")
    data = ref["data"]
    X = np.c_[np.ones(data["N"]), data["mom_hs"], data["mom_iq"]]
    srng = at.random.RandomStream(0)
    beta_rv = srng.normal(0.0, 100.0, size=3, name="beta")
    sigma_rv = srng.halfcauchy(0.0, 2.5, name="sigma")
    y_rv = srng.normal(X @ beta_rv, sigma_rv, name="kid_score")
    sampler = aemix.build_sampler(y_rv, {y_rv: np.asarray(data["kid_score"], float)})
    result = _default_run(sampler)
    draws = {f"beta[{j + 1}]": result.draws["beta"][..., j] for j in range(3)}
    draws["sigma"] = result.draws["sigma"]
    _check(ref, draws)


def test_eight_schools_centered_warns():
    # The funnel: a random walk cannot reach its neck, and the default run says so.
    ref = _reference("eight_schools-eight_schools_noncentered")
    data = ref["data"]
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 5.0, name="mu")
    tau_rv = srng.halfcauchy(0.0, 5.0, name="tau")
    theta_rv = srng.normal(mu_rv, tau_rv, size=8, name="theta")
    y_rv = srng.normal(theta_rv, np.asarray(data["sigma"], float), name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: np.asarray(data["y"], float)})
    with pytest.warns(aemix.ConvergenceWarning, match="R-hat above 1.01"):
        sampler.sample(_n(1000), seed=0)


def test_regression_with_correlated_predictors():
    ref = _reference("sblrc-blr")
    data = ref["data"]
    X = np.asarray(data["X"], float)
    srng = at.random.RandomStream(0)
    beta_rv = srng.normal(0.0, 10.0, size=data["D"], name="beta")
    sigma_rv = srng.halfnormal(0.0, 10.0, name="sigma")
    y_rv = srng.normal(X @ beta_rv, sigma_rv, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: np.asarray(data["y"], float)})
    result = _default_run(sampler)
    draws = {f"beta[{j + 1}]": result.draws["beta"][..., j] for j in range(data["D"])}
    draws["sigma"] = result.draws["sigma"]
    _check(ref, draws)


def test_two_component_mixture_with_ordered_locations():
    # Stan: y ~ log_mix(theta, normal(mu[1], sigma[1]), normal(mu[2], sigma[2])), ordered mu.
    ref = _reference("low_dim_gauss_mix-low_dim_gauss_mix")
    data = ref["data"]
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 2.0, size=2, name="mu")
    sigma_rv = srng.halfnormal(0.0, 2.0, size=2, name="sigma")
    theta_rv = srng.beta(5.0, 5.0, name="theta")
    z_rv = srng.bernoulli(1.0 - theta_rv, size=data["N"], name="z")  # z = 0 w.p. theta
    y_rv = srng.normal(mu_rv[z_rv], sigma_rv[z_rv], name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: np.asarray(data["y"], float)}, ordered=["mu"])
    result = _default_run(sampler)
    draws = {"theta": result.draws["theta"]}
    for j in range(2):
        draws[f"mu[{j + 1}]"] = result.draws["mu"][..., j]
        draws[f"sigma[{j + 1}]"] = result.draws["sigma"][..., j]
    _check(ref, draws)


def test_three_component_mixture_of_hundreds_of_observations():
    # Exchangeable priors, ordered locations; the reference is a conjugate Gibbs sampler with the
    # memberships sampled explicitly, relabelled by sorting the locations.
    rng = np.random.default_rng(2026)
    sizes, loc, scale = (90, 120, 90), (-4.0, 0.0, 5.0), (1.0, 0.7, 1.5)
    y = np.concatenate([rng.normal(m, s, n) for n, m, s in zip(sizes, loc, scale)])
    srng = at.random.RandomStream(0)
    w_rv = srng.dirichlet(np.full(3, 2.0), name="w")
    mu_rv = srng.normal(0.0, 10.0, size=3, name="mu")
    tau_rv = srng.gamma(2.0, 1.0, size=3, name="tau")
    z_rv = srng.categorical(w_rv, size=len(y), name="z")
    y_rv = srng.normal(mu_rv[z_rv], 1.0 / at.sqrt(tau_rv[z_rv]), name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: y}, ordered=["mu"])
    result = _default_run(sampler)
    reference = normal_mixture_gibbs(
        y,
        concentration=2.0,
        mu_loc=0.0,
        mu_sd=10.0,
        tau_shape=2.0,
        tau_rate=1.0,
        n_iter=_n(2000),
        n_chains=8,
        burn=300,
        seed=5,
        n_components=3,
    )
    draws = {
        "w": result.draws["w"],
        "mu": result.draws["mu"],
        "sigma": result.draws["tau"] ** -0.5,
    }
    for name, x in draws.items():
        for k in range(3):
            ours, theirs = x[..., k], reference[f"{name}{k}"]
            error = np.hypot(
                ours.std() / np.sqrt(az.ess(ours)), theirs.std() / np.sqrt(az.ess(theirs))
            )
            assert abs(ours.mean() - theirs.mean()) < 5 * error, (
                name,
                k,
                ours.mean(),
                theirs.mean(),
            )
            assert abs(ours.std() / theirs.std() - 1) < 0.2, (name, k, ours.std(), theirs.std())
