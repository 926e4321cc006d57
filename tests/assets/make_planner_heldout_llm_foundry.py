"""Regenerate tests/assets/planner_heldout_llm_foundry.json from MosaicML llm-foundry's published MPT
throughput tables (scripts/train/benchmarking/README.md). Run from the repository root with the README read
out of a clone or mirror of mosaicml/llm-foundry:

    git -C <llm-foundry> show 8c8dd48f72168c5d51e2f7b151595892a8fba43d:scripts/train/benchmarking/README.md \\
        > /tmp/README.md
    .venv/bin/python tests/assets/make_planner_heldout_llm_foundry.py /tmp/README.md

Selection rule, fixed before any row was planned: every row of every table in the file (no row is left out).
The script copies each row's cells unchanged and adds only what the row's table or llm-foundry's code says
(model shapes from scripts/train/yamls/pretrain/mpt-*.yaml, the catalog device of each ``GPU`` cell).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "planner_heldout_llm_foundry.json"
REPO = "mosaicml/llm-foundry"
FILE = "scripts/train/benchmarking/README.md"
COMMIT = "8c8dd48f72168c5d51e2f7b151595892a8fba43d"  # HEAD of the mirror read on 2026-11-30 (2025-07-21)

#: Table heading -> (short key, commit that last wrote its rows (git blame), what that commit's scripts ran,
#: attention kernel, FSDP backward prefetch). submit_benchmarks.py at b2a43a1 and ef350d9 defaults
#: ``--attn_impl`` to 'triton' and leaves ``backward_prefetch`` / ``forward_prefetch`` unset, so Composer's
#: defaults apply (composer/trainer/dist_strategy.py v0.15-0.16: ``setdefault('backward_prefetch',
#: 'BACKWARD_POST')``, ``setdefault('forward_prefetch', False)``); sweep.py at 5e85bd6 passes ``--attn_impl
#: flash --fsdp_config_backward_prefetch BACKWARD_PRE --fsdp_config_forward_prefetch true``.
_OLD = ("triton (submit_benchmarks.py default)", "BACKWARD_POST (Composer's default; the scripts set none)")
TABLES = {
    "H100 80GB BF16 (Large Scale, >= 128 GPUs)": (
        "h100-large", "5e85bd62d4ec9e13353ca95877477602ab538e5b",
        "added 2024-01-06 (pull request #838) with sweep.py", "flash (sweep.py)", "BACKWARD_PRE (sweep.py)"),
    "H100 80GB BF16": (
        "h100", "b2a43a1477a45f40f4086a1c72f851b0ab42d0ac",
        "added 2023-10-19 (pull request #543); llm-foundry v0.3.0 (composer>=0.16.3,<0.17, flash-attn 1.0.9)",
        *_OLD),
    "H100 80GB FP8": (
        "h100-fp8", "b2a43a1477a45f40f4086a1c72f851b0ab42d0ac",
        "added 2023-10-19 (pull request #543); fp8 runs install flash-attn 1.0.7 and TransformerEngine v0.10",
        *_OLD),
    "A100 80GB with 1600 Gbps node-node interconnect (RoCE)": (
        "a100-80gb", "b2a43a1477a45f40f4086a1c72f851b0ab42d0ac",
        "rows rewritten 2023-10-19 (pull request #543, amp_bf16 / DEFAULT); table first added 2023-07-05 (ef350d9)",
        *_OLD),
    "A100 40GB with 1600 Gbps node-node interconnect (RoCE)": (
        "a100-40gb", "b2a43a1477a45f40f4086a1c72f851b0ab42d0ac",
        "rows of 2023-07-05 (ef350d9, bf16 / PURE); 2023-10-19 (pull request #543) only added the Model TFLOP "
        "column", *_OLD),
}

#: MPT sizes as the benchmark ran them: scripts/train/yamls/pretrain/mpt-<size>.yaml (d_model, n_heads,
#: n_layers; expansion_ratio 4, vocab_size 50368). MPTConfig defaults (llmfoundry/models/mpt/
#: configuration_mpt.py): learned_pos_emb=True, no_bias=False, tie_word_embeddings=True, low_precision_layernorm
#: (weight and bias), GELU MLP ('mptmlp'); the yamls set no alibi. These reproduce the table's NumParams exactly.
SHAPES = {"125m": (768, 12, 12), "350m": (1024, 16, 24), "760m": (1536, 12, 24), "1b": (2048, 16, 24),
          "3b": (2560, 20, 32), "7b": (4096, 32, 32), "13b": (5120, 40, 40), "30b": (7168, 56, 48),
          "70b": (8192, 64, 80)}
GPUS = {"h100_80gb": "h100-sxm", "a100_80gb": "a100-80gb", "a100_40gb": "a100-40gb"}
COLUMNS = ("model", "seq_len", "n_gpus", "gpu", "mfu_pct", "hfu_pct", "model_tflops", "micro_batch", "grad_accum",
           "global_batch", "samples_per_s", "tokens_per_s", "tokens_per_s_per_gpu", "global_batch_tokens",
           "precision", "mp_mode", "sharding", "activation_checkpointing", "activation_cpu_offload", "n_params")


def parse(text: str) -> list[dict]:
    """Every table row of the README, keyed by :data:`COLUMNS`, with its table's heading and line number."""
    rows, table = [], None
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith("## "):
            table = line[3:].strip()
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != len(COLUMNS) or cells[0] not in SHAPES:
            continue
        if table not in TABLES:
            raise ValueError(f"row at line {i} is under an unknown table {table!r}; allowed: {list(TABLES)}")
        rows.append({"table": table, "line": i, **dict(zip(COLUMNS, cells, strict=True))})
    return rows


def row_record(r: dict, seen: dict[str, int]) -> dict:
    """One asset row: the README's cells (typed), the catalog device, the model's shape and provenance."""
    key, blame = TABLES[r["table"]][:2]
    rid = f"foundry-{key}-mpt-{r['model']}-s{r['seq_len']}-g{r['n_gpus']}-mb{r['micro_batch']}"
    seen[rid] = seen.get(rid, 0) + 1
    d, h, n_layers = SHAPES[r["model"]]
    return {
        "id": rid if seen[rid] == 1 else f"{rid}-{seen[rid]}",
        "source": {"repo": REPO, "file": FILE, "commit": COMMIT, "rows_last_changed_in": blame,
                   "table": r["table"], "line": r["line"]},
        "model": f"mpt-{r['model']}", "shape": {"d_model": d, "n_heads": h, "n_layers": n_layers},
        "gpu": GPUS[r["gpu"]], "gpu_cell": r["gpu"], "n_gpus": int(r["n_gpus"]), "seq_len": int(r["seq_len"]),
        "micro_batch": int(r["micro_batch"]), "grad_accum": int(r["grad_accum"]),
        "global_batch": int(r["global_batch"]), "global_batch_tokens": int(r["global_batch_tokens"]),
        "precision": r["precision"], "mp_mode": r["mp_mode"], "sharding": r["sharding"],
        "activation_checkpointing": r["activation_checkpointing"] == "True",
        "activation_cpu_offload": r["activation_cpu_offload"] == "True", "n_params": int(r["n_params"]),
        "measured": {"mfu_pct": float(r["mfu_pct"]), "hfu_pct": float(r["hfu_pct"]),
                     "model_tflops": float(r["model_tflops"]), "samples_per_s": float(r["samples_per_s"]),
                     "tokens_per_s": float(r["tokens_per_s"]),
                     "tokens_per_s_per_gpu": float(r["tokens_per_s_per_gpu"])},
    }


ABOUT = (
    "Held-out check of the planner (issue 9): MosaicML llm-foundry's published MPT training throughput, every "
    "row of every table of " + FILE + " at " + COMMIT + " (216 rows, five tables; selection rule fixed before "
    "any row was planned: all rows, none left out). Nothing in the planner was fitted on these rows. Each row "
    "keeps the README's cells unchanged (measured MFU/HFU in percent, Model TFLOP per GPU, samples/s, tokens/s, "
    "tokens/s/GPU) and names the table, line, file commit and the commit that last wrote the row (git blame). "
    "Global batch = micro_batch x grad_accum x n_gpus in every row (the README's micro-batching note: a "
    "micro-batch that does not divide the batch accumulates a short last one)."
)

PLANNER_INPUTS = {
    "framework": "deepspeed (eager PyTorch modules, ZeRO; chosen before any row was planned: llm-foundry runs "
                 "MPT's own eager modules under Composer's FSDP1, no torch.compile)",
    "layout": "FULL_SHARD -> zero=3, SHARD_GRAD_OP -> zero=2 (torch.distributed.fsdp.ShardingStrategy: FULL_SHARD "
              "shards parameters, gradients and optimizer states; SHARD_GRAD_OP shards gradients and optimizer "
              "states and keeps parameters gathered from forward to the end of backward); Activation "
              "Checkpointing True -> recompute='full' (MPTForCausalLM.activation_checkpointing_fn: every "
              "MPTBlock), else 'none'; micro_batch as the row; fused (flash) attention",
    "train": "seq_len, global_batch as the row; precision bf16 (amp_bf16 and bf16), fp8 for amp_fp8",
    "model": "ModelSpec from 'shape' (GPT-style: learned positions, LayerNorm with bias, GELU 4h MLP, biases, "
             "tied embeddings, vocab 50368, seq_len = the row's); n_params() equals the row's NumParams",
    "gpu": "catalog device of the GPU cell: h100_80gb -> h100-sxm (assumed: the table does not say SXM or "
           "PCIe), a100_80gb -> a100-80gb, a100_40gb -> a100-40gb; "
           "the catalog's A100 NICs (8 x 200 Gb/s per node) are the tables' 1600 Gbps per node",
}

CODE_CONVENTIONS = {
    "memory_conventions": {"logits_bytes": 2.0, "logits_copies": 1.0, "logits_output_bytes": 2.0},
    "why": "llm-foundry's loss is flash-attn's fused cross-entropy, not an fp32 copy of the logits: "
           "ComposerMPTCausalLM sets loss_fn = flash_attn.losses.cross_entropy.CrossEntropyLoss when loss_fn is "
           "'fused_crossentropy', its default (llmfoundry/models/mpt/modeling_mpt.py at v0.3.0, lines 721-737; "
           "setup.py pins flash-attn==1.0.9), and the logits are the tied head's bf16 output under autocast "
           "(self.transformer.wte(..., True)). flash-attn v1.0.9 flash_attn/losses/cross_entropy.py: "
           "SoftmaxCrossEntropyLossFn saves the bf16 logits and an fp32 log-sum-exp per row "
           "(ctx.save_for_backward(logits, lse, labels)) and its backward returns one new gradient of the "
           "logits' dtype (xentropy_cuda_lib.backward, inplace_backward=False): 2 + 2 bytes per logit at the "
           "loss's peak, where the deepspeed profile counts Hugging Face's logits.float() and eager "
           "F.cross_entropy (3 fp32 buffers + the bf16 output, 14 bytes).",
}


def main(readme: str) -> None:
    rows = parse(Path(readme).read_text())
    seen: dict[str, int] = {}
    out = {"about": ABOUT, "selection_rule": "all rows of all tables", "planner_inputs": PLANNER_INPUTS,
           "code_conventions": CODE_CONVENTIONS,
           "tables": {t: {"key": k, "rows_last_changed_in": c, "what_ran": w, "attn_impl": a, "backward_prefetch": b}
                      for t, (k, c, w, a, b) in TABLES.items()},
           "runs": [row_record(r, seen) for r in rows]}
    head = json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=1)[:-2]  # one run per line below
    runs = ",\n  ".join(json.dumps(r, separators=(",", ":")) for r in out["runs"])
    OUT.write_text(f'{head},\n "runs": [\n  {runs}\n ]\n}}\n')
    print(f"wrote {len(out['runs'])} rows to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
