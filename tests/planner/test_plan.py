"""Plan results against published figures (Korthikanti Table 5, Narayanan Table 2, DeepSeek-V3), the
layout checks and bad input. Sources and tolerances live in tests/assets/planner_step_time_published.json."""

from __future__ import annotations

import json
import math

import pytest

from scalelab import get_cluster, get_model
from scalelab.arch.spec import ModelSpec
from scalelab.errors import ConfigError
from scalelab.planner import FlopConventions, Layout, Plan, TrainSpec, check_layout, plan
from scalelab.units import GiB


@pytest.fixture(scope="module")
def published():
    from pathlib import Path

    return json.loads((Path(__file__).resolve().parents[1] / "assets" / "planner_step_time_published.json").read_text())


def gpt(case: dict, vocab: int = 51200, seq: int = 2048) -> ModelSpec:
    """A Megatron GPT of the papers' Table 3 shapes (GELU 4h MLP, learned positions, V = 51200)."""
    return ModelSpec(name=f"gpt-{case['name']}", n_layers=case["n_layers"], d_model=case["d_model"],
                     n_heads=case["n_heads"], d_ff=4 * case["d_model"], vocab_size=vocab, seq_len=seq,
                     ffn_kind="gelu", norm_kind="layernorm", position_kind="learned", tied_embeddings=True,
                     attn_bias="all", mlp_bias=True)


# ---- acceptance 3: Korthikanti et al. 2022 Table 5 ------------------------------------------------------
@pytest.mark.parametrize("i", range(4), ids=["22B", "175B", "530B", "1T"])
def test_korthikanti_table5_mfu_hfu_from_measured_time(published, i):
    """MFU and HFU from the measured iteration times (Korthikanti et al. 2022, Table 5), to 0.3 points."""
    tab = published["korthikanti_table5"]
    c = tab["cases"][i]
    model = gpt(c)
    cluster = get_cluster(published["gpu"], c["n_gpus"])
    train = TrainSpec(seq_len=published["seq_len"], global_batch=c["global_batch"])
    layout = Layout(tp=c["tp"], pp=c["pp"], interleave=c["interleave"], micro_batch=c["micro_batch"],
                    sequence_parallel=True, recompute="selective", flash_attention=False)
    # MFU: Megatron's 72-formula (exact count, causal not halved, logits counted).
    p = plan(model, cluster, train, layout, measured_step_time_s=c["iteration_s"])
    assert p.feasible, p.reasons
    assert p.mfu * 100 == pytest.approx(c["mfu_pct"], abs=tab["tolerance_points"])
    # HFU: the paper's s/3h attention term = three attention-core passes recomputed.
    ph = plan(model, cluster, train, layout, measured_step_time_s=c["iteration_s"],
              conventions=FlopConventions(selective_recompute_passes=3))
    assert ph.hfu * 100 == pytest.approx(c["hfu_pct"], abs=tab["tolerance_points"])
    assert ph.mfu == pytest.approx(p.mfu)  # recompute never enters MFU


# ---- acceptance 4: Narayanan et al. 2021 Table 2 -------------------------------------------------------
@pytest.mark.parametrize("i", range(6))
def test_narayanan_table2_days_from_tflops(published, i):
    """Days for 300B tokens from the published TFLOP/s per GPU (Narayanan et al. 2021, Table 2), within 1 day."""
    tab = published["narayanan_table2"]
    c = tab["cases"][i]
    p = plan(gpt(c), get_cluster(published["gpu"], c["n_gpus"]),
             TrainSpec(seq_len=published["seq_len"], global_batch=c["global_batch"], total_tokens=tab["total_tokens"]),
             Layout(tp=c["tp"], pp=c["pp"], recompute="full", flash_attention=False),
             measured_tflops_per_gpu=c["tflops_per_gpu"])
    assert p.feasible, p.reasons
    assert p.training_days == pytest.approx(c["days"], abs=tab["tolerance_days"])
    assert p.gpu_hours == pytest.approx(p.training_days * 24 * c["n_gpus"])


# ---- acceptance 8: DeepSeek-V3 on 2048 H800 --------------------------------------------------------------
def test_deepseek_v3_pp16_ep64_fits_and_pure_dp_does_not():
    """DeepSeek-V3 report (arXiv:2412.19437) section 3.2: 2048 H800, PP16 x EP64 x ZeRO-1, no TP, FP8, and
    no full recompute: its own save policy (sec. 3.2.3: RMSNorm and MLA up-projections recomputed, MoE
    activations cached in FP8, bf16 AdamW moments), which the ``deepseek-v3`` framework profile sets.

    Assumed: 4K sequences, 14,336 sequences per step (their 15,360 rounded to a multiple of 2048 so pure DP
    divides it), micro-batch 1. Megatron's attention-only selective recompute does not fit: the policy is
    what makes the published layout run."""
    model = get_model("deepseek-v3")
    cluster = get_cluster("h800", 2048)
    train = TrainSpec(seq_len=4096, global_batch=14336, precision="fp8")
    good = plan(model, cluster, train, Layout(pp=16, ep=64, zero=1, recompute="selective"), framework="deepseek-v3")
    assert good.feasible, good.reasons
    assert good.layout.recompute == "deepseek-v3" and not good.layout.save_policy.full
    assert good.layout.dp == 128 and good.layout.tp == 1
    assert good.memory.total_bytes < 80e9
    attn_only = plan(model, cluster, train, Layout(pp=16, ep=64, zero=1, recompute="selective"))
    assert not attn_only.feasible and attn_only.reasons[0].startswith("out of memory")
    bad = plan(model, cluster, train, Layout(zero=1, recompute="full"))
    assert not bad.feasible
    assert bad.layout.dp == 2048
    assert bad.reasons[0].startswith("out of memory by")
    # The 16-bit weights of 671B parameters alone exceed the GPU: the reason is the weights, not activations.
    assert bad.memory.weights_bytes > cluster.gpu.memory_bytes
    gib = float(bad.reasons[0].split()[4])
    assert gib == pytest.approx((bad.memory.total_bytes - cluster.gpu.usable_memory_bytes) / GiB, abs=0.05)


# ---- plan contents -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    model = get_model("llama-3.1-8b")
    cluster = get_cluster("h100-sxm", 64, price_per_gpu_hour=2.0)
    train = TrainSpec(seq_len=8192, global_batch=128, total_tokens=1e12)
    return model, cluster, train


def test_plan_json_has_the_documented_keys(small):
    p = plan(*small, Layout(tp=2, zero=1, sequence_parallel=True, recompute="selective"))
    d = p.to_dict()
    for k in ("feasible", "reasons", "layout", "memory_per_gpu_bytes", "flops_per_step", "step_time_s",
              "tokens_per_s", "mfu", "hfu", "training_days", "gpu_hours", "cost_usd", "energy_kwh",
              "conventions", "config_hash", "scalelab_version"):
        assert k in d
    assert set(d["memory_per_gpu_bytes"]) == {"weights", "gradients", "optimizer", "activations", "other", "total"}
    assert d["layout"]["dp"] == 32  # resolved
    assert d["memory_per_gpu_bytes"]["total"] == pytest.approx(sum(
        v for k, v in d["memory_per_gpu_bytes"].items() if k != "total"), rel=1e-9)
    json.dumps(d)  # plain JSON


def test_plan_derived_figures_are_consistent(small):
    model, cluster, train = small
    p = plan(model, cluster, train, Layout(tp=2, zero=1, sequence_parallel=True))
    assert p.feasible
    assert p.tokens_per_s == pytest.approx(train.global_batch_tokens / p.step_time_s)
    assert p.mfu == pytest.approx(p.flops_per_step / (p.step_time_s * 64 * cluster.gpu.peak("bf16")))
    assert p.hfu >= p.mfu
    steps = train.total_tokens / train.global_batch_tokens
    assert p.training_days == pytest.approx(steps * p.step_time_s / 86400)
    assert p.cost_usd == pytest.approx(p.gpu_hours * 2.0)
    assert p.energy_kwh == pytest.approx(p.gpu_hours * cluster.gpu.power_w / 1000)
    assert 0.2 < p.mfu < 0.7  # a sane H100 run; the exact value is pinned by the validation tests
    assert "MFU" in p.report() and p.layout.short() in p.report()


def test_config_hash_is_stable_and_sensitive(small):
    a = plan(*small, Layout(tp=2, zero=1))
    b = plan(*small, Layout(tp=2, zero=1))
    c = plan(*small, Layout(tp=4, zero=1))
    assert a.config_hash == b.config_hash != c.config_hash


def test_efficiency_override_scales_the_matmul_time(small):
    a = plan(*small, Layout(tp=2, zero=1), efficiency=0.3, attention_efficiency=0.2)
    b = plan(*small, Layout(tp=2, zero=1), efficiency=0.6, attention_efficiency=0.4)
    assert a.time.matmul_s == pytest.approx(2 * b.time.matmul_s)
    assert a.step_time_s > b.step_time_s
    # The device's FlashAttention efficiency (H100: FA2) makes attention slower than the GEMMs.
    c = plan(*small, Layout(tp=2, zero=1), efficiency=0.6)
    assert c.time.matmul_s > b.time.matmul_s


def test_measured_inputs_replace_the_model(small):
    p = plan(*small, Layout(tp=2, zero=1), measured_step_time_s=10.0)
    assert p.step_time_s == 10.0 and p.time.source == "measured_step_time"
    q = plan(*small, Layout(tp=2, zero=1), measured_tflops_per_gpu=400)
    assert q.hfu == pytest.approx(400e12 / q.cluster.gpu.peak("bf16"))


def test_out_of_memory_is_a_result_with_the_shortfall():
    model = get_model("llama-3.1-70b")
    cluster = get_cluster("h100-sxm", 8)
    p = plan(model, cluster, TrainSpec(seq_len=4096, global_batch=8), Layout(zero=0))
    assert not p.feasible
    assert p.reasons[0].startswith("out of memory by")
    assert math.isfinite(p.step_time_s)  # still timed, so a user sees what it would cost


# ---- check_layout: each reason ---------------------------------------------------------------------------------
@pytest.mark.parametrize("layout, needle", [
    (Layout(tp=3), "tp=3 does not divide n_heads=32"),
    (Layout(pp=64), "pp=64 exceeds n_layers=32"),
    (Layout(pp=1, interleave=2), "interleave=2 needs pp > 1"),
    (Layout(pp=8, interleave=3), "interleave=3 does not divide the layers per stage"),
    (Layout(cp=3), "cp=3 does not divide seq_len=8192"),
    (Layout(tp=2, pp=2, cp=2, dp=16), "more than the cluster's n_gpus=64"),
    (Layout(tp=2, dp=8), "does not use all n_gpus=64"),
    (Layout(tp=1, micro_batch=3), "not divisible by dp*micro_batch"),
    (Layout(sequence_parallel=True), "sequence parallelism needs tp > 1"),
    (Layout(zero=1, offload_params="cpu"), "offload_params='cpu' needs zero=3"),
    (Layout(ep=2), "has no experts"),
])
def test_check_layout_reasons(small, layout, needle):
    model, cluster, train = small
    reasons = check_layout(model, cluster, train, layout)
    assert any(needle in r for r in reasons), reasons
    p = plan(model, cluster, train, layout)
    assert not p.feasible and any(needle in r for r in p.reasons)


def test_check_layout_accepts_a_good_layout(small):
    assert check_layout(*small, Layout(tp=8, pp=2, zero=1, sequence_parallel=True)) == []


def test_moe_layout_reasons():
    model = get_model("mixtral-8x7b")
    cluster = get_cluster("h100-sxm", 64)
    train = TrainSpec(seq_len=4096, global_batch=256)
    assert any("ep=3 does not divide n_experts=8" in r for r in check_layout(model, cluster, train, Layout(ep=3)))
    assert any("etp*ep=32 does not divide tp*dp*cp=16" in r
               for r in check_layout(model, cluster, train, Layout(tp=8, pp=4, ep=4)))
    # Megatron-Core's expert grid folds EP over TP ranks with etp=1: ep=8 > dp*cp=4 is a layout
    assert check_layout(model, cluster, train, Layout(tp=2, pp=8, ep=8, etp=1, zero=1, sequence_parallel=True)) == []
    assert check_layout(model, cluster, train, Layout(tp=2, ep=8, zero=1, sequence_parallel=True)) == []


def test_kv_heads_rule():
    """GQA with 8 KV heads: tp=5 divides the 80 query heads but is neither a divisor nor a multiple of the
    KV heads; tp=16 replicates each KV head on two ranks (allowed)."""
    m = ModelSpec(n_layers=4, d_model=5120, n_heads=80, n_kv_heads=8, d_ff=8192, vocab_size=1000)
    cl = get_cluster("h100-sxm", 80)
    reasons = check_layout(m, cl, TrainSpec(seq_len=1024, global_batch=16), Layout(tp=5))
    assert any("n_kv_heads=8" in r for r in reasons)
    # tp=16 > 8 KV heads: each KV head is replicated on two ranks (Megatron allows it).
    assert not [r for r in check_layout(m, get_cluster("h100-sxm", 64), TrainSpec(seq_len=1024, global_batch=16),
                                        Layout(tp=16)) if "kv" in r]


# ---- bad values raise ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [
    {"efficiency": 0.0}, {"efficiency": 1.5}, {"efficiency": -0.2},
    {"measured_step_time_s": -1.0}, {"measured_step_time_s": 0.0}, {"measured_tflops_per_gpu": -5},
    {"measured_step_time_s": 1.0, "measured_tflops_per_gpu": 100},
    {"dp_overlap": 1.5}, {"memory_limit_bytes": -1}, {"mfu_peak_dtype": "fp4"},
    {"attention_efficiency": 0.0}, {"attention_efficiency": 2.0},
])
def test_bad_values_raise(small, kwargs):
    with pytest.raises(ConfigError):
        plan(*small, Layout(tp=2), **kwargs)


@pytest.mark.parametrize("tflops", [1e4, 2.8e294])
def test_measured_tflops_above_every_peak_is_refused(small, tflops):
    # 2.8e294 TFLOP/s made n_gpus * tflops * 1e12 overflow to inf, a step time of 0 and a division by zero
    # in tokens_per_s (found by the CLI's hypothesis test); 1e4 is a plain unit mistake
    with pytest.raises(ConfigError, match="highest dense peak"):
        plan(*small, Layout(tp=2), measured_tflops_per_gpu=tflops)


@pytest.mark.parametrize("field, value", [("tp", 0), ("pp", -1), ("micro_batch", 0), ("dp", 0)])
def test_non_positive_degrees_are_rejected_by_the_spec(field, value):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Layout(**{field: value})


def test_plan_is_typed():
    assert isinstance(plan(get_model("llama-3.1-8b"), get_cluster("h100-sxm", 8),
                           TrainSpec(seq_len=2048, global_batch=8), Layout(zero=3)), Plan)
