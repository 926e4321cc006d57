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

import json
import re
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


def main(gitdir: str) -> None:
    g = Path(gitdir)
    text = git(g, "show", f"{COMMIT}:{FILE}")
    for other in SAME_TABLES_AT:  # the same 25.11 tables on main
        assert [r["text"] for r in table_rows(git(g, "show", f"{other}:{FILE}"))] == \
            [r["text"] for r in table_rows(text)], other
    kept, left = select(table_rows(text))
    asset = {"about": ABOUT, "selection_rule": SELECTION_RULE, "error_bounds": BOUNDS,
             "source": {"repo": REPO, "file": FILE, "commit": COMMIT, "tag": TAG, "release": RELEASE,
                        "same_tables_at": list(SAME_TABLES_AT)},
             "left_out": left, "kept_lines": [r["line"] for r in kept]}
    OUT.write_text(json.dumps(asset, indent=1) + "\n")
    print(f"{len(kept)} rows kept, {len(left)} left out -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
