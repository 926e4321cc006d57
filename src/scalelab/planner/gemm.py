"""Shape-dependent time of the linear layers' GEMMs: a roofline per GEMM.

The step-time model times the linear layers at one efficiency per device (``GPUSpec.matmul_efficiency``,
set on large training GEMMs). A GEMM whose per-rank N or K is small does few FLOPs per byte it moves:
``(M, K) x (K, N)`` does ``2 M K N`` FLOPs and reads ``M K + K N`` elements and writes ``M N``, so for
large M its arithmetic intensity tends to ``2 K N / (b_in K + b_out N)`` FLOPs per byte, which for
``N = 128`` (a GQA key or value projection split over 8 ranks) is about 124 in bf16, below the ridge
point of the 500 W HBM2e H100 torchtitan ran on (0.54 x 912.5 TFLOP/s over 0.8 x 2.4 TB/s = 257 FLOP/B).
FP8 GEMMs read 1-byte inputs but write bf16 outputs and run at twice the peak, so their ridge point is
about twice as high and they turn memory-bound at about twice the width.

The model here is torchao's roofline for one GEMM (``torchao/testing/training/roofline_utils.py``,
``get_individual_gemm_time_sympy``, pytorch/ao at 36027d82d; the float8 training docs,
``docs/source/workflows/training.md`` "Performance", derive fp8-vs-bf16 speed-ups from it):

.. math::

    t = \\max\\left(\\frac{2MKN}{e\\,P}, \\frac{b_{in}(MK + KN) + b_{out} MN}{\\eta\\,B}\\right)

with ``e P`` the device's matmul rate for the GEMM's dtype and ``eta B`` the planner's HBM rate
(``HBM_EFFICIENCY``); ``b_in = b_out = 2`` for bf16, ``b_in = 1, b_out = 2`` for fp8 (torchao: "read in
float8, output in bfloat16"). Each linear runs three GEMMs per step, as torchao's ``get_gemm_time_sympy``
counts them: the output ``(M, K, N)``, the input gradient ``(M, N, K)`` and the weight gradient
``(K, M, N)``. No constant is fitted: the factor uses the device's matmul efficiency and the planner's HBM
efficiency as they are. torchao notes that its roofline "undercounts by around 2x" when M, K and N are all
at most 1,024, shapes a training step's GEMMs do not have (M is a micro-batch's tokens).

What this does not model, and why (docs/planner.md, "GEMM shapes"): tile and wave quantization and a
per-shape kernel efficiency. The published per-shape figures found (pytorch/ao#2185's compiled linears,
pytorch-labs/float8_experimental#38's forward GEMMs, FBGEMM#2546) disagree on whether bf16 efficiency
falls at N or K of 1,024-1,280, none is at the shapes of the runs that miss, and a wave-quantization law
hinges on cuBLAS's unpublished split-K choices; each law tried moved the 8B TP8 rows by 1-7 points and the
70B TP8 rows, already predicted too slow, the wrong way.

Which GEMMs are enumerated: the attention projections (q, k, v as separate GEMMs, as torchtitan's and
Hugging Face's Llama run them; Megatron-LM fuses them, whose wider GEMM is compute-bound anyway at the
widths of its published runs), dense MLPs, and a MoE layer's experts at their own shapes under balanced
routing (:func:`expert_gemm_shapes`): each routed expert on a rank runs its own ``(M_e, h) x (h, f_e /
etp)`` GEMMs with ``M_e = (tokens / tp) x ep x etp x top_k / E`` rows (Megatron-Core's alltoall token
dispatcher gathers each local expert's tokens from the ``tp_ep`` group; Transformer Engine's
``GroupedLinear`` runs one GEMM per expert, ``m_splits`` rows each, reading that expert's own weights), and
the shared experts as one dense MLP of their summed width over the ``tp`` ranks (Megatron-Core's
``SharedExpertMLP``). MLA projections and the router are left at the device efficiency (factor 1 on their
FLOPs).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..arch.spec import ModelSpec
from .layout import Layout

__all__ = ["GemmShape", "expert_gemm_shapes", "gemm_roofline_factor", "gemm_time_s", "layer_linears",
           "linear_gemm_shapes"]


class GemmShape(NamedTuple):
    """One linear's forward GEMM on one rank: reduction width ``k``, output width ``n``, how many such GEMMs
    a micro-batch runs (``gemms``: layers, times local experts for routed experts) and their rows as a share
    of the micro-batch's tokens (``tokens``: 1 for a dense linear, ``M_e / M`` for a routed expert)."""

    k: float
    n: float
    gemms: float
    tokens: float = 1.0


def _mlp_linears(model: ModelSpec, width: float) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """An MLP of inner width ``width`` (per rank) as forward ``(K, N)``: its up projections (two for SwiGLU)
    and its down projection."""
    n_up = 2 if model.ffn_kind == "swiglu" else 1
    return [(model.d_model, width)] * n_up, [(width, model.d_model)]


def layer_linears(model: ModelSpec, tp: int, *, separate_qkv: bool = False) -> tuple[
        list[tuple[float, float]], list[tuple[float, float]], list[tuple[float, float]], list[tuple[float, float]]]:
    """One layer's linears as forward GEMM shapes ``(K, N)`` on one of ``tp`` ranks: ``(qkv, wo, up, down)``,
    the query, key and value projections (three GEMMs with ``separate_qkv``, else one of their summed
    widths), the attention output, the MLP's up projections (two for SwiGLU) and its down projection, for a
    standard (non-MLA) attention and a dense MLP of ``d_ff``; the caller decides which of them a layer has.

    >>> from scalelab import get_model
    >>> layer_linears(get_model("llama-3.1-8b"), 8)
    ([(4096, 768.0)], [(512.0, 4096)], [(4096, 1792.0), (4096, 1792.0)], [(1792.0, 4096)])
    """
    h = model.d_model
    widths = (model.q_dim, model.kv_dim, model.v_dim) if separate_qkv else \
        (model.q_dim + model.kv_dim + model.v_dim,)
    up, down = _mlp_linears(model, model.d_ff / tp)
    return [(h, n / tp) for n in widths], [(model.q_dim / tp, h)], up, down


def expert_gemm_shapes(model: ModelSpec, layout: Layout) -> list[GemmShape]:
    """A MoE model's expert GEMMs on one rank under balanced routing, summed over its MoE layers.

    Routed experts: a rank holds ``E / ep`` experts, each split ``etp`` ways (``N = f_e / etp``). Its
    ``T / tp`` tokens of a micro-batch (``T``: the micro-batch's tokens on a ``tp`` group; sequence
    parallelism, which Megatron-Core requires for MoE under TP, splits them) send ``top_k`` copies each;
    the ``etp x ep`` ranks of its ``tp_ep`` group send ``etp x ep x (T / tp) x top_k`` copies to ``E``
    experts, so each local expert's GEMMs have ``M_e = T x ep x etp x top_k / (tp x E)`` rows
    (Megatron-Core's ``MoEAlltoAllTokenDispatcher``: ``num_global_tokens_per_local_expert`` summed over the
    expert-TP and EP ranks; Transformer Engine's ``GroupedLinear`` then runs one GEMM per expert of
    ``m_splits[i]`` rows). Shared experts: one dense MLP of their summed width over ``tp``
    (Megatron-Core's ``SharedExpertMLP``, ``moe_shared_expert_intermediate_size``), all ``T`` rows.

    >>> from scalelab import get_model
    >>> s = expert_gemm_shapes(get_model("deepseek-v3"), Layout(pp=16, ep=64, dp=128))
    >>> [(int(g.k), int(g.n), int(g.gemms), g.tokens) for g in s]   # 4 local experts x 58 layers; 1 shared
    [(7168, 2048, 232, 2.0), (7168, 2048, 232, 2.0), (2048, 7168, 232, 2.0), (7168, 2048, 58, 1.0), \
(7168, 2048, 58, 1.0), (2048, 7168, 58, 1.0)]
    """
    e = model.moe
    if e is None:
        return []
    layers, etp = model.n_moe_layers, layout.expert_tp
    up, down = _mlp_linears(model, e.d_expert / etp)
    share = layout.ep * etp * min(e.top_k, e.n_experts) / (layout.tp * e.n_experts)
    local = layers * e.n_experts / layout.ep
    shapes = [GemmShape(k, n, local, share) for k, n in up + down]
    if e.n_shared_experts:
        up, down = _mlp_linears(model, e.n_shared_experts * e.shared_width / layout.tp)
        shapes.extend(GemmShape(k, n, layers) for k, n in up + down)
    return shapes


def linear_gemm_shapes(model: ModelSpec, layout: Layout, *,
                       separate_qkv: bool = False) -> tuple[list[GemmShape], float]:
    """The linear layers' GEMMs per rank: ``([GemmShape, ...], other)``, each forward GEMM's reduction
    width K and output width N on one tensor-parallel rank with the number of such GEMMs per micro-batch
    and their share of its tokens (:class:`GemmShape`), and ``other``: the forward FLOPs per token of the
    linears left out (MLA projections), summed over layers, which keep the device efficiency.
    ``separate_qkv``: the query, key and value projections run as three GEMMs (torchtitan's ``wq``,
    ``wk``, ``wv``; Hugging Face's ``q_proj``...), else as one fused GEMM of their summed widths
    (Megatron-LM's ``linear_qkv``). MoE experts: :func:`expert_gemm_shapes`.

    >>> from scalelab import get_model
    >>> shapes, other = linear_gemm_shapes(get_model("llama-3.1-8b"), Layout(tp=8), separate_qkv=True)
    >>> [(int(g.k), int(g.n)) for g in shapes]   # wq, wk, wv, wo, w1, w3, w2 at TP8
    [(4096, 512), (4096, 128), (4096, 128), (512, 4096), (4096, 1792), (4096, 1792), (1792, 4096)]
    >>> other
    0.0
    """
    from .flops import matmul_params_per_layer

    t, L = layout.tp, model.n_layers
    qkv, wo, up, down = layer_linears(model, t, separate_qkv=separate_qkv)
    shapes: list[GemmShape] = []
    other = 0.0
    if model.mla is None:
        shapes.extend(GemmShape(k, n, L) for k, n in qkv + wo)
    else:
        other += 2.0 * matmul_params_per_layer(model)["attention"] / t * L
    n_dense = model.n_dense_mlp_layers
    if n_dense:
        shapes.extend(GemmShape(k, n, n_dense) for k, n in up + down)
    shapes.extend(expert_gemm_shapes(model, layout))
    return shapes, other


def gemm_roofline_factor(shapes: list[GemmShape], tokens: float, *, flops_per_s: float,
                         bytes_per_s: float, input_bytes: float, output_bytes: float,
                         other_flops: float = 0.0) -> float:
    """Time of the GEMMs ``shapes`` (from :func:`linear_gemm_shapes`) under the per-GEMM roofline, over
    their time at ``flops_per_s`` alone: >= 1, the factor by which the linear layers run slower than the
    device efficiency says. Each linear's forward, input-gradient and weight-gradient GEMMs are counted
    (module docstring); ``tokens`` is M, the tokens of one micro-batch that a dense GEMM sees (a routed
    expert's GEMM sees its ``GemmShape.tokens`` share of them; ``math.inf`` drops the weight reads: the
    least factor any micro-batch gives, what a lower bound takes). ``other_flops`` (forward FLOPs per token
    of linears not in ``shapes``) are timed at ``flops_per_s``.

    >>> f = dict(flops_per_s=0.54 * 989e12, bytes_per_s=0.8 * 2.4e12, input_bytes=2, output_bytes=2)
    >>> round(gemm_roofline_factor([GemmShape(4096, 14336, 1)], 16384, **f), 3)   # a wide GEMM: compute-bound
    1.0
    >>> round(gemm_roofline_factor([GemmShape(4096, 128, 1)], 98304, **f), 2)     # N = 128: memory-bound
    2.24
    >>> round(gemm_roofline_factor([GemmShape(4096, 14336, 64, 1 / 64)], 16384, **f), 2)  # 256 rows each
    1.17
    """
    compute = roofline = 0.0
    for k, n, gemms, r in shapes:
        flops = 2.0 * k * n * r * gemms  # per token of the micro-batch, each of the three GEMMs
        t_c = flops / flops_per_s
        compute += 3.0 * t_c
        w = 0.0 if math.isinf(tokens) else k * n / tokens  # weight elements per token of the micro-batch
        # (M, K, N) forward, (M, N, K) input gradient, (K, M, N) weight gradient: elements per token
        # read (in) and written (out); the weight gradient writes K N, its reads are the M x K input and
        # the M x N output gradient
        moves = ((r * k + w, r * n), (r * n + w, r * k), (r * (k + n), w))
        for read, write in moves:
            t_m = (input_bytes * read + output_bytes * write) * gemms / bytes_per_s
            roofline += max(t_c, t_m)
    other = 3.0 * other_flops / flops_per_s
    return (roofline + other) / (compute + other) if compute + other > 0 else 1.0


def gemm_time_s(m: float, k: float, n: float, *, flops_per_s: float, bytes_per_s: float, input_bytes: float,
                output_bytes: float) -> float:
    """Seconds of one ``(M, K) x (K, N)`` GEMM under the roofline of the module docstring: its FLOPs at
    ``flops_per_s`` or its bytes (inputs read, output written) at ``bytes_per_s``, whichever is longer.

    >>> f = dict(flops_per_s=5e14, bytes_per_s=2e12, input_bytes=2, output_bytes=2)
    >>> gemm_time_s(16384, 8192, 8192, **f) == 2 * 16384 * 8192 * 8192 / 5e14   # compute-bound
    True
    >>> gemm_time_s(16384, 8192, 128, **f) > 2 * 16384 * 8192 * 128 / 5e14      # N = 128: memory-bound
    True
    """
    return max(2.0 * m * k * n / flops_per_s, (input_bytes * (m * k + k * n) + output_bytes * m * n) / bytes_per_s)
