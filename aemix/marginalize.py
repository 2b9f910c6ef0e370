"""Apply the registered marginalization rules to a model graph.

The rules in `aemix.relations.registry` are kanren relations; here they are applied to a
`FunctionGraph` with aesara's `KanrenRelationSub`, under one graph-level condition that a relation,
looking at a single term, cannot check: the sub-graph a rule consumes must be *private* to the node
being replaced (its discrete index and its components are used nowhere else) and must not contain an
observed variable.  After the rewrite, every discrete random variable left in the graph that is neither
observed nor consumed by a marginal Op is an error: nothing discrete is silently handed to a random walk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aesara
import aesara.tensor as at
import numpy as np
from aesara.graph.basic import Apply, Variable, clone_get_equiv, io_toposort
from aesara.graph.fg import FunctionGraph
from aesara.graph.rewriting.basic import EquilibriumGraphRewriter
from aesara.graph.rewriting.kanren import KanrenRelationSub
from aesara.tensor.random.op import RandomVariable
from aesara.tensor.var import TensorConstant

from aemix.errors import MarginalizationError
from aemix.ops import MarginalMixtureRV
from aemix.relations import RuleRegistry, registry

__all__ = ["Marginalization", "MarginalModel", "marginalize", "is_discrete"]

MARGINAL_OPS = (MarginalMixtureRV,)


def is_discrete(var: Variable) -> bool:
    """Whether ``var`` takes integer (or boolean) values."""
    return var.type.dtype.startswith(("int", "uint", "bool"))


def _is_random(var: Variable) -> bool:
    return var.owner is not None and isinstance(var.owner.op, RandomVariable | MarginalMixtureRV)


@dataclass(frozen=True)
class Marginalization:
    """One application of a rule: which discrete variable was summed out, into which variable."""

    rule: str
    discrete: Variable
    marginal: Variable
    components: tuple[Variable, ...]


@dataclass
class MarginalModel:
    """A model graph after marginalization.

    Attributes
    ----------
    fgraph
        The rewritten graph (a clone; the user's graph is never modified).
    original_to_marginal
        Maps each random variable of the user's graph that is still a variable of the marginal model
        (latent, observed, or marginal) to its counterpart in ``fgraph``.
    marginalizations
        What each rule application summed out.
    """

    fgraph: FunctionGraph
    original_to_marginal: dict[Variable, Variable]
    marginalizations: list[Marginalization] = field(default_factory=list)

    def random_variables(self) -> list[Variable]:
        """The measurable variables of the marginal model, in topological order.

        Variables consumed by a marginal Op (a summed-out index, the absorbed components) are not
        variables of the marginal model: their density is part of the marginal Op's density.
        """
        absorbed = {
            inp
            for node in self.fgraph.apply_nodes
            if isinstance(node.op, MARGINAL_OPS)
            for inp in node.inputs
        }
        return [
            node.default_output()
            for node in io_toposort(self.fgraph.inputs, self.fgraph.outputs)
            if _is_random(node.default_output()) and node.default_output() not in absorbed
        ]


def _private_subgraph(fgraph: FunctionGraph, node: Apply, observed: set[Variable]) -> bool:
    """Whether the sub-graph from ``node`` back to the random variables it reads is used only by it.

    The walk goes from ``node``'s inputs towards the graph inputs and stops at random variables (whose
    own parameters are not part of the pattern).  Every variable on the way must have all its clients
    inside the walked sub-graph, and no random variable reached may be observed.
    """
    local_nodes = {node}
    frontier = list(node.inputs)
    walked: list[Variable] = []
    while frontier:
        var = frontier.pop()
        if var.owner is None or var in walked:
            continue
        walked.append(var)
        if var in observed:
            return False
        local_nodes.add(var.owner)
        if not _is_random(var):
            frontier.extend(var.owner.inputs)
    return all(
        client in local_nodes
        for var in walked
        for client, _ in fgraph.clients.get(var, [])
        if client != "output"
    ) and not any(client == "output" for var in walked for client, _ in fgraph.clients[var])


def _upcast_constants(outputs: list[Variable]) -> dict[Variable, Variable]:
    """float64 copies of low-precision constants, when ``floatX`` is float64.

    Aesara casts a Python float literal that fits float32 to a float32 constant, and an integer
    literal to int8, so ``gamma(2.0, ...)`` would evaluate ``gammaln(2.0)`` and ``normal(0, 10)``
    ``log(10)`` in single precision; densities must be float64-accurate whatever literals the user
    wrote.  float32 constants are upcast everywhere; integer constants only where every use is a
    parameter of a continuous random variable (never a size, an index or a discrete parameter).
    """
    if aesara.config.floatX != "float64":
        return {}
    uses: dict[Variable, list[bool]] = {}
    for node in io_toposort([], outputs):
        continuous_rv = isinstance(node.op, RandomVariable) and node.outputs[
            1
        ].type.dtype.startswith("float")
        for i, inp in enumerate(node.inputs):
            if isinstance(inp, TensorConstant):
                uses.setdefault(inp, []).append(continuous_rv and i >= 3)
    memo = {}
    for c, as_float_param in uses.items():
        dtype = c.type.dtype
        if dtype == "float32" or (dtype.startswith(("int", "uint")) and all(as_float_param)):
            memo[c] = at.constant(np.asarray(c.data, dtype="float64"), name=c.name)
    return memo


def _describe(var: Variable) -> str:
    return var.name or str(var)


def marginalize(
    outputs: list[Variable],
    observed: set[Variable] | None = None,
    rules: RuleRegistry = registry,
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

    Returns
    -------
    MarginalModel

    Raises
    ------
    MarginalizationError
        If a discrete random variable that is not observed remains after every rule was applied.
    """
    observed = set(observed or ())
    equiv = clone_get_equiv(
        [],
        outputs,
        copy_inputs=False,
        copy_orphans=False,
        memo=_upcast_constants(outputs),
        strict=False,
    )
    for original, clone in equiv.items():
        # Nodes rebuilt around upcast constants have fresh, unnamed outputs.
        if isinstance(original, Variable) and clone.name is None:
            clone.name = original.name
    fgraph = FunctionGraph(outputs=[equiv[o] for o in outputs], clone=False)
    observed_clones = {equiv[v] for v in observed if v in equiv}
    discrete_before = {
        node.default_output()
        for node in fgraph.apply_nodes
        if _is_random(node.default_output()) and is_discrete(node.default_output())
    }

    applied: list[Marginalization] = []

    def make_sub(rule):
        def node_filter(node: Apply) -> bool:
            return _private_subgraph(fgraph, node, observed_clones)

        def results_filter(results):
            for result in results:
                return result
            return None

        sub = KanrenRelationSub(
            rule.relation, results_filter=results_filter, node_filter=node_filter
        )
        transform = sub.transform

        def recording_transform(fgraph_, node):
            new_outputs = transform(fgraph_, node)
            if new_outputs:
                (new,) = new_outputs
                index, *components = new.owner.inputs
                applied.append(Marginalization(rule.name, index, new, tuple(components)))
                if node.outputs[0].name and not new.name:
                    new.name = node.outputs[0].name
            return new_outputs

        sub.transform = recording_transform
        return sub

    subs = [make_sub(rule) for rule in rules.rules()]
    if subs:
        EquilibriumGraphRewriter(subs, max_use_ratio=100).rewrite(fgraph)

    # Map the user's variables to the marginal graph; a replaced variable maps to its marginal.
    replaced = {m.marginal: m for m in applied}
    original_to_marginal: dict[Variable, Variable] = {}
    current = {v for node in fgraph.apply_nodes for v in node.outputs}
    for original, clone in equiv.items():
        if clone in current:
            original_to_marginal[original] = clone
    for i, out in enumerate(outputs):
        new_out = fgraph.outputs[i]
        if new_out in replaced:
            original_to_marginal[out] = new_out

    model = MarginalModel(fgraph, original_to_marginal, applied)
    consumed = {m.discrete for m in applied}
    for var in discrete_before:
        if var in consumed or var in observed_clones:
            continue
        if var not in current:
            continue
        raise MarginalizationError(_describe(var), _why_not(fgraph, var, rules))
    return model


def _why_not(fgraph: FunctionGraph, var: Variable, rules: RuleRegistry) -> str:
    uses = [client for client, _ in fgraph.clients.get(var, [])]
    op = var.owner.op
    support = {
        "poisson": "it has infinite support",
        "geometric": "it has infinite support",
        "nbinom": "it has infinite support",
        "negative_binomial": "it has infinite support",
    }.get(getattr(op, "name", ""), None)
    rule_names = ", ".join(rules) or "none"
    used_by = ", ".join("an output of the model" if c == "output" else str(c.op) for c in uses)
    if support:
        return f"{support}, so it cannot be summed out exactly (used by: {used_by})"
    if len(uses) > 1:
        return (
            f"it is used in {len(uses)} places ({used_by}) and no registered rule "
            f"({rule_names}) marginalizes a shared discrete variable"
        )
    return f"no registered rule ({rule_names}) matches how it is used (used by: {used_by})"
