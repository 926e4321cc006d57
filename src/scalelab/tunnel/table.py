"""The run table: the one way runs leave the tunnel for the laws, reports and files.

The table's columns are a documented contract (docs/run-table.md, :data:`RUN_TABLE_COLUMNS`): the laws read
runs through it (``load_runs(table)``) and never open a store themselves. Conventions (DESIGN.md principle
2): ``N`` is the total parameter count (Chinchilla's convention; ``N_active`` and ``N_non_embedding`` are
beside it); ``D`` is the tokens trained on; ``C`` is the training compute of
:func:`scalelab.planner.flops.training_flops` (``6 N_active D``; Kaplan et al. 2020 eq. 2.1, Hoffmann et
al. 2022 §3) and ``C_measured`` the trainer's own FLOP count; ``loss`` is the final validation loss in nats
per token. ``step_s``/``pred_step_s`` and ``peak_mem_bytes``/``pred_mem_bytes`` are measured and planned
performance (docs/plan-vs-measured.md).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError, explain
from ..planner.flops import training_flops
from .connection import StoreConnection
from .records import RunRecord, default_store_path
from .schema import PERF_COLUMNS

__all__ = ["EXPORT_FORMATS", "RUN_TABLE_COLUMNS", "TEXT_COLUMNS", "RunTables", "load_runs_for_fit", "runs_table"]


class RunTables(StoreConnection):
    """The table half of the run store: runs and curves as columns, and their export to files."""

    def runs_table(self, *, status: str | Sequence[str] | None = ("completed",), kind: str | None = None,
                   grid: str | None = None) -> dict[str, list[Any]]:
        """Runs as columns (:data:`RUN_TABLE_COLUMNS`: ``N``, ``D``, ``C``, ``loss``, ...), one entry per
        run, for fits and export; conventions in this module's docstring and docs/run-table.md."""
        cols: dict[str, list[Any]] = {k: [] for k in RUN_TABLE_COLUMNS}
        for r in self.runs(status=status, kind=kind, grid=grid):
            row = table_row(r)
            for k in RUN_TABLE_COLUMNS:
                cols[k].append(row[k])
        return cols

    def runs_frame(self, **filters: Any) -> Any:
        """:meth:`runs_table` as a pandas DataFrame (needs the ``data`` extra)."""
        try:
            import pandas as pd
        except ImportError as e:
            from ..errors import MissingDependencyError

            raise MissingDependencyError("pandas", "data") from e
        return pd.DataFrame(self.runs_table(**filters), columns=list(RUN_TABLE_COLUMNS))

    def curves_table(self, *, status: str | Sequence[str] | None = None) -> dict[str, list[Any]]:
        """Every curve point as columns (``hash``, ``step``, ``tokens``, ``train_loss``, ``val_loss``, ``lr``)."""
        keep = None if status is None else {r.hash for r in self.runs(status=status)}
        cols: dict[str, list[Any]] = {k: [] for k in ("hash", "step", "tokens", "train_loss", "val_loss", "lr")}
        for r in self._read("SELECT run_hash, step, tokens, train_loss, val_loss, lr FROM curves "
                            "ORDER BY run_hash, step"):
            if keep is not None and r["run_hash"] not in keep:
                continue
            cols["hash"].append(r["run_hash"])
            for k in ("step", "tokens", "train_loss", "val_loss", "lr"):
                cols[k].append(r[k])
        return cols

    def export(self, out: str | os.PathLike[str], *, format: Literal["csv", "parquet", "json"] = "csv",
               what: Literal["runs", "curves"] = "runs", status: str | Sequence[str] | None = None) -> Path:
        """Write the runs (or every curve point) to CSV, Parquet or JSON (a list of row objects, missing
        values as null); return the path written."""
        out = Path(out)
        if format not in EXPORT_FORMATS:
            raise ConfigError(explain("unknown export format", value=format, allowed=", ".join(EXPORT_FORMATS)))
        own = {Path(os.path.abspath(f"{self.path}{suffix}")) for suffix in ("", "-wal", "-shm", "-journal")}
        if Path(os.path.abspath(out)) in own:
            raise ConfigError(explain("the export would overwrite the run store itself", value=str(out),
                                      fix="name a new file, e.g. runs.csv"))
        if not out.parent.is_dir():  # said of OUT itself, not of the .partial file written first
            raise FileNotFoundError(2, "No such file or directory", str(out))
        table = self.runs_table(status=status) if what == "runs" else self.curves_table(status=status)
        final, out = out, out.with_name(out.name + ".partial")   # written whole, then moved into place
        if format == "json":
            names = list(table)
            rows = [{n: (None if isinstance(v, float) and not math.isfinite(v) else v) for n, v in zip(names, row,
                                                                                                     strict=True)}
                    for row in zip(*(table[n] for n in names), strict=True)]
            out.write_text(json.dumps(rows, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        elif format == "csv":
            names = list(table)
            with open(out, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(names)
                for row in zip(*(table[n] for n in names), strict=True):
                    w.writerow(["" if v is None else v for v in row])
        elif format == "parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError as e:
                from ..errors import MissingDependencyError

                raise MissingDependencyError("pyarrow", "data") from e
            pq.write_table(pa.table(table), out)
        os.replace(out, final)
        return final


#: File formats :meth:`RunStore.export` writes, each also the file suffix that selects it.
EXPORT_FORMATS = ("csv", "parquet", "json")


RUN_TABLE_COLUMNS = (
    "hash", "parent_hash", "kind", "status", "grid", "N", "N_active", "N_non_embedding", "D", "C", "C_measured",
    "loss", "train_loss", "n_layers", "d_model", "n_heads", "d_ff", "vocab_size", "moe_experts", "moe_top_k",
    "lr", "batch_size", "seq_len", "schedule", "seed", "corpus", "tokenizer", "branch_at_tokens", "decay_tokens",
    "steps", "tokens_per_s", "wall_s", *PERF_COLUMNS,
)


def table_row(r: RunRecord) -> dict[str, Any]:
    cfg, m = r.config, r.config.get("model", {})
    moe = m.get("moe") or {}
    D = r.tokens_seen
    N_act = r.n_params_active
    return {
        "hash": r.hash, "parent_hash": r.parent_hash, "kind": r.kind, "status": r.status, "grid": r.grid,
        "N": r.n_params, "N_active": N_act, "N_non_embedding": r.n_params_non_embedding, "D": D,
        "C": training_flops(float(N_act), float(D)) if N_act and D else None, "C_measured": r.flops,
        "loss": r.final_val_loss, "train_loss": r.final_train_loss,
        "n_layers": m.get("n_layers"), "d_model": m.get("d_model"), "n_heads": m.get("n_heads"),
        "d_ff": m.get("d_ff"), "vocab_size": m.get("vocab_size"), "moe_experts": moe.get("n_experts"),
        "moe_top_k": moe.get("top_k"), "lr": cfg.get("lr"), "batch_size": cfg.get("batch_size"),
        "seq_len": cfg.get("seq_len"), "schedule": cfg.get("schedule"), "seed": cfg.get("seed"),
        "corpus": cfg.get("corpus"), "tokenizer": cfg.get("tokenizer"), "branch_at_tokens": r.branch_at_tokens,
        "decay_tokens": r.decay_tokens, "steps": r.steps, "tokens_per_s": r.tokens_per_s, "wall_s": r.wall_s,
        **{k: getattr(r, k) for k in PERF_COLUMNS},
    }


def load_runs_for_fit(path: str | os.PathLike[str] | None = None, *, status: str | Sequence[str] = ("completed",),
                      kind: str | None = None, grid: str | None = None) -> dict[str, Any]:
    """Read a run store into numpy columns for the laws: ``N``, ``D``, ``C``, ``loss`` and the rest.

    Conventions are those of :meth:`RunStore.runs_table`: ``N`` total parameters, ``N_active`` those
    one token uses, ``D`` tokens trained on, ``C = 6 N_active D`` FLOPs
    (:func:`~scalelab.planner.flops.training_flops`), ``loss`` the final validation loss (nats per token).
    Numeric columns are float arrays (missing values are NaN); ``hash``, ``kind``,
    ``status`` etc. are object arrays. Decay branches are included (they are points of their own).

    >>> cols = load_runs_for_fit("runs.sqlite")                       # doctest: +SKIP
    >>> ChinchillaLaw().fit(cols["N"], cols["D"], cols["loss"])      # doctest: +SKIP
    """
    import numpy as np

    p = Path(path).expanduser() if path is not None else default_store_path()
    if not p.exists():
        raise FileNotFoundError(2, "No such file", str(p))
    table = runs_table(p, status=status, kind=kind, grid=grid)
    out: dict[str, Any] = {}
    for k, v in table.items():
        if k in TEXT_COLUMNS:
            out[k] = np.array(v, dtype=object)
        else:
            out[k] = np.array([np.nan if x is None else x for x in v], dtype=float)
    return out


#: Columns of the run table that hold text; every other column is a number (or missing).
TEXT_COLUMNS = frozenset({"hash", "parent_hash", "kind", "status", "grid", "schedule", "corpus", "tokenizer",
                          "device", "pred_device"})


def runs_table(path: str | os.PathLike[str] | None = None, *, status: str | Sequence[str] | None = ("completed",),
               kind: str | None = None, grid: str | None = None) -> dict[str, list[Any]]:
    """The run table of the store at ``path`` (default :func:`default_store_path`), read-only.

    This is what a layer above the laws hands to ``scalelab.laws.load_runs``:

    >>> from scalelab.laws import ChinchillaLaw, load_runs                       # doctest: +SKIP
    >>> ChinchillaLaw().fit(load_runs(runs_table("runs.sqlite"), n_convention="total"))   # doctest: +SKIP
    """
    from .store import RunStore

    p = Path(path).expanduser() if path is not None else default_store_path()
    with RunStore(p, readonly=True) as store:
        return store.runs_table(status=status, kind=kind, grid=grid)
