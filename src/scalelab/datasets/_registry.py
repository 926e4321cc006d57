"""The registry of shipped tables, read from ``data/<folder>/tables.toml`` (metadata kept beside the files
and their LICENSE and NOTICE, as the hardware catalog keeps its devices in data files).

Each ``tables.toml`` has a ``[source]`` table (licence, citation, short_citation, source), optional
``[defaults]`` shared by its tables (columns, column_patterns, law_columns, features, targets, and a
``note`` appended to every description) and one ``[[tables]]`` entry per table. Only sources whose licence
allows redistribution have a folder (MIT, Apache-2.0); the facts are those of the matching
``shared/anchors/<folder>/PROVENANCE.md``.
"""

from __future__ import annotations

import functools
import tomllib
from typing import Any

from ..errors import ConfigError, explain
from ._dataset import DatasetInfo, data_folder

__all__ = ["FOLDERS", "registry"]

#: Source folders, in the order ``scalelab datasets`` lists their tables.
FOLDERS = ("mlfoundations-scaling", "resolving-scaling-law-discrepancies", "datablations", "regmix", "nanogpt",
           "chinchilla-kyo-takano")

_SOURCE_KEYS = {"licence", "citation", "short_citation", "source"}
_SHARED_KEYS = {"columns", "column_patterns", "law_columns", "features", "targets", "note"}
_TABLE_KEYS = {"name", "loader", "title", "files", "rows", "key", "n_convention", "description",
               *(_SHARED_KEYS - {"note"})}


def _check_keys(where: str, got: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(got) - allowed
    if unknown:
        raise ConfigError(explain(f"{where} has unknown keys", value=sorted(unknown),
                                  allowed=", ".join(sorted(allowed)), fix="correct the shipped tables.toml"))


def _table(folder: str, source: dict[str, Any], defaults: dict[str, Any], t: dict[str, Any]) -> DatasetInfo:
    _check_keys(f"{folder}/tables.toml table {t.get('name')!r}", t, _TABLE_KEYS)
    note = defaults.get("note", "")
    patterns = [*t.get("column_patterns", []), *defaults.get("column_patterns", [])]
    return DatasetInfo(
        name=t["name"], title=t["title"], loader=t["loader"], folder=folder, files=tuple(t["files"]), n_rows=t["rows"],
        licence=source["licence"], citation=source["citation"], short_citation=source["short_citation"],
        source=source["source"], description=" ".join(f"{t['description']} {note}".split()),
        column_docs={**defaults.get("columns", {}), **t.get("columns", {})},
        column_patterns=tuple((p["pattern"], p["template"]) for p in patterns),
        key=t.get("key"), law_columns=t.get("law_columns", defaults.get("law_columns", {})),
        n_convention=t.get("n_convention"), features=t.get("features", defaults.get("features")),
        targets=t.get("targets", defaults.get("targets")))


@functools.cache
def registry() -> dict[str, DatasetInfo]:
    """Every shipped table by registry name, in listing order (read once, from the package's data files)."""
    out: dict[str, DatasetInfo] = {}
    for folder in FOLDERS:
        spec = tomllib.loads((data_folder(folder) / "tables.toml").read_text(encoding="utf-8"))
        _check_keys(f"{folder}/tables.toml", spec, {"source", "defaults", "tables"})
        _check_keys(f"{folder}/tables.toml [source]", spec["source"], _SOURCE_KEYS)
        _check_keys(f"{folder}/tables.toml [defaults]", spec.get("defaults", {}), _SHARED_KEYS)
        for t in spec["tables"]:
            info = _table(folder, spec["source"], spec.get("defaults", {}), t)
            out[info.name] = info
    return out
