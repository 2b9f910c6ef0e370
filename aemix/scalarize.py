"""Lower a small tensor graph with static shapes to a graph of Aesara scalar operations.

Every tensor variable of the graph becomes a NumPy object array (of its static shape) whose entries
are `aesara.scalar` variables; every supported `Op` maps those arrays to new ones (an `Elemwise`
applies its scalar op entry by entry, a reduction folds entries, indexing and reshaping move them).
Entries whose inputs are all constant are folded on the spot, so what is left is the arithmetic that
depends on the graph's inputs.  The result is the input of a `aesara.scalar.Composite`, whose C code
the fused backend (`aemix.fused`) places inside its own loop over chains and steps.

The lowering refuses (`LoweringError`) a graph with an unsupported operation (named as a model's
author writes it, `aemix.errors.describe_operation`), a scalar operation without C code, a shape it
cannot know statically, or more scalar operations than a budget: such models take the general,
vectorized path.  A rule that fails otherwise (an internal error) is a refusal too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import singledispatch

import aesara.scalar as aes
import aesara.tensor as at
import numpy as np
from aesara.graph.basic import Apply, Constant, Variable, clone_replace, io_toposort
from aesara.graph.utils import MethodNotDefined
from aesara.raise_op import CheckAndRaise
from aesara.tensor.basic import (
    Alloc,
    ARange,
    Join,
    MakeVector,
    ScalarFromTensor,
    Split,
    TensorFromScalar,
)
from aesara.tensor.elemwise import CAReduce, DimShuffle, Elemwise
from aesara.tensor.extra_ops import BroadcastTo, CumOp
from aesara.tensor.math import Dot, MaxAndArgmax
from aesara.tensor.shape import Reshape, Shape, Shape_i, SpecifyShape
from aesara.tensor.sort import ArgSortOp, SortOp
from aesara.tensor.special import LogSoftmax, Softmax
from aesara.tensor.subtensor import (
    AdvancedIncSubtensor,
    AdvancedIncSubtensor1,
    AdvancedSubtensor,
    AdvancedSubtensor1,
    IncSubtensor,
    Subtensor,
)
from aesara.tensor.type import TensorType

from aemix.errors import describe_operation

__all__ = [
    "LoweringError",
    "LoopReduce",
    "Looped",
    "ScalarGraph",
    "lower_looped_node",
    "lower_node",
    "lower_to_scalars",
]

DEFAULT_MAX_OPERATIONS = 4000
# A constant axis at least this long (observed data, say) becomes a loop instead of being unrolled.
LOOP_MIN = 16


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
    """The lowering's state: the operation budget and the data behind each loop placeholder."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.data: dict[Variable, np.ndarray] = {}
        self._by_key: dict[tuple, Variable] = {}

    def charge(self, n: int = 1) -> None:
        self.used += n
        if self.used > self.limit:
            raise LoweringError(f"more than {self.limit} scalar operations")

    def placeholder(self, data: np.ndarray) -> Variable:
        """A scalar standing for ``data[i]`` inside a loop over ``i`` (a constant if data is)."""
        data = np.ascontiguousarray(data)
        if np.all(data == data[0]) or np.all(np.isnan(data)):
            return _constant(data[0], data.dtype.name)
        key = (data.dtype.str, data.tobytes())
        if key not in self._by_key:
            var = aes.get_scalar_type(data.dtype.name)(name=f"data{len(self._by_key)}")
            self._by_key[key] = var
            self.data[var] = data
        return self._by_key[key]


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
    if all(_is_constant(e) or e in budget.data for e in entries):
        # Data only: computed here, once per data row, into new data.
        columns = [budget.data[e] if e in budget.data else e.data for e in entries]
        with np.errstate(all="ignore"):
            results = np.vectorize(scalar_op.impl, otypes=out_dtypes)(*columns)
        if len(out_dtypes) == 1:
            results = [results]
        return [budget.placeholder(np.asarray(r, dtype=dt)) for r, dt in zip(results, out_dtypes)]
    budget.charge()
    node = scalar_op.make_node(*entries)
    _require_c_code(node)
    outs = node.outputs
    # Elemwise may ask for an output dtype its scalar op does not produce on its own.
    return [o if o.type.dtype == dt else aes.cast(o, dt) for o, dt in zip(outs, out_dtypes)]


_C_CODE: dict[tuple, bool] = {}


class _AnyKey(dict):
    def __missing__(self, key):
        return ""


def _require_c_code(node: Apply) -> None:
    """Refuse a scalar operation that Aesara cannot write in C (``i0``, ``betainc``, ...): the
    fused loop is C code, and would otherwise fail to compile."""
    op = node.op
    key = (op, tuple(i.type.dtype for i in node.inputs), tuple(o.type.dtype for o in node.outputs))
    if key not in _C_CODE:
        names = [f"i{k}" for k in range(len(node.inputs))]
        outs = [f"o{k}" for k in range(len(node.outputs))]
        try:
            op.c_code(node, "probe", names, outs, _AnyKey())
            _C_CODE[key] = True
        except (NotImplementedError, MethodNotDefined):
            _C_CODE[key] = False
    if not _C_CODE[key]:
        raise LoweringError(f"{describe_operation(op)} has no C implementation in Aesara")


@singledispatch
def lower_node(op, node: Apply, inputs: list[np.ndarray], budget: _Budget) -> list[np.ndarray]:
    """Map the lowered inputs of ``node`` to its lowered outputs (dispatched on the `Op`)."""
    raise LoweringError(f"no scalar lowering for {describe_operation(op)}")


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
    return [np.asarray(x[_subtensor_index(op, index_inputs)], dtype=object)]


def _subtensor_index(op, index_inputs) -> tuple:
    index_values = iter(_static_values(i, "an index").item() for i in index_inputs)

    def resolve(entry):
        if isinstance(entry, slice):
            return slice(
                *(None if e is None else resolve(e) for e in (entry.start, entry.stop, entry.step))
            )
        if isinstance(entry, aes.ScalarType):
            return int(next(index_values))
        return int(entry)

    return tuple(resolve(e) for e in op.idx_list)


@lower_node.register(AdvancedSubtensor1)
@lower_node.register(AdvancedSubtensor)
def _lower_advanced_subtensor(op, node, inputs, budget):
    x, *index_inputs = inputs
    if any(not isinstance(i.type, TensorType) for i in node.inputs[1:]):
        raise LoweringError(f"{describe_operation(op)} with a slice or a new axis")
    # NumPy's own advanced indexing, on the object array, with the constant integer indices.
    index = tuple(_static_values(i, "an index").astype("int64") for i in index_inputs)
    return [np.asarray(x[index], dtype=object)]


def _scattered(x: np.ndarray, y: np.ndarray, targets: np.ndarray, set_: bool, dtype, budget):
    """``x`` with ``y`` added to (or written into) the entries at flat positions ``targets`` (an
    integer array of the shape of ``x[index]``); a repeated position accumulates, as ``np.add.at``
    does.  Adding to a constant zero (a gradient's fresh zeros) is the increment itself."""
    out = np.array(x, dtype=object).reshape(-1)
    y = np.broadcast_to(np.asarray(y, dtype=object), targets.shape)
    for index in np.ndindex(*targets.shape):
        k, value = int(targets[index]), y[index]
        value = value if value.type.dtype == dtype else aes.cast(value, dtype)
        current = out[k]
        if set_ or (_is_constant(current) and current.data == 0):
            out[k] = value
        else:
            out[k] = _apply_scalar(aes.add, [current, value], [dtype], budget)[0]
    return out.reshape(x.shape)


@lower_node.register(IncSubtensor)
def _lower_inc_subtensor(op, node, inputs, budget):
    x, y, *index_inputs = inputs
    index = _subtensor_index(op, index_inputs)
    targets = np.arange(x.size).reshape(x.shape)[index]
    dtype = node.outputs[0].type.dtype
    return [_scattered(x, y, np.asarray(targets), op.set_instead_of_inc, dtype, budget)]


@lower_node.register(AdvancedIncSubtensor1)
@lower_node.register(AdvancedIncSubtensor)
def _lower_advanced_inc_subtensor(op, node, inputs, budget):
    x, y, *index_inputs = inputs
    if any(not isinstance(i.type, TensorType) for i in node.inputs[2:]):
        raise LoweringError(f"{describe_operation(op)} with a slice or a new axis")
    index = tuple(_static_values(i, "an index").astype("int64") for i in index_inputs)
    targets = np.arange(x.size).reshape(x.shape)[index]
    dtype = node.outputs[0].type.dtype
    return [_scattered(x, y, np.asarray(targets), op.set_instead_of_inc, dtype, budget)]


@lower_node.register(Split)
def _lower_split(op, node, inputs, budget):
    x, axis, splits = inputs
    axis = int(_static_values(axis, "a split axis").item())
    sizes = _static_values(splits, "split sizes").astype("int64")
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


@lower_node.register(Reshape)
def _lower_reshape(op, node, inputs, budget):
    x, shape = inputs
    return [x.reshape(tuple(int(s) for s in _static_values(shape, "a reshape's shape")))]


def _shape_from(inputs, what):
    return tuple(int(_static_values(s, what).item()) for s in inputs)


@lower_node.register(BroadcastTo)
@lower_node.register(Alloc)
def _lower_broadcast_to(op, node, inputs, budget):
    x, *shape = inputs
    target = _shape_from(shape, "a broadcast shape")
    padded = (1,) * (len(target) - x.ndim) + x.shape
    long_axes = [a for a, size in enumerate(target) if size >= LOOP_MIN and padded[a] == 1]
    if len(long_axes) == 1:
        # Repeating values along a long axis: a loop whose rows are all the same.
        (axis,) = long_axes
        entries = np.broadcast_to(x, target[:axis] + (1,) + target[axis + 1 :]).copy()
        return [Looped(entries, axis, target[axis])]
    return [np.broadcast_to(x, target).copy()]


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
            raise LoweringError(f"{describe_operation(op)} over an empty axis")
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


@lower_node.register(CumOp)
def _lower_cumop(op, node, inputs, budget):
    (x,) = inputs
    out_dtype = node.outputs[0].type.dtype
    scalar_op = {"add": aes.add, "mul": aes.mul}[op.mode]
    if op.axis is None:
        x, axis = x.reshape(-1), 0
    else:
        axis = op.axis % x.ndim
    moved = np.moveaxis(x, axis, -1)
    out = np.empty(moved.shape, dtype=object)
    for index in np.ndindex(*moved.shape[:-1]):
        running = None
        for j, entry in enumerate(moved[index]):
            entry = entry if entry.type.dtype == out_dtype else aes.cast(entry, out_dtype)
            if running is not None:
                entry = _apply_scalar(scalar_op, [running, entry], [out_dtype], budget)[0]
            out[index + (j,)] = running = entry
    return [np.moveaxis(out, -1, axis)]


def _lanes(x: np.ndarray, axis, lane, budget: _Budget) -> np.ndarray:
    """``lane(entries)`` applied along ``axis`` (every entry when ``axis`` is None): ``lane`` maps
    the list of one lane's entries to as many new entries."""
    if axis is None:
        return np.asarray(lane(list(x.flat)), dtype=object).reshape(x.shape)
    axis = axis % x.ndim
    moved = np.moveaxis(x, axis, -1)
    out = np.empty(moved.shape, dtype=object)
    for index in np.ndindex(*moved.shape[:-1]):
        out[index] = np.asarray(lane(list(moved[index])), dtype=object)
    return np.moveaxis(out, -1, axis)


def _fold(scalar_op, entries, dtype, budget):
    """``entries`` reduced by ``scalar_op`` left to right."""
    acc = entries[0]
    for entry in entries[1:]:
        acc = _apply_scalar(scalar_op, [acc, entry], [dtype], budget)[0]
    return acc


@lower_node.register(Softmax)
@lower_node.register(LogSoftmax)
def _lower_softmax(op, node, inputs, budget):
    (x,) = inputs
    dtype = node.outputs[0].type.dtype

    def apply(scalar_op, *entries):
        return _apply_scalar(scalar_op, list(entries), [dtype], budget)[0]

    def lane(entries):
        # scipy's stable form: shifted by the maximum.
        top = _fold(aes.scalar_maximum, entries, dtype, budget)
        shifted = [apply(aes.sub, e, top) for e in entries]
        exps = [apply(aes.exp, e) for e in shifted]
        total = _fold(aes.add, exps, dtype, budget)
        if isinstance(op, LogSoftmax):
            log_total = apply(aes.log, total)
            return [apply(aes.sub, e, log_total) for e in shifted]
        return [apply(aes.true_divide, e, total) for e in exps]

    return [_lanes(x, op.axis, lane, budget)]


def _sorting_network(values, indices, dtype, budget):
    """Odd-even transposition sort of ``values`` (``n`` rounds of compare-exchange), carrying
    ``indices`` along: swapping only where the first is strictly greater keeps ties in order."""
    values, indices = list(values), list(indices)
    n = len(values)
    for round_ in range(n):
        for i in range(round_ % 2, n - 1, 2):
            a, b = values[i], values[i + 1]
            swap = _apply_scalar(aes.gt, [a, b], ["bool"], budget)[0]
            values[i] = _apply_scalar(aes.switch, [swap, b, a], [dtype], budget)[0]
            values[i + 1] = _apply_scalar(aes.switch, [swap, a, b], [dtype], budget)[0]
            if indices[i] is not None:
                ia, ib = indices[i], indices[i + 1]
                index_dtype = ia.type.dtype
                indices[i] = _apply_scalar(aes.switch, [swap, ib, ia], [index_dtype], budget)[0]
                indices[i + 1] = _apply_scalar(aes.switch, [swap, ia, ib], [index_dtype], budget)[0]
    return values, indices


def _sort_axis(op, axis_input) -> int:
    if op.order is not None:
        raise LoweringError(f"{describe_operation(op)} by fields")
    return int(_static_values(axis_input, "a sort axis").item())


@lower_node.register(SortOp)
def _lower_sort(op, node, inputs, budget):
    x, axis = inputs
    dtype = node.outputs[0].type.dtype

    def lane(entries):
        return _sorting_network(entries, [None] * len(entries), dtype, budget)[0]

    return [_lanes(x, _sort_axis(op, axis), lane, budget)]


@lower_node.register(ArgSortOp)
def _lower_argsort(op, node, inputs, budget):
    x, axis = inputs
    dtype, index_dtype = node.inputs[0].type.dtype, node.outputs[0].type.dtype

    def lane(entries):
        positions = [_constant(i, index_dtype) for i in range(len(entries))]
        return _sorting_network(entries, positions, dtype, budget)[1]

    return [_lanes(x, _sort_axis(op, axis), lane, budget)]


@lower_node.register(ARange)
def _lower_arange(op, node, inputs, budget):
    # A time index (`arange(T) < tau` of a change point): constant bounds, so constant values.
    start, stop, step = (_static_values(i, "an arange's bound").item() for i in inputs)
    return [_lower_array(np.arange(start, stop, step, dtype=node.outputs[0].type.dtype), budget)]


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


@lower_node.register(aes.ScalarOp)
def _lower_scalar_op(op, node, inputs, budget):
    # A scalar operation in a tensor graph (a cast between ScalarFromTensor and TensorFromScalar).
    out_dtypes = [o.type.dtype for o in node.outputs]
    outs = _apply_scalar(op, [x.item() for x in inputs], out_dtypes, budget)
    return [np.asarray(o, dtype=object).reshape(()) for o in outs]


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
            raise LoweringError(f"{describe_operation(op)} fails for every input")
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


# -- loops over data ---------------------------------------------------------------------------
#
# A constant with a long axis (observed data, a grid of support values) is not unrolled: it becomes
# a `Looped` tensor, whose entries along that axis are one scalar expression in placeholders that
# stand for the data's rows.  Elementwise operations extend the expression, expressions of the data
# alone are computed here once per row, and a reduction over the long axis becomes one `LoopReduce`
# scalar operation: a C loop over the rows inside the step's code.  The rows are read from arrays
# the compiled module takes as inputs (`aemix.fused.FusedProgram.data`), never written into its
# code, so the code depends on the data's shapes and dtypes, not on their values.


class Looped:
    """A tensor whose entries along ``axis`` are an expression evaluated at each of ``n`` rows.

    ``entries`` has the tensor's shape with ``1`` at ``axis``; its entries use placeholders
    (`_Budget.placeholder`) for the data.
    """

    def __init__(self, entries: np.ndarray, axis: int, n: int):
        self.entries = entries
        self.axis = axis
        self.n = n

    @property
    def ndim(self) -> int:
        return self.entries.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        shape = list(self.entries.shape)
        shape[self.axis] = self.n
        return tuple(shape)


def _looped_constant(array: np.ndarray, axis: int, budget: _Budget) -> Looped:
    moved = np.moveaxis(array, axis, -1)
    entries = np.empty(moved.shape[:-1], dtype=object)
    for index in np.ndindex(*entries.shape):
        entries[index] = budget.placeholder(moved[index])
    return Looped(np.expand_dims(entries, axis), axis, array.shape[axis])


_REDUCTIONS = {
    aes.Add: ("add", "acc += v;", 0),
    aes.Mul: ("mul", "acc *= v;", 1),
    aes.ScalarMaximum: ("max", "acc = v > acc ? v : acc;", -np.inf),
    aes.ScalarMinimum: ("min", "acc = v < acc ? v : acc;", np.inf),
    aes.AND: ("and", "acc = acc && v;", 1),
    aes.OR: ("or", "acc = acc || v;", 0),
}


def _c_value(value) -> str:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float):
        if np.isnan(value):
            return '__builtin_nan("")'
        if np.isinf(value):
            return "__builtin_inf()" if value > 0 else "-__builtin_inf()"
        return repr(value)
    return str(int(value))


def column_key(column: np.ndarray) -> str:
    """A digest of a data column's dtype and values: two columns with the same key are one."""
    digest = hashlib.sha1(column.dtype.str.encode())
    digest.update(np.ascontiguousarray(column).tobytes())
    return digest.hexdigest()[:20]


class LoopReduce(aes.ScalarOp):
    """Reduce a scalar expression over the rows of constant data: ``acc = acc (op) body(x, d_i)``.

    The data are not part of the C code: the loop reads column ``j`` from a read-only array
    ``aemix_data_<columns[j]>`` that the code around it declares (`aemix.fused.FusedRMHLoop`
    points it at an input array), so the same code runs another data set of the same shapes.

    Parameters
    ----------
    body
        Composite with inputs ``(*free, *rows)``: the free scalars (the same at every row) then one
        scalar per data column.
    reduction
        ``"add"``, ``"mul"``, ``"max"``, ``"min"``, ``"and"`` or ``"or"``.
    data
        The data columns, each of length ``n``.
    columns
        The columns' names in the C code; by default their digests (`column_key`), so that loops
        over the same data are equal and loops over different data are not.  The fused loop
        renames them to their positions among its inputs (`with_columns`).
    """

    __props__ = ("body", "reduction", "columns")
    nin = -1
    nout = 1

    def __init__(
        self,
        body: aes.Composite,
        reduction: str,
        data: tuple[np.ndarray, ...],
        columns: tuple | None = None,
    ):
        self.body = body
        self.reduction = reduction
        self.data = tuple(np.ascontiguousarray(c) for c in data)
        self.columns = tuple(column_key(c) for c in self.data) if columns is None else columns
        super().__init__()

    def with_columns(self, columns: tuple) -> LoopReduce:
        """The same loop, its columns named ``columns`` in the C code."""
        return LoopReduce(self.body, self.reduction, self.data, tuple(columns))

    def make_node(self, *inputs):
        inputs = [aes.as_scalar(i) for i in inputs]
        return Apply(self, inputs, [self.body.outputs_type[0]()])

    def output_types(self, types):
        return [self.body.outputs_type[0]]

    def impl(self, *free):
        update = {
            "add": np.add,
            "mul": np.multiply,
            "max": lambda a, v: v if v > a else a,
            "min": lambda a, v: v if v < a else a,
            "and": lambda a, v: a and v,
            "or": lambda a, v: a or v,
        }[self.reduction]
        acc = {name: init for _, (name, _, init) in _REDUCTIONS.items()}[self.reduction]
        for row in zip(*self.data):
            acc = update(acc, self.body.impl(*free, *row))
        return np.asarray(acc, dtype=self.body.outputs_type[0].dtype)

    def _body_node(self):
        return self.body.make_node(*[t() for t in self.body.inputs_type])

    def c_support_code(self, **kwargs):
        return self.body.c_support_code(**kwargs)

    def c_support_code_apply(self, node, name):
        return self.body.c_support_code_apply(self._body_node(), f"{name}_body")

    def c_code(self, node, name, inames, onames, sub):
        n_free = len(inames)
        rows = [f"row_{j}" for j in range(len(self.data))]
        body_node = self._body_node()
        body_code = self.body.c_code(body_node, f"{name}_body", [*inames, *rows], ["v"], sub)
        out_type = self.body.outputs_type[0].dtype_specs()[1]
        loads = "\n".join(
            f"const {body_node.inputs[n_free + j].type.dtype_specs()[1]} {row} = "
            f"aemix_data_{column}[i];"
            for j, (row, column) in enumerate(zip(rows, self.columns))
        )
        _, update, init = next(v for v in _REDUCTIONS.values() if v[0] == self.reduction)
        return f"""
        {{
            {out_type} acc = {_c_value(float(init)) if "float" in out_type else int(init)};
            {self._pragma()}
            for (npy_intp i = 0; i < {len(self.data[0])}; ++i) {{
                {loads}
                {out_type} v;
                {body_code}
                {update}
            }}
            {onames[0]} = acc;
        }}
        """

    def _pragma(self) -> str:
        # The loop over the rows is the one to vectorize (the fused loop does not vectorize over
        # chains when the step has a loop inside).
        clause = {"add": "+", "mul": "*", "max": "max", "min": "min"}.get(self.reduction)
        return f"#pragma omp simd reduction({clause}:acc)" if clause else ""

    def c_code_cache_version(self):
        version = self.body.c_code_cache_version()
        return (4, *version) if version else ()


def _depends_on_data(var, budget: _Budget, memo: dict) -> bool:
    if var not in memo:
        memo[var] = var in budget.data or (
            var.owner is not None
            and any(_depends_on_data(i, budget, memo) for i in var.owner.inputs)
        )
    return memo[var]


def _loop_reduce(scalar_op, entry, n: int, dtype: str, budget: _Budget):
    """``reduce_i entry(data_i)`` as one `LoopReduce` (or in closed form if ``entry`` has no data)."""
    kind = _REDUCTIONS.get(type(scalar_op))
    if kind is None or (kind[0] in ("max", "min") and not dtype.startswith("float")):
        raise LoweringError(f"no loop for a reduction by {scalar_op} in {dtype}")
    entry = entry if entry.type.dtype == dtype else aes.cast(entry, dtype)
    memo: dict = {}
    if not _depends_on_data(entry, budget, memo):
        if kind[0] == "add":
            return _apply_scalar(aes.mul, [entry, _constant(n, dtype)], [dtype], budget)[0]
        if kind[0] == "mul":
            return _apply_scalar(aes.pow, [entry, _constant(n, dtype)], [dtype], budget)[0]
        return entry
    # The body's inputs: the data placeholders, and the largest subexpressions without data, in
    # the order of first appearance (a set's order follows the variables' ids, which differ from
    # one process to the next, and so would the generated code and its compiled module).
    free: list = []
    seen: dict = {}

    def collect(var):
        if var in seen:
            return
        seen[var] = None
        if var in budget.data or isinstance(var, Constant):
            return
        if not _depends_on_data(var, budget, memo):
            free.append(var)
            return
        for i in var.owner.inputs:
            collect(i)

    collect(entry)
    rows = [v for v in seen if v in budget.data]
    fresh = [v.type() for v in free + rows]
    (body_out,) = clone_replace([entry], dict(zip(free + rows, fresh)))
    if body_out in fresh or body_out.owner is None:
        body_out = aes.identity(body_out)
    body = aes.Composite(fresh, [body_out])
    op = LoopReduce(body, kind[0], tuple(budget.data[r] for r in rows))
    if not free:
        # Data only: reduced here.
        with np.errstate(all="ignore"):
            return _constant(op.impl(), dtype)
    budget.charge(len(body.fgraph.apply_nodes))
    return op.make_node(*free).outputs[0]


def _align(inputs, ndim: int):
    """The loop axis (counted in ``ndim`` dimensions) and length shared by the `Looped` inputs."""
    looped = [x for x in inputs if isinstance(x, Looped)]
    from_right = {x.ndim - x.axis for x in looped}
    lengths = {x.n for x in looped}
    if len(from_right) > 1 or len(lengths) > 1:
        raise LoweringError("loops over different axes or lengths meet")
    return ndim - from_right.pop(), lengths.pop()


@singledispatch
def lower_looped_node(op, node, inputs, budget):
    """Like `lower_node`, for nodes with a `Looped` input; refuse what has no rule."""
    raise LoweringError(
        f"no loop lowering for {describe_operation(op)} (data of {_looped_length(inputs)} rows)"
    )


def _looped_length(inputs) -> int:
    return next(x.n for x in inputs if isinstance(x, Looped))


@lower_looped_node.register(Elemwise)
def _looped_elemwise(op, node, inputs, budget):
    ndim = node.outputs[0].ndim
    looped = [x for x in inputs if isinstance(x, Looped)]
    if len({(x.ndim - x.axis, x.n) for x in looped}) > 1:
        # Loops over different axes meet: keep the innermost, unroll the others if they are data.
        innermost = min(x.ndim - x.axis for x in looped)
        inputs = [
            _unrolled_constant(x, budget)
            if isinstance(x, Looped) and x.ndim - x.axis != innermost
            else x
            for x in inputs
        ]
    axis, n = _align(inputs, ndim)
    arrays = []
    for x in inputs:
        if isinstance(x, Looped):
            arrays.append(x.entries)
            continue
        position = axis - (ndim - x.ndim)
        if position >= 0 and x.shape[position] != 1:
            rows = _as_rows(x, position, n, budget)
            if rows is None:
                # Symbolic values along the data's axis: unroll the data instead, if it is data.
                explicit = [_unrolled_constant(y, budget) for y in inputs]
                return _lower_elemwise(op, node, explicit, budget)
            x = rows.entries
        arrays.append(x)
    (out,) = _lower_elemwise(op, node, arrays, budget) if len(node.outputs) == 1 else (None,)
    if out is None:
        raise LoweringError(f"{describe_operation(op)} with several outputs inside a loop")
    return [Looped(out, axis, n)]


def _as_rows(x: np.ndarray, axis: int, n: int, budget: _Budget) -> Looped | None:
    """An explicit array with ``n`` entries along ``axis`` as a loop, if it can be one."""
    if x.shape[axis] != n:
        return None
    first = np.take(x, [0], axis=axis)
    if all(np.take(x, [i], axis=axis).tolist() == first.tolist() for i in range(1, n)):
        return Looped(first, axis, n)  # the same entries in every row
    values = _values(x)
    if values is not None:
        return _looped_constant(values, axis, budget)
    return None


@lower_looped_node.register(DimShuffle)
def _looped_dimshuffle(op, node, inputs, budget):
    (x,) = inputs
    (entries,) = _lower_dimshuffle(op, node, [x.entries], budget)
    return [Looped(entries, list(op.new_order).index(x.axis), x.n)]


@lower_looped_node.register(BroadcastTo)
@lower_looped_node.register(Alloc)
def _looped_broadcast(op, node, inputs, budget):
    x, *shape = inputs
    if any(isinstance(s, Looped) for s in shape):
        raise LoweringError(f"{describe_operation(op)} to a shape read from data")
    target = list(_shape_from(shape, "a broadcast shape"))
    axis = x.axis + len(target) - x.ndim
    if target[axis] != x.n:
        raise LoweringError(
            f"{describe_operation(op)} of a loop of {x.n} rows to length {target[axis]}"
        )
    target[axis] = 1
    return [Looped(np.broadcast_to(x.entries, target).copy(), axis, x.n)]


@lower_looped_node.register(Subtensor)
def _looped_subtensor(op, node, inputs, budget):
    x, *index_inputs = inputs
    if not isinstance(x, Looped) or any(isinstance(i, Looped) for i in index_inputs):
        raise LoweringError(f"{describe_operation(op)} with an index read from data")
    index = _subtensor_index(op, index_inputs)
    index = index + (slice(None),) * (x.ndim - len(index))
    if index[x.axis] != slice(None):
        raise LoweringError(f"{describe_operation(op)} of the rows of a loop")
    axis = x.axis - sum(1 for i in index[: x.axis] if not isinstance(i, slice))
    return [Looped(np.asarray(x.entries[index], dtype=object), axis, x.n)]


@lower_looped_node.register(SpecifyShape)
def _looped_identity(op, node, inputs, budget):
    return [inputs[0]]


@lower_looped_node.register(CAReduce)
def _looped_careduce(op, node, inputs, budget):
    (x,) = inputs
    axes = tuple(range(x.ndim)) if op.axis is None else tuple(op.axis)
    # Reduce the other axes first, as usual, keeping the loop axis (of size 1 in the entries).
    others = tuple(a for a in axes if a != x.axis)
    entries = x.entries
    if others:
        clone = op.clone(axis=others)
        inner = Apply(clone, [node.inputs[0]], [node.outputs[0].type()])
        (entries,) = _lower_careduce(clone, inner, [entries], budget)
    axis = x.axis - sum(1 for a in others if a < x.axis)
    if x.axis not in axes:
        return [Looped(entries, axis, x.n)]
    dtype = node.outputs[0].type.dtype
    entries = entries.reshape(entries.shape[:axis] + entries.shape[axis + 1 :])
    out = np.empty(entries.shape, dtype=object)
    for index in np.ndindex(*entries.shape):
        out[index] = _loop_reduce(op.scalar_op, entries[index], x.n, dtype, budget)
    return [out]


@lower_looped_node.register(AdvancedSubtensor1)
@lower_looped_node.register(AdvancedSubtensor)
def _looped_gather(op, node, inputs, budget):
    x, *indices = inputs
    if isinstance(x, Looped) or len(indices) != 1:
        raise LoweringError(f"{describe_operation(op)} of data, or with several index arrays")
    (index,) = indices
    dtype = node.outputs[0].type.dtype
    trailing = x.shape[1:]
    entries = np.empty(index.entries.shape + trailing, dtype=object)
    for i in np.ndindex(*index.entries.shape):
        k = index.entries[i]
        for t in np.ndindex(*trailing):
            # x[k] for a k read from data: a chain of selections over x's first axis.
            value = x[(x.shape[0] - 1, *t)]
            for j in range(x.shape[0] - 2, -1, -1):
                hit = _apply_scalar(aes.eq, [k, _constant(j, k.type.dtype)], ["bool"], budget)[0]
                value = _apply_scalar(aes.switch, [hit, x[(j, *t)], value], [dtype], budget)[0]
            entries[i + t] = value
    return [Looped(entries, index.axis, index.n)]


@lower_looped_node.register(CheckAndRaise)
def _looped_check(op, node, inputs, budget):
    x, *conditions = inputs
    symbolic = []
    for c in conditions:
        for e in (c.entries if isinstance(c, Looped) else c).flat:
            if e in budget.data:
                if not np.all(budget.data[e]):
                    raise LoweringError(f"{describe_operation(op)} fails for some data")
            elif not _is_constant(e):
                if isinstance(c, Looped):
                    raise LoweringError(
                        f"{describe_operation(op)} with a condition on the inputs and the data"
                    )
                symbolic.append(e)
            elif not bool(e.data):
                raise LoweringError(f"{describe_operation(op)} fails for every input")
    if not symbolic:
        return [x]
    if not isinstance(x, Looped):
        return _lower_assert(op, node, [x, *[np.asarray(symbolic, dtype=object)]], budget)
    (entries,) = _lower_assert(op, node, [x.entries, np.asarray(symbolic, dtype=object)], budget)
    return [Looped(entries, x.axis, x.n)]


def _unrolled_constant(x, budget: _Budget) -> np.ndarray:
    """A `Looped` input as an explicit array: its expression written out once per data row."""
    if not isinstance(x, Looped):
        return x
    # Only the data this loop reads (other loops' data may have other lengths).
    from aesara.graph.basic import ancestors

    read = set(ancestors([e for e in x.entries.flat if isinstance(e, Variable)]))
    placeholders = [p for p in budget.data if p in read]
    for p in placeholders:
        if len(budget.data[p]) != x.n:
            raise LoweringError("a loop reads data of two different lengths")
    out = np.empty(x.shape, dtype=object)
    for i in range(x.n):
        rows = {p: _constant(budget.data[p][i], budget.data[p].dtype.name) for p in placeholders}
        memo: dict = {}
        for index in np.ndindex(*x.entries.shape):
            position = list(index)
            position[x.axis] = i
            out[tuple(position)] = _substitute(x.entries[index], rows, budget, memo)
    return out


def _substitute(var, rows: dict, budget: _Budget, memo: dict):
    """``var`` with the placeholders replaced by one row's values, folding what becomes constant."""
    if var in rows:
        return rows[var]
    if var.owner is None:
        return var
    if var not in memo:
        inputs = [_substitute(i, rows, budget, memo) for i in var.owner.inputs]
        if all(a is b for a, b in zip(inputs, var.owner.inputs)):
            memo[var] = var
        else:
            dtypes = [o.type.dtype for o in var.owner.outputs]
            outs = _apply_scalar(var.owner.op, inputs, dtypes, budget)
            for old, new in zip(var.owner.outputs, outs):
                memo[old] = new
    return memo[var]


def _lower_constant(var: Constant, budget: _Budget):
    if not hasattr(var.type, "dtype"):
        # (e.g. a new axis, `None`, in an advanced index)
        raise LoweringError(
            "an index that is no number (a new axis, None, or a slice inside an indexing "
            "expression)"
        )
    return _lower_array(np.asarray(var.data, dtype=var.type.dtype), budget)


def _lower_array(array: np.ndarray, budget: _Budget):
    long_axes = [a for a, size in enumerate(array.shape) if size >= LOOP_MIN]
    if long_axes:
        # The last long axis is looped over; the others are unrolled.
        return _looped_constant(array, long_axes[-1], budget)
    return _constant_array(array)


def _dot_as_elemwise(a: Variable, b: Variable) -> Variable:
    """``dot(a, b)`` of vectors and matrices as a product and a sum, which lower (and loop over
    data) like any elementwise expression."""
    if b.ndim == 1:
        return (a * b).sum(axis=-1)
    return (at.shape_padright(a) * b).sum(axis=-2)


def _without_dots(inputs: Sequence[Variable], outputs: Sequence[Variable]) -> list[Variable]:
    """``outputs`` with every ``dot`` (``@``) written as `_dot_as_elemwise`."""
    new: dict[Variable, Variable] = {}
    for node in io_toposort(list(inputs), list(outputs)):
        node_inputs = [new.get(i, i) for i in node.inputs]
        if isinstance(node.op, Dot):
            new[node.outputs[0]] = _dot_as_elemwise(*node_inputs)
        elif any(a is not b for a, b in zip(node_inputs, node.inputs)):
            clone = node.clone_with_new_inputs(node_inputs, strict=False)
            new.update(zip(node.outputs, clone.outputs))
    return [new.get(o, o) for o in outputs]


def _lower_one(node: Apply, node_inputs: list, budget: _Budget) -> list:
    if any(isinstance(x, Looped) for x in node_inputs):
        try:
            return lower_looped_node(node.op, node, node_inputs, budget)
        except LoweringError:
            # A loop used otherwise than elementwise (as an index, a shape): unrolled.
            explicit = [_unrolled_constant(x, budget) for x in node_inputs]
            return lower_node(node.op, node, explicit, budget)
    return lower_node(node.op, node, node_inputs, budget)


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
    try:
        outputs = _without_dots(inputs, outputs)
    except Exception as exc:  # noqa: BLE001 - e.g. a dot of more than two dimensions
        raise LoweringError(
            f"a matrix product failed to lower ({type(exc).__name__}: {exc})"
        ) from exc
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
            lowered[var] = _lower_constant(var, budget)
            return lowered[var]
        raise LoweringError(f"{var} is neither an input nor computed from the inputs")

    for node in io_toposort(list(inputs), list(outputs)):
        node_inputs = [get(i) for i in node.inputs]
        try:
            outs = _lower_one(node, node_inputs, budget)
        except LoweringError:
            raise
        except Exception as exc:  # noqa: BLE001 - a rule's failure is a refusal, not a crash
            raise LoweringError(
                f"lowering {describe_operation(node.op)} failed ({type(exc).__name__}: {exc})"
            ) from exc
        for var, array in zip(node.outputs, outs):
            if var.type.ndim != array.ndim or any(
                s is not None and s != a for s, a in zip(var.type.shape, array.shape)
            ):
                raise LoweringError(f"{node.op} lowered to shape {array.shape} for {var.type}")
            lowered[var] = array
    results = [get(o) for o in outputs]
    if any(isinstance(r, Looped) for r in results):
        raise LoweringError("an output has a data axis (only reductions over data are lowered)")
    return ScalarGraph(scalar_inputs, results, budget.used)
