"""The forward and backward messages, the joint draw, and the vectorized emissions of
`aemix.markov`, against NumPy and brute force."""

import itertools

import aesara
import aesara.tensor as at
import numpy as np
import pytest
from scipy.special import logsumexp

from aemix.markov import (
    BackwardSample,
    ChainMessages,
    common_form,
    stack_transitions,
)
from aemix.vectorize import vectorize_graph

FAST = "FAST_COMPILE"


def evaluate(x):
    return aesara.function([], x, mode=FAST)()


def numpy_forward(log_initial, log_transition, emissions):
    alphas = [log_initial + emissions[0]]
    for t in range(1, len(emissions)):
        lt = log_transition if log_transition.ndim == 2 else log_transition[t - 1]
        alphas.append(logsumexp(alphas[-1][:, None] + lt, axis=0) + emissions[t])
    return np.array(alphas)


def numpy_backward(log_transition, emissions):
    betas = np.zeros_like(emissions)
    for t in range(len(emissions) - 2, -1, -1):
        lt = log_transition if log_transition.ndim == 2 else log_transition[t]
        betas[t] = logsumexp(lt + (emissions[t + 1] + betas[t + 1])[None, :], axis=1)
    return betas


def random_chain(rng, n_steps, k, homogeneous, zeros=False):
    shape = (k, k) if homogeneous else (n_steps - 1, k, k)
    transition = rng.dirichlet(np.ones(k), size=shape[:-1])
    if zeros:
        transition[..., 0, 1] = 0.0  # an impossible move: -inf in log space
        transition /= transition.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        return (
            np.log(rng.dirichlet(np.ones(k))),
            np.log(transition),
            rng.normal(size=(n_steps, k)) * 3,
        )


@pytest.mark.parametrize("homogeneous", [True, False])
@pytest.mark.parametrize("zeros", [False, True])
def test_messages_are_the_recursions(homogeneous, zeros):
    rng = np.random.default_rng(0)
    log_initial, log_transition, emissions = random_chain(rng, 7, 3, homogeneous, zeros)
    args = [at.as_tensor(x) for x in (log_initial, log_transition, emissions)]
    forward = evaluate(ChainMessages(True, homogeneous)(*args))
    backward = evaluate(ChainMessages(False, homogeneous)(*args))
    np.testing.assert_allclose(forward, numpy_forward(log_initial, log_transition, emissions))
    np.testing.assert_allclose(backward, numpy_backward(log_transition, emissions))
    # Every path's probability summed: the marginal, from either end.
    marginal = logsumexp(forward[-1])
    np.testing.assert_allclose(logsumexp(log_initial + emissions[0] + backward[0]), marginal)


def test_messages_broadcast_leading_axes_and_batch_over_chains():
    """A batch axis on one input only broadcasts against the others; `vectorize_graph` over a
    chain axis gives each chain its own messages."""
    rng = np.random.default_rng(1)
    log_initial, log_transition, emissions = random_chain(rng, 5, 2, homogeneous=False)
    batch = np.stack([emissions, emissions + 1.0, emissions * 2])
    out = evaluate(ChainMessages(True, False)(log_initial, log_transition, batch))
    assert out.shape == (3, 5, 2)
    for b in range(3):
        np.testing.assert_allclose(out[b], numpy_forward(log_initial, log_transition, batch[b]))
    e, batched_e = at.matrix("e"), at.tensor3("E")
    (batched,) = vectorize_graph(
        [ChainMessages(False, False)(log_initial, log_transition, e)], {e: batched_e}
    )
    got = aesara.function([batched_e], batched, mode=FAST)(batch)
    for b in range(3):
        np.testing.assert_allclose(got[b], numpy_backward(log_transition, batch[b]))


@pytest.mark.parametrize("forward", [True, False])
@pytest.mark.parametrize("homogeneous", [True, False])
def test_the_c_recursion_is_the_python_one(forward, homogeneous):
    """The C implementation against the Python one (and NumPy's recursions): batch axes
    broadcast from either input, inputs read through reversed and transposed strides, impossible
    moves (-inf), a NaN that propagates, one state, one step and none."""
    rng = np.random.default_rng(3)
    c_mode = aesara.compile.mode.Mode(linker="c", optimizer=None)
    py_mode = aesara.compile.mode.Mode(linker="py", optimizer=None)
    cases = []
    for n_steps, k in [(6, 3), (1, 2), (4, 1), (0, 2)]:
        shape = (k, k) if homogeneous else (max(n_steps - 1, 0), k, k)
        with np.errstate(divide="ignore"):
            log_transition = np.log(rng.dirichlet(np.ones(k), size=shape[:-1]))
        cases.append(
            (
                rng.normal(size=(2, 1, k)),
                log_transition[None, None],
                rng.normal(size=(1, 3, n_steps, k)) * 3,
            )
        )
    initial, transition, emissions = (x.copy() for x in cases[0])
    transition[..., 0, 1] = -np.inf
    emissions[0, 1, 2, :] = -np.inf  # no state can emit this value: every later message -inf
    emissions[0, 2, 3, 1] = np.nan
    # (a reversed and a transposed view: strides the C code must follow)
    cases.append((initial, transition, emissions[..., ::-1, :]))
    cases.append((initial[..., ::-1], np.swapaxes(transition, -1, -2), emissions))
    for inputs in cases:
        variables = [at.tensor("float64", shape=(None,) * x.ndim) for x in inputs]
        out = ChainMessages(forward, homogeneous)(*variables)
        c_out = aesara.function(variables, out, mode=c_mode)(*inputs)
        py_out = aesara.function(variables, out, mode=py_mode)(*inputs)
        assert c_out.shape == py_out.shape == (2, 3, *inputs[2].shape[-2:])
        np.testing.assert_allclose(c_out, py_out, rtol=1e-12, atol=0)
        for b in np.ndindex(2, 3):
            initial, transition, emissions = (
                x[tuple(min(i, n - 1) for i, n in zip(b, x.shape))] for x in inputs
            )
            if emissions.shape[0] == 0 or np.isnan(emissions).any():
                continue
            expected = (
                numpy_forward(initial, transition, emissions)
                if forward
                else numpy_backward(transition, emissions)
            )
            np.testing.assert_allclose(c_out[b], expected, rtol=1e-12, atol=1e-12)


def test_backward_sampling_draws_paths_from_their_posterior():
    """Many joint draws (one uniform vector each, as a batch axis): each path's frequency is
    its posterior probability (brute force over the K^T paths) within 5 binomial sd."""
    rng = np.random.default_rng(2)
    n_steps, k, n = 4, 3, 40_000
    log_initial, log_transition, emissions = random_chain(rng, n_steps, k, homogeneous=False)
    alphas = numpy_forward(log_initial, log_transition, emissions)
    uniforms = rng.random((n, n_steps))
    outputs = BackwardSample(False)(alphas, log_transition, uniforms)
    states, probs = aesara.function([], outputs, mode=FAST)()
    assert states.shape == (n, n_steps) and probs.shape == (n, n_steps, k)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0)
    log_post = {}
    for path in itertools.product(range(k), repeat=n_steps):
        lp = log_initial[path[0]] + sum(emissions[t, path[t]] for t in range(n_steps))
        lp += sum(log_transition[t - 1, path[t - 1], path[t]] for t in range(1, n_steps))
        log_post[path] = lp
    norm = logsumexp(list(log_post.values()))
    counts = {}
    for path in map(tuple, states):
        counts[path] = counts.get(path, 0) + 1
    for path, lp in log_post.items():
        p = np.exp(lp - norm)
        assert abs(counts.get(path, 0) / n - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-12, path


def test_common_form_of_per_step_copies():
    srng = at.random.RandomStream(0)
    mu = srng.normal(np.zeros(2), 1.0, name="mu")
    states = [srng.categorical(np.array([0.5, 0.5])) for _ in range(3)]
    ys = [srng.normal(mu[z] + float(t), 1.0) for t, z in enumerate(states)]

    def reads(v):
        from aesara.graph.basic import ancestors

        return any(a in states for a in ancestors([v], blockers=[mu]))

    template, marker, leaves = common_form(ys, lambda v: v in states, reads)
    # One leaf: the per-step shift; the generators differ but are not leaves.
    ((leaf, values),) = leaves
    assert [float(v.data) for v in values] == [0.0, 1.0, 2.0]
    assert marker.type == states[0].type
    # A step of another form: none.
    other = [*ys[:2], srng.normal(mu[states[2]] * 2.0, 1.0)]
    assert common_form(other, lambda v: v in states, reads) is None


def test_stacked_transitions():
    p = at.as_tensor(np.array([[0.9, 0.1], [0.2, 0.8]]))
    assert stack_transitions([p, p, p]) is p
    same = [at.as_tensor(np.array([[0.9, 0.1], [0.2, 0.8]])) for _ in range(3)]
    assert stack_transitions(same).type.shape == (2, 2)
    table = np.random.default_rng(0).dirichlet(np.ones(2), size=(4, 2))
    rows = [at.as_tensor(table)[t] for t in range(1, 4)]
    np.testing.assert_array_equal(stack_transitions(rows).eval(), table[1:])
    srng = at.random.RandomStream(0)
    latent = srng.dirichlet(np.ones((4, 2, 2)))
    sliced = stack_transitions([latent[t] for t in range(1, 4)])
    assert sliced.owner.inputs[0] is latent and sliced.ndim == 3
