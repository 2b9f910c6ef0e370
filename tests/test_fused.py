"""The fused C loop (`aemix.fused`) against the scan loop, and its summary-only mode."""

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import aesara.tensor as at
import arviz as az
import numpy as np
import pytest

import aemix
from aemix.errors import FusedLoopError
from tests.helpers import SEED_WEIGHTS, every_variable, mixture_moments, stat_scale


def _mean_and_se(draws: np.ndarray) -> tuple[float, float]:
    """Mean of ``(chains, draws)`` and its Monte Carlo standard error (ArviZ's ESS)."""
    ess = az.ess(az.convert_to_dataset(draws[None] if draws.ndim == 1 else draws))
    ess = float(ess.to_array().values.squeeze())
    return float(draws.mean()), float(draws.std() / np.sqrt(ess))


def test_auto_takes_the_fused_loop_for_the_seed(seed_sampler):
    result = seed_sampler.sample(20, n_chains=3, seed=0, warmup=20, start="prior")
    assert result.loop == "fused"
    assert result.draws["Y"].shape == (3, 20)
    assert result.draws["I"].dtype.kind == "i"
    assert "fused" in seed_sampler.explain()


def test_fused_and_scan_loops_sample_the_same_distribution(seed_sampler):
    n = int(4000 * stat_scale())
    fused = seed_sampler.sample(n, n_chains=100, seed=1, warmup=500, loop="fused", start="prior")
    scan = seed_sampler.sample(n, n_chains=100, seed=2, warmup=500, loop="scan", start="prior")
    assert (fused.loop, scan.loop) == ("fused", "scan")
    exact_mean, exact_var = mixture_moments()
    for stat, exact in [(lambda y: y, exact_mean), (lambda y: (y - exact_mean) ** 2, exact_var)]:
        m1, se1 = _mean_and_se(stat(fused.draws["Y"]))
        m2, se2 = _mean_and_se(stat(scan.draws["Y"]))
        assert abs(m1 - m2) < 4.5 * np.hypot(se1, se2)
        assert abs(m1 - exact) < 4.5 * se1
    # The discrete draws: frequencies of I against the weights (the marginal of I).
    for result in (fused, scan):
        for k, w in enumerate(SEED_WEIGHTS):
            m, se = _mean_and_se((result.draws["I"] == k).astype(float))
            assert abs(m - w) < 4.5 * se
    # Acceptance rates of the same kernel agree.
    assert abs(fused.acceptance_rate.mean() - scan.acceptance_rate.mean()) < 0.02


@pytest.mark.parametrize("loop", ["fused", "scan"])
def test_a_fixed_seed_gives_identical_draws(seed_sampler, loop):
    a = seed_sampler.sample(300, n_chains=5, seed=7, warmup=100, loop=loop, start="prior")
    b = seed_sampler.sample(300, n_chains=5, seed=7, warmup=100, loop=loop, start="prior")
    c = seed_sampler.sample(300, n_chains=5, seed=8, warmup=100, loop=loop, start="prior")
    np.testing.assert_array_equal(a.draws["Y"], b.draws["Y"])
    np.testing.assert_array_equal(a.draws["I"], b.draws["I"])
    np.testing.assert_array_equal(a.logdensity, b.logdensity)
    assert not np.array_equal(a.draws["Y"], c.draws["Y"])


def test_draws_do_not_depend_on_the_number_of_threads(seed_sampler):
    # 600 chains: eight tiles of 80 chains or fewer, shared unevenly between three threads.
    kwargs = dict(n_chains=600, seed=11, warmup=50, loop="fused")
    one = seed_sampler.sample(100, n_threads=1, **kwargs)
    three = seed_sampler.sample(100, n_threads=3, **kwargs)
    np.testing.assert_array_equal(one.draws["Y"], three.draws["Y"])
    np.testing.assert_array_equal(one.draws["I"], three.draws["I"])
    with pytest.raises(ValueError, match="n_threads"):
        seed_sampler.sample(5, n_threads=0, start="prior")


def test_tile_counts_split_the_chains_as_the_loop_does(seed_sampler, monkeypatch):
    from aemix.fused import MIN_TILES, TILE, tile_count

    for n in range(1, 20_000):
        t = tile_count(n)
        width = -(-n // t)  # the loop's rule
        assert -(-n // width) == t and width <= TILE, n
        assert t >= min(MIN_TILES, -(-n // 32)), n
    # The loop refuses generators that do not split the chains (more tiles than chains, or tiles
    # too wide), rather than leaving chains out.
    for wrong in (lambda n: n + 1, lambda n: 1):
        monkeypatch.setattr("aemix.runners.tile_count", wrong)
        with pytest.raises(ValueError, match="do not split 600 chains"):
            seed_sampler.sample(5, n_chains=600, warmup=0, loop="fused", start="prior")


@pytest.mark.parametrize("loop", ["fused", "scan"])
def test_summary_only_agrees_with_the_moments_of_stored_draws(seed_sampler, loop):
    # The same seed consumes the random numbers in the same order in both modes, so the running
    # moments must equal the moments of the stored draws up to rounding.
    kwargs = dict(n_chains=4, seed=3, warmup=200, thin=3, block_size=64, loop=loop)
    stored = seed_sampler.sample(500, **kwargs)
    summary = seed_sampler.sample(500, summary_only=True, **kwargs)
    assert isinstance(summary, aemix.SampleSummary) and summary.n_samples == 500
    for name in ("Y", "I"):
        draws = stored.draws[name].astype(float)
        np.testing.assert_allclose(summary.mean[name], draws.mean(axis=1), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(summary.variance[name], draws.var(axis=1), rtol=1e-9)
        pooled_mean, pooled_var = summary.pooled()[name]
        np.testing.assert_allclose(pooled_mean, draws.mean(), rtol=1e-10)
        np.testing.assert_allclose(pooled_var, draws.var(), rtol=1e-9)
    np.testing.assert_array_equal(summary.acceptance_rate, stored.acceptance_rate)


# Aesara 2.9.4's Cython scan (scan_perform_ext) leaks one small block (~65 bytes) per step,
# whatever the number of chains; the fused loop allocates nothing per step.
@pytest.mark.parametrize("loop, leak_per_step", [("fused", 0), ("scan", 200)])
def test_summary_only_memory_does_not_grow_with_steps(seed_sampler, loop, leak_per_step):
    n_chains = 200

    def peak(n_samples):
        seed_sampler.sample(
            10, n_chains=n_chains, seed=0, warmup=0, summary_only=True, loop=loop, start="prior"
        )
        tracemalloc.start()
        seed_sampler.sample(
            n_samples,
            n_chains=n_chains,
            seed=0,
            warmup=0,
            summary_only=True,
            block_size=128,
            loop=loop,
            start="prior",
        )
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(1_000), peak(20_000)
    # Storing the extra 19_000 draws would take 200 * 19_000 * (8 + 8 + 8) bytes = 91 MB.
    assert large - small < 1_000_000 + leak_per_step * 19_000


def test_conditional_probabilities_are_the_same_for_both_loops(seed_sampler):
    fused = seed_sampler.sample(50, n_chains=2, seed=0, warmup=10, loop="fused", start="prior")
    probs = fused.conditional_probabilities["I"]
    scan = seed_sampler.sample(50, n_chains=2, seed=0, warmup=10, loop="scan", start="prior")
    # Computed from the draws, by the same function: check against the exact conditional.
    y = fused.draws["Y"][..., None]
    from tests.helpers import SEED_LOC, SEED_SCALE

    joint = np.log(SEED_WEIGHTS) - np.log(SEED_SCALE) - 0.5 * ((y - SEED_LOC) / SEED_SCALE) ** 2
    exact = np.exp(joint - joint.max(-1, keepdims=True))
    exact /= exact.sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, exact, rtol=1e-10)
    assert scan.conditional_probabilities["I"].shape == probs.shape


def test_fused_loop_refused_for_a_model_that_does_not_lower():
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, 1.0, size=3, name="mu")
    # An index computed from the state has no scalar lowering.
    Y_rv = srng.normal(mu[at.argmax(mu)], 1.0, name="Y")
    sampler = aemix.build_sampler({"Y": Y_rv}, observed={Y_rv: 1.5})
    with pytest.raises(FusedLoopError, match="does not lower"):
        sampler.sample(5, n_chains=2, warmup=0, loop="fused", start="prior")
    result = sampler.sample(5, n_chains=2, warmup=0, seed=0, start="prior")
    assert result.loop == "scan"
    assert "scan" in sampler.explain()


def test_bad_loop_name_is_a_clear_error(seed_sampler):
    with pytest.raises(ValueError, match="loop must be"):
        seed_sampler.sample(5, loop="numba", start="prior")


def conjugate_normal_model(y, prior_sd=10.0):
    srng = at.random.RandomStream(0)
    mu = srng.normal(0.0, prior_sd, name="mu")
    Y_rv = srng.normal(mu, 1.0, size=len(y), name="Y")
    return aemix.build_sampler({"Y": Y_rv}, observed={Y_rv: y})


def test_observed_data_is_a_loop_in_the_fused_step_and_the_posterior_is_exact():
    y = np.random.default_rng(5).normal(1.5, 1.0, size=40)
    sampler = conjugate_normal_model(y)
    assert sampler.explain().splitlines()[-1].startswith("loop: fused")
    result = sampler.sample(
        int(2000 * stat_scale()), n_chains=50, seed=3, warmup=500, start="prior"
    )
    assert result.loop == "fused"
    post_var = 1.0 / (1.0 / 100.0 + len(y))
    post_mean = post_var * y.sum()
    m, se = _mean_and_se(result.draws["mu"])
    assert abs(m - post_mean) < 4.5 * se
    v, se_v = _mean_and_se((result.draws["mu"] - post_mean) ** 2)
    assert abs(v - post_var) < 4.5 * se_v


def test_a_wrong_lowering_is_caught_by_the_self_check(monkeypatch):
    import aesara.scalar as aes

    from aemix import sampler as sampler_module

    real = sampler_module.lower_to_scalars

    def off_by_one(inputs, shapes, outputs, *args, **kwargs):
        graph = real(inputs, shapes, outputs, *args, **kwargs)
        if len(outputs) == 1 and outputs[0].name and outputs[0].name.endswith("logdensity"):
            graph.outputs[0] = np.asarray(aes.add(graph.outputs[0].item(), aes.constant(1.0)))
        return graph

    y = np.random.default_rng(6).normal(size=20)
    sampler = conjugate_normal_model(y)
    sampler._density.logdensity.name = "model_logdensity"
    monkeypatch.setattr(sampler_module, "lower_to_scalars", off_by_one)
    # explain() shows what the lowering gives; the check runs before the loop is compiled.
    assert sampler.explain().splitlines()[-1].startswith("loop: fused")
    with pytest.raises(FusedLoopError, match="self-check failed"):
        sampler.sample(5, n_chains=2, warmup=0, loop="fused", start="prior")
    assert sampler.sample(5, n_chains=2, warmup=0, seed=0, start="prior").loop == "scan"
    assert "self-check failed" in sampler.explain().splitlines()[-1]


def test_a_record_computed_after_the_loop_keeps_both_modes_on_one_stream(monkeypatch):
    # When the record does not lower (forced here), the fused loop keeps the positions and the
    # memberships are drawn after it, block by block.
    from aemix.sampler import Sampler
    from aemix.scalarize import LoweringError

    def refuse(self, step, keep, *kernel):
        raise LoweringError("forced by the test")

    monkeypatch.setattr(Sampler, "_lower_record_to_scalars", refuse)
    srng = at.random.RandomStream(0)
    mu = srng.normal(np.array([-2.0, 2.0]), 1.0, name="mu")
    z = srng.bernoulli(0.5, size=20, name="z")
    y_rv = srng.normal(mu[z], 1.0, name="y")
    y = np.random.default_rng(7).normal(np.repeat([-2.0, 2.0], 10), 1.0)
    sampler = aemix.build_sampler({"y": y_rv}, observed={y_rv: y})
    assert "after the loop" in sampler.explain()
    kwargs = dict(n_chains=3, seed=2, warmup=50, thin=2, block_size=32, loop="fused")
    stored = sampler.sample(100, var_names=every_variable(sampler), **kwargs)
    summary = sampler.sample(100, summary_only=True, var_names=every_variable(sampler), **kwargs)
    assert stored.draws["z"].shape == (3, 100, 20)
    for name in ("mu", "z"):
        draws = stored.draws[name].astype(float)
        np.testing.assert_allclose(summary.mean[name], draws.mean(axis=1), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(summary.variance[name], draws.var(axis=1), atol=1e-12)
    # The memberships follow the data: the first ten observations sit with the lower mean.
    low = np.argmin(stored.draws["mu"], axis=-1)[..., None]
    agree = (stored.draws["z"] == low)[..., :10].mean()
    assert agree > 0.9
    # Keeping the memberships only: the same draws, from the same stream.
    z_only = sampler.sample(100, var_names=["z"], **kwargs)
    assert set(z_only.draws) == {"z"}
    np.testing.assert_array_equal(z_only.draws["z"], stored.draws["z"])


@pytest.mark.parametrize("loop", ["fused", "scan"])
def test_var_names_keeps_some_variables_without_changing_their_draws(seed_sampler, loop):
    kwargs = dict(n_chains=5, seed=4, warmup=50, block_size=64, loop=loop)
    full = seed_sampler.sample(200, **kwargs)
    y_only = seed_sampler.sample(200, var_names=["Y"], **kwargs)
    i_only = seed_sampler.sample(200, var_names=("I",), **kwargs)
    assert set(y_only.draws) == {"Y"} and set(i_only.draws) == {"I"}
    # The chains move the same way whatever is kept, and the discrete draws use their own stream.
    np.testing.assert_array_equal(y_only.draws["Y"], full.draws["Y"])
    np.testing.assert_array_equal(i_only.draws["I"], full.draws["I"])
    np.testing.assert_array_equal(y_only.logdensity, full.logdensity)
    np.testing.assert_array_equal(y_only.acceptance_rate, full.acceptance_rate)
    assert set(y_only.to_inference_data().posterior.data_vars) == {"Y"}
    with pytest.raises(ValueError, match=r"draws of \['Y'\] were not kept"):
        _ = i_only.conditional_probabilities
    summary = seed_sampler.sample(200, var_names=["I"], summary_only=True, **kwargs)
    assert set(summary.mean) == {"I"}
    np.testing.assert_allclose(summary.mean["I"], full.draws["I"].mean(axis=1), rtol=1e-12)


def test_var_names_compiles_only_the_loop_it_runs(monkeypatch):
    # A fresh sampler asked for Y only never builds the loop that also records I.
    srng = at.random.RandomStream(0)
    N_rv = srng.normal(np.array([-2.0, 1.0]), np.array([1.0, 2.0]), name="N")
    I_rv = srng.categorical(np.array([0.3, 0.7]), name="I")
    sampler = aemix.build_sampler({"Y": N_rv[I_rv]})
    built = []
    original = aemix.sampler.compile_loop
    monkeypatch.setattr(
        "aemix.sampler.compile_loop", lambda program: built.append(program) or original(program)
    )
    sampler.sample(5, n_chains=2, seed=0, warmup=0, var_names=["Y"], start="prior")
    assert [(p.n_float, p.n_int, p.n_uniforms) for p in built] == [(1, 0, 0)]


def test_bad_var_names_are_clear_errors(seed_sampler):
    with pytest.raises(ValueError, match=r"'Z' is not a variable of this model"):
        seed_sampler.sample(5, n_chains=2, warmup=0, var_names=["Y", "Z"], start="prior")
    with pytest.raises(TypeError, match="the string 'Y'"):
        seed_sampler.sample(5, n_chains=2, warmup=0, var_names="Y", start="prior")
    with pytest.raises(ValueError, match="empty"):
        seed_sampler.sample(5, n_chains=2, warmup=0, var_names=[], start="prior")


def test_a_second_sample_call_compiles_nothing(seed_sampler, monkeypatch):
    for loop in ("fused", "scan"):
        seed_sampler.sample(5, n_chains=3, seed=0, warmup=60, loop=loop, start="prior")

    def refuse(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr("aemix.sampler.aesara.function", refuse)
    monkeypatch.setattr("aemix.sampler.compile_loop", refuse)
    monkeypatch.setattr("aemix.sampler.lower_to_scalars", refuse)
    for loop in ("fused", "scan"):
        result = seed_sampler.sample(50, n_chains=7, seed=1, warmup=60, loop=loop, start="prior")
        assert result.draws["Y"].shape == (7, 50)


def test_the_carried_record_gives_the_draws_of_the_plain_one(seed_sampler):
    # Recording every step, the loop carries the discrete conditionals in the state (computed at
    # the proposal, beside its log-density); without that form it recomputes them per draw.
    import dataclasses

    from aemix.fused import compile_loop

    kwargs = dict(n_chains=300, seed=9, warmup=0, step_size=2.0, loop="fused")
    keep = seed_sampler.latent + seed_sampler.marginalized
    program = seed_sampler._fused_program(keep)
    assert program.n_carried == 1 + len(SEED_WEIGHTS)  # Y and P(I = k | Y)
    carried = seed_sampler.sample(400, **kwargs)
    plain = dataclasses.replace(
        program, n_carried=0, initial_carried=None, carried_step=None, carried_record=None
    )
    compiled = seed_sampler._compiled
    saved = {k: compiled[k] for k in [("fused_program", keep), ("fused", keep)]}
    try:
        compiled[("fused_program", keep)] = plain
        compiled[("fused", keep)] = compile_loop(plain)
        reference = seed_sampler.sample(400, **kwargs)
    finally:
        compiled.update(saved)
    np.testing.assert_array_equal(carried.draws["Y"], reference.draws["Y"])
    np.testing.assert_array_equal(carried.logdensity, reference.logdensity)
    np.testing.assert_array_equal(carried.draws["I"], reference.draws["I"])
    # The running moments take the carried form too.
    summary = seed_sampler.sample(400, summary_only=True, **kwargs)
    for name in ("Y", "I"):
        draws = carried.draws[name].astype(float)
        np.testing.assert_allclose(summary.mean[name], draws.mean(axis=1), rtol=1e-10)
        np.testing.assert_allclose(summary.variance[name], draws.var(axis=1), rtol=1e-9)


def test_composite_assigns_every_output_when_outputs_repeat():
    # A Composite's C code names each output variable once: outputs listed twice (or equal after
    # its merge, such as two copies of a data value) used to leave slots unassigned.
    import aesara
    import aesara.scalar as aes
    from aesara.tensor.elemwise import Elemwise

    from aemix.fused import composite

    x = aes.float64("x")
    two = aes.constant(2.0)
    doubled = aes.mul(x, two)
    equal_copy = aes.mul(x, two)  # a second node, merged with `doubled` by the Composite
    outputs = [doubled, doubled, x, x, two, two, equal_copy, aes.add(x, two), doubled]
    c = composite([x], outputs)
    assert c.nout == len(outputs)
    xs = at.vector("xs")
    fn = aesara.function(
        [xs], Elemwise(c)(xs), mode=aesara.compile.mode.Mode(linker="c", optimizer=None)
    )
    values = np.array([-1.5, 0.25, 3.0])
    expected = [2 * values, 2 * values, values, values, 2 + 0 * values, 2 + 0 * values]
    expected += [2 * values, values + 2, 2 * values]
    for _ in range(3):  # fresh, uninitialized output buffers each time
        for got, want in zip(fn(values), expected):
            np.testing.assert_array_equal(got, want)
    assert c.impl(0.5) == (1.0, 1.0, 0.5, 0.5, 2.0, 2.0, 1.0, 2.5, 1.0)


def test_zero_inflated_draws_never_put_a_positive_count_at_a_structural_zero():
    # Recording every step, the fused loop carries the discrete conditionals in its state; their
    # initial values at each block's start (where a chain that has not accepted yet keeps them)
    # come from a Composite whose repeated outputs (repeated data values) were left unassigned, so
    # z = 1 (a structural zero) was drawn at positive counts.
    y = np.random.default_rng(0).poisson(3.0, size=60) * (np.arange(60) % 3 != 0)
    srng = at.random.RandomStream(0)
    pi = srng.beta(1.0, 1.0, name="pi")
    lam = srng.gamma(2.0, 0.5, name="lam")
    z = srng.bernoulli(pi, size=60, name="z")
    y_rv = at.switch(z, 0, srng.poisson(lam, size=60, name="counts"))
    sampler = aemix.build_sampler({"y": y_rv}, observed={y_rv: y})
    # Little warm-up and short blocks: many chains have not accepted at the start of a block.
    result = sampler.sample(
        40,
        n_chains=64,
        seed=0,
        warmup=4,
        block_size=5,
        loop="fused",
        start="prior",
        var_names=every_variable(sampler),
    )
    assert result.loop == "fused"
    assert sampler._fused_program(sampler.latent + sampler.marginalized).n_carried > 0
    z = result.draws["z"]
    assert z.shape == (64, 40, 60)
    assert not np.any(z[..., y > 0] == 1)
    # The zeros are structural some of the time, so the test can tell a stuck record.
    assert 0 < z[..., y == 0].mean() < 1


_PROGRAM_KEY_SCRIPT = """
import numpy as np, aesara.tensor as at, aemix
from aemix.fused import program_key
srng = at.random.RandomStream(0)
rng = np.random.default_rng(1)
x = rng.normal(size=20)
y = 1.5 * x + rng.normal(size=20)
z = rng.normal(size=24)
a = srng.normal(0, 1, name="a")
b = srng.normal(0, 1, name="b")
s = srng.halfnormal(1, name="s")
y_rv = srng.normal(a + b * x, s, name="y")
z_rv = srng.normal(a * np.linspace(0.5, 1.5, 24), 1.0, name="z")
sampler = aemix.build_sampler([y_rv, z_rv], observed={y_rv: y, z_rv: z})
print(program_key(sampler._fused_program()))
"""


def test_the_generated_code_is_the_same_in_every_process():
    # Variables hash by id, so anything ordered by a set of them (a loop's data arrays, a
    # composite's inputs) changes from one process to the next, and with it the compiled module.
    # Two observed arrays of lengths 20 and 24 give loops over data.
    keys = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        done = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", _PROGRAM_KEY_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        keys.append(done.stdout.strip().splitlines()[-1])
    assert len(keys[0]) == 64
    assert keys[1] == keys[0]


def _regression(x, y):
    # Unconstrained latents: the kept log-density is the model's, no Jacobian.
    srng = at.random.RandomStream(0)
    a = srng.normal(0.0, 2.0, name="a")
    b = srng.normal(0.0, 2.0, name="b")
    y_rv = srng.normal(a + b * x, 0.5, name="y")
    return aemix.build_sampler({"y": y_rv}, observed={y_rv: y})


def test_a_new_data_set_of_the_same_shapes_reuses_the_compiled_loop(monkeypatch):
    # The data (and what the lowering computes from them alone) are inputs of the fused loop, not
    # literals in its C code: the module is keyed by the model's structure only.
    from aesara.link.c.cmodule import GCC_compiler

    from aemix.fused import FusedRMHLoop, compile_loop
    from aemix.runners import kernel_parameters

    rng = np.random.default_rng(11)
    x1, x2 = rng.normal(size=(2, 30))
    first = _regression(x1, 1.5 * x1 + rng.normal(0.0, 0.5, size=30))
    second = _regression(x2, -0.5 * x2 + 2.0 + rng.normal(0.0, 0.5, size=30))
    p1, p2 = first._fused_program(), second._fused_program()
    assert len(p1.data) == len(p2.data) >= 2
    assert not all(np.array_equal(c1, c2) for c1, c2 in zip(p1.data, p2.data))
    assert FusedRMHLoop(p1).key == FusedRMHLoop(p2).key
    compile_loop(p1)  # (cached on disk, or compiled now)
    compiled = []
    original = GCC_compiler.compile_str
    monkeypatch.setattr(
        GCC_compiler,
        "compile_str",
        staticmethod(lambda *a, **k: compiled.append(k.get("module_name")) or original(*a, **k)),
    )
    compile_loop(p2)
    assert compiled == []
    kwargs = dict(n_chains=4, seed=3, warmup=30, loop="fused", start="prior", diagnose=False)
    for sampler in (first, second):
        result = sampler.sample(12, **kwargs)
        assert result.loop == "fused"
        for chain in range(4):
            for draw in (0, 11):
                values = {name: result.draws[name][chain, draw] for name in ("a", "b")}
                np.testing.assert_allclose(
                    result.logdensity[chain, draw], sampler.logdensity(values), rtol=1e-12
                )
    # The loop checks the data it is given against the shapes its code was written for.
    fn = second._fused_function()
    bad = tuple(np.append(c, c[:1]) for c in p2.data)
    with pytest.raises(ValueError, match="data array 0"):
        fn(
            tuple(np.random.PCG64(i) for i in range(2)),
            np.zeros((1, 2)),
            np.zeros(1),
            0.1,
            kernel_parameters(np.eye(2), 1.0),
            1,
            1,
            0,
            None,
            0,
            1,
            bad,
        )


def test_explain_lowers_but_compiles_nothing(monkeypatch):
    import aesara
    from aesara.link.c.cmodule import GCC_compiler

    def refuse(*args, **kwargs):
        raise AssertionError("explain() compiled something")

    y = np.random.default_rng(12).normal(size=25)
    sampler = conjugate_normal_model(y)
    monkeypatch.setattr(aesara, "function", refuse)
    monkeypatch.setattr(GCC_compiler, "compile_str", staticmethod(refuse))
    monkeypatch.setattr("aemix.sampler.compile_loop", refuse)
    assert sampler.explain().splitlines()[-1].startswith("loop: fused C loop")
