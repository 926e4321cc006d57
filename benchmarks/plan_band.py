"""The planner's step-time band (src/scalelab/planner/band.py): the residuals it is computed from, the quantiles it
stores, and its leave-one-source-out coverage.

    PYTHONPATH=src .venv/bin/python benchmarks/plan_band.py

Residual of one row: r = measured step time / predicted step time = 1 / (1 + error), where error is the step-time
error benchmarks/planner_validation.py prints for the row (predicted / measured step time - 1, positive: predicted
too slow), computed with the same helper modules. One source per validation asset, every row with a published
figure and a finite prediction (rows the planner judges out of memory included: the run did fit, and their step time
is still the planner's):

- published-runs: tests/assets/planner_published_runs.json, every row with a measured throughput (its 4 efficiency
  calibration rows included: the band is of the planner as shipped);
- megatron-readme: planner_held_out_gpu_hours.json, Megatron-LM's H100 table (published layouts and TP overlap);
- llm-foundry: planner_heldout_llm_foundry.json (llm-foundry profiles, by each table's attention kernel);
- nemo-perf: planner_held_out_nemo_perf.json (pretraining and fine-tuning rows);
- dgxc: planner_held_out_dgxc.json;
- nemo-long-seq: planner_held_out_nemo_long_seq.json.

The method was fixed before any residual was looked at: equal-weight pooled empirical quantiles
(:func:`scalelab.planner.band.equal_weight_quantile`), central 80% and 95% bands. Leave-one-source-out: for each
source, the quantiles from the other sources only, and the share of the held-out source's rows inside them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

from scalelab.planner.band import equal_weight_quantile

#: The central levels stored in scalelab.planner.band.BAND_QUANTILES.
LEVELS = (0.8, 0.95)


def _published_runs() -> list[float]:
    from _published_runs import load, measured_tokens_per_s_per_gpu, run_plan

    out = []
    for r in load()["runs"]:
        if not r.get("measured"):
            continue
        p = run_plan(r)
        m = measured_tokens_per_s_per_gpu(r, p)
        if m:
            out.append(m / (p.tokens_per_s / r["n_gpus"]) - 1)
    return out


def _megatron_readme() -> list[float]:
    import _gpu_hours as gh

    mlm = gh.load()["megatron_readme"]
    return [gh.megatron_plan(c, mlm).step_time_s / gh.megatron_step_time_s(c, mlm) - 1 for c in mlm["cases"]]


def _llm_foundry() -> list[float]:
    from _heldout_llm_foundry import load, measured_tokens_per_s_per_gpu, plan_row

    return [measured_tokens_per_s_per_gpu(r) / (plan_row(r).tokens_per_s / r["n_gpus"]) - 1 for r in load()["runs"]]


def _nemo_perf() -> list[float]:
    from _held_out_nemo_perf import error, load, plan_row

    return [error(r, plan_row(r)) for r in load()["runs"]]


def _dgxc() -> list[float]:
    from _held_out_dgxc import load, plan_row, step_time_error

    return [step_time_error(r, plan_row(r)) for r in load()["runs"]]


def _nemo_long_seq() -> list[float]:
    from _held_out_nemo_long_seq import error, load, plan_row

    return [error(r, plan_row(r)) for r in load()["runs"]]


#: Source name -> its step-time errors (predicted / measured step time - 1), one per row.
SOURCES: dict[str, Callable[[], list[float]]] = {
    "published-runs": _published_runs, "megatron-readme": _megatron_readme, "llm-foundry": _llm_foundry,
    "nemo-perf": _nemo_perf, "dgxc": _dgxc, "nemo-long-seq": _nemo_long_seq}


def residuals() -> dict[str, list[float]]:
    """Source -> r = measured / predicted step time of each row with a finite prediction."""
    out = {}
    for name, errors in SOURCES.items():
        out[name] = [1 / (1 + e) for e in errors() if math.isfinite(e) and e > -1]
    return out


def central(by_source: dict[str, list[float]], level: float) -> tuple[float, float]:
    """(q_lo, q_hi) of the central ``level`` band, each source weighted equally."""
    return (equal_weight_quantile(by_source, (1 - level) / 2), equal_weight_quantile(by_source, (1 + level) / 2))


def quantiles(by_source: dict[str, list[float]], digits: int = 4) -> dict[float, tuple[float, float]]:
    """What scalelab.planner.band.BAND_QUANTILES stores: each level's (q_lo, q_hi), rounded to ``digits``."""
    return {lv: tuple(round(x, digits) for x in central(by_source, lv)) for lv in LEVELS}  # type: ignore[misc]


def leave_one_source_out(by_source: dict[str, list[float]]) -> list[dict]:
    """For each source: the band from the other sources only, and the share of its rows inside it."""
    rows = []
    for name, vals in by_source.items():
        rest = {k: v for k, v in by_source.items() if k != name}
        row: dict = {"source": name, "n": len(vals)}
        for lv in LEVELS:
            lo, hi = central(rest, lv)
            row[lv] = (lo, hi, sum(lo <= x <= hi for x in vals) / len(vals))
        rows.append(row)
    return rows


def main() -> None:
    by = residuals()
    print("### Residuals r = measured / predicted step time, per source\n")
    print("| source | rows | median r | 10% | 90% | 2.5% | 97.5% | min | max |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, v in by.items():
        one = {name: v}
        print(f"| {name} | {len(v)} | {statistics.median(v):.3f} | "
              + " | ".join(f"{equal_weight_quantile(one, q):.3f}" for q in (0.1, 0.9, 0.025, 0.975))
              + f" | {min(v):.3f} | {max(v):.3f} |")
    q = quantiles(by)
    print(f"\n### Pooled, each of the {len(by)} sources weighted equally ({sum(map(len, by.values()))} rows): "
          "the stored band\n")
    for lv, (lo, hi) in q.items():
        inside = ", ".join(f"{k} {sum(lo <= x <= hi for x in v) / len(v) * 100:.0f}%" for k, v in by.items())
        print(f"{lv:g}: ({lo}, {hi}); in sample, rows inside: {inside}")
    print("\nBAND_SOURCES = " + repr({k: len(v) for k, v in by.items()}))
    print("\n### Leave one source out: band from the other sources, coverage on the held-out one\n")
    print("| held-out source | rows | 80% band | inside | 95% band | inside |")
    print("|---|---|---|---|---|---|")
    for row in leave_one_source_out(by):
        cells = [f"{row[lv][0]:.3f}-{row[lv][1]:.3f} | {row[lv][2] * 100:.0f}%" for lv in LEVELS]
        print(f"| {row['source']} | {row['n']} | " + " | ".join(cells) + " |")
    loso = leave_one_source_out(by)
    for lv in LEVELS:
        print(f"mean coverage over sources at {lv:.0%}: {statistics.mean(r[lv][2] for r in loso) * 100:.0f}%")


if __name__ == "__main__":
    main()
