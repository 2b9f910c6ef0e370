import os

import aesara
import aesara.tensor as at
import arviz as az
import numpy as np
import pytest
import scipy.stats as st
from aesara.graph.basic import Apply
from aesara.link.c.op import COp
from scipy.special import logsumexp

import aemix
from aemix.errors import MarginalizationError, ModelError, ValuesError
from tests.helpers import (
    SEED_LOC,
    SEED_SCALE,
    SEED_WEIGHTS,
    change_point_posterior,
    every_variable,
    mixture_cdf,
    mixture_logpdf,
    mixture_moments,
    seed_model,
    stat_scale,
)


def test_seed_forward_samples():
    _, _, Y_rv = seed_model()
    f = aesara.function([], Y_rv)
    got = [float(f()) for _ in range(5)]
    np.testing.assert_allclose(
        got, [2.51645571, 0.16094803, 4.16173818, -0.75365736, 0.91897138], rtol=0, atol=1e-8
    )


def test_seed_sampler_names_and_marginalized(seed_sampler):
    assert seed_sampler.latent == ("Y",)
    assert seed_sampler.marginalized == ("I",)
    assert seed_sampler.observed == ()


def test_seed_logdensity_at_ten_is_the_exact_marginal(seed_sampler):
    got = seed_sampler.logdensity({"Y": 10.0})
    np.testing.assert_allclose(got, -5.35139934920337, rtol=0, atol=1e-10)
    # The seed text prints -6.961941398089025 for this quantity: its loop adds log(weights) to a
    # joint log-probability that already contains log P(I = i), counting the weights twice.
    lp = st.norm(SEED_LOC, SEED_SCALE).logpdf(10.0)
    np.testing.assert_allclose(
        logsumexp(2 * np.log(SEED_WEIGHTS) + lp), -6.961941398089025, atol=1e-12
    )
    np.testing.assert_allclose(logsumexp(np.log(SEED_WEIGHTS) + lp), got, atol=1e-12)


def test_logdensity_matches_scipy_at_many_points_including_tails(seed_sampler):
    ys = np.concatenate([np.linspace(-40, 40, 994), [-1e4, -1e3, -250.0, 250.0, 1e3, 1e4]])
    got = np.array([seed_sampler.logdensity({"Y": y}) for y in ys])
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, mixture_logpdf(ys), rtol=1e-12)


def test_logdensity_rejects_bad_values(seed_sampler):
    with pytest.raises(ValuesError, match="'Y'.*no value"):
        seed_sampler.logdensity({})
    with pytest.raises(ValuesError, match="'Z'.*not a latent"):
        seed_sampler.logdensity({"Y": 1.0, "Z": 2.0})
    with pytest.raises(ValuesError, match=r"'Y'.*shape \(2,\)"):
        seed_sampler.logdensity({"Y": [1.0, 2.0]})


def test_bad_outputs_and_observations_are_typed_errors():
    with pytest.raises(ModelError, match="expected an Aesara variable"):
        aemix.build_sampler(3.0)
    N_rv, I_rv, Y_rv = seed_model()
    with pytest.raises(ModelError, match="'I'.*must be integers"):
        aemix.build_sampler(Y_rv, observed={I_rv: 1.5})
    with pytest.raises(ModelError, match="'I'.*NaN"):
        aemix.build_sampler(Y_rv, observed={I_rv: np.nan})
    y_rv = at.random.RandomStream(0).normal(0.0, 1.0, name="y")
    with pytest.raises(ModelError, match="'y'.*no latent"):
        aemix.build_sampler({"y": y_rv}, observed={y_rv: 1.0})
    # (with Y observed, the seed's I is still latent: its posterior is drawn exactly)
    assert aemix.build_sampler({"Y": Y_rv}, observed={Y_rv: 1.0}).marginalized == ("I",)


def test_marginalization_failure_names_the_variable():
    srng = at.random.RandomStream(0)
    # (a Poisson latent was the example before unbounded counts were summed over a range)
    K_rv = srng.integers(0, at.lscalar("n"), name="K")
    with pytest.raises(MarginalizationError, match="'K'"):
        aemix.build_sampler(srng.normal(K_rv, 1.0))


def test_observed_index_leaves_the_components_latent():
    # With I given, Y = N[I] is a deterministic function of N: the random variables left are N.
    # (no random variable reads I, so its data say nothing about N: said)
    N_rv, I_rv, Y_rv = seed_model()
    with pytest.warns(aemix.ModelWarning, match="'I' is connected to no unobserved variable"):
        sampler = aemix.build_sampler(Y_rv, observed={I_rv: 2})
    assert sampler.marginalized == () and sampler.latent == ("N",)
    n = np.array([0.5, -1.0, 1.0, 2.0])
    np.testing.assert_allclose(
        sampler.logdensity({"N": n}),
        st.norm(SEED_LOC, SEED_SCALE).logpdf(n).sum() + np.log(SEED_WEIGHTS[2]),
        rtol=1e-12,
    )


def test_unnamed_output_takes_the_callers_identifier():
    _, _, mixture_rv = seed_model()
    assert aemix.build_sampler(mixture_rv).latent == ("mixture",)


def test_shapes_determinism_and_independent_chains(seed_sampler):
    a = seed_sampler.sample(40, n_chains=3, seed=7, warmup=60, start="prior")
    b = seed_sampler.sample(40, n_chains=3, seed=7, warmup=60, start="prior")
    c = seed_sampler.sample(40, n_chains=3, seed=8, warmup=60, start="prior")
    assert a.draws["Y"].shape == (3, 40) and a.draws["I"].shape == (3, 40)
    assert a.acceptance_rate.shape == (3,)
    for name in ("Y", "I"):
        np.testing.assert_array_equal(a.draws[name], b.draws[name])
    assert not np.array_equal(a.draws["Y"], c.draws["Y"])
    assert len({tuple(chain) for chain in a.draws["Y"]}) == 3
    assert a.conditional_probabilities["I"].shape == (3, 40, 4)
    np.testing.assert_allclose(a.conditional_probabilities["I"].sum(axis=-1), 1.0)


def test_fixed_step_size_is_used_as_given(seed_sampler):
    result = seed_sampler.sample(10, n_chains=2, seed=0, warmup=0, step_size=0.1, start="prior")
    assert result.step_size == 0.1
    assert np.all(np.abs(np.diff(result.draws["Y"], axis=1)) < 0.1 * 6)


def test_sample_argument_errors(seed_sampler):
    with pytest.raises(ValueError, match="n_samples"):
        seed_sampler.sample(0, start="prior")
    with pytest.raises(TypeError, match="n_chains"):
        seed_sampler.sample(10, n_chains=2.5, start="prior")
    with pytest.raises(ValueError, match="step_size"):
        seed_sampler.sample(10, step_size=-1.0, start="prior")


def test_recovered_index_probabilities_are_the_exact_conditionals(seed_sampler):
    result = seed_sampler.sample(20, n_chains=4, seed=3, warmup=20, start="prior")
    y = result.draws["Y"][..., None]
    log_joint = np.log(SEED_WEIGHTS) + st.norm(SEED_LOC, SEED_SCALE).logpdf(y)
    exact = np.exp(log_joint - logsumexp(log_joint, axis=-1, keepdims=True))
    np.testing.assert_allclose(result.conditional_probabilities["I"], exact, rtol=1e-10)


def test_inference_data_and_summary(seed_sampler):
    result = seed_sampler.sample(50, n_chains=2, seed=0, warmup=50, start="prior")
    idata = result.to_inference_data()
    assert isinstance(idata, az.InferenceData)
    assert idata.posterior["Y"].shape == (2, 50)
    assert "lp" in idata.sample_stats
    assert "r_hat" in result.summary(var_names=["Y"]).columns


@pytest.mark.slow
def test_seed_sampler_matches_the_exact_mixture(seed_sampler):
    """1000 chains after warm-up: the exact mixture CDF, mean and variance within Monte Carlo error."""
    n_chains = 1000
    n_samples = max(200, int(1000 * stat_scale()))
    result = seed_sampler.sample(n_samples, n_chains=n_chains, seed=2024, warmup=500, start="prior")
    y = result.draws["Y"]
    assert 0.25 < result.acceptance_rate.mean() < 0.6

    # The last draw of each chain: 1000 independent draws (chains are independent), so the KS
    # test's null distribution holds exactly if the chains have converged.
    ks = st.kstest(y[:, -1], mixture_cdf)
    assert ks.pvalue > 1e-3, ks

    # Pooled draws, thinned to about one draw per autocorrelation time.
    ess = float(az.ess(az.convert_to_dataset(y[:100]))["x"]) * n_chains / 100
    thin = max(1, int(np.ceil(y.size / ess)))
    ks_pooled = st.kstest(y[:, ::thin].ravel(), mixture_cdf)
    assert ks_pooled.pvalue > 1e-3, (ks_pooled, thin)

    mean, var = mixture_moments()
    # Monte Carlo standard errors from the effective sample size of the pooled draws.
    assert abs(y.mean() - mean) < 4 * np.sqrt(var / ess)
    centred = (y - mean) ** 2
    assert abs(centred.mean() - var) < 4 * centred.std() / np.sqrt(ess)

    # Recovered indices: marginally, I follows its prior weights.
    freq = np.bincount(result.draws["I"].ravel(), minlength=4) / result.draws["I"].size
    sd = np.sqrt(SEED_WEIGHTS * (1 - SEED_WEIGHTS) / ess)
    assert np.all(np.abs(freq - SEED_WEIGHTS) < 4 * sd), (freq, sd)


def test_explain_names_rules_and_variables(seed_sampler):
    text = seed_sampler.explain()
    assert "I ~ categorical (support size 4), rule 'indexed_mixture'" in text
    assert "Y = MarginalMixture(I; N)" in text
    assert "Y: shape ()" in text and "observed: none" in text


def test_thinning_keeps_every_kth_step(seed_sampler):
    full = seed_sampler.sample(12, n_chains=2, seed=5, warmup=0, step_size=1.0, start="prior")
    thinned = seed_sampler.sample(
        4, n_chains=2, seed=5, warmup=0, step_size=1.0, thin=3, start="prior"
    )
    # Same seed, same noise stream: the thinned chain is every third step of the full one.
    np.testing.assert_array_equal(thinned.draws["Y"], full.draws["Y"][:, 2::3])


def test_initial_values_are_used(seed_sampler):
    result = seed_sampler.sample(
        1, n_chains=3, seed=0, warmup=0, step_size=1e-9, initial_values={"Y": [1.0, 2.0, 3.0]}
    )
    np.testing.assert_allclose(result.draws["Y"][:, 0], [1.0, 2.0, 3.0], atol=1e-6)
    with pytest.raises(ValuesError, match="'Y'.*shape"):
        seed_sampler.sample(1, n_chains=3, initial_values={"Y": [1.0, 2.0]})


# -- sampling tests per rule (known answers; tolerances from Monte Carlo error) ----------------------


def last_draws(result, name):
    """One draw per chain (the last): independent draws when chains have converged."""
    return result.draws[name][:, -1]


def assert_frequencies(draws, probabilities):
    """Observed frequencies within 4 binomial standard errors of ``probabilities``."""
    n = len(draws)
    freq = np.array([np.mean(draws == k) for k in range(len(probabilities))])
    sd = np.sqrt(probabilities * (1 - probabilities) / n)
    assert np.all(np.abs(freq - probabilities) <= 4 * sd + 1e-12), (freq, probabilities)


@pytest.mark.slow
def test_switch_mixture_samples_its_marginal():
    srng = at.random.RandomStream(0)
    B_rv = srng.bernoulli(0.3, name="B")
    Y_rv = at.switch(B_rv, srng.normal(-3.0, 1.0), srng.normal(3.0, 1.5))
    sampler = aemix.build_sampler({"Y": Y_rv})
    assert sampler.marginalized == ("B",)
    result = sampler.sample(
        max(50, int(200 * stat_scale())), n_chains=1000, seed=11, warmup=500, start="prior"
    )
    cdf = lambda y: 0.3 * st.norm(-3, 1).cdf(y) + 0.7 * st.norm(3, 1.5).cdf(y)  # noqa: E731
    assert st.kstest(last_draws(result, "Y"), cdf).pvalue > 1e-3
    assert_frequencies(last_draws(result, "B"), np.array([0.7, 0.3]))


@pytest.mark.slow
def test_elementwise_enumeration_samples_its_marginal():
    srng = at.random.RandomStream(0)
    w = np.array([0.25, 0.75])
    mu = np.array([-2.0, 2.0])
    z_rv = srng.categorical(w, size=2, name="z")
    y_rv = srng.normal(at.as_tensor(mu)[z_rv], 1.0, name="y")
    sampler = aemix.build_sampler(y_rv)
    assert sampler.marginalized == ("z",) and sampler.latent == ("y",)
    result = sampler.sample(
        max(50, int(200 * stat_scale())),
        n_chains=1000,
        seed=12,
        warmup=500,
        start="prior",
        var_names=every_variable(sampler),
    )
    cdf = lambda y: np.sum(w * st.norm(mu, 1).cdf(np.asarray(y)[..., None]), axis=-1)  # noqa: E731
    for i in range(2):
        assert st.kstest(last_draws(result, "y")[:, i], cdf).pvalue > 1e-3
        assert_frequencies(last_draws(result, "z")[:, i], w)
    assert result.draws["z"].shape == result.draws["y"].shape
    assert result.conditional_probabilities["z"].shape == (*result.draws["y"].shape, 2)


@pytest.mark.slow
def test_change_point_posterior_is_recovered_exactly():
    counts = np.array([5, 3, 6, 4, 5, 7, 1, 0, 2, 1, 1, 0])
    alpha, beta = 2.0, 1.0
    srng = at.random.RandomStream(0)
    T = len(counts)
    tau_rv = srng.integers(0, T, name="tau")
    e_rv = srng.gamma(alpha, beta, name="e")
    l_rv = srng.gamma(alpha, beta, name="l")
    y_rv = srng.poisson(at.switch(at.arange(T) < tau_rv, e_rv, l_rv), name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: counts})
    result = sampler.sample(
        max(50, int(200 * stat_scale())), n_chains=1000, seed=13, warmup=1000, start="prior"
    )
    exact = change_point_posterior(counts, alpha, beta)
    assert_frequencies(last_draws(result, "tau"), exact)
    # The conditional probabilities, averaged over draws, estimate the same posterior.
    mean_probs = result.conditional_probabilities["tau"][:, -1].mean(axis=0)
    sd = np.sqrt(exact * (1 - exact) / 1000)
    assert np.all(np.abs(mean_probs - exact) <= 4 * sd + 1e-12), (mean_probs, exact)


def test_progress_bar_reports_warmup_and_sampling(seed_sampler, capsys):
    seed_sampler.sample(10, n_chains=2, seed=0, warmup=10, progressbar=True, start="prior")
    err = capsys.readouterr().err
    assert "sampling" in err and "20/20" in err
    seed_sampler.sample(10, n_chains=2, seed=0, warmup=10, progressbar=False, start="prior")
    assert capsys.readouterr().err == ""


def test_no_finite_initial_point_is_a_typed_error():
    srng = at.random.RandomStream(0)
    s_rv = srng.uniform(0.0, 1.0, name="s")
    y_rv = srng.uniform(0.0, s_rv, name="y")
    sampler = aemix.build_sampler(y_rv, observed={y_rv: 5.0}, mode="FAST_COMPILE")
    with pytest.raises(aemix.InitializationError, match="no prior draw with a finite"):
        sampler.sample(5, n_chains=2, seed=0, start="prior")


def test_a_linear_predictor_with_matmul_samples_the_conjugate_posterior():
    # `alpha + X @ beta` crashed sample() ("cannot vectorize dot").  Known noise: the posterior of
    # (alpha, beta) is normal, in closed form; means within 5 Monte Carlo standard errors.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    y = 0.5 + X @ np.array([1.0, -2.0]) + rng.normal(size=40) * 0.5
    srng = at.random.RandomStream(0)
    alpha_rv = srng.normal(0.0, 5.0, name="alpha")
    beta_rv = srng.normal(0.0, 5.0, size=2, name="beta")
    y_rv = srng.normal(alpha_rv + X @ beta_rv, 0.5, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: y})
    result = sampler.sample(1000, n_chains=16, seed=0, warmup=2000, start="prior")
    design = np.c_[np.ones(40), X]
    precision = design.T @ design / 0.25 + np.eye(3) / 25.0
    mean = np.linalg.solve(precision, design.T @ y / 0.25)
    draws = np.concatenate([result.draws["alpha"][..., None], result.draws["beta"]], axis=-1)
    for j in range(3):
        ess = float(az.ess(draws[..., j]))
        mcse = np.sqrt(np.linalg.inv(precision)[j, j] / ess)
        assert abs(draws[..., j].mean() - mean[j]) < 5 * mcse


@pytest.mark.parametrize("loop", ["fused", "scan"])
def test_a_correlated_posterior_is_followed_by_the_dense_proposal(loop):
    # Two coefficients of nearly collinear predictors: posterior correlation about -0.95.  The
    # adapted factor must follow it (a per-coordinate scale mixes slowly there); means within 5
    # Monte Carlo standard errors, the correlation of the draws within 0.05 of the exact one.
    rng = np.random.default_rng(3)
    x1 = rng.normal(size=60)
    X = np.c_[x1, x1 + 0.3 * rng.normal(size=60)]
    y = X @ np.array([1.0, -1.0]) + rng.normal(size=60)
    srng = at.random.RandomStream(0)
    beta_rv = srng.normal(0.0, 10.0, size=2, name="beta")
    y_rv = srng.normal(X @ beta_rv, 1.0, name="y")
    sampler = aemix.build_sampler(y_rv, {y_rv: y})
    assert sampler.dense
    result = sampler.sample(1000, n_chains=32, seed=1, warmup=1000, loop=loop, start="prior")
    assert result.scale.shape == (2, 2) and result.scale[0, 1] == 0.0
    precision = X.T @ X + np.eye(2) / 100.0
    cov = np.linalg.inv(precision)
    mean = cov @ X.T @ y
    draws = result.draws["beta"]
    for j in range(2):
        ess = float(az.ess(draws[..., j]))
        assert abs(draws[..., j].mean() - mean[j]) < 5 * np.sqrt(cov[j, j] / ess)
    exact_corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    flat = draws.reshape(-1, 2)
    assert abs(np.corrcoef(flat.T)[0, 1] - exact_corr) < 0.05


def test_constants_are_folded_in_python_with_the_same_values():
    """aemix's compile mode folds constant sub-graphs (a model's data) with the operations' Python
    implementations, which compile no C module; the function's values are unchanged."""
    import aesara

    from aemix.compilation import compile_mode

    data = np.linspace(0.1, 2.0, 7)
    x = at.dscalar("x")
    out = at.sum(at.log(at.as_tensor(data) * 3.0 + 1.0) * x) + at.exp(at.as_tensor(data)).sum()
    ours = aesara.function([x], out, mode=compile_mode())
    theirs = aesara.function([x], out)
    np.testing.assert_allclose(ours(0.7), theirs(0.7), rtol=1e-14)
    np.testing.assert_allclose(ours(0.7), np.sum(np.log(data * 3 + 1) * 0.7) + np.exp(data).sum())
    # The data's expressions were folded to constants: only the product with x is left.
    ops = {type(node.op).__name__ for node in ours.maker.fgraph.toposort()}
    assert "Elemwise" in ops and len(ours.maker.fgraph.apply_nodes) <= 3


def test_aemix_compiles_quickly_and_gives_the_flags_back():
    import threading

    from aemix.compilation import _quick_compiles

    before = aesara.config.gcc__cxxflags
    seen = []

    def compile_in_a_thread():
        with _quick_compiles():
            seen.append(aesara.config.gcc__cxxflags.split())

    with _quick_compiles():
        flags = aesara.config.gcc__cxxflags.split()
        assert "-g0" in flags
        thread = threading.Thread(target=compile_in_a_thread)
        thread.start()
        thread.join()
    assert seen and seen[0] == flags
    assert aesara.config.gcc__cxxflags == before


def test_the_precompiled_header_is_used_and_changes_no_value(tmp_path):
    """A module compiled with the precompiled header gives the values of one compiled without;
    GCC says (``-H``) it read the ``.gch``."""
    import subprocess

    from aemix.compilation import _without_header, precompiled_header, quick_compile_flags

    header = precompiled_header(aesara.config.gcc__cxxflags)
    if header is None:
        pytest.skip("no g++ that builds a precompiled header here")
    assert os.path.exists(f"{header}.gch")
    flags = quick_compile_flags(aesara.config.gcc__cxxflags)
    assert f"-include {header}" in flags

    # GCC reads the precompiled header for a module of Aesara's with the flags Aesara adds.
    from aesara.link.c.cmodule import GCC_compiler, std_include_dirs

    saved = aesara.config.gcc__cxxflags
    try:
        aesara.config.gcc__cxxflags = flags
        args = GCC_compiler.compile_args()
    finally:
        aesara.config.gcc__cxxflags = saved
    source = tmp_path / "mod.cpp"
    source.write_text(
        "#include <Python.h>\n#include <numpy/arrayobject.h>\nint f() { return 1; }\n"
    )
    command = [aesara.config.cxx, "-shared", "-g", "-O3", "-fno-math-errno"]
    command += ["-Wno-unused-label", "-Wno-unused-variable", "-Wno-write-strings", *args]
    command += [f"-I{d}" for d in std_include_dirs()]
    command += ["-fvisibility=hidden", "-H", "-o", str(tmp_path / "mod.so"), str(source)]
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert f"! {header}.gch" in run.stderr

    x = at.dvector("x")
    y = at.exp(x) * at.log1p(x) + at.sqrt(x)
    values = np.linspace(0.1, 3.0, 7)
    from aemix.compilation import function

    quick = function([x], y)
    saved = aesara.config.gcc__cxxflags
    try:
        # Another module, compiled as Aesara does: without the header and with -g (at the
        # optimization level of the tests' flags: -O3 may fuse a multiply-add where -O1 does not)
        plain_flags = [f for f in _without_header(saved).split() if f != "-g0"]
        assert plain_flags != saved.split()
        aesara.config.gcc__cxxflags = " ".join(plain_flags)
        plain = aesara.function([x], y)
    finally:
        aesara.config.gcc__cxxflags = saved
    np.testing.assert_array_equal(quick(values), plain(values))


class _Marked(COp):
    """x + 1 in Python, x + 2 in C."""

    __props__ = ()

    def make_node(self, x):
        x = at.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = np.asarray(inputs[0] + 1.0)

    def c_code(self, node, name, inames, onames, sub):
        (x,), (z,) = inames, onames
        return f"""
        Py_XDECREF({z});
        {z} = (PyArrayObject *)PyArray_NewCopy({x}, NPY_ANYORDER);
        *(double *)PyArray_DATA({z}) += 2.0;
        """

    def c_code_cache_version(self):
        return (1,)


def test_aesaras_own_constant_folding_runs_in_python_while_aemix_compiles():
    """Aesara's ``constant_folding`` (used directly by scan's rewrites and ``ShapeFeature``)
    evaluates a folded node with its Python implementation while aemix compiles, and the
    state before comes back after.  An Op whose C code gives another value than its Python
    code tells the two apart."""
    from aesara.graph.fg import FunctionGraph
    from aesara.tensor.rewriting.basic import constant_folding

    from aemix import compilation

    def folded():
        out = _Marked()(at.constant(np.float64(1.0)))
        fgraph = FunctionGraph(outputs=[out], clone=False)
        (value,) = constant_folding.transform(fgraph, out.owner)
        return float(value.data)

    before = compilation.fold_constants_in_python(False)
    try:
        assert folded() == 3.0  # (C)
        with compilation._quick_compiles():
            assert folded() == 2.0  # (Python)
        assert folded() == 3.0
        compilation.fold_constants_in_python(True)
        with compilation._quick_compiles():
            assert folded() == 2.0
        assert folded() == 2.0
    finally:
        compilation.fold_constants_in_python(before)


def test_scan_shapes_are_aesaras_without_the_inner_graph():
    """`aemix.compilation._scan_shapes` (``Scan.infer_shape``) gives the shapes Aesara's own
    inference gives, for the kinds of loop outputs: carried states (one and several taps),
    outputs collected per step with static and unknown trailing axes, a shared variable's
    update, and a loop that stops early (``until``)."""
    from aesara.scan.op import Scan
    from aesara.tensor.rewriting.shape import ShapeFeature

    from aemix.compilation import _scan_shapes

    x = at.matrix("x")
    v = at.vector("v")
    n = at.iscalar("n")
    shared = aesara.shared(np.zeros(3), name="s")

    def step(x_prev2, x_prev, v):
        collected = at.outer(v, x_prev[0])  # (len(v), columns of x): unknown trailing axes
        fixed = at.zeros((2, 3)) + x_prev.sum()  # static trailing axes
        return [x_prev + x_prev2, collected, fixed], {shared: shared + 1.0}

    outs, updates = aesara.scan(
        step,
        outputs_info=[dict(initial=x, taps=[-2, -1]), None, None],
        non_sequences=[v],
        n_steps=n,
    )
    from aesara.scan.utils import until

    count, _ = aesara.scan(
        lambda c: (c + 1, until(c > 5)), outputs_info=[at.constant(0.0)], n_steps=10
    )
    graphs = [*outs, *updates.values()]
    nodes = {
        g.owner
        for g in aesara.graph.basic.ancestors(graphs + [count])
        if g.owner is not None and isinstance(g.owner.op, Scan)
    }
    assert len(nodes) == 2
    values = {x: np.ones((4, 5)), v: np.arange(3.0), n: 6}
    for node in nodes:
        fgraph = aesara.graph.fg.FunctionGraph(outputs=list(node.outputs), clone=False)
        feature = ShapeFeature()
        fgraph.attach_feature(feature)
        input_shapes = [feature.shape_of[i] for i in node.inputs]
        ours = _scan_shapes(node.op, fgraph, node, input_shapes)
        theirs = Scan._aemix_infer_shape(node.op, fgraph, node, input_shapes)
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert (a is None) == (b is None)
            if a is None:
                continue
            a, b = at.as_tensor(list(a)), at.as_tensor(list(b))
            inputs = [i for i in (x, v, n) if i in set(aesara.graph.basic.graph_inputs([a, b]))]
            got_a, got_b = aesara.function(inputs, [a, b])(*[values[i] for i in inputs])
            np.testing.assert_array_equal(got_a, got_b)
