"""Relations between a time index compared with a discrete scalar and the change point it makes."""

from __future__ import annotations

import aesara.tensor as at
import numpy as np
from aesara.graph.basic import Constant
from aesara.tensor.basic import ARange
from aesara.tensor.elemwise import DimShuffle
from etuples import etuple, etuplize
from kanren import conde, eq, lall, var

from aemix.ops import Cut
from aemix.relations.patterns import is_rv, predicateo
from aemix.relations.supports import applyo

__all__ = ["change_pointo", "time_index"]


def time_index(x) -> tuple[int, int] | None:
    """``(first, length)`` when ``x`` is the vector ``first, first + 1, ..., first + length - 1``.

    ``x`` is ``arange(first, first + length)`` with constant bounds and step 1, or a constant
    vector holding those integers (``np.arange(T)`` written into the graph).
    """
    owner = getattr(x, "owner", None)
    if owner is not None and isinstance(owner.op, ARange):
        bounds = [i.data for i in owner.inputs if isinstance(i, Constant)]
        if len(bounds) != 3 or any(np.ndim(b) for b in bounds) or bounds[2] != 1:
            return None
        start, stop = (float(b) for b in bounds[:2])
        if start != int(start) or stop != int(stop):
            return None
        return int(start), max(int(stop) - int(start), 0)
    if isinstance(x, Constant):
        data = np.asarray(x.data)
        if data.ndim != 1 or not len(data) or not np.all(data == np.round(data)):
            return None
        first = int(data[0])
        if np.array_equal(data, first + np.arange(len(data))):
            return first, len(data)
    return None


def _is_discrete_scalar(x) -> bool:
    return is_rv(x) and x.ndim == 0 and x.type.dtype.startswith(("int", "uint"))


def _cut(index, offset) -> Cut | None:
    found = time_index(index)
    if found is None or found[1] == 0:
        return None
    first, length = found
    return Cut(length=length, shift=offset - first)


def change_pointo(mask_et, discrete_et, cut_lv):
    r"""Relate a mask that compares a time index with a discrete scalar ``D`` to where it changes.

    .. math::

        \frac{m_t = [\,i_t \lessgtr D\,], \quad i_t = f + t,\ t = 0..T-1, \quad
              D \text{ a discrete scalar}}
             {m_t = m_t|_{D = T - s} \text{ for } t < D + s, \qquad
              m_t = m_t|_{D = -s} \text{ for } t \ge D + s}

    with ``s = -f`` for ``i < D``, ``i >= D``, ``D > i``, ``D <= i`` and ``s = 1 - f`` for
    ``i <= D``, ``i > D``, ``D >= i``, ``D < i``: the mask is one constant before the cut
    ``D + s`` and another after it, whichever comparison (and whichever branch order of the
    ``switch`` that reads it).  ``i`` is ``arange(f, f + T)`` with constant bounds, or that vector
    as a constant.  So a child ``y_t`` that reads ``D`` only through ``m_t`` has
    ``log p(y | D = k) = P_1[n_k] + S_2[n_k]``, ``n_k = clip(k + s, 0, T)``, with ``P_1`` the
    prefix sums of its elements' log-densities in the first regime and ``S_2`` the suffix sums in
    the second: ``O(T + K)`` for the ``K`` values of ``D``, not ``O(T K)``.

    Parameters
    ----------
    mask_et
        The term to match: a comparison of a time index with ``D`` (or ``D`` broadcast).
    discrete_et
        The discrete scalar random variable ``D``.
    cut_lv
        Unified with the `aemix.ops.Cut` ``(T, s)`` of the mask (its time axis is ``0``).
    """
    index_lv, d_lv, offset_lv = var(), var(), var()

    def compare(op, left, right, offset):
        return [eq(mask_et, etuple(etuplize(op), left, right)), eq(offset_lv, offset)]

    return lall(
        conde(
            compare(at.lt, index_lv, d_lv, 0),
            compare(at.ge, index_lv, d_lv, 0),
            compare(at.gt, d_lv, index_lv, 0),
            compare(at.le, d_lv, index_lv, 0),
            compare(at.le, index_lv, d_lv, 1),
            compare(at.gt, index_lv, d_lv, 1),
            compare(at.ge, d_lv, index_lv, 1),
            compare(at.lt, d_lv, index_lv, 1),
        ),
        conde(
            [eq(d_lv, discrete_et)],
            # The scalar broadcast against the index.
            [eq(d_lv, etuple(etuple(DimShuffle, var(), var(), var()), discrete_et))],
        ),
        predicateo(_is_discrete_scalar, discrete_et),
        applyo(_cut, index_lv, offset_lv, cut_lv),
    )
