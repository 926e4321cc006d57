"""Acceptance 6: the Ray backend (against a local Ray this test starts, 2 CPUs) and one run under
torchrun with DDP (2 CPU processes on gloo) each train on this machine and land in the store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from scalelab.arch import ModelSpec
from scalelab.errors import ConfigError
from scalelab.tunnel.progress import GridProgress
from scalelab.tunnel.runner import RunOptions, run_grid
from scalelab.tunnel.store import RunStore

pytest.importorskip("torch")

MODEL = {"n_layers": 1, "d_model": 32, "n_heads": 2, "d_ff": 96, "vocab_size": 256, "seq_len": 16}


def _config(corpus: Path, steps: int, **kw):
    from scalelab.tunnel.train import RunConfig

    base = {"model": ModelSpec(**MODEL), "corpus": str(corpus), "seq_len": 16, "batch_size": 4,
            "n_tokens": steps * 64, "lr": 3e-3, "eval_tokens": 256}
    base.update(kw)
    return RunConfig(**base)


def _forbid_the_store_folder() -> None:
    """Ray's worker setup hook: any open, SQLite connect, listing or change under $SCALELAB_TEST_DRIVER_ONLY
    raises in the worker and is written to $SCALELAB_TEST_VIOLATIONS (an audit hook, PEP 578: it sees every
    open, whatever library makes it), as if the folder were on a disk this worker cannot reach."""
    import os
    import sys

    folder = os.environ["SCALELAB_TEST_DRIVER_ONLY"]
    report = os.environ["SCALELAB_TEST_VIOLATIONS"]
    events = {"open", "sqlite3.connect", "os.listdir", "os.scandir", "os.mkdir", "os.rename", "os.remove",
              "os.rmdir", "shutil.copyfile", "shutil.rmtree"}

    def hook(event: str, args: tuple) -> None:
        if event not in events or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path = os.path.abspath(os.fsdecode(args[0]))
        if path == folder or path.startswith(folder + os.sep):
            with open(report, "a") as f:
                f.write(f"pid {os.getpid()}: {event} {path}\n")
            raise PermissionError(f"this Ray worker cannot reach the driver's folder: {path}")

    sys.addaudithook(hook)


class _Seen(GridProgress):
    def __init__(self) -> None:
        self.progress: dict[str, list[int]] = {}

    def run_progress(self, run_hash: str, tokens: int, tokens_per_s: float | None) -> None:
        self.progress.setdefault(run_hash, []).append(tokens)


@pytest.mark.slow  # a local Ray cluster and two training tasks: ~20-40 s on 2 cores
def test_ray_workers_that_cannot_see_the_store_still_fill_it(corpus, tmp_path):
    """Issue 12 part 3: the store's folder is out of the workers' reach (every access raises and is logged);
    the workers send progress and results, and the driver alone writes the store."""
    ray = pytest.importorskip("ray")
    cloudpickle = pytest.importorskip("ray.cloudpickle")

    driver_only = tmp_path / "driver-only"
    violations = tmp_path / "violations.txt"
    configs = [_config(corpus, 12, seed=s, eval_every_steps=4) for s in range(2)]
    store = RunStore(driver_only / "ray.sqlite")
    beats: list[int | None] = []
    real_beat = store.heartbeat
    store.heartbeat = lambda h, c, tokens=None: beats.append(tokens) or real_beat(h, c, tokens=tokens)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the hook travels by value
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"worker_process_setup_hook": _forbid_the_store_folder,
                          "env_vars": {"SCALELAB_TEST_DRIVER_ONLY": str(driver_only),
                                       "SCALELAB_TEST_VIOLATIONS": str(violations),
                                       "SCALELAB_RAY_CHECKPOINT_DIR": str(tmp_path / "worker-disk")}})
    try:
        # the hook works: a task that opens the store's folder is refused and reported
        probe = ray.get(ray.remote(_try_open).options(num_cpus=1, max_retries=0).remote(str(store.path)))
        assert probe.startswith("refused") and violations.exists()
        violations.unlink()
        seen = _Seen()
        recs = run_grid(configs, store, backend="ray", options=RunOptions(heartbeat_every_s=0.0), progress=seen)
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert not violations.exists(), violations.read_text()
    assert [r.status for r in recs] == ["completed", "completed"]
    assert all(r.pid == os.getpid() for r in recs)  # the driver claimed and stored them
    assert all(len(store.curve(r.hash)) >= 3 for r in recs)
    # progress came back from the workers and became heartbeats with token counts
    assert set(seen.progress) == {r.hash for r in recs} and any(t for t in beats)
    # the same runs trained in this process: the Ray workers produced the same losses
    local = run_grid(configs, RunStore(tmp_path / "local.sqlite"), quiet=True)
    for a, b in zip(local, recs, strict=True):
        assert b.final_val_loss == pytest.approx(a.final_val_loss, rel=1e-4)


def _try_open(path: str) -> str:
    try:
        RunStore(path).counts()
    except Exception as e:  # noqa: BLE001 - whatever the refusal raises, report it
        return f"refused: {e}"
    return "opened"


@pytest.mark.slow  # end to end with several processes: ~15-30 s on 2 cores
def test_ddp_run_under_torchrun_equals_the_one_process_run(corpus, tmp_path):
    from scalelab.tunnel.ddp import run_ddp

    cfg = _config(corpus, 10)
    store = RunStore(tmp_path / "ddp.sqlite")
    rec = run_ddp(cfg, store, nproc=2)
    assert rec.status == "completed" and rec.kind == "ddp" and rec.hash == cfg.content_hash()
    assert [p["step"] for p in store.curve(rec.hash)] == list(range(1, 11))
    # Rows rank::2 of the same global batch on each rank, gradients averaged by DDP: the run is the
    # one-process run up to float summation order.
    (single,) = run_grid([cfg], RunStore(tmp_path / "one.sqlite"), quiet=True)
    assert rec.final_val_loss == pytest.approx(single.final_val_loss, rel=1e-4)
    assert rec.final_train_loss == pytest.approx(single.final_train_loss, rel=1e-4)
    # A run already stored is returned, not retrained.
    again = run_ddp(cfg, store, nproc=2)
    assert (again.finished_at, again.attempts) == (rec.finished_at, 1)


def test_ddp_rejects_a_batch_that_does_not_split(corpus, tmp_path):
    from scalelab.tunnel.ddp import run_ddp

    with pytest.raises(ConfigError, match="multiple of the number of DDP processes"):
        run_ddp(_config(corpus, 4, batch_size=3), RunStore(tmp_path / "x.sqlite"), nproc=2)
