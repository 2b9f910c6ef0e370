"""Where the fused loop's time goes: the seed's model, 1000 chains, 10^4 steps, one thread.

Times the compiled loop alone in its three modes (step only; step and record with running moments;
step and record stored into already-touched arrays), beside the cost of NumPy's random draws the
loop makes (one normal and one exponential per step, one uniform per record), the first touch of
fresh memory on this machine, and the initial positions (prior draws) per chain.

Run: ``.venv/bin/python benchmarks/profile_fused.py``
"""

import time

import aesara.tensor as at
import numpy as np

import aemix
from aemix.fused import MODES, tile_count

srng = at.random.RandomStream(0)
N_rv = srng.normal(np.array([-2, 0, 3.2, 2.5]), np.array([1.2, 1, 5, 2.8]), name="N")
I_rv = srng.categorical(np.array([0.2, 0.3, 0.1, 0.4]), name="I")
s = aemix.build_sampler(N_rv[I_rv])
s.sample(1, n_chains=1000, seed=0, warmup=0, step_size=2.0)
fn = s._fused_function()
data = s._fused_program().data  # (none: the seed model has no data)
chains, n = 1000, 10000
x0 = s.initial_positions(chains, np.random.default_rng(0))
lp0 = s._logdensity_batch(x0)
bgs = tuple(np.random.PCG64(i) for i in range(2 * tile_count(chains)))
sink = (np.zeros((chains, n, 1)), np.zeros((chains, n, 1), dtype=np.int64), np.zeros((chains, n)))


def t(mode, sink=None):
    best = 1e9
    for _ in range(3):
        t0 = time.perf_counter()
        fn(bgs, x0, lp0, 2.0, np.ones(1), n, 1, MODES[mode], sink, 0, 1, data)
        best = min(best, time.perf_counter() - t0)
    return best / (chains * n) * 1e9


print(f"step only (warm-up mode, no record): {t('warmup'):.1f} ns")
print(f"step + record, running moments:      {t('moments'):.1f} ns")
print(f"step + record, stored (pre-touched): {t('draws', sink):.1f} ns")
rng = np.random.default_rng(0)
m = 10**7
buf = np.ones(m)
for name, f in [
    ("normal", rng.standard_normal),
    ("exponential", rng.standard_exponential),
    ("uniform", rng.random),
]:
    f(out=buf)
    t0 = time.perf_counter()
    f(out=buf)
    print(f"numpy {name} draw: {(time.perf_counter() - t0) / m * 1e9:.1f} ns")
t0 = time.perf_counter()
a = np.empty(3 * 10**7)
a[:] = 1.0
print(f"first touch of fresh memory: {(time.perf_counter() - t0) / (3e7) * 1e9:.2f} ns per 8 bytes")
t0 = time.perf_counter()
s.initial_positions(chains, np.random.default_rng(1))
print(f"initial positions: {(time.perf_counter() - t0) / chains * 1e9:.0f} ns per chain")
