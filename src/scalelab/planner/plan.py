"""Evaluate one parallel layout: does it fit, how fast does it go, what does the run cost.

:func:`plan` glues the planner's parts together: :func:`check_layout` (divisibility of the model and
the cluster), :mod:`~scalelab.planner.memory` (bytes per GPU), :mod:`~scalelab.planner.flops` (FLOPs per
step), :mod:`~scalelab.planner.comm` (collectives) and :mod:`~scalelab.planner.step_time` (seconds per
step). The result is a :class:`Plan`.

An impossible layout is a result, not an exception (DESIGN.md principle 5): ``plan(...).feasible`` is
False and ``reasons`` says why ("out of memory by 12.3 GiB", "tp=3 does not divide n_heads=32").
Values that are wrong whatever the layout (negative sizes, unknown names, efficiencies above 1) raise
:class:`~scalelab.errors.ConfigError`.

Derived figures (PaLM, Chowdhery et al. 2022, App. B):

- ``tokens_per_s = global_batch_tokens / step_time_s``;
- ``mfu = model FLOPs per step / (step_time_s * n_gpus * dense peak)`` (no recompute);
- ``hfu`` = the same with hardware FLOPs (recompute included);
- ``training_days = total_tokens / global_batch_tokens * step_time_s / 86400``;
- ``gpu_hours = n_gpus * training time in hours``; ``cost_usd = gpu_hours * price_per_gpu_hour``;
- ``energy_kwh = gpu_hours * board power / 1000`` (GPU boards at TDP only: no host, network or cooling).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._spec import stable_hash
from ..arch.spec import ModelSpec
from ..errors import ConfigError, explain
from ..hardware.spec import ClusterSpec
from ..units import SECONDS_PER_DAY, SECONDS_PER_HOUR, GiB, format_bytes, format_count, format_days
from .async_tp import ASYNC_TP_HIDING_EFFICIENCY
from .band import BAND_QUANTILES, StepTimeBand, step_time_band
from .comm import RING_TRANSFORMER_ENGINE, CommBreakdown, RingRecipe, comm_per_step
from .flops import FlopConventions, FlopsBreakdown, flops_per_step
from .layout import Layout, TrainSpec
from .step_time import (
    DEFAULT_DP_OVERLAP,
    DEFAULT_EP_OVERLAP,
    FLOAT8_TORCHAO_TENSORWISE,
    Float8Recipe,
    StepTime,
    check_async_tp_overlap,
    compute_dtype,
    measured_step_time,
    model_step_time,
    timing_flops,
)

if TYPE_CHECKING:
    from .frameworks import FrameworkProfile
    from .memory import MemoryBreakdown, MemoryConventions

__all__ = ["Plan", "check_layout", "interleave_reason", "memory_limit", "plan", "resolve_dp"]

_NAN = float("nan")


def resolve_dp(cluster: ClusterSpec, layout: Layout) -> int | None:
    """The data-parallel degree: ``layout.dp`` or ``n_gpus / (tp * pp * cp)`` (None if that is not whole)."""
    if layout.dp is not None:
        return layout.dp
    mp = layout.tp * layout.pp * layout.cp
    return cluster.n_gpus // mp if cluster.n_gpus % mp == 0 else None


def interleave_reason(n_layers: int, pp: int, interleave: int) -> str | None:
    """Why ``interleave`` virtual stages per rank cannot split ``n_layers`` over ``pp`` ranks, or None.

    - the interleaved schedule needs a pipeline (pp > 1);
    - each rank's chunks hold whole layers: v divides the layers of the fullest stage, ceil(L/p)
      (Llama 3 ran 126 layers as 16 stages of 8 with one layer fewer on the first and last stage,
      Dubey et al. 2024 sec. 3.3.2);
    - every virtual stage holds at least one layer, the embedding and the LM head counting as one each:
      p v <= L + 2. torchtitan's ``generate_llm_fqn_per_model_part`` raises when the stages outnumber
      ``num_layers + input_weight + output_weight`` (both weights 1 by default); Megatron-Core's
      ``account_for_embedding_in_pipeline_split`` / ``account_for_loss_in_pipeline_split`` give the
      embedding and the loss a layer's slot each, so 126 layers + 2 fill 128 virtual stages exactly.

    >>> interleave_reason(126, 32, 4) is None        # 128 virtual stages = 126 layers + embedding + head
    True
    >>> interleave_reason(100, 64, 2)                # 128 virtual stages for 100 layers + 2
    'interleave=2 with pp=64 makes 128 virtual stages, more than the 100 layers + embedding + head (102)'
    """
    if interleave <= 1:
        return None
    if pp == 1:
        return f"interleave={interleave} needs pp > 1"
    per_stage = -(-n_layers // pp)
    if per_stage % interleave:
        return (f"interleave={interleave} does not divide the layers per stage "
                f"(ceil(n_layers/pp) = {per_stage}, n_layers={n_layers}, pp={pp})")
    if pp * interleave > n_layers + 2:
        return (f"interleave={interleave} with pp={pp} makes {pp * interleave} virtual stages, more than the "
                f"{n_layers} layers + embedding + head ({n_layers + 2})")
    return None


def check_layout(model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, layout: Layout) -> list[str]:
    """Reasons why ``layout`` cannot run ``model`` on ``cluster`` (empty when it can).

    Checks divisibility and consistency only (Megatron-LM's ``arguments.py`` and torchtitan's
    ``ParallelDims`` rules); memory is checked by :func:`plan`.

    >>> from scalelab.arch.spec import ModelSpec
    >>> from scalelab.hardware.spec import ClusterSpec, GPUSpec
    >>> gpu = GPUSpec(name="x", peak_flops_per_s={"bf16": 1e15}, memory_bytes=80e9,
    ...               memory_bandwidth_bytes_per_s=3e12, intra_node_bandwidth_bytes_per_s=450e9,
    ...               inter_node_bandwidth_bytes_per_s=50e9)
    >>> m = ModelSpec(n_layers=4, d_model=1024, n_heads=8, d_ff=4096, vocab_size=32000)
    >>> check_layout(m, ClusterSpec(gpu=gpu, n_gpus=8), TrainSpec(global_batch=8), Layout(tp=3))
    ['tp=3 does not divide n_heads=8', 'tp*pp*cp=3 does not divide n_gpus=8']
    """
    r: list[str] = []
    t, p, c, v, e = layout.tp, layout.pp, layout.cp, layout.interleave, layout.ep
    n = cluster.n_gpus
    # --- tensor parallelism: heads are split across tp ranks ----------------------------------------
    if model.n_heads % t:
        r.append(f"tp={t} does not divide n_heads={model.n_heads}")
    elif model.mla is None and model.n_kv_heads % t and t % model.n_kv_heads:
        r.append(f"tp={t} neither divides nor is a multiple of n_kv_heads={model.n_kv_heads}")
    if layout.sequence_parallel and t == 1:
        r.append("sequence parallelism needs tp > 1")
    # --- pipeline ---------------------------------------------------------------------------------------
    if p > model.n_layers:
        r.append(f"pp={p} exceeds n_layers={model.n_layers}")
    if v > 1:
        why = interleave_reason(model.n_layers, p, v)
        if why:
            r.append(why)
    # --- context parallelism ----------------------------------------------------------------------------
    if train.seq_len % c:
        r.append(f"cp={c} does not divide seq_len={train.seq_len}")
    # --- world size -------------------------------------------------------------------------------------
    mp = t * p * c
    if layout.dp is None:
        if n % mp:
            r.append(f"tp*pp*cp={mp} does not divide n_gpus={n}")
        dp = n // mp if n % mp == 0 else None
    else:
        dp = layout.dp
        world = dp * mp
        if world > n:
            r.append(f"layout needs dp*tp*pp*cp={world} GPUs, more than the cluster's n_gpus={n}")
        elif world != n:
            r.append(f"dp*tp*pp*cp={world} does not use all n_gpus={n}")
    # --- experts ----------------------------------------------------------------------------------------
    if model.moe is None:
        if e > 1:
            r.append(f"ep={e} but {model.name} has no experts")
        if layout.etp is not None and layout.etp != t:
            r.append("etp is set but the model has no experts")
    else:
        if model.moe.n_experts % e:
            r.append(f"ep={e} does not divide n_experts={model.moe.n_experts}")
        # Megatron-Core >= 0.10 folds the expert grid (etp x ep x expert-dp) over the tp*dp*cp ranks of a stage
        # (parallel_state.initialize_model_parallel, expert_tensor_parallel_size): with etp=1 EP may span TP
        # ranks too (DeepSeek-V3 on NeMo 25.04: tp2 ep64 dp32), so ep need not divide dp*cp
        etp = layout.expert_tp
        if dp is not None and (t * dp * c) % (etp * e):
            r.append(f"etp*ep={etp * e} does not divide tp*dp*cp={t * dp * c}")
    # --- batch ------------------------------------------------------------------------------------------
    if dp is not None:
        per = dp * layout.micro_batch
        if train.global_batch % per:
            r.append(f"global_batch={train.global_batch} sequences is not divisible by dp*micro_batch={per}")
        elif v > 1 and (train.global_batch // per) % p:
            r.append(f"the interleaved schedule needs micro-batches per step ({train.global_batch // per}) "
                     f"to be a multiple of pp={p}")
    # --- ZeRO / offload ---------------------------------------------------------------------------------
    if layout.offload_params != "none" and layout.zero != 3:
        r.append(f"offload_params={layout.offload_params!r} needs zero=3 (got zero={layout.zero})")
    if layout.offload_activation_layers:
        if p > 1:  # Megatron-Core's TransformerConfig refuses CPU offloading with pipeline parallelism
            r.append(f"offload_activation_layers={layout.offload_activation_layers} needs pp=1 (got pp={p}): "
                     f"activation offloading runs without pipeline parallelism")
        if layout.offload_activation_layers >= model.n_layers:
            r.append(f"offload_activation_layers={layout.offload_activation_layers} must be below the model's "
                     f"n_layers={model.n_layers}")
    # --- precision ----------------------------------------------------------------------------------------
    dt = compute_dtype(train.precision, cluster.gpu.peak_flops_per_s)
    if dt not in cluster.gpu.peak_flops_per_s:
        r.append(f"{cluster.gpu.name} has no dense {dt} peak for precision {train.precision!r}")
    return r


@dataclass(frozen=True)
class Plan:
    """One evaluated layout: feasibility with reasons, memory, FLOPs, communication, time and cost.

    Attributes ending in ``_s``, ``_bytes``, ``_usd``, ``_kwh`` carry units; ``mfu``/``hfu`` are fractions.
    Figures that could not be computed (an impossible layout, no ``total_tokens``) are NaN.
    """

    model: ModelSpec
    cluster: ClusterSpec
    train: TrainSpec
    layout: Layout
    """The layout with ``dp`` resolved (None only when it does not divide the cluster)."""
    feasible: bool
    reasons: tuple[str, ...]
    memory: Any
    """:class:`~scalelab.planner.memory.MemoryBreakdown` per GPU (None when divisibility failed)."""
    flops: FlopsBreakdown
    """FLOPs per step for the whole job."""
    comm: CommBreakdown | None
    time: StepTime | None
    conventions: FlopConventions
    mfu_peak_dtype: str
    options: dict[str, Any] = field(default_factory=dict)

    # ---- headline figures --------------------------------------------------------------------------
    @property
    def attention_at_matmul_efficiency(self) -> bool:
        """True when the attention core was timed at the matmul efficiency because neither the call nor the
        device gave an attention efficiency (catalog entries without a published attention-kernel figure)."""
        return (self.time is not None and self.time.source == "model" and self.options.get("attention_efficiency")
                is None and self.cluster.gpu.attention_efficiency is None)

    @property
    def memory_limit_bytes(self) -> float:
        """Bytes per GPU the layout had to fit in (capacity minus reserve, or the limit given)."""
        return self.options.get("memory_limit_bytes") or memory_limit(self.cluster)

    @property
    def flops_per_step(self) -> float:
        """Model FLOPs per optimizer step (forward + backward, no recompute)."""
        return self.flops.model

    @property
    def hardware_flops_per_step(self) -> float:
        """Executed FLOPs per step (recompute included)."""
        return self.flops.hardware

    @property
    def step_time_s(self) -> float:
        return self.time.step_time_s if self.time is not None else _NAN

    @property
    def tokens_per_s(self) -> float:
        return self.train.global_batch_tokens / self.step_time_s

    def _util(self, flops: float) -> float:
        peak = self.cluster.gpu.peak_flops_per_s.get(self.mfu_peak_dtype, _NAN)
        return flops / (self.step_time_s * self.cluster.n_gpus * peak)

    @property
    def mfu(self) -> float:
        """Model FLOPs utilisation (fraction of the dense ``mfu_peak_dtype`` peak)."""
        return self._util(self.flops.model)

    @property
    def hfu(self) -> float:
        """Hardware FLOPs utilisation (recompute counted)."""
        return self._util(self.flops.hardware)

    @property
    def n_steps(self) -> float:
        tt = self.train.total_tokens
        return tt / self.train.global_batch_tokens if tt else _NAN

    @property
    def training_days(self) -> float:
        return self.n_steps * self.step_time_s / SECONDS_PER_DAY

    @property
    def gpu_hours(self) -> float:
        return self.n_steps * self.step_time_s * self.cluster.n_gpus / SECONDS_PER_HOUR

    @property
    def cost_usd(self) -> float:
        price = self.cluster.price_per_gpu_hour
        return self.gpu_hours * price if price is not None else _NAN

    @property
    def energy_kwh(self) -> float:
        w = self.cluster.gpu.power_w
        return self.gpu_hours * w / 1000.0 if w is not None else _NAN

    def step_time_band(self, level: float = 0.8) -> StepTimeBand | None:
        """The empirical band of the modelled step time, days, GPU-hours and cost at ``level`` (0.8 or 0.95): how
        far this planner has been from published production throughput (:mod:`scalelab.planner.band`), not a
        guarantee; None when the step time was measured, not modelled."""
        return step_time_band(self, level)

    @property
    def config_hash(self) -> str:
        return stable_hash(self._config())

    def _config(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "cluster": self.cluster.to_dict(), "train": self.train.to_dict(),
                "layout": self.layout.to_dict(), "conventions": self.conventions.to_dict(),
                "mfu_peak_dtype": self.mfu_peak_dtype, "options": self.options}

    # ---- output --------------------------------------------------------------------------------------
    def memory_dict(self) -> dict[str, float] | None:
        m = self.memory
        if m is None:
            return None
        return {"weights": m.weights_bytes, "gradients": m.gradients_bytes, "optimizer": m.optimizer_bytes,
                "activations": m.activations_bytes, "other": m.other_bytes, "total": m.total_bytes}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; NaN stays NaN here (the CLI writes it as null)."""
        from .. import __version__

        mem = self.memory
        return {
            "feasible": self.feasible,
            "reasons": list(self.reasons),
            "model": self.model.name,
            "gpu": self.cluster.gpu.name,
            "n_gpus": self.cluster.n_gpus,
            "gpus_per_node": self.cluster.gpus_per_node,
            "layout": self.layout.to_dict(),
            "layout_short": self.layout.short(),
            "train": self.train.to_dict(),
            "memory_per_gpu_bytes": self.memory_dict(),
            "memory_capacity_bytes": self.cluster.gpu.memory_bytes,
            "memory_limit_bytes": self.memory_limit_bytes,
            "host_memory_per_gpu_bytes": getattr(mem, "host_bytes", None),
            "nvme_per_gpu_bytes": getattr(mem, "nvme_bytes", None),
            "offload_bytes_per_step": getattr(mem, "offload_bytes_per_step", None),
            "memory_notes": list(getattr(mem, "notes", ()) or ()),
            "flops_per_step": self.flops_per_step,
            "hardware_flops_per_step": self.hardware_flops_per_step,
            "step_time_s": self.step_time_s,
            "step_time_breakdown_s": self.time.to_dict() if self.time is not None else None,
            "step_time_bands": _bands_dict(self),
            "communication": self.comm.to_dict() if self.comm is not None else None,
            "tokens_per_s": self.tokens_per_s,
            "mfu": self.mfu,
            "hfu": self.hfu,
            "training_days": self.training_days,
            "gpu_hours": self.gpu_hours,
            "cost_usd": self.cost_usd,
            "energy_kwh": self.energy_kwh,
            "conventions": {
                "flops": self.conventions.to_dict(),
                "mfu_peak_dtype": self.mfu_peak_dtype,
                "peak": "dense (no 2:4 sparsity)",
                "bytes": "decimal bytes (GB = 1e9); GiB figures in reports say GiB",
                "measured_tflops_count": "hardware FLOPs (recompute included)",
                "energy": "GPU board power x GPU-hours; host, network and cooling excluded",
            },
            "options": self.options,
            "config_hash": self.config_hash,
            "scalelab_version": __version__,
        }

    def summary_row(self) -> dict[str, Any]:
        """One table row: layout, memory, time, MFU."""
        mem = self.memory
        return {
            "layout": self.layout.short(),
            "feasible": self.feasible,
            "mem_GiB": (mem.total_bytes / GiB) if mem is not None else _NAN,
            "step_s": self.step_time_s,
            "mfu": self.mfu,
            "days": self.training_days,
            "cost_usd": self.cost_usd,
        }

    def report(self) -> str:
        """Human-readable summary (GiB for memory, as frameworks print it)."""
        L = self.layout
        lines = [
            f"Plan: {self.model.name} on {self.cluster.n_gpus} x {self.cluster.gpu.name} "
            f"({self.cluster.gpus_per_node} per node)",
            f"  layout      {L.short()}",
            f"  feasible    {'yes' if self.feasible else 'NO'}",
        ]
        for reason in self.reasons:
            lines.append(f"    - {reason}")
        m = self.memory
        if m is not None:
            cap = self.memory_limit_bytes
            lines.append(f"  memory/GPU  {m.total_bytes / GiB:.2f} GiB of {cap / GiB:.2f} GiB usable "
                         f"({format_bytes(m.total_bytes)} of {format_bytes(cap)})")
            for k in ("weights", "gradients", "optimizer", "activations", "other"):
                lines.append(f"    {k:<12}{getattr(m, k + '_bytes') / GiB:10.2f} GiB")
            if getattr(m, "host_bytes", 0):
                acts = getattr(m, "host_activations_bytes", 0) or 0
                lines.append(f"    host (offload) {m.host_bytes / GiB:.2f} GiB"
                             + (f" ({acts / GiB:.2f} of activations)" if acts else ""))
        lines.append(f"  FLOPs/step  {self.flops.model:.4g} model, {self.flops.hardware:.4g} hardware "
                     f"({self.conventions.method}, causal_halved={self.conventions.causal_halved})")
        if self.time is not None:
            t = self.time
            band = self.step_time_band()
            lines.append(f"  step time   {t.step_time_s:.4g} s ({t.source}"
                         + (f"; 80% band {band.step_time_s[0]:.4g}-{band.step_time_s[1]:.4g} s from {band.n_runs} "
                            "published runs)" if band is not None else ")"))
            if t.source == "model":
                parts = [("matmul", t.matmul_s), ("elementwise", t.elementwise_s), ("tp", t.tp_s),
                         ("cp", t.cp_s), ("ep", t.ep_s), ("pp", t.pp_s), ("bubble", t.bubble_s),
                         ("dp exposed", t.dp_exposed_s), ("optimizer", t.optimizer_s),
                         ("offload exposed", t.offload_exposed_s), ("cpu optimizer", t.host_optimizer_s),
                         ("tp hidden", t.tp_hidden_s), ("pp hidden", t.pp_hidden_s)]
                shown = [f"{k} {v:.3g}" for k, v in parts if v > 0]
                for i in range(0, len(shown), 5):  # keep lines within 80 columns
                    lines.append("    " + ", ".join(shown[i:i + 5]))
                lines.append(f"    matmul efficiency {t.efficiency:.2f} of dense {t.peak_dtype} peak")
                if self.attention_at_matmul_efficiency:
                    lines.append(f"    attention at matmul efficiency (no {self.cluster.gpu.name} attention figure; "
                                 "see --attention-efficiency)")
                att, device_att = self.options.get("attention_efficiency"), self.cluster.gpu.attention_efficiency
                if att is not None and device_att is not None and abs(att - device_att) > 1e-12:
                    # a framework profile's attention kernel (llm-foundry-triton) or --attention-efficiency
                    lines.append(f"    attention efficiency {att:.2f} (the device's figure: {device_att:.2f})")
            lines.append(f"  throughput  {format_count(self.tokens_per_s)} tokens/s, MFU {self.mfu * 100:.1f}%, "
                         f"HFU {self.hfu * 100:.1f}% (dense {self.mfu_peak_dtype} peak)")
            if not math.isnan(self.training_days) and self.train.total_tokens is not None:
                lines.append(f"  training    {format_count(self.train.total_tokens)} tokens: "
                             f"{format_days(self.training_days)} days, {format_count(self.gpu_hours)} GPU-hours"
                             + (f", ${format_count(self.cost_usd)}" if not math.isnan(self.cost_usd) else "")
                             + (f", {format_count(self.energy_kwh)} kWh" if not math.isnan(self.energy_kwh) else ""))
                if band is not None:
                    lines.append(_band_line(band))
        from .. import __version__

        lines.append(f"  config      {self.config_hash} (scalelab {__version__})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Plan({self.model.name}, {self.cluster.n_gpus}x{self.cluster.gpu.name}, {self.layout.short()}, "
                f"feasible={self.feasible}, step_time_s={self.step_time_s:.4g}, mfu={self.mfu:.3f})")


def _bands_dict(p: Plan) -> dict[str, Any] | None:
    """The plan's stored empirical bands (80% and 95%) for JSON output; None when the step time was measured."""
    bands = {f"{lv:g}": p.step_time_band(lv) for lv in BAND_QUANTILES}
    return {k: b.to_dict() for k, b in bands.items() if b is not None} or None


def _band_line(band: StepTimeBand) -> str:
    """The training line's band: days, GPU-hours and cost times the band's factors."""
    d, g, c = band.training_days, band.gpu_hours, band.cost_usd
    return (f"    {band.level:.0%} band {format_days(d[0])}-{format_days(d[1])} days, "
            f"{format_count(g[0])}-{format_count(g[1])} GPU-hours"
            + (f", ${format_count(c[0])}-${format_count(c[1])}" if not math.isnan(c[0]) else ""))


def memory_limit(cluster: ClusterSpec, memory_limit_bytes: float | None = None,
                 memory_reserve_bytes: float | None = None) -> float:
    """Bytes per GPU a layout may use: ``memory_limit_bytes`` when given, else the device's capacity
    (as ``nvidia-smi`` reports it) minus the reserve (``memory_reserve_bytes`` or the device's).

    >>> from scalelab.hardware.catalog import get_cluster
    >>> round(memory_limit(get_cluster("h100-sxm", 8)) / 2**30, 2)   # 81,559 MiB - 1 GiB
    78.65
    """
    if memory_limit_bytes is not None:
        return float(memory_limit_bytes)
    gpu = cluster.gpu
    reserve = gpu.memory_reserve_bytes if memory_reserve_bytes is None else memory_reserve_bytes
    if not (isinstance(reserve, (int, float)) and 0 <= reserve < gpu.memory_bytes):
        raise ConfigError(explain("memory reserve must be >= 0 bytes and less than the device's memory",
                                  value=reserve, fix="e.g. memory_reserve_bytes=2**30 (1 GiB)"))
    return gpu.memory_bytes - reserve


@dataclass(frozen=True)
class FrameworkOptions:
    """The model options of one call once a framework profile's defaults are applied (explicit
    arguments win); what :func:`plan` and :func:`~scalelab.planner.search.search_layouts` both time with."""

    efficiency: float | None
    attention_efficiency: float | None
    dp_overlap: float
    ep_overlap: float
    memory_conventions: MemoryConventions | None
    fused_elementwise: bool = True
    ep_nodes_per_token: int | None = None
    comm_sm_fraction: float = 0.0
    dp_comm_sm_fraction: float = 0.0
    """Share of SMs the kernels of hidden DP/ZeRO collectives hold (the profile's;
    :func:`~scalelab.planner.step_time.dp_exposed_s`)."""
    float8: Float8Recipe = FLOAT8_TORCHAO_TENSORWISE
    """What an FP8 recipe costs besides its GEMMs (:class:`~scalelab.planner.step_time.Float8Recipe`)."""
    tp_overlap: float = 0.0
    """Share of TP collectives hidden behind their GEMMs (:func:`~scalelab.planner.step_time.model_step_time`)."""
    pp_overlap: float = 0.0
    """Share of pipeline sends hidden behind compute with interleaved schedules."""
    cp_ring: RingRecipe = RING_TRANSFORMER_ENGINE
    """What context parallelism moves: its K,V exchange and its per-step merges
    (:class:`~scalelab.planner.comm.RingRecipe`)."""
    separate_qkv: bool = False
    """Query, key and value projections as three GEMMs rather than one fused GEMM (:mod:`~scalelab.planner.gemm`)."""
    async_tp: bool = False
    """torch's AsyncTP hides the sequence-parallel collectives it fuses with their GEMMs
    (:mod:`~scalelab.planner.async_tp`)."""
    async_tp_hiding: float = ASYNC_TP_HIDING_EFFICIENCY
    """Share of the chunk GEMMs' time under which AsyncTP's transfers hide (the profile's)."""
    moe_tp_dispatch: str = "gemm"
    """How MoE experts move their TP traffic (:data:`~scalelab.planner.comm.MOE_TP_DISPATCH`; the profile's)."""
    moe_fused_dispatch: bool = False
    """The expert dispatch and combine kernels place tokens themselves: no separate permutation kernels
    (:func:`~scalelab.planner.step_time.moe_permute_bytes_per_token_layer`; the profile's)."""


def framework_options(framework: str | FrameworkProfile | None, cluster: ClusterSpec, *,
                      efficiency: float | None = None, attention_efficiency: float | None = None,
                      dp_overlap: float | None = None, ep_overlap: float | None = None,
                      memory_conventions: MemoryConventions | None = None, tp_overlap: float | None = None,
                      pp_overlap: float | None = None, async_tp: bool | None = None) -> FrameworkOptions:
    """Apply ``framework``'s defaults (:mod:`~scalelab.planner.frameworks`) to the options given.

    The profile's ``efficiency_scale`` multiplies the device's matmul and attention efficiencies, and its
    ``attention_efficiency_scale`` the attention one, unless they are given; its memory conventions and
    overlaps apply unless given; its elementwise fusion, node-limited routing, SM share and FP8 recipe always
    apply. Without a framework the planner's
    defaults apply. ``async_tp`` (default the profile's, else off) cannot be combined with a TP overlap, and
    unless ``memory_conventions`` are given it drops ``sp_saves_gathered_inputs`` (AsyncTP's fused
    all-gather-matmul saves the sharded input).

    >>> from scalelab.hardware.catalog import get_cluster
    >>> o = framework_options("deepseek-v3", get_cluster("h800", 8))
    >>> o.ep_overlap, o.ep_nodes_per_token
    (1.0, 4)
    >>> o = framework_options("nemo", get_cluster("h100-sxm", 8))
    >>> o.tp_overlap, o.pp_overlap
    (1.0, 1.0)
    """
    from .frameworks import FRAMEWORKS, get_framework

    if async_tp is not None and not isinstance(async_tp, bool):  # a config file's "false" must not read as on
        raise ConfigError(explain("async_tp must be true or false", value=async_tp, allowed="true, false",
                                  fix="write async_tp = true (no quotes) in [plan] or [search], or pass --async-tp"))
    fused, nodes, sm, f8, ring = True, None, 0.0, FLOAT8_TORCHAO_TENSORWISE, RING_TRANSFORMER_ENGINE
    dp_sm = 0.0
    separate_qkv, hiding, moe_dispatch, fused_dispatch = False, ASYNC_TP_HIDING_EFFICIENCY, "gemm", False
    given_memory = memory_conventions is not None
    if framework is not None:
        prof = get_framework(framework)
        fused, nodes, sm = prof.fused_elementwise, prof.ep_nodes_per_token, prof.comm_sm_fraction
        dp_sm = prof.dp_comm_sm_fraction
        f8, ring, separate_qkv = prof.float8, prof.cp_ring, prof.separate_qkv
        moe_dispatch, fused_dispatch = prof.moe_tp_dispatch, prof.moe_fused_dispatch
        gpu = cluster.gpu
        if efficiency is None and prof.efficiency_scale != 1.0:
            efficiency = min(1.0, gpu.matmul_efficiency * prof.efficiency_scale)
        attention_scale = prof.efficiency_scale * prof.attention_efficiency_scale
        if attention_efficiency is None and gpu.attention_efficiency is not None and attention_scale != 1.0:
            attention_efficiency = min(1.0, gpu.attention_efficiency * attention_scale)
        memory_conventions = memory_conventions or prof.memory
        dp_overlap = prof.dp_overlap if dp_overlap is None else dp_overlap
        ep_overlap = prof.ep_overlap if ep_overlap is None else ep_overlap
        async_tp = prof.async_tp if async_tp is None else async_tp
        hiding = prof.async_tp_hiding
        if async_tp and not prof.fused_elementwise:
            # AsyncTP is an inductor pass (async_tp.py): torchtitan refuses it in eager mode
            # (parallelize_llama.py: "Async TP requires --training.compile")
            raise ConfigError(explain(f"async_tp needs torch.compile; framework {prof.name!r} runs eager",
                                      value=prof.name, allowed=", ".join(
                                          n for n, f in FRAMEWORKS.items() if f.fused_elementwise),
                                      fix="use a compiled profile (torchtitan-compile, torchtitan-compile-2025) "
                                          "or drop async_tp"))
        if async_tp and not given_memory and prof.memory.sp_saves_gathered_inputs:
            memory_conventions = dataclasses.replace(prof.memory, sp_saves_gathered_inputs=False)
        tp_overlap = (0.0 if async_tp else prof.tp_overlap) if tp_overlap is None else tp_overlap
        pp_overlap = prof.pp_overlap if pp_overlap is None else pp_overlap
    for name, ov in (("tp_overlap", tp_overlap), ("pp_overlap", pp_overlap)):
        if ov is not None and not (isinstance(ov, (int, float)) and 0 <= ov <= 1):
            raise ConfigError(explain(f"{name} must be in [0, 1]", value=ov,
                                      fix="0 = on the critical path, 1 = hidden behind compute"))
    check_async_tp_overlap(async_tp, tp_overlap)
    return FrameworkOptions(
        efficiency=efficiency, attention_efficiency=attention_efficiency,
        dp_overlap=DEFAULT_DP_OVERLAP if dp_overlap is None else dp_overlap,
        ep_overlap=DEFAULT_EP_OVERLAP if ep_overlap is None else ep_overlap,
        memory_conventions=memory_conventions, fused_elementwise=fused, ep_nodes_per_token=nodes,
        comm_sm_fraction=sm, dp_comm_sm_fraction=dp_sm, float8=f8, tp_overlap=tp_overlap or 0.0,
        pp_overlap=pp_overlap or 0.0,
        cp_ring=ring, separate_qkv=separate_qkv, async_tp=bool(async_tp), async_tp_hiding=hiding,
        moe_tp_dispatch=moe_dispatch, moe_fused_dispatch=fused_dispatch)


def _check_measured_tflops(tflops: float, cluster: ClusterSpec) -> None:
    """A measured throughput cannot exceed the device's highest dense peak (of any dtype it lists)."""
    peaks = cluster.gpu.peak_flops_per_s
    best = max(peaks, key=lambda d: peaks[d]) if peaks else None
    if best is not None and tflops * 1e12 > peaks[best]:
        raise ConfigError(explain(
            f"measured TFLOP/s per GPU is above {cluster.gpu.name}'s highest dense peak "
            f"({peaks[best] / 1e12:g} TFLOP/s in {best})", value=tflops,
            fix="give achieved TFLOP/s per GPU (e.g. 400), not FLOP/s or a cluster total"))


def _check_values(efficiency, measured_step_time_s, measured_tflops_per_gpu, dp_overlap, memory_limit_bytes):
    if efficiency is not None and not (isinstance(efficiency, (int, float)) and 0 < efficiency <= 1):
        raise ConfigError(explain("efficiency must be a fraction of peak in (0, 1]", value=efficiency,
                                  fix="pass e.g. efficiency=0.45, or leave it out for the device default"))
    if measured_step_time_s is not None and not measured_step_time_s > 0:
        raise ConfigError(explain("measured step time must be positive seconds", value=measured_step_time_s))
    if measured_tflops_per_gpu is not None and not measured_tflops_per_gpu > 0:
        raise ConfigError(explain("measured TFLOP/s per GPU must be positive", value=measured_tflops_per_gpu))
    if measured_step_time_s is not None and measured_tflops_per_gpu is not None:
        raise ConfigError(explain("give a measured step time or measured TFLOP/s, not both",
                                  fix="drop one of the two"))
    if not (isinstance(dp_overlap, (int, float)) and 0 <= dp_overlap <= 1):
        raise ConfigError(explain("dp_overlap must be in [0, 1]", value=dp_overlap,
                                  fix="0 = no overlap of DP traffic with backward, 1 = full overlap"))
    if memory_limit_bytes is not None and not memory_limit_bytes > 0:
        raise ConfigError(explain("memory limit must be positive bytes", value=memory_limit_bytes))


def _resolve_options(framework: str | FrameworkProfile | None, cluster: ClusterSpec, layout: Layout | None, *,
                     efficiency: float | None, attention_efficiency: float | None, dp_overlap: float | None,
                     ep_overlap: float | None, memory_conventions: MemoryConventions | None,
                     tp_overlap: float | None, pp_overlap: float | None, measured_step_time_s: float | None,
                     async_tp: bool | None = None,
                     measured_tflops_per_gpu: float | None,
                     memory_limit_bytes: float | None) -> tuple[Layout, FrameworkOptions]:
    """The layout :func:`plan` evaluates (``Layout()`` when none is given, with ``framework``'s meaning of
    its save policy) and the options it times with (:func:`framework_options`), once both are checked.

    Raises :class:`~scalelab.errors.ConfigError` for an efficiency outside (0, 1], an overlap outside
    [0, 1], a measured step time (seconds) or TFLOP/s per GPU that is not positive or both of them, or a
    memory limit (bytes) that is not positive: values wrong whatever the layout.
    """
    from .frameworks import get_framework

    layout = layout if layout is not None else Layout()
    if framework is not None:
        layout = get_framework(framework).resolve_layout(layout)
    fw = framework_options(framework, cluster, efficiency=efficiency, attention_efficiency=attention_efficiency,
                           dp_overlap=dp_overlap, ep_overlap=ep_overlap, memory_conventions=memory_conventions,
                           tp_overlap=tp_overlap, pp_overlap=pp_overlap, async_tp=async_tp)
    _check_values(fw.efficiency, measured_step_time_s, measured_tflops_per_gpu, fw.dp_overlap, memory_limit_bytes)
    if not (isinstance(fw.ep_overlap, (int, float)) and 0 <= fw.ep_overlap <= 1):
        raise ConfigError(explain("ep_overlap must be in [0, 1]", value=fw.ep_overlap,
                                  fix="0 = expert all-to-all exposed, 1 = hidden behind compute (DualPipe)"))
    attention_efficiency = fw.attention_efficiency
    if attention_efficiency is not None and not (isinstance(attention_efficiency, (int, float))
                                                 and 0 < attention_efficiency <= 1):
        raise ConfigError(explain("attention_efficiency must be a fraction of peak in (0, 1]",
                                  value=attention_efficiency, fix="pass e.g. 0.35, or leave it out"))
    return layout, fw


def _cached_flops(model: ModelSpec, train: TrainSpec, recompute: str, conventions: FlopConventions,
                  cache: dict | None) -> FlopsBreakdown:
    """:func:`~scalelab.planner.flops.flops_per_step` for the save policy ``recompute``, looked up in and
    stored to ``cache`` (keyed by ``(recompute,)``) when one is given: a search's layouts share the
    model, batch and conventions, so the FLOPs depend on the save policy only."""
    key = (recompute,)
    if cache is not None and key in cache:
        return cache[key]
    flops = flops_per_step(model, train, recompute=recompute, conventions=conventions)
    if cache is not None:
        cache[key] = flops
    return flops


def _options_record(fw: FrameworkOptions, framework: str | FrameworkProfile | None, *,
                    measured_step_time_s: float | None, measured_tflops_per_gpu: float | None,
                    memory_limit_bytes: float, moe: bool = False, fp8: bool = False) -> dict[str, Any]:
    """The options a :class:`Plan` records (``Plan.options``, part of its config hash): the resolved
    efficiencies and overlaps, the measurement if any, the memory limit in bytes per GPU, the memory
    conventions and the framework's name. TP and PP overlaps and the DP collectives' SM share appear only
    when not 0, separate q, k, v GEMMs only when set and the MoE TP dispatch only for a MoE model (``moe``) and
    when not ``"gemm"``, and the memory convention ``fp8_saves_quantized_linear_inputs`` only for an fp8
    recipe (``fp8``), where it acts, so plans made before they existed keep their hashes."""
    from .frameworks import get_framework
    from .memory import MemoryConventions

    return {"efficiency": fw.efficiency, "measured_step_time_s": measured_step_time_s,
            "measured_tflops_per_gpu": measured_tflops_per_gpu, "dp_overlap": fw.dp_overlap,
            "memory_limit_bytes": memory_limit_bytes,
            "attention_efficiency": fw.attention_efficiency, "ep_overlap": fw.ep_overlap,
            **({"tp_overlap": fw.tp_overlap} if fw.tp_overlap else {}),
            **({"pp_overlap": fw.pp_overlap} if fw.pp_overlap else {}),
            **({"separate_qkv": True} if fw.separate_qkv else {}),
            **({"dp_comm_sm_fraction": fw.dp_comm_sm_fraction} if fw.dp_comm_sm_fraction else {}),
            **({"async_tp": True, "async_tp_hiding": fw.async_tp_hiding} if fw.async_tp else {}),
            **({"moe_tp_dispatch": fw.moe_tp_dispatch} if moe and fw.moe_tp_dispatch != "gemm" else {}),
            **({"moe_fused_dispatch": True} if moe and fw.moe_fused_dispatch else {}),
            "memory_conventions": (fw.memory_conventions or MemoryConventions()).to_dict(fp8=fp8),
            "framework": get_framework(framework).name if framework is not None else None}


def _memory_and_comm(model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, layout: Layout, *, dp: int,
                     fw: FrameworkOptions, limit_bytes: float, reasons: list[str],
                     memory: MemoryBreakdown | None = None) -> tuple[MemoryBreakdown, CommBreakdown]:
    """Memory per GPU (``memory`` when the caller has it already) and collectives per step of a layout
    that is not structurally broken. Appends to ``reasons`` when the layout needs more than
    ``limit_bytes`` per GPU or more host memory than the device has per GPU for offload. With LoRA only
    the adapters' gradients are reduced across data-parallel ranks."""
    from .memory import MemoryConventions, memory_per_gpu

    if memory is None:
        memory = memory_per_gpu(model, train, layout, dp=dp, gpus_per_node=cluster.gpus_per_node,
                                conventions=fw.memory_conventions or MemoryConventions())
    if memory.total_bytes > limit_bytes:
        reasons.append(f"out of memory by {(memory.total_bytes - limit_bytes) / GiB:.1f} GiB "
                       f"(needs {memory.total_bytes / GiB:.1f} GiB per GPU, has {limit_bytes / GiB:.1f} GiB)")
    host = getattr(memory, "host_bytes", 0) or 0
    if host > cluster.gpu.host_memory_bytes_per_gpu:
        reasons.append(f"offload needs {host / GiB:.1f} GiB of host memory per GPU, more than the "
                       f"{cluster.gpu.host_memory_bytes_per_gpu / GiB:.1f} GiB available")
    comm = comm_per_step(model, cluster, train, layout, dp=dp,
                         trainable_fraction=_trainable_fraction(model, train, memory),
                         ep_nodes_per_token=fw.ep_nodes_per_token, cp_ring=fw.cp_ring,
                         memory_conventions=fw.memory_conventions, moe_tp_dispatch=fw.moe_tp_dispatch)
    return memory, comm


def _trainable_fraction(model: ModelSpec, train: TrainSpec, memory: MemoryBreakdown) -> float:
    """Share of the model's parameters whose gradients data parallelism reduces: with LoRA only the
    adapters' (``memory.trainable_params`` over all parameters, at most 1), else 1. The
    ``trainable_fraction`` of :func:`~scalelab.planner.comm.comm_per_step` for :func:`plan` and the
    search's bounds alike."""
    trainable = memory.trainable_params
    if train.lora is None or not trainable:
        return 1.0
    return min(1.0, trainable / model.n_params().total)


def _step_time(model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, layout: Layout, *,
               fw: FrameworkOptions, flops: FlopsBreakdown, peak_dtype: str, memory: MemoryBreakdown | None,
               comm: CommBreakdown | None, dp: int | None, measured_step_time_s: float | None,
               measured_tflops_per_gpu: float | None) -> StepTime | None:
    """The step time of :func:`plan`: from the measurement when one is given
    (:func:`~scalelab.planner.step_time.measured_step_time`), else from the model
    (:func:`~scalelab.planner.step_time.model_step_time`) when the layout got as far as memory and
    collectives, else ``None`` (a structurally broken layout has no step time)."""
    if measured_tflops_per_gpu is not None:
        _check_measured_tflops(measured_tflops_per_gpu, cluster)
    if measured_step_time_s is not None or measured_tflops_per_gpu is not None:
        return measured_step_time(hardware_flops=flops.hardware, n_gpus=cluster.n_gpus, peak_dtype=peak_dtype,
                                  measured_step_time_s=measured_step_time_s,
                                  measured_tflops_per_gpu=measured_tflops_per_gpu)
    if memory is None or comm is None or dp is None:
        return None
    states = memory.weights_bytes + memory.gradients_bytes + memory.optimizer_bytes
    hardware_t, attention_t = timing_flops(flops, layout.recompute)
    return model_step_time(
        model, cluster, train, layout, hardware_flops=hardware_t, comm=comm, dp=dp,
        efficiency=fw.efficiency, dp_overlap=fw.dp_overlap, model_state_bytes=states,
        offload_bytes_per_step=getattr(memory, "offload_bytes_per_step", 0.0) or 0.0,
        activation_offload_bytes_per_step=getattr(memory, "activation_offload_bytes_per_step", 0.0) or 0.0,
        host_state_bytes=(getattr(memory, "host_bytes", 0.0) or 0.0) - (getattr(memory, "host_activations_bytes", 0.0)
                                                                         or 0.0),
        nvme_state_bytes=getattr(memory, "nvme_bytes", 0.0) or 0.0,
        attention_flops=attention_t,
        attention_efficiency=fw.attention_efficiency, ep_overlap=fw.ep_overlap,
        fused_elementwise=fw.fused_elementwise, comm_sm_fraction=fw.comm_sm_fraction, float8=fw.float8,
        dp_comm_sm_fraction=fw.dp_comm_sm_fraction, tp_overlap=fw.tp_overlap, pp_overlap=fw.pp_overlap,
        cp_ring=fw.cp_ring, separate_qkv=fw.separate_qkv,
        async_tp=fw.async_tp, async_tp_hiding=fw.async_tp_hiding, moe_permute=not fw.moe_fused_dispatch)


def check_plan_inputs(model: Any, cluster: Any, train: Any, layout: Any = None) -> None:
    """A ConfigError naming the argument when one is not the spec :func:`plan` and the search take (a name
    passed where a spec belongs raised ``AttributeError: 'str' object has no attribute 'n_heads'``)."""
    def named(v: Any, default: str) -> str:  # the user's own name in the fix when they passed one
        return repr(v) if isinstance(v, str) else default

    for name, value, kind, how in (
        ("model", model, ModelSpec, f"get_model({named(model, repr('llama-3.1-8b'))})"),
        ("cluster", cluster, ClusterSpec, f"get_cluster({named(cluster, repr('h100-sxm'))}, n_gpus=8)"),
        ("train", train, TrainSpec, "TrainSpec(seq_len=4096, global_batch=512)"),
        ("layout", layout, (Layout, type(None)), f"Layout(tp=2), or parse_layout({named(layout, repr('tp2 pp4'))})"),
    ):
        if not isinstance(value, kind):
            shown = value if isinstance(value, (str, int, float, dict)) else type(value).__name__
            raise ConfigError(explain(f"{name} must be a {getattr(kind, '__name__', 'Layout')}, not "
                                      f"{type(value).__name__}", value=shown, fix=f"pass {how}"))


def plan(
    model: ModelSpec,
    cluster: ClusterSpec,
    train: TrainSpec,
    layout: Layout | None = None,
    *,
    efficiency: float | None = None,
    measured_step_time_s: float | None = None,
    measured_tflops_per_gpu: float | None = None,
    conventions: FlopConventions = FlopConventions(),
    dp_overlap: float | None = None,
    mfu_peak_dtype: str | None = None,
    memory_limit_bytes: float | None = None,
    attention_efficiency: float | None = None,
    ep_overlap: float | None = None,
    memory_conventions: MemoryConventions | None = None,
    memory_reserve_bytes: float | None = None,
    framework: str | FrameworkProfile | None = None,
    tp_overlap: float | None = None,
    pp_overlap: float | None = None,
    async_tp: bool | None = None,
    _flops_cache: dict | None = None,
    _memory: Any = None,
) -> Plan:
    """Evaluate one layout of ``model`` on ``cluster`` for ``train``.

    Parameters
    ----------
    model, cluster, train, layout
        What is trained, on which machines, with which batch and precision, laid out how
        (``Layout()`` by default: pure data parallelism).
    efficiency
        Matmul efficiency (fraction of dense peak); default ``cluster.gpu.matmul_efficiency``.
    measured_step_time_s, measured_tflops_per_gpu
        A measurement to use instead of the step-time model. TFLOP/s count executed FLOPs (recompute
        included), as Megatron-LM 2021 reported them.
    conventions
        FLOP counting conventions (:class:`~scalelab.planner.flops.FlopConventions`).
    dp_overlap
        Fraction of the backward window that hides DP/ZeRO communication (0..1); default the
        framework's, else ``DEFAULT_DP_OVERLAP`` (1).
    mfu_peak_dtype
        Dense peak that MFU and HFU divide by; default the compute dtype of ``train.precision``.
    memory_limit_bytes
        Usable memory per GPU; default the GPU's capacity minus its reserve (:func:`memory_limit`).
    attention_efficiency
        Fraction of dense peak that the fused attention kernel reaches (FlashAttention); default
        ``cluster.gpu.attention_efficiency``, else the matmul efficiency.
    ep_overlap
        Fraction of the expert all-to-all hidden behind computation (0..1; 1 = DualPipe-style overlap);
        default the framework's, else 0.
    framework
        A :class:`~scalelab.planner.frameworks.FrameworkProfile` or its name (``megatron``, ``nemo``,
        ``megatron-deepspeed``, ``torchtitan``, ``torchtitan-compile``, ``torchtitan-compile-2025``,
        ``deepspeed``, ``llm-foundry``, ``llm-foundry-triton``, ``deepseek-v3``;
        :data:`~scalelab.planner.frameworks.FRAMEWORKS`): its memory conventions, elementwise fusion,
        efficiency scales (matmul, attention), expert routing,
        overlaps and what it means by ``selective``, each overridden by an explicit argument.
    memory_conventions
        Memory bookkeeping (:class:`~scalelab.planner.memory.MemoryConventions`: activation, logits and
        optimizer-state dtypes, ZeRO-3 buffers...); default ``MemoryConventions()``.
    memory_reserve_bytes
        Bytes of the device's memory kept back for the CUDA context and workspaces; default
        ``cluster.gpu.memory_reserve_bytes`` (1 GiB).
    tp_overlap, pp_overlap
        Share of the TP collectives hidden behind the GEMMs they are split against (at most those GEMMs'
        time), and of the pipeline sends hidden behind compute with an interleaved schedule (0..1);
        default the framework's (``nemo``: 1 and 1), else 0
        (:func:`~scalelab.planner.step_time.model_step_time`).
    async_tp
        torch's AsyncTP (torchtitan ``enable_async_tensor_parallel``, compiled runs): the sequence-parallel
        all-gathers and reduce-scatters inductor fuses with their GEMMs are hidden behind them in chunks
        (:mod:`~scalelab.planner.async_tp`); default the framework's (off in every profile).

    Returns
    -------
    Plan
        ``feasible`` False with ``reasons`` for an impossible layout (never an exception).

    Raises
    ------
    ConfigError
        For values that are wrong whatever the layout.

    Examples
    --------
    >>> from scalelab import get_model, get_cluster  # doctest: +SKIP
    >>> p = plan(get_model("llama-3.1-8b"), get_cluster("h100-sxm", 8),
    ...          TrainSpec(seq_len=8192, global_batch=64), Layout(tp=1, zero=1))  # doctest: +SKIP
    >>> p.feasible, round(p.mfu, 2)  # doctest: +SKIP
    """
    check_plan_inputs(model, cluster, train, layout)
    layout, fw = _resolve_options(
        framework, cluster, layout, efficiency=efficiency, attention_efficiency=attention_efficiency,
        dp_overlap=dp_overlap, ep_overlap=ep_overlap, memory_conventions=memory_conventions, tp_overlap=tp_overlap,
        pp_overlap=pp_overlap, async_tp=async_tp, measured_step_time_s=measured_step_time_s,
        measured_tflops_per_gpu=measured_tflops_per_gpu, memory_limit_bytes=memory_limit_bytes)
    reasons = check_layout(model, cluster, train, layout)
    dp = resolve_dp(cluster, layout)
    if dp is not None and layout.dp is None:
        layout = layout.model_copy(update={"dp": dp})
    dtype = compute_dtype(train.precision, cluster.gpu.peak_flops_per_s)
    mfu_dtype = mfu_peak_dtype or dtype
    if mfu_dtype not in cluster.gpu.peak_flops_per_s:
        raise ConfigError(explain(f"{cluster.gpu.name} has no dense peak for the MFU dtype",
                                  value=mfu_dtype, allowed=", ".join(cluster.gpu.peak_flops_per_s)))
    flops = _cached_flops(model, train, layout.recompute, conventions, _flops_cache)
    limit = memory_limit(cluster, memory_limit_bytes, memory_reserve_bytes)
    options = _options_record(fw, framework, measured_step_time_s=measured_step_time_s,
                              measured_tflops_per_gpu=measured_tflops_per_gpu, memory_limit_bytes=limit,
                              moe=model.moe is not None, fp8=train.precision == "fp8")
    memory: MemoryBreakdown | None = None
    comm: CommBreakdown | None = None
    if not reasons and dp is not None:  # check_layout reports a dp that is not whole
        memory, comm = _memory_and_comm(model, cluster, train, layout, dp=dp, fw=fw, limit_bytes=limit,
                                        reasons=reasons, memory=_memory)
    time = _step_time(model, cluster, train, layout, fw=fw, flops=flops, peak_dtype=dtype, memory=memory,
                      comm=comm, dp=dp, measured_step_time_s=measured_step_time_s,
                      measured_tflops_per_gpu=measured_tflops_per_gpu)
    return Plan(model=model, cluster=cluster, train=train, layout=layout, feasible=not reasons,
                reasons=tuple(reasons), memory=memory, flops=flops, comm=comm, time=time,
                conventions=conventions, mfu_peak_dtype=mfu_dtype, options=options)
