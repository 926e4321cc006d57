"""CLI command ``scalelab tunnel sweep``: LR x batch grids at several (N, D), stored as ``sweep:NAME`` runs.

Then ``scalelab fit --law hyperparams --store RUNS --out hp.json`` fits Step-Law-style and DeepSeek-style
laws to them, and tunnel grids (``lr = "hp.json"``) or ``scalelab budget --hyperparams hp.json`` use the fit.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ._long_work import log_lines_wanted, resumable, route_progress_logs
from ._options import FormatOpt
from ._output import OutputFormat, emit


class Parametrization(StrEnum):
    sp = "sp"
    mup = "mup"


def _floats(text: str, flag: str) -> list[float]:
    from ..errors import ConfigError, explain

    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        vals = []
    if not vals or any(not v > 0 for v in vals):
        raise ConfigError(explain(f"{flag} takes positive numbers separated by commas", value=text,
                                  fix=f"e.g. {flag} {_EXAMPLES.get(flag, '1e-3,2e-3,4e-3')}"))
    return vals


#: A plausible value of each list flag, for the fix of a bad one (an LR example for --n-params misleads).
_EXAMPLES = {"--n-params": "1e4,3e4,1e5", "--batch-size": "8,16,32", "--n-tokens": "1e5,3e5",
             "--tokens-per-param": "10,20,40"}


def register(tunnel: typer.Typer) -> None:
    """Add ``sweep`` to the ``tunnel`` sub-app."""

    @tunnel.command("sweep")
    def sweep_cmd(
        n_params: Annotated[str, typer.Option("--n-params", help="Model sizes (total parameters), comma-separated.")],
        lr: Annotated[str, typer.Option("--lr", help="Peak learning rates, comma-separated (a factor-2 ladder).")],
        batch_size: Annotated[str, typer.Option("--batch-size", help="Batch sizes in sequences, comma-separated.")
                              ] = "16",
        n_tokens: Annotated[str | None, typer.Option("--n-tokens", help="Token counts, each at every size.")] = None,
        tokens_per_param: Annotated[str | None, typer.Option(
            "--tokens-per-param", help="D = k N for each k (instead of --n-tokens).")] = None,
        name: Annotated[str, typer.Option("--name", help="Sweep name; runs are stored under grid sweep:NAME.")
                        ] = "sweep",
        seq_len: Annotated[int, typer.Option("--seq-len", min=1, help="Tokens per sequence.")] = 64,
        d_head: Annotated[int, typer.Option("--d-head", min=1, help="Head width of the model family.")] = 16,
        parametrization: Annotated[Parametrization, typer.Option(
            "--parametrization", help="sp (standard) or mup (maximal update, docs/tunnel-sweeps.md).")
        ] = Parametrization.sp,
        mup_base_d_model: Annotated[int, typer.Option("--mup-base-d-model", min=1, help="muP base width.")] = 64,
        corpus: Annotated[str, typer.Option("--corpus", help="Corpus: stdlib (embedded) or a path.")] = "stdlib",
        eval_tokens: Annotated[int, typer.Option("--eval-tokens", min=1, help="Held-out tokens per evaluation.")
                               ] = 16384,
        workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Local worker processes.")] = 1,
        store: Annotated[Path | None, typer.Option("--store", help="Run store (SQLite).")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log lines instead of the live display.")] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="List the runs; train nothing.")] = False,
        fmt: FormatOpt = OutputFormat.human,
    ) -> None:
        """Train LR x batch grids at several (N, D) cells and show each cell's best LR and batch."""
        from ..laws.hpfit import best_per_cell
        from ..tunnel.runner import run_grid
        from ..tunnel.store import RunStore
        from ..tunnel.sweep import sweep_grid, sweep_table

        defaults = {"seq_len": seq_len, "batch_size": 1, "corpus": corpus, "tokenizer": "byte",
                    "warmup_fraction": 0.1, "schedule": "cosine", "eval_tokens": eval_tokens,
                    **({"parametrization": "mup", "mup_base_d_model": mup_base_d_model}
                       if parametrization == Parametrization.mup else {})}
        g = sweep_grid(_floats(n_params, "--n-params"), lrs=_floats(lr, "--lr"),
                       batch_sizes=[int(b) for b in _floats(batch_size, "--batch-size")],
                       n_tokens=None if n_tokens is None else _floats(n_tokens, "--n-tokens"),
                       tokens_per_param=None if tokens_per_param is None else _floats(tokens_per_param,
                                                                                       "--tokens-per-param"),
                       defaults=defaults, model_defaults={"d_head": d_head, "vocab_size": 256}, name=name)
        if dry_run:
            emit(g, fmt)
            return
        lines = log_lines_wanted(quiet, fmt == OutputFormat.json)
        if lines:
            route_progress_logs()
        st = RunStore(store)
        with resumable():
            run_grid(g, st, workers=workers, quiet=lines)
        cells = best_per_cell(sweep_table(st.path, g.name))
        shown = ("N", "D", "C", "lr", "lr_grid", "batch_tokens", "loss", "n_runs")
        rows = [{k: float(f"{cells[k][i]:.4g}") for k in shown} for i in range(len(cells["N"]))]
        emit(rows, fmt, title=f"{g.name}: best LR and batch per cell -> {st.path} (next: scalelab fit --law "
                              f"hyperparams --store {st.path} --grid {g.name} --out hp.json)")


class _HyperparamResult:
    def __init__(self, fit, saved_to: Path | None) -> None:
        self.fit, self.saved_to = fit, saved_to

    def to_dict(self) -> dict:
        return {**self.fit.to_dict(), "saved_to": None if self.saved_to is None else str(self.saved_to)}

    def report(self) -> str:
        return self.fit.report() + (f"\n  wrote {self.saved_to}" if self.saved_to else "")


def fit_sweep(store: Path | None, law: str, grid: str | None, out: Path | None) -> _HyperparamResult:
    """``scalelab fit --law hyperparams``: the sweep runs of ``store`` -> hyperparameter laws."""
    from ..errors import ConfigError, explain
    from ..laws.hpfit import fit_hyperparams
    from ..tunnel.sweep import sweep_table

    if law != "hyperparams":
        raise ConfigError(explain("--grid selects sweep runs for the hyperparameter laws only", value=law,
                                  fix="pass --law hyperparams, or drop --grid"))
    if store is None or store.suffix.lower() in (".csv", ".tsv", ".json", ".jsonl", ".parquet"):
        raise ConfigError(explain("--law hyperparams reads a run store", value=str(store),
                                  fix="pass --store RUNS.sqlite (written by `scalelab tunnel sweep`)"))
    fit = fit_hyperparams(sweep_table(store, grid), source=f"{store}{f' grid {grid}' if grid else ' sweep:* grids'}")
    if out is not None:
        fit.save(out)
    return _HyperparamResult(fit, out)
