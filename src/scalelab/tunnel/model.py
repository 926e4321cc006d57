"""The wind tunnel's GPT: one readable nanoGPT-style file, built from :class:`scalelab.arch.ModelSpec`.

Read top to bottom: norms, rotary embedding, attention, MLP, block, model. Every choice the spec names
is honoured (RoPE or learned positions, RMSNorm or LayerNorm, SwiGLU or GELU, GQA/MQA, tied embeddings,
biases, QK-norm, mixture-of-experts layers from :mod:`scalelab.tunnel.moe`); multi-head latent
attention (MLA) is not built here and raises :class:`~scalelab.errors.ConfigError`.

The parameter count of the built module equals ``ModelSpec.n_params().total`` exactly (DESIGN.md
principle 1; ``tests/tunnel/test_model.py`` checks it on the meta device), so the spec's conventions are
this file's conventions:

* a norm is ``h`` parameters (RMSNorm, weight only) or ``2h`` (LayerNorm, weight and bias); each block has
  two, plus one final norm;
* QK-norm is an RMSNorm of width ``d_head`` shared by all heads, one for queries and one for keys;
* q/k/v are one fused projection ``h -> (a + 2g) d_h`` (same count as three, fewer kernel launches);
* the output head has no bias; with ``tied_embeddings`` it *is* the input embedding.

Symbols (shape comments): B batch, T time, h d_model, a query heads, g kv heads, d_h head width, V vocab.

Example
-------
>>> from scalelab.arch import ModelSpec
>>> spec = ModelSpec(n_layers=2, d_model=64, n_heads=4, d_ff=256, vocab_size=256, seq_len=64)
>>> model = GPT(spec)
>>> model.n_params() == spec.n_params().total
True
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..arch.spec import ModelSpec
from ..errors import ConfigError, explain
from .moe import MoELayer

__all__ = ["GPT", "ModelOutput", "check_buildable", "make_norm"]

AttnImpl = Literal["sdpa", "math"]


def check_buildable(spec: ModelSpec) -> None:
    """Raise :class:`ConfigError` for specs the wind tunnel cannot build (MLA).

    Shape errors (heads not dividing d_model, kv heads not dividing heads) are already rejected when the
    :class:`ModelSpec` is constructed.
    """
    if spec.position_kind in ("relative", "alibi"):
        raise ConfigError(
            explain(
                f"model {spec.name!r} uses {spec.position_kind} positions, which the wind tunnel does not build",
                value=spec.position_kind,
                allowed="rope or learned",
                fix="set position_kind='rope' for tunnel runs; the planner still counts these models",
            )
        )
    if spec.mla is not None:
        raise ConfigError(
            explain(
                f"model {spec.name!r} uses multi-head latent attention (MLA), which the wind tunnel does not build",
                value="mla=" + repr(spec.mla.to_dict()),
                allowed="standard multi-head / grouped-query attention (mla=None)",
                fix="drop `mla` from the spec for tunnel runs; the planner still models MLA",
            )
        )


def make_norm(kind: str, width: int) -> nn.Module:
    """RMSNorm (Zhang & Sennrich 2019, weight only) or LayerNorm (Ba et al. 2016, weight and bias)."""
    if kind == "rmsnorm":
        return nn.RMSNorm(width, eps=1e-6)
    return nn.LayerNorm(width, eps=1e-5)


# ---- rotary position embedding ---------------------------------------------------------------------
def rope_tables(seq_len: int, d_head: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables of shape (T, d_h/2) for RoPE (Su et al. 2021, arXiv:2104.09864 eq. 34)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, d_head, 2, dtype=torch.float32) / d_head))
    t = torch.arange(seq_len, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)  # (T, d_h/2)
    return freqs.cos(), freqs.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of each head's channels; x is (B, heads, T, d_h)."""
    T = x.shape[-2]
    cos, sin = cos[:T].to(x.dtype), sin[:T].to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)  # the "rotate half" layout used by GPT-NeoX and Llama
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


# ---- attention --------------------------------------------------------------------------------------
class CausalSelfAttention(nn.Module):
    """Multi-head (a = g), grouped-query (g < a) or multi-query (g = 1) causal attention."""

    def __init__(self, spec: ModelSpec, attn_impl: AttnImpl = "sdpa"):
        super().__init__()
        h, a, g, dh = spec.d_model, spec.n_heads, spec.n_kv_heads, spec.d_head
        self.n_heads, self.n_kv_heads, self.d_head = a, g, dh
        self.attn_impl = attn_impl
        self.use_rope = spec.position_kind == "rope"
        qkv_bias = spec.attn_bias in ("qkv", "all")
        self.c_attn = nn.Linear(h, (a + 2 * g) * dh, bias=qkv_bias)  # fused q, k, v
        self.c_proj = nn.Linear(a * dh, h, bias=spec.attn_bias == "all")
        # QK-norm (Dehghani et al. 2023; Qwen3, OLMo 2): one RMSNorm over d_h for all query heads, one for keys.
        self.q_norm = nn.RMSNorm(dh, eps=1e-6) if spec.qk_norm else None
        self.k_norm = nn.RMSNorm(dh, eps=1e-6) if spec.qk_norm else None
        #: Attention logit scale; ``None`` is 1/sqrt(d_h). muP sets ``c / d_h`` (:mod:`scalelab.tunnel.mup`).
        self.scale: float | None = None

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        B, T, _ = x.shape
        a, g, dh = self.n_heads, self.n_kv_heads, self.d_head
        q, k, v = self.c_attn(x).split([a * dh, g * dh, g * dh], dim=-1)
        q = q.view(B, T, a, dh).transpose(1, 2)  # (B, a, T, d_h)
        k = k.view(B, T, g, dh).transpose(1, 2)  # (B, g, T, d_h)
        v = v.view(B, T, g, dh).transpose(1, 2)
        if self.q_norm is not None and self.k_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.use_rope and rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if g != a:  # GQA: each kv head serves a/g query heads
            k = k.repeat_interleave(a // g, dim=1)
            v = v.repeat_interleave(a // g, dim=1)
        if self.attn_impl == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        else:
            # Explicit matmuls: same maths, visible to torch.utils.flop_counter (which does not count the
            # CPU SDPA kernel). Used by the FLOP tests; both scores and values are full T x T products.
            att = (q @ k.transpose(-2, -1)) * (self.scale or 1.0 / math.sqrt(dh))  # (B, a, T, T)
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            y = att @ v
        y = y.transpose(1, 2).reshape(B, T, a * dh)
        return self.c_proj(y)


# ---- feed-forward -----------------------------------------------------------------------------------
class MLP(nn.Module):
    """SwiGLU (Shazeer 2020, arXiv:2002.05202) with fused gate/up, or the GPT-2 two-matrix GELU MLP."""

    def __init__(self, d_model: int, width: int, kind: str, bias: bool):
        super().__init__()
        self.kind = kind
        n_in = 2 * width if kind == "swiglu" else width
        self.c_fc = nn.Linear(d_model, n_in, bias=bias)
        self.c_proj = nn.Linear(width, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "swiglu":
            gate, up = self.c_fc(x).chunk(2, dim=-1)
            return self.c_proj(F.silu(gate) * up)
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)); with ``spec.parallel_block``
    x + attn(norm(x)) + mlp(norm'(x)), norm' being norm itself when ``parallel_block_norms`` is 1."""

    def __init__(self, spec: ModelSpec, layer: int, attn_impl: AttnImpl = "sdpa"):
        super().__init__()
        self.parallel = spec.parallel_block
        self.ln_1 = make_norm(spec.norm_kind, spec.d_model)
        self.attn = CausalSelfAttention(spec, attn_impl)
        self.ln_2 = make_norm(spec.norm_kind, spec.d_model) if spec.parallel_block_norms == 2 else None
        moe = spec.moe
        self.is_moe = moe is not None and layer >= moe.n_dense_layers  # leading layers stay dense
        if moe is not None and self.is_moe:
            self.mlp: nn.Module = MoELayer(spec.d_model, moe, spec.ffn_kind, spec.mlp_bias)
        else:
            self.mlp = MLP(spec.d_model, spec.d_ff, spec.ffn_kind, spec.mlp_bias)

    def forward(self, x: torch.Tensor, rope) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.ln_1(x)
        a = self.attn(h, rope)
        if self.ln_2 is None:  # a parallel block sharing one norm
            mlp_in = h
        else:  # a parallel block's MLP reads the block input, a sequential one's the sum
            mlp_in = self.ln_2(x if self.parallel else x + a)
        x = x + a
        if self.is_moe:
            y, aux = self.mlp(mlp_in)
            return x + y, aux
        return x + self.mlp(mlp_in), None


class ModelOutput(tuple):
    """``(logits, loss, aux_loss)``: ``loss`` is the mean next-token cross-entropy in nats (no aux term),
    ``aux_loss`` the weighted MoE load-balancing loss summed over layers (0 for dense models)."""

    __slots__ = ()

    def __new__(cls, logits, loss, aux_loss):
        return super().__new__(cls, (logits, loss, aux_loss))

    logits = property(lambda self: self[0])
    loss = property(lambda self: self[1])
    aux_loss = property(lambda self: self[2])


# ---- the model --------------------------------------------------------------------------------------
class GPT(nn.Module):
    """A decoder-only transformer with exactly ``spec.n_params().total`` parameters.

    Parameters
    ----------
    spec : ModelSpec
        Shapes and architecture choices; ``spec.seq_len`` bounds the context (learned positions).
    attn_impl : {"sdpa", "math"}
        ``"sdpa"`` uses PyTorch's fused scaled-dot-product attention (fast); ``"math"`` spells out the
        two matmuls so FLOP counters can see them.
    """

    def __init__(self, spec: ModelSpec, attn_impl: AttnImpl = "sdpa"):
        super().__init__()
        check_buildable(spec)
        self.spec = spec
        h, V = spec.d_model, spec.vocab_size
        self.wte = nn.Embedding(V, h)
        self.wpe = nn.Embedding(spec.seq_len, h) if spec.position_kind == "learned" else None
        self.ln_emb = make_norm(spec.norm_kind, h) if spec.embedding_norm else None
        self.blocks = nn.ModuleList(Block(spec, i, attn_impl) for i in range(spec.n_layers))
        self.ln_f = make_norm(spec.norm_kind, h)
        self.lm_head = nn.Linear(h, V, bias=False)
        #: Multiplier on the output logits: 1 in the standard parametrisation, ``base_width / width`` under
        #: muP (Yang et al. 2022's ``MuReadout``; :mod:`scalelab.tunnel.mup`).
        self.logit_mult = 1.0
        if spec.tied_embeddings:
            # Weight tying (Press & Wolf 2017): one matrix for input and output; counted once.
            self.lm_head.weight = self.wte.weight
        if spec.position_kind == "rope":
            cos, sin = rope_tables(spec.seq_len, spec.d_head)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        else:
            self.rope_cos = self.rope_sin = None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """GPT-2 initialisation: N(0, 0.02) for matrices and embeddings, zero biases, unit norms, and
        residual output projections scaled by 1/sqrt(2L) (Radford et al. 2019, §2.3)."""
        if self.wte.weight.is_meta:
            return
        std = 0.02
        resid_std = std / math.sqrt(2 * self.spec.n_layers)
        for name, p in self.named_parameters():
            if p.ndim >= 2:
                is_resid = name.endswith("c_proj.weight") or name.endswith("w_down")
                nn.init.normal_(p, mean=0.0, std=resid_std if is_resid else std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        for m in self.modules():
            if isinstance(m, (nn.RMSNorm, nn.LayerNorm)):
                m.reset_parameters()
        if self.rope_cos is not None and self.rope_cos.is_meta is False:
            cos, sin = rope_tables(self.spec.seq_len, self.spec.d_head)
            self.rope_cos.copy_(cos)
            self.rope_sin.copy_(sin)

    def n_params(self) -> int:
        """Parameters of the module (shared tensors counted once): equals ``spec.n_params().total``."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> ModelOutput:
        """idx, targets: (B, T) int64. Returns :class:`ModelOutput` ``(logits, loss, aux_loss)``."""
        _B, T = idx.shape
        if T > self.spec.seq_len:
            raise ConfigError(
                explain(
                    "input is longer than the model's context",
                    value=T,
                    allowed=f"at most spec.seq_len={self.spec.seq_len}",
                    fix="raise ModelSpec.seq_len or shorten the run's seq_len",
                )
            )
        x = self.wte(idx)  # (B, T, h)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(T, device=idx.device))
        if self.ln_emb is not None:
            x = self.ln_emb(x)
        rope = (self.rope_cos, self.rope_sin) if self.rope_cos is not None else None
        aux_total = x.new_zeros(())
        for block in self.blocks:
            x, aux = block(x, rope)
            if aux is not None:
                aux_total = aux_total + aux
        x = self.ln_f(x)
        if self.logit_mult != 1.0:
            x = x * self.logit_mult  # the head is linear without bias: the same as scaling the logits
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return ModelOutput(logits, loss, aux_total)

    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: decay on 2-D+ weight matrices of attention, MLPs, experts and the router; no
        decay on norms, biases and embeddings (input table, learned positions, and the head when tied),
        as in nanoGPT/Megatron (weight decay on embeddings and gains only shrinks useful scale)."""
        no_decay_ids = {id(self.wte.weight)}
        if self.wpe is not None:
            no_decay_ids.add(id(self.wpe.weight))
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        seen: set[int] = set()
        for p in self.parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            (decay if p.ndim >= 2 and id(p) not in no_decay_ids else no_decay).append(p)
        return [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
