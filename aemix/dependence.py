"""Which parts of a graph read a variable, found without walking the parts that do not.

Nested enumerations (a Markov chain summed out one variable at a time) build densities that
contain each other: the density of ``z_t`` holds the density of ``z_{t+1}``, which holds that of
``z_{t+2}``, and so on.  Each level rebuilds only what reads its own variable, but a plain walk of
a level's graph (``io_toposort``, ``ancestors``, ``clone_replace``) visits every level inside it,
so building all ``T`` levels costs ``O(T^2)`` and Aesara's recursive helpers run out of stack.

`Dependence` records, once per variable, which *markers* its graph reads: the summed-out variables
whose `MarginalizedView` it reads, and the variables registered with `Dependence.track` (the
value of a summed-out variable while its density is built).  `reading` then orders just the
nodes that read a marker, and `substitute` replaces variables rebuilding only what reads them,
remembering what it rebuilt across calls; both walk each variable once per build, iteratively.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aesara.graph.basic import Apply, Variable

__all__ = ["Dependence", "reading", "substitute", "depth", "allow_depth"]

_NOTHING: frozenset = frozenset()


class Dependence:
    """The markers each variable's graph reads, computed once per variable.

    Valid while the graphs it has seen are not rewritten in place: use one per density build.
    """

    def __init__(self):
        self._reads: dict[Variable, frozenset] = {}
        self._tracked: set[Variable] = set()

    def track(self, v: Variable) -> None:
        """Count ``v`` (a variable with no owner, created after the graphs seen so far) as a marker."""
        self._tracked.add(v)
        self._reads[v] = frozenset((v,))

    def reads(self, graph: Variable) -> frozenset:
        """The markers that ``graph`` reads."""
        from aemix.ops import MarginalizedView

        memo = self._reads
        if graph in memo:
            return memo[graph]
        stack = [graph]
        while stack:
            v = stack[-1]
            if v in memo:
                stack.pop()
                continue
            node = v.owner
            if node is None:
                memo[v] = frozenset((v,)) if v in self._tracked else _NOTHING
                stack.pop()
                continue
            if isinstance(node.op, MarginalizedView):
                found = frozenset((node.inputs[0],))
                for out in node.outputs:
                    memo[out] = found
                stack.pop()
                continue
            pending = [i for i in node.inputs if i not in memo]
            if pending:
                stack.extend(pending)
                continue
            found = _NOTHING
            for i in node.inputs:
                if memo[i]:
                    found = found | memo[i]
            for out in node.outputs:
                memo[out] = found
            stack.pop()
        return memo[graph]


def reading(outputs: Iterable[Variable], reads: Callable[[Variable], bool]) -> list[Apply]:
    """The nodes of ``outputs``' graph whose outputs satisfy ``reads``, inputs first.

    The walk does not go past a variable that does not satisfy ``reads`` (it must then not depend
    on what ``reads`` looks for), so its cost is the size of the part that does.
    """
    order: list[Apply] = []
    done: set[Apply] = set()
    stack = [o.owner for o in outputs if o.owner is not None and reads(o)]
    while stack:
        node = stack[-1]
        if node in done:
            stack.pop()
            continue
        pending = [
            i.owner for i in node.inputs if i.owner is not None and i.owner not in done and reads(i)
        ]
        if pending:
            stack.extend(pending)
            continue
        done.add(node)
        order.append(node)
        stack.pop()
    return order


def substitute(
    graph: Variable,
    replacements: dict[Variable, Variable],
    memo: dict[Variable, Variable],
    keep: Callable[[Apply], bool] = lambda node: False,
    walk: Callable[[Variable], bool] | None = None,
) -> Variable:
    """``graph`` with ``replacements`` applied, rebuilding only the nodes that read them.

    ``memo`` maps every variable already visited to its counterpart (itself when nothing it reads
    is replaced); pass the same dict to later calls with the same ``replacements`` and they share
    what was rebuilt and walk only what is new.  Nodes for which ``keep`` is true are never rebuilt
    (their outputs stay as they are).  When ``walk`` is given, the walk does not go past a
    variable for which it is false (it must then read nothing replaced).
    """
    for old, new in replacements.items():
        memo.setdefault(old, new)
    stack = [graph]
    while stack:
        v = stack[-1]
        if v in memo:
            stack.pop()
            continue
        node = v.owner
        if node is None or (walk is not None and not walk(v)):
            memo[v] = v
            stack.pop()
            continue
        pending = [i for i in node.inputs if i not in memo]
        if pending:
            stack.extend(pending)
            continue
        new_inputs = [memo[i] for i in node.inputs]
        if keep(node) or all(n is i for n, i in zip(new_inputs, node.inputs)):
            memo.update((out, out) for out in node.outputs)
        else:
            clone = node.clone_with_new_inputs(new_inputs, strict=False)
            memo.update(zip(node.outputs, clone.outputs))
        stack.pop()
    return memo[graph]


def depth(outputs: Iterable[Variable]) -> int:
    """The number of nodes on the longest path from an input of ``outputs``' graph to an output."""
    longest: dict[Variable, int] = {}
    stack = list(outputs)
    while stack:
        v = stack[-1]
        if v in longest:
            stack.pop()
            continue
        node = v.owner
        if node is None:
            longest[v] = 0
            stack.pop()
            continue
        pending = [i for i in node.inputs if i not in longest]
        if pending:
            stack.extend(pending)
            continue
        d = 1 + max((longest[i] for i in node.inputs), default=0)
        longest.update((out, d) for out in node.outputs)
        stack.pop()
    return max((longest[o] for o in outputs), default=0)


def allow_depth(outputs: Iterable[Variable]) -> None:
    """Raise Python's recursion limit (never lower it) so that Aesara can walk ``outputs``.

    Aesara's `clone_replace` and `aesara.function` clone a graph recursively, one Python frame per
    node on its longest path; a Markov chain's density is as deep as the chain is long (about 20
    nodes a step).  Since Python 3.11 a Python-to-Python call takes no C stack, so a high limit is
    safe for these walks.  The limit is process-wide, and the graphs are compiled after
    `aemix.build_sampler` returns, so it is raised for good rather than for a block.
    """
    import sys

    needed = 4 * depth(list(outputs)) + 1000
    if needed > sys.getrecursionlimit():
        sys.setrecursionlimit(needed)
