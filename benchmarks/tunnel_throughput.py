"""Wind-tunnel training throughput on CPU, side by side with a plain PyTorch loop (issue 4, Speed).

Both loops train the same :class:`scalelab.tunnel.model.GPT` (same spec, batch, sequence length, fp32,
same thread count) on the same byte-level corpus; the plain loop is the textbook minimum written here:
random windows from an in-memory tensor, forward, backward, clip, AdamW step. The ratio
``tunnel / plain`` is the overhead of the tunnel's loop (schedules, seeded per-step batches from the
memory-mapped cache, divergence checks, curve bookkeeping); the target is >= 0.9x.

MFU is ``tokens/s * flops_per_token / peak``, with the planner's ``flops_per_token`` (training,
forward + backward, default conventions) and ``peak`` this machine's measured fp32 matmul rate (best of
several ``torch.mm`` of 2048 x 2048 matrices at the same thread count), not a datasheet number.

    .venv/bin/python benchmarks/tunnel_throughput.py [--steps 20] [--repeats 3] [--threads N]

Runs alternate (plain, tunnel, plain, tunnel, ...) and the best of each is reported, so background
load on a shared machine affects both sides alike.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch

from scalelab.arch import ModelSpec
from scalelab.planner.flops import flops_per_token
from scalelab.tunnel.data import load_corpus
from scalelab.tunnel.model import GPT
from scalelab.tunnel.train import RunConfig, train


def measure_matmul_peak_flops(n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 matmul rate (FLOP/s) of ``n x n @ n x n`` on this CPU (2 n^3 FLOPs per product)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm up
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def plain_loop(spec: ModelSpec, tokens: torch.Tensor, batch: int, seq: int, steps: int, lr: float) -> float:
    """The minimal training loop; returns tokens/s over all ``steps``."""
    torch.manual_seed(0)
    model = GPT(spec)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    other = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95))
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        ix = torch.randint(0, len(tokens) - seq - 1, (batch,), generator=g)
        x = torch.stack([tokens[i : i + seq] for i in ix.tolist()])
        y = torch.stack([tokens[i + 1 : i + 1 + seq] for i in ix.tolist()])
        _, loss, _ = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps * batch * seq / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    spec = ModelSpec(name="bench", n_layers=args.layers, d_model=args.d_model, n_heads=max(1, args.d_model // 32),
                     d_ff=4 * args.d_model, vocab_size=256, seq_len=args.seq)
    cfg = RunConfig(model=spec, seq_len=args.seq, batch_size=args.batch, n_tokens=args.steps * args.batch * args.seq,
                    lr=1e-3, warmup_tokens=0, schedule="cosine", eval_tokens=args.seq, device="cpu", dtype="fp32")
    data = load_corpus(cfg.corpus)  # tokenize once, outside the timings
    tokens = torch.from_numpy(data.train["code"][: 2_000_000].astype("int64"))

    peak = measure_matmul_peak_flops()
    fpt = flops_per_token(spec, args.seq).model
    plain, tunnel = [], []
    for _ in range(args.repeats):
        plain.append(plain_loop(spec, tokens, args.batch, args.seq, args.steps, cfg.lr))
        tunnel.append(train(cfg, num_threads=args.threads).tokens_per_s)
    p, t = max(plain), max(tunnel)

    print(f"model {spec.n_params().total / 1e6:.2f}M params, L={args.layers} h={args.d_model}, batch {args.batch} x "
          f"seq {args.seq}, fp32, {args.threads} threads, {args.steps} steps, best of {args.repeats}")
    print(f"measured fp32 matmul peak: {peak / 1e9:.1f} GFLOP/s;  planner training FLOPs/token: {fpt:.4g}")
    print()
    print("| loop            | tokens/s | MFU    |")
    print("|-----------------|----------|--------|")
    print(f"| plain PyTorch   | {p:8.0f} | {p * fpt / peak:6.1%} |")
    print(f"| scalelab.train  | {t:8.0f} | {t * fpt / peak:6.1%} |")
    print()
    print(f"ratio tunnel / plain = {t / p:.3f}x (target >= 0.9x)")


if __name__ == "__main__":
    main()
