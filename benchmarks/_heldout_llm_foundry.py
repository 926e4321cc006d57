"""One row of tests/assets/planner_heldout_llm_foundry.json (MosaicML llm-foundry's MPT throughput tables) as
plan() inputs, shared by benchmarks/planner_validation.py and tests/planner (whose conftest.py puts this folder
on ``sys.path``). The asset says how each input follows from the row (its ``planner_inputs``). One number is
fitted on one table: the Triton attention kernel's share of FlashAttention-2's efficiency
(:func:`calibrate_triton_attention`, on :data:`CALIBRATION_TABLE`); the other tables are held out from it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import statistics
from pathlib import Path

from scalelab import Layout, TrainSpec, get_cluster, plan
from scalelab.arch.spec import ModelSpec
from scalelab.errors import ConfigError, explain
from scalelab.planner.frameworks import FrameworkProfile, get_framework

ASSET = Path(__file__).resolve().parents[1] / "tests" / "assets" / "planner_heldout_llm_foundry.json"

#: The framework profile a row is planned with, by the ``attn_impl`` its table's scripts ran: ``llm-foundry``
#: (its loss's memory conventions read from llm-foundry's code, the asset's ``code_conventions``) for
#: flash-attn's kernel, ``llm-foundry-triton`` (the same, attention at the Triton kernel's calibrated share)
#: for ``triton``. The asset's ``planner_inputs`` fixed ``deepspeed`` before planning; that profile's verdicts
#: are printed beside (:data:`FIRST_FRAMEWORK`).
FRAMEWORK_BY_ATTN_IMPL = {"flash": "llm-foundry", "triton": "llm-foundry-triton"}
FRAMEWORK = "llm-foundry"
#: The one table the Triton attention share is fitted on (the largest Triton table); the others are held out.
CALIBRATION_TABLE = "A100 40GB with 1600 Gbps node-node interconnect (RoCE)"
#: The profile chosen before the rows were planned, which rejected 89 of them for its loss alone.
FIRST_FRAMEWORK = "deepspeed"


def load() -> dict:
    """The whole asset: ``runs`` and the notes stored beside them."""
    return json.loads(ASSET.read_text())


@functools.lru_cache(maxsize=1)
def _tables() -> dict:
    return load()["tables"]


def framework_of(run: dict) -> str:
    """The profile for ``run``'s table (:data:`FRAMEWORK_BY_ATTN_IMPL`, by the table's ``attn_impl``); a
    :class:`ConfigError` naming a kernel it does not know."""
    impl = _tables()[run["source"]["table"]]["attn_impl"].split()[0]
    if impl not in FRAMEWORK_BY_ATTN_IMPL:
        raise ConfigError(explain(f"no profile for table {run['source']['table']!r}'s attention kernel", value=impl,
                                  allowed=", ".join(FRAMEWORK_BY_ATTN_IMPL),
                                  fix="add it to FRAMEWORK_BY_ATTN_IMPL in benchmarks/_heldout_llm_foundry.py"))
    return FRAMEWORK_BY_ATTN_IMPL[impl]


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


def plan_row(run: dict, *, code_conventions: dict | None = None, framework: str | FrameworkProfile | None = None,
             **options):
    """plan() for one row with ``framework``'s profile (default :func:`framework_of`); ``code_conventions`` (the
    asset's, from llm-foundry's code) replace the profile's memory conventions where given; ``options`` go to
    plan() (what-ifs such as ``attention_efficiency`` or ``dp_overlap``)."""
    prof = get_framework(framework_of(run) if framework is None else framework)
    conv = dataclasses.replace(prof.memory, **code_conventions) if code_conventions else None
    train = TrainSpec(seq_len=run["seq_len"], global_batch=run["global_batch"],
                      precision="fp8" if "fp8" in run["precision"] else "bf16")
    return plan(mpt(run), get_cluster(run["gpu"], run["n_gpus"]), train, layout(run), framework=prof,
                memory_conventions=conv, **options)


def measured_tokens_per_s_per_gpu(run: dict) -> float:
    """The row's tokens/s over its GPUs (the README's integer tokens/s/GPU column, unrounded)."""
    return run["measured"]["tokens_per_s"] / run["n_gpus"]


def throughput_step_time_error(run: dict, tokens_per_s: float) -> float:
    """Measured over predicted tokens/s (``tokens_per_s``: the whole job's), less 1: the step-time error (positive:
    predicted too slow)."""
    return measured_tokens_per_s_per_gpu(run) / (tokens_per_s / run["n_gpus"]) - 1


def step_time_error(run: dict, plan_) -> float:
    """:func:`throughput_step_time_error` of ``plan_``'s tokens/s."""
    return throughput_step_time_error(run, plan_.tokens_per_s)


def calibrate_triton_attention(data: dict | None = None, table: str = CALIBRATION_TABLE) -> float:
    """The ``attention_efficiency_scale`` in 0.40..1.00 (step 0.01) that minimises the median |step-time error| of
    ``table``'s rows planned with ``llm-foundry`` (FlashAttention-2's figure) times that scale: what
    ``llm-foundry-triton`` stores (:data:`~scalelab.planner.frameworks.LLM_FOUNDRY_TRITON_ATTENTION`). Ties go to
    the larger scale (the smaller correction)."""
    data = load() if data is None else data
    rows = [r for r in data["runs"] if r["source"]["table"] == table]
    if not rows:
        raise ConfigError(explain("no llm-foundry rows in the calibration table", value=table,
                                  allowed=", ".join(data["tables"]), fix="name one of the asset's tables"))
    base = get_framework(FRAMEWORK)
    best = (float("inf"), 0.0)
    for k in range(61):
        scale = round(1.0 - 0.01 * k, 2)
        prof = dataclasses.replace(base, attention_efficiency_scale=scale)
        med = statistics.median(abs(step_time_error(r, plan_row(r, framework=prof))) for r in rows)
        best = min(best, (med, -scale))
    return -best[1]
