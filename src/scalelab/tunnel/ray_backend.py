"""The Ray backend without a shared filesystem: workers train, the driver alone writes the run store.

On a real cluster the workers often cannot see the driver's disk, and SQLite over NFS is not safe anyway
(https://sqlite.org/faq.html#q5). So a Ray worker never opens the store:

1. the driver claims each run in the store (the claim names the driver's pid and host, so a killed
   driver's runs are reclaimed by the next ``tunnel run`` as any dead worker's are) and sends the run's
   config to a Ray task;
2. the task trains it and reports progress (tokens, tokens/s) to a small inbox actor at most every
   ``heartbeat_every_s``; the driver drains the inbox, shows the progress and records heartbeats for the
   runs it holds;
3. the task returns its result (the trainer's ``TrainResult.to_dict()``, curve and decay branches
   included) and the driver stores it under its claim, so a run is stored once, by one process.

Checkpoints stay on the worker's own disk (``$SCALELAB_RAY_CHECKPOINT_DIR``, default a ``scalelab-ray``
folder in its temp dir): a run interrupted mid-way resumes from it when Ray places it on the same node
again, and starts over elsewhere. The corpus must be readable by every worker at the path the config
names (the same path on each node, or a built-in corpus).

Failures follow :mod:`scalelab.tunnel.runner`: a run that raises is stored ``failed`` and the grid goes on;
an error that would fail every run (a corpus, config, store or missing-package error) is stored and the
grid raises it once the other tasks are done; a worker that dies (a node lost) fails its run, which is
retried the next time the grid runs. Ctrl-C cancels the tasks and puts their runs back to ``pending``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, ScalelabError, StoreError
from ..planner.flops import training_flops
from .progress import GridProgress
from .store import ClaimLostError, RunRecord, RunStore

__all__ = ["run_ray"]

log = logging.getLogger(__name__)


def _checkpoint_dir() -> Path:
    env = os.environ.get("SCALELAB_RAY_CHECKPOINT_DIR")
    return Path(env).expanduser() if env else Path(tempfile.gettempdir()) / "scalelab-ray"


class _Inbox:
    """A Ray actor (no CPU) that holds the workers' progress events until the driver takes them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int | None, float | None]] = []

    def put(self, event: tuple[str, int | None, float | None]) -> None:
        self.events.append(event)

    def drain(self) -> list[tuple[str, int | None, float | None]]:
        out, self.events = self.events, []
        return out


def _train_task(config: dict[str, Any], run_hash: str, options: Any, inbox: Any) -> tuple[str, Any, str | None]:
    """One Ray task: train ``config`` and return ``("ok", result, None)``, ``("failed", None, message)`` or
    ``("fatal", error type, message)``. It reads the corpus and its own checkpoint; never the store."""
    from .runner import _FATAL, _progress_fields, _set_threads
    from .train import RunConfig, train

    _set_threads(options.torch_threads or 1)
    ckpt = _checkpoint_dir() / f"{run_hash}.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    last = [0.0]

    def on_progress(*args: Any, **kwargs: Any) -> None:
        tokens, tps = _progress_fields(args, kwargs)
        now = time.monotonic()
        if tokens is not None and now - last[0] >= options.heartbeat_every_s:
            last[0] = now
            inbox.put.remote((run_hash, tokens, tps))

    try:
        result = train(RunConfig.model_validate(config), progress=on_progress, checkpoint_path=ckpt,
                       checkpoint_every_steps=options.checkpoint_every_steps)
    except _FATAL as e:
        return "fatal", type(e).__name__, str(e)
    except Exception as e:  # noqa: BLE001 - one broken run must not stop the grid; the driver stores it failed
        return "failed", None, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"
    if not options.keep_checkpoints:
        with contextlib.suppress(OSError):
            ckpt.unlink()
    return "ok", result.to_dict(), None


class _Driver:
    """The driver's side: its claims, the store writes, the progress display."""

    def __init__(self, store: RunStore, prog: GridProgress, heartbeat_every_s: float) -> None:
        self.store, self.prog, self.every_s = store, prog, heartbeat_every_s
        self.claims: dict[str, RunRecord] = {}
        self.error: tuple[str, str] | None = None
        self._last_beat = time.monotonic()

    def progress(self, events: list[tuple[str, int | None, float | None]]) -> None:
        for h, tokens, tps in events:
            rec = self.claims.get(h)
            if rec is None or tokens is None:
                continue
            self.prog.run_progress(h, tokens, tps)
            self._beat(rec, tokens)

    def beat_all(self) -> None:
        """Heartbeats for every run this driver holds: it is alive, and Ray watches the workers."""
        if time.monotonic() - self._last_beat >= self.every_s:
            self._last_beat = time.monotonic()
            for rec in list(self.claims.values()):
                self._beat(rec, None)

    def _beat(self, rec: RunRecord, tokens: int | None) -> None:
        try:
            if not self.store.heartbeat(rec.hash, rec.claim_id, tokens=tokens):
                log.warning("run %s was reclaimed by another process; this driver's result will be discarded",
                            rec.hash)
        except StoreError as e:  # a locked store must not stop the grid; the next beat retries
            log.warning("heartbeat for run %s failed: %s", rec.hash, e)

    def outcome(self, h: str, out: tuple[str, Any, str | None]) -> None:
        rec = self.claims.pop(h)
        kind, payload, message = out
        if kind == "ok":
            try:
                stored = self.store.finish(h, payload, claim_id=rec.claim_id)
            except ClaimLostError as e:
                log.warning("%s", e)
                self.prog.run_finished(h, "reclaimed", None, None)
                return
            self.prog.run_finished(h, stored.status, stored.final_val_loss, stored.wall_s)
            return
        text = message or "the Ray task failed"
        self.store.fail(h, text if kind == "failed" else f"{payload}: {text}", claim_id=rec.claim_id)
        self.prog.run_finished(h, "failed", None, None)
        if kind == "fatal" and self.error is None:
            self.error = (str(payload), text)

    def release_all(self) -> None:
        for h, rec in list(self.claims.items()):
            with contextlib.suppress(StoreError):
                self.store.release(h, claim_id=rec.claim_id, error="interrupted; resumes from its checkpoint")
            self.claims.pop(h)


def run_ray(store: RunStore, todo: list[str], labels: dict[str, str], options: Any, prog: GridProgress,
            address: str | None) -> None:
    """Train the runs ``todo`` on Ray, storing each result from this (the driver's) process only."""
    try:
        import ray
    except ImportError as e:
        raise MissingDependencyError("ray", "distributed") from e
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=1, max_retries=0)(_train_task)
    inbox: Any = ray.remote(num_cpus=0)(_Inbox).remote()  # an actor handle: its methods have .remote()
    drv = _Driver(store, prog, options.heartbeat_every_s)
    refs: dict[Any, str] = {}
    try:
        for h in todo:
            rec = store.claim_run(h)
            if rec is None:  # finished meanwhile, or held by another live process
                continue
            drv.claims[h] = rec
            prog.run_started(h, labels.get(h, ""), int(rec.n_tokens or 0),
                             training_flops(rec.n_params_active or 0, rec.n_tokens or 0))
            refs[task.remote(rec.config, h, options, inbox)] = h
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            drv.progress(ray.get(inbox.drain.remote()))
            drv.beat_all()
            for ref in done:
                try:
                    out = ray.get(ref)
                except ray.exceptions.RayError as e:  # the worker died, or Ray could not run the task
                    out = ("failed", None, f"{type(e).__name__}: {str(e).strip()[:2000]}")
                drv.outcome(refs[ref], out)
    except BaseException:
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        drv.release_all()
        raise
    finally:
        with contextlib.suppress(Exception):
            ray.kill(inbox)
    if drv.error is not None:
        import scalelab.errors as errs

        raise getattr(errs, drv.error[0], ScalelabError)(drv.error[1])
