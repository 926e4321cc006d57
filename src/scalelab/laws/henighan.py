"""Henighan et al. 2020, "Scaling Laws for Autoregressive Generative Modeling" (arXiv:2010.14701).

Legend (symbols and units used in this module):

==============  ======================================================================================
``C``           training compute in **PF-days** (1 PF-day = 8.64e19 FLOPs), ``C = 6 N E`` with ``E`` the
                tokens processed (§2)
``N``           parameters, **non-embedding** (as Kaplan et al. 2020)
``L``           loss, nats/token; for images a token is one colour channel of one pixel (3 R^2 per image)
``L_inf``       irreducible loss (an entropy estimate S(True)), nats/token; 0 for language (not estimable)
``C_0, N_0``    scale constants (PF-days; parameters); ``alpha_C, alpha_N`` exponents (dimensionless)
``C_N, beta_N`` ``N_opt(C) = (C / C_N)^beta_N``: compute-optimal size (PF-days; exponent ≈ 0.7)
==============  ======================================================================================

Form (§1, Table 1): ``L(x) = L_inf + (x_0 / x)^alpha_x`` for ``x = C`` or ``N``; the reducible part
``(x_0/x)^alpha_x`` reads as ``D_KL(True || Model)``. Headline (abstract): ``N_opt ∝ C^beta`` with
``beta ≈ 0.7`` in every domain. The paper fits ``L(C)`` to the Pareto frontier of the learning curves,
forced to lie below it; a refit here uses Huber on log-loss (set ``loss="asymmetric"`` for a lower
envelope as theirs).

Presets: Table 1 rows, transcribed once from a markdown conversion of the paper (tag [P] in the project's
``laws.md``, which asks to check single digits against the PDF). Rows that conversion flags as suspect (the
Image 32x32 ``N_0 = 6.3e1`` and the repeated ``9.4e-13`` of the VQ 32x32 and text-to-image ``N_opt``
rows) are not shipped. The language row is cross-checked: its ``N_opt(1 PF-day) = 1.29e9`` matches
Kaplan's 1.3e9.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .base import ScalingLaw
from .general import MonomialLaw

__all__ = ["HenighanComputeLaw", "HenighanOptimalSizeLaw", "HenighanSizeLaw"]

_T1 = "Henighan et al. 2020 Table 1"
_CHECK = " (transcribed from a markdown conversion; verify digits against the PDF)"


class _ConstPlusPower(ScalingLaw):
    """``L = L_inf + (x_0 / x)^alpha`` in one covariate; ``L_inf >= 0`` may be 0 (pure power law)."""

    @classmethod
    def _form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        l_inf, x0, a = cls.param_names
        return p[l_inf] + (p[x0] / X[0]) ** p[a]

    @classmethod
    def _log_model(cls, theta: np.ndarray, X: tuple[np.ndarray, ...],
                   jac: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        # theta = (L_inf, log x0, alpha); f = log(L_inf + exp(alpha (log x0 - log x))).
        theta = np.atleast_2d(theta)
        lx = np.log(X[0])[None, :]
        linf, lx0, a = theta[:, :1], theta[:, 1:2], theta[:, 2:3]
        u = a * (lx0 - lx)
        t = np.exp(u)
        s = linf + t
        f = np.log(s)
        if not jac:
            return f, None
        J = np.empty((theta.shape[0], 3, lx.shape[1]))
        J[:, 0] = 1.0 / s
        J[:, 1] = t * a / s
        J[:, 2] = t * (lx0 - lx) / s
        return f, J

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        ymin = float(np.min(y))
        lo, hi = float(np.min(X[0])), float(np.max(X[0]))
        rows = []
        for fe in (0.0, 0.5, 0.9):
            for a in (0.05, 0.15, 0.4):
                # x0 such that the reducible part is worth (ymin - L_inf) at the largest x
                red = max(ymin * (1 - fe), 1e-3)
                for x_ref in (lo, hi):
                    rows.append([fe * ymin, x_ref * red ** (1 / a), a])
        return np.array(rows)


class HenighanComputeLaw(_ConstPlusPower):
    """``L(C) = L_inf + (C_0 / C)^alpha_C`` with ``C`` in PF-days (Henighan et al. 2020 §1, Table 1).

    Presets ``"henighan2020-<domain>"``; the language row (``L_inf = 0``) is GPT-3's frontier.

    Examples
    --------
    >>> round(float(HenighanComputeLaw.preset("henighan2020-language").predict(1.0)), 3)
    2.57
    """

    name = "henighan-c"
    citation = "Henighan et al. 2020, Scaling Laws for Autoregressive Generative Modeling, Table 1"
    equation = "L(C) = L_inf + (C_0 / C)^alpha_C   (C in PF-days)"
    covariates = ("C",)
    covariate_units: ClassVar[dict[str, str]] = {"C": "PF-days (1 PF-day = 8.64e19 FLOPs)"}
    param_names = ("L_inf", "C_0", "alpha_C")
    param_units: ClassVar[dict[str, str]] = {"L_inf": "nats/token", "C_0": "PF-days", "alpha_C": "1"}
    log_params = ("C_0",)
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "L_inf": (0.0, 1e3), "C_0": (1e-40, 1e40), "alpha_C": (1e-4, 5.0),
    }
    conventions: ClassVar[dict[str, str]] = {
        "C": "PF-days, C = 6 N E (non-embedding N)", "L": "nats/token (image: per colour channel)",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "henighan2020-language": {"params": {"L_inf": 0.0, "C_0": 3.47e8, "alpha_C": 0.048},
                                  "source": _T1 + ", Language (GPT-3 frontier)" + _CHECK},
        "henighan2020-image-8x8": {"params": {"L_inf": 3.13, "C_0": 1.8e-8, "alpha_C": 0.19},
                                   "source": _T1 + ", Image 8x8" + _CHECK},
        "henighan2020-image-16x16": {"params": {"L_inf": 2.64, "C_0": 1.6e-8, "alpha_C": 0.16},
                                     "source": _T1 + ", Image 16x16" + _CHECK},
        "henighan2020-image-vq-16x16": {"params": {"L_inf": 4.09, "C_0": 6.1e-7, "alpha_C": 0.11},
                                        "source": _T1 + ", Image VQ 16x16" + _CHECK},
        "henighan2020-video-vq": {"params": {"L_inf": 0.95, "C_0": 2.2e-5, "alpha_C": 0.14},
                                  "source": _T1 + ", Video VQ 16x16x16" + _CHECK},
        "henighan2020-math": {"params": {"L_inf": 0.14, "C_0": 1.4e-5, "alpha_C": 0.17},
                              "source": _T1 + ", Math (extrapolate)" + _CHECK},
    }
    _example_params: ClassVar[dict[str, float]] = {"L_inf": 2.6, "C_0": 1.6e-8, "alpha_C": 0.16}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"C": (1e-6, 1e2)}
    _example_noise = 0.002


class HenighanSizeLaw(_ConstPlusPower):
    """``L(N) = L_inf + (N_0 / N)^alpha_N``, ``N`` non-embedding parameters, loss at convergence
    (Henighan et al. 2020 Table 1).

    Examples
    --------
    >>> round(float(HenighanSizeLaw.preset("henighan2020-language").predict(1e9)), 3)
    2.3
    """

    name = "henighan-n"
    citation = "Henighan et al. 2020, Table 1"
    equation = "L(N) = L_inf + (N_0 / N)^alpha_N"
    covariates = ("N",)
    covariate_units: ClassVar[dict[str, str]] = {"N": "parameters (non-embedding)"}
    param_names = ("L_inf", "N_0", "alpha_N")
    param_units: ClassVar[dict[str, str]] = {"L_inf": "nats/token", "N_0": "parameters (non-embedding)", "alpha_N": "1"}
    log_params = ("N_0",)
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "L_inf": (0.0, 1e3), "N_0": (1e-40, 1e40), "alpha_N": (1e-4, 5.0),
    }
    conventions: ClassVar[dict[str, str]] = {"N": "non-embedding parameters", "L": "nats/token, converged"}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "henighan2020-language": {"params": {"L_inf": 0.0, "N_0": 1.47e14, "alpha_N": 0.070},
                                  "source": _T1 + ", Language" + _CHECK},
        "henighan2020-image-8x8": {"params": {"L_inf": 3.12, "N_0": 8.0e1, "alpha_N": 0.24},
                                   "source": _T1 + ", Image 8x8" + _CHECK},
        "henighan2020-image-16x16": {"params": {"L_inf": 2.64, "N_0": 2.8e2, "alpha_N": 0.22},
                                     "source": _T1 + ", Image 16x16" + _CHECK},
        "henighan2020-image-vq-16x16": {"params": {"L_inf": 3.99, "N_0": 2.7e4, "alpha_N": 0.13},
                                        "source": _T1 + ", Image VQ 16x16" + _CHECK},
        "henighan2020-video-vq": {"params": {"L_inf": 1.01, "N_0": 3.7e4, "alpha_N": 0.24},
                                  "source": _T1 + ", Video VQ 16x16x16" + _CHECK},
        "henighan2020-math": {"params": {"L_inf": 0.28, "N_0": 1.1e4, "alpha_N": 0.16},
                              "source": _T1 + ", Math (extrapolate)" + _CHECK},
    }
    _example_params: ClassVar[dict[str, float]] = {"L_inf": 2.64, "N_0": 2.8e2, "alpha_N": 0.22}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"N": (1e4, 1e9)}
    _example_noise = 0.002


class HenighanOptimalSizeLaw(MonomialLaw):
    """``N_opt(C) = (C / C_N)^beta_N``, ``C`` in PF-days (Henighan et al. 2020 Table 1, last column), the
    compute-optimal size exponent ``beta_N ≈ 0.7`` across domains. Stored as the monomial
    ``N_opt = c * C^beta_N`` with ``c = C_N^-beta_N``; :meth:`C_N` returns the paper's scale.

    Examples
    --------
    >>> f"{float(HenighanOptimalSizeLaw.preset('henighan2020-language').predict(1.0)):.3g}"
    '1.29e+09'
    """

    name = "henighan-nopt"
    citation = "Henighan et al. 2020, Table 1 (N_opt column); abstract (beta ≈ 0.7)"
    equation = "N_opt(C) = (C / C_N)^beta_N = c * C^beta_N   (C in PF-days)"
    covariates = ("C",)
    covariate_units: ClassVar[dict[str, str]] = {"C": "PF-days"}
    target = "N_opt"
    target_units = "parameters (non-embedding)"
    param_names = ("c", "beta_N")
    param_units: ClassVar[dict[str, str]] = {"c": "parameters / PF-day^beta_N", "beta_N": "1"}
    log_params = ("c",)
    conventions: ClassVar[dict[str, str]] = {"N": "non-embedding parameters", "C": "PF-days"}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        f"henighan2020-{dom}": {"params": {"c": cn ** -b, "beta_N": b},
                                "source": f"{_T1}, {label}: N_opt = (C/{cn:g})^{b:g}{_CHECK}"}
        for dom, label, cn, b in (
            ("language", "Language (from Kaplan et al. 2020)", 3.3e-13, 0.73),
            ("image-8x8", "Image 8x8", 5.3e-14, 0.64),
            ("image-16x16", "Image 16x16", 4.8e-12, 0.75),
            ("image-vq-16x16", "Image VQ 16x16", 6.2e-14, 0.64),
            ("video-vq", "Video VQ 16x16x16", 1.13e-12, 0.71),
            ("math", "Math (extrapolate)", 2.3e-12, 0.69),
        )
    }
    _example_params: ClassVar[dict[str, float]] = {"c": 3.3e-13 ** -0.73, "beta_N": 0.73}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"C": (1e-6, 1e2)}
    _example_noise = 0.05

    def C_N(self) -> float:
        """The paper's scale ``C_N`` (PF-days) of ``N_opt = (C / C_N)^beta_N``."""
        self._check_fitted()
        return float(self.params_["c"] ** (-1.0 / self.params_["beta_N"]))
