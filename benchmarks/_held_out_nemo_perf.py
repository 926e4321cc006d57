"""One row of tests/assets/planner_held_out_nemo_perf.json (NVIDIA NeMo's published performance summary) as plan()
inputs, shared by benchmarks/planner_validation.py and tests/planner (whose conftest.py puts this folder on
``sys.path``). The asset's ``planner_inputs`` say how each input follows from the row; they were written before any
row was planned, and nothing here is fitted on the rows.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.arch.spec import ModelSpec
from scalelab.planner import LoRASpec
from scalelab.planner.frameworks import FrameworkProfile, get_framework

ASSET = Path(__file__).resolve().parents[1] / "tests" / "assets" / "planner_held_out_nemo_perf.json"

#: The profile every row is planned with, the one the NeMo 24.09 Llama 3.1 405B rows use.
FRAMEWORK = "nemo"


def load() -> dict:
    """The whole asset: ``runs`` and the notes stored beside them."""
    return json.loads(ASSET.read_text())


def model(run: dict) -> ModelSpec:
    """The row's model at its sequence length with the vocabulary Megatron padded it to: a catalog preset (Llama),
    or NeMo's GPT3 (GELU 4h MLP, LayerNorm, biases, learned positions, tied embeddings) or Nemotron (squared-ReLU
    as the non-gated 'gelu' kind, LayerNorm, RoPE, untied, no biases) config shape."""
    common = {"vocab_size": run["vocab_padded"], "seq_len": run["seq_len"]}
    if "shape" not in run:
        return get_model(run["model"]).model_copy(update=common)
    s = run["shape"]
    if run["model"].startswith("gpt3"):
        return ModelSpec(name=run["model"], **s, d_ff=4 * s["d_model"], ffn_kind="gelu", norm_kind="layernorm",
                         position_kind="learned", tied_embeddings=True, attn_bias="all", mlp_bias=True, **common)
    return ModelSpec(name=run["model"], **s, ffn_kind="gelu", norm_kind="layernorm", position_kind="rope",
                     tied_embeddings=False, **common)


def layout(run: dict) -> Layout:
    """TP, PP, CP and VP as the row, distributed optimizer as ZeRO-1, sequence parallelism with TP."""
    return Layout(tp=run["tp"], pp=run["pp"], cp=run["cp"], interleave=run["vp"], micro_batch=run["micro_batch"],
                  zero=1, sequence_parallel=run["tp"] > 1, recompute=run["recompute"])


def train(run: dict, document_tokens: int | None = None) -> TrainSpec:
    """FP8 at the row's batch and length; LoRA rank 32 on q, k, v for the LoRA rows; ``document_tokens`` (a what-if
    for the packed fine-tuning rows): attention within documents of that length."""
    lora = LoRASpec(rank=32, target_modules=("q", "k", "v")) if run.get("task") == "LoRA" else None
    return TrainSpec(seq_len=run["seq_len"], global_batch=run["global_batch"], precision="fp8", lora=lora,
                     document_tokens=document_tokens)


def plan_row(run: dict, *, first_plan: bool = False, launcher_overlaps: bool = False, memory: dict | None = None,
             document_tokens: int | None = None, profile: FrameworkProfile | None = None, **options):
    """plan() for one row with the nemo profile and the row's optimizer memory from NeMo's code and configs (its
    ``memory_conventions``, the asset's ``code_conventions``); ``first_plan``: without them and with the profile's
    fp8 conventions of then (linear inputs at 2 bytes, a 1-byte fp8 weight copy), as the rows were first planned;
    ``memory``: further conventions (what-ifs); ``launcher_overlaps`` sets the profile's TP and PP overlap from the
    launcher config's ub_tp_comm_overlap / overlap_p2p_comm (a what-if); ``profile`` replaces the nemo profile
    (a what-if: another CP ring); ``options`` go to plan()."""
    prof = profile or get_framework(FRAMEWORK)
    if launcher_overlaps and "launcher_overlaps" in run:
        o = run["launcher_overlaps"]
        prof = dataclasses.replace(prof, tp_overlap=float(o["ub_tp_comm_overlap"]),
                                   pp_overlap=float(o["overlap_p2p_comm"]))
    # as first planned: without the code's conventions, and with the profile's Transformer Engine fp8 conventions of
    # then (linear inputs at 2 bytes, a 1-byte fp8 weight copy; changed in the eighth session)
    # (and the recipe's fp32 main gradients: the profile's bf16 gradient buffer came in the tenth session)
    conv = ({"fp8_saves_quantized_linear_inputs": False, "fp8_weight_copy_bytes": 1.0, "grad_bytes": None}
            if first_plan else dict(run.get("memory_conventions", {})))
    conv.update(memory or {})
    return plan(model(run), get_cluster(run["gpu"], run["n_gpus"]), train(run, document_tokens), layout(run),
                framework=prof,
                memory_conventions=dataclasses.replace(prof.memory, **conv), **options)


def error(run: dict, p) -> float:
    """Step-time error: the published tokens/s/GPU over the predicted, less 1 (positive: predicted too slow)."""
    return run["measured"]["tokens_per_s_per_gpu"] / (p.tokens_per_s / run["n_gpus"]) - 1
