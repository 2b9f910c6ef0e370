"""Relations between indexed mixtures and their marginals."""

from __future__ import annotations

from aesara.graph.basic import Constant
from aesara.tensor.basic import Join, MakeVector, ScalarFromTensor
from aesara.tensor.elemwise import DimShuffle
from aesara.tensor.random.basic import categorical
from aesara.tensor.subtensor import Subtensor
from cons import cons
from etuples import etuple
from kanren import conde, conso, eq, lall, var

from aemix.ops import MarginalMixtureRV
from aemix.relations.patterns import is_elementwise_rv, is_measurable, predicateo, rv_et
from aemix.relations.supports import applyo

__all__ = ["indexed_mixtureo"]


def _mixture_axis(idx_list):
    """The axis that ``X[idx_list]`` picks one element of, when it picks one and keeps every
    other axis whole (``X[I]``, ``X[:, I]``, ``X[I, :]``); else ``None``."""
    picked = [k for k, entry in enumerate(idx_list) if not isinstance(entry, slice)]
    whole = all(entry == slice(None) for entry in idx_list if isinstance(entry, slice))
    return picked[0] if len(picked) == 1 and whole else None


def _stacked_arrays(index, mixed):
    """``stack([X_1, ..., X_K])[I]`` of arrays of one shape, as the marginal's expression tuple.

    ``at.stack`` joins arrays along a new first axis, ``join(0, X_1[None], ..., X_K[None])``
    (scalars are a `MakeVector`, matched separately).
    """
    node = getattr(mixed, "owner", None)
    if node is None or not isinstance(node.op, Join):
        return None
    axis, *expanded = node.inputs
    if not isinstance(axis, Constant) or int(axis.data) != 0 or len(expanded) < 2:
        return None
    components = []
    for x in expanded:
        inner = x.owner
        if inner is None or not isinstance(inner.op, DimShuffle):
            return None
        (component,) = inner.inputs
        if inner.op.new_order != ("x", *range(component.ndim)) or not is_measurable(component):
            return None
        components.append(component)
    shapes = {c.type.shape for c in components}
    if len(shapes) != 1 or None in next(iter(shapes)):
        return None
    return etuple(MarginalMixtureRV(stacked=True), index, *components)


def _scalar_components(components) -> bool:
    return len(components) >= 2 and all(is_measurable(c) and c.ndim == 0 for c in components)


def indexed_mixtureo(model_et, marginal_et):
    r"""Relate an indexed mixture ``X[I]`` to its marginal over the categorical index ``I``.

    .. math::

        \frac{Y = X[I], \quad I \sim \operatorname{Cat}(p), \quad X_1, \dots, X_K \text{ independent}}
             {\log p(y) = \operatorname{logsumexp}_k \left(\log p_k + \log p_{X_k}(y)\right)}

    ``X`` is either one random variable with independent elements (scalar support, e.g.
    ``normal(loc, scale)`` with vector parameters; the mixture is over its first axis) or
    ``at.stack([X_1, ..., X_K])`` of random variables or marginal variables of one shape (so
    mixtures nest); an index that picks a whole row or column mixes the rows' (columns') joint
    densities.  The index must be a scalar categorical random variable.  Whether ``I`` and the
    components are used elsewhere, or observed, is a property of the whole graph and is checked by
    the rewrite that applies this relation, not here.

    Parameters
    ----------
    model_et
        The term to match (an Aesara variable or an expression tuple).
    marginal_et
        A logic variable (or term) unified with the marginal: an expression tuple applying
        `MarginalMixtureRV` to the index and the components.
    """
    mixed_lv, index_lv, p_lv, idx_list_lv = var(), var(), var(), var()
    stack_dtype_lv, components_lv, axis_lv, op_lv = var(), var(), var(), var()

    return lall(
        eq(
            model_et,
            etuple(
                etuple(Subtensor, idx_list_lv), mixed_lv, etuple(etuple(ScalarFromTensor), index_lv)
            ),
        ),
        eq(index_lv, rv_et(categorical, p_lv)),
        applyo(_mixture_axis, idx_list_lv, axis_lv),
        conde(
            [
                predicateo(is_elementwise_rv, mixed_lv),
                applyo(lambda axis: MarginalMixtureRV(stacked=False, axis=axis), axis_lv, op_lv),
                eq(marginal_et, etuple(op_lv, index_lv, mixed_lv)),
            ],
            [eq(axis_lv, 0), applyo(_stacked_arrays, index_lv, mixed_lv, marginal_et)],
            [
                eq(axis_lv, 0),
                conso(etuple(MakeVector, stack_dtype_lv), components_lv, mixed_lv),
                predicateo(_scalar_components, components_lv),
                eq(
                    marginal_et,
                    cons(MarginalMixtureRV(stacked=True), cons(index_lv, components_lv)),
                ),
            ],
        ),
    )
