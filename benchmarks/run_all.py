"""Run every benchmark in a quick mode and write one JSON and one markdown summary (`make bench`).

Each benchmark is a script in this folder that prints a table to paste; this runner starts each one in
its own process with the quick arguments below, records its exit status, wall time and output, and
writes ``summary.json`` and ``summary.md`` under ``--out`` (default ``out/bench``). A benchmark whose
requirement is missing here (a CUDA GPU, the unlicensed data in ``../shared/anchors``) is recorded as
skipped with the reason. The exit status is 1 when any benchmark failed.

    .venv/bin/python benchmarks/run_all.py [--only NAME ...] [--out DIR] [--list]

The quick modes check that every benchmark runs and give rough figures; the figures quoted in docs/ come
from each script's full settings (see its docstring).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _anchors() -> Path:
    return Path(os.environ.get("SCALELAB_ANCHORS", ROOT.parent / "shared" / "anchors"))


def _no_cuda() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    return None if torch.cuda.is_available() else "needs a CUDA GPU (none on this machine)"


def _needs_anchor(relpath: str, what: str) -> Callable[[], str | None]:
    """A ``requires`` check: the reason to skip when ``relpath`` under the anchors folder is absent."""
    def check() -> str | None:
        path = _anchors() / relpath
        return None if path.exists() else (f"needs {what} (no stated licence, not shipped) at {path}; "
                                           "set SCALELAB_ANCHORS")
    return check


_no_epoch_data = _needs_anchor("analyzing-chinchilla/data/svg_extracted_data.csv",
                               "Epoch AI's digitised Chinchilla points")
_no_misfitting_data = _needs_anchor("misfitting-scaling-laws", "the (Mis)Fitting checkpoints")


@dataclass(frozen=True)
class Benchmark:
    """One script and the arguments of its quick mode."""

    name: str
    quick_args: tuple[str, ...] = ()
    #: returns a reason to skip on this machine, or None
    requires: Callable[[], str | None] | None = None
    timeout_s: float = 900.0


BENCHMARKS = (
    Benchmark("planner_speed"),
    Benchmark("planner_validation"),
    Benchmark("plan_band"),
    Benchmark("planner_vs_llm_analysis"),
    Benchmark("laws_speed", ("--loop-starts", "20", "--pkg-starts", "20", "--bootstrap", "200"),
              requires=_no_epoch_data),
    Benchmark("fit_startup", ("--runs", "3"), requires=_no_epoch_data),
    Benchmark("laws_coverage", ("--trials", "20", "--bootstrap", "50", "--init", "coarse")),
    # data sets that are absent are skipped inside; the shipped ones (gadre, porian, datablations) always run
    Benchmark("forecast_backtest", ("--splits", "2", "--init", "coarse")),
    Benchmark("calibration_prior", ("--init", "coarse")),
    Benchmark("mixtures_regmix", ("--models", "linear,law", "--samples", "2000", "--top-k", "32")),
    Benchmark("curves_misfitting", ("--bootstrap", "5"), requires=_no_misfitting_data),
    Benchmark("curves_checkpoint_law", requires=_no_misfitting_data),
    Benchmark("pruning_sweep", ("--quick",)),
    Benchmark("tunnel_throughput", ("--steps", "5", "--repeats", "1")),
    Benchmark("plan_vs_measured", ("--quick", "--steps", "6")),
    Benchmark("hyperparam_transfer", ("--widths", "8,16,24,32", "--steps", "20", "--lr-exponents=-9,-5")),
    Benchmark("wsd_branches", ("--steps", "60", "--branches", "15,30")),
    Benchmark("demo_forecast", ("--seeds", "0", "--quick")),
    Benchmark("gpu_tunnel", ("--steps", "20", "--warmup", "5"), requires=_no_cuda),
)


@dataclass
class Outcome:
    name: str
    command: list[str]
    status: str  # "ok", "failed", "skipped"
    seconds: float = 0.0
    exit_code: int | None = None
    reason: str = ""
    output: str = field(default="", repr=False)


def run_one(b: Benchmark) -> Outcome:
    cmd = [sys.executable, str(HERE / f"{b.name}.py"), *b.quick_args]
    shown = ["python", f"benchmarks/{b.name}.py", *b.quick_args]
    reason = b.requires() if b.requires is not None else None
    if reason:
        return Outcome(b.name, shown, "skipped", reason=reason)
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=b.timeout_s)
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else ""
        return Outcome(b.name, shown, "failed", time.perf_counter() - t0, None,
                       f"timed out after {b.timeout_s:.0f} s", out)
    dt = time.perf_counter() - t0
    output = p.stdout + (("\n[stderr]\n" + p.stderr[-4000:]) if p.returncode and p.stderr else "")
    return Outcome(b.name, shown, "ok" if p.returncode == 0 else "failed", dt, p.returncode,
                   "" if p.returncode == 0 else f"exit status {p.returncode}", output)


def markdown(outcomes: list[Outcome], meta: dict[str, str]) -> str:
    lines = ["# Benchmarks (quick mode)", "", f"{meta['when']} on {meta['machine']}, Python {meta['python']}",
             "", "| benchmark | status | seconds | note |", "|---|---|---|---|"]
    for o in outcomes:
        lines.append(f"| {o.name} | {o.status} | {o.seconds:.1f} | {o.reason} |")
    for o in outcomes:
        if o.output:
            lines += ["", f"## {o.name}", "", f"`{' '.join(o.command)}`", "", "```text", o.output.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", default=None, help="run only these benchmarks (names as in --list)")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench", help="folder for summary.json/.md")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and their quick arguments")
    args = ap.parse_args()
    names = {b.name for b in BENCHMARKS}
    if args.list:
        for b in BENCHMARKS:
            print(f"{b.name:<26} {' '.join(b.quick_args)}")
        return 0
    unknown = sorted(set(args.only or ()) - names)
    if unknown:
        print(f"run_all: unknown benchmark(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}",
              file=sys.stderr)
        return 2
    chosen = [b for b in BENCHMARKS if args.only is None or b.name in args.only]
    outcomes = []
    for b in chosen:
        print(f"[{len(outcomes) + 1}/{len(chosen)}] {b.name} ...", flush=True)
        o = run_one(b)
        print(f"    {o.status} in {o.seconds:.1f} s{(': ' + o.reason) if o.reason else ''}", flush=True)
        outcomes.append(o)
    meta = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps({**meta, "benchmarks": [asdict(o) for o in outcomes]},
                                                      indent=2) + "\n")
    (args.out / "summary.md").write_text(markdown(outcomes, meta))
    failed = [o.name for o in outcomes if o.status == "failed"]
    print(f"summary: {args.out / 'summary.md'} and summary.json; "
          f"{sum(o.status == 'ok' for o in outcomes)} ok, {len(failed)} failed, "
          f"{sum(o.status == 'skipped' for o in outcomes)} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
