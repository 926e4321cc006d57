"""One row of tests/assets/planner_heldout_llm_foundry.json (MosaicML llm-foundry's MPT throughput tables) as
plan() inputs, shared by benchmarks/planner_validation.py and tests/planner (whose conftest.py puts this folder
on ``sys.path``). The asset says how each input follows from the row (its ``planner_inputs``); nothing here is
fitted on the rows.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from scalelab import Layout, TrainSpec, get_cluster, plan
from scalelab.arch.spec import ModelSpec
from scalelab.errors import ConfigError, explain
from scalelab.planner.frameworks import get_framework

ASSET = Path(__file__).resolve().parents[1] / "tests" / "assets" / "planner_heldout_llm_foundry.json"

#: The framework profile every row is planned with: ``llm-foundry`` (its loss's memory conventions read from
#: llm-foundry's code, the asset's ``code_conventions``; nothing fitted). The asset's ``planner_inputs`` fixed
#: ``deepspeed`` before planning; that profile's verdicts are printed beside (:data:`FIRST_FRAMEWORK`).
FRAMEWORK = "llm-foundry"
#: The profile chosen before the rows were planned, which rejected 89 of them for its loss alone.
FIRST_FRAMEWORK = "deepspeed"


def load() -> dict:
    """The whole asset: ``runs`` and the notes stored beside them."""
    return json.loads(ASSET.read_text())


def mpt(run: dict) -> ModelSpec:
    """The MPT model a row trained: llm-foundry's MPTConfig defaults with the yaml's shape (learned positions,
    LayerNorm and biases, GELU MLP of 4 d_model, tied embeddings, vocabulary 50368) at the row's seq_len."""
    s = run["shape"]
    return ModelSpec(name=run["model"], n_layers=s["n_layers"], d_model=s["d_model"], n_heads=s["n_heads"],
                     d_ff=4 * s["d_model"], vocab_size=50368, seq_len=run["seq_len"], ffn_kind="gelu",
                     norm_kind="layernorm", position_kind="learned", tied_embeddings=True, attn_bias="all",
                     mlp_bias=True)


#: torch FSDP sharding strategy -> the ZeRO stage it shards like (the asset's tables use these two).
ZERO_STAGE = {"FULL_SHARD": 3, "SHARD_GRAD_OP": 2}


def zero_stage(sharding: str) -> int:
    """The ZeRO stage of an FSDP ``sharding_strategy``; a :class:`ConfigError` naming it for any other."""
    if sharding not in ZERO_STAGE:
        raise ConfigError(explain("FSDP sharding strategy with no ZeRO stage here", value=sharding,
                                  allowed=", ".join(f"{k} (ZeRO-{v})" for k, v in ZERO_STAGE.items()),
                                  fix="add it to ZERO_STAGE in benchmarks/_heldout_llm_foundry.py with the stage "
                                      "it shards like, or leave the row out"))
    return ZERO_STAGE[sharding]


def layout(run: dict) -> Layout:
    """FULL_SHARD as ZeRO-3, SHARD_GRAD_OP as ZeRO-2, activation checkpointing as full recompute."""
    return Layout(zero=zero_stage(run["sharding"]), micro_batch=run["micro_batch"],
                  recompute="full" if run["activation_checkpointing"] else "none")


def plan_row(run: dict, *, code_conventions: dict | None = None, framework: str = FRAMEWORK, **options):
    """plan() for one row with ``framework``'s profile; ``code_conventions`` (the asset's, from llm-foundry's
    code) replace the profile's memory conventions where given; ``options`` go to plan() (what-ifs such as
    ``attention_efficiency`` or ``dp_overlap``)."""
    prof = get_framework(framework)
    conv = dataclasses.replace(prof.memory, **code_conventions) if code_conventions else None
    train = TrainSpec(seq_len=run["seq_len"], global_batch=run["global_batch"],
                      precision="fp8" if "fp8" in run["precision"] else "bf16")
    return plan(mpt(run), get_cluster(run["gpu"], run["n_gpus"]), train, layout(run), framework=prof,
                memory_conventions=conv, **options)


def measured_tokens_per_s_per_gpu(run: dict) -> float:
    """The row's tokens/s over its GPUs (the README's integer tokens/s/GPU column, unrounded)."""
    return run["measured"]["tokens_per_s"] / run["n_gpus"]
