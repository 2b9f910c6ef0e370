"""Cost of the coal-mining change point (T = 112 years, K = 112 values of tau) per log-density.

Prints the batched log-density's time at 1000 positions, and the sampler's wall time for
``sample(n, n_chains=100, warmup=0, step_size=0.1, seed=0, start="prior", loop="fused")`` at
n = 200 and 1000 kept draws (after a warm-up call), with ``thin=1`` (every step kept: tau's
conditionals and draws are computed for every draw) and ``thin=10`` (ten loop steps per kept draw):
the difference between the two sample counts, per chain, is the marginal cost of a kept draw.

Run from a checkout: ``python benchmarks/change_point.py [repository root]``; give another
checkout's root to time its version (its ``examples/coal_mining.py`` builds the model).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np


def main(root: str) -> None:
    sys.path.insert(0, str(Path(root) / "examples"))
    import coal_mining as cm

    warnings.simplefilter("ignore")  # convergence warnings of the short, untuned runs
    _, counts = cm.load_counts()
    sampler = cm.build(counts)
    lines = sampler.explain().splitlines()
    print(lines[1])
    print(lines[-1])
    positions = np.random.default_rng(0).normal(size=(1000, sampler.dim))
    sampler._logdensity_batch(positions)
    times = []
    for _ in range(30):
        start = time.perf_counter()
        sampler._logdensity_batch(positions)
        times.append(time.perf_counter() - start)
    print(f"log-density at 1000 positions: min {1e3 * min(times):.2f} ms")
    for thin in (1, 10):
        kwargs = dict(n_chains=100, warmup=0, step_size=0.1, seed=0, start="prior", thin=thin)
        best = {}
        for n in (200, 1000):
            sampler.sample(n, loop="fused", **kwargs)
            times = []
            for _ in range(3):
                start = time.perf_counter()
                sampler.sample(n, loop="fused", **kwargs)
                times.append(time.perf_counter() - start)
            best[n] = min(times)
        per_draw = 1e6 * (best[1000] - best[200]) / 800 / 100
        print(
            f"thin={thin}: sample(200) {best[200]:.3f} s, sample(1000) {best[1000]:.3f} s; "
            f"{per_draw:.2f} us per kept draw and chain, {per_draw / thin:.2f} us per step"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parent.parent))
