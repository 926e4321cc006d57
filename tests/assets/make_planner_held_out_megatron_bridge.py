"""Regenerate tests/assets/planner_held_out_megatron_bridge.json from NVIDIA Megatron-Bridge's published performance
summary (docs/performance-summary.md, the "25.11 NeMo Container" pre-training tables). Run from the repository root
with a clone or mirror of NVIDIA-NeMo/Megatron-Bridge (the git directory as ``fetch`` stores it):

    .venv/bin/python tests/assets/make_planner_held_out_megatron_bridge.py <Megatron-Bridge git directory>

Selection rule, fixed before any row was planned (:data:`SELECTION_RULE`, copied into the asset's
``selection_rule``): the script reads every row of the four 25.11 tables at :data:`COMMIT` and applies the
conditions in order; a row that fails one is written to the asset's ``left_out`` with the condition, a row that
passes all is kept with its cells unchanged, its line and the settings the performance recipes of the same commit
give where the table is silent (:data:`RECIPES`, each checked here against the recipe file's text).
"""

from __future__ import annotations

import ast
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "planner_held_out_megatron_bridge.json"
REPO = "NVIDIA-NeMo/Megatron-Bridge"
FILE = "docs/performance-summary.md"
#: Tag v0.2.1 of the r0.2.0 release branch (2025-12-09, "Merge pull request #1680 from
#: NVIDIA-NeMo/malay/summary_typos_25.11_rel"): the release the NeMo 25.11 container carries, with the 25.11
#: tables as corrected; main's 5776a6d (2025-12-10, "25.11 summary typo corrections") and c0b9a00 (2026-02-26,
#: "26.02 perf summary") carry the same 25.11 tables line for line.
COMMIT = "1c43b39285a4605799ca0ab5a69fe2f254802e18"
TAG = "v0.2.1"
SAME_TABLES_AT = ("5776a6d90b4dd8692902ab2eb581369484e19283", "c0b9a00031b79b731ccefb56d0aba9629b4dd01b")
RELEASE = "25.11"

SELECTION_RULE = (
    "Fixed before any row was planned. Source: NVIDIA-NeMo/Megatron-Bridge docs/performance-summary.md, the '25.11 "
    "NeMo Container' pre-training tables (DGX-GB300, DGX-GB200, DGX-B200, DGX-H100), read at tag v0.2.1 (commit "
    "1c43b39, the r0.2.0 release branch that the 25.11 container carries; main's 5776a6d and c0b9a00 hold the same "
    "tables). Every row of the four tables is read and kept if it passes, in order: (1) the system's GPU is in the "
    "planner's catalog: DGX-GB200 -> gb200, DGX-B200 -> b200, DGX-H100 -> h100-sxm (DGX-GB300 is not: left out); "
    "(2) the model is one the arch catalog expresses: LLAMA3_8B -> llama-3.1-8b (Llama 3 8B's shape), LLAMA3_70B -> "
    "llama-3.1-70b (Llama 3 70B's shape), LLAMA3.1_405B -> llama-3.1-405b, 'DeepSeekV3 (w/o MTP)' -> deepseek-v3 "
    "(the preset counts no MTP module), Qwen3_30B_a3B -> qwen3-30b-a3b, Qwen3_235B_a22B -> qwen3-235b-a22b; GPT OSS "
    "120B (no GPT-OSS in the catalog: alternating sliding-window attention, attention sinks, biased experts) and "
    "'DeepSeekV3 (w/ MTP)' (the MTP module is not modelled) are left out; (3) the precision is BF16 or FP8-CS "
    "(Transformer Engine's per-tensor current scaling, planned with the planner's one FP8 recipe); FP8-MX (MXFP8, "
    "32x32 / 1x128-128x128 block scaling) has no recipe in the planner and is left out; a cell 'FP8-CS (FP8-MX)' "
    "gives two measurements of one layout: the FP8-CS figure is kept and the FP8-MX figure left out. A kept row is "
    "planned with the nemo profile (Megatron-Core + Transformer Engine) at the table's GPUs, GBS, MBS, sequence "
    "length, FSDP, TP, PP, CP, VP and EP; what the table does not give (recompute, CPU activation offloading, TP "
    "comm overlap, MoE dispatcher, CUDA graphs, the optimizer's dtypes) is read from scripts/performance at the "
    "same commit for the row's model, system and precision, and a setting the planner cannot express is stated in "
    "the row's 'assumed' and the row is still kept (planned without it). Measured: the table's Tokens / sec / GPU; "
    "error = predicted step time / (GBS x sequence length / (measured tokens/s/GPU x GPUs)) - 1. Not scanned: the "
    "other container releases in the file's history (25.09, whose tables name no precision; 26.02 and later, "
    "reorganised per model, mostly MXFP8/NVFP4 and GB300/B300): a later rule, written before its rows are planned, "
    "may add them. Every row (and every FP8-MX figure) of the 25.11 tables not kept is named in 'left_out' with the "
    "condition it fails. Bounds on |step-time error|, also fixed before planning: median 12%, each row 25% (the "
    "MLPerf held-out check's).")

ABOUT = (
    "Held-out check of the planner (issue 9): Megatron-Bridge's published 25.11 performance summary (NVIDIA-NeMo/"
    "Megatron-Bridge docs/performance-summary.md at v0.2.1), the pre-training rows on H100, B200 and GB200 of the "
    "models the arch catalog has (Llama 3 8B/70B, Llama 3.1 405B, DeepSeek-V3, Qwen3 30B-A3B and 235B-A22B) in BF16 "
    "or FP8-CS, whose rows nothing in the planner was fitted on. Each row names the repository, file, commit, line "
    "and its text, the container and system, and the performance recipe (file, commit, config name) that set what "
    "the table leaves out. Made by tests/assets/make_planner_held_out_megatron_bridge.py.")

#: The test's bounds on |step-time error|, fixed before any row was planned: the MLPerf held-out check's.
BOUNDS = {"median_abs_error": 0.12, "max_abs_error": 0.25,
          "why": "fixed before any row was planned: the MLPerf held-out check's bounds (the dgxc set's median 9.5% and "
                 "max 24.7% rounded up); a row past max_abs_error is a strict xfail in the test naming its cause, a "
                 "median past median_abs_error fails the test"}

#: Table system -> catalog device and GPUs per node (condition 1); None: not in the catalog.
SYSTEMS = {"DGX-GB300": None, "DGX-GB200": ("gb200", 4), "DGX-B200": ("b200", 8), "DGX-H100": ("h100-sxm", 8)}
#: Table model -> catalog preset (condition 2); None with the reason it is left out.
MODELS: dict[str, tuple[str | None, str]] = {
    "LLAMA3_8B": ("llama-3.1-8b", "Llama 3 8B: the llama-3.1-8b preset's shape (32 layers, hidden 4096, FFN 14336, "
                  "32 heads, 8 KV heads, 128,256 tokens); Llama 3.1 differs only in RoPE scaling"),
    "LLAMA3_70B": ("llama-3.1-70b", "Llama 3 70B: the llama-3.1-70b preset's shape (80 layers, hidden 8192, FFN "
                   "28672, 64 heads, 8 KV heads, 128,256 tokens)"),
    "LLAMA3.1_405B": ("llama-3.1-405b", "Llama 3.1 405B: the llama-3.1-405b preset"),
    "DeepSeekV3 (w/o MTP)": ("deepseek-v3", "DeepSeek-V3 without multi-token prediction: the deepseek-v3 preset "
                             "(61 layers, MLA, 256 routed experts top-8, one shared, first 3 dense; no MTP module)"),
    "DeepSeekV3 (w/ MTP)": (None, "(2): DeepSeek-V3 with its MTP module, which the deepseek-v3 preset does not count "
                            "and the planner does not model"),
    "GPT OSS 120B": (None, "(2): GPT-OSS 120B is not in the arch catalog (alternating sliding-window and full "
                     "attention, attention sinks, biased experts)"),
    "Qwen3_30B_a3B": ("qwen3-30b-a3b", "Qwen3 30B-A3B: the qwen3-30b-a3b preset"),
    "Qwen3_235B_a22B": ("qwen3-235b-a22b", "Qwen3 235B-A22B: the qwen3-235b-a22b preset"),
}
#: Table precision -> the planner's (condition 3); None: no recipe in the planner.
PRECISIONS = {"BF16": "bf16", "FP8-CS": "fp8", "FP8-MX": None}
HEADER = ["Model", "#-GPUs", "Precision", "GBS", "MBS", "Sequence Length", "FSDP", "TP", "PP", "CP", "VP", "EP", "GA",
          "Tokens / sec / GPU", "Model TFLOP / sec / GPU"]


#: How the recipes were read (written with the rule, before any row was planned): scripts/performance at
#: :data:`COMMIT`. The row's workload base config, <MODEL>_<SIZE>_<GPU>_<PRECISION>_BASE_CONFIG of
#: configs/<family>/workload_base_configs.py (get_workload_base_config in utils/utils.py builds the name), gives
#: recompute, CPU offloading, the MoE all-to-all overlap and the dispatcher only where its parallel sizes (TP, PP, CP,
#: VP, EP, MBS) equal the table's: the launch scripts take the GPU count, GBS and FSDP from the command line (-ng,
#: -gb, -fsdp), so those may differ; where a size differs, the run was launched with overrides the recipe does not
#: record, and the model recipe's defaults are used (stated in 'assumed').
RECIPE_READING = (
    "scripts/performance at the same commit: the row's workload base config (<MODEL>_<SIZE>_<GPU>_<PRECISION>"
    "_BASE_CONFIG in configs/<family>/workload_base_configs.py, named as utils/utils.py get_workload_base_config "
    "builds it) gives recompute, CPU activation offloading, the MoE all-to-all overlap, the token dispatcher and CUDA "
    "graphs only where its TP, PP, CP, VP, EP and MBS equal the table's (the GPU count, GBS and FSDP are command-line "
    "settings of the launch scripts: -ng, -gb, -fsdp); where one differs the run was launched with overrides the "
    "recipe does not record, and the model recipe's defaults stand (stated in the row's 'assumed'). Per family, from "
    "configs/<family>/<family>_llm_pretrain.py, utils/helpers.py and src/megatron/bridge/recipes at the same commit: "
    "the optimizer (Megatron-Core distributed optimizer = ZeRO-1 over DP x CP; Megatron FSDP optim_grads_params = "
    "ZeRO-3), grad_reduce_in_fp32 False (set by every family's perf config: a bf16 gradient buffer), FP8-CS = "
    "Transformer Engine 'hybrid' tensorwise current scaling with fp8_param_gather True and first_last_layers_bf16 "
    "False (helpers.get_precision_config), TP comm overlap (userbuffers) on wherever TP > 1, sequence parallelism "
    "with TP > 1 (WorkloadBaseConfig.sequence_parallel).")

#: Family -> the performance config and model recipe files read, and what they set for every row of the family.
FAMILIES = {
    "llama3": {"perf": "scripts/performance/configs/llama3/llama3_llm_pretrain.py",
               "base": "scripts/performance/configs/llama3/workload_base_configs.py",
               "recipe": "src/megatron/bridge/recipes/llama/llama3.py",
               "note": "set_llama3_common_configs: seq_length 8192, vocab_size 128256 with should_pad_vocab (Megatron "
                       "pads to a multiple of 128 x TP), grad_reduce_in_fp32 False; llama3_8b/70b_pretrain_config: no "
                       "recompute, distributed optimizer, no precision-aware optimizer (fp32 masters and moments); "
                       "70B: TP comm overlap cfg userbuffers_fp8_*_h8192 (on at TP > 1); 8B: CommOverlapConfig("
                       "tp_comm_overlap=TP > 1)"},
    "llama31": {"perf": "scripts/performance/configs/llama31/llama31_llm_pretrain.py",
                "base": "scripts/performance/configs/llama31/workload_base_configs.py",
                "recipe": "src/megatron/bridge/recipes/llama/llama3.py",
                "note": "set_llama31_common_configs: seq_length 8192, vocab_size 128256 with should_pad_vocab, "
                        "grad_reduce_in_fp32 False; llama31_405b_pretrain_config: TP comm overlap on "
                        "(userbuffers_fp8_*_h16384), account_for_embedding/loss_in_pipeline_split True, no recompute, "
                        "distributed optimizer with fp32 masters and moments"},
    "deepseek": {"perf": "scripts/performance/configs/deepseek/deepseek_llm_pretrain.py",
                 "base": "scripts/performance/configs/deepseek/workload_base_configs.py",
                 "recipe": "src/megatron/bridge/recipes/deepseek/deepseek_v3.py",
                 "note": "set_deepseek_v3_common_configs: seq_length 4096, recompute_granularity selective, "
                         "grad_reduce_in_fp32 False, moe_router_force_load_balancing True (the table's forced "
                         "balance); "
                         "deepseek_v3 recipe: precision-aware distributed optimizer with main_params fp32, main_grads "
                         "bf16, exp_avg and exp_avg_sq bf16 (optimizer_state_bytes 2), pipeline layout for (PP 4, VP "
                         "4): embedding + 4 decoder layers, 14 chunks of 4, 1 decoder layer + loss (61 layers over 16 "
                         "virtual stages; the planner splits them evenly)"},
    "qwen3": {"perf": "scripts/performance/configs/qwen3/qwen3_llm_pretrain.py",
              "base": "scripts/performance/configs/qwen3/workload_base_configs.py",
              "recipe": "src/megatron/bridge/recipes/qwen/qwen3_moe.py",
              "note": "set_qwen3_common_configs: no recompute (recompute_granularity None), seq_length 4096, "
                      "grad_reduce_in_fp32 False, moe_router_force_load_balancing True; qwen3_*_pretrain_config with "
                      "CommOverlapConfig(tp_comm_overlap=True); distributed optimizer, fp32 masters and moments "
                      "(BF16 runs: helpers.set_user_overrides turns the precision-aware optimizer on with its fp32 "
                      "defaults: the same bytes)"},
}
#: Table model -> (family, base-config name prefix).
RECIPE_NAMES = {"LLAMA3_8B": ("llama3", "LLAMA3_8B"), "LLAMA3_70B": ("llama3", "LLAMA3_70B"),
                "LLAMA3.1_405B": ("llama31", "LLAMA31_405B"), "DeepSeekV3 (w/o MTP)": ("deepseek", "DEEPSEEK_V3"),
                "Qwen3_30B_a3B": ("qwen3", "QWEN3_30B_A3B"), "Qwen3_235B_a22B": ("qwen3", "QWEN3_235B_A22B")}
GPU_TOKEN = {"gb200": "GB200", "b200": "B200", "h100-sxm": "H100"}
#: WorkloadBaseConfig's defaults (scripts/performance/utils/utils.py).
BASE_DEFAULTS = {"num_gpus": 1, "tensor_model_parallel_size": 1, "pipeline_model_parallel_size": 1,
                 "context_parallel_size": 1, "virtual_pipeline_model_parallel_size": None,
                 "expert_model_parallel_size": 1, "expert_tensor_parallel_size": None, "global_batch_size": 1,
                 "micro_batch_size": 1, "use_megatron_fsdp": None, "cuda_graph_impl": None, "cuda_graph_scope": None,
                 "cpu_offloading_num_layers": None, "recompute_num_layers": None, "recompute_modules": None,
                 "moe_flex_dispatcher_backend": None, "moe_a2a_overlap": False, "peft": None}
#: Memory conventions (the asset's memory_conventions; the nemo profile's otherwise).
CONVENTIONS = {
    "mcore-fp8-params": ({"grad_bytes": 2.0, "weight_bytes": 1.0, "fp8_weight_copy_bytes": 1.0,
                          "master_weight_bytes": 4.0},
                         "Megatron-Core distributed optimizer, no precision-aware optimizer: fp32 masters and moments "
                         "(master_weight_bytes 4); grad_reduce_in_fp32 False: a bf16 gradient buffer (grad_bytes 2); "
                         "FP8-CS sets fp8_param_gather True: weights kept in fp8 (weight_bytes 1) plus the cached fp8 "
                         "transpose (fp8_weight_copy_bytes 1), as the MLPerf v5.x rows"),
    "mcore-bf16": ({"grad_bytes": 2.0, "master_weight_bytes": 4.0},
                   "Megatron-Core distributed optimizer (precision-aware with its fp32 defaults): fp32 masters and "
                   "moments (master_weight_bytes 4); grad_reduce_in_fp32 False: a bf16 gradient buffer (grad_bytes 2); "
                   "bf16 weights"),
    "mcore-bf16-moments": ({"grad_bytes": 2.0, "master_weight_bytes": 4.0, "optimizer_state_bytes": 2.0},
                           "the deepseek_v3 recipe's precision-aware distributed optimizer: fp32 masters "
                           "(master_weight_bytes 4), bf16 exp_avg and exp_avg_sq (optimizer_state_bytes 2), bf16 "
                           "main grads and grad_reduce_in_fp32 False (grad_bytes 2); bf16 weights"),
}


def base_configs(text: str) -> dict[str, dict]:
    """Every ``NAME = WorkloadBaseConfig(...)``, ``NAME = replace(OTHER, ...)`` or ``NAME = OTHER`` of a
    workload_base_configs.py, resolved to its fields (literal keyword values only)."""
    out: dict[str, dict] = {}
    for node in ast.parse(text).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name, v = node.targets[0].id, node.value
        if isinstance(v, ast.Name) and v.id in out:
            out[name] = dict(out[v.id])
        elif isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id in ("replace",
                                                                                         "WorkloadBaseConfig"):
            start = dict(out[v.args[0].id]) if v.func.id == "replace" else dict(BASE_DEFAULTS)
            start.update({k.arg: ast.literal_eval(k.value) for k in v.keywords if k.arg})
            out[name] = start
    return out


def git(gitdir: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(gitdir), *args], check=True, capture_output=True,
                          text=True).stdout


def table_rows(text: str) -> list[dict]:
    """Every data row of the 25.11 tables: system, line number (1-based), the line's text and its cells."""
    rows, system, inside = [], None, False
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith("## "):
            inside = line.startswith(f"## {RELEASE} NeMo Container")
        elif inside and line.startswith("#### System: "):
            system = line.removeprefix("#### System: ").strip()
        elif inside and line.startswith("| ") and not line.startswith(("| Model", "|---")):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            assert len(cells) == len(HEADER), (i, line)
            rows.append({"system": system, "line": i, "text": line, "cells": dict(zip(HEADER, cells, strict=True))})
    return rows


def split_pair(cell: str) -> tuple[str, str | None]:
    """'31508 (29789)' -> ('31508', '29789'); 'BF16' -> ('BF16', None)."""
    m = re.fullmatch(r"(.+?)\s*\((.+)\)", cell)
    return (m.group(1).strip(), m.group(2).strip()) if m else (cell, None)


def select(rows: list[dict]) -> tuple[list[dict], dict[str, str]]:
    """The rule's conditions in order: the kept rows (one per kept figure) and the left-out ones by key."""
    kept, left = [], {}
    for r in rows:
        c = r["cells"]
        key = f"{r['system']}/{c['Model']}/{c['Precision']}/{c['#-GPUs']}"
        if SYSTEMS[r["system"]] is None:
            left[key] = f"(1): {r['system']} is not in the catalog (line {r['line']})"
            continue
        preset, why = MODELS[c["Model"]]
        if preset is None:
            left[key] = f"{why} (line {r['line']})"
            continue
        prec, prec_alt = split_pair(c["Precision"])
        if prec_alt is not None:  # the alternative figure of the same layout
            assert PRECISIONS[prec_alt] is None, key
            left[f"{key} [{prec_alt} figure]"] = (f"(3): {prec_alt} has no recipe in the planner (the figures in "
                                                   f"parentheses, line {r['line']})")
        if PRECISIONS[prec] is None:
            left[key] = f"(3): {prec} has no recipe in the planner (line {r['line']})"
            continue
        kept.append({**r, "precision": prec, "preset": preset})
    return kept, left


def _int(cell: str) -> int:
    return 1 if cell == "n/a" else int(cell)


def build_row(r: dict, bases: dict[str, dict[str, dict]]) -> dict:
    """One kept row: the table's cells, the recipe read as :data:`RECIPE_READING` says, and plan() inputs."""
    c = r["cells"]
    gpu, _ = SYSTEMS[r["system"]]  # type: ignore[misc]
    family, prefix = RECIPE_NAMES[c["Model"]]
    prec = r["precision"]
    n, gbs, mbs, seq = int(c["#-GPUs"]), int(c["GBS"]), int(c["MBS"]), int(c["Sequence Length"])
    tp, pp, cp, vp, ep = (_int(c[k]) for k in ("TP", "PP", "CP", "VP", "EP"))
    fsdp = c["FSDP"] == "1"
    dp = n // (tp * pp * cp)
    assert n % (tp * pp * cp) == 0 and gbs == dp * mbs * int(c["GA"]), (r["line"], dp, c["GA"])
    name = f"{prefix}_{GPU_TOKEN[gpu]}_{prec.replace('-', '_')}_BASE_CONFIG"
    base = bases[family][name]
    sizes = {"TP": (tp, base["tensor_model_parallel_size"]), "PP": (pp, base["pipeline_model_parallel_size"]),
             "CP": (cp, base["context_parallel_size"]), "VP": (vp, base["virtual_pipeline_model_parallel_size"] or 1),
             "EP": (ep, base["expert_model_parallel_size"]), "MBS": (mbs, base["micro_batch_size"])}
    differs = {k: v for k, v in sizes.items() if v[0] != v[1]}
    used = base if not differs else BASE_DEFAULTS
    recompute, not_modelled = "none", []
    if family == "deepseek":  # set_deepseek_v3_common_configs: selective; Megatron-Core's default module core_attn
        recompute = "+".join(used["recompute_modules"] or ["core_attn"])
    elif used["recompute_modules"]:
        recompute = "+".join(used["recompute_modules"])
    if used["recompute_num_layers"]:
        not_modelled.append(f"full recompute of {used['recompute_num_layers']} layers per stage (recompute_method "
                            "block; the planner recomputes all layers or none: planned with none)")
    offloaded = used["cpu_offloading_num_layers"]
    if used["cuda_graph_impl"] not in (None, "none"):
        not_modelled.append(f"CUDA graphs ({used['cuda_graph_impl']}, scope {used['cuda_graph_scope']})")
    if used["moe_flex_dispatcher_backend"]:
        not_modelled.append(f"the {used['moe_flex_dispatcher_backend']} flex token dispatcher (the planner's EP "
                            "all-to-all at its own bandwidths)")
    moe = c["EP"] != "1" or family in ("deepseek", "qwen3")
    layout = {"tp": tp, "pp": pp, "cp": cp, "interleave": vp, "micro_batch": mbs, "zero": 3 if fsdp else 1,
              "sequence_parallel": tp > 1, "recompute": recompute}
    if moe:
        layout.update({"ep": ep, "etp": 1})
    if offloaded:
        layout["offload_activation_layers"] = offloaded
    conv = ("mcore-fp8-params" if prec == "FP8-CS" else "mcore-bf16-moments" if family == "deepseek"
            else "mcore-bf16")
    preset, model_note = MODELS[c["Model"]]
    update = {"seq_len": seq}
    if family.startswith("llama"):  # should_pad_vocab: Megatron pads to a multiple of 128 x TP
        step = 128 * tp
        update["vocab_size"] = -(-128256 // step) * step
    profile = {"ep_overlap": 1.0} if used["moe_a2a_overlap"] else {}
    tps = int(split_pair(c["Tokens / sec / GPU"])[0])
    fam = FAMILIES[family]
    assumed = (f"model: {model_note}"
               + (f", vocabulary 128,256 padded to {update['vocab_size']:,} (a multiple of 128 x TP {tp})"
                  if "vocab_size" in update else ", the preset's (Hugging Face) vocabulary")
               + f", sequence length {seq}; layout from the table: TP {tp}, PP {pp}, VP {vp}, CP {cp}, EP {ep}"
               + (", expert TP 1 (BASE config expert_tensor_parallel_size=1)" if moe else "")
               + f", micro-batch {mbs}, DP = {n} / ({tp} x {pp} x {cp}) = {dp}, GA {c['GA']}, "
               + ("Megatron FSDP (FSDP 1: optim_grads_params, as ZeRO-3)" if fsdp else
                  "the distributed optimizer as ZeRO-1 (FSDP 0)")
               + f"; sequence parallelism {tp > 1}; recipe {name} ({fam['base']})"
               + (f" sets {', '.join(f'{k} {v[1]}' for k, v in differs.items())} where the table has "
                  f"{', '.join(f'{k} {v[0]}' for k, v in differs.items())}: the run was launched with overrides the "
                  "recipe does not record; the model recipe's defaults stand" if differs else
                  ": its sizes equal the table's, its other settings used")
               + f"; recompute {recompute!r}"
               + (f"; CPU activation offloading of the first {offloaded} layers (cpu_offloading_num_layers; weights "
                  f"not offloaded): Layout.offload_activation_layers {offloaded} (the planner has it since the tenth "
                  f"session; planned without it before)" if offloaded else "")
               + ("; MoE all-to-all overlap on (moe_a2a_overlap: overlap_moe_expert_parallel_comm): planned with "
                  "the profile's ep_overlap 1" if profile else "")
               + f"; {fam['note']}; optimizer: {CONVENTIONS[conv][1]}"
               + ("; FP8-CS: the planner's FP8 recipe (tensorwise scaling, attention in BF16)" if prec == "FP8-CS"
                  else "; BF16")
               + ("; device: the catalog's gb200 (NVLink domains of 72 GPUs; the summary and the recipes name no "
                  "Slurm segment)" if gpu == "gb200" else f"; device: the catalog's {gpu} (8-GPU NVLink nodes)")
               + (f"; not modelled: {'; '.join(not_modelled)}" if not_modelled else "")
               + "; held out: nothing is fitted on it")
    slug = preset.replace("llama-3.1-", "llama3-") if preset else ""
    return {
        "id": f"mbridge-{RELEASE}-{gpu}-{slug}-{prec.lower()}-{n}",
        "source": {"repo": REPO, "file": FILE, "commit": COMMIT, "tag": TAG, "line": r["line"], "text": r["text"],
                   "container": f"NeMo {RELEASE}", "system": r["system"], "precision": c["Precision"]},
        "table_model": c["Model"], "table": c,
        "recipe": {"repo": REPO, "commit": COMMIT, "base_config": name, "file": fam["base"],
                   "perf_config": fam["perf"], "model_recipe": fam["recipe"],
                   "sizes_equal_table": not differs, "fields": {k: v for k, v in base.items() if v is not None}},
        "model": preset, "model_update": update, "gpu": gpu, "n_gpus": n,
        "train": {"seq_len": seq, "global_batch": gbs, "precision": PRECISIONS[prec]},
        "layout": layout, "framework": "nemo", "memory_conventions": CONVENTIONS[conv][0],
        **({"profile": profile} if profile else {}), "assumed": assumed,
        "measured": {"tokens_per_s_per_gpu": tps, "model_tflops_per_gpu": int(split_pair(
            c["Model TFLOP / sec / GPU"])[0]), "step_time_s": round(gbs * seq / (tps * n), 4)},
    }


def main(gitdir: str) -> None:
    g = Path(gitdir)
    text = git(g, "show", f"{COMMIT}:{FILE}")
    for other in SAME_TABLES_AT:  # the same 25.11 tables on main
        assert [r["text"] for r in table_rows(git(g, "show", f"{other}:{FILE}"))] == \
            [r["text"] for r in table_rows(text)], other
    kept, left = select(table_rows(text))
    bases = {f: base_configs(git(g, "show", f"{COMMIT}:{d['base']}")) for f, d in FAMILIES.items()}
    runs = [build_row(r, bases) for r in kept]
    assert len({r["id"] for r in runs}) == len(runs)
    asset = json.loads(OUT.read_text()) if OUT.exists() else {}
    asset.update({"about": ABOUT, "selection_rule": SELECTION_RULE, "recipe_reading": RECIPE_READING,
                  "error_bounds": BOUNDS,
                  "source": {"repo": REPO, "file": FILE, "commit": COMMIT, "tag": TAG, "release": RELEASE,
                             "same_tables_at": list(SAME_TABLES_AT)},
                  "left_out": left, "runs": runs})
    asset.pop("kept_lines", None)
    if FIRST_PLANNING:
        asset["first_planning"] = FIRST_PLANNING
    OUT.write_text(json.dumps(asset, indent=1) + "\n")
    print(f"{len(runs)} rows kept, {len(left)} left out; median measured step "
          f"{statistics.median(r['measured']['step_time_s'] for r in runs)} s -> {OUT}")


#: The first planning (rows of commit d743084, planner of main's d02602e, merged as d1329e5 before any row was
#: planned), recorded before anything else was done with the rows: per row, step-time error in % (predicted /
#: measured - 1), GiB planned, judged feasible. Nothing was corrected after it.
FIRST_PLANNING: dict = {
    "planner_commit": "d02602e",
    "summary": "rows of commit d743084, planner at d02602e (main, with the b200/gb200 efficiencies from published "
               "measurements): 9 of 12 judged feasible (out of memory: 70B with FSDP on 64 GB200, 364.9 GiB; 405B at "
               "TP4 PP16 VP4 on 256 GB200, 190.7 GiB; Qwen3 30B-A3B on 16 H100, 85.2 GiB); median |step-time error| "
               "8.3%, max 63.0% (Qwen3 30B-A3B on H100, the only row past 25%); 11 of 12 inside the 80% band and "
               "11 inside the 95% band",
    "rows": {"mbridge-25.11-gb200-llama3-8b-fp8-cs-8": [-5.5, 117.3, True],
             "mbridge-25.11-gb200-llama3-70b-fp8-cs-64": [-9.6, 364.9, False],
             "mbridge-25.11-gb200-llama3-405b-fp8-cs-256": [-6.7, 190.7, False],
             "mbridge-25.11-gb200-deepseek-v3-bf16-256": [-15.8, 151.8, True],
             "mbridge-25.11-gb200-qwen3-235b-a22b-bf16-256": [-12.4, 136.7, True],
             "mbridge-25.11-b200-llama3-8b-fp8-cs-8": [1.2, 117.3, True],
             "mbridge-25.11-b200-llama3-405b-fp8-cs-128": [-5.2, 149.7, True],
             "mbridge-25.11-h100-sxm-llama3-8b-fp8-cs-8": [16.9, 54.2, True],
             "mbridge-25.11-h100-sxm-llama3-70b-fp8-cs-64": [5.9, 71.7, True],
             "mbridge-25.11-h100-sxm-llama3-405b-fp8-cs-1024": [-6.9, 61.5, True],
             "mbridge-25.11-h100-sxm-qwen3-30b-a3b-fp8-cs-16": [-63.0, 85.2, False],
             "mbridge-25.11-h100-sxm-qwen3-235b-a22b-fp8-cs-256": [-10.2, 71.4, True]},
}


if __name__ == "__main__":
    main(sys.argv[1])
