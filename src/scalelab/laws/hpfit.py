"""Hyperparameter laws fitted to your own LR x batch sweeps: Step-Law-style and DeepSeek-style monomials.

Legend (symbols and units used in this module):

==============  ======================================================================================
``N``           parameters, **non-embedding** (Step Law's convention)
``D``           training tokens of a run
``M``           DeepSeek LLM's model scale, non-embedding FLOPs/token (``72 n_layer d^2 + 6 n_layer d l_seq``)
``C``           ``M D`` FLOPs, DeepSeek LLM's compute convention (not ``6 N D``)
``eta``         peak learning rate (AdamW)
``B``           batch size in **tokens** (``batch_size x seq_len``)
``L``           final validation loss of a run, nats/token
==============  ======================================================================================

Recipe (:func:`fit_hyperparams`):

1. **Cells.** Runs are grouped by model (``N``) and token count; token counts within 10% of each other are
   one cell (an LR x batch grid rounds ``D`` to whole steps, so its runs differ slightly in ``D``).
2. **Best per cell.** The run with the lowest final loss names the cell's best grid point. With
   ``refine=True`` (default) the optimum is refined between grid points: a parabola in ``log eta`` through
   the best run and its two neighbours at the best batch size (and likewise in ``log B`` at the best LR),
   its vertex kept within one grid step of the best run. This is the cell-minimum of a loss-vs-LR bowl, as
   DeepSeek LLM fit to their near-optimal region (Bi et al. 2024 §3.1, Fig. 3); at an edge of the grid no
   refinement is possible and the edge value is kept (and flagged ``at_edge``: widen the sweep).
3. **Fit in log space** (ordinary least squares on ``log y``, as both papers did):
   Step-Law-style ``eta = a N^b D^c`` and ``B = d D^e`` (Li et al. 2025, arXiv:2503.04715);
   DeepSeek-style ``eta = a C^b`` and ``B = d C^e`` with ``C = M D`` (Bi et al. 2024 eq. 1).
   The two-covariate Step-Law LR form needs ``N`` and ``D`` to vary independently: when every cell has
   the same ``D/N`` (they are collinear in log space) it is not fitted and the reason is recorded.

The result saves to JSON (``{"law": "hyperparams", ...}``) that tunnel grids (``lr = "fit.json"``) and
``scalelab budget --hyperparams fit.json`` read back.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, explain
from .hyperparams import (
    DeepSeekBatchLaw,
    DeepSeekLRLaw,
    StepLawBatchLaw,
    StepLawLRLaw,
    deepseek_model_scale,
)

__all__ = ["FORMS", "HyperparamFit", "best_per_cell", "fit_hyperparams", "load_hyperparam_fit", "refined_optimum"]

#: The law forms a fit holds, in the order :meth:`HyperparamFit.predict_lr` tries them.
FORMS = ("steplaw", "deepseek")
#: Columns a sweep table needs (a run store's table has them all).
NEEDED = ("N_non_embedding", "D", "lr", "batch_size", "seq_len", "loss", "n_layers", "d_model")
_CELL_TOL = 0.10


def _columns(table: Any) -> dict[str, np.ndarray]:
    cols = getattr(table, "columns", table)
    if not hasattr(cols, "keys"):
        raise DataError(explain("a sweep table must be a mapping of columns (or a laws.data.Runs)",
                                value=type(table).__name__))
    missing = [k for k in NEEDED if k not in cols]
    if missing:
        raise DataError(explain("the sweep table lacks columns", value=missing, allowed=", ".join(NEEDED),
                                fix="read the runs from a run store (scalelab.tunnel.store.load_runs_for_fit)"))
    out = {k: np.asarray(cols[k], dtype=float).ravel() for k in NEEDED}
    n = out["loss"].size
    if any(v.size != n for v in out.values()):
        raise DataError(explain("sweep columns differ in length", value={k: v.size for k, v in out.items()}))
    ok = np.all([np.isfinite(v) & (v > 0) for v in out.values()], axis=0)
    return {k: v[ok] for k, v in out.items()}


def _cell_ids(N: np.ndarray, D: np.ndarray) -> np.ndarray:
    """One id per (model, token count) cell; token counts within 10% of each other share a cell."""
    ids = np.full(N.size, -1)
    next_id = 0
    for n in np.unique(N):
        idx = np.flatnonzero(N == n)
        order = idx[np.argsort(D[idx])]
        start = D[order[0]]
        for i in order:
            if D[i] > start * (1 + _CELL_TOL):
                next_id += 1
                start = D[i]
            ids[i] = next_id
        next_id += 1
    return ids


def _vertex(xs: np.ndarray, ys: np.ndarray, x_best: float) -> tuple[float, bool]:
    """Refined optimum of ``y(x)`` near ``x_best`` (x in log space): the parabola through the best point
    and its neighbours, vertex clipped to them; ``(x_best, True)`` at an edge of the grid."""
    u = np.unique(xs)
    if u.size < 3:
        return x_best, True
    best_y = {x: ys[xs == x].min() for x in u}
    k = int(np.searchsorted(u, x_best))
    if k == 0 or k == u.size - 1:
        return x_best, True
    x3 = u[k - 1 : k + 2]
    y3 = np.array([best_y[x] for x in x3])
    a, b, _ = np.polyfit(x3, y3, 2)
    if a <= 0:  # not a bowl (flat or noisy): keep the grid point
        return x_best, False
    return float(np.clip(-b / (2 * a), x3[0], x3[2])), False


def refined_optimum(values: Any, losses: Any) -> float:
    """The loss-minimising value of a one-dimensional sweep (an LR ladder): the parabola in ``log value``
    through the best point and its neighbours (step 2 of the module docstring); the best grid value at an
    edge.

    >>> round(refined_optimum([1e-3, 2e-3, 4e-3, 8e-3], [3.0, 2.6, 2.6, 3.0]), 5)
    0.00283
    """
    v = np.asarray(values, dtype=float)
    y = np.asarray(losses, dtype=float)
    ok = np.isfinite(y) & (v > 0)
    if not ok.any():
        raise DataError(explain("no finite loss in the sweep", value=list(y)))
    v, y = v[ok], y[ok]
    x, _ = _vertex(np.log(v), y, float(np.log(v[np.argmin(y)])))
    return math.exp(x)


def best_per_cell(table: Any, *, refine: bool = True) -> dict[str, np.ndarray]:
    """The best LR and batch of each (N, D) cell of a sweep (recipe in the module docstring).

    Returns columns ``N``, ``D``, ``C`` (= M D), ``M``, ``lr`` (refined or grid), ``lr_grid``,
    ``batch_tokens``, ``batch_tokens_grid``, ``loss``, ``n_runs``, ``lr_at_edge``, ``batch_at_edge``,
    one entry per cell, sorted by ``N`` then ``D``.
    """
    c = _columns(table)
    if c["loss"].size == 0:
        raise DataError(explain("no finished sweep runs (all losses missing or non-positive)",
                                fix="run `scalelab tunnel sweep` first, or check the store and --grid"))
    bt = c["batch_size"] * c["seq_len"]
    ids = _cell_ids(c["N_non_embedding"], c["D"])
    rows: list[dict[str, float]] = []
    for cid in np.unique(ids):
        m = ids == cid
        i = np.flatnonzero(m)[np.argmin(c["loss"][m])]
        lr_g, b_g = c["lr"][i], bt[i]
        lr_r, b_r, lr_edge, b_edge = lr_g, b_g, False, False
        if refine:
            at_b = m & (bt == b_g)
            x, lr_edge = _vertex(np.log(c["lr"][at_b]), c["loss"][at_b], math.log(lr_g))
            lr_r = math.exp(x)
            at_lr = m & (c["lr"] == lr_g)
            x, b_edge = _vertex(np.log(bt[at_lr]), c["loss"][at_lr], math.log(b_g))
            b_r = math.exp(x)
        M = float(deepseek_model_scale(c["n_layers"][i], c["d_model"][i], c["seq_len"][i]))
        D = float(np.median(c["D"][m]))
        rows.append({"N": float(c["N_non_embedding"][i]), "D": D, "M": M, "C": M * D, "lr": lr_r, "lr_grid": lr_g,
                     "batch_tokens": b_r, "batch_tokens_grid": b_g, "loss": float(c["loss"][i]),
                     "n_runs": float(m.sum()), "lr_at_edge": float(lr_edge), "batch_at_edge": float(b_edge)})
    rows.sort(key=lambda r: (r["N"], r["D"]))
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


@dataclass
class HyperparamFit:
    """Step-Law-style and DeepSeek-style LR and batch laws fitted to the best runs of a sweep.

    ``laws`` maps ``"steplaw-lr"``, ``"steplaw-batch"``, ``"deepseek-lr"``, ``"deepseek-batch"`` to fitted
    :class:`~scalelab.laws.general.MonomialLaw` s (a form that could not be fitted is absent, with its
    reason in ``notes``); ``cells`` are the per-cell optima they were fitted to.
    """

    cells: dict[str, np.ndarray]
    laws: dict[str, Any]
    refine: bool = True
    source: str = ""
    notes: list[str] = field(default_factory=list)

    # ---- prediction --------------------------------------------------------------------------------
    def _law(self, key: str) -> Any:
        if key not in self.laws:
            why = "; ".join(n for n in self.notes if key in n) or "not fitted"
            raise ConfigError(explain(f"this hyperparameter fit has no {key} law", value=key,
                                      allowed=", ".join(self.laws) or "none", fix=why))
        return self.laws[key]

    def predict_lr(self, *, N: float, D: float, M: float | None = None, form: str | None = None) -> float:
        """Peak LR for a model of ``N`` non-embedding parameters on ``D`` tokens (``M`` FLOPs/token for the
        DeepSeek form). ``form=None``: Step-Law-style when fitted, else DeepSeek-style."""
        form = form or ("steplaw" if "steplaw-lr" in self.laws else "deepseek")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # extrapolation is the point; the caller reports it
            if form == "steplaw":
                return float(self._law("steplaw-lr").predict(N, D))
            if form == "deepseek":
                if M is None:
                    raise ConfigError(explain("the DeepSeek-style law needs M (FLOPs/token)", value=None))
                return float(self._law("deepseek-lr").predict(M * D))
        raise ConfigError(explain("unknown law form", value=form, allowed=", ".join(FORMS)))

    def predict_batch_tokens(self, *, D: float, M: float | None = None, form: str | None = None) -> float:
        """Batch size in tokens (Step-Law-style ``d D^e`` when fitted, else DeepSeek-style ``d C^e``)."""
        form = form or ("steplaw" if "steplaw-batch" in self.laws else "deepseek")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if form == "steplaw":
                return float(self._law("steplaw-batch").predict(D))
            if form == "deepseek" and M is not None:
                return float(self._law("deepseek-batch").predict(M * D))
        raise ConfigError(explain("unknown law form or missing M", value=(form, M), allowed=", ".join(FORMS)))

    # ---- output ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from .. import __version__
        from .io import law_to_dict

        return {"law": "hyperparams", "source": self.source, "refine": self.refine,
                "cells": {k: v.tolist() for k, v in self.cells.items()},
                "laws": {k: law_to_dict(v) for k, v in self.laws.items()}, "notes": list(self.notes),
                "scalelab_version": __version__}

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(_finite(self.to_dict()), indent=1, allow_nan=False), encoding="utf-8")
        return p

    def report(self) -> str:
        c = self.cells
        how = "parabola-refined" if self.refine else "grid"
        lines = [f"hyperparameter laws from {int(c['n_runs'].sum())} sweep runs in {c['N'].size} cells "
                 f"({how} optimum per cell)", *([f"  source: {self.source}"] if self.source else []),
                 "  N (non-emb)      D    C = M D   best lr  batch tok    loss"]
        for i in range(c["N"].size):
            edge = " (LR at grid edge)" if c["lr_at_edge"][i] else ""
            lines.append(f"  {c['N'][i]:>11.4g} {c['D'][i]:>9.3g} {c['C'][i]:>9.3g} {c['lr'][i]:>9.3g} "
                         f"{c['batch_tokens'][i]:>10.4g} {c['loss'][i]:>7.4f}{edge}")
        for key, law in self.laws.items():
            p = law.params_
            terms = " ".join(f"{k}={float(v):.4g}" for k, v in p.items())
            lines.append(f"  {key:<15} {law.equation}: {terms}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _fit_one(cls: type, X: tuple[np.ndarray, ...], y: np.ndarray) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(loss="ls").fit(*X, y)


def fit_hyperparams(table: Any, *, refine: bool = True, source: str = "") -> HyperparamFit:
    """Fit Step-Law-style and DeepSeek-style LR and batch laws to a sweep's per-cell optima.

    Parameters
    ----------
    table : mapping of columns or :class:`~scalelab.laws.data.Runs`
        One row per sweep run with ``N_non_embedding``, ``D``, ``lr``, ``batch_size``, ``seq_len``,
        ``loss``, ``n_layers``, ``d_model`` (a run store's table, e.g. from
        ``scalelab.tunnel.store.load_runs_for_fit(path, grid="sweep:NAME")``).
    refine : bool
        Refine each cell's optimum between grid points (module docstring, step 2).

    Examples
    --------
    >>> import numpy as np
    >>> rows = [(n, d, lr, 8, 64, (np.log(lr) - np.log(0.3 * n ** -0.3)) ** 2 + 1, 2, 64)
    ...         for n in (1e5, 4e5, 1.6e6) for d in (1e6, 4e6) for lr in (1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2)]
    >>> cols = dict(zip(NEEDED, np.array(rows).T))
    >>> fit = fit_hyperparams(cols, refine=True)
    >>> round(float(fit.laws["steplaw-lr"].params_["p_N"]), 2)
    -0.3
    """
    cells = best_per_cell(table, refine=refine)
    notes: list[str] = []
    laws: dict[str, Any] = {}
    n = cells["N"].size
    if n < 2:
        raise DataError(explain("a hyperparameter law needs sweeps at two or more (N, D) cells at least",
                                value=n, fix="sweep more model sizes or token counts"))
    logN, logD = np.log(cells["N"]), np.log(cells["D"])
    design = np.column_stack([np.ones(n), logN, logD])
    if n >= 3 and np.linalg.matrix_rank(design, tol=1e-6 * max(1.0, float(np.abs(design).max()))) == 3:
        laws["steplaw-lr"] = _fit_one(StepLawLRLaw, (cells["N"], cells["D"]), cells["lr"])
    else:
        notes.append("steplaw-lr (eta = a N^b D^c) not fitted: N and D do not vary independently across the cells "
                     "(same D/N everywhere, or fewer than 3 cells); sweep at least two token counts for one size")
    if np.unique(cells["D"]).size >= 2:
        laws["steplaw-batch"] = _fit_one(StepLawBatchLaw, (cells["D"],), cells["batch_tokens"])
    else:
        notes.append("steplaw-batch (B = d D^e) not fitted: every cell has the same D")
    laws["deepseek-lr"] = _fit_one(DeepSeekLRLaw, (cells["C"],), cells["lr"])
    laws["deepseek-batch"] = _fit_one(DeepSeekBatchLaw, (cells["C"],), cells["batch_tokens"])
    if cells["lr_at_edge"].any():
        k = int(cells["lr_at_edge"].sum())
        notes.append(f"{k} cell(s) have their best LR at an edge of the LR grid: the optimum may lie outside it")
    if np.unique(cells["batch_tokens_grid"]).size == 1:
        notes.append("every cell's best batch is the same grid value: the batch laws are flat by construction")
    return HyperparamFit(cells, laws, refine=refine, source=source, notes=notes)


def load_hyperparam_fit(path: str | Path) -> HyperparamFit:
    """Read a fit written by :meth:`HyperparamFit.save`."""
    from .base import ScalingLaw
    from .io import law_from_dict, read_saved

    fix = "write one with `scalelab fit --law hyperparams --store RUNS --out FILE`"
    p, d = read_saved(path, fix=fix)
    if not isinstance(d, dict) or d.get("law") != "hyperparams":
        got = d.get("law") if isinstance(d, dict) else type(d).__name__
        raise ConfigError(explain(f"{p} is not a hyperparameter fit", value=got, allowed="law = 'hyperparams'",
                                  fix=fix))
    laws = {k: law_from_dict(ScalingLaw, v, source=f"{p} (law {k!r})") for k, v in d.get("laws", {}).items()}
    cells = {k: np.asarray(v, dtype=float) for k, v in d.get("cells", {}).items()}
    return HyperparamFit(cells, laws, refine=bool(d.get("refine", True)), source=str(d.get("source", "")),
                         notes=list(d.get("notes", [])))
