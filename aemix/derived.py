"""Derived quantities: outputs of the model that are deterministic functions of its variables.

``build_sampler({"y": y, "theta": mu + tau * z})`` names ``theta`` as an output although it is no
random variable: it has no density, is never sampled and never enters the log-density.  It is
computed from each kept draw, in the record made after the step (`Sampler._record_graphs`), from

* the latent variables, in their own space;
* the observed variables, at their data;
* the summed-out discrete variables, at their recovered draws (joint posterior draws with the
  latents, `aemix.recovery`), so that ``2 * K`` of a summed-out ``K`` is exact per draw.

A derived quantity that reads a random variable which is none of these (it was absorbed into a
marginal density and has no draws), or whose computation cannot be batched over draws, is refused by
name when the sampler is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aesara.tensor as at
from aesara.graph.basic import Constant, Variable, ancestors, clone_replace
from aesara.tensor.random.op import RandomVariable

from aemix.errors import ModelError, VectorizationError, describe_operation
from aemix.vectorize import vectorize_graph

__all__ = ["Derived", "derived_graphs"]


@dataclass(frozen=True)
class Derived:
    """One derived quantity.

    Attributes
    ----------
    name
        Its name (the key of `SampleResult.draws`).
    graph
        Its value, a graph of the latents' value variables and of the stand-ins of ``reads``;
        float64 for a real quantity, int64 otherwise (the dtypes of the fused loop's records).
    shape
        Its static shape.
    reads
        ``(name, stand-in)`` of every summed-out discrete variable it reads: the stand-in is
        replaced by that variable's recovered draw.
    """

    name: str
    graph: Variable
    shape: tuple[int, ...]
    reads: tuple[tuple[str, Variable], ...]


def derived_graphs(
    variables: list[Variable],
    values: Mapping[Variable, Variable],
    discrete: Mapping[Variable, Variable],
    shapes: list[tuple[int, ...]],
) -> list[Derived]:
    """The derived quantities ``variables`` (the user's graphs) in the values of the model.

    Parameters
    ----------
    variables
        The derived outputs, as the user wrote them.
    values
        The user's latent and observed random variables mapped to their value variables and data.
    discrete
        The user's summed-out discrete variables mapped to named stand-ins of their draws.
    shapes
        The static shape of each of ``variables``.

    Returns
    -------
    list of Derived

    Raises
    ------
    ModelError
        Naming the derived quantity, when it reads a random variable that has no draws (absorbed
        into a marginal density), or an operation that cannot be batched over draws.
    """
    out = []
    for var, shape in zip(variables, shapes):
        graph = clone_replace(var, {**values, **discrete})
        upstream = set(ancestors([graph]))
        leftover = sorted(
            {
                v.name or v.owner.op.name
                for v in upstream
                if v.owner is not None and isinstance(v.owner.op, RandomVariable)
            }
        )
        if leftover:
            raise ModelError(
                var.name,
                f"this derived quantity is computed from {', '.join(leftover)}, which the sampler "
                "has no draws of (summed into a marginal density, not a latent variable); name "
                f"{', '.join(leftover)} as an output too, so that it stays a variable of the model",
            )
        reads = tuple((d.name, d) for d in discrete.values() if d in upstream)
        dtype = "float64" if graph.type.dtype.startswith("float") else "int64"
        derived = Derived(var.name, at.cast(graph, dtype), tuple(shape), reads)
        _check_batches(derived, [*values.values(), *discrete.values()])
        out.append(derived)
    return out


def _check_batches(derived: Derived, inputs: list[Variable]) -> None:
    """Refuse ``derived`` now if its graph cannot be computed for a batch of draws (as the record
    computes it), rather than when a run is recorded."""
    batched = {
        v: at.tensor(v.type.dtype, shape=(None, *v.type.shape))
        for v in inputs
        if not isinstance(v, Constant)
    }
    try:
        vectorize_graph([derived.graph], batched)
    except VectorizationError as exc:
        raise ModelError(
            derived.name,
            f"this derived quantity cannot be computed for many draws at once: it uses "
            f"{describe_operation(exc.op)}, and {exc.reason}",
        ) from None
