"""Mixture-of-experts scaling laws: Efficiency Leverage (Tian et al. 2025), Clark et al. 2022, Krajewski et al. 2024.

Legend (symbols and units used in this module):

==============  ======================================================================================
``A``           activation ratio (Tian): ``(E_a + E_s) / (E + E_s)``, fraction of expert parameters active
``G``           granularity. Tian: ``G = 2 d_model / d_expert``; Krajewski: ``G = d_ff / d_expert =
                4 d_model / d_expert`` (the same number means experts of different size across papers)
``C``           training compute, FLOPs (Tian: ``C = M D``, ``M`` non-embedding FLOPs/token of the
                activated parameters)
``EL``          efficiency leverage: ``C_dense / C_moe`` at equal loss (dimensionless, 1 for dense)
``N``           Clark: dense-equivalent (active) parameters; Krajewski: non-embedding parameters (active)
``E``           number of experts (Clark); ``Ê`` its saturating transform
``D``           training tokens
``L``           loss, nats/token
==============  ======================================================================================

Forms
-----
* Tian et al. 2025 (arXiv:2507.17702) eq. 13: ``EL(A, G, C) = Â^(alpha + gamma (log G)^2 + beta log G)``,
  ``alpha = a + d log C``, ``1/Â = 1/(A + (1/A_start - 1/A_max)^-1) + 1/A_max``. Constants (Table 2)
  were read in the paper, but the **log base is not stated** in the section read; here the logs are base 10
  (with natural logs the constants give absurd leverage). With base 10 the constants give EL = 5.37 at
  A = 3.1%, G = 12, C = 1e22, not the paper's "> 7": treat the preset as unconfirmed (it warns).
* Clark et al. 2022 (arXiv:2202.01169): ``log L = a log N + b log Ê + c log N log Ê + d`` (base-10 logs),
  ``1/Ê = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max``. **Form only**: the constants seen so far come
  from one survey transcription with an inferred log base, so no preset ships; refit on your runs.
* Krajewski et al. 2024 (arXiv:2402.07871) eq. 9: ``L(N, D, G) = c + (g / G^gamma + a) N^-alpha + b D^-beta``.
  **Form only** (one transcription of the constants); refit on your runs.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar, Self

import numpy as np

from ..errors import ConventionWarning, explain
from .base import ScalingLaw, log_sum_exp

__all__ = ["ClarkMoELaw", "EfficiencyLeverageLaw", "KrajewskiMoELaw", "saturating_transform"]


def saturating_transform(x: Any, x_start: Any, x_max: Any, offset: float = 0.0) -> np.ndarray:
    """``1/x_hat = 1/(x - offset + (1/x_start - 1/x_max)^-1) + 1/x_max`` (Clark et al. 2022 eq. 3 with
    ``offset = 1`` for expert counts; Tian et al. 2025 with ``offset = 0`` for activation ratios)."""
    x = np.asarray(x, dtype=float)
    inner = 1.0 / (1.0 / x_start - 1.0 / x_max)
    return 1.0 / (1.0 / (x - offset + inner) + 1.0 / x_max)


class EfficiencyLeverageLaw(ScalingLaw):
    """``EL(A, G, C) = Â^(alpha + gamma (log10 G)^2 + beta log10 G)``, ``alpha = a + d log10 C``
    (Tian et al. 2025 eq. 13): compute leverage of an MoE over a dense model at equal loss.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     law = EfficiencyLeverageLaw.preset("tian2025")
    >>> round(float(law.predict(0.031, 12, 1e22)), 2)      # log10 reading; the paper claims > 7
    5.37
    """

    name = "tian-el"
    citation = "Tian et al. 2025, Towards Greater Leverage: Scaling Laws for Efficient MoE LMs, eq. 13, Table 2"
    equation = "EL = Â^(alpha + gamma (log10 G)^2 + beta log10 G), alpha = a + d log10 C"
    covariates = ("A", "G", "C")
    covariate_units: ClassVar[dict[str, str]] = {
        "A": "activation ratio (fraction)", "G": "granularity 2 d_model / d_expert", "C": "FLOPs (C = M D)",
    }
    target = "EL"
    target_units = "efficiency leverage C_dense / C_moe (dimensionless)"
    param_names = ("a", "d", "gamma", "beta", "A_start", "A_max")
    param_units: ClassVar[dict[str, str]] = {
        "a": "1", "d": "1", "gamma": "1", "beta": "1", "A_start": "fraction", "A_max": "fraction",
    }
    log_params = ("A_start", "A_max")
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "a": (-20.0, 20.0), "d": (-5.0, 5.0), "gamma": (-5.0, 5.0), "beta": (-5.0, 5.0), "A_start": (1e-8, 1.0),
        "A_max": (1e-6, 1e30),
    }
    conventions: ClassVar[dict[str, str]] = {
        "log": "base 10 (not stated in the paper section read)", "G": "2 d_model / d_expert",
        "C": "M D FLOPs, M non-embedding FLOPs/token", "fit": "Huber + BFGS on points with EL < 6",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tian2025": {
            "params": {"a": 1.23, "d": -7.61e-2, "gamma": 1.67e-2, "beta": -1.17e-1, "A_start": 1.63e-2,
                       "A_max": 5.28e16},
            "source": ("Tian et al. 2025 Table 2 (read in the paper); log base 10 assumed, unconfirmed: "
                       "gives EL 5.37 at A 3.1%, G 12, C 1e22 where the paper claims > 7"),
            "range": {"A": (0.008, 1.0), "G": (1.0, 16.0), "C": (1e18, 3e20)},
            "confirmed": False,
        },
    }
    _example_params: ClassVar[dict[str, float]] = {
        "a": 1.23, "d": -7.61e-2, "gamma": 1.67e-2, "beta": -1.17e-1, "A_start": 1.63e-2, "A_max": 5.28e16,
    }
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"A": (0.01, 0.5), "G": (1.0, 32.0), "C": (1e18, 1e21)}
    _example_noise = 0.005
    _example_n = 150
    min_distinct: ClassVar[dict[str, int]] = {"A": 3, "G": 3, "C": 3}

    @classmethod
    def preset(cls, name: str, **options: Any) -> Self:
        """As :meth:`ScalingLaw.preset`; warns :class:`ConventionWarning` for unconfirmed constants."""
        law = super().preset(name, **options)
        if not cls.presets[name].get("confirmed", True):
            warnings.warn(explain(f"preset {name!r} of {cls.name} is not confirmed against the paper",
                                  value=cls.presets[name]["source"],
                                  fix="refit on your own MoE vs dense runs before relying on it"),
                          ConventionWarning, stacklevel=2)
        return law

    @classmethod
    def _log_form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        A, G, C = X
        with np.errstate(all="ignore"):
            Ahat = saturating_transform(A, p["A_start"], p["A_max"])
            lg = np.log10(G)
            expo = p["a"] + p["d"] * np.log10(C) + p["gamma"] * lg * lg + p["beta"] * lg
            return expo * np.log(Ahat)

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        rows = []
        for a in (0.5, 1.2, 3.0):
            for d in (-0.2, -0.05, 0.0):
                for gm in (0.0, 0.02):
                    for be in (-0.1, 0.0):
                        for a_s in (1e-3, 1e-2, 5e-2):
                            rows.append([a, d, gm, be, a_s, 1e10])
        return np.array(rows)


class ClarkMoELaw(ScalingLaw):
    """``log10 L = a log10 N + b log10 Ê + c log10 N log10 Ê + d`` (Clark et al. 2022 eq. 1-3), form only.

    ``N`` dense-equivalent (active) parameters, ``E`` experts, ``Ê`` saturating in ``E`` (``E_start``,
    ``E_max``). No preset: the transcribed constants are unconfirmed (see the module docstring).
    """

    name = "clark-moe"
    citation = "Clark et al. 2022, Unified Scaling Laws for Routed Language Models, eq. 1-3 (form only)"
    equation = "log10 L = a log10 N + b log10 Ê + c log10 N log10 Ê + d"
    covariates = ("N", "E")
    covariate_units: ClassVar[dict[str, str]] = {
        "N": "parameters (dense-equivalent, active)", "E": "number of experts (1 = dense)",
    }
    param_names = ("a", "b", "c", "d", "E_start", "E_max")
    param_units: ClassVar[dict[str, str]] = {
        "a": "1", "b": "1", "c": "1", "d": "log10 nats/token", "E_start": "experts", "E_max": "experts",
    }
    log_params = ("E_start", "E_max")
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "a": (-2.0, 2.0), "b": (-2.0, 2.0), "c": (-1.0, 1.0), "d": (-5.0, 5.0), "E_start": (1.0001, 1e3),
        "E_max": (1.01, 1e6),
    }
    conventions: ClassVar[dict[str, str]] = {"log": "base 10", "N": "active (dense-equivalent) parameters"}
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # Synthetic truth for the contract test only (the S-BASE row as transcribed; not a published preset).
    _example_params: ClassVar[dict[str, float]] = {
        "a": -0.082, "b": -0.108, "c": 0.009, "d": 1.104, "E_start": 1.847, "E_max": 314.5,
    }
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"N": (1.5e7, 1.3e9), "E": (1.0, 512.0)}
    _example_noise = 0.002
    _example_n = 120
    min_distinct: ClassVar[dict[str, int]] = {"N": 3, "E": 3}

    @classmethod
    def _log_form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        N, E = X
        with np.errstate(all="ignore"):
            ln = np.log10(N)
            le = np.log10(saturating_transform(E, p["E_start"], p["E_max"], offset=1.0))
            return math.log(10.0) * (p["a"] * ln + p["b"] * le + p["c"] * ln * le + p["d"])

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        rows = []
        for a in (-0.15, -0.08, -0.03):
            for b in (-0.15, -0.05):
                for c in (0.0, 0.01):
                    for es in (1.5, 3.0):
                        for em in (100.0, 500.0):
                            d = float(np.mean(np.log10(y) - a * np.log10(X[0])))
                            rows.append([a, b, c, d, es, em])
        return np.array(rows)


class KrajewskiMoELaw(ScalingLaw):
    """``L(N, D, G) = c + (g / G^gamma + a) N^-alpha + b D^-beta`` (Krajewski et al. 2024 eq. 9), form only.

    ``N`` non-embedding (active) parameters, ``D`` tokens, ``G = d_ff / d_expert``. No preset: the
    transcribed constants are unconfirmed (see the module docstring).
    """

    name = "krajewski-moe"
    citation = "Krajewski et al. 2024, Scaling Laws for Fine-Grained Mixture of Experts, eq. 9 (form only)"
    equation = "L(N, D, G) = c + (g / G^gamma + a) N^-alpha + b D^-beta"
    covariates = ("N", "D", "G")
    covariate_units: ClassVar[dict[str, str]] = {
        "N": "parameters (non-embedding)", "D": "tokens", "G": "granularity d_ff / d_expert",
    }
    param_names = ("c", "a", "g", "gamma", "alpha", "b", "beta")
    param_units: ClassVar[dict[str, str]] = {
        "c": "nats/token", "a": "nats/token * params^alpha", "g": "nats/token * params^alpha", "gamma": "1",
        "alpha": "1", "b": "nats/token * tokens^beta", "beta": "1",
    }
    log_params = ("c", "a", "g", "b")
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "c": (1e-6, 1e3), "a": (1e-10, 1e30), "g": (1e-10, 1e30), "gamma": (0.0, 5.0), "alpha": (0.0, 3.0),
        "b": (1e-10, 1e30), "beta": (0.0, 3.0),
    }
    conventions: ClassVar[dict[str, str]] = {
        "N": "non-embedding parameters", "G": "d_ff / d_expert (= 4 d_model / d_expert)",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    _example_params: ClassVar[dict[str, float]] = {
        "c": 0.47, "a": 18.1, "g": 2.1, "gamma": 0.58, "alpha": 0.115, "b": 30.8, "beta": 0.147,
    }
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"N": (1e7, 3e9), "D": (1e9, 1e11), "G": (1.0, 64.0)}
    _example_noise = 0.002
    _example_n = 150
    min_distinct: ClassVar[dict[str, int]] = {"N": 3, "D": 3, "G": 3}

    @classmethod
    def _form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        N, D, G = X
        return p["c"] + (p["g"] / G ** p["gamma"] + p["a"]) * N ** -p["alpha"] + p["b"] * D ** -p["beta"]

    @classmethod
    def _log_form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        N, D, G = X
        # LSE of log c, log(a) - alpha log N, log(g) - gamma log G - alpha log N, log b - beta log D
        with np.errstate(all="ignore"):
            t = np.stack(np.broadcast_arrays(
                np.log(p["c"]), np.log(p["a"]) - p["alpha"] * np.log(N),
                np.log(p["g"]) - p["gamma"] * np.log(G) - p["alpha"] * np.log(N),
                np.log(p["b"]) - p["beta"] * np.log(D)))
            return log_sum_exp(t)[0]

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        rows = []
        ymin = float(np.min(y))
        for fc in (0.2, 0.6):
            for al in (0.1, 0.3):
                for be in (0.1, 0.3):
                    for gm in (0.3, 0.8):
                        for s in (0.5, 5.0):
                            rows.append([fc * ymin, s * 1e8**al * 0.3, s * 1e8**al * 0.1, gm, al,
                                         s * 1e10**be * 0.3, be])
        return np.array(rows)
