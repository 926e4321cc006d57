"""Forecast a training run's loss at a later step from the part of its learning curve seen so far.

Two forecasters, one result type:

* :class:`CrossRunForecaster` learns the curve's shape from completed runs (of other sizes, other
  learning rates). For a run seen up to fraction ``p`` of its schedule it regresses, over the reference
  runs cut at the same ``p``, ``log(L(q) / L(p))`` on the shape of the prefix (``log p``, its square, the
  prefix's log-log slope over its second half, their product, ``log L(p)``, the fall over the last halving
  of steps), and takes the band from the
  reference residuals' quantiles. Its simplest case, only an intercept, is the ratio-of-final-to-partway
  baseline of issue 11; the slope term is what lets it tell a run still falling fast from one that is
  flattening.
* :class:`PrefixForecaster` needs no reference: it fits ``L = E + A x^-alpha`` to the prefix, where ``x``
  is the step or, given an LR schedule, the schedule's cumulative learning rate (the "forward area" S1
  of Tissue et al. 2024, "Scaling Law with Learning Rate Annealing", eq. 1, without its annealing term,
  which a prefix before the decay cannot identify), with a residual bootstrap band.

Steps are optimizer steps; losses are in nats; ``total_steps`` is the planned length of the schedule.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from .._checks import check_level
from ..errors import ConfigError, ConvergenceWarning, DataError, explain
from .schedule import cumulative_lr

__all__ = ["MIN_POINTS", "CrossRunForecaster", "Forecast", "PrefixForecaster", "check_curve", "forecast_steps"]

MIN_POINTS = 3


@dataclass(frozen=True)
class Forecast:
    """Forecast losses (and band) at ``steps``; ``method`` says which forecaster made it."""

    steps: np.ndarray
    loss: np.ndarray
    loss_lo: np.ndarray
    loss_hi: np.ndarray
    level: float
    method: str
    observed_steps: int
    total_steps: int

    def to_dict(self) -> dict[str, Any]:
        last = {"step": int(self.steps[-1]), "loss": float(self.loss[-1]), "loss_lo": float(self.loss_lo[-1]),
                "loss_hi": float(self.loss_hi[-1])}
        return {**last, "level": self.level, "method": self.method, "observed_steps": self.observed_steps,
                "total_steps": self.total_steps,
                "at": [{"step": int(s), "loss": float(m), "loss_lo": float(lo), "loss_hi": float(hi)}
                       for s, m, lo, hi in zip(self.steps, self.loss, self.loss_lo, self.loss_hi, strict=True)]}

    def report(self) -> str:
        lines = [f"Forecast ({self.method}, {self.level:.0%} band) from steps <= {self.observed_steps:,} "
                 f"of {self.total_steps:,}:"]
        lines += [f"  step {int(s):>10,}: {m:.4f}  [{lo:.4f}, {hi:.4f}]"
                  for s, m, lo, hi in zip(self.steps, self.loss, self.loss_lo, self.loss_hi, strict=True)]
        return "\n".join(lines)


def completed_curves(curves: Any) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Reference runs ``(steps, losses, total_steps)``, each checked and observed up to its ``total_steps``."""
    refs = []
    for i, (t, L, T) in enumerate(curves):
        t, L = check_curve(t, L, int(T))
        if t[-1] < T:
            raise DataError(explain(f"reference curve {i} stops before its total_steps", value=(int(t[-1]), T),
                                    fix="pass completed runs only (their last step = total_steps)"))
        refs.append((t, L, float(T)))
    return refs


def forecast_steps(at: Any, total_steps: int) -> np.ndarray:
    """The steps a forecast reports: those in ``at`` and ``total_steps``, sorted, each once."""
    steps = np.append(np.asarray([] if at is None else at, dtype=float), total_steps)
    bad = steps[~(np.isfinite(steps) & (steps > 0))]
    if bad.size:  # step 0 was forecast as a loss of inf with a band of nan
        raise ConfigError(explain("forecast steps must be positive", value=bad[:5].tolist(), allowed="steps >= 1",
                                  fix="drop --at 0 (the loss before training is not a curve point)"))
    return np.unique(steps)


def reference_forecast_inputs(forecaster: Any, steps: Any, losses: Any, total_steps: int,
                              at: Any) -> tuple[float, np.ndarray, np.ndarray, float, np.ndarray]:
    """What a forecaster fitted on reference runs starts from: its checked level, the checked curve
    ``(t, L)``, the fraction ``p`` of the run observed and the steps to report (:func:`forecast_steps`).
    Raises ``NotFittedError`` when ``fit(curves)`` has not been called."""
    level = check_level(forecaster.level)
    if not hasattr(forecaster, "references_"):
        from ..errors import NotFittedError

        raise NotFittedError(explain(f"this {type(forecaster).__name__} has no reference runs",
                                     fix="call fit(curves) with completed runs first"))
    t, L = check_curve(steps, losses, total_steps)
    return level, t, L, float(t[-1] / total_steps), forecast_steps(at, total_steps)


def check_curve(steps: Any, losses: Any, total_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, de-duplicated, validated ``(steps, losses)`` of one curve."""
    t, L = np.asarray(steps, dtype=float).ravel(), np.asarray(losses, dtype=float).ravel()
    if t.shape != L.shape:
        raise DataError(explain("steps and losses differ in length", value=(t.size, L.size),
                                fix="give one loss per step"))
    ok = np.isfinite(t) & np.isfinite(L)
    t, L = t[ok], L[ok]
    if np.any(t <= 0) or np.any(L <= 0):
        raise DataError(explain("steps and losses must be > 0", value=float(min(t.min(initial=1), L.min(initial=1))),
                                fix="drop step 0 and non-positive losses"))
    order = np.argsort(t, kind="stable")
    t, L = t[order], L[order]
    keep = np.concatenate([t[1:] != t[:-1], [True]])  # the last loss logged at a repeated step wins
    t, L = t[keep], L[keep]
    if t.size < MIN_POINTS:
        raise DataError(explain("too few points to forecast from", value=int(t.size),
                                allowed=f"at least {MIN_POINTS} distinct steps", fix="wait for more checkpoints"))
    if total_steps < t[-1]:
        raise ConfigError(explain("total_steps is before the last observed step", value=total_steps,
                                  allowed=f">= {int(t[-1])}", fix="pass the planned length of the run"))
    return t, L


def _shape_features(t: np.ndarray, L: np.ndarray, total_steps: float) -> np.ndarray:
    """Features of a prefix: 1, log p, (log p)^2, slope, slope * log p, log L(p), and the log fall of the
    loss over the last halving of steps, ``log L(p) - log L(p / 2)`` (added in issue 11's second round:
    chosen on the calibration runs, where it brought the 25% median error from 1.39% to 1.14%)."""
    lp = np.log(t[-1] / total_steps)
    h = max(2, t.size // 2)
    slope = np.polyfit(np.log(t[-h:]), np.log(L[-h:]), 1)[0]
    drop = np.log(L[-1]) - np.interp(np.log(t[-1] / 2), np.log(t), np.log(L))
    return np.array([1.0, lp, lp * lp, slope, slope * lp, np.log(L[-1]), drop])


def _interp_log(t: np.ndarray, L: np.ndarray, at: float) -> float:
    """log L at step ``at``, linear in log-step between checkpoints (ends held)."""
    return float(np.interp(np.log(at), np.log(t), np.log(L)))


class CrossRunForecaster:
    """Learn the shape of learning curves from completed runs; forecast a new run from its prefix.

    Parameters
    ----------
    level : coverage of the band (e.g. 0.95).
    min_references : fewest reference runs reaching the needed fractions for a forecast.

    Examples
    --------
    >>> t = np.arange(1, 11) * 100.0
    >>> refs = [(t, 2 + a * (t / 100) ** -0.5, 1000) for a in np.linspace(1, 3, 12)]
    >>> f = CrossRunForecaster(min_references=5).fit(refs)
    >>> fc = f.forecast(t[:5], 2 + 2 * (t[:5] / 100) ** -0.5, total_steps=1000)
    >>> bool(abs(fc.loss[-1] - (2 + 2 * 10 ** -0.5)) < 0.02)
    True
    """

    def __init__(self, *, level: float = 0.95, min_references: int = 8):
        self.level = level
        self.min_references = min_references

    def fit(self, curves: Any) -> CrossRunForecaster:
        """``curves``: completed runs, each ``(steps, losses, total_steps)``, observed to ``total_steps``."""
        refs = completed_curves(curves)
        if len(refs) < self.min_references:
            raise DataError(explain("too few reference runs", value=len(refs),
                                    allowed=f"at least min_references={self.min_references}",
                                    fix="add completed runs, or lower min_references"))
        self.references_ = refs
        return self

    def forecast(self, steps: Any, losses: Any, total_steps: int, at: Any = None) -> Forecast:
        """Loss at ``total_steps`` (and at the steps in ``at``) with the ``level`` band."""
        _, t, L, p, targets = reference_forecast_inputs(self, steps, losses, total_steps, at)
        x = _shape_features(t, L, total_steps)
        X, Y = [], []
        for rt, rL, rT in self.references_:
            m = rt <= p * rT * (1 + 1e-9)
            if m.sum() < MIN_POINTS:
                continue
            ct, cL = rt[m], rL[m]
            # Cut at the same fraction, on the reference's own checkpoints, then interpolate the loss at p.
            ct = np.append(ct[ct < p * rT], p * rT)
            cL = np.append(cL[: ct.size - 1], np.exp(_interp_log(rt, rL, p * rT)))
            X.append(_shape_features(ct, cL, rT))
            Y.append([_interp_log(rt, rL, q / total_steps * rT) - np.log(cL[-1]) for q in targets])
        if len(X) < self.min_references:
            raise DataError(explain("too few reference runs reach this fraction with enough points", value=len(X),
                                    allowed=f"at least {self.min_references}",
                                    fix="add reference runs with denser early checkpoints, or observe more steps"))
        A, Yr = np.array(X), np.array(Y)
        coef = np.linalg.lstsq(A, Yr, rcond=None)[0]
        # Leave-one-out residuals (r / (1 - h), h the leverage): in-sample residuals of a 6-feature fit on
        # a few dozen runs are optimistic and gave bands that under-covered.
        lev = np.einsum("ij,ji->i", A, np.linalg.pinv(A.T @ A) @ A.T)
        resid = (Yr - A @ coef) / np.maximum(1 - lev, 1e-3)[:, None]
        a = (1 - self.level) / 2
        q_lo, q_hi = np.quantile(resid, [a, 1 - a], axis=0)
        mid = x @ coef
        base = np.log(L[-1])
        return Forecast(steps=targets, loss=np.exp(base + mid), loss_lo=np.exp(base + mid + q_lo),
                        loss_hi=np.exp(base + mid + q_hi), level=self.level, method=f"cross-run ({len(X)} runs)",
                        observed_steps=int(t[-1]), total_steps=int(total_steps))


class PrefixForecaster:
    """Fit ``L = E + A x^-alpha`` to the prefix alone; ``x`` is the step, or the schedule's cumulative LR.

    Parameters
    ----------
    schedule : None (x = step) or "constant", "cosine", "wsd" (x = cumulative LR of that schedule).
    warmup_steps, decay_fraction : schedule shape (see :func:`scalelab.curves.cumulative_lr`).
    level, n_bootstrap, random_state : the residual-bootstrap band.
    """

    def __init__(self, *, schedule: str | None = None, warmup_steps: int = 0, decay_fraction: float = 0.2,
                 level: float = 0.95, n_bootstrap: int = 200, random_state: int = 0):
        self.schedule = schedule
        self.warmup_steps = warmup_steps
        self.decay_fraction = decay_fraction
        self.level = level
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state

    def _x(self, t: np.ndarray, total_steps: int) -> np.ndarray:
        if self.schedule is None:
            return t
        return cumulative_lr(t, total_steps, self.schedule, warmup_steps=self.warmup_steps,
                             decay_fraction=self.decay_fraction)

    @staticmethod
    def _fit(x: np.ndarray, L: np.ndarray) -> np.ndarray:
        xs = x / x[-1]

        def resid(th: np.ndarray) -> np.ndarray:
            return np.log(np.exp(th[0]) + np.exp(th[1]) * xs ** -th[2]) - np.log(L)

        x0 = np.array([np.log(0.7 * L.min()), np.log(max(L[-1] - 0.7 * L.min(), 1e-3)), 0.5])
        sol = least_squares(resid, x0, bounds=([-np.inf, -np.inf, 0.0], [np.inf, np.inf, 5.0]))
        if not sol.success:
            warnings.warn(f"the prefix power-law fit did not converge ({sol.message}). Fix: observe more "
                          "steps, or forecast with reference runs", ConvergenceWarning, stacklevel=3)
        return sol.x

    @staticmethod
    def _eval(th: np.ndarray, x: np.ndarray, x_last: float) -> np.ndarray:
        return np.exp(th[0]) + np.exp(th[1]) * (x / x_last) ** -th[2]

    def forecast(self, steps: Any, losses: Any, total_steps: int, at: Any = None) -> Forecast:
        """Loss at ``total_steps`` (and at ``at``) with a residual-bootstrap ``level`` band."""
        check_level(self.level)
        t, L = check_curve(steps, losses, total_steps)
        targets = forecast_steps(at, total_steps)
        x, xq = self._x(t, total_steps), self._x(targets, total_steps)
        th = self._fit(x, L)
        fit = self._eval(th, x, x[-1])
        mid = self._eval(th, xq, x[-1])
        r = np.log(L) - np.log(fit)
        rng = np.random.default_rng(self.random_state)
        boots = []
        for _ in range(self.n_bootstrap):
            Lb = fit * np.exp(rng.choice(r, r.size))
            boots.append(np.log(self._eval(self._fit(x, Lb), xq, x[-1])) + rng.choice(r))
        a = (1 - self.level) / 2
        lo, hi = np.exp(np.quantile(np.array(boots), [a, 1 - a], axis=0))
        return Forecast(steps=targets, loss=mid, loss_lo=np.minimum(lo, mid), loss_hi=np.maximum(hi, mid),
                        level=self.level, method="power law on the prefix" + (
                            f" ({self.schedule} LR area)" if self.schedule else ""),
                        observed_steps=int(t[-1]), total_steps=int(total_steps))
