"""Calibrated new-run bands: widen the band by the law's own backtested extrapolation errors.

A band built from parameter noise and the scatter of the fitted runs (``kind="noise"``) is right only
when the law is exactly right and the forecast lies among the runs. Real runs do not follow any law
exactly, and forecasts are extrapolations, so that band covered 78% of larger runs pooled over the public
tables at a nominal 95% (74% on the families held out while this method was chosen, 20-27% on Step Law and
SLD's MoE runs; ``benchmarks/forecast_backtest.py``, docs/laws.md).

The calibrated band (``kind="new"``, the default for a new run) adds what the user's own runs say about
extrapolation, in the manner of split conformal prediction (Vovk et al. 2005; Lei et al. 2018), with
scores normalised by distance:

1. Rolling backtest on the fitted runs: for each of the last :data:`N_STEPS` levels of the size axis
   (``N``, else the first covariate), refit on the runs below it and forecast the runs at that level.
2. Score each forecast by ``|log(y / y_hat)| / g(r)``, with ``r`` the forecast's extrapolation factor
   (largest ratio to the fitted range over the covariates and compute ``6 N D``) and
   ``g(r) = log(1 + r)``: the error is assumed to grow with log-distance from the data, as the
   backtests show it does.
3. Take the conformal quantile ``q`` of the scores (the ``ceil((n + 1) level) / n`` empirical quantile).
4. At a new point with extrapolation ``r``, the band is the union of the noise band and
   ``y_hat exp(+- q g(r))``.

The scores are computed once per fit (a few coarse refits) and kept in ``law.calibration_``; a saved fit
keeps them. With too few size levels to backtest (fewer than 3 below the last level) the band falls back
to the noise band and says so in ``calibration_["method"]``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..errors import ScalelabError

__all__ = ["N_STEPS", "calibrate", "distance_scale", "new_run_interval"]

#: Rolling one-step-ahead backtests on the user's runs (the last levels of the size axis).
N_STEPS = 3


def distance_scale(r: Any) -> np.ndarray:
    """``g(r) = log(1 + r)``: how the calibrated half-width grows with the extrapolation factor ``r >= 1``."""
    return np.log1p(np.maximum(np.asarray(r, dtype=float), 1.0))


def _axis(law: Any, X: tuple[np.ndarray, ...]) -> np.ndarray:
    cov = tuple(law.covariates)
    return X[cov.index("N")] if "N" in cov else X[0]


def calibrate(law: Any) -> dict[str, Any]:
    """Backtest ``law`` on its own runs (rolling, one level ahead) and store the scores in
    ``law.result_`` (read as ``law.calibration_``): ``{"method", "scores", "n_steps"}``."""
    from .backtest import _levels

    data = getattr(law, "_fit_data", None)
    out: dict[str, Any] = {"method": "noise band only (no fitted runs to backtest)", "scores": [], "n_steps": 0}
    if data is None:
        law.result_ = law.result_.replace(calibration=out)
        return out
    X, y, w = data
    lev = _levels(_axis(law, X))
    top = int(lev.max())
    scores: list[float] = []
    steps = 0
    for k in range(max(1, top - N_STEPS + 1), top + 1):
        train, test = lev < k, lev == k
        if np.unique(lev[train]).size < 3:
            continue
        sub = type(law)(**{**law.get_params(), "n_bootstrap": 0, "init": _quick_init(law, X, y)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                sub.fit(*(a[train] for a in X), y[train], sample_weight=None if w is None else w[train],
                        duplicates="keep")
                Xt = tuple(a[test] for a in X)
                pred = np.asarray(sub.predict(*Xt), dtype=float)
                r = np.asarray(sub.extrapolation(*Xt), dtype=float)
            except ScalelabError:
                continue
        ok = np.isfinite(pred) & (pred > 0) & np.isfinite(r)
        scores += (np.abs(np.log(y[test][ok] / pred[ok])) / distance_scale(r[ok])).tolist()
        steps += 1
    if scores:
        out = {"method": f"calibrated: noise band joined with conformal extrapolation errors from {steps} "
                         f"rolling backtest(s) on the fitted runs ({len(scores)} forecasts), half-width "
                         "q log(1 + r) in log-loss at extrapolation factor r",
               "scores": sorted(scores), "n_steps": steps}
    else:
        out["method"] = "noise band only (too few size levels to backtest the fit on its own runs)"
    law.result_ = law.result_.replace(calibration=out)
    return out


#: At most this many starts per backtest refit (every k-th row of the law's coarse grid).
MAX_STARTS = 64


def _quick_init(law: Any, X: tuple[np.ndarray, ...], y: np.ndarray) -> Any:
    """Starts for the backtest refits: the law's coarse grid thinned to :data:`MAX_STARTS` rows (a law with
    its own ``fit``, e.g. Muennighoff's two stages, gets ``"coarse"``), or the user's own starts."""
    from .base import ScalingLaw

    if not isinstance(law.init, str):
        return law.init
    if type(law).fit is not ScalingLaw.fit:
        return "coarse"
    grid = np.asarray(type(law)._coarse_grid(X, y), dtype=float)
    return grid[:: max(1, math.ceil(grid.shape[0] / MAX_STARTS))]


def conformal_quantile(scores: Any, level: float) -> float:
    """The ``ceil((n + 1) level) / n`` empirical quantile (the largest score when that exceeds 1)."""
    s = np.sort(np.asarray(scores, dtype=float))
    n = s.size
    if n == 0:
        return math.nan
    k = min(n, math.ceil((n + 1) * float(level)))
    return float(s[k - 1])


def new_run_interval(law: Any, X: tuple[np.ndarray, ...], level: float) -> tuple[np.ndarray, np.ndarray]:
    """The calibrated new-run band at ``X``: the noise band joined with ``y_hat exp(+- q g(r))``."""
    from . import uncertainty

    cal = getattr(law, "calibration_", None)
    if cal is None:
        cal = calibrate(law)
    theta = law._to_theta(law.params_)
    pred = np.exp(law._log_model(theta, X, jac=False)[0][0])
    try:
        lo, hi = uncertainty.prediction_interval(law, X, level, "new")
    except ScalelabError:
        if not cal["scores"]:
            raise
        lo, hi = pred.copy(), pred.copy()   # no parameter covariance: the calibrated part alone
    if not cal["scores"]:
        return lo, hi
    q = conformal_quantile(cal["scores"], level)
    r = law._extrapolation(X)
    hw = q * distance_scale(np.where(np.isfinite(r), r, 1.0))
    return np.minimum(lo, pred * np.exp(-hw)), np.maximum(hi, pred * np.exp(hw))
