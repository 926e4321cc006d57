"""The run store: atomic claims, claim-guarded results, reclaiming dead workers, WSD branches linked to
their parent, exports, and bad stores (locked, newer schema, not a database) that fail clearly without
losing a stored row. No torch here: results are plain dicts shaped like ``TrainResult.to_dict()``."""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from scalelab.errors import ConfigError, SchemaVersionError, StoreError, StoreLockedError, UnknownNameError
from scalelab.tunnel.store import (
    SCHEMA_VERSION,
    ClaimLostError,
    RunStore,
    branch_hash,
    default_store_path,
    load_runs_for_fit,
)


def _cfg(i: int = 0, **kw) -> dict:
    model = {"n_layers": 2, "d_model": 64, "n_heads": 4, "d_ff": 176, "vocab_size": 256, "seq_len": 32}
    return {"model": model, "n_tokens": 1280 * (i + 1), "lr": 1e-3, "seed": i, "seq_len": 32, "batch_size": 4, **kw}


def _result(n_tokens: int, loss: float = 2.5, status: str = "completed", branches=()) -> dict:
    steps = n_tokens // 128
    return {
        "status": status, "final_train_loss": loss + 0.1, "final_val_loss": loss if status == "completed" else None,
        "tokens_seen": n_tokens, "steps": steps, "wall_s": 1.5, "tokens_per_s": n_tokens / 1.5,
        "n_params": 100_000, "flops_per_token": 6.2e5,
        "curve": [{"step": s, "tokens": s * 128, "train_loss": 5.0 - s / steps, "val_loss": None, "lr": 1e-3}
                  for s in range(1, steps + 1)],
        "branches": list(branches),
    }


def _rows(path) -> dict[str, int]:
    con = sqlite3.connect(path)
    try:
        return {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("runs", "curves", "checkpoints")}
    finally:
        con.close()


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "runs.sqlite", timeout_s=1.0)
    yield s
    s.close()


def test_default_location_follows_scalelab_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SCALELAB_HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / "runs.sqlite"
    with RunStore() as s:
        assert s.path == tmp_path / "home" / "runs.sqlite"
        assert s.schema_version == SCHEMA_VERSION
        assert s._read("PRAGMA journal_mode")[0][0] == "wal"


def test_add_is_idempotent_and_keyed_by_config_hash(store):
    a = store.add(_cfg(0))
    again = store.add(_cfg(0))
    b = store.add(_cfg(1))
    assert a.hash == again.hash != b.hash
    assert len(store) == 2
    assert a.status == "pending"
    # Parameter counts come from the planner's ModelSpec.n_params (2 layers of d=64, SwiGLU f=176, V=256).
    from scalelab.arch import ModelSpec

    assert a.n_params == ModelSpec(**_cfg(0)["model"]).n_params().total


def test_claim_finish_roundtrip_keeps_curve_and_metrics(store):
    rec = store.add(_cfg(0))
    claimed = store.claim()
    assert claimed.hash == rec.hash and claimed.status == "running" and claimed.attempts == 1
    assert store.claim() is None  # nothing else pending
    out = store.finish(rec.hash, _result(1280), claim_id=claimed.claim_id)
    assert out.status == "completed" and out.final_val_loss == 2.5 and out.tokens_seen == 1280
    assert out.flops == pytest.approx(6.2e5 * 1280)
    curve = store.curve(rec.hash)
    assert [p["step"] for p in curve] == list(range(1, 11))
    assert store.counts() == {"completed": 1}
    assert store.claim() is None  # a completed run is never handed out again


def test_concurrent_claims_hand_out_each_run_once(tmp_path):
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as s:
        hashes = [r.hash for r in s.add_many([_cfg(i) for i in range(24)])]
    got: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        st = RunStore(path, timeout_s=10)  # one connection per worker, as processes have
        while (rec := st.claim(hashes)) is not None:
            with lock:
                got.append(rec.hash)
        st.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(hashes)


def test_result_from_a_lost_claim_is_discarded(store):
    rec = store.add(_cfg(0))
    first = store.claim()
    # Its worker is presumed dead (heartbeat far in the past), another worker reclaims and claims it.
    store._conn.execute("UPDATE runs SET heartbeat_at = 0, hostname = 'elsewhere' WHERE hash = ?", (rec.hash,))
    second = store.claim()
    assert second.hash == rec.hash and second.claim_id != first.claim_id and second.attempts == 2
    with pytest.raises(ClaimLostError, match="reclaimed"):
        store.finish(rec.hash, _result(1280, loss=9.0), claim_id=first.claim_id)
    store.finish(rec.hash, _result(1280, loss=2.0), claim_id=second.claim_id)
    assert store.get(rec.hash).final_val_loss == 2.0
    assert len(store.curve(rec.hash)) == 10  # one curve, not two


def test_dead_worker_pid_is_reclaimed(store):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a pid that existed on this host and is gone
    rec = store.add(_cfg(0))
    store.claim(pid=proc.pid)
    assert store.get(rec.hash).status == "running"
    assert store.reclaim_stale() == [rec.hash]
    back = store.get(rec.hash)
    assert back.status == "pending" and "stopped" in back.error


def test_live_worker_is_not_reclaimed(store):
    rec = store.add(_cfg(0))
    store.claim()  # this process: alive, fresh heartbeat
    assert store.reclaim_stale() == []
    assert store.claim() is None
    assert store.get(rec.hash).status == "running"


def test_wsd_branches_are_runs_linked_to_their_parent(store):
    rec = store.add(_cfg(3, schedule="wsd", decay_fraction=0.2, decay_branches=[1280, 2560]))
    c = store.claim()
    branches = [
        {"at_tokens": 1280, "decay_tokens": 320, "final_val_loss": 3.1, "final_train_loss": 3.2, "tokens_seen": 1536,
         "steps": 12, "status": "completed", "config_hash": "x", "curve": [{"step": 11, "tokens": 1408,
                                                                            "train_loss": 3.3, "val_loss": None,
                                                                            "lr": 5e-4}]},
        {"at_tokens": 2560, "decay_tokens": 640, "final_val_loss": 2.9, "final_train_loss": 3.0, "tokens_seen": 3200,
         "steps": 25, "status": "completed", "config_hash": "y", "curve": []},
    ]
    store.finish(rec.hash, _result(5120, loss=2.7, branches=branches), claim_id=c.claim_id)
    kids = store.children(rec.hash)
    assert [k.kind for k in kids] == ["branch", "branch"]
    assert {k.parent_hash for k in kids} == {rec.hash}
    assert [k.hash for k in kids] == [branch_hash(rec.hash, 1280, 320), branch_hash(rec.hash, 2560, 640)]
    assert len({rec.hash, *(k.hash for k in kids)}) == 3
    assert [k.final_val_loss for k in kids] == [3.1, 2.9]
    assert [k.config["n_tokens"] for k in kids] == [1600, 3200]  # the from-scratch run each one stands for
    assert [k.tokens_seen for k in kids] == [1536, 3200]
    assert all(k.config["decay_branches"] == [] for k in kids)
    assert len(store.curve(kids[0].hash)) == 1
    # Branches are (N, D) points of their own for the laws.
    cols = store.runs_table()
    assert sorted(cols["D"]) == [1536, 3200, 5120]
    # Removing the parent removes its branches.
    assert set(store.remove(rec.hash[:7])) == {rec.hash, *(k.hash for k in kids)}
    assert len(store) == 0 and store.n_curve_points() == 0


def test_runs_table_conventions_and_fit_loader(store, tmp_path):
    for i in range(3):
        store.add(_cfg(i))
        c = store.claim()
        store.finish(c.hash, _result(1280 * (i + 1), loss=3.0 - 0.2 * i), claim_id=c.claim_id)
    store.add(_cfg(9))  # pending: not a fit point
    t = store.runs_table()
    assert len(t["hash"]) == 3
    # C = 6 N_active D (Kaplan et al. 2020 eq. 2.1; Hoffmann et al. 2022 sec. 3).
    for n, d, c in zip(t["N_active"], t["D"], t["C"], strict=True):
        assert c == pytest.approx(6 * n * d)
    cols = load_runs_for_fit(store.path)
    assert isinstance(cols["N"], np.ndarray) and cols["N"].dtype == float
    np.testing.assert_allclose(cols["loss"], [3.0, 2.8, 2.6])
    np.testing.assert_allclose(cols["D"], [1280, 2560, 3840])
    with pytest.raises(FileNotFoundError):
        load_runs_for_fit(tmp_path / "missing.sqlite")


def test_export_csv_and_parquet_roundtrip(store, tmp_path):
    for i in range(2):
        store.add(_cfg(i))
        c = store.claim()
        store.finish(c.hash, _result(1280 * (i + 1), loss=2.0 + i), claim_id=c.claim_id)
    out = store.export(tmp_path / "runs.csv")
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["loss"]) for r in rows] == [2.0, 3.0]
    assert [int(r["D"]) for r in rows] == [1280, 2560]
    import pyarrow.parquet as pq

    table = pq.read_table(store.export(tmp_path / "runs.parquet", format="parquet")).to_pydict()
    assert table["loss"] == [2.0, 3.0] and table["hash"] == [r["hash"] for r in rows]
    curves = pq.read_table(store.export(tmp_path / "c.parquet", format="parquet", what="curves")).to_pydict()
    assert len(curves["step"]) == 10 + 20
    with pytest.raises(ConfigError, match="unknown export format"):
        store.export(tmp_path / "x.xlsx", format="xlsx")


def test_export_into_a_missing_folder_names_the_users_file(store, tmp_path):
    # the error used to name OUT.partial, the temporary file the user never asked for
    out = tmp_path / "missing" / "runs.csv"
    with pytest.raises(FileNotFoundError) as e:
        store.export(out)
    assert e.value.filename == str(out)


def test_prefix_lookup_unknown_and_running_removal(store):
    rec = store.add(_cfg(0))
    assert store.get(rec.hash[:5]).hash == rec.hash
    with pytest.raises(UnknownNameError, match="tunnel ls"):
        store.get("zzzz")
    store.claim()
    with pytest.raises(StoreError, match="running"):
        store.remove(rec.hash)
    assert store.remove(rec.hash, force=True) == [rec.hash]


def test_newer_schema_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as s:
        s.add(_cfg(0))
        c = s.claim()
        s.finish(c.hash, _result(1280), claim_id=c.claim_id)
    con = sqlite3.connect(path)
    con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    before = _rows(path)
    with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION + 1}"):
        RunStore(path)
    assert _rows(path) == before == {"runs": 1, "curves": 10, "checkpoints": 0}


def test_locked_store_raises_store_locked_and_loses_nothing(tmp_path):
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as s:
        s.add(_cfg(0))
        c = s.claim()
        s.finish(c.hash, _result(1280), claim_id=c.claim_id)
    before = _rows(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        st = RunStore(path, timeout_s=0.2)
        assert len(st.runs()) == 1  # WAL: readers still read while another process writes
        with pytest.raises(StoreLockedError, match="locked by another process"):
            st.add(_cfg(1))
        with pytest.raises(StoreLockedError):
            st.claim()
        st.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _rows(path) == before
    with RunStore(path) as s:  # usable again once the lock is gone
        s.add(_cfg(1))
        assert len(s) == 2


def test_not_a_database_and_directory_paths(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a readable SQLite"):
        RunStore(bad)
    assert bad.read_bytes() == b"this is not sqlite" * 100
    with pytest.raises(StoreError, match="directory"):
        RunStore(tmp_path)


def test_another_programs_sqlite_database_is_refused_and_left_untouched(tmp_path):
    # `tunnel run --store app.db` used to add the store's tables to someone else's database and switch it
    # to WAL, while `tunnel ls` on the same file said it was not a store
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE users (name TEXT)")
        c.execute("INSERT INTO users VALUES ('ada')")
    c.close()
    before = other.read_bytes()
    with pytest.raises(StoreError, match=r"not a scalelab run store; it is left untouched.*its tables: users"):
        RunStore(other)
    assert other.read_bytes() == before
    RunStore(tmp_path / "new.sqlite").close()  # a new file, and an empty one, still become stores
    (tmp_path / "empty.sqlite").touch()
    RunStore(tmp_path / "empty.sqlite").close()


def test_a_writer_killed_mid_transaction_loses_nothing_committed(tmp_path):
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as s:
        s.add(_cfg(0))
        c = s.claim()
        s.finish(c.hash, _result(1280), claim_id=c.claim_id)
    before = _rows(path)
    script = (
        "import os, signal, sqlite3\n"
        f"con = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
        "con.execute('BEGIN IMMEDIATE')\n"
        "con.execute(\"DELETE FROM curves\")\n"
        "con.execute(\"UPDATE runs SET status='failed'\")\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -9
    with RunStore(path) as s:
        assert _rows(path) == before
        assert s.counts() == {"completed": 1}


def test_bad_status_filter_and_bad_config(store):
    with pytest.raises(ConfigError, match="unknown run status"):
        store.runs(status="done")
    with pytest.raises(ConfigError, match="RunConfig or a dict"):
        store.add(42)
    with pytest.raises(ConfigError, match="completed, diverged or pruned"):
        rec = store.add(_cfg(0))
        store.finish(rec.hash, {"status": "running"})


def test_heartbeat_keeps_a_run_and_reports_lost_claims(store):
    rec = store.add(_cfg(0))
    c = store.claim()
    t0 = store.get(rec.hash).heartbeat_at
    time.sleep(0.01)
    assert store.heartbeat(rec.hash, c.claim_id, tokens=640)
    after = store.get(rec.hash)
    assert after.heartbeat_at > t0 and after.progress_tokens == 640
    assert not store.heartbeat(rec.hash, "someone-else")


def test_an_older_store_gains_new_columns_without_losing_rows(tmp_path):
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as s:
        rec = s.add(_cfg(0))
        c = s.claim()
        s.finish(c.hash, _result(1280), claim_id=c.claim_id)
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE runs DROP COLUMN resumed_from_step")  # as a store written before that column
    con.execute("PRAGMA user_version = 0")  # ... which was before stores were numbered by user_version
    con.commit()
    con.close()
    before = _rows(path)
    with RunStore(path) as s:
        assert s.get(rec.hash).final_val_loss == 2.5 and s.get(rec.hash).resumed_from_step is None
    assert _rows(path) == before


def _live_child():
    """A process that is alive (and not this one) for the length of a test."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_reused_pid_is_reclaimed_by_its_start_time(store):
    """Issue 12: a stale `running` row whose pid now belongs to another live process was skipped (exit 0,
    grid incomplete). The claim records the process's start time, and a different one means another
    process holds the pid now."""
    from scalelab.tunnel.queue import _process_start

    child = _live_child()
    try:
        if _process_start(child.pid) is None:
            pytest.skip("no way to read a process's start time here (no /proc, no psutil)")
        rec = store.add(_cfg(0))
        store.claim(pid=child.pid)
        held = store.get(rec.hash)
        assert held.pid_start == _process_start(child.pid)
        assert store.reclaim_stale() == []  # the claimant itself is alive: keep it
        # the claimant died and the kernel gave its pid to this live child, which started at another time
        store._conn.execute("UPDATE runs SET pid_start = 'linux:1' WHERE hash = ?", (rec.hash,))
        assert store.reclaim_stale() == [rec.hash]
        assert store.get(rec.hash).status == "pending"
    finally:
        child.kill()
        child.wait()


def test_a_claim_without_a_start_time_falls_back_to_pid_and_heartbeat(store):
    """Rows written before the start time was stored (or where it cannot be read) are judged as before."""
    child = _live_child()
    try:
        rec = store.add(_cfg(0))
        store.claim(pid=child.pid)
        store._conn.execute("UPDATE runs SET pid_start = NULL WHERE hash = ?", (rec.hash,))
        assert store.reclaim_stale() == []
        store._conn.execute("UPDATE runs SET heartbeat_at = 0 WHERE hash = ?", (rec.hash,))
        assert store.reclaim_stale() == [rec.hash]
    finally:
        child.kill()
        child.wait()


def test_a_store_from_before_pid_start_opens_read_only_and_migrates_on_write(tmp_path):
    path = tmp_path / "old.sqlite"
    with RunStore(path) as s:
        h = s.add(_cfg(0)).hash
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE runs DROP COLUMN pid_start")
    con.execute("PRAGMA user_version = 0")
    con.commit()
    con.close()
    with RunStore(path, readonly=True) as ro:
        assert ro.get(h).pid_start is None and len(ro.runs()) == 1
    with RunStore(path) as rw:  # the additive migration adds the column back
        claimed = rw.claim()
        assert claimed is not None and claimed.hash == h
        if sys.platform == "linux":
            assert claimed.pid_start is not None


def test_a_bad_store_timeout_variable_is_named(tmp_path, monkeypatch):
    # SCALELAB_STORE_TIMEOUT_S=abc raised a bare float() ValueError traceback from every store command
    monkeypatch.setenv("SCALELAB_STORE_TIMEOUT_S", "abc")
    with pytest.raises(ConfigError, match=r"environment variable SCALELAB_STORE_TIMEOUT_S .*\(got 'abc'\)"):
        RunStore(tmp_path / "runs.sqlite")
    monkeypatch.setenv("SCALELAB_STORE_TIMEOUT_S", "-1")
    with pytest.raises(ConfigError, match="SCALELAB_STORE_TIMEOUT_S"):
        RunStore(tmp_path / "runs.sqlite")
    monkeypatch.setenv("SCALELAB_STORE_TIMEOUT_S", "")
    RunStore(tmp_path / "runs.sqlite").close()


def test_one_damaged_config_leaves_the_other_runs_readable_and_removable(store, tmp_path):
    # a config_json that is not JSON (a hand edit, a disk error) made every ls/show/fit/export of the store a
    # JSONDecodeError traceback, so none of its runs could be read or the bad one removed
    for i in range(3):
        store.add(_cfg(i))
        c = store.claim()
        store.finish(c.hash, _result(1280 * (i + 1), loss=2.0 + i), claim_id=c.claim_id)
    bad = store.runs()[0].hash
    with sqlite3.connect(store.path) as c:
        c.execute("UPDATE runs SET config_json='{bad' WHERE hash=?", (bad,))
    c.close()
    runs = store.runs()
    assert len(runs) == 3 and [r.final_val_loss for r in runs] == [2.0, 3.0, 4.0]
    rec = store.get(bad)
    assert rec.config == {} and f"scalelab tunnel rm {bad} --force" in rec.error
    assert rec.summary()["model"] == "L? d?"
    assert len(load_runs_for_fit(store.path)["loss"]) == 3
    store.remove(bad, force=True)
    assert len(store.runs()) == 2


def test_a_pending_run_with_a_damaged_config_fails_alone(store):
    pytest.importorskip("torch")
    from scalelab.tunnel.runner import execute_run

    store.add(_cfg(0))
    h = store.runs()[0].hash
    with sqlite3.connect(store.path) as c:
        c.execute("UPDATE runs SET config_json='[1, 2]' WHERE hash=?", (h,))
    c.close()
    rec = execute_run(store, store.claim())
    assert rec.status == "failed" and "stored config is unreadable" in rec.error
