"""Communication volumes against the formulas they come from (ZeRO paper section 7, Narayanan et al. 2021
section 3.2, nccl-tests' bus-bandwidth convention) and the placement rule."""

from __future__ import annotations

import dataclasses

import pytest

from scalelab.arch.spec import ModelSpec, MoESpec
from scalelab.errors import ConfigError
from scalelab.hardware.spec import ClusterSpec, GPUSpec
from scalelab.planner import Layout, TrainSpec, comm_per_step
from scalelab.planner.comm import (
    collective_time_s,
    fsdp_units,
    group_bandwidth_bytes_per_s,
    group_link,
    local_params,
    ring_factors,
)
from scalelab.planner.memory import MemoryConventions

GPU = GPUSpec(name="test", peak_flops_per_s={"bf16": 1e15}, memory_bytes=80e9, memory_bandwidth_bytes_per_s=3e12,
              intra_node_bandwidth_bytes_per_s=400e9, inter_node_bandwidth_bytes_per_s=50e9,
              network_efficiency=1.0, link_latency_s=0.0)
MODEL = ModelSpec(n_layers=8, d_model=4096, n_heads=32, n_kv_heads=8, d_ff=14336, vocab_size=32000)


def _one(cb, group, kind=None):
    hits = [c for c in cb.collectives if c.group == group and (kind is None or c.kind == kind)]
    assert len(hits) == 1, cb.collectives
    return hits[0]


@pytest.mark.parametrize("kind, n, factor, steps", [
    ("all_reduce", 8, 2 * 7 / 8, 14), ("reduce_scatter", 8, 7 / 8, 7), ("all_gather", 4, 3 / 4, 3),
    ("all_to_all", 64, 63 / 64, 63), ("p2p", 2, 1.0, 1), ("all_reduce", 1, 0.0, 0),
])
def test_ring_factors(kind, n, factor, steps):
    """nccl-tests PERFORMANCE.md: all-reduce moves 2(n-1)/n of the message per rank, the others (n-1)/n."""
    assert ring_factors(kind, n) == (pytest.approx(factor), steps)


def test_alpha_beta_time():
    t = collective_time_s("all_reduce", 1e9, 8, bandwidth_bytes_per_s=100e9, latency_s=1e-5, efficiency=0.5)
    assert t == pytest.approx(14 * 1e-5 + 1.75e9 / 50e9)


def test_bad_collectives():
    with pytest.raises(ConfigError):
        ring_factors("broadcast", 4)
    with pytest.raises(ConfigError):
        ring_factors("all_reduce", 0)
    with pytest.raises(ConfigError):
        collective_time_s("p2p", -1.0, 2, bandwidth_bytes_per_s=1e9, latency_s=0)


def test_group_link_rule():
    assert group_link(1, 8, 8) == "intra"       # TP8 inside a DGX
    assert group_link(8, 16, 8) == "inter"      # DP over nodes
    assert group_link(2, 4, 8) == "intra"       # CP4 after TP2 still within 8 GPUs
    assert group_link(4, 4, 8) == "inter"


@pytest.mark.parametrize("kind, stride, n, nics", [
    ("all_gather", 1, 16, 8),      # FSDP over two nodes: rings through 8 GPUs a node, 8 NICs each
    ("reduce_scatter", 4, 8, 2),   # DP over TP4: 2 ranks a node
    ("all_reduce", 8, 16, 1),      # DP over TP8: one rank a node, its own NIC
    ("all_reduce", 1, 16, 8),      # TP16 across two nodes
    ("all_to_all", 1, 16, 1),      # each rank's remote bytes leave through its own NIC
    ("p2p", 8, 2, 1),
])
def test_multi_node_rings_use_the_nics_of_the_group_ranks_in_a_node(kind, stride, n, nics):
    """NCCL spreads a ring's inter-node flows over the NICs of a node (NVIDIA/nccl#412, #812: 192 GB/s
    all-reduce bus bandwidth across DGX A100s with 8 x 200 Gb/s NICs), up to the intra-node link."""
    bw = group_bandwidth_bytes_per_s(kind, stride, n, 8, intra_bytes_per_s=400e9, nic_bytes_per_s=25e9)
    assert bw == pytest.approx(nics * 25e9)
    # never faster than NVLink, which carries the node's share between the NICs
    assert group_bandwidth_bytes_per_s("all_gather", 1, 16, 8, intra_bytes_per_s=150e9,
                                       nic_bytes_per_s=25e9) == pytest.approx(150e9)
    assert group_bandwidth_bytes_per_s(kind, 1, 8, 8, intra_bytes_per_s=400e9, nic_bytes_per_s=25e9) == 400e9


@pytest.mark.parametrize("gpn, n_gpus, stride, size", [
    (8, 64, 1, 64), (8, 64, 8, 8), (8, 64, 2, 16), (8, 64, 4, 8),  # spans of whole nodes
    (8, 24, 1, 12), (8, 24, 2, 6), (8, 48, 4, 6), (8, 24, 3, 8),   # spans ending inside a node (dp 12, dp 6 x tp 2)
    (4, 24, 2, 6), (72, 216, 1, 108), (8, 40, 1, 10),
])
def test_ring_groups_never_claim_more_nics_than_their_ranks_in_any_node(gpn, n_gpus, stride, size):
    """Ranks laid out in order (groups of ``size`` ranks ``stride`` apart tiling the cluster, as the tp, cp,
    dp, pp ordering places them): in every node, each ring group's per-rank bandwidth is at most the NICs
    of its own ranks there, so the groups sharing a node never use more NICs than the node has."""
    nic = 25e9
    span = stride * size
    groups = [[start + base + i * stride for i in range(size)]
              for start in range(0, n_gpus, span) for base in range(stride)]
    bw = group_bandwidth_bytes_per_s("all_gather", stride, size, gpn, intra_bytes_per_s=1e15, nic_bytes_per_s=nic)
    if group_link(stride, size, gpn) == "intra":
        return
    used = [0.0] * (n_gpus // gpn)
    for g in groups:
        for node in {r // gpn for r in g}:
            here = sum(1 for r in g if r // gpn == node)
            assert bw / nic <= here + 1e-9, (g, node)
            used[node] += bw / nic
    assert max(used) <= gpn + 1e-9


def test_fsdp_over_nodes_is_timed_at_the_node_s_nics():
    cl = ClusterSpec(gpu=GPU, n_gpus=16)  # 8 GPUs a node, 50 GB/s NIC per GPU
    cb = comm_per_step(MODEL, cl, TrainSpec(seq_len=1024, global_batch=16), Layout(zero=3))
    c = _one(cb, "dp", "all_gather")
    assert c.link == "inter"
    assert c.time_s == pytest.approx(c.traffic_bytes / 400e9)  # min(8 x 50, 400) GB/s
    tp8 = comm_per_step(MODEL, cl, TrainSpec(seq_len=1024, global_batch=16), Layout(tp=8, zero=3))
    c8 = _one(tp8, "dp", "all_gather")  # one rank per node: one NIC
    assert c8.time_s == pytest.approx(c8.traffic_bytes / 50e9)


def test_reduce_dtype_is_a_convention():
    """``MemoryConventions.grad_reduce_bytes``: FSDP2's reduce dtype; torchtitan's profile reduces in fp32."""
    from scalelab.planner.frameworks import get_framework

    cl = ClusterSpec(gpu=GPU, n_gpus=16)
    train = TrainSpec(seq_len=1024, global_batch=16)
    psi = MODEL.n_params().total
    for conv, b in ((None, 2), (MemoryConventions(grad_reduce_bytes=4.0), 4), (get_framework("torchtitan").memory, 4),
                    (get_framework("megatron").memory, 2)):
        rs = _one(comm_per_step(MODEL, cl, train, Layout(zero=3), memory_conventions=conv), "dp", "reduce_scatter")
        assert rs.message_bytes * fsdp_units(MODEL.n_layers) == pytest.approx(b * psi), conv  # per FSDP unit
    # DDP's all-reduce follows the reduce dtype too
    fp32 = MemoryConventions(grad_reduce_bytes=4)
    ar = _one(comm_per_step(MODEL, cl, train, Layout(zero=0), memory_conventions=fp32), "dp")
    assert ar.message_bytes == pytest.approx(4 * psi)
    # the memory model's unsharded accumulators (ZeRO-3 gathering once per step) follow the reduce dtype
    assert MemoryConventions().unsharded_grad_bytes() == 4.0
    assert MemoryConventions(grad_reduce_bytes=2.0).unsharded_grad_bytes() == 2.0
    assert MemoryConventions(grad_reduce_bytes=2.0, zero3_unsharded_grad_bytes=4.0).unsharded_grad_bytes() == 4.0
    with pytest.raises(ConfigError):
        MemoryConventions(grad_reduce_bytes=-1.0)


def test_zero3_gather_dtype_follows_the_shard_degree_memory_uses_under_hsdp():
    """torchtitan gathers fp8 only with a data-parallel shard degree above 1 (excluding CP): HSDP over CP8
    inside a node replicated twice shards over CP ranks alone, so comm's gather moves the 16-bit copy,
    as the memory model counts it; sharding over the whole dp*cp group gathers fp8."""
    from scalelab.planner.frameworks import get_framework

    conv = dataclasses.replace(get_framework("torchtitan-compile").memory, zero3_gather_weight_bytes=1.0)
    cl = ClusterSpec(gpu=GPU, n_gpus=16)
    train = TrainSpec(seq_len=8192, global_batch=4, precision="fp8")
    dense, _ = local_params(MODEL, Layout(cp=8, zero=3))

    def gather_bytes_per_param(shard_group):
        lay = Layout(cp=8, dp=2, zero=3, shard_group=shard_group)
        ag = _one(comm_per_step(MODEL, cl, train, lay, memory_conventions=conv), "dp", "all_gather")
        return ag.message_bytes * fsdp_units(MODEL.n_layers) / dense

    assert gather_bytes_per_param("node") == pytest.approx(2.0)
    assert gather_bytes_per_param("dp") < 1.5


def test_ddp_all_reduce_volume():
    """DDP: each rank sends 2 (d-1)/d x the gradient bytes once per step (ZeRO paper section 7.1)."""
    cl = ClusterSpec(gpu=GPU, n_gpus=16)
    train = TrainSpec(seq_len=1024, global_batch=64, precision="bf16")
    cb = comm_per_step(MODEL, cl, train, Layout(zero=0))
    c = _one(cb, "dp")
    psi = MODEL.n_params().total
    assert c.kind == "all_reduce" and c.calls_per_step == 1 and c.link == "inter"
    assert c.traffic_bytes == pytest.approx(2 * 15 / 16 * psi * 2)


def test_zero_volumes_relative_to_ddp():
    """ZeRO section 7.2: ZeRO-1/2 move the same bytes as DDP per step; ZeRO-3 1.5x (gathers in forward and
    backward). With one micro-batch per step the per-micro-batch collectives of ZeRO-2/3 run once."""
    cl = ClusterSpec(gpu=GPU, n_gpus=16)
    train = TrainSpec(seq_len=1024, global_batch=16, precision="bf16")  # m = 1
    vol = {z: comm_per_step(MODEL, cl, train, Layout(zero=z)).traffic_bytes() for z in range(4)}
    assert vol[1] == pytest.approx(vol[0])
    assert vol[2] == pytest.approx(vol[0])
    assert vol[3] == pytest.approx(1.5 * vol[0])
    # With gradient accumulation ZeRO-2 reduce-scatters every micro-batch, ZeRO-1 once.
    train4 = TrainSpec(seq_len=1024, global_batch=64, precision="bf16")  # m = 4
    z1 = comm_per_step(MODEL, cl, train4, Layout(zero=1)).traffic_bytes()
    z2 = comm_per_step(MODEL, cl, train4, Layout(zero=2)).traffic_bytes()
    assert z2 == pytest.approx(z1 + 3 * z1 / 2)


def test_fp32_gradients_double_the_reduction_bytes():
    cl = ClusterSpec(gpu=GPU, n_gpus=16)
    a = comm_per_step(MODEL, cl, TrainSpec(seq_len=1024, global_batch=16, precision="bf16"), Layout())
    b = comm_per_step(MODEL, cl, TrainSpec(seq_len=1024, global_batch=16, precision="bf16-fp32-grad"), Layout())
    assert b.traffic_bytes() == pytest.approx(2 * a.traffic_bytes())


def test_tensor_parallel_volume_and_sequence_parallel_equivalence():
    """Narayanan et al. 2021 section 3.2: 4 all-reduces of b s h per layer per micro-batch (2 fwd, 2 bwd);
    Korthikanti et al. 2022 section 4.2.2: with SP each becomes RS + AG with the same bytes."""
    cl = ClusterSpec(gpu=GPU, n_gpus=8)
    b, s, h, t, L = 2, 1024, MODEL.d_model, 8, MODEL.n_layers
    train = TrainSpec(seq_len=s, global_batch=4)  # dp = 1, m = 2
    tp = _one(comm_per_step(MODEL, cl, train, Layout(tp=t, micro_batch=b)), "tp")
    assert tp.link == "intra" and tp.calls_per_step == 2 * 4 * L
    assert tp.traffic_bytes == pytest.approx(2 * 4 * L * 2 * (t - 1) / t * b * s * h * 2)
    sp = comm_per_step(MODEL, cl, train, Layout(tp=t, micro_batch=b, sequence_parallel=True))
    assert sp.traffic_bytes() == pytest.approx(tp.traffic_bytes)
    full = _one(comm_per_step(MODEL, cl, train, Layout(tp=t, micro_batch=b, recompute="full")), "tp")
    assert full.calls_per_step == pytest.approx(1.5 * tp.calls_per_step)  # 2 extra forward all-reduces



def test_torchtitan_op_sac_regathers_sequence_parallel_inputs():
    """torchtitan's op-level SAC saves the TP reduce-scatter outputs but not the all-gather outputs
    (``_save_list`` in parallelize_llama.py at 820504e), so backward gathers the inputs of the
    column-parallel linears again: 2 more all-gathers per layer and micro-batch, the reduce-scatters
    unchanged; full recompute reruns both (2 more of each); without SP nothing changes."""
    cl = ClusterSpec(gpu=GPU, n_gpus=8)
    b, L = 2, MODEL.n_layers
    train = TrainSpec(seq_len=1024, global_batch=4)  # dp = 1, m = 2

    def counts(recompute, sp=True):
        cb = comm_per_step(MODEL, cl, train, Layout(tp=8, micro_batch=b, sequence_parallel=sp, recompute=recompute))
        if not sp:
            return _one(cb, "tp").calls_per_step
        return _one(cb, "tp", "all_gather").calls_per_step, _one(cb, "tp", "reduce_scatter").calls_per_step

    m = 2
    assert counts("none") == (m * 4 * L, m * 4 * L)
    assert counts("torchtitan-op") == (m * 6 * L, m * 4 * L)
    assert counts("full") == (m * 6 * L, m * 6 * L)
    assert counts("torchtitan-op", sp=False) == counts("none", sp=False)

def test_pipeline_p2p_scales_with_interleave():
    cl = ClusterSpec(gpu=GPU, n_gpus=16)
    train = TrainSpec(seq_len=1024, global_batch=32)
    a = _one(comm_per_step(MODEL, cl, train, Layout(pp=4, dp=4)), "pp")
    b = _one(comm_per_step(MODEL, cl, train, Layout(pp=4, dp=4, interleave=2)), "pp")
    assert a.kind == "p2p" and a.message_bytes == pytest.approx(1024 * MODEL.d_model * 2)
    assert b.traffic_bytes == pytest.approx(2 * a.traffic_bytes)
    assert a.link == "inter"  # pp is the outermost axis


def test_context_parallel_moves_kv_only():
    cl = ClusterSpec(gpu=GPU, n_gpus=8)
    train = TrainSpec(seq_len=8192, global_batch=8)
    cb = comm_per_step(MODEL, cl, train, Layout(cp=4, dp=2))
    ring = [c for c in cb.collectives if c.group == "cp"]
    assert ring and all(c.kind == "p2p" for c in ring)
    kv_full = 8192 * (MODEL.kv_dim + MODEL.v_dim) * 2
    assert ring[0].message_bytes == pytest.approx(kv_full / 4)  # one rank's K,V block per ring step
    # The ring moves what an all-gather of K,V per forward and backward plus a reduce-scatter of dK,dV
    # would: 3 x (c - 1) / c of the whole sequence's K,V per layer per micro-batch.
    assert sum(c.traffic_bytes for c in ring) == pytest.approx(3 * 3 / 4 * kv_full * MODEL.n_layers * 4)


def test_expert_all_to_all_and_expert_gradients():
    moe = ModelSpec(n_layers=4, d_model=2048, n_heads=16, d_ff=8192, vocab_size=32000,
                    moe=MoESpec(n_experts=8, top_k=2, d_expert=1408))
    cl = ClusterSpec(gpu=GPU, n_gpus=16)
    train = TrainSpec(seq_len=1024, global_batch=16)
    cb = comm_per_step(moe, cl, train, Layout(ep=8, zero=1))
    a2a = _one(cb, "ep")
    # GShard: dispatch + combine in forward and backward, k tokens of h each, per MoE layer per micro-batch.
    assert a2a.calls_per_step == 4 * 4 and a2a.message_bytes == pytest.approx(1024 * 2 * 2048 * 2)
    assert a2a.link == "intra"
    edp = [c for c in cb.collectives if c.group == "edp"]
    assert edp and all(c.group_size == 2 for c in edp)  # 16 ranks / ep 8
    _dense, routed = local_params(moe, Layout(ep=8))
    assert routed == pytest.approx(moe.n_params().experts_routed / 8)


def test_lora_shrinks_gradient_traffic():
    cl = ClusterSpec(gpu=GPU, n_gpus=16)
    train = TrainSpec(seq_len=1024, global_batch=16)
    full = comm_per_step(MODEL, cl, train, Layout()).traffic_bytes()
    lora = comm_per_step(MODEL, cl, train, Layout(), trainable_fraction=0.01).traffic_bytes()
    assert lora == pytest.approx(0.01 * full)


def test_node_limited_routing_cuts_network_all_to_all():
    """DeepSeek-V3 (report sec. 2.1.2, 3.2.2): top-8 of 256 experts over EP64 = 8 nodes, at most 4 nodes
    per token, one network copy per node: the network carries about 4 x 7/8 copies instead of 8 x 63/64."""
    from scalelab import get_cluster, get_model
    from scalelab.planner import Layout, TrainSpec, comm_per_step

    m, c = get_model("deepseek-v3"), get_cluster("h800", 2048)
    train, lay = TrainSpec(seq_len=4096, global_batch=14336), Layout(pp=16, ep=64, zero=1)
    plain = comm_per_step(m, c, train, lay)
    limited = comm_per_step(m, c, train, lay, ep_nodes_per_token=4)
    inter = lambda cb: sum(x.traffic_bytes for x in cb.collectives if x.group == "ep" and x.link == "inter")  # noqa: E731
    assert inter(limited) / inter(plain) == pytest.approx((4 * 7 / 8) / (8 * 63 / 64), rel=1e-6)
    assert any(x.group == "ep" and x.link == "intra" for x in limited.collectives)


def test_torch_context_parallel_gathers_expanded_kv_once_per_pass_and_sends_fp32_grads_round_the_ring():
    """torch's CP (``RING_TORCH_ALLGATHER``, torchtitan's default rotate method): one all-gather per
    attention pass of every rank's K,V block, at every query head (``repeat_kv`` before SDPA), and in
    backward c sends of the fp32 dK,dV accumulators; TransformerEngine's ring sends c - 1 bf16 blocks."""
    from scalelab.planner.comm import RING_TORCH_ALLGATHER, RingRecipe

    gqa = MODEL  # 32 query heads, 8 K,V heads
    cl = ClusterSpec(gpu=GPU, n_gpus=8)
    train, c = TrainSpec(seq_len=8192, global_batch=8), 4
    lay = Layout(cp=c, dp=2, recompute="full")  # full recompute: 2 forward passes + backward
    cb = comm_per_step(gqa, cl, train, lay, cp_ring=RING_TORCH_ALLGATHER)
    gather = [x for x in cb.collectives if x.group == "cp" and x.kind == "all_gather"]
    sends = [x for x in cb.collectives if x.group == "cp" and x.kind == "p2p"]
    assert len(gather) == 1 and len(sends) == 1
    assert gqa.n_heads == 4 * gqa.n_kv_heads
    block = 8192 / c * (gqa.kv_dim + gqa.v_dim) * 4 * 2  # one rank's K,V, expanded 32/8 = 4x, bf16
    m = 8 // 2
    assert gather[0].message_bytes == pytest.approx(c * block)
    assert gather[0].calls_per_step == m * gqa.n_layers * 3
    assert gather[0].traffic_bytes == pytest.approx((c - 1) * block * m * gqa.n_layers * 3)
    assert sends[0].message_bytes == pytest.approx(2 * block)  # fp32 accumulators
    assert sends[0].calls_per_step == m * gqa.n_layers * c
    te = [x for x in comm_per_step(gqa, cl, train, lay).collectives if x.group == "cp"]
    assert all(x.kind == "p2p" for x in te)
    assert te[0].message_bytes == pytest.approx(block / 4)  # grouped-query width
    with pytest.raises(ConfigError, match="rotate"):
        RingRecipe(fwd_q_bytes=1.0, fwd_kv_bytes=0.0, bwd_q_bytes=1.0, bwd_kv_bytes=1.0, rotate="ring")


def test_zero3_collectives_run_per_fsdp_unit_and_pay_the_ring_latency_per_call():
    """FSDP gathers and reduces block by block: the same bytes per step in fsdp_units(L) calls, each paying
    the ring's n - 1 latency steps, so at 2,048 ranks the latency, not the bytes, dominates (it used to be
    charged once per step, as if the whole stage moved in one call)."""
    train = TrainSpec(seq_len=1024, global_batch=2048)
    gpu = GPU.model_copy(update={"link_latency_s": 5e-6})
    cl = ClusterSpec(gpu=gpu, n_gpus=2048)
    ag = _one(comm_per_step(MODEL, cl, train, Layout(zero=3)), "dp", "all_gather")
    units = fsdp_units(MODEL.n_layers)
    assert units == MODEL.n_layers + 1
    assert ag.calls_per_step == 2 * units  # forward and backward of the one micro-batch
    assert ag.traffic_bytes == pytest.approx(2 * 2047 / 2048 * 2 * MODEL.n_params().total)
    latency = ag.calls_per_step * 2047 * 5e-6
    assert ag.time_s == pytest.approx(latency + ag.traffic_bytes / (400e9 * gpu.network_efficiency))
    # ZeRO-1's once-per-step all-gather is still one call
    z1 = _one(comm_per_step(MODEL, cl, train, Layout(zero=1)), "dp", "all_gather")
    assert z1.calls_per_step == 1


def test_megatron_core_token_dispatcher_gathers_the_routed_copies_over_expert_tp_outside_the_tp_group():
    """Megatron-Core's alltoall dispatcher (core_v0.9.0 token_dispatcher.py): with expert TP, a MoE layer keeps
    its attention's TP collectives (one RS + AG pair per direction with SP) and the experts' TP traffic becomes
    one all-gather and one reduce-scatter per direction of the k routed copies (x capacity factor), in group
    ``etp``; with etp 1 or the default "gemm" dispatch nothing changes."""
    moe = ModelSpec(n_layers=4, d_model=2048, n_heads=16, d_ff=8192, vocab_size=32000,
                    moe=MoESpec(n_experts=8, top_k=2, d_expert=1408, capacity_factor=1.25))
    cl = ClusterSpec(gpu=GPU, n_gpus=16)
    b, s, t, L = 1, 1024, 4, 4
    train = TrainSpec(seq_len=s, global_batch=8)  # dp 4, m 2
    lay = Layout(tp=t, ep=4, sequence_parallel=True, micro_batch=b)
    gemm = comm_per_step(moe, cl, train, lay)
    disp = comm_per_step(moe, cl, train, lay, moe_tp_dispatch="alltoall")
    assert not [c for c in gemm.collectives if c.group == "etp"]
    m = 2
    for kind in ("all_gather", "reduce_scatter"):
        e = _one(disp, "etp", kind)
        assert e.group_size == t and e.critical
        assert e.message_bytes == pytest.approx(b * s * 2 * 1.25 * 2048 * 2)  # k copies x capacity, bf16
        assert e.calls_per_step == m * L * 2  # forward and backward, per MoE layer and micro-batch
        # the TP group keeps the attention's pair only: half the calls of the dense-like accounting
        assert _one(disp, "tp", kind).calls_per_step == pytest.approx(_one(gemm, "tp", kind).calls_per_step / 2)
    no_etp = comm_per_step(moe, cl, train, lay.model_copy(update={"etp": 1}), moe_tp_dispatch="alltoall")
    assert no_etp.collectives == comm_per_step(moe, cl, train, lay.model_copy(update={"etp": 1})).collectives
    assert comm_per_step(MODEL, cl, train, lay.model_copy(update={"ep": 1}), moe_tp_dispatch="alltoall").collectives \
        == comm_per_step(MODEL, cl, train, lay.model_copy(update={"ep": 1})).collectives  # dense: unchanged
    with pytest.raises(ConfigError, match="dispatch"):
        comm_per_step(moe, cl, train, lay, moe_tp_dispatch="deepep")
