"""`ordered=`: a vector constrained to increase along its last axis (a mixture's locations)."""

import aesara.tensor as at
import arviz as az
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logsumexp

import aemix
from aemix.errors import ModelError
from tests.helpers import stat_scale

DATA = np.array([-2.1, -1.4, -1.0, -0.3, 0.4, 1.2, 1.6, 2.3])
PRIOR_SD = 3.0


def mixture(ordered=("mu",), **kwargs):
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, PRIOR_SD, size=2, name="mu")
    z = srng.bernoulli(0.5, size=len(DATA), name="z")
    y = srng.normal(mu[z], 1.0, name="y")
    return aemix.build_sampler(y, {y: DATA}, ordered=ordered, **kwargs)


def log_posterior(m1, m2):
    """Unnormalized log-posterior of the unordered locations (z summed out), on a grid."""
    prior = st.norm(0, PRIOR_SD).logpdf(m1) + st.norm(0, PRIOR_SD).logpdf(m2)
    y = DATA[:, None, None]
    each = np.logaddexp(st.norm(m1, 1).logpdf(y), st.norm(m2, 1).logpdf(y)) + np.log(0.5)
    return prior + each.sum(0)


def ordered_moments():
    """Posterior means and sds of the ordered locations by quadrature on the region m1 < m2."""
    grid = np.linspace(-12, 12, 801)
    m1, m2 = np.meshgrid(grid, grid, indexing="ij")
    logp = np.where(m1 < m2, log_posterior(m1, m2), -np.inf)
    w = np.exp(logp - logsumexp(logp))
    means = np.array([np.sum(w * m1), np.sum(w * m2)])
    sds = np.sqrt(np.array([np.sum(w * m1**2), np.sum(w * m2**2)]) - means**2)
    return means, sds


def test_the_density_is_the_prior_restricted_to_increasing_values():
    sampler = mixture(mode="FAST_COMPILE")
    unordered = mixture(ordered=(), mode="FAST_COMPILE")
    for mu in ([-1.0, 2.0], [0.3, 0.31], [-4.0, -3.5]):
        assert sampler.logdensity({"mu": np.array(mu)}) == pytest.approx(
            unordered.logdensity({"mu": np.array(mu)}), abs=1e-12
        )
    assert sampler.logdensity({"mu": np.array([2.0, -1.0])}) == -np.inf
    assert sampler.logdensity({"mu": np.array([1.0, 1.0])}) == -np.inf


def test_the_unconstrained_density_has_the_jacobian_of_the_ordering():
    sampler = mixture(mode="FAST_COMPILE")
    unordered = mixture(ordered=(), mode="FAST_COMPILE")
    x = np.random.default_rng(0).normal(size=(5, 2))
    mu = np.stack([x[:, 0], x[:, 0] + np.exp(x[:, 1])], axis=1)
    expected = [unordered.logdensity({"mu": m}) + xi[1] for m, xi in zip(mu, x)]
    np.testing.assert_allclose(sampler._logdensity_batch(x), expected, rtol=1e-12)


def test_initial_positions_are_increasing():
    sampler = mixture(mode="FAST_COMPILE")
    x = sampler.initial_positions(50, np.random.default_rng(0))
    # Unconstrained, the second coordinate is log(mu[1] - mu[0]): finite only where increasing.
    assert np.all(np.isfinite(x))
    assert np.all(np.isfinite(sampler._logdensity_batch(x)))


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["fused", "scan"])
def test_ordered_locations_match_quadrature_with_the_default_call(loop):
    sampler = mixture()
    result = sampler.sample(int(1000 * max(stat_scale(), 0.5)), seed=3, loop=loop)
    mu = result.draws["mu"]
    assert np.all(np.diff(mu, axis=-1) > 0)
    means, sds = ordered_moments()
    for k in range(2):
        draws = mu[..., k]
        mcse = float(az.mcse(draws))
        assert abs(draws.mean() - means[k]) < 5 * mcse, (k, draws.mean(), means[k], mcse)
        # The sd's Monte Carlo error is about sd / sqrt(2 ESS); 5 of them, well under 20%.
        ess = float(az.ess(draws))
        assert abs(draws.std() / sds[k] - 1) < 5 / np.sqrt(2 * ess)


def test_ordered_refusals_name_the_variable():
    srng = at.random.RandomStream(0)
    s = srng.halfnormal(0.0, 1.0, size=2, name="s")
    m = srng.normal(0.0, 1.0, name="m")
    y = srng.normal(m, s[0] + s[1], size=3, name="y")
    data = {y: np.zeros(3)}
    with pytest.raises(ModelError, match="'s': only a continuous univariate distribution"):
        aemix.build_sampler(y, data, ordered=["s"], mode="FAST_COMPILE")
    with pytest.raises(ModelError, match="'m': an ordered variable needs a last axis"):
        aemix.build_sampler(y, data, ordered=["m"], mode="FAST_COMPILE")
    with pytest.raises(ModelError, match="'w': named in `ordered`, but it is not a latent"):
        aemix.build_sampler(y, data, ordered=["w"], mode="FAST_COMPILE")
