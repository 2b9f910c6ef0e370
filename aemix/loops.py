"""Loops written with ``aesara.scan``: one random variable per step, or one over the steps.

A model written with ``aesara.scan`` (a Markov chain ``z_t ~ categorical(P[z_{t-1}])``, a random
walk, emissions drawn inside the step) hides its random variables in the scan's inner graph, where
neither aeppl nor aemix's rules see them: the chain's states cannot be summed out and the data
emitted inside the loop have no density.  `unroll_scans` replaces every scan that draws random
variables, and whose number of steps is a constant, by its steps: the inner graph cloned once per
step, each step reading the states the previous ones wrote.  The model is then the one a Python loop
writes, and a discrete chain is summed by the forward algorithm (`aemix.markov`).

A loop whose every random output is observed (an autoregression observed whole) needs no copies:
given the data its steps are independent, so the step's graph is batched over the steps with the
data it reads lagged (`_observed_loop`), one random variable per output.

What the unrolled graph keeps of the scan's meaning:

* a random variable whose generator the step function updates (the ``updates`` it returns), or that
  reads a step's state or sequence element, is a new random variable at every step;
* a random variable that reads neither, with a generator the loop does not update, draws the same
  value at every step: it is one random variable, the model's own where the model computes it
  outside the loop too (scan copies an outer ``mu`` that the step reads into its inner graph).

Names: step ``t`` of a loop output ``states`` is ``states[t]`` (or ``z[t]`` when the step function
named its random variable ``z``); ``t`` is the position in ``states``, the initial state excluded.
Data observed for a loop output (``observed={ys: data}``) are split into one observation per step,
and a named output of the loop that is not observed is kept as a derived quantity under its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aesara
import aesara.tensor as at
import numpy as np
from aesara.graph.basic import (
    Constant,
    Variable,
    ancestors,
    applys_between,
    equal_computations,
    graph_inputs,
    io_toposort,
)
from aesara.scan.op import Scan
from aesara.tensor.basic import MakeVector
from aesara.tensor.elemwise import DimShuffle
from aesara.tensor.exceptions import NotScalarConstantError
from aesara.tensor.random.op import RandomVariable
from aesara.tensor.random.type import RandomGeneratorType, RandomStateType
from aesara.tensor.subtensor import IncSubtensor, Subtensor, get_idx_list

from aemix.errors import ModelError

__all__ = ["MAX_UNROLLED_STEPS", "unroll_scans"]

#: The most steps a scan is unrolled to (each step is a copy of the step function's graph).
MAX_UNROLLED_STEPS = 5000


def unroll_scans(
    outputs: list[Variable], observed: Mapping[Variable, Any], frame=None
) -> tuple[list[Variable], dict[Variable, Any]]:
    """``outputs`` and ``observed`` with every ``aesara.scan`` that draws random variables read as
    the model it writes: batched over its steps when all its random outputs are observed
    (`_observed_loop`), else unrolled into its steps.

    ``frame`` (the caller's) names loop outputs the model does not name.  A model without such a
    loop is returned as it is.

    Raises
    ------
    ModelError
        If a scan that draws random variables cannot be unrolled (a ``while`` loop, a number of
        steps that is not a constant or above `MAX_UNROLLED_STEPS`, a loop that updates a shared
        variable other than a random generator), naming its output; or if data observed for a loop
        output do not have one row per step.
    """
    observed = dict(observed)
    added: list[Variable] = []
    while True:
        everything = [*outputs, *observed, *added]
        node = _first_random_scan(everything)
        if node is None:
            break
        replace, steps = _unroll(node, everything, frame, observed)
        # A named loop output that the model reads but neither outputs nor observes is kept as a
        # derived quantity, so that ``draws["states"]`` holds the whole path.
        taken = {v.name for v in everything}
        kept = [
            var
            for var, values in steps.items()
            if var.name
            and var.name not in taken
            and var not in observed
            and any(_is_random(v) for v in values)
        ]
        extra = [v for values in steps.values() for v in values]
        # One rebuild of everything, so that the per-step variables are those of the new graph.
        cloned = _rebuild([*everything, *extra, *kept], replace)
        new = dict(zip([*everything, *extra], cloned))
        for old, var in new.items():
            var.name = old.name
        for old, var in zip(kept, cloned[len(everything) + len(extra) :]):
            var.name = old.name
            added.append(var)
        # An observed loop output among the outputs: its steps, each observed.
        outputs = [
            w
            for v in outputs
            for w in ([new[s] for s in steps[v]] if v in steps and v in observed else [new[v]])
        ]
        added = [new.get(v, v) for v in added]
        split = {}
        for key, data in observed.items():
            if key in steps:
                split.update(_split_observation(key, [new[v] for v in steps[key]], data))
            else:
                split[new[key]] = data
        observed = split
    return [*outputs, *(v for v in added if v not in outputs)], observed


def _first_random_scan(variables: list[Variable]):
    """The first scan (in graph order) whose step draws a random variable, if any."""
    for node in io_toposort(list(graph_inputs(variables)), variables):
        if isinstance(node.op, Scan) and _draws(node.op):
            return node
    return None


def _rebuild(outputs: list[Variable], replace: Mapping[Variable, Variable]) -> list[Variable]:
    """``outputs`` with the variables in ``replace`` replaced: the nodes downstream of a replaced
    variable are new, everything else (and the replacements themselves) is kept as it is.

    (``clone_replace`` clones the replacements too, which would split a random variable that the
    replacements and the rest of the graph share into two.)"""
    memo = dict(replace)
    for node in io_toposort(list(graph_inputs(outputs, blockers=list(replace))), outputs):
        inputs = [memo.get(i, i) for i in node.inputs]
        if all(a is b for a, b in zip(inputs, node.inputs)):
            continue
        new = node.clone_with_new_inputs(inputs, strict=False)
        for old, var in zip(node.outputs, new.outputs):
            var.name = old.name
            memo.setdefault(old, var)
    return [memo.get(v, v) for v in outputs]


def _is_random(var: Variable) -> bool:
    return var.owner is not None and isinstance(var.owner.op, RandomVariable)


def _draws(op: Scan) -> bool:
    """Whether the loop's step draws a random variable (in a loop nested in it, too)."""
    return any(
        isinstance(n.op, RandomVariable) or (isinstance(n.op, Scan) and _draws(n.op))
        for n in applys_between(op.inner_inputs, op.inner_outputs)
    )


def _refuse(node, reason: str, graph: list[Variable], frame):
    """Raise the `ModelError` for a loop ``node`` cannot unroll, named after its output."""
    from aemix.intake import _name_from_frame

    readers = [
        var
        for out in node.outputs
        for var in [out, *(c.outputs[0] for c in _clients(out, graph) + _frame_clients(out, frame))]
    ]
    names = [v.name or (_name_from_frame(v, frame) if frame is not None else None) for v in readers]
    name = next((n for n in names if n), "an aesara.scan loop")
    raise ModelError(name, f"a loop written with aesara.scan that draws random variables {reason}")


def _unroll(node, graph: list[Variable], frame, observed: Mapping[Variable, Any]):
    """The replacements of ``node``'s visible outputs by their unrolled steps.

    Returns ``(replace, steps)``: ``replace`` maps each output of the scan (and each constant slice
    of a state's buffer that the model reads, ``states = buffer[1:]``) to its unrolled value, and
    ``steps`` maps each of those visible variables to the list of its per-step values.
    """
    op: Scan = node.op
    info = op.info

    def refuse(reason: str):
        _refuse(node, reason, graph, frame)

    if info.as_while:
        refuse("stops on a condition (a while loop); aemix unrolls loops of a fixed length")
    if info.n_mit_mot:
        refuse("has multiple-tap outputs computed backwards (a gradient's loop)")
    n_steps = _constant_steps(node.inputs[0])
    if n_steps is None:
        refuse("runs a number of steps that is not a constant; aemix unrolls the loop")
    if n_steps > MAX_UNROLLED_STEPS:
        refuse(f"runs {n_steps} steps; aemix unrolls at most {MAX_UNROLLED_STEPS}")

    inner_in, inner_out, outer_in = op.inner_inputs, op.inner_outputs, node.inputs
    inner_shared, outer_shared = op.inner_shared(inner_in), op.outer_shared(outer_in)
    for outer in outer_shared:
        if not isinstance(outer.type, (RandomGeneratorType, RandomStateType)):
            refuse(
                f"updates the shared variable {outer.name or outer}, which aemix cannot "
                "follow; pass it as a non-sequence instead",
            )
    constant = dict(zip(op.inner_non_seqs(inner_in), op.outer_non_seqs(outer_in)))
    constant.update(_invariant_random_variables(op, constant, graph))

    rolled = _observed_loop(node, n_steps, constant, graph, frame, observed)
    if rolled is not None:
        return rolled, {}

    # Each state's history: its initial rows, then one entry per step.
    histories = _initial_rows(node)
    state_taps = [*info.mit_sot_in_slices, *info.sit_sot_in_slices]
    state_inner = op.inner_mitsot(inner_in) + op.inner_sitsot(inner_in)
    state_outs = op.inner_mitsot_outs(inner_out) + op.inner_sitsot_outs(inner_out)
    nitsot_outs = op.inner_nitsot_outs(inner_out)
    nitsot_steps: list[list[Variable]] = [[] for _ in nitsot_outs]
    seqs = list(zip(op.inner_seqs(inner_in), op.outer_seqs(outer_in)))

    for t in range(n_steps):
        replace = dict(constant)
        for inner, outer in seqs:
            replace[inner] = _row(outer, t)
        inner_iter = iter(state_inner)
        for history, taps in zip(histories, state_taps):
            start = len(history) - t  # the number of initial rows
            for tap in taps:
                replace[next(inner_iter)] = history[start + t + tap]
        for inner, outer in zip(inner_shared, outer_shared):
            replace[inner] = _fresh_generator(outer, t)
        new = _rebuild([*state_outs, *nitsot_outs], replace)
        # The step's own random variables that the step function named: ``b`` -> ``b[t]``.
        for v in ancestors(new, blockers=list(replace.values())):
            if _is_random(v) and v.name and v not in replace.values():
                v.name = f"{v.name}[{t}]"
        for history, value in zip(histories, new[: len(state_outs)]):
            history.append(value)
        for acc, value in zip(nitsot_steps, new[len(state_outs) :]):
            acc.append(value)

    # Every variable that stands for a scan output, with its per-step values.
    outer = set(ancestors(graph))
    visible: dict[Variable, list[Variable] | Variable] = {}
    buffers = op.outer_mitsot_outs(node.outputs) + op.outer_sitsot_outs(node.outputs)
    for buffer, history in zip(buffers, histories):
        readers = [buffer]
        visible[buffer] = history
        for client in _clients(buffer, graph) + _frame_clients(buffer, frame):
            picked = _constant_pick(client, history)
            if picked is not None:
                visible[client.outputs[0]] = picked
                readers.append(client.outputs[0])
        _name_steps(readers, history[len(history) - n_steps :], outer, frame)
    for out, values in zip(op.outer_nitsot_outs(node.outputs), nitsot_steps):
        visible[out] = values
        _name_steps([out], values, outer, frame)

    replace: dict[Variable, Variable] = {}
    steps: dict[Variable, list[Variable]] = {}
    for var, values in visible.items():
        if isinstance(values, list):
            if not values:
                continue
            replace[var] = at.stack(values)
            steps[var] = values
        else:
            replace[var] = values
    return replace, steps


def _observed_loop(node, n_steps, constant, graph, frame, observed):
    """The replacements of a loop whose every random output is observed, as one random variable
    per output over the steps (not one per step), or ``None`` when some is not.

    Given the data, the steps are independent: step ``t`` reads the observed values of the steps
    before it (an autoregression ``x_t ~ N(phi x_{t-1}, sigma)`` observed whole), the sequences'
    rows and variables that are the same at every step.  So the step's graph is batched over the
    steps (`aemix.vectorize`), with the states it reads replaced by the data, lagged: one node per
    output instead of ``n_steps`` copies, which is what keeps compiling a long series quick.
    """
    from aemix.vectorize import vectorize_graph

    op: Scan = node.op
    info = op.info
    inner_in, inner_out, outer_in = op.inner_inputs, op.inner_outputs, node.inputs
    state_outs = op.inner_mitsot_outs(inner_out) + op.inner_sitsot_outs(inner_out)
    nitsot_outs = op.inner_nitsot_outs(inner_out)
    outputs = [*state_outs, *nitsot_outs]
    # Every random variable of the step that changes with the step is an output of it.
    per_step = {
        n.outputs[1]
        for n in io_toposort(inner_in, outputs)
        if isinstance(n.op, RandomVariable) and n.outputs[1] not in constant
    }
    if not outputs or per_step != set(outputs):
        return None
    buffers = op.outer_mitsot_outs(node.outputs) + op.outer_sitsot_outs(node.outputs)
    initial = _initial_rows(node)
    # Each state's data: observed through the slice of its buffer that holds every step.
    keys, data = [], []
    for buffer, rows in zip(buffers, initial):
        positions = list(range(len(rows) + n_steps))
        found = [
            c.outputs[0]
            for c in _clients(buffer, graph) + _frame_clients(buffer, frame)
            if c.outputs[0] in observed and _constant_pick(c, positions) == positions[len(rows) :]
        ]
        if not found:
            return None
        keys.append(found[0])
        data.append(observed[found[0]])
    for out in op.outer_nitsot_outs(node.outputs):
        if out not in observed:
            return None
        keys.append(out)
        data.append(observed[out])
    arrays = [np.asarray(d) for d in data]
    if any(a.ndim < 1 or a.shape[0] != n_steps for a in arrays):
        return None  # (the split into steps names the wrong length)

    batched = {}
    for inner, outer in zip(op.inner_seqs(inner_in), op.outer_seqs(outer_in)):
        batched[inner] = outer[:n_steps]
    state_inner = iter(op.inner_mitsot(inner_in) + op.inner_sitsot(inner_in))
    for rows, array, out, taps in zip(
        initial, arrays, state_outs, [*info.mit_sot_in_slices, *info.sit_sot_in_slices]
    ):
        history = at.concatenate([at.stack(rows), at.as_tensor(array.astype(out.dtype))])
        for tap in taps:
            start = len(rows) + tap
            batched[next(state_inner)] = history[start : start + n_steps]
    fixed = dict(constant)
    for inner, outer in zip(op.inner_shared(inner_in), op.outer_shared(outer_in)):
        fixed[inner] = _fresh_generator(outer, 0)
    new = vectorize_graph(_rebuild(outputs, fixed), batched)
    replace = {}
    for key, value in zip(keys, new):
        value.name = key.name
        replace[key] = value
    for buffer, rows, value in zip(buffers, initial, new):
        replace.setdefault(buffer, at.concatenate([at.stack(rows), value]))
    return replace


def _constant_steps(n_steps: Variable) -> int | None:
    """The number of steps, when it is a constant: computed from constants only (a constant
    sequence's length) or from static shapes (the length of a random vector of fixed size)."""
    from aesara.graph.rewriting.utils import rewrite_graph

    try:
        return int(at.get_scalar_constant_value(n_steps))
    except NotScalarConstantError:
        pass
    n_steps = rewrite_graph(n_steps, include=("canonicalize", "ShapeOpt"))
    try:
        return int(at.get_scalar_constant_value(n_steps))
    except NotScalarConstantError:
        pass
    if not all(isinstance(i, Constant) for i in graph_inputs([n_steps])):
        return None
    return int(aesara.function([], n_steps, mode="FAST_COMPILE")())


def _invariant_random_variables(op: Scan, constant: dict, graph: list[Variable]) -> dict:
    """The inner random variables that read no step's state, mapped to their one outer copy.

    Such a variable draws the same value at every step (its generator is not updated, its
    parameters do not change).  It is the model's own variable when the model computes the same
    thing outside the loop (scan copied it in), otherwise one copy shared by every step.
    """
    varying = set(op.inner_inputs) - set(constant)
    outer_rvs = [
        v
        for v in ancestors(graph)
        if v.owner is not None and isinstance(v.owner.op, RandomVariable)
    ]
    inner_keys, outer_values = list(constant), list(constant.values())
    found: dict[Variable, Variable] = {}
    for node in io_toposort(op.inner_inputs, op.inner_outputs):
        if not isinstance(node.op, RandomVariable):
            continue
        if any(v in varying for v in ancestors(node.inputs, blockers=list(found))):
            continue
        match = next(
            (
                rv.owner
                for rv in outer_rvs
                if rv.owner.op == node.op
                and equal_computations(
                    [node.outputs[1]], [rv.owner.outputs[1]], in_xs=inner_keys, in_ys=outer_values
                )
            ),
            None,
        )
        if match is None:
            match = _rebuild(node.outputs, {**constant, **found})[0].owner
        found.update(zip(node.outputs, match.outputs))
    return found


def _initial_rows(node) -> list[list[Variable]]:
    """Each state's initial rows (multiple-tap states first, as the scan orders them)."""
    op: Scan = node.op
    mitsot = zip(op.outer_mitsot(node.inputs), op.info.mit_sot_in_slices)
    return [_rows(buffer, -min(taps)) for buffer, taps in mitsot] + [
        _rows(buffer, 1) for buffer in op.outer_sitsot(node.inputs)
    ]


def _rows(buffer: Variable, n: int) -> list[Variable]:
    """The first ``n`` rows of a state's buffer, as the model wrote them (``z0``, not ``buf[0]``)."""
    node = buffer.owner
    if node is not None and isinstance(node.op, IncSubtensor) and node.op.set_instead_of_inc:
        value = node.inputs[1]
        while value.owner is not None and type(value.owner.op).__name__ in (
            "Unbroadcast",
            "SpecifyShape",
        ):
            value = value.owner.inputs[0]
        if value.owner is not None:
            vop = value.owner.op
            if (
                n == 1
                and isinstance(vop, DimShuffle)
                and vop.new_order[:1] == ("x",)
                and list(vop.new_order[1:]) == list(range(value.ndim - 1))
            ):
                return [value.owner.inputs[0]]
            if isinstance(vop, MakeVector) and len(value.owner.inputs) == n:
                return list(value.owner.inputs)
        return [value[k] for k in range(n)]
    return [buffer[k] for k in range(n)]


def _row(seq: Variable, t: int) -> Variable:
    if isinstance(seq, Constant):
        return at.as_tensor(np.asarray(seq.data)[t])
    return seq[t]


def _fresh_generator(outer: Variable, t: int) -> Variable:
    """A generator of its own for step ``t`` (the step's draws are new variables)."""
    if isinstance(outer.type, RandomGeneratorType):
        return aesara.shared(np.random.default_rng([t, 61873]))
    return aesara.shared(np.random.RandomState(t))


def _clients(var: Variable, graph: list[Variable]):
    return [n for n in applys_between([var], graph) if any(i is var for i in n.inputs)]


def _frame_clients(var: Variable, frame) -> list:
    """The nodes reading ``var`` whose outputs the caller holds (``walk`` in ``(walk, ys), _ =
    aesara.scan(...)``, when only ``ys`` is in the model): they name the loop's states."""
    if frame is None:
        return []
    return [
        value.owner
        for value in frame.f_locals.values()
        if isinstance(value, Variable)
        and value.owner is not None
        and any(i is var for i in value.owner.inputs)
    ]


def _constant_pick(node, history: list[Variable]):
    """``history[index]`` when ``node`` reads its buffer at a constant index or slice, else None."""
    if not isinstance(node.op, Subtensor) or node.inputs[0].ndim < 1:
        return None
    try:
        (index, *rest) = get_idx_list(node.inputs, node.op.idx_list)
    except ValueError:
        return None
    if rest:
        return None
    try:
        if isinstance(index, slice):
            bounds = [
                None if b is None else int(at.get_scalar_constant_value(b))
                for b in (index.start, index.stop, index.step)
            ]
            return history[slice(*bounds)]
        return history[int(at.get_scalar_constant_value(index))]
    except (NotScalarConstantError, IndexError, TypeError):
        return None


def _name_steps(readers: list[Variable], values: list[Variable], outer: set, frame) -> None:
    """Name each step's unnamed random variable after its loop output: ``states[t]`` (the ones
    the step function named are ``z[t]`` already).  The loop output takes the caller's name for
    it if it has none."""
    from aemix.intake import _name_from_frame

    for var in readers:
        if var.name is None and frame is not None:
            var.name = _name_from_frame(var, frame)
    base = next((v.name for v in reversed(readers) if v.name), None)
    for t, value in enumerate(values):
        if not _is_random(value) or value in outer:
            continue
        if value.name is None and base:
            value.name = f"{base}[{t}]"


def _split_observation(key: Variable, values: list[Variable], data):
    """Data observed for a loop output, as one observation per step (a step's value that is the
    output of a loop nested in it is observed as a whole, and that loop is read next)."""
    array = np.asarray(data)
    if array.ndim < 1 or array.shape[0] != len(values):
        raise ModelError(
            key.name or str(key),
            f"observed data of shape {array.shape} for a loop output of {len(values)} steps: "
            "expected one row per step",
        )
    split = {}
    for value, row in zip(values, array):
        nested = value.owner is not None and isinstance(value.owner.op, Scan)
        if not nested and not _is_random(value):
            raise ModelError(
                key.name or str(key),
                "observed, but each step's value is computed from random variables, not drawn; "
                "observe the random variable the step draws",
            )
        split[value] = row
    return split
