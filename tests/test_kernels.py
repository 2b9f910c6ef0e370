"""The gradient kernels (`aemix.kernels.mala`, `aemix.kernels.hmc`) and the gradient they need
(`aemix.gradient`): the gradient of the marginal log-density against central finite differences,
chain by chain, batched (the scan loop) and lowered to scalar code (the fused loop); draws of MALA and
HMC against exact posteriors in both loops; and the kernel choice."""

import aesara
import aesara.tensor as at
import arviz as az
import numpy as np
import pytest

import aemix
from aemix.gradient import logdensity_and_gradient
from aemix.kernels.choice import Kernel, choose_kernel
from aemix.scalarize import LoweringError, lower_to_scalars
from tests.helpers import (
    conjugate_regression,
    eight_schools,
    load_example,
    mixture_moments,
    seed_model,
    stat_scale,
)

FAST = "FAST_COMPILE"


def _example(name):
    module = load_example(name)
    data = {
        "old_faithful": lambda: module.load_eruptions(),
        "coal_mining": lambda: module.load_counts()[1],
        "zero_inflated_poisson": lambda: module.simulate(n=200)[0],
        "hmm": lambda: module.load_counts()[1],
    }[name]()
    return module.model(data)


MODELS = {
    "seed_mixture": lambda: ({"Y": seed_model()[2]}, None),
    "old_faithful": lambda: _example("old_faithful"),
    "coal_mining": lambda: _example("coal_mining"),
    "zero_inflated_poisson": lambda: _example("zero_inflated_poisson"),
    "hmm": lambda: _example("hmm"),
    "eight_schools": eight_schools,
    "regression": lambda: conjugate_regression()[:2],
}


def central_differences(sampler, points, h=1e-5):
    """``(n_points, dim)`` central differences of the batched log-density."""
    dim = points.shape[1]
    shifted = points[:, None, :] + h * np.eye(dim)[None]
    shifted_back = points[:, None, :] - h * np.eye(dim)[None]
    both = np.concatenate([shifted.reshape(-1, dim), shifted_back.reshape(-1, dim)])
    values = sampler._logdensity_batch(both).reshape(2, len(points), dim)
    return (values[0] - values[1]) / (2 * h)


@pytest.mark.parametrize("name", list(MODELS))
def test_gradient_is_the_finite_difference_per_chain_batched_and_lowered(name):
    outputs, observed = MODELS[name]()
    sampler = aemix.build_sampler(outputs, observed=observed, mode=FAST)
    density = sampler._density
    points = sampler.initial_positions(4, np.random.default_rng(3))
    graphs = list(logdensity_and_gradient(density.logdensity, density.position))
    logdensity, gradient = sampler._in_batches("gradient", graphs, points)
    expected = central_differences(sampler, points)
    np.testing.assert_allclose(logdensity, sampler._logdensity_batch(points), rtol=1e-12)
    scale = np.maximum(1.0, np.abs(expected))
    assert np.max(np.abs(gradient - expected) / scale) < 1e-6
    # Lowered to scalar code (the fused loop's form), or refused with a reason.
    try:
        lowered = lower_to_scalars([density.position], [(sampler.dim,)], graphs, 16000)
    except LoweringError as exc:
        # The data loops do not reach into a gradient's scatter over data rows yet: the gradient
        # unrolls over the data, past the budget, or meets an index it does not lower; a Markov
        # chain's forward recursion has no scalar lowering (its models run in the scan loop).
        assert name in ("old_faithful", "coal_mining", "zero_inflated_poisson", "hmm"), str(exc)
        return
    from aemix.fused import composite

    check = composite(list(lowered.inputs[0].flat), [e for a in lowered.outputs for e in a.flat])
    for point, lp, grad in zip(points, logdensity, gradient):
        with np.errstate(all="ignore"):
            got = np.asarray(check.impl(*point), dtype=float)
        np.testing.assert_allclose(got, np.concatenate([[lp], grad]), rtol=1e-9, atol=1e-9)


def _assert_regression_posterior(draws, mean, cov, z=5.0):
    for k in range(len(mean)):
        x = draws[:, :, k]
        ess = float(az.ess(x))
        sd = np.sqrt(cov[k, k])
        assert abs(x.mean() - mean[k]) < z * sd / np.sqrt(ess), (k, x.mean(), mean[k], ess)
        assert abs(x.std() / sd - 1) < z / np.sqrt(2 * ess), (k, x.std(), sd, ess)


@pytest.mark.parametrize(
    "kernel, loop",
    [
        ("mala", "scan"),
        pytest.param("hmc", "scan", marks=pytest.mark.slow),
        ("mala", "fused"),
        ("hmc", "fused"),
    ],
)
def test_gradient_kernel_draws_agree_with_the_conjugate_regression(kernel, loop):
    outputs, observed, mean, cov = conjugate_regression()
    mode = FAST if loop == "scan" else None
    sampler = aemix.build_sampler(outputs, observed=observed, mode=mode)
    result = sampler.sample(
        300, n_chains=32, seed=1, warmup=300, thin=1, kernel=kernel, loop=loop, diagnose=False
    )
    assert (result.kernel, result.loop) == (kernel, loop)
    target = {"mala": 0.574, "hmc": 0.8}[kernel]
    assert abs(result.acceptance_rate.mean() - target) < 0.2
    _assert_regression_posterior(result.draws["beta"], mean, cov)


def test_a_scale_that_underflows_in_a_trajectory_is_a_rejection_not_an_error():
    # A halfnormal scale sampled as exp(x): early trajectories can diverge to where it is 0 and
    # aeppl's check sigma > 0 fails; the scan loop raised ModelError there, on a valid model.
    data = np.array([0.5, 1.2, -0.3, 0.9, 2.0, 0.1, 1.1])
    srng = aesara.tensor.random.RandomStream(0)
    mu = srng.normal(0.0, 10.0, name="mu")
    sig = srng.halfnormal(0.0, 2.0, name="sig")
    y = srng.normal(mu, sig, size=len(data), name="y")
    sampler = aemix.build_sampler(y, {y: data})
    n = max(300, int(600 * stat_scale()))
    result = sampler.sample(
        n, n_chains=16, seed=1, kernel="hmc", loop="scan", thin=2, warmup=600, start="prior"
    )
    # The posterior means by quadrature on a grid (mu, log sig).
    m, log_s = np.meshgrid(np.linspace(-6, 8, 701), np.linspace(-4, 3, 701), indexing="ij")
    s = np.exp(log_s)
    logp = -0.5 * (m / 10) ** 2 - 0.5 * (s / 2) ** 2 + log_s  # (the Jacobian of log sig)
    logp = logp - len(data) * log_s - 0.5 * (((data[:, None, None] - m) / s) ** 2).sum(0)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    for name, grid in (("mu", m), ("sig", s)):
        x = result.draws[name]
        mcse = x.std() / np.sqrt(float(az.ess(x)))
        assert abs(x.mean() - (w * grid).sum()) < 5 * mcse, (name, x.mean(), (w * grid).sum())


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["mala", "hmc"])
def test_gradient_kernel_draws_the_seed_mixture_moments(kernel):
    sampler = aemix.build_sampler({"Y": seed_model()[2]})
    n = max(200, int(1000 * stat_scale()))
    result = sampler.sample(n, n_chains=64, seed=2, warmup=500, thin=1, kernel=kernel)
    y = result.draws["Y"]
    ess = float(az.ess(y))
    mean, variance = mixture_moments()
    assert abs(y.mean() - mean) < 5 * np.sqrt(variance / ess)
    assert abs(y.var() / variance - 1) < 5 * np.sqrt(2 / ess) * 2  # (a mixture's kurtosis)


def test_auto_keeps_the_random_walk_and_explain_says_why(seed_sampler):
    kernel, why = choose_kernel("auto", seed_sampler.dim)
    assert kernel == Kernel("rmh")
    line = next(x for x in seed_sampler.explain().splitlines() if x.startswith("kernel:"))
    assert line.startswith("kernel: rmh") and "auto" in line and why in line
    result = seed_sampler.sample(10, n_chains=4, seed=0, warmup=10, diagnose=False)
    assert result.kernel == "rmh"


def test_an_unknown_kernel_is_refused(seed_sampler):
    with pytest.raises(ValueError, match="kernel must be"):
        seed_sampler.sample(10, kernel="nuts")


def test_hmc_leapfrog_count_grows_slowly_with_the_dimension():
    counts = [Kernel.named("hmc", d).n_leapfrog for d in (1, 3, 30, 300)]
    assert counts == sorted(counts) and counts[0] >= 2 and counts[-1] <= 10


def test_the_gradient_differentiates_through_a_maximum():
    x = aesara.tensor.vector("x")
    lp, grad = logdensity_and_gradient(aesara.tensor.max(x) - (x**2).sum(), x)
    np.testing.assert_allclose(grad.eval({x: [0.3, 0.1]}), [1.0 - 0.6, -0.2])


@pytest.mark.parametrize("n_steps", [1, 3])
def test_hmc_leapfrog_loop_is_the_unrolled_trajectory(n_steps):
    """The scan loop runs HMC's leapfrog steps as an inner loop (one copy of the gradient graph),
    the fused loop unrolled: the same trajectory's end, acceptance and state, to rounding."""
    import aesara.tensor as at

    from aemix.kernels import hmc

    x = at.vector("x")
    precision = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, 0.3], [0.0, 0.3, 0.5]])
    density = -0.5 * x @ precision @ x + at.sum(at.log1p(at.exp(-x)))
    _, grad = logdensity_and_gradient(density, x)

    def with_gradient(y):
        return tuple(aesara.clone_replace([density, grad], {x: y}))

    normal, exponential, jitter = at.vector("normal"), at.scalar("e"), at.scalar("j")
    state = hmc.init(x, with_gradient)
    outputs = []
    for inner in (False, True):
        new, info = hmc.step(
            hmc.HMCNoise(normal, exponential, jitter),
            state,
            with_gradient,
            at.constant(0.4),
            at.constant(np.array([1.0, 0.8, 1.3])),
            n_steps,
            inner_loop=inner,
        )
        outputs.append([*new, info.acceptance_probability, info.proposal])
    fn = aesara.function(
        [x, normal, exponential, jitter], outputs[0] + outputs[1], mode="FAST_COMPILE"
    )
    rng = np.random.default_rng(n_steps)
    for _ in range(3):
        values = fn(rng.normal(size=3), rng.normal(size=3), rng.exponential(), rng.normal())
        half = len(values) // 2
        for unrolled, looped in zip(values[:half], values[half:]):
            np.testing.assert_allclose(looped, unrolled, rtol=1e-12, atol=1e-12)


class _NoGradient(aesara.graph.op.Op):
    """The identity, with no gradient (as a user's own Op might be)."""

    description = "a user's operation without a gradient"

    def make_node(self, x):
        x = aesara.tensor.as_tensor_variable(x)
        return aesara.graph.basic.Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = inputs[0].copy()


def test_a_gradient_kernel_on_a_density_without_a_gradient_is_a_typed_error():
    srng = aesara.tensor.random.RandomStream(0)
    mu = srng.normal(0.0, 1.0, name="mu")
    y = srng.normal(_NoGradient()(mu), 1.0, name="y")
    sampler = aemix.build_sampler(y, {y: 0.5}, mode=FAST)
    with pytest.raises(aemix.GradientError, match="a user's operation without a gradient.*'rmh'"):
        sampler.sample(5, n_chains=2, seed=0, warmup=5, kernel="mala", loop="scan")


def test_auto_takes_hmc_in_many_dimensions_unless_the_density_has_no_gradient():
    kernel, why = choose_kernel("auto", 30, lambda: None)
    assert kernel.name == "hmc" and "30 unconstrained coordinates" in why
    kernel, why = choose_kernel("auto", 30, lambda: "the log-density uses sort")
    assert kernel.name == "rmh" and "no gradient (the log-density uses sort)" in why
    # A regression with 24 predictors: explain() says HMC, before anything is compiled.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 24))
    srng = at.random.RandomStream(0)
    beta_rv = srng.normal(0.0, 1.0, size=24, name="beta")
    y_rv = srng.normal(X @ beta_rv, 1.0, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: X @ rng.normal(size=24)})
    text = sampler.explain()
    line = next(x for x in text.splitlines() if x.startswith("kernel:"))
    assert line.startswith("kernel: hmc") and "auto: 24 unconstrained coordinates" in line
    # The loop described is HMC's (its step and gradient are too large for the fused loop).
    assert text.splitlines()[-1].startswith("loop: scan (the model's hmc step"), text
    assert "moved by the kernel" in text


def test_hmc_counts_the_divergences_of_a_funnel_and_warns():
    # Centered eight schools: theta's scale tau spans orders of magnitude (a funnel), and no one
    # step size follows its neck; the chains under-sample small tau (Stan diverges there too).
    # 5-9% of the trajectories diverged in runs of 32 chains x 500 draws: about 100 expected here.
    y = np.array([28.0, 8, -3, 7, -1, 1, 18, 12])
    sigma = np.array([15.0, 10, 16, 11, 9, 11, 10, 18])
    srng = aesara.tensor.random.RandomStream(0)
    mu = srng.normal(0.0, 5.0, name="mu")
    tau = srng.halfcauchy(0.0, 5.0, name="tau")
    theta = srng.normal(mu, tau, size=8, name="theta")
    Y = srng.normal(theta, sigma, name="y")
    sampler = aemix.build_sampler(Y, {Y: y}, mode=FAST)
    with pytest.warns(aemix.ConvergenceWarning, match=r"HMC trajectories after the warm-up"):
        result = sampler.sample(100, n_chains=16, seed=3, kernel="hmc", loop="scan", warmup=200)
    assert result.n_divergent.shape == (16,)
    transitions = result.diagnostics.transitions
    assert transitions == 16 * 100
    assert 0 < result.diagnostics.divergent == result.n_divergent.sum() < transitions


@pytest.mark.parametrize("loop", ["fused", "scan"])
def test_each_loop_counts_the_divergences_of_a_step_too_large(loop):
    # A standard normal under leapfrog steps of 10 (jittered in [5, 15]): the integrator is
    # unstable from a step of 2 on, and three steps blow the energy error far past 1000, so
    # nearly every trajectory diverges; with no warm-up the step size stays 10.
    srng = aesara.tensor.random.RandomStream(0)
    x = srng.normal(0.0, 1.0, name="x")
    sampler = aemix.build_sampler([x])
    with pytest.warns(aemix.ConvergenceWarning, match=r"diverged"):
        result = sampler.sample(
            50, n_chains=8, seed=5, kernel="hmc", loop=loop, warmup=0, step_size=10.0
        )
    assert result.loop == loop
    assert result.n_divergent.shape == (8,)
    assert result.n_divergent.sum() > 0.5 * 8 * 50
    assert result.n_divergent.sum() <= 8 * 50 - result.acceptance_rate.sum() * 50


def test_a_well_conditioned_hmc_run_has_no_divergence():
    srng = aesara.tensor.random.RandomStream(0)
    z = srng.normal(np.arange(3.0), [1.0, 2.0, 0.5], name="z")
    sampler = aemix.build_sampler([z], mode=FAST)
    result = sampler.sample(100, n_chains=8, seed=4, kernel="hmc", loop="scan", warmup=200)
    assert result.n_divergent.tolist() == [0] * 8 and result.diagnostics.divergent == 0
    assert sampler.sample(50, n_chains=4, seed=4, warmup=100, kernel="rmh").n_divergent is None
