"""Reading mixture and loss tables from CSV, without pandas.

A mixture table has one column per domain (weights, each row summing to 1) and optionally an ``index``
column naming the run; a loss table has the same optional ``index`` and one column per measured loss.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._csv import read_csv_columns, to_floats
from ..errors import DataError, explain, suggest

INDEX = "index"
#: Rows whose weights sum within this of 1 are renormalised; further off is an error.
SUM_TOLERANCE = 1e-2


def read_mixtures(path: str | Path) -> tuple[list[str] | None, list[str], np.ndarray]:
    """``(index or None, domain names, weights (n, d))``; rows are checked and renormalised to sum to 1."""
    cols = read_csv_columns(path)
    index = cols.pop(INDEX, None)
    domains = list(cols)
    if not domains:
        raise DataError(explain(f"{path} has no domain columns", fix="add one column of weights per domain"))
    W = np.column_stack([to_floats(cols[d], f"{path}: column {d!r}") for d in domains])
    return index, domains, check_weights(W, str(path))


def check_weights(W: np.ndarray, where: str) -> np.ndarray:
    """Weights must be >= 0 with rows summing to 1 (within SUM_TOLERANCE, then renormalised)."""
    if np.any(W < 0):
        r = int(np.argwhere(W < 0)[0][0])
        raise DataError(explain(f"{where}: negative domain weight in row {r + 1}", value=W[r].tolist(),
                                allowed="weights >= 0", fix="weights are fractions of the training tokens"))
    s = W.sum(axis=1)
    off = np.abs(s - 1) > SUM_TOLERANCE
    if np.any(off):
        r = int(np.argmax(off))
        raise DataError(explain(f"{where}: the weights of row {r + 1} sum to {s[r]:.4g}, not 1", value=W[r].tolist(),
                                allowed=f"rows summing to 1 within {SUM_TOLERANCE}",
                                fix="divide each row by its sum, or drop non-domain columns"))
    return W / s[:, None]


def read_target(path: str | Path, target: str) -> tuple[list[str] | None, np.ndarray]:
    """``(index or None, losses)`` of column ``target`` in a loss table."""
    cols = read_csv_columns(path)
    index = cols.pop(INDEX, None)
    if target not in cols:
        close = suggest(target, cols)
        raise DataError(explain(f"{path} has no column {target!r}", value=target,
                                allowed=", ".join(cols) if len(cols) <= 20 else f"{len(cols)} columns",
                                fix=f"did you mean {close[0]!r}?" if close else "pass --target with a column name"))
    y = to_floats(cols[target], f"{path}: column {target!r}")
    if np.any(y <= 0):
        raise DataError(explain(f"{path}: column {target!r} holds a loss <= 0", value=float(y[y <= 0][0]),
                                allowed="losses > 0", fix="pass a loss column (cross-entropy in nats)"))
    return index, y


def pair_rows(mix_index: list[str] | None, W: np.ndarray, loss_index: list[str] | None,
              y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair mixtures with losses by ``index`` when both tables have one, else by order."""
    if mix_index is None or loss_index is None:
        if len(W) != len(y):
            raise DataError(explain("the mixture and loss tables have different row counts and no shared "
                                    "'index' column to pair them", value=(len(W), len(y)),
                                    fix="add an 'index' column to both, or give them the same rows in order"))
        return W, y
    pos = {k: i for i, k in enumerate(loss_index)}
    missing = [k for k in mix_index if k not in pos]
    if missing:
        raise DataError(explain("mixture rows without a loss row of the same index", value=missing[:5],
                                fix="add their losses, or drop those mixtures"))
    return W, y[[pos[k] for k in mix_index]]
