"""Time to a first ``sample()``: every example, cold (an empty Aesara cache) and warm, and its peak memory.

For each example (``examples/*.py``: their ``build`` functions and data; the seed's mixture as the
README writes it), a fresh process imports aemix, builds the sampler, and calls
``sampler.sample(100, seed=0, warmup=200)`` twice; the first call carries the compiles, the second
(the same call, nothing left to compile) is the run alone.  Each example runs in two processes
in turn: the first with an empty compile directory (cold), the second with the one it filled
(warm).  The time of the first call is split among the stages that make it (exclusive times, so
they add up):

- ``lowering``: the one-chain step and record lowered to scalar graphs (`aemix.scalarize`);
- ``self-check``: the lowered log-density compared with Aesara's (the functions it compiles
  are counted under ``function`` and ``gcc``);
- ``fused: C code``: the fused loop's C code written (`aemix.fused.FusedRMHLoop`);
- ``fused: function``: Aesara's function and cache machinery around the fused loop;
- ``gcc``: the C compiler (every module: the fused loop, the batched graphs, scan's);
- ``function``: every other ``aesara.function`` (the batched log-density, the prior draws, the
  scan loop, the record), less its gcc;
- ``finish``: the result assembled: recovery after the loop, diagnostics (ArviZ's first import);
- ``rest``: the sampling itself (warm-up, draws) and everything else.

Peak memory is the process's peak resident set (import, compile and both calls).

Run: ``.venv/bin/python benchmarks/compile_times.py [--root CHECKOUT] [--examples ...] [--json F]``
(``--root`` times another checkout of aemix on the same models, e.g. an older commit).
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

HERE = Path(__file__).resolve().parents[1]
EXAMPLES = ("seed_mixture", "old_faithful", "coal_mining", "zero_inflated_poisson")
STAGES = (
    "lowering",
    "self-check",
    "fused: C code",
    "fused: function",
    "gcc",
    "function",
    "finish",
    "rest",
)
SAMPLE = dict(n_samples=100, seed=0, warmup=200)


def build(name: str, root: Path):
    """The example's sampler, built from its module in ``root``/examples."""
    sys.path.insert(0, str(root / "examples"))
    import aesara.tensor as at
    import numpy as np

    import aemix

    if name == "seed_mixture":
        srng = at.random.RandomStream(0)
        N_rv = srng.normal(np.array([-2, 0, 3.2, 2.5]), np.array([1.2, 1, 5, 2.8]), name="N")
        I_rv = srng.categorical(np.array([0.2, 0.3, 0.1, 0.4]), name="I")
        return aemix.build_sampler(N_rv[I_rv])
    module = __import__(name)
    if name == "old_faithful":
        return module.build(module.load_eruptions())
    if name == "coal_mining":
        return module.build(module.load_counts()[1])
    return module.build(module.simulate()[0])


class StageTimer:
    """Exclusive time per stage: wrapped functions push their stage; nested time is the inner
    stage's."""

    def __init__(self):
        self.totals = dict.fromkeys(STAGES, 0.0)
        self.stack: list[list] = []

    def wrap(self, owner, attr: str, stage):
        original = getattr(owner, attr, None)
        if original is None:
            return
        timer = self

        def wrapped(*args, **kwargs):
            label = stage(timer.stack) if callable(stage) else stage
            if label is None:
                return original(*args, **kwargs)
            timer.stack.append([label, 0.0])
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                _, nested = timer.stack.pop()
                timer.totals[label] += elapsed - nested
                if timer.stack:
                    timer.stack[-1][1] += elapsed

        static = isinstance(owner, type) and isinstance(owner.__dict__.get(attr), staticmethod)
        setattr(owner, attr, staticmethod(wrapped) if static else wrapped)


def child(name: str, root: Path) -> dict:
    import resource

    start = time.perf_counter()
    import aesara
    import aesara.link.c.cmodule as cmodule

    import aemix
    import aemix.fused
    import aemix.sampler

    imported = time.perf_counter() - start
    timer = StageTimer()

    def in_fused(stack):
        return any(frame[0].startswith("fused") for frame in stack)

    timer.wrap(aemix.sampler, "lower_to_scalars", "lowering")
    timer.wrap(aemix.sampler.Sampler, "_check_lowering", "self-check")
    timer.wrap(aemix.sampler, "compile_loop", "fused: function")
    timer.wrap(aemix.sampler.Sampler, "_finish", "finish")
    for attr in ("c_code", "c_support_code", "c_support_code_apply"):
        timer.wrap(aemix.fused.FusedRMHLoop, attr, "fused: C code")
    timer.wrap(cmodule.GCC_compiler, "compile_str", "gcc")
    timer.wrap(aesara, "function", lambda stack: None if in_fused(stack) else "function")

    start = time.perf_counter()
    sampler = build(name, root)
    built = time.perf_counter() - start
    timer.totals = dict.fromkeys(STAGES, 0.0)  # (the build's compiles are not the sample's)
    start = time.perf_counter()
    sampler.sample(**SAMPLE)
    first = time.perf_counter() - start
    stages = dict(timer.totals)
    start = time.perf_counter()
    result = sampler.sample(**SAMPLE)
    second = time.perf_counter() - start
    stages["rest"] = first - sum(v for k, v in stages.items() if k != "rest")
    return dict(
        example=name,
        import_s=imported,
        build_s=built,
        first_s=first,
        second_s=second,
        loop=result.loop,
        stages=stages,
        peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


def run(name: str, root: Path, compiledir: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    env["AESARA_FLAGS"] = f"base_compiledir={compiledir}"
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, "--root", str(root)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    head = "| example | cache | loop | build s | first sample s | second s | peak MB | "
    head += " | ".join(STAGES) + " |"
    lines = [head, "| --- | --- | --- |" + " ---: |" * (4 + len(STAGES))]
    for r in rows:
        stages = " | ".join(f"{r['stages'][s]:.2f}" for s in STAGES)
        lines.append(
            f"| {r['example']} | {r['cache']} | {r['loop']} | {r['build_s']:.2f} | "
            f"{r['first_s']:.2f} | {r['second_s']:.2f} | {r['peak_mb']:.0f} | {stages} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(HERE), help="the checkout of aemix to time")
    parser.add_argument("--examples", nargs="+", default=list(EXAMPLES), choices=EXAMPLES)
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    if args.child:
        print(json.dumps(child(args.child, root)))
        return
    rows = []
    for name in args.examples:
        with tempfile.TemporaryDirectory(prefix="aemix-compile-") as compiledir:
            for cache in ("cold", "warm"):
                row = run(name, root, compiledir)
                row["cache"] = cache
                rows.append(row)
                print(f"{name} {cache}: first sample {row['first_s']:.2f} s", file=sys.stderr)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
