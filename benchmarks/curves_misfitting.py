"""Learning-curve forecasts on the (Mis)Fitting checkpoints (Li et al. 2025; docs/curves.md, issue 11).

Each run (model, sweep, peak LR, total steps) with >= 8 checkpoints that reaches its last step is
forecast from the checkpoints up to 10%, 25% and 50% of its steps; the error is |forecast/final - 1|
and coverage is how often the 95% band holds the final loss. Cross-run forecasts use only reference
runs of *other* sizes. Runs are split once (seeded, by run) into a calibration half, on which the
method's features were chosen, and a held-out half that was not looked at while choosing them; the
held-out runs' references are calibration runs of other sizes.

The data has no stated licence and does not ship: it is read from $SCALELAB_ANCHORS or
../shared/anchors beside the checkout.

Usage::

    python benchmarks/curves_misfitting.py [--bootstrap 50]
"""

from __future__ import annotations

import argparse
import csv
import os
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from scalelab.curves import MIN_POINTS, CrossRunForecaster, PrefixForecaster

FILE = "misfitting-scaling-laws/data/scaling_results.csv"


def load_runs() -> list[dict]:
    root = Path(os.environ.get("SCALELAB_ANCHORS", Path(__file__).resolve().parents[2] / "shared" / "anchors"))
    groups: dict[tuple, dict[float, float]] = defaultdict(dict)
    sizes: dict[tuple, float] = {}
    with (root / FILE).open(newline="") as fh:
        for r in csv.DictReader(fh):
            key = (r["model"], r["sweep"], r["peak_lr"], int(float(r["total_steps"])))
            groups[key][float(r["current_steps"])] = float(r["loss"])
            sizes[key] = float(r["N"])
    runs = []
    for key, pts in sorted(groups.items()):
        t = np.array(sorted(pts))
        if t.size >= 8 and t[-1] >= key[3]:
            runs.append({"key": key, "model": key[0], "N": sizes[key], "t": t, "L": np.array([pts[s] for s in t]),
                         "T": key[3]})
    return runs


def prefix(run: dict, f: float) -> tuple[np.ndarray, np.ndarray] | None:
    m = run["t"] <= f * run["T"] + 1e-9
    return (run["t"][m], run["L"][m]) if m.sum() >= MIN_POINTS else None


def score(preds: list[tuple[float, float, float, float]]) -> str:
    if not preds:
        return "- | - | 0"
    a = np.array(preds)
    err = np.abs(a[:, 0] / a[:, 3] - 1)
    cov = (a[:, 1] <= a[:, 3]) & (a[:, 3] <= a[:, 2])
    return f"{100 * np.median(err):.2f}% | {100 * cov.mean():.0f}% | {len(a)}"


def forecast_set(targets: list[dict], pool: list[dict], f: float, method: str, n_boot: int) -> list:
    out = []
    for r in targets:
        pre = prefix(r, f)
        if pre is None:
            continue
        if method == "prefix":
            fc = PrefixForecaster(n_bootstrap=n_boot).forecast(*pre, total_steps=r["T"])
        else:
            refs = [(q["t"], q["L"], q["T"]) for q in pool if q["model"] != r["model"] and q is not r]
            fc = CrossRunForecaster(min_references=8).fit(refs).forecast(*pre, total_steps=r["T"])
            if method == "ratio":  # the baseline: median final/partway ratio of the references, no band model
                ratios = [q["L"][-1] / np.exp(np.interp(np.log(pre[0][-1] / r["T"] * q["T"]), np.log(q["t"]),
                                                        np.log(q["L"]))) for q in pool if q["model"] != r["model"]]
                lo, mid, hi = np.quantile(ratios, [0.025, 0.5, 0.975]) * pre[1][-1]
                out.append((mid, lo, hi, r["L"][-1]))
                continue
        out.append((fc.loss[-1], fc.loss_lo[-1], fc.loss_hi[-1], r["L"][-1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", type=int, default=50)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    runs = load_runs()
    rng = np.random.default_rng(0)
    calib_mask = rng.random(len(runs)) < 0.5
    calib = [r for r, c in zip(runs, calib_mask, strict=True) if c]
    held = [r for r, c in zip(runs, calib_mask, strict=True) if not c]
    print(f"{len(runs)} runs ({len(calib)} calibration, {len(held)} held out), "
          f"{len({r['model'] for r in runs})} sizes\n")
    print("| method | split | from | median error | 95% band coverage | runs |")
    print("|---|---|---:|---:|---:|---:|")
    for method in ("prefix", "ratio", "cross-run"):
        for split, targets in (("calibration", calib), ("held out", held)):
            for f in (0.1, 0.25, 0.5):
                preds = forecast_set(targets, calib, f, method, args.bootstrap)
                print(f"| {method} | {split} | {f:.0%} | {score(preds)} |")
    print("\nAcross sizes: references = every run up to 400M; targets = the 1B runs\n")
    print("| method | from | median error | 95% band coverage | runs |")
    print("|---|---:|---:|---:|---:|")
    small = [r for r in runs if r["model"] != "misfitting_1b"]  # every size up to misfitting_400m
    big = [r for r in runs if r["model"] == "misfitting_1b"]
    for method in ("ratio", "cross-run"):
        for f in (0.1, 0.25, 0.5):
            print(f"| {method} | {f:.0%} | {score(forecast_set(big, small, f, method, args.bootstrap))} |")


if __name__ == "__main__":
    main()
