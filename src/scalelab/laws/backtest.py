"""Backtesting: fit a law on the smaller runs, forecast the larger ones, and score the forecasts.

The question a scaling law answers is out of sample ("how will the big run do?"), so it is scored out of
sample, in the spirit of scikit-learn's ``cross_validate`` but with splits along a size axis instead of
random folds: every split trains on the runs below a cutoff and tests on runs at or above it.

Legend: ``N`` parameters, ``D`` tokens, ``C = 6 N D`` training FLOPs, ``L`` final loss (nats/token).

Splits (``split=``), over the distinct levels of the axis (model sizes; compute budgets; a continuous
axis with more than :data:`MAX_LEVELS` levels is cut into that many bins, equal in log):

``"n"``         for each of the last ``n_splits`` levels of ``N``: train on ``N`` below it, test on the rest
``"compute"``   the same over ``C``
``"rolling"``   train below a level of ``N``, test on that level only (one step ahead)
``"largest"``   one split: train on all but the largest ``N``, test on the largest

Scores per test run: the percent error of the point forecast, whether the band at ``level`` covers the
observed loss, the band's relative width, and the **interval score** of Gneiting & Raftery (2007, eq. 43),
a proper scoring rule that charges both width and misses:
``IS = (u - l) + (2/alpha) (l - y)_+ + (2/alpha) (y - u)_+`` with ``alpha = 1 - level``, here divided by
``y`` so that data sets pool. Pooled figures: the median of per-split median errors, the coverage and
mean interval score over every test run.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, ScalelabError, explain

__all__ = ["MAX_LEVELS", "SPLITS", "BacktestComparison", "BacktestResult", "backtest", "candidate_laws",
           "interval_score", "level_splits", "split_runs"]

SPLITS = ("n", "compute", "rolling", "largest")
#: A size axis with more distinct values than this (digitised or continuous compute) is binned in log.
MAX_LEVELS = 12


def interval_score(lo: Any, hi: Any, y: Any, level: float) -> np.ndarray:
    """Gneiting & Raftery (2007) interval score of the central ``level`` interval ``[lo, hi]`` at ``y``.

    >>> [round(float(interval_score(1.0, 2.0, y, 0.9)), 9) for y in (1.5, 2.5)]  # width 1; + 2/0.1 x 0.5 missed
    [1.0, 11.0]
    """
    lo, hi, y = (np.asarray(a, dtype=float) for a in (lo, hi, y))
    a = 1.0 - float(level)
    return (hi - lo) + (2 / a) * np.clip(lo - y, 0, None) + (2 / a) * np.clip(y - hi, 0, None)


def _levels(values: np.ndarray) -> np.ndarray:
    """Level index of each run along the axis (0 = smallest): distinct values, or log bins when many."""
    lv = np.log(values)
    uniq = np.unique(np.round(lv, 6))
    if uniq.size <= MAX_LEVELS:
        return np.searchsorted(uniq, np.round(lv, 6))
    edges = np.linspace(lv.min(), lv.max(), MAX_LEVELS + 1)[1:-1]
    # number only the occupied bins: an empty bin would make a rolling split with no test runs (a crash in
    # np.min) and two identical "n" splits (lev >= k is the same set for the empty k and k + 1)
    return np.unique(np.searchsorted(edges, lv, side="right"), return_inverse=True)[1]


def split_runs(axis: np.ndarray, split: str = "n", n_splits: int = 3) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Boolean (train, test) masks and the cutoff (smallest test value) of each split along ``axis``."""
    if split not in SPLITS:
        raise ConfigError(explain("unknown split", value=split, allowed=", ".join(SPLITS),
                                  fix="use --split n, compute, rolling or largest"))
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 1:
        # 0 printed "pooled over 0 splits, 0 forecasts" and exit 0: a backtest of nothing
        raise ConfigError(explain("n_splits must be a whole number of cutoffs, at least 1", value=n_splits,
                                  fix="e.g. --n-splits 3 (the last three sizes are each forecast from the smaller)"))
    lev = _levels(np.asarray(axis, dtype=float))
    if int(lev.max()) < 1:
        raise DataError(explain("a backtest needs runs at two or more sizes along the split axis",
                                value=f"one level of {split}", fix="add runs at other sizes"))
    return [(train, test, float(np.min(axis[test]))) for train, test in level_splits(lev, split, n_splits)]


def level_splits(lev: np.ndarray, split: str, n_splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Boolean (train, test) masks over run levels (:func:`_levels`): for each of the last ``n_splits`` levels
    ``k >= 1`` (only the top one for ``"largest"``) train on ``lev < k`` and test on ``lev == k``
    (``"rolling"``, ``"largest"``) or ``lev >= k``. Shared by :func:`split_runs` and the calibrated band's
    own backtests (:func:`scalelab.laws.calibration.own_scores`); none when every run is on level 0."""
    top = int(lev.max())
    ks = [top] if split == "largest" else list(range(max(1, top - int(n_splits) + 1), top + 1))
    one_level = split in ("rolling", "largest")
    return [(lev < k, lev == k if one_level else lev >= k) for k in ks]


@dataclass
class BacktestResult:
    """One law's backtest: per-split scores and pooled figures (``to_dict`` has ``splits`` and ``pooled``)."""

    law: str
    split: str
    level: float
    kind: str
    splits: list[dict[str, Any]]
    pooled: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from .. import __version__
        from .base import band_label

        return {"law": self.law, "split": self.split, "level": self.level, "band": self.kind,
                "band_label": band_label(self.kind, self.level),
                "options": self.options, "splits": self.splits, "pooled": self.pooled,
                "scalelab_version": __version__}

    def report(self) -> str:
        from .base import band_label

        lines = [f"backtest of {self.law} (split {self.split!r}, {band_label(self.kind, self.level)})",
                 f"  {'cutoff':>10} {'train':>6} {'test':>5} {'med|err|%':>10} {'cover':>6} {'IS':>8} "
                 f"{'extrap':>7}  quality"]
        for s in self.splits:
            if s.get("skipped"):
                lines.append(f"  {s['cutoff']:>10.3g} {s['n_train']:>6} {s['n_test']:>5}  skipped: {s['skipped']}")
                continue
            lines.append(f"  {s['cutoff']:>10.3g} {s['n_train']:>6} {s['n_test']:>5} "
                         f"{_f(s['median_abs_pct_error'], 10)}"
                         f" {_f(s['coverage'], 6, '.0%')} {_f(s['interval_score'], 8, '.4f')} "
                         f"{_f(s['max_extrapolation'], 7, '.3g')}  {s.get('quality', '-')}")
        p = self.pooled
        lines.append(f"  pooled over {p['n_splits']} splits, {p['n_test']} forecasts: median of per-split median "
                     f"errors {_f(p['median_abs_pct_error'], 0)}%, "
                     f"{band_label(self.kind, self.level, 'coverage')} {_f(p['coverage'], 0, '.1%')}, "
                     f"interval score {_f(p['interval_score'], 0, '.4f')} (relative to the loss)")
        return "\n".join(lines)


def _f(v: Any, w: int, spec: str = ".2f") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return f"{'-':>{w}}"
    return f"{format(v, spec):>{w}}"


@dataclass
class BacktestComparison:
    """Several laws backtested on the same splits; ``best`` has the lowest median error."""

    results: list[BacktestResult]
    best: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        best = next(r for r in self.results if r.law == self.best)
        return {"best": self.best, "reason": self.reason, "splits": best.splits, "pooled": best.pooled,
                "by_law": {r.law: r.to_dict() for r in self.results}}

    def report(self) -> str:
        lines = [r.report() for r in self.results]
        lines.append(f"chosen: {self.best} ({self.reason})")
        return "\n\n".join(lines)


def candidate_laws(columns: Sequence[str]) -> list[str]:
    """The loss laws whose covariates the runs provide, most specific first (``--law auto``)."""
    have = set(columns)
    out = []
    if {"N", "D", "U"} <= have:
        out.append("muennighoff")
    if {"N", "D"} <= have:
        out += ["chinchilla", "kaplan"]
    if "C" in have or {"N", "D"} <= have:
        out.append("henighan-c")
    return out


def _law_template(law: Any, options: Mapping[str, Any]) -> Any:
    from .base import ScalingLaw, get_law

    if isinstance(law, ScalingLaw):
        return law.set_params(**options) if options else law
    return get_law(law)(**options)


def _clone(template: Any) -> Any:
    return type(template)(**template.get_params())


def _runs_arrays(runs: Any, law: Any) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    X, y, _ = runs.law_inputs(law)
    return X, y


def _one_split(template: Any, X: tuple[np.ndarray, ...], y: np.ndarray, train: np.ndarray, test: np.ndarray,
               cutoff: float, level: float, kind: str, duplicates: str) -> dict[str, Any]:
    s: dict[str, Any] = {"cutoff": cutoff, "n_train": int(train.sum()), "n_test": int(test.sum())}
    law = _clone(template)
    Xtr, Xte = tuple(a[train] for a in X), tuple(a[test] for a in X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            law.fit(*Xtr, y[train], duplicates=duplicates)
        except ScalelabError as e:
            s["skipped"] = str(e).split(".")[0]
            return s
        pred = np.asarray(law.predict(*Xte), dtype=float)
        try:
            lo, hi = (np.asarray(a, dtype=float) for a in law.predict_interval(*Xte, level=level, kind=kind))
            s["band_error"] = None
        except ScalelabError as e:
            lo = hi = np.full(pred.shape, np.nan)
            s["band_error"] = str(e)
    yt = y[test]
    err = 100 * (pred / yt - 1)
    has = np.isfinite(lo) & np.isfinite(hi)
    cov = (lo <= yt) & (yt <= hi)
    isc = interval_score(lo, hi, yt, level) / yt
    s.update({
        "median_abs_pct_error": float(np.median(np.abs(err))),
        "mean_abs_pct_error": float(np.mean(np.abs(err))),
        "max_abs_pct_error": float(np.max(np.abs(err))),
        "coverage": float(np.mean(cov[has])) if has.any() else None,
        "interval_score": float(np.mean(isc[has])) if has.any() else None,
        "mean_rel_width": float(np.mean(((hi - lo) / yt)[has])) if has.any() else None,
        "max_extrapolation": float(np.nanmax(law.extrapolation(*Xte))),
        "quality": getattr(law, "quality_", {}).get("verdict"),
        # where the calibrated band's q came from: the fit's own backtests, the prior, or none (noise band)
        "band_source": (law.result_.calibration or {}).get("source") if kind == "new" else None,
        "warnings": sorted({w.category.__name__ for w in caught}),
        "runs": {"pct_error": err.tolist(), "covered": [bool(c) if h else None for c, h in zip(cov, has, strict=True)],
                 "interval_score": [float(v) if h else None for v, h in zip(isc, has, strict=True)],
                 "y": yt.tolist(), "pred": pred.tolist(), "lo": lo.tolist(), "hi": hi.tolist()},
    })
    return s


def pool(splits: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled figures over the splits that ran (see the module docstring)."""
    ran = [s for s in splits if not s.get("skipped")]
    errs = [s["median_abs_pct_error"] for s in ran]
    cov = [c for s in ran for c in s["runs"]["covered"] if c is not None]
    isc = [v for s in ran for v in s["runs"]["interval_score"] if v is not None]
    allerr = [abs(e) for s in ran for e in s["runs"]["pct_error"]]
    return {
        "n_splits": len(ran), "n_skipped": len(splits) - len(ran), "n_test": len(allerr),
        "median_abs_pct_error": float(np.median(errs)) if errs else None,
        "median_abs_pct_error_all_runs": float(np.median(allerr)) if allerr else None,
        "coverage": float(np.mean(cov)) if cov else None,
        "interval_score": float(np.mean(isc)) if isc else None,
        "median_interval_score": float(np.median(isc)) if isc else None,
        "n_without_band": sum(1 for s in ran for c in s["runs"]["covered"] if c is None),
    }


def backtest(runs: Any, law: Any = "chinchilla", *, split: str = "n", n_splits: int = 3, level: float = 0.95,
             kind: str = "new", options: Mapping[str, Any] | None = None, duplicates: str = "error",
             **columns: Any) -> BacktestResult | BacktestComparison:
    """Fit ``law`` on the smaller runs and score its forecasts of the larger ones.

    Parameters
    ----------
    runs : Runs, DataFrame, dict of columns, or a path ``load_runs`` reads
    law : name, class or law instance (its options are kept); a list of them to compare; or ``"auto"``:
        every loss law the columns allow (:func:`candidate_laws`), the best by median error chosen
    split : {"n", "compute", "rolling", "largest"}
    n_splits : number of cutoffs (the last levels of the axis)
    level, kind : the band scored (``kind="new"``: the calibrated new-run band; ``"noise"``: a new run if
        the law were right; ``"mean"``: the mean law)
    options : constructor options for laws given by name (e.g. ``{"n_bootstrap": 200}``)
    **columns : column names, as ``law.fit(df, n="params", d="tokens", loss="loss")``

    Returns
    -------
    BacktestResult (``splits``, ``pooled``), or a BacktestComparison for several laws.

    Examples
    --------
    >>> res = backtest(df, "chinchilla", n="params", d="tokens", loss="loss")      # doctest: +SKIP
    >>> res.pooled["median_abs_pct_error"], res.pooled["coverage"]                 # doctest: +SKIP
    """
    from .._checks import check_level
    from .base import check_interval_kind
    from .data import Runs, is_table, load_runs, load_table

    check_interval_kind(kind)
    check_level(level)
    opts = dict(options or {})
    if isinstance(law, str) and law == "auto":
        table = runs if isinstance(runs, Runs) else load_runs(runs, **_load_kwargs(columns))
        names = candidate_laws(list(table.columns))
        if not names:
            raise DataError(explain("no built-in loss law applies to these columns", value=sorted(table.columns),
                                    allowed="N and D (and U), or C", fix="map the columns with n=, d=, compute="))
        law = names
    laws = list(law) if isinstance(law, (list, tuple)) else [law]
    results = []
    for entry in laws:
        template = _law_template(entry, opts)
        if isinstance(runs, Runs):
            table = runs
        elif is_table(runs):
            table = load_table(runs, template, columns)
        else:
            table = load_runs(runs, **_load_kwargs(columns))
        X, y = _runs_arrays(table, template)
        axis = _axis(table, split)
        splits = [_one_split(template, X, y, tr, te, cut, float(level), kind, duplicates)
                  for tr, te, cut in split_runs(axis, split, n_splits)]
        results.append(BacktestResult(law=str(template.name or type(template).__name__), split=split,
                                      level=float(level), kind=kind, splits=splits, pooled=pool(splits),
                                      options={k: v for k, v in template.get_params().items()
                                               if isinstance(v, (int, float, str, bool, type(None)))}))
    if len(results) == 1:
        return results[0]
    return _compare(results)


def _compare(results: list[BacktestResult]) -> BacktestComparison:
    def key(r: BacktestResult) -> tuple[float, float]:
        e = r.pooled["median_abs_pct_error"]
        isc = r.pooled["interval_score"]
        return (math.inf if e is None else e, math.inf if isc is None else isc)

    ranked = sorted(results, key=key)
    best = ranked[0]
    others = ", ".join(f"{r.law} {_fmt_pct(r.pooled['median_abs_pct_error'])}" for r in ranked[1:])
    reason = (f"lowest backtested median error over {best.pooled['n_splits']} splits: "
              f"{_fmt_pct(best.pooled['median_abs_pct_error'])}" + (f" (vs {others})" if others else ""))
    return BacktestComparison(results=results, best=best.law, reason=reason)


def _fmt_pct(v: Any) -> str:
    return "n/a" if v is None else f"{v:.2f}%"


def _load_kwargs(columns: Mapping[str, Any]) -> dict[str, Any]:
    """Column keywords as ``fit(df, ...)`` takes them (``n=``, ``y=``/``loss=``, ...) -> ``load_runs``'s."""
    from .data import _KEYWORD_CANON

    load_runs_arg = {"N": "n", "D": "d", "L": "loss", "C": "compute", "weight": "weight"}
    kw: dict[str, Any] = {}
    other: dict[str, str] = {}
    for k, v in columns.items():
        arg = load_runs_arg.get(_KEYWORD_CANON.get(k.lower(), ""))
        if arg is not None:
            kw[arg] = v
        else:
            other[k.upper() if len(k) == 1 else k] = v
    if other:
        kw["columns"] = other
    return kw


def _axis(table: Any, split: str) -> np.ndarray:
    if split == "compute":
        if "C" in table.columns:
            return np.asarray(table.columns["C"], dtype=float)
        from ..units import training_flops

        return np.asarray(training_flops(table.column("N"), table.column("D")), dtype=float)
    if "N" not in table.columns and "C" in table.columns:
        return np.asarray(table.columns["C"], dtype=float)
    return np.asarray(table.column("N"), dtype=float)
