"""The Ray backend's two halves without Ray: the task trains from a config alone (no store), and the driver
stores what the tasks send back under its own claims (issue 12 part 3; the end-to-end test with a local Ray
cluster whose workers cannot see the store is in test_backends.py, slow)."""

from __future__ import annotations

import pytest

from scalelab.tunnel.progress import GridProgress
from scalelab.tunnel.ray_backend import _Driver, _train_task
from scalelab.tunnel.runner import RunOptions
from scalelab.tunnel.store import RunStore

MODEL = {"n_layers": 1, "d_model": 32, "n_heads": 2, "d_ff": 96, "vocab_size": 256, "seq_len": 16}


class _Inbox:
    """Stands in for the inbox actor's handle: ``inbox.put.remote(event)``."""

    def __init__(self) -> None:
        self.events: list = []
        self.put = self
        self.remote = self.events.append


class _Seen(GridProgress):
    def __init__(self) -> None:
        self.finished: dict[str, str] = {}
        self.progress: list[tuple[str, int]] = []

    def run_progress(self, run_hash: str, tokens: int, tokens_per_s: float | None) -> None:
        self.progress.append((run_hash, tokens))

    def run_finished(self, run_hash: str, status: str, val_loss: float | None, wall_s: float | None) -> None:
        self.finished[run_hash] = status


def test_the_task_trains_from_its_config_and_keeps_checkpoints_on_its_own_disk(corpus, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from scalelab.tunnel.train import RunConfig

    monkeypatch.setenv("SCALELAB_RAY_CHECKPOINT_DIR", str(tmp_path / "worker-disk"))
    cfg = RunConfig(model=MODEL, corpus=str(corpus), seq_len=16, batch_size=4, n_tokens=8 * 64, lr=3e-3,
                    eval_tokens=256, eval_every_steps=2)
    inbox = _Inbox()
    kind, result, err = _train_task(cfg.to_dict(), cfg.content_hash(), RunOptions(heartbeat_every_s=0.0), inbox)
    assert (kind, err) == ("ok", None) and result["status"] == "completed" and len(result["curve"]) >= 4
    assert [e[0] for e in inbox.events] == [cfg.content_hash()] * len(inbox.events) and len(inbox.events) >= 4
    assert not list((tmp_path / "worker-disk").glob("*.pt"))  # removed once the run finished
    bad = cfg.model_copy(update={"corpus": str(tmp_path / "missing.txt")})
    kind, err_type, msg = _train_task(bad.to_dict(), bad.content_hash(), RunOptions(), _Inbox())
    assert (kind, err_type) == ("fatal", "CorpusError") and "missing.txt" in msg


def _claimed(st: RunStore, n: int) -> dict:
    recs = [st.add({"model": MODEL, "n_tokens": 640 * (i + 1), "lr": 1e-3, "seed": i}) for i in range(n)]
    return {r.hash: st.claim_run(r.hash) for r in recs}


def test_the_driver_stores_results_failures_and_heartbeats_under_its_claims(tmp_path):
    st = RunStore(tmp_path / "runs.sqlite")
    seen = _Seen()
    drv = _Driver(st, seen, heartbeat_every_s=0.0)
    drv.claims = _claimed(st, 4)
    ok, broken, fatal, cut = list(drv.claims)
    drv.progress([(ok, 320, 1000.0), ("not-ours", 5, None)])
    assert st.get(ok).progress_tokens == 320 and seen.progress == [(ok, 320)]
    drv.outcome(ok, ("ok", {"status": "completed", "final_val_loss": 3.0, "tokens_seen": 640, "steps": 10,
                            "curve": [{"step": 10, "tokens": 640, "train_loss": 3.1, "val_loss": 3.0}]}, None))
    drv.outcome(broken, ("failed", None, "RuntimeError: boom"))
    drv.outcome(fatal, ("fatal", "CorpusError", "the corpus is empty"))
    assert seen.finished == {ok: "completed", broken: "failed", fatal: "failed"}
    assert st.get(ok).status == "completed" and st.get(ok).final_val_loss == 3.0 and len(st.curve(ok)) == 1
    assert st.get(broken).error == "RuntimeError: boom"
    assert st.get(fatal).error == "CorpusError: the corpus is empty" and drv.error == ("CorpusError",
                                                                                       "the corpus is empty")
    drv.release_all()  # Ctrl-C: what is still held goes back to pending
    assert st.get(cut).status == "pending" and drv.claims == {}


def test_a_result_for_a_run_reclaimed_elsewhere_is_discarded(tmp_path):
    st = RunStore(tmp_path / "runs.sqlite")
    drv = _Driver(st, _Seen(), heartbeat_every_s=0.0)
    drv.claims = _claimed(st, 1)
    (h,) = drv.claims
    st.release(h)            # another process found the claim stale and took the run over
    other = st.claim_run(h)
    drv.outcome(h, ("ok", {"status": "completed", "final_val_loss": 9.0, "tokens_seen": 640}, None))
    rec = st.get(h)
    assert rec.status == "running" and rec.claim_id == other.claim_id and rec.final_val_loss is None

