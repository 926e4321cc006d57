"""The run store's work queue: register runs, claim one atomically, heartbeat, finish, fail or release.

A worker *claims* a run inside one ``BEGIN IMMEDIATE`` transaction (so two workers never claim the same
run) and records a ``claim_id``; results are written only while that claim still holds, so a run is never
stored twice. A run left ``running`` by a process that died (its pid is gone on this host, or now belongs
to a process that started at another time than the claimant, or its heartbeat is older than
``stale_after_s``) is put back to ``pending`` and resumed from its checkpoint. A pid alone is not proof of
life: after a reboot or a long uptime the kernel hands it to another process, so a claim records the
process's start time (:func:`_process_start`) with its pid.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

from ..errors import ConfigError, UnknownNameError, explain
from .connection import StoreConnection
from .records import (
    ClaimLostError,
    RunRecord,
    _config_dict_and_hash,
    _finite,
    _param_counts,
    _versions,
    branch_hash,
)
from .schema import FINAL_STATUSES, PERF_COLUMNS

__all__ = ["WorkQueue"]

log = logging.getLogger(__name__)


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    # A zombie (killed, not yet reaped by its parent) still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _process_start(pid: int | None) -> str | None:
    """When process ``pid`` started, as an opaque token, or ``None`` where this cannot be told.

    Two processes that ever held the same pid have different tokens, so a stored (pid, token) pair names
    one process. Linux: field 22 of ``/proc/<pid>/stat`` (start time in clock ticks after boot, proc(5)).
    Elsewhere: ``psutil.Process(pid).create_time()`` when psutil is installed. Without either, ``None``:
    a claim is then judged by its pid and its heartbeat alone (a reused pid keeps a run ``running`` until
    its heartbeat is older than ``stale_after_s``).
    """
    if not pid:
        return None
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as f:
            # the command name (field 2) may hold spaces and parentheses: count fields after its last ")"
            return "linux:" + f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        pass
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        return None
    try:
        return f"psutil:{psutil.Process(int(pid)).create_time():.3f}"
    except Exception:  # noqa: BLE001 - gone or not ours to inspect: no token
        return None


class WorkQueue(StoreConnection):
    """The queue half of the run store: adding, claiming and finishing runs."""

    def add(self, config: Any, *, kind: str = "run", parent_hash: str | None = None, grid: str | None = None,
            retry_failed: bool = True) -> RunRecord:
        """Register a run as ``pending`` unless its hash is already stored; return the stored record.

        ``config`` is a ``RunConfig`` (anything with ``to_dict()`` and ``content_hash()``) or a plain
        dict (hashed with :func:`scalelab._spec.stable_hash`). A run stored as ``failed`` is put back to
        ``pending`` when ``retry_failed``; completed and diverged runs are left as they are.
        """
        return self.add_many([config], kind=kind, parent_hash=parent_hash, grid=grid, retry_failed=retry_failed)[0]

    def add_many(self, configs: Iterable[Any], *, kind: str = "run", parent_hash: str | None = None,
                 grid: str | None = None, retry_failed: bool = True) -> list[RunRecord]:
        """:meth:`add` for many configs in one transaction."""
        items = [_config_dict_and_hash(c) for c in configs]
        now = time.time()
        with self._write("adding runs") as c:
            for cfg, h in items:
                n_total, n_active, n_ne = _param_counts(cfg)
                c.execute(
                    "INSERT OR IGNORE INTO runs (hash, parent_hash, kind, status, grid, config_json, n_params, "
                    "n_params_active, n_params_non_embedding, n_tokens, created_at) "
                    "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)",
                    (h, parent_hash, kind, grid, json.dumps(cfg, sort_keys=True), n_total, n_active, n_ne,
                     cfg.get("n_tokens"), now),
                )
                if retry_failed:
                    c.execute("UPDATE runs SET status='pending', error=NULL WHERE hash=? AND status='failed'", (h,))
        return [self.get(h) for _, h in items]

    def is_stale(self, rec: RunRecord, now: float | None = None) -> bool:
        """Whether a ``running`` run was abandoned: its process died on this host or its heartbeat is old."""
        if rec.status != "running":
            return False
        now = time.time() if now is None else now
        if rec.hostname == self.hostname and rec.pid:
            if not _pid_alive(rec.pid):
                return True
            # alive, but is it still the claimant? A reused pid belongs to a process started at another time
            now_start = _process_start(rec.pid)
            if rec.pid_start and now_start and now_start != rec.pid_start:
                return True
        return rec.heartbeat_at is None or now - rec.heartbeat_at > self.stale_after_s

    def reclaim_stale(self, hashes: Iterable[str] | None = None) -> list[str]:
        """Put abandoned ``running`` runs back to ``pending`` (keeping their checkpoints); return their keys."""
        wanted = None if hashes is None else set(hashes)
        with self._write("reclaiming abandoned runs") as c:
            return self._reclaim_in(c, wanted)

    def _reclaim_in(self, c: sqlite3.Connection, wanted: set[str] | None) -> list[str]:
        now = time.time()
        out = []
        for row in c.execute(f"SELECT {self._run_columns} FROM runs WHERE status='running'").fetchall():
            rec = RunRecord._from_row(row)
            if (wanted is None or rec.hash in wanted) and self.is_stale(rec, now):
                c.execute("UPDATE runs SET status='pending', claim_id=NULL, error=? WHERE hash=? AND status='running'",
                          (f"reclaimed after its worker (pid {rec.pid} on {rec.hostname}) stopped", rec.hash))
                out.append(rec.hash)
                log.warning("reclaimed run %s: its worker pid %s on %s stopped", rec.hash, rec.pid, rec.hostname)
        return out

    def claim(self, hashes: Sequence[str] | None = None, *, pid: int | None = None) -> RunRecord | None:
        """Atomically take the next ``pending`` run (in the order of ``hashes``) and mark it ``running``.

        Abandoned runs among ``hashes`` are reclaimed first. Returns ``None`` when nothing is left to do.
        The returned record's ``claim_id`` must be passed back to :meth:`finish`/:meth:`fail`.
        """
        wanted = None if hashes is None else list(hashes)
        claim_id = uuid.uuid4().hex
        now = time.time()
        with self._write("claiming a run") as c:
            self._reclaim_in(c, None if wanted is None else set(wanted))
            pending = [r["hash"] for r in
                       c.execute("SELECT hash FROM runs WHERE status='pending' ORDER BY created_at, rowid")]
            if wanted is not None:
                ps = set(pending)
                pending = [h for h in wanted if h in ps]
            if not pending:
                return None
            h = pending[0]
            c.execute(
                "UPDATE runs SET status='running', claim_id=?, pid=?, pid_start=?, hostname=?, started_at=?, "
                "heartbeat_at=?, attempts=attempts+1, error=NULL WHERE hash=? AND status='pending'",
                (claim_id, pid or os.getpid(), _process_start(pid or os.getpid()), self.hostname, now, now, h),
            )
        return self.get(h)

    def claim_run(self, run_hash: str, *, pid: int | None = None) -> RunRecord | None:
        """Claim one given run if it is pending (or abandoned); ``None`` if it is done or held by a live worker."""
        return self.claim([run_hash], pid=pid)

    def heartbeat(self, run_hash: str, claim_id: str | None, *, tokens: int | None = None) -> bool:
        """Record that the worker holding ``claim_id`` is alive; ``False`` if it lost the claim."""
        with self._write("recording a heartbeat") as c:
            cur = c.execute(
                "UPDATE runs SET heartbeat_at=?, progress_tokens=COALESCE(?, progress_tokens) "
                "WHERE hash=? AND status='running' AND (claim_id IS ? OR ? IS NULL)",
                (time.time(), tokens, run_hash, claim_id, claim_id),
            )
            return cur.rowcount == 1

    def finish(self, run_hash: str, result: Any, *, claim_id: str | None = None) -> RunRecord:
        """Store a finished run (a ``TrainResult`` or its ``to_dict()``): status, metrics, curve, branches.

        Everything is written in one transaction. When ``claim_id`` is given and no longer holds (the run
        was reclaimed by another worker), nothing is written and :class:`StoreError` is raised, so a run
        is never stored twice.
        """
        res = result.to_dict() if hasattr(result, "to_dict") else dict(result)
        status = res.get("status", "completed")
        if status not in FINAL_STATUSES:
            raise ConfigError(explain("a finished run must be completed, diverged or pruned", value=status,
                                      allowed=", ".join(FINAL_STATUSES)))
        vers = _versions()
        now = time.time()
        with self._write("storing a finished run") as c:
            row = c.execute("SELECT config_json, claim_id, status FROM runs WHERE hash=?", (run_hash,)).fetchone()
            if row is None:
                raise UnknownNameError("run", run_hash, [], fix="add the run to the store before finishing it")
            if claim_id is not None and (row["claim_id"] != claim_id or row["status"] != "running"):
                raise ClaimLostError(explain(
                    f"run {run_hash} was reclaimed by another worker; this result is discarded",
                    fix="nothing to do: the other worker's result is the one kept"))
            cfg = json.loads(row["config_json"])
            tokens = res.get("tokens_seen")
            fpt = _finite(res.get("flops_per_token"))
            c.execute(
                "UPDATE runs SET status=?, tokens_seen=?, steps=?, flops_per_token=?, flops=?, final_train_loss=?, "
                "final_val_loss=?, tokens_per_s=?, wall_s=?, finished_at=?, heartbeat_at=?, progress_tokens=?, "
                "claim_id=NULL, error=?, scalelab_version=?, torch_version=?, python_version=?, "
                "n_params=COALESCE(n_params, ?), resumed_from_step=?, pruned_json=? WHERE hash=?",
                (status, tokens, res.get("steps"), fpt, fpt * tokens if fpt and tokens else None,
                 _finite(res.get("final_train_loss")), _finite(res.get("final_val_loss")),
                 _finite(res.get("tokens_per_s")), _finite(res.get("wall_s")), now, now, tokens,
                 res.get("error") or ("loss became NaN or diverged" if status == "diverged" else None),
                 vers["scalelab_version"], vers["torch_version"], vers["python_version"], res.get("n_params"),
                 res.get("resumed_from_step"),
                 json.dumps(res["pruned"], sort_keys=True, default=float) if res.get("pruned") else None, run_hash),
            )
            perf = {k: res.get(k) for k in PERF_COLUMNS}
            c.execute(f"UPDATE runs SET {', '.join(f'{k}=?' for k in perf)} WHERE hash=?",
                      [*(_finite(v) if isinstance(v, float) else v for v in perf.values()), run_hash])
            self._write_curve(c, run_hash, res.get("curve") or [])
            for br in res.get("branches") or []:
                self._write_branch(c, run_hash, cfg, br, fpt, vers, now)
            c.execute("DELETE FROM checkpoints WHERE run_hash=?", (run_hash,))
        return self.get(run_hash)

    def _write_curve(self, c: sqlite3.Connection, run_hash: str, curve: Iterable[dict[str, Any]]) -> None:
        # Replace the whole curve: a resumed run re-reports the points before its checkpoint.
        c.execute("DELETE FROM curves WHERE run_hash=?", (run_hash,))
        c.executemany(
            "INSERT OR REPLACE INTO curves (run_hash, step, tokens, train_loss, val_loss, lr) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(run_hash, int(p["step"]), p.get("tokens"), _finite(p.get("train_loss")), _finite(p.get("val_loss")),
              _finite(p.get("lr"))) for p in curve],
        )

    def _write_branch(self, c: sqlite3.Connection, parent: str, parent_cfg: dict[str, Any], br: Any,
                      fpt: float | None, vers: dict[str, str | None], now: float) -> None:
        b = (br.to_dict() if hasattr(br, "to_dict")
             else asdict(br) if hasattr(br, "__dataclass_fields__") else dict(br))
        at, dec = int(b["at_tokens"]), int(b["decay_tokens"])
        total = at + dec
        # The branch's config is the from-scratch WSD run it stands for (``RunConfig.branch_config``): same
        # everything, n_tokens = at + decay, no branches (MiniCPM, arXiv:2404.06395 §4.1). Its key is
        # derived from the parent's instead of that config's hash, so a branch never overwrites a run of
        # the same config trained from scratch (both are kept: that pair is what the benchmark compares).
        cfg = dict(parent_cfg, n_tokens=total, decay_branches=[])
        h = branch_hash(parent, at, dec)
        curve = b.get("curve") or []
        val = _finite(b.get("final_val_loss"))
        train_losses = [p.get("train_loss") for p in curve if _finite(p.get("train_loss")) is not None]
        if _finite(b.get("final_train_loss")) is not None:
            train_losses.append(b["final_train_loss"])
        status = b.get("status") or ("completed" if val is not None else "diverged")
        if status == "completed" and val is None:
            status = "diverged"
        total = int(b.get("tokens_seen") or total)
        n_total, n_active, n_ne = _param_counts(cfg)
        c.execute(
            "INSERT OR REPLACE INTO runs (hash, parent_hash, kind, status, grid, config_json, n_params, "
            "n_params_active, n_params_non_embedding, n_tokens, tokens_seen, steps, flops_per_token, flops, "
            "branch_at_tokens, decay_tokens, final_train_loss, final_val_loss, created_at, started_at, finished_at, "
            "attempts, scalelab_version, torch_version, python_version) "
            "SELECT ?, ?, 'branch', ?, grid, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ? "
            "FROM runs WHERE hash=?",
            (h, parent, status, json.dumps(cfg, sort_keys=True), n_total,
             n_active, n_ne, at + dec, total, b.get("steps") or (curve[-1]["step"] if curve else None), fpt,
             fpt * total if fpt else None, at, dec, train_losses[-1] if train_losses else None, val, now, now, now,
             vers["scalelab_version"], vers["torch_version"], vers["python_version"], parent),
        )
        self._write_curve(c, h, curve)

    def fail(self, run_hash: str, error: str, *, claim_id: str | None = None) -> None:
        """Mark a run ``failed`` with the error message (it is retried when its grid runs again)."""
        with self._write("marking a run failed") as c:
            c.execute(
                "UPDATE runs SET status='failed', error=?, finished_at=?, claim_id=NULL "
                "WHERE hash=? AND (claim_id IS ? OR ? IS NULL)",
                (error[:4000], time.time(), run_hash, claim_id, claim_id),
            )

    def release(self, run_hash: str, *, claim_id: str | None = None, error: str | None = None) -> None:
        """Give a claimed run back as ``pending`` (interrupted; its checkpoint is kept for resuming)."""
        with self._write("releasing a run") as c:
            c.execute("UPDATE runs SET status='pending', claim_id=NULL, error=? WHERE hash=? AND status='running' "
                      "AND (claim_id IS ? OR ? IS NULL)", (error, run_hash, claim_id, claim_id))
