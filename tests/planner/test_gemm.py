"""The linear layers' GEMMs under a per-GEMM roofline (planner/gemm.py): narrow per-rank GEMMs are
memory-bound, fp8 ones at about twice the width of bf16 ones, and the search's bounds stay below the model."""

from __future__ import annotations

import itertools
import math

import pytest

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.planner.flops import flops_per_step
from scalelab.planner.gemm import gemm_roofline_factor, linear_gemm_shapes
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
    assert gemm_roofline_factor([(k, n, 1)], math.inf, **BF16) == pytest.approx(expected, rel=1e-12)
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
    assert gemm_roofline_factor([(4096, 384, 1)], 98304, **BF16) == 1.0
    assert gemm_roofline_factor([(4096, 384, 1)], 98304, **FP8) > 1.05


def test_factor_falls_with_tokens_and_the_bound_takes_the_least():
    """Weight reads are per GEMM, so fewer tokens mean less intensity: the factor falls as M grows and
    M -> infinity gives the least of all (what the search's bounds use)."""
    shapes, _ = linear_gemm_shapes(get_model("llama-3.1-8b"), Layout(tp=8), separate_qkv=True)
    f = [gemm_roofline_factor(shapes, m, **BF16) for m in (256, 2048, 8192, 98304, math.inf)]
    assert all(a > b for a, b in itertools.pairwise(f)), f
    assert f[-1] > 1.0


def test_moe_experts_and_mla_are_left_at_the_device_efficiency():
    """DeepSeek-V3 has MLA and MoE layers: only its dense layers' MLPs are enumerated, the rest is ``other``."""
    m = get_model("deepseek-v3")
    shapes, other = linear_gemm_shapes(m, Layout())
    assert other > 0
    assert sum(layers for _, _, layers in shapes) == 3 * m.n_dense_mlp_layers


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
