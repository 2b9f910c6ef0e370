"""What a run keeps in memory (`aemix.memory`): discrete draws in the narrowest integer type that
holds their support, in both loops and through every use of the draws, and a result estimated
larger than ``max_memory`` refused before anything runs."""

import aesara.tensor as at
import numpy as np
import pytest

import aemix
import aemix.runners
from aemix.memory import check_result_size, format_bytes, result_bytes, smallest_integer_dtype
from aemix.runners import ScanRunner
from tests.helpers import every_variable

FAST = "FAST_COMPILE"


@pytest.mark.parametrize(
    "support, dtype",
    [
        (np.arange(2), "int8"),
        (np.arange(128), "int8"),
        (np.arange(129), "int16"),
        (np.array([-129, 0]), "int16"),
        (np.array([0, 2**15]), "int32"),
        (np.array([0, 2**31]), "int64"),
        (np.arange(4, dtype="int32"), "int8"),
        (np.arange(4).reshape(2, 2), "int8"),  # joint configurations
        (np.array([0, 255], dtype="uint8"), "uint8"),  # already narrower than int16
        (np.array([False, True]), "bool"),
        (np.array([0.0, 1.0]), "float64"),
    ],
)
def test_the_smallest_integer_dtype_holds_the_whole_support(support, dtype):
    assert smallest_integer_dtype(support) == np.dtype(dtype)


def mixture(n: int = 6, mode=FAST):
    """A 2-component mixture of ``n`` observations, its memberships ``z`` summed out, and a
    derived quantity of them (int64: its range is not known)."""
    y = np.linspace(-2.0, 3.0, n)
    srng = at.random.RandomStream(0)
    w_rv = srng.dirichlet(np.ones(2), name="w")
    mu_rv = srng.normal(0.0, 2.0, size=2, name="mu")
    z_rv = srng.categorical(w_rv, size=n, name="z")
    y_rv = srng.normal(mu_rv[z_rv], 1.0, name="y")
    return aemix.build_sampler({"y": y_rv, "twice": 2 * z_rv}, observed={y_rv: y}, mode=mode)


@pytest.fixture(scope="module")
def fast_mixture():
    return mixture()


def _in_support_dtype(monkeypatch, sampler):
    """Store every discrete variable in its support's own dtype, as before (int64)."""
    monkeypatch.setattr(aemix.runners, "smallest_integer_dtype", lambda support: support.dtype)
    sampler._compiled.pop("stored_variables", None)


def _narrow_then_wide(monkeypatch, sampler, **kwargs):
    sampler._compiled.pop("stored_variables", None)
    narrow = sampler.sample(**kwargs)
    with monkeypatch.context() as m:
        _in_support_dtype(m, sampler)
        wide = sampler.sample(**kwargs)
    sampler._compiled.pop("stored_variables", None)
    return narrow, wide


def _assert_same_draws(narrow, wide, discrete):
    assert narrow.draws.keys() == wide.draws.keys()
    for name, value in narrow.draws.items():
        expected_dtype = np.int8 if name in discrete else wide.draws[name].dtype
        assert value.dtype == expected_dtype, name
        np.testing.assert_array_equal(value, wide.draws[name])
    np.testing.assert_array_equal(narrow.logdensity, wide.logdensity)


def test_scan_stores_memberships_in_int8_with_the_same_draws(monkeypatch, fast_mixture):
    kwargs = dict(n_samples=20, n_chains=4, seed=1, warmup=20, loop="scan", diagnose=False)
    kwargs["var_names"] = every_variable(fast_mixture)
    narrow, wide = _narrow_then_wide(monkeypatch, fast_mixture, **kwargs)
    assert wide.draws["z"].dtype == np.int64
    assert narrow.draws["twice"].dtype == np.int64  # derived: its own dtype
    _assert_same_draws(narrow, wide, discrete={"z"})


@pytest.mark.parametrize("var_names", ["every", ["w", "mu", "z"]])
def test_the_fused_loop_writes_memberships_in_int8_with_the_same_draws(monkeypatch, var_names):
    # With the int64 derived quantity kept, the loop's integer records are int64 and z is
    # narrowed when collected; without it, the loop writes int8 itself.
    sampler = mixture(n=3, mode=None)
    var_names = every_variable(sampler) if var_names == "every" else var_names
    kwargs = dict(n_samples=20, n_chains=4, seed=1, warmup=20, loop="fused", var_names=var_names)
    narrow, wide = _narrow_then_wide(monkeypatch, sampler, diagnose=False, **kwargs)
    assert narrow.loop == "fused"
    _assert_same_draws(narrow, wide, discrete={"z"})
    assert narrow.draws["z"].min() >= 0 and narrow.draws["z"].max() <= 1


def test_int8_draws_serve_conditionals_likelihood_predictive_and_arviz(monkeypatch, fast_mixture):
    kwargs = dict(n_samples=10, n_chains=3, seed=2, warmup=10, loop="scan", diagnose=False)
    kwargs["var_names"] = every_variable(fast_mixture)
    narrow, wide = _narrow_then_wide(monkeypatch, fast_mixture, **kwargs)
    for name, probs in wide.conditional_probabilities.items():
        np.testing.assert_array_equal(narrow.conditional_probabilities[name], probs)
    for name, terms in wide.log_likelihood.items():
        np.testing.assert_array_equal(narrow.log_likelihood[name], terms)
    predictive = fast_mixture.posterior_predictive(narrow, seed=3)
    for name, value in fast_mixture.posterior_predictive(wide, seed=3).items():
        np.testing.assert_array_equal(predictive[name], value)
    idata = narrow.to_inference_data(posterior_predictive=predictive)
    assert idata.posterior["z"].dtype == np.int8
    np.testing.assert_array_equal(idata.posterior["z"].values, wide.draws["z"])


def test_an_inner_variable_is_given_the_int8_draw_of_the_one_around_it(monkeypatch):
    # J was summed out inside I's mixture: its conditional reads I's (int8) draws.
    srng = at.random.RandomStream(0)
    N_rv = srng.normal(np.array([-1.0, 2.0]), np.array([0.5, 1.5]), name="N")
    J_rv = srng.categorical(np.array([0.3, 0.7]), name="J")
    X_rv = srng.normal(4.0, 2.0, name="X")
    I_rv = srng.categorical(np.array([0.4, 0.6]), name="I")
    sampler = aemix.build_sampler({"Y": at.stack([X_rv, N_rv[J_rv]])[I_rv]}, mode=FAST)
    assert sampler.conditionals_given["J"] == ("I",)
    kwargs = dict(n_samples=10, n_chains=3, seed=4, warmup=10, loop="scan", diagnose=False)
    narrow, wide = _narrow_then_wide(monkeypatch, sampler, **kwargs)
    _assert_same_draws(narrow, wide, discrete={"I", "J"})
    for name, probs in wide.conditional_probabilities.items():
        np.testing.assert_array_equal(narrow.conditional_probabilities[name], probs)


# -- the limit -------------------------------------------------------------------------------


def _expected_bytes(n_chains, n_samples, n=6):
    # By default: w, mu: 2 float64 each; twice: n int64; the log-density: one float64 (the
    # memberships z, n int8, are given as probabilities, not draws).
    return n_chains * n_samples * (2 * 8 + 2 * 8 + n * 8 + 8)


def _refuse_sampling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the sampler started sampling")

    monkeypatch.setattr(aemix.sampler.Sampler, "initial_positions", refuse)
    monkeypatch.setattr(aemix.sampler.Sampler, "_tempered_start", refuse)
    monkeypatch.setattr(aemix.sampler, "ScanRunner", refuse)
    monkeypatch.setattr(aemix.sampler, "FusedRunner", refuse)


def test_a_result_just_over_the_limit_is_refused_before_sampling(monkeypatch, fast_mixture):
    limit = _expected_bytes(3, 7) - 1
    with monkeypatch.context() as m:
        _refuse_sampling(m)
        with pytest.raises(aemix.MemoryLimitError) as info:
            fast_mixture.sample(7, n_chains=3, seed=0, max_memory=limit, start="prior")
    error = info.value
    assert isinstance(error, aemix.AemixError)
    assert (error.estimated, error.limit) == (limit + 1, limit)
    assert [name for name, _ in error.largest] == ["twice", "w", "mu"]
    message = str(error)
    assert format_bytes(limit + 1) in message and format_bytes(limit) in message
    for remedy in ("var_names=[...]", "thin=", "summary_only=True", "max_memory=", "twice"):
        assert remedy in message


def test_a_result_at_the_limit_runs_and_takes_what_was_estimated(fast_mixture):
    limit = _expected_bytes(3, 7)
    result = fast_mixture.sample(7, n_chains=3, seed=0, warmup=5, max_memory=limit, start="prior")
    taken = sum(v.nbytes for v in result.draws.values()) + result.logdensity.nbytes
    assert taken == limit


def test_var_names_summary_only_or_no_limit_get_under_it(monkeypatch, fast_mixture):
    limit = _expected_bytes(3, 7) - 1
    kwargs = dict(n_chains=3, seed=0, warmup=5, diagnose=False)
    result = fast_mixture.sample(7, var_names=["w", "mu", "z"], max_memory=limit, **kwargs)
    assert result.draws["z"].dtype == np.int8
    fast_mixture.sample(7, summary_only=True, max_memory=0, **kwargs)
    fast_mixture.sample(7, max_memory=None, **kwargs)
    monkeypatch.setattr(aemix.memory, "DEFAULT_MAX_MEMORY", limit)
    with pytest.raises(aemix.MemoryLimitError):
        fast_mixture.sample(7, **kwargs)


@pytest.mark.parametrize(
    "max_memory, error", [("big", ValueError), (-1, ValueError), ([], TypeError)]
)
def test_max_memory_must_be_bytes_none_or_auto(fast_mixture, max_memory, error):
    with pytest.raises(error, match="max_memory"):
        fast_mixture.sample(5, max_memory=max_memory, start="prior")


def test_the_estimate_counts_every_kept_variable_and_the_logdensity():
    sizes = result_bytes({"a": ((3,), np.dtype("float64")), "k": ((5, 2), np.dtype("int8"))}, 4, 10)
    assert sizes == {"a": 40 * 24, "k": 40 * 10, "logdensity": 40 * 8}
    check_result_size(sizes, sum(sizes.values()), 4, 10)
    check_result_size(sizes, None, 4, 10)
    with pytest.raises(aemix.MemoryLimitError, match="a 960 B"):
        check_result_size(sizes, 100, 4, 10)


def test_the_scan_runner_allocates_the_narrow_store(fast_mixture):
    runner = ScanRunner.__new__(ScanRunner)
    runner.sampler, runner.keep = fast_mixture, fast_mixture._every
    runner.allocate(2, 5)
    assert {name: a.dtype for name, a in runner.draws.items()} == {
        "w": np.float64,
        "mu": np.float64,
        "z": np.int8,
        "twice": np.int64,
    }
