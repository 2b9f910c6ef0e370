"""Models written with ``aesara.scan``: unrolled into their steps (`aemix.loops`), then summed.

Each model here is written the way an Aesara user writes a time series, with a step function that
draws from the ``RandomStream`` and returns its updates.  Densities are compared with brute-force
sums over every path or with the forward algorithm (`tests.test_markov_chains`), and the recovered
states with the smoothed marginals.
"""

import itertools

import aesara
import aesara.tensor as at
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logsumexp

import aemix
from tests.test_markov_chains import (
    P2,
    emission_logpdf,
    forward_messages,
    smoothed_marginals,
    summed_by_the_chain_rule,
)

FAST = "FAST_COMPILE"


def scan_hmm(n_steps, transition, initial, emit_inside=True, mu_name="mu"):
    """``mu ~ N(0, 1)`` per state, ``z_0 ~ Cat(initial)``, a scan of ``z_t ~ Cat(P_t[z_{t-1}])``
    (``P_t`` a sequence when ``transition`` is ``(T, K, K)``), ``y_t ~ N(mu[z_t], 1)`` drawn in the
    step (``emit_inside``) or after the loop from the whole path."""
    srng = at.random.RandomStream(0)
    k = len(initial)
    mu = srng.normal(np.zeros(k), 1.0, name=mu_name)
    z0 = srng.categorical(initial, name="z0")
    time_varying = transition.ndim == 3

    def step(*args):
        if time_varying:
            p_t, z_prev = args
        else:
            (z_prev,) = args
            p_t = at.as_tensor(transition)
        z = srng.categorical(p_t[z_prev])
        updates = {z.owner.inputs[0]: z.owner.outputs[0]}
        if not emit_inside:
            return z, updates
        y = srng.normal(mu[z], 1.0)  # mu is read from outside: scan copies it in
        updates[y.owner.inputs[0]] = y.owner.outputs[0]
        return [z, y], updates

    kwargs = {"sequences": [at.as_tensor(transition[1:])]} if time_varying else {}
    outputs_info = [z0] if not emit_inside else [z0, None]
    result, _ = aesara.scan(step, outputs_info=outputs_info, n_steps=n_steps - 1, **kwargs)
    if emit_inside:
        states, ys = result
    else:
        states, ys = result, None
    return srng, mu, z0, states, ys


@pytest.mark.parametrize("n_steps", [6, 80])
def test_emissions_drawn_inside_the_loop_are_summed_by_the_forward_algorithm(n_steps):
    """The data observed for the loop's emission output are split into one observation per step;
    ``mu`` read inside the step stays one variable; the density is the forward algorithm's (the
    initial state has no emission here: ``y_t`` for ``t >= 1``)."""
    k = 3
    rng = np.random.default_rng(n_steps)
    transition = rng.dirichlet(np.ones(k), size=(n_steps, k))
    initial = np.array([0.2, 0.5, 0.3])
    _, mu, _, states, ys = scan_hmm(n_steps, transition, initial)
    data = rng.normal(size=n_steps - 1) * 2
    sampler = aemix.build_sampler(ys, observed={ys: data}, mode=FAST)
    assert summed_by_the_chain_rule(sampler)
    assert sampler.latent == ("mu",)
    for m in (np.array([-2.0, 0.0, 1.5]), np.array([0.5, -0.5, 3.0])):
        emission = np.vstack([np.zeros(k), emission_logpdf(data, m)])
        expected = st.norm().logpdf(m).sum() + logsumexp(
            forward_messages(emission, transition, initial)[-1]
        )
        np.testing.assert_allclose(sampler.logdensity({"mu": m}), expected, rtol=1e-9)


def test_a_path_indexed_after_the_loop_is_exact_against_every_path():
    n_steps = 6
    _, mu, _, states, _ = scan_hmm(n_steps, P2, np.array([0.5, 0.5]), emit_inside=False)
    srng = at.random.RandomStream(3)
    y = srng.normal(mu[states], 1.0, name="y")
    data = np.array([0.3, -1.0, 2.0, 1.5, 0.2])
    sampler = aemix.build_sampler(y, observed={y: data}, mode=FAST)
    for m in (np.array([0.4, -0.7]), np.array([-1.0, 2.0])):
        terms = []
        for path in itertools.product(range(2), repeat=n_steps):
            lp = np.log(0.5) + sum(np.log(P2[path[t - 1], path[t]]) for t in range(1, n_steps))
            terms.append(lp + st.norm(m[list(path[1:])], 1.0).logpdf(data).sum())
        expected = logsumexp(terms) + st.norm().logpdf(m).sum()
        np.testing.assert_allclose(sampler.logdensity({"mu": m}), expected, rtol=1e-10)


def test_a_second_order_chain_with_two_taps_is_exact():
    """``z_t ~ Cat(Q[z_{t-2}, z_{t-1}])`` written with ``taps=[-2, -1]``: the initial rows are the
    model's two first states, and the density is the sum over every path."""
    k, n_new = 2, 4
    rng = np.random.default_rng(4)
    second = rng.dirichlet(np.ones(k), size=(k, k))
    srng = at.random.RandomStream(0)
    mu = srng.normal(np.zeros(k), 1.0, name="mu")
    za = srng.categorical(np.array([0.3, 0.7]), name="za")
    zb = srng.categorical(at.as_tensor(P2)[za], name="zb")

    def step(z_2, z_1):
        z = srng.categorical(at.as_tensor(second)[z_2, z_1], name="z")
        return z, {z.owner.inputs[0]: z.owner.outputs[0]}

    states, _ = aesara.scan(
        step, outputs_info=[{"initial": at.stack([za, zb]), "taps": [-2, -1]}], n_steps=n_new
    )
    y = srng.normal(mu[states], 1.0, name="y")
    data = rng.normal(size=n_new)
    sampler = aemix.build_sampler(y, observed={y: data}, mode=FAST)
    assert set(sampler.marginalized) == {"za", "zb", *(f"z[{t}]" for t in range(n_new))}
    for m in (np.array([0.3, -1.2]), np.array([-2.0, 0.5])):
        terms = []
        for path in itertools.product(range(k), repeat=n_new + 2):
            lp = np.log([0.3, 0.7][path[0]]) + np.log(P2[path[0], path[1]])
            lp += sum(
                np.log(second[path[t - 2], path[t - 1], path[t]]) for t in range(2, n_new + 2)
            )
            terms.append(lp + st.norm(m[list(path[2:])], 1.0).logpdf(data).sum())
        expected = logsumexp(terms) + st.norm().logpdf(m).sum()
        np.testing.assert_allclose(sampler.logdensity({"mu": m}), expected, rtol=1e-10)


def test_an_observed_chain_estimates_its_transition_rows():
    """A fully observed chain (the loop's output observed) with latent Dirichlet rows: the density
    is the rows' prior plus the log transition probabilities of the observed path."""
    k, n_steps = 3, 30
    rng = np.random.default_rng(5)
    srng = at.random.RandomStream(0)
    rows = srng.dirichlet(np.ones((k, k)), name="rows")
    z0 = srng.categorical(np.ones(k) / k, name="z0")

    def step(z_prev, rows):
        z = srng.categorical(rows[z_prev])
        return z, {z.owner.inputs[0]: z.owner.outputs[0]}

    states, _ = aesara.scan(step, outputs_info=[z0], non_sequences=[rows], n_steps=n_steps)
    path = rng.integers(0, k, size=n_steps + 1)
    sampler = aemix.build_sampler(states, observed={z0: path[0], states: path[1:]}, mode=FAST)
    assert sampler.marginalized == ()
    value = rng.dirichlet(np.ones(k), size=k)
    expected = sum(st.dirichlet(np.ones(k)).logpdf(r) for r in value) - np.log(k)
    expected += np.log(value[path[:-1], path[1:]]).sum()
    np.testing.assert_allclose(sampler.logdensity({"rows": value}), expected, rtol=1e-9)


def test_a_latent_random_walk_is_one_latent_per_step():
    """``x_t ~ N(x_{t-1}, 0.5)``, ``y_t ~ N(x_t, 1)`` drawn in the step: each state is a latent
    variable of its own, named after the loop output, and the density is the Gaussian chain's."""
    n_steps = 5
    srng = at.random.RandomStream(0)
    x0 = srng.normal(0.0, 1.0, name="x0")

    def step(x_prev):
        x = srng.normal(x_prev, 0.5)
        y = srng.normal(x, 1.0)
        return [x, y], {
            x.owner.inputs[0]: x.owner.outputs[0],
            y.owner.inputs[0]: y.owner.outputs[0],
        }

    (walk, ys), _ = aesara.scan(step, outputs_info=[x0, None], n_steps=n_steps)
    data = np.linspace(-1.0, 1.0, n_steps)
    sampler = aemix.build_sampler(ys, observed={ys: data}, mode=FAST)
    assert set(sampler.latent) == {"x0", *(f"walk[{t}]" for t in range(n_steps))}
    rng = np.random.default_rng(0)
    x = rng.normal(size=n_steps + 1)
    values = {"x0": x[0], **{f"walk[{t}]": x[t + 1] for t in range(n_steps)}}
    expected = (
        st.norm().logpdf(x[0])
        + st.norm(x[:-1], 0.5).logpdf(x[1:]).sum()
        + st.norm(x[1:], 1.0).logpdf(data).sum()
    )
    np.testing.assert_allclose(sampler.logdensity(values), expected, rtol=1e-10)


def test_recovered_paths_of_a_scan_chain_match_the_smoothed_marginals():
    """With ``mu`` observed, the draws of ``states`` (the loop output, kept whole under its name)
    have the forward-backward marginals within Monte Carlo error."""
    n_steps, k = 8, 2
    initial = np.array([0.5, 0.5])
    mu_value = np.array([-1.0, 1.0])
    srng, mu, _, states, ys = scan_hmm(n_steps, P2, initial)
    nuisance = srng.normal(0.0, 1.0, name="nuisance")
    data = np.array([-1.2, -0.8, 0.9, 1.4, 1.1, -0.2, -1.5])
    sampler = aemix.build_sampler([ys, nuisance], observed={ys: data, mu: mu_value}, mode=FAST)
    result = sampler.sample(200, n_chains=8, warmup=20, seed=0, start="prior")
    paths = np.asarray(result.draws["states"]).reshape(-1, n_steps - 1)
    emission = np.vstack([np.zeros(k), emission_logpdf(data, mu_value)])
    smoothed = smoothed_marginals(emission, P2, initial)[1:, 1]
    n = len(paths)
    np.testing.assert_array_less(
        np.abs(paths.mean(axis=0) - smoothed), 5 * np.sqrt(smoothed * (1 - smoothed) / n) + 1e-12
    )


def test_loops_that_cannot_be_unrolled_are_refused_by_name():
    srng = at.random.RandomStream(0)
    z0 = srng.categorical(np.array([0.5, 0.5]), name="z0")
    length = at.iscalar("length")

    def step(z_prev):
        z = srng.categorical(at.as_tensor(P2)[z_prev])
        return z, {z.owner.inputs[0]: z.owner.outputs[0]}

    states, _ = aesara.scan(step, outputs_info=[z0], n_steps=length)
    states.name = "states"
    y = srng.normal(states, 1.0, name="y")
    with pytest.raises(aemix.ModelError, match="'states'.*not a constant"):
        aemix.build_sampler(y, observed={y: np.zeros(3)}, mode=FAST)


def test_data_of_the_wrong_length_for_a_loop_output_are_refused():
    _, _, _, states, ys = scan_hmm(5, P2, np.array([0.5, 0.5]))
    with pytest.raises(aemix.ModelError, match="'ys'.*shape \\(7,\\).*4 steps"):
        aemix.build_sampler(ys, observed={ys: np.zeros(7)}, mode=FAST)


def test_a_vector_state_is_several_independent_chains_summed_exactly():
    """``z_0 ~ Cat(1/2)`` of size 2, the step drawing both chains' next states and their
    emissions at once: the density is the product of the two chains' sums over every path."""
    n_new, c = 3, 2
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, 1.0, size=2, name="mu")
    z0 = srng.categorical(np.ones((c, 2)) / 2, name="z0")

    def step(z_prev):
        z = srng.categorical(at.as_tensor(P2)[z_prev])
        y = srng.normal(mu[z], 1.0)
        return [z, y], {
            z.owner.inputs[0]: z.owner.outputs[0],
            y.owner.inputs[0]: y.owner.outputs[0],
        }

    (_, ys), _ = aesara.scan(step, outputs_info=[z0, None], n_steps=n_new)
    data = np.random.default_rng(2).normal(size=(n_new, c))
    sampler = aemix.build_sampler(ys, observed={ys: data}, mode=FAST)
    m = np.array([0.3, -0.5])
    expected = st.norm().logpdf(m).sum()
    for chain in range(c):
        terms = []
        for path in itertools.product(range(2), repeat=n_new + 1):
            lp = np.log(0.5) + sum(np.log(P2[path[t - 1], path[t]]) for t in range(1, n_new + 1))
            terms.append(lp + st.norm(m[list(path[1:])], 1.0).logpdf(data[:, chain]).sum())
        expected += logsumexp(terms)
    np.testing.assert_allclose(sampler.logdensity({"mu": m}), expected, rtol=1e-10)


def autoregression(n_steps, order, latent_start=False):
    """``x_t ~ N(sum_k phi_k x_{t-k}, sigma)`` written with scan, its output observed whole."""
    srng = at.random.RandomStream(0)
    phi = srng.normal(0.0, 0.5, size=order, name="phi")
    sigma = srng.halfnormal(0.0, 1.0, name="sigma")
    if latent_start:
        start = srng.normal(0.0, 1.0, size=order, name="start")
    else:
        start = at.as_tensor(np.zeros(order))

    def step(*args):
        *lags, phi, sigma = args
        mean = sum(phi[k] * lag for k, lag in enumerate(reversed(lags)))
        x = srng.normal(mean, sigma)
        return x, {x.owner.inputs[0]: x.owner.outputs[0]}

    info = {"initial": start, "taps": list(range(-order, 0))} if order > 1 else start[0]
    xs, _ = aesara.scan(step, outputs_info=[info], non_sequences=[phi, sigma], n_steps=n_steps)
    return xs


@pytest.mark.parametrize("order, latent_start", [(1, False), (2, False), (2, True)])
def test_an_observed_autoregression_is_one_variable_over_its_steps(order, latent_start):
    """Observed whole, the loop's steps are independent given the data: one random variable over
    the steps (not one per step), whose density is the autoregression's, with the initial values
    latent or constant."""
    n_steps = 40
    rng = np.random.default_rng(order)
    xs = autoregression(n_steps, order, latent_start)
    data = np.cumsum(rng.normal(size=n_steps)) * 0.3
    sampler = aemix.build_sampler(xs, observed={xs: data}, mode=FAST)
    assert sampler.observed == ("xs",)
    phi, sigma = np.array([0.6, -0.2])[:order], 0.7
    start = np.array([0.3, -0.4])[:order] if latent_start else np.zeros(order)
    values = {"phi": phi, "sigma": sigma, **({"start": start} if latent_start else {})}
    history = np.concatenate([start, data])
    mean = sum(phi[k] * history[order - 1 - k : order - 1 - k + n_steps] for k in range(order))
    expected = (
        st.norm(0, 0.5).logpdf(phi).sum()
        + st.halfnorm().logpdf(sigma)
        + (st.norm().logpdf(start).sum() if latent_start else 0.0)
        + st.norm(mean, sigma).logpdf(data).sum()
    )
    np.testing.assert_allclose(sampler.logdensity(values), expected, rtol=1e-10)


def test_a_regression_over_a_sequence_is_one_variable_and_exact():
    srng = at.random.RandomStream(0)
    a = srng.normal(0.0, 1.0, name="a")
    b = srng.normal(0.0, 1.0, name="b")
    x = np.linspace(0.0, 1.0, 10)

    def step(x_t):
        y = srng.normal(a + b * x_t, 1.0)
        return y, {y.owner.inputs[0]: y.owner.outputs[0]}

    ys, _ = aesara.scan(step, sequences=[at.as_tensor(x)])
    data = 1.0 + 2.0 * x
    sampler = aemix.build_sampler(ys, observed={ys: data}, mode=FAST)
    assert sampler.observed == ("ys",)
    expected = st.norm().logpdf([0.5, 1.0]).sum() + st.norm(0.5 + x, 1.0).logpdf(data).sum()
    np.testing.assert_allclose(sampler.logdensity({"a": 0.5, "b": 1.0}), expected, rtol=1e-12)


def test_maps_over_a_random_vector_nested_and_backwards_are_exact():
    """``aesara.map`` over a latent vector (its length from the vector's static shape; the step
    reads ``mu[:3]``, which aeppl's rewrites used to trip on), a map nested in a map, and a loop
    over a sequence backwards, each observed whole."""
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, 1.0, size=3, name="mu")
    ys, _ = aesara.map(lambda m: srng.normal(m, 1.0), sequences=[mu])
    data = np.array([0.1, 0.5, -0.3])
    sampler = aemix.build_sampler(ys, observed={ys: data}, mode=FAST)
    m = np.array([0.2, -0.1, 0.4])
    expected = st.norm().logpdf(m).sum() + st.norm(m, 1.0).logpdf(data).sum()
    np.testing.assert_allclose(sampler.logdensity({"mu": m}), expected, rtol=1e-12)

    c = srng.normal(0.0, 1.0, name="c")

    def row(i):
        inner, _ = aesara.map(lambda j: srng.normal(c + i + j, 1.0), sequences=[at.arange(2.0)])
        return inner

    grid, _ = aesara.map(row, sequences=[at.as_tensor(np.arange(3.0))])
    values = np.arange(6.0).reshape(3, 2) / 4
    sampler = aemix.build_sampler(grid, observed={grid: values}, mode=FAST)
    means = 0.3 + np.arange(3.0)[:, None] + np.arange(2.0)[None]
    expected = st.norm().logpdf(0.3) + st.norm(means, 1.0).logpdf(values).sum()
    np.testing.assert_allclose(sampler.logdensity({"c": 0.3}), expected, rtol=1e-12)

    x = np.array([0.5, -1.0, 2.0])

    def step(x_t):
        y = srng.normal(c * x_t, 1.0)
        return y, {y.owner.inputs[0]: y.owner.outputs[0]}

    backwards, _ = aesara.scan(step, sequences=[at.as_tensor(x)], go_backwards=True)
    data = np.array([0.1, 0.2, 0.3])
    sampler = aemix.build_sampler(backwards, observed={backwards: data}, mode=FAST)
    expected = st.norm().logpdf(0.3) + st.norm(0.3 * x[::-1], 1.0).logpdf(data).sum()
    np.testing.assert_allclose(sampler.logdensity({"c": 0.3}), expected, rtol=1e-12)


def test_a_deterministic_output_of_a_chain_is_summed_exactly():
    """The step returns its state and a function of it; the emission reads the function."""
    srng = at.random.RandomStream(0)
    z0 = srng.categorical(np.array([0.5, 0.5]), name="z0")

    def step(z_prev):
        z = srng.categorical(at.as_tensor(P2)[z_prev])
        return [z, z * 2.0], {z.owner.inputs[0]: z.owner.outputs[0]}

    (_, doubled), _ = aesara.scan(step, outputs_info=[z0, None], n_steps=3)
    mu = srng.normal(0.0, 1.0, name="mu")
    y = srng.normal(doubled + mu, 1.0, name="y")
    data = np.array([0.1, 1.5, 2.2])
    sampler = aemix.build_sampler(y, observed={y: data}, mode=FAST)
    terms = []
    for path in itertools.product(range(2), repeat=4):
        lp = np.log(0.5) + sum(np.log(P2[path[t - 1], path[t]]) for t in range(1, 4))
        terms.append(lp + st.norm(2.0 * np.array(path[1:]) + 0.3, 1.0).logpdf(data).sum())
    expected = logsumexp(terms) + st.norm().logpdf(0.3)
    np.testing.assert_allclose(sampler.logdensity({"mu": 0.3}), expected, rtol=1e-10)


def test_a_variable_the_step_draws_and_names_is_one_per_step():
    """``b = srng.normal(0, 1, name="b")`` inside the step: RandomStream's generators update at
    every step of a scan, so there is one ``b`` per step, named ``b[t]`` (not three ``b``)."""
    srng = at.random.RandomStream(0)

    def step(c):
        b = srng.normal(0.0, 1.0, name="b")
        y = srng.normal(b + c, 1.0)
        return y, {y.owner.inputs[0]: y.owner.outputs[0]}

    ys, _ = aesara.scan(step, sequences=[at.as_tensor(np.arange(3.0))])
    data = np.array([0.2, 1.1, 2.5])
    sampler = aemix.build_sampler(ys, observed={ys: data}, mode=FAST)
    assert set(sampler.latent) == {"b[0]", "b[1]", "b[2]"}
    b = np.array([0.3, -0.2, 0.1])
    expected = st.norm().logpdf(b).sum() + st.norm(b + np.arange(3.0), 1.0).logpdf(data).sum()
    got = sampler.logdensity({f"b[{t}]": b[t] for t in range(3)})
    np.testing.assert_allclose(got, expected, rtol=1e-12)
