import aesara
import aesara.scalar as aes
import aesara.tensor as at
import numpy as np
import pytest
from aesara.raise_op import Assert

from aemix.scalarize import LoweringError, lower_to_scalars

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
