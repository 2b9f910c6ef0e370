"""Intake: what `build_sampler` and the `Sampler`'s entry points accept, checked before any compiling.

The first stage of the pipeline.  It turns the user's ``outputs`` into a list of variables, names every
random variable, and checks what the user hands in against the model:

* observed data: numeric, real, finite, representable in the variable's dtype, and inside the support
  of its distribution (`check_observed`);
* constant parameters: inside their domain (`check_parameters`), so that aeppl's run-time parameter
  checks cannot fire on them later with an Aesara apply-node dump;
* names: unique over the latent, marginalized and observed variables (`check_unique_names`);
* values given to `Sampler.logdensity` or as initial values (`value_array`, `support_of`).

Supports and parameter domains come from one table keyed by the `RandomVariable` op class (`_RULES`),
written after aeppl's densities (aeppl's switch to ``-inf`` defines the support).  A parameter that is
not a constant (it depends on another random variable, or is a shared variable) is unknown: the rules
that need it are skipped and aeppl's density is the only check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aesara
import aesara.tensor as at
import aesara.tensor.random.basic as arb
import numpy as np
from aesara.graph.basic import Constant, Variable, ancestors, graph_inputs
from aesara.tensor.random.op import RandomVariable

from aemix.compilation import function as compile_function
from aemix.errors import ModelError, ValuesError

__all__ = [
    "as_variable_list",
    "assign_names",
    "check_observed",
    "check_parameters",
    "check_unique_names",
    "guarded_variables",
    "random_variables",
    "support_of",
    "value_array",
]

# How far a Dirichlet value's sum may stray from one (rounding of data written with ~16 digits).
SIMPLEX_TOLERANCE = 1e-8


# -- outputs and names ---------------------------------------------------------------------------


def as_variable_list(outputs) -> list[Variable]:
    """``outputs`` (a variable, a sequence or a mapping ``name -> variable``) as a list.

    Raises
    ------
    ModelError
        If an element is not an Aesara variable.
    """
    if isinstance(outputs, Variable):
        return [outputs]
    if isinstance(outputs, Mapping):
        items = []
        for name, var in outputs.items():
            if not isinstance(var, Variable):
                raise ModelError(
                    str(name), f"expected an Aesara variable, got {type(var).__name__}"
                )
            if var.name is not None and var.name != str(name):
                raise ModelError(
                    str(name),
                    f"this output key names the variable {var.name!r}, and results are keyed by "
                    f"the variables' names: use the key {var.name!r}, or rename the variable "
                    f"({var.name}.name = {str(name)!r}) before building",
                )
            var.name = str(name)
            items.append(var)
        return items
    if isinstance(outputs, Sequence) and not isinstance(outputs, str):
        for i, var in enumerate(outputs):
            if not isinstance(var, Variable):
                raise ModelError(
                    f"outputs[{i}]", f"expected an Aesara variable, got {type(var).__name__}"
                )
        return list(outputs)
    raise ModelError(
        "outputs", f"expected an Aesara variable or a list of them, got {type(outputs).__name__}"
    )


def shared_data(outputs: list[Variable]) -> dict[Variable, np.ndarray]:
    """The shared variables (``aesara.shared``: covariates, data, prior scales; not random
    generators) that the graph of ``outputs`` reads, each with a copy of its value now.

    aemix compiles a model with these values as constants (`aemix.marginalize`), and a sampler
    refuses to run once one has changed (`Sampler`): the model it would sample is not the one
    it was built for."""
    from aesara.compile.sharedvalue import SharedVariable
    from aesara.tensor.random.var import (
        RandomGeneratorSharedVariable,
        RandomStateSharedVariable,
    )

    found = {}
    for v in ancestors(outputs):
        if isinstance(v, SharedVariable) and not isinstance(
            v, (RandomGeneratorSharedVariable, RandomStateSharedVariable)
        ):
            found[v] = np.array(v.get_value(borrow=True), copy=True)
    return found


def random_variables(outputs: list[Variable]) -> list[Variable]:
    """Every random variable upstream of ``outputs`` (their default outputs), in graph order."""
    return [
        v
        for v in ancestors(outputs)
        if v.owner is not None
        and isinstance(v.owner.op, RandomVariable)
        and v is v.owner.default_output()
    ]


def _name_from_frame(var: Variable, frame) -> str | None:
    """The identifier the caller bound ``var`` to (``Y_rv`` -> ``Y``), if any."""
    for scope in (frame.f_locals, frame.f_globals):
        for key, value in scope.items():
            if value is var and not key.startswith("_"):
                return key[:-3] if key.endswith("_rv") and len(key) > 3 else key
    return None


def assign_names(variables: list[Variable], frame) -> None:
    """Give every unnamed variable a name: the caller's identifier for it, or ``<dist>_<k>`` for a
    random variable (``var_<k>`` for another output, e.g. a derived quantity)."""
    taken = {v.name for v in variables if v.name}
    counters: dict[str, int] = {}
    for var in variables:
        if var.name:
            continue
        name = _name_from_frame(var, frame) if frame is not None else None
        if name is None or name in taken:
            op = getattr(var.owner, "op", None)
            # (an Aesara Op's own name, e.g. "Elemwise{mul,no_inplace}", would read as internals)
            base = op.name if isinstance(op, RandomVariable) and op.name else "var"
            k = counters.get(base, 0)
            while f"{base}_{k}" in taken:
                k += 1
            counters[base] = k + 1
            name = f"{base}_{k}"
        var.name = name
        taken.add(name)


def check_unique_names(groups: Mapping[str, Iterable[Variable]]) -> None:
    """Refuse two distinct variables with one name, across the roles in ``groups``.

    Names are the keys of the results (``draws``, ``observed``) and of `Sampler.logdensity`'s values,
    so a shared name would silently drop one variable.  Checked once every name is final, that is
    after marginalization, over e.g. ``{"latent": ..., "marginalized": ..., "observed": ...}``.

    Raises
    ------
    ModelError
        Naming the shared name and the two roles.
    """
    seen: dict[str, tuple[Variable, str]] = {}
    for role, variables in groups.items():
        for var in variables:
            if var.name in seen and seen[var.name][0] is not var:
                other_role = seen[var.name][1]
                if other_role == role:
                    kinds = f"two {role} variables"
                else:
                    kinds = f"a {other_role} and a {role} variable"
                raise ModelError(
                    var.name, f"{kinds} share this name; give each variable a distinct name"
                )
            seen.setdefault(var.name, (var, role))


# -- parameters and supports ---------------------------------------------------------------------

# ``inside(value, params)``: elementwise mask of ``value`` in the support, or a scalar bool; a
# parameter is ``None`` where it is not a constant (the rule then checks what it can without it).
Inside = Callable[[np.ndarray, "list[np.ndarray | None]"], Any]


@dataclass(frozen=True)
class _Parameter:
    name: str
    valid: Callable[[np.ndarray], np.ndarray]
    domain: str  # completes "parameter <name> must be ..."


@dataclass(frozen=True)
class _Rule:
    """Support and parameter domains of one distribution, after aeppl's density."""

    support: str
    parameters: tuple[_Parameter | None, ...]
    inside: Inside | None = None
    simplex: bool = False


def _positive(name: str) -> _Parameter:
    return _Parameter(name, lambda a: a > 0, "positive")


def _non_negative(name: str) -> _Parameter:
    return _Parameter(name, lambda a: a >= 0, "non-negative")


def _probability(name: str) -> _Parameter:
    return _Parameter(name, lambda a: (a >= 0) & (a <= 1), "in [0, 1]")


def _count(name: str) -> _Parameter:
    return _Parameter(name, lambda a: (a >= 0) & (a == np.round(a)), "a non-negative integer")


def _multinomial_counts(v, p):
    if not _known(p[0]) or v.ndim == 0:
        return v >= 0
    return (v >= 0) & (v.sum(axis=-1) == p[0])[..., None]


def _known(*params) -> bool:
    return all(p is not None for p in params)


def _at_least(i: int) -> Inside:
    return lambda v, p: v >= p[i] if _known(p[i]) else True


def _between(i: int, j: int, upper_open: bool = False) -> Inside:
    def inside(v, p):
        lower = v >= p[i] if _known(p[i]) else True
        if not _known(p[j]):
            return lower
        return lower & ((v < p[j]) if upper_open else (v <= p[j]))

    return inside


def _categories(v, p):
    # K comes from the constant probabilities, else from their static shape.
    k = p[0].shape[-1] if _known(p[0]) else p[-1]
    return (v >= 0) & (v < k) if k is not None else v >= 0


def _positive_unless_shape(i: int, shape: float) -> Inside:
    """Positive values, and 0 too where the constant shape parameter ``p[i]`` is ``shape`` (at 0 the
    density is finite for that shape only: infinite below it, 0 above it)."""

    def inside(v, p):
        if not _known(p[i]):
            return v > 0
        return (v > 0) | ((v == 0) & (p[i] == shape))

    return inside


def _hypergeometric(v, p):
    if not _known(p[0], p[1], p[2]):
        return v >= 0
    return (v >= np.maximum(0, p[2] - p[1])) & (v <= np.minimum(p[2], p[0]))


_POSITIVE_UNLESS = (
    "positive reals: at 0 the density is 0 or infinite, by the parameters (0 is in it only "
    "where %s)"
)
_REAL = "real numbers"
_RULES: dict[type, _Rule] = {
    arb.NormalRV: _Rule(_REAL, (None, _positive("sigma"))),
    arb.CauchyRV: _Rule(_REAL, (None, _positive("beta"))),
    arb.LaplaceRV: _Rule(_REAL, (None, _positive("b"))),
    arb.GumbelRV: _Rule(_REAL, (None, _positive("beta"))),
    arb.LogisticRV: _Rule(_REAL, (None, _positive("s"))),
    arb.StudentTRV: _Rule(_REAL, (_positive("nu"), None, _non_negative("scale"))),
    arb.HalfNormalRV: _Rule("values >= loc", (None, _positive("sigma")), _at_least(0)),
    arb.HalfCauchyRV: _Rule("values >= loc", (None, _positive("beta")), _at_least(0)),
    arb.LogNormalRV: _Rule("positive reals", (None, _positive("sigma")), lambda v, p: v > 0),
    arb.ExponentialRV: _Rule("non-negative reals", (_positive("mu"),), lambda v, p: v >= 0),
    arb.GammaRV: _Rule(
        _POSITIVE_UNLESS % "alpha is 1",
        (_positive("alpha"), _positive("scale")),
        _positive_unless_shape(0, 1.0),
    ),
    arb.ChiSquareRV: _Rule(
        _POSITIVE_UNLESS % "df is 2", (_positive("df"),), _positive_unless_shape(0, 2.0)
    ),
    # At 0 the Weibull density is 0 or infinite, and aeppl's is not a number where c is 1; the
    # inverse gamma density is 0 whatever its parameters.
    arb.WeibullRV: _Rule(
        "positive reals: at 0 the density is 0 or infinite, by the parameters",
        (_positive("c"),),
        lambda v, p: v > 0,
    ),
    arb.InvGammaRV: _Rule(
        "positive reals", (_positive("alpha"), _positive("beta")), lambda v, p: v > 0
    ),
    arb.WaldRV: _Rule("positive reals", (_positive("mu"), _positive("scale")), lambda v, p: v > 0),
    arb.ParetoRV: _Rule("values >= m", (_positive("alpha"), _positive("m")), _at_least(1)),
    # Open: at 0 or 1 the beta density is 0 or infinite, as its parameters make it.
    arb.BetaRV: _Rule(
        "(0, 1), without its ends, where the density is 0 or infinite by the parameters",
        (_positive("alpha"), _positive("beta")),
        lambda v, p: (v > 0) & (v < 1),
    ),
    arb.UniformRV: _Rule("[low, high]", (None, None), _between(0, 1)),
    arb.VonMisesRV: _Rule(
        "[-pi, pi]", (None, _positive("kappa")), lambda v, p: (v >= -np.pi) & (v <= np.pi)
    ),
    arb.DirichletRV: _Rule("the simplex", (_positive("alpha"),), simplex=True),
    arb.PoissonRV: _Rule("non-negative integers", (_non_negative("mu"),), lambda v, p: v >= 0),
    arb.BinomialRV: _Rule("integers 0..n", (_count("n"), _probability("p")), _between(-1, 0)),
    arb.BetaBinomialRV: _Rule(
        "integers 0..n",
        (_count("n"), _positive("alpha"), _positive("beta")),
        _between(-1, 0),
    ),
    arb.MultinomialRV: _Rule(
        "non-negative integers summing to n along the last axis",
        (_count("n"), _probability("p")),
        _multinomial_counts,
    ),
    arb.BernoulliRV: _Rule("0 or 1", (_probability("p"),), lambda v, p: (v == 0) | (v == 1)),
    arb.GeometricRV: _Rule("integers >= 1", (_probability("p"),), lambda v, p: v >= 1),
    arb.NegBinomialRV: _Rule(
        "non-negative integers", (_positive("n"), _probability("p")), lambda v, p: v >= 0
    ),
    arb.CategoricalRV: _Rule("integers 0..K-1", (_probability("p"),), _categories),
    arb.HyperGeometricRV: _Rule(
        "integers max(0, nsample - nbad)..min(nsample, ngood)",
        (_count("ngood"), _count("nbad"), _count("nsample")),
        _hypergeometric,
    ),
    arb.TriangularRV: _Rule("[left, right]", (None, None, None), _between(0, 2)),
    arb.IntegersRV: _Rule("integers low..high-1", (None, None), _between(0, 1, upper_open=True)),
}
# ``_between(-1, 0)`` reads its lower bound from the extra parameter 0 appended by `_Support`.


def _constant_value(param: Variable) -> np.ndarray | None:
    """The value of a parameter graph made of constants only, else ``None`` (it may change)."""
    if isinstance(param, Constant):
        return np.asarray(param.data)
    if not all(isinstance(r, Constant) for r in graph_inputs([param])):
        return None
    fn = compile_function(
        [], param, mode=aesara.compile.mode.Mode(linker="py", optimizer="fast_compile")
    )
    return np.asarray(fn())


def _first_index(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(~mask)[0])


def _where(index: tuple[int, ...]) -> str:
    return f" at index {index}" if index else ""


@dataclass(frozen=True)
class _Support:
    """The support of one random variable, with its constant parameters evaluated once."""

    distribution: str
    rule: _Rule
    params: list[np.ndarray | None]

    def violation(self, value: np.ndarray) -> str | None:
        """Why ``value`` (of the variable's shape) is outside the support, or ``None``.

        The reason names the first offending element, e.g. ``"value -1 at index (3,) is outside
        the support of poisson (non-negative integers)"``.
        """
        value = np.asarray(value)
        if self.rule.simplex:
            return self._simplex_violation(value)
        if self.rule.inside is None:
            return None
        with np.errstate(invalid="ignore"):
            mask = np.broadcast_to(np.asarray(self.rule.inside(value, self.params)), value.shape)
        if mask.all():
            return None
        index = _first_index(mask)
        if self.distribution == "multinomial" and _known(self.params[0]) and value[index] >= 0:
            total = value.sum(axis=-1)[index[:-1]]
            n = np.broadcast_to(self.params[0], value.shape[:-1])[index[:-1]]
            return (
                f"values{_where(index[:-1])} sum to {total!r} along the last axis, not n = {n!r} "
                "(a multinomial's counts add up to its number of trials)"
            )
        return (
            f"value {value[index]!r}{_where(index)} is outside the support of "
            f"{self.distribution} ({self.rule.support})"
        )

    def _simplex_violation(self, value: np.ndarray) -> str | None:
        if value.ndim == 0:
            return None
        non_negative = value >= 0
        if not non_negative.all():
            index = _first_index(non_negative)
            return (
                f"value {value[index]!r}{_where(index)} is negative; {self.distribution} values "
                "lie on the simplex (non-negative, summing to 1 along the last axis)"
            )
        sums = value.sum(axis=-1)
        on = np.abs(sums - 1) <= SIMPLEX_TOLERANCE
        if on.all():
            return None
        index = _first_index(np.asarray(on))
        return (
            f"values{_where(index)} sum to {sums[index]!r} along the last axis, not 1; "
            f"{self.distribution} values lie on the simplex (within {SIMPLEX_TOLERANCE:g})"
        )


def support_of(rv: Variable) -> _Support | None:
    """The support of ``rv`` as far as its constant parameters fix it; ``None`` if not tabled."""
    node = rv.owner
    rule = _RULES.get(type(node.op)) if node is not None else None
    if rule is None:
        return None
    params = [_constant_value(p) for p in node.inputs[3:]]
    if isinstance(node.op, arb.CategoricalRV):
        params.append(node.inputs[3].type.shape[-1])
    else:
        params.append(np.asarray(0))
    return _Support(node.op.name, rule, params)


def check_parameters(rvs: Iterable[Variable]) -> None:
    """Refuse a constant parameter outside its domain (``normal(0, -1)``), and a distribution
    aeppl has no density for.

    aeppl checks parameters when the density runs and raises ``ParameterValueError`` with an Aesara
    dump; a constant one is wrong for every value of the latents, so it is refused here, by name.

    Raises
    ------
    ModelError
        Naming the variable, the parameter and its first invalid value (or the distribution).
    """
    from aeppl.logprob import _logprob

    for rv in rvs:
        op = rv.owner.op
        if _logprob.dispatch(type(op)) is _logprob.dispatch(object):
            raise ModelError(
                rv.name or str(rv),
                f"aeppl has no density for the {op.name} distribution, so aemix cannot use it; "
                "write it with a distribution aeppl knows (or a transform of one)",
            )
        if isinstance(op, arb.MvNormalRV):
            _check_covariance(rv)
        rule = _RULES.get(type(op))
        if rule is None:
            continue
        for param, spec in zip(rv.owner.inputs[3:], rule.parameters):
            if spec is None:
                continue
            value = _constant_value(param)
            if value is None:
                continue
            with np.errstate(invalid="ignore"):
                valid = np.asarray(spec.valid(value))
            if valid.all():
                continue
            index = _first_index(valid)
            raise ModelError(
                rv.name or str(rv),
                f"parameter {spec.name} must be {spec.domain}, got {value[index]!r}"
                f"{_where(index)} (in {rv.owner.op.name})",
            )
        if isinstance(op, arb.CategoricalRV):
            _check_probabilities_sum_to_one(rv)


def check_constants(outputs: list[Variable], rvs: list[Variable]) -> None:
    """Refuse a NaN in a constant array of the model (a design matrix with a missing value): its
    densities would be NaN everywhere, and the sampler could only say that no starting point
    has a finite log-density.

    Raises
    ------
    ModelError
        Naming the random variable whose parameters read the constant, and the first NaN's index.
    """
    from aesara.tensor.var import TensorConstant

    shared = shared_data(outputs)
    for c in ancestors(outputs):
        if not isinstance(c, TensorConstant) and c not in shared:
            continue
        if getattr(c.type, "dtype", "")[:5] not in ("float", "compl"):
            continue
        data = np.asarray(shared[c] if c in shared else c.data)
        finite = ~np.isnan(data)
        if finite.all():
            continue
        reader = next(
            (rv for rv in rvs if c in ancestors(rv.owner.inputs[3:])), None
        )  # (the first random variable that reads it)
        index = _first_index(finite)
        what = f"a constant array of shape {data.shape}" if data.ndim else "a constant"
        if c in shared:
            what = f"the shared variable {c.name or ''!s}".rstrip() + f" (shape {data.shape})"
        raise ModelError(
            (reader.name or str(reader)) if reader is not None else (c.name or "a constant"),
            f"{what} in its parameters holds NaN{_where(index)} (a missing value?); drop or "
            "impute it before building the model",
        )


def _check_probabilities_sum_to_one(rv: Variable) -> None:
    """Refuse a categorical's constant probabilities that do not sum to one: aeppl's density
    normalizes them, Aesara's draws (the prior, the predictive draws) do not, so the two would
    disagree (``categorical([0.5, 0.6])`` draws 1 with probability 0.5, its density says 0.55)."""
    value = _constant_value(rv.owner.inputs[3])
    if value is None or value.ndim == 0:
        return
    # float32 constants (Aesara's cast of literals) round their sum at ~1e-7.
    tolerance = 1e-6 if value.dtype == np.float32 else SIMPLEX_TOLERANCE
    sums = np.sum(value, axis=-1)
    on = np.abs(sums - 1) <= tolerance
    if np.all(on):
        return
    index = _first_index(np.asarray(on))
    raise ModelError(
        rv.name or str(rv),
        f"its probabilities{_where(index)} sum to {np.asarray(sums)[index]!r}, not 1; divide "
        "them by their sum (p / p.sum(axis=-1, keepdims=True)) if they are weights",
    )


def _check_covariance(rv: Variable) -> None:
    """Refuse a multivariate normal's constant covariance that is not symmetric positive
    definite (its density, a Cholesky factor, is undefined for every value of the latents)."""
    cov = _constant_value(rv.owner.inputs[4])
    if cov is None or cov.ndim < 2:
        return
    if not np.allclose(cov, np.swapaxes(cov, -1, -2), rtol=1e-10, atol=1e-12):
        raise ModelError(
            rv.name or str(rv), "its covariance is not symmetric (cov != cov.T); it must be"
        )
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        smallest = float(np.min(np.linalg.eigvalsh(cov)))
        raise ModelError(
            rv.name or str(rv),
            f"its covariance is not positive definite (smallest eigenvalue {smallest:.3g})",
        ) from None


def guarded_variables(rvs: Iterable[Variable]) -> list[str]:
    """Names of the variables in ``rvs`` with a restricted parameter that is not a constant: those
    whose density's parameter check (aeppl's ``ParameterValueError``) can fail at run time."""
    names = []
    for rv in rvs:
        rule = _RULES.get(type(rv.owner.op))
        if rule is None:
            continue
        for param, spec in zip(rv.owner.inputs[3:], rule.parameters):
            if spec is not None and not all(isinstance(r, Constant) for r in graph_inputs([param])):
                names.append(rv.name or str(rv))
                break
    return names


# -- arrays from the user ------------------------------------------------------------------------


def _real_array(data: Any, dtype: str, fail: Callable[[str], Exception]) -> np.ndarray:
    """``data`` as a finite real array of ``dtype``; ``fail(reason)`` is raised otherwise."""
    if data is None:
        raise fail("got None, expected numbers")
    if np.ma.isMaskedArray(data) and np.ma.getmaskarray(data).any():
        # np.asarray would keep the values under the mask as data.
        index = _first_index(~np.ma.getmaskarray(data))
        raise fail(
            f"is a masked array with masked (missing) entries{_where(index)}; aemix does not "
            "impute missing data: leave those entries out of the observation"
        )
    try:
        array = np.asarray(data)
    except Exception as exc:  # noqa: BLE001 - report any conversion failure by the variable's name
        raise fail(f"cannot be converted to an array: {exc}") from exc
    if array.dtype.kind == "c":
        raise fail("is complex; only real numbers are accepted")
    if array.dtype.kind not in "biuf":
        raise fail(f"must be numeric, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        index = _first_index(np.isfinite(array))
        raise fail(
            f"contains a NaN or infinite value ({array[index]!r}){_where(index)}; values must "
            "be finite"
        )
    target = np.dtype(dtype)
    if target.kind in "iu":
        if not np.all(array == np.round(array)):
            index = _first_index(array == np.round(array))
            raise fail(f"has the non-integer {array[index]!r}{_where(index)}; it must be integers")
        # Compared as float before the cast: a cast would wrap a huge count to a negative one.
        info = np.iinfo(target)
        fits = (array >= info.min) & (array <= info.max)
        if not fits.all():
            index = _first_index(fits)
            raise fail(
                f"value {array[index]!r}{_where(index)} does not fit the variable's dtype {target}"
            )
    cast = array.astype(target)
    if target.kind == "f" and not np.all(np.isfinite(cast)):
        index = _first_index(np.isfinite(cast))
        raise fail(f"value {array[index]!r}{_where(index)} overflows the variable's dtype {target}")
    return cast


def check_observed(var: Variable, data: Any) -> Variable:
    """``data`` as a constant for the observed variable ``var``, after checking it fits ``var``.

    Raises
    ------
    ModelError
        Naming ``var``, if the data is not a finite real array of its shape and dtype, or an element
        lies outside the support of its distribution (by its constant parameters).
    """
    name = var.name or str(var)

    def fail(reason: str) -> ModelError:
        return ModelError(name, f"observed data {reason}")

    array = _real_array(data, var.type.dtype, fail)
    if array.ndim != var.ndim:
        raise fail(f"has {array.ndim} dimensions, the variable has {var.ndim}")
    for axis, (static, actual) in enumerate(zip(var.type.shape, array.shape)):
        if static is not None and static != actual:
            raise fail(f"has length {actual} on axis {axis}, expected {static}")
    support = support_of(var)
    if support is not None:
        reason = support.violation(array)
        if reason is not None:
            raise fail(reason)
    return at.as_tensor_variable(array)


def value_array(name: str, value: Any, dtype: str) -> np.ndarray:
    """A latent's value from the user (`Sampler.logdensity`, initial values) as a real array.

    Raises
    ------
    ValuesError
        Naming the variable, for None, complex, non-numeric or non-finite values.
    """
    return _real_array(value, dtype, lambda reason: ValuesError(name, f"value {reason}"))
