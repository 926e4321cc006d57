"""The run store: every wind-tunnel run, its curve and its checkpoint in one SQLite file.

Why SQLite (stdlib ``sqlite3``) rather than files per run or a server: one file that several worker
processes can write safely (WAL mode, a busy timeout, ``BEGIN IMMEDIATE`` transactions), that survives a
killed process without losing committed rows, and that a user can open with any SQLite tool.

Schema (version :data:`SCHEMA_VERSION`)::

    schema_version(version)                      one row; a newer value than this code knows -> refuse
    runs(hash PK, parent_hash, kind, status, grid, config_json, n_params..., final metrics, timings,
         versions, hostname, pid, claim_id, heartbeat_at, attempts, error)
    curves(run_hash, step, tokens, train_loss, val_loss, lr)   PRIMARY KEY (run_hash, step)
    checkpoints(run_hash PK, path, updated_at)

A run is keyed by the content hash of its resolved config (``RunConfig.content_hash()``), so a grid
run twice finds its finished runs and skips them. WSD decay branches are runs of ``kind="branch"`` whose
``parent_hash`` names the stable-phase run they were branched from.

Status moves ``pending -> running -> completed | diverged | failed | pruned`` (``pruned``: stopped early by a
sweep's pruner, :mod:`scalelab.tunnel.pruning`; the decision is kept in ``pruned_json``).
A worker *claims* a run inside one
``BEGIN IMMEDIATE`` transaction (so two workers never claim the same run) and records a ``claim_id``;
results are written only while that claim still holds, so a run is never stored twice. A run left
``running`` by a process that died (its pid is gone on this host, or now belongs to a process that started
at another time than the claimant, or its heartbeat is older than ``stale_after_s``) is put back to
``pending`` and resumed from its checkpoint. A pid alone is not proof of life: after a reboot or a long
uptime the kernel hands it to another process, so a claim records the process's start time
(:func:`_process_start`) with its pid.

Nothing is ever dropped: tables are created with ``IF NOT EXISTS`` and never recreated; every change is
one transaction, rolled back whole on error.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import platform
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._spec import stable_hash
from ..errors import ConfigError, SchemaVersionError, StoreError, StoreLockedError, UnknownNameError, explain

__all__ = [
    "SCHEMA_VERSION",
    "STATUSES",
    "ClaimLostError",
    "RunRecord",
    "RunStore",
    "branch_hash",
    "default_store_path",
    "load_runs_for_fit",
    "scalelab_home",
]

log = logging.getLogger(__name__)

#: Version of the schema this code writes. Bump it (and add a migration that only adds) on any change.
SCHEMA_VERSION = 1

#: Every status a run can have.
STATUSES = ("pending", "running", "completed", "diverged", "failed", "pruned")
#: Statuses after which a run is not executed again.
FINAL_STATUSES = ("completed", "diverged", "pruned")

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS runs (
        hash TEXT PRIMARY KEY,
        parent_hash TEXT,
        kind TEXT NOT NULL DEFAULT 'run',
        status TEXT NOT NULL CHECK (status IN ('pending','running','completed','diverged','failed','pruned')),
        grid TEXT,
        config_json TEXT NOT NULL,
        n_params INTEGER,
        n_params_active INTEGER,
        n_params_non_embedding INTEGER,
        n_tokens INTEGER,
        tokens_seen INTEGER,
        steps INTEGER,
        flops_per_token REAL,
        flops REAL,
        branch_at_tokens INTEGER,
        decay_tokens INTEGER,
        final_train_loss REAL,
        final_val_loss REAL,
        tokens_per_s REAL,
        wall_s REAL,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        heartbeat_at REAL,
        progress_tokens INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        resumed_from_step INTEGER,
        hostname TEXT,
        pid INTEGER,
        pid_start TEXT,
        claim_id TEXT,
        error TEXT,
        scalelab_version TEXT,
        torch_version TEXT,
        python_version TEXT,
        pruned_json TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS runs_status ON runs (status)",
    "CREATE INDEX IF NOT EXISTS runs_parent ON runs (parent_hash)",
    """CREATE TABLE IF NOT EXISTS curves (
        run_hash TEXT NOT NULL,
        step INTEGER NOT NULL,
        tokens INTEGER,
        train_loss REAL,
        val_loss REAL,
        lr REAL,
        PRIMARY KEY (run_hash, step)
    )""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        run_hash TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        updated_at REAL NOT NULL
    )""",
]

_RUN_COLUMNS = (
    "hash", "parent_hash", "kind", "status", "grid", "config_json", "n_params", "n_params_active",
    "n_params_non_embedding", "n_tokens", "tokens_seen", "steps", "flops_per_token", "flops",
    "branch_at_tokens", "decay_tokens", "final_train_loss", "final_val_loss", "tokens_per_s", "wall_s",
    "created_at", "started_at", "finished_at", "heartbeat_at", "progress_tokens", "attempts", "resumed_from_step",
    "hostname",
    "pid", "pid_start", "claim_id", "error", "scalelab_version", "torch_version", "python_version", "pruned_json",
)


class ClaimLostError(StoreError):
    """A worker tried to store a run that another worker reclaimed meanwhile; its result is discarded."""


def scalelab_home() -> Path:
    """``$SCALELAB_HOME``, or ``~/.scalelab`` when unset."""
    env = os.environ.get("SCALELAB_HOME")
    return Path(env).expanduser() if env else Path.home() / ".scalelab"


def default_store_path() -> Path:
    """Where the run store lives unless ``--store`` says otherwise: ``$SCALELAB_HOME/runs.sqlite``."""
    return scalelab_home() / "runs.sqlite"


def branch_hash(parent_hash: str, at_tokens: int, decay_tokens: int) -> str:
    """Key of a WSD decay branch: derived from its parent's key and where and how long it decays."""
    return stable_hash({"branch_of": parent_hash, "at_tokens": int(at_tokens), "decay_tokens": int(decay_tokens)})


def _versions() -> dict[str, str | None]:
    from .. import __version__

    torch = sys.modules.get("torch")
    return {
        "scalelab_version": __version__,
        "torch_version": getattr(torch, "__version__", None) if torch is not None else None,
        "python_version": platform.python_version(),
    }


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


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _param_counts(config: dict[str, Any]) -> tuple[int | None, int | None, int | None]:
    """Total, active and non-embedding parameters of a config's model, from the planner's one formula."""
    from ..arch.spec import ModelSpec

    try:
        c = ModelSpec.model_validate(config["model"]).n_params()
    except Exception:  # noqa: BLE001 - a config without a valid model still gets stored
        return None, None, None
    return c.total, c.active, c.non_embedding


@dataclass
class RunRecord:
    """One stored run: its key, status, config, final metrics and bookkeeping.

    ``n_params`` counts all parameters and ``n_params_active`` those one token uses (they differ for
    MoE); ``flops`` is ``flops_per_token * tokens_seen`` as the trainer reported it. Times are Unix
    seconds; ``wall_s`` is the training time of the last attempt.
    """

    hash: str
    status: str
    kind: str
    config: dict[str, Any]
    parent_hash: str | None = None
    grid: str | None = None
    n_params: int | None = None
    n_params_active: int | None = None
    n_params_non_embedding: int | None = None
    n_tokens: int | None = None
    tokens_seen: int | None = None
    steps: int | None = None
    flops_per_token: float | None = None
    flops: float | None = None
    branch_at_tokens: int | None = None
    decay_tokens: int | None = None
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    tokens_per_s: float | None = None
    wall_s: float | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    progress_tokens: int | None = None
    attempts: int = 0
    resumed_from_step: int | None = None
    hostname: str | None = None
    pid: int | None = None
    pid_start: str | None = None
    claim_id: str | None = None
    error: str | None = None
    scalelab_version: str | None = None
    torch_version: str | None = None
    python_version: str | None = None
    pruned_json: str | None = None
    curve: list[dict[str, Any]] | None = field(default=None, repr=False)

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> RunRecord:
        d = dict(row)
        d["config"] = json.loads(d.pop("config_json"))
        return cls(**d)

    @property
    def pruned(self) -> dict[str, Any] | None:
        """Why a ``pruned`` run was stopped: the pruner's decision and the forecast behind it."""
        return json.loads(self.pruned_json) if self.pruned_json else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["curve"] is None:
            d.pop("curve")
        return d

    def summary(self) -> dict[str, Any]:
        """A flat row for tables: key, status, size, tokens and losses."""
        m = self.config.get("model", {})
        return {
            "hash": self.hash,
            "kind": self.kind,
            "status": self.status,
            "parent": self.parent_hash[:8] if self.parent_hash else None,
            "model": f"L{m.get('n_layers')} d{m.get('d_model')}" + (" moe" if m.get("moe") else ""),
            "n_params": self.n_params,
            "tokens": self.tokens_seen if self.tokens_seen is not None else self.n_tokens,
            "val_loss": self.final_val_loss,
            "tokens_per_s": self.tokens_per_s,
            "wall_s": self.wall_s,
        }

    def report(self) -> str:
        from ..units import format_count

        lines = [f"run {self.hash} ({self.kind}, {self.status})"]
        if self.parent_hash:
            lines.append(f"  parent           {self.parent_hash}")
        if self.kind == "branch":
            lines.append(f"  branched at      {format_count(self.branch_at_tokens or 0)} tokens, "
                         f"decayed over {format_count(self.decay_tokens or 0)}")
        m = self.config.get("model", {})
        lines.append(f"  model            n_layers={m.get('n_layers')} d_model={m.get('d_model')} "
                     f"n_heads={m.get('n_heads')} d_ff={m.get('d_ff')} vocab={m.get('vocab_size')}"
                     + (" (MoE)" if m.get("moe") else ""))
        if self.n_params is not None:
            lines.append(f"  parameters       {format_count(self.n_params)} total, "
                         f"{format_count(self.n_params_active or 0)} active")
        for label, key in (("schedule", "schedule"), ("lr", "lr"), ("batch x seq", None), ("seed", "seed"),
                           ("corpus", "corpus")):
            if key is None:
                lines.append(f"  {label:<16} {self.config.get('batch_size')} x {self.config.get('seq_len')}")
            elif key in self.config:
                lines.append(f"  {label:<16} {self.config[key]}")
        if self.tokens_seen is not None:
            lines.append(f"  tokens           {format_count(self.tokens_seen)} of {format_count(self.n_tokens or 0)}"
                         f" ({self.steps} steps)")
        elif self.n_tokens is not None:
            lines.append(f"  tokens planned   {format_count(self.n_tokens)}")
        if self.flops is not None:
            lines.append(f"  compute          {self.flops:.3g} FLOPs")
        if self.final_val_loss is not None or self.final_train_loss is not None:
            lines.append(f"  final loss       val {self.final_val_loss}  train {self.final_train_loss}")
        if self.tokens_per_s is not None:
            lines.append(f"  throughput       {self.tokens_per_s:,.0f} tokens/s over {self.wall_s:.1f} s")
        if self.resumed_from_step:
            lines.append(f"  resumed from     step {self.resumed_from_step}")
        lines.append(f"  attempts         {self.attempts}"
                     + (f" on {self.hostname} pid {self.pid}" if self.pid else ""))
        if self.error:
            lines.append(f"  error            {self.error}")
        if self.pruned:
            lines.append(f"  pruned at step   {self.pruned.get('step')} by {self.pruned.get('pruner')}: "
                         f"{self.pruned.get('reason')}")
        if self.scalelab_version:
            lines.append(f"  versions         scalelab {self.scalelab_version}, torch {self.torch_version}, "
                         f"python {self.python_version}")
        if self.curve:
            lines.append(f"  curve            {len(self.curve)} points")
        return "\n".join(lines)


class RunStore:
    """The SQLite run store. Safe to open from several processes at once.

    Parameters
    ----------
    path
        The SQLite file; ``None`` means :func:`default_store_path`. Parent folders are created.
    timeout_s
        How long a write waits for another process's lock before raising :class:`StoreLockedError`
        (default ``$SCALELAB_STORE_TIMEOUT_S`` or 30 s).
    stale_after_s
        A ``running`` run whose heartbeat is older than this is considered abandoned and is reclaimed
        (a dead pid on this host is reclaimed at once).
    readonly
        Open an existing store for reading only (``tunnel ls``, ``show``, ``export``, ``fit``): the file
        must exist (a mistyped path is an error, not a new empty store), and a store the user may read but
        not write (a read-only file or folder) can still be listed and fitted. Writes raise
        :class:`StoreError`.

    Examples
    --------
    >>> store = RunStore("/tmp/example-runs.sqlite")          # doctest: +SKIP
    >>> store.counts()                                        # doctest: +SKIP
    {'completed': 12, 'diverged': 1}
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout_s: float | None = None,
                 stale_after_s: float = 600.0, readonly: bool = False) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        if timeout_s is None:
            timeout_s = float(os.environ.get("SCALELAB_STORE_TIMEOUT_S", "30") or 30)
        self.timeout_s = float(timeout_s)
        self.stale_after_s = float(stale_after_s)
        self.hostname = socket.gethostname()
        self._lock = threading.RLock()
        self.readonly = readonly
        self._run_columns = ", ".join(_RUN_COLUMNS)  # what a SELECT of whole runs names
        if self.path.is_dir():
            raise StoreError(explain("the run store path is a directory", value=str(self.path),
                                     fix="pass a file path such as runs.sqlite"))
        if readonly:
            self._conn = self._open_readonly()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=self.timeout_s, isolation_level=None,
                                         check_same_thread=False)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(explain("cannot open the run store", value=str(self.path),
                                     fix=f"check the path and its permissions ({e})")) from e
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            self._check_version()
            self._init_schema()
        except BaseException:
            self._conn.close()
            raise

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise StoreError(explain("no run store at this path", value=str(self.path),
                                     allowed="the path of an existing store (`scalelab tunnel run` creates one)",
                                     fix="check the spelling of --store, or run a grid first"))
        uri = Path(os.path.abspath(self.path)).as_uri()
        # mode=ro first; a WAL store in a folder the user cannot write has no -shm file to share, so
        # SQLite refuses it: then open it as immutable (nobody can be writing where nobody may write).
        conn: sqlite3.Connection | None = None
        wal = Path(f"{self.path}-wal")
        for query in ("?mode=ro", "?mode=ro&immutable=1"):
            if "immutable" in query and wal.exists() and wal.stat().st_size > 0:
                # an immutable open ignores the -wal file: it would silently show only part of the runs
                raise StoreError(explain(
                    "this run store cannot be opened read-only here: writes not yet merged into it sit in "
                    "its -wal file, which a read-only open of a folder you cannot write does not see",
                    value=str(self.path), fix="copy the store together with its -wal file to a folder you can "
                                              "write and read the copy, or open it once with write access"))
            try:
                conn = sqlite3.connect(uri + query, uri=True, timeout=self.timeout_s, check_same_thread=False,
                                       isolation_level=None)
                conn.row_factory = sqlite3.Row
                conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
                break
            except sqlite3.Error as e:
                if conn is not None:
                    conn.close()
                conn = None
                last = e
        if conn is None:
            raise StoreError(explain("cannot open the run store for reading", value=str(self.path),
                                     fix=f"check the file and its permissions ({last})")) from last
        self._conn = conn
        try:
            self._check_version()
            have = {r["name"] for r in self._read("SELECT name FROM sqlite_master WHERE type='table'")}
        except BaseException:
            conn.close()
            raise
        if not {"schema_version", "runs", "curves", "checkpoints"} <= have:
            conn.close()
            raise StoreError(explain("the file is not a scalelab run store", value=str(self.path),
                                     fix="point --store at a file written by `scalelab tunnel run`"))
        # a store written before a column was added is read as it is (read-only: nothing is migrated)
        present = {r["name"] for r in self._read("PRAGMA table_info(runs)")}
        self._run_columns = ", ".join(c if c in present else f"NULL AS {c}" for c in _RUN_COLUMNS)
        return conn

    # ---- connection and transactions -----------------------------------------------------------
    def close(self) -> None:
        """Close the connection (committed data is already on disk)."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    def _raise_sqlite(self, e: sqlite3.Error, doing: str) -> None:
        msg = str(e).lower()
        if "locked" in msg or "busy" in msg:
            raise StoreLockedError(explain(
                f"the run store is locked by another process while {doing}", value=str(self.path),
                allowed=f"a lock released within {self.timeout_s:g} s",
                fix="wait for the other scalelab process to finish, or close the program holding the file",
            )) from e
        if isinstance(e, sqlite3.DatabaseError) and ("not a database" in msg or "malformed" in msg):
            raise StoreError(explain("the run store file is not a readable SQLite database",
                                     value=str(self.path), fix="point --store at a scalelab run store")) from e
        raise StoreError(explain(f"run store error while {doing}", value=str(e), fix="check the file and disk")) from e

    @contextlib.contextmanager
    def _write(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed whole, or rolled back whole."""
        if self.readonly:
            raise StoreError(explain(f"the run store was opened read-only, so {doing} is not possible",
                                     value=str(self.path), fix="open it with RunStore(path) to write"))
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                self._raise_sqlite(e, doing)
            try:
                yield self._conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as e:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                self._raise_sqlite(e, doing)

    def _read(self, sql: str, params: Sequence[Any] = (), doing: str = "reading") -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                self._raise_sqlite(e, doing)
                raise  # unreachable; keeps type checkers quiet

    def _check_version(self) -> None:
        rows = self._read("SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'",
                          doing="opening the store")
        if not rows:
            return
        rows = self._read("SELECT MAX(version) AS v FROM schema_version", doing="reading the schema version")
        found = rows[0]["v"] if rows else None
        if found is not None and found > SCHEMA_VERSION:
            from .. import __version__

            raise SchemaVersionError(explain(
                f"the run store {self.path} has schema version {found}, newer than this scalelab "
                f"({__version__}) can read", value=found, allowed=f"version <= {SCHEMA_VERSION}",
                fix="upgrade scalelab (pip install -U scalelab), or use another --store; the file is left untouched",
            ))

    def _init_schema(self) -> None:
        have = {r["name"] for r in self._read("SELECT name FROM sqlite_master WHERE type='table'")}
        needed = {"schema_version", "runs", "curves", "checkpoints"}
        if needed <= have:
            # Already a store: only make sure it is in WAL mode (a no-op read when it already is).
            mode = self._read("PRAGMA journal_mode")[0][0]
            if mode != "wal":
                self._set_wal()
            self._conn.execute("PRAGMA synchronous = FULL")
            self._add_missing_columns()
            self._allow_pruned_status()
            return
        self._set_wal()
        self._conn.execute("PRAGMA synchronous = FULL")
        with self._write("creating the store tables") as c:
            for stmt in _SCHEMA:
                c.execute(stmt)
            if c.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 0:
                c.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))

    def _add_missing_columns(self) -> None:
        """Additive migration: a column this code knows but the file lacks is added (never dropped)."""
        import re

        have = {r["name"] for r in self._read("PRAGMA table_info(runs)")}
        wanted = re.findall(r"^\s*(\w+) (INTEGER|REAL|TEXT)(?!.*NOT NULL)", _SCHEMA[1], flags=re.M)
        missing = [(n, t) for n, t in wanted if n not in have]
        if missing:
            with self._write("adding new columns to the store") as c:
                # look again under the write lock: another process may have added them meanwhile
                have = {r["name"] for r in c.execute("PRAGMA table_info(runs)").fetchall()}
                for name, typ in missing:
                    if name not in have:
                        c.execute(f"ALTER TABLE runs ADD COLUMN {name} {typ}")

    def _allow_pruned_status(self) -> None:
        """Additive migration: a store made before ``pruned`` existed gets it in its status CHECK.

        SQLite cannot alter a CHECK constraint; loosening one (every stored row still satisfies it) may be
        done by editing the table's SQL in ``sqlite_schema`` (https://sqlite.org/lang_altertable.html,
        "Making Other Kinds Of Table Schema Changes"), here in one write transaction.
        """
        old = "'diverged','failed')"
        sql = self._read("SELECT sql FROM sqlite_master WHERE type='table' AND name='runs'")[0]["sql"]
        if "'pruned'" in sql or old not in sql:
            return
        with self._write("letting the store keep pruned runs") as c:
            sql = c.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='runs'").fetchone()[0]
            if "'pruned'" in sql:
                return
            version = c.execute("PRAGMA schema_version").fetchone()[0]
            c.execute("PRAGMA writable_schema = ON")
            try:
                c.execute("UPDATE sqlite_master SET sql=? WHERE type='table' AND name='runs'",
                          (sql.replace(old, "'diverged','failed','pruned')"),))
                c.execute(f"PRAGMA schema_version = {int(version) + 1}")
            finally:
                c.execute("PRAGMA writable_schema = OFF")

    def _set_wal(self) -> None:
        # WAL lets readers (`scalelab tunnel ls`) proceed while a worker writes, and a killed writer
        # leaves committed transactions intact (https://sqlite.org/wal.html).
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as e:
            self._raise_sqlite(e, "switching the store to WAL mode")

    @property
    def schema_version(self) -> int:
        return int(self._read("SELECT MAX(version) AS v FROM schema_version")[0]["v"])

    @property
    def checkpoint_dir(self) -> Path:
        """Folder beside the store where run checkpoints are kept."""
        return self.path.with_name(self.path.stem + "-checkpoints")

    # ---- adding and claiming runs --------------------------------------------------------------
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

    # ---- checkpoints ----------------------------------------------------------------------------
    def checkpoint_path(self, run_hash: str) -> Path:
        """The stored checkpoint path of a run, or the default one beside the store."""
        rows = self._read("SELECT path FROM checkpoints WHERE run_hash=?", (run_hash,))
        return Path(rows[0]["path"]) if rows else self.checkpoint_dir / f"{run_hash}.pt"

    def set_checkpoint(self, run_hash: str, path: str | os.PathLike[str]) -> None:
        """Record where a run's resumable checkpoint lives."""
        with self._write("recording a checkpoint") as c:
            c.execute("INSERT OR REPLACE INTO checkpoints (run_hash, path, updated_at) VALUES (?, ?, ?)",
                      (run_hash, str(path), time.time()))

    # ---- reading --------------------------------------------------------------------------------
    def _resolve(self, key: str) -> str:
        if not key:
            raise ConfigError(explain("a run key is empty", fix="pass a hash or a prefix from `scalelab tunnel ls`"))
        rows = self._read("SELECT hash FROM runs WHERE hash = ? OR hash LIKE ? || '%' ESCAPE '\\' LIMIT 11",
                          (key, key.replace("%", "\\%").replace("_", "\\_")))
        hashes = [r["hash"] for r in rows]
        if key in hashes:
            return key
        if len(hashes) == 1:
            return hashes[0]
        if not hashes:
            raise UnknownNameError("run", key, [r["hash"] for r in self._read("SELECT hash FROM runs LIMIT 200")],
                                   fix="run `scalelab tunnel ls` to list the stored runs")
        raise ConfigError(explain("the run prefix matches several runs", value=key,
                                  allowed=", ".join(hashes[:10]), fix="give more characters of the hash"))

    def get(self, key: str, *, with_curve: bool = False) -> RunRecord:
        """The run whose hash is ``key`` or starts with it; :class:`UnknownNameError` if none."""
        h = self._resolve(key)
        rec = RunRecord._from_row(self._read(f"SELECT {self._run_columns} FROM runs WHERE hash=?", (h,))[0])
        if with_curve:
            rec.curve = self.curve(h)
        return rec

    def __contains__(self, key: str) -> bool:
        return bool(self._read("SELECT 1 FROM runs WHERE hash=?", (key,)))

    def __len__(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM runs")[0][0])

    def runs(self, *, status: str | Sequence[str] | None = None, kind: str | None = None,
             grid: str | None = None, hashes: Sequence[str] | None = None) -> list[RunRecord]:
        """Stored runs, oldest first, filtered by status, kind, grid name or keys."""
        where, params = [], []
        if status is not None:
            sts = [status] if isinstance(status, str) else list(status)
            bad = [s for s in sts if s not in STATUSES]
            if bad:
                raise ConfigError(explain("unknown run status", value=bad[0], allowed=", ".join(STATUSES)))
            where.append(f"status IN ({', '.join('?' * len(sts))})")
            params += sts
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if grid is not None:
            where.append("grid = ?")
            params.append(grid)
        sql = f"SELECT {self._run_columns} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        recs = [RunRecord._from_row(r) for r in self._read(sql + " ORDER BY created_at, rowid", params)]
        if hashes is not None:
            order = {h: i for i, h in enumerate(hashes)}
            recs = sorted((r for r in recs if r.hash in order), key=lambda r: order[r.hash])
        return recs

    def children(self, run_hash: str) -> list[RunRecord]:
        """Runs whose parent is ``run_hash`` (its WSD decay branches)."""
        rows = self._read(f"SELECT {self._run_columns} FROM runs WHERE parent_hash=? ORDER BY branch_at_tokens",
                          (run_hash,))
        return [RunRecord._from_row(r) for r in rows]

    def curve(self, run_hash: str) -> list[dict[str, Any]]:
        """A run's stored curve, ordered by step."""
        rows = self._read("SELECT step, tokens, train_loss, val_loss, lr FROM curves WHERE run_hash=? ORDER BY step",
                          (run_hash,))
        return [dict(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Number of runs per status."""
        return {r["status"]: r["n"] for r in self._read("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")}

    def n_curve_points(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM curves")[0][0])

    # ---- removing -------------------------------------------------------------------------------
    def remove(self, key: str, *, force: bool = False) -> list[str]:
        """Delete a run with its curve, checkpoint and decay branches; return the deleted keys.

        A ``running`` run is only removed with ``force`` (its worker would otherwise write it back).
        """
        h = self._resolve(key)
        with self._write("removing a run") as c:
            keys = [h] + [r["hash"] for r in c.execute("SELECT hash FROM runs WHERE parent_hash=?", (h,))]
            st = c.execute("SELECT status, pid FROM runs WHERE hash=?", (h,)).fetchone()
            if st["status"] == "running" and not force:
                raise StoreError(explain(f"run {h} is running (pid {st['pid']})", allowed="completed, diverged, "
                                         "failed or pending runs", fix="wait for it to finish, or pass --force"))
            ckpts = [r["path"] for k in keys for r in c.execute("SELECT path FROM checkpoints WHERE run_hash=?", (k,))]
            for k in keys:
                c.execute("DELETE FROM curves WHERE run_hash=?", (k,))
                c.execute("DELETE FROM checkpoints WHERE run_hash=?", (k,))
                c.execute("DELETE FROM runs WHERE hash=?", (k,))
        for p in ckpts:
            with contextlib.suppress(OSError):
                Path(p).unlink()
        return keys

    # ---- tables for fits and export -------------------------------------------------------------
    def runs_table(self, *, status: str | Sequence[str] | None = ("completed",), kind: str | None = None,
                   grid: str | None = None) -> dict[str, list[Any]]:
        """Runs as columns (``N``, ``D``, ``C``, ``loss``, ...), one entry per run, for fits and export.

        Conventions (DESIGN.md principle 2): ``N`` is the total parameter count (Chinchilla's convention;
        ``N_active`` and ``N_non_embedding`` are beside it); ``D`` is the tokens trained on;
        ``C = 6 N_active D`` (Kaplan et al. 2020 eq. 2.1; Hoffmann et al. 2022 §3), and ``C_measured``
        is the trainer's own FLOP count; ``loss`` is the final validation loss in nats per token.
        """
        cols: dict[str, list[Any]] = {k: [] for k in _TABLE_COLUMNS}
        for r in self.runs(status=status, kind=kind, grid=grid):
            row = _table_row(r)
            for k in _TABLE_COLUMNS:
                cols[k].append(row[k])
        return cols

    def runs_frame(self, **filters: Any) -> Any:
        """:meth:`runs_table` as a pandas DataFrame (needs the ``data`` extra)."""
        try:
            import pandas as pd
        except ImportError as e:
            from ..errors import MissingDependencyError

            raise MissingDependencyError("pandas", "data") from e
        return pd.DataFrame(self.runs_table(**filters), columns=list(_TABLE_COLUMNS))

    def curves_table(self, *, status: str | Sequence[str] | None = None) -> dict[str, list[Any]]:
        """Every curve point as columns (``hash``, ``step``, ``tokens``, ``train_loss``, ``val_loss``, ``lr``)."""
        keep = None if status is None else {r.hash for r in self.runs(status=status)}
        cols: dict[str, list[Any]] = {k: [] for k in ("hash", "step", "tokens", "train_loss", "val_loss", "lr")}
        for r in self._read("SELECT run_hash, step, tokens, train_loss, val_loss, lr FROM curves "
                            "ORDER BY run_hash, step"):
            if keep is not None and r["run_hash"] not in keep:
                continue
            cols["hash"].append(r["run_hash"])
            for k in ("step", "tokens", "train_loss", "val_loss", "lr"):
                cols[k].append(r[k])
        return cols

    def export(self, out: str | os.PathLike[str], *, format: Literal["csv", "parquet", "json"] = "csv",
               what: Literal["runs", "curves"] = "runs", status: str | Sequence[str] | None = None) -> Path:
        """Write the runs (or every curve point) to CSV, Parquet or JSON (a list of row objects, missing
        values as null); return the path written."""
        out = Path(out)
        if format not in EXPORT_FORMATS:
            raise ConfigError(explain("unknown export format", value=format, allowed=", ".join(EXPORT_FORMATS)))
        own = {Path(os.path.abspath(f"{self.path}{suffix}")) for suffix in ("", "-wal", "-shm", "-journal")}
        if Path(os.path.abspath(out)) in own:
            raise ConfigError(explain("the export would overwrite the run store itself", value=str(out),
                                      fix="name a new file, e.g. runs.csv"))
        table = self.runs_table(status=status) if what == "runs" else self.curves_table(status=status)
        final, out = out, out.with_name(out.name + ".partial")   # written whole, then moved into place
        if format == "json":
            names = list(table)
            rows = [{n: (None if isinstance(v, float) and not math.isfinite(v) else v) for n, v in zip(names, row,
                                                                                                     strict=True)}
                    for row in zip(*(table[n] for n in names), strict=True)]
            out.write_text(json.dumps(rows, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        elif format == "csv":
            names = list(table)
            with open(out, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(names)
                for row in zip(*(table[n] for n in names), strict=True):
                    w.writerow(["" if v is None else v for v in row])
        elif format == "parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError as e:
                from ..errors import MissingDependencyError

                raise MissingDependencyError("pyarrow", "data") from e
            pq.write_table(pa.table(table), out)
        os.replace(out, final)
        return final


#: File formats :meth:`RunStore.export` writes, each also the file suffix that selects it.
EXPORT_FORMATS = ("csv", "parquet", "json")


_TABLE_COLUMNS = (
    "hash", "parent_hash", "kind", "status", "grid", "N", "N_active", "N_non_embedding", "D", "C", "C_measured",
    "loss", "train_loss", "n_layers", "d_model", "n_heads", "d_ff", "vocab_size", "moe_experts", "moe_top_k",
    "lr", "batch_size", "seq_len", "schedule", "seed", "corpus", "tokenizer", "branch_at_tokens", "decay_tokens",
    "steps", "tokens_per_s", "wall_s",
)


def _table_row(r: RunRecord) -> dict[str, Any]:
    cfg, m = r.config, r.config.get("model", {})
    moe = m.get("moe") or {}
    D = r.tokens_seen
    N_act = r.n_params_active
    return {
        "hash": r.hash, "parent_hash": r.parent_hash, "kind": r.kind, "status": r.status, "grid": r.grid,
        "N": r.n_params, "N_active": N_act, "N_non_embedding": r.n_params_non_embedding, "D": D,
        "C": 6.0 * N_act * D if N_act and D else None, "C_measured": r.flops,
        "loss": r.final_val_loss, "train_loss": r.final_train_loss,
        "n_layers": m.get("n_layers"), "d_model": m.get("d_model"), "n_heads": m.get("n_heads"),
        "d_ff": m.get("d_ff"), "vocab_size": m.get("vocab_size"), "moe_experts": moe.get("n_experts"),
        "moe_top_k": moe.get("top_k"), "lr": cfg.get("lr"), "batch_size": cfg.get("batch_size"),
        "seq_len": cfg.get("seq_len"), "schedule": cfg.get("schedule"), "seed": cfg.get("seed"),
        "corpus": cfg.get("corpus"), "tokenizer": cfg.get("tokenizer"), "branch_at_tokens": r.branch_at_tokens,
        "decay_tokens": r.decay_tokens, "steps": r.steps, "tokens_per_s": r.tokens_per_s, "wall_s": r.wall_s,
    }


def _config_dict_and_hash(config: Any) -> tuple[dict[str, Any], str]:
    if hasattr(config, "to_dict") and hasattr(config, "content_hash"):
        return config.to_dict(), config.content_hash()
    if isinstance(config, dict):
        return config, stable_hash(config)
    raise ConfigError(explain("a run config must be a RunConfig or a dict", value=type(config).__name__))


def load_runs_for_fit(path: str | os.PathLike[str] | None = None, *, status: str | Sequence[str] = ("completed",),
                      kind: str | None = None, grid: str | None = None) -> dict[str, Any]:
    """Read a run store into numpy columns for the laws: ``N``, ``D``, ``C``, ``loss`` and the rest.

    Conventions are those of :meth:`RunStore.runs_table`: ``N`` total parameters, ``N_active`` those
    one token uses, ``D`` tokens trained on, ``C = 6 N_active D`` FLOPs, ``loss`` the final validation
    loss (nats per token). Numeric columns are float arrays (missing values are NaN); ``hash``, ``kind``,
    ``status`` etc. are object arrays. Decay branches are included (they are points of their own).

    >>> cols = load_runs_for_fit("runs.sqlite")                       # doctest: +SKIP
    >>> ChinchillaLaw().fit(cols["N"], cols["D"], cols["loss"])      # doctest: +SKIP
    """
    import numpy as np

    p = Path(path).expanduser() if path is not None else default_store_path()
    if not p.exists():
        raise FileNotFoundError(2, "No such file", str(p))
    with RunStore(p, readonly=True) as store:
        table = store.runs_table(status=status, kind=kind, grid=grid)
    out: dict[str, Any] = {}
    for k, v in table.items():
        if k in _TEXT_COLUMNS:
            out[k] = np.array(v, dtype=object)
        else:
            out[k] = np.array([np.nan if x is None else x for x in v], dtype=float)
    return out


_TEXT_COLUMNS = {"hash", "parent_hash", "kind", "status", "grid", "schedule", "corpus", "tokenizer"}
