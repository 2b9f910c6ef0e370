"""Models a newcomer writes first, against posteriordb's reference posteriors
(``../shared/posteriordb/refs.json``: pooled Stan draws, means and sds).

Means within 5 Monte Carlo standard errors (ArviZ ESS of aemix's draws, combined with the
reference's own error from its ESS), sds within 20%.  Skipped when the shared references are
absent.
"""

import json
from pathlib import Path

import aesara.tensor as at
import arviz as az
import numpy as np
import pytest

import aemix
from tests.helpers import stat_scale

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
    result = sampler.sample(_n(2000), n_chains=32, seed=0)
    draws = {"mu": result.draws["mu"], "tau": result.draws["tau"]}
    theta_draws = (
        result.draws["mu"][..., None] + result.draws["tau"][..., None] * result.draws["theta_tilde"]
    )
    draws.update({f"theta[{j + 1}]": theta_draws[..., j] for j in range(8)})
    _check(ref, draws)


def test_regression_with_predictors_on_another_scale_from_the_tempered_start():
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
    result = sampler.sample(_n(2000), n_chains=16, seed=0, start="tempered")
    draws = {f"beta[{j + 1}]": result.draws["beta"][..., j] for j in range(3)}
    draws["sigma"] = result.draws["sigma"]
    _check(ref, draws)
