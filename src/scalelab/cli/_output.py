"""The one output sink of the CLI: human (rich) or machine (``--format json``) output.

Commands build a result (anything with ``to_dict()`` and ``report()``, or a plain dict / list of
dicts) and hand it to :func:`emit`; they never print directly. JSON goes to stdout alone so it can be
piped; human output may use colour and tables.
"""

from __future__ import annotations

import json
import math
from enum import Enum, StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table


class OutputFormat(StrEnum):
    human = "human"
    json = "json"


console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return _jsonable(obj.to_dict())
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # JSON has no NaN/inf; null is the honest "no value"
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _jsonable(obj.item())
    if isinstance(obj, Enum):
        return obj.value
    return obj


def to_json(obj: Any) -> str:
    """Serialise a result for ``--format json`` (NaN and inf become null)."""
    return json.dumps(_jsonable(obj), indent=2, allow_nan=False)


def table(rows: list[dict[str, Any]], title: str | None = None, columns: list[str] | None = None) -> Table:
    """A rich table from a list of dicts (columns from the first row unless given)."""
    t = Table(title=title, show_lines=False)
    columns = columns or (list(rows[0]) if rows else [])
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[_cell(r.get(c)) for c in columns])
    return t


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def emit(result: Any, fmt: OutputFormat = OutputFormat.human, *, title: str | None = None) -> None:
    """Print ``result`` in the chosen format: JSON to stdout, or its human report."""
    if fmt == OutputFormat.json:
        console.print_json(to_json(result)) if console.is_terminal else print(to_json(result))
        return
    if hasattr(result, "report"):
        console.print(result.report(), markup=False, highlight=False)
    elif isinstance(result, list) and result and isinstance(result[0], dict):
        console.print(table(result, title=title))
    elif isinstance(result, dict):
        console.print(table([{"field": k, "value": v} for k, v in result.items()], title=title))
    else:
        console.print(result)
