"""``scalelab demo``: predict, plan and prove in one run on the embedded corpus, on a CPU.

1. **Prove, small**: train an isoFLOP grid of tiny GPTs (compute budgets x model sizes, tokens from
   ``C = 6 N D``) on the Python standard library's source with byte tokens (:mod:`scalelab.tunnel`).
2. **Predict**: fit the Chinchilla law ``L = E + A/N^alpha + B/D^beta`` to the final validation losses,
   with bootstrap intervals (:class:`scalelab.laws.ChinchillaLaw`), and forecast the compute-optimal
   model for a budget larger than any in the grid, with a 95% interval for a new run.
3. **Prove, held out**: train that model at that budget and compare the measured loss with the forecast.
4. **Plan**: what the same recipe means at production scale: :func:`scalelab.budget` plans a production
   budget twice, from a published Chinchilla fit and from the law just fitted (with the caveat of
   transferring a byte-level tiny-model law spelled out, :data:`TRANSFER_CAVEAT`): N, D, shape, LR and
   batch, the best layout on a named cluster, days and cost.

Everything is stored (runs in the SQLite run store, so a second ``scalelab demo`` reuses them) and
summarised in a self-contained HTML report.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .errors import ConfigError, ScalelabError, ScalelabWarning, explain

log = logging.getLogger(__name__)

#: Run settings shared by every demo run: byte tokens on the stdlib corpus, a cosine schedule.
RUN_DEFAULTS: dict[str, Any] = {
    "corpus": "stdlib",
    "tokenizer": "byte",
    "seq_len": 64,
    "batch_size": 16,
    "lr": 3e-3,
    "min_lr_ratio": 0.1,
    "warmup_fraction": 0.1,
    "schedule": "cosine",
    "eval_tokens": 32768,
}
#: Family rule for model shapes (see :func:`scalelab.tunnel.grid.model_for_params`).
MODEL_DEFAULTS: dict[str, Any] = {"d_head": 16, "aspect_ratio": 32, "vocab_size": 256}


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo. ``quick`` fits in about two minutes on 2 cores, ``full`` in about ten."""

    budgets_flops: tuple[float, ...]
    """Compute budgets of the isoFLOP grid, FLOPs (C = 6 N D)."""
    sizes: tuple[float, ...]
    """Target model sizes of the grid, total parameters."""
    holdout_flops: float
    """Budget of the held-out run, FLOPs; larger than every grid budget."""
    n_bootstrap: int
    """Bootstrap refits of the law (intervals)."""
    production_flops: float = 1e24
    """Budget planned at production scale, FLOPs."""
    production_gpu: str = "h100-sxm"
    production_n_gpus: int = 1024
    production_seq_len: int = 4096
    production_law: str = "besiroglu2024"
    """Published Chinchilla fit used for the production allocation."""

    @classmethod
    def named(cls, quick: bool) -> DemoSettings:
        if quick:
            return cls(budgets_flops=(1e10, 3e10, 1e11, 3e11), sizes=(1.5e4, 3e4, 6e4), holdout_flops=8e11,
                       n_bootstrap=100)
        return cls(budgets_flops=(3e10, 1e11, 3e11, 1e12), sizes=(2e4, 4e4, 8e4, 1.6e5), holdout_flops=2e12,
                   n_bootstrap=200)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DemoResult:
    """What the demo measured, fitted, forecast and planned; ``report()`` is the printed summary."""

    settings: DemoSettings
    seed: int
    store_path: str
    grid_runs: list[dict[str, Any]]
    fit: dict[str, Any]
    forecast: dict[str, Any]
    holdout: dict[str, Any]
    production: dict[str, Any]
    timings_s: dict[str, float]
    notes: list[str] = field(default_factory=list)
    report_path: str | None = None

    @property
    def forecast_error(self) -> float:
        """(measured - forecast) / measured loss of the held-out run (a fraction)."""
        return (self.holdout["val_loss"] - self.forecast["loss"]) / self.holdout["val_loss"]

    @property
    def inside_interval(self) -> bool:
        return self.forecast["loss_lo"] <= self.holdout["val_loss"] <= self.forecast["loss_hi"]

    def to_dict(self) -> dict[str, Any]:
        from . import __version__

        return {
            "scalelab_version": __version__,
            "settings": self.settings.to_dict(),
            "seed": self.seed,
            "store": self.store_path,
            "grid_runs": self.grid_runs,
            "fit": self.fit,
            "forecast": self.forecast,
            "holdout": self.holdout,
            "forecast_error": self.forecast_error,
            "inside_interval": self.inside_interval,
            "production": self.production,
            "timings_s": self.timings_s,
            "notes": self.notes,
            "report": self.report_path,
        }

    def report(self) -> str:
        from .units import format_count

        f, h, p, fc = self.fit, self.holdout, self.production, self.forecast
        lvl = round(100 * fc["level"])
        lines = [
            f"scalelab demo: {len(self.grid_runs)} isoFLOP runs + 1 held-out run on the stdlib corpus "
            f"(byte tokens), seed {self.seed}",
            "",
            "1. isoFLOP grid (final validation loss, nats/token)",
        ]
        for r in self.grid_runs:
            lines.append(f"   C={r['budget_flops']:.0e}  N={format_count(r['n_params']):>6}  "
                         f"D={format_count(r['tokens']):>6}  loss={r['val_loss']:.4f}  [{r['status']}]")
        lines += ["", f"2. Chinchilla fit ({f['n_points']} points, {f['n_bootstrap']} bootstrap refits, "
                      f"{lvl}% intervals)"]
        for k in ("E", "A", "B", "alpha", "beta"):
            lo, hi = f["intervals"].get(k, (math.nan, math.nan))
            lines.append(f"   {k:>5} = {f['params'][k]:<10.4g} [{lo:.4g}, {hi:.4g}]")
        lines.append(f"   a = beta/(alpha+beta) = {f['a']:.3f}   (Chinchilla: ~0.5)")
        lines += [
            "",
            f"3. Forecast at C={fc['C_flops']:.2g} FLOPs: N_opt={format_count(fc['N_opt'])}, "
            f"D_opt={format_count(fc['D_opt'])}",
            f"   held-out model {h['model']} (N={format_count(h['n_params'])}, D={format_count(h['tokens'])}): "
            f"forecast {fc['loss']:.4f} [{fc['loss_lo']:.4f}, {fc['loss_hi']:.4f}] ({lvl}%, new run)",
            *(["   (band width from other public data sets' backtested extrapolation errors: the grid's "
               f"{len({r['n_params'] for r in self.grid_runs})} model sizes are too few to backtest this fit on "
               "its own runs; docs/laws.md)"] if fc.get("band_source") == "prior" else []),
            f"   measured {h['val_loss']:.4f}: error {100 * self.forecast_error:+.2f}%, "
            f"{'inside' if self.inside_interval else 'OUTSIDE'} the {lvl}% interval",
            "",
            f"4. Production plans at C={p['C_flops']:.0e} FLOPs on {p['n_gpus']} x {p['gpu']} "
            "(scalelab budget: allocation, shape, DeepSeek LLM LR/batch law, best layout)",
        ]
        for title, q in ((f"published law ({p['law']})", p), ("the law fitted above", p.get("fitted") or {})):
            lines += _production_lines(title, q)
        lines += ["", "Timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.timings_s.items())]
        if self.notes:
            lines += ["Notes:"] + [f" - {n}" for n in self.notes]
        if self.report_path:
            lines.append(f"Report: {self.report_path}")
        return "\n".join(lines)


def _production_lines(title: str, p: dict[str, Any]) -> list[str]:
    from .units import format_bytes, format_count

    if not p.get("feasible"):
        return [f"   {title}: no plan ({p.get('reason', 'not computed')})"]
    lines = [f"   {title}: N={format_count(p['N_opt'])}, D={format_count(p['D_opt'])}, "
             f"LR {p['lr']:.3g}, batch {format_count(p['batch_tokens'])} tokens",
             f"     model {p['model']}: layout {p['layout']}, step {p['step_time_s']:.2f} s, MFU "
             f"{100 * p['mfu']:.1f}%, {p['training_days']:.1f} days, {format_count(p['gpu_hours'])} GPU-hours"
             + (f", ${format_count(p['cost_usd'])}" if p.get("cost_usd") is not None else "")
             + f"; memory/GPU {format_bytes(p['memory_total_bytes'], binary=True)} of "
             f"{format_bytes(p['gpu_memory_bytes'], binary=True)}"]
    if p.get("caveat"):
        ext = p.get("extrapolation_factor")
        lines.append(f"     caveat: {p['caveat']}"
                     + (f" (this plan lies up to {ext:.2g}x outside the law's fitted N, D and compute)" if ext else ""))
    return lines


def _warning_notes(caught: list[warnings.WarningMessage]) -> list[str]:
    seen: list[str] = []
    for w in caught:
        if issubclass(w.category, ScalelabWarning):
            msg = f"{w.category.__name__}: {w.message}"
            if msg not in seen:
                seen.append(msg)
    return seen


def run_demo(
    *,
    quick: bool = False,
    seed: int = 0,
    store: str | Path | None = None,
    out: str | Path | None = "scalelab-report.html",
    workers: int | None = None,
    quiet: bool = False,
    settings: DemoSettings | None = None,
) -> DemoResult:
    """Run the whole demo and return its result (and write the HTML report to ``out``).

    Parameters
    ----------
    quick : bool
        The two-minute version (smaller grid and budgets).
    seed : int
        Seed of every run (initialisation and data order) and of the bootstrap.
    store : path, optional
        Run store; default ``$SCALELAB_HOME/runs.sqlite``. Runs already there are reused.
    out : path or None
        Where to write the HTML report; ``None`` skips it.
    workers : int, optional
        Local worker processes for the grid; default: one per CPU core, at most 4.
    quiet : bool
        Log lines instead of a live progress display.
    """
    import os

    from .tunnel.grid import isoflop_grid, make_config
    from .tunnel.runner import RunOptions, run_grid
    from .tunnel.store import RunStore

    s = settings or DemoSettings.named(quick)
    if not all(b < s.holdout_flops for b in s.budgets_flops):
        raise ConfigError(explain("the held-out budget must exceed every grid budget",
                                  value=s.holdout_flops, allowed=f"> {max(s.budgets_flops):g}"))
    if out is not None:
        _check_report_path(Path(out).expanduser())
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    st = RunStore(store)
    defaults = {**RUN_DEFAULTS, "seed": seed}
    timings: dict[str, float] = {}
    notes: list[str] = []

    # 1. isoFLOP grid ------------------------------------------------------------------------------
    t0 = time.perf_counter()
    grid = isoflop_grid(list(s.budgets_flops), list(s.sizes), defaults=defaults, model_defaults=MODEL_DEFAULTS)
    grid.name = f"demo-isoflop-{'quick' if quick else 'full'}-seed{seed}"
    records = run_grid(grid, st, workers=workers, quiet=quiet)
    timings["grid"] = time.perf_counter() - t0
    budget_of = {c.content_hash(): _budget_label(grid, i) for i, c in enumerate(grid.configs)}
    grid_runs = []
    for rec in records:
        grid_runs.append({**_run_row(rec), "budget_flops": budget_of.get(rec.hash)})
    ok = [r for r in grid_runs if r["status"] == "completed" and r["val_loss"] is not None
          and math.isfinite(r["val_loss"])]
    if len(ok) < 6:
        raise ScalelabError(explain("too few grid runs completed to fit the Chinchilla law", value=len(ok),
                                  allowed="at least 6 completed runs",
                                  fix="check the failed runs with `scalelab tunnel ls` and rerun the demo"))

    # 2. fit, and 3a. forecast the compute-optimal model for the held-out budget ----------------------
    t0 = time.perf_counter()
    fitted = fit_and_forecast(ok, s, seed)
    law, fit, forecast, model, n_tokens = fitted.law, fitted.fit, fitted.forecast, fitted.model, fitted.n_tokens
    notes += fitted.notes
    timings["fit"] = time.perf_counter() - t0

    # 3b. train the held-out run -------------------------------------------------------------------
    t0 = time.perf_counter()
    hold_cfg = make_config(model, n_tokens, defaults)
    # One thread: these models are too small for intra-op parallelism to pay (the grid's workers also
    # get one core each), and a second thread only adds synchronisation on a busy machine.
    hold_rec = run_grid([hold_cfg], st, workers=1, quiet=quiet, options=RunOptions(torch_threads=1))[0]
    timings["holdout"] = time.perf_counter() - t0
    holdout = _run_row(hold_rec)
    if holdout["status"] != "completed" or holdout["val_loss"] is None:
        raise ScalelabError(explain("the held-out run did not complete", value=hold_rec.status,
                                  fix=f"inspect it with `scalelab tunnel show {hold_rec.hash}`"))

    # 4. production plan ---------------------------------------------------------------------------
    t0 = time.perf_counter()
    production = plan_production(s)
    production["tiny_law_a"] = fit["a"]
    production["fitted"] = plan_production(s, law=law)
    timings["plan"] = time.perf_counter() - t0

    result = DemoResult(settings=s, seed=seed, store_path=str(st.path), grid_runs=grid_runs, fit=fit,
                        forecast=forecast, holdout=holdout, production=production, timings_s=timings,
                        notes=notes)
    if out is not None:
        from .report.demo_report import write_demo_report

        result.report_path = str(write_demo_report(result, law, out))
    return result


def _check_report_path(out: Path) -> None:
    """Refuse a report path that cannot be written (or a report that cannot be drawn) before minutes of
    training, not after them."""
    from .report import require_matplotlib

    require_matplotlib()
    if out.is_dir():
        raise ConfigError(explain("the demo's report path is a folder", value=str(out),
                                  allowed="an .html file path", fix=f"pass --out {out / 'scalelab-report.html'}"))
    if not out.parent.is_dir():
        raise ConfigError(explain("the folder of the demo's report does not exist", value=str(out),
                                  fix=f"create it (mkdir -p {out.parent}) or pass another --out"))


class Fitted(NamedTuple):
    """What :func:`fit_and_forecast` returns: the law, the report's ``fit`` and ``forecast`` dicts, the
    held-out model and its token count, and the fit's warnings as notes."""

    law: Any
    fit: dict[str, Any]
    forecast: dict[str, Any]
    model: Any
    n_tokens: int
    notes: list[str]


def fit_and_forecast(ok: list[dict[str, Any]], s: DemoSettings, seed: int) -> Fitted:
    """Fit the Chinchilla law to the completed grid runs ``ok`` (rows with ``n_params``, ``tokens`` and
    ``val_loss``) and forecast the held-out run: the law's compute-optimal N at ``s.holdout_flops``, the
    family-rule model nearest it, its tokens from the budget, and its loss with a 95% interval for a new
    run. Needs no torch."""
    from .laws import ChinchillaLaw
    from .tunnel.grid import model_for_params, tokens_for_budget

    N = np.array([r["n_params"] for r in ok], dtype=float)
    D = np.array([r["tokens"] for r in ok], dtype=float)
    L = np.array([r["val_loss"] for r in ok], dtype=float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        law = ChinchillaLaw(n_bootstrap=s.n_bootstrap, random_state=seed).fit(N, D, L)
        co = law.compute_optimal(s.holdout_flops)
        n_opt, d_opt = float(np.ravel(co.N_opt)[0]), float(np.ravel(co.D_opt)[0])
        model = model_for_params(n_opt, seq_len=RUN_DEFAULTS["seq_len"], **MODEL_DEFAULTS)
        n_tokens = tokens_for_budget(model, s.holdout_flops, seq_len=RUN_DEFAULTS["seq_len"],
                                     batch_size=RUN_DEFAULTS["batch_size"])
        n_hold = float(model.n_params().total)
        pred = float(law.predict(n_hold, float(n_tokens)))
        lo, hi = law.predict_interval(n_hold, float(n_tokens), level=0.95, kind="new")
        extrap = float(law.extrapolation(n_hold, float(n_tokens)))
    fit = {
        "law": "chinchilla",
        "n_points": len(ok),
        "n_bootstrap": s.n_bootstrap,
        "params": {k: float(v) for k, v in law.params_.items()},
        "intervals": {k: (float(v[0]), float(v[1])) for k, v in getattr(law, "intervals_", {}).items()},
        "a": law.derived()["a"],
        "data": {"N": N.tolist(), "D": D.tolist(), "loss": L.tolist()},
    }
    forecast = {
        "C_flops": s.holdout_flops, "N_opt": n_opt, "D_opt": d_opt, "level": 0.95,
        "loss": pred, "loss_lo": float(np.ravel(lo)[0]), "loss_hi": float(np.ravel(hi)[0]),
        "extrapolation_factor": extrap,
        # where the band's width comes from: "own" (backtests on the grid itself) or "prior" (too few model
        # sizes to backtest, so other public data sets' extrapolation errors; laws/calibration.py)
        "band_source": (getattr(law, "calibration_", None) or {}).get("source", "none"),
    }
    return Fitted(law, fit, forecast, model, int(n_tokens), _warning_notes(caught))


def _run_row(rec: Any) -> dict[str, Any]:
    """The fields of a stored run that the demo reports (N total, tokens seen, final validation loss, and
    measured against planned step time and memory)."""
    from .tunnel.schema import PERF_COLUMNS

    row = rec.summary()
    return {"hash": rec.hash, "model": row["model"], "n_params": rec.n_params, "tokens": row["tokens"],
            "val_loss": rec.final_val_loss, "status": rec.status, "tokens_per_s": rec.tokens_per_s,
            "wall_s": rec.wall_s, "batch_size": rec.config.get("batch_size"), "seq_len": rec.config.get("seq_len"),
            **{k: getattr(rec, k) for k in PERF_COLUMNS}}


def _budget_label(grid: Any, i: int) -> float | None:
    """The isoFLOP budget of grid run ``i`` (parsed from its label ``C=3e+11 ...``)."""
    labels = getattr(grid, "labels", None) or []
    if i < len(labels) and labels[i].startswith("C="):
        try:
            return float(labels[i].split()[0][2:])
        except ValueError:
            return None
    return None


#: What transferring the demo's law to production means (printed beside its plan).
TRANSFER_CAVEAT = (
    "the tiny law was fitted on byte tokens of one corpus (Python source) with models of 1e4-1e5 parameters: "
    "its loss is in nats per byte, not per BPE token, so E, A and B and the loss forecast do not carry over; "
    "only the allocation exponent a = beta/(alpha+beta) says something about production, and even that is "
    "an extrapolation over about seven decades of N, from a tokenizer and data mix whose exponents differ "
    "from web text's. Read this plan as what the tiny law implies, not as a recommendation."
)


#: A narrower layout search for the two production plans (ZeRO 1-2, micro-batch <= 2, interleave <= 2): at
#: 1e24 FLOPs on 1,024 H100 its best layout is within 0.2% of the full search's days at a third of its time
#: (docs/budget.md), so the demo's plan section stays about as fast as with one plan.
PRODUCTION_SEARCH: dict[str, Any] = {"zero_stages": (1, 2), "max_micro_batch": 2, "max_interleave": 2}


def plan_production(s: DemoSettings, law: Any = None) -> dict[str, Any]:
    """The run :func:`scalelab.budget` plans at ``s.production_flops`` on ``s.production_n_gpus`` GPUs:
    compute-optimal N and D, a shape, LR and batch (DeepSeek LLM's law), and the best layout. ``law`` is a
    fitted law (the demo's) or ``None`` for the published ``s.production_law``."""
    from .budgeting import budget

    name = s.production_law if law is None else "the demo's fitted law"
    out: dict[str, Any] = {"C_flops": s.production_flops, "law": name, "gpu": s.production_gpu,
                           "n_gpus": s.production_n_gpus}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # extrapolation is the subject here; the caveat says so
            run = budget(flops=s.production_flops, gpu=s.production_gpu, n_gpus=s.production_n_gpus,
                         law=s.production_law if law is None else law, seq_len=s.production_seq_len,
                         **PRODUCTION_SEARCH)
    except ScalelabError as e:
        out.update({"feasible": False, "reason": str(e).split(". Fix:")[0]})
        return out
    if law is not None:
        out["caveat"] = TRANSFER_CAVEAT
        ext = float(law.extrapolation(run.n_params, run.n_tokens))
        out["extrapolation_factor"] = ext if math.isfinite(ext) else None
    p = run.plan
    mem = p.memory
    out.update({
        "N_opt": run.n_params, "D_opt": run.n_tokens, "model": run.model.name,
        "n_params": run.model.n_params().total, "gpu_memory_bytes": p.cluster.gpu.memory_bytes, "feasible": True,
        "lr": run.hyper["lr"], "batch_tokens": run.batch_tokens, "loss": run.loss,
        "layout": p.layout.short(), "step_time_s": p.step_time_s, "mfu": p.mfu,
        "training_days": p.training_days, "gpu_hours": p.gpu_hours,
        "cost_usd": None if p.cost_usd is None or not math.isfinite(p.cost_usd) else p.cost_usd,
        "memory_total_bytes": mem.total_bytes,
        "memory_bytes": {"weights": mem.weights_bytes, "gradients": mem.gradients_bytes,
                         "optimizer": mem.optimizer_bytes, "activations": mem.activations_bytes,
                         "other": mem.other_bytes},
        "top_layouts": [{"layout": p.layout.short(), "step_time_s": p.step_time_s, "mfu": p.mfu,
                         "days": p.training_days}],
    })
    return out
