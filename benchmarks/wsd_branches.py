"""Compute saved by WSD decay branches against training each (N, D) point from scratch.

One warmup-stable-decay run with decay branches taken at several token counts gives one (N, D) point
per branch plus its own end point (MiniCPM, Hu et al. 2024, arXiv:2404.06395 §4.1). The same points
trained from scratch cost the sum of their token counts. This script trains both ways on the embedded
corpus (or ``--corpus``), through the run store, and prints side by side: training FLOPs (6 N D,
Hoffmann et al. 2022), measured wall time, and each point's final validation loss. A branch and the
from-scratch run it stands for follow the same schedule, seed and data order, so their losses agree up to
float noise; the saving is then pure.

    .venv/bin/python benchmarks/wsd_branches.py            # a few minutes on 2 CPU cores
    .venv/bin/python benchmarks/wsd_branches.py --steps 2000 --branches 250,500,1000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=200, help="optimizer steps of the parent run")
    p.add_argument("--branches", default="25,50,100", help="branch points in steps (comma-separated)")
    p.add_argument("--decay-fraction", type=float, default=0.2)
    p.add_argument("--corpus", default="stdlib")
    p.add_argument("--n-params", type=float, default=1e5, help="target model size (family rule)")
    p.add_argument("--store", default=None, help="run store (default: a temporary one)")
    args = p.parse_args()

    from scalelab.tunnel.grid import make_config, model_for_params
    from scalelab.tunnel.runner import run_grid
    from scalelab.tunnel.store import RunStore

    seq_len, batch = 64, 8
    step = seq_len * batch
    model = model_for_params(args.n_params, vocab_size=256, seq_len=seq_len, d_head=16)
    at = [int(s) * step for s in args.branches.split(",")]
    parent = make_config(model, args.steps * step, {
        "corpus": args.corpus, "seq_len": seq_len, "batch_size": batch, "lr": 3e-3, "schedule": "wsd",
        "decay_fraction": args.decay_fraction, "warmup_tokens": min(at) // 2, "decay_branches": tuple(at),
        "eval_tokens": 8192})
    scratch = [parent.branch_config(a) for a in at]
    n_active = model.n_params().active

    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(args.store or Path(tmp) / "runs.sqlite")
        t0 = time.perf_counter()
        (prec,) = run_grid([parent], store, quiet=True)
        t_branch = time.perf_counter() - t0
        t0 = time.perf_counter()
        srecs = run_grid(scratch, store, quiet=True)
        t_scratch = time.perf_counter() - t0
        kids = store.children(prec.hash)

    decay_tokens = sum(k.tokens_seen - k.branch_at_tokens for k in kids)
    tokens_branch = prec.tokens_seen + decay_tokens
    tokens_scratch = prec.tokens_seen + sum(r.tokens_seen for r in srecs)
    print(f"model: {model.n_layers} layers x d_model {model.d_model}, N = {model.n_params().total:,} "
          f"({n_active:,} active); {len(kids) + 1} (N, D) points; corpus {args.corpus}\n")
    print(f"{'point D (tokens)':>18} {'branch val loss':>16} {'scratch val loss':>17} {'|diff|':>8}")
    for k, s in zip(kids, srecs, strict=True):
        print(f"{k.tokens_seen:>18,} {k.final_val_loss:>16.4f} {s.final_val_loss:>17.4f} "
              f"{abs(k.final_val_loss - s.final_val_loss):>8.1e}")
    print(f"{prec.tokens_seen:>18,} {prec.final_val_loss:>16.4f} {'(same run)':>17}\n")
    print(f"{'':>22} {'with branches':>14} {'from scratch':>13} {'ratio':>7}")
    print(f"{'training FLOPs (6ND)':>22} {6 * n_active * tokens_branch:>14.3g} {6 * n_active * tokens_scratch:>13.3g} "
          f"{tokens_branch / tokens_scratch:>7.2f}")
    print(f"{'wall time (s)':>22} {t_branch:>14.1f} {t_branch + t_scratch:>13.1f} "
          f"{t_branch / (t_branch + t_scratch):>7.2f}")
    print(f"\ncompute saved by branching: {1 - tokens_branch / tokens_scratch:.0%} of the from-scratch cost")


if __name__ == "__main__":
    main()
