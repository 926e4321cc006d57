"""Regressors from mixture weights to a loss: LightGBM (as RegMix), linear, log-linear and the
Data Mixing Laws exponential form.

Every backend is a small object with ``fit(W, y)``, ``predict(W)``, ``to_dict()`` and a ``from_dict``
classmethod, so a fitted :class:`~scalelab.mixtures.MixtureRegressor` can be saved as one JSON file.
``W`` is ``(n, d)`` domain weights (rows on the simplex), ``y`` is ``(n,)`` losses.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from ..errors import ConvergenceWarning, FitError, MissingDependencyError, explain

#: LightGBM settings of the RegMix notebook (``regression_fitting/regression.ipynb``): gbdt, 1,000 rounds,
#: learning rate 1e-2, seed 42. The notebook also stops early on the *test* set; we do not, since that
#: tunes on the data being scored (the 1,000-round model ranks within 0.3 points of it, docs/mixtures.md).
LGBM_DEFAULTS: dict[str, Any] = {"objective": "regression", "learning_rate": 1e-2, "seed": 42, "verbosity": -1,
                                 "num_threads": 1, "deterministic": True, "force_row_wise": True}


def import_lightgbm() -> Any:
    """Import LightGBM or say which extra provides it."""
    try:
        import lightgbm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        # The message names the extra; --model linear, loglinear or law work without LightGBM.
        raise MissingDependencyError("lightgbm", "mixtures") from exc
    return lightgbm


class LightGBMBackend:
    """Gradient-boosted trees (RegMix's regressor); ``alpha`` set fits the alpha-quantile instead."""

    kind = "lightgbm"

    def __init__(self, n_estimators: int = 1000, learning_rate: float = 1e-2, seed: int = 42,
                 alpha: float | None = None):
        self.n_estimators, self.learning_rate, self.seed, self.alpha = n_estimators, learning_rate, seed, alpha
        self.booster: Any = None

    def fit(self, W: np.ndarray, y: np.ndarray) -> LightGBMBackend:
        lgb = import_lightgbm()
        params = dict(LGBM_DEFAULTS, learning_rate=self.learning_rate, seed=self.seed)
        if self.alpha is not None:
            params.update(objective="quantile", alpha=self.alpha)
        # LightGBM's default of 20 rows per leaf (kept for RegMix's 512 runs) would leave a few dozen runs
        # with a constant model; small tables get proportionally smaller leaves.
        params["min_data_in_leaf"] = min(20, max(2, len(y) // 10))
        self.booster = lgb.train(params, lgb.Dataset(W, y, free_raw_data=True), num_boost_round=self.n_estimators)
        return self

    def predict(self, W: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(W), dtype=float)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_estimators": self.n_estimators, "learning_rate": self.learning_rate,
                "seed": self.seed, "alpha": self.alpha, "booster": self.booster.model_to_string()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LightGBMBackend:
        lgb = import_lightgbm()
        b = cls(d["n_estimators"], d["learning_rate"], d["seed"], d.get("alpha"))
        b.booster = lgb.Booster(model_str=d["booster"])
        return b


class LinearBackend:
    """Least squares on the weights: ``L = b + a . w`` (``log_target``: ``log L = b + a . w``).

    Rows on the simplex make the intercept collinear with the weights; the minimum-norm solution of
    ``lstsq`` picks one of the equivalent parameterisations, and predictions on the simplex agree.
    """

    def __init__(self, log_target: bool = False, ridge: float = 1e-6):
        self.log_target, self.ridge = log_target, ridge
        self.coef: np.ndarray | None = None

    @property
    def kind(self) -> str:
        return "loglinear" if self.log_target else "linear"

    def fit(self, W: np.ndarray, y: np.ndarray) -> LinearBackend:
        A = np.column_stack([np.ones(len(W)), W])
        t = np.log(y) if self.log_target else y
        # A tiny ridge keeps the solve stable when a domain is (nearly) constant in the training rows.
        reg = np.sqrt(self.ridge) * np.eye(A.shape[1])
        reg[0, 0] = 0.0
        self.coef = np.linalg.lstsq(np.vstack([A, reg]), np.concatenate([t, np.zeros(A.shape[1])]), rcond=None)[0]
        return self

    def predict(self, W: np.ndarray) -> np.ndarray:
        assert self.coef is not None  # guarded by MixtureRegressor._check_fitted
        t = self.coef[0] + W @ self.coef[1:]
        return np.exp(t) if self.log_target else t

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ridge": self.ridge, "coef": None if self.coef is None else self.coef.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinearBackend:
        b = cls(log_target=d["kind"] == "loglinear", ridge=d.get("ridge", 1e-6))
        b.coef = np.asarray(d["coef"], dtype=float)
        return b


class MixingLawBackend:
    """Ye et al. 2024 ("Data Mixing Laws", eq. 1 generalised to many domains, their eq. 2):
    ``L(r) = c + k exp(t . r)``, with ``c >= 0`` the irreducible part, ``k > 0`` and one ``t_j`` per domain.

    Fitted in two stages: for each ``c`` on a grid below ``min(y)`` the rest is linear in
    ``log(L - c)``; the best grid point starts a least-squares fit of all parameters together.
    """

    kind = "law"

    def __init__(self, n_grid: int = 40):
        self.n_grid = n_grid
        self.c = self.log_k = 0.0
        self.t: np.ndarray | None = None

    @staticmethod
    def _linear_given_c(W: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
        A = np.column_stack([np.ones(len(W)), W])
        coef = np.linalg.lstsq(A, np.log(y - c), rcond=None)[0]
        resid = c + np.exp(A @ coef) - y
        return coef, float(resid @ resid)

    def fit(self, W: np.ndarray, y: np.ndarray) -> MixingLawBackend:
        y_min = float(np.min(y))
        grid = y_min * (1 - np.geomspace(1.0, 1e-3, self.n_grid))  # c from 0 up to 0.999 min(y)
        best = min(((c, *self._linear_given_c(W, y, c)) for c in grid), key=lambda r: r[2])
        x0 = np.concatenate([[best[0]], best[1]])

        def resid(x: np.ndarray) -> np.ndarray:
            return x[0] + np.exp(x[1] + W @ x[2:]) - y

        lo = np.full_like(x0, -np.inf)
        hi = np.full_like(x0, np.inf)
        lo[0], hi[0] = 0.0, y_min
        x0[0] = min(max(x0[0], 0.0), np.nextafter(y_min, 0.0))
        sol = least_squares(resid, x0, bounds=(lo, hi), method="trf", x_scale="jac")
        if not sol.success:
            warnings.warn(f"the mixing-law fit did not converge ({sol.message}); keeping the last iterate. "
                          "Fix: check the losses for outliers, or use --model lightgbm", ConvergenceWarning,
                          stacklevel=3)
        if not np.all(np.isfinite(sol.x)):
            raise FitError(explain("the mixing-law fit produced non-finite parameters", value=sol.x.tolist(),
                                   fix="use --model linear or lightgbm for these losses"))
        self.c, self.log_k, self.t = float(sol.x[0]), float(sol.x[1]), sol.x[2:].copy()
        return self

    def predict(self, W: np.ndarray) -> np.ndarray:
        assert self.t is not None  # guarded by MixtureRegressor._check_fitted
        return self.c + np.exp(self.log_k + W @ self.t)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_grid": self.n_grid, "c": self.c, "log_k": self.log_k,
                "t": None if self.t is None else self.t.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MixingLawBackend:
        b = cls(d.get("n_grid", 40))
        b.c, b.log_k, b.t = float(d["c"]), float(d["log_k"]), np.asarray(d["t"], dtype=float)
        return b


Backend = LightGBMBackend | LinearBackend | MixingLawBackend
MODELS = ("lightgbm", "linear", "loglinear", "law")


def make_backend(model: str, *, n_estimators: int, learning_rate: float, seed: int,
                 alpha: float | None = None) -> Backend:
    if model == "lightgbm":
        return LightGBMBackend(n_estimators, learning_rate, seed, alpha)
    if model in ("linear", "loglinear"):
        return LinearBackend(log_target=model == "loglinear")
    return MixingLawBackend()


def backend_from_dict(d: dict[str, Any]) -> Backend:
    kind = d.get("kind")
    if kind == "lightgbm":
        return LightGBMBackend.from_dict(d)
    if kind in ("linear", "loglinear"):
        return LinearBackend.from_dict(d)
    if kind == "law":
        return MixingLawBackend.from_dict(d)
    raise FitError(explain("the model file names an unknown mixture model", value=kind,
                           allowed=", ".join(MODELS), fix="refit with `scalelab mixture fit`"))
