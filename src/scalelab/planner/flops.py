"""Training FLOPs per token and per step: the only place in scalelab where FLOP formulas live.

DESIGN.md principle 1: the planner's MFU/HFU, the laws' compute budgets and the wind tunnel's reported
FLOPs all call :func:`flops_per_token`. Every published figure that disagrees with another does so by a
convention, so each convention is a field of :class:`FlopConventions` (principle 2).

Symbols (per layer unless stated): h = d_model, a = n_heads, g = n_kv_heads, d_h = d_head,
f = d_ff, V = vocab_size, s = sequence length, E = routed experts, k = top_k, f_e = d_expert.
A multiply-add counts as 2 FLOPs.

Formulas
--------
*exact* (matmul count, Narayanan et al. 2021 §3.2 / Korthikanti et al. 2022 App. A, generalised to
GQA, SwiGLU, MLA and MoE as in Megatron-LM ``num_floating_point_operations``):

- every weight matmul costs ``2 * (weights in the matmul)`` per token forward;
- attention scores ``Q K^T`` and ``softmax(.) V`` cost ``2 * s_ctx * a * (d_qk + d_v)`` per token, with
  ``s_ctx = s`` or ``s / 2`` when causal masking is credited (``causal_halved``);
- MoE layers run the router (``2 h E``), the ``k`` selected routed experts and the shared experts;
- the LM head costs ``2 h V`` (``count_logits``); the embedding lookup is free unless ``count_embedding``
  (then it is costed as a one-hot matmul, ``2 h V``, as Kaplan et al. 2020 do for their total);
- backward costs twice the forward (one matmul for activation gradients, one for weight gradients);
- norms, softmax, activations, rotary embeddings and the optimizer are elementwise and not counted.

*6N* (Kaplan et al. 2020 eq. 2.1, Hoffmann et al. 2022): forward ``2 N``, backward ``4 N``, where N is
the active non-embedding parameter count plus the head when ``count_logits`` and the input embedding
when ``count_embedding``. Attention scores are ignored.

Recomputation adds forward passes: ``full`` re-runs every transformer layer's forward (not the LM head:
Narayanan et al. 2021's ``96 B s L h^2 (1 + s/6h + V/16Lh)``), ``selective`` re-runs the attention
core (``Q K^T``, softmax, ``. V``; Korthikanti et al. 2022 §5).

Model FLOPs (for MFU) are forward + backward; hardware FLOPs (for HFU) add recomputation
(Chowdhery et al. 2022, App. B).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from ..errors import ConfigError, explain
from ..units import FLOPS_PER_PARAM_TOKEN, tokens_for_training_flops, training_flops
from .policy import SavePolicy, get_save_policy

if TYPE_CHECKING:  # pragma: no cover
    from ..arch.spec import ModelSpec
    from .layout import LoRASpec, TrainSpec

__all__ = [
    "FLOPS_PER_PARAM_TOKEN",
    "FlopConventions",
    "FlopsBreakdown",
    "flops_per_step",
    "flops_per_token",
    "lora_params_by_layer",
    "matmul_params_per_layer",
    "tokens_for_training_flops",
    "training_flops",
]

@dataclass(frozen=True)
class FlopConventions:
    """How FLOPs are counted. Each field is one published convention; defaults follow Megatron 2021.

    Attributes
    ----------
    method : {"exact", "6N"}
        ``exact`` counts every matmul including attention scores; ``6N`` is ``6 * N_active`` per token.
    causal_halved : bool
        Credit causal masking by halving the score and value matmuls (current Megatron-LM does; PaLM,
        torchtitan, Narayanan et al. 2021 and Korthikanti et al. 2022 do not).
    count_logits : bool
        Include the LM head ``2 h V`` per token forward (Megatron, PaLM: yes; torchtitan: only via N).
    count_embedding : bool
        Cost the embedding lookup as a one-hot matmul (``2 h V``). Lookups are not matmuls, so off.
    selective_recompute_passes : float
        Forward passes of the attention core that ``selective`` recomputation adds. 1 is what the
        recomputed work is; Korthikanti et al. 2022's HFU formula ``72 B s L h^2 (1 + s/3h + V/12Lh)``
        (their App. A, reproducing their Table 5) implies 3.
    """

    method: Literal["exact", "6N"] = "exact"
    causal_halved: bool = False
    count_logits: bool = True
    count_embedding: bool = False
    selective_recompute_passes: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in ("exact", "6N"):
            raise ConfigError(explain("unknown FLOP counting method", value=self.method,
                                      allowed="'exact' or '6N'", fix="pass method='exact' or method='6N'"))
        if not self.selective_recompute_passes >= 0:
            raise ConfigError(explain("selective_recompute_passes must be >= 0",
                                      value=self.selective_recompute_passes, fix="use 1 (default) or 3"))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FlopsBreakdown:
    """FLOPs of one token or one optimizer step, by pass. All values are FLOPs (multiply-add = 2).

    ``model = forward + backward`` is the MFU numerator; ``hardware = model + recompute`` the HFU one.
    ``detail`` splits the forward pass by component (attention projections, attention scores, MLP,
    router, logits, embedding, adapters).
    """

    forward: float
    backward: float
    recompute: float
    model: float
    hardware: float
    per: Literal["token", "step"]
    conventions: FlopConventions
    detail: tuple[tuple[str, float], ...] = ()

    def scaled(self, factor: float, per: Literal["token", "step"]) -> FlopsBreakdown:
        """The same breakdown multiplied by ``factor`` (e.g. tokens per step)."""
        return FlopsBreakdown(
            forward=self.forward * factor, backward=self.backward * factor,
            recompute=self.recompute * factor, model=self.model * factor,
            hardware=self.hardware * factor, per=per, conventions=self.conventions,
            detail=tuple((k, v * factor) for k, v in self.detail),
        )

    def to_dict(self) -> dict:
        return {
            "forward_flops": self.forward,
            "backward_flops": self.backward,
            "recompute_flops": self.recompute,
            "model_flops": self.model,
            "hardware_flops": self.hardware,
            "per": self.per,
            "conventions": self.conventions.to_dict(),
            "forward_detail_flops": dict(self.detail),
        }

    def report(self) -> str:
        lines = [f"FLOPs per {self.per} ({self.conventions.method}, causal_halved="
                 f"{self.conventions.causal_halved}, logits={self.conventions.count_logits})"]
        for k in ("forward", "backward", "recompute", "model", "hardware"):
            lines.append(f"  {k:<10} {getattr(self, k):.4g}")
        return "\n".join(lines)


# ---- shapes -------------------------------------------------------------------------------------------

def _mlp_matmul(model: ModelSpec, width: int) -> int:
    """Weights in the matmuls of one MLP of inner width ``width`` (SwiGLU: gate, up, down)."""
    return (3 if model.ffn_kind == "swiglu" else 2) * model.d_model * width


def _attention_matmul(model: ModelSpec) -> int:
    """Weights in one layer's attention projections (no biases or norms)."""
    h, a = model.d_model, model.n_heads
    if model.mla is not None:
        m = model.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        q = (h * m.q_lora_rank + m.q_lora_rank * a * qk) if m.q_lora_rank else h * a * qk
        kv = h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank * a * (m.qk_nope_head_dim + m.v_head_dim)
        return q + kv + a * m.v_head_dim * h
    dh, g = model.d_head, model.n_kv_heads
    return h * dh * (a + 2 * g) + a * dh * h


def _score_width(model: ModelSpec) -> int:
    """``a * (d_qk + d_v)``: width of the two attention-core matmuls summed over query heads."""
    if model.mla is not None:
        m = model.mla
        return model.n_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim)
    return 2 * model.n_heads * model.d_head


def matmul_params_per_layer(model: ModelSpec) -> dict[str, int]:
    """Weights in matmuls of one layer, by kind: attention, dense MLP, MoE (active and total), router.

    >>> from scalelab.arch.spec import ModelSpec
    >>> m = ModelSpec(n_layers=1, d_model=8, n_heads=2, d_ff=32, vocab_size=10, ffn_kind="gelu")
    >>> matmul_params_per_layer(m)["attention"], matmul_params_per_layer(m)["dense_mlp"]
    (256, 512)
    """
    out = {"attention": _attention_matmul(model), "dense_mlp": _mlp_matmul(model, model.d_ff),
           "moe_active": 0, "moe_total": 0, "router": 0}
    if model.moe is not None:
        e = model.moe
        shared = e.n_shared_experts * _mlp_matmul(model, e.shared_width)
        out["router"] = model.d_model * (e.n_experts + e.n_zero_experts)
        out["moe_active"] = min(e.top_k, e.n_experts) * _mlp_matmul(model, e.d_expert) + shared
        out["moe_total"] = e.n_experts * _mlp_matmul(model, e.d_expert) + shared
    return out


_LORA_NAMES = ("q", "k", "v", "o", "gate", "up", "down")


def lora_params_by_layer(model: ModelSpec, lora: LoRASpec) -> dict[str, int]:
    """Adapter parameters per layer: ``r * (d_in + d_out)`` for each targeted matrix (Hu et al. 2021 §4.1).

    Returns ``{"attention", "dense_mlp", "moe_total", "moe_active", "moe_routed", "moe_shared"}``
    counts for one layer of each kind. MLA models: ``q``/``k``/``v`` adapt the (up-)projections that produce
    queries, keys and values.
    MoE layers: ``gate``/``up``/``down`` adapt every routed and shared expert (``moe_total``); a token
    uses the top-k (``moe_active``). The router is not adapted.
    """
    targets = set(lora.target_modules)
    if "all" in targets:
        targets = set(_LORA_NAMES)
    unknown = targets - set(_LORA_NAMES)
    if unknown:
        raise ConfigError(explain("unknown LoRA target module", value=sorted(unknown),
                                  allowed="q, k, v, o, gate, up, down or all",
                                  fix="name the projections to adapt, e.g. ('q', 'v')"))
    r, h, a = lora.rank, model.d_model, model.n_heads
    shapes: dict[str, list[tuple[int, int]]] = {}
    if model.mla is not None:
        m = model.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        shapes["q"] = [(m.q_lora_rank, a * qk)] if m.q_lora_rank else [(h, a * qk)]
        shapes["k"] = [(m.kv_lora_rank, a * m.qk_nope_head_dim)]
        shapes["v"] = [(m.kv_lora_rank, a * m.v_head_dim)]
        shapes["o"] = [(a * m.v_head_dim, h)]
    else:
        dh, g = model.d_head, model.n_kv_heads
        shapes = {"q": [(h, a * dh)], "k": [(h, g * dh)], "v": [(h, g * dh)], "o": [(a * dh, h)]}

    def mlp(width: int) -> int:
        n = 0
        if "gate" in targets and model.ffn_kind == "swiglu":
            n += r * (h + width)
        if "up" in targets:
            n += r * (h + width)
        if "down" in targets:
            n += r * (width + h)
        return n

    attn = sum(r * (i + o) for name in ("q", "k", "v", "o") if name in targets for i, o in shapes[name])
    out = {"attention": attn, "dense_mlp": mlp(model.d_ff), "moe_total": 0, "moe_active": 0,
           "moe_routed": 0, "moe_shared": 0}
    if model.moe is not None:
        e = model.moe
        shared = e.n_shared_experts * mlp(e.shared_width)
        out["moe_routed"] = e.n_experts * mlp(e.d_expert)
        out["moe_shared"] = shared
        out["moe_total"] = out["moe_routed"] + shared
        out["moe_active"] = min(e.top_k, e.n_experts) * mlp(e.d_expert) + shared
    return out


# ---- FLOPs ---------------------------------------------------------------------------------------------

def _recompute_forward(model: ModelSpec, policy: SavePolicy, c: FlopConventions, *, layers_fwd: float,
                       scores_layer: float) -> float:
    """Forward FLOPs per token that ``policy`` runs again in backward (only matmuls count: norms and
    activations are elementwise, which FLOP counts leave out)."""
    if policy.full:
        return layers_fwd
    if c.method != "exact":
        return 0.0
    L, h = model.n_layers, model.d_model
    out = 0.0
    if "core_attn" in policy.recompute:
        out += c.selective_recompute_passes * L * scores_layer
    if "mla_up_proj" in policy.recompute and model.mla is not None:
        m, a = model.mla, model.n_heads
        q_up = (m.q_lora_rank or 0) * a * (m.qk_nope_head_dim + m.qk_rope_head_dim)
        kv_up = m.kv_lora_rank * a * (m.qk_nope_head_dim + m.v_head_dim)
        out += 2.0 * L * (q_up + kv_up)
    if policy.op_sac:
        # torchtitan saves every other matmul output: K, the output projection and (SwiGLU) up are
        # recomputed in a dense layer (MoE expert GEMMs are grouped, not counted by its policy).
        up = h * model.d_ff if model.ffn_kind == "swiglu" else 0.0
        out += 2.0 * (L * (h * model.kv_dim + model.q_dim * h) + model.n_dense_mlp_layers * up)
    return out


def flops_per_token(model: ModelSpec, seq_len: int, *, recompute: str = "none",
                    conventions: FlopConventions = FlopConventions(),
                    lora: LoRASpec | None = None) -> FlopsBreakdown:
    """Training FLOPs for one token of a sequence of ``seq_len`` tokens.

    Parameters
    ----------
    model : ModelSpec
        Dense or MoE model; MoE layers count the router, ``top_k`` routed and all shared experts.
    seq_len : int
        Tokens per sequence (the attention-score term grows with it).
    recompute : str
        Save policy (:mod:`scalelab.planner.policy`): what is recomputed adds forward work to the
        hardware FLOPs only.
    conventions : FlopConventions
        Counting conventions (see the class).
    lora : LoRASpec, optional
        LoRA fine-tuning: frozen base matmuls get no weight-gradient matmul in backward (1x forward
        instead of 2x), adapters cost ``2 r (d_in + d_out)`` forward and twice that backward.

    Returns
    -------
    FlopsBreakdown
        per token.

    Examples
    --------
    GPT-3 175B with Megatron's conventions: ``72 s L h^2 (1 + s/6h + V/12Lh) / s`` per token.

    >>> from scalelab.arch.spec import ModelSpec
    >>> m = ModelSpec(n_layers=96, d_model=12288, n_heads=96, d_ff=49152, vocab_size=51200,
    ...               ffn_kind="gelu")
    >>> f = flops_per_token(m, 2048)
    >>> round(f.model / (72 * 96 * 12288**2 * (1 + 2048 / (6 * 12288) + 51200 / (12 * 96 * 12288))), 9)
    1.0
    """
    policy = get_save_policy(recompute)
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len <= 0:
        raise ConfigError(explain("seq_len must be a positive integer", value=seq_len,
                                  fix="pass the tokens per sequence, e.g. 2048"))
    c = conventions
    h, V, L = model.d_model, model.vocab_size, model.n_layers
    n_moe, n_dense = model.n_moe_layers, model.n_dense_mlp_layers
    mm = matmul_params_per_layer(model)
    head = 2.0 * h * V if c.count_logits else 0.0
    embed = 2.0 * h * V if c.count_embedding else 0.0
    s_ctx = seq_len / 2 if c.causal_halved else float(seq_len)
    scores_layer = 2.0 * s_ctx * _score_width(model)  # Q K^T and P V, forward, one layer

    if c.method == "6N":
        counts = model.n_params()
        # 6N: matmul-free parameters (norms, biases) count like the rest, as Kaplan et al. do.
        detail = {"layers": 2.0 * counts.active_non_embedding, "logits": head, "embedding": embed}
        layers_fwd = detail["layers"]
        scores = 0.0
        base_mm_fwd = layers_fwd + head + embed
    else:
        attn = 2.0 * L * mm["attention"]
        mlp = 2.0 * n_dense * mm["dense_mlp"]
        moe = 2.0 * n_moe * mm["moe_active"]
        router = 2.0 * n_moe * mm["router"]
        scores = L * scores_layer
        detail = {"attention_proj": attn, "attention_scores": scores, "mlp": mlp, "moe_experts": moe,
                  "router": router, "logits": head, "embedding": embed}
        layers_fwd = attn + scores + mlp + moe + router
        base_mm_fwd = attn + mlp + moe + router + head + embed

    adapters_fwd = 0.0
    if lora is not None:
        lp = lora_params_by_layer(model, lora)
        adapters_fwd = 2.0 * (L * lp["attention"] + n_dense * lp["dense_mlp"] + n_moe * lp["moe_active"])
        detail["lora_adapters"] = adapters_fwd
        layers_fwd += adapters_fwd

    forward = sum(detail.values())
    if lora is None:
        backward = 2.0 * forward
    else:
        # Frozen weights need only the activation-gradient matmul; the attention core has no weights
        # and keeps both of its backward matmuls; adapters are trained (Hu et al. 2021).
        backward = 1.0 * base_mm_fwd + 2.0 * scores + 2.0 * adapters_fwd
    recomp = _recompute_forward(model, policy, c, layers_fwd=layers_fwd, scores_layer=scores_layer)
    model_flops = forward + backward
    return FlopsBreakdown(forward=forward, backward=backward, recompute=recomp, model=model_flops,
                          hardware=model_flops + recomp, per="token", conventions=c,
                          detail=tuple(detail.items()))


def flops_per_step(model: ModelSpec, train: TrainSpec, *, recompute: str = "none",
                   conventions: FlopConventions = FlopConventions()) -> FlopsBreakdown:
    """Training FLOPs of one optimizer step: :func:`flops_per_token` x ``train.global_batch_tokens``.

    LoRA settings are taken from ``train.lora``. With packed, document-masked sequences
    (``train.document_tokens``) the attention scores span the documents, not the sequence:
    ``flops_per_token`` at ``train.attention_tokens`` (the attention term is the only one the sequence
    length sets).

    >>> from scalelab.arch.spec import ModelSpec
    >>> from scalelab.planner.layout import TrainSpec
    >>> m = ModelSpec(n_layers=2, d_model=64, n_heads=4, d_ff=256, vocab_size=256)
    >>> t = TrainSpec(seq_len=128, global_batch=8)
    >>> flops_per_step(m, t).model == flops_per_token(m, 128).model * 1024
    True
    """
    per_tok = flops_per_token(model, train.attention_tokens, recompute=recompute, conventions=conventions,
                              lora=train.lora)
    return per_tok.scaled(float(train.global_batch_tokens), "step")
