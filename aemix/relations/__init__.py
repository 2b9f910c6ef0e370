"""Marginalization rules as data: miniKanren relations over expression tuples, in one registry.

A rule is a relation ``rule(model_et, marginal_et)``: a kanren goal that holds when ``marginal_et`` is
the marginal form of the sub-graph ``model_et``.  Rules never touch a FunctionGraph; the generic
rewrite in `aemix.marginalize` applies them.  List them with ``list(registry)``, look one up with
``registry["indexed_mixture"]``, and add your own with `registry.register`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from aemix.relations.mixtures import indexed_mixtureo

__all__ = ["Rule", "RuleRegistry", "registry"]


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

    def register(self, name: str, relation: Callable, *, replace: bool = False) -> Rule:
        """Add ``relation`` under ``name``; raise `KeyError` if the name is taken (unless ``replace``)."""
        if name in self._rules and not replace:
            raise KeyError(f"a marginalization rule named {name!r} is already registered")
        rule = Rule(name, relation)
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

    def rules(self) -> list[Rule]:
        """The rules, in the order they are tried."""
        return list(self._rules.values())


registry = RuleRegistry()
registry.register("indexed_mixture", indexed_mixtureo)
