"""Relations between a categorical state and the state and transition matrix it is drawn from."""

from __future__ import annotations

import aesara.tensor as at
from aesara.scalar import ScalarType
from aesara.tensor.basic import scalar_from_tensor
from aesara.tensor.random.basic import categorical
from aesara.tensor.subtensor import Subtensor
from etuples import etuple, etuplize
from kanren import conde, eq, lall, run, var

from aemix.relations.patterns import is_rv, predicateo, rv_et
from aemix.relations.supports import applyo

__all__ = ["markov_stepo", "state_values", "state_probabilities"]


def _is_state(x) -> bool:
    """Whether ``x`` is a scalar categorical random variable (a state of a chain)."""
    return is_rv(x) and x.ndim == 0 and x.owner.op.name == "categorical"


def _is_any_state(x) -> bool:
    """Whether ``x`` is a scalar categorical or Bernoulli random variable."""
    return is_rv(x) and x.ndim == 0 and x.owner.op.name in ("categorical", "bernoulli")


def state_values(x) -> int | None:
    """The number of values of a state: 2 for a Bernoulli, the length of a categorical's
    probabilities when it is known before any value is."""
    from aemix.markov import constant_length

    if x.owner.op.name == "bernoulli":
        return 2
    return constant_length(x.owner.inputs[-1])


def state_probabilities(x):
    """The probability vector a state is drawn from: a categorical's, or ``(1 - p, p)``."""
    p = x.owner.inputs[-1]
    if x.owner.op.name == "bernoulli":
        if p.ndim != 0:
            return None
        return at.stack([1 - p, p])
    return p


def _general_step(state):
    """``(previous, P)`` for a state drawn from a function of one earlier state: a categorical
    ``categorical(f(z_prev))`` or a Bernoulli ``bernoulli(g(z_prev))`` (then ``f = (1 - g,
    g)``), with ``P[j] = f(j)`` built by evaluating ``f`` at each value ``j`` of ``z_prev``
    (``softmax(W[z_prev])``, ``switch(z_prev, .7, .2)``, ``P[z_prev, 1]``); else ``None``."""
    from aesara.graph.basic import clone_replace

    if not _is_any_state(state):
        return None
    row = state_probabilities(state)
    if row is None:
        return None
    previous, stack, seen = [], [state.owner.inputs[-1]], set()
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if is_rv(v):
            if v.type.dtype.startswith(("int", "uint")):
                previous.append(v)
            continue
        if v.owner is not None:
            stack.extend(v.owner.inputs)
    if len(previous) != 1 or not _is_any_state(previous[0]):
        return None
    (prev,) = previous
    k = state_values(prev)
    if k is None or state_values(state) != k:
        return None
    rows = [clone_replace(row, {prev: at.constant(j, dtype=prev.type.dtype)}) for j in range(k)]
    return prev, at.stack(rows)


def _indexes_axes(op, n: int) -> bool:
    """Whether ``op`` is a `Subtensor` by ``n`` scalar indices (no slices)."""
    return (
        isinstance(op, Subtensor)
        and len(op.idx_list) == n
        and all(isinstance(i, ScalarType) for i in op.idx_list)
    )


def _row_of_time(stacked, time):
    """The matrix ``stacked[time]`` of a time-varying ``(T, K, K)`` transition."""
    if stacked.ndim != 3:
        return None
    return at.as_tensor_variable(stacked)[time]


def markov_stepo(state_et, previous_et, transition_et):
    r"""Relate a categorical state to the state before it and the transition matrix it reads:
    one step of a Markov chain, which the forward algorithm sums out.

    .. math::

        \frac{Z_t \sim \operatorname{Cat}(P_t[Z_{t-1}, :]), \quad Z_{t-1} \text{ a categorical
              scalar}, \quad P_t \text{ a } K \times K \text{ matrix}}
             {p(z_t \mid z_{t-1}) = P_t[z_{t-1}, z_t] / \textstyle\sum_k P_t[z_{t-1}, k]}

    ``P_t[Z_{t-1}]`` is written ``P[z_prev]`` (a constant or latent matrix, e.g. stacked
    Dirichlet rows), ``P[t][z_prev]`` or ``P[t, z_prev]`` (time-varying: ``transition_et`` is
    then the matrix ``P[t]``).  A sequence of such steps from a first categorical state is a
    Markov chain: with emissions that read one state each, its states are summed out by the
    forward algorithm in ``O(T K^2)`` (`aemix.markov`).

    Any other state drawn from a function of one earlier scalar state alone (a Bernoulli
    ``bernoulli(P[z_prev, 1])`` or ``bernoulli(switch(z_prev, .7, .2))``, a categorical
    ``categorical(softmax(W[z_prev]))``; a Bernoulli has the two values ``0, 1``) is a step
    too: ``P_t`` is then the stack of its probabilities at each value of ``Z_{t-1}``.

    Parameters
    ----------
    state_et
        The term to match: a scalar categorical (or Bernoulli) random variable ``Z_t``.
    previous_et
        Unified with ``Z_{t-1}``, a scalar categorical (or Bernoulli) random variable.
    transition_et
        Unified with the ``K x K`` matrix ``P_t`` (a graph that reads no state).
    """
    return conde(
        [_matrix_stepo(state_et, previous_et, transition_et)],
        # Any other row of the previous state (a Bernoulli state, softmax(W[z_prev]), ...): the
        # matrix of its rows at each value of the previous state.
        [
            predicateo(_not_a_matrix_step, state_et),
            applyo(_general_step, state_et, (previous_et, transition_et)),
        ],
    )


def _not_a_matrix_step(state) -> bool:
    previous, transition = var(), var()
    return not run(1, (previous, transition), _matrix_stepo(state, previous, transition))


def _matrix_stepo(state_et, previous_et, transition_et):
    """`markov_stepo` for a row of a matrix picked by the previous state: ``P[z_prev]``,
    ``P[t][z_prev]``, ``P[t, z_prev]``."""
    row_lv, op_lv, matrix_lv, time_lv = var(), var(), var(), var()
    previous_index = etuple(etuplize(scalar_from_tensor), previous_et)
    return lall(
        eq(state_et, rv_et(categorical, row_lv)),
        conde(
            # P[z_prev] and P[t][z_prev]: the matrix is P, or the existing sub-graph P[t].
            [
                eq(row_lv, etuple(op_lv, transition_et, previous_index)),
                predicateo(lambda op: _indexes_axes(op, 1), op_lv),
            ],
            # P[t, z_prev]
            [
                eq(row_lv, etuple(op_lv, matrix_lv, time_lv, previous_index)),
                predicateo(lambda op: _indexes_axes(op, 2), op_lv),
                applyo(_row_of_time, matrix_lv, time_lv, transition_et),
            ],
        ),
        predicateo(_is_state, previous_et),
        predicateo(lambda p: getattr(p, "ndim", None) == 2, transition_et),
    )
