"""Writing a finished result to the user's ``--out`` path without ever throwing the result away."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


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
