"""One row of tests/assets/planner_held_out_nemo_long_seq.json (NVIDIA NeMo's long-sequence table: Llama 2 7B, FP8,
DGX-H100, 4K-1,024K tokens with context parallelism) as plan() inputs and as predicted TFLOPS/GPU, shared by
benchmarks/planner_validation.py and tests/planner. The rows are planned by the performance-summary rows'
``plan_row`` (benchmarks/_held_out_nemo_perf.py: the same profile and mapping); what is new here is the table's
unit: model TFLOPS in NeMo's FLOP count, not tokens/s. Nothing here is fitted on the rows.
"""

from __future__ import annotations

import json
from pathlib import Path

from _held_out_nemo_perf import plan_row

ASSET = Path(__file__).resolve().parents[1] / "tests" / "assets" / "planner_held_out_nemo_long_seq.json"

#: NeMo's vocabulary for its llama2 FLOP formula (LLM_VOCAB_SIZE_MAP['llama2'], unpadded).
NEMO_LLAMA2_VOCAB = 32000

__all__ = ["ASSET", "error", "implied_attention_efficiency", "load", "nemo_flops_per_token", "plan_row",
           "predicted_tflops"]


def load() -> dict:
    """The whole asset: ``runs`` and the notes stored beside them."""
    return json.loads(ASSET.read_text())


def nemo_flops_per_token(p) -> float:
    """NeMo's llama2 model FLOPs per token (nemo/utils/flops_formulas.py llama2(): L h^2 (12 + 12 g/a + 18 f/h +
    12 s/h + 6 V/(L h)), the attention square counted whole) for the plan's model and sequence length."""
    m, s = p.model, p.train.seq_len
    h, n_layers = m.d_model, m.n_layers
    g = m.n_kv_heads or m.n_heads
    return n_layers * h * h * (12 + 12 * g / m.n_heads + 18 * m.d_ff / h + 12 * s / h
                               + 6 * NEMO_LLAMA2_VOCAB / (n_layers * h))


def predicted_tflops(run: dict, p) -> float:
    """The plan's tokens/s/GPU in NeMo's FLOPs: the unit of the table's TFLOPS/GPU."""
    return p.tokens_per_s / run["n_gpus"] * nemo_flops_per_token(p) / 1e12


def error(run: dict, p) -> float:
    """Step-time error: the published TFLOPS/GPU over the predicted, less 1 (positive: predicted too slow)."""
    return run["measured"]["model_tflops_per_gpu"] / predicted_tflops(run, p) - 1


def implied_attention_efficiency(run: dict, lo: float = 0.05, hi: float = 1.0, steps: int = 14) -> float:
    """The attention efficiency (fraction of the bf16 peak) at which the plan meets the published TFLOPS/GPU, all
    else as modelled: a diagnostic (bisection), never applied; ``hi`` when even that is too slow."""
    if error(run, plan_row(run, attention_efficiency=hi)) > 0:
        return hi
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if error(run, plan_row(run, attention_efficiency=mid)) > 0 else (lo, mid)
    return (lo + hi) / 2
