"""The ``scalelab`` command: one typer app, one module per command group, each imported on first use.

Each command module exposes ``register(app)``. The root group (:class:`LazyGroup`) knows every command's
name and module from :data:`COMMANDS` and imports a module, and builds its commands, only when one of them
is run, completed or listed: ``scalelab fit`` imports ``cli/laws.py`` alone, not the wind tunnel's,
catalog's or planner's command modules (``plan`` and ``search`` read their options from the planner's
specs, which imports the planner: about 0.6 s). Heavy libraries (torch, matplotlib, pandas) are imported
inside command functions (DESIGN.md principle 8).
"""

from __future__ import annotations

import functools
import importlib
import sys
import warnings
from typing import Any, TextIO

import typer
from typer.core import TyperGroup

from .. import __version__
from ._options import guard_numbers

#: Every command of the root app, in the order ``scalelab --help`` lists them, and the module of
#: ``scalelab.cli`` whose ``register(app)`` adds it (``tests/cli`` checks the table against the modules).
COMMANDS: dict[str, str] = {
    "plan": "plan", "search": "plan", "models": "catalog", "gpus": "catalog", "fit": "laws",
    "backtest": "laws", "forecast": "laws", "demo": "demo", "budget": "budget", "calibrate": "calibrate",
    "laws": "laws", "tunnel": "tunnel", "datasets": "datasets", "mixture": "mixture", "curve": "curve",
}


@functools.cache
def command_app(module: str) -> typer.Typer:
    """A typer app holding the commands of ``scalelab.cli.<module>`` (numeric options guarded), built on
    first use."""
    sub = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)
    importlib.import_module(f"{__package__}.{module}").register(sub)
    guard_numbers(sub)

    @sub.callback()
    def _group() -> None:  # a callback makes typer build a group even for a module with one command
        """Commands of one module."""

    return sub


@functools.cache
def _click_commands(module: str) -> dict[str, Any]:
    group = typer.main.get_command(command_app(module))
    return dict(group.commands)  # type: ignore[attr-defined]


class LazyGroup(TyperGroup):
    """The root group: lists :data:`COMMANDS` without importing them and builds a command's module when
    the command is asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.commands.update(_click_commands(COMMANDS[cmd_name]))
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """typer suggests close names from the commands built so far, which here is none of the lazy ones:
        ``scalelab fti`` said only "No such command 'fti'"; suggest from every command's name instead."""
        name = args[0] if args else None
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            from ..errors import suggest

            close = suggest(name, self.list_commands(ctx))
            if close:
                ctx.fail(f"No such command {name!r}. Did you mean {', '.join(repr(c) for c in close)}?")
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="scalelab",
    help="Predict, plan and prove large-language-model training runs.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
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
        from ._errors import handle

        return handle(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
