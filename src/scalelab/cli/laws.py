"""CLI command group for scaling laws: ``scalelab fit``, ``scalelab forecast``, ``scalelab laws [show NAME]``.

numpy/scipy/pandas/matplotlib are imported inside the commands (DESIGN.md principle 8).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._options import FormatOpt
from ._output import OutputFormat, emit

# Column options shared by `fit` and `backtest` (defined once, DESIGN.md "Public API shape").
NColOpt = Annotated[str | None, typer.Option("--n", help="Column holding N (parameters).")]
DColOpt = Annotated[str | None, typer.Option("--d", help="Column holding D (tokens).")]
LossColOpt = Annotated[str | None, typer.Option("--loss", help="Column holding the final loss.")]
ComputeColOpt = Annotated[str | None, typer.Option("--compute", help="Column holding C (FLOPs); D = C/(6N) if no D.")]
MoreColsOpt = Annotated[list[str] | None, typer.Option("--col", help="More mappings NAME=COLUMN (repeatable).")]
MinTokensPerParamOpt = Annotated[float | None, typer.Option(
    "--min-tokens-per-param", help="Drop runs with fewer tokens per parameter (D/N) than this, e.g. 1.")]
#: How the table reader's messages name its arguments here: by the flags of `fit` and `backtest`.
SPELLINGS = {"n_convention": "--n-convention", "drop_top_loss": "--drop-top-loss", "loss": "--loss COLUMN",
             "min_tokens_per_param": "--min-tokens-per-param ", "store": "--store", "source": "a runs file"}


def _runs_table(path: Any) -> Any:
    """The tunnel's run table of a store file, imported only when a store is read (it loads the planner)."""
    from ..tunnel.table import runs_table

    return runs_table(path)


def _read_run_stores() -> None:
    """Let the laws read ``.sqlite`` run stores through the tunnel's run table (laws never import tunnel).

    The tunnel's table module is imported when a store is actually read, not here: it pulls in the planner
    (a quarter of a second), which a fit of a CSV file never needs.
    """
    from ..laws.data import set_store_reader

    set_store_reader(_runs_table)


def _parse_cols(pairs: list[str] | None) -> dict[str, str]:
    from ..errors import ConfigError, explain

    out: dict[str, str] = {}
    for p in pairs or []:
        k, _, v = p.partition("=")
        if not k.strip() or not v.strip():  # "=x" mapped a column to the name "" without a word
            raise ConfigError(explain("--col takes NAME=COLUMN", value=p, fix="e.g. --col U=unique_tokens"))
        out[k.strip()] = v.strip()
    return out


class _LawList:
    """``scalelab laws`` output: one row per registered law."""

    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows

    def to_dict(self) -> list[dict[str, Any]]:
        return self.rows

    def report(self) -> str:
        w = max(len(r["name"]) for r in self.rows) if self.rows else 4
        lines = [f"{'law':<{w}}  {'covariates':<16}  equation / citation"]
        for r in self.rows:
            lines.append(f"{r['name']:<{w}}  {', '.join(r['covariates']):<16}  {r['equation']}")
            lines.append(f"{'':<{w}}  {'':<16}  {r['citation']}"
                         + (f"  [presets: {', '.join(r['presets'])}]" if r["presets"] else ""))
        return "\n".join(lines)


class _LawShow:
    def __init__(self, d: dict[str, Any]):
        self.d = d

    def to_dict(self) -> dict[str, Any]:
        return self.d

    def report(self) -> str:
        d = self.d
        lines = [f"{d['name']} ({d['class']})", f"  {d['equation']}", f"  source: {d['citation']}",
                 "  covariates: " + "; ".join(f"{k} = {v}" for k, v in d["covariates"].items()),
                 f"  target: {d['target']} ({d['target_units']})",
                 "  parameters: " + ", ".join(d["params"])]
        for k, v in d["conventions"].items():
            lines.append(f"  convention {k}: {v}")
        for name, p in d["presets"].items():
            vals = ", ".join(f"{k}={v:.6g}" for k, v in p["params"].items())
            lines.append(f"  preset {name}: {vals}")
            lines.append(f"    {p.get('source', '')}")
        return "\n".join(lines)


class _Forecast:
    def __init__(self, d: dict[str, Any], text: str):
        self.d, self.text = d, text

    def to_dict(self) -> dict[str, Any]:
        return self.d

    def report(self) -> str:
        return self.text


#: Trackers `fit --from` reads, as PREFIX:NAME.
TRACKERS = ("mlflow",)


def _read_tracker(spec: str, mlflow_uri: str | None, given: Any) -> tuple[dict[str, Any], str, str | None]:
    """``fit --from mlflow:EXPERIMENT``: the experiment's finished runs as columns, their label and N convention."""
    from ..errors import ConfigError, explain

    kind, _, name = spec.partition(":")
    if kind not in TRACKERS or not name:
        raise ConfigError(explain("--from takes TRACKER:NAME", value=spec, allowed="mlflow:EXPERIMENT",
                                  fix="e.g. --from mlflow:scalelab --mlflow-uri sqlite:///mlflow.db"))
    if given is not None:
        raise ConfigError(explain("--from reads the runs, so a runs file or --store is one source too many",
                                  value=str(given), fix="drop the file or --store, or drop --from"))
    from ..tunnel.mlflow_io import read_mlflow_runs, tracking_uri

    return read_mlflow_runs(tracking_uri(mlflow_uri), name)


def _load_fit_or_preset(fit: str) -> Any:
    from ..laws import get_law, load_fit

    p = Path(fit)
    if p.exists() or fit.endswith(".json"):
        return load_fit(p)
    if ":" in fit:  # LAW:PRESET
        law, preset = fit.split(":", 1)
        return get_law(law).preset(preset)
    from ..laws import list_laws

    laws = {c.name: c for c in list_laws()}
    if fit in laws:  # a law's name alone reads as a missing file: say how to name one of its presets
        from ..errors import ConfigError, explain

        presets = list(laws[fit].presets)
        raise ConfigError(explain(f"{fit!r} is a law, not a fit file", value=fit,
                                  allowed="a fit JSON (`scalelab fit --out`) or LAW:PRESET"
                                          + (f"; {fit}'s presets: {', '.join(presets)}" if presets else ""),
                                  fix=f"e.g. scalelab forecast {fit}:{presets[0]}" if presets
                                  else f"fit it first: scalelab fit RUNS --law {fit} --out fit.json"))
    return load_fit(p)  # raises FileNotFoundError with the path


def register(app: typer.Typer) -> None:
    """Add ``fit``, ``backtest``, ``forecast`` and ``laws`` to the root app."""
    _register_fit(app)
    _register_backtest(app)
    _register_forecast(app)
    _register_laws(app)


def _register_fit(app: typer.Typer) -> None:
    """``scalelab fit``."""

    @app.command("fit")
    def fit_cmd(
        runs: Annotated[Path | None, typer.Argument(help="Runs: CSV (a W&B runs-table export too), Parquet, JSON or a "
                                                                 "run store (.sqlite).")] = None,
        law: Annotated[str, typer.Option("--law", "-l", help="Law name (see `scalelab laws`), or auto: the law "
                                                              "with the lowest backtested error.")] = "chinchilla",
        n: NColOpt = None,
        d: DColOpt = None,
        loss: LossColOpt = None,
        compute: ComputeColOpt = None,
        col: MoreColsOpt = None,
        columns_toml: Annotated[
            Path | None, typer.Option("--columns", help="TOML file with a columns table and a conventions table.")
        ] = None,
        n_convention: Annotated[
            str | None, typer.Option("--n-convention", help="total | non-embedding | active.")
        ] = None,
        drop_top_loss: Annotated[int, typer.Option("--drop-top-loss", help="Drop this many highest-loss runs.")] = 0,
        min_tpp: MinTokensPerParamOpt = None,
        duplicates: Annotated[
            str, typer.Option("--duplicates", help="Copied runs: error | drop (the copies; replicates kept) | "
                                                   "average (one point per design point) | keep.")
        ] = "error",
        objective: Annotated[str, typer.Option("--objective", help="huber | ls | asymmetric.")] = "huber",
        delta: Annotated[float, typer.Option("--delta", help="Huber delta on log-loss.")] = 1e-3,
        space: Annotated[str, typer.Option("--space", help="Residuals on log-loss (log) or loss (linear).")] = "log",
        init: Annotated[str, typer.Option("--init", help="grid (the law's full grid) | coarse.")] = "grid",
        param_prior: Annotated[str | None, typer.Option(
            "--param-prior", help="chinchilla: weak prior on the exponents, hoffmann2022 (its default) | "
                                  "besiroglu2024 | none (the unpenalised fit).")] = None,
        bootstrap: Annotated[
            int, typer.Option("--bootstrap", "-b", help="Bootstrap refits over runs (0: asymptotic).")
        ] = 0,
        seed: Annotated[int, typer.Option("--seed", help="Random seed of the bootstrap.")] = 0,
        level: Annotated[float, typer.Option("--level", help="Interval coverage.")] = 0.95,
        store: Annotated[Path | None, typer.Option("--store", help="Read runs from a wind-tunnel run store.")] = None,
        from_: Annotated[
            str | None, typer.Option("--from", help="Read runs from a tracker: mlflow:EXPERIMENT (its FINISHED runs).")
        ] = None,
        mlflow_uri: Annotated[
            str | None, typer.Option("--mlflow-uri", help="MLflow tracking URI for --from mlflow:... "
                                                          "(default: $MLFLOW_TRACKING_URI).")
        ] = None,
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Write the fit as JSON (reload with forecast).")
        ] = None,
        plot: Annotated[Path | None, typer.Option("--plot", help="Draw the fit, bands and data to this PNG.")] = None,
        grid: Annotated[str | None, typer.Option(
            "--grid", help="With --law hyperparams: only this sweep's runs (default: every sweep:* grid).")] = None,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Fit a scaling law to runs; print parameters with intervals and goodness of fit.

        ``--law hyperparams`` fits LR and batch laws (Step-Law and DeepSeek forms) to the best run of each
        (N, D) cell of a `scalelab tunnel sweep` instead (docs/tunnel-sweeps.md)."""
        from ..errors import ConfigError, DataError, explain
        from ..laws import get_law, load_runs
        from ._files import refuse_overwriting_inputs

        refuse_overwriting_inputs({"--out": out, "--plot": plot},
                                  {"runs file": runs, "run store": store, "columns file": columns_toml})
        if plot is not None:  # before the fit, which a missing matplotlib would otherwise throw away
            from ..report import require_matplotlib

            require_matplotlib()
        _read_run_stores()
        source: Any = runs
        label = conv = None
        if from_ is not None:
            source, label, conv = _read_tracker(from_, mlflow_uri, given=runs or store)
        elif runs is None and store is None:
            raise DataError(explain("no runs given", fix="pass a runs file, --store PATH or --from mlflow:EXPERIMENT"))
        if law == "hyperparams" or grid is not None:
            from .sweep import fit_sweep

            emit(fit_sweep(store or runs, law, grid, out), fmt)
            return
        table = load_runs(source, n=n, d=d, loss=loss, compute=compute, columns=_parse_cols(col),
                          config=columns_toml, n_convention=n_convention or conv, store=store,
                          drop_top_loss=drop_top_loss, min_tokens_per_param=min_tpp, spellings=SPELLINGS,
                          source_label=label)
        selection = None
        if law == "auto":
            from ..laws.backtest import BacktestComparison, backtest

            comp = backtest(table, "auto", duplicates=duplicates)
            selection = ({"chosen": comp.best, "reason": comp.reason} if isinstance(comp, BacktestComparison)
                         else {"chosen": comp.law, "reason": "the only law these columns allow"})
            law = selection["chosen"]
        klass = get_law(law)
        extra: dict[str, Any] = {}
        if param_prior is not None:
            if "param_prior" not in klass._get_param_names():
                raise ConfigError(explain(f"--param-prior applies to the chinchilla law, not {law}", value=param_prior,
                                        fix="drop --param-prior, or fit --law chinchilla"))
            extra["param_prior"] = None if param_prior.lower() == "none" else param_prior
        est = klass(loss=objective, delta=delta, space=space, init=init, n_bootstrap=bootstrap, random_state=seed,
                    level=level, **extra)
        est.fit(table, duplicates=duplicates)
        est.result_ = est.result_.replace(data_source=table.to_dict())
        from ..laws.calibration import calibrate

        calibrate(est)  # the calibrated new-run band's backtest scores travel with the saved fit
        from ._files import write_or_warn

        if out is not None:
            out = write_or_warn(est.save, out)
        if plot is not None:
            from ..report.laws_plot import plot_fit

            X, y, _ = table.law_inputs(est)
            # like --out: a plot path that cannot be written never throws away the fit printed below
            plot = write_or_warn(lambda p: plot_fit(est, X, y, path=p), plot)
        summary = {k: v for k, v in est.to_dict().items() if k not in ("bootstrap_params", "residuals")}
        result = _Forecast({**summary, "data": table.to_dict(), "saved_to": str(out) if out else None,
                            "law_selection": selection},
                           est.report()
                           + (f"\n  law chosen by --law auto: {selection['chosen']} ({selection['reason']})"
                              if selection else "")
                           + "\n  data: " + "; ".join([table.source, *table.notes])
                           + (f"\n  N convention: {table.n_convention}") + (f"\n  wrote {out}" if out else "")
                           + (f"\n  plot: {plot}" if plot else ""))
        emit(result, fmt)


def _register_backtest(app: typer.Typer) -> None:
    """``scalelab backtest``."""
    @app.command("backtest")
    def backtest_cmd(
        runs: Annotated[Path, typer.Argument(help="Runs: CSV, Parquet, JSON or a run store (.sqlite).")],
        law: Annotated[str, typer.Option("--law", "-l", help="Law name, several comma-separated to compare, or "
                                                              "auto (every law the columns allow).")] = "chinchilla",
        n: NColOpt = None,
        d: DColOpt = None,
        loss: LossColOpt = None,
        compute: ComputeColOpt = None,
        col: MoreColsOpt = None,
        split: Annotated[str, typer.Option("--split", help="n | compute | rolling | largest.")] = "n",
        n_splits: Annotated[int, typer.Option("--n-splits", help="Cutoffs: the last levels of the axis.")] = 3,
        level: Annotated[float, typer.Option("--level", help="Band coverage.")] = 0.95,
        band: Annotated[str, typer.Option("--band", help="new (calibrated) | noise | mean.")] = "new",
        drop_top_loss: Annotated[int, typer.Option("--drop-top-loss", help="Drop this many highest-loss runs.")] = 0,
        min_tpp: MinTokensPerParamOpt = None,
        duplicates: Annotated[str, typer.Option("--duplicates", help="error | drop | average | keep.")] = "error",
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Backtest a law: fit the smaller runs, forecast the larger ones; errors, coverage, interval score."""
        from ..laws import load_runs
        from ..laws.backtest import backtest

        _read_run_stores()
        table = load_runs(runs, n=n, d=d, loss=loss, compute=compute, columns=_parse_cols(col),
                          drop_top_loss=drop_top_loss, min_tokens_per_param=min_tpp, spellings=SPELLINGS)
        laws: Any = law if law == "auto" or "," not in law else [x.strip() for x in law.split(",") if x.strip()]
        res = backtest(table, laws, split=split, n_splits=n_splits, level=level, kind=band, duplicates=duplicates)
        emit(res, fmt)


def _register_forecast(app: typer.Typer) -> None:
    """``scalelab forecast``."""
    @app.command("forecast")
    def forecast_cmd(
        fit: Annotated[str, typer.Argument(help="A fit JSON from `scalelab fit --out`, or LAW:PRESET "
                                                "(e.g. chinchilla:besiroglu2024).")],
        compute: Annotated[list[float] | None, typer.Option("--compute", "-c", help="Budget(s) in FLOPs.")] = None,
        params: Annotated[float | None, typer.Option("--params", "-N", help="Model size N.")] = None,
        tokens: Annotated[float | None, typer.Option("--tokens", "-D", help="Training tokens D.")] = None,
        level: Annotated[float, typer.Option("--level", help="Band coverage.")] = 0.95,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Forecast from a fit: compute-optimal N, D and loss at a budget, or the loss at (N, D), with bands."""
        import warnings

        import numpy as np

        from .._checks import check_level
        from ..errors import ConfigError, ExtrapolationWarning, explain
        from ..laws.base import band_label

        check_level(level)  # before the bands, whose errors below become notes
        if compute and (params is not None or tokens is not None):
            raise ConfigError(explain("forecast takes --compute C, or --params N with --tokens D, not both",
                                      value={"compute": compute, "params": params, "tokens": tokens},
                                      fix="drop --compute for the loss at (N, D), or drop --params/--tokens for "
                                          "the compute-optimal allocation"))
        law = _load_fit_or_preset(fit)
        notes: list[str] = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ExtrapolationWarning)
            if compute:
                if not hasattr(law, "compute_optimal"):
                    raise ConfigError(explain(f"law {law.name!r} has no compute-optimal allocation",
                                              fix="use --params/--tokens, or a law over N and D"))
                res = law.compute_optimal(np.array(compute), level=level)
                d, text = res.to_dict(), res.report()
            elif params is not None and tokens is not None:
                if tuple(law.covariates) != ("N", "D"):
                    raise ConfigError(explain(f"--params/--tokens need a law over (N, D); {law.name!r} takes "
                                              f"{', '.join(law.covariates)}"))
                pred = float(law.predict(params, tokens))
                ext = float(law.extrapolation(params, tokens))
                from ..units import training_flops

                c_flops = training_flops(params, tokens)
                d = {"law": law.name, "N": params, "D": tokens, "C_flops": c_flops, "loss": pred,
                     "extrapolation_factor": ext, "level": level}
                text = (f"{law.name}: N = {params:.4g}, D = {tokens:.4g} (C = {c_flops:.3g} FLOPs): "
                        f"loss = {pred:.4f}")
                for kind in ("mean", "new"):
                    try:
                        lo, hi = law.predict_interval(params, tokens, level=level, kind=kind)
                    except Exception as e:  # noqa: BLE001 - a preset may have no uncertainty; say so
                        notes.append(f"no {kind} band: {e}")
                        continue
                    d[f"{kind}_band"] = [float(lo), float(hi)]
                    text += f"\n  {band_label(kind, level)}: [{float(lo):.4f}, {float(hi):.4f}]"
                text += f"\n  extrapolation: x{ext:.3g} of the fitted range" if np.isfinite(ext) else \
                    "\n  extrapolation: fitted range unknown"
            else:
                raise ConfigError(explain("forecast needs --compute C, or both --params N and --tokens D",
                                          fix="e.g. scalelab forecast fit.json --compute 1e24"))
        for w in caught:
            notes.append(str(w.message))
        if notes:
            d["warnings"] = notes
            text += "".join(f"\n  warning: {n}" for n in notes)
        emit(_Forecast(d, text), fmt)


def _register_laws(app: typer.Typer) -> None:
    """``scalelab laws`` and ``scalelab laws show NAME``."""
    laws_app = typer.Typer(help="List the built-in scaling laws, or show one.", invoke_without_command=True,
                           no_args_is_help=False)

    @laws_app.callback()
    def laws_list(ctx: typer.Context, fmt: FormatOpt = OutputFormat.human) -> None:
        """List the built-in scaling laws with their citations."""
        if ctx.invoked_subcommand is not None:
            return
        from ..laws import list_laws

        rows = [{"name": c.name, "class": c.__name__, "equation": c.equation, "citation": c.citation,
                 "covariates": list(c.covariates), "presets": list(c.presets)} for c in list_laws()]
        emit(_LawList(rows), fmt)

    @laws_app.command("show")
    def laws_show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Law name.")],
                  fmt: FormatOpt = OutputFormat.human) -> None:
        """Show a law's form, conventions and presets."""
        from ..laws import get_law

        if ctx.parent is not None and ctx.parent.params.get("fmt") == OutputFormat.json:
            fmt = OutputFormat.json  # `scalelab laws -f json show NAME`: the group's -f holds for the command

        c = get_law(name)
        d = {"name": c.name, "class": c.__name__, "equation": c.equation, "citation": c.citation,
             "covariates": {k: c.covariate_units.get(k, "") for k in c.covariates}, "target": c.target,
             "target_units": c.target_units, "params": list(c.param_names), "conventions": dict(c.conventions),
             "presets": {k: {"params": dict(v["params"]), "source": v.get("source", "")} for k, v in c.presets.items()},
             "doc": (c.__doc__ or "").strip()}
        emit(_LawShow(d), fmt)

    app.add_typer(laws_app, name="laws")
