"""The Aesara mode aemix compiles its functions with.

Aesara folds the operations whose inputs are all constants while it rewrites a graph (a model's
data is constant), and evaluates each folded node with its C implementation: one C module compiled
per kind of node, most of a model's first (cold) compile.  aemix's mode folds constants with the
operations' Python implementations instead, which give the same values and compile nothing;
an operation with no Python implementation is folded with its C one, as before.  Everything else
is the mode the user asked for (Aesara's default when none).
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from contextlib import contextmanager
from typing import Any

import aesara
import numpy as np
from aesara.compile import optdb
from aesara.compile.mode import Mode, get_default_mode, get_mode
from aesara.compile.sharedvalue import SharedVariable
from aesara.graph.basic import Constant, Variable, io_toposort
from aesara.graph.rewriting.basic import in2out, node_rewriter
from aesara.graph.rewriting.db import RewriteDatabaseQuery
from aesara.graph.utils import MethodNotDefined
from aesara.link.basic import PerformLinker
from aesara.link.vm import VMLinker
from aesara.scalar import basic as scalar
from aesara.scalar import math as scalar_math
from aesara.tensor.elemwise import Elemwise
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
    "graph_key",
    "precompiled_header",
    "quick_compile_flags",
    "fold_constants_in_python",
    "PYTHON_FOLDING",
    "NUMPY_ELEMWISE",
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


#: Aesara rewrites left out of aemix's compiles: simplifications whose cost grows with the graph
#: behind them.  Each replaces a node by an ``Alloc`` (``switch`` of a constant condition) or
#: compares two shapes (``inc_subtensor`` of a zero), and Aesara builds an ``Alloc`` by rewriting
#: the whole graph its shape is computed from (`aesara.tensor.basic.infer_static_shape`), once per
#: node.  On the batched gradient of the coal-mining change point they were 47 s of a 68 s
#: compile (`tests/test_kernels.py` finite-difference test: 83 -> 13 s); what they remove is a
#: switch computing both of its branches, or a zero added, which the functions compute instead.
_SLOW_REWRITES = ("local_useless_switch", "local_useless_inc_subtensor")


def compile_mode(mode=None) -> Mode:
    """``mode`` (a name, a `Mode`, or ``None`` for Aesara's default) with constants folded in
    Python (see the module)."""
    base = get_default_mode() if mode is None else get_mode(mode)
    if not isinstance(base, Mode) or not aesara.config.cxx:
        return base
    return base.excluding("topo_constant_folding", *_SLOW_REWRITES).including(PYTHON_FOLDING)


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
    of the seconds a cold build takes.  Each elementwise operation is one NumPy call over the
    whole array (`NUMPY_ELEMWISE`), never a Python call per element."""
    base = compile_mode(mode)
    if not isinstance(base, Mode) or isinstance(base.linker, aesara.link.basic.PerformLinker):
        return base
    return (
        Mode(linker="py", optimizer=base.provided_optimizer)
        .excluding("fusion")
        .including(NUMPY_ELEMWISE)
    )


# Vectorized NumPy implementations of the scalar operations that Aesara gives no NumPy function
# (``nfunc_spec``): its Python linker evaluates those one element at a time, through
# ``numpy.frompyfunc`` (a cast of a 256 x 1000 array of counts is 256,000 Python calls).  Each
# computes what the scalar ``impl`` computes; `Elemwise.perform` casts the result to the node's
# type.


def _np_identity(x):
    # (a cast or an identity: `Elemwise.perform` converts it to the output's type)
    return np.asarray(x)


def _np_second(a, b):
    return np.broadcast_to(b, np.broadcast_shapes(np.shape(a), np.shape(b)))


def _np_clip(x, low, high):
    x, low, high = np.broadcast_arrays(x, low, high)
    return np.where(x < low, low, np.where(x > high, high, x))


def _as_float(x):
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _np_softplus(x):
    x = _as_float(x)
    with np.errstate(all="ignore"):
        return np.where(
            x < -37.0,
            np.exp(x),
            np.where(x < 18.0, np.log1p(np.exp(x)), np.where(x < 33.3, x + np.exp(-x), x)),
        )


def _np_log1mexp(x):
    x = _as_float(x)
    with np.errstate(all="ignore"):
        return np.where(x < np.log(0.5), np.log1p(-np.exp(x)), np.log(-np.expm1(x)))


def _n_ary(ufunc):
    def apply(*arrays):
        # (in the inputs' common type, not NumPy 1's value-based type of a 0-d array)
        dtype = np.result_type(*(np.asarray(a).dtype for a in arrays))
        result = np.asarray(arrays[0], dtype)
        for array in arrays[1:]:
            result = ufunc(result, np.asarray(array, dtype))
        return result

    return apply


_np_add = _n_ary(np.add)
_np_mul = _n_ary(np.multiply)
_np_maximum = _n_ary(np.maximum)
_np_minimum = _n_ary(np.minimum)


#: The scalar operations with no NumPy function, and theirs.
_NUMPY_FUNCTIONS = {
    scalar.Cast: "_np_identity",
    scalar.Identity: "_np_identity",
    scalar.Second: "_np_second",
    scalar.Clip: "_np_clip",
    scalar_math.Softplus: "_np_softplus",
    scalar_math.Log1mexp: "_np_log1mexp",
}
#: The associative operations Aesara's rewrites give more than two inputs (``a + b + c`` is one
#: `Add`), whose NumPy function takes two, and their functions of any number of inputs.
_N_ARY_FUNCTIONS = {
    scalar.Add: "_np_add",
    scalar.Mul: "_np_mul",
    scalar.ScalarMaximum: "_np_maximum",
    scalar.ScalarMinimum: "_np_minimum",
}


#: The tag of the rewrite that gives an elementwise node its NumPy function (`python_mode` only).
NUMPY_ELEMWISE = "aemix_numpy_elemwise"


@node_rewriter([Elemwise])
def numpy_elemwise(fgraph, node):
    """An `Elemwise` whose scalar operation Aesara evaluates element by element in Python, made
    the same `Elemwise` with a vectorized NumPy function (its ``nfunc_spec``)."""
    op = node.op
    if op.nfunc_spec is not None and op.nfunc_spec[1] == len(node.inputs):
        return False
    functions = _NUMPY_FUNCTIONS if op.nfunc_spec is None else _N_ARY_FUNCTIONS
    name = functions.get(type(op.scalar_op))
    if name is None:
        return False
    new_op = Elemwise(
        op.scalar_op,
        op.inplace_pattern,
        name=op.name,
        nfunc_spec=(f"{__name__}.{name}", len(node.inputs), op.scalar_op.nout),
    )
    new_node = new_op.make_node(*node.inputs)
    if any(new.type != old.type for new, old in zip(new_node.outputs, node.outputs)):
        return False
    return new_node.outputs


# (after every other rewrite, the in-place ones included: they make new `Elemwise`s)
optdb.register(
    "aemix_numpy_elemwise_functions",
    in2out(numpy_elemwise, ignore_newtrees=True, name="aemix_numpy_elemwise_functions"),
    NUMPY_ELEMWISE,
    position=100.5,
)


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


def function(inputs, outputs, **kwargs):
    """``aesara.function(inputs, outputs, **kwargs)``, its C modules compiled quickly
    (`quick_compile_flags`), and compiled once per process for each computation (`graph_key`).

    The rewriting of a graph, not its C code, is most of a warm compile (a change point's batched
    log-density: about 5 s of rewriting, 0.7 s of linking), and a model is often built again
    (a cell run twice, the same model sampled in both loops): a function whose graph computes
    the same thing as one compiled before is a copy of that function.  The functions kept are the last
    `FUNCTION_CACHE_SIZE`, each never run itself (every caller gets a copy), so that they hold
    their graphs and constants and no array a call returned."""
    key = graph_key(inputs, outputs, kwargs)
    compiled = None
    if key is not None:
        with _CACHE_LOCK:
            compiled = _function_cache.get(key)
            if compiled is not None:
                _function_cache.move_to_end(key)
    with _quick_compiles():
        if compiled is not None:
            # (a copy: its own storage, so that two samplers can run it at once; it links the
            # compiled modules again, without rewriting)
            return compiled.copy()
        fn = aesara.function(inputs, outputs, **kwargs)
    if key is None or not isinstance(fn.maker.linker, VMLinker | PerformLinker):
        return fn  # (Aesara copies only the functions its virtual machines run)
    with _CACHE_LOCK:
        _function_cache[key] = fn
        while len(_function_cache) > FUNCTION_CACHE_SIZE:
            _function_cache.popitem(last=False)
    # The kept function is never run, so it holds no outputs of a call (a batch of draws).
    with _quick_compiles():
        return fn.copy()


#: How many compiled functions `function` keeps for reuse: about the last two models' (a
#: `sample()` compiles three to five).  A kept function holds its rewritten graph: 64 of them
#: held about 200 MB more in a process that ran the Markov chain and example tests (971 against
#: 759 MB peak), where models are seldom built twice.
FUNCTION_CACHE_SIZE = 8
_CACHE_LOCK = threading.Lock()
_function_cache: OrderedDict[Hashable, Any] = OrderedDict()
_KEYED_ARGUMENTS = frozenset({"mode", "on_unused_input", "updates", "allow_input_downcast"})


def graph_key(inputs, outputs, kwargs: Mapping[str, Any] | None = None) -> Hashable | None:
    """A key equal for two calls of ``aesara.function(inputs, outputs, **kwargs)`` that compute
    the same thing; ``None`` where it cannot tell.

    The key lists the graph's nodes in order, each as its Op (Ops compare by their parameters, as
    Aesara's own merging of equal nodes assumes), the positions of its inputs and its outputs'
    types.  Constants enter by type and value, shared variables (whose value can change) by
    identity, and the mode by what it includes and excludes, with the configuration compiles
    depend on.  Anything else passed to ``aesara.function`` (``givens``, ``In``/``Out``
    specifications) makes the call unkeyed."""
    kwargs = dict(kwargs or {})
    if not set(kwargs) <= _KEYED_ARGUMENTS:
        return None
    single = not isinstance(outputs, list | tuple)
    outputs = [outputs] if single else list(outputs)
    updates = kwargs.pop("updates", None) or {}
    updates = list(updates.items() if isinstance(updates, Mapping) else updates)
    inputs = list(inputs)
    everything = [*inputs, *outputs, *(v for pair in updates for v in pair)]
    if not all(isinstance(v, Variable) for v in everything):
        return None
    index: dict[Variable, int] = {}
    entries: list[Hashable] = []

    def enter(var: Variable, entry: Hashable) -> None:
        index[var] = len(entries)
        entries.append(entry)

    for var in inputs:
        if var in index:
            return None
        enter(var, ("input", var.type, var.name))
    try:
        for node in io_toposort(inputs, [*outputs, *(v for pair in updates for v in pair)]):
            for var in node.inputs:
                if var in index:
                    continue
                if isinstance(var, SharedVariable):
                    enter(var, ("shared", id(var), var.type))
                elif isinstance(var, Constant):
                    value = _value_key(var.data)
                    if value is None:
                        return None
                    enter(var, ("constant", var.type, value))
                else:
                    return None  # (an input not given: Aesara says so when it compiles)
            entry = (node.op, tuple(index[v] for v in node.inputs))
            hash(entry)
            enter(node, entry)
            for o in node.outputs:
                enter(o, ("output", index[node], o.index, o.type))
        for var in [*outputs, *(v for pair in updates for v in pair)]:
            if var not in index:
                if isinstance(var, SharedVariable):
                    enter(var, ("shared", id(var), var.type))
                elif isinstance(var, Constant) and _value_key(var.data) is not None:
                    enter(var, ("constant", var.type, _value_key(var.data)))
                else:
                    return None
        mode = kwargs.pop("mode", None)
        mode = get_default_mode() if mode is None else get_mode(mode)
        config = aesara.config
        return (
            tuple(entries),
            tuple(index[v] for v in outputs),
            single,
            tuple((index[s], index[u]) for s, u in updates),
            _mode_key(mode),
            tuple(sorted(kwargs.items())),
            (config.floatX, config.cxx, config.gcc__cxxflags, config.compute_test_value),
        )
    except TypeError:  # (an Op or a value that cannot be hashed)
        return None


def _mode_key(mode) -> Hashable:
    """What a `Mode` compiles with: its linker and the tags its rewrites are queried by."""
    linker, rewrites = mode.provided_linker, mode.provided_optimizer
    if isinstance(linker, VMLinker):
        linker = (VMLinker, linker.use_cloop, linker.lazy, linker.allow_gc, linker.c_thunks)
    elif isinstance(linker, PerformLinker):
        linker = (PerformLinker, linker.allow_gc)
    elif not isinstance(linker, str):
        linker = (type(linker), id(linker))
    if isinstance(rewrites, RewriteDatabaseQuery):
        rewrites = (
            frozenset(rewrites.include),
            frozenset(rewrites.require),
            frozenset(rewrites.exclude),
            rewrites.position_cutoff,
            tuple(sorted(rewrites.subquery.items())),
            tuple(id(r) for r in rewrites.extra_rewrites),
        )
    elif not isinstance(rewrites, str):
        rewrites = (type(rewrites), id(rewrites))
    return (type(mode), linker, rewrites)


def _value_key(data) -> Hashable | None:
    if isinstance(data, np.ndarray | np.generic):
        data = np.asarray(data)
        if data.dtype.hasobject:
            return None
        digest = hashlib.blake2b(data.tobytes(), digest_size=16)
        return (data.dtype.str, data.shape, digest.digest())
    if data is None or isinstance(data, bool | int | float | complex | str | slice):
        return (type(data), repr(data))
    return None


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
