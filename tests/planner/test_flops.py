"""FLOP counts: published formulas and figures reproduced under their conventions, plus properties."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalelab.arch.spec import MLASpec, ModelSpec, MoESpec
from scalelab.errors import ConfigError
from scalelab.planner import FlopConventions, LoRASpec, TrainSpec, flops_per_step, flops_per_token
from scalelab.units import SECONDS_PER_DAY

GPT3 = ModelSpec(name="gpt-3-175b", n_layers=96, d_model=12288, n_heads=96, d_ff=49152, vocab_size=51200,
                 ffn_kind="gelu", norm_kind="layernorm", position_kind="learned", tied_embeddings=True)


def _gpt(L, h, a, V=51200, s=2048):
    return ModelSpec(n_layers=L, d_model=h, n_heads=a, d_ff=4 * h, vocab_size=V, seq_len=s, ffn_kind="gelu",
                     norm_kind="layernorm", position_kind="learned", tied_embeddings=True)


@pytest.fixture(scope="module")
def published(assets):
    return json.loads((assets / "planner_flops_published.json").read_text())


def test_megatron_formulas_exact():
    """Narayanan et al. 2021 §3.2: model FLOPs 72 B s L h^2 (1 + s/6h + V/12Lh) and, with full
    recomputation, 96 B s L h^2 (1 + s/6h + V/16Lh); Korthikanti et al. 2022 App. A: HFU with
    selective recompute 72 B s L h^2 (1 + s/3h + V/12Lh)."""
    L, h, V, s, B = 96, 12288, 51200, 2048, 1536
    train = TrainSpec(seq_len=s, global_batch=B)
    model = flops_per_step(GPT3, train).model
    assert model == pytest.approx(72 * B * s * L * h**2 * (1 + s / (6 * h) + V / (12 * L * h)), rel=1e-12)
    full = flops_per_step(GPT3, train, recompute="full").hardware
    assert full == pytest.approx(96 * B * s * L * h**2 * (1 + s / (6 * h) + V / (16 * L * h)), rel=1e-12)
    kort = FlopConventions(selective_recompute_passes=3)
    sel = flops_per_step(GPT3, train, recompute="selective", conventions=kort).hardware
    assert sel == pytest.approx(72 * B * s * L * h**2 * (1 + s / (3 * h) + V / (12 * L * h)), rel=1e-12)


def test_narayanan_table2_training_days(published):
    """Narayanan Table 2: days for 300B tokens from TFLOP/s per GPU, within a day."""
    d = published["narayanan_table2"]
    for c in d["cases"]:
        shape = d["models"][c["model"]]
        m = _gpt(shape["n_layers"], shape["d_model"], shape["n_heads"], d["vocab_size"], d["seq_len"])
        per_tok = flops_per_token(m, d["seq_len"], recompute="full").hardware
        days = d["tokens"] * per_tok / (c["n_gpus"] * c["tflops_per_gpu"] * 1e12) / SECONDS_PER_DAY
        assert days == pytest.approx(c["days"], abs=d["tolerance_days"]), c


def test_korthikanti_table5_mfu_hfu(published):
    """Korthikanti Table 5: MFU and HFU from the measured iteration times, to 0.3 points."""
    d = published["korthikanti_table5"]
    conv = FlopConventions(selective_recompute_passes=3)
    for c in d["cases"]:
        m = _gpt(c["n_layers"], c["d_model"], c["n_heads"], d["vocab_size"], d["seq_len"])
        f = flops_per_step(m, TrainSpec(seq_len=d["seq_len"], global_batch=c["global_batch"]),
                           recompute="selective", conventions=conv)
        denom = c["time_s"] * c["n_gpus"] * d["peak_flops_per_s"]
        assert 100 * f.model / denom == pytest.approx(c["mfu"], abs=d["tolerance_points"]), c["name"]
        assert 100 * f.hardware / denom == pytest.approx(c["hfu"], abs=d["tolerance_points"]), c["name"]


def test_llama3_405b_budget_6n(published):
    """Llama 3 §3.2.1: 405B parameters x 15.6T tokens = 3.8e25 FLOPs with 6 N D (N total)."""
    d = published["llama3_405b"]
    m = ModelSpec(name="llama-3.1-405b", n_layers=126, d_model=16384, n_heads=128, n_kv_heads=8, d_ff=53248,
                  vocab_size=128256)
    conv = FlopConventions(method="6N", count_logits=True, count_embedding=True)
    f = flops_per_token(m, 8192, conventions=conv)
    assert f.model == pytest.approx(6 * m.n_params().total, rel=1e-12)
    assert f.model * d["tokens"] == pytest.approx(d["flops"], rel=d["tolerance_rel"])


def test_6n_and_exact_agree_for_large_dense_model():
    """For GPT-3 at s = 2048 the attention scores add s/6h = 2.8%: 6N and exact agree within 3%."""
    exact = flops_per_token(GPT3, 2048).model
    six = flops_per_token(GPT3, 2048, conventions=FlopConventions(method="6N")).model
    assert six < exact
    assert exact / six == pytest.approx(1.0, abs=0.03)
    assert exact / six - 1 == pytest.approx(2048 / (6 * 12288), rel=0.05)


def test_causal_halving_halves_score_term_only():
    full = flops_per_token(GPT3, 2048)
    half = flops_per_token(GPT3, 2048, conventions=FlopConventions(causal_halved=True))
    scores = dict(full.detail)["attention_scores"]
    assert scores == pytest.approx(96 * 2 * 2048 * 2 * 12288)
    assert full.forward - half.forward == pytest.approx(scores / 2)
    assert half.backward == pytest.approx(2 * half.forward)


def test_logits_and_embedding_switches():
    base = flops_per_token(GPT3, 2048, conventions=FlopConventions(count_logits=False))
    with_logits = flops_per_token(GPT3, 2048)
    with_emb = flops_per_token(GPT3, 2048, conventions=FlopConventions(count_embedding=True))
    assert with_logits.forward - base.forward == pytest.approx(2 * 12288 * 51200)
    assert with_emb.forward - with_logits.forward == pytest.approx(2 * 12288 * 51200)


def test_moe_counts_active_experts():
    """MoE layers cost the router, top-k routed experts and the shared experts (not all E)."""
    base = dict(n_layers=4, d_model=512, n_heads=8, d_ff=1024, vocab_size=1000)
    moe8 = ModelSpec(**base, moe=MoESpec(n_experts=8, top_k=2, d_expert=1024))
    moe64 = ModelSpec(**base, moe=MoESpec(n_experts=64, top_k=2, d_expert=1024))
    dense_k = ModelSpec(**{**base, "d_ff": 2 * 1024})  # one dense MLP as wide as the two active experts
    f8, f64, fd = (flops_per_token(m, 256) for m in (moe8, moe64, dense_k))
    router = lambda E: 4 * 2 * 512 * E  # noqa: E731  (4 layers, 2 h E each)
    assert f8.forward - router(8) == pytest.approx(fd.forward)
    assert f64.forward - f8.forward == pytest.approx(router(64) - router(8))
    # 6N uses the active count (Mixtral: 12.9B of 46.7B)
    mixtral = ModelSpec(n_layers=32, d_model=4096, n_heads=32, n_kv_heads=8, d_ff=14336, vocab_size=32000,
                        moe=MoESpec(n_experts=8, top_k=2, d_expert=14336))
    six = flops_per_token(mixtral, 4096, conventions=FlopConventions(method="6N", count_logits=False))
    assert six.model == pytest.approx(6 * mixtral.n_params().active_non_embedding)
    assert 12.8e9 < mixtral.n_params().active < 13.0e9


def test_shared_experts_and_mla():
    """DeepSeek-style layers: shared experts always run; MLA scores use d_nope + d_rope and d_v."""
    m = ModelSpec(n_layers=2, d_model=256, n_heads=4, d_ff=512, vocab_size=100,
                  mla=MLASpec(q_lora_rank=64, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8,
                              v_head_dim=16),
                  moe=MoESpec(n_experts=8, top_k=2, d_expert=64, n_shared_experts=1, n_dense_layers=1))
    f = dict(flops_per_token(m, 128).detail)
    assert f["attention_scores"] == pytest.approx(2 * 2 * 128 * 4 * (16 + 8 + 16))
    assert f["moe_experts"] == pytest.approx(2 * 1 * 3 * 256 * 64 * (2 + 1))
    # attention projection FLOPs are 2x the attention weights (MLA params minus its two latent norms)
    attn_params = m.n_params().per_layer_attention - 64 - 32
    assert f["attention_proj"] == pytest.approx(2 * 2 * attn_params)


def test_lora_flops_about_two_thirds_of_full():
    """LoRA freezes the base: no weight-gradient matmuls, so a step costs about 4N instead of 6N
    (Hu et al. 2021 report a ~25% speed-up; the FLOP count falls by about a third)."""
    full = flops_per_token(GPT3, 2048)
    lora = flops_per_token(GPT3, 2048, lora=LoRASpec(rank=4, target_modules=("q", "v")))
    assert lora.forward > full.forward
    assert lora.model / full.model == pytest.approx(2 / 3, abs=0.02)
    step = flops_per_step(GPT3, TrainSpec(seq_len=2048, global_batch=2, lora=LoRASpec(rank=4)))
    assert step.model == pytest.approx(4096 * flops_per_token(GPT3, 2048, lora=LoRASpec(rank=4)).model)


def test_per_step_scales_and_reports():
    t = TrainSpec(seq_len=1024, global_batch_tokens=1024 * 32)
    tok = flops_per_token(GPT3, 1024, recompute="full")
    step = flops_per_step(GPT3, t, recompute="full")
    assert step.per == "step" and tok.per == "token"
    assert step.hardware == pytest.approx(tok.hardware * 32 * 1024)
    assert step.hardware == pytest.approx(step.model + step.recompute)
    d = step.to_dict()
    assert d["conventions"]["method"] == "exact" and math.isclose(d["model_flops"], step.model)
    assert "FLOPs per step" in step.report()


@pytest.mark.parametrize("kwargs", [dict(recompute="partial"), dict(seq_len=0), dict(seq_len=-5),
                                    dict(seq_len=2.5)])
def test_bad_inputs(kwargs):
    args = {"seq_len": 2048, **kwargs}
    with pytest.raises(ConfigError):
        flops_per_token(GPT3, args.pop("seq_len"), **args)


def test_bad_conventions():
    with pytest.raises(ConfigError, match="method"):
        FlopConventions(method="7N")
    with pytest.raises(ConfigError):
        FlopConventions(selective_recompute_passes=-1)
    with pytest.raises(ConfigError, match="LoRA target"):
        flops_per_token(GPT3, 128, lora=LoRASpec(target_modules=("qkv",)))


@settings(max_examples=40, deadline=None)
@given(L=st.integers(1, 8), h_heads=st.sampled_from([(64, 4), (128, 8), (256, 4)]), kv=st.sampled_from([1, 2, 4]),
       s=st.integers(1, 4096), ffn=st.sampled_from(["gelu", "swiglu"]), halved=st.booleans())
def test_flop_properties(L, h_heads, kv, s, ffn, halved):
    h, a = h_heads
    m = ModelSpec(n_layers=L, d_model=h, n_heads=a, n_kv_heads=kv, d_ff=4 * h, vocab_size=500, ffn_kind=ffn)
    conv = FlopConventions(causal_halved=halved)
    none, sel, full = (flops_per_token(m, s, recompute=r, conventions=conv) for r in ("none", "selective", "full"))
    assert none.forward == pytest.approx(sum(v for _, v in none.detail))
    assert none.hardware == none.model == pytest.approx(3 * none.forward)
    assert none.hardware <= sel.hardware <= full.hardware
    assert full.recompute == pytest.approx(none.forward - dict(none.detail)["logits"])
    # layers add linearly: one more layer adds the same per-layer cost
    m2 = m.model_copy(update={"n_layers": L + 1})
    per_layer = flops_per_token(m2, s, conventions=conv).forward - none.forward
    assert per_layer * L == pytest.approx(none.forward - dict(none.detail)["logits"])
    # 6N never counts attention scores, so exact (no logits, matmul weights only) exceeds it by them
    six = flops_per_token(m, s, conventions=FlopConventions(method="6N", count_logits=False))
    exact = flops_per_token(m, s, conventions=FlopConventions(count_logits=False, causal_halved=halved))
    norms = m.n_params().norms
    assert exact.forward - (six.forward - 2 * norms) == pytest.approx(dict(exact.detail)["attention_scores"])
