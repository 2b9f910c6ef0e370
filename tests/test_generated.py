"""Generated quantities (`aemix.generated`): random variables no observation depends on are drawn
from the model given each kept draw, and their draws are checked against closed-form posteriors
(conjugacy, enumeration) and, draw by draw, against their conditional given the other variables."""

import aesara.tensor as at
import arviz as az
import numpy as np
import pytest

import aemix
from aemix.generated import split_generated
from aemix.intake import random_variables
from tests.helpers import stat_scale


def _mcse(x):
    """Monte Carlo standard error of the mean of ``x`` (chains, draws)."""
    return float(az.mcse(np.asarray(x, dtype=float)))


def _poisson_gamma(seed=1):
    srng = at.random.RandomStream(seed)
    lam = srng.gamma(2.0, 0.5, name="lam")  # (a rate of 0.5)
    y = srng.poisson(lam, size=20, name="y")
    y_new = srng.poisson(lam, name="y_new")
    data = np.random.default_rng(0).poisson(3.0, size=20)
    return lam, y, y_new, data


def test_the_split_takes_discrete_variables_nothing_observed_reads_and_what_they_feed():
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, 1.0, name="mu")
    free = srng.normal(0.0, 1.0, name="free")  # continuous, read by nothing observed: sampled
    z = srng.bernoulli(0.3, name="z")  # read by the data: summed out, not generated
    y = srng.normal(mu + z, 1.0, size=3, name="y")
    k = srng.poisson(at.exp(mu), name="k")
    x = srng.normal(k + free, 1.0, name="x")  # continuous, downstream of a generated count
    outputs = [mu, free, z, x, k]
    rvs = random_variables([*outputs, y])
    sampled, generated, parents = split_generated(outputs, [y], rvs)
    assert generated == [k, x]  # (each after its parents)
    assert sampled == [mu, free, z]
    assert parents == [mu, free] or parents == [free, mu]
    # A derived output of them (which marginalization may make a mixture) keeps them all.
    j = srng.bernoulli(0.5, name="j")  # another group, not read by the derived output
    outputs = [mu, free, z, x, k, k + x, j]
    rvs = random_variables([*outputs, y])
    sampled, generated, parents = split_generated(outputs, [y], rvs)
    assert generated == [j] and parents == []
    assert sampled == [mu, free, z, x, k, outputs[5]]


def test_a_derived_mixture_of_a_prior_stays_a_marginalized_mixture():
    # The seed's model: nothing observed, the output N[I] is a mixture that I is summed out of.
    srng = at.random.RandomStream(0)
    N_rv = srng.normal(np.array([-2.0, 3.0]), np.array([1.0, 2.0]), name="N")
    I_rv = srng.categorical(np.array([0.3, 0.7]), name="I")
    sampler = aemix.build_sampler({"Y": N_rv[I_rv]}, mode="FAST_COMPILE")
    assert sampler.marginalized == ("I",) and sampler.generated == ()


def test_a_count_for_prediction_is_its_posterior_predictive():
    lam, y, y_new, data = _poisson_gamma()
    sampler = aemix.build_sampler({"lam": lam, "y_new": y_new}, observed={y: data})
    assert sampler.generated == ("y_new",) and sampler.latent == ("lam",)
    assert "generated" in sampler.explain() and "y_new: shape ()" in sampler.explain()
    n = max(200, int(1000 * stat_scale()))
    result = sampler.sample(n, n_chains=16, seed=3)
    draws, rate = result.draws["y_new"], result.draws["lam"]
    assert draws.shape == (16, n) and draws.dtype.kind == "i"
    # Draw by draw, y_new given lam is Poisson(lam): y_new - lam has mean 0 and variance E[lam].
    diff = draws - rate
    assert abs(diff.mean()) < 4 * _mcse(diff)
    # Marginally, the negative binomial of the conjugate gamma posterior Gamma(a, b).
    a, b = 2.0 + data.sum(), 0.5 + len(data)
    assert abs(draws.mean() - a / b) < 4 * _mcse(draws)
    # The variance of a Poisson given lam is lam: E[(y_new - lam)^2 - lam] = 0.
    excess = diff**2 - rate
    assert abs(excess.mean()) < 4 * _mcse(excess)
    assert "y_new" in result.to_inference_data().posterior


def test_a_generated_variable_of_a_summed_out_one_is_drawn_given_its_draw():
    # Nothing continuous: the exact sampler; z is summed out and recovered, z_new drawn given z.
    srng = at.random.RandomStream(0)
    z = srng.bernoulli(0.3, name="z")
    y = srng.normal(3.0 * z, 1.0, size=2, name="y")
    z_new = srng.bernoulli(0.2 + 0.6 * z, name="z_new")
    data = np.array([2.5, 1.0])
    sampler = aemix.build_sampler([z, z_new], observed={y: data})
    assert sampler.marginalized == ("z",) and sampler.generated == ("z_new",)
    result = sampler.sample(max(2000, int(8000 * stat_scale())), n_chains=4, seed=5)
    like = [np.exp(-0.5 * ((data - 3.0 * v) ** 2).sum()) for v in (0, 1)]
    p1 = 0.3 * like[1] / (0.3 * like[1] + 0.7 * like[0])
    z_draws, new = result.draws["z"], result.draws["z_new"]
    n = new.size
    expected = (1 - p1) * 0.2 + p1 * 0.8
    assert abs(new.mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    # Given z = 1, z_new is a Bernoulli(0.8) (given z = 0, 0.2): drawn from each draw's z.
    for value, p in ((0, 0.2), (1, 0.8)):
        chosen = new[z_draws == value]
        assert abs(chosen.mean() - p) < 4 * np.sqrt(p * (1 - p) / chosen.size)


def test_a_new_observation_of_a_mixture_is_drawn_given_each_draw():
    srng = at.random.RandomStream(2)
    w = srng.dirichlet(np.array([2.0, 2.0]), name="w")
    mu = srng.normal(np.array([-2.0, 2.0]), 1.0, name="mu")
    z = srng.categorical(w, size=30, name="z")
    y = srng.normal(mu[z], 1.0, name="y")
    z_new = srng.categorical(w, name="z_new")
    y_new = srng.normal(mu[z_new], 1.0, name="y_new")
    data = np.concatenate([np.full(10, -2.0), np.full(20, 2.0)]) + np.linspace(-0.5, 0.5, 30)
    sampler = aemix.build_sampler({"w": w, "mu": mu, "z": z, "y_new": y_new}, observed={y: data})
    assert sampler.generated == ("z_new", "y_new")
    n = max(200, int(600 * stat_scale()))
    result = sampler.sample(n, n_chains=16, seed=7)
    d = result.draws
    assert "z" not in d  # (memberships are summarized; the new draws are given draws of them)
    # Given each draw, y_new is the mixture of its weights and locations.
    chosen = np.take_along_axis(d["mu"], d["z_new"][..., None], axis=-1)[..., 0]
    resid = d["y_new"] - chosen
    # (given each draw, the residuals are independent standard normals: the variance of their
    # sample variance is 2 / n)
    assert abs(resid.mean()) < 4 * _mcse(resid)
    assert abs(resid.var() - 1) < 4 * np.sqrt(2 / resid.size)
    share = d["z_new"] - d["w"][..., 1]  # E[z_new | w] = w[1]
    assert abs(share.mean()) < 4 * _mcse(share)


def test_var_names_and_summaries_of_generated_quantities():
    lam, y, y_new, data = _poisson_gamma()
    sampler = aemix.build_sampler({"lam": lam, "y_new": y_new}, observed={y: data})
    kwargs = dict(n_chains=4, seed=1, warmup=100, diagnose=False)
    only = sampler.sample(50, var_names=["y_new"], **kwargs)
    assert list(only.draws) == ["y_new"]
    both = sampler.sample(50, **kwargs)
    # The same seed, the same draws, whatever is kept.
    np.testing.assert_array_equal(only.draws["y_new"], both.draws["y_new"])
    with pytest.warns(UserWarning, match="y_new.*summary_only"):
        summary = sampler.sample(50, summary_only=True, **kwargs)
    assert "y_new" not in summary.mean
    with pytest.raises(ValueError, match="y_new"):
        sampler.sample(50, summary_only=True, var_names=["y_new"], **kwargs)
    with pytest.raises(ValueError, match="generated"):
        sampler.sample(50, var_names=["nope"], **kwargs)


def test_the_prior_predictive_draws_generated_quantities_too():
    lam, y, y_new, data = _poisson_gamma()
    sampler = aemix.build_sampler({"lam": lam, "y_new": y_new}, observed={y: data})
    prior = sampler.prior_predictive(4000, seed=2)
    assert set(prior) == {"lam", "y", "y_new"}
    # Given lam, y_new is Poisson(lam): E[y_new - lam] = 0 under the prior (Gamma(2, rate 0.5)).
    diff = prior["y_new"] - prior["lam"]
    # (independent draws: the Monte Carlo error is the standard error)
    assert abs(diff.mean()) < 4 * np.sqrt(diff.var() / diff.size)


def test_a_model_with_nothing_else_to_sample_is_sampled_whole():
    # A prior mixture: drawing everything forward would leave no sampler; it stays marginalized.
    srng = at.random.RandomStream(3)
    z = srng.categorical(np.array([0.3, 0.7]), name="z")
    y = srng.normal(at.as_tensor(np.array([-2.0, 2.0]))[z], 1.0, name="y")
    sampler = aemix.build_sampler(y, mode="FAST_COMPILE")
    assert sampler.generated == () and sampler.marginalized == ("z",)


def test_a_derived_output_of_a_generated_count_is_computed_from_its_draw():
    lam, y, y_new, data = _poisson_gamma()
    sampler = aemix.build_sampler(
        {"lam": lam, "y_new": y_new, "twice": 2 * y_new, "excess": y_new - lam},
        observed={y: data},
    )
    assert sampler.generated == ("y_new", "twice", "excess")
    result = sampler.sample(50, n_chains=4, seed=1, warmup=100, diagnose=False)
    d = result.draws
    np.testing.assert_array_equal(d["twice"], 2 * d["y_new"])
    np.testing.assert_allclose(d["excess"], d["y_new"] - d["lam"], rtol=1e-12)
