"""One CSV reader for every table scalelab reads: runs (``laws.data``), mixtures and losses
(``mixtures``), learning curves (``cli curve``) and the data sets it ships (``datasets``).

Standard library ``csv`` only (no pandas at import). A header row names the columns; names used twice get
pandas' suffixes (``lr``, ``lr.1``: a W&B export names a key once as config and once as summary); blank
lines are skipped; a row whose cell count differs from the header's is an error that names its line.
Cells come back as stripped strings, in file order: each reader converts them as its data needs.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from .errors import DataError, explain

__all__ = ["read_csv_columns", "read_csv_file", "read_csv_text", "to_floats", "unique_names"]


def unique_names(names: list[str]) -> list[str]:
    """Header names made unique as pandas does (``lr``, ``lr.1``, ``lr.2``)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}.{k}")
    return out


def read_csv_text(text: str, source: str, *, delimiter: str = ",", fix: str | None = None,
                  need_rows: bool = True) -> dict[str, list[str]]:
    """Columns of CSV ``text`` (read from ``source``, named in errors) as lists of stripped strings.

    ``fix`` replaces the advice given for a malformed file (a shipped file: "reinstall scalelab");
    ``need_rows=False`` accepts a header with no data rows (every column empty).
    """
    return _parse(text, source, delimiter=delimiter, fix=fix, need_rows=need_rows)[0]


def _parse(text: str, source: str, *, delimiter: str, fix: str | None = None,
           need_rows: bool = True) -> tuple[dict[str, list[str]], list[int]]:
    """:func:`read_csv_text`, and the record number (header = 1) of each data row kept."""
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows or not any(c.strip() for c in rows[0]):
        raise DataError(explain(f"{source} is empty", allowed="a CSV file with a header row and data rows",
                                fix=fix or "check the path and the file"))
    header = unique_names([h.strip() for h in rows[0]])
    other = [d for d in (";", "\t", "|") if d != delimiter and len(header) == 1 and d in header[0]]
    if other:  # a spreadsheet's ";"-separated export read as one column named "params;tokens;loss"
        shown = {";": "';'", "\t": "tabs", "|": "'|'"}[other[0]]
        raise DataError(explain(f"{source} looks separated by {shown}, not {delimiter!r}", value=header[0],
                                fix=fix or ("save it comma-separated (a spreadsheet in a locale with decimal "
                                            "commas writes ';': its decimal commas must become points too)"
                                            if other[0] != "\t" else "rename it to .tsv, or save it comma-separated")))
    body = [(i + 2, r) for i, r in enumerate(rows[1:]) if any(c.strip() for c in r)]
    if need_rows and not body:
        raise DataError(explain(f"{source} has a header but no data rows", value=header,
                                fix=fix or "add one row per run"))
    bad = [(line, len(r)) for line, r in body if len(r) != len(header)]
    if bad:
        more = f" (and lines {[line for line, _ in bad[1:6]]})" if len(bad) > 1 else ""
        raise DataError(explain(f"{source} line {bad[0][0]} has {bad[0][1]} fields, the header has "
                                f"{len(header)}{more}",
                                fix=fix or "make every line as long as the header (a stray comma?)"))
    return {h: [r[j].strip() for _, r in body] for j, h in enumerate(header)}, [line for line, _ in body]


def read_csv_columns(path: str | Path, *, delimiter: str | None = None) -> dict[str, list[str]]:
    """Columns of the CSV (or, by suffix, TSV) file at ``path``; see :func:`read_csv_text`."""
    return read_csv_file(path, delimiter=delimiter)[0]


def read_csv_file(path: str | Path, *, delimiter: str | None = None) -> tuple[dict[str, list[str]], list[int]]:
    """:func:`read_csv_columns`, and the line number of each data row kept (blank lines are skipped, so a
    caller that names rows by line must use these rather than count)."""
    path = Path(path)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
    except UnicodeDecodeError as e:
        raise DataError(explain(f"{path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})",
                                fix=f"convert it, e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed.csv`")) from None
    return _parse(text, str(path), delimiter=delimiter)


def to_floats(values: list[str], what: str) -> np.ndarray:
    """CSV cells as finite floats; ``what`` (e.g. "column 'loss'") names the column in errors."""
    out = np.empty(len(values))
    for i, v in enumerate(values):
        try:
            out[i] = float(v)
        except ValueError:
            raise DataError(explain(f"{what}, data row {i + 1}, is not a number", value=v,
                                    fix="write plain decimal numbers (no units or text)")) from None
        if not math.isfinite(out[i]):
            raise DataError(explain(f"{what}, data row {i + 1}, is not finite", value=v,
                                    fix="drop the row or fill the value")) from None
    return out
