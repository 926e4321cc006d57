"""torchtitan's FSDP2 as its code runs it (issue 9): fp32 parameter shards and no fp8 copy
(``fp32_param_shards``), Float8 all-gathers of the blocks' linear weights only
(``low_precision_gather_linears_only``, in memory and in the ZeRO-3 all-gather bytes), and per-stage
gradient reduction under a one-round interleaved schedule (``pp_reduce_per_stage``)."""

from __future__ import annotations

import dataclasses

import pytest

from scalelab import Layout, TrainSpec, get_cluster, get_model
from scalelab.planner.comm import comm_per_step, fsdp_units, local_params
from scalelab.planner.frameworks import get_framework
from scalelab.planner.memory import MemoryConventions, memory_per_gpu

MODEL = get_model("llama-3.1-8b")
TT = get_framework("torchtitan").memory
FP8 = TrainSpec(seq_len=4096, global_batch=64, precision="fp8")
BF16 = TrainSpec(seq_len=4096, global_batch=64)


def test_fsdp2_keeps_16_bytes_per_sharded_parameter_in_fp8_and_bf16():
    """FSDP2 in torchtitan: fp32 shard 4 + fp32 gradient shard 4 + Adam 8, no master and no fp8 copy;
    Transformer Engine's fp8 convention (the default) counts 19 for the blocks' GEMM weights."""
    n, dp = MODEL.n_params().total, 64
    lay = Layout(zero=3)
    for train in (FP8, BF16):
        mem = memory_per_gpu(MODEL, train, lay, dp=dp, conventions=TT)
        assert mem.model_states_bytes == pytest.approx(16.0 * n / dp, rel=1e-9), train.precision
        assert mem.weights_bytes == pytest.approx(4.0 * n / dp, rel=1e-9)
    te = memory_per_gpu(MODEL, FP8, lay, dp=dp, conventions=MemoryConventions())
    # TE's fp8 copy is of the blocks' GEMM weights only; the embedding, head and norms keep 18
    counts = MODEL.n_params()
    gemm = MODEL.n_layers * (counts.per_layer_attention + counts.per_layer_dense_mlp)
    assert te.model_states_bytes == pytest.approx((19.0 * gemm + 18.0 * (n - gemm)) / dp, rel=1e-9)
    # the gathered copy is bf16 whatever the stored shard is: the gather buffers do not double
    off = dataclasses.replace(TT, fp32_param_shards=False)
    bf16_tt = memory_per_gpu(MODEL, BF16, lay, dp=dp, conventions=TT).get("zero3_gather_bytes")
    assert bf16_tt == memory_per_gpu(MODEL, BF16, lay, dp=dp, conventions=off).get("zero3_gather_bytes")
    assert get_framework("torchtitan-compile").memory.fp32_param_shards
    assert not get_framework("nemo").memory.fp32_param_shards


def test_float8_all_gather_leaves_embeddings_norms_and_head_in_bf16():
    """Under PP the stage stays gathered for the step: its linear weights at 1 byte (Float8 all-gather),
    the embedding or head (V h / tp) and the norms (2 h per layer) at 2 bytes."""
    lay = Layout(tp=4, pp=2, zero=3, zero3_gather="step", recompute="full")
    f8 = dataclasses.replace(TT, zero3_gather_weight_bytes=1.0)
    every = dataclasses.replace(f8, low_precision_gather_linears_only=False)
    on = memory_per_gpu(MODEL, FP8, lay, dp=8, conventions=f8)
    off = memory_per_gpu(MODEL, FP8, lay, dp=8, conventions=every)
    assert on.peak_stage == off.peak_stage
    h, layers = MODEL.d_model, MODEL.n_layers // 2
    sixteen_bit = MODEL.vocab_size * h / 4 + 2 * h * layers + (h if on.peak_stage == 1 else 0)
    diff = on.get("zero3_unsharded_weights_bytes") - off.get("zero3_unsharded_weights_bytes")
    assert diff == pytest.approx(sixteen_bit * (2.0 - 1.0), rel=1e-9)


def test_zero3_all_gather_sends_fp8_only_with_a_float8_all_gather():
    """comm_per_step's ZeRO-3 parameter all-gather: 2 bytes per parameter by default, the memory model's
    bytes with its conventions (1 for the blocks' linears, 2 for the rest of the rank's share), and 2 again
    when FSDP shards over CP ranks alone (torchtitan's Float8Handler)."""
    cluster = get_cluster("h100-sxm", 64)
    lay = Layout(tp=8, zero=3)
    f8 = dataclasses.replace(TT, zero3_gather_weight_bytes=1.0)

    def gather_msg(conv: MemoryConventions | None, layout: Layout = lay, dp: int = 8) -> float:
        cb = comm_per_step(MODEL, cluster, FP8, layout, dp=dp, memory_conventions=conv)
        units = fsdp_units(MODEL.n_layers)  # one call per FSDP unit
        return next(c.message_bytes for c in cb.collectives if c.name == "dp parameter all-gather") * units

    dense, _ = local_params(MODEL, lay)
    c = MODEL.n_params()
    linears = (c.total - c.embedding - c.norms) / 8
    assert gather_msg(None) == pytest.approx(2.0 * dense)
    assert gather_msg(TT) == gather_msg(None)  # no Float8 all-gather asked
    assert gather_msg(f8) == pytest.approx(linears * 1.0 + (dense - linears) * 2.0, rel=1e-9)
    assert gather_msg(dataclasses.replace(f8, low_precision_gather_linears_only=False)) == pytest.approx(dense)
    cp_only = Layout(cp=8, zero=3)
    assert gather_msg(f8, cp_only, dp=1) == gather_msg(None, cp_only, dp=1)


def test_one_round_interleaved_schedule_holds_one_stage_of_accumulators():
    """Two stages per rank (8 layers each): with m < 2 pp micro-batches a rank reduces its later stage's
    fp32 accumulators before its earlier stage's first backward, so it holds one stage's; with two rounds,
    or without the convention, both."""
    lay = Layout(tp=4, pp=2, interleave=2, zero=3, zero3_gather="step", micro_batch=4, recompute="full")

    def grads(conv: MemoryConventions, global_batch: int):
        mem = memory_per_gpu(MODEL, TrainSpec(seq_len=4096, global_batch=global_batch), lay, dp=8,
                             conventions=conv)
        return mem.get("zero3_unsharded_grads_bytes"), mem.peak_stage

    off = dataclasses.replace(TT, pp_reduce_per_stage=False)
    (one, s1), (both, s2) = grads(TT, 64), grads(off, 64)  # m = 64 / (8 x 4) = 2 < 2 pp
    assert s1 == s2
    c = MODEL.n_params()
    eight_layers = 8 * (c.total - c.embedding - c.norms) / MODEL.n_layers / 4 + 8 * 2 * MODEL.d_model
    assert both - one == pytest.approx(4.0 * eight_layers, rel=1e-9)
    assert grads(TT, 128)[0] == grads(off, 128)[0]  # m = 4: two rounds
    one_f1b = lay.model_copy(update={"interleave": 1})
    assert (memory_per_gpu(MODEL, TrainSpec(seq_len=4096, global_batch=64), one_f1b, dp=8, conventions=TT).total_bytes
            == memory_per_gpu(MODEL, TrainSpec(seq_len=4096, global_batch=64), one_f1b, dp=8,
                              conventions=off).total_bytes)


def test_fsdp2_root_stays_gathered_and_keeps_the_head_gradient():
    """Without PP FSDP2's root group (embedding, final norm, head) is never resharded after forward and
    reduces at the end of backward: its bf16 copy (even under a Float8 all-gather) and the head's bf16
    gradient are held beside the blocks' gather buffers; under PP gathering once per step they are part of
    the stage's unsharded parameters already."""
    v, h = MODEL.vocab_size, MODEL.d_model
    off = dataclasses.replace(TT, fsdp_root_unsharded=False)
    for conv in (TT, dataclasses.replace(TT, zero3_gather_weight_bytes=1.0)):
        on_mem = memory_per_gpu(MODEL, FP8, Layout(zero=3), dp=8, conventions=conv)
        off_mem = memory_per_gpu(MODEL, FP8, Layout(zero=3), dp=8,
                                 conventions=dataclasses.replace(conv, fsdp_root_unsharded=False))
        root = 2.0 * (2 * v * h + h) + 2.0 * v * h  # embedding, head, final norm + the head's gradient
        assert on_mem.total_bytes - off_mem.total_bytes == pytest.approx(root, rel=1e-9)
        assert on_mem.get("zero3_root_unsharded_bytes") == pytest.approx(root, rel=1e-9)
    pp = Layout(pp=2, zero=3, zero3_gather="step", recompute="full")
    assert (memory_per_gpu(MODEL, FP8, pp, dp=8, conventions=TT).total_bytes
            == memory_per_gpu(MODEL, FP8, pp, dp=8, conventions=off).total_bytes)


def test_fsdp2_root_keeps_the_tied_matrix_gradient_too():
    """With tied embeddings the head is the embedding matrix: one gathered copy, but its gradient still
    comes from the head's backward at the start of backward and stays unsharded to the end."""
    tied = MODEL.model_copy(update={"tied_embeddings": True})
    v, h = tied.vocab_size, tied.d_model
    on_mem = memory_per_gpu(tied, BF16, Layout(zero=3), dp=8, conventions=TT)
    off_mem = memory_per_gpu(tied, BF16, Layout(zero=3), dp=8,
                             conventions=dataclasses.replace(TT, fsdp_root_unsharded=False))
    root = 2.0 * (v * h + h) + 2.0 * v * h  # the shared matrix and final norm, + the matrix's gradient
    assert on_mem.get("zero3_root_unsharded_bytes") == pytest.approx(root, rel=1e-9)
    assert on_mem.total_bytes - off_mem.total_bytes == pytest.approx(root, rel=1e-9)


def test_zero3_gather_weight_bytes_sets_the_gather_buffers_of_every_profile():
    """zero3_gather_weight_bytes is the copy ZeRO-3 gathers, in comm's all-gather bytes and in the memory
    model's per-micro-batch gather buffers alike, also without FSDP2's fp32 shards (it was ignored there:
    TE's bf16 weight + fp8 copy, 3 bytes, whatever the convention said)."""
    base = MemoryConventions()
    one = MemoryConventions(zero3_gather_weight_bytes=1.0)
    lay = Layout(zero=3)
    counts = MODEL.n_params()
    gemm = counts.per_layer_attention + counts.per_layer_dense_mlp
    norms = (counts.total - counts.embedding - MODEL.d_model) / MODEL.n_layers - gemm
    got = {c: memory_per_gpu(MODEL, FP8, lay, dp=8, conventions=c).get("zero3_gather_bytes") for c in (base, one)}
    # TE's bf16 weight + fp8 copy (3 bytes) for the GEMM weights, bf16 norms (2 bytes); 1 byte gathered
    assert got[base] - got[one] == pytest.approx(
        base.zero3_prefetch_layers * (gemm * (3.0 - 1.0) + norms * (2.0 - 1.0)), rel=1e-6)
    gather = comm_per_step(MODEL, get_cluster("h100-sxm", 16), FP8, lay, memory_conventions=one)
    dense, _ = local_params(MODEL, lay)
    ag = next(c for c in gather.collectives if c.kind == "all_gather")
    assert ag.message_bytes * fsdp_units(MODEL.n_layers) == pytest.approx(dense)
