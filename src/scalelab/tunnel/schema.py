"""The run store's schema and its migrations, numbered by SQLite's ``PRAGMA user_version``.

A store's version is the ``user_version`` field of the SQLite file header (https://sqlite.org/pragma.html
#pragma_user_version), set in the same transaction as the migration that reaches it, so a killed process
leaves the file at the old version or the new one, never between. Each step of :data:`MIGRATIONS` takes a
store from version ``i`` to ``i + 1``; a step only adds (tables, columns, indexes): nothing is dropped.

Stores written before ``user_version`` was used have ``user_version = 0``; their ``schema_version`` table
says 1 and some may lack columns added later in version 1's life (``resumed_from_step``, ``pid_start``).
Step 1 is written for them: it creates what is missing and adds every version-1 column the file lacks
(from the column list below, not by parsing SQL). Step 2 adds the measured and predicted performance of
each run (plan -> prove, docs/plan-vs-measured.md). Step 3 adds status ``pruned`` and its ``pruned_json``
(early stopping in sweeps, docs/pruning.md).

The one-row ``schema_version`` table is kept equal to ``user_version``: scalelab builds from before
``user_version`` read that table and refuse a newer store rather than misread it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

__all__ = [
    "FINAL_STATUSES", "MIGRATIONS", "PERF_COLUMNS", "RUN_COLUMNS", "SCHEMA_VERSION", "STATUSES", "TABLES", "migrate",
    "stored_version",
]

#: Every status a run can have.
STATUSES = ("pending", "running", "completed", "diverged", "failed", "pruned")
#: Statuses after which a run is not executed again (``pruned``: stopped early by a sweep's pruner,
#: :mod:`scalelab.tunnel.pruning`, with the decision kept in ``pruned_json``).
FINAL_STATUSES = ("completed", "diverged", "pruned")

#: Columns of ``runs`` in schema version 1, with their declarations.
_V1_COLUMNS: tuple[tuple[str, str], ...] = (
    ("hash", "TEXT PRIMARY KEY"), ("parent_hash", "TEXT"), ("kind", "TEXT NOT NULL DEFAULT 'run'"),
    ("status", "TEXT NOT NULL CHECK (status IN ('pending','running','completed','diverged','failed'))"),
    ("grid", "TEXT"), ("config_json", "TEXT NOT NULL"), ("n_params", "INTEGER"), ("n_params_active", "INTEGER"),
    ("n_params_non_embedding", "INTEGER"), ("n_tokens", "INTEGER"), ("tokens_seen", "INTEGER"), ("steps", "INTEGER"),
    ("flops_per_token", "REAL"), ("flops", "REAL"), ("branch_at_tokens", "INTEGER"), ("decay_tokens", "INTEGER"),
    ("final_train_loss", "REAL"), ("final_val_loss", "REAL"), ("tokens_per_s", "REAL"), ("wall_s", "REAL"),
    ("created_at", "REAL NOT NULL"), ("started_at", "REAL"), ("finished_at", "REAL"), ("heartbeat_at", "REAL"),
    ("progress_tokens", "INTEGER"), ("attempts", "INTEGER NOT NULL DEFAULT 0"), ("resumed_from_step", "INTEGER"),
    ("hostname", "TEXT"), ("pid", "INTEGER"), ("pid_start", "TEXT"), ("claim_id", "TEXT"), ("error", "TEXT"),
    ("scalelab_version", "TEXT"), ("torch_version", "TEXT"), ("python_version", "TEXT"),
)

#: Columns version 2 adds: what a run measured on its device and what the planner predicted for it.
#: ``step_s`` is the median wall time of one optimizer step (evaluation excluded); ``peak_mem_bytes`` is
#: ``torch.cuda.max_memory_allocated`` on a GPU and ``saved_tensor_bytes + parameter/optimizer bytes``
#: on a CPU; ``pred_*`` are the planner's step time and memory for the same model, batch and device.
_V2_COLUMNS: tuple[tuple[str, str], ...] = (
    ("device", "TEXT"), ("step_s", "REAL"), ("saved_tensor_bytes", "INTEGER"), ("peak_rss_bytes", "INTEGER"),
    ("peak_mem_bytes", "INTEGER"), ("pred_device", "TEXT"), ("pred_step_s", "REAL"),
    ("pred_activation_bytes", "INTEGER"), ("pred_mem_bytes", "INTEGER"),
)

#: Columns version 3 adds: why a ``pruned`` run was stopped (the pruner's decision and forecast, JSON).
_V3_COLUMNS: tuple[tuple[str, str], ...] = (("pruned_json", "TEXT"),)

#: The measured and predicted performance columns (written by ``finish`` from the same-named result keys).
PERF_COLUMNS: tuple[str, ...] = tuple(n for n, _ in _V2_COLUMNS)

#: Every column of ``runs`` this code reads and writes, in order.
RUN_COLUMNS: tuple[str, ...] = tuple(n for n, _ in _V1_COLUMNS + _V2_COLUMNS + _V3_COLUMNS)

_V1_TABLES = [
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS runs (\n    " + ",\n    ".join(f"{n} {t}" for n, t in _V1_COLUMNS) + "\n)",
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

#: Tables every store has (a file without them is not a run store).
TABLES = frozenset({"schema_version", "runs", "curves", "checkpoints"})


def _columns(c: sqlite3.Connection) -> set[str]:
    return {r[1] for r in c.execute("PRAGMA table_info(runs)").fetchall()}


def _add_columns(c: sqlite3.Connection, columns: tuple[tuple[str, str], ...]) -> None:
    have = _columns(c)
    for name, decl in columns:
        if name not in have:
            # ALTER TABLE ADD COLUMN cannot add NOT NULL without a default nor a PRIMARY KEY; every column
            # added after a store's creation is nullable, so its type alone is declared.
            c.execute(f"ALTER TABLE runs ADD COLUMN {name} {decl.split()[0]}")


def _to_v1(c: sqlite3.Connection) -> None:
    for stmt in _V1_TABLES:
        c.execute(stmt)
    _add_columns(c, _V1_COLUMNS)


def _to_v2(c: sqlite3.Connection) -> None:
    _add_columns(c, _V2_COLUMNS)


_V1_STATUS_CHECK = "'diverged','failed')"


def _to_v3(c: sqlite3.Connection) -> None:
    """Add ``pruned_json`` and let the status CHECK accept ``pruned``.

    SQLite cannot alter a CHECK constraint. Loosening one (every stored row still satisfies it) may be done
    by editing the table's SQL in ``sqlite_master`` and bumping ``schema_version``
    (https://sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema Changes"); it happens
    inside the migration's write transaction, so a killed process leaves the old table or the new one.
    """
    _add_columns(c, _V3_COLUMNS)
    sql = c.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='runs'").fetchone()[0]
    if "'pruned'" in sql or _V1_STATUS_CHECK not in sql:
        return
    version = int(c.execute("PRAGMA schema_version").fetchone()[0])
    c.execute("PRAGMA writable_schema = ON")
    try:
        c.execute("UPDATE sqlite_master SET sql=? WHERE type='table' AND name='runs'",
                  (sql.replace(_V1_STATUS_CHECK, "'diverged','failed','pruned')"),))
        c.execute(f"PRAGMA schema_version = {version + 1}")
    finally:
        c.execute("PRAGMA writable_schema = OFF")


#: ``MIGRATIONS[i]`` takes a store from version ``i`` to ``i + 1`` inside one write transaction.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_to_v1, _to_v2, _to_v3)

#: Version of the schema this code writes: the number of migration steps.
SCHEMA_VERSION = len(MIGRATIONS)


def stored_version(c: sqlite3.Connection) -> int:
    """A store's version: ``user_version``, or for a store from before it, its ``schema_version`` table."""
    user = int(c.execute("PRAGMA user_version").fetchone()[0])
    has_table = c.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
    table = c.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] if has_table else None
    # the table can only be ahead of user_version in a store a newer (or older) build wrote: trust the larger
    return max(user, int(table or 0))


def migrate(c: sqlite3.Connection) -> int:
    """Bring a store up to :data:`SCHEMA_VERSION`; call inside ``BEGIN IMMEDIATE``. Returns the start version.

    A pre-``user_version`` store (``user_version = 0``) is taken through step 1 again even though its table
    says 1: that step only adds what is missing, and some such stores lack late version-1 columns.
    """
    start = int(c.execute("PRAGMA user_version").fetchone()[0])
    for step in MIGRATIONS[start:]:
        step(c)
    if start < SCHEMA_VERSION:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        c.execute("DELETE FROM schema_version")
        c.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
    return start
