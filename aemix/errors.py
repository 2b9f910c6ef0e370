"""Typed errors raised by aemix.

Every error names the variable it is about and says what is wrong, so that a modeller can find the
offending part of the model graph without reading aemix's internals.
"""

from __future__ import annotations


class AemixError(Exception):
    """Base class of every error aemix raises on purpose."""


class ModelError(AemixError, ValueError):
    """The model graph given to `build_sampler` is malformed (bad outputs, names or observations)."""

    def __init__(self, variable: str, reason: str):
        self.variable = variable
        self.reason = reason
        super().__init__(f"variable {variable!r}: {reason}")


class MarginalizationError(AemixError):
    """A discrete latent variable cannot be summed out exactly.

    Attributes
    ----------
    variable
        The name (or printed form) of the discrete variable.
    reason
        Why no marginalization rule applies to it.
    """

    def __init__(self, variable: str, reason: str):
        self.variable = variable
        self.reason = reason
        super().__init__(f"cannot marginalize discrete variable {variable!r}: {reason}")


class VectorizationError(AemixError):
    """A single-chain graph contains an operation that aemix cannot batch over chains."""

    def __init__(self, op: object, reason: str):
        self.op = op
        self.reason = reason
        super().__init__(
            f"cannot compute {describe_operation(op)} for many chains at once: {reason}"
        )


class ValuesError(AemixError, ValueError):
    """Values passed to `Sampler.logdensity` (or as initial points) do not fit the model."""

    def __init__(self, variable: str, reason: str):
        self.variable = variable
        self.reason = reason
        super().__init__(f"variable {variable!r}: {reason}")


class ConfigurationError(AemixError):
    """Aesara's configuration does not suit aemix (e.g. ``floatX`` is not float64)."""


class InitializationError(AemixError):
    """No initial point with a finite log-density was found for some chains."""


class GradientError(AemixError, ValueError):
    """A gradient kernel was asked for a model whose log-density aemix cannot differentiate."""


class FusedLoopError(AemixError):
    """The model's step does not lower to the fused C loop (``Sampler.sample(loop="fused")``)."""


class MemoryLimitError(AemixError):
    """The result `Sampler.sample` was asked for would be larger than its memory limit.

    Raised before anything is sampled; the message names the remedies (see `aemix.memory`).

    Attributes
    ----------
    estimated
        The result's estimated size in bytes (every kept variable's draws and the log-density).
    limit
        The limit in bytes (``max_memory``).
    largest
        ``(name, bytes)`` of the largest parts of the result, largest first.
    """

    def __init__(
        self, message: str, estimated: int, limit: int, largest: tuple[tuple[str, int], ...]
    ):
        self.estimated = estimated
        self.limit = limit
        self.largest = largest
        super().__init__(message)


# Operations a modeller writes, named as they write them (``at.sort``, ``x[idx]``), for messages.
_OPERATION_WORDS = {
    "Dot": "matrix product (dot, @)",
    "SortOp": "sort",
    "ArgSortOp": "argsort",
    "Softmax": "softmax",
    "SoftmaxGrad": "the gradient of softmax",
    "LogSoftmax": "log_softmax",
    "MaxAndArgmax": "max / argmax",
    "Subtensor": "indexing (x[i], x[a:b])",
    "AdvancedSubtensor": "indexing by an integer array (x[idx])",
    "AdvancedSubtensor1": "indexing by an integer array (x[idx])",
    "IncSubtensor": "set_subtensor / inc_subtensor",
    "AdvancedIncSubtensor": "set_subtensor / inc_subtensor by an integer array",
    "AdvancedIncSubtensor1": "set_subtensor / inc_subtensor by an integer array",
    "Join": "concatenate",
    "MakeVector": "stack of scalars",
    "Reshape": "reshape",
    "DimShuffle": "transpose / new axis",
    "Alloc": "broadcast (alloc)",
    "BroadcastTo": "broadcast_to",
    "CumOp": "cumsum / cumprod",
    "Scan": "scan",
    "ARange": "arange",
    "ExtractDiag": "diagonal",
    "Cholesky": "cholesky",
    "SolveTriangular": "solve_triangular",
}


def describe_operation(op: object) -> str:
    """The operation ``op`` in the words of a model's author: ``"sort"``, ``"elementwise gammaln"``.

    Examples
    --------
    >>> import aesara.tensor as at
    >>> describe_operation(at.sort(at.vector()).owner.op)
    'sort'
    >>> describe_operation(at.sigmoid(at.vector()).owner.op)
    'elementwise sigmoid'
    >>> describe_operation(at.sum(at.matrix(), axis=0).owner.op)
    'sum over axes'
    """
    from aesara.raise_op import CheckAndRaise
    from aesara.tensor.elemwise import CAReduce, Elemwise
    from aesara.tensor.random.op import RandomVariable

    name = type(op).__name__
    if isinstance(getattr(op, "description", None), str):  # an aemix Op says what it does
        return op.description
    if isinstance(op, CheckAndRaise):
        return f"the check {op.msg!r}"
    if isinstance(op, Elemwise):
        return f"elementwise {_scalar_name(op.scalar_op)}"
    if isinstance(op, CAReduce):
        return f"{_scalar_name(op.scalar_op) if name == 'CAReduce' else name.lower()} over axes"
    if isinstance(op, RandomVariable):
        return f"a random draw ({op.name})"
    if name in _OPERATION_WORDS:
        return _OPERATION_WORDS[name]
    if hasattr(op, "scalar_op") or hasattr(op, "nin"):  # a scalar op on its own
        return _scalar_name(op)
    return name


def _scalar_name(scalar_op: object) -> str:
    if type(scalar_op).__name__ == "Composite":
        return "expression"
    name = getattr(scalar_op, "name", None) or type(scalar_op).__name__.lower()
    return name.removeprefix("scalar_")
