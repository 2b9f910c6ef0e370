"""The benchmark models in NumPyro, sampled by NUTS with the discrete latents enumerated.

Run by `run.py` in NumPyro's own virtual environment (see README.md), one model per process::

    python numpyro_models.py --model gauss_mix --data data.json

and prints one JSON object on stdout: ``build_s`` (JIT compilation: the durations JAX reports
through `jax.monitoring` for tracing, lowering and compiling, summed), ``sample_s`` (the run's wall
time less that, warm-up included), ``draws`` (``name -> (chains, draws, *shape)`` nested lists),
``settings``, ``versions`` and ``error`` (a message, or null).  4 chains x (1000 warm-up + 1000
draws), run one after another (``chain_method="sequential"``).  The compilation is not done once
for all: a second `MCMC.run` in the same process compiled again (most of its time), and so does
each sequential chain, so a warm second run is not a measure of sampling alone here.

The discrete latents (``z`` in gauss_mix, ``tau`` in coal_mining) are sites marked
``infer={"enumerate": "parallel"}``: NumPyro sums them out (through funsor) in the potential that
NUTS differentiates.  The seed mixture is written with its marginal density
(``MixtureSameFamily``), as the benchmark asks of the peers.

Ordered locations in gauss_mix: ``mu`` is an ``ImproperUniform`` site on
``constraints.ordered_vector`` (sampled through NumPyro's ``OrderedTransform``) plus a factor of
the Normal(0, 2) log-density, i.e. the prior restricted to increasing values, as Stan's
``ordered[2] mu; mu ~ normal(0, 2)``.  A ``TransformedDistribution`` of a Normal base through
``OrderedTransform`` would be another prior (the cumulative construction), so it is not used.
"""

from __future__ import annotations

import time

import specs

CHAIN_METHOD = "sequential"


def models():
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    def seed_mixture(data):
        mixing = dist.Categorical(probs=jnp.array(specs.WEIGHTS))
        components = dist.Normal(jnp.array(specs.LOC), jnp.array(specs.SCALE))
        numpyro.sample("Y", dist.MixtureSameFamily(mixing, components))

    def eight_schools(data):
        y, sigma = jnp.array(data["y"]), jnp.array(data["sigma"])
        mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
        tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
        with numpyro.plate("schools", len(data["y"])):
            theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
            numpyro.sample("y", dist.Normal(mu + tau * theta_tilde, sigma), obs=y)

    def blr(data):
        X, y = jnp.array(data["X"]), jnp.array(data["y"])
        beta = numpyro.sample("beta", dist.Normal(0.0, 10.0).expand([X.shape[1]]).to_event(1))
        sigma = numpyro.sample("sigma", dist.HalfNormal(10.0))
        numpyro.sample("y", dist.Normal(X @ beta, sigma), obs=y)

    def gauss_mix(data):
        y = jnp.array(data["y"])
        mu = numpyro.sample("mu", dist.ImproperUniform(constraints.ordered_vector, (), (2,)))
        numpyro.factor("mu_prior", dist.Normal(0.0, 2.0).log_prob(mu).sum())
        sigma = numpyro.sample("sigma", dist.HalfNormal(2.0).expand([2]).to_event(1))
        theta = numpyro.sample("theta", dist.Beta(5.0, 5.0))
        with numpyro.plate("data", len(y)):
            z = numpyro.sample("z", dist.Bernoulli(theta), infer={"enumerate": "parallel"})
            numpyro.sample("y", dist.Normal(mu[z], sigma[z]), obs=y)

    def coal_mining(data):
        counts = jnp.array(data["counts"])
        T = len(data["counts"])
        tau = numpyro.sample("tau", dist.DiscreteUniform(0, T - 1), infer={"enumerate": "parallel"})
        early = numpyro.sample("early", dist.Gamma(1.0, 1.0))
        late = numpyro.sample("late", dist.Gamma(1.0, 1.0))
        with numpyro.plate("years", T):
            rate = jnp.where(jnp.arange(T) < tau, early, late)
            numpyro.sample("y", dist.Poisson(rate), obs=counts)

    def mix3(data):
        y = jnp.array(data["y"])
        mu = numpyro.sample("mu", dist.ImproperUniform(constraints.ordered_vector, (), (3,)))
        numpyro.factor("mu_prior", dist.Normal(0.0, 5.0).log_prob(mu).sum())
        sigma = numpyro.sample("sigma", dist.HalfNormal(2.0).expand([3]).to_event(1))
        w = numpyro.sample("w", dist.Dirichlet(jnp.ones(3)))
        with numpyro.plate("data", len(y)):
            z = numpyro.sample("z", dist.Categorical(w), infer={"enumerate": "parallel"})
            numpyro.sample("y", dist.Normal(mu[z], sigma[z]), obs=y)

    def regression30(data):
        X, y = jnp.array(data["X"]), jnp.array(data["y"])
        beta = numpyro.sample("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
        numpyro.sample("y", dist.Normal(X @ beta, 1.0), obs=y)

    return {
        "mix3": mix3,
        "regression30": regression30,
        "seed_mixture": seed_mixture,
        "eight_schools": eight_schools,
        "blr": blr,
        "gauss_mix": gauss_mix,
        "coal_mining": coal_mining,
    }


def run(name: str, data: dict) -> dict:
    import jax
    import jax.monitoring
    import numpyro
    from numpyro.infer import MCMC, NUTS

    compile_s = []

    def record(event: str, duration: float, **kwargs) -> None:
        if event.startswith("/jax/core/compile/"):
            compile_s.append(duration)

    jax.monitoring.register_event_duration_secs_listener(record)
    mcmc = MCMC(
        NUTS(models()[name]),
        num_warmup=specs.WARMUP,
        num_samples=specs.DRAWS,
        num_chains=specs.CHAINS,
        chain_method=CHAIN_METHOD,
        progress_bar=False,
    )
    start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(specs.SEED), data)
    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    wall = time.perf_counter() - start
    return {
        "build_s": sum(compile_s),
        "sample_s": wall - sum(compile_s),
        "first_run_s": wall,
        "draws": {k: v.tolist() for k, v in samples.items()},
        "settings": (
            f"NUTS, {specs.CHAINS} chains x ({specs.WARMUP} warm-up + {specs.DRAWS} draws), "
            f'chain_method="{CHAIN_METHOD}"'
        ),
        "versions": {"numpyro": numpyro.__version__, "jax": jax.__version__},
    }


def main(argv=None):
    specs.peer_main(run, __doc__, argv)


if __name__ == "__main__":
    main()
