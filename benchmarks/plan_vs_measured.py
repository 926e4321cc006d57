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
    from scalelab.report.plan_vs_measured import plan_vs_measured_rows
    from scalelab.tunnel.calibrate import calibrate, write_profile
    from scalelab.tunnel.grid import Grid
    from scalelab.tunnel.perf import profile_path
    from scalelab.tunnel.runner import run_grid
    from scalelab.tunnel.store import RunStore
    from scalelab.tunnel.train import RunConfig

    t0 = time.perf_counter()
    cal = calibrate(device=args.device, quick=args.quick, threads=args.threads)
    write_profile(cal, profile_path())
    print(cal.report())
    corpus = home / "corpus.txt"
    corpus.write_text((Path(__file__).parents[1] / "tests" / "assets" / "golden_corpus.txt").read_text() * 40)
    sizes = SIZES[:2] if args.quick else SIZES
    configs = [RunConfig.model_validate({
        "model": {"n_layers": L, "d_model": d, "n_heads": 4, "d_ff": 4 * d, "vocab_size": 256},
        "n_tokens": args.steps * b * 64, "lr": 1e-3, "seq_len": 64, "batch_size": b, "corpus": str(corpus),
        "eval_tokens": 1024, "device": args.device}) for L, d, b in sizes]
    with RunStore(home / "runs.sqlite") as store:
        run_grid(Grid(configs=configs, name="plan-vs-measured"), store, workers=1, quiet=True)
        table = store.runs_table()
    again = calibrate(device=args.device, quick=args.quick, threads=args.threads)
    drift = again.matmul_rate("fp32") / cal.matmul_rate("fp32")
    rows = plan_vs_measured_rows(table)
    cols = ("model", "N", "batch x seq", "step ms measured", "step ms planned", "step planned/measured",
            "activations MiB measured", "activations MiB planned", "memory planned/measured")
    print("\n" + " | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    ratios = [r["step planned/measured"] for r in rows if r["step planned/measured"] is not None]
    within = sum(abs(x - 1) <= 0.25 for x in ratios)
    print(f"\nstep time planned/measured: median {statistics.median(ratios):.3f}, "
          f"{within}/{len(ratios)} runs within 25%" if ratios else "\nno planned step time (no profile?)")
    print(f"matmul rate after the runs / before: {drift:.2f} (load on this machine during the benchmark)")
    print(f"total {time.perf_counter() - t0:.0f} s; runs and profile in {home}")
    return 0 if ratios and within == len(ratios) else 1


if __name__ == "__main__":
    sys.exit(main())
