"""``python -m scalelab`` runs the CLI (with its error table), as the ``scalelab`` entry point does."""

from __future__ import annotations

import subprocess
import sys


def test_python_m_scalelab_runs_the_cli(tmp_path):
    version = subprocess.run([sys.executable, "-m", "scalelab", "--version"], capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("scalelab ")
    missing = subprocess.run([sys.executable, "-m", "scalelab", "forecast", str(tmp_path / "nope.json")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "nope.json" in missing.stderr and "Traceback" not in missing.stderr
