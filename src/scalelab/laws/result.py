"""The outcome of a fit as one typed, frozen value: :class:`FitResult`, held at ``law.result_``.

A fitted law (or a preset, or a law loaded from a file) carries everything it learned in ``law.result_``:
parameters, their standard errors and intervals (with the level and the method behind them), derived
quantities, goodness of fit, the fit-quality verdict, the calibration scores of the new-run band, the data
hash and the optimiser's notes. The familiar scikit-learn attributes (``params_``, ``intervals_``,
``stderr_``, ``residuals_``, ``quality_``, ...) are read-only views of its fields.

The result is frozen: its fields cannot be reassigned. A step that adds to it (the bootstrap, the quality
verdict, the calibration backtest) makes a new one with :meth:`FitResult.replace`. Treat the mappings and
arrays inside as read-only too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FitResult"]


@dataclass(frozen=True, eq=False)
class FitResult:
    """What a fit (or a preset, or a saved file) says about a law's parameters.

    Parameters
    ----------
    params : dict
        Parameter name -> value, in public units, in the law's ``param_names`` order.
    stderr, intervals : dict
        Standard error and ``(low, high)`` interval of each parameter (empty when unknown).
    interval_level : float or None
        Coverage of ``intervals`` and ``derived_intervals`` (e.g. 0.95).
    interval_method : str or None
        How the intervals were made (bootstrap percentile, asymptotic Wald, from a paper, ...).
    derived, derived_intervals : dict
        Derived quantities (e.g. Chinchilla's ``a``, ``b``) at ``params`` and their intervals.
    cov_theta : array (P, P) or None
        Asymptotic covariance of the parameters in fitting space (log of the ``log_params``).
    bootstrap_params : array (B, P) or None
        Bootstrap refits, public units.
    residuals : array (n,) or None
        ``log(observed / predicted)`` per run, in the order the runs were given.
    goodness_of_fit : dict or None
        R^2, RMSE of log-loss, AIC/BIC, ... (:func:`scalelab.laws.fitting.goodness_of_fit`).
    quality : dict or None
        Fit-quality verdict ``{"verdict": "ok" | "suspect", "issues": [...]}`` (:mod:`scalelab.laws.quality`).
    calibration : dict or None
        Backtested extrapolation scores behind the calibrated new-run band (:mod:`scalelab.laws.calibration`).
    objective : float or None
        Final value of the fit's objective.
    n_samples : int or None
        Runs (or averaged design points) fitted.
    fitted_range : dict or None
        Covariate -> ``(min, max)`` of the fitted runs (plus compute ``C`` for a law in ``N`` and ``D``).
    data_hash : str or None
        Hash of the fitted runs in canonical order.
    fit_info : dict or None
        The optimiser's notes: starts, convergence, warnings, how duplicates were handled.
    preset, source : str or None
        The preset name and its citation, for published constants.
    data_source : dict or None
        Where the runs came from (``Runs.to_dict()``), when the CLI fitted the law; not saved.
    """

    params: dict[str, float]
    stderr: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, tuple[float, ...]] = field(default_factory=dict)
    interval_level: float | None = None
    interval_method: str | None = None
    derived: dict[str, float] = field(default_factory=dict)
    derived_intervals: dict[str, tuple[float, ...]] = field(default_factory=dict)
    cov_theta: np.ndarray | None = None
    bootstrap_params: np.ndarray | None = None
    residuals: np.ndarray | None = None
    goodness_of_fit: dict[str, float] | None = None
    quality: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    objective: float | None = None
    n_samples: int | None = None
    fitted_range: dict[str, tuple[float, ...]] | None = None
    data_hash: str | None = None
    fit_info: dict[str, Any] | None = None
    preset: str | None = None
    source: str | None = None
    data_source: dict[str, Any] | None = None

    def replace(self, **changes: Any) -> FitResult:
        """A copy with some fields changed (the result itself stays as it is)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """The result as plain Python types, in the keys a saved fit uses (``data_source`` is not saved)."""
        return {
            "params": dict(self.params),
            "stderr": dict(self.stderr),
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "interval_level": self.interval_level,
            "interval_method": self.interval_method,
            "derived": dict(self.derived),
            "derived_intervals": {k: list(v) for k, v in self.derived_intervals.items()},
            "preset": self.preset,
            "source": self.source,
            "fitted_range": {c: list(v) for c, v in (self.fitted_range or {}).items()} or None,
            "n_samples": self.n_samples,
            "objective": self.objective,
            "goodness_of_fit": self.goodness_of_fit,
            "fit_info": self.fit_info,
            "data_hash": self.data_hash,
            "quality": self.quality,
            "calibration": self.calibration,
            "cov_theta": None if self.cov_theta is None else np.asarray(self.cov_theta).tolist(),
            "residuals": None if self.residuals is None else [float(r) for r in self.residuals],
            "bootstrap_params": (None if self.bootstrap_params is None
                                 else np.asarray(self.bootstrap_params).tolist()),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], param_names: tuple[str, ...] | None = None,
                  interval_level: float | None = None) -> FitResult:
        """Read :meth:`to_dict` output, or a whole saved fit (``law.save`` / ``scalelab fit --out``; files
        written before the result was typed load the same way). JSON nulls in numbers come back as NaN.

        ``param_names`` orders (and selects) the parameters; ``interval_level`` is used when ``d`` has none.
        """
        names = tuple(param_names) if param_names is not None else tuple(d["params"])
        fr = d.get("fitted_range")
        bp = d.get("bootstrap_params")
        level = d.get("interval_level")
        return cls(
            params={k: float(d["params"][k]) for k in names},
            stderr={k: (math.nan if v is None else float(v)) for k, v in (d.get("stderr") or {}).items()},
            intervals={k: tuple(math.nan if x is None else x for x in v)
                       for k, v in (d.get("intervals") or {}).items()},
            interval_level=float(level) if level is not None else interval_level,
            interval_method=d.get("interval_method"),
            derived={k: (math.nan if v is None else float(v)) for k, v in (d.get("derived") or {}).items()},
            derived_intervals={k: tuple(v) for k, v in (d.get("derived_intervals") or {}).items()},
            cov_theta=None if d.get("cov_theta") is None else np.asarray(d["cov_theta"], dtype=float),
            bootstrap_params=None if bp is None else np.asarray(bp, dtype=float).reshape(-1, len(names)),
            residuals=None if d.get("residuals") is None else np.asarray(d["residuals"], dtype=float),
            goodness_of_fit=d.get("goodness_of_fit"),
            quality=d.get("quality"),
            calibration=d.get("calibration"),
            objective=d.get("objective"),
            n_samples=d.get("n_samples"),
            fitted_range={c: tuple(v) for c, v in fr.items()} if fr else None,
            data_hash=d.get("data_hash"),
            fit_info=d.get("fit_info"),
            preset=d.get("preset") or None,
            source=d.get("source") if d.get("preset") else None,
        )

    # ------------------------------------------------------------------ text
    def report(self) -> str:
        """Parameters with intervals, derived quantities, goodness of fit, fitted range, warnings, quality."""
        return "\n".join(self._report_lines())

    def _report_lines(self) -> list[str]:
        lvl = "" if self.interval_level is None else f"{round(100 * self.interval_level)}% "
        method = self.interval_method
        lines = [f"  {'param':<10}{'value':>14}{'std err':>12}   {lvl}interval" + (f" ({method})" if method else "")]
        for n, v in self.params.items():
            i = self.intervals.get(n)
            lines.append(f"  {n:<10}{v:>14.6g}{_g(self.stderr.get(n)):>12}   "
                         + (f"[{_g(i[0])}, {_g(i[1])}]" if i else "-"))
        if self.derived:
            lines.append("  derived:")
            for k, v in self.derived.items():
                i = self.derived_intervals.get(k)
                lines.append(f"  {k:<10}{v:>14.6g}{'':>12}   " + (f"[{_g(i[0])}, {_g(i[1])}]" if i else "-"))
        if self.goodness_of_fit:
            lines.append("  goodness of fit: " + ", ".join(f"{k}={_g(v)}" for k, v in self.goodness_of_fit.items()))
        if self.fitted_range:
            lines.append(f"  fitted range: {fmt_range(self.fitted_range)}")
        for note in (self.fit_info or {}).get("warnings", []):
            lines.append(f"  warning: {note}")
        if self.quality:
            q = self.quality
            issues = "" if not q["issues"] else " (" + "; ".join(q["issues"]) + ")"
            lines.append(f"  quality: {q['verdict']}{issues}")
        return lines


def data_hash(X: tuple[np.ndarray, ...], y: np.ndarray, w: np.ndarray | None) -> str:
    """The 16-hex-digit SHA-256 of the fitted runs (covariates, target, weights) as floats."""
    h = hashlib.sha256()
    for a in (*X, y) + ((w,) if w is not None else ()):
        h.update(np.ascontiguousarray(a, dtype=float).tobytes())
    return h.hexdigest()[:16]


def _g(v: Any) -> str:
    if v is None:
        return "-"
    try:
        fv = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "nan" if not math.isfinite(fv) else f"{fv:.4g}"


def fmt_range(rng: Mapping[str, tuple[float, ...]] | None) -> str:
    """``"N in [1e+07, 1e+10], D in [...]"``."""
    if not rng:
        return "unknown"
    return ", ".join(f"{c} in [{lo:.3g}, {hi:.3g}]" for c, (lo, hi) in rng.items())
