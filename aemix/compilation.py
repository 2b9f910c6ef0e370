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

__all__ = ["compile_mode", "function", "PYTHON_FOLDING"]

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


# Functions being compiled by aemix, in any thread, and the flags before the first of them.
_DEBUG_INFO = threading.Lock()
_compiling = [0, ""]


@contextmanager
def _without_debug_info():
    """Aesara's C compiler flags with ``-g0`` added (it overrides Aesara's ``-g``), while any
    thread compiles through `function`; the user's flags come back after the last one."""
    config = aesara.config
    with _DEBUG_INFO:
        if _compiling[0] == 0:
            _compiling[1] = config.gcc__cxxflags
            if "-g0" not in config.gcc__cxxflags.split():
                config.gcc__cxxflags = f"{config.gcc__cxxflags} -g0".strip()
        _compiling[0] += 1
    try:
        yield
    finally:
        with _DEBUG_INFO:
            _compiling[0] -= 1
            if _compiling[0] == 0:
                config.gcc__cxxflags = _compiling[1]


def function(*args, **kwargs):
    """``aesara.function(*args, **kwargs)``, its C modules compiled without debug information."""
    with _without_debug_info():
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


_patch_useless_elemwise()
