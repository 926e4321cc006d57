"""scalelab's planner side by side with llm-analysis (cli99/llm-analysis, PyPI ``llm-analysis==0.2.2``) on
the same configurations: the numbers each gives and the time per evaluation.

llm-analysis is installed into its own virtual environment (``$SCALELAB_LLM_ANALYSIS_VENV`` or a folder
in the system temp directory), never into scalelab's, and driven in a subprocess; if it cannot be
installed or run, the script says why and prints scalelab's column alone.

    .venv/bin/python benchmarks/planner_vs_llm_analysis.py

Conventions differ and are stated per row: llm-analysis counts one micro-batch of activations (no
pipeline in-flight factor), no pipeline bubble and no DP/PP communication in its latency; its inter-node
bandwidth for A100 is 200 GB/s (a per-node figure). scalelab's figures are per GPU at the peak stage.

A second section, "Held out", puts both tools' step times beside the published ones on the two held-out
sets (tests/assets/planner_heldout_llm_foundry.json, tests/assets/planner_held_out_gpu_hours.json's Megatron-LM
table), with the rows, the mapping and llm-analysis's settings fixed before the comparison was run
(:data:`LLA_SETTINGS`, :func:`foundry_skip_reason`); ``--all-rows`` prints every row, not only those where
llm-analysis's error is the smaller.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.arch.spec import ModelSpec

LLA_VERSION = "0.2.2"
GiB = 2**30

DRIVER = r'''
import json, sys, time, logging, tempfile, os
logging.disable(logging.CRITICAL)
from llm_analysis.analysis import train
cases = json.load(sys.stdin)
out = []
for c in cases:
    kw = dict(c["kwargs"])
    if "model_json" in c:
        fd, path = tempfile.mkstemp(suffix=".json"); os.write(fd, json.dumps(c["model_json"]).encode()); os.close(fd)
        kw["model_name"] = path
    try:
        d = train(log_level="CRITICAL", **kw)
        n = c.get("repeat", 20)
        t0 = time.perf_counter()
        for _ in range(n):
            train(log_level="CRITICAL", **kw)
        dt = (time.perf_counter() - t0) / n if n else None
        out.append({"ok": True, "time_s": dt, "result": {k: v for k, v in d.items() if isinstance(v, (int, float))}})
    except Exception as e:  # report, do not hide
        out.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
print(json.dumps(out))
'''


def gpt(name: str, L: int, h: int, a: int) -> ModelSpec:
    return ModelSpec(name=name, n_layers=L, d_model=h, n_heads=a, d_ff=4 * h, vocab_size=51200, seq_len=2048,
                     ffn_kind="gelu", norm_kind="layernorm", position_kind="learned", tied_embeddings=True,
                     attn_bias="all", mlp_bias=True)


def lla_model_json(m: ModelSpec) -> dict:
    d = {"name": m.name, "max_seq_len": m.seq_len, "num_layers": m.n_layers, "n_head": m.n_heads,
         "hidden_dim": m.d_model, "vocab_size": m.vocab_size, "ffn_embed_dim": m.d_ff}
    if m.n_kv_heads != m.n_heads:
        d["num_key_value_heads"] = m.n_kv_heads
    return d


def cases() -> list[dict]:
    g175 = gpt("gpt3-175b", 96, 12288, 96)
    g1t = gpt("megatron-1t", 128, 25600, 160)
    g22 = gpt("gpt-22b", 48, 6144, 64)
    llama70 = get_model("llama-2-70b")
    out = []
    # 1. Narayanan 2021 Table 2, first row: days from the measured 153 TFLOP/s.
    out.append(dict(
        name="GPT-3 175B, 384 A100, t8 p12, full recompute, 153 TFLOP/s measured",
        published="84 days (Narayanan 2021 Table 2)", metric="days",
        ours=lambda: plan(g175, get_cluster("a100-80gb", 384),
                          TrainSpec(seq_len=2048, global_batch=1536, total_tokens=300e9),
                          Layout(tp=8, pp=12, recompute="full", flash_attention=False), measured_tflops_per_gpu=153),
        ours_value=lambda p: p.training_days,
        lla=dict(model_json=lla_model_json(g175), kwargs=dict(
            gpu_name="a100-sxm-80gb", dtype_name="w16a16e16", global_batch_size=1536, batch_size_per_gpu=1,
            seq_len=2048, total_num_tokens=300e9, activation_recomputation=2, tp_size=8, pp_size=12,
            total_num_gpus=384, achieved_tflops=153, flash_attn=False)),
        lla_value=lambda d: d["total_training_latency"] / 86400))
    # 2. The same run predicted with no measurement (llm-analysis: its suggested 0.5 flops efficiency).
    out.append(dict(
        name="GPT-3 175B, 384 A100, predicted step time (no measurement)",
        published="81.3 s (153 TFLOP/s implied)", metric="step s",
        ours=lambda: plan(g175, get_cluster("a100-80gb", 384), TrainSpec(seq_len=2048, global_batch=1536),
                          Layout(tp=8, pp=12, recompute="full", flash_attention=False)),
        ours_value=lambda p: p.step_time_s,
        lla=dict(model_json=lla_model_json(g175), kwargs=dict(
            gpu_name="a100-sxm-80gb", dtype_name="w16a16e16", global_batch_size=1536, batch_size_per_gpu=1,
            seq_len=2048, activation_recomputation=2, tp_size=8, pp_size=12, total_num_gpus=384,
            flops_efficiency=0.5, hbm_memory_efficiency=0.9, flash_attn=False)),
        lla_value=lambda d: d["latency_per_iter"]))
    # 3. Korthikanti 2022 Table 5: 22B iteration time, selective + SP.
    out.append(dict(
        name="22B, 8 A100, t8, SP + selective, b=4, predicted step time",
        published="1.10 s (Korthikanti 2022 Table 5)", metric="step s",
        ours=lambda: plan(g22, get_cluster("a100-80gb", 8), TrainSpec(seq_len=2048, global_batch=4),
                          Layout(tp=8, micro_batch=4, sequence_parallel=True, recompute="selective",
                                 flash_attention=False)),
        ours_value=lambda p: p.step_time_s,
        lla=dict(model_json=lla_model_json(g22), kwargs=dict(
            gpu_name="a100-sxm-80gb", dtype_name="w16a16e16", global_batch_size=4, batch_size_per_gpu=4,
            seq_len=2048, activation_recomputation=1, tp_size=8, sp_size=8, total_num_gpus=8,
            flops_efficiency=0.5, hbm_memory_efficiency=0.9, flash_attn=False)),
        lla_value=lambda d: d["latency_per_iter"]))
    # 4. Korthikanti 2022 Fig. 1: 1T activation memory per GPU with SP + selective (p=64 in flight).
    out.append(dict(
        name="1T, 512 A100, t8 p64, SP + selective: activation memory per GPU (scalelab default: no dropout masks)",
        published="26.56 GiB (Korthikanti 2022 Fig. 1)", metric="GiB",
        ours=lambda: plan(g1t, get_cluster("a100-80gb", 512), TrainSpec(seq_len=2048, global_batch=512),
                          Layout(tp=8, pp=64, sequence_parallel=True, recompute="selective", flash_attention=False)),
        ours_value=lambda p: p.memory.activations_bytes / GiB,
        lla=dict(model_json=lla_model_json(g1t), kwargs=dict(
            gpu_name="a100-sxm-80gb", dtype_name="w16a16e16", global_batch_size=512, batch_size_per_gpu=1,
            seq_len=2048, activation_recomputation=1, tp_size=8, pp_size=64, sp_size=8, total_num_gpus=512,
            flops_efficiency=0.5, flash_attn=False)),
        lla_value=lambda d: d["activation_memory_per_gpu"] / GiB))
    # 5. Llama-2-70B, 64 A100, TP8 + ZeRO-1: memory and step time (no published figure: side by side only).
    out.append(dict(
        name="Llama-2-70B, 64 A100, t8 dp8 ZeRO-1, s=4096, GBS 512: total memory per GPU (llm-analysis: its "
             "shipped config, d_ff 32768)",
        published="-", metric="GiB",
        ours=lambda: plan(llama70, get_cluster("a100-80gb", 64), TrainSpec(seq_len=4096, global_batch=512),
                          Layout(tp=8, zero=1, sequence_parallel=True, recompute="selective")),
        ours_value=lambda p: p.memory.total_bytes / GiB,
        # llm-analysis rejects d_ff=28672 ("must be divisible by hidden_dim"); its shipped Llama-2-70B config
        # uses d_ff=32768 (14% more MLP weights), which is what its column evaluates.
        lla=dict(kwargs=dict(
            model_name="upstage_Llama-2-70b-instruct-v2",
            gpu_name="a100-sxm-80gb", dtype_name="w16a16e16", global_batch_size=512, batch_size_per_gpu=1,
            seq_len=4096, activation_recomputation=1, tp_size=8, sp_size=8, ds_zero=1, total_num_gpus=64,
            flops_efficiency=0.5, flash_attn=True, mlp_gated_linear_units=True)),
        lla_value=lambda d: d["(weight+op_state+grad+act)_memory_per_gpu"] / GiB))
    out.append(dict(
        name="Llama-2-70B, same: predicted step time",
        published="-", metric="step s",
        ours=out[-1]["ours"], ours_value=lambda p: p.step_time_s,
        lla=out[-1]["lla"], lla_value=lambda d: d["latency_per_iter"]))
    return out


#: llm-analysis's settings for every held-out row, fixed before any held-out row was compared: the values its
#: README recommends "if one has to make assumptions" (section "How to Set FLOPS and Memory Efficiency": flops
#: efficiency "up to 0.5 for large scale model training", "0.9 can be an aggressive target for memory
#: efficiency"), as the predicted rows of :func:`cases` use; not its defaults (1 and 1, which that README calls
#: "the lower bound of training or inference latency"). Neither tool is tuned on the rows. llm-analysis 0.2.2's
#: training latency is FLOPs / (tp x pp x flops efficiency x peak) per micro-batch times the accumulation steps
#: (``LLMAnalysis.training``), so the HBM efficiency does not enter it.
LLA_SETTINGS = {"flops_efficiency": 0.5, "hbm_memory_efficiency": 0.9}
#: scalelab catalog device -> llm-analysis gpu_configs name (the A100s and the H100 as SXM, as the asset assumes).
LLA_GPU = {"h100-sxm": "h100-sxm-80gb", "a100-80gb": "a100-sxm-80gb", "a100-40gb": "a100-sxm-40gb"}
LLA_ZERO = {"FULL_SHARD": 3, "SHARD_GRAD_OP": 2}  # torch FSDP sharding -> llm-analysis ds_zero


def foundry_skip_reason(run: dict) -> str | None:
    """Why llm-analysis cannot express an llm-foundry row, or None: the rule fixed before the comparison was run
    is every row whose GPU is in llm-analysis's gpu_configs, whose precision it has (bf16: ``w16a16e16``; its
    8-bit dtypes are integer quantization at ``peak_i8_TFLOPS``, not TransformerEngine FP8 training), whose
    sharding is a ZeRO stage (FULL_SHARD = 3, SHARD_GRAD_OP = 2) and which offloads no activations."""
    if run["gpu"] not in LLA_GPU:
        return f"GPU {run['gpu']} not in llm-analysis's gpu_configs"
    if "fp8" in run["precision"]:
        return "FP8 (llm-analysis has no FP8 training dtype)"
    if run["sharding"] not in LLA_ZERO:
        return f"sharding {run['sharding']} is no ZeRO stage"
    if run["activation_cpu_offload"]:
        return "activation CPU offload (not in llm-analysis)"
    return None


def _foundry_held_out() -> tuple[list[dict], dict[str, int]]:
    """The llm-foundry rows llm-analysis can express, each with scalelab's plan (the profile of the attention kernel
    its table ran, ``llm-foundry`` or ``llm-foundry-triton``, as benchmarks/planner_validation.py plans them) and
    llm-analysis's inputs: the row's micro-batch, accumulation steps, global batch, sequence length, GPUs, ZeRO
    stage, full recompute for activation checkpointing, flash attention (every table ran a fused kernel)."""
    import _heldout_llm_foundry as hf  # benchmarks/, on sys.path when this file runs as a script

    data = hf.load()
    rows, skipped = [], {}
    for r in data["runs"]:
        why = foundry_skip_reason(r)
        if why is not None:
            skipped[why] = skipped.get(why, 0) + 1
            continue
        key = data["tables"][r["source"]["table"]]["key"]
        rows.append(dict(
            group=f"llm-foundry {key}", id=r["id"].removeprefix("foundry-"), hfu_pct=r["measured"]["hfu_pct"],
            published_s=r["global_batch"] * r["seq_len"] / r["measured"]["tokens_per_s"], plan=hf.plan_row(r),
            replan=lambda run=r, **o: hf.plan_row(run, **o),
            lla=dict(model_json=lla_model_json(hf.mpt(r)), repeat=0, kwargs=dict(
                gpu_name=LLA_GPU[r["gpu"]], dtype_name="w16a16e16", global_batch_size=r["global_batch"],
                batch_size_per_gpu=r["micro_batch"], gradient_accumulation_steps=r["grad_accum"],
                seq_len=r["seq_len"], activation_recomputation=2 if r["activation_checkpointing"] else 0,
                ds_zero=LLA_ZERO[r["sharding"]], total_num_gpus=r["n_gpus"], flash_attn=True, **LLA_SETTINGS))))
    return rows, skipped


def _megatron_held_out() -> list[dict]:
    """Every row of Megatron-LM's H100 table with its published TP/PP/DP, sequence parallelism, ZeRO-1 (the
    distributed optimizer), no recompute, micro-batch 1 (the asset's assumptions, the same for both tools);
    scalelab's plan as benchmarks/planner_validation.py makes it (megatron profile with the published TP
    overlap)."""
    import _gpu_hours as gh  # benchmarks/, on sys.path when this file runs as a script

    mlm = gh.load()["megatron_readme"]
    return [dict(
        group="Megatron-LM H100", id=c["name"], hfu_pct=c["mfu_pct"], published_s=gh.megatron_step_time_s(c, mlm),
        plan=gh.megatron_plan(c, mlm), replan=lambda c=c, **o: gh.megatron_plan(c, mlm, **o),
        lla=dict(model_json=lla_model_json(gh.megatron_model(c, mlm)), repeat=0, kwargs=dict(
            gpu_name=LLA_GPU[mlm["gpu"]], dtype_name="w16a16e16", global_batch_size=c["global_batch"],
            batch_size_per_gpu=1, seq_len=mlm["seq_len"], activation_recomputation=0, ds_zero=1, tp_size=c["tp"],
            pp_size=c["pp"], sp_size=c["tp"], total_num_gpus=c["n_gpus"], flash_attn=True, **LLA_SETTINGS)))
        for c in mlm["cases"]]


def held_out_cases() -> dict:
    """The held-out rows both tools evaluate, and the llm-foundry rows left out with the reason."""
    foundry, skipped = _foundry_held_out()
    return {"rows": foundry + _megatron_held_out(), "skipped": skipped}


def _med_max(e: list[float]) -> str:
    a = [abs(x) for x in e]
    return f"{statistics.median(a) * 100:.1f}% | {max(a) * 100:.1f}%" if a else "n/a | n/a"


def _shares(h: dict) -> tuple[float, float]:
    """What the planner's step puts in the mechanisms behind its largest held-out errors: the attention core (the
    step at half the device's attention efficiency, less the step) and the DP/FSDP traffic over the step."""
    p = h["plan"]
    half = h["replan"](attention_efficiency=(p.options.get("attention_efficiency")
                                             or p.cluster.gpu.attention_efficiency) / 2)
    return half.step_time_s / p.step_time_s - 1, p.time.dp_total_s / p.step_time_s


def _mechanism(h: dict, att: float, dp: float) -> str:
    """The scalelab mechanism a row's error points at, by the bins benchmarks/planner_validation.py uses for the
    llm-foundry what-ifs (attention >= 25% of the step; DP/FSDP traffic >= 20%), and the error's sign."""
    if h["ours"] < 0 and att >= 0.25:
        return "attention core too fast"
    if h["ours"] < 0 and dp >= 0.2:
        return "DP/FSDP traffic hidden"
    if h["ours"] > 0 and dp >= 0.2:
        return "DP traffic exposed"
    return "GEMM efficiency (one per device)"


def held_out(held: dict, results: list[dict], *, all_rows: bool = False) -> None:
    """Both tools' |step-time error| against the published step time per group, the rows where llm-analysis's is
    the smaller, and why; scalelab's column alone where llm-analysis did not run."""
    rows = held["rows"]
    for h, lr in zip(rows, results, strict=True):
        h["ours"] = h["plan"].step_time_s / h["published_s"] - 1
        h["theirs"] = lr["result"]["latency_per_iter"] / h["published_s"] - 1 if lr.get("ok") else None
        h["error"] = None if lr.get("ok") else lr.get("error")
    print("\n### Held out: llm-foundry's MPT tables and Megatron-LM's H100 table, both tools\n")
    print(f"llm-analysis settings (fixed before comparing, its README's recommended values): {LLA_SETTINGS}; "
          "rows: every llm-foundry row llm-analysis can express (foundry_skip_reason) and all 9 Megatron-LM rows; "
          "step-time error = predicted / published - 1 (positive: predicted too slow)")
    for why, n in held["skipped"].items():
        print(f"left out: {n} llm-foundry rows, {why}")
    print("\n| group | rows | both evaluated | scalelab median | max | llm-analysis median | max | "
          "scalelab's no larger |")
    print("|---|---|---|---|---|---|---|---|")
    groups = [*dict.fromkeys(h["group"] for h in rows), "all llm-foundry", "all"]
    for g in groups:
        gr = [h for h in rows if h["group"] == g or g == "all" or (g == "all llm-foundry" and "foundry" in h["group"])]
        both = [h for h in gr if h["theirs"] is not None]
        wins = sum(abs(h["ours"]) <= abs(h["theirs"]) for h in both)
        print(f"| {g} | {len(gr)} | {len(both)} | {_med_max([h['ours'] for h in gr])} | "
              f"{_med_max([h['theirs'] for h in both])} | {wins if both else 'n/a'} |")
    hfu = sorted(h["hfu_pct"] for h in rows)
    eff = LLA_SETTINGS["flops_efficiency"]
    print(f"\nmeasured HFU (MFU for Megatron-LM: no recompute) over these rows: median {statistics.median(hfu):.1f}%, "
          f"range {hfu[0]:g}-{hfu[-1]:g}%; llm-analysis's latency is its FLOPs at {eff:.0%} of peak, with no "
          "communication")
    lost = [h for h in rows if h["theirs"] is not None and abs(h["ours"]) > abs(h["theirs"])]
    shown = rows if all_rows else lost
    if not any(h["theirs"] is not None for h in rows):
        shown = []
    why: dict[str, int] = {}
    if shown:
        print(f"\n{'every row' if all_rows else 'rows where llm-analysis is closer'} ({len(shown)}): attention, DP "
              "traffic: shares of scalelab's step; mechanism: what scalelab's error points at (_mechanism)\n")
        print("| group | run | layout | measured HFU | scalelab | llm-analysis | attention | DP traffic | mechanism |")
        print("|---|---|---|---|---|---|---|---|---|")
    for h in shown:
        att, dp = _shares(h)
        mech = _mechanism(h, att, dp)
        if h in lost:
            why[mech] = why.get(mech, 0) + 1
        theirs = f"{h['theirs'] * 100:+.1f}%" if h["theirs"] is not None else "n/a"
        print(f"| {h['group']} | {h['id']} | {h['plan'].layout.short()} | {h['hfu_pct']:g}% | {h['ours'] * 100:+.1f}% "
              f"| {theirs} | {att * 100:.0f}% | {dp * 100:.0f}% | {mech} |")
    if why:
        print("\nrows where llm-analysis is closer, by mechanism: " + ", ".join(f"{k} {n}" for k, n in why.items()))
    failed = [h for h in rows if h["error"] is not None]
    if failed:
        print(f"\nllm-analysis could not evaluate {len(failed)} held-out rows (scalelab's column alone): "
              f"{failed[0]['error']}")


def ensure_llm_analysis() -> tuple[Path | None, str]:
    """A python with llm-analysis installed, or None and the reason."""
    venv = Path(os.environ.get("SCALELAB_LLM_ANALYSIS_VENV",
                               Path(tempfile.gettempdir()) / f"scalelab-llm-analysis-{LLA_VERSION}"))
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    check = [str(py), "-c", "import llm_analysis.analysis"]
    if py.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return py, f"llm-analysis {LLA_VERSION} (existing venv {venv})"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", f"llm-analysis=={LLA_VERSION}"],
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            return None, f"pip install llm-analysis=={LLA_VERSION} failed: {r.stderr.strip()[-400:]}"
        r = subprocess.run(check, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            return None, f"llm-analysis installed but does not import: {r.stderr.strip()[-400:]}"
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"could not create a venv for llm-analysis: {e}"
    return py, f"llm-analysis {LLA_VERSION} (new venv {venv})"


def run_llm_analysis(py: Path | None, how: str, lla_cases: list[dict]) -> list[dict]:
    """llm-analysis's result for each case, all in one subprocess; where it cannot run (no venv: ``py`` None,
    the driver failing or timing out), one ``{"ok": False, "error": ...}`` per case, so the caller prints
    scalelab's column alone."""
    if py is None:
        return [{"ok": False, "error": how}] * len(lla_cases)
    try:
        r = subprocess.run([str(py), "-c", DRIVER], input=json.dumps(lla_cases), capture_output=True, text=True,
                           timeout=900)
    except (OSError, subprocess.SubprocessError) as e:
        return [{"ok": False, "error": f"driver could not run: {e}"}] * len(lla_cases)
    if r.returncode != 0:
        return [{"ok": False, "error": f"driver failed: {r.stderr.strip()[-300:]}"}] * len(lla_cases)
    return json.loads(r.stdout.strip().splitlines()[-1])


def published_cases(cs: list[dict], lla_results: list[dict]) -> None:
    """The side-by-side table of :func:`cases`: values and time per evaluation."""
    print("| configuration | metric | published | scalelab | llm-analysis | scalelab us/eval | llm-analysis us/eval |")
    print("|---|---|---|---|---|---|---|")
    notes = []
    for c, lr in zip(cs, lla_results, strict=True):
        c["ours"]()  # warm
        n = 50
        t0 = time.perf_counter()
        for _ in range(n):
            p = c["ours"]()
        ours_t = (time.perf_counter() - t0) / n
        ours_v = c["ours_value"](p)
        if lr.get("ok"):
            lla_v, lla_t = f"{c['lla_value'](lr['result']):.3g}", f"{lr['time_s'] * 1e6:.0f}"
        else:
            lla_v, lla_t = "n/a", "n/a"
            notes.append(f"{c['name']}: {lr.get('error')}")
        print(f"| {c['name']} | {c['metric']} | {c['published']} | {ours_v:.3g} | {lla_v} "
              f"| {ours_t * 1e6:.0f} | {lla_t} |")
    for note in notes:
        print(f"\nllm-analysis could not evaluate: {note}")


def main() -> None:
    cs = cases()
    held = held_out_cases()
    py, how = ensure_llm_analysis()
    results = run_llm_analysis(py, how, [c["lla"] for c in cs] + [h["lla"] for h in held["rows"]])
    print(f"llm-analysis: {how}\n")
    published_cases(cs, results[:len(cs)])
    held_out(held, results[len(cs):], all_rows="--all-rows" in sys.argv[1:])


if __name__ == "__main__":
    main()
