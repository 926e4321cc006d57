"""``GPUSpec`` (one accelerator) and ``ClusterSpec`` (how many, how connected, at what price).

SI units inside, units in field names (DESIGN.md principle 7). Catalog files under ``catalog/`` use human
units (``memory_gb``, ``bf16_tflops``...) and are converted once by :mod:`scalelab.hardware.catalog`.
Peak FLOP/s are always the *dense* figures, never the 2:4-sparse ones that spec sheets often headline.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from .._spec import Derived, Spec

DEFAULT_MEMORY_RESERVE_BYTES = 2.0**30
"""Default reserve per GPU (1 GiB): the CUDA context of a PyTorch process on Hopper with lazy module
loading is about 0.5 GiB, NCCL communicators and cuBLAS workspaces take about as much again."""


class GPUSpec(Spec):
    """One accelerator (a GPU, an MI250X GCD, a TPU chip)."""

    name: str
    """Catalog name, e.g. ``h100-sxm``."""
    peak_flops_per_s: dict[str, PositiveFloat]
    """Dense peak FLOP/s per compute dtype (keys: fp32, tf32, bf16, fp16, fp8, fp4)."""
    memory_bytes: PositiveFloat
    """HBM capacity in bytes as the device reports it (``nvidia-smi`` / ``torch.cuda.mem_get_info``: an
    "80 GB" H100 reports 81,559 MiB = 85.5e9 bytes; catalog ``memory_mib``)."""
    memory_reserve_bytes: float = Field(DEFAULT_MEMORY_RESERVE_BYTES, ge=0)
    """Bytes of ``memory_bytes`` a training process cannot use for tensors: the CUDA context (~0.5 GiB
    with lazy module loading), NCCL communicator buffers and cuBLAS workspaces. Layouts must fit in
    ``usable_memory_bytes = memory_bytes - memory_reserve_bytes``."""
    memory_bandwidth_bytes_per_s: PositiveFloat
    """HBM bandwidth in bytes/s."""
    intra_node_bandwidth_bytes_per_s: PositiveFloat
    """Per-GPU unidirectional bandwidth to the other GPUs of its node (NVLink/xGMI/ICI), bytes/s."""
    inter_node_bandwidth_bytes_per_s: PositiveFloat
    """Per-GPU unidirectional network bandwidth across nodes (its NIC share), bytes/s."""
    gpus_per_node: PositiveInt = 8
    """GPUs in one node (or one NVLink domain, e.g. 72 for GB200 NVL72)."""
    pcie_bandwidth_bytes_per_s: PositiveFloat = 32e9
    """Host link bandwidth per GPU, bytes/s, for offload (PCIe 4 x16 ~ 32 GB/s, PCIe 5 ~ 64 GB/s)."""
    host_memory_bytes_per_gpu: PositiveFloat = 256e9
    """CPU DRAM available to each GPU's process for offload, bytes."""
    nvme_bandwidth_bytes_per_s: PositiveFloat = 6e9
    """NVMe read/write bandwidth per GPU for ZeRO-Infinity offload, bytes/s."""
    power_w: PositiveFloat | None = None
    """Board power (TDP) in watts, for energy estimates; ``None`` when unpublished."""
    matmul_efficiency: float = Field(0.5, gt=0, le=1)
    """Achievable fraction of dense peak for large training matmuls (the default step-time model)."""
    attention_efficiency: float | None = Field(None, gt=0, le=1)
    """Achievable fraction of dense peak for the fused attention kernel (FlashAttention forward + backward);
    ``None`` uses ``matmul_efficiency``."""
    network_efficiency: float = Field(0.7, gt=0, le=1)
    """Achievable fraction of link bandwidth for large collectives (bus bandwidth / line rate)."""
    link_latency_s: float = Field(5e-6, ge=0)
    """Per-hop latency of a collective step in seconds (alpha in the alpha-beta model)."""
    eager_elementwise_bytes_per_s: float | None = Field(None, gt=0)
    """Achieved rate of eager (unfused) elementwise kernels in the bytes the planner counts for them
    (``planner.step_time.eager_elementwise_bytes_per_token_layer``), bytes/s; measured by ``scalelab
    calibrate`` on a CPU. ``None``: ``HBM_EFFICIENCY`` of ``memory_bandwidth_bytes_per_s``."""
    eager_layer_overhead_s: float = Field(0.0, ge=0)
    """Fixed seconds per layer and micro-batch of those eager kernels, forward + backward (per-op costs)."""
    optimizer_tensor_overhead_s: float = Field(0.0, ge=0)
    """Fixed seconds per parameter tensor of a per-tensor (not foreach or fused) clip + AdamW update."""
    price_per_hour: float | None = Field(None, ge=0)
    """Typical cloud price in USD per GPU-hour; only a default, pass your own."""
    source: str = ""
    """Where the figures come from (datasheet, paper)."""

    @property
    def usable_memory_bytes(self) -> float:
        """Capacity left for the allocator: ``memory_bytes - memory_reserve_bytes``."""
        return max(0.0, self.memory_bytes - self.memory_reserve_bytes)

    def peak(self, dtype: str = "bf16") -> float:
        """Dense peak FLOP/s for ``dtype``; raises a clear error if the device has no such unit."""
        from ..errors import ConfigError, explain

        try:
            return self.peak_flops_per_s[dtype]
        except KeyError:
            raise ConfigError(
                explain(
                    f"{self.name} has no published dense peak for {dtype}",
                    value=dtype,
                    allowed=", ".join(self.peak_flops_per_s),
                    fix="choose a precision this device supports",
                )
            ) from None


class ClusterSpec(Spec):
    """``n_gpus`` copies of one GPU, ``gpus_per_node`` to a node."""

    gpu: GPUSpec
    """The accelerator."""
    n_gpus: PositiveInt
    """Total accelerators in the job."""
    gpus_per_node: Annotated[PositiveInt, Derived] = Field(default=None, validate_default=True)
    """GPUs per node; defaults to the GPU's catalog value."""
    price_per_gpu_hour: float | None = Field(None, ge=0)
    """USD per GPU-hour for cost estimates; defaults to the catalog's typical price."""

    @model_validator(mode="after")
    def _fill(self) -> ClusterSpec:
        if self.gpus_per_node is None:
            object.__setattr__(self, "gpus_per_node", min(self.gpu.gpus_per_node, self.n_gpus))
        if self.price_per_gpu_hour is None and self.gpu.price_per_hour is not None:
            object.__setattr__(self, "price_per_gpu_hour", self.gpu.price_per_hour)
        return self

    @property
    def n_nodes(self) -> int:
        return -(-self.n_gpus // self.gpus_per_node)
