"""`aemix.compilation.function` compiles each computation once per process (`graph_key`)."""

import aesara
import aesara.tensor as at
import numpy as np
import pytest

import aemix
from aemix.compilation import compile_mode, function, graph_key, python_mode


def affine(scale=2.0, data=(1.0, 2.0, 3.0), op=at.exp):
    x = at.vector("x")
    return x, op(x * scale + np.asarray(data))


def test_the_same_computation_built_twice_has_one_key():
    x1, y1 = affine()
    x2, y2 = affine()
    assert y1 is not y2
    assert graph_key([x1], [y1]) == graph_key([x2], [y2])
    assert hash(graph_key([x1], [y1])) == hash(graph_key([x2], [y2]))


@pytest.mark.parametrize(
    "other",
    [
        {"scale": 3.0},
        {"data": (1.0, 2.0, 3.5)},
        {"data": (1.0, 2.0)},
        {"data": np.array([1, 2, 3], dtype="int32")},
        {"op": at.log},
    ],
    ids=["constant", "data value", "data shape", "data type", "operation"],
)
def test_a_different_computation_has_another_key(other):
    x1, y1 = affine()
    x2, y2 = affine(**other)
    assert graph_key([x1], [y1]) != graph_key([x2], [y2])


def test_the_inputs_order_outputs_and_mode_are_part_of_the_key():
    x, y = at.vector("x"), at.vector("y")
    z = x - y
    key = graph_key([x, y], [z])
    assert graph_key([y, x], [z]) != key
    assert graph_key([x, y], z) != key  # (one output, not a list of one)
    assert graph_key([x, y], [z, z]) != key
    assert graph_key([x, y], [z], {"mode": python_mode()}) != graph_key(
        [x, y], [z], {"mode": compile_mode()}
    )
    assert graph_key([x, y], [z], {"mode": compile_mode()}) == graph_key(
        [x, y], [z], {"mode": compile_mode()}
    )


def test_shared_variables_enter_by_identity_and_unknown_arguments_are_not_keyed():
    a, b = aesara.shared(np.ones(3)), aesara.shared(np.ones(3))
    x = at.vector("x")
    assert graph_key([x], [x + a]) == graph_key([x], [x + a])
    assert graph_key([x], [x + a]) != graph_key([x], [x + b])
    assert graph_key([x], [x + a], {"givens": {a: b}}) is None


def test_a_function_of_the_same_computation_is_compiled_once():
    x1, y1 = affine()
    x2, y2 = affine()
    x3, y3 = affine(scale=5.0)
    f1 = function([x1], y1, mode=compile_mode())
    f2 = function([x2], y2, mode=compile_mode())
    assert f2.maker.fgraph.outputs[0].owner.op is f1.maker.fgraph.outputs[0].owner.op
    assert f2 is not f1  # (a copy, with its own storage)
    f3 = function([x3], y3, mode=compile_mode())
    assert f3 is not f1
    v = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(f1(v), np.exp(2.0 * v + [1.0, 2.0, 3.0]))
    np.testing.assert_allclose(f3(v), np.exp(5.0 * v + [1.0, 2.0, 3.0]))


def test_a_model_built_again_reuses_its_compiled_log_density():
    def build(y):
        srng = at.random.RandomStream(0)
        mu = srng.normal(0.0, 1.0, name="mu")
        y_rv = srng.normal(mu, 1.0, size=3, name="y")
        return aemix.build_sampler(y_rv, observed={y_rv: y})

    data = np.array([0.1, 0.4, -0.3])
    first, again, other = build(data), build(data.copy()), build(data + 1.0)
    positions = np.array([[0.0], [0.7]])
    compiled = {
        name: sampler._batched_function("x", [sampler._density.logdensity]).maker.fgraph
        for name, sampler in [("first", first), ("again", again), ("other", other)]
    }
    # The copy shares the compiled nodes: the same Op objects, the same rewritten graph.
    ops = {name: [n.op for n in fgraph.toposort()] for name, fgraph in compiled.items()}
    assert all(a is b for a, b in zip(ops["first"], ops["again"]))
    assert len(ops["first"]) == len(ops["again"])
    assert not all(a is b for a, b in zip(ops["first"], ops["other"]))
    for sampler, y in [(again, data), (other, data + 1.0)]:
        (got,) = sampler._batched_function("x", [sampler._density.logdensity])(positions)
        mu = positions[:, 0]
        expected = (
            -0.5 * mu**2 - 0.5 * ((y[None, :] - mu[:, None]) ** 2).sum(1) - 2 * np.log(2 * np.pi)
        )
        np.testing.assert_allclose(got, expected)


@pytest.mark.parametrize("loop", ["fused", "scan"])
def test_a_model_built_again_samples_the_same_draws_in_each_loop(loop):
    # The second build's functions are copies of the first's (the fused loop's, which Aesara
    # cannot copy, is compiled again from its cached module): same seed, same draws.
    def draws():
        srng = at.random.RandomStream(0)
        mu = srng.normal(0.0, 1.0, name="mu")
        y_rv = srng.normal(mu, 1.0, size=3, name="y")
        sampler = aemix.build_sampler(y_rv, observed={y_rv: np.array([0.1, 0.4, -0.3])})
        result = sampler.sample(20, n_chains=4, seed=2, warmup=20, loop=loop, start="prior")
        assert result.loop == loop
        return result.draws["mu"]

    first, again = draws(), draws()
    np.testing.assert_array_equal(first, again)


def test_python_mode_runs_every_elementwise_operation_as_one_numpy_call():
    """Aesara's Python linker evaluates an elementwise operation without a NumPy function (a
    cast, a clip, ``softplus``, ``a + b + c``) one element at a time; `python_mode` gives each a
    vectorized one, with the values of the C implementations (checked on every branch)."""
    x, y = at.matrices("x", "y")
    n = at.bmatrix("n")
    outputs = [
        at.softplus(x * 20.0),
        at.log1mexp(-at.abs(x)),
        at.clip(x, -0.5, 0.5),
        at.cast(n, "float64") * x,
        at.second(x, n),
        x + y + at.exp(x) + 2.0,
        x * y * at.exp(y),
        n + n + n,  # (int8, wrapping as C's does)
        at.maximum(at.maximum(x, y), at.exp(x)),
    ]
    fn = aesara.function([x, y, n], outputs, mode=python_mode())
    elementwise = [
        node.op for node in fn.maker.fgraph.toposort() if isinstance(node.op, at.elemwise.Elemwise)
    ]
    assert len(elementwise) >= len(outputs)
    for node in fn.maker.fgraph.toposort():
        if isinstance(node.op, at.elemwise.Elemwise):
            assert node.op.nfunc_spec is not None, node
            assert node.op.nfunc_spec[1] == len(node.inputs), node
    rng = np.random.default_rng(0)
    args = (rng.normal(0.0, 2.0, (30, 40)), rng.normal(0.0, 2.0, (30, 40)))
    args += (rng.integers(-128, 128, (30, 40)).astype("int8"),)
    expected = aesara.function([x, y, n], outputs, mode=compile_mode())(*args)
    for got, want in zip(fn(*args), expected):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
