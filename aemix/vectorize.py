"""Batch a single-chain graph over a leading chain axis.

`vectorize_graph` walks a graph written for one chain and rebuilds every node that depends on a batched
input with one more leading axis, the way ``jax.vmap`` does for functions.  Nodes that do not depend on
a batched input are shared unchanged (model constants, data, step size).  Each kind of Op has a batching
rule registered with `batch_node`; an Op without a rule is mapped over the chains with ``scan`` (correct,
slower), never applied to the whole batch, which would mix chains, and so is a node whose rule fails
on a case it did not foresee.  The rules cover what aeppl's densities, aemix's marginal densities, the
value transforms and the kernels produce, the gradients of those (``inc_subtensor`` and its advanced
forms, ``split``: `aemix.gradient`), and the operations of models (``dot``, ``@``, softmax, sort,
indexing); add one with ``@batch_node.register(MyOp)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import singledispatch

import aesara
import aesara.tensor as at
import numpy as np
from aesara.graph.basic import Apply, Constant, Variable, clone_replace, io_toposort
from aesara.graph.op import Op
from aesara.raise_op import CheckAndRaise
from aesara.scalar import ScalarOp, ScalarType
from aesara.scan.op import Scan
from aesara.tensor.basic import (
    Alloc,
    Join,
    MakeVector,
    ScalarFromTensor,
    Split,
    TensorFromScalar,
)
from aesara.tensor.elemwise import CAReduce, DimShuffle, Elemwise
from aesara.tensor.extra_ops import BroadcastTo, CumOp
from aesara.tensor.math import Dot, MatMul, MaxAndArgmax
from aesara.tensor.random.basic import CategoricalRV
from aesara.tensor.random.op import RandomVariable
from aesara.tensor.shape import Reshape, Shape, Shape_i, SpecifyShape, Unbroadcast
from aesara.tensor.sort import ArgSortOp, SortOp
from aesara.tensor.special import LogSoftmax, Softmax
from aesara.tensor.subtensor import (
    AdvancedIncSubtensor,
    AdvancedIncSubtensor1,
    AdvancedSubtensor,
    AdvancedSubtensor1,
    IncSubtensor,
    Subtensor,
    inc_subtensor,
    indices_from_subtensor,
    set_subtensor,
)
from aesara.tensor.type import TensorType
from aesara.tensor.var import TensorConstant

from aemix.errors import VectorizationError

__all__ = ["vectorize_graph", "vectorize_draws", "batch_node", "Batched"]


class Batched:
    """The batching context: the symbolic number of chains, shared by every rule.

    ``drawing``: the batched graph is sampled from (`vectorize_draws`), so a random variable may
    become any graph that draws from its distribution; otherwise (a density's graph) it stays a
    random variable, which aeppl gives a density.
    """

    def __init__(self, size: Variable, drawing: bool = False):
        self.size = size
        self.drawing = drawing

    def broadcast(self, x: Variable) -> Variable:
        """An unbatched ``x`` repeated along a new leading chain axis."""
        x = at.as_tensor_variable(x)
        return alloc(x, self.size, *[x.shape[i] for i in range(x.ndim)])

    def rows(self) -> Variable:
        """``arange(size)``: a constant when the number of chains is, so that indexing by it
        has a static shape (Aesara's shape inference otherwise builds an assertion per index)."""
        if isinstance(self.size, TensorConstant):
            return at.constant(np.arange(int(self.size.data)))
        return at.arange(self.size)


def alloc(value: Variable, *shape) -> Variable:
    """``at.alloc`` without its static-shape inference, which rewrites the shape graphs on every
    call: over the nested graphs of a Markov chain that is quadratic in the chain's length."""
    value = at.as_tensor_variable(value)
    shape = [at.as_tensor_variable(s) for s in shape]
    shape = [s if s.type.dtype.startswith(("int", "uint")) else s.astype("int64") for s in shape]
    static = [int(s.data) if isinstance(s, TensorConstant) else None for s in shape]
    # Trailing axes that the value already has (and does not broadcast) keep their length.
    for k, length in enumerate(reversed(value.type.shape), start=1):
        if length is not None and length != 1 and static[-k] is None:
            static[-k] = length
    return Apply(
        Alloc(), [value, *shape], [TensorType(value.dtype, shape=tuple(static))()]
    ).outputs[0]


def vectorize_graph(
    outputs: Sequence[Variable],
    replacements: dict[Variable, Variable],
    reads: Callable[[Variable], bool] | None = None,
) -> list[Variable]:
    """Rebuild ``outputs`` with the inputs in ``replacements`` given a leading chain axis.

    Parameters
    ----------
    outputs
        Graphs written for one chain.
    replacements
        Maps single-chain inputs to their batched counterparts (same type with one more leading
        axis).  Inputs not in the map are shared by every chain.
    reads
        Whether a variable depends on an input in ``replacements``; when given, the walk does not
        visit what does not (which is then shared, as it would be anyway), so that its cost is
        the size of the part that depends on them, not of the whole graph (see
        `aemix.dependence`).

    Returns
    -------
    list of Variable
        The outputs with a leading chain axis (outputs that do not depend on a batched input are
        broadcast so that every returned output is batched).

    Raises
    ------
    VectorizationError
        If a node that depends on a batched input has an Op with no batching rule.
    """
    if not replacements:
        raise ValueError("vectorize_graph needs at least one batched input")
    first = next(iter(replacements.values()))
    # A static length keeps the batched graphs' static shapes (and Aesara's shape inference cheap).
    length = first.type.shape[0]
    ctx = Batched(first.shape[0] if length is None else at.constant(length, dtype="int64"))
    new: dict[Variable, tuple[Variable, bool]] = {
        old: (batched, True) for old, batched in replacements.items()
    }
    return _rebuild(outputs, list(replacements), new, ctx, draw_per_chain=False, reads=reads)


def vectorize_draws(outputs: Sequence[Variable], n_chains: Variable) -> list[Variable]:
    """Rebuild a forward-sampling graph so that it draws ``n_chains`` independent copies at once.

    Every `RandomVariable` gets a leading chain axis in its ``size`` (so each chain has its own
    draw, even where the parameters are shared), and everything downstream is batched as in
    `vectorize_graph`.

    Parameters
    ----------
    outputs
        Graphs of one draw.
    n_chains
        Symbolic integer scalar: the number of copies.

    Returns
    -------
    list of Variable
        The outputs with a leading axis of length ``n_chains``.
    """
    return _rebuild(outputs, None, {}, Batched(n_chains, drawing=True), draw_per_chain=True)


def _rebuild(outputs, inputs, new, ctx, draw_per_chain: bool, reads=None) -> list[Variable]:
    if reads is None:
        nodes = io_toposort(inputs or [], list(outputs))
    else:
        from aemix.dependence import reading

        nodes = reading(outputs, reads)
    for node in nodes:
        node_inputs = [new.get(inp, (inp, False)) for inp in node.inputs]
        fresh_draw = draw_per_chain and isinstance(node.op, RandomVariable)
        if not fresh_draw and not any(is_batched for _, is_batched in node_inputs):
            if any(var is not inp for (var, _), inp in zip(node_inputs, node.inputs)):
                # Unbatched, but reads a rebuilt input (e.g. the shape of a batched variable).
                clone = node.clone_with_new_inputs([var for var, _ in node_inputs], strict=False)
                for old, var in zip(node.outputs, clone.outputs):
                    new[old] = (var, False)
            continue
        results = _batched(node, ctx, node_inputs)
        for old, result in zip(node.outputs, results):
            new[old] = result
    out = []
    for o in outputs:
        var, is_batched = new.get(o, (o, False))
        out.append(var if is_batched else ctx.broadcast(var))
    return out


def _batched(node: Apply, ctx: Batched, node_inputs: list[tuple[Variable, bool]]):
    """``batch_node``, with a rule's internal failure (a case it did not foresee) answered by
    mapping the node over the chains, which is correct for any Op; a rule's deliberate refusal
    (`VectorizationError`) stands."""
    try:
        return batch_node(node.op, node, ctx, *node_inputs)
    except VectorizationError:
        raise
    except Exception:  # noqa: BLE001 - any other failure is the rule's, not the model's
        return map_over_chains(node.op, node, ctx, *node_inputs)


@singledispatch
def batch_node(op: Op, node: Apply, ctx: Batched, *inputs: tuple[Variable, bool]):
    """Batch ``node``; ``inputs`` are ``(variable, is_batched)`` pairs.

    Returns a list of ``(variable, is_batched)`` pairs, one per output of ``node``.  An Op with no
    rule of its own is mapped over the chains with ``scan`` (`map_over_chains`): correct for any Op
    whose node can be rebuilt on one chain's inputs, and slower than a rule.
    """
    return map_over_chains(op, node, ctx, *inputs)


def map_over_chains(op: Op, node: Apply, ctx: Batched, *inputs: tuple[Variable, bool]):
    """The node applied to each chain's inputs in turn (``aesara.map``)."""
    from aesara import map as scan_map

    if isinstance(op, RandomVariable):
        raise VectorizationError(op, "a random variable cannot be mapped over chains")
    # Each variable enters the loop once (Aesara refuses an input given twice: a node that
    # reads one variable at two of its inputs), and every input that reads it takes it there.
    batched = list(dict.fromkeys(x for x, b in inputs if b))
    positions = [(i, batched.index(x)) for i, (x, b) in enumerate(inputs) if b]
    # The inputs shared by every chain enter as non-sequences: a variable the step function only
    # closed over would have its whole graph rebuilt inside the loop, out of reach of the
    # substitutions made later (a summed-out variable's value for its view) and, when it reads a
    # random variable, drawn afresh at every evaluation.
    fixed_vars = list(
        dict.fromkeys(
            x
            for x, b in inputs
            if not b and isinstance(x.type, TensorType) and not isinstance(x, Constant)
        )
    )
    shared = [
        (i, fixed_vars.index(x)) for i, (x, b) in enumerate(inputs) if x in fixed_vars and not b
    ]

    def one_chain(*args_in):
        per_chain, fixed = args_in[: len(batched)], args_in[len(batched) :]
        args = [x for x, _ in inputs]
        for i, j in shared:
            args[i] = fixed[j]
        for i, j in positions:
            x = per_chain[j]
            # A per-chain scalar (an index) is a vector over chains, so one chain's is a 0-d tensor.
            wants_scalar = isinstance(node.inputs[i].type, ScalarType)
            args[i] = at.scalar_from_tensor(x) if wants_scalar and x.ndim == 0 else x
        try:
            return node.clone_with_new_inputs(args, strict=False).outputs
        except Exception as exc:  # noqa: BLE001 - any failure means the Op cannot be mapped
            raise VectorizationError(op, f"it cannot be applied to one chain: {exc}") from exc

    try:
        outs, _ = scan_map(one_chain, sequences=batched, non_sequences=fixed_vars)
    except VectorizationError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported in aemix's terms, with Aesara's reason
        raise VectorizationError(
            op, f"it cannot be mapped over chains ({type(exc).__name__}: {exc})"
        ) from exc
    outs = outs if isinstance(outs, list | tuple) else [outs]
    return [(o, True) for o in outs]


def _padded(x: Variable, is_batched: bool) -> Variable:
    return x if is_batched else at.shape_padleft(x)


@batch_node.register(Elemwise)
def _batch_elemwise(op, node, ctx, *inputs):
    outs = op.make_node(*[_padded(x, b) for x, b in inputs]).outputs
    return [(o, True) for o in outs]


@batch_node.register(RandomVariable)
def _batch_random_variable(op, node, ctx, rng, size, dtype, *params):
    rng, rng_batched = rng
    if rng_batched or size[1] or dtype[1]:
        raise VectorizationError(op, "a random generator, size or dtype varies across chains")
    value = node.outputs[1]
    batch_ndim = value.ndim - op.ndim_supp
    new_params = []
    for (param, is_batched), core_ndim in zip(params, op.ndims_params):
        if is_batched:
            # Align the parameter's own batch dimensions with the draw's, after the chain axis.
            missing = batch_ndim - (param.ndim - 1 - core_ndim)
            param = param.dimshuffle(0, *(["x"] * missing), *range(1, param.ndim))
        new_params.append(param)
    new_size = [ctx.size, *[value.shape[i] for i in range(batch_ndim)]]
    if isinstance(op, CategoricalRV) and ctx.drawing:
        # Inverse CDF in the graph, as Aesara's sampler does (the count of CDF values below a
        # uniform), which otherwise loops over the draws in Python.
        (p,) = new_params
        new_rng, u = at.random.uniform(0.0, 1.0, size=new_size, rng=rng).owner.outputs
        cdf = at.cumsum(p, axis=-1)[..., :-1]
        return [(new_rng, False), (at.lt(cdf, u[..., None]).sum(axis=-1).astype(value.dtype), True)]
    new_rng, new_value = op.make_node(rng, new_size, dtype[0], *new_params).outputs
    return [(new_rng, False), (new_value, True)]


@batch_node.register(Dot)
def _batch_dot(op, node, ctx, x, y):
    """``dot`` of one chain's vectors or matrices, with a leading chain axis on either side."""
    (x, x_batched), (y, y_batched) = x, y
    x_ndim, y_ndim = node.inputs[0].ndim, node.inputs[1].ndim
    if not y_batched:
        # (c, [m,] n) . (n[, k]): one BLAS product over every chain's rows.
        return [(at.tensordot(x, y, axes=[[x.ndim - 1], [0]]), True)]
    if not x_batched:
        # ([m,] n) . (c, n[, k]) -> (c, [m,] [k])
        out = at.tensordot(x, y, axes=[[x_ndim - 1], [1]])
        if x_ndim == 2:
            out = at.moveaxis(out, 1, 0)
        return [(out, True)]
    # Both per chain: broadcast the contraction.
    xe = x if y_ndim == 1 else at.shape_padright(x)
    ye = y if x_ndim == 1 else at.shape_padaxis(y, 1)
    axis = -1 if y_ndim == 1 else -2
    return [(at.sum(xe * ye, axis=axis), True)]


@batch_node.register(MatMul)
def _batch_matmul(op, node, ctx, x, y):
    """``matmul``, whose leading axes broadcast: a vector operand is made a row (first) or a
    column (second) matrix, and the axis added for it is dropped from the product."""
    (x, _), (y, _) = x, y
    x_vector, y_vector = node.inputs[0].ndim == 1, node.inputs[1].ndim == 1
    if x_vector:
        x = at.shape_padaxis(x, x.ndim - 1)
    if y_vector:
        y = at.shape_padright(y)
    out = op(x, y)
    if y_vector:
        out = out[..., 0]
    if x_vector:
        out = out[..., 0, :] if not y_vector else out[..., 0]
    return [(out, True)]


@batch_node.register(Unbroadcast)
def _batch_unbroadcast(op, node, ctx, x):
    x, _ = x
    return [(Unbroadcast(*(a + 1 for a in op.axes))(x), True)]


@batch_node.register(Scan)
def _batch_scan(op, node, ctx, *inputs):
    """A loop over steps (an HMC trajectory's leapfrog steps) whose states and non-sequences are
    per chain: the same loop over the steps, its step batched over the chains, the states carried
    with a chain axis (second in the loop, first outside).  Loops with sequences, several taps,
    updates or a stopping condition are mapped over chains."""
    info = op.info
    n_steps, n_steps_batched = inputs[0]
    if (
        n_steps_batched
        or info.as_while
        or info.n_seqs
        or info.n_mit_mot
        or info.n_mit_sot
        or info.n_shared_outs
        or any(taps != (-1,) for taps in info.sit_sot_in_slices)
    ):
        return map_over_chains(op, node, ctx, *inputs)
    outer = [x for x, _ in inputs]
    flags = [b for _, b in inputs]
    n_sitsot = info.n_sit_sot
    buffers = op.outer_sitsot(outer)
    first = 1 + info.n_seqs
    # Every state carries a chain axis (a state of one chain becomes a chain's in the loop).
    initial = [
        buffer[:, 0] if flags[first + i] else ctx.broadcast(buffer[0])
        for i, buffer in enumerate(buffers)
    ]
    non_seqs = op.outer_non_seqs(outer)
    non_seq_flags = flags[len(outer) - len(non_seqs) :]
    inner_states = op.inner_sitsot(op.inner_inputs)
    inner_non_seqs = op.inner_non_seqs(op.inner_inputs)
    inner_outs = op.inner_sitsot_outs(op.inner_outputs) + op.inner_nitsot_outs(op.inner_outputs)

    def step(*args):
        states, fixed = args[:n_sitsot], args[n_sitsot:]
        batched = dict(zip(inner_states, states))
        batched.update(
            (inner, value) for inner, value, b in zip(inner_non_seqs, fixed, non_seq_flags) if b
        )
        outs = vectorize_graph(inner_outs, batched)
        shared = {
            inner: value for inner, value, b in zip(inner_non_seqs, fixed, non_seq_flags) if not b
        }
        return clone_replace(outs, shared) if shared else outs

    results, _ = aesara.scan(
        step,
        outputs_info=[*initial, *([None] * info.n_nit_sot)],
        non_sequences=non_seqs,
        n_steps=n_steps,
        strict=True,
    )
    results = results if isinstance(results, list) else [results]
    new = [
        at.moveaxis(at.concatenate([init[None], states]), 0, 1)
        for init, states in zip(initial, results[:n_sitsot])
    ]
    new += [at.moveaxis(out, 0, 1) for out in results[n_sitsot:]]
    return [(out, True) for out in new]


@batch_node.register(DimShuffle)
def _batch_dimshuffle(op, node, ctx, x):
    x, _ = x
    order = [0] + [d if d == "x" else d + 1 for d in op.new_order]
    return [(x.dimshuffle(*order), True)]


@batch_node.register(CAReduce)
def _batch_careduce(op, node, ctx, x):
    x, _ = x
    axis = range(x.ndim - 1) if op.axis is None else op.axis
    return [(op.clone(axis=tuple(a + 1 for a in axis))(x), True)]


@batch_node.register(CumOp)
def _batch_cumop(op, node, ctx, x):
    x, _ = x
    if op.axis is None:
        return map_over_chains(op, node, ctx, (x, True))
    axis = op.axis + 1 if op.axis >= 0 else op.axis
    return [(type(op)(axis=axis, mode=op.mode)(x), True)]


@batch_node.register(Subtensor)
def _batch_subtensor(op, node, ctx, x, *index_inputs):
    x, x_batched = x
    indices = indices_from_subtensor([v for v, _ in index_inputs], op.idx_list)
    if not any(b for _, b in index_inputs):
        return [(x[(slice(None), *indices)], True)]
    per_chain = {v for v, b in index_inputs if b}
    if any(
        isinstance(i, slice) and any(e in per_chain for e in (i.start, i.stop, i.step))
        for i in indices
    ):
        raise VectorizationError(op, "a slice whose bounds differ between chains")
    if len(indices) == 1 and not x_batched:
        # theta[i] with i per chain: the rows of theta that the chains' indices pick.
        return [(x[indices[0]], True)]
    # ``x[i, :, j]`` with per-chain scalars: ``x[rows, i, :, j]``, every integer index an
    # advanced index of the chains' shape (NumPy puts that axis first).
    key = [
        i if isinstance(i, slice) or i in per_chain else at.as_tensor_variable(i) for i in indices
    ]
    x = x if x_batched else ctx.broadcast(x)
    return [(x[(ctx.rows(), *key)], True)]


@batch_node.register(AdvancedSubtensor1)
@batch_node.register(AdvancedSubtensor)
def _batch_advanced_subtensor(op, node, ctx, x, *index_inputs):
    x_and_batched = x
    x, x_batched = x
    indices = [v for v, _ in index_inputs]
    if not any(b for _, b in index_inputs):
        return [(x[(slice(None), *indices)], True)]
    if len(index_inputs) != 1:
        arrays = all(
            isinstance(v.type, TensorType) and v.type.dtype.startswith(("int", "uint"))
            for v in indices
        )
        if not arrays:
            sliced = _one_index_among_full_slices(node, ctx, x_and_batched, index_inputs)
            if sliced is not None:
                return sliced
            # Slices or masks beside a per-chain index array: mapped.
            return map_over_chains(op, node, ctx, x_and_batched, *index_inputs)
        # Index arrays only (``take_along_axis``): they broadcast together, so each gets the
        # chain axis in front of the common number of axes (one chain's rows, from the right).
        common = max(v.ndim - b for v, b in index_inputs)
        padded = []
        for v, b in index_inputs:
            own = v.ndim - b
            if b:
                padded.append(v.dimshuffle(0, *(["x"] * (common - own)), *range(1, v.ndim)))
            else:
                padded.append(v.dimshuffle(*(["x"] * (1 + common - own)), *range(v.ndim)))
        if not x_batched:
            return [(x[tuple(padded)], True)]
        rows = ctx.rows().reshape((-1,) + (1,) * common)
        return [(x[(rows, *padded)], True)]
    (index,) = indices
    if not x_batched:
        # theta[z] with z batched: advanced indexing by the (chains, ...) index array.
        return [(x[index], True)]
    rows = ctx.rows().reshape((-1,) + (1,) * (index.ndim - 1))
    return [(x[rows, index], True)]


def is_full_slice(v: Variable) -> bool:
    """Whether an index input of ``AdvancedSubtensor`` is ``:`` (a slice without bounds)."""
    from aesara.tensor.type_other import MakeSlice, NoneTypeT, SliceConstant

    if isinstance(v, SliceConstant):
        return v.data.start is None and v.data.stop is None and v.data.step is None
    return (
        v.owner is not None
        and isinstance(v.owner.op, MakeSlice)
        and all(isinstance(i.type, NoneTypeT) for i in v.owner.inputs)
    )


def _one_index_among_full_slices(node, ctx, x, index_inputs):
    """``x[:, ..., idx, ...]`` with one index array (per chain or shared) among full slices, as
    advanced indexing over the chains; ``None`` for other forms.

    For one chain the index's axes replace ``x``'s axis ``p``; batched, NumPy puts the axes of
    index arrays separated by slices first, so the chains' rows index axis 0 along with it and
    the result is transposed back to ``(chains, *x.shape[:p], *idx.shape, *x.shape[p + 1:])``.
    """
    (x, x_batched) = x
    tensors = [i for i, (v, _) in enumerate(index_inputs) if isinstance(v.type, TensorType)]
    if len(tensors) != 1 or not all(
        is_full_slice(v) for i, (v, _) in enumerate(index_inputs) if i != tensors[0]
    ):
        return None
    (p,) = tensors
    index, index_batched = index_inputs[p]
    if not index.type.dtype.startswith(("int", "uint")):
        return None
    out = node.outputs[0]
    before = [slice(None)] * p
    if not x_batched:
        # Index axis p of x by the (chains, ...) array: the chain axis lands at p; move it first.
        result = x[(*before, index)]
        order = [p, *range(p), *range(p + 1, result.ndim)]
        return [(result.dimshuffle(*order), True)]
    if not index_batched:
        return [(x[(slice(None), *before, index)], True)]
    own = index.ndim - 1
    rows = ctx.rows().reshape((-1,) + (1,) * own)
    result = x[(rows, *before, index)]
    # Now (chains, *idx axes, *x axes before p, *x axes after p).
    n_before = p
    order = [0, *range(1 + own, 1 + own + n_before), *range(1, 1 + own)]
    order += list(range(1 + own + n_before, result.ndim))
    if result.ndim != out.ndim + 1:
        return None
    return [(result.dimshuffle(*order), True)]


@batch_node.register(ScalarFromTensor)
def _batch_scalar_from_tensor(op, node, ctx, x):
    # A per-chain scalar is a vector over chains; the consumer (an index) handles it.
    return [x]


@batch_node.register(ScalarOp)
def _batch_scalar_op(op, node, ctx, *inputs):
    # A scalar operation in a tensor graph: per-chain scalars are vectors over chains (see
    # `_batch_scalar_from_tensor`), so it applies elementwise.
    args = [at.tensor_from_scalar(x) if isinstance(x.type, ScalarType) else x for x, _ in inputs]
    outs = Elemwise(op)(*args, return_list=True)
    return [(o, True) for o in outs]


@batch_node.register(TensorFromScalar)
def _batch_tensor_from_scalar(op, node, ctx, x):
    return [x]


@batch_node.register(MakeVector)
def _batch_make_vector(op, node, ctx, *inputs):
    columns = [x if b else ctx.broadcast(x) for x, b in inputs]
    return [(at.stack(columns, axis=1).astype(node.outputs[0].dtype), True)]


@batch_node.register(Join)
def _batch_join(op, node, ctx, axis, *inputs):
    axis, axis_batched = axis
    if axis_batched:
        raise VectorizationError(op, "a per-chain join axis is not supported")
    parts = [x if b else ctx.broadcast(x) for x, b in inputs]
    return [(at.join(at.as_tensor_variable(axis) + 1, *parts), True)]


@batch_node.register(Reshape)
def _batch_reshape(op, node, ctx, x, shape):
    (x, _), (shape, shape_batched) = x, shape
    if shape_batched:
        raise VectorizationError(op, "a per-chain target shape is not supported")
    new_shape = at.concatenate(
        [at.shape_padleft(ctx.size).astype("int64"), at.as_tensor_variable(shape).astype("int64")]
    )
    return [(at.reshape(x, new_shape, ndim=op.ndim + 1), True)]


@batch_node.register(Alloc)
@batch_node.register(BroadcastTo)
def _batch_alloc(op, node, ctx, value, *shape):
    if any(b for _, b in shape):
        raise VectorizationError(op, "a per-chain target shape is not supported")
    (value, value_batched), shape = value, [s for s, _ in shape]
    value = value if value_batched else ctx.broadcast(value)
    # Align the value's trailing axes with the target's, keeping the chain axis first.
    missing = len(shape) - (value.ndim - 1)
    value = value.dimshuffle(0, *(["x"] * missing), *range(1, value.ndim))
    return [(alloc(value, ctx.size, *shape), True)]


@batch_node.register(SpecifyShape)
def _batch_specify_shape(op, node, ctx, x, *shape):
    (x, _), shape = x, [s for s, _ in shape]
    return [(at.specify_shape(x, (None, *shape)), True)]


@batch_node.register(Shape)
def _batch_shape(op, node, ctx, x):
    x, _ = x
    return [(x.shape[1:], False)]


@batch_node.register(Shape_i)
def _batch_shape_i(op, node, ctx, x):
    x, _ = x
    return [(x.shape[op.i + 1], False)]


@batch_node.register(CheckAndRaise)
def _batch_check_and_raise(op, node, ctx, x, *conditions):
    (x, x_batched) = x
    x = x if x_batched else ctx.broadcast(x)
    # A check holds for the batch when it holds for every chain.
    conds = [at.all(c) if b else c for c, b in conditions]
    return [(op(x, *conds), True)]


@batch_node.register(MaxAndArgmax)
def _batch_max_and_argmax(op, node, ctx, x):
    x, batched = x
    if not batched:
        return [(o, False) for o in op(x)]
    axis = range(x.ndim - 1) if op.axis is None else op.axis
    if not axis:
        # Over no axis: ``x`` and index 0 (Aesara's Python implementation fails on no axis).
        return [(x, True), (at.zeros_like(x, dtype="int64"), True)]
    new_op = MaxAndArgmax([a + 1 for a in axis])
    return [(o, True) for o in new_op(x)]


def _shifted_axis(axis: int) -> int:
    return axis + 1 if axis >= 0 else axis


@batch_node.register(Softmax)
@batch_node.register(LogSoftmax)
def _batch_softmax(op, node, ctx, x):
    x, _ = x
    if op.axis is not None:
        return [(type(op)(axis=_shifted_axis(op.axis))(x), True)]
    # Over every entry of one chain: over the flattened entries of each chain.
    flat = type(op)(axis=-1)(at.reshape(x, (ctx.size, -1), ndim=2))
    return [(at.reshape(flat, x.shape, ndim=x.ndim), True)]


@batch_node.register(SortOp)
@batch_node.register(ArgSortOp)
def _batch_sort(op, node, ctx, x, axis):
    (x, _), (axis_var, axis_batched) = x, axis
    if axis_batched or not isinstance(axis_var, TensorConstant) or axis_var.data is None:
        return map_over_chains(op, node, ctx, (x, True), (axis_var, axis_batched))
    new_axis = at.constant(_shifted_axis(int(axis_var.data)), dtype=axis_var.dtype)
    return [(op(x, new_axis), True)]


def _aligned_update(y: Variable, y_batched: bool, target_ndim: int) -> Variable:
    """An increment ``y`` of one chain aligned with a batched target of ``target_ndim`` dimensions
    (chain axis included): a batched ``y`` gets the broadcast axes it lacks after its chain axis;
    an unbatched one broadcasts from the right as it is."""
    if not y_batched:
        return y
    missing = target_ndim - y.ndim
    return y.dimshuffle(0, *(["x"] * missing), *range(1, y.ndim))


@batch_node.register(IncSubtensor)
def _batch_inc_subtensor(op, node, ctx, x, y, *index_inputs):
    """``x[idx] += y`` (or ``=``), the gradient of ``x[idx]``: per chain, ``X[:, idx] += Y``."""
    (x, x_batched), (y, y_batched) = x, y
    if any(b for _, b in index_inputs):
        return map_over_chains(op, node, ctx, (x, x_batched), (y, y_batched), *index_inputs)
    indices = indices_from_subtensor([v for v, _ in index_inputs], op.idx_list)
    x = x if x_batched else ctx.broadcast(x)
    target = x[(slice(None), *indices)]
    y = _aligned_update(y, y_batched, target.ndim)
    update = set_subtensor if op.set_instead_of_inc else inc_subtensor
    return [(update(target, y), True)]


@batch_node.register(AdvancedIncSubtensor1)
@batch_node.register(AdvancedIncSubtensor)
def _batch_advanced_inc_subtensor(op, node, ctx, x, y, *index_inputs):
    """``x[i, j] += y`` for index arrays (the gradient of ``x[i, j]``), duplicates accumulated:
    per chain, ``X[:, i, j] += Y``, or ``X[rows, i, j] += Y`` with an index per chain."""
    (x, x_batched), (y, y_batched) = x, y
    indices = [v for v, _ in index_inputs]
    per_chain = [b for _, b in index_inputs]
    if any(not isinstance(v.type, TensorType) for v in indices):
        return map_over_chains(op, node, ctx, (x, x_batched), (y, y_batched), *index_inputs)
    x = x if x_batched else ctx.broadcast(x)
    if any(per_chain):
        if not all(per_chain):
            return map_over_chains(op, node, ctx, (x, True), (y, y_batched), *index_inputs)
        # Every index array has a chain axis: the chains' rows broadcast against them.
        ndim = max(v.ndim for v in indices)
        rows = ctx.rows().reshape((-1,) + (1,) * (ndim - 1))
        key = (rows, *indices)
    else:
        key = (slice(None), *indices)
    target = x[key]
    y = _aligned_update(y, y_batched, target.ndim)
    update = set_subtensor if op.set_instead_of_inc else inc_subtensor
    return [(update(target, y), True)]


@batch_node.register(Split)
def _batch_split(op, node, ctx, x, axis, splits):
    """``split`` (the gradient of ``join``) along the same axis of every chain."""
    (x, _), (axis, axis_batched), (splits, splits_batched) = x, axis, splits
    if axis_batched or splits_batched:
        raise VectorizationError(op, "a per-chain split axis or split sizes are not supported")
    outs = at.split(x, splits, op.len_splits, at.as_tensor_variable(axis) + 1)
    outs = outs if isinstance(outs, list | tuple) else [outs]
    return [(o, True) for o in outs]
