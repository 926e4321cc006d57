"""Hugging Face ``config.json`` <-> ``ModelSpec``, without importing ``transformers``.

:func:`from_hf_config` reads the config files of the Llama, Mistral, Mixtral, Qwen2, Qwen3, Qwen3-MoE and
DeepSeek-V3 families, and Falcon's and GPT-NeoX's (Pythia; both with the parallel attention + MLP block,
``ModelSpec.parallel_block``) as published on the Hub. :func:`to_hf_config` writes a spec back as a config dict
that ``transformers`` can build (``AutoConfig.for_model(**d)``), which is how the tests check that
``ModelSpec.n_params()`` equals ``sum(p.numel())`` of the Hugging Face model (DESIGN.md principle 1).

Field meanings follow each family's ``configuration_*.py`` in ``transformers``; where a config key changes
the parameter count, the mapping says which modules it adds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._config_files import config_error_from_validation, read_config_file
from ..errors import ConfigError, explain
from .spec import ModelSpec

__all__ = ["SUPPORTED_MODEL_TYPES", "from_hf_config", "to_hf_config"]

#: model_type values that from_hf_config reads.
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "deepseek_v3", "falcon",
                         "gpt_neox")

#: Extra targets of to_hf_config (GPT-style presets); not read back.
_WRITE_ONLY_TYPES = ("gpt2", "bloom")

_ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "MixtralForCausalLM": "mixtral",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "DeepseekV3ForCausalLM": "deepseek_v3",
    "FalconForCausalLM": "falcon",
    "GPTNeoXForCausalLM": "gpt_neox",
}


class _Reader:
    """Typed access to config keys with errors that name the key, the value and what is allowed."""

    def __init__(self, cfg: dict[str, Any], where: str):
        self.cfg, self.where = cfg, where

    def int(self, key: str, default: Any = ..., *, alt: tuple[str, ...] = (), min_value: int = 1) -> Any:
        for k in (key, *alt):
            if k in self.cfg and self.cfg[k] is not None:
                v = self.cfg[k]
                if isinstance(v, bool) or not isinstance(v, int):
                    raise ConfigError(explain(f"{self.where}: {k} must be a whole number", value=v,
                                              fix=f"write \"{k}\": <integer> in the config"))
                if v < min_value:
                    raise ConfigError(explain(f"{self.where}: {k} is too small", value=v,
                                              allowed=f"an integer >= {min_value}",
                                              fix=f"set {k} to the model's real size"))
                return v
        if default is ...:
            raise ConfigError(explain(f"{self.where}: missing required key {key!r}",
                                      fix=f"add \"{key}\" to the config (see the model's config.json on the Hub)"))
        return default

    def bool(self, key: str, default: bool) -> bool:
        v = self.cfg.get(key, default)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise ConfigError(explain(f"{self.where}: {key} must be true or false", value=v))
        return v

    def float(self, key: str, default: float) -> float:
        v = self.cfg.get(key, default)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(explain(f"{self.where}: {key} must be a number", value=v))
        return float(v)


def _seq_len(cfg: dict[str, Any]) -> int:
    """Pre-training context: the rope-scaling block's original length where the model was extended
    (Llama 3.1: 8192; DeepSeek-V3: 4096), else ``max_position_embeddings``."""
    for block in ("rope_scaling", "rope_parameters"):
        rs = cfg.get(block)
        if isinstance(rs, dict) and isinstance(rs.get("original_max_position_embeddings"), int):
            return rs["original_max_position_embeddings"]
    mpe = cfg.get("max_position_embeddings")
    return mpe if isinstance(mpe, int) and mpe > 0 else 2048


def _model_type(cfg: dict[str, Any], where: str) -> str:
    mt = cfg.get("model_type")
    if mt is None:
        archs = cfg.get("architectures") or []
        mt = next((_ARCHITECTURES[a] for a in archs if a in _ARCHITECTURES), None)
        if mt is None:
            raise ConfigError(explain(f"{where}: no 'model_type' and no known 'architectures'", value=archs or None,
                                      allowed="model_type one of " + ", ".join(SUPPORTED_MODEL_TYPES),
                                      fix="add \"model_type\" to the config"))
    if mt not in SUPPORTED_MODEL_TYPES:
        raise ConfigError(explain(f"{where}: unsupported model_type", value=mt,
                                  allowed=", ".join(SUPPORTED_MODEL_TYPES),
                                  fix="write the model as a ModelSpec TOML instead (see docs/models-and-hardware.md)"))
    return mt


def from_hf_config(config: dict[str, Any] | str | Path, *, name: str | None = None) -> ModelSpec:
    """A ``ModelSpec`` from a Hugging Face ``config.json`` (dict or path); ``transformers`` is not needed.

    Parameters
    ----------
    config
        The parsed config, or a path to it.
    name
        Display name; defaults to ``_name_or_path`` from the config, or the model type.

    Raises
    ------
    ConfigError
        Unknown ``model_type``, a missing or non-integer size, or a layer pattern that ModelSpec cannot
        express (MoE layers that are not all after the dense ones).

    Examples
    --------
    >>> cfg = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
    ...        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    ...        "vocab_size": 128256}
    >>> from_hf_config(cfg).n_params().total
    8030261248
    """
    where = "HF config"
    if isinstance(config, (str, Path)):
        where, path = str(config), Path(config)
        config = read_config_file(path)
        if name is None:  # a plain `config.json` is named after its folder
            name = path.expanduser().resolve().parent.name if path.stem == "config" else path.stem
    if not isinstance(config, dict):
        raise ConfigError(explain("a HF config must be a dict or a path", value=type(config).__name__))
    cfg = config
    mt = _model_type(cfg, where)
    r = _Reader(cfg, where)
    if mt in ("falcon", "gpt_neox"):
        read = _falcon_fields if mt == "falcon" else _gpt_neox_fields
        return _build({"name": name or str(cfg.get("_name_or_path") or mt), **read(r, where)}, where)
    h = r.int("hidden_size", alt=("n_embd", "d_model"))
    a = r.int("num_attention_heads")
    fields: dict[str, Any] = {
        "name": name or str(cfg.get("_name_or_path") or mt),
        "n_layers": r.int("num_hidden_layers"),
        "d_model": h,
        "n_heads": a,
        "n_kv_heads": r.int("num_key_value_heads", a),
        "d_ff": r.int("intermediate_size"),
        "vocab_size": r.int("vocab_size"),
        "seq_len": _seq_len(cfg),
        # All seven families use a gated (SwiGLU-style) MLP, RMSNorm and rotary positions.
        "ffn_kind": "swiglu",
        "norm_kind": "rmsnorm",
        "position_kind": "rope",
        "tied_embeddings": r.bool("tie_word_embeddings", False),
    }
    head_dim = r.int("head_dim", None)
    if head_dim is not None and mt != "deepseek_v3":
        fields["d_head"] = head_dim

    attention_bias = r.bool("attention_bias", False)
    if mt == "qwen2":
        fields["attn_bias"] = "qkv"  # Qwen2Attention: bias on q/k/v projections, none on o_proj
    elif attention_bias:
        if mt in ("llama", "qwen3", "qwen3_moe"):
            fields["attn_bias"] = "all"  # q, k, v and o projections all get biases
        else:
            raise ConfigError(explain(f"{where}: attention_bias=true is not supported for {mt}", value=True,
                                      allowed="false", fix="remove attention_bias or write a ModelSpec TOML"))
    if mt == "llama":
        fields["mlp_bias"] = r.bool("mlp_bias", False)
    if mt in ("qwen3", "qwen3_moe"):
        fields["qk_norm"] = True  # Qwen3Attention: per-head RMSNorm on q and k (d_head weights each)

    if mt == "mixtral":
        fields["moe"] = {
            "n_experts": r.int("num_local_experts", alt=("num_experts",)),
            "top_k": r.int("num_experts_per_tok"),
            "d_expert": fields["d_ff"],
            "router_aux_loss_coef": r.float("router_aux_loss_coef", 0.02),
        }
    elif mt == "qwen3_moe":
        n_experts = r.int("num_experts", alt=("num_local_experts",))
        step = r.int("decoder_sparse_step", 1)
        only_mlp = cfg.get("mlp_only_layers") or []
        if not isinstance(only_mlp, list) or not all(isinstance(i, int) for i in only_mlp):
            raise ConfigError(explain(f"{where}: mlp_only_layers must be a list of layer indices", value=only_mlp))
        L = fields["n_layers"]
        dense = [i for i in range(L) if i in only_mlp or (i + 1) % step != 0]
        fields["moe"] = {
            "n_experts": n_experts,
            "top_k": r.int("num_experts_per_tok"),
            "d_expert": r.int("moe_intermediate_size"),
            "n_dense_layers": _leading(dense, where, "mlp_only_layers/decoder_sparse_step"),
            "router_aux_loss_coef": r.float("router_aux_loss_coef", 0.001),
        }
    elif mt == "deepseek_v3":
        freq = r.int("moe_layer_freq", 1)
        if freq != 1:
            raise ConfigError(explain(f"{where}: moe_layer_freq other than 1 is not supported", value=freq,
                                      allowed="1 (every layer after first_k_dense_replace is MoE)"))
        n_shared = r.int("n_shared_experts", 0, min_value=0)
        fields["moe"] = {
            "n_experts": r.int("n_routed_experts"),
            "top_k": r.int("num_experts_per_tok"),
            "d_expert": r.int("moe_intermediate_size"),
            "n_shared_experts": n_shared or 0,
            "n_dense_layers": r.int("first_k_dense_replace", 0, min_value=0),
            "router_aux_loss_coef": r.float("aux_loss_alpha", 0.0001),
        }
        q_lora = cfg.get("q_lora_rank")
        if q_lora is not None:
            q_lora = r.int("q_lora_rank")
        fields["mla"] = {
            "q_lora_rank": q_lora,
            "kv_lora_rank": r.int("kv_lora_rank"),
            "qk_nope_head_dim": r.int("qk_nope_head_dim"),
            "qk_rope_head_dim": r.int("qk_rope_head_dim"),
            "v_head_dim": r.int("v_head_dim"),
        }
        # n_heads need not divide d_model under MLA (the heads have their own widths); d_head is unused.
        if h % a:
            fields["d_head"] = fields["mla"]["v_head_dim"]
    return _build(fields, where)


def _build(fields: dict[str, Any], where: str) -> ModelSpec:
    try:
        return ModelSpec(**fields)
    except ValidationError as e:
        raise config_error_from_validation(e, where) from None


def _falcon_fields(r: _Reader, where: str) -> dict[str, Any]:
    """``ModelSpec`` fields of a Falcon config (transformers ``FalconConfig`` / ``FalconDecoderLayer``):
    a GELU MLP of ``ffn_hidden_size`` (default 4h), LayerNorms, rotary positions or ALiBi, biases on every
    linear when ``bias``. ``new_decoder_architecture`` (Falcon-40B/180B): ``num_kv_heads`` KV heads and a
    parallel block with ``num_ln_in_parallel_attn`` norms (default 2: ``ln_attn``, ``ln_mlp``); otherwise
    one KV head with ``multi_query`` (default true) and, with ``parallel_attn`` (default true), a parallel
    block sharing ``input_layernorm`` (Falcon-7B)."""
    h, a = r.int("hidden_size", alt=("n_embed",)), r.int("num_attention_heads")
    act = r.cfg.get("activation", "gelu")
    if act != "gelu":
        raise ConfigError(explain(f"{where}: Falcon activation {act!r} is not supported", value=act,
                                  allowed="gelu", fix="write a ModelSpec TOML instead"))
    new_arch, bias = r.bool("new_decoder_architecture", False), r.bool("bias", False)
    if new_arch:
        kv, parallel, norms = r.int("num_kv_heads", a), True, r.int("num_ln_in_parallel_attn", 2)
        if norms not in (1, 2):
            raise ConfigError(explain(f"{where}: num_ln_in_parallel_attn must be 1 or 2", value=norms))
    else:
        kv = 1 if r.bool("multi_query", True) else a
        parallel = r.bool("parallel_attn", True)
        norms = 1 if parallel else 2
    return {"n_layers": r.int("num_hidden_layers"), "d_model": h, "n_heads": a, "n_kv_heads": kv,
            "d_ff": r.int("ffn_hidden_size", 4 * h), "vocab_size": r.int("vocab_size"), "seq_len": _seq_len(r.cfg),
            "ffn_kind": "gelu", "norm_kind": "layernorm",
            "position_kind": "alibi" if r.bool("alibi", False) else "rope",
            "tied_embeddings": r.bool("tie_word_embeddings", True), "attn_bias": "all" if bias else "none",
            "mlp_bias": bias, "parallel_block": parallel, "parallel_block_norms": norms}


def _gpt_neox_fields(r: _Reader, where: str) -> dict[str, Any]:
    """``ModelSpec`` fields of a GPT-NeoX config (Pythia, GPT-NeoX-20B; transformers ``GPTNeoXConfig`` /
    ``GPTNeoXLayer``): multi-head attention with biases when ``attention_bias`` (default true), a GELU MLP with
    biases, two LayerNorms per layer (``input_layernorm``, ``post_attention_layernorm``), rotary positions on
    ``rotary_pct`` of each head (no parameters), untied embeddings by default; ``use_parallel_residual``
    (default true) makes the block parallel, each branch through its own norm."""
    act = r.cfg.get("hidden_act", "gelu")
    if act != "gelu":
        raise ConfigError(explain(f"{where}: GPT-NeoX hidden_act {act!r} is not supported", value=act,
                                  allowed="gelu", fix="write a ModelSpec TOML instead"))
    return {"n_layers": r.int("num_hidden_layers"), "d_model": r.int("hidden_size"),
            "n_heads": r.int("num_attention_heads"), "d_ff": r.int("intermediate_size"),
            "vocab_size": r.int("vocab_size"), "seq_len": _seq_len(r.cfg), "ffn_kind": "gelu",
            "norm_kind": "layernorm", "position_kind": "rope", "tied_embeddings": r.bool("tie_word_embeddings", False),
            "attn_bias": "all" if r.bool("attention_bias", True) else "none", "mlp_bias": True,
            "parallel_block": r.bool("use_parallel_residual", True)}


def _leading(dense: list[int], where: str, key: str) -> int:
    """Number of leading dense layers, when the dense layers are exactly 0..k-1."""
    if dense != list(range(len(dense))):
        raise ConfigError(explain(f"{where}: dense layers {dense} are not all before the MoE layers", value=key,
                                  allowed="dense (MLP-only) layers 0..k-1 followed by MoE layers",
                                  fix="ModelSpec counts leading dense layers only (moe.n_dense_layers)"))
    return len(dense)


def _cannot(spec: ModelSpec, target: str, reasons: list[str]) -> None:
    if reasons:
        raise ConfigError(explain(f"model {spec.name!r} cannot be written as a {target} config: " + "; ".join(reasons),
                                  allowed=", ".join((*SUPPORTED_MODEL_TYPES, *_WRITE_ONLY_TYPES)),
                                  fix="pass another model_type, or leave it unset to pick one automatically"))


def _auto_type(spec: ModelSpec) -> str:
    if spec.parallel_block:  # GPT-NeoX has MLP biases and two norms; Falcon holds the rest
        plain_mha = spec.n_kv_heads == spec.n_heads and spec.parallel_block_norms == 2
        return "gpt_neox" if spec.mlp_bias and plain_mha else "falcon"
    if spec.mla is not None:
        return "deepseek_v3"
    if spec.ffn_kind == "gelu" or spec.norm_kind == "layernorm" or spec.position_kind == "learned":
        return "gpt2" if spec.position_kind == "learned" else "bloom"
    if spec.moe is not None:
        if spec.qk_norm or spec.moe.n_dense_layers:
            return "qwen3_moe"
        return "mixtral" if spec.attn_bias == "none" else "qwen3_moe"
    if spec.qk_norm:
        return "qwen3"
    if spec.attn_bias == "qkv":
        return "qwen2"
    return "llama"


def to_hf_config(spec: ModelSpec, model_type: str | None = None) -> dict[str, Any]:
    """A Hugging Face config dict for ``spec`` (``model_type`` chosen from its features unless given).

    The result loads with ``transformers.AutoConfig.for_model(**d)``; a model built from it has exactly
    ``spec.n_params().total`` parameters.

    Raises ``ConfigError`` when the spec uses a feature the target family does not have.

    >>> from scalelab.arch import get_model
    >>> to_hf_config(get_model("qwen3-8b"))["model_type"]
    'qwen3'
    """
    mt = model_type or _auto_type(spec)
    if mt not in (*SUPPORTED_MODEL_TYPES, *_WRITE_ONLY_TYPES):
        raise ConfigError(explain("unknown model_type", value=mt,
                                  allowed=", ".join((*SUPPORTED_MODEL_TYPES, *_WRITE_ONLY_TYPES))))
    moe, mla = spec.moe, spec.mla
    reasons: list[str] = []
    gpt_like = mt in _WRITE_ONLY_TYPES
    if spec.parallel_block and mt not in ("falcon", "gpt_neox"):
        reasons.append("has no parallel attention + MLP block (parallel_block; falcon and gpt_neox have)")
    if mt == "falcon":
        reasons += _falcon_cannot(spec)
    elif mt == "gpt_neox":
        reasons += _gpt_neox_cannot(spec)
    elif gpt_like:
        if spec.ffn_kind != "gelu":
            reasons.append("needs ffn_kind='gelu'")
        if spec.norm_kind != "layernorm":
            reasons.append("needs norm_kind='layernorm'")
        if spec.attn_bias != "all" or not spec.mlp_bias:
            reasons.append("needs attn_bias='all' and mlp_bias=True")
        if not spec.tied_embeddings:
            reasons.append("needs tied_embeddings=True")
        if spec.n_kv_heads != spec.n_heads or spec.d_head * spec.n_heads != spec.d_model:
            reasons.append("needs plain multi-head attention with n_heads * d_head == d_model")
        if mt == "gpt2" and spec.position_kind != "learned":
            reasons.append("needs position_kind='learned'")
        if mt == "bloom" and spec.position_kind == "learned":
            reasons.append("has no learned positions (ALiBi)")
        if mt == "bloom" and spec.d_ff != 4 * spec.d_model:
            reasons.append("needs d_ff == 4 * d_model")
        if mt == "bloom" and not spec.embedding_norm:
            reasons.append("needs embedding_norm=True (BLOOM's word_embeddings_layernorm)")
        if moe is not None or mla is not None or spec.qk_norm:
            reasons.append("has no MoE, MLA or qk_norm")
        if mt == "gpt2" and spec.embedding_norm:
            reasons.append("has no embedding norm")
    else:
        if spec.ffn_kind != "swiglu" or spec.norm_kind != "rmsnorm" or spec.position_kind != "rope":
            reasons.append("needs a SwiGLU MLP, RMSNorm and rotary positions")
        if spec.mlp_bias and mt != "llama":
            reasons.append("has no MLP biases")
        if (mt in ("qwen3", "qwen3_moe")) != spec.qk_norm:
            reasons.append("qk_norm must be " + ("true" if mt in ("qwen3", "qwen3_moe") else "false"))
        allowed_bias = {"qwen2": ("qkv",), "llama": ("none", "all"), "qwen3": ("none", "all"),
                        "qwen3_moe": ("none", "all")}.get(mt, ("none",))
        if spec.attn_bias not in allowed_bias:
            reasons.append(f"attn_bias must be one of {allowed_bias}")
        if (mt == "deepseek_v3") != (mla is not None):
            reasons.append("MLA is only written as deepseek_v3" if mla is not None else "deepseek_v3 needs mla")
        if mt in ("mixtral", "qwen3_moe", "deepseek_v3") and moe is None:
            reasons.append("needs moe")
        if mt in ("llama", "mistral", "qwen2", "qwen3") and moe is not None:
            reasons.append("is dense (no moe)")
        if moe is not None:
            if moe.n_zero_experts or moe.capacity_factor is not None:
                reasons.append("has no zero experts or capacity factor (dropless only)")
            if moe.n_shared_experts and mt != "deepseek_v3":
                reasons.append("has no shared experts")
            if mt == "mixtral" and moe.n_dense_layers:
                reasons.append("needs every layer to be MoE (n_dense_layers=0)")
            if mt == "deepseek_v3" and moe.n_shared_experts and moe.shared_width != moe.d_expert:
                reasons.append("needs shared experts as wide as routed ones")
    _cannot(spec, mt, reasons)

    if mt == "gpt2":
        return {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": spec.d_model,
                "n_layer": spec.n_layers, "n_head": spec.n_heads, "n_inner": spec.d_ff,
                "n_positions": spec.seq_len, "vocab_size": spec.vocab_size, "activation_function": "gelu_new",
                "tie_word_embeddings": True}
    if mt == "falcon":
        return _falcon_config(spec)
    if mt == "gpt_neox":
        return {"model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"], "hidden_size": spec.d_model,
                "num_hidden_layers": spec.n_layers, "num_attention_heads": spec.n_heads,
                "intermediate_size": spec.d_ff, "vocab_size": spec.vocab_size, "max_position_embeddings": spec.seq_len,
                "hidden_act": "gelu", "attention_bias": spec.attn_bias == "all",
                "use_parallel_residual": spec.parallel_block, "tie_word_embeddings": spec.tied_embeddings}
    if mt == "bloom":
        return {"model_type": "bloom", "architectures": ["BloomForCausalLM"], "hidden_size": spec.d_model,
                "n_layer": spec.n_layers, "n_head": spec.n_heads, "vocab_size": spec.vocab_size,
                "tie_word_embeddings": True}

    d: dict[str, Any] = {
        "model_type": mt,
        "architectures": [next(k for k, v in _ARCHITECTURES.items() if v == mt)],
        "hidden_size": spec.d_model,
        "intermediate_size": spec.d_ff,
        "num_hidden_layers": spec.n_layers,
        "num_attention_heads": spec.n_heads,
        "num_key_value_heads": spec.n_kv_heads,
        "vocab_size": spec.vocab_size,
        "max_position_embeddings": spec.seq_len,
        "hidden_act": "silu",
        "tie_word_embeddings": spec.tied_embeddings,
    }
    if mt != "deepseek_v3":
        d["head_dim"] = spec.d_head
    if mt in ("llama", "qwen3", "qwen3_moe"):
        d["attention_bias"] = spec.attn_bias == "all"
    if mt == "llama":
        d["mlp_bias"] = spec.mlp_bias
    # The MoE types were rejected above unless the spec has moe (and deepseek_v3 unless it has mla).
    if mt == "mixtral" and moe is not None:
        # Mixtral has no dense layers: intermediate_size is the expert width (d_ff is then unused).
        d.update(intermediate_size=moe.d_expert, num_local_experts=moe.n_experts, num_experts_per_tok=moe.top_k,
                 router_aux_loss_coef=moe.router_aux_loss_coef)
    elif mt == "qwen3_moe" and moe is not None:
        d.update(num_experts=moe.n_experts, num_experts_per_tok=moe.top_k, moe_intermediate_size=moe.d_expert,
                 decoder_sparse_step=1, mlp_only_layers=list(range(moe.n_dense_layers)),
                 router_aux_loss_coef=moe.router_aux_loss_coef)
    elif mt == "deepseek_v3" and moe is not None and mla is not None:
        n_group = 8 if moe.n_experts % 8 == 0 else 1
        d.update(n_routed_experts=moe.n_experts, num_experts_per_tok=moe.top_k, moe_intermediate_size=moe.d_expert,
                 n_shared_experts=moe.n_shared_experts, first_k_dense_replace=moe.n_dense_layers, moe_layer_freq=1,
                 n_group=n_group, topk_group=min(n_group, moe.top_k), q_lora_rank=mla.q_lora_rank,
                 kv_lora_rank=mla.kv_lora_rank, qk_nope_head_dim=mla.qk_nope_head_dim,
                 qk_rope_head_dim=mla.qk_rope_head_dim, v_head_dim=mla.v_head_dim, attention_bias=False,
                 num_nextn_predict_layers=0)
    return d


def _falcon_cannot(spec: ModelSpec) -> list[str]:
    """Why ``spec`` cannot be a Falcon config (empty when it can)."""
    reasons = []
    if spec.ffn_kind != "gelu" or spec.norm_kind != "layernorm" or spec.position_kind not in ("rope", "alibi"):
        reasons.append("needs a GELU MLP, LayerNorm and rotary or ALiBi positions")
    if (spec.attn_bias, spec.mlp_bias) not in (("none", False), ("all", True)):
        reasons.append("needs biases on every linear or on none (attn_bias 'all' with mlp_bias, or 'none' without)")
    if spec.d_head * spec.n_heads != spec.d_model:
        reasons.append("needs n_heads * d_head == d_model")
    if spec.moe is not None or spec.mla is not None or spec.qk_norm or spec.embedding_norm:
        reasons.append("has no MoE, MLA, qk_norm or embedding norm")
    if not spec.parallel_block and spec.n_kv_heads not in (1, spec.n_heads):
        reasons.append("a sequential Falcon block needs one KV head or n_kv_heads == n_heads")
    return reasons


def _gpt_neox_cannot(spec: ModelSpec) -> list[str]:
    """Why ``spec`` cannot be a GPT-NeoX config (empty when it can)."""
    reasons = []
    if spec.ffn_kind != "gelu" or spec.norm_kind != "layernorm" or spec.position_kind != "rope":
        reasons.append("needs a GELU MLP, LayerNorm and rotary positions")
    if not spec.mlp_bias or spec.attn_bias == "qkv":
        reasons.append("needs MLP biases, and attention biases on every projection or none")
    if spec.n_kv_heads != spec.n_heads or spec.d_head * spec.n_heads != spec.d_model:
        reasons.append("needs plain multi-head attention with n_heads * d_head == d_model")
    if spec.moe is not None or spec.mla is not None or spec.qk_norm or spec.embedding_norm:
        reasons.append("has no MoE, MLA, qk_norm or embedding norm")
    if spec.parallel_block_norms != 2:
        reasons.append("has two norms per block (parallel_block_norms=2)")
    return reasons


def _falcon_config(spec: ModelSpec) -> dict[str, Any]:
    """A ``FalconConfig`` dict: a parallel block as ``new_decoder_architecture`` (any KV heads, 1 or 2 norms),
    a sequential one as the old architecture with ``parallel_attn=false``."""
    d: dict[str, Any] = {
        "model_type": "falcon", "architectures": ["FalconForCausalLM"], "hidden_size": spec.d_model,
        "num_hidden_layers": spec.n_layers, "num_attention_heads": spec.n_heads, "vocab_size": spec.vocab_size,
        "ffn_hidden_size": spec.d_ff, "max_position_embeddings": spec.seq_len, "activation": "gelu",
        "alibi": spec.position_kind == "alibi", "bias": spec.mlp_bias, "tie_word_embeddings": spec.tied_embeddings,
        "parallel_attn": spec.parallel_block, "new_decoder_architecture": spec.parallel_block,
    }
    if spec.parallel_block:
        d.update(num_kv_heads=spec.n_kv_heads, num_ln_in_parallel_attn=spec.parallel_block_norms)
    else:
        d["multi_query"] = spec.n_kv_heads == 1
    return d


def dump_hf_config(spec: ModelSpec, path: str | Path, model_type: str | None = None) -> Path:
    """Write :func:`to_hf_config` as a ``config.json`` file; returns the path."""
    p = Path(path)
    p.write_text(json.dumps(to_hf_config(spec, model_type), indent=2) + "\n", encoding="utf-8")
    return p
