"""The joint log-density of a marginal model, from aeppl, on a flat unconstrained vector.

The kernel moves one flat vector per chain.  This module lays the latent variables out in that
vector, maps the unconstrained pieces back to each variable's own space with aeppl's value transforms,
and asks aeppl for two densities: in the variables' own space (what `Sampler.logdensity` returns, no
Jacobian) and in the unconstrained space (the kernel's target, Jacobian included).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aesara
import aesara.tensor as at
import aesara.tensor.random.basic as arb
import numpy as np
from aeppl import conditional_logprob, joint_logprob
from aeppl.transforms import (
    IntervalTransform,
    RVTransform,
    TransformValuesRewrite,
    _default_transformed_rv,
)
from aesara.compile import optdb
from aesara.graph.basic import Constant, Variable, clone_get_equiv, clone_replace
from aesara.graph.fg import FunctionGraph
from aesara.graph.rewriting.db import RewriteDatabaseQuery
from aesara.tensor.rewriting.shape import ShapeFeature

from aemix.dependence import allow_depth, substitute

__all__ = [
    "LatentLayout",
    "LogDensity",
    "OrderedTransform",
    "build_logdensity",
    "default_transform",
]


class OrderedTransform(RVTransform):
    """Increasing values along the last axis from unconstrained ones.

    ``y[0] = x[0]`` and ``y[k] = y[k - 1] + exp(x[k])``; the log-Jacobian is ``x[k]`` for each
    ``k >= 1``, given per element (0 for the first) so that it adds to a univariate
    distribution's elementwise log-density term for term.  The density it gives is the prior's
    restricted to increasing values, not renormalized (for exchangeable priors, the posterior of
    the sorted values).
    """

    name = "ordered"

    def forward(self, value, *inputs):
        return at.concatenate([value[..., :1], at.log(value[..., 1:] - value[..., :-1])], axis=-1)

    def backward(self, value, *inputs):
        return at.concatenate(
            [value[..., :1], value[..., :1] + at.cumsum(at.exp(value[..., 1:]), axis=-1)],
            axis=-1,
        )

    def log_jac_det(self, value, *inputs):
        return at.concatenate([at.zeros_like(value[..., :1]), value[..., 1:]], axis=-1)


# Supports that aeppl 0.1.5's default transforms get wrong, by the random variable's input holding
# the lower bound: pareto(alpha, m) is bounded below by m (aeppl uses alpha: with alpha > m, the
# values in [m, alpha) were unreachable), halfcauchy(loc, scale) by loc (aeppl's log transform
# assumes 0).
_LOWER_BOUND_INPUT = {arb.ParetoRV: 4, arb.HalfCauchyRV: 3}


def default_transform(rv: Variable) -> RVTransform | None:
    """The transform of ``rv`` to an unconstrained space: aeppl's default, corrected where its
    support is wrong (`_LOWER_BOUND_INPUT`); ``None`` if it needs none."""
    bound = _LOWER_BOUND_INPUT.get(type(rv.owner.op))
    if bound is not None:
        return IntervalTransform(lambda *inputs: (inputs[bound], None))
    transformed_node = _default_transformed_rv(rv.owner.op, rv.owner)
    return None if transformed_node is None else transformed_node.op.transform


@dataclass(frozen=True)
class LatentLayout:
    """Where one latent variable sits in the flat unconstrained vector."""

    name: str
    shape: tuple[int, ...]
    unconstrained_shape: tuple[int, ...]
    start: int

    @property
    def size(self) -> int:
        return int(np.prod(self.unconstrained_shape, dtype=int))

    @property
    def stop(self) -> int:
        return self.start + self.size


@dataclass
class LogDensity:
    """Log-density graphs of one chain.

    Attributes
    ----------
    layout
        The latent variables, in the order of the flat vector.
    position
        The flat unconstrained vector (a symbolic vector of length ``dim``).
    logdensity
        Scalar graph in ``position``: the log-density in unconstrained space, Jacobian included.
    constrained
        Graphs in ``position``: every latent in its own space and shape.
    value_vars
        Symbolic values of the latents in their own space (the inputs of ``constrained_logdensity``).
    constrained_logdensity
        Scalar graph in ``value_vars``: the log-density in the variables' own space, no Jacobian.
    loglikelihood
        Scalar graph in ``position``: the part of ``logdensity`` from the observed variables (and
        the marginal placeholders with an observed output); the rest is the prior part.
    separable_likelihood
        Whether the prior part is exactly the latents' prior density (no latent shares a
        placeholder with data), so that prior draws follow it.
    logprior
        Scalar graph in ``position``: the rest of ``logdensity`` (Jacobian included), so that
        ``logprior + loglikelihood`` is ``logdensity`` term for term.
    """

    layout: list[LatentLayout]
    position: Variable
    logdensity: Variable
    constrained: list[Variable]
    value_vars: list[Variable]
    constrained_logdensity: Variable
    loglikelihood: Variable | None = None
    separable_likelihood: bool = True
    logprior: Variable | None = None

    @property
    def dim(self) -> int:
        return self.layout[-1].stop if self.layout else 0

    def tempered(self, beta: Variable) -> Variable:
        """``logprior + beta * loglikelihood``: the density at inverse temperature ``beta``, the
        log-density itself at ``beta = 1`` (each term computed once, whatever ``beta``)."""
        if isinstance(self.loglikelihood, Constant) and not np.any(self.loglikelihood.data):
            return self.logprior  # no data: the prior is the posterior at every temperature
        return self.logprior + beta * self.loglikelihood


def _slice(position: Variable, item: LatentLayout) -> Variable:
    piece = position[item.start : item.stop]
    return piece.reshape(item.unconstrained_shape, ndim=len(item.unconstrained_shape))


def _private_copies(latents, observed):
    """Copies of the model's random variables (and their graph) for one call of ``joint_logprob``.

    aeppl's IR rewrites can rewire the inputs of nodes they share with the graph they were given (a
    node that `joint_logprob` clones keeps its inputs); the marginal model's graph must stay as it
    was, because recovery reads the summed-out variables' conditionals from it afterwards.
    The observed emissions of a Markov chain are given to aeppl as one variable per emission
    form (`aemix.markov.pack_observed`).
    """
    from aemix.markov import pack_observed

    equiv = clone_get_equiv([], [*latents, *observed], copy_inputs=False, copy_orphans=False)
    copies = _canonical([equiv[rv] for rv in [*latents, *observed]])
    realized = dict(zip(copies[len(latents) :], observed.values()))
    return copies[: len(latents)], pack_observed(realized)


def _canonical(variables: list[Variable]) -> list[Variable]:
    """``variables`` with their graph (a private copy, rewritten in place) in canonical form.

    aeppl canonicalizes its IR too, with the values in place of the random variables: where an
    expression simplifies to a valued variable (``b * 1.0``, ``a + b * 0.0``: a dummy covariate
    written in a loop, ``-(-b)``), its "undo" step then replaces that variable by the expression,
    the model's output included, and `joint_logprob` fails on an assertion.  Canonical already,
    the graph gives those rewrites nothing to do (``mu[:3]`` of a 3-vector, which scan's loops
    over a random vector write, too).
    """
    # (with shape inference, as aeppl's: `local_useless_subtensor` needs it, for ``mu[:3]``)
    fgraph = FunctionGraph(outputs=variables, clone=False, features=[ShapeFeature()])
    optdb.query(RewriteDatabaseQuery(include=["canonicalize"])).rewrite(fgraph)
    return list(fgraph.outputs)


def checks_as_values(graphs: list[Variable], value: float) -> tuple[list[Variable], Variable]:
    """``graphs`` with each parameter check (aeppl's ``CheckAndRaise``) giving ``value`` where it
    fails instead of raising, and a boolean scalar graph: whether every check holds.

    Sampling treats a point where a check fails as outside the model (a density of zero, as
    PyMC does), in every loop: the fused loop's lowering of a check gives NaN, which its kernel
    rejects; raised, one chain's failure would stop every chain.
    """
    from aesara.graph.basic import ancestors
    from aesara.raise_op import CheckAndRaise

    replacements, holds = {}, []
    for v in ancestors(graphs):
        node = v.owner
        if node is None or not isinstance(node.op, CheckAndRaise) or v in replacements:
            continue
        x, *conditions = node.inputs
        if all(isinstance(r, Constant) for r in ancestors(conditions) if r.owner is None):
            continue  # (constant parameters: checked when the sampler was built)
        valid = at.all([at.all(c) for c in conditions])
        holds.append(valid)
        replacements[node.outputs[0]] = at.switch(valid, x, np.asarray(value, dtype=x.dtype))
    if not replacements:
        return graphs, at.as_tensor(np.bool_(True))
    *graphs, every = clone_replace([*graphs, at.all(at.stack(holds))], replacements)
    return graphs, every


def _tolerant_simplex_checks(graphs: list[Variable]) -> list[Variable]:
    """``graphs`` with aeppl's check ``sum(p) == 1`` of a multinomial's probabilities made
    ``|sum(p) - 1| <= SIMPLEX_TOLERANCE``: probabilities from a Dirichlet (its stick-breaking
    transform) sum to one up to rounding, and the exact test failed at most points (a
    Dirichlet-multinomial model was refused as out of its parameters' domain)."""
    from aesara.graph.basic import ancestors
    from aesara.raise_op import CheckAndRaise
    from aesara.scalar import EQ
    from aesara.tensor.elemwise import Elemwise

    from aemix.intake import SIMPLEX_TOLERANCE

    replacements = {}
    for v in ancestors(graphs):
        node = v.owner
        if (
            node is None
            or not isinstance(node.op, CheckAndRaise)
            or "sum(p) == 1" not in node.op.msg
        ):
            continue
        for condition in node.inputs[1:]:
            test = condition.owner.inputs[0] if condition.owner is not None else None
            test_node = getattr(test, "owner", None)
            if test_node is None or not (
                isinstance(test_node.op, Elemwise) and isinstance(test_node.op.scalar_op, EQ)
            ):
                continue
            total, one = test_node.inputs
            if isinstance(total, Constant):
                total, one = one, total
            replacements[condition] = at.all(at.le(at.abs(total - one), SIMPLEX_TOLERANCE))
    if not replacements:
        return graphs
    return clone_replace(graphs, replacements)


def build_logdensity(
    latents: list[Variable],
    names: list[str],
    observed: dict[Variable, Variable],
    unconstrained_shapes: list[tuple[int, ...]],
    shapes: list[tuple[int, ...]],
    transforms: Mapping[Variable, RVTransform | None] | None = None,
) -> LogDensity:
    """Build the log-density graphs of the marginal model with latent variables ``latents``.

    Parameters
    ----------
    latents
        Random variables of the marginal model the kernel moves, in topological order.
    names
        Their names, in the same order.
    observed
        Observed random variables of the marginal model mapped to their data (constants).
    unconstrained_shapes, shapes
        Shapes of each latent in unconstrained space and in its own space.
    transforms
        The value transform of a latent where it is not aeppl's default (`default_transform`).
    """
    transforms = {rv: (transforms or {}).get(rv, default_transform(rv)) for rv in latents}

    copies, realized = _private_copies(latents, observed)
    constrained_logp, value_vars = joint_logprob(*copies, realized=realized)
    copies, realized = _private_copies(latents, observed)
    terms, free_vars = conditional_logprob(
        *copies,
        realized=realized,
        extra_rewrites=TransformValuesRewrite(
            {
                copy: transforms[rv]
                for rv, copy in zip(latents, copies)
                if transforms[rv] is not None
            }
        ),
    )
    unconstrained_logp = at.sum([at.sum(term) for term in terms.values()])
    # The likelihood: the terms of nodes with an observed output (a placeholder's one term covers
    # all its outputs); the rest is the prior, which the tempered start anneals from.
    with_data = {node for node in (rv.owner for rv in realized) if node is not None}
    likelihood_terms = [at.sum(t) for rv, t in terms.items() if rv.owner in with_data]
    loglikelihood = at.sum(likelihood_terms) if likelihood_terms else at.constant(np.float64(0.0))
    prior_terms = [at.sum(t) for rv, t in terms.items() if rv.owner not in with_data]
    logprior = at.sum(prior_terms) if prior_terms else at.constant(np.float64(0.0))
    # The prior part is the prior of the latents when no latent shares a node with data.
    separable = not any(copy.owner in with_data for copy in copies)

    layout, start = [], 0
    for name, shape, u_shape in zip(names, shapes, unconstrained_shapes):
        layout.append(LatentLayout(name, tuple(shape), tuple(u_shape), start))
        start = layout[-1].stop

    constrained_logp, unconstrained_logp, loglikelihood, logprior = _tolerant_simplex_checks(
        [constrained_logp, unconstrained_logp, loglikelihood, logprior]
    )
    # Deep graphs (a Markov chain's density is as deep as the chain is long) are cloned and
    # compiled by Aesara's recursive walks, here and whenever the sampler compiles them.
    allow_depth([constrained_logp, unconstrained_logp])
    position = at.vector("position", dtype=aesara.config.floatX)
    pieces = [_slice(position, item) for item in layout]
    memo: dict[Variable, Variable] = {}
    logdensity = substitute(unconstrained_logp, dict(zip(free_vars, pieces)), memo)
    loglikelihood = substitute(loglikelihood, dict(zip(free_vars, pieces)), memo)
    logprior = substitute(logprior, dict(zip(free_vars, pieces)), memo)

    # Each latent in its own space: backward transforms whose parameters are the parents' values.
    rv_to_value: dict[Variable, Variable] = dict(observed)
    constrained = []
    for rv, piece in zip(latents, pieces):
        transform = transforms[rv]
        if transform is None:
            value = piece
        else:
            value = transform.backward(piece, *rv.owner.inputs)
            value = clone_replace(value, rv_to_value) if rv_to_value else value
        rv_to_value[rv] = value
        constrained.append(value)

    for vv, name in zip(value_vars, names):
        vv.name = name
    return LogDensity(
        layout=layout,
        position=position,
        logdensity=logdensity,
        constrained=constrained,
        value_vars=list(value_vars),
        constrained_logdensity=constrained_logp,
        loglikelihood=loglikelihood,
        separable_likelihood=separable,
        logprior=logprior,
    )
