"""scalelab's planner side by side with llm-analysis (cli99/llm-analysis, PyPI ``llm-analysis==0.2.2``) on
the same configurations: the numbers each gives and the time per evaluation.

llm-analysis is installed into its own virtual environment (``$SCALELAB_LLM_ANALYSIS_VENV`` or a folder
in the system temp directory), never into scalelab's, and driven in a subprocess; if it cannot be
installed or run, the script says why and prints scalelab's column alone.

    .venv/bin/python benchmarks/planner_vs_llm_analysis.py

Conventions differ and are stated per row: llm-analysis counts one micro-batch of activations (no
pipeline in-flight factor), no pipeline bubble and no DP/PP communication in its latency; its inter-node
bandwidth for A100 is 200 GB/s (a per-node figure). scalelab's figures are per GPU at the peak stage.
"""

from __future__ import annotations

import json
import os
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
        n = 20
        t0 = time.perf_counter()
        for _ in range(n):
            train(log_level="CRITICAL", **kw)
        dt = (time.perf_counter() - t0) / n
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


def main() -> None:
    cs = cases()
    py, how = ensure_llm_analysis()
    lla_results: list[dict] = [{"ok": False, "error": how}] * len(cs)
    if py is not None:
        r = subprocess.run([str(py), "-c", DRIVER], input=json.dumps([c["lla"] for c in cs]), capture_output=True,
                           text=True, timeout=900)
        if r.returncode == 0:
            lla_results = json.loads(r.stdout.strip().splitlines()[-1])
        else:
            lla_results = [{"ok": False, "error": f"driver failed: {r.stderr.strip()[-300:]}"}] * len(cs)
    print(f"llm-analysis: {how}\n")
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


if __name__ == "__main__":
    main()
