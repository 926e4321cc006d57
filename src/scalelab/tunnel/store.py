"""The run store: every wind-tunnel run, its curve and its checkpoint in one SQLite file.

Why SQLite (stdlib ``sqlite3``) rather than files per run or a server: one file that several worker
processes can write safely (WAL mode, a busy timeout, ``BEGIN IMMEDIATE`` transactions), that survives a
killed process without losing committed rows, and that a user can open with any SQLite tool.

The store is split by concern; this module assembles :class:`RunStore` and keeps every public name of the
store importable from here:

- :mod:`.schema`: tables, columns and the migrations numbered by ``PRAGMA user_version``;
- :mod:`.connection`: opening (read-write, read-only), transactions, reads, checkpoints, removal;
- :mod:`.queue`: the work queue (add, claim, heartbeat, finish, fail, release, reclaim);
- :mod:`.records`: :class:`RunRecord`, one stored run;
- :mod:`.table`: the run table (the documented columns the laws read) and export to CSV/Parquet/JSON.

Schema (version :data:`SCHEMA_VERSION`)::

    runs(hash PK, parent_hash, kind, status, grid, config_json, n_params..., final metrics, timings,
         measured and planned step time and memory, versions, hostname, pid, claim_id, heartbeat_at, ...)
    curves(run_hash, step, tokens, train_loss, val_loss, lr)   PRIMARY KEY (run_hash, step)
    checkpoints(run_hash PK, path, updated_at)
    schema_version(version)                      one row, equal to PRAGMA user_version

A run is keyed by the content hash of its resolved config (``RunConfig.content_hash()``), so a grid
run twice finds its finished runs and skips them. WSD decay branches are runs of ``kind="branch"`` whose
``parent_hash`` names the stable-phase run they were branched from.

Status moves ``pending -> running -> completed | diverged | failed | pruned`` (see :mod:`.queue` for claims;
``pruned`` runs were stopped early by a sweep's pruner, :mod:`.pruning`).

Nothing is ever dropped: tables are created with ``IF NOT EXISTS`` and never recreated; migrations only
add; every change is one transaction, rolled back whole on error.
"""

from __future__ import annotations

from .queue import WorkQueue
from .records import (
    ClaimLostError,
    RunRecord,
    branch_hash,
    default_store_path,
    scalelab_home,
)
from .schema import FINAL_STATUSES, RUN_COLUMNS, SCHEMA_VERSION, STATUSES
from .table import EXPORT_FORMATS, RUN_TABLE_COLUMNS, RunTables, load_runs_for_fit, runs_table

__all__ = [
    "EXPORT_FORMATS",
    "FINAL_STATUSES",
    "RUN_COLUMNS",
    "RUN_TABLE_COLUMNS",
    "SCHEMA_VERSION",
    "STATUSES",
    "ClaimLostError",
    "RunRecord",
    "RunStore",
    "branch_hash",
    "default_store_path",
    "load_runs_for_fit",
    "runs_table",
    "scalelab_home",
]


class RunStore(WorkQueue, RunTables):
    """The SQLite run store. Safe to open from several processes at once.

    Parameters
    ----------
    path
        The SQLite file; ``None`` means :func:`default_store_path`. Parent folders are created.
    timeout_s
        How long a write waits for another process's lock before raising
        :class:`~scalelab.errors.StoreLockedError` (default ``$SCALELAB_STORE_TIMEOUT_S`` or 30 s).
    stale_after_s
        A ``running`` run whose heartbeat is older than this is considered abandoned and is reclaimed
        (a dead pid on this host is reclaimed at once).
    readonly
        Open an existing store for reading only (``tunnel ls``, ``show``, ``export``, ``fit``): the file
        must exist, and a store the user may read but not write can still be listed and fitted. An older
        store is read as it is (nothing is migrated); writes raise :class:`~scalelab.errors.StoreError`.

    Opening an older store read-write upgrades it (additive migrations, :mod:`.schema`); a store with a
    newer schema than this code knows is refused and left untouched.

    Examples
    --------
    >>> store = RunStore("/tmp/example-runs.sqlite")          # doctest: +SKIP
    >>> store.counts()                                        # doctest: +SKIP
    {'completed': 12, 'diverged': 1}
    """
