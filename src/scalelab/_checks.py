"""Checks of values that several parts of scalelab take the same way (laws, curves, mixtures, pruners)."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError, explain


def check_level(level: Any) -> float:
    """``level`` as a float, or a ConfigError naming it unless it lies strictly between 0 and 1: a 100% band
    is unbounded and a 0% band empty, and a user who types 95 for 95% gets a clear error, not numpy's.

    >>> check_level(0.95)
    0.95
    """
    try:
        lvl = float(level)
    except (TypeError, ValueError):
        lvl = float("nan")
    if not 0 < lvl < 1:
        raise ConfigError(explain("level must be a coverage strictly between 0 and 1", value=level,
                                  allowed="0 < level < 1", fix="use e.g. 0.95 for a 95% band (not 95)"))
    return lvl
