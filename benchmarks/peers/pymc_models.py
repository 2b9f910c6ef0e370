"""The benchmark models in PyMC, sampled by NUTS with the discrete latents marginalized.

Run by `run.py` in PyMC's own virtual environment (see README.md), one model per process::

    python pymc_models.py --model gauss_mix --data data.json

and prints one JSON object on stdout: ``build_s`` (building the model and marginalizing, plus
`pm.sample`'s time outside its sampling loop: compiling the log-density and its gradient),
``sample_s`` (`pm.sample`'s own ``sampling_time``, tuning included), ``draws`` (``name ->
(chains, draws, *shape)`` nested lists), ``settings``, ``versions`` and ``error`` (a message, or
null).  4 chains x (1000 tune + 1000 draws), ``cores=1`` (one chain after another, like NumPyro's
sequential chains).

The discrete latents (``z`` in gauss_mix, ``tau`` in coal_mining) are written as ordinary PyMC
variables and summed out by ``pymc_extras.marginalize(model, [...])`` (pymc-extras 0.10 has it at the
top level; older ones under ``pymc_extras.model.marginal``).  The seed mixture is written with its
marginal density (``pm.NormalMixture``), as the benchmark asks of the peers.  The ordered
locations of gauss_mix use ``transform=pm.distributions.transforms.ordered``: the Normal(0, 2)
prior restricted to increasing values.
"""

from __future__ import annotations

import time

import specs

# The default initial point of an ordered Normal(0, 2) pair is (0, 0), outside the ordered region
# (the transform's log of the gap is -inf); `marginalize` refuses a model's own ``initval``, so the
# start is given to `pm.sample`.
INITVALS = {"gauss_mix": {"mu": [-1.0, 1.0]}, "mix3": {"mu": [-1.0, 0.0, 1.0]}}


def build(name: str, data: dict):
    import numpy as np
    import pymc as pm

    try:
        from pymc_extras import marginalize
    except ImportError:
        from pymc_extras.model.marginal.marginal_model import marginalize

    with pm.Model() as model:
        if name == "seed_mixture":
            pm.NormalMixture("Y", w=specs.WEIGHTS, mu=specs.LOC, sigma=specs.SCALE)
        elif name == "eight_schools":
            mu = pm.Normal("mu", 0.0, 5.0)
            tau = pm.HalfCauchy("tau", beta=5.0)
            theta_tilde = pm.Normal("theta_tilde", 0.0, 1.0, shape=len(data["y"]))
            pm.Normal("y", mu + tau * theta_tilde, np.asarray(data["sigma"]), observed=data["y"])
        elif name == "blr":
            X = np.asarray(data["X"])
            beta = pm.Normal("beta", 0.0, 10.0, shape=X.shape[1])
            sigma = pm.HalfNormal("sigma", 10.0)
            pm.Normal("y", pm.math.dot(X, beta), sigma, observed=data["y"])
        elif name == "gauss_mix":
            mu = pm.Normal("mu", 0.0, 2.0, shape=2, transform=pm.distributions.transforms.ordered)
            sigma = pm.HalfNormal("sigma", 2.0, shape=2)
            theta = pm.Beta("theta", 5.0, 5.0)
            z = pm.Bernoulli("z", theta, shape=len(data["y"]))
            pm.Normal("y", mu[z], sigma[z], observed=data["y"])
        elif name == "mix3":
            mu = pm.Normal("mu", 0.0, 5.0, shape=3, transform=pm.distributions.transforms.ordered)
            sigma = pm.HalfNormal("sigma", 2.0, shape=3)
            w = pm.Dirichlet("w", np.ones(3))
            z = pm.Categorical("z", w, shape=len(data["y"]))
            pm.Normal("y", mu[z], sigma[z], observed=data["y"])
        elif name == "regression30":
            X = np.asarray(data["X"])
            beta = pm.Normal("beta", 0.0, 1.0, shape=X.shape[1])
            pm.Normal("y", pm.math.dot(X, beta), 1.0, observed=data["y"])
        elif name == "coal_mining":
            T = len(data["counts"])
            tau = pm.DiscreteUniform("tau", 0, T - 1)
            early = pm.Gamma("early", alpha=1.0, beta=1.0)
            late = pm.Gamma("late", alpha=1.0, beta=1.0)
            rate = pm.math.switch(np.arange(T) < tau, early, late)
            pm.Poisson("y", rate, observed=data["counts"])
    discrete = {"gauss_mix": ["z"], "coal_mining": ["tau"], "mix3": ["z"]}.get(name)
    return marginalize(model, discrete) if discrete else model


def run(name: str, data: dict) -> dict:
    import pymc as pm
    import pymc_extras
    import pytensor

    start = time.perf_counter()
    model = build(name, data)
    with model:
        idata = pm.sample(
            draws=specs.DRAWS,
            tune=specs.WARMUP,
            chains=specs.CHAINS,
            cores=1,
            random_seed=specs.SEED,
            progressbar=False,
            compute_convergence_checks=False,
            initvals=INITVALS.get(name),
        )
    wall = time.perf_counter() - start
    sampling = float(idata.posterior.attrs["sampling_time"])
    return {
        "build_s": wall - sampling,
        "sample_s": sampling,
        "first_run_s": wall,
        "draws": {k: v.values.tolist() for k, v in idata.posterior.data_vars.items()},
        "settings": (
            f"NUTS, {specs.CHAINS} chains x ({specs.WARMUP} tune + {specs.DRAWS} draws), cores=1"
        ),
        "versions": {
            "pymc": pm.__version__,
            "pymc_extras": pymc_extras.__version__,
            "pytensor": pytensor.__version__,
        },
    }


def main(argv=None):
    specs.peer_main(run, __doc__, argv)


if __name__ == "__main__":
    main()
