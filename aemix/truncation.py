r"""Finite ranges for counts with unbounded support (Poisson, negative binomial, geometric).

Such a count ``N`` (an ``"unbounded"`` rule of `aemix.relations` recognizes it) is summed over a
range ``[low, bound]`` chosen at build time so that the mass it leaves out is negligible:

- ``low``: an observed child ``y ~ Bin(N, p)`` needs ``N >= y``, so each element of ``N`` starts at
  the largest observation that reads it (its row of ``y``); the range, shared by the elements,
  starts at the smallest of those starts (or at the support's own start).
- ``bound``: the largest of those starts plus `MARGIN` times the ``1 - tolerance`` quantile of
  ``N``'s prior, exact when its parameters are constants, else the largest over `PRIOR_DRAWS`
  draws of its parameters from their prior (a high quantile of the prior predictive of ``N``);
  capped so that the range has at most ``support_budget`` values, or set by the user.

Whether the range was wide enough depends on where the sampler goes, so it is measured on what
it visited (`log_tail_share`): at each kept draw, from the conditional probabilities
:math:`p_k = P(N = k \mid \text{rest})` normalized over the range, the mass beyond the bound is
extrapolated geometrically from the last two values,

.. math::

    \text{tail} \approx p_B \frac{r}{1 - r}, \qquad r = p_B / p_{B-1},

which bounds it from above when the terms :math:`P(N = k, \text{rest})` are log-concave in ``k``
beyond the bound (their ratio then keeps falling): a Poisson or geometric prior, or a negative
binomial with ``n >= 1``, times binomial, Poisson or normal likelihoods.  Elsewhere it is an
estimate.  `Sampler.sample` warns (`aemix.diagnostics.TruncationWarning`) when it exceeds the
tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aesara
import aesara.tensor as at
import numpy as np
import scipy.stats as st
from aesara.graph.basic import Variable, ancestors, clone_replace
from aesara.tensor.elemwise import DimShuffle, Elemwise
from aesara.tensor.random.op import RandomVariable
from aesara.tensor.random.var import RandomGeneratorSharedVariable

from aemix.compilation import function as compile_function

__all__ = [
    "Truncation",
    "DEFAULT_TAIL_TOLERANCE",
    "MARGIN",
    "PRIOR_DRAWS",
    "choose_truncation",
    "log_tail_share",
]

DEFAULT_TAIL_TOLERANCE = 1e-12
# The prior quantile is widened by this factor: the posterior of a count given its children sits
# above its prior when the data say so (and the data's own shift is added separately).
MARGIN = 1.25
PRIOR_DRAWS = 1000


@dataclass(frozen=True)
class Truncation:
    """The range an unbounded count is summed over, and how it was chosen.

    Attributes
    ----------
    family
        The count's distribution (``"poisson"``, ``"nbinom"``, ``"geometric"``).
    low, bound
        The first and the last value summed.
    tolerance
        The largest share of the mass that may lie beyond ``bound``.
    data_low
        The largest lower bound that observed binomial children put on an element, or ``None``.
    quantile
        The ``1 - tolerance`` prior quantile of the count the bound was built from (``None`` when
        the user set the bound).
    n_prior_draws
        Draws of the parameters the quantile was taken over (``0``: the parameters are constants).
    prior_tail
        The prior's mass beyond ``bound`` (the largest over elements and prior draws of the
        parameters), or ``None`` when the user set the bound.
    capped
        Whether the support budget cut the bound short of the one the rule asked for.
    """

    family: str
    low: int
    bound: int
    tolerance: float
    data_low: int | None
    quantile: int | None
    n_prior_draws: int
    prior_tail: float | None
    capped: bool = False

    @property
    def size(self) -> int:
        return len(self.values())

    def values(self) -> np.ndarray:
        """The values summed: the range, after a ``0`` where a Poisson or negative binomial range
        starts above it.

        That ``0`` has no mass (the range starts above it because observations rule it out), but
        without it aeppl's test ``value == 0`` of these densities is constant ``False`` over the
        range, and Aesara 2.9's rewrite of ``x & False`` then fails (``local_useless_elemwise``
        builds a result of the wrong shape) and logs an error at every compilation.
        """
        values = np.arange(self.low, self.bound + 1)
        return np.concatenate([[0], values]) if _with_zero(self.family, self.low) else values

    def describe(self) -> str:
        """The range and how it was chosen, in words (for `Sampler.explain`)."""
        if self.quantile is None:
            how = "bound set by count_bounds"
        else:
            where = (
                "at its constant parameters"
                if self.n_prior_draws == 0
                else f"at the largest of {self.n_prior_draws} prior draws of its parameters"
            )
            how = f"bound = {MARGIN} x the 1 - {self.tolerance:g} prior quantile {self.quantile} {where}"
            if self.data_low is not None:
                how = f"{how}, plus {self.data_low}, the largest count observed binomial children need"
        text = f"summed over [{self.low}, {self.bound}] ({how}); tail tolerance {self.tolerance:g}"
        if self.prior_tail is not None:
            text += f", prior tail beyond the bound {self.prior_tail:.2g}"
        if self.capped:
            text += " (capped by support_budget)"
        return text + "; the tail at the kept draws is checked after sampling"


def _with_zero(family: str, low: int) -> bool:
    """Whether the values summed hold a ``0`` before the range (`Truncation.values`)."""
    return low > 0 and family in ("poisson", "nbinom")


def _scipy_count(family: str, params: list[np.ndarray]):
    if family == "poisson":
        return st.poisson(*params)
    if family == "nbinom":
        return st.nbinom(*params)
    return st.geom(*params)


def _quantile_and_tail(family, params, tolerance, bound=None):
    """The largest ``1 - tolerance`` quantile over the parameters' values, and the largest mass
    beyond ``bound`` (when given)."""
    with np.errstate(all="ignore"):
        dist = _scipy_count(family, params)
        quantile = np.asarray(dist.isf(tolerance), dtype=float)
        tail = None if bound is None else float(np.nanmax(np.asarray(dist.sf(bound), dtype=float)))
    quantile = quantile[np.isfinite(quantile)]
    return (float(quantile.max()) if quantile.size else np.inf), tail


def _parameter_draws(rv: Variable, n_draws: int) -> tuple[list[np.ndarray], int]:
    """The parameters of ``rv``: their values when constant (``0`` draws), else ``n_draws`` draws
    from their prior (own generators, seeded: the user's streams are untouched and builds repeat).
    """
    from aemix.vectorize import vectorize_draws

    params = list(rv.owner.inputs[3:])
    mode = aesara.compile.mode.Mode(linker="py", optimizer="fast_run")
    random = any(
        v.owner is not None and isinstance(v.owner.op, RandomVariable) for v in ancestors(params)
    )
    if not random:
        return [np.asarray(v) for v in compile_function([], params, mode=mode)()], 0
    rngs = [v for v in ancestors(params) if isinstance(v, RandomGeneratorSharedVariable)]
    own = {r: aesara.shared(np.random.default_rng(k)) for k, r in enumerate(rngs)}
    params = clone_replace(params, own)
    drawn = vectorize_draws(params, at.constant(n_draws, dtype="int64"))
    return [np.asarray(v) for v in compile_function([], drawn, mode=mode)()], n_draws


def _copy_axes(n: Variable, discrete: Variable, ndim: int) -> tuple[int, ...] | None:
    """Where ``discrete``'s axes are in ``n`` when ``n`` is ``discrete`` itself with axes added
    (``N[:, None]``, ``N[None, :]``) or cast, in order; else ``None``."""
    where = tuple(range(ndim))
    while n is not discrete and n.owner is not None:
        op = n.owner.op
        if isinstance(op, DimShuffle):
            order = tuple(op.new_order)
            kept = [o for o in order if o != "x"]
            if kept != list(range(len(kept))):
                return None
            where = tuple(order.index(a) for a in where)
        elif not (isinstance(op, Elemwise) and type(op.scalar_op).__name__ in ("Cast", "Identity")):
            if type(op).__name__ != "MarginalizedView":
                return None
        n = n.owner.inputs[0]
    return where if n is discrete else None


def _data_lower_ends(discrete, shape, children, data) -> np.ndarray | None:
    """Per element of ``discrete``, the largest observation of a binomial child ``Bin(N, p)`` that
    reads it (``N`` must be at least that), or ``None`` when no such child is observed."""
    ends = None
    for child in children:
        op = child.op
        if not isinstance(op, RandomVariable) or op.name != "binomial":
            continue
        y = data.get(child.default_output())
        where = _copy_axes(child.inputs[3], discrete, len(shape))
        if y is None or where is None:
            continue
        y = np.asarray(y)
        if y.ndim < len(shape) or y.size == 0:
            continue
        # (the count's axes first, in its order; the others are read by the same element)
        shift = y.ndim - child.inputs[3].ndim  # (parameters broadcast from the right)
        front = [a + shift for a in where]
        y = np.moveaxis(y, front, list(range(len(shape))))
        if y.shape[: len(shape)] != tuple(shape):
            continue
        rows = y.reshape(*shape, -1).max(axis=-1) if shape else y.max()
        ends = rows if ends is None else np.maximum(ends, rows)
    return ends


def choose_truncation(
    discrete: Variable,
    family: str,
    support_low: int,
    children,
    data: Mapping[Variable, np.ndarray],
    *,
    original: Variable,
    shape: tuple[int, ...] | None,
    tolerance: float,
    budget: int,
    bound: int | None = None,
) -> Truncation:
    """The range ``discrete`` (a count with support ``{support_low, ...}``) is summed over.

    Parameters
    ----------
    discrete
        The count, in the graph being marginalized.
    family
        Its distribution's name.
    support_low
        The first value of its support.
    children
        The nodes that depend on it.
    data
        Observed data by the observed variables of that graph.
    original
        The count in the user's graph, whose parameters are drawn from their prior (the graph being
        marginalized may hold placeholders, which cannot be evaluated).
    shape
        The count's shape, or ``None`` when it is not known.
    tolerance
        The largest share of the mass that may be left out.
    budget
        The largest number of values the range may hold.
    bound
        The last value, when the user sets it.
    """
    ends = _data_lower_ends(discrete, shape, children, data) if shape is not None else None
    low = support_low if ends is None else max(support_low, int(np.min(ends)))
    data_low = None if ends is None else int(np.max(ends))
    if bound is not None:
        return Truncation(family, low, max(int(bound), low + 1), tolerance, data_low, None, 0, None)
    params, n_draws = _parameter_draws(original, PRIOR_DRAWS)
    quantile, _ = _quantile_and_tail(family, params, tolerance)
    wanted = np.ceil(MARGIN * quantile) + (data_low or 0)
    # At least two values, so the tail can be extrapolated from the last two.
    wanted = max(wanted, low + 1)
    last = low + budget - 1 - _with_zero(family, low)
    capped = not wanted <= last
    chosen = int(last) if capped else int(wanted)
    _, prior_tail = _quantile_and_tail(family, params, tolerance, chosen)
    return Truncation(
        family,
        low,
        chosen,
        tolerance,
        data_low,
        int(quantile) if np.isfinite(quantile) else None,
        n_draws,
        prior_tail,
        capped,
    )


def log_tail_share(log_probs: Variable) -> Variable:
    """``log`` of the mass beyond the last value relative to the summed mass, per element.

    Parameters
    ----------
    log_probs
        Normalized log-probabilities over the range, its axis last (at least two values).

    Returns
    -------
    Variable
        :math:`\\log(p_B r / (1 - r))` with :math:`r = p_B / p_{B-1}` (see the module): ``-inf``
        where the last value has no mass, ``+inf`` where the terms are not yet falling.
    """
    last, before = log_probs[..., -1], log_probs[..., -2]
    log_ratio = last - before
    rising = at.or_(at.ge(log_ratio, 0.0), at.isnan(log_ratio))
    # (kept below 0 where the switch discards it, so that no log of 0 or less is evaluated)
    falling = at.switch(rising, -1.0, log_ratio)
    tail = last + falling - at.log(-at.expm1(falling))
    return at.switch(at.isinf(last) & at.lt(last, 0.0), -np.inf, at.switch(rising, np.inf, tail))
