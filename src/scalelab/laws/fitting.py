"""Objectives and a fast multi-start fitter that any :class:`~scalelab.laws.base.ScalingLaw` can use.

Why not a scipy loop: Hoffmann et al. (2022, App. D.2) start L-BFGS from 4,500 grid points; a Python
loop of ``scipy.optimize.minimize`` over that grid on Epoch's 240 points takes minutes. Here every start
(and, in the bootstrap, every replicate) is one row of a batch: the law's log-prediction and Jacobian are
evaluated for all rows in one numpy call, and a damped Gauss-Newton step with iteratively reweighted
Huber weights (Levenberg-Marquardt on the IRLS majoriser) is solved for all rows at once. After a few
iterations only the most promising starts are kept; the best few are polished with
``scipy.optimize.minimize(method="L-BFGS-B")`` on the exact objective with the analytic gradient, and
every scipy result is checked (DESIGN.md principle 6).

Symbols: ``f`` = log prediction, ``r`` = residual (``f - log y`` in log space, ``exp(f) - y`` in linear
space), ``theta`` = parameters in fitting space (log of the law's ``log_params``).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, ConvergenceWarning, FitError, explain

__all__ = ["FitOutput", "Objective", "Prior", "fit_batch", "fit_starts", "goodness_of_fit", "resolve_init",
           "stationary_rows"]


@dataclass(frozen=True)
class Objective:
    """A robust loss on residuals: value ``rho``, derivative ``psi`` and IRLS weight ``psi / r``.

    ``huber``: ``rho = r^2/2`` for ``|r| <= delta`` else ``delta (|r| - delta/2)`` (Huber 1964; used on
    log-loss residuals by Hoffmann et al. 2022 App. D.2 with delta = 1e-3, **summed** over points as
    Besiroglu et al. 2024 §2 insist). ``ls``: ``r^2/2``. ``asymmetric``: ``c(r) |r|`` with ``c = asymmetry``
    for over-predictions (``r > 0``) and 1 otherwise, the lower-envelope loss of the ``chinchilla``
    package (``asymmetric_mae``, weight 10).
    """

    kind: str = "huber"
    delta: float = 1e-3
    asymmetry: float = 10.0

    def rho(self, r: np.ndarray) -> np.ndarray:
        a = np.abs(r)
        if self.kind == "huber":
            d = self.delta
            return np.where(a <= d, 0.5 * r * r, d * (a - 0.5 * d))
        if self.kind == "ls":
            return 0.5 * r * r
        if self.kind == "asymmetric":
            return np.where(r > 0, self.asymmetry, 1.0) * a
        raise ConfigError(explain("unknown loss", value=self.kind, allowed="huber, ls, asymmetric"))

    def psi(self, r: np.ndarray) -> np.ndarray:
        if self.kind == "huber":
            return np.clip(r, -self.delta, self.delta)
        if self.kind == "ls":
            return r
        return np.where(r > 0, self.asymmetry, -1.0) * (r != 0)

    def irls_weight(self, r: np.ndarray) -> np.ndarray:
        """``psi(r)/r``: the curvature of the quadratic that majorises ``rho`` at ``r``."""
        a = np.abs(r)
        if self.kind == "huber":
            return np.where(a <= self.delta, 1.0, self.delta / np.maximum(a, 1e-300))
        if self.kind == "ls":
            return np.ones_like(r)
        # absolute loss: |r| <= r^2/(2|r0|) + |r0|/2; floor |r0| so exact fits stay finite
        return np.where(r > 0, self.asymmetry, 1.0) / np.maximum(a, 1e-9)


@dataclass(frozen=True)
class Prior:
    """A Gaussian penalty in fitting space, ``0.5 * sum(prec * (theta - mu)^2)``, added to the objective
    (a maximum a posteriori fit). ``prec`` is 0 for parameters left free; ``mu`` and ``prec`` are (P,).
    ``width_prec`` (``1 / width^2``, the prior's own precision) joins the asymptotic covariance."""

    mu: np.ndarray
    prec: np.ndarray
    width_prec: np.ndarray | None = None

    def value(self, theta: np.ndarray) -> np.ndarray:
        d = theta - self.mu
        return 0.5 * np.sum(self.prec * d * d, axis=-1)

    def grad(self, theta: np.ndarray) -> np.ndarray:
        return self.prec * (theta - self.mu)


@dataclass
class FitOutput:
    """Best parameters (fitting space), their objective, and a record of how the fit went."""

    theta: np.ndarray
    objective: float
    info: dict[str, Any] = field(default_factory=dict)
    prior: Prior | None = None  # the penalty the objective includes, if any


def resolve_init(law_cls: Any, init: Any, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
    """Starting points in fitting space, shape (m, P), from the ``init`` option of a law."""
    P = len(law_cls.param_names)
    if isinstance(init, str):
        if init == "grid":
            pub = law_cls._init_grid(X, y)
        elif init == "coarse":
            pub = law_cls._coarse_grid(X, y)
        else:
            raise ConfigError(explain("unknown init", value=init, allowed="'grid', 'coarse', an array or a dict"))
        return law_cls._to_theta(np.asarray(pub, dtype=float))
    if isinstance(init, dict):
        missing = [n for n in law_cls.param_names if n not in init]
        if missing:
            raise ConfigError(explain("init dict lacks parameters", value=missing,
                                      allowed=", ".join(law_cls.param_names)))
        axes = [np.atleast_1d(np.asarray(init[n], dtype=float)) for n in law_cls.param_names]
        pub = np.array(np.meshgrid(*axes, indexing="ij")).reshape(P, -1).T
        return law_cls._to_theta(pub)
    arr = np.atleast_2d(np.asarray(init, dtype=float))
    if arr.shape[1] != P:
        raise ConfigError(explain("init array has the wrong number of columns", value=arr.shape,
                                  allowed=f"(m, {P}) in the order {law_cls.param_names}"))
    return law_cls._to_theta(arr)


def _residuals(f: np.ndarray, y: np.ndarray, space: str) -> tuple[np.ndarray, np.ndarray]:
    """Residuals r (k, n) and dr/df (k, n) for log or linear space."""
    if space == "log":
        return f - np.log(y), np.ones_like(f)
    with np.errstate(over="ignore"):
        p = np.exp(f)
    return p - y, p


def _objective(obj: Objective, r: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    rho = obj.rho(r)
    if w is not None:
        rho = rho * w
    out = rho.sum(axis=-1)
    return np.where(np.isfinite(out), out, np.inf)


def fit_batch(law_cls: Any, X: tuple[np.ndarray, ...], y: np.ndarray, theta0: np.ndarray, *,
              w: np.ndarray | None = None, obj: Objective = Objective(), space: str = "log",
              max_iter: int = 200, prune_after: int | None = None, keep: int | None = None,
              ftol: float = 1e-12, xtol: float = 1e-10,
              patience: int | None = None, prior: Prior | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Damped Gauss-Newton (Levenberg-Marquardt) on the IRLS majoriser, for many rows at once.

    Parameters
    ----------
    theta0 : (k, P) starting points (fitting space).
    w : (n,) or (k, n) weights per point (a bootstrap replicate is a row of multinomial counts).
    prune_after, keep : after ``prune_after`` iterations keep only the ``keep`` best rows (multi-start).
    patience : stop once the best objective over all rows has not improved (relative 1e-10) for this
        many iterations (multi-start: a local polish finishes the job).
    prior : a Gaussian penalty added to the objective (its gradient and curvature join the step's).

    Returns
    -------
    theta (k, P), objective (k,), converged (k,) bool, iterations used. Pruned rows keep their last
    values and ``converged = False``.
    """
    theta = np.array(theta0, dtype=float, copy=True)
    k, P = theta.shape
    lo, hi = law_cls._theta_bounds()
    theta = np.clip(theta, lo, hi)
    W = None if w is None else np.broadcast_to(np.asarray(w, dtype=float), (k, y.size))

    # In log space dr/df is 1 everywhere: it is left out (None) rather than multiplied in, the same numbers.
    log_space = space == "log"
    logy = np.log(y) if log_space else None

    def evaluate(th: np.ndarray, rows: np.ndarray, jac: bool) -> tuple[Any, Any, Any, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            f, J = law_cls._log_model(th, X, jac=jac)
            r, dr = (f - logy, None) if log_space else _residuals(f, y, space)
            val = _objective(obj, r, None if W is None else W[rows])
            if prior is not None:
                val = val + prior.value(th)
        return r, dr, J, val

    rows = np.arange(k)
    r, dr, J, val = evaluate(theta, rows, True)
    lam = np.full(k, 1e-3)
    converged = np.zeros(k, dtype=bool)
    active = np.isfinite(val)
    it = 0
    eye = np.eye(P)
    A_idx = np.flatnonzero(active)
    cr, cdr, cJ = r[A_idx], None if dr is None else dr[A_idx], J[A_idx]
    best_seen, since_best = float(np.min(val)), 0
    for it in range(1, max_iter + 1):
        if A_idx.size == 0:
            break
        Wa = None if W is None else W[A_idx]
        with np.errstate(over="ignore", invalid="ignore"):
            w_ir = obj.irls_weight(cr)  # psi(r) = w_ir * r for every objective here
            psi = w_ir * cr if cdr is None else w_ir * cr * cdr
            om = w_ir if cdr is None else w_ir * cdr * cdr
            if Wa is not None:
                psi = psi * Wa
                om = om * Wa
            # J is (k, P, n): g = J psi, H = J diag(om) J^T, one small BLAS call per row
            g = np.matmul(cJ, psi[:, :, None])[:, :, 0]
            H = np.matmul(cJ * om[:, None, :], np.swapaxes(cJ, 1, 2))
        H = np.where(np.isfinite(H), H, 0.0)
        g = np.where(np.isfinite(g), g, 0.0)
        if prior is not None:
            g = g + prior.grad(theta[A_idx])
            H = H + np.diag(prior.prec)
        diag = np.einsum("kpp->kp", H)
        scale = np.maximum(diag, 1e-12 * (1 + diag.max(axis=1, keepdims=True)))
        la = lam[A_idx]
        M = H + (la[:, None] * scale)[:, :, None] * eye
        try:
            step = -np.linalg.solve(M, g[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = -g / (la[:, None] * scale + 1e-12)
        step = np.where(np.isfinite(step), step, 0.0)
        old = theta[A_idx]
        new = np.clip(old + step, lo, hi)
        # Large batches (early multi-start iterations) accept most steps, and a cheap Jacobian costs less
        # than evaluating the accepted rows again: evaluate it with the trial point. Otherwise, and in the
        # iteration that prunes, evaluate it only for the accepted rows that go on. (The model is evaluated
        # row by row, so a row's values do not depend on the batch it is in.)
        pruning = prune_after is not None and keep is not None and it == prune_after and A_idx.size > keep
        eager = (A_idx.size > 500 or bool(getattr(law_cls, "cheap_jacobian", False))) and not pruning
        nr, ndr, nJ, nval = evaluate(new, A_idx, eager)
        ov = val[A_idx]
        acc = nval <= ov
        # accept
        ai = A_idx[acc]
        theta[ai] = new[acc]
        val[ai] = nval[acc]
        lam[ai] = np.maximum(lam[ai] / 3.0, 1e-12)
        lam[A_idx[~acc]] = lam[A_idx[~acc]] * 4.0
        cr = _take_accepted(cr, nr, acc)
        cdr = None if cdr is None else _take_accepted(cdr, ndr, acc)
        if eager:
            cJ = _take_accepted(cJ, nJ, acc)
        dx = np.max(np.abs(new - old), axis=1)
        small = acc & ((ov - nval) <= ftol * (1.0 + np.abs(ov))) & (dx <= xtol * 1e4 + 1e-6)
        stuck = lam[A_idx] > 1e10
        done = small | stuck | (acc & (dx <= xtol))
        converged[A_idx[done]] = True
        keep_mask = ~done
        if pruning:
            # keep the best rows still running (converged rows are kept as they are)
            order = np.argsort(val[A_idx])
            best = np.zeros(A_idx.size, dtype=bool)
            best[order[:keep]] = True
            keep_mask &= best
        if not eager and (acc & keep_mask).any():
            grow = acc & keep_mask
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                cJ[grow] = law_cls._log_model(new[grow], X, jac=True)[1]
        if not keep_mask.all():
            A_idx, cr, cJ = A_idx[keep_mask], cr[keep_mask], cJ[keep_mask]
            cdr = None if cdr is None else cdr[keep_mask]
        if patience is not None:
            cur = float(np.min(val))
            if cur < best_seen - 1e-10 * abs(best_seen):
                best_seen, since_best = cur, 0
            else:
                since_best += 1
                if since_best >= patience and (prune_after is None or it > prune_after):
                    break
    return theta, val, converged, it


def _take_accepted(cur: np.ndarray, trial: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """``cur`` with the accepted rows replaced by ``trial``'s: copies the fewer of the two row sets (a large
    multi-start batch accepts most of its steps, and its Jacobians are tens of megabytes)."""
    if acc.all():
        return trial
    if 2 * int(acc.sum()) > acc.size and trial.flags.writeable:
        trial[~acc] = cur[~acc]
        return trial
    cur[acc] = trial[acc]
    return cur


def _value_and_grad(law_cls: Any, X: tuple[np.ndarray, ...], y: np.ndarray, th: np.ndarray,
                    w: np.ndarray | None, obj: Objective, space: str,
                    prior: Prior | None = None) -> tuple[float, np.ndarray]:
    """The summed objective at ``th`` (fitting space) and its gradient."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        f, J = law_cls._log_model(th[None], X, jac=True)
        r, dr = _residuals(f, y, space)
        rho = obj.rho(r)
        psi = obj.psi(r) * dr
        if w is not None:
            rho, psi = rho * w, psi * w
        val = float(rho.sum())
        g = np.matmul(J, psi[:, :, None])[0, :, 0]
        if prior is not None:
            val += float(prior.value(th))
            g = g + prior.grad(th)
    if not np.isfinite(val):
        return 1e300, np.zeros_like(th)
    return val, np.where(np.isfinite(g), g, 0.0)


def stationary_rows(law_cls: Any, X: tuple[np.ndarray, ...], y: np.ndarray, theta: np.ndarray,
                    w: np.ndarray | None, obj: Objective, space: str, rtol: float = 1e-5,
                    prior: Prior | None = None) -> np.ndarray:
    """Rows of ``theta`` (k, P) where the parameter-scaled gradient is below ``rtol`` x the objective."""
    k = theta.shape[0]
    W = None if w is None else np.broadcast_to(np.asarray(w, dtype=float), (k, y.size))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        f, J = law_cls._log_model(theta, X, jac=True)
        r, dr = _residuals(f, y, space)
        rho, psi = obj.rho(r), obj.psi(r) * dr
        if W is not None:
            rho, psi = rho * W, psi * W
        val = rho.sum(axis=1)
        g = np.matmul(J, psi[:, :, None])[:, :, 0]
        if prior is not None:
            val = val + prior.value(theta)
            g = g + prior.grad(theta)
    # projected gradient: at a bound, only the component pointing inside counts
    lo, hi = law_cls._theta_bounds()
    g = np.where((theta <= lo + 1e-9) & (g > 0), 0.0, g)
    g = np.where((theta >= hi - 1e-9) & (g < 0), 0.0, g)
    scaled = np.max(np.abs(g) * np.maximum(1.0, np.abs(theta)), axis=1)
    return np.isfinite(val) & (scaled <= rtol * np.maximum(np.abs(val), 1e-12))


def _scipy_polish(law_cls: Any, X: tuple[np.ndarray, ...], y: np.ndarray, theta0: np.ndarray,
                  w: np.ndarray | None, obj: Objective, space: str, prior: Prior | None = None) -> Any:
    from scipy.optimize import minimize

    lo, hi = law_cls._theta_bounds()
    bounds = [(None if not np.isfinite(a) else a, None if not np.isfinite(b) else b)
              for a, b in zip(lo, hi, strict=True)]

    def fun(th: np.ndarray) -> tuple[float, np.ndarray]:
        return _value_and_grad(law_cls, X, y, th, w, obj, space, prior)

    if obj.kind == "asymmetric":
        # the absolute loss has kinks at every data point: quasi-Newton line searches stall there, so the
        # polish is derivative-free (Powell's method handles bounds since scipy 1.5)
        return minimize(lambda th: fun(th)[0], theta0, method="Powell", bounds=bounds,
                        options={"maxiter": 20000, "xtol": 1e-10, "ftol": 1e-14})
    return minimize(fun, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                    options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10})


def fit_starts(law_cls: Any, X: tuple[np.ndarray, ...], y: np.ndarray, starts: np.ndarray, *,
               w: np.ndarray | None = None, loss: str = "huber", delta: float = 1e-3, space: str = "log",
               asymmetry: float = 10.0, max_iter: int = 200, n_polish: int = 3,
               keep_fraction: float = 0.01, prune_after: int = 2, patience: int = 5,
               warn: bool = True, prior: Prior | Callable[[float], Prior] | None = None) -> FitOutput:
    """Multi-start fit: batched LM over all ``starts``, then L-BFGS-B polish of the best ``n_polish``.

    Every scipy result is checked: a failed polish warns with :class:`ConvergenceWarning` (and the
    solver's message) unless the batched solver had already converged to an equal or lower objective;
    a parameter at a finite bound also warns, with the remedy.

    ``prior`` adds a Gaussian penalty to the objective (a MAP fit). Given as a function of the unpenalised
    objective's best value (its scale sets the penalty's weight), the starts are first run without it; the
    64 best rows (those kept after pruning, for the 4,500-point grid) then go on with the penalty, so it
    costs one multi-start, not two.
    """
    t0 = time.perf_counter()
    obj = Objective(loss, float(delta), float(asymmetry))
    k = starts.shape[0]
    # small grids run every start to the end; large ones keep the best rows after a few iterations
    keep = k if k <= 500 else max(64, math.ceil(keep_fraction * k))
    theta, val, conv, iters = fit_batch(law_cls, X, y, starts, w=w, obj=obj, space=space, max_iter=max_iter,
                                        prune_after=prune_after if k > keep else None, keep=keep,
                                        patience=patience, prior=prior if isinstance(prior, Prior) else None)
    finite = np.flatnonzero(np.isfinite(val))
    if finite.size == 0:
        raise FitError(explain(f"every one of the {k} starts of {law_cls.name} gave a non-finite objective",
                               fix="check the data (units, loss column) or pass init= with sensible values"))
    if callable(prior):
        prior = prior(float(np.min(val[finite])))
        top = finite[np.argsort(val[finite])][:min(keep, 64)]
        theta, val, conv, more = fit_batch(law_cls, X, y, theta[top], w=w, obj=obj, space=space,
                                           max_iter=max_iter, patience=patience, prior=prior)
        iters += more
        finite = np.flatnonzero(np.isfinite(val))
    order = finite[np.argsort(val[finite])]
    # distinct candidates for polishing
    cands: list[int] = []
    v0 = float(val[order[0]])
    for i in order:
        # other local minima are polished only when they are nearly as good as the best one
        if cands and val[i] > v0 + 1e-3 * abs(v0) + 1e-12:
            break
        if all(np.max(np.abs(theta[i] - theta[j])) > 1e-4 for j in cands):
            cands.append(int(i))
        if len(cands) >= n_polish:
            break
    best_theta, best_val, best_src = theta[order[0]].copy(), float(val[order[0]]), "batched"
    lm_converged = bool(conv[order[0]])
    notes: list[str] = []
    scipy_records: list[dict[str, Any]] = []
    for i in cands:
        res = _scipy_polish(law_cls, X, y, theta[i], w, obj, space, prior)
        scipy_records.append({"method": "Powell" if obj.kind == "asymmetric" else "L-BFGS-B",
                              "success": bool(res.success), "message": str(res.message), "fun": float(res.fun),
                              "nit": int(getattr(res, "nit", 0))})
        if np.isfinite(res.fun) and res.fun < best_val - 1e-15 * max(1.0, abs(best_val)):
            best_theta, best_val, best_src = np.asarray(res.x, dtype=float), float(res.fun), scipy_records[-1]["method"]
    # First-order check at the answer: the gradient, scaled by the parameters, is negligible next to the
    # objective (the smooth objectives; the asymmetric one has kinks, where Powell's own status counts).
    fval, grad = _value_and_grad(law_cls, X, y, best_theta, w, obj, space, prior)
    scaled = float(np.max(np.abs(grad) * np.maximum(1.0, np.abs(best_theta))))
    stationary = obj.kind != "asymmetric" and scaled <= 1e-5 * max(abs(fval), 1e-12)
    best_rec = scipy_records[0] if scipy_records else None
    if best_rec is not None and not best_rec["success"] and not (lm_converged or stationary):
        # L-BFGS-B often stops with ABNORMAL_TERMINATION_IN_LNSRCH once the objective cannot decrease in
        # floating point; that is only a problem when the gradient is not negligible there. When it is
        # negligible the status stays in info["scipy"] and nothing is reported: there is nothing to fix.
        msg = explain(f"{best_rec['method']} did not report success when polishing the {law_cls.name} fit: "
                      f"{best_rec['message']}",
                      fix="raise max_iter, try another objective or init grid, and compare objectives")
        notes.append(msg)
        if warn:
            warnings.warn(msg, ConvergenceWarning, stacklevel=4)
    lo, hi = law_cls._theta_bounds()
    # within 1% of a bound for log-parameters (a ratio), 1e-6 relative otherwise
    tol = np.where(law_cls._log_mask(), 0.01, 1e-6 * np.maximum(1.0, np.abs(np.where(np.isfinite(lo), lo, 0))))
    at_bound = [law_cls.param_names[j] for j in range(len(lo))
                if (np.isfinite(lo[j]) and best_theta[j] - lo[j] < tol[j])
                or (np.isfinite(hi[j]) and hi[j] - best_theta[j] < tol[j])]
    if at_bound:
        msg = explain(f"{law_cls.name} fit ended on the bound of {', '.join(at_bound)}",
                      value={n: float(law_cls._from_theta(best_theta[None])[0][law_cls.param_names.index(n)])
                             for n in at_bound},
                      fix="the data may not identify this parameter: add runs over a wider range, fix it, "
                          "or use a law with fewer parameters")
        notes.append(msg)
        if warn:
            warnings.warn(msg, ConvergenceWarning, stacklevel=4)
    info = {
        "n_starts": int(k),
        "n_kept_after_pruning": int(min(k, keep)),
        "iterations": int(iters),
        "batched_converged": lm_converged,
        "scaled_gradient": scaled,
        "stationary": bool(stationary),
        "best_from": best_src,
        "scipy": scipy_records,
        "warnings": notes,
        "time_s": time.perf_counter() - t0,
    }
    return FitOutput(theta=best_theta, objective=best_val, info=info, prior=prior)


def goodness_of_fit(y: np.ndarray, pred: np.ndarray, n_params: int, objective: float) -> dict[str, float]:
    """Summary statistics: R^2 on loss and on log-loss, RMSE of log residuals, MAE, max relative error."""
    ly, lp = np.log(y), np.log(pred)
    res = ly - lp
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    ss_tot_lin = float(np.sum((y - y.mean()) ** 2))
    n = y.size
    return {
        "n": int(n),
        "r2": 1 - float(np.sum((y - pred) ** 2)) / ss_tot_lin if ss_tot_lin > 0 else float("nan"),
        "r2_log": 1 - float(np.sum(res**2)) / ss_tot if ss_tot > 0 else float("nan"),
        "rmse_log": float(np.sqrt(np.mean(res**2))),
        "sigma_log": float(np.sqrt(np.sum(res**2) / max(n - n_params, 1))),
        "mae": float(np.mean(np.abs(y - pred))),
        "max_rel_err": float(np.max(np.abs(pred / y - 1))),
        "objective": float(objective),
    }
