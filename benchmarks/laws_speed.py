"""Speed of scalelab's Chinchilla fit, side by side with the baselines, on Epoch's 240 points.

Rows:
1. scalelab: ``ChinchillaLaw().fit`` with Hoffmann et al.'s full 4,500-start grid (batched LM + polish).
2. a plain scipy loop: ``scipy.optimize.minimize(method="L-BFGS-B")`` from each of the 4,500 starts on the
   same summed-Huber objective (finite-difference gradients, as most notebooks do). Timed on a random
   subsample of the starts and extrapolated to 4,500 (the output says so).
3. the ``chinchilla`` PyPI package (kyo-takano, 0.2.0), if importable by ``--chinchilla-python`` (a Python
   with the package installed; e.g. a temporary venv): its BFGS loop over the same grid with its
   ``log_huber`` loss, in its multiprocessing pool; also subsampled and extrapolated.
4. 1,000 bootstrap refits (n_jobs = 1 and 2).

Usage::

    python benchmarks/laws_speed.py [--data PATH] [--loop-starts 200] [--chinchilla-python /tmp/chvenv/bin/python]

Prints a table; the data defaults to ../shared/anchors/analyzing-chinchilla/data/svg_extracted_data.csv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from scalelab.laws import ChinchillaLaw, load_runs
from scalelab.laws.chinchilla import chinchilla_grid
from scalelab.laws.fitting import Objective

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "anchors" / "analyzing-chinchilla" / "data" / "svg_extracted_data.csv"


def timed(fn, repeat: int = 3):
    best_wall, best_cpu, out = np.inf, np.inf, None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best_wall, best_cpu, out


def scipy_loop(N, D, L, starts):
    from scipy.optimize import minimize

    lN, lD, lL = np.log(N), np.log(D), np.log(L)
    obj = Objective("huber", 1e-3)

    def f(th):
        e, a, b, al, be = th
        t = np.stack([np.full_like(lN, e), a - al * lN, b - be * lD])
        m = t.max(axis=0)
        pred = m + np.log(np.exp(t - m).sum(axis=0))
        return float(obj.rho(pred - lL).sum())

    best = (np.inf, None)
    for x0 in starts:
        r = minimize(f, x0, method="L-BFGS-B")
        if r.fun < best[0]:
            best = (r.fun, r.x)
    return best


CHINCHILLA_SCRIPT = r"""
import json, sys, time, itertools, logging, numpy as np
import chinchilla
from chinchilla._metrics import log_huber
proj, n_sub, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
grid = {"e": np.arange(-1, 1.01, 0.5), "a": np.arange(0, 25.1, 5), "b": np.arange(0, 25.1, 5),
        "alpha": np.arange(0, 2.01, 0.5), "beta": np.arange(0, 2.01, 0.5)}
full = list(itertools.product(*grid.values()))
cc = chinchilla.Chinchilla(proj, param_grid=grid, loss_fn=lambda y, p: log_huber(y, p, delta=1e-3), log_level=40)
# subsample the grid the same way as the scipy loop: the package iterates itertools.product(param_grid)
rng = np.random.default_rng(seed)
idx = rng.choice(len(full), size=n_sub, replace=False)
sub = [full[i] for i in idx]
class Sub(dict):
    pass
import chinchilla.core as core
orig = itertools.product
core.itertools.product = lambda *a: iter(sub)
t = time.perf_counter(); cc.fit(parallel=True); wall = time.perf_counter() - t
core.itertools.product = orig
print(json.dumps({"wall_s": wall, "n_starts": n_sub, "n_full": len(full),
                  "params": {"E": float(cc.E), "A": float(cc.A), "B": float(cc.B), "alpha": float(cc.alpha),
                             "beta": float(cc.beta)}}))
"""


def run_chinchilla_pkg(python: str, N, D, L, n_sub: int, seed: int) -> dict | None:
    with tempfile.TemporaryDirectory() as tmp:
        proj = Path(tmp) / "proj"
        proj.mkdir()
        lines = ["C,N,D,loss"] + [f"{6 * n * d},{n},{d},{lo}" for n, d, lo in zip(N, D, L, strict=True)]
        (proj / "df.csv").write_text("\n".join(lines) + "\n")
        script = Path(tmp) / "run.py"
        script.write_text(CHINCHILLA_SCRIPT)
        try:
            out = subprocess.run([python, str(script), str(proj), str(n_sub), str(seed)], capture_output=True,
                                 text=True, timeout=3600, cwd=tmp)
        except (OSError, subprocess.TimeoutExpired) as e:
            return {"error": str(e)}
        if out.returncode != 0:
            return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--loop-starts", type=int, default=150, help="starts timed in the scipy loop (extrapolated)")
    ap.add_argument("--pkg-starts", type=int, default=150, help="starts timed in the chinchilla package")
    ap.add_argument("--chinchilla-python", default=os.environ.get("CHINCHILLA_PYTHON"),
                    help="a Python with `pip install chinchilla==0.2.0` (skipped if not given)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()

    runs = load_runs(args.data, n="Model Size", compute="Training FLOP", drop_top_loss=5, n_convention="total")
    N, D, L = runs["N"], runs["D"], runs["L"]
    rows = []

    ChinchillaLaw().fit(N, D, L)  # warm imports (scipy.optimize) outside the timing
    wall, cpu, law = timed(lambda: ChinchillaLaw().fit(N, D, L))
    ours_wall = wall
    rows.append(("scalelab ChinchillaLaw.fit, 4,500 starts", wall, cpu, "measured", law.objective_,
                 law.params_))

    grid = ChinchillaLaw._to_theta(chinchilla_grid())
    rng = np.random.default_rng(0)
    sub = grid[rng.choice(len(grid), size=args.loop_starts, replace=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0, c0 = time.perf_counter(), time.process_time()
        best_fun, best_x = scipy_loop(N, D, L, sub)
        w, c = time.perf_counter() - t0, time.process_time() - c0
    scale = len(grid) / args.loop_starts
    p = ChinchillaLaw._from_theta(best_x[None])[0] if best_x is not None else [np.nan] * 5
    rows.append((f"plain scipy L-BFGS-B loop ({args.loop_starts} starts x{scale:.0f})", w * scale, c * scale,
                 "extrapolated", best_fun, dict(zip(ChinchillaLaw.param_names, map(float, p), strict=True))))

    if args.chinchilla_python:
        res = run_chinchilla_pkg(args.chinchilla_python, N, D, L, args.pkg_starts, 0)
        if res and "error" not in res:
            s = res["n_full"] / res["n_starts"]
            rows.append((f"chinchilla 0.2.0 BFGS pool ({res['n_starts']} starts x{s:.0f})", res["wall_s"] * s,
                         float("nan"), "extrapolated (wall; 2 processes)", float("nan"), res["params"]))
        else:
            rows.append(("chinchilla 0.2.0", float("nan"), float("nan"), f"failed: {res}", float("nan"), {}))
    else:
        rows.append(("chinchilla 0.2.0", float("nan"), float("nan"), "skipped (no --chinchilla-python)",
                     float("nan"), {}))

    print(f"Approach-3 fit on {len(N)} points (Epoch AI, 5 highest losses dropped); machine: {os.cpu_count()} cores")
    print(f"{'method':<52}{'wall s':>10}{'cpu s':>10}{'x scalelab':>12}  {'how':<34}{'objective':>12}  "
          f"E / alpha / beta")
    for name, w, c, how, fun, prm in rows:
        ratio = w / ours_wall if np.isfinite(w) else float("nan")
        ps = " / ".join(f"{prm[k]:.4f}" for k in ("E", "alpha", "beta")) if prm else "-"
        print(f"{name:<52}{w:>10.3f}{c:>10.3f}{ratio:>12.1f}  {how:<34}{fun:>12.6g}  {ps}")

    print()
    print(f"Bootstrap: {args.bootstrap} refits over runs")
    print(f"{'n_jobs':<10}{'wall s':>10}{'cpu s':>10}  95% intervals E / alpha / beta")
    for jobs in (1, 2):
        wall, cpu, law = timed(lambda j=jobs: ChinchillaLaw(n_bootstrap=args.bootstrap, random_state=0,
                                                            n_jobs=j).fit(N, D, L), repeat=1)
        iv = law.intervals_
        print(f"{jobs:<10}{wall:>10.2f}{cpu:>10.2f}  " + " / ".join(
            f"[{iv[k][0]:.4f}, {iv[k][1]:.4f}]" for k in ("E", "alpha", "beta"))
              + f"  (converged {law.fit_info_['bootstrap_converged_fraction']:.1%}; includes the main fit)")


if __name__ == "__main__":
    sys.exit(main())
