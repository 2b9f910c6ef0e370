"""Build and first-evaluation (compile) time of a hidden Markov model written as a Python loop.

The model is ``tests/test_markov_chains.py``'s: ``K`` states, ``z_0 ~ Cat(1/K)``,
``z_t ~ Cat(P[z_{t-1}])`` with a constant ``P``, ``y_t ~ N(mu[z_t], 1)`` observed and
``mu ~ N(0, 1)`` per state latent.  For each length ``T`` a fresh Python process with a fresh
(empty) Aesara compile directory times:

* ``build``: `aemix.build_sampler` (marginalization, log-density graph);
* ``first logdensity``: the first ``sampler.logdensity`` call (compiling it, cold cache);
* ``second``: a second call (the evaluation alone);
* with ``--sample N``: a first ``sample(N, n_chains=8, warmup=N)`` call (compiling the loop
  and the record of the states), and the loop it ran (``explain()``'s last line).

Run from a checkout: ``python benchmarks/hmm_build.py [--steps 100 400] [--states 2]
[--sample 200] [--root DIR]``; ``--root`` times another checkout's ``aemix``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = r"""
import json, sys, time, warnings
import numpy as np
import aesara.tensor as at
import aemix

n_steps, k, n_sample = (int(a) for a in sys.argv[1:4])
warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
transition = np.full((k, k), 0.1 / (k - 1)) + np.eye(k) * (0.9 - 0.1 / (k - 1))
data = rng.normal(size=n_steps) + np.linspace(-1, 1, k)[rng.integers(k, size=n_steps)]
srng = at.random.RandomStream(0)
mu = srng.normal(np.zeros(k), 1.0, name="mu")
z = srng.categorical(np.full(k, 1.0 / k), name="z0")
observed = {}
for t in range(n_steps):
    if t > 0:
        z = srng.categorical(at.as_tensor(transition)[z], name=f"z{t}")
    y = srng.normal(mu[z], 1.0, name=f"y{t}")
    observed[y] = data[t]
out = {"T": n_steps, "K": k}
start = time.perf_counter()
sampler = aemix.build_sampler(list(observed), observed)
out["build_s"] = time.perf_counter() - start
point = {"mu": np.linspace(-1, 1, k)}
start = time.perf_counter()
out["logdensity"] = float(sampler.logdensity(point))
out["first_logdensity_s"] = time.perf_counter() - start
start = time.perf_counter()
sampler.logdensity(point)
out["second_logdensity_s"] = time.perf_counter() - start
if n_sample:
    start = time.perf_counter()
    sampler.sample(n_sample, n_chains=8, warmup=n_sample, seed=0)
    out["first_sample_s"] = time.perf_counter() - start
    out["loop"] = sampler.explain().splitlines()[-1]
print("RESULT " + json.dumps(out))
"""


def run_one(root: str, n_steps: int, k: int, n_sample: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="aesara-hmm-bench-") as compiledir:
        env = dict(os.environ)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        flags = [f for f in env.get("AESARA_FLAGS", "").split(",") if f and "compiledir" not in f]
        env["AESARA_FLAGS"] = ",".join([*flags, f"base_compiledir={compiledir}"])
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(n_steps), str(k), str(n_sample)],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"T={n_steps} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["process_s"] = wall
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--states", type=int, default=2)
    parser.add_argument("--sample", type=int, default=0)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    args = parser.parse_args()
    for n_steps in args.steps:
        r = run_one(args.root, n_steps, args.states, args.sample)
        text = (
            f"T={r['T']:4d} K={r['K']}: build {r['build_s']:7.2f} s, first logdensity "
            f"{r['first_logdensity_s']:7.2f} s, second {1e3 * r['second_logdensity_s']:.2f} ms"
        )
        if "first_sample_s" in r:
            text += f", first sample({args.sample}) {r['first_sample_s']:.2f} s [{r['loop']}]"
        print(text + f" (logdensity {r['logdensity']:.10f}; process {r['process_s']:.1f} s)")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
