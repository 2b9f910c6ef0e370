"""Benchmark of the seed: random-walk Metropolis on a 4-component normal mixture, aemix vs peers.

The target is the one-dimensional mixture of the seed text,

    log p(y) = logsumexp_k(log w_k + log Normal(y; loc_k, scale_k)),
    loc = [-2, 0, 3.2, 2.5], scale = [1.2, 1, 5, 2.8], w = [0.2, 0.3, 0.1, 0.4],

sampled by random-walk Rosenbluth-Metropolis-Hastings (RMH) with 1000 chains, a fixed step size
(2.0 by default, the same for every peer so that all of them run the same kernel) and 10 to 10^5
kept samples per chain.  Everything is float64.  The peers are

``aemix``
    The model written as an Aesara graph (``Y_rv = N_rv[I_rv]``), ``aemix.build_sampler(Y_rv)``,
    then ``sampler.sample(n, n_chains=1000, seed=0, step_size=2.0, warmup=0)``.  Its run time is
    end to end: initial points, the compiled loop, and the draw of the discrete ``I`` from its
    conditional at every kept step.  For this model aemix takes its fused loop (`aemix.fused`):
    the step lowered to scalar C code inside one loop over chains and steps.  Its compile time is
    ``build_sampler`` plus a first ``sample(1, n_chains, warmup=0)`` call, which compiles every
    Aesara function once.
``aemix-1thread``
    The same with ``n_threads=1`` (by default the fused loop shares the chains among every core).
``aemix-Y``, ``aemix-Y-1thread``
    The same with ``var_names=["Y"]``: ``I`` is not recovered, so aemix does what the hand-written
    peers do (they sample ``Y`` only); the like-for-like comparison.
``aemix-scan``
    The same sampler with ``loop="scan"``: the step vectorized over chains in an Aesara ``scan``
    over blocks of steps, NumPy noise per block, and a batched recovery pass (the general path).
``numpy``
    Hand-written NumPy, vectorized over chains (the state has shape ``(chains,)``).
``jax-batched``
    ``jit`` + ``lax.scan`` over steps with the state batched over chains and one key per step.
``jax-vmap``
    A single-chain ``lax.scan`` kernel, ``vmap``-ed over per-chain keys (the blackjax idiom).
``numba``
    A hand-fused ``@njit`` loop over chains and steps with ``np.random`` inside: the floor.

JAX and Numba are skipped cleanly when they cannot be imported.  A JAX program's shape depends on
the scan length, so JAX compiles once per sample count; its compile time is reported as the time of
the first call minus the best time of the following calls.  Run times are the best of ``--repeats``
calls.

Reported: nanoseconds per chain-step (run time / (chains * samples)), compile times, and the ratios
aemix / peer and aemix-Y / peer, as a printed table, a CSV and a log-log plot of time against
samples (written to ``--out``).  The draws of each peer's largest run, pooled over chains after
discarding the first 10%, are checked against the exact mixture mean (0.92) and variance (9.7016).

Examples
--------
Quick check (about a minute once Aesara's cache in ``~/.aesara`` is warm)::

    .venv/bin/python benchmarks/seed_benchmark.py --quick

The full benchmark of the seed (1000 chains, 10 to 10^5 samples)::

    .venv/bin/python benchmarks/seed_benchmark.py
"""

from __future__ import annotations

import argparse
import atexit
import csv
import gc
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

LOC = np.array([-2.0, 0.0, 3.2, 2.5])
SCALE = np.array([1.2, 1.0, 5.0, 2.8])
WEIGHTS = np.array([0.2, 0.3, 0.1, 0.4])
# log w_k + the normalizing constant of component k: log p(y) = logsumexp(LOG_COEF - z_k^2 / 2).
LOG_COEF = np.log(WEIGHTS) - np.log(SCALE) - 0.5 * np.log(2.0 * np.pi)
EXACT_MEAN = float(WEIGHTS @ LOC)
EXACT_VAR = float(WEIGHTS @ (SCALE**2 + LOC**2) - EXACT_MEAN**2)

PEERS = (
    "aemix",
    "aemix-1thread",
    "aemix-Y",
    "aemix-Y-1thread",
    "aemix-scan",
    "numpy",
    "jax-batched",
    "jax-vmap",
    "numba",
)
DEFAULT_SAMPLES = (10, 100, 1_000, 10_000, 100_000)
QUICK_SAMPLES = (10, 100, 1_000, 10_000)
BURN_IN_FRACTION = 0.1
# Loose agreement bounds for the moment check (flagged, never fatal).
MEAN_TOL = 0.1
VAR_REL_TOL = 0.05


@dataclass
class PeerResult:
    """Timings and draws of one peer.

    Attributes
    ----------
    name
        The peer's name (one of `PEERS`).
    compile_s
        ``samples -> seconds`` of compilation; NaN where nothing is compiled.
    run_s
        ``samples -> [seconds of each repeat]``.
    draws
        Draws of the largest run, shape ``(chains, samples)``.
    notes
        Free text shown under the table (how compile time was measured, ...).
    """

    name: str
    compile_s: dict[int, float] = field(default_factory=dict)
    run_s: dict[int, list[float]] = field(default_factory=dict)
    draws: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def best(self, n: int) -> float:
        """Best run time over the repeats for ``n`` samples."""
        return min(self.run_s[n])


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    """Call ``fn`` once after a garbage collection; return its result and the wall time."""
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def initial_points(chains: int, seed: int = 1) -> np.ndarray:
    """Exact draws from the mixture, one per chain: the hand-written peers start stationary."""
    rng = np.random.default_rng(seed)
    k = rng.choice(len(WEIGHTS), size=chains, p=WEIGHTS)
    return rng.normal(LOC[k], SCALE[k])


# -- aemix -----------------------------------------------------------------------------------------


def bench_aemix(
    chains: int,
    samples: Sequence[int],
    repeats: int,
    step_size: float,
    x0: np.ndarray,
    name: str = "aemix",
    loop: str = "auto",
    n_threads: int | None = None,
    var_names: Sequence[str] | None = None,
) -> PeerResult:
    """Time ``aemix.build_sampler`` + first call, then ``sample`` for each sample count.

    ``x0`` is unused: aemix starts its chains at prior draws, which for this model are exact
    draws from the mixture as well.  ``loop`` is passed to `Sampler.sample` (``"auto"`` takes the
    fused C loop for this model; ``"scan"`` is the vectorized scan); ``n_threads`` to the fused
    loop (``None``: every core); ``var_names`` (``None``: ``Y`` and ``I``) too.
    """
    del x0
    with warnings.catch_warnings():
        # numpy.distutils' BLAS probing warns on import when no vendor BLAS is installed.
        warnings.simplefilter("ignore", UserWarning)
        import aesara.tensor as at

        import aemix

    result = PeerResult(name)
    start = time.perf_counter()
    srng = at.random.RandomStream(0)
    N_rv = srng.normal(LOC, SCALE, name="N")
    I_rv = srng.categorical(WEIGHTS, name="I")
    Y_rv = N_rv[I_rv]
    sampler = aemix.build_sampler(Y_rv)
    build = time.perf_counter() - start
    (latent,) = sampler.latent
    _, first = _timed(
        lambda: sampler.sample(
            1,
            n_chains=chains,
            seed=0,
            step_size=step_size,
            warmup=0,
            loop=loop,
            n_threads=n_threads,
            var_names=var_names,
        )
    )
    result.notes.append(
        f"{name} compile = build_sampler {build:.2f} s + first sample(1) call {first:.2f} s "
        "(Aesara's C cache in ~/.aesara makes later runs faster than a cold one)"
    )
    for n in samples:
        result.compile_s[n] = build + first
        result.run_s[n] = []
        for _ in range(repeats):
            out, seconds = _timed(
                lambda n=n: sampler.sample(
                    n,
                    n_chains=chains,
                    seed=0,
                    step_size=step_size,
                    warmup=0,
                    loop=loop,
                    n_threads=n_threads,
                    var_names=var_names,
                    # Like the hand-written peers, no R-hat/ESS: their cost is reported apart.
                    diagnose=False,
                )
            )
            result.run_s[n].append(seconds)
            draws = out.draws[latent]
            del out
        if n == max(samples):
            result.draws = draws
        del draws
        _log(f"  {result.name:<16} n={n:>7}: {result.best(n):.4f} s")
    return result


# -- NumPy -----------------------------------------------------------------------------------------


def numpy_logdensity(x: np.ndarray) -> np.ndarray:
    """Mixture log-density of each entry of ``x`` (shape ``(chains,)``)."""
    z = (x[:, None] - LOC) / SCALE
    a = LOG_COEF - 0.5 * z * z
    m = a.max(axis=1)
    return m + np.log(np.exp(a - m[:, None]).sum(axis=1))


def rmh_numpy(x0: np.ndarray, n: int, step_size: float, seed: int = 0) -> np.ndarray:
    """Run RMH for ``n`` steps on all chains at once; return draws of shape ``(chains, n)``."""
    rng = np.random.default_rng(seed)
    x = x0.copy()
    lp = numpy_logdensity(x)
    out = np.empty((n, x.size))
    for t in range(n):
        proposal = x + step_size * rng.standard_normal(x.size)
        lp_proposal = numpy_logdensity(proposal)
        accept = np.log(rng.random(x.size)) < lp_proposal - lp
        x = np.where(accept, proposal, x)
        lp = np.where(accept, lp_proposal, lp)
        out[t] = x
    return out.T


def bench_numpy(
    chains: int, samples: Sequence[int], repeats: int, step_size: float, x0: np.ndarray
) -> PeerResult:
    """Time `rmh_numpy` for each sample count (nothing to compile)."""
    result = PeerResult("numpy")
    for n in samples:
        result.compile_s[n] = float("nan")
        result.run_s[n] = []
        for _ in range(repeats):
            draws, seconds = _timed(lambda n=n: rmh_numpy(x0, n, step_size))
            result.run_s[n].append(seconds)
        if n == max(samples):
            result.draws = draws
        del draws
        _log(f"  numpy      n={n:>7}: {result.best(n):.4f} s")
    return result


# -- JAX -------------------------------------------------------------------------------------------


def make_jax_samplers() -> dict[str, Callable]:
    """The two JAX samplers, ``f(key, x0, step_size, n) -> draws (chains, n)``, jitted on ``n``.

    Raises
    ------
    ImportError
        If JAX is not installed.
    """
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax import lax

    loc, scale, log_coef = jnp.asarray(LOC), jnp.asarray(SCALE), jnp.asarray(LOG_COEF)

    def logdensity(x):
        z = (x[..., None] - loc) / scale
        return jax.nn.logsumexp(log_coef - 0.5 * z * z, axis=-1)

    def kernel(key, x, lp, step_size):
        key_normal, key_uniform = jax.random.split(key)
        proposal = x + step_size * jax.random.normal(key_normal, jnp.shape(x), dtype=x.dtype)
        lp_proposal = logdensity(proposal)
        log_u = jnp.log(jax.random.uniform(key_uniform, jnp.shape(x), dtype=x.dtype))
        accept = log_u < lp_proposal - lp
        return jnp.where(accept, proposal, x), jnp.where(accept, lp_proposal, lp)

    def scan_chain(key, x0, step_size, n):
        def body(carry, step_key):
            x, lp = kernel(step_key, *carry, step_size)
            return (x, lp), x

        _, xs = lax.scan(body, (x0, logdensity(x0)), jax.random.split(key, n))
        return xs

    @partial(jax.jit, static_argnames="n")
    def batched(key, x0, step_size, n):
        # One key per step; the state (and each step's noise) is batched over chains.
        return scan_chain(key, x0, step_size, n).T

    @partial(jax.jit, static_argnames="n")
    def vmapped(key, x0, step_size, n):
        # A one-chain kernel, mapped over one key per chain.
        keys = jax.random.split(key, x0.shape[0])
        return jax.vmap(lambda k, x: scan_chain(k, x, step_size, n))(keys, x0)

    return {"jax-batched": batched, "jax-vmap": vmapped}


def bench_jax(
    name: str, chains: int, samples: Sequence[int], repeats: int, step_size: float, x0: np.ndarray
) -> PeerResult:
    """Time one JAX sampler; compile time = first call - best of the ``repeats`` later calls."""
    import jax

    fn = make_jax_samplers()[name]
    key = jax.random.PRNGKey(0)
    x0_device = jax.numpy.asarray(x0)

    def call(n):
        return np.asarray(fn(key, x0_device, step_size, n).block_until_ready())

    result = PeerResult(name)
    result.notes.append(
        f"{name} compile = first call - best later call, once per sample count (scan length is "
        "part of the program's shape)"
    )
    for n in samples:
        _, first = _timed(lambda n=n: call(n))
        result.run_s[n] = []
        for _ in range(repeats):
            draws, seconds = _timed(lambda n=n: call(n))
            result.run_s[n].append(seconds)
        result.compile_s[n] = max(first - result.best(n), 0.0)
        if n == max(samples):
            result.draws = draws
        del draws
        _log(f"  {name:<10} n={n:>7}: {result.best(n):.4f} s (compile {result.compile_s[n]:.2f} s)")
    return result


# -- Numba -----------------------------------------------------------------------------------------


def make_numba_sampler() -> Callable:
    """The fused Numba sampler ``f(x0, n, step_size, seed) -> draws (chains, n)``.

    Raises
    ------
    ImportError
        If Numba is not installed.
    """
    import numba

    loc, scale, log_coef = LOC.copy(), SCALE.copy(), LOG_COEF.copy()

    @numba.njit(cache=False)
    def component(x, k):
        z = (x - loc[k]) / scale[k]
        return log_coef[k] - 0.5 * z * z

    @numba.njit(cache=False)
    def logdensity(x):
        # Two passes recomputing the cheap terms: no scratch array in the inner loop.
        m = -np.inf
        for k in range(loc.size):
            m = max(m, component(x, k))
        total = 0.0
        for k in range(loc.size):
            total += np.exp(component(x, k) - m)
        return m + np.log(total)

    @numba.njit(cache=False)
    def rmh_numba(x0, n, step_size, seed):
        np.random.seed(seed)
        chains = x0.shape[0]
        out = np.empty((chains, n))
        # Chains outer, steps inner: each chain's state stays in registers, writes are contiguous.
        for c in range(chains):
            x = x0[c]
            lp = logdensity(x)
            for t in range(n):
                proposal = x + step_size * np.random.standard_normal()
                lp_proposal = logdensity(proposal)
                if np.log(np.random.random()) < lp_proposal - lp:
                    x = proposal
                    lp = lp_proposal
                out[c, t] = x
        return out

    return rmh_numba


def bench_numba(
    chains: int, samples: Sequence[int], repeats: int, step_size: float, x0: np.ndarray
) -> PeerResult:
    """Time the Numba loop; compile time = a first call with one step (compiled once for all n)."""
    fn = make_numba_sampler()
    result = PeerResult("numba")
    _, compile_s = _timed(lambda: fn(x0, 1, step_size, 0))
    result.notes.append("numba compile = first call with one step (one compilation for all n)")
    for n in samples:
        result.compile_s[n] = compile_s
        result.run_s[n] = []
        for _ in range(repeats):
            draws, seconds = _timed(lambda n=n: fn(x0, n, step_size, 0))
            result.run_s[n].append(seconds)
        if n == max(samples):
            result.draws = draws
        del draws
        _log(f"  numba      n={n:>7}: {result.best(n):.4f} s")
    return result


# -- reporting -------------------------------------------------------------------------------------


def rows(results: list[PeerResult], chains: int, repeats: int) -> list[dict[str, object]]:
    """One CSV/table row per peer and sample count."""
    reference = next((r for r in results if r.name == "aemix"), None)
    like_for_like = next((r for r in results if r.name == "aemix-Y"), None)
    out = []
    for r in results:
        for n in sorted(r.run_s):
            run = r.best(n)
            compile_s = r.compile_s[n]
            total = run + (0.0 if np.isnan(compile_s) else compile_s)
            row: dict[str, object] = {
                "peer": r.name,
                "chains": chains,
                "samples": n,
                "repeats": repeats,
                "compile_s": compile_s,
                "run_s": run,
                "run_median_s": float(np.median(r.run_s[n])),
                "total_s": total,
                "ns_per_chain_step": run / (chains * n) * 1e9,
                "aemix_over_peer_run": float("nan"),
                "aemix_over_peer_total": float("nan"),
                "aemix_Y_over_peer_run": float("nan"),
            }
            if reference is not None and n in reference.run_s:
                ref_total = reference.best(n) + reference.compile_s[n]
                row["aemix_over_peer_run"] = reference.best(n) / run
                row["aemix_over_peer_total"] = ref_total / total
            if like_for_like is not None and n in like_for_like.run_s:
                row["aemix_Y_over_peer_run"] = like_for_like.best(n) / run
            out.append(row)
    return out


def _fmt(value: float, width: int, precision: int) -> str:
    return f"{'-':>{width}}" if np.isnan(value) else f"{value:>{width}.{precision}f}"


def print_table(table: list[dict[str, object]]) -> None:
    """Print the timing rows grouped by sample count."""
    header = (
        f"{'samples':>8} {'peer':<16} {'compile s':>10} {'run s':>10} {'ns/chain-step':>14} "
        f"{'aemix/peer run':>15} {'aemix/peer total':>17} {'aemix-Y/peer run':>17}"
    )
    print(header)
    print("-" * len(header))
    for n in sorted({row["samples"] for row in table}):
        for row in (row for row in table if row["samples"] == n):
            print(
                f"{n:>8} {row['peer']:<16} {_fmt(row['compile_s'], 10, 3)} "
                f"{row['run_s']:>10.4f} {row['ns_per_chain_step']:>14.1f} "
                f"{_fmt(row['aemix_over_peer_run'], 15, 2)} "
                f"{_fmt(row['aemix_over_peer_total'], 17, 2)} "
                f"{_fmt(row['aemix_Y_over_peer_run'], 17, 2)}"
            )
        print()


def moments(results: list[PeerResult]) -> list[dict[str, object]]:
    """Pooled mean and variance of each peer's largest run after discarding the first 10%."""
    out = []
    for r in results:
        if r.draws is None:
            continue
        kept = r.draws[:, int(BURN_IN_FRACTION * r.draws.shape[1]) :]
        mean, var = float(kept.mean()), float(kept.var())
        ok = abs(mean - EXACT_MEAN) < MEAN_TOL and abs(var / EXACT_VAR - 1) < VAR_REL_TOL
        out.append(
            {
                "peer": r.name,
                "samples": r.draws.shape[1],
                "draws_pooled": kept.size,
                "mean": mean,
                "exact_mean": EXACT_MEAN,
                "var": var,
                "exact_var": EXACT_VAR,
                "ok": ok,
            }
        )
    return out


def print_moments(table: list[dict[str, object]]) -> None:
    """Print the moment check beside the exact values."""
    print(
        f"Moments of the largest run (first {BURN_IN_FRACTION:.0%} of each chain discarded, "
        "chains pooled):"
    )
    header = f"{'peer':<16} {'samples':>8} {'mean':>8} {'exact':>8} {'var':>8} {'exact':>8}  check"
    print(header)
    print("-" * len(header))
    for row in table:
        print(
            f"{row['peer']:<16} {row['samples']:>8} {row['mean']:>8.4f} {row['exact_mean']:>8.4f} "
            f"{row['var']:>8.4f} {row['exact_var']:>8.4f}  {'ok' if row['ok'] else 'MISMATCH'}"
        )
    print()


def write_csv(path: Path, table: list[dict[str, object]]) -> None:
    """Write ``table`` (a list of same-keyed dicts) as CSV."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)


def plot(path: Path, table: list[dict[str, object]], chains: int) -> None:
    """Log-log time against samples: run time (left) and compile + run (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    peers = list(dict.fromkeys(row["peer"] for row in table))
    for peer in peers:
        own = sorted((row for row in table if row["peer"] == peer), key=lambda r: r["samples"])
        n = [row["samples"] for row in own]
        axes[0].loglog(n, [row["run_s"] for row in own], "o-", label=peer)
        axes[1].loglog(n, [row["total_s"] for row in own], "o-", label=peer)
    axes[0].set_title("run time")
    axes[1].set_title("compile + run time")
    for ax in axes:
        ax.set_xlabel("number of samples per chain")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("time (s)")
    axes[0].legend()
    fig.suptitle(f"RMH on the seed's 4-component normal mixture, {chains} chains, float64")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- driver ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", type=int, default=1000, help="number of chains (1000)")
    parser.add_argument(
        "--samples",
        type=int,
        nargs="+",
        default=None,
        help=f"sample counts per chain (default {' '.join(map(str, DEFAULT_SAMPLES))})",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per size (3)")
    parser.add_argument("--step-size", type=float, default=2.0, help="RMH step size (2.0)")
    parser.add_argument(
        "--peers", nargs="+", choices=PEERS, default=list(PEERS), help="peers to run (all)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "out",
        help="output folder for the CSVs and the plot (benchmarks/out)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"samples {' '.join(map(str, QUICK_SAMPLES))} and 2 repeats unless given",
    )
    parser.add_argument(
        "--cold-aesara",
        action="store_true",
        help="compile aemix in a fresh, temporary Aesara cache (a cold-start compile time)",
    )
    args = parser.parse_args(argv)
    if args.samples is None:
        args.samples = list(QUICK_SAMPLES if args.quick else DEFAULT_SAMPLES)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3
    if args.chains < 1 or args.repeats < 1 or min(args.samples) < 1 or args.step_size <= 0:
        parser.error("--chains, --repeats and --samples must be positive, --step-size > 0")
    args.samples = sorted(set(args.samples))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the process exit status."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.cold_aesara:
        cold_dir = tempfile.mkdtemp(prefix="aesara-cold-")
        flags = [os.environ.get("AESARA_FLAGS", ""), f"base_compiledir={cold_dir}"]
        os.environ["AESARA_FLAGS"] = ",".join(f for f in flags if f)
        # Registered before Aesara is imported, so it runs after Aesara's own exit hook, which
        # still touches the cache.
        atexit.register(shutil.rmtree, cold_dir, ignore_errors=True)

    x0 = initial_points(args.chains)
    common = (args.chains, args.samples, args.repeats, args.step_size, x0)
    runners: dict[str, Callable[[], PeerResult]] = {
        "aemix": lambda: bench_aemix(*common),
        "aemix-1thread": lambda: bench_aemix(*common, "aemix-1thread", n_threads=1),
        "aemix-Y": lambda: bench_aemix(*common, "aemix-Y", var_names=["Y"]),
        "aemix-Y-1thread": lambda: bench_aemix(
            *common, "aemix-Y-1thread", n_threads=1, var_names=["Y"]
        ),
        "aemix-scan": lambda: bench_aemix(*common, "aemix-scan", loop="scan"),
        "numpy": lambda: bench_numpy(*common),
        "jax-batched": lambda: bench_jax("jax-batched", *common),
        "jax-vmap": lambda: bench_jax("jax-vmap", *common),
        "numba": lambda: bench_numba(*common),
    }
    _log(
        f"RMH, {args.chains} chains, samples {args.samples}, {args.repeats} repeats, "
        f"step size {args.step_size}, Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    results, skipped = [], []
    for name in (p for p in PEERS if p in args.peers):
        _log(f"{name}:")
        try:
            results.append(runners[name]())
        except ImportError as exc:
            skipped.append(f"{name} skipped: {exc}")
            _log(f"  {skipped[-1]}")
    if not results:
        print("no peer could run:", *skipped, sep="\n  ")
        return 1

    table = rows(results, args.chains, args.repeats)
    moment_table = moments(results)
    print()
    print(
        f"RMH on the 4-component normal mixture: {args.chains} chains, step size "
        f"{args.step_size}, float64, best of {args.repeats} runs"
    )
    print_table(table)
    for note in (note for r in results for note in r.notes):
        print(f"  {note}")
    for note in skipped:
        print(f"  {note}")
    print()
    print_moments(moment_table)

    csv_path = args.out / "seed_benchmark.csv"
    moments_path = args.out / "seed_benchmark_moments.csv"
    png_path = args.out / "seed_benchmark.png"
    write_csv(csv_path, table)
    write_csv(moments_path, moment_table)
    plot(png_path, table, args.chains)
    print(f"wrote {csv_path}, {moments_path}, {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
