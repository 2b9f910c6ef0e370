"""Markov chains written as Python loops: exact marginal densities and exact joint state draws.

A chain ``z_t ~ categorical(P[z_{t-1}])`` whose emissions read one state each is summed out by
the forward algorithm (the ``markov_chain`` rule, `aemix.markov`); a chain the rule does not take
(an emission that reads two states, a second-order chain) is summed out by nested enumerations,
which are the backward algorithm.  The references are a hand-written forward algorithm (log
space), forward-backward smoothing and brute-force sums, in NumPy.
"""

import itertools

import aesara.tensor as at
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logsumexp

import aemix
from tests.helpers import stat_scale

FAST = "FAST_COMPILE"
P2 = np.array([[0.9, 0.1], [0.2, 0.8]])


def hidden_markov_model(
    data, transition, initial, mu_observed=None, emission="normal", indexing="row"
):
    """``z_0 ~ Cat(initial)``, ``z_t ~ Cat(P_t[z_{t-1}])``, ``y_t ~ N(mu[z_t], 1)``.

    ``transition`` is ``(K, K)``, time-varying ``(T, K, K)`` (read as ``P[t][z]``, or as
    ``P[t, z]`` with ``indexing="pair"``), or ``"dirichlet"``: latent rows ``P ~ Dir(1)``.  ``mu``
    is latent (``N(0, 1)`` per state) unless ``mu_observed`` is given, then it is observed at that
    value.  With ``emission="poisson"``, ``y_t ~ Poisson(rate[z_t])``, ``rate ~ LogNormal(0, 1)``.
    """
    k = len(initial)
    srng = at.random.RandomStream(0)
    if emission == "normal":
        theta = srng.normal(np.zeros(k), 1.0, name="mu")
    elif emission == "categorical":
        theta = srng.dirichlet(np.ones((k, 3)), name="emission")
    else:
        theta = srng.lognormal(np.zeros(k), 1.0, name="rate")
    latent_rows = isinstance(transition, str)
    if latent_rows:
        transition = srng.dirichlet(np.ones((k, k)), name="rows")
    z = srng.categorical(initial, name="z0")
    observed = {} if mu_observed is None else {theta: mu_observed}
    ys = []
    for t, y_t in enumerate(data):
        if t > 0:
            if latent_rows:
                row = transition[z]
            elif transition.ndim == 2:
                row = at.as_tensor(transition)[z]
            elif indexing == "pair":
                row = at.as_tensor(transition)[t, z]
            else:
                row = at.as_tensor(transition[t])[z]
            z = srng.categorical(row, name=f"z{t}")
        if emission == "normal":
            y = srng.normal(theta[z], 1.0, name=f"y{t}")
        elif emission == "categorical":
            y = srng.categorical(theta[z], name=f"y{t}")
        else:
            y = srng.poisson(theta[z], name=f"y{t}")
        ys.append(y)
        observed[y] = y_t
    outputs = ys if mu_observed is None else [theta, *ys]
    return outputs, observed


def emission_logpdf(data, theta, emission="normal"):
    """``(T, K)``: each observation's log-density at each state."""
    data = np.asarray(data)[:, None]
    if emission == "normal":
        return st.norm(theta[None, :], 1.0).logpdf(data)
    return st.poisson(theta[None, :]).logpmf(data)


def transition_at(transition, t):
    """``P_t``, the matrix ``z_t`` is drawn from (``t >= 1``)."""
    return transition[t] if transition.ndim == 3 else transition


def forward_messages(emission, transition, initial):
    """Log forward messages ``alpha_t(k) = log p(y_0..y_t, z_t = k)``."""
    alphas = [np.log(initial) + emission[0]]
    for t in range(1, len(emission)):
        log_p = np.log(transition_at(transition, t))
        alphas.append(logsumexp(alphas[-1][:, None] + log_p, axis=0) + emission[t])
    return np.array(alphas)


def backward_messages(emission, transition):
    """Log backward messages ``beta_t(j) = log p(y_{t+1}..y_{T-1} | z_t = j)``."""
    betas = np.zeros_like(emission)
    for t in range(len(emission) - 2, -1, -1):
        log_p = np.log(transition_at(transition, t + 1))
        betas[t] = logsumexp(log_p + (emission[t + 1] + betas[t + 1])[None, :], axis=1)
    return betas


def forward_logdensity(data, transition, initial, mu):
    return st.norm(0.0, 1.0).logpdf(mu).sum() + logsumexp(
        forward_messages(emission_logpdf(data, mu), transition, initial)[-1]
    )


def smoothed_marginals(emission, transition, initial):
    """``P(z_t = k | y)`` by forward-backward."""
    log_post = forward_messages(emission, transition, initial) + backward_messages(
        emission, transition
    )
    return np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))


def pairwise_marginals(emission, transition, initial):
    """``P(z_t = j, z_{t+1} = k | y)``, shape ``(T - 1, K, K)``."""
    alphas = forward_messages(emission, transition, initial)
    betas = backward_messages(emission, transition)
    log_z = logsumexp(alphas[-1])
    return np.array(
        [
            np.exp(
                alphas[t][:, None]
                + np.log(transition_at(transition, t + 1))
                + (emission[t + 1] + betas[t + 1])[None, :]
                - log_z
            )
            for t in range(len(emission) - 1)
        ]
    )


def summed_by_the_chain_rule(sampler) -> bool:
    return {m.rule for m in sampler._model.marginalizations} == {"markov_chain"}


@pytest.mark.parametrize("n_steps", [5, 50, 300])
def test_hidden_markov_model_density_is_the_forward_algorithm(n_steps):
    data = np.random.default_rng(n_steps).normal(size=n_steps)
    outputs, observed = hidden_markov_model(data, P2, np.array([0.5, 0.5]))
    sampler = aemix.build_sampler(outputs, observed, mode=FAST)
    assert sorted(sampler.marginalized) == sorted(f"z{t}" for t in range(n_steps))
    assert summed_by_the_chain_rule(sampler)
    for mu in (np.array([-1.0, 1.0]), np.array([0.3, -2.0])):
        expected = forward_logdensity(data, P2, np.array([0.5, 0.5]), mu)
        np.testing.assert_allclose(sampler.logdensity({"mu": mu}), expected, rtol=1e-9)


@pytest.mark.parametrize("n_steps", [5, 50, 300])
@pytest.mark.parametrize("indexing", ["row", "pair"])
def test_time_varying_three_state_chain_is_exact(n_steps, indexing):
    k = 3
    rng = np.random.default_rng(3)
    transition = rng.dirichlet(np.ones(k), size=(n_steps, k))
    initial = np.array([0.2, 0.5, 0.3])
    data = rng.normal(size=n_steps) * 2
    outputs, observed = hidden_markov_model(data, transition, initial, indexing=indexing)
    sampler = aemix.build_sampler(outputs, observed, mode=FAST)
    assert summed_by_the_chain_rule(sampler)
    assert "time-varying" in sampler.explain()
    for mu in (np.array([-2.0, 0.0, 1.5]), np.array([0.5, -0.5, 3.0])):
        expected = forward_logdensity(data, transition, initial, mu)
        np.testing.assert_allclose(sampler.logdensity({"mu": mu}), expected, rtol=1e-9)


@pytest.mark.parametrize("n_steps", [5, 50, 300])
def test_latent_dirichlet_rows_and_poisson_emissions(n_steps):
    """K = 3, the transition matrix's rows latent (Dirichlet), Poisson emissions with latent
    rates: the density at several points is the rows' and rates' priors plus the forward
    algorithm's marginal."""
    k = 3
    rng = np.random.default_rng(n_steps + 7)
    data = rng.poisson(rng.choice([1.0, 4.0, 9.0], size=n_steps))
    initial = np.array([0.3, 0.3, 0.4])
    outputs, observed = hidden_markov_model(data, "dirichlet", initial, emission="poisson")
    sampler = aemix.build_sampler(outputs, observed, mode=FAST)
    assert summed_by_the_chain_rule(sampler)
    assert set(sampler.latent) == {"rate", "rows"}
    for _ in range(3):
        rows = rng.dirichlet(np.ones(k), size=k)
        rate = rng.lognormal(size=k) * 3
        prior = st.lognorm(1.0).logpdf(rate).sum() + sum(
            st.dirichlet(np.ones(k)).logpdf(row) for row in rows
        )
        emission = emission_logpdf(data, rate, "poisson")
        expected = prior + logsumexp(forward_messages(emission, rows, initial)[-1])
        got = sampler.logdensity({"rate": rate, "rows": rows})
        np.testing.assert_allclose(got, expected, rtol=1e-9)


@pytest.mark.parametrize("n_steps", [5, 120])
def test_categorical_emissions_are_summed_by_the_forward_algorithm(n_steps):
    """``y_t ~ Cat(E[z_t])``: aeppl's categorical density of a matrix of probabilities has an
    extra leading axis, which must not mix the steps; the chain is still summed by the forward
    algorithm (the emissions' batched form stays a random variable)."""
    k = 2
    rng = np.random.default_rng(n_steps)
    data = rng.integers(0, 3, size=n_steps)
    initial = np.array([0.6, 0.4])
    outputs, observed = hidden_markov_model(data, P2, initial, emission="categorical")
    sampler = aemix.build_sampler(outputs, observed, mode=FAST)
    assert summed_by_the_chain_rule(sampler)
    for _ in range(3):
        rows = rng.dirichlet(np.ones(3), size=k)
        emission = np.log(rows[:, data].T)
        expected = sum(st.dirichlet(np.ones(3)).logpdf(row) for row in rows) + logsumexp(
            forward_messages(emission, P2, initial)[-1]
        )
        got = sampler.logdensity({"emission": rows})
        np.testing.assert_allclose(got, expected, rtol=1e-9)
        if n_steps <= 6:
            log_joint = lambda z, emission=emission: (  # noqa: E731
                np.log(initial[z[0]])
                + sum(np.log(P2[z[t - 1], z[t]]) for t in range(1, n_steps))
                + sum(emission[t, z[t]] for t in range(n_steps))
            )
            exact = brute_force(log_joint, n_steps, k)
            prior = sum(st.dirichlet(np.ones(3)).logpdf(row) for row in rows)
            np.testing.assert_allclose(got, prior + exact, rtol=1e-9)


def test_emissions_of_several_forms_and_steps_without_one():
    """Two emissions per state (a normal and a Poisson), the first state without the normal one:
    one vectorized emission per form, each over its own steps."""
    n_steps, k = 7, 2
    rng = np.random.default_rng(11)
    normal_data, count_data = rng.normal(size=n_steps), rng.poisson(3.0, size=n_steps)
    srng = at.random.RandomStream(0)
    mu = srng.normal(np.zeros(k), 1.0, name="mu")
    rate = srng.lognormal(np.zeros(k), 1.0, name="rate")
    z = srng.categorical(np.array([0.4, 0.6]), name="z0")
    observed = {}
    for t in range(n_steps):
        if t > 0:
            z = srng.categorical(at.as_tensor(P2)[z], name=f"z{t}")
            observed[srng.normal(mu[z], 1.0, name=f"y{t}")] = normal_data[t]
        observed[srng.poisson(rate[z], name=f"c{t}")] = count_data[t]
    sampler = aemix.build_sampler(list(observed), observed, mode=FAST)
    assert summed_by_the_chain_rule(sampler)
    assert "2 emission form(s)" in sampler.explain()
    mu_v, rate_v = np.array([-1.0, 0.5]), np.array([1.0, 5.0])
    emission = emission_logpdf(count_data, rate_v, "poisson")
    emission[1:] += emission_logpdf(normal_data[1:], mu_v)
    expected = (
        st.norm().logpdf(mu_v).sum()
        + st.lognorm(1.0).logpdf(rate_v).sum()
        + logsumexp(forward_messages(emission, P2, np.array([0.4, 0.6]))[-1])
    )
    got = sampler.logdensity({"mu": mu_v, "rate": rate_v})
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def brute_force(log_joint, n_steps, k):
    """``logsumexp`` of ``log_joint(states)`` over every path of the chain."""
    return logsumexp([log_joint(np.array(z)) for z in itertools.product(range(k), repeat=n_steps)])


def test_an_emission_reading_two_states_falls_back_to_enumeration():
    """``y_t ~ N(mu[z_t] + mu[z_{t-1}], 1)``: not a chain the rule takes; the nested
    enumerations are still exact (brute force over every path)."""
    n_steps, initial = 5, np.array([0.5, 0.5])
    data = np.random.default_rng(2).normal(size=n_steps)
    srng = at.random.RandomStream(0)
    mu = srng.normal(np.zeros(2), 1.0, name="mu")
    states = [srng.categorical(initial, name="z0")]
    observed = {srng.normal(mu[states[0]], 1.0, name="y0"): data[0]}
    for t in range(1, n_steps):
        states.append(srng.categorical(at.as_tensor(P2)[states[-1]], name=f"z{t}"))
        y = srng.normal(mu[states[-1]] + mu[states[-2]], 1.0, name=f"y{t}")
        observed[y] = data[t]
    sampler = aemix.build_sampler(list(observed), observed, mode=FAST)
    assert "markov_chain" not in {m.rule for m in sampler._model.marginalizations}
    mu_v = np.array([-0.7, 1.2])

    def log_joint(z):
        means = mu_v[z] + np.concatenate([[0.0], mu_v[z[:-1]]])
        return (
            np.log(initial[z[0]])
            + np.log(P2[z[:-1], z[1:]]).sum()
            + st.norm(means, 1.0).logpdf(data).sum()
        )

    expected = st.norm().logpdf(mu_v).sum() + brute_force(log_joint, n_steps, 2)
    np.testing.assert_allclose(sampler.logdensity({"mu": mu_v}), expected, rtol=1e-9)


@pytest.mark.parametrize("n_steps", [4, 6])
def test_a_second_order_chain_is_summed_exactly_by_nested_enumeration(n_steps):
    """``z_t ~ Cat(Q[z_{t-2}, z_{t-1}])``: the rule's relation matches ``Q[z_{t-2}]`` as a
    time-varying matrix, which reads a state, so the chain rule leaves it; the nested
    enumeration takes it (an index by two summed-out states batches per chain), and its density
    is the brute-force sum over every path."""
    import itertools

    k = 2
    rng = np.random.default_rng(4)
    second = rng.dirichlet(np.ones(k), size=(k, k))
    srng = at.random.RandomStream(0)
    mu = srng.normal(np.zeros(k), 1.0, name="mu")
    states = [srng.categorical(np.array([0.3, 0.7]), name="z0")]
    states.append(srng.categorical(at.as_tensor(P2)[states[0]], name="z1"))
    for t in range(2, n_steps):
        row = at.as_tensor(second)[states[-2], states[-1]]
        states.append(srng.categorical(row, name=f"z{t}"))
    data = rng.normal(size=n_steps)
    observed = {srng.normal(mu[z], 1.0, name=f"y{t}"): data[t] for t, z in enumerate(states)}
    sampler = aemix.build_sampler(list(observed), observed, mode=FAST)
    assert "markov_chain" not in sampler.explain()
    for m in (np.array([0.3, -1.2]), np.array([-2.0, 0.5]), np.array([1.0, 1.0])):
        terms = []
        for path in itertools.product(range(k), repeat=n_steps):
            lp = np.log([0.3, 0.7][path[0]]) + np.log(P2[path[0], path[1]])
            lp += sum(np.log(second[path[t - 2], path[t - 1], path[t]]) for t in range(2, n_steps))
            terms.append(lp + st.norm(m[list(path)], 1.0).logpdf(data).sum())
        exact = logsumexp(terms) + st.norm(0.0, 1.0).logpdf(m).sum()
        assert sampler.logdensity({"mu": m}) == pytest.approx(exact, rel=1e-12, abs=1e-12)


def test_explain_names_the_chain_and_the_scan_loop():
    data = np.random.default_rng(0).normal(size=6)
    outputs, observed = hidden_markov_model(data, P2, np.array([0.5, 0.5]))
    text = aemix.build_sampler(outputs, observed).explain()
    assert "z0, ..., z5 ~ categorical (6 states of 2 values, one transition matrix)" in text
    assert "forward-filter backward-sample" in text
    assert "scan (" in text.splitlines()[-1]
    assert "forward recursion" in text.splitlines()[-1]


def test_posterior_probabilities_of_the_states_average_their_smoothed_marginals():
    data = np.random.default_rng(0).normal(size=5)
    outputs, observed = hidden_markov_model(data, P2, np.array([0.5, 0.5]))
    result = aemix.build_sampler(outputs, observed, mode="FAST_COMPILE").sample(
        10, n_chains=2, seed=0, warmup=20, loop="scan", diagnose=False
    )
    averaged = result.posterior_probabilities
    for t in range(5):
        smoothed = result.conditional_probabilities[f"z{t}"]
        np.testing.assert_allclose(averaged[f"z{t}"], smoothed.mean(axis=(0, 1)), rtol=1e-12)


def test_recovered_states_are_joint_posterior_draws():
    """With ``mu`` observed the states' posterior is exact: the recovered paths' one-state and
    two-state frequencies must match the smoothed marginals ``P(z_t | y)`` and the pairwise ones
    ``P(z_t, z_{t+1} | y)`` (forward-backward) within Monte Carlo error (draws given the same
    continuous values are independent across chains and iterations: the binomial sd), and the
    reported conditional probabilities are the smoothed marginals themselves."""
    n_steps, k = 12, 3
    rng = np.random.default_rng(1)
    transition = rng.dirichlet(np.ones(k) * 2, size=(n_steps, k))
    initial = np.array([0.2, 0.5, 0.3])
    mu = np.array([-1.5, 0.0, 1.5])
    data = rng.normal(size=n_steps) + np.repeat([-1.5, 1.5, 0.0, -1.5], 3)
    outputs, observed = hidden_markov_model(data, transition, initial, mu_observed=mu)
    srng = at.random.RandomStream(1)
    nuisance = srng.normal(0.0, 1.0, name="nuisance")  # the kernel needs a latent to move
    sampler = aemix.build_sampler([*outputs, nuisance], observed, mode=FAST)
    assert summed_by_the_chain_rule(sampler)
    assert sampler.conditionals_given["z0"] == ()
    n_draws, n_chains = 250, 8
    result = sampler.sample(n_draws, n_chains=n_chains, warmup=20, seed=0, start="prior")
    emission = emission_logpdf(data, mu)
    smoothed = smoothed_marginals(emission, transition, initial)
    pairwise = pairwise_marginals(emission, transition, initial)
    paths = np.stack([np.asarray(result.draws[f"z{t}"]).ravel() for t in range(n_steps)])
    n = paths.shape[1]
    for t in range(n_steps):
        reported = result.conditional_probabilities[f"z{t}"].reshape(n, k)
        np.testing.assert_allclose(reported, np.broadcast_to(smoothed[t], (n, k)), rtol=1e-9)
        for j in range(k):
            p = smoothed[t, j]
            assert abs(np.mean(paths[t] == j) - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-12
    for t in range(n_steps - 1):
        for j, l in itertools.product(range(k), repeat=2):
            p = pairwise[t, j, l]
            freq = np.mean((paths[t] == j) & (paths[t + 1] == l))
            assert abs(freq - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-12, (t, j, l, freq, p)


@pytest.mark.slow
def test_a_long_chain_samples_its_emission_means():
    """T = 300 steps, ``mu`` latent: the sampler runs (scan loop) and the posterior mean of
    ``mu`` lands near the truth, the recovered states agree with the states that drew the data."""
    n_steps = max(100, int(300 * stat_scale()))
    rng = np.random.default_rng(5)
    truth = [0]
    for _ in range(n_steps - 1):
        truth.append(rng.choice(2, p=P2[truth[-1]]))
    truth = np.array(truth)
    mu_true = np.array([-1.5, 1.5])
    data = rng.normal(mu_true[truth], 1.0)
    outputs, observed = hidden_markov_model(data, P2, np.array([0.5, 0.5]))
    sampler = aemix.build_sampler(outputs, observed, ordered=["mu"])
    result = sampler.sample(max(250, int(1000 * stat_scale())), n_chains=16, seed=0)
    mu_mean = np.asarray(result.draws["mu"]).reshape(-1, 2).mean(axis=0)
    np.testing.assert_allclose(mu_mean, mu_true, atol=0.35)
    states = np.stack([np.asarray(result.draws[f"z{t}"]).ravel() for t in range(n_steps)])
    assert np.mean(states.mean(axis=1).round() == truth) > 0.85


def test_a_path_kept_as_a_derived_quantity_is_the_recovered_states():
    """``build_sampler([*ys, at.stack(states)])``: the chain is still summed by the forward
    algorithm (its states, outputs through the derived path, are no latent variables), and each
    draw of the path is the recovered states of that draw."""
    n_steps = 6
    data = np.random.default_rng(3).normal(size=n_steps)
    outputs, observed = hidden_markov_model(data, P2, np.array([0.5, 0.5]))
    from aesara.graph.basic import ancestors

    named = {v.name: v for v in ancestors(outputs)}
    states = [named[f"z{t}"] for t in range(n_steps)]
    path = at.stack(states)
    path.name = "path"
    sampler = aemix.build_sampler([*outputs, path], observed, mode=FAST)
    assert summed_by_the_chain_rule(sampler)
    mu = np.array([0.4, -1.0])
    expected = forward_logdensity(data, P2, np.array([0.5, 0.5]), mu)
    np.testing.assert_allclose(sampler.logdensity({"mu": mu}), expected, rtol=1e-9)
    result = sampler.sample(50, n_chains=4, warmup=20, seed=0, diagnose=False)
    drawn = np.stack([np.asarray(result.draws[f"z{t}"]) for t in range(n_steps)], axis=-1)
    np.testing.assert_array_equal(np.asarray(result.draws["path"]), drawn)


@pytest.mark.parametrize("loop", ["python", "scan"])
def test_a_markov_switching_autoregression_is_exact(loop):
    # x_t ~ normal(phi x_{t-1} + mu[z_t], 1), x observed: an emission reads the previous
    # observation.  Read as the random variable, the summed-out placeholders made a cycle and
    # the build never ended (memory grew to 16 GB); the observation's readers read its data.
    import itertools

    import aesara

    data = np.array([0.3, -0.5, 1.2, 0.4])
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, 2.0, size=2, name="mu")
    phi = srng.normal(0.0, 0.5, name="phi")
    z0 = srng.categorical(np.array([0.5, 0.5]), name="z0")
    x0 = srng.normal(mu[z0], 1.0, name="x0")
    if loop == "python":
        z, xs = z0, [x0]
        for t in range(1, len(data)):
            z = srng.categorical(at.as_tensor(P2)[z], name=f"z{t}")
            xs.append(srng.normal(phi * xs[-1] + mu[z], 1.0, name=f"x{t}"))
        observed = dict(zip(xs, data))
    else:

        def step(z_prev, x_prev, mu, phi):
            z = srng.categorical(at.as_tensor(P2)[z_prev])
            x = srng.normal(phi * x_prev + mu[z], 1.0)
            return [z, x], {
                z.owner.inputs[0]: z.owner.outputs[0],
                x.owner.inputs[0]: x.owner.outputs[0],
            }

        (_, x_rest), _ = aesara.scan(
            step, outputs_info=[z0, x0], non_sequences=[mu, phi], n_steps=len(data) - 1
        )
        observed = {x0: data[0], x_rest: data[1:]}
    sampler = aemix.build_sampler(list(observed), observed, mode="FAST_COMPILE")
    m, ph = np.array([-0.7, 1.1]), 0.4
    terms = []
    for path in itertools.product([0, 1], repeat=len(data)):
        lp = np.log(0.5) + st.norm.logpdf(data[0], m[path[0]], 1)
        for t in range(1, len(data)):
            lp += np.log(P2[path[t - 1], path[t]])
            lp += st.norm.logpdf(data[t], ph * data[t - 1] + m[path[t]], 1)
        terms.append(lp)
    exact = st.norm.logpdf(m, 0, 2).sum() + st.norm.logpdf(ph, 0, 0.5) + logsumexp(terms)
    np.testing.assert_allclose(sampler.logdensity({"mu": m, "phi": ph}), exact, rtol=1e-10)


def test_a_chain_left_to_nested_enumeration_builds_in_time_linear_in_its_length():
    # Without the chain rule, the chain is summed by nested enumeration; its elimination-order
    # search walked every path through the nested placeholders: 38 s at 12 steps, past 255 s
    # at 13.  Now each node once (3 s at 16).
    from aemix.relations import RuleRegistry, registry

    rules = RuleRegistry()
    for name in registry:
        if registry[name].kind != "chain":
            rule = registry[name]
            rules.register(name, rule.relation, kind=rule.kind)
    T = 14
    data = np.random.default_rng(6).poisson(3, size=T)
    transition = np.array([[0.8, 0.2], [0.3, 0.7]])
    srng = at.random.RandomStream(0)
    lam = srng.gamma(2.0, 0.5, size=2, name="lam")
    z = srng.bernoulli(0.5, name="z0")
    ys = [srng.poisson(lam[z], name="y0")]
    for t in range(1, T):
        z = srng.categorical(at.as_tensor(transition)[z], name=f"z{t}")
        ys.append(srng.poisson(lam[z], name=f"y{t}"))
    observed = {y: data[t] for t, y in enumerate(ys)}
    nested = aemix.build_sampler(ys, observed, rules=rules, mode="FAST_COMPILE")
    assert "markov_chain" not in nested.explain()
    # With it, a Bernoulli first state and categorical steps are one chain (forward algorithm).
    forward = aemix.build_sampler(ys, observed, mode="FAST_COMPILE")
    assert "bernoulli/categorical (14 states of 2 values" in forward.explain()
    lam_value = np.array([2.0, 5.0])
    emission = st.poisson.logpmf(data[:, None], lam_value[None, :])
    exact = st.gamma.logpdf(lam_value, 2.0, scale=2.0).sum() + logsumexp(
        forward_messages(emission, transition, np.array([0.5, 0.5]))[-1]
    )
    for sampler in (nested, forward):
        assert sampler.logdensity({"lam": lam_value}) == pytest.approx(exact, rel=1e-10)


@pytest.mark.parametrize("form", ["row", "switch"])
def test_a_chain_of_bernoulli_states_is_summed_by_the_forward_algorithm(form):
    # z_t ~ bernoulli(P[z_{t-1}, 1]) or bernoulli(switch(z_{t-1}, .7, .2)): a two-state chain.
    T = 30
    data = np.random.default_rng(7).normal(size=T) * 2 + 1
    transition = np.array([[0.8, 0.2], [0.3, 0.7]])
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, 3.0, size=2, name="mu")
    z = srng.bernoulli(0.4, name="z0")
    ys = [srng.normal(mu[z], 1.0, name="y0")]
    for t in range(1, T):
        p = at.as_tensor(transition)[z, 1] if form == "row" else at.switch(z, 0.7, 0.2)
        z = srng.bernoulli(p, name=f"z{t}")
        ys.append(srng.normal(mu[z], 1.0, name=f"y{t}"))
    sampler = aemix.build_sampler(ys, {y: data[t] for t, y in enumerate(ys)})
    assert "bernoulli (30 states of 2 values" in sampler.explain()
    mu_value = np.array([-0.5, 2.0])
    emission = st.norm.logpdf(data[:, None], mu_value[None, :], 1.0)
    exact = st.norm.logpdf(mu_value, 0.0, 3.0).sum() + logsumexp(
        forward_messages(emission, transition, np.array([0.6, 0.4]))[-1]
    )
    assert sampler.logdensity({"mu": mu_value}) == pytest.approx(exact, rel=1e-10)
    result = sampler.sample(20, n_chains=4, seed=0, warmup=50, diagnose=False)
    # The smoothed marginals at the draws, against forward-backward.
    probs = result.conditional_probabilities["z7"][0, -1]
    emission = st.norm.logpdf(data[:, None], result.draws["mu"][0, -1][None, :], 1.0)
    exact = smoothed_marginals(emission, transition, np.array([0.6, 0.4]))[7]
    np.testing.assert_allclose(probs, exact, rtol=1e-8)
