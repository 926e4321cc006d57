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
  hides a fraction of the expert all-to-alls behind computation (DeepSeek-V3's DualPipe),
  ``tp_overlap`` a fraction of the TP collectives behind the GEMMs they are split against, never more
  than those GEMMs' time (Transformer Engine's userbuffers, NeMo's ``ub_tp_comm_overlap``), and
  ``pp_overlap`` a fraction of the pipeline sends behind compute, with interleaved schedules only
  (Megatron-Core's ``overlap_p2p_comm``, which Megatron-LM forces off without interleaving).
- Pipeline bubble: 1F1B idles (p - 1) micro-batch slots per step, the interleaved schedule (p - 1) / v
  (Narayanan et al. 2021, section 2.2, eq. 1 and the interleaved variant). The pipeline runs at the pace
  of its slowest stage: the last one, with ``floor(L/p)`` layers and the LM head, or one with
  ``ceil(L/p)`` layers (:func:`pipeline_pace_layers`).
- DP / ZeRO traffic overlaps with backward: ZeRO-0/1 reduce gradients as the last micro-batch's backward
  produces them (PyTorch DDP bucketing, Li et al. 2020, VLDB), ZeRO-2/3 overlap their per-micro-batch
  collectives with all compute (FSDP prefetching, Zhao et al. 2023). ``dp_overlap`` is the fraction of
  that window usable for hiding communication (1 = perfect overlap, 0 = none).
- Optimizer: Adam reads and writes weights, gradients and states once: memory-bound (calculon).
- Offload: bytes moved to host or NVMe per step (``MemoryBreakdown.offload_bytes_per_step``) over PCIe or
  NVMe, hidden under compute by the same overlap fraction (ZeRO-Offload, Ren et al. 2021); offloaded
  activations go out during the forward and come back during the backward, so each half hides only behind
  its pass (a third and two thirds of the compute); the CPU
  optimizer step streams the offloaded states twice (read and write) at host DRAM or NVMe bandwidth
  and is not overlapped (ZeRO-Offload's delayed parameter update is not modelled).

A user with a measurement passes ``measured_step_time_s`` or ``measured_tflops_per_gpu`` instead; the
model then only converts it into MFU, HFU and days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..arch.spec import ModelSpec
from ..errors import ConfigError, explain
from ..hardware.spec import ClusterSpec
from .async_tp import ASYNC_TP_HIDING_EFFICIENCY, AsyncTPCost, async_tp_cost, async_tp_unfused_rs_per_layer
from .comm import (
    RING_TRANSFORMER_ENGINE,
    CommBreakdown,
    RingRecipe,
    ZeroCalls,
    activation_bytes,
    collective_time_s,
    group_bandwidth_bytes_per_s,
    ring_factors,
    tp_all_gather_fraction,
    tp_collectives_per_layer,
    zero_calls,
)
from .gemm import gemm_roofline_factor, linear_gemm_shapes
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

CP_RING_STEP_OVERHEAD_S = 10e-6
"""Fixed GPU time of one ring-attention step beyond its attention and transfer, seconds: a step runs
about five dependent short kernels (the attention block, the softmax-statistics and output corrections,
the send and the receive with their stream synchronisation, TransformerEngine's P2P context parallelism),
each leaving a launch gap of ~2 us on the GPU timeline when the kernels are short. An estimate, not fitted."""

FLASH_TILE_TOKENS = 128
"""Keys per tile of a FlashAttention kernel (block size 128 on Hopper; Dao 2023, Shah et al. 2024)."""

FLASH_FIXED_TILES = 1.5
"""Fixed work of one query tile in one attention kernel, in key tiles: loading the query tile, writing
the output and its softmax statistics (the pipeline's fill and drain), and the half-wasted diagonal
tile of a causal block. Short kernels amortise it over fewer key tiles, which is why FlashAttention's
throughput falls at 0.5-1K tokens against 8-16K (Dao 2023, FlashAttention-2, Fig. 4). An estimate."""

FLASH_CAUSAL_WORK = 0.5
"""Share of the dense attention-core FLOPs (``QK^T`` and ``PV`` over all s x s pairs, as ``flops.py``
counts them unless ``causal_halved``) that a causal FlashAttention kernel executes: it skips the key
tiles above the diagonal (Dao et al. 2022 sec. 3.1; FlashAttention-2 sec. 3.1.1: "skip the computation of
blocks ... where all column indices are more than the row indices", about half the blocks). Its
published throughputs, from which ``GPUSpec.attention_efficiency`` is set, count causal FLOPs the same
way (half of the dense count; ``flash-attention/benchmarks``: ``flops / (2 if causal else 1)``). The
unfused path (``flash_attention=False``) computes the whole score matrix and then masks it."""

FLASH_BACKWARD_EXTRA = 0.5
"""Forward passes of attention-core work that FlashAttention's backward adds to the 2 of a dense
backward: it recomputes the scores ``QK^T`` from the saved log-sum-exp, 5 matmuls against the forward's 2
(Dao 2023, FlashAttention-2 sec. 3.1.2; its benchmarks count backward FLOPs as 2.5 x forward)."""

#: Bytes per element of a GEMM's inputs in each compute dtype (its output is bf16, or fp32 for fp32 and tf32).
GEMM_INPUT_BYTES = {"fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5}

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
    cp_transfer_s: float = 0.0
    """Context parallelism's ring transfers before overlap (``cp_s`` holds what is exposed of them plus
    the ring's compute overheads, :class:`RingAttentionCost`)."""
    cp_exposed_s: float = 0.0
    """The part of ``cp_transfer_s`` that the ring's attention does not hide."""
    tp_hidden_s: float = 0.0
    """TP collectives hidden behind their GEMMs (``tp_overlap``); ``tp_s`` is what stays exposed."""
    pp_hidden_s: float = 0.0
    """Pipeline sends hidden behind compute (``pp_overlap``, interleaved schedules); ``pp_s`` is what stays
    exposed."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def elementwise_bytes_per_token_layer(model: ModelSpec, layout: Layout, seq_len: int, precision: str,
                                      *, fused: bool = True) -> float:
    """HBM bytes that one layer's non-matmul kernels read and write per token in forward, per GPU.

    Counted tensors (bf16 = 2 bytes; one read + one write each, Korthikanti et al. 2022 section 4.1):
    two norms (2 x 2h), two bias-dropout-residual fusions (read 2h, write h, 1-byte mask: 2 x 7h/2 x 2),
    the MLP activation (read and write f, twice for SwiGLU's gate product) and, without FlashAttention,
    the fused scale-mask-softmax and dropout over a x s scores (read and write a s, dropout read,
    write and 1-byte mask). Norms and dropouts are split over tp only with sequence parallelism
    (:func:`norms_per_layer`: one norm in a parallel block that shares it; two norms of a parallel block run
    on the whole gathered input).

    ``fused=False`` counts what eager PyTorch runs instead (:func:`eager_elementwise_bytes_per_token_layer`).
    """
    if not fused:
        return eager_elementwise_bytes_per_token_layer(model, layout, seq_len, precision)
    e = activation_bytes(precision)
    h, a = model.d_model, model.n_heads
    t = layout.tp
    if model.moe is not None and model.n_moe_layers:
        f = model.moe.d_expert * model.moe.top_k + model.moe.shared_width * model.moe.n_shared_experts
    else:
        f = model.d_ff
    f_tp = t  # MoE too: a rank's share of the routed rows x expert width is over tp, whatever etp (gemm.py)
    n_norms, norm_div = norms_per_layer(model, layout)
    replicated_div = t if layout.sequence_parallel else 1
    replicated = n_norms * 2 * h * e / norm_div + 2 * 3.5 * h * e / replicated_div  # norms + bias-dropout-residual
    mlp = (2 if model.ffn_kind == "swiglu" else 1) * 2 * f * e / f_tp
    scores = 0.0
    if not layout.flash_attention:
        s_ctx = seq_len / layout.cp
        scores = (2 * a * s_ctx * e + 2.5 * a * s_ctx * e) / t  # softmax in/out + dropout in/out/mask
    return replicated + mlp + scores


def norms_per_layer(model: ModelSpec, layout: Layout) -> tuple[int, int]:
    """(norms per layer, the factor their tensors are split by): two norms, split over tp with sequence
    parallelism; one in a parallel block that shares it (``ModelSpec.parallel_block_norms``); a parallel
    block's two norms run on the input gathered once (:func:`~scalelab.planner.comm.tp_collectives_per_layer`),
    so they are not split.

    >>> from scalelab import get_model
    >>> lay = Layout(tp=8, sequence_parallel=True)
    >>> norms_per_layer(get_model("llama-3.1-8b"), lay), norms_per_layer(get_model("falcon-180b"), lay)
    ((2, 8), (2, 1))
    """
    n = model.parallel_block_norms
    gathered_first = model.parallel_block and n == 2
    return n, layout.tp if layout.sequence_parallel and not gathered_first else 1


def rerun_elementwise_bytes_per_token_layer(model: ModelSpec, layout: Layout, precision: str) -> dict[str, float]:
    """HBM bytes per token and layer that a save policy's recomputed elementwise modules move again in
    backward, by module name of :mod:`~scalelab.planner.policy` (fused kernels, as
    :func:`elementwise_bytes_per_token_layer` counts them): ``act`` reruns the MLP activation (SwiGLU reads
    gate and up and writes their product: 3 widths of f; GELU reads and writes f), ``layernorm`` the
    norms (read and write h each; as many and as split as :func:`norms_per_layer` says). Full recompute reruns all
    elementwise kernels and is counted as a fourth pass instead.

    >>> from scalelab import get_model
    >>> b = rerun_elementwise_bytes_per_token_layer(get_model("llama-3.1-8b"), Layout(), "bf16")
    >>> b["act"] == 3 * 14336 * 2
    True
    """
    e = activation_bytes(precision)
    if model.moe is not None and model.n_moe_layers:
        f = model.moe.d_expert * model.moe.top_k + model.moe.shared_width * model.moe.n_shared_experts
    else:
        f = model.d_ff
    f_tp = layout.tp  # MoE too: a rank's share of the routed rows x expert width is over tp (gemm.py)
    act = (3 if model.ffn_kind == "swiglu" else 2) * f * e / f_tp
    n_norms, norm_div = norms_per_layer(model, layout)
    return {"act": act, "layernorm": n_norms * 2 * model.d_model * e / norm_div}


def moe_permute_bytes_per_token_layer(model: ModelSpec, layout: Layout, precision: str) -> float:
    """HBM bytes per token and MoE layer (forward, per GPU) of the token permutations around the expert
    all-to-alls when they run as kernels of their own, as Megatron-Core's ``MoEAlltoAllTokenDispatcher``
    runs them: ``permute`` gathers the ``top_k`` routed copies of the rank's tokens by destination before
    the dispatch, ``sort_chunks_by_idxs`` regroups what arrives by local expert (only when a rank holds
    more than one), and the combine runs both inverses. Each reads and writes ``h`` per copy; a rank holds
    ``top_k / tp`` copies per token of its micro-batch before the dispatch and ``top_k x etp / tp`` after it
    (the rows its experts' GEMMs see, :func:`~scalelab.planner.gemm.expert_gemm_shapes`). Backward runs the
    same permutations on the gradients. 0 for a dense model. Dispatch kernels that write tokens straight into
    their expert-grouped place (DeepSeek-V3's, report sec. 3.2.2) run none of these: a profile's
    ``moe_fused_dispatch``.

    >>> from scalelab import get_model
    >>> m = get_model("deepseek-v3")   # 256 experts, top 8, h = 7168: 4 local experts at EP64
    >>> moe_permute_bytes_per_token_layer(m, Layout(ep=64, dp=64), "bf16") == 2 * (8 + 8) * 2 * 7168 * 2
    True
    >>> moe_permute_bytes_per_token_layer(get_model("llama-3.1-8b"), Layout(), "bf16")
    0.0
    """
    moe = model.moe
    if moe is None or not model.n_moe_layers:
        return 0.0
    k = min(moe.top_k, moe.n_experts)
    before = k / layout.tp
    after = k * layout.expert_tp / layout.tp if moe.n_experts > layout.ep else 0.0
    return 2.0 * (before + after) * 2.0 * model.d_model * activation_bytes(precision)


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

    Norm and residual tensors are split over tp only with sequence parallelism, as in the fused count (norms
    as :func:`norms_per_layer` says).
    torch.compile fuses these chains back to roughly the fused count (torchtitan's docs/performance.md
    measures 5,762 -> 6,667 tokens/s/GPU on Llama 3.1 8B from compiling alone).
    """
    e = activation_bytes(precision)
    h, t = model.d_model, layout.tp
    n_norms, norm_div = norms_per_layer(model, layout)
    norms = n_norms * (28 + 4 * e) * h / norm_div
    residual = 2 * 3 * e * h
    rope = (16 + 2 * e) * (model.q_dim + model.kv_dim) / t if model.position_kind == "rope" else 0.0
    if model.moe is not None and model.n_moe_layers:
        f = model.moe.d_expert * model.moe.top_k + model.moe.shared_width * model.moe.n_shared_experts
    else:
        f = model.d_ff
    f_tp = t
    mlp = (5 if model.ffn_kind == "swiglu" else 2) * e * f / f_tp
    replicated_div = t if layout.sequence_parallel else 1
    base = elementwise_bytes_per_token_layer(model, layout, seq_len, precision)  # for the softmax term
    fused_mlp_norms = elementwise_bytes_per_token_layer(
        model, layout.model_copy(update={"flash_attention": True}), seq_len, precision)
    scores = base - fused_mlp_norms  # softmax over scores without FlashAttention, as fused
    return norms + residual / replicated_div + rope + mlp + scores


def eager_loss_bytes_per_token(model: ModelSpec, layout: Layout) -> float:
    """Bytes per token of an eager cross-entropy over fp32 logits (forward, as the layers count it): the
    log-softmax reads and writes the logits (2 x 4 V) and its backward reads the output and the incoming
    gradient and writes the logits' gradient (3 x 4 V), 5 x 4 V in all, counted as a third of that per
    forward-equivalent pass (the planner times 3 passes). Split over tp (vocabulary-parallel loss).

    >>> from scalelab.arch.spec import ModelSpec
    >>> eager_loss_bytes_per_token(ModelSpec(n_layers=1, d_model=64, n_heads=4, d_ff=256, vocab_size=300),
    ...                            Layout())
    2000.0
    """
    return 5.0 * 4.0 * model.vocab_size / 3.0 / layout.tp


@dataclass(frozen=True)
class Float8Recipe:
    """What FP8 training of the linear layers costs beyond running their GEMMs at the fp8 dense peak
    (``TrainSpec.precision="fp8"``); a framework profile's ``float8`` (:mod:`~scalelab.planner.frameworks`).

    The default is torchao's Float8 with dynamic tensorwise scaling under ``torch.compile``, what
    torchtitan's published Float8 runs used (torchtitan ``docs/float8.md`` and ``docs/performance.md`` at
    commit 9dec370, with torchao eab345c). Its byte counts are torchao's own roofline at that commit
    (``torchao/float8/roofline_utils.py``, ``get_tensor_memory_traffic_bytes``: dynamic scaling,
    ``fuse_with_prev`` for activations and gradients, ``model_torch_compile_limitations=True``):

    - a linear's input (forward) or output gradient (backward): the abs-max is fused into the kernel
      that produced the tensor; the cast reads it in bf16 (2 bytes per element), writes it twice in fp8,
      row- and column-major (2), and torch.compile's kernel reads the fp8 copy once more
      (pytorch/pytorch#130015; 1): 5 bytes per element;
    - a weight, each forward: an abs-max pass (2) and the same cast (5): 7 bytes per element, on the
      ZeRO-3 shard when FSDP gathers weights in float8 (torchtitan's ``enable_fsdp_float8_all_gather``).

    ``cast_time_factor``: measured cast time over those bytes' time at the planner's HBM rate
    (``HBM_EFFICIENCY`` of the bandwidth). 1.38 is what torchao's README (eab345c, "Performance",
    example 2) implies: a compiled LayerNorm -> Linear -> Sigmoid at M, K, N = 4096, 8192, 16384 runs
    forward and backward 1.39x faster in Float8. With its bf16 GEMMs at 0.6 of the bf16 peak (the
    roofline's ``H100_PCT_ACHIEVABLE_GEMM_TOPS``; FBGEMM pull request 2546 measured 585 TFLOP/s at 8192^3
    on a 500 W H100, 0.59), fp8 GEMMs at ``gemm_efficiency_ratio`` of that, and the norm and sigmoid's
    10 MK + 8 MN bytes at 0.8 x 2.4 TB/s, the casts took 1.04 ms where their 5 MK + 7 KN + 5 MN bytes
    would take 0.75 ms (docs/planner.md, "FP8 training").

    ``gemm_efficiency_ratio``: fp8 GEMMs' fraction of the fp8 peak over bf16 GEMMs' fraction of the bf16
    peak. 0.98 is the mean of FBGEMM pull request 2546's three shapes on a 500 W H100 (M, N, K; bf16 vs
    row-scaled fp8 GEMM only): 8192^3 585 vs 1,126 TFLOP/s (0.96), 65536 x 8192 x 7168 575 vs 1,083
    (0.94), 65536 x 3584 x 8192 546 vs 1,141 (1.04). torchao's roofline takes one fraction for both (1.0).

    ``head_in_fp8``: torchtitan leaves the LM head (``output``) in bf16 (``torchtitan/float8.py`` at
    9dec370: ``module_filter_fn=lambda mod, fqn: fqn != "output"``).
    """

    name: str = "torchao-tensorwise"
    activation_cast_bytes: float = 5.0
    """HBM bytes per element to cast a linear's input (forward) or output gradient (backward) to fp8."""
    weight_cast_bytes: float = 7.0
    """HBM bytes per weight element cast in each forward pass."""
    cast_time_factor: float = 1.38
    """Measured cast time over the time of the bytes above at the planner's HBM rate."""
    gemm_efficiency_ratio: float = 0.98
    """FP8 GEMMs' fraction of the fp8 peak over bf16 GEMMs' fraction of the bf16 peak."""
    head_in_fp8: bool = False
    """Whether the LM head's matmuls run in fp8 too."""

    def __post_init__(self) -> None:
        for name in ("activation_cast_bytes", "weight_cast_bytes", "cast_time_factor"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0):
                raise ConfigError(explain(f"Float8Recipe.{name} must be >= 0", value=v,
                                          fix="e.g. the torchao defaults (5, 7, 1.38), or 0 to charge no casts"))
        r = self.gemm_efficiency_ratio
        if not (isinstance(r, (int, float)) and 0 < r <= 2):
            raise ConfigError(explain("Float8Recipe.gemm_efficiency_ratio must be in (0, 2]", value=r,
                                      fix="pass 1.0 for fp8 GEMMs as efficient as bf16 ones, e.g. 0.98"))


#: torchao Float8, dynamic tensorwise scaling, compiled (torchtitan's published Float8 runs).
FLOAT8_TORCHAO_TENSORWISE = Float8Recipe()

#: FP8 at the fp8 peak with nothing else charged (the planner before casts were modelled; a bound).
FLOAT8_IDEAL = Float8Recipe(name="ideal", activation_cast_bytes=0.0, weight_cast_bytes=0.0, cast_time_factor=0.0,
                            gemm_efficiency_ratio=1.0, head_in_fp8=True)


def _linear_widths_per_token(model: ModelSpec, layout: Layout) -> tuple[float, float, float]:
    """(inputs, output gradients, weights) elements per token and layer, per GPU, of the linear layers:
    the distinct input tensors (q, k and v share theirs, as gate and up do, and torch.compile's CSE
    casts each once), the output gradients of every linear, and the local weight elements. Replicated
    widths (the layer's input and output, h) are split over tp only with sequence parallelism."""
    h, t = model.d_model, layout.tp
    rep = t if layout.sequence_parallel else 1
    if model.moe is not None and model.n_moe_layers:
        e = model.moe
        f = e.d_expert * e.top_k + e.shared_width * e.n_shared_experts
        f_tp, mlp_inputs = layout.expert_tp, (e.top_k + e.n_shared_experts) * h / rep
        w_mlp = (e.n_experts * e.d_expert + e.n_shared_experts * e.shared_width) * h / (layout.ep * layout.expert_tp)
    else:
        f, f_tp, mlp_inputs = model.d_ff, t, h / rep
        w_mlp = model.d_ff * h / t
    n_up = 2 if model.ffn_kind == "swiglu" else 1
    attn_out = model.q_dim if model.mla is None else model.n_heads * model.mla.v_head_dim
    inputs = h / rep + attn_out / t + mlp_inputs + f / f_tp
    grads = (model.q_dim + model.kv_dim + model.v_dim) / t + h / rep + n_up * f / f_tp + mlp_inputs
    weights = (model.q_dim + model.kv_dim + model.v_dim + attn_out) * h / t + (n_up + 1) * w_mlp
    return inputs, grads, weights


def float8_cast_bytes_per_token_layer(model: ModelSpec, layout: Layout, seq_len: int, *, dp: int = 1,
                                      recipe: Float8Recipe = FLOAT8_TORCHAO_TENSORWISE,
                                      weights: bool = True) -> tuple[float, float]:
    """(forward, backward) HBM bytes per token and layer, per GPU, that casting to fp8 moves under
    ``recipe``: each distinct linear input once per forward pass, each output gradient once in backward
    (``activation_cast_bytes`` per element), and the local weights once per micro-batch forward
    (``weight_cast_bytes``, on the ZeRO-3 shard of ``dp`` x cp ranks; ``weights=False`` leaves them out, as
    the search's bounds do, since they fall with the micro-batch and ZeRO stage that a bound's group spans).
    A recomputed forward casts its inputs again.

    Per token the casts scale with the linears' widths (K + N) while their GEMMs scale with K x N, so
    they cost a 4,096-wide model about four times what they cost a 16,384-wide one, relative to its GEMMs.

    >>> from scalelab import get_model
    >>> fwd, bwd = float8_cast_bytes_per_token_layer(get_model("llama-3.1-8b"), Layout(), 8192)
    >>> round(bwd / 5)     # output gradients: q 4096 + k, v 2 x 1024 + o 4096 + gate, up 2 x 14336 + down 4096
    43008
    """
    inputs, grads, weights_per_token = _linear_widths_per_token(model, layout)
    tokens_per_mb = layout.micro_batch * seq_len / layout.cp
    shard = dp * layout.cp if layout.zero == 3 else 1
    w = recipe.weight_cast_bytes * weights_per_token / shard / tokens_per_mb if weights else 0.0
    fwd = recipe.activation_cast_bytes * inputs + w
    return fwd, recipe.activation_cast_bytes * grads


def parameter_tensor_count(model: ModelSpec) -> int:
    """Parameter tensors of a model built as the wind tunnel builds it (``tunnel/model.py``): per layer two
    norms (with LayerNorm's biases), the fused qkv and output projections, optional QK-norms and biases,
    and the MLP's two matrices (per expert in MoE layers, plus a router); the embedding, a learned position
    table, an embedding norm, the final norm and an untied output head. A per-tensor optimizer pays a
    fixed cost for each (``GPUSpec.optimizer_tensor_overhead_s``).

    >>> from scalelab.arch.spec import ModelSpec
    >>> parameter_tensor_count(ModelSpec(n_layers=2, d_model=64, n_heads=4, d_ff=256, vocab_size=256))
    15
    """
    norm = 2 if model.norm_kind == "layernorm" else 1
    attn = 2 + {"none": 0, "qkv": 1, "all": 2}[model.attn_bias] + (2 if model.qk_norm else 0)
    mlp = 2 * (2 if model.mlp_bias else 1)
    per_dense = 2 * norm + attn + mlp
    n_moe = model.n_moe_layers if model.moe is not None else 0
    per_moe = 2 * norm + attn + 1 + mlp * (model.moe.n_experts + model.moe.n_shared_experts) if model.moe else 0
    glob = 1 + (model.position_kind == "learned") + norm * (1 + model.embedding_norm) + (not model.tied_embeddings)
    return int(per_dense * (model.n_layers - n_moe) + per_moe * n_moe + glob)


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


def timing_flops(flops: Any, recompute: str) -> tuple[float, float]:
    """(hardware FLOPs, attention-core FLOPs) of a step as the time model takes them: the attention core
    counted dense (all s x s pairs) whatever ``FlopConventions.causal_halved`` says, since what a kernel
    skips is the time model's business (:data:`FLASH_CAUSAL_WORK`), not a counting convention's."""
    att = attention_hardware_flops(flops, recompute)
    if flops.conventions.causal_halved:
        return flops.hardware + att, 2.0 * att
    return flops.hardware, att


def flash_attention_work(policy: Any) -> float:
    """Work a causal FlashAttention kernel does, as a fraction of the dense attention-core FLOPs
    (forward, backward at 2x and recomputed forwards) :func:`attention_hardware_flops` counts: half the
    tiles (:data:`FLASH_CAUSAL_WORK`), and a backward that redoes ``QK^T`` (:data:`FLASH_BACKWARD_EXTRA`).

    >>> from scalelab.planner.policy import get_save_policy
    >>> flash_attention_work(get_save_policy("none")), flash_attention_work(get_save_policy("full"))
    (0.5833333333333334, 0.5625)
    """
    reruns = 1.0 if (policy.full or "core_attn" in policy.recompute) else 0.0
    return FLASH_CAUSAL_WORK * (3.0 + FLASH_BACKWARD_EXTRA + reruns) / (3.0 + reruns)


def flash_tile_efficiency(keys_per_query_tile: float) -> float:
    """Fraction of a FlashAttention kernel's time spent on useful key tiles when every query tile sees
    ``keys_per_query_tile`` keys on average (:data:`FLASH_FIXED_TILES` of fixed work each).

    >>> round(flash_tile_efficiency(4096), 3), round(flash_tile_efficiency(512), 3)
    (0.955, 0.727)
    """
    tiles = max(keys_per_query_tile, 0.0) / FLASH_TILE_TOKENS
    return tiles / (tiles + FLASH_FIXED_TILES) if tiles > 0 else 0.0


@dataclass(frozen=True)
class RingAttentionCost:
    """What context parallelism's ring attention adds to one step, seconds per GPU (0 without CP).

    ``exposed_s`` is the part of the K,V transfers not hidden behind the attention of the step they
    overlap; the other terms are paid whatever the network does, so they alone bound CP from below."""

    transfer_s: float = 0.0
    """All ring transfers of the step, as if nothing overlapped them."""
    hidden_s: float = 0.0
    """The part of ``transfer_s`` that runs while attention computes."""
    exposed_s: float = 0.0
    """``transfer_s - hidden_s``: what the step waits for (:func:`cp_ring_cost`)."""
    short_block_s: float = 0.0
    """Extra attention time from splitting each sequence's kernels into c short blocks per pass."""
    correction_s: float = 0.0
    """HBM time of merging the partial outputs (fp32 output and statistics, dQ and dK,dV accumulators)."""
    step_overhead_s: float = 0.0
    """Kernel-launch and synchronisation gaps of the ring steps (:data:`CP_RING_STEP_OVERHEAD_S` each)."""

    @property
    def unavoidable_s(self) -> float:
        """The terms that do not depend on the overlap (a lower bound on ``total_s``)."""
        return self.short_block_s + self.correction_s + self.step_overhead_s

    @property
    def total_s(self) -> float:
        return self.exposed_s + self.unavoidable_s


def cp_ring_cost(model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, layout: Layout, *, dp: int,
                 attention_s: float, transfer_s: float = 0.0, gather_s: float = 0.0,
                 recipe: RingRecipe | None = None) -> RingAttentionCost:
    """Cost of ring attention (context parallelism) in one step, per GPU.

    The sequence of every micro-batch is split over ``c = layout.cp`` ranks, in 2c chunks so that each
    rank holds an early and a late one and causal attention is balanced (Megatron-Core's context
    parallelism; Brandon et al. 2023, Striped Attention, for the imbalance it removes). Each attention
    pass then runs c steps; during each of the first c - 1 the next K,V block travels to the neighbour
    (Liu et al. 2023, Ring Attention, sec. 3). The transfer hides only while it is shorter than the
    step's attention: Liu et al.'s condition that a block's compute outlast its transfer, which short
    sequences break (each step's attention shrinks as (s/c)^2 while its transfer shrinks as s/c).
    Llama 3 used CP only for its long-context stage (Dubey et al. 2024, sec. 3.3.2). Terms:

    - exposed transfer: with a ring of sends (``recipe.rotate == "p2p"``), ``max(0, transfer_s -
      attention_s (c - 1) / c)`` (per-step ratio of transfer to compute is the same in every step, so the
      sum of per-step maxima is this maximum); with torch's all-gather (``"allgather"``) only the first
      call of each pass hides that pass's gather, and each dK,dV send hides behind one backward call
      but the last (:func:`allgather_exposed_s`);
    - short blocks: each ring step's kernel sees s / (2c) keys per query tile instead of s / 2, at
      :func:`flash_tile_efficiency`; the device's attention efficiency is for whole sequences;
    - corrections: each step after the first merges its partial output into an fp32 accumulator in
      every forward pass and backward accumulates dQ and dK,dV, at the bytes per element of ``recipe``
      (:class:`RingRecipe`; ``None``: :data:`RING_TRANSFORMER_ENGINE`, TransformerEngine's fused
      corrections: read 2 bytes, read and write 4 per query element forward, 4 + 4 per element of dQ
      and dK,dV backward; torchtitan: :data:`RING_TORCH_ALLGATHER`);
    - launch gaps: :data:`CP_RING_STEP_OVERHEAD_S` per ring step (c per pass, per layer, per micro-batch).

    Parameters
    ----------
    dp
        Resolved data-parallel degree.
    attention_s
        Time of the attention core per GPU per step at whole-sequence efficiency (all passes).
    transfer_s
        Time of all ring transfers per step (the ``cp`` collectives of :func:`~scalelab.planner.comm.comm_per_step`).
    gather_s
        The part of ``transfer_s`` spent in K,V all-gathers (``recipe.rotate == "allgather"``).
    recipe
        What the CP implementation's merges and accumulations move (a framework profile's ``cp_ring``).

    >>> from scalelab import get_model, get_cluster
    >>> c = cp_ring_cost(get_model("llama-3.1-8b"), get_cluster("h100-sxm", 8), TrainSpec(seq_len=8192,
    ...                  global_batch=8), Layout(cp=8), dp=1, attention_s=0.1, transfer_s=0.05)
    >>> c.exposed_s, round(c.short_block_s, 3)
    (0.0, 0.031)
    """
    if layout.cp <= 1:
        return RingAttentionCost()
    ring = _RingModel(model, cluster, train, layout, dp=dp, recipe=recipe)
    m = max(1, train.global_batch // (dp * layout.micro_batch))
    return ring.cost(attention_s, layout.save_policy.reruns_attention, m, transfer_s, gather_s)


def allgather_exposed_s(attention_s: float, n_fwd: int, c: int, *, gather_s: float, send_s: float) -> float:
    """Seconds of torch's context-parallel transfers that its attention does not hide, per step.

    ``_templated_ring_attention`` issues the all-gather of K,V before a pass's first call (the local,
    causal one) and waits for it before the second, so each pass's gather (``gather_s`` over the
    ``n_fwd + 1`` passes) hides behind that first call only: 1/c of the pass's attention (every call
    covers the same number of query-key pairs under round-robin load balancing). Its backward sends the
    accumulated dK,dV to the next rank after each of its c calls and waits for it after the next call, so
    each send but the last hides behind one backward call; the last is awaited right after the loop
    (``send_s`` is all c sends). ``attention_s`` (all passes) splits into ``n_fwd`` forward passes and a
    backward of ``2 + FLASH_BACKWARD_EXTRA`` of them (:func:`flash_attention_work`).

    >>> allgather_exposed_s(0.0, 1, 8, gather_s=2.0, send_s=1.0)   # nothing to hide behind
    3.0
    >>> allgather_exposed_s(45.0, 2, 8, gather_s=0.3, send_s=0.8)  # NVLink: only the last send shows
    0.1
    """
    passes = n_fwd + 2.0 + FLASH_BACKWARD_EXTRA
    fwd_call = attention_s / passes / c
    bwd_call = fwd_call * (2.0 + FLASH_BACKWARD_EXTRA)
    g = gather_s / (n_fwd + 1)
    gather_exposed = n_fwd * max(0.0, g - fwd_call) + max(0.0, g - bwd_call)
    send = send_s / c
    return gather_exposed + (c - 1) * max(0.0, send - bwd_call) + send


class _RingModel:
    """The parts of :func:`cp_ring_cost` fixed by the degrees (cp, tp, pp, dp) and the batch; what is left
    depends on the attention time, the save policy and the micro-batches per step."""

    __slots__ = ("allgather", "c", "correction", "excess", "overhead_per_m")

    def __init__(self, model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, layout: Layout, *, dp: int,
                 recipe: RingRecipe | None = None):
        recipe = RING_TRANSFORMER_ENGINE if recipe is None else recipe
        self.allgather = recipe.rotate == "allgather"
        c = self.c = layout.cp
        s, t = train.seq_len, layout.tp
        L_stage = layout.stage_layers(model.n_layers)
        ratio = flash_tile_efficiency(s / 2) / max(flash_tile_efficiency(s / (2 * c)), 1e-9)
        self.excess = max(0.0, ratio - 1.0)
        q_elems, kv_elems = model.q_dim / t, recipe.kv_width(model) / t
        tokens_per_gpu = train.global_batch_tokens / (dp * c)
        hbm = cluster.gpu.memory_bandwidth_bytes_per_s * HBM_EFFICIENCY
        self.correction: dict[int, float] = {}
        self.overhead_per_m: dict[int, float] = {}
        for n_fwd in (1, 2):  # attention forward passes: 2 when the save policy reruns attention
            per_token_layer = (c - 1) * recipe.bytes_per_step(q_elems, kv_elems, n_fwd)
            self.correction[n_fwd] = per_token_layer * tokens_per_gpu * L_stage / hbm
            self.overhead_per_m[n_fwd] = CP_RING_STEP_OVERHEAD_S * c * (n_fwd + 1) * L_stage

    def unavoidable_s(self, attention_s: float, reruns_attention: bool, m: int) -> float:
        """:attr:`RingAttentionCost.unavoidable_s` without building the cost."""
        n_fwd = 2 if reruns_attention else 1
        return attention_s * self.excess + self.correction[n_fwd] + self.overhead_per_m[n_fwd] * m

    def cost(self, attention_s: float, reruns_attention: bool, m: int, transfer_s: float,
             gather_s: float = 0.0) -> RingAttentionCost:
        n_fwd = 2 if reruns_attention else 1
        c = self.c
        short_block = attention_s * self.excess
        if self.allgather:
            exposed = allgather_exposed_s(attention_s + short_block, n_fwd, c, gather_s=gather_s,
                                          send_s=transfer_s - gather_s)
        else:
            exposed = max(0.0, transfer_s - (attention_s + short_block) * (c - 1) / c)
        return RingAttentionCost(transfer_s=transfer_s, hidden_s=transfer_s - exposed, exposed_s=exposed,
                                 short_block_s=short_block, correction_s=self.correction[n_fwd],
                                 step_overhead_s=self.overhead_per_m[n_fwd] * m)


def compute_terms(model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, layout: Layout, *, dp: int,
                  hardware_flops: float, attention_flops: float = 0.0, efficiency: float | None = None,
                  attention_efficiency: float | None = None, fused_elementwise: bool = True,
                  float8: Float8Recipe | None = None, separate_qkv: bool = False,
                  moe_permute: bool = True) -> tuple[float, float, float]:
    """(matmul, attention, elementwise) seconds per step on the most-loaded GPU; matmul includes attention.

    The most-loaded pipeline stage holds ceil(L/p) of L layers and sets the pace of the pipeline. FP8
    recipes quantise the linear layers only; the attention core stays in BF16 (DeepSeek-V3 report sec.
    3.3.1; torchao's Float8 converts nn.Linear modules, FlashAttention runs in BF16). What else the FP8
    recipe costs (its casts, its GEMMs' efficiency, a bf16 head) is ``float8``'s (:class:`Float8Recipe`;
    ``None``: :data:`FLOAT8_TORCHAO_TENSORWISE`); the casts count as elementwise time.
    """
    return _ComputeModel(model, cluster, train, layout, dp=dp, efficiency=efficiency,
                         attention_efficiency=attention_efficiency, fused_elementwise=fused_elementwise,
                         float8=float8, separate_qkv=separate_qkv,
                         moe_permute=moe_permute).terms(hardware_flops, attention_flops, layout.save_policy)


def lm_head_flops(model: ModelSpec, train: TrainSpec) -> float:
    """FLOPs of the LM head per step: ``2 h V`` per token forward and twice that backward, never
    recomputed (Megatron-LM and torchtitan checkpoint transformer layers only)."""
    return 6.0 * model.d_model * model.vocab_size * train.global_batch_tokens


def pipeline_pace_layers(n_layers: int, pp: int, head_layers: float) -> float:
    """Layers' worth of work on the stage that sets a pipeline's pace, the LM head counted as
    ``head_layers`` layers.

    A synchronous 1F1B pipeline runs at its slowest stage (Narayanan et al. 2021 sec. 2.2). The head
    runs on the last stage only (Megatron-LM's ``post_process`` stage, torchtitan's ``output``). With an
    even split (Megatron-LM 2021 requires ``L % p == 0``) the last stage does ``L/p`` layers and the
    head. With an uneven one the remainder goes to the other stages: torchtitan's
    ``generate_split_points`` gives the first and last stages ``floor(L/p)`` layers and the middle ones
    one more, and Llama 3 took one layer off its first and last stages (Dubey et al. 2024 sec. 3.3.2),
    so the last stage does ``floor(L/p)`` layers and the head, the busiest other stage ``ceil(L/p)``.

    >>> pipeline_pace_layers(96, 12, 0.25)    # GPT-3 on 12 stages: 8 layers and the head
    8.25
    >>> pipeline_pace_layers(126, 16, 0.6)    # Llama 3 405B on 16: 7 layers and the head < 8 layers
    8
    >>> pipeline_pace_layers(32, 1, 0.5)      # no pipeline: the head is part of the step anyway
    32.5
    """
    if pp <= 1:
        return n_layers + head_layers
    return max(-(-n_layers // pp), n_layers // pp + head_layers)


class _ComputeModel:
    """The parts of :func:`compute_terms` fixed by the degrees, attention kernel and batch; what is left
    depends on the FLOPs and on whether the save policy reruns the whole forward."""

    __slots__ = ("attn_eff", "attn_peak", "cast_bwd_bytes", "cast_fwd_bytes", "cast_hbm", "eff", "ew_bytes_per_pass",
                 "fixed_s", "flash", "fwd_passes", "hbm", "head", "head_peak", "imbalance", "layers", "lin_factor",
                 "lin_peak", "model", "n_gpus", "peak", "permute_bytes", "pp", "rerun_bytes")

    def __init__(self, model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, layout: Layout, *, dp: int,
                 efficiency: float | None, attention_efficiency: float | None, fused_elementwise: bool,
                 float8: Float8Recipe | None = None, weight_casts: bool = True, separate_qkv: bool = False,
                 moe_permute: bool = True):
        # weight_casts=False is the search's bounds: they span micro-batches, so the GEMM roofline takes
        # M -> infinity (the least factor any micro-batch gives) and the weight casts are left out
        gpu = cluster.gpu
        eff = self.eff = gpu.matmul_efficiency if efficiency is None else efficiency
        dtype = compute_dtype(train.precision, gpu.peak_flops_per_s)
        self.peak = self.lin_peak = self.head_peak = gpu.peak(dtype)
        L, p = model.n_layers, layout.pp
        L_stage = layout.stage_layers(L)
        self.imbalance = L_stage * p / L
        self.layers, self.pp, self.head = L, p, lm_head_flops(model, train)
        attn_eff = eff
        if layout.flash_attention:
            attn_eff = attention_efficiency or getattr(gpu, "attention_efficiency", None) or eff
            if not 0 < attn_eff <= 1:
                raise ConfigError(explain("attention efficiency must be in (0, 1]", value=attn_eff))
            if train.document_tokens:
                # document-masked kernels see document_tokens keys, not the sequence's: shorter kernels
                # amortise their fixed work over fewer key tiles (as a CP rank's shorter blocks do)
                attn_eff *= (flash_tile_efficiency(train.attention_tokens / 2)
                             / flash_tile_efficiency(train.seq_len / 2))
        self.attn_eff = attn_eff
        self.flash = layout.flash_attention
        self.attn_peak = gpu.peak("bf16") if dtype in ("fp8", "fp4") and "bf16" in gpu.peak_flops_per_s \
            else self.peak
        self.n_gpus = cluster.n_gpus
        tokens_per_gpu = train.global_batch_tokens / (dp * layout.cp)
        self.ew_bytes_per_pass = (elementwise_bytes_per_token_layer(model, layout, train.seq_len, train.precision,
                                                                    fused=fused_elementwise)
                                  * tokens_per_gpu * L_stage)
        self.rerun_bytes = {k: v * tokens_per_gpu * L_stage for k, v in
                            rerun_elementwise_bytes_per_token_layer(model, layout, train.precision).items()}
        # MoE token permutations (forward bytes on the stage's MoE layers): run again in backward, and a third
        # time when full recompute reruns the forward
        self.permute_bytes = (moe_permute_bytes_per_token_layer(model, layout, train.precision) * tokens_per_gpu
                              * L_stage * model.n_moe_layers / L) if moe_permute else 0.0
        self.hbm = self.cast_hbm = gpu.memory_bandwidth_bytes_per_s * HBM_EFFICIENCY
        self.fixed_s = 0.0  # seconds per forward-equivalent pass that do not scale with bytes
        self.model = model
        self.fwd_passes: dict[str, float] = {}
        self.cast_fwd_bytes = self.cast_bwd_bytes = 0.0
        if dtype == "fp8":
            # FP8 linears: GEMMs at a fraction of the bf16 efficiency, the head possibly in bf16, and the
            # casts to fp8 (Float8Recipe) as memory-bound passes per forward and backward
            f8 = FLOAT8_TORCHAO_TENSORWISE if float8 is None else float8
            self.lin_peak = self.peak * f8.gemm_efficiency_ratio
            if not f8.head_in_fp8:
                self.head_peak = self.attn_peak
            fwd, bwd = float8_cast_bytes_per_token_layer(model, layout, train.seq_len, dp=dp, recipe=f8,
                                                         weights=weight_casts)
            self.cast_fwd_bytes = fwd * f8.cast_time_factor * tokens_per_gpu * L_stage
            self.cast_bwd_bytes = bwd * f8.cast_time_factor * tokens_per_gpu * L_stage
        # the linear layers' GEMMs under a per-GEMM roofline (planner/gemm.py): >= 1, 1 for wide GEMMs
        shapes, other = linear_gemm_shapes(model, layout, separate_qkv=separate_qkv)
        in_bytes = GEMM_INPUT_BYTES.get(dtype, 2.0)
        self.lin_factor = gemm_roofline_factor(
            shapes, layout.micro_batch * train.seq_len / layout.cp if weight_casts else math.inf,
            flops_per_s=eff * self.lin_peak, bytes_per_s=self.cast_hbm, input_bytes=in_bytes,
            output_bytes=max(2.0, in_bytes), other_flops=other)
        eager_rate = getattr(gpu, "eager_elementwise_bytes_per_s", None)
        if not fused_elementwise and eager_rate:
            # a calibrated CPU (scalelab calibrate): eager kernels at their measured rate per counted
            # byte plus a fixed cost per layer and micro-batch, and the loss's log-softmax at the same rate
            m = max(1, train.global_batch // (dp * layout.micro_batch))
            self.ew_bytes_per_pass += eager_loss_bytes_per_token(model, layout) * tokens_per_gpu
            self.fixed_s = gpu.eager_layer_overhead_s * L_stage * m / 3.0
            self.hbm = eager_rate

    def linear_forward_passes(self, policy: Any) -> float:
        """Forward passes the linear layers run per step under ``policy``: 1, and the share of their
        forward FLOPs that the policy recomputes (2 with full recompute)."""
        n = self.fwd_passes.get(policy.name)
        if n is None:
            from .flops import FlopConventions, _recompute_forward, matmul_params_per_layer

            mp = matmul_params_per_layer(self.model)
            lin = 2.0 * self.model.n_layers * (mp["attention"] + (mp["moe_active"] or mp["dense_mlp"]))
            extra = _recompute_forward(self.model, policy, FlopConventions(), layers_fwd=lin, scores_layer=0.0)
            n = self.fwd_passes[policy.name] = 1.0 + min(1.0, extra / lin) if lin > 0 else 1.0
        return n

    def terms(self, hardware_flops: float, attention_flops: float, policy: Any) -> tuple[float, float, float]:
        full = policy.full
        attention_flops = min(max(attention_flops, 0.0), hardware_flops)
        work = flash_attention_work(policy) if self.flash else 1.0
        attention_s = attention_flops * work / (self.attn_eff * self.attn_peak) / self.n_gpus * self.imbalance
        # Time of one layer and of the head on a stage's n/p GPUs; the stage that sets the pace holds
        # the head or the most layers (pipeline_pace_layers). Without pp, the even share as before.
        # The linear layers and the head run at their peaks (an FP8 recipe's, or the compute dtype's).
        head = min(self.head, hardware_flops - attention_flops)
        lin_rate, head_rate = self.eff * self.lin_peak / self.lin_factor, self.eff * self.head_peak
        layer_s = ((hardware_flops - attention_flops - head) / lin_rate / self.n_gpus
                   * self.pp / self.layers + attention_s / (-(-self.layers // self.pp)))
        head_s = head / (head_rate * self.n_gpus / self.pp)
        head_layers = head_s / layer_s if layer_s > 0 else 0.0
        matmul_s = layer_s * pipeline_pace_layers(self.layers, self.pp, head_layers) if self.pp > 1 else (
            ((hardware_flops - attention_flops - head) / lin_rate + head / head_rate) / self.n_gpus
            * self.imbalance + attention_s)
        passes = 3.0 + (1.0 if full else 0.0)  # fwd + bwd (~2x fwd) + recompute
        rerun = 0.0 if full else sum(b for k, b in self.rerun_bytes.items() if k in policy.recompute)
        elementwise_s = ((self.ew_bytes_per_pass * passes + rerun + self.permute_bytes * (passes - 1.0)) / self.hbm
                         + self.fixed_s * passes)
        if self.cast_fwd_bytes or self.cast_bwd_bytes:
            elementwise_s += (self.cast_fwd_bytes * self.linear_forward_passes(policy)
                              + self.cast_bwd_bytes) / self.cast_hbm
        return matmul_s, attention_s, elementwise_s


def bubble_fraction(pp: int, interleave: int, n_micro: int) -> float:
    """Pipeline bubble as a fraction of the ideal time: (p - 1) / (v m) (Narayanan et al. 2021, sec. 2.2).

    >>> bubble_fraction(16, 4, 16)
    0.234375
    """
    return (pp - 1) / (interleave * n_micro)


def dp_window_s(layout: Layout, compute_s: float, n_micro: int) -> float:
    """Compute time that DP/ZeRO traffic can hide behind: all of it with ZeRO-2/3 (per-micro-batch
    collectives), else the backward of the last micro-batch (2/3 of its compute). ZeRO-3 gathering once
    per step (``Layout.zero3_gather="step"``) hides its gathers behind the first micro-batch's forward
    and its reduce-scatter behind the last one's backward: one micro-batch's compute."""
    if layout.zero == 3 and layout.zero3_gather == "step":
        return compute_s / n_micro
    return compute_s if layout.zero >= 2 else compute_s * (2.0 / 3.0) / n_micro


def dp_exposed_s(dp_total_s: float, window_s: float, sm_fraction: float = 0.0) -> float:
    """Seconds that ``dp_total_s`` of DP/ZeRO traffic adds to a step whose ``window_s`` seconds of compute it
    can hide behind (:func:`dp_window_s` times ``dp_overlap``): the part that does not fit, plus, with
    ``sm_fraction`` ``f`` (a profile's ``dp_comm_sm_fraction``), the slowdown of the compute it hides behind,
    whose SMs NCCL's kernels share while they run (one thread block per channel): ``h f / (1 - f)`` for ``h``
    hidden seconds, as :func:`ep_exposed_s` charges overlapped all-to-alls. Profiles without calibrated
    evidence charge nothing (docs/planner.md, "Overlapped DP traffic and the SMs it holds").

    >>> dp_exposed_s(1.0, 0.25), dp_exposed_s(1.0, 10.0)
    (0.75, 0.0)
    >>> round(dp_exposed_s(1.0, 10.0, sm_fraction=20 / 132), 4)
    0.1786
    """
    hidden = min(dp_total_s, window_s)
    return dp_total_s - hidden + hidden * sm_fraction / (1.0 - sm_fraction)


def critical_comm_floor_s(model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, layout: Layout, *,
                          dp: int, tp_overlap: float = 0.0, pp_overlap: float = 0.0, async_tp: bool = False,
                          separate_qkv: bool = False) -> float:
    """A lower bound on the exposed TP and PP time of a step (seconds): the fewest TP collectives any save
    policy runs (two per layer and direction with dense MLPs, one with MoE layers or a parallel block,
    :func:`~scalelab.planner.comm.tp_collectives_per_layer`) and the pipeline's
    sends, at the sizes and links :func:`~scalelab.planner.comm.comm_per_step` uses, less the most that
    ``tp_overlap`` and ``pp_overlap`` (interleaved schedules only) can hide of them in
    :func:`model_step_time`; with ``async_tp`` the TP part is the backward reduce-scatters AsyncTP does not
    fuse (:func:`~scalelab.planner.async_tp.async_tp_unfused_rs_per_layer`)."""
    return _CommFloor(model, cluster, train, layout, dp=dp, tp_overlap=tp_overlap, pp_overlap=pp_overlap,
                      async_tp=async_tp, separate_qkv=separate_qkv)(layout.micro_batch, layout.interleave)


class _CommFloor:
    """:func:`critical_comm_floor_s` for the layouts that share degrees, as a function of the micro-batch
    and the interleave."""

    __slots__ = ("B", "L_stage", "act_bytes", "c", "d_model", "dp", "gpu", "p", "per_layer", "pp_bw", "pp_overlap",
                 "seq_len", "sp", "t", "tp_bw", "tp_bytes", "tp_overlap", "unfused_rs")

    def __init__(self, model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, layout: Layout, *, dp: int,
                 tp_overlap: float = 0.0, pp_overlap: float = 0.0, async_tp: bool = False,
                 separate_qkv: bool = False):
        gpu, gpn = cluster.gpu, cluster.gpus_per_node
        # model_step_time hides at most these fractions of the TP and PP traffic: the floors keep the rest
        self.tp_overlap = tp_overlap if layout.sequence_parallel else 0.0
        self.pp_overlap = pp_overlap
        t, p, c = layout.tp, layout.pp, layout.cp
        self.t, self.p, self.c, self.B, self.dp = t, p, c, train.global_batch, dp
        self.seq_len, self.d_model, self.act_bytes = train.seq_len, model.d_model, activation_bytes(train.precision)
        # with SP an all-reduce's reduce-scatter and all-gather run apart, the gather in fp8 for FP8 recipes
        self.tp_bytes = (1.0 + tp_all_gather_fraction(train.precision)) / 2.0 if layout.sequence_parallel else 1.0
        self.gpu, self.sp = gpu, layout.sequence_parallel
        self.L_stage = layout.stage_layers(model.n_layers)
        # both directions; the fewest any layer runs (MoE layers whose experts have no TP: one each way)
        self.per_layer = 2 * tp_collectives_per_layer(model, experts_without_tp=model.moe is not None)
        # AsyncTP (with SP) keeps only the backward reduce-scatters it cannot fuse, each in full (async_tp.py)
        self.unfused_rs = (async_tp_unfused_rs_per_layer(model, separate_qkv=separate_qkv)
                           if async_tp and layout.sequence_parallel else None)

        def bw(kind: str, stride: int, n: int) -> float:  # as comm_per_step times the group's collectives
            return group_bandwidth_bytes_per_s(kind, stride, n, gpn,
                                               intra_bytes_per_s=gpu.intra_node_bandwidth_bytes_per_s,
                                               nic_bytes_per_s=gpu.inter_node_bandwidth_bytes_per_s)

        self.tp_bw, self.pp_bw = bw("all_reduce", 1, t), bw("p2p", t * c * dp, p)

    def __call__(self, micro_batch: int, interleave: int) -> float:
        gpu = self.gpu
        m = max(1, self.B // (self.dp * micro_batch))
        msg = micro_batch * self.seq_len / self.c * self.d_model * self.act_bytes
        total = 0.0
        if self.t > 1 and self.unfused_rs is not None:
            total += m * self.unfused_rs * self.L_stage * collective_time_s(
                "reduce_scatter", msg, self.t, bandwidth_bytes_per_s=self.tp_bw, latency_s=gpu.link_latency_s,
                efficiency=gpu.network_efficiency)
        elif self.t > 1:
            total += (1.0 - self.tp_overlap) * m * self.per_layer * self.L_stage * collective_time_s(
                "all_reduce", msg * self.tp_bytes, self.t, bandwidth_bytes_per_s=self.tp_bw,
                latency_s=gpu.link_latency_s, efficiency=gpu.network_efficiency)
        if self.p > 1:
            total += (1.0 - (self.pp_overlap if interleave > 1 else 0.0)) * 2 * m * interleave * collective_time_s(
                "p2p", msg / self.t if self.sp else msg, self.p, bandwidth_bytes_per_s=self.pp_bw,
                latency_s=gpu.link_latency_s, efficiency=gpu.network_efficiency)
        return total


def ep_exposed_floor_s(comm: CommBreakdown | None, cluster: ClusterSpec, *, ep_overlap: float,
                       comm_sm_fraction: float, volume_floor: float = 1.0) -> float:
    """The least time the expert all-to-alls of ``comm`` add to a step whatever the micro-batch: their
    bandwidth time (fewer, larger messages save only latency), scaled by ``volume_floor``, times the
    least exposed fraction, ``max(r, 1 - ep_overlap (1 - r))`` with ``r = f / (1 - f)``: overlap hides at
    most ``ep_overlap`` of them and the SMs of the hiding kernels slow the compute by ``r`` of what they
    hide (:func:`model_step_time`). 0 without expert parallelism.

    >>> from scalelab import get_model, get_cluster
    >>> from scalelab.planner.comm import comm_per_step
    >>> cl = get_cluster("h800", 64)
    >>> cb = comm_per_step(get_model("mixtral-8x7b"), cl, TrainSpec(seq_len=4096, global_batch=64), Layout(ep=8))
    >>> ep_exposed_floor_s(cb, cl, ep_overlap=1.0, comm_sm_fraction=0.0)
    0.0
    >>> ep_exposed_floor_s(cb, cl, ep_overlap=0.0, comm_sm_fraction=0.0) <= cb.by_group()["ep"]
    True
    """
    lat = cluster.gpu.link_latency_s
    bw_s = sum(col.time_s - col.calls_per_step * ring_factors(col.kind, col.group_size)[1] * lat
               for col in (comm.collectives if comm is not None else ()) if col.group == "ep")
    if bw_s <= 0:
        return 0.0
    r = comm_sm_fraction / (1.0 - comm_sm_fraction)
    return volume_floor * bw_s * max(r, 1.0 - ep_overlap * (1.0 - r))


class StepTimeBound:
    """:func:`step_time_lower_bound` for a group of layouts with the same degrees, ZeRO and offload that
    differ only in save policy, micro-batch and interleave (what the search enumerates innermost).

    What does not depend on those three (peaks, efficiencies, elementwise bytes, links, the ring's fixed
    costs, the DP collectives) is computed once at construction; calling it gives the same number as
    :func:`step_time_lower_bound` on the layout with those fields set, without building a
    :class:`~scalelab.planner.layout.Layout` per candidate.

    >>> from scalelab import get_model, get_cluster
    >>> model, cluster = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 64)
    >>> train = TrainSpec(seq_len=8192, global_batch=256)
    >>> bound = StepTimeBound(model, cluster, train, Layout(tp=8, pp=2, dp=4), dp=4)
    >>> lay = Layout(tp=8, pp=2, dp=4, recompute="full", micro_batch=2, interleave=2)
    >>> lb = step_time_lower_bound(model, cluster, train, lay, dp=4, hardware_flops=1e18)
    >>> bound("full", 2, 2, hardware_flops=1e18) == lb
    True
    """

    def __init__(self, model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, layout: Layout, *, dp: int,
                 efficiency: float | None = None, attention_efficiency: float | None = None,
                 dp_overlap: float = DEFAULT_DP_OVERLAP, dp_comm: CommBreakdown | None = None,
                 host_optimizer_s: float = 0.0, fused_elementwise: bool = True, ep_overlap: float = 1.0,
                 comm_sm_fraction: float = 0.0, ep_volume_floor: float = 0.5, float8: Float8Recipe | None = None,
                 dp_comm_sm_fraction: float = 0.0,
                 tp_overlap: float = 0.0, pp_overlap: float = 0.0, cp_ring: RingRecipe | None = None,
                 separate_qkv: bool = False, async_tp: bool = False, moe_permute: bool = True):
        eff = cluster.gpu.matmul_efficiency if efficiency is None else efficiency
        self._compute = _ComputeModel(model, cluster, train, layout, dp=dp, efficiency=eff,
                                      attention_efficiency=attention_efficiency,
                                      fused_elementwise=fused_elementwise, float8=float8, weight_casts=False,
                                      separate_qkv=separate_qkv, moe_permute=moe_permute)
        self._floor = _CommFloor(model, cluster, train, layout, dp=dp, tp_overlap=tp_overlap, pp_overlap=pp_overlap,
                                 async_tp=async_tp, separate_qkv=separate_qkv)
        self._ring = _RingModel(model, cluster, train, layout, dp=dp, recipe=cp_ring) if layout.cp > 1 else None
        self._B, self._dp, self._pp, self._layout = train.global_batch, dp, layout.pp, layout
        self._dp_overlap, self._host_optimizer_s = dp_overlap, host_optimizer_s
        self._dp_sm_fraction = dp_comm_sm_fraction
        # DP/ZeRO collectives: time of one pass (one call, or one per FSDP unit under ZeRO-3), and how many
        # passes a step runs at m micro-batches: comm.zero_calls, from which comm_per_step counts them too
        self._dp_calls: list[tuple[float, ZeroCalls]] = []
        for col in (dp_comm.collectives if dp_comm is not None else ()):
            if col.critical:
                continue
            calls = zero_calls(model, layout, col.kind)
            self._dp_calls.append((col.time_s / col.calls_per_step * calls.units, calls))
        self._compute_cache: dict[tuple, tuple[float, float, float, bool]] = {}
        self._floor_cache: dict[tuple[int, int], float] = {}
        # Expert all-to-alls: their bandwidth time (bytes are fixed by the batch; fewer, larger messages
        # only save latency) at the fewest all-to-alls any save policy runs (ep_volume_floor of those
        # of dp_comm's layout: 4 of 6 per layer when it reruns the forward, the FP8 dispatch 1 of 2),
        # and the least of it that overlap can hide: exposed = E - hidden (1 - r), hidden <= ov E,
        # r = f / (1 - f) for the SMs the hiding kernels take (model_step_time).
        self._ep_floor_s = ep_exposed_floor_s(dp_comm, cluster, ep_overlap=ep_overlap,
                                              comm_sm_fraction=comm_sm_fraction, volume_floor=ep_volume_floor)

    def __call__(self, recompute: str, micro_batch: int, interleave: int, *, hardware_flops: float,
                 attention_flops: float = 0.0) -> float:
        key = (recompute, hardware_flops, attention_flops)
        cached = self._compute_cache.get(key)
        if cached is None:
            policy = get_save_policy(recompute)
            cached = self._compute_cache[key] = (*self._compute.terms(hardware_flops, attention_flops, policy),
                                                 policy.reruns_attention)
        matmul_s, attention_s, elementwise_s, reruns_attention = cached
        m = max(1, self._B // (self._dp * micro_batch))
        floor = self._floor_cache.get((micro_batch, interleave))
        if floor is None:
            floor = self._floor_cache[(micro_batch, interleave)] = self._floor(micro_batch, interleave)
        compute_s = matmul_s + elementwise_s
        ring = (self._ring.unavoidable_s(attention_s, reruns_attention, m)
                if self._ring is not None else 0.0)
        ideal = compute_s + floor + ring + self._ep_floor_s
        dp_total = 0.0
        for per_pass, calls in self._dp_calls:
            dp_total += per_pass * calls.passes(m)
        dp_exposed = dp_exposed_s(dp_total, self._dp_overlap * dp_window_s(self._layout, compute_s, m),
                                  self._dp_sm_fraction)
        return ideal * (1.0 + bubble_fraction(self._pp, interleave, m)) + dp_exposed + self._host_optimizer_s


def group_step_time_lower_bound(model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, layout: Layout, *, dp: int,
                                options: list[tuple[str, float, float]], micro_batches: list[int],
                                interleaves: list[int], efficiency: float | None = None,
                                attention_efficiency: float | None = None, fused_elementwise: bool = True,
                                ep_floor_s: float = 0.0, float8: Float8Recipe | None = None,
                                tp_overlap: float = 0.0, pp_overlap: float = 0.0,
                                cp_ring: RingRecipe | None = None, separate_qkv: bool = False,
                                async_tp: bool = False, moe_permute: bool = True) -> float:
    """A lower bound on :func:`step_time_lower_bound` over every layout that shares ``layout``'s degrees
    (tp, pp, cp, ep, etp) and differs in ZeRO, offload, save policy, micro-batch or interleave: what a
    branch-and-bound search needs to skip a whole group before it checks its memory or times its members.

    Each term is bounded on its own: the compute of the cheapest save policy in ``options`` (name,
    hardware FLOPs, attention FLOPs); the TP and PP floor at the largest micro-batch and the interleave
    that gives the least (the bytes are fixed, the latency terms fall with fewer, larger messages; an
    interleave sends v times as much but ``pp_overlap`` may hide it, without interleaving nothing is
    hidden); the ring's unavoidable
    cost at the fewest micro-batches; the bubble at the most micro-batches and the deepest interleave;
    no DP/ZeRO exposure and no CPU optimizer step (both >= 0); ``ep_floor_s`` of expert all-to-all
    (:func:`ep_exposed_floor_s`, which does not depend on ZeRO). ``micro_batches`` are those that divide
    the batch.

    >>> from scalelab import get_model, get_cluster
    >>> model, cluster = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 64)
    >>> train = TrainSpec(seq_len=8192, global_batch=256)
    >>> lay = Layout(tp=8, pp=2, dp=4)
    >>> g = group_step_time_lower_bound(model, cluster, train, lay, dp=4, options=[("full", 1e18, 0.0)],
    ...                                 micro_batches=[1, 2], interleaves=[1, 2])
    >>> bound = StepTimeBound(model, cluster, train, lay, dp=4)
    >>> g <= min(bound("full", b, v, hardware_flops=1e18) for b in (1, 2) for v in (1, 2))
    True
    """
    eff = cluster.gpu.matmul_efficiency if efficiency is None else efficiency
    comp = _ComputeModel(model, cluster, train, layout, dp=dp, efficiency=eff,
                         attention_efficiency=attention_efficiency, fused_elementwise=fused_elementwise,
                         float8=float8, weight_casts=False, separate_qkv=separate_qkv, moe_permute=moe_permute)
    ring = _RingModel(model, cluster, train, layout, dp=dp, recipe=cp_ring) if layout.cp > 1 else None
    B = train.global_batch
    mb_max, mb_min = max(micro_batches), min(micro_batches)
    m_min, m_max = max(1, B // (dp * mb_max)), max(1, B // (dp * mb_min))
    best = math.inf
    for rc, hardware, attention in options:
        policy = get_save_policy(rc)
        matmul_s, attention_s, elementwise_s = comp.terms(hardware, attention, policy)
        ring_s = ring.unavoidable_s(attention_s, policy.reruns_attention, m_min) if ring is not None else 0.0
        best = min(best, matmul_s + elementwise_s + ring_s)
    comm_floor = _CommFloor(model, cluster, train, layout, dp=dp, tp_overlap=tp_overlap, pp_overlap=pp_overlap,
                            async_tp=async_tp, separate_qkv=separate_qkv)
    floor = min(comm_floor(mb_max, v) for v in {1, *interleaves})
    return (best + floor + ep_floor_s) * (1.0 + bubble_fraction(layout.pp, max(interleaves), m_max))


def step_time_lower_bound(model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, layout: Layout, *, dp: int,
                          hardware_flops: float, attention_flops: float = 0.0, efficiency: float | None = None,
                          attention_efficiency: float | None = None, dp_overlap: float = DEFAULT_DP_OVERLAP,
                          dp_comm: CommBreakdown | None = None, host_optimizer_s: float = 0.0,
                          fused_elementwise: bool = True, ep_overlap: float = 1.0, comm_sm_fraction: float = 0.0,
                          ep_volume_floor: float = 0.5, float8: Float8Recipe | None = None,
                          tp_overlap: float = 0.0, pp_overlap: float = 0.0, cp_ring: RingRecipe | None = None,
                          separate_qkv: bool = False, async_tp: bool = False, moe_permute: bool = True) -> float:
    """A lower bound on :func:`model_step_time` for ``layout``, cheap enough to rank thousands of layouts
    before their memory is known (what :func:`~scalelab.planner.search.search_layouts` sorts by, through
    :class:`StepTimeBound`, which computes the same number for a group of layouts at once).

    It keeps the terms that the full model adds unconditionally, computed by the same functions:
    matmul, attention and elementwise time (:func:`compute_terms`), the floor of TP and PP traffic
    (:func:`critical_comm_floor_s`), the part of ring attention no overlap removes
    (:attr:`RingAttentionCost.unavoidable_s`), the part of the expert all-to-alls' bandwidth time that
    ``ep_overlap`` cannot hide (what the SMs of the hiding kernels cost included), the bubble on all of
    these, the exposed DP/ZeRO traffic and the CPU optimizer step. It leaves out what only adds time:
    the all-to-alls' latency terms, the exposed ring transfers, the GPU optimizer step, offload traffic
    and an FP8 recipe's weight casts (which depend on the micro-batch and ZeRO stage).

    Parameters
    ----------
    dp_comm
        Collectives of a layout with the same degrees and ZeRO settings (any micro-batch, save policy
        or interleave); only its DP/ZeRO calls are used, rescaled to this layout's micro-batches
        (ZeRO-2 reduce-scatters and ZeRO-3 gathers run per micro-batch), and its expert all-to-alls.
        ``None``: no DP or EP traffic.
    host_optimizer_s
        The CPU optimizer step of offloaded states, which is never overlapped.
    ep_overlap, comm_sm_fraction
        As :func:`model_step_time` takes them (the defaults leave the all-to-alls out of the bound).
    tp_overlap, pp_overlap, async_tp
        As :func:`model_step_time` takes them: the TP and PP floors keep what they cannot hide.
    ep_volume_floor
        The least fraction of ``dp_comm``'s all-to-all volume any save policy in question runs: 1 when
        ``dp_comm``'s layout does not rerun the forward, else 0.5 (FP8 dispatch, 1 of 2; 4 of 6 otherwise).
    """
    bound = StepTimeBound(model, cluster, train, layout, dp=dp, efficiency=efficiency,
                          attention_efficiency=attention_efficiency, dp_overlap=dp_overlap, dp_comm=dp_comm,
                          host_optimizer_s=host_optimizer_s, fused_elementwise=fused_elementwise,
                          ep_overlap=ep_overlap, comm_sm_fraction=comm_sm_fraction, ep_volume_floor=ep_volume_floor,
                          float8=float8, tp_overlap=tp_overlap, pp_overlap=pp_overlap, cp_ring=cp_ring,
                          separate_qkv=separate_qkv, async_tp=async_tp, moe_permute=moe_permute)
    return bound(layout.recompute, layout.micro_batch, layout.interleave, hardware_flops=hardware_flops,
                 attention_flops=attention_flops)


def _check_overlaps(*, dp_overlap: float, ep_overlap: float, tp_overlap: float, pp_overlap: float,
                    comm_sm_fraction: float, dp_comm_sm_fraction: float = 0.0) -> None:
    """Raise ConfigError for an overlap outside [0, 1] or an SM share outside [0, 1)."""
    fixes = {"dp_overlap": "pass 0 (no overlap) to 1 (perfect overlap)",
             "ep_overlap": "pass 0 (all-to-all exposed) to 1 (hidden, as DualPipe does)",
             "tp_overlap": "pass 0 (on the critical path) to 1 (hidden behind compute)",
             "pp_overlap": "pass 0 (on the critical path) to 1 (hidden behind compute)"}
    values = {"dp_overlap": dp_overlap, "ep_overlap": ep_overlap, "tp_overlap": tp_overlap, "pp_overlap": pp_overlap}
    for name, ov in values.items():
        if not 0 <= ov <= 1:
            raise ConfigError(explain(f"{name} must be in [0, 1]", value=ov, fix=fixes[name]))
    for name, f in (("comm_sm_fraction", comm_sm_fraction), ("dp_comm_sm_fraction", dp_comm_sm_fraction)):
        if not 0 <= f < 1:
            raise ConfigError(explain(f"{name} must be in [0, 1)", value=f,
                                      fix="pass the share of SMs the communication kernels hold, e.g. 20 / 132"))


def hide_tp_pp(tp_s: float, pp_s: float, *, matmul_s: float, attention_s: float, compute_s: float,
               interleave: int, tp_overlap: float, pp_overlap: float) -> tuple[float, float, float, float]:
    """(exposed TP, exposed PP, hidden TP, hidden PP) seconds once the overlaps are applied.

    TP: ``tp_overlap`` of the collectives, at most the time of the GEMMs they are split against (the
    matmul time less the attention core: each sequence-parallel all-gather feeds a column-parallel GEMM,
    each reduce-scatter drains a row-parallel one). PP: ``pp_overlap`` of the sends with an interleaved
    schedule (none without), at most the compute not already hiding TP traffic.

    ``tp_overlap``: fraction of the TP collectives hidden behind the GEMMs they are split against, in
    [0, 1], and never more than those GEMMs' time (the matmul time less the attention core): Transformer
    Engine's userbuffers overlap (NeMo ``ub_tp_comm_overlap``) splits each all-gather and reduce-scatter
    of sequence parallelism into chunks that run beside the chunks of the adjacent linear layer's
    GEMM. With sequence parallelism only (Megatron-LM refuses ``--tp-comm-overlap`` without it;
    :func:`model_step_time` passes 0 without it); 0: the collectives run between dependent kernels
    (Megatron-LM 2021-2022).

    ``pp_overlap``: fraction of the pipeline's sends and receives hidden behind compute, in [0, 1],
    with an interleaved schedule only (``interleave > 1``): Megatron-Core's ``overlap_p2p_comm`` posts
    the next chunk's transfers while the current chunk computes and is forced off for 1F1B
    (Megatron-LM ``megatron/training/arguments.py``). 0: the sends are on the critical path.

    All times in seconds.

    >>> hide_tp_pp(1.0, 0.5, matmul_s=10.0, attention_s=2.0, compute_s=11.0, interleave=4,
    ...            tp_overlap=1.0, pp_overlap=1.0)
    (0.0, 0.0, 1.0, 0.5)
    >>> hide_tp_pp(1.0, 0.5, matmul_s=0.75, attention_s=0.25, compute_s=0.875, interleave=1,
    ...            tp_overlap=1.0, pp_overlap=1.0)
    (0.5, 0.5, 0.5, 0.0)
    """
    tp_hidden = min(tp_overlap * tp_s, max(0.0, matmul_s - attention_s))
    pp_hidden = min(pp_overlap * pp_s, max(0.0, compute_s - tp_hidden)) if interleave > 1 else 0.0
    return tp_s - tp_hidden, pp_s - pp_hidden, tp_hidden, pp_hidden


def ep_exposed_s(ep_s: float, *, compute_s: float, ep_overlap: float, comm_sm_fraction: float) -> float:
    """Seconds the expert all-to-alls (``ep_s`` in all) add to a step once ``ep_overlap`` of them hides
    behind the ``compute_s`` seconds of matmul and elementwise work.

    Overlapped all-to-alls hide behind computation (DualPipe, DeepSeek-V3 report sec. 3.2.1), never
    behind more computation than there is. The communication kernels that hide them hold SMs:
    computation under them runs on the rest (sec. 3.2.2: 20 of the H800's 132 SMs), so hiding ``h``
    seconds costs ``h f / (1 - f)`` with ``f = comm_sm_fraction``.

    >>> ep_exposed_s(1.0, compute_s=10.0, ep_overlap=0.0, comm_sm_fraction=0.0)
    1.0
    >>> ep_exposed_s(1.0, compute_s=10.0, ep_overlap=1.0, comm_sm_fraction=0.2)
    0.25
    """
    hidden = min(ep_overlap * ep_s, compute_s)
    return ep_s - hidden + hidden * comm_sm_fraction / (1.0 - comm_sm_fraction)


def gpu_optimizer_s(model: ModelSpec, cluster: ClusterSpec, layout: Layout, *, model_state_bytes: float,
                    fused_elementwise: bool = True) -> float:
    """Seconds of the optimizer step on the GPU: memory-bound, it reads and writes ``model_state_bytes``
    (weights + gradients + optimizer states per GPU) at ``HBM_EFFICIENCY`` of the device's bandwidth.
    On a calibrated CPU without fused kernels the per-tensor loop of clip + AdamW also costs
    ``optimizer_tensor_overhead_s`` per parameter tensor of the stage (:func:`parameter_tensor_count`)."""
    gpu = cluster.gpu
    optimizer_s = 2.0 * model_state_bytes / (gpu.memory_bandwidth_bytes_per_s * HBM_EFFICIENCY)
    if getattr(gpu, "optimizer_tensor_overhead_s", 0.0) and not fused_elementwise:
        optimizer_s += gpu.optimizer_tensor_overhead_s * parameter_tensor_count(model) / layout.pp
    return optimizer_s


def offload_s(cluster: ClusterSpec, layout: Layout, offload_bytes_per_step: float, *, compute_s: float,
              dp_overlap: float, activation_bytes_per_step: float = 0.0) -> tuple[float, float]:
    """(total, exposed) seconds of moving ``offload_bytes_per_step`` between GPU and host or NVMe: over
    PCIe, or the slower of PCIe and NVMe when anything is offloaded to NVMe; ``dp_overlap`` of the
    ``compute_s`` seconds of matmul and elementwise work hides it. ``activation_bytes_per_step`` (part of
    ``offload_bytes_per_step``: offloaded activations, :attr:`Layout.offload_activation_layers`) go over PCIe,
    half out during the forward and half back during the backward, each hidden only by its pass: a third and
    two thirds of ``compute_s`` (2 and 4 FLOPs per parameter and token).

    >>> from scalelab import get_cluster, Layout
    >>> c = get_cluster("h100-sxm", 8)  # PCIe 64 GB/s
    >>> offload_s(c, Layout(), 64e9, compute_s=3.0, dp_overlap=1.0)
    (1.0, 0.0)
    >>> offload_s(c, Layout(), 128e9, compute_s=3.0, dp_overlap=1.0, activation_bytes_per_step=128e9)
    (2.0, 0.0)
    >>> offload_s(c, Layout(), 256e9, compute_s=3.0, dp_overlap=1.0, activation_bytes_per_step=256e9)
    (4.0, 1.0)
    """
    gpu = cluster.gpu
    other = max(0.0, offload_bytes_per_step - activation_bytes_per_step)
    other_total = 0.0
    if other > 0:
        nvme = "nvme" in (layout.offload_optimizer, layout.offload_params)
        link_bw = min(gpu.pcie_bandwidth_bytes_per_s, gpu.nvme_bandwidth_bytes_per_s) if nvme \
            else gpu.pcie_bandwidth_bytes_per_s
        other_total = other / link_bw
    exposed = max(0.0, other_total - dp_overlap * compute_s)
    act_each_way = activation_bytes_per_step / 2 / gpu.pcie_bandwidth_bytes_per_s
    if act_each_way > 0:
        forward = compute_s / 3
        exposed += (max(0.0, act_each_way - dp_overlap * forward)
                    + max(0.0, act_each_way - dp_overlap * (compute_s - forward)))
    return other_total + 2 * act_each_way, exposed


def host_optimizer_s(cluster: ClusterSpec, *, host_state_bytes: float, nvme_state_bytes: float) -> float:
    """Seconds of the CPU optimizer step over offloaded states (never overlapped): it reads and writes
    ``host_state_bytes`` at ``HOST_MEMORY_BANDWIDTH_BYTES_PER_S`` and ``nvme_state_bytes`` at the
    device's NVMe bandwidth (bytes per GPU).

    >>> from scalelab import get_cluster
    >>> host_optimizer_s(get_cluster("h100-sxm", 8), host_state_bytes=50e9, nvme_state_bytes=0)
    2.0
    """
    return (2.0 * host_state_bytes / HOST_MEMORY_BANDWIDTH_BYTES_PER_S
            + 2.0 * nvme_state_bytes / cluster.gpu.nvme_bandwidth_bytes_per_s)


def _checked_efficiency(cluster: ClusterSpec, efficiency: float | None) -> float:
    """The matmul efficiency :func:`model_step_time` times the GEMMs at, a fraction of the dense peak in
    (0, 1]: ``efficiency``, or ``cluster.gpu.matmul_efficiency`` when it is ``None``."""
    eff = cluster.gpu.matmul_efficiency if efficiency is None else efficiency
    if not 0 < eff <= 1:
        raise ConfigError(explain("matmul efficiency must be in (0, 1]", value=eff,
                                  fix="pass a fraction of peak such as 0.45"))
    return eff


class _CriticalComm(NamedTuple):
    """Seconds per step of the collectives on the critical path of every micro-batch, once what overlap
    hides is taken off (:func:`_critical_comm_s`); named as the :class:`StepTime` fields they fill."""

    tp_s: float
    cp_s: float
    ep_s: float
    pp_s: float
    cp_transfer_s: float
    cp_exposed_s: float
    tp_hidden_s: float
    pp_hidden_s: float


def _critical_comm_s(model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, layout: Layout, comm: CommBreakdown,
                     *, dp: int, m: int, eff: float, matmul_s: float, attention_s: float, compute_s: float,
                     ep_overlap: float, comm_sm_fraction: float, tp_overlap: float, pp_overlap: float,
                     cp_ring: RingRecipe | None, float8: Float8Recipe | None, separate_qkv: bool,
                     async_tp: bool, async_tp_hiding: float) -> _CriticalComm:
    """The TP, CP, EP and PP terms of :func:`model_step_time`'s ideal time, seconds per step: ``comm``'s
    collectives of each group, less what hides behind the ``compute_s`` seconds of matmul and elementwise
    work (``matmul_s`` of it in GEMMs, ``attention_s`` in the attention core): the ring's transfers behind
    its attention (:func:`cp_ring_cost`), ``ep_overlap`` of the all-to-alls (:func:`ep_exposed_s`), AsyncTP's
    chunked collectives or ``tp_overlap`` of the TP ones and ``pp_overlap`` of the sends (:func:`hide_tp_pp`);
    a MoE token dispatcher's expert-TP traffic (group ``etp``) is never hidden.
    """
    by = comm.by_group()
    tp_s, cp_transfer_s, ep_s, pp_s = (by.get(g, 0.0) for g in ("tp", "cp", "ep", "pp"))
    ring = cp_ring_cost(model, cluster, train, layout, dp=dp, attention_s=attention_s, transfer_s=cp_transfer_s,
                        gather_s=comm.time_s(groups=("cp",), kind="all_gather"), recipe=cp_ring)
    ep_s = ep_exposed_s(ep_s, compute_s=compute_s, ep_overlap=ep_overlap, comm_sm_fraction=comm_sm_fraction)
    # TE's TP overlap needs sequence parallelism (Megatron-LM: "Tensor parallel communication/GEMM overlap
    # can happen only when sequence parallelism is enabled")
    atp_hidden = 0.0
    if async_tp and layout.sequence_parallel and layout.tp > 1:
        atp = _async_tp(model, cluster, train, layout, comm, dp=dp, m=m, eff=eff, float8=float8,
                        separate_qkv=separate_qkv, hiding=async_tp_hiding)
        tp_s, atp_hidden = atp.exposed_s, atp.hidden_s
    tp_s, pp_s, tp_hidden, pp_hidden = hide_tp_pp(tp_s, pp_s, matmul_s=matmul_s, attention_s=attention_s,
                                                  compute_s=compute_s - atp_hidden, interleave=layout.interleave,
                                                  tp_overlap=tp_overlap if layout.sequence_parallel else 0.0,
                                                  pp_overlap=pp_overlap)
    # a MoE token dispatcher's TP gathers and scatters (group "etp", comm.MOE_TP_DISPATCH "alltoall") are
    # plain collectives outside the GEMM overlap: exposed, and reported with the TP traffic
    tp_s += by.get("etp", 0.0)
    return _CriticalComm(tp_s=tp_s, cp_s=ring.total_s, ep_s=ep_s, pp_s=pp_s, cp_transfer_s=ring.transfer_s,
                         cp_exposed_s=ring.exposed_s, tp_hidden_s=tp_hidden + atp_hidden, pp_hidden_s=pp_hidden)


class _OffPipeline(NamedTuple):
    """Seconds per step outside the pipeline's ideal time and bubble (:func:`_off_pipeline_s`); named as the
    :class:`StepTime` fields they fill."""

    dp_total_s: float
    dp_exposed_s: float
    optimizer_s: float
    offload_total_s: float
    offload_exposed_s: float
    host_optimizer_s: float


def _off_pipeline_s(model: ModelSpec, cluster: ClusterSpec, layout: Layout, comm: CommBreakdown, *,
                    compute_s: float, m: int, dp_overlap: float, dp_comm_sm_fraction: float,
                    model_state_bytes: float, fused_elementwise: bool, offload_bytes_per_step: float,
                    activation_offload_bytes_per_step: float = 0.0,
                    host_state_bytes: float, nvme_state_bytes: float) -> _OffPipeline:
    """The terms :func:`model_step_time` adds after the bubble, seconds per step: ``comm``'s DP/ZeRO
    collectives (all, and what ``dp_overlap`` of :func:`dp_window_s` over ``m`` micro-batches of
    ``compute_s`` seconds leaves exposed, :func:`dp_exposed_s`), the GPU optimizer step
    (:func:`gpu_optimizer_s`), offload traffic (all, and exposed: :func:`offload_s`) and the CPU optimizer
    step (:func:`host_optimizer_s`)."""
    dp_total = comm.time_s(critical=False)
    dp_exposed = dp_exposed_s(dp_total, dp_overlap * dp_window_s(layout, compute_s, m), dp_comm_sm_fraction)
    optimizer_s = gpu_optimizer_s(model, cluster, layout, model_state_bytes=model_state_bytes,
                                  fused_elementwise=fused_elementwise)
    offload_total, offload_exposed = offload_s(cluster, layout, offload_bytes_per_step, compute_s=compute_s,
                                               dp_overlap=dp_overlap,
                                               activation_bytes_per_step=activation_offload_bytes_per_step)
    host_opt = host_optimizer_s(cluster, host_state_bytes=host_state_bytes, nvme_state_bytes=nvme_state_bytes)
    return _OffPipeline(dp_total_s=dp_total, dp_exposed_s=dp_exposed, optimizer_s=optimizer_s,
                        offload_total_s=offload_total, offload_exposed_s=offload_exposed, host_optimizer_s=host_opt)


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
    activation_offload_bytes_per_step: float = 0.0,
    host_state_bytes: float = 0.0,
    nvme_state_bytes: float = 0.0,
    attention_flops: float = 0.0,
    attention_efficiency: float | None = None,
    ep_overlap: float = DEFAULT_EP_OVERLAP,
    fused_elementwise: bool = True,
    comm_sm_fraction: float = 0.0,
    float8: Float8Recipe | None = None,
    dp_comm_sm_fraction: float = 0.0,
    tp_overlap: float = 0.0,
    pp_overlap: float = 0.0,
    cp_ring: RingRecipe | None = None,
    separate_qkv: bool = False,
    async_tp: bool = False,
    async_tp_hiding: float = ASYNC_TP_HIDING_EFFICIENCY,
    moe_permute: bool = True,
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
    activation_offload_bytes_per_step
        The part of ``offload_bytes_per_step`` that is offloaded activations, out in the forward and back in
        the backward (:func:`offload_s`).
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
    dp_comm_sm_fraction
        The same for the DP/ZeRO collectives hidden behind compute (:func:`dp_exposed_s`; 0: not charged).
    fused_elementwise
        True when norms, activations and residual adds run as fused kernels (Megatron, torch.compile);
        False for eager PyTorch (:func:`eager_elementwise_bytes_per_token_layer`).
    float8
        What an FP8 recipe (``train.precision="fp8"``) costs besides its GEMMs at the fp8 peak
        (:class:`Float8Recipe`); ``None``: torchao's tensorwise Float8 (:data:`FLOAT8_TORCHAO_TENSORWISE`).
    tp_overlap, pp_overlap
        Fractions, in [0, 1], of the TP collectives (with sequence parallelism only) and of the
        pipeline's sends (with an interleaved schedule only) hidden behind compute; what each hides,
        at most, and which frameworks do it: :func:`hide_tp_pp`.
    cp_ring
        What context parallelism's merges and accumulations move per ring step (:class:`RingRecipe`);
        ``None``: TransformerEngine's fused corrections (:data:`RING_TRANSFORMER_ENGINE`).
    separate_qkv
        The query, key and value projections run as three GEMMs (torchtitan, Hugging Face) rather than
        one fused GEMM (Megatron-LM): narrower, so the per-GEMM roofline may find them memory-bound
        (:mod:`scalelab.planner.gemm`).
    moe_permute
        A MoE layer's token permutations around its all-to-alls run as kernels of their own
        (:func:`moe_permute_bytes_per_token_layer`, Megatron-Core's dispatcher), counted as elementwise
        time; ``False`` for dispatch kernels that place tokens themselves (a profile's ``moe_fused_dispatch``).
    async_tp
        torch's AsyncTP (torchtitan ``enable_async_tensor_parallel``): the sequence-parallel collectives
        that inductor fuses with their GEMMs run in chunks beside them, what stays exposed as
        :func:`~scalelab.planner.async_tp.async_tp_cost` says (with sequence parallelism only; instead of
        ``tp_overlap``, which must then be 0); ``async_tp_hiding`` is its share of the chunk GEMMs' time
        that hides transfers, in [0, 1] (:data:`~scalelab.planner.async_tp.ASYNC_TP_HIDING_EFFICIENCY`).

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
    eff = _checked_efficiency(cluster, efficiency)
    _check_overlaps(dp_overlap=dp_overlap, ep_overlap=ep_overlap, tp_overlap=tp_overlap, pp_overlap=pp_overlap,
                    comm_sm_fraction=comm_sm_fraction, dp_comm_sm_fraction=dp_comm_sm_fraction)
    check_async_tp_overlap(async_tp, tp_overlap)
    m = max(1, train.global_batch // (dp * layout.micro_batch))
    matmul_s, attention_s, elementwise_s = compute_terms(
        model, cluster, train, layout, dp=dp, hardware_flops=hardware_flops, attention_flops=attention_flops,
        efficiency=eff, attention_efficiency=attention_efficiency, fused_elementwise=fused_elementwise,
        float8=float8, separate_qkv=separate_qkv, moe_permute=moe_permute)
    compute_s = matmul_s + elementwise_s
    crit = _critical_comm_s(model, cluster, train, layout, comm, dp=dp, m=m, eff=eff, matmul_s=matmul_s,
                            attention_s=attention_s, compute_s=compute_s, ep_overlap=ep_overlap,
                            comm_sm_fraction=comm_sm_fraction, tp_overlap=tp_overlap, pp_overlap=pp_overlap,
                            cp_ring=cp_ring, float8=float8, separate_qkv=separate_qkv, async_tp=async_tp,
                            async_tp_hiding=async_tp_hiding)
    ideal = compute_s + crit.tp_s + crit.cp_s + crit.ep_s + crit.pp_s
    bubble_s = ideal * bubble_fraction(layout.pp, layout.interleave, m)
    off = _off_pipeline_s(model, cluster, layout, comm, compute_s=compute_s, m=m, dp_overlap=dp_overlap,
                          dp_comm_sm_fraction=dp_comm_sm_fraction, model_state_bytes=model_state_bytes,
                          fused_elementwise=fused_elementwise, offload_bytes_per_step=offload_bytes_per_step,
                          activation_offload_bytes_per_step=activation_offload_bytes_per_step,
                          host_state_bytes=host_state_bytes, nvme_state_bytes=nvme_state_bytes)
    total = ideal + bubble_s + off.dp_exposed_s + off.optimizer_s + off.offload_exposed_s + off.host_optimizer_s
    return StepTime(step_time_s=total, matmul_s=matmul_s, elementwise_s=elementwise_s, bubble_s=bubble_s,
                    efficiency=eff, dp_overlap=dp_overlap, source="model",
                    peak_dtype=compute_dtype(train.precision, cluster.gpu.peak_flops_per_s),
                    **crit._asdict(), **off._asdict())


def check_async_tp_overlap(async_tp: bool | None, tp_overlap: float | None) -> None:
    """AsyncTP and a TP overlap both hide the TP collectives, so at most one may be on: the one check (and
    message) for plan()'s options (:func:`~scalelab.planner.plan.framework_options`) and direct
    :func:`model_step_time` calls.

    >>> check_async_tp_overlap(True, 0.0), check_async_tp_overlap(False, 1.0)
    (None, None)
    """
    if async_tp and tp_overlap:
        raise ConfigError(explain("async_tp and tp_overlap both hide the TP collectives; only one can be on",
                                  value=tp_overlap, allowed="tp_overlap 0 (or unset) with async_tp",
                                  fix="drop tp_overlap (AsyncTP's own overlap is modelled), or drop async_tp"))


def _async_tp(model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, layout: Layout, comm: CommBreakdown, *,
              dp: int, m: int, eff: float, float8: Float8Recipe | None, separate_qkv: bool,
              hiding: float) -> AsyncTPCost:
    """:func:`~scalelab.planner.async_tp.async_tp_cost` at the rates :func:`model_step_time` times the
    linear layers with (the compute dtype's peak, an FP8 recipe's GEMM efficiency, the HBM rate)."""
    if not 0 <= hiding <= 1:
        raise ConfigError(explain("async_tp_hiding must be in [0, 1]", value=hiding,
                                  fix="pass the share of the chunk GEMMs' time that hides transfers, e.g. 0.43"))
    gpu = cluster.gpu
    dtype = compute_dtype(train.precision, gpu.peak_flops_per_s)
    rate = eff * gpu.peak(dtype)
    if dtype == "fp8":
        rate *= (FLOAT8_TORCHAO_TENSORWISE if float8 is None else float8).gemm_efficiency_ratio
    act = activation_bytes(train.precision)
    return async_tp_cost(model, layout, comm, tokens_mb=layout.micro_batch * train.seq_len / layout.cp,
                         n_micro=m, stage_layers=layout.stage_layers(model.n_layers),
                         rerun_forward=layout.save_policy.reruns_tp_forward, gemm_flops_per_s=rate,
                         hbm_bytes_per_s=gpu.memory_bandwidth_bytes_per_s * HBM_EFFICIENCY,
                         gemm_input_bytes=GEMM_INPUT_BYTES.get(dtype, 2.0), act_bytes=act,
                         ag_bytes=act * tp_all_gather_fraction(train.precision), separate_qkv=separate_qkv,
                         hiding_efficiency=hiding)


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
