"""``MixtureRegressor``: from data-mixture weights to a validation loss, with bands.

RegMix (Liu et al. 2025, "RegMix: Data Mixture as Regression for Language Model Pre-training") trains
hundreds of tiny proxies on random mixtures and regresses each validation loss on the domain weights;
the regression then ranks and searches unseen mixtures. This class is that regression, in the
scikit-learn shape of :mod:`scalelab.laws`: settings in ``__init__``, ``fit`` returns ``self``, fitted
state ends in ``_``, ``predict`` before ``fit`` raises :class:`~scalelab.errors.NotFittedError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

import numpy as np
from scipy.stats import spearmanr

from .. import __version__
from .._checks import check_level
from ..errors import ConfigError, DataError, NotFittedError, explain
from ._backends import MODELS, Backend, backend_from_dict, make_backend
from ._io import check_weights

__all__ = ["UNCERTAINTIES", "MixtureRegressor", "spearman"]

UNCERTAINTIES = ("auto", "quantile", "bootstrap", "none")
FORMAT = "scalelab-mixture-regressor/1"


def spearman(pred: Any, true: Any) -> float:
    """Spearman rank correlation between predicted and measured losses (RegMix's score)."""
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    if np.ptp(pred) == 0 or np.ptp(true) == 0:
        return float("nan")  # undefined for a constant input; NaN rather than scipy's warning
    return float(spearmanr(pred, true).statistic)


class MixtureRegressor:
    """Regress a loss on mixture weights; predict, rank, and give bands.

    Parameters
    ----------
    model : {"lightgbm", "linear", "loglinear", "law"}
        ``lightgbm``: gradient-boosted trees with RegMix's settings (needs ``scalelab[mixtures]``);
        ``linear``: ``L = b + a . w``; ``loglinear``: ``log L = b + a . w``; ``law``: the Data Mixing
        Laws form ``L = c + k exp(t . w)`` (Ye et al. 2024).
    uncertainty : {"auto", "quantile", "bootstrap", "none"}
        ``quantile``: two extra LightGBM models of the band's quantiles (lightgbm only);
        ``bootstrap``: ``n_bootstrap`` refits on resampled rows, each prediction plus that refit's
        out-of-bag residuals (a prediction band, not only a band on the mean); ``auto``: quantile for
        lightgbm, bootstrap otherwise.
    level : float
        Coverage of the band the model is fitted for.
    n_bootstrap : int
        Bootstrap refits (``uncertainty="bootstrap"``).
    n_estimators, learning_rate : LightGBM rounds and learning rate (RegMix: 1,000 and 1e-2).
    random_state : int
        Seeds LightGBM and the bootstrap.
    conformal_folds : int
        Calibrate the band on out-of-fold residuals over this many folds (0: the band as fitted);
        see :mod:`scalelab.mixtures.conformal`. Fitting costs ``folds + 1`` times as much.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> W = rng.dirichlet(np.ones(3), 64); y = 3 + np.exp(-2 * W[:, 0])
    >>> m = MixtureRegressor(model="law", n_bootstrap=10).fit(W, y, domains=["a", "b", "c"])
    >>> bool(abs(m.predict([[1, 0, 0]])[0] - (3 + np.exp(-2))) < 1e-3)
    True
    """

    def __init__(self, model: str = "lightgbm", *, uncertainty: str = "auto", level: float = 0.9,
                 n_bootstrap: int = 50, n_estimators: int = 1000, learning_rate: float = 1e-2,
                 random_state: int = 42, conformal_folds: int = 5):
        self.model = model
        self.uncertainty = uncertainty
        self.level = level
        self.n_bootstrap = n_bootstrap
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.conformal_folds = conformal_folds

    # -- fitting ------------------------------------------------------------------------------------
    def _resolved_uncertainty(self) -> str:
        if self.model not in MODELS:
            raise ConfigError(explain("unknown mixture model", value=self.model, allowed=", ".join(MODELS),
                                      fix="pass model='lightgbm' (RegMix) or 'law' (Data Mixing Laws)"))
        if self.uncertainty not in UNCERTAINTIES:
            raise ConfigError(explain("unknown uncertainty method", value=self.uncertainty,
                                      allowed=", ".join(UNCERTAINTIES), fix="use 'auto'"))
        check_level(self.level)
        if self.uncertainty == "quantile" and self.model != "lightgbm":
            raise ConfigError(explain("quantile bands need the lightgbm model", value=self.model,
                                      allowed="uncertainty='bootstrap' for linear, loglinear and law",
                                      fix="use uncertainty='bootstrap' or 'auto'"))
        if self.uncertainty == "auto":
            return "quantile" if self.model == "lightgbm" else "bootstrap"
        return self.uncertainty

    def _backend(self, alpha: float | None = None, seed: int | None = None) -> Backend:
        return make_backend(self.model, n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                            seed=self.random_state if seed is None else seed, alpha=alpha)

    def fit(self, W: Any, y: Any, *, domains: list[str] | None = None, target: str = "loss") -> Self:
        """Fit on mixtures ``W`` (n, d) and losses ``y`` (n,); ``domains`` names the d columns."""
        W, y = np.atleast_2d(np.asarray(W, dtype=float)), np.asarray(y, dtype=float).ravel()
        if len(W) != len(y):
            raise DataError(explain("W and y have different numbers of rows", value=(len(W), len(y)),
                                    fix="pass one loss per mixture"))
        bad = np.flatnonzero(~np.isfinite(y) | (y <= 0))
        if bad.size:  # named by row: "need at least 4 ... (got '20 rows')" hid which one of 20 was NaN
            raise DataError(explain(f"losses must be finite and positive; rows (0-based) {bad[:10].tolist()} are not",
                                    value=y[bad[:5]].tolist(), allowed="finite losses > 0, in nats",
                                    fix="drop or correct those rows (a diverged proxy has no usable loss)"))
        if len(y) < 4:
            raise DataError(explain("need at least 4 losses to fit a mixture regression", value=f"{len(y)} rows",
                                    fix="add proxy runs on more mixtures"))
        W = check_weights(W, "mixtures")
        domains = list(domains) if domains is not None else [f"w{j}" for j in range(W.shape[1])]
        if len(domains) != W.shape[1]:
            raise DataError(explain("domains must name every column of W", value=(len(domains), W.shape[1]),
                                    fix="pass one name per column"))
        unc = self._resolved_uncertainty()
        self.domains_, self.target_, self.uncertainty_ = domains, target, unc
        self.n_train_, self.prior_ = len(y), W.mean(axis=0)
        self.backend_ = self._backend().fit(W, y)
        self.quantiles_: tuple[Backend, Backend] | None = None
        self.bootstrap_: list[Backend] = []
        self.oob_residuals_: list[np.ndarray] = []
        a = (1 - self.level) / 2
        if unc == "quantile":
            self.quantiles_ = (self._backend(alpha=a).fit(W, y), self._backend(alpha=1 - a).fit(W, y))
        elif unc == "bootstrap":
            self._fit_bootstrap(W, y)
        self.margin_ = 0.0
        if unc != "none" and self.conformal_folds:
            from .conformal import conformal_margin

            self.margin_ = conformal_margin(self, W, y, self.conformal_folds, getattr(self, "_oob", None))
        return self

    def _fit_bootstrap(self, W: np.ndarray, y: np.ndarray) -> None:
        rng = np.random.default_rng(self.random_state)
        n = len(y)
        self._oob: list[np.ndarray] = []  # for the calibration; not saved
        for b in range(self.n_bootstrap):
            idx = rng.integers(0, n, n)
            oob = np.setdiff1d(np.arange(n), idx)
            m = self._backend(seed=self.random_state + b + 1).fit(W[idx], y[idx])
            self.bootstrap_.append(m)
            self.oob_residuals_.append(y[oob] - m.predict(W[oob]) if len(oob) else np.zeros(1))
            self._oob.append(oob if len(oob) else np.array([-1]))

    # -- using it -----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "backend_"):
            raise NotFittedError(explain("this MixtureRegressor is not fitted yet",
                                         fix="call fit(W, y) first, or MixtureRegressor.load(path)"))

    def _weights(self, W: Any) -> np.ndarray:
        self._check_fitted()
        W = np.atleast_2d(np.asarray(W, dtype=float))
        if W.shape[1] != len(self.domains_):
            raise DataError(explain("mixtures have the wrong number of domains", value=W.shape[1],
                                    allowed=f"{len(self.domains_)}: {', '.join(self.domains_)}",
                                    fix="give one weight per domain the model was fitted on"))
        return check_weights(W, "mixtures")

    def predict(self, W: Any) -> np.ndarray:
        """Predicted loss of each mixture (rows of ``W``)."""
        W = self._weights(W)
        return self.backend_.predict(W)

    def predict_interval(self, W: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)`` of the fitted ``level`` band; equal to the prediction when uncertainty is 'none'."""
        W = self._weights(W)
        mid = self.backend_.predict(W)
        a = (1 - self.level) / 2
        if self.quantiles_ is not None:
            lo, hi = (q.predict(W) for q in self.quantiles_)
        elif self.bootstrap_:
            parts = [m.predict(W)[:, None] + r[None, :] for m, r in zip(self.bootstrap_, self.oob_residuals_,
                                                                       strict=True)]
            samples = np.concatenate(parts, axis=1)
            lo, hi = np.quantile(samples, [a, 1 - a], axis=1)
        else:
            lo, hi = mid, mid
        lo, hi = lo - self.margin_, hi + self.margin_  # the conformal calibration (0 when not calibrated)
        # Quantile models are fitted apart from the median one and may cross it; the band always holds it.
        return np.minimum(lo, mid), np.maximum(hi, mid)

    def rank(self, W: Any) -> np.ndarray:
        """Row indices of ``W`` from the lowest predicted loss to the highest."""
        return np.argsort(self.predict(W), kind="stable")

    def score(self, W: Any, y: Any) -> float:
        """Spearman rank correlation between predicted and measured losses."""
        return spearman(self.predict(W), y)

    # -- persistence --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "format": FORMAT, "scalelab_version": __version__,
            "params": {"model": self.model, "uncertainty": self.uncertainty, "level": self.level,
                       "n_bootstrap": self.n_bootstrap, "n_estimators": self.n_estimators,
                       "learning_rate": self.learning_rate, "random_state": self.random_state,
                       "conformal_folds": self.conformal_folds},
            "margin": self.margin_,
            "domains": self.domains_, "target": self.target_, "uncertainty_": self.uncertainty_,
            "n_train": self.n_train_, "prior": self.prior_.tolist(),
            "backend": self.backend_.to_dict(),
            "quantiles": None if self.quantiles_ is None else [q.to_dict() for q in self.quantiles_],
            "bootstrap": [m.to_dict() for m in self.bootstrap_],
            "oob_residuals": [r.tolist() for r in self.oob_residuals_],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MixtureRegressor:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            got = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise DataError(explain("not a scalelab mixture model", value=got, allowed=FORMAT,
                                    fix="pass a file written by `scalelab mixture fit --out`"))
        try:
            m = cls(**{"conformal_folds": 0, **d["params"]})
            m.domains_, m.target_, m.uncertainty_ = list(d["domains"]), d["target"], d["uncertainty_"]
            m.n_train_, m.prior_ = int(d["n_train"]), np.asarray(d["prior"], dtype=float)
            m.margin_ = float(d.get("margin", 0.0))  # files written before calibration existed: uncalibrated
            m.backend_ = backend_from_dict(d["backend"])
            q = d.get("quantiles")
            m.quantiles_ = None if q is None else (backend_from_dict(q[0]), backend_from_dict(q[1]))
            m.bootstrap_ = [backend_from_dict(b) for b in d.get("bootstrap", [])]
            m.oob_residuals_ = [np.asarray(r, dtype=float) for r in d.get("oob_residuals", [])]
        except KeyError as e:
            raise DataError(explain(f"the mixture model file lacks the field {e.args[0]!r}", value=sorted(d),
                                    fix="refit and save it again with `scalelab mixture fit --out`")) from None
        except (TypeError, ValueError, IndexError) as e:
            raise DataError(explain("the mixture model file has a field of the wrong type", value=str(e),
                                    fix="refit and save it again with `scalelab mixture fit --out`")) from None
        return m

    def save(self, path: str | Path) -> Path:
        """Write the fitted model as one JSON file."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), allow_nan=False))  # NaN/inf would not read back as JSON
        return path

    @classmethod
    def load(cls, path: str | Path) -> MixtureRegressor:
        """Read a model written by :meth:`save` (or ``scalelab mixture fit --out``)."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(explain(f"{path} is not valid JSON", value=str(exc),
                                    fix="pass a file written by `scalelab mixture fit --out`")) from None
        return cls.from_dict(d)

    def __repr__(self) -> str:
        return (f"MixtureRegressor(model={self.model!r}, uncertainty={self.uncertainty!r}, level={self.level}, "
                f"random_state={self.random_state}, conformal_folds={self.conformal_folds})")
