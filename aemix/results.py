"""What a run gives back besides the draws: pointwise log-likelihoods for ArviZ's LOO and WAIC.

The log-likelihood of an observed variable is its density given the latent variables, with every
summed-out discrete variable still summed out (the marginal model's likelihood, the one the kernel
targeted):

- an observed random variable whose density reads no summed-out variable: aeppl's elementwise
  log-density at its data, given the latents;
- an observed output of a placeholder (`aemix.ops`): the placeholder's marginal log-density,
  :math:`\\log \\sum_k P(D = d_k, y \\mid \\text{latents})`.  It is pointwise (one term per
  observation) when the discrete variable was summed out element by element and each of its
  elements goes with one observation (an elementwise enumeration, a mixture or a zero-inflation
  with one index per observation); otherwise (a change point, one switch for a whole vector, an
  enumeration of joint configurations) the whole observed array is one term of shape ``()``: for
  LOO it then counts as one point.  When a placeholder's outputs include latent variables (a latent
  child of the enumerated variable), the term is the conditional
  :math:`\\log p(y, x \\mid \\theta) - \\log p(x \\mid \\theta)`; when they include several
  observed variables, their one joint term is given under the first one's name only.
"""

from __future__ import annotations

from collections.abc import Callable

import aesara
import aesara.tensor as at
import numpy as np
from aeppl.logprob import logprob
from aesara.graph.basic import Variable, ancestors, clone_replace
from aesara.tensor.random.op import RandomVariable

from aemix.ops import (
    PLACEHOLDER_TYPES,
    FiniteEnumerationRV,
    logsumexp,
    marginal_conditionals,
)
from aemix.vectorize import vectorize_graph

__all__ = ["log_likelihood_graphs", "batched_function", "evaluate_in_batches"]


def _placeholder_term(node, rv_to_value: dict[Variable, Variable], observed) -> Variable:
    """``log p(observed outputs | latent outputs, rest)`` of a placeholder node, summed out."""
    values = [rv_to_value[out] for out in node.outputs]
    log_joint, _ = marginal_conditionals(node.op, values, *node.inputs)
    term = logsumexp(log_joint, axis=0)
    latent_outputs = [i for i, out in enumerate(node.outputs) if out not in observed]
    if latent_outputs:
        if not isinstance(node.op, FiniteEnumerationRV):
            raise NotImplementedError(f"{node.op} with latent and observed outputs")
        discrete, support, *children = node.inputs
        # The same enumeration over the latent children alone: the density they are given by.
        latent_node = node.op.make_node(discrete, support, *[children[i] for i in latent_outputs])
        latent_joint, _ = marginal_conditionals(
            node.op, [values[i] for i in latent_outputs], *latent_node.inputs
        )
        term = term - logsumexp(latent_joint, axis=0)
    return term


def log_likelihood_graphs(
    observed: dict[Variable, Variable], rv_to_value: dict[Variable, Variable]
) -> dict[str, Variable]:
    """``name -> log-likelihood`` of each observed variable of a marginal model (see the module).

    Parameters
    ----------
    observed
        The marginal model's observed random variables mapped to their data (in model order).
    rv_to_value
        Every latent random variable of the marginal model mapped to its value variable.

    Returns
    -------
    dict
        Graphs in the latents' value variables: of the observation's shape where the term is
        pointwise, of shape ``()`` where the observed array is one term.
    """
    values = {**rv_to_value, **observed}
    graphs: dict[str, Variable] = {}
    done_nodes = set()
    for rv, data in observed.items():
        node = rv.owner
        if isinstance(node.op, PLACEHOLDER_TYPES):
            if node in done_nodes:
                continue
            done_nodes.add(node)
            term = _placeholder_term(node, values, observed)
            observed_outputs = [out for out in node.outputs if out in observed]
            if not (len(observed_outputs) == 1 and _same_shape(term, rv)):
                term = at.sum(term)
        else:
            term = logprob(rv, data)
        term = clone_replace(term, values)
        leftover = [
            v.name or str(v)
            for v in ancestors([term])
            if v.owner is not None and isinstance(v.owner.op, RandomVariable)
        ]
        if leftover:
            raise RuntimeError(f"the log-likelihood of {rv.name} still reads {leftover}")
        graphs[rv.name] = at.cast(term, "float64")
    return graphs


def _same_shape(term: Variable, rv: Variable) -> bool:
    """Whether ``term`` has one element per element of ``rv`` (as far as the types tell)."""
    if term.ndim != rv.ndim or term.type.broadcastable != rv.type.broadcastable:
        return False
    return all(a is None or b is None or a == b for a, b in zip(term.type.shape, rv.type.shape))


def batched_function(inputs: list[Variable], outputs: list[Variable], mode=None) -> Callable:
    """Compile ``outputs`` (graphs of one draw of ``inputs``) batched over a leading draw axis."""
    batched_inputs = [
        at.tensor(v.type.dtype, shape=(None, *v.type.shape), name=v.name) for v in inputs
    ]
    batched = vectorize_graph(outputs, dict(zip(inputs, batched_inputs)))
    return aesara.function(batched_inputs, batched, on_unused_input="ignore", mode=mode)


def evaluate_in_batches(
    fn: Callable, args: list[np.ndarray], names: list[str], per_batch: int
) -> dict[str, np.ndarray]:
    """``fn`` over the rows of ``args`` (draws on the leading axis), ``per_batch`` rows a call,
    so that the intermediates of a call stay small; ``name -> array`` of every row."""
    rows = len(args[0])
    out: dict[str, np.ndarray] = {}
    for start in range(0, rows, max(1, per_batch)):
        stop = min(rows, start + per_batch)
        for name, value in zip(names, fn(*[a[start:stop] for a in args])):
            if name not in out:
                out[name] = np.empty((rows, *value.shape[1:]), dtype=value.dtype)
            out[name][start:stop] = value
    return out


def predictive_function(
    observed: list[Variable], given: list[Variable], mode=None
) -> tuple[Callable, list[Variable]]:
    """Compile draws of the ``observed`` variables of the user's graph given values of ``given``
    (its latent and discrete variables), one fresh draw per row of the given values.

    Returns ``(fn, rng_inputs)``: ``fn(*given_rows, *generators)`` takes the values with a
    leading draw axis and one ``numpy.random.Generator`` per entry of ``rng_inputs`` (the graph's
    generators, replaced so that the user's are never advanced).
    """
    from aesara.tensor.random.var import RandomGeneratorSharedVariable

    from aemix.vectorize import Batched, _rebuild

    singles = {var: var.type() for var in given}
    shared_rngs = [
        v
        for v in ancestors(observed, blockers=given)
        if isinstance(v, RandomGeneratorSharedVariable)
    ]
    rng_inputs = [rng.type() for rng in shared_rngs]
    graphs = clone_replace(observed, {**singles, **dict(zip(shared_rngs, rng_inputs))})
    batched_inputs = [
        at.tensor(v.type.dtype, shape=(None, *v.type.shape), name=v.name) for v in given
    ]
    new = {singles[v]: (b, True) for v, b in zip(given, batched_inputs)}
    ctx = Batched(batched_inputs[0].shape[0])
    batched = _rebuild(graphs, [*singles.values(), *rng_inputs], new, ctx, draw_per_chain=True)
    fn = aesara.function(
        [*batched_inputs, *rng_inputs], batched, on_unused_input="ignore", mode=mode
    )
    return fn, rng_inputs
