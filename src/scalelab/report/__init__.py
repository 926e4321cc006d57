"""Plots and the self-contained HTML report."""

from __future__ import annotations


def require_matplotlib() -> None:
    """Raise :class:`~scalelab.errors.MissingDependencyError` now when matplotlib is absent: a command that
    draws its result at the end (``fit --plot``, the demo's report) checks first, rather than failing after
    minutes of fitting or training."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        from ..errors import MissingDependencyError

        raise MissingDependencyError("matplotlib", "report")
