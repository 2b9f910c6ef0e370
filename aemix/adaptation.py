"""Warm-up adaptation of the random walk's proposal, from the chains' positions.

The step size follows the target acceptance (Robbins-Monro on its logarithm); the proposal's scale
is re-estimated at the end of growing windows of warm-up from within-chain spreads and
correlations pooled across chains.  Its form depends on the dimension (`proposal_form`): one
coordinate has a scale; from 2 to `DENSE_MAX_DIM` coordinates, a full covariance (its Cholesky
factor, ``dim ** 2`` products per step); above, per-coordinate scales corrected along the
`LOW_RANK` directions where the correlations stand out of their noise (``2 * dim * LOW_RANK``
products per step).  Data in, data out: nothing here runs a chain.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from aemix.results import Moments

__all__ = [
    "warm_up",
    "DENSE_MAX_DIM",
    "WarmUp",
    "default_target_acceptance",
    "window_schedule",
    "proposal_inefficiency",
    "window_rhat",
    "FIRST_WINDOW",
    "FINAL_STEPS",
    "TUNING_BLOCK",
    "STEP_GAIN",
    "window_sd",
    "proposal_scale",
    "LOW_RANK",
    "proposal_form",
    "scale_length",
    "identity_scale",
    "as_factor",
    "split_low_rank",
    "low_rank_scale",
    "scale_from_covariance",
]


# Largest dimension whose proposal follows a full covariance (see `proposal_form`).
DENSE_MAX_DIM = 20
# Directions of the low-rank correction of the per-coordinate scales above `DENSE_MAX_DIM`.
LOW_RANK = 8
# The most the spread between chains adds to the within-chain covariance along any direction, in
# its units (see `with_between_chains`).
BETWEEN_CAP = 2.0
# How far beyond the Marchenko-Pastur edges an eigenvalue of the correlations must lie to count.
BULK_MARGIN = 1.25
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
    starting points would inflate it (tenfold on a regression), and chains in different modes
    (a mixture's relabellings, which the tempered start populates in proportion) would stretch
    it across the modes; a scale too wide stalls the walk while one too narrow is corrected by the
    step size.
    """
    return np.sqrt(moments.m2.sum(axis=0) / (moments.count * moments.m2.shape[0]))


def proposal_form(dim: int) -> str:
    """``"diagonal"`` (one coordinate), ``"dense"`` (2 to `DENSE_MAX_DIM`) or ``"low-rank"``."""
    if dim == 1:
        return "diagonal"
    return "dense" if dim <= DENSE_MAX_DIM else "low-rank"


def scale_length(dim: int) -> int:
    """Length of the flat scale of `proposal_form` ``(dim)``: ``dim``, ``dim ** 2``, or
    ``dim * (1 + LOW_RANK) + LOW_RANK`` (see `low_rank_scale`)."""
    form = proposal_form(dim)
    if form == "diagonal":
        return dim
    return dim * dim if form == "dense" else dim * (1 + LOW_RANK) + LOW_RANK


def split_low_rank(scale, dim: int):
    """``(sd, vectors, gains)`` of a flat low-rank scale: the proposal's increment is
    ``sd * (e + vectors @ (gains * (vectors.T @ e)))`` for a standard normal ``e``; works on arrays
    and on graphs."""
    r = LOW_RANK
    return scale[:dim], scale[dim : dim + dim * r].reshape((dim, r)), scale[dim + dim * r :]


def identity_scale(dim: int) -> np.ndarray:
    """The flat scale of an isotropic proposal of unit scale."""
    form = proposal_form(dim)
    if form == "dense":
        return np.eye(dim).ravel()
    return np.concatenate([np.ones(dim), np.zeros(scale_length(dim) - dim)])


def as_factor(scale: np.ndarray, dim: int) -> np.ndarray:
    """The proposal's ``(dim, dim)`` factor ``L`` (covariance ``L L^T``) from its flat form."""
    scale = np.asarray(scale, dtype=float)
    form = proposal_form(dim)
    if form == "diagonal":
        return np.diag(scale)
    if form == "dense":
        return scale.reshape(dim, dim)
    sd, vectors, gains = split_low_rank(scale, dim)
    return sd[:, None] * (np.eye(dim) + (vectors * gains) @ vectors.T)


def low_rank_scale(sd: np.ndarray, corr: np.ndarray, n_points: int) -> np.ndarray:
    """Flat low-rank scale of the covariance ``diag(sd) corr diag(sd)``, with ``corr`` estimated
    from ``n_points`` positions.

    The eigenvalues of ``corr`` are read as a bulk at the level ``c`` of their median, as for
    coordinates that correlate only by noise, plus spikes: the `LOW_RANK` eigenvalues ``l``
    farthest (in log) from ``c`` among those outside the Marchenko-Pastur bulk ``c [(1 -
    sqrt(q)) ** 2, (1 + sqrt(q)) ** 2]``, ``q = dim / n_points``, widened by `BULK_MARGIN`, where a
    sample correlation of uncorrelated coordinates puts its eigenvalues.  So only correlations
    that stand out of the noise bend the proposal, and a posterior whose coordinates all follow
    one direction (small bulk, one large spike) is followed too.  The increment
    ``sqrt(c) sd * (e + V ((sqrt(l / c) - 1) * (V^T e)))`` then has covariance ``diag(sd) (c I +
    V (l - c) V^T) diag(sd)`` (``V`` orthonormal eigenvectors).
    """
    dim = len(sd)
    vectors = np.zeros((dim, LOW_RANK))
    gains = np.zeros(LOW_RANK)
    level = 1.0
    if np.all(np.isfinite(corr)):
        values, eigenvectors = np.linalg.eigh((corr + corr.T) / 2)
        values = np.clip(values, 1e-8 * max(values.max(), 1e-300), None)
        level = float(np.median(values))
        q = dim / max(n_points, 1)
        low = (max(0.0, 1 - np.sqrt(q))) ** 2 / BULK_MARGIN
        high = (1 + np.sqrt(q)) ** 2 * BULK_MARGIN
        relative = values / level
        spikes = np.flatnonzero((relative < low) | (relative > high))
        spikes = spikes[np.argsort(-np.abs(np.log(relative[spikes])))][:LOW_RANK]
        vectors[:, : len(spikes)] = eigenvectors[:, spikes]
        gains[: len(spikes)] = np.sqrt(relative[spikes]) - 1.0
    return np.concatenate([sd * np.sqrt(level), vectors.ravel(), gains])


def scale_from_covariance(cov: np.ndarray, n_points: int) -> np.ndarray:
    """The flat scale, in the form of `proposal_form`, of a covariance estimated from ``n_points``
    positions (e.g. the tempered start's particles)."""
    cov = np.atleast_2d(cov)
    dim = len(cov)
    sd = np.sqrt(np.maximum(np.diag(cov), 1e-300))
    form = proposal_form(dim)
    if form == "diagonal":
        return sd
    if form == "low-rank":
        return low_rank_scale(sd, cov / np.outer(sd, sd), n_points)
    try:
        return np.linalg.cholesky(
            cov + 1e-10 * np.eye(dim) * max(1.0, float(sd.max()) ** 2)
        ).ravel()
    except np.linalg.LinAlgError:
        return np.diag(sd).ravel()


def _correlation(ends: list[np.ndarray]) -> tuple[np.ndarray, int] | None:
    """Within-chain correlations of the chains' positions at the ends of a window's blocks (see
    `window_sd`), and how many positions they rest on; None with fewer than 3 blocks or a
    degenerate coordinate."""
    if len(ends) < 3:
        return None
    stacked = np.stack(ends)  # (blocks, chains, dim)
    centered = stacked - stacked.mean(axis=0)
    n = stacked.shape[1] * (stacked.shape[0] - 1)
    cov = np.einsum("bci,bcj->ij", centered, centered) / n
    with np.errstate(all="ignore"):
        corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    return (corr, n) if np.all(np.isfinite(corr)) else None


def with_between_chains(
    sd: np.ndarray, corr: np.ndarray, chain_means: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(sd, corr)`` of the within-chain covariance ``W`` plus the spread of the chains' means
    ``B``, with ``B`` capped at `BETWEEN_CAP` times ``W`` along every direction.

    For chains started at draws of the target, all positions together are draws of it: ``W + B``
    is the target's covariance, and it sees directions too long for one chain to cross in a
    window, which ``W`` alone shrinks (and a proposal fitted to ``W`` crosses them slower
    still, window after window).  But chains in different modes (a mixture's relabellings,
    populated in proportion by the tempered start) also spread their means across the modes, and
    a proposal stretched across modes stalls: capping ``B`` bounds that stretch to a factor
    ``sqrt(1 + BETWEEN_CAP)`` along the modes' direction while keeping a slow direction's spread,
    where ``B`` is of the order of ``W``.
    """
    within = corr * np.outer(sd, sd)
    between = np.atleast_2d(np.cov(chain_means, rowvar=False))
    try:
        root = np.linalg.cholesky(within)
        whitened = np.linalg.solve(root, np.linalg.solve(root, between).T)
        values, vectors = np.linalg.eigh((whitened + whitened.T) / 2)
    except np.linalg.LinAlgError:
        return sd, corr
    capped = (vectors * np.clip(values, 0.0, BETWEEN_CAP)) @ vectors.T
    total = within + root @ capped @ root.T
    total_sd = np.sqrt(np.diag(total))
    return total_sd, total / np.outer(total_sd, total_sd)


def proposal_scale(
    sd: np.ndarray,
    ends: list[np.ndarray],
    previous: np.ndarray,
    chain_means: np.ndarray | None = None,
) -> np.ndarray:
    """The window's flat scale, in the form of `proposal_form`: the coordinates' within-chain
    standard deviations ``sd`` (from every step) and, from 2 coordinates on, their correlations
    from the chains' positions at the end of each block (within chains).  Dense: the Cholesky
    factor, with the correlations shrunk toward those of the ``previous`` flat factor by the
    number of such positions (few chains give few).  Low-rank: `low_rank_scale`.  A window of
    fewer than 3 blocks keeps the previous correlations.  With the
    window's ``chain_means`` (chains started at draws of the target), the spread between chains
    is added, capped (`with_between_chains`)."""
    dim = len(sd)
    form = proposal_form(dim)
    factor = as_factor(previous, dim)
    prior_cov = factor @ factor.T
    prior_sd = np.sqrt(np.diag(prior_cov))
    prior_corr = prior_cov / np.outer(prior_sd, prior_sd)
    # Too few blocks for correlations: the previous ones stand.
    corr, n = _correlation(ends) or (prior_corr, 1)
    if form == "dense":
        corr = (n * corr + 5.0 * prior_corr) / (n + 5.0)
    if chain_means is not None and len(chain_means) > 2:
        sd, corr = with_between_chains(sd, corr, chain_means)
    if form == "diagonal":
        return sd
    if form == "low-rank":
        return low_rank_scale(sd, corr, n)
    try:
        factor = np.linalg.cholesky(corr * np.outer(sd, sd))
    except np.linalg.LinAlgError:
        return np.diag(sd).ravel()
    return factor.ravel()


def default_target_acceptance(dim: int) -> float:
    """The random walk's default target acceptance: 0.44 in one dimension, decreasing to 0.234 in
    many (the optimal rates on Gaussian targets, Roberts, Gelman and Gilks 1997)."""
    return 0.234 + (0.44 - 0.234) * np.exp(-(dim - 1) / 4)


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
    block_size: int,
    at_equilibrium: bool = False,
    restart_step_size: float | None = None,
    step_gain: float = STEP_GAIN,
) -> WarmUp:
    """Run at most ``n_steps`` warm-up steps through ``run_block`` and adapt the proposal on the way.

    Robbins-Monro on the log step size toward ``target``; the scale (`proposal_scale`, in the form
    of `proposal_form`) re-estimated at the end of each window of `window_schedule`
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

    ``at_equilibrium`` says that the chains started at draws of the target (the tempered start's
    particles, or prior draws of a model without data): the estimates then add the spread
    between the chains, capped (`with_between_chains`).

    Parameters
    ----------
    run_block
        ``run_block(positions, logdensities, step_size, scale, n) -> Block`` (`aemix.runners`).
    positions, logdensities
        The chains' state, ``(n_chains, dim)`` and ``(n_chains,)``.
    step_size, scale
        The starting kernel parameters.
    restart_step_size
        The step size each new scale starts from (default ``2.38 / sqrt(dim)``, the random
        walk's; a gradient kernel's differs, see `aemix.kernels.choice.Kernel`).
    step_gain
        The gain of the log step size's update (`STEP_GAIN` by default; a gradient kernel's
        acceptance falls off a cliff as its step grows, and takes a smaller gain).

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
        step_size *= np.exp((acceptance - target) * step_gain / np.sqrt(k))
        if first <= start and done <= last:
            window.merge(n, block.position_mean, block.position_m2)
            ends.append(positions.copy())
        if any(done == end for _, end in windows) and window.count > 1:
            sd = window_sd(window)
            if np.all(np.isfinite(sd)) and np.all(sd > 0):
                new_scale = proposal_scale(sd, ends, scale, window.mean if at_equilibrium else None)
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
                restart = 2.38 / np.sqrt(dim) if restart_step_size is None else restart_step_size
                scale, step_size, k = new_scale, restart, 0
                if settled and done < last:
                    n_steps, last = done + final, done
                    bounds = [b for b in bounds if b <= done] + [n_steps]
            window, ends = Moments(), []
    return WarmUp(positions, logdensities, step_size, scale, done, history)
