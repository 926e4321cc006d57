"""The run store's connection: opening (read-write or read-only), transactions, migration and reads.

:class:`StoreConnection` is the base of :class:`~scalelab.tunnel.store.RunStore`; the work queue
(:mod:`.queue`) and the tables for fits and export (:mod:`.table`) build on it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self

from ..errors import ConfigError, SchemaVersionError, StoreError, StoreLockedError, UnknownNameError, explain
from .records import RunRecord, default_store_path, env_number
from .schema import RUN_COLUMNS, SCHEMA_VERSION, STATUSES, TABLES, migrate, stored_version

__all__ = ["StoreConnection"]


class StoreConnection:
    """The run store's connection, migration and reads; parameters as :class:`~scalelab.tunnel.store.RunStore`."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout_s: float | None = None,
                 stale_after_s: float = 600.0, readonly: bool = False) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        if timeout_s is None:
            timeout_s = env_number("SCALELAB_STORE_TIMEOUT_S", 30.0)
        self.timeout_s = float(timeout_s)
        self.stale_after_s = float(stale_after_s)
        self.hostname = socket.gethostname()
        self._lock = threading.RLock()
        self.readonly = readonly
        self._run_columns = ", ".join(RUN_COLUMNS)  # what a SELECT of whole runs names
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
        if not TABLES <= have:
            conn.close()
            raise StoreError(explain("the file is not a scalelab run store", value=str(self.path),
                                     fix="point --store at a file written by `scalelab tunnel run`"))
        # a store written before a column was added is read as it is (read-only: nothing is migrated)
        present = {r["name"] for r in self._read("PRAGMA table_info(runs)")}
        self._run_columns = ", ".join(c if c in present else f"NULL AS {c}" for c in RUN_COLUMNS)
        return conn

    # ---- connection and transactions -----------------------------------------------------------
    def close(self) -> None:
        """Close the connection (committed data is already on disk)."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> Self:
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
        with self._lock:
            try:
                found = stored_version(self._conn)
            except sqlite3.Error as e:
                self._raise_sqlite(e, "reading the schema version")
                raise  # unreachable
        if found > SCHEMA_VERSION:
            from .. import __version__

            raise SchemaVersionError(explain(
                f"the run store {self.path} has schema version {found}, newer than this scalelab "
                f"({__version__}) can read", value=found, allowed=f"version <= {SCHEMA_VERSION}",
                fix="upgrade scalelab (pip install -U scalelab), or use another --store; the file is left untouched",
            ))

    def _init_schema(self) -> None:
        """Create a new store, or migrate an older one up to :data:`SCHEMA_VERSION` (additive steps only)."""
        self._refuse_foreign_database()
        if self._read("PRAGMA journal_mode")[0][0] != "wal":
            self._set_wal()
        self._conn.execute("PRAGMA synchronous = FULL")
        if int(self._read("PRAGMA user_version")[0][0]) >= SCHEMA_VERSION:
            return  # the common case: one header read, no write lock taken
        existed = bool(self._read("SELECT 1 FROM sqlite_master WHERE type='table' AND name='runs'"))
        with self._write("upgrading the store's schema") as c:
            # under the write lock, migrate() reads the version again: another process may have done it
            start = migrate(c)
        if existed and start < SCHEMA_VERSION:
            import logging

            logging.getLogger(__name__).info("run store %s upgraded from schema %d to %d", self.path, start,
                                             SCHEMA_VERSION)

    def _refuse_foreign_database(self) -> None:
        """A SQLite file with tables of its own and none of a store's is someone else's database: adding the
        store's tables to it (and switching it to WAL) would change a file the user did not mean to give."""
        tables = {r["name"] for r in self._read("SELECT name FROM sqlite_master WHERE type='table'")
                  if not r["name"].startswith("sqlite_")}
        if tables and not tables & {"runs", "schema_version"}:
            raise StoreError(explain(
                "the file is a SQLite database but not a scalelab run store; it is left untouched",
                value=str(self.path), allowed=f"a run store, or a new file (its tables: {', '.join(sorted(tables))})",
                fix="point --store at a store written by `scalelab tunnel run`, or at a path that does not exist yet"))

    def _set_wal(self) -> None:
        # WAL lets readers (`scalelab tunnel ls`) proceed while a worker writes, and a killed writer
        # leaves committed transactions intact (https://sqlite.org/wal.html).
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as e:
            self._raise_sqlite(e, "switching the store to WAL mode")

    @property
    def schema_version(self) -> int:
        """The store's schema version (``PRAGMA user_version``; the ``schema_version`` table for old stores)."""
        with self._lock:
            return stored_version(self._conn)

    @property
    def checkpoint_dir(self) -> Path:
        """Folder beside the store where run checkpoints are kept."""
        return self.path.with_name(self.path.stem + "-checkpoints")

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
