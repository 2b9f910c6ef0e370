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
