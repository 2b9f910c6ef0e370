"""The runners behind `Sampler.sample`: memory of the record computed after the loop, interrupts
of the fused loop."""

import signal
import sys
import threading
import time
import tracemalloc

import aesara
import aesara.tensor as at
import numpy as np
import pytest

import aemix
from aemix.runners import RECORD_MEMORY_BUDGET, StepLoop
from tests.helpers import seed_model


@pytest.fixture(scope="module")
def change_point_sampler():
    """A change point over T = 112 counts: its record (``tau`` drawn from a conditional that sums
    every configuration over every count) does not lower, so it is computed after the loop."""
    counts = np.random.default_rng(1).poisson(np.repeat([3.0, 1.0], [40, 72]))
    T = len(counts)
    srng = at.random.RandomStream(0)
    tau = srng.integers(0, T, name="tau")
    early = srng.gamma(1.0, 1.0, name="early")
    late = srng.gamma(1.0, 1.0, name="late")
    y_rv = srng.poisson(at.switch(at.arange(T) < tau, early, late), name="y")
    sampler = aemix.build_sampler({"y": y_rv}, observed={y_rv: counts})
    assert "after the loop" in sampler.explain()
    return sampler


@pytest.mark.parametrize("summary_only", [False, True])
@pytest.mark.parametrize(
    # (The scan loop's step itself holds K x T values per chain: not 2000 chains in this budget.)
    "loop, n_chains, n_samples",
    [("fused", 25, 400), ("scan", 25, 400), ("fused", 2000, 5)],
)
def test_the_record_after_the_loop_is_computed_within_a_memory_budget(
    change_point_sampler, loop, summary_only, n_chains, n_samples
):
    # The conditional of tau takes K x T = 112 x 112 values per draw: the whole block of 25 x 400
    # draws at once would take 1 GB per intermediate, for 0.3 MB of draws; so would 2000 chains
    # (their initial log-densities, then one draw of each, five times over).
    # One case starts from the tempered particles (their moves and log-likelihoods in batches);
    # the others from prior draws.
    start = "tempered" if (loop, n_chains, summary_only) == ("scan", 25, False) else "prior"
    kwargs = dict(
        n_chains=n_chains, seed=0, warmup=0, loop=loop, summary_only=summary_only, start=start
    )
    change_point_sampler.sample(5, **kwargs)  # compile outside the measurement
    tracemalloc.start()
    result = change_point_sampler.sample(n_samples, **kwargs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.loop == loop
    draws_bytes = n_chains * n_samples * (2 + 1 + 1) * 8  # early, late, tau, log-density
    assert peak < 4 * draws_bytes + 3 * RECORD_MEMORY_BUDGET
    if not summary_only:
        tau = result.draws["tau"]
        assert tau.shape == (n_chains, n_samples) and 0 <= tau.min() and tau.max() < 112
        if n_samples > 100:  # the change at t = 40 is clear in the data
            assert abs(np.median(tau) - 40) < 10


def test_ctrl_c_lands_in_a_long_fused_call_and_the_sampler_still_works(seed_sampler):
    # The fused loop runs a whole block without the GIL; it used to finish the block (tens of
    # seconds) before the KeyboardInterrupt was raised.
    kwargs = dict(n_chains=256, seed=0, warmup=0, step_size=1.0, loop="fused", summary_only=True)
    before = seed_sampler.sample(
        50, n_chains=4, seed=1, warmup=0, step_size=1.0, loop="fused", start="prior"
    )
    start = time.perf_counter()
    seed_sampler.sample(2000, block_size=2000, **kwargs)
    per_step = (time.perf_counter() - start) / 2000
    # One compiled call that would run for a minute or more.
    n_steps = int(max(60.0 / per_step, 10_000))
    delay, bound = 1.0, 5.0
    main = threading.main_thread().ident
    timer = threading.Timer(delay, signal.pthread_kill, args=(main, signal.SIGINT))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        start = time.perf_counter()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            seed_sampler.sample(n_steps, block_size=n_steps, **kwargs)
        landed = time.perf_counter() - start - delay
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert landed < bound
    after = seed_sampler.sample(
        50, n_chains=4, seed=1, warmup=0, step_size=1.0, loop="fused", start="prior"
    )
    np.testing.assert_array_equal(after.draws["Y"], before.draws["Y"])
    np.testing.assert_array_equal(after.draws["I"], before.draws["I"])


@pytest.mark.parametrize("loop", ["scan", "fused"])
def test_one_sampler_sampled_from_several_threads_gives_the_sequential_draws(loop):
    # The compiled functions and the prior's generators are shared by a sampler's calls; from two
    # threads at once they used to give other draws than the seed's, or abort the process.
    sampler = aemix.build_sampler({"Y": seed_model()[2]})
    kwargs = dict(n_chains=6, warmup=100, block_size=16, loop=loop)
    seeds = [0, 1, 0, 2, 1, 0, 3, 2]
    sequential = [sampler.sample(60, seed=seed, **kwargs) for seed in seeds]
    fresh = aemix.build_sampler({"Y": seed_model()[2]})  # nothing compiled yet
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def work(i):
        try:
            results[i] = [fresh.sample(60, seed=seeds[i], **kwargs) for _ in range(2)]
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave the threads' Python code finely
    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(seeds))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert not errors, errors
    for i, expected in enumerate(sequential):
        for result in results[i]:
            assert result.loop == loop
            for name in ("Y", "I"):
                np.testing.assert_array_equal(result.draws[name], expected.draws[name])
            np.testing.assert_array_equal(result.logdensity, expected.logdensity)


def test_the_step_loop_stacks_each_step_of_the_compiled_step():
    # A toy "step": x + step_size * normal * parameters, its "log-density" the sum of squares, the
    # acceptance probability exp(-exponential) and accepted where lp < 1.
    x, lp = at.matrix("x"), at.vector("lp")
    eps, expo = at.matrix("eps"), at.vector("expo")
    step_size, parameters = at.scalar("step_size"), at.vector("parameters")
    new = x + step_size * eps * parameters
    new_lp = (new**2).sum(axis=1) + 0 * lp
    step = aesara.function(
        [x, lp, eps, expo, step_size, parameters],
        [new, new_lp, at.exp(-expo), at.cast(new_lp < 1.0, "int8")],
    )
    rng = np.random.default_rng(0)
    x0, lp0 = rng.normal(size=(3, 2)), np.zeros(3)
    saved = x0.copy()
    noise, exponential = rng.normal(size=(5, 3, 2)), rng.exponential(size=(5, 3))
    xs, lps, probs, accepted = StepLoop(step)(
        x0, lp0, noise, exponential, 0.5, np.array([1.0, 2.0])
    )
    assert xs.shape == (5, 3, 2) and accepted.dtype == np.int8
    by_hand = x0.copy()
    for t in range(5):
        by_hand = by_hand + 0.5 * noise[t] * [1.0, 2.0]
        np.testing.assert_allclose(xs[t], by_hand)
        np.testing.assert_allclose(lps[t], (by_hand**2).sum(axis=1))
        np.testing.assert_allclose(probs[t], np.exp(-exponential[t]))
        np.testing.assert_array_equal(accepted[t], (by_hand**2).sum(axis=1) < 1.0)
    np.testing.assert_array_equal(x0, saved)  # (the starting positions are left as they were)
