"""Do scalelab's 95% intervals cover the truth 95% of the time? (acceptance 6, the >= 200-trial version)

Each trial draws runs from known Chinchilla parameters (``ChinchillaLaw._example_params``, log-uniform
N in [5e7, 2e10], D in [1e9, 4e11], 1% log-normal noise on the loss), fits with bootstrap intervals, and
records whether each parameter's interval, the derived exponent ``a``, the mean-law band at a held-out
point and the new-run band for a fresh noisy run there contain the truth.

Usage::

    python benchmarks/laws_coverage.py [--trials 200] [--n 80] [--bootstrap 200] [--init grid|coarse]

Prints coverage per quantity with a 95% Wilson interval for the coverage itself.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np

from scalelab.laws import ChinchillaLaw


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return c - h, c + h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--n", type=int, default=80, help="runs per trial")
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--init", default="grid")
    ap.add_argument("--level", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    truth = ChinchillaLaw._example_params
    pub = np.array([[truth[k] for k in ChinchillaLaw.param_names]])
    a_true = truth["beta"] / (truth["alpha"] + truth["beta"])
    N0, D0 = 5e9, 1e11  # held-out point inside the design
    L0 = float(np.exp(ChinchillaLaw._log_form(ChinchillaLaw._pdict(pub), (np.array([N0]), np.array([D0])))[0, 0]))
    names = [*ChinchillaLaw.param_names, "a", "mean band", "new-run band"]
    hits = dict.fromkeys(names, 0)
    t0 = time.perf_counter()
    rng_new = np.random.default_rng(args.seed + 10_000)
    for t in range(args.trials):
        rng = np.random.default_rng(args.seed + t)
        X, y = ChinchillaLaw._example_data(rng, n=args.n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            law = ChinchillaLaw(init=args.init, n_bootstrap=args.bootstrap, random_state=t,
                                level=args.level).fit(*X, y)
            for k in ChinchillaLaw.param_names:
                lo, hi = law.intervals_[k]
                hits[k] += lo <= truth[k] <= hi
            lo, hi = law.derived_intervals_["a"]
            hits["a"] += lo <= a_true <= hi
            lo, hi = law.predict_interval(N0, D0, kind="mean")
            hits["mean band"] += float(lo) <= L0 <= float(hi)
            y_new = L0 * math.exp(ChinchillaLaw._example_noise * rng_new.standard_normal())
            lo, hi = law.predict_interval(N0, D0, kind="new")
            hits["new-run band"] += float(lo) <= y_new <= float(hi)
    wall = time.perf_counter() - t0
    print(f"Coverage of {int(args.level * 100)}% intervals over {args.trials} trials "
          f"({args.n} runs each, {args.bootstrap} bootstrap refits, init={args.init}); {wall:.0f} s")
    print(f"{'quantity':<14}{'covered':>9}{'rate':>8}   95% CI of the rate")
    for k in names:
        lo, hi = wilson(hits[k], args.trials)
        print(f"{k:<14}{hits[k]:>9}{hits[k] / args.trials:>8.3f}   [{lo:.3f}, {hi:.3f}]")


if __name__ == "__main__":
    main()
