"""Own-sweep acceptance (issue 10): an LR law fitted on tunnel sweeps at 3 small sizes predicts the best LR
at the next size within one grid step (a factor of 2).

A factor-2 LR ladder is swept at four widths of a 2-layer byte-level GPT (standard parametrisation, where
the best LR moves with width, so there is something to predict), all on the same number of tokens. The
three narrowest widths are fitted (``scalelab.laws.hpfit.fit_hyperparams``: parabola-refined best LR per
cell, OLS in log space); the widest is held out. With one token count the Step-Law form ``a N^b D^c`` is
not identifiable (``D`` is constant), so the DeepSeek form ``eta = a C^b``, ``C = M D``, is the law tested;
an ``N``-only power law through the same cells is printed beside it. The published laws' LRs at the
held-out size are printed too, to show how far a transfer from 1e8-1e9-parameter BPE models lands.

    PYTHONPATH=src .venv/bin/python benchmarks/hyperparam_transfer.py --workers 2   # ~3 min, 2 CPU cores
    PYTHONPATH=src .venv/bin/python benchmarks/hyperparam_transfer.py --steps 200 --store runs.sqlite

The runs go to a run store (``--store``; a temporary one by default) under grid ``sweep:transfer``, so a
second call with the same store trains nothing.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", default="16,32,64,128", help="d_model of each size; the last is held out")
    p.add_argument("--steps", type=int, default=600,
                   help="optimizer steps of every run (600: the LR optimum is resolved; at 100-300 it is not)")
    p.add_argument("--lr-exponents", default="-11,-3", help="LR ladder 2^a..2^b (factor-2 steps)")
    p.add_argument("--parametrization", default="sp", choices=("sp", "mup"))
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--store", default=None, help="run store (default: a temporary one)")
    args = p.parse_args()

    from scalelab.laws.hpfit import best_per_cell, fit_hyperparams
    from scalelab.laws.hyperparams import DeepSeekLRLaw, StepLawLRLaw, deepseek_model_scale
    from scalelab.tunnel.runner import run_grid
    from scalelab.tunnel.store import RunStore
    from scalelab.tunnel.sweep import sweep_grid, sweep_table

    widths = [int(w) for w in args.widths.split(",")]
    lo, hi = (int(x) for x in args.lr_exponents.split(","))
    lrs = [2.0 ** k for k in range(lo, hi + 1)]
    seq_len, batch = 32, 8
    n_tokens = args.steps * seq_len * batch
    models = [{"n_layers": 2, "d_model": w, "n_heads": max(1, w // 8), "d_ff": 2 * w, "vocab_size": 256}
              for w in widths]
    defaults = {"corpus": "stdlib", "tokenizer": "byte", "seq_len": seq_len, "batch_size": batch,
                "warmup_fraction": 0.1, "schedule": "cosine", "eval_tokens": 8192, "seed": 0,
                **({"parametrization": "mup", "mup_base_d_model": widths[0]} if args.parametrization == "mup"
                   else {})}
    grid = sweep_grid(models, lrs=lrs, batch_sizes=[batch], n_tokens=[n_tokens], defaults=defaults,
                      name="transfer")

    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(args.store or Path(tmp) / "runs.sqlite")
        t0 = time.perf_counter()
        run_grid(grid, store, workers=args.workers, quiet=True)
        wall = time.perf_counter() - t0
        table = sweep_table(store.path, grid.name)

    cells = best_per_cell(table)
    held = int(np.argmax(cells["N"]))
    fit_rows = np.flatnonzero(np.arange(cells["N"].size) != held)
    train = {k: v for k, v in table.items()}
    keep = table["N_non_embedding"] != cells["N"][held]
    fit = fit_hyperparams({k: v[keep] for k, v in train.items()}, source="benchmarks/hyperparam_transfer.py")
    N, D, M = (float(cells[k][held]) for k in ("N", "D", "M"))
    pred = fit.predict_lr(N=N, D=D, M=M, form="deepseek")
    b, log_a = np.polyfit(np.log(cells["N"][fit_rows]), np.log(cells["lr"][fit_rows]), 1)
    pred_n = math.exp(log_a) * N ** b
    best_grid, best_ref = float(cells["lr_grid"][held]), float(cells["lr"][held])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step_law = float(StepLawLRLaw.preset("li2025").predict(N, D))
        ds_law = float(DeepSeekLRLaw.preset("bi2024").predict(float(deepseek_model_scale(2, widths[-1], seq_len)) * D))

    print(f"sweep: widths {widths} (2 layers, byte vocab), {args.steps} steps x {seq_len * batch} tokens, "
          f"{args.parametrization}, LR ladder 2^{lo}..2^{hi}; {len(grid)} runs, {wall:.0f} s wall")
    print("\n| d_model | N (non-emb) | best LR (grid) | best LR (refined) | loss |")
    print("|---|---|---|---|---|")
    for i in range(cells["N"].size):
        tag = " (held out)" if i == held else ""
        print(f"| {widths[i]}{tag} | {cells['N'][i]:.4g} | {cells['lr_grid'][i]:.3g} | {cells['lr'][i]:.3g} | "
              f"{cells['loss'][i]:.4f} |")
    p_C = float(fit.laws["deepseek-lr"].params_["p_C"])
    print(f"\nfitted on {len(fit_rows)} sizes: eta = {float(fit.laws['deepseek-lr'].params_['c']):.4g} C^{p_C:.3f} "
          f"(C = M D); N-only: eta = {math.exp(log_a):.4g} N^{b:.3f}")
    print("\n| LR at the held-out size | value | grid steps from the best grid LR |")
    print("|---|---|---|")
    for name, v in (("fitted DeepSeek form (acceptance)", pred), ("fitted N-only power law", pred_n),
                    ("held-out refined optimum", best_ref), ("Step Law preset (Li et al. 2025)", step_law),
                    ("DeepSeek LLM preset (Bi et al. 2024)", ds_law)):
        print(f"| {name} | {v:.3g} | {math.log2(v / best_grid):+.2f} |")
    ok = abs(math.log2(pred / best_grid)) <= 1.0
    print(f"\nacceptance (fitted law within one grid step, a factor 2, of the held-out best LR): "
          f"{'MET' if ok else 'NOT MET'} ({pred:.3g} vs {best_grid:.3g}, {math.log2(pred / best_grid):+.2f} steps)")


if __name__ == "__main__":
    main()
