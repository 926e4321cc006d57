"""One larger run across processes with PyTorch DistributedDataParallel, launched through ``torchrun``.

:func:`run_ddp` registers and claims the run in the store, starts ``torchrun --standalone
--nproc_per_node=N -m scalelab.tunnel.ddp`` (gloo on CPU, NCCL on GPUs), keeps the run's heartbeat while
it trains, and stores rank 0's result under the launcher's claim, so the store is written by one process
only and the run keeps the key it would have on one process.

The data-parallel split keeps the run identical to its one-process form: every rank draws the step's
full batch (a pure function of seed and step, :meth:`TokenData.train_batch`) and trains on rows
``rank::world``; DDP averages gradients over ranks (Li et al. 2020, "PyTorch Distributed", §3.2), which
equals the gradient of the mean loss over the whole batch because every rank holds the same number of
tokens. Logged losses are averaged over ranks too, so the stored curve is the global batch's.
``batch_size`` must be a multiple of the number of processes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError, GridInterrupted, ScalelabError, StoreError, explain
from .runner import RunOptions
from .store import FINAL_STATUSES, RunRecord, RunStore

__all__ = ["run_ddp"]

log = logging.getLogger(__name__)


def run_ddp(config: Any, store: RunStore | str | Path | None = None, *, nproc: int = 2,
            options: RunOptions = RunOptions(), timeout_s: float | None = None) -> RunRecord:
    """Train one ``RunConfig`` with DDP over ``nproc`` local processes and store it; return the record.

    A run already completed (on any backend: the key is the config's hash) is returned without training.
    An interrupted DDP run resumes from its checkpoint. On Ctrl-C (or SIGTERM where the caller turns it into
    a ``KeyboardInterrupt``, as the CLI does) torchrun and its workers are stopped, the run is put back to
    ``pending`` with its checkpoint, and :class:`~scalelab.errors.GridInterrupted` is raised (0 of 1 stored).

    >>> rec = run_ddp(config, RunStore(), nproc=2)   # doctest: +SKIP
    """
    from .train import RunConfig

    if not isinstance(config, RunConfig):
        config = RunConfig.model_validate(config)
    if nproc < 1:
        raise ConfigError(explain("nproc must be at least 1", value=nproc))
    if config.batch_size % nproc:
        raise ConfigError(explain("batch_size must be a multiple of the number of DDP processes",
                                  value=f"batch_size={config.batch_size}, nproc={nproc}",
                                  fix=f"use a batch_size divisible by {nproc}"))
    st = store if isinstance(store, RunStore) else RunStore(store)
    h = config.content_hash()
    rec = st.add(config, kind="ddp")
    if rec.status in FINAL_STATUSES:
        return rec
    from .runner import preflight

    preflight([config])
    claimed = st.claim_run(h)
    if claimed is None:
        raise StoreError(explain(f"run {h} is being trained by another live process", value=rec.pid,
                                 fix="wait for it, or stop that process"))
    procs: list[subprocess.Popen[Any]] = []
    ckpt = st.checkpoint_path(h)
    try:
        result = _launch(st, claimed, ckpt, config, nproc, options, timeout_s, procs)
        out = st.finish(h, result, claim_id=claimed.claim_id)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM turned into one by the CLI, wherever it landed
        for p in procs:
            _stop(p)
        with contextlib.suppress(StoreError):
            st.release(h, claim_id=claimed.claim_id, error="interrupted; resumes from its checkpoint")
        stored = None
        with contextlib.suppress(ScalelabError):
            stored = int(st.get(h).status in ("completed", "diverged"))
        raise GridInterrupted(stored, 1, int(getattr(e, "signum", signal.SIGINT))) from e
    if not options.keep_checkpoints:
        with contextlib.suppress(OSError):
            ckpt.unlink()
    return out


def _launch(st: RunStore, claimed: RunRecord, ckpt: Path, config: Any, nproc: int, options: RunOptions,
            timeout_s: float | None, procs: list[subprocess.Popen[Any]]) -> dict[str, Any]:
    """Run torchrun for the claimed run, keeping its heartbeat; rank 0's result. ``procs`` gets torchrun's
    process as soon as it starts, so the caller can stop it on an interrupt."""
    h = claimed.hash
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    st.set_checkpoint(h, ckpt)
    with tempfile.TemporaryDirectory(prefix="scalelab-ddp-") as tmp:
        cfg_path, out_path = Path(tmp) / "config.json", Path(tmp) / "result.json"
        cfg_path.write_text(json.dumps(config.to_dict()))
        cmd = _torchrun_cmd(nproc, cfg_path, out_path, ckpt, options.checkpoint_every_steps)
        env = dict(os.environ, OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // nproc)))
        t0 = time.monotonic()
        with open(Path(tmp) / "log.txt", "w+", encoding="utf-8") as logf:
            # its own session: Ctrl-C reaches this process only, which stops torchrun in one way for both signals
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            procs.append(proc)
            while proc.poll() is None:
                time.sleep(min(options.heartbeat_every_s, 1.0))
                with contextlib.suppress(StoreError):
                    st.heartbeat(h, claimed.claim_id)
                if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                    _stop(proc)
                    st.release(h, claim_id=claimed.claim_id, error="DDP run timed out; resumes from its checkpoint")
                    raise ScalelabError(explain("the DDP run exceeded its timeout", value=f"{timeout_s} s"))
            logf.seek(0)
            output = logf.read()
        if proc.returncode != 0 or not out_path.exists():
            tail = "\n".join(output.strip().splitlines()[-15:])
            st.fail(h, f"torchrun exited with {proc.returncode}:\n{tail}", claim_id=claimed.claim_id)
            raise ScalelabError(explain(f"the DDP run failed (torchrun exit code {proc.returncode})",
                                        value=tail[-2000:], fix="set SCALELAB_DEBUG=1 and read the log above"))
        result: dict[str, Any] = json.loads(out_path.read_text())
    return result


def _torchrun_cmd(nproc: int, cfg_path: Path, out_path: Path, ckpt: Path, checkpoint_every: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "scalelab.tunnel.ddp", "--config", str(cfg_path), "--out", str(out_path),
            "--checkpoint", str(ckpt), "--checkpoint-every", str(checkpoint_every)]


#: How long torchrun gets to stop its workers after SIGTERM (it waits up to 30 s for them) before SIGKILL.
STOP_GRACE_S = 40.0


def _stop(proc: subprocess.Popen[Any]) -> None:
    """Stop torchrun: SIGTERM, which it passes on to its workers (each in a session of its own, so only
    torchrun can reach them), then SIGKILL if it is still there after :data:`STOP_GRACE_S` or a second Ctrl-C."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        proc.kill()
        proc.wait()


# ---- inside torchrun ----------------------------------------------------------------------------------
class _RankShard:
    """The step's full batch from the corpus, restricted to this rank's rows (``rank::world``)."""

    def __init__(self, data: Any, rank: int, world: int) -> None:
        self._data, self._rank, self._world = data, rank, world

    def train_batch(self, batch_size: int, seq_len: int, seed: int, step: int, domain_weights: Any = None) -> Any:
        x, y = self._data.train_batch(batch_size, seq_len, seed, step, domain_weights)
        return x[self._rank :: self._world], y[self._rank :: self._world]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._data, name)


def _make_run_class() -> type:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from .train import _Run

    class _DDPRun(_Run):
        """The trainer's run state with the model wrapped in DDP and losses averaged over ranks."""

        def __init__(self, config: Any, data: Any, device: str, dtype: str) -> None:
            super().__init__(config, data, device, dtype)
            dev = torch.device(device)
            self.model = DDP(self.model, device_ids=[dev.index] if dev.type == "cuda" else None,
                             # rotary tables are constants, identical everywhere: nothing to broadcast.
                             broadcast_buffers=False,
                             # experts that get no token in a step have no gradient on that rank.
                             find_unused_parameters=config.model.moe is not None)

        def step(self, step: int, cfg: Any) -> tuple[float, float]:
            loss, lr = super().step(step, cfg)
            t = torch.tensor([loss], dtype=torch.float64)
            dist.all_reduce(t)
            return float(t.item()) / dist.get_world_size(), lr

    return _DDPRun


def _worker(args: argparse.Namespace) -> int:
    import torch
    import torch.distributed as dist

    import scalelab

    from .data import load_corpus
    from .train import RunConfig, _train

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        cfg = RunConfig.model_validate_json(Path(args.config).read_text())
        device = f"cuda:{local}" if cuda else "cpu"
        if cuda:
            torch.cuda.set_device(local)
        dtype = cfg.dtype if cfg.dtype != "auto" else ("bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32")
        data = load_corpus(cfg.corpus, cfg.tokenizer, cfg.bpe_vocab_size)
        # The same loop as a one-process run (train._train): only the run class (DDP-wrapped model,
        # rank-averaged loss), the data (this rank's slice of each global batch) and who writes
        # checkpoints (rank 0) differ.
        result = _train(cfg, _RankShard(data, rank, world), device, dtype, None,
                        args.checkpoint or None, int(args.checkpoint_every), time.perf_counter(),
                        scalelab.__version__, run_cls=_make_run_class(), writes_checkpoints=rank == 0,
                        device_label=f"{device} x{world} (DDP)")
        if rank == 0:
            d = result.to_dict()
            d = json.loads(json.dumps(
                d, default=lambda v: None if isinstance(v, float) and not math.isfinite(v) else str(v)))
            tmp = Path(args.out + ".tmp")
            tmp.write_text(json.dumps(d))
            os.replace(tmp, args.out)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scalelab.tunnel.ddp",
                                description="One wind-tunnel run under torchrun (started by run_ddp).")
    p.add_argument("--config", required=True, help="RunConfig as JSON")
    p.add_argument("--out", required=True, help="where rank 0 writes the TrainResult JSON")
    p.add_argument("--checkpoint", default="", help="checkpoint file to resume from and write")
    p.add_argument("--checkpoint-every", default="0", help="steps between checkpoints (0: never)")
    return _worker(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
