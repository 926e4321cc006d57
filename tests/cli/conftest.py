"""Fixtures shared by the CLI tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from scalelab.cli.app import app


@pytest.fixture
def cli_json() -> Callable[[list[str]], Any]:
    """``cli_json(args)``: run ``scalelab args`` in-process, require exit 0, return its parsed stdout."""
    runner = CliRunner()

    def run(args: list[str]) -> Any:
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    return run

