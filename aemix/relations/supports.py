"""Finite supports of discrete distributions: the facts the enumeration rule sums over."""

from __future__ import annotations

import numpy as np
from aesara.graph.basic import Constant
from aesara.tensor.random.basic import (
    bernoulli,
    betabinom,
    binomial,
    categorical,
    geometric,
    hypergeometric,
    integers,
    nbinom,
    poisson,
)
from kanren import conde, eq, lall, var
from unification import isvar, reify, unify

from aemix.relations.patterns import rv_et

__all__ = ["finite_supporto", "unbounded_supporto", "applyo"]


def applyo(fn, *terms_and_out):
    """A goal unifying the last term with ``fn(*ground values of the other terms)``.

    It fails when an input is unbound or when ``fn`` returns ``None`` (no answer for these values).
    """
    *terms, out = terms_and_out

    def goal(s):
        values = [reify(t, s) for t in terms]
        if any(isvar(v) for v in values):
            return
        result = fn(*values)
        if result is None:
            return
        s_new = unify(out, result, s)
        if s_new is not False:
            yield s_new

    return goal


def _constant(x):
    if isinstance(x, Constant):
        return np.asarray(x.data)
    return None


def static_length(x) -> int | None:
    """The length of ``x``'s last axis when its shape does not depend on random values.

    Aesara often loses static lengths (``T[I]`` of a constant matrix has type shape ``(None,)``);
    the shape graph, rewritten with shape inference, is then a constant.
    """
    from aesara.graph.rewriting.utils import rewrite_graph
    from aesara.tensor.basic import get_scalar_constant_value
    from aesara.tensor.exceptions import NotScalarConstantError

    length = rewrite_graph(_cut_at_random(x).shape[-1], include=("canonicalize", "ShapeOpt"))
    try:
        return int(get_scalar_constant_value(length))
    except NotScalarConstantError:
        return None


def _cut_at_random(x):
    """``x``'s graph with its random ancestors of known static shape replaced by fresh variables.

    Shape inference only needs their shapes, and the graph above them can be long (the states of a
    Markov chain before this one): without the cut, finding every state's support costs
    quadratic time in the chain's length.
    """
    from aeppl.abstract import MeasurableVariable
    from aesara.graph.basic import clone_replace

    replacements, stack, seen = {}, [x], set()
    while stack:
        v = stack.pop()
        if v in seen or v.owner is None:
            continue
        seen.add(v)
        if isinstance(v.owner.op, MeasurableVariable) and None not in v.type.shape:
            replacements[v] = v.type()
            continue
        stack.extend(v.owner.inputs)
    return clone_replace(x, replacements) if replacements else x


def _categorical_support(p):
    k = p.type.shape[-1]
    if k is None:
        k = static_length(p)
    return None if k is None else range(k)


def _range_support(low, high):
    low, high = _constant(low), _constant(high)
    if low is None or high is None or low.ndim or high.ndim:
        return None
    return range(int(low), int(high))


def _binomial_support(n):
    n = _constant(n)
    if n is None or n.ndim:
        return None
    return range(int(n) + 1)


def _hypergeometric_support(good, bad, n):
    good, bad, n = _constant(good), _constant(bad), _constant(n)
    if good is None or bad is None or n is None or good.ndim or bad.ndim or n.ndim:
        return None
    return range(max(0, int(n) - int(bad)), min(int(n), int(good)) + 1)


def finite_supporto(rv_et_, support_lv):
    r"""Relate a discrete random variable with finite support to that support.

    .. math::

        \frac{D \sim \operatorname{Bern}(p) \mid \operatorname{Cat}(p_{1:K}) \mid
              \operatorname{integers}(a, b) \mid \operatorname{Bin}(n, p) \mid
              \operatorname{BetaBin}(n, \alpha, \beta) \mid \operatorname{HyperGeom}(g, b, n)}
             {\operatorname{supp} D = \{0, 1\} \mid \{0..K-1\} \mid \{a..b-1\} \mid \{0..n\}
              \mid \{0..n\} \mid \{\max(0, n - b)..\min(n, g)\}}

    Bounds (``a``, ``b``, ``n``, ``g``) and ``K`` must be constants; otherwise there is no answer.

    Parameters
    ----------
    rv_et_
        The discrete random variable (or its expression tuple).
    support_lv
        Unified with the support, a `range` of the values (ranges unify by value, arrays do not,
        and a range of ``10**8`` values costs nothing until it is enumerated).
    """
    p_lv, low_lv, high_lv, n_lv = var(), var(), var(), var()
    return conde(
        [eq(rv_et_, rv_et(bernoulli, p_lv)), eq(support_lv, (0, 1))],
        [
            eq(rv_et_, rv_et(categorical, p_lv)),
            applyo(_categorical_support, p_lv, support_lv),
        ],
        [
            eq(rv_et_, rv_et(integers, low_lv, high_lv)),
            applyo(_range_support, low_lv, high_lv, support_lv),
        ],
        [
            lall(eq(rv_et_, rv_et(binomial, n_lv, p_lv))),
            applyo(_binomial_support, n_lv, support_lv),
        ],
        [
            eq(rv_et_, rv_et(betabinom, n_lv, low_lv, high_lv)),
            applyo(_binomial_support, n_lv, support_lv),
        ],
        [
            eq(rv_et_, rv_et(hypergeometric, low_lv, high_lv, n_lv)),
            applyo(_hypergeometric_support, low_lv, high_lv, n_lv, support_lv),
        ],
    )


def unbounded_supporto(rv_et_, low_lv):
    r"""Relate a count with unbounded support to the smallest value of its support.

    .. math::

        \frac{D \sim \operatorname{Pois}(\mu) \mid \operatorname{NB}(n, p) \mid
              \operatorname{Geom}(p)}
             {\operatorname{supp} D = \{0, 1, \ldots\} \mid \{0, 1, \ldots\} \mid
              \{1, 2, \ldots\}}

    Such a count cannot be enumerated as it stands: `aemix.truncation` chooses a finite range of it
    whose neglected mass is below a tolerance, and the enumeration sums over that range.

    Parameters
    ----------
    rv_et_
        The discrete random variable (or its expression tuple).
    low_lv
        Unified with the smallest value (``0``, or ``1`` for the geometric, which counts trials).
    """
    a_lv, b_lv = var(), var()
    return conde(
        [eq(rv_et_, rv_et(poisson, a_lv)), eq(low_lv, 0)],
        [eq(rv_et_, rv_et(nbinom, a_lv, b_lv)), eq(low_lv, 0)],
        [eq(rv_et_, rv_et(geometric, a_lv)), eq(low_lv, 1)],
    )
