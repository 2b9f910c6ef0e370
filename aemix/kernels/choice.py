"""Which kernel moves the chains: the random walk (`aemix.kernels.rmh`), MALA (`aemix.kernels.mala`)
or HMC (`aemix.kernels.hmc`), and what the warm-up and the loops need to know about it.

`kernel_step` builds one chain's step of any of them from the same inputs (the step's standard
normal draws, its exponential draw, the step size and the preconditioner), so that the loops run
every kernel the same way; only the number of normal draws per step differs (HMC draws one more,
for the jitter of its step size).  `choose_kernel` resolves ``kernel="auto"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from aesara.graph.basic import Variable

from aemix.adaptation import STEP_GAIN, default_target_acceptance
from aemix.kernels import hmc, mala, rmh

__all__ = ["Kernel", "KERNELS", "AUTO_HMC_DIM", "kernel_step", "choose_kernel"]

KERNELS = ("rmh", "mala", "hmc")


@dataclass(frozen=True)
class Kernel:
    """A kernel and its fixed settings.

    Attributes
    ----------
    name
        ``"rmh"``, ``"mala"`` or ``"hmc"``.
    n_leapfrog
        HMC's leapfrog steps per trajectory (`aemix.kernels.hmc.default_n_steps`); 0 otherwise.
    """

    name: str
    n_leapfrog: int = 0

    @classmethod
    def named(cls, name: str, dim: int) -> Kernel:
        if name not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS} or 'auto', got {name!r}")
        return cls(name, hmc.default_n_steps(dim) if name == "hmc" else 0)

    @property
    def uses_gradient(self) -> bool:
        return self.name != "rmh"

    def noise_length(self, dim: int) -> int:
        """Standard normal draws per step."""
        return dim + 1 if self.name == "hmc" else dim

    def target_acceptance(self, dim: int) -> float:
        """The cross-chain mean acceptance the warm-up tunes the step size to."""
        if self.name == "mala":
            return mala.TARGET_ACCEPTANCE
        if self.name == "hmc":
            return hmc.TARGET_ACCEPTANCE
        return default_target_acceptance(dim)

    def initial_step_size(self, dim: int) -> float:
        """The step size the warm-up starts from (and restarts from at each new scale): the
        optimal scalings on Gaussian targets in the whitened coordinates, ``2.38 / sqrt(dim)``
        for the random walk, ``1.65 dim^(-1/3)`` for MALA, ``1.5 dim^(-1/4)`` for HMC."""
        if self.name == "mala":
            return 1.65 * dim ** (-1 / 3)
        if self.name == "hmc":
            return 1.5 * dim**-0.25
        return 2.38 / np.sqrt(dim)

    @property
    def step_gain(self) -> float:
        """The warm-up's gain on the log step size (`aemix.adaptation.warm_up`): the random
        walk's acceptance changes smoothly with its step, a gradient kernel's falls off a cliff
        beyond its best step (an update with the random walk's gain overshoots it)."""
        return STEP_GAIN if self.name == "rmh" else 1.0

    def gradient_evaluations(self) -> int:
        """Log-density and gradient evaluations per step (the loops carry the position and its
        log-density only, so a gradient kernel evaluates the gradient at the current position
        again at each step)."""
        return {"rmh": 0, "mala": 2, "hmc": self.n_leapfrog + 1}[self.name]

    def describe(self) -> str:
        if self.name == "hmc":
            return (
                f"hmc ({self.n_leapfrog} leapfrog steps per trajectory, step size jittered "
                f"uniformly by +-{hmc.JITTER:.0%})"
            )
        return {"rmh": "rmh (random walk)", "mala": "mala (Metropolis-adjusted Langevin)"}[
            self.name
        ]


def kernel_step(
    kernel: Kernel,
    normal: Variable,
    exponential: Variable,
    position: Variable,
    logdensity: Variable,
    logdensity_fn: Callable[[Variable], Variable],
    logdensity_and_gradient: Callable[[Variable], tuple[Variable, Variable]] | None,
    gradient: Variable | None,
    step_size: Variable,
    scale,
    dim: int,
    inner_loop: bool = False,
):
    """One chain's step of ``kernel``: ``(new_position, new_logdensity, info)``.

    ``gradient`` is the gradient at ``position`` (a graph; the gradient kernels only), and
    ``normal`` has `Kernel.noise_length` ``(dim)`` entries.  ``inner_loop``: HMC's leapfrog steps
    as a loop, not unrolled (`aemix.kernels.hmc.step`).
    """
    if kernel.name == "rmh":
        state, info = rmh.step(
            rmh.RWNoise(normal, exponential),
            rmh.RWState(position, logdensity),
            logdensity_fn,
            step_size,
            scale,
        )
        return state.position, state.logdensity, info
    state = mala.GradientState(position, logdensity, gradient)
    if kernel.name == "mala":
        new, info = mala.step(
            rmh.RWNoise(normal, exponential), state, logdensity_and_gradient, step_size, scale
        )
    else:
        noise = hmc.HMCNoise(normal[:dim], exponential, normal[dim])
        new, info = hmc.step(
            noise,
            state,
            logdensity_and_gradient,
            step_size,
            scale,
            kernel.n_leapfrog,
            inner_loop=inner_loop,
        )
    return new.position, new.logdensity, info


#: From this many unconstrained coordinates on, ``kernel="auto"`` takes HMC (when the log-density
#: has a gradient).  Measured by ``benchmarks/kernels.py`` (32 chains, 1000 draws, one run with
#: its compilation): on the 30-predictor regression HMC's minimum ESS per second of the whole
#: first call was 1.7 times the random walk's (36822 in 52 s against 5135 in 12 s), on the
#: 10-coordinate eight schools 0.5 times (12667 in 31 s against 7126 in 9 s; compiled, HMC
#: was 3 times faster): below this, the random walk's cheaper compile wins a run.
AUTO_HMC_DIM = 20


def choose_kernel(
    requested: str, dim: int, gradient_problem: Callable[[], str | None] | None = None
) -> tuple[Kernel, str]:
    """The kernel ``kernel=requested`` runs, and why.

    ``"auto"``: the random walk below `AUTO_HMC_DIM` unconstrained coordinates, HMC from there on
    unless ``gradient_problem()`` (called only then) says why the log-density has no gradient.
    A random walk needs about ``dim`` steps per independent draw, HMC about ``dim^(1/4)``
    trajectories, each a few gradient evaluations; the seed's mixture (one coordinate, a cheap
    density) keeps the random walk.
    """
    if requested != "auto":
        return Kernel.named(requested, dim), "asked for"
    if dim < AUTO_HMC_DIM:
        return Kernel.named("rmh", dim), (
            f"auto: {dim} coordinate(s), under {AUTO_HMC_DIM}: the random walk compiles faster"
        )
    problem = gradient_problem() if gradient_problem is not None else None
    if problem is not None:
        return Kernel.named("rmh", dim), (
            f"auto: {dim} unconstrained coordinates, but the log-density has no gradient "
            f"({problem})"
        )
    return Kernel.named("hmc", dim), (
        f"auto: {dim} unconstrained coordinates, at least {AUTO_HMC_DIM} (a random walk needs "
        "about dim steps per independent draw, HMC about dim^(1/4) trajectories)"
    )
