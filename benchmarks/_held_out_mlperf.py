"""Rows of tests/assets/planner_held_out_mlperf.json (NVIDIA's MLPerf Training submissions, rounds v3.1-v5.1) as
plan() inputs, shared by benchmarks/planner_validation.py and tests/planner (whose conftest.py puts this folder on
``sys.path``). The rows have the format of tests/assets/planner_published_runs.json and are planned by its
:func:`~_published_runs.run_plan`, the code that plans the dgxc and nemo-405b-* rows; nothing here is fitted on them.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from _published_runs import run_plan

ASSET = Path(__file__).resolve().parents[1] / "tests" / "assets" / "planner_held_out_mlperf.json"


def load() -> dict:
    """The whole asset: ``runs``, the ``selection_rule``, ``left_out``, ``error_bounds`` and the rounds read."""
    return json.loads(ASSET.read_text())


def plan_row(run: dict, **trial):
    """plan() for one row with the nemo profile and the row's conventions; ``trial`` keys are
    :func:`~_published_runs.build`'s (``_overlaps``: a what-if (tp_overlap, pp_overlap))."""
    return run_plan({**run, **trial})


def step_time_error(run: dict, p) -> float:
    """Predicted step time over the logs' median per-step time, less 1 (positive: predicted too slow)."""
    return p.step_time_s / run["measured"]["step_time_s"] - 1


def band_hits(run: dict, p) -> dict[float, bool]:
    """Whether the measured step time lies inside the plan's step-time band at each stored level."""
    from scalelab.planner.band import BAND_QUANTILES

    t = run["measured"]["step_time_s"]
    out = {}
    for level in BAND_QUANTILES:
        b = p.step_time_band(level)
        out[level] = b is not None and b.step_time_s[0] <= t <= b.step_time_s[1]
    return out


def median_max(errors: list[float]) -> tuple[float, float]:
    a = [abs(e) for e in errors]
    return statistics.median(a), max(a)
