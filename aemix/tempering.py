"""A start that finds the posterior's modes with the right weights: adaptive tempered SMC.

Chains started from prior draws and left to walk end up in whichever mode is nearest, in the wrong
proportions, and on posteriors much narrower than the prior they may never arrive.  The tempered
start moves a population of particles from the prior to the posterior through the densities

    pi_beta(x)  propto  prior(x) * likelihood(x) ** beta,      0 = beta_0 < ... < beta_T = 1,

each ``beta`` chosen so that the effective sample size of the incremental weights
``likelihood ** (beta_t - beta_{t-1})`` is a set fraction of the particles; after each reweighting
the particles are resampled (systematic) and moved by random-walk Metropolis steps at ``pi_beta``
with a proposal covariance from the particles themselves.  The particles at ``beta = 1`` start the
chains; the product of the mean incremental weights estimates the marginal likelihood (Del Moral,
Doucet and Jasra 2006; BlackJAX's adaptive tempered SMC is built the same way).

The module is data in, data out: `tempered_start` takes the sampler's compiled pieces as functions
and returns particles and the evidence; it never decides how the chains are run afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

__all__ = ["TemperedStart", "tempered_start"]


@dataclass
class TemperedStart:
    """The result of the tempered start.

    Attributes
    ----------
    positions
        Particles at ``beta = 1``, ``(n_particles, dim)``, unconstrained.
    log_evidence, log_evidence_se
        Estimate of the log marginal likelihood ``log p(data)`` and its Monte Carlo standard
        error (from the incremental weights' variances; NaN when the prior part of the density is
        not the density the particles were drawn from, see `LogDensity.separable_likelihood`).
    betas
        The inverse temperatures, from 0 to 1.
    acceptance
        The mean acceptance rate of the moves at each temperature after the first.
    """

    positions: np.ndarray
    log_evidence: float
    log_evidence_se: float
    betas: list[float] = field(default_factory=list)
    acceptance: list[float] = field(default_factory=list)


def _next_beta(loglik: np.ndarray, beta: float, target_ess: float) -> float:
    """The largest ``beta' <= 1`` whose incremental weights keep ``ESS >= target_ess * n``."""

    def ess_fraction(next_beta: float) -> float:
        log_w = (next_beta - beta) * loglik
        log_w = log_w - logsumexp(log_w)
        return float(np.exp(-logsumexp(2 * log_w))) / len(loglik)

    if ess_fraction(1.0) >= target_ess:
        return 1.0
    lo, hi = beta, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if ess_fraction(mid) >= target_ess:
            lo = mid
        else:
            hi = mid
    return max(lo, beta + 1e-12)


def _systematic_resample(rng: np.random.Generator, log_w: np.ndarray) -> np.ndarray:
    w = np.exp(log_w - logsumexp(log_w))
    n = len(w)
    positions = (rng.random() + np.arange(n)) / n
    return np.minimum(np.searchsorted(np.cumsum(w), positions), n - 1)


def proposal_factor(particles: np.ndarray) -> np.ndarray:
    """Cholesky factor of the particles' covariance (diagonal when it is not positive definite)."""
    dim = particles.shape[1]
    cov = np.atleast_2d(np.cov(particles, rowvar=False))
    cov = cov + 1e-10 * np.eye(dim) * max(1.0, float(np.max(np.diag(cov))))
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return np.diag(np.sqrt(np.maximum(np.diag(cov), 1e-12)))


def tempered_start(
    initial: np.ndarray,
    loglik_and_logdensity: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    move: Callable[[np.ndarray, float, np.ndarray, float, int], tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
    *,
    target_ess: float = 0.5,
    exact_prior: bool = True,
    max_stages: int = 500,
) -> TemperedStart:
    """Move ``initial`` prior draws to the posterior by adaptive tempering.

    Parameters
    ----------
    initial
        Prior draws, ``(n_particles, dim)``, unconstrained.
    loglik_and_logdensity
        Maps particles to their log-likelihoods and log-densities (unconstrained, Jacobian
        included): the tempered log-density is ``logdensity - (1 - beta) * loglik``.
    move
        ``move(particles, beta, factor, step_size, n_steps) -> (particles, acceptance rates)``:
        ``n_steps`` random-walk Metropolis steps at ``pi_beta`` with proposal
        ``x + step_size * factor @ normal``.
    rng
        Random numbers of the reweighting and resampling.
    target_ess
        The fraction of the particles the incremental weights' ESS is kept at.
    exact_prior
        Whether ``initial`` follows the prior part of the log-density exactly (else the evidence
        is reported as NaN).
    max_stages
        Refuse to go on (``RuntimeError``) after this many temperatures.

    Returns
    -------
    TemperedStart
    """
    particles = np.array(initial, dtype=float)
    n, dim = particles.shape
    loglik, _ = loglik_and_logdensity(particles)
    beta, betas, acceptance = 0.0, [0.0], []
    log_evidence, variance = 0.0, 0.0
    step_size = 2.38 / np.sqrt(dim)
    while beta < 1.0:
        if len(betas) > max_stages:
            raise RuntimeError(f"the tempered start did not reach beta = 1 in {max_stages} stages")
        finite = np.where(np.isfinite(loglik), loglik, -np.inf)
        next_beta = _next_beta(finite, beta, target_ess)
        log_w = (next_beta - beta) * finite
        log_mean = logsumexp(log_w) - np.log(n)
        log_evidence += log_mean
        w = np.exp(log_w - log_mean)
        variance += float(np.var(w)) / n
        particles = particles[_systematic_resample(rng, log_w)]
        beta = next_beta
        betas.append(beta)
        factor = proposal_factor(particles)
        # Enough moves that a particle is expected to move about twice, within bounds.
        total_accepted, steps = 0.0, 0
        while True:
            particles, rates = move(particles, beta, factor, step_size, 5)
            rate = float(np.mean(rates))
            steps += 5
            total_accepted += rate * 5
            step_size *= np.exp(2.0 * (rate - 0.234))
            if total_accepted >= 2.0 or steps >= 50:
                break
        acceptance.append(total_accepted / steps)
        loglik, _ = loglik_and_logdensity(particles)
    se = float(np.sqrt(variance))
    if not exact_prior:
        log_evidence, se = float("nan"), float("nan")
    return TemperedStart(particles, float(log_evidence), se, betas, acceptance)
