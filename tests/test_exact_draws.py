"""Models with no continuous latent once their discrete variables are summed out: `sample` draws
the discrete variables exactly (no kernel, no warm-up), checked against brute-force enumeration.

The random models are those of `tests.adversarial.models` with every continuous parameter
observed (given as data), so that the oracle's posterior over the discrete configurations is
the target; the draws are independent, so their frequencies are checked within binomial error.
"""

from __future__ import annotations

import itertools
import warnings

import aesara.tensor as at
import numpy as np
import pytest
import scipy.stats as st
from hypothesis import Phase, assume, given, settings
from hypothesis import strategies as hst
from scipy.special import logsumexp

import aemix
from tests.adversarial.models import models, random_values
from tests.helpers import stat_scale

FAST = "FAST_COMPILE"


def _frequencies_match(counts: np.ndarray, probs: np.ndarray, n: int, what: str) -> None:
    """Each frequency within 5 binomial standard errors of its probability (plus 1/n)."""
    freq = counts / n
    se = np.sqrt(probs * (1 - probs) / n)
    assert np.all(np.abs(freq - probs) <= 5 * se + 1.0 / n), (what, freq, probs)


def _every_continuous_observed(spec):
    outputs, observed, rvs = spec.build()
    values = random_values(spec, np.random.default_rng(len(spec.describe())))
    for name, value in values.items():
        observed[rvs[name]] = value
    return outputs, observed, values


@settings(
    max_examples=max(2, int(8 * stat_scale())),
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
)
@given(spec=models(max_discrete=2), seed=hst.integers(0, 2**16))
def test_with_nothing_continuous_left_the_joint_draws_are_exact(spec, seed):
    # (a latent child stays a continuous latent)
    assume(all(c.pattern != "latent" for c in spec.children))
    outputs, observed, values = _every_continuous_observed(spec)
    sampler = aemix.build_sampler(outputs, observed=observed, mode=FAST)
    assert sampler.dim == 0 and sampler.latent == ()
    assert "none left to move" in sampler.explain()
    np.testing.assert_allclose(
        sampler.logdensity({}), spec.logdensity(values), rtol=1e-9, atol=1e-9
    )
    n_chains, n_samples = 4, max(250, int(1000 * stat_scale()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # independent exact draws: nothing to warn about
        result = sampler.sample(n_samples, n_chains=n_chains, seed=seed)
    assert result.loop == "exact" and result.warmup_steps == 0
    # The joint configurations' frequencies against the oracle's posterior.
    configs, logp = spec.enumerate(values)
    probs = np.exp(logp - logsumexp(logp))
    names = [d.name for d in spec.discretes]
    index = {
        tuple(np.ravel(c[n]).tolist() for n in names).__repr__(): i for i, c in enumerate(configs)
    }
    counts = np.zeros(len(configs))
    flat = {n: result.draws[n].reshape(n_chains * n_samples, -1) for n in names}
    for row in range(n_chains * n_samples):
        key = tuple(flat[n][row].tolist() for n in names).__repr__()
        counts[index[key]] += 1
    _frequencies_match(counts, probs, n_chains * n_samples, spec.describe())
    # The conditionals given nothing are the exact marginals.
    for d in spec.discretes:
        if d.name in result.conditional_probabilities and not sampler.conditionals_given.get(
            d.name
        ):
            p = result.conditional_probabilities[d.name][0, 0]
            if p.shape[-1] == len(d.support) and p.ndim == len(d.shape) + 1:
                exact = spec.posterior(d.name, values, joint=False)
                np.testing.assert_allclose(p, exact, rtol=1e-8, atol=1e-10)


def _hmm(data, P, means, p0):
    srng = at.random.RandomStream(0)
    z = srng.categorical(p0, name="z0")
    observed = {}
    for t, value in enumerate(data):
        if t:
            z = srng.categorical(at.as_tensor(P)[z], name=f"z{t}")
        y = srng.normal(at.as_tensor(means)[z], 1.0, name=f"y{t}")
        observed[y] = value
    return aemix.build_sampler(list(observed), observed)


def test_an_hmm_with_known_parameters_is_decoded_exactly():
    # States drawn jointly (forward-filter backward-sample), against every one of the 2^6 paths.
    data = np.array([0.1, 1.2, 2.1, 1.9, -0.3, 0.4])
    P = np.array([[0.9, 0.1], [0.2, 0.8]])
    means, p0 = np.array([0.0, 2.0]), np.array([0.5, 0.5])
    sampler = _hmm(data, P, means, p0)
    paths = np.array(list(itertools.product([0, 1], repeat=len(data))))
    logp = (
        np.log(p0[paths[:, 0]])
        + np.log(P[paths[:, :-1], paths[:, 1:]]).sum(1)
        + st.norm.logpdf(data, means[paths], 1.0).sum(1)
    )
    assert sampler.logdensity({}) == pytest.approx(logsumexp(logp), rel=1e-10)
    n_chains, n_samples = 4, max(500, int(2000 * stat_scale()))
    result = sampler.sample(n_samples, n_chains=n_chains, seed=3)
    drawn = np.stack([result.draws[f"z{t}"].ravel() for t in range(len(data))], axis=1)
    codes = drawn @ (2 ** np.arange(len(data))[::-1])
    counts = np.bincount(codes, minlength=len(paths))
    probs = np.exp(logp - logsumexp(logp))
    _frequencies_match(counts, probs, len(codes), "paths")
    # The smoothed marginals, and the rest of a result's outputs.
    smoothed = result.conditional_probabilities["z3"][0, 0, 1]
    assert smoothed == pytest.approx(probs[paths[:, 3] == 1].sum(), rel=1e-8)
    idata = result.to_inference_data()
    assert "log_likelihood" in idata.groups()
    predictive = sampler.posterior_predictive(result, seed=0)
    assert predictive["y0"].shape == (n_chains, n_samples)
    summary = sampler.sample(50, n_chains=2, seed=0, summary_only=True)
    assert summary.mean["z3"].shape == (2,)
