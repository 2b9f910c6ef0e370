"""The Aesara mode aemix compiles its functions with.

Aesara folds the operations whose inputs are all constants while it rewrites a graph (a model's
data is constant), and evaluates each folded node with its C implementation: one C module compiled
per kind of node, most of a model's first (cold) compile.  aemix's mode folds constants with the
operations' Python implementations instead, which give the same values and compile nothing;
an operation with no Python implementation is folded with its C one, as before.  Everything else
is the mode the user asked for (Aesara's default when none).
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager

import aesara
import numpy as np
from aesara.compile.mode import Mode, get_default_mode, get_mode
from aesara.graph.basic import Constant
from aesara.graph.rewriting.basic import in2out, node_rewriter
from aesara.graph.utils import MethodNotDefined
from aesara.tensor.rewriting.basic import (
    register_canonicalize,
    register_specialize,
    register_stabilize,
    register_uncanonicalize,
)
from aesara.tensor.type import DenseTensorType, TensorType

__all__ = [
    "compile_mode",
    "python_mode",
    "function",
    "precompiled_header",
    "quick_compile_flags",
    "fold_constants_in_python",
    "PYTHON_FOLDING",
]

#: The tag of the folding rewrite below, which only aemix's mode includes.
PYTHON_FOLDING = "aemix_python_constant_folding"


def _thunk(node, storage_map, compute_map):
    try:
        return node.op.make_thunk(node, storage_map, compute_map, no_recycling=[], impl="py")
    except (NotImplementedError, MethodNotDefined):
        return node.op.make_thunk(node, storage_map, compute_map, no_recycling=[])


@node_rewriter(None)
def python_constant_folding(fgraph, node):
    """Aesara's ``constant_folding``, evaluated by the Op's Python implementation."""
    if not node.op.do_constant_folding(fgraph, node):
        return False
    if not all(isinstance(inp, Constant) for inp in node.inputs):
        return False
    storage_map = {i: [i.data] for i in node.inputs}
    compute_map = {i: [True] for i in node.inputs}
    for o in node.outputs:
        storage_map[o] = [None]
        compute_map[o] = [False]
    thunk = _thunk(node, storage_map, compute_map)
    # (NumPy warns where C computes silently, e.g. the log of a zero in the data: the folded value
    # is the same, and the warning would say nothing about the user's run)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        needed = thunk()
    if needed:
        return False  # (an input it needed was not computed: nothing folded)
    folded = []
    for output in node.outputs:
        data = storage_map[output][0]
        if isinstance(output.type, DenseTensorType):
            output_type = TensorType(output.type.dtype, shape=data.shape, name=output.type.name)
        else:
            output_type = output.type
        folded.append(output_type.make_constant(data))
    return folded


_folding = in2out(python_constant_folding, ignore_newtrees=True, name="aemix_python_folding")
for _register in (
    register_canonicalize,
    register_uncanonicalize,
    register_stabilize,
    register_specialize,
):
    _register(_folding, PYTHON_FOLDING, final_rewriter=True)


def compile_mode(mode=None) -> Mode:
    """``mode`` (a name, a `Mode`, or ``None`` for Aesara's default) with constants folded in
    Python (see the module)."""
    base = get_default_mode() if mode is None else get_mode(mode)
    if not isinstance(base, Mode) or not aesara.config.cxx:
        return base
    return base.excluding("topo_constant_folding").including(PYTHON_FOLDING)


# The headers every module Aesara generates starts with (`CLinker` puts Python.h first).
_MODULE_HEADERS = (
    "Python.h",
    "iostream",
    "aesara_mod_helper.h",
    "math.h",
    "numpy/arrayobject.h",
    "numpy/arrayscalars.h",
    "vector",
    "algorithm",
)
_HEADER_LOCK = threading.Lock()
_headers: dict[tuple, str | None] = {}


def precompiled_header(cxxflags: str | None = None) -> str | None:
    """The path of a header that includes `_MODULE_HEADERS`, precompiled (GCC's ``.gch``) with
    the flags Aesara compiles its modules with when its ``gcc__cxxflags`` are ``cxxflags``;
    ``None`` where it cannot be built.

    Reading those headers is about half of compiling one of Aesara's small modules (0.42 of
    0.75 s), and most modules are small.  A module compiled with ``-include`` this header reads the
    precompiled one instead; its own ``#include`` lines then change nothing (the headers guard
    against a second inclusion).  Where GCC finds the precompiled header does not fit a module's
    flags, it reads the header's text: the module is the same, only slower to compile.  The header
    is kept in Aesara's compile directory (or the directory ``AEMIX_HEADER_DIR`` names) under a
    hash of everything it depends on, built once per machine and flags, and shared by processes
    (each builds into its own directory and renames it).  Its path is part of the flags, so of
    the key of every module compiled with it: processes that share modules share the header.
    """
    import hashlib
    import os
    import shutil
    import subprocess
    import tempfile

    from aesara.link.c.cmodule import GCC_compiler, std_include_dirs

    config = aesara.config
    if not config.cxx or "g++" not in os.path.basename(config.cxx):
        return None
    cxxflags = _without_header(config.gcc__cxxflags if cxxflags is None else cxxflags)
    saved = config.gcc__cxxflags
    try:
        config.gcc__cxxflags = cxxflags
        args = GCC_compiler.compile_args()
    finally:
        config.gcc__cxxflags = saved
    command = [
        config.cxx,
        "-g",
        "-O3",
        "-fno-math-errno",
        "-Wno-unused-label",
        "-Wno-unused-variable",
        "-Wno-write-strings",
        *args,
        *(f"-I{d}" for d in std_include_dirs()),
        "-fvisibility=hidden",
        "-x",
        "c++-header",
    ]
    text = "".join(f"#include <{h}>\n" for h in _MODULE_HEADERS)
    key = (tuple(command), text)
    with _HEADER_LOCK:
        if key in _headers:
            return _headers[key]
        try:
            version = subprocess.run(
                [config.cxx, "--version"], capture_output=True, text=True, check=True
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            _headers[key] = None
            return None
        digest = hashlib.sha256(repr((command, text, version)).encode()).hexdigest()[:16]
        directory = os.environ.get("AEMIX_HEADER_DIR") or config.compiledir
        final = os.path.join(directory, f"aemix_header_{digest}")
        header = os.path.join(final, "aemix_modules.h")
        if not os.path.exists(header + ".gch"):
            os.makedirs(directory, exist_ok=True)
            work = tempfile.mkdtemp(prefix="aemix_header_", dir=directory)
            try:
                source = os.path.join(work, "aemix_modules.h")
                with open(source, "w") as f:
                    f.write(text)
                built = subprocess.run(
                    [*command, "-o", f"{source}.gch", source],
                    capture_output=True,
                )
                if built.returncode == 0:
                    try:
                        os.rename(work, final)
                    except OSError:
                        pass  # (another process renamed its own first: the same header)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        _headers[key] = header if os.path.exists(header + ".gch") else None
        return _headers[key]


def _without_header(cxxflags: str) -> str:
    """``cxxflags`` without their ``-include`` options (a header is not built with itself)."""
    flags, kept = cxxflags.split(), []
    while flags:
        flag = flags.pop(0)
        if flag == "-include":
            flags = flags[1:]
        else:
            kept.append(flag)
    return " ".join(kept)


def quick_compile_flags(cxxflags: str) -> str:
    """``cxxflags`` with ``-g0`` (it overrides Aesara's ``-g``: no debug information, a fifth of a
    module's compile) and the `precompiled_header` added; the machine code is the same."""
    flags = cxxflags.split()
    if "-g0" not in flags:
        flags.append("-g0")
    if "-include" not in flags:
        header = precompiled_header(" ".join(flags))
        if header is not None:
            flags += ["-include", header]
    return " ".join(flags)


def python_mode(mode=None) -> Mode:
    """``compile_mode(mode)`` run by Python (NumPy) implementations, with no elementwise fusion:
    a function evaluated once or a few times (a log density at one point, the chains' starting
    points) compiles nothing, where Aesara's C linker compiles a module per kind of node, most
    of the seconds a cold build takes."""
    base = compile_mode(mode)
    if not isinstance(base, Mode) or isinstance(base.linker, aesara.link.basic.PerformLinker):
        return base
    return Mode(linker="py", optimizer=base.provided_optimizer).excluding("fusion")


# Functions being compiled by aemix, in any thread, and the flags before the first of them.
_COMPILING = threading.Lock()
_compiling = [0, "", False]


def fold_constants_in_python(on: bool = True) -> bool:
    """Make Aesara's own ``constant_folding`` rewrite evaluate with Python implementations
    (``on``), or with C ones again (``on=False``).

    aemix's mode (`compile_mode`) replaces the folding rewrite of Aesara's main rewrite passes,
    but Aesara also calls ``constant_folding`` directly: in the rewrites of a ``scan``'s inner
    graph and to compare two shapes (``ShapeFeature``).  There it compiled one C module per kind
    of node folded: about a tenth of a cold compile of a model with a scan loop (2,100 modules
    made, 25 s of the 216 s of ``tests/test_change_point.py``, profiled).  Returns whether it
    was on before."""
    from aesara.tensor.rewriting.basic import constant_folding

    if not hasattr(constant_folding, "_aemix_c_fn"):
        constant_folding._aemix_c_fn = constant_folding.fn
    was_on = constant_folding.fn is python_constant_folding.fn
    constant_folding.fn = python_constant_folding.fn if on else constant_folding._aemix_c_fn
    return was_on


@contextmanager
def _quick_compiles():
    """While any thread compiles through `function`: Aesara's C compiler flags made
    `quick_compile_flags`, and constants folded in Python (`fold_constants_in_python`); as they
    were after the last one."""
    config = aesara.config
    with _COMPILING:
        if _compiling[0] == 0:
            _compiling[1] = config.gcc__cxxflags
            if config.cxx:
                config.gcc__cxxflags = quick_compile_flags(config.gcc__cxxflags)
            _compiling[2] = fold_constants_in_python(True)
        _compiling[0] += 1
    try:
        yield
    finally:
        with _COMPILING:
            _compiling[0] -= 1
            if _compiling[0] == 0:
                config.gcc__cxxflags = _compiling[1]
                fold_constants_in_python(_compiling[2])


def function(*args, **kwargs):
    """``aesara.function(*args, **kwargs)``, its C modules compiled quickly (`quick_compile_flags`)."""
    with _quick_compiles():
        return aesara.function(*args, **kwargs)


def _type_safe(rewrite):
    """``rewrite`` (a node rewriter's function) with the replacements whose type the node's
    output cannot take dropped (the node is then left as it is)."""

    def safe(fgraph, node):
        replacements = rewrite(fgraph, node)
        if isinstance(replacements, list | tuple) and any(
            not out.type.is_super(new.type) and not new.type.is_super(out.type)
            for out, new in zip(node.outputs, replacements)
            if new is not None
        ):
            return None
        return replacements

    safe.__name__ = getattr(rewrite, "__name__", "safe")
    return safe


def _patch_useless_elemwise() -> None:
    """Aesara 2.9.4's ``local_useless_elemwise`` replaces ``x & False`` (a constant of shape
    ``(1, n)``) by a variable of ``x``'s shape ``(k, 1)``: the replacement is refused, the rewrite
    skipped, and Aesara prints a "BUG IN FGRAPH.REPLACE" error and a traceback on every compile
    (aeppl's Poisson density, enumerated over a shared count, makes that node).  The patched
    rewrite declines such a replacement instead; the compiled graph is the same."""
    from aesara.tensor.rewriting import basic

    rewriter = basic.local_useless_elemwise
    if not getattr(rewriter.fn, "_aemix_type_safe", False):
        rewriter.fn = _type_safe(rewriter.fn)
        rewriter.fn._aemix_type_safe = True


def _scan_shapes(self, fgraph, node, input_shapes):
    """The shapes of a ``Scan`` node's outputs read from its inputs and its outputs (Aesara's
    ``Scan.infer_shape`` gives the same values).

    Aesara's ``Scan.infer_shape`` infers the shapes of the whole inner graph on every call, and
    uses them only for the trailing axes of the outputs collected per step (``nit_sot``); every
    other output has the shape of the input it starts from, or of its shared variable.  Here a
    collected output's trailing axes are their static lengths, or read from the output itself
    (``Shape_i``, what Aesara falls back to where the inner inference does not resolve), which
    the loop computes anyway.  ``ShapeFeature`` calls it each time a scan node enters a graph,
    so a scan inside a scan (an HMC trajectory inside the loop over steps) was inferred again
    and again: 11 of the 30 s of rewriting such a loop for a two-parameter model."""
    from aesara.tensor.shape import Shape_i

    info = self.info
    n_outs = info.n_mit_mot + info.n_mit_sot + info.n_sit_sot
    collected = node.outputs[n_outs : n_outs + info.n_nit_sot]
    if not all(isinstance(r.type, DenseTensorType) for r in collected):
        return self._aemix_infer_shape(fgraph, node, input_shapes)
    offset = 1 + info.n_seqs
    shapes = list(input_shapes[offset : offset + n_outs])
    offset += n_outs
    for x, r in enumerate(collected):
        trailing = [n if n is not None else Shape_i(i)(r) for i, n in enumerate(r.type.shape)]
        shapes.append((node.inputs[offset + info.n_shared_outs + x], *trailing[1:]))
    shapes += list(input_shapes[offset : offset + info.n_shared_outs])
    if info.as_while:
        shapes = [
            None if x is None else (Shape_i(0)(o), *x[1:]) for o, x in zip(node.outputs, shapes)
        ]
    return shapes


def _patch_scan_infer_shape() -> None:
    """``Scan.infer_shape`` is `_scan_shapes`, for every scan once aemix is imported (as
    `_patch_useless_elemwise` is).  The values are Aesara's; what differs is that a graph that
    needs only a collected output's trailing lengths, and not the output, now runs the loop
    where Aesara could sometimes compute them from the inputs."""
    from aesara.scan.op import Scan

    if not hasattr(Scan, "_aemix_infer_shape"):
        Scan._aemix_infer_shape = Scan.infer_shape
        Scan.infer_shape = _scan_shapes


_patch_useless_elemwise()
_patch_scan_infer_shape()
