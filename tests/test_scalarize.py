import aesara
import aesara.scalar as aes
import aesara.tensor as at
import numpy as np
import pytest
from aesara.raise_op import Assert

from aemix.scalarize import LoopReduce, LoweringError, lower_to_scalars

FAST = aesara.compile.mode.Mode(linker="py", optimizer=None)


def evaluate(graph, values):
    """Evaluate every output of a lowered graph at ``values`` (one array per input) in Python."""
    inputs = [e for array in graph.inputs for e in array.flat]
    outputs = [e for array in graph.outputs for e in array.flat]
    outputs = [o if o.owner is not None and o not in inputs else aes.identity(o) for o in outputs]
    composite = aes.Composite(inputs, outputs)
    flat = [v for value in values for v in np.asarray(value, dtype=float).ravel()]
    with np.errstate(all="ignore"):
        results = composite.impl(*flat)
    results = results if isinstance(results, (list, tuple)) else [results]
    it = iter(results)
    return [np.array([next(it) for _ in a.flat]).reshape(a.shape) for a in graph.outputs]


def test_mixture_logdensity_lowers_and_matches_the_tensor_graph():
    x = at.vector("x")
    loc, scale = np.array([-2.0, 0.0, 3.2]), np.array([1.2, 1.0, 5.0])
    logw = np.log([0.2, 0.5, 0.3])
    terms = logw - at.log(scale) - 0.5 * at.log(2 * np.pi) - 0.5 * ((x[0] - loc) / scale) ** 2
    out = at.log(at.exp(terms - terms.max()).sum()) + terms.max()
    graph = lower_to_scalars([x], [(1,)], [out])
    assert graph.outputs[0].shape == ()
    # The constants are folded: what is left depends on x.
    assert graph.n_operations < 40
    f = aesara.function([x], out, mode=FAST)
    for value in np.linspace(-30, 30, 41):
        (got,) = evaluate(graph, [[value]])
        np.testing.assert_allclose(got, f([value]), rtol=1e-12)


def test_shapes_indexing_and_reductions():
    x = at.matrix("x")
    y = at.vector("y")
    joined = at.concatenate([x.reshape((6,)), y[::-1]])
    outs = [x.sum(axis=0), x.T[1:, ::2], joined.max(), at.stack([y[0], x[1, 2]]) * 2.0]
    graph = lower_to_scalars([x, y], [(2, 3), (2,)], outs)
    rng = np.random.default_rng(0)
    xv, yv = rng.normal(size=(2, 3)), rng.normal(size=2)
    expected = aesara.function([x, y], outs, mode=FAST)(xv, yv)
    for got, want in zip(evaluate(graph, [xv, yv]), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_cumulative_sums_and_products(axis):
    x = at.matrix("x")
    outs = [at.cumsum(x, axis=axis), at.cumprod(x, axis=axis), at.cumsum(at.exp(x[0, 1:]))]
    graph = lower_to_scalars([x], [(2, 3)], outs)
    xv = np.random.default_rng(1).normal(size=(2, 3))
    expected = aesara.function([x], outs, mode=FAST)(xv)
    for got, want in zip(evaluate(graph, [xv]), expected):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("length", [5, 40])
def test_a_constant_arange_lowers_to_its_values(length):
    # A change point's mask `arange(T) < tau`, short (unrolled) and long (a loop over its rows).
    x = at.vector("x")
    out = at.sum(at.switch(at.arange(2, 2 + length) < 6, x[0], x[1]) * at.arange(length))
    graph = lower_to_scalars([x], [(2,)], [out])
    (got,) = evaluate(graph, [[0.5, -1.25]])
    np.testing.assert_allclose(got, aesara.function([x], out, mode=FAST)([0.5, -1.25]), rtol=1e-12)


def test_a_failing_check_gives_nan_not_an_exception():
    x = at.vector("x")
    out = Assert("x must be positive")(at.log(x[0]), at.gt(x[0], 0))
    graph = lower_to_scalars([x], [(1,)], [out])
    np.testing.assert_allclose(evaluate(graph, [[2.0]])[0], np.log(2.0))
    assert np.isnan(evaluate(graph, [[-1.0]])[0])


def test_symbolic_index_is_refused():
    x = at.vector("x")
    i = at.lscalar("i")
    with pytest.raises(LoweringError, match="index depends on the inputs"):
        lower_to_scalars([x, i], [(3,), ()], [x[i]])


def test_unsupported_op_is_refused_with_its_name():
    x = at.matrix("x")
    with pytest.raises(LoweringError, match="no scalar lowering for"):
        lower_to_scalars([x], [(2, 2)], [at.linalg.det(x)])


def test_budget_is_enforced():
    x = at.vector("x")
    with pytest.raises(LoweringError, match="more than 10 scalar operations"):
        lower_to_scalars([x], [(50,)], [at.exp(x).sum()], max_operations=10)


def test_wrong_static_shape_is_refused():
    x = at.matrix("x")
    with pytest.raises(LoweringError, match="dimensions"):
        lower_to_scalars([x], [(3,)], [x.sum()])


# -- loops over data -------------------------------------------------------------------------------


def normal_logpdf_sum(x, y, sigma=1.0):
    return (-0.5 * ((y - x) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)).sum()


def test_a_sum_over_data_is_one_loop_not_unrolled():
    x = at.vector("x")
    y = np.random.default_rng(1).normal(size=200)
    out = normal_logpdf_sum(x[0], at.as_tensor_variable(y))
    graph = lower_to_scalars([x], [(1,)], [out])
    # The loop's body is written once: far fewer operations than data rows.
    assert graph.n_operations < 20
    loops = [
        n
        for n in aes.Composite(
            [graph.inputs[0].item()], [graph.outputs[0].item()]
        ).fgraph.apply_nodes
        if isinstance(n.op, LoopReduce)
    ]
    assert len(loops) == 1 and len(loops[0].op.data[0]) == 200
    f = aesara.function([x], out, mode=FAST)
    for value in (-3.0, 0.1, 2.5):
        np.testing.assert_allclose(evaluate(graph, [[value]])[0], f([value]), rtol=1e-12)


def test_expressions_of_the_data_alone_are_computed_once():
    x = at.vector("x")
    y = np.abs(np.random.default_rng(2).normal(size=50)) + 0.5
    # sum(log y) has no input: folded to a constant; only x * sum(y) is left.
    out = at.log(at.as_tensor_variable(y)).sum() + (x[0] * y).sum()
    graph = lower_to_scalars([x], [(1,)], [out])
    assert graph.n_operations <= 3
    np.testing.assert_allclose(
        evaluate(graph, [[2.0]])[0], np.log(y).sum() + 2.0 * y.sum(), rtol=1e-12
    )


def test_a_grid_of_two_long_axes_loops_over_the_last():
    # A change point: logsumexp over tau of sum over t of the log-density of counts[t].
    x = at.vector("x")
    counts = np.random.default_rng(3).poisson(3.0, size=40)
    taus = np.arange(30)[:, None]
    t = np.arange(40)[None, :]
    rate = at.switch(at.lt(t, taus), at.exp(x[0]), at.exp(x[1]))
    terms = (counts * at.log(rate) - rate).sum(axis=1)
    out = at.log(at.exp(terms - terms.max()).sum()) + terms.max()
    graph = lower_to_scalars([x], [(2,)], [out])
    assert graph.n_operations < 30 * 40
    f = aesara.function([x], out, mode=FAST)
    for value in ([0.5, 1.5], [1.2, 0.9]):
        np.testing.assert_allclose(evaluate(graph, [value])[0], f(value), rtol=1e-10)


def test_indexing_by_data_selects_per_row():
    mu = at.vector("mu")
    rng = np.random.default_rng(4)
    z = rng.integers(0, 3, size=60)
    y = rng.normal(size=60)
    out = ((y - mu[z]) ** 2).sum()
    graph = lower_to_scalars([mu], [(3,)], [out])
    assert graph.n_operations < 60
    f = aesara.function([mu], out, mode=FAST)
    value = [-1.0, 0.5, 2.0]
    np.testing.assert_allclose(evaluate(graph, [value])[0], f(value), rtol=1e-12)


def test_a_check_that_fails_for_some_data_is_refused():
    x = at.vector("x")
    y = np.linspace(-1.0, 1.0, 30)
    out = Assert("data must be positive")(at.log(x[0]) * y, at.all(at.gt(y, 0))).sum()
    with pytest.raises(LoweringError, match="fails"):
        lower_to_scalars([x], [(1,)], [out])


def test_an_output_along_the_data_is_refused():
    x = at.vector("x")
    y = np.linspace(0.0, 1.0, 30)
    with pytest.raises(LoweringError, match="data axis"):
        lower_to_scalars([x], [(1,)], [x[0] * y])
