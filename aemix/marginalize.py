"""Apply the registered marginalization rules to a model graph.

Two passes, both driven by the rules in `aemix.relations.registry`:

1. *Rewrite rules* (kanren relations between a sub-graph and its marginal) are applied to a
   `FunctionGraph` with aesara's `KanrenRelationSub`, under one graph-level condition that a relation,
   looking at a single term, cannot check: the sub-graph a rule consumes must be *private* to the node
   being replaced (its discrete variable and components are used nowhere else) and must not contain an
   observed variable.
2. *Enumeration*: every discrete latent still left whose finite support a *support rule* knows is
   summed out of the joint of the random variables that depend on it (its children), elementwise when
   its elements are independent and each child element depends on one of them (``O(n K)``; a
   child may have more axes than the variable, ``y[i, j]`` reading element ``i``), jointly over
   every configuration otherwise (``K ** n``, within a budget).  A scalar that every child reads
   only through masks ``arange(T) < tau`` that a *threshold rule* recognizes (a change point) is
   summed by cumulative sums of the children's log-densities, ``O(T + K)`` instead of ``O(T K)``
   (`aemix.ops.ChangePointRV`; the budget still counts ``K``).  A count with unbounded support (an
   *unbounded rule*) is summed over a finite range that `aemix.truncation` chooses so that the mass
   left out is below a tolerance.

Before enumeration, every discrete Markov chain that a *chain rule* recognizes (a sequence of
``categorical(P[z_prev])`` states whose other children each read one state) is summed out as a
whole by the forward algorithm, ``O(T K^2)`` (`aemix.ops.MarkovChainRV`, `aemix.markov`); a chain
it does not take is left to the nested enumerations.

Afterwards any discrete latent left is an error: nothing discrete is silently handed to a random walk.

Between the passes, with ``derived=True``, an output that the rewrites left a deterministic function
(``mu + tau * z``, ``2 * K``) is taken out of the graph as a *derived quantity*: it is no variable of
the marginal model (no density, never summed out nor sampled), the random variables it reads become
outputs in its place (so they stay variables of the model), and `MarginalModel.derived` lists it.
During the rewrites it is still an output, so the components it reads are never absorbed into a
mixture.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aesara
import aesara.tensor as at
import numpy as np
from aesara.graph.basic import Apply, Variable, clone_get_equiv, io_toposort
from aesara.graph.fg import FunctionGraph
from aesara.graph.rewriting.basic import EquilibriumGraphRewriter
from aesara.graph.rewriting.kanren import KanrenRelationSub
from aesara.tensor.elemwise import CAReduce, DimShuffle, Elemwise
from aesara.tensor.random.op import RandomVariable
from aesara.tensor.subtensor import AdvancedSubtensor, AdvancedSubtensor1
from aesara.tensor.var import TensorConstant
from kanren import run, var

from aemix.compilation import function as compile_function
from aemix.errors import MarginalizationError, ModelError, describe_operation
from aemix.intake import shared_data
from aemix.ops import (
    ChangePointRV,
    Cut,
    FiniteEnumerationRV,
    MarginalizedView,
    MarginalMixtureRV,
    MarginalSwitchRV,
    MarkovChainRV,
    marginalized_view,
)
from aemix.relations import RuleRegistry, registry
from aemix.truncation import DEFAULT_TAIL_TOLERANCE, Truncation, choose_truncation
from aemix.vectorize import is_full_slice

__all__ = [
    "Marginalization",
    "MarginalModel",
    "marginalize",
    "is_discrete",
    "PLACEHOLDER_OPS",
    "DEFAULT_SUPPORT_BUDGET",
    "DEFAULT_TAIL_TOLERANCE",
]

PLACEHOLDER_OPS = (MarginalMixtureRV, MarginalSwitchRV, FiniteEnumerationRV, MarkovChainRV)
DEFAULT_SUPPORT_BUDGET = 10_000


def is_discrete(var: Variable) -> bool:
    """Whether ``var`` takes integer (or boolean) values."""
    return var.type.dtype.startswith(("int", "uint", "bool"))


def _is_measurable_node(node) -> bool:
    return node is not None and isinstance(node.op, (RandomVariable, *PLACEHOLDER_OPS))


def _is_random(var: Variable) -> bool:
    return _is_measurable_node(var.owner) and (
        isinstance(var.owner.op, PLACEHOLDER_OPS) or var is var.owner.default_output()
    )


def _measurable_outputs(node: Apply) -> list[Variable]:
    if isinstance(node.op, PLACEHOLDER_OPS):
        return list(node.outputs)
    return [node.default_output()]


def _observed_reads_as_data(fgraph: FunctionGraph, data: Mapping[Variable, object]) -> None:
    """Every read of an observed variable by another node reads its data instead.

    Conditioning on the observation makes it a constant for what is computed from it (an
    autoregression on observations, ``x_t ~ normal(phi x_{t-1} + mu[z_t], 1)``).  Left as the
    random variable, a summed-out placeholder that replaced ``x_{t-1}`` would be read by the
    children of the next state, which the placeholder of the previous state contains: a cycle
    (the build never ended).
    """
    for v, d in data.items():
        if v not in fgraph.clients:
            continue
        value = at.constant(np.asarray(d, dtype=v.type.dtype))
        if not v.type.is_super(value.type):
            continue
        for client, i in list(fgraph.clients[v]):
            if client != "output":
                fgraph.change_node_input(client, i, value, reason="observed data")


def _random_inputs(var: Variable) -> list[Variable]:
    """The random variables ``var`` is computed from through deterministic operations."""
    found: list[Variable] = []
    frontier, seen = [var], set()
    while frontier:
        v = frontier.pop()
        if v in seen or v.owner is None:
            continue
        seen.add(v)
        if _is_random(v):
            found.append(v)
        else:
            frontier.extend(v.owner.inputs)
    return found


def _absorbed(fgraph: FunctionGraph) -> set[Variable]:
    """The inputs of placeholder nodes: summed-out variables, absorbed components and children
    (not a Markov chain's initial vector and transition matrices: parameters, which may be latent
    variables of the model)."""
    return {
        inp
        for node in fgraph.apply_nodes
        if isinstance(node.op, PLACEHOLDER_OPS)
        for inp in (node.inputs[2:] if isinstance(node.op, MarkovChainRV) else node.inputs)
    }


@dataclass(frozen=True)
class Marginalization:
    """One application of a rule: which discrete variable was summed out, by which placeholder node.

    Attributes
    ----------
    rule
        The registry name of the rule.
    discrete
        The discrete random variable summed out (an input of ``node``).
    node
        The placeholder node; its outputs are variables of the marginal model.
    truncation
        For a count with unbounded support, the finite range it was summed over (else ``None``).
    cost
        For a variable summed out by enumeration, the number of configurations its elimination
        evaluates its dependents at: its own (support size, or support size to the power of its
        elements when they are summed jointly) times those of the discrete variables summed out
        after it that its factor still reads (``scope``), over which it is evaluated again.
    scope
        The names of those variables.
    """

    rule: str
    discrete: Variable
    node: Apply
    truncation: Truncation | None = None
    cost: int | None = None
    scope: tuple[str, ...] = ()

    @property
    def outputs(self) -> list[Variable]:
        return list(self.node.outputs)

    @property
    def support_size(self) -> int | None:
        if isinstance(self.node.op, FiniteEnumerationRV):
            return int(self.node.inputs[1].data.shape[0])
        if isinstance(self.node.op, MarginalSwitchRV):
            return 2
        if isinstance(self.node.op, MarkovChainRV):
            return self.node.op.n_values
        k = self.discrete.owner.inputs[-1].type.shape[-1]
        return None if k is None else int(k)


@dataclass
class MarginalModel:
    """A model graph after marginalization.

    Attributes
    ----------
    fgraph
        The rewritten graph (a clone; the user's graph is never modified).
    original_to_marginal
        Maps each variable of the user's graph that is still a variable of the marginal model
        (latent, observed, or replaced by a placeholder output) to its counterpart in ``fgraph``.
    marginalizations
        What each rule application summed out, in the order applied.
    derived
        The outputs (the user's variables) that are deterministic functions of the model's random
        variables, taken out of ``fgraph`` (see the module); empty unless ``derived=True``.
    """

    fgraph: FunctionGraph
    original_to_marginal: dict[Variable, Variable]
    marginalizations: list[Marginalization] = field(default_factory=list)
    derived: list[Variable] = field(default_factory=list)

    def random_variables(self) -> list[Variable]:
        """The measurable variables of the marginal model, in topological order.

        Variables consumed by a placeholder (a summed-out discrete variable, absorbed components or
        children) are not variables of the marginal model: the placeholder's density covers them.
        """
        absorbed = _absorbed(self.fgraph)
        # (a Markov chain's states stay in the graph only where a derived quantity reads them)
        absorbed.update(m.discrete for m in self.marginalizations)
        return [
            out
            for node in io_toposort(self.fgraph.inputs, self.fgraph.outputs)
            if _is_measurable_node(node)
            for out in _measurable_outputs(node)
            if out not in absorbed
        ]


def _private_subgraph(fgraph: FunctionGraph, node: Apply, observed: set[Variable]) -> bool:
    """Whether the sub-graph from ``node`` back to the random variables it reads is used only by it.

    The walk goes from ``node``'s inputs towards the graph inputs and stops at random variables (whose
    own parameters are not part of the pattern) and constants.  Every variable on the way must have
    all its clients inside the walked sub-graph, none may be an output of the model, and no random
    variable reached may be observed.
    """
    local_nodes = {node}
    frontier = list(node.inputs)
    walked: list[Variable] = []
    while frontier:
        v = frontier.pop()
        if v.owner is None or v in walked:
            continue
        walked.append(v)
        if v in observed:
            return False
        local_nodes.add(v.owner)
        if not _is_random(v):
            frontier.extend(v.owner.inputs)
    return all(
        client != "output" and client in local_nodes
        for v in walked
        for client, _ in fgraph.clients.get(v, [])
    ) and not _feeds_a_parameter(fgraph, node.outputs[0])


def _feeds_a_parameter(fgraph: FunctionGraph, v: Variable) -> bool:
    """Whether ``v`` reaches a parameter of a random variable through deterministic operations.

    A rewrite rule turns ``X[I]`` into a new random variable (the mixture) that stands in for the
    components ``X``; that is right when ``X[I]`` is what the model measures (an output, observed,
    or a component of another mixture), but when it is, say, the rate of a Poisson, the components
    are parameters the user wants a posterior for, and the index is summed out by enumeration
    instead (which keeps ``X`` as a latent variable).
    """
    frontier, seen = [v], set()
    while frontier:
        u = frontier.pop()
        for client, _ in fgraph.clients.get(u, []):
            if client == "output" or client in seen:
                continue
            seen.add(client)
            if isinstance(client.op, RandomVariable):
                return True
            if not isinstance(client.op, PLACEHOLDER_OPS):
                frontier.extend(client.outputs)
    return False


def _upcast_constants(outputs: list[Variable]) -> dict[Variable, Variable]:
    """float64 copies of low-precision constants, when ``floatX`` is float64.

    Aesara casts a Python float literal that fits float32 to a float32 constant, and an integer
    literal to int8, so ``gamma(2.0, ...)`` would evaluate ``gammaln(2.0)`` and ``normal(0, 10)``
    ``log(10)`` in single precision; densities must be float64-accurate whatever literals the user
    wrote.  float32 constants are upcast everywhere.  An integer constant becomes float64 where every
    use is a parameter of a continuous random variable (never a size, an index or a discrete
    parameter), else int64 where some use is a parameter of a random variable: aeppl's densities
    take ``gammaln`` of integer parameters (the ``n`` of ``binomial(10, p)``, an int8), and Aesara
    computes ``gammaln`` of an int8 or int16 in float32.  int64 stays an integer for the other uses.
    """
    if aesara.config.floatX != "float64":
        return {}
    uses: dict[Variable, list[tuple[bool, bool]]] = {}  # (is an RV parameter, of a continuous RV)
    for node in io_toposort([], outputs):
        is_rv = isinstance(node.op, RandomVariable)
        continuous_rv = is_rv and node.outputs[1].type.dtype.startswith("float")
        for i, inp in enumerate(node.inputs):
            if isinstance(inp, TensorConstant):
                uses.setdefault(inp, []).append((is_rv and i >= 3, continuous_rv and i >= 3))
    memo = {}
    for c, roles in uses.items():
        dtype = c.type.dtype
        integer = dtype.startswith(("int", "uint"))
        if dtype == "float32" or (integer and all(continuous for _, continuous in roles)):
            memo[c] = at.constant(np.asarray(c.data, dtype="float64"), name=c.name)
        elif integer and dtype not in ("int64", "uint64") and any(p for p, _ in roles):
            memo[c] = at.constant(np.asarray(c.data, dtype="int64"), name=c.name)
    return memo


def _describe(v: Variable) -> str:
    return v.name or str(v)


class _Rewriting:
    """The state of one marginalization: the graph, what was replaced, what was applied."""

    def __init__(
        self,
        fgraph: FunctionGraph,
        observed: set[Variable],
        rules: RuleRegistry,
        truncating: _Truncating | None = None,
    ):
        self.fgraph = fgraph
        self.observed = observed
        self.rules = rules
        self.truncating = truncating or _Truncating()
        self.replaced: dict[Variable, Variable] = {}
        self.applied: list[Marginalization] = []
        self.chain_states: set[Variable] = set()

    # -- pass 1: rewrite rules --------------------------------------------------------------------

    def apply_rewrite_rules(self) -> None:
        subs = [self._make_sub(rule) for rule in self.rules.rules("rewrite")]
        if subs:
            EquilibriumGraphRewriter(subs, max_use_ratio=100).rewrite(self.fgraph)

    def _make_sub(self, rule):
        def node_filter(node: Apply) -> bool:
            return _private_subgraph(self.fgraph, node, self.observed)

        sub = KanrenRelationSub(rule.relation, node_filter=node_filter)
        transform = sub.transform

        def recording_transform(fgraph, node):
            new_outputs = transform(fgraph, node)
            if new_outputs:
                (new,) = new_outputs
                old = node.outputs[0]
                new.name = new.name or old.name
                self.replaced[old] = new
                self.applied.append(Marginalization(rule.name, new.owner.inputs[0], new.owner))
            return new_outputs

        sub.transform = recording_transform
        return sub

    # -- between the passes: derived quantities ---------------------------------------------------

    def detach_derived(self, count: int) -> list[int]:
        """Take the deterministic outputs among the first ``count`` out of the graph, the random
        variables they read staying outputs; returns their indices."""
        fgraph = self.fgraph
        indices = [
            i
            for i, out in enumerate(fgraph.outputs[:count])
            if not _is_random(out) and out not in self.observed
        ]
        reads = {i: _random_inputs(fgraph.outputs[i]) for i in indices}
        for i in indices:
            for rv in reads[i]:
                if rv not in fgraph.outputs:
                    fgraph.add_output(rv)
        names = {i: fgraph.outputs[i].name for i in indices}
        for i in reversed(indices):
            fgraph.remove_output(i)
        for i in indices:
            self._check_recoverable(names[i], reads[i])
        return indices

    def _check_recoverable(self, name: str, reads: list[Variable]) -> None:
        """Refuse a derived quantity that reads a discrete latent no random variable depends on:
        that variable is never summed out, so it has no recovered draws to compute it from."""
        for rv in reads:
            if (
                isinstance(rv.owner.op, RandomVariable)
                and is_discrete(rv)
                and rv not in self.observed
                and not self.children_of(rv)
            ):
                raise ModelError(
                    name,
                    f"this derived quantity reads the discrete variable {_describe(rv)!r}, which no "
                    "random variable of the model depends on: it is not summed out, so the "
                    "sampler recovers no draws of it to compute the quantity from",
                )

    # -- pass 2: enumeration ----------------------------------------------------------------------

    def discrete_latents(self) -> list[Variable]:
        absorbed = _absorbed(self.fgraph)
        return [
            node.default_output()
            for node in io_toposort(self.fgraph.inputs, self.fgraph.outputs)
            if isinstance(node.op, RandomVariable)
            and is_discrete(node.default_output())
            and node.default_output() not in self.observed
            and node.default_output() not in absorbed
            and node.default_output() not in self.chain_states
        ]

    def markov_chains(self) -> None:
        """Sum out every discrete Markov chain that a *chain rule* recognizes, by the forward
        algorithm (`aemix.markov`); any state the rule does not take stays for enumeration."""
        latents = self.discrete_latents()
        for rule in self.rules.rules("chain"):
            steps: dict[Variable, tuple[Variable, Variable]] = {}
            for state in latents:
                previous_lv, transition_lv = var(), var()
                for previous, transition in run(
                    1,
                    (previous_lv, transition_lv),
                    rule.relation(state, previous_lv, transition_lv),
                ):
                    steps[state] = (previous, transition)
            following: dict[Variable, list[Variable]] = {}
            for state, (previous, _) in steps.items():
                following.setdefault(previous, []).append(state)
            for head in latents:
                if head in steps or len(following.get(head, [])) != 1:
                    continue
                chain = [head]
                while len(following.get(chain[-1], [])) == 1:
                    chain.append(following[chain[-1]][0])
                emissions = self._chain_emissions(chain, [steps[s][1] for s in chain[1:]])
                if emissions is not None:
                    self._sum_out_chain(rule, chain, [steps[s][1] for s in chain[1:]], emissions)
            latents = [v for v in latents if v not in self.chain_states]

    def _chain_emissions(self, chain, transitions) -> list[list[Apply]] | None:
        """Each state's children other than the next state, when ``chain`` is a Markov chain the
        forward algorithm can sum out (every state latent with the same ``K`` values, each child
        a random variable that reads one state, nothing else discrete read); else ``None``."""
        from aemix.markov import stack_transitions
        from aemix.relations.markov_chains import state_probabilities, state_values

        states = set(chain)
        if chain[0].ndim != 0 or chain[0].owner.op.name not in ("categorical", "bernoulli"):
            return None
        k = state_values(chain[0])
        if state_probabilities(chain[0]) is None:
            return None
        shape = concrete_shape(stack_transitions(transitions))
        if k is None or shape is None or shape[-2:] != (k, k):
            return None
        # (every state is categorical, over the K values of a row: `markov_stepo` says so)
        # The initial vector and the transitions read no discrete latent (they are not summed).
        for v in (state_probabilities(chain[0]), *transitions):
            if any(is_discrete(r) and r not in self.observed for r in _random_inputs(v)):
                return None
        emissions, seen = [], set()
        for t, state in enumerate(chain):
            mine = [
                c
                for c in self.children_of(state)
                if t + 1 == len(chain) or c is not chain[t + 1].owner
            ]
            for child in mine:
                out = child.default_output() if isinstance(child.op, RandomVariable) else None
                if out is None or child in seen or out in states:
                    return None
                if is_discrete(out) and out not in self.observed:
                    return None
                reads = {r for i in child.inputs[3:] for r in _random_inputs(i)}
                if any(r is not state and is_discrete(r) and r not in self.observed for r in reads):
                    return None
                seen.add(child)
            emissions.append(mine)
        return emissions if seen else None

    def _sum_out_chain(self, rule, chain, transitions, emissions) -> bool:
        """Replace the emissions of ``chain`` by one `MarkovChainRV`, each group of per-step
        copies of one form by one random variable over their steps; ``False`` (nothing changed)
        when a group is not copies of one form."""
        from aemix.markov import stack_transitions, vectorized_emission

        states = set(chain)
        own = {child.default_output() for children in emissions for child in children}
        reads_memo: dict[Variable, bool] = {}

        def reads(v: Variable) -> bool:
            """Whether ``v`` reads a state (not through another random variable's value)."""
            if v not in reads_memo:
                if v in states:
                    reads_memo[v] = True
                elif v.owner is None or (isinstance(v.owner.op, RandomVariable) and v not in own):
                    reads_memo[v] = False
                else:
                    reads_memo[v] = any(reads(i) for i in v.owner.inputs)
            return reads_memo[v]

        # Per step, the emissions by distribution and position: one group per form.
        groups: dict[tuple, list[tuple[int, Variable]]] = {}
        for t, children in enumerate(emissions):
            counts: dict = {}
            for child in children:
                position = counts[child.op] = counts.get(child.op, -1) + 1
                groups.setdefault((child.op, position), []).append((t, child.default_output()))
        name = f"{_describe(chain[0])}..{_describe(chain[-1])}"
        inputs, outputs = [], []  # outputs: (old, form, row, step)
        for form, members in enumerate(groups.values()):
            pair = vectorized_emission(
                [old for _, old in members], lambda v: v in states, reads, name
            )
            if pair is None:
                return False
            inputs.extend(pair)
            outputs.extend((old, form, row, t) for row, (t, old) in enumerate(members))
        # Latent outputs first, as aeppl hands a node's values (see `enumerate`).
        outputs.sort(key=lambda o: o[0] in self.observed)
        transition = stack_transitions(transitions)
        k = int(concrete_shape(transition)[-1])
        op = MarkovChainRV(len(chain), k, *(tuple(o[i] for o in outputs) for i in (1, 2, 3)))
        from aemix.relations.markov_chains import state_probabilities

        initial = state_probabilities(chain[0])
        node = op(initial, transition, *inputs, return_list=True)[0].owner
        self._replace_by_placeholder([old for old, *_ in outputs], node)
        self.chain_states.update(chain)
        self.applied.extend(Marginalization(rule.name, state, node) for state in chain)
        return True

    def support_of(self, discrete: Variable):
        for rule in self.rules.rules("support"):
            q = var()
            for support in run(1, q, rule.relation(discrete, q)):
                return rule, support
        return None, None

    def unbounded_low(self, discrete: Variable):
        """The unbounded rule that knows ``discrete`` and its support's first value, or Nones."""
        for rule in self.rules.rules("unbounded"):
            q = var()
            for low in run(1, q, rule.relation(discrete, q)):
                return rule, int(low)
        return None, None

    def children_of(self, discrete: Variable) -> list[Apply]:
        """The measurable nodes reached from ``discrete`` through deterministic operations."""
        children: list[Apply] = []
        frontier, seen = [discrete], set()
        while frontier:
            v = frontier.pop()
            for client, _ in self.fgraph.clients.get(v, []):
                if client == "output":
                    if v is not discrete and v in self.observed:
                        raise MarginalizationError(
                            _describe(discrete),
                            f"the observed {_describe(v)} is computed from it by "
                            f"{describe_operation(v.owner.op)}, and no rule of {list(self.rules)} "
                            "gives that computation a density; write the observation as a random "
                            "variable whose parameters depend on it",
                        )
                    if v is not discrete:
                        raise MarginalizationError(
                            _describe(discrete),
                            f"a deterministic function of it ({_describe(v)}) is an output of the "
                            "model; only random variables that depend on it can be marginalized",
                        )
                    continue
                if client in seen:
                    continue
                seen.add(client)
                if _is_measurable_node(client):
                    child = self._absorbing_node(client)
                    if child not in children:
                        children.append(child)
                else:
                    frontier.extend(client.outputs)
        return children

    def change_points(self, discrete: Variable, children: list[Apply]):
        """The threshold rule and each child's `Cut`, when ``discrete`` is a scalar that every child
        reads only through masks that the rule recognizes (``arange(T) < tau``), elementwise
        along the mask's axis up to the child's parameters; else ``(None, None)``.

        Then the enumeration costs ``O(T + K)`` (`aemix.ops.ChangePointRV`), not ``O(T K)``.
        """
        if discrete.ndim != 0:
            return None, None
        downstream: set[Variable] = set()
        frontier = [discrete]
        while frontier:
            v = frontier.pop()
            for client, _ in self.fgraph.clients.get(v, []):
                if client == "output" or _is_measurable_node(client):
                    continue
                for out in client.outputs:
                    if out not in downstream:
                        downstream.add(out)
                        frontier.append(out)
        for rule in self.rules.rules("threshold"):
            cuts = {}
            for child in children:
                cut = _child_cut(child, discrete, downstream | {discrete}, rule)
                if cut is None:
                    break
                cuts[child] = cut
            else:
                info = np.iinfo(discrete.type.dtype)
                values = [v for cut in cuts.values() for v in (cut.all_first, cut.all_second)]
                if all(info.min <= v <= info.max for v in values):
                    return rule.name, cuts
        return None, None

    def _replace_by_placeholder(self, olds: list[Variable], node: Apply) -> None:
        """Replace the variables ``olds`` by the outputs of the placeholder ``node``, in order."""
        replacements = []
        for old, new in zip(olds, node.outputs):
            new.name = old.name
            replacements.append((old, new))
            self.replaced[old] = new
            if old in self.observed:
                self.observed.add(new)
        self.fgraph.replace_all(replacements, import_missing=True)

    def _absorbing_node(self, node: Apply) -> Apply:
        """The placeholder that absorbed ``node`` (transitively), or ``node`` itself."""
        while True:
            consumers = [
                client
                for out in _measurable_outputs(node)
                for client, _ in self.fgraph.clients.get(out, [])
                if client != "output" and isinstance(client.op, PLACEHOLDER_OPS)
            ]
            if not consumers:
                return node
            node = consumers[0]

    # -- the elimination order ---------------------------------------------------------------

    def eliminate(self, budget: int, on_budget: str) -> None:
        """Sum out every discrete latent left, one at a time, in the order a cost model chooses.

        Summing out ``D`` makes one factor (a placeholder) of its children; a discrete variable
        summed out later that the factor still reads (its ``scope``) enumerates it again at each
        of its own configurations.  So eliminating ``D`` costs its configurations times those of
        its scope (the size of the intermediate factor, as in variable elimination), and the
        order matters: with a vector ``l`` and a scalar ``c`` read by one child, ``l`` first
        costs ``K_l * 2``, ``c`` first ``2 * K_l ** n`` (``l`` is then read through ``c``'s
        factor, no longer element by element).  The order is greedy by that cost (min-weight),
        among the variables none of whose children is a discrete latent still to be summed out
        (an enumeration sums a variable out of its children's joint); ties keep the reverse
        topological order.  The budget applies to each step's cost.
        """
        remaining = self.discrete_latents()
        self._plans: dict[Variable, _Plan] = {}
        while remaining:
            latest_first = list(reversed(remaining))
            if len(remaining) > _ORDER_SEARCH_LIMIT:
                candidates = latest_first[:1]
            else:
                candidates = [d for d in latest_first if not self._has_pending_child(d, remaining)]
                candidates = candidates or latest_first[:1]
            costs = [self.step_cost(d, remaining, budget, on_budget) for d in candidates]
            best = min(range(len(candidates)), key=lambda i: costs[i][0])
            discrete = candidates[best]
            cost, scope = costs[best]
            self.enumerate(discrete, budget, on_budget, cost, scope)
            remaining = [d for d in remaining if d is not discrete]

    def _has_pending_child(self, discrete: Variable, remaining: list[Variable]) -> bool:
        try:
            children = self.children_of(discrete)
        except MarginalizationError:
            return False  # (its enumeration says why)
        pending = set(remaining)
        return any(out in pending for child in children for out in _measurable_outputs(child))

    def plan(self, discrete: Variable, budget: int, on_budget: str) -> _Plan:
        """``discrete``'s support (and range, for a count), and its configurations."""
        if discrete in self._plans:
            return self._plans[discrete]
        name = _describe(discrete)
        rule, support = self.support_of(discrete)
        truncation = None
        if support is None:
            rule, support_low = self.unbounded_low(discrete)
            if rule is None:
                raise MarginalizationError(name, _why_not(self.fgraph, discrete, self.rules))
        children = self.children_of(discrete)
        if not children:
            raise MarginalizationError(
                name,
                "no random variable depends on it, so the data say nothing about it and there is "
                "nothing to sum it out of: leave it out of the model, and draw it after sampling "
                "from its distribution given the draws of its parameters (e.g. "
                "numpy's rng.binomial(1, result.draws['p']) for bernoulli(p))",
            )
        if support is None:
            truncation = self.truncating.choose(discrete, support_low, children, budget, on_budget)
            support = truncation.values()
        # (a support may be a range: it is built only once the budget allows it)
        plan = _Plan(rule, support, truncation)
        self._plans[discrete] = plan
        return plan

    def configurations(self, discrete: Variable, children, plan: _Plan) -> tuple[bool, int]:
        """Whether ``discrete`` is summed out element by element, and its configurations."""
        elementwise = discrete.ndim > 0 and _elementwise(discrete, children) is not None
        k = len(plan.support)
        if discrete.ndim == 0 or elementwise:
            return elementwise, k
        shape = concrete_shape(discrete)
        if shape is None:
            raise MarginalizationError(
                _describe(discrete),
                "its shape is not known, so its joint support cannot be enumerated",
            )
        return False, k ** int(np.prod(shape))

    def step_cost(self, discrete, remaining, budget, on_budget) -> tuple[int, tuple[Variable, ...]]:
        """The configurations that summing out ``discrete`` now evaluates its dependents at, and
        the discrete variables still to be summed out that its factor reads (its scope)."""
        plan = self.plan(discrete, budget, on_budget)
        children = self.children_of(discrete)
        elementwise, own = self.configurations(discrete, children, plan)
        if self.change_points(discrete, children)[0] is not None:
            # Summed by cumulative sums: its dependents are evaluated twice (every element in
            # each regime), whatever its support (`aemix.ops.ChangePointRV`).
            own = 2
        scope = self.scope(discrete, set(remaining))
        shape = concrete_shape(discrete) if elementwise else None
        cost = own
        for other in scope:
            other_plan = self.plan(other, budget, on_budget)
            other_elementwise, n = self.configurations(other, self.children_of(other), other_plan)
            if other_elementwise and (
                shape is None or shape[: other.ndim] != concrete_shape(other)
            ):
                # Its children then include this variable's factor, which is summed element by
                # element along its own axes only if they lead with the other's: else jointly.
                n = len(other_plan.support) ** int(np.prod(concrete_shape(other)))
            cost *= n
        return cost, scope

    def scope(self, discrete: Variable, remaining: set[Variable]) -> tuple[Variable, ...]:
        """The discrete variables of ``remaining`` (other than ``discrete``) that the factor of
        ``discrete`` and its children reads: through their parameters, and through those of the
        variables summed out inside a child that is a placeholder."""
        roots: list[Variable] = []
        # Each node once: nested placeholders (a chain summed out one state at a time) share
        # their inner nodes, and a walk of every path through them is exponential in the depth.
        visited: set[Apply] = set()
        pending = [discrete.owner, *self.children_of(discrete)]
        while pending:
            node = pending.pop()
            if node in visited:
                continue
            visited.add(node)
            if isinstance(node.op, RandomVariable):
                roots.extend(node.inputs[3:])
                continue
            for inp in node.inputs:
                owner = inp.owner
                if owner is not None and _is_measurable_node(owner) and inp in owner.outputs:
                    if isinstance(owner.op, RandomVariable) and inp is not owner.default_output():
                        continue
                    pending.append(owner)
                else:
                    roots.append(inp)
        found: list[Variable] = []
        frontier, seen = roots, set()
        while frontier:
            v = frontier.pop()
            if v in seen or v.owner is None:
                continue
            seen.add(v)
            if v in remaining:
                if v is not discrete and v not in found:
                    found.append(v)
                continue
            if _is_measurable_node(v.owner):
                continue  # another random variable's value
            frontier.extend(v.owner.inputs)
        return tuple(found)

    def enumerate(
        self,
        discrete: Variable,
        budget: int,
        on_budget: str,
        cost: int | None = None,
        scope: tuple[Variable, ...] = (),
    ) -> None:
        name = _describe(discrete)
        plan = self.plan(discrete, budget, on_budget)
        rule, truncation = plan.rule, plan.truncation
        children = self.children_of(discrete)
        elementwise, n_configurations = self.configurations(discrete, children, plan)
        support = plan.support
        n_joint = 1
        if discrete.ndim > 0 and not elementwise:
            shape = concrete_shape(discrete)
            n_joint = int(np.prod(shape))
        cost = n_configurations if cost is None else cost
        if cost > budget:
            names = [_describe(v) for v in scope]
            if len(names) > 6:
                names = [*names[:3], "...", *names[-2:], f"({len(scope)} variables)"]
            within = (
                f" ({n_configurations} of its own, times those of "
                f"{', '.join(names)}, summed out after it, which its "
                "dependents also read)"
                if scope
                else ""
            )
            remedy = "raise `support_budget` to allow it"
            if cost > 10**9:
                remedy = (
                    "no budget allows it: one dependent reads all of them jointly (as a vector "
                    "emission over a chain's stacked states, normal(mu[stack(states)], s), does); "
                    "give each element its own random variable (each step's observation drawn "
                    "from its own state), so that they are summed out one at a time"
                    if len(scope) > 1
                    else "no budget allows it: write the model so that each element of the "
                    "observations reads one element of it"
                )
            message = (
                f"summing it out costs {cost} evaluations of its dependents{within}, over the "
                f"budget of {budget} ({remedy})"
            )
            if on_budget == "raise" or cost > 100 * budget:
                raise MarginalizationError(name, message)
            from aemix.diagnostics import user_stacklevel

            warnings.warn(f"marginalizing {name!r}: {message}", stacklevel=user_stacklevel())
        cut_rule, cuts = self.change_points(discrete, children)
        support = np.asarray(support)
        if discrete.ndim > 0 and not elementwise:
            grid = np.array(list(itertools.product(support, repeat=n_joint)))
            grid = grid.reshape((-1, *shape))
        else:
            grid = support
        grid = at.constant(grid.astype(discrete.type.dtype))
        # Children read the discrete variable through a view that aeppl's rewrites leave alone.
        view = marginalized_view(discrete)
        for client, i in list(self.fgraph.clients[discrete]):
            if client != "output":
                self.fgraph.change_node_input(client, i, view, reason="marginalized_view")
        clones = [child.clone() for child in children]
        # A summed-out variable whose placeholder is a child is now read through the clone.
        clone_of = dict(zip(children, clones))
        self.applied = [
            dataclasses.replace(m, node=clone_of[m.node]) if m.node in clone_of else m
            for m in self.applied
        ]
        pairs = [
            (old, new)
            for child, clone in zip(children, clones)
            for old, new in zip(_measurable_outputs(child), _measurable_outputs(clone))
        ]
        # aeppl hands a node's values to its density in the order the variables were given to it
        # (latent, then observed) and assumes that is the order of the node's outputs.
        pairs.sort(key=lambda pair: pair[0] in self.observed)
        olds = [old for old, _ in pairs]
        inputs = [new for _, new in pairs]
        if cuts is None:
            axes = None
            if elementwise:
                where = _elementwise(discrete, children)
                where_of = {
                    out: a
                    for child, a in zip(children, where)
                    for out in _measurable_outputs(child)
                }
                axes = tuple(where_of.get(old) for old in olds)
                if all(a is None or a == tuple(range(discrete.ndim)) for a in axes):
                    axes = None
            op = FiniteEnumerationRV(elementwise, axes)
        else:
            op = ChangePointRV(tuple(cuts[old.owner] for old in olds))
        node = op(discrete, grid, *inputs, return_list=True)[0].owner
        self._replace_by_placeholder(olds, node)
        self.applied.append(
            Marginalization(
                cut_rule or (rule.name if rule else "finite_support"),
                discrete,
                node,
                truncation,
                cost,
                tuple(_describe(v) for v in scope),
            )
        )


#: Above this many discrete latents left, the elimination order is the reverse topological one
#: (the greedy search costs a graph walk per candidate and step).
_ORDER_SEARCH_LIMIT = 40


@dataclass(frozen=True)
class _Plan:
    """How a discrete latent is summed: the rule that gave its support, the support's values,
    and for a count with unbounded support the range chosen."""

    rule: object
    support: Sequence[int]
    truncation: Truncation | None


@dataclass
class _Truncating:
    """What choosing the range of an unbounded count needs besides the graph.

    Attributes
    ----------
    data
        Observed data by the observed variables of the graph being marginalized.
    original_of
        The user's variable of each variable of that graph (their parameters can be drawn).
    tolerance
        The largest share of a count's mass that may lie beyond its range.
    bounds
        Last values set by the user, by the count's name.
    """

    data: dict[Variable, np.ndarray] = field(default_factory=dict)
    original_of: dict[Variable, Variable] = field(default_factory=dict)
    tolerance: float = DEFAULT_TAIL_TOLERANCE
    bounds: Mapping[str, int] = field(default_factory=dict)
    chosen: list[str] = field(default_factory=list)

    def check_bounds_used(self) -> None:
        """Refuse a name in ``count_bounds`` that no truncated count has (a typo would leave the
        count on its default range without a word)."""
        for name in self.bounds:
            if name not in self.chosen:
                counts = (
                    f"the counts summed over a range: {self.chosen}"
                    if self.chosen
                    else ("no count of the model is summed over a truncated range")
                )
                raise ModelError(
                    name,
                    f"named in `count_bounds`, but it is not a count with unbounded support "
                    f"that aemix sums out ({counts})",
                )

    def choose(self, discrete, support_low, children, budget, on_budget) -> Truncation:
        from aesara.compile.function.types import UnusedInputError
        from aesara.graph.fg import MissingInputError

        from aemix.errors import VectorizationError

        name = _describe(discrete)
        self.chosen.append(name)
        try:
            truncation = choose_truncation(
                discrete,
                discrete.owner.op.name,
                support_low,
                children,
                self.data,
                original=self.original_of.get(discrete, discrete),
                shape=concrete_shape(discrete),
                tolerance=self.tolerance,
                budget=budget,
                bound=self.bounds.get(name),
            )
        except (MissingInputError, UnusedInputError, VectorizationError, NotImplementedError) as e:
            raise MarginalizationError(
                name,
                "it has unbounded support, and its parameters cannot be drawn from their prior to "
                f"choose a range to sum over ({type(e).__name__}); pass count_bounds={{{name!r}: "
                "<last value>}",
            ) from e
        if truncation.capped and truncation.n_prior_draws == 0:
            message = (
                f"it has unbounded support, and its prior puts {truncation.prior_tail:.2g} of its "
                f"mass beyond {truncation.bound}, the last value the support budget of {budget} "
                f"allows (tolerance {truncation.tolerance:g}); raise `support_budget`, or set the "
                "last value with `count_bounds`"
            )
            if on_budget == "raise":
                raise MarginalizationError(name, message)
            from aemix.diagnostics import user_stacklevel

            warnings.warn(f"marginalizing {name!r}: {message}", stacklevel=user_stacklevel())
        return truncation


def _child_cut(child: Apply, discrete: Variable, downstream: set[Variable], rule) -> Cut | None:
    """The `Cut` of ``child`` when it reads ``discrete`` only through masks that ``rule``
    recognizes (all with the same cut), by elementwise operations and axis moves; else ``None``."""
    if not isinstance(child.op, RandomVariable) or child.op.ndim_supp != 0:
        return None
    if any(i in downstream for i in child.inputs[:3]):
        return None
    params = [i for i in child.inputs[3:] if i in downstream]
    masks: dict[Variable, Cut] = {}
    frontier, seen = list(params), set()
    while frontier:
        v = frontier.pop()
        if v in seen:
            continue
        seen.add(v)
        if v is discrete:
            return None
        q = var()
        found = run(1, q, rule.relation(v, discrete, q))
        if found:
            masks[v] = found[0]
            continue
        if not isinstance(v.owner.op, Elemwise | DimShuffle):
            return None
        frontier.extend(i for i in v.owner.inputs if i in downstream)
    if len(set(masks.values())) != 1:
        return None
    (cut,) = set(masks.values())
    # The mask's axis, followed to the child's: elementwise operations keep it, a DimShuffle moves it.
    axis_of = dict.fromkeys(masks, 0)
    for node in io_toposort(list(masks), params):
        axes = {axis_of[i] for i in node.inputs if i in axis_of}
        if not axes:
            continue
        if len(axes) != 1:
            return None
        (axis,) = axes
        if isinstance(node.op, DimShuffle):
            order = list(node.op.new_order)
            if axis not in order:
                return None
            axis = order.index(axis)
        elif not isinstance(node.op, Elemwise):
            return None
        axis_of.update(dict.fromkeys(node.outputs, axis))
    out = child.default_output()
    # A parameter is broadcast against the child's size from the right.
    axes = {out.ndim - p.ndim + axis_of[p] for p in params}
    shape = concrete_shape(out)
    if len(axes) != 1 or shape is None:
        return None
    (axis,) = axes
    if shape[axis] != cut.length:
        return None
    return dataclasses.replace(cut, axis=axis)


def concrete_shape(v: Variable) -> tuple[int, ...] | None:
    """``v``'s shape when it does not depend on random values (static or inferred), else ``None``."""
    if None not in v.type.shape:
        return tuple(v.type.shape)
    from aesara.graph.rewriting.utils import rewrite_graph
    from aesara.tensor.basic import get_scalar_constant_value
    from aesara.tensor.exceptions import NotScalarConstantError

    lengths = [
        rewrite_graph(v.shape[i], include=("canonicalize", "ShapeOpt")) for i in range(v.ndim)
    ]
    try:
        return tuple(int(get_scalar_constant_value(n)) for n in lengths)
    except NotScalarConstantError:
        return None


def _paired_index_axes(index: Variable, indices: list, where: tuple[int, ...]):
    """Where ``index``'s axes ``where`` go in ``array[i_0, ..., index, ...]`` when every index
    is an integer array (``mus[z, arange(n)]``: element ``j`` reads ``z_j``): NumPy broadcasts
    the indices and puts their axes first, so ``index``'s axes are the broadcast shape's last
    ones, if broadcasting keeps their lengths (else ``None``: not followed)."""
    from aesara.tensor.type import TensorType

    if not all(
        isinstance(getattr(i, "type", None), TensorType)
        and i.type.dtype.startswith(("int", "uint"))
        for i in indices
    ):
        return None  # (a slice among them, or a boolean mask)
    shapes = [concrete_shape(i) for i in indices]
    if any(shape is None for shape in shapes):
        return None
    try:
        broadcast = np.broadcast_shapes(*shapes)
    except ValueError:
        return None
    own = shapes[indices.index(index)]
    if own and tuple(broadcast[len(broadcast) - len(own) :]) != tuple(own):
        return None
    if any(own[a] == 1 for a in where):
        return None  # (an axis of length one is broadcast along another's)
    offset = len(broadcast) - len(own)
    return tuple(offset + a for a in where)


def _elementwise(discrete: Variable, children: list[Apply]) -> list | None:
    """Whether each child element depends on ``discrete`` only through the one element of it
    at its position along some of the child's axes: per child, those axes (``None`` for a
    child that is an inner enumeration: its leading axes), else ``None``.

    Checked structurally, following where ``discrete``'s axes are in each expression that reads
    it, from it to the children: every operation must keep each element of an expression reading
    one element of ``discrete`` along those axes, and each child must have them among its axes
    (``y[i, j]`` reading ``N_j`` through ``N[None, :]``: its axis 1).  Followed: elementwise
    operations, axes added or moved (``N[:, None]``, ``mu[:, z].T``), reductions
    over the other axes, indexing an array that does not depend on ``discrete`` by one index
    that does, the others full slices (``theta[z]``, ``mu[z, :]``,
    ``mu[:, z]``), a matrix product with a constant factor over another axis (``one_hot(z) @
    mu``), and random variables with scalar support inside an inner enumeration.  A parameter
    with fewer batch axes than its random variable is broadcast from the right, so
    ``normal(mu[z], 1, size=(n, n))`` reads ``z_j`` in element ``(i, j)``: its columns.  The
    children are random variables of that kind, or inner enumerations summed out element by
    element over a variable whose leading axes are ``discrete``'s (a latent ``c_i ~
    bernoulli(p[z_i])`` with its own children): their density has one term per element.
    """
    from aesara.tensor.basic import TensorFromScalar
    from aesara.tensor.math import Dot
    from aesara.tensor.shape import Reshape, Shape, Shape_i

    shape = concrete_shape(discrete)
    if shape is None:
        return None
    ndim = len(shape)
    leading = tuple(range(ndim))
    # Where discrete's axes are in each expression that reads it.
    axes: dict[Variable, tuple[int, ...]] = {discrete: leading}

    def has_axes(v: Variable, where: tuple[int, ...]) -> bool:
        v_shape = concrete_shape(v)
        return v_shape is not None and tuple(v_shape[a] for a in where) == shape

    def rv_axes(node: Apply) -> tuple[int, ...] | None:
        """The draw's axes that a scalar-support random variable's parameters put ``discrete``'s
        at (batch axes are aligned from the right), or ``None``."""
        if not isinstance(node.op, RandomVariable) or node.op.ndim_supp != 0:
            return None
        out = node.default_output()
        _, size, _, *params = node.inputs
        if size in axes:
            return None
        found = set()
        for p, core in zip(params, node.op.ndims_params):
            if p in axes:
                batch = p.ndim - core  # (a categorical's probabilities: the last axis is core)
                if any(a >= batch for a in axes[p]):
                    return None
                shift = out.ndim - batch
                found.add(tuple(a + shift for a in axes[p]))
        if len(found) != 1:
            return None
        (where,) = found
        return where if has_axes(out, where) else None

    def unit_axes_moved(x: Variable, out: Variable) -> tuple[int, ...] | None:
        """Where a reshape that only adds or drops axes of length one (``z.reshape((n, 1))``)
        puts ``x``'s axes that are ``discrete``'s: its other axes keep their order, so the k-th
        longer-than-one axis of ``x`` is the k-th of ``out``.  Both shapes must be constants
        (``expand_dims``'s target, computed from ``x.shape``, folds to one)."""
        x_shape, out_shape = concrete_shape(x), concrete_shape(out)
        if x_shape is None or out_shape is None:
            return None
        x_long = [a for a, n in enumerate(x_shape) if n != 1]
        out_long = [b for b, n in enumerate(out_shape) if n != 1]
        if [x_shape[a] for a in x_long] != [out_shape[b] for b in out_long]:
            return None
        if any(x_shape[a] == 1 for a in axes[x]):
            return None  # (a discrete axis of length one could be any of out's: not followed)
        return tuple(out_long[x_long.index(a)] for a in axes[x])

    def through(node: Apply) -> tuple[int, ...] | None:
        op, inputs = node.op, node.inputs
        dependent = [i for i in inputs if i in axes]
        if isinstance(op, Elemwise | MarginalizedView):
            if len({axes[i] for i in dependent}) != 1:
                return None
            where = axes[dependent[0]]
            return where if all(has_axes(o, where) for o in node.outputs) else None
        if isinstance(op, DimShuffle):
            order = list(op.new_order)
            if any(a not in order for a in axes[inputs[0]]):
                return None
            return tuple(order.index(a) for a in axes[inputs[0]])
        if isinstance(op, CAReduce):
            where = axes[inputs[0]]
            if op.axis is None or any(a in where for a in op.axis):
                return None
            return tuple(a - sum(r < a for r in op.axis) for a in where)
        if isinstance(op, AdvancedSubtensor1 | AdvancedSubtensor):
            array, *indices = inputs
            if array in axes or len(dependent) != 1:
                return None
            (index,) = dependent
            position = indices.index(index)
            others = [i for i in indices if i is not index]
            if all(is_full_slice(i) for i in others):
                return tuple(position + a for a in axes[index])
            return _paired_index_axes(index, indices, axes[index])
        if isinstance(op, Dot):
            a, b = inputs
            if b in axes or a.ndim != 2 or axes[a] != (0,):
                return None
            return (0,)
        if isinstance(op, Reshape):
            if dependent != [inputs[0]]:
                return None
            return unit_axes_moved(inputs[0], node.outputs[0])
        if isinstance(op, TensorFromScalar):
            return None
        if isinstance(op, RandomVariable):
            return rv_axes(node)
        return None

    nodes = io_toposort([discrete], [i for child in children for i in child.inputs])
    for node in nodes:
        if not any(i in axes for i in node.inputs):
            continue
        if isinstance(node.op, Shape | Shape_i) and concrete_shape(node.inputs[0]) is not None:
            continue  # (a constant shape does not depend on the values: ``expand_dims``'s target)
        where = through(node)
        if where is None:
            return None
        for out in node.outputs:
            axes[out] = where
    found: list = []
    for child in children:
        if isinstance(child.op, RandomVariable):
            where = rv_axes(child)
            if where is None:
                return None
            found.append(where)
        elif type(child.op) is FiniteEnumerationRV:
            inner = child.inputs[0]
            if not child.op.elementwise or not has_axes(inner, leading):
                return None
            if any(axes.get(i, leading) != leading for i in child.inputs):
                return None
            found.append(None)
        else:
            return None
    return found


def marginalize(
    outputs: list[Variable],
    observed: set[Variable] | None = None,
    rules: RuleRegistry = registry,
    *,
    support_budget: int = DEFAULT_SUPPORT_BUDGET,
    on_budget: str = "raise",
    derived: bool = False,
    data: Mapping[Variable, np.ndarray] | None = None,
    tail_tolerance: float = DEFAULT_TAIL_TOLERANCE,
    count_bounds: Mapping[str, int] | None = None,
) -> MarginalModel:
    """Rewrite the model graph of ``outputs`` into its marginal form.

    Parameters
    ----------
    outputs
        Variables of the user's model graph; the model is everything upstream of them.
    observed
        Random variables of the user's graph whose values are given (never summed out).
    rules
        The rules to apply, tried in registry order.
    support_budget
        Largest number of evaluations of a discrete variable's dependents that enumeration may
        cost (support size, or support size to the power of its number of elements when they
        cannot be summed out one by one).
    on_budget
        ``"raise"`` (default) or ``"warn"`` when a cost exceeds the budget (up to 100 times it).
    derived
        Whether an output left a deterministic function by the rewrites is a derived quantity,
        taken out before enumeration (see the module); if false (the default), enumerating a
        discrete variable it reads is refused.
    data
        The observed variables' data, ``{rv: array}``: a count with unbounded support starts its
        range at the largest observation of a binomial child that reads it.
    tail_tolerance
        The largest share of an unbounded count's mass its range may leave out
        (`aemix.truncation`).
    count_bounds
        The last value summed of the unbounded counts named here, instead of the one chosen.

    Returns
    -------
    MarginalModel

    Raises
    ------
    MarginalizationError
        If a discrete random variable that is not observed cannot be summed out.
    """
    if on_budget not in ("raise", "warn"):
        raise ValueError(f"on_budget must be 'raise' or 'warn', got {on_budget!r}")
    observed = set(observed or ())
    memo = _upcast_constants(outputs)
    # Shared data (covariates, a prior's scale) as constants: the loops and the fused module
    # take no shared inputs, and the model is sampled at the values it was built with.
    for shared, value in shared_data(outputs).items():
        dtype = shared.type.dtype
        if dtype == "float32" and aesara.config.floatX == "float64":
            dtype = "float64"  # (as constants are: `_upcast_constants`)
        memo[shared] = at.constant(np.asarray(value, dtype=dtype), name=shared.name)
    equiv = clone_get_equiv(
        [],
        outputs,
        copy_inputs=False,
        copy_orphans=False,
        memo=memo,
        strict=False,
    )
    for original, clone in equiv.items():
        # Nodes rebuilt around upcast constants have fresh, unnamed outputs.
        if isinstance(original, Variable) and clone.name is None:
            clone.name = original.name
    fgraph = FunctionGraph(outputs=[equiv[o] for o in outputs], clone=False)
    _remove_vector_flattens(fgraph)
    _matmuls_as_dots(fgraph)
    _observed_reads_as_data(fgraph, {equiv[v]: d for v, d in (data or {}).items() if v in equiv})
    if not 0 < tail_tolerance < 1:
        raise ValueError(f"tail_tolerance must be in (0, 1), got {tail_tolerance!r}")
    truncating = _Truncating(
        data={equiv[v]: np.asarray(d) for v, d in (data or {}).items() if v in equiv},
        original_of={
            clone: original for original, clone in equiv.items() if isinstance(original, Variable)
        },
        tolerance=tail_tolerance,
        bounds=dict(count_bounds or {}),
    )
    state = _Rewriting(fgraph, {equiv[v] for v in observed if v in equiv}, rules, truncating)
    state.apply_rewrite_rules()
    derived_indices = state.detach_derived(len(outputs)) if derived else []
    state.markov_chains()
    state.eliminate(support_budget, on_budget)
    truncating.check_bounds_used()

    current = {v for node in fgraph.apply_nodes for v in node.outputs}
    # A Markov chain's states are no longer in the graph: its placeholder reads its emissions.
    current.update(state.chain_states)
    original_to_marginal: dict[Variable, Variable] = {}
    for original, clone in equiv.items():
        while clone in state.replaced:
            clone = state.replaced[clone]
        if clone in current:
            original_to_marginal[original] = clone
    derived_outputs = list(dict.fromkeys(outputs[i] for i in derived_indices))
    return MarginalModel(fgraph, original_to_marginal, state.applied, derived_outputs)


def _remove_vector_flattens(fgraph: FunctionGraph) -> None:
    """Replace each reshape of a vector into a vector (``at.take(mu, z)`` flattens ``mu`` first)
    by the vector itself: Aesara removes it while aeppl rewrites the density, which then loses
    track of a random variable read through it."""
    from aesara.tensor.shape import Reshape

    for node in list(fgraph.toposort()):
        if isinstance(node.op, Reshape) and node.inputs[0].ndim == 1 and node.outputs[0].ndim == 1:
            x, out = node.inputs[0], node.outputs[0]
            if out.type.is_super(x.type) or x.type.is_super(out.type):
                fgraph.replace(out, x, reason="vector_flatten")


def _matmuls_as_dots(fgraph: FunctionGraph) -> None:
    """Replace each ``matmul`` of vectors and matrices by the ``dot`` it equals, whose batching,
    scalar lowering and gradient aemix and Aesara have (Aesara's ``MatMul`` has no gradient)."""
    from aesara.tensor.math import MatMul

    for node in list(fgraph.toposort()):
        if isinstance(node.op, MatMul) and all(x.ndim <= 2 for x in node.inputs):
            out = at.dot(*node.inputs)
            if out.dtype != node.outputs[0].dtype:
                out = at.cast(out, node.outputs[0].dtype)
            fgraph.replace(node.outputs[0], out, reason="matmul_as_dot")


def read_bernoulli_conditions(
    outputs: list[Variable], observed: Mapping[Variable, object]
) -> tuple[list[Variable], dict[Variable, object]]:
    """``outputs`` and ``observed`` with each ``switch(c(B), X, Y)`` (``c`` an elementwise
    function of a latent Bernoulli ``B`` alone: ``eq(B, 1)``, ``B > 0``, ``eq(B, 0)``, ``1 - B``,
    ``B.astype(bool)``) rebuilt as the ``switch(B, X, Y)`` or ``switch(B, Y, X)`` it equals,
    found by evaluating ``c`` at ``B = 0`` and ``B = 1``: the zero-inflation and hurdle rule
    (`switch_mixture`) matches that form.  A condition that is neither (``c(0) == c(1)``, or
    mixed across elements) is left as it is; a model without one is returned as it is."""
    from aesara.scalar import Switch

    from aemix.loops import _rebuild

    observed = dict(observed)
    replace: dict[Variable, Variable] = {}
    for node in io_toposort([], [*outputs, *observed]):
        if not (isinstance(node.op, Elemwise) and isinstance(node.op.scalar_op, Switch)):
            continue
        cond, on_true, on_false = node.inputs
        # A condition whose axes are only rearranged with broadcast ones (``eq(z, 1)[:, None]``,
        # a scalar's broadcast against vector branches) is that of its input, put in place the
        # same way: ``z[:, None]``.
        layouts = []
        while (
            cond.owner is not None
            and isinstance(cond.owner.op, DimShuffle)
            and [o for o in cond.owner.op.new_order if o != "x"]
            == list(range(cond.owner.inputs[0].ndim))
        ):
            layouts.append(cond.owner.op.new_order)
            cond = cond.owner.inputs[0]
        if cond.owner is None or _is_random(cond):
            continue
        bernoulli = _only_bernoulli_read(cond)
        if bernoulli is None or bernoulli in observed:
            continue
        shape = bernoulli.type.shape
        if cond.type.shape != shape or None in shape:
            continue
        try:
            at_zero, at_one = (
                np.asarray(
                    compile_function(
                        [],
                        aesara.clone_replace(
                            cond, {bernoulli: at.as_tensor(np.full(shape, b, "int64"))}
                        ),
                        mode="FAST_COMPILE",
                    )()
                ).astype(bool)
                for b in (0, 1)
            )
        except Exception:  # (a condition Aesara cannot evaluate: left alone)
            continue
        placed = bernoulli
        for order in reversed(layouts):
            placed = placed.dimshuffle(*order)
        if not at_zero.any() and at_one.all():
            new = at.switch(placed, on_true, on_false)
        elif at_zero.all() and not at_one.any():
            new = at.switch(placed, on_false, on_true)
        else:
            continue
        old = node.outputs[0]
        if new.type.dtype != old.type.dtype:
            new = at.cast(new, old.type.dtype)
        replace[old] = new
    if not replace:
        return outputs, observed
    everything = [*outputs, *observed]
    rebuilt = _rebuild(everything, replace)
    new_of = dict(zip(everything, rebuilt))
    for old, rebuilt_var in new_of.items():
        rebuilt_var.name = old.name
    return [new_of[v] for v in outputs], {new_of[k]: d for k, d in observed.items()}


def _only_bernoulli_read(cond: Variable) -> Variable | None:
    """The Bernoulli random variable that ``cond`` is an elementwise function of, with constants
    only besides it; else ``None``."""
    found = None
    stack, seen = [cond], set()
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if isinstance(v, TensorConstant):
            continue
        if v.owner is None:
            return None
        if _is_random(v):
            if v.owner.op.name != "bernoulli" or (found is not None and found is not v):
                return None
            found = v
            continue
        if not isinstance(v.owner.op, Elemwise | DimShuffle):
            return None
        stack.extend(v.owner.inputs)
    return found


def _why_not(fgraph: FunctionGraph, v: Variable, rules: RuleRegistry) -> str:
    uses = [client for client, _ in fgraph.clients.get(v, [])]
    op = v.owner.op
    used_by = ", ".join("an output of the model" if c == "output" else str(c.op) for c in uses)
    if getattr(op, "name", "") in ("poisson", "geometric", "nbinom", "negative_binomial"):
        return (
            "it has infinite support, and no registered unbounded rule sums it over a truncated "
            f"range (used by: {used_by})"
        )
    support_rules = ", ".join(r.name for r in rules.rules("support")) or "none"
    return (
        f"no registered support rule ({support_rules}) gives it a finite support "
        f"(its distribution is {getattr(op, 'name', op)}; bounds must be constants; used by: {used_by})"
    )
