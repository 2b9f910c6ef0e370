import aesara.tensor as at
import numpy as np
import pytest
from kanren import run, var

from aemix.relations import registry
from aemix.relations.supports import finite_supporto, unbounded_supporto

srng = at.random.RandomStream(0)


def support_of(rv):
    q = var()
    return run(0, q, finite_supporto(rv, q))


@pytest.mark.parametrize(
    "rv,expected",
    [
        (srng.bernoulli(0.3, size=5), (0, 1)),
        (srng.categorical(np.ones(3) / 3, size=4), (0, 1, 2)),
        (srng.integers(2, 6), (2, 3, 4, 5)),
        (srng.binomial(3, 0.5), (0, 1, 2, 3)),
        (srng.betabinom(4, 2.0, 3.0), (0, 1, 2, 3, 4)),
        # hypergeometric(good, bad, n): from max(0, n - bad) to min(n, good)
        (srng.hypergeometric(5, 4, 3), (0, 1, 2, 3)),
        (srng.hypergeometric(2, 1, 3), (2,)),
        (srng.hypergeometric(6, 2, 5), (3, 4, 5)),
    ],
)
def test_finite_supports(rv, expected):
    (support,) = support_of(rv)
    assert tuple(support) == expected


@pytest.mark.parametrize(
    "rv",
    [
        srng.poisson(1.0),
        srng.geometric(0.3),
        srng.integers(0, at.lscalar("n")),
        srng.binomial(at.lscalar("n"), 0.5),
        srng.hypergeometric(5, at.lscalar("bad"), 3),
        srng.normal(0, 1),
    ],
)
def test_no_finite_support(rv):
    assert support_of(rv) == ()


@pytest.mark.parametrize(
    "rv,low",
    [(srng.poisson(1.0), 0), (srng.negative_binomial(3.0, 0.4), 0), (srng.geometric(0.3), 1)],
)
def test_unbounded_supports(rv, low):
    q = var()
    assert run(0, q, unbounded_supporto(rv, q)) == (low,)


@pytest.mark.parametrize("rv", [srng.binomial(3, 0.5), srng.integers(0, 4), srng.normal(0, 1)])
def test_no_unbounded_support(rv):
    q = var()
    assert run(0, q, unbounded_supporto(rv, q)) == ()


def test_registry_kinds():
    assert [r.name for r in registry.rules("support")] == ["finite_support"]
    assert [r.name for r in registry.rules("unbounded")] == ["truncated_count"]
    assert {"indexed_mixture", "switch_mixture"} <= {r.name for r in registry.rules("rewrite")}
    with pytest.raises(ValueError, match="kind"):
        registry.register("bad", finite_supporto, kind="other")
