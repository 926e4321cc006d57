"""torch's AsyncTP (``async_tp``; planner/async_tp.py): what it hides and what it cannot, its memory, its
errors, and that the search's bounds stay below the model with it on."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.errors import ConfigError
from scalelab.planner import search_layouts
from scalelab.planner.async_tp import ASYNC_TP_HIDING_EFFICIENCY, async_tp_cost, async_tp_unfused_rs_per_layer
from scalelab.planner.comm import comm_per_step
from scalelab.planner.flops import flops_per_step
from scalelab.planner.frameworks import FRAMEWORKS, get_framework
from scalelab.planner.step_time import (
    StepTimeBound,
    attention_hardware_flops,
    critical_comm_floor_s,
    group_step_time_lower_bound,
)

FW = "torchtitan-compile-2025"
CLUSTER = get_cluster("h100-hbm2e", 64)
CASES = [  # (model, train, layout): torchtitan's two AsyncTP setups, on 64 GPUs
    (get_model("llama-3.1-70b"), TrainSpec(seq_len=8192, global_batch=64, precision="fp8"),
     Layout(tp=8, zero=3, micro_batch=8, recompute="full", sequence_parallel=True)),
    (get_model("llama-3.1-8b"), TrainSpec(seq_len=8192, global_batch=96),
     Layout(tp=8, zero=3, micro_batch=12, recompute="selective", sequence_parallel=True)),
]


def _pair(model, train, layout, **kw):
    off = plan(model, CLUSTER, train, layout, framework=FW, memory_limit_bytes=1e15)
    on = plan(model, CLUSTER, train, layout, framework=FW, async_tp=True, memory_limit_bytes=1e15, **kw)
    return off, on


@pytest.mark.parametrize("model,train,layout", CASES, ids=["70b-full-fp8", "8b-op-sac"])
def test_async_tp_hides_part_of_the_tp_traffic_and_no_more_than_its_gemms_cover(model, train, layout):
    off, on = _pair(model, train, layout)
    full = plan(model, CLUSTER, train, layout, framework=FW, tp_overlap=1.0, memory_limit_bytes=1e15)
    assert on.options["async_tp"] and "async_tp" not in off.options
    assert on.time.matmul_s == pytest.approx(off.time.matmul_s)
    assert 0 < on.time.tp_hidden_s < off.time.tp_s
    assert on.time.tp_s + on.time.tp_hidden_s == pytest.approx(off.time.tp_s)
    # the transfers hide under at most eta (1 - 1/t) of the GEMM time
    assert on.time.tp_hidden_s <= ASYNC_TP_HIDING_EFFICIENCY * (1 - 1 / layout.tp) * on.time.matmul_s
    # the collectives it cannot fuse (backward reduce-scatters of summed input gradients) stay exposed
    rs = next(c for c in on.comm.collectives if c.kind == "reduce_scatter" and c.group == "tp")
    unfused = async_tp_unfused_rs_per_layer(model, separate_qkv=True) * model.n_layers * rs.time_s / rs.calls_per_step
    assert on.time.tp_s >= unfused
    assert 1.0 < off.step_time_s / on.step_time_s < off.step_time_s / full.step_time_s


def test_hiding_share_orders_the_step_time_and_zero_only_costs():
    model, train, layout = CASES[0]
    off = plan(model, CLUSTER, train, layout, framework=FW)
    times = []
    for eta in (0.0, ASYNC_TP_HIDING_EFFICIENCY, 1.0):
        prof = dataclasses.replace(get_framework(FW), async_tp=True, async_tp_hiding=eta)
        times.append(plan(model, CLUSTER, train, layout, framework=prof).step_time_s)
    assert times[0] > off.step_time_s  # chunked GEMMs, local copies and partial sums, nothing hidden
    assert times[0] > times[1] > times[2]


def test_one_gemm_column_layers_fuse_their_backward_reduce_scatter():
    """With q, k, v as one GEMM its input gradient is one GEMM's output, whose reduce-scatter inductor fuses
    (with a perfect pipeline that hides more; at the fitted share a fused reduce-scatter can cost more than
    NCCL's, its partial sums being a pass of their own)."""
    model, train, layout = CASES[1]
    cb = comm_per_step(model, CLUSTER, train, layout, dp=8)
    kw = dict(tokens_mb=12 * 8192, n_micro=1, stage_layers=32, rerun_forward=False, gemm_flops_per_s=5e14,
              hbm_bytes_per_s=1.9e12, gemm_input_bytes=2, act_bytes=2, ag_bytes=2, hiding_efficiency=1.0)
    three, one = async_tp_cost(model, layout, cb, separate_qkv=True, **kw), \
        async_tp_cost(model, layout, cb, separate_qkv=False, **kw)
    assert one.exposed_s < three.exposed_s and one.fused_s > three.fused_s
    assert three.exposed_s + three.hidden_s == pytest.approx(cb.by_group()["tp"])


def test_async_tp_needs_tensor_and_sequence_parallelism():
    model, train = CASES[1][0], TrainSpec(seq_len=8192, global_batch=128)
    for lay in (Layout(tp=1, zero=3, micro_batch=2), Layout(tp=8, zero=3, micro_batch=2, sequence_parallel=False)):
        off, on = _pair(model, train, lay)
        assert on.step_time_s == pytest.approx(off.step_time_s) and on.time.tp_hidden_s == 0


def test_async_tp_saves_the_sharded_inputs_unless_conventions_are_given():
    """Without recompute the column-parallel linears save their input: gathered under DTensor's sequence
    parallelism, the shard with AsyncTP's fused all-gather-matmul."""
    model, train = CASES[1][0], CASES[1][1]
    layout = Layout(tp=8, zero=3, micro_batch=2, recompute="none", sequence_parallel=True)
    off, on = _pair(model, train, layout)
    assert on.memory.activations_bytes < off.memory.activations_bytes
    assert on.options["memory_conventions"]["sp_saves_gathered_inputs"] is False
    given = plan(model, CLUSTER, train, layout, framework=FW, async_tp=True,
                 memory_conventions=get_framework(FW).memory)
    assert given.memory.activations_bytes == off.memory.activations_bytes


def test_async_tp_is_off_in_every_profile_and_checked():
    assert not any(p.async_tp for p in FRAMEWORKS.values())
    model, train, layout = CASES[1]
    nemo = plan(model, CLUSTER, train, layout, framework="nemo", async_tp=True)  # replaces nemo's TP overlap
    assert nemo.options["async_tp"] and "tp_overlap" not in nemo.options
    with pytest.raises(ConfigError, match="async_tp"):
        plan(model, CLUSTER, train, layout, framework=FW, async_tp=True, tp_overlap=1.0)
    with pytest.raises(ConfigError, match="async_tp_hiding"):
        plan(model, CLUSTER, train, layout,
             framework=dataclasses.replace(get_framework(FW), async_tp=True, async_tp_hiding=1.5))


@pytest.mark.parametrize("framework", ["torchtitan", "deepspeed"])
def test_async_tp_with_an_eager_profile_is_an_error(framework):
    """AsyncTP is inductor's micro-pipeline pass: torchtitan raises "Async TP requires --training.compile"
    with TP on in eager mode, so an eager profile with async_tp is a layout nobody can run."""
    model, train, layout = CASES[1]
    with pytest.raises(ConfigError, match=r"torch\.compile") as e:
        plan(model, CLUSTER, train, layout, framework=framework, async_tp=True)
    assert framework in str(e.value) and "torchtitan-compile" in str(e.value)
    with pytest.raises(ConfigError, match=r"torch\.compile"):
        search_layouts(model, CLUSTER, train, framework=framework, async_tp=True)
    assert plan(model, CLUSTER, train, layout, framework=framework).feasible is not None  # without it: fine


@pytest.mark.parametrize("tp,pp", [(8, 1), (8, 2), (4, 2)])
def test_bounds_with_async_tp_stay_below_the_model(tp, pp):
    """group bound <= each member's bound <= plan()'s step time with AsyncTP on, every save policy, also
    where the TP traffic outlasts its GEMMs (a slow link); the TP and PP floor <= their exposed time."""
    model = get_model("llama-3.1-8b")
    prof = dataclasses.replace(get_framework(FW), async_tp=True)
    # the bound is built for the layout plan() times: torchtitan gathers ZeRO-3 weights once per step under
    # PP (the profile's layout_defaults, as the search applies them); a bound built for per-micro-batch
    # gathers charges more DP traffic than plan() does and rose above it (fp8 at pp2 on the slow link)
    for cluster, precision in itertools.product(
            (CLUSTER, get_cluster("h100-hbm2e", 64, intra_node_bandwidth_bytes_per_s=5e9)), ("bf16", "fp8")):
        train = TrainSpec(seq_len=8192, global_batch=64, precision=precision)
        dp = cluster.n_gpus // (tp * pp)
        base = Layout(dp=dp, tp=tp, pp=pp, zero=3, sequence_parallel=True, **prof.layout_defaults(pp, 3))
        opts = []
        for rc in ("none", "torchtitan-op", "full"):
            f = flops_per_step(model, train, recompute=rc)
            opts.append((rc, f.hardware, attention_hardware_flops(f, rc)))
        mbs, vs = [1, 2], [1, 2]
        kw = dict(separate_qkv=True, async_tp=True, fused_elementwise=True, float8=prof.float8)
        g = group_step_time_lower_bound(model, cluster, train, base, dp=dp, options=opts, micro_batches=mbs,
                                        interleaves=vs, cp_ring=prof.cp_ring, **kw)
        lay0 = base.model_copy(update={"recompute": "full"})
        bound = StepTimeBound(model, cluster, train, lay0, dp=dp, cp_ring=prof.cp_ring,
                              dp_comm=comm_per_step(model, cluster, train, lay0, dp=dp), **kw)
        for (rc, hw, att), mb, v in itertools.product(opts, mbs, vs):
            if v > 1 and (pp == 1 or model.n_layers % (pp * v)):
                continue
            lb = bound(rc, mb, v, hardware_flops=hw, attention_flops=att)
            assert g <= lb * (1 + 1e-9), (rc, mb, v)
            lay = lay0.model_copy(update={"recompute": rc, "micro_batch": mb, "interleave": v})
            p = plan(model, cluster, train, lay, framework=prof, memory_limit_bytes=1e15)
            assert lb <= p.step_time_s * (1 + 1e-9), (rc, mb, v, lb, p.step_time_s)
            assert critical_comm_floor_s(model, cluster, train, lay, dp=dp, async_tp=True, separate_qkv=True) <= (
                p.time.tp_s + p.time.pp_s) * (1 + 1e-9)


def test_search_with_async_tp_agrees_with_exhaustive_evaluation():
    """Branch and bound with AsyncTP's floor (only the reduce-scatters it cannot fuse) keeps the exhaustive
    best, planned with AsyncTP."""
    model, cluster, train = get_model("llama-3.1-8b"), get_cluster("h100-hbm2e", 16), TrainSpec(seq_len=8192,
                                                                                                  global_batch=32)
    kw = dict(allow_offload=False, max_interleave=2, max_cp=1, max_micro_batch=2, zero_stages=(3,),
              recompute=("none", "full"), framework=FW)
    r = search_layouts(model, cluster, train, top=1, async_tp=True, **kw)
    best = None
    for tp, pp, v, rc, mb in itertools.product((1, 2, 4, 8), (1, 2, 4), (1, 2), ("none", "full"), (1, 2)):
        if v > 1 and (pp == 1 or model.n_layers % (pp * v)):
            continue
        lay = Layout(tp=tp, pp=pp, interleave=v, zero=3, recompute=rc, micro_batch=mb, sequence_parallel=tp > 1)
        p = plan(model, cluster, train, lay, framework=FW, async_tp=True)
        if p.feasible and (best is None or p.step_time_s < best.step_time_s):
            best = p
    assert best is not None and r.best and r.best[0].options["async_tp"]
    assert r.best[0].step_time_s == pytest.approx(best.step_time_s)


@pytest.mark.parametrize("tp", [8, 1])
def test_async_tp_with_a_tp_overlap_is_one_error_from_plan_and_from_model_step_time(tp):
    """One rule, one message: plan()'s options and a direct model_step_time call (which checked it only with TP
    and sequence parallelism, and in other words) raise the same ConfigError, naming the overlap and the fix."""
    from scalelab.planner.comm import CommBreakdown
    from scalelab.planner.step_time import model_step_time

    model, train, _ = CASES[1]
    layout = Layout(tp=tp, zero=3, micro_batch=12, recompute="selective", sequence_parallel=tp > 1)
    with pytest.raises(ConfigError) as from_plan:
        plan(model, CLUSTER, train, layout, framework=FW, async_tp=True, tp_overlap=0.5)
    with pytest.raises(ConfigError) as direct:
        model_step_time(model, CLUSTER, train, layout, hardware_flops=1e18, comm=CommBreakdown(), dp=64 // tp,
                        async_tp=True, tp_overlap=0.5)
    assert str(direct.value) == str(from_plan.value)
    assert "(got 0.5)" in str(direct.value) and "drop tp_overlap" in str(direct.value)
