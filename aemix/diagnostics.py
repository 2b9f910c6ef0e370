"""Convergence diagnostics of a run, and the warning that says when it cannot be trusted.

After sampling, every latent variable's draws get ArviZ's rank-normalized split R-hat and bulk and
tail effective sample sizes; the chains' mean log-densities are compared to find chains stuck in a
region of much lower density than the others (a local mode, or a chain that never moved).  When
R-hat exceeds 1.01, the smallest ESS is under 400, or chains are stuck, `ConvergenceWarning` names
the variables and says what to try.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

# Where aemix's modules live: warnings are attributed to the first frame outside.
_PACKAGE = os.path.dirname(os.path.abspath(__file__))

__all__ = [
    "ConvergenceWarning",
    "TruncationWarning",
    "Diagnostics",
    "diagnose_draws",
    "diagnose_moments",
    "warn_if_untrustworthy",
    "warn_if_truncated",
    "user_stacklevel",
]

RHAT_LIMIT = 1.01
MIN_ESS = 400
# A chain whose mean log-density is this many within-chain standard deviations below the best
# chains' is in another region of the posterior (a local mode, or stuck).
STUCK_GAP = 6.0


class ConvergenceWarning(UserWarning):
    """The draws of a run may not represent the posterior (R-hat, ESS or stuck chains)."""


class ModelWarning(UserWarning):
    """The model as written puts prior mass where its density is not defined (a parameter check
    fails there): those points are given density zero."""


class TruncationWarning(UserWarning):
    """A count with unbounded support was summed over a range that leaves out more of its mass
    than the tolerance, at parameters the chains visited (`aemix.truncation`)."""


@dataclass
class Diagnostics:
    """Per-variable convergence numbers of a run.

    Attributes
    ----------
    rhat, ess_bulk, ess_tail
        ``name -> array`` of the variable's shape: rank-normalized split R-hat and bulk / tail
        effective sample sizes over all chains (ArviZ).
    acceptance_rate
        Mean acceptance rate over chains.
    stuck_chains
        Indices of chains whose mean log-density is far below the best chains'.
    unchecked
        Why the run could not be diagnosed (too few draws, one chain), or ``None``.
    divergent, transitions
        HMC's trajectories after the warm-up that diverged (`aemix.kernels.hmc.DIVERGENCE`), and
        all its trajectories after the warm-up; both 0 for the other kernels.
    """

    rhat: dict[str, np.ndarray] = field(default_factory=dict)
    ess_bulk: dict[str, np.ndarray] = field(default_factory=dict)
    ess_tail: dict[str, np.ndarray] = field(default_factory=dict)
    acceptance_rate: float = float("nan")
    stuck_chains: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    unchecked: str | None = None
    divergent: int = 0
    transitions: int = 0

    def problems(self) -> list[str]:
        """Sentences, one per kind of problem found (empty for a trustworthy run)."""
        out = []
        if self.unchecked is not None:
            out.append(f"convergence cannot be checked: {self.unchecked}")
        high = sorted(
            name for name, r in self.rhat.items() if np.any(~(np.asarray(r) <= RHAT_LIMIT))
        )
        if high:
            worst = max(float(np.nanmax(self.rhat[n])) for n in high)
            out.append(f"R-hat above {RHAT_LIMIT} for {high} (largest {worst:.4f})")
        low = sorted(
            name
            for name in self.ess_bulk
            if min(np.nanmin(self.ess_bulk[name]), np.nanmin(self.ess_tail[name])) < MIN_ESS
        )
        if low:
            smallest = min(
                min(float(np.nanmin(self.ess_bulk[n])), float(np.nanmin(self.ess_tail[n])))
                for n in low
            )
            out.append(f"effective sample size below {MIN_ESS} for {low} (smallest {smallest:.0f})")
        if self.divergent:
            out.append(
                f"{self.divergent} of {self.transitions} HMC trajectories after the warm-up "
                f"diverged ({self.divergent / self.transitions:.2%}: an energy error above "
                "1000; the chains under-sample a region of high curvature, such as the funnel "
                "of a centered hierarchical model)"
            )
        if len(self.stuck_chains):
            out.append(
                f"{len(self.stuck_chains)} chain(s) stuck far below the others' log-density "
                f"(chains {self.stuck_chains[:10].tolist()})"
            )
        return out


def _stuck(logdensity: np.ndarray) -> np.ndarray:
    """Chains whose mean log-density is far below the best chains' (``(n_chains, n_samples)``)."""
    if logdensity.shape[0] < 2 or logdensity.shape[1] < 2:
        return np.zeros(0, dtype=int)
    means = logdensity.mean(axis=1)
    spread = np.median(logdensity.std(axis=1))
    top = np.sort(means)[len(means) // 2 :]  # the better half of the chains
    reference = np.median(top)
    return np.flatnonzero(means < reference - STUCK_GAP * max(spread, 1e-3) - 1.0)


# Above this many draws of one coordinate, the diagnostics read every k-th draw: ESS and R-hat of
# the thinned chains, which bound those of the full chains from below (up to Monte Carlo error).
# ArviZ's rank-normalized diagnostics cost about 1 s per million draws of a coordinate: at
# 200,000 they stay below a tenth of the seed benchmark's run (10^7 chain-steps in 0.23 s).
MAX_DIAGNOSED_DRAWS = 200_000


#: The name under which the log density's trace is diagnosed when a latent was not kept.
LOG_DENSITY = "the log density"


def diagnose_draws(
    draws: dict[str, np.ndarray], logdensity: np.ndarray, acceptance_rate: np.ndarray
) -> Diagnostics:
    """Diagnostics of ``draws`` (``name -> (n_chains, n_samples, *shape)``)."""
    import arviz as az

    out = Diagnostics(
        acceptance_rate=float(np.mean(acceptance_rate)), stuck_chains=_stuck(logdensity)
    )
    n_chains, n_samples = logdensity.shape
    if n_samples < 4 or (n_chains == 1 and n_samples < 8):
        least = 4 if n_chains > 1 else 8
        out.unchecked = (
            f"{n_samples} draw(s) per chain ({n_chains} chain(s)), R-hat and ESS need at least "
            f"{least}"
        )
        return out
    stride = max(1, -(-n_chains * n_samples // MAX_DIAGNOSED_DRAWS))
    for name, value in draws.items():
        value = np.asarray(value[:, ::stride], dtype=float)
        flat = value.reshape(n_chains, value.shape[1], -1)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            dataset = {name: flat}
            # One chain: R-hat between its halves (ArviZ's needs two chains; it splits each).
            halves = flat[:, : flat.shape[1] // 2 * 2].reshape(2, flat.shape[1] // 2, -1)
            rhat = az.rhat({name: halves} if n_chains == 1 else dataset)[name].values
            bulk = az.ess(dataset, method="bulk")[name].values
            tail = az.ess(dataset, method="tail")[name].values
        # A coordinate that never varies (a constant) has no R-hat; it is not a problem.
        constant = np.all(flat == flat[:1, :1], axis=(0, 1))
        rhat = np.where(constant, 1.0, rhat)
        bulk = np.where(constant, np.inf, bulk)
        tail = np.where(constant, np.inf, tail)
        shape = value.shape[2:]
        out.rhat[name] = rhat.reshape(shape)
        out.ess_bulk[name] = bulk.reshape(shape)
        out.ess_tail[name] = tail.reshape(shape)
    return out


def diagnose_moments(
    moments: dict[str, tuple[np.ndarray, np.ndarray]], n_samples: int, acceptance_rate
) -> Diagnostics:
    """Classic (Gelman-Rubin) R-hat from per-chain means and variances (``ddof=0``); no ESS."""
    out = Diagnostics(acceptance_rate=float(np.mean(acceptance_rate)))
    n = n_samples
    n_chains = min((mean.shape[0] for mean, _ in moments.values()), default=0)
    if n_chains < 2 or n < 2:
        out.unchecked = (
            "R-hat from moments (summary_only) needs at least 2 chains of 2 draws, got "
            f"{n_chains} x {n}"
        )
    for name, (mean, variance) in moments.items():
        if mean.shape[0] < 2 or n < 2:
            continue
        within = np.mean(variance, axis=0) * n / (n - 1)
        between = n * np.var(mean, axis=0, ddof=1)
        pooled = (n - 1) / n * within + between / n
        with np.errstate(all="ignore"):
            rhat = np.sqrt(pooled / within)
        out.rhat[name] = np.where(within > 0, rhat, 1.0)
    return out


def user_stacklevel() -> int:
    """The ``stacklevel`` that attributes a warning to the first caller outside aemix, for the
    function that calls this one and then `warnings.warn`."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def warn_if_untrustworthy(
    diagnostics: Diagnostics, tempered: bool = False, labels: bool = True
) -> None:
    """Emit a `ConvergenceWarning` that lists the problems and what to try.

    ``tempered`` says that the chains started from tempered SMC particles, so that the advice does
    not send the user to the start they already had; ``labels``, that the model sums out a
    discrete variable (a mixture, whose labels may switch between chains).
    """
    problems = diagnostics.problems()
    if not problems:
        return
    if tempered and not labels:
        advice = (
            "The chains started from tempered SMC particles: try a longer warmup, more draws, "
            "a larger thin, or reparameterizing the model (e.g. non-centered hierarchical "
            "parameters)"
        )
    elif tempered:
        advice = (
            "The chains started from tempered SMC particles: if the model is symmetric in its "
            "labels (a mixture whose components have the same priors), R-hat across chains "
            "measures label switching, and an ordering of the locations or distinct priors fixes "
            "it; otherwise try a longer warmup, more draws, a larger thin, or reparameterizing "
            "the model (e.g. non-centered hierarchical parameters)"
        )
    else:
        advice = (
            "Try start='tempered' (chains started from the posterior by tempered SMC, every mode "
            "in proportion), a longer warmup, more draws or chains, a larger thin, or "
            "reparameterizing the model (e.g. non-centered hierarchical parameters)"
        )
    if diagnostics.divergent:
        advice += (
            "; against divergences: reparameterize (e.g. non-centered), or a larger "
            "target_acceptance (e.g. 0.95: a smaller step size)"
        )
    warnings.warn(
        "the draws may not represent the posterior: "
        + "; ".join(problems)
        + f" (acceptance rate {diagnostics.acceptance_rate:.3f}). "
        + advice
        + "; result.diagnostics holds the numbers.",
        ConvergenceWarning,
        stacklevel=user_stacklevel(),
    )


def warn_if_truncated(
    tails: dict[str, float], truncations: dict, where: str = "at some kept draws"
) -> None:
    """Emit a `TruncationWarning` for each count whose mass beyond its range, at the worst kept
    draw (``tails``, by name), exceeds its tolerance (``truncations``: `aemix.truncation.Truncation`
    by name); ``where`` says at which values (the draws, or `Sampler.logdensity`'s)."""
    for name, tail in tails.items():
        truncation = truncations[name]
        if tail <= truncation.tolerance:
            continue
        suggestion = 2 * truncation.bound
        beyond = (
            f"its conditional probabilities still rise at {truncation.bound}"
            if np.isinf(tail)
            else f"{tail:.2g} of its conditional mass lies beyond {truncation.bound}"
        )
        warnings.warn(
            f"{name} was summed over [{truncation.low}, {truncation.bound}], but {where} "
            f"{beyond} (tolerance {truncation.tolerance:g}), so the density is off there; "
            "rebuild "
            f"with a longer range, e.g. build_sampler(..., count_bounds={{{name!r}: {suggestion}}})"
            + (", and a support_budget above it" if truncation.capped else "")
            + "; result.truncation_tail holds the numbers.",
            TruncationWarning,
            stacklevel=user_stacklevel(),
        )
