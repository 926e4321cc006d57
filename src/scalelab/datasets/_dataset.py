"""The two types behind :mod:`scalelab.datasets`: :class:`DatasetInfo` (what a shipped table is, where it
comes from, under which licence) and :class:`Dataset` (that table loaded, with the same metadata).

Tables are read with the standard library's ``csv`` module into numpy arrays, so loading needs neither
pandas nor pyarrow; :attr:`Dataset.frame` and Parquet export import pandas on demand.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from .._csv import read_csv_text
from ..errors import ConfigError, DataError, MissingDependencyError, explain

__all__ = ["EXPORT_SUFFIXES", "Dataset", "DatasetInfo"]

#: Output formats of :meth:`Dataset.export`, chosen by the file's suffix.
EXPORT_SUFFIXES = (".csv", ".json", ".parquet")


def data_folder(folder: str) -> Traversable:
    """The shipped folder ``scalelab/datasets/data/<folder>`` (its data files, LICENSE and NOTICE)."""
    return resources.files("scalelab.datasets") / "data" / folder


@dataclass(frozen=True)
class DatasetInfo:
    """One shipped table: its files, provenance, licence and the meaning of its columns.

    ``column_docs`` describes each column (with its unit); ``column_patterns`` describes families of
    columns by regular expression (``acc_<task>``), the template filled with the match's groups. The
    mappings are read-only: the registry is shared by every loaded table.
    """

    name: str
    """Registry name, as ``get_dataset`` and ``scalelab datasets export`` take it."""
    title: str
    """One line saying what the table is."""
    loader: str
    """The public call that returns it, e.g. ``load_porian2024(table="exponents")``."""
    folder: str
    """Sub-folder of ``scalelab/datasets/data`` holding the files with their LICENSE and NOTICE."""
    files: tuple[str, ...]
    """CSV files; two files are joined column-wise on ``key`` (same rows in the same order)."""
    n_rows: int
    """Documented number of rows (as the source's PROVENANCE gives it); loading checks it."""
    licence: str
    """SPDX identifier of the source's licence (``MIT``, ``Apache-2.0``)."""
    citation: str
    """Full reference to cite when using the data."""
    short_citation: str
    """Author-year form for tables."""
    source: str
    """Repository URL and the commit the files come from."""
    description: str
    """What the rows are, how they were obtained, and caveats."""
    column_docs: Mapping[str, str] = field(default_factory=dict)
    """Column -> what it holds, with its unit."""
    column_patterns: tuple[tuple[str, str], ...] = ()
    """(regular expression, template) describing families of columns, e.g. ``acc_<task>``."""
    key: str | None = None
    """Join column when ``files`` holds two files."""
    law_columns: Mapping[str, str] = field(default_factory=dict)
    """Canonical law name (``N``, ``D``, ``C``, ``L``, ``U``) -> column, for ``scalelab.laws.load_runs``."""
    n_convention: str | None = None
    """How ``N`` counts parameters (``total``, ``non-embedding``), where the source says; else None."""
    features: str | None = None
    """Regular expression naming the input columns of a regression table (RegMix's domain weights)."""
    targets: str | None = None
    """Regular expression naming its output columns (RegMix's per-domain losses)."""

    def __post_init__(self) -> None:
        for name in ("column_docs", "law_columns"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    @property
    def licence_file(self) -> Traversable:
        """The licence text shipped beside the data (the original licence, with its copyright line)."""
        return data_folder(self.folder) / "LICENSE"

    @property
    def notice_file(self) -> Traversable:
        """Attribution: source repository, commit, authors, files and what was changed."""
        return data_folder(self.folder) / "NOTICE"

    def describe_column(self, column: str) -> str:
        """The description of ``column`` (its unit included), or ``""`` when the registry has none."""
        if column in self.column_docs:
            return self.column_docs[column]
        for pattern, template in self.column_patterns:
            m = re.fullmatch(pattern, column)
            if m:
                return template.format(*m.groups())
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "rows": self.n_rows, "licence": self.licence,
                "citation": self.citation, "short_citation": self.short_citation, "source": self.source,
                "loader": self.loader, "files": [f"{self.folder}/{f}" for f in self.files],
                "law_columns": dict(self.law_columns), "n_convention": self.n_convention}


@dataclass(frozen=True, eq=False)  # compared by identity: numpy columns have no single truth value
class Dataset(DatasetInfo):
    """A published run table with its metadata (the ``sklearn.datasets`` Bunch idea, typed): every field of
    :class:`DatasetInfo` (``citation``, ``licence``, ``source``, ``description``, ``law_columns``...) plus
    the rows.

    ``data`` maps each column name to a numpy array (int64, float64 with NaN for empty cells, or str);
    ``frame`` gives the same table as a pandas DataFrame; ``columns`` describes every column with its unit.
    """

    data: dict[str, np.ndarray] = field(kw_only=True)
    """Column name -> values, in the file's column order."""

    def __len__(self) -> int:
        return len(next(iter(self.data.values())))

    @property
    def columns(self) -> dict[str, str]:
        """Every column of the table -> what it holds, with its unit."""
        return {c: self.describe_column(c) for c in self.data}

    @property
    def feature_names(self) -> list[str]:
        """Input columns of a regression table (RegMix's 17 domain weights); empty for run tables."""
        return [c for c in self.data if self.features and re.fullmatch(self.features, c)]

    @property
    def target_names(self) -> list[str]:
        """Output columns of a regression table (RegMix's 13 per-domain losses); empty for run tables."""
        return [c for c in self.data if self.targets and re.fullmatch(self.targets, c)]

    @property
    def frame(self) -> Any:
        """The table as a new pandas DataFrame; ``frame.attrs`` carries name, citation, licence, source.

        Needs pandas (``pip install 'scalelab[data]'``).
        """
        try:
            import pandas as pd
        except ImportError as e:
            raise MissingDependencyError("pandas", "data") from e
        df = pd.DataFrame({k: v.copy() for k, v in self.data.items()})
        df.attrs.update(name=self.name, citation=self.citation, licence=self.licence, source=self.source)
        return df

    def to_dict(self) -> dict[str, Any]:
        """Metadata and column descriptions (not the rows: use ``data``, ``frame`` or :meth:`export`)."""
        return {**super().to_dict(), "description": self.description, "columns": self.columns}

    def report(self) -> str:
        """A text page: what the table is, whom to cite, its licence and every column."""
        width = max(len(c) for c in self.data)
        lines = [f"{self.name}: {self.title}",
                 f"  rows {len(self)}, columns {len(self.data)}; loader {self.loader}",
                 f"  licence {self.licence} (text: {self.folder}/LICENSE, attribution: {self.folder}/NOTICE)",
                 f"  source  {self.source}",
                 f"  cite    {self.citation}", "", "  " + self.description, ""]
        if self.law_columns:
            lines.append("  for scalelab.laws.load_runs: " + ", ".join(f"{k}={v}" for k, v in
                                                                        self.law_columns.items())
                         + (f" (N counts {self.n_convention} parameters)" if self.n_convention else ""))
            lines.append("")
        lines.append("  columns:")
        lines += [f"    {c:<{width}}  {d}" for c, d in self.columns.items()]
        return "\n".join(lines)

    def export(self, path: str | Path) -> Path:
        """Write the table to ``path``; the suffix picks the format: .csv, .json (a list of records, NaN
        as null) or .parquet (needs pandas and pyarrow). Returns the path written.

        The licence asks that its notice travel with the data: keep ``licence_file`` beside the copy.
        """
        out = Path(path)
        suffix = out.suffix.lower()
        if suffix not in EXPORT_SUFFIXES:
            raise ConfigError(explain(f"cannot tell the export format from the file name {out.name!r}",
                                      value=suffix or "(no suffix)", allowed=", ".join(EXPORT_SUFFIXES),
                                      fix=f"name the output file {out.stem or self.name}.csv (or .json, .parquet)"))
        if suffix == ".parquet":
            if importlib.util.find_spec("pyarrow") is None:  # pandas needs it to write Parquet
                raise MissingDependencyError("pyarrow", "data")
            self.frame.to_parquet(out, index=False)
            return out
        records = [dict(zip(self.data, row, strict=True)) for row in zip(*self.data.values(), strict=True)]
        if suffix == ".json":
            out.write_text(json.dumps([{k: _py(v) for k, v in r.items()} for r in records], indent=1,
                                      allow_nan=False) + "\n", encoding="utf-8")
            return out
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(list(self.data))
        writer.writerows([_csv_cell(x) for x in r.values()] for r in records)
        out.write_text(buf.getvalue(), encoding="utf-8")
        return out


def _py(v: Any) -> Any:
    """A numpy scalar as a plain Python value; NaN as None."""
    v = v.item() if hasattr(v, "item") else v
    return None if isinstance(v, float) and math.isnan(v) else v


def _csv_cell(v: Any) -> str:
    """A cell as CSV text: floats in their shortest exact form, NaN as an empty cell."""
    v = _py(v)
    return "" if v is None else repr(v) if isinstance(v, float) else str(v)


def parse_column(values: list[str]) -> np.ndarray:
    """Type one CSV column: int64 if every cell is an integer, else float64 (empty cells NaN) if every
    filled cell is a number, else str."""
    if all(values):
        try:
            return np.array([int(v) for v in values], dtype=np.int64)
        except (ValueError, OverflowError):
            pass
    try:
        return np.array([float(v) if v else math.nan for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=str)


def read_csv(file: Traversable) -> dict[str, np.ndarray]:
    """A shipped CSV file as typed columns (see :func:`parse_column`)."""
    cols = read_csv_text(file.read_text(encoding="utf-8"), f"shipped file {file.name}",
                         fix="the file is damaged: reinstall scalelab")
    return {h: parse_column(v) for h, v in cols.items()}


def load_table(info: DatasetInfo) -> Dataset:
    """Read ``info``'s files (joining two on ``info.key``) and check the documented row count."""
    folder = data_folder(info.folder)
    data = read_csv(folder / info.files[0])
    for extra in info.files[1:]:
        more = read_csv(folder / extra)
        if info.key is None or not np.array_equal(data[info.key], more[info.key]):
            raise DataError(explain(f"shipped files {info.files[0]} and {extra} do not hold the same rows "
                                    f"(join column {info.key!r})", fix="reinstall scalelab"))
        data.update({k: v for k, v in more.items() if k != info.key})
    n = len(next(iter(data.values())))
    if n != info.n_rows:
        raise DataError(explain(f"shipped table {info.name} has {n} rows, its documentation {info.n_rows}",
                                fix="reinstall scalelab; if it persists, report it"))
    return Dataset(**{f.name: getattr(info, f.name) for f in fields(info)}, data=data)
