"""Options shared by several commands, defined once as ``Annotated`` aliases."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Annotated, Any

import typer

from ._output import OutputFormat

FormatOpt = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Output format: human tables or JSON for scripts.")
]


def _flag_name(func: Callable[..., Any], name: str) -> str:
    """The flag a user types for parameter ``name`` of a command function (``--n-gpus`` for ``n_gpus``)."""
    import typing

    try:
        hint = typing.get_type_hints(func, include_extras=True).get(name)
    except Exception:  # noqa: BLE001 - a name the hints cannot resolve still gets the default spelling
        hint = None
    for meta in getattr(hint, "__metadata__", ()):
        # Inside Annotated, typer.Option("--flag", ...) keeps its first declaration as ``default``
        decls = (getattr(meta, "default", None), *(getattr(meta, "param_decls", None) or ()))
        longs = [d for d in decls if isinstance(d, str) and d.startswith("--")]
        if longs:
            return longs[0].split("/")[0]
    return "--" + name.replace("_", "-")


def _check_number(func: Callable[..., Any], name: str, value: Any) -> None:
    from ..errors import ConfigError, explain

    items = value if isinstance(value, (list, tuple)) else [value]
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return
        if not math.isfinite(v) or v < 0:
            flag = _flag_name(func, name)
            what = "a finite number" if not math.isfinite(v) else "zero or a positive number"
            raise ConfigError(explain(f"{flag} must be {what}", value=f"{v:g}",
                                      allowed="a finite number >= 0",
                                      fix=f"pass {flag} with a finite, non-negative value (see --help)"))


def _guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for name, value in kwargs.items():
            _check_number(func, name, value)
        return func(*args, **kwargs)

    return wrapper


def guard_numbers(app: typer.Typer) -> None:
    """Make every numeric option of every command of ``app`` refuse inf, NaN and negative values.

    No numeric option of scalelab takes a negative value, and inf or NaN (``--tokens inf``, ``1e400``)
    otherwise flowed into the results as "$infT" or JSON null. Checking once here, by wrapping each
    command function (typer reads the signature through ``functools.wraps``), covers options added
    later too; the error names the flag the user typed.
    """
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = _guarded(info.callback)
    if app.registered_callback is not None and app.registered_callback.callback is not None:
        app.registered_callback.callback = _guarded(app.registered_callback.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            guard_numbers(group.typer_instance)
