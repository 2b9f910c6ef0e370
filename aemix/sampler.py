"""`build_sampler`: from a model graph to a compiled, vectorized RMH sampler.

The stages run in pipeline order: intake (outputs, observations, names) -> marginalize -> log-density
(aeppl) -> single-chain RMH step -> batch over chains -> compile -> sample -> recover the discrete
variables from their conditionals.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import os
import sys
import threading
import warnings
from collections.abc import Hashable, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import aesara
import aesara.tensor as at
import numpy as np
from aeppl.logprob import ParameterValueError
from aesara.graph.basic import Constant, Variable, ancestors, clone_replace
from aesara.link.c.exceptions import CompileError
from aesara.tensor.random.op import RandomVariable
from aesara.tensor.random.var import RandomGeneratorSharedVariable
from tqdm.auto import tqdm

from aemix import memory
from aemix.adaptation import (
    WarmUp,
    as_factor,
    identity_scale,
    proposal_form,
    scale_from_covariance,
    scale_length,
    split_low_rank,
    warm_up,
)
from aemix.compilation import compile_mode, python_mode
from aemix.compilation import function as compile_function
from aemix.derived import Derived, derived_graphs
from aemix.diagnostics import (
    LOG_DENSITY,
    ConvergenceWarning,
    Diagnostics,
    ModelWarning,
    diagnose_draws,
    diagnose_moments,
    user_stacklevel,
    warn_if_truncated,
    warn_if_untrustworthy,
)
from aemix.errors import (
    ConfigurationError,
    FusedLoopError,
    GradientError,
    InitializationError,
    ModelError,
    ValuesError,
    describe_operation,
)
from aemix.fused import FusedProgram, compile_loop, composite
from aemix.generated import component_roots, split_generated
from aemix.gradient import logdensity_and_gradient
from aemix.intake import (
    as_variable_list,
    assign_names,
    check_constants,
    check_observed,
    check_parameters,
    check_unique_names,
    guarded_variables,
    random_variables,
    shared_data,
    support_of,
    value_array,
)
from aemix.kernels import rmh
from aemix.kernels.choice import Kernel, choose_kernel, kernel_step
from aemix.logdensity import (
    LogDensity,
    OrderedTransform,
    _tolerant_simplex_checks,
    build_logdensity,
    checks_as_values,
    default_transform,
)
from aemix.loops import unroll_scans
from aemix.marginalize import (
    DEFAULT_SUPPORT_BUDGET,
    DEFAULT_TAIL_TOLERANCE,
    MarginalModel,
    concrete_shape,
    is_discrete,
    marginalize,
    read_bernoulli_conditions,
)
from aemix.ops import (
    ChangePointRV,
    FiniteEnumerationRV,
    MarginalSwitchRV,
    MarkovChainRV,
    constant_branch_value,
    point_mass_beside_density,
)
from aemix.recovery import (
    Recovery,
    draw_graphs,
    inverse_cdf,
    map_recoveries,
    recovery_graphs,
)
from aemix.relations import RuleRegistry, registry
from aemix.results import SampleResult, SampleSummary
from aemix.runners import (
    LIVE_INTERMEDIATES,
    RECORD_MEMORY_BUDGET,
    ExactRunner,
    FusedRunner,
    ScanRunner,
    StepLoop,
    run_sampling,
    shape_of,
    stored_variables,
)
from aemix.scalarize import DEFAULT_MAX_OPERATIONS, LoweringError, lower_to_scalars
from aemix.tempering import TemperedStart, tempered_start
from aemix.truncation import Truncation, log_tail_share
from aemix.vectorize import vectorize_draws, vectorize_graph

__all__ = ["build_sampler", "Sampler", "SampleResult", "SampleSummary"]

_MAX_INIT_TRIES = 100
# Chains run by default (see `Sampler.sample`).
DEFAULT_CHAINS = 32
# Scalar operations of a log-density and its gradient, per operation of the log-density alone
# (the seed's mixture: 58 for the random walk's step, 303 for MALA's, which evaluates the
# density and its gradient twice: about 3 per evaluation); an estimate for refusing a gradient
# step too large for the fused loop before lowering it.
GRADIENT_COST = 3
# The largest thinning ``thin="auto"`` chooses.
MAX_AUTO_THIN = 25


def _parameter_checks_in_model_terms(method):
    """``method`` with aeppl's ``ParameterValueError`` at a point the chains reached re-raised as a
    `ModelError`: the starting points passed the checks, so a parameter the random walk can move
    out of its domain is a fault of the model (e.g. a normal prior on a scale)."""

    @functools.wraps(method)
    def checked(self, *args, **kwargs):
        with self._parameter_checks(ModelError, "at a point the chains reached"):
            return method(self, *args, **kwargs)

    return checked


def _serialized(method):
    """The sampler's ``method``, run holding the sampler's lock (see `Sampler`)."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            self._check_shared_data()
            return method(self, *args, **kwargs)

    return locked


class Sampler:
    """A compiled RMH sampler for the marginal model of a graph; made by `build_sampler`.

    Calls on one Sampler are serialized: its compiled functions and the generators of its prior
    draws are shared state, so `sample`, `logdensity`, `initial_positions`, `explain` and the
    results' lazy `SampleResult.conditional_probabilities` hold a per-sampler lock (another
    thread's call waits; the fused loop itself runs without the GIL).  For parallelism, use one
    sampler per thread.

    Attributes
    ----------
    latent
        Names of the variables the kernel moves (in the order of the flat position).
    marginalized
        Names of the discrete variables summed out of the density.
    observed
        Names of the observed variables.
    derived
        Names of the derived quantities: outputs that are deterministic functions of the model's
        variables, computed from each draw (`aemix.derived`), never sampled.
    generated
        Names of the generated quantities: random variables no observation depends on (e.g. a
        count drawn for prediction) and the outputs computed from them, drawn from the model's
        graph after each kept draw (`aemix.generated`), never sampled.
    """

    def __init__(
        self,
        model: MarginalModel,
        density: LogDensity,
        latent_rvs: list[Variable],
        latent_originals: list[Variable],
        observed: dict[Variable, Variable],
        observed_data: dict[str, np.ndarray],
        mode=None,
        derived: Sequence[Derived] = (),
        transforms: Mapping[Variable, Any] | None = None,
    ):
        self.mode = mode
        # (what the functions are compiled with: `mode`, constants folded in Python)
        self._compile_mode = compile_mode(mode)
        # (what the functions evaluated a few times on a batch of chains are compiled with: the
        # prior's starting points, a lowering's check, predictive draws; the tempered start's
        # and those run over every draw, the record and the conditionals, with `_compile_mode`)
        self._numpy_mode = python_mode(mode)
        self._model = model
        self._density = density
        self._latent_rvs = latent_rvs
        self._latent_originals = latent_originals
        self._observed = observed
        self._observed_data = observed_data
        self.latent = tuple(item.name for item in density.layout)
        self.marginalized = tuple(m.discrete.name for m in model.marginalizations)
        self.observed = tuple(observed_data)
        self._derived = tuple(derived)
        self.derived = tuple(d.name for d in self._derived)
        self._transforms = {
            rv: (transforms or {}).get(rv, default_transform(rv)) for rv in latent_rvs
        }
        self._ordered = tuple(
            rv.name for rv in latent_rvs if isinstance(self._transforms[rv], OrderedTransform)
        )
        self._compiled: dict[str, Any] = {}
        self._shared_data: dict[Variable, np.ndarray] = {}
        # (set by `build_sampler`: the generated quantities, `aemix.generated`)
        self.generated: tuple[str, ...] = ()
        self._generated: list[Variable] = []
        self._observed_constants: dict[Variable, Variable] = {}
        # Reentrant: `sample` calls `initial_positions` (and so does the fused loop's self-check).
        self._lock = threading.RLock()

    def _check_shared_data(self) -> None:
        """Refuse to run once a shared variable of the model has changed since the build (its
        value is compiled into the sampler as a constant)."""
        for shared, value in self._shared_data.items():
            now = shared.get_value(borrow=True)
            if np.shape(now) != value.shape or not np.array_equal(now, value, equal_nan=True):
                raise ModelError(
                    shared.name or str(shared),
                    "this shared variable's value changed after build_sampler; the sampler "
                    "holds the value it had then (compiled in as a constant): build the sampler "
                    "again for the new value",
                )

    @property
    def _every(self) -> tuple[str, ...]:
        """Every name `sample` can keep: latents, marginalized variables, derived quantities."""
        return self.latent + self.marginalized + self.derived

    @property
    def dim(self) -> int:
        """Length of the flat unconstrained position of one chain."""
        return self._density.dim

    @property
    def proposal_form(self) -> str:
        """The form of the random walk's proposal covariance, adapted across chains in warm-up
        (`aemix.adaptation.proposal_form`): ``"diagonal"`` for one coordinate, ``"dense"`` (a
        Cholesky factor, ``dim ** 2`` products per step) up to 20 coordinates, ``"low-rank"``
        (per-coordinate scales corrected along a few directions) above."""
        return proposal_form(self.dim)

    @property
    def dense(self) -> bool:
        """Whether the proposal follows a full covariance (see `proposal_form`)."""
        return self.proposal_form == "dense"

    def _kernel_parameters(self, parameters: Variable) -> tuple[Variable, Variable]:
        """The kernel's ``scale`` and the inverse temperature from the loops' flat parameter
        input: the proposal's flat scale (`aemix.adaptation.scale_length`: a row-major ``L`` when
        dense), then ``beta`` (1 when sampling, below 1 in the tempered start's moves)."""
        scale, beta = parameters[:-1], parameters[-1]
        form = self.proposal_form
        if form == "dense":
            scale = scale.reshape((self.dim, self.dim))
        elif form == "low-rank":
            scale = rmh.LowRankScale(*split_low_rank(scale, self.dim))
        return scale, beta

    def _tempered_step(
        self,
        lp,
        eps,
        exp_draw,
        step_size,
        parameters,
        kernel: Kernel | None = None,
        inner_loop: bool = False,
    ):
        """One chain's step of ``kernel`` (default: the random walk) at the tempered density
        ``logprior + beta * loglikelihood`` (`LogDensity.tempered`), with the proposal scale and
        ``beta`` read from ``parameters``: ``(state, info)``, ``state`` with the fields
        ``position`` and ``logdensity``."""
        density = self._density
        position = density.position
        scale, beta = self._kernel_parameters(parameters)
        # (a point where a parameter check fails is outside the model: rejected, not raised)
        (tempered,), _ = checks_as_values([density.tempered(beta)], -np.inf)

        def logdensity_fn(x):
            return clone_replace(tempered, {position: x})

        kernel = kernel or Kernel("rmh")
        if kernel.name == "rmh":
            return rmh.step(
                rmh.RWNoise(eps, exp_draw),
                rmh.RWState(position, lp),
                logdensity_fn,
                step_size,
                scale,
            )
        tempered, gradient = logdensity_and_gradient(tempered, position)

        def with_gradient(x):
            return tuple(clone_replace([tempered, gradient], {position: x}))

        new_position, new_logdensity, info = kernel_step(
            kernel,
            eps,
            exp_draw,
            position,
            lp,
            None,
            with_gradient,
            gradient,
            step_size,
            scale,
            density.dim,
            inner_loop=inner_loop,
        )
        return rmh.RWState(new_position, new_logdensity), info

    # -- log-density ---------------------------------------------------------------------------

    @_serialized
    def logdensity(self, values: Mapping[str, Any]) -> float:
        """Log-density of the marginal model at ``values``, in the variables' own space.

        The marginalized variables are summed out and the observed ones fixed at their data; no
        Jacobian term is included.  A value outside its variable's support (a negative value of a
        positive variable, a Dirichlet value off the simplex) gives ``-inf``, the density there;
        a value that is no number at all is an error.

        Parameters
        ----------
        values
            Maps every latent name (see `latent`) to an array of that variable's shape.

        Raises
        ------
        ValuesError
            If a latent is missing, a name is unknown, an array has the wrong shape, or a value is
            None, complex, non-numeric or not finite; or if a parameter check of the density fails
            at ``values`` (a parameter that depends on latents, e.g. a negative scale).
        """
        args = self._check_values(values)
        for support, arg in zip(self._latent_supports(), args):
            if support is not None and support.violation(arg) is not None:
                return -np.inf
        for name, arg in zip(self.latent, args):
            if name in self._ordered and not np.all(np.diff(arg, axis=-1) > 0):
                return -np.inf  # outside the ordered region
        fn = self._compiled.get("logdensity")
        if fn is None:
            # (evaluated at a point or a few: run in Python, with nothing to compile)
            fn = compile_function(
                self._density.value_vars,
                self._density.constrained_logdensity,
                on_unused_input="ignore",
                mode=python_mode(self.mode),
            )
            self._compiled["logdensity"] = fn
        with self._parameter_checks(ValuesError, "at these values"):
            # (NumPy warns of a log of 0 in a branch a switch leaves out; the C code is silent)
            with np.errstate(all="ignore"):
                value = float(fn(*args))
        truncations = self._truncations()
        if truncations and np.isfinite(value):
            # A count summed over a range its conditional mass leaves at these values: the
            # density returned is off, as the chains' would be (`sample` warns of those).
            with np.errstate(all="ignore"):
                position = np.asarray(self._unconstrain_function()(*args), dtype=float)[None]
            warn_if_truncated(
                self._truncation_tails(None, position), truncations, where="at these values"
            )
        return value

    def _check_values(self, values: Mapping[str, Any]) -> list[np.ndarray]:
        if not isinstance(values, Mapping):
            raise ValuesError(
                "values", f"expected a mapping from names to arrays, got {type(values).__name__}"
            )
        unknown = sorted(set(values) - set(self.latent))
        if unknown:
            raise ValuesError(
                unknown[0], f"not a latent variable of this model (latent: {self.latent})"
            )
        args = []
        for item, vv in zip(self._density.layout, self._density.value_vars):
            if item.name not in values:
                raise ValuesError(item.name, "no value given")
            array = value_array(item.name, values[item.name], vv.type.dtype)
            if array.shape != item.shape:
                raise ValuesError(
                    item.name, f"value has shape {array.shape}, expected {item.shape}"
                )
            args.append(array)
        return args

    def _latent_supports(self):
        """Each latent's support (`aemix.intake.support_of`), or ``None``; computed once."""
        supports = self._compiled.get("supports")
        if supports is None:
            supports = [support_of(rv) for rv in self._latent_rvs]
            self._compiled["supports"] = supports
        return supports

    @contextmanager
    def _parameter_checks(self, error: type[Exception], where: str):
        """Re-raise aeppl's ``ParameterValueError`` as ``error`` in the model's terms.

        Constant parameters were checked by `build_sampler`; this one depends on latents, so the
        check can only fail at given values.  aeppl's message (``"sigma > 0"``) names the check,
        not the variable: the variables whose parameters are not constant are named instead, and
        Aesara's apply-node dump is left out.
        """
        try:
            yield
        except ParameterValueError as exc:
            check = str(exc).split("\n", 1)[0]
            names = ", ".join(guarded_variables(random_variables(self._model.fgraph.outputs)))
            reason = (
                f"the density's parameter check {check!r} failed {where}; it guards a parameter "
                f"that depends on other variables (of: {names or 'a model variable'})"
            )
            if issubclass(error, (ValuesError, ModelError)):
                raise error(names or "values", reason) from None
            raise error(reason) from None

    # -- compiled pieces -----------------------------------------------------------------------

    def _step_function(self, kernel: Kernel | None = None):
        """Blocks of steps of ``kernel`` (default: the random walk) for many chains: the step
        vectorized over the chains and compiled, run once per step (`StepLoop`; built once per
        sampler and kernel)."""
        kernel = kernel or Kernel("rmh")
        key = "block" if kernel.name == "rmh" else ("block", kernel)
        fn = self._compiled.get(key)
        if fn is not None:
            return fn
        density = self._density
        position = density.position
        lp = at.scalar("logdensity", dtype=density.logdensity.dtype)
        eps = at.vector("normal", dtype=position.dtype)
        exp_draw = at.scalar("exponential", dtype=position.dtype)
        step_size = at.scalar("step_size", dtype=position.dtype)
        scale = at.vector("parameters", dtype=position.dtype)
        # (HMC's leapfrog steps as an inner loop: unrolled, they multiply the compile time)
        state, info = self._tempered_step(
            lp, eps, exp_draw, step_size, scale, kernel, inner_loop=True
        )
        single = [state.position, state.logdensity, info.acceptance_probability, info.is_accepted]

        X0 = at.matrix("positions", dtype=position.dtype)
        LP0 = at.vector("logdensities", dtype=lp.dtype)
        EPS = at.matrix("normal", dtype=position.dtype)
        EXP = at.vector("exponential", dtype=position.dtype)
        step = vectorize_graph(single, {position: X0, lp: LP0, eps: EPS, exp_draw: EXP})
        fn = StepLoop(
            compile_function(
                [X0, LP0, EPS, EXP, step_size, scale],
                [*step[:3], step[3].astype("int8")],
                # (as a scan's body is compiled by default, whatever the mode: under
                # FAST_COMPILE's Python elementwise loops a step takes seconds)
                mode=compile_mode(None),
            )
        )
        self._compiled[key] = fn
        return fn

    def _tempered_start(
        self, n_particles: int, rng: np.random.Generator, runner: FusedRunner | ScanRunner
    ) -> TemperedStart:
        """Particles at the posterior by adaptive tempering from prior draws (`aemix.tempering`).

        The particles move in ``runner``, a runner of the loop that samples afterwards: its
        compiled step takes the inverse temperature, so the start compiles nothing of its own.
        """
        density = self._density
        batch = self._record_rows(self.latent + self.marginalized)
        noise_seed, record_seed = rng.bit_generator.seed_seq.spawn(2)
        runner.seed(
            np.random.default_rng(noise_seed), np.random.default_rng(record_seed), n_particles
        )

        def loglik_and_logdensity(particles):
            outputs = [density.loglikelihood, density.logdensity]
            loglik, logdensity = self._in_batches(
                "loglikelihood_batch", outputs, particles, self._compile_mode
            )
            return loglik, logdensity

        def move(particles, beta, factor, step_size, n_steps):
            loglik, logdensity = loglik_and_logdensity(particles)
            tempered = logdensity - (1.0 - beta) * loglik
            scale = scale_from_covariance(factor @ factor.T, len(particles))
            # The scan loop holds each step's intermediates for all its chains: in batches.
            per_batch = len(particles) if runner.name == "fused" else batch
            moved, rates = [], []
            for a in range(0, len(particles), per_batch):
                block = runner.run(
                    particles[a : a + per_batch],
                    tempered[a : a + per_batch],
                    step_size,
                    scale,
                    n_steps,
                    1,
                    "warmup",
                    beta=beta,
                )
                moved.append(block.positions)
                rates.append(block.acceptance_sum / n_steps)
            return np.concatenate(moved), np.concatenate(rates)

        with np.errstate(all="ignore"):
            return tempered_start(
                self.initial_positions(n_particles, rng),
                loglik_and_logdensity,
                move,
                rng,
                exact_prior=self._density.separable_likelihood and not self._ordered,
            )

    def _batched_function(self, name: Hashable, outputs: list[Variable], mode=None):
        """Compile ``outputs`` (graphs in one chain's position) for a batch of positions, with
        ``mode`` (default: on NumPy, `python_mode`, for a function evaluated a few times; the
        tempered start's, one call per stage on every particle, passes the C one)."""
        mode = self._numpy_mode if mode is None else mode
        fn = self._compiled.get(name)
        if fn is None:
            positions = at.matrix("positions", dtype=self._density.position.dtype)
            # (a point where a parameter check fails has density zero, as in the loops)
            outputs, _ = checks_as_values(outputs, -np.inf)
            batched = vectorize_graph(outputs, {self._density.position: positions})
            fn = compile_function([positions], batched, on_unused_input="ignore", mode=mode)
            self._compiled[name] = fn
        return fn

    def _logdensity_batch(self, positions: np.ndarray) -> np.ndarray:
        density = self._density
        if not self.observed or density.position not in ancestors([density.loglikelihood]):
            (logdensity,) = self._in_batches("logdensity_batch", [density.logdensity], positions)
            return logdensity
        # The tempered start's function: the log-likelihood is a term of the log-density (so it
        # costs next to nothing), and the batched density is compiled once, not twice.
        outputs = [density.loglikelihood, density.logdensity]
        return self._in_batches("loglikelihood_batch", outputs, positions, self._compile_mode)[1]

    def _in_batches(
        self, name: Hashable, outputs: list[Variable], positions: np.ndarray, mode=None
    ):
        """``outputs`` at each of ``positions``, computed in batches of positions whose
        intermediates fit the record's memory budget (summing out D takes the K values of the
        record's conditionals per position)."""
        fn = self._batched_function(name, outputs, mode)
        per_batch = self._record_rows(self.latent + self.marginalized)
        if len(positions) <= per_batch:
            return [np.asarray(out) for out in fn(positions)]
        parts = [fn(positions[a : a + per_batch]) for a in range(0, len(positions), per_batch)]
        return [np.concatenate(pieces) for pieces in zip(*parts)]

    def _unconstrain_function(self):
        """Compiled map from the latents' values (own space) to one flat unconstrained position."""
        fn = self._compiled.get("unconstrain")
        if fn is None:
            value_vars = self._density.value_vars
            parents = dict(self._observed)
            parents.update(zip(self._latent_rvs, value_vars))
            pieces = []
            for rv, vv in zip(self._latent_rvs, value_vars):
                transform = self._transforms[rv]
                piece = vv
                if transform is not None:
                    piece = clone_replace(transform.forward(vv, *rv.owner.inputs), parents)
                pieces.append(at.flatten(piece))
            flat = at.concatenate(pieces) if len(pieces) > 1 else pieces[0]
            fn = compile_function(
                value_vars, flat, on_unused_input="ignore", mode=python_mode(self.mode)
            )
            self._compiled["unconstrain"] = fn
        return fn

    def _prior_function(self):
        """Forward sampler of the latents for ``n`` chains at once, as flat unconstrained positions.

        Returns the compiled function of ``n`` and the shared generators it draws from.
        """
        fn = self._compiled.get("prior")
        if fn is not None:
            return fn
        outs = []
        for rv, original in zip(self._latent_rvs, self._latent_originals):
            transform = self._transforms[rv]
            if isinstance(transform, OrderedTransform):
                # A prior draw, sorted: a point of the ordered region (exactly the restricted
                # prior's draw when the prior is exchangeable).
                original = at.sort(original, axis=-1)
            value = (
                original
                if transform is None
                else transform.forward(original, *original.owner.inputs)
            )
            outs.append(at.flatten(value))
        flat = at.concatenate(outs) if len(outs) > 1 else outs[0]
        # Our own generators, so that sampling is reproducible and the user's streams are untouched.
        rngs = [v for v in ancestors([flat]) if isinstance(v, RandomGeneratorSharedVariable)]
        own = {r: aesara.shared(np.random.default_rng(0)) for r in rngs}
        flat = clone_replace(flat, own)
        n_chains = at.lscalar("n_chains")
        (batched,) = vectorize_draws([flat], n_chains)
        updates = {}
        for node in aesara.graph.basic.io_toposort([n_chains], [batched]):
            if isinstance(node.op, RandomVariable) and node.inputs[0] in own.values():
                updates[node.inputs[0]] = node.outputs[0]
        # (run once per sample(), on a draw per chain: in Python, with nothing to compile)
        fn = compile_function([n_chains], batched, updates=updates, mode=python_mode(self.mode))
        self._compiled["prior"] = (fn, list(own.values()))
        return self._compiled["prior"]

    # -- sampling ------------------------------------------------------------------------------

    @_serialized
    def initial_positions(
        self, n_chains: int, rng: np.random.Generator, initial_values=None
    ) -> np.ndarray:
        """Flat unconstrained starting points: prior draws (re-drawn where the density is not finite)."""
        if initial_values is not None:
            return self._positions_from_values(initial_values, n_chains)
        fn, rngs = self._prior_function()
        for shared_rng in rngs:
            shared_rng.set_value(np.random.default_rng(rng.integers(2**63)), borrow=True)
        with np.errstate(all="ignore"):
            positions = np.array(fn(n_chains), dtype=float).reshape(n_chains, self.dim)
        for attempt in range(_MAX_INIT_TRIES):
            with np.errstate(all="ignore"):  # (a draw of zero density is redrawn, not an error)
                bad = ~np.isfinite(self._logdensity_batch(positions))
            if not bad.any():
                return positions
            if attempt == 0:
                self._warn_if_the_prior_fails_checks(positions[bad], n_chains)
            with np.errstate(all="ignore"):
                redrawn = fn(int(bad.sum()))
            positions[bad] = np.asarray(redrawn, dtype=float).reshape(-1, self.dim)
        raise InitializationError(
            f"no prior draw with a finite log-density was found for {int(bad.sum())} of {n_chains} "
            f"chains after {_MAX_INIT_TRIES} tries; "
            + (self._impossible_observations(positions[bad]) or "pass initial_values")
        )

    def _impossible_observations(self, positions: np.ndarray) -> str | None:
        """The observations of zero probability at every one of ``positions`` (prior draws whose
        density is not finite), said in the model's terms; None when there is none to name."""
        if not self.observed:
            return None
        try:
            draws = self._constrain_and_recover(
                positions[None, :64], np.random.default_rng(0), self.latent
            )
            with np.errstate(all="ignore"):
                terms = self.log_likelihood(draws)
        except Exception:  # (a diagnosis of a failure: never a failure of its own)
            return None
        found = []
        for name, values in terms.items():
            impossible = np.all(values == -np.inf, axis=(0, 1))
            if not np.any(impossible):
                continue
            data = self._observed_data[name]
            if np.ndim(impossible) and np.shape(impossible) == np.shape(data):
                where = np.argwhere(impossible)[:3]
                shown = ", ".join(
                    f"{name}[{', '.join(map(str, i))}] = {data[tuple(i)]}" for i in where
                )
                found.append(shown + (" ..." if impossible.sum() > 3 else ""))
            else:
                found.append(f"{name} (its data)")
        if not found:
            return None
        return (
            f"the data have probability zero at every prior draw tried: {'; '.join(found)}. "
            "Check that the data are in the support of their variables (e.g. no negative count) "
            "and that the prior reaches parameters that give them probability"
        )

    def _warn_if_the_prior_fails_checks(self, positions: np.ndarray, n_draws: int) -> None:
        """A `ModelWarning` (once per sampler) when a parameter check of the density fails at
        some of ``positions`` (the prior draws, of ``n_draws``, whose density is not finite): the
        model gives those points no density, so the posterior is that of the prior restricted to
        where the checks hold."""
        if self._compiled.get("warned_checks"):
            return
        density = self._density
        _, holds = checks_as_values([density.logdensity], -np.inf)
        (ok,) = self._in_batches("checks_hold", [at.cast(holds, "int8")], positions)
        if np.all(ok):
            return
        self._compiled["warned_checks"] = True
        checks = sorted(
            {
                node.op.msg
                for node in aesara.graph.basic.io_toposort([density.position], [density.logdensity])
                if isinstance(node.op, aesara.raise_op.CheckAndRaise)
            }
        )
        names = ", ".join(guarded_variables(random_variables(self._model.fgraph.outputs)))
        warnings.warn(
            f"{int(np.size(ok) - np.sum(ok))} of {n_draws} prior draws fail a parameter "
            f"check of the density ({'; '.join(checks)}; of: {names or 'a model variable'}): the "
            "prior puts mass where the model is not defined (e.g. a normal prior on a scale). "
            "Those points get density zero, so the posterior is that of the prior restricted to "
            "where the checks hold; give the parameter a prior on its domain (halfnormal, "
            "gamma, ordered cutpoints) to say so",
            ModelWarning,
            stacklevel=user_stacklevel(),
        )

    def _positions_from_values(self, initial_values, n_chains: int) -> np.ndarray:
        if not isinstance(initial_values, Mapping):
            raise ValuesError("initial_values", "expected a mapping from latent names to arrays")
        unknown = sorted(set(initial_values) - set(self.latent))
        if unknown:
            raise ValuesError(unknown[0], "not a latent variable of this model")
        values = []
        for item, vv, support in zip(
            self._density.layout, self._density.value_vars, self._latent_supports()
        ):
            if item.name not in initial_values:
                raise ValuesError(item.name, "no initial value given")
            value = value_array(item.name, initial_values[item.name], vv.type.dtype)
            if value.shape == item.shape:
                value = np.broadcast_to(value, (n_chains, *item.shape))
            if value.shape != (n_chains, *item.shape):
                raise ValuesError(
                    item.name,
                    f"initial value has shape {value.shape}, "
                    f"expected {item.shape} or {(n_chains, *item.shape)}",
                )
            # Checked in the variable's own space: the transform to unconstrained space would
            # silently project some values (a Dirichlet value off the simplex) onto the support.
            reason = support.violation(value) if support is not None else None
            if reason is not None:
                raise ValuesError(
                    item.name,
                    f"initial value is outside the variable's support: {reason} (indices count "
                    "the chain axis first)",
                )
            values.append(value)
        to_unconstrained = self._unconstrain_function()
        with np.errstate(all="ignore"):
            positions = np.stack(
                [to_unconstrained(*[v[c] for v in values]) for c in range(n_chains)]
            )
        for item in self._density.layout:
            piece = positions[:, item.start : item.stop]
            if not np.all(np.isfinite(piece)):
                raise ValuesError(item.name, "initial value is outside the variable's support")
        with self._parameter_checks(ValuesError, "at the initial values"):
            bad = ~np.isfinite(self._logdensity_batch(positions))
        if bad.any():
            chains = np.flatnonzero(bad)[:10].tolist()
            raise InitializationError(
                f"the log-density is not finite at the initial values of chains {chains}"
            )
        return positions

    @_serialized
    @_parameter_checks_in_model_terms
    def sample(
        self,
        n_samples: int,
        n_chains: int = DEFAULT_CHAINS,
        seed: int | None = None,
        step_size: float | None = None,
        warmup: int = 2000,
        *,
        target_acceptance: float | None = None,
        initial_values: Mapping[str, Any] | None = None,
        thin: int | str = "auto",
        var_names: Sequence[str] | None = None,
        summary_only: bool = False,
        loop: str = "auto",
        n_threads: int | None = None,
        block_size: int | None = None,
        progressbar: bool | None = None,
        diagnose: bool = True,
        start: str = "auto",
        n_particles: int | None = None,
        max_memory: int | str | None = "auto",
        kernel: str = "auto",
    ) -> SampleResult | SampleSummary:
        """Run ``n_chains`` RMH chains for ``warmup`` + ``n_samples`` steps and keep the last ``n_samples``.

        Parameters
        ----------
        n_samples
            Kept draws per chain.
        n_chains
            Number of chains, run together as one batched computation (default 32: the warm-up
            estimates the proposal from all chains together, the diagnostics compare them, and the
            fused loop runs a tile of 32 chains for about the cost of one).
        seed
            Seed of everything random (initial points, proposals, recovered discrete draws): None,
            an int, a `numpy.random.SeedSequence`, or a `numpy.random.Generator` (a seed is drawn
            from it).  The same seed (with the same ``loop`` and ``block_size``) gives the same draws.
        step_size
            A fixed proposal scale.  When ``None`` (the default), the step size and a per-coordinate
            scale are tuned during warm-up toward ``target_acceptance`` and then frozen.
        warmup
            The most warm-up steps, run and discarded before the kept draws while the proposal
            adapts (`aemix.adaptation.warm_up`): the warm-up stops early once the proposal's scale
            has settled, the chains agree and the acceptance is on target.
            ``result.warmup_steps`` says how many ran.
        target_acceptance
            Acceptance rate the tuning aims at, in (0, 1); defaults to 0.44 in one dimension,
            decreasing to 0.234 in many (the optimal rates of a random walk on Gaussian targets).
        initial_values
            Optional starting values, ``name -> array`` of the variable's shape or
            ``(n_chains, *shape)``; by default chains start as ``start`` says.
        thin
            Keep one step in ``thin``: ``n_samples * thin`` steps run after warm-up, and only the
            kept draws are stored.  ``"auto"`` (the default) keeps one step in ``dim`` (at most
            25) for a position of ``dim`` unconstrained coordinates: a tuned random walk needs
            about ``3 * dim`` steps per independent draw on a Gaussian target, so 1000 kept draws
            are about 300 independent ones per chain, enough for R-hat to tell converged chains
            (below 1.01) from others; MALA keeps one step in ``dim^(1/3)``, HMC every trajectory.
        var_names
            The variables to keep (latent, marginalized and derived, by name); by default all of
            them.  The others are not computed, so that the discrete variables left out cost nothing; the
            chains' moves, hence the kept variables' draws for a given seed, do not depend on it.
        summary_only
            Store no draw: return a `SampleSummary` of per-chain running means and variances, whose
            memory does not grow with ``n_samples``.
        loop
            ``"fused"``: one C loop over chains and steps, with the step lowered to scalar code
            (`aemix.fused`); ``"scan"``: the step vectorized over chains inside an Aesara ``scan``
            over a block of steps, with the noise drawn by NumPy for the block.  ``"auto"`` (the
            default) takes the fused loop when the model lowers to it and the sampler uses Aesara's
            default C backend (see `explain`), else the scan.
        n_threads
            Threads of the fused loop, which share the chains among them (the scan loop runs on one);
            by default every core this process may use.  The draws do not depend on it.
        block_size
            Steps per compiled call, between progress-bar updates (the scan loop holds the noise of
            one call in memory); by default 4096 for the fused loop and 256 for the scan.
        progressbar
            Show a tqdm progress bar over warm-up and sampling; by default only when standard error
            is a terminal.
        start
            ``"auto"`` (default): ``"tempered"`` when the model has observed data and no
            ``initial_values`` are given, else ``"prior"``.  ``"prior"``: chains start at prior
            draws.  ``"tempered"``: a population of
            ``n_particles`` prior draws is moved to the posterior by adaptive tempered SMC
            (`aemix.tempering`) and the chains start from it, so that every mode gets chains in
            proportion to its mass and posteriors far narrower than the prior are found; the
            result then carries ``log_evidence`` (the log marginal likelihood) and its Monte Carlo
            error ``log_evidence_se``.
        n_particles
            Particles of the tempered start (default: ``max(n_chains, 1024)``; ``n_chains`` of them
            start the chains).
        diagnose
            Compute R-hat, bulk and tail ESS of every kept latent and look for stuck chains
            (`aemix.diagnostics`), store them in ``result.diagnostics``, and emit a
            `ConvergenceWarning` when R-hat > 1.01, an ESS is under 400 or chains are stuck
            (default).  With ``summary_only``, R-hat is the classic one from the chains' moments.
        max_memory
            The most bytes the result may take (every kept variable's draws, stored in its own
            dtype, the discrete ones in the narrowest integer type that holds their support, and
            the kept log-density), estimated before anything runs: a larger result is refused
            with a `MemoryLimitError`.  ``"auto"`` (the default): `aemix.memory.DEFAULT_MAX_MEMORY`
            (half the machine's memory); ``None``: no limit.  Not checked with ``summary_only``.
        kernel
            What moves the chains: ``"rmh"``, the random walk; ``"mala"``, Metropolis-adjusted
            Langevin (`aemix.kernels.mala`); ``"hmc"``, Hamiltonian Monte Carlo with a jittered
            trajectory (`aemix.kernels.hmc`).  The gradient kernels differentiate the marginal
            log-density (`aemix.gradient`) and are preconditioned by the same cross-chain scale as
            the random walk; their step size is tuned toward their own target acceptance (0.574,
            0.8).  ``"auto"`` (the default) chooses by the model and `explain` says which and why
            (`aemix.kernels.choice.choose_kernel`: HMC from 20 unconstrained coordinates on when the
            log-density has a gradient, else the random walk).  The tempered start
            moves its particles with the random walk whatever the kernel.

        Returns
        -------
        SampleResult or SampleSummary

        Raises
        ------
        FusedLoopError
            If ``loop="fused"`` and the model does not lower to the fused loop.
        ValuesError
            If ``initial_values`` are malformed or outside their variables' supports.
        MemoryLimitError
            If the result would take more than ``max_memory`` bytes (raised before sampling).
        InitializationError
            If no starting point with a finite log-density is found, or a parameter check of the
            density fails at the prior draws.
        ModelError
            If a parameter check of the density fails at a point the chains reached (a parameter
            that depends on latents, such as a scale with a normal prior, left its domain).
        TypeError, ValueError
            If an argument has the wrong type or is out of range (``seed``, ``target_acceptance``,
            the counts).
        """
        requested = _checked_kernel(kernel)
        chosen = None
        if self.dim > 0:
            chosen, _ = choose_kernel(requested, self.dim, self._gradient_problem)
        thin, n_samples, n_chains, warmup, block_size, keep = self._checked_arguments(
            kernel=chosen,
            thin=thin,
            n_samples=n_samples,
            n_chains=n_chains,
            warmup=warmup,
            block_size=block_size,
            step_size=step_size,
            target_acceptance=target_acceptance,
            loop=loop,
            start=start,
            var_names=var_names,
        )
        seeds = _seed_sequence(seed).spawn(4)  # (the fourth draws the generated quantities)
        generation, keep = self._generation_plan(var_names, keep, summary_only, seeds[3])
        if not summary_only:
            self._check_result_size(keep, n_chains, n_samples, max_memory, generation)
        if self.dim == 0:
            # Nothing continuous is left: the discrete variables' draws are exact.
            return self._sample_exactly(
                n_samples, n_chains, seeds, keep, summary_only, diagnose, block_size, generation
            )
        new_runner = self._runner_factory(loop, keep, _thread_count(n_threads), chosen)
        runner = new_runner()
        init_rng, noise_rng, recovery_rng = (np.random.default_rng(s) for s in seeds[:3])
        runner.seed(noise_rng, recovery_rng, n_chains)
        if block_size is None:
            block_size = 4096 if runner.name == "fused" else 256
        positions, smc, start_scale = self._starting_points(
            start,
            n_chains,
            n_particles,
            initial_values,
            init_rng,
            # (the tempered start tunes its moves for the random walk)
            new_runner
            if chosen.name == "rmh"
            else self._runner_factory(loop, keep, _thread_count(n_threads)),
        )
        logdensities = self._logdensity_batch(positions)

        dim, tune = self.dim, step_size is None
        if progressbar is None:
            progressbar = sys.stderr.isatty()
        bar = tqdm(
            total=warmup + n_samples * thin, disable=not progressbar, unit="step", desc="warm-up"
        )

        def run_warmup_block(positions, logdensities, step, scale, n):
            block = runner.run(positions, logdensities, step, scale, n, 1, "warmup")
            bar.update(n)
            return block

        adapted = warm_up(
            run_warmup_block,
            positions,
            logdensities,
            chosen.initial_step_size(dim) if tune else float(step_size),
            # The particles' (or, without data, the prior draws') spread is the posterior's: warm
            # up from it.
            start_scale if start_scale is not None and tune else identity_scale(dim),
            n_steps=warmup,
            target=chosen.target_acceptance(dim)
            if target_acceptance is None
            else target_acceptance,
            restart_step_size=chosen.initial_step_size(dim),
            step_gain=chosen.step_gain,
            tune=tune,
            block_size=block_size,
            at_equilibrium=start_scale is not None,
        )
        bar.total -= warmup - adapted.steps  # the steps a settled warm-up skipped
        bar.set_description("sampling")

        def on_block(n_steps):
            bar.update(n_steps)

        ran = run_sampling(
            runner, adapted, n_samples, thin, block_size, summary_only, on_block=on_block
        )
        bar.close()
        result = self._finish(runner, adapted, ran, smc, n_samples, thin, summary_only, diagnose)
        return self._with_generated(result, generation)

    def _sample_exactly(
        self, n_samples, n_chains, seeds, keep, summary_only, diagnose, block_size, generation
    ):
        """`sample` for a model with no continuous latent (`aemix.runners.ExactRunner`): no
        warm-up, no kernel, every draw independent and exact."""
        runner = ExactRunner(self, keep)
        recovery_rng = np.random.default_rng(seeds[2])
        runner.seed(None, recovery_rng, n_chains)
        positions = np.zeros((n_chains, 0))
        logdensities = np.full(n_chains, float(self.logdensity({})))
        adapted = WarmUp(positions, logdensities, 0.0, np.ones(0), 0, [])
        ran = run_sampling(runner, adapted, n_samples, 1, block_size or 4096, summary_only)
        result = self._finish(runner, adapted, ran, None, n_samples, 1, summary_only, diagnose)
        return self._with_generated(result, generation)

    def _generation_plan(self, var_names, keep, summary_only, seeds):
        """The generated quantities a run draws after sampling (`aemix.generated`) and the
        variables its runner keeps for them: ``((names, dropped, seeds), keep)``; ``dropped``
        are the variables kept only to draw them from, left out of the result."""
        if not self.generated:
            return None, keep
        wanted = [n for n in self.generated if var_names is None or n in var_names]
        if not wanted:
            return None, keep
        if summary_only:
            if var_names is not None:
                raise ValueError(
                    f"var_names: {wanted} are drawn after sampling given each kept draw, and "
                    "summary_only keeps no draw: sample without summary_only to get them"
                )
            warnings.warn(
                f"{', '.join(wanted)} (drawn given each kept draw, nothing observed depends on "
                "them) are not in a summary_only result, which keeps no draw: sample without "
                "summary_only to get them",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
            return None, keep
        # Given every latent and marginalized variable; the per-observation ones not kept are
        # drawn from their conditionals, as for the posterior predictive.
        needed = [n for n in self.latent + self.marginalized if n not in self.per_observation]
        dropped = tuple(n for n in needed if n not in keep)
        keep = tuple(n for n in self._every if n in keep or n in needed)
        return (tuple(wanted), dropped, seeds), keep

    def _with_generated(self, result, generation):
        """``result`` with the draws of the generated quantities of ``generation``
        (`_generation_plan`), one joint draw per kept draw."""
        if generation is None or not isinstance(result, SampleResult):
            return result
        wanted, dropped, seeds = generation
        missing = [n for n in self.per_observation if n not in result.draws]
        draws = self._forward_draws(self._generated_function(), result.draws, missing, seeds)
        for name in dropped:
            del result.draws[name]
        result.draws.update({name: draws[name] for name in wanted})
        return result

    def _checked_arguments(
        self,
        *,
        kernel=None,
        thin,
        n_samples,
        n_chains,
        warmup,
        block_size,
        step_size,
        target_acceptance,
        loop,
        start,
        var_names,
    ):
        """`sample`'s arguments checked, with ``thin="auto"`` resolved and the kept names:
        ``(thin, n_samples, n_chains, warmup, block_size, keep)``."""
        if isinstance(thin, str):
            if thin != "auto":
                raise ValueError(f"thin must be a positive integer or 'auto', got {thin!r}")
            thin = auto_thin(self.dim, kernel.name if kernel is not None else "rmh")
        n_samples, n_chains, warmup, thin = _check_counts(
            n_samples=n_samples, n_chains=n_chains, warmup=warmup, thin=thin
        )
        keep = self._kept_names(var_names)
        if block_size is not None:
            (block_size,) = _check_counts(block_size=block_size)
        if step_size is not None and not (np.isfinite(step_size) and step_size > 0):
            raise ValueError(f"step_size must be a positive finite number, got {step_size!r}")
        _check_target_acceptance(target_acceptance)
        if loop not in ("auto", "fused", "scan"):
            raise ValueError(f"loop must be 'auto', 'fused' or 'scan', got {loop!r}")
        if start not in ("auto", "prior", "tempered"):
            raise ValueError(f"start must be 'auto', 'prior' or 'tempered', got {start!r}")
        return thin, n_samples, n_chains, warmup, block_size, keep

    def _runner_factory(
        self, loop: str, keep: tuple[str, ...], n_threads: int, kernel: Kernel | None = None
    ):
        """A function that makes a fresh runner (`aemix.runners`) of the loop ``loop`` asks for
        (`sample`'s ``loop``), keeping ``keep``, running ``kernel`` (default: the random walk);
        the fused loop's program is built once."""
        if loop == "fused" or (loop == "auto" and self._fused_ok(keep, kernel)):
            # checked and compiled (or refused) before anything runs
            self._fused_function(keep, kernel)
            program = self._fused_program(keep, kernel)

            def new_runner():
                runner = FusedRunner(self, program, keep, kernel)
                runner.n_threads = n_threads
                return runner
        else:

            def new_runner():
                runner = ScanRunner(self, keep, kernel)
                runner.n_threads = n_threads
                return runner

        return new_runner

    def _starting_points(self, start, n_chains, n_particles, initial_values, rng, new_runner):
        """The chains' starting positions as `sample`'s ``start`` says, with the tempered start's
        result (None without it) and the proposal scale of its particles' spread (or of prior
        draws for a model without data; else None): ``(positions, smc, scale)``."""
        chosen_start = start == "auto"
        if chosen_start:
            start = "tempered" if self.observed and initial_values is None else "prior"
        if start == "tempered":
            if initial_values is not None:
                raise ValueError("start='tempered' draws its own initial values; pass one of them")
            (n_particles,) = _check_counts(n_particles=n_particles or max(n_chains, 1024))
            try:
                smc = self._tempered_start(max(n_particles, n_chains), rng, new_runner())
            except RuntimeError as error:
                if not chosen_start:
                    raise
                warnings.warn(
                    f"the tempered start failed ({error}); the chains start at prior draws, "
                    "which may leave them in the wrong modes",
                    ConvergenceWarning,
                    stacklevel=user_stacklevel(),
                )
            else:
                chosen = rng.choice(len(smc.positions), size=n_chains, replace=False)
                scale = scale_from_covariance(
                    np.cov(smc.positions, rowvar=False), len(smc.positions)
                )
                return smc.positions[chosen], smc, scale
        positions = self.initial_positions(n_chains, rng, initial_values)
        scale = None
        if not self.observed and initial_values is None:
            # Without data the prior is the posterior: the spread of prior draws (from a
            # generator of their own, so the chains' starts are those of ``rng``) is the
            # target's, along every direction, however long; the warm-up starts from it.
            (child,) = rng.bit_generator.seed_seq.spawn(1)
            n = max(n_chains, 1024)
            draws = self.initial_positions(n, np.random.default_rng(child))
            scale = scale_from_covariance(np.cov(draws, rowvar=False), n)
        return positions, None, scale

    def _finish(self, runner, adapted, ran, smc, n_samples, thin, summary_only, diagnose):
        """The `SampleResult` (or `SampleSummary`) of a run, its diagnostics and warnings."""
        n_chains, dim = adapted.positions.shape
        common = dict(
            acceptance_rate=ran.accepted / (n_samples * thin),
            step_size=float(adapted.step_size),
            scale=(
                adapted.scale if self.proposal_form == "diagonal" else as_factor(adapted.scale, dim)
            ),
            loop=runner.name,
            warmup_steps=adapted.steps,
            kernel=runner.kernel.name,
            n_divergent=ran.zero_acceptance if runner.kernel.name == "hmc" else None,
        )
        if summary_only:
            moments = ran.moments
            mean, variance = {}, {}
            for name, shape, columns in runner.record_layout():
                mean[name] = moments.mean[:, columns].reshape(n_chains, *shape)
                variance[name] = (moments.m2[:, columns] / moments.count).reshape(n_chains, *shape)
            result = SampleSummary(mean=mean, variance=variance, n_samples=n_samples, **common)
            result.diagnostics = diagnose_moments(
                {n: (mean[n], variance[n]) for n in self._diagnosed(mean) if n in mean},
                n_samples,
                common["acceptance_rate"],
            )
            draws = None
        else:
            draws, kept_logdensity = runner.collect()
            result = SampleResult(
                draws=draws,
                logdensity=kept_logdensity,
                observed=dict(self._observed_data),
                _conditionals_fn=self._conditional_probabilities,
                _averaged_conditionals_fn=self._averaged_conditionals,
                _log_likelihood_fn=self.log_likelihood,
                **common,
            )
            if smc is not None:
                result.log_evidence, result.log_evidence_se = smc.log_evidence, smc.log_evidence_se
                result.tempering = smc
            if diagnose:
                result.diagnostics = diagnose_draws(
                    self._diagnosed(draws, kept_logdensity),
                    kept_logdensity,
                    common["acceptance_rate"],
                )
        if runner.name == "exact":
            # Independent draws from the exact posterior: nothing to diagnose.
            result.diagnostics = Diagnostics(acceptance_rate=1.0)
        elif diagnose:
            if result.n_divergent is not None:
                result.diagnostics.divergent = int(result.n_divergent.sum())
                result.diagnostics.transitions = n_chains * n_samples * thin
            warn_if_untrustworthy(
                result.diagnostics,
                tempered=smc is not None,
                # (a change point has no labels to switch; ordered locations switch none)
                labels=not self._ordered
                and any(
                    not isinstance(m.node.op, ChangePointRV) for m in self._model.marginalizations
                ),
            )
        result.truncation_tail = self._truncation_tails(draws, ran.positions)
        warn_if_truncated(result.truncation_tail, self._truncations())
        return result

    def _diagnosed(
        self, draws: dict[str, np.ndarray], logdensity: np.ndarray | None = None
    ) -> dict:
        """The kept draws that R-hat and ESS are computed on: the latents; where ``var_names``
        left one out, also the kept derived quantities and the log density (which every latent
        moves), so that a run keeping only a derived quantity is diagnosed too."""
        diagnosed = {n: draws[n] for n in self.latent if n in draws}
        if len(diagnosed) < len(self.latent):
            diagnosed.update({n: draws[n] for n in self.derived if n in draws})
            if logdensity is not None:
                diagnosed[LOG_DENSITY] = logdensity
        return diagnosed

    def _check_own_result(self, result: SampleResult) -> None:
        """Refuse a result that this sampler's model and data did not give: its draws would be
        read as this model's posterior.

        Raises
        ------
        ValuesError
            Naming the observed variable whose data differ, or the variable whose draws do not
            have this model's shape.
        """
        observed = result.observed
        for name, data in self._observed_data.items():
            if name not in observed:
                raise ValuesError(
                    name,
                    "this result was sampled from another model (it has no observed data for this "
                    "variable): use the sampler that drew it",
                )
            if not np.array_equal(observed[name], data):
                raise ValuesError(
                    name,
                    "this result was sampled given other observed data for this variable: use "
                    "the sampler that drew it, or sample this one",
                )
        shapes = {item.name: item.shape for item in self._density.layout}
        for name, draws in result.draws.items():
            if name in shapes and tuple(np.shape(draws)[2:]) != tuple(shapes[name]):
                raise ValuesError(
                    name,
                    f"this result's draws have shape {tuple(np.shape(draws)[2:])} per draw, this "
                    f"model's variable {tuple(shapes[name])}: the result is another model's",
                )

    def _truncations(self) -> dict[str, Truncation]:
        """The range of each marginalized count with unbounded support, by name."""
        return {
            m.discrete.name: m.truncation
            for m in self._model.marginalizations
            if m.truncation is not None
        }

    def _truncation_tails(self, draws, positions: np.ndarray) -> dict[str, float]:
        """Per truncated count, the largest share of its conditional mass beyond its range
        (`aemix.truncation.log_tail_share`) over the kept ``draws``, or over the chains' last
        ``positions`` when the draws lack a variable it is a function of."""
        truncated = [
            r
            for r, m in zip(self._recovery_graphs(), self._model.marginalizations)
            if m.truncation is not None
        ]
        if not truncated:
            return {}
        enclosing = list(dict.fromkeys(e for r in truncated for e in r.enclosing))
        needed = [*self.latent, *enclosing]
        if draws is None or any(name not in draws for name in needed):
            # (with draws of the discrete variables a nested count's conditional is given)
            draws = self._constrain_and_recover(
                positions[:, None, :], np.random.default_rng(0), self.latent + self.marginalized
            )
        fn = self._compiled.get("truncation_tails")
        if fn is None:
            from aemix.results import batched_function

            draw_vars = {r.name: r.draw for r in self._recovery_graphs()}
            inputs = [*self._density.value_vars, *(draw_vars[e] for e in enclosing)]
            graphs = [at.max(log_tail_share(r.log_probs)) for r in truncated]
            fn = self._compiled["truncation_tails"] = batched_function(
                inputs, graphs, self._compile_mode
            )
        from aemix.results import evaluate_in_batches

        n_chains, n_samples = self._draw_counts(draws)
        rows = n_chains * n_samples
        args = [
            np.asarray(draws[name]).reshape(rows, *np.shape(draws[name])[2:]) for name in needed
        ] or [np.zeros(rows)]
        per_batch = self._record_rows(self.latent + self.marginalized)
        names = [r.name for r in truncated]
        with self._parameter_checks(ValuesError, "at these draws"):
            out = evaluate_in_batches(fn, args, names, per_batch)
        with np.errstate(over="ignore"):
            return {
                name: float(np.exp(np.max(np.nan_to_num(v, nan=np.inf)))) for name, v in out.items()
            }

    def _check_result_size(
        self, keep: tuple[str, ...], n_chains: int, n_samples: int, max_memory, generation=None
    ) -> None:
        """Refuse (`MemoryLimitError`) a result of the variables ``keep`` larger than
        ``max_memory`` bytes (`Sampler.sample`'s argument; see `aemix.memory`)."""
        if isinstance(max_memory, str):
            if max_memory != "auto":
                raise ValueError(
                    f"max_memory must be a number of bytes, None or 'auto', got {max_memory!r}"
                )
            max_memory = memory.DEFAULT_MAX_MEMORY
        elif max_memory is not None:
            if isinstance(max_memory, bool) or not isinstance(max_memory, numbers.Real):
                raise TypeError(
                    f"max_memory must be a number of bytes, None or 'auto', got {max_memory!r}"
                )
            if not max_memory >= 0:
                raise ValueError(f"max_memory must be a number of bytes >= 0, got {max_memory!r}")
        stored = stored_variables(self, keep)
        for var in self._generated:
            if generation is not None and var.name in generation[0]:
                shape = concrete_shape(var)
                stored[var.name] = (shape if shape is not None else (), var.type.dtype)
        sizes = memory.result_bytes(stored, n_chains, n_samples)
        memory.check_result_size(sizes, max_memory, n_chains, n_samples)

    @property
    def per_observation(self) -> tuple[str, ...]:
        """The marginalized variables summed out element by element, such as a mixture's
        membership of each observation: by default `sample` keeps no draw of them (their draws
        are ``n_elements`` values per draw) and the result gives their posterior probabilities
        averaged over the draws instead (`SampleResult.posterior_probabilities`).  Name one in
        ``var_names`` to keep its draws.  A variable that another is summed out inside keeps its
        draws (the inner one's conditional is given them)."""
        names = []
        for m in self._model.marginalizations:
            node = m.node
            joint = isinstance(node.op, FiniteEnumerationRV) and not node.op.elementwise
            if m.discrete.ndim > 0 and not joint:
                names.append(m.discrete.name)
        if not names:
            return ()
        enclosing = {e for given in self.conditionals_given.values() for e in given}
        return tuple(name for name in names if name not in enclosing)

    def _gradient_problem(self) -> str | None:
        """Why the log-density has no gradient in the position, or ``None`` when it has one
        (its graph is built, not compiled)."""
        if "gradient_problem" not in self._compiled:
            density = self._density
            try:
                logdensity_and_gradient(density.logdensity, density.position)
            except GradientError as exc:
                self._compiled["gradient_problem"] = str(exc)
            else:
                self._compiled["gradient_problem"] = None
        return self._compiled["gradient_problem"]

    def _draw_counts(self, draws: Mapping[str, np.ndarray]) -> tuple[int, int]:
        """``(n_chains, n_samples)`` of ``draws``, read from a variable of this model in it."""
        for name in self._every:
            if name in draws:
                return tuple(np.shape(draws[name])[:2])
        raise ValueError(
            f"no draws of a variable of this model (latent: {self.latent}, marginalized: "
            f"{self.marginalized}, derived: {self.derived}) were given"
        )

    def _kept_names(self, var_names: Sequence[str] | None) -> tuple[str, ...]:
        """The variables ``sample`` keeps, in the model's order (latents, marginalized, derived):
        by default all but the per-observation ones (`per_observation`)."""
        every = self._every
        if var_names is None:
            # (with no continuous latent, no draw keeps what the summary would be computed from)
            summarized = set(self.per_observation) if self.dim else set()
            return tuple(name for name in every if name not in summarized)
        if isinstance(var_names, str):
            raise TypeError(f"var_names must be a sequence of names, got the string {var_names!r}")
        for name in var_names:
            if name not in every and name not in self.generated:
                raise ValueError(
                    f"var_names: {name!r} is not a variable of this model (latent: "
                    f"{self.latent}, marginalized: {self.marginalized}, derived: {self.derived}"
                    + (f", generated: {self.generated})" if self.generated else ")")
                )
        if not var_names:
            raise ValueError("var_names is empty: keep at least one variable")
        return tuple(name for name in every if name in var_names)

    @property
    def conditionals_given(self) -> dict[str, tuple[str, ...]]:
        """For each marginalized variable, the marginalized variables whose draws its conditional
        is given: those it was summed out inside (`aemix.recovery`), empty for the outermost.

        ``result.conditional_probabilities[name]`` is ``P(name | latents, data, given)``; the
        draws are joint draws from the posterior of all of them.  A state of a Markov chain is
        drawn given the draw of the state after it (forward-filter backward-sample), but its
        conditional probabilities are its smoothed marginal ``P(z_t | latents, data)``
        (forward-backward), given no other draw: its entry here is empty.
        """
        return {r.name: r.given for r in self._recovery_graphs()}

    def _recovery_graphs(self) -> list[Recovery]:
        """Per marginalization, how to draw its discrete variable (`aemix.recovery`), in the
        latents' value variables (`LogDensity.value_vars`)."""
        graphs = self._compiled.get("recovery_graphs")
        if graphs is None:
            rv_to_value = dict(self._observed)
            rv_to_value.update(zip(self._latent_rvs, self._density.value_vars))
            graphs = recovery_graphs(self._model, rv_to_value)
            self._compiled["recovery_graphs"] = graphs
        return graphs

    def _in_position(self, graphs: list[Variable]) -> list[Variable]:
        """Graphs in the latents' values rewritten in one chain's flat unconstrained position."""
        density = self._density
        return clone_replace(graphs, dict(zip(density.value_vars, density.constrained)))

    @_serialized
    def _conditional_probabilities(self, draws: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``P(D = d_k | rest)`` for every marginalized ``D`` at each draw of the latents (and of
        the discrete variables it sits inside, see `aemix.recovery`)."""
        recovery = self._recovery_graphs()
        if not recovery:
            return {}
        needed = list(self.latent) + [e for r in recovery for e in r.given]
        _require_draws(
            draws,
            needed,
            "the conditional probabilities are functions of every latent variable (and of the "
            "discrete variables around a nested one)",
        )
        fn = self._compiled.get("conditionals")
        draw_vars = {r.name: r.draw for r in recovery}
        enclosing = list(dict.fromkeys(e for r in recovery for e in r.given))
        if fn is None:
            inputs = [*self._density.value_vars, *(draw_vars[e] for e in enclosing)]
            inputs = inputs or [at.dscalar("row")]  # (nothing given: one row per draw still)
            batched_inputs = [
                at.tensor(v.type.dtype, shape=(None, *v.type.shape), name=v.name) for v in inputs
            ]
            # (a Markov chain's states: their smoothed marginals, given no other draw)
            graphs = [at.exp(r.log_probs if r.marginal is None else r.marginal) for r in recovery]
            batched = vectorize_graph(graphs, dict(zip(inputs, batched_inputs)))
            fn = compile_function(
                batched_inputs, batched, on_unused_input="ignore", mode=self._compile_mode
            )
            self._compiled["conditionals"] = fn
        n_chains, n_samples = self._draw_counts(draws)
        out: dict[str, np.ndarray] = {}
        for rows, probs in self._conditional_batches(fn, recovery, enclosing, draws):
            for r, p in zip(recovery, probs):
                if r.name not in out:
                    out[r.name] = np.empty((n_chains * n_samples, *p.shape[1:]), dtype=p.dtype)
                out[r.name][rows] = p
        return {name: p.reshape(n_chains, n_samples, *p.shape[1:]) for name, p in out.items()}

    def _conditional_batches(self, fn, recovery, enclosing, draws):
        """``(rows, probabilities)`` of the conditionals over the draws flattened to rows (chain
        major), in batches whose intermediates stay within the record's memory budget."""
        n_chains, n_samples = self._draw_counts(draws)
        args = [
            draws[item.name].reshape(n_chains * n_samples, *item.shape)
            for item in self._density.layout
        ]
        args += [draws[e].reshape(n_chains * n_samples, *draws[e].shape[2:]) for e in enclosing]
        args = args or [np.zeros(n_chains * n_samples)]  # (`batched_function`'s row input)
        rows = n_chains * n_samples
        per_batch = self._record_rows(self.latent + self.marginalized)
        for start in range(0, rows, per_batch):
            stop = min(rows, start + per_batch)
            yield slice(start, stop), fn(*[a[start:stop] for a in args])

    @_serialized
    def _averaged_conditionals(self, draws: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per chain, the average over its draws of ``P(D = d_k | rest)`` for every marginalized
        ``D`` (``(n_chains, *shape, K)``), computed batch by batch: never all draws' conditionals
        at once."""
        recovery = self._recovery_graphs()
        if not recovery or any(name not in draws for name in self.latent):
            return {}
        # (the draws the conditionals are given, as `_conditional_probabilities` compiles them:
        # none for a Markov chain's states, whose smoothed marginals are reported)
        enclosing = list(dict.fromkeys(e for r in recovery for e in r.given))
        if any(e not in draws for e in enclosing):
            return {}
        self._conditional_probabilities({k: v[:, :1] for k, v in draws.items()})  # compiles
        fn = self._compiled["conditionals"]
        n_chains, n_samples = self._draw_counts(draws)
        sums: dict[str, np.ndarray] = {}
        for rows, probs in self._conditional_batches(fn, recovery, enclosing, draws):
            chains = np.arange(rows.start, rows.stop) // n_samples
            for r, p in zip(recovery, probs):
                if r.name not in sums:
                    sums[r.name] = np.zeros((n_chains, *p.shape[1:]))
                np.add.at(sums[r.name], chains, p)
        return {name: total / n_samples for name, total in sums.items()}

    @_serialized
    def log_likelihood(self, draws: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Pointwise marginal log-likelihood of each observed variable at each draw of the latents.

        The discrete variables stay summed out, so only the latents' draws are read.  An observed
        random variable contributes its elementwise log-density; an observed output of a
        marginalized sub-graph contributes the marginal log-density, pointwise when the discrete
        variable was summed out element by element (one term per element of it: per row of an
        observation whose row ``i`` reads element ``i``), and as one term (shape ``()``: one
        point for LOO) otherwise; see `aemix.results` for the details.

        Parameters
        ----------
        draws
            ``name -> array`` of shape ``(n_chains, n_samples, *shape)`` of every latent (as in
            `SampleResult.draws`).

        Returns
        -------
        dict
            ``name -> array`` of shape ``(n_chains, n_samples, *term_shape)`` per observed variable.
        """
        _require_draws(
            draws, self.latent, "the log-likelihood is a function of every latent variable"
        )
        cached = self._compiled.get("log_likelihood")
        if cached is None:
            from aemix.results import batched_function, log_likelihood_graphs

            graphs = log_likelihood_graphs(
                self._observed,
                dict(zip(self._latent_rvs, self._density.value_vars)),
                self.observed,
            )
            # (a simplex's sum is checked within rounding, as in the log-density)
            graphs = dict(zip(graphs, _tolerant_simplex_checks(list(graphs.values()))))
            fn = (
                batched_function(
                    self._density.value_vars, list(graphs.values()), self._compile_mode
                )
                if graphs
                else None
            )
            cached = self._compiled["log_likelihood"] = (fn, list(graphs))
        fn, names = cached
        if fn is None:
            return {}
        from aemix.results import evaluate_in_batches

        n_chains, n_samples = self._draw_counts(draws)
        args = [
            np.asarray(draws[item.name]).reshape(n_chains * n_samples, *item.shape)
            for item in self._density.layout
        ] or [np.zeros(n_chains * n_samples)]
        per_batch = self._record_rows(self.latent + self.marginalized)
        with self._parameter_checks(ValuesError, "at these draws"):
            out = evaluate_in_batches(fn, args, names, per_batch)
        return {name: v.reshape(n_chains, n_samples, *v.shape[1:]) for name, v in out.items()}

    @_serialized
    def posterior_predictive(self, result: SampleResult, seed=None) -> dict[str, np.ndarray]:
        """Every observed variable drawn again from the model given each kept draw.

        The model's own graph is used: each latent variable and each marginalized discrete
        variable is set to its draw (so the discrete draws of `SampleResult.draws` take part), and
        everything else downstream of them (the observations, a mixture's unselected components)
        is drawn afresh, once per draw, from generators seeded by ``seed``.

        Parameters
        ----------
        result
            A `SampleResult` of this sampler that kept every latent and marginalized variable.
        seed
            Seed of the predictive draws (an int, a ``SeedSequence`` or ``None``).

        Returns
        -------
        dict
            ``name -> array`` of shape ``(n_chains, n_samples, *shape)`` per observed variable.
        """
        if not isinstance(result, SampleResult):
            raise TypeError(
                "posterior_predictive draws given each kept draw of a SampleResult, got "
                f"{type(result).__name__}; a SampleSummary (summary_only=True) keeps moments, no "
                "draws: sample without summary_only"
            )
        self._check_own_result(result)
        names = self.latent + self.marginalized
        # Per-observation variables not kept (the default) are drawn here from their
        # conditionals, as the record would have drawn them.
        missing = [n for n in self.per_observation if n not in result.draws]
        _require_draws(
            result.draws,
            [n for n in names if n not in missing],
            "the posterior predictive is drawn given every latent and marginalized variable",
        )
        cached = self._compiled.get("predictive")
        if cached is None:
            from aemix.results import predictive_function

            marginal_to_original = {m: o for o, m in self._model.original_to_marginal.items()}
            given = [*self._latent_originals, *_discrete_originals(self._model)]
            observed = [marginal_to_original[rv] for rv in self._observed]
            fn, rngs = predictive_function(observed, given, self._numpy_mode)
            cached = self._compiled["predictive"] = (fn, len(rngs), [rv.name for rv in observed])
        return self._forward_draws(cached, result.draws, missing, _seed_sequence(seed))

    def _forward_draws(self, compiled, kept: Mapping[str, np.ndarray], missing, seeds):
        """Draws of a `aemix.results.predictive_function` (``compiled``: ``(fn, n_rngs,
        names)``) given each kept draw of the latent and marginalized variables (``kept``, with
        ``(n_chains, n_samples)`` leading axes), in batches; the per-observation variables
        ``missing`` from ``kept`` are drawn from their conditionals first."""
        fn, n_rngs, out_names = compiled
        names = self.latent + self.marginalized
        n_chains, n_samples = self._draw_counts(kept)
        rows = n_chains * n_samples
        draws = {n: v.reshape(rows, *v.shape[2:]) for n, v in kept.items()}
        per_batch = self._record_rows(names)
        out: dict[str, np.ndarray] = {}
        for start, child in zip(range(0, rows, per_batch), seeds.spawn(-(-rows // per_batch))):
            stop = min(rows, start + per_batch)
            generators = [np.random.default_rng(s) for s in child.spawn(n_rngs + 1)]
            batch = {n: v[start:stop] for n, v in draws.items()}
            if missing:
                batch.update(self._draws_from_conditionals(missing, batch, generators.pop()))
            values = fn(*[batch[n] for n in names], *generators[:n_rngs])
            for name, value in zip(out_names, values):
                if name not in out:
                    out[name] = np.empty((rows, *value.shape[1:]), dtype=value.dtype)
                out[name][start:stop] = value
        return {name: v.reshape(n_chains, n_samples, *v.shape[1:]) for name, v in out.items()}

    def _generated_function(self):
        """The compiled joint draw of the generated quantities (`aemix.generated`) given the
        latent and marginalized variables, the observed ones at their data: ``(fn, n_rngs,
        names)``."""
        cached = self._compiled.get("generated")
        if cached is None:
            from aemix.results import predictive_function

            given = [*self._latent_originals, *_discrete_originals(self._model)]
            fn, rngs = predictive_function(
                self._generated, given, self._numpy_mode, fixed=self._observed_constants
            )
            cached = self._compiled["generated"] = (fn, len(rngs), list(self.generated))
        return cached

    def _draws_from_conditionals(
        self, names: list[str], draws: dict[str, np.ndarray], rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Draws of the per-observation variables ``names`` from their conditionals given
        ``draws`` (rows of latent draws, and those of the variables around them), by inverse
        CDF."""
        recovery = {r.name: r for r in self._recovery_graphs()}
        rows = len(next(iter(draws.values())))
        probs = self._conditional_probabilities({n: v[None] for n, v in draws.items()})
        out = {}
        for name in names:
            p = probs[name][0]  # (rows, *shape, K)
            u = rng.random(p.shape[:-1])
            index = np.minimum((np.cumsum(p, axis=-1) < u[..., None]).sum(axis=-1), p.shape[-1] - 1)
            out[name] = recovery[name].support[index].reshape(rows, *p.shape[1:-1])
        return out

    @_serialized
    def prior_predictive(self, n: int, seed=None) -> dict[str, np.ndarray]:
        """Joint draws from the model's prior, data ignored.

        The user's graph is drawn forward, ``n`` times, from generators seeded by ``seed`` (the
        model's own are never advanced): every latent variable (in its own space), every
        marginalized discrete variable, every observed variable (redrawn, as the prior
        predictive) and every derived quantity, each draw of them one joint draw.

        Parameters
        ----------
        n
            Number of draws.
        seed
            Seed of the draws (an int, a ``SeedSequence``, a ``Generator`` or ``None``).

        Returns
        -------
        dict
            ``name -> array`` of shape ``(n, *shape)``; `SampleResult.to_inference_data` takes it
            as ``prior=``.

        Examples
        --------
        >>> import aesara.tensor as at
        >>> import aemix
        >>> srng = at.random.RandomStream(0)
        >>> mu_rv = srng.normal(0.0, 1.0, name="mu")
        >>> y_rv = srng.normal(mu_rv, 1.0, size=3, name="y")
        >>> sampler = aemix.build_sampler(y_rv, {y_rv: [0.1, 0.2, 0.3]}, mode="FAST_COMPILE")
        >>> {name: draws.shape for name, draws in sampler.prior_predictive(5, seed=0).items()}
        {'mu': (5,), 'y': (5, 3)}
        """
        (n,) = _check_counts(n=n)
        cached = self._compiled.get("prior_predictive")
        if cached is None:
            from aemix.results import prior_function

            marginal_to_original = {m: o for o, m in self._model.original_to_marginal.items()}
            named = [
                *zip(self.latent, self._latent_originals),
                *zip(self.marginalized, _discrete_originals(self._model)),
                *((rv.name, marginal_to_original[rv]) for rv in self._observed),
                *zip(self.derived, self._model.derived),
                *((rv.name, rv) for rv in self._generated),
            ]
            fn, rngs = prior_function([v for _, v in named], self._numpy_mode)
            cached = self._compiled["prior_predictive"] = (fn, len(rngs), [k for k, _ in named])
        fn, n_rngs, names = cached
        seeds = _seed_sequence(seed)
        # In batches of draws, so that a large observed array drawn n times stays within budget.
        per_draw = self.dim + sum(int(np.size(d)) for d in self._observed_data.values())
        per_draw += sum(int(np.prod(shape_of(m.discrete))) for m in self._model.marginalizations)
        per_draw += sum(int(np.prod(d.shape, dtype=int)) for d in self._derived)
        per_draw += sum(int(np.prod(concrete_shape(v) or ())) for v in self._generated)
        per_batch = max(1, RECORD_MEMORY_BUDGET // (LIVE_INTERMEDIATES * 8 * per_draw))
        out: dict[str, np.ndarray] = {}
        for start, child in zip(range(0, n, per_batch), seeds.spawn(-(-n // per_batch))):
            count = min(n, start + per_batch) - start
            generators = [np.random.default_rng(s) for s in child.spawn(n_rngs)]
            for name, value in zip(names, fn(count, *generators)):
                if name not in out:
                    out[name] = np.empty((n, *value.shape[1:]), dtype=value.dtype)
                out[name][start : start + count] = value
        return out

    def _record_rows(self, keep: tuple[str, ...]) -> int:
        """Positions (draws of one chain) whose record of the variables ``keep``
        (`_constrain_and_recover`) fits `RECORD_MEMORY_BUDGET` (at least one).

        A draw's conditional of ``D`` holds ``K`` values per element of ``D``, and computing it
        takes ``K`` values per observation (a change point's conditional sums each configuration
        over every observation); a few such intermediates are alive at once.
        """
        per_draw = self._compiled.get(("record_size", keep))
        if per_draw is None:
            largest_data = max((np.size(d) for d in self._observed_data.values()), default=1)
            per_draw = self.dim
            marginalizations = self._model.marginalizations
            for m, r in zip(marginalizations, self._recovery_graphs()):
                # (a variable inside a kept one is drawn too)
                elements = int(np.prod(shape_of(m.discrete), dtype=int))
                per_draw += len(r.support) * max(elements, largest_data)
            per_draw += sum(int(np.prod(d.shape, dtype=int)) for d in self._derived)
            self._compiled[("record_size", keep)] = per_draw
        return max(1, RECORD_MEMORY_BUDGET // (LIVE_INTERMEDIATES * 8 * per_draw))

    def _record_graphs(self, keep: tuple[str, ...]):
        """The record of the variables ``keep`` in one chain's position: the latents in their own
        space, then the discrete variables drawn by inverse CDF from uniforms (outermost first),
        then the derived quantities (from those values and draws).

        Returns ``(outputs, uniforms, uniform_shapes, probs)``; ``probs`` (the conditionals the
        draws are made from, in the position alone) is ``None`` when a kept variable sits inside
        another (its conditional depends on that draw, so it cannot be computed ahead of it) or a
        derived quantity is kept (it is computed from the draws, not carried).
        """
        density = self._density
        outputs = [
            value for item, value in zip(density.layout, density.constrained) if item.name in keep
        ]
        recovery = self._recovery_graphs()
        by_name = {r.name: r for r in recovery}
        derived = [d for d in self._derived if d.name in keep]
        needed = set(keep) | {name for d in derived for name, _ in d.reads}
        for r in reversed(recovery):
            if r.name in needed:
                needed.update(r.enclosing)
        uniforms, uniform_shapes = {}, {}
        for r, m in zip(recovery, self._model.marginalizations):
            if r.name in needed:
                # One uniform per element drawn: per element of D, or one per joint configuration.
                shape = shape_of(m.discrete) if r.support.ndim == 1 else ()
                uniform_shapes[r.name] = shape
                uniforms[r.name] = at.tensor("float64", shape=shape, name=f"u_{r.name}")
        in_position = map_recoveries([r for r in recovery if r.name in needed], self._in_position)
        draws = draw_graphs(in_position, uniforms)
        kept = [r.name for r in recovery if r.name in keep]
        outputs += [draws[name][0] for name in kept]
        in_values = dict(zip(density.value_vars, density.constrained))
        outputs += [
            clone_replace(d.graph, {**in_values, **{v: draws[n][0] for n, v in d.reads}})
            for d in derived
        ]
        nested = any(by_name[name].enclosing for name in kept)
        probs = None if nested or derived else [draws[name][1] for name in kept]
        order = list(uniforms)
        return (
            outputs,
            [uniforms[n] for n in order],
            [uniform_shapes[n] for n in order],
            probs,
        )

    def _constrain_and_recover(
        self, kept: np.ndarray, rng: np.random.Generator, keep: tuple[str, ...]
    ):
        """The variables ``keep`` at flat positions ``kept``: latents in their own space, discrete
        variables drawn from their conditionals (inverse CDF, outermost first), derived
        quantities."""
        n_chains, n_samples, dim = kept.shape
        flat = kept.reshape(n_chains * n_samples, dim)
        fn, names, shapes, uniform_shapes = self._compiled.get(("record", keep), (None,) * 4)
        if fn is None:
            outputs, uniforms, uniform_shapes, _ = self._record_graphs(keep)
            position = self._density.position
            batch = at.matrix("positions", dtype=position.dtype)
            batched_u = [at.tensor("float64", shape=(None, *u.type.shape)) for u in uniforms]
            batched = vectorize_graph(outputs, {position: batch, **dict(zip(uniforms, batched_u))})
            fn = compile_function(
                [batch, *batched_u], batched, mode=self._compile_mode, on_unused_input="ignore"
            )
            names = [item.name for item in self._density.layout if item.name in keep]
            names += [r.name for r in self._recovery_graphs() if r.name in keep]
            shapes = [item.shape for item in self._density.layout if item.name in keep]
            shapes += [
                shape_of(m.discrete)
                for r, m in zip(self._recovery_graphs(), self._model.marginalizations)
                if r.name in keep
            ]
            names += [d.name for d in self._derived if d.name in keep]
            shapes += [d.shape for d in self._derived if d.name in keep]
            self._compiled[("record", keep)] = (fn, names, shapes, uniform_shapes)
        # In batches of rows (positions), so that the conditionals' intermediates stay within the
        # record's memory budget; the draws themselves are small.
        per_batch = self._record_rows(keep)
        pieces: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(flat), per_batch):
            rows = flat[start : start + per_batch]
            us = [rng.random((len(rows), *shape)) for shape in uniform_shapes]
            for name, value in zip(names, fn(rows, *us)):
                pieces.setdefault(name, []).append(value)
        return {
            name: np.concatenate(pieces[name]).reshape(n_chains, n_samples, *shape)
            for name, shape in zip(names, shapes)
        }

    # -- the fused loop ------------------------------------------------------------------------

    def _fused_ok(self, keep: tuple[str, ...] | None = None, kernel: Kernel | None = None) -> bool:
        """Whether ``loop="auto"`` takes the fused loop (keeping the variables ``keep``)."""
        if self.mode not in (None, "FAST_RUN") or not aesara.config.cxx:
            return False
        try:
            self._fused_function(keep, kernel)
        except FusedLoopError:
            return False
        return True

    def _fused_program(
        self, keep: tuple[str, ...] | None = None, kernel: Kernel | None = None
    ) -> FusedProgram:
        """The step of ``kernel`` (default: the random walk) and the record of the variables
        ``keep`` (by default all) of one chain, lowered to scalar code (cached; raises if
        impossible)."""
        keep = self._every if keep is None else keep
        kernel = kernel or Kernel("rmh")
        # The random walk's keys are the ones the cache has always had.
        tag = () if kernel.name == "rmh" else (kernel,)
        why = "the model does not lower to scalar code"
        if kernel.uses_gradient:
            why = (
                f"the model's {kernel.name} step (with its gradient) does not lower to scalar code"
            )
        # Any failure of the lowering (an Aesara assertion, a rule's IndexError) is a refusal:
        # the scan runs the model, and explain() says why.
        step = self._cached_or_refused(
            ("fused_step", *tag) if tag else "fused_step",
            lambda: self._lower_step_for_fused_loop(kernel),
            Exception,
            why,
        )
        return self._cached_or_refused(
            ("fused_program", keep, *tag),
            lambda: self._lower_record(step, keep, kernel),
            Exception,
            why,
        )

    def _cached_or_refused(self, key: str, build, failure: type[Exception], why: str):
        """``build()`` once; a failure is kept (as a `FusedLoopError`) and raised again."""
        cached = self._compiled.get(key)
        if isinstance(cached, FusedLoopError):
            raise cached
        if cached is None:
            try:
                cached = build()
            except failure as exc:
                detail = str(exc) if isinstance(exc, LoweringError | CompileError) else repr(exc)
                cached = FusedLoopError(f"{why}: {detail[:500]}")
                self._compiled[key] = cached
                raise cached from exc
            self._compiled[key] = cached
        return cached

    def _rmh_step_graph(self, kernel: Kernel | None = None):
        """One chain's step of ``kernel`` (default: the random walk) as a tensor graph:
        ``(inputs, shapes, outputs, info)``."""
        density = self._density
        position, dim = density.position, density.dim
        kernel = kernel or Kernel("rmh")
        f64 = "float64"
        if position.type.dtype != f64 or density.logdensity.type.dtype != f64:
            raise LoweringError("the fused loop runs in float64 only")
        lp, exp_draw, step_size = at.scalar(dtype=f64), at.scalar(dtype=f64), at.scalar(dtype=f64)
        eps, parameters = at.vector(dtype=f64), at.vector(dtype=f64)
        state, info = self._tempered_step(lp, eps, exp_draw, step_size, parameters, kernel)
        inputs = [position, lp, eps, exp_draw, step_size, parameters]
        shapes = [(dim,), (), (kernel.noise_length(dim),), (), (), (scale_length(dim) + 1,)]
        outputs = [state.position, state.logdensity, info.acceptance_probability, info.is_accepted]
        return inputs, shapes, outputs, info

    def _step_budget(self, kernel: Kernel) -> int:
        """The most scalar operations of a lowered step: the random walk's budget per evaluation
        of the log-density (a gradient kernel's step evaluates it and its gradient several
        times)."""
        return DEFAULT_MAX_OPERATIONS * max(1, 2 * kernel.gradient_evaluations())

    def _lower_step_for_fused_loop(self, kernel: Kernel | None = None):
        kernel = kernel or Kernel("rmh")
        budget = self._step_budget(kernel)
        if kernel.uses_gradient:
            # A gradient step is about GRADIENT_COST times the random walk's per evaluation (the
            # density and its reverse sweep): refused from that estimate, before building tens of
            # thousands of scalar nodes (hundreds of MB) only to reach the budget.
            walk = self._fused_program(None, Kernel("rmh")).step
            estimate = len(walk.fgraph.apply_nodes) * GRADIENT_COST * kernel.gradient_evaluations()
            if estimate > budget:
                raise LoweringError(
                    f"more than {budget} scalar operations (about {estimate}: "
                    f"{len(walk.fgraph.apply_nodes)} per log-density in the random walk's step, "
                    f"{GRADIENT_COST} times that with the gradient, "
                    f"{kernel.gradient_evaluations()} evaluations per step)"
                )
        return lower_to_scalars(*self._rmh_step_graph(kernel)[:3], max_operations=budget)

    def _check_lowering(self, kernel: Kernel | None = None) -> bool:
        """Compare the lowered log-density (and, for a gradient kernel, its gradient) with
        Aesara's at two prior draws (a guard against a lowering rule that is wrong for this
        model), before the fused loop is first compiled.

        Not part of the lowering, which `explain` shows without compiling anything: this check
        compiles the prior draws and the batched log-density (which sampling compiles anyway)."""
        kernel = kernel or Kernel("rmh")
        density = self._density
        position, dim = density.position, density.dim
        try:
            points = self.initial_positions(2, np.random.default_rng(20261124))
        except InitializationError:
            return True
        outputs = [density.logdensity]
        if kernel.uses_gradient:
            outputs = list(logdensity_and_gradient(density.logdensity, position))
        lowered = lower_to_scalars(
            [position], [(dim,)], outputs, max_operations=self._step_budget(kernel)
        )
        check = composite(
            list(lowered.inputs[0].flat), [e for array in lowered.outputs for e in array.flat]
        )
        if len(lowered.outputs) == 1:
            expected = self._logdensity_batch(points)[:, None]
            what = "log-density"
        else:
            expected = np.column_stack(
                self._in_batches(
                    "logdensity_and_gradient_batch",
                    list(logdensity_and_gradient(density.logdensity, position)),
                    points,
                )
            )
            what = "log-density or gradient"
        for point, want in zip(points, expected):
            with np.errstate(all="ignore"):
                got = np.atleast_1d(np.asarray(check.impl(*point), dtype=float))
            if not np.allclose(got, want, rtol=1e-9, atol=1e-9, equal_nan=True):
                raise LoweringError(
                    f"self-check failed: the lowered {what} is {got.tolist()!r} where Aesara's "
                    f"is {want.tolist()!r}"
                )
        return True

    def _lower_record(self, step, keep: tuple[str, ...], kernel: Kernel) -> FusedProgram:
        try:
            return self._lower_record_to_scalars(step, keep, kernel)
        except LoweringError as exc:
            # The loop keeps the positions; the record is computed from them afterwards, batched.
            position, dim = self._density.position, self._density.dim
            record = lower_to_scalars([position], [(dim,)], [position])
            return FusedProgram.from_graphs(
                step, record, dim, 0, record_note=str(exc), n_normal=kernel.noise_length(dim)
            )

    def _lower_record_to_scalars(self, step, keep: tuple[str, ...], kernel: Kernel) -> FusedProgram:
        position, dim = self._density.position, self._density.dim
        outputs, uniforms, uniform_shapes, probs = self._record_graphs(keep)
        record = lower_to_scalars([position, *uniforms], [(dim,), *uniform_shapes], outputs)
        n_uniforms = int(sum(np.prod(s, dtype=int) for s in uniform_shapes))
        carried = None
        if probs:  # (carrying the latents alone would only move their transforms)
            n_latents = len(outputs) - len(probs)
            supports = [r.support for r in self._recovery_graphs() if r.name in keep]
            try:
                carried = self._carried_record(
                    outputs[:n_latents] + probs,
                    n_latents,
                    uniforms,
                    uniform_shapes,
                    supports,
                    kernel,
                )
            except LoweringError:
                pass
        return FusedProgram.from_graphs(
            step, record, dim, n_uniforms, carried=carried, n_normal=kernel.noise_length(dim)
        )

    def _carried_record(self, carried, n_latents, uniforms, uniform_shapes, supports, kernel):
        """The record's part that does not depend on the uniforms (the latents in their own space,
        the discrete conditionals), carried in the chain's state: computed at the proposal inside
        the step, where it shares the log-density's terms, and kept or replaced with the state.

        Returns the scalar graphs ``(initial, step, record)``: the carried values at a position;
        the step, which also takes and returns them; the record from them and the uniforms.
        """
        density = self._density
        position, dim = density.position, density.dim
        initial = lower_to_scalars([position], [(dim,)], carried)
        shapes = [a.shape for a in initial.outputs]
        current = [at.tensor("float64", shape=shape) for shape in shapes]
        inputs, step_shapes, outputs, info = self._rmh_step_graph(kernel)
        at_proposal = clone_replace(carried, {position: info.proposal})
        kept = [at.switch(info.is_accepted, new, old) for new, old in zip(at_proposal, current)]
        # Before merging, the step and the carried values count their shared terms twice.
        step = lower_to_scalars(
            [*inputs, *current],
            [*step_shapes, *shapes],
            [*outputs, *kept],
            max_operations=2 * self._step_budget(kernel),
        )
        records = current[:n_latents] + [
            inverse_cdf(u, probs, support)
            for u, probs, support in zip(uniforms, current[n_latents:], supports)
        ]
        record = lower_to_scalars([*current, *uniforms], [*shapes, *uniform_shapes], records)
        return initial, step, record

    def _fused_function(self, keep: tuple[str, ...] | None = None, kernel: Kernel | None = None):
        keep = self._every if keep is None else keep
        kernel = kernel or Kernel("rmh")
        program = self._fused_program(keep, kernel)
        tag = () if kernel.name == "rmh" else (kernel,)
        self._cached_or_refused(
            ("fused_check", *tag) if tag else "fused_check",
            lambda: self._check_lowering(kernel),
            Exception,
            "the model does not lower to scalar code",
        )
        return self._cached_or_refused(
            ("fused", keep, *tag),
            lambda: compile_loop(program),
            Exception,
            "the fused loop does not compile",
        )

    @_serialized
    def explain(self) -> str:
        """What aemix did with the model: the rules that fired, on which variables, and the result.

        Examples
        --------
        >>> import aesara.tensor as at
        >>> import numpy as np
        >>> import aemix
        >>> srng = at.random.RandomStream(0)
        >>> N_rv = srng.normal(np.array([-2.0, 3.0]), np.array([1.0, 2.0]), name="N")
        >>> I_rv = srng.categorical(np.array([0.3, 0.7]), name="I")
        >>> print(aemix.build_sampler({"Y": N_rv[I_rv]}).explain())
        marginalized:
          I ~ categorical (support size 2), rule 'indexed_mixture': Y = MarginalMixture(I; N)
        latent (moved by the kernel, 1 unconstrained coordinates):
          Y: shape ()
        observed: none
        kernel: rmh (random walk), auto: 1 coordinate(s), under 20: the random walk compiles faster
        loop: fused C loop over chains and steps (7 scalar inputs per step, 36 scalar operations)
        """
        lines = ["marginalized:" if self._model.marginalizations else "marginalized: none"]
        chains = set()
        for m in self._model.marginalizations:
            if isinstance(m.node.op, MarkovChainRV):
                if m.node not in chains:
                    chains.add(m.node)
                    lines += _explain_chain(self._model, m.node)
                continue
            enumeration = isinstance(m.node.op, FiniteEnumerationRV)
            inputs = m.node.inputs[2:] if enumeration else m.node.inputs[1:]
            how = ""
            if isinstance(m.node.op, ChangePointRV):
                lengths = sorted({cut.length for cut in m.node.op.cuts})
                how = (
                    f", a change point: cumulative sums over {' and '.join(map(str, lengths))} "
                    "elements"
                )
            elif enumeration and m.node.op.elementwise:
                how = f", summed per element over {m.discrete.type.shape} elements"
            elif enumeration and m.discrete.ndim > 0:
                how = ", summed jointly over every configuration"
            if m.cost is not None:
                how += f"; {m.cost} configurations evaluated"
                if m.scope:
                    how += f", at each value of {', '.join(m.scope)} (summed out after it)"
            lines.append(
                f"  {m.discrete.name} ~ {m.discrete.owner.op.name} (support size {m.support_size}"
                f"{how}), "
                f"rule {m.rule!r}: {', '.join(o.name or '?' for o in m.outputs)} = "
                f"{m.node.op}({m.discrete.name}; {', '.join(_short(v) for v in inputs)})"
            )
            if m.truncation is not None:
                lines.append(f"    {m.truncation.describe()}")
        enumerated = [m for m in self._model.marginalizations if m.cost is not None]
        if len(enumerated) > 1:
            largest = max(enumerated, key=lambda m: m.cost)
            lines.append(
                f"  order: {', '.join(m.discrete.name for m in enumerated)} (chosen by cost; the "
                f"largest step, {largest.discrete.name}, evaluates {largest.cost} configurations)"
            )
        if self.dim == 0:
            lines.append(
                "latent: none left to move (every latent is summed out): sample() draws the "
                "summed-out variables exactly from their posterior, independently at every draw "
                "(no kernel, no warm-up)"
            )
        else:
            lines.append(f"latent (moved by the kernel, {self.dim} unconstrained coordinates):")
        for item, rv in zip(self._density.layout, self._latent_rvs):
            transform = self._transforms[rv]
            how = "" if transform is None else f", sampled through {type(transform).__name__}"
            lines.append(f"  {item.name}: shape {item.shape}{how}")
        observed = list(self.observed)
        if len(observed) > 8:  # (a chain's emissions: one per step)
            observed = [*observed[:3], "...", observed[-1], f"({len(self.observed)} variables)"]
        lines.append(f"observed: {', '.join(observed) or 'none'}")
        if self._derived:
            lines.append("derived (computed from each draw, not sampled):")
            lines += [f"  {d.name}: shape {d.shape}" for d in self._derived]
        if self._generated:
            lines.append(
                "generated (nothing observed depends on them: drawn from the model given each "
                "kept draw, not sampled):"
            )
            for var in self._generated:
                shape = concrete_shape(var)
                lines.append(f"  {var.name}: shape {shape if shape is not None else '?'}")
        if self.dim > 0:
            kernel, why = choose_kernel("auto", self.dim, self._gradient_problem)
            lines.append(f"kernel: {kernel.describe()}, {why}")
            lines.append(f"loop: {self._loop_description(kernel)}")
        return "\n".join(lines)

    def _loop_description(self, kernel: Kernel | None = None) -> str:
        """Which loop ``loop="auto"`` runs ``kernel`` (default: the random walk) in, and why."""
        if self.mode not in (None, "FAST_RUN") or not aesara.config.cxx:
            return f"scan (the fused loop needs Aesara's C backend; mode is {self.mode!r})"
        kernel = kernel or Kernel("rmh")
        tag = () if kernel.name == "rmh" else (kernel,)
        try:
            program = self._fused_program(None, kernel)
        except FusedLoopError as exc:
            return f"scan ({exc})"
        # What the lowering alone says, unless the self-check or the compile (at the first
        # `sample`) has refused it since.
        for failure in (
            self._compiled.get(("fused_check", *tag) if tag else "fused_check"),
            self._compiled.get(("fused", self._every, *tag)),
            self._compiled.get(("fused", self._kept_names(None), *tag)),
        ):
            if isinstance(failure, FusedLoopError):
                return f"scan ({failure})"
        text = (
            f"fused C loop over chains and steps ({program.step.nin} scalar inputs per step, "
            f"{len(program.step.fgraph.apply_nodes)} scalar operations)"
        )
        if program.record_note:
            text += (
                "; the draws in the variables' own space and the discrete draws are computed "
                f"after the loop from the kept positions ({program.record_note})"
            )
        return text

    def __repr__(self) -> str:
        derived = f", derived={self.derived}" if self.derived else ""
        return (
            f"Sampler(latent={self.latent}, marginalized={self.marginalized}, "
            f"observed={self.observed}{derived})"
        )


def _explain_chain(model: MarginalModel, node) -> list[str]:
    """``explain()``'s lines for the states of one Markov chain (`aemix.markov`)."""
    op = node.op
    states = [m.discrete for m in model.marginalizations if m.node is node]
    first, last = states[0], states[-1]
    how = "time-varying" if node.inputs[1].ndim == 3 else "one"
    names = [o.name or "?" for o in node.outputs]
    shown = ", ".join(names) if len(names) <= 4 else f"{names[0]}, ..., {names[-1]}"
    return [
        f"  {first.name}, ..., {last.name} ~ "
        f"{'/'.join(sorted({s.owner.op.name for s in states}))} ({op.length} states of {op.n_values} "
        f"values, {how} transition matrix), rule 'markov_chain': a Markov chain summed out by "
        f"the forward algorithm, O(T K^2); its {len(names)} emissions {shown} = "
        f"{op}({first.name}..{last.name}; {len(node.inputs[2:]) // 2} emission form(s))",
        "    recovered jointly by forward-filter backward-sample; conditional probabilities are "
        "the smoothed marginals; the forward recursion is one node (MarkovForward) that the "
        "fused C loop cannot lower, so the chains run in the scan loop",
    ]


def _discrete_originals(model: MarginalModel) -> list[Variable]:
    """The user's variable of each summed-out discrete variable, in the model's order."""
    marginal_to_original = {m: o for o, m in model.original_to_marginal.items()}
    originals = {o.name: o for o in model.original_to_marginal if o.name}
    return [
        marginal_to_original.get(m.discrete) or originals[m.discrete.name]
        for m in model.marginalizations
    ]


def _require_draws(draws: Mapping[str, Any], names, why: str) -> None:
    """Refuse (``ValueError``) when a variable in ``names`` has no draws in ``draws``."""
    missing = [name for name in dict.fromkeys(names) if name not in draws]
    if missing:
        raise ValueError(
            f"{why}, and the draws of {missing} were not kept: sample with var_names that "
            "include them"
        )


def _short(v: Variable) -> str:
    constant = constant_branch_value(v)
    if constant is not None:
        return str(constant)
    return v.name or (
        v.owner.op.name if v.owner is not None and hasattr(v.owner.op, "name") else str(v)
    )


def _thread_count(n_threads: int | None) -> int:
    if n_threads is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer, got {n_threads!r}")
    return int(n_threads)


def _checked_kernel(kernel: str) -> str:
    if kernel != "auto" and kernel not in ("rmh", "mala", "hmc"):
        raise ValueError(f"kernel must be 'auto', 'rmh', 'mala' or 'hmc', got {kernel!r}")
    return kernel


def _check_target_acceptance(target_acceptance: float | None) -> None:
    if target_acceptance is None:
        return
    if isinstance(target_acceptance, bool) or not isinstance(
        target_acceptance, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"target_acceptance must be a number, got {target_acceptance!r}")
    if not 0 < target_acceptance < 1:
        raise ValueError(f"target_acceptance must be in (0, 1), got {target_acceptance!r}")


def _seed_sequence(seed) -> np.random.SeedSequence:
    """The root of every random stream of one `Sampler.sample` call.

    A `numpy.random.Generator` gives a seed drawn from it (so it advances, as a generator that is
    used should); an int, a `SeedSequence` or None are taken as NumPy takes them.
    """
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(2**63)))
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        return np.random.SeedSequence(None if seed is None else int(seed))
    raise TypeError(
        "seed must be None, an int, a numpy.random.SeedSequence or a numpy.random.Generator, "
        f"got {type(seed).__name__}"
    )


def auto_thin(dim: int, kernel: str = "rmh") -> int:
    """The default thinning of ``kernel`` on ``dim`` coordinates (see `Sampler.sample`): about
    the steps per independent draw on a Gaussian target, ``dim`` for the random walk (at most
    `MAX_AUTO_THIN`), ``dim^(1/3)`` for MALA, one trajectory for HMC."""
    if kernel == "hmc":
        return 1
    if kernel == "mala":
        return int(min(MAX_AUTO_THIN, max(1, np.ceil(dim ** (1 / 3)))))
    return int(min(MAX_AUTO_THIN, max(1, dim)))


def _check_counts(**counts: int) -> tuple[int, ...]:
    out = []
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        minimum = 0 if name == "warmup" else 1
        if value < minimum:
            raise ValueError(f"{name} must be at least {minimum}, got {value}")
        out.append(int(value))
    return tuple(out)


def build_sampler(
    outputs: Variable | Sequence[Variable] | Mapping[str, Variable],
    observed: Mapping[Variable, Any] | None = None,
    *,
    rules: RuleRegistry = registry,
    support_budget: int = DEFAULT_SUPPORT_BUDGET,
    on_budget: str = "raise",
    tail_tolerance: float = DEFAULT_TAIL_TOLERANCE,
    count_bounds: Mapping[str, int] | None = None,
    mode=None,
    ordered: Sequence[str | Variable] = (),
) -> Sampler:
    """Build an RMH sampler for the model graph upstream of ``outputs``.

    Discrete latent variables are summed out with the registered marginalization rules; the sampler
    targets the joint distribution of every remaining random variable that is not observed.

    Parameters
    ----------
    outputs
        A random variable, a list of them, or a mapping ``name -> variable``; the model is every
        random variable upstream.  Unnamed variables take the name their caller bound them to
        (``Y_rv`` becomes ``"Y"``), or ``<distribution>_<k>``.
    observed
        Maps random variables of the graph to their data.
    rules
        The marginalization rules to apply (default: `aemix.relations.registry`).
    support_budget
        Largest number of evaluations of its dependents that summing out one discrete variable may
        cost; above it, ``on_budget`` decides.
    on_budget
        ``"raise"`` (default) a `MarginalizationError`, or ``"warn"`` and go on (up to 100 times the
        budget).
    tail_tolerance
        A discrete latent with unbounded support (Poisson, negative binomial, geometric) is summed
        over a finite range whose left-out mass, relative to the total, should stay below this;
        the range is chosen from the data and the prior (`aemix.truncation`, shown by `explain`),
        and `Sampler.sample` warns when the kept draws visit parameters where it does not.
    count_bounds
        ``name -> last value`` summed, for unbounded counts whose range should end elsewhere than
        where aemix would end it.
    mode
        The Aesara compilation mode of every compiled function (default: Aesara's default, the C
        backend); e.g. ``"FAST_COMPILE"`` to skip C compilation for quick checks.
    ordered
        Latent vectors (names or variables) constrained to increase along their last axis, e.g.
        a mixture's locations: the sampler targets the posterior restricted to that region
        (`aemix.logdensity.OrderedTransform`), which for exchangeable priors is the posterior of
        the sorted values, with no label switching between chains.  Each must be a latent,
        continuous, univariate distribution on the whole real line with a last axis of two or
        more.  The evidence of a tempered start is not computed for such a model (the
        restriction's normalizing constant is not known in general).

    Returns
    -------
    Sampler

    Raises
    ------
    ModelError
        If ``outputs`` or ``observed`` are malformed, or the model has nothing to sample.
    MarginalizationError
        If a discrete latent variable cannot be summed out.

    Examples
    --------
    >>> import aesara.tensor as at
    >>> import numpy as np
    >>> import aemix
    >>> srng = at.random.RandomStream(0)
    >>> N_rv = srng.normal(np.array([-2.0, 3.0]), np.array([1.0, 2.0]), name="N")
    >>> I_rv = srng.categorical(np.array([0.3, 0.7]), name="I")
    >>> sampler = aemix.build_sampler(N_rv[I_rv])
    >>> sampler.marginalized
    ('I',)
    """
    if aesara.config.floatX != "float64":
        # The kernel, its noise and the results are float64 NumPy arrays; a float32 density would
        # also lose the precision the samplers' checks and the README promise.
        raise ConfigurationError(
            f"aemix needs aesara.config.floatX == 'float64', got {aesara.config.floatX!r}; build "
            "the model and the sampler under aesara.config.change_flags(floatX='float64')"
        )
    output_list = as_variable_list(outputs)
    observed = dict(observed or {})
    for var in observed:
        if not isinstance(var, Variable):
            raise ModelError(str(var), "observed keys must be random variables of the model graph")
    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None
    assign_names([*output_list, *observed], caller)
    output_list, observed = unroll_scans(output_list, observed, caller)
    output_list, observed = read_bernoulli_conditions(output_list, observed)
    everything = output_list + [v for v in observed if v not in output_list]
    model_rvs = random_variables(everything)
    assign_names([*output_list, *observed, *model_rvs], caller)
    del frame, caller
    check_parameters(model_rvs)
    check_constants(everything, model_rvs)
    shared = shared_data(everything)  # (the values `marginalize` compiles in)
    observed = {var: _observed_value(var, data, shared) for var, data in observed.items()}
    observed_constants = {var: check_observed(var, data) for var, data in observed.items()}

    def marginal_model(outputs):
        every = outputs + [v for v in observed if v not in outputs]
        return marginalize(
            every,
            set(observed),
            rules,
            support_budget=support_budget,
            on_budget=on_budget,
            derived=True,
            data={var: c.data for var, c in observed_constants.items()},
            tail_tolerance=tail_tolerance,
            count_bounds=count_bounds,
        )

    # Variables no observation depends on, discrete or downstream of one, are drawn after
    # sampling (`aemix.generated`); their parents stay in the sampled model.  A group of them a
    # derived output reads is first left to the rules (the seed's N[I] is a mixture of them); if
    # the rules give it no density, it is drawn after sampling too, with the derived outputs.
    for keep_read in (True, False):
        sampled, generated, parents = split_generated(output_list, observed, model_rvs, keep_read)
        sampled += [v for v in parents if v not in sampled]
        if not (generated and (sampled or observed)):
            # (a model left with nothing to sample, a prior of a mixture, is sampled whole)
            sampled, generated = output_list, []
        try:
            model = marginal_model(sampled)
        except ModelError as error:
            derived_reads = {v.name for v in output_list if v not in model_rvs}
            if keep_read and error.variable in derived_reads:
                continue  # (a derived output of a discrete variable the rules give no density)
            raise
        break
    observed_by_marginal = {}
    for var, data in observed_constants.items():
        if var not in model.original_to_marginal:
            raise ModelError(var.name, "observed variable was absorbed into a marginal variable")
        observed_by_marginal[model.original_to_marginal[var]] = data
    measurable = set(model.random_variables())
    for var in observed_constants:
        if model.original_to_marginal[var] not in measurable:
            if _is_clip(var):
                raise ModelError(
                    var.name,
                    "observed, and a clip of a random variable: a censored observation, whose "
                    "density (a point mass at each bound beside the density between them) aemix "
                    "does not give yet; where no value is censored, observe the random variable "
                    "itself",
                )
            raise ModelError(
                var.name,
                "observed, but it is not a random variable: it is computed from random variables "
                f"({_describe_computation(var)}), and aemix gives densities to random variables "
                "and to the mixtures it marginalizes only; write the observation as a random "
                "variable (e.g. normal(loc[I], scale[I]) rather than N[I] when I is observed)",
            )
    # In model order: aeppl matches the values of a node with several outputs to them by order.
    observed_marginal = {
        rv: observed_by_marginal[rv]
        for rv in model.random_variables()
        if rv in observed_by_marginal
    }

    marginal_to_original = {m: o for o, m in model.original_to_marginal.items()}
    latent_rvs = [rv for rv in model.random_variables() if rv not in observed_marginal]
    if not latent_rvs and not model.marginalizations:
        raise ModelError(
            ", ".join(v.name for v in output_list), "the model has no latent variable to sample"
        )
    for rv in latent_rvs:
        node = rv.owner
        if (
            isinstance(node.op, MarginalSwitchRV)
            and point_mass_beside_density(*node.inputs[1:]) is not None
        ):
            raise ModelError(
                rv.name,
                "it mixes a point mass with a continuous density (a hurdle); observed, that is "
                "exact, but as a latent variable a random walk never lands on the point mass: "
                "observe it, or model its two parts separately",
            )
        if is_discrete(rv):
            raise ModelError(rv.name, "a discrete latent variable was left after marginalization")
    latent_originals = [marginal_to_original[rv] for rv in latent_rvs]
    names = [rv.name for rv in latent_rvs]
    # Names key the draws and the values: checked now that marginalization has named its outputs.
    check_unique_names(
        {
            "latent": latent_rvs,
            "marginalized": [m.discrete for m in model.marginalizations],
            "observed": list(observed_constants),
            "derived": model.derived,
            "generated": generated,
        }
    )

    transforms = _value_transforms(latent_rvs, latent_originals, ordered)
    shapes, unconstrained_shapes = _latent_shapes(latent_rvs, latent_originals, transforms)
    density = build_logdensity(
        latent_rvs, names, observed_marginal, unconstrained_shapes, shapes, transforms
    )
    observed_data = {var.name: np.asarray(c.data) for var, c in observed_constants.items()}
    derived = _derived_quantities(model, latent_originals, density.value_vars, observed_constants)
    sampler = Sampler(
        model,
        density,
        latent_rvs,
        latent_originals,
        observed_marginal,
        observed_data,
        mode=mode,
        derived=derived,
        transforms=transforms,
    )
    sampler._shared_data = shared
    sampler._generated = generated
    sampler._observed_constants = observed_constants
    sampler.generated = tuple(v.name for v in generated)
    _warn_of_unread_observations(observed, model_rvs)  # (after every refusal)
    return sampler


def _is_clip(var: Variable) -> bool:
    """Whether ``var`` is a clip (`aesara.tensor.clip`) of a graph."""
    from aesara.scalar.basic import Clip
    from aesara.tensor.elemwise import Elemwise

    node = var.owner
    return (
        node is not None and isinstance(node.op, Elemwise) and isinstance(node.op.scalar_op, Clip)
    )


def _warn_of_unread_observations(observed, model_rvs: list[Variable]) -> None:
    """A `ModelWarning` for each observed variable that no unobserved variable is connected to
    (as an ancestor, a descendant, or through a common child): e.g. one of another model, passed
    in ``observed`` by mistake.  Its data are accepted and its density enters the log density as
    a constant, but they say nothing about the model."""
    rvs = set(model_rvs)
    parents = {rv: ancestors(rv.owner.inputs[3:], blockers=rvs) for rv in model_rvs}
    find = component_roots(model_rvs, parents)
    reached = {find(rv) for rv in model_rvs if rv not in observed}
    for var in observed:
        if var in rvs and find(var) not in reached:
            warnings.warn(
                f"observed variable {var.name!r} is connected to no unobserved variable: its "
                "density is a constant, and its data say nothing about the model; leave it out "
                "of observed, or write it with the variables it measures",
                ModelWarning,
                stacklevel=user_stacklevel(),
            )


def _observed_value(var: Variable, data, shared: dict[Variable, np.ndarray]):
    """An observation given as an Aesara shared variable or constant, as its value (a shared
    one is recorded with the model's shared data, whose changes a sampler refuses)."""
    from aesara.compile.sharedvalue import SharedVariable

    if isinstance(data, SharedVariable):
        shared[data] = np.array(data.get_value(borrow=True), copy=True)
        return shared[data]
    if isinstance(data, Constant):
        return data.data
    if isinstance(data, Variable):
        raise ModelError(
            var.name or str(var),
            "observed data must be an array (or an Aesara shared variable or constant), got a "
            "graph computed from other variables",
        )
    return data


def _value_transforms(latent_rvs, latent_originals, ordered) -> dict[Variable, Any]:
    """Each latent's transform to unconstrained space: aeppl's default, or `OrderedTransform`
    for the latents named in ``ordered`` (checked to be real-valued vectors)."""
    if isinstance(ordered, (str, Variable)):
        ordered = [ordered]
    by_name = {rv.name: rv for rv in latent_rvs}
    by_original = dict(zip(latent_originals, latent_rvs))
    transforms = {rv: default_transform(rv) for rv in latent_rvs}
    for item in ordered:
        rv = by_name.get(item) if isinstance(item, str) else by_original.get(item)
        label = item if isinstance(item, str) else (item.name or repr(item))
        if rv is None:
            raise ModelError(
                str(label),
                "named in `ordered`, but it is not a latent variable of the model (latents: "
                f"{', '.join(by_name)})",
            )
        op = rv.owner.op
        static = rv.type.shape
        if (
            not isinstance(op, RandomVariable)
            or op.ndim_supp != 0
            or is_discrete(rv)
            or transforms[rv] is not None
        ):
            raise ModelError(
                rv.name,
                "only a continuous univariate distribution on the whole real line (e.g. normal, "
                "student-t, cauchy) can be ordered; its values are constrained to increase along "
                "the last axis",
            )
        if rv.ndim == 0 or (static[-1] is not None and static[-1] < 2):
            raise ModelError(rv.name, "an ordered variable needs a last axis of length 2 or more")
        transforms[rv] = OrderedTransform()
    return transforms


def _derived_quantities(model, latent_originals, value_vars, observed_constants) -> list[Derived]:
    """The model's derived quantities in the latents' values, the data and the discrete draws."""
    if not model.derived:
        return []
    stand_ins = {}
    for original in _discrete_originals(model):
        stand_ins[original] = original.type()
        stand_ins[original].name = original.name
    return derived_graphs(
        model.derived,
        {**dict(zip(latent_originals, value_vars)), **observed_constants},
        stand_ins,
        [shape_of(v) for v in model.derived],
    )


def _describe_computation(var: Variable) -> str:
    """``"indexing of I, N"``-style words for the operation that computes ``var``."""
    node = var.owner
    if node is None:
        return "a constant"
    names = [v.name for v in ancestors(node.inputs) if v.name and v.owner is not None]
    if "Subtensor" in type(node.op).__name__:
        what = "indexing"
    else:
        what = f"the operation {describe_operation(node.op)}"
    used = sorted(set(names))
    return what + (f" of {', '.join(used)}" if used else "")


def _latent_shapes(latent_rvs, latent_originals, transforms):
    """Static shapes of the latents in their own and in unconstrained space (one prior draw)."""
    outs = []
    for rv, original in zip(latent_rvs, latent_originals):
        transform = transforms[rv]
        outs.append(original.shape)
        value = (
            original if transform is None else transform.forward(original, *original.owner.inputs)
        )
        outs.append(value.shape)
    fn = aesara.function([], outs, mode=python_mode())  # (nothing to compile for a shape)
    values = [tuple(int(s) for s in v) for v in fn()]
    return values[0::2], values[1::2]
