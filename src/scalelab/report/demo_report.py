"""The demo's HTML report: isoFLOP curves with the fitted optimum, the law with its bands and the data,
forecast against measurement for the held-out run, and the memory breakdown of the planned run.

matplotlib is imported here only (the ``report`` extra), with the non-interactive Agg backend.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..units import GiB, format_count
from .html import HtmlReport


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        from ..errors import MissingDependencyError

        raise MissingDependencyError("matplotlib", "report") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _forecast_with_interval(ax: Any, x: float, forecast: dict[str, Any], label: str) -> None:
    """The forecast as a point with its (asymmetric) 95% interval as error bars."""
    f = forecast
    ax.errorbar([x], [f["loss"]], yerr=[[f["loss"] - f["loss_lo"]], [f["loss_hi"] - f["loss"]]], fmt="o",
                capsize=5, color="tab:blue", label=label)


def isoflop_figure(result: Any, law: Any) -> Any:
    """Loss against N for each grid budget: runs as points, the fitted law along each isoFLOP line, the
    fitted optimum of each budget, and the held-out run."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    budgets = sorted({r["budget_flops"] for r in result.grid_runs if r["budget_flops"]})
    colors = plt.cm.viridis(np.linspace(0.1, 0.85, max(1, len(budgets) + 1)))
    ns = [r["n_params"] for r in result.grid_runs if r["n_params"]] + [result.holdout["n_params"]]
    n_axis = np.geomspace(min(ns) / 3, max(ns) * 3, 120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c, col in zip([*budgets, result.forecast["C_flops"]], colors, strict=True):
            pts = [r for r in result.grid_runs if r["budget_flops"] == c and r["val_loss"] is not None]
            if pts:
                ax.scatter([r["n_params"] for r in pts], [r["val_loss"] for r in pts], color=col, zorder=3,
                           label=f"C = {c:.0e} FLOPs")
            N, _D, L = law.isoflop(c, N=n_axis)
            ax.plot(N, L, color=col, lw=1.2, alpha=0.8)
            co = law.compute_optimal(c)
            ax.scatter(co.N_opt, co.loss, marker="*", s=140, color=col, edgecolor="k", zorder=4)
    h = result.holdout
    ax.scatter([h["n_params"]], [h["val_loss"]], marker="D", s=60, color="crimson", zorder=5,
               label=f"held-out run (C = {result.forecast['C_flops']:.2g})")
    ax.set_xscale("log")
    ax.set_xlabel("parameters N (total)")
    ax.set_ylabel("validation loss (nats/token, byte tokens)")
    ax.set_title("isoFLOP profiles: runs, fitted law (lines) and fitted optima (stars)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig


def law_bands_figure(result: Any, law: Any) -> Any:
    """The compute-optimal frontier L_opt(C) with its bootstrap band, the runs, and the held-out run."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    data = result.fit["data"]
    C = 6.0 * np.asarray(data["N"]) * np.asarray(data["D"])
    sc = ax.scatter(C, data["loss"], c=np.log10(data["N"]), cmap="viridis", zorder=3, label="grid runs")
    fig.colorbar(sc, ax=ax, label="log10 N")
    lo_c = min(C.min(), result.forecast["C_flops"]) / 2
    hi_c = max(C.max(), result.forecast["C_flops"]) * 3
    grid = np.geomspace(lo_c, hi_c, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        co = law.compute_optimal(grid, level=0.95)
    ax.plot(grid, co.loss, color="k", lw=1.5, label="fitted compute-optimal frontier")
    if "loss" in co.bands:
        lo, hi = co.bands["loss"]
        ax.fill_between(grid, np.ravel(lo), np.ravel(hi), color="k", alpha=0.15, label="95% band (bootstrap)")
    f, h = result.forecast, result.holdout
    c_hold = 6.0 * h["n_params"] * h["tokens"]
    _forecast_with_interval(ax, c_hold, f, "forecast (95%, new run)")
    ax.scatter([c_hold], [h["val_loss"]], marker="D", s=60, color="crimson", zorder=5, label="measured")
    ax.set_xscale("log")
    ax.set_xlabel("compute C = 6ND (FLOPs)")
    ax.set_ylabel("validation loss (nats/token, byte tokens)")
    ax.set_title("Chinchilla law fitted to the grid, with its band")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig


def forecast_figure(result: Any) -> Any:
    """Forecast (with 95% interval for a new run) against the measured loss of the held-out run."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    f, h = result.forecast, result.holdout
    _forecast_with_interval(ax, 0, f, "forecast, 95% interval")
    ax.scatter([1], [h["val_loss"]], marker="D", s=60, color="crimson", label="measured")
    ax.set_xticks([0, 1], ["forecast", "measured"])
    ax.set_xlim(-0.7, 1.7)
    ax.set_ylabel("validation loss (nats/token, byte tokens)")
    ax.set_title(f"held-out run: error {100 * result.forecast_error:+.2f}%")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def memory_figure(production: dict[str, Any]) -> Any:
    """Per-GPU memory of the planned production run, stacked by kind, against the GPU's HBM."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 2.2))
    left = 0.0
    colors = plt.cm.tab10(np.arange(5))
    for (k, v), col in zip(production["memory_bytes"].items(), colors, strict=True):
        ax.barh([0], [v / GiB], left=left, color=col, label=f"{k} {v / GiB:.1f} GiB")
        left += v / GiB
    ax.axvline(production["gpu_memory_bytes"] / GiB, color="crimson", ls="--",
               label=f"HBM {production['gpu_memory_bytes'] / GiB:.0f} GiB")
    ax.set_yticks([])
    ax.set_xlabel("GiB per GPU")
    ax.set_title(f"{production['model']} on {production['n_gpus']} x {production['gpu']}: {production['layout']}")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.45))
    return fig


def write_demo_report(result: Any, law: Any, path: str | Path) -> Path:
    """Write the demo's self-contained HTML report to ``path`` and return it."""
    r = HtmlReport("scalelab demo: predict, plan and prove")
    f, h, fc, p = result.fit, result.holdout, result.forecast, result.production
    r.paragraph(
        f"{len(result.grid_runs)} tiny GPTs trained on an isoFLOP grid on the Python standard library's "
        f"source (byte tokens), the Chinchilla law fitted to their final validation losses with "
        f"{f['n_bootstrap']} bootstrap refits, a forecast for a larger budget checked against a held-out run, "
        "and the same recipe planned at production scale.", cls="note")
    r.heading("Forecast against the held-out run")
    r.table([{
        "budget (FLOPs)": f"{fc['C_flops']:.2g}", "N": format_count(h["n_params"]), "D": format_count(h["tokens"]),
        "forecast": fc["loss"], "95% low": fc["loss_lo"], "95% high": fc["loss_hi"], "measured": h["val_loss"],
        "error %": 100 * result.forecast_error, "inside": "yes" if result.inside_interval else "NO"}])
    r.figure(forecast_figure(result), "Forecast with its 95% interval for a new run, and the measured loss.")
    r.heading("isoFLOP grid")
    r.figure(isoflop_figure(result, law), "Each colour is one compute budget; stars are the fitted optima.")
    r.table([{k: row.get(k) for k in ("budget_flops", "model", "n_params", "tokens", "val_loss", "status",
                                      "tokens_per_s")} for row in result.grid_runs])
    r.heading("The fitted law")
    r.table([{"parameter": k, "value": v, "95% low": f["intervals"].get(k, (None, None))[0],
              "95% high": f["intervals"].get(k, (None, None))[1]} for k, v in f["params"].items()]
            + [{"parameter": "a = beta/(alpha+beta)", "value": f["a"]}])
    r.figure(law_bands_figure(result, law), "Runs against compute, the fitted compute-optimal frontier and its band.")
    r.heading("Production plans")
    r.paragraph(
        f"`scalelab budget` at C = {p['C_flops']:.0e} FLOPs on {p['n_gpus']} x {p['gpu']}, once with the published "
        f"{p['law']} Chinchilla fit and once with the law fitted above (allocation, shape, DeepSeek LLM's LR and "
        "batch law, best layout).")
    rows = []
    for name, q in ((f"published ({p['law']})", p), ("fitted above", p.get("fitted") or {})):
        if q.get("feasible"):
            rows.append({"law": name, "N": format_count(q["N_opt"]), "D": format_count(q["D_opt"]),
                         "LR": q["lr"], "batch tokens": format_count(q["batch_tokens"]), "layout": q["layout"],
                         "MFU %": 100 * q["mfu"], "days": q["training_days"],
                         "GPU-hours": format_count(q["gpu_hours"]),
                         "cost (USD)": None if q.get("cost_usd") is None else format_count(q["cost_usd"])})
        else:
            rows.append({"law": name, "N": None, "layout": f"no plan: {q.get('reason', 'not computed')}"})
    r.table(rows)
    fitted = p.get("fitted") or {}
    if fitted.get("caveat"):
        r.paragraph(f"Caveat on the fitted law's plan: {fitted['caveat']}", cls="note")
    if p.get("feasible"):
        r.figure(memory_figure(p), "Memory per GPU of the published law's plan (binary GiB).")
    else:
        r.paragraph(f"No feasible layout: {p.get('reason', '')}")
    if result.notes:
        r.heading("Notes")
        for n in result.notes:
            r.paragraph(n)
    r.paragraph(f"Runs are kept in {result.store_path}; timings (s): "
                + ", ".join(f"{k} {v:.0f}" for k, v in result.timings_s.items()), cls="meta")
    return r.write(path)
