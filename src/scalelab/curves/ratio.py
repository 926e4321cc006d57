"""The simplest cross-run forecast: a run's remaining fall is the one completed runs showed.

For a run seen up to fraction ``p`` of its schedule, each completed reference run gives the log-ratio
``log L_ref(q) - log L_ref(p)`` of its loss at the target fraction ``q`` to its loss at ``p``; the forecast
applies their median to the run's last loss, and the band spans their ``level`` quantiles. This is the
"ratio of final to partway loss, taken from other runs" baseline of issue 11, and, unlike
:class:`~scalelab.curves.CrossRunForecaster`, it works from a single reference run (a sweep's first
completed run). With ``n`` references the range ``[min, max]`` of their ratios holds a new exchangeable
run's with probability ``(n - 1) / (n + 1)``; when that is below ``level`` the band is that range and
:attr:`Forecast.method` says how many runs it rests on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError, explain
from .forecast import (
    MIN_POINTS,
    Forecast,
    _interp_log,
    check_curve,
    completed_curves,
    reference_forecast_inputs,
)

__all__ = ["RatioForecaster", "loglog_floor"]


class RatioForecaster:
    """Forecast from the final-to-partway loss ratios of completed runs (one is enough).

    >>> t = np.arange(1, 11) * 10.0
    >>> ref = (t, 2 + 2 * (t / 10) ** -0.5, 100)
    >>> fc = RatioForecaster().fit([ref]).forecast(t[:5], 2 + 2 * (t[:5] / 10) ** -0.5, 100)
    >>> round(float(fc.loss[-1]), 4) == round(2 + 2 * 10 ** -0.5, 4)
    True
    """

    def __init__(self, *, level: float = 0.95):
        self.level = level

    def fit(self, curves: Any) -> RatioForecaster:
        """``curves``: completed runs, each ``(steps, losses, total_steps)``, observed to ``total_steps``."""
        refs = completed_curves(curves)
        if not refs:
            raise DataError(explain("no reference runs", value=0, allowed="at least one completed run",
                                    fix="wait for a run of the sweep to complete"))
        self.references_ = refs
        return self

    def forecast(self, steps: Any, losses: Any, total_steps: int, at: Any = None) -> Forecast:
        """Loss at ``total_steps`` (and at the steps in ``at``) with the band of the references' ratios."""
        level, t, L, p, targets = reference_forecast_inputs(self, steps, losses, total_steps, at)
        R = np.array([[_interp_log(rt, rL, q / total_steps * rT) - _interp_log(rt, rL, p * rT) for q in targets]
                      for rt, rL, rT in self.references_ if rt[0] <= p * rT and rt.size >= MIN_POINTS])
        if R.size == 0:
            raise DataError(explain("no reference run was evaluated as early as this run's last step",
                                    value=float(p), fix="evaluate the reference runs earlier, or observe more steps"))
        n = R.shape[0]
        a = (1 - level) / 2
        lo, hi = np.quantile(R, [a, 1 - a], axis=0, method="inverted_cdf") if (n - 1) / (n + 1) >= level else (
            R.min(axis=0), R.max(axis=0))
        base = np.log(L[-1])
        mid = np.median(R, axis=0)
        return Forecast(steps=targets, loss=np.exp(base + mid), loss_lo=np.exp(base + lo), loss_hi=np.exp(base + hi),
                        level=level, method=f"final-to-partway ratio ({n} runs)", observed_steps=int(t[-1]),
                        total_steps=int(total_steps))


def loglog_floor(steps: Any, losses: Any, total_steps: int) -> float:
    """An optimistic end for a run's loss at ``total_steps``: its recent log-log slope carried to the end.

    The slope is fitted over the second half of the points seen (at most 0: a rising curve is held flat).
    For ``L = E + A t^-alpha`` with ``E >= 0`` the log-log slope only flattens with ``t``, so carrying
    today's slope to the end overestimates the remaining fall; an LR decay's extra fall is what it misses.
    """
    t, L = check_curve(steps, losses, total_steps)
    h = max(2, t.size // 2)
    slope = min(0.0, float(np.polyfit(np.log(t[-h:]), np.log(L[-h:]), 1)[0]))
    return float(L[-1] * np.exp(slope * np.log(total_steps / t[-1])))
