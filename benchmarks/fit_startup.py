"""`scalelab fit` end to end (process start included) on Epoch's Chinchilla points, side by side with baselines.

Issue 8's speed item: ``scalelab fit`` end to end, process start included, at most 2 s. Each round starts,
in turn, ``python -c pass``, ``python -c "import numpy"``, ``scalelab fit`` of this source tree and, with
``--compare-src``, of another tree (``git archive`` of an older commit, say), so that every row sees the same
load; the table gives the median, lowest and highest wall time over the rounds, the median CPU time (user +
system) and the ratio of the median wall time to ``import numpy``'s (the start-up any numpy program pays).
The load average is printed before and after: on a shared machine the wall times mean little without it.

The command is what the console script runs, ``scalelab fit RUNS --law chinchilla --n params --d tokens
--loss loss`` (human report on stdout), with ``PYTHONPATH`` set to the tree's ``src``. The report of every
run must be the same text (and the same as the other tree's): the script exits 1 if not.

Bytecode: by default the environment decides (``PYTHONDONTWRITEBYTECODE=1`` means every run compiles
scalelab's modules from source, as on the shared development machine); ``--bytecode`` caches it under a
temporary ``PYTHONPYCACHEPREFIX`` after one warm-up run, as an installed package would have it.

Usage::

    python benchmarks/fit_startup.py [--runs 7] [--compare-src /tmp/old/src] [--bytecode] [--data PATH]

The data default to ../shared/anchors/analyzing-chinchilla/data/svg_extracted_data.csv (params = 'Model
Size', tokens = 'Training FLOP' / (6 params), loss); ``--data`` takes a CSV with params, tokens and loss.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "anchors" / "analyzing-chinchilla" / "data" / "svg_extracted_data.csv"
FIT_ARGS = ["--law", "chinchilla", "--n", "params", "--d", "tokens", "--loss", "loss"]
CONSOLE_SCRIPT = "import sys; from scalelab.cli.app import main; sys.exit(main())"


def epoch_csv(src: Path, out: Path) -> Path:
    """Epoch's digitised points as params, tokens (C / 6N) and loss columns."""
    with src.open(newline="") as f, out.open("w", newline="") as g:
        w = csv.writer(g)
        w.writerow(["params", "tokens", "loss"])
        for row in csv.DictReader(f):
            n = float(row["Model Size"])
            w.writerow([repr(n), repr(float(row["Training FLOP"]) / (6 * n)), row["loss"]])
    return out


def run_with_usage(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system, from the children's resource usage) and stdout of one run;
    exits on a failed run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), p.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="CSV with params, tokens, loss (default: Epoch's points)")
    ap.add_argument("--runs", type=int, default=7, help="rounds (each starts every row once)")
    ap.add_argument("--compare-src", type=Path, default=None, help="another tree's src folder, run side by side")
    ap.add_argument("--bytecode", action="store_true", help="cache bytecode (a temporary PYTHONPYCACHEPREFIX)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else epoch_csv(DEFAULT_DATA, Path(tmp) / "epoch.csv")
        base_env = dict(os.environ)
        if args.bytecode:
            base_env.pop("PYTHONDONTWRITEBYTECODE", None)
            base_env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        trees = {"scalelab fit (this tree)": ROOT / "src"}
        if args.compare_src is not None:
            trees[f"scalelab fit ({args.compare_src})"] = args.compare_src.resolve()
        rows: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass": ([sys.executable, "-c", "pass"], base_env),
            'python -c "import numpy"': ([sys.executable, "-c", "import numpy"], base_env),
        }
        for name, src in trees.items():
            rows[name] = ([sys.executable, "-c", CONSOLE_SCRIPT, "fit", str(data), *FIT_ARGS],
                          {**base_env, "PYTHONPATH": str(src)})
        for cmd, env in rows.values():  # warm the page cache (and the bytecode cache with --bytecode)
            run_with_usage(cmd, env)

        load_before = os.getloadavg()
        walls: dict[str, list[float]] = {k: [] for k in rows}
        cpus: dict[str, list[float]] = {k: [] for k in rows}
        reports: set[str] = set()
        for _ in range(args.runs):
            for name, (cmd, env) in rows.items():
                wall, cpu, out = run_with_usage(cmd, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
                if name.startswith("scalelab fit"):
                    reports.add(out)
        load_after = os.getloadavg()

    numpy_median = statistics.median(walls['python -c "import numpy"'])
    bytecode = ("cached (--bytecode)" if args.bytecode else
                "compiled in every run (PYTHONDONTWRITEBYTECODE is set)" if os.environ.get("PYTHONDONTWRITEBYTECODE")
                else "as Python caches it (__pycache__)")
    print(f"`scalelab fit` end to end on {data.name if args.data else 'Epoch AI points'}, {args.runs} rounds; "
          f"{os.cpu_count()} cores; bytecode {bytecode}")
    print(f"load average before {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f}")
    print(f"{'command':<48}{'median s':>10}{'min s':>8}{'max s':>8}{'cpu s':>8}{'x import numpy':>16}")
    for name in rows:
        w = walls[name]
        print(f"{name:<48}{statistics.median(w):>10.3f}{min(w):>8.3f}{max(w):>8.3f}"
              f"{statistics.median(cpus[name]):>8.3f}{statistics.median(w) / numpy_median:>16.2f}")
    print("reports: " + ("identical in every run" if len(reports) == 1 else f"{len(reports)} different texts"))
    return 0 if len(reports) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
