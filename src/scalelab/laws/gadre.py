"""Gadre et al. 2024, "Language models scale reliably with over-training and on downstream tasks"
(arXiv:2403.08540; code and runs: github.com/mlfoundations/scaling).

Legend (symbols and units used in this module):

==============  ======================================================================================
``N``           parameters, **total** (the open_lm ``params`` field, embeddings included)
``M``           token multiplier ``M = D / N`` (tokens per parameter; 20 is "Chinchilla-optimal")
``D``           training tokens, ``D = M N``
``C``           training compute in FLOPs, ``C = 6 N D = 6 N^2 M``
``L``           C4 validation loss, nats/token (GPT-NeoX tokenizer)
``E``           irreducible loss (nats/token); ``a``, ``b`` scale terms; ``eta`` the compute exponent
``Err``         average top-1 error over downstream tasks (fraction, 0-1)
``epsilon``     asymptote of ``Err`` as ``L`` grows (the error of a model no better than chance; fraction)
``k``, ``gamma``  scale (fraction) and rate (per nat) of the exponential in the error law
==============  ======================================================================================

Over-training law (§3, eq. 4): ``L(C, M) = E + (a M^eta + b M^-eta) C^-eta``. It is Chinchilla's form with
``alpha = beta = 2 eta`` after ``C = 6 N D`` and ``D = M N``, so ``eta`` does not depend on ``M`` and a fit
at ``M ≈ 20`` extrapolates to heavily over-trained runs. The authors' code fits the equivalent
``L = a' N^b' + b 6^(b'/2) (M N)^b' + E`` with ``b' = -2 eta`` and ``a' = a 6^-eta``
(``scaling/laws.py::powlaw_ours``) by ``scipy.optimize.curve_fit`` (least squares on the raw loss) from a
4 x 4 x 2 x 4 grid of starts, keeping the lowest RMS residual (``curve_fit_powlaw_ours``). The defaults
here reproduce that: ``loss="ls"``, ``space="linear"``, :func:`gadre_init_grid`.

Loss-to-error law (§4, eq. 5): ``Err(L) = epsilon - k exp(-gamma L)``, fitted by ``curve_fit`` on the
same runs plus the 1.4B model at ``M = 20`` (``scaling/shared.py::fit_ds``).

Validity: 104 runs, 0.011B-6.9B, ``M`` in 5-640, on C4, RedPajama and RefinedWeb; fit points are the
four small models (0.011B-0.411B) at ``M = 20`` plus the 0.011B model at ``M = 320``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, explain
from .base import ScalingLaw

__all__ = ["GADRE_FIT_MODELS", "GADRE_SUBSET_TASKS", "GadreDownstreamLaw", "GadreLaw", "gadre_init_grid"]

#: The open_lm shapes whose runs the authors fit the loss law on (scaling/shared.py::fit_ds).
GADRE_FIT_MODELS = ("d=96_l=8_h=4", "d=512_l=8_h=4", "d=576_l=24_h=8", "d=1024_l=24_h=8")
#: The 17-task subset whose average top-1 error the paper's Figure 1 predicts (scaling/constants.py SUBSET).
GADRE_SUBSET_TASKS = (
    "bigbench_operators", "pubmed_qa_labeled", "hellaswag_zeroshot", "boolq", "arc_easy", "coqa",
    "bigbench_dyck_languages", "lambada_openai", "bigbench_novel_concepts", "winograd",
    "bigbench_cs_algorithms", "commonsense_qa", "bigbench_qa_wikidata", "hellaswag", "copa", "squad", "piqa",
)


def gadre_init_grid() -> np.ndarray:
    """The authors' 128 starts in this law's parameters ``(E, a, b, eta)``, shape (128, 4).

    Their grid (``curve_fit_powlaw_ours``): ``a' in {1e2, 3e2, 1e3, 3e3}``, ``b in {1e2, 3e2, 1e3, 3e3}``,
    ``b' in {-0.1, -0.3}``, ``E in {0, 1, 2, 10}``; mapped with ``eta = -b'/2`` and ``a = a' 6^eta``.
    """
    rows = []
    for a_p in (1e2, 3e2, 1e3, 3e3):
        for b in (1e2, 3e2, 1e3, 3e3):
            for b_p in (-0.1, -0.3):
                for E in (0.0, 1.0, 2.0, 10.0):
                    eta = -b_p / 2
                    rows.append([E, a_p * 6.0**eta, b, eta])
    return np.array(rows)


class _FitAsGadre(ScalingLaw):
    """The fitting defaults of both Gadre et al. laws: least squares on the raw (linear) value, as the
    authors' code fits them, with up to 400 iterations. Not a law itself (no ``name``: not registered)."""

    def __init__(self, *, loss: str = "ls", delta: float = 1e-3, space: str = "linear", asymmetry: float = 10.0,
                 init: Any = "grid", n_bootstrap: int = 0, level: float = 0.95, random_state: Any = None,
                 extrapolation_factor: float = 10.0, max_iter: int = 400, n_jobs: int = 1) -> None:
        super().__init__(loss=loss, delta=delta, space=space, asymmetry=asymmetry, init=init,
                         n_bootstrap=n_bootstrap, level=level, random_state=random_state,
                         extrapolation_factor=extrapolation_factor, max_iter=max_iter, n_jobs=n_jobs)


class GadreLaw(_FitAsGadre):
    """``L(N, M) = E + (a M^eta + b M^-eta) (6 N^2 M)^-eta`` (Gadre et al. 2024 eq. 4), the over-training law.

    ``N`` total parameters, ``M = D/N`` tokens per parameter; ``C = 6 N D``. Defaults fit as the authors'
    code does (least squares on raw loss from their 128-start grid).

    Examples
    --------
    >>> law = GadreLaw.preset("gadre2024-rpj")
    >>> round(float(law.predict(1.4e9, 640)), 3)          # 1.4B over-trained 32x Chinchilla
    2.542
    """

    name = "gadre"
    citation = ("Gadre et al. 2024, Language models scale reliably with over-training and on downstream "
                "tasks, eq. 4; fit as scaling/shared.py::fit_ds")
    equation = "L(N, M) = E + (a M^eta + b M^-eta) C^-eta,  C = 6 N^2 M"
    covariates = ("N", "M")
    covariate_units: ClassVar[dict[str, str]] = {
        "N": "parameters (total, embeddings included)", "M": "tokens per parameter (D/N)",
    }
    param_names = ("E", "a", "b", "eta")
    param_units: ClassVar[dict[str, str]] = {
        "E": "nats/token", "a": "nats/token * FLOPs^eta", "b": "nats/token * FLOPs^eta", "eta": "1",
    }
    log_params = ("a", "b")
    bounds: ClassVar[dict[str, tuple[float, float]]] = {
        "E": (0.0, 1e3), "a": (1e-12, 1e30), "b": (1e-12, 1e30), "eta": (1e-4, 3.0),
    }
    conventions: ClassVar[dict[str, str]] = {
        "N": "total parameters", "C": "6 N D FLOPs", "L": "C4 validation loss, nats/token",
        "objective": "least squares on raw loss (the authors' curve_fit)",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gadre2024-rpj": {
            "params": {"E": 1.84, "a": 212.0, "b": 367.0, "eta": 0.136},
            "source": ("Gadre et al. 2024, RedPajama training, C4-eval loss (constants as transcribed in "
                       "third-party code; refitting the authors' 5 runs with their procedure gives "
                       "E 1.8366, a 212.2, b 366.7, eta 0.13643)"),
            "range": {"N": (1.06e7, 4.12e8), "M": (20.0, 320.0)},
        },
    }
    _example_params: ClassVar[dict[str, float]] = {"E": 1.84, "a": 212.0, "b": 367.0, "eta": 0.136}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"N": (1e7, 5e8), "M": (5.0, 640.0)}
    _example_noise = 0.003
    min_distinct: ClassVar[dict[str, int]] = {"N": 2, "M": 2}

    @classmethod
    def _form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        from ..units import training_flops

        N, M = X
        C = training_flops(N, N * M)  # D = M N
        return p["E"] + (p["a"] * M ** p["eta"] + p["b"] * M ** -p["eta"]) * C ** -p["eta"]

    @classmethod
    def _log_model(cls, theta: np.ndarray, X: tuple[np.ndarray, ...],
                   jac: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        # theta = (E, log a, log b, eta). L = E + exp(la + eta (lM - lC)) + exp(lb - eta (lM + lC)).
        theta = np.atleast_2d(theta)
        N, M = X
        lM = np.log(M)[None, :]
        lC = (math.log(6.0) + 2 * np.log(N) + np.log(M))[None, :]
        E, la, lb, eta = (theta[:, i : i + 1] for i in range(4))
        ta = np.exp(la + eta * (lM - lC))
        tb = np.exp(lb - eta * (lM + lC))
        s = E + ta + tb
        f = np.log(s)
        if not jac:
            return f, None
        J = np.empty((theta.shape[0], 4, lM.shape[1]))
        J[:, 0] = 1.0 / s
        J[:, 1] = ta / s
        J[:, 2] = tb / s
        J[:, 3] = (ta * (lM - lC) - tb * (lM + lC)) / s
        return f, J

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        return gadre_init_grid()

    @classmethod
    def _derived(cls, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # Chinchilla-equivalent exponent alpha = beta = 2 eta; loss-minimising tokens per parameter at fixed
        # C: d/dM (a M^eta + b M^-eta) = 0  ->  M* = (b/a)^(1/(2 eta)).
        with np.errstate(all="ignore"):
            return {"alpha_equiv": 2 * p["eta"], "M_opt": (p["b"] / p["a"]) ** (1 / (2 * p["eta"]))}

    def to_chinchilla(self) -> Any:
        """The same law in Chinchilla's form: with ``C = 6 N D`` and ``D = M N``, eq. 4 is
        ``E + A/N^alpha + B/D^beta`` with ``A = a 6^-eta``, ``B = b 6^-eta``, ``alpha = beta = 2 eta``.
        The result has Chinchilla's forecasts (``compute_optimal``, ``isoloss``, and ``inference_optimal``,
        the over-training trade-off that motivates Gadre et al.); it carries no intervals.

        Examples
        --------
        >>> ch = GadreLaw.preset("gadre2024-rpj").to_chinchilla()
        >>> round(ch.params_["alpha"], 3), round(ch.params_["A"], 1)
        (0.272, 166.2)
        """
        from .chinchilla import ChinchillaLaw

        self._check_fitted()
        p = self.params_
        f = 6.0 ** -p["eta"]
        law = ChinchillaLaw(level=self.level, extrapolation_factor=self.extrapolation_factor)
        params = {"E": p["E"], "A": p["a"] * f, "B": p["b"] * f, "alpha": 2 * p["eta"], "beta": 2 * p["eta"]}
        law.theta_ = ChinchillaLaw._to_theta(params)[0]
        rng = getattr(self, "X_range_", None)
        if rng:
            (n_lo, n_hi), (m_lo, m_hi) = rng["N"], rng["M"]
            fitted_range: dict[str, tuple[float, ...]] | None = {"N": (n_lo, n_hi), "D": (n_lo * m_lo, n_hi * m_hi)}
        else:
            fitted_range = None
        law.result_ = law._new_result(params, fitted_range=fitted_range,
                                      source=f"converted from {self.name} ({getattr(self, 'preset_', None) or 'fit'})")
        return law

    def predict_from_tokens(self, N: Any, D: Any) -> np.ndarray:
        """Loss at ``N`` parameters and ``D`` tokens (``M = D/N``)."""
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        return self.predict(N, D / N)

    def compute_optimal(self, C: Any) -> Any:
        """Loss-minimising ``N`` and ``D`` at ``C`` FLOPs: ``M* = (b/a)^(1/(2 eta))`` is the same at every
        budget, ``N = sqrt(C / (6 M*))``, ``D = M* N`` (closed form from eq. 4)."""
        from .chinchilla import ComputeOptimal

        self._check_fitted()
        Cs = np.atleast_1d(np.asarray(C, dtype=float)).ravel()
        if np.any(~np.isfinite(Cs) | (Cs <= 0)):
            raise ConfigError(explain("compute budgets must be positive FLOPs", value=C))
        m_opt = self.derived()["M_opt"]
        from ..units import tokens_for_training_flops

        N = np.sqrt(tokens_for_training_flops(Cs, m_opt))  # C = 6 N (M N)
        D = m_opt * N
        L = self.predict(N, np.full_like(N, m_opt))
        return ComputeOptimal(self.name or "", Cs, N, D, np.atleast_1d(L), D / N,
                              method="closed form (Gadre et al. 2024 eq. 4: M* = (b/a)^(1/(2 eta)))")


class GadreDownstreamLaw(_FitAsGadre):
    """``Err(L) = epsilon - k exp(-gamma L)`` (Gadre et al. 2024 eq. 5): average top-1 error from C4 loss.

    Examples
    --------
    >>> round(float(GadreDownstreamLaw.preset("gadre2024-rpj").predict(2.542)), 3)
    0.498
    """

    name = "gadre-downstream"
    citation = "Gadre et al. 2024, eq. 5; fit as scaling/shared.py::fit_ds (curve_fit, default starts)"
    equation = "Err(L) = epsilon - k exp(-gamma L)"
    covariates = ("L",)
    covariate_units: ClassVar[dict[str, str]] = {"L": "C4 validation loss, nats/token"}
    target = "Err"
    target_units = "average top-1 error (fraction)"
    param_names = ("epsilon", "k", "gamma")
    param_units: ClassVar[dict[str, str]] = {"epsilon": "fraction", "k": "fraction", "gamma": "per nat/token"}
    bounds: ClassVar[dict[str, tuple[float, float]]] = {"epsilon": (0.0, 10.0), "k": (0.0, 1e6), "gamma": (0.0, 50.0)}
    conventions: ClassVar[dict[str, str]] = {
        "L": "C4 validation loss", "Err": "mean of (1 - accuracy) over the task set",
        "objective": "least squares on raw error (the authors' curve_fit)",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gadre2024-rpj": {
            "params": {"epsilon": 0.857, "k": 2.21, "gamma": 0.715},
            "source": ("Gadre et al. 2024, RedPajama training, 17-task average top-1 error vs C4-eval loss "
                       "(third-party transcription; the authors' procedure on their runs gives "
                       "0.85699, 2.2065, 0.71459)"),
            "range": {"L": (2.77, 5.4)},
        },
    }
    _example_params: ClassVar[dict[str, float]] = {"epsilon": 0.857, "k": 2.21, "gamma": 0.715}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"L": (2.5, 5.5)}
    _example_noise = 0.003
    positive_covariates = ("L",)
    min_distinct: ClassVar[dict[str, int]] = {"L": 4}

    @classmethod
    def _form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        return p["epsilon"] - p["k"] * np.exp(-p["gamma"] * X[0])

    @classmethod
    def _log_model(cls, theta: np.ndarray, X: tuple[np.ndarray, ...],
                   jac: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        theta = np.atleast_2d(theta)
        L = X[0][None, :]
        eps, k, g = theta[:, :1], theta[:, 1:2], theta[:, 2:3]
        ex = np.exp(-g * L)
        s = eps - k * ex
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.log(s)  # NaN where the form is not positive: the fitter rejects such steps
        if not jac:
            return f, None
        J = np.empty((theta.shape[0], 3, L.shape[1]))
        J[:, 0] = 1.0 / s
        J[:, 1] = -ex / s
        J[:, 2] = k * L * ex / s
        return f, J

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        # curve_fit's default start is (1, 1, 1); a few more guard against a bad basin.
        return np.array([[1.0, 1.0, 1.0], [0.9, 2.0, 0.7], [1.0, 5.0, 1.5], [0.8, 0.5, 0.3]])
