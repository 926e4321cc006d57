"""Plan -> prove: what a tunnel run measured on its device, beside what the planner predicts for it.

Measured (each run, stored in the run store's schema-2 columns, docs/plan-vs-measured.md):

- ``step_s``: the median wall time of one optimizer step, evaluation excluded, first
  :data:`WARMUP_STEPS` steps dropped (allocator and thread-pool warm-up);
- ``saved_tensor_bytes``: bytes autograd saved for backward during one measured step, through
  ``torch.autograd.graph.saved_tensors_hooks``; each storage is counted once and parameters are left out
  (they are model states, not activations);
- ``peak_rss_bytes`` (CPU): the process's peak resident set, ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
  (it includes the Python interpreter and torch, a few hundred MB);
- ``peak_mem_bytes``: on a GPU ``torch.cuda.max_memory_allocated()``; on a CPU the saved-tensor bytes plus
  the bytes of parameters, gradients and optimizer states, which is what the planner's memory total counts.

Planned: :func:`planned` runs :func:`scalelab.planner.plan.plan` on the run's model (its ``ModelSpec``),
its batch (one micro-batch of ``batch_size`` sequences of ``seq_len``), one device and the run's precision,
with :data:`TUNNEL_FRAMEWORK` (eager PyTorch: one kernel per elementwise op, fp32 logits in the loss).
The device profile is the one ``scalelab calibrate`` wrote (``$SCALELAB_DEVICE_PROFILE``, else
``$SCALELAB_HOME/device.toml`` when it describes this kind of device), else for a GPU its catalog entry
by name. Without a profile the ``pred_*`` columns stay empty.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..planner.frameworks import FrameworkProfile
from ..planner.memory import MemoryConventions

if TYPE_CHECKING:  # pragma: no cover
    from ..hardware.spec import GPUSpec
    from .train import RunConfig

__all__ = ["TUNNEL_FRAMEWORK", "WARMUP_STEPS", "SavedTensorMeter", "device_profile", "measured_memory",
           "median_step_s", "planned", "profile_path"]

log = logging.getLogger(__name__)

#: Steps left out of the median step time: the first steps pay for allocations and thread-pool start-up.
WARMUP_STEPS = 2

#: The tunnel trains with eager PyTorch: elementwise ops are separate kernels, the loss upcasts the logits.
TUNNEL_FRAMEWORK = FrameworkProfile(
    "scalelab-tunnel",
    memory=MemoryConventions(swiglu_saved_widths=4.0, logits_bytes=4.0, logits_copies=3.0, logits_output_bytes=4.0),
    fused_elementwise=False,
    sources=("scalelab/tunnel/model.py: eager PyTorch modules, F.cross_entropy on the logits",),
)


class SavedTensorMeter:
    """Counts the bytes autograd saves for backward inside its context (``torch.autograd.graph``'s
    ``saved_tensors_hooks``); the tensors themselves pass through unchanged, so training is unaffected.

    ``exclude`` holds tensors (the parameters) whose storage is not counted.
    """

    def __init__(self, exclude: Any = ()) -> None:
        self._skip = {_storage_key(t) for t in exclude}
        self._seen: set[Any] = set()
        self.bytes = 0

    def _pack(self, t: Any) -> Any:
        with contextlib.suppress(Exception):  # an exotic tensor (meta, sparse) is simply not counted
            key = _storage_key(t)
            if key not in self._skip and key not in self._seen:
                self._seen.add(key)
                self.bytes += int(t.untyped_storage().nbytes())
        return t

    @contextlib.contextmanager
    def __call__(self) -> Iterator[SavedTensorMeter]:
        import torch

        with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t):
            yield self


def _storage_key(t: Any) -> tuple[str, int]:
    return (str(t.device), int(t.untyped_storage().data_ptr()))


def median_step_s(step_times: list[float]) -> float | None:
    """The median step time, the first :data:`WARMUP_STEPS` left out when enough steps remain."""
    if not step_times:
        return None
    kept = step_times[WARMUP_STEPS:] if len(step_times) > 2 * WARMUP_STEPS else step_times
    return float(statistics.median(kept))


def measured_memory(model: Any, optimizer: Any, device: str, saved_tensor_bytes: int | None) -> dict[str, Any]:
    """``peak_mem_bytes`` and ``peak_rss_bytes`` of the run that trained ``model`` with ``optimizer``."""
    import torch

    out: dict[str, Any] = {"saved_tensor_bytes": saved_tensor_bytes, "peak_rss_bytes": _peak_rss_bytes()}
    if torch.device(device).type == "cuda":
        out["peak_mem_bytes"] = int(torch.cuda.max_memory_allocated(torch.device(device)))
        return out
    states = 0
    for p in model.parameters():
        states += p.numel() * p.element_size() * (2 if p.grad is not None or p.requires_grad else 1)
    for st in optimizer.state.values():
        states += sum(v.numel() * v.element_size() for v in st.values() if torch.is_tensor(v) and v.dim() > 0)
    out["peak_mem_bytes"] = int(states + (saved_tensor_bytes or 0))
    return out


def _peak_rss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # bytes on macOS, KiB on Linux


def profile_path() -> Path:
    """Where ``scalelab calibrate`` writes this machine's device profile by default."""
    from .records import scalelab_home

    return scalelab_home() / "device.toml"


def device_profile(device: str) -> GPUSpec | None:
    """The device profile the planner predicts ``device``'s runs with, or ``None`` (see module docstring)."""
    import torch

    from ..hardware.catalog import get_gpu

    kind = torch.device(device).type
    env = os.environ.get("SCALELAB_DEVICE_PROFILE")
    if env:
        return get_gpu(env)
    path = profile_path()
    if path.exists():
        spec = get_gpu(path)
        if spec.name.split("-")[0] == kind:
            return spec
    if kind == "cuda" and torch.cuda.is_available():
        name = torch.cuda.get_device_name(torch.device(device)).lower().replace("nvidia", "").split()
        with contextlib.suppress(Exception):
            return get_gpu(name[0])
    return None


def planned(config: RunConfig, gpu: GPUSpec, dtype: str) -> dict[str, Any]:
    """The planner's step time and memory for ``config``'s model and batch on one ``gpu`` in ``dtype``."""
    from ..hardware.spec import ClusterSpec
    from ..planner.layout import Layout, TrainSpec
    from ..planner.plan import plan

    train = TrainSpec(seq_len=config.seq_len, global_batch=config.batch_size,
                      precision="bf16" if dtype == "bf16" else "fp32")
    layout = Layout(micro_batch=config.batch_size, flash_attention=True)
    p = plan(config.model, ClusterSpec(gpu=gpu, n_gpus=1), train, layout, framework=TUNNEL_FRAMEWORK,
             memory_limit_bytes=float("inf"))
    mem = p.memory
    return {
        "pred_device": gpu.name,
        "pred_step_s": p.time.step_time_s if p.time is not None else None,
        "pred_activation_bytes": int(mem.activations_bytes + mem.other_bytes) if mem is not None else None,
        "pred_mem_bytes": int(mem.total_bytes) if mem is not None else None,
    }


def planned_or_empty(config: RunConfig, device: str, dtype: str) -> dict[str, Any]:
    """:func:`planned` on :func:`device_profile`, or empty columns: a prediction never fails a run."""
    try:
        gpu = device_profile(device)
        return planned(config, gpu, dtype) if gpu is not None else {}
    except Exception as e:  # noqa: BLE001 - report and go on: the run itself is what matters
        log.warning("no planner prediction for this run: %s", e)
        return {}
