"""Regenerate tests/assets/planner_held_out_nemo_perf.json from NVIDIA NeMo's published performance summary
(docs/source/performance/performance_summary.md, every stored version). Run from the repository root with a clone
or mirror of NVIDIA/NeMo:

    .venv/bin/python tests/assets/make_planner_held_out_nemo_perf.py <NeMo git directory>

Selection rule, fixed before any row was planned (the asset's ``about`` and ``selection_rule``): every row of both
tables (Pretraining, Finetuning) of every version of the file in the repository's history (the three commits that
wrote it; the fourth, d31653f, deleted it and points to docs.nvidia.com, which is not stored). The pretraining rows
are the main group; the fine-tuning rows (SFT and LoRA) are a separate group. A row repeated across versions is
kept once per version (the numbers were re-measured). The script copies each row's cells unchanged and adds only
what NeMo's configs say (:data:`MODELS`, :data:`LAUNCHER`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "planner_held_out_nemo_perf.json"
REPO = "NVIDIA/NeMo"
FILE = "docs/source/performance/performance_summary.md"
#: Every commit that wrote the file (``git log -- FILE``), oldest first, with its title.
VERSIONS = (("4c73f77670624bc1fd97ce444dea4e22ef5eb9c5", "2024-08-14", "24.07 perf (#10094)"),
            ("3a8081fef634686881d7464c5b847212a16c5431", "2024-08-22", "24.07 vboost numbers (#10221)"),
            ("8e3d65dcfe3504689bfc5b6e67d502780aacad41", "2024-09-09", "24.07 perf numbers (#10253)"))
#: NVIDIA/NeMo-Framework-Launcher tag 24.07 (commit 8325688d8345a5513660f0f8390f0482a721c009, 2024-08-01): the
#: container's launcher configs, launcher_scripts/conf/training/<family>/<size>.yaml (pretraining) and
#: conf/fine_tuning/llama/squad.yaml, conf/peft/llama/squad.yaml (fine-tuning).
LAUNCHER = {"repo": "NVIDIA/NeMo-Framework-Launcher", "tag": "24.07",
            "commit": "8325688d8345a5513660f0f8390f0482a721c009"}

#: Table model name -> (planner model, launcher config, tokenizer vocabulary before padding, architecture note,
#: activations_checkpoint_granularity, ub_tp_comm_overlap, overlap_p2p_comm of that config). GPT3 shapes: NeMo's
#: GPTConfig5B/20B/175B (nemo/collections/llm/gpt/model/base.py at 8e3d65d) and the launcher yamls (ffn 4h,
#: learned positions, LayerNorm, biases, tied embeddings, GPT2BPETokenizer). Nemotron: Nemotron3Config8B,
#: Nemotron4Config22B, Nemotron4Config340B (nemo/collections/llm/gpt/model/nemotron.py at 8e3d65d: squared-ReLU
#: non-gated MLP, LayerNorm (zero-centred gamma), RoPE on half the head, untied embeddings, no linear biases)
#: with the 256K SentencePiece tokenizer the yamls name (nemotron_2_256k.model; 256,000 tokens, Nemotron-4 15B
#: report, arXiv:2402.16819 sec. 2.2). Llama: the Hugging Face configs the presets copy; the launcher yamls have
#: the same shapes (Llama 3: library huggingface, meta-llama/Meta-Llama-3-8B / -70B, 128,256 tokens).
MODELS = {
    "GPT3-5B": ("gpt3-5b-nemo", "gpt3/5b", 50257, {"n_layers": 24, "d_model": 4096, "n_heads": 32}, None, False, False),
    "GPT3-20B": ("gpt3-20b-nemo", "gpt3/20b", 50257, {"n_layers": 44, "d_model": 6144, "n_heads": 48}, None, True,
                 False),
    "GPT3-175B": ("gpt3-175b-nemo", "gpt3/175b_fp8", 50257, {"n_layers": 96, "d_model": 12288, "n_heads": 96}, None,
                  False, True),
    "LLAMA2-7B": ("llama-2-7b", "llama/llama2_7b", 32000, None, None, False, False),
    "LLAMA2-13B": ("llama-2-13b", "llama/llama2_13b", 32000, None, None, False, True),
    "LLAMA2-70B": ("llama-2-70b", "llama/llama2_70b", 32000, None, None, True, True),
    "Nemotron-8B": ("nemotron-3-8b-nemo", "nemotron/nemotron_8b", 256000,
                    {"n_layers": 32, "d_model": 4096, "n_heads": 32, "d_ff": 16384}, None, True, False),
    "Nemotron-22B": ("nemotron-4-22b-nemo", "nemotron/nemotron_22b", 256000,
                     {"n_layers": 40, "d_model": 6144, "n_heads": 48, "d_ff": 24576}, None, True, True),
    "Nemotron-340B": ("nemotron-4-340b-nemo", "nemotron/nemotron_340b", 256000,
                      {"n_layers": 96, "d_model": 18432, "n_heads": 96, "n_kv_heads": 8, "d_ff": 73728}, "selective",
                      False, False),
    "LLAMA3-8B": ("llama-3.1-8b", "llama/llama3_8b", 128256, None, None, False, False),
    "LLAMA3-70B": ("llama-3.1-70b", "llama/llama3_70b", 128256, None, None, True, True),
}
#: The optimizer's memory as the launcher configs set it (the asset's ``code_conventions``; added after the first
#: plan, which counted the planner's fp8 defaults): NeMo's setup_optimization (megatron_base_model.py) with
#: megatron_amp_O2 and distributed_fused_adam at an fp32 optimizer dtype passes store_params False and
#: store_param_remainders True (a 16-bit remainder of each fp32 master weight: 2 bytes); nemotron_340b.yaml sets
#: the optimizer's dtype and grad_sync_dtype to bf16 (no master copy, bf16 moments, a bf16 gradient buffer);
#: gpt3/175b_fp8.yaml, the launcher's one FP8 pretraining config (the table's rows are FP8), keeps the fp32
#: optimizer and sets grad_sync_dtype to bf16 (Apex's contiguous gradient buffer in bf16), as NVIDIA's MLPerf
#: GPT-3 175B NeMo implementation does (mlcommons/training_results_v4.0,
#: NVIDIA/benchmarks/gpt3/implementations/nemo/conf/optim/distributed_fused_adam.yaml). Since the tenth session the
#: nemo profile itself keeps a bf16 gradient buffer (every NVIDIA performance config of NeMo sets grad_sync_dtype
#: bf16), so the "fp32" entry's rows inherit grad_bytes 2 from the profile.
OPTIMIZER_MEMORY = {"fp32": {"master_weight_bytes": 2.0},
                    "fp32-bf16-grad": {"master_weight_bytes": 2.0, "grad_bytes": 2.0},
                    "bf16": {"master_weight_bytes": 0.0, "optimizer_state_bytes": 2.0, "grad_bytes": 2.0}}
#: Table model -> OPTIMIZER_MEMORY key, where its launcher config differs from the fp32 default.
OPTIMIZER_OF = {"Nemotron-340B": "bf16", "GPT3-175B": "fp32-bf16-grad"}
PRETRAIN_COLUMNS = ("model", "n_gpus", "global_batch", "micro_batch", "seq_len", "tp", "pp", "cp", "vp",
                    "tokens_per_s_per_gpu", "model_tflops_per_gpu", "days_10t_tokens_1k_gpus")
FINETUNE_COLUMNS = ("model", "task", "n_gpus", "global_batch", "micro_batch", "seq_len", "tp", "pp",
                    "tokens_per_s_per_gpu", "model_tflops_per_gpu", "minutes_10m_tokens")


def _int(cell: str) -> int:
    """A cell's integer: '***5***' -> 5, '[888](https://...)' -> 888."""
    return int(cell.strip("*[ ").split("]")[0])


def _float(cell: str) -> float:
    return float(cell.strip("*[ ").split("]")[0])


def parse(text: str) -> list[dict]:
    """Every row of both tables, with its table, line and text."""
    rows, table = [], None
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith("### "):
            table = line[4:].strip().lower()
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] not in MODELS:
            continue
        cols = {"pretraining": PRETRAIN_COLUMNS, "finetuning": FINETUNE_COLUMNS}[str(table)]
        if len(cells) != len(cols):
            raise ValueError(f"line {i}: {len(cells)} cells, expected {len(cols)} for the {table} table")
        rec = dict(zip(cols, cells, strict=True))
        out = {k: (v if k in ("model", "task") else _float(v) if k.startswith(("days", "minutes")) else _int(v))
               for k, v in rec.items()}
        rows.append({"table": table, "line": i, "text": line.rstrip(), **out})
    return rows


def padded_vocab(vocab: int, tp: int) -> int:
    """Megatron's padding (megatron/training/tokenizer/tokenizer.py _vocab_size_with_padding; NeMo's
    make_vocab_size_divisible_by 128 in every launcher yaml): up to a multiple of 128 x TP."""
    m = 128 * tp
    return -(-vocab // m) * m


def record(r: dict, commit: str, date: str, title: str) -> dict:
    name, cfg, vocab, shape, recompute, ub_overlap, p2p_overlap = MODELS[r["model"]]
    ft = r["table"] == "finetuning"
    tag = "" if r["model"] != "GPT3-175B" else f"-g{r['n_gpus']}"
    rid = f"nemo-{commit[:7]}-{'ft-' + r['task'].lower() + '-' if ft else ''}{r['model'].lower()}{tag}"
    run = {"id": rid,
           "source": {"repo": REPO, "file": FILE, "commit": commit, "commit_date": date, "commit_title": title,
                      "line": r["line"], "text": r["text"], "container": "NeMo 24.07", "system": "DGX-H100",
                      "precision": "FP8"},
           "group": "finetuning" if ft else "pretraining", "table_model": r["model"], "model": name,
           "launcher_config": f"launcher_scripts/conf/training/{cfg}.yaml", "vocab_tokenizer": vocab,
           "vocab_padded": padded_vocab(vocab, r["tp"]), "gpu": "h100-sxm",
           **{k: r[k] for k in ("n_gpus", "global_batch", "micro_batch", "seq_len", "tp", "pp")},
           "cp": r.get("cp", 1), "vp": r.get("vp", 1),
           "measured": {k: r[k] for k in ("tokens_per_s_per_gpu", "model_tflops_per_gpu")}}
    if shape:
        run["shape"] = shape
    if r.get("task") != "LoRA":  # LoRA: peft/llama/squad.yaml runs fused_adam with megatron_amp_O2 False
        run["memory_conventions"] = OPTIMIZER_MEMORY[OPTIMIZER_OF.get(r["model"], "fp32")]
    if ft:
        run["task"] = r["task"]
        run["launcher_config"] = ("launcher_scripts/conf/peft/llama/squad.yaml" if r["task"] == "LoRA"
                                  else "launcher_scripts/conf/fine_tuning/llama/squad.yaml")
        run["recompute"] = "none"
        run["measured"]["minutes_10m_tokens"] = r["minutes_10m_tokens"]
    else:
        run["recompute"] = recompute or "none"
        run["launcher_overlaps"] = {"ub_tp_comm_overlap": ub_overlap, "overlap_p2p_comm": p2p_overlap}
        run["measured"]["days_10t_tokens_1k_gpus"] = r["days_10t_tokens_1k_gpus"]
    return run


def main(nemo_git: str) -> None:
    asset = json.loads(OUT.read_text())
    runs = []
    for commit, date, title in VERSIONS:
        text = subprocess.run(["git", "-C", nemo_git, "show", f"{commit}:{FILE}"], check=True, capture_output=True,
                              text=True).stdout
        runs += [record(r, commit, date, title) for r in parse(text)]
    asset["runs"] = runs
    OUT.write_text(json.dumps(asset, indent=1) + "\n")
    print(f"wrote {len(runs)} rows to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
