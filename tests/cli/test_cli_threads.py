"""The CLI keeps numpy's OpenBLAS to one thread unless the user says otherwise (issue 8, fit speed)."""

import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
PROBE = "import os, scalelab.cli, numpy; print(os.environ.get('OPENBLAS_NUM_THREADS'))"


def _probe(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         env={**base, "PYTHONPATH": SRC, **env})
    return out.stdout.strip()


def test_cli_sets_one_blas_thread_before_numpy_loads():
    assert _probe() == "1"


def test_a_users_blas_thread_setting_wins():
    assert _probe(OPENBLAS_NUM_THREADS="3") == "3"
