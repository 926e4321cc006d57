"""Every planner validation case against its published figure: expected, got, error. The cases and
their sources are in tests/assets/planner_step_time_published.json (the tests pin the same numbers).

    .venv/bin/python benchmarks/planner_validation.py
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path

from _published_runs import load as load_runs  # benchmarks/_published_runs.py, shared with tests/planner
from _published_runs import measured_tokens_per_s_per_gpu, run_plan

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.arch.spec import ModelSpec
from scalelab.errors import ConfigError, explain
from scalelab.planner import FlopConventions, flops_per_step
from scalelab.planner.frameworks import get_framework

ASSET = Path(__file__).resolve().parents[1] / "tests" / "assets" / "planner_step_time_published.json"


def gpt(c: dict, data: dict) -> ModelSpec:
    return ModelSpec(name=c["name"], n_layers=c["n_layers"], d_model=c["d_model"], n_heads=c["n_heads"],
                     d_ff=4 * c["d_model"], vocab_size=data["vocab_size"], seq_len=data["seq_len"], ffn_kind="gelu",
                     norm_kind="layernorm", position_kind="learned", tied_embeddings=True, attn_bias="all",
                     mlp_bias=True)


def main() -> list[float]:
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
    k5_t1_errors = list(errors)

    print("\n### Out of sample: torchtitan FSDP on 64 A100 (docs/performance.md; set nothing; torchtitan profile; "
          "tolerance 15%)\n")
    print("| model | recompute | published tok/s/GPU | predicted | error (step time) | planner defaults | error |")
    print("|---|---|---|---|---|---|---|")
    tt = data["torchtitan_a100"]
    for c in tt["cases"]:
        got = []
        for fw in ("torchtitan", None):  # what ran; the planner's defaults (Megatron's fused kernels)
            p = plan(get_model(c["name"]), get_cluster(gpu, c["n_gpus"]),
                     TrainSpec(seq_len=c["seq_len"], global_batch=c["global_batch"]),
                     Layout(zero=3, recompute=c["recompute"]), framework=fw)
            got.append(p.tokens_per_s / c["n_gpus"])
        print(f"| {c['name']} | {c['recompute']} | {c['tokens_per_s_per_gpu']} | {got[0]:.0f} | "
              f"{(c['tokens_per_s_per_gpu'] / got[0] - 1) * 100:+.1f}% | {got[1]:.0f} | "
              f"{(c['tokens_per_s_per_gpu'] / got[1] - 1) * 100:+.1f}% |")

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
    return k5_t1_errors


#: Runs whose throughput calibrates the framework efficiencies (``FrameworkProfile.efficiency_scale``);
#: every other run with a throughput is held out. The Megatron rows' device efficiency was set on
#: Narayanan et al. 2021 Table 1 (see the catalog's ``efficiency_source``).
CALIBRATION = ("torchtitan-8b-8", "torchtitan-8b-8-compile", "torchtitan-8b-8-compile-float8",
               "torchtitan-8b-a100-64")

#: The step-time acceptance set of issue 9 (the issue calls them 'in-sample'; most are held out from
#: the efficiency calibration above), besides Korthikanti T5 and Narayanan T1.
IN_SAMPLE = ("bloom-176b", "opt-175b", "gpt3-175b-1024", "llama-65b-2048", "torchtitan-8b-8",
             "torchtitan-8b-8-compile", "torchtitan-8b-8-compile-float8", "torchtitan-8b-128",
             "torchtitan-70b-256", "torchtitan-70b-256-asynctp", "torchtitan-405b-512-1f1b",
             "torchtitan-405b-512-interleaved",
             "torchtitan-405b-128", "torchtitan-8b-a100-64",
             "torchtitan-70b-a100-64")

#: Rows of torchtitan's tables added after the acceptance set above was first measured (Table 2's long
#: context with CP, Table 3's compiled runs, Table 6's 4D runs): reported as a second acceptance line.
ADDED_TORCHTITAN = ("torchtitan-8b-128-compile", "torchtitan-8b-128-compile-float8", "torchtitan-8b-8-cp1",
                    "torchtitan-8b-8-cp2", "torchtitan-8b-8-cp4", "torchtitan-8b-8-cp8", "torchtitan-405b-512-cp1",
                    "torchtitan-405b-512-cp2", "torchtitan-405b-512-cp4", "torchtitan-405b-512-cp8")

#: NVIDIA's published NeMo 24.09 runs of Llama 3.1 405B (dgxc-benchmarking v24.11.1, TP8 PP9 CP2 VP7 on
#: 576-2,304 H100, BF16 and FP8), added after the model was built: held out, nothing is fitted on them.
NEMO_405B = tuple(f"nemo-405b-{p}-{n}" for p in ("bf16", "fp8") for n in (576, 1152, 2304))

#: torchtitan's June 2025 benchmark files (pytorch/torchtitan benchmarks/: the PyTorch team's AsyncTP tables on
#: 256 and 64 H100, Trainy's Llama 3.1 8B on 32 and 64 H200), added after everything above was set: the asset's
#: rows with ``"held_out": HELD_OUT_2025``. Held out: nothing is fitted on them.
HELD_OUT_2025 = "torchtitan-2025-06"

FAMILY = {"torchtitan-compile": "torchtitan", "torchtitan-compile-2025": "torchtitan"}


def calibrate(runs: list[dict]) -> dict[str, float]:
    """Per framework family, the efficiency scale in 0.60..1.20 that minimises the median |error| of the
    calibration runs' throughput (a scale within 3% of 1 is reported but not worth a knob)."""
    fams: dict[str, list[dict]] = {}
    for r in runs:
        if r["id"] in CALIBRATION:
            fams.setdefault(FAMILY.get(r["framework"], r["framework"]), []).append(r)
    out = {}
    for fam, rs in fams.items():
        best = (float("inf"), 1.0)
        for k in range(121):
            x = 0.60 + 0.005 * k
            errs = []
            for r in rs:
                p = run_plan(r, x)
                errs.append(abs(p.tokens_per_s / r["n_gpus"] / measured_tokens_per_s_per_gpu(r, p) - 1))
            best = min(best, (statistics.median(errs), x))
        out[fam] = best[1]
    return out


def calibrate_device(runs: list[dict], device: str = "h100-hbm2e", like: str = "h100-sxm") -> float:
    """The factor on ``like``'s matmul and attention efficiencies (0.60..1.20, step 0.01) that minimises the
    median |step-time error| of the calibration runs on ``device``, whose sustained throughput under its
    power cap is not published (the catalog's h100-hbm2e efficiencies are this fit)."""
    ref = get_cluster(like, 8).gpu
    rs = [r for r in runs if r["id"] in CALIBRATION and r["gpu"] == device]
    best = (float("inf"), 1.0)
    for k in range(61):
        x = 0.60 + 0.01 * k
        errs = []
        for r in rs:
            r = {**r, "gpu_overrides": {**r.get("gpu_overrides", {}), "matmul_efficiency": ref.matmul_efficiency * x,
                                        "attention_efficiency": ref.attention_efficiency * x}}
            p = run_plan(r)
            errs.append(abs(measured_tokens_per_s_per_gpu(r, p) / (p.tokens_per_s / r["n_gpus"]) - 1))
        best = min(best, (statistics.median(errs), x))
    return best[1]


def published_runs(k5_t1_errors: list[float]) -> None:
    """Production runs of tests/assets/planner_published_runs.json: feasibility, memory against the
    measured GiB, throughput against the published one; calibration and held-out runs apart."""
    runs = load_runs()["runs"]
    print("\n### Framework efficiency calibration (calibration split: " + ", ".join(CALIBRATION) + ")\n")
    print("| family | fitted efficiency_scale | profile's |")
    print("|---|---|---|")
    for fam, x in calibrate(runs).items():
        print(f"| {fam} | {x:.3f} | {get_framework(fam).efficiency_scale:.3f} |")
    k = calibrate_device(runs)
    g = get_cluster("h100-hbm2e", 8).gpu
    print(f"\nh100-hbm2e (500 W cap, sustained throughput not published): factor on h100-sxm's efficiencies "
          f"fitted on its calibration runs {k:.2f}; catalog matmul {g.matmul_efficiency}, attention "
          f"{g.attention_efficiency} (= {g.matmul_efficiency / get_cluster('h100-sxm', 8).gpu.matmul_efficiency:.2f}"
          f" x h100-sxm's)")

    print("\n### Published production runs (tests/assets/planner_published_runs.json; profiles' settings)\n")
    print("| run | split | framework | layout | feasible | GiB | measured GiB | error | tok/s/GPU | measured | error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    errs: dict[str, list[float]] = {"calibration": [], "held out": []}
    in_sample = list(k5_t1_errors)
    added: list[float] = []
    nemo: list[float] = []
    june_2025: list[float] = []
    mem_rows: list[tuple[str, float]] = []
    gpu_hours: list[float] = []
    infeasible: list[str] = []
    for r in runs:
        p = run_plan(r)
        meas = r.get("measured", {})
        gib = p.memory.total_bytes / 2**30
        m_gib = meas.get("memory_gib")
        tps = p.tokens_per_s / r["n_gpus"]
        m_tps = measured_tokens_per_s_per_gpu(r, p)
        split = "calibration" if r["id"] in CALIBRATION else "held out"
        if m_tps:
            # step-time error (positive = predicted too slow), the sign of the Korthikanti/Narayanan table
            e = m_tps / tps - 1
            errs[split].append(abs(e))
            if r["id"] in IN_SAMPLE:
                in_sample.append(abs(e))
            elif r["id"] in ADDED_TORCHTITAN:
                added.append(abs(e))
            elif r["id"] in NEMO_405B:
                nemo.append(abs(e))
            elif r.get("held_out") == HELD_OUT_2025:
                june_2025.append(abs(e))
        mem_err = f"{(gib / m_gib - 1) * 100:+.1f}%" if m_gib else "-"
        if m_gib:
            mem_rows.append((r["id"], gib / m_gib - 1))
        if not p.feasible:
            infeasible.append(r["id"])
        tps_err = f"{(tps / m_tps - 1) * 100:+.1f}%" if m_tps else "-"
        print(f"| {r['id']} | {split if m_tps else '-'} | {r['framework']} | {p.layout} | {p.feasible} | {gib:.1f} "
              f"| {m_gib or '-'} | {mem_err} | {tps:.0f} | {f'{m_tps:.0f}' if m_tps else '-'} | {tps_err} |")
        if "gpu_hours" in meas:
            gpu_hours.append(p.gpu_hours / meas["gpu_hours"] - 1)
            print(f"|   GPU-hours for {p.train.total_tokens:.3g} tokens | held out | | | | | | | "
                  f"{p.gpu_hours / 1e6:.2f}M | {meas['gpu_hours'] / 1e6:.3f}M | "
                  f"{(p.gpu_hours / meas['gpu_hours'] - 1) * 100:+.1f}% |")
    print("\nthroughput error = predicted / measured - 1 (positive: predicted too fast)")
    for split, e in errs.items():
        print(f"{split}: median |step-time error| {statistics.median(e) * 100:.1f}%, max {max(e) * 100:.1f}% "
              f"over {len(e)} runs")
    med, worst = statistics.median(in_sample), max(in_sample)
    verdict = "met" if med <= 0.08 and worst <= 0.15 else "NOT MET"
    print(f"issue 9 acceptance set (the runs the issue lists as 'in-sample': Korthikanti T5, Narayanan T1 and "
          f"the runs above in IN_SAMPLE; most are held out from the efficiency calibration): median "
          f"{med * 100:.1f}%, max {worst * 100:.1f}% over {len(in_sample)} runs (target median <= 8%, "
          f"max <= 15%): {verdict}")
    ext = in_sample + added
    print(f"the same with the {len(added)} rows of torchtitan's Tables 2, 3 and 6 added (ADDED_TORCHTITAN): median "
          f"{statistics.median(ext) * 100:.1f}%, max {max(ext) * 100:.1f}% over {len(ext)} runs: "
          f"{'met' if statistics.median(ext) <= 0.08 and max(ext) <= 0.15 else 'NOT MET'}")
    if nemo:
        print(f"NVIDIA NeMo 24.09 Llama 3.1 405B runs (NEMO_405B, held out, nemo profile): median "
              f"{statistics.median(nemo) * 100:.1f}%, max {max(nemo) * 100:.1f}% over {len(nemo)} runs")
    if june_2025:
        print(f"torchtitan's June 2025 benchmark files (HELD_OUT_2025, held out; section below): median "
              f"{statistics.median(june_2025) * 100:.1f}%, max {max(june_2025) * 100:.1f}% over {len(june_2025)} runs")
    acceptance_summary(med, worst, mem_rows, gpu_hours, infeasible, ext)


def acceptance_summary(med: float, worst: float, mem_rows: list[tuple[str, float]], gpu_hours: list[float],
                       infeasible: list[str], ext: list[float]) -> None:
    """Issue 9's acceptance items that this benchmark measures, one line each."""
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    print("\n### Issue 9 acceptance (what this benchmark measures)\n")
    print("| item | measured | target | verdict |")
    print("|---|---|---|---|")
    print(f"| published layouts judged feasible | {'all' if not infeasible else 'not: ' + ', '.join(infeasible)} "
          f"| all | {verdict(not infeasible)} |")
    print(f"| step time, acceptance set | median {med * 100:.1f}%, max {worst * 100:.1f}% | median <= 8%, "
          f"max <= 15% | {verdict(med <= 0.08 and worst <= 0.15)} |")
    em, ew = statistics.median(ext), max(ext)
    print(f"| step time, acceptance set + torchtitan Tables 2, 3, 6 | median {em * 100:.1f}%, max {ew * 100:.1f}% "
          f"| median <= 8%, max <= 15% | {verdict(em <= 0.08 and ew <= 0.15)} |")
    for rid, e in mem_rows:
        print(f"| memory, {rid} | {e * 100:+.1f}% | within 10% | {verdict(abs(e) <= 0.10)} |")
    for e in gpu_hours:
        print(f"| DeepSeek-V3 GPU-hours, no full recompute | {e * 100:+.1f}% | within 15% "
              f"| {verdict(abs(e) <= 0.15)} |")


def _with_recipe(r: dict, recipe) -> dict:
    """``r`` planned with ``recipe`` as its framework's Float8 recipe (see :func:`run_plan`)."""
    return {**r, "_float8": recipe}


def float8_costs(runs: list[dict]) -> None:
    """The FP8 rows with and without what torchao's Float8 costs besides fp8-peak GEMMs (casts, fp8 GEMM
    efficiency, bf16 head; ``FLOAT8_IDEAL`` charges none of it), the split summaries both ways, and the
    Float8 speed-ups over the bf16 twins of the same tables."""
    from scalelab.planner.step_time import FLOAT8_IDEAL, FLOAT8_TORCHAO_TENSORWISE

    print("\n### Float8: torchao's costs charged vs not (step-time error, positive: predicted too slow)\n")
    r = FLOAT8_TORCHAO_TENSORWISE
    print(f"recipe {r.name}: casts {r.activation_cast_bytes:g} B per activation/gradient element, "
          f"{r.weight_cast_bytes:g} per weight element, x{r.cast_time_factor:g}; fp8 GEMMs at "
          f"{r.gemm_efficiency_ratio:g} of the bf16 efficiency; LM head in {'fp8' if r.head_in_fp8 else 'bf16'}\n")
    print("| run | split | measured tok/s/GPU | no Float8 costs | error | with them | error |")
    print("|---|---|---|---|---|---|---|")
    errs: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        meas = run.get("measured", {})
        if run["train"].get("precision") != "fp8" or not (meas.get("tokens_per_s_per_gpu") or meas.get("step_time_s")):
            continue
        split = "calibration" if run["id"] in CALIBRATION else "held out"
        cells = []
        for label, recipe in (("ideal", FLOAT8_IDEAL), ("torchao", FLOAT8_TORCHAO_TENSORWISE)):
            p = run_plan(_with_recipe(run, recipe))
            tps, m = p.tokens_per_s / run["n_gpus"], measured_tokens_per_s_per_gpu(run, p)
            errs.setdefault((label, split), []).append(abs(m / tps - 1))
            cells.append(f"{tps:.0f} | {(m / tps - 1) * 100:+.1f}%")
        print(f"| {run['id']} | {split} | {m:.0f} | {cells[0]} | {cells[1]} |")
    for (label, split), e in sorted(errs.items()):
        print(f"{label} recipe, {split} FP8 rows: median |step-time error| {statistics.median(e) * 100:.1f}%, "
              f"max {max(e) * 100:.1f}% over {len(e)} runs")
    byid = {run["id"]: run for run in runs}
    print("\nFloat8 speed-up over bf16 (same profile, table and layout)\n")
    print("| pair | measured | model | model without Float8 costs |")
    print("|---|---|---|---|")
    pairs = [("torchtitan-8b-8-compile", "torchtitan-8b-8-compile-float8", None),
             ("torchtitan-8b-128-compile", "torchtitan-8b-128-compile-float8", None),
             # torchtitan docs/performance.md (2024): 405B FSDP16 x TP8 on 128 H100, bf16 109, Float8 177 WPS
             ("torchtitan-405b-128", None, 177.0)]
    for bf, f8, f8_meas in pairs:
        b_run = {**byid[bf], "framework": "torchtitan-compile"}
        f_run = byid[f8] if f8 else {**b_run, "train": {**b_run["train"], "precision": "fp8"}}
        b = run_plan(b_run).tokens_per_s
        m_b = measured_tokens_per_s_per_gpu(b_run, run_plan(b_run))
        m_f = f8_meas or measured_tokens_per_s_per_gpu(f_run, run_plan(f_run))
        f = run_plan(f_run).tokens_per_s
        f0 = run_plan(_with_recipe(f_run, FLOAT8_IDEAL)).tokens_per_s
        print(f"| {f8 or bf + ' (Float8 177 WPS, compiled profile for both)'} | {m_f / m_b:.2f}x | {f / b:.2f}x "
              f"| {f0 / b:.2f}x |")


def gemm_shapes(runs: list[dict]) -> None:
    """Every run with a throughput whose step time the per-GEMM roofline moves (``scalelab.planner.gemm``):
    its matmul time and step-time error with the roofline (the model) and without it (the factor patched to 1,
    the model before it), and the summary lines both ways."""
    from unittest import mock

    import scalelab.planner.step_time as st

    print("\n### GEMM shapes: the per-GEMM roofline off and on (step-time error, positive: predicted too slow)\n")
    print("| run | split | matmul s off | on | x | error off | error on |")
    print("|---|---|---|---|---|---|---|")

    def plans() -> dict[str, tuple[float, float]]:
        out = {}
        for run in runs:
            if not {"tokens_per_s_per_gpu", "tflops_per_gpu", "days", "step_time_s"} & set(run.get("measured", {})):
                continue
            p = run_plan(run)
            tps = p.tokens_per_s / run["n_gpus"]
            out[run["id"]] = (p.time.matmul_s, measured_tokens_per_s_per_gpu(run, p) / tps - 1)
        return out

    on = plans()
    with mock.patch.object(st, "gemm_roofline_factor", lambda *a, **k: 1.0):
        off = plans()
    split_of = {r["id"]: ("calibration" if r["id"] in CALIBRATION else "acceptance" if r["id"] in IN_SAMPLE
                          else "held out") for r in runs}
    moved = 0
    for rid, (mm, e) in on.items():
        mm0, e0 = off[rid]
        if abs(e - e0) < 5e-4:
            continue
        moved += 1
        print(f"| {rid} | {split_of[rid]} | {mm0:.3g} | {mm:.3g} | {mm / mm0:.3f} | {e0 * 100:+.1f}% | "
              f"{e * 100:+.1f}% |")
    print(f"\n{moved} of {len(on)} runs with a throughput move by 0.05 points or more; the others are identical")
    for label, ids in (("acceptance rows of the asset", [k for k in on if k in IN_SAMPLE]),
                       ("calibration", [k for k in on if k in CALIBRATION]),
                       ("June 2025", [r["id"] for r in runs if r.get("held_out") == HELD_OUT_2025 and r["id"] in on])):
        for name, res in (("off", off), ("on", on)):
            e = [abs(res[k][1]) for k in ids]
            print(f"{label}, roofline {name}: median |step-time error| {statistics.median(e) * 100:.1f}%, "
                  f"max {max(e) * 100:.1f}% over {len(e)} runs")


def nemo_overlaps(runs: list[dict]) -> None:
    """NVIDIA's NeMo 405B rows with the nemo profile's TP and PP overlaps off, one at a time, and on: what
    each documented overlap is worth in the model (nothing here is fitted)."""
    print("\n### NeMo 405B rows: TP / PP overlap (tp_overlap, pp_overlap) off and on (step-time error, "
          "positive: predicted too slow)\n")
    cases = (("none", (0.0, 0.0)), ("pp only", (0.0, 1.0)), ("tp only", (1.0, 0.0)), ("both (nemo)", (1.0, 1.0)))
    print("| run | measured s | " + " | ".join(f"{c} s | error" for c, _ in cases) + " | TP hidden s | PP hidden s |")
    print("|---|---|" + "---|---|" * len(cases) + "---|---|")
    for run in runs:
        if run["id"] not in NEMO_405B:
            continue
        meas = run["measured"]["step_time_s"]
        cells = []
        for _, ov in cases:
            p = run_plan({**run, "_overlaps": ov})
            cells.append(f"{p.step_time_s:.2f} | {(p.step_time_s / meas - 1) * 100:+.1f}%")
        t = run_plan(run).time
        print(f"| {run['id']} | {meas} | {' | '.join(cells)} | {t.tp_hidden_s:.2f} | {t.pp_hidden_s:.2f} |")


def _errors(run: dict, p) -> tuple[float, float, float | None]:
    """(predicted tokens/s/GPU, step-time error, memory error or None) of one run's plan ``p``: step-time
    error = measured tokens/s over predicted - 1 (positive: predicted too slow), memory error = predicted GiB
    over measured - 1."""
    tps = p.tokens_per_s / run["n_gpus"]
    m_gib = run["measured"].get("memory_gib")
    return tps, measured_tokens_per_s_per_gpu(run, p) / tps - 1, (p.memory.total_bytes / 2**30 / m_gib - 1
                                                                   if m_gib else None)


def held_out_2025(data: dict) -> None:
    """torchtitan's June 2025 benchmark files, held out: every row's step-time and memory error, the Float8
    speed-ups measured and modelled, and the rows the planner cannot express, with the reason (the AsyncTP
    pairs: :func:`async_tp`)."""
    from scalelab.planner.step_time import FLOAT8_IDEAL

    runs = [r for r in data["runs"] if r.get("held_out") == HELD_OUT_2025]
    byid = {r["id"]: r for r in runs}
    print("\n### Held out: torchtitan's June 2025 benchmark files (pytorch/torchtitan benchmarks/; nothing fitted)\n")
    print("| run | GPU | framework | layout | tok/s/GPU | measured | step-time error | GiB | measured GiB | "
          "memory error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    step, mem = [], []
    for r in runs:
        p = run_plan(r)
        tps, e, me = _errors(r, p)
        step.append(abs(e))
        if me is not None:
            mem.append(abs(me))
        m_gib = r["measured"].get("memory_gib")
        print(f"| {r['id']} | {r['n_gpus']} {r['gpu']} | {r['framework']} | {p.layout} | {tps:.0f} | "
              f"{r['measured']['tokens_per_s_per_gpu']:g} | {e * 100:+.1f}% | {p.memory.total_bytes / 2**30:.1f} | "
              f"{m_gib or '-'} | {f'{me * 100:+.1f}%' if me is not None else '-'} |")
    print("\nstep-time error = measured tokens/s / predicted - 1 (positive: predicted too slow); memory error = "
          "predicted / measured - 1")
    print(f"held out, June 2025: median |step-time error| {statistics.median(step) * 100:.1f}%, max "
          f"{max(step) * 100:.1f}% over {len(step)} runs; |memory error| {', '.join(f'{x * 100:.1f}%' for x in mem)}")

    print("\nFloat8 (tensorwise) speed-up over bf16 (same table, same TP flavour)\n")
    print("| pair | measured | model | model without Float8 costs |")
    print("|---|---|---|---|")
    for r in runs:
        if "-float8" in r["id"]:
            b = byid[r["id"].replace("-float8", "-bf16")]
            pb = run_plan(b).tokens_per_s
            print(f"| {r['id']} | {r['measured']['tokens_per_s_per_gpu'] / b['measured']['tokens_per_s_per_gpu']:.2f}x"
                  f" | {run_plan(r).tokens_per_s / pb:.2f}x | "
                  f"{run_plan(_with_recipe(r, FLOAT8_IDEAL)).tokens_per_s / pb:.2f}x |")

    print("\nNot expressible (the asset's not_expressible list): planned as their tensorwise twin, for scale\n")
    print("| run | measured tok/s/GPU | tensorwise twin planned | step-time error |")
    print("|---|---|---|---|")
    reasons = []
    for x in data.get("not_expressible", []):
        twin = byid[x["id"].replace("-rowwise", "")]
        tps, e, _ = _errors({**twin, "measured": x["measured"]}, run_plan(twin))
        print(f"| {x['id']} | {x['measured']['tokens_per_s_per_gpu']:g} | {tps:.0f} | {e * 100:+.1f}% |")
        reasons += [x["reason"]] if x["reason"] not in reasons else []
    for why in reasons:
        print(f"\nwhy: {why}")


def _speedup(run: dict, vanilla_tps: float, **trial) -> float:
    """Modelled tokens/s of ``run`` with the trial keys ``trial`` over ``vanilla_tps``."""
    return run_plan({**run, **trial}).tokens_per_s / vanilla_tps


def async_tp(data: dict) -> None:
    """AsyncTP (planner/async_tp.py): its one constant fitted on torchtitan's Table 4 pair (December 2024),
    the June 2025 pairs held out: speed-ups and step-time errors with AsyncTP unmodelled (before) and
    modelled, beside the model without the constant (eta = 1) and the full-overlap bound (tp_overlap = 1)."""
    from scalelab.planner.async_tp import ASYNC_TP_HIDING_EFFICIENCY

    byid = {r["id"]: r for r in data["runs"]}
    pairs = [(r, byid[r["id"].removesuffix("-asynctp")]) for r in data["runs"] if r.get("async_tp")]
    calib = next((a, v) for a, v in pairs if a.get("held_out") != HELD_OUT_2025)
    a, v = calib
    target = a["measured"]["tokens_per_s_per_gpu"] / v["measured"]["tokens_per_s_per_gpu"]
    vt = run_plan(v).tokens_per_s
    lo, hi = 0.0, 1.0  # the speed-up grows with the hiding share: bisect for the measured one
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _speedup(a, vt, _async_tp_hiding=mid) < target else (lo, mid)
    print(f"\n### AsyncTP (planner/async_tp.py): fitted on {a['id']} ({target:.3f}x measured), June 2025 held out\n")
    print(f"hiding share fitted on the calibration pair: {(lo + hi) / 2:.3f}; ASYNC_TP_HIDING_EFFICIENCY = "
          f"{ASYNC_TP_HIDING_EFFICIENCY}\n")
    print("| pair | split | measured | before (not modelled) | model | model, eta = 1 | bound, tp_overlap = 1 | "
          "TP exposed s | TP hidden s | step-time error before | after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    held = {"before": [], "model": [], "eta1": []}
    for a, v in pairs:
        meas = a["measured"]["tokens_per_s_per_gpu"] / v["measured"]["tokens_per_s_per_gpu"]
        vt = run_plan(v).tokens_per_s
        p_off, p_on = run_plan({**a, "async_tp": False}), run_plan(a)
        got = {"before": p_off.tokens_per_s / vt, "model": p_on.tokens_per_s / vt,
               "eta1": _speedup(a, vt, _async_tp_hiding=1.0)}
        bound = _speedup(a, vt, _overlaps=(1.0, 0.0))
        split = "held out" if a.get("held_out") == HELD_OUT_2025 else "calibration"
        if split == "held out":
            for k in held:
                held[k].append(abs(got[k] - meas))
        e_off, e_on = _errors(a, p_off)[1], _errors(a, p_on)[1]
        print(f"| {a['id']} | {split} | {meas:.3f}x | {got['before']:.3f}x | {got['model']:.3f}x | {got['eta1']:.3f}x "
              f"| {bound:.3f}x | {p_on.time.tp_s:.3g} | {p_on.time.tp_hidden_s:.3g} | {e_off * 100:+.1f}% | "
              f"{e_on * 100:+.1f}% |")
    print("\nheld out, mean |speed-up error| (points): " + ", ".join(
        f"{k} {statistics.mean(x) * 100:.1f}" for k, x in held.items()) + f" over {len(held['model'])} pairs")


def held_out_gpu_hours() -> None:
    """Held out, added last (tests/assets/planner_held_out_gpu_hours.json, planned by benchmarks/_gpu_hours.py):
    Megatron-LM's H100 table with its published layouts, and the Llama model cards' GPU-hours planned as a
    user would (a default search). Nothing is fitted on these rows."""
    import _gpu_hours as gh

    data = gh.load()
    mlm = data["megatron_readme"]
    print("\n### Held out: Megatron-LM README's H100 table (Megatron-Core r0.8.0; layouts as published; nothing "
          "fitted)\n")
    print("published iteration time = Megatron-Core r0.8.0's FLOPs per step / (GPUs x published TFLOP/s); the "
          "megatron profile, with and without the TP overlap the README's --tp-comm-overlap turns on\n")
    print("| model | GPUs | layout | feasible | GiB | TFLOP/s | MFU | published s | predicted s (+TP overlap) | "
          "error | megatron profile as is s | error | FLOPs ours / Megatron's |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    errs: dict[str, list[float]] = {"with": [], "as is": []}
    for c in mlm["cases"]:
        pub = gh.megatron_step_time_s(c, mlm)
        p, p0 = gh.megatron_plan(c, mlm), gh.megatron_plan(c, mlm, published_overlaps=False)
        e, e0 = p.step_time_s / pub - 1, p0.step_time_s / pub - 1
        errs["with"].append(abs(e))
        errs["as is"].append(abs(e0))
        print(f"| {c['name']} | {c['n_gpus']} | {p.layout} | {p.feasible} | {p.memory.total_bytes / 2**30:.1f} | "
              f"{c['tflops_per_gpu']} | {c['mfu_pct']}% | {pub:.3f} | {p.step_time_s:.3f} | {e * 100:+.1f}% | "
              f"{p0.step_time_s:.3f} | {e0 * 100:+.1f}% | {p.flops_per_step / gh.megatron_flops(c, mlm):.4f} |")
    print("\nstep-time error = predicted / published - 1 (positive: predicted too slow)")
    for k, e in errs.items():
        print(f"Megatron-LM table, {'with the published TP overlap' if k == 'with' else 'megatron profile as is'}: "
              f"median |step-time error| {statistics.median(e) * 100:.1f}%, max {max(e) * 100:.1f}% over {len(e)} runs")
    # the table gives no micro-batch: what assuming another would give; and Megatron-Core r0.8.0's fp32 gradient
    # reduce with bf16 (arguments.py forces accumulate_allreduce_grads_in_fp32, training.py passes it to DDP as
    # grad_reduce_in_fp32), which the megatron profile does not set (it reduces in the parameters' bf16)
    for label, kw in (("micro-batch 2 assumed", {"micro_batch": 2}), ("micro-batch 4 assumed", {"micro_batch": 4}),
                      ("gradients reduced in fp32", {"grad_reduce_bytes": 4.0})):
        ps = [(gh.megatron_plan(c, mlm, **kw), gh.megatron_step_time_s(c, mlm)) for c in mlm["cases"]]
        e = [p.step_time_s / t - 1 for p, t in ps]
        a = [abs(x) for x in e]
        print(f"the same with {label}: median {statistics.median(a) * 100:.1f}%, max {max(a) * 100:.1f}%; judged "
              f"out of memory: {sum(not p.feasible for p, _ in ps)} of {len(ps)}; signed "
              + ", ".join(f"{x * 100:+.0f}%" for x in e))

    ll = data["llama_gpu_hours"]
    print("\n### Held out: Llama GPU-hours from the model cards (layouts unpublished: the best plan of a default "
          "search)\n")
    print(f"procedure: {ll['user_procedure']}\n")
    print("| run | GPUs | command's inputs | best layout | MFU | tok/s/GPU | published's | GPU-hours | published | "
          "error | at 512 GPUs | at 8,192 GPUs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    runs = {r["id"]: r for r in load_runs()["runs"]}
    refs = []
    by_gpu: dict[str, list[float]] = {}
    for c in ll["cases"]:
        n = gh.llama_n_gpus(c, ll)
        best = gh.llama_search(c, n)
        e = best.gpu_hours / c["gpu_hours"] - 1
        by_gpu.setdefault(c["gpu"], []).append(e)
        side = [f"{(gh.llama_search(c, k).gpu_hours / c['gpu_hours'] - 1) * 100:+.1f}%" if "n_gpus" not in c else "-"
                for k in (512, 8192)]
        pub_tps = c["total_tokens"] / (c["gpu_hours"] * 3600)
        print(f"| {c['id']} | {n} {c['gpu']} | -m {c['model']} --seq-len {c['seq_len']} --global-batch "
              f"{c['global_batch']} --tokens {c['total_tokens']:.3g} | {best.layout} | {best.mfu:.3f} | "
              f"{best.tokens_per_s / n:.0f} | {pub_tps:.0f} | {best.gpu_hours / 1e6:.3f}M | "
              f"{c['gpu_hours'] / 1e6:.3f}M | {e * 100:+.1f}% | {side[0]} | {side[1]} |")
        if "steady_state_reference" in c:
            ref = runs[c["steady_state_reference"]]
            h = c["total_tokens"] / (ref["measured"]["tokens_per_s_per_gpu"] * 3600)
            refs.append(f"{c['id']}: at {ref['id']}'s measured {ref['measured']['tokens_per_s_per_gpu']:g} tok/s/GPU "
                        f"({ref['n_gpus']} {ref['gpu']}), {h / 1e6:.3f}M GPU-hours, "
                        f"{(h / c['gpu_hours'] - 1) * 100:+.1f}%")
        for label, key, pl in (("published layout", "published_layout_run", gh.llama_published_layout(c)),
                               ("the team's earlier layout", "team_layout_run", gh.llama_team_layout(c))):
            if pl is None:
                continue
            print(f"| {c['id']}, {label} | {n} {c['gpu']} | row {c[key]} | {pl.layout} | "
                  f"{pl.mfu:.3f} | {pl.tokens_per_s / n:.0f} | {pub_tps:.0f} | {pl.gpu_hours / 1e6:.3f}M | "
                  f"{c['gpu_hours'] / 1e6:.3f}M | {(pl.gpu_hours / c['gpu_hours'] - 1) * 100:+.1f}% | - | - |")
    print("\nGPU-hours error = predicted / published - 1 (negative: predicted fewer hours)")
    for g, e in by_gpu.items():
        a = [abs(x) for x in e]
        print(f"Llama GPU-hours on {g}, best searched plan: median |error| {statistics.median(a) * 100:.1f}%, max "
              f"{max(a) * 100:.1f}% over {len(a)} models; signed {', '.join(f'{x * 100:+.0f}%' for x in e)}")
    print("\nmeasured steady-state throughput of the same models, for scale (published hours' error at it):\n")
    for line in refs:
        print(f"- {line}")
    print(f"\nnot modelled: {ll['not_modelled']}")
    print("\nnot checked:")
    for x in data["not_checked"]:
        print(f"- {x['what']}: {x['why']}")
#: FlashAttention-2 paper (Dao 2023, arXiv:2307.08691) Fig. 4 (d) and (c): forward + backward TFLOP/s on A100
#: 80GB with a causal mask at 512, 1K, 2K, 4K, 8K and 16K tokens (flash-attention repo
#: assets/flash2_a100_fwd_bwd_benchmark.png, 2023-07-17), FlashAttention-2 and "FlashAttention Triton", the
#: kernel llm-foundry's ``attn_impl: triton`` runs (llmfoundry/models/layers/flash_attn_triton.py: "Copied
#: from" HazyResearch's flash_attn_triton.py), per head dimension. Only the what-if below uses it.
FA2_FIG4_TFLOPS = {128: ((99, 133, 155, 173, 182, 189), (50, 61, 68, 74, 78, 80)),
                   64: ((88, 119, 140, 156, 165, 171), (59, 75, 79, 76, 79, 80))}


def _triton_slowdown(run: dict) -> float:
    """FlashAttention-2's speed over FlashAttention-Triton's (Fig. 4) at the row's head dimension and the
    nearest measured sequence length (16K beyond it); a :class:`ConfigError` for a head dimension Fig. 4 lacks."""
    head_dim = run["shape"]["d_model"] // run["shape"]["n_heads"]
    if head_dim not in FA2_FIG4_TFLOPS:
        raise ConfigError(explain(f"no FlashAttention-2 Fig. 4 speeds for row {run.get('id')!r}'s head dimension",
                                  value=head_dim, allowed=", ".join(map(str, sorted(FA2_FIG4_TFLOPS))),
                                  fix="read that head dimension's curves into FA2_FIG4_TFLOPS, or leave the row "
                                      "out of the Triton what-if"))
    fa2, tri = FA2_FIG4_TFLOPS[head_dim]
    i = min(range(6), key=lambda k: abs(math.log2(run["seq_len"] / (512 * 2**k))))
    return fa2[i] / tri[i]


def _foundry_rows(data: dict) -> list[dict]:
    """Every llm-foundry row planned with the ``llm-foundry`` profile (the deepspeed profile's verdict beside it: the
    profile fixed before planning, whose loss rejected 89 rows), the default (megatron) profile's error beside it,
    and what the mechanisms left unfixed concern: the share of the step in attention (the step at half the attention
    efficiency, less the step) and the FSDP traffic over the step; with three what-ifs, each only where its table's
    scripts say it applies: attention at FlashAttention-Triton's published speed (``attn_impl: triton``), the
    backward all-gathers exposed (FSDP ``BACKWARD_POST`` with FULL_SHARD: the next all-gather is issued after the
    current gradient computation, torch.distributed.fsdp.BackwardPrefetch), and all the FSDP traffic exposed
    (``dp_overlap=0``, a bound)."""
    from _heldout_llm_foundry import FIRST_FRAMEWORK, FRAMEWORK, plan_row
    from _heldout_llm_foundry import throughput_step_time_error as err

    out = []
    for r in data["runs"]:
        table = data["tables"][r["source"]["table"]]
        p = plan_row(r)
        att = get_cluster(r["gpu"], 8).gpu.attention_efficiency
        half = plan_row(r, attention_efficiency=(p.options.get("attention_efficiency") or att) / 2)
        triton = table["attn_impl"].startswith("triton")
        tri = plan_row(r, attention_efficiency=att / _triton_slowdown(r)) if triton else p
        post = table["backward_prefetch"].startswith("BACKWARD_POST") and r["sharding"] == "FULL_SHARD"
        bwd_gather_s = p.comm.time_s(kind="all_gather") / 2 if post else 0.0  # m of the 2m all-gathers
        tokens = p.train.global_batch_tokens
        out.append({"run": r, "p": p, "feasible_profile": plan_row(r, framework=FIRST_FRAMEWORK).feasible,
                    "err": err(r, p.tokens_per_s), "err_fa2": err(r, plan_row(r, framework=FRAMEWORK).tokens_per_s),
                    "err_megatron": err(r, plan_row(r, framework="megatron").tokens_per_s),
                    "attn_share": half.step_time_s / p.step_time_s - 1, "dp_share": p.time.dp_total_s / p.step_time_s,
                    "err_triton": err(r, tri.tokens_per_s),
                    "err_post": err(r, tokens / (p.step_time_s + bwd_gather_s)),
                    "err_exposed": err(r, plan_row(r, dp_overlap=0.0).tokens_per_s)})
    return out


def _pct_cell(values: list[float], spec: str = ".1f", how=statistics.median) -> str:
    """A table cell: ``how`` (median, max) of ``values`` in percent, or "n/a" for an empty group (a table or what-if
    bin no row falls in), where statistics.median would raise."""
    return f"{format(how(values) * 100, spec)}%" if values else "n/a"


def _summary(label: str, rows: list[dict], key: str = "err") -> str:
    e = [abs(x[key]) for x in rows]
    return (f"{label}: median |step-time error| {statistics.median(e) * 100:.1f}%, max {max(e) * 100:.1f}% "
            f"over {len(e)} rows" if e else f"{label}: no rows")


def held_out_llm_foundry() -> list[dict]:
    """MosaicML llm-foundry's MPT throughput tables, held out (tests/assets/planner_heldout_llm_foundry.json,
    every row): feasibility with the llm-foundry profile and with the deepspeed profile chosen before planning,
    predicted against measured tokens/s/GPU, the summaries per table, and the two what-ifs that test the
    mechanisms behind the largest errors (neither is applied)."""
    from _heldout_llm_foundry import CALIBRATION_TABLE, calibrate_triton_attention, load

    data = load()
    rows = _foundry_rows(data)
    r0 = data["runs"][0]["source"]
    print(f"\n### Held out: MosaicML llm-foundry's MPT throughput tables ({r0['repo']} {r0['file']} at "
          f"{r0['commit'][:10]}; every row; one number fitted on one table)\n")
    print("profile llm-foundry (flash-attn's fused cross-entropy on bf16 logits, read from llm-foundry's code: "
          f"{data['code_conventions']['memory_conventions']}) for the table that ran attn_impl flash, "
          "llm-foundry-triton (the same, attention at the Triton kernel's share of FlashAttention-2's efficiency) "
          "for the four that ran attn_impl triton; FULL_SHARD = zero 3, SHARD_GRAD_OP = zero 2, "
          "activation checkpointing = full recompute; catalog GPUs. 'fits': these profiles; 'fits as "
          "deepspeed': the deepspeed profile, fixed before any row was planned\n")
    fitted = calibrate_triton_attention(data)
    print(f"Triton attention share fitted on {CALIBRATION_TABLE!r} (calibration; the other tables are held out): "
          f"{fitted:.2f} (llm-foundry-triton's attention_efficiency_scale: "
          f"{get_framework('llm-foundry-triton').attention_efficiency_scale:.2f})\n")
    print("| run | layout | fits as deepspeed | fits | GiB | tok/s/GPU | measured | error | attention | FSDP traffic |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for x in rows:
        r, p = x["run"], x["p"]
        print(f"| {r['id'].removeprefix('foundry-')} | {p.layout.short()} | {x['feasible_profile']} | {p.feasible} | "
              f"{p.memory.total_bytes / 2**30:.1f} | {p.tokens_per_s / r['n_gpus']:.0f} | "
              f"{r['measured']['tokens_per_s'] / r['n_gpus']:.0f} | {x['err'] * 100:+.1f}% | "
              f"{x['attn_share'] * 100:.0f}% | {x['dp_share'] * 100:.0f}% |")
    print("\nerror = measured tokens/s / predicted - 1 (positive: predicted too slow); attention: share of the "
          "predicted step in the attention core; FSDP traffic: FSDP gathers and reduce-scatters over the step "
          "(hidden behind compute in the model)\n")
    print("| table | split | rows | fit as deepspeed | fit | median abs error | max | median, attention at "
          "FlashAttention-2's figure (llm-foundry) | median, default (megatron) profile | median, backward "
          "all-gathers exposed (what-if below) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    _per_table(data["tables"], rows)
    held = [x for x in rows if x["run"]["source"]["table"] != CALIBRATION_TABLE]
    print("\n" + _summary("all rows, llm-foundry profiles", rows))
    print(_summary("held-out tables, llm-foundry profiles", held))
    print(_summary("held-out tables, attention at FlashAttention-2's figure (llm-foundry)", held, "err_fa2"))
    print(_summary("all rows, default (megatron) profile", rows, "err_megatron"))
    print(f"judged feasible: {sum(x['p'].feasible for x in rows)} of {len(rows)} with the llm-foundry profiles; "
          f"{sum(x['feasible_profile'] for x in rows)} of {len(rows)} with the deepspeed profile as it is")
    print(f"rows with |error| > 25%: {sum(abs(x['err']) > 0.25 for x in rows)}")

    _whatif_bins(rows)
    return rows


def _per_table(tables: dict, rows: list[dict]) -> None:
    """One line per llm-foundry table: rows, feasible with each profile, median and max |error|; "n/a" for a table
    no row falls in."""
    from _heldout_llm_foundry import CALIBRATION_TABLE

    for table in tables:
        t = [x for x in rows if x["run"]["source"]["table"] == table]
        e, ef, em, ep = ([abs(x[k]) for x in t] for k in ("err", "err_fa2", "err_megatron", "err_post"))
        split = "calibration" if table == CALIBRATION_TABLE else "held out"
        print(f"| {table} | {split} | {len(t)} | {sum(x['feasible_profile'] for x in t)} | "
              f"{sum(x['p'].feasible for x in t)} | {_pct_cell(e)} | {_pct_cell(e, how=max)} | {_pct_cell(ef)} | "
              f"{_pct_cell(em)} | {_pct_cell(ep)} |")


#: The what-ifs of the llm-foundry section: the row key of each signed step-time error and its column label.
FOUNDRY_WHATIFS = (("err", "as planned"), ("err_triton", "attention at FlashAttention-Triton's speed (FA2 Fig. 4)"),
                   ("err_post", "backward all-gathers exposed (BACKWARD_POST)"),
                   ("err_exposed", "all FSDP traffic exposed (bound)"))


def _whatif_bins(rows: list[dict]) -> None:
    """The median signed error of each what-if per bin of attention and FSDP-traffic share ("n/a" for a bin no row
    falls in), and each what-if's summary over all rows."""
    print("\nWhat-ifs for the mechanisms behind the largest errors (median signed step-time error per group; "
          "none is applied to the planner)\n")
    print("| rows | n | " + " | ".join(label for _, label in FOUNDRY_WHATIFS) + " |")
    print("|---|---|" + "---|" * len(FOUNDRY_WHATIFS))
    bins = (("attention >= 50% of the step", lambda x: x["attn_share"] >= 0.5),
            ("attention 25-50%", lambda x: 0.25 <= x["attn_share"] < 0.5),
            ("attention < 25%, FSDP traffic >= 20% of the step",
             lambda x: x["attn_share"] < 0.25 and x["dp_share"] >= 0.2),
            ("attention < 25%, FSDP traffic < 20%", lambda x: x["attn_share"] < 0.25 and x["dp_share"] < 0.2),
            ("all rows", lambda x: True))
    for label, keep in bins:
        b = [x for x in rows if keep(x)]
        print(f"| {label} | {len(b)} | " + " | ".join(
            _pct_cell([x[k] for x in b], "+.1f") for k, _ in FOUNDRY_WHATIFS) + " |")
    print()
    for key, label in FOUNDRY_WHATIFS[1:]:
        print(_summary(label, rows, key))


def _nemo_perf_rows(data: dict) -> list[dict]:
    """Every row of NeMo's performance summary planned as the asset says (benchmarks/_held_out_nemo_perf.py), with
    the verdict as first planned (the planner's fp8 optimizer defaults), the FLOPs per token against the published
    Model TFLOP/s over tokens/s, the share of the predicted step in the attention core (the step at half the
    attention efficiency, less the step), and two what-ifs: an fp32 gradient buffer (Apex's default
    ``grad_sync_dtype``, which the launcher's generic configs leave) and the launcher configs' own TP/PP overlap
    flags; and the attention core at the device's peak (a bound for the
    fine-tuning rows, whose packed SQuAD examples attend only within themselves)."""
    from _held_out_nemo_perf import error, plan_row

    out = []
    for r in data["runs"]:
        p = plan_row(r)
        att = get_cluster(r["gpu"], 8).gpu.attention_efficiency
        pub_flops = r["measured"]["model_tflops_per_gpu"] * 1e12 / r["measured"]["tokens_per_s_per_gpu"]
        out.append({"run": r, "p": p, "first": plan_row(r, first_plan=True), "err": error(r, p),
                    "flops": p.flops_per_step / p.train.global_batch_tokens / pub_flops - 1,
                    "attn_share": plan_row(r, attention_efficiency=att / 2).step_time_s / p.step_time_s - 1,
                    "fp32_grads": plan_row(r, memory={"grad_bytes": 4.0}),
                    "err_launcher": error(r, plan_row(r, launcher_overlaps=True)),
                    "err_attn_peak": error(r, plan_row(r, attention_efficiency=1.0))})
    return out


def held_out_nemo_perf() -> list[dict]:
    """NVIDIA NeMo's published performance summary, held out (tests/assets/planner_held_out_nemo_perf.json: every
    row of every stored version): feasibility, predicted against published tokens/s/GPU, summaries per version and
    group, the FLOP-count check, and the rows judged out of memory with the what-ifs (none is applied)."""
    from _held_out_nemo_perf import load, plan_row

    data = load()
    rows = _nemo_perf_rows(data)
    print(f"\n### Held out: NVIDIA NeMo's performance summary ({data['runs'][0]['source']['repo']} "
          f"{data['runs'][0]['source']['file']}, {len(data['versions'])} versions; every row; nothing fitted)\n")
    print("nemo profile; TP/PP/CP/VP/MBS as the row, ZeRO-1, SP with TP, recompute as the launcher config, fp8; "
          "optimizer memory from NeMo's code and configs (the asset's code_conventions). 'first': the verdict with "
          "the planner's fp8 defaults, as the rows were first planned\n")
    print("| run | layout | fits (first) | fits | GiB | tok/s/GPU | published | error | FLOPs/token vs published | "
          "attention | error, launcher overlaps | GiB, fp32 grads |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for x in rows:
        r, p = x["run"], x["p"]
        print(f"| {r['id'].removeprefix('nemo-')} | {p.layout.short()} | {x['first'].feasible} | {p.feasible} | "
              f"{p.memory.total_bytes / 2**30:.1f} | {p.tokens_per_s / r['n_gpus']:.0f} | "
              f"{r['measured']['tokens_per_s_per_gpu']} | {x['err'] * 100:+.1f}% | {x['flops'] * 100:+.1f}% | "
              f"{x['attn_share'] * 100:.0f}% | {x['err_launcher'] * 100:+.1f}% | "
              f"{x['fp32_grads'].memory.total_bytes / 2**30:.1f} |")
    print("\nerror = published tokens/s / predicted - 1 (positive: predicted too slow); FLOPs/token vs published: "
          "the plan's model FLOPs per token over the table's Model TFLOP/s / tokens/s, less 1; attention: share of "
          "the predicted step in the attention core\n")
    groups = [(f"pretraining, {c[:7]} ({d.split(',')[0]})", lambda x, c=c: x["run"]["source"]["commit"] == c
               and x["run"]["group"] == "pretraining") for c, d in data["versions"].items()]
    groups += [("pretraining, all versions", lambda x: x["run"]["group"] == "pretraining"),
               ("fine-tuning SFT, all versions", lambda x: x["run"].get("task") == "SFT"),
               ("fine-tuning LoRA, all versions", lambda x: x["run"].get("task") == "LoRA")]
    print("| rows | n | fit (first) | fit | median abs error | max | median, launcher overlaps | median signed, "
          "attention at peak (bound) | FLOPs/token: max abs difference |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, keep in groups:
        g = [x for x in rows if keep(x)]
        e, el = [abs(x["err"]) for x in g], [abs(x["err_launcher"]) for x in g]
        print(f"| {label} | {len(g)} | {sum(x['first'].feasible for x in g)} | {sum(x['p'].feasible for x in g)} | "
              f"{statistics.median(e) * 100:.1f}% | {max(e) * 100:.1f}% | {statistics.median(el) * 100:.1f}% | "
              f"{statistics.median([x['err_attn_peak'] for x in g]) * 100:+.1f}% | "
              f"{max(abs(x['flops']) for x in g) * 100:.1f}% |")
    pre = [x for x in rows if x["run"]["group"] == "pretraining"]
    print("\n" + _summary("NeMo pretraining rows, all versions", pre))
    print(_summary("NeMo pretraining rows judged feasible", [x for x in pre if x["p"].feasible]))
    print(f"judged feasible: {sum(x['p'].feasible for x in rows)} of {len(rows)} "
          f"({sum(x['first'].feasible for x in rows)} as first planned); rows with |error| > 25%: "
          f"{sum(abs(x['err']) > 0.25 for x in rows)}")
    print(f"what-if, an fp32 gradient buffer (Apex's default grad_sync_dtype, which the 24.07 launcher's generic "
          f"configs (fp8: False) leave; the nemo profile's bf16 buffer is what NVIDIA's performance configs set, "
          f"since the tenth session): judged feasible "
          f"{sum(x['fp32_grads'].feasible for x in rows)} of {len(rows)}, pretraining "
          f"{sum(x['fp32_grads'].feasible for x in pre)} of {len(pre)}")
    print("\nJudged out of memory (the last version's rows; the same layouts in every version), and what each "
          "candidate mechanism would give (none is applied)\n")
    print("| run | GiB | over by | weights | gradients | optimizer | activations | fp32 gradient buffer | "
          "activations at 1 byte (bound) |")
    print("|---|---|---|---|---|---|---|---|---|")
    last = list(data["versions"])[-1]
    for x in rows:
        r, p = x["run"], x["p"]
        if p.feasible or r["source"]["commit"] != last:
            continue
        m, a1 = p.memory, plan_row(r, memory={"activation_bytes": 1.0}).memory
        cap = m.total_bytes - p.memory_limit_bytes
        print(f"| {r['id'].removeprefix('nemo-')} | {m.total_bytes / 2**30:.1f} | {cap / 2**30:.1f} | "
              f"{m.weights_bytes / 2**30:.1f} | {m.gradients_bytes / 2**30:.1f} | {m.optimizer_bytes / 2**30:.1f} | "
              f"{m.activations_bytes / 2**30:.1f} | {x['fp32_grads'].memory.total_bytes / 2**30:.1f} | "
              f"{a1.total_bytes / 2**30:.1f} |")
    _nemo_packed_documents_whatif([x["run"] for x in rows])
    return rows


#: Document lengths (sum(l^2)/sum(l) tokens) tried on the packed fine-tuning rows: the table does not give them.
PACKED_DOCUMENT_TOKENS = (1024, 512, 256)


def _nemo_packed_documents_whatif(runs: list[dict]) -> None:
    """The fine-tuning rows pack SQuAD examples into 4,096-token sequences and attend within each example
    (TrainSpec.document_tokens); the table does not give the examples' lengths, so a sweep, not a figure."""
    from _held_out_nemo_perf import error, plan_row

    ft = [r for r in runs if r.get("task")]
    print("\nWhat-if: the fine-tuning rows with attention masked to packed documents (TrainSpec.document_tokens; "
          "the examples' lengths are not published): median |error|, max, signed median")
    print("\n| document tokens | SFT | LoRA |\n|---|---|---|")
    for doc in (None, *PACKED_DOCUMENT_TOKENS):
        cells = []
        for task in ("SFT", "LoRA"):
            e = [error(r, plan_row(r, document_tokens=doc)) for r in ft if r["task"] == task]
            cells.append(f"{statistics.median(abs(x) for x in e):.1%}, {max(abs(x) for x in e):.1%}, "
                         f"{statistics.median(e):+.1%}" if e else "n/a")
        print(f"| {doc or 'whole sequence (as planned)'} | {cells[0]} | {cells[1]} |")


#: The attention efficiency the h100-sxm catalog entry's own note proposes for FlashAttention-3 or cuDNN attention
#: (its efficiency_source: "pass attention_efficiency ~0.45 for those"); a what-if, not fitted on any row.
CUDNN_ATTENTION_WHATIF = 0.45


def _long_seq_rows(data: dict) -> list[dict]:
    """Every row of NeMo's long-sequence table planned as the asset says (benchmarks/_held_out_nemo_long_seq.py),
    with the FLOPs per token against NeMo's formula, the attention core's share of the step (the step at half the
    attention efficiency, less the step), the CP ring's exposed transfers and its other costs as shares of the
    step, the attention efficiency each row implies (a diagnostic), and three what-ifs: the catalog's cuDNN
    attention figure, torch's all-gather ring (the torchtitan profiles' RING_TORCH_ALLGATHER) in place of
    TransformerEngine's ring of sends, and micro-batch 2 (the table does not give the micro-batch)."""
    from _held_out_nemo_long_seq import (
        error,
        implied_attention_efficiency,
        nemo_flops_per_token,
        plan_row,
        predicted_tflops,
    )

    from scalelab.planner.comm import RING_TORCH_ALLGATHER
    from scalelab.planner.frameworks import get_framework

    allgather = dataclasses.replace(get_framework("nemo"), cp_ring=RING_TORCH_ALLGATHER)
    out = []
    for r in data["runs"]:
        p = plan_row(r)
        att = get_cluster(r["gpu"], 8).gpu.attention_efficiency
        mb2 = {**r, "micro_batch": 2}
        p2 = plan_row(mb2) if r["global_batch"] % (2 * r["dp"]) == 0 else None
        out.append({"run": r, "p": p, "err": error(r, p), "tflops": predicted_tflops(r, p),
                    "flops": p.flops_per_step / p.train.global_batch_tokens / nemo_flops_per_token(p) - 1,
                    "attn_share": plan_row(r, attention_efficiency=att / 2).step_time_s / p.step_time_s - 1,
                    "cp_exposed": p.time.cp_exposed_s / p.step_time_s,
                    "cp_other": (p.time.cp_s - p.time.cp_exposed_s) / p.step_time_s,
                    "implied_attn": implied_attention_efficiency(r),
                    "err_cudnn": error(r, plan_row(r, attention_efficiency=CUDNN_ATTENTION_WHATIF)),
                    "err_allgather": error(r, plan_row(r, profile=allgather)),
                    "mb2": p2, "err_mb2": error(mb2, p2) if p2 is not None else None})
    return out


def held_out_nemo_long_seq() -> list[dict]:
    """NVIDIA NeMo's long-sequence table, held out (tests/assets/planner_held_out_nemo_long_seq.json: Llama 2 7B,
    FP8, DGX-H100, 4K-1,024K tokens, every with-CP layout): feasibility, predicted against published TFLOPS/GPU in
    NeMo's FLOP count, the CP ring's share of the step, and the what-ifs (none is applied)."""
    from _held_out_nemo_long_seq import load

    data = load()
    rows = _long_seq_rows(data)
    src = data["runs"][0]["source"]
    print(f"\n### Held out: NVIDIA NeMo's long-sequence table ({src['repo']} {src['file']} at {src['commit'][:7]}, "
          f"{src['container']}, Llama 2 7B FP8 on DGX-H100; every with-CP layout; nothing fitted)\n")
    print("nemo profile (TransformerEngine's p2p CP ring); TP/PP/DP/CP as the row, MBS 1, GBS as published, ZeRO-1, "
          "SP with TP, no recompute, fp8, master_weight_bytes 2; TFLOPS = predicted tokens/s/GPU x NeMo's llama2 "
          "FLOPs per token. The without-CP column is not planned (its layouts are not published)\n")
    print("| run | layout | fits | GiB | TFLOPS/GPU | published | error | FLOPs/token vs NeMo | attention | "
          "CP exposed | CP other | implied attention eff. | error, attention 0.45 | error, all-gather ring | "
          "MBS 2: fits, error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for x in rows:
        r, p = x["run"], x["p"]
        m2 = "n/a (GBS/DP = 1)" if x["mb2"] is None else f"{x['mb2'].feasible}, {x['err_mb2'] * 100:+.1f}%"
        print(f"| {r['id'].removeprefix('nemo-long-seq-')} | {p.layout.short()} | {p.feasible} | "
              f"{p.memory.total_bytes / 2**30:.1f} | {x['tflops']:.0f} | {r['measured']['model_tflops_per_gpu']} | "
              f"{x['err'] * 100:+.1f}% | {x['flops'] * 100:+.2f}% | {x['attn_share'] * 100:.0f}% | "
              f"{x['cp_exposed'] * 100:.1f}% | {x['cp_other'] * 100:.1f}% | {x['implied_attn']:.3f} | "
              f"{x['err_cudnn'] * 100:+.1f}% | {x['err_allgather'] * 100:+.1f}% | {m2} |")
    print("\nerror = published TFLOPS / predicted - 1 (positive: predicted too slow); attention: share of the "
          "predicted step in the attention core; CP exposed: the ring's K,V transfers not hidden behind attention; "
          "CP other: the ring's corrections, short-block kernels and launch gaps; implied attention eff.: the "
          "attention efficiency (fraction of the bf16 peak) at which the row meets the table, all else as "
          f"modelled (catalog h100-sxm: {get_cluster('h100-sxm', 8).gpu.attention_efficiency}); attention 0.45: "
          "the catalog note's figure for cuDNN / FlashAttention-3 attention; all-gather ring: torch's K,V "
          "all-gather and eager fp32 merges (RING_TORCH_ALLGATHER) instead of TransformerEngine's ring\n")
    print("| rows | n | fit | median abs error | max | median signed | median implied attention eff. | "
          "median abs error, attention 0.45 | median abs error, all-gather ring |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, keep in (("all", lambda r: True), ("CP 1 (4K-16K)", lambda r: r["cp"] == 1),
                        ("CP 2-32 (32K-1,024K)", lambda r: r["cp"] > 1)):
        g = [x for x in rows if keep(x["run"])]
        print(f"| {label} | {len(g)} | {sum(x['p'].feasible for x in g)} | {_pct_cell([abs(x['err']) for x in g])} | "
              f"{_pct_cell([abs(x['err']) for x in g], how=max)} | {_pct_cell([x['err'] for x in g], '+.1f')} | "
              f"{statistics.median(x['implied_attn'] for x in g):.3f} | "
              f"{_pct_cell([abs(x['err_cudnn']) for x in g])} | "
              f"{_pct_cell([abs(x['err_allgather']) for x in g])} |")
    print("\n" + _summary("NeMo long-sequence rows (TFLOPS/GPU)", rows))
    print(f"judged feasible: {sum(x['p'].feasible for x in rows)} of {len(rows)}; rows with |error| > 25%: "
          f"{sum(abs(x['err']) > 0.25 for x in rows)}; CP ring exposed share: max "
          f"{max(x['cp_exposed'] for x in rows) * 100:.1f}%; CP other costs: max "
          f"{max(x['cp_other'] for x in rows) * 100:.1f}%")
    return rows


def held_out_dgxc() -> None:
    """NVIDIA's DGX Cloud benchmarking recipes (dgxc-benchmarking v24.11.1), held out: every row the asset's
    selection rule keeps (tests/assets/planner_held_out_dgxc.json), planned with the nemo profile as the
    nemo-405b-* rows are; the summaries per recipe; and, for the MoE rows, the what-if of the mechanism behind
    their error (not applied)."""
    from _held_out_dgxc import errors_by_recipe, load, median_max, plan_row, step_time_error

    data = load()
    runs = data["runs"]
    print(f"\n### Held out: NVIDIA dgxc-benchmarking {runs[0]['source']['tag']} recipes (NeMo; every row the "
          "selection rule keeps; nothing fitted)\n")
    print(f"selection rule (fixed before planning): {data['selection_rule']}\n")
    print("| run | layout | feasible | GiB | tok/s/GPU | published | step s | published | error |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        p = plan_row(r)
        meas = r["measured"]["step_time_s"]
        n, tokens = r["n_gpus"], p.train.global_batch_tokens
        print(f"| {r['id'].removeprefix('dgxc-')} | {p.layout.short()} | {p.feasible} | "
              f"{p.memory.total_bytes / 2**30:.1f} | {tokens / p.step_time_s / n:.0f} | {tokens / meas / n:.0f} | "
              f"{p.step_time_s:.2f} | {meas} | {step_time_error(r, p) * 100:+.1f}% |")
    print("\nerror = predicted step time / published - 1 (positive: predicted too slow)\n")
    print("| recipe | rows | feasible | median abs error | max |")
    print("|---|---|---|---|---|")
    by = errors_by_recipe(runs)
    for recipe, e in by.items():
        med, worst = median_max(e)
        ok = sum(plan_row(r).feasible for r in runs if r["recipe"] == recipe)
        print(f"| {recipe} | {len(e)} | {ok} | {med * 100:.1f}% | {worst * 100:.1f}% |")
    med, worst = median_max([x for e in by.values() for x in e])
    print(f"\nall {len(runs)} rows: median |step-time error| {med * 100:.1f}%, max {worst * 100:.1f}%; "
          f"rows over 25%: {sum(x > 0.25 for e in by.values() for x in e)}")
    first = data["first_planning"]
    print(f"first planning (before the corrections the asset lists): {first['summary']}")
    print("\nMoE rows (Grok-1): Megatron-Core 0.9's alltoall token dispatcher all-gathers the k routed copies over "
          "the expert's TP ranks and reduce-scatters the experts' output with plain collectives (token_dispatcher.py), "
          "outside Transformer Engine's userbuffer overlap: the nemo profile's moe_tp_dispatch 'alltoall' (since the "
          "seventh session; before, 'gemm': the experts' TP traffic at one activation per call, hidden like the "
          "rest); and the bound with every TP collective exposed (tp_overlap 0, pp_overlap 1):\n")
    print("| run | error, dispatch as a dense MLP's ('gemm', as first planned) | error, as planned | "
          "error, TP exposed (bound) |")
    print("|---|---|---|---|")
    for r in runs:
        if r["recipe"] == "grok1-314b":
            e_gemm = step_time_error(r, plan_row(r, _moe_tp_dispatch="gemm"))
            e0 = step_time_error(r, plan_row(r))
            e1 = step_time_error(r, plan_row(r, _overlaps=(0.0, 1.0)))
            print(f"| {r['id'].removeprefix('dgxc-')} | {e_gemm * 100:+.1f}% | {e0 * 100:+.1f}% | {e1 * 100:+.1f}% |")


def held_out_deepseek_v2() -> None:
    """Held out, added last: DeepSeek-V2's published 172.8K H800 GPU-hours per trillion tokens (arXiv:2405.04434
    sec. 3.2.3) with its published layout, PP16 x EP8 x ZeRO-1 and no TP (sec. 3.1.3), planned by
    benchmarks/_gpu_hours.py as the asset's ``deepseek_v2`` group states: the deepseek-v3 profile with what V2 did
    not have overridden, every assumption fixed before the first plan. Nothing is fitted on it."""
    import _gpu_hours as gh

    d = gh.load()["deepseek_v2"]
    pub = d["published"]["gpu_hours_per_trillion_tokens"]
    print("\n### Held out: DeepSeek-V2, H800 GPU-hours per trillion tokens (published layout; nothing fitted)\n")
    print(f"published: {pub / 1e3:.1f}K ({d['published']['source']})\n")
    print(f"GPU count: {d['n_gpus_rule']}\n")
    for k, v in {**d["assumed"], **d["profile_overrides"]}.items():
        print(f"- {k}: {v}")
    print("\n| GPUs | layout | ep_overlap | feasible | GiB | MFU | tok/s/GPU | step s | bubble s | EP exposed s | "
          "GPU-hours / 1T tokens | error | without the 1F1B bubble | error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [(n, None) for n in (d["n_gpus"], *d["sensitivity_n_gpus"])]
    rows[1:1] = [(d["n_gpus"], 0.0), (d["n_gpus"], 1.0)]
    for n, ov in rows:
        p = gh.deepseek_v2_plan(d, n, ov)
        used = gh.deepseek_v2_shared_expert_overlap(d, n) if ov is None else ov
        no_bubble = p.gpu_hours * (1 - p.time.bubble_s / p.step_time_s)
        label = f"{used:.2f} (shared experts)" if ov is None else f"{ov:g} (bound)"
        print(f"| {n} | {p.layout.short()} | {label} | {p.feasible} | {p.memory.total_bytes / 2**30:.1f} | "
              f"{p.mfu:.3f} | {p.tokens_per_s / n:.0f} | {p.step_time_s:.2f} | {p.time.bubble_s:.2f} | "
              f"{p.time.ep_s:.2f} | {p.gpu_hours / 1e3:.1f}K | {(p.gpu_hours / pub - 1) * 100:+.1f}% | "
              f"{no_bubble / 1e3:.1f}K | {(no_bubble / pub - 1) * 100:+.1f}% |")
    p = gh.deepseek_v2_plan(d)
    print(f"\npublished throughput: {1e12 / (pub * 3600):.0f} tok/s/GPU; MFU it implies at the plan's FLOP count: "
          f"{p.mfu * p.gpu_hours / pub:.3f}")
    print("GPU-hours error = predicted / published - 1 (negative: predicted fewer hours, too fast); 'without the "
          "1F1B bubble': the step less the bubble the planner charges, a bound for the zero-bubble schedule V2 used")
    print(f"\nnot modelled: {d['not_modelled']}")


def held_out_falcon_180b() -> None:
    """Held out, added last: Falcon-180B's published ~7,000,000 A100-40GB GPU-hours for 3.5T tokens (Hugging Face
    blog) with its published layout, TP8 PP8 DP64 with ZeRO on 4,096 GPUs (model card), planned by
    benchmarks/_gpu_hours.py as the asset's ``falcon_180b`` group states, every rule fixed before the first plan;
    then the what-ifs that locate the gap (none is applied). Nothing is fitted on it."""
    import _gpu_hours as gh

    d = gh.load()["falcon_180b"]
    pub = d["published"]["gpu_hours"]
    print("\n### Held out: Falcon-180B, total A100-40GB GPU-hours (published layout; nothing fitted)\n")
    print(f"published: {pub / 1e6:.1f}M ({d['published']['precision_note']}; {d['published']['source']})\n")
    for k, v in d["assumed"].items():
        print(f"- {k}: {v}")
    p = gh.falcon_plan(d)
    t = p.time
    rows = [("as the asset states", p), ("no sequence parallelism", gh.falcon_plan(d, sequence_parallel=False)),
            ("full recompute", gh.falcon_plan(d, recompute="full")),
            ("what-if: P4d's 50 Gb/s per GPU", gh.falcon_plan(d, inter_node_bandwidth_bytes_per_s=6.25e9)),
            ("what-if: interleave 2", gh.falcon_plan(d, interleave=2)),
            ("sequential block, same weights (as planned before parallel_block)",
             gh.falcon_plan(d, parallel_block=False))]
    print("\n| plan | layout | feasible | GiB | MFU | tok/s/GPU | step s | bubble s | TP s | DP exposed s | "
          "GPU-hours | error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, q in rows:
        print(f"| {label} | {q.layout.short()} | {q.feasible} | {q.memory.total_bytes / 2**30:.1f} | {q.mfu:.3f} | "
              f"{q.tokens_per_s / d['n_gpus']:.0f} | {q.step_time_s:.2f} | {q.time.bubble_s:.2f} | {q.time.tp_s:.2f} | "
              f"{q.time.dp_exposed_s:.2f} | {q.gpu_hours / 1e6:.2f}M | {(q.gpu_hours / pub - 1) * 100:+.1f}% |")
    h = p.gpu_hours * (1 - t.bubble_s / p.step_time_s)
    print(f"what-if, without the 1F1B bubble (bound): {h / 1e6:.2f}M, {(h / pub - 1) * 100:+.1f}%")
    print(f"\npublished throughput: {d['train']['total_tokens'] / (pub * 3600):.0f} tok/s/GPU; MFU it implies at the "
          f"plan's FLOP count: {p.mfu * p.gpu_hours / pub:.3f} (a lower bound: the hours are total GPU time)")
    print("GPU-hours error = predicted / published - 1 (positive: predicted more hours, too slow); '~7,000,000' has "
          "one significant figure (6.5M to 7.5M)")
    print(f"\nnot modelled: {d['not_modelled']}")


#: The b200/gb200 catalog entries before they took published kernel figures (commit 6d2b413): matmul at H100's
#: 0.65 (no Blackwell MAMF read) and no attention figure, so attention at that 0.65 too: a what-if, not applied.
BLACKWELL_BEFORE_KERNEL_FIGURES = {"matmul_efficiency": 0.65, "attention_efficiency": 0.65}


def _held_out_groups(runs: list[dict], errs: list[float], hits: list[dict], feasible: list[bool], groups, bounds: dict
                     ) -> None:
    """The summary rows of a held-out set (one per ``(label, keep)`` group: n, feasible, median and max |error|, band
    hits) and the line that sets its median and max against the bounds fixed before planning."""
    from _held_out_mlperf import median_max

    for label, keep in groups:
        idx = [i for i, r in enumerate(runs) if keep(r)]
        med, worst = median_max([errs[i] for i in idx])
        print(f"| {label} | {len(idx)} | {sum(feasible[i] for i in idx)} | {med * 100:.1f}% | {worst * 100:.1f}% | "
              f"{sum(hits[i][0.8] for i in idx)} | {sum(hits[i][0.95] for i in idx)} |")
    med, worst = median_max(errs)
    past = [r["id"] for r, e in zip(runs, errs, strict=True) if abs(e) > bounds["max_abs_error"]]
    print(f"\nall {len(runs)} rows: median |step-time error| {med * 100:.1f}%, max {worst * 100:.1f}%; bounds fixed "
          f"before planning: median {bounds['median_abs_error'] * 100:.0f}%, each row "
          f"{bounds['max_abs_error'] * 100:.0f}%; rows past the row bound: {', '.join(past) or 'none'}")


def held_out_mlperf() -> None:
    """NVIDIA's MLPerf Training submissions (v3.1-v5.1), held out: every row the asset's selection rule keeps
    (tests/assets/planner_held_out_mlperf.json), planned with the nemo profile as the dgxc rows are; feasibility,
    step-time error against the logs' per-step time, whether the measured time lies in the plan's 80% and 95% band,
    the first planning, and for the Blackwell rows their errors with the catalog entries before they took published
    kernel figures (a what-if, not applied)."""
    from _held_out_mlperf import band_hits, load, plan_row, step_time_error

    data = load()
    runs = data["runs"]
    print("\n### Held out: MLPerf Training results (NVIDIA's NeMo submissions, v3.1-v5.1; every row the selection "
          "rule keeps; nothing fitted)\n")
    print(f"selection rule (fixed before planning): {data['selection_rule']}\n")
    print(f"second rule (fixed before its rows were planned): {data['other_submitters_rule']}\n")
    print(f"third rule (fixed before its rows were planned): {data['other_submitters_8b_rule']}\n")
    print("| run | GPUs | layout | feasible | GiB | step s | measured (files' min-max) | error | in 80% band | "
          "in 95% band |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    errs, hits = [], []
    for r in runs:
        p = plan_row(r)
        m, e, h = r["measured"], step_time_error(r, p), band_hits(r, p)
        errs.append(e)
        hits.append(h)
        print(f"| {r['id'].removeprefix('mlperf-')} | {r['n_gpus']} | {p.layout.short()} | {p.feasible} | "
              f"{p.memory.total_bytes / 2**30:.1f} | {p.step_time_s:.3f} | {m['step_time_s']} "
              f"({m['spread_s'][0]}-{m['spread_s'][1]}) | {e * 100:+.1f}% | {h[0.8]} | {h[0.95]} |")
    print("\nerror = predicted step time / measured - 1 (positive: predicted too slow); measured: the median over "
          "the result files of each file's median logged per-step time; band: Plan.step_time_band (planner/band.py)\n")
    print("| rows | n | feasible | median abs error | max | inside 80% band | inside 95% band |")
    print("|---|---|---|---|---|---|---|")
    groups = (("all", lambda r: True), ("first rule: NVIDIA's", lambda r: r["rule"] == "nvidia"),
              ("second rule: other submitters' GPT-3 and 405B", lambda r: r["rule"] == "other_submitters"),
              ("third rule: other submitters' 8B", lambda r: r["rule"] == "other_submitters_8b"),
              ("H100", lambda r: r["gpu"] == "h100-sxm"), ("H200", lambda r: r["gpu"] == "h200"),
              ("B200 and GB200", lambda r: r["gpu"] in ("b200", "gb200")),
              ("GPT-3 175B", lambda r: r["benchmark"] == "gpt3"),
              ("Llama 3.1 405B", lambda r: r["benchmark"] == "llama31_405b"),
              ("Llama 3.1 8B", lambda r: r["benchmark"] == "llama31_8b"))
    _held_out_groups(runs, errs, hits, [plan_row(r).feasible for r in runs], groups, data["error_bounds"])
    first = data["first_planning"]
    print(f"first planning: {first['summary']}; {first['other_submitters_summary']}; "
          f"{first['other_submitters_8b_summary']}")
    ts = [abs(r["measured"]["timestamp_step_time_s"] / r["measured"]["step_time_s"] - 1) for r in runs]
    print(f"logged per-step time vs the MLLOG timestamps between training values: max difference {max(ts) * 100:.1f}%")
    print("\nBlackwell rows: the b200/gb200 entries' efficiencies come from published figures (MAMF for the "
          "matmul; NVIDIA cudnn-frontend's SDPA training benchmark at Llama 3.1 405B's attention shape for the "
          "attention; docs/models-and-hardware.md), not from these rows; before them (commit 6d2b413) both ran at "
          "H100's matmul 0.65, attention included, which the first planning used (what-if, not applied):\n")
    print("| run | error, as planned | error, before the kernel figures (0.65 / 0.65) |")
    print("|---|---|---|")
    for r, e in zip(runs, errs, strict=True):
        if r["gpu"] in ("b200", "gb200"):
            q = plan_row(r, gpu_overrides={**r.get("gpu_overrides", {}), **BLACKWELL_BEFORE_KERNEL_FIGURES})
            print(f"| {r['id'].removeprefix('mlperf-')} | {e * 100:+.1f}% | {step_time_error(r, q) * 100:+.1f}% |")
    _mlperf_one_microbatch_whatif(runs, errs)


def _mlperf_one_microbatch_whatif(runs: list[dict], errs: list[float]) -> None:
    """The MLPerf rows that run one micro-batch per step (every Llama 3.1 8B row): the bound with all DP traffic
    exposed (dp_overlap 0; the nemo profile hides it behind the step's compute), a what-if, not applied."""
    from _held_out_mlperf import step_time_error
    from _published_runs import build

    print("\nRows with one micro-batch per step (GBS = DP x micro-batch: every 8B row): the DP reduce-scatter and "
          "all-gather can hide only behind one forward and backward; bound with all DP traffic exposed "
          "(dp_overlap 0), not applied:\n")
    print("| run | DP traffic s | exposed as planned s | error, as planned | error, DP exposed (bound) |")
    print("|---|---|---|---|---|")
    for r, e in zip(runs, errs, strict=True):
        lay = r["layout"]
        dp = r["n_gpus"] // (lay["tp"] * lay["pp"] * lay["cp"])
        if r["train"]["global_batch"] != dp * lay["micro_batch"]:
            continue
        i = build(r)
        p = plan(i.model, i.cluster, i.train, i.layout, framework=i.framework,
                 memory_conventions=i.memory_conventions)
        q = plan(i.model, i.cluster, i.train, i.layout, framework=dataclasses.replace(i.framework, dp_overlap=0.0),
                 memory_conventions=i.memory_conventions)
        print(f"| {r['id'].removeprefix('mlperf-')} | {p.time.dp_total_s:.4f} | {p.time.dp_exposed_s:.4f} | "
              f"{e * 100:+.1f}% | {step_time_error(r, q) * 100:+.1f}% |")


def held_out_megatron_bridge() -> None:
    """Megatron-Bridge's published 25.11 performance summary, held out: every row the asset's selection rule keeps
    (tests/assets/planner_held_out_megatron_bridge.json), planned with the nemo profile and the settings read from the
    performance recipes; feasibility, step-time error against the table's tokens/s/GPU, whether the measured step
    lies in the plan's 80% and 95% band, summaries by system, model and precision, and the first planning."""
    from _held_out_megatron_bridge import band_hits, load, plan_row, step_time_error

    data = load()
    runs = data["runs"]
    src = data["source"]
    print(f"\n### Held out: Megatron-Bridge performance summary ({src['repo']} {src['file']}, NeMo {src['release']} "
          f"tables at {src['tag']}; every row the selection rule keeps; nothing fitted)\n")
    print(f"selection rule (fixed before planning): {data['selection_rule']}\n")
    print(f"recipes (read before planning): {data['recipe_reading']}\n")
    print("| run | GPUs | layout | feasible | GiB | step s | measured step s | tokens/s/GPU predicted | measured | "
          "error | in 80% band | in 95% band |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    plans = [plan_row(r) for r in runs]
    errs = [step_time_error(r, p) for r, p in zip(runs, plans, strict=True)]
    hits = [band_hits(r, p) for r, p in zip(runs, plans, strict=True)]
    for r, p, e, h in zip(runs, plans, errs, hits, strict=True):
        m = r["measured"]
        print(f"| {r['id'].removeprefix('mbridge-')} | {r['n_gpus']} | {p.layout.short()} | {p.feasible} | "
              f"{p.memory.total_bytes / 2**30:.1f} | {p.step_time_s:.3f} | {m['step_time_s']} | "
              f"{p.tokens_per_s / r['n_gpus']:,.0f} | {m['tokens_per_s_per_gpu']:,} | {e * 100:+.1f}% | {h[0.8]} | "
              f"{h[0.95]} |")
    print("\nerror = predicted step time / measured - 1 (positive: predicted too slow); measured step = GBS x sequence "
          "length / (the table's tokens/s/GPU x GPUs); band: Plan.step_time_band (planner/band.py)\n")
    print("| rows | n | feasible | median abs error | max | inside 80% band | inside 95% band |")
    print("|---|---|---|---|---|---|---|")
    groups = [("all", lambda r: True)]
    groups += [(s, lambda r, s=s: r["source"]["system"] == s) for s in ("DGX-H100", "DGX-B200", "DGX-GB200")]
    groups += [(m, lambda r, m=m: r["table_model"] == m) for m in dict.fromkeys(r["table_model"] for r in runs)]
    groups += [(q, lambda r, q=q: r["source"]["precision"].startswith(q)) for q in ("BF16", "FP8-CS")]
    _held_out_groups(runs, errs, hits, [p.feasible for p in plans], groups, data["error_bounds"])
    if "first_planning" in data:
        print(f"first planning: {data['first_planning']['summary']}")
    _megatron_bridge_whatifs(runs, plans)
    print(f"left out ({len(data['left_out'])}): " + "; ".join(f"{k}: {v}" for k, v in data["left_out"].items()))


def _megatron_bridge_whatifs(runs: list[dict], plans: list) -> None:
    """What-ifs on the Megatron-Bridge rows, not applied: every stored activation at 1 byte under FP8 (a bound on
    Transformer Engine keeping fp8 copies of its linears' inputs), and the step-time terms of the rows past the bound.
    """
    from _held_out_megatron_bridge import plan_row, step_time_error

    print("\nFP8 rows: GiB as planned and with every stored activation at 1 byte (activation_bytes 1; a bound on "
          "Transformer Engine saving the fp8-cast inputs of its linears for backward, which the planner stores at 2 "
          "bytes), not applied:\n")
    print("| run | usable GiB | GiB as planned | activations GiB | GiB at 1 byte | feasible at 1 byte |")
    print("|---|---|---|---|---|---|")
    for r, p in zip(runs, plans, strict=True):
        if r["train"]["precision"] != "fp8":
            continue
        q = plan_row(r, memory_conventions={**r["memory_conventions"], "activation_bytes": 1.0})
        print(f"| {r['id'].removeprefix('mbridge-')} | {p.cluster.gpu.usable_memory_bytes / 2**30:.1f} | "
              f"{p.memory.total_bytes / 2**30:.1f} | {p.memory.activations_bytes / 2**30:.1f} | "
              f"{q.memory.total_bytes / 2**30:.1f} | {q.feasible} |")
    print("\nRows past the row bound, step-time terms as planned (s):\n")
    print("| run | step | matmul | elementwise | EP | TP | PP bubble | DP exposed | measured step | error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r, p in zip(runs, plans, strict=True):
        e = step_time_error(r, p)
        if abs(e) > 0.25:
            t = p.time
            print(f"| {r['id'].removeprefix('mbridge-')} | {t.step_time_s:.3f} | {t.matmul_s:.3f} | "
                  f"{t.elementwise_s:.3f} | {t.ep_s:.3f} | {t.tp_s:.3f} | {t.bubble_s:.3f} | {t.dp_exposed_s:.3f} | "
                  f"{r['measured']['step_time_s']} | {e * 100:+.1f}% |")


if __name__ == "__main__":
    published_runs(main())
    nemo_overlaps(load_runs()["runs"])
    float8_costs(load_runs()["runs"])
    gemm_shapes(load_runs()["runs"])
    held_out_2025(load_runs())
    async_tp(load_runs())
    held_out_gpu_hours()
    held_out_llm_foundry()
    held_out_nemo_perf()
    held_out_nemo_long_seq()
    held_out_dgxc()
    held_out_deepseek_v2()
    held_out_falcon_180b()
    held_out_mlperf()
    held_out_megatron_bridge()
