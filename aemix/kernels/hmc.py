"""Hamiltonian Monte Carlo (HMC) with a jittered trajectory length, written for one chain.

Like `aemix.kernels.rmh`, an ``init``/``step`` pair whose step takes its random numbers as an argument
(`HMCNoise`), so that both loops run it over chains as they run the random walk.  The trajectory is
``n_steps`` leapfrog steps (a fixed count: the step's graph is unrolled, so that the fused loop runs
every chain through the same work) in the whitened coordinates ``y = L^{-1} x`` of the random walk's
adapted scale ``L`` (`aemix.kernels.metric`), i.e. with the mass matrix ``(L L^T)^{-1}``, the inverse
of the cross-chain covariance:

    p <- p + (h / 2) L^T grad(x);   x <- x + h L p;   p <- p + (h / 2) L^T grad(x),

from a momentum ``p`` that is the step's standard normal vector.  The step size is jittered per
chain and step, uniformly in ``[h / 2, 3 h / 2]`` (from a uniform made of one more standard normal
draw), so that the trajectory length ``n_steps * h`` varies and no periodic orbit of the target locks
a chain: a random step size drawn independently of the state keeps each trajectory reversible
and volume-preserving, so the mixture of kernels leaves the target invariant.  The end of the
trajectory is accepted with probability ``min(1, exp(-H(x', p') + H(x, p)))``,
``H = -log p(x) + |p|^2 / 2``.

A trajectory whose energy error ``H(end) - H(start)`` exceeds `DIVERGENCE` (Stan's and PyMC's
threshold), or is not a number, *diverged*: the leapfrog integrator left the level set it should
follow, typically at a curvature the step size cannot resolve (the neck of a funnel), and the
chains under-sample that region.  Its acceptance probability is reported as exactly ``0``, and
that of every other trajectory as at least `SMALLEST_ACCEPTANCE`, so that the loops, which carry
the acceptance probability only, count the divergences as the steps of acceptance ``0``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import aesara.tensor as at
import numpy as np
from aesara.graph.basic import Variable

from aemix.kernels.mala import GradientState
from aemix.kernels.metric import times_factor, times_factor_transpose
from aemix.kernels.rmh import LowRankScale

__all__ = [
    "HMCNoise",
    "HMCInfo",
    "init",
    "step",
    "default_n_steps",
    "TARGET_ACCEPTANCE",
    "JITTER",
    "DIVERGENCE",
    "SMALLEST_ACCEPTANCE",
]

# The acceptance the step size is tuned to (the warm-up's cross-chain mean).
TARGET_ACCEPTANCE = 0.8
# The step size is drawn uniformly in [h (1 - JITTER), h (1 + JITTER)].
JITTER = 0.5
# Energy error above which a trajectory diverged.
DIVERGENCE = 1000.0
# The reported acceptance probability of a trajectory that did not diverge is at least this (its
# energy error may be up to DIVERGENCE, where exp(-error) underflows to 0).
SMALLEST_ACCEPTANCE = 1e-300

LogDensityAndGradient = Callable[[Variable], tuple[Variable, Variable]]


class HMCNoise(NamedTuple):
    """The random numbers one step uses.

    Attributes
    ----------
    normal
        The momentum, standard normal, shape ``(dim,)``.
    exponential
        A standard exponential draw ``E``: the trajectory's end is accepted when ``-E < log_ratio``.
    jitter
        A standard normal draw, mapped to the uniform that jitters the step size.
    """

    normal: Variable
    exponential: Variable
    jitter: Variable


class HMCInfo(NamedTuple):
    """What happened in one step.

    Attributes
    ----------
    is_accepted
        Whether the trajectory's end was accepted (then the new state is that end).
    acceptance_probability
        ``min(1, exp(H(start) - H(end)))``, at least `SMALLEST_ACCEPTANCE`; exactly ``0`` for a
        divergent trajectory.
    proposal
        The trajectory's end, accepted or not.
    is_divergent
        Whether the trajectory diverged (energy error above `DIVERGENCE`, or not a number).
    """

    is_accepted: Variable
    acceptance_probability: Variable
    proposal: Variable
    is_divergent: Variable


def default_n_steps(dim: int) -> int:
    """Leapfrog steps per trajectory: ``ceil(pi dim^(1/4) / 1.5)``, at least 2.

    A fixed heuristic in place of a trajectory-length adaptation (ChEES): in whitened coordinates
    a tuned step size at acceptance 0.8 is about ``1.5 dim^(-1/4)`` on Gaussian targets, and a
    trajectory of length about ``pi`` (half a period of a unit-variance Gaussian) moves a chain
    to the antipode of its starting point, the most independent next draw; the jitter spreads the
    length over ``[pi / 2, 3 pi / 2]``.
    """
    return max(2, int(np.ceil(np.pi * dim**0.25 / 1.5)))


def init(position: Variable, logdensity_and_gradient: LogDensityAndGradient) -> GradientState:
    """Initial state at ``position``."""
    return GradientState(position, *logdensity_and_gradient(position))


def step(
    noise: HMCNoise,
    state: GradientState,
    logdensity_and_gradient: LogDensityAndGradient,
    step_size: Variable,
    scale: Variable | LowRankScale,
    n_steps: int,
    inner_loop: bool = False,
) -> tuple[GradientState, HMCInfo]:
    """One HMC trajectory of ``n_steps`` leapfrog steps (see the module docstring).

    Parameters
    ----------
    noise
        This step's random numbers.
    state
        The current state.
    logdensity_and_gradient
        Maps a position to its log-density and gradient (a graph builder).
    step_size
        The leapfrog step ``h`` (before the jitter).
    scale
        The factor ``L`` of the inverse mass matrix: per coordinate ``(dim,)``, a ``(dim, dim)``
        matrix or a `LowRankScale`.
    n_steps
        Leapfrog steps per trajectory.
    inner_loop
        Run the leapfrog steps as an ``aesara.scan`` over one copy of the log-density and its
        gradient, not unrolled into ``n_steps`` copies: the scan loop's choice (its graph compiles
        in the time of one copy; `aemix.vectorize` batches such a loop over chains), where the
        fused C loop, which cannot lower a scan, unrolls.

    Returns
    -------
    (GradientState, HMCInfo)
        The accepted state (the trajectory's end if accepted, else the current state) and the
        step's info.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be at least 1, got {n_steps}")
    uniform = 0.5 * at.erfc(-noise.jitter / np.sqrt(2.0))
    h = step_size * (1.0 + JITTER * (2.0 * uniform - 1.0))
    momentum = noise.normal
    position, logdensity, gradient = state
    p = momentum + 0.5 * h * times_factor_transpose(scale, gradient)
    if inner_loop:
        position, p, logdensity, gradient = _leapfrog_loop(
            position, p, logdensity, gradient, h, scale, logdensity_and_gradient, n_steps
        )
    else:
        for k in range(n_steps):
            position = position + h * times_factor(scale, p)
            logdensity, gradient = logdensity_and_gradient(position)
            kick = h if k < n_steps - 1 else 0.5 * h
            p = p + kick * times_factor_transpose(scale, gradient)
    log_ratio = logdensity - state.logdensity - 0.5 * (p**2).sum() + 0.5 * (momentum**2).sum()
    # NaN compares false: a trajectory that left the density's domain is rejected.
    is_accepted = at.gt(log_ratio, -noise.exponential)
    new_state = GradientState(
        at.switch(is_accepted, position, state.position),
        at.switch(is_accepted, logdensity, state.logdensity),
        at.switch(is_accepted, gradient, state.gradient),
    )
    # (written so that NaN is divergent: every comparison with it is false)
    is_divergent = at.invert(at.ge(log_ratio, -DIVERGENCE))
    acceptance_probability = at.switch(
        is_divergent,
        0.0,
        at.maximum(at.exp(at.minimum(log_ratio, 0.0)), SMALLEST_ACCEPTANCE),
    )
    return new_state, HMCInfo(is_accepted, acceptance_probability, position, is_divergent)


def _leapfrog_loop(position, p, logdensity, gradient, h, scale, logdensity_and_gradient, n_steps):
    """``n_steps`` leapfrog steps with full momentum kicks, as one ``aesara.scan``; the last kick
    is then halved (``p - (h / 2) L^T grad``), which is the unrolled trajectory's end exactly."""
    import aesara

    def leapfrog(x, p_, lp, g):
        x = x + h * times_factor(scale, p_)
        lp, g = logdensity_and_gradient(x)
        return x, p_ + h * times_factor_transpose(scale, g), lp, g

    (xs, ps, lps, gs), _ = aesara.scan(
        leapfrog, outputs_info=[position, p, logdensity, gradient], n_steps=n_steps
    )
    gradient = gs[-1]
    return xs[-1], ps[-1] - 0.5 * h * times_factor_transpose(scale, gradient), lps[-1], gradient
