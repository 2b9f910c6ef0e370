"""Expression-tuple patterns and small goals shared by the relations.

Patterns are built here, in one place, so that every relation spells an Aesara sub-graph the same way.
"""

from __future__ import annotations

from collections.abc import Callable

from aesara.tensor.random.op import RandomVariable
from etuples import etuple, etuplize
from kanren import var
from unification import isvar, reify

__all__ = ["rv_et", "predicateo", "is_rv", "is_measurable", "is_elementwise_rv"]


def rv_et(rv_op, *params_et):
    """Pattern for the output of the random variable Op ``rv_op`` with parameters ``params_et``.

    The generator, size and dtype inputs are fresh logic variables: a pattern about a distribution
    does not care which stream drew it.
    """
    rng_lv, size_lv, dtype_lv = var(), var(), var()
    return etuple(etuplize(rv_op), rng_lv, size_lv, dtype_lv, *params_et)


def predicateo(predicate: Callable[..., bool], *terms):
    """A goal that succeeds when ``predicate`` holds for the (ground) values of ``terms``.

    It fails, rather than guessing, when a term is still an unbound logic variable, so it must come
    after the goals that bind its terms.
    """

    def goal(s):
        values = [reify(term, s) for term in terms]
        if any(isvar(value) for value in values):
            return
        if predicate(*values):
            yield s

    return goal


def is_rv(x) -> bool:
    """Whether ``x`` is an output of a `RandomVariable` node."""
    owner = getattr(x, "owner", None)
    return owner is not None and isinstance(owner.op, RandomVariable)


def is_measurable(x) -> bool:
    """Whether ``x`` is an output of a node aeppl can give a density (random or marginal variable)."""
    from aeppl.abstract import MeasurableVariable

    owner = getattr(x, "owner", None)
    return owner is not None and isinstance(owner.op, MeasurableVariable)


def is_elementwise_rv(x) -> bool:
    """Whether ``x`` is a random variable whose elements are mutually independent given its inputs.

    That holds for every `RandomVariable` with scalar support (``ndim_supp == 0``): normal, gamma,
    poisson, ... with array parameters.
    """
    return is_rv(x) and x.owner.op.ndim_supp == 0 and x.ndim >= 1
