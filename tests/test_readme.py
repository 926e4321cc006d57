"""The README's CLI tour is real output: every ``$ scalelab ...`` block that runs in well under a second here is run
in-process and must print exactly what the README shows (rich wraps at the 100 columns the README was captured at).
The blocks that need the wind tunnel's runs on this machine (``demo``, ``fit --store``, ``forecast fit.json``) are
listed, not run: their figures depend on a training run, and docs/tunnel.md and tests/demo cover them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scalelab.cli.app import app

README = Path(__file__).resolve().parents[1] / "README.md"

#: Commands whose README output comes from a training run on the machine that wrote it.
NEEDS_TUNNEL_RUNS = {"demo", "fit", "forecast"}


def cli_blocks(text: str) -> list[tuple[list[str], list[str]]]:
    """(arguments after ``scalelab``, expected output lines) of every ```text block that starts with
    ``$ scalelab``; a command may continue over lines ending in a backslash, and a block may hold several
    commands (each ``$`` line starts the next)."""
    out: list[tuple[list[str], list[str]]] = []
    for block in re.findall(r"```text\n(.*?)```", text, re.S):
        lines = block.splitlines()
        if not lines or not lines[0].startswith("$ scalelab"):
            continue
        i = 0
        while i < len(lines):
            cmd = ""
            while True:
                line = lines[i]
                cmd += line.rstrip("\\").strip() + " "
                i += 1
                if not line.endswith("\\"):
                    break
            start = i
            while i < len(lines) and not lines[i].startswith("$ scalelab"):
                i += 1
            out.append((shlex.split(cmd)[2:], lines[start:i]))
    return out


BLOCKS = cli_blocks(README.read_text())


def test_the_readme_has_a_cli_tour_and_every_block_is_checked_or_named():
    commands = [args[0] for args, _ in BLOCKS]
    assert {"plan", "search", "budget"} <= set(commands), commands
    assert set(commands) <= {"plan", "search", "budget"} | NEEDS_TUNNEL_RUNS, commands


CHECKED = [b for b in BLOCKS if b[0][0] not in NEEDS_TUNNEL_RUNS]


@pytest.mark.parametrize("args, expected", CHECKED, ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(CHECKED)])
def test_readme_cli_block_prints_what_the_readme_shows(args, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `budget --recipe run.toml` writes a file
    r = CliRunner().invoke(app, args, env={"COLUMNS": "100"})
    assert r.exit_code == 0, r.output
    got = r.stdout.splitlines()
    assert got == expected, ("the README's output of `scalelab " + " ".join(args) + "` is stale; rerun it at "
                             "COLUMNS=100 and paste its output into README.md")
