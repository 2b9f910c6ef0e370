"""The gradient of a one-chain log-density with respect to the flat position.

Gradient kernels (`aemix.kernels.mala`, `aemix.kernels.hmc`) need ``d log p / d x`` of the marginal
log-density: it is smooth in the continuous latents once the discrete ones are summed out.  It is
Aesara's reverse mode (`aesara.grad`) of the one-chain graph, so it is a one-chain graph like the
density itself: `aemix.vectorize` batches it over chains and `aemix.scalarize` lowers it to scalar
code (both have rules for the Ops reverse mode produces: ``inc_subtensor`` and its advanced forms,
``split``).

A parameter check of aeppl's densities (``sigma > 0``) is a NaN where it fails, not an exception: a
gradient kernel's trajectory can diverge to where a scale underflows to 0, and the kernel rejects
that proposal (the fused loop lowers a check the same way).

Aesara 2.9 has no gradient for a maximum written as a reduction (``Max``), which aemix's marginal
densities use as the shift of a ``logsumexp``: before differentiating, each such maximum is rebuilt as
``max_and_argmax``, whose gradient (the indicator of the maximum) Aesara has.  Where the maximum is a
shift the gradient through it cancels exactly, whatever it is.
"""

from __future__ import annotations

import aesara
import aesara.tensor as at
import numpy as np
from aesara.graph.basic import Variable, clone_replace, io_toposort
from aesara.tensor.math import Max, max_and_argmax

from aemix.errors import GradientError
from aemix.logdensity import checks_as_values

__all__ = ["logdensity_and_gradient"]


def logdensity_and_gradient(logdensity: Variable, position: Variable) -> tuple[Variable, Variable]:
    """``(logdensity, gradient)``: the log-density (rebuilt so that it can be differentiated) and
    its gradient with respect to ``position``, both graphs in ``position``.

    Parameters
    ----------
    logdensity
        Scalar graph of one chain's log-density.
    position
        The flat position it is a function of.

    Examples
    --------
    >>> import aesara.tensor as at
    >>> x = at.vector("x")
    >>> lp, grad = logdensity_and_gradient(-0.5 * (x**2).sum() + at.max(x), x)
    >>> grad.eval({x: [1.0, 3.0]}).tolist()
    [-1.0, -2.0]
    """
    # A parameter check that fails (a scale whose exp underflows to 0 in a trajectory that
    # diverges) makes the density NaN, which the kernel rejects, as the fused loop's lowering of
    # the check does; raised, it would stop the whole run.
    (logdensity,), _ = checks_as_values([logdensity], np.nan)
    replacements = {}
    for node in io_toposort([position], [logdensity]):
        if isinstance(node.op, Max):
            (x,) = node.inputs
            axis = tuple(range(x.ndim)) if node.op.axis is None else tuple(node.op.axis)
            replacements[node.outputs[0]] = max_and_argmax(x, axis=list(axis))[0]
    if replacements:
        (logdensity,) = clone_replace([logdensity], replacements)
    try:
        gradient = aesara.grad(logdensity, position)
    except NotImplementedError as exc:
        raise GradientError(_why_no_gradient(logdensity, position)) from exc
    return logdensity, at.as_tensor_variable(gradient)


def _why_no_gradient(logdensity: Variable, position: Variable) -> str:
    from aesara.graph.op import Op

    from aemix.errors import describe_operation

    missing = {
        describe_operation(node.op)
        for node in io_toposort([position], [logdensity])
        if type(node.op).grad is Op.grad and type(node.op).L_op is Op.L_op
    }
    what = ", ".join(sorted(missing)) or "an operation of the log-density"
    return (
        f"the gradient kernels (mala, hmc) need the gradient of the log-density, and aemix has no "
        f"gradient for {what}; sample with kernel='rmh' (the random walk, the default)"
    )
