"""A law over checkpoints: the loss of every checkpoint of every run as one function of size and step,

    L(N, t) = E + A N^-alpha + B t^-beta,

the additive form of Hoffmann et al. 2022 (eq. 2) with the step (or tokens seen so far) in place of the
training tokens, fitted to all checkpoints at once rather than to final losses. It ignores the learning
rate and where in its schedule a checkpoint sits, so runs of one size but different schedules scatter
around it; docs/curves.md gives its error on the (Mis)Fitting checkpoints.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from ..errors import ConvergenceWarning, DataError, explain

__all__ = ["CheckpointLaw"]


@dataclass(frozen=True)
class CheckpointLaw:
    """Fitted ``L(N, t) = E + A N^-alpha + B t^-beta``; build it with :meth:`fit`.

    >>> N = np.repeat([1e7, 3e7, 1e8], 20); t = np.tile(np.geomspace(100, 1e4, 20), 3)
    >>> law = CheckpointLaw.fit(N, t, 1.8 + 400 * N ** -0.35 + 20 * t ** -0.5)
    >>> round(law.E, 2), round(law.alpha, 2), round(law.beta, 2)
    (1.8, 0.35, 0.5)
    """

    E: float
    A: float
    alpha: float
    B: float
    beta: float
    n_points: int
    rmse_log: float

    def predict(self, n_params: Any, step: Any) -> np.ndarray:
        """Loss at size ``n_params`` and step ``step`` (broadcast)."""
        N, t = np.asarray(n_params, float), np.asarray(step, float)
        for name, a in (("n_params", N), ("step", t)):  # a size or step <= 0 gave a loss of nan or inf
            bad = a[~(np.isfinite(a) & (a > 0))]
            if bad.size:
                raise DataError(explain(f"{name} must be positive and finite to predict a loss",
                                        value=bad[:5].tolist(), allowed="numbers > 0",
                                        fix="pass sizes and steps above 0 (on the command line: --at 1.2e9:16000)"))
        return self.E + self.A * N ** -self.alpha + self.B * t ** -self.beta

    @classmethod
    def fit(cls, n_params: Any, steps: Any, losses: Any) -> CheckpointLaw:
        """Least squares on log loss (Huber, as Hoffmann et al. fit theirs) over every checkpoint."""
        N, t, L = (np.asarray(x, float).ravel() for x in (n_params, steps, losses))
        if not (N.shape == t.shape == L.shape):
            raise DataError(explain("n_params, steps and losses differ in length", value=(N.size, t.size, L.size),
                                    fix="give one size and one step per loss"))
        ok = np.isfinite(N) & np.isfinite(t) & np.isfinite(L) & (N > 0) & (t > 0) & (L > 0)
        N, t, L = N[ok], t[ok], L[ok]
        if np.unique(N).size < 2 or L.size < 6:
            raise DataError(explain("a law over checkpoints needs runs of at least two sizes and 6 points",
                                    value=(int(np.unique(N).size), int(L.size)),
                                    fix="add checkpoints of runs of other sizes"))
        n0, t0 = float(np.exp(np.log(N).mean())), float(np.exp(np.log(t).mean()))
        Ns, ts, logL = N / n0, t / t0, np.log(L)

        def resid(th: np.ndarray) -> np.ndarray:
            e, a, al, b, be = th
            return np.log(np.exp(e) + np.exp(a) * Ns ** -al + np.exp(b) * ts ** -be) - logL

        best = None
        for e0 in (0.5, 0.8, 0.95):
            for al0, be0 in ((0.3, 0.3), (0.6, 0.6)):
                x0 = np.array([np.log(e0 * L.min()), np.log(0.2 * L.mean()), al0, np.log(0.2 * L.mean()), be0])
                sol = least_squares(resid, x0, loss="huber", f_scale=1e-2,
                                    bounds=([-np.inf, -np.inf, 0, -np.inf, 0], [np.inf, np.inf, 3, np.inf, 3]))
                if best is None or sol.cost < best.cost:
                    best = sol
        assert best is not None
        if not best.success:
            warnings.warn(f"the checkpoint-law fit did not converge ({best.message}). Fix: check the data",
                          ConvergenceWarning, stacklevel=2)
        e, a, al, b, be = best.x
        return cls(E=float(np.exp(e)), A=float(np.exp(a) * n0 ** al), alpha=float(al), B=float(np.exp(b) * t0 ** be),
                   beta=float(be), n_points=int(L.size), rmse_log=float(np.sqrt(np.mean(resid(best.x) ** 2))))

    def to_dict(self) -> dict[str, Any]:
        return {"form": "L = E + A N^-alpha + B t^-beta", "E": self.E, "A": self.A, "alpha": self.alpha,
                "B": self.B, "beta": self.beta, "n_points": self.n_points, "rmse_log": self.rmse_log}

    def report(self) -> str:
        return (f"L(N, t) = {self.E:.4g} + {self.A:.4g} N^-{self.alpha:.4g} + {self.B:.4g} t^-{self.beta:.4g}"
                f"  ({self.n_points} checkpoints, rms log residual {self.rmse_log:.4f})")
