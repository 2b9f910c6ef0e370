"""The two ways chains run: blocks of kernel steps (`aemix.kernels.choice`) by the fused C loop or
by the step vectorized over the chains (the ``scan`` loop: `StepLoop`).

A runner takes the chains' positions and log-densities and the frozen kernel parameters, runs a
block of steps, and returns a `Block`: the new state, acceptance counts, position moments and,
outside warm-up, the kept draws (stored into preallocated arrays) or their running moments.  It
never decides tuning (see `aemix.adaptation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import aesara
import numpy as np
from aesara.graph.basic import Variable

from aemix.fused import MODES, FusedProgram, tile_count
from aemix.kernels import rmh
from aemix.kernels.choice import Kernel
from aemix.memory import smallest_integer_dtype
from aemix.results import Moments

if TYPE_CHECKING:
    from aemix.sampler import Sampler

__all__ = [
    "Block",
    "ScanRunner",
    "StepLoop",
    "FusedRunner",
    "RECORD_MEMORY_BUDGET",
    "stored_variables",
    "Sampled",
    "run_sampling",
]


@dataclass
class Block:
    """What one compiled call of a loop returns (per chain; see `FusedRMHLoop`)."""

    positions: np.ndarray
    logdensities: np.ndarray
    acceptance_sum: np.ndarray
    n_accepted: np.ndarray
    # steps of acceptance probability exactly 0 (for HMC, its divergences: `aemix.kernels.hmc`)
    n_zero_acceptance: np.ndarray
    position_mean: np.ndarray
    position_m2: np.ndarray
    record_mean: np.ndarray | None = None
    record_m2: np.ndarray | None = None


# Bound on the memory of the record computed after the loop, per batch of draws: the discrete
# conditionals hold K values per element (per observation, for some), many times the draws' size.
RECORD_MEMORY_BUDGET = 64 * 2**20
# Arrays of a record's largest size alive at once while it is computed (an estimate: see
# `Sampler._record_rows`).
LIVE_INTERMEDIATES = 4


class DrawStore:
    """Result arrays filled block by block (for records computed after the loop).

    A runner that has it sets ``sampler``, ``keep`` and ``recovery_rng``.
    """

    def record_after_loop(
        self, block: Block, kept: np.ndarray, kept_logdensity: np.ndarray, mode: str, offset: int
    ) -> Block:
        """The record of a block's kept positions ``kept`` ``(n_chains, n_kept, dim)``: stored from
        draw ``offset`` on (``mode="draws"``) or merged into ``block``'s record moments.

        The record is computed over a few draws of every chain at a time (and, when one draw of
        every chain is too many, over a few chains at a time: `Sampler._record_rows`), so its
        memory is bounded by `RECORD_MEMORY_BUDGET`, not by the block's length.
        """
        n_chains, n_kept = kept.shape[:2]
        per_batch = max(1, self.sampler._record_rows(self.keep) // n_chains)
        moments = Moments()
        for start in range(0, n_kept, per_batch):
            stop = min(n_kept, start + per_batch)
            draws = self.sampler._constrain_and_recover(
                kept[:, start:stop], self.recovery_rng, self.keep
            )
            if mode == "draws":
                self.store(draws, kept_logdensity[:, start:stop], offset + start)
            else:
                moments.merge(stop - start, *draws_moments(self.sampler, draws, self.keep))
        if mode != "draws":
            block.record_mean, block.record_m2 = moments.mean, moments.m2
        return block

    def allocate(self, n_chains: int, n_samples: int) -> None:
        self.draws: dict[str, np.ndarray] = {
            name: np.empty((n_chains, n_samples, *shape), dtype=dtype)
            for name, (shape, dtype) in stored_variables(self.sampler, self.keep).items()
        }
        self.kept_logdensity = np.empty((n_chains, n_samples))

    def collect(self):
        return self.draws, self.kept_logdensity

    def store(self, draws: dict[str, np.ndarray], kept_logdensity: np.ndarray, offset: int):
        """Copy a block's ``draws`` into the result from draw ``offset`` on, each cast to its
        stored dtype (a discrete variable's values are those of its support, which it holds)."""
        n_kept = kept_logdensity.shape[1]
        for name, value in draws.items():
            self.draws[name][:, offset : offset + n_kept] = value
        self.kept_logdensity[:, offset : offset + n_kept] = kept_logdensity


class StepLoop:
    """Blocks of steps of a compiled step of every chain, run once per step.

    ``step(positions, logdensities, normal, exponential, step_size, parameters)`` is one step of
    every chain (the one-chain step vectorized over a leading chain axis); called with the noise
    of a block of steps (a leading step axis), a `StepLoop` returns each step's positions,
    log-densities, acceptance probabilities and acceptances, stacked along that axis.

    The loop over steps was an Aesara ``scan`` around the same step: compiling the scan cost
    about 2.4 times compiling the step alone (the tests' change point, warm: 12.1 s against
    5.0 s), for a loop whose per-step cost is the step's own once there are more than a few
    chains.
    """

    def __init__(self, step):
        self.step = step
        self.dtypes = [i.type.dtype for i in step.maker.fgraph.inputs]
        # (the arrays are cast to the compiled types once per block, not checked at every step)
        step.trust_input = True

    def __call__(self, positions, logdensities, normal, exponential, step_size, parameters):
        positions, logdensities, normal, exponential, step_size, parameters = (
            np.asarray(value, dtype=dtype)
            for value, dtype in zip(
                (positions, logdensities, normal, exponential, step_size, parameters), self.dtypes
            )
        )
        n_steps, n_chains = exponential.shape
        xs = np.empty((n_steps, *positions.shape), dtype=positions.dtype)
        lps = np.empty((n_steps, n_chains), dtype=logdensities.dtype)
        probs = np.empty((n_steps, n_chains), dtype=logdensities.dtype)
        accepted = np.empty((n_steps, n_chains), dtype="int8")
        x, lp = positions, logdensities
        for t in range(n_steps):
            x, lp, prob, acc = self.step(x, lp, normal[t], exponential[t], step_size, parameters)
            xs[t], lps[t], probs[t], accepted[t] = x, lp, prob, acc
        return xs, lps, probs, accepted


class ScanRunner(DrawStore):
    """Blocks of steps by the step vectorized over the chains (`StepLoop`); NumPy draws the noise
    per block."""

    name = "scan"

    def __init__(self, sampler: Sampler, keep: tuple[str, ...], kernel: Kernel | None = None):
        self.sampler = sampler
        self.keep = keep
        self.kernel = kernel or Kernel("rmh")
        self.fn = sampler._step_function(self.kernel)

    def seed(self, noise_rng, recovery_rng, n_chains: int):
        self.noise_rng, self.recovery_rng = noise_rng, recovery_rng

    def record_layout(self):
        return draws_layout(self.sampler, self.keep)

    def run(
        self, positions, logdensities, step_size, scale, n_steps, thin, mode, offset=0, beta=1.0
    ):
        n_chains, dim = positions.shape
        eps, exp_draws = rmh.draw_noise(
            self.noise_rng, n_steps, n_chains, self.kernel.noise_length(dim)
        )
        parameters = kernel_parameters(scale, beta)
        xs, lps, probs, acc = self.fn(
            positions, logdensities, eps, exp_draws, step_size, parameters
        )
        kept = np.swapaxes(xs[thin - 1 :: thin], 0, 1)
        mean = kept.mean(axis=1)
        block = Block(
            positions=xs[-1],
            logdensities=lps[-1],
            acceptance_sum=probs.sum(axis=0),
            n_accepted=acc.sum(axis=0),
            n_zero_acceptance=(probs == 0.0).sum(axis=0),
            position_mean=mean,
            position_m2=((kept - mean[:, None]) ** 2).sum(axis=1),
        )
        if mode == "warmup":
            return block
        return self.record_after_loop(block, kept, lps[thin - 1 :: thin].T, mode, offset)


class ExactRunner(DrawStore):
    """For a model with no continuous latent left once its discrete variables are summed out
    (nothing for a kernel to move): every kept draw of every chain is an exact, independent draw
    of the discrete variables from their conditionals (`Sampler._constrain_and_recover`, outermost
    first, which given no continuous latent is their joint posterior)."""

    name = "exact"

    def __init__(self, sampler: Sampler, keep: tuple[str, ...]):
        self.sampler = sampler
        self.keep = keep
        self.kernel = Kernel("exact")

    def seed(self, noise_rng, recovery_rng, n_chains: int):
        self.recovery_rng = recovery_rng

    def record_layout(self):
        return draws_layout(self.sampler, self.keep)

    def run(
        self, positions, logdensities, step_size, scale, n_steps, thin, mode, offset=0, beta=1.0
    ):
        n_chains, dim = positions.shape
        n_kept = n_steps // thin
        block = Block(
            positions=positions,
            logdensities=logdensities,
            acceptance_sum=np.full(n_chains, float(n_steps)),
            n_accepted=np.full(n_chains, n_steps),
            n_zero_acceptance=np.zeros(n_chains, dtype=np.int64),
            position_mean=np.zeros((n_chains, dim)),
            position_m2=np.zeros((n_chains, dim)),
        )
        kept = np.zeros((n_chains, n_kept, dim))
        kept_logdensity = np.repeat(logdensities[:, None], n_kept, axis=1)
        return self.record_after_loop(block, kept, kept_logdensity, mode, offset)


class FusedRunner(DrawStore):
    """Blocks of steps by the fused C loop (`aemix.fused`); the noise is drawn inside the loop."""

    name = "fused"

    def __init__(
        self,
        sampler: Sampler,
        program: FusedProgram,
        keep: tuple[str, ...],
        kernel: Kernel | None = None,
    ):
        self.sampler = sampler
        self.program = program
        self.keep = keep
        self.kernel = kernel or Kernel("rmh")

    def seed(self, noise_rng, recovery_rng, n_chains: int):
        # Two generators per tile of chains (steps, records), so the draws do not depend on the
        # number of threads.
        n_tiles = tile_count(n_chains)
        steps = noise_rng.bit_generator.seed_seq.spawn(n_tiles)
        records = recovery_rng.bit_generator.seed_seq.spawn(n_tiles)
        self.bit_generators = tuple(
            np.random.PCG64(s) for pair in zip(steps, records) for s in pair
        )
        self.recovery_rng = recovery_rng

    def _records(self):
        """``(name, shape, is_float)`` of every record, in the order of the record's outputs."""
        s = self.sampler
        records = [(item.name, item.shape, True) for item in s._density.layout]
        for r, m in zip(s._recovery_graphs(), s._model.marginalizations):
            records.append((r.name, shape_of(m.discrete), r.support.dtype.kind == "f"))
        records += [(d.name, d.shape, d.graph.type.dtype == "float64") for d in s._derived]
        return [record for record in records if record[0] in self.keep]

    def record_layout(self):
        """``(name, shape, columns)`` in the moments' columns: the float records, then the others."""
        if self.program.record_note:
            return draws_layout(self.sampler, self.keep)
        layout, start = [], {True: 0, False: self.program.n_float}
        for name, shape, is_float in self._records():
            size = int(np.prod(shape, dtype=int))
            layout.append((name, shape, slice(start[is_float], start[is_float] + size)))
            start[is_float] += size
        return layout

    def _int_dtype(self) -> np.dtype:
        """The integer records' array's dtype: the widest of their stored dtypes (the loop casts
        each value to it), so that it is every discrete variable's own when no integer derived
        quantity (int64) is kept."""
        stored = stored_variables(self.sampler, self.keep)
        dtypes = [stored[name][1] for name, _, is_float in self._records() if not is_float]
        widest = np.result_type(*dtypes) if dtypes else np.dtype(np.int64)
        # (the loop writes signed integers only: a bool support goes through int64)
        return widest if widest.kind == "i" else np.dtype(np.int64)

    def allocate(self, n_chains: int, n_samples: int) -> None:
        p = self.program
        if p.record_note:
            super().allocate(n_chains, n_samples)
            return
        self.sink = (
            np.empty((n_chains, n_samples, p.n_float)),
            np.empty((n_chains, n_samples, p.n_int), dtype=self._int_dtype()),
            np.empty((n_chains, n_samples)),
        )

    def collect(self):
        if self.program.record_note:
            return super().collect()
        floats, ints, kept_logdensity = self.sink
        n_chains, n_samples = kept_logdensity.shape
        stored = stored_variables(self.sampler, self.keep)
        draws, columns = {}, {True: 0, False: 0}
        for name, shape, is_float in self._records():
            size = int(np.prod(shape, dtype=int))
            source = floats if is_float else ints
            piece = source[:, :, columns[is_float] : columns[is_float] + size]
            # A view when the record is the only one of its kind and dtype (the common case); else
            # a copy.
            piece = piece.astype(stored[name][1], copy=False)
            draws[name] = piece.reshape(n_chains, n_samples, *shape)
            columns[is_float] += size
        return draws, kept_logdensity

    def run(
        self, positions, logdensities, step_size, scale, n_steps, thin, mode, offset=0, beta=1.0
    ):
        fn = self.sampler._fused_function(self.keep, self.kernel)
        scale = kernel_parameters(scale, beta)
        if mode != "warmup" and self.program.record_note:
            # The loop keeps this block's positions; the record is computed from them, per block
            # (so that both modes draw the discrete variables from the same random stream).
            n_chains, n_kept = len(positions), n_steps // thin
            sink = (
                np.empty((n_chains, n_kept, self.program.n_float)),
                np.empty((n_chains, n_kept, 0), dtype=np.int64),
                np.empty((n_chains, n_kept)),
            )
            block = self._call(
                fn, positions, logdensities, step_size, scale, n_steps, thin, "draws", sink, 0
            )
            return self.record_after_loop(block, sink[0], sink[2], mode, offset)
        sink, offset = (self.sink, offset) if mode == "draws" else (None, 0)
        return self._call(
            fn, positions, logdensities, step_size, scale, n_steps, thin, mode, sink, offset
        )

    def _call(
        self, fn, positions, logdensities, step_size, scale, n_steps, thin, mode, sink, offset
    ) -> Block:
        outs = fn(
            self.bit_generators,
            positions,
            logdensities,
            step_size,
            scale,
            n_steps,
            thin,
            MODES[mode],
            sink,
            offset,
            self.n_threads,
            self.program.data,
        )
        return Block(*outs)


def kernel_parameters(scale: np.ndarray, beta: float) -> np.ndarray:
    """The compiled steps' flat parameter input: the proposal's scale, then the inverse
    temperature ``beta`` of the density the chains move at (1 when sampling)."""
    return np.append(np.asarray(scale, dtype=np.float64).ravel(), float(beta))


def stored_variables(sampler: Sampler, keep: tuple[str, ...]) -> dict[str, tuple]:
    """``name -> (shape, dtype)`` of one draw of every kept variable as the result stores it, in
    the model's order: the latents in float64, each discrete variable in the narrowest integer
    type that holds its support (`aemix.memory.smallest_integer_dtype`), the derived quantities
    in their own dtype (float64 or int64)."""
    s = sampler
    stored = s._compiled.get("stored_variables")
    if stored is None:
        stored = {item.name: (item.shape, np.dtype(np.float64)) for item in s._density.layout}
        for r, m in zip(s._recovery_graphs(), s._model.marginalizations):
            stored[r.name] = (shape_of(m.discrete), smallest_integer_dtype(r.support))
        stored.update((d.name, (d.shape, np.dtype(d.graph.type.dtype))) for d in s._derived)
        s._compiled["stored_variables"] = stored
    return {name: stored[name] for name in s._every if name in keep}


def draws_layout(sampler: Sampler, keep: tuple[str, ...]):
    """``(name, shape, columns)`` of the kept latents, marginalized variables and derived
    quantities, flattened."""
    layout, start = [], 0
    shapes = [(item.name, item.shape) for item in sampler._density.layout]
    shapes += [(m.discrete.name, shape_of(m.discrete)) for m in sampler._model.marginalizations]
    shapes += [(d.name, d.shape) for d in sampler._derived]
    for name, shape in shapes:
        if name not in keep:
            continue
        size = int(np.prod(shape, dtype=int))
        layout.append((name, shape, slice(start, start + size)))
        start += size
    return layout


def draws_moments(sampler: Sampler, draws: dict[str, np.ndarray], keep: tuple[str, ...]):
    """Per-chain mean and sum of squared deviations of ``draws``, in `draws_layout`'s columns."""
    n_chains, n_kept = next(iter(draws.values())).shape[:2]
    flat = np.concatenate(
        [draws[name].reshape(n_chains, n_kept, -1) for name, _, _ in draws_layout(sampler, keep)],
        axis=2,
    ).astype(float)
    moments = Moments()
    moments.add_draws(flat)
    return moments.mean, moments.m2


def shape_of(var: Variable) -> tuple[int, ...]:
    shape = var.type.shape
    if any(s is None for s in shape):
        shape = tuple(int(s) for s in aesara.function([], var.shape, mode="FAST_COMPILE")())
    return tuple(shape)


class Sampled(NamedTuple):
    """What `run_sampling` leaves: the chains' last state, their accepted steps and steps of
    acceptance probability 0, and the kept draws' running moments (empty unless
    ``summary_only``)."""

    positions: np.ndarray
    logdensities: np.ndarray
    accepted: np.ndarray
    zero_acceptance: np.ndarray
    moments: Moments


def run_sampling(runner, adapted, n_samples, thin, block_size, summary_only, on_block=None):
    """Run the kept steps after warm-up from ``adapted`` (`aemix.adaptation.WarmUp`) with its
    frozen kernel parameters: ``n_samples * thin`` steps in compiled calls of about
    ``block_size`` steps, each kept draw stored by ``runner`` (or merged into running moments
    with ``summary_only``); ``on_block(n_steps)`` after each call.

    Returns
    -------
    Sampled
    """
    positions, logdensities = adapted.positions, adapted.logdensities
    n_chains = len(positions)
    mode = "moments" if summary_only else "draws"
    accepted = np.zeros(n_chains)
    zero_acceptance = np.zeros(n_chains, dtype=np.int64)
    moments = Moments()
    if not summary_only:
        runner.allocate(n_chains, n_samples)
    done = 0
    per_block = max(1, block_size // thin)  # kept draws per compiled call
    while done < n_samples:
        n = min(per_block, n_samples - done)
        block = runner.run(
            positions,
            logdensities,
            adapted.step_size,
            adapted.scale,
            n * thin,
            thin,
            mode,
            offset=done,
        )
        positions, logdensities = block.positions, block.logdensities
        accepted += block.n_accepted
        zero_acceptance += block.n_zero_acceptance
        if summary_only:
            moments.merge(n, block.record_mean, block.record_m2)
        done += n
        if on_block is not None:
            on_block(n * thin)
    return Sampled(positions, logdensities, accepted, zero_acceptance, moments)
