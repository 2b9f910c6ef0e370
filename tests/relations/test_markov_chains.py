import aesara.tensor as at
import numpy as np
import pytest
from kanren import run, var

from aemix.relations import registry
from aemix.relations.markov_chains import markov_stepo

srng = at.random.RandomStream(0)
P = np.array([[0.9, 0.1], [0.2, 0.8]])
P_T = np.stack([P, P[::-1], P])
z0 = srng.categorical(np.array([0.5, 0.5]), name="z0")
rows = srng.dirichlet(np.ones((2, 2)), name="rows")


def step_of(state):
    previous, transition = var(), var()
    return run(0, (previous, transition), markov_stepo(state, previous, transition))


def test_the_rule_is_registered_as_a_chain_rule():
    assert registry["markov_chain"].kind == "chain"
    assert "forward algorithm" in registry["markov_chain"].description


@pytest.mark.parametrize(
    "row, matrix",
    [
        (at.as_tensor(P)[z0], P),
        (at.as_tensor(P_T)[1][z0], P_T[1]),
        (at.as_tensor(P_T)[2, z0], P_T[2]),
        (rows[z0], None),
    ],
    ids=["P[z]", "P[t][z]", "P[t, z]", "dirichlet-rows"],
)
def test_a_step_gives_its_previous_state_and_its_matrix(row, matrix):
    state = srng.categorical(row, name="z1")
    ((previous, transition),) = step_of(state)
    assert previous is z0
    if matrix is None:
        assert transition is rows
    else:
        np.testing.assert_array_equal(transition.eval(), matrix)


@pytest.mark.parametrize(
    "state",
    [
        # a first state: its probabilities are no row of a matrix
        srng.categorical(np.array([0.3, 0.7])),
        # a vector of states
        srng.categorical(at.as_tensor(P)[srng.categorical(np.array([0.5, 0.5]), size=3)]),
        # a row read from two states
        srng.categorical(at.as_tensor(P)[z0] * at.as_tensor(P)[srng.bernoulli(0.5)]),
        # a continuous previous variable
        srng.bernoulli(at.sigmoid(srng.normal(0.0, 1.0))),
    ],
    ids=["initial", "vector", "two-states", "continuous"],
)
def test_what_is_not_a_step(state):
    assert step_of(state) == ()


@pytest.mark.parametrize(
    "make, matrix",
    [
        # the row picked by something computed from the state: identical rows
        (lambda: srng.categorical(at.as_tensor(P)[z0 * 0 + 1]), np.stack([P[1], P[1]])),
        # a Bernoulli state: rows (1 - p(j), p(j))
        (lambda: srng.bernoulli(at.as_tensor(P)[z0, 1]), P),
        (lambda: srng.bernoulli(at.switch(z0, 0.7, 0.2)), np.array([[0.8, 0.2], [0.3, 0.7]])),
        # a categorical state after a Bernoulli one
        (lambda: srng.categorical(at.as_tensor(P)[srng.bernoulli(0.5, name="b0")]), P),
    ],
    ids=["computed-index", "bernoulli-row", "bernoulli-switch", "after-a-bernoulli"],
)
def test_any_row_of_the_previous_state_is_a_step_with_its_rows_stacked(make, matrix):
    ((previous, transition),) = step_of(make())
    assert previous.ndim == 0 and previous.owner.op.name in ("categorical", "bernoulli")
    np.testing.assert_allclose(transition.eval(), matrix, rtol=1e-6)
