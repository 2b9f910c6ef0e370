import aesara.tensor as at
import numpy as np
import pytest
from aesara.graph.rewriting.unify import eval_if_etuple
from kanren import run, var

from aemix.ops import MarginalMixtureRV
from aemix.relations import registry
from aemix.relations.mixtures import indexed_mixtureo
from tests.helpers import seed_model


def marginal_of(term):
    q = var()
    return [eval_if_etuple(r) for r in run(0, q, indexed_mixtureo(term, q))]


def test_registry_lists_the_rule():
    assert "indexed_mixture" in list(registry)
    assert registry["indexed_mixture"].relation is indexed_mixtureo
    assert "Relate an indexed mixture" in registry["indexed_mixture"].description


def test_registry_rejects_duplicate_names_and_accepts_user_rules():
    with pytest.raises(KeyError, match="indexed_mixture"):
        registry.register("indexed_mixture", indexed_mixtureo)

    def never(model_et, marginal_et):
        from kanren import fail

        return fail

    registry.register("user_rule", never)
    try:
        assert list(registry)[-1] == "user_rule"
    finally:
        registry.unregister("user_rule")
    assert "user_rule" not in registry


def test_vector_components():
    N_rv, I_rv, Y_rv = seed_model()
    (marginal,) = marginal_of(Y_rv)
    assert isinstance(marginal.owner.op, MarginalMixtureRV)
    assert marginal.owner.op.stacked is False
    assert marginal.owner.inputs == [I_rv, N_rv]
    assert marginal.type.dtype == Y_rv.type.dtype and marginal.ndim == 0


def test_stacked_scalar_components():
    srng = at.random.RandomStream(1)
    A_rv, B_rv = srng.normal(0, 1, name="A"), srng.gamma(2.0, 1.0, name="B")
    I_rv = srng.categorical(np.array([0.5, 0.5]), name="I")
    (marginal,) = marginal_of(at.stack([A_rv, B_rv])[I_rv])
    assert marginal.owner.op.stacked is True
    assert marginal.owner.inputs == [I_rv, A_rv, B_rv]


def test_matrix_components_mix_over_first_axis():
    srng = at.random.RandomStream(2)
    X_rv = srng.normal(np.zeros((3, 2)), 1.0)
    I_rv = srng.categorical(np.ones(3) / 3)
    (marginal,) = marginal_of(X_rv[I_rv])
    assert marginal.ndim == 1 and marginal.owner.op.axis == 0


def test_a_column_picked_by_the_index_mixes_over_the_second_axis():
    srng = at.random.RandomStream(2)
    X_rv = srng.normal(np.zeros((2, 3)), 1.0)
    I_rv = srng.categorical(np.ones(3) / 3)
    (marginal,) = marginal_of(X_rv[:, I_rv])
    assert marginal.owner.op.axis == 1 and marginal.type.shape == (2,)
    (marginal,) = marginal_of(X_rv[I_rv, :])
    assert marginal.owner.op.axis == 0


def test_no_match_when_the_index_picks_with_a_partial_slice():
    srng = at.random.RandomStream(2)
    X_rv = srng.normal(np.zeros((3, 3)), 1.0)
    I_rv = srng.categorical(np.ones(3) / 3)
    assert marginal_of(X_rv[1:, I_rv]) == []


@pytest.mark.parametrize(
    "make_index",
    [
        pytest.param(lambda srng: srng.poisson(1.0), id="poisson-index"),
        pytest.param(lambda srng: at.lscalar("i"), id="non-random-index"),
        pytest.param(lambda srng: at.as_tensor(2), id="constant-index"),
    ],
)
def test_no_match_when_index_is_not_categorical(make_index):
    srng = at.random.RandomStream(3)
    N_rv = srng.normal(np.zeros(4), 1.0)
    assert marginal_of(N_rv[make_index(srng)]) == []


def test_no_match_on_non_random_or_dependent_components():
    srng = at.random.RandomStream(4)
    I_rv = srng.categorical(np.ones(4) / 4)
    # Components that are data, not random variables.
    assert marginal_of(at.as_tensor(np.arange(4.0))[I_rv]) == []
    # A multivariate component (elements not independent).
    X_rv = srng.multivariate_normal(np.zeros(4), np.eye(4))
    assert marginal_of(X_rv[I_rv]) == []
    # A stack that includes a constant.
    assert marginal_of(at.stack([srng.normal(0, 1), at.as_tensor(1.0)])[I_rv]) == []


def test_no_match_on_other_expressions():
    N_rv, I_rv, Y_rv = seed_model()
    assert marginal_of(N_rv) == []
    assert marginal_of(at.exp(Y_rv)) == []
    assert marginal_of(N_rv[1:]) == []
