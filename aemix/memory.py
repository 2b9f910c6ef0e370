"""What a run keeps in memory: the dtype its draws are stored in, and the size of its result.

`Sampler.sample` stores ``n_chains x n_samples`` draws of every kept variable and the kept
log-density.  The summed-out discrete variables are stored in the narrowest signed integer type that
holds their support (`smallest_integer_dtype`): a membership of 500 observations, 32 chains x 1000
draws, is 16 MB in int8 where int64 took 128 MB.  Before anything runs, the result's size is
estimated from the kept variables' shapes and dtypes (`result_bytes`), and a result larger than the
limit is refused with a `MemoryLimitError` (`check_result_size`) that says what to keep instead.

The limit is ``sample(..., max_memory=...)`` (bytes; ``None``: no limit), by default
`DEFAULT_MAX_MEMORY`: half the machine's physical memory where the operating system tells it, else
4 GiB.  Setting ``aemix.memory.DEFAULT_MAX_MEMORY`` changes it for every later call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from aemix.errors import MemoryLimitError

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "smallest_integer_dtype",
    "result_bytes",
    "check_result_size",
]

_INTEGER_DTYPES = tuple(np.dtype(t) for t in ("int8", "int16", "int32", "int64"))


def _half_the_machine(fallback: int = 4 * 2**30) -> int:
    """Half the physical memory (``os.sysconf``; the host's, inside a container), or ``fallback``."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return fallback
    return total // 2 if total > 0 else fallback


DEFAULT_MAX_MEMORY: int | None = _half_the_machine()


def smallest_integer_dtype(support: np.ndarray) -> np.dtype:
    """The narrowest of int8, int16, int32 and int64 that holds every value of ``support``.

    A support that is not of a signed or unsigned integer type (bool, float) keeps its dtype, and so
    does one whose dtype is already at least as narrow (a uint8 support of up to 255).

    Examples
    --------
    >>> smallest_integer_dtype(np.arange(2))
    dtype('int8')
    >>> smallest_integer_dtype(np.array([-1, 300]))
    dtype('int16')
    """
    support = np.asarray(support)
    if support.dtype.kind not in "iu":
        return support.dtype
    if support.size == 0:
        return _INTEGER_DTYPES[0]
    low, high = int(support.min()), int(support.max())
    for dtype in _INTEGER_DTYPES:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return dtype if dtype.itemsize < support.dtype.itemsize else support.dtype
    return support.dtype


def result_bytes(
    variables: Mapping[str, tuple[tuple[int, ...], np.dtype]], n_chains: int, n_samples: int
) -> dict[str, int]:
    """Bytes of each kept variable's draws, ``name -> (shape, dtype)`` of one draw, and of the
    kept log-density (under ``"logdensity"``), for ``n_chains x n_samples`` draws."""
    draws = n_chains * n_samples
    sizes = {
        name: draws * int(np.prod(shape, dtype=int)) * np.dtype(dtype).itemsize
        for name, (shape, dtype) in variables.items()
    }
    sizes["logdensity"] = draws * np.dtype("float64").itemsize
    return sizes


def check_result_size(sizes: Mapping[str, int], limit: int | None, n_chains: int, n_samples: int):
    """Raise a `MemoryLimitError` when the result of ``sizes`` (`result_bytes`) exceeds ``limit``
    bytes (``None``: no limit)."""
    total = sum(sizes.values())
    if limit is None or total <= limit:
        return
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:3]
    shown = ", ".join(f"{name} {format_bytes(size)}" for name, size in largest)
    raise MemoryLimitError(
        f"the result would take about {format_bytes(total)} ({n_chains} chains x {n_samples} "
        f"draws; largest: {shown}), over the limit of {format_bytes(limit)}.  Keep less: only "
        "the variables you need (var_names=[...]), fewer draws (a smaller n_samples with a "
        "larger thin= runs as many steps and keeps one in thin), or no draws at all "
        "(summary_only=True: per-chain means and variances); or raise the limit with "
        "sample(..., max_memory=<bytes>) (None: no limit), or for every call with "
        "aemix.memory.DEFAULT_MAX_MEMORY",
        estimated=total,
        limit=limit,
        largest=tuple(largest),
    )


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units, e.g. ``'16.0 MiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
