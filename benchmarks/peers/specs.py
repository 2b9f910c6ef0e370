"""The benchmark models as data: names, priors' constants and the settings of each tool.

Imported by the driver (`run.py`, aemix's Python) and by the peers' scripts (`numpyro_models.py`,
`pymc_models.py`, each in its own virtual environment with NumPy 2), so it uses the standard library
only.  The data themselves are loaded by the driver (`load_data`) and handed to the peers in one
JSON file, so that every tool sees the same numbers.

Models (every tool writes the same densities; the discrete latents are summed out)::

    seed_mixture    Y = N[I], N_k ~ Normal(LOC_k, SCALE_k), I ~ Categorical(WEIGHTS); no data
    eight_schools   mu ~ N(0, 5), tau ~ HalfCauchy(5), theta_tilde_j ~ N(0, 1),
                    y_j ~ N(mu + tau theta_tilde_j, sigma_j)              (posteriordb, J = 8)
    blr             beta_d ~ N(0, 10), sigma ~ HalfNormal(10), y ~ N(X beta, sigma)
                                                                (posteriordb sblrc-blr, 100 x 5)
    gauss_mix       mu ~ N(0, 2) (2, ordered), sigma_k ~ HalfNormal(2), theta ~ Beta(5, 5),
                    z_i ~ Bernoulli(theta), y_i ~ N(mu[z_i], sigma[z_i])
                                                        (posteriordb low_dim_gauss_mix, N = 1000)
    coal_mining     tau ~ Integers(0, T), early, late ~ Gamma(1, rate 1),
                    y_t ~ Poisson(early if t < tau else late)    (data/coal_mining_disasters.csv)
    mix3            mu ~ N(0, 5) (3, ordered), sigma_k ~ HalfNormal(2), w ~ Dirichlet(1, 1, 1),
                    z_i ~ Categorical(w), y_i ~ N(mu[z_i], sigma[z_i])
                                (simulated, N = 10000: mu = -3, 0, 3, sigma = 1, .7, 1.5, w = .3, .4, .3)
    regression30    beta_d ~ N(0, 1), y ~ N(X beta, 1)
                                (simulated, 200 x 30, correlated predictors; the posterior is exact)

In ``gauss_mix`` ``theta`` is the weight of the second (larger) location, ``mu[1]``; posteriordb's
Stan model (``log_mix(theta, ...mu[1]..., ...mu[2]...)``) weighs the first, so its reference
``theta`` is compared as ``1 - theta``.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REFS = REPO.parent / "shared" / "posteriordb" / "refs.json"
COAL = REPO / "data" / "coal_mining_disasters.csv"

MODELS = (
    "seed_mixture",
    "eight_schools",
    "blr",
    "gauss_mix",
    "coal_mining",
    "mix3",
    "regression30",
)

# The seed's mixture (examples/seed_mixture.py).
LOC = [-2.0, 0.0, 3.2, 2.5]
SCALE = [1.2, 1.0, 5.0, 2.8]
WEIGHTS = [0.2, 0.3, 0.1, 0.4]

POSTERIORDB = {
    "eight_schools": "eight_schools-eight_schools_noncentered",
    "blr": "sblrc-blr",
    "gauss_mix": "low_dim_gauss_mix-low_dim_gauss_mix",
}

# Sampler settings of the peers (aemix runs its default call, `sampler.sample(1000, seed=0)`).
CHAINS = 4
WARMUP = 1000
DRAWS = 1000
SEED = 0


def load_data(name: str, refs_path: Path = REFS) -> dict | None:
    """The data of model ``name`` as JSON-able lists, or None when its source file is absent."""
    if name == "seed_mixture":
        return {}
    if name == "coal_mining":
        if not COAL.exists():
            return None
        rows = COAL.read_text().split()[1:]
        return {"counts": [int(row.split(",")[1]) for row in rows]}
    if name in SIMULATED:
        return SIMULATED[name]()
    if not Path(refs_path).exists():
        return None
    data = json.loads(Path(refs_path).read_text())["posteriors"][POSTERIORDB[name]]["data"]
    if name == "eight_schools":
        return {"y": data["y"], "sigma": data["sigma"]}
    if name == "blr":
        return {"X": data["X"], "y": data["y"]}
    return {"y": data["y"]}


def _mix3() -> dict:
    import numpy as np  # (the driver's Python only: the peers get the data as JSON)

    rng = np.random.default_rng(3)
    z = rng.choice(3, size=10_000, p=[0.3, 0.4, 0.3])
    y = np.array([-3.0, 0.0, 3.0])[z] + np.array([1.0, 0.7, 1.5])[z] * rng.normal(size=z.size)
    return {"y": y.tolist()}


def _regression30() -> dict:
    import numpy as np

    rng = np.random.default_rng(1)
    n, d = 200, 30
    X = 0.3 * rng.normal(size=(n, d)) + rng.normal(size=(n, 2)) @ rng.normal(size=(2, d))
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    return {"X": X.tolist(), "y": y.tolist()}


SIMULATED = {"mix3": _mix3, "regression30": _regression30}


def peer_main(run, doc: str, argv=None) -> None:
    """A peer script's command line: ``--model NAME --data FILE``; prints ``run(model, data)`` as
    JSON, or the error, which the driver reports before it goes on with the other tools."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--model", required=True, choices=MODELS)
    parser.add_argument("--data", required=True, help="JSON file: model name -> data")
    args = parser.parse_args(argv)
    data = json.loads(Path(args.data).read_text())[args.model]
    try:
        out = run(args.model, data)
        out["error"] = None
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        out = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out))
