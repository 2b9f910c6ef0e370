"""Random small models for the adversarial suite, written twice: as an Aesara graph the way users
write models, and as plain NumPy/scipy densities for brute-force enumeration.

A `ModelSpec` holds discrete latents (`Discrete`), the continuous latents they feed (``mu``, a vector
``normal(0, 3)``; ``theta``, a scalar ``normal(0, 2)``) and children (`Child`) that read the discrete
variables through one of the `PATTERNS`.  `ModelSpec.build` returns the Aesara graph;
`ModelSpec.log_joint` is the joint log-probability of one configuration of the discrete variables,
from scipy densities only (no aemix, no aeppl), and `ModelSpec.enumerate` sums it over every
configuration with `itertools.product`.  A child's mean is one expression written for both
libraries (``lib.switch`` is ``np.where`` or ``at.switch``, ``lib.const`` wraps a constant), so the
model the oracle scores is the model aemix is given.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from types import SimpleNamespace

import aesara.tensor as at
import numpy as np
import scipy.stats as st
from hypothesis import strategies as hst
from scipy.special import logsumexp

NP = SimpleNamespace(switch=np.where, const=np.asarray, expand_dims=np.expand_dims)
AT = SimpleNamespace(switch=at.switch, const=at.as_tensor, expand_dims=at.expand_dims)

MU_SD, THETA_SD = 3.0, 2.0


@dataclass
class Discrete:
    """A discrete latent: ``kind`` is bernoulli, categorical, integers, binomial or categorical_of.

    ``categorical_of`` is ``categorical(P[parent])``: a discrete child of the discrete ``parent``,
    with ``weights`` the matrix ``P`` (one row per value of the parent).
    """

    name: str
    kind: str
    size: int | None = None
    p: float = 0.5
    weights: np.ndarray | None = None
    low: int = 0
    high: int = 2
    n: int = 1
    parent: str | None = None

    @property
    def support(self) -> tuple[int, ...]:
        if self.kind == "bernoulli":
            return (0, 1)
        if self.kind in ("categorical", "categorical_of"):
            return tuple(range(self.weights.shape[-1]))
        if self.kind == "integers":
            return tuple(range(self.low, self.high))
        return tuple(range(self.n + 1))

    @property
    def shape(self) -> tuple[int, ...]:
        return () if self.size is None else (self.size,)

    @property
    def n_configurations(self) -> int:
        return len(self.support) ** int(np.prod(self.shape))

    def build(self, srng, env):
        size = self.size
        if self.kind == "bernoulli":
            return srng.bernoulli(self.p, size=size, name=self.name)
        if self.kind == "categorical":
            return srng.categorical(self.weights, size=size, name=self.name)
        if self.kind == "integers":
            return srng.integers(self.low, self.high, size=size, name=self.name)
        if self.kind == "binomial":
            return srng.binomial(self.n, self.p, size=size, name=self.name)
        # The parent's shape comes through the rows of P[parent].
        return srng.categorical(at.as_tensor(self.weights)[env[self.parent]], name=self.name)

    def logpmf(self, value, env) -> float:
        value = np.asarray(value)
        if self.kind == "bernoulli":
            return st.bernoulli.logpmf(value, self.p).sum()
        if self.kind == "categorical":
            return np.log(self.weights[value]).sum()
        if self.kind == "integers":
            return -np.log(self.high - self.low) * value.size
        if self.kind == "binomial":
            return st.binom.logpmf(value, self.n, self.p).sum()
        return np.log(self.weights[env[self.parent], value]).sum()


def _mean_index(e, lib, c):
    return e["mu"][e[c.reads[0]]]


def _mean_index_reversed(e, lib, c):
    return e["mu"][e[c.reads[0]]][::-1]


def _mean_sum(e, lib, c):
    return e["theta"] + e[c.reads[0]].sum()


def _mean_switch(e, lib, c):
    return lib.switch(e[c.reads[0]], e["theta"], c.const[0])


def _mean_offset(e, lib, c):
    return e["theta"] + lib.const(c.const)[e[c.reads[0]]]


def _mean_rows(e, lib, c):
    return e["mu"][e[c.reads[0]]][:, None] + lib.const(np.array([0.0, 1.5]))


def _mean_rows_expanded(e, lib, c):
    return lib.expand_dims(e["mu"][e[c.reads[0]]], 1) + lib.const(np.array([0.0, 1.5]))


def _mean_two(e, lib, c):
    return e["mu"][e[c.reads[0]]] + lib.const(c.const)[e[c.reads[1]]]


def _mean_latent(e, lib, c):
    return lib.const(c.const)[e[c.reads[0]]]


def _sd_latent(e, lib, c):
    return lib.const(c.scales)[e[c.reads[0]]]


#: How a child reads the discrete variables: its mean as a function of the model's values.
PATTERNS = {
    "index": "mu[z]",
    "index_reversed": "mu[z][::-1]",
    "sum": "theta + z.sum()",
    "switch": "switch(z, theta, c0)",
    "offset": "theta + c[z]",
    "two": "mu[z1] + c[z2]",
    "rows": "mu[z][:, None] + [0, 1.5]: row i reads z_i",
    "rows_expanded": "expand_dims(mu[z], 1) + [0, 1.5]: rows, the axis added by a reshape",
    "square": "normal(mu[z], sd, size=(n, n)): broadcast from the right, element (i, j) reads z_j",
    "wide": "normal(mu[z], sd, size=(2, n)): column j reads z_j",
    "latent": "x ~ normal(c[z], s[z]) latent, y ~ normal(x, 1) observed",
    "mixture": "y = N[z], N ~ normal(theta + c, s) (an indexed mixture of random variables)",
    "row_mixture": "y = N[z], N ~ normal((theta + c)[:, None] + [0, 1.5], s[:, None]): one z "
    "picks a whole row",
    "column_mixture": "y = N[:, z], N the transpose of row_mixture's: one z picks a column",
    "stacked_mixture": "y = stack([N_0, ..., N_k])[z], the rows of row_mixture drawn apart",
}
_MEANS = {
    "index": _mean_index,
    "index_reversed": _mean_index_reversed,
    "sum": _mean_sum,
    "switch": _mean_switch,
    "offset": _mean_offset,
    "two": _mean_two,
    "rows": _mean_rows,
    "rows_expanded": _mean_rows_expanded,
    "square": _mean_index,
    "wide": _mean_index,
    "latent": _mean_latent,
    "mixture": _mean_offset,
    "row_mixture": lambda e, lib, c: _mean_offset(e, lib, c)[..., None] + lib.const(ROW_OFFSETS),
    "column_mixture": lambda e, lib, c: _mean_offset(e, lib, c)[..., None] + lib.const(ROW_OFFSETS),
    "stacked_mixture": lambda e, lib, c: (
        _mean_offset(e, lib, c)[..., None] + lib.const(ROW_OFFSETS)
    ),
}

#: The columns of a row mixture's components.
ROW_OFFSETS = np.array([0.0, 1.5])


@dataclass
class Child:
    """A random variable that reads the discrete variables ``reads`` through ``pattern``.

    Observed ``normal(mean, sd)`` with data ``data``, except ``latent`` (a latent ``x`` named
    ``name`` with an observed grandchild ``name + "_y" ~ normal(x, 1)`` holding ``data``) and
    ``mixture`` (``N[z]`` with ``N ~ normal(theta + const, scales)``, observed).
    """

    name: str
    pattern: str
    reads: tuple[str, ...]
    sd: float = 1.0
    data: np.ndarray | None = None
    const: np.ndarray = field(default_factory=lambda: np.zeros(1))
    scales: np.ndarray = field(default_factory=lambda: np.ones(1))

    def mean(self, env, lib):
        return _MEANS[self.pattern](env, lib, self)


@dataclass
class ModelSpec:
    discretes: list[Discrete]
    children: list[Child]
    mu_length: int = 0
    uses_theta: bool = False

    # -- the model as users write it -------------------------------------------------------------

    def build(self, seed: int = 0):
        """``(outputs, observed, rvs)``: the Aesara graph, its data, every random variable by name."""
        srng = at.random.RandomStream(seed)
        env = {}
        for d in self.discretes:
            env[d.name] = d.build(srng, env)
        if self.mu_length:
            env["mu"] = srng.normal(0.0, MU_SD, size=self.mu_length, name="mu")
        if self.uses_theta:
            env["theta"] = srng.normal(0.0, THETA_SD, name="theta")
        rvs = dict(env)
        outputs, observed = [], {}
        for c in self.children:
            if c.pattern == "latent":
                x = srng.normal(c.mean(env, AT), _sd_latent(env, AT, c), name=c.name)
                y = srng.normal(x, 1.0, name=c.name + "_y")
                rvs[c.name], rvs[c.name + "_y"] = x, y
            elif "mixture" in c.pattern:
                if c.pattern == "mixture":
                    loc, scale = env["theta"] + c.const, c.scales
                else:
                    loc = (env["theta"] + c.const)[:, None] + ROW_OFFSETS
                    scale = c.scales[:, None]
                z = env[c.reads[0]]
                if c.pattern == "stacked_mixture":
                    rows = [
                        srng.normal(loc[k], scale[k], name=f"{c.name}_N{k}")
                        for k in range(len(c.const))
                    ]
                    y = at.stack(rows)[z]
                elif c.pattern == "column_mixture":
                    y = srng.normal(loc.T, scale.T, size=loc.T.shape, name=c.name + "_N")[:, z]
                else:
                    y = srng.normal(loc, scale, size=np.shape(loc), name=c.name + "_N")[z]
                y.name = c.name
                rvs[c.name] = y
            else:
                size = np.shape(c.data) if c.pattern in ("square", "wide") else None
                y = srng.normal(c.mean(env, AT), c.sd, size=size, name=c.name)
                rvs[c.name] = y
            outputs.append(y)
            observed[y] = c.data
        return outputs, observed, rvs

    @property
    def latent_shapes(self) -> dict[str, tuple[int, ...]]:
        """The continuous latents aemix should sample, with their shapes."""
        shapes = {}
        if self.mu_length:
            shapes["mu"] = (self.mu_length,)
        if self.uses_theta:
            shapes["theta"] = ()
        for c in self.children:
            if c.pattern == "latent":
                shapes[c.name] = np.shape(c.data)
        return shapes

    # -- the oracle: scipy densities, every configuration ----------------------------------------

    def log_joint(self, config: dict, values: dict) -> float:
        """log p(discrete = config, continuous = values, data), from scipy densities only."""
        env = {k: np.asarray(v) for k, v in {**config, **values}.items()}
        total = 0.0
        for d in self.discretes:
            total += d.logpmf(env[d.name], env)
        if self.mu_length:
            total += st.norm.logpdf(env["mu"], 0.0, MU_SD).sum()
        if self.uses_theta:
            total += st.norm.logpdf(env["theta"], 0.0, THETA_SD)
        for c in self.children:
            if c.pattern == "latent":
                x = env[c.name]
                total += st.norm.logpdf(x, c.mean(env, NP), _sd_latent(env, NP, c)).sum()
                total += st.norm.logpdf(c.data, x, 1.0).sum()
            elif "mixture" in c.pattern:
                total += st.norm.logpdf(c.data, c.mean(env, NP), _sd_latent(env, NP, c)).sum()
            else:
                total += st.norm.logpdf(c.data, c.mean(env, NP), c.sd).sum()
        return float(total)

    def configurations(self):
        """Every joint configuration of the discrete variables, ``name -> array``."""
        per_variable = [
            [
                np.array(v, dtype=np.int64).reshape(d.shape)
                for v in itertools.product(d.support, repeat=int(np.prod(d.shape)))
            ]
            for d in self.discretes
        ]
        for combo in itertools.product(*per_variable):
            yield dict(zip((d.name for d in self.discretes), combo))

    def enumerate(self, values: dict) -> tuple[list[dict], np.ndarray]:
        configs = list(self.configurations())
        return configs, np.array([self.log_joint(c, values) for c in configs])

    def logdensity(self, values: dict) -> float:
        """The exact marginal log-density: log of the sum of exp(log_joint) over configurations."""
        return float(logsumexp(self.enumerate(values)[1]))

    def posterior(
        self, name: str, values: dict, joint: bool, given: dict | None = None
    ) -> np.ndarray:
        """P(name | continuous values, data, ``given`` discrete values), the other discrete
        variables summed out.

        ``joint``: over ``name``'s joint configurations in ``itertools.product(support, repeat=n)``
        order, shape ``(K ** n,)``; else per element, shape ``(*shape, K)``.
        """
        d = next(d for d in self.discretes if d.name == name)
        configs, logp = self.enumerate(values)
        if given:
            keep = [all(np.array_equal(c[g], v) for g, v in given.items()) for c in configs]
            configs = [c for c, k in zip(configs, keep) if k]
            logp = np.asarray(logp)[np.array(keep)]
        probs = np.exp(logp - logsumexp(logp))
        support = np.array(d.support)
        if joint:
            order = {
                tuple(v): i
                for i, v in enumerate(itertools.product(d.support, repeat=int(np.prod(d.shape))))
            }
            out = np.zeros(len(order))
            for c, p in zip(configs, probs):
                out[order[tuple(np.ravel(c[name]))]] += p
            return out
        out = np.zeros((*d.shape, len(support)))
        for c, p in zip(configs, probs):
            out += p * (c[name][..., None] == support)
        return out

    def describe(self) -> str:
        lines = [
            f"{d.name} ~ {d.kind}(size={d.size}, p={d.p}, weights={d.weights}, "
            f"low={d.low}, high={d.high}, n={d.n}, parent={d.parent})"
            for d in self.discretes
        ]
        lines += [
            f"{c.name}: {PATTERNS[c.pattern]} reads={c.reads} sd={c.sd} const={c.const} "
            f"scales={c.scales} data={c.data}"
            for c in self.children
        ]
        return "\n".join(lines)


# -- hypothesis strategies ----------------------------------------------------------------------

_probability = hst.floats(0.1, 0.9)
_location = hst.floats(-4.0, 4.0)
_scale = hst.floats(0.5, 2.0)
MAX_CONFIGURATIONS = 200


@hst.composite
def _weights(draw, k: int) -> np.ndarray:
    w = np.array(draw(hst.lists(hst.floats(0.1, 1.0), min_size=k, max_size=k)))
    return w / w.sum()


@hst.composite
def discretes(draw, name: str, earlier: list[Discrete]) -> Discrete:
    kinds = ["bernoulli", "categorical", "integers", "binomial"]
    parents = [d for d in earlier if d.kind != "categorical_of" and d.support[0] == 0]
    if parents:
        kinds.append("categorical_of")
    kind = draw(hst.sampled_from(kinds))
    size = draw(hst.sampled_from([None, 2, 3]))
    if kind == "categorical_of":
        parent = draw(hst.sampled_from(parents))
        k = draw(hst.integers(2, 3))
        rows = [draw(_weights(k)) for _ in range(max(parent.support) + 1)]
        return Discrete(name, kind, parent.size, weights=np.array(rows), parent=parent.name)
    if kind == "categorical":
        return Discrete(name, kind, size, weights=draw(_weights(draw(hst.integers(2, 3)))))
    if kind == "integers":
        low = draw(hst.integers(0, 1))
        return Discrete(name, kind, size, low=low, high=low + draw(hst.integers(2, 3)))
    if kind == "binomial":
        return Discrete(name, kind, size, n=draw(hst.integers(1, 2)), p=draw(_probability))
    return Discrete(name, kind, size, p=draw(_probability))


def _data(draw, shape) -> np.ndarray:
    n = int(np.prod(shape))
    return np.array(draw(hst.lists(_location, min_size=n, max_size=n))).reshape(shape)


@hst.composite
def children(draw, name: str, reads: list[Discrete], private: bool) -> Child:
    """A child of ``reads[0]`` (and ``reads[1]`` for ``two``); ``private``: nothing else reads it."""
    z = reads[0]
    k = max(z.support) + 1
    if len(reads) == 2:
        pattern = "two"
    else:
        patterns = ["index", "sum", "offset", "latent"]
        if z.size is not None:
            patterns += ["index_reversed", "rows", "rows_expanded", "square", "wide"]
        if z.kind == "bernoulli":
            patterns.append("switch")
        # aemix's indexed-mixture rule takes categorical indices (others are a typed refusal).
        if private and z.size is None and z.kind == "categorical":
            patterns += ["mixture", "row_mixture", "column_mixture", "stacked_mixture"]
        pattern = draw(hst.sampled_from(patterns))
    const = np.array(draw(hst.lists(_location, min_size=k, max_size=k)))
    scales = np.array(draw(hst.lists(_scale, min_size=k, max_size=k)))
    if pattern == "two":
        shape = np.broadcast_shapes(reads[0].shape, reads[1].shape)
        k2 = max(reads[1].support) + 1
        const = np.array(draw(hst.lists(_location, min_size=k2, max_size=k2)))
    elif pattern == "sum":
        shape = ()
    elif pattern in ("rows", "rows_expanded"):
        shape = (*z.shape, 2)
    elif pattern == "square":
        shape = (*z.shape, *z.shape)
    elif pattern == "wide":
        shape = (2, *z.shape)
    elif pattern in ("row_mixture", "column_mixture", "stacked_mixture"):
        shape = ROW_OFFSETS.shape
    else:
        shape = z.shape
    return Child(
        name,
        pattern,
        tuple(r.name for r in reads),
        sd=draw(_scale),
        data=_data(draw, shape),
        const=const,
        scales=scales,
    )


@hst.composite
def models(draw, max_discrete: int = 3) -> ModelSpec:
    """A random small model: 1-3 discrete latents, each read by a child (or a discrete child)."""
    ds: list[Discrete] = []
    total = 1
    for j in range(draw(hst.integers(1, max_discrete))):
        d = draw(discretes(f"z{j}", ds))
        if d.kind != "categorical_of" and total * d.n_configurations > MAX_CONFIGURATIONS:
            d.size = None
        if total * d.n_configurations > MAX_CONFIGURATIONS:
            break
        total *= d.n_configurations
        ds.append(d)
    parents = {d.parent for d in ds if d.parent}
    extra_two = len(ds) >= 2 and draw(hst.booleans())
    pair = None
    if extra_two:
        # Two discrete latents whose shapes broadcast, read by one child.
        pairs = [
            (a, b)
            for a, b in itertools.permutations(ds, 2)
            if a.shape == b.shape or () in (a.shape, b.shape)
        ]
        pair = draw(hst.sampled_from(pairs)) if pairs else None
    cs: list[Child] = []
    for d in ds:
        if d.name in parents and draw(hst.booleans()):
            continue  # its discrete child is its only dependent
        private = d.name not in parents and (pair is None or d not in pair)
        cs.append(draw(children(f"y{len(cs)}", [d], private)))
    if pair is not None:
        cs.append(draw(children(f"y{len(cs)}", list(pair), False)))
    # Two children of the same variable, now and then.
    sharable = [d for d in ds if not any("mixture" in c.pattern and d.name in c.reads for c in cs)]
    if len(cs) < 3 and sharable and draw(hst.booleans()):
        d = draw(hst.sampled_from(sharable))
        cs.append(draw(children(f"y{len(cs)}", [d], False)))
    # The mixture pattern needs its discrete variable to itself.
    for c in cs:
        if "mixture" in c.pattern and sum(c.reads[0] in o.reads for o in cs) > 1:
            c.pattern = "index"
    mu_length = max(
        [
            max(d.support) + 1
            for c in cs
            if c.pattern
            in ("index", "index_reversed", "two", "rows", "rows_expanded", "square", "wide")
            for d in ds
            if d.name == c.reads[0]
        ],
        default=0,
    )
    uses_theta = any(c.pattern in ("sum", "switch", "offset") or "mixture" in c.pattern for c in cs)
    return ModelSpec(ds, cs, mu_length, uses_theta)


def random_values(spec: ModelSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A random point of the continuous latents (near where the data put them)."""
    return {name: rng.normal(0.0, 2.0, shape) for name, shape in spec.latent_shapes.items()}
