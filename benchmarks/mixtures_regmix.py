"""RegMix's data on scalelab.mixtures: rank accuracy per domain, rank transfer to 60M and 1B, band
coverage, and the optimised mixture (docs/mixtures.md; issue 11's acceptance).

Each model is fitted on the 512 training mixtures at 1M and scored by Spearman rho (x100) against the
measured losses of the 256 held-out 1M mixtures, the same mixtures at 60M, and the 64 1B runs.

Usage::

    python benchmarks/mixtures_regmix.py [--models lightgbm,linear,law] [--samples 100000] [--top-k 128]

Needs ``scalelab[mixtures]`` (LightGBM) for the lightgbm rows.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from scalelab.datasets import load_regmix, load_regmix_configs
from scalelab.mixtures import MixtureRegressor, optimize_mixture

#: RegMix notebook (regression_fitting/regression.ipynb), Spearman x100 on the 1M test set.
PUBLISHED = {"arxiv": 99.6, "freelaw": 99.71, "pubmed_central": 99.08, "wikipedia_en": 99.45,
             "dm_mathematics": 97.2, "github": 99.77, "stackexchange": 99.73, "gutenberg_pg_19": 99.18,
             "pile_cc": 98.92, "ubuntu_irc": 96.87, "hackernews": 98.51, "pubmed_abstracts": 99.19,
             "uspto_backgrounds": 99.12}
TARGET = "metric/the_pile_pile_cc_val_loss"


def short(col: str) -> str:
    return col.removeprefix("metric/the_pile_").removesuffix("_val_loss")


def xy(ds, target):  # type: ignore[no-untyped-def]
    return np.column_stack([ds.data[f] for f in ds.feature_names]), ds.data[target]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lightgbm,linear,law")
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--top-k", type=int, default=128)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    tr, t1m, t60m, t1b = load_regmix(), load_regmix("1m", "test"), load_regmix("60m", "test"), load_regmix("1b", "test")
    fitted: dict[str, MixtureRegressor] = {}
    print("| domain | published | " + " | ".join(f"{m} 1M | {m} 60M | {m} 1B" for m in args.models.split(","))
          + " | lightgbm 90% band coverage (1M), as fitted -> calibrated |")
    print("|---|---:|" + "---:|" * (3 * len(args.models.split(",")) + 1))
    t0 = time.perf_counter()
    for target in tr.target_names:
        cells, cover = [], "-"
        for name in args.models.split(","):
            m = MixtureRegressor(model=name, n_bootstrap=20).fit(*xy(tr, target), domains=list(tr.feature_names),
                                                                  target=target)
            for ds in (t1m, t60m, t1b):
                cells.append(f"{100 * m.score(*xy(ds, target)):.2f}")
            if name == "lightgbm":
                lo, hi = m.predict_interval(xy(t1m, target)[0])
                y = xy(t1m, target)[1]
                raw = np.mean((lo + m.margin_ <= y) & (y <= hi - m.margin_))  # the band before calibration
                cover = f"{raw:.0%} -> {np.mean((lo <= y) & (y <= hi)):.0%}"
            if target == TARGET:
                fitted[name] = m
        print(f"| {short(target)} | {PUBLISHED[short(target)]:.2f} | " + " | ".join(cells) + f" | {cover} |")
    print(f"\n(fits: {time.perf_counter() - t0:.0f} s)\n")
    optimum_report(fitted, tr, t1b, args.samples, args.top_k)


def optimum_report(fitted, tr, t1b, n_samples, top_k):  # type: ignore[no-untyped-def]
    cfg = load_regmix_configs()
    names = list(tr.feature_names)
    paper = np.array([cfg.data[f][list(cfg.data["name"]).index("regmix")] for f in names])
    W1b, y1b = xy(t1b, TARGET)
    # A 1B-scale stand-in for a 1B run of the chosen mixture: the mixing law fitted on the 64 1B runs.
    at_1b = MixtureRegressor(model="law", uncertainty="none").fit(W1b, y1b, domains=names)
    print("| model fitted at 1M | pile_cc weight | L1 distance to regmix.yaml | predicted 1M loss "
          "| 1B loss (law fitted on the 64 1B runs) | 1B runs it beats |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, m in fitted.items():
        r = optimize_mixture(m, n_samples=n_samples, top_k=top_k, random_state=0)
        est = float(at_1b.predict(r.weights[None, :])[0])
        print(f"| {name} | {r.weights[names.index('train_the_pile_pile_cc')]:.3f} "
              f"| {np.abs(r.weights - paper).sum():.3f} | {r.loss:.3f} | {est:.3f} | {np.sum(y1b > est)}/64 |")
    est = float(at_1b.predict(paper[None, :])[0])
    print(f"| (regmix.yaml, the paper's optimum) | {paper[names.index('train_the_pile_pile_cc')]:.3f} | 0 "
          f"| {float(fitted[next(iter(fitted))].predict(paper[None, :])[0]):.3f} | {est:.3f} "
          f"| {np.sum(y1b > est)}/64 |")
    print(f"\nmeasured 1B pile_cc losses: best {y1b.min():.3f}, median {np.median(y1b):.3f}; "
          f"1B law's in-sample Spearman {100 * at_1b.score(W1b, y1b):.1f}")


if __name__ == "__main__":
    main()
