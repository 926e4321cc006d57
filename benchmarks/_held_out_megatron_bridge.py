"""Rows of tests/assets/planner_held_out_megatron_bridge.json (Megatron-Bridge's published 25.11 performance summary)
as plan() inputs, shared by benchmarks/planner_validation.py and tests/planner (whose conftest.py puts this folder on
``sys.path``). A row has the published-runs format (:func:`~_published_runs.build` reads its model, device, training
spec, layout, profile and memory conventions) plus ``model_update`` (the sequence length and, for Llama, the
vocabulary as Megatron pads it) and ``profile`` (profile fields the recipe sets: ``ep_overlap`` where it turns the
MoE all-to-all overlap on). The settings were read before any row was planned; nothing here is fitted on the rows.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from _held_out_dgxc import step_time_error
from _held_out_mlperf import band_hits, median_max
from _published_runs import build

from scalelab import plan

__all__ = ["ASSET", "band_hits", "load", "median_max", "plan_row", "step_time_error"]

ASSET = Path(__file__).resolve().parents[1] / "tests" / "assets" / "planner_held_out_megatron_bridge.json"


def load() -> dict:
    """The whole asset: ``runs``, ``selection_rule``, ``recipe_reading``, ``left_out``, ``error_bounds``, the
    ``source`` read and (after it) the ``first_planning``."""
    return json.loads(ASSET.read_text())


def plan_row(run: dict, **trial):
    """plan() for one row with the nemo profile, the row's memory conventions and profile fields; ``trial`` keys are
    :func:`~_published_runs.build`'s (``gpu_overrides``, ``_overlaps``, ...), for what-ifs."""
    i = build({**run, **trial})
    model = i.model.model_copy(update=run["model_update"])
    prof = dataclasses.replace(i.framework, **run.get("profile", {}))
    return plan(model, i.cluster, i.train, i.layout, framework=prof, memory_conventions=i.memory_conventions)
