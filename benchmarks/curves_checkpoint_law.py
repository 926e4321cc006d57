"""A law over checkpoints on the (Mis)Fitting runs (Li et al. 2025; docs/curves.md, issue 11).

Fits ``L(N, t) = E + A N^-alpha + B t^-beta`` (:class:`scalelab.curves.CheckpointLaw`; N the model's
total parameters, t the optimizer step) to every checkpoint of the models up to 400M (names up to
``misfitting_400m``), then predicts the final loss of each 1B run (its last checkpoint, at its
``total_steps``) and reports the error ``|predicted / actual - 1|``. The 1B runs are not seen by the fit.

The data has no stated licence and does not ship: it is read from $SCALELAB_ANCHORS or
../shared/anchors beside the checkout.

Usage::

    python benchmarks/curves_checkpoint_law.py
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from scalelab.curves import CheckpointLaw

FILE = "misfitting-scaling-laws/data/scaling_results.csv"


def main() -> None:
    root = Path(os.environ.get("SCALELAB_ANCHORS", Path(__file__).resolve().parents[2] / "shared" / "anchors"))
    with (root / FILE).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    N, t, L, T = (np.array([float(r[c]) for r in rows]) for c in ("N", "current_steps", "loss", "total_steps"))
    big = np.array([r["model"] == "misfitting_1b" for r in rows])
    law = CheckpointLaw.fit(N[~big], t[~big], L[~big])
    print(f"fit on models up to 400M: {law.report()}")
    final = big & (t >= T)
    err = np.abs(law.predict(N[final], t[final]) / L[final] - 1)
    print(f"1B runs' final loss ({int(final.sum())} runs): median error {np.median(err):.2%}, "
          f"mean {err.mean():.2%}, max {err.max():.2%}")
    every = np.abs(law.predict(N[big], t[big]) / L[big] - 1)
    print(f"all 1B checkpoints ({int(big.sum())}): median error {np.median(every):.2%}")


if __name__ == "__main__":
    main()
