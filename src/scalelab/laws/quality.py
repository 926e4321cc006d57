"""Fit-quality verdicts: a fit that converged can still be implausible, and then it must say so.

Backtesting the default Chinchilla fit over the public run tables (``benchmarks/forecast_backtest.py``)
found fits that put the irreducible loss ``E`` at 0 or an exponent above 1 with nothing but a
"parameter on bound" note; their forecasts were 5-13% off. :func:`assess` looks at a fitted law and
returns a verdict (``"ok"`` or ``"suspect"``) with one line per problem; :func:`check` stores it as
``law.quality_`` and warns :class:`~scalelab.errors.FitQualityWarning` with what to do.

Checks (each names the parameter and its value):

- the irreducible loss (``E``, ``L_inf``) on its bound or below 0.1% of the median observed loss: the
  law explains the data without a floor, so any forecast far out keeps falling without limit;
- an exponent of the loss (``alpha*``, ``beta*``) on its bound or at 1 or above: published exponents
  of loss in parameters or tokens lie between 0.05 and 0.8;
- any other parameter on its bound (the data do not identify it);
- a positive parameter whose interval spans more than two orders of magnitude (``high / low > 100``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..errors import FitQualityWarning, explain

__all__ = ["INTERVAL_RATIO_LIMIT", "assess", "check"]

#: A positive parameter whose interval's high/low ratio exceeds this is not identified by the runs.
INTERVAL_RATIO_LIMIT = 100.0
#: An irreducible loss below this fraction of the median observed loss counts as "at 0".
E_FLOOR_FRACTION = 1e-3


def _bound_hits(law: Any) -> list[str]:
    """Parameters within 1% (log-parameters: a factor 1.01) of a finite bound."""
    cls = type(law)
    lo, hi = cls._theta_bounds()
    th = np.asarray(cls._to_theta(law.params_)[0], dtype=float)
    mask = cls._log_mask()
    out = []
    for j, n in enumerate(cls.param_names):
        near = [bool(np.isfinite(b)) and abs(th[j] - b) < (0.01 if mask[j] else 1e-3 * max(1.0, abs(b)))
                for b in (lo[j], hi[j])]
        if any(near):
            out.append(n)
    return out


def assess(law: Any, y: np.ndarray | None = None) -> dict[str, Any]:
    """The quality verdict of a fitted law: ``{"verdict": "ok" | "suspect", "issues": [...]}``.

    ``y`` (the observed losses) sets the scale for "``E`` at 0"; without it only bounds are checked.
    """
    cls = type(law)
    p = law.params_
    issues: list[str] = []
    at_bound = set(_bound_hits(law))
    floor_names = cls._irreducible_names()
    exp_names = cls._exponent_names()
    scale = float(np.median(y)) if y is not None and len(y) else None
    for n in floor_names:
        v = p[n]
        if n in at_bound or (scale is not None and v < E_FLOOR_FRACTION * scale):
            issues.append(f"irreducible loss {n} = {v:.3g} is at {'its bound' if n in at_bound else '0'}: "
                          "the runs do not show the loss levelling off, so far forecasts fall without a floor")
    for n in exp_names:
        v = p[n]
        if n in at_bound or v >= 1.0:
            issues.append(f"exponent {n} = {v:.3g} is {'on its bound' if n in at_bound else 'at 1 or above'} "
                          "(published loss exponents lie between 0.05 and 0.8)")
    for n in cls.param_names:
        if n in at_bound and n not in floor_names and n not in exp_names:
            issues.append(f"{n} = {p[n]:.3g} ended on its bound")
    for n, iv in (getattr(law, "intervals_", None) or {}).items():
        lo_v, hi_v = (float(iv[0]), float(iv[1])) if len(iv) >= 2 else (math.nan, math.nan)
        if n in cls.log_params and lo_v > 0 and math.isfinite(hi_v) and hi_v / lo_v > INTERVAL_RATIO_LIMIT:
            issues.append(f"the {round(100 * float(law.level))}% interval of {n} spans "
                          f"{math.log10(hi_v / lo_v):.1f} orders of magnitude ({lo_v:.3g} to {hi_v:.3g})")
    return {"verdict": "suspect" if issues else "ok", "issues": issues}


def check(law: Any, y: np.ndarray | None = None, *, warn: bool = True, stacklevel: int = 3) -> dict[str, Any]:
    """:func:`assess`, stored in ``law.result_`` (read as ``law.quality_``); a suspect fit warns
    :class:`FitQualityWarning`."""
    q = assess(law, y)
    law.result_ = law.result_.replace(quality=q)
    if warn and q["issues"]:
        warnings.warn(explain(
            f"the {cls_name(law)} fit is implausible: " + "; ".join(q["issues"]),
            fix="do not trust its forecasts as they are: add runs over a wider range of sizes and tokens, "
                "backtest it (`scalelab backtest`), or use a law with fewer free parameters "
                "(e.g. the compute law, `--law henighan-c`)"), FitQualityWarning, stacklevel=stacklevel)
    return q


def cls_name(law: Any) -> str:
    return str(type(law).name or type(law).__name__)
