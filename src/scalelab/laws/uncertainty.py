"""Uncertainty of fitted laws: bootstrap over runs, standard errors, percentile intervals for parameters
and derived quantities, and prediction intervals for the mean law and for a new run.

Bootstrap (Efron 1979; the procedure of Besiroglu et al. 2024 §3, 4,000 row resamples): each replicate
is a vector of multinomial counts over the runs, used as weights, so all replicates are refitted together
as rows of one batch by :func:`scalelab.laws.fitting.fit_batch` (each starting from the full-data
optimum). Replicates are split over ``n_jobs`` threads when there are enough of them to pay for it.

Without a bootstrap, intervals come from the asymptotic Gauss-Newton covariance
``s^2 (J^T W J)^-1`` in fitting space (``s^2`` = residual variance of log-loss), mapped to public units
(log-parameters get asymmetric intervals ``exp(theta +- z se)``). Hoffmann et al. 2022 Table 2 used
100 resamples of 80% of the data; Besiroglu et al. show that such narrow intervals need ~6e5 runs.
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import ConvergenceWarning, NotFittedError, explain
from .fitting import Objective, _scipy_polish, fit_batch, stationary_rows

__all__ = ["attach", "bootstrap", "draws", "percentile_interval", "prediction_interval"]

#: Number of parameter draws used for asymptotic (non-bootstrap) bands.
N_PARAMETRIC_DRAWS = 4000


def _rng(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def percentile_interval(samples: np.ndarray, level: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed percentile interval of ``samples`` along ``axis``, ignoring NaN."""
    q = 100 * (1 - level) / 2
    lo, hi = np.nanpercentile(samples, [q, 100 - q], axis=axis)
    return lo, hi


def bootstrap(law: Any, X: tuple[np.ndarray, ...], y: np.ndarray, w: np.ndarray | None, n: int,
              random_state: Any = None, n_jobs: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Refit ``law`` on ``n`` resamples of its runs; returns (theta draws (n, P), converged (n,)).

    The resample counts are drawn up front from one generator, so results do not depend on ``n_jobs``.
    """
    rng = _rng(random_state)
    m = y.size
    counts = rng.multinomial(m, np.full(m, 1.0 / m), size=n).astype(float)
    W = counts if w is None else counts * w[None, :]
    theta0 = np.repeat(np.asarray(law.theta_, dtype=float)[None], n, axis=0)
    obj = Objective(law.loss, float(law.delta), float(law.asymmetry))
    cls = type(law)
    prior = getattr(law, "_fit_prior", None)

    def run(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        th, _, conv, _ = fit_batch(cls, X, y, theta0[idx], w=W[idx], obj=obj, space=law.space,
                                   max_iter=max(int(law.max_iter), 100), prior=prior)
        # a refit counts as converged when the batched solver says so or its gradient is negligible;
        # the rest (slow IRLS tails on near-L1 Huber) are finished by scipy, whose result is checked
        if obj.kind != "asymmetric" and not conv.all():
            conv = conv | stationary_rows(cls, X, y, th, W[idx], obj, law.space, prior=prior)
        for j in np.flatnonzero(~conv):
            res = _scipy_polish(cls, X, y, th[j], W[idx][j], obj, law.space, prior)
            if np.isfinite(res.fun):
                th[j] = res.x
            conv[j] = bool(res.success) or (obj.kind != "asymmetric" and bool(
                stationary_rows(cls, X, y, th[j][None], W[idx][j], obj, law.space, prior=prior)[0]))
        return th, conv

    jobs = max(1, int(n_jobs or 1))
    if jobs == 1 or n < 64:
        return run(np.arange(n))
    chunks = np.array_split(np.arange(n), jobs)
    with ThreadPoolExecutor(max_workers=jobs) as ex:
        parts = list(ex.map(run, chunks))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _asymptotic_cov(law: Any, X: tuple[np.ndarray, ...], y: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    cls = type(law)
    f, J = cls._log_model(np.asarray(law.theta_)[None], X, jac=True)
    J = J[0].T  # (n, P)
    r = f[0] - np.log(y)
    ww = np.ones_like(y) if w is None else w
    P = J.shape[1]
    dof = max(float(ww.sum()) - P, 1.0)
    s2 = float(np.sum(ww * r * r)) / dof
    JTJ = (J * ww[:, None]).T @ J
    prior = getattr(law, "_fit_prior", None)
    if prior is not None and prior.width_prec is not None and s2 > 0:
        # a MAP fit: the Laplace approximation of the posterior, the prior counted at its own width
        JTJ, s2 = JTJ / s2 + np.diag(prior.width_prec), 1.0
    with np.errstate(all="ignore"):
        cond = np.linalg.cond(JTJ)
    if not np.isfinite(cond) or cond > 1e14:
        warnings.warn(explain(f"the {cls.name} fit's Gauss-Newton matrix is singular or nearly so "
                              f"(condition number {cond:.3g}); asymptotic standard errors are NaN",
                              fix="use n_bootstrap > 0 for intervals, or add runs that vary every covariate"),
                      ConvergenceWarning, stacklevel=4)
        return np.full((P, P), np.nan)
    return s2 * np.linalg.inv(JTJ)


def estimate(law: Any, X: tuple[np.ndarray, ...], y: np.ndarray, w: np.ndarray | None,
             fit_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The uncertainty of a freshly fitted law (``law.theta_`` set), as fields of its
    :class:`~scalelab.laws.result.FitResult`: ``cov_theta``, ``stderr``, ``intervals``, ``interval_method``,
    ``derived_intervals``, ``fit_info`` (``fit_info`` plus the bootstrap's convergence) and, when
    ``law.n_bootstrap > 0``, ``bootstrap_params``."""
    cls = type(law)
    names = cls.param_names
    level = float(law.level)
    info = dict(fit_info or {})
    out: dict[str, Any] = {"cov_theta": _asymptotic_cov(law, X, y, w)}
    B = int(law.n_bootstrap)
    sample: np.ndarray | None  # parameter draws (fitting space) behind the derived intervals
    if B > 0:
        thetas, conv = bootstrap(law, X, y, w, B, law.random_state, law.n_jobs)
        frac = float(conv.mean())
        info["bootstrap_converged_fraction"] = frac
        if frac < 0.9:
            msg = explain(f"only {frac:.0%} of the {B} bootstrap refits converged",
                          fix="raise max_iter, or check for parameters the data do not identify")
            info["warnings"] = [*info.get("warnings", []), msg]
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)
        pub = cls._from_theta(thetas)
        out["bootstrap_params"] = pub
        lo, hi = percentile_interval(pub, level)
        out["stderr"] = dict(zip(names, map(float, np.nanstd(pub, axis=0, ddof=1)), strict=True))
        out["intervals"] = {n: (float(lo[i]), float(hi[i])) for i, n in enumerate(names)}
        out["interval_method"] = f"bootstrap percentile, {B} refits over runs"
        sample = thetas
    else:
        cov = out["cov_theta"]
        se_t = np.sqrt(np.diag(cov))
        z = _z(level)
        th = np.asarray(law.theta_)
        lo_t, hi_t = th - z * se_t, th + z * se_t
        lo, hi = cls._from_theta(lo_t[None])[0], cls._from_theta(hi_t[None])[0]
        pub = cls._from_theta(th[None])[0]
        mask = cls._log_mask()
        se = np.where(mask, pub * se_t, se_t)  # delta method for exp()
        out["stderr"] = dict(zip(names, map(float, se), strict=True))
        out["intervals"] = {n: (float(lo[i]), float(hi[i])) for i, n in enumerate(names)}
        out["interval_method"] = "asymptotic (Gauss-Newton covariance, Wald in fitting space)"
        sample = _mvn_draws(law, cov=cov)
    derived_intervals: dict[str, tuple[float, float]] = {}
    if sample is not None and len(sample):
        p = cls._from_theta(sample)
        der = cls._derived({n: p[:, i] for i, n in enumerate(names)})
        for k, v in der.items():
            a, b = percentile_interval(np.asarray(v, dtype=float), level)
            derived_intervals[k] = (float(a), float(b))
    out["derived_intervals"] = derived_intervals
    out["fit_info"] = info
    return out


def attach(law: Any, X: tuple[np.ndarray, ...], y: np.ndarray, w: np.ndarray | None) -> None:
    """:func:`estimate`, folded into ``law.result_`` (a new result; the old one is left as it was)."""
    law.result_ = law.result_.replace(**estimate(law, X, y, w, law.result_.fit_info))


def _z(level: float) -> float:
    from statistics import NormalDist

    return float(NormalDist().inv_cdf(0.5 + level / 2))


def _mvn_draws(law: Any, n: int = N_PARAMETRIC_DRAWS, cov: np.ndarray | None = None) -> np.ndarray | None:
    """Draws from the asymptotic covariance (``cov``, else the law's ``cov_theta_``) around ``theta_``."""
    if cov is None:
        cov = getattr(law, "cov_theta_", None)
    if cov is None or not np.all(np.isfinite(cov)):
        return None
    rng = np.random.default_rng(_seed(law))
    try:
        L = np.linalg.cholesky(cov + 1e-300 * np.eye(cov.shape[0]))
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(cov)
        L = vecs * np.sqrt(np.clip(vals, 0, None))
    return np.asarray(law.theta_)[None] + rng.standard_normal((n, cov.shape[0])) @ L.T


def _seed(law: Any) -> int:
    rs = law.random_state
    return int(rs) if isinstance(rs, (int, np.integer)) else 0


def draws(law: Any) -> tuple[np.ndarray, str]:
    """Parameter draws in fitting space (m, P) that represent the law's uncertainty, and their kind.

    Bootstrap refits when present; else draws from the asymptotic covariance. Presets have neither
    (published standard errors come without covariances), so they raise :class:`NotFittedError`.
    """
    cls = type(law)
    bp = getattr(law, "bootstrap_params_", None)
    if bp is not None and len(bp):
        return cls._to_theta(np.asarray(bp)), "bootstrap"
    d = _mvn_draws(law)
    if d is not None:
        return d, "asymptotic"
    if getattr(law, "cov_theta_", None) is not None:
        # a fit whose Gauss-Newton matrix is singular (a parameter the runs do not identify, often E at 0)
        raise NotFittedError(explain(
            f"this {cls.__name__} fit has no usable parameter covariance: its Gauss-Newton matrix is "
            "singular (some parameter is not identified by the runs), so there are no asymptotic bands",
            value=(getattr(law, "quality_", None) or {}).get("issues") or None,
            fix="refit with n_bootstrap > 0 (e.g. 200) for bootstrap bands, add runs over a wider range, "
                "or use a law with fewer parameters"))
    # Published standard errors without their covariances are not used: the scale parameters and the
    # exponents are strongly correlated (A with alpha, B with beta), so independent draws give bands
    # that are orders of magnitude too wide.
    raise NotFittedError(explain(
        f"this {cls.__name__} carries no parameter covariance (presets publish at most standard errors, "
        "and independent draws ignore the strong correlation of A with alpha and B with beta)",
        fix="fit it to runs (with n_bootstrap > 0 for bootstrap bands), or use a preset that has them"))


def prediction_interval(law: Any, X: tuple[np.ndarray, ...], level: float,
                        kind: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Percentile band of the prediction at ``X`` over the parameter draws; ``kind="new"`` adds the
    fit's log residuals (a new run scatters around the law as the fitted runs did)."""
    th, _ = draws(law)
    f, _ = type(law)._log_model(th, X, jac=False)  # (m, n) log predictions
    if kind == "new":
        res = getattr(law, "residuals_", None)
        if res is None or len(res) == 0:
            raise NotFittedError(explain("a new-run interval needs the fit's residuals (not kept for presets)",
                                         fix="use kind='mean', or fit the law to runs"))
        rng = np.random.default_rng(_seed(law) + 1)
        m = f.shape[0]
        reps = max(1, math.ceil(4000 / m))
        f = np.repeat(f, reps, axis=0)
        # sorted: residuals_ follow the user's row order, and the band must not depend on it
        f = f + rng.choice(np.sort(np.asarray(res, dtype=float)), size=f.shape, replace=True)
    lo, hi = percentile_interval(np.exp(f), level)
    return lo, hi
