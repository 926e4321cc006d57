"""Learning rate and batch size of a tunnel run from a hyperparameter law instead of a constant.

A grid's ``lr`` (or ``batch_size``) may be a string naming a law (:func:`resolve_lr`):

==========================  ==========================================================================
``"law:li2025"``            Step Law as printed, ``eta = 1.79 N^-0.713 D^0.307`` (``N`` non-embedding;
(``"law:steplaw"``)         batch ``B = 0.58 D^0.571`` tokens; Li et al. 2025)
``"law:deepseek"``          DeepSeek LLM eq. 1, ``eta = 0.3118 C^-0.125``, ``B = 0.2920 C^0.3271`` tokens with
(``"law:bi2024"``)          ``C = M D``, ``M = 72 n_layer d^2 + 6 n_layer d l_seq`` (Bi et al. 2024)
``"fit.json"``              a saved :class:`~scalelab.laws.hpfit.HyperparamFit` (``scalelab fit --law
(``"law:fit.json"``)        hyperparams --out fit.json``): its Step-Law-style law when fitted, else DeepSeek-style
==========================  ==========================================================================

Published laws were fitted on models of 1e8-1e9 parameters with BPE tokens; at the tunnel's 1e4-1e6
byte-level parameters they are extrapolations over three or more decades, so a law's LR is a starting point
for a sweep, not a tuned value (the docs page ``docs/tunnel-sweeps.md`` measures how far off they are).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

from ..errors import ConfigError, explain

__all__ = ["LAW_NAMES", "is_law_spec", "resolve_batch_size", "resolve_lr"]

#: Published laws a grid can name (aliases map to the same law).
LAW_NAMES = {"li2025": "steplaw", "steplaw": "steplaw", "deepseek": "deepseek", "bi2024": "deepseek"}


def is_law_spec(value: Any) -> bool:
    """A string naming a law or a saved fit (rather than a number)."""
    return isinstance(value, str)


def _name(spec: str) -> str:
    s = spec.strip()
    return s[4:] if s.lower().startswith("law:") else s


@functools.lru_cache(maxsize=16)
def _load_fit(path: str) -> Any:
    from ..laws.hpfit import load_hyperparam_fit

    return load_hyperparam_fit(path)


def _scale(model: Any, seq_len: int) -> float:
    from ..laws.hyperparams import deepseek_model_scale

    return float(deepseek_model_scale(model.n_layers, model.d_model, seq_len))


def _source(spec: str) -> tuple[str, Any]:
    name = _name(spec)
    key = LAW_NAMES.get(name.lower())
    if key is not None:
        return key, None
    p = Path(name).expanduser()
    if p.suffix == ".json" or p.exists():
        return "fit", _load_fit(str(p.resolve()))
    raise ConfigError(explain("unknown hyperparameter law", value=spec,
                              allowed="law:li2025 (Step Law), law:deepseek (DeepSeek LLM), or a saved fit (.json)",
                              fix="use one of those, or a number"))


def resolve_lr(spec: str, model: Any, n_tokens: float, seq_len: int) -> float:
    """The peak LR ``spec`` gives for ``model`` trained on ``n_tokens`` tokens of ``seq_len``.

    >>> from scalelab.arch import ModelSpec
    >>> m = ModelSpec(n_layers=2, d_model=64, n_heads=2, d_ff=176, vocab_size=256, seq_len=64)
    >>> f"{resolve_lr('law:li2025', m, 1e7, 64):.3g}"
    '0.0684'
    """
    import warnings

    kind, fit = _source(spec)
    N = float(model.n_params().non_embedding)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny models are far outside every published law's range
        if kind == "steplaw":
            from ..laws.hyperparams import StepLawLRLaw

            lr = float(StepLawLRLaw.preset("li2025").predict(N, float(n_tokens)))
        elif kind == "deepseek":
            from ..laws.hyperparams import DeepSeekLRLaw

            lr = float(DeepSeekLRLaw.preset("bi2024").predict(_scale(model, seq_len) * float(n_tokens)))
        else:
            lr = fit.predict_lr(N=N, D=float(n_tokens), M=_scale(model, seq_len))
    if not (math.isfinite(lr) and lr > 0):
        raise ConfigError(explain(f"law {spec!r} gives no usable LR for this run", value=lr,
                                  fix="use a constant lr for this grid"))
    return lr


def resolve_batch_size(spec: str, model: Any, n_tokens: float, seq_len: int) -> int:
    """The batch size in **sequences** (at least 1) that ``spec``'s batch law gives, rounded from tokens."""
    import warnings

    kind, fit = _source(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "steplaw":
            from ..laws.hyperparams import StepLawBatchLaw

            bt = float(StepLawBatchLaw.preset("li2025").predict(float(n_tokens)))
        elif kind == "deepseek":
            from ..laws.hyperparams import DeepSeekBatchLaw

            bt = float(DeepSeekBatchLaw.preset("bi2024").predict(_scale(model, seq_len) * float(n_tokens)))
        else:
            bt = fit.predict_batch_tokens(D=float(n_tokens), M=_scale(model, seq_len))
    if not (math.isfinite(bt) and bt > 0):
        raise ConfigError(explain(f"law {spec!r} gives no usable batch size for this run", value=bt,
                                  fix="use a constant batch_size for this grid"))
    return max(1, round(bt / seq_len))
