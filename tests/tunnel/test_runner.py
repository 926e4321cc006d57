"""The grid runner against a real store and real (tiny) training: skipping finished runs, diverged runs
stored while the grid goes on, WSD branches as linked runs, a grid killed with SIGKILL and run again
(acceptance 3), bad corpora failing before anything is written (acceptance 7), and the progress displays."""

from __future__ import annotations

import io
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scalelab.arch import ModelSpec
from scalelab.errors import CorpusError
from scalelab.tunnel.grid import load_grid
from scalelab.tunnel.progress import LogProgress, RichProgress
from scalelab.tunnel.queue import _pid_alive
from scalelab.tunnel.runner import RunOptions, run_grid
from scalelab.tunnel.store import RunStore

pytest.importorskip("torch")

MODEL = {"n_layers": 1, "d_model": 32, "n_heads": 2, "d_ff": 96, "vocab_size": 256, "seq_len": 16}
STEP = 16 * 4  # tokens per step


def _config(corpus: Path, steps: int, **kw):
    from scalelab.tunnel.train import RunConfig

    base = {"model": ModelSpec(**MODEL), "corpus": str(corpus), "seq_len": 16, "batch_size": 4,
            "n_tokens": steps * STEP, "lr": 3e-3, "eval_tokens": 256}
    base.update(kw)
    return RunConfig(**base)


def _rows(path) -> dict[str, int]:
    con = sqlite3.connect(path)
    try:
        return {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("runs", "curves")}
    finally:
        con.close()


def test_grid_runs_once_and_a_second_run_skips_finished_and_diverged(corpus, tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    configs = [_config(corpus, 8), _config(corpus, 6, lr=1e3, grad_clip=0.0), _config(corpus, 8, seed=1)]
    recs = run_grid(configs, store, quiet=True)
    assert [r.status for r in recs] == ["completed", "diverged", "completed"]
    assert "not finite or above" in recs[1].error  # the trainer's reason is kept
    assert all(r.final_val_loss is not None and r.final_val_loss < 5.6 for r in (recs[0], recs[2]))
    assert [len(store.curve(r.hash)) for r in (recs[0], recs[2])] == [8, 8]
    before = {r.hash: (r.finished_at, r.attempts) for r in recs}
    again = run_grid(configs, store, quiet=True)
    assert {r.hash: (r.finished_at, r.attempts) for r in again} == before
    assert len(store) == 3


def test_wsd_decay_branches_are_distinct_runs_linked_to_their_parent(corpus, tmp_path):
    from scalelab.tunnel.train import RunConfig

    store = RunStore(tmp_path / "runs.sqlite")
    cfg = _config(corpus, 20, schedule="wsd", decay_fraction=0.25, warmup_tokens=2 * STEP,
                  decay_branches=(4 * STEP, 8 * STEP))
    (parent,) = run_grid([cfg], store, quiet=True)
    kids = store.children(parent.hash)
    assert parent.status == "completed" and parent.kind == "run" and parent.parent_hash is None
    assert len(kids) == 2 and all(k.kind == "branch" and k.parent_hash == parent.hash for k in kids)
    assert len({parent.hash, *(k.hash for k in kids)}) == 3
    assert [k.branch_at_tokens for k in kids] == [4 * STEP, 8 * STEP]
    for k in kids:
        assert k.status == "completed" and k.final_val_loss is not None
        # The stored config is the from-scratch run the branch stands for (RunConfig.branch_config).
        assert RunConfig.model_validate(k.config) == cfg.branch_config(k.branch_at_tokens)
        assert k.tokens_seen == k.config["n_tokens"] // STEP * STEP and len(store.curve(k.hash)) > 0
    # Each branch is an (N, D) point of its own; the parent's D is its full run.
    table = store.runs_table()
    assert sorted(table["D"]) == sorted([k.tokens_seen for k in kids] + [20 * STEP])


_GRID_SCRIPT = textwrap.dedent("""
    import sys
    from scalelab.tunnel.runner import RunOptions, run_grid
    if __name__ == "__main__":
        run_grid(sys.argv[1], sys.argv[2], workers=int(sys.argv[3]), quiet=True,
                 options=RunOptions(checkpoint_every_steps=2, heartbeat_every_s=0.1))
""")


@pytest.mark.slow  # end to end with several processes: ~15-30 s on 2 cores
def test_sigkilled_grid_resumes_without_losing_or_duplicating_runs(corpus, tmp_path, grid_toml):
    """Acceptance 3: kill the grid process (SIGKILL) mid-run, run the grid again."""
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(grid_toml(corpus, [6, 400, 6]))
    script = tmp_path / "run_grid.py"
    script.write_text(_GRID_SCRIPT)
    db = tmp_path / "runs.sqlite"
    grid = load_grid(grid_file)
    short_a, long_run, short_b = grid.hashes()
    proc = subprocess.Popen([sys.executable, str(script), str(grid_file), str(db), "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            time.sleep(0.1)
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            if store is None:
                if not db.exists():
                    continue
                store = RunStore(db)
            recs = {r.hash: r for r in store.runs()}
            lr = recs.get(long_run)
            done = [h for h in (short_a, short_b) if recs.get(h) and recs[h].status == "completed"]
            if (lr is not None and lr.status == "running" and store.checkpoint_path(long_run).exists()
                    and done):
                break
        else:
            pytest.fail("the grid never reached the middle of its long run")
        victim = store.get(long_run).pid
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The workers die with the grid process (PR_SET_PDEATHSIG): nothing keeps writing behind our back.
    for _ in range(100):
        if not _pid_alive(victim):
            break
        time.sleep(0.1)
    assert not _pid_alive(victim)
    before = {r.hash: (r.finished_at, r.attempts) for r in store.runs(status="completed")}
    assert store.get(long_run).status == "running"  # left behind by the killed worker

    records = run_grid(grid, store, quiet=True, options=RunOptions(checkpoint_every_steps=2))
    assert [r.status for r in records] == ["completed"] * 3
    assert len(store) == 3 and sorted(r.hash for r in store.runs()) == sorted(grid.hashes())
    for h, (finished, attempts) in before.items():  # completed runs kept exactly once, untouched
        r = store.get(h)
        assert (r.finished_at, r.attempts) == (finished, attempts) == (finished, 1)
    resumed = store.get(long_run)
    assert resumed.attempts == 2 and resumed.resumed_from_step > 0  # resumed from its checkpoint
    steps = [p["step"] for p in store.curve(long_run)]
    assert steps == list(range(1, 401))  # one point per step, none lost, none twice
    assert not store.checkpoint_path(long_run).exists()


def test_bad_corpus_fails_before_anything_is_written(corpus, tmp_path):
    """Acceptance 7: an empty or missing corpus is a clear CorpusError; stored runs are untouched."""
    store = RunStore(tmp_path / "runs.sqlite")
    run_grid([_config(corpus, 4)], store, quiet=True)
    before = _rows(store.path)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(CorpusError, match=r"empty|no text"):
        run_grid([_config(empty, 4)], store, quiet=True)
    with pytest.raises(CorpusError, match="does not exist"):
        run_grid([_config(tmp_path / "nowhere" / "x.txt", 4)], store, quiet=True)
    assert _rows(store.path) == before


@pytest.mark.slow  # end to end with several processes: ~15-30 s on 2 cores
def test_parallel_workers_match_one_process(corpus, tmp_path):
    configs = [_config(corpus, 6, seed=s) for s in range(3)]
    one = run_grid(configs, RunStore(tmp_path / "a.sqlite"), quiet=True)
    two = run_grid(configs, RunStore(tmp_path / "b.sqlite"), workers=2, quiet=True,
                   options=RunOptions(torch_threads=1))
    assert [r.hash for r in one] == [r.hash for r in two]
    assert [r.status for r in two] == ["completed"] * 3
    # Same seed, same data order, same model: the same losses whichever process trained the run.
    for a, b in zip(one, two, strict=True):
        assert b.final_val_loss == pytest.approx(a.final_val_loss, rel=1e-4)
    assert len({r.pid for r in two}) >= 1 and all(r.pid != os.getpid() for r in two)


def test_progress_displays(caplog):
    from rich.console import Console

    buf = io.StringIO()
    rich = RichProgress(Console(file=buf, force_terminal=False, width=120))
    rich.start(name="demo", total_runs=2, done_runs=1, total_flops=100.0)
    rich.run_started("abc", "C=1e10", 1000, 100.0)
    rich.run_progress("abc", 500, 1234.0)
    rich.run_finished("abc", "completed", 3.2, 1.0)
    rich.close()
    out = buf.getvalue()
    assert "runs 2/2" in out and "demo" in out
    with caplog.at_level(logging.INFO, logger="scalelab.tunnel"):
        q = LogProgress()
        q.start(name="demo", total_runs=1, done_runs=0, total_flops=1e9)
        q.run_finished("abcdef0123456", "diverged", None, 2.0)
    assert "abcdef0123 diverged" in caplog.text and "[1/1]" in caplog.text


def test_a_worker_that_lost_its_claim_does_not_overwrite_the_new_owner(corpus, tmp_path):
    from scalelab.tunnel.runner import execute_run

    store = RunStore(tmp_path / "runs.sqlite")
    cfg = _config(corpus, 4)
    store.add(cfg)
    rec = store.claim()
    # Meanwhile another worker reclaimed the run (this one looked dead) and holds a new claim.
    store._conn.execute("UPDATE runs SET claim_id = 'new-owner' WHERE hash = ?", (rec.hash,))
    out = execute_run(store, rec)
    assert out.status == "running" and out.claim_id == "new-owner" and out.final_val_loss is None
    assert store.curve(rec.hash) == []
