"""Plan -> prove in reports: the planner's step time and memory for each tunnel run beside the measured ones.

Rows come from the run table (``scalelab.tunnel.runs_table``, docs/run-table.md) or from any list of
run dicts with its column names; runs without a measured step time are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .html import HtmlReport

__all__ = ["add_plan_vs_measured_section", "plan_vs_measured_rows"]


def _rows_of(runs: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(runs, Mapping):  # a run table: columns -> rows
        names = list(runs)
        return [dict(zip(names, vals, strict=True)) for vals in zip(*(runs[n] for n in names), strict=True)]
    return list(runs)


def _ratio(pred: Any, meas: Any) -> float | None:
    return float(pred) / float(meas) if pred is not None and meas else None


def _model(r: Mapping[str, Any]) -> str:
    if r.get("model"):
        return str(r["model"])
    return f"L{r.get('n_layers')} d{r.get('d_model')}"


def plan_vs_measured_rows(runs: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per measured run: model, batch, device, step time and memory measured and planned, and the
    ratios planned / measured (1 = exact)."""
    out = []
    for r in _rows_of(runs):
        if r.get("step_s") is None:
            continue
        mib = 2.0**20
        out.append({
            "model": _model(r),
            "N": r.get("N", r.get("n_params")),
            "batch x seq": f"{r.get('batch_size')} x {r.get('seq_len')}" if r.get("batch_size") else None,
            "device": r.get("device"),
            "profile": r.get("pred_device"),
            "step ms measured": 1e3 * float(r["step_s"]),
            "step ms planned": None if r.get("pred_step_s") is None else 1e3 * float(r["pred_step_s"]),
            "step planned/measured": _ratio(r.get("pred_step_s"), r["step_s"]),
            "activations MiB measured": None if r.get("saved_tensor_bytes") is None
            else r["saved_tensor_bytes"] / mib,
            "activations MiB planned": None if r.get("pred_activation_bytes") is None
            else r["pred_activation_bytes"] / mib,
            "memory MiB measured": None if r.get("peak_mem_bytes") is None else r["peak_mem_bytes"] / mib,
            "memory MiB planned": None if r.get("pred_mem_bytes") is None else r["pred_mem_bytes"] / mib,
            "memory planned/measured": _ratio(r.get("pred_mem_bytes"), r.get("peak_mem_bytes")),
        })
    return out


def add_plan_vs_measured_section(report: HtmlReport,
                                 runs: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> bool:
    """Add a "Planned against measured" section to ``report``; ``False`` (nothing added) with no measured run."""
    rows = plan_vs_measured_rows(runs)
    if not rows:
        return False
    report.heading("Planned against measured")
    planned = any(r["step ms planned"] is not None for r in rows)
    report.paragraph(
        "Each tunnel run's measured median step time and memory (saved-for-backward tensors plus weights, "
        "gradients and optimizer states on a CPU, torch.cuda.max_memory_allocated on a GPU) beside what the "
        "planner predicts for the same model, batch and device"
        + (" with the device profile named." if planned else
           "; no device profile was found, so nothing is planned: run `scalelab calibrate` first."),
        cls="note")
    report.table(rows)
    return True
