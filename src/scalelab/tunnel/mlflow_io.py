"""Runs out to MLflow and back: ``scalelab tunnel export --mlflow URI`` and ``scalelab fit --from mlflow:EXP``.

Each finished run of the store becomes one MLflow run in a real tracking store (a ``sqlite:///runs.db``
database or a ``file:`` folder; no server needed):

- **tags**: ``scalelab.hash`` (the config's content hash, the run's key), ``scalelab.grid``,
  ``scalelab.kind``, ``scalelab.status``, ``scalelab.parent_hash`` and ``scalelab.config`` (the config as JSON);
- **params**: the model's shape and size (``N``, ``N_active``, ``N_non_embedding``, ``n_layers``, ``d_model``,
  ...), ``D`` (tokens trained on), ``lr``, ``batch_size``, ``seq_len``, ``seed``, ``schedule``, ``corpus`` and
  the rest of the run table's columns, plus every config field as ``config.<key>``;
- **metrics by step**: the loss curve (``train_loss``, ``val_loss``, ``lr``, ``tokens``);
- **final metrics**: ``loss`` (the final validation loss: the column ``fit`` reads), ``final_train_loss``,
  ``C`` (``6 N_active D``), ``C_measured``, ``tokens_per_s``, ``wall_s``, and any other float column of the
  run table (``lr`` excepted: it is a param).

Export is idempotent: a run whose hash is already tagged in the experiment is left as it is, so exporting
again adds only runs finished since (an export stopped half-way leaves its last MLflow run unterminated;
the next export deletes and redoes it). Only completed and diverged runs are exported: their results no
longer change. Reading back keeps the FINISHED runs (a diverged run is exported as FAILED), which are the
runs ``fit`` takes from the store, with ``N`` and ``D`` from the params and ``loss`` from the metrics.

MLflow 3.x refuses a ``file:`` store unless ``MLFLOW_ALLOW_FILE_STORE`` is set (it recommends its
database backend); naming a ``file:`` URI here is taken as that choice, and the variable is set for it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import ConfigError, DataError, MissingDependencyError, UnknownNameError, explain
from .store import FINAL_STATUSES, RunRecord, RunStore

__all__ = ["DEFAULT_EXPERIMENT", "ExportSummary", "export_to_mlflow", "read_mlflow_runs", "tracking_uri"]

#: Experiment the runs go to unless ``--experiment`` names another.
DEFAULT_EXPERIMENT = "scalelab"
TAG = "scalelab."
#: Run-table columns stored as tags (text that identifies the run) and as final metrics; the rest are params.
_TAG_COLUMNS = ("hash", "parent_hash", "kind", "status", "grid")
_FINAL_METRICS = {"loss": "loss", "train_loss": "final_train_loss", "C": "C", "C_measured": "C_measured",
                  "tokens_per_s": "tokens_per_s", "wall_s": "wall_s"}
#: Float columns that are settings, not results (any other float column of the run table is a final metric,
#: so a measured column added to the table later goes to the metrics without a change here).
_FLOAT_PARAMS = {"lr"}
_CURVE_METRICS = ("train_loss", "val_loss", "lr", "tokens")
_MLFLOW_STATUS = {"completed": "FINISHED", "diverged": "FAILED"}
# MLflow's limits (mlflow.utils.validation): entities per log_batch call, and the longest param and tag.
_BATCH_PARAMS, _BATCH_METRICS = 100, 900
_MAX_PARAM, _MAX_TAG = 6000, 8000


def _mlflow_client(uri: str) -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError as e:
        raise MissingDependencyError("mlflow-skinny", "tracking") from e
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme == "file":
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # see the module docstring
    if scheme.startswith(("sqlite", "postgresql", "mysql", "mssql")):
        try:
            import alembic  # noqa: F401 - MLflow's database backends need both; say so before MLflow does
            import sqlalchemy  # noqa: F401
        except ImportError as e:
            raise MissingDependencyError("sqlalchemy and alembic", "tracking") from e
    return MlflowClient(tracking_uri=uri)


def tracking_uri(uri: str | None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``; a bare path becomes a URI (``.db``/``.sqlite`` files: SQLite,
    anything else: a ``file:`` folder), so ``--mlflow runs.db`` does what it says."""
    from pathlib import Path

    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if not uri.strip():
        raise ConfigError(explain("no MLflow tracking URI", allowed="sqlite:///PATH.db, file:PATH, or a server's "
                                  "http(s) URL", fix="pass --mlflow-uri URI or set MLFLOW_TRACKING_URI"))
    if "://" in uri or uri.startswith(("file:", "sqlite:", "databricks")):
        return uri
    p = Path(uri).expanduser().absolute()
    if p.suffix.lower() in (".db", ".sqlite", ".sqlite3"):
        return f"sqlite:///{p}"
    return p.as_uri()


@contextlib.contextmanager
def _mlflow_errors(uri: str, doing: str) -> Iterator[None]:
    """MLflow's own exceptions as one clear line naming the store (its messages are long and generic)."""
    try:
        yield
    except (ConfigError, DataError):
        raise
    except Exception as e:  # MlflowException and the database driver's errors alike; the rest re-raised
        if type(e).__module__.startswith(("mlflow", "sqlalchemy", "alembic")):
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(explain(f"MLflow could not {doing}", value=uri,
                                      fix=f"check the tracking URI and the store it names ({first[:300]})")) from e
        raise


# ---- export -------------------------------------------------------------------------------------------
class ExportSummary(dict[str, Any]):
    """What an export did: ``experiment``, ``uri``, ``logged``, ``already``, ``redone`` and ``skipped``."""

    def report(self) -> str:
        return (f"MLflow experiment {self['experiment']!r} at {self['uri']}: {self['logged']} runs logged, "
                f"{self['already']} already there" + (f", {self['redone']} half-exported redone" if self['redone']
                                                       else "")
                + (f"; {self['skipped']} not finished (pending, running or failed) left out" if self['skipped']
                   else ""))

    def to_dict(self) -> dict[str, Any]:
        return dict(self)


def _flatten(d: dict[str, Any], prefix: str) -> dict[str, str]:
    """Nested config fields as ``prefix.a.b`` params; characters MLflow refuses in a key become ``_``."""
    import re

    out: dict[str, str] = {}
    for k, v in d.items():
        key = prefix + re.sub(r"[^\w\-./ ]", "_", str(k))
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v if isinstance(v, str) else json.dumps(v)
    return out


def _entities(rec: RunRecord, row: dict[str, Any], curve: list[dict[str, Any]]) -> tuple[list, list, list]:
    """(params, metrics, tags) of one stored run, as MLflow entities."""
    from mlflow.entities import Metric, Param, RunTag

    t_ms = int(1000 * (rec.finished_at or rec.created_at or 0))
    tags = {TAG + k: str(row[k]) for k in _TAG_COLUMNS if row.get(k) is not None}
    tags["mlflow.runName"] = f"{rec.grid or rec.kind}-{rec.hash[:8]}"
    cfg = json.dumps(rec.config, sort_keys=True)
    if len(cfg) <= _MAX_TAG:
        tags[TAG + "config"] = cfg
    final = {k for k, v in row.items() if k in _FINAL_METRICS or (isinstance(v, float) and k not in _FLOAT_PARAMS)}
    params = {k: str(v) for k, v in row.items() if k not in _TAG_COLUMNS and k not in final and v is not None}
    params.update(_flatten(rec.config, "config."))
    params = {k: v if len(v) <= _MAX_PARAM else v[: _MAX_PARAM - 3] + "..." for k, v in params.items()}
    metrics = [Metric(_FINAL_METRICS.get(col, col), float(row[col]), t_ms, 0) for col in sorted(final)
               if row.get(col) is not None and math.isfinite(float(row[col]))]
    for p in curve:
        for k in _CURVE_METRICS:
            v = p.get(k)
            if v is not None and math.isfinite(float(v)):
                metrics.append(Metric(k, float(v), t_ms, int(p["step"])))
    return ([Param(k, v) for k, v in sorted(params.items())], metrics,
            [RunTag(k, v) for k, v in sorted(tags.items())])


def _existing_runs(client: Any, experiment_id: str) -> dict[str, Any]:
    """Runs of the experiment by their ``scalelab.hash`` tag (deleted runs are not looked at)."""
    found: dict[str, Any] = {}
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        for r in page:
            h = r.data.tags.get(TAG + "hash")
            if h is not None:
                found[h] = r
        token = page.token
        if not token:
            return found


def export_to_mlflow(store: RunStore, uri: str, *, experiment: str = DEFAULT_EXPERIMENT,
                     status: str | Sequence[str] | None = None) -> ExportSummary:
    """Log every finished run of ``store`` into the MLflow tracking store at ``uri``; see the module docstring.

    Parameters
    ----------
    store : RunStore
        Read only; nothing in it changes.
    uri : str
        An MLflow tracking URI: ``sqlite:///abs/path.db``, ``file:/abs/folder``, or a server's URL.
    experiment : str
        Created when missing.
    status : str or list, optional
        ``completed`` and/or ``diverged`` (default: both); unfinished runs are never exported.

    >>> export_to_mlflow(RunStore("runs.sqlite"), "sqlite:///mlflow.db")   # doctest: +SKIP
    """
    statuses = list(FINAL_STATUSES) if status is None else [status] if isinstance(status, str) else list(status)
    bad = [s for s in statuses if s not in FINAL_STATUSES]
    if bad:
        raise ConfigError(explain("only finished runs go to MLflow (their results no longer change)",
                                  value=bad[0], allowed=", ".join(FINAL_STATUSES),
                                  fix="drop --status, or pass --status completed"))
    recs = store.runs(status=statuses)
    table = store.runs_table(status=statuses)
    rows = {h: {k: table[k][i] for k in table} for i, h in enumerate(table["hash"])}
    skipped = len(store) - len(store.runs(status=list(FINAL_STATUSES)))
    summary = ExportSummary(experiment=experiment, uri=uri, logged=0, already=0, redone=0, skipped=skipped)
    with _mlflow_errors(uri, f"write the experiment {experiment!r}"):
        client = _mlflow_client(uri)
        exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment)
        if exp is not None and exp.lifecycle_stage == "deleted":
            raise ConfigError(explain(f"the MLflow experiment {experiment!r} is deleted", value=uri,
                                      fix="restore it (mlflow experiments restore) or pass another --experiment"))
        have = _existing_runs(client, exp_id)
        for rec in recs:
            old = have.get(rec.hash)
            if old is not None and old.info.status != "RUNNING":
                summary["already"] += 1
                continue
            if old is not None:  # an export stopped before this run was whole: redo it
                client.delete_run(old.info.run_id)
                summary["redone"] += 1
            params, metrics, tags = _entities(rec, rows[rec.hash], store.curve(rec.hash))
            run = client.create_run(exp_id, start_time=int(1000 * (rec.started_at or rec.created_at or 0)),
                                    tags={TAG + "hash": rec.hash})
            rid = run.info.run_id
            for i in range(0, len(params), _BATCH_PARAMS):
                client.log_batch(rid, params=params[i:i + _BATCH_PARAMS])
            for i in range(0, len(tags), _BATCH_PARAMS):
                client.log_batch(rid, tags=tags[i:i + _BATCH_PARAMS])
            for i in range(0, len(metrics), _BATCH_METRICS):
                client.log_batch(rid, metrics=metrics[i:i + _BATCH_METRICS])
            # terminated last: a run that is not RUNNING is whole
            client.set_terminated(rid, status=_MLFLOW_STATUS[rec.status],
                                  end_time=int(1000 * (rec.finished_at or rec.created_at or 0)))
            summary["logged"] += 1
    return summary


# ---- reading back -------------------------------------------------------------------------------------
def _local_path(uri: str) -> str | None:
    """The file or folder a ``sqlite:///`` or ``file:`` URI names, else ``None`` (a server)."""
    from urllib.parse import unquote, urlparse

    if uri.startswith("sqlite:///"):
        return unquote(uri[len("sqlite:///"):].split("?", 1)[0]) or None
    if uri.startswith("file:"):
        return unquote(urlparse(uri).path) or None
    return None


def read_mlflow_runs(uri: str, experiment: str) -> tuple[dict[str, list[Any]], str, str | None]:
    """The FINISHED runs of an MLflow experiment as columns for ``scalelab.laws.load_runs``.

    Returns ``(columns, label, n_convention)``: one column per param (text as logged; the fit reader
    converts numbers) and per metric (its last value), plus ``run_id``, ``run_name`` and ``hash`` (the
    ``scalelab.hash`` tag, else the MLflow run id); ``n_convention`` is ``"total"`` when every run came from
    scalelab (whose ``N`` is the total parameter count), else ``None``. Runs are in start-time order.
    """
    local = _local_path(uri)
    if local is not None and not os.path.exists(local):
        # MLflow would create an empty store there: a mistyped path would read as "no such experiment"
        raise ConfigError(explain("no MLflow tracking store at this path", value=uri,
                                  fix="check the path (sqlite:////abs/path.db has four slashes), or export runs "
                                      "there first with `scalelab tunnel export --mlflow URI`"))
    with _mlflow_errors(uri, f"read the experiment {experiment!r}"):
        client = _mlflow_client(uri)
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            names = [e.name for e in client.search_experiments()]
            raise UnknownNameError("MLflow experiment", experiment, names,
                                   fix=f"pass mlflow:NAME with one of the experiments at {uri}")
        runs, token = [], None
        while True:
            page = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
            runs += list(page)
            token = page.token
            if not token:
                break
    finished = [r for r in runs if r.info.status == "FINISHED"]
    if not finished:
        states = sorted({r.info.status for r in runs})
        raise DataError(explain(f"the MLflow experiment {experiment!r} has no finished runs",
                                value=f"{len(runs)} runs" + (f" ({', '.join(states)})" if states else ""),
                                allowed="runs with status FINISHED",
                                fix="let the runs finish, or export them with `scalelab tunnel export --mlflow`"))
    finished.sort(key=lambda r: (r.info.start_time or 0, r.info.run_id))
    keys: list[str] = ["hash", "run_id", "run_name"]
    for r in finished:
        for k in (*r.data.params, *r.data.metrics):
            if k not in keys:
                keys.append(k)
    cols: dict[str, list[Any]] = {k: [] for k in keys}
    for r in finished:
        vals: dict[str, Any] = {**r.data.params, **r.data.metrics,
                                "hash": r.data.tags.get(TAG + "hash", r.info.run_id), "run_id": r.info.run_id,
                                "run_name": r.info.run_name}
        for k in keys:
            cols[k].append(vals.get(k))
    ours = all(TAG + "hash" in r.data.tags for r in finished)
    left = len(runs) - len(finished)
    label = (f"MLflow experiment {experiment!r} at {uri}"
             + (f" ({left} runs not FINISHED left out)" if left else ""))
    return cols, label, "total" if ours else None
