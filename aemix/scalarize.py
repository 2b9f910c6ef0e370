"""Lower a small tensor graph with static shapes to a graph of Aesara scalar operations.

Every tensor variable of the graph becomes a NumPy object array (of its static shape) whose entries
are `aesara.scalar` variables; every supported `Op` maps those arrays to new ones (an `Elemwise`
applies its scalar op entry by entry, a reduction folds entries, indexing and reshaping move them).
Entries whose inputs are all constant are folded on the spot, so what is left is the arithmetic that
depends on the graph's inputs.  The result is the input of a `aesara.scalar.Composite`, whose C code
the fused backend (`aemix.fused`) places inside its own loop over chains and steps.

The lowering refuses (`LoweringError`) a graph with an unsupported operation, a shape it cannot know
statically, or more scalar operations than a budget: such models take the general, vectorized path.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import singledispatch

import aesara.scalar as aes
import numpy as np
from aesara.graph.basic import Apply, Constant, Variable, io_toposort
from aesara.raise_op import CheckAndRaise
from aesara.tensor.basic import Alloc, Join, MakeVector, ScalarFromTensor, TensorFromScalar
from aesara.tensor.elemwise import CAReduce, DimShuffle, Elemwise
from aesara.tensor.extra_ops import BroadcastTo
from aesara.tensor.math import MaxAndArgmax
from aesara.tensor.shape import Reshape, Shape, Shape_i, SpecifyShape
from aesara.tensor.subtensor import AdvancedSubtensor, AdvancedSubtensor1, Subtensor
from aesara.tensor.type import TensorType

__all__ = ["LoweringError", "ScalarGraph", "lower_node", "lower_to_scalars"]

DEFAULT_MAX_OPERATIONS = 4000


class LoweringError(Exception):
    """The graph cannot be written as a scalar graph (the reason is the message)."""


class ScalarGraph:
    """Scalar inputs and outputs of a lowered graph.

    Attributes
    ----------
    inputs
        Per tensor input, an object array of its scalar inputs (one per element).
    outputs
        Per tensor output, an object array of scalar variables.
    n_operations
        Number of scalar operations created (after constant folding).
    """

    def __init__(self, inputs, outputs, n_operations):
        self.inputs = inputs
        self.outputs = outputs
        self.n_operations = n_operations


class _Budget:
    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    def charge(self, n: int = 1) -> None:
        self.used += n
        if self.used > self.limit:
            raise LoweringError(f"more than {self.limit} scalar operations")


def _constant(value, dtype: str) -> Variable:
    value = np.asarray(value, dtype=dtype).item()
    if isinstance(value, float) and not np.isfinite(value):
        # Aesara writes float constants with str(): "inf" and "nan" are not C.  Write them as the
        # divisions the C compiler folds back to them (an expression, so not folded here).
        numerator = 0.0 if np.isnan(value) else np.sign(value)
        out = aes.true_divide.make_node(aes.constant(numerator), aes.constant(0.0)).outputs[0]
        return out if out.type.dtype == dtype else aes.cast(out, dtype)
    return aes.constant(value, dtype=dtype)


def _is_constant(entry) -> bool:
    return isinstance(entry, Constant)


def _constant_array(array: np.ndarray) -> np.ndarray:
    out = np.empty(array.shape, dtype=object)
    for index, value in np.ndenumerate(array):
        out[index] = _constant(value, array.dtype.name)
    return out


def _values(array: np.ndarray) -> np.ndarray | None:
    """The numeric values of an all-constant object array, else ``None``."""
    if not all(_is_constant(e) for e in array.flat):
        return None
    dtype = array.flat[0].type.dtype if array.size else "float64"
    return np.array([e.data for e in array.flat], dtype=dtype).reshape(array.shape)


def _apply_scalar(scalar_op, entries, out_dtypes, budget: _Budget):
    if all(_is_constant(e) for e in entries):
        results = scalar_op.impl(*[e.data for e in entries])
        if len(out_dtypes) == 1:
            results = [results]
        return [_constant(r, dt) for r, dt in zip(results, out_dtypes)]
    budget.charge()
    outs = scalar_op.make_node(*entries).outputs
    # Elemwise may ask for an output dtype its scalar op does not produce on its own.
    return [o if o.type.dtype == dt else aes.cast(o, dt) for o, dt in zip(outs, out_dtypes)]


@singledispatch
def lower_node(op, node: Apply, inputs: list[np.ndarray], budget: _Budget) -> list[np.ndarray]:
    """Map the lowered inputs of ``node`` to its lowered outputs (dispatched on the `Op`)."""
    raise LoweringError(f"no scalar lowering for {op}")


@lower_node.register(Elemwise)
def _lower_elemwise(op, node, inputs, budget):
    arrays = np.broadcast_arrays(*inputs)
    shape = arrays[0].shape if arrays else ()
    out_dtypes = [o.type.dtype for o in node.outputs]
    outs = [np.empty(shape, dtype=object) for _ in node.outputs]
    for index in np.ndindex(*shape):
        results = _apply_scalar(op.scalar_op, [a[index] for a in arrays], out_dtypes, budget)
        for out, result in zip(outs, results):
            out[index] = result
    return outs


@lower_node.register(DimShuffle)
def _lower_dimshuffle(op, node, inputs, budget):
    (x,) = inputs
    kept = [i for i in op.new_order if i != "x"]
    # Dimensions missing from the new order are broadcastable ones being dropped.
    x = x.reshape([s for i, s in enumerate(x.shape) if i in kept])
    order = sorted(kept)
    x = x.transpose([order.index(i) for i in kept])
    shape = []
    it = iter(x.shape)
    for i in op.new_order:
        shape.append(1 if i == "x" else next(it))
    return [x.reshape(shape)]


def _static_values(array: np.ndarray, what: str) -> np.ndarray:
    values = _values(array)
    if values is None:
        raise LoweringError(f"{what} depends on the inputs")
    return values


@lower_node.register(Subtensor)
def _lower_subtensor(op, node, inputs, budget):
    x, *index_inputs = inputs
    index_values = iter(_static_values(i, "an index").item() for i in index_inputs)

    def resolve(entry):
        if isinstance(entry, slice):
            return slice(
                *(None if e is None else resolve(e) for e in (entry.start, entry.stop, entry.step))
            )
        if isinstance(entry, aes.ScalarType):
            return int(next(index_values))
        return int(entry)

    index = tuple(resolve(e) for e in op.idx_list)
    return [np.asarray(x[index], dtype=object)]


@lower_node.register(AdvancedSubtensor1)
@lower_node.register(AdvancedSubtensor)
def _lower_advanced_subtensor(op, node, inputs, budget):
    x, *index_inputs = inputs
    if any(not isinstance(i.type, TensorType) for i in node.inputs[1:]):
        raise LoweringError(f"{op} with a slice or a new axis")
    # NumPy's own advanced indexing, on the object array, with the constant integer indices.
    index = tuple(_static_values(i, "an index").astype("int64") for i in index_inputs)
    return [np.asarray(x[index], dtype=object)]


@lower_node.register(Reshape)
def _lower_reshape(op, node, inputs, budget):
    x, shape = inputs
    return [x.reshape(tuple(int(s) for s in _static_values(shape, "a reshape's shape")))]


def _shape_from(inputs, what):
    return tuple(int(_static_values(s, what).item()) for s in inputs)


@lower_node.register(BroadcastTo)
def _lower_broadcast_to(op, node, inputs, budget):
    x, *shape = inputs
    return [np.broadcast_to(x, _shape_from(shape, "a broadcast shape")).copy()]


@lower_node.register(Alloc)
def _lower_alloc(op, node, inputs, budget):
    x, *shape = inputs
    return [np.broadcast_to(x, _shape_from(shape, "an allocation shape")).copy()]


@lower_node.register(CAReduce)
def _lower_careduce(op, node, inputs, budget):
    (x,) = inputs
    axes = tuple(range(x.ndim)) if op.axis is None else tuple(op.axis)
    out_dtype = node.outputs[0].type.dtype
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = np.moveaxis(x, kept, list(range(len(kept))))
    out_shape = moved.shape[: len(kept)]
    flat = moved.reshape(out_shape + (-1,))
    out = np.empty(out_shape, dtype=object)
    for index in np.ndindex(*out_shape):
        entries = list(flat[index])
        if not entries:
            raise LoweringError(f"{op} over an empty axis")
        entries = [e if e.type.dtype == out_dtype else aes.cast(e, out_dtype) for e in entries]
        # A balanced tree: rounding errors grow with its depth, log2(n), not with n.
        while len(entries) > 1:
            paired = [
                _apply_scalar(op.scalar_op, entries[i : i + 2], [out_dtype], budget)[0]
                for i in range(0, len(entries) - 1, 2)
            ]
            entries = paired + entries[len(entries) - len(entries) % 2 :]
        out[index] = entries[0]
    return [out]


@lower_node.register(MaxAndArgmax)
def _lower_max_and_argmax(op, node, inputs, budget):
    (x,) = inputs
    axes = tuple(range(x.ndim)) if op.axis is None else tuple(op.axis)
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = np.moveaxis(x, kept, list(range(len(kept))))
    out_shape = moved.shape[: len(kept)]
    flat = moved.reshape(out_shape + (-1,))
    dtype, index_dtype = (o.type.dtype for o in node.outputs)
    maxima, argmaxima = np.empty(out_shape, dtype=object), np.empty(out_shape, dtype=object)
    for index in np.ndindex(*out_shape):
        best, arg = flat[index][0], _constant(0, index_dtype)
        for j, entry in enumerate(flat[index][1:], start=1):
            # Strictly greater: the first maximum wins, as in NumPy.
            better = _apply_scalar(aes.gt, [entry, best], ["bool"], budget)[0]
            best = _apply_scalar(aes.switch, [better, entry, best], [dtype], budget)[0]
            arg = _apply_scalar(
                aes.switch, [better, _constant(j, index_dtype), arg], [index_dtype], budget
            )[0]
        maxima[index], argmaxima[index] = best, arg
    return [maxima, argmaxima]


@lower_node.register(MakeVector)
def _lower_make_vector(op, node, inputs, budget):
    dtype = node.outputs[0].type.dtype
    out = np.empty(len(inputs), dtype=object)
    for i, x in enumerate(inputs):
        entry = x.item()
        out[i] = entry if entry.type.dtype == dtype else aes.cast(entry, dtype)
    return [out]


@lower_node.register(Join)
def _lower_join(op, node, inputs, budget):
    axis, *arrays = inputs
    return [np.concatenate(arrays, axis=int(_static_values(axis, "a join axis").item()))]


@lower_node.register(Shape)
def _lower_shape(op, node, inputs, budget):
    return [_constant_array(np.asarray(inputs[0].shape, dtype="int64"))]


@lower_node.register(Shape_i)
def _lower_shape_i(op, node, inputs, budget):
    return [_constant_array(np.asarray(inputs[0].shape[op.i], dtype="int64"))]


@lower_node.register(SpecifyShape)
@lower_node.register(TensorFromScalar)
@lower_node.register(ScalarFromTensor)
def _lower_identity(op, node, inputs, budget):
    return [inputs[0]]


@lower_node.register(CheckAndRaise)
def _lower_assert(op, node, inputs, budget):
    x, *conditions = inputs
    entries = [e for c in conditions for e in c.flat]
    if all(_is_constant(e) for e in entries):
        if not all(bool(e.data) for e in entries):
            raise LoweringError(f"{op} fails for every input")
        return [x]
    # A violated check makes the value NaN, which the kernel rejects like any undefined density.
    ok = entries[0]
    for e in entries[1:]:
        ok = _apply_scalar(aes.and_, [ok, e], ["bool"], budget)[0]
    dtype = node.outputs[0].type.dtype
    nan = _constant(np.nan, dtype)
    out = np.empty(x.shape, dtype=object)
    for index in np.ndindex(*x.shape):
        out[index] = _apply_scalar(aes.switch, [ok, x[index], nan], [dtype], budget)[0]
    return [out]


def _lower_constant(var: Constant) -> np.ndarray:
    return _constant_array(np.asarray(var.data, dtype=var.type.dtype))


def lower_to_scalars(
    inputs: Sequence[Variable],
    shapes: Sequence[tuple[int, ...]],
    outputs: Sequence[Variable],
    max_operations: int = DEFAULT_MAX_OPERATIONS,
) -> ScalarGraph:
    """Lower the graph from ``inputs`` (of static ``shapes``) to ``outputs`` to scalar operations.

    Parameters
    ----------
    inputs
        The tensor inputs of the graph.
    shapes
        The static shape of each input.
    outputs
        The tensor outputs.
    max_operations
        Refuse graphs that need more scalar operations than this.

    Returns
    -------
    ScalarGraph

    Raises
    ------
    LoweringError
        If an operation has no scalar lowering, a shape or an index is not static, or the budget is
        exceeded.

    Examples
    --------
    >>> import aesara.tensor as at
    >>> x = at.vector("x")
    >>> g = lower_to_scalars([x], [(2,)], [at.log(at.exp(x).sum())])
    >>> g.outputs[0].shape, g.n_operations
    ((), 4)
    """
    budget = _Budget(max_operations)
    lowered: dict[Variable, np.ndarray] = {}
    scalar_inputs = []
    for var, shape in zip(inputs, shapes):
        if var.ndim != len(shape):
            raise LoweringError(f"input {var} has {var.ndim} dimensions, shape {shape} given")
        array = np.empty(shape, dtype=object)
        for index in np.ndindex(*shape):
            array[index] = aes.get_scalar_type(var.type.dtype)(
                name=f"{var.name or 'in'}{list(index)}"
            )
        lowered[var] = array
        scalar_inputs.append(array)

    def get(var):
        if var in lowered:
            return lowered[var]
        if isinstance(var, Constant):
            lowered[var] = _lower_constant(var)
            return lowered[var]
        raise LoweringError(f"{var} is neither an input nor computed from the inputs")

    for node in io_toposort(list(inputs), list(outputs)):
        outs = lower_node(node.op, node, [get(i) for i in node.inputs], budget)
        for var, array in zip(node.outputs, outs):
            if var.type.ndim != array.ndim or any(
                s is not None and s != a for s, a in zip(var.type.shape, array.shape)
            ):
                raise LoweringError(f"{node.op} lowered to shape {array.shape} for {var.type}")
            lowered[var] = array
    return ScalarGraph(scalar_inputs, [get(o) for o in outputs], budget.used)
