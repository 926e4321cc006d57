"""Forecast error of the demo over several seeds: each seed trains its own isoFLOP grid and held-out run,
fits the Chinchilla law and checks the held-out loss against the forecast's 95% interval (new run).

    .venv/bin/python benchmarks/demo_forecast.py --seeds 0 1 2 --quick

Prints a table that can be pasted (seed, forecast, interval, measured, error, inside) and the summary:
mean absolute error and how many held-out runs landed inside their interval.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--quick", action="store_true", help="the two-minute demo settings")
    ap.add_argument("--store", type=Path, default=None, help="run store (default: a temporary file)")
    args = ap.parse_args()

    from scalelab.demo import run_demo

    store = args.store or Path(tempfile.mkdtemp()) / "runs.sqlite"
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        r = run_demo(quick=args.quick, seed=seed, store=store, out=None, quiet=True)
        f, h = r.forecast, r.holdout
        rows.append((seed, f["loss"], f["loss_lo"], f["loss_hi"], h["val_loss"], 100 * r.forecast_error,
                     r.inside_interval, time.perf_counter() - t0))
    mode = "quick" if args.quick else "full"
    print(f"demo forecast over seeds ({mode} settings, store {store})")
    print("| seed | forecast | 95% low | 95% high | measured | error % | inside | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for s, p, lo, hi, m, e, ins, w in rows:
        print(f"| {s} | {p:.4f} | {lo:.4f} | {hi:.4f} | {m:.4f} | {e:+.2f} | {'yes' if ins else 'NO'} | {w:.0f} |")
    mae = sum(abs(r[5]) for r in rows) / len(rows)
    inside = sum(r[6] for r in rows)
    print(f"\nmean |error| {mae:.2f}%, inside the 95% interval: {inside}/{len(rows)}")


if __name__ == "__main__":
    main()
