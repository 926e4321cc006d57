"""Inference-aware sizing (Sardana et al. 2024, "Beyond Chinchilla-Optimal", arXiv:2401.00448 §2).

Legend (symbols and units used in this module):

==========  ==========================================================================================
``N``       parameters (the Chinchilla law's convention: total)
``D_tr``    training tokens
``D_inf``   inference tokens served over the model's life (prompt and generated tokens alike)
``L``       loss, nats/token, of the Chinchilla form ``L = E + A / N^alpha + B / D^beta``
``ell``     the target loss
==========  ==========================================================================================

Convention (the paper's eq. 3): training costs ``6 N`` FLOPs per token and inference ``2 N`` FLOPs per
token (a forward pass, Kaplan et al. 2020 §2.1; attention and KV-cache FLOPs ignored), so the lifetime
cost is ``6 N D_tr + 2 N D_inf``. The problem is

    minimise 6 N D_tr + 2 N D_inf   subject to   L(N, D_tr) = ell,

solved here by eliminating ``D_tr = (B / (ell - E - A / N^alpha))^(1/beta)`` and a bounded scalar search
over ``log N`` (the paper uses Newton's method on the same stationarity condition). With ``D_inf = 0``
the answer is Chinchilla's compute-optimal point for the compute that reaches ``ell``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError, explain
from ..units import FLOPS_PER_PARAM_TOKEN, INFERENCE_FLOPS_PER_PARAM_TOKEN

__all__ = ["InferenceOptimal", "inference_optimal", "tokens_for_loss"]


@dataclass(frozen=True)
class InferenceOptimal:
    """The lifetime-optimal run for a target loss, beside the Chinchilla-optimal run of the same loss."""

    n_params: float
    train_tokens: float
    inference_tokens: float
    loss: float
    lifetime_flops: float
    chinchilla_n_params: float
    chinchilla_train_tokens: float
    chinchilla_lifetime_flops: float

    @property
    def train_flops(self) -> float:
        return FLOPS_PER_PARAM_TOKEN * self.n_params * self.train_tokens

    @property
    def saving(self) -> float:
        """Lifetime FLOPs saved against the Chinchilla-optimal run of the same loss, as a fraction of its."""
        return 1.0 - self.lifetime_flops / self.chinchilla_lifetime_flops

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "train_flops": self.train_flops, "saving": self.saving}


def _params(p: Any) -> tuple[float, float, float, float, float]:
    try:
        return tuple(float(p[k]) for k in ("E", "A", "B", "alpha", "beta"))  # type: ignore[return-value]
    except (KeyError, TypeError) as e:
        raise ConfigError(explain("inference-aware sizing needs a Chinchilla-form law (E, A, B, alpha, beta)",
                                  value=p, fix="use a Chinchilla preset or a fitted chinchilla law")) from e


def tokens_for_loss(p: Any, n_params: float, loss: float) -> float:
    """Training tokens at which a model of ``n_params`` reaches ``loss`` (``inf`` if it never does)."""
    E, A, B, _alpha, beta = _params(p)
    room = loss - E - A / n_params ** _alpha
    return math.inf if room <= 0 else (B / room) ** (1.0 / beta)


def inference_optimal(p: Any, loss: float, inference_tokens: float) -> InferenceOptimal:
    """``N`` and ``D_tr`` minimising ``6 N D_tr + 2 N D_inf`` at ``L(N, D_tr) = loss`` (module docstring).

    Parameters
    ----------
    p : mapping with ``E``, ``A``, ``B``, ``alpha``, ``beta`` (a Chinchilla law's ``params_``)
    loss : the target loss, above ``E``
    inference_tokens : ``D_inf``, tokens served over the model's life (0 gives Chinchilla's optimum)

    Examples
    --------
    Sardana et al. 2024 Fig. 1: a Chinchilla-optimal 13B model and 2T tokens of inference demand; a ~7B model
    trained on more data reaches the same loss for ~17% less lifetime compute (1.7e22 FLOPs).

    >>> from scalelab.laws import ChinchillaLaw
    >>> p = ChinchillaLaw.preset("hoffmann2022").params_
    >>> G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    >>> d13 = 13e9 ** ((p["alpha"] + p["beta"]) / p["beta"]) / G ** ((p["alpha"] + p["beta"]) / p["beta"]) / 13e9
    >>> loss = p["E"] + p["A"] / 13e9 ** p["alpha"] + p["B"] / d13 ** p["beta"]
    >>> r = inference_optimal(p, loss, 2e12)
    >>> round(r.n_params / 1e9, 1), round(r.saving, 3)
    (7.1, 0.163)
    """
    from scipy.optimize import minimize_scalar

    E, A, _B, alpha, _beta = _params(p)
    if not (math.isfinite(loss) and loss > E):
        raise ConfigError(explain("the target loss must lie above the law's irreducible loss E", value=loss,
                                  allowed=f"> {E:.4g}", fix="raise the target loss"))
    if not (math.isfinite(inference_tokens) and inference_tokens >= 0):
        raise ConfigError(explain("inference tokens must be a finite count >= 0", value=inference_tokens))
    n_floor = (A / (loss - E)) ** (1.0 / alpha)  # below this N the loss is out of reach at any D

    def lifetime(ln: float, d_inf: float) -> float:
        n = math.exp(ln)
        d = tokens_for_loss(p, n, loss)
        return FLOPS_PER_PARAM_TOKEN * n * d + INFERENCE_FLOPS_PER_PARAM_TOKEN * n * d_inf

    def solve(d_inf: float) -> float:
        lo = math.log(n_floor) + 1e-9
        r = minimize_scalar(lambda x: math.log(lifetime(x, d_inf)), bounds=(lo, lo + 40.0), method="bounded",
                            options={"xatol": 1e-10})
        if not r.success:
            raise ConfigError(explain("the inference-aware search did not converge", value=r.message))
        return math.exp(float(r.x))

    n_c = solve(0.0)
    n = solve(float(inference_tokens))
    return InferenceOptimal(
        n_params=n, train_tokens=tokens_for_loss(p, n, loss), inference_tokens=float(inference_tokens), loss=loss,
        lifetime_flops=lifetime(math.log(n), inference_tokens), chinchilla_n_params=n_c,
        chinchilla_train_tokens=tokens_for_loss(p, n_c, loss),
        chinchilla_lifetime_flops=lifetime(math.log(n_c), inference_tokens))
