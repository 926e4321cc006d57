"""MoE token permutations (``moe_permute_bytes_per_token_layer``; ``FrameworkProfile.moe_fused_dispatch``): the
four permutation kernels Megatron-Core's alltoall dispatcher runs around the expert all-to-alls are charged as
memory-bound time, per routed copy, on MoE layers only; a profile whose dispatch kernels place the tokens
(deepseek-v3) charges none."""

from __future__ import annotations

import dataclasses

import pytest

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.planner.frameworks import get_framework
from scalelab.planner.step_time import HBM_EFFICIENCY, moe_permute_bytes_per_token_layer

MOE = get_model("qwen3-30b-a3b")
TRAIN = TrainSpec(seq_len=4096, global_batch=64)
LAYOUT = Layout(ep=8, micro_batch=1, recompute="none")


def test_bytes_follow_the_routed_copies_a_rank_holds():
    m = MOE.moe
    h, k = MOE.d_model, m.top_k
    one = moe_permute_bytes_per_token_layer(MOE, Layout(ep=8), "bf16")
    assert one == pytest.approx(2 * (k + k) * 2 * h * 2)  # before and after the dispatch, read + write, bf16
    # tp splits the rank's tokens (sequence parallelism); expert TP (default: tp) multiplies the rows after the
    # dispatch
    assert moe_permute_bytes_per_token_layer(MOE, Layout(tp=2, ep=8, etp=1, sequence_parallel=True), "bf16") == \
        pytest.approx(one / 2)
    two = moe_permute_bytes_per_token_layer(MOE, Layout(tp=2, ep=8, sequence_parallel=True), "bf16")
    assert two == pytest.approx(2 * (k / 2 + k) * 2 * h * 2)
    # one expert per rank: nothing to regroup after the dispatch
    assert moe_permute_bytes_per_token_layer(MOE, Layout(ep=m.n_experts), "bf16") == pytest.approx(one / 2)
    assert moe_permute_bytes_per_token_layer(get_model("llama-3.1-8b"), Layout(), "bf16") == 0.0


def test_megatron_charges_the_permutations_and_deepseek_v3_does_not():
    cluster = get_cluster("h100-sxm", 8)
    meg = plan(MOE, cluster, TRAIN, LAYOUT, framework="megatron")
    fused = plan(MOE, cluster, TRAIN, LAYOUT, framework=dataclasses.replace(get_framework("megatron"),
                                                                              moe_fused_dispatch=True))
    # tokens per GPU x MoE layers x bytes, forward and backward, at the planner's HBM rate
    extra = meg.time.elementwise_s - fused.time.elementwise_s
    tokens = TRAIN.global_batch_tokens / meg.layout.dp
    per_pass = moe_permute_bytes_per_token_layer(MOE, meg.layout, "bf16") * tokens * MOE.n_moe_layers
    assert extra > 0
    assert extra == pytest.approx(2 * per_pass / (cluster.gpu.memory_bandwidth_bytes_per_s * HBM_EFFICIENCY), rel=1e-6)
    assert meg.step_time_s > fused.step_time_s
    assert get_framework("deepseek-v3").moe_fused_dispatch and not get_framework("nemo").moe_fused_dispatch
    # full recompute reruns the forward permutations: a third pass
    full = Layout(ep=8, micro_batch=1, recompute="full")
    a = plan(MOE, cluster, TRAIN, full, framework="megatron")
    b = plan(MOE, cluster, TRAIN, full, framework=dataclasses.replace(get_framework("megatron"),
                                                                      moe_fused_dispatch=True))
    assert a.time.elementwise_s - b.time.elementwise_s == pytest.approx(1.5 * extra, rel=0.02)


def test_dense_models_do_not_move():
    m = get_model("llama-3.1-8b")
    cluster = get_cluster("h100-sxm", 8)
    a = plan(m, cluster, TRAIN, Layout(), framework="megatron")
    b = plan(m, cluster, TRAIN, Layout(), framework=dataclasses.replace(get_framework("megatron"),
                                                                        moe_fused_dispatch=True))
    assert a.step_time_s == b.step_time_s
