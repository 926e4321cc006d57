"""The maximal-update parametrisation (muP) for the tunnel's GPT, so a learning rate tuned on a narrow model
transfers to a wide one (Yang et al. 2022, "Tensor Programs V", arXiv:2203.03466, Table 3 for Adam, and
the ``MuReadout`` form of their ``mup`` package).

With width multiplier ``m = d_model / base_d_model`` (``RunConfig.mup_base_d_model``):

=======================  ====================  =========================  ==================================
parameter                 init std              AdamW LR                   forward
=======================  ====================  =========================  ==================================
hidden matrices (q, k,    ``0.02 / sqrt(m)``    ``lr / m`` (weight decay   -
v, o, MLP in/out)         (residual outputs     ``x m``, so ``lr x wd``
                          also ``/ sqrt(2L)``)  stays put, as ``mup``'s
                                                ``MuAdamW``)
token embedding, norms,   unchanged (0.02, 1)   ``lr``                     -
biases
output head               unchanged (0.02)      ``lr``                     logits ``x 1/m`` (``MuReadout``)
attention                 -                     -                          ``q.k x sqrt(32) / d_h`` (1/d_h,
                                                                           equal to 1/sqrt(d_h) at d_h = 32)
=======================  ====================  =========================  ==================================

At ``m = 1`` this is the tunnel's standard (GPT-2) parametrisation, except for the attention scale when
``d_h != 32``. Tied embeddings and MoE layers are refused (their readout/router need muP rules of their
own that are not implemented here).

Why not Microsoft's ``mup`` package (PyPI ``mup`` 1.0.0, 2022): it imports and its ``set_base_shapes``
runs under torch 2.13, but (1) it declares ``torchvision``, ``seaborn``, ``pandas`` and ``tqdm`` as
install requirements, and torchvision pins a torch version, against this project's ``torch==2.13.0``
pin; (2) it needs the model rebuilt around ``MuReadout`` and three model instances (base, delta, target)
per run to infer shapes; (3) its ``MuAdamW`` bakes the per-group scaling into each group's ``lr``, which
the tunnel's schedule overwrites every step (``g["lr"] = lr_at(...)``), so the loop would need the same
per-group multiplier written here anyway; and (4) attention scaling and init are left to the user. The
rules above are the package's rules for Adam, applied directly to the one model the tunnel builds.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigError, explain

__all__ = ["MUP_ATTN_BASE_D_HEAD", "apply_mup", "mup_param_groups"]

#: Head width at which muP's ``1/d_h`` attention scale equals the standard ``1/sqrt(d_h)`` (the tunnel
#: family's default head width).
MUP_ATTN_BASE_D_HEAD = 32
_BASE_STD = 0.02


def width_mult(spec: Any, base_d_model: int) -> float:
    return spec.d_model / float(base_d_model)


def _is_hidden(name: str, p: Any) -> bool:
    """Matrices whose fan-in grows with width, other than the output head and the embedding."""
    return p.ndim >= 2 and not name.startswith(("wte.", "wpe.", "lm_head."))


def apply_mup(model: Any, base_d_model: int) -> Any:
    """Re-initialise ``model`` (a :class:`~scalelab.tunnel.model.GPT`) and set its attention and logit
    scales for muP at base width ``base_d_model``; returns the model."""
    import torch

    spec = model.spec
    if spec.tied_embeddings:
        raise ConfigError(explain("muP is not implemented for tied embeddings", value="tied_embeddings=True",
                                  fix="set tied_embeddings=false, or parametrization='sp'"))
    if spec.moe is not None:
        raise ConfigError(explain("muP is not implemented for mixture-of-experts models", value="moe",
                                  fix="use a dense model, or parametrization='sp'"))
    if not (isinstance(base_d_model, int) and base_d_model > 0):
        raise ConfigError(explain("mup_base_d_model must be a positive width", value=base_d_model))
    m = width_mult(spec, base_d_model)
    resid = 1.0 / math.sqrt(2 * spec.n_layers)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if _is_hidden(name, p) and not p.is_meta:
                is_resid = name.endswith("c_proj.weight")
                p.normal_(0.0, _BASE_STD / math.sqrt(m) * (resid if is_resid else 1.0))
    for block in model.blocks:
        block.attn.scale = math.sqrt(MUP_ATTN_BASE_D_HEAD) / spec.d_head
    model.logit_mult = 1.0 / m
    return model


def mup_param_groups(model: Any, weight_decay: float, base_d_model: int) -> list[dict[str, Any]]:
    """AdamW groups with an ``lr_scale`` each (the training loop multiplies the scheduled LR by it):
    hidden matrices ``1/m`` with weight decay ``x m``; embeddings, head, norms and biases ``1``."""
    m = width_mult(model.spec, base_d_model)
    hidden, decay, rest = [], [], []
    no_decay_ids = {id(model.wte.weight)} | ({id(model.wpe.weight)} if model.wpe is not None else set())
    for name, p in model.named_parameters():
        if _is_hidden(name, p):
            hidden.append(p)
        elif p.ndim >= 2 and id(p) not in no_decay_ids:
            decay.append(p)  # the output head: decayed as in SP, LR unscaled
        else:
            rest.append(p)
    return [{"params": hidden, "weight_decay": weight_decay * m, "lr_scale": 1.0 / m},
            {"params": decay, "weight_decay": weight_decay, "lr_scale": 1.0},
            {"params": rest, "weight_decay": 0.0, "lr_scale": 1.0}]
