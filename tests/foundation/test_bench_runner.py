"""`make bench` runs every benchmark: a script added to benchmarks/ without a quick-mode entry in
benchmarks/run_all.py would silently never run (issue 7)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _run_all():
    spec = importlib.util.spec_from_file_location("run_all", BENCH / "run_all.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = mod   # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_every_benchmark_script_has_a_quick_mode_entry():
    listed = {b.name for b in _run_all().BENCHMARKS}
    # _name.py: a helper module the scripts import (benchmarks/_published_runs.py), not a benchmark
    scripts = {p.stem for p in BENCH.glob("*.py") if p.stem != "run_all" and not p.stem.startswith("_")}
    assert scripts == listed, {"not in run_all": scripts - listed, "no such script": listed - scripts}


def test_a_missing_anchor_file_gives_a_reason_naming_it(tmp_path, monkeypatch):
    mod = _run_all()
    monkeypatch.setenv("SCALELAB_ANCHORS", str(tmp_path))
    reason = mod._needs_anchor("x/y.csv", "some data")()
    assert reason is not None and "some data" in reason and str(tmp_path / "x" / "y.csv") in reason
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "y.csv").write_text("a\n")
    assert mod._needs_anchor("x/y.csv", "some data")() is None
