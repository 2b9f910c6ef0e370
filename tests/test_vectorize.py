import aesara
import aesara.tensor as at
import numpy as np
import pytest
from aeppl.logprob import CheckParameterValue

from aemix.ops import logsumexp
from aemix.vectorize import vectorize_draws, vectorize_graph

rng = np.random.default_rng(0)
CHAINS = 5
M = rng.normal(size=(4, 3))


def single_chain_graphs():
    x = at.vector("x")
    x3 = at.specify_shape(x, (3,))  # (matmul checks its operands' static shapes)
    s = at.scalar("s")
    w = np.array([0.1, 0.2, 0.3, 0.4])
    return {
        "elemwise-with-unbatched-constant": (x, at.exp(x) * w[:3] + s),
        "reductions": (x, at.stack([at.sum(x), at.max(x), at.prod(x), at.all(x > -10)])),
        "dimshuffle-and-axis-reduction": (x, at.sum(x[:, None] * x[None, :], axis=1)),
        "subtensor": (x, x[1] + x[::2].sum() + x[-1]),
        "advanced-subtensor": (x, x[np.array([2, 0, 0])]),
        "make-vector-of-scalars": (x, at.stack([x[0], s, x[2] * 2])),
        "join": (x, at.concatenate([x, at.as_tensor(w)])),
        "reshape": (x, x.reshape((3, 1)).sum(axis=0)),
        "broadcast-to": (x, at.broadcast_to(x[0], (4,)) + w),
        "logsumexp": (x, logsumexp(at.log(w[:3]) + x, axis=0)),
        "check-parameter": (x, CheckParameterValue("x > -10")(x * 2, at.all(x > -10))),
        "switch": (x, at.switch(x > 0, x, -x)),
        # Linear predictors, each side per chain or shared.
        "matrix-dot-chain-vector": (x, at.as_tensor(M) @ x),
        "chain-vector-dot-matrix": (x, at.dot(x, at.as_tensor(M.T))),
        "vector-dot-vector": (x, at.dot(x, w[:3])),
        "chain-outer-dot-chain": (x, at.dot(x[:, None], x[None, :]).sum(axis=0)),
        "matrix-dot-chain-matrix": (x, at.dot(at.as_tensor(M), at.outer(x, x)).sum(axis=1)),
        "chain-matrix-dot-chain-vector": (x, at.dot(at.outer(x, x), x)),
        # matmul (its own Op), vectors and matrices on each side, per chain or shared.
        "matmul-data-chain-vector": (x, at.matmul(at.as_tensor(M), x3)),
        "matmul-chain-vector-data": (x, at.matmul(x3, at.as_tensor(M.T))),
        "matmul-data-vector-chain-matrix": (x, at.matmul(at.as_tensor(w[:3]), at.outer(x3, x3))),
        "matmul-chain-matrices": (
            x,
            at.matmul(at.outer(x3, x3), at.outer(x3, at.as_tensor(w[:3]))).sum(0),
        ),
        "matmul-chain-stack-data": (
            x,
            at.matmul(at.outer(x3, x3)[None], at.as_tensor(M.T)).sum((0, 1)),
        ),
        # No rule of its own: mapped over chains.
        "sort": (x, at.sort(x) * w[:3]),
        "cumsum": (x, at.cumsum(x) + s),
    }


@pytest.mark.parametrize("name", list(single_chain_graphs()))
def test_batched_graph_equals_a_loop_over_chains(name):
    x, out = single_chain_graphs()[name]
    s = [v for v in aesara.graph.basic.graph_inputs([out]) if v.name == "s"]
    xs = at.matrix("xs")
    (batched,) = vectorize_graph([out], {x: xs})
    inputs = [x, *s]
    single_fn = aesara.function(inputs, out, on_unused_input="ignore")
    batched_fn = aesara.function([xs, *s], batched, on_unused_input="ignore")
    values = rng.normal(size=(CHAINS, 3))
    extra = [1.5] if s else []
    expected = np.stack([single_fn(v, *extra) for v in values])
    np.testing.assert_allclose(batched_fn(values, *extra), expected, rtol=1e-14)


def test_unbatched_outputs_are_broadcast():
    x = at.vector("x")
    xs = at.matrix("xs")
    (batched,) = vectorize_graph([at.as_tensor(np.arange(2.0)) + 1], {x: xs})
    assert aesara.function([xs], batched)(np.zeros((3, 2))).shape == (3, 2)


def test_batched_index_into_shared_and_batched_arrays():
    z = at.lvector("z")
    theta = at.as_tensor(np.array([1.5, -2.0, 4.0]))
    x = at.vector("x")
    zs, xs = at.lmatrix("zs"), at.matrix("xs")
    (shared_out,) = vectorize_graph([theta[z] * 2], {z: zs})
    (both_out,) = vectorize_graph([x[z]], {z: zs, x: xs})
    zv = np.array([[0, 2, 1, 1], [2, 2, 0, 1]])
    xv = rng.normal(size=(2, 3))
    np.testing.assert_allclose(aesara.function([zs], shared_out)(zv), theta.data[zv] * 2)
    np.testing.assert_allclose(
        aesara.function([zs, xs], both_out)(zv, xv), np.stack([xv[i][zv[i]] for i in range(2)])
    )


def test_vectorize_draws_gives_each_chain_its_own_draws():
    srng = at.random.RandomStream(3)
    sigma = srng.halfnormal(0.0, 2.0, name="sigma")
    mu = srng.normal(0.0, sigma, size=3, name="mu")
    w = srng.dirichlet(np.ones(3), name="w")
    z = srng.categorical(w, size=4, name="z")
    k = srng.categorical(np.array([0.2, 0.3, 0.5]), name="k")
    n = at.lscalar("n")
    outs = vectorize_draws([sigma, mu, z, k], n)
    f = aesara.function([n], outs, mode=aesara.compile.mode.Mode(linker="py", optimizer=None))
    draws = 40_000
    s, m, zz, kk = f(draws)
    assert s.shape == (draws,) and m.shape == (draws, 3) and zz.shape == (draws, 4)
    assert len(np.unique(s)) == draws  # one draw per chain, not one shared draw
    # mu | sigma ~ N(0, sigma^2): Var(mu) = E[sigma^2] = 4 (within 5 standard errors).
    var_se = np.sqrt(np.var(m[:, 0] ** 2) / draws)
    assert np.all(np.abs(m.var(axis=0) - 4.0) < 5 * var_se)
    # Categorical draws by inverse CDF: frequencies within 5 binomial standard errors.
    for values, p in [(kk, np.array([0.2, 0.3, 0.5])), (zz.ravel(), np.full(3, 1 / 3))]:
        freq = np.bincount(values, minlength=3) / values.size
        assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / values.size))


@pytest.mark.parametrize("expr", ["x[:, i]", "x[i, :]", "x[:, :, i]", "x[:, i, :]", "x[i]"])
@pytest.mark.parametrize("batched", ["index", "array", "both"])
def test_an_index_array_among_full_slices_batches_without_a_loop(expr, batched):
    # ``mu[:, z]``, ``mu[z, :]``: one index array among slices, per chain or shared, batched by
    # advanced indexing (no scan), equal to the graph evaluated chain by chain.
    rng = np.random.default_rng(len(expr))
    n_chains, high = 5, {"x[:, i]": 3, "x[:, i, :]": 3, "x[:, :, i]": 5}.get(expr, 4)
    idx_shape = (2, 3) if expr == "x[:, :, i]" else (7,)
    x = at.dtensor3("x")
    i = at.tensor("int64", shape=(None,) * len(idx_shape), name="i")
    out = eval(expr)
    one_chain = aesara.function([x, i], out)
    x_batched, i_batched = batched in ("array", "both"), batched in ("index", "both")
    xs = rng.normal(size=(n_chains, 4, 3, 5) if x_batched else (4, 3, 5))
    iv = rng.integers(0, high, size=(n_chains, *idx_shape) if i_batched else idx_shape)
    x_in = at.dtensor4("xb") if x_batched else x
    i_in = at.tensor("int64", shape=(None,) * (len(idx_shape) + 1)) if i_batched else i
    replacements = {old: new for old, new, b in [(x, x_in, x_batched), (i, i_in, i_batched)] if b}
    (out_batched,) = vectorize_graph([out], replacements)
    fn = aesara.function([x_in, i_in], out_batched, on_unused_input="ignore")
    assert not any("Scan" in type(n.op).__name__ for n in fn.maker.fgraph.apply_nodes)
    expected = np.stack(
        [one_chain(xs[c] if x_batched else xs, iv[c] if i_batched else iv) for c in range(n_chains)]
    )
    np.testing.assert_array_equal(fn(xs, iv), expected)


def test_a_loop_over_steps_is_batched_as_one_loop():
    """A scan whose states and non-sequences are per chain (an HMC trajectory's leapfrog steps)
    is one scan over the steps with a batched step, not a scan per chain, and equals a loop over
    the chains; a per-step output (nit-sot) and an unbatched non-sequence included."""
    from aesara.scan.op import Scan

    x, h, w = at.vector("x"), at.scalar("h"), at.vector("w")

    def body(s, p):
        s2 = s + h * p
        p2 = p - h * at.tanh(s2) * w
        return [s2, p2, (s2**2).sum()], {}

    (ss, ps, energy), _ = aesara.scan(body, outputs_info=[x, x * 2.0, None], n_steps=4)
    out = at.concatenate([ss[-1] + ps.sum(0), energy])
    xs, hs = at.matrix("xs"), at.vector("hs")
    (batched,) = vectorize_graph([out], {x: xs, h: hs})
    nodes = aesara.graph.basic.io_toposort([xs, hs, w], [batched])
    assert sum(isinstance(n.op, Scan) for n in nodes) == 1
    single_fn = aesara.function([x, h, w], out, mode="FAST_COMPILE")
    batched_fn = aesara.function([xs, hs, w], batched, mode="FAST_COMPILE")
    values, steps, weights = rng.normal(size=(CHAINS, 3)), rng.random(CHAINS), rng.normal(size=3)
    expected = np.stack([single_fn(v, s, weights) for v, s in zip(values, steps)])
    np.testing.assert_allclose(batched_fn(values, steps, weights), expected, rtol=1e-14)
