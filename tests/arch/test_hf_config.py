"""Hugging Face config.json import/export, and parameter parity with ``transformers`` models built on
the meta device (DESIGN.md principle 1)."""

from __future__ import annotations

import json

import pytest

from scalelab.arch import ModelSpec, from_hf_config, get_model, list_presets, to_hf_config
from scalelab.errors import ConfigError

FIXTURES = ["llama-3.1-8b", "mistral-7b", "mixtral-8x7b", "qwen2.5-7b", "qwen3-8b", "qwen3-30b-a3b", "deepseek-v3"]


@pytest.fixture
def hf_dir(assets):
    return assets / "hf_configs"


@pytest.mark.parametrize("name", FIXTURES)
def test_public_config_reproduces_the_preset(hf_dir, name):
    from_file = get_model(hf_dir / f"{name}.json")  # detected as a HF config by its content
    preset = get_model(name)
    assert from_file.name == name
    assert from_file.n_params() == preset.n_params()
    for field in ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_head", "vocab_size", "mla",
                  "qk_norm", "attn_bias", "tied_embeddings"):
        assert getattr(from_file, field) == getattr(preset, field), field
    if preset.moe is not None:
        # The loss weight is not a shape: DeepSeek-V3's config.json says aux_loss_alpha 0.001, its
        # report (sec. 4.2) trained with 0.0001, which the preset keeps.
        ignore = {"router_aux_loss_coef"}
        assert from_file.moe.model_dump(exclude=ignore) == preset.moe.model_dump(exclude=ignore)


def test_tied_embeddings_are_read(hf_dir):
    # Qwen/Qwen2.5-0.5B ties its embeddings; the model card gives 0.49B total, 0.36B non-embedding.
    m = from_hf_config(hf_dir / "qwen2.5-0.5b.json")
    assert m.tied_embeddings
    assert m.n_params().total == pytest.approx(0.49e9, rel=1e-2)
    assert m.n_params().non_embedding == pytest.approx(0.36e9, rel=1e-2)


def test_seq_len_is_the_pre_extension_context(hf_dir):
    # rope_scaling.original_max_position_embeddings: Llama 3.1 pre-trained at 8K, DeepSeek-V3 at 4K.
    assert from_hf_config(hf_dir / "llama-3.1-8b.json").seq_len == 8192
    assert from_hf_config(hf_dir / "deepseek-v3.json").seq_len == 4096


def test_config_json_in_a_folder_is_named_after_the_folder(hf_dir, tmp_path):
    d = tmp_path / "My-Llama"
    d.mkdir()
    (d / "config.json").write_text((hf_dir / "llama-3.1-8b.json").read_text())
    assert get_model(d / "config.json").name == "My-Llama"


#: Families with no Hugging Face config type that to_hf_config writes: DeepMind's and GPT-3's shapes and BLOOM's
#: presets. Falcon's round-trips (model_type falcon, with its parallel block).
_WRITE_BACK = [p.name for p in list_presets() if p.family not in ("deepmind", "gpt", "bloom")]


@pytest.mark.parametrize("name", _WRITE_BACK)
def test_round_trip_keeps_counts(name):
    spec = get_model(name)
    back, c = from_hf_config(to_hf_config(spec)).n_params(), spec.n_params()
    # Mixtral-style configs have no dense layers, so d_ff (unused) may come back as the expert width.
    assert (back.total, back.active, back.embedding, back.attention) == (c.total, c.active, c.embedding, c.attention)


# ---- parity with transformers on the meta device -------------------------------------------------
_HF_TYPE = {"llama": "llama", "mistral": "mistral", "mixtral": "mixtral", "qwen2": "qwen2", "qwen3": "qwen3",
            "qwen3_moe": "qwen3_moe", "deepseek_v3": "deepseek_v3", "gpt": "gpt2", "bloom": "bloom", "tiny": None,
            # DeepSeek-V2's modules are V3's (MLA, shared + routed experts, dense leading layers); V3's router
            # bias is a buffer, so a deepseek_v3 config holds V2's parameters exactly
            "deepseek_v2": "deepseek_v3", "falcon": "falcon"}
_PARITY = [p.name for p in list_presets() if p.family in _HF_TYPE]


def _hf_numel(config: dict) -> int:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.AutoConfig.for_model(**config)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    return sum(p.numel() for p in model.parameters())


def _short(spec: ModelSpec) -> ModelSpec:
    """Same widths, fewer layers (every kind of layer kept): the count is linear in each layer kind, and
    a handful of layers keeps building 60 models under a few seconds."""
    dense = spec.moe.n_dense_layers if spec.moe else 0
    return get_model(spec, n_layers=min(spec.n_layers, dense + 2))


@pytest.mark.parametrize("name", _PARITY)
def test_transformers_model_has_exactly_n_params(name):
    pytest.importorskip("transformers")
    preset = next(p for p in list_presets() if p.name == name)
    spec = _short(preset.spec)
    hf = _hf_numel(to_hf_config(spec, _HF_TYPE[preset.family]))
    assert hf == spec.n_params().total


@pytest.mark.parametrize("name", ["llama-3.1-8b", "mixtral-8x7b", "qwen3-30b-a3b"])
def test_transformers_full_size_parity(name):
    pytest.importorskip("transformers")
    spec = get_model(name)
    assert _hf_numel(to_hf_config(spec)) == spec.n_params().total


def test_transformers_parity_for_public_config_file(hf_dir):
    pytest.importorskip("transformers")
    raw = json.loads((hf_dir / "qwen2.5-0.5b.json").read_text())
    raw = {k: v for k, v in raw.items() if k not in ("torch_dtype", "transformers_version")}
    assert _hf_numel(raw) == from_hf_config(raw).n_params().total


# ---- bad input ---------------------------------------------------------------------------------
def _llama(**changes):
    cfg = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
           "num_attention_heads": 4, "vocab_size": 256}
    cfg.update(changes)
    return {k: v for k, v in cfg.items() if v is not ...}


def test_unknown_model_type_names_it_and_the_allowed_ones():
    with pytest.raises(ConfigError) as e:
        from_hf_config(_llama(model_type="t5"))
    assert "'t5'" in str(e.value) and "qwen3_moe" in str(e.value)


def test_missing_key_is_named():
    with pytest.raises(ConfigError, match="hidden_size"):
        from_hf_config(_llama(hidden_size=...))


@pytest.mark.parametrize("key, value", [("num_hidden_layers", 0), ("num_hidden_layers", -2),
                                        ("hidden_size", "4096"), ("vocab_size", 1.5)])
def test_bad_sizes_name_the_key_and_value(key, value):
    with pytest.raises(ConfigError) as e:
        from_hf_config(_llama(**{key: value}))
    assert key in str(e.value) and repr(value) in str(e.value)


def test_heads_that_do_not_divide_width_are_rejected():
    with pytest.raises(ConfigError, match="n_heads"):
        from_hf_config(_llama(num_attention_heads=5))


def test_moe_layers_must_follow_dense_ones():
    cfg = {"model_type": "qwen3_moe", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4,
           "num_attention_heads": 4, "vocab_size": 256, "num_experts": 4, "num_experts_per_tok": 2,
           "moe_intermediate_size": 32, "mlp_only_layers": [2]}
    with pytest.raises(ConfigError, match="mlp_only_layers"):
        from_hf_config(cfg)
    cfg["mlp_only_layers"] = [0, 1]
    assert from_hf_config(cfg).moe.n_dense_layers == 2


def test_malformed_json_file_says_where(tmp_path):
    p = tmp_path / "config.json"
    p.write_text('{"model_type": "llama", "hidden_size": 64,,}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        get_model(p)


def test_spec_that_no_hf_family_can_hold_is_refused():
    with pytest.raises(ConfigError, match="cannot be written"):
        to_hf_config(get_model("chinchilla-70b"))
    with pytest.raises(ConfigError, match="qk_norm"):
        to_hf_config(get_model("qwen3-8b"), "llama")
    with pytest.raises(ConfigError, match="unknown model_type"):
        to_hf_config(get_model("llama-3.1-8b"), "gpt-j")


# ---- the parallel attention + MLP block (Falcon) ----------------------------------------------------
def test_falcon_round_trip_keeps_the_parallel_block():
    spec = get_model("falcon-180b")
    d = to_hf_config(spec)
    assert (d["model_type"], d["new_decoder_architecture"], d["num_ln_in_parallel_attn"]) == ("falcon", True, 2)
    assert from_hf_config(d, name=spec.name) == spec
    one = get_model(spec, n_layers=2, parallel_block_norms=1)
    assert from_hf_config(to_hf_config(one), name=one.name) == one


def test_falcon_7b_style_config_is_a_parallel_block_with_one_norm_and_one_kv_head():
    # tiiuae/falcon-7b's config keys (old decoder architecture: multi_query, parallel_attn, one input_layernorm)
    cfg = {"model_type": "falcon", "hidden_size": 4544, "num_attention_heads": 71, "num_hidden_layers": 32,
           "vocab_size": 65024, "multi_query": True, "parallel_attn": True, "new_decoder_architecture": False,
           "bias": False, "alibi": False}
    m = from_hf_config(cfg)
    assert (m.parallel_block, m.parallel_block_norms, m.n_kv_heads, m.d_ff) == (True, 1, 1, 4 * 4544)
    seq = from_hf_config({**cfg, "parallel_attn": False})
    assert not seq.parallel_block and seq.n_params().norms - m.n_params().norms == 32 * 2 * 4544


@pytest.mark.parametrize("changes", [{}, {"parallel_block_norms": 1}, {"parallel_block": False, "n_kv_heads": 1},
                                     {"attn_bias": "all", "mlp_bias": True, "position_kind": "alibi"}])
def test_transformers_falcon_has_exactly_n_params(changes):
    pytest.importorskip("transformers")
    small = dict(n_layers=2, d_model=256, n_heads=4, d_head=64, n_kv_heads=2, d_ff=1024, vocab_size=512)
    spec = get_model("falcon-180b", **{**small, **changes})
    assert _hf_numel(to_hf_config(spec, "falcon")) == spec.n_params().total


def test_a_parallel_block_is_not_silently_dropped():
    par = get_model("llama-3.1-8b", parallel_block=True)
    with pytest.raises(ConfigError, match="parallel attention"):
        to_hf_config(par, "llama")
    with pytest.raises(ConfigError, match="GELU"):
        to_hf_config(par)  # the only family with the block is Falcon's, which has no SwiGLU


def test_pythia_style_gpt_neox_config_is_a_parallel_block_with_two_norms():
    # EleutherAI/pythia-1b's config keys (use_parallel_residual, untied embeddings, biases everywhere)
    cfg = {"model_type": "gpt_neox", "hidden_size": 2048, "intermediate_size": 8192, "num_attention_heads": 8,
           "num_hidden_layers": 16, "vocab_size": 50304, "max_position_embeddings": 2048, "rotary_pct": 0.25,
           "use_parallel_residual": True, "tie_word_embeddings": False, "hidden_act": "gelu"}
    m = from_hf_config(cfg)
    assert (m.parallel_block, m.parallel_block_norms, m.attn_bias, m.mlp_bias) == (True, 2, "all", True)
    assert to_hf_config(m)["model_type"] == "gpt_neox" and from_hf_config(to_hf_config(m), name=m.name) == m
    assert not from_hf_config({**cfg, "use_parallel_residual": False}).parallel_block


@pytest.mark.parametrize("parallel", [True, False])
def test_transformers_gpt_neox_has_exactly_n_params(parallel):
    pytest.importorskip("transformers")
    cfg = {"model_type": "gpt_neox", "hidden_size": 256, "intermediate_size": 1024, "num_attention_heads": 4,
           "num_hidden_layers": 2, "vocab_size": 512, "use_parallel_residual": parallel}
    spec = from_hf_config(cfg)
    assert _hf_numel(to_hf_config(spec, "gpt_neox")) == spec.n_params().total
