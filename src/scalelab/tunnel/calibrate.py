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
  (:data:`ATTENTION_SIZES`), counted as the planner counts it (``12 b s^2 h d_h``: scores and values,
  backward twice the forward, no causal halving); ``attention_efficiency`` is its rate over the fp32
  matmul rate (at most 1). Small heads run far below the matmul rate on a CPU.
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

    out = {}
    for b, h, s, dh in sizes:
        q, k, v = (torch.randn(b, h, s, dh, device=dev, requires_grad=True) for _ in range(3))
        g = torch.randn(b, h, s, dh, device=dev)

        def fwd_bwd(q: Any = q, k: Any = k, v: Any = v, g: Any = g) -> None:
            F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g)

        out[f"{b}x{h}x{s}x{dh}"] = 12.0 * b * s * s * h * dh / _timer(fwd_bwd, sync, min_s, max_calls)
    return out


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
