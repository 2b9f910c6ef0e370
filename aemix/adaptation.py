"""Warm-up adaptation of the random walk's proposal, from the chains' positions.

The step size follows the target acceptance (Robbins-Monro on its logarithm); the proposal's scale
is re-estimated at the end of growing windows of warm-up: per coordinate, or, from 2 to
`DENSE_MAX_DIM` coordinates, a full covariance (its Cholesky factor) from within-chain spreads and
correlations pooled across chains.  Data in, data out: nothing here runs a chain.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from aemix.results import Moments

__all__ = [
    "warm_up",
    "DENSE_MAX_DIM",
    "WarmUp",
    "window_schedule",
    "proposal_inefficiency",
    "window_rhat",
    "FIRST_WINDOW",
    "FINAL_STEPS",
    "TUNING_BLOCK",
    "STEP_GAIN",
    "window_sd",
    "proposal_scale",
    "particle_factor",
]


# Largest dimension whose proposal follows a full covariance (see `Sampler.dense`).
DENSE_MAX_DIM = 20
# The first scale window's length (and the walk-in's, at most 10% of the warm-up), and the most
# steps of the last phase, which tunes only the step size (at most 15% of the warm-up).
FIRST_WINDOW = 100
FINAL_STEPS = 150
# When the warm-up stops early (see `warm_up`): the largest sub-optimality of the previous window's
# proposal against the new estimate (`proposal_inefficiency`: 1.1 is 10% more steps per independent
# draw), the largest R-hat of a window's positions over the chains, and the largest distance of the
# acceptance from its target.
SETTLED_INEFFICIENCY = 1.1
SETTLED_RHAT = 1.1
SETTLED_ACCEPTANCE = 0.1
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


def window_schedule(n_steps: int) -> tuple[list[tuple[int, int]], int]:
    """The scale windows of a warm-up of at most ``n_steps`` steps, and the length of its last
    phase, which tunes only the step size.

    A walk-in of ``base = min(FIRST_WINDOW, n_steps // 10)`` steps, then windows of ``base``,
    ``2 base``, ``4 base``... steps (Stan's doubling windows), the last one stretched to end where
    the step-size phase of ``min(FINAL_STEPS, 15%)`` steps begins.  For 1000 steps: walk-in
    0-100, windows 100-200, 200-400 and 400-850, then 850-1000.
    """
    base = max(1, min(FIRST_WINDOW, n_steps // 10))
    final = max(1, min(FINAL_STEPS, int(0.15 * n_steps)))
    last = n_steps - final
    windows, start, length = [], base, base
    while start + length <= last:
        end = start + length
        if end + 2 * length > last:  # the next window would not fit: this one takes the rest
            end = last
        windows.append((start, end))
        start, length = end, 2 * length
    return windows, final


def as_factor(scale: np.ndarray, dim: int) -> np.ndarray:
    """The proposal's ``(dim, dim)`` factor ``L`` (covariance ``L L^T``) from its flat form."""
    scale = np.asarray(scale, dtype=float)
    return np.diag(scale) if scale.size == dim else scale.reshape(dim, dim)


def proposal_inefficiency(previous: np.ndarray, new: np.ndarray, dim: int) -> float:
    """How much better the ``new`` proposal covariance would be than the ``previous`` one if the
    new one is the target's: Roberts and Rosenthal's (2001) sub-optimality factor
    ``b = mean(s**2) / mean(s)**2 >= 1`` of a random walk whose proposal is off the target's
    covariance by the singular values ``s`` of ``L_previous^-1 L_new``.  The walk with the
    previous proposal needs ``b`` times as many steps per independent draw; ``b = 1`` when the two
    are proportional (the step size takes care of a common factor)."""
    try:
        relative = np.linalg.solve(as_factor(previous, dim), as_factor(new, dim))
        singular = np.linalg.svd(relative, compute_uv=False)
    except np.linalg.LinAlgError:
        return np.inf
    if not np.all(np.isfinite(singular)) or singular.mean() == 0:
        return np.inf
    return float(np.mean(singular**2) / np.mean(singular) ** 2)


def window_rhat(moments: Moments) -> float:
    """The largest (non-split) R-hat over coordinates of a window's positions: whether the chains
    explore the same region (NaN with one chain)."""
    n_chains, count = moments.mean.shape[0], moments.count
    if n_chains < 2 or count < 2:
        return float("nan")
    within = moments.m2.sum(axis=0) / (n_chains * (count - 1))
    between = moments.mean.var(axis=0, ddof=1)  # B / n
    with np.errstate(all="ignore"):
        rhat = np.sqrt(((count - 1) / count * within + between) / within)
    return float(np.max(rhat))


class WarmUp(NamedTuple):
    """The state a warm-up hands to the sampling: the chains' state, the tuned kernel parameters,
    and how it went.

    Attributes
    ----------
    steps
        Warm-up steps run (``n_steps`` unless the proposal settled earlier, see `warm_up`).
    windows
        For each scale window: ``(end step, inefficiency of the previous estimate against it, window
        R-hat, acceptance of its last block)``.
    """

    positions: np.ndarray
    logdensities: np.ndarray
    step_size: float
    scale: np.ndarray
    steps: int
    windows: list[tuple[int, float, float, float]]


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
) -> WarmUp:
    """Run at most ``n_steps`` warm-up steps through ``run_block`` and adapt the proposal on the way.

    Robbins-Monro on the log step size toward ``target``; the scale (per coordinate, or the flat
    Cholesky factor when ``dense``) re-estimated at the end of each window of `window_schedule`
    (the walk-in before the first window is not used: the starting points' spread would inflate
    the scales; the last phase tunes the step size to the final scale).

    The warm-up length adapts, with ``n_steps`` as its cap: after the second window or later, it
    skips to the last phase once the proposal has settled, that is when all three hold:

    - the previous window's proposal is within `SETTLED_INEFFICIENCY` of the new estimate's
      efficiency (`proposal_inefficiency`): another window would gain little,
    - the chains agree on the window: its R-hat over chains is below `SETTLED_RHAT` (chains in
      different modes never settle, and use the whole cap),
    - the acceptance of the window's last block is within `SETTLED_ACCEPTANCE` of ``target``.

    Without ``tune`` the steps just run, all of them.

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
    WarmUp
    """
    n_chains, dim = positions.shape
    done, k = 0, 0
    windows, final = window_schedule(n_steps)
    bounds = sorted({b for window in windows for b in window} | {n_steps})
    first, last = (windows[0][0], windows[-1][1]) if windows else (n_steps, n_steps)
    window = Moments()  # moments of the current window's positions, per chain
    ends: list[np.ndarray] = []  # the chains' positions at the end of each of its blocks
    history: list[tuple[int, float, float, float]] = []
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
        if first <= start and done <= last:
            window.merge(n, block.position_mean, block.position_m2)
            ends.append(positions.copy())
        if any(done == end for _, end in windows) and window.count > 1:
            sd = window_sd(window)
            if np.all(np.isfinite(sd)) and np.all(sd > 0):
                new_scale = proposal_scale(sd, ends, scale) if dense else sd
                change = proposal_inefficiency(scale, new_scale, dim)
                rhat = window_rhat(window)
                history.append((done, change, rhat, float(acceptance)))
                settled = (
                    len(history) >= 2
                    and change < SETTLED_INEFFICIENCY
                    and rhat < SETTLED_RHAT
                    and abs(acceptance - target) < SETTLED_ACCEPTANCE
                )
                # Restart the step size's adaptation at the new scale.
                scale, step_size, k = new_scale, 2.38 / np.sqrt(dim), 0
                if settled and done < last:
                    n_steps, last = done + final, done
                    bounds = [b for b in bounds if b <= done] + [n_steps]
            window, ends = Moments(), []
    return WarmUp(positions, logdensities, step_size, scale, done, history)
