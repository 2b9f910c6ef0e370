"""The Metropolis-adjusted Langevin (MALA) kernel, written for one chain.

Like `aemix.kernels.rmh`, an ``init``/``step`` pair whose step takes its random numbers as an argument
(`aemix.kernels.rmh.RWNoise`: a standard normal vector and a standard exponential), so that both loops
run it over chains as they run the random walk.  The proposal follows the gradient, preconditioned by
the random walk's adapted scale ``L`` (`aemix.kernels.metric`): with ``g`` the gradient at ``x``,

    x' = x + (h^2 / 2) L L^T g + h L e,       e ~ N(0, I),

a Langevin step in the whitened coordinates ``y = L^{-1} x``.  The proposal is not symmetric: the
move is accepted with probability ``min(1, p(x') q(x | x') / (p(x) q(x' | x)))``, where in whitened
coordinates ``log q(x' | x) = -|e|^2 / 2`` and ``log q(x | x') = -|e + (h / 2) L^T (g + g')|^2 / 2``
(up to the same constant; ``L`` is linear, so its Jacobian cancels).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import aesara.tensor as at
from aesara.graph.basic import Variable

from aemix.kernels.metric import times_factor, times_factor_transpose
from aemix.kernels.rmh import LowRankScale, RWNoise

__all__ = ["GradientState", "MALAInfo", "init", "step", "TARGET_ACCEPTANCE"]

# The optimal acceptance rate of MALA on Gaussian targets in many dimensions (Roberts and
# Rosenthal 1998).
TARGET_ACCEPTANCE = 0.574

LogDensityAndGradient = Callable[[Variable], tuple[Variable, Variable]]


class GradientState(NamedTuple):
    """State of one chain of a gradient kernel.

    Attributes
    ----------
    position
        Flat position in unconstrained space, shape ``(dim,)``.
    logdensity
        Log-density at ``position``.
    gradient
        Its gradient with respect to ``position``, shape ``(dim,)``.
    """

    position: Variable
    logdensity: Variable
    gradient: Variable


class MALAInfo(NamedTuple):
    """What happened in one step.

    Attributes
    ----------
    is_accepted
        Whether the proposal was accepted (then the new state is the proposal).
    acceptance_probability
        ``min(1, exp(log_ratio))`` with the proposal densities' ratio included; ``0`` for a
        non-finite proposal.
    proposal
        The proposed position, accepted or not.
    """

    is_accepted: Variable
    acceptance_probability: Variable
    proposal: Variable


def init(position: Variable, logdensity_and_gradient: LogDensityAndGradient) -> GradientState:
    """Initial state at ``position``."""
    return GradientState(position, *logdensity_and_gradient(position))


def step(
    noise: RWNoise,
    state: GradientState,
    logdensity_and_gradient: LogDensityAndGradient,
    step_size: Variable,
    scale: Variable | LowRankScale,
) -> tuple[GradientState, MALAInfo]:
    """One MALA step (see the module docstring).

    Parameters
    ----------
    noise
        This step's random numbers: ``normal`` ``(dim,)`` and ``exponential``.
    state
        The current state.
    logdensity_and_gradient
        Maps a position to its log-density and gradient (a graph builder).
    step_size
        The scalar ``h``.
    scale
        The preconditioner's factor ``L``: per coordinate ``(dim,)``, a ``(dim, dim)`` matrix or a
        `LowRankScale`.

    Returns
    -------
    (GradientState, MALAInfo)
        The accepted state (the proposal if accepted, else the current state) and the step's info.
    """
    e = noise.normal
    drift = 0.5 * step_size * times_factor_transpose(scale, state.gradient)
    # x' = x + h L (e + (h / 2) L^T g)
    proposal = state.position + step_size * times_factor(scale, e + drift)
    proposal_logdensity, proposal_gradient = logdensity_and_gradient(proposal)
    back = e + drift + 0.5 * step_size * times_factor_transpose(scale, proposal_gradient)
    log_ratio = proposal_logdensity - state.logdensity - 0.5 * (back**2).sum() + 0.5 * (e**2).sum()
    # NaN compares false: a proposal where the density or its gradient is undefined is rejected.
    is_accepted = at.gt(log_ratio, -noise.exponential)
    new_state = GradientState(
        at.switch(is_accepted, proposal, state.position),
        at.switch(is_accepted, proposal_logdensity, state.logdensity),
        at.switch(is_accepted, proposal_gradient, state.gradient),
    )
    acceptance_probability = at.switch(at.isnan(log_ratio), 0.0, at.exp(at.minimum(log_ratio, 0.0)))
    return new_state, MALAInfo(is_accepted, acceptance_probability, proposal)
