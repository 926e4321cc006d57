"""Shared fixtures. Tests read published data from ``../shared/anchors`` (or ``$SCALELAB_ANCHORS``) and
skip, saying where the data comes from, when that folder is absent (a user's fresh clone)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).resolve().parent / "assets"


def anchors_dir() -> Path:
    return Path(os.environ.get("SCALELAB_ANCHORS", ROOT.parent / "shared" / "anchors"))


@pytest.fixture(scope="session")
def anchors() -> Path:
    """Root of the published run data; skips when it is not beside the checkout."""
    d = anchors_dir()
    if not d.is_dir():
        pytest.skip(f"published anchor data not found at {d}: it lives in the project's shared/anchors "
                    "folder (set SCALELAB_ANCHORS to point elsewhere)")
    return d


@pytest.fixture(scope="session")
def assets() -> Path:
    """The project's own golden data (tests/assets)."""
    return ASSETS


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own SCALELAB_HOME so no test touches a user's store."""
    monkeypatch.setenv("SCALELAB_HOME", str(tmp_path_factory.mktemp("scalelab_home")))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """A small real-text corpus (scalelab's own tunnel source), so run tests never tokenize the whole
    standard library. Test modules that need another corpus define their own ``corpus`` fixture."""
    root = ROOT / "src" / "scalelab" / "tunnel"
    p = tmp_path_factory.mktemp("corpus") / "text.txt"
    p.write_text("\n".join(f.read_text() for f in sorted(root.glob("*.py"))))
    return p
