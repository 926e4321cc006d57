"""benchmarks/ on ``sys.path``: the published-run tests plan each row of tests/assets/planner_published_runs.json
with benchmarks/_published_runs.py, the code benchmarks/planner_validation.py uses for the same rows."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
