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
  observed variables, their one joint term (pointwise when each of them has one element per
  element of the discrete variable) is given under the first one's name only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import aesara.tensor as at
import numpy as np
from aesara.graph.basic import Variable, ancestors, clone_replace
from aesara.tensor.random.op import RandomVariable

from aemix.compilation import function as compile_function
from aemix.diagnostics import Diagnostics
from aemix.ops import (
    PLACEHOLDER_TYPES,
    FiniteEnumerationRV,
    logsumexp,
    marginal_conditionals,
    value_logprob,
)
from aemix.tempering import TemperedStart
from aemix.vectorize import vectorize_graph

__all__ = [
    "log_likelihood_graphs",
    "batched_function",
    "evaluate_in_batches",
    "predictive_function",
    "prior_function",
]


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
        latent_op = node.op.restricted(latent_outputs)
        latent_node = latent_op.make_node(discrete, support, *[children[i] for i in latent_outputs])
        latent_joint, _ = marginal_conditionals(
            latent_op, [values[i] for i in latent_outputs], *latent_node.inputs
        )
        term = term - logsumexp(latent_joint, axis=0)
    return term


def log_likelihood_graphs(
    observed: dict[Variable, Variable],
    rv_to_value: dict[Variable, Variable],
    order: Sequence[str] = (),
) -> dict[str, Variable]:
    """``name -> log-likelihood`` of each observed variable of a marginal model (see the module).

    Parameters
    ----------
    observed
        The marginal model's observed random variables mapped to their data (in model order).
    rv_to_value
        Every latent random variable of the marginal model mapped to its value variable.
    order
        The observed variables' names in the user's order: a joint term of several is given
        under the first of them.

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
            across = getattr(node.op, "axes", None) is not None  # (columns, not rows)
            if not across and all(_leading_shape(term, out) for out in observed_outputs):
                # One term per element of the summed-out variable: the observations' elements
                # that read that element (a row ``y[i, :]`` reading ``z_i``, and ``y2[i]`` beside
                # ``y1[i]``) are one point.
                pass
            else:
                term = at.sum(term)
            # (the joint term of several, under the first one's name in the user's ``order``)
            rank = {name: i for i, name in enumerate(order)}
            rv = min(observed_outputs, key=lambda out: rank.get(out.name, len(rank)))
        else:
            term = value_logprob(rv, data)
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


def _leading_shape(term: Variable, rv: Variable) -> bool:
    """Whether ``term`` has one element per element of ``rv`` or per index of its leading axes
    (as far as the static shapes tell: they must be known)."""
    from aemix.marginalize import concrete_shape

    if term.ndim == 0 or term.ndim > rv.ndim:
        return False
    term_shape, rv_shape = concrete_shape(term), concrete_shape(rv)
    return (
        term_shape is not None
        and rv_shape is not None
        and tuple(term_shape) == tuple(rv_shape[: term.ndim])
    )


def batched_function(inputs: list[Variable], outputs: list[Variable], mode=None) -> Callable:
    """Compile ``outputs`` (graphs of one draw of ``inputs``) batched over a leading draw axis.

    With no ``inputs``, the function takes one array whose length is the number of rows."""
    inputs = inputs or [at.dscalar("row")]
    batched_inputs = [
        at.tensor(v.type.dtype, shape=(None, *v.type.shape), name=v.name) for v in inputs
    ]
    batched = vectorize_graph(outputs, dict(zip(inputs, batched_inputs)))
    return compile_function(batched_inputs, batched, on_unused_input="ignore", mode=mode)


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
    observed: list[Variable], given: list[Variable], mode=None, fixed=None
) -> tuple[Callable, list[Variable]]:
    """Compile draws of the ``observed`` variables of the user's graph given values of ``given``
    (its latent and discrete variables), one fresh draw per row of the given values, and the
    variables of ``fixed`` (``variable -> value``, e.g. observed variables and their data) at
    their values.

    Returns ``(fn, rng_inputs)``: ``fn(*given_rows, *generators)`` takes the values with a
    leading draw axis and one ``numpy.random.Generator`` per entry of ``rng_inputs`` (the graph's
    generators, replaced so that the user's are never advanced).
    """
    from aesara.tensor.random.var import RandomGeneratorSharedVariable

    from aemix.vectorize import Batched, _rebuild

    fixed = dict(fixed or {})
    singles = {var: var.type() for var in given}
    shared_rngs = [
        v
        for v in ancestors(observed, blockers=[*given, *fixed])
        if isinstance(v, RandomGeneratorSharedVariable)
    ]
    rng_inputs = [rng.type() for rng in shared_rngs]
    graphs = clone_replace(observed, {**fixed, **singles, **dict(zip(shared_rngs, rng_inputs))})
    batched_inputs = [
        at.tensor(v.type.dtype, shape=(None, *v.type.shape), name=v.name) for v in given
    ]
    new = {singles[v]: (b, True) for v, b in zip(given, batched_inputs)}
    ctx = Batched(batched_inputs[0].shape[0], drawing=True)
    batched = _rebuild(graphs, [*singles.values(), *rng_inputs], new, ctx, draw_per_chain=True)
    fn = compile_function(
        [*batched_inputs, *rng_inputs], batched, on_unused_input="ignore", mode=mode
    )
    return fn, rng_inputs


def prior_function(variables: list[Variable], mode=None) -> tuple[Callable, list[Variable]]:
    """Compile joint forward draws of ``variables`` (graphs of the user's model), ``n`` at once.

    Returns ``(fn, rng_inputs)``: ``fn(n, *generators)`` gives each variable with a leading axis
    of ``n`` independent draws, from one ``numpy.random.Generator`` per entry of ``rng_inputs``
    (the graph's generators, replaced so that the user's are never advanced).
    """
    from aesara.tensor.random.var import RandomGeneratorSharedVariable

    from aemix.vectorize import vectorize_draws

    shared_rngs = [v for v in ancestors(variables) if isinstance(v, RandomGeneratorSharedVariable)]
    rng_inputs = [rng.type() for rng in shared_rngs]
    graphs = clone_replace(variables, dict(zip(shared_rngs, rng_inputs)))
    n = at.lscalar("n")
    batched = vectorize_draws(graphs, n)
    fn = compile_function([n, *rng_inputs], batched, on_unused_input="ignore", mode=mode)
    return fn, rng_inputs


@dataclass
class SampleResult:
    """Draws and diagnostics from `Sampler.sample`.

    Attributes
    ----------
    draws
        ``name -> array`` of shape ``(n_chains, n_samples, *shape)`` for every latent variable (in its
        own space) and every marginalized discrete variable (drawn from its conditional given each
        kept draw), or those named in ``var_names``.  A marginalized variable is stored in the
        narrowest integer type that holds its support (`aemix.memory.smallest_integer_dtype`:
        int8 for values in -128..127), so cast it before arithmetic that could overflow.
    acceptance_rate
        Fraction of accepted proposals per chain over the kept steps, shape ``(n_chains,)``.
    logdensity
        Unconstrained log-density (Jacobian included) of each kept draw, ``(n_chains, n_samples)``.
    step_size, scale
        The (frozen) kernel parameters used for the kept draws: ``scale`` is the per-coordinate
        scale for one coordinate, else the ``(dim, dim)`` factor ``L`` of the proposal's
        covariance ``step_size ** 2 L L^T`` (`Sampler.proposal_form`).
    observed
        The observed data, ``name -> array``.
    loop
        Which compiled loop ran: ``"fused"`` or ``"scan"`` (see `Sampler.sample`).
    kernel
        Which kernel moved the chains: ``"rmh"``, ``"mala"`` or ``"hmc"`` (see `Sampler.sample`).
    warmup_steps
        Warm-up steps run: ``warmup``, or fewer when the proposal settled earlier
        (`aemix.adaptation.warm_up`).
    n_divergent
        For HMC, the trajectories of each chain over the kept steps that diverged (an energy
        error above `aemix.kernels.hmc.DIVERGENCE`), ``(n_chains,)``; ``None`` for the other
        kernels.  Any divergence makes `Sampler.sample` warn.
    truncation_tail
        For each marginalized count with unbounded support, summed over a finite range
        (`aemix.truncation`): the largest share of its conditional mass beyond the range over the
        kept draws (over the chains' last states when ``var_names`` left out a latent).
    """

    draws: dict[str, np.ndarray]
    acceptance_rate: np.ndarray
    logdensity: np.ndarray
    step_size: float
    scale: np.ndarray
    observed: dict[str, np.ndarray] = field(default_factory=dict)
    loop: str = "scan"
    warmup_steps: int | None = None
    kernel: str = "rmh"
    n_divergent: np.ndarray | None = None
    _conditionals_fn: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = field(
        default=None, repr=False
    )
    _conditionals: dict[str, np.ndarray] | None = field(default=None, repr=False)
    _averaged_conditionals_fn: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = (
        field(default=None, repr=False)
    )
    _chain_probabilities: dict[str, np.ndarray] | None = field(default=None, repr=False)
    diagnostics: Diagnostics | None = field(default=None, repr=False)
    log_evidence: float | None = None
    log_evidence_se: float | None = None
    tempering: TemperedStart | None = field(default=None, repr=False)
    _log_likelihood_fn: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = field(
        default=None, repr=False
    )
    _log_likelihood: dict[str, np.ndarray] | None = field(default=None, repr=False)
    truncation_tail: dict[str, float] = field(default_factory=dict)

    @property
    def conditional_probabilities(self) -> dict[str, np.ndarray]:
        """For each marginalized variable, ``P(D = d_k | rest)`` at every kept draw.

        Shape ``(n_chains, n_samples, *shape, K)`` (the support's values on the last axis) when
        ``D``'s elements were summed out one by one, ``(n_chains, n_samples, K ** n)`` over its
        joint configurations (in ``itertools.product(support, repeat=n)`` order) when they were
        summed out together.  "rest" is the latents, the data and, for a variable summed out
        inside another, that variable's draw (`Sampler.conditionals_given`); for a state of a
        Markov chain (the ``markov_chain`` rule) it is the latents and the data alone: its
        smoothed marginal ``P(z_t = k | latents, data)`` by forward-backward, although its draws
        are made jointly, by forward-filter backward-sample.  Computed on first access (it is
        ``K`` times larger than the draws) and then kept.
        """
        if self._conditionals is None:
            self._conditionals = (
                self._conditionals_fn(self.draws) if self._conditionals_fn is not None else {}
            )
        return self._conditionals

    @property
    def chain_probabilities(self) -> dict[str, np.ndarray]:
        """For each marginalized variable, per chain, ``P(D = d_k | rest)`` averaged over the
        chain's draws: ``(n_chains, *shape, K)`` (``(n_chains, K ** n)`` for one summed out
        jointly).  Computed on first access, batch by batch (never every draw's conditionals at
        once), from the latents' draws; empty when ``var_names`` left a latent out."""
        if self._chain_probabilities is None:
            fn = self._averaged_conditionals_fn
            self._chain_probabilities = fn(self.draws) if fn is not None else {}
        return self._chain_probabilities

    @property
    def posterior_probabilities(self) -> dict[str, np.ndarray]:
        """For each marginalized variable, its posterior probabilities ``P(D = d_k | data)``,
        Rao-Blackwellized: the conditionals ``P(D = d_k | rest)`` averaged over every kept draw,
        ``(*shape, K)``.  This is how the per-observation variables (`Sampler.per_observation`,
        e.g. mixture memberships) are given by default; their Monte Carlo error is in
        `posterior_probabilities_se`."""
        return {name: p.mean(axis=0) for name, p in self.chain_probabilities.items()}

    @property
    def posterior_probabilities_se(self) -> dict[str, np.ndarray]:
        """Monte Carlo standard error of `posterior_probabilities`: the spread of the chains'
        averages over ``sqrt(n_chains)`` (the chains are independent; NaN with one chain)."""
        out = {}
        for name, p in self.chain_probabilities.items():
            n = p.shape[0]
            out[name] = (
                p.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(p.shape[1:], np.nan)
            )
        return out

    @property
    def log_likelihood(self) -> dict[str, np.ndarray]:
        """Pointwise marginal log-likelihood of each observed variable at every kept draw.

        ``name -> array`` of shape ``(n_chains, n_samples, *shape)``, or ``(n_chains, n_samples)``
        where the observed array is one term (see `Sampler.log_likelihood`).  Computed on first
        access and then kept.
        """
        if self._log_likelihood is None:
            self._log_likelihood = (
                self._log_likelihood_fn(self.draws) if self._log_likelihood_fn is not None else {}
            )
        return self._log_likelihood

    def to_inference_data(
        self,
        log_likelihood: bool = True,
        *,
        prior: Mapping[str, np.ndarray] | None = None,
        posterior_predictive: Mapping[str, np.ndarray] | None = None,
        dims: Mapping[str, Sequence[str]] | None = None,
        coords: Mapping[str, Sequence] | None = None,
    ):
        """The draws as an ArviZ ``InferenceData``.

        Its groups: posterior (latent, marginalized and derived variables), sample_stats,
        observed_data, log_likelihood (unless ``log_likelihood`` is false or nothing is
        observed), and the prior, prior_predictive and posterior_predictive groups when their
        draws are given.

        Parameters
        ----------
        log_likelihood
            Whether to add the log_likelihood group, which makes ``az.loo`` and ``az.waic`` work
            (with ``var_name`` when several variables are observed); its terms are
            `log_likelihood`'s.
        prior
            Draws of `Sampler.prior_predictive`: the observed variables' go to the
            prior_predictive group, the others to the prior group, each as one chain.
        posterior_predictive
            Draws of `Sampler.posterior_predictive`, ``(n_chains, n_samples, *shape)`` each.
        dims
            ``name -> dimension names`` of the variable's axes after the chain and draw axes,
            as ArviZ takes them: one entry names a variable's axes in every group, so that an
            observed variable's data, log-likelihood and predictive draws share them (a
            log-likelihood that is one term for the whole array has none).  Axes not named get
            ArviZ's ``<name>_dim_<k>``.
        coords
            ``dimension name -> coordinate values``, as ArviZ takes them.
        """
        import arviz as az

        posterior = {k: v for k, v in self.draws.items()}
        n_samples = self.logdensity.shape[1]
        sample_stats = {
            "lp": self.logdensity,
            "acceptance_rate": np.repeat(self.acceptance_rate[:, None], n_samples, axis=1),
        }
        prior_groups = _prior_groups(prior, self.observed) if prior is not None else {}
        if dims or coords:
            shapes = {name: np.shape(value)[2:] for name, value in self.draws.items()}
            shapes.update({name: np.shape(value) for name, value in self.observed.items()})
            for group in (posterior_predictive or {}, *(g or {} for g in prior_groups.values())):
                shapes.update({name: np.shape(value)[2:] for name, value in group.items()})
            _check_dims(dims or {}, coords or {}, shapes)
        return az.from_dict(
            posterior=posterior,
            sample_stats=sample_stats,
            observed_data=self.observed or None,
            log_likelihood=(self.log_likelihood or None) if log_likelihood else None,
            posterior_predictive=dict(posterior_predictive) if posterior_predictive else None,
            dims=dict(dims) if dims else None,
            coords=dict(coords) if coords else None,
            **prior_groups,
        )

    def __repr__(self) -> str:
        n_chains, n_samples = self.logdensity.shape[:2]
        return _compact_repr(
            "SampleResult",
            {name: draws.shape[2:] for name, draws in self.draws.items()},
            n_chains,
            n_samples,
            self.loop,
            self.acceptance_rate,
        )

    def summary(self, **kwargs):
        """ArviZ's summary table (means, intervals, R-hat, ESS) of the draws."""
        import arviz as az

        return az.summary(self.to_inference_data(), **kwargs)


@dataclass
class SampleSummary:
    """Running moments from `Sampler.sample` with ``summary_only=True``; no draw is stored.

    Attributes
    ----------
    mean, variance
        ``name -> array`` of shape ``(n_chains, *shape)``: per chain, the mean and the (population,
        ``ddof=0``) variance over the kept draws of every latent and marginalized variable (or of
        those named in ``var_names``).
    n_samples
        Kept draws per chain.
    acceptance_rate, step_size, scale, loop, kernel, warmup_steps, n_divergent
        As in `SampleResult`.
    truncation_tail
        As in `SampleResult`, over the chains' last states (no draw is kept).
    """

    mean: dict[str, np.ndarray]
    variance: dict[str, np.ndarray]
    n_samples: int
    acceptance_rate: np.ndarray
    step_size: float
    scale: np.ndarray
    loop: str = "scan"
    warmup_steps: int | None = None
    kernel: str = "rmh"
    n_divergent: np.ndarray | None = None
    diagnostics: Diagnostics | None = field(default=None, repr=False)
    truncation_tail: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        return _compact_repr(
            "SampleSummary",
            {name: mean.shape[1:] for name, mean in self.mean.items()},
            len(self.acceptance_rate),
            self.n_samples,
            self.loop,
            self.acceptance_rate,
        )

    def pooled(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``name -> (mean, variance)`` over all chains' draws together."""
        out = {}
        for name, mean in self.mean.items():
            pooled_mean = mean.mean(axis=0)
            within = self.variance[name].mean(axis=0)
            between = ((mean - pooled_mean) ** 2).mean(axis=0)
            out[name] = (pooled_mean, within + between)
        return out


def _check_dims(
    dims: Mapping[str, Sequence[str]], coords: Mapping[str, Sequence], shapes: Mapping[str, tuple]
) -> None:
    """Refuse ``dims`` and ``coords`` that ArviZ would fail on (with a bare ``KeyError`` or a
    message about xarray) or apply to nothing, naming the variable and the axis.

    Raises
    ------
    ValuesError
        Naming the variable: not in the result, more names than axes, or a dimension whose
        coordinates (or whose length in another variable) differ from the axis's length.
    """
    from aemix.errors import ValuesError

    lengths: dict[str, tuple[int, str]] = {}
    for name, names in dims.items():
        if name not in shapes:
            raise ValuesError(
                name,
                f"dims name a variable this result does not have (its variables: {sorted(shapes)})",
            )
        if isinstance(names, str) or not all(isinstance(d, str) for d in names):
            raise ValuesError(name, f"dims must be a list of dimension names, got {names!r}")
        shape = shapes[name]
        if len(names) > len(shape):
            raise ValuesError(
                name,
                f"dims name {len(names)} axes {list(names)}, the variable has {len(shape)} "
                f"(shape {tuple(shape)}) after the chain and draw axes",
            )
        for axis, (dim, length) in enumerate(zip(names, shape)):
            if dim in coords and len(coords[dim]) != length:
                raise ValuesError(
                    name,
                    f"coords[{dim!r}] has {len(coords[dim])} values, axis {axis} of the variable "
                    f"({dim!r}) has length {length}",
                )
            seen = lengths.setdefault(dim, (length, name))
            if seen[0] != length:
                raise ValuesError(
                    name,
                    f"dimension {dim!r} has length {length} on axis {axis} of this variable and "
                    f"{seen[0]} in {seen[1]!r}: one dimension name, one length",
                )


def _prior_groups(prior: Mapping[str, np.ndarray], observed: Mapping[str, np.ndarray]):
    """ArviZ's prior and prior_predictive groups from `Sampler.prior_predictive`'s draws: the
    observed variables' draws are the prior predictive, each group holds one chain."""
    groups: dict[str, dict[str, np.ndarray]] = {"prior": {}, "prior_predictive": {}}
    for name, value in prior.items():
        group = "prior_predictive" if name in observed else "prior"
        groups[group][name] = np.asarray(value)[None]
    return {group: draws or None for group, draws in groups.items()}


def _compact_repr(kind, shapes, n_chains, n_samples, loop, acceptance_rate) -> str:
    """``kind(variables={name: shape}, n_chains=.., n_samples=.., loop=.., acceptance_rate=..)``:
    what a run holds, without its arrays."""
    variables = ", ".join(
        f"{name}: {tuple(int(d) for d in shape)}" for name, shape in shapes.items()
    )
    rate = float(np.mean(acceptance_rate)) if np.size(acceptance_rate) else float("nan")
    return (
        f"{kind}(variables={{{variables}}}, n_chains={int(n_chains)}, "
        f"n_samples={int(n_samples)}, loop={loop!r}, acceptance_rate={rate:.3f})"
    )


class Moments:
    """Per-chain running mean and sum of squared deviations, merged block by block (Chan et al.)."""

    def __init__(self):
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def merge(self, count: int, mean: np.ndarray, m2: np.ndarray) -> None:
        if count == 0:
            return
        if self.mean is None:
            self.count, self.mean, self.m2 = count, mean.copy(), m2.copy()
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * count / total)
        self.count = total

    def add_draws(self, draws: np.ndarray) -> None:
        """Merge ``draws`` of shape ``(n_chains, n, ...)``."""
        mean = draws.mean(axis=1)
        self.merge(draws.shape[1], mean, ((draws - mean[:, None]) ** 2).sum(axis=1))
