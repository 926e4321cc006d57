"""Shared fixtures.

Published data comes from two places. Tables whose licence allows it ship in ``scalelab.datasets`` and
are always there. Data without a stated licence is never copied into the project: tests read it from
``../shared/anchors`` (or ``$SCALELAB_ANCHORS``) through :func:`anchor_file`, which skips, naming the data
and where it comes from, when the file is absent (a user's fresh clone, an empty or wrong folder)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).resolve().parent / "assets"


def anchors_dir() -> Path:
    return Path(os.environ.get("SCALELAB_ANCHORS", ROOT.parent / "shared" / "anchors"))


#: Anchor folders with no stated licence -> where the data comes from (each folder's PROVENANCE.md).
UNLICENSED_SOURCES = {
    "analyzing-chinchilla": "github.com/epoch-research/analyzing-chinchilla",
    "steplaw": "github.com/step-law/steplaw",
    "SLD": "github.com/linhaowei1/SLD",
    "misfitting-scaling-laws": "github.com/hadasah/scaling_laws",
    "scaling-law-analysis": "github.com/Open-Athena/scaling-law-analysis",
}


@pytest.fixture(scope="session")
def anchor_file() -> Callable[[str, str], Path]:
    """``anchor_file(relpath, what)``: the path of an unlicensed anchor file, e.g.
    ``anchor_file("steplaw/data/dense_lr_bs_loss.csv", "Step Law's dense LR x batch grid (Li et al. 2025)")``;
    skips the test, naming ``what`` and its source, when the file is not there."""

    def get(relpath: str, what: str) -> Path:
        __tracebackhide__ = True  # a skip reports the calling test's line, not this helper's
        root = anchors_dir()
        path = root / relpath
        if not path.is_file():
            folder = relpath.split("/", 1)[0]
            origin = UNLICENSED_SOURCES.get(folder, f"the source named in {folder}/PROVENANCE.md")
            pytest.skip(f"needs {what} from {origin}, which has no stated licence and so does not ship with "
                        f"scalelab: {relpath} is not under {root}. Put the project's shared/anchors folder "
                        "beside the checkout, or set SCALELAB_ANCHORS to a copy of it")
        return path

    return get


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
