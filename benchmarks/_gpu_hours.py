"""The held-out rows of tests/assets/planner_held_out_gpu_hours.json as plans, in one place for the validation
benchmark (benchmarks/planner_validation.py, :func:`held_out_gpu_hours` there) and its test
(tests/planner/test_held_out_gpu_hours.py, which puts this folder on ``sys.path`` in its conftest.py).

Four groups: Megatron-LM's H100 table (layouts published: planned as published), the Llama GPU-hours (layouts
not published: planned by the procedure the asset states, a default search), DeepSeek-V2's GPU-hours per
trillion tokens (layout published, GPU count not: planned by the rules the asset states) and Falcon-180B's total
GPU-hours (layout published: planned with it and the rules the asset states). Nothing here is fitted.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from _published_runs import load as load_runs  # benchmarks/_published_runs.py
from _published_runs import run_plan

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan, search_layouts
from scalelab.arch.spec import ModelSpec
from scalelab.planner import MemoryConventions
from scalelab.planner.frameworks import FrameworkProfile, get_framework

ASSET = Path(__file__).resolve().parents[1] / "tests" / "assets" / "planner_held_out_gpu_hours.json"


def load() -> dict:
    """The whole asset."""
    return json.loads(ASSET.read_text())


def megatron_model(case: dict, data: dict) -> ModelSpec:
    """One GPT of Megatron-LM's table as the asset's ``assumed`` reads it: GELU MLP of 4h, LayerNorm, biases,
    learned positions, untied embedding and output."""
    return ModelSpec(name=f"megatron-readme-{case['name']}", n_layers=case["n_layers"], d_model=case["d_model"],
                     n_heads=case["n_heads"], d_ff=4 * case["d_model"], vocab_size=data["vocab_size"],
                     seq_len=data["seq_len"], ffn_kind="gelu", norm_kind="layernorm", position_kind="learned",
                     tied_embeddings=False, attn_bias="all", mlp_bias=True)


def megatron_flops(case: dict, data: dict) -> float:
    """FLOPs per step as Megatron-Core r0.8.0 counts them for the table's TFLOP/s (``num_floating_point_operations``
    in megatron/training/training.py at tag core_r0.8.0, with MHA, no SwiGLU, no MoE):
    ``72 B s L h^2 (1 + s/6h + V/12Lh)``."""
    b, s, n_layers, h, v = case["global_batch"], data["seq_len"], case["n_layers"], case["d_model"], data["vocab_size"]
    return 72 * b * s * n_layers * h * h * (1 + s / (6 * h) + v / (12 * n_layers * h))


def megatron_step_time_s(case: dict, data: dict) -> float:
    """The iteration time the published TFLOP/s per GPU imply."""
    return megatron_flops(case, data) / (case["n_gpus"] * case["tflops_per_gpu"] * 1e12)


def megatron_plan(case: dict, data: dict, *, published_overlaps: bool = True, micro_batch: int = 1,
                  grad_reduce_bytes: float | None = None, **options):
    """plan() of one table row with its published layout and the megatron profile; ``published_overlaps`` adds the
    overlaps the README's flags turn on that the profile leaves off (the asset's ``published_overlaps``);
    ``micro_batch`` replaces the assumed 1 (a sensitivity check: the table does not give it);
    ``grad_reduce_bytes`` replaces the profile's gradient-reduce width (a what-if); ``options`` go to plan()
    (what-ifs such as ``attention_efficiency``)."""
    ov = data["published_overlaps"] if published_overlaps else {}
    conv = get_framework(data["framework"]).memory
    if grad_reduce_bytes is not None:
        conv = dataclasses.replace(conv, grad_reduce_bytes=grad_reduce_bytes)
    lay = Layout(tp=case["tp"], pp=case["pp"], dp=case["dp"], micro_batch=micro_batch, zero=1,
                 sequence_parallel=case["tp"] > 1, recompute="none")
    return plan(megatron_model(case, data), get_cluster(data["gpu"], case["n_gpus"]),
                TrainSpec(seq_len=data["seq_len"], global_batch=case["global_batch"], precision="bf16"), lay,
                framework=data["framework"], tp_overlap=ov.get("tp_overlap"), memory_conventions=conv,
                **options)


def llama_train(case: dict) -> TrainSpec:
    """The training spec the asset's user procedure states for one Llama row."""
    return TrainSpec(seq_len=case["seq_len"], global_batch=case["global_batch"], total_tokens=case["total_tokens"])


def llama_n_gpus(case: dict, data: dict) -> int:
    """The published GPU count, else the procedure's default."""
    return case.get("n_gpus", data["default_n_gpus"])


def llama_search(case: dict, n_gpus: int):
    """The best plan of a default search (``scalelab search`` with no other option) for one Llama row."""
    return search_layouts(get_model(case["model"]), get_cluster(case["gpu"], n_gpus), llama_train(case), top=1).best[0]


def llama_published_layout(case: dict):
    """One Llama row planned with its published layout (the published-runs row it names), for its tokens; None
    where no layout is published."""
    rid = case.get("published_layout_run")
    if rid is None:
        return None
    run = next(r for r in load_runs()["runs"] if r["id"] == rid)
    return run_plan({**run, "train": {**run["train"], "total_tokens": case["total_tokens"]}})


def llama_team_layout(case: dict):
    """One Llama row planned with the layout of another run of the same team (the published-runs row it names
    in ``team_layout_run``), micro-batch = the whole local batch as that row assumes; None where none is named."""
    rid = case.get("team_layout_run")
    if rid is None:
        return None
    run = next(r for r in load_runs()["runs"] if r["id"] == rid)
    n = case.get("n_gpus", load()["llama_gpu_hours"]["default_n_gpus"])
    lay = dict(run["layout"])
    lay["micro_batch"] = case["global_batch"] // (n // lay.get("tp", 1) // lay.get("pp", 1))
    return plan(get_model(case["model"]), get_cluster(case["gpu"], n), llama_train(case), Layout(**lay),
                framework=run["framework"])


def deepseek_v2_profile(data: dict, ep_overlap: float) -> FrameworkProfile:
    """The profile the asset's ``deepseek_v2`` group names (deepseek-v3, the same team's HAI-LLM) with its
    ``profile_overrides``: default memory conventions (fp32 Adam moments), the given ``ep_overlap``, no SMs held by
    communication kernels."""
    return dataclasses.replace(get_framework(data["framework"]), memory=MemoryConventions(), ep_overlap=ep_overlap,
                               comm_sm_fraction=0.0)


def _deepseek_v2_plan(data: dict, n_gpus: int, ep_overlap: float):
    model = get_model(data["model"])
    return plan(model, get_cluster(data["gpu"], n_gpus), TrainSpec(**data["train"]), Layout(**data["layout"]),
                framework=deepseek_v2_profile(data, ep_overlap))


def deepseek_v2_shared_expert_overlap(data: dict, n_gpus: int) -> float:
    """The asset's ``ep_overlap`` rule: the share of the EP all-to-all seconds that the shared experts' GEMMs
    (V2 report sec. 3.1.3) can cover, ``min(1, shared-expert seconds / all-to-all seconds)``. Shared-expert
    seconds: their forward + backward FLOPs (3 x 2 x 3 h f_s per token per MoE layer, SwiGLU's three matrices)
    for one GPU's tokens on the most-loaded stage's MoE layers, at the plan's matmul efficiency and the bf16 peak;
    all-to-all seconds: the plan's EP group time with nothing hidden (``comm.by_group()["ep"]``)."""
    p0 = _deepseek_v2_plan(data, n_gpus, 0.0)
    m, lay = p0.model, p0.layout
    assert m.moe is not None
    moe_layers_stage = min(-(-m.n_layers // lay.pp), m.n_layers - m.moe.n_dense_layers)
    dp = n_gpus // (lay.pp * lay.tp * lay.cp)
    tokens_rank = p0.train.global_batch * p0.train.seq_len / dp
    flops = 3 * 2 * 3 * m.d_model * m.moe.n_shared_experts * m.moe.shared_width * tokens_rank * moe_layers_stage
    shared_s = flops / (p0.cluster.gpu.peak("bf16") * p0.time.efficiency)  # time.efficiency: scale applied
    return min(1.0, shared_s / p0.comm.by_group()["ep"])


def deepseek_v2_plan(data: dict, n_gpus: int | None = None, ep_overlap: float | None = None):
    """DeepSeek-V2's published layout planned as the asset's ``deepseek_v2`` group states, on ``n_gpus`` (default
    the asset's rule) with ``ep_overlap`` (default the shared-expert rule,
    :func:`deepseek_v2_shared_expert_overlap`)."""
    n = n_gpus or data["n_gpus"]
    ov = deepseek_v2_shared_expert_overlap(data, n) if ep_overlap is None else ep_overlap
    return _deepseek_v2_plan(data, n, ov)


def falcon_plan(data: dict, **overrides):
    """Falcon-180B's published layout planned as the asset's ``falcon_180b`` group states (its profile, device,
    batch and tokens); ``overrides`` replace layout fields (``recompute``, ``sequence_parallel``: the benchmark's
    sensitivity rows), except ``inter_node_bandwidth_bytes_per_s``, which goes to the device (the P4d what-if),
    and ``parallel_block``, which goes to the model (False: the sequential block with the same weights)."""
    nic = overrides.pop("inter_node_bandwidth_bytes_per_s", None)
    gpu = {"inter_node_bandwidth_bytes_per_s": nic} if nic is not None else {}
    model = {"parallel_block": overrides.pop("parallel_block")} if "parallel_block" in overrides else {}
    return plan(get_model(data["model"], **model), get_cluster(data["gpu"], data["n_gpus"], **gpu),
                TrainSpec(**data["train"]), Layout(**{**data["layout"], **overrides}), framework=data["framework"])
