"""Published production runs (tests/assets/planner_published_runs.json) are judged feasible with their
teams' settings, and per-GPU memory is within 10% of the measured GiB where the asset says it is
modelled. Every run names its source and what was assumed."""

from __future__ import annotations

import dataclasses

import pytest
from _published_runs import build, load, measured_tokens_per_s_per_gpu, run_plan  # benchmarks/ (conftest.py)

from scalelab import Layout, get_cluster, plan
from scalelab.planner.frameworks import get_framework
from scalelab.units import GiB

DATA = load()


@pytest.mark.parametrize("run", DATA["runs"], ids=[r["id"] for r in DATA["runs"]])
def test_published_run_is_feasible(run):
    p = run_plan(run)
    assert p.feasible, (run["id"], p.reasons)
    assert p.layout.recompute != "full" or run["layout"].get("recompute") == "full"


MEASURED = [r for r in DATA["runs"] if r.get("memory_check")]


@pytest.mark.parametrize("run", MEASURED, ids=[r["id"] for r in MEASURED])
def test_memory_matches_measured_gib(run):
    """torchtitan docs/performance.md Tables 1 and 3 (peak reserved GiB)."""
    got = run_plan(run).memory.total_bytes / GiB
    assert got == pytest.approx(run["measured"]["memory_gib"], rel=DATA["memory_tolerance_rel"])


def test_asset_rows_have_provenance():
    for run in DATA["runs"]:
        assert run["source"] and run["framework"] and run["layout"], run["id"]
        if "memory_gib" in run.get("measured", {}):
            assert "memory_check" in run, run["id"]
            if not run["memory_check"]:
                assert run["memory_note"], run["id"]


def test_llama3_405b_needs_the_swiglu_policy_with_interleaving():
    """Saving every SwiGLU intermediate with interleave 4 on 8,192 GPUs does not fit; recomputing the
    product (keep gate and up) does: the issue's 81 vs 66 GiB."""
    run = next(r for r in DATA["runs"] if r["id"] == "llama3-405b-8192")
    model, cluster, train, layout, _, _ = build(run)
    saved = plan(model, cluster, train, layout.model_copy(update={"recompute": "none"}))
    product = plan(model, cluster, train, layout)
    assert not saved.feasible and product.feasible
    assert product.memory.activations_bytes < 0.85 * saved.memory.activations_bytes


def test_deepseek_v3_policy_halves_layer_activations():
    """DeepSeek-V3 report sec. 3.2.3: its recompute and FP8 caching make selective recompute fit
    where attention-only selective recompute does not."""
    run = next(r for r in DATA["runs"] if r["id"] == "deepseek-v3")
    model, cluster, train, layout, _, _ = build(run)
    megatron = plan(model, cluster, train, layout)
    theirs = plan(model, cluster, train, layout, framework="deepseek-v3")
    assert theirs.layout.recompute == "deepseek-v3"
    assert theirs.memory.activations_bytes < 0.6 * megatron.memory.activations_bytes
    assert theirs.feasible and not megatron.feasible


THROUGHPUT = [r for r in DATA["runs"]
              if {"tokens_per_s_per_gpu", "tflops_per_gpu", "days", "step_time_s"} & set(r.get("measured", {}))]
# Known misses, each with its cause (docs/planner.md, "What is not modelled").
# torchtitan-8b-8-cp2: the measured 64K / CP2 point is faster than the 32K -> 128K trend of the same table
# (3,890 -> 2,540 -> 1,071 tokens/s/GPU); the other three CP rows are within 12%.
# torchtitan-2506-8b-64-float8, held out (benchmarks/asyncTP_llama3_h100_2025-06_torchtitan.md): Llama 3.1 8B
# with TP8 and Float8 is predicted 22.5% too fast (its AsyncTP twin 14.9%, its bf16 twins 9.8% and 0.9%); the
# model's Float8 gain on this layout is 1.35x against 1.16x measured. Not identified (docs/planner.md, "Held
# out: torchtitan's June 2025 benchmarks" and "GEMM shapes"): the per-GEMM roofline took 1.6 points off it.
# torchtitan-2506-8b-64-float8-asynctp, held out: the same Float8 gain on top of an AsyncTP speed-up modelled at
# 1.03x against 1.10x measured (planner/async_tp.py, its constant fitted on December 2024's Table 4 pair):
# 17.3% too fast; 15.0% while AsyncTP was planned as fast as vanilla TP.
KNOWN_MISS: set[str] = {"torchtitan-8b-8-cp2", "torchtitan-2506-8b-64-float8", "torchtitan-2506-8b-64-float8-asynctp"}


@pytest.mark.parametrize("run", THROUGHPUT, ids=[r["id"] for r in THROUGHPUT])
def test_step_time_within_15_percent_of_published(run):
    """Step time from the framework profile alone (nothing per run) within 15% of the published throughput."""
    p = run_plan(run)
    err = measured_tokens_per_s_per_gpu(run, p) / (p.tokens_per_s / run["n_gpus"]) - 1
    if run["id"] in KNOWN_MISS:
        assert abs(err) > 0.15, f"{run['id']} now within 15% ({err:+.1%}): drop it from KNOWN_MISS"
    else:
        assert abs(err) <= 0.15, (run["id"], f"{err:+.1%}")


def test_deepseek_v3_gpu_hours_within_15_percent_without_full_recompute():
    """DeepSeek-V3 report Table 1: 2.664M H800 GPU-hours of pre-training for 14.8T tokens."""
    run = next(r for r in DATA["runs"] if r["id"] == "deepseek-v3")
    p = run_plan(run)
    assert not p.layout.save_policy.full
    assert p.gpu_hours == pytest.approx(run["measured"]["gpu_hours"], rel=0.15)


def test_torchtitan_405b_pp_memory_counts_unsharded_fsdp_states():
    """torchtitan under PP keeps FSDP parameters unsharded and accumulates fp32 gradients: the 405B 1F1B run
    (82.5 GiB measured) needs them; with per-micro-batch gathers the planner said 21.9 GiB."""
    run = next(r for r in DATA["runs"] if r["id"] == "torchtitan-405b-512-1f1b")
    p = run_plan(run)
    assert p.layout.zero3_gather == "step"
    d = dict(p.memory.detail)
    assert d["zero3_unsharded_grads_bytes"] > 20 * GiB  # ~6.3B local parameters x 4 bytes
    assert p.memory.total_bytes / GiB >= 0.7 * run["measured"]["memory_gib"]
    model, cluster, train, layout, prof, conv = build(run)
    per_mb = plan(model, cluster, train, layout.model_copy(update={"zero3_gather": "micro-batch"}),
                  framework=prof, memory_conventions=conv)
    assert per_mb.layout.zero3_gather == "micro-batch"  # an explicit setting wins over the profile's
    assert per_mb.memory.total_bytes < 0.6 * p.memory.total_bytes


def test_torchtitan_loss_parallel_holds_four_fp32_logits_buffers():
    """DTensor loss parallel (TP > 1) keeps the saved log-softmax output, the zeros, their sum and the
    product alive at once: four fp32 buffers of (tokens x V/t) besides the bf16 head output, where eager
    F.cross_entropy without TP needs three (torchtitan 70B, Table 4: 62.3 -> 70.2 GiB against 71.9)."""
    run = next(r for r in DATA["runs"] if r["id"] == "torchtitan-70b-256")
    model, cluster, train, layout, prof, conv = build(run)
    p = plan(model, cluster, train, layout, framework=prof, memory_conventions=conv)
    tokens = train.seq_len * layout.micro_batch
    buf = tokens * model.vocab_size / layout.tp
    head_in = 2 * tokens / layout.tp * model.d_model * 2  # final-norm and head inputs (SP-sharded, bf16)
    assert p.memory.get("logits_bytes") == pytest.approx(buf * (4 * 4 + 2) + head_in, rel=1e-9)
    three = plan(model, cluster, train, layout, framework=prof,
                 memory_conventions=dataclasses.replace(conv, loss_parallel_logits_copies=None))
    assert p.memory.get("logits_bytes") - three.memory.get("logits_bytes") == pytest.approx(buf * 4, rel=1e-9)
    # without TP the vocabulary is not split and eager cross-entropy's three buffers apply
    no_tp = plan(model, get_cluster(run["gpu"], 8), train.model_copy(update={"global_batch": 8}),
                 Layout(zero=3, micro_batch=1, recompute="full"), framework=prof)
    rows = train.seq_len
    assert no_tp.memory.get("logits_bytes") == pytest.approx(
        rows * model.vocab_size * (3 * 4 + 2) + 2 * rows * model.d_model * 2, rel=1e-9)


def test_pipeline_last_stage_keeps_every_micro_batch_output():
    """PyTorch's pipeline stage keeps each micro-batch's output for the schedule's return value: torchtitan's
    last stage holds the step's bf16 logits (405B interleaved on 512 H100: 8 micro-batches of 4 x 8,192)."""
    run = next(r for r in DATA["runs"] if r["id"] == "torchtitan-405b-512-interleaved")
    model, cluster, train, layout, prof, conv = build(run)
    p = plan(model, cluster, train, layout, framework=prof, memory_conventions=conv)
    m = train.global_batch // (8 * layout.micro_batch)
    assert m == 8 and p.memory.peak_stage == layout.pp - 1
    kept = (m - 1) * train.seq_len * layout.micro_batch * model.vocab_size / layout.tp * 2
    assert p.memory.get("pipeline_kept_outputs_bytes") == pytest.approx(kept, rel=1e-9)
    off = plan(model, cluster, train, layout, framework=prof,
               memory_conventions=dataclasses.replace(conv, pp_keeps_stage_outputs=False))
    assert off.memory.get("pipeline_kept_outputs_bytes") == 0.0
    assert get_framework("megatron").memory.pp_keeps_stage_outputs is False


def test_nemo_rows_are_closer_with_overlaps_than_without():
    """The published NeMo runs: with the overlaps their recipes enable the model is closer to the measured
    step time than without them (held-out rows: no parameter is fitted on them)."""
    for r in [run for run in DATA["runs"] if run["framework"] == "nemo"]:
        model, cluster, train, layout, _, conv = build(r)
        on = plan(model, cluster, train, layout, framework="nemo", memory_conventions=conv)
        off = plan(model, cluster, train, layout, framework=dataclasses.replace(
            get_framework("nemo"), tp_overlap=0.0, pp_overlap=0.0), memory_conventions=conv)
        meas = r["measured"]["step_time_s"]
        assert abs(on.step_time_s / meas - 1) < abs(off.step_time_s / meas - 1), r["id"]


HELD_OUT_2025 = [r for r in DATA["runs"] if r.get("held_out") == "torchtitan-2025-06"]


def test_june_2025_rows_are_held_out_from_the_calibration():
    """torchtitan's June 2025 benchmark files were added after the efficiencies were set: none of their rows
    may be in the benchmark's calibration split."""
    from planner_validation import CALIBRATION  # benchmarks/ (conftest.py)
    from planner_validation import HELD_OUT_2025 as TAG

    assert TAG == "torchtitan-2025-06" and len(HELD_OUT_2025) == 10
    assert not {r["id"] for r in HELD_OUT_2025} & set(CALIBRATION)


@pytest.mark.parametrize("run", [r for r in DATA["runs"] if r.get("async_tp")], ids=lambda r: r["id"])
def test_asynctp_speedup_lies_between_no_overlap_and_full_overlap(run):
    """Every row that ran AsyncTP says so (``async_tp``) and is planned with it: faster than its vanilla-TP
    twin, slower than hiding all TP traffic up to the GEMMs' time (tp_overlap=1), and its vanilla twin is
    untouched. The measured speed-up lies between the same two."""
    twin = next(r for r in DATA["runs"] if r["id"] == run["id"].removesuffix("-asynctp"))
    assert not twin.get("async_tp") and run["memory_conventions"]["sp_saves_gathered_inputs"] is False
    measured = run["measured"]["tokens_per_s_per_gpu"] / twin["measured"]["tokens_per_s_per_gpu"]
    vanilla = run_plan(twin).tokens_per_s
    assert run_plan({**run, "async_tp": False}).tokens_per_s == pytest.approx(vanilla)
    bound = run_plan({**run, "_overlaps": (1.0, 0.0)}).tokens_per_s / vanilla
    assert 1.0 < run_plan(run).tokens_per_s / vanilla < bound
    assert 1.0 < measured < bound, (measured, bound)


def test_asynctp_constant_is_the_one_fitted_on_table_4():
    """ASYNC_TP_HIDING_EFFICIENCY reproduces the calibration pair (torchtitan docs/performance.md Table 4:
    876 vs 829 tokens/s/GPU) to a point of speed-up; the June 2025 pairs are held out."""
    from scalelab.planner.async_tp import ASYNC_TP_HIDING_EFFICIENCY

    run = next(r for r in DATA["runs"] if r["id"] == "torchtitan-70b-256-asynctp")
    assert run.get("async_tp") and run.get("held_out") is None
    twin = next(r for r in DATA["runs"] if r["id"] == "torchtitan-70b-256")
    model = run_plan(run).tokens_per_s / run_plan(twin).tokens_per_s
    assert model == pytest.approx(876 / 829, abs=0.01)
    off = run_plan({**run, "_async_tp_hiding": min(1.0, ASYNC_TP_HIDING_EFFICIENCY + 0.2)}).tokens_per_s
    assert off / run_plan(twin).tokens_per_s > 876 / 829 + 0.01  # the constant matters


def test_not_expressible_rows_name_their_source_and_reason():
    """Runs the planner cannot express stay in the asset with their figures, source and reason, beside a row
    of the same table that it can plan."""
    ids = {r["id"] for r in DATA["runs"]}
    assert DATA["not_expressible"]
    for x in DATA["not_expressible"]:
        assert x["source"] and x["reason"] and x["measured"]["tokens_per_s_per_gpu"] > 0, x["id"]
        assert x["id"] not in ids and x["id"].replace("-rowwise", "") in ids, x["id"]
