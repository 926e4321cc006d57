"""``scalelab tunnel run | ls | show | export | rm`` end to end on a tiny grid, JSON output, and the
clear one-line errors for bad grids, bad corpora and bad stores (exit code 1)."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from scalelab.cli.app import main

pytest.importorskip("torch")

MODEL = "{n_layers = 1, d_model = 32, n_heads = 2, d_ff = 96, vocab_size = 256, seq_len = 16}"


def _grid(tmp_path: Path, corpus: Path, model: str = MODEL, extra: str = "") -> Path:
    f = tmp_path / "grid.toml"
    f.write_text(f"""
name = "cli"
[defaults]
corpus = "{corpus}"
seq_len = 16
batch_size = 4
lr = 3e-3
eval_tokens = 256
[[run]]
model = {model}
n_tokens = 640
seed = 0
[[run]]
model = {model}
n_tokens = 1280
schedule = "wsd"
decay_fraction = 0.25
decay_branches = [320]
{extra}
""")
    return f


def _json(capsys) -> object:
    return json.loads(capsys.readouterr().out)


def test_run_ls_show_export_rm(tmp_path, corpus, capsys):
    db = tmp_path / "runs.sqlite"
    grid = _grid(tmp_path, corpus)
    assert main(["tunnel", "run", str(grid), "--dry-run", "--format", "json"]) == 0
    assert _json(capsys)["n_runs"] == 2 and not db.exists()

    assert main(["tunnel", "run", str(grid), "--store", str(db), "--quiet", "--format", "json"]) == 0
    out = _json(capsys)
    kinds = sorted(r["kind"] for r in out["runs"])
    assert kinds == ["branch", "run", "run"] and {r["status"] for r in out["runs"]} == {"completed"}

    assert main(["tunnel", "ls", "--store", str(db), "--format", "json"]) == 0
    listed = _json(capsys)
    assert sorted(r["hash"] for r in listed) == sorted(r["hash"] for r in out["runs"])
    assert main(["tunnel", "ls", "--store", str(db), "--kind", "branch", "--format", "json"]) == 0
    (branch,) = _json(capsys)

    parent = next(r for r in out["runs"] if r["kind"] == "run" and r["tokens"] == 1280)
    assert main(["tunnel", "show", parent["hash"][:8], "--store", str(db), "--format", "json"]) == 0
    shown = _json(capsys)
    assert shown["hash"] == parent["hash"] and len(shown["curve"]) == 20
    assert [b["hash"] for b in shown["branches"]] == [branch["hash"]]
    assert main(["tunnel", "show", parent["hash"][:8], "--store", str(db)]) == 0
    human = capsys.readouterr().out
    assert parent["hash"] in human and "decay branches" in human

    assert main(["tunnel", "export", str(tmp_path / "runs.csv"), "--store", str(db)]) == 0
    with open(tmp_path / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(float(r["loss"]) > 0 for r in rows)
    assert main(["tunnel", "export", str(tmp_path / "runs.parquet"), "--store", str(db)]) == 0
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "runs.parquet").num_rows == 3
    assert main(["tunnel", "export", str(tmp_path / "c.out"), "--format", "parquet", "--what", "curves",
                 "--store", str(db)]) == 0
    assert pq.read_table(tmp_path / "c.out").num_rows > 20

    # Running the grid again trains nothing new.
    assert main(["tunnel", "run", str(grid), "--store", str(db), "--quiet", "--format", "json"]) == 0
    again = _json(capsys)
    assert sorted(r["hash"] for r in again["runs"]) == sorted(r["hash"] for r in out["runs"])

    assert main(["tunnel", "rm", parent["hash"], "--store", str(db), "--yes", "--format", "json"]) == 0
    assert sorted(_json(capsys)["removed"]) == sorted([parent["hash"], branch["hash"]])
    assert main(["tunnel", "ls", "--store", str(db), "--format", "json"]) == 0
    assert len(_json(capsys)) == 1


def test_impossible_shape_is_a_clear_error_and_trains_nothing(tmp_path, corpus, capsys):
    db = tmp_path / "runs.sqlite"
    grid = _grid(tmp_path, corpus, model=MODEL.replace("n_heads = 2", "n_heads = 3"))
    assert main(["tunnel", "run", str(grid), "--store", str(db)]) == 1
    err = capsys.readouterr().err
    assert "Invalid configuration" in err and "n_heads=3 does not divide d_model=32" in err
    assert not db.exists()


def test_ddp_needs_exactly_one_run(tmp_path, corpus, capsys):
    assert main(["tunnel", "ddp", str(_grid(tmp_path, corpus)), "--store", str(tmp_path / "r.sqlite")]) == 1
    assert "exactly one run" in capsys.readouterr().err


def test_bad_corpus_and_bad_stores_are_clear_errors(tmp_path, corpus, capsys, monkeypatch):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    db = tmp_path / "runs.sqlite"
    assert main(["tunnel", "run", str(_grid(tmp_path, empty)), "--store", str(db)]) == 1
    assert "Corpus error" in capsys.readouterr().err

    assert main(["tunnel", "show", "deadbeef", "--store", str(db)]) == 1
    assert "Unknown name" in capsys.readouterr().err

    con = sqlite3.connect(db)
    con.execute("UPDATE schema_version SET version = version + 1")
    con.commit()
    con.close()
    assert main(["tunnel", "ls", "--store", str(db)]) == 1
    assert "newer scalelab" in capsys.readouterr().err

    locked = tmp_path / "locked.sqlite"
    from scalelab.tunnel.store import RunStore

    with RunStore(locked) as st:
        rec = st.add({"model": {"n_layers": 1, "d_model": 32, "n_heads": 2, "d_ff": 96, "vocab_size": 256},
                      "n_tokens": 640})
    monkeypatch.setenv("SCALELAB_STORE_TIMEOUT_S", "0.2")
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert main(["tunnel", "rm", rec.hash, "--store", str(locked), "--yes"]) == 1
        assert "Run store is locked" in capsys.readouterr().err
        assert main(["tunnel", "ls", "--store", str(locked), "--format", "json"]) == 0  # WAL: reads still work
        assert [r["hash"] for r in _json(capsys)] == [rec.hash]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with RunStore(locked) as st:
        assert len(st) == 1  # nothing lost
