"""Mixture-of-experts feed-forward layer for the wind tunnel, built from :class:`scalelab.arch.MoESpec`.

* **Routing**: a bias-free linear router scores ``E`` routed experts plus ``Z`` zero-computation experts;
  softmax over all ``E + Z`` scores, each token goes to its top-k, and an expert's output is scaled by its
  softmax probability (Switch Transformer, Fedus et al. 2021, arXiv:2101.03961 §2.1; the probabilities
  are not renormalised over the top-k, so top-1 routing still trains the router through the gate).
* **Load balancing**: the auxiliary loss ``coef * n * sum_i f_i * P_i`` of Switch eq. 4, with ``f_i`` the
  fraction of the ``N*k`` routing assignments that go to slot ``i`` and ``P_i`` the mean router
  probability of slot ``i``, over all ``n = E + Z`` slots. It equals ``coef`` when routing is uniform.
* **Zero-computation experts** (LongCat-Flash, arXiv:2509.01322 §2.1): a chosen zero expert returns its
  input unchanged (times the gate), so a token that picks it spends no FLOPs there. They are part of the
  balancing loss above, which pushes the router towards using them in proportion ``Z / (E + Z)``.
* **Shared experts** (DeepSeekMoE, arXiv:2401.06066 §3.2): always-active MLPs added to every token.
* **Capacity**: ``capacity_factor=None`` is dropless; otherwise each routed expert takes at most
  ``ceil(capacity_factor * N * k / E)`` assignments in token order and drops the rest (GShard/Switch):
  a dropped assignment contributes nothing and the token keeps its residual stream.

Parameters match ``ModelSpec.n_params()``: router ``h * (E + Z)``, each routed expert one MLP of width
``d_expert`` (stored stacked as ``(E, ...)`` tensors), each shared expert one MLP of width ``d_shared_expert``.

The dispatch loops over experts with gather/``index_add_``: for the few-expert tiny models of the wind
tunnel on CPU this is as fast as a grouped GEMM and much easier to read.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..arch.spec import MoESpec

__all__ = ["MoELayer"]


class MoELayer(nn.Module):
    """Top-k routed experts (+ zero and shared experts). ``forward(x) -> (y, aux_loss)``."""

    def __init__(self, d_model: int, moe: MoESpec, ffn_kind: str, bias: bool):
        super().__init__()
        from .model import MLP  # local import: model.py imports this module

        h, E, f = d_model, moe.n_experts, moe.d_expert
        self.moe = moe
        self.kind = ffn_kind
        self.n_experts, self.n_zero, self.top_k = E, moe.n_zero_experts, moe.top_k
        self.router = nn.Linear(h, E + moe.n_zero_experts, bias=False)
        n_in = 2 * f if ffn_kind == "swiglu" else f  # SwiGLU: gate and up projections fused
        self.w_in = nn.Parameter(torch.empty(E, h, n_in))
        self.w_down = nn.Parameter(torch.empty(E, f, h))
        self.b_in = nn.Parameter(torch.zeros(E, n_in)) if bias else None
        self.b_down = nn.Parameter(torch.zeros(E, h)) if bias else None
        self.shared = nn.ModuleList(
            MLP(h, moe.shared_width, ffn_kind, bias) for _ in range(moe.n_shared_experts)
        )
        #: Assignments each routed/zero slot received in the last forward (diagnostics, not a parameter).
        self.last_load: torch.Tensor | None = None
        #: Fraction of routed assignments dropped by the capacity limit in the last forward.
        self.last_drop_fraction: float = 0.0

    def _expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        hid = x @ self.w_in[e]
        if self.b_in is not None:
            hid = hid + self.b_in[e]
        if self.kind == "swiglu":
            gate, up = hid.chunk(2, dim=-1)
            hid = F.silu(gate) * up
        else:
            hid = F.gelu(hid, approximate="tanh")
        out = hid @ self.w_down[e]
        if self.b_down is not None:
            out = out + self.b_down[e]
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, h = x.shape
        xt = x.reshape(-1, h)  # (N, h)
        N, k, E = xt.shape[0], self.top_k, self.n_experts
        n_slots = E + self.n_zero
        probs = self.router(xt).float().softmax(dim=-1)  # (N, E + Z)
        top_w, top_i = probs.topk(k, dim=-1)  # (N, k)

        # Switch eq. 4 over every slot (routed and zero experts).
        flat_i = top_i.reshape(-1)  # (N k)
        load = torch.bincount(flat_i, minlength=n_slots)
        frac = load.float() / (N * k)
        aux = self.moe.router_aux_loss_coef * n_slots * (frac * probs.mean(dim=0)).sum()
        self.last_load = load.detach()

        flat_w = top_w.reshape(-1).to(x.dtype)
        flat_tok = torch.arange(N, device=x.device).repeat_interleave(k)
        order = torch.argsort(flat_i, stable=True)  # stable: token order within each expert (for capacity)
        starts = torch.cumsum(load, 0) - load
        load_list = load.tolist()
        start_list = starts.tolist()
        cap = None
        if self.moe.capacity_factor is not None:
            cap = math.ceil(self.moe.capacity_factor * N * k / E)
        out = torch.zeros_like(xt)
        dropped = 0
        for e in range(n_slots):
            n_e = load_list[e]
            if n_e == 0:
                continue
            idx = order[start_list[e] : start_list[e] + n_e]
            if e < E and cap is not None and n_e > cap:
                dropped += n_e - cap
                idx = idx[:cap]
            tok, w = flat_tok[idx], flat_w[idx].unsqueeze(-1)
            if e < E:
                y = self._expert(e, xt[tok])
            else:
                y = xt[tok]  # zero-computation expert: identity (LongCat-Flash)
            out.index_add_(0, tok, y * w)
        self.last_drop_fraction = dropped / max(1, N * k)
        for mlp in self.shared:
            out = out + mlp(xt)
        return out.view(B, T, h), aux
