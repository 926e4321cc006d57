"""Writing a finished result to the user's ``--out`` path without ever throwing the result away."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def refuse_overwriting_inputs(outputs: dict[str, Path | None], inputs: dict[str, Any]) -> None:
    """A ConfigError before any work when an output path (``{"--out": path}``) is one of the command's input
    files: ``fit runs.csv --out runs.csv`` replaced the user's runs with the fit's JSON."""
    from ..errors import ConfigError, explain

    def same(a: Path, b: Path) -> bool:
        try:
            return a.exists() and b.exists() and a.samefile(b)
        except OSError:
            return False

    for flag, out in outputs.items():
        for what, given in inputs.items():
            if out is not None and given is not None and same(Path(out).expanduser(), Path(given).expanduser()):
                raise ConfigError(explain(f"{flag} would overwrite the {what} it reads", value=str(out),
                                          fix=f"give {flag} a new file name; the input stays as it is"))


def write_or_warn(write: Callable[[Path], Any], out: Path) -> Path:
    """:func:`write_keeping`, printing its note as a warning on stderr; returns the path written."""
    written, note = write_keeping(write, out)
    if note:
        from ._output import err_console

        err_console.print(f"warning: {note}", markup=False)
    return written


def write_keeping(write: Callable[[Path], Any], out: Path) -> tuple[Path, str | None]:
    """Call ``write(out)``; if that path cannot be written (read-only folder, missing folder, full disk),
    write to the current folder or the temporary folder instead.

    Returns the path written and, when it is not ``out``, a note saying why and where, for the command
    to show. A fit that took minutes is never lost to a typo in ``--out``. Raises the first ``OSError``
    if no place could be written.
    """
    try:
        write(out)
        return out, None
    except OSError as first:
        reason = f"{type(first).__name__}: {first.strerror or first}"
        for folder in (Path.cwd(), Path(tempfile.gettempdir())):
            alt = folder / out.name
            if alt.resolve() == out.resolve() or alt.exists():
                alt = folder / f"{out.stem}-{uuid.uuid4().hex[:8]}{out.suffix}"
            try:
                write(alt)
            except OSError:
                continue
            return alt, f"could not write {out} ({reason}); wrote {alt} instead"
        raise
