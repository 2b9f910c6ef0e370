"""Relations between a categorical state and the state and transition matrix it is drawn from."""

from __future__ import annotations

import aesara.tensor as at
from aesara.scalar import ScalarType
from aesara.tensor.basic import scalar_from_tensor
from aesara.tensor.random.basic import categorical
from aesara.tensor.subtensor import Subtensor
from etuples import etuple, etuplize
from kanren import conde, eq, lall, var

from aemix.relations.patterns import is_rv, predicateo, rv_et
from aemix.relations.supports import applyo

__all__ = ["markov_stepo"]


def _is_state(x) -> bool:
    """Whether ``x`` is a scalar categorical random variable (a state of a chain)."""
    return is_rv(x) and x.ndim == 0 and x.owner.op.name == "categorical"


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

    Parameters
    ----------
    state_et
        The term to match: a scalar categorical random variable ``Z_t``.
    previous_et
        Unified with ``Z_{t-1}``, a scalar categorical random variable.
    transition_et
        Unified with the ``K x K`` matrix ``P_t`` (a graph that reads no state).
    """
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
