import os

import pytest


@pytest.hookimpl(optionalhook=True)  # (a hook of pytest-xdist; without it, never called)
def pytest_xdist_setupnodes(config, specs):
    """Give each pytest-xdist worker its own Aesara cache (unless ``AESARA_FLAGS`` names one):
    Aesara locks a cache while it compiles into it, which would serialize the workers'
    compilations, most of a cold run."""
    for spec in specs:
        # Two glibc malloc arenas per worker instead of one per thread of the fused loop: the
        # workers' memory stays what their tests use.
        spec.env.setdefault("MALLOC_ARENA_MAX", os.environ.get("MALLOC_ARENA_MAX", "2"))
    flags = os.environ.get("AESARA_FLAGS", "")
    if "gcc__cxxflags" not in flags:
        # Aesara compiles every C module with -g: its debug information is a fifth of a module's
        # compile time, most of a cold run, and no test reads it; -g0 (after it) leaves it out,
        # and the machine code is the same.
        flags = ",".join(filter(None, [flags, "gcc__cxxflags=-g0"]))
    for spec in specs:
        spec.env["AESARA_FLAGS"] = flags
    if "base_compiledir" in flags:
        return
    for k, spec in enumerate(specs):
        base = os.path.join(os.path.expanduser("~"), ".aesara", f"xdist-{k}")
        spec.env["AESARA_FLAGS"] = ",".join(filter(None, [flags, f"base_compiledir={base}"]))


def pytest_configure(config):
    """The tests' own compiles (references, checks) use aemix's quick compiler flags too; the
    xdist controller, which runs no test, does not import Aesara."""
    if config.getoption("numprocesses", None) and not hasattr(config, "workerinput"):
        return
    import aesara

    from aemix.compilation import quick_compile_flags  # (first: aemix quiets Aesara's import)

    if aesara.config.cxx:
        aesara.config.gcc__cxxflags = quick_compile_flags(aesara.config.gcc__cxxflags)


@pytest.fixture(scope="session")
def seed_sampler():
    """One compiled sampler of the seed's model, shared so the suite compiles its graphs once."""
    import aemix
    from tests.helpers import seed_model  # (here: the xdist controller never imports Aesara)

    _, _, Y_rv = seed_model()
    return aemix.build_sampler(Y_rv)


@pytest.fixture(scope="module", autouse=True)
def _release_memory_after_each_file():
    """After each test file, collect its samplers and hand the freed heap back to the system
    (glibc keeps it otherwise): a worker's memory is then what its current file uses, not the
    high-water mark of every file it ran."""
    yield
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
