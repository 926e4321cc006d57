"""Under an fp8 recipe Transformer Engine's linears save the fp8 GEMM input for backward, not the bf16 activation
(MemoryConventions.fp8_saves_quantized_linear_inputs, set by the megatron and nemo profiles): the QKV, MLP-in and
MLP-out inputs at 1 byte, and the output projection's fp8 copy beside FlashAttention's bf16 output."""

from __future__ import annotations

import dataclasses

import pytest

from scalelab import get_cluster, get_model
from scalelab.planner import Layout, MemoryConventions, TrainSpec, plan
from scalelab.planner.frameworks import get_framework
from scalelab.planner.memory import _layer_activation_terms, linear_input_bytes

M = get_model("llama-3.1-8b")


def _terms(lin: float | None, **layout) -> dict[str, float]:
    lay = Layout(recompute="none", **layout)
    return _layer_activation_terms(M, 8192, 1, lay, 2.0, MemoryConventions(), False, "none", lin)


def test_each_linear_input_is_saved_at_one_byte_and_the_projection_keeps_its_own_copy():
    bf16, fp8 = _terms(None), _terms(1.0)
    T, h = 8192, M.d_model
    assert bf16 == _terms(2.0)  # lin defaults to the activation bytes
    assert bf16["attn_input"] - fp8["attn_input"] == T * h
    assert bf16["mlp_input"] - fp8["mlp_input"] == T * h
    # SwiGLU: gate and up stay bf16 for the activation's backward; the product is MLP-out's fp8 input
    assert bf16["mlp_intermediates"] - fp8["mlp_intermediates"] == T * M.d_ff
    # FlashAttention keeps its bf16 output; the projection saves an fp8 copy of it besides
    assert fp8["attn_out_input"] - bf16["attn_out_input"] == T * M.n_heads * M.d_head
    for k in ("norm_inputs", "qkv", "attn_core"):
        assert fp8[k] == bf16[k]


def test_without_flash_attention_the_projection_input_is_only_the_fp8_copy():
    bf16, fp8 = _terms(None, flash_attention=False), _terms(1.0, flash_attention=False)
    assert fp8["attn_out_input"] == pytest.approx(bf16["attn_out_input"] / 2)


def test_the_convention_acts_only_under_the_fp8_recipe():
    on = MemoryConventions(fp8_saves_quantized_linear_inputs=True)
    assert linear_input_bytes("fp8", 2.0, on) == 1.0
    assert linear_input_bytes("bf16", 2.0, on) == 2.0
    assert linear_input_bytes("fp8", 2.0, MemoryConventions()) == 2.0


def _plan(precision: str, framework: str, **memory):
    conv = dataclasses.replace(get_framework(framework).memory, **memory)
    return plan(M, get_cluster("h100-sxm", 8), TrainSpec(seq_len=8192, global_batch=64, precision=precision),
                Layout(tp=1, zero=1, recompute="none"), framework=framework, memory_conventions=conv)


def test_nemo_fp8_plans_save_less_and_record_the_convention_bf16_plans_keep_their_hashes():
    fp8, off = _plan("fp8", "nemo"), _plan("fp8", "nemo", fp8_saves_quantized_linear_inputs=False)
    saved = off.memory.activations_bytes - fp8.memory.activations_bytes
    assert saved == pytest.approx(8192 * (2 * M.d_model + M.d_ff - M.n_heads * M.d_head) * M.n_layers)
    assert fp8.options["memory_conventions"]["fp8_saves_quantized_linear_inputs"] is True
    assert "fp8_saves_quantized_linear_inputs" not in off.options["memory_conventions"]
    bf16, bf16_off = _plan("bf16", "nemo"), _plan("bf16", "nemo", fp8_saves_quantized_linear_inputs=False)
    assert "fp8_saves_quantized_linear_inputs" not in bf16.options["memory_conventions"]
    assert bf16.config_hash == bf16_off.config_hash
    assert bf16.memory.total_bytes == bf16_off.memory.total_bytes


@pytest.mark.parametrize("framework", ["nemo", "megatron"])
def test_transformer_engine_profiles_cache_the_fp8_weight_and_its_transpose(framework):
    """TE v1.8 casts each weight into an fp8 workspace with its transpose, cached across micro-batches: 2 bytes per
    parameter beside the bf16 weight, where the planner's recipe default is 1."""
    two, one = _plan("fp8", framework), _plan("fp8", framework, fp8_weight_copy_bytes=1.0)
    none = _plan("fp8", framework, fp8_weight_copy_bytes=0.0)
    assert get_framework(framework).memory.fp8_weight_copy_bytes == 2.0
    per_byte = one.memory.weights_bytes - none.memory.weights_bytes
    assert per_byte > 0.8 * M.n_params().non_embedding
    assert two.memory.weights_bytes - one.memory.weights_bytes == pytest.approx(per_byte)
