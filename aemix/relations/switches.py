"""Relations between Bernoulli switches and their marginals."""

from __future__ import annotations

import aesara.tensor as at
from aesara.tensor.elemwise import DimShuffle
from aesara.tensor.random.basic import bernoulli
from etuples import etuple, etuplize
from kanren import conde, eq, lall, var

from aemix.ops import MarginalSwitchRV, constant_branch_value
from aemix.relations.patterns import is_rv, predicateo, rv_et

__all__ = ["switch_mixtureo"]


def _is_component(x, out_shape) -> bool:
    return is_rv(x) and x.owner.op.ndim_supp == 0 and x.type.shape == out_shape


def _valid_branches(switch, on_true, on_false) -> bool:
    out_shape = at.switch(switch, on_true, on_false).type.shape
    if None in out_shape or switch.type.shape not in (out_shape, ()):
        return False
    constants = [constant_branch_value(b) is not None for b in (on_true, on_false)]
    if all(constants):
        return False
    components = [b for b, c in zip((on_true, on_false), constants) if not c]
    # A point mass beside a density is a hurdle: its density is with respect to Lebesgue measure
    # plus a unit mass at the constant (see `aemix.ops`); the sampler refuses it as a latent.
    return all(_is_component(b, out_shape) for b in components)


def switch_mixtureo(model_et, marginal_et):
    r"""Relate a Bernoulli switch ``switch(B, X, Y)`` to its marginal over ``B``.

    .. math::

        \frac{Z = \operatorname{switch}(B, X, Y), \quad B \sim \operatorname{Bern}(p), \quad
              X, Y \text{ independent, elementwise}}
             {\log p(z) = \operatorname{logsumexp}\left(\log p + \log p_X(z),
                                                       \log(1 - p) + \log p_Y(z)\right)}

    A branch may be a constant ``c``, a point mass (``log p_c(z) = 0`` if ``z = c`` else
    ``-inf``): zero-inflated counts, ``switch(B, 0, Poisson)``, or, beside a continuous branch, a
    hurdle density with respect to Lebesgue measure plus a unit mass at ``c``.
    ``B`` has the output's shape (one switch per element) or is a scalar (one switch for all).

    Parameters
    ----------
    model_et
        The term to match.
    marginal_et
        Unified with the expression tuple applying `MarginalSwitchRV` to ``(B, X, Y)``.
    """
    cond_lv, switch_lv, on_true_lv, on_false_lv, p_lv = var(), var(), var(), var(), var()
    return lall(
        eq(model_et, etuple(etuplize(at.switch), cond_lv, on_true_lv, on_false_lv)),
        conde(
            [eq(cond_lv, switch_lv)],
            # A scalar switch broadcast against array branches.
            [eq(cond_lv, etuple(etuple(DimShuffle, var(), var(), var()), switch_lv))],
        ),
        eq(switch_lv, rv_et(bernoulli, p_lv)),
        predicateo(_valid_branches, switch_lv, on_true_lv, on_false_lv),
        eq(marginal_et, etuple(MarginalSwitchRV(), switch_lv, on_true_lv, on_false_lv)),
    )
