"""CLI command group ``scalelab tunnel``: run grids, list, show, export and remove stored runs.

torch is imported only by ``run`` and ``ddp`` (inside the command), so ``ls``/``show``/``export`` and
``scalelab --help`` start quickly.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ._long_work import log_lines_wanted, resumable, route_progress_logs
from ._options import FormatOpt
from ._output import OutputFormat, console, emit, err_console

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="Run store (SQLite). Default: $SCALELAB_HOME/runs.sqlite (~/.scalelab)."),
]


#: Shortest hash prefix `tunnel rm` accepts: a one-character typo must not delete a run.
RM_MIN_PREFIX = 6


class BackendChoice(StrEnum):
    local = "local"
    ray = "ray"


class ExportFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"
    json = "json"


def _export_format(out: Path, fmt: ExportFormat | None) -> str:
    """The export format: ``--format`` if given, else the file's suffix; any other suffix is an error
    (writing CSV into ``out.xlsx`` would hand the user a file their spreadsheet cannot open)."""
    from ..errors import ConfigError, explain

    suffix = out.suffix.lower().lstrip(".")
    known = {f.value for f in ExportFormat}
    if fmt is not None:
        if suffix in known and suffix != fmt.value:
            raise ConfigError(explain(f"--format {fmt.value} disagrees with the file name", value=str(out),
                                      fix=f"name it {out.with_suffix('.' + fmt.value).name}, or drop --format"))
        return fmt.value
    if suffix in known:
        return suffix
    raise ConfigError(explain("cannot tell the export format from the file name", value=str(out),
                              allowed="a name ending in .csv, .parquet or .json",
                              fix=f"rename it (e.g. {out.with_suffix('.csv').name}) or pass --format csv|parquet|json"))


class LsSort(StrEnum):
    created = "created"
    loss = "loss"
    params = "params"
    tokens = "tokens"
    flops = "flops"
    status = "status"
    hash = "hash"


#: How each --sort key reads a record; runs without the value (a pending run has no loss) sort last.
_SORT_KEYS = {
    LsSort.created: lambda r: r.created_at, LsSort.loss: lambda r: r.final_val_loss,
    LsSort.params: lambda r: r.n_params, LsSort.tokens: lambda r: r.tokens_seen or r.n_tokens,
    LsSort.flops: lambda r: r.flops, LsSort.status: lambda r: r.status, LsSort.hash: lambda r: r.hash,
}


def _sorted_runs(recs: list, key: LsSort, reverse: bool) -> list:
    get = _SORT_KEYS[key]
    have = sorted((r for r in recs if get(r) is not None), key=get, reverse=reverse)
    return have + [r for r in recs if get(r) is None]


def _ls_table(recs: list, title: str, wide: bool):
    """The ``tunnel ls`` table. Narrow (the default) fits 80 columns and always shows the status and the
    full hash (copyable into ``tunnel show``); ``--wide`` adds grid, kind, parent, speed and time."""
    from rich.table import Table

    from ..units import format_count

    t = Table(title=title, title_justify="left")
    t.add_column("hash", no_wrap=True, min_width=16)
    t.add_column("status", no_wrap=True)
    if wide:
        for c in ("grid", "kind", "parent"):
            t.add_column(c, overflow="fold")
    t.add_column("model", overflow="fold")
    for c in ("params", "tokens", "val loss"):
        t.add_column(c, justify="right", no_wrap=True)
    if wide:
        for c in ("tokens/s", "wall s"):
            t.add_column(c, justify="right", no_wrap=True)

    def num(x: float | None, f=format_count) -> str:
        return "-" if x is None else f(x)

    for r in recs:
        s = r.summary()
        cells = [r.hash, r.status]
        if wide:
            cells += [r.grid or "-", r.kind, (r.parent_hash or "-")]
        cells += [s["model"], num(r.n_params), num(s["tokens"]), num(r.final_val_loss, lambda v: f"{v:.4f}")]
        if wide:
            cells += [num(r.tokens_per_s), num(r.wall_s, lambda v: f"{v:.1f}")]
        t.add_row(*cells)
    return t


class ExportWhat(StrEnum):
    runs = "runs"
    curves = "curves"


def _store(path: Path | None, *, readonly: bool = False):
    """The run store; ``readonly`` for commands that only read it (the path must then exist)."""
    from ..tunnel.store import RunStore

    return RunStore(path, readonly=readonly)


def _short(rows: list[dict]) -> list[dict]:
    """Human tables show the first 10 characters of a hash (any unique prefix works as a run key)."""
    return [{**r, "hash": r["hash"][:10]} for r in rows]


def register(app: typer.Typer) -> None:
    """Add the ``tunnel`` sub-app to the root app."""
    tunnel = typer.Typer(name="tunnel", help="Wind tunnel: train grids of tiny GPTs and keep every run.",
                         no_args_is_help=True)
    app.add_typer(tunnel, name="tunnel")
    from . import sweep

    sweep.register(tunnel)
    _register_training(tunnel)
    _register_browsing(tunnel)


def _register_training(tunnel: typer.Typer) -> None:
    """``tunnel run`` and ``tunnel ddp``: train and store."""

    @tunnel.command("run")
    def run_cmd(
        grid: Annotated[
            str, typer.Argument(help="Grid: a .toml file or a Python recipe (file.py or file.py:function).")
        ],
        workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Local worker processes.")] = 1,
        backend: Annotated[BackendChoice, typer.Option("--backend", help="Where runs execute.")] = BackendChoice.local,
        ray_address: Annotated[
            str | None, typer.Option("--ray-address", help="Existing Ray cluster (default: start a local one).")
        ] = None,
        store: StoreOpt = None,
        quiet: Annotated[
            bool, typer.Option("--quiet", "-q", help="Log lines instead of the live display (CI, logs).")
        ] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and list the grid; train nothing.")] = False,
        checkpoint_every: Annotated[
            int, typer.Option("--checkpoint-every", min=0, help="Steps between resumable checkpoints (0: never).")
        ] = 50,
        prune: Annotated[str | None, typer.Option(
            "--prune", help="Stop runs that will lose: forecast, median or halving (runs need eval_every_steps)."
        )] = None,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Train every run of GRID that the store does not hold yet (completed runs are skipped)."""
        from ..tunnel.grid import load_grid
        from ..tunnel.runner import RunOptions, run_grid

        g = load_grid(grid)
        pruner = None
        if prune is not None:
            from ..tunnel.pruning import make_pruner

            pruner = make_pruner(prune)
        if dry_run:
            emit(g, fmt)
            return
        lines = log_lines_wanted(quiet, fmt == OutputFormat.json)
        if lines:
            route_progress_logs()
        st = _store(store)
        with resumable():
            records = run_grid(g, st, workers=workers, backend=backend.value, quiet=lines, ray_address=ray_address,
                               options=RunOptions(checkpoint_every_steps=checkpoint_every, pruner=pruner))
        rows = []
        for r in records:
            rows.append(r.summary())
            rows += [c.summary() for c in st.children(r.hash)]
        summary = None
        if pruner is not None:
            from ..tunnel.pruning import sweep_summary

            summary = sweep_summary(records)
        if fmt == OutputFormat.json:
            emit({"grid": g.name, "store": str(st.path), "runs": rows,
                  **({"pruning": summary} if summary else {})}, fmt)
        else:
            emit(_short(rows), fmt, title=f"grid {g.name} -> {st.path}")
            if summary:
                best = summary["best"]
                typer.echo(f"pruning ({prune}): {summary['pruned']} of {summary['runs']} runs stopped early, "
                           f"{summary['saved_fraction']:.0%} of the compute saved; best completed run "
                           + (f"{best['hash'][:8]} (lr {best['lr']}, val {best['final_val_loss']:.4f})" if best
                              else "none"))

    @tunnel.command("ddp")
    def ddp_cmd(
        grid: Annotated[str, typer.Argument(help="A grid file or recipe holding exactly one run.")],
        nproc: Annotated[
            int, typer.Option("--nproc", min=1, help="Processes (CPU: gloo; GPUs: one per GPU, NCCL).")
        ] = 2,
        store: StoreOpt = None,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Train one larger run with PyTorch DDP under torchrun and store it."""
        from ..errors import ConfigError, explain
        from ..tunnel.ddp import run_ddp
        from ..tunnel.grid import load_grid

        g = load_grid(grid)
        if len(g) != 1:
            raise ConfigError(explain("a DDP run needs a grid with exactly one run", value=len(g),
                                      fix="put one [[run]] block in the file, or use `scalelab tunnel run`"))
        st = _store(store)
        with resumable():  # Ctrl-C / SIGTERM: torchrun stopped, the run released, one line, exit 130 / 143
            rec = run_ddp(g.configs[0], st, nproc=nproc)
        emit(rec, fmt)


def _grid_hint(grid: str, runs: list) -> str:
    """What ``tunnel ls --grid NAME`` adds when no run has that grid: the closest grid names of the store, else
    all of them (or that no run has one)."""
    from ..errors import suggest

    names = sorted({r.grid for r in runs if r.grid})
    if grid in names:  # the grid exists: another filter (--status, --kind) left nothing
        return ""
    if not names:
        return "; no run in this store has a grid name"
    close = suggest(grid, names)
    if close:
        return "; did you mean " + ", ".join(repr(c) for c in close) + "?"
    return "; grids in this store: " + ", ".join(names)


def _register_browsing(tunnel: typer.Typer) -> None:
    """``tunnel ls``, ``show``, ``export`` and ``rm``: read and manage the store."""

    @tunnel.command("ls")
    def ls_cmd(
        store: StoreOpt = None,
        status: Annotated[str | None, typer.Option("--status", help="Only runs with this status.")] = None,
        kind: Annotated[str | None, typer.Option("--kind", help="Only runs of this kind: run, branch, ddp.")] = None,
        grid: Annotated[str | None, typer.Option("--grid", help="Only runs of this grid name.")] = None,
        sort: Annotated[LsSort, typer.Option("--sort", help="Order by this field (runs without it last).")
                        ] = LsSort.created,
        reverse: Annotated[bool, typer.Option("--reverse", "-r", help="Largest (or newest) first.")] = False,
        wide: Annotated[
            bool, typer.Option("--wide", help="Every column (grid, kind, parent, speed); needs ~130 columns.")
        ] = False,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """List stored runs (oldest first unless --sort), with full hashes; filter by status, kind or grid."""
        st = _store(store, readonly=True)
        recs = _sorted_runs(st.runs(status=status, kind=kind, grid=grid), sort, reverse)
        if fmt == OutputFormat.json:
            emit([r.summary() for r in recs], fmt)
            return
        filters = " ".join(f"--{k} {v}" for k, v in (("status", status), ("kind", kind), ("grid", grid)) if v)
        if not recs:
            console.print(f"no runs{' matching ' + filters if filters else ''} in {st.path}"
                          + (_grid_hint(grid, st.runs()) if grid else ""), markup=False)
            return
        counts = ", ".join(f"{k} {v}" for k, v in sorted(st.counts().items()))
        t = _ls_table(recs, f"{len(recs)} runs{' (' + filters + ')' if filters else ''} in {st.path.name}: {counts}",
                      wide)
        # --wide is for wide terminals and files: draw every column whole, never squeezed into 80
        if wide:
            from rich.console import Console

            Console(highlight=False, width=max(console.width, 200)).print(t)
        else:
            console.print(t)

    @tunnel.command("show")
    def show_cmd(
        run: Annotated[str, typer.Argument(help="Run hash or a unique prefix of it.")],
        store: StoreOpt = None,
        curve: Annotated[bool, typer.Option("--curve", help="Also print the loss curve.")] = False,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Show one run: config, metrics, versions, branches (and its curve)."""
        st = _store(store, readonly=True)
        rec = st.get(run, with_curve=curve or fmt == OutputFormat.json)
        kids = st.children(rec.hash)
        if fmt == OutputFormat.json:
            emit({**rec.to_dict(), "branches": [k.summary() for k in kids]}, fmt)
            return
        emit(rec, fmt)
        if kids:
            emit(_short([k.summary() for k in kids]), fmt, title="decay branches")
        if curve and rec.curve:
            emit(rec.curve, fmt, title="curve")

    @tunnel.command("export")
    def export_cmd(
        out: Annotated[Path | None, typer.Argument(help="Output file (optional with --mlflow).")] = None,
        fmt: Annotated[
            ExportFormat | None,
            typer.Option("--format", "-f", help="File format (default: from the suffix .csv, .parquet or .json)."),
        ] = None,
        what: Annotated[
            ExportWhat, typer.Option("--what", help="One row per run, or one per curve point.")
        ] = ExportWhat.runs,
        status: Annotated[str | None, typer.Option("--status", help="Only runs with this status.")] = None,
        store: StoreOpt = None,
        mlflow: Annotated[
            str | None, typer.Option("--mlflow", help="Also log every finished run into this MLflow tracking store "
                                                      "(sqlite:///PATH.db or file:PATH; no server needed).")
        ] = None,
        experiment: Annotated[
            str, typer.Option("--experiment", help="MLflow experiment for --mlflow (created when missing).")
        ] = "scalelab",
    ) -> None:
        """Export runs (N, D, C, loss, config columns) or curves to CSV, Parquet or JSON, or to MLflow."""
        from ..errors import ConfigError, explain

        if out is None and mlflow is None:
            raise ConfigError(explain("nothing to export to", fix="name an output file (runs.csv), or pass "
                                      "--mlflow sqlite:///mlflow.db"))
        st = _store(store, readonly=True)
        if out is not None:
            f = _export_format(out, fmt)
            path = st.export(out, format=f, what=what.value, status=status)
            err_console.print(f"wrote {path}")
        if mlflow is not None:
            from ..tunnel.mlflow_io import export_to_mlflow, tracking_uri

            done = export_to_mlflow(st, tracking_uri(mlflow), experiment=experiment, status=status)
            err_console.print(done.report(), markup=False, highlight=False)

    @tunnel.command("rm")
    def rm_cmd(
        run: Annotated[str, typer.Argument(help="Run hash or a unique prefix of it.")],
        store: StoreOpt = None,
        force: Annotated[bool, typer.Option("--force", help="Also remove a run marked running.")] = False,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Remove a run with its curve, checkpoint and decay branches (asks first unless --yes)."""
        import sys

        from ..errors import ConfigError, explain

        ro = _store(store, readonly=True)   # a mistyped --store is an error, not a new empty store
        ro.close()
        st = _store(ro.path)
        rec = st.get(run)
        if run != rec.hash and len(run) < RM_MIN_PREFIX:
            raise ConfigError(explain(f"`tunnel rm` needs at least {RM_MIN_PREFIX} characters of the hash", value=run,
                                      allowed=f"a prefix of {RM_MIN_PREFIX}+ characters, or the full hash",
                                      fix=f"scalelab tunnel rm {rec.hash}"))
        if rec.status == "running" and not force:
            st.remove(rec.hash, force=False)   # refuses with the store's own message, before anything is asked
        kids = st.children(rec.hash)
        what = f"run {rec.hash} ({rec.status})" + (f" and its {len(kids)} decay branch(es)" if kids else "")
        if not yes:
            if not sys.stdin.isatty():
                raise ConfigError(explain(f"`tunnel rm` would delete {what} and cannot ask here (no terminal)",
                                          fix="pass --yes to confirm"))
            if not typer.confirm(f"Remove {what}?", default=False, err=True):
                err_console.print("nothing removed")
                raise typer.Exit(1)
        removed = st.remove(rec.hash, force=force)
        if fmt == OutputFormat.json:
            emit({"removed": removed}, fmt)
        else:
            console.print(f"removed {len(removed)} run(s): {', '.join(removed)}")
