"""Step time of one optimizer step, and the throughput figures derived from it (MFU, HFU, days).

The model (a union of calculon's and llm-analysis' approaches, planner reference notes section 2.8):

.. math::

    T_{ideal}  &= T_{matmul} + T_{elementwise} + T_{TP} + T_{CP} + T_{EP} + T_{PP}

    T_{step}   &= T_{ideal} \\left(1 + \\frac{p - 1}{v\\,m}\\right) + T_{DP,exposed}
                  + T_{optimizer} + T_{offload,exposed}

- ``T_matmul`` = hardware FLOPs of the most-loaded GPU / (dense peak x matmul efficiency). The efficiency
  defaults to ``GPUSpec.matmul_efficiency``, one value per device set from public data (docs/planner.md).
- ``T_elementwise``: norms, dropout, residual adds, activations and (without FlashAttention) the softmax
  over the s x s scores are bound by HBM bandwidth; their bytes are estimated per token and layer from
  the tensors they read and write (Korthikanti et al. 2022 section 4.1 lists the same tensors) and timed
  at ``HBM_EFFICIENCY`` of the HBM bandwidth (llm-analysis' suggested 0.9 memory efficiency, rounded down).
- TP, CP, EP and PP communication sits on the critical path of every micro-batch (Megatron-LM 2021-2022
  runs these collectives between dependent kernels), from :mod:`scalelab.planner.comm`; ``ep_overlap``
  hides a fraction of the expert all-to-alls behind computation (DeepSeek-V3's DualPipe).
- Pipeline bubble: 1F1B idles (p - 1) micro-batch slots per step, the interleaved schedule (p - 1) / v
  (Narayanan et al. 2021, section 2.2, eq. 1 and the interleaved variant); uneven layer splits use the
  largest stage.
- DP / ZeRO traffic overlaps with backward: ZeRO-0/1 reduce gradients as the last micro-batch's backward
  produces them (PyTorch DDP bucketing, Li et al. 2020, VLDB), ZeRO-2/3 overlap their per-micro-batch
  collectives with all compute (FSDP prefetching, Zhao et al. 2023). ``dp_overlap`` is the fraction of
  that window usable for hiding communication (1 = perfect overlap, 0 = none).
- Optimizer: Adam reads and writes weights, gradients and states once: memory-bound (calculon).
- Offload: bytes moved to host or NVMe per step (``MemoryBreakdown.offload_bytes_per_step``) over PCIe or
  NVMe, hidden under compute by the same overlap fraction (ZeRO-Offload, Ren et al. 2021); the CPU
  optimizer step streams the offloaded states twice (read and write) at host DRAM or NVMe bandwidth
  and is not overlapped (ZeRO-Offload's delayed parameter update is not modelled).

A user with a measurement passes ``measured_step_time_s`` or ``measured_tflops_per_gpu`` instead; the
model then only converts it into MFU, HFU and days.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..arch.spec import ModelSpec
from ..errors import ConfigError, explain
from ..hardware.spec import ClusterSpec
from .comm import CommBreakdown, activation_bytes
from .layout import Layout, TrainSpec
from .policy import get_save_policy

HBM_EFFICIENCY = 0.8
"""Achievable fraction of HBM bandwidth for elementwise kernels (llm-analysis suggests 0.9 for large
copies; fused training kernels with small reductions reach less)."""

HOST_MEMORY_BANDWIDTH_BYTES_PER_S = 50e9
"""Host DRAM bandwidth available to one GPU's CPU optimizer step (a two-socket DDR4/DDR5 server has
~200-300 GB/s per socket shared by four GPUs), bytes/s. CPU Adam (ZeRO-Offload, Ren et al. 2021) is
bound by streaming its states."""

DEFAULT_EP_OVERLAP = 0.0
"""Fraction of expert-parallel all-to-all time hidden behind computation by default (none: Megatron-LM
runs dispatch and combine between dependent kernels unless told to overlap them)."""

DEFAULT_DP_OVERLAP = 1.0
"""Fraction of the overlap window that hides DP/ZeRO communication by default (bucketed all-reduce in
PyTorch DDP and Megatron's ``--overlap-grad-reduce`` hide most of it when the window is long enough)."""

#: Compute dtype of each precision recipe (whose dense peak the matmuls run at).
COMPUTE_DTYPE = {"fp32": "tf32", "bf16": "bf16", "bf16-fp32-grad": "bf16", "fp8": "fp8", "fp4": "fp4"}


def compute_dtype(precision: str, gpu_peaks: dict[str, float]) -> str:
    """Dtype whose peak the matmuls of ``precision`` run at (fp32 training uses TF32 tensor cores where
    the device has them, else fp32)."""
    dt = COMPUTE_DTYPE.get(precision, "bf16")
    if dt == "tf32" and "tf32" not in gpu_peaks:
        dt = "fp32"
    if dt == "bf16" and "bf16" not in gpu_peaks and "fp16" in gpu_peaks:
        dt = "fp16"  # V100: fp16 tensor cores, no bf16
    return dt


@dataclass(frozen=True)
class StepTime:
    """Where one optimizer step's time goes, seconds. ``source`` says whether it was modelled or measured."""

    step_time_s: float
    matmul_s: float
    elementwise_s: float
    tp_s: float
    cp_s: float
    ep_s: float
    pp_s: float
    bubble_s: float
    dp_total_s: float
    dp_exposed_s: float
    optimizer_s: float
    offload_total_s: float
    offload_exposed_s: float
    host_optimizer_s: float
    """CPU (or NVMe) optimizer step for offloaded states, seconds."""
    efficiency: float
    """Matmul efficiency used (fraction of dense peak)."""
    dp_overlap: float
    source: str
    """``model``, ``measured_step_time`` or ``measured_tflops``."""
    peak_dtype: str
    """Dtype whose dense peak the matmuls were timed at."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def elementwise_bytes_per_token_layer(model: ModelSpec, layout: Layout, seq_len: int, precision: str,
                                      *, fused: bool = True) -> float:
    """HBM bytes that one layer's non-matmul kernels read and write per token in forward, per GPU.

    Counted tensors (bf16 = 2 bytes; one read + one write each, Korthikanti et al. 2022 section 4.1):
    two norms (2 x 2h), two bias-dropout-residual fusions (read 2h, write h, 1-byte mask: 2 x 7h/2 x 2),
    the MLP activation (read and write f, twice for SwiGLU's gate product) and, without FlashAttention,
    the fused scale-mask-softmax and dropout over a x s scores (read and write a s, dropout read,
    write and 1-byte mask). Norms and dropouts are split over tp only with sequence parallelism.

    ``fused=False`` counts what eager PyTorch runs instead (:func:`eager_elementwise_bytes_per_token_layer`).
    """
    if not fused:
        return eager_elementwise_bytes_per_token_layer(model, layout, seq_len, precision)
    e = activation_bytes(precision)
    h, a = model.d_model, model.n_heads
    t = layout.tp
    if model.moe is not None and model.n_moe_layers:
        k = model.moe.top_k
        f = (model.moe.d_expert * k + model.moe.shared_width * model.moe.n_shared_experts)
        f_tp = layout.expert_tp
    else:
        f, f_tp = model.d_ff, t
    replicated = (2 * 2 * h + 2 * 3.5 * h) * e  # norms + bias-dropout-residual
    replicated_div = t if layout.sequence_parallel else 1
    mlp = (2 if model.ffn_kind == "swiglu" else 1) * 2 * f * e / f_tp
    scores = 0.0
    if not layout.flash_attention:
        s_ctx = seq_len / layout.cp
        scores = (2 * a * s_ctx * e + 2.5 * a * s_ctx * e) / t  # softmax in/out + dropout in/out/mask
    return replicated / replicated_div + mlp + scores


def eager_elementwise_bytes_per_token_layer(model: ModelSpec, layout: Layout, seq_len: int,
                                            precision: str) -> float:
    """HBM bytes per token and layer (forward) of the elementwise kernels of an eager PyTorch Llama layer
    (torchtitan without ``torch.compile``, Hugging Face models), where every op is its own kernel that
    reads its inputs from and writes its output to HBM.

    Counted per element (e = activation bytes, fp32 = 4), each op a read and a write:

    - RMSNorm as ``x.float()``, ``pow(2)``, ``mean``, ``x * rsqrt(...)``, ``.type_as(x)``, ``* weight``:
      (e + 4) + (4 + 4) + 4 + (4 + 4) + (4 + e) + (e + e) = 28 + 4e per element of h, two per layer;
    - rotary embedding of q and k through complex fp32 (``view_as_complex(x.float())``, multiply,
      ``type_as``): (e + 4) + (4 + 4) + (4 + e) = 16 + 2e per element of q_dim + kv_dim;
    - two residual adds: 3e per element of h each;
    - SwiGLU as ``silu(gate)`` then ``* up``: 2e + 3e per element of f (GELU: 2e).

    Norm and residual tensors are split over tp only with sequence parallelism, as in the fused count.
    torch.compile fuses these chains back to roughly the fused count (torchtitan's docs/performance.md
    measures 5,762 -> 6,667 tokens/s/GPU on Llama 3.1 8B from compiling alone).
    """
    e = activation_bytes(precision)
    h, t = model.d_model, layout.tp
    norms = 2 * (28 + 4 * e) * h
    residual = 2 * 3 * e * h
    rope = (16 + 2 * e) * (model.q_dim + model.kv_dim) / t if model.position_kind == "rope" else 0.0
    if model.moe is not None and model.n_moe_layers:
        f = model.moe.d_expert * model.moe.top_k + model.moe.shared_width * model.moe.n_shared_experts
        f_tp = layout.expert_tp
    else:
        f, f_tp = model.d_ff, t
    mlp = (5 if model.ffn_kind == "swiglu" else 2) * e * f / f_tp
    replicated_div = t if layout.sequence_parallel else 1
    base = elementwise_bytes_per_token_layer(model, layout, seq_len, precision)  # for the softmax term
    fused_mlp_norms = elementwise_bytes_per_token_layer(
        model, layout.model_copy(update={"flash_attention": True}), seq_len, precision)
    scores = base - fused_mlp_norms  # softmax over scores without FlashAttention, as fused
    return (norms + residual) / replicated_div + rope + mlp + scores


def attention_hardware_flops(flops: Any, recompute: str) -> float:
    """Executed FLOPs of the attention core (``Q K^T`` and ``P V``) per step: forward, backward (2x) and
    whatever recomputation re-runs, from a per-step ``FlopsBreakdown`` (0 for the 6N method, which has no
    attention term)."""
    fwd = dict(flops.detail).get("attention_scores", 0.0)
    policy = get_save_policy(recompute)
    if policy.full:
        extra = fwd
    elif "core_attn" in policy.recompute:
        extra = fwd * flops.conventions.selective_recompute_passes
    else:
        extra = 0.0
    return 3.0 * fwd + extra


def model_step_time(
    model: ModelSpec,
    cluster: ClusterSpec,
    train: TrainSpec,
    layout: Layout,
    *,
    hardware_flops: float,
    comm: CommBreakdown,
    dp: int,
    efficiency: float | None = None,
    dp_overlap: float = DEFAULT_DP_OVERLAP,
    model_state_bytes: float = 0.0,
    offload_bytes_per_step: float = 0.0,
    host_state_bytes: float = 0.0,
    nvme_state_bytes: float = 0.0,
    attention_flops: float = 0.0,
    attention_efficiency: float | None = None,
    ep_overlap: float = DEFAULT_EP_OVERLAP,
    fused_elementwise: bool = True,
    comm_sm_fraction: float = 0.0,
) -> StepTime:
    """Predicted time of one optimizer step (see the module docstring for each term).

    Parameters
    ----------
    hardware_flops
        FLOPs executed per step by the whole job, recompute included (``FlopsBreakdown.hardware``).
    comm
        Collectives of one GPU (:func:`scalelab.planner.comm.comm_per_step`).
    dp
        Resolved data-parallel degree.
    efficiency
        Matmul efficiency (fraction of dense peak); ``None`` uses ``cluster.gpu.matmul_efficiency``.
    dp_overlap
        Fraction of the backward window that hides DP/ZeRO traffic, in [0, 1].
    model_state_bytes
        Weights + gradients + optimizer states on the GPU (for the memory-bound optimizer step).
    offload_bytes_per_step
        Bytes moved between GPU and host/NVMe per step.
    host_state_bytes, nvme_state_bytes
        Offloaded model states per GPU in host DRAM and on NVMe (the CPU optimizer streams them).
    attention_flops
        The part of ``hardware_flops`` spent in the attention core (:func:`attention_hardware_flops`).
        With ``layout.flash_attention`` it runs in a fused kernel at ``attention_efficiency``
        (default ``GPUSpec.attention_efficiency``, else the matmul efficiency); without, as batched
        GEMMs at the matmul efficiency.
    ep_overlap
        Fraction of the expert all-to-all time hidden behind computation, in [0, 1] (0: on the critical
        path, Megatron-LM's default; 1: DeepSeek-V3's DualPipe, which overlaps one micro-batch's
        all-to-all with another's compute).
    comm_sm_fraction
        Fraction of the GPU's SMs that overlapped expert all-to-all kernels occupy, in [0, 1): the
        computation they hide runs that much slower (DeepSeek-V3: 20 of 132 SMs).
    fused_elementwise
        True when norms, activations and residual adds run as fused kernels (Megatron, torch.compile);
        False for eager PyTorch (:func:`eager_elementwise_bytes_per_token_layer`).

    Examples
    --------
    >>> from scalelab.arch.spec import ModelSpec
    >>> from scalelab.hardware.spec import ClusterSpec, GPUSpec
    >>> gpu = GPUSpec(name="x", peak_flops_per_s={"bf16": 1e15}, memory_bytes=80e9,
    ...               memory_bandwidth_bytes_per_s=3e12, intra_node_bandwidth_bytes_per_s=450e9,
    ...               inter_node_bandwidth_bytes_per_s=50e9)
    >>> m = ModelSpec(n_layers=4, d_model=1024, n_heads=8, d_ff=4096, vocab_size=32000)
    >>> st = model_step_time(m, ClusterSpec(gpu=gpu, n_gpus=1), TrainSpec(seq_len=1024, global_batch=8),
    ...                      Layout(), hardware_flops=1e15, comm=CommBreakdown(), dp=1, efficiency=0.5)
    >>> round(st.matmul_s, 3)
    2.0
    """
    gpu = cluster.gpu
    eff = gpu.matmul_efficiency if efficiency is None else efficiency
    if not 0 < eff <= 1:
        raise ConfigError(explain("matmul efficiency must be in (0, 1]", value=eff,
                                  fix="pass a fraction of peak such as 0.45"))
    if not 0 <= ep_overlap <= 1:
        raise ConfigError(explain("ep_overlap must be in [0, 1]", value=ep_overlap,
                                  fix="pass 0 (all-to-all exposed) to 1 (hidden, as DualPipe does)"))
    if not 0 <= comm_sm_fraction < 1:
        raise ConfigError(explain("comm_sm_fraction must be in [0, 1)", value=comm_sm_fraction,
                                  fix="pass the share of SMs the communication kernels hold, e.g. 20 / 132"))
    if not 0 <= dp_overlap <= 1:
        raise ConfigError(explain("dp_overlap must be in [0, 1]", value=dp_overlap,
                                  fix="pass 0 (no overlap) to 1 (perfect overlap)"))
    dtype = compute_dtype(train.precision, gpu.peak_flops_per_s)
    peak = gpu.peak(dtype)
    p, v = layout.pp, layout.interleave
    L = model.n_layers
    m = max(1, train.global_batch // (dp * layout.micro_batch))
    # The most-loaded stage holds ceil(L/p) of L layers: it sets the pace of the whole pipeline.
    imbalance = (-(-L // p)) * p / L
    attn_eff = eff
    if layout.flash_attention:
        attn_eff = attention_efficiency or getattr(gpu, "attention_efficiency", None) or eff
        if not 0 < attn_eff <= 1:
            raise ConfigError(explain("attention efficiency must be in (0, 1]", value=attn_eff))
    attention_flops = min(max(attention_flops, 0.0), hardware_flops)
    # FP8 recipes quantise the linear layers only; the attention core stays in BF16 (DeepSeek-V3 report
    # sec. 3.3.1; torchao's Float8 converts nn.Linear modules, FlashAttention runs in BF16).
    attn_peak = gpu.peak("bf16") if dtype in ("fp8", "fp4") and "bf16" in gpu.peak_flops_per_s else peak
    matmul_s = ((hardware_flops - attention_flops) / (eff * peak) + attention_flops / (attn_eff * attn_peak)) \
        / cluster.n_gpus * imbalance

    tokens_per_gpu = train.global_batch_tokens / (dp * layout.cp)
    passes = 3.0 + (1.0 if layout.save_policy.full else 0.0)  # fwd + bwd (~2x fwd) + recompute
    ew_bytes = (elementwise_bytes_per_token_layer(model, layout, train.seq_len, train.precision,
                                                  fused=fused_elementwise)
                * tokens_per_gpu * (-(-L // p)) * passes)
    elementwise_s = ew_bytes / (gpu.memory_bandwidth_bytes_per_s * HBM_EFFICIENCY)

    by = comm.by_group()
    tp_s, cp_s, ep_s, pp_s = (by.get(g, 0.0) for g in ("tp", "cp", "ep", "pp"))
    ep_total = ep_s
    # Overlapped expert all-to-alls hide behind computation (DualPipe, DeepSeek-V3 section 3.2.1), never
    # behind more computation than there is.
    hidden = min(ep_overlap * ep_total, matmul_s + elementwise_s)
    # The communication kernels that hide it hold SMs: computation under them runs on the rest
    # (DeepSeek-V3 report sec. 3.2.2: 20 of the H800's 132 SMs), so hiding costs hidden * f / (1 - f).
    ep_s = ep_total - hidden + hidden * comm_sm_fraction / (1.0 - comm_sm_fraction)
    ideal = matmul_s + elementwise_s + tp_s + cp_s + ep_s + pp_s
    bubble_s = ideal * (p - 1) / (v * m)

    dp_total = comm.time_s(critical=False)
    if layout.zero >= 2:
        window = matmul_s + elementwise_s  # per-micro-batch collectives overlap all compute
    else:
        window = (matmul_s + elementwise_s) * (2.0 / 3.0) / m  # backward of the last micro-batch
    dp_exposed = max(0.0, dp_total - dp_overlap * window)

    optimizer_s = 2.0 * model_state_bytes / (gpu.memory_bandwidth_bytes_per_s * HBM_EFFICIENCY)

    offload_total = 0.0
    if offload_bytes_per_step > 0:
        nvme = "nvme" in (layout.offload_optimizer, layout.offload_params)
        link_bw = min(gpu.pcie_bandwidth_bytes_per_s, gpu.nvme_bandwidth_bytes_per_s) if nvme \
            else gpu.pcie_bandwidth_bytes_per_s
        offload_total = offload_bytes_per_step / link_bw
    offload_exposed = max(0.0, offload_total - dp_overlap * (matmul_s + elementwise_s))
    host_opt = (2.0 * host_state_bytes / HOST_MEMORY_BANDWIDTH_BYTES_PER_S
                + 2.0 * nvme_state_bytes / gpu.nvme_bandwidth_bytes_per_s)

    total = ideal + bubble_s + dp_exposed + optimizer_s + offload_exposed + host_opt
    return StepTime(
        step_time_s=total, matmul_s=matmul_s, elementwise_s=elementwise_s, tp_s=tp_s, cp_s=cp_s, ep_s=ep_s,
        pp_s=pp_s, bubble_s=bubble_s, dp_total_s=dp_total, dp_exposed_s=dp_exposed, optimizer_s=optimizer_s,
        offload_total_s=offload_total, offload_exposed_s=offload_exposed, host_optimizer_s=host_opt,
        efficiency=eff,
        dp_overlap=dp_overlap, source="model", peak_dtype=dtype,
    )


def measured_step_time(
    *, hardware_flops: float, n_gpus: int, peak_dtype: str,
    measured_step_time_s: float | None = None, measured_tflops_per_gpu: float | None = None,
) -> StepTime:
    """A step time from a measurement: given directly, or from achieved TFLOP/s per GPU.

    ``measured_tflops_per_gpu`` counts executed (hardware) FLOPs, recompute included, as Megatron-LM's
    2021 paper reports them (Narayanan et al. 2021, Table 1 footnote: "including recomputation"), so
    ``step = hardware_flops / (n_gpus * tflops * 1e12)``.

    >>> measured_step_time(hardware_flops=1e18, n_gpus=10, peak_dtype="bf16",
    ...                    measured_tflops_per_gpu=100).step_time_s
    1000.0
    """
    if measured_step_time_s is not None and measured_tflops_per_gpu is not None:
        raise ConfigError(explain("give a measured step time or measured TFLOP/s, not both",
                                  fix="drop one of measured_step_time_s / measured_tflops_per_gpu"))
    if measured_step_time_s is not None:
        if not measured_step_time_s > 0:
            raise ConfigError(explain("measured step time must be positive (seconds)",
                                      value=measured_step_time_s))
        t, src = float(measured_step_time_s), "measured_step_time"
    elif measured_tflops_per_gpu is not None:
        if not measured_tflops_per_gpu > 0:
            raise ConfigError(explain("measured TFLOP/s per GPU must be positive",
                                      value=measured_tflops_per_gpu))
        t, src = hardware_flops / (n_gpus * measured_tflops_per_gpu * 1e12), "measured_tflops"
    else:
        raise ConfigError(explain("no measurement given", fix="pass measured_step_time_s or "
                                  "measured_tflops_per_gpu"))
    nan = float("nan")
    return StepTime(step_time_s=t, matmul_s=nan, elementwise_s=nan, tp_s=nan, cp_s=nan, ep_s=nan, pp_s=nan,
                    bubble_s=nan, dp_total_s=nan, dp_exposed_s=nan, optimizer_s=nan, offload_total_s=nan,
                    offload_exposed_s=nan, host_optimizer_s=nan, efficiency=nan, dp_overlap=nan, source=src,
                    peak_dtype=peak_dtype)
