"""Hyperparameter laws: optimal learning rate and batch size as published, each with its conventions.

Legend (symbols and units used in this module):

==============  ======================================================================================
``N``           parameters, **non-embedding** (Step Law: vocabulary/embedding excluded)
``D``           training tokens
``C``           training compute, FLOPs. DeepSeek LLM: ``C = M D`` with ``M`` the **non-embedding FLOPs per
                token** (attention included, vocabulary layer excluded), see :func:`deepseek_model_scale`
``M``           model scale, FLOPs/token (DeepSeek LLM; Tian et al. 2025 use the same definition)
``eta``         peak learning rate (AdamW), dimensionless
``B``           batch size in **tokens** (every law here; Step Law's released grid stores sequences of 2048
                tokens, :func:`steplaw_near_optimal` converts)
``L``           loss, nats/token (MiniCPM: C4 loss)
``c``, ``p_*``  coefficient and signed exponents of ``y = c * prod X^p`` (see :class:`MonomialLaw`)
==============  ======================================================================================

Laws (all monomials ``y = c * prod_i X_i^p_i``, refit by least squares on ``log y`` as the authors did):

* Step Law (Li et al. 2025, arXiv:2503.04715): ``eta_opt = 1.79 N^-0.713 D^0.307``,
  ``B_opt = 0.58 D^0.571`` tokens. Recipe (``step-law/steplaw`` ``code/fit_tool.py``): in each (N, D) cell keep
  the runs whose smoothed final loss is within 0.25% of the cell minimum, batch to tokens, OLS in log space
  over all kept runs, 1,000 bootstrap resamples, mean reported.
* DeepSeek LLM (Bi et al. 2024, arXiv:2401.02954, eq. 1 and 4): ``eta_opt = 0.3118 C^-0.1250``,
  ``B_opt = 0.2920 C^0.3271`` tokens, ``M_opt = 0.1715 C^0.5243``, ``D_opt = 5.8316 C^0.4757``.
  Tian et al. 2025 (arXiv:2507.17702) fit the same forms for MoE (``eta = 1.1576 C^-0.1529``,
  ``B = 0.0694 C^0.3644``) and dense/MoE allocations; they are presets of the same classes.
* Kaplan et al. 2020 critical batch ``B_crit(L) = B_* / L^(1/alpha_B)``:
  :class:`~scalelab.laws.kaplan.KaplanCriticalBatchLaw`.
* MiniCPM (Hu et al. 2024, arXiv:2404.06395 §4.2): ``bs = 1.21e9 / L^6.24`` tokens, ``L`` the C4 loss.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, DataError, explain
from .general import MonomialLaw
from .kaplan import KaplanCriticalBatchLaw

__all__ = [
    "DeepSeekBatchLaw",
    "DeepSeekLRLaw",
    "DeepSeekScaleLaw",
    "KaplanCriticalBatchLaw",
    "MiniCPMBatchLaw",
    "StepLawBatchLaw",
    "StepLawLRLaw",
    "deepseek_model_scale",
    "steplaw_near_optimal",
]

_STEP_SRC = "Li et al. 2025 (Step Law), arXiv:2503.04715"
_STEP_RANGE = {"N": (2.1e8, 1.07e9), "D": (4e9, 1e11)}
_DS_SRC = "Bi et al. 2024 (DeepSeek LLM), arXiv:2401.02954"
_DS_RANGE = {"C": (1e17, 3e20)}
_TIAN_SRC = "Tian et al. 2025, Towards Greater Leverage, arXiv:2507.17702"


def deepseek_model_scale(n_layers: Any, d_model: Any, seq_len: Any) -> Any:
    """DeepSeek LLM's model scale ``M = 72 n_layer d_model^2 + 6 n_layer d_model l_seq`` (FLOPs/token,
    non-embedding, attention included; Bi et al. 2024 eq. 2).

    Examples
    --------
    >>> f"{deepseek_model_scale(30, 4096, 4096):.3g}"      # DeepSeek LLM 7B
    '3.93e+10'
    """
    n, d, s = (np.asarray(v, dtype=float) for v in (n_layers, d_model, seq_len))
    if np.any(n <= 0) or np.any(d <= 0) or np.any(s <= 0):
        raise ConfigError(explain("n_layers, d_model and seq_len must be positive", value=(n_layers, d_model, seq_len)))
    out = 72.0 * n * d * d + 6.0 * n * d * s
    return float(out) if out.ndim == 0 else out


class StepLawLRLaw(MonomialLaw):
    """``eta_opt(N, D) = c * N^p_N * D^p_D`` (Step Law, Li et al. 2025): optimal peak learning rate.

    ``N`` non-embedding parameters, ``D`` tokens. Presets: ``"li2025"`` (as printed: 1.79, -0.713, 0.307)
    and ``"li2025-bootstrap"`` (the mean of the released 1,000 bootstrap fits, with their 95% intervals).

    Examples
    --------
    >>> f"{float(StepLawLRLaw.preset('li2025').predict(1e9, 1e11)):.4g}"
    '0.001632'
    """

    name = "steplaw-lr"
    citation = _STEP_SRC + ", optimal learning rate law (Fig. 1; step-law/steplaw)"
    equation = "eta_opt = c * N^p_N * D^p_D"
    covariates = ("N", "D")
    covariate_units: ClassVar[dict[str, str]] = {"N": "parameters (non-embedding)", "D": "training tokens"}
    target = "eta_opt"
    target_units = "peak learning rate (AdamW)"
    param_names = ("c", "p_N", "p_D")
    param_units: ClassVar[dict[str, str]] = {"c": "learning rate * params^-p_N * tokens^-p_D", "p_N": "1", "p_D": "1"}
    log_params = ("c",)
    conventions: ClassVar[dict[str, str]] = {"N": "non-embedding parameters", "D": "tokens",
                   "schedule": "2000-step warmup, cosine to a fixed min LR",
                   "fit": "OLS on log eta over runs within 0.25% of each (N, D) cell's best loss"}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "li2025": {"params": {"c": 1.79, "p_N": -0.713, "p_D": 0.307}, "source": _STEP_SRC + " (as printed)",
                   "range": _STEP_RANGE},
        "li2025-bootstrap": {
            "params": {"c": float(np.exp(0.586308)), "p_N": -0.712922, "p_D": 0.307491},
            "intervals": {"c": (float(np.exp(-0.6479)), float(np.exp(1.7648))), "p_N": (-0.7744, -0.6554),
                          "p_D": (0.2712, 0.3451)},
            "source": ("step-law/steplaw data/1004_fitted_lr_bs_scaling_model_parameters.csv @efbab63b: mean of "
                       "1,000 bootstrap fits and their 2.5-97.5% range"),
            "range": _STEP_RANGE,
        },
    }
    _example_params: ClassVar[dict[str, float]] = {"c": 1.79, "p_N": -0.713, "p_D": 0.307}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"N": (2e8, 1.1e9), "D": (4e9, 1e11)}
    _example_noise = 0.1


class StepLawBatchLaw(MonomialLaw):
    """``B_opt(D) = c * D^p_D`` tokens (Step Law, Li et al. 2025): optimal batch size depends on ``D`` only.

    Examples
    --------
    >>> f"{float(StepLawBatchLaw.preset('li2025').predict(1e11)):.4g}"
    '1.108e+06'
    """

    name = "steplaw-batch"
    citation = _STEP_SRC + ", optimal batch-size law"
    equation = "B_opt = c * D^p_D   (tokens)"
    covariates = ("D",)
    covariate_units: ClassVar[dict[str, str]] = {"D": "training tokens"}
    target = "B_opt"
    target_units = "tokens"
    param_names = ("c", "p_D")
    param_units: ClassVar[dict[str, str]] = {"c": "tokens * tokens^-p_D", "p_D": "1"}
    log_params = ("c",)
    conventions: ClassVar[dict[str, str]] = {
        "B": "tokens (the released grid stores sequences of 2048 tokens)", "D": "tokens",
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "li2025": {"params": {"c": 0.58, "p_D": 0.571}, "source": _STEP_SRC + " (as printed)",
                   "range": {"D": _STEP_RANGE["D"]}},
        "li2025-bootstrap": {
            "params": {"c": float(np.exp(-0.543542)), "p_D": 0.570944},
            "intervals": {"c": (float(np.exp(-1.3565)), float(np.exp(0.3217))), "p_D": (0.5340, 0.6055)},
            "source": "step-law/steplaw 1004_fitted_lr_bs_scaling_model_parameters.csv @efbab63b (bootstrap mean)",
            "range": {"D": _STEP_RANGE["D"]},
        },
    }
    _example_params: ClassVar[dict[str, float]] = {"c": 0.58, "p_D": 0.571}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"D": (4e9, 1e11)}
    _example_noise = 0.1


def steplaw_near_optimal(N: Any, D: Any, lr: Any, batch: Any, loss: Any, *, threshold: float = 0.0025,
                         seq_len: float | None = 2048.0) -> dict[str, np.ndarray]:
    """The Step Law selection: in each ``(N, D)`` cell, the runs whose loss is within ``threshold``
    (relative, 0.25%) of the cell's minimum (``step-law/steplaw`` ``code/fit_tool.py``, ``filter_threshold``).

    Parameters
    ----------
    N, D, lr, batch, loss : array-like
        One row per run of an LR x batch grid: non-embedding parameters, tokens, peak LR, batch size,
        final (smoothed) loss.
    threshold : float
        Relative loss margin above each cell's best run.
    seq_len : float or None
        Tokens per sequence to convert ``batch`` from sequences to tokens (2048 for the released grid);
        ``None`` when ``batch`` is already in tokens.

    Returns
    -------
    dict with ``N``, ``D``, ``lr``, ``batch_tokens`` of the kept runs: feed them to
    ``StepLawLRLaw().fit(N, D, lr)`` and ``StepLawBatchLaw().fit(D, batch_tokens)``.
    """
    arrs = [np.asarray(a, dtype=float).ravel() for a in (N, D, lr, batch, loss)]
    n = arrs[0].size
    if any(a.size != n for a in arrs):
        raise DataError(explain("N, D, lr, batch and loss must have one value per run",
                                value=[a.size for a in arrs]))
    bad = np.flatnonzero(~np.all([np.isfinite(a) & (a > 0) for a in arrs], axis=0))
    if bad.size:
        raise DataError(explain(f"non-positive or NaN values at rows {', '.join(map(str, bad[:10]))}",
                                fix="drop diverged runs before selecting"))
    if not 0 <= threshold < 1:
        raise ConfigError(explain("threshold must be a fraction in [0, 1)", value=threshold))
    Na, Da, lra, ba, la = arrs
    keep = np.zeros(n, dtype=bool)
    cells = np.unique(np.stack([Na, Da], axis=1), axis=0)
    for cn, cd in cells:
        m = (Na == cn) & (Da == cd)
        keep |= m & (la <= la[m].min() * (1 + threshold))
    mult = 1.0 if seq_len is None else float(seq_len)
    return {"N": Na[keep], "D": Da[keep], "lr": lra[keep], "batch_tokens": ba[keep] * mult}


class DeepSeekLRLaw(MonomialLaw):
    """``eta_opt(C) = c * C^p_C`` with ``C = M D`` FLOPs (DeepSeek LLM eq. 1).

    Presets: ``"bi2024"`` (0.3118, -0.1250; dense) and ``"tian2025-moe"`` (1.1576, -0.1529; MoE, same
    definitions of ``M`` and ``C``).

    Examples
    --------
    >>> C = deepseek_model_scale(30, 4096, 4096) * 2e12        # DeepSeek LLM 7B on 2T tokens
    >>> f"{float(DeepSeekLRLaw.preset('bi2024').predict(C)):.3g}"   # released config: 4.2e-4
    '0.000429'
    """

    name = "deepseek-lr"
    citation = _DS_SRC + ", eq. 1 (optimal learning rate vs compute)"
    equation = "eta_opt = c * C^p_C   (C = M D FLOPs)"
    covariates = ("C",)
    covariate_units: ClassVar[dict[str, str]] = {"C": "FLOPs, C = M D (M non-embedding FLOPs/token)"}
    target = "eta_opt"
    target_units = "peak learning rate (AdamW)"
    param_names = ("c", "p_C")
    param_units: ClassVar[dict[str, str]] = {"c": "learning rate * FLOPs^-p_C", "p_C": "1"}
    log_params = ("c",)
    conventions: ClassVar[dict[str, str]] = {"C": "M D FLOPs, M = 72 n_layer d^2 + 6 n_layer d l_seq (no vocabulary)",
                   "fit": "near-optimal runs (within 0.25% of the best) of small-compute grids"}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "bi2024": {"params": {"c": 0.3118, "p_C": -0.1250}, "source": _DS_SRC + " eq. 1", "range": _DS_RANGE},
        "tian2025-moe": {"params": {"c": 1.1576, "p_C": -0.1529}, "source": _TIAN_SRC + " (MoE hyperparameter law)",
                         "range": {"C": (3e17, 3e20)}},
    }
    _example_params: ClassVar[dict[str, float]] = {"c": 0.3118, "p_C": -0.125}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"C": (1e17, 3e20)}
    _example_noise = 0.1


class DeepSeekBatchLaw(MonomialLaw):
    """``B_opt(C) = c * C^p_C`` tokens (DeepSeek LLM eq. 1); presets ``"bi2024"``, ``"tian2025-moe"``.

    Examples
    --------
    >>> f"{float(DeepSeekBatchLaw.preset('bi2024').predict(1e20)):.3g}"
    '1.02e+06'
    """

    name = "deepseek-batch"
    citation = _DS_SRC + ", eq. 1 (optimal batch size vs compute)"
    equation = "B_opt = c * C^p_C   (tokens; C = M D FLOPs)"
    covariates = ("C",)
    covariate_units: ClassVar[dict[str, str]] = {"C": "FLOPs, C = M D"}
    target = "B_opt"
    target_units = "tokens"
    param_names = ("c", "p_C")
    param_units: ClassVar[dict[str, str]] = {"c": "tokens * FLOPs^-p_C", "p_C": "1"}
    log_params = ("c",)
    conventions: ClassVar[dict[str, str]] = {"B": "tokens", "C": "M D FLOPs (non-embedding FLOPs/token)"}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "bi2024": {"params": {"c": 0.2920, "p_C": 0.3271}, "source": _DS_SRC + " eq. 1", "range": _DS_RANGE},
        "tian2025-moe": {"params": {"c": 0.0694, "p_C": 0.3644}, "source": _TIAN_SRC + " (MoE hyperparameter law)",
                         "range": {"C": (3e17, 3e20)}},
    }
    _example_params: ClassVar[dict[str, float]] = {"c": 0.292, "p_C": 0.3271}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"C": (1e17, 3e20)}
    _example_noise = 0.1


class DeepSeekScaleLaw(MonomialLaw):
    """``M_opt(C) = c * C^p_C`` FLOPs/token and ``D_opt = C / M_opt`` (DeepSeek LLM eq. 4): the
    compute-optimal model scale in DeepSeek's convention.

    Presets: ``"bi2024"`` (0.1715, 0.5243), ``"tian2025-dense"`` (0.0655, 0.5422) and ``"tian2025-moe"``
    (0.1915, 0.5095; Tian et al. 2025 Table 1, activation ratio 7.8%, granularity 2).

    Examples
    --------
    >>> opt = DeepSeekScaleLaw.preset("bi2024").compute_optimal(1e20)
    >>> f"{opt['M_opt'][0]:.3g}", f"{opt['D_opt'][0]:.3g}"
    ('5.25e+09', '1.9e+10')
    """

    name = "deepseek-scale"
    citation = _DS_SRC + ", eq. 4 (optimal model scale and data vs compute)"
    equation = "M_opt = c * C^p_C (FLOPs/token),  D_opt = C / M_opt"
    covariates = ("C",)
    covariate_units: ClassVar[dict[str, str]] = {"C": "FLOPs, C = M D"}
    target = "M_opt"
    target_units = "non-embedding FLOPs per token"
    param_names = ("c", "p_C")
    param_units: ClassVar[dict[str, str]] = {"c": "FLOPs/token * FLOPs^-p_C", "p_C": "1"}
    log_params = ("c",)
    conventions: ClassVar[dict[str, str]] = {"M": "non-embedding FLOPs/token (attention included)", "C": "M D FLOPs"}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "bi2024": {"params": {"c": 0.1715, "p_C": 0.5243}, "source": _DS_SRC + " eq. 4 (D_opt = 5.8316 C^0.4757)",
                   "range": {"C": (1e17, 3e20)}},
        "tian2025-dense": {"params": {"c": 0.0655, "p_C": 0.5422}, "source": _TIAN_SRC + " Table 1 (dense)",
                           "range": {"C": (3e17, 3e20)}},
        "tian2025-moe": {"params": {"c": 0.1915, "p_C": 0.5095},
                         "source": _TIAN_SRC + " Table 1 (MoE, A = 7.8%, G = 2)", "range": {"C": (3e17, 3e20)}},
    }
    _example_params: ClassVar[dict[str, float]] = {"c": 0.1715, "p_C": 0.5243}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"C": (1e17, 3e20)}
    _example_noise = 0.05

    def compute_optimal(self, C: Any) -> dict[str, np.ndarray]:
        """``M_opt`` (FLOPs/token) and ``D_opt = C / M_opt`` (tokens) at ``C`` FLOPs."""
        Cs = np.atleast_1d(np.asarray(C, dtype=float))
        if np.any(~np.isfinite(Cs) | (Cs <= 0)):
            raise ConfigError(explain("compute budgets must be positive FLOPs", value=C))
        M = np.atleast_1d(self.predict(Cs))
        return {"C_flops": Cs, "M_opt": M, "D_opt": Cs / M}


class MiniCPMBatchLaw(MonomialLaw):
    """``bs(L) = c * L^p_L`` tokens (MiniCPM, Hu et al. 2024 §4.2): the optimal batch size to reach C4
    loss ``L``; published as ``bs = 1.21e9 / L^6.24``.

    Examples
    --------
    >>> f"{float(MiniCPMBatchLaw.preset('hu2024').predict(3.0)):.3g}"
    '1.28e+06'
    """

    name = "minicpm-batch"
    citation = "Hu et al. 2024, MiniCPM, arXiv:2404.06395 §4.2 (Fig. 4)"
    equation = "bs = c * L^p_L   (tokens; L = C4 loss)"
    covariates = ("L",)
    covariate_units: ClassVar[dict[str, str]] = {"L": "C4 loss, nats/token"}
    target = "bs_opt"
    target_units = "tokens"
    param_names = ("c", "p_L")
    param_units: ClassVar[dict[str, str]] = {"c": "tokens", "p_L": "1"}
    log_params = ("c",)
    conventions: ClassVar[dict[str, str]] = {"B": "tokens", "L": "C4 loss (MiniCPM tokenizer)",
                   "fit": "parabola minima of equal-loss points, joined across 0.009B-0.17B models"}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "hu2024": {"params": {"c": 1.21e9, "p_L": -6.24}, "source": "Hu et al. 2024 (MiniCPM) §4.2",
                   "range": {"L": (2.5, 5.0)}},
    }
    _example_params: ClassVar[dict[str, float]] = {"c": 1.21e9, "p_L": -6.24}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"L": (2.5, 5.0)}
    _example_noise = 0.05
    min_distinct: ClassVar[dict[str, int]] = {"L": 3}
