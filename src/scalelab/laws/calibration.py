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
   (:func:`band_distance`: largest ratio to the fitted range over the covariates, compute ``6 N D``, and
   every product and ratio of two covariates, such as tokens per parameter ``D / N``) and
   ``g(r) = log(1 + r)``: the error is assumed to grow with log-distance from the data, as the
   backtests show it does.
3. Take the conformal quantile ``q_own`` of the scores (the ``ceil((n + 1) level) / n`` empirical quantile)
   and pool it with the prior's ``q_prior`` (:data:`PRIOR_QUANTILES`, below) in log, weighted by the number
   of backtest steps ``m`` against :data:`PRIOR_WEIGHT`:
   ``log q = (m log q_own + w log q_prior) / (m + w)``.
4. At a new point with extrapolation ``r``, the band is ``y_hat exp(+- q g(r))``.

Why pool (step 3): the forecasts of one backtest step share one refit, so they are one draw of how far a fit
of these runs extrapolates wrong, not ``n`` independent ones; a data set has at most :data:`N_STEPS` such
draws, too few to set a 95% quantile alone (SLD's MoE runs: one step of 9 forecasts gave ``q = 0.0069``
and the band covered 1 of the next 20 runs). The prior, the same scores on other public data sets, counts
as one step. Why products and ratios (step 2): a forecast can lie inside the range of each covariate and
still outside the runs jointly; on Epoch's points fitted below 1e9 parameters, the worst misses were at
0.5 tokens per parameter where the fitted runs had 2.3 or more.

The scores are computed once per fit (a few coarse refits) and kept in ``law.calibration_`` with the joint
ranges the distance needs; a saved fit keeps them. With too few size levels to backtest (fewer than 3
below the last level: Step Law's five model sizes, the first split of SLD's MoE runs) ``q`` is the prior's
alone, :data:`PRIOR_QUANTILES`: the same scores from the rolling backtests of other public data sets
(``benchmarks/calibration_prior.py``), and ``calibration_["source"]`` says ``"prior"``.

Chosen by the scoreboard's calibration half (``benchmarks/forecast_backtest.py``, docs/laws.md): an earlier
version joined this band with the noise band; the union covered no more runs on any family and its mean
interval score was 7.4 against 1.27 for this band alone (the noise band of a fit the runs do not identify
spans orders of magnitude), so the noise band is no longer part of it.
Pooling with the prior and the joint distance were chosen the same way: on the calibration half the mean
interval score went from 1.270 to 1.035 (coverage 93.8% to 94.6%); on the held-out half coverage went
from 92.2% to 100% (SLD's MoE runs from 67.8%) and the score from 0.390 to 0.377 (docs/laws.md). The prior
was then remade from fits with copied rows dropped and replicates kept, as the scoreboard fits them
(calibration half 1.026 -> 1.016, coverage 94.6% -> 94.1%).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..errors import ScalelabError

__all__ = ["N_STEPS", "PRIOR_QUANTILES", "PRIOR_WEIGHT", "band_distance", "calibrate", "distance_scale",
           "fitted_joint_ranges", "joint_extrapolation", "joint_ranges", "new_run_interval", "own_scores",
           "pooled_quantile", "prior_quantile"]

#: Rolling one-step-ahead backtests on the user's runs (the last levels of the size axis).
N_STEPS = 3


def distance_scale(r: Any) -> np.ndarray:
    """``g(r) = log(1 + r)``: how the calibrated half-width grows with the extrapolation factor ``r >= 1``."""
    return np.log1p(np.maximum(np.asarray(r, dtype=float), 1.0))


def joint_ranges(covariates: tuple[str, ...], X: tuple[np.ndarray, ...]) -> list[list[Any]]:
    """``[a, op, b, lo, hi]`` for every product (``op "*"``) and ratio (``"/"``) of two covariates that are
    positive on every run: the fitted runs' range of ``a * b`` and ``b / a``, which with the covariates'
    own ranges bound the runs in log space by an octagon rather than a box."""
    pos = [(c, np.asarray(a, dtype=float)) for c, a in zip(covariates, X, strict=True)
           if np.size(a) and np.all(np.asarray(a, dtype=float) > 0)]
    out: list[list[Any]] = []
    for i, (ca, a) in enumerate(pos):
        for cb, b in pos[i + 1:]:
            for op, v in (("*", a * b), ("/", b / a)):
                out.append([ca, op, cb, float(v.min()), float(v.max())])
    return out


def joint_extrapolation(law: Any, X: tuple[np.ndarray, ...],
                        joint: list[list[Any]] | None) -> tuple[np.ndarray, str | None]:
    """How far each point lies outside the fitted runs' range of each product and ratio of two covariates
    (``joint`` from :func:`joint_ranges`; 1.0 inside): the per-point factor, and the worst combination
    as ``"D/N 30x outside [1.2, 40]"`` (``None`` when no point lies outside)."""
    cov = tuple(law.covariates)
    r = np.ones(np.broadcast_shapes(*[np.shape(a) for a in X]) if X else ())
    worst, label = 1.0, None
    for ca, op, cb, lo, hi in joint or ():
        if ca not in cov or cb not in cov:
            continue
        a, b = (np.asarray(X[cov.index(c)], dtype=float) for c in (ca, cb))
        with np.errstate(divide="ignore", invalid="ignore"):
            v = a * b if op == "*" else b / a
            ratio = np.where(v > hi, v / hi, np.where(v < lo, lo / v, 1.0))
        ratio = np.where(np.isfinite(ratio) & (v > 0), ratio, 1.0)
        r = np.fmax(r, ratio)
        if ratio.size and float(np.max(ratio)) > worst:
            worst = float(np.max(ratio))
            name = f"{ca}*{cb}" if op == "*" else f"{cb}/{ca}"
            label = f"{name} {worst:.3g}x outside [{lo:.3g}, {hi:.3g}]"
    return r, label


def fitted_joint_ranges(law: Any) -> list[list[Any]] | None:
    """The fit's joint ranges: saved with its calibration, else computed from its runs (``None`` for a
    preset without runs)."""
    cal = getattr(law, "calibration_", None)
    if cal and cal.get("joint_range") is not None:
        return cal["joint_range"]
    data = getattr(law, "_fit_data", None)
    return joint_ranges(tuple(law.covariates), data[0]) if data is not None else None


def band_distance(law: Any, X: tuple[np.ndarray, ...], joint: list[list[Any]] | None) -> np.ndarray:
    """The band's extrapolation factor: the law's own (each covariate, compute) and, with ``joint`` from
    :func:`joint_ranges`, the largest ratio of each product or ratio of two covariates to its fitted range."""
    r = np.asarray(law._extrapolation(X), dtype=float)
    return np.fmax(r, joint_extrapolation(law, X, joint)[0])


def _axis(law: Any, X: tuple[np.ndarray, ...]) -> np.ndarray:
    cov = tuple(law.covariates)
    return X[cov.index("N")] if "N" in cov else X[0]


def own_scores(law: Any) -> tuple[list[float], int]:
    """Rolling one-level-ahead backtest of ``law`` on its own runs: (normalised scores, steps that ran)."""
    from .backtest import _levels, level_splits

    X, y, w = law._fit_data
    lev = _levels(_axis(law, X))
    scores: list[float] = []
    steps = 0
    init = None
    for train, test in level_splits(lev, "rolling", N_STEPS):
        if np.unique(lev[train]).size < 3:
            continue
        if init is None:
            init = _quick_init(law, X, y)
        sub = type(law)(**{**law.get_params(), "n_bootstrap": 0, "init": init})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                sub.fit(*(a[train] for a in X), y[train], sample_weight=None if w is None else w[train],
                        duplicates="keep")
                Xt = tuple(a[test] for a in X)
                pred = np.asarray(sub.predict(*Xt), dtype=float)
                r = band_distance(sub, Xt, joint_ranges(tuple(law.covariates), tuple(a[train] for a in X)))
            except ScalelabError:
                continue
        ok = np.isfinite(pred) & (pred > 0) & np.isfinite(r)
        scores += (np.abs(np.log(y[test][ok] / pred[ok])) / distance_scale(r[ok])).tolist()
        steps += 1
    return scores, steps


def calibrate(law: Any) -> dict[str, Any]:
    """Backtest ``law`` on its own runs (rolling, one level ahead) and store the scores in
    ``law.result_`` (read as ``law.calibration_``): ``{"method", "scores", "n_steps", "source"}``, with
    ``source`` ``"own"`` (the runs' own backtests), ``"prior"`` (too few sizes: :data:`PRIOR_QUANTILES`)
    or ``"none"`` (no fitted runs: the noise band alone)."""
    out: dict[str, Any] = {"method": "noise band only (no fitted runs to backtest)", "scores": [], "n_steps": 0,
                           "source": "none"}
    if getattr(law, "_fit_data", None) is None:
        law.result_ = law.result_.replace(calibration=out)
        return out
    scores, steps = own_scores(law)
    joint = joint_ranges(tuple(law.covariates), law._fit_data[0])
    if scores:
        out = {"method": f"calibrated: conformal extrapolation errors from {steps} "
                         f"rolling backtest(s) on the fitted runs ({len(scores)} forecasts), pooled in log with "
                         f"other public data sets' (weight {steps} to {PRIOR_WEIGHT:g}), half-width "
                         "q log(1 + r) in log-loss at extrapolation factor r",
               "scores": sorted(scores), "n_steps": steps, "source": "own", "joint_range": joint}
    else:
        out = {"method": "calibrated by a prior: too few size levels to backtest the fit on its own runs, so "
                         "the half-width q log(1 + r) takes q from the extrapolation errors of other public "
                         f"data sets ({PRIOR_SOURCE})",
               "scores": [], "n_steps": 0, "source": "prior", "joint_range": joint}
    law.result_ = law.result_.replace(calibration=out)
    return out


#: Fallback for runs too few to backtest: quantiles (level, q) of the normalised rolling-backtest scores
#: ``|log(y / y_hat)| / log(1 + r)`` pooled over the scoreboard's calibration-half families that can be
#: backtested on their own runs, each family weighted equally (``python benchmarks/calibration_prior.py``;
#: remade with Chinchilla's prior on the exponents, which moved the 0.8-0.975 entries by at most 0.0075).
PRIOR_QUANTILES: tuple[tuple[float, float], ...] = (
    (0.5, 0.01311), (0.6, 0.01844), (0.7, 0.02711), (0.8, 0.05150), (0.9, 0.16170), (0.95, 0.26934),
    (0.975, 0.35717), (0.99, 0.83361))
PRIOR_SOURCE = "rolling backtests of Epoch's Chinchilla points, Porian's 10 settings and datablations"


#: The prior's weight, in backtest steps, when it is pooled with a fit's own backtests (at most
#: :data:`N_STEPS`): one step, since the other data sets' runs say less about these runs than their own.
PRIOR_WEIGHT = 1.0


def pooled_quantile(cal: dict[str, Any], level: float) -> float:
    """``q`` of a fit's own backtests pooled with the prior: ``exp((m log q_own + w log q_prior) / (m + w))``,
    ``m`` the backtest steps that ran, ``w`` :data:`PRIOR_WEIGHT` (the prior alone when ``m`` is 0)."""
    q_prior = prior_quantile(level)
    m = int(cal.get("n_steps") or 0)
    if m <= 0 or not cal.get("scores"):
        return q_prior
    q_own = max(conformal_quantile(cal["scores"], level), 1e-12)
    return float(np.exp((m * math.log(q_own) + PRIOR_WEIGHT * math.log(q_prior)) / (m + PRIOR_WEIGHT)))


def prior_quantile(level: float) -> float:
    """q at ``level`` from :data:`PRIOR_QUANTILES` (linear between the tabulated levels, clamped outside)."""
    lv, q = zip(*PRIOR_QUANTILES, strict=True)
    return float(np.interp(float(level), lv, q))


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
    """The calibrated new-run band at ``X``: ``y_hat exp(+- q g(r))``, ``q`` from the fit's own backtests pooled
    with :data:`PRIOR_QUANTILES` (:func:`pooled_quantile`) or, when its runs are too few to backtest, from the
    prior alone; ``r`` from :func:`band_distance`; a fit with no runs behind it (a
    preset) has the noise band alone."""
    from . import uncertainty

    cal = getattr(law, "calibration_", None)
    if cal is None:
        cal = calibrate(law)
    source = cal.get("source", "own" if cal["scores"] else "none")
    if source == "none":
        return uncertainty.prediction_interval(law, X, level, "new")
    q = pooled_quantile(cal, level) if source == "own" else prior_quantile(level)
    pred = np.exp(law._log_model(law._to_theta(law.params_), X, jac=False)[0][0])
    r = band_distance(law, X, cal.get("joint_range"))
    hw = q * distance_scale(np.where(np.isfinite(r), r, 1.0))
    return pred * np.exp(-hw), pred * np.exp(hw)
