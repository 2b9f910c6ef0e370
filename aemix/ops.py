"""Placeholder Ops for marginalized sub-graphs, and their densities.

A marginalization rule replaces a sub-graph such as ``X[I]`` (with ``I`` a discrete random variable) by
the output of a placeholder Op.  The placeholder keeps the discrete variable and the mixture components
as inputs, so that the marginalized variables stay visible (for `Sampler.explain` and for recovering
them from their conditionals), and its log-density is attached through aeppl's `_logprob` dispatch,
following the pattern of aeppl's own `MixtureRV`: aeppl's `joint_logprob` does the density work.

Every placeholder defines its density through `marginal_conditionals`: the joint log-probability of
each value of the summed-out variable with the observed or latent values of the placeholder's
outputs.  The density is its ``logsumexp`` over values; recovery normalizes it into conditionals.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import singledispatch
from typing import NamedTuple

import aesara.tensor as at
import numpy as np
from aeppl.abstract import MeasurableVariable
from aeppl.logprob import _logprob, logprob
from aesara.graph.basic import Apply, Constant, Variable
from aesara.graph.op import Op
from aesara.tensor.basic import get_scalar_constant_value
from aesara.tensor.exceptions import NotScalarConstantError
from aesara.tensor.math import Max
from aesara.tensor.random.basic import IntegersRV
from aesara.tensor.type import TensorType

__all__ = [
    "MarginalMixtureRV",
    "MarginalSwitchRV",
    "FiniteEnumerationRV",
    "ChangePointRV",
    "Cut",
    "MarkovChainRV",
    "Conditionals",
    "marginal_conditionals",
    "logsumexp",
    "constant_branch_value",
    "replace_views",
    "placeholder_logprob",
    "value_logprob",
    "density_build",
    "DensityBuild",
    "point_mass_beside_density",
]


_UNROLL_LIMIT = 16


def logsumexp(x: Variable, axis: int) -> Variable:
    """Numerically stable ``log(sum(exp(x), axis))`` that is ``-inf`` (not NaN) when every term is.

    `aesara.tensor.logsumexp` is the naive formula and relies on a compile-time rewrite for stability;
    the densities here must be stable in the graph itself, before any rewrite (and after batching).
    When the summed axis is short and its length known (mixture components, support values), the
    maximum and the sum are written as elementwise operations over its slices, which Aesara fuses
    into one loop with the rest of the density instead of several reduction passes.
    """
    x = at.as_tensor_variable(x)
    axis = axis % x.ndim
    length = x.type.shape[axis]
    if length is not None and 1 <= length <= _UNROLL_LIMIT:
        index = (slice(None),) * axis
        terms = [x[(*index, k)] for k in range(length)]
        x_max = terms[0]
        for term in terms[1:]:
            x_max = at.maximum(x_max, term)
        x_max = at.switch(at.isinf(x_max), 0.0, x_max)
        total = at.exp(terms[0] - x_max)
        for term in terms[1:]:
            total = total + at.exp(term - x_max)
        return at.log(total) + x_max
    x_max = Max(axis=(axis,))(x)
    x_max = at.switch(at.isinf(x_max), 0.0, x_max)
    return at.log(at.sum(at.exp(x - at.shape_padaxis(x_max, axis)), axis=axis)) + x_max


class Conditionals(NamedTuple):
    """The summed-out variable's values and their joint log-probabilities with the rest.

    Attributes
    ----------
    log_joint
        Leading axis over the ``K`` values: ``log P(D = d_k, outputs)``, elementwise over the
        discrete variable's elements when they are summed out independently.
    support
        The values ``d_k``: shape ``(K,)`` (the same for every element) or ``(K, *shape)``.
    """

    log_joint: Variable
    support: Variable


@singledispatch
def marginal_conditionals(op: Op, values, *inputs) -> Conditionals:
    """Joint log-probabilities of the summed-out variable's values, for the placeholder ``op``."""
    raise NotImplementedError(f"no conditionals for {op}")


class MarginalMixtureRV(Op):
    """The marginal of ``X[I]`` (or ``stack(X_1, ..., X_K)[I]``) with ``I ~ Categorical(p)`` summed out.

    Inputs are ``(I, X)`` when ``stacked`` is false, where ``X`` is a random variable whose elements
    along ``axis`` are independent components (``X[:, I]`` picks along axis 1), or
    ``(I, X_1, ..., X_K)`` when ``stacked`` is true.  The output has the type of one component.
    This Op only stands for a density: it cannot be evaluated (forward samples come from the
    original model graph).
    """

    __props__ = ("stacked", "axis")

    def __init__(self, stacked: bool, axis: int = 0):
        self.stacked = stacked
        self.axis = axis
        super().__init__()

    def make_node(self, index, *components):
        index = at.as_tensor_variable(index)
        components = [at.as_tensor_variable(c) for c in components]
        if self.stacked:
            out_type = components[0].type
        else:
            (mixed,) = components
            shape = list(mixed.type.shape)
            del shape[self.axis]
            out_type = TensorType(mixed.type.dtype, shape=shape)
        return Apply(self, [index, *components], [out_type()])

    def perform(self, node, inputs, outputs):
        raise NotImplementedError(
            "MarginalMixtureRV is a density placeholder and cannot be evaluated"
        )

    def __str__(self):
        return "MarginalMixture"


def value_logprob(rv: Variable, value: Variable) -> Variable:
    """aeppl's log-density of ``rv`` at ``value``, with ``value``'s axes and no more.

    aeppl's categorical density with a matrix of probabilities pads the value on the left, so
    ``categorical(P[z])`` over ``n`` values has a density of shape ``(1, n)``: summed per element
    along the wrong axes, that spurious axis would put every element's density in each.  The
    leading axes beyond ``value``'s have length one; they are dropped (checked when run, if their
    length is not known).
    """
    logp = logprob(rv, value)
    while logp.ndim > value.ndim:
        if logp.type.shape[0] == 1:
            logp = logp[0]
        else:
            lengths = [logp.shape[i] for i in range(1, logp.ndim)]
            logp = at.reshape(logp, lengths, ndim=logp.ndim - 1)
    return logp


def _categorical_log_weights(index: Variable) -> Variable:
    """``log p`` of the categorical ``index`` (normalized, as aeppl's categorical density is)."""
    p = index.owner.inputs[-1]
    return at.log(p) - at.log(at.sum(p, axis=-1, keepdims=True))


@marginal_conditionals.register(MarginalMixtureRV)
def _mixture_conditionals(op, values, index, *components):
    (value,) = values
    if op.stacked:
        component_logps = at.stack([value_logprob(component, value) for component in components])
    else:
        (mixed,) = components
        # Every element of `mixed` along the axis is one component, evaluated at one value.
        mixed_value = at.broadcast_to(at.expand_dims(value, op.axis), mixed.shape)
        component_logps = at.moveaxis(value_logprob(mixed, mixed_value), op.axis, 0)
    if value.ndim:
        # One index for the whole of ``X[I]`` (a row of a matrix, say): each component's density
        # is the joint of the elements it gives, not one mixture per element.
        component_logps = at.sum(component_logps, axis=tuple(range(1, value.ndim + 1)))
    log_weights = _categorical_log_weights(index)
    n_components = len(components) if op.stacked else components[0].type.shape[op.axis]
    if n_components is None:
        return Conditionals(log_weights + component_logps, at.arange(components[0].shape[op.axis]))
    return Conditionals(log_weights + component_logps, at.constant(np.arange(n_components)))


def constant_branch_value(x: Variable):
    """The value of a branch that is a constant (possibly broadcast), or ``None``."""
    if getattr(x, "owner", None) is not None and _has_random_ancestor(x):
        return None
    try:
        return get_scalar_constant_value(x)
    except NotScalarConstantError:
        return None


def _has_random_ancestor(x: Variable) -> bool:
    from aesara.graph.basic import ancestors
    from aesara.tensor.random.op import RandomVariable

    return any(
        v.owner is not None and isinstance(v.owner.op, RandomVariable | MarginalMixtureRV)
        for v in ancestors([x])
    )


class MarginalSwitchRV(Op):
    """The marginal of ``switch(B, X, Y)`` with ``B ~ Bernoulli(p)`` summed out.

    Inputs are ``(B, X, Y)``; each branch is a random variable with independent elements, or a
    constant (a point mass, e.g. the zeros of a zero-inflated count model).  When ``B`` has the
    output's shape each element is a two-component mixture; when ``B`` is a scalar the whole output
    is one mixture of the two branches' joint densities.
    """

    __props__ = ()

    def make_node(self, switch, on_true, on_false):
        inputs = [at.as_tensor_variable(v) for v in (switch, on_true, on_false)]
        out = at.switch(*inputs)
        return Apply(self, inputs, [out.type()])

    def perform(self, node, inputs, outputs):
        raise NotImplementedError(
            "MarginalSwitchRV is a density placeholder and cannot be evaluated"
        )

    def __str__(self):
        return "MarginalSwitch"


def _branch_logprob(branch: Variable, value: Variable, atom=None) -> Variable:
    """A branch's log-density at ``value``; with ``atom`` (the constant of a point-mass branch
    beside a continuous one), with respect to Lebesgue measure plus a unit mass at ``atom``."""
    constant = constant_branch_value(branch)
    if constant is not None:
        return at.switch(at.eq(value, constant), 0.0, -np.inf)
    logp = value_logprob(branch, value)
    if atom is not None:
        # A density puts no mass on the atom.
        logp = at.switch(at.eq(value, atom), -np.inf, logp)
    return logp


def point_mass_beside_density(on_true: Variable, on_false: Variable):
    """The constant of a point-mass branch whose other branch is continuous (a hurdle), or None."""
    for atom_branch, other in ((on_true, on_false), (on_false, on_true)):
        atom = constant_branch_value(atom_branch)
        if atom is not None and constant_branch_value(other) is None:
            if other.type.dtype.startswith("float"):
                return atom
    return None


@marginal_conditionals.register(MarginalSwitchRV)
def _switch_conditionals(op, values, switch, on_true, on_false):
    r"""The two branches' joint log-probabilities with ``B``.

    A point mass ``c`` beside a continuous branch ``X`` (a zero-inflated, or hurdle, density) has
    no density with respect to Lebesgue measure; both branches are then taken with respect to
    Lebesgue measure plus a unit mass at ``c``: :math:`p(z) = p` at ``z = c`` and
    :math:`(1 - p) p_X(z)` elsewhere.  Posteriors of the parameters are exact; the log-density
    at an observation equal to ``c`` is a log-probability.
    """
    (value,) = values
    p = switch.owner.inputs[-1]
    atom = point_mass_beside_density(on_true, on_false)
    branch_logps = [
        _branch_logprob(on_false, value, atom),
        _branch_logprob(on_true, value, atom),
    ]
    if switch.ndim == 0 and value.ndim > 0:
        # One draw of B picks a whole branch: mix the branches' joint densities.
        branch_logps = [at.sum(lp) for lp in branch_logps]
    log_joint = at.stack([at.log1p(-p) + branch_logps[0], at.log(p) + branch_logps[1]])
    return Conditionals(log_joint, at.constant(np.arange(2)))


class MarginalizedView(Op):
    """Identity on a summed-out variable, between it and the expressions that read it.

    aeppl's IR rewrites lift operations on random variables into their parameters (e.g. a
    ``DimShuffle`` of an RV becomes a new, broadcast RV), which would hide the summed-out variable
    from the enumeration density; behind this view the expressions keep reading the variable itself.
    """

    __props__ = ()
    view_map = {0: [0]}

    def make_node(self, x):
        x = at.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = inputs[0]

    def __str__(self):
        return "Marginalized"


marginalized_view = MarginalizedView()


def replace_views(
    graph: Variable, discrete: Variable, value: Variable, dependence=None
) -> Variable:
    """``graph`` with the views of ``discrete`` replaced by ``value``, sharing every random variable.

    Only the nodes downstream of a view are rebuilt, and only those are walked (the variables of
    ``graph`` that read the view are known from ``dependence``, an `aemix.dependence.Dependence`
    shared by the densities of one build; a fresh one by default): the rest of the graph (e.g. the
    densities of the variables summed out inside this one, which do not read it) is shared, not
    cloned or visited, so that nested enumerations (a Markov chain) cost constant, not linear,
    work per level.  Random variables are never rebuilt: they must stay the model's variables,
    which are later replaced by their values.
    """
    from aeppl.abstract import ValuedVariable

    from aemix.dependence import Dependence, reading

    dependence = dependence or Dependence()
    new: dict[Variable, Variable] = {}
    for node in reading([graph], lambda v: discrete in dependence.reads(v)):
        if isinstance(node.op, MarginalizedView) and node.inputs[0] is discrete:
            new[node.outputs[0]] = value
        elif isinstance(node.op, ValuedVariable | MeasurableVariable):
            continue
        elif any(i in new for i in node.inputs):
            clone = node.clone_with_new_inputs([new.get(i, i) for i in node.inputs], strict=False)
            new.update(zip(node.outputs, clone.outputs))
    return new.get(graph, graph)


class DensityBuild:
    """What the densities of one model share while they are built.

    Attributes
    ----------
    densities
        The log-density of each placeholder built so far, keyed by ``(op, inputs, values)``.
    dependence
        Which variables read which summed-out variables (`aemix.dependence.Dependence`).
    """

    def __init__(self):
        from aemix.dependence import Dependence

        self.densities: dict[tuple, Variable] = {}
        self.dependence = Dependence()


_current = threading.local()


@contextmanager
def density_build():
    """The `DensityBuild` in progress on this thread, or a new one for the duration of the block.

    Densities built inside one block share their nested placeholders' densities, so that a chain
    of ``T`` nested enumerations is built once (not once per level that contains it).  The graphs
    must not be rewritten in place while the block is open.
    """
    build = getattr(_current, "build", None)
    if build is not None:
        yield build
        return
    _current.build = DensityBuild()
    try:
        yield _current.build
    finally:
        _current.build = None


class FiniteEnumerationRV(Op):
    """The joint of the random variables that depend on a finite discrete ``D``, with ``D`` summed out.

    Inputs are ``(D, support, *children)``; the outputs stand for the children.  When
    ``elementwise`` is true, ``D``'s elements are independent and child element ``i`` (or every
    element ``(i, ...)`` of a child with more axes) depends only on ``D_i``: each element is summed
    over the ``K`` values in ``support`` separately (cost ``O(n K)``).  Otherwise ``support`` lists
    every joint configuration of ``D``, shape ``(M, *D.shape)``.

    ``axes``, when given with ``elementwise``, holds per child the axes of the child at which
    ``D``'s axes are, in order (``None``: its leading axes): a child ``y ~ binomial(N[None, :],
    p)`` of shape ``(S, J)`` has ``N``'s axis at its axis 1, and its column ``y[:, j]`` is summed
    into the term of ``N_j``.
    """

    __props__ = ("elementwise", "axes")

    def __init__(self, elementwise: bool, axes=None):
        self.elementwise = elementwise
        self.axes = None if axes is None else tuple(None if a is None else tuple(a) for a in axes)
        super().__init__()

    def child_axes(self, i: int, ndim: int) -> tuple[int, ...]:
        """The axes of child ``i`` at which ``D``'s ``ndim`` axes are."""
        if self.axes is None or self.axes[i] is None:
            return tuple(range(ndim))
        return self.axes[i]

    def make_node(self, discrete, support, *children):
        inputs = [at.as_tensor_variable(v) for v in (discrete, support, *children)]
        return Apply(self, inputs, [child.type() for child in inputs[2:]])

    def perform(self, node, inputs, outputs):
        raise NotImplementedError(
            "FiniteEnumerationRV is a density placeholder and cannot be evaluated"
        )

    def restricted(self, indices) -> FiniteEnumerationRV:
        """The Op for the same enumeration over the children at ``indices`` only."""
        if self.axes is None:
            return self
        return FiniteEnumerationRV(self.elementwise, tuple(self.axes[i] for i in indices))

    def __str__(self):
        return "FiniteEnumeration"


@dataclass(frozen=True)
class Cut:
    """Where the elements of a child along one axis change regime with a discrete scalar ``D``.

    Element ``t`` of ``axis`` (``0 <= t < length``) is in the first regime when ``t < D + shift``
    and in the second otherwise: at ``D = length - shift`` every element is in the first, at
    ``D = -shift`` every element is in the second (`aemix.relations.change_points`).
    """

    length: int
    shift: int
    axis: int = 0

    @property
    def all_first(self) -> int:
        """A value of ``D`` that puts every element in the first regime."""
        return self.length - self.shift

    @property
    def all_second(self) -> int:
        """A value of ``D`` that puts every element in the second regime."""
        return -self.shift

    def boundaries(self, values: np.ndarray) -> np.ndarray:
        """The number of elements in the first regime at each value of ``D``."""
        return np.clip(np.asarray(values, dtype="int64") + self.shift, 0, self.length)


class ChangePointRV(FiniteEnumerationRV):
    """The joint of children that read a discrete scalar ``D`` only through a change point.

    Inputs are ``(D, support, *children)`` as for `FiniteEnumerationRV`; ``cuts`` holds one `Cut`
    per child: child element ``t`` along ``cut.axis`` (every element with that index, summed)
    depends on ``D`` only through whether ``t < D + cut.shift``.  Its density is the enumeration's,
    computed from two evaluations of each child's log-density (every element in the first regime,
    every element in the second) and their cumulative sums: ``O(T + K)`` instead of ``O(T K)``.
    """

    __props__ = ("elementwise", "axes", "cuts")

    def __init__(self, cuts):
        self.cuts = tuple(cuts)
        super().__init__(elementwise=False)

    def make_node(self, discrete, support, *children):
        if len(children) != len(self.cuts):
            raise ValueError(f"{len(self.cuts)} cuts for {len(children)} children")
        return super().make_node(discrete, support, *children)

    def restricted(self, indices) -> ChangePointRV:
        return ChangePointRV(tuple(self.cuts[i] for i in indices))

    def __str__(self):
        return "ChangePoint"


class MarkovChainRV(Op):
    """The joint of the emissions of a discrete Markov chain, with every state summed out.

    The chain is ``Z_0 ~ Cat(p_0)``, ``Z_t ~ Cat(P_t[Z_{t-1}])``, ``t < length``, with
    ``n_values`` values per state.  Inputs are ``(p_0, P, *emissions)``: ``P`` is the ``(K, K)``
    transition matrix or the ``(T - 1, K, K)`` stack of ``P_1..P_{T-1}``, and each emission is a
    pair ``(S, Y)``: ``Y`` a random variable with a leading axis over the steps it is drawn at,
    whose parameters read the vector ``S`` (an input standing for those steps' states).  That is
    the emissions of the user's model, one variable per step, vectorized over the steps where
    they are copies of one form (`aemix.markov.common_form`).  The outputs stand for the user's
    variables: output ``i`` is row ``rows[i]`` of emission ``forms[i]``, drawn at step
    ``steps[i]``.  Its density is the forward algorithm's (`aemix.markov`), ``O(T K^2)``.

    ``packed()`` is the same density with one output per emission (all its rows), which the
    log-density is built from when every output is observed: aeppl clones a node once per
    valued output, with all its outputs, which for ``T`` outputs costs ``O(T^2)``.
    """

    __props__ = ("length", "n_values", "forms", "rows", "steps", "is_packed")

    def __init__(self, length: int, n_values: int, forms, rows, steps, is_packed=False):
        self.length = length
        self.n_values = n_values
        self.forms = tuple(forms)
        self.rows = tuple(rows)
        self.steps = tuple(steps)
        self.is_packed = is_packed
        super().__init__()

    def packed(self) -> MarkovChainRV:
        """The Op with one output per emission, its rows in order."""
        return MarkovChainRV(
            self.length, self.n_values, self.forms, self.rows, self.steps, is_packed=True
        )

    def make_node(self, initial, transition, *emissions):
        inputs = [at.as_tensor_variable(v) for v in (initial, transition, *emissions)]
        ys = inputs[3::2]
        if self.is_packed:
            return Apply(self, inputs, [y.type() for y in ys])
        types = [TensorType(ys[f].type.dtype, shape=ys[f].type.shape[1:]) for f in self.forms]
        return Apply(self, inputs, [t() for t in types])

    def perform(self, node, inputs, outputs):
        raise NotImplementedError("MarkovChainRV is a density placeholder and cannot be evaluated")

    def __str__(self):
        return "MarkovChain"


def _children_logprobs(children, values, with_index: bool = False) -> list:
    """The log-density of each child node at its values.

    A placeholder child with several outputs (an inner enumeration) has one density for all of
    them together: it is asked once, with every output's value in the node's output order, and
    never once per output (which would pair its first child's density with each value).  With
    ``with_index``, each term comes as ``(term, i)``, ``i`` the position among ``children`` of
    the child it is the density of (of a placeholder's first output).
    """
    by_node: dict = {}
    first: dict = {}
    for i, (child, value) in enumerate(zip(children, values)):
        by_node.setdefault(child.owner, {})[child] = value
        first.setdefault(child, i)
    terms = []
    for node, valued in by_node.items():
        if not isinstance(node.op, PLACEHOLDER_TYPES):
            for child, value in valued.items():
                term = value_logprob(child, value)
                terms.append((term, first[child]) if with_index else term)
            continue
        missing = [out for out in node.outputs if out not in valued]
        if missing:
            raise NotImplementedError(f"{node.op} is a child with outputs {missing} left out")
        density = placeholder_logprob(node.op, [valued[out] for out in node.outputs], *node.inputs)
        # Unsummed: an inner enumeration summed per element has one term per element, which an
        # outer one summed per element keeps (its callers reduce what they do not keep).
        terms.append((density, first[node.outputs[0]]) if with_index else density)
    return terms


def _inner_placeholders(op, values, inputs) -> list[tuple]:
    """The placeholders among the children of enumeration ``op`` and of theirs, with their values,
    as ``(op, inputs, values)`` keys, each after the one it is a child of."""
    found, stack = [], [(op, tuple(inputs), tuple(values))]
    while stack:
        op, inputs, values = stack.pop()
        if not isinstance(op, FiniteEnumerationRV):
            continue
        by_node: dict = {}
        for child, value in zip(inputs[2:], values):
            by_node.setdefault(child.owner, {})[child] = value
        for node, valued in by_node.items():
            if node is None or not isinstance(node.op, PLACEHOLDER_TYPES):
                continue
            if any(out not in valued for out in node.outputs):
                continue
            key = (node.op, tuple(node.inputs), tuple(valued[out] for out in node.outputs))
            found.append(key)
            stack.append(key)
    return found


def placeholder_logprob(op, values, *inputs) -> Variable:
    r"""One log-density for all the outputs of a placeholder: :math:`\log \sum_k P(D = d_k, \ldots)`.

    Elementwise over the summed-out variable's elements when they are summed out independently.
    The placeholders nested inside an enumeration (a chain of them, for a Markov chain) are built
    first, innermost first, and kept in the current `density_build`, so the density of each
    level reads the one inside it instead of building it again: the construction takes no stack
    depth and no time per level that grows with the number of levels.
    """
    with density_build() as build:
        key = (op, tuple(inputs), tuple(values))
        if key not in build.densities:
            for inner in reversed([key, *_inner_placeholders(op, values, inputs)]):
                if inner not in build.densities:
                    inner_op, inner_inputs, inner_values = inner
                    log_joint, _ = marginal_conditionals(inner_op, inner_values, *inner_inputs)
                    build.densities[inner] = logsumexp(log_joint, axis=0)
        return build.densities[key]


@marginal_conditionals.register(FiniteEnumerationRV)
def _enumeration_conditionals(op, values, discrete, support, *children):
    from aemix.errors import MarginalizationError, VectorizationError, describe_operation
    from aemix.vectorize import alloc, vectorize_graph

    with density_build() as build:
        dependence = build.dependence
        discrete_value = discrete.type()
        dependence.track(discrete_value)

        # Elementwise: one term per element of D, a child's other axes (the row ``y[i, :]`` that
        # reads ``D_i``, the column ``y[:, j]`` that reads ``D_j``) summed into it. Jointly: one
        # scalar per configuration of D, so the prior and each child enter once (summed over their
        # elements), never broadcast per element.
        def reduce(logp, where):
            if not op.elementwise:
                return at.sum(logp)
            others = tuple(a for a in range(logp.ndim) if a not in where)
            if others:
                logp = at.sum(logp, axis=others)
            kept = sorted(where)
            order = [kept.index(a) for a in where]
            return logp if order == sorted(order) else logp.dimshuffle(order)

        terms = reduce(value_logprob(discrete, discrete_value), tuple(range(discrete.ndim)))
        for child_logp, i in _children_logprobs(children, values, with_index=True):
            child_logp = replace_views(child_logp, discrete, discrete_value, dependence)
            terms = terms + reduce(child_logp, op.child_axes(i, discrete.ndim))
        if not op.elementwise:
            grid = support
        else:
            # Static lengths where they are known (the unrolled `logsumexp` needs the support's).
            lengths = [support.type.shape[0], *discrete.type.shape]
            shape = [support.shape[0], *[discrete.shape[i] for i in range(discrete.ndim)]]
            grid = alloc(
                at.shape_padright(support, discrete.ndim),
                *[s if n is None else n for s, n in zip(shape, lengths)],
            )
        try:
            (log_joint,) = vectorize_graph(
                [terms],
                {discrete_value: grid},
                reads=lambda v: discrete_value in dependence.reads(v),
            )
        except VectorizationError as exc:
            from aesara.scan.op import Scan

            if isinstance(exc.op, Scan):
                raise MarginalizationError(
                    discrete.name or str(discrete),
                    "its dependents are computed by an aesara.scan loop, which aemix cannot sum "
                    "it out through (a Markov chain written with scan is not recognized yet): "
                    "write the steps as a Python loop, z_t = srng.categorical(P[z_prev]), whose "
                    "chain is summed by the forward algorithm",
                ) from exc
            raise MarginalizationError(
                discrete.name or str(discrete),
                f"its dependents use {describe_operation(exc.op)}, which aemix cannot evaluate "
                "at every value of it at once",
            ) from exc
    return Conditionals(log_joint, support)


def _per_element(logp: Variable, cut: Cut) -> Variable:
    """``logp`` per element ``t`` of the cut's axis (summed over the other axes)."""
    per_t = at.moveaxis(logp, cut.axis, 0)
    if per_t.ndim > 1:
        per_t = at.sum(per_t, axis=tuple(range(1, per_t.ndim)))
    return per_t


def _prefix_sums(x: Variable) -> Variable:
    """``P[n] = sum_{t < n} x_t`` for ``n = 0..T``."""
    return at.concatenate([at.zeros((1,), dtype=x.dtype), at.cumsum(x)])


def _suffix_sums(x: Variable) -> Variable:
    """``S[n] = sum_{t >= n} x_t`` for ``n = 0..T``."""
    return at.concatenate([at.cumsum(x[::-1])[::-1], at.zeros((1,), dtype=x.dtype)])


def _gather(x: Variable, index: np.ndarray) -> Variable:
    """``x[index]`` for a constant ``index``; a slice when it is a run of consecutive values (the
    support of a change point, as a rule): the fused loop's scalar code copies a slice, where it
    would select each entry of an index array by a chain of comparisons."""
    if len(index) and np.all(np.diff(index) == 1):
        return x[int(index[0]) : int(index[-1]) + 1]
    return x[at.constant(index)]


def _constant_of(discrete: Variable, value: int) -> Variable:
    return at.constant(np.asarray(value, dtype=discrete.type.dtype))


@marginal_conditionals.register(ChangePointRV)
def _change_point_conditionals(op, values, discrete, support, *children):
    r"""``log P(D = k) + sum_c (P^c_1[n^c_k] + S^c_2[n^c_k])`` at each value ``k`` of the support.

    ``P_1`` sums a child's elements in the first regime (its density with ``D`` at a value that
    puts every element there), ``S_2`` those in the second, up to and from the cut ``n_k``.
    Suffix sums rather than ``total - prefix``: no cancellation, and an element impossible in the
    second regime (``-inf``) stays ``-inf`` rather than ``-inf - (-inf) = nan``.
    """
    from aemix.vectorize import vectorize_graph

    if not isinstance(support, Constant):
        raise NotImplementedError("a change point's support must be a constant")
    with density_build() as build:
        dependence = build.dependence
        prior_value = discrete.type()
        (log_joint,) = vectorize_graph(
            [value_logprob(discrete, prior_value)], {prior_value: support}
        )
        for child_logp, cut in zip(_children_logprobs(children, values), op.cuts):
            first, second = (
                _per_element(replace_views(child_logp, discrete, d, dependence), cut)
                for d in (
                    _constant_of(discrete, cut.all_first),
                    _constant_of(discrete, cut.all_second),
                )
            )
            cuts = cut.boundaries(support.data)
            log_joint = (
                log_joint + _gather(_prefix_sums(first), cuts) + _gather(_suffix_sums(second), cuts)
            )
    return Conditionals(log_joint, support)


def _marginal_logprob(op, values, *inputs, **kwargs):
    r"""Log-density of a placeholder: :math:`\log \sum_k P(D = d_k, \text{outputs})`."""
    total = placeholder_logprob(op, values, *inputs)
    if len(values) == 1:
        return total
    # One density for all outputs together; aeppl sums the terms of a node's outputs.
    return [at.sum(total)] + [at.zeros(()) for _ in values[1:]]


PLACEHOLDER_TYPES = (MarginalMixtureRV, MarginalSwitchRV, FiniteEnumerationRV, MarkovChainRV)
for _op_type in PLACEHOLDER_TYPES:
    MeasurableVariable.register(_op_type)
    _logprob.register(_op_type)(_marginal_logprob)


@_logprob.register(IntegersRV)
def integers_logprob(op, values, *inputs, **kwargs):
    r"""Discrete uniform on ``{low, ..., high - 1}``: :math:`-\log(\text{high} - \text{low})`."""
    (value,) = values
    low, high = inputs[3:]
    inside = at.bitwise_and(at.ge(value, low), at.lt(value, high))
    return at.switch(inside, -at.log(at.cast(high - low, "float64")), -np.inf)
