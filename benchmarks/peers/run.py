"""ESS per second of aemix beside NumPyro and PyMC (NUTS, discrete latents summed out), five models.

Run with aemix's Python from the repository root (the peers' Pythons are found through
``AEMIX_NUMPYRO_PYTHON`` and ``AEMIX_PYMC_PYTHON``, default ``/work/peers/<peer>/bin/python``; a
peer whose Python is absent is skipped with a line saying so; README.md says how to make them)::

    .venv/bin/python benchmarks/peers/run.py [--models blr gauss_mix] [--tools aemix numpyro]

For each model (`specs` lists them) aemix runs in this process and each peer in a subprocess
(`numpyro_models.py`, `pymc_models.py`), all on the same data (one JSON file handed to the peers)
and priors.  aemix runs its default call, ``sampler.sample(1000, seed=0)`` (32 chains, thin="auto",
the tempered start where there is data), twice on one sampler: the first run after
``build_sampler`` compiles (and samples), the second finds everything compiled.  Reported:

* build s: aemix and NumPyro: the first run's wall time (aemix: ``build_sampler`` included) less
  the second's; PyMC: its wall time less ``pm.sample``'s own sampling time.
* sample s: aemix and NumPyro: the second run (warm-up included); PyMC: ``sampling_time``.
* min ESS: the smallest ArviZ bulk ESS (``az.ess``) over the scalar parameters of the draws that
  are reported (aemix and NumPyro: the second run's), computed here in the same way for every
  tool; ESS/s of sampling is ``min ESS / sample s``, ESS/s total ``min ESS / (build + sample s)``.
* each parameter's posterior mean and its MCSE (``az.mcse``, method "mean"): every pair of tools,
  and each tool and the reference (exact for seed_mixture and coal_mining, posteriordb's Stan
  draws for the others, its MCSE ``sd / sqrt(ess_bulk)``), must agree within 5 combined MCSE
  (``sqrt(mcse_a^2 + mcse_b^2)``); a pair that does not is flagged in the table and listed.

Writes ``--out`` (default ``benchmarks/peers/results.json``), a markdown table on stdout and
``--plot`` (default ``benchmarks/peers/ess_per_second.png``, log scale).  ``--cold`` compiles aemix
in a fresh temporary Aesara cache and PyMC in a fresh PyTensor cache (a first start on a new
machine; JAX keeps no cache between processes unless told to), rather than the caches
``AESARA_FLAGS`` and ``PYTENSOR_FLAGS`` name.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import specs

HERE = Path(__file__).resolve().parent
TOOLS = ("aemix", "numpyro", "pymc")
PEERS = {
    "numpyro": ("AEMIX_NUMPYRO_PYTHON", "/work/peers/numpyro/bin/python", "numpyro_models.py"),
    "pymc": ("AEMIX_PYMC_PYTHON", "/work/peers/pymc/bin/python", "pymc_models.py"),
}
AGREEMENT = 5.0  # combined MCSEs


def run_aemix(name: str, data: dict) -> dict:
    """aemix's default call, twice on one sampler: timings, the second run's draws, warnings."""
    import aemix_models

    import aemix
    from aemix.sampler import auto_thin

    caught = []
    walls = []
    start = time.perf_counter()
    sampler = aemix_models.BUILDERS[name](data)
    for _ in range(2):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            result = sampler.sample(1000, seed=specs.SEED)
        walls.append(time.perf_counter() - start)
        caught.append([f"{w.category.__name__}: {w.message}" for w in record])
        start = time.perf_counter()
    params = aemix_models.PARAMETERS[name]
    return {
        "build_s": walls[0] - walls[1],
        "sample_s": walls[1],
        "first_run_s": walls[0],
        "draws": {k: result.draws[k] for k in params},
        "settings": (
            f"RMH, sample(1000, seed=0): {result.acceptance_rate.size} chains x (1000 warm-up + "
            f"1000 kept x thin {auto_thin(sampler.dim)}), start="
            f"{'tempered' if result.tempering is not None else 'prior'}, loop={result.loop}"
        ),
        "acceptance_rate": float(result.acceptance_rate.mean()),
        "warnings": {"first run": caught[0], "second run": caught[1]},
        "versions": {"aemix": getattr(aemix, "__version__", "worktree")},
        "error": None,
    }


def run_peer(tool: str, name: str, data_file: Path, timeout: float, env: dict) -> dict:
    """One peer on one model in its own Python; ``{"skipped": why}`` when that Python is absent."""
    variable, default, script = PEERS[tool]
    python = os.environ.get(variable, default)
    if not Path(python).exists():
        return {"skipped": f"{tool}: no Python at {python} (set {variable}; see README.md)"}
    command = [python, str(HERE / script), "--model", name, "--data", str(data_file)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    try:
        out = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-2000:]}"}
    if out.get("error"):
        out["stderr_tail"] = done.stderr.strip()[-2000:]
    else:
        out["draws"] = {k: np.asarray(v, dtype=float) for k, v in out["draws"].items()}
    return out


def scalar_draws(draws: dict) -> dict[str, np.ndarray]:
    """``name -> (chains, draws, *shape)`` to ``"name[i]" -> (chains, draws)`` (0-based indices)."""
    out = {}
    for name, x in draws.items():
        x = np.asarray(x, dtype=float)
        if x.ndim == 2:
            out[name] = x
        else:
            for index in np.ndindex(*x.shape[2:]):
                out[f"{name}[{','.join(map(str, index))}]"] = x[(slice(None), slice(None), *index)]
    return out


def parameter_stats(draws: dict) -> dict[str, dict]:
    import arviz as az

    stats = {}
    for key, x in scalar_draws(draws).items():
        stats[key] = {
            "mean": float(x.mean()),
            "sd": float(x.std()),
            "mcse_mean": float(az.mcse(x, method="mean")),
            "ess_bulk": float(az.ess(x, method="bulk")),
        }
    return stats


def reference(name: str, data: dict) -> dict | None:
    """``"param" -> {"mean", "mcse_mean"}``: exact values or posteriordb's, in this benchmark's names."""
    if name == "seed_mixture":
        return {"Y": {"mean": float(np.dot(specs.WEIGHTS, specs.LOC)), "mcse_mean": 0.0}}
    if name == "coal_mining":
        sys.path.insert(0, str(specs.REPO))
        from examples.coal_mining import exact_posterior

        _, early, late = exact_posterior(np.asarray(data["counts"]))
        return {
            "early": {"mean": float(early), "mcse_mean": 0.0},
            "late": {"mean": float(late), "mcse_mean": 0.0},
        }
    if name == "regression30":
        X, y = np.asarray(data["X"]), np.asarray(data["y"])
        cov = np.linalg.inv(X.T @ X + np.eye(X.shape[1]))
        mean = cov @ X.T @ y
        return {f"beta[{j}]": {"mean": float(m), "mcse_mean": 0.0} for j, m in enumerate(mean)}
    if name not in specs.POSTERIORDB or not specs.REFS.exists():
        return None
    ref = json.loads(specs.REFS.read_text())["posteriors"][specs.POSTERIORDB[name]]
    out = {}
    for key, mean in ref["mean"].items():
        mcse = ref["sd"][key] / np.sqrt(ref["ref_ess_bulk"][key])
        base, _, index = key.partition("[")
        if index:
            key = f"{base}[{int(index.rstrip(']')) - 1}]"
        if key.startswith("theta["):
            continue  # eight schools' theta = mu + tau theta_tilde is not a parameter here
        if name == "gauss_mix" and key == "theta":
            mean = 1.0 - mean  # Stan's theta weighs mu[1], this benchmark's theta mu[2]
        out[key] = {"mean": float(mean), "mcse_mean": float(mcse)}
    return out


def disagreements(results: dict, ref: dict | None) -> list[dict]:
    """Every (parameter, tool, other) whose means differ by more than 5 combined MCSE."""
    sources = {t: r["stats"] for t, r in results.items() if "stats" in r}
    if ref:
        sources["reference"] = ref
    names = list(sources)
    flagged = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for key in sorted(set(sources[a]) & set(sources[b])):
                sa, sb = sources[a][key], sources[b][key]
                error = np.hypot(sa["mcse_mean"], sb["mcse_mean"])
                z = abs(sa["mean"] - sb["mean"]) / error if error > 0 else np.inf
                if z > AGREEMENT:
                    flagged.append(
                        {
                            "parameter": key,
                            "tools": [a, b],
                            "means": [sa["mean"], sb["mean"]],
                            "combined_mcse": float(error),
                            "z": float(z),
                        }
                    )
    return flagged


def summarize(run: dict) -> None:
    """Add ``stats``, ``min_ess`` and the ESS rates to one tool's run, and drop its draws."""
    draws = run.pop("draws")
    run["stats"] = parameter_stats(draws)
    worst = min(run["stats"], key=lambda k: run["stats"][k]["ess_bulk"])
    run["min_ess"] = run["stats"][worst]["ess_bulk"]
    run["min_ess_parameter"] = worst
    run["ess_per_s_sampling"] = run["min_ess"] / run["sample_s"]
    run["ess_per_s_total"] = run["min_ess"] / (run["build_s"] + run["sample_s"])


def table(results: dict) -> str:
    rows = [
        "| model | tool | build s | sample s | min bulk ESS (parameter) | ESS/s sampling "
        "| ESS/s total | agreement |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, entry in results["models"].items():
        if "skipped" in entry:
            rows.append(f"| {name} | - | | | | | | skipped: {entry['skipped']} |")
            continue
        for tool, run in entry["tools"].items():
            if "skipped" in run or run.get("error"):
                what = run.get("skipped") or f"error: {run['error'][:120]}"
                rows.append(f"| {name} | {tool} | | | | | | {what} |")
                continue
            flags = [f for f in entry["disagreements"] if tool in f["tools"]]
            agree = (
                "ok"
                if not flags
                else "DISAGREES: "
                + "; ".join(
                    f"{f['parameter']} vs {[t for t in f['tools'] if t != tool][0]} "
                    f"({f['z']:.1f} MCSE)"
                    for f in flags
                )
            )
            rows.append(
                f"| {name} | {tool} | {run['build_s']:.1f} | {run['sample_s']:.2f} "
                f"| {run['min_ess']:.0f} ({run['min_ess_parameter']}) "
                f"| {run['ess_per_s_sampling']:.0f} | {run['ess_per_s_total']:.0f} | {agree} |"
            )
    return "\n".join(rows)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m, e in results["models"].items() if "tools" in e]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    width = 0.8 / len(TOOLS)
    for ax, key, title in (
        (axes[0], "ess_per_s_sampling", "min bulk ESS / sampling s"),
        (axes[1], "ess_per_s_total", "min bulk ESS / (build + sampling) s"),
    ):
        for i, tool in enumerate(TOOLS):
            values = [results["models"][m]["tools"].get(tool, {}).get(key, np.nan) for m in models]
            ax.bar(np.arange(len(models)) + (i - 1) * width, values, width, label=tool)
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(models)), models, rotation=20)
        ax.set_title(title)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0].set_ylabel("ESS per second")
    axes[0].legend()
    fig.suptitle(f"aemix vs NumPyro vs PyMC, {results['date']}, {results['machine']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=specs.MODELS, default=list(specs.MODELS))
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--plot", type=Path, default=HERE / "ess_per_second.png")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per peer run")
    parser.add_argument("--cold", action="store_true", help="fresh Aesara and PyTensor caches")
    parser.add_argument(
        "--from-results", type=Path, help="run nothing: the table and plot of a results.json"
    )
    args = parser.parse_args(argv)
    if args.from_results:
        report(json.loads(args.from_results.read_text()), args.plot)
        return
    peer_env = dict(os.environ)
    cold_dirs = []
    if args.cold:
        for variable, env in (("AESARA_FLAGS", os.environ), ("PYTENSOR_FLAGS", peer_env)):
            cold_dir = tempfile.mkdtemp(prefix=f"{variable.split('_')[0].lower()}-cold-")
            cold_dirs.append(cold_dir)
            flags = (env.get(variable, ""), f"base_compiledir={cold_dir}")
            env[variable] = ",".join(f for f in flags if f)

    results = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()}",
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "cold_caches": args.cold,
        "models": {},
    }
    datasets = {name: specs.load_data(name) for name in args.models}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({k: v for k, v in datasets.items() if v is not None}, handle)
    data_file = Path(handle.name)
    try:
        for name in args.models:
            data = datasets[name]
            if data is None:
                why = f"its data are absent ({specs.REFS} or {specs.COAL})"
                print(f"{name}: skipped, {why}", flush=True)
                results["models"][name] = {"skipped": why}
                continue
            runs = {}
            for tool in args.tools:
                print(f"{name}: {tool} ...", flush=True)
                try:
                    if tool == "aemix":
                        run = run_aemix(name, data)
                    else:
                        run = run_peer(tool, name, data_file, args.timeout, peer_env)
                except Exception as exc:  # recorded, and the benchmark goes on
                    run = {"error": f"{type(exc).__name__}: {exc}"}
                if "skipped" in run:
                    print(f"  skipped: {run['skipped']}", flush=True)
                elif run.get("error"):
                    print(f"  error: {run['error']}", flush=True)
                else:
                    summarize(run)
                    print(
                        f"  build {run['build_s']:.1f} s, sample {run['sample_s']:.1f} s, "
                        f"min ESS {run['min_ess']:.0f} ({run['min_ess_parameter']})",
                        flush=True,
                    )
                runs[tool] = run
            ref = reference(name, data)
            flagged = disagreements(runs, ref)
            for f in flagged:
                print(
                    f"  FLAG {name} {f['parameter']}: {f['tools'][0]} {f['means'][0]:.4f} vs "
                    f"{f['tools'][1]} {f['means'][1]:.4f} ({f['z']:.1f} combined MCSE)",
                    flush=True,
                )
            results["models"][name] = {"tools": runs, "reference": ref, "disagreements": flagged}
            args.out.write_text(json.dumps(results, indent=1))
    finally:
        data_file.unlink()
        for cold_dir in cold_dirs:
            shutil.rmtree(cold_dir, ignore_errors=True)
    args.out.write_text(json.dumps(results, indent=1))
    report(results, args.plot)
    print(f"wrote {args.out}")


def report(results: dict, plot_path: Path) -> None:
    """The markdown table on stdout, with every disagreement listed under it, and the plot."""
    print()
    print(f"{results['date']}, {results['machine']}: `{results['command']}`")
    print()
    print(table(results))
    for name, entry in results["models"].items():
        for f in entry.get("disagreements", []):
            print(
                f"\nFLAG {name} {f['parameter']}: {f['tools'][0]} {f['means'][0]:.4f} vs "
                f"{f['tools'][1]} {f['means'][1]:.4f} ({f['z']:.1f} combined MCSE)"
            )
    plot(results, plot_path)
    print(f"\nwrote {plot_path}")


if __name__ == "__main__":
    main()
