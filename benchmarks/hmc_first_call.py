"""The first (cold) call of HMC in the scan loop on the 30-predictor regression of `kernels.py`.

    AESARA_FLAGS=base_compiledir=<empty dir> PYTHONPATH=. python benchmarks/hmc_first_call.py

Run it from a checkout: its ``aemix`` is the one imported.
"""

import sys
import time
import warnings

sys.path.insert(0, ".")
from benchmarks.kernels import regression  # noqa: E402

sampler, exact = regression()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    r = sampler.sample(1000, seed=0, n_chains=32, kernel="hmc", loop="scan", thin=1)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = sampler.sample(1000, seed=1, n_chains=32, kernel="hmc", loop="scan", thin=1)
    second = time.perf_counter() - t0
acceptance = r.acceptance_rate.mean()
print(
    f"hmc scan regression-30: first {first:.1f} s, second {second:.1f} s, acceptance {acceptance:.2f}"
)
