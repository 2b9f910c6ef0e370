"""aemix's exactness claims against brute-force enumeration, on random models written as users write them.

The oracle (`tests.adversarial.models.ModelSpec`) scores every configuration of the discrete
latents with scipy densities and sums them with `itertools.product`; it shares nothing with aemix or
aeppl but the model's mean expressions, written once for NumPy and Aesara.
"""

from __future__ import annotations

import itertools

import aesara.tensor as at
import numpy as np
import pytest
import scipy.stats as st
from hypothesis import Phase, given, settings
from hypothesis import strategies as hst
from scipy.special import logsumexp

import aemix
from tests.adversarial.models import Child, Discrete, ModelSpec, models, random_values
from tests.helpers import every_variable, stat_scale

FAST = "FAST_COMPILE"
N_POINTS = 3


def _examples(n: int) -> settings:
    # No shrinking: every example compiles a model, so shrinking a failure costs minutes; the
    # failing model is printed whole (`ModelSpec.describe` in the assertion message).
    return settings(
        max_examples=max(2, int(n * stat_scale())),
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )


def _build(spec: ModelSpec):
    outputs, observed, _ = spec.build()
    return aemix.build_sampler(outputs, observed=observed, mode=FAST)


def assert_exact(got, reference, tol=1e-9, what=""):
    np.testing.assert_allclose(got, reference, rtol=tol, atol=tol, err_msg=what)


# -- the oracle itself, on a case computed by hand ------------------------------------------------


def test_oracle_matches_a_hand_computed_marginal():
    # z ~ bernoulli(0.3, size=2), theta ~ N(0, 2), y ~ N(theta + z.sum(), 1), y = 1.5, theta = 0.2:
    # p = N(0.2; 0, 2) * sum_{s=0,1,2} P(z.sum() = s) N(1.5; 0.2 + s, 1), P(sum) = .49, .42, .09.
    spec = ModelSpec(
        [Discrete("z0", "bernoulli", 2, p=0.3)],
        [Child("y0", "sum", ("z0",), sd=1.0, data=np.array(1.5))],
        uses_theta=True,
    )
    phi = lambda x: np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)  # noqa: E731
    by_hand = (phi(0.2 / 2) / 2) * (0.49 * phi(1.3) + 0.42 * phi(0.3) + 0.09 * phi(-0.7))
    assert_exact(spec.logdensity({"theta": 0.2}), np.log(by_hand), tol=1e-13)
    post = spec.posterior("z0", {"theta": 0.2}, joint=True)  # (0,0), (0,1), (1,0), (1,1)
    w = np.array([0.49 * phi(1.3), 0.21 * phi(0.3), 0.21 * phi(0.3), 0.09 * phi(-0.7)])
    assert_exact(post, w / w.sum(), tol=1e-13)
    marginal = spec.posterior("z0", {"theta": 0.2}, joint=False)
    assert_exact(marginal[:, 1], [w[2] + w[3], w[1] + w[3]] / w.sum(), tol=1e-13)


def test_oracle_matches_a_hand_computed_discrete_chain():
    # z0 ~ cat(.4, .6), z1 ~ cat(P[z0]), mu ~ N(0, 3, size=2), y ~ N(mu[z1], 1).
    P = np.array([[0.9, 0.1], [0.2, 0.8]])
    spec = ModelSpec(
        [
            Discrete("z0", "categorical", weights=np.array([0.4, 0.6])),
            Discrete("z1", "categorical_of", weights=P, parent="z0"),
        ],
        [Child("y0", "index", ("z1",), sd=1.0, data=np.array(0.7))],
        mu_length=2,
    )
    mu = np.array([-1.0, 2.0])
    lik = st.norm(mu, 1).pdf(0.7)
    p_z1 = np.array([0.4 * 0.9 + 0.6 * 0.2, 0.4 * 0.1 + 0.6 * 0.8])
    by_hand = st.norm(0, 3).pdf(mu).prod() * np.sum(p_z1 * lik)
    assert_exact(spec.logdensity({"mu": mu}), np.log(by_hand), tol=1e-13)
    post_z0 = np.array([0.4 * np.sum(P[0] * lik), 0.6 * np.sum(P[1] * lik)])
    assert_exact(spec.posterior("z0", {"mu": mu}, joint=False), post_z0 / post_z0.sum(), 1e-13)


# -- 1. the marginal log-density ----------------------------------------------------------------


def _check_logdensity(spec: ModelSpec, seed: int) -> None:
    sampler = _build(spec)
    assert set(sampler.marginalized) == {d.name for d in spec.discretes}, spec.describe()
    assert set(sampler.latent) == set(spec.latent_shapes), spec.describe()
    rng = np.random.default_rng(seed)
    for _ in range(N_POINTS):
        values = random_values(spec, rng)
        got = sampler.logdensity(values)
        assert_exact(got, spec.logdensity(values), what=f"{spec.describe()}\nat {values}")


@_examples(20)
@given(spec=models(), seed=hst.integers(0, 2**32 - 1))
def test_marginal_logdensity_is_exact(spec, seed):
    _check_logdensity(spec, seed)


# Each way of reading a discrete variable, at least once whatever hypothesis draws.
_BERNOULLI = Discrete("z0", "bernoulli", 2, p=0.3)
_CATEGORICAL = Discrete("z0", "categorical", 3, weights=np.array([0.2, 0.5, 0.3]))
_SCALAR = Discrete("z0", "categorical", None, weights=np.array([0.2, 0.5, 0.3]))
_DATA2, _DATA3 = np.array([0.4, -1.3]), np.array([0.4, -1.3, 2.2])
_CONST = np.array([-1.0, 0.5, 2.0])
_SCALES = np.array([0.7, 1.3, 2.0])
PATTERN_CASES = {
    "index": ModelSpec([_CATEGORICAL], [Child("y0", "index", ("z0",), 1.2, _DATA3)], 3),
    "index of a scalar": ModelSpec(
        [_SCALAR], [Child("y0", "index", ("z0",), 1.2, np.array(0.8))], 3
    ),
    "index_reversed": ModelSpec(
        [_CATEGORICAL], [Child("y0", "index_reversed", ("z0",), 1.2, _DATA3)], 3
    ),
    "sum": ModelSpec(
        [_CATEGORICAL], [Child("y0", "sum", ("z0",), 1.0, np.array(2.5))], uses_theta=True
    ),
    "switch": ModelSpec(
        [_BERNOULLI],
        [Child("y0", "switch", ("z0",), 0.8, _DATA2, const=np.array([1.5]))],
        uses_theta=True,
    ),
    "offset": ModelSpec(
        [_CATEGORICAL], [Child("y0", "offset", ("z0",), 0.9, _DATA3, _CONST)], uses_theta=True
    ),
    "two children of one vector": ModelSpec(
        [_CATEGORICAL],
        [
            Child("y0", "index", ("z0",), 1.0, _DATA3),
            Child("y1", "sum", ("z0",), 1.0, np.array(1.0)),
        ],
        3,
        uses_theta=True,
    ),
    "two discrete latents": ModelSpec(
        [_CATEGORICAL, Discrete("z1", "binomial", None, n=2, p=0.4)],
        [
            Child("y0", "two", ("z0", "z1"), 1.0, _DATA3, _CONST),
            Child("y1", "sum", ("z1",), 1.0, np.array(0.5)),
        ],
        3,
        uses_theta=True,
    ),
    "discrete child of a discrete parent": ModelSpec(
        [
            _SCALAR,
            Discrete(
                "z1",
                "categorical_of",
                None,
                weights=np.array([[0.7, 0.3], [0.4, 0.6], [0.1, 0.9]]),
                parent="z0",
            ),
        ],
        [Child("y0", "index", ("z1",), 1.0, np.array(0.8))],
        2,
    ),
    "rows of a child read one element each": ModelSpec(
        [_CATEGORICAL], [Child("y0", "rows", ("z0",), 1.1, _DATA3[:, None] + [0.0, 1.0])], 3
    ),
    "rows read one element each through expand_dims": ModelSpec(
        [_CATEGORICAL],
        [Child("y0", "rows_expanded", ("z0",), 1.1, _DATA3[:, None] + [0.0, 1.0])],
        3,
    ),
    "a child broadcast from the right": ModelSpec(
        [_BERNOULLI], [Child("y0", "square", ("z0",), 1.1, np.outer(_DATA2, [1.0, -0.5]))], 2
    ),
    "columns of a child read one element each": ModelSpec(
        [_CATEGORICAL], [Child("y0", "wide", ("z0",), 0.9, np.stack([_DATA3, -_DATA3]))], 3
    ),
    "a discrete child of each element": ModelSpec(
        [
            _CATEGORICAL,
            Discrete(
                "z1",
                "categorical_of",
                3,
                weights=np.array([[0.7, 0.3], [0.4, 0.6], [0.1, 0.9]]),
                parent="z0",
            ),
        ],
        [Child("y0", "index", ("z1",), 1.0, _DATA3)],
        2,
    ),
    # Wrong by about 2 in log-density until the nested enumerations were summed per element (a
    # CI-size hypothesis run found it): the discrete child, per element, and a child of both.
    "a discrete child of each element and a child of both": ModelSpec(
        [
            _CATEGORICAL,
            Discrete(
                "z1",
                "categorical_of",
                3,
                weights=np.array([[0.37, 0.29, 0.34], [0.25, 0.42, 0.33], [0.35, 0.23, 0.42]]),
                parent="z0",
            ),
        ],
        [
            Child("y0", "index", ("z1",), 1.2, _DATA3),
            Child("y1", "two", ("z1", "z0"), 0.85, -_DATA3, _CONST),
        ],
        3,
    ),
    "latent child": ModelSpec(
        [Discrete("z0", "bernoulli", None, p=0.35)],
        [Child("x0", "latent", ("z0",), 1.0, np.array(1.1), _CONST[:2], _SCALES[:2])],
    ),
    "latent child of a vector": ModelSpec(
        [_CATEGORICAL], [Child("x0", "latent", ("z0",), 1.0, _DATA3, _CONST, _SCALES)]
    ),
    "indexed mixture": ModelSpec(
        [_SCALAR],
        [Child("y0", "mixture", ("z0",), 1.0, np.array(0.3), _CONST, _SCALES)],
        uses_theta=True,
    ),
    # One index picks a whole row: every element of the row shares it (not one mixture each).
    "indexed mixture of rows": ModelSpec(
        [_SCALAR],
        [Child("y0", "row_mixture", ("z0",), 1.0, np.array([0.3, 2.1]), _CONST, _SCALES)],
        uses_theta=True,
    ),
    "stacked mixture of rows": ModelSpec(
        [_SCALAR],
        [Child("y0", "stacked_mixture", ("z0",), 1.0, np.array([0.3, 2.1]), _CONST, _SCALES)],
        uses_theta=True,
    ),
    # ``N[:, z]``: the mixture is over the columns (it was read as the rows ``N[z]``).
    "indexed mixture of columns": ModelSpec(
        [_SCALAR],
        [Child("y0", "column_mixture", ("z0",), 1.0, np.array([0.3, 2.1]), _CONST, _SCALES)],
        uses_theta=True,
    ),
}


@pytest.mark.parametrize("case", list(PATTERN_CASES))
def test_each_pattern_logdensity_is_exact(case):
    _check_logdensity(PATTERN_CASES[case], seed=len(case))


# -- 2. the recovered conditionals --------------------------------------------------------------


def _check_conditionals(spec: ModelSpec, seed: int) -> None:
    """``conditional_probabilities[z]`` at each draw equals P(z | that draw's continuous values).

    aemix reports, per marginalized ``z`` (see `Sampler._recovery_graphs`): the support's axis last;
    ``(chains, draws, K)`` for a scalar, ``(chains, draws, n, K)`` per element when ``z``'s elements
    were summed out one by one, and ``(chains, draws, K ** n)`` over joint configurations (in
    ``itertools.product(support, repeat=n)`` order) when they were summed out jointly.  Other
    discrete latents are summed out of the reference (they are not part of a draw), but for those
    listed in ``sampler.conditionals_given[z]``, whose draws ``z``'s conditional is given.
    """
    sampler = _build(spec)
    result = sampler.sample(
        3,
        n_chains=2,
        seed=seed,
        warmup=20,
        loop="scan",
        start="prior",
        var_names=every_variable(sampler),
    )
    probs = result.conditional_probabilities
    assert set(probs) == {d.name for d in spec.discretes}
    for d in spec.discretes:
        p = probs[d.name]
        k = len(d.support)
        joint = d.size is not None and p.shape[2:] == (k**d.size,)
        if not joint:
            assert p.shape[2:] == (*d.shape, k), (d.name, p.shape, spec.describe())
        for c, s in itertools.product(range(2), range(3)):
            values = {name: result.draws[name][c, s] for name in spec.latent_shapes}
            # A variable summed out inside another is drawn given the other's draw.
            given = {g: result.draws[g][c, s] for g in sampler.conditionals_given[d.name]}
            exact = spec.posterior(d.name, values, joint, given)
            assert_exact(p[c, s], exact, tol=1e-8, what=f"{d.name}\n{spec.describe()}\n{values}")
        draws = result.draws[d.name]
        assert draws.shape == (2, 3, *d.shape) and np.isin(draws, d.support).all()


@_examples(6)
@given(spec=models(max_discrete=2), seed=hst.integers(0, 2**16))
def test_conditional_probabilities_are_exact(spec, seed):
    _check_conditionals(spec, seed)


@pytest.mark.parametrize(
    "case",
    [
        "sum",
        "two discrete latents",
        "discrete child of a discrete parent",
        "latent child of a vector",
        "rows of a child read one element each",
        "a child broadcast from the right",
        "a discrete child of each element",
        "a discrete child of each element and a child of both",
        "indexed mixture of rows",
        "indexed mixture of columns",
        "stacked mixture of rows",
    ],
)
def test_pattern_conditionals_are_exact(case):
    _check_conditionals(PATTERN_CASES[case], seed=3)


def test_joint_vector_conditionals_are_over_configurations():
    # z ~ bernoulli(.3, size=2), y ~ N(theta + z.sum(), 1): the elements are summed out jointly.
    srng = at.random.RandomStream(0)
    theta_rv = srng.normal(0.0, 2.0, name="theta")
    z_rv = srng.bernoulli(0.3, size=2, name="z")
    y_rv = srng.normal(theta_rv + z_rv.sum(), 1.0, name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: 1.5}, mode=FAST)
    result = sampler.sample(2, n_chains=2, seed=0, warmup=10, loop="scan", start="prior")
    p = result.conditional_probabilities["z"]
    assert p.shape == (2, 2, 4)
    theta = result.draws["theta"]
    lik = st.norm(theta[..., None] + np.array([0, 1, 1, 2]), 1).logpdf(1.5)
    prior = np.log([0.49, 0.21, 0.21, 0.09])
    exact = np.exp(prior + lik - logsumexp(prior + lik, axis=-1, keepdims=True))
    assert_exact(p, exact, tol=1e-8)
