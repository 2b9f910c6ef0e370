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
        super().__init__(f"cannot vectorize {op}: {reason}")


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
