"""Schema migrations by ``PRAGMA user_version``: a store written by the code before them (committed under
tests/assets/stores, made by make_store_v1.py with that code) opens, upgrades and loses nothing."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from scalelab.errors import SchemaVersionError
from scalelab.tunnel import schema
from scalelab.tunnel.store import SCHEMA_VERSION, RunStore

ASSET = Path(__file__).parents[1] / "assets" / "stores" / "store_v1.sqlite"


@pytest.fixture
def old_store(tmp_path):
    p = tmp_path / "old.sqlite"
    shutil.copyfile(ASSET, p)
    return p


def _dump(path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(path)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in ("runs", "curves")}
    finally:
        con.close()


def _header(path) -> tuple[int, int, set[str]]:
    con = sqlite3.connect(path)
    try:
        cols = {r[1] for r in con.execute("PRAGMA table_info(runs)")}
        return (con.execute("PRAGMA user_version").fetchone()[0],
                con.execute("SELECT MAX(version) FROM schema_version").fetchone()[0], cols)
    finally:
        con.close()


def test_the_asset_is_a_store_from_before_user_version(old_store):
    user, table, cols = _header(old_store)
    assert (user, table) == (0, 1) and "step_s" not in cols and "pid_start" in cols


def test_an_old_store_upgrades_on_a_write_open_and_keeps_every_row(old_store):
    before = _dump(old_store)
    with RunStore(old_store) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.counts() == {"completed": 2, "pending": 1, "failed": 1}
        rec = s.get(next(r.hash for r in s.runs(kind="run", status="completed")), with_curve=True)
        assert rec.final_val_loss == 2.5 and len(rec.curve or []) == 10 and rec.step_s is None
        assert len(s.children(rec.hash)) == 1
    user, table, cols = _header(old_store)
    assert user == table == SCHEMA_VERSION and set(schema.RUN_COLUMNS) <= cols
    after = _dump(old_store)
    n_old = len(before["runs"][0])
    # every old value is where it was; the new columns are appended, empty
    assert [r[:n_old] for r in after["runs"]] == before["runs"] and after["curves"] == before["curves"]
    assert all(v is None for r in after["runs"] for v in r[n_old:])


def test_an_old_store_opens_read_only_without_being_changed(old_store):
    raw = old_store.read_bytes()
    with RunStore(old_store, readonly=True) as s:
        assert len(s.runs(status=None)) == 4 and s.schema_version == 1
        assert all(r.peak_mem_bytes is None for r in s.runs(status=None))
    assert old_store.read_bytes() == raw


def test_the_upgraded_store_takes_the_new_columns(old_store):
    with RunStore(old_store) as s:
        h = next(r.hash for r in s.runs(status="pending"))
        c = s.claim([h])
        s.finish(c.hash, {"status": "completed", "final_val_loss": 2.0, "tokens_seen": 2560, "steps": 20,
                          "flops_per_token": 6.2e5, "curve": [], "branches": [], "device": "cpu", "step_s": 0.012,
                          "pred_step_s": 0.011, "peak_mem_bytes": 12345, "pred_mem_bytes": 12000},
                 claim_id=c.claim_id)
        r = s.get(h)
        assert (r.device, r.step_s, r.pred_step_s, r.peak_mem_bytes, r.pred_mem_bytes) == \
            ("cpu", 0.012, 0.011, 12345, 12000)


def test_a_second_open_does_not_migrate_again(old_store, monkeypatch):
    RunStore(old_store).close()
    calls = []
    monkeypatch.setattr(schema, "MIGRATIONS", tuple(lambda c, f=f: (calls.append(f), f(c)) for f in schema.MIGRATIONS))
    RunStore(old_store).close()
    assert calls == []


@pytest.mark.parametrize("where", ["user_version", "table"])
def test_a_store_from_a_newer_build_is_refused_whichever_number_says_so(old_store, where):
    RunStore(old_store).close()
    con = sqlite3.connect(old_store)
    if where == "user_version":
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    else:
        con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    raw = old_store.read_bytes()
    with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION + 1}"):
        RunStore(old_store)
    assert old_store.read_bytes() == raw


def test_a_migration_that_fails_leaves_the_store_at_its_old_version(old_store, monkeypatch):
    def broken(c):
        c.execute("ALTER TABLE runs ADD COLUMN half_done TEXT")
        raise RuntimeError("disk full")

    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS[:1], broken))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 2)
    import scalelab.tunnel.connection as conn_mod

    monkeypatch.setattr(conn_mod, "SCHEMA_VERSION", 2)
    with pytest.raises(RuntimeError, match="disk full"):
        RunStore(old_store)
    user, table, cols = _header(old_store)
    assert (user, table) == (0, 1) and "half_done" not in cols
