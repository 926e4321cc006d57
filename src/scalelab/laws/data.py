"""Runs in: CSV, Parquet, JSON, a pandas DataFrame, a dict of arrays, or a wind-tunnel run store.

Legend: ``N`` parameters (convention recorded: ``total`` or ``non-embedding``), ``D`` training tokens,
``C`` training FLOPs, ``L`` final loss (nats/token). When only ``C`` is given, ``D = C / (6 N)``
(Kaplan et al. 2020 §2.1; the derivation used by Besiroglu et al. 2024 for the digitised Chinchilla runs).

Columns are found by common names (``N``/``params``/``Model Size``..., ``D``/``tokens``..., ``C``/
``flops``/``Training FLOP``..., ``loss``/``L``/``val_loss``...), or mapped explicitly with arguments or a
small TOML file::

    [columns]
    N = "Model Size"
    C = "Training FLOP"
    loss = "loss"

    [conventions]
    N = "total"            # or "non-embedding"

Every problem is reported with the data rows at fault (0-based data rows; for CSV files, also the line
number in the file, header = line 1).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._csv import read_csv_file
from ..errors import ConfigError, DataError, explain
from ..units import FLOPS_PER_PARAM_TOKEN
from .wandb_csv import is_wandb_export
from .wandb_csv import prepare as prepare_wandb

__all__ = [
    "FLOPS_PER_PARAM_TOKEN", "STORE_SUFFIXES", "SYNONYMS", "Runs", "is_table", "load_runs", "load_table",
    "set_store_reader", "table_covariates",
]


#: Column names recognised for each canonical name (compared case-insensitively, spaces/underscores ignored).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "N": ("N", "params", "n_params", "parameters", "num_params", "model_size", "Model Size", "param_count",
          "n_parameters"),
    "D": ("D", "tokens", "n_tokens", "training_tokens", "Training Tokens", "num_tokens", "train_tokens"),
    "C": ("C", "compute", "flops", "training_flops", "Training FLOP", "train_flops", "C_flops"),
    "L": ("loss", "L", "final_loss", "val_loss", "eval_loss", "validation_loss"),
}
N_CONVENTIONS = ("total", "non-embedding", "active", "unknown")


def shown_name(name: str) -> str:
    """A canonical column name as messages show it: ``loss`` for the target ``L`` (the CLI's ``--loss``)."""
    return "loss" if name == "L" else name


def bad_value_hint(name: str, bad: np.ndarray) -> str:
    """Why values of canonical column ``name`` may be unusable, said only where it applies."""
    if name == "L":
        return " (a diverged run has no usable loss)"
    if name in ("N", "D", "C") and np.all(np.isfinite(bad)):
        return f" ({_QUANTITY[name]} is positive: check the values, and which column or array holds {name})"
    return ""


_QUANTITY = {"N": "a parameter count", "D": "a token count", "C": "a FLOP count"}


def _norm(s: str) -> str:
    return str(s).lower().replace(" ", "").replace("_", "").replace("-", "")


@dataclass
class Runs:
    """A table of runs ready for a law: numeric columns by canonical name plus provenance.

    ``columns`` holds float arrays (``N``, ``D``, ``C``, ``L`` and any other numeric column, under its own
    name); ``row_labels`` says how to name each row in messages; ``notes`` records derivations
    (``D = C/(6N)``) and dropped rows.
    """

    columns: dict[str, np.ndarray]
    source: str = "arrays"
    n_convention: str = "unknown"
    notes: list[str] = field(default_factory=list)
    row_labels: np.ndarray | None = None
    label_kind: str = "data rows (0-based)"
    #: canonical name -> the column the user's table calls it, so messages name ``my_loss``, not ``L``
    names: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return 0 if not self.columns else len(next(iter(self.columns.values())))

    def __getitem__(self, key: str) -> np.ndarray:
        return self.columns[key]

    def _labels(self, idx: np.ndarray, limit: int = 10) -> str:
        lab = idx if self.row_labels is None else self.row_labels[idx]
        shown = ", ".join(str(int(i)) for i in lab[:limit])
        more = f" ... ({idx.size} rows)" if idx.size > limit else ""
        return f"{self.label_kind} {shown}{more}"

    def shown(self, name: str) -> str:
        """How messages name canonical column ``name``: the user's column name, else ``loss`` for ``L``."""
        return self.names.get(name) or shown_name(name)

    def column(self, name: str, law_name: str = "") -> np.ndarray:
        """The column for canonical ``name``; a :class:`DataError` listing what was found if absent."""
        if name in self.columns:
            return self.columns[name]
        alias = {"loss": "L", "L": "L"}.get(name)
        if alias and alias in self.columns:
            return self.columns[alias]
        if name == "M" and "N" in self.columns and "D" in self.columns:
            # Gadre et al. 2024's token multiplier M = D / N (tokens per parameter)
            return self.columns["D"] / self.columns["N"]
        raise DataError(explain(
            f"the runs have no column for {shown_name(name)!r}"
            + (f" (needed by law {law_name!r})" if law_name else ""),
            value=sorted(self.columns), allowed=f"a column named {name!r} or mapped to it",
            fix=f"map it: --col {name}=<your column> (CLI) or load_runs(..., columns={{'{name}': '<column>'}})"))

    def law_inputs(self, law: Any) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray | None]:
        """(covariates, target, weights) for ``law``, validated with row numbers."""
        names = [*law.covariates, law.target]
        arrays = [self.column(n, law.name) for n in names]
        ep = self.columns.get("epochs")
        if "U" in law.covariates and ep is not None:
            bad = np.flatnonzero(np.isfinite(ep) & (ep < 1 - 1e-9))
            if bad.size:
                raise DataError(explain(
                    f"column 'epochs' is below 1 at {self._labels(bad)}", value=[float(ep[i]) for i in bad[:5]],
                    allowed="at least one epoch (tokens seen >= unique tokens)",
                    fix="check the mapping of unique tokens (U) and tokens seen (D): they may be swapped"))
        positive = law.covariates if law.positive_covariates is None else law.positive_covariates
        for n, a in zip(names, arrays, strict=True):
            must_pos = n in positive or n == law.target
            bad = np.flatnonzero(~np.isfinite(a) | ((a <= 0) if must_pos else False))
            if bad.size:
                raise DataError(explain(
                    f"column {self.shown(n)!r} has NaN, infinite{' or non-positive' if must_pos else ''} values "
                    f"at {self._labels(bad)}", value=[float(a[i]) for i in bad[:5]],
                    allowed="finite" + (" positive numbers" if must_pos else " numbers"),
                    fix=f"drop or correct those rows{bad_value_hint(n, a[bad])}"))
        w = self.columns.get("weight")
        return tuple(arrays[:-1]), arrays[-1], w

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.columns)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "n_runs": len(self), "n_convention": self.n_convention,
                "columns": sorted(self.columns), "notes": list(self.notes)}


def _read_table(source: Any) -> tuple[dict[str, Any], str, str, int]:
    """Return (raw columns, source label, label kind, label offset); columns of unequal length are a
    DataError (a column-oriented JSON file or dict with a value missing would otherwise pair the wrong runs)."""
    raw, label, kind, offset = _read_columns(source)
    sizes = {k: n for k, n in ((k, _n_values(v)) for k, v in raw.items()) if n is not None}
    if len(set(sizes.values())) > 1:
        raise DataError(explain(f"the columns of {label} differ in length", value=sizes,
                                allowed="one value per run in every column",
                                fix="add the missing values (null for unknown ones), or drop the short column"))
    return raw, label, kind, offset


def _n_values(v: Any) -> int | None:
    """How many values a column holds; None for a scalar or text (not a column)."""
    if isinstance(v, (str, bytes, Mapping)):
        return None
    try:
        return len(v)
    except TypeError:  # a scalar, or a 0-d array
        return None


def _read_columns(source: Any) -> tuple[dict[str, Any], str, str, int]:
    """:func:`_read_table` before the length check."""
    if isinstance(source, Mapping):
        return {str(k): v for k, v in source.items()}, "dict", "data rows (0-based)", 0
    if hasattr(source, "columns") and hasattr(source, "to_dict") and hasattr(source, "iloc"):  # DataFrame
        return {str(c): source[c].to_numpy() for c in source.columns}, "DataFrame", "data rows (0-based)", 0
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(path))
    suf = path.suffix.lower()
    if suf in STORE_SUFFIXES:
        return _read_store(path)
    if suf == ".csv" or suf == ".tsv":
        cols, lines = read_csv_file(path)
        if lines == list(range(2, len(lines) + 2)):  # no blank line skipped: row i is line i + 2
            return dict(cols), str(path), "CSV lines", 2
        return dict(cols), str(path), "data rows (1-based, blank lines not counted)", 1
    if suf in (".parquet", ".pq"):
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - pandas is a declared extra
            from ..errors import MissingDependencyError

            raise MissingDependencyError("pandas", "data") from e
        try:
            df = pd.read_parquet(path)
        except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
            raise DataError(explain(f"{path} is not a readable Parquet file", value=str(e).split(". ")[0],
                                    fix="check that the file was written completely, or export the runs "
                                        "again")) from None
        return {str(c): df[c].to_numpy() for c in df.columns}, str(path), "data rows (0-based)", 0
    if suf in (".json", ".jsonl"):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise DataError(explain(f"{path} is not UTF-8 text (byte {e.start})",
                                    fix="save it as UTF-8 JSON, or pass a CSV or Parquet file")) from None
        # JSON Lines: the file's line number, not the parser's (always 1 within a line)
        pieces = list(enumerate(text.splitlines(), 1)) if suf == ".jsonl" else [(0, text)]
        decoded = []
        for lineno, piece in pieces:
            try:
                decoded.append(json.loads(piece) if piece.strip() or not lineno else None)
            except json.JSONDecodeError as e:
                raise DataError(explain(f"{path} is not valid JSON ({e.msg}, line {lineno or e.lineno})",
                                        fix="fix that line (a record cut short?) or drop it")) from None
        recs = [r for r in decoded if r is not None] if suf == ".jsonl" else decoded[0]
        if isinstance(recs, dict) and "law" in recs and "params" in recs:  # `fit` given its own --out file
            raise DataError(explain(f"{path} is a saved fit (of the {recs['law']} law), not a table of runs",
                                    fix=f"forecast from it with `scalelab forecast {path} --compute C`, or pass "
                                        "the runs it was fitted on"))
        if isinstance(recs, dict) and "runs" in recs:
            recs = recs["runs"]
        if isinstance(recs, dict):  # column-oriented
            return {str(k): v for k, v in recs.items()}, str(path), "data rows (0-based)", 0
        if not isinstance(recs, list) or not all(isinstance(r, dict) for r in recs):
            raise DataError(explain(f"{path} must hold a list of run objects or an object of columns",
                                    value=type(recs).__name__))
        keys = []
        for r in recs:
            for k in r:
                if k not in keys:
                    keys.append(k)
        return {k: [r.get(k) for r in recs] for k in keys}, str(path), "data rows (0-based)", 0
    raise DataError(explain(f"cannot read runs from {path.name}", value=suf or "(no suffix)",
                            allowed=".csv, .tsv, .parquet, .json, .jsonl, or a run store (.sqlite)",
                            fix="convert the file, or load it with pandas and pass the DataFrame"))


#: Suffixes read as a wind-tunnel run store (through the reader a higher layer sets, :func:`set_store_reader`).
STORE_SUFFIXES = (".sqlite", ".db", ".sqlite3")

_store_reader: Callable[[Path], Mapping[str, Any]] | None = None


def set_store_reader(reader: Callable[[Path], Mapping[str, Any]] | None) -> None:
    """Let ``load_runs`` read run-store files through ``reader`` (path -> run table), or stop it (``None``).

    The laws never open a run store: they read runs through the run table, whose columns are documented in
    docs/run-table.md (``N``, ``N_active``, ``D``, ``C``, ``loss``, ...). A layer above both the laws and the
    tunnel (the CLI, the demo) sets ``scalelab.tunnel.runs_table`` here; Python code may do the same, or pass
    the table itself: ``load_runs(store=scalelab.tunnel.runs_table("runs.sqlite"))``.
    """
    global _store_reader
    _store_reader = reader


def _read_store(store: Any) -> tuple[dict[str, Any], str, str, int]:
    """Columns of a run table, given as the table itself or as a store file read by the set reader."""
    if isinstance(store, Mapping) or hasattr(store, "columns"):
        raw, _, _, _ = _read_table(store)
        return raw, "run table", "runs (0-based)", 0
    path = Path(store)
    if _store_reader is None:
        raise DataError(explain(
            f"the laws read runs through the run table, not the run store file {path.name}", value=str(path),
            fix="pass its table, load_runs(store=scalelab.tunnel.runs_table(path)), or call "
                "scalelab.laws.data.set_store_reader(scalelab.tunnel.runs_table) once; `scalelab fit` does this"))
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    return {str(k): v for k, v in _store_reader(path).items()}, f"run store {path}", "runs (0-based)", 0


def _to_float(values: Any, name: str, label_kind: str, offset: int) -> np.ndarray:
    arr = np.empty(len(values), dtype=float)
    bad: list[int] = []
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and v.strip() in ("", "nan", "NaN", "NA", "null", "None")):
            arr[i] = np.nan
            continue
        try:
            arr[i] = float(v)
        except (TypeError, ValueError):
            arr[i] = np.nan
            bad.append(i)
    if bad:
        raise DataError(explain(f"column {name!r} has non-numbers at {label_kind} "
                                f"{', '.join(str(i + offset) for i in bad[:10])}",
                                value=[values[i] for i in bad[:5]], fix="fix or drop those rows"))
    return arr


def _read_mapping_toml(path: str | Path) -> tuple[dict[str, str], dict[str, str]]:
    import tomllib

    p = Path(path)
    try:
        d = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(explain(f"{p} is not valid TOML: {e}")) from None
    unknown = set(d) - {"columns", "conventions"}
    if unknown:
        raise ConfigError(explain(f"{p} has unknown tables", value=sorted(unknown), allowed="[columns], [conventions]"))
    return dict(d.get("columns", {})), dict(d.get("conventions", {}))


def load_runs(source: Any = None, *, n: str | None = None, d: str | None = None, loss: str | None = None,
              compute: str | None = None, columns: Mapping[str, str] | None = None,
              config: str | Path | None = None, n_convention: str | None = None, store: str | Path | None = None,
              flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN, drop_top_loss: int = 0,
              min_tokens_per_param: float | None = None, weight: str | None = None,
              spellings: Mapping[str, str] | None = None, source_label: str | None = None) -> Runs:
    """Read runs and map their columns to ``N``, ``D``, ``C``, ``L`` (and any other numeric column).

    Parameters
    ----------
    source : path (.csv/.tsv/.parquet/.json/.jsonl/.sqlite), DataFrame or dict of arrays
    n, d, loss, compute : source column names for ``N``, ``D``, ``L``, ``C`` (override auto-detection)
    columns : more mappings, canonical name -> source column (e.g. ``{"U": "unique_tokens"}``)
    config : a TOML file with ``[columns]`` and ``[conventions]`` tables (arguments win over it)
    n_convention : ``"total"``, ``"non-embedding"``, ``"active"`` or ``"unknown"`` (recorded, shown in
        reports; Hoffmann et al. count total parameters, Kaplan et al. non-embedding ones)
    store : a wind-tunnel run table (``scalelab.tunnel.runs_table(path)``; columns in docs/run-table.md) to
        read instead of ``source``, or a store file when a reader is set (:func:`set_store_reader`)
    drop_top_loss : drop this many runs with the highest loss (Besiroglu et al. 2024 drop 5 outliers)
    min_tokens_per_param : drop the runs with fewer training tokens per parameter (``D / N``) than this;
        ``1`` keeps the runs that saw at least as many tokens as they have parameters. Without it, runs
        below 1 are kept and named in a note (docs/laws.md, *Runs below one token per parameter*)
    weight : column holding a per-run weight
    spellings : how messages and notes name these arguments, e.g. ``{"n_convention": "--n-convention"}``
        (the CLI passes its flags); by default the argument names, ``n_convention=``
    source_label : how messages name a dict or DataFrame source (e.g. "MLflow experiment 'x'"); default
        ``dict`` / ``DataFrame``

    Examples
    --------
    >>> runs = load_runs("svg_extracted_data.csv", n="Model Size", compute="Training FLOP",
    ...                  drop_top_loss=5)                                    # doctest: +SKIP
    >>> ChinchillaLaw().fit(runs)                                            # doctest: +SKIP
    """
    spelled = {"n_convention": "n_convention=", "drop_top_loss": "drop_top_loss", "loss": "load_runs(..., loss='COL')",
               "min_tokens_per_param": "min_tokens_per_param=", "store": "store=", "source": "source",
               **(spellings or {})}
    if store is not None and source is not None and not isinstance(source, Runs):
        # which one to fit is the user's call: reading the store alone silently dropped the file's runs
        shown = source if isinstance(source, (str, Path)) else type(source).__name__
        raise ConfigError(explain(f"runs given twice: {spelled['source']} and {spelled['store']}",
                                  value={"source": str(shown), "store": str(getattr(store, "path", store))},
                                  fix="pass one of them (to fit both, export the store with `scalelab tunnel "
                                      "export` and join the tables)"))
    store_default_conv = None
    if store is not None or (isinstance(source, (str, Path)) and Path(source).suffix.lower() in STORE_SUFFIXES):
        # the run table's N is the total parameter count (docs/run-table.md)
        store_default_conv = "total"
    if store is not None:
        raw, label, kind, offset = _read_store(store)
    elif source is None:
        raise DataError(explain("no runs given", fix="pass a file, a DataFrame, a dict of arrays or store="))
    elif isinstance(source, Runs):
        return source
    else:
        raw, label, kind, offset = _read_table(source)
    if source_label:
        label = source_label
    notes: list[str] = []
    mapping: dict[str, str] = {}
    rows, wb = None, None
    if kind == "CSV lines" and is_wandb_export(raw):
        wb = prepare_wandb(raw, label, SYNONYMS)
        raw, rows, mapping, notes = wb.columns, wb.rows, dict(wb.hints), list(wb.notes)
    conv: dict[str, str] = {}
    if config is not None:
        from_toml, conv = _read_mapping_toml(config)
        mapping.update({("L" if k == "loss" else k): v for k, v in from_toml.items()})
    for k, v in (columns or {}).items():
        mapping["L" if k == "loss" else k] = v
    for k, column in (("N", n), ("D", d), ("L", loss), ("C", compute), ("weight", weight)):
        if column:
            mapping[k] = column
    if wb is not None:  # say which W&B column stands for N, D, C and the loss, where the user did not
        notes += [n for c, n in wb.hint_notes.items() if mapping.get(c) == wb.hints[c]]
    found = list(raw)
    normed = {_norm(c): c for c in found}
    resolved: dict[str, str] = {}
    for canon, col in mapping.items():
        if col not in raw:
            alt = normed.get(_norm(col))
            if alt is None:
                raise DataError(explain(f"column {col!r} (mapped to {shown_name(canon)}) is not in {label}",
                                        value=found, fix="use one of the columns found"))
            col = alt
        resolved[canon] = col
    roles: dict[str, list[str]] = {}
    for canon, col in resolved.items():
        roles.setdefault(col, []).append(shown_name(canon))
    twice = {col: names for col, names in roles.items() if len(names) > 1}
    if twice:  # `--n params --d params` fitted N against itself: every parameter ended on a bound
        col, names = next(iter(twice.items()))
        raise DataError(explain(f"column {col!r} is mapped to {' and '.join(names)}", value=dict(resolved),
                                allowed="one column per quantity", fix="map each quantity to its own column"))
    for canon, syns in SYNONYMS.items():
        if canon in resolved:
            continue
        for s in syns:
            if _norm(s) in normed and normed[_norm(s)] not in resolved.values():
                resolved[canon] = normed[_norm(s)]
                break
    if not raw or not found:
        raise DataError(explain(f"{label} holds no columns"))
    nrows = len(next(iter(raw.values())))
    if nrows == 0:
        raise DataError(explain(f"{label} holds no runs", fix="pass a table with at least one run per row"))
    cols: dict[str, np.ndarray] = {}
    used = set(resolved.values())
    for canon, col in resolved.items():
        cols[canon] = _to_float(list(raw[col]), col, kind, offset)
    for col, vals in raw.items():  # every other numeric column, under its own name
        if col in used or col in cols:
            continue
        try:
            arr = np.asarray(vals, dtype=float)
        except (TypeError, ValueError):
            try:
                arr = np.array([np.nan if v in ("", None) else float(v) for v in vals])
            except (TypeError, ValueError):
                continue
        if arr.ndim == 1 and arr.size == nrows:
            cols[col] = arr
    if "L" not in cols:
        raise DataError(explain(f"no loss column in {label}", value=found,
                                allowed="a column named loss, L, final_loss, val_loss or eval_loss",
                                fix=f"map it with {spelled['loss']}"))
    # a zero N or an overflowing product gives inf/NaN here; the law's input check names those rows
    with np.errstate(all="ignore"):
        if "D" not in cols and "C" in cols and "N" in cols:
            cols["D"] = cols["C"] / (flops_per_param_token * cols["N"])
            notes.append(f"D derived as C / ({flops_per_param_token:g} N)")
        elif "C" not in cols and "D" in cols and "N" in cols:
            cols["C"] = flops_per_param_token * cols["N"] * cols["D"]
            notes.append(f"C derived as {flops_per_param_token:g} N D")
    labels = (np.arange(nrows) if rows is None else rows) + offset
    if drop_top_loss:
        if drop_top_loss < 0 or drop_top_loss >= nrows:
            raise DataError(explain(f"{spelled['drop_top_loss']} must be between 0 and the number of runs",
                                    value=drop_top_loss, allowed=f"0..{nrows - 1}"))
        order = np.argsort(np.where(np.isnan(cols["L"]), -np.inf, cols["L"]), kind="stable")
        keep = np.sort(order[: nrows - drop_top_loss])
        dropped = np.setdiff1d(np.arange(nrows), keep)
        cols = {k: v[keep] for k, v in cols.items()}
        notes.append(f"dropped the {drop_top_loss} highest-loss runs ({kind} "
                     f"{', '.join(str(int(labels[i])) for i in dropped)})")
        labels = labels[keep]
    cols, labels = _tokens_per_param_floor(cols, labels, min_tokens_per_param, spelled["min_tokens_per_param"],
                                              kind, notes)
    nconv = n_convention or conv.get("N") or store_default_conv or "unknown"
    if nconv not in N_CONVENTIONS:
        raise ConfigError(explain(f"unknown N convention ({spelled['n_convention'].rstrip('=')})", value=nconv,
                                  allowed=", ".join(N_CONVENTIONS)))
    if nconv == "unknown" and "N" in cols:
        notes.append("N convention not stated (total vs non-embedding changes the exponents; "
                     f"pass {spelled['n_convention']})")
    return Runs(cols, source=label, n_convention=nconv, notes=notes, row_labels=labels, label_kind=kind,
                names={c: col for c, col in resolved.items() if c in cols})


def _tokens_per_param_floor(cols: dict[str, np.ndarray], labels: np.ndarray, minimum: float | None, spelled: str,
                               kind: str, notes: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Drop the runs below ``minimum`` tokens per parameter (``D / N``); without a minimum, name the runs below
    one in a note. Such runs are read early in training (Porian et al.'s IsoFLOP tables hold losses of 5-10
    nats at 0.01-1 tokens per parameter against 3.1-3.5 on the frontier), where the loss laws do not apply."""
    name = spelled.rstrip("= ")
    if "N" not in cols or "D" not in cols:
        if minimum is not None:
            raise DataError(explain(f"{name} needs both N and D (or C) columns", value=sorted(cols),
                                    fix="map them with n= and d= (or compute=)"))
        return cols, labels
    with np.errstate(all="ignore"):
        tpp = cols["D"] / cols["N"]
    if minimum is None:
        low = np.flatnonzero(tpp < 1.0)
        if low.size:
            notes.append(f"{low.size} run(s) saw fewer tokens than parameters (D/N < 1; {kind} "
                         f"{_row_list(labels[low])}): often losses read early in training, which loss laws fit poorly "
                         f"(Porian et al.'s IsoFLOP tables); check them, or drop them with {spelled}1")
        return cols, labels
    if not (math.isfinite(float(minimum)) and float(minimum) > 0):
        raise DataError(explain(f"{name} must be a positive number", value=minimum, allowed="> 0, e.g. 1"))
    keep = ~(tpp < float(minimum))  # NaN rows stay, for the law's own input check to name them
    if not keep.any():
        raise DataError(explain(f"every run is below {float(minimum):g} tokens per parameter ({name})",
                                value=f"D/N up to {np.nanmax(tpp):.3g}", fix=f"lower {name} or check N and D"))
    if not keep.all():
        notes.append(f"dropped {int((~keep).sum())} run(s) below {float(minimum):g} token(s) per parameter ({kind} "
                     f"{_row_list(labels[~keep])})")
    return {k: v[keep] for k, v in cols.items()}, labels[keep]


def _row_list(rows: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    return shown + (f" and {rows.size - limit} more" if rows.size > limit else "")


#: Keyword names that ``fit(df, ...)`` and ``predict(df, ...)`` map to canonical columns.
_KEYWORD_CANON = {"n": "N", "d": "D", "loss": "L", "l": "L", "y": "L", "compute": "C", "c": "C", "weight": "weight"}


def is_table(obj: Any) -> bool:
    """A pandas (or pandas-like) DataFrame, or a dict of columns: what ``fit(df, n=..., ...)`` accepts."""
    if isinstance(obj, Runs):
        return False
    return isinstance(obj, Mapping) or (hasattr(obj, "columns") and hasattr(obj, "iloc"))


def _canonical(columns: Mapping[str, Any], covariates: tuple[str, ...]) -> dict[str, str]:
    """``{"n": "params", "u": "unique"}`` -> ``{"N": "params", "U": "unique"}`` for a law's covariates."""
    out: dict[str, str] = {}
    for k, v in columns.items():
        if not isinstance(v, str):
            raise ConfigError(explain(f"column name for {k!r} must be a string", value=type(v).__name__,
                                      fix=f"e.g. {k}='params'"))
        canon = next((c for c in covariates if c == k), None) or next(
            (c for c in covariates if c.lower() == k.lower()), None) or _KEYWORD_CANON.get(k.lower(), k)
        out[canon] = v
    return out


def load_table(table: Any, law: Any, columns: Mapping[str, Any]) -> Runs:
    """A DataFrame or dict of columns as :class:`Runs`, with ``columns`` naming the law's inputs
    (``n="params", d="tokens", loss="loss"``; other covariates by their name, ``u="unique_tokens"``)."""
    canon = _canonical(columns, tuple(law.covariates))
    def take(c: str) -> str | None:
        return canon.pop(c, None)

    return load_runs(table, n=take("N"), d=take("D"), loss=take("L"), compute=take("C"), weight=take("weight"),
                     columns=canon)


def table_covariates(table: Any, law: Any, columns: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
    """The law's covariate arrays from a DataFrame or dict of columns (no loss column needed).

    Columns are named in ``columns`` or found by the names :func:`load_runs` recognises; ``D`` is
    derived as ``C / (6 N)`` when only compute is given.
    """
    raw, label, kind, offset = _read_table(table)
    canon = _canonical(columns, tuple(law.covariates))
    normed = {_norm(c): c for c in raw}
    found: dict[str, np.ndarray] = {}

    def lookup(name: str) -> str | None:
        if name in canon:
            col = canon[name]
            if col in raw:
                return col
            if _norm(col) in normed:
                return normed[_norm(col)]
            raise DataError(explain(f"column {col!r} (mapped to {name}) is not in the {label}", value=sorted(raw),
                                    fix="use one of the columns found"))
        for s in (name, *SYNONYMS.get(name, ())):
            if _norm(s) in normed:
                return normed[_norm(s)]
        return None

    for c in (*law.covariates, "N", "C"):
        col = lookup(c)
        if col is not None:
            found[c] = _to_float(list(raw[col]), col, kind, offset)
    if "D" in law.covariates and "D" not in found and "C" in found and "N" in found:
        found["D"] = found["C"] / (FLOPS_PER_PARAM_TOKEN * found["N"])
    missing = [c for c in law.covariates if c not in found]
    if missing:
        raise DataError(explain(f"the {label} has no column for {', '.join(missing)} (needed by law {law.name!r})",
                                value=sorted(raw), allowed="a column of that name, or one mapped to it",
                                fix=", ".join(f"{m.lower()}='<your column>'" for m in missing) + " in the call"))
    return tuple(found[c] for c in law.covariates)
