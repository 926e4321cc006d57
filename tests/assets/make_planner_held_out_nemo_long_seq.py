"""Regenerate tests/assets/planner_held_out_nemo_long_seq.json from NVIDIA NeMo's published long-sequence table
(docs/source/performance/performance_long_sequence.md, the Llama 2 7B FP8 DGX-H100 table of every stored version).
Run from the repository root with a clone or mirror of NVIDIA/NeMo:

    .venv/bin/python tests/assets/make_planner_held_out_nemo_long_seq.py <NeMo git directory>

Selection rule, fixed before any row was planned (the asset's ``about`` and ``selection_rule``): every row of the
Llama 2 7B (H100) table, its with-CP layout (TP, PP, DP, CP) and TFLOPS/GPU. The without-CP TFLOPS column is kept
beside each row but never planned (its layouts are not published). The four commits that wrote the file carry the
same nine rows with the same cells (checked here); the last one adds a "Batch Size" column, so each row's
provenance is that commit's text. The B200 table (Llama 3 8B, NeMo 25.04) the later versions add is another
device and container and is not selected.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from make_planner_held_out_nemo_perf import padded_vocab  # tests/assets/, beside this script

OUT = Path(__file__).resolve().parent / "planner_held_out_nemo_long_seq.json"
REPO = "NVIDIA/NeMo"
FILE = "docs/source/performance/performance_long_sequence.md"
#: Every commit that wrote the file (``git log -- FILE``), oldest first, with its date and title.
VERSIONS = (("5b47a94c110e0ce35a652242e752d8977754c8f0", "2024-10-18",
             "long context performance numbers in doc (#10784)"),
            ("b39e679ba9991269d712bd473ebbcf74520e9c20", "2024-10-21", "Long context performance doc hot fix (#10946)"),
            ("14d427f575ee0c3be2719ef7f7c4ecad1b6b45e5", "2025-04-28", "update the perf number for B200 (#13112)"),
            ("19fadb67b09ba94c55094d34df119d6f9c565068", "2025-05-08",
             "Updating the long context performance number for B200 (#13468)"))
COLUMNS = ("seq_k", "n_gpus", "without_cp_tflops_per_gpu", "tp", "pp", "dp", "cp", "model_tflops_per_gpu", "speedup")
VOCAB = 32000  # Llama 2's SentencePiece tokenizer


def table_rows(text: str) -> list[dict]:
    """The <tr> rows of the Llama 2 7B table: cells, first and last line, verbatim text."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## LLAMA2-7B"))
    end = next(i for i in range(start, len(lines)) if "</table>" in lines[i])
    rows, first = [], None
    for i in range(start, end):
        if lines[i].strip() == "<tr>":
            first = i
        elif lines[i].strip() == "</tr>" and first is not None:
            block = "\n".join(lines[first:i + 1])
            cells = re.findall(r"<td[^>]*>(.*?)</td>", block)
            if cells:
                rows.append({"cells": cells, "line": first + 1, "end_line": i + 1, "text": block})
            first = None
    return rows


def parse(row: dict) -> dict:
    """A row's cells by column; the last version has a Batch Size column after the GPUs."""
    cells = list(row["cells"])
    batch = int(cells.pop(2)) if len(cells) == len(COLUMNS) + 1 else None
    if len(cells) != len(COLUMNS):
        raise ValueError(f"line {row['line']}: {len(cells)} cells, expected {len(COLUMNS)} (+ batch size)")
    out = {k: float(v) if k in ("without_cp_tflops_per_gpu", "speedup") else int(v)
           for k, v in zip(COLUMNS, cells, strict=True)}
    return {**out, "global_batch": batch}


def record(row: dict, cells: dict, commit: str, date: str, title: str) -> dict:
    s = cells["seq_k"] * 1024
    return {"id": f"nemo-long-seq-{cells['seq_k']}k",
            "source": {"repo": REPO, "file": FILE, "commit": commit, "commit_date": date, "commit_title": title,
                       "line": row["line"], "end_line": row["end_line"], "text": row["text"],
                       "same_cells_in": [c for c, _, _ in VERSIONS[:-1]], "container": "NeMo 24.03.01",
                       "system": "DGX-H100", "precision": "FP8"},
            "group": "with-cp", "table_model": "LLAMA2-7B", "model": "llama-2-7b", "vocab_tokenizer": VOCAB,
            "vocab_padded": padded_vocab(VOCAB, cells["tp"]), "gpu": "h100-sxm", "n_gpus": cells["n_gpus"],
            "global_batch": cells["global_batch"], "micro_batch": 1, "seq_len": s,
            **{k: cells[k] for k in ("tp", "pp", "dp", "cp")}, "vp": 1, "recompute": "none",
            "memory_conventions": {"master_weight_bytes": 2.0},
            "measured": {"model_tflops_per_gpu": cells["model_tflops_per_gpu"]},
            "not_planned": {"without_cp_tflops_per_gpu": cells["without_cp_tflops_per_gpu"],
                            "speedup": cells["speedup"]}}


def blob(nemo_git: str, commit: str) -> str:
    """The file at ``commit`` in the NeMo git directory."""
    return subprocess.run(["git", "-C", nemo_git, "show", f"{commit}:{FILE}"], check=True, capture_output=True,
                          text=True).stdout


def main(nemo_git: str) -> None:
    asset = json.loads(OUT.read_text())
    seen = [table_rows(blob(nemo_git, commit)) for commit, _, _ in VERSIONS]
    keys = [[{k: v for k, v in parse(r).items() if k != "global_batch"} for r in rows] for rows in seen]
    if any(k != keys[0] for k in keys):
        raise ValueError("the versions' Llama 2 7B rows differ: keep one row per version")
    commit, date, title = VERSIONS[-1]
    asset["runs"] = [record(r, parse(r), commit, date, title) for r in seen[-1]]
    OUT.write_text(json.dumps(asset, indent=1) + "\n")
    print(f"wrote {len(asset['runs'])} rows to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
