"""aemix: automatic marginalization and vectorized random-walk samplers for Aesara models.

Write a model as an Aesara random-variable graph and call `build_sampler`; aemix sums out the discrete
latent variables it can, builds the marginal log-density with aeppl, and compiles a random-walk
Rosenbluth-Metropolis-Hastings sampler batched over many chains.
"""

import logging
import warnings


def _import_aesara_quietly() -> None:
    """Import Aesara without its BLAS notices.

    Aesara looks for a BLAS library on import: numpy.distutils warns three times when none is found
    and Aesara logs that it falls back to NumPy's C API.  aemix's loops do not call BLAS (the fused
    loop is scalar C code), so the notices say nothing a user can act on; the fallback is kept.
    A BLAS configured by the user (``AESARA_FLAGS=blas__ldflags=...``) is used as before.
    """
    blas_logger = logging.getLogger("aesara.tensor.blas")
    level = blas_logger.level
    blas_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"numpy\.distutils")
            warnings.filterwarnings("ignore", message=r"\s*`numpy\.distutils` is deprecated")
            import aesara.tensor  # noqa: F401
    finally:
        blas_logger.setLevel(level)


_import_aesara_quietly()

from aemix import errors, relations  # noqa: E402
from aemix.diagnostics import ConvergenceWarning, ModelWarning, TruncationWarning  # noqa: E402
from aemix.errors import (  # noqa: E402
    AemixError,
    ConfigurationError,
    FusedLoopError,
    GradientError,
    InitializationError,
    MarginalizationError,
    MemoryLimitError,
    ModelError,
    ValuesError,
    VectorizationError,
)
from aemix.sampler import Sampler, SampleResult, SampleSummary, build_sampler  # noqa: E402

__all__ = [
    "build_sampler",
    "Sampler",
    "SampleResult",
    "SampleSummary",
    "errors",
    "relations",
    "AemixError",
    "ConvergenceWarning",
    "ModelWarning",
    "TruncationWarning",
    "ConfigurationError",
    "FusedLoopError",
    "GradientError",
    "InitializationError",
    "MarginalizationError",
    "MemoryLimitError",
    "ModelError",
    "ValuesError",
    "VectorizationError",
]
