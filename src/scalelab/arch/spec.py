"""``ModelSpec``: the one description of a decoder-only transformer (dense or MoE) that the planner,
the laws and the wind tunnel all share, and its exact parameter count.

Symbols used in comments: L = n_layers, h = d_model, a = n_heads, g = n_kv_heads, d_h = d_head,
f = d_ff, V = vocab_size, E = n_experts, k = top_k, f_e = d_expert.

The parameter count is the single source of truth (DESIGN.md principle 1): the wind tunnel's module and
a Hugging Face model built from the same config must have exactly ``n_params().total`` parameters.
Buffers (rotary tables, DeepSeek's expert-bias correction) are not parameters and are not counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, PositiveInt, SerializerFunctionWrapHandler, model_serializer, model_validator

from .._spec import Derived, Spec


class MLASpec(Spec):
    """Multi-head latent attention dimensions (DeepSeek-V2/V3, arXiv:2405.04434 §2.1)."""

    q_lora_rank: int | None = None
    """Rank of the query down-projection; ``None`` means queries are projected directly from h."""
    kv_lora_rank: PositiveInt = 512
    """Rank of the joint key/value latent (the only KV state cached at inference)."""
    qk_nope_head_dim: PositiveInt = 128
    """Per-head query/key width that carries no rotary embedding."""
    qk_rope_head_dim: PositiveInt = 64
    """Per-head query/key width that carries the rotary embedding (the key part is shared by heads)."""
    v_head_dim: PositiveInt = 128
    """Per-head value width."""


class MoESpec(Spec):
    """Mixture-of-experts feed-forward layers."""

    n_experts: PositiveInt
    """Routed experts per MoE layer (E)."""
    top_k: PositiveInt
    """Routed experts each token is sent to (k)."""
    d_expert: PositiveInt
    """Inner width of one routed expert's MLP (f_e)."""
    n_shared_experts: int = Field(0, ge=0)
    """Always-active shared experts per MoE layer (DeepSeekMoE)."""
    d_shared_expert: PositiveInt | None = None
    """Inner width of one shared expert; defaults to ``d_expert``."""
    n_dense_layers: int = Field(0, ge=0)
    """Leading layers that use a dense MLP of width ``d_ff`` instead of experts (DeepSeek-V3: 3)."""
    capacity_factor: float | None = Field(None, gt=0)
    """Expert capacity as a multiple of the even share k*tokens/E; ``None`` means dropless routing."""
    n_zero_experts: int = Field(0, ge=0)
    """Zero-computation (identity) experts that a router may pick at no cost (LongCat-Flash, arXiv:2509.01322)."""
    router_aux_loss_coef: float = Field(0.01, ge=0)
    """Weight of the load-balancing auxiliary loss (Switch Transformer, arXiv:2101.03961 eq. 4)."""

    @model_validator(mode="after")
    def _check(self) -> MoESpec:
        if self.top_k > self.n_experts + self.n_zero_experts:
            raise ValueError(
                f"top_k={self.top_k} exceeds the number of experts ({self.n_experts} routed + "
                f"{self.n_zero_experts} zero); allowed: top_k <= n_experts. Fix: lower top_k or add experts"
            )
        return self

    @property
    def shared_width(self) -> int:
        """Inner width of one shared expert (f_s)."""
        return self.d_shared_expert or self.d_expert


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts of a model, broken down. All values are plain counts (not bytes).

    ``embedding`` holds the input embedding, the output head when untied, and learned position
    embeddings; ``non_embedding = total - embedding`` (Kaplan et al. 2020's N). ``active`` counts what
    one token uses: top-k routed experts instead of all E, plus everything dense.
    """

    total: int
    active: int
    embedding: int
    non_embedding: int
    active_non_embedding: int
    attention: int
    mlp_dense: int
    experts_routed: int
    experts_shared: int
    router: int
    norms: int
    per_layer_attention: int
    per_layer_dense_mlp: int
    per_layer_moe: int
    per_layer_moe_active: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class ModelSpec(Spec):
    """A decoder-only transformer, dense or MoE.

    >>> m = ModelSpec(name="tiny", n_layers=2, d_model=64, n_heads=4, d_ff=256, vocab_size=256)
    >>> m.d_head, m.n_kv_heads
    (16, 4)
    """

    name: str = "custom"
    """Display name (presets use their public name, e.g. ``llama-3.1-8b``)."""
    n_layers: PositiveInt
    """Transformer blocks (L)."""
    d_model: PositiveInt
    """Residual stream width (h)."""
    n_heads: PositiveInt
    """Query heads (a)."""
    n_kv_heads: Annotated[PositiveInt, Derived] = Field(default=None, validate_default=True)
    """Key/value heads (g); ``n_heads`` for MHA, fewer for GQA, 1 for MQA. Defaults to ``n_heads``."""
    d_head: Annotated[PositiveInt, Derived] = Field(default=None, validate_default=True)
    """Per-head width (d_h); defaults to ``d_model // n_heads``."""
    d_ff: PositiveInt
    """Inner width of the dense MLP (f). For MoE models: width of the leading dense layers."""
    vocab_size: PositiveInt
    """Vocabulary size (V), as stored in the embedding matrix (padded where the model pads)."""
    seq_len: PositiveInt = 2048
    """Pre-training context length in tokens."""
    ffn_kind: Literal["gelu", "swiglu"] = "swiglu"
    """MLP type: two matrices with GELU, or three (gate, up, down) with SwiGLU."""
    norm_kind: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    """RMSNorm (weight only) or LayerNorm (weight and bias)."""
    position_kind: Literal["rope", "learned", "relative", "alibi"] = "rope"
    """Rotary embedding (no parameters), a learned ``seq_len x d_model`` table (GPT), Transformer-XL
    relative positions (Gopher/Chinchilla: a per-layer ``d_model x n_heads*d_head`` projection of the
    relative encodings; Rae et al. 2021 §C), or ALiBi biases (BLOOM; no parameters)."""
    tied_embeddings: bool = False
    """Whether the output head shares the input embedding matrix."""
    attn_bias: Literal["none", "qkv", "all"] = "none"
    """Biases in attention projections: none (Llama), on q/k/v only (Qwen2), or also on the output (GPT)."""
    mlp_bias: bool = False
    """Biases in the MLP projections (GPT-2/3, BLOOM)."""
    qk_norm: bool = False
    """RMSNorm over each head's queries and keys (Qwen3, OLMo 2)."""
    embedding_norm: bool = False
    """A norm right after the token embedding (BLOOM's ``word_embeddings_layernorm``; Dettmers et al.
    2022's stable embedding)."""
    parallel_block: bool = False
    """Attention and MLP read the same block input and their outputs join the residual together,
    ``y = x + Attn(LN(x)) + MLP(LN'(x))``, instead of one after the other: GPT-J, GPT-NeoX / Pythia
    (``use_parallel_residual``), PaLM (Chowdhery et al. 2022 sec. 2, "Parallel Layers"), Falcon
    (``parallel_attn`` / ``new_decoder_architecture``), Cohere Command R, Phi-2. Same weights and FLOPs as
    the sequential block; under tensor parallelism the two row-parallel outputs are summed before one
    reduction, so the planner charges one TP collective per block and direction instead of two
    (docs/planner.md, "Parallel attention+MLP block")."""
    parallel_block_norms: Literal[1, 2] = 2
    """Norms per parallel block: 1 when attention and MLP share one (GPT-J, PaLM, Falcon-7B, Phi-2,
    Cohere), 2 when each branch has its own (GPT-NeoX-20B's untied pair, Falcon-40B/180B's ``ln_attn`` and
    ``ln_mlp``). Only 2 is allowed for a sequential block, which always has two."""
    mla: MLASpec | None = None
    """Multi-head latent attention; when set, n_kv_heads/d_head are not used for attention weights."""
    moe: MoESpec | None = None
    """Mixture-of-experts settings; ``None`` for a dense model."""

    @model_validator(mode="after")
    def _resolve_and_check(self) -> ModelSpec:
        # Frozen model: fill derived defaults through object.__setattr__ once, at construction.
        if self.d_head is None:
            if self.d_model % self.n_heads:
                raise ValueError(
                    f"n_heads={self.n_heads} does not divide d_model={self.d_model}; allowed: a divisor of "
                    f"d_model, or give d_head explicitly. Fix: choose n_heads that divides {self.d_model}"
                )
            object.__setattr__(self, "d_head", self.d_model // self.n_heads)
        if self.n_kv_heads is None:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"n_kv_heads={self.n_kv_heads} does not divide n_heads={self.n_heads}; allowed: a divisor "
                f"of n_heads (GQA groups). Fix: pick n_kv_heads from the divisors of {self.n_heads}"
            )
        if self.parallel_block_norms == 1 and not self.parallel_block:
            raise ValueError(
                "parallel_block_norms=1 needs parallel_block=True; allowed: 2 for a sequential block (one norm "
                "before attention, one before the MLP). Fix: set parallel_block=True or drop parallel_block_norms"
            )
        if self.moe is not None and self.moe.n_dense_layers > self.n_layers:
            raise ValueError(
                f"moe.n_dense_layers={self.moe.n_dense_layers} exceeds n_layers={self.n_layers}"
            )
        return self

    @model_serializer(mode="wrap")
    def _leave_out_the_sequential_block(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The parallel-block fields are written only for a parallel block: a sequential spec serializes (and
        hashes, alone or inside a wind-tunnel ``RunConfig``) as it did before they existed, so stores keyed
        by content hash keep their runs."""
        d = handler(self)
        if not self.parallel_block:
            d.pop("parallel_block", None)
            d.pop("parallel_block_norms", None)
        return d

    # ---- derived shapes -------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    @property
    def n_moe_layers(self) -> int:
        """Layers whose MLP is a mixture of experts."""
        return 0 if self.moe is None else self.n_layers - self.moe.n_dense_layers

    @property
    def n_dense_mlp_layers(self) -> int:
        """Layers whose MLP is dense (all of them for a dense model)."""
        return self.n_layers - self.n_moe_layers

    @property
    def q_dim(self) -> int:
        """Width of all query heads together (a * d_h, or a * (nope + rope) with MLA)."""
        if self.mla is not None:
            return self.n_heads * (self.mla.qk_nope_head_dim + self.mla.qk_rope_head_dim)
        return self.n_heads * self.d_head

    @property
    def kv_dim(self) -> int:
        """Width of all key heads together (g * d_h); with MLA the per-head key width times a."""
        if self.mla is not None:
            return self.n_heads * (self.mla.qk_nope_head_dim + self.mla.qk_rope_head_dim)
        return self.n_kv_heads * self.d_head

    @property
    def v_dim(self) -> int:
        """Width of all value heads together (g * d_h, or a * d_v with MLA)."""
        if self.mla is not None:
            return self.n_heads * self.mla.v_head_dim
        return self.n_kv_heads * self.d_head

    # ---- parameter counts (single source of truth) -----------------------------------------------
    def _mlp_params(self, width: int) -> int:
        h = self.d_model
        if self.ffn_kind == "swiglu":
            return 3 * h * width + (2 * width + h if self.mlp_bias else 0)
        return 2 * h * width + (width + h if self.mlp_bias else 0)

    def _attention_params(self) -> int:
        h, a = self.d_model, self.n_heads
        if self.mla is not None:
            m = self.mla
            qk = m.qk_nope_head_dim + m.qk_rope_head_dim
            if m.q_lora_rank:
                q = h * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * a * qk  # down, norm, up
            else:
                q = h * a * qk
            kv = h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank  # joint down-proj + norm
            kv += m.kv_lora_rank * a * (m.qk_nope_head_dim + m.v_head_dim)  # up-proj to k_nope and v
            o = a * m.v_head_dim * h
            return q + kv + o
        dh, g = self.d_head, self.n_kv_heads
        n = h * dh * (a + 2 * g) + a * dh * h
        if self.attn_bias in ("qkv", "all"):
            n += dh * (a + 2 * g)
        if self.attn_bias == "all":
            n += h
        if self.qk_norm:
            n += 2 * dh
        if self.position_kind == "relative":
            n += h * a * dh  # Transformer-XL's projection of the sinusoidal relative encodings
        return n

    def _norm_params(self) -> int:
        return (2 if self.norm_kind == "layernorm" else 1) * self.d_model

    def n_params(self) -> ParamCounts:
        """Exact parameter counts (total, active, embedding, non-embedding and by component).

        >>> ModelSpec(name="llama-3.1-8b", n_layers=32, d_model=4096, n_heads=32, n_kv_heads=8,
        ...           d_ff=14336, vocab_size=128256).n_params().total
        8030261248
        """
        h, L, V = self.d_model, self.n_layers, self.vocab_size
        attn = self._attention_params()
        dense_mlp = self._mlp_params(self.d_ff)
        moe_total = moe_active = router = routed = shared = 0
        if self.moe is not None:
            e = self.moe
            router = h * (e.n_experts + e.n_zero_experts)
            routed = e.n_experts * self._mlp_params(e.d_expert)
            shared = e.n_shared_experts * self._mlp_params(e.shared_width)
            moe_total = router + routed + shared
            moe_active = router + min(e.top_k, e.n_experts) * self._mlp_params(e.d_expert) + shared
        n_moe, n_dense = self.n_moe_layers, self.n_dense_mlp_layers
        # two per block (one in a parallel block with a shared norm), the final one, and BLOOM's embedding norm
        norms = (L * self.parallel_block_norms + 1 + int(self.embedding_norm)) * self._norm_params()
        embedding = V * h * (1 if self.tied_embeddings else 2)
        if self.position_kind == "learned":
            embedding += self.seq_len * h
        body = L * attn + norms + n_dense * dense_mlp
        total = body + n_moe * moe_total + embedding
        active = body + n_moe * moe_active + embedding
        return ParamCounts(
            total=total,
            active=active,
            embedding=embedding,
            non_embedding=total - embedding,
            active_non_embedding=active - embedding,
            attention=L * attn,
            mlp_dense=n_dense * dense_mlp,
            experts_routed=n_moe * routed,
            experts_shared=n_moe * shared,
            router=n_moe * router,
            norms=norms,
            per_layer_attention=attn,
            per_layer_dense_mlp=dense_mlp,
            per_layer_moe=moe_total,
            per_layer_moe_active=moe_active,
        )

    def summary(self) -> dict[str, Any]:
        """Shape and counts as a flat dict, for tables and JSON."""
        c = self.n_params()
        return {
            "name": self.name,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads,
            "d_ff": self.d_ff,
            "vocab_size": self.vocab_size,
            "moe": None if self.moe is None else f"{self.moe.n_experts}x top-{self.moe.top_k}",
            "params_total": c.total,
            "params_active": c.active,
            "params_non_embedding": c.non_embedding,
        }
