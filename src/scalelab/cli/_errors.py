"""One table from exception type to CLI message and exit code (huggingface_hub ``cli/_errors.py`` idea).

Every user-facing failure leaves the CLI with exit code 1 and a one-paragraph message; the traceback is
shown only when ``SCALELAB_DEBUG=1``.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

from pydantic import ValidationError

from ..errors import (
    ConfigError,
    CorpusError,
    DataError,
    FitError,
    LayoutError,
    MissingDependencyError,
    NotFittedError,
    ScalelabError,
    SchemaVersionError,
    StoreError,
    StoreLockedError,
    UnknownNameError,
)
from ._output import err_console

#: (exception type, heading shown to the user). The first matching row wins, so subclasses come first.
ERROR_TABLE: list[tuple[type[BaseException], str]] = [
    (UnknownNameError, "Unknown name"),
    (LayoutError, "Impossible layout"),
    (ConfigError, "Invalid configuration"),
    (DataError, "Unusable data"),
    (NotFittedError, "Law not fitted"),
    (FitError, "Fit failed"),
    (StoreLockedError, "Run store is locked"),
    (SchemaVersionError, "Run store is from a newer scalelab"),
    (StoreError, "Run store error"),
    (CorpusError, "Corpus error"),
    (MissingDependencyError, "Missing optional dependency"),
    (ValidationError, "Invalid configuration"),
    (FileNotFoundError, "File not found"),
    (IsADirectoryError, "Expected a file, got a directory"),
    (PermissionError, "Permission denied"),
    (ScalelabError, "Error"),
]


def debug_enabled() -> bool:
    return os.environ.get("SCALELAB_DEBUG", "") not in ("", "0", "false", "False")


def _message(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        lines = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"]) or "value"
            got = e.get("input")
            got_s = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"{loc}: {e['msg']}{got_s}")
        return f"{exc.title}: " + "; ".join(lines)
    if isinstance(exc, FileNotFoundError) and exc.filename:
        folder = Path(exc.filename).expanduser().parent
        if not folder.exists():  # an output path in a missing folder: "no such file" would send users hunting
            return (f"no such folder: {folder} (for {exc.filename}). Fix: create the folder "
                    f"(mkdir -p {folder}) or check the path.")
        return f"no such file: {exc.filename}. Fix: check the path."
    return str(exc)


def handle(exc: BaseException) -> int:
    """Print a clear message for ``exc`` and return the exit code (1), or re-raise unknown errors."""
    for typ, heading in ERROR_TABLE:
        if isinstance(exc, typ):
            if debug_enabled():
                err_console.print(traceback.format_exc(), markup=False)
            err_console.print(f"[bold red]{heading}:[/] {_escape(_message(exc))}")
            if not debug_enabled():
                err_console.print("[dim](set SCALELAB_DEBUG=1 for the traceback)[/]")
            return 1
    raise exc


def _escape(s: str) -> str:
    from rich.markup import escape

    return escape(s)
