"""Every operation a model is written with either runs in both loops or is refused by name.

The scan loop batches one chain's graph over chains (`aemix.vectorize`); the fused loop lowers it to
scalar code (`aemix.scalarize`).  Each check below takes a one-chain graph of an input vector ``x``
and requires that (a) its batched graph equals the one-chain graph evaluated chain by chain, and
(b) its lowering equals it too, or the lowering is refused with a `LoweringError` naming the
operation (which ``explain()`` shows, and which sends ``loop="auto"`` to the scan).  The graphs are
aeppl's log-densities of every distribution aeppl supports (gathered from its ``_logprob``
registry, so a new one fails here until it has parameters below), each Op that appears in them, and
the tensor operations models are written with.  The models at the end are sampled briefly in both
loops, and their log-density at the kept draws compared with the one-chain log-density.
"""

import importlib

import aesara
import aesara.scalar as aes
import aesara.tensor as at
import arviz as az
import numpy as np
import pytest
from aesara.graph.basic import graph_inputs, io_toposort
from aesara.tensor.elemwise import Elemwise
from aesara.tensor.random.op import RandomVariable
from aesara.tensor.sort import SortOp
from aesara.tensor.special import Softmax, log_softmax, softmax

import aemix
from aemix.errors import describe_operation
from aemix.scalarize import LoweringError, lower_node, lower_to_scalars
from aemix.vectorize import batch_node, vectorize_graph

PY = aesara.compile.mode.Mode(linker="py", optimizer=None)
X_LENGTH = 4
CHAINS = np.random.default_rng(0).normal(scale=0.3, size=(3, X_LENGTH))


def _pos(x, k):
    return at.exp(0.2 * x[k])


def _unit(x, k):
    return at.sigmoid(x[k])


def _simplex(v):
    # The Op itself: `softmax` of a vector warns that it no longer makes it a row.
    return Softmax(axis=-1)(v)


def _cov(x):
    return at.stack([at.stack([_pos(x, 0), 0.3]), at.stack([0.3, _pos(x, 1)])])


# name -> (parameters, value), each a function of one chain's ``x`` (values in the support).
DISTRIBUTIONS = {
    "uniform": (lambda x: (-1 - _pos(x, 0), 2 + _pos(x, 1)), lambda x: 0.3 * x[2]),
    "normal": (lambda x: (x[0], _pos(x, 1)), lambda x: x[2]),
    "halfnormal": (lambda x: (0.1 * x[0], _pos(x, 1)), lambda x: 1 + _pos(x, 2)),
    "beta": (lambda x: (_pos(x, 0), _pos(x, 1)), lambda x: _unit(x, 2)),
    "exponential": (lambda x: (_pos(x, 0),), lambda x: _pos(x, 1)),
    "laplace": (lambda x: (x[0], _pos(x, 1)), lambda x: x[2]),
    "lognormal": (lambda x: (x[0], _pos(x, 1)), lambda x: _pos(x, 2)),
    "pareto": (lambda x: (1 + _pos(x, 0), _pos(x, 1)), lambda x: _pos(x, 1) + _pos(x, 2)),
    "cauchy": (lambda x: (x[0], _pos(x, 1)), lambda x: x[2]),
    "halfcauchy": (lambda x: (0.1 * x[0], _pos(x, 1)), lambda x: 1 + _pos(x, 2)),
    "gamma": (lambda x: (_pos(x, 0), _pos(x, 1)), lambda x: _pos(x, 2)),
    "invgamma": (lambda x: (_pos(x, 0), _pos(x, 1)), lambda x: _pos(x, 2)),
    "chisquare": (lambda x: (3 * _pos(x, 0),), lambda x: _pos(x, 1)),
    "wald": (lambda x: (_pos(x, 0), _pos(x, 1)), lambda x: _pos(x, 2)),
    "weibull": (lambda x: (_pos(x, 0),), lambda x: _pos(x, 1)),
    "vonmises": (lambda x: (x[0], _pos(x, 1)), lambda x: 0.5 * x[2]),
    "triangular": (
        lambda x: (-1 - _pos(x, 0), 0.2 * x[2], 2 + _pos(x, 1)),
        lambda x: 0.2 * x[3],
    ),
    "gumbel": (lambda x: (x[0], _pos(x, 1)), lambda x: x[2]),
    "logistic": (lambda x: (x[0], _pos(x, 1)), lambda x: x[2]),
    "binomial": (lambda x: (10, _unit(x, 0)), lambda x: np.int64(4)),
    "beta_binomial": (lambda x: (10, _pos(x, 0), _pos(x, 1)), lambda x: np.int64(4)),
    "bernoulli": (lambda x: (_unit(x, 0),), lambda x: np.int64(1)),
    "poisson": (lambda x: (3 * _pos(x, 0),), lambda x: np.int64(2)),
    "nbinom": (lambda x: (2 * _pos(x, 0), _unit(x, 1)), lambda x: np.int64(3)),
    "geometric": (lambda x: (_unit(x, 0),), lambda x: np.int64(2)),
    # Integer parameters only: nothing depends on x (checked all the same).
    "hypergeometric": (lambda x: (5, 7, 6), lambda x: np.int64(3)),
    "integers": (lambda x: (0, 5), lambda x: np.int64(3)),
    "t": (lambda x: (3 * _pos(x, 0), x[1], _pos(x, 2)), lambda x: x[3]),
    "categorical": (lambda x: (_simplex(x[:3]),), lambda x: np.int64(1)),
    "multivariate_normal": (lambda x: (x[:2], _cov(x)), lambda x: x[2:4]),
    "dirichlet": (lambda x: (at.exp(0.2 * x[:3]),), lambda x: _simplex(x[1:4])),
    "multinomial": (lambda x: (5, _simplex(x[:3])), lambda x: np.array([1, 2, 2])),
}


def aeppl_distributions() -> dict[str, RandomVariable]:
    """Every `RandomVariable` aeppl has a log-density for, by name (its Aesara instance)."""
    registry = importlib.import_module("aeppl.logprob")._logprob.registry
    classes = {
        k
        for k in registry
        if isinstance(k, type) and issubclass(k, RandomVariable) and k is not RandomVariable
    }
    basic = importlib.import_module("aesara.tensor.random.basic")
    found = {}
    for name in dir(basic):
        op = getattr(basic, name)
        if type(op) in classes and not type(op).__name__.startswith("Transformed"):
            found[op.name] = op
    return found


def density_graph(name: str):
    """``(x, logp)``: the log-density of distribution ``name`` at a value, both from ``x``."""
    x = at.vector("x", dtype="float64")
    params, value = DISTRIBUTIONS[name]
    op = aeppl_distributions()[name]
    rv = op(*params(x), rng=aesara.shared(np.random.default_rng(0)))
    value = at.as_tensor_variable(value(x))
    logp = importlib.import_module("aeppl").logprob(rv, value)
    return x, at.sum(logp)


def per_chain(inputs, out, values) -> np.ndarray:
    """``out`` evaluated at each chain's ``values`` (one tuple per chain, one entry per input)."""
    fn = aesara.function(inputs, out, mode=PY, on_unused_input="ignore")
    return np.stack([np.asarray(fn(*chain)) for chain in values])


def check_batched(inputs, out, values, expected) -> None:
    batched_inputs = [at.tensor(v.type.dtype, shape=(None, *v.type.shape)) for v in inputs]
    (batched,) = vectorize_graph([out], dict(zip(inputs, batched_inputs)))
    fn = aesara.function(batched_inputs, batched, mode=PY, on_unused_input="ignore")
    got = fn(*[np.stack(column) for column in zip(*values)])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def check_lowered(inputs, out, values, expected) -> str | None:
    """Compare the lowering with ``expected``; the refusal's message where it is refused."""
    shapes = [np.shape(v) for v in values[0]]
    try:
        graph = lower_to_scalars(inputs, shapes, [out])
    except LoweringError as exc:
        return str(exc)
    scalars = [e for array in graph.inputs for e in array.flat]
    outputs = list(graph.outputs[0].flat)
    outputs = [o if o.owner is not None and o not in scalars else aes.identity(o) for o in outputs]
    composite = aes.Composite(scalars, outputs)
    for chain, want in zip(values, expected):
        with np.errstate(all="ignore"):
            got = composite.impl(*[e for v in chain for e in np.ravel(v)])
        got = np.array(got if isinstance(got, list | tuple) else [got]).reshape(np.shape(want))
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    return None


def check_graph(x, out) -> str | None:
    """Batch and lower ``out``, a graph of one chain's ``x``; the lowering's refusal, if any."""
    values = [(chain,) for chain in CHAINS]
    expected = per_chain([x], out, values)
    check_batched([x], out, values, expected)
    return check_lowered([x], out, values, expected)


def names_an_operation(refusal: str, out) -> bool:
    """Whether ``refusal`` names an operation of the graph of ``out`` in plain words."""
    ops = [n.op for n in io_toposort(graph_inputs([out]), [out])]
    words = {describe_operation(op) for op in ops}
    words |= {describe_operation(op.scalar_op) for op in ops if isinstance(op, Elemwise)}
    return any(word in refusal for word in words)


def test_every_aeppl_distribution_has_parameters_here():
    assert set(aeppl_distributions()) == set(DISTRIBUTIONS)


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_aeppl_density_batches_and_lowers(name):
    x, logp = density_graph(name)
    refusal = check_graph(x, logp)
    assert refusal is None or names_an_operation(refusal, logp), refusal


def _ops_in_densities() -> dict[str, str]:
    """Each Op (an `Elemwise` by its scalar op) of aeppl's densities: the distribution whose
    density first uses it."""
    found: dict[str, str] = {}
    for name in sorted(DISTRIBUTIONS):
        x, logp = density_graph(name)
        for node in io_toposort([x], [logp]):
            op = node.op
            key = type(op.scalar_op if isinstance(op, Elemwise) else op).__name__
            found.setdefault(key, name)
    return found


OPS_IN_DENSITIES = _ops_in_densities()


@pytest.mark.parametrize("op_name", sorted(OPS_IN_DENSITIES))
def test_op_of_aeppl_densities_batches_and_lowers_or_is_refused_by_name(op_name):
    # The op's first node in a density, on its own: its inputs, as the density computes them at
    # each chain's x, are the graph's inputs (constants where every chain has the same value).
    x, logp = density_graph(OPS_IN_DENSITIES[op_name])
    node = next(
        n
        for n in io_toposort([x], [logp])
        if type(n.op.scalar_op if isinstance(n.op, Elemwise) else n.op).__name__ == op_name
    )
    fn = aesara.function([x], node.inputs, mode=PY, on_unused_input="ignore")
    per_input = list(zip(*[fn(chain) for chain in CHAINS]))
    inputs, replaced, values = [], [], []
    for var, chains in zip(node.inputs, per_input):
        if all(np.array_equal(c, chains[0], equal_nan=True) for c in chains):
            replaced.append(at.constant(chains[0], dtype=var.type.dtype))
        else:
            fresh = at.tensor(var.type.dtype, shape=np.shape(chains[0]))
            inputs.append(fresh)
            replaced.append(fresh)
            values.append(chains)
    out = node.clone_with_new_inputs(replaced, strict=False).outputs[0]
    if not inputs:
        return  # nothing depends on the chain here
    if not out.type.dtype.startswith("float"):
        out = out.astype("float64")
    values = list(zip(*values))
    expected = per_chain(inputs, out, values)
    check_batched(inputs, out, values, expected)
    refusal = check_lowered(inputs, out, values, expected)
    assert refusal is None or names_an_operation(refusal, out), refusal


def _user_ops():
    """One-chain graphs of the tensor operations models are written with (inputs in range)."""
    M = np.random.default_rng(1).normal(size=(5, X_LENGTH))
    idx = np.array([0, 2, 2, 1, 3, 0])

    def outer(x):
        return at.outer(x, x[::-1] + 1.0)

    return {
        "softmax": lambda x: softmax(outer(x), axis=0),
        "softmax-all-axes": lambda x: softmax(outer(x), axis=None),
        "log_softmax": lambda x: log_softmax(outer(x), axis=-1),
        "sort": lambda x: at.sort(outer(x), axis=0),
        "sort-flattened": lambda x: at.sort(outer(x), axis=None),
        "argsort": lambda x: at.argsort(x).astype("float64"),
        "sigmoid": lambda x: at.sigmoid(x),
        "log1pexp": lambda x: at.log1pexp(3 * x),
        "softplus": lambda x: at.softplus(x),
        "logit": lambda x: at.log(at.sigmoid(x)) - at.log1p(-at.sigmoid(x)),
        "clip": lambda x: at.clip(x, -0.1, 0.2),
        "where": lambda x: at.where(x > 0, x, 0.5 * x),
        "switch": lambda x: at.switch(x > 0.1, at.exp(x), x**2),
        "index-by-data": lambda x: x[idx] * 2.0,
        "index-by-data-2d": lambda x: outer(x)[idx, idx[::-1]],
        "index-by-state": lambda x: x[at.argmax(x)] + x[at.argmin(x)],
        "concatenate": lambda x: at.concatenate([x, x[:2] * 3.0, at.as_tensor([1.0])]),
        "reshape": lambda x: outer(x).reshape((2, 8)).sum(axis=0),
        "max-min-axes": lambda x: at.stack([outer(x).max(axis=0), outer(x).min(axis=1)]),
        "argmax-axis": lambda x: at.argmax(outer(x), axis=1).astype("float64"),
        "mean-prod-var-std": lambda x: at.stack(
            [outer(x).mean(axis=0), outer(x).prod(axis=1), outer(x).var(axis=0), x.std() + x]
        ),
        "cumsum-cumprod": lambda x: at.cumsum(x) + at.cumprod(x + 1.0),
        "matmul-data-vector": lambda x: at.as_tensor(M) @ x,
        "matmul-matrix-matrix": lambda x: (outer(x) @ outer(x)).ravel(),
        "matmul-data-matrix": lambda x: (at.as_tensor(M) @ outer(x)).ravel(),
        "gammaln": lambda x: at.gammaln(at.exp(x)),
        "psi": lambda x: at.psi(at.exp(x)),
        "erf-erfc-erfcx": lambda x: at.erf(x) + at.erfc(x) + at.erfcx(x),
        "log1mexp": lambda x: at.log1mexp(-at.exp(x)),
        "log1p-expm1": lambda x: at.log1p(at.exp(x)) + at.expm1(x),
        "betaln": lambda x: at.gammaln(at.exp(x)) + at.gammaln(2.0) - at.gammaln(at.exp(x) + 2),
        "xlogy0-xlogx": lambda x: (
            at.xlogx.xlogy0(at.exp(x), at.exp(x[::-1])) + at.xlogx.xlogx(at.exp(x))
        ),
        "logsumexp": lambda x: at.logsumexp(outer(x), axis=0),
    }


USER_OPS = _user_ops()


@pytest.mark.parametrize("name", sorted(USER_OPS))
def test_user_operation_batches_and_lowers(name):
    x = at.vector("x", dtype="float64")
    out = USER_OPS[name](x)
    refusal = check_graph(x, out)
    if name == "index-by-state":
        # An index computed from the state: refused, and named.
        assert refusal is not None and "index" in refusal, refusal
    else:
        assert refusal is None, refusal


@pytest.mark.filterwarnings("ignore:Rewrite warning.*i0")  # (Aesara's, on compiling the scan)
def test_an_operation_without_c_code_is_refused_by_name_in_explain():
    srng = at.random.RandomStream(0)
    z = srng.normal(0.0, 1.0, name="z")
    # Bessel's i0 has no C implementation in Aesara: the fused loop cannot run it.
    y = srng.normal(at.i0(z), 1.0, name="y")
    sampler = aemix.build_sampler({"y": y}, observed={y: 1.2})
    assert "i0 has no C implementation" in sampler.explain().splitlines()[-1]
    result = sampler.sample(10, n_chains=3, warmup=10, seed=0, start="prior", diagnose=False)
    assert result.loop == "scan"


class _FragileSort(SortOp):
    """A sort whose rules (registered below, for this class only) fail as a buggy rule would."""


@lower_node.register(_FragileSort)
def _broken_lowering(op, node, inputs, budget):
    raise IndexError("index 20 is out of bounds for axis 0 with size 20")


@batch_node.register(_FragileSort)
def _broken_batching(op, node, ctx, *inputs):
    raise AssertionError("a case the rule did not foresee")


def test_an_internal_failure_of_a_lowering_rule_is_a_refusal():
    x = at.vector("x")
    out = _FragileSort("quicksort")(x, at.constant(-1)).sum()
    with pytest.raises(LoweringError, match=r"failed \(IndexError: index 20"):
        lower_to_scalars([x], [(3,)], [out])


def test_an_internal_failure_of_a_batching_rule_maps_the_node_over_chains():
    x = at.vector("x", dtype="float64")
    out = _FragileSort("quicksort")(x, at.constant(-1)) * at.arange(X_LENGTH)
    assert check_graph(x, out) is not None  # (refused: the lowering fails too)


# -- models, sampled in both loops ------------------------------------------------------------

rng = np.random.default_rng(2)
X = rng.normal(size=(15, 2))


def logistic_regression():
    srng = at.random.RandomStream(0)
    alpha = srng.normal(0.0, 2.0, name="alpha")
    beta = srng.normal(0.0, 2.0, size=2, name="beta")
    y = srng.bernoulli(at.sigmoid(alpha + at.as_tensor(X) @ beta), name="y")
    return {"y": y}, {y: rng.integers(0, 2, size=15)}


def softmax_regression():
    srng = at.random.RandomStream(0)
    beta = srng.normal(0.0, 2.0, size=(2, 3), name="beta")
    y = srng.categorical(softmax(at.as_tensor(X) @ beta, axis=-1), name="y")
    return {"y": y}, {y: rng.integers(0, 3, size=15)}


def hierarchical_with_index():
    srng = at.random.RandomStream(0)
    group = np.array([0, 1, 2, 1, 0, 2, 2, 1, 0, 0, 1, 2, 1, 2, 0, 1, 2, 0, 1, 2])
    mu = srng.normal(0.0, 3.0, name="mu")
    mu_g = srng.normal(mu, 1.0, size=3, name="mu_g")
    y = srng.normal(mu_g[group], 0.7, name="y")
    return {"y": y}, {y: rng.normal(size=20)}


def sort_clip_concatenate():
    srng = at.random.RandomStream(0)
    m = srng.normal(0.0, 1.0, size=3, name="m")
    loc = at.concatenate([at.sort(m), at.clip(m, -0.5, 0.5)])
    y = srng.normal(loc, 1.0, name="y")
    return {"y": y}, {y: rng.normal(size=6)}


MODELS = {
    "logistic": logistic_regression,
    "softmax": softmax_regression,
    "hierarchical": hierarchical_with_index,
    "sort-clip-concatenate": sort_clip_concatenate,
}


@pytest.mark.parametrize("loop", ["scan", "fused"])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_model_samples_and_its_logdensity_per_chain_is_the_one_chain_logdensity(model, loop):
    outputs, observed = MODELS[model]()
    mode = "FAST_COMPILE" if loop == "scan" else None
    sampler = aemix.build_sampler(outputs, observed=observed, mode=mode)
    assert sampler.explain().splitlines()[-1].startswith(f"loop: {loop}")
    result = sampler.sample(
        10, n_chains=3, warmup=10, seed=1, start="prior", loop=loop, diagnose=False
    )
    assert result.loop == loop
    # Every latent is unconstrained (no Jacobian): the kept log-density is the model's.
    for chain in range(3):
        for draw in (0, 9):
            values = {name: result.draws[name][chain, draw] for name in sampler.latent}
            np.testing.assert_allclose(
                result.logdensity[chain, draw], sampler.logdensity(values), rtol=1e-10
            )


def test_a_regression_written_with_matmul_has_its_density_and_samples():
    """``at.matmul(X, beta)`` is its own Op in Aesara (not ``dot``, which ``@`` gives), with no
    gradient; the model's ``matmul`` of matrices and vectors is read as the ``dot`` it equals."""
    import scipy.stats as st

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    data = X @ np.array([1.0, -0.5, 0.2]) + rng.normal(size=30)
    srng = at.random.RandomStream(0)
    beta = srng.normal(0.0, 1.0, size=3, name="beta")
    y = srng.normal(at.matmul(X, beta), 1.0, name="y")
    sampler = aemix.build_sampler(y, observed={y: data}, mode="FAST_COMPILE")
    b = np.array([0.3, 0.1, -0.4])
    expected = st.norm().logpdf(b).sum() + st.norm(X @ b, 1.0).logpdf(data).sum()
    np.testing.assert_allclose(sampler.logdensity({"beta": b}), expected, rtol=1e-12)
    # The conjugate posterior mean, within 5 Monte Carlo standard errors (ArviZ's, per chain).
    precision = np.eye(3) + X.T @ X
    mean = np.linalg.solve(precision, X.T @ data)
    for kernel in ("rmh", "mala"):
        result = sampler.sample(1000, n_chains=8, seed=1, kernel=kernel)
        draws = np.asarray(result.draws["beta"])
        error = np.asarray(az.mcse(az.convert_to_dataset(draws)).x)
        np.testing.assert_array_less(np.abs(draws.mean((0, 1)) - mean), 5 * error)
