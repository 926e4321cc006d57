"""Planner speed: one plan, the Llama-3.1-405B / 16,384-H100 layout search and the DeepSeek-V3 / 2,048-H800
search with its framework profile (issue 9 targets: one plan at most 1 ms, the search at most 1 s on one
core, also under the nemo profile, whose bounds hide TP and PP traffic; the MoE search has no target in
the issue, 1 s is shown for scale). Prints a table to paste; timings are measured here, in this process,
side by side with the targets (ratio = measured / target).

    .venv/bin/python benchmarks/planner_speed.py
"""

from __future__ import annotations

import statistics
import time

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan, search_layouts


def best_of(fn, repeat: int, number: int) -> float:
    """Median over ``repeat`` runs of the mean time of ``number`` calls, seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times)


def main() -> None:
    model = get_model("llama-3.1-405b")
    cluster = get_cluster("h100-sxm", 16384)
    train = TrainSpec(seq_len=8192, global_batch_tokens=16 * 1024 * 1024, total_tokens=15.6e12)
    layout = Layout(tp=8, pp=16, interleave=4, zero=2, sequence_parallel=True)

    plan(model, cluster, train, layout)  # warm imports and caches
    one = best_of(lambda: plan(model, cluster, train, layout), repeat=5, number=200)
    moe = get_model("deepseek-v3")
    moe_cluster = get_cluster("h800", 2048)
    moe_train = TrainSpec(seq_len=4096, global_batch=14336, precision="fp8")
    moe_layout = Layout(pp=16, ep=64, zero=1, recompute="full")
    one_moe = best_of(lambda: plan(moe, moe_cluster, moe_train, moe_layout), repeat=5, number=100)

    t0 = time.perf_counter()
    r = search_layouts(model, cluster, train, top=5)
    search_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    llama3 = search_layouts(model, cluster, train, top=1, fixed={"tp": 8, "pp": 16, "cp": 1})
    fixed_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    nemo = search_layouts(model, cluster, train, top=5, framework="nemo")
    nemo_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = search_layouts(moe, moe_cluster, moe_train, top=5, framework="deepseek-v3")
    moe_search_s = time.perf_counter() - t0

    rows = [
        ("one plan, Llama-3.1-405B, TP8 PP16 v4 ZeRO-2", one * 1e3, "ms", 1.0),
        ("one plan, DeepSeek-V3, PP16 EP64 ZeRO-1", one_moe * 1e3, "ms", 1.0),
        ("search, 405B on 16,384 H100 (all layouts)", search_s, "s", 1.0),
        ("search, same with TP8 PP16 CP1 fixed", fixed_s, "s", 1.0),
        ("search, 405B on 16,384 H100 (framework nemo: TP and PP overlaps)", nemo_s, "s", 1.0),
        ("search, DeepSeek-V3 on 2,048 H800 (framework deepseek-v3)", moe_search_s, "s", 1.0),
    ]
    print("| measurement | time | target | ratio (time/target) |")
    print("|---|---|---|---|")
    for name, t, unit, target in rows:
        print(f"| {name} | {t:.3g} {unit} | {target:g} {unit} | {t / target:.3g} |")
    print()
    print("| search counts | 405B | 405B (nemo) | DeepSeek-V3 |")
    print("|---|---|---|---|")
    for k in ("n_explored", "n_evaluated", "n_feasible", "n_rejected", "n_pruned_by_bound"):
        print(f"| {k} | {getattr(r, k)} | {getattr(nemo, k)} | {getattr(ds, k)} |")
    print()
    print("| rank | layout | step s | MFU % | memory GiB |")
    print("|---|---|---|---|---|")
    for i, p in enumerate(r.best, 1):
        print(f"| {i} | {p.layout.short()} | {p.step_time_s:.3g} | {p.mfu * 100:.1f} "
              f"| {p.memory.total_bytes / 2**30:.1f} |")
    b = llama3.best[0]
    print(f"| Llama 3 (TP8 PP16 DP128) best | {b.layout.short()} | {b.step_time_s:.3g} | {b.mfu * 100:.1f} | "
          f"{b.memory.total_bytes / 2**30:.1f} |")
    print()
    print(f"Llama 3's degrees: bubble {b.time.bubble_s / b.step_time_s * 100:.0f}% of the step with "
          f"{train.global_batch // (b.layout.dp * b.layout.micro_batch)} micro-batches per pipeline; the top layout: "
          f"{r.best[0].time.bubble_s / r.best[0].step_time_s * 100:.0f}% with "
          f"{train.global_batch // (r.best[0].layout.dp * r.best[0].layout.micro_batch)}.")


if __name__ == "__main__":
    main()
