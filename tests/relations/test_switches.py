import aesara.tensor as at
from aesara.graph.rewriting.unify import eval_if_etuple
from kanren import run, var

from aemix.ops import MarginalSwitchRV
from aemix.relations.switches import switch_mixtureo


def marginal_of(term):
    q = var()
    return [eval_if_etuple(r) for r in run(0, q, switch_mixtureo(term, q))]


def test_zero_inflated_counts():
    srng = at.random.RandomStream(0)
    B_rv = srng.bernoulli(0.3, size=4)
    X_rv = srng.poisson(2.0, size=4)
    (marginal,) = marginal_of(at.switch(B_rv, 0, X_rv))
    assert isinstance(marginal.owner.op, MarginalSwitchRV)
    assert marginal.owner.inputs[0] is B_rv and marginal.owner.inputs[2] is X_rv
    assert marginal.type.shape == (4,)


def test_two_random_branches_and_scalar_switch():
    srng = at.random.RandomStream(0)
    B_rv = srng.bernoulli(0.3)
    X_rv, Y_rv = srng.normal(0, 1, size=3), srng.normal(5, 1, size=3)
    (marginal,) = marginal_of(at.switch(B_rv, X_rv, Y_rv))
    assert marginal.owner.inputs == [B_rv, X_rv, Y_rv]


def test_near_misses_do_not_match():
    srng = at.random.RandomStream(0)
    X_rv = srng.poisson(2.0, size=4)
    # The condition is not a Bernoulli random variable.
    assert marginal_of(at.switch(srng.poisson(1.0, size=4) > 1, 0, X_rv)) == []
    assert marginal_of(at.switch(at.bvector("b"), 0, X_rv)) == []
    # A scalar branch shared by every element is not an elementwise component.
    B_rv = srng.bernoulli(0.3, size=4)
    assert marginal_of(at.switch(B_rv, srng.normal(0, 1), srng.normal(0, 1, size=4))) == []
    # Two constants: nothing random to mix.
    assert marginal_of(at.switch(B_rv, 0, 1)) == []


def test_a_point_mass_beside_a_density_is_a_hurdle():
    srng = at.random.RandomStream(0)
    B_rv, X_rv = srng.bernoulli(0.3, size=4), srng.normal(0, 1, size=4)
    (marginal,) = marginal_of(at.switch(B_rv, 0.0, X_rv))
    assert marginal.owner.inputs[0] is B_rv
