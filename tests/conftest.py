import os

import pytest

#: The C compiler flags of the tests (unless ``AESARA_FLAGS`` sets ``gcc__cxxflags``).  A cold run
#: is mostly compilation, and Aesara's ``-O3`` is slow to compile code that a test runs for a few
#: thousand steps: at ``-O1`` the seed model's first ``sample()`` (cold) takes about a fifth less
#: (fused loop 13.6 -> 10.9 s, scan loop 34.7 -> 26.5 s) and its loops run as fast (256 chains x
#: 6000 steps: fused 0.08 -> 0.10 s, scan 0.67 -> 0.70 s; ``-O0`` compiles a little faster but
#: runs 2-5 times slower).  Both follow IEEE arithmetic (Aesara sets no fast-math); ``-O3`` may
#: fuse a multiply and an add (FMA), a difference in the last bit, far below any test's
#: tolerance.  ``-g0`` drops the debug information (a fifth of a module's compile), which no test
#: reads.  The examples, the benchmarks and users compile as Aesara does.
TEST_CXXFLAGS = "-O1 -g0"


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
        flags = ",".join(filter(None, [flags, f"gcc__cxxflags={TEST_CXXFLAGS}"]))
    for spec in specs:
        spec.env["AESARA_FLAGS"] = flags
    if "base_compiledir" in flags:
        return
    root = os.path.join(os.path.expanduser("~"), ".aesara")
    for k, spec in enumerate(specs):
        base = os.path.join(root, f"xdist-{k}")
        spec.env["AESARA_FLAGS"] = ",".join(filter(None, [flags, f"base_compiledir={base}"]))
        # One precompiled header for the workers, so that a module has the same flags, key and
        # name in each, and one worker's compiled module serves the other (`_share_modules`).
        spec.env.setdefault("AEMIX_HEADER_DIR", os.path.join(root, "xdist-headers"))
        spec.env.setdefault("AEMIX_SHARED_MODULES", os.path.join(root, "xdist-modules"))


def pytest_configure(config):
    """The tests' own compiles (references, checks) use aemix's quick compiler flags too; the
    xdist controller, which runs no test, does not import Aesara."""
    if config.getoption("numprocesses", None) and not hasattr(config, "workerinput"):
        return
    import aesara

    # (aemix first: it quiets Aesara's import)
    from aemix.compilation import fold_constants_in_python, quick_compile_flags

    if aesara.config.cxx:
        flags = aesara.config.gcc__cxxflags
        if "gcc__cxxflags" not in os.environ.get("AESARA_FLAGS", ""):
            flags = " ".join(filter(None, [flags, TEST_CXXFLAGS]))
        aesara.config.gcc__cxxflags = quick_compile_flags(flags)
    # The tests' own functions (references, checks) fold constants in Python too, as aemix's do.
    fold_constants_in_python(True)
    # No creation trace on the graphs' variables: Aesara walks the Python stack (and reads each
    # frame's source line) for every variable it creates outside a compile, a tenth of a warm
    # test's time (tests/test_kernels.py -k "finite_difference and (coal or seed or eight)":
    # 45.9 -> 41.1 s).  Only Aesara's own error messages read it; aemix's never show them.
    aesara.config.traceback__limit = 0
    if os.environ.get("AEMIX_SHARED_MODULES"):
        _share_modules(os.environ["AEMIX_SHARED_MODULES"])


def _share_modules(store: str) -> None:
    """Let the xdist workers share their compiled C modules, each keeping its own Aesara cache.

    Aesara locks its whole cache while it compiles a module into it, so one cache shared by the
    workers would compile one module at a time; with a cache each, the modules both need (about
    a fifth) were compiled twice.  Here a compiled module's library is also kept in ``store``
    under a hash of everything its compilation reads (its code, whose name is the hash of its
    key, and its compiler arguments); a worker about to compile the same module copies it
    instead.  Files enter ``store`` by an atomic rename, so a worker sees a whole library or none.
    """
    import hashlib
    import shutil
    import tempfile

    from aesara.link.c import cmodule

    original = cmodule.GCC_compiler.compile_str
    if getattr(original, "shares_modules", False):
        return

    def compile_str(
        module_name,
        src_code,
        location=None,
        include_dirs=None,
        lib_dirs=None,
        libs=None,
        preargs=None,
        py_module=True,
        hide_symbols=True,
    ):
        arguments = (include_dirs, lib_dirs, libs, preargs, py_module, hide_symbols)
        digest = hashlib.sha256(repr((module_name, src_code, arguments)).encode()).hexdigest()
        stored = os.path.join(store, f"{digest}.{cmodule.get_lib_extension()}")
        library = os.path.join(location, f"{module_name}.{cmodule.get_lib_extension()}")
        if not os.path.exists(stored):
            module = original(module_name, src_code, location, *arguments)
            os.makedirs(store, exist_ok=True)
            descriptor, partial = tempfile.mkstemp(dir=store)
            os.close(descriptor)
            shutil.copyfile(library, partial)
            os.replace(partial, stored)
            return module
        with open(os.path.join(location, "mod.cpp"), "w") as source:
            source.write(src_code)
        shutil.copyfile(stored, library)
        if not py_module:
            return None
        open(os.path.join(location, "__init__.py"), "w").close()
        return cmodule.dlimport(library)

    compile_str.shares_modules = True
    cmodule.GCC_compiler.compile_str = staticmethod(compile_str)


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
