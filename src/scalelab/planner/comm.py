"""Communication per training step: which collectives run, how many bytes each GPU moves, on which link,
and how long that takes under an alpha-beta (latency-bandwidth) model.

Symbols: b = micro-batch (sequences), s = sequence length, h = d_model, t = tp, p = pp, c = cp,
d = dp, e = ep, m = micro-batches per step per pipeline, Psi_local = parameters held by one rank.

**Cost of one collective** (ring algorithms, the convention of nccl-tests' "bus bandwidth",
``nccl-tests/doc/PERFORMANCE.md``; also Thakur, Rabenseifner & Gropp 2005, "Optimization of collective
communication operations in MPICH"). For a message of S bytes over n ranks, each rank sends

=================  ====================  ==============
collective         bytes sent per rank   latency steps
=================  ====================  ==============
all-reduce         2 (n-1)/n * S         2 (n-1)
reduce-scatter     (n-1)/n * S           n-1
all-gather         (n-1)/n * S           n-1
all-to-all         (n-1)/n * S           n-1
point-to-point     S                     1
=================  ====================  ==============

and the time is ``steps * alpha + bytes / (beta * eta)`` with alpha the per-step latency
(``GPUSpec.link_latency_s``), beta the per-GPU unidirectional bandwidth of the link the group uses and
eta the achievable fraction of it (``GPUSpec.network_efficiency``).

**Volumes per step** (planner reference notes section 2.6):

- DP, ZeRO-0/1: one all-reduce (ZeRO-1: reduce-scatter + all-gather, same bytes) of the local gradients,
  2 Psi_local (d-1)/d elements, once per step (Rajbhandari et al. 2020, ZeRO, section 7), in the reduce
  dtype (:func:`gradient_reduce_bytes`).
- ZeRO-2: the gradient reduce-scatter runs for every micro-batch (only a shard of the gradients is kept),
  then one parameter all-gather per step.
- ZeRO-3 / FSDP: parameter all-gather in forward and again in backward, plus the gradient reduce-scatter,
  each per micro-batch: 3 Psi_local (d-1)/d, 1.5x DP (ZeRO section 7.2.2), in one call per FSDP unit
  (:func:`fsdp_units`: each block and the root), each paying the ring's latency steps. With
  ``Layout.zero3_gather="step"`` (FSDP2 without reshard-after-forward and with gradient sync on the last
  micro-batch only, torchtitan under PP) one all-gather and one reduce-scatter per step. HSDP shards inside a node
  and adds an all-reduce of the gradient shard across the replicas once per step.
- TP (Megatron, Shoeybi et al. 2019; Narayanan et al. 2021 section 3.2): 2 all-reduces of b s h
  activations in forward and 2 in backward per layer per micro-batch; full recompute adds the 2 forward
  ones again. With sequence parallelism each all-reduce becomes a reduce-scatter plus an all-gather,
  the same bytes (Korthikanti et al. 2022 section 4.2.2). A parallel attention+MLP block
  (``ModelSpec.parallel_block``) runs one per direction instead of two (:func:`tp_collectives_per_layer`).
- PP: per micro-batch and per (virtual) stage boundary, the activations forward and their gradients
  backward, b s h elements each (divided by t with sequence parallelism, Narayanan 2021 section 4.1);
  interleaving multiplies the count by v.
- CP (ring attention, Liu et al. 2023; Megatron-Core context parallelism): each rank's K,V block goes
  round the ring in c - 1 point-to-point steps per forward pass and again in backward with the dK,dV
  accumulators (the bytes of a K,V all-gather per pass plus a dK,dV reduce-scatter); torch's context
  parallelism (torchtitan) all-gathers K,V once per pass instead and sends fp32 dK,dV round the ring c
  times (``RingRecipe.rotate``).
- EP (GShard, Lepikhin et al. 2020): dispatch and combine all-to-alls in forward and in backward, each
  carrying k b s h / c elements (x capacity factor) per MoE layer per micro-batch (the forward dispatch in
  FP8 for FP8 recipes, DeepSeek-V3 section 3.3.2); expert gradients are reduced over the
  expert-data-parallel group (d c t / (e etp) ranks).

**Placement.** Ranks are ordered tp (fastest varying), cp, dp, pp (Megatron-LM's default
``tp-cp-ep-dp-pp``); expert groups take ``etp * ep`` consecutive ranks. A group whose ranks span at most
one node (``stride * size <= gpus_per_node``) uses the intra-node link (NVLink), otherwise the network
(Narayanan 2021 takeaway: keep TP inside a node): a ring collective at the NICs of the group's ranks in a
node, at most NVLink's bandwidth; all-to-all and point-to-point at one NIC per rank
(:func:`group_bandwidth_bytes_per_s`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ..arch.spec import ModelSpec
from ..errors import ConfigError, explain
from ..hardware.spec import ClusterSpec
from .layout import Layout, TrainSpec
from .policy import SavePolicy

if TYPE_CHECKING:  # pragma: no cover
    from .memory import MemoryConventions

Kind = Literal["all_reduce", "reduce_scatter", "all_gather", "all_to_all", "p2p"]
Link = Literal["intra", "inter"]

_KINDS = ("all_reduce", "reduce_scatter", "all_gather", "all_to_all", "p2p")


def ring_factors(kind: str, n: int) -> tuple[float, int]:
    """Bytes sent per rank per byte of message, and latency steps, for a ring collective over ``n`` ranks.

    >>> ring_factors("all_reduce", 8)
    (1.75, 14)
    >>> ring_factors("all_gather", 1)
    (0.0, 0)
    """
    if kind not in _KINDS:
        raise ConfigError(explain("unknown collective", value=kind, allowed=", ".join(_KINDS)))
    if n < 1:
        raise ConfigError(explain("a collective needs at least one rank", value=n, allowed="n >= 1"))
    if n == 1:
        return 0.0, 0
    if kind == "all_reduce":
        return 2.0 * (n - 1) / n, 2 * (n - 1)
    if kind == "p2p":
        return 1.0, 1
    return (n - 1) / n, n - 1


def collective_time_s(
    kind: str, message_bytes: float, n: int, *, bandwidth_bytes_per_s: float, latency_s: float,
    efficiency: float = 1.0,
) -> float:
    """Alpha-beta time of one ring collective: ``steps * latency + factor * S / (bandwidth * efficiency)``.

    >>> round(collective_time_s("all_reduce", 1e9, 8, bandwidth_bytes_per_s=100e9, latency_s=0), 6)
    0.0175
    """
    factor, steps = ring_factors(kind, n)
    if message_bytes < 0:
        raise ConfigError(explain("message size must be non-negative", value=message_bytes))
    return steps * latency_s + factor * message_bytes / (bandwidth_bytes_per_s * efficiency)


def group_link(stride: int, size: int, gpus_per_node: int) -> Link:
    """``"intra"`` when a group of ``size`` ranks spaced ``stride`` apart fits in one node, else ``"inter"``.

    >>> group_link(1, 8, 8), group_link(8, 16, 8), group_link(2, 8, 8)
    ('intra', 'inter', 'inter')
    """
    return "intra" if stride * size <= gpus_per_node else "inter"


#: Collectives that NCCL runs as rings (or trees) whose inter-node flows it spreads over the NICs of a node
_RING_KINDS = ("all_reduce", "reduce_scatter", "all_gather")


def group_bandwidth_bytes_per_s(kind: str, stride: int, size: int, gpus_per_node: int, *,
                                intra_bytes_per_s: float, nic_bytes_per_s: float) -> float:
    """Per-rank bandwidth of a ``kind`` collective over ``size`` ranks spaced ``stride`` apart: the intra-node
    link inside a node; across nodes, for ring collectives, the NICs of all the group's ranks in a node
    (``k = gpus_per_node // stride`` of them when the group spans whole nodes, else the fewest it has in
    a node; at most ``size``), at most the intra-node link; one NIC for all-to-all and point-to-point.

    A ring through the group's ``k`` GPUs of each node crosses each node boundary once, so its per-rank
    bytes ((n-1)/n S per rank for an all-gather) are what each inter-node hop carries; NCCL runs several
    such rings at once, each entering and leaving a node through a different NIC and crossing the GPUs
    in between over NVLink, so a node's ``k`` NICs share the traffic and each rank's share moves at
    about ``k`` NICs' speed, bounded by NVLink (NVIDIA/nccl#412, sjeaugey: "NCCL is able to aggregate the
    bandwidth of multiple NICs ... data can flow from the NIC to the nearest GPU, go through all the
    other GPUs through NVLink, then exit from the last GPU, back to the NIC"; NVIDIA/nccl#812: "On an
    Nvidia DGX-A100 system we have 8x200Gbit/s IB cards and we measure 192GB/s AllReduce BusBW", where
    one 200 Gb/s NIC is 25 GB/s; NVIDIA/nccl-tests#277: all-reduce "will form multiple rings so that it
    can utilize all the available NICs"). A group with one rank per node (data parallelism across TP
    groups: ``stride >= gpus_per_node``) has one NIC per rank. An all-to-all sends each rank's remote
    bytes through its own NIC; a point-to-point send is one flow.

    >>> group_bandwidth_bytes_per_s("all_gather", 1, 64, 8, intra_bytes_per_s=300e9, nic_bytes_per_s=25e9)
    200000000000.0
    >>> group_bandwidth_bytes_per_s("all_gather", 8, 64, 8, intra_bytes_per_s=300e9, nic_bytes_per_s=25e9)
    25000000000.0
    >>> group_bandwidth_bytes_per_s("all_to_all", 1, 64, 8, intra_bytes_per_s=300e9, nic_bytes_per_s=25e9)
    25000000000.0
    """
    if group_link(stride, size, gpus_per_node) == "intra":
        return intra_bytes_per_s
    if kind not in _RING_KINDS or stride >= gpus_per_node:
        return nic_bytes_per_s
    # the group's ranks in its emptiest node: its span (stride * size consecutive ranks) and the nodes
    # overlap by multiples of gcd(span, gpus_per_node) ranks, so a group whose span is not a whole number
    # of nodes (dp 12 on 8-GPU nodes) has as few as gcd / stride ranks in some node; the ring runs at the
    # NICs of that node, and the groups sharing it never claim more than the node has
    k = min(size, max(1, math.gcd(stride * size, gpus_per_node) // stride))
    return min(k * nic_bytes_per_s, intra_bytes_per_s)


@dataclass(frozen=True)
class Collective:
    """One kind of collective that a GPU takes part in during a step, summed over the step."""

    name: str
    """What it does, e.g. ``"tp all-reduce"``."""
    kind: str
    """all_reduce, reduce_scatter, all_gather, all_to_all or p2p."""
    group: str
    """Mesh axis it runs over: dp, tp, pp, cp, ep, edp (expert data-parallel), etp (a MoE token dispatcher's
    expert tensor-parallel gathers) or rep (HSDP replicas)."""
    group_size: int
    """Ranks in the group."""
    link: str
    """``intra`` (NVLink-class) or ``inter`` (network)."""
    message_bytes: float
    """Size S of one call, bytes."""
    calls_per_step: float
    """How many such calls one GPU makes per optimizer step."""
    traffic_bytes: float
    """Bytes this GPU sends per step over all calls (ring factor x S x calls)."""
    time_s: float
    """Alpha-beta time of all calls in one step, seconds."""
    critical: bool
    """True when it sits on the compute critical path (TP, CP, EP, PP); False for DP/ZeRO traffic,
    which the step-time model overlaps with backward."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CommBreakdown:
    """Every collective of one step for one (most-loaded) GPU."""

    collectives: tuple[Collective, ...] = field(default_factory=tuple)

    def time_s(self, *, groups: tuple[str, ...] | None = None, critical: bool | None = None,
               kind: str | None = None) -> float:
        """Total time of the selected collectives (all by default; ``kind``: one kind only), seconds."""
        return sum(
            c.time_s for c in self.collectives
            if (groups is None or c.group in groups) and (critical is None or c.critical == critical)
            and (kind is None or c.kind == kind)
        )

    def traffic_bytes(self, *, link: str | None = None) -> float:
        """Bytes sent per step by this GPU (on one link, or all)."""
        return sum(c.traffic_bytes for c in self.collectives if link is None or c.link == link)

    def by_group(self) -> dict[str, float]:
        """Seconds per mesh axis."""
        out: dict[str, float] = {}
        for c in self.collectives:
            out[c.group] = out.get(c.group, 0.0) + c.time_s
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "collectives": [c.to_dict() for c in self.collectives],
            "traffic_bytes_intra": self.traffic_bytes(link="intra"),
            "traffic_bytes_inter": self.traffic_bytes(link="inter"),
            "time_s_by_group": self.by_group(),
        }


def activation_bytes(precision: str) -> float:
    """Bytes per activation element exchanged by TP/PP/CP/EP (fp32 only for the fp32 recipe)."""
    return 4.0 if precision == "fp32" else 2.0


def tp_all_gather_fraction(precision: str) -> float:
    """Bytes of a sequence-parallel TP all-gather relative to a bf16 one: FP8 recipes gather fp8 (1 byte)
    linear inputs and output gradients (torchao Float8 TP; TransformerEngine gathers fp8 inputs too), others
    gather activations as they are.

    >>> tp_all_gather_fraction("fp8"), tp_all_gather_fraction("bf16")
    (0.5, 1.0)
    """
    return 1.0 / activation_bytes(precision) if precision == "fp8" else 1.0


def gradient_reduce_bytes(precision: str, conventions: MemoryConventions | None = None) -> float:
    """Bytes per gradient element in the DP reduction (the reduce dtype): the conventions'
    ``grad_reduce_bytes`` when set (FSDP2's ``MixedPrecisionPolicy.reduce_dtype``: fp32 in torchtitan),
    else fp32 when gradients accumulate in fp32 (Megatron's main_grad, ``bf16-fp32-grad``) or train in
    fp32, else 2.

    >>> from scalelab.planner.memory import MemoryConventions
    >>> gradient_reduce_bytes("bf16"), gradient_reduce_bytes("bf16", MemoryConventions(grad_reduce_bytes=4))
    (2.0, 4.0)
    """
    if conventions is not None and conventions.grad_reduce_bytes is not None:
        return float(conventions.grad_reduce_bytes)
    return 4.0 if precision in ("fp32", "bf16-fp32-grad") else 2.0


def param_gather_bytes(precision: str) -> float:
    """Bytes per parameter element in ZeRO all-gathers (the 16-bit working copy; fp32 for fp32)."""
    return 4.0 if precision == "fp32" else 2.0


def zero3_param_gather_bytes(model: ModelSpec, layout: Layout, precision: str, dp: float,
                             conventions: MemoryConventions | None) -> tuple[float, float]:
    """Bytes per parameter of the ZeRO-3/FSDP parameter all-gathers: (dense, routed-expert) parameters of
    the most-loaded rank. What the memory model counts for the gathered copy
    (:func:`~scalelab.planner.memory.zero3_gather_weight_bytes_per_param`): the 16-bit copy, or
    ``zero3_gather_weight_bytes`` (FSDP2's Float8 all-gather sends fp8: torchao
    ``WeightWithDynamicFloat8CastTensor.fsdp_pre_all_gather`` casts the shard to fp8 before the
    all-gather); with ``low_precision_gather_linears_only`` only the blocks' weight matrices go in fp8,
    the embedding, head and norms of the rank's share (:func:`local_params`) in 16 bits. ``dp``: the
    data-parallel shard degree excluding CP (``low_precision_gather_needs_dp_shard``).

    >>> from scalelab import get_model
    >>> from scalelab.planner.memory import MemoryConventions
    >>> m = get_model("llama-3.1-8b")
    >>> zero3_param_gather_bytes(m, Layout(zero=3), "fp8", 8, None)
    (2.0, 2.0)
    >>> conv = MemoryConventions(zero3_gather_weight_bytes=1.0, low_precision_gather_linears_only=True)
    >>> round(zero3_param_gather_bytes(m, Layout(zero=3), "fp8", 8, conv)[0], 3)   # 1.05B of 8.03B in bf16
    1.131
    """
    from .memory import zero3_gather_weight_bytes_per_param

    sixteen = param_gather_bytes(precision)
    if conventions is None:
        return sixteen, sixteen
    gw = zero3_gather_weight_bytes_per_param(conventions, precision, dp)
    if gw == sixteen or not conventions.low_precision_gather_linears_only:
        return gw, gw
    c = _counts(model)
    dense, _ = local_params(model, layout)
    per_stage = layout.stage_layers(model.n_layers)
    matrices = (c.total - c.embedding - c.experts_routed - c.norms - c.router) / model.n_layers * per_stage / layout.tp
    frac = min(1.0, matrices / dense) if dense > 0 else 1.0
    return frac * gw + (1.0 - frac) * sixteen, gw


#: How each CP implementation exchanges K,V (:class:`RingRecipe`): ``p2p`` passes blocks round the ring,
#: one per step; ``allgather`` gathers the other ranks' K,V once per attention pass.
ROTATE_METHODS = ("p2p", "allgather")


@dataclass(frozen=True)
class RingRecipe:
    """What one context-parallel implementation moves: its K,V exchange between ranks (``rotate``,
    ``grad_bytes``, ``kv_expanded``; :func:`comm_per_step`) and the HBM traffic of one ring step beyond
    its attention kernel (the ``*_bytes`` fields, bytes per element of the rank's local queries (q) or
    keys and values (kv, K and V counted apart); ``corrections`` of
    :func:`~scalelab.planner.step_time.cp_ring_cost`). A framework profile's ``cp_ring``.

    ``fwd_*``: merging one step's partial output and statistics into the running result, per forward
    pass (a save policy that reruns attention pays it twice); ``bwd_*``: accumulating one step's dQ and
    dK, dV. ``kv_expanded``: K and V reach the kernel expanded to every query head (``repeat_kv`` before
    SDPA), so a grouped-query model moves ``n_heads / n_kv_heads`` times its K,V width, in HBM and between
    ranks.

    ``rotate``: ``"p2p"``: each of the c - 1 ring steps of a pass sends the current K,V block to the
    next rank while the step's attention runs (Liu et al. 2023, Ring Attention, sec. 3; TransformerEngine's
    P2P context parallelism); ``"allgather"``: one all-gather of every rank's K,V block per pass, issued
    before the pass's first (local, causal) attention call and awaited before the second, so only that
    first call hides it, and in backward the dK,dV accumulators still travel round the ring, one send
    after each of the c calls, each awaited after the next call and the last one right after the loop
    (torch's ``_AllGatherRotater`` and ``_templated_ring_attention_backward``; torchtitan's default
    ``context_parallel_rotate_method``). ``grad_bytes``: bytes per dK,dV element sent (torch accumulates
    and sends them in fp32: ``convert_to_f32``).
    """

    fwd_q_bytes: float
    fwd_kv_bytes: float
    bwd_q_bytes: float
    bwd_kv_bytes: float
    kv_expanded: bool = False
    rotate: str = "p2p"
    grad_bytes: float = 2.0
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("fwd_q_bytes", "fwd_kv_bytes", "bwd_q_bytes", "bwd_kv_bytes", "grad_bytes"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(explain(f"RingRecipe.{name} must be a finite number of bytes >= 0", value=v,
                                          fix="pass the bytes per element one ring step reads and writes, e.g. 10"))
        if self.rotate not in ROTATE_METHODS:
            raise ConfigError(explain("unknown RingRecipe.rotate", value=self.rotate, allowed=", ".join(ROTATE_METHODS),
                                      fix="'p2p' for a ring of sends (TransformerEngine), 'allgather' for torch's"))

    def bytes_per_step(self, q_elems: float, kv_elems: float, n_fwd: int) -> float:
        """Bytes one ring step moves per token and layer with ``n_fwd`` forward passes of attention."""
        return (n_fwd * (self.fwd_q_bytes * q_elems + self.fwd_kv_bytes * kv_elems)
                + self.bwd_q_bytes * q_elems + self.bwd_kv_bytes * kv_elems)

    def kv_width(self, model: ModelSpec) -> float:
        """K and V elements per token (all heads, before tp) as this implementation stores and sends them."""
        kv = float(model.kv_dim + model.v_dim)
        if self.kv_expanded and model.mla is None:
            kv *= model.n_heads / model.n_kv_heads
        return kv


RING_TRANSFORMER_ENGINE = RingRecipe(
    fwd_q_bytes=10.0, fwd_kv_bytes=0.0, bwd_q_bytes=8.0, bwd_kv_bytes=8.0, source=(
        "TransformerEngine AttnFuncWithCPAndKVP2P (Megatron-Core, NeMo): each step's partial output merged "
        "into an fp32 accumulator by a fused kernel (read 2, read and write 4 bytes per element); dQ and "
        "dK, dV accumulated in fp32 (read and write 4 each); K,V blocks sent point to point, one per step"))
"""Fused corrections (the default of every profile but torchtitan's)."""

RING_TORCH_ALLGATHER = RingRecipe(
    fwd_q_bytes=38.0, fwd_kv_bytes=4.0, bwd_q_bytes=24.0, bwd_kv_bytes=25.0, kv_expanded=True,
    rotate="allgather", grad_bytes=4.0, source=(
        "torch/distributed/tensor/experimental/_attention.py of late 2024 (torchtitan 9dec370's runs used "
        "torch 1963fc8; the merge and backward are the same in mid-2025), eager ops per step: _SDPAMerger "
        "casts the bf16 output to fp32 (2 + 4), out - block_out (4 + 4 + 4), sigmoid(lse) * (...) (4 + 4), "
        "out - (...) (4 + 4 + 4) = 38 "
        "per query element; torch.cat of K and V for the next send (2 + 2 per element); backward: flash "
        "backward's per-call dot(dO, O) and fp32 dQ accumulator (memset, convert: 2 + 2 + 4 + 4 + 2 = 14), "
        "grad_query += (4 + 2 + 4); per K,V element: _partial_update's in-place add on half and torch.cat "
        "of the whole fp32 tensor (5 + 8), torch.cat of fp32 dK, dV for the all-to-all (4 + 4), torch.cat "
        "of K, V for the send (2 + 2); torchtitan's model repeats K, V to every head before SDPA. "
        "Transfers: _AllGatherRotater all-gathers K,V once per pass (exchange_buffers at the first step, "
        "next_buffer waits at the second); the dK,dV go round with _AllToAllRotater (permute_tensor) in "
        "fp32 after every step, the last awaited right after the loop"))
"""torch's context parallelism as torchtitan ran it (eager fp32 merges, K,V at every query head, one K,V
all-gather per pass, fp32 dK,dV round the ring)."""

#: How a MoE layer's experts move their tensor-parallel traffic (``comm_per_step(moe_tp_dispatch=)``, a framework
#: profile's ``moe_tp_dispatch``): ``"gemm"``, like a dense MLP's (an all-gather of the layer input before the
#: first expert GEMM and a reduce-scatter after the last, one activation each, under the profile's
#: ``tp_overlap``); ``"alltoall"``, Megatron-Core's alltoall token dispatcher (the routed copies gathered and
#: scattered over the expert's TP ranks outside the GEMM overlap: :func:`_moe_dispatch_tp_collectives`).
MOE_TP_DISPATCH = ("gemm", "alltoall")


@functools.lru_cache(maxsize=64)
def _counts(model: ModelSpec):
    """``model.n_params()``, cached: specs are frozen and hashable, and a search asks thousands of times."""
    return model.n_params()


def local_params(model: ModelSpec, layout: Layout) -> tuple[float, float]:
    """(non-expert, routed-expert) parameters held by the most-loaded rank before ZeRO sharding.

    Non-expert weights are split over tp and the ceil(L/p) layers of the biggest stage; the embedding
    and output head are split over tp and placed on the first and last stage (the larger of the two
    counts). Routed experts are split over ``ep * etp`` (Megatron-Core's expert buckets).
    """
    c = _counts(model)
    L, p = model.n_layers, layout.pp
    per_stage_layers = layout.stage_layers(L)
    body = c.total - c.embedding - c.experts_routed
    body_per_layer = body / L
    emb_share = c.embedding if p == 1 else c.embedding / (1 if model.tied_embeddings else 2)
    dense = (body_per_layer * per_stage_layers + emb_share) / layout.tp
    routed = c.experts_routed / L * per_stage_layers / (layout.ep * layout.expert_tp) if model.moe else 0.0
    return dense, routed


@dataclass(slots=True)
class _StepShape:
    """The sizes of one optimizer step that every parallelism's collectives are computed from (a plain
    slotted record, not frozen: a search builds one per candidate layout)."""

    model: ModelSpec
    train: TrainSpec
    layout: Layout
    dp: int
    """Data-parallel degree d."""
    micro_batches: int
    """Micro-batches m per step per pipeline."""
    stage_layers: int
    """Layers on the most-loaded pipeline stage, ceil(L / p)."""
    moe_layers_stage: int
    """MoE layers on the most-loaded stage (0 for a dense model)."""
    tokens_mb: float
    """Tokens of one micro-batch on one CP rank, b s / c."""
    act_bytes: float
    """Bytes per activation element exchanged."""
    policy: SavePolicy
    """``layout.save_policy``: what the backward pass recomputes."""
    gather_bytes: tuple[float, float] = (2.0, 2.0)
    """Bytes per (dense, routed) parameter in ZeRO-3 all-gathers (:func:`zero3_param_gather_bytes`)."""
    grad_bytes: float = 2.0
    """Bytes per gradient element in the data-parallel reduction (:func:`gradient_reduce_bytes`)."""


class _CollectiveList:
    """Collects :class:`Collective` entries, timing each on the link its group uses."""

    def __init__(self, cluster: ClusterSpec) -> None:
        gpu = cluster.gpu
        self.gpus_per_node = cluster.gpus_per_node
        self._intra = gpu.intra_node_bandwidth_bytes_per_s
        self._inter = gpu.inter_node_bandwidth_bytes_per_s
        self._lat, self._eta = gpu.link_latency_s, gpu.network_efficiency
        self.out: list[Collective] = []

    def add(self, name: str, kind: str, group: str, n: int, stride: int, msg: float, calls: float,
            critical: bool) -> None:
        """Append ``calls`` calls per step of a ``kind`` collective of ``msg`` bytes over ``n`` ranks spaced
        ``stride`` apart; nothing when the group, the message or the call count is empty."""
        if n <= 1 or msg <= 0 or calls <= 0:
            return
        link = group_link(stride, n, self.gpus_per_node)
        bw = group_bandwidth_bytes_per_s(kind, stride, n, self.gpus_per_node, intra_bytes_per_s=self._intra,
                                         nic_bytes_per_s=self._inter)
        one = collective_time_s(kind, msg, n, bandwidth_bytes_per_s=bw, latency_s=self._lat, efficiency=self._eta)
        factor, _ = ring_factors(kind, n)
        self.out.append(Collective(name, kind, group, n, link, msg, calls, factor * msg * calls, one * calls,
                                   critical))


def tp_collectives_per_layer(model: ModelSpec, *, experts_without_tp: bool = False) -> int:
    """TP collectives per layer and direction for one micro-batch: the forward reductions of the row-parallel
    outputs (all-reduce, or reduce-scatter with sequence parallelism), and as many conjugates in backward (the
    all-reduce or reduce-scatter of the column-parallel inputs' gradient).

    2 for a sequential block (after attention and after the MLP; Shoeybi et al. 2019 Fig. 4). 1 for a
    parallel block (``ModelSpec.parallel_block``): attention and MLP read the same input and their partial
    outputs are summed before one reduction (GPT-NeoX ``megatron/model/transformer.py``, ``gpt_j_residual``:
    "we can do a single allreduce after we add mlp / attn outputs"), and the shared input's gradient is
    reduced once. 1 also for a MoE layer whose experts have no TP (the EP combine replaces the MLP's).

    >>> from scalelab.arch import get_model
    >>> tp_collectives_per_layer(get_model("llama-3.1-8b")), tp_collectives_per_layer(get_model("falcon-180b"))
    (2, 1)
    """
    return 1 if model.parallel_block or experts_without_tp else 2


def _tp_collectives(acc: _CollectiveList, st: _StepShape, moe_tp_dispatch: str = "gemm") -> None:
    """Tensor parallelism: per layer per micro-batch, :func:`tp_collectives_per_layer` all-reduces (or
    reduce-scatter + all-gather pairs with sequence parallelism) of ``tokens_mb * d_model`` activations in
    each direction (2 in a sequential block, 1 in a parallel one or in a MoE layer whose experts have no
    TP), as many more with full recompute, and as many more all-gathers alone with a save policy that
    re-gathers the sequence-parallel inputs (``SavePolicy.reruns_tp_all_gathers``: torchtitan's op-level SAC).

    A parallel block whose two branches have their own norms (Falcon-180B) is charged the same one call:
    the block's input is gathered (sequence parallelism) or marked for the backward all-reduce once, before
    both norms, which then run on every TP rank.

    ``moe_tp_dispatch="alltoall"`` (:data:`MOE_TP_DISPATCH`): the experts' TP traffic is the token
    dispatcher's, in group ``etp`` (:func:`_moe_dispatch_tp_collectives`), and a MoE layer keeps only its
    attention's TP collectives here."""
    model, train, layout = st.model, st.train, st.layout
    t, m, L_stage, moe_layers_stage = layout.tp, st.micro_batches, st.stage_layers, st.moe_layers_stage
    if t <= 1:
        return
    fwd_mult = 2 if st.policy.reruns_tp_forward else 1  # full recompute reruns the forward ones
    msg = st.tokens_mb * model.d_model * st.act_bytes
    dense_n = tp_collectives_per_layer(model)
    dispatched = moe_tp_dispatch == "alltoall" and moe_layers_stage > 0 and layout.expert_tp > 1
    moe_n = tp_collectives_per_layer(model, experts_without_tp=model.moe is not None
                                     and (layout.expert_tp == 1 or dispatched))
    per_dir = dense_n * (L_stage - moe_layers_stage) + moe_n * moe_layers_stage  # one direction, per micro-batch
    calls = m * per_dir * (fwd_mult + 1)
    if dispatched:
        _moe_dispatch_tp_collectives(acc, st, m * moe_layers_stage * (fwd_mult + 1))
    regather = m * per_dir
    if layout.sequence_parallel:
        acc.add("tp reduce-scatter (SP)", "reduce_scatter", "tp", t, 1, msg, calls, True)
        ag_calls = calls + (regather if st.policy.reruns_tp_all_gathers else 0)
        if train.precision == "fp8":
            # torchao's Float8 TP casts a linear's sharded input (forward) and sharded output gradient
            # (backward) to fp8 before all-gathering it; reduce-scatters stay bf16
            # (torchao/float8/float8_tensor_parallel.py: Float8ColwiseParallel, Float8RowwiseParallel)
            acc.add("tp all-gather (SP, fp8)", "all_gather", "tp", t, 1, msg * tp_all_gather_fraction("fp8"),
                    ag_calls, True)
        else:
            acc.add("tp all-gather (SP)", "all_gather", "tp", t, 1, msg, ag_calls, True)
    else:
        acc.add("tp all-reduce", "all_reduce", "tp", t, 1, msg, calls, True)


def _moe_dispatch_tp_collectives(acc: _CollectiveList, st: _StepShape, calls: float) -> None:
    """Megatron-Core's alltoall token dispatcher with expert tensor parallelism (``etp > 1``): after the EP
    all-to-all, each rank all-gathers over the expert's TP ranks the tokens routed to its local experts
    (``gather_from_sequence_parallel_region``), and reduce-scatters the experts' output before the return
    all-to-all (``reduce_scatter_to_sequence_parallel_region``; their autograd swaps them in backward).
    The gathered tensor holds every routed copy: ``top_k`` x capacity factor times a micro-batch's tokens,
    in the activation dtype (bf16 under fp8: the tokens are cast inside the experts' GEMMs). These are plain
    NCCL calls outside Transformer Engine's GEMM overlap, so they sit in group ``etp``, which
    ``model_step_time`` never hides. Source: Megatron-LM core_v0.9.0
    ``megatron/core/transformer/moe/token_dispatcher.py``, ``MoEAlltoAllTokenDispatcher.token_permutation``
    and ``token_unpermutation``. ``calls`` per kind per step: one per MoE layer and micro-batch and pass."""
    model, layout = st.model, st.layout
    assert model.moe is not None
    msg = st.tokens_mb * model.moe.top_k * (model.moe.capacity_factor or 1.0) * model.d_model * st.act_bytes
    acc.add("etp all-gather (MoE dispatch)", "all_gather", "etp", layout.expert_tp, 1, msg, calls, True)
    acc.add("etp reduce-scatter (MoE combine)", "reduce_scatter", "etp", layout.expert_tp, 1, msg, calls, True)


def _cp_collectives(acc: _CollectiveList, st: _StepShape, recipe: RingRecipe) -> None:
    """Context parallelism: each rank's K,V block (``b s / c`` tokens of ``recipe.kv_width / t`` elements)
    reaches the other c - 1 ranks in every attention pass, and the dK,dV accumulators go round in
    backward, as ``recipe.rotate`` says (:class:`RingRecipe`)."""
    model, layout = st.model, st.layout
    t, c, b, s = layout.tp, layout.cp, layout.micro_batch, st.train.seq_len
    if c <= 1:
        return
    kv_block = b * s / c * recipe.kv_width(model) / t * st.act_bytes
    n_fwd = 1 + (1 if st.policy.reruns_attention else 0)
    m, L_stage = st.micro_batches, st.stage_layers
    if recipe.rotate == "allgather":
        # torch's _AllGatherRotater: one all-gather of all c blocks per pass (forward, recomputed forward,
        # backward); _templated_ring_attention_backward sends the accumulated dK,dV to the next rank after
        # each of its c calls (fp32 with convert_to_f32), so each block's gradient ends up home
        acc.add("cp all-gather K,V", "all_gather", "cp", c, t, c * kv_block, m * L_stage * (n_fwd + 1), True)
        acc.add("cp ring send/recv dK,dV", "p2p", "cp", c, t, kv_block * recipe.grad_bytes / st.act_bytes,
                m * L_stage * c, True)
        return
    # Each of the c - 1 ring steps of a pass sends this rank's current K,V block (b s / c tokens) to
    # its neighbour; backward sends K,V and their gradient accumulators (Liu et al. 2023, Ring
    # Attention, sec. 3; Megatron-Core / TransformerEngine's P2P context parallelism). The bytes equal
    # an all-gather of K,V per forward pass plus a reduce-scatter of dK,dV in backward; the step-time
    # model overlaps each transfer with one step's attention (step_time.cp_ring_cost).
    acc.add("cp ring send/recv K,V", "p2p", "cp", c, t, kv_block, m * L_stage * (n_fwd + 1) * (c - 1), True)
    acc.add("cp ring send/recv dK,dV", "p2p", "cp", c, t, kv_block * recipe.grad_bytes / st.act_bytes,
            m * L_stage * (c - 1), True)


def _pp_collectives(acc: _CollectiveList, st: _StepShape) -> None:
    """Pipeline parallelism: a micro-batch's activations forward and their gradients backward at every
    (virtual) stage boundary, ``tokens_mb * d_model`` elements each (``/ tp`` with sequence parallelism)."""
    layout = st.layout
    t, p, c, v = layout.tp, layout.pp, layout.cp, layout.interleave
    if p <= 1:
        return
    msg = st.tokens_mb * st.model.d_model * st.act_bytes / (t if layout.sequence_parallel else 1)
    acc.add("pp send/recv", "p2p", "pp", p, t * c * st.dp, msg, 2 * st.micro_batches * v, True)


def _ep_collectives(acc: _CollectiveList, st: _StepShape, ep_nodes_per_token: int | None) -> None:
    """Expert parallelism: dispatch and combine all-to-alls in forward and backward per MoE layer per
    micro-batch, ``top_k`` copies of each token (x capacity factor); with node-limited routing, one network
    all-to-all between nodes and one NVLink all-to-all inside the node."""
    model, train, layout = st.model, st.train, st.layout
    e, g_node = layout.ep, acc.gpus_per_node
    if model.moe is None or e <= 1 or not st.moe_layers_stage:
        return
    m, moe_layers_stage = st.micro_batches, st.moe_layers_stage
    policy = st.policy
    cap = model.moe.capacity_factor or 1.0
    tokens_rank = st.tokens_mb / (layout.tp if layout.sequence_parallel else 1)
    msg = tokens_rank * model.moe.top_k * model.d_model * st.act_bytes * cap
    n_a2a = 4 + (2 if policy.reruns_tp_forward else 0)
    span_nodes = -(-e * layout.expert_tp // g_node)
    if ep_nodes_per_token is not None and span_nodes > 1:
        # Node-limited routing (DeepSeek-V3 report sec. 2.1.2 and 3.2.2): a token goes to at most M
        # nodes; it crosses the network once per node (DeepEP forwards it to the node's experts over
        # NVLink), so the network carries min(M, k) copies, (nodes - 1) / nodes of them remote, and
        # NVLink the k copies inside the node.
        per_node = min(ep_nodes_per_token, model.moe.top_k, span_nodes) / model.moe.top_k
        calls = m * n_a2a * moe_layers_stage
        ib_msg = msg * per_node
        if train.precision in ("fp8", "fp4"):
            ib_msg *= (0.5 + (n_a2a - 1)) / n_a2a  # forward dispatch in FP8 (sec. 3.3.2)
        acc.add("ep all-to-all (network, node-limited)", "all_to_all", "ep", span_nodes, g_node, ib_msg, calls,
                True)
        acc.add("ep forward within node (NVLink)", "all_to_all", "ep", min(g_node, e), layout.expert_tp, msg,
                calls, True)
        return
    if train.precision in ("fp8", "fp4"):
        # FP8 recipes dispatch tokens in FP8 (1 byte) and combine and send gradients in BF16
        # (DeepSeek-V3 report section 3.3.2; Transformer Engine's FP8 all-to-all).
        n_dispatch = 1 + (1 if policy.reruns_tp_forward else 0)
        acc.add("ep all-to-all (fp8 dispatch)", "all_to_all", "ep", e, layout.expert_tp, msg / 2,
                m * n_dispatch * moe_layers_stage, True)
        n_a2a -= n_dispatch
    acc.add("ep all-to-all", "all_to_all", "ep", e, layout.expert_tp, msg, m * n_a2a * moe_layers_stage, True)


def _dp_collectives(acc: _CollectiveList, st: _StepShape, trainable_fraction: float) -> None:
    """Data parallelism and ZeRO: dense gradients are reduced over the ``dp * cp`` ranks holding the same
    weights (``"dp"``), routed experts' over the expert-data-parallel group (``"edp"``); see
    :func:`_zero_group_collectives` for what each group runs."""
    model, layout = st.model, st.layout
    t, c, d, e = layout.tp, layout.cp, st.dp, layout.ep
    dense_p, routed_p = local_params(model, layout)
    # Dense gradients are reduced over dp*cp (CP ranks hold replicas of the weights too); expert weights
    # over the expert-data-parallel group of d*c/e ranks.
    groups = [("dp", d * c, t, dense_p)]
    if routed_p:
        # Megatron-Core: experts are replicated over d*c*t / (e*etp) ranks (etp may differ from tp).
        groups.append(("edp", max(1, d * c * t // (e * layout.expert_tp)), layout.expert_tp * e, routed_p))
    for gname, n, stride, params in groups:
        if n > 1:
            _zero_group_collectives(acc, st, gname, n, stride, params, trainable_fraction,
                                    st.gather_bytes[gname == "edp"])


def fsdp_units(stage_layers: int) -> int:
    """Collective calls that one ZeRO-3 / FSDP all-gather or reduce-scatter of a stage's parameters takes:
    one per transformer block and one for the root module (embeddings, final norm and output head).

    FSDP wraps each block as its own unit and gathers, frees and reduces unit by unit (torchtitan's
    ``apply_fsdp`` calls ``fully_shard`` on every ``TransformerBlock`` and then on the whole model;
    llm-foundry's ``fsdp_wrap_fn`` wraps each ``MPTBlock``; Zhao et al. 2023, PyTorch FSDP, sec. 3.2.1).
    DeepSpeed ZeRO-3 fetches submodule by submodule in prefetch buckets of at most 5e7 parameters
    (``stage3_prefetch_bucket_size``), which is at least this many calls. Each call is a ring over the
    shard group and pays its ``n - 1`` latency steps (:func:`ring_factors`), so at thousands of ranks the
    gathers turn latency-bound: ``units * (n - 1) * alpha`` per pass, 0.33 s for 33 units over 2,048 ranks
    at the default 5 us (NCCL's own ring model charges 1.9-3.4 us per NVLink step and 4-14 us per network
    step: ``hwLat`` in NVIDIA/nccl ``src/graph/tuning.cc``).

    >>> fsdp_units(32)
    33
    """
    return max(1, int(stage_layers)) + 1


class ZeroCalls(NamedTuple):
    """How one data-parallel (DP/ZeRO) collective is issued in a step (:func:`zero_calls`)."""

    units: int
    """Calls per pass over the stage's parameters: :func:`fsdp_units` under ZeRO-3, else 1."""
    per_micro_batch: int
    """Passes per micro-batch; 0 when it runs once per step."""

    def passes(self, micro_batches: int) -> int:
        """Passes per step with ``micro_batches`` micro-batches."""
        return self.per_micro_batch * micro_batches if self.per_micro_batch else 1

    def per_step(self, micro_batches: int) -> int:
        """Calls per step with ``micro_batches`` micro-batches."""
        return self.passes(micro_batches) * self.units


def zero_calls(model: ModelSpec, layout: Layout, kind: str) -> ZeroCalls:
    """How a data-parallel group's collective of ``kind`` (one with ``Collective.critical`` False) runs
    under ``layout``'s ZeRO stage: the one place that says so, for :func:`comm_per_step` and for the
    search's bound, which rescales these collectives to other micro-batch counts
    (:class:`~scalelab.planner.step_time.StepTimeBound`).

    ``all_reduce`` (ZeRO-0's gradient all-reduce, HSDP's replica all-reduce) runs once per step; the gradient
    ``reduce_scatter`` once per step, or per micro-batch from ZeRO-2 on; the parameter ``all_gather`` once
    per step, or with ZeRO-3 for forward and backward of every micro-batch. ZeRO-3 issues its reduce-scatters
    and gathers as one call per FSDP unit (:func:`fsdp_units` of the most-loaded stage's ceil(L / p)
    layers), once per step with ``zero3_gather="step"``.

    >>> from scalelab import get_model
    >>> zero_calls(get_model("llama-3.1-8b"), Layout(pp=2, zero=3), "all_gather")
    ZeroCalls(units=17, per_micro_batch=2)
    """
    if kind == "all_reduce":
        return ZeroCalls(1, 0)
    if kind not in ("reduce_scatter", "all_gather"):
        raise ConfigError(explain("not a data-parallel collective", value=kind,
                                  allowed="all_reduce, reduce_scatter, all_gather"))
    z = layout.zero
    units = fsdp_units(layout.stage_layers(model.n_layers)) if z == 3 else 1
    if z == 3 and layout.zero3_gather == "step":
        return ZeroCalls(units, 0)
    if kind == "reduce_scatter":
        return ZeroCalls(units, 1 if z >= 2 else 0)
    return ZeroCalls(units, 2 if z == 3 else 0)


def _zero_group_collectives(acc: _CollectiveList, st: _StepShape, gname: str, n: int, stride: int,
                            params: float, tf: float, zero3_gather_bytes: float = 2.0) -> None:
    """The gradient and parameter collectives of one data-parallel group ``gname`` of ``n`` ranks spaced
    ``stride`` apart, whose ranks each hold ``params`` parameters (``tf`` of them trainable): ZeRO-0 one
    gradient all-reduce; ZeRO-1/2 a gradient reduce-scatter (ZeRO-2: per micro-batch) and a parameter
    all-gather per step; ZeRO-3 the parameter all-gather, ``zero3_gather_bytes`` per parameter, for forward
    and backward of every micro-batch (or once per step with ``zero3_gather="step"``); HSDP adds a replica
    all-reduce of the gradient shard."""
    layout, train, m = st.layout, st.train, st.micro_batches
    g_bytes = st.grad_bytes
    p_bytes = param_gather_bytes(train.precision)
    g_node = acc.gpus_per_node
    shard_n, rep_n = n, 1
    if layout.shard_group == "node" and layout.zero > 0:
        shard_n = max(1, min(n, g_node // stride)) if stride < g_node else 1
        rep_n = n // shard_n
    grad_msg = params * g_bytes * tf
    z = layout.zero
    ar, rs, ag = (zero_calls(st.model, layout, k) for k in ("all_reduce", "reduce_scatter", "all_gather"))
    if z == 0:
        acc.add(f"{gname} gradient all-reduce", "all_reduce", gname, n, stride, grad_msg, ar.per_step(m), False)
        return
    # ZeRO-3 runs its collectives per unit (one transformer block, or the root's embeddings and head), each
    # paying the ring's n - 1 latency steps: fsdp_units of the stage's bytes, not one call of all of them
    acc.add(f"{gname} gradient reduce-scatter", "reduce_scatter", gname, shard_n, stride, grad_msg / rs.units,
            rs.per_step(m), False)
    if z == 3:
        # parameters gathered for forward and again for backward of every micro-batch, or once per step
        # when they stay unsharded across the micro-batches (``Layout.zero3_gather``)
        acc.add(f"{gname} parameter all-gather", "all_gather", gname, shard_n, stride,
                params * zero3_gather_bytes / ag.units, ag.per_step(m), False)
    else:
        acc.add(f"{gname} parameter all-gather", "all_gather", gname, shard_n, stride, params * p_bytes * tf,
                ag.per_step(m), False)
    if rep_n > 1:  # HSDP: replicas all-reduce their gradient shard
        acc.add(f"{gname} replica all-reduce (HSDP)", "all_reduce", "rep", rep_n, stride * shard_n,
                grad_msg / shard_n, ar.per_step(m), False)


def comm_per_step(
    model: ModelSpec,
    cluster: ClusterSpec,
    train: TrainSpec,
    layout: Layout,
    *,
    dp: int | None = None,
    trainable_fraction: float = 1.0,
    ep_nodes_per_token: int | None = None,
    cp_ring: RingRecipe | None = None,
    memory_conventions: MemoryConventions | None = None,
    moe_tp_dispatch: str = "gemm",
) -> CommBreakdown:
    """Collectives one GPU runs in one optimizer step, with bytes, link and alpha-beta time.

    Parameters
    ----------
    model, cluster, train, layout
        What is trained, on what, how. ``layout.dp`` may be ``None``; pass the resolved ``dp``.
    dp
        Data-parallel degree (defaults to ``layout.dp`` or ``n_gpus / (tp * pp * cp)``).
    trainable_fraction
        Share of parameters that get gradients (LoRA: adapters only), which scales gradient traffic.
    ep_nodes_per_token
        Node-limited routing: each token reaches at most this many nodes, and crosses the network once
        per node (DeepSeek-V3: 4, with DeepEP-style forwarding over NVLink); ``None``: a plain all-to-all.
    cp_ring
        How context parallelism exchanges K,V and dK,dV (:class:`RingRecipe`, a framework profile's
        ``cp_ring``); ``None``: :data:`RING_TRANSFORMER_ENGINE`'s ring of bf16 sends.
    memory_conventions
        The memory model's conventions, for the bytes of ZeRO-3's parameter all-gathers
        (:func:`zero3_param_gather_bytes`: fp8 with a Float8 all-gather); ``None``: the 16-bit copy.
    moe_tp_dispatch
        How a MoE layer's experts move their tensor-parallel traffic (:data:`MOE_TP_DISPATCH`; a framework
        profile's ``moe_tp_dispatch``): ``"gemm"`` as a dense MLP's, ``"alltoall"`` Megatron-Core's token
        dispatcher (:func:`_moe_dispatch_tp_collectives`).

    Returns
    -------
    CommBreakdown

    Examples
    --------
    >>> from scalelab.arch.spec import ModelSpec
    >>> from scalelab.hardware.spec import ClusterSpec, GPUSpec
    >>> gpu = GPUSpec(name="x", peak_flops_per_s={"bf16": 1e15}, memory_bytes=80e9,
    ...               memory_bandwidth_bytes_per_s=3e12, intra_node_bandwidth_bytes_per_s=450e9,
    ...               inter_node_bandwidth_bytes_per_s=50e9)
    >>> m = ModelSpec(n_layers=4, d_model=1024, n_heads=8, d_ff=4096, vocab_size=32000)
    >>> cb = comm_per_step(m, ClusterSpec(gpu=gpu, n_gpus=16), TrainSpec(seq_len=1024, global_batch=32),
    ...                    Layout(tp=8))
    >>> sorted({c.group for c in cb.collectives})
    ['dp', 'tp']
    """
    if moe_tp_dispatch not in MOE_TP_DISPATCH:
        raise ConfigError(explain("unknown MoE tensor-parallel dispatch", value=moe_tp_dispatch,
                                  allowed=", ".join(MOE_TP_DISPATCH),
                                  fix="'gemm' (experts' TP traffic like a dense MLP's) or 'alltoall' "
                                      "(Megatron-Core's token dispatcher)"))
    t, p, c = layout.tp, layout.pp, layout.cp
    d = dp or layout.dp or max(1, cluster.n_gpus // (t * p * c))
    b, s = layout.micro_batch, train.seq_len
    L_stage = layout.stage_layers(model.n_layers)
    # MoE layers on the most-loaded stage: the dense leading layers sit on the first stage.
    moe_layers_stage = min(L_stage, model.n_moe_layers) if model.moe is not None else 0
    # ZeRO's data-parallel shard degree excluding CP, as memory_per_gpu counts it (HSDP: inside a node)
    dp_shard = (min(d * c, max(1, cluster.gpus_per_node // t)) if layout.shard_group == "node" else d * c) / c
    st = _StepShape(model, train, layout, dp=d, micro_batches=max(1, train.global_batch // (d * b)),
                    stage_layers=L_stage, moe_layers_stage=moe_layers_stage,
                    tokens_mb=b * s / c,  # tokens one rank's micro-batch holds (per cp shard)
                    act_bytes=activation_bytes(train.precision), policy=layout.save_policy,
                    gather_bytes=(zero3_param_gather_bytes(model, layout, train.precision, dp_shard,
                                                           memory_conventions)
                                  if layout.zero == 3 else (2.0, 2.0)),
                    grad_bytes=gradient_reduce_bytes(train.precision, memory_conventions))
    acc = _CollectiveList(cluster)
    _tp_collectives(acc, st, moe_tp_dispatch)
    _cp_collectives(acc, st, RING_TRANSFORMER_ENGINE if cp_ring is None else cp_ring)
    _pp_collectives(acc, st)
    _ep_collectives(acc, st, ep_nodes_per_token)
    _dp_collectives(acc, st, trainable_fraction)
    return CommBreakdown(tuple(acc.out))
