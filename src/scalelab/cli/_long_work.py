"""Long work in the CLI (``tunnel run``, ``demo``): how progress is shown, and what an interrupt says.

In a terminal, the live display; outside one (CI, ``> log.txt``) a live display shows nothing for minutes,
so progress becomes one log line per finished run, with its ETA, on stderr. Ctrl-C or SIGTERM during a grid
ends with one line saying how many runs are safe in the store and how to resume, and exit code 130 / 143
(128 + the signal number, the shell convention).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from types import FrameType

import typer

from ._output import err_console


class _CliLogHandler(logging.StreamHandler):
    """The handler the CLI adds once, told apart from the user's own by its class. It writes to whatever
    ``sys.stderr`` is now, not the stream of the first call (which a test runner or a caller may have
    replaced and closed since)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def log_lines_wanted(quiet: bool, json_output: bool) -> bool:
    """Whether progress should be log lines: asked for, JSON on stdout, or no terminal to draw on."""
    return quiet or json_output or not (sys.stdout.isatty() and sys.stderr.isatty())


def route_progress_logs() -> None:
    """Show the wind tunnel's INFO lines (one per run, with ETA) on stderr."""
    logger = logging.getLogger("scalelab.tunnel")
    if not any(isinstance(h, _CliLogHandler) for h in logger.handlers):
        h = _CliLogHandler()  # stderr
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(h)
    logger.setLevel(logging.INFO)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so the grid stops the way Ctrl-C stops it."""

    signum = int(signal.SIGTERM)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


@contextlib.contextmanager
def resumable() -> Iterator[None]:
    """Run a grid so that Ctrl-C and SIGTERM end in "interrupted: k of n runs stored; rerun the same command
    to resume" and exit 130 / 143, instead of a traceback or silence."""
    from ..errors import GridInterrupted

    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave SIGTERM as it is
        previous = None
    try:
        yield
    except GridInterrupted as e:
        err_console.print(str(e), markup=False, highlight=False)
        raise typer.Exit(128 + e.signum) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
