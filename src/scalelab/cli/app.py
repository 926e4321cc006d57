"""The ``scalelab`` command: one typer app, one module per command group.

Each command module exposes ``register(app)``; ``plan`` and ``search`` are built on first use
(:class:`~scalelab.cli.plan.LazyPlannerGroup`), since their options are read from the planner's specs.
Heavy libraries (torch, matplotlib, pandas) are imported inside command functions, so ``scalelab plan``
starts without them (DESIGN.md principle 8).
"""

from __future__ import annotations

import sys
import warnings
from typing import TextIO

import typer

from .. import __version__
from . import budget, calibrate, catalog, curve, datasets, demo, laws, mixture, plan, tunnel
from ._errors import handle
from ._options import guard_numbers

app = typer.Typer(
    name="scalelab",
    help="Predict, plan and prove large-language-model training runs.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    cls=plan.LazyPlannerGroup,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scalelab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Predict, plan and prove large-language-model training runs."""


for _module in (catalog, laws, tunnel, demo, datasets, mixture, curve, budget, calibrate):
    _module.register(app)
guard_numbers(app)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """Library warnings reach CLI users as one readable line on stderr (no file/line noise)."""
    from ..errors import ScalelabWarning
    from ._output import err_console

    if issubclass(category, ScalelabWarning):
        from rich.markup import escape

        err_console.print(f"[yellow]{category.__name__}:[/] {escape(str(message))}")
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app, map known errors to messages and exit code 1."""
    warnings.showwarning = _show_warning
    try:
        # Standalone mode lets typer report usage errors itself (exit 2); anything else reaches the table.
        app(args=argv, prog_name="scalelab")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Exception as exc:  # noqa: BLE001 - the error table decides what is user-facing
        return handle(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
