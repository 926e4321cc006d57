"""Held out (issue 9): NVIDIA NeMo's long-sequence table, Llama 2 7B FP8 on DGX-H100 at 4K-1,024K tokens with
context parallelism up to CP32 (tests/assets/planner_held_out_nemo_long_seq.json, planned by
benchmarks/_held_out_nemo_long_seq.py as benchmarks/planner_validation.py plans them). Every row ran, so every
layout should be judged feasible; nothing in the planner was fitted on them (docs/planner.md, "Held out: NVIDIA
NeMo's long-sequence table")."""

from __future__ import annotations

import re
import statistics

import pytest
from _held_out_nemo_long_seq import error, implied_attention_efficiency, load, nemo_flops_per_token, plan_row

DATA = load()
RUNS = DATA["runs"]
CP_RUNS = [r for r in RUNS if r["cp"] > 1]

#: Bounds on |error| in TFLOPS/GPU (published over predicted, less 1): median 13.3% and max 24.7% over the 9 rows,
#: median 19.8% over the 6 CP rows, when the asset was added (the benchmark's summary table). Every row is
#: predicted too slow, by more as attention takes more of the step (the attention kernel's efficiency, see
#: docs/planner.md). A change that moves the median past 17%, the CP rows' median past 24% or a row past 29% fails.
MEDIAN_ERROR_BOUND = 0.17
CP_MEDIAN_ERROR_BOUND = 0.24
MAX_ERROR_BOUND = 0.29

#: Attention efficiency implied by the rows from 16K (CP1) to 1,024K (CP32): 0.283 to 0.327 when the asset was
#: added, a spread of 1.155x. The table's TFLOPS stay within 7% from 64K to 1,024K; a ring model that charged CP
#: degree-dependent costs the runs do not pay (or missed ones they do) would spread the implied efficiency.
IMPLIED_SPREAD_BOUND = 1.25


#: Rows judged out of memory although they ran, with what decides it (strict: a fix fails here until it is moved out).
OUT_OF_MEMORY: dict[str, str] = {}  # the 4K row fits since the tenth session (the nemo profile's bf16 gradient buffer)


@pytest.mark.parametrize("run", [pytest.param(r, id=r["id"], marks=pytest.mark.xfail(
    strict=True, reason=OUT_OF_MEMORY[r["id"]])) if r["id"] in OUT_OF_MEMORY else pytest.param(r, id=r["id"])
    for r in RUNS])
def test_published_layout_is_judged_feasible(run):
    p = plan_row(run)
    assert p.feasible, p.reasons
    assert p.layout.dp == run["dp"]


def test_tflops_error_stays_within_the_bounds():
    errors = [abs(error(r, plan_row(r))) for r in RUNS]
    assert statistics.median(errors) <= MEDIAN_ERROR_BOUND, statistics.median(errors)
    assert max(errors) <= MAX_ERROR_BOUND, max(errors)
    cp = [abs(error(r, plan_row(r))) for r in CP_RUNS]
    assert len(cp) == 6 and statistics.median(cp) <= CP_MEDIAN_ERROR_BOUND, statistics.median(cp)


def test_cp_ring_hides_its_transfers_and_costs_little():
    """TransformerEngine's p2p ring: at 32K-1,024K tokens each ring step's attention outlasts its K,V send, so
    nothing of the transfers shows, and the ring's other costs stay a few percent of the step."""
    for r in CP_RUNS:
        t = plan_row(r).time
        assert t.cp_transfer_s > 0 and t.cp_exposed_s <= 0.01 * t.step_time_s, r["id"]
        assert 0 < t.cp_s <= 0.05 * t.step_time_s, r["id"]


def test_implied_attention_efficiency_does_not_depend_on_the_cp_degree():
    implied = [implied_attention_efficiency(r) for r in RUNS if r["seq_len"] >= 16384]
    assert len(implied) == 7 and max(implied) / min(implied) <= IMPLIED_SPREAD_BOUND, implied


def test_flops_per_token_match_nemos_formula():
    """NeMo's llama2 FLOP count (the full s x s attention square, logits at 32,000 tokens) and the planner's model
    FLOPs agree within 0.1% on every row, from 4K (attention 15% of the FLOPs) to 1,024K (97%)."""
    for r in RUNS:
        p = plan_row(r)
        assert p.flops_per_step / p.train.global_batch_tokens == pytest.approx(nemo_flops_per_token(p), rel=1e-3)


def test_rows_have_provenance():
    assert DATA["selection_rule"].startswith("every row of the Llama 2 7B H100 table")
    assert len({r["id"] for r in RUNS}) == len(RUNS) == 9 and len(CP_RUNS) == 6
    last = list(DATA["versions"])[-1]
    for r in RUNS:
        src = r["source"]
        assert src["repo"] == "NVIDIA/NeMo" and src["commit"] == last and 0 < src["line"] < src["end_line"], r["id"]
        assert src["container"] == "NeMo 24.03.01" and set(src["same_cells_in"]) == set(DATA["versions"]) - {last}
        cells = re.findall(r"<td[^>]*>(.*?)</td>", src["text"])
        want = [r["seq_len"] // 1024, r["n_gpus"], r["global_batch"], r["not_planned"]["without_cp_tflops_per_gpu"],
                r["tp"], r["pp"], r["dp"], r["cp"], r["measured"]["model_tflops_per_gpu"], r["not_planned"]["speedup"]]
        assert [float(c) for c in cells] == [float(w) for w in want], r["id"]
        assert r["tp"] * r["pp"] * r["dp"] * r["cp"] == r["n_gpus"], r["id"]
        assert r["global_batch"] * r["seq_len"] == 4 * 2**20, r["id"]  # 4M tokens per step in every row
        pad = r["vocab_padded"] - r["vocab_tokenizer"]
        assert r["vocab_padded"] % (128 * r["tp"]) == 0 and 0 <= pad < 128 * r["tp"], r["id"]
