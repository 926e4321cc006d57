"""Early stopping in a tunnel LR sweep: compute saved and whether the best configuration survives.

For each seed, the 12-run LR sweep of ``recipes/lr_sweep_tiny.py`` (one-layer d_model 32 GPT, 240 steps,
evaluated every 12 steps, runs in a seeded random order) is trained to the end once and kept in a run
store; each pruner is then replayed on the stored curves in the sweep's order
(:func:`scalelab.tunnel.pruning.replay`). Replaying is exactly a sequential sweep, since a pruner only
stops runs. The *best* configuration is the lowest final validation loss of the full curves; it is
*kept* when the pruner did not stop it. Last, one real pruned sweep (seed 0, forecast pruner) runs end
to end through ``run_grid`` into a fresh store.

Issue 11's bar: >= 40% of the compute saved and the best kept in >= 9 of 10 seeds.

Usage::

    python benchmarks/pruning_sweep.py [--seeds 10] [--store out/bench/pruning_sweep.sqlite] [--quick]

The full runs take about 2 s each on one CPU core (120 runs for 10 seeds); a second call reuses the store.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np

from scalelab.tunnel.pruning import (
    ForecastPruner,
    MedianPruner,
    SuccessiveHalvingPruner,
    replay,
    sweep_summary,
)
from scalelab.tunnel.runner import RunOptions, run_grid
from scalelab.tunnel.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


def _recipe():
    spec = importlib.util.spec_from_file_location("lr_sweep_tiny", ROOT / "recipes" / "lr_sweep_tiny.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


PRUNERS = {
    "forecast (default)": lambda: ForecastPruner(),
    "median (3 startup runs)": lambda: MedianPruner(n_startup_trials=3),
    "median (3 startup, warmup 50%)": lambda: MedianPruner(n_startup_trials=3, n_warmup_steps=120),
    "successive halving (eta 3)": lambda: SuccessiveHalvingPruner(),
}


def full_curves(store: RunStore, grid) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray, int]]]:
    records = run_grid(grid, store, quiet=True)
    curves = {}
    for r in records:
        pts = np.array([(p["step"], p["val_loss"]) for p in store.curve(r.hash) if p["val_loss"] is not None])
        curves[r.hash] = (pts[:, 0], pts[:, 1], int(r.steps or 0))
    return [r.hash for r in records], curves


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--store", default=str(ROOT / "out" / "bench" / "pruning_sweep.sqlite"))
    ap.add_argument("--quick", action="store_true", help="3 seeds, and no end-to-end sweep")
    args = ap.parse_args()
    rec = _recipe()
    seeds = range(3 if args.quick else args.seeds)
    store = RunStore(args.store)
    t0 = time.perf_counter()
    sweeps = [full_curves(store, rec.sweep(s)) for s in seeds]
    print(f"{len(sweeps)} sweeps of {len(sweeps[0][0])} runs trained or read from {args.store} "
          f"in {time.perf_counter() - t0:.0f} s\n")
    print("| pruner | compute saved, mean (min-max) | best kept |")
    print("|---|---|---|")
    for name, make in PRUNERS.items():
        res = [replay(make(), curves, order) for order, curves in sweeps]
        saved = np.array([r.saved_fraction for r in res])
        kept = sum(r.best_survived for r in res)
        print(f"| {name} | {saved.mean():.1%} ({saved.min():.0%}-{saved.max():.0%}) | {kept} of {len(res)} |")
    if args.quick:
        return
    with tempfile.TemporaryDirectory() as tmp:
        st = RunStore(Path(tmp) / "runs.sqlite")
        t0 = time.perf_counter()
        records = run_grid(rec.sweep(0), st, quiet=True, options=RunOptions(pruner=ForecastPruner()))
        wall = time.perf_counter() - t0
        s = sweep_summary(records)
        truth = min(sweeps[0][1].items(), key=lambda kv: kv[1][1][-1])[0]
        print(f"\nEnd to end (seed 0, forecast pruner, run_grid): {s['pruned']} of {s['runs']} runs pruned, "
              f"{s['saved_fraction']:.1%} of the FLOPs saved, {wall:.0f} s; best completed run "
              f"{s['best']['hash'][:8]} (lr {s['best']['lr']:.3g}); best of the full sweep {truth[:8]}: "
              f"{'kept' if s['best']['hash'] == truth else 'LOST'}")
        pr = next(r for r in records if r.status == "pruned")
        print(f"a stored pruned run: {pr.hash[:8]} at step {pr.steps}: {pr.pruned['reason']}")


if __name__ == "__main__":
    main()
