"""Hoffmann et al. 2022 approaches 1 and 2: compute-optimal allocation without a parametric loss.

Legend: ``N`` parameters, ``D`` tokens, ``C`` training FLOPs (``C = 6 N D`` unless the data say otherwise),
``L`` loss (nats/token); ``N_opt(C) = k_N C^a`` and ``D_opt(C) = k_D C^b``.

* Approach 1 (§3.1): for many FLOP values, the lowest loss over all training curves at that compute gives
  ``(C, N_opt, D_opt)``; power laws are fitted to those points (1,500 log-spaced FLOP values in the paper).
* Approach 2 (§3.2): for each fixed budget (an isoFLOP profile), a parabola in ``log N`` is fitted to the
  final losses; its vertex is ``N_opt(C)`` and ``D_opt = C / (6 N_opt)``; power laws are fitted to the
  vertices. The parabola is fitted near the profile's minimum (``window`` points each side) because wide
  profiles bias the vertex (Open-Athena scaling-law-analysis; laws.md Appendix A.5).

Both return a :class:`PowerLawAllocation` with bootstrap intervals for ``a`` and ``b``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConvergenceWarning, DataError, explain
from ..units import FLOPS_PER_PARAM_TOKEN

__all__ = ["PowerLawAllocation", "approach1", "approach2", "fit_power_law"]



def fit_power_law(x: Any, y: Any, w: Any = None) -> tuple[float, float]:
    """Least squares of ``log y = log k + p log x``; returns ``(k, p)``."""
    lx, ly = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    if lx.size < 2 or np.ptp(lx) == 0:
        raise DataError(explain("a power law needs at least two distinct x values", value=lx.size,
                                fix="use more compute budgets"))
    p, c = np.polyfit(lx, ly, 1, w=None if w is None else np.sqrt(np.asarray(w, dtype=float)))
    return float(math.exp(c)), float(p)


@dataclass
class PowerLawAllocation:
    """``N_opt = k_N C^a``, ``D_opt = k_D C^b`` fitted to per-budget optima, with bootstrap intervals."""

    method: str
    a: float
    b: float
    k_N: float
    k_D: float
    C_flops: np.ndarray
    N_opt: np.ndarray
    D_opt: np.ndarray
    L_opt: np.ndarray
    level: float = 0.95
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    bootstrap: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def predict(self, C: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(N_opt(C), D_opt(C))`` from the fitted power laws."""
        C = np.asarray(C, dtype=float)
        return self.k_N * C**self.a, self.k_D * C**self.b

    def to_dict(self) -> dict[str, Any]:
        from .. import __version__

        return {"method": self.method, "a": self.a, "b": self.b, "k_N": self.k_N, "k_D": self.k_D,
                "level": self.level, "intervals": {k: list(v) for k, v in self.intervals.items()},
                "points": {"C_flops": self.C_flops.tolist(), "N_opt": self.N_opt.tolist(),
                           "D_opt": self.D_opt.tolist(), "L_opt": self.L_opt.tolist()},
                "notes": list(self.notes), "scalelab_version": __version__}

    def report(self) -> str:
        iv = self.intervals
        lvl = round(100 * self.level)

        def ci(k: str) -> str:
            return f" [{iv[k][0]:.4g}, {iv[k][1]:.4g}] ({lvl}%)" if k in iv else ""

        lines = [f"{self.method}: N_opt = {self.k_N:.4g} C^{self.a:.4f}{ci('a')}, "
                 f"D_opt = {self.k_D:.4g} C^{self.b:.4f}{ci('b')}  ({len(self.C_flops)} budgets)"]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _finish(method: str, C: np.ndarray, N: np.ndarray, D: np.ndarray, L: np.ndarray, level: float,
            n_bootstrap: int, random_state: Any, notes: list[str]) -> PowerLawAllocation:
    if C.size < 2:
        raise DataError(explain(f"{method} found fewer than two usable compute budgets", value=int(C.size),
                                fix="add budgets, or profiles whose minimum is bracketed by model sizes"))
    kN, a = fit_power_law(C, N)
    kD, b = fit_power_law(C, D)
    out = PowerLawAllocation(method, a, b, kN, kD, C, N, D, L, level=level, notes=notes)
    if n_bootstrap and C.size >= 3:
        rng = np.random.default_rng(random_state)
        idx = rng.integers(0, C.size, size=(n_bootstrap, C.size))
        lc, ln, ld = np.log(C), np.log(N), np.log(D)
        draws = []
        for row in idx:
            if np.ptp(lc[row]) == 0:
                continue
            draws.append((np.polyfit(lc[row], ln[row], 1)[0], np.polyfit(lc[row], ld[row], 1)[0]))
        arr = np.array(draws)
        q = 100 * (1 - level) / 2
        out.bootstrap = arr
        out.intervals = {"a": tuple(np.percentile(arr[:, 0], [q, 100 - q])),
                         "b": tuple(np.percentile(arr[:, 1], [q, 100 - q]))}
    return out


def approach2(C: Any, N: Any, L: Any, *, D: Any = None, window: int | None = 2, level: float = 0.95,
              n_bootstrap: int = 1000, random_state: Any = 0, rtol: float = 0.01,
              vertex: str = "parabola") -> PowerLawAllocation:
    """IsoFLOP profiles -> ``N_opt(C)``, ``D_opt(C)`` power laws (Hoffmann et al. 2022 §3.2).

    Parameters
    ----------
    C, N, L : budget (FLOPs), model size and final loss of each run; runs whose budgets agree within
        ``rtol`` form one profile.
    D : tokens of each run (for ``D_opt`` at the vertex, interpolated in ``log N``); default ``C/(6N)``.
    window : fit the parabola to the empirical minimum and this many neighbours on each side (``None``:
        the whole profile).
    vertex : ``"parabola"`` (Hoffmann et al.) or ``"akima"``: the minimum of an Akima spline of loss in
        ``log N`` through the whole profile (Porian et al. 2024, ``analysis.py``).
    n_bootstrap : resamples of the budgets for the intervals of ``a`` and ``b``.

    Examples
    --------
    >>> res = approach2(C, N, L)          # doctest: +SKIP
    >>> res.a, res.intervals["a"]         # doctest: +SKIP
    """
    C, N, L = (np.asarray(v, dtype=float).ravel() for v in (C, N, L))
    if not (C.size == N.size == L.size):
        raise DataError(explain("C, N and L differ in length", value=(C.size, N.size, L.size)))
    Dv = None if D is None else np.asarray(D, dtype=float).ravel()
    bad = np.flatnonzero(~(np.isfinite(C) & np.isfinite(N) & np.isfinite(L)) | (C <= 0) | (N <= 0) | (L <= 0))
    if bad.size:
        raise DataError(explain(f"NaN or non-positive values at data rows {', '.join(map(str, bad[:10]))}",
                                fix="drop those runs"))
    order = np.argsort(C)
    groups: list[np.ndarray] = []
    start = 0
    for i in range(1, C.size + 1):
        if i == C.size or C[order[i]] > C[order[start]] * (1 + rtol):
            groups.append(order[start:i])
            start = i
    Cs, Ns, Ds, Ls, notes = [], [], [], [], []
    for g in groups:
        c = float(np.exp(np.mean(np.log(C[g]))))
        g = g[np.argsort(N[g])]
        if g.size < 3:
            notes.append(f"budget {c:.3g}: {g.size} runs, need 3 for a parabola; skipped")
            continue
        j = int(np.argmin(L[g]))
        if j == 0 or j == g.size - 1:
            notes.append(f"budget {c:.3g}: minimum at the {'smallest' if j == 0 else 'largest'} model, "
                         "not bracketed; skipped")
            continue
        if vertex == "akima":
            from scipy.interpolate import Akima1DInterpolator

            x = np.log(N[g])
            spl = Akima1DInterpolator(x, L[g])
            fine = np.linspace(x[0], x[-1], 2001)
            lf = spl(fine)
            xv = float(fine[int(np.argmin(lf))])
            lv = float(np.min(lf))
        elif vertex == "parabola":
            sel = g if window is None else g[max(0, j - window) : j + window + 1]
            x = np.log(N[sel])
            p2, p1, p0 = np.polyfit(x, L[sel], 2)
            if p2 <= 0:
                notes.append(f"budget {c:.3g}: profile not convex near its minimum; skipped")
                continue
            xv = -p1 / (2 * p2)
            lv = float(p0 + p1 * xv + p2 * xv * xv)
        else:
            raise DataError(explain("unknown vertex method", value=vertex, allowed="parabola, akima"))
        nv = math.exp(xv)
        if Dv is None:
            dv = c / (FLOPS_PER_PARAM_TOKEN * nv)
        else:
            dv = float(np.exp(np.interp(xv, np.log(N[g]), np.log(Dv[g]))))
        Cs.append(c)
        Ns.append(nv)
        Ds.append(dv)
        Ls.append(lv)
    if notes:
        warnings.warn(explain(f"approach 2 skipped {len(notes)} budget(s): " + "; ".join(notes),
                              fix="add model sizes on both sides of each profile's minimum"),
                      ConvergenceWarning, stacklevel=2)
    return _finish(f"approach 2 (isoFLOP profiles, {vertex} vertex)", np.array(Cs), np.array(Ns), np.array(Ds),
                   np.array(Ls), level, n_bootstrap, random_state, notes)


def approach1(run: Any, N: Any, D: Any, L: Any, *, C: Any = None, n_flops: int = 1500, level: float = 0.95,
              n_bootstrap: int = 1000, random_state: Any = 0) -> PowerLawAllocation:
    """Minimum over training curves -> ``N_opt(C)``, ``D_opt(C)`` power laws (Hoffmann et al. 2022 §3.1).

    Parameters
    ----------
    run : identifier of the run each checkpoint belongs to.
    N, D, L : model size, tokens seen and loss at each checkpoint (``C = 6 N D`` unless ``C`` is given).
    n_flops : number of log-spaced FLOP values at which the envelope is read (1,500 in the paper).

    Each curve is interpolated linearly in ``log C``; at each FLOP value the run with the lowest loss wins.
    Only FLOP values covered by at least two runs are used.
    """
    run = np.asarray(run).ravel()
    N, D, L = (np.asarray(v, dtype=float).ravel() for v in (N, D, L))
    Cv = FLOPS_PER_PARAM_TOKEN * N * D if C is None else np.asarray(C, dtype=float).ravel()
    bad = np.flatnonzero(~(np.isfinite(Cv) & np.isfinite(L)) | (Cv <= 0) | (N <= 0))
    if bad.size:
        raise DataError(explain(f"NaN or non-positive values at data rows {', '.join(map(str, bad[:10]))}",
                                fix="drop those checkpoints"))
    ids = np.unique(run)
    if ids.size < 2:
        raise DataError(explain("approach 1 needs training curves of several model sizes", value=int(ids.size)))
    grid = np.geomspace(Cv.min(), Cv.max(), n_flops)
    lg = np.log(grid)
    best = np.full(grid.size, np.inf)
    who = np.full(grid.size, -1)
    cover = np.zeros(grid.size, dtype=int)
    for k, rid in enumerate(ids):
        m = run == rid
        o = np.argsort(Cv[m])
        lc, ll = np.log(Cv[m][o]), L[m][o]
        inside = (lg >= lc[0]) & (lg <= lc[-1])
        cover += inside
        val = np.full(grid.size, np.inf)
        val[inside] = np.interp(lg[inside], lc, ll)
        better = val < best
        best[better], who[better] = val[better], k
    use = (cover >= 2) & (who >= 0)
    Nrun = np.array([N[run == rid][0] for rid in ids])
    Nopt = Nrun[who[use]]
    Copt = grid[use]
    Dopt = Copt / (FLOPS_PER_PARAM_TOKEN * Nopt)
    return _finish("approach 1 (minimum over training curves)", Copt, Nopt, Dopt, best[use], level,
                   n_bootstrap, random_state, [])
