"""Weights & Biases runs-table exports as fit input: the CSV a W&B user downloads from a project's runs table.

That file has one row per run: W&B's own columns first (``Name``, ``State``, ``Notes``, ``User``, ``Tags``,
``Created``, ``Runtime``, ``Sweep``), then the run's config keys and its summary metrics, nested keys joined
with ``.`` or ``/`` (``model.n_params``, ``val/loss``). :func:`load_runs` recognises it by ``Name`` and
``State`` beside at least one other W&B column, and then

- keeps the runs whose ``State`` is ``finished`` (crashed, failed, killed and running runs have no final
  loss to fit; how many were left out, by state, is noted);
- finds ``N``, ``D``, ``C`` and the loss by their usual names, also as the last part of a nested key
  (``model/n_params`` -> ``n_params``); for the loss, a validation loss (``val/loss``, ``eval_loss``) is
  preferred over a plain ``loss``, and a training loss (``train/loss``) is the last resort;
- says which column it took for each (``--n``, ``--d``, ``--loss``, ``--compute`` take another), and
  names what it looked for when it finds no loss.

W&B's ``_step``, ``_runtime`` and ``_timestamp`` are bookkeeping, never a fit column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataError, explain

__all__ = ["WANDB_COLUMNS", "WandbRuns", "is_wandb_export", "prepare"]

#: The columns a W&B runs-table export starts with (the UI's fixed columns).
WANDB_COLUMNS = ("Name", "State", "Notes", "User", "Tags", "Created", "Runtime", "Sweep", "ID")
#: W&B run states; only ``finished`` runs carry a final loss.
STATES = ("finished", "running", "crashed", "failed", "killed", "preempted", "pending")
_LOSS_RANK = (("val", "eval", "valid", "validation", "test", "heldout"), (), ("train", "training"))


@dataclass
class WandbRuns:
    """A W&B export reduced to its finished runs, with the columns found for ``N``, ``D``, ``C``, ``L``."""

    columns: dict[str, list[Any]]
    rows: np.ndarray
    """0-based data rows of the file that were kept (for messages naming CSV lines)."""
    hints: dict[str, str] = field(default_factory=dict)
    """Canonical name -> the column found for it (lowest priority: the user's own mapping wins)."""
    notes: list[str] = field(default_factory=list)
    hint_notes: dict[str, str] = field(default_factory=dict)
    """Canonical name -> the note saying which column was taken (kept only when the hint is used)."""


def is_wandb_export(columns: dict[str, Any]) -> bool:
    """Whether a table's columns are those of a W&B runs-table export (see the module docstring)."""
    names = set(columns)
    if not {"Name", "State"} <= names or not (names & (set(WANDB_COLUMNS) - {"Name", "State"})):
        return False
    states = {str(v).strip().lower() for v in columns["State"]}
    return bool(states) and states <= set(STATES) | {""}


def _norm(s: str) -> str:
    return re.sub(r"[\s_\-./]", "", s.lower())


def _parts(col: str) -> list[str]:
    return [p for p in re.split(r"[./]", col) if p]


def _candidates(cols: list[str], synonyms: tuple[str, ...]) -> list[str]:
    """Columns named like one of ``synonyms``, whole or by their last nested part, in file order."""
    syn = {_norm(s) for s in synonyms}
    # a one-letter name (N, D, C, L) counts only whole: "data.n" is no parameter count
    last = {s for s in syn if len(s) > 1}
    return [c for c in cols if not c.startswith("_") and (_norm(c) in syn or _norm(_parts(c)[-1]) in last)]


def _loss_rank(col: str) -> int:
    words = {p.lower() for p in re.split(r"[./_\-\s]", col) if p}
    for rank, kinds in enumerate(_LOSS_RANK):
        if words & set(kinds):
            return rank
    return 1


def prepare(columns: dict[str, list[Any]], label: str, synonyms: dict[str, tuple[str, ...]]) -> WandbRuns:
    """Keep the finished runs of a W&B export and find its ``N``, ``D``, ``C`` and loss columns.

    ``synonyms`` are the fit reader's names per canonical column (:data:`scalelab.laws.data.SYNONYMS`).
    Raises :class:`DataError` when no run finished or no column holds a loss.
    """
    states = [str(v).strip().lower() for v in columns["State"]]
    keep = np.flatnonzero(np.array([s == "finished" for s in states], dtype=bool))
    left: dict[str, int] = {}
    for s in states:
        if s != "finished":
            left[s or "(blank)"] = left.get(s or "(blank)", 0) + 1
    if keep.size == 0:
        raise DataError(explain(f"the W&B export {label} has no finished runs", value=", ".join(
            f"{n} {s}" for s, n in sorted(left.items())) or "no runs", allowed="runs whose State is finished",
            fix="export the runs table again once the runs have finished"))
    kept = {k: [v[i] for i in keep] for k, v in columns.items()}
    notes = [f"W&B export: {keep.size} finished runs kept"
             + (f", {sum(left.values())} left out ({', '.join(f'{n} {s}' for s, n in sorted(left.items()))})"
                if left else "")]
    names = [c for c in columns if c not in WANDB_COLUMNS]
    hints: dict[str, str] = {}
    said: dict[str, str] = {}
    for canon in ("N", "D", "C"):
        found = _candidates(names, synonyms[canon])
        if found:
            hints[canon] = found[0]
            flag = {"N": "--n", "D": "--d", "C": "--compute"}[canon]
            said[canon] = (f"{canon} from W&B column {found[0]!r}"
                         + (f" (also found {', '.join(map(repr, found[1:]))}; pick one with {flag} COLUMN)"
                            if len(found) > 1 else ""))
    losses = sorted(_candidates(names, (*synonyms["L"], "loss")), key=_loss_rank)
    if not losses:
        numeric = [c for c in names if not c.startswith("_") and _numeric(kept[c])]
        raise DataError(explain(
            f"the W&B export {label} has no loss column",
            value=f"numeric columns: {', '.join(numeric) if numeric else 'none'}",
            allowed="a summary metric named loss, val/loss, eval_loss, validation_loss or train/loss "
                    "(nested keys count by their last part)",
            fix="name the column: --loss 'COLUMN' (e.g. --loss 'val/loss')"))
    hints["L"] = losses[0]
    said["L"] = (f"loss from W&B column {losses[0]!r}"
                 + (f" (also found {', '.join(map(repr, losses[1:]))}; pick one with --loss COLUMN)"
                    if len(losses) > 1 else ""))
    return WandbRuns(kept, keep, hints, notes, said)


def _numeric(values: list[Any]) -> bool:
    try:
        [float(v) for v in values if str(v).strip() != ""]
    except (TypeError, ValueError):
        return False
    return any(str(v).strip() != "" for v in values)
