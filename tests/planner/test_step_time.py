"""Step-time model: the pipeline bubble, overlap of DP traffic, efficiency and measured inputs."""

from __future__ import annotations

import math

import pytest

from scalelab import get_cluster, get_model
from scalelab.arch.spec import ModelSpec
from scalelab.errors import ConfigError
from scalelab.hardware.spec import ClusterSpec, GPUSpec
from scalelab.planner import Layout, TrainSpec, comm_per_step, plan
from scalelab.planner.comm import CommBreakdown
from scalelab.planner.step_time import measured_step_time, model_step_time

GPU = GPUSpec(name="test", peak_flops_per_s={"bf16": 1e15}, memory_bytes=80e9, memory_bandwidth_bytes_per_s=3e12,
              intra_node_bandwidth_bytes_per_s=400e9, inter_node_bandwidth_bytes_per_s=50e9)
MODEL = ModelSpec(n_layers=16, d_model=2048, n_heads=16, d_ff=8192, vocab_size=32000)


def _st(layout, n_gpus=16, global_batch=64, **kw):
    cl = ClusterSpec(gpu=GPU, n_gpus=n_gpus)
    train = TrainSpec(seq_len=2048, global_batch=global_batch)
    dp = n_gpus // layout.model_parallel_size()
    comm = kw.pop("comm", None) or comm_per_step(MODEL, cl, train, layout, dp=dp)
    return model_step_time(MODEL, cl, train, layout, hardware_flops=1e18, comm=comm, dp=dp, **kw)


@pytest.mark.parametrize("pp, v, mb", [(4, 1, 1), (4, 2, 1), (8, 1, 2), (8, 4, 1)])
def test_pipeline_bubble_fraction(pp, v, mb):
    """Narayanan et al. 2021 eq. 1 and section 2.2.2: bubble = (p-1)/(v m) of the ideal time."""
    st = _st(Layout(pp=pp, interleave=v, micro_batch=mb, dp=16 // pp), comm=CommBreakdown())
    m = 64 // ((16 // pp) * mb)
    ideal = st.matmul_s + st.elementwise_s + st.tp_s + st.cp_s + st.ep_s + st.pp_s
    assert st.bubble_s == pytest.approx(ideal * (pp - 1) / (v * m))


def test_matmul_time_and_efficiency():
    st = _st(Layout(), comm=CommBreakdown(), efficiency=0.5)
    assert st.matmul_s == pytest.approx(1e18 / 16 / (1e15 * 0.5))
    assert _st(Layout(), comm=CommBreakdown(), efficiency=0.25).matmul_s == pytest.approx(2 * st.matmul_s)
    assert _st(Layout(), comm=CommBreakdown()).efficiency == GPU.matmul_efficiency  # device default


def test_dp_overlap_hides_gradient_traffic():
    lay = Layout(zero=1)
    none = _st(lay, dp_overlap=0.0)
    full = _st(lay, dp_overlap=1.0)
    assert none.dp_exposed_s == pytest.approx(none.dp_total_s) and none.dp_total_s > 0
    assert full.dp_exposed_s < none.dp_exposed_s
    assert none.step_time_s - full.step_time_s == pytest.approx(none.dp_exposed_s - full.dp_exposed_s)


def test_uneven_stages_set_the_pace():
    """15 layers on 4 stages: a stage with 4 layers sets the time; the last one holds 3 and the LM head
    (0.8 of a layer here), which is less."""
    m15 = MODEL.model_copy(update={"n_layers": 15})
    cl = ClusterSpec(gpu=GPU, n_gpus=16)
    train = TrainSpec(seq_len=2048, global_batch=64)
    st = model_step_time(m15, cl, train, Layout(pp=4, dp=4), hardware_flops=1e18, comm=CommBreakdown(), dp=4)
    head = 6.0 * m15.d_model * m15.vocab_size * train.global_batch_tokens
    layer = (1e18 - head) / 15
    assert 3 * layer + head < 4 * layer
    assert st.matmul_s == pytest.approx(4 * layer / 4 / (1e15 * GPU.matmul_efficiency))


@pytest.mark.parametrize("pp, recompute", [(1, "full"), (4, "full"), (8, "selective"), (16, "none"), (6, "full")])
def test_last_stage_runs_its_layers_and_the_whole_lm_head(pp, recompute):
    """A 1F1B pipeline runs at its slowest stage's pace (Narayanan et al. 2021 sec. 2.2): the last one,
    with floor(L/p) layers and the LM head (forward and backward, never recomputed), or one with
    ceil(L/p) layers, on n/p GPUs (32 layers on 6 stages: 5 and the head, 1.6 layers' worth, > 6)."""
    from scalelab.planner import flops_per_step

    model = get_model("llama-3.1-8b")
    cl = ClusterSpec(gpu=GPU, n_gpus=96)
    train = TrainSpec(seq_len=2048, global_batch=192)
    lay = Layout(pp=pp, recompute=recompute, flash_attention=False)
    p = plan(model, cl, train, lay)
    f = flops_per_step(model, train, recompute=recompute)
    head = 3.0 * dict(f.detail)["logits"]
    assert head > 0
    L = model.n_layers
    layer = (f.hardware - head) / L
    stage = max(math.ceil(L / pp) * layer, (L // pp) * layer + head)
    per_gpu = stage / (96 / pp) if pp > 1 else f.hardware / 96
    assert p.time.matmul_s == pytest.approx(per_gpu / (1e15 * GPU.matmul_efficiency), rel=1e-9)


def test_offload_and_cpu_optimizer_add_time():
    base = _st(Layout(zero=1), comm=CommBreakdown())
    off = _st(Layout(zero=1, offload_optimizer="cpu"), comm=CommBreakdown(), offload_bytes_per_step=1e12,
              host_state_bytes=1e11)
    assert off.offload_total_s == pytest.approx(1e12 / GPU.pcie_bandwidth_bytes_per_s)
    assert off.host_optimizer_s > 0
    assert off.step_time_s > base.step_time_s


def test_measured_inputs():
    st = measured_step_time(hardware_flops=1e18, n_gpus=10, peak_dtype="bf16", measured_tflops_per_gpu=100)
    assert st.step_time_s == pytest.approx(1000.0) and st.source == "measured_tflops"
    st = measured_step_time(hardware_flops=1e18, n_gpus=10, peak_dtype="bf16", measured_step_time_s=3.0)
    assert st.step_time_s == 3.0 and math.isnan(st.bubble_s)


@pytest.mark.parametrize("kw", [{"measured_step_time_s": -1}, {"measured_tflops_per_gpu": 0}, {},
                                {"measured_step_time_s": 1, "measured_tflops_per_gpu": 1}])
def test_measured_bad_values(kw):
    with pytest.raises(ConfigError):
        measured_step_time(hardware_flops=1e18, n_gpus=10, peak_dtype="bf16", **kw)


@pytest.mark.parametrize("kw", [{"efficiency": 0.0}, {"efficiency": 1.2}, {"dp_overlap": -0.1}, {"dp_overlap": 2}])
def test_model_bad_values(kw):
    with pytest.raises(ConfigError):
        _st(Layout(), comm=CommBreakdown(), **kw)


def test_fp8_runs_at_the_fp8_peak_and_fails_clearly_without_one():
    from scalelab.planner.step_time import compute_dtype

    assert compute_dtype("fp8", {"bf16": 1, "fp8": 2}) == "fp8"
    assert compute_dtype("bf16", {"fp16": 1}) == "fp16"  # V100
    assert compute_dtype("fp32", {"fp32": 1, "tf32": 2}) == "tf32"
    cl = ClusterSpec(gpu=GPU, n_gpus=1)
    with pytest.raises(ConfigError, match="fp8"):
        model_step_time(MODEL, cl, TrainSpec(seq_len=2048, global_batch=1, precision="fp8"), Layout(),
                        hardware_flops=1e15, comm=CommBreakdown(), dp=1)


def test_fused_attention_runs_at_its_own_efficiency():
    """FlashAttention FLOPs run at ``attention_efficiency``; without FlashAttention the attention core is
    batched GEMMs at the matmul efficiency (the HBM traffic of its softmax is the elementwise term)."""
    lay = Layout()
    base = _st(lay, comm=CommBreakdown(), efficiency=0.5)
    slow = _st(lay, comm=CommBreakdown(), efficiency=0.5, attention_flops=2e17, attention_efficiency=0.25)
    # 2e17 of the 1e18 dense FLOPs leave the GEMMs; the kernel does flash_attention_work of them (causal
    # tiles skipped, scores recomputed in backward) at half the speed
    from scalelab.planner.step_time import flash_attention_work
    work = flash_attention_work(lay.save_policy)
    assert 0.5 < work < 0.6
    assert slow.matmul_s - base.matmul_s == pytest.approx(2e17 / 16 * (work / (1e15 * 0.25) - 1 / (1e15 * 0.5)))
    no_flash = _st(Layout(flash_attention=False), comm=CommBreakdown(), efficiency=0.5, attention_flops=2e17,
                   attention_efficiency=0.25)
    assert no_flash.matmul_s == pytest.approx(base.matmul_s)


def test_attention_flops_from_the_flops_breakdown():
    from scalelab.planner import FlopConventions, flops_per_step
    from scalelab.planner.step_time import attention_hardware_flops

    train = TrainSpec(seq_len=2048, global_batch=8)
    f = flops_per_step(MODEL, train)
    fwd = dict(f.detail)["attention_scores"]
    assert attention_hardware_flops(f, "none") == pytest.approx(3 * fwd)
    assert attention_hardware_flops(flops_per_step(MODEL, train, recompute="full"), "full") == pytest.approx(4 * fwd)
    sel3 = flops_per_step(MODEL, train, recompute="selective",
                          conventions=FlopConventions(selective_recompute_passes=3))
    assert attention_hardware_flops(sel3, "selective") == pytest.approx(6 * fwd)
    assert attention_hardware_flops(flops_per_step(MODEL, train, conventions=FlopConventions(method="6N")), "none") == 0


def test_ep_overlap_hides_expert_all_to_all_up_to_the_compute():
    from scalelab.arch.spec import MoESpec

    moe = ModelSpec(n_layers=4, d_model=2048, n_heads=16, d_ff=8192, vocab_size=32000,
                    moe=MoESpec(n_experts=16, top_k=4, d_expert=1408))
    cl = ClusterSpec(gpu=GPU, n_gpus=16)
    train = TrainSpec(seq_len=4096, global_batch=64)
    lay = Layout(ep=16, zero=1)
    comm = comm_per_step(moe, cl, train, lay, dp=16)
    kw = dict(hardware_flops=1e16, comm=comm, dp=16)
    exposed = model_step_time(moe, cl, train, lay, ep_overlap=0.0, **kw)
    hidden = model_step_time(moe, cl, train, lay, ep_overlap=1.0, **kw)
    total = comm.by_group()["ep"]
    assert exposed.ep_s == pytest.approx(total)
    assert hidden.ep_s == pytest.approx(max(0.0, total - (hidden.matmul_s + hidden.elementwise_s)))
    with pytest.raises(ConfigError):
        model_step_time(moe, cl, train, lay, ep_overlap=1.5, **kw)


def test_fp8_dispatch_halves_the_forward_dispatch_bytes():
    from scalelab.arch.spec import MoESpec

    moe = ModelSpec(n_layers=4, d_model=2048, n_heads=16, d_ff=8192, vocab_size=32000,
                    moe=MoESpec(n_experts=16, top_k=4, d_expert=1408))
    gpu8 = GPU.model_copy(update={"peak_flops_per_s": {"bf16": 1e15, "fp8": 2e15}})
    cl = ClusterSpec(gpu=gpu8, n_gpus=16)
    bf16 = comm_per_step(moe, cl, TrainSpec(seq_len=4096, global_batch=64), Layout(ep=16), dp=16)
    fp8 = comm_per_step(moe, cl, TrainSpec(seq_len=4096, global_batch=64, precision="fp8"), Layout(ep=16), dp=16)
    ep = lambda cb: sum(c.traffic_bytes for c in cb.collectives if c.group == "ep")  # noqa: E731
    assert ep(fp8) == pytest.approx(ep(bf16) * (0.5 + 3) / 4)  # 1 of 4 all-to-alls at half the bytes


def test_eager_pytorch_moves_more_elementwise_bytes_than_fused_kernels():
    """An eager Llama layer (one kernel per op: fp32 RMSNorm chain, complex rotary, unfused SwiGLU) moves
    about 3x the bytes of fused kernels; torchtitan's profile is eager, torchtitan-compile fused."""
    from scalelab.planner.frameworks import get_framework
    from scalelab.planner.step_time import elementwise_bytes_per_token_layer

    m = get_model("llama-3.1-8b")
    fused = elementwise_bytes_per_token_layer(m, Layout(), 8192, "bf16")
    eager = elementwise_bytes_per_token_layer(m, Layout(), 8192, "bf16", fused=False)
    assert 2.5 < eager / fused < 3.5
    assert not get_framework("torchtitan").fused_elementwise
    assert get_framework("torchtitan-compile").fused_elementwise


def test_fp8_recipe_runs_attention_core_at_bf16_peak():
    """Only the linear layers run in FP8 (DeepSeek-V3 report sec. 3.3.1): the attention core's time is the
    same under bf16 and fp8 recipes, while the linear layers' halves (without Float8's casts and bf16 head:
    ``FLOAT8_IDEAL``; tests/planner/test_float8.py checks what they add)."""
    from scalelab.planner.comm import CommBreakdown
    from scalelab.planner.step_time import FLOAT8_IDEAL, model_step_time

    m, c = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 8)
    kw = dict(comm=CommBreakdown(), dp=8, efficiency=0.5, attention_efficiency=0.5)
    lay = Layout(dp=8)
    t16 = model_step_time(m, c, TrainSpec(seq_len=8192, global_batch=8), lay, hardware_flops=1e17,
                          attention_flops=1e17, **kw)
    t8 = model_step_time(m, c, TrainSpec(seq_len=8192, global_batch=8, precision="fp8"), lay,
                         hardware_flops=1e17, attention_flops=1e17, **kw)
    lin8 = model_step_time(m, c, TrainSpec(seq_len=8192, global_batch=8, precision="fp8"), lay,
                           hardware_flops=1e17, attention_flops=0.0, float8=FLOAT8_IDEAL, **kw)
    lin16 = model_step_time(m, c, TrainSpec(seq_len=8192, global_batch=8), lay,
                            hardware_flops=1e17, attention_flops=0.0, **kw)
    assert t8.matmul_s == pytest.approx(t16.matmul_s)
    assert lin8.matmul_s == pytest.approx(lin16.matmul_s / 2, rel=1e-3)  # 1978.9 vs 2 x 989.4 TFLOP/s


# ---- context parallelism: ring attention's overlap and its cost at short sequences -------------------

def _ring(seq_len, cp, n_gpus):
    """Llama 3.1 405B at TP8 with ``cp`` ranks of ring attention and 16M-token batches."""
    from scalelab.planner import plan

    model, cluster = get_model("llama-3.1-405b"), get_cluster("h100-sxm", n_gpus)
    train = TrainSpec(seq_len=seq_len, global_batch_tokens=16 * 1024 * 1024)
    return plan(model, cluster, train, Layout(tp=8, pp=16, cp=cp, zero=1, sequence_parallel=True,
                                              interleave=1, recompute="none"),
                memory_limit_bytes=1e15)


def test_ring_attention_hides_its_transfers_at_long_sequences_not_its_overheads_at_short_ones():
    """Ring attention (Liu et al. 2023 sec. 3) overlaps each K,V transfer with one block's attention; the
    split also costs short attention kernels, fp32 output corrections and per-step launches. Per token, at
    128K with CP16 (Llama 3's long-context stage) these are a few percent of the attention time; at 8K
    with CP8 they are a large fraction of it, and the transfers no longer hide fully behind compute."""
    from scalelab.planner.step_time import RingAttentionCost, cp_ring_cost, flash_tile_efficiency

    long, short = _ring(131072, 16, 16384), _ring(8192, 8, 16384)
    for p in (long, short):
        st = p.time
        assert st.cp_transfer_s > 0 and 0 <= st.cp_exposed_s <= st.cp_transfer_s
        assert st.cp_s >= st.cp_exposed_s
    assert long.time.cp_exposed_s == 0.0  # 128K: a block's attention outlasts its transfer

    def overhead_share(p):
        model, cluster, train, lay = p.model, p.cluster, p.train, p.layout
        from scalelab.planner.step_time import attention_hardware_flops, compute_terms

        _, attn_s, _ = compute_terms(model, cluster, train, lay, dp=lay.dp, hardware_flops=p.flops.hardware,
                                     attention_flops=attention_hardware_flops(p.flops, lay.recompute))
        ring = cp_ring_cost(model, cluster, train, lay, dp=lay.dp, attention_s=attn_s)
        assert isinstance(ring, RingAttentionCost) and ring.exposed_s == 0.0  # no transfers given
        return ring.unavoidable_s / attn_s

    assert overhead_share(short) > 3 * overhead_share(long)
    assert overhead_share(long) < 0.2
    # Short kernels: FlashAttention's fixed per-tile work weighs more on 512 keys than on 4096.
    assert flash_tile_efficiency(512) < flash_tile_efficiency(4096) < flash_tile_efficiency(65536) < 1


def test_ring_recipe_charges_what_the_cp_implementation_moves_per_step():
    """The ring's corrections are the recipe's bytes per element of the local queries and keys/values:
    TransformerEngine's fused merge (the default) against torch's eager fp32 merges as torchtitan ran
    them, which also see K and V expanded to every query head (``repeat_kv`` before SDPA), so a
    grouped-query model (Llama 3.1 8B: 32 query heads, 8 K,V heads) pays for 4x its K,V width."""
    from scalelab.planner.comm import RING_TORCH_ALLGATHER, RING_TRANSFORMER_ENGINE
    from scalelab.planner.step_time import cp_ring_cost

    model, cluster = get_model("llama-3.1-8b"), get_cluster("h100-hbm2e", 8)
    train, lay = TrainSpec(seq_len=262144, global_batch=1), Layout(cp=8, zero=3, recompute="full")

    def ring(recipe):
        return cp_ring_cost(model, cluster, train, lay, dp=1, attention_s=50.0, recipe=recipe)

    default, te, torch_ = ring(None), ring(RING_TRANSFORMER_ENGINE), ring(RING_TORCH_ALLGATHER)
    assert default == te
    q, kv = model.q_dim, model.kv_dim + model.v_dim
    kv_expanded = kv * model.n_heads / model.n_kv_heads
    assert kv_expanded == 2 * q  # 8B: K and V at every one of the 32 heads
    n_fwd = 2  # full recompute reruns the attention forward

    def per_step(r, kv_elems):
        return (n_fwd * (r.fwd_q_bytes * q + r.fwd_kv_bytes * kv_elems)
                + r.bwd_q_bytes * q + r.bwd_kv_bytes * kv_elems)

    expected = per_step(RING_TORCH_ALLGATHER, kv_expanded) / per_step(RING_TRANSFORMER_ENGINE, kv)
    assert torch_.correction_s / te.correction_s == pytest.approx(expected, rel=1e-12)
    assert expected > 4  # eager fp32 merges move several times what the fused corrections do
    # The same correction bytes in seconds: (c - 1) steps x tokens per GPU x layers / (0.8 x HBM bandwidth).
    hbm = cluster.gpu.memory_bandwidth_bytes_per_s * 0.8
    assert torch_.correction_s == pytest.approx(7 * per_step(RING_TORCH_ALLGATHER, kv_expanded) * 262144 / 8
                                                * model.n_layers / hbm, rel=1e-12)
    # Only the corrections depend on the recipe.
    assert (torch_.short_block_s, torch_.step_overhead_s) == (te.short_block_s, te.step_overhead_s)
    # Expansion changes nothing for a model whose K,V heads are its query heads.
    import dataclasses

    mha = model.model_copy(update={"n_kv_heads": model.n_heads})
    plain = dataclasses.replace(RING_TORCH_ALLGATHER, kv_expanded=False)
    assert (cp_ring_cost(mha, cluster, train, lay, dp=1, attention_s=50.0, recipe=plain)
            == cp_ring_cost(mha, cluster, train, lay, dp=1, attention_s=50.0, recipe=RING_TORCH_ALLGATHER))


def test_torchtitan_profiles_run_torchs_ring_and_the_bound_stays_below_the_model():
    """torchtitan's profiles carry torch's CP recipe, Megatron's TransformerEngine's; the recipe moves a
    CP layout's step time and nothing without CP, and the search's lower bound uses the same recipe."""
    from scalelab.planner.comm import RING_TORCH_ALLGATHER, RING_TRANSFORMER_ENGINE, RingRecipe
    from scalelab.planner.frameworks import get_framework
    from scalelab.planner.step_time import step_time_lower_bound, timing_flops

    assert get_framework("torchtitan").cp_ring == get_framework("torchtitan-compile").cp_ring == RING_TORCH_ALLGATHER
    assert get_framework("megatron").cp_ring == get_framework("nemo").cp_ring == RING_TRANSFORMER_ENGINE
    model, cluster = get_model("llama-3.1-8b"), get_cluster("h100-hbm2e", 8)
    for cp, seq in ((1, 32768), (4, 131072)):
        train, lay = TrainSpec(seq_len=seq, global_batch=8 // cp), Layout(cp=cp, zero=3, recompute="full")
        tt, mg = (plan(model, cluster, train, lay, framework=f).time
                  for f in ("torchtitan-compile", "megatron"))
        if cp == 1:
            assert tt.cp_s == mg.cp_s == 0.0
        else:
            assert tt.cp_s > mg.cp_s > 0
            assert tt.matmul_s == mg.matmul_s
            p = plan(model, cluster, train, lay, framework="torchtitan-compile")
            hw, att = timing_flops(p.flops, lay.recompute)
            for recipe in (RING_TORCH_ALLGATHER, RING_TRANSFORMER_ENGINE):
                full = model_step_time(model, cluster, train, lay, hardware_flops=hw, attention_flops=att,
                                       comm=p.comm, dp=2, cp_ring=recipe)
                low = step_time_lower_bound(model, cluster, train, lay, dp=2, hardware_flops=hw,
                                            attention_flops=att, cp_ring=recipe)
                assert low <= full.step_time_s
    with pytest.raises(ConfigError, match="fwd_q_bytes"):
        RingRecipe(fwd_q_bytes=-1.0, fwd_kv_bytes=0.0, bwd_q_bytes=8.0, bwd_kv_bytes=8.0)


def test_torch_all_gather_hides_behind_the_first_call_of_each_pass_only():
    """torch's ring (``RING_TORCH_ALLGATHER``) waits for its K,V all-gather before the second call of a
    pass, so only the first (1/c of the pass's attention) hides it, and its last dK,dV send is awaited
    right after the loop; TransformerEngine's ring of sends hides behind (c - 1)/c of the attention."""
    from scalelab.planner.step_time import allgather_exposed_s

    # full AC (2 forward passes) at c = 8: 45 s of attention = 4.5 passes: one forward call 10/8 s, one
    # backward call 2.5 x that; 2 s of gather per pass; 8 sends of 0.5 s
    fwd_call, bwd_call = 10.0 / 8, 25.0 / 8
    got = allgather_exposed_s(45.0, 2, 8, gather_s=6.0, send_s=4.0)
    assert got == pytest.approx(2 * (2.0 - fwd_call) + max(0.0, 2.0 - bwd_call) + 0.5)
    assert allgather_exposed_s(45.0, 2, 8, gather_s=0.0, send_s=4.0) == pytest.approx(0.5)  # the last send
    # sends longer than a backward call show for every step
    assert allgather_exposed_s(45.0, 2, 8, gather_s=0.0, send_s=8 * 4.0) == pytest.approx(7 * (4 - bwd_call) + 4)


@pytest.mark.parametrize("run_id, gather_exposed", [("torchtitan-8b-8-cp8", False),
                                                    ("torchtitan-405b-512-cp8", True)])
def test_torchtitan_cp_rows_expose_the_gather_only_across_nodes(run_id, gather_exposed):
    """torchtitan's Table 2 (8B, CP inside one NVLink node) and Table 6 (405B, TP8 inside the node, so the
    CP ring crosses the network at 400 Gb/s per GPU): on NVLink only the final dK,dV send shows; across
    nodes the gather of 7 expanded K,V blocks outlasts the first (causal) call of each forward pass."""
    from _published_runs import load, run_plan  # benchmarks/ (conftest.py)

    run = next(r for r in load()["runs"] if r["id"] == run_id)
    p = run_plan(run)
    sends = [x for x in p.comm.collectives if x.group == "cp" and x.kind == "p2p"]
    gather = [x for x in p.comm.collectives if x.group == "cp" and x.kind == "all_gather"]
    assert len(sends) == len(gather) == 1
    assert gather[0].link == ("inter" if gather_exposed else "intra")
    last_send = sends[0].time_s / p.layout.cp
    if gather_exposed:
        assert p.time.cp_exposed_s > 3 * last_send
    else:
        assert p.time.cp_exposed_s == pytest.approx(last_send)


def test_ring_transfers_exposed_when_the_network_outruns_the_attention():
    """With a slow network the per-step transfer outlasts the step's attention and shows in the step."""
    slow = GPU.model_copy(update={"inter_node_bandwidth_bytes_per_s": 1e9})
    cl = ClusterSpec(gpu=slow, n_gpus=16)
    train = TrainSpec(seq_len=8192, global_batch=16)
    lay = Layout(tp=2, cp=8, dp=1)
    comm = comm_per_step(MODEL, cl, train, lay, dp=1)
    st = model_step_time(MODEL, cl, train, lay, hardware_flops=1e17, attention_flops=1e16, comm=comm, dp=1)
    assert st.cp_exposed_s > 0.5 * st.cp_transfer_s
    assert st.cp_s > st.cp_exposed_s


def _bound_layouts():
    from hypothesis import strategies as st

    @st.composite
    def layouts(draw):
        tp = draw(st.sampled_from([1, 2, 4, 8]))
        pp = draw(st.sampled_from([1, 2, 4, 8]))
        cp = draw(st.sampled_from([1, 2, 4]))
        z = draw(st.sampled_from([0, 1, 2, 3]))
        return Layout(tp=tp, pp=pp, cp=cp, zero=z, sequence_parallel=tp > 1 and draw(st.booleans()),
                      recompute=draw(st.sampled_from(["none", "selective", "full", "torchtitan-op"])),
                      micro_batch=draw(st.sampled_from([1, 2, 4])),
                      interleave=draw(st.sampled_from([1, 2])) if pp > 1 else 1,
                      offload_optimizer=draw(st.sampled_from(["none", "cpu"])),
                      flash_attention=draw(st.booleans()))

    return layouts()


def test_step_time_lower_bound_never_exceeds_the_model():
    """Property: over random layouts, models and batches, step_time_lower_bound (what the search ranks by)
    is at most model_step_time of the same layout, and not vacuous (at least the compute time)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from scalelab.planner import plan
    from scalelab.planner.plan import check_layout
    from scalelab.planner.step_time import step_time_lower_bound

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_bound_layouts(), st.sampled_from(["llama-3.1-8b", "mixtral-8x7b", "llama-3.1-70b"]),
           st.sampled_from([32, 64, 256]), st.sampled_from([2048, 8192]), st.sampled_from([0.0, 0.5, 1.0]))
    def check(layout, name, n_gpus, seq_len, dp_overlap):
        model, cluster = get_model(name), get_cluster("h100-sxm", n_gpus)
        train = TrainSpec(seq_len=seq_len, global_batch=256)
        if check_layout(model, cluster, train, layout):
            return
        p = plan(model, cluster, train, layout, dp_overlap=dp_overlap, memory_limit_bytes=1e15)
        mem = p.memory
        host_opt = 2.0 * mem.host_bytes / 50e9 + 2.0 * mem.nvme_bytes / cluster.gpu.nvme_bandwidth_bytes_per_s
        from scalelab.planner.step_time import attention_hardware_flops

        lb = step_time_lower_bound(model, cluster, train, p.layout, dp=p.layout.dp, hardware_flops=p.flops.hardware,
                                   attention_flops=attention_hardware_flops(p.flops, p.layout.recompute),
                                   dp_overlap=dp_overlap, dp_comm=p.comm, host_optimizer_s=host_opt)
        assert lb <= p.step_time_s * (1 + 1e-9), (layout.short(), lb, p.step_time_s)
        assert lb >= p.time.matmul_s

    check()


def test_step_time_bound_of_a_group_equals_the_bound_of_each_layout():
    """The search builds one StepTimeBound per group of layouts (same degrees, ZeRO, offload) and calls it
    for each save policy, micro-batch and interleave, reusing its caches across calls: every call must
    give exactly step_time_lower_bound of that layout, built from scratch."""
    from scalelab.planner import plan
    from scalelab.planner.step_time import StepTimeBound, attention_hardware_flops, step_time_lower_bound

    cases = [("llama-3.1-70b", 256, Layout(dp=4, tp=8, pp=4, cp=2, zero=2, sequence_parallel=True)),
             ("mixtral-8x7b", 64, Layout(dp=8, tp=2, pp=4, ep=4, zero=3, sequence_parallel=True))]
    train = TrainSpec(seq_len=8192, global_batch=256)
    for name, n_gpus, group in cases:
        model, cluster = get_model(name), get_cluster("h100-sxm", n_gpus)
        base = plan(model, cluster, train, group, memory_limit_bytes=1e15)
        bound = StepTimeBound(model, cluster, train, group, dp=group.dp, dp_overlap=0.5, dp_comm=base.comm)
        n = 0
        for rc in ("full", "selective", "none"):
            for mb in (1, 2, 4):
                for v in (1, 2):
                    lay = group.model_copy(update={"recompute": rc, "micro_batch": mb, "interleave": v})
                    p = plan(model, cluster, train, lay, memory_limit_bytes=1e15, dp_overlap=0.5)
                    att = attention_hardware_flops(p.flops, rc)
                    want = step_time_lower_bound(model, cluster, train, lay, dp=lay.dp, hardware_flops=p.flops.hardware,
                                                 attention_flops=att, dp_overlap=0.5, dp_comm=base.comm)
                    got = bound(rc, mb, v, hardware_flops=p.flops.hardware, attention_flops=att)
                    assert got == want, (name, lay.short(), got, want)
                    assert 0 < got <= p.step_time_s
                    n += 1
        assert n == 18


def test_recomputed_activation_costs_its_elementwise_rerun():
    """A policy that rebuilds the SwiGLU product in backward pays for rereading gate and up and writing
    the product (3 widths of f per token and layer), so it is slower than keeping everything."""
    from scalelab.planner.step_time import HBM_EFFICIENCY

    model, cluster = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 64)
    train = TrainSpec(seq_len=4096, global_batch=16)
    keep = plan(model, cluster, train, Layout(tp=8, sequence_parallel=True, micro_batch=2))
    act = plan(model, cluster, train, Layout(tp=8, sequence_parallel=True, micro_batch=2, recompute="act"))
    tokens = train.global_batch_tokens / keep.layout.dp
    extra = 3 * model.d_ff / 8 * 2 * tokens * model.n_layers / (cluster.gpu.memory_bandwidth_bytes_per_s
                                                                  * HBM_EFFICIENCY)
    assert act.time.elementwise_s - keep.time.elementwise_s == pytest.approx(extra, rel=1e-6)
    assert act.step_time_s > keep.step_time_s


def test_causal_flash_attention_does_half_the_tiles_and_a_longer_backward():
    """A causal FlashAttention kernel skips the tiles above the diagonal and its backward recomputes the
    scores (2.5 forwards, not 2). Counting causal attention halved in the FLOP conventions must not change
    the predicted time."""
    from scalelab.planner import FlopConventions
    from scalelab.planner.policy import get_save_policy
    from scalelab.planner.step_time import FLASH_BACKWARD_EXTRA, FLASH_CAUSAL_WORK, flash_attention_work

    assert flash_attention_work(get_save_policy("none")) == pytest.approx(
        FLASH_CAUSAL_WORK * (3 + FLASH_BACKWARD_EXTRA) / 3)
    assert flash_attention_work(get_save_policy("full")) == pytest.approx(
        FLASH_CAUSAL_WORK * (4 + FLASH_BACKWARD_EXTRA) / 4)
    m, c = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 8)
    train = TrainSpec(seq_len=32768, global_batch=8)
    lay = Layout(zero=3, recompute="full")
    dense = plan(m, c, train, lay)
    halved = plan(m, c, train, lay, conventions=FlopConventions(causal_halved=True))
    assert halved.step_time_s == pytest.approx(dense.step_time_s, rel=1e-12)
    assert halved.hardware_flops_per_step < dense.hardware_flops_per_step  # the count did change
