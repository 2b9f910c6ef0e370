"""A correct session is quiet: no notice on import."""

import os
import subprocess
import sys


def test_import_prints_nothing():
    env = {k: v for k, v in os.environ.items() if k not in ("AESARA_FLAGS", "PYTHONWARNINGS")}
    done = subprocess.run(
        [sys.executable, "-c", "import aemix"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == ""


def test_a_shared_count_with_a_poisson_child_compiles_without_aesara_error_logs(capfd):
    # Aesara 2.9.4's local_useless_elemwise built a replacement of the wrong shape for the
    # Poisson density's ``value == 0 & mu == 0`` at every value of k, and printed a "BUG IN
    # FGRAPH.REPLACE" error with a traceback on every compile (`aemix.compilation`).
    import aesara.tensor as at
    import numpy as np
    import scipy.stats as st
    from scipy.special import logsumexp

    import aemix

    srng = at.random.RandomStream(0)
    lam = srng.gamma(2.0, 2.0, name="lam")
    k = srng.binomial(6, 0.5, name="k")
    y = srng.poisson(0.5 + k * lam, size=5, name="y")
    data = np.array([3, 5, 2, 4, 6])
    sampler = aemix.build_sampler(y, {y: data})
    got = sampler.logdensity({"lam": 1.2})
    ks = np.arange(7)
    exact = st.gamma.logpdf(1.2, 2.0, scale=0.5) + logsumexp(
        st.binom.logpmf(ks, 6, 0.5) + st.poisson.logpmf(data, 0.5 + ks[:, None] * 1.2).sum(1)
    )
    np.testing.assert_allclose(got, exact, rtol=1e-10)
    captured = capfd.readouterr()
    assert "BUG IN FGRAPH" not in captured.err and "Rewrite failure" not in captured.err
