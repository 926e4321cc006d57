"""Rows of tests/assets/planner_held_out_dgxc.json (NVIDIA's DGX Cloud benchmarking recipes, dgxc-benchmarking
v24.11.1) as plan() inputs, shared by benchmarks/planner_validation.py and tests/planner (whose conftest.py puts
this folder on ``sys.path``). The rows have the format of tests/assets/planner_published_runs.json and are planned
by its :func:`~_published_runs.run_plan`, the code that plans the nemo-405b-* rows; nothing here is fitted on them.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from _published_runs import run_plan

ASSET = Path(__file__).resolve().parents[1] / "tests" / "assets" / "planner_held_out_dgxc.json"


def load() -> dict:
    """The whole asset: ``runs``, the ``selection_rule``, the ``recipes`` and the first planning's record."""
    return json.loads(ASSET.read_text())


def plan_row(run: dict, **trial):
    """plan() for one row with the nemo profile and the row's conventions; ``trial`` keys are
    :func:`~_published_runs.build`'s (``_overlaps``: a what-if (tp_overlap, pp_overlap))."""
    return run_plan({**run, **trial})


def step_time_error(run: dict, p) -> float:
    """The step-time error of the other held-out sets: the predicted step time over the published one, less 1
    (= published tokens/s over predicted, less 1; positive: predicted too slow)."""
    return p.step_time_s / run["measured"]["step_time_s"] - 1


def errors_by_recipe(runs: list[dict]) -> dict[str, list[float]]:
    """Each recipe's |step-time errors|, in the asset's order."""
    out: dict[str, list[float]] = {}
    for r in runs:
        out.setdefault(r["recipe"], []).append(abs(step_time_error(r, plan_row(r))))
    return out


def median_max(errors: list[float]) -> tuple[float, float]:
    return statistics.median(errors), max(errors)
