"""CLI command group: catalog (filled in by its owner; see app.py for how modules register)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
