"""Execute a grid: local worker processes (default), a Ray cluster, or one larger run under torchrun/DDP.

Every backend follows the same protocol against the :class:`~scalelab.tunnel.store.RunStore`, which is
what makes a grid safe to kill and run again:

1. register every config (``pending``; completed and diverged runs are kept and skipped);
2. a worker *claims* a run atomically (``BEGIN IMMEDIATE``), trains it with a checkpoint path and a
   heartbeat, and stores the result only while its claim holds (on Ray the driver claims, beats and stores
   for its workers, which never open the store: :mod:`scalelab.tunnel.ray_backend`);
3. a run left ``running`` by a dead worker (pid gone, or heartbeat older than ``stale_after_s``) is
   reclaimed and resumed from its checkpoint, so it is never duplicated and never lost.

A diverged run is stored as ``diverged`` and the grid goes on; a run that raises is stored as ``failed``
(and retried the next time the grid runs); a user error that would fail every run (an unreadable corpus,
an unbuildable model) stops the grid with that error.

>>> from scalelab.tunnel.grid import load_grid                    # doctest: +SKIP
>>> from scalelab.tunnel.store import RunStore                   # doctest: +SKIP
>>> records = run_grid(load_grid("recipes/isoflop_tiny.py"), RunStore(), workers=2)   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from ..errors import (
    ConfigError,
    CorpusError,
    GridInterrupted,
    MissingDependencyError,
    ScalelabError,
    StoreError,
    explain,
)
from ..planner.flops import training_flops
from .grid import Grid, load_grid
from .progress import GridProgress, _Rate, make_progress
from .store import FINAL_STATUSES, ClaimLostError, RunRecord, RunStore

__all__ = ["RunOptions", "execute_run", "preflight", "run_grid"]

log = logging.getLogger(__name__)

Backend = Literal["local", "ray"]

#: Errors that would fail every run of the grid the same way: stop the grid instead of failing each run.
_FATAL = (CorpusError, ConfigError, MissingDependencyError, StoreError)


@dataclass(frozen=True)
class RunOptions:
    """How each run is executed (not part of the run's key: changing these never re-runs a grid)."""

    checkpoint_every_steps: int = 50
    """Save a resumable checkpoint every this many optimizer steps (0: never)."""
    heartbeat_every_s: float = 2.0
    """How often a worker tells the store it is alive (and how far it got)."""
    keep_checkpoints: bool = False
    """Keep a run's checkpoint file after it finished (for later inspection)."""
    torch_threads: int | None = None
    """Threads per worker for torch; ``None`` splits the machine's cores between workers."""
    pruner: Any = None
    """Stop runs that will lose (:mod:`scalelab.tunnel.pruning`); they are stored ``pruned``. Needs
    ``eval_every_steps`` in the runs' configs: a pruner judges the evaluated losses."""


# ---- one run ------------------------------------------------------------------------------------------
def _progress_fields(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int | None, float | None]:
    """Tokens done and tokens/s from whatever the trainer's progress callback passes."""
    info: Any = args[0] if args else kwargs
    get = info.get if isinstance(info, dict) else (lambda k, d=None: getattr(info, k, d))
    tokens = get("tokens", None)
    if tokens is None:
        tokens = get("tokens_seen", None)
    rate = get("tokens_per_s", None)
    return (int(tokens) if tokens is not None else None), (float(rate) if rate else None)


class _Heartbeat:
    def __init__(self, store: RunStore, rec: RunRecord, every_s: float) -> None:
        self.store, self.rec, self.every_s = store, rec, every_s
        self.last = 0.0
        self.lost = False

    def beat(self, tokens: int | None) -> None:
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            try:
                if not self.store.heartbeat(self.rec.hash, self.rec.claim_id, tokens=tokens):
                    self.lost = True
            except StoreError as e:  # a locked store must not kill a training run; the next beat retries
                log.warning("heartbeat for run %s failed: %s", self.rec.hash, e)


def execute_run(store: RunStore, rec: RunRecord, *, options: RunOptions = RunOptions(),
                progress: GridProgress | None = None, label: str = "") -> RunRecord:
    """Train one claimed run and store its outcome; return the stored record.

    The run resumes from its checkpoint when one exists (a previous attempt was interrupted).
    """
    from .train import RunConfig, train

    progress = progress or GridProgress()
    try:
        cfg = RunConfig.model_validate(rec.config)
    except ValidationError:  # a damaged stored config (see RunRecord._from_row): fail this run, not the grid
        store.fail(rec.hash, rec.error or "its stored config is not a valid RunConfig", claim_id=rec.claim_id)
        progress.run_finished(rec.hash, "failed", None, None)
        return store.get(rec.hash)
    ckpt = store.checkpoint_path(rec.hash)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    store.set_checkpoint(rec.hash, ckpt)
    hb = _Heartbeat(store, rec, options.heartbeat_every_s)
    rate = _Rate()
    flops = training_flops(cfg.model.n_params().active, cfg.n_tokens)
    progress.run_started(rec.hash, label, cfg.n_tokens, flops)
    if ckpt.exists():
        log.info("run %s resumes from its checkpoint %s", rec.hash, ckpt)

    watch = None
    if options.pruner is not None:
        from .pruning import StoreWatch

        watch = StoreWatch(store, rec, options.pruner)

    def on_progress(*args: Any, **kwargs: Any) -> None:
        if watch is not None and args and isinstance(args[0], dict):
            watch.check(args[0])  # raises StopRun when the pruner says so
        tokens, tps = _progress_fields(args, kwargs)
        if tokens is None:
            return
        hb.beat(tokens)
        progress.run_progress(rec.hash, tokens, tps or rate.update(tokens))

    try:
        result = train(cfg, progress=on_progress, checkpoint_path=ckpt,
                       checkpoint_every_steps=options.checkpoint_every_steps)
    except KeyboardInterrupt:
        store.release(rec.hash, claim_id=rec.claim_id, error="interrupted; resumes from its checkpoint")
        raise
    except _FATAL as e:
        store.fail(rec.hash, f"{type(e).__name__}: {e}", claim_id=rec.claim_id)
        progress.run_finished(rec.hash, "failed", None, None)
        raise
    except Exception as e:  # noqa: BLE001 - one broken run must not stop the grid
        log.error("run %s failed: %s", rec.hash, e)
        store.fail(rec.hash, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}", claim_id=rec.claim_id)
        progress.run_finished(rec.hash, "failed", None, None)
        return store.get(rec.hash)
    try:
        out = store.finish(rec.hash, result, claim_id=rec.claim_id)
    except ClaimLostError as e:  # another worker took the run over (we looked dead): its result stands
        log.warning("%s", e)
        progress.run_finished(rec.hash, "reclaimed", None, None)
        return store.get(rec.hash)
    if not options.keep_checkpoints:
        with contextlib.suppress(OSError):
            ckpt.unlink()
    progress.run_finished(rec.hash, out.status, out.final_val_loss, out.wall_s)
    return out


# ---- preflight ------------------------------------------------------------------------------------------
def preflight(configs: Sequence[Any]) -> None:
    """Check what every run needs before any trains: each distinct corpus loads and is not empty.

    Raises :class:`CorpusError` (unreadable, missing or empty corpus) with the corpus named.
    """
    from .data import load_corpus

    seen = set()
    for c in configs:
        key = (c.corpus, c.tokenizer, getattr(c, "bpe_vocab_size", None))
        if key in seen:
            continue
        seen.add(key)
        kw = {"bpe_vocab_size": key[2]} if key[2] is not None else {}
        load_corpus(c.corpus, c.tokenizer, **kw)


# ---- the grid -------------------------------------------------------------------------------------------
def run_grid(
    grid: Grid | Sequence[Any] | str | Path,
    store: RunStore | str | Path | None = None,
    *,
    workers: int = 1,
    backend: Backend = "local",
    quiet: bool = False,
    ray_address: str | None = None,
    options: RunOptions = RunOptions(),
    progress: GridProgress | None = None,
    check_corpus: bool = True,
) -> list[RunRecord]:
    """Train every run of ``grid`` not already stored; return the grid's records in grid order.

    Parameters
    ----------
    grid : Grid, list of RunConfig, or a path to a TOML grid / Python recipe
        What to train (validated by :func:`~scalelab.tunnel.grid.load_grid` before anything runs).
    store : RunStore or path, optional
        Where runs are kept (default ``$SCALELAB_HOME/runs.sqlite``).
    workers : int
        Local worker processes (``backend="local"``; 1 trains in this process), or the number of
        concurrent Ray tasks' CPUs is left to Ray (``backend="ray"``).
    backend : {"local", "ray"}
        Where runs execute. Ray workers need no access to the store: they send progress and results back
        and this process alone writes them (:mod:`scalelab.tunnel.ray_backend`).
    quiet : bool
        Log lines instead of the live display (for CI and log files).
    ray_address : str, optional
        Address of an existing Ray cluster; by default ``ray.init()`` joins the one this process already
        started or starts a local one.

    Returns
    -------
    list of RunRecord
        One per grid run, in order. WSD decay branches are stored as runs of their own; find them with
        ``store.children(record.hash)``.
    """
    g = load_grid(grid) if not isinstance(grid, Grid) else grid
    configs = g.configs
    if isinstance(store, RunStore):
        st = store
    else:
        st = RunStore(store)
    if workers < 1:
        raise ConfigError(explain("workers must be at least 1", value=workers))
    if backend not in ("local", "ray"):
        raise ConfigError(explain("unknown backend", value=backend, allowed="local, ray",
                                  fix="for one run across processes use `run_ddp` (torchrun)"))
    hashes = [c.content_hash() for c in configs]
    labels = dict(zip(hashes, g.labels or [""] * len(hashes), strict=False))
    stored = {r.hash: r.status for r in st.runs(hashes=hashes)}
    todo = [h for h in hashes if stored.get(h) not in FINAL_STATUSES]
    if options.pruner is not None:
        from .pruning import check_prunable

        check_prunable(configs)  # before anything is written, as a bad corpus is
    if todo and check_corpus:
        # Before anything is written: a bad corpus fails the grid with the store exactly as it was.
        preflight([c for c, h in zip(configs, hashes, strict=True) if h in set(todo)])
    st.add_many(configs, grid=g.name)
    st.reclaim_stale(hashes)
    prog = progress or make_progress(quiet)
    by_hash = dict(zip(hashes, configs, strict=True))
    total_flops = sum(training_flops(by_hash[h].model.n_params().active, by_hash[h].n_tokens) for h in todo)
    prog.start(name=g.name, total_runs=len(hashes), done_runs=len(hashes) - len(todo), total_flops=total_flops)
    try:
        if todo:
            if backend == "ray":
                from .ray_backend import run_ray

                run_ray(st, todo, labels, options, prog, ray_address)
            elif workers == 1:
                if options.torch_threads:
                    _set_threads(options.torch_threads)
                while (rec := st.claim(todo)) is not None:
                    execute_run(st, rec, options=options, progress=prog, label=labels.get(rec.hash, ""))
            else:
                _run_local_pool(st, todo, labels, workers, options, prog)
    except KeyboardInterrupt as e:
        if isinstance(e, GridInterrupted):
            raise
        _release_own(st, hashes)
        # what is safe on disk, for the one line the CLI prints; a SIGTERM handler sets ``signum``
        n_stored: int | None
        try:
            n_stored = sum(r.status in FINAL_STATUSES for r in st.runs(hashes=hashes))
        except (ScalelabError, OSError):
            n_stored = None
        raise GridInterrupted(n_stored, len(hashes), int(getattr(e, "signum", signal.SIGINT))) from e
    finally:
        prog.close()
    return st.runs(hashes=hashes)


def _release_own(store: RunStore, hashes: list[str], pids: set[int] | None = None) -> None:
    """Put the runs this process (or its worker processes ``pids``) claimed and left ``running`` back to
    ``pending``: a Ctrl-C or SIGTERM can land between a claim and the trainer's own handler (while the
    checkpoint path is recorded, say), or stop a worker before its handler ran, and the run would otherwise
    stay ``running`` until the next grid finds that pid gone."""
    pids = {os.getpid()} if pids is None else pids
    with contextlib.suppress(ScalelabError, OSError):
        for r in store.runs(hashes=hashes, status="running"):
            if r.pid in pids and r.hostname == store.hostname:
                store.release(r.hash, claim_id=r.claim_id, error="interrupted; resumes from its checkpoint")


def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(n)))


# ---- local worker processes -----------------------------------------------------------------------------
def _die_with_parent() -> None:
    """Linux: ask the kernel to SIGKILL this worker when the grid process dies (prctl PR_SET_PDEATHSIG),
    so a killed grid leaves no orphan training on. Elsewhere the store's heartbeat covers it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1


def _worker_main(store_path: str, todo: list[str], labels: dict[str, str], options: RunOptions,
                 events: Any, parent_pid: int) -> None:
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        return
    store = RunStore(store_path)
    _set_threads(options.torch_threads or 1)

    class _Forward(GridProgress):
        def run_started(self, run_hash: str, label: str, n_tokens: int, flops: float) -> None:
            events.put(("started", run_hash, label, n_tokens, flops))

        def run_progress(self, run_hash: str, tokens: int, tokens_per_s: float | None) -> None:
            events.put(("progress", run_hash, tokens, tokens_per_s))

        def run_finished(self, run_hash: str, status: str, val_loss: float | None, wall_s: float | None) -> None:
            events.put(("finished", run_hash, status, val_loss, wall_s))

    fwd = _Forward()
    try:
        while (rec := store.claim(todo)) is not None:
            execute_run(store, rec, options=options, progress=fwd, label=labels.get(rec.hash, ""))
    except ScalelabError as e:
        events.put(("error", type(e).__name__, str(e)))
    finally:
        store.close()


def _run_local_pool(store: RunStore, todo: list[str], labels: dict[str, str], workers: int, options: RunOptions,
                    prog: GridProgress) -> None:
    # spawn, not fork: a forked copy of a process that already holds torch threads and an open SQLite
    # connection is unsafe (https://sqlite.org/howtocorrupt.html §2.6; PyTorch multiprocessing notes).
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    n = min(workers, len(todo))
    threads = options.torch_threads or max(1, (os.cpu_count() or 1) // n)
    opts = dataclasses.replace(options, torch_threads=threads)
    error: tuple[str, str] | None = None
    pending_before: list[Any] = [r for r in store.runs(hashes=todo) if r.status == "pending"]
    for _round in range(3):  # a worker that crashed leaves its run to be reclaimed by the next round
        procs = [ctx.Process(target=_worker_main, args=(str(store.path), todo, labels, opts, events, os.getpid()),
                             daemon=True, name=f"scalelab-worker-{i}") for i in range(n)]
        for p in procs:
            p.start()
        try:
            while any(p.is_alive() for p in procs) or not events.empty():
                try:
                    ev = events.get(timeout=0.5)
                except queue_mod.Empty:
                    continue
                if ev[0] == "started":
                    prog.run_started(*ev[1:])
                elif ev[0] == "progress":
                    prog.run_progress(*ev[1:])
                elif ev[0] == "finished":
                    prog.run_finished(*ev[1:])
                elif ev[0] == "error":
                    error = (ev[1], ev[2])
        except BaseException:
            for p in procs:
                if p.is_alive():
                    p.terminate()
            for p in procs:
                p.join(5)
            # a worker stopped before its own handler released its run: `tunnel ls` showed it running
            _release_own(store, todo, {p.pid for p in procs if p.pid is not None and not p.is_alive()})
            raise
        for p in procs:
            p.join()
        if error is not None:
            break
        store.reclaim_stale(todo)
        left = [r for r in store.runs(hashes=todo) if r.status == "pending"]
        if not left:
            break
        if all(p.exitcode != 0 for p in procs) and len(left) == len(pending_before):
            raise ScalelabError(explain(
                "every grid worker process exited without finishing a run",
                value=f"exit codes {[p.exitcode for p in procs]}",
                fix="run from a script guarded by `if __name__ == '__main__':` (spawned workers re-import it), "
                    "or use workers=1; set SCALELAB_DEBUG=1 and check the log"))
        pending_before = left
        log.warning("%d runs left pending after a worker stopped (exit codes %s); starting another round",
                    len(left), [p.exitcode for p in procs])
    if error is not None:
        import scalelab.errors as errs

        raise getattr(errs, error[0], ScalelabError)(error[1])
