"""Marginalization rules as data: miniKanren relations over expression tuples, in one registry.

There are five kinds of rule.  A ``"rewrite"`` rule is a relation ``rule(model_et, marginal_et)``: a
kanren goal that holds when ``marginal_et`` is the marginal form of the sub-graph ``model_et`` (an
indexed mixture, a Bernoulli switch).  A ``"support"`` rule is a relation ``rule(rv_et, support)``
that gives the finite support of a discrete distribution; the general enumeration rule sums any
discrete latent with a known finite support out of the variables that depend on it.  An
``"unbounded"`` rule ``rule(rv_et, low)`` recognizes a count whose support ``{low, low + 1, ...}``
has no end; it is summed over a range that `aemix.truncation` chooses.  A ``"threshold"`` rule
``rule(mask_et, discrete, cut)`` recognizes a mask that compares a time index with a discrete
scalar (``arange(T) < tau``): when every child reads the variable only through such masks, the
enumeration sums it out by cumulative sums in ``O(T + K)`` (a change point).  A ``"chain"`` rule
``rule(state_et, previous, transition)`` recognizes one step of a discrete Markov chain
(``categorical(P[z_prev])``): a sequence of such steps whose other children each read one state
is summed out by the forward algorithm in ``O(T K^2)`` (`aemix.markov`).  Rules never touch
a FunctionGraph; the generic rewrites in `aemix.marginalize` apply them.  List them with
``list(registry)``, look one up with ``registry["indexed_mixture"]``, and add your own with
`registry.register`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from aemix.relations.change_points import change_pointo
from aemix.relations.markov_chains import markov_stepo
from aemix.relations.mixtures import indexed_mixtureo
from aemix.relations.supports import finite_supporto, unbounded_supporto
from aemix.relations.switches import switch_mixtureo

__all__ = ["Rule", "RuleRegistry", "registry", "KINDS"]

KINDS = ("rewrite", "support", "unbounded", "threshold", "chain")


@dataclass(frozen=True)
class Rule:
    """A named marginalization rule.

    Attributes
    ----------
    name
        The registry key, shown by `Sampler.explain`.
    relation
        The kanren relation ``relation(model_et, marginal_et)``.
    """

    name: str
    relation: Callable
    kind: str = "rewrite"

    @property
    def description(self) -> str:
        """The first paragraph of the relation's docstring (the rule in words)."""
        doc = (self.relation.__doc__ or "").strip()
        return doc.split("\n\n")[0].replace("\n", " ")


class RuleRegistry:
    """An ordered, listable collection of marginalization rules.

    Examples
    --------
    >>> from aemix.relations import registry
    >>> "indexed_mixture" in registry
    True
    """

    def __init__(self):
        self._rules: dict[str, Rule] = {}

    def register(
        self, name: str, relation: Callable, *, kind: str = "rewrite", replace: bool = False
    ) -> Rule:
        """Add ``relation`` under ``name``; raise `KeyError` if the name is taken (unless ``replace``).

        ``kind`` is ``"rewrite"`` (``relation(model_et, marginal_et)``), ``"support"``
        (``relation(rv_et, support)``), ``"unbounded"`` (``relation(rv_et, low)``: a count whose
        support ``{low, low + 1, ...}`` has no end, summed over a truncated range) or
        ``"threshold"`` (``relation(mask_et, discrete, cut)``: a mask that changes at a discrete
        scalar, with its `aemix.ops.Cut`) or ``"chain"`` (``relation(state_et, previous,
        transition)``: a categorical state drawn from the row of a transition matrix that the
        previous state picks).
        """
        if kind not in KINDS:
            raise ValueError(f"rule kind must be one of {KINDS}, got {kind!r}")
        if name in self._rules and not replace:
            raise KeyError(f"a marginalization rule named {name!r} is already registered")
        rule = Rule(name, relation, kind)
        self._rules[name] = rule
        return rule

    def unregister(self, name: str) -> Rule:
        """Remove and return the rule ``name``."""
        return self._rules.pop(name)

    def __getitem__(self, name: str) -> Rule:
        return self._rules[name]

    def __contains__(self, name: object) -> bool:
        return name in self._rules

    def __iter__(self) -> Iterator[str]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def rules(self, kind: str | None = None) -> list[Rule]:
        """The rules (of one ``kind``, if given), in the order they are tried."""
        return [r for r in self._rules.values() if kind is None or r.kind == kind]


registry = RuleRegistry()
registry.register("indexed_mixture", indexed_mixtureo)
registry.register("switch_mixture", switch_mixtureo)
registry.register("finite_support", finite_supporto, kind="support")
registry.register("truncated_count", unbounded_supporto, kind="unbounded")
registry.register("change_point", change_pointo, kind="threshold")
registry.register("markov_chain", markov_stepo, kind="chain")
