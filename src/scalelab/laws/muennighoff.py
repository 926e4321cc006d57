"""Muennighoff et al. 2023, "Scaling Data-Constrained Language Models" (arXiv:2305.16264; code and runs:
github.com/huggingface/datablations).

Legend (symbols and units used in this module):

==============  ======================================================================================
``N``           parameters (the paper's count, as Chinchilla: total)
``D``           training tokens seen (all epochs)
``U``, ``U_D``  unique tokens (one epoch of data); ``U_D = min(U, D)``
``R_D``         repetitions of the data, ``R_D = D / U_D - 1`` (epochs - 1)
``U_N``         compute-optimal parameters for ``U_D`` tokens (Chinchilla frontier), ``min(N, N_opt(U_D))``
``R_N``         excess parameters, ``R_N = max(N / U_N - 1, 0)``
``R_D_star``    decay constant of the value of repeated tokens (repetitions; ≈ 15.4 on C4)
``R_N_star``    decay constant of the value of excess parameters (≈ 5.3 on C4)
``D', N'``      effective data and parameters (tokens; parameters)
``L``           final validation loss on held-out C4, nats/token
``E, A, B, alpha, beta``  the Chinchilla-form base law (nats/token; exponents dimensionless)
==============  ======================================================================================

Form (§3.1, eq. 5-7 and App. A eq. 17)::

    D' = U_D + U_D R_D_star (1 - exp(-R_D / R_D_star))
    N' = U_N + U_N R_N_star (1 - exp(-R_N / R_N_star))
    L(N, D, U) = E + A / N'^alpha + B / D'^beta

with ``U_N = min(N, G (G U_D)^(beta/alpha))``, ``G = (alpha A / (beta B))^(1/(alpha+beta))`` (the paper's
``U_N`` is the Chinchilla-optimal size whose optimal data is ``U_D``; 0.051 ``U_D`` with the C4 base).

Fit (App. A): two stages. (1) The base ``E, A, B, alpha, beta`` on single-epoch runs (the paper: 54
Chinchilla C4 isoFLOP points, ``alpha`` tied to ``beta``, Huber delta 1e-3 on the log-sum-exp form vs log
loss, L-BFGS from a grid). (2) With the base fixed, ``R_D_star`` and ``R_N_star`` by the same objective on
the repeated-data runs (182 runs, 7M-9B parameters, 1-500 epochs, outliers where loss rises removed),
from the grid ``R_N_star, R_D_star in {0, 4, ..., 20}``. :class:`MuennighoffLaw` does both; pass ``base``
to fix stage 1 (the paper's base is the preset ``"muennighoff2023"``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar, Self

import numpy as np

from ..errors import ConfigError, ConvergenceWarning, DataError, FitError, explain
from .base import ScalingLaw, keeps_previous_fit, log_sum_exp
from .result import data_hash as _data_hash

__all__ = ["MuennighoffLaw", "effective_data", "effective_params", "optimal_params_for_tokens"]

_BASE_NAMES = ("E", "A", "B", "alpha", "beta")


def effective_data(D: Any, U: Any, R_D_star: float) -> np.ndarray:
    """``D' = U_D + U_D R_D_star (1 - exp(-R_D/R_D_star))`` with ``U_D = min(U, D)``, ``R_D = D/U_D - 1``
    (Muennighoff et al. 2023 eq. 5). Tokens in, tokens out.

    Examples
    --------
    >>> round(float(effective_data(4e9, 1e9, 15.387756) / 4e9), 3)     # 4 epochs: 93% as good as fresh
    0.931
    """
    D, U = np.asarray(D, dtype=float), np.asarray(U, dtype=float)
    Ud = np.minimum(U, D)
    Rd = D / Ud - 1
    return Ud + Ud * R_D_star * (1 - np.exp(-Rd / R_D_star))


def effective_params(N: Any, U_N: Any, R_N_star: float) -> np.ndarray:
    """``N' = U_N + U_N R_N_star (1 - exp(-R_N/R_N_star))``, ``R_N = max(N/U_N - 1, 0)`` (eq. 6)."""
    N, Un = np.asarray(N, dtype=float), np.asarray(U_N, dtype=float)
    Un = np.minimum(Un, N)
    Rn = np.maximum(N / Un - 1, 0.0)
    return Un + Un * R_N_star * (1 - np.exp(-Rn / R_N_star))


def optimal_params_for_tokens(U: Any, A: float | np.ndarray, B: float | np.ndarray, alpha: float | np.ndarray,
                              beta: float | np.ndarray) -> np.ndarray:
    """Chinchilla-optimal parameters whose optimal data is ``U`` tokens: ``G (G U)^(beta/alpha)``
    (from Hoffmann et al. 2022 eq. 4; the ``U_N`` of Muennighoff et al. 2023 §3.1)."""
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    return G * (G * np.asarray(U, dtype=float)) ** (beta / alpha)


class MuennighoffLaw(ScalingLaw):
    """Data-constrained law ``L(N, D, U) = E + A/N'^alpha + B/D'^beta`` (Muennighoff et al. 2023 eq. 7).

    Parameters
    ----------
    base : None, str or dict
        Stage 1. ``None`` (default): fit ``E, A, B, alpha, beta`` on the single-epoch runs
        (``D <= U``) of the data given to ``fit``. A preset name (``"muennighoff2023"``) or a dict with
        ``E, A, B, alpha, beta``: keep that base fixed and fit only ``R_D_star, R_N_star`` (the paper's
        stage 2). Intervals of the decay constants are then conditional on the base.
        Stage 1 assumes its runs carry no excess parameters (``N <= U_N``, about 20 or more tokens per
        parameter), as the paper's stage-1 points (Chinchilla's isoFLOP runs) do; larger models on one
        epoch bias the base. Drop them, or fix the base.
    tie_exponents : bool
        Stage 1 with ``alpha = beta`` (the paper's C4 fit, App. A). Default True.
    stage2 : {"global", "paper"}
        How stage 2 searches. ``"global"`` (default): scalelab's batched multi-start fitter in log
        parameters, which finds the lowest objective. ``"paper"``: the paper's procedure, L-BFGS-B on the
        constants themselves from the grid ``{0, 4, ..., 20}^2`` (0 replaced by 0.5), best start kept. On the
        paper's own 182 runs the two disagree: ``"paper"`` reproduces 15.39 / 5.31, while ``"global"`` finds
        a lower objective near ``R_D* ≈ 47, R_N* ≈ 2.3`` (the objective is flat along that valley and
        L-BFGS stops early on Huber's small gradients); its wide interval on ``R_D*`` says how little the
        runs pin it down. Bootstrap refits (``n_bootstrap > 0``) always use the batched solver, so with
        ``"paper"`` they describe the objective's spread, not the paper's early stopping.
    **options
        As :class:`~scalelab.laws.base.ScalingLaw` (objective Huber delta 1e-3 on log-loss, summed).

    Examples
    --------
    >>> law = MuennighoffLaw.preset("muennighoff2023")
    >>> round(float(law.predict(6.34e9, 242e9, 25e9)), 4)        # datablations README example
    2.2256
    """

    name = "muennighoff"
    citation = "Muennighoff et al. 2023, Scaling Data-Constrained Language Models, eq. 5-7, App. A"
    equation = ("L(N, D, U) = E + A / N'^alpha + B / D'^beta;  D' = U_D + U_D R_D* (1 - e^(-R_D/R_D*)), "
                "N' = U_N + U_N R_N* (1 - e^(-R_N/R_N*))")
    covariates = ("N", "D", "U")
    covariate_units: ClassVar[dict[str, str]] = {
        "N": "parameters", "D": "training tokens seen (all epochs)", "U": "unique tokens",
    }
    param_names = ("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star")
    param_units: ClassVar[dict[str, str]] = {
        "E": "nats/token", "A": "nats/token * params^alpha", "B": "nats/token * tokens^beta", "alpha": "1",
        "beta": "1", "R_D_star": "repetitions", "R_N_star": "parameter multiples",
    }
    log_params = ("E", "A", "B", "R_D_star", "R_N_star")
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "E": (1e-6, 1e4), "A": (1e-10, 1e30), "B": (1e-10, 1e30), "alpha": (0.0, 5.0), "beta": (0.0, 5.0),
        "R_D_star": (1e-3, 1e5), "R_N_star": (1e-3, 1e5),
    }
    conventions: ClassVar[dict[str, str]] = {"N": "parameters as Chinchilla (total)", "D": "tokens seen, all epochs",
                   "U": "unique tokens", "objective": "Huber on log-loss, summed (delta 1e-3), two stages"}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "muennighoff2023": {
            # a, b, e, alpha(=beta), R_D*, R_N* exactly as the notebook prints them (cells 7/15/29).
            "params": {"E": math.exp(0.6254804), "A": math.exp(6.255414), "B": math.exp(7.3049974),
                       "alpha": 0.3526596, "beta": 0.3526596, "R_D_star": 15.387756, "R_N_star": 5.309743},
            "source": ("Muennighoff et al. 2023 App. A (C4 base on 54 Chinchilla isoFLOP points, alpha = beta; "
                       "decay constants on 182 runs); datablations utils/parametric_fit.ipynb @13701315"),
            "range": {"N": (7.1e6, 8.67e9), "D": (1e8, 9e11), "U": (1e8, 1.78e11)},
        },
    }
    _example_params: ClassVar[dict[str, float]] = {"E": 1.87, "A": 520.0, "B": 1490.0, "alpha": 0.353, "beta": 0.353,
                       "R_D_star": 15.0, "R_N_star": 5.0}
    _example_noise = 0.002
    _example_n = 120
    min_distinct: ClassVar[dict[str, int]] = {"N": 3, "D": 3, "U": 2}

    def __init__(self, *, base: Any = None, tie_exponents: bool = True, stage2: str = "global",
                 loss: str = "huber", delta: float = 1e-3,
                 space: str = "log", asymmetry: float = 10.0, init: Any = "grid", n_bootstrap: int = 0,
                 level: float = 0.95, random_state: Any = None, extrapolation_factor: float = 10.0,
                 max_iter: int = 200, n_jobs: int = 1) -> None:
        self.base = base
        self.tie_exponents = tie_exponents
        self.stage2 = stage2
        super().__init__(loss=loss, delta=delta, space=space, asymmetry=asymmetry, init=init,
                         n_bootstrap=n_bootstrap, level=level, random_state=random_state,
                         extrapolation_factor=extrapolation_factor, max_iter=max_iter, n_jobs=n_jobs)

    # ---------------------------------------------------------------- form
    @classmethod
    def _log_form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        N, D, U = X
        E, A, B, al, be = (p[k] for k in _BASE_NAMES)
        rd, rn = p["R_D_star"], p["R_N_star"]
        with np.errstate(all="ignore"):
            Ud = np.minimum(U, D)
            Rd = D / Ud - 1
            Dp = Ud + Ud * rd * (-np.expm1(-Rd / rd))
            Un = np.minimum(N, optimal_params_for_tokens(Ud, A, B, al, be))
            Rn = np.maximum(N / Un - 1, 0.0)
            Np = Un + Un * rn * (-np.expm1(-Rn / rn))
            t = np.stack(np.broadcast_arrays(np.log(A) - al * np.log(Np), np.log(B) - be * np.log(Dp), np.log(E)))
            return log_sum_exp(t)[0]

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        base = cls._example_params
        rows = [[base["E"], base["A"], base["B"], base["alpha"], base["beta"], rd, rn]
                for rd in (1.0, 5.0, 15.0, 40.0) for rn in (1.0, 5.0, 15.0)]
        return np.array(rows)

    @classmethod
    def _derived(cls, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # D' <= (1 + R_D*) U_D and N' <= (1 + R_N*) U_N: the most repeated data / excess parameters can buy.
        return {"max_data_multiple": 1 + p["R_D_star"], "max_param_multiple": 1 + p["R_N_star"]}

    @classmethod
    def _example_data(cls, rng: np.random.Generator,
                      n: int | None = None) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        n = n or cls._example_n
        N = np.exp(rng.uniform(math.log(1e7), math.log(9e9), n))
        U = np.exp(rng.uniform(math.log(1e8), math.log(1e11), n))
        epochs = np.exp(rng.uniform(0.0, math.log(60.0), n))
        # single-epoch runs for stage 1, at or below the compute-optimal size (no excess parameters), as the
        # paper's stage-1 points (Chinchilla's isoFLOP runs) are
        k = n // 3
        epochs[:k] = 1.0
        N[:k] = U[:k] / np.exp(rng.uniform(math.log(20.0), math.log(200.0), k))
        D = U * epochs
        pub = np.array([[cls._example_params[k] for k in cls.param_names]])
        y = np.exp(cls._log_form(cls._pdict(pub), (N, D, U))[0] + cls._example_noise * rng.standard_normal(n))
        return (N, D, U), y

    # ---------------------------------------------------------------- fit
    def _resolve_base(self) -> dict[str, float] | None:
        b = self.base
        if b is None:
            return None
        if isinstance(b, str):
            if b not in self.presets:
                raise ConfigError(explain("unknown base preset", value=b, allowed=", ".join(self.presets),
                                          fix="pass a preset name, a dict of E, A, B, alpha, beta, or None"))
            return {k: float(self.presets[b]["params"][k]) for k in _BASE_NAMES}
        if isinstance(b, dict):
            missing = [k for k in _BASE_NAMES if k not in b]
            if missing:
                raise ConfigError(explain("base dict lacks parameters", value=missing,
                                          allowed="E, A, B, alpha, beta"))
            vals = {k: float(b[k]) for k in _BASE_NAMES}
            if any(not math.isfinite(v) or v <= 0 for v in vals.values()):
                raise ConfigError(explain("base parameters must be positive and finite", value=vals))
            return vals
        raise ConfigError(explain("base must be None, a preset name or a dict", value=type(b).__name__))

    def _fit_base(self, X: tuple[np.ndarray, ...], y: np.ndarray, w: np.ndarray | None) -> tuple[dict, Any]:
        """Stage 1 on the single-epoch runs; returns the base and the fitted stage-1 law."""
        from .chinchilla import ChinchillaLaw

        N, D, U = X
        single = D <= U * (1 + 1e-9)
        idx = np.flatnonzero(single)
        if idx.size < 6 or np.unique(N[idx]).size < 2 or np.unique(D[idx]).size < 2:
            raise DataError(explain(
                f"stage 1 of {self.name} needs single-epoch runs (D <= U) at several N and D to fit the base law",
                value=f"{idx.size} single-epoch run(s), {np.unique(N[idx]).size} distinct N",
                fix="add one-epoch runs, or pass base='muennighoff2023' (or a dict E, A, B, alpha, beta) "
                    "to keep a published base fixed"))
        Xs = (N[idx], D[idx])
        ws = None if w is None else w[idx]
        opts: dict[str, Any] = dict(loss=self.loss, delta=self.delta, space=self.space, asymmetry=self.asymmetry,
                                    max_iter=self.max_iter, level=self.level)
        law: ScalingLaw
        if self.tie_exponents:
            law = _TiedChinchilla(**opts).fit(*Xs, y[idx], sample_weight=ws, duplicates="keep")
            p = dict(law.params_)
            base = {"E": p["E"], "A": p["A"], "B": p["B"], "alpha": p["alpha"], "beta": p["alpha"]}
        else:
            law = ChinchillaLaw(**opts).fit(*Xs, y[idx], sample_weight=ws, duplicates="keep")
            base = {k: float(law.params_[k]) for k in _BASE_NAMES}
        return base, law

    def _check_design(self, X: tuple[np.ndarray, ...], y: np.ndarray) -> None:
        """Unique tokens above the tokens seen (less than one epoch) is an error at fit time: in run tables
        it is almost always the two token columns swapped (SLD's copy of these runs has them swapped),
        and the law would silently read it as single-epoch data."""
        super()._check_design(X, y)
        _, D, U = X
        bad = np.flatnonzero(U > D * (1 + 1e-9))
        if bad.size:
            from .validation import _rows

            raise DataError(explain(
                f"unique tokens U exceed the tokens seen D (epochs D/U below 1) at rows {_rows(bad)}",
                value=[f"U={U[i]:.3g}, D={D[i]:.3g}" for i in bad[:3]],
                allowed="U <= D: every run sees its unique tokens at least once",
                fix="check which column holds unique tokens and which the tokens seen (all epochs); they "
                    "may be swapped: map them with --col U=<unique> --d <seen> or u=..., d=..."))

    def _joint_cov(self, stage1: ScalingLaw | None, cov2: np.ndarray) -> np.ndarray:
        """Covariance in fitting space of all seven parameters: stage 1's block for the base (zero for a
        fixed base), stage 2's for the decay constants (conditional on the base)."""
        P = len(self.param_names)
        cov = np.zeros((P, P))
        if stage1 is not None and getattr(stage1, "cov_theta_", None) is not None:
            c1 = np.asarray(stage1.cov_theta_)
            m = {"E": 0, "A": 1, "B": 2, "alpha": 3, "beta": 3 if self.tie_exponents else 4}
            for i, ni in enumerate(_BASE_NAMES):
                for j, nj in enumerate(_BASE_NAMES):
                    cov[i, j] = c1[m[ni], m[nj]] if c1.shape[0] > max(m.values()) else np.nan
        cov[5:, 5:] = cov2
        return cov

    @keeps_previous_fit
    def fit(self, *X: Any, y: Any = None, sample_weight: Any = None, duplicates: str = "error",
            **columns: Any) -> Self:
        """Two-stage fit (Muennighoff et al. 2023 App. A); returns ``self``.

        Stage 1 fits (or takes, see ``base``) the Chinchilla-form base; stage 2 fits ``R_D_star`` and
        ``R_N_star`` with the base fixed, on every run, from the paper's grid of starts.
        """
        from . import fitting, uncertainty

        Xa, ya, w = self._prepare_fit(X, y, sample_weight, duplicates, columns)  # in canonical row order
        fixed = self._resolve_base()
        stage1 = None
        if fixed is None:
            base, stage1 = self._fit_base(Xa, ya, w)
        else:
            base = fixed
        S2 = _stage2_class(base)
        if isinstance(self.init, str):
            # the paper's grid {0, 4, ..., 20} for both constants (0 -> 0.5: the decay needs R* > 0)
            g = [0.5, 4.0, 8.0, 12.0, 16.0, 20.0]
            starts = S2._to_theta(np.array([[rd, rn] for rd in g for rn in g]))
        else:
            starts = fitting.resolve_init(S2, self.init, Xa, ya)
        if self.stage2 == "global":
            res = fitting.fit_starts(S2, Xa, ya, starts, w=w, loss=self.loss, delta=self.delta, space=self.space,
                                     asymmetry=self.asymmetry, max_iter=self.max_iter)
        elif self.stage2 == "paper":
            res = _paper_stage2(S2, Xa, ya, starts, w, fitting.Objective(self.loss, float(self.delta),
                                                                          float(self.asymmetry)), self.space)
        else:
            raise ConfigError(explain("unknown stage2 search", value=self.stage2, allowed="'global', 'paper'"))
        rd, rn = (float(v) for v in S2._from_theta(res.theta[None])[0])
        params = {**base, "R_D_star": rd, "R_N_star": rn}
        self.theta_ = self._to_theta(params)[0]
        objective = float(res.objective)
        info = dict(res.info)
        info["stage2"] = self.stage2
        info["stage1"] = ("fixed base" if stage1 is None else
                          f"fitted on {stage1.n_samples_} single-epoch runs"
                          + (" (alpha tied to beta)" if self.tie_exponents else ""))
        if stage1 is not None:
            info["warnings"] = list(info.get("warnings", [])) + list(stage1.fit_info_.get("warnings", []))
        logpred = self._log_model(self.theta_[None], Xa, jac=False)[0][0]
        self._fit_data = (Xa, ya, w)
        # Uncertainty of stage 2 (conditional on the base), carried into the full parameter vector.
        s2 = S2(loss=self.loss, delta=self.delta, space=self.space, asymmetry=self.asymmetry,
                n_bootstrap=self.n_bootstrap, level=self.level, random_state=self.random_state,
                max_iter=self.max_iter, n_jobs=self.n_jobs)
        s2.theta_ = res.theta
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            u = uncertainty.estimate(s2, Xa, ya, w)
        intervals = {"R_D_star": u["intervals"]["R_D_star"], "R_N_star": u["intervals"]["R_N_star"]}
        bp = None
        if u.get("bootstrap_params") is not None:
            bp = np.empty((u["bootstrap_params"].shape[0], len(self.param_names)))
            bp[:, :5] = [base[k] for k in _BASE_NAMES]
            bp[:, 5:] = u["bootstrap_params"]
            info["bootstrap_converged_fraction"] = u["fit_info"].get("bootstrap_converged_fraction")
        self.result_ = self._new_result(
            params, objective=objective, fit_info=info, n_samples=int(ya.size),
            fitted_range=self._fitted_ranges(Xa), residuals=self._user_order(np.log(ya) - logpred),
            goodness_of_fit=fitting.goodness_of_fit(ya, np.exp(logpred),
                                                    2 if stage1 is None else len(self.param_names), objective),
            data_hash=_data_hash(Xa, ya, w), cov_theta=self._joint_cov(stage1, u["cov_theta"]),
            stderr={**({k: float(stage1.stderr_.get("alpha" if (k == "beta" and self.tie_exponents) else k,
                                                    float("nan"))) for k in _BASE_NAMES}
                       if stage1 is not None else {}),
                    "R_D_star": u["stderr"]["R_D_star"], "R_N_star": u["stderr"]["R_N_star"]},
            intervals=intervals, bootstrap_params=bp,
            interval_method=f"{u['interval_method']}; decay constants conditional on the stage-1 base",
            derived_intervals={"max_data_multiple": tuple(1 + v for v in intervals["R_D_star"]),
                               "max_param_multiple": tuple(1 + v for v in intervals["R_N_star"])})
        self.stage1_ = stage1
        self._finish_fit(ya)
        return self

    # ---------------------------------------------------------------- forecasts
    def compute_optimal(self, C: Any, U: Any) -> Any:
        """Loss-minimising ``N`` and ``D`` at ``C`` FLOPs (``C = 6 N D``) with ``U`` unique tokens available,
        found numerically (the data-constrained frontier, §5; bounded search over ``log N``).

        Examples
        --------
        >>> opt = MuennighoffLaw.preset("muennighoff2023").compute_optimal(1e22, 25e9)
        >>> round(float(opt.D_opt[0]) / 1e9, 1), round(float(opt.N_opt[0]) / 1e9, 2)   # README: 237.34B, 7.022B
        (237.2, 7.03)
        """
        from scipy.optimize import minimize_scalar

        from .chinchilla import ComputeOptimal

        self._check_fitted()
        Cs = np.atleast_1d(np.asarray(C, dtype=float)).ravel()
        Us = np.broadcast_to(np.asarray(U, dtype=float), Cs.shape)
        if np.any(~np.isfinite(Cs) | (Cs <= 0)) or np.any(~np.isfinite(Us) | (Us <= 0)):
            raise ConfigError(explain("compute budgets (FLOPs) and unique tokens must be positive", value=(C, U)))
        theta = self._to_theta(self.params_)
        from ..units import tokens_for_training_flops

        Ns, Ds, Ls = [], [], []
        for c, u in zip(Cs, Us, strict=True):
            def f(ln: float, c: float = c, u: float = u) -> float:
                n = math.exp(ln)
                X = (np.array([n]), np.array([tokens_for_training_flops(c, n)]), np.array([u]))
                return float(self._log_model(theta, X, jac=False)[0][0, 0])

            lo, hi = math.log(c / 6.0) / 2 - 12.0, math.log(c / 6.0) / 2 + 12.0
            r = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-9})
            if not r.success:
                raise DataError(explain(f"data-constrained optimum search failed: {r.message}",
                                        fix="check the budget and the law's parameters"))
            n = math.exp(float(r.x))
            Ns.append(n)
            Ds.append(tokens_for_training_flops(c, n))
            Ls.append(math.exp(float(r.fun)))
        N, D = np.array(Ns), np.array(Ds)
        out = ComputeOptimal(self.name or "", Cs, N, D, np.array(Ls), D / N,
                             method="numeric (bounded search over log N), unique tokens U = "
                                    + ", ".join(f"{u:.3g}" for u in np.unique(Us)))
        out.extrapolation = self._warn_extrapolation((N, D, Us))
        return out


class _TiedChinchilla(ScalingLaw):
    """Stage 1 of Muennighoff et al. 2023: ``L = E + A/N^alpha + B/D^alpha`` (alpha tied to beta). Not registered."""

    citation = "Muennighoff et al. 2023 App. A (C4 base fit, alpha = beta)"
    equation = "L(N, D) = E + A / N^alpha + B / D^alpha"
    covariates = ("N", "D")
    param_names = ("E", "A", "B", "alpha")
    log_params = ("E", "A", "B")
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "E": (1e-6, 1e4), "A": (1e-10, 1e30), "B": (1e-10, 1e30), "alpha": (0.0, 5.0),
    }

    @classmethod
    def _log_model(cls, theta: np.ndarray, X: tuple[np.ndarray, ...],
                   jac: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        theta = np.atleast_2d(theta)
        lN, lD = np.log(X[0])[None, :], np.log(X[1])[None, :]
        e, a, b, al = (theta[:, i : i + 1] for i in range(4))
        T = np.stack(np.broadcast_arrays(e, a - al * lN, b - al * lD))
        f, wgt = log_sum_exp(T, weights=jac)
        if wgt is None:
            return f, None
        J = np.stack([wgt[0], wgt[1], wgt[2], -wgt[1] * lN - wgt[2] * lD], axis=1)
        return f, J

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        # The notebook's grid: a, b in linspace(0, 25, 5); e in linspace(-1, 1, 4); alpha in linspace(0, 2, 4).
        ls = np.linspace(0, 25, 5)
        g = np.array(np.meshgrid(np.linspace(-1, 1, 4), ls, ls, np.linspace(0, 2, 4), indexing="ij")).reshape(4, -1).T
        g[:, :3] = np.exp(g[:, :3])
        return g


def _paper_stage2(S2: Any, X: tuple[np.ndarray, ...], y: np.ndarray, starts: np.ndarray, w: np.ndarray | None,
                  obj: Any, space: str) -> Any:
    """Stage 2 as the paper: L-BFGS-B on (R_D*, R_N*) themselves from each grid start, best kept (App. A)."""
    from scipy.optimize import minimize

    from .fitting import FitOutput

    # The base is fixed, so U_D, R_D, U_N, R_N are constants: precompute them and keep each evaluation lean.
    b = S2._base
    N, D, U = X
    Ud = np.minimum(U, D)
    Rd = D / Ud - 1
    Un = np.minimum(N, optimal_params_for_tokens(Ud, b["A"], b["B"], b["alpha"], b["beta"]))
    Rn = np.maximum(N / Un - 1, 0.0)
    la, lb, le = math.log(b["A"]), math.log(b["B"]), math.log(b["E"])
    target = np.log(y) if space == "log" else y

    def fun(r: np.ndarray) -> float:
        rd, rn = float(r[0]), float(r[1])
        Dp = Ud * (1 + rd * -np.expm1(-Rd / rd))
        Np = Un * (1 + rn * -np.expm1(-Rn / rn))
        f = np.logaddexp(np.logaddexp(la - b["alpha"] * np.log(Np), lb - b["beta"] * np.log(Dp)), le)
        res = f - target if space == "log" else np.exp(f) - target
        rho = obj.rho(res)
        val = float(np.sum(rho if w is None else rho * w))
        return val if np.isfinite(val) else 1e300

    best, records = None, []
    for th in starts:
        r = minimize(fun, S2._from_theta(th[None])[0], method="L-BFGS-B", bounds=[(1e-3, 1e5)] * 2)
        records.append({"success": bool(r.success), "message": str(r.message), "fun": float(r.fun)})
        if best is None or r.fun < best.fun:
            best = r
    if best is None:
        raise FitError(explain("stage 2 got no starting points", fix="pass init as an (m, 2) array of R_D*, R_N*"))
    if not best.success:
        warnings.warn(explain(f"L-BFGS-B did not report success in the paper-style stage 2: {best.message}",
                              fix="compare with stage2='global'"), ConvergenceWarning, stacklevel=4)
    info = {"n_starts": len(starts), "best_from": "L-BFGS-B (paper procedure)", "scipy": records,
            "warnings": [] if best.success else [str(best.message)]}
    return FitOutput(theta=S2._to_theta(np.asarray(best.x)[None])[0], objective=float(best.fun), info=info)


def _stage2_class(base: dict[str, float]) -> type[ScalingLaw]:
    """A two-parameter law (``R_D_star``, ``R_N_star``) with the base law fixed (stage 2). Not registered."""

    def _log_form(cls: Any, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        full = {k: np.full_like(p["R_D_star"], v) for k, v in cls._base.items()}
        full.update(p)
        return MuennighoffLaw._log_form(full, X)

    return type("MuennighoffDecayStage", (ScalingLaw,), {
        "__module__": __name__,
        "citation": MuennighoffLaw.citation,
        "covariates": MuennighoffLaw.covariates,
        "param_names": ("R_D_star", "R_N_star"),
        "log_params": ("R_D_star", "R_N_star"),
        "bounds": {"R_D_star": (1e-3, 1e5), "R_N_star": (1e-3, 1e5)},
        "_base": dict(base),
        "_log_form": classmethod(_log_form),
    })
