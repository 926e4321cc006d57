"""torch's AsyncTP (micro-pipelined tensor parallelism): which sequence-parallel collectives it hides
behind which GEMMs, and what stays on the critical path.

What ran (torchtitan ``parallelism.enable_async_tensor_parallel``, compiled only): inductor's post-grad
pass ``torch/_inductor/fx_passes/micro_pipeline_tp.py`` runs on the forward and on the backward graph
and rewrites

- ``all_gather_into_tensor`` whose gathered tensor is the left operand ``A`` of one or more ``mm`` /
  ``_scaled_mm`` (``_find_consumer_matmuls``) into ``symm_mem.fused_all_gather_matmul(A_shard, [B0,
  B1, ...])``: every GEMM that reads the gathered input is fed chunk by chunk;
- ``reduce_scatter_tensor`` whose input is the output of one ``mm`` (``_find_producer_matmul``: an ``mm``
  or ``reshape -> mm -> reshape``, nothing else) into ``symm_mem.fused_matmul_reduce_scatter``.

In a Llama block under sequence parallelism that fuses, per pass:

- forward: the gathers before ``wq, wk, wv`` and before ``w1, w3`` (one fused op each, all their GEMMs),
  the reduce-scatters after ``wo`` and ``w2``; a rerun forward (full activation checkpointing) again;
- backward: the gathers of the row-parallel layers' output gradient (the left operand of ``wo``'s and
  ``w2``'s input-gradient GEMMs); **not** the reduce-scatters of the column-parallel layers' input
  gradient when that gradient is a sum of several GEMMs (``wq + wk + wv``, ``w1 + w3``: an ``add`` is no
  ``mm``); a single column-parallel GEMM (fused q, k, v; a GELU MLP) is fused;
- the re-gathers of torchtitan's op-level SAC are counted as not fused (they feed the weight-gradient
  GEMMs as the right operand, and only the recomputed half of the GEMMs as ``A``).

In a parallel block (``ModelSpec.parallel_block``, one collective per direction, :func:`~scalelab.planner.comm.
tp_collectives_per_layer`) the same rules give: the forward gather feeds ``wq, wk, wv, w1, w3`` together when
one norm is shared (with two norms it feeds the norms, no ``mm``, and is not fused); the backward gather of the
summed output's gradient feeds ``wo``'s and ``w2``'s input-gradient GEMMs; neither reduce-scatter is fused
(forward: a sum of ``wo`` and ``w2``; backward: a sum of all the input projections' gradients).

How a fused op runs (``torch/distributed/_symmetric_memory/__init__.py``,
``_pipelined_multi_all_gather_and_consume`` and ``_pipelined_produce_and_all2all``): the tensor is split
in ``t`` chunks along M; the peers' chunks are pulled one after another with copy-engine copies from
symmetric memory, each followed by its chunk's GEMM, on two alternating streams ("cp from different
streams cannot overlap"). For the all-gather the local chunk's GEMM runs while the first remote chunk
is pulled; for the reduce-scatter the first chunk's GEMM runs before anything can be sent and the
rank's own chunk while the last one is pulled. Either way the ``t - 1`` transfers (the collective's
bandwidth time ``C``) can run beside ``t - 1`` of the ``t`` chunk GEMMs, so one fused collective costs

.. math::

    \\max(0,\\ C - \\eta\\,(1 - 1/t)\\,G) + \\text{copies}

over its GEMMs' time ``G``, where ``G`` is the GEMMs' time in ``t`` chunks of ``M / t`` rows (per-GEMM
roofline, :func:`~scalelab.planner.gemm.gemm_time_s`; the extra over one GEMM of ``M`` rows is on the
critical path too) and ``copies`` is what the fused op adds around the transfers: the all-gather first
copies the local shard into its symmetric buffer (read and write ``M / t`` rows), the reduce-scatter
sums the ``t`` partial chunks it received (read ``M`` rows, write ``M / t``), both at the planner's HBM
rate. ``eta`` (:data:`ASYNC_TP_HIDING_EFFICIENCY`) is the share of that GEMM time that really covers
transfers: the copy engines' traffic takes HBM bandwidth from the GEMMs, the barriers before each pull
and the two streams' scheduling leave gaps. It is the model's one constant, fitted on torchtitan's
docs/performance.md Table 4 pair (``benchmarks/planner_validation.py``, "AsyncTP").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..arch.spec import ModelSpec
from .comm import CommBreakdown
from .gemm import gemm_time_s, layer_linears
from .layout import Layout

__all__ = ["ASYNC_TP_HIDING_EFFICIENCY", "AsyncTPCost", "async_tp_cost", "async_tp_unfused_rs_per_layer"]

ASYNC_TP_HIDING_EFFICIENCY = 0.43
"""Share of a fused op's chunk-GEMM time under which its transfers hide (``eta`` in the module docstring;
1 would be a perfect pipeline). The one constant of the AsyncTP model, fitted on torchtitan's
docs/performance.md Table 4 pair (Llama 3.1 70B, torch.compile + Float8, full AC, 256 H100, FSDP32 x TP8:
829 vs 876 tokens/s/GPU, 1.057x; fitted 0.429 by ``benchmarks/planner_validation.py``, rounded). The
June 2025 benchmark of the same setup measured 1.16x (held out): Table 4 is December 2024's AsyncTP."""


@dataclass(frozen=True)
class AsyncTPCost:
    """What AsyncTP leaves of a step's TP collectives, seconds per step.

    ``exposed_s``: the TP time still on the critical path (collectives not fused, in full; fused ones'
    transfers the chunk GEMMs do not cover, their copies, sums and fixed costs; and the GEMMs' extra time
    in chunks); ``hidden_s``: what was taken off (``tp_s - exposed_s``, never below 0);
    ``fused_s``: the bandwidth time of the collectives it fuses; ``chunking_s``: the extra GEMM time of
    running them in ``t`` chunks (part of ``exposed_s``)."""

    exposed_s: float
    hidden_s: float
    fused_s: float
    chunking_s: float


def async_tp_unfused_rs_per_layer(model: ModelSpec, *, separate_qkv: bool) -> int:
    """Reduce-scatters per dense layer (forward without rerun, and backward) that AsyncTP cannot fuse: in a
    sequential block, one backward reduce-scatter for each column-parallel block whose input gradient is a
    sum of GEMMs (three q, k, v GEMMs; SwiGLU's two up GEMMs; the MLP's only in a dense model, whose every
    layer has one); in a parallel block both of its reduce-scatters (each reduces a sum of GEMMs).

    >>> from scalelab import get_model
    >>> async_tp_unfused_rs_per_layer(get_model("llama-3.1-8b"), separate_qkv=True)
    2
    """
    if model.parallel_block:
        return 2
    return int(separate_qkv) + int(model.ffn_kind == "swiglu" and model.moe is None)


def _per_call_s(comm: CommBreakdown, kind: str) -> float:
    """Seconds per call of the TP collectives of ``kind`` in ``comm`` (0 without any)."""
    time = calls = 0.0
    for col in comm.collectives:
        if col.group == "tp" and col.kind == kind:
            time += col.time_s
            calls += col.calls_per_step
    return time / calls if calls else 0.0


def async_tp_cost(model: ModelSpec, layout: Layout, comm: CommBreakdown, *, tokens_mb: float, n_micro: int,
                  stage_layers: int, rerun_forward: bool, gemm_flops_per_s: float, hbm_bytes_per_s: float,
                  gemm_input_bytes: float, act_bytes: float, ag_bytes: float, separate_qkv: bool,
                  hiding_efficiency: float = ASYNC_TP_HIDING_EFFICIENCY) -> AsyncTPCost:
    """TP time left on one GPU's critical path per step once AsyncTP fuses what it can (module docstring).

    Parameters
    ----------
    comm
        The step's collectives (:func:`~scalelab.planner.comm.comm_per_step`); its ``tp`` all-gathers and
        reduce-scatters (sequence parallelism) are the ones AsyncTP may fuse.
    tokens_mb
        Tokens of one micro-batch on one CP rank (M of the linear layers' GEMMs).
    n_micro, stage_layers
        Micro-batches per step and layers on the busiest pipeline stage.
    rerun_forward
        The save policy reruns the forward's collectives in backward (full recompute).
    gemm_flops_per_s, hbm_bytes_per_s, gemm_input_bytes
        The linear layers' GEMM rate, the planner's HBM rate and bytes per GEMM input element.
    act_bytes, ag_bytes
        Bytes per element of the activations and of what the all-gathers move (fp8 recipes gather fp8).
    separate_qkv
        q, k and v run as three GEMMs, so the backward reduce-scatter of their summed input gradient is
        not fused.
    hiding_efficiency
        ``eta``: share of the chunk GEMMs' time under which transfers hide, in [0, 1].

    >>> from scalelab import get_model, get_cluster, TrainSpec
    >>> from scalelab.planner.comm import comm_per_step
    >>> m, lay = get_model("llama-3.1-8b"), Layout(tp=8, sequence_parallel=True, micro_batch=2)
    >>> cb = comm_per_step(m, get_cluster("h100-sxm", 8), TrainSpec(seq_len=8192, global_batch=2), lay)
    >>> c = async_tp_cost(m, lay, cb, tokens_mb=16384, n_micro=1, stage_layers=32, rerun_forward=False,
    ...                   gemm_flops_per_s=5e14, hbm_bytes_per_s=2.6e12, gemm_input_bytes=2, act_bytes=2,
    ...                   ag_bytes=2, separate_qkv=True)
    >>> 0 < c.exposed_s < cb.by_group()["tp"] and c.hidden_s + c.exposed_s == cb.by_group()["tp"]
    True
    """
    t = layout.tp
    tp_s = comm.by_group().get("tp", 0.0)
    if t <= 1 or not layout.sequence_parallel or tp_s <= 0:
        return AsyncTPCost(tp_s, 0.0, 0.0, 0.0)
    ag_call, rs_call = _per_call_s(comm, "all_gather"), _per_call_s(comm, "reduce_scatter")
    h = float(model.d_model)
    M = tokens_mb
    out_bytes = max(2.0, gemm_input_bytes)

    def one(m: float, k: float, n: float) -> float:
        return gemm_time_s(m, k, n, flops_per_s=gemm_flops_per_s, bytes_per_s=hbm_bytes_per_s,
                           input_bytes=gemm_input_bytes, output_bytes=out_bytes)

    def gemms_s(shapes: list[tuple[float, float]]) -> tuple[float, float]:
        """(time in t chunks of M / t rows, extra over one GEMM of M rows) of forward-shaped GEMMs."""
        whole = sum(one(M, k, n) for k, n in shapes)
        chunked = t * sum(one(M / t, k, n) for k, n in shapes)
        return chunked, max(0.0, chunked - whole)

    # per-rank GEMM shapes (K, N) of one layer's linears, forward orientation (an MoE layer's MLP is not fused)
    qkv, wo, up, down = layer_linears(model, t, separate_qkv=separate_qkv)
    if not (model.moe is None or model.n_dense_mlp_layers == model.n_layers):
        up, down = [], []
    n_up = len(up)
    # seconds of one fused op's local copy (all-gather: read and write M / t rows) or partial sums
    # (reduce-scatter: read t chunks of M / t rows, write one)
    ag_fixed = 2.0 * M / t * h * ag_bytes / hbm_bytes_per_s
    rs_fixed = (M + M / t) * h * act_bytes / hbm_bytes_per_s

    fused: list[tuple[float, list[tuple[float, float]], float]] = []  # (call s, GEMMs, copies s) per layer
    if model.parallel_block:  # one gather per direction feeds both branches; no reduce-scatter fuses
        shared_norm = model.parallel_block_norms == 1
        fused += [(ag_call, qkv + up, ag_fixed)] * (2 if rerun_forward else 1) * int(shared_norm)
        fused.append((ag_call, wo + down, ag_fixed))  # backward: gather of the summed output's gradient
        return _async_tp_totals(fused, tp_s, n_micro * stage_layers, t, hiding_efficiency, gemms_s)
    fwd = [(ag_call, qkv, ag_fixed), (rs_call, wo, rs_fixed)]
    if up:
        fwd += [(ag_call, up, ag_fixed), (rs_call, down, rs_fixed)]
    fused += fwd * (2 if rerun_forward else 1)
    fused.append((ag_call, wo, ag_fixed))           # backward: gather of wo's output gradient
    if up:
        fused.append((ag_call, down, ag_fixed))     # backward: gather of w2's output gradient
    if len(qkv) == 1:
        fused.append((rs_call, qkv, rs_fixed))      # backward: one GEMM's input gradient
    if up and n_up == 1:
        fused.append((rs_call, up, rs_fixed))

    return _async_tp_totals(fused, tp_s, n_micro * stage_layers, t, hiding_efficiency, gemms_s)


def _async_tp_totals(fused: list[tuple[float, list[tuple[float, float]], float]], tp_s: float, k: int, t: int,
                     hiding_efficiency: float,
                     gemms_s: Callable[[list[tuple[float, float]]], tuple[float, float]]) -> AsyncTPCost:
    """:class:`AsyncTPCost` of ``k`` layers that each run the fused ops ``fused`` (call seconds, the GEMMs'
    (K, N) shapes, copy seconds); the rest of ``tp_s`` stays exposed in full."""
    per_layer_fused = per_layer_exposed = per_layer_chunking = 0.0
    for call_s, shapes, extra_s in fused:
        g, chunking = gemms_s(shapes)
        per_layer_fused += call_s
        per_layer_exposed += max(0.0, call_s - hiding_efficiency * (1.0 - 1.0 / t) * g) + extra_s + chunking
        per_layer_chunking += chunking
    fused_s = min(tp_s, k * per_layer_fused)
    exposed = tp_s - fused_s + k * per_layer_exposed
    return AsyncTPCost(exposed, max(0.0, tp_s - exposed), fused_s, k * per_layer_chunking)
