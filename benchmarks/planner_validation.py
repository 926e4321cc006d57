"""Every planner validation case against its published figure: expected, got, error. The cases and
their sources are in tests/assets/planner_step_time_published.json (the tests pin the same numbers).

    .venv/bin/python benchmarks/planner_validation.py
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.arch.spec import ModelSpec
from scalelab.planner import FlopConventions, flops_per_step

ASSET = Path(__file__).resolve().parents[1] / "tests" / "assets" / "planner_step_time_published.json"
RUNS = Path(__file__).resolve().parents[1] / "tests" / "assets" / "planner_published_runs.json"


def gpt(c: dict, data: dict) -> ModelSpec:
    return ModelSpec(name=c["name"], n_layers=c["n_layers"], d_model=c["d_model"], n_heads=c["n_heads"],
                     d_ff=4 * c["d_model"], vocab_size=data["vocab_size"], seq_len=data["seq_len"], ffn_kind="gelu",
                     norm_kind="layernorm", position_kind="learned", tied_embeddings=True, attn_bias="all",
                     mlp_bias=True)


def main() -> None:
    data = json.loads(ASSET.read_text())
    gpu = data["gpu"]
    s = data["seq_len"]

    print(f"GPU {gpu}: matmul_efficiency {get_cluster(gpu, 8).gpu.matmul_efficiency} (catalog default)\n")
    print("### MFU / HFU from measured iteration times (Korthikanti et al. 2022, Table 5; tolerance 0.3 points)\n")
    print("| model | GPUs | time s | MFU paper | MFU got | HFU paper | HFU got |")
    print("|---|---|---|---|---|---|---|")
    k5 = data["korthikanti_table5"]
    for c in k5["cases"]:
        lay = Layout(tp=c["tp"], pp=c["pp"], interleave=c["interleave"], micro_batch=c["micro_batch"],
                     sequence_parallel=True, recompute="selective", flash_attention=False)
        train = TrainSpec(seq_len=s, global_batch=c["global_batch"])
        p = plan(gpt(c, data), get_cluster(gpu, c["n_gpus"]), train, lay, measured_step_time_s=c["iteration_s"],
                 conventions=FlopConventions(selective_recompute_passes=3))
        print(f"| {c['name']} | {c['n_gpus']} | {c['iteration_s']} | {c['mfu_pct']} | {p.mfu * 100:.1f} | "
              f"{c['hfu_pct']} | {p.hfu * 100:.1f} |")

    print("\n### Days for 300B tokens from published TFLOP/s (Narayanan et al. 2021, Table 2; tolerance 1 day)\n")
    print("| model | GPUs | TFLOP/s | days paper | days got | error |")
    print("|---|---|---|---|---|---|")
    n2 = data["narayanan_table2"]
    for c in n2["cases"]:
        p = plan(gpt(c, data), get_cluster(gpu, c["n_gpus"]),
                 TrainSpec(seq_len=s, global_batch=c["global_batch"], total_tokens=n2["total_tokens"]),
                 Layout(tp=c["tp"], pp=c["pp"], recompute="full", flash_attention=False),
                 measured_tflops_per_gpu=c["tflops_per_gpu"])
        print(f"| {c['name'].split('-')[0]} | {c['n_gpus']} | {c['tflops_per_gpu']} | {c['days']} | "
              f"{p.training_days:.1f} | {p.training_days - c['days']:+.1f} |")

    print("\n### Predicted step time, default efficiencies, no measured input (median |error| <= 10%, max <= 20%)\n")
    print("| case | GPUs | layout | published s | predicted s | error | bubble s | TP s | DP exposed s |")
    print("|---|---|---|---|---|---|---|---|---|")
    errors = []
    rows = []
    for c in k5["cases"]:
        lay = Layout(tp=c["tp"], pp=c["pp"], interleave=c["interleave"], micro_batch=c["micro_batch"],
                     sequence_parallel=True, recompute="selective", flash_attention=False)
        rows.append((f"Korthikanti T5 {c['name']}", gpt(c, data), c["n_gpus"],
                     TrainSpec(seq_len=s, global_batch=c["global_batch"]), lay, c["iteration_s"]))
    for c in data["narayanan_table1"]["cases"]:
        m = gpt(c, data)
        train = TrainSpec(seq_len=s, global_batch=c["global_batch"])
        implied = flops_per_step(m, train, recompute="full").hardware / (c["n_gpus"] * c["tflops_per_gpu"] * 1e12)
        rows.append((f"Narayanan T1 {c['name']}", m, c["n_gpus"], train,
                     Layout(tp=c["tp"], pp=c["pp"], recompute="full", flash_attention=False), implied))
    for name, m, n, train, lay, expected in rows:
        p = plan(m, get_cluster(gpu, n), train, lay)
        err = (p.step_time_s - expected) / expected
        errors.append(abs(err))
        t = p.time
        print(f"| {name} | {n} | {p.layout.short()} | {expected:.3g} | {p.step_time_s:.3g} | {err * 100:+.1f}% | "
              f"{t.bubble_s:.3g} | {t.tp_s:.3g} | {t.dp_exposed_s:.3g} |")
    print(f"\nmedian |error| {statistics.median(errors) * 100:.1f}%, max |error| {max(errors) * 100:.1f}% "
          f"over {len(errors)} runs")

    print("\n### Out of sample: torchtitan FSDP on 64 A100 (docs/performance.md; set nothing; tolerance 15%)\n")
    print("| model | recompute | published tok/s/GPU | predicted | error (step time) |")
    print("|---|---|---|---|---|")
    tt = data["torchtitan_a100"]
    for c in tt["cases"]:
        p = plan(get_model(c["name"]), get_cluster(gpu, c["n_gpus"]),
                 TrainSpec(seq_len=c["seq_len"], global_batch=c["global_batch"]),
                 Layout(zero=3, recompute=c["recompute"]))
        got = p.tokens_per_s / c["n_gpus"]
        print(f"| {c['name']} | {c['recompute']} | {c['tokens_per_s_per_gpu']} | {got:.0f} | "
              f"{(c['tokens_per_s_per_gpu'] / got - 1) * 100:+.1f}% |")

    print("\n### DeepSeek-V3 on 2048 H800 (report section 3.2: PP16 x EP64 x ZeRO-1, no TP)\n")
    print("| layout | feasible | memory GiB | reason |")
    print("|---|---|---|---|")
    ds, cl = get_model("deepseek-v3"), get_cluster("h800", 2048)
    train = TrainSpec(seq_len=4096, global_batch=14336, precision="fp8")
    for lay in (Layout(pp=16, ep=64, zero=1, recompute="full"), Layout(pp=16, ep=64, zero=1, recompute="selective"),
                Layout(zero=1, recompute="full")):
        p = plan(ds, cl, train, lay)
        print(f"| {p.layout.short()} | {p.feasible} | {p.memory.total_bytes / 2**30:.1f} | "
              f"{'; '.join(p.reasons) or '-'} |")


def published_runs() -> None:
    """Production runs of tests/assets/planner_published_runs.json: feasibility, memory against the
    measured GiB, throughput against the published one (no efficiency fitted to any of them)."""
    import dataclasses

    from scalelab.planner import LoRASpec
    from scalelab.planner.frameworks import get_framework

    print("\n### Published production runs (tests/assets/planner_published_runs.json; nothing fitted)\n")
    print("| run | framework | layout | feasible | GiB | measured GiB | error | tok/s/GPU | measured | error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in json.loads(RUNS.read_text())["runs"]:
        model = ModelSpec(**r["model_spec"]) if "model_spec" in r else get_model(r["model"])
        t = dict(r["train"])
        if "lora" in t:
            t["lora"] = LoRASpec(**{**t["lora"], "target_modules": tuple(t["lora"]["target_modules"])})
        conv = dataclasses.replace(get_framework(r["framework"]).memory, **r.get("memory_conventions", {}))
        p = plan(model, get_cluster(r["gpu"], r["n_gpus"], **r.get("gpu_overrides", {})), TrainSpec(**t),
                 Layout(**r["layout"]), framework=r["framework"], memory_conventions=conv)
        meas = r.get("measured", {})
        gib = p.memory.total_bytes / 2**30
        m_gib = meas.get("memory_gib")
        tps = p.tokens_per_s / r["n_gpus"]
        m_tps = meas.get("tokens_per_s_per_gpu")
        if m_tps is None and "tflops_per_gpu" in meas:
            m_tps = meas["tflops_per_gpu"] * 1e12 * r["n_gpus"] / p.hardware_flops_per_step \
                * p.train.global_batch_tokens / r["n_gpus"]
        mem_err = f"{(gib / m_gib - 1) * 100:+.1f}%" if m_gib else "-"
        tps_err = f"{(tps / m_tps - 1) * 100:+.1f}%" if m_tps else "-"
        print(f"| {r['id']} | {r['framework']} | {p.layout} | {p.feasible} | {gib:.1f} | {m_gib or '-'} | {mem_err} "
              f"| {tps:.0f} | {f'{m_tps:.0f}' if m_tps else '-'} | {tps_err} |")
        if "gpu_hours" in meas:
            print(f"|   GPU-hours for {p.train.total_tokens:.3g} tokens | | | | | | | {p.gpu_hours / 1e6:.2f}M | "
                  f"{meas['gpu_hours'] / 1e6:.3f}M | {(p.gpu_hours / meas['gpu_hours'] - 1) * 100:+.1f}% |")


if __name__ == "__main__":
    main()
    published_runs()
