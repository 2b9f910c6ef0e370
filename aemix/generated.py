"""Generated quantities: random variables that no observation depends on, drawn after sampling.

A model often names draws for prediction as outputs: ``y_new = srng.poisson(lam)`` beside the
observed ``y = srng.poisson(lam, size=n)``.  Nothing observed depends on ``y_new``, so the data say
nothing about it: its posterior given the other variables is its own distribution, and summed over
its support its density is one.  Such a variable is not marginalized (an unbounded count would
need a truncation, and there is nothing to sum it out of) nor moved by the kernel: it leaves the
log-density, and each kept draw of the model's other variables is followed by one draw of it from
the model's graph (`Sampler.sample`), the joint draw an ancestral sampler would make.

The set drawn this way (`split_generated`) is every unobserved discrete random variable with no
observed descendant, together with every random variable downstream of one (a continuous
``x ~ normal(k, 1)`` of a generated ``k`` cannot be sampled given a ``k`` that has no draws).  A
group of them that a derived output reads (``N[I]`` of a categorical ``I``, which the
marginalization rules make a mixture) stays in the sampled model.  Continuous latents upstream of
no observation and of no such variable are sampled as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from aesara.graph.basic import Variable, ancestors

from aemix.marginalize import is_discrete

__all__ = ["component_roots", "split_generated"]


def _parents(rv: Variable, rvs: set[Variable]) -> set[Variable]:
    """The random variables among ``rvs`` that ``rv`` reads directly (none between)."""
    return {v for v in ancestors(rv.owner.inputs, blockers=rvs) if v in rvs}


def component_roots(
    items: Iterable[Variable], parents: Mapping[Variable, Iterable[Variable]]
) -> Callable[[Variable], Variable]:
    """The groups of ``items`` connected through ``parents`` (edges to parents outside ``items``
    ignored), as a function from an item to its group's representative."""
    items = list(items)
    root = {v: v for v in items}

    def find(v):
        while root[v] is not v:
            root[v] = root[root[v]]
            v = root[v]
        return v

    for v in items:
        for p in parents[v]:
            if p in root:
                root[find(p)] = find(v)
    return find


def _parents_first(rvs: list[Variable], parents: dict) -> list[Variable]:
    """``rvs`` ordered so that each comes after its parents (ties in the order of ``rvs``)."""
    position = {rv: i for i, rv in enumerate(rvs)}
    order: list[Variable] = []
    done: set[Variable] = set()
    for root in rvs:
        stack = [(root, False)]
        while stack:
            rv, expanded = stack.pop()
            if expanded:
                order.append(rv)
                continue
            if rv in done:
                continue
            done.add(rv)
            stack.append((rv, True))
            stack += [(p, False) for p in sorted(parents[rv], key=position.get, reverse=True)]
    return order


def split_generated(
    outputs: list[Variable],
    observed: Iterable[Variable],
    rvs: list[Variable],
    keep_read: bool = True,
) -> tuple[list[Variable], list[Variable], list[Variable]]:
    """The model's outputs split into those sampled and those drawn after sampling.

    Parameters
    ----------
    outputs
        The user's outputs (random variables and derived quantities).
    observed
        The observed random variables.
    rvs
        Every random variable of the model.
    keep_read
        Whether a group of generated variables that a derived output reads stays in the sampled
        model (for the marginalization rules, which may give the output a density); if not, the
        group and the derived outputs that read it are generated.

    Returns
    -------
    (sampled, generated, parents)
        ``sampled``: the outputs that stay in the sampled model; ``generated``: the generated random
        variables (each after its parents), then the derived outputs that read them; ``parents``:
        the random variables outside that set that one of them reads, which must stay in the
        sampled model so that their draws are there to draw from.
    """
    observed = set(observed)
    rv_set = set(rvs)
    parents = {rv: _parents(rv, rv_set) for rv in rvs}
    order = _parents_first(rvs, parents)
    children: dict[Variable, set[Variable]] = {rv: set() for rv in rvs}
    for rv, ps in parents.items():
        for p in ps:
            children[p].add(rv)

    # Random variables with an observed descendant (themselves observed included).
    informed: set[Variable] = set()
    for rv in reversed(order):
        if rv in observed or any(c in informed for c in children[rv]):
            informed.add(rv)
    generated: set[Variable] = {rv for rv in rvs if rv not in informed and is_discrete(rv)}
    for rv in order:
        if any(p in generated for p in parents[rv]):
            generated.add(rv)
    # A derived output that reads one of them may be a variable the marginalization rules give a
    # density (the seed's ``N[I]``, a mixture): such a group of generated variables (connected
    # through parent and child) is left to marginalization, as is everything it reads.
    read = {
        v
        for out in outputs
        if out not in rv_set
        for v in ancestors([out], blockers=rv_set)
        if v in generated
    }
    if read and keep_read:
        root = component_roots(generated, parents)
        blocked = {root(v) for v in read}
        generated = {rv for rv in generated if root(rv) not in blocked}
    if not generated:
        return list(outputs), [], []
    generated_outputs = [rv for rv in order if rv in generated]
    sampled = []
    for out in outputs:
        if out in generated:
            continue
        if out not in rv_set and any(v in generated for v in ancestors([out], blockers=rv_set)):
            generated_outputs.append(out)
        else:
            sampled.append(out)
    reads = [
        p
        for out in generated_outputs
        for p in (parents[out] if out in rv_set else ancestors([out], blockers=rv_set))
    ]
    needed = sorted({p for p in reads if p in rv_set and p not in generated}, key=order.index)
    return sampled, generated_outputs, needed
