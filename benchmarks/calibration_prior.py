"""Derive the extrapolation-error prior of the calibrated new-run band from the calibration-half families.

The calibrated band (:mod:`scalelab.laws.calibration`) backtests a fit on its own runs. When the runs have
too few sizes for that (Step Law's five model sizes, SLD's MoE runs), the band instead uses a prior: the
distribution of the same normalised scores ``|log(y / y_hat)| / log(1 + r)`` from the rolling backtests of
*other* data sets. This script computes it from the families of the scoreboard's calibration half that can
be backtested on their own runs (Epoch, Porian, datablations; Step Law is a calibration family but one of
the two that need the prior, so it is left out), each family weighted equally, and prints the quantile
table that ``calibration.PRIOR_QUANTILES`` holds, and for a law that two or more of those families fit (Chinchilla:
Epoch and Porian) the table of those families alone, ``calibration.PRIOR_QUANTILES_BY_LAW``. Runs below one
token per parameter are left out, as the scoreboard leaves them out (``forecast_backtest.MIN_TOKENS_PER_PARAM``).
The held-out half of the scoreboard never enters it.

Usage::

    python benchmarks/calibration_prior.py [--init coarse]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

#: Families whose own rolling-backtest scores make the prior (calibration half, backtestable).
PRIOR_FAMILIES = ("epoch", "porian", "datablations")
LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975, 0.99)


def family_scores(options: dict | None = None, laws: dict[str, str] | None = None) -> dict[str, list[float]]:
    """Rolling-backtest scores of each prior family; ``laws`` (if given) receives each family's law."""
    from forecast_backtest import datasets

    from scalelab.laws import get_law, load_runs
    from scalelab.laws.calibration import own_scores

    out: dict[str, list[float]] = {}
    for ds in datasets():
        if ds["family"] not in PRIOR_FAMILIES:
            continue
        runs = load_runs(ds["cols"], n_convention="total")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            law = get_law(ds["law"])(**(options or {})).fit(runs, duplicates="drop")
            scores, _ = own_scores(law)
        out.setdefault(ds["family"], []).extend(scores)
        if laws is not None:
            laws[ds["family"]] = ds["law"]
    return out


def weighted_quantiles(groups: dict[str, list[float]], levels: tuple[float, ...]) -> list[float]:
    """Quantiles of the pooled scores with every group weighted equally (inverted weighted ECDF)."""
    s = np.concatenate([np.asarray(v, dtype=float) for v in groups.values()])
    w = np.concatenate([np.full(len(v), 1.0 / (len(v) * len(groups))) for v in groups.values()])
    order = np.argsort(s)
    s, cdf = s[order], np.cumsum(w[order])
    return [float(s[min(int(np.searchsorted(cdf, lv - 1e-12)), s.size - 1)]) for lv in levels]


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", default="grid", help="law init (grid: the default, which made the shipped table)")
    args = ap.parse_args()
    fam_law: dict[str, str] = {}
    groups = family_scores({} if args.init == "grid" else {"init": args.init}, fam_law)
    if not groups:
        print("no public data for the prior's families (set SCALELAB_ANCHORS)", file=sys.stderr)
        return
    for f, v in groups.items():
        print(f"{f}: {len(v)} scores, median {np.median(v):.5f}, 95% {np.quantile(v, 0.95):.5f}")
    print("PRIOR_QUANTILES = " + _table(weighted_quantiles(groups, LEVELS)))
    for law in sorted(set(fam_law.values())):
        fams = [f for f in groups if fam_law[f] == law]
        if len(fams) >= 2:
            q = weighted_quantiles({f: groups[f] for f in fams}, LEVELS)
            print(f"PRIOR_QUANTILES_BY_LAW[{law!r}] = {_table(q)}  # {', '.join(fams)}")


def _table(q: list[float]) -> str:
    return "(" + ", ".join(f"({lv}, {v:.5f})" for lv, v in zip(LEVELS, q, strict=True)) + ")"


if __name__ == "__main__":
    main()
