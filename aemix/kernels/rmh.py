"""The random-walk Rosenbluth-Metropolis-Hastings (RMH) kernel, written for one chain.

As in blackjax, the kernel is a pair ``init``/``step`` acting on one chain's state; chains come from
batching the step's graph (`aemix.vectorize`), never from hand-written chain axes.  Unlike blackjax's
``step(rng_key, state)``, ``step`` takes its random numbers as an `RWNoise` argument: an RMH step's
randomness (the proposal's normal increment and the acceptance draw) does not depend on the state, so
the sampler draws it for a whole block of steps at once, outside the compiled loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import aesara.tensor as at
import numpy as np
from aesara.graph.basic import Variable

__all__ = ["RWState", "RWInfo", "RWNoise", "LowRankScale", "init", "step", "draw_noise"]


class RWState(NamedTuple):
    """State of one chain.

    Attributes
    ----------
    position
        Flat position in unconstrained space, shape ``(dim,)``.
    logdensity
        Log-density (unconstrained, Jacobian included) at ``position``.
    """

    position: Variable
    logdensity: Variable


class RWInfo(NamedTuple):
    """What happened in one step.

    Attributes
    ----------
    is_accepted
        Whether the proposal was accepted (then the new state is the proposal).
    acceptance_probability
        ``min(1, exp(logdensity(proposal) - logdensity(position)))``; ``0`` for a non-finite proposal.
    proposal
        The proposed position, accepted or not.
    """

    is_accepted: Variable
    acceptance_probability: Variable
    proposal: Variable


class RWNoise(NamedTuple):
    """The random numbers one step uses.

    Attributes
    ----------
    normal
        Standard normal increment, shape ``(dim,)``.
    exponential
        A standard exponential draw ``E``; the move is accepted when ``-E < log_ratio``, which is
        ``log U < log_ratio`` for ``U = exp(-E)`` uniform, without computing a logarithm.
    """

    normal: Variable
    exponential: Variable


class LowRankScale(NamedTuple):
    """A proposal scale of per-coordinate scales corrected along a few directions: the increment
    is ``sd * (e + vectors @ (gains * (vectors.T @ e)))`` for ``e`` standard normal, whose
    covariance is ``diag(sd) (I + V ((1 + gains) ** 2 - 1) V^T) diag(sd)`` for orthonormal
    ``vectors`` ``V``; ``2 * dim * rank`` products per step instead of a full factor's ``dim ** 2``.

    Attributes
    ----------
    sd
        Per-coordinate scales, ``(dim,)``.
    vectors
        Orthonormal directions, ``(dim, rank)`` (zero columns are unused).
    gains
        How much the increment stretches (above 0) or shrinks (down to -1) along each, ``(rank,)``.
    """

    sd: Variable
    vectors: Variable
    gains: Variable


def init(position: Variable, logdensity_fn: Callable[[Variable], Variable]) -> RWState:
    """Initial state at ``position``."""
    return RWState(position, logdensity_fn(position))


def step(
    noise: RWNoise,
    state: RWState,
    logdensity_fn: Callable[[Variable], Variable],
    step_size: Variable,
    scale: Variable | LowRankScale,
) -> tuple[RWState, RWInfo]:
    """One RMH step with proposal ``position + step_size * scale * noise.normal`` (or
    ``position + step_size * scale @ noise.normal`` when ``scale`` is a matrix, or the increment
    of a `LowRankScale`).

    Parameters
    ----------
    noise
        This step's random numbers.
    state
        The current state.
    logdensity_fn
        Maps a position to its log-density (a graph builder).
    step_size
        Scalar proposal scale.
    scale
        Per-coordinate proposal scale, shape ``(dim,)`` (ones for an isotropic walk), or a
        ``(dim, dim)`` factor ``L`` of the proposal covariance ``L L^T`` (e.g. the Cholesky factor
        of the posterior covariance), which follows correlated posteriors.

    Returns
    -------
    (RWState, RWInfo)
        The accepted state (the proposal if accepted, else the current state) and the step's info.
    """
    if isinstance(scale, LowRankScale):
        along = (scale.vectors * noise.normal[:, None]).sum(axis=0) * scale.gains
        move = scale.sd * (noise.normal + (scale.vectors * along[None, :]).sum(axis=-1))
    elif scale.ndim == 2:
        # L @ noise as a product and a sum, which both loops batch and lower like any other.
        move = (scale * noise.normal[None, :]).sum(axis=-1)
    else:
        move = scale * noise.normal
    proposal = state.position + step_size * move
    proposal_logdensity = logdensity_fn(proposal)
    log_ratio = proposal_logdensity - state.logdensity
    # NaN compares false: a proposal where the density is undefined is rejected.
    is_accepted = at.gt(log_ratio, -noise.exponential)
    new_state = RWState(
        at.switch(is_accepted, proposal, state.position),
        at.switch(is_accepted, proposal_logdensity, state.logdensity),
    )
    acceptance_probability = at.switch(at.isnan(log_ratio), 0.0, at.exp(at.minimum(log_ratio, 0.0)))
    return new_state, RWInfo(is_accepted, acceptance_probability, proposal)


def draw_noise(rng: np.random.Generator, n_steps: int, n_chains: int, dim: int) -> tuple:
    """Draw the noise of ``n_steps`` steps of ``n_chains`` chains: arrays with leading step axis."""
    normal = rng.standard_normal((n_steps, n_chains, dim))
    exponential = rng.standard_exponential((n_steps, n_chains))
    return normal, exponential
