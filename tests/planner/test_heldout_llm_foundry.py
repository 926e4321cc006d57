"""Held out (issue 9): MosaicML llm-foundry's published MPT throughput tables, every row
(tests/assets/planner_heldout_llm_foundry.json, planned by benchmarks/_heldout_llm_foundry.py as
benchmarks/planner_validation.py plans them). Every row ran, so every row must be judged feasible; nothing in
the planner was fitted on them (docs/planner.md, "Held out: MosaicML llm-foundry's MPT tables")."""

from __future__ import annotations

import statistics
from collections import Counter

import pytest
from _heldout_llm_foundry import (  # benchmarks/ (conftest.py)
    FIRST_FRAMEWORK,
    load,
    measured_tokens_per_s_per_gpu,
    mpt,
    plan_row,
)

from scalelab.planner.frameworks import get_framework

DATA = load()
RUNS = DATA["runs"]
CODE = DATA["code_conventions"]["memory_conventions"]

#: The bound on the median |step-time error| over all rows: 10.0% when the asset was added (the benchmark's
#: "all rows, llm-foundry profile" line); a change to the step-time model that moves it past 12% fails here.
MEDIAN_ERROR_BOUND = 0.12


def test_every_row_is_judged_feasible_with_the_llm_foundry_profile():
    """Each row trained on its GPUs; with the llm-foundry profile (flash-attn's fused cross-entropy on bf16
    logits, the loss llm-foundry's code runs) the planner must agree, whatever the row's size or length."""
    infeasible = [(r["id"], p.reasons) for r in RUNS if not (p := plan_row(r)).feasible]
    assert not infeasible, infeasible


def test_the_profile_holds_the_loss_conventions_read_from_the_code():
    """The asset's code_conventions (with their source) are what the llm-foundry profile sets."""
    memory = get_framework("llm-foundry").memory
    assert {k: getattr(memory, k) for k in CODE} == CODE


def test_loss_conventions_change_only_the_logits():
    """The rows the deepspeed profile (chosen before planning) rejects are rejected for its loss (Hugging Face's
    fp32 upcast of the logits): the llm-foundry profile moves no memory term but the logits buffer."""
    assert sum(not plan_row(r, framework=FIRST_FRAMEWORK).feasible for r in RUNS) > 0
    for r in RUNS[::7]:
        a, b = plan_row(r, framework=FIRST_FRAMEWORK).memory, plan_row(r).memory
        da, db = dict(a.detail), dict(b.detail)
        assert db["logits_bytes"] < da["logits_bytes"], r["id"]
        assert a.total_bytes - b.total_bytes == pytest.approx(da["logits_bytes"] - db["logits_bytes"])


def test_model_shapes_reproduce_the_published_parameter_counts():
    """MPTConfig's defaults with the yamls' shapes (learned positions, biases, LayerNorm, tied embeddings)
    give exactly the NumParams column of every row, at every sequence length."""
    for r in RUNS:
        assert mpt(r).n_params().total == r["n_params"], r["id"]


def test_rows_have_provenance_and_consistent_batches():
    tables = Counter(r["source"]["table"] for r in RUNS)
    assert set(tables) == set(DATA["tables"]) and DATA["selection_rule"] == "all rows of all tables"
    assert len({r["id"] for r in RUNS}) == len(RUNS) == 216
    for r in RUNS:
        src = r["source"]
        assert src["repo"] == "mosaicml/llm-foundry" and len(src["commit"]) == 40, r["id"]
        assert len(src["rows_last_changed_in"]) == 40 and src["line"] > 0, r["id"]
        assert r["global_batch"] == r["micro_batch"] * r["grad_accum"] * r["n_gpus"], r["id"]
        assert r["global_batch_tokens"] == r["global_batch"] * r["seq_len"], r["id"]
        # the README's tokens/s/GPU column is the rounded tokens/s over the GPUs
        assert abs(measured_tokens_per_s_per_gpu(r) - r["measured"]["tokens_per_s_per_gpu"]) <= 1, r["id"]


def test_median_step_time_error_stays_within_the_bound():
    errors = [abs(measured_tokens_per_s_per_gpu(r) / (p.tokens_per_s / r["n_gpus"]) - 1)
              for r in RUNS for p in [plan_row(r)]]
    assert statistics.median(errors) <= MEDIAN_ERROR_BOUND, statistics.median(errors)
