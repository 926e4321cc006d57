"""The demo's HTML report: isoFLOP curves with the fitted optimum, the law with its bands and the data,
forecast against measurement for the held-out run, and the memory breakdown of the planned run.

Every plot is drawn by a function of ``narrow`` (a phone-width drawing when true; see
:meth:`HtmlReport.figure`). Tables use words for their headings and one format per quantity: losses to 4
decimals, counts as 29.8K, budgets as 3e+10 FLOPs, MFU in percent, memory in GiB.

matplotlib is imported here only (the ``report`` extra), with the non-interactive Agg backend.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..planner.flops import training_flops
from ..units import GiB, format_count
from .html import HtmlReport, display_path
from .plan_vs_measured import add_plan_vs_measured_section

LOSS_UNIT = "nats/token"
LOSS_LABEL = f"validation loss ({LOSS_UNIT})"
#: Width x height of the plots, inches: wide for desktops, narrow for phones.
_SIZE = {"wide": (7.6, 4.4), "narrow": (4.2, 4.4)}


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        from ..errors import MissingDependencyError

        raise MissingDependencyError("matplotlib", "report") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(narrow: bool, height: float | None = None) -> tuple[Any, Any]:
    w, h = _SIZE["narrow" if narrow else "wide"]
    return _plt().subplots(figsize=(w, height or h), layout="constrained")


def _legend(ax: Any, narrow: bool, handles: Any = None, ncol: int = 2, inside: str | None = None) -> None:
    """Below the axes on a narrow drawing; on a wide one beside them, or ``inside`` them at that corner
    (where a colour bar takes the side), so it never hides data. The figure's constrained layout makes
    room for a legend outside the axes."""
    handles = handles if handles is not None else ax.get_legend_handles_labels()[0]
    if narrow:
        ax.figure.legend(handles=handles, loc="outside lower center", ncol=ncol, frameon=False)
    elif inside:
        ax.legend(handles=handles, loc=inside)
    else:
        ax.figure.legend(handles=handles, loc="outside right upper", frameon=False)


def _flops(c: float) -> str:
    return f"{c:.0e}"


def _loss(x: float | None) -> str | None:
    return None if x is None else f"{x:.4f}"


def _pct(fraction: float) -> str:
    """MFU and other fractions, always as a percentage with one decimal."""
    return f"{100 * fraction:.1f}"


def _forecast_with_interval(ax: Any, x: float, forecast: dict[str, Any], label: str) -> None:
    """The forecast as a point with its (asymmetric) 95% interval as error bars."""
    f = forecast
    ax.errorbar([x], [f["loss"]], yerr=[[f["loss"] - f["loss_lo"]], [f["loss_hi"] - f["loss"]]], fmt="o",
                capsize=5, color="tab:blue", label=label)


def isoflop_optima(law: Any, budgets: list[float]) -> list[tuple[float, float]]:
    """``(N_opt, loss)`` of each budget's fitted optimum, the loss read off the same isoFLOP curve that is
    drawn (``law.isoflop`` at ``N_opt``), so each star sits on its line."""
    out = []
    for c in budgets:
        n_opt = float(np.ravel(law.compute_optimal(c).N_opt)[0])
        out.append((n_opt, float(law.isoflop(c, N=[n_opt])[2][0])))
    return out


def isoflop_figure(result: Any, law: Any, narrow: bool = False) -> Any:
    """Loss against N for each budget: runs as points, the fitted law along each isoFLOP line (solid over
    the trained sizes, dotted beyond), each line's minimum as a star, and the held-out run.

    Lines and stars both come from the fitted law; the N axis covers every star. Artists carry gids
    (``isoflop-<C>``, ``optimum-<C>``) so tests can check that each star lies on its line."""
    from matplotlib.lines import Line2D

    plt = _plt()
    fig, ax = _figure(narrow)
    grid_budgets = sorted({r["budget_flops"] for r in result.grid_runs if r["budget_flops"]})
    c_hold = float(result.forecast["C_flops"])
    budgets = [*grid_budgets, c_hold]
    colors = plt.cm.viridis(np.linspace(0.1, 0.85, len(budgets)))
    trained = [r["n_params"] for r in result.grid_runs if r["n_params"]] + [result.holdout["n_params"]]
    handles = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optima = isoflop_optima(law, budgets)
        n_axis = np.geomspace(min(*trained, *(n for n, _ in optima)) / 2,
                              max(*trained, *(n for n, _ in optima)) * 2, 200)
        inside = (n_axis >= min(trained)) & (n_axis <= max(trained))
        for c, col, (n_opt, l_opt) in zip(budgets, colors, optima, strict=True):
            pts = [r for r in result.grid_runs if r["budget_flops"] == c and r["val_loss"] is not None]
            if pts:
                ax.scatter([r["n_params"] for r in pts], [r["val_loss"] for r in pts], color=col, zorder=3)
            N, _D, L = law.isoflop(c, N=n_axis)
            ax.plot(N, L, color=col, lw=1, ls=":", gid=f"isoflop-{c:g}")
            ax.plot(N[inside], L[inside], color=col, lw=1.6)
            ax.scatter([n_opt], [l_opt], marker="*", s=170, color=col, edgecolor="k", zorder=4,
                       gid=f"optimum-{c:g}")
            name = f"C = {_flops(c)}" + (" (held-out budget: law only)" if c == c_hold else "")
            handles.append(Line2D([], [], color=col, lw=1.6, marker="o" if pts else None, label=name))
    h = result.holdout
    ax.scatter([h["n_params"]], [h["val_loss"]], marker="D", s=60, color="crimson", zorder=5)
    handles += [Line2D([], [], ls="", marker="*", ms=12, color="0.6", markeredgecolor="k",
                       label="fitted optimum"),
                Line2D([], [], color="0.4", ls=":", label="law beyond trained sizes"),
                Line2D([], [], ls="", marker="D", color="crimson", label="held-out run")]
    ax.set_xscale("log")
    ax.set_xlabel("parameters N (total)")
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title("isoFLOP profiles (budgets in FLOPs)")
    _legend(ax, narrow, handles)
    ax.grid(alpha=0.3, which="both")
    return fig


def law_bands_figure(result: Any, law: Any, narrow: bool = False) -> Any:
    """The compute-optimal frontier L_opt(C) with its bootstrap band, the runs, and the held-out run."""
    fig, ax = _figure(narrow)
    if narrow:  # the colour bar takes about half an inch more
        fig.set_size_inches(_SIZE["narrow"][0] - 0.5, _SIZE["narrow"][1])
    data = result.fit["data"]
    C = training_flops(np.asarray(data["N"]), np.asarray(data["D"]))
    sc = ax.scatter(C, data["loss"], c=np.log10(data["N"]), cmap="viridis", zorder=3, label="grid runs")
    fig.colorbar(sc, ax=ax, label="log10 parameters N")
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
    c_hold = training_flops(h["n_params"], h["tokens"])
    _forecast_with_interval(ax, c_hold, f, "forecast (95%, new run)")
    ax.scatter([c_hold], [h["val_loss"]], marker="D", s=60, color="crimson", zorder=5, label="held-out run")
    ax.set_xscale("log")
    ax.set_xlabel("compute C = 6ND (FLOPs)")
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title("Chinchilla law fitted to the grid")
    _legend(ax, narrow, ncol=1, inside="upper right")
    ax.grid(alpha=0.3, which="both")
    return fig


def forecast_figure(result: Any, narrow: bool = False) -> Any:
    """Forecast (with 95% interval for a new run) against the measured loss of the held-out run."""
    fig, ax = _figure(narrow, height=3.2)
    if not narrow:
        fig.set_size_inches(5.2, 3.2)
    f, h = result.forecast, result.holdout
    _forecast_with_interval(ax, 0, f, "forecast, 95% interval")
    ax.scatter([1], [h["val_loss"]], marker="D", s=60, color="crimson", label="measured")
    ax.set_xticks([0, 1], ["forecast", "measured"])
    ax.set_xlim(-0.7, 1.7)
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title(f"held-out run: error {100 * result.forecast_error:+.2f}%")
    ax.grid(alpha=0.3)
    return fig


def memory_figure(production: dict[str, Any], narrow: bool = False) -> Any:
    """Per-GPU memory of the planned production run, stacked by kind, against the GPU's HBM."""
    plt = _plt()
    fig, ax = _figure(narrow, height=2.0)
    left = 0.0
    colors = plt.cm.tab10(np.arange(5))
    for (k, v), col in zip(production["memory_bytes"].items(), colors, strict=True):
        ax.barh([0], [v / GiB], left=left, color=col, label=f"{k} {v / GiB:.1f} GiB")
        left += v / GiB
    ax.axvline(production["gpu_memory_bytes"] / GiB, color="crimson", ls="--",
               label=f"HBM {production['gpu_memory_bytes'] / GiB:.1f} GiB")
    ax.set_yticks([])
    ax.set_xlabel("GiB per GPU")
    sep = "\n" if narrow else ": "
    ax.set_title(f"{production['model']} on {production['n_gpus']} x {production['gpu']}{sep}{production['layout']}")
    _legend(ax, True, ncol=2 if narrow else 3)
    return fig


def _grid_rows(result: Any) -> list[dict[str, Any]]:
    return [{"budget C (FLOPs)": _flops(r["budget_flops"]) if r["budget_flops"] else None, "model": r["model"],
             "parameters N": format_count(r["n_params"]), "tokens D": format_count(r["tokens"]),
             LOSS_LABEL: _loss(r["val_loss"]), "status": r["status"],
             "throughput (tokens/s)": None if r["tokens_per_s"] is None else format_count(r["tokens_per_s"])}
            for r in result.grid_runs]


_ALPHA, _BETA = "\u03b1", "\u03b2"
_PARAM_LABELS = {"E": "E (irreducible loss)", "A": "A (model-size term)", "B": "B (data term)",
                 "alpha": f"{_ALPHA} (model-size exponent)", "beta": f"{_BETA} (data exponent)"}


def _law_rows(fit: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for k, v in fit["params"].items():
        lo, hi = fit["intervals"].get(k, (None, None))
        rows.append({"parameter": _PARAM_LABELS.get(k, k), "value": f"{v:.4g}",
                     "95% interval": None if lo is None else f"{lo:.4g} – {hi:.4g}"})
    rows.append({"parameter": f"a = {_BETA}/({_ALPHA}+{_BETA}) (N_opt \u221d C^a)", "value": f"{fit['a']:.4g}"})
    return rows


def _production_rows(p: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The best layouts (same units as the plan's own row) and the plan itself."""
    layouts = [{"layout": t["layout"], "step time (s)": f"{t['step_time_s']:.2f}", "MFU (%)": _pct(t["mfu"]),
                "training days": f"{t['days']:.1f}"} for t in p["top_layouts"]]
    plan = {"model": p["model"], "parameters": format_count(p["n_params"]), "GPUs": f"{p['n_gpus']} x {p['gpu']}",
             "layout": p["layout"], "step time (s)": f"{p['step_time_s']:.2f}", "MFU (%)": _pct(p["mfu"]),
             "training days": f"{p['training_days']:.1f}", "GPU-hours": format_count(p["gpu_hours"]),
             "cost (USD)": None if p.get("cost_usd") is None else "$" + format_count(p["cost_usd"])}
    return layouts, plan


def _plan_comparison_rows(p: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per production plan: the published law's and the demo's fitted law's."""
    rows: list[dict[str, Any]] = []
    for name, q in ((f"published ({p['law']})", p), ("fitted above", p.get("fitted") or {})):
        if not q.get("feasible"):
            rows.append({"law": name, "parameters N": None, "layout": f"no plan: {q.get('reason', 'not computed')}"})
            continue
        rows.append({"law": name, "parameters N": format_count(q["N_opt"]), "tokens D": format_count(q["D_opt"]),
                     "peak LR": f"{q['lr']:.3g}", "batch (tokens)": format_count(q["batch_tokens"]),
                     "layout": q["layout"], "MFU (%)": _pct(q["mfu"]), "training days": f"{q['training_days']:.1f}",
                     "GPU-hours": format_count(q["gpu_hours"]),
                     "cost (USD)": None if q.get("cost_usd") is None else "$" + format_count(q["cost_usd"])})
    return rows


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
    r.fields({
        "budget C (FLOPs)": _flops(fc["C_flops"]), "held-out model": h["model"],
        "parameters N": format_count(h["n_params"]), "tokens D": format_count(h["tokens"]),
        f"forecast loss ({LOSS_UNIT})": _loss(fc["loss"]),
        "95% interval for a new run": f"{fc['loss_lo']:.4f} – {fc['loss_hi']:.4f}",
        f"measured loss ({LOSS_UNIT})": _loss(h["val_loss"]),
        "error, (measured - forecast) / measured": f"{100 * result.forecast_error:+.2f}%",
        "inside the interval": "yes" if result.inside_interval else "NO"})
    r.figure(lambda narrow: forecast_figure(result, narrow),
             f"Forecast with its 95% interval for a new run, and the measured loss, in {LOSS_UNIT}.")
    r.heading("isoFLOP grid")
    r.figure(lambda narrow: isoflop_figure(result, law, narrow),
             "Each colour is one compute budget. Dots are measured runs; lines and stars are both the fitted "
             "law: a line is its loss along the budget (D = C/6N), solid over the trained sizes and dotted "
             "beyond, and a star is that line's minimum, the law's compute-optimal N. The held-out budget has "
             "no grid runs, only its line and the held-out run (diamond).")
    r.table(_grid_rows(result))
    r.heading("The fitted law")
    r.table(_law_rows(f))
    r.figure(lambda narrow: law_bands_figure(result, law, narrow),
             "Runs against compute, the fitted compute-optimal frontier and its band.")
    r.heading("Production plans")
    r.paragraph(
        f"scalelab budget at C = {_flops(p['C_flops'])} FLOPs on {p['n_gpus']} x {p['gpu']}, once with the "
        f"published {p['law']} Chinchilla fit and once with the law fitted above (allocation, shape, DeepSeek "
        "LLM's LR and batch law, best layout).")
    r.table(_plan_comparison_rows(p))
    fitted = p.get("fitted") or {}
    if fitted.get("caveat"):
        r.paragraph(f"Caveat on the fitted law's plan: {fitted['caveat']}", cls="note")
    if p.get("feasible"):
        _layouts, plan = _production_rows(p)
        r.paragraph("The published law's plan:")
        r.fields(plan)
        r.figure(lambda narrow: memory_figure(p, narrow), "Memory per GPU of the published law's plan (binary GiB).")
    else:
        r.paragraph(f"No feasible layout: {p.get('reason', '')}")
    add_plan_vs_measured_section(r, result.grid_runs)
    if result.notes:
        r.heading("Notes")
        for n in result.notes:
            r.paragraph(n)
    r.paragraph(f"Runs are kept in {display_path(result.store_path)}; timings: "
                + ", ".join(f"{k} {v:.0f} s" for k, v in result.timings_s.items()), cls="meta")
    return r.write(path)
