"""Reading user config files (TOML or JSON) and turning pydantic errors into ``ConfigError`` messages.

Shared by the model loader (:mod:`scalelab.arch.loader`) and the hardware catalog
(:mod:`scalelab.hardware.catalog`), so a malformed file reads the same way wherever it is passed.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import ConfigError, explain

CONFIG_SUFFIXES = (".toml", ".json")


def looks_like_path(name_or_path: str | Path) -> bool:
    """Whether ``name_or_path`` should be read as a file rather than looked up as a catalog name."""
    if isinstance(name_or_path, Path):
        return True
    s = str(name_or_path)
    return s.lower().endswith(CONFIG_SUFFIXES) or Path(s).expanduser().exists()


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse a ``.toml`` or ``.json`` file into a dict; a syntax error becomes a ``ConfigError``.

    Raises ``FileNotFoundError`` (mapped to "File not found" by the CLI) when the path does not exist.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(2, "No such file", str(p))
    if p.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(p))
    text = p.read_text(encoding="utf-8")
    suffix = p.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        else:
            # Unknown suffix: try JSON, then TOML, so `config` files without an extension still load.
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                data = tomllib.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            explain(f"{p} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}",
                    fix="fix the syntax (a JSON validator points at the exact spot)")
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(explain(f"{p} is not valid TOML: {e}", fix="fix the syntax at the position shown")) from None
    if not isinstance(data, dict):
        raise ConfigError(
            explain(f"{p} must hold a table/object of fields", value=type(data).__name__,
                    allowed="a JSON object or TOML document with key = value fields")
        )
    return data


def validation_error_message(exc: ValidationError, where: str) -> str:
    """One readable line per pydantic error: field, what was wrong, the value received."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "value"
        got = e.get("input")
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown field {loc!r}")
        elif e["type"] == "missing":
            parts.append(f"missing required field {loc!r}")
        elif isinstance(got, (dict, list)):
            parts.append(f"{loc}: {msg}")
        else:
            parts.append(f"{loc}: {msg} (got {got!r})")
    return f"{where}: " + "; ".join(parts)


def config_error_from_validation(exc: ValidationError, where: str, fields: list[str] | None = None) -> ConfigError:
    """A ``ConfigError`` naming each bad field and value, with the allowed fields when one is unknown."""
    allowed = None
    if fields and any(e["type"] == "extra_forbidden" for e in exc.errors()):
        allowed = "fields " + ", ".join(fields)
    return ConfigError(
        explain(validation_error_message(exc, where), allowed=allowed,
                fix="correct the fields named above (sizes and counts must be positive)")
    )
