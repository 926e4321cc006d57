"""Acceptance 6: the Ray backend (against a local Ray this test starts, 2 CPUs) and one run under
torchrun with DDP (2 CPU processes on gloo) each train on this machine and land in the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalelab.arch import ModelSpec
from scalelab.errors import ConfigError
from scalelab.tunnel.runner import run_grid
from scalelab.tunnel.store import RunStore

pytest.importorskip("torch")

MODEL = {"n_layers": 1, "d_model": 32, "n_heads": 2, "d_ff": 96, "vocab_size": 256, "seq_len": 16}


def _config(corpus: Path, steps: int, **kw):
    from scalelab.tunnel.train import RunConfig

    base = {"model": ModelSpec(**MODEL), "corpus": str(corpus), "seq_len": 16, "batch_size": 4,
            "n_tokens": steps * 64, "lr": 3e-3, "eval_tokens": 256}
    base.update(kw)
    return RunConfig(**base)


@pytest.mark.slow  # end to end with several processes: ~15-30 s on 2 cores
def test_ray_backend_trains_a_grid_into_the_store(corpus, tmp_path):
    ray = pytest.importorskip("ray")
    configs = [_config(corpus, 6, seed=s) for s in range(2)]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        recs = run_grid(configs, RunStore(tmp_path / "ray.sqlite"), backend="ray", quiet=True)
    finally:
        ray.shutdown()
    assert [r.status for r in recs] == ["completed", "completed"]
    assert all(r.final_val_loss is not None and r.pid is not None for r in recs)
    # Same runs, trained in this process: the Ray workers produced the same losses.
    local = run_grid(configs, RunStore(tmp_path / "local.sqlite"), quiet=True)
    for a, b in zip(local, recs, strict=True):
        assert b.final_val_loss == pytest.approx(a.final_val_loss, rel=1e-4)


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
