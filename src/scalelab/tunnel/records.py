"""Run records: one stored run as a dataclass, with the helpers that fill it (versions, parameter counts).

The store's SQLite columns are named in :mod:`scalelab.tunnel.schema`; :class:`RunRecord` has one field
per column plus the decoded ``config`` (and the curve when asked for).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sqlite3
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._spec import stable_hash
from ..errors import ConfigError, StoreError, explain

__all__ = ["ClaimLostError", "MeasuredPerf", "RunRecord", "branch_hash", "default_store_path", "env_number",
           "scalelab_home"]


class ClaimLostError(StoreError):
    """A worker tried to store a run that another worker reclaimed meanwhile; its result is discarded."""


def scalelab_home() -> Path:
    """``$SCALELAB_HOME``, or ``~/.scalelab`` when unset."""
    env = os.environ.get("SCALELAB_HOME")
    return Path(env).expanduser() if env else Path.home() / ".scalelab"


def env_number(name: str, default: float, *, minimum: float = 0.0) -> float:
    """The number in environment variable ``name`` (``default`` when unset or empty); a ConfigError naming the
    variable when it is not a finite number >= ``minimum``, rather than a float() traceback."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= minimum):
        raise ConfigError(explain(f"environment variable {name} is not a number >= {minimum:g}", value=raw,
                                  fix=f"set it to a number (e.g. {name}={default:g}) or unset it"))
    return value


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


@dataclass(kw_only=True)
class MeasuredPerf:
    """What a run measured on its device and what the planner predicted for it (:mod:`scalelab.tunnel.perf`;
    the run store's schema-2 columns). Times in seconds, memory in bytes."""

    step_s: float | None = None
    saved_tensor_bytes: int | None = None
    peak_rss_bytes: int | None = None
    peak_mem_bytes: int | None = None
    pred_device: str | None = None
    pred_step_s: float | None = None
    pred_activation_bytes: int | None = None
    pred_mem_bytes: int | None = None


@dataclass
class RunRecord(MeasuredPerf):
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
    device: str | None = None
    pruned_json: str | None = None
    curve: list[dict[str, Any]] | None = field(default=None, repr=False)

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> RunRecord:
        d = dict(row)
        raw = d.pop("config_json")
        try:
            cfg = json.loads(raw)
            if not isinstance(cfg, dict):
                raise ValueError(f"a JSON {type(cfg).__name__}, not an object")
        except (TypeError, ValueError) as e:
            # One damaged row (a hand edit, a disk error) made every ls/show/fit/export of the store a
            # JSONDecodeError traceback: the other runs stay readable and this one says how to remove it.
            cfg = {}
            note = (f"its stored config is unreadable ({e}); remove it with `scalelab tunnel rm {d.get('hash')} "
                    "--force` and run its grid again")
            d["error"] = f"{d['error']}; {note}" if d.get("error") else note
        d["config"] = cfg
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
            "model": f"L{m.get('n_layers', '?')} d{m.get('d_model', '?')}" + (" moe" if m.get("moe") else ""),
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
        lines += self._measured_lines()
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

    def _measured_lines(self) -> list[str]:
        """Measured step time and memory beside the planner's prediction for the same run."""
        from ..units import format_bytes

        out = []
        if self.step_s is not None or self.pred_step_s is not None:
            meas = f"{self.step_s * 1e3:.1f} ms" if self.step_s is not None else "-"
            pred = f"{self.pred_step_s * 1e3:.1f} ms" if self.pred_step_s is not None else "-"
            out.append(f"  step time        measured {meas} on {self.device or '?'}, "
                       f"planned {pred} on {self.pred_device or '?'}")
        if self.peak_mem_bytes is not None or self.pred_mem_bytes is not None:
            meas = format_bytes(self.peak_mem_bytes) if self.peak_mem_bytes is not None else "-"
            pred = format_bytes(self.pred_mem_bytes) if self.pred_mem_bytes is not None else "-"
            out.append(f"  peak memory      measured {meas}, planned {pred}")
        if self.saved_tensor_bytes is not None or self.pred_activation_bytes is not None:
            meas = format_bytes(self.saved_tensor_bytes) if self.saved_tensor_bytes is not None else "-"
            pred = format_bytes(self.pred_activation_bytes) if self.pred_activation_bytes is not None else "-"
            out.append(f"  activations      saved for backward {meas}, planned {pred}")
        return out


def _config_dict_and_hash(config: Any) -> tuple[dict[str, Any], str]:
    if hasattr(config, "to_dict") and hasattr(config, "content_hash"):
        return config.to_dict(), config.content_hash()
    if isinstance(config, dict):
        return config, stable_hash(config)
    raise ConfigError(explain("a run config must be a RunConfig or a dict", value=type(config).__name__))
