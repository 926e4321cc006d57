"""FP8 training's step time: what torchao's Float8 costs besides GEMMs at the fp8 peak (casts, the fp8
GEMMs' efficiency, a bf16 LM head, fp8 TP all-gathers), and that the search's bounds stay below it."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from _published_runs import load, measured_tokens_per_s_per_gpu, run_plan  # benchmarks/ (conftest.py)

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.arch.spec import ModelSpec
from scalelab.planner.comm import CommBreakdown, comm_per_step
from scalelab.planner.flops import flops_per_step
from scalelab.planner.frameworks import get_framework
from scalelab.planner.plan import framework_options
from scalelab.planner.step_time import (
    FLOAT8_IDEAL,
    FLOAT8_TORCHAO_TENSORWISE,
    HBM_EFFICIENCY,
    Float8Recipe,
    StepTimeBound,
    attention_hardware_flops,
    compute_terms,
    float8_cast_bytes_per_token_layer,
    group_step_time_lower_bound,
    model_step_time,
)

RUNS = load()


def _compute_s(model: ModelSpec, precision: str, recipe: Float8Recipe = FLOAT8_TORCHAO_TENSORWISE,
               recompute: str = "none") -> float:
    """Matmul + elementwise seconds per step of ``model`` under FSDP on 8 H100 (8 x 8K-token sequences)."""
    train = TrainSpec(seq_len=8192, global_batch=8, precision=precision)
    lay = Layout(dp=8, zero=3, recompute=recompute)
    f = flops_per_step(model, train, recompute=recompute)
    mm, _, ew = compute_terms(model, get_cluster("h100-sxm", 8), train, lay, dp=8, hardware_flops=f.hardware,
                              attention_flops=attention_hardware_flops(f, recompute), efficiency=0.5,
                              attention_efficiency=0.5, float8=recipe)
    return mm + ew


def _wide(d_model: int) -> ModelSpec:
    """A Llama-shaped model of width ``d_model`` (SwiGLU at 3.5 h, GQA with 8 KV heads, 4 layers)."""
    return ModelSpec(name=f"w{d_model}", n_layers=4, d_model=d_model, n_heads=d_model // 128, n_kv_heads=8,
                     d_ff=int(3.5 * d_model), vocab_size=128256, ffn_kind="swiglu", norm_kind="rmsnorm",
                     position_kind="rope")


def test_fp8_speedup_over_bf16_is_smaller_for_a_narrow_model():
    """Casts scale with a linear's widths (K + N per token), its GEMM with K x N: a 4,096-wide model gains
    less from Float8 than a 16,384-wide one (torchao README: speed-ups grow with M, K, N)."""
    speedup = {h: _compute_s(_wide(h), "bf16") / _compute_s(_wide(h), "fp8") for h in (4096, 16384)}
    assert speedup[4096] < speedup[16384] - 0.05, speedup
    assert 1.0 < speedup[4096] < speedup[16384] < 2.0, speedup
    ideal = {h: _compute_s(_wide(h), "bf16") / _compute_s(_wide(h), "fp8", FLOAT8_IDEAL) for h in (4096, 16384)}
    assert ideal[4096] > speedup[4096] and ideal[16384] > speedup[16384]


def test_casts_count_as_elementwise_time_and_rerun_with_the_forward():
    """The casts are memory-bound time in ``elementwise_s``, at the HBM rate the other elementwise kernels
    get; full recompute casts every linear input twice, the output gradients once."""
    m, cl = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 8)
    train = TrainSpec(seq_len=8192, global_batch=8, precision="fp8")
    tokens_layers = train.global_batch_tokens / 8 * m.n_layers
    hbm = cl.gpu.memory_bandwidth_bytes_per_s * HBM_EFFICIENCY
    fwd, bwd = float8_cast_bytes_per_token_layer(m, Layout(dp=8, zero=3), 8192, dp=8)
    k = FLOAT8_TORCHAO_TENSORWISE.cast_time_factor
    for rc, n_fwd in (("none", 1), ("full", 2)):
        lay = Layout(dp=8, zero=3, recompute=rc)
        args = dict(dp=8, hardware_flops=1e17, efficiency=0.5)
        ew = compute_terms(m, cl, train, lay, float8=FLOAT8_TORCHAO_TENSORWISE, **args)[2]
        ew0 = compute_terms(m, cl, train, lay, float8=FLOAT8_IDEAL, **args)[2]
        assert ew - ew0 == pytest.approx((n_fwd * fwd + bwd) * k * tokens_layers / hbm, rel=1e-9), rc


def test_sequence_parallel_casts_replicated_widths_on_the_shard():
    """torchao's Float8 TP casts a sharded input before its all-gather: with SP every width is split over tp."""
    m = get_model("llama-3.1-70b")
    no_sp = float8_cast_bytes_per_token_layer(m, Layout(tp=8), 8192)
    sp = float8_cast_bytes_per_token_layer(m, Layout(tp=8, sequence_parallel=True), 8192)
    one = float8_cast_bytes_per_token_layer(m, Layout(), 8192)
    assert sp[1] == pytest.approx(one[1] / 8)
    assert sp[1] < no_sp[1] < one[1]


def test_ideal_recipe_runs_linears_at_twice_the_bf16_rate_and_the_default_does_not():
    """``FLOAT8_IDEAL`` is the planner without Float8's costs: linears (head included) at the fp8 peak."""
    m, c = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 8)
    kw = dict(comm=CommBreakdown(), dp=8, efficiency=0.5, attention_efficiency=0.5, hardware_flops=1e17,
              attention_flops=0.0)
    t16 = model_step_time(m, c, TrainSpec(seq_len=8192, global_batch=8), Layout(dp=8), **kw)
    fp8 = TrainSpec(seq_len=8192, global_batch=8, precision="fp8")
    ideal = model_step_time(m, c, fp8, Layout(dp=8), float8=FLOAT8_IDEAL, **kw)
    real = model_step_time(m, c, fp8, Layout(dp=8), **kw)
    assert ideal.matmul_s == pytest.approx(t16.matmul_s / 2, rel=1e-3)  # 1978.9 vs 2 x 989.4 TFLOP/s
    assert real.matmul_s > ideal.matmul_s * 1.02  # fp8 GEMMs at 0.98 of the bf16 efficiency, head in bf16
    assert real.elementwise_s > ideal.elementwise_s


def test_float8_constants_follow_from_their_sources():
    """The recipe's two measured constants, recomputed from the figures its docstring cites."""
    # FBGEMM pull request 2546, H100 500 W, TFLOP/s of bf16 vs row-scaled fp8 GEMMs (M, N, K)
    fbgemm = [(585.23, 1125.51), (575.12, 1082.75), (546.31, 1141.38)]
    ratios = [(f8 / 1979e0) / (b / 989e0) for b, f8 in fbgemm]
    assert FLOAT8_TORCHAO_TENSORWISE.gemm_efficiency_ratio == pytest.approx(sum(ratios) / 3, abs=0.005)
    # torchao README at eab345c, example 2: LN -> Linear -> Sigmoid, M, K, N = 4096, 8192, 16384, 1.39x
    M, K, N, speedup = 4096, 8192, 16384, 1.39
    hbm = 2.4e12 * HBM_EFFICIENCY  # Meta's H100 (torchao roofline: 2.4 TB/s)
    r = FLOAT8_TORCHAO_TENSORWISE
    gemm_bf16 = 3 * 2 * M * K * N / (0.6 * 989e12)
    gemm_fp8 = 3 * 2 * M * K * N / (0.6 * r.gemm_efficiency_ratio * 1979e12)
    norm_sigmoid = (10 * M * K + 8 * M * N) / hbm
    casts = (gemm_bf16 + norm_sigmoid) / speedup - gemm_fp8 - norm_sigmoid
    roofline = (r.activation_cast_bytes * (M * K + M * N) + r.weight_cast_bytes * K * N) / hbm
    assert r.cast_time_factor == pytest.approx(casts / roofline, abs=0.01)


@pytest.mark.parametrize("bad", [dict(activation_cast_bytes=-1.0), dict(gemm_efficiency_ratio=0.0),
                                 dict(cast_time_factor=float("nan"))])
def test_float8_recipe_rejects_bad_values(bad):
    from scalelab.errors import ConfigError

    with pytest.raises(ConfigError, match="Float8Recipe"):
        Float8Recipe(**bad)


def test_a_profile_carries_its_recipe_into_plan():
    """The recipe is a framework setting: replacing it in the profile changes plan()'s step time."""
    m, cl = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 8)
    train, lay = TrainSpec(seq_len=8192, global_batch=16, precision="fp8"), Layout(zero=3, micro_batch=2)
    prof = get_framework("torchtitan-compile")
    assert prof.float8 == FLOAT8_TORCHAO_TENSORWISE
    assert framework_options(prof, cl).float8 is prof.float8
    real = plan(m, cl, train, lay, framework=prof)
    ideal = plan(m, cl, train, lay, framework=dataclasses.replace(prof, float8=FLOAT8_IDEAL))
    assert ideal.step_time_s < real.step_time_s * 0.95


def test_fp8_tp_all_gathers_move_half_the_bytes():
    """torchao's Float8 TP gathers fp8 inputs and output gradients; the reduce-scatters stay bf16."""
    m, cl = get_model("llama-3.1-70b"), get_cluster("h100-sxm", 64)
    lay = Layout(tp=8, sequence_parallel=True)

    def tp(precision: str) -> dict[str, float]:
        cb = comm_per_step(m, cl, TrainSpec(seq_len=8192, global_batch=64, precision=precision), lay, dp=8)
        return {c.kind: c.traffic_bytes for c in cb.collectives if c.group == "tp"}

    b16, b8 = tp("bf16"), tp("fp8")
    assert b8["all_gather"] == pytest.approx(b16["all_gather"] / 2)
    assert b8["reduce_scatter"] == pytest.approx(b16["reduce_scatter"])


@pytest.mark.parametrize("tp,pp", [(1, 1), (2, 1), (8, 1), (4, 2)])
def test_fp8_bounds_stay_below_the_model(tp, pp):
    """The search's group bound and per-layout bound stay below plan()'s FP8 step time, casts included."""
    m, cl = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 64)
    train = TrainSpec(seq_len=8192, global_batch=256, precision="fp8")
    fw = framework_options("torchtitan-compile", cl)
    dp = cl.n_gpus // (tp * pp)
    base = Layout(dp=dp, tp=tp, pp=pp, sequence_parallel=tp > 1)
    opts = []
    for rc in ("none", "full", "torchtitan-op"):
        f = flops_per_step(m, train, recompute=rc)
        opts.append((rc, f.hardware, attention_hardware_flops(f, rc)))
    mbs, vs = [1, 2], [1, 2] if pp > 1 else [1]
    g = group_step_time_lower_bound(m, cl, train, base, dp=dp, options=opts, micro_batches=mbs, interleaves=vs,
                                    float8=fw.float8)
    for z in (1, 3):
        lay0 = base.model_copy(update={"zero": z, "recompute": "full",
                                       **get_framework("torchtitan-compile").layout_defaults(pp, z)})
        bound = StepTimeBound(m, cl, train, lay0, dp=dp, dp_comm=comm_per_step(m, cl, train, lay0, dp=dp),
                              float8=fw.float8)
        for (rc, hw, att), mb, v in itertools.product(opts, mbs, vs):
            lb = bound(rc, mb, v, hardware_flops=hw, attention_flops=att)
            assert g <= lb * (1 + 1e-9), (z, rc, mb, v)
            lay = lay0.model_copy(update={"recompute": rc, "micro_batch": mb, "interleave": v})
            p = plan(m, cl, train, lay, framework="torchtitan-compile", memory_limit_bytes=1e15)
            assert lb <= p.step_time_s * (1 + 1e-9), (z, rc, mb, v, lb, p.step_time_s)


FLOAT8_ROWS = ["torchtitan-8b-8-compile-float8", "torchtitan-8b-128-compile-float8", "torchtitan-70b-256",
               "torchtitan-405b-512-1f1b", "torchtitan-405b-512-interleaved"]


@pytest.mark.parametrize("rid", FLOAT8_ROWS)
def test_torchtitan_float8_rows_within_10_percent(rid):
    """torchtitan's compiled Float8 runs (docs/performance.md Tables 1, 3, 4, 5) from the profile alone."""
    run = next(r for r in RUNS["runs"] if r["id"] == rid)
    p = run_plan(run)
    err = measured_tokens_per_s_per_gpu(run, p) / (p.tokens_per_s / run["n_gpus"]) - 1
    assert abs(err) <= 0.10, f"{rid}: {err:+.1%}"
