"""One row of tests/assets/planner_published_runs.json as plan() inputs, in one place for the validation
benchmark (benchmarks/planner_validation.py) and the planner tests (tests/planner, which put this folder on
``sys.path`` in their conftest.py).

The row format is the asset's, not a user-facing one (trial keys such as ``_float8`` and ``_overlaps``
exist for the benchmark's what-if tables, and the asset is not shipped with the package), so this lives
beside the benchmark rather than in ``scalelab.planner``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import NamedTuple

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.arch.spec import ModelSpec
from scalelab.hardware import ClusterSpec
from scalelab.planner import LoRASpec, MemoryConventions
from scalelab.planner.frameworks import FrameworkProfile, get_framework

ASSET = Path(__file__).resolve().parents[1] / "tests" / "assets" / "planner_published_runs.json"


def load() -> dict:
    """The whole asset: ``runs`` and the tolerances stored beside them."""
    return json.loads(ASSET.read_text())


class PlanInputs(NamedTuple):
    """plan()'s arguments for one run: ``plan(model, cluster, train, layout, framework=framework,
    memory_conventions=memory_conventions)``."""

    model: ModelSpec
    cluster: ClusterSpec
    train: TrainSpec
    layout: Layout
    framework: FrameworkProfile
    memory_conventions: MemoryConventions


def build(run: dict, scale: float | None = None) -> PlanInputs:
    """The plan() inputs of one run: its model (catalog name or inline spec), cluster with the row's device
    overrides, training spec (LoRA included), layout, and its team's framework profile with the row's memory
    conventions, and AsyncTP on where the row says ``"async_tp": true``. ``scale`` is a trial
    ``efficiency_scale``; the trial keys ``_float8`` (a Float8 recipe), ``_async_tp_hiding`` (AsyncTP's
    hiding share), ``_overlaps`` ((tp_overlap, pp_overlap), with AsyncTP off) and ``_moe_tp_dispatch`` replace
    the profile's."""
    model = ModelSpec(**run["model_spec"]) if "model_spec" in run else get_model(run["model"])
    t = dict(run["train"])
    if "lora" in t:
        t["lora"] = LoRASpec(**{**t["lora"], "target_modules": tuple(t["lora"]["target_modules"])})
    prof = get_framework(run["framework"])
    if scale is not None:
        prof = dataclasses.replace(prof, efficiency_scale=scale)
    if "_float8" in run:
        prof = dataclasses.replace(prof, float8=run["_float8"])
    if run.get("async_tp"):  # the run turned torch's AsyncTP on (torchtitan enable_async_tensor_parallel)
        prof = dataclasses.replace(prof, async_tp=True)
    if "_async_tp_hiding" in run:
        prof = dataclasses.replace(prof, async_tp_hiding=run["_async_tp_hiding"])
    if "_overlaps" in run:  # a trial overlap replaces AsyncTP's
        prof = dataclasses.replace(prof, tp_overlap=run["_overlaps"][0], pp_overlap=run["_overlaps"][1],
                                   async_tp=False)
    if "_moe_tp_dispatch" in run:
        prof = dataclasses.replace(prof, moe_tp_dispatch=run["_moe_tp_dispatch"])
    conv = dataclasses.replace(prof.memory, **run.get("memory_conventions", {}))
    cluster = get_cluster(run["gpu"], run["n_gpus"], **run.get("gpu_overrides", {}))
    return PlanInputs(model, cluster, TrainSpec(**t), Layout(**run["layout"]), prof, conv)


def run_plan(run: dict, scale: float | None = None):
    """plan() for one published run with its team's settings (and, if given, a trial efficiency scale)."""
    i = build(run, scale)
    return plan(i.model, i.cluster, i.train, i.layout, framework=i.framework,
                memory_conventions=i.memory_conventions)


def measured_tokens_per_s_per_gpu(run: dict, p) -> float | None:
    """The run's published throughput as tokens/s/GPU (from tokens/s, TFLOP/s with recompute, days or step
    time); ``p`` is its plan (for the FLOPs per step and the tokens)."""
    meas = run.get("measured", {})
    n = run["n_gpus"]
    if "tokens_per_s_per_gpu" in meas:
        return meas["tokens_per_s_per_gpu"]
    if "tflops_per_gpu" in meas:  # executed FLOPs, recompute included
        return meas["tflops_per_gpu"] * 1e12 * n / p.hardware_flops_per_step * p.train.global_batch_tokens / n
    if "days" in meas:
        return p.train.total_tokens / (meas["days"] * 86400) / n
    if "step_time_s" in meas:
        return p.train.global_batch_tokens / meas["step_time_s"] / n
    return None
