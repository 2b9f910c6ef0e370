"""The density of a discrete Markov chain's emissions by the forward algorithm, and its conditionals.

A chain ``Z_0 ~ Cat(p_0)``, ``Z_t ~ Cat(P_t[Z_{t-1}])`` whose other children (emissions) each read
one state is one placeholder, `aemix.ops.MarkovChainRV`.  Its density is built from three arrays:

* ``log p_0`` (``K``) and ``log P_t`` (``(K, K)``, or ``(T - 1, K, K)`` when it varies with ``t``),
  normalized per row as the categorical's density is;
* the emissions' log-densities with each state at each of its ``K`` values, ``E`` (``(T, K)``):
  where the steps' emission densities are copies of one form (the same operations, differing in
  their data, e.g. ``normal(mu[z_t], 1)`` observed at ``y_t``), that form is evaluated once at
  every value and over the steps' stacked data (`common_form`), so the graph does not grow with
  ``T``; otherwise one ``K``-vector per step, stacked;

and one node, `ChainMessages`, that runs the log-space forward recursion
``alpha_0 = log p_0 + E_0``, ``alpha_t = logsumexp_j(alpha_{t-1}[j] + log P_t[j, :]) + E_t``
in ``O(T K^2)``; the density is ``logsumexp(alpha_{T-1})``.  A single node rather than an
unrolled loop (or ``scan``): the graph stays a few dozen nodes at any ``T``, so building and
compiling take as long at ``T = 400`` as at ``T = 5`` (`benchmarks/hmm_build.py`), and batching it
over chains is a broadcast (its rule below), where ``scan`` would be mapped over the chains one by
one.  The node has a C implementation (one pass per chain, through the inputs' strides): about
15 times faster than NumPy for 32 chains of 112 steps and two states
(`benchmarks/markov_messages.py`).  The fused C loop has no scalar lowering for it, so such a
model runs in the ``scan`` loop.

The states are recovered by forward-filter backward-sample: ``Z_{T-1}`` from ``alpha_{T-1}``,
then ``Z_t`` given the draw of ``Z_{t+1}`` from ``alpha_t + log P_{t+1}[:, z_{t+1}]``, a joint draw
from the posterior.  The conditional probabilities reported for a state are its smoothed marginal
``P(Z_t = k | data) ∝ exp(alpha_t + beta_t)`` (forward-backward), not given the other states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import aesara.tensor as at
import numpy as np
from aesara.graph.basic import Apply, Constant, Variable
from aesara.graph.op import Op
from aesara.link.c.op import COp
from aesara.tensor.basic import get_scalar_constant_value
from aesara.tensor.exceptions import NotScalarConstantError
from aesara.tensor.random.op import RandomVariable
from aesara.tensor.subtensor import Subtensor
from aesara.tensor.type import TensorType
from aesara.tensor.var import TensorConstant

from aemix.errors import VectorizationError
from aemix.ops import (
    Conditionals,
    MarkovChainRV,
    density_build,
    marginal_conditionals,
    value_logprob,
)
from aemix.vectorize import batch_node, vectorize_graph

__all__ = [
    "ChainMessages",
    "BackwardSample",
    "ChainRecovery",
    "ChainTerms",
    "chain_terms",
    "state_conditionals",
    "stack_transitions",
    "common_form",
    "vectorized_emission",
    "pack_observed",
]


# The recursion in C (`ChainMessages.c_code`): one pass per batch element, reading each input
# through its strides (an axis of length one is broadcast), the output allocated C-contiguous.
# Each sum over the previous (forward) or next (backward) state is NumPy's stable logsumexp: the
# largest term is taken out unless it is infinite, so that every term being -inf gives -inf.
_MESSAGES_SUPPORT = r"""
static double aemix_logsumexp_terms(const double *terms, npy_intp n)
{
    double top = -INFINITY, sum = 0.0;
    int nan = 0;
    for (npy_intp i = 0; i < n; ++i) {
        if (terms[i] != terms[i]) nan = 1;
        else if (terms[i] > top) top = terms[i];
    }
    if (nan) return NAN;
    if (!isfinite(top)) top = 0.0;
    for (npy_intp i = 0; i < n; ++i) sum += exp(terms[i] - top);
    return log(sum) + top;
}
"""

_MESSAGES_CODE = r"""
{
    PyArrayObject *ins[3] = {%(initial)s, %(transition)s, %(emissions)s};
    const int nb = PyArray_NDIM(%(emissions)s) - 2;
    const int homogeneous = %(homogeneous)d, forward = %(forward)d;
    const int core[3] = {1, homogeneous ? 2 : 3, 2};
    npy_intp dims[NPY_MAXDIMS], batch = 1;
    for (int d = 0; d < nb; ++d) {
        dims[d] = 1;
        for (int i = 0; i < 3; ++i) {
            npy_intp n = PyArray_DIMS(ins[i])[d];
            if (n == 1) continue;
            if (dims[d] != 1 && dims[d] != n) {
                PyErr_SetString(PyExc_ValueError, "Markov chain messages: batch shapes do not broadcast");
                %(fail)s
            }
            dims[d] = n;
        }
        batch *= dims[d];
    }
    const npy_intp T = PyArray_DIMS(%(emissions)s)[nb], K = PyArray_DIMS(%(emissions)s)[nb + 1];
    if (PyArray_DIMS(%(initial)s)[nb] != K
        || PyArray_DIMS(%(transition)s)[nb + core[1] - 2] != K
        || PyArray_DIMS(%(transition)s)[nb + core[1] - 1] != K
        || (!homogeneous && T > 0 && PyArray_DIMS(%(transition)s)[nb] != T - 1)) {
        PyErr_SetString(PyExc_ValueError, "Markov chain messages: inconsistent numbers of states or steps");
        %(fail)s
    }
    dims[nb] = T;
    dims[nb + 1] = K;
    int fresh = %(out)s == NULL || !PyArray_IS_C_CONTIGUOUS(%(out)s) || PyArray_NDIM(%(out)s) != nb + 2;
    for (int d = 0; !fresh && d < nb + 2; ++d) fresh = PyArray_DIMS(%(out)s)[d] != dims[d];
    if (fresh) {
        Py_XDECREF(%(out)s);
        %(out)s = (PyArrayObject *)PyArray_EMPTY(nb + 2, dims, NPY_FLOAT64, 0);
        if (%(out)s == NULL) { %(fail)s }
    }
    double *terms = (double *)malloc(sizeof(double) * (K > 0 ? K : 1));
    if (terms == NULL) { PyErr_NoMemory(); %(fail)s }
    const npy_intp *s0 = PyArray_STRIDES(%(initial)s), *s1 = PyArray_STRIDES(%(transition)s),
                   *s2 = PyArray_STRIDES(%(emissions)s);
    const npy_intp li_k = s0[nb] / 8, lt_t = homogeneous ? 0 : s1[nb] / 8,
                   lt_j = s1[nb + core[1] - 2] / 8, lt_k = s1[nb + core[1] - 1] / 8,
                   em_t = s2[nb] / 8, em_k = s2[nb + 1] / 8;
    for (npy_intp b = 0; b < batch; ++b) {
        char *p0 = PyArray_BYTES(%(initial)s), *p1 = PyArray_BYTES(%(transition)s),
             *p2 = PyArray_BYTES(%(emissions)s);
        npy_intp rest = b;
        for (int d = nb - 1; d >= 0; --d) {
            npy_intp at = rest %% dims[d];
            rest /= dims[d];
            if (PyArray_DIMS(%(initial)s)[d] != 1) p0 += at * s0[d];
            if (PyArray_DIMS(%(transition)s)[d] != 1) p1 += at * s1[d];
            if (PyArray_DIMS(%(emissions)s)[d] != 1) p2 += at * s2[d];
        }
        const double *li = (const double *)p0, *lt = (const double *)p1, *em = (const double *)p2;
        double *o = (double *)PyArray_DATA(%(out)s) + b * T * K;
        if (T == 0) continue;
        if (forward) {
            for (npy_intp k = 0; k < K; ++k) o[k] = li[k * li_k] + em[k * em_k];
            for (npy_intp t = 1; t < T; ++t) {
                const double *L = lt + (t - 1) * lt_t;
                for (npy_intp k = 0; k < K; ++k) {
                    for (npy_intp j = 0; j < K; ++j)
                        terms[j] = o[(t - 1) * K + j] + L[j * lt_j + k * lt_k];
                    o[t * K + k] = aemix_logsumexp_terms(terms, K) + em[t * em_t + k * em_k];
                }
            }
        } else {
            for (npy_intp k = 0; k < K; ++k) o[(T - 1) * K + k] = 0.0;
            for (npy_intp t = T - 2; t >= 0; --t) {
                const double *L = lt + t * lt_t;  /* L_{t+1} */
                for (npy_intp j = 0; j < K; ++j) {
                    for (npy_intp k = 0; k < K; ++k)
                        terms[k] = L[j * lt_j + k * lt_k] + em[(t + 1) * em_t + k * em_k]
                                   + o[(t + 1) * K + k];
                    o[t * K + j] = aemix_logsumexp_terms(terms, K);
                }
            }
        }
    }
    free(terms);
}
"""


class ChainMessages(COp):
    """Log-space forward (``alpha``) or backward (``beta``) messages of a Markov chain.

    Inputs ``(log_initial, log_transition, emissions)`` of shapes ``(*B, K)``, ``(*B, K, K)``
    (``homogeneous``) or ``(*B, T - 1, K, K)``, and ``(*B, T, K)``, with any leading batch axes
    ``B`` (broadcast); the output is ``(*B, T, K)``:

    * forward: ``alpha_0 = log_initial + E_0``,
      ``alpha_t = logsumexp_j(alpha_{t-1, j} + L_t[j, :]) + E_t``, so ``alpha_t[k]`` is
      ``log p(data_0..data_t, Z_t = k)``;
    * backward: ``beta_{T-1} = 0``, ``beta_t = logsumexp_k(L_{t+1}[:, k] + E_{t+1, k} + beta_{t+1, k})``,
      so ``beta_t[j]`` is ``log p(data_{t+1}..data_{T-1} | Z_t = j)``.

    ``L_t`` is ``log_transition`` (homogeneous) or its entry ``t - 1``.  The sums are stable
    (``-inf`` where every term is).  The forward messages have a gradient
    (`ChainMessagesGrad`), which MALA and HMC differentiate the chain's density through.
    """

    @property
    def description(self) -> str:
        """The operation in a model's words (`aemix.errors.describe_operation`)."""
        return "the Markov chain's forward recursion"

    __props__ = ("forward", "homogeneous")

    def __init__(self, forward: bool, homogeneous: bool):
        self.forward = forward
        self.homogeneous = homogeneous
        super().__init__()

    def make_node(self, log_initial, log_transition, emissions):
        core = (1, 2 if self.homogeneous else 3, 2)
        inputs, batch = _broadcast_batch((log_initial, log_transition, emissions), core)
        out = TensorType("float64", shape=(*batch, *inputs[2].type.shape[-2:]))()
        return Apply(self, inputs, [out])

    def perform(self, node, inputs, outputs):
        log_initial, log_transition, emissions = inputs
        n_steps, k = emissions.shape[-2:]
        trans_batch = log_transition.shape[: -2 if self.homogeneous else -3]
        batch = np.broadcast_shapes(log_initial.shape[:-1], trans_batch, emissions.shape[:-2])
        out = np.empty((*batch, n_steps, k))

        def transition(t):  # L_t, t >= 1
            return log_transition if self.homogeneous else log_transition[..., t - 1, :, :]

        with np.errstate(divide="ignore", invalid="ignore"):
            if n_steps == 0:
                pass  # (no step: no message)
            elif self.forward:
                alpha = log_initial + emissions[..., 0, :]
                out[..., 0, :] = alpha
                for t in range(1, n_steps):
                    alpha = _logsumexp(alpha[..., :, None] + transition(t), -2)
                    alpha = alpha + emissions[..., t, :]
                    out[..., t, :] = alpha
            else:
                beta = np.zeros((*batch, k))
                out[..., n_steps - 1, :] = beta
                for t in range(n_steps - 2, -1, -1):
                    ahead = (emissions[..., t + 1, :] + beta)[..., None, :]
                    beta = _logsumexp(transition(t + 1) + ahead, -1)
                    out[..., t, :] = beta
        outputs[0][0] = out

    def c_support_code(self, **kwargs):
        return _MESSAGES_SUPPORT

    def c_headers(self, **kwargs):
        return ["<math.h>", "<stdlib.h>"]

    def c_code(self, node, name, inames, onames, sub):
        initial, transition, emissions = inames
        return _MESSAGES_CODE % dict(
            initial=initial,
            transition=transition,
            emissions=emissions,
            out=onames[0],
            homogeneous=int(self.homogeneous),
            forward=int(self.forward),
            fail=sub["fail"],
        )

    def c_code_cache_version(self):
        return (1,)

    def infer_shape(self, fgraph, node, shapes):
        n_batch = node.outputs[0].ndim - 2
        batch = []
        for axis in range(n_batch):
            batch.append(at.max(at.stack([at.as_tensor_variable(s[axis]) for s in shapes])))
        return [(*batch, *shapes[2][-2:])]

    def L_op(self, inputs, outputs, output_grads):
        """The forward messages' reverse mode (`ChainMessagesGrad`): what the gradient kernels
        differentiate a chain's marginal density through.  The backward messages (recovery
        only) have none."""
        if not self.forward:
            return super().L_op(inputs, outputs, output_grads)
        (alpha,) = outputs
        (g_alpha,) = output_grads
        return ChainMessagesGrad(self.homogeneous)(*inputs, alpha, g_alpha)

    def __str__(self):
        return "MarkovForward" if self.forward else "MarkovBackward"


class ChainMessagesGrad(Op):
    r"""The gradient of ``sum(G * alpha)`` with respect to the inputs of the forward messages
    ``alpha`` (`ChainMessages`), given ``alpha`` and ``G``.

    Reverse mode through ``alpha_t = logsumexp_j(alpha_{t-1, j} + L_t[j, :]) + E_t``: with
    ``g_{T-1} = G_{T-1}`` and the weights ``w_t[j, k] = exp(alpha_{t-1, j} + L_t[j, k] -
    alpha_t[k] + E_t[k])`` (the posterior of the previous state given the current one, up to
    the data after it),

    .. math::

        \partial E_t = g_t, \quad \partial L_t[j, k] = g_t[k] w_t[j, k], \quad
        g_{t-1} = G_{t-1} + \sum_k g_t[k] w_t[\cdot, k], \quad \partial \log p_0 = g_0,

    ``O(T K^2)`` like the recursion.  Each gradient has its input's shape (summed over the batch
    axes it was broadcast along).
    """

    __props__ = ("homogeneous",)

    def __init__(self, homogeneous: bool):
        self.homogeneous = homogeneous
        super().__init__()

    @property
    def description(self) -> str:
        return "the gradient of the Markov chain's forward recursion"

    def make_node(self, log_initial, log_transition, emissions, alpha, g_alpha):
        inputs = [
            at.as_tensor_variable(x, dtype="float64")
            for x in (log_initial, log_transition, emissions, alpha, g_alpha)
        ]
        return Apply(self, inputs, [x.type() for x in inputs[:3]])

    def perform(self, node, inputs, outputs):
        log_initial, log_transition, emissions, alpha, g_alpha = inputs
        n_steps = emissions.shape[-2]
        batch = alpha.shape[:-2]
        g_trans = np.zeros((*batch, *log_transition.shape[-(2 if self.homogeneous else 3) :]))
        g_emis = np.empty(alpha.shape)
        g = np.broadcast_to(g_alpha[..., n_steps - 1, :], (*batch, alpha.shape[-1])).copy()
        emissions_b = np.broadcast_to(emissions, alpha.shape)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for t in range(n_steps - 1, 0, -1):
                g_emis[..., t, :] = g
                trans = log_transition if self.homogeneous else log_transition[..., t - 1, :, :]
                pre = alpha[..., t - 1, :, None] + trans
                norm = alpha[..., t, :] - emissions_b[..., t, :]
                w = np.exp(pre - norm[..., None, :])
                w = np.where(np.isfinite(w), w, 0.0)
                weighted = g[..., None, :] * w
                if self.homogeneous:
                    g_trans += weighted
                else:
                    g_trans[..., t - 1, :, :] += weighted
                g = g_alpha[..., t - 1, :] + weighted.sum(-1)
        g_emis[..., 0, :] = g
        outputs[0][0] = _sum_to_shape(g, log_initial.shape)
        outputs[1][0] = _sum_to_shape(g_trans, log_transition.shape)
        outputs[2][0] = _sum_to_shape(g_emis, emissions.shape)

    def infer_shape(self, fgraph, node, shapes):
        return shapes[:3]


def _sum_to_shape(x: np.ndarray, shape: tuple) -> np.ndarray:
    """``x`` summed over the leading axes and the axes of length one in ``shape`` it was
    broadcast along (the reverse of broadcasting)."""
    lead = x.ndim - len(shape)
    if lead:
        x = x.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1)
    if axes:
        x = x.sum(axis=axes, keepdims=True)
    return np.ascontiguousarray(x.reshape(shape))


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.sum(np.exp(x - top), axis=axis)) + np.squeeze(top, axis)


def _broadcast_batch(inputs, core_ndims) -> tuple[list[Variable], tuple]:
    """``inputs`` as float64 tensors with as many leading (batch) axes each, beyond their
    ``core_ndims`` axes, and the static shape of the broadcast batch axes."""
    inputs = [at.as_tensor_variable(x, dtype="float64") for x in inputs]
    batch = [x.ndim - c for x, c in zip(inputs, core_ndims)]
    if min(batch) < 0:
        raise TypeError(f"inputs of {[x.ndim for x in inputs]} dimensions, at least {core_ndims}")
    n_batch = max(batch)
    inputs = [at.shape_padleft(x, n_batch - b) if b < n_batch else x for x, b in zip(inputs, batch)]
    shape = []
    for axis in range(n_batch):
        lengths = {x.type.shape[axis] for x in inputs}
        known = {n for n in lengths if n not in (None, 1)}
        shape.append(known.pop() if len(known) == 1 else (1 if lengths == {1} else None))
    return inputs, tuple(shape)


def _batch_broadcasting(op, node, ctx, *inputs):
    # The Ops broadcast leading axes: an input shared by every chain gets a length-one chain axis.
    args = [x if is_batched else at.shape_padleft(x) for x, is_batched in inputs]
    return [(out, True) for out in op(*args, return_list=True)]


batch_node.register(ChainMessages)(_batch_broadcasting)
batch_node.register(ChainMessagesGrad)(_batch_broadcasting)


class BackwardSample(Op):
    """Forward-filter backward-sample: a joint draw of a chain's states from its forward messages.

    Inputs ``(alphas, log_transition, uniforms)`` of shapes ``(*B, T, K)``, ``(*B, K, K)``
    (``homogeneous``) or ``(*B, T - 1, K, K)``, and ``(*B, T)``; outputs the states ``(*B, T)``
    (int64) and the probabilities each was drawn from, ``(*B, T, K)``: ``Z_{T-1}`` from
    ``alpha_{T-1}``, then ``Z_t`` from ``alpha_t + L_{t+1}[:, z_{t+1}]``, each by inverse CDF
    (the number of cumulative probabilities below its uniform, as `aemix.recovery.inverse_cdf`).
    One node for the whole chain, so that the record's graph does not grow (nor deepen) with
    ``T``.
    """

    @property
    def description(self) -> str:
        """The operation in a model's words (`aemix.errors.describe_operation`)."""
        return "the Markov chain's backward sampling"

    __props__ = ("homogeneous",)

    def __init__(self, homogeneous: bool):
        self.homogeneous = homogeneous
        super().__init__()

    def make_node(self, alphas, log_transition, uniforms):
        core = (2, 2 if self.homogeneous else 3, 1)
        inputs, batch = _broadcast_batch((alphas, log_transition, uniforms), core)
        states = TensorType("int64", shape=(*batch, inputs[0].type.shape[-2]))()
        probs = TensorType("float64", shape=(*batch, *inputs[0].type.shape[-2:]))()
        return Apply(self, inputs, [states, probs])

    def perform(self, node, inputs, outputs):
        alphas, log_transition, uniforms = inputs
        n_steps, k = alphas.shape[-2:]
        trans_batch = log_transition.shape[: -2 if self.homogeneous else -3]
        batch = np.broadcast_shapes(alphas.shape[:-2], trans_batch, uniforms.shape[:-1])
        alphas = np.broadcast_to(alphas, (*batch, n_steps, k))
        uniforms = np.broadcast_to(uniforms, (*batch, n_steps))
        states = np.empty((*batch, n_steps), dtype="int64")
        probs = np.empty((*batch, n_steps, k))
        log_p = alphas[..., n_steps - 1, :]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for t in range(n_steps - 1, -1, -1):
                if t < n_steps - 1:
                    into_next = log_transition
                    if not self.homogeneous:
                        into_next = log_transition[..., t, :, :]
                    into_next = np.broadcast_to(into_next, (*batch, k, k))
                    column = np.take_along_axis(into_next, states[..., t + 1, None, None], -1)
                    log_p = alphas[..., t, :] + column[..., 0]
                top = np.max(log_p, axis=-1, keepdims=True)
                p = np.exp(log_p - np.where(np.isfinite(top), top, 0.0))
                p = p / np.sum(p, axis=-1, keepdims=True)
                probs[..., t, :] = p
                below = np.cumsum(p[..., :-1], axis=-1) < uniforms[..., t, None]
                states[..., t] = np.sum(below, axis=-1)
        outputs[0][0] = states
        outputs[1][0] = probs

    def __str__(self):
        return "MarkovBackwardSample"


batch_node.register(BackwardSample)(_batch_broadcasting)


@dataclass(frozen=True, eq=False)
class ChainRecovery:
    """What a joint draw of one chain's states needs (shared by the `aemix.recovery.Recovery`
    of each of its states).

    Attributes
    ----------
    names
        The states' names, in the chain's order.
    alphas
        ``(T, K)``: the forward messages, in the latents' values.
    log_transition
        ``(K, K)`` or ``(T - 1, K, K)``: the log transition probabilities, in the same.
    """

    names: tuple[str, ...]
    alphas: Variable
    log_transition: Variable

    def mapped(self, fn) -> ChainRecovery:
        """The same with ``fn`` applied to each graph."""
        return ChainRecovery(self.names, fn(self.alphas), fn(self.log_transition))

    def draws(self, uniforms: dict[str, Variable]) -> tuple[Variable, Variable]:
        """``(states, probs)`` of a joint draw (`BackwardSample`), given the uniforms of the
        states named in ``uniforms`` (a state not there is drawn from 0.5, and unused)."""
        stacked = at.stack(
            [uniforms.get(name, at.constant(np.float64(0.5))) for name in self.names]
        )
        draw = BackwardSample(self.log_transition.ndim == 2)
        states, probs = draw(self.alphas, self.log_transition, stacked, return_list=True)
        return states, probs


class ChainTerms(NamedTuple):
    """The arrays of one chain's density (see the module).

    Attributes
    ----------
    log_initial
        ``(K,)``: ``log P(Z_0 = k)``.
    log_transition
        ``(K, K)`` or ``(T - 1, K, K)``: ``log P(Z_t = k | Z_{t-1} = j)`` at ``[..., j, k]``.
    emissions
        ``(T, K)``: the emissions' log-density with ``Z_t = k``.
    alphas
        ``(T, K)``: the forward messages.
    """

    log_initial: Variable
    log_transition: Variable
    emissions: Variable
    alphas: Variable


def _normalized_log(p: Variable) -> Variable:
    """``log p`` normalized along its last axis (as aeppl's categorical density is)."""
    return at.log(p) - at.log(at.sum(p, axis=-1, keepdims=True))


def chain_terms(op: MarkovChainRV, values, initial, transition, *emissions) -> ChainTerms:
    """The `ChainTerms` of a `MarkovChainRV` node at its outputs' ``values``, built once per
    `aemix.ops.density_build` (the density and every state's conditional share them)."""
    with density_build() as build:
        key = ("markov_chain_terms", op, initial, transition, tuple(emissions), tuple(values))
        if key not in build.densities:
            log_initial = _normalized_log(initial)
            log_transition = _normalized_log(transition)
            matrix = _emission_matrix(op, emissions, values, build.dependence)
            forward = ChainMessages(True, transition.ndim == 2)
            alphas = forward(log_initial, log_transition, matrix)
            build.densities[key] = ChainTerms(log_initial, log_transition, matrix, alphas)
        return build.densities[key]


@marginal_conditionals.register(MarkovChainRV)
def _chain_conditionals(op, values, *inputs):
    """``log P(Z_{T-1} = k, data)``: its ``logsumexp`` is the chain's density."""
    terms = chain_terms(op, values, *inputs)
    return Conditionals(terms.alphas[-1], at.constant(np.arange(op.n_values)))


def state_conditionals(node: Apply, values, step: int, next_draw: Variable | None):
    """``(log_probs, smoothed)`` of state ``step`` of the chain ``node``, each ``(K,)`` and
    normalized: its conditional given the draw ``next_draw`` of the state after it (``None`` for
    the last state), from which forward-filter backward-sample draws it (`BackwardSample` draws
    every state at once), and its smoothed marginal given the data alone (forward-backward)."""
    terms = chain_terms(node.op, values, *node.inputs)
    with density_build() as build:
        # Every state's smoothed marginal at once, (T, K): a row per state, not a graph each.
        key = ("markov_chain_smoothed", terms.alphas)
        if key not in build.densities:
            backward = ChainMessages(False, terms.log_transition.ndim == 2)
            betas = backward(terms.log_initial, terms.log_transition, terms.emissions)
            build.densities[key] = _normalize(terms.alphas + betas, axis=-1)
        smoothed = build.densities[key]
    alpha = terms.alphas[step]
    log_joint = alpha
    if next_draw is not None:
        into_next = terms.log_transition
        if into_next.ndim == 3:
            into_next = into_next[step]
        # log P_{t+1}[:, z_{t+1}], written as a row of the transpose (one index per chain).
        log_joint = alpha + into_next.T[next_draw]
    return _normalize(log_joint), smoothed[step]


def _normalize(log_p: Variable, axis: int = 0) -> Variable:
    from aemix.ops import logsumexp

    return log_p - at.shape_padaxis(logsumexp(log_p, axis=axis), axis)


# -- the emissions ---------------------------------------------------------------------------------


def _emission_matrix(op, emissions, values, dependence) -> Variable:
    """``E[t, k]``: the log-density of the emissions of state ``t`` at ``Z_t = k``, ``(T, K)``.

    Each emission ``Y`` (drawn at some steps, its parameters reading their states ``S``) is
    evaluated once, at its outputs' values stacked, with ``S`` at every value ``k``.
    """
    from aemix.vectorize import alloc

    k = op.n_values
    total = at.zeros((op.length, k))
    for form in range(len(emissions) // 2):
        states, y = emissions[2 * form], emissions[2 * form + 1]
        mine = sorted(
            (row, step, i)
            for i, (row, step, f) in enumerate(zip(op.rows, op.steps, op.forms))
            if f == form
        )
        steps = [step for _, step, _ in mine]
        if op.is_packed:
            value = values[form]
        else:
            value = stack_values([values[i] for _, _, i in mine])
        logp = value_logprob(y, value)
        if logp.ndim > 1:
            logp = at.sum(logp, axis=tuple(range(1, logp.ndim)))
        dependence.track(states)
        support = at.constant(np.arange(k, dtype=states.type.dtype))
        grid = alloc(at.shape_padright(support), k, len(steps))
        (per_value,) = vectorize_graph(
            [logp], {states: grid}, reads=lambda v, states=states: states in dependence.reads(v)
        )
        if steps == list(range(op.length)):
            total = total + per_value.T
        else:
            total = at.inc_subtensor(total[np.array(steps)], per_value.T)
    return total


def pack_observed(observed: dict[Variable, Variable]) -> dict[Variable, Variable]:
    """``observed`` (random variables to their data) with the outputs of each `MarkovChainRV`
    whose outputs are all observed replaced by the outputs of its packed node (one per emission,
    its data stacked); see `MarkovChainRV.packed`."""
    packed: dict[Variable, Variable] = {}
    nodes = []
    for rv, data in observed.items():
        node = rv.owner
        if node is not None and isinstance(node.op, MarkovChainRV) and not node.op.is_packed:
            if all(out in observed for out in node.outputs):
                if node not in nodes:
                    nodes.append(node)
                continue
        packed[rv] = data
    for node in nodes:
        op = node.op
        new = op.packed()(*node.inputs, return_list=True)
        for form, out in enumerate(new):
            rows = sorted(
                (row, i) for i, (row, f) in enumerate(zip(op.rows, op.forms)) if f == form
            )
            data = stack_values([at.as_tensor_variable(observed[node.outputs[i]]) for _, i in rows])
            out.name = f"{node.outputs[rows[0][1]].name}..{node.outputs[rows[-1][1]].name}"
            packed[out] = data.astype(out.type.dtype) if data.dtype != out.type.dtype else data
    return packed


def stack_values(vs: list[Variable]) -> Variable:
    """The variables ``vs`` (of one type) stacked along a new leading axis; a constant when they
    all are."""
    if all(isinstance(v, TensorConstant) for v in vs):
        return at.constant(np.stack([np.asarray(v.data) for v in vs]))
    return at.stack(vs)


class _NoCommonForm(Exception):
    pass


def common_form(graphs: list[Variable], is_state, reads) -> tuple[Variable, Variable, list] | None:
    """The form that ``graphs`` (one per step) share, with the parts in which they differ as its
    inputs (first-order anti-unification).

    Returns ``(template, marker, leaves)``: ``template`` is a graph with the operations of every
    graph, ``marker`` its input standing for graph ``i``'s state (where ``is_state``), and each
    of ``leaves``, ``(leaf, [v_0, ..., v_{n-1}])``, an input standing for ``v_i`` in graph ``i``:
    a part in which the graphs differ that reads no state (``reads`` is false: data), a tensor
    of one type in every graph.  The generators of random variables may differ (a density does
    not read them).  ``None`` when the graphs differ on the path to a state.
    """
    leaves: list[tuple[Variable, list[Variable]]] = []
    memo: dict[tuple, Variable] = {}
    nodes_memo: dict[tuple, Apply] = {}
    marker = []

    def same_constant(vs) -> bool:
        first = vs[0]
        return all(
            isinstance(v, TensorConstant)
            and v.type == first.type
            and np.array_equal(v.data, first.data)
            for v in vs
        )

    def walk(vs: tuple) -> Variable:
        if vs in memo:
            return memo[vs]
        first = vs[0]
        if all(v is first for v in vs) or same_constant(vs):
            result = first
        elif all(is_state(v) for v in vs):
            if not marker:
                marker.append(first.type())
            result = marker[0]
        elif not any(reads(v) for v in vs):
            if not isinstance(first.type, TensorType) or any(v.type != first.type for v in vs):
                raise _NoCommonForm
            result = first.type()
            leaves.append((result, list(vs)))
        else:
            nodes = tuple(v.owner for v in vs)
            if any(
                n is None or n.op != nodes[0].op or len(n.inputs) != len(nodes[0].inputs)
                for n in nodes
            ):
                raise _NoCommonForm
            index = nodes[0].outputs.index(first)
            if any(n.outputs.index(v) != index for n, v in zip(nodes, vs)):
                raise _NoCommonForm
            if nodes not in nodes_memo:
                inputs = [
                    nodes[0].inputs[i]
                    if i == 0 and isinstance(nodes[0].op, RandomVariable)
                    else walk(tuple(n.inputs[i] for n in nodes))
                    for i in range(len(nodes[0].inputs))
                ]
                nodes_memo[nodes] = nodes[0].clone_with_new_inputs(inputs, strict=False)
            result = nodes_memo[nodes].outputs[index]
        memo[vs] = result
        return result

    try:
        template = walk(tuple(graphs))
    except _NoCommonForm:
        return None
    if not marker:
        return None
    return template, marker[0], leaves


def vectorized_emission(graphs: list[Variable], is_state, reads, states_name: str):
    """``(S, Y)``: one random variable ``Y`` with a leading axis over the steps that stands for
    the per-step emissions ``graphs``, its parameters reading the vector ``S`` of their states;
    ``None`` when they are not copies of one form (`common_form`)."""
    form = common_form(graphs, is_state, reads)
    if form is None:
        return None
    template, marker, leaves = form
    states = at.tensor(marker.type.dtype, shape=(len(graphs),), name=states_name)
    replacements = {marker: states, **{leaf: stack_values(vs) for leaf, vs in leaves}}
    try:
        (y,) = vectorize_graph([template], replacements)
    except VectorizationError:
        return None
    if y.owner is None or not isinstance(y.owner.op, RandomVariable):
        return None
    y.name = graphs[0].name
    return states, y


# -- the transition matrices -----------------------------------------------------------------------


def stack_transitions(matrices: list[Variable]) -> Variable:
    """``P_1, ..., P_{T-1}`` as one tensor: one ``(K, K)`` matrix when they are all the same (one
    variable, or equal constants), a ``(T - 1, K, K)`` constant when they are constants (or
    constant rows of a constant), the slice ``P[a:b]`` when they are ``P[a], P[a + 1], ...``,
    else their stack."""
    first = matrices[0]
    if all(m is first for m in matrices):
        return first
    values = [_constant_value(m) for m in matrices]
    if all(v is not None for v in values):
        if all(np.array_equal(v, values[0]) for v in values):
            return at.constant(values[0])
        return at.constant(np.stack(values))
    base, indices = None, []
    for m in matrices:
        node = m.owner
        if node is None or not isinstance(node.op, Subtensor) or len(node.inputs) != 2:
            break
        base = node.inputs[0] if base is None else base
        try:
            index = int(get_scalar_constant_value(node.inputs[1]))
        except NotScalarConstantError:
            break
        if node.inputs[0] is not base or base.ndim != 3:
            break
        indices.append(index)
    if len(indices) == len(matrices) and np.all(np.diff(indices) == 1) and indices[0] >= 0:
        return base[indices[0] : indices[-1] + 1]
    return at.stack(matrices)


def _constant_value(m: Variable) -> np.ndarray | None:
    """The value of ``m`` when it is a constant or a constant index of one, else ``None``."""
    if isinstance(m, TensorConstant):
        return np.asarray(m.data)
    node = m.owner
    if node is not None and isinstance(node.op, Subtensor) and len(node.inputs) == 2:
        base, index = node.inputs
        if isinstance(base, TensorConstant):
            try:
                return np.asarray(base.data)[int(get_scalar_constant_value(index))]
            except (NotScalarConstantError, IndexError):
                return None
    return None


def constant_length(x: Variable) -> int | None:
    """The length of ``x``'s last axis when it is known before any value is."""
    if isinstance(x, Constant):
        return int(np.shape(x.data)[-1])
    from aemix.marginalize import concrete_shape

    shape = concrete_shape(x)
    return None if shape is None else int(shape[-1])
