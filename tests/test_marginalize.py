import aesara.tensor as at
import numpy as np
import pytest
from aesara.graph.basic import Apply
from aesara.graph.op import Op
from aesara.tensor.random.op import RandomVariable

import aemix
from aemix.errors import MarginalizationError, VectorizationError
from aemix.marginalize import is_discrete, marginalize
from aemix.ops import MarginalMixtureRV
from aemix.vectorize import batch_node
from tests.helpers import seed_model


def discrete_rvs_left(model):
    absorbed = {inp for m in model.marginalizations for inp in m.node.inputs}
    return [
        node.default_output()
        for node in model.fgraph.apply_nodes
        if isinstance(node.op, RandomVariable)
        and is_discrete(node.default_output())
        and node.default_output() not in absorbed
    ]


def test_seed_model_is_marginalized_without_touching_the_users_graph():
    N_rv, I_rv, Y_rv = seed_model()
    model = marginalize([Y_rv])
    (m,) = model.marginalizations
    assert m.rule == "indexed_mixture" and m.discrete.name == "I"
    assert isinstance(model.fgraph.outputs[0].owner.op, MarginalMixtureRV)
    assert discrete_rvs_left(model) == []
    assert model.random_variables() == m.outputs
    # The user's graph is unchanged.
    assert Y_rv.owner.inputs[0] is N_rv
    assert model.original_to_marginal[Y_rv] is m.outputs[0]


def test_observed_index_is_not_marginalized():
    _, I_rv, Y_rv = seed_model()
    model = marginalize([Y_rv], observed={I_rv})
    assert model.marginalizations == []


def test_shared_index_is_not_marginalized_by_the_mixture_rule():
    srng = at.random.RandomStream(0)
    I_rv = srng.categorical(np.ones(2) / 2, name="I")
    A_rv = srng.normal(np.array([0.0, 5.0]), 1.0)[I_rv]
    B_rv = srng.normal(np.array([1.0, -1.0]), 1.0)[I_rv]
    # Y = X[I] with deterministic outputs A, B: I is not summed out by the mixture rule, and the
    # enumeration rule refuses because functions of I (not random variables) are outputs.
    with pytest.raises(MarginalizationError, match="'I'.*deterministic function"):
        marginalize([A_rv, B_rv])


def test_components_used_elsewhere_are_not_absorbed():
    N_rv, I_rv, Y_rv = seed_model()
    with pytest.raises(MarginalizationError, match="'I'.*deterministic function"):
        marginalize([Y_rv, N_rv])


def test_infinite_support_latent_without_an_unbounded_rule_is_an_error():
    from aemix.relations import RuleRegistry, registry

    rules = RuleRegistry()
    for rule in registry.rules():
        if rule.kind != "unbounded":
            rules.register(rule.name, rule.relation, kind=rule.kind)
    srng = at.random.RandomStream(0)
    K_rv = srng.poisson(3.0, name="K")
    Y_rv = srng.normal(K_rv, 1.0, name="Y")
    with pytest.raises(
        MarginalizationError, match="'K'.*infinite support.*no registered unbounded"
    ):
        marginalize([Y_rv], rules=rules)


def test_discrete_latent_without_finite_support_rule_is_an_error():
    srng = at.random.RandomStream(0)
    n = at.lscalar("n")
    K_rv = srng.integers(0, n, name="K")
    Y_rv = srng.normal(K_rv * 2.0, 1.0, name="Y")
    with pytest.raises(MarginalizationError, match="'K'.*no registered support rule"):
        marginalize([Y_rv])


# -- every model aemix refuses, with its typed error ------------------------------------------------


class _Unbatchable(Op):
    """Identity whose batching rule refuses (as an Op that cannot be mapped over values would)."""

    __props__ = ()

    def make_node(self, x):
        x = at.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = inputs[0]


@batch_node.register(_Unbatchable)
def _refuse(op, node, ctx, x):
    raise VectorizationError(op, "it has no batching rule")


def _unevaluable_dependents():
    srng = at.random.RandomStream(0)
    K_rv = srng.bernoulli(0.5, size=3, name="K")
    return [srng.normal(_Unbatchable()(K_rv * 1.0), 1.0, name="Y")], {}


def _over_budget():
    srng = at.random.RandomStream(0)
    K_rv = srng.bernoulli(0.5, size=14, name="K")
    # sum(K) couples every element: 2 ** 14 joint configurations.
    return [srng.normal(at.sum(K_rv), 1.0, name="Y")], {}


def _symbolic_bound():
    srng = at.random.RandomStream(0)
    K_rv = srng.integers(0, at.lscalar("n"), name="K")
    return [srng.normal(K_rv, 1.0, name="Y")], {}


def _deterministic_output():
    srng = at.random.RandomStream(0)
    K_rv = srng.bernoulli(0.5, name="K")
    return [K_rv * 2, srng.normal(K_rv, 1.0, name="Y")], {}


def _observed_through_an_index_vector():
    # One draw per component, read by three observations: they are not independent given I.
    srng = at.random.RandomStream(0)
    X_rv = srng.normal(np.array([-2.0, 2.0]), 1.0, name="X")
    I_rv = srng.categorical(np.array([0.5, 0.5]), size=3, name="I")
    Y = X_rv[I_rv]
    Y.name = "Y"
    return [Y], {Y: np.array([-1.0, 1.5, 2.5])}


BAD_MODELS = {
    "observed through an index vector": (
        _observed_through_an_index_vector,
        r"'I'.*observed Y is computed from it by indexing by an integer array \(x\[idx\]\)",
    ),
    "dependents aemix cannot evaluate": (_unevaluable_dependents, "'K'.*cannot evaluate"),
    "support over budget": (_over_budget, "'K'.*16384 evaluations.*budget of 10000"),
    "non-constant support bound": (_symbolic_bound, "'K'.*no registered support rule"),
}


def test_a_deterministic_output_is_refused_unless_derived():
    outputs, _ = _deterministic_output()
    with pytest.raises(MarginalizationError, match="'K'.*deterministic function"):
        marginalize(outputs)
    # As a derived quantity it is taken out of the graph; K is summed out through Y.
    model = marginalize(outputs, derived=True)
    assert model.derived == [outputs[0]]
    assert [m.discrete.name for m in model.marginalizations] == ["K"]
    assert [rv.name for rv in model.random_variables()] == ["Y"]


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_unsupported_models_raise_a_typed_error_naming_the_variable(case):
    import aemix

    make, message = BAD_MODELS[case]
    outputs, observed = make()
    with pytest.raises(MarginalizationError, match=message):
        aemix.build_sampler(outputs, observed=observed, mode="FAST_COMPILE")


def test_over_budget_can_warn_instead():
    outputs, _ = _over_budget()
    with pytest.warns(UserWarning, match="'K'.*budget"):
        model = marginalize(outputs, support_budget=1000, on_budget="warn")
    (m,) = model.marginalizations
    assert m.node.inputs[1].data.shape == (2**14, 14)


def test_a_vector_emission_over_a_chains_stacked_states_is_refused_with_what_to_write():
    # One observation reading every state jointly: 2^40 configurations, which no budget allows.
    srng = at.random.RandomStream(0)
    transition = at.as_tensor(np.array([[0.9, 0.1], [0.2, 0.8]]))
    mu = srng.normal(0.0, 3.0, size=2, name="mu")
    z = srng.categorical(np.array([0.5, 0.5]), name="z0")
    states = [z]
    for t in range(1, 40):
        z = srng.categorical(transition[z], name=f"z{t}")
        states.append(z)
    y = srng.normal(mu[at.stack(states)], 1.0, name="y")
    with pytest.raises(MarginalizationError, match="no budget allows it.*its own random variable"):
        aemix.build_sampler(y, {y: np.zeros(40)}, mode="FAST_COMPILE")
