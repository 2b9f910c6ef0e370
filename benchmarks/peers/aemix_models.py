"""The benchmark models written for aemix: Aesara random-variable graphs, discrete latents left in.

Each ``build_<model>(data)`` returns a compiled-on-demand `aemix.Sampler`; aemix finds the discrete
latents (``I``, ``z``, ``tau``) and sums them out.  The priors are those of `specs` (its docstring
lists the models).  The coal-mining graph is `examples/coal_mining.py`'s own.
"""

from __future__ import annotations

import sys

import aesara.tensor as at
import numpy as np
import specs

import aemix

if str(specs.REPO) not in sys.path:
    sys.path.insert(0, str(specs.REPO))
from examples import coal_mining  # noqa: E402

# The continuous parameters whose ESS and means are compared (the peers report the same ones).
PARAMETERS = {
    "seed_mixture": ("Y",),
    "eight_schools": ("mu", "tau", "theta_tilde"),
    "blr": ("beta", "sigma"),
    "gauss_mix": ("mu", "sigma", "theta"),
    "coal_mining": ("early", "late"),
    "mix3": ("mu", "sigma", "w"),
    "regression30": ("beta",),
}


def build_seed_mixture(data: dict) -> aemix.Sampler:
    srng = at.random.RandomStream(0)
    N_rv = srng.normal(np.array(specs.LOC), np.array(specs.SCALE), name="N")
    I_rv = srng.categorical(np.array(specs.WEIGHTS), name="I")
    Y_rv = N_rv[I_rv]
    Y_rv.name = "Y"
    return aemix.build_sampler(Y_rv)


def build_eight_schools(data: dict) -> aemix.Sampler:
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 5.0, name="mu")
    tau_rv = srng.halfcauchy(0.0, 5.0, name="tau")
    theta_tilde_rv = srng.normal(0.0, 1.0, size=len(data["y"]), name="theta_tilde")
    y_rv = srng.normal(mu_rv + tau_rv * theta_tilde_rv, np.asarray(data["sigma"], float), name="y")
    return aemix.build_sampler(y_rv, {y_rv: np.asarray(data["y"], float)})


def build_blr(data: dict) -> aemix.Sampler:
    X = np.asarray(data["X"], float)
    srng = at.random.RandomStream(0)
    beta_rv = srng.normal(0.0, 10.0, size=X.shape[1], name="beta")
    sigma_rv = srng.halfnormal(0.0, 10.0, name="sigma")
    y_rv = srng.normal(at.dot(X, beta_rv), sigma_rv, name="y")
    return aemix.build_sampler(y_rv, {y_rv: np.asarray(data["y"], float)})


def build_gauss_mix(data: dict) -> aemix.Sampler:
    y = np.asarray(data["y"], float)
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 2.0, size=2, name="mu")
    sigma_rv = srng.halfnormal(0.0, 2.0, size=2, name="sigma")
    theta_rv = srng.beta(5.0, 5.0, name="theta")
    z_rv = srng.bernoulli(theta_rv, size=len(y), name="z")
    y_rv = srng.normal(mu_rv[z_rv], sigma_rv[z_rv], name="y")
    return aemix.build_sampler(y_rv, {y_rv: y}, ordered=["mu"])


def build_coal_mining(data: dict) -> aemix.Sampler:
    outputs, observed = coal_mining.model(np.asarray(data["counts"]))
    return aemix.build_sampler(outputs, observed=observed)


def build_mix3(data: dict) -> aemix.Sampler:
    y = np.asarray(data["y"], float)
    srng = at.random.RandomStream(0)
    mu_rv = srng.normal(0.0, 5.0, size=3, name="mu")
    sigma_rv = srng.halfnormal(0.0, 2.0, size=3, name="sigma")
    w_rv = srng.dirichlet(np.ones(3), name="w")
    z_rv = srng.categorical(w_rv, size=len(y), name="z")
    y_rv = srng.normal(mu_rv[z_rv], sigma_rv[z_rv], name="y")
    return aemix.build_sampler(y_rv, {y_rv: y}, ordered=["mu"])


def build_regression30(data: dict) -> aemix.Sampler:
    X = np.asarray(data["X"], float)
    srng = at.random.RandomStream(0)
    beta_rv = srng.normal(0.0, 1.0, size=X.shape[1], name="beta")
    y_rv = srng.normal(at.dot(X, beta_rv), 1.0, name="y")
    return aemix.build_sampler(y_rv, {y_rv: np.asarray(data["y"], float)})


BUILDERS = {
    "seed_mixture": build_seed_mixture,
    "eight_schools": build_eight_schools,
    "blr": build_blr,
    "gauss_mix": build_gauss_mix,
    "coal_mining": build_coal_mining,
    "mix3": build_mix3,
    "regression30": build_regression30,
}
