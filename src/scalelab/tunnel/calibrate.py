"""``scalelab calibrate``: measure this machine's matmul and memory-bound throughput into a device profile.

The profile is a catalog TOML file (the fields of ``hardware/catalog/*.toml``, docs/models-and-hardware.md)
that ``scalelab plan --gpu ./my-device.toml`` and ``get_gpu("my-device.toml")`` accept, and that the
tunnel's plan -> prove columns use (:mod:`scalelab.tunnel.perf`). What is measured:

- **matmul**: ``torch.matmul`` of ``(m, k) x (k, n)`` at a few sizes (:data:`MATMUL_SIZES`, the shapes of
  the tunnel's models: ``m`` tokens per step, ``k, n`` their widths), ``2 m k n`` FLOPs per call, in fp32
  and bf16. The profile's peak for a dtype is the median over the sizes, and ``matmul_efficiency = 1``:
  the planner's matmul time (FLOPs / (peak x efficiency)) then runs at the measured rate. fp32 is written as
  both ``fp32_tflops`` and ``tf32_tflops`` (the planner times the fp32 recipe at the tf32 peak; a CPU has
  no TF32 and the measurement on a GPU is the rate torch's default fp32 matmul reaches).
- **attention**: causal ``F.scaled_dot_product_attention`` forward and backward at the tunnel's shapes
  (:data:`ATTENTION_SIZES`), counted as the planner times it (``12 b s^2 h d_h`` dense FLOPs times the
  causal kernel's share, ``planner.step_time.flash_attention_work``); ``attention_efficiency`` is its rate over the fp32
  matmul rate (at most 1). Small heads run far below the matmul rate on a CPU.
- **eager elementwise** (CPU): the elementwise kernels of a tunnel layer (norms, RoPE, SiLU x up, residual
  adds), forward + backward, on tiny tensors (a fixed cost per layer, ``eager_layer_overhead_us``) and at
  a tunnel batch at 3 widths (:func:`_eager_layer_seconds`), whose times less that cost over the bytes the
  planner counts for them give a rate per planner-counted byte (``eager_elementwise_gb_per_s``): small tensors sit in
  cache and are bound by per-element compute (exp in SiLU and softmax) and per-op costs, not by the
  bandwidth of a large copy. The planner uses them for eager (unfused) elementwise work and the loss.
- **optimizer** (CPU): clip + AdamW + zero_grad over many tiny tensors, seconds per parameter tensor
  (``optimizer_tensor_overhead_us``): the per-parameter loop's fixed cost.
- **memory-bound**: ``b.copy_(a)`` of a large fp32 tensor, counted as read + write bytes. The planner
  times elementwise kernels at ``HBM_EFFICIENCY`` of the profile's bandwidth, so the profile holds the
  measured rate divided by it: the planner's achieved bandwidth is then the measured one.

On a CPU the measurement uses ``threads`` threads (default 1, what the tunnel gives a small model,
``tunnel.train.auto_num_threads``): a profile describes the machine as a run sees it. Each figure is the
mean rate over a sustained loop after a warm-up (:func:`_timer`); on a loaded machine run it when the machine is quiet.
"""

from __future__ import annotations

import functools
import platform
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, explain

__all__ = ["MATMUL_SIZES", "QUICK_MATMUL_SIZES", "Calibration", "calibrate", "write_profile"]

#: (m, k, n) of the timed matmuls: m tokens per step (batch x sequence), k and n model widths.
MATMUL_SIZES = ((1024, 128, 512), (1024, 256, 256), (1024, 256, 1024), (2048, 512, 512))
#: The sizes of ``--quick`` (tests): fewer and smaller.
QUICK_MATMUL_SIZES = ((256, 64, 256), (512, 128, 128))
#: (batch, heads, seq_len, d_head) of the timed causal attention (``F.scaled_dot_product_attention``).
ATTENTION_SIZES = ((16, 4, 64, 16), (16, 4, 64, 32), (16, 4, 64, 64))
QUICK_ATTENTION_SIZES = ((4, 2, 32, 16),)
#: (tokens, widths) of the eager elementwise layer (:func:`_eager_layer_seconds`): a tunnel batch of
#: 16 x 64 tokens at the tunnel's model widths, for the rate per planner-counted byte.
EAGER_TOKENS, EAGER_WIDTHS = 1024, (64, 128, 256)
QUICK_EAGER_TOKENS, QUICK_EAGER_WIDTHS = 128, (32, 64)
#: (tokens, width) of the same kernels on tiny tensors: their time is the fixed cost per layer (per-op
#: dispatch, autograd bookkeeping), measured directly rather than as a noisy intercept.
EAGER_FIXED = (16, 16)
#: (tensors, elements each) of the optimizer timing: many tiny tensors, so that the fixed cost per
#: parameter tensor of clip + AdamW + zero_grad dominates their bytes.
OPTIMIZER_TENSORS = (64, 64)


@dataclass
class Calibration:
    """What :func:`calibrate` measured. FLOP/s and bytes/s are achieved rates, not datasheet peaks."""

    device: str
    name: str
    threads: int | None
    matmul_flops_per_s: dict[str, dict[str, float]] = field(default_factory=dict)
    """dtype -> {"m x k x n": FLOP/s}."""
    attention_flops_per_s: dict[str, float] = field(default_factory=dict)
    """"b x h x s x d_h" -> FLOP/s of causal attention forward + backward in fp32."""
    eager_layer_s: dict[int, float] = field(default_factory=dict)
    """CPU: width -> seconds of one eager layer's elementwise kernels, forward + backward."""
    eager_bytes_per_s: float | None = None
    """CPU: planner-counted eager elementwise bytes per second (those times less the fixed cost)."""
    eager_layer_overhead_s: float | None = None
    """CPU: fixed seconds per layer's eager elementwise kernels, forward + backward (on tiny tensors)."""
    optimizer_tensor_overhead_s: float | None = None
    """CPU: seconds per parameter tensor of clip + AdamW + zero_grad beyond its bytes."""
    copy_bytes_per_s: float = 0.0
    copy_bytes: int = 0
    memory_bytes: float = 0.0
    wall_s: float = 0.0
    torch_version: str = ""

    def matmul_rate(self, dtype: str) -> float:
        """The median over sizes of the achieved FLOP/s in ``dtype``."""
        return float(statistics.median(self.matmul_flops_per_s[dtype].values()))

    def attention_efficiency(self) -> float | None:
        """Median attention rate over the fp32 matmul rate, at most 1 (``None`` when not measured)."""
        if not self.attention_flops_per_s or "fp32" not in self.matmul_flops_per_s:
            return None
        return min(1.0, float(statistics.median(self.attention_flops_per_s.values())) / self.matmul_rate("fp32"))

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "name": self.name, "threads": self.threads,
                "matmul_flops_per_s": self.matmul_flops_per_s, "attention_flops_per_s": self.attention_flops_per_s,
                "attention_efficiency": self.attention_efficiency(),
                "matmul_median_flops_per_s": {d: self.matmul_rate(d) for d in self.matmul_flops_per_s},
                "eager_layer_s": self.eager_layer_s, "eager_bytes_per_s": self.eager_bytes_per_s,
                "eager_layer_overhead_s": self.eager_layer_overhead_s,
                "optimizer_tensor_overhead_s": self.optimizer_tensor_overhead_s,
                "copy_bytes_per_s": self.copy_bytes_per_s, "copy_bytes": self.copy_bytes,
                "memory_bytes": self.memory_bytes, "wall_s": self.wall_s, "torch_version": self.torch_version}

    def report(self) -> str:
        lines = [f"device profile {self.name} ({self.device}"
                 + (f", {self.threads} thread{'s' if self.threads != 1 else ''}" if self.threads else "")
                 + f"), measured in {self.wall_s:.1f} s"]
        for dtype, by in self.matmul_flops_per_s.items():
            sizes = ", ".join(f"{k}: {v / 1e9:.1f}" for k, v in by.items())
            lines.append(f"  matmul {dtype:<5} median {self.matmul_rate(dtype) / 1e9:.1f} GFLOP/s  ({sizes})")
        if self.attention_flops_per_s:
            sizes = ", ".join(f"{k}: {v / 1e9:.1f}" for k, v in self.attention_flops_per_s.items())
            lines.append(f"  attention   {self.attention_efficiency():.2f} of the fp32 matmul rate ({sizes} GFLOP/s)")
        if self.eager_bytes_per_s is not None:
            sizes = ", ".join(f"width {k}: {v * 1e3:.2f} ms" for k, v in self.eager_layer_s.items())
            lines.append(f"  eager layer {self.eager_bytes_per_s / 1e9:.2f} GB/s planner-counted + "
                         f"{(self.eager_layer_overhead_s or 0) * 1e6:.0f} us per layer, forward + backward ({sizes})")
        if self.optimizer_tensor_overhead_s is not None:
            lines.append(f"  optimizer   {self.optimizer_tensor_overhead_s * 1e6:.1f} us per parameter tensor "
                         "(clip + AdamW + zero_grad)")
        lines.append(f"  copy        {self.copy_bytes_per_s / 1e9:.2f} GB/s (read + write, "
                     f"{self.copy_bytes / 2**20:.0f} MiB tensor)")
        return "\n".join(lines)


def _timer(fn: Callable[[], Any], sync: Callable[[], None], min_s: float, max_calls: int) -> float:
    """Mean seconds of one call of ``fn`` over a sustained loop of at least ``min_s`` (at least one call)
    after a warm-up call.

    The mean over a window, not the median call: a training step is a sustained workload, and on a machine
    shared with other processes it gets the CPU share a sustained loop gets, while a median of short calls
    reports the rate between preemptions (measured here under load: 2-3x faster than the steps ran).
    """
    fn()
    sync()
    n = 0
    t0 = time.perf_counter()
    while n == 0 or (time.perf_counter() - t0 < min_s and n < max_calls):
        fn()
        n += 1
    sync()
    return (time.perf_counter() - t0) / n


def calibrate(*, device: str = "cpu", quick: bool = False, threads: int | None = 1,
              dtypes: tuple[str, ...] | None = None) -> Calibration:
    """Measure ``device``'s matmul FLOP/s (per dtype, :data:`MATMUL_SIZES`) and copy bandwidth.

    ``dtypes`` default: fp32 on a CPU (what the tunnel trains in there; bf16 matmuls on CPUs without
    AMX run at under 1 GFLOP/s and would take most of the time), fp32 and bf16 on a GPU.

    ``quick`` uses small sizes and short timings (well under a second; for tests). ``threads`` sets the
    CPU threads while measuring (``None``: leave torch's setting).
    """
    import torch

    from ..units import dtype_bytes

    dev = torch.device(device)
    if dtypes is None:
        dtypes = ("fp32",) if dev.type == "cpu" else ("fp32", "bf16")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(explain("no CUDA device to calibrate", value=device, allowed="cpu, or cuda on a GPU machine",
                                  fix="run `scalelab calibrate --device cpu`, or on the GPU machine"))
    bad = [d for d in dtypes if d not in ("fp32", "bf16", "fp16")]
    if bad:
        raise ConfigError(explain("unknown dtype to calibrate", value=bad[0], allowed="fp32, bf16, fp16"))

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    t_start = time.perf_counter()
    prev = torch.get_num_threads()
    if threads is not None and dev.type == "cpu":
        torch.set_num_threads(threads)
    min_s, max_calls = (0.02, 20) if quick else (0.25, 400)
    out = Calibration(device=device, name=_profile_name(dev), threads=threads if dev.type == "cpu" else None,
                      torch_version=torch.__version__)
    try:
        torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
        for dtype in dtypes:
            by: dict[str, float] = {}
            for m, k, n in (QUICK_MATMUL_SIZES if quick else MATMUL_SIZES):
                a = torch.randn(m, k, device=dev, dtype=torch_dtype[dtype])
                b = torch.randn(k, n, device=dev, dtype=torch_dtype[dtype])
                s = _timer(functools.partial(torch.matmul, a, b), sync, min_s, max_calls)
                by[f"{m}x{k}x{n}"] = 2.0 * m * k * n / s
            out.matmul_flops_per_s[dtype] = by
        if "fp32" in dtypes:
            out.attention_flops_per_s = _attention_rates(dev, QUICK_ATTENTION_SIZES if quick else ATTENTION_SIZES,
                                                         sync, min_s, max_calls)
        if dev.type == "cpu" and "fp32" in dtypes:
            tokens, widths = (QUICK_EAGER_TOKENS, QUICK_EAGER_WIDTHS) if quick else (EAGER_TOKENS, EAGER_WIDTHS)
            out.eager_layer_s = {w: _eager_layer_seconds(tokens, w, sync, min_s, max_calls) for w in widths}
            fixed = _eager_layer_seconds(*EAGER_FIXED, sync, min_s, max_calls)
            out.eager_bytes_per_s, out.eager_layer_overhead_s = _eager_fit(tokens, out.eager_layer_s, fixed)
            out.optimizer_tensor_overhead_s = _optimizer_tensor_seconds(*OPTIMIZER_TENSORS, min_s, max_calls)
        n_bytes = (16 if quick else 256) * 2**20 if dev.type == "cpu" else 1024 * 2**20
        src = torch.ones(int(n_bytes // dtype_bytes("fp32")), device=dev)
        dst = torch.empty_like(src)
        s = _timer(lambda: dst.copy_(src), sync, min_s, max_calls)
        out.copy_bytes, out.copy_bytes_per_s = int(n_bytes), 2.0 * n_bytes / s
        out.memory_bytes = _memory_bytes(dev)
    finally:
        torch.set_num_threads(prev)
    out.wall_s = time.perf_counter() - t_start
    return out


def _attention_rates(dev: Any, sizes: tuple[tuple[int, int, int, int], ...], sync: Callable[[], None],
                     min_s: float, max_calls: int) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    from ..planner.policy import get_save_policy
    from ..planner.step_time import flash_attention_work

    # the planner times a fused causal kernel's share of the dense FLOPs (flash_attention_work: half the
    # tiles, the backward's recomputed scores) at attention_efficiency x peak; count the same share here,
    # or the planned attention runs that much faster than the measured one
    work = flash_attention_work(get_save_policy("none"))
    out = {}
    for b, h, s, dh in sizes:
        q, k, v = (torch.randn(b, h, s, dh, device=dev, requires_grad=True) for _ in range(3))
        g = torch.randn(b, h, s, dh, device=dev)

        def fwd_bwd(q: Any = q, k: Any = k, v: Any = v, g: Any = g) -> None:
            F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g)

        out[f"{b}x{h}x{s}x{dh}"] = 12.0 * b * s * s * h * dh * work / _timer(fwd_bwd, sync, min_s, max_calls)
    return out


def _eager_layer_seconds(tokens: int, width: int, sync: Callable[[], None], min_s: float, max_calls: int) -> float:
    """Seconds of one forward + backward of the elementwise kernels of an eager tunnel layer (no matmuls,
    no attention core): the two norms (:func:`~scalelab.tunnel.model.make_norm`), RoPE on q and k as
    strided views of the fused qkv output (:func:`~scalelab.tunnel.model.apply_rope`), SiLU(gate) x up on
    the halves of the fused gate/up output, and the two residual adds, at ``tokens`` tokens (sequences of
    64), ``width`` wide, 4 heads, ``d_ff = 4 width``; what :class:`~scalelab.tunnel.model.Block` runs
    besides its matmuls and ``scaled_dot_product_attention``."""
    import torch
    import torch.nn.functional as F

    from .model import apply_rope, make_norm, rope_tables

    seq = min(64, tokens)
    b, heads = tokens // seq, 4
    dh, f = width // heads, 4 * width
    ln1, ln2 = make_norm("rmsnorm", width), make_norm("rmsnorm", width)
    x, attn_out, mlp_out = (torch.randn(b, seq, width, requires_grad=True) for _ in range(3))
    qkv = torch.randn(b, seq, 3 * width, requires_grad=True)
    hidden = torch.randn(b, seq, 2 * f, requires_grad=True)
    cos, sin = rope_tables(seq, dh)

    def fwd_bwd() -> None:
        n1 = ln1(x)
        q, k, _ = qkv.split(width, dim=-1)
        q = apply_rope(q.view(b, seq, heads, dh).transpose(1, 2), cos, sin)
        k = apply_rope(k.view(b, seq, heads, dh).transpose(1, 2), cos, sin)
        x2 = x + attn_out
        n2 = ln2(x2)
        gate, up = hidden.chunk(2, dim=-1)
        outs = (n1, q, k, n2, F.silu(gate) * up, x2 + mlp_out)
        torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])

    return _timer(fwd_bwd, sync, min_s, max_calls)


def _eager_fit(tokens: int, seconds: dict[int, float], fixed_s: float) -> tuple[float, float]:
    """(planner-counted bytes/s, fixed seconds per layer) of the eager layer times: the fixed cost is the
    time of the same kernels on tiny tensors (``fixed_s``, :data:`EAGER_FIXED`), capped at the smallest
    measured time; the rate is the bytes
    :func:`~scalelab.planner.step_time.eager_elementwise_bytes_per_token_layer` counts for the widths
    (forward x 3 passes, as the planner times forward + backward) over their times less that cost."""
    from ..arch.spec import ModelSpec
    from ..planner.layout import Layout
    from ..planner.step_time import eager_elementwise_bytes_per_token_layer

    pts = []
    for width, t in seconds.items():
        spec = ModelSpec(n_layers=1, d_model=width, n_heads=4, d_ff=4 * width, vocab_size=256)
        per_token = eager_elementwise_bytes_per_token_layer(spec, Layout(flash_attention=True), 64, "fp32")
        pts.append((3.0 * per_token * tokens, t))
    fixed = min(max(fixed_s, 0.0), 0.5 * min(p[1] for p in pts))  # a load spike never eats the rate
    return sum(p[0] for p in pts) / sum(p[1] - fixed for p in pts), fixed


def _optimizer_tensor_seconds(n_tensors: int, numel: int, min_s: float, max_calls: int) -> float:
    """Seconds per parameter tensor of the tunnel's update (``clip_grad_norm_``, ``AdamW.step`` as the
    tunnel builds it on a CPU, ``zero_grad``) over ``n_tensors`` tiny tensors: the fixed cost per tensor of
    the per-parameter loop, which the planner's bytes estimate of the optimizer leaves out."""
    import torch

    params = [torch.zeros(numel, requires_grad=True) for _ in range(n_tensors)]
    grads = [torch.randn(numel) for _ in range(n_tensors)]
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)

    def update() -> None:
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return _timer(update, lambda: None, min_s, max_calls) / n_tensors


def _profile_name(dev: Any) -> str:
    import re

    import torch

    if dev.type == "cuda":
        label = torch.cuda.get_device_name(dev)
    else:
        label = f"{platform.machine()}-{socket.gethostname()}"
    return f"{dev.type}-" + (re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "local")


def _memory_bytes(dev: Any) -> float:
    import os

    import torch

    if dev.type == "cuda":
        return float(torch.cuda.get_device_properties(dev).total_memory)
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - no sysconf
        return 16e9


def write_profile(cal: Calibration, path: str | Path) -> Path:
    """Write ``cal`` as a catalog TOML device file; return its path."""
    from ..planner.step_time import HBM_EFFICIENCY

    path = Path(path).expanduser()
    rates = {d: cal.matmul_rate(d) / 1e12 for d in cal.matmul_flops_per_s}
    peaks = {}
    if "fp32" in rates:
        peaks["fp32_tflops"] = peaks["tf32_tflops"] = rates["fp32"]
    for d in ("bf16", "fp16"):
        if d in rates:
            peaks[f"{d}_tflops"] = rates[d]
    bw = cal.copy_bytes_per_s / HBM_EFFICIENCY
    sizes = "; ".join(f"{d} " + ", ".join(f"{k} {v / 1e9:.2f} GFLOP/s" for k, v in by.items())
                      for d, by in cal.matmul_flops_per_s.items())
    source = (f"scalelab calibrate on {socket.gethostname()} ({cal.device}"
              + (f", {cal.threads} thread{'s' if cal.threads != 1 else ''}" if cal.threads else "")
              + f", torch {cal.torch_version}, "
              f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC): matmul medians over sizes ({sizes}); "
              f"copy {cal.copy_bytes_per_s / 1e9:.2f} GB/s read+write, written as bandwidth / HBM_EFFICIENCY "
              f"{HBM_EFFICIENCY} so that the planner's achieved rate is the measured one")
    lines = [
        "# A device profile measured by `scalelab calibrate` (catalog format, docs/plan-vs-measured.md).",
        "# Peaks are achieved rates (matmul_efficiency = 1); link and network figures are placeholders",
        "# for a single device (they only matter for multi-device layouts).",
        f'name = "{cal.name}"',
        f'display_name = "{cal.name} (calibrated)"',
        f"source = {_toml_str(source)}",
        *(f"{k} = {v:.6g}" for k, v in peaks.items()),
        f"memory_gb = {cal.memory_bytes / 1e9:.6g}",
        f"hbm_bandwidth_tb_per_s = {bw / 1e12:.6g}",
        f"intra_node_gb_per_s = {max(bw / 1e9, 1.0):.6g}",
        "nic_gbit_per_s = 10",
        "gpus_per_node = 1",
        "memory_reserve_gib = 0.5",
        "matmul_efficiency = 1.0",
        f"attention_efficiency = {cal.attention_efficiency() or 1.0:.4g}",
        *([f"eager_elementwise_gb_per_s = {cal.eager_bytes_per_s / 1e9:.6g}"] if cal.eager_bytes_per_s else []),
        *([f"eager_layer_overhead_us = {cal.eager_layer_overhead_s * 1e6:.6g}"]
          if cal.eager_layer_overhead_s else []),
        *([f"optimizer_tensor_overhead_us = {cal.optimizer_tensor_overhead_s * 1e6:.6g}"]
          if cal.optimizer_tensor_overhead_s is not None else []),
        'efficiency_source = "measured: the peaks are the achieved matmul rates; attention_efficiency is the '
        'achieved rate of causal attention forward + backward over the fp32 matmul rate"',
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
