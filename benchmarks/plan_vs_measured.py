"""Plan -> prove on this machine: `scalelab calibrate`, then tunnel runs of several sizes, each with the
planner's predicted step time and memory beside the measured ones (issue 10, part 3; acceptance: on CPU,
after calibrate, the predicted step time is within 25% of the measured one).

    PYTHONPATH=src .venv/bin/python benchmarks/plan_vs_measured.py [--quick] [--steps 16] [--threads 1]

Everything runs in a temporary $SCALELAB_HOME: the profile is written to its device.toml, which the tunnel
runs pick up (scalelab.tunnel.perf.device_profile). Runs go through the normal store and worker path
(run_grid, one worker), so the figures printed are the stored columns (runs_table). The calibration is
repeated after the runs; on a shared machine the two differ by the load, and the spread is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

SIZES = ((2, 64, 16), (4, 128, 16), (4, 256, 16))  # (n_layers, d_model, batch_size); seq 64, byte tokens


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="quick calibration and two small sizes (CI smoke)")
    ap.add_argument("--steps", type=int, default=16, help="optimizer steps per run")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for calibration and runs")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="scalelab-pvm-"))
    os.environ["SCALELAB_HOME"] = str(home)
    os.environ["SCALELAB_NUM_THREADS"] = str(args.threads)
    from scalelab.hardware.catalog import get_gpu
    from scalelab.report.plan_vs_measured import plan_vs_measured_rows
    from scalelab.tunnel.calibrate import calibrate, write_profile
    from scalelab.tunnel.grid import Grid
    from scalelab.tunnel.perf import planned, profile_path
    from scalelab.tunnel.runner import run_grid
    from scalelab.tunnel.store import RunStore
    from scalelab.tunnel.train import RunConfig

    t0 = time.perf_counter()
    corpus = home / "corpus.txt"
    corpus.write_text((Path(__file__).parents[1] / "tests" / "assets" / "golden_corpus.txt").read_text() * 40)
    sizes = SIZES[:2] if args.quick else SIZES
    configs = [RunConfig.model_validate({
        "model": {"n_layers": L, "d_model": d, "n_heads": 4, "d_ff": 4 * d, "vocab_size": 256},
        "n_tokens": args.steps * b * 64, "lr": 1e-3, "seq_len": 64, "batch_size": b, "corpus": str(corpus),
        "eval_tokens": 1024, "device": args.device}) for L, d, b in sizes]
    bracketed: dict[str, float] = {}
    drifts = []
    with RunStore(home / "runs.sqlite") as store:
        for cfg in configs:
            # calibrate right before each run (the run stores its prediction from this profile) and again
            # right after: on a loaded machine the rate moves, and the mean of the two brackets the run
            before = calibrate(device=args.device, quick=args.quick, threads=args.threads)
            write_profile(before, profile_path())
            print(before.report())
            run_grid(Grid(configs=[cfg], name="plan-vs-measured"), store, workers=1, quiet=True)
            after = calibrate(device=args.device, quick=args.quick, threads=args.threads)
            drifts.append(after.matmul_rate("fp32") / before.matmul_rate("fp32"))
            mean = _mean_profile(before, after, home / "mean.toml")
            bracketed[cfg.content_hash()] = planned(cfg, get_gpu(str(mean)), "fp32")["pred_step_s"]
        table = store.runs_table()
    rows = plan_vs_measured_rows(table)
    for r, h, meas in zip(rows, table["hash"], table["step_s"], strict=True):
        r["bracketed/measured"] = bracketed[h] / meas
    cols = ("model", "N", "batch x seq", "step ms measured", "step ms planned", "step planned/measured",
            "bracketed/measured", "activations MiB measured", "activations MiB planned", "memory planned/measured")
    print("\n" + " | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    ratios = [r["step planned/measured"] for r in rows if r["step planned/measured"] is not None]
    within = sum(abs(x - 1) <= 0.25 for x in ratios)
    print(f"\nstep time planned/measured: median {statistics.median(ratios):.3f}, "
          f"{within}/{len(ratios)} runs within 25%" if ratios else "\nno planned step time (no profile?)")
    br = [r["bracketed/measured"] for r in rows]
    print(f"with the mean of the calibrations before and after each run: median {statistics.median(br):.3f}, "
          f"{sum(abs(x - 1) <= 0.25 for x in br)}/{len(br)} within 25%")
    print("matmul rate after / before each run: " + ", ".join(f"{d:.2f}" for d in drifts)
          + " (1 = a quiet machine)")
    met = bool(ratios) and within == len(ratios)
    verdict = "MET" if met else "NOT MET"
    if args.quick:  # --quick times small matmuls that sit in cache: a smoke test of the path, not a verdict
        verdict += " (quick mode: small calibration sizes, not a verdict)"
    print(f"acceptance (issue 10: predicted step time within 25% of measured, every run): {verdict}")
    print(f"total {time.perf_counter() - t0:.0f} s; runs and profile in {home}")
    return 0


def _mean_profile(a, b, path: Path) -> Path:
    """A profile with the mean of two calibrations' rates (matmul per size, attention, eager elementwise,
    optimizer, copy)."""
    from scalelab.tunnel.calibrate import Calibration, write_profile

    mean = Calibration(device=a.device, name=a.name, threads=a.threads, torch_version=a.torch_version,
                       memory_bytes=a.memory_bytes, copy_bytes=a.copy_bytes,
                       copy_bytes_per_s=(a.copy_bytes_per_s + b.copy_bytes_per_s) / 2)
    mean.matmul_flops_per_s = {d: {k: (v + b.matmul_flops_per_s[d][k]) / 2 for k, v in by.items()}
                               for d, by in a.matmul_flops_per_s.items()}
    mean.attention_flops_per_s = {k: (v + b.attention_flops_per_s[k]) / 2 for k, v in a.attention_flops_per_s.items()}
    for f in ("eager_bytes_per_s", "eager_layer_overhead_s", "optimizer_tensor_overhead_s"):
        x, y = getattr(a, f), getattr(b, f)
        setattr(mean, f, None if x is None or y is None else (x + y) / 2)
    return write_profile(mean, path)


if __name__ == "__main__":
    sys.exit(main())
