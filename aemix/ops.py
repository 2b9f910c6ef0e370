"""Placeholder Ops for marginalized sub-graphs, and their densities.

A marginalization rule replaces a sub-graph such as ``X[I]`` (with ``I`` a discrete random variable) by
the output of a placeholder Op.  The placeholder keeps the discrete variable and the mixture components
as inputs, so that the marginalized variables stay visible (for `Sampler.explain` and for recovering
them from their conditionals), and its log-density is attached through aeppl's `_logprob` dispatch,
following the pattern of aeppl's own `MixtureRV`: aeppl's `joint_logprob` does the density work.
"""

from __future__ import annotations

import aesara.tensor as at
from aeppl.abstract import MeasurableVariable
from aeppl.logprob import _logprob, logprob
from aesara.graph.basic import Apply, Variable
from aesara.graph.op import Op
from aesara.tensor.math import Max
from aesara.tensor.type import TensorType

__all__ = [
    "MarginalMixtureRV",
    "logsumexp",
    "mixture_component_logprobs",
    "marginal_conditional_logprobs",
]


def logsumexp(x: Variable, axis: int) -> Variable:
    """Numerically stable ``log(sum(exp(x), axis))`` that is ``-inf`` (not NaN) when every term is.

    `aesara.tensor.logsumexp` is the naive formula and relies on a compile-time rewrite for stability;
    the densities here must be stable in the graph itself, before any rewrite (and after batching).
    """
    x = at.as_tensor_variable(x)
    axis = axis % x.ndim
    x_max = Max(axis=(axis,))(x)
    x_max = at.switch(at.isinf(x_max), 0.0, x_max)
    return at.log(at.sum(at.exp(x - at.shape_padaxis(x_max, axis)), axis=axis)) + x_max


class MarginalMixtureRV(Op):
    """The marginal of ``X[I]`` (or ``stack(X_1, ..., X_K)[I]``) with ``I ~ Categorical(p)`` summed out.

    Inputs are ``(I, X)`` when ``stacked`` is false, where ``X`` is a random variable whose elements
    along its first axis are independent components, or ``(I, X_1, ..., X_K)`` when ``stacked`` is
    true.  The output has the type of one component.  This Op only stands for a density: it cannot be
    evaluated (forward samples come from the original model graph).
    """

    __props__ = ("stacked",)

    def __init__(self, stacked: bool):
        self.stacked = stacked
        super().__init__()

    def make_node(self, index, *components):
        index = at.as_tensor_variable(index)
        components = [at.as_tensor_variable(c) for c in components]
        if self.stacked:
            out_type = components[0].type
        else:
            (mixed,) = components
            out_type = TensorType(mixed.type.dtype, shape=mixed.type.shape[1:])
        return Apply(self, [index, *components], [out_type()])

    def perform(self, node, inputs, outputs):
        raise NotImplementedError(
            "MarginalMixtureRV is a density placeholder and cannot be evaluated"
        )

    def __str__(self):
        return "MarginalMixture"


MeasurableVariable.register(MarginalMixtureRV)


def categorical_log_weights(index: Variable) -> Variable:
    """``log p`` of the categorical random variable ``index``, on the value variables' side."""
    return at.log(index.owner.inputs[-1])


def mixture_component_logprobs(op: MarginalMixtureRV, components, value) -> Variable:
    """Log-density of ``value`` under each component, stacked on a new leading axis of length ``K``."""
    if op.stacked:
        return at.stack([logprob(component, value) for component in components])
    (mixed,) = components
    # Every element of `mixed` along its first axis is one component, evaluated at the same value.
    return logprob(mixed, at.broadcast_to(at.shape_padleft(value), mixed.shape))


def marginal_conditional_logprobs(op: MarginalMixtureRV, value, index, *components):
    """Return ``log P(I = k | value)`` for every ``k`` (leading axis) and ``log p(value)``.

    Both are graphs in the value variables of the model; the first is what recovers the marginalized
    index from its conditional, the second is the marginal log-density.
    """
    log_weights = categorical_log_weights(index)
    joint = at.shape_padright(log_weights, value.ndim) + mixture_component_logprobs(
        op, components, value
    )
    marginal = logsumexp(joint, axis=0)
    return joint - marginal, marginal


@_logprob.register(MarginalMixtureRV)
def marginal_mixture_logprob(op, values, index, *components, **kwargs):
    r"""Log-density of a marginal mixture: :math:`\log \sum_k p_k \, p_{X_k}(y)`."""
    (value,) = values
    return marginal_conditional_logprobs(op, value, index, *components)[1]
