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


@pytest.fixture
def ro_store(tmp_path):
    """A run store holding six completed runs (no torch: results shaped like ``TrainResult.to_dict()``)."""
    from scalelab.tunnel.store import RunStore

    path = tmp_path / "store" / "runs.sqlite"
    with RunStore(path) as st:
        for i in range(6):
            model = {"n_layers": 1 + i, "d_model": 64, "n_heads": 4, "d_ff": 176, "vocab_size": 256, "seq_len": 32}
            n_tokens = 1280 * (i + 1) * (1 + i % 3)
            rec = st.add({"model": model, "n_tokens": n_tokens, "lr": 1e-3, "seed": i, "seq_len": 32,
                          "batch_size": 4})
            claim = st.claim([rec.hash])
            st.finish(rec.hash, {"status": "completed", "final_train_loss": 3.1 - 0.1 * i,
                                 "final_val_loss": 3.0 - 0.1 * i + 0.01 * (i % 2), "tokens_seen": n_tokens,
                                 "steps": n_tokens // 128, "wall_s": 1.0, "tokens_per_s": n_tokens,
                                 "n_params": 100_000, "flops_per_token": 6e5, "curve": [], "branches": []},
                      claim_id=claim.claim_id)
    return path
