"""Rows of tests/assets/planner_held_out_mlperf.json (NVIDIA's MLPerf Training submissions, rounds v3.1-v5.1) as
plan() inputs, shared by benchmarks/planner_validation.py and tests/planner (whose conftest.py puts this folder on
``sys.path``). The rows have the format of tests/assets/planner_published_runs.json and are planned exactly as the
dgxc rows are (:func:`_held_out_dgxc.plan_row`, i.e. :func:`~_published_runs.run_plan`); nothing here is fitted on
them.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from _held_out_dgxc import plan_row, step_time_error

from scalelab.planner.band import BAND_QUANTILES

__all__ = ["ASSET", "band_hits", "load", "median_max", "plan_row", "step_time_error"]

ASSET = Path(__file__).resolve().parents[1] / "tests" / "assets" / "planner_held_out_mlperf.json"


def load() -> dict:
    """The whole asset: ``runs``, the ``selection_rule``, ``left_out``, ``error_bounds``, ``first_planning`` and
    the ``rounds`` read."""
    return json.loads(ASSET.read_text())


def band_hits(run: dict, p) -> dict[float, bool]:
    """Whether the measured step time lies inside the plan's step-time band (Plan.step_time_band) at each stored
    level."""
    t = run["measured"]["step_time_s"]
    out = {}
    for level in BAND_QUANTILES:
        b = p.step_time_band(level)
        out[level] = b is not None and b.step_time_s[0] <= t <= b.step_time_s[1]
    return out


def median_max(errors: list[float]) -> tuple[float, float]:
    """Median and maximum of the |errors|."""
    a = [abs(e) for e in errors]
    return statistics.median(a), max(a)
