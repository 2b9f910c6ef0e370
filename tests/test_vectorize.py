import aesara
import aesara.tensor as at
import numpy as np
import pytest
from aeppl.logprob import CheckParameterValue

from aemix.errors import VectorizationError
from aemix.ops import logsumexp
from aemix.vectorize import vectorize_graph

rng = np.random.default_rng(0)
CHAINS = 5


def single_chain_graphs():
    x = at.vector("x")
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


def test_op_without_rule_is_a_typed_error():
    x = at.vector("x")
    with pytest.raises(VectorizationError, match="no batching rule"):
        vectorize_graph([at.sort(x)], {x: at.matrix("xs")})


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
