"""Issue 12, wind-tunnel side: a grid that cannot realise its budgets, a non-UTF-8 corpus, recipes that
raise, and read-only stores; each a clear error (or a clean read), never silent nonsense or a traceback."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from scalelab.errors import ConfigError, CorpusError, StoreError
from scalelab.tunnel.data import iter_documents
from scalelab.tunnel.grid import isoflop_grid, load_grid
from scalelab.tunnel.store import RunStore


def test_a_grid_whose_steps_are_too_big_for_its_budgets_says_so():
    with pytest.raises(ConfigError, match="cannot realise its compute budget") as e:
        isoflop_grid([1e11, 3e11], [5e4, 1e5, 2e5], defaults={"seq_len": 100_000, "batch_size": 4, "lr": 1e-3})
    assert "seq_len" in str(e.value) and "C=1e+11" in str(e.value)
    ok = isoflop_grid([1e11, 3e11], [5e4, 1e5, 2e5], defaults={"seq_len": 32, "batch_size": 4, "lr": 1e-3})
    assert len(ok) == 6 and len({c.n_tokens for c in ok.configs}) == 6


def test_a_latin1_corpus_is_an_error_not_replacement_characters(tmp_path):
    f = tmp_path / "latin.txt"
    f.write_bytes("café au lait\n".encode("latin-1") * 50)
    with pytest.raises(CorpusError, match=r"not UTF-8 text \(byte 0xe9 at offset 3\)") as e:
        list(iter_documents(str(f)))
    assert "iconv" in str(e.value)
    g = tmp_path / "utf8.txt"
    g.write_text("café au lait\n", encoding="utf-8")
    assert next(iter_documents(str(g))).text == "café au lait\n"


@pytest.mark.parametrize("source, needle", [
    ("x = 1\ny = 1 / 0\n", "importing it at line 2 (got 'ZeroDivisionError: division by zero')"),
    ("import not_a_module_xyz\n", "ModuleNotFoundError"),
    ("def grid(:\n", "SyntaxError"),
    ("def grid():\n    return {}['nope']\n", "calling grid() at line 2"),
    # a grid() that returns no runs: these raised "'int' object is not iterable" and "'dict' object has no
    # attribute 'content_hash'"
    ("def grid():\n    return 5\n", "did not return runs (got 'int 5')"),
    ("def grid():\n    return [{'lr': 1e-3}]\n", "item 0 of the list recipe"),
])
def test_a_recipe_that_raises_is_one_clear_line(tmp_path, source, needle):
    f = tmp_path / "recipe.py"
    f.write_text(source)
    with pytest.raises(ConfigError) as e:
        load_grid(str(f))
    assert needle in str(e.value) and str(f) in str(e.value)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_readonly_store_reads_and_refuses_writes_without_touching_the_file(ro_store):
    before = _digest(ro_store)
    with RunStore(ro_store, readonly=True) as st:
        assert len(st.runs()) == 6 and st.counts() == {"completed": 6}
        with pytest.raises(StoreError, match="read-only"):
            st.add({"model": {"n_layers": 1}, "n_tokens": 1})
    assert _digest(ro_store) == before
    with RunStore(ro_store) as st:
        assert len(st) == 6  # nothing was added


def test_readonly_store_missing_or_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="no run store at this path"):
        RunStore(tmp_path / "typo.sqlite", readonly=True)
    assert not (tmp_path / "typo.sqlite").exists()
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not a scalelab run store"):
        RunStore(other, readonly=True)


#: Linux capabilities that let root read and write whatever the permission bits say: DAC_OVERRIDE,
#: DAC_READ_SEARCH, FOWNER (linux/capability.h).
_PERMISSION_BYPASS_CAPS = (1, 2, 3)


def _without_permission_bypass(args: list[str]) -> subprocess.CompletedProcess:
    """Run ``scalelab ARGS`` in a child whose capability bounding set lacks the permission bypass, so file
    permissions bind it even as root (PR_CAPBSET_DROP before exec; the child's permitted set is the bounding
    set)."""
    libc = ctypes.CDLL(None, use_errno=True)

    def drop() -> None:
        for cap in _PERMISSION_BYPASS_CAPS:
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")

    code = "import sys; from scalelab.cli.app import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          preexec_fn=drop)


def test_store_in_a_readonly_folder_can_be_listed_and_fitted(ro_store):
    """A store the user can read but not write, in a folder they cannot write, is listed and fitted read-only
    and left as it was. Root ignores permission bits, so as root the commands run in a child without the
    capabilities that bypass them."""
    folder = ro_store.parent
    before = _digest(ro_store)
    ro_store.chmod(0o444)
    folder.chmod(0o555)
    try:
        for args in (["tunnel", "ls", "--store", str(ro_store), "--format", "json"],
                     ["fit", str(ro_store), "--format", "json"]):
            if os.geteuid() != 0:
                from scalelab.cli.app import main

                assert main(args) == 0
                continue
            try:
                done = _without_permission_bypass(args)
            except subprocess.SubprocessError as e:  # the preexec hook failed: no CAP_SETPCAP here
                pytest.skip(f"as root, and cannot drop the permission-bypass capabilities: {e}")
            assert done.returncode == 0, (args, done.stderr)
            assert "Traceback" not in done.stderr
        if os.geteuid() == 0:
            assert json.loads(done.stdout)["params"]
        assert _digest(ro_store) == before and sorted(p.name for p in folder.iterdir()) == [ro_store.name]
    finally:
        folder.chmod(0o755)
        ro_store.chmod(0o644)


@pytest.fixture
def listed_store(tmp_path):
    """A store with two finished runs of one grid and a pending run of another (no training needed)."""
    from scalelab.tunnel.store import RunStore

    path = tmp_path / "runs.sqlite"
    with RunStore(path) as s:
        for i in range(3):
            s.add({"model": {"n_layers": 2, "d_model": 64, "moe": {"n_experts": 8}}, "seed": i,
                   "n_tokens": 10**6 * (i + 1)}, grid="isoflop-with-a-long-grid-name" if i < 2 else "other")
        s._conn.execute("UPDATE runs SET status='completed', final_val_loss=3.0 - rowid * 0.1, "
                        "n_params=1234567 * rowid WHERE rowid < 3")
        hashes = [r.hash for r in s.runs()]
    return path, hashes


def _ls(args, capsys, monkeypatch, width=80):
    from scalelab.cli import _output
    from scalelab.cli.app import main

    monkeypatch.setattr(_output.console, "_width", width)
    assert main(["tunnel", "ls", *args]) == 0
    return capsys.readouterr().out


def test_ls_at_80_columns_shows_status_and_full_hashes(listed_store, capsys, monkeypatch):
    """Issue 12: below ~105 columns status and hash were truncated, so a hash could not be copied."""
    path, hashes = listed_store
    out = _ls(["--store", str(path)], capsys, monkeypatch)
    assert max(len(line) for line in out.splitlines()) <= 80
    for h in hashes:
        assert h in out
    assert out.count("completed") >= 2 and "pending" in out and "…" not in out
    wide = _ls(["--store", str(path), "--wide"], capsys, monkeypatch)
    assert "isoflop-with-a-long-grid-name" in wide and "tokens/s" in wide and "…" not in wide


def test_ls_filters_and_sorts(listed_store, capsys, monkeypatch):
    path, (first, second, pending) = listed_store
    out = _ls(["--store", str(path), "--sort", "loss"], capsys, monkeypatch)
    # losses 2.9 (first) and 2.8 (second): lowest first, the run without a loss last
    assert out.index(second) < out.index(first) < out.index(pending)
    out = _ls(["--store", str(path), "--sort", "loss", "--reverse", "--status", "completed"], capsys, monkeypatch)
    assert out.index(first) < out.index(second) and pending not in out
    out = _ls(["--store", str(path), "--grid", "other"], capsys, monkeypatch)
    assert pending in out and first not in out
    nope = " ".join(_ls(["--store", str(path), "--grid", "nope"], capsys, monkeypatch).split())
    assert "no runs matching --grid nope" in nope
    assert "grids in this store: isoflop-with-a-long-grid-name, other" in nope  # no close name: all of them
    near = " ".join(_ls(["--store", str(path), "--grid", "isoflop"], capsys, monkeypatch).split())
    assert "did you mean 'isoflop-with-a-long-grid-name'?" in near
    # the grid exists and another filter left nothing: no suggestion
    args = ["--store", str(path), "--grid", "other", "--status", "completed"]
    other = " ".join(_ls(args, capsys, monkeypatch).split())
    assert "no runs matching --status completed --grid other" in other and "did you mean" not in other
    from scalelab.cli.app import main

    assert main(["tunnel", "ls", "--store", str(path), "--status", "finished"]) == 1
    assert "unknown run status" in capsys.readouterr().err


def test_a_read_only_open_refuses_rather_than_hide_unmerged_wal_writes(ro_store, monkeypatch):
    """Where a plain read-only open fails (a folder the user cannot write), the immutable fallback would
    ignore the -wal file and show only part of the runs: with a non-empty -wal it refuses instead."""
    real = sqlite3.connect

    def no_plain_ro(database, *args, **kwargs):
        if str(database).endswith("?mode=ro"):
            raise sqlite3.OperationalError("unable to open database file")
        return real(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", no_plain_ro)
    assert len(RunStore(ro_store, readonly=True).runs()) == 6       # no -wal: the fallback is safe
    wal = ro_store.parent / (ro_store.name + "-wal")
    wal.write_bytes(b"\x37\x7f\x06\x82" + b"\0" * 28)
    with pytest.raises(StoreError, match="-wal file"):
        RunStore(ro_store, readonly=True)
