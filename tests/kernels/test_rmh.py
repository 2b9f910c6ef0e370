import aesara
import aesara.tensor as at
import numpy as np

from aemix.kernels import rmh


def compiled_step(logdensity_fn):
    x, lp = at.vector("x"), at.scalar("lp")
    eps, e = at.vector("eps"), at.scalar("e")
    step_size, scale = at.scalar("step_size"), at.vector("scale")
    state, info = rmh.step(rmh.RWNoise(eps, e), rmh.RWState(x, lp), logdensity_fn, step_size, scale)
    return aesara.function(
        [x, lp, eps, e, step_size, scale],
        [
            state.position,
            state.logdensity,
            info.is_accepted,
            info.acceptance_probability,
            info.proposal,
        ],
    )


def std_normal(x):
    return -0.5 * at.sum(x**2)


def test_proposal_is_position_plus_scaled_noise_and_uphill_moves_are_accepted():
    f = compiled_step(std_normal)
    pos, lp, acc, prob, prop = f([2.0, 0.0], -2.0, [-1.0, 0.5], 0.0, 0.5, [2.0, 1.0])
    np.testing.assert_allclose(prop, [1.0, 0.25])
    assert acc and prob == 1.0
    np.testing.assert_allclose(pos, prop)
    np.testing.assert_allclose(lp, -0.5 * (1.0 + 0.0625))


def test_downhill_move_accepted_exactly_when_exponential_exceeds_minus_log_ratio():
    f = compiled_step(std_normal)
    # log ratio of the move 0 -> 1 is -0.5.
    _, _, acc, prob, _ = f([0.0], 0.0, [1.0], 0.49, 1.0, [1.0])
    assert not acc and np.isclose(prob, np.exp(-0.5))
    pos, lp, acc, _, _ = f([0.0], 0.0, [1.0], 0.51, 1.0, [1.0])
    assert acc and pos[0] == 1.0


def test_proposal_with_undefined_density_is_rejected():
    f = compiled_step(lambda x: at.sum(at.log(x)))
    pos, lp, acc, prob, _ = f([1.0], 0.0, [-3.0], 100.0, 1.0, [1.0])
    assert not acc and prob == 0.0 and pos[0] == 1.0 and lp == 0.0


def test_draw_noise_shapes_and_distribution():
    normal, exponential = rmh.draw_noise(np.random.default_rng(0), 1000, 20, 3)
    assert normal.shape == (1000, 20, 3) and exponential.shape == (1000, 20)
    assert abs(normal.mean()) < 4 / np.sqrt(normal.size)
    assert abs(exponential.mean() - 1) < 4 / np.sqrt(exponential.size)


def test_a_matrix_scale_proposes_along_its_factor():
    x, lp = at.vector("x"), at.scalar("lp")
    eps, e = at.vector("eps"), at.scalar("e")
    step_size, factor = at.scalar("step_size"), at.matrix("factor")
    _, info = rmh.step(rmh.RWNoise(eps, e), rmh.RWState(x, lp), std_normal, step_size, factor)
    f = aesara.function([x, lp, eps, e, step_size, factor], info.proposal, on_unused_input="ignore")
    L = np.array([[2.0, 0.0], [1.5, 0.5]])
    noise = np.array([-1.0, 0.4])
    np.testing.assert_allclose(
        f([2.0, 0.0], -2.0, noise, 0.0, 0.5, L), [2.0, 0.0] + 0.5 * L @ noise
    )
