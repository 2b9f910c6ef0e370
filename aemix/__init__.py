"""aemix: automatic marginalization and vectorized random-walk samplers for Aesara models.

Write a model as an Aesara random-variable graph and call `build_sampler`; aemix sums out the discrete
latent variables it can, builds the marginal log-density with aeppl, and compiles a random-walk
Rosenbluth-Metropolis-Hastings sampler batched over many chains.
"""

from aemix import errors, relations
from aemix.diagnostics import ConvergenceWarning, TruncationWarning
from aemix.errors import (
    AemixError,
    ConfigurationError,
    FusedLoopError,
    InitializationError,
    MarginalizationError,
    ModelError,
    ValuesError,
    VectorizationError,
)
from aemix.sampler import Sampler, SampleResult, SampleSummary, build_sampler

__all__ = [
    "build_sampler",
    "Sampler",
    "SampleResult",
    "SampleSummary",
    "errors",
    "relations",
    "AemixError",
    "ConvergenceWarning",
    "TruncationWarning",
    "ConfigurationError",
    "FusedLoopError",
    "InitializationError",
    "MarginalizationError",
    "ModelError",
    "ValuesError",
    "VectorizationError",
]
