"""Held-out published runs the planner was never tuned on (tests/assets/planner_held_out_gpu_hours.json), planned
by benchmarks/_gpu_hours.py as benchmarks/planner_validation.py plans them: Megatron-LM's H100 table with its
published layouts, the Llama model cards' GPU-hours by a default search, and DeepSeek-V2's GPU-hours per trillion
tokens with its published layout (the asset's deepseek_v2 group), and Falcon-180B's total GPU-hours with its published
layout (the asset's falcon_180b group). The bounds are a little above what
the code measured when the rows were added (stated beside each), so that a change that makes them worse fails."""

from __future__ import annotations

import statistics

import pytest
from _gpu_hours import (  # benchmarks/ (conftest.py)
    deepseek_v2_plan,
    deepseek_v2_shared_expert_overlap,
    falcon_plan,
    llama_n_gpus,
    llama_published_layout,
    llama_search,
    load,
    megatron_flops,
    megatron_plan,
    megatron_step_time_s,
)

from scalelab import get_model

DATA = load()
MLM = DATA["megatron_readme"]
LLAMA = DATA["llama_gpu_hours"]
DSV2 = DATA["deepseek_v2"]
FALCON = DATA["falcon_180b"]


@pytest.mark.parametrize("case", MLM["cases"], ids=[c["name"] for c in MLM["cases"]])
def test_megatron_readme_layout_is_feasible_and_counts_megatrons_flops(case):
    p = megatron_plan(case, MLM)
    assert p.feasible, (case["name"], p.reasons)
    # the table's TFLOP/s are Megatron-Core r0.8.0's count: ours must be the same number for the implied time
    assert p.flops_per_step == pytest.approx(megatron_flops(case, MLM), rel=1e-3)


def test_megatron_readme_step_time_with_the_published_tp_overlap():
    """Measured when added: median 5.7%, max 21.4% (the 1.7B run, predicted too fast) over 9 runs."""
    errs = [abs(megatron_plan(c, MLM).step_time_s / megatron_step_time_s(c, MLM) - 1) for c in MLM["cases"]]
    assert statistics.median(errs) <= 0.08
    assert max(errs) <= 0.25


def test_megatron_profile_without_tp_overlap_is_slower_on_every_tp_run():
    """The README's runs turn --tp-comm-overlap on; the megatron profile leaves it off, which costs time on
    every run with tp > 1 and none without (the 32B run: +40.0% without, +9.4% with)."""
    for c in MLM["cases"]:
        on, off = megatron_plan(c, MLM), megatron_plan(c, MLM, published_overlaps=False)
        if c["tp"] > 1:
            assert off.step_time_s > on.step_time_s, c["name"]
        else:
            assert off.step_time_s == pytest.approx(on.step_time_s), c["name"]


@pytest.mark.parametrize("case", LLAMA["cases"], ids=[c["id"] for c in LLAMA["cases"]])
def test_llama_gpu_hours_below_the_cards_total(case):
    """The cards give total GPU time; the planner's steady-state hours must come out below it, and not absurdly
    so (measured when added: 0.30 to 0.73 of the published hours)."""
    best = llama_search(case, llama_n_gpus(case, LLAMA))
    assert best.feasible
    assert 0.25 * case["gpu_hours"] < best.gpu_hours < case["gpu_hours"], (case["id"], best.gpu_hours)


def test_llama_405b_published_layout_gpu_hours():
    """Llama 3.1 405B with its published layout (TP8 PP16 DP128 on 16,384 H100): -13.3% when added."""
    case = next(c for c in LLAMA["cases"] if "published_layout_run" in c)
    p = llama_published_layout(case)
    assert p.feasible
    assert p.gpu_hours / case["gpu_hours"] - 1 == pytest.approx(-0.133, abs=0.07)


def test_asset_rows_have_provenance():
    assert "commit" in MLM["source"] and MLM["assumed"] and MLM["published_overlaps"]["why"]
    for c in LLAMA["cases"]:
        assert "commit" in c["source"] and c["gpu_hours"] > 0, c["id"]
    for key in ("source", "model"):
        assert "commit" in DSV2["published" if key == "source" else "published_setup"][key]
    assert DSV2["assumed"] and DSV2["profile_overrides"] and DSV2["n_gpus_rule"]
    assert "commit" in FALCON["published"]["source"] and FALCON["assumed"] and FALCON["n_gpus_rule"]
    for x in DATA["not_checked"]:
        assert x["what"] and x["why"]


def test_deepseek_v2_preset_counts_match_the_report():
    """arXiv:2405.04434 sec. 3.1.2: 236B total, 21B activated (235.74B and 21.38B when added)."""
    c = get_model(DSV2["model"]).n_params()
    assert c.total == pytest.approx(236e9, rel=0.005)
    assert c.active == pytest.approx(21e9, rel=0.03)


@pytest.mark.parametrize("n_gpus", [DSV2["n_gpus"], *DSV2["sensitivity_n_gpus"]])
def test_deepseek_v2_published_layout_is_feasible(n_gpus):
    """It ran: PP16 x EP8 x ZeRO-1, no TP, bf16, on H800 80GB (53.7 GiB at 2,048 GPUs when added)."""
    p = deepseek_v2_plan(DSV2, n_gpus)
    assert p.feasible, p.reasons
    assert (p.layout.pp, p.layout.ep, p.layout.tp, p.layout.zero) == (16, 8, 1, 1)


def test_deepseek_v2_gpu_hours_per_trillion_tokens():
    """Held out, nothing fitted: 151.8K H800 GPU-hours per trillion tokens against the published 172.8K (-12.2%)
    when added, with the shared-expert overlap rule (0.32 of the all-to-all hidden); the bounds ep_overlap = 0 and
    1 gave -6.7% and -23.8%. Band: 5 points either side of -12.2%."""
    pub = DSV2["published"]["gpu_hours_per_trillion_tokens"]
    assert 0.0 < deepseek_v2_shared_expert_overlap(DSV2, DSV2["n_gpus"]) < 1.0
    p = deepseek_v2_plan(DSV2)
    assert p.gpu_hours / pub - 1 == pytest.approx(-0.122, abs=0.05)
    lo, hi = deepseek_v2_plan(DSV2, ep_overlap=1.0), deepseek_v2_plan(DSV2, ep_overlap=0.0)
    assert lo.gpu_hours < p.gpu_hours < hi.gpu_hours


def test_falcon_180b_preset_counts_match_the_card():
    """Falcon-180B: '180B parameters' (model card); 178.56B with tied embeddings when added: 80 parallel blocks
    (two LayerNorms each) of 14848, 232 heads of 64, 8 KV groups."""
    m = get_model(FALCON["model"])
    assert (m.n_layers, m.d_model, m.n_heads, m.n_kv_heads, m.d_head) == (80, 14848, 232, 8, 64)
    assert (m.parallel_block, m.parallel_block_norms) == (True, 2)
    assert m.n_params().total == pytest.approx(180e9, rel=0.015)


@pytest.mark.parametrize("overrides", [{}, {"sequence_parallel": False}, {"recompute": "full"}],
                         ids=["as-stated", "no-sp", "full-recompute"])
def test_falcon_180b_published_layout_is_feasible(overrides):
    """It ran: TP8 PP8 DP64 with ZeRO-1 on 4,096 A100 40GB (19.3 GiB as the asset states, 35.2 GiB without
    sequence parallelism, 12.0 GiB with full recompute, when added with the sequential block; 18.7, 30.7 and 12.0
    GiB with the parallel block)."""
    p = falcon_plan(FALCON, **overrides)
    assert p.feasible, p.reasons
    assert (p.layout.tp, p.layout.pp, p.layout.dp, p.layout.zero) == (8, 8, 64, 1)
    assert p.cluster.n_gpus == 4096


def test_falcon_180b_gpu_hours():
    """Held out, nothing fitted: 7.64M A100-40GB GPU-hours against the published ~7.0M total (+9.1%) when added
    with the sequential block; 7.42M (+6.0%) with the parallel block (one TP collective per block and direction,
    its two LayerNorms run on the gathered input). Band: 6 points either side of +9.1%, kept as it was. The
    published hours include everything besides steady-state steps, so the plan being above them says it is too
    slow; the bubble alone (1.35 s of an 8.05 s step when added) bounds the gap: without it the plan is below the
    published hours (-9.2% when added, -11.7% with the parallel block)."""
    pub = FALCON["published"]["gpu_hours"]
    p = falcon_plan(FALCON)
    assert p.gpu_hours / pub - 1 == pytest.approx(0.091, abs=0.06)
    assert p.gpu_hours * (1 - p.time.bubble_s / p.step_time_s) < pub
    seq = falcon_plan(FALCON, parallel_block=False)
    assert p.time.tp_s == pytest.approx(seq.time.tp_s / 2) and p.gpu_hours < seq.gpu_hours
