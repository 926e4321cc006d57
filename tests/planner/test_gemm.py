"""The linear layers' GEMMs under a per-GEMM roofline (planner/gemm.py): narrow per-rank GEMMs are
memory-bound, fp8 ones at about twice the width of bf16 ones, MoE experts at their routed shapes, and the
search's bounds stay below the model."""

from __future__ import annotations

import itertools
import math

import pytest

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.planner.flops import flops_per_step, matmul_params_per_layer
from scalelab.planner.gemm import GemmShape, expert_gemm_shapes, gemm_roofline_factor, layer_linears, linear_gemm_shapes
from scalelab.planner.step_time import (
    HBM_EFFICIENCY,
    compute_terms,
    group_step_time_lower_bound,
    lm_head_flops,
    step_time_lower_bound,
)

H100 = get_cluster("h100-sxm", 8).gpu
BF16 = dict(flops_per_s=H100.matmul_efficiency * H100.peak("bf16"),
            bytes_per_s=HBM_EFFICIENCY * H100.memory_bandwidth_bytes_per_s, input_bytes=2.0, output_bytes=2.0)
FP8 = dict(BF16, flops_per_s=H100.matmul_efficiency * H100.peak("fp8"), input_bytes=1.0)


@pytest.mark.parametrize("k, n", [(4096, 128), (8192, 128), (4096, 64), (1024, 256)])
def test_bf16_factor_is_the_intensity_ratio_for_unbounded_tokens(k, n):
    """With M -> infinity every one of a linear's three bf16 GEMMs moves 2 (K + N) bytes per token for
    2 K N FLOPs, so the factor is the ridge point over that intensity, or 1 above it."""
    ridge = BF16["flops_per_s"] / BF16["bytes_per_s"]
    intensity = 2.0 * k * n / (2.0 * (k + n))
    expected = max(1.0, ridge / intensity)
    assert gemm_roofline_factor([GemmShape(k, n, 1)], math.inf, **BF16) == pytest.approx(expected, rel=1e-12)
    assert expected > 1.0  # these shapes are below the H100's bf16 ridge point


def test_wide_gemms_keep_the_device_efficiency():
    """Llama 3.1 8B and 70B without TP: every linear is far above the ridge point, in bf16 and fp8."""
    for name in ("llama-3.1-8b", "llama-3.1-70b"):
        shapes, other = linear_gemm_shapes(get_model(name), Layout())
        assert other == 0.0
        for rate in (BF16, FP8):
            assert gemm_roofline_factor(shapes, 16384, **rate) == pytest.approx(1.0, abs=1e-12), name


def test_fp8_turns_memory_bound_at_wider_gemms_than_bf16():
    """K = 4096, N = 384: compute-bound in bf16, but fp8's input gradient
    (1-byte inputs, a bf16 output of width K) is below fp8's twice-as-high ridge point."""
    assert gemm_roofline_factor([GemmShape(4096, 384, 1)], 98304, **BF16) == 1.0
    assert gemm_roofline_factor([GemmShape(4096, 384, 1)], 98304, **FP8) > 1.05


def test_factor_falls_with_tokens_and_the_bound_takes_the_least():
    """Weight reads are per GEMM, so fewer tokens mean less intensity: the factor falls as M grows and
    M -> infinity gives the least of all (what the search's bounds use)."""
    shapes, _ = linear_gemm_shapes(get_model("llama-3.1-8b"), Layout(tp=8), separate_qkv=True)
    f = [gemm_roofline_factor(shapes, m, **BF16) for m in (256, 2048, 8192, 98304, math.inf)]
    assert all(a > b for a, b in itertools.pairwise(f)), f
    assert f[-1] > 1.0


def test_mla_is_left_at_the_device_efficiency_and_experts_are_enumerated():
    """DeepSeek-V3 has MLA and MoE layers: its MLA projections are ``other``; its dense layers' MLPs, routed
    experts (at their share of the tokens) and shared expert are GEMM shapes."""
    m = get_model("deepseek-v3")
    shapes, other = linear_gemm_shapes(m, Layout(ep=8))
    assert other == pytest.approx(2.0 * matmul_params_per_layer(m)["attention"] * m.n_layers)
    dense = [s for s in shapes if s.gemms == m.n_dense_mlp_layers]
    assert [(s.k, s.n) for s in dense[:3]] == [(m.d_model, m.d_ff)] * 2 + [(m.d_ff, m.d_model)]
    routed = [s for s in shapes if s.tokens != 1.0]
    assert len(routed) == 3 and all(s.gemms == m.n_moe_layers * 256 / 8 for s in routed)


@pytest.mark.parametrize("name, lay", [
    ("deepseek-v3", Layout(ep=64)),
    ("deepseek-v3", Layout(tp=2, etp=1, ep=64, sequence_parallel=True)),
    ("qwen3-30b-a3b", Layout(ep=8)),
    ("mixtral-8x7b", Layout(tp=4, ep=8, etp=2, sequence_parallel=True)),
])
def test_expert_shapes_carry_the_expert_flops_of_a_rank(name, lay):
    """Summed over a rank's expert GEMMs, FLOPs per token of the micro-batch equal the MoE layers' active
    expert FLOPs (flops.py) over tp, whatever ep and etp: the routed-token share and the local experts
    count balance, and expert TP moves work between ranks without changing each rank's share."""
    m = get_model(name)
    got = sum(2.0 * s.k * s.n * s.gemms * s.tokens for s in expert_gemm_shapes(m, lay))
    assert got == pytest.approx(2.0 * matmul_params_per_layer(m)["moe_active"] * m.n_moe_layers / lay.tp, rel=1e-12)


def test_routed_experts_see_top_k_over_experts_of_the_ep_groups_tokens():
    """Qwen3 30B-A3B (128 experts, top 8): ep=8 gives each local expert 8 x 8 / 128 = 1/2 of a rank's tokens;
    expert TP 2 under TP 2 with sequence parallelism gathers the same count (tp halves a rank's tokens, etp
    gathers them back); ep=1 gives 1/16."""
    m = get_model("qwen3-30b-a3b")
    share = {s.tokens for s in expert_gemm_shapes(m, Layout(ep=8))}
    assert share == {0.5}
    assert {s.tokens for s in expert_gemm_shapes(m, Layout(tp=2, ep=8, sequence_parallel=True))} == {0.5}
    assert {s.tokens for s in expert_gemm_shapes(m, Layout(tp=2, etp=1, ep=8, sequence_parallel=True))} == {0.25}
    assert {s.tokens for s in expert_gemm_shapes(m, Layout())} == {1 / 16}


def test_few_tokens_per_expert_are_slower_per_flop():
    """A MoE layer whose experts each see few tokens (Qwen3 30B-A3B without EP, micro-batch of one 4,096-token
    sequence: 256 rows per expert) reads each expert's weights for few rows and is memory-bound in bf16 on an
    H100: its matmul time per FLOP is above that with EP8 (2,048 rows per expert), which keeps the device
    efficiency. With the shape ignored (every expert at the micro-batch's M) the two would be equal."""
    model, cluster = get_model("qwen3-30b-a3b"), get_cluster("h100-sxm", 8)
    train = TrainSpec(seq_len=4096, global_batch=64)
    hw = flops_per_step(model, train, recompute="none").hardware
    mm = {ep: compute_terms(model, cluster, train, Layout(dp=8, ep=ep), dp=8, hardware_flops=hw)[0] for ep in (1, 8)}
    assert mm[1] > 1.03 * mm[8]
    lay = Layout(dp=8, ep=8)
    shapes, other = linear_gemm_shapes(model, lay)
    assert gemm_roofline_factor(shapes, 4096, **BF16, other_flops=other) == pytest.approx(1.0, abs=1e-12)
    # more tokens per micro-batch: more rows per expert, less time per FLOP
    big = Layout(dp=8, ep=1, micro_batch=8)
    mm_big = compute_terms(model, cluster, train, big, dp=8, hardware_flops=hw)[0]
    assert mm_big < mm[1]


@pytest.mark.parametrize("name", ["llama-3.1-8b", "llama-3.1-70b", "gpt3-175b", "falcon-180b"])
@pytest.mark.parametrize("separate_qkv", [False, True])
def test_dense_models_enumerate_their_layer_linears_only(name, separate_qkv):
    """A dense model has no expert GEMMs: its shapes are one layer's linears (layer_linears) on every layer,
    at the micro-batch's M, so the roofline of a dense model is what it was before experts were enumerated."""
    m = get_model(name)
    lay = Layout(tp=8, sequence_parallel=True)
    shapes, other = linear_gemm_shapes(m, lay, separate_qkv=separate_qkv)
    qkv, wo, up, down = layer_linears(m, 8, separate_qkv=separate_qkv)
    assert expert_gemm_shapes(m, lay) == [] and other == 0.0
    assert shapes == [GemmShape(k, n, m.n_layers) for k, n in qkv + wo + up + down]


def _linear_s_at_device_efficiency(model, cluster, train, hw):
    head = lm_head_flops(model, train)
    rate = cluster.gpu.matmul_efficiency * cluster.gpu.peak("bf16") * cluster.n_gpus
    return (hw - head) / rate + head / rate


def test_narrow_tp_shards_slow_the_linear_layers():
    """Llama 3.1 8B at TP8 with separate q, k, v GEMMs (torchtitan; N = 128 for wk and wv): matmul time above
    FLOPs at the device efficiency; fused into one GEMM (Megatron-LM, N = 768), or at TP1, equal to it."""
    model, cluster = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 8)
    train = TrainSpec(seq_len=8192, global_batch=8)
    hw = flops_per_step(model, train, recompute="none").hardware
    at_eff = _linear_s_at_device_efficiency(model, cluster, train, hw)
    mm1, _, _ = compute_terms(model, cluster, train, Layout(dp=8), dp=8, hardware_flops=hw)
    tp8 = Layout(tp=8, sequence_parallel=True)
    mm8, _, _ = compute_terms(model, cluster, train, tp8, dp=1, hardware_flops=hw, separate_qkv=True)
    fused8, _, _ = compute_terms(model, cluster, train, tp8, dp=1, hardware_flops=hw)
    assert mm1 == pytest.approx(at_eff, rel=1e-9)
    assert fused8 == pytest.approx(at_eff, rel=1e-9)
    assert mm8 > 1.03 * at_eff


@pytest.mark.parametrize("micro_batch", [1, 12])
def test_bound_stays_below_the_step_time_at_tp8(micro_batch):
    """The search's per-layout bound (M -> infinity in the roofline) stays below plan()'s step time for
    small and large micro-batches."""
    model, cluster = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 64)
    train = TrainSpec(seq_len=8192, global_batch=96)
    lay = Layout(dp=8, tp=8, zero=3, sequence_parallel=True, micro_batch=micro_batch, recompute="full")
    p = plan(model, cluster, train, lay, framework="torchtitan-compile", memory_limit_bytes=1e15)
    f = flops_per_step(model, train, recompute="full")
    lb = step_time_lower_bound(model, cluster, train, lay, dp=8, hardware_flops=f.hardware, separate_qkv=True)
    assert lb <= p.step_time_s


def test_group_bound_stays_below_each_member_with_separate_qkv():
    """The search's group bound (cheapest policy, M -> infinity) stays below the per-layout bound of every
    micro-batch and save policy it stands for, with torchtitan's three q, k, v GEMMs at TP8, bf16 and fp8."""
    model, cluster = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 64)
    for precision in ("bf16", "fp8"):
        train = TrainSpec(seq_len=8192, global_batch=96, precision=precision)
        base = Layout(dp=8, tp=8, zero=3, sequence_parallel=True)
        opts = []
        for rc in ("full", "selective"):
            f = flops_per_step(model, train, recompute=rc)
            opts.append((rc, f.hardware, 0.0))
        g = group_step_time_lower_bound(model, cluster, train, base, dp=8, options=opts, micro_batches=[1, 2, 12],
                                        interleaves=[1], separate_qkv=True)
        for (rc, hw, _), mb in ((o, mb) for o in opts for mb in (1, 2, 12)):
            lay = base.model_copy(update={"recompute": rc, "micro_batch": mb})
            lb = step_time_lower_bound(model, cluster, train, lay, dp=8, hardware_flops=hw, separate_qkv=True)
            assert g <= lb * (1 + 1e-9), (precision, rc, mb, g, lb)


def test_plans_record_separate_qkv():
    """A plan says when it timed q, k, v as three GEMMs (torchtitan), and says nothing for Megatron's fused one."""
    model, cluster = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 8)
    train = TrainSpec(seq_len=8192, global_batch=8)
    lay = Layout(dp=8, zero=3)
    assert plan(model, cluster, train, lay, framework="torchtitan").options["separate_qkv"] is True
    assert "separate_qkv" not in plan(model, cluster, train, lay, framework="megatron").options
