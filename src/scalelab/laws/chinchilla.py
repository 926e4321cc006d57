"""Chinchilla: the parametric loss of Hoffmann et al. 2022 (approach 3) and what follows from it.

Legend (symbols and units used in this module):

=========  ==================================================================================
``N``      parameters, **total** (embeddings included; Hoffmann et al. 2022 App. F)
``D``      training tokens
``C``      training compute in FLOPs, ``C = 6 N D`` (Kaplan et al. 2020 §2.1; Hoffmann eq. 4)
``L``      final loss, nats/token
``E``      irreducible loss (nats/token); ``A``, ``B`` scale terms (nats/token * params^alpha, tokens^beta)
``alpha``  exponent of ``N``; ``beta`` exponent of ``D`` (dimensionless)
``a, b``   compute-optimal exponents, ``N_opt ∝ C^a``, ``D_opt ∝ C^b``
=========  ==================================================================================

Form (Hoffmann et al. 2022 eq. 2): ``L(N, D) = E + A / N^alpha + B / D^beta``, fitted as
``log L = LSE(log A - alpha log N, log B - beta log D, log E)`` with Huber (delta = 1e-3) on log-loss,
summed over runs, started from a 4,500-point grid (App. D.2). Compute-optimal frontier (eq. 4):
``N_opt(C) = G (C/6)^a``, ``D_opt(C) = G^-1 (C/6)^b``, ``G = (alpha A / (beta B))^(1/(alpha+beta))``,
``a = beta/(alpha+beta)``, ``b = alpha/(alpha+beta)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .._checks import check_level
from ..errors import ConfigError, DataError, explain
from ..units import FLOPS_PER_PARAM_TOKEN, INFERENCE_FLOPS_PER_PARAM_TOKEN
from .base import ScalingLaw

__all__ = [
    "FLOPS_PER_PARAM_TOKEN",
    "ChinchillaLaw",
    "ComputeOptimal",
    "InferenceAllocation",
    "chinchilla_grid",
]


def chinchilla_grid() -> np.ndarray:
    """Hoffmann et al. 2022 App. D.2 initialisation grid, public units, shape (4500, 5):
    alpha, beta in {0, 0.5, ..., 2}; e in {-1, -0.5, ..., 1}; a, b in {0, 5, ..., 25} (E = e^e ...)."""
    ab = np.arange(0.0, 2.0 + 1e-9, 0.5)
    e = np.arange(-1.0, 1.0 + 1e-9, 0.5)
    ls = np.arange(0.0, 25.0 + 1e-9, 5.0)
    g = np.array(np.meshgrid(e, ls, ls, ab, ab, indexing="ij")).reshape(5, -1).T
    g[:, :3] = np.exp(g[:, :3])
    return g  # columns E, A, B, alpha, beta


@dataclass
class ComputeOptimal:
    """Compute-optimal allocation at budgets ``C_flops`` with bands (``level``) when the law has them."""

    law: str
    C_flops: np.ndarray
    N_opt: np.ndarray
    D_opt: np.ndarray
    loss: np.ndarray
    tokens_per_param: np.ndarray
    level: float | None = None
    bands: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    extrapolation: np.ndarray | None = None
    method: str = "closed form (Hoffmann et al. 2022 eq. 4)"
    interval_method: str | None = None

    def to_dict(self) -> dict[str, Any]:
        from .. import __version__

        def lst(a: Any) -> Any:
            return None if a is None else np.asarray(a, dtype=float).ravel().tolist()

        return {
            "law": self.law, "method": self.method, "C_flops": lst(self.C_flops), "N_opt": lst(self.N_opt),
            "D_opt": lst(self.D_opt), "loss": lst(self.loss), "tokens_per_param": lst(self.tokens_per_param),
            "level": self.level, "interval_method": self.interval_method,
            "bands": {k: {"low": lst(v[0]), "high": lst(v[1])} for k, v in self.bands.items()},
            "extrapolation_factor": lst(self.extrapolation), "scalelab_version": __version__,
        }

    def report(self) -> str:
        from ..units import format_count

        lines = [f"compute-optimal allocation ({self.law}; {self.method})"]
        lvl = f" [{round(100 * self.level)}% band]" if self.bands and self.level else ""

        def cell(k: str, v: np.ndarray, fmt: Any, i: int) -> str:
            s = fmt(float(np.ravel(v)[i]))
            if k in self.bands:
                lo, hi = self.bands[k]
                s += f" [{fmt(float(np.ravel(lo)[i]))}, {fmt(float(np.ravel(hi)[i]))}]"
            return s

        def g4(x: float) -> str:
            return f"{x:.4g}"

        for i, c in enumerate(np.ravel(self.C_flops)):
            ex = ("" if self.extrapolation is None
                  else f"  (x{float(np.ravel(self.extrapolation)[i]):.3g} of fitted range)")
            lines.append(f"  C = {c:.3g} FLOPs: N_opt = {cell('N_opt', self.N_opt, format_count, i)}, "
                         f"D_opt = {cell('D_opt', self.D_opt, format_count, i)}, "
                         f"loss = {cell('loss', self.loss, g4, i)}, "
                         f"D/N = {cell('tokens_per_param', self.tokens_per_param, g4, i)}{ex}")
        if lvl:
            lines.append(f"  bands{lvl}: {self.interval_method}")
        return "\n".join(lines)


@dataclass
class InferenceAllocation:
    """The cheapest (N, D) reaching ``target_loss`` when ``inference_tokens`` will be served
    (Sardana & Frankle 2023, "Beyond Chinchilla-Optimal", eq. 3: minimise 6 N D + 2 N D_inf s.t. L = target)."""

    target_loss: float
    inference_tokens: float
    N: float
    D: float
    training_flops: float
    inference_flops: float
    chinchilla_N: float
    chinchilla_D: float
    chinchilla_total_flops: float

    @property
    def total_flops(self) -> float:
        return self.training_flops + self.inference_flops

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["total_flops"] = self.total_flops
        d["saving_vs_chinchilla"] = 1 - self.total_flops / self.chinchilla_total_flops
        return d

    def report(self) -> str:
        from ..units import format_count

        return (f"target loss {self.target_loss:.4g} with {self.inference_tokens:.3g} inference tokens: "
                f"N = {format_count(self.N)}, D = {format_count(self.D)} (D/N = {self.D / self.N:.3g}); "
                f"total {self.total_flops:.3g} FLOPs vs {self.chinchilla_total_flops:.3g} for the training-"
                f"optimal {format_count(self.chinchilla_N)} model "
                f"({100 * (1 - self.total_flops / self.chinchilla_total_flops):.1f}% saved)")


class ChinchillaLaw(ScalingLaw):
    """``L(N, D) = E + A / N^alpha + B / D^beta`` (Hoffmann et al. 2022, eq. 2 and App. D.2).

    ``N`` counts all parameters (embeddings included), ``D`` training tokens, ``L`` nats/token.

    Parameters
    ----------
    param_prior : "hoffmann2022" (default), "besiroglu2024", None, or dict ``{parameter: (centre, width)}``
        A weakly informative Gaussian prior on the exponents, so the fit is a MAP estimate: the objective
        gains ``kappa/2 * sum(((theta - centre) / width)^2)``, centred on published exponents (Hoffmann et
        al. 2022 §3.3: alpha 0.339, beta 0.285; Besiroglu et al. 2024: 0.348, 0.366). ``kappa`` is twice the
        best unpenalised objective per residual degree of freedom (the residual variance, in Huber's
        quadratic part), so the prior's weight against the data falls as ``1/n``: on data that identify the
        exponents it moves them by a small fraction of their standard error, and where the data do not
        (few model sizes) it keeps them near the centre instead of at a bound. ``None``: the unpenalised fit
        (Hoffmann's objective as it was before the prior). A dict sets centres and widths per parameter;
        for ``E``, ``A``, ``B`` the width is in natural-log units. ``objective_`` stays the data's term;
        ``fit_info_["prior"]`` has the centres, widths, ``kappa`` and the penalty. Chosen on the forecast
        scoreboard's calibration half (docs/laws.md, *A prior on the exponents*).
    param_prior_width : float
        Width of a named prior on both exponents (default 0.5).

    Other options as :class:`~scalelab.laws.base.ScalingLaw`.

    Examples
    --------
    >>> law = ChinchillaLaw.preset("hoffmann2022")
    >>> round(float(law.compute_optimal(5.76e23).N_opt[0]) / 1e9)   # the paper's "40B"
    40
    """

    name = "chinchilla"
    citation = "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, eq. 2, App. D.2"
    equation = "L(N, D) = E + A / N^alpha + B / D^beta"
    covariates = ("N", "D")
    covariate_units: ClassVar[dict[str, str]] = {"N": "parameters (total, embeddings included)", "D": "training tokens"}
    param_names = ("E", "A", "B", "alpha", "beta")
    param_units: ClassVar[dict[str, str]] = {
        "E": "nats/token", "A": "nats/token * params^alpha", "B": "nats/token * tokens^beta", "alpha": "1",
        "beta": "1",
    }
    log_params = ("E", "A", "B")
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "E": (1e-6, 1e4), "A": (1e-10, 1e30), "B": (1e-10, 1e30), "alpha": (0.0, 5.0), "beta": (0.0, 5.0),
    }
    conventions: ClassVar[dict[str, str]] = {
        "N": "total parameters", "C": "6 N D FLOPs", "objective": "Huber on log-loss, summed",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "hoffmann2022": {
            # Unrounded values from the paper's TeX source, as printed in Epoch's data_analysis.ipynb.
            "params": {"E": math.exp(0.5267228), "A": math.exp(6.0073404), "B": math.exp(6.0179186),
                       "alpha": 0.33917084, "beta": 0.2849083},
            "source": "Hoffmann et al. 2022 §3.3 (unrounded, via Besiroglu et al. 2024 data_analysis.ipynb)",
            "range": {"N": (7e7, 1.6e10), "D": (5e9, 5e11)},
        },
        "hoffmann2022-rounded": {
            "params": {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
            "source": "Hoffmann et al. 2022 §3.3, eq. 10 (as printed, rounded)",
            "range": {"N": (7e7, 1.6e10), "D": (5e9, 5e11)},
        },
        "besiroglu2024": {
            "params": {"E": 1.81686, "A": 482.00572, "B": 2085.43420, "alpha": 0.34781, "beta": 0.36585},
            "stderr": {"E": 0.02566, "A": 124.52232, "B": 1293.28410, "alpha": 0.01540, "beta": 0.02060},
            "intervals": {"E": (1.769, 1.871), "A": (285.214, 743.626), "B": (1042.357, 5810.344),
                          "alpha": (0.317, 0.373), "beta": (0.331, 0.415)},
            "source": "Besiroglu et al. 2024 (Epoch AI), refit on 240 digitised Chinchilla runs, "
                      "data_analysis.ipynb @92258837; s.e. and 95% CIs from 4,000 bootstrap refits",
            "range": {"N": (5.73e7, 1.62e10), "D": (2.45e8, 3.18e11)},
        },
        "besiroglu2024-grid": {
            "params": {"E": 1.817235504463726, "A": 477.84171252965143, "B": 2143.8637880335505,
                       "alpha": 0.34731265761033453, "beta": 0.3671826173946711},
            "source": "Besiroglu et al. 2024, grid-initialised L-BFGS-B replication of Hoffmann's procedure "
                      "(data_analysis.ipynb @92258837)",
            "range": {"N": (5.73e7, 1.62e10), "D": (2.45e8, 3.18e11)},
        },
        "takano2025-asymmetric": {
            "params": {"E": 1.7002408325507796, "A": 184.69151738172795, "B": 1633.4786640754548,
                       "alpha": 0.2890076484429228, "beta": 0.3557940660048966},
            "source": "kyo-takano/chinchilla examples/llm/main.ipynb @75e5858f: asymmetric MAE (x10), "
                      "234 Epoch points with C > 1e18 and N < D (a lower envelope, not a mean)",
            "range": {"N": (5.73e7, 1.62e10), "D": (1.39e9, 3.18e11)},
        },
    }
    _example_params: ClassVar[dict[str, float]] = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"N": (5e7, 2e10), "D": (1e9, 4e11)}
    _example_n = 80
    min_distinct: ClassVar[dict[str, int]] = {"N": 3, "D": 3}
    cheap_jacobian: ClassVar[bool] = True  # _log_model's Jacobian is the softmax weights it computes anyway

    #: Published exponents a MAP fit may be pulled toward (``param_prior``): centre of ``alpha`` and ``beta``.
    param_priors: ClassVar[dict[str, dict[str, float]]] = {
        # Hoffmann et al. 2022 §3.3 approach 3, unrounded (the hoffmann2022 preset)
        "hoffmann2022": {"alpha": 0.33917084, "beta": 0.2849083},
        # Besiroglu et al. 2024, Epoch AI's refit of the same runs (the besiroglu2024 preset)
        "besiroglu2024": {"alpha": 0.34781, "beta": 0.36585},
    }

    options_since: ClassVar[dict[str, Any]] = {"param_prior": None, "param_prior_width": 0.5}

    def __init__(self, *, param_prior: Any = "hoffmann2022", param_prior_width: float = 0.5,
                 loss: str = "huber", delta: float = 1e-3, space: str = "log", asymmetry: float = 10.0,
                 init: Any = "grid", n_bootstrap: int = 0, level: float = 0.95, random_state: Any = None,
                 extrapolation_factor: float = 10.0, max_iter: int = 200, n_jobs: int = 1) -> None:
        super().__init__(loss=loss, delta=delta, space=space, asymmetry=asymmetry, init=init,
                         n_bootstrap=n_bootstrap, level=level, random_state=random_state,
                         extrapolation_factor=extrapolation_factor, max_iter=max_iter, n_jobs=n_jobs)
        self.param_prior = param_prior
        self.param_prior_width = param_prior_width

    def _prior_spec(self) -> dict[str, tuple[float, float]]:
        """``param_prior`` as ``{parameter: (centre, width)}`` in public units (widths of ``log_params`` in
        natural-log units); empty when the fit has no prior."""
        pp = self.param_prior
        if pp is None:
            return {}
        if isinstance(pp, str):
            if pp not in self.param_priors:
                raise ConfigError(explain("unknown param_prior", value=pp,
                                          allowed=", ".join([*self.param_priors, "None", "a dict"]),
                                          fix="name a published prior, pass None for the unpenalised fit, or "
                                              "a dict {parameter: (centre, width)}"))
            w = float(self.param_prior_width)
            if not (math.isfinite(w) and w > 0):
                raise ConfigError(explain("param_prior_width must be a positive number", value=w))
            return {k: (v, w) for k, v in self.param_priors[pp].items()}
        out: dict[str, tuple[float, float]] = {}
        for k, v in dict(pp).items():
            ok = k in self.param_names and np.size(v) == 2
            c, w = (float(x) for x in v) if ok else (math.nan, math.nan)
            if not (ok and math.isfinite(c) and math.isfinite(w) and w > 0
                    and (c > 0 or k not in self.log_params)):
                raise ConfigError(explain(f"param_prior entry {k!r} must be (centre, width > 0)", value=v,
                                          allowed=f"parameters {', '.join(self.param_names)}; centres of "
                                                  f"{', '.join(self.log_params)} > 0 (their widths in log units)"))
            out[k] = (c, w)
        return out

    def _objective_prior(self, X: tuple[np.ndarray, ...], y: np.ndarray,
                         w: np.ndarray | None) -> tuple[Any, dict[str, Any] | None]:
        """The ``param_prior`` penalty ``kappa/2 * sum(((theta - centre) / width)^2)`` (log of ``E, A, B``),
        ``kappa = 2 F / (n - 5)`` from the best unpenalised objective ``F``: the residual variance when the
        residuals fall in Huber's quadratic part, so the penalty is a Gaussian prior of that width on the
        same scale as the data's term; its weight relative to the data falls as ``1/n``."""
        from . import fitting

        spec = self._prior_spec()
        if not spec:
            return None, None
        P = len(self.param_names)
        n = float(y.size if w is None else np.sum(w))
        info: dict[str, Any] = {"name": self.param_prior if isinstance(self.param_prior, str) else "custom",
                                "centre": {k: c for k, (c, _) in spec.items()},
                                "width": {k: s for k, (_, s) in spec.items()}}

        def make(best: float) -> fitting.Prior:
            kappa = 2.0 * best / max(n - P, 1.0)
            info["kappa"] = kappa
            mu, prec, wprec = np.zeros(P), np.zeros(P), np.zeros(P)
            for name, (c, s) in spec.items():
                j = self.param_names.index(name)
                mu[j] = math.log(c) if name in self.log_params else c
                wprec[j] = 1.0 / s**2
                prec[j] = kappa * wprec[j]
            return fitting.Prior(mu, prec, wprec)

        return make, info

    # ---------------------------------------------------------------- hooks
    @classmethod
    def _form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        N, D = X
        return p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]

    @classmethod
    def _log_model(cls, theta: np.ndarray, X: tuple[np.ndarray, ...],
                   jac: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        # log L = LSE(e, a - alpha log N, b - beta log D): stable for any start of Hoffmann's grid, with an
        # analytic Jacobian (the softmax weights of the three terms).
        theta = np.atleast_2d(theta)
        lN, lD = np.log(X[0])[None, :], np.log(X[1])[None, :]
        e, a, b, al, be = (theta[:, i : i + 1] for i in range(5))
        # Relative to the E term: log L = e + log(1 + u1 + u2), u1 = exp(a - alpha log N - e), ...
        # Two exponentials per point instead of three; within the fitting bounds u stays far below
        # overflow, and any row that does overflow is recomputed with the max-shifted form.
        with np.errstate(over="ignore", invalid="ignore"):
            u1 = np.exp((a - e) - al * lN)
            u2 = np.exp((b - e) - be * lD)
            s = 1.0 + u1 + u2
            f = e + np.log(s)
        bad = ~np.isfinite(f).all(axis=1)
        if bad.any():
            f[bad], J_bad = cls._log_model_shifted(theta[bad], lN, lD, jac)
        if not jac:
            return f, None
        w0 = 1.0 / s
        J = np.empty((theta.shape[0], 5, lN.shape[1]))
        J[:, 0] = w0
        np.multiply(u1, w0, out=J[:, 1])
        np.multiply(u2, w0, out=J[:, 2])
        np.multiply(J[:, 1], -lN, out=J[:, 3])
        np.multiply(J[:, 2], -lD, out=J[:, 4])
        if bad.any():
            J[bad] = J_bad
        return f, J  # (k, P, n)

    @classmethod
    def _log_model_shifted(cls, theta: np.ndarray, lN: np.ndarray, lD: np.ndarray,
                           jac: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """log-sum-exp with the maximum term factored out: finite for any parameters."""
        e, a, b, al, be = (theta[:, i : i + 1] for i in range(5))
        t0 = np.broadcast_to(e, (theta.shape[0], lN.shape[1]))
        t1 = a - al * lN
        t2 = b - be * lD
        m = np.maximum(np.maximum(t0, t1), t2)
        x0, x1, x2 = np.exp(t0 - m), np.exp(t1 - m), np.exp(t2 - m)
        s = x0 + x1 + x2
        f = m + np.log(s)
        if not jac:
            return f, None
        w0, w1, w2 = x0 / s, x1 / s, x2 / s
        return f, np.stack([w0, w1, w2, -w1 * lN, -w2 * lD], axis=1)

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        return chinchilla_grid()

    @classmethod
    def _coarse_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        e = np.log([1.0, 1.5, 2.0])
        ab = [0.2, 0.4, 0.8]
        ls = [2.0, 6.0, 12.0]
        g = np.array(np.meshgrid(e, ls, ls, ab, ab, indexing="ij")).reshape(5, -1).T
        g[:, :3] = np.exp(g[:, :3])
        return g

    @classmethod
    def _derived(cls, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        al, be = p["alpha"], p["beta"]
        with np.errstate(all="ignore"):
            G = (al * p["A"] / (be * p["B"])) ** (1 / (al + be))
        return {"a": be / (al + be), "b": al / (al + be), "G": G}

    # ---------------------------------------------------------------- forecasts
    @classmethod
    def _opt_from_public(cls, pub: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """N_opt, D_opt, L_opt for parameter rows (m, 5) and budgets (n,) -> (m, n) each (eq. 4)."""
        E, A, B, al, be = (pub[:, i : i + 1] for i in range(5))
        with np.errstate(all="ignore"):
            G = (al * A / (be * B)) ** (1 / (al + be))
            a, b = be / (al + be), al / (al + be)
            c6 = np.asarray(C, dtype=float)[None, :] / FLOPS_PER_PARAM_TOKEN
            N = G * c6**a
            D = c6**b / G
            L = E + A / N**al + B / D**be
        return N, D, L

    def compute_optimal(self, C: Any, *, level: float | None = None) -> ComputeOptimal:
        """Compute-optimal ``N_opt``, ``D_opt`` and loss at budget(s) ``C`` (FLOPs, ``C = 6ND``), closed form.

        Bands (at ``level``, default the law's) come from the bootstrap draws, or the asymptotic
        covariance, or a preset's published standard errors; none for presets without them.

        Examples
        --------
        >>> ChinchillaLaw.preset("besiroglu2024").compute_optimal(5.76e23).tokens_per_param.round(1)
        array([18.3])
        """
        from . import uncertainty

        self._check_fitted()
        Cs = np.atleast_1d(np.asarray(C, dtype=float)).ravel()
        if np.any(~np.isfinite(Cs) | (Cs <= 0)):
            raise ConfigError(explain("compute budgets must be positive FLOPs", value=C,
                                      allowed="finite numbers > 0", fix="pass budgets in FLOPs, e.g. 1e24 (C = 6ND)"))
        lvl = check_level(self.level if level is None else level)
        N, D, L = self._opt_from_public(self._public_array(), Cs)
        out = ComputeOptimal(self.name or "", Cs, N[0], D[0], L[0], D[0] / N[0])
        out.extrapolation = self._warn_extrapolation((N[0], D[0]))
        try:
            th, kind = uncertainty.draws(self)
        except Exception:  # noqa: BLE001 - a preset without errors simply has no bands
            return out
        Nd, Dd, Ld = self._opt_from_public(type(self)._from_theta(th), Cs)
        out.level = lvl
        out.interval_method = kind
        for k, v in (("N_opt", Nd), ("D_opt", Dd), ("loss", Ld), ("tokens_per_param", Dd / Nd)):
            out.bands[k] = uncertainty.percentile_interval(v, lvl)
        return out

    def loss_at(self, N: Any, D: Any) -> np.ndarray:
        """Predicted loss at ``(N, D)`` (an alias of :meth:`predict`)."""
        return self.predict(N, D)

    def isoloss(self, loss: float, N: Any = None, n_points: int = 200) -> tuple[np.ndarray, np.ndarray]:
        """The curve of ``(N, D)`` with ``L(N, D) = loss``: ``D = (B / (loss - E - A/N^alpha))^(1/beta)``.

        Points where the loss is unreachable at that ``N`` (``loss <= E + A/N^alpha``) are dropped.
        """
        self._check_fitted()
        p = self.params_
        if loss <= p["E"]:
            raise ConfigError(explain(f"loss {loss} is not above the irreducible loss E = {p['E']:.4g}",
                                      fix="ask for a loss above E"))
        if N is None:
            n_min = (p["A"] / (loss - p["E"])) ** (1 / p["alpha"])
            N = np.geomspace(n_min * 1.01, n_min * 1e4, n_points)
        N = np.atleast_1d(np.asarray(N, dtype=float))
        gap = loss - p["E"] - p["A"] / N ** p["alpha"]
        ok = gap > 0
        D = np.full_like(N, np.nan)
        D[ok] = (p["B"] / gap[ok]) ** (1 / p["beta"])
        return N[ok], D[ok]

    def isoflop(self, C: float, N: Any = None, n_points: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Loss along a fixed budget: returns ``(N, D = C/(6N), L(N, D))`` (the isoFLOP profile, §3.2)."""
        self._check_fitted()
        if N is None:
            n_opt = float(self.compute_optimal(C).N_opt[0])
            N = np.geomspace(n_opt / 30, n_opt * 30, n_points)
        N = np.atleast_1d(np.asarray(N, dtype=float))
        D = C / (FLOPS_PER_PARAM_TOKEN * N)
        with np.errstate(all="ignore"):
            L = np.exp(self._log_model(self._to_theta(self.params_), (N, D), jac=False)[0][0])
        return N, D, L

    def inference_optimal(self, target_loss: float, inference_tokens: float) -> InferenceAllocation:
        """Cheapest model reaching ``target_loss`` once ``inference_tokens`` are also served.

        Minimises ``6 N D + 2 N D_inf`` along the iso-loss curve (Sardana & Frankle 2023 eq. 3; the reason
        to over-train, Gadre et al. 2024): more inference pushes toward smaller ``N`` and larger ``D``.
        """
        from scipy.optimize import minimize_scalar

        self._check_fitted()
        p = self.params_
        if target_loss <= p["E"]:
            raise ConfigError(explain(f"target loss {target_loss} is not above the irreducible loss "
                                      f"E = {p['E']:.4g}", fix="ask for a loss above E"))
        if inference_tokens < 0:
            raise ConfigError(explain("inference_tokens must be >= 0", value=inference_tokens))
        n_min = (p["A"] / (target_loss - p["E"])) ** (1 / p["alpha"])

        def d_of(logn: float) -> float:
            n = math.exp(logn)
            gap = target_loss - p["E"] - p["A"] / n ** p["alpha"]
            return (p["B"] / gap) ** (1 / p["beta"]) if gap > 0 else math.inf

        def total(logn: float, d_inf: float) -> float:
            n = math.exp(logn)
            return math.log(FLOPS_PER_PARAM_TOKEN * n * d_of(logn) + INFERENCE_FLOPS_PER_PARAM_TOKEN * n * d_inf)

        lo, hi = math.log(n_min) + 1e-9, math.log(n_min) + math.log(1e6)

        def solve(d_inf: float) -> float:
            res = minimize_scalar(total, bounds=(lo, hi), args=(d_inf,), method="bounded",
                                  options={"xatol": 1e-10})
            if not res.success:
                raise DataError(explain(f"inference-aware search did not converge: {res.message}",
                                        fix="check the law's parameters and the target loss"))
            return float(res.x)

        ln = solve(float(inference_tokens))
        lc = solve(0.0)
        N, D = math.exp(ln), d_of(ln)
        Nc, Dc = math.exp(lc), d_of(lc)
        tr = FLOPS_PER_PARAM_TOKEN * N * D
        inf = INFERENCE_FLOPS_PER_PARAM_TOKEN * N * inference_tokens
        tot_c = FLOPS_PER_PARAM_TOKEN * Nc * Dc + INFERENCE_FLOPS_PER_PARAM_TOKEN * Nc * inference_tokens
        return InferenceAllocation(float(target_loss), float(inference_tokens), N, D, tr, inf, Nc, Dc, tot_c)
