import aesara
import aesara.tensor as at
import numpy as np
import scipy.stats as st
from aeppl import joint_logprob
from scipy.special import logsumexp as np_logsumexp

from aemix.marginalize import marginalize
from aemix.ops import logsumexp
from tests.helpers import SEED_LOC, SEED_SCALE, SEED_WEIGHTS, mixture_logpdf, seed_model


def marginal_logpdf_fn(outputs, value_rv):
    model = marginalize(outputs)
    marginal = model.original_to_marginal[value_rv]
    logp, (y_vv,) = joint_logprob(marginal)
    return aesara.function([y_vv], logp)


def test_logsumexp_is_stable_and_exact():
    x = at.matrix("x")
    f = aesara.function([x], logsumexp(x, axis=1))
    values = np.array([[1000.0, 1000.0], [-1000.0, -1001.0], [-np.inf, -np.inf], [-np.inf, 0.0]])
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(f(values), np_logsumexp(values, axis=1))


def test_seed_joint_logprob_matches_the_seed_text():
    _, I_rv, Y_rv = seed_model()
    logp, (y_vv, i_vv) = joint_logprob(Y_rv, I_rv)
    assert np.isclose(logp.eval({y_vv: 10.0, i_vv: 3}), -6.452221131239579, rtol=0, atol=1e-12)


def test_vector_mixture_density_matches_scipy_including_far_tails():
    _, _, Y_rv = seed_model()
    f = marginal_logpdf_fn([Y_rv], Y_rv)
    ys = np.concatenate(
        [np.linspace(-50, 50, 990), [-1e3, -300, 300, 1e3, 1e4, -1e4, 0, 3.2, 2.5, -2]]
    )
    got = np.array([f(y) for y in ys])
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, mixture_logpdf(ys), rtol=1e-12, atol=1e-12)


def test_stacked_mixture_of_different_families_matches_scipy():
    srng = at.random.RandomStream(0)
    comps = [srng.normal(1.0, 2.0), srng.gamma(2.0, 4.0), srng.exponential(0.5)]
    w = np.array([0.5, 0.3, 0.2])
    I_rv = srng.categorical(w)
    Y_rv = at.stack(comps)[I_rv]
    f = marginal_logpdf_fn([Y_rv], Y_rv)
    for y in [-3.0, 0.5, 2.0, 40.0]:
        with np.errstate(divide="ignore"):
            ref = np_logsumexp(
                np.log(w)
                + np.array(
                    [
                        st.norm(1, 2).logpdf(y),
                        st.gamma(2.0, scale=1 / 4.0).logpdf(y),
                        st.expon(scale=0.5).logpdf(y),
                    ]
                )
            )
        np.testing.assert_allclose(f(y), ref, rtol=1e-12)


def test_seed_marginal_at_ten():
    _, _, Y_rv = seed_model()
    f = marginal_logpdf_fn([Y_rv], Y_rv)
    exact = np_logsumexp(np.log(SEED_WEIGHTS) + st.norm(SEED_LOC, SEED_SCALE).logpdf(10.0))
    np.testing.assert_allclose(f(10.0), exact, rtol=0, atol=1e-12)
