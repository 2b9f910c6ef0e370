"""Warm-up adaptation of the random walk's proposal, from the chains' positions.

The step size follows the target acceptance (Robbins-Monro on its logarithm); the proposal's scale
is re-estimated at the end of growing windows of warm-up: per coordinate, or, from 2 to
`DENSE_MAX_DIM` coordinates, a full covariance (its Cholesky factor) from within-chain spreads and
correlations pooled across chains.  Data in, data out: nothing here runs a chain.
"""

from __future__ import annotations

import numpy as np

from aemix.results import Moments

__all__ = [
    "warm_up",
    "DENSE_MAX_DIM",
    "WINDOW_BOUNDS",
    "TUNING_BLOCK",
    "STEP_GAIN",
    "window_sd",
    "proposal_scale",
    "particle_factor",
]


# Largest dimension whose proposal follows a full covariance (see `Sampler.dense`).
DENSE_MAX_DIM = 20
# Fractions of the warm-up where the scale windows start and end.
WINDOW_BOUNDS = (0.15, 0.25, 0.45, 0.85)
# Steps between step-size updates during warm-up, and the gain of the log step size's update (at
# zero acceptance the step shrinks fourfold, at full acceptance it doubles, decaying as 1/sqrt(k)).
TUNING_BLOCK = 50
STEP_GAIN = 5.0


def window_sd(moments: Moments) -> np.ndarray:
    """Within-chain standard deviation of every coordinate over a window, pooled over chains.

    Not the spread of all chains' positions together: chains still on their way from their
    starting points would inflate it (tenfold on a regression), and a scale too wide stalls the
    walk while one too narrow is corrected by the step size.
    """
    return np.sqrt(moments.m2.sum(axis=0) / (moments.count * moments.m2.shape[0]))


def particle_factor(particles: np.ndarray) -> np.ndarray:
    """Cholesky factor of the particles' covariance (diagonal where it is not positive definite)."""
    from aemix.tempering import proposal_factor

    return proposal_factor(particles)


def proposal_scale(sd: np.ndarray, ends: list[np.ndarray], previous: np.ndarray) -> np.ndarray:
    """Flat Cholesky factor of the window's covariance: the coordinates' within-chain standard
    deviations ``sd`` (from every step) and their correlations, from the chains' positions at the
    end of each block (within chains), shrunk toward the correlations of the ``previous`` flat
    factor by the number of such positions (few chains give few)."""
    if len(ends) < 3:
        return np.diag(sd).ravel()
    stacked = np.stack(ends)  # (blocks, chains, dim)
    centered = stacked - stacked.mean(axis=0)
    n = stacked.shape[1] * (stacked.shape[0] - 1)
    cov = np.einsum("bci,bcj->ij", centered, centered) / n
    with np.errstate(all="ignore"):
        corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    if not np.all(np.isfinite(corr)):
        return np.diag(sd).ravel()
    dim = len(sd)
    factor = previous.reshape(dim, dim)
    prior_cov = factor @ factor.T
    prior_sd = np.sqrt(np.diag(prior_cov))
    prior_corr = prior_cov / np.outer(prior_sd, prior_sd)
    corr = (n * corr + 5.0 * prior_corr) / (n + 5.0)
    try:
        factor = np.linalg.cholesky(corr * np.outer(sd, sd))
    except np.linalg.LinAlgError:
        return np.diag(sd).ravel()
    return factor.ravel()


def warm_up(
    run_block,
    positions: np.ndarray,
    logdensities: np.ndarray,
    step_size: float,
    scale: np.ndarray,
    *,
    n_steps: int,
    target: float,
    tune: bool,
    dense: bool,
    block_size: int,
):
    """Run ``n_steps`` warm-up steps through ``run_block`` and adapt the proposal on the way.

    Robbins-Monro on the log step size toward ``target``; the scale (per coordinate, or the flat
    Cholesky factor when ``dense``) re-estimated at the end of each window of `WINDOW_BOUNDS`
    (the first 15% is the walk in from the starting points, whose spread would inflate the
    scales; the last 15% tunes the step size to the final scale).  Without ``tune`` the steps
    just run.

    Parameters
    ----------
    run_block
        ``run_block(positions, logdensities, step_size, scale, n) -> Block`` (`aemix.runners`).
    positions, logdensities
        The chains' state, ``(n_chains, dim)`` and ``(n_chains,)``.
    step_size, scale
        The starting kernel parameters.

    Returns
    -------
    tuple
        ``(positions, logdensities, step_size, scale)`` after warm-up.
    """
    n_chains, dim = positions.shape
    done, k = 0, 0
    bounds = sorted({int(f * n_steps) for f in WINDOW_BOUNDS})
    window = Moments()  # moments of the current window's positions, per chain
    ends: list[np.ndarray] = []  # the chains' positions at the end of each of its blocks
    while done < n_steps:
        if tune:
            following = min((b for b in bounds if b > done), default=n_steps)
            n = min(TUNING_BLOCK, n_steps - done, following - done)
        else:
            n = min(block_size, n_steps - done)
        start = done
        block = run_block(positions, logdensities, step_size, scale, n)
        positions, logdensities = block.positions, block.logdensities
        done += n
        if not tune:
            continue
        k += 1
        acceptance = block.acceptance_sum.sum() / (n * n_chains)
        step_size *= np.exp((acceptance - target) * STEP_GAIN / np.sqrt(k))
        if bounds[0] <= start and done <= bounds[-1]:
            window.merge(n, block.position_mean, block.position_m2)
            ends.append(positions.copy())
        if done in bounds[1:] and window.count > 1:
            sd = window_sd(window)
            if np.all(np.isfinite(sd)) and np.all(sd > 0):
                # Restart the step size's adaptation at the new scale.
                scale = proposal_scale(sd, ends, scale) if dense else sd
                step_size = 2.38 / np.sqrt(dim)
                k = 0
            window, ends = Moments(), []
    return positions, logdensities, step_size, scale
