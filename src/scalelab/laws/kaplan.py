"""Kaplan et al. 2020, "Scaling Laws for Neural Language Models" (arXiv:2001.08361).

Legend (symbols and units used in this module):

==============  ======================================================================================
``N``           parameters, **non-embedding** (``N ≈ 12 n_layer d_model^2``; vocabulary and position
                embeddings excluded; Kaplan §2.1). Chinchilla's ``N`` counts embeddings: do not mix them.
``D``           dataset size, tokens (GPT-2 BPE, n_vocab 50257)
``S_min``       minimum number of optimizer steps to reach a loss (steps at ``B >> B_crit``; eq. 5.4)
``C``, ``C_min``  training compute in **PF-days** (1 PF-day = 8.64e19 FLOPs, :data:`PF_DAY_FLOPS`);
                ``C ≈ 6 N B S``; ``C_min`` is the compute at ``B << B_crit`` (eq. 5.5)
``B``           batch size, **tokens**; ``B_crit`` the critical batch size (eq. 5.1, tokens)
``L``           cross-entropy, nats/token, on WebText2 (1024-token context)
``N_c, D_c, S_c, C_c``  scale constants in the unit of their covariate
``alpha_*``     exponents (dimensionless)
==============  ======================================================================================

Forms (Table 5 / §1.2 of the paper): ``L(N) = (N_c/N)^alpha_N`` (eq. 1.1), ``L(D) = (D_c/D)^alpha_D``
(eq. 1.2), ``L(C_min) = (C_c/C_min)^alpha_C`` (eq. 1.3), ``B_crit(L) = B_* / L^(1/alpha_B)`` (eq. 1.4),
``L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D`` (eq. 1.5, Table 2),
``L(N, S_min) = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S`` (eq. 1.6, Table 3), and the compute-efficient
allocation ``N_opt = N_e C_min^p_N`` (Table 6, eq. 6.1). Validity (§1, Fig. 1): N 768 to 1.5e9, D 22M
to 23B tokens, n_ctx 1024. The paper does not state the fitting objective; refits here use Huber on
log-loss (the house default) and least squares on log for the allocation power law.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, explain
from .base import ScalingLaw
from .general import MonomialLaw

__all__ = [
    "PF_DAY_FLOPS",
    "KaplanComputeLaw",
    "KaplanCriticalBatchLaw",
    "KaplanDataLaw",
    "KaplanFrontier",
    "KaplanLaw",
    "KaplanOptimalSizeLaw",
    "KaplanSizeLaw",
    "KaplanStepsLaw",
    "compute_efficient_frontier",
    "compute_min",
    "flops_to_pf_days",
    "off_optimum_cost",
    "overfit_free_tokens",
    "pf_days_to_flops",
    "steps_min",
]

#: FLOPs in one PF-day (1e15 FLOP/s for 86,400 s), Kaplan et al. 2020 §1.2 footnote.
PF_DAY_FLOPS = 1e15 * 86400.0


def flops_to_pf_days(C_flops: Any) -> Any:
    """FLOPs -> PF-days (divide by 8.64e19)."""
    return np.asarray(C_flops, dtype=float) / PF_DAY_FLOPS


def pf_days_to_flops(C_pf_days: Any) -> Any:
    """PF-days -> FLOPs (multiply by 8.64e19)."""
    return np.asarray(C_pf_days, dtype=float) * PF_DAY_FLOPS


_RANGE_N = (768.0, 1.5e9)
_RANGE_D = (2.2e7, 2.3e10)
_CONV = {"N": "non-embedding parameters", "L": "nats/token (WebText2, GPT-2 BPE, n_ctx 1024)"}


class _PurePowerLaw(ScalingLaw):
    """``L = (X_c / X)^alpha`` for one covariate: ``log L = alpha (log X_c - log X)``. Not registered."""

    @classmethod
    def _form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        c, a = cls.param_names
        return (p[c] / X[0]) ** p[a]

    @classmethod
    def _log_model(cls, theta: np.ndarray, X: tuple[np.ndarray, ...],
                   jac: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        theta = np.atleast_2d(theta)
        lx = np.log(X[0])[None, :]
        lc, a = theta[:, :1], theta[:, 1:2]
        f = a * (lc - lx)
        if not jac:
            return f, None
        J = np.empty((theta.shape[0], 2, lx.shape[1]))
        J[:, 0] = np.broadcast_to(a, f.shape)
        J[:, 1] = lc - lx
        return f, J

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        return np.array([[10.0**e, al] for e in (6, 9, 12, 14, 17, 20) for al in (0.03, 0.07, 0.15, 0.4)])


class KaplanSizeLaw(_PurePowerLaw):
    """``L(N) = (N_c / N)^alpha_N`` (Kaplan et al. 2020 eq. 1.1): converged loss of a model with ``N``
    non-embedding parameters trained on enough data.

    Examples
    --------
    >>> round(float(KaplanSizeLaw.preset("kaplan2020").predict(1e9)), 3)
    2.376
    """

    name = "kaplan-n"
    citation = "Kaplan et al. 2020, Scaling Laws for Neural Language Models, eq. 1.1, Table 5"
    equation = "L(N) = (N_c / N)^alpha_N"
    covariates = ("N",)
    covariate_units: ClassVar[dict[str, str]] = {"N": "parameters (non-embedding)"}
    param_names = ("N_c", "alpha_N")
    param_units: ClassVar[dict[str, str]] = {"N_c": "parameters (non-embedding)", "alpha_N": "1"}
    log_params = ("N_c",)
    bounds: ClassVar[dict[str, tuple[float, float]]] = {"N_c": (1.0, 1e40), "alpha_N": (1e-4, 3.0)}
    conventions: ClassVar[dict[str, str]] = dict(_CONV)
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "kaplan2020": {"params": {"N_c": 8.8e13, "alpha_N": 0.076},
                       "source": "Kaplan et al. 2020 eq. 1.1 / Table 5", "range": {"N": _RANGE_N}},
    }
    _example_params: ClassVar[dict[str, float]] = {"N_c": 8.8e13, "alpha_N": 0.076}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"N": (1e5, 1e9)}


class KaplanDataLaw(_PurePowerLaw):
    """``L(D) = (D_c / D)^alpha_D`` (Kaplan et al. 2020 eq. 1.2): loss of a large model trained with
    early stopping on ``D`` tokens.

    Examples
    --------
    >>> round(float(KaplanDataLaw.preset("kaplan2020").predict(2.29e10)), 3)   # all of WebText2
    2.091
    """

    name = "kaplan-d"
    citation = "Kaplan et al. 2020, eq. 1.2, Table 5 (D_c = 5.4e13; the OCR'd eq. 1.2 text reads 3.4e13)"
    equation = "L(D) = (D_c / D)^alpha_D"
    covariates = ("D",)
    covariate_units: ClassVar[dict[str, str]] = {"D": "tokens"}
    param_names = ("D_c", "alpha_D")
    param_units: ClassVar[dict[str, str]] = {"D_c": "tokens", "alpha_D": "1"}
    log_params = ("D_c",)
    bounds: ClassVar[dict[str, tuple[float, float]]] = {"D_c": (1.0, 1e40), "alpha_D": (1e-4, 3.0)}
    conventions: ClassVar[dict[str, str]] = dict(_CONV)
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "kaplan2020": {"params": {"D_c": 5.4e13, "alpha_D": 0.095},
                       "source": "Kaplan et al. 2020 eq. 1.2 / Table 5", "range": {"D": _RANGE_D}},
    }
    _example_params: ClassVar[dict[str, float]] = {"D_c": 5.4e13, "alpha_D": 0.095}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"D": (2e7, 2e10)}


class KaplanComputeLaw(_PurePowerLaw):
    """``L(C) = (C_c / C)^alpha_C`` with ``C`` in **PF-days** (Kaplan et al. 2020 eq. 1.3).

    Preset ``"kaplan2020"`` is the compute-efficient frontier ``L(C_min)`` (``C_c = 3.1e8`` PF-days,
    ``alpha_C = 0.050``); ``"kaplan2020-fixed-batch"`` is the naive fit at the fixed 2^19-token batch
    (``C_c = 1.6e7``, ``alpha_C = 0.057``), both Table 5. Convert FLOPs with :func:`flops_to_pf_days`.

    Examples
    --------
    >>> round(float(KaplanComputeLaw.preset("kaplan2020").predict(1.0)), 3)
    2.658
    """

    name = "kaplan-c"
    citation = "Kaplan et al. 2020, eq. 1.3, Table 5"
    equation = "L(C_min) = (C_c / C_min)^alpha_C   (C in PF-days)"
    covariates = ("C",)
    covariate_units: ClassVar[dict[str, str]] = {
        "C": "PF-days (1 PF-day = 8.64e19 FLOPs), C_min for the kaplan2020 preset",
    }
    param_names = ("C_c", "alpha_C")
    param_units: ClassVar[dict[str, str]] = {"C_c": "PF-days", "alpha_C": "1"}
    log_params = ("C_c",)
    bounds: ClassVar[dict[str, tuple[float, float]]] = {"C_c": (1e-30, 1e40), "alpha_C": (1e-4, 3.0)}
    conventions: ClassVar[dict[str, str]] = {
        **_CONV, "C": "PF-days, C = 6 N B S (embeddings and context FLOPs excluded)",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "kaplan2020": {"params": {"C_c": 3.1e8, "alpha_C": 0.050},
                       "source": "Kaplan et al. 2020 eq. 1.3 / Table 5 (L(C_min); Fig. 1 label shows 2.3e8)",
                       "range": {"C": (1e-8, 1e1)}},
        "kaplan2020-fixed-batch": {"params": {"C_c": 1.6e7, "alpha_C": 0.057},
                                   "source": "Kaplan et al. 2020 Table 5 (fixed batch; Fig. 13 label shows 2.0e8)",
                                   "range": {"C": (1e-8, 1e1)}},
    }
    _example_params: ClassVar[dict[str, float]] = {"C_c": 3.1e8, "alpha_C": 0.050}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"C": (1e-6, 1e1)}

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        return np.array([[10.0**e, al] for e in (-3, 0, 3, 6, 9, 12) for al in (0.02, 0.05, 0.1, 0.3)])


class KaplanLaw(ScalingLaw):
    """``L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D`` (Kaplan et al. 2020 eq. 1.5, Table 2).

    ``N`` non-embedding parameters, ``D`` tokens, early-stopped loss in nats/token.

    Examples
    --------
    >>> round(float(KaplanLaw.preset("kaplan2020").predict(1e9, 2.2e10)), 3)
    2.369
    """

    name = "kaplan"
    citation = "Kaplan et al. 2020, eq. 1.5 / 4.1, Table 2"
    equation = "L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D"
    covariates = ("N", "D")
    covariate_units: ClassVar[dict[str, str]] = {"N": "parameters (non-embedding)", "D": "tokens"}
    param_names = ("N_c", "D_c", "alpha_N", "alpha_D")
    param_units: ClassVar[dict[str, str]] = {
        "N_c": "parameters (non-embedding)", "D_c": "tokens", "alpha_N": "1", "alpha_D": "1",
    }
    log_params = ("N_c", "D_c")
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "N_c": (1.0, 1e40), "D_c": (1.0, 1e40), "alpha_N": (1e-4, 3.0), "alpha_D": (1e-4, 3.0),
    }
    conventions: ClassVar[dict[str, str]] = dict(_CONV)
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "kaplan2020": {"params": {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103},
                       "source": "Kaplan et al. 2020 Table 2 (eq. 1.5 fit)",
                       "range": {"N": _RANGE_N, "D": _RANGE_D}},
    }
    _example_params: ClassVar[dict[str, float]] = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"N": (1e6, 1.5e9), "D": (2e7, 2e10)}
    _example_noise = 0.003
    min_distinct: ClassVar[dict[str, int]] = {"N": 3, "D": 3}

    @classmethod
    def _form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        N, D = X
        return ((p["N_c"] / N) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / D) ** p["alpha_D"]

    @classmethod
    def _log_form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        # log L = alpha_D * LSE((alpha_N/alpha_D)(log N_c - log N), log D_c - log D): no overflow.
        N, D = X
        t1 = (p["alpha_N"] / p["alpha_D"]) * (np.log(p["N_c"]) - np.log(N))
        t2 = np.log(p["D_c"]) - np.log(D)
        return p["alpha_D"] * np.logaddexp(t1, t2)

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        g = [[10.0**en, 10.0**ed, an, ad] for en in (10, 13, 16) for ed in (10, 13, 16)
             for an in (0.04, 0.08, 0.2) for ad in (0.05, 0.1, 0.25)]
        return np.array(g)

    def overfit_penalty(self, N: Any, D: Any) -> np.ndarray:
        """``delta L = L(N, D)/L(N, inf) - 1 = (1 + (N/N_c)^(alpha_N/alpha_D) D_c/D)^alpha_D - 1`` (eq. 4.3)."""
        self._check_fitted()
        p = self.params_
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        return (1 + (N / p["N_c"]) ** (p["alpha_N"] / p["alpha_D"]) * p["D_c"] / D) ** p["alpha_D"] - 1


class KaplanStepsLaw(ScalingLaw):
    """``L(N, S_min) = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S`` (Kaplan et al. 2020 eq. 1.6 / 5.6, Table 3):
    the learning curve of a model of ``N`` non-embedding parameters after ``S_min`` minimum steps
    (convert steps at batch ``B`` with :func:`steps_min`).

    Examples
    --------
    >>> round(float(KaplanStepsLaw.preset("kaplan2020").predict(1e9, 2.5e5)), 3)
    2.374
    """

    name = "kaplan-n-smin"
    citation = "Kaplan et al. 2020, eq. 1.6 / 5.6, Table 3"
    equation = "L(N, S_min) = (N_c/N)^alpha_N + (S_c/S_min)^alpha_S"
    covariates = ("N", "S_min")
    covariate_units: ClassVar[dict[str, str]] = {
        "N": "parameters (non-embedding)", "S_min": "optimizer steps (at B >> B_crit)",
    }
    param_names = ("N_c", "S_c", "alpha_N", "alpha_S")
    param_units: ClassVar[dict[str, str]] = {
        "N_c": "parameters (non-embedding)", "S_c": "steps", "alpha_N": "1", "alpha_S": "1",
    }
    log_params = ("N_c", "S_c")
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "N_c": (1.0, 1e40), "S_c": (1e-6, 1e20), "alpha_N": (1e-4, 3.0), "alpha_S": (1e-4, 5.0),
    }
    conventions: ClassVar[dict[str, str]] = {
        **_CONV, "S_min": "steps at infinite batch, S_min = S / (1 + B_crit/B) (eq. 5.4)",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "kaplan2020": {"params": {"N_c": 6.5e13, "S_c": 2.1e3, "alpha_N": 0.077, "alpha_S": 0.76},
                       "source": "Kaplan et al. 2020 Table 3 (eq. 1.6 fit)",
                       "range": {"N": _RANGE_N, "S_min": (1e3, 2.5e5)}},
    }
    _example_params: ClassVar[dict[str, float]] = {"N_c": 6.5e13, "S_c": 2.1e3, "alpha_N": 0.077, "alpha_S": 0.76}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"N": (1e6, 1.5e9), "S_min": (1e3, 3e5)}
    _example_noise = 0.003
    min_distinct: ClassVar[dict[str, int]] = {"N": 3, "S_min": 3}

    @classmethod
    def _form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        N, S = X
        return (p["N_c"] / N) ** p["alpha_N"] + (p["S_c"] / S) ** p["alpha_S"]

    @classmethod
    def _log_form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        N, S = X
        return np.logaddexp(p["alpha_N"] * (np.log(p["N_c"]) - np.log(N)),
                            p["alpha_S"] * (np.log(p["S_c"]) - np.log(S)))

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        g = [[10.0**en, 10.0**es, an, a_s] for en in (10, 13, 16) for es in (1, 3, 5)
             for an in (0.04, 0.08, 0.2) for a_s in (0.3, 0.8, 1.5)]
        return np.array(g)


class KaplanCriticalBatchLaw(ScalingLaw):
    """``B_crit(L) = B_* / L^(1/alpha_B)`` (Kaplan et al. 2020 eq. 1.4 / 5.3): the critical batch size in
    **tokens** at loss ``L`` (nats/token), above which larger batches stop paying in steps (eq. 5.1).

    Presets: ``"kaplan2020"`` (``B_* = 2e8`` tokens, eq. 1.4) and ``"kaplan2020-table5"`` (``2.1e8``);
    ``alpha_B = 0.21`` in both.

    Examples
    --------
    >>> round(float(KaplanCriticalBatchLaw.preset("kaplan2020").predict(3.0)) / 1e6, 2)
    1.07
    """

    name = "kaplan-bcrit"
    citation = "Kaplan et al. 2020, eq. 1.4 / 5.3, Table 5"
    equation = "B_crit(L) = B_* / L^(1/alpha_B)"
    covariates = ("L",)
    covariate_units: ClassVar[dict[str, str]] = {"L": "loss, nats/token"}
    target = "B_crit"
    target_units = "tokens"
    param_names = ("B_star", "alpha_B")
    param_units: ClassVar[dict[str, str]] = {"B_star": "tokens", "alpha_B": "1"}
    log_params = ("B_star",)
    bounds: ClassVar[dict[str, tuple[float, float]]] = {"B_star": (1.0, 1e30), "alpha_B": (1e-3, 10.0)}
    conventions: ClassVar[dict[str, str]] = {"B": "tokens", "L": "nats/token (WebText2)"}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "kaplan2020": {"params": {"B_star": 2e8, "alpha_B": 0.21}, "source": "Kaplan et al. 2020 eq. 1.4",
                       "range": {"L": (2.0, 6.0)}},
        "kaplan2020-table5": {"params": {"B_star": 2.1e8, "alpha_B": 0.21},
                              "source": "Kaplan et al. 2020 Table 5", "range": {"L": (2.0, 6.0)}},
    }
    _example_params: ClassVar[dict[str, float]] = {"B_star": 2e8, "alpha_B": 0.21}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"L": (2.0, 6.0)}
    min_distinct: ClassVar[dict[str, int]] = {"L": 3}

    @classmethod
    def _form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        return p["B_star"] / X[0] ** (1.0 / p["alpha_B"])

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        return np.array([[10.0**e, a] for e in (6, 8, 10) for a in (0.1, 0.2, 0.5, 1.0)])


class KaplanOptimalSizeLaw(MonomialLaw):
    """``N_opt(C_min) = N_e * C_min^p_N``, ``C_min`` in PF-days (Kaplan et al. 2020 Table 6, eq. 6.1):
    the compute-efficient model size (non-embedding parameters). Fitted by least squares on log.

    Examples
    --------
    >>> f"{float(KaplanOptimalSizeLaw.preset('kaplan2020').predict(1e3)):.3g}"
    '2.01e+11'
    """

    name = "kaplan-nopt"
    citation = "Kaplan et al. 2020, Table 6 and eq. 6.1"
    equation = "N_opt = N_e * C_min^p_N   (C_min in PF-days)"
    covariates = ("C",)
    covariate_units: ClassVar[dict[str, str]] = {"C": "PF-days (C_min)"}
    target = "N_opt"
    target_units = "parameters (non-embedding)"
    param_names = ("N_e", "p_N")
    param_units: ClassVar[dict[str, str]] = {"N_e": "parameters (non-embedding)", "p_N": "1"}
    log_params = ("N_e",)
    conventions: ClassVar[dict[str, str]] = {"N": "non-embedding parameters", "C": "PF-days (C_min)"}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "kaplan2020": {"params": {"N_e": 1.3e9, "p_N": 0.73}, "source": "Kaplan et al. 2020 Table 6",
                       "range": {"C": (1e-8, 1e1)}},
    }
    _example_params: ClassVar[dict[str, float]] = {"N_e": 1.3e9, "p_N": 0.73}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"C": (1e-6, 1e1)}
    _example_noise = 0.05


# ---------------------------------------------------------------------- closed forms (functions)

#: Table 6 scales and exponents of the compute-efficient frontier (C_min in PF-days).
_TABLE6 = {"N": (1.3e9, 0.73), "B": (2.0e6, 0.24), "S_min": (5.4e3, 0.03), "D": (2e10, 0.27)}


@dataclass(frozen=True)
class KaplanFrontier:
    """Compute-efficient training at ``C_min`` PF-days (Kaplan et al. 2020 Table 6, eq. 1.3)."""

    C_min_pf_days: np.ndarray
    N_opt: np.ndarray          #: non-embedding parameters
    B_tokens: np.ndarray       #: batch size, tokens
    S_min: np.ndarray          #: minimum steps
    D_opt: np.ndarray          #: tokens (Table 6 scale 2e10; eq. 6.7 gives 4e10 at B = B_crit)
    loss: np.ndarray           #: L(C_min), nats/token

    def to_dict(self) -> dict[str, Any]:
        from .. import __version__

        d: dict[str, Any] = {k: np.asarray(v, dtype=float).ravel().tolist() for k, v in self.__dict__.items()}
        d["source"] = "Kaplan et al. 2020 Table 6, eq. 1.3"
        d["scalelab_version"] = __version__
        return d

    def report(self) -> str:
        from ..units import format_count

        lines = ["Kaplan et al. 2020 compute-efficient frontier (Table 6; N non-embedding, B in tokens)"]
        for i, c in enumerate(np.ravel(self.C_min_pf_days)):
            lines.append(f"  C_min = {c:.3g} PF-days: N_opt = {format_count(float(np.ravel(self.N_opt)[i]))}, "
                         f"B = {format_count(float(np.ravel(self.B_tokens)[i]))} tokens, "
                         f"S_min = {float(np.ravel(self.S_min)[i]):.4g}, "
                         f"D = {format_count(float(np.ravel(self.D_opt)[i]))}, "
                         f"L = {float(np.ravel(self.loss)[i]):.4g}")
        return "\n".join(lines)


def compute_efficient_frontier(C_min_pf_days: Any) -> KaplanFrontier:
    """``N_opt``, ``B``, ``S_min``, ``D_opt`` (Table 6) and ``L(C_min)`` (eq. 1.3) at ``C_min`` PF-days.

    Examples
    --------
    >>> f = compute_efficient_frontier(1.0)
    >>> f"{float(f.N_opt[0]):.2g}", f"{float(f.B_tokens[0]):.2g}", round(float(f.loss[0]), 3)
    ('1.3e+09', '2e+06', 2.658)
    """
    C = np.atleast_1d(np.asarray(C_min_pf_days, dtype=float))
    if np.any(~np.isfinite(C) | (C <= 0)):
        raise ConfigError(explain("C_min must be positive PF-days", value=C_min_pf_days,
                                  fix="convert FLOPs with flops_to_pf_days()"))
    out = {k: s * C**p for k, (s, p) in _TABLE6.items()}
    loss = (3.1e8 / C) ** 0.050
    return KaplanFrontier(C, out["N"], out["B"], out["S_min"], out["D"], loss)


def steps_min(S: Any, B: Any, B_crit: Any) -> np.ndarray:
    """``S_min = S / (1 + B_crit/B)`` (Kaplan et al. 2020 eq. 5.4); ``B`` and ``B_crit`` in tokens."""
    S, B, Bc = (np.asarray(v, dtype=float) for v in (S, B, B_crit))
    return S / (1 + Bc / B)


def compute_min(C: Any, B: Any, B_crit: Any) -> np.ndarray:
    """``C_min = C / (1 + B/B_crit)`` (Kaplan et al. 2020 eq. 5.5); ``B`` and ``B_crit`` in tokens."""
    C, B, Bc = (np.asarray(v, dtype=float) for v in (C, B, B_crit))
    return C / (1 + B / Bc)


def overfit_free_tokens(N: Any, coefficient: float = 5e3, exponent: float = 0.74) -> np.ndarray:
    """Tokens needed to keep overfitting below 2%: ``D ≳ 5e3 N^0.74`` (Kaplan et al. 2020 eq. 4.4).

    The coefficient is the widely quoted 5e3; the OCR'd paper text is garbled there ("6x10^5"), so it
    is a parameter. ``N`` non-embedding parameters.
    """
    return coefficient * np.asarray(N, dtype=float) ** exponent


def off_optimum_cost(size_ratio: Any, alpha_N: float = 0.076, alpha_S: float = 0.76) -> dict[str, np.ndarray]:
    """Extra compute and steps when training a model ``size_ratio = N / N_eff`` times the efficient size
    to the same loss (Kaplan et al. 2020 App. B.4, eq. B.16-B.17).

    ``compute = r [1 + (alpha_S/alpha_N)(1 - r^-alpha_N)]^(-1/alpha_S)`` and ``steps = compute / r``.

    Examples
    --------
    >>> c = off_optimum_cost(2.2)          # "45% fewer steps at 20% more compute"
    >>> round(float(c["compute"]), 3), round(float(c["steps"]), 3)
    (1.203, 0.547)
    """
    r = np.asarray(size_ratio, dtype=float)
    if np.any(~np.isfinite(r) | (r <= 0)):
        raise ConfigError(explain("size_ratio must be positive", value=size_ratio))
    steps = (1 + (alpha_S / alpha_N) * (1 - r**-alpha_N)) ** (-1 / alpha_S)
    return {"compute": r * steps, "steps": steps}
