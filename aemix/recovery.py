"""Recover the summed-out discrete variables from their conditionals, outermost first.

Every placeholder of the marginal model gives the joint log-probability of each value of its discrete
variable with its outputs (`aemix.ops.marginal_conditionals`); normalized, that is the conditional of
the discrete variable given the values of the outputs.  When placeholders nest (a placeholder is a
child of an enumeration, or a component of a mixture), the inner one's outputs have no values of
their own in the marginal model: their values are those of the outer placeholder's outputs, and the
inner variable depends on the outer one.  So the draws are made in the reverse order of elimination
(as forward-filter backward-sample does for a chain): the outermost variable from its conditional
given the continuous values, then each inner one from its conditional given those values and the
draws of the variables around it.  The joint draw is exact: ``P(a, b | x) = P(a | x) P(b | a, x)``.

A mixture component that the drawn index did not select has no value at all (the mixture integrated
it out), so the discrete variable inside it is drawn from its prior.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import aesara.tensor as at
import numpy as np
from aesara.graph.basic import Constant, Variable, ancestors
from aesara.tensor.random.op import RandomVariable

from aemix.dependence import Dependence, substitute
from aemix.markov import ChainRecovery, chain_terms, state_conditionals
from aemix.ops import (
    FiniteEnumerationRV,
    MarginalMixtureRV,
    MarginalSwitchRV,
    MarkovChainRV,
    density_build,
    logsumexp,
    marginal_conditionals,
    replace_views,
    value_logprob,
)
from aemix.vectorize import vectorize_graph

__all__ = ["Recovery", "recovery_graphs", "inverse_cdf", "draw_graphs", "map_recoveries"]


@dataclass(frozen=True)
class Recovery:
    """How to draw one summed-out discrete variable.

    Attributes
    ----------
    name
        The discrete variable's name.
    log_probs
        ``log P(D = d_k | rest)``, the support's axis last, as a graph of the latents' value
        variables and of the ``draw`` variables of the discrete variables it sits inside.
    support
        The values ``d_k``: ``(K,)`` (shared by every element) or ``(K, *shape)`` (joint
        configurations).
    draw
        A variable standing for this variable's drawn value in the ``log_probs`` of the variables
        inside it.
    enclosing
        Names of the variables whose draws ``log_probs`` reads.
    marginal
        ``log P(D = d_k | latents, data)``, the support's axis last, not given the draws of the
        ``enclosing`` variables, where it is known in closed form (a Markov chain's state: its
        smoothed marginal by forward-backward); else ``None``.  The sampler reports it as the
        variable's conditional probabilities.
    """

    name: str
    log_probs: Variable
    support: np.ndarray
    draw: Variable
    enclosing: tuple[str, ...]
    marginal: Variable | None = None
    chain: ChainRecovery | None = None

    @property
    def given(self) -> tuple[str, ...]:
        """The variables whose draws the reported conditional probabilities are given."""
        return () if self.marginal is not None else self.enclosing


def map_recoveries(recoveries: list[Recovery], fn) -> list[Recovery]:
    """``recoveries`` with every graph they draw from (``log_probs``, a chain's messages)
    rewritten by ``fn`` (a list of graphs to a list of graphs), in one call; the states of one
    Markov chain keep sharing one `aemix.markov.ChainRecovery`."""
    chains = list(dict.fromkeys(r.chain for r in recoveries if r.chain is not None))
    graphs = [r.log_probs for r in recoveries]
    graphs += [g for c in chains for g in (c.alphas, c.log_transition)]
    mapped = iter(fn(graphs))
    log_probs = [next(mapped) for _ in recoveries]
    new_chains = {c: ChainRecovery(c.names, next(mapped), next(mapped)) for c in chains}
    return [
        dataclasses.replace(r, log_probs=lp, chain=new_chains.get(r.chain))
        for r, lp in zip(recoveries, log_probs)
    ]


def _prior_log_probs(discrete: Variable, support: Variable, joint: bool) -> Variable:
    """``log P(D = d_k)`` at the support's values (leading axis), normalized over them."""
    value = discrete.type()
    logp = value_logprob(discrete, value)
    if joint:
        logp = at.sum(logp)
        grid = support
    else:
        grid = at.broadcast_to(
            at.shape_padright(support, discrete.ndim), (support.shape[0], *discrete.shape)
        )
    (log_joint,) = vectorize_graph([logp], {value: grid})
    return log_joint - logsumexp(log_joint, axis=0)


def recovery_graphs(model, rv_to_value: dict[Variable, Variable]) -> list[Recovery]:
    """One `Recovery` per marginalization of ``model``, in the order they were applied.

    Parameters
    ----------
    model
        The `aemix.marginalize.MarginalModel`.
    rv_to_value
        Every variable of the marginal model (latent or observed) mapped to its value.
    """
    # The value of every placeholder output, with the condition under which it holds (``None``:
    # always); a placeholder output absent here has no value (an unselected mixture component).
    value_of: dict[Variable, tuple[Variable, Variable | None]] = {
        v: (value, None) for v, value in rv_to_value.items()
    }
    # One build for every conditional: a placeholder nested in another (a Markov chain's next
    # state) has its density built once and read by the conditionals around it.
    with density_build() as build:
        recoveries = _recoveries(model, rv_to_value, value_of, build)
    return [recoveries[m] for m in model.marginalizations]


def _recoveries(model, rv_to_value, value_of, build) -> dict:
    dependence = build.dependence
    to_value: dict[Variable, Variable] = {}  # shared by every conditional's `substitute`
    drawn: dict[Variable, Variable] = {}
    names: dict[Variable, str] = {}
    recoveries = {}
    chains: dict = {}  # a Markov chain's placeholder -> its states, in order
    chain_recoveries: dict = {}
    for m in model.marginalizations:
        if isinstance(m.node.op, MarkovChainRV):
            chains.setdefault(m.node, []).append(m.discrete)
    for m in reversed(model.marginalizations):
        node, discrete = m.node, m.discrete
        valued = [value_of.get(out) for out in m.outputs]
        if any(v is None for v in valued):
            raise RuntimeError(f"no value for the outputs of {discrete.name}'s placeholder")
        values = [value for value, _ in valued]
        marginal = chain = None
        if isinstance(node.op, MarkovChainRV):
            # Forward-filter backward-sample: given the draw of the state after this one.
            states = chains[node]
            step = states.index(discrete)
            next_draw = drawn[states[step + 1]] if step + 1 < len(states) else None
            log_probs, marginal = state_conditionals(node, values, step, next_draw)
            if node not in chain_recoveries:
                terms = chain_terms(node.op, values, *node.inputs)
                chain_recoveries[node] = ChainRecovery(
                    tuple(v.name for v in states),
                    substitute(terms.alphas, rv_to_value, to_value),
                    substitute(terms.log_transition, rv_to_value, to_value),
                )
            chain = chain_recoveries[node]
            support = at.constant(np.arange(node.op.n_values))
        else:
            log_joint, support = marginal_conditionals(node.op, values, *node.inputs)
            log_probs = log_joint - logsumexp(log_joint, axis=0)
        gates = [gate for _, gate in valued if gate is not None]
        if gates:
            joint = isinstance(node.op, FiniteEnumerationRV) and not node.op.elementwise
            prior = _prior_log_probs(discrete, support, joint)
            selected = gates[0]
            for gate in gates[1:]:
                selected = at.and_(selected, gate)
            log_probs = at.switch(selected, log_probs, prior)
        # The variables around this one are read through their views: their draws stand in.
        for d in dependence.reads(log_probs) & drawn.keys():
            log_probs = replace_views(log_probs, d, drawn[d], dependence)
        # (through views, or through the gates of the mixtures around it)
        read = dependence.reads(log_probs)
        enclosing = tuple(d for d in drawn if drawn[d] in read)
        log_probs = substitute(log_probs, rv_to_value, to_value)
        if marginal is not None:
            marginal = at.moveaxis(substitute(marginal, rv_to_value, to_value), 0, -1)
        support_value = support.data if isinstance(support, Constant) else support
        if isinstance(support_value, Variable):
            support_value = support_value.eval()
        draw = discrete.type()
        draw.name = discrete.name
        dependence.track(draw)
        drawn[discrete] = draw
        names[discrete] = discrete.name
        recoveries[m] = Recovery(
            discrete.name,
            at.moveaxis(log_probs, 0, -1),
            np.asarray(support_value),
            draw,
            tuple(names[d] for d in enclosing),
            marginal,
            chain,
        )
        _pass_values_inward(node, valued, draw, value_of)
    _check_no_random_variables(recoveries.values())
    return recoveries


def _check_no_random_variables(recoveries) -> None:
    """Every conditional reads values only (one walk over all of them: they share their graphs)."""
    graphs = [r.log_probs for r in recoveries]
    graphs += [r.marginal for r in recoveries if r.marginal is not None]
    if any(
        v.owner is not None and isinstance(v.owner.op, RandomVariable) for v in ancestors(graphs)
    ):
        for r in recoveries:
            leftover = [
                v.name or str(v)
                for v in ancestors([r.log_probs])
                if v.owner is not None and isinstance(v.owner.op, RandomVariable)
            ]
            if leftover:
                raise RuntimeError(
                    f"the conditional of {r.name} still reads random variables {leftover}"
                )


def _pass_values_inward(node, valued, draw, value_of) -> None:
    """Give the inputs of ``node`` that are outputs of inner placeholders their values."""
    op = node.op
    if isinstance(op, FiniteEnumerationRV):
        for inp, value in zip(node.inputs[2:], valued):
            value_of[inp] = value
    elif isinstance(op, MarginalMixtureRV) and op.stacked:
        ((value, gate),) = valued
        for k, component in enumerate(node.inputs[1:]):
            chosen = at.eq(draw, k)
            value_of[component] = (value, chosen if gate is None else at.and_(gate, chosen))
    elif isinstance(op, MarginalSwitchRV):
        ((value, gate),) = valued
        for branch, chosen in ((node.inputs[1], at.eq(draw, 1)), (node.inputs[2], at.eq(draw, 0))):
            value_of[branch] = (value, chosen if gate is None else at.and_(gate, chosen))


# Above this many values, the inverse CDF is one cumulative sum and an index instead of a chain of
# switches: the chain's graph grows with the support (a truncated count's range can hold
# thousands), and Aesara's Python backend cannot evaluate the sum it fuses from more than 32 terms.
_UNROLLED_SUPPORT = 32


def inverse_cdf(u: Variable, probs: Variable, support: np.ndarray) -> Variable:
    """``D = d_0 + sum_j [u > F_j] (d_{j+1} - d_j)``: a draw from ``probs`` (the support's axis
    last) by inverse CDF, given ``u ~ Uniform(0, 1)`` of ``probs``' shape less the last axis."""
    if len(support) > _UNROLLED_SUPPORT:
        cdf = at.cumsum(probs[..., :-1], axis=probs.ndim - 1)
        index = at.sum(at.gt(at.shape_padright(u), cdf), axis=-1)
        return at.as_tensor_variable(np.asarray(support))[index].astype(support.dtype)
    cdf = probs[..., 0]
    value = at.as_tensor_variable(support[0])
    for j in range(len(support) - 1):
        value = value + at.switch(at.gt(u, cdf), support[j + 1] - support[j], 0)
        cdf = cdf + probs[..., j + 1]
    return value.astype(support.dtype)


def draw_graphs(recoveries: list[Recovery], uniforms: dict[str, Variable]) -> dict[str, Variable]:
    """Draws of every variable in ``recoveries`` by inverse CDF, each inner one given the draws of
    those around it; ``uniforms`` maps each name to uniforms of ``probs``' shape less the support
    axis.  Returns ``name -> (draw, probs)`` graphs."""
    by_name = {r.name: r for r in recoveries}
    out: dict[str, tuple[Variable, Variable]] = {}
    # Each conditional is rebuilt only where it reads a draw (a Markov chain's conditionals
    # share the densities of the states after them, which read none).
    dependence = Dependence()
    for r in recoveries:
        dependence.track(r.draw)

    chain_draws: dict = {}

    def visit(r: Recovery):
        if r.name in out:
            return out[r.name]
        if r.chain is not None:
            # Every state of a Markov chain in one joint draw (forward-filter backward-sample).
            if r.chain not in chain_draws:
                chain_draws[r.chain] = r.chain.draws(uniforms)
            states, probs = chain_draws[r.chain]
            step = r.chain.names.index(r.name)
            out[r.name] = (states[step].astype(r.support.dtype), probs[step])
            return out[r.name]
        replacements = {by_name[e].draw: visit(by_name[e])[0] for e in r.enclosing}
        log_probs = r.log_probs
        if replacements:
            keys = replacements.keys()
            log_probs = substitute(
                log_probs, replacements, {}, walk=lambda v: bool(dependence.reads(v) & keys)
            )
        probs = at.exp(log_probs)
        out[r.name] = (inverse_cdf(uniforms[r.name], probs, r.support), probs)
        return out[r.name]

    # Outermost first (the reverse of elimination), so that `visit` never recurses deeper than
    # one level (a Markov chain of T states would otherwise recurse T levels).
    for r in reversed(recoveries):
        visit(r)
    return out
