"""Wind-tunnel throughput and MFU for a ~125M-parameter GPT in bf16 with ``torch.compile`` on one GPU.

    python benchmarks/gpu_tunnel.py [--steps 60] [--batch 16] [--seq 1024] [--no-compile] [--peak-tflops 989]

The model is GPT-2-small shaped (12 layers, d_model 768, 12 heads, GELU MLP 3072, learned positions,
tied embeddings, vocabulary padded to 50304 as nanoGPT does): 124M parameters by ``ModelSpec.n_params``.
It trains on the default stdlib corpus with the byte tokenizer (the unused rows of the embedding cost
the same FLOPs as a real 50k vocabulary, so the throughput is that of GPT-2 small).

Reported, side by side:

* ``scalelab.train`` tokens/s, measured from its progress callback after ``--warmup`` steps (so
  compilation and allocator warm-up are excluded);
* a plain PyTorch loop of the same compiled model, batch and sequence length (fused AdamW, bf16
  autocast), timed the same way;
* MFU of each: ``tokens/s * flops_per_token / peak`` with the planner's training FLOPs per token
  (default conventions: exact matmuls, causal attention not halved) against (a) this GPU's measured
  dense bf16 matmul rate and (b) ``--peak-tflops`` (datasheet dense bf16; H100/H200 SXM: 989) if given.

Needs a CUDA GPU; it is never run by the tests.
"""

from __future__ import annotations

import argparse
import time

import torch

from scalelab.arch import ModelSpec
from scalelab.planner.flops import flops_per_token
from scalelab.tunnel.data import load_corpus
from scalelab.tunnel.model import GPT
from scalelab.tunnel.train import RunConfig, train


def measured_bf16_peak(n: int = 8192, repeats: int = 10) -> float:
    """Best dense bf16 matmul rate (FLOP/s) on the current GPU."""
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def gpt2_small(seq: int) -> ModelSpec:
    return ModelSpec(name="gpt2-small-shape", n_layers=12, d_model=768, n_heads=12, d_ff=3072, vocab_size=50304,
                     seq_len=seq, ffn_kind="gelu", norm_kind="layernorm", position_kind="learned",
                     tied_embeddings=True, attn_bias="all", mlp_bias=True)


def tunnel_tokens_per_s(cfg: RunConfig, warmup: int) -> float:
    marks: list[tuple[float, int]] = []

    def progress(p: dict) -> None:
        marks.append((time.perf_counter(), p["tokens"]))  # train() syncs on the loss every step

    result = train(cfg, progress=progress)
    if result.status != "completed":
        raise SystemExit(f"tunnel run {result.status}: {result.error}")
    (t0, k0), (t1, k1) = marks[warmup], marks[-2]  # the last point includes the final evaluation
    return (k1 - k0) / (t1 - t0)


def plain_tokens_per_s(spec: ModelSpec, batch: int, seq: int, steps: int, warmup: int, compile: bool) -> float:
    torch.manual_seed(0)
    raw = GPT(spec).cuda()
    model = torch.compile(raw) if compile else raw
    opt = torch.optim.AdamW(raw.param_groups(0.1), lr=6e-4, betas=(0.9, 0.95), fused=True)
    data = torch.from_numpy(load_corpus("stdlib").train["tests"][: 4_000_000].astype("int64")).cuda()
    t_start = None
    for step in range(steps):
        if step == warmup:
            torch.cuda.synchronize()
            t_start = time.perf_counter()
        ix = torch.randint(0, len(data) - seq - 1, (batch,), device="cuda")
        offs = ix[:, None] + torch.arange(seq + 1, device="cuda")
        rows = data[offs]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            _, loss, _ = model(rows[:, :-1], rows[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(raw.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss)  # the tunnel reads the loss every step (divergence check); do the same
    torch.cuda.synchronize()
    return (steps - warmup) * batch * seq / (time.perf_counter() - t_start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=15)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=None, help="datasheet dense bf16 TFLOP/s")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU")
    torch.backends.cuda.matmul.allow_tf32 = True
    compile = not args.no_compile

    spec = gpt2_small(args.seq)
    cfg = RunConfig(model=spec, seq_len=args.seq, batch_size=args.batch, n_tokens=args.steps * args.batch * args.seq,
                    lr=6e-4, warmup_tokens=5 * args.batch * args.seq, eval_tokens=args.seq * args.batch,
                    device="cuda", dtype="bf16", compile=compile)
    load_corpus(cfg.corpus)
    fpt = flops_per_token(spec, args.seq).model
    peak = measured_bf16_peak()
    tun = tunnel_tokens_per_s(cfg, args.warmup)
    plain = plain_tokens_per_s(spec, args.batch, args.seq, args.steps, args.warmup, compile)

    print(f"{torch.cuda.get_device_name()} | torch {torch.__version__} "
          f"| model {spec.n_params().total / 1e6:.1f}M params | batch {args.batch} x seq {args.seq} | bf16 "
          f"| compile={compile} | {args.steps} steps, first {args.warmup} untimed")
    print(f"planner training FLOPs/token {fpt:.4g}; measured bf16 matmul peak {peak / 1e12:.0f} TFLOP/s")
    head = "| loop           | tokens/s   | MFU (measured peak) |"
    if args.peak_tflops:
        head += f" MFU ({args.peak_tflops:.0f} TFLOP/s) |"
    print(head)
    for name, tps in (("plain PyTorch", plain), ("scalelab.train", tun)):
        row = f"| {name:<14} | {tps:10.0f} | {tps * fpt / peak:19.1%} |"
        if args.peak_tflops:
            row += f" {tps * fpt / (args.peak_tflops * 1e12):17.1%} |"
        print(row)
    print(f"ratio tunnel / plain = {tun / plain:.3f}x")


if __name__ == "__main__":
    main()
