"""Search for the mixture with the lowest predicted loss, as RegMix does.

RegMix (Liu et al. 2025, section 3) samples many mixtures from Dirichlet distributions centred on a prior
(the corpus' natural token distribution), predicts each with the fitted regression, and averages the
top-k to smooth the regression's noise (their release: 100,000 samples, top 128). Here the samples can be
held inside per-domain bounds and inside the tokens each domain has: ``max_epochs`` caps repetition, and
repeated tokens count only as the data-constrained law's effective tokens (Muennighoff et al. 2023, eq. 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, explain
from ..laws.muennighoff import MuennighoffLaw, effective_data
from .regressor import MixtureRegressor

__all__ = ["MixtureSearchResult", "optimize_mixture"]

#: Muennighoff et al. 2023's fitted R_D* (data-constrained law), from the law's published preset.
R_D_STAR = float(MuennighoffLaw.presets["muennighoff2023"]["params"]["R_D_star"])


@dataclass(frozen=True)
class MixtureSearchResult:
    """The chosen mixture, its predicted loss and band, and how it was found."""

    domains: list[str]
    weights: np.ndarray
    loss: float
    loss_lo: float
    loss_hi: float
    level: float
    n_samples: int
    n_feasible: int
    top_k: int
    top_losses: np.ndarray = field(repr=False)
    epochs: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "weights": {k: float(w) for k, w in zip(self.domains, self.weights, strict=True)},
            "loss": self.loss, "loss_lo": self.loss_lo, "loss_hi": self.loss_hi, "level": self.level,
            "n_samples": self.n_samples, "n_feasible": self.n_feasible, "top_k": self.top_k,
            "top_k_loss_range": [float(self.top_losses.min()), float(self.top_losses.max())],
        }
        if self.epochs is not None:
            d["epochs"] = {k: float(e) for k, e in zip(self.domains, self.epochs, strict=True)}
        return d

    def report(self) -> str:
        lines = [f"Optimised mixture: predicted loss {self.loss:.4f} "
                 f"[{self.loss_lo:.4f}, {self.loss_hi:.4f}] ({self.level:.0%} band)",
                 f"average of the top {self.top_k} of {self.n_feasible:,} feasible samples "
                 f"({self.n_samples:,} drawn)", ""]
        for k, w in sorted(zip(self.domains, self.weights, strict=True), key=lambda t: -t[1]):
            lines.append(f"  {k:<40} {w:8.4f}")
        return "\n".join(lines)


def _as_vector(x: Any, d: int, name: str, default: float) -> np.ndarray:
    if x is None:
        return np.full(d, default)
    v = np.broadcast_to(np.asarray(x, dtype=float), (d,)).copy()
    if not np.all(np.isfinite(v)):
        raise ConfigError(explain(f"{name} must be finite", value=v.tolist(), fix="give a number per domain"))
    return v


def _check_bounds(lo: np.ndarray, hi: np.ndarray) -> None:
    if np.any(lo < 0) or np.any(hi > 1) or np.any(lo > hi) or lo.sum() > 1 or hi.sum() < 1:
        raise ConfigError(explain("the weight bounds leave no mixture", value={"min": lo.tolist(), "max": hi.tolist()},
                                  allowed="0 <= min <= max <= 1, sum(min) <= 1 <= sum(max)",
                                  fix="loosen min_weight / max_weight"))


def optimize_mixture(model: MixtureRegressor, *, prior: Any = None, n_samples: int = 100_000, top_k: int = 128,
                     concentration: tuple[float, float] = (1.0, 100.0), min_weight: Any = None,
                     max_weight: Any = None, available_tokens: Any = None, total_tokens: float | None = None,
                     max_epochs: float = 4.0, random_state: int = 0,
                     batch_size: int = 20_000) -> MixtureSearchResult:
    """Sample Dirichlet mixtures around ``prior``, keep the feasible ones, average the top ``top_k``.

    Parameters
    ----------
    model : a fitted :class:`MixtureRegressor`.
    prior : weights per domain; defaults to the mean of the model's training mixtures.
    concentration : ``(lo, hi)``; each sample's Dirichlet is ``prior * s`` with ``s`` log-uniform in the
        range, so the search reaches from sparse mixtures (small ``s``) to ones near the prior (large).
    min_weight, max_weight : bounds per domain (scalars or one per domain).
    available_tokens, total_tokens : unique tokens each domain has, and the planned run's tokens. Given
        both, a mixture may repeat a domain at most ``max_epochs`` times, and the model sees each domain's
        effective tokens under repetition (``effective_data``), renormalised to weights.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> W = rng.dirichlet(np.ones(3), 64); y = 3 + np.exp(-2 * W[:, 0])
    >>> m = MixtureRegressor(model="law", uncertainty="none").fit(W, y)
    >>> r = optimize_mixture(m, n_samples=2000, top_k=16, max_weight=0.6)
    >>> bool(0.55 < r.weights[0] <= 0.6)
    True
    """
    model._check_fitted()
    d = len(model.domains_)
    if n_samples < 1 or not 1 <= top_k <= n_samples:
        raise ConfigError(explain("need 1 <= top_k <= n_samples", value=(top_k, n_samples),
                                  fix="RegMix uses n_samples=100000, top_k=128"))
    p = model.prior_ if prior is None else np.asarray(prior, dtype=float).ravel()
    if p.shape != (d,) or np.any(p < 0) or p.sum() <= 0:
        raise DataError(explain("the prior must be one non-negative weight per domain", value=p.tolist(),
                                allowed=f"{d} weights: {', '.join(model.domains_)}", fix="pass a mixture row"))
    p = np.maximum(p / p.sum(), 1e-6)
    lo, hi = _as_vector(min_weight, d, "min_weight", 0.0), _as_vector(max_weight, d, "max_weight", 1.0)
    _check_bounds(lo, hi)
    if (available_tokens is None) != (total_tokens is None):
        given = "available_tokens" if available_tokens is not None else "total_tokens"
        raise ConfigError(explain(f"token caps need both available_tokens and total_tokens; only {given} was given",
                                  value=given, fix="pass both (unique tokens per domain, and the run's total "
                                                   "tokens), or neither for no caps"))
    caps = available_tokens is not None and total_tokens is not None
    U = _as_vector(available_tokens, d, "available_tokens", np.inf) if caps else None
    if caps:
        assert U is not None and total_tokens is not None
        hi = np.minimum(hi, max_epochs * U / total_tokens)
        _check_bounds(lo, np.minimum(hi, 1.0))
    rng = np.random.default_rng(random_state)
    kept_W, kept_L = [], []
    n_feasible = 0
    for start in range(0, n_samples, batch_size):
        m = min(batch_size, n_samples - start)
        s = np.exp(rng.uniform(np.log(concentration[0]), np.log(concentration[1]), size=(m, 1)))
        W = rng.gamma(p[None, :] * s)
        W /= np.maximum(W.sum(axis=1, keepdims=True), 1e-300)
        W = W[np.all((W >= lo) & (W <= hi), axis=1) & np.all(np.isfinite(W), axis=1)]
        if not len(W):
            continue
        n_feasible += len(W)
        L = model.predict(_effective(W, U, total_tokens) if caps else W)
        keep = np.argsort(L)[:top_k]
        kept_W.append(W[keep])
        kept_L.append(L[keep])
    if n_feasible < top_k:
        raise DataError(explain("too few sampled mixtures meet the constraints", value=n_feasible,
                                allowed=f"at least top_k={top_k}",
                                fix="raise n_samples, loosen the bounds or token caps, or move the prior inside them"))
    Wk, Lk = np.concatenate(kept_W), np.concatenate(kept_L)
    best = np.argsort(Lk)[:top_k]
    w = Wk[best].mean(axis=0)
    x = _effective(w[None, :], U, total_tokens) if caps else w[None, :]
    lo_b, hi_b = model.predict_interval(x)
    epochs = w * total_tokens / U if caps and U is not None and total_tokens is not None else None
    return MixtureSearchResult(domains=list(model.domains_), weights=w, loss=float(model.predict(x)[0]),
                               loss_lo=float(lo_b[0]), loss_hi=float(hi_b[0]), level=model.level,
                               n_samples=n_samples, n_feasible=n_feasible, top_k=top_k, top_losses=Lk[best],
                               epochs=epochs)


def _effective(W: np.ndarray, U: np.ndarray | None, total_tokens: float | None) -> np.ndarray:
    """Weights of each domain's effective tokens when it is repeated beyond its unique tokens."""
    if U is None or total_tokens is None:
        return W
    eff = effective_data(np.maximum(W * total_tokens, 1e-12), U[None, :], R_D_STAR)
    return eff / eff.sum(axis=1, keepdims=True)
