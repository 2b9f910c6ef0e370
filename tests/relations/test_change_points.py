import aesara.tensor as at
import numpy as np
import pytest
from kanren import run, var

from aemix.ops import Cut
from aemix.relations import registry
from aemix.relations.change_points import change_pointo, time_index

srng = at.random.RandomStream(0)
tau_rv = srng.integers(0, 6, name="tau")


def cut_of(mask, discrete=tau_rv):
    q = var()
    return run(0, q, change_pointo(mask, discrete, q))


@pytest.mark.parametrize(
    "mask,cut",
    [
        (at.arange(6) < tau_rv, Cut(6, 0)),
        (at.arange(6) >= tau_rv, Cut(6, 0)),
        (tau_rv > at.arange(6), Cut(6, 0)),
        (tau_rv <= at.arange(6), Cut(6, 0)),
        (at.arange(6) <= tau_rv, Cut(6, 1)),
        (at.arange(6) > tau_rv, Cut(6, 1)),
        (tau_rv >= at.arange(6), Cut(6, 1)),
        (tau_rv < at.arange(6), Cut(6, 1)),
        # The index as a constant, and an index that starts at 3: t < tau - 3.
        (np.arange(6) < tau_rv, Cut(6, 0)),
        (at.arange(3, 9) < tau_rv, Cut(6, -3)),
    ],
)
def test_masks_and_their_cuts(mask, cut):
    assert cut_of(mask) == (cut,)
    # The regimes: the mask is constant at either value, and changes where the cut says.
    for d in range(-2, 9):
        got = _mask_at(mask, d)
        before = np.arange(6) < d + cut.shift
        first, second = _mask_at(mask, cut.all_first), _mask_at(mask, cut.all_second)
        assert np.all(first == first[0]) and np.all(second == second[0])
        np.testing.assert_array_equal(got, np.where(before, first, second))


def _mask_at(mask, d):
    from aesara.graph.basic import clone_replace

    return clone_replace(mask, {tau_rv: at.as_tensor(np.int64(d))}).eval()


def test_near_misses_do_not_match():
    x = srng.normal(0, 1, name="x")
    # Not a time index: a stride of 2, a variable, a matrix.
    assert cut_of(at.arange(0, 12, 2) < tau_rv) == ()
    assert cut_of(at.lvector("t") < tau_rv) == ()
    assert cut_of(np.arange(6)[None, :] + np.zeros((2, 1), dtype="int64") < tau_rv) == ()
    # Not a discrete scalar random variable, or not the one asked about.
    assert cut_of(at.arange(6) < x, x) == ()
    assert cut_of(at.arange(6) < srng.integers(0, 6, size=2)) == ()
    assert cut_of(at.arange(6) < srng.integers(0, 6)) == ()
    # Not a comparison with it.
    assert cut_of(at.eq(at.arange(6), tau_rv)) == ()
    assert cut_of(at.arange(6) < tau_rv + 1) == ()


def test_time_index():
    assert time_index(at.arange(4)) == (0, 4)
    assert time_index(at.arange(2, 7)) == (2, 5)
    assert time_index(at.as_tensor(np.arange(5, 8))) == (5, 3)
    assert time_index(at.arange(at.lscalar("n"))) is None
    assert time_index(at.as_tensor(np.array([0, 2, 3]))) is None


def test_registered_as_a_threshold_rule():
    assert registry["change_point"].kind == "threshold"
    assert registry["change_point"].relation is change_pointo
