"""TP and PP communication overlaps (``tp_overlap``, ``pp_overlap``; the ``nemo`` profile): what they hide,
what they cannot, that they stay out of the profiles whose runs did not have them, and that the search's
bounds hide no more than the model does."""

from __future__ import annotations

import itertools

import pytest
from _published_runs import load  # benchmarks/ (conftest.py)

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.errors import ConfigError
from scalelab.planner import search_layouts
from scalelab.planner.comm import comm_per_step
from scalelab.planner.flops import flops_per_step
from scalelab.planner.frameworks import FRAMEWORKS, get_framework
from scalelab.planner.step_time import (
    StepTimeBound,
    attention_hardware_flops,
    critical_comm_floor_s,
    group_step_time_lower_bound,
)

MODEL = get_model("llama-3.1-70b")
CLUSTER = get_cluster("h100-sxm", 64)
TRAIN = TrainSpec(seq_len=8192, global_batch=64)


def test_nemo_hides_tp_and_interleaved_pp_traffic_that_megatron_charges():
    lay = Layout(tp=8, pp=4, interleave=2, sequence_parallel=True, recompute="selective")
    meg = plan(MODEL, CLUSTER, TRAIN, lay, framework="megatron")
    nemo = plan(MODEL, CLUSTER, TRAIN, lay, framework="nemo")
    assert meg.time.tp_s > 0 and meg.time.pp_s > 0
    assert meg.time.tp_hidden_s == 0 and meg.time.pp_hidden_s == 0
    # everything nemo does not show is what it hides, and nothing else changes
    assert nemo.time.tp_s + nemo.time.tp_hidden_s == pytest.approx(meg.time.tp_s)
    assert nemo.time.pp_s + nemo.time.pp_hidden_s == pytest.approx(meg.time.pp_s)
    assert nemo.time.pp_hidden_s == pytest.approx(meg.time.pp_s)
    assert nemo.time.matmul_s == pytest.approx(meg.time.matmul_s)
    assert nemo.step_time_s < meg.step_time_s


def test_pp_overlap_needs_an_interleaved_schedule():
    """Megatron-LM forces overlap_p2p_comm off without a virtual pipeline: 1F1B sends stay exposed."""
    lay = Layout(tp=8, pp=4, sequence_parallel=True)
    meg = plan(MODEL, CLUSTER, TRAIN, lay, framework="megatron")
    nemo = plan(MODEL, CLUSTER, TRAIN, lay, framework="nemo")
    assert nemo.time.pp_hidden_s == 0
    assert nemo.time.pp_s == pytest.approx(meg.time.pp_s) and nemo.time.pp_s > 0


def test_tp_overlap_needs_sequence_parallelism():
    """Megatron-LM refuses TP communication overlap without sequence parallelism: all-reduces stay exposed."""
    lay = Layout(tp=8, pp=4, interleave=2, sequence_parallel=False)
    meg = plan(MODEL, CLUSTER, TRAIN, lay, framework="megatron")
    nemo = plan(MODEL, CLUSTER, TRAIN, lay, framework="nemo")
    assert nemo.time.tp_hidden_s == 0 and nemo.time.tp_s == pytest.approx(meg.time.tp_s) and nemo.time.tp_s > 0
    dp = CLUSTER.n_gpus // 32
    floor = critical_comm_floor_s(MODEL, CLUSTER, TRAIN, lay, dp=dp, tp_overlap=1.0, pp_overlap=1.0)
    assert 0 < floor <= nemo.time.tp_s + nemo.time.pp_s


def test_tp_overlap_hides_no_more_than_the_gemms_it_runs_beside():
    """With a slow intra-node link the TP collectives outlast the linear GEMMs: only the GEMM time is hidden."""
    slow = get_cluster("h100-sxm", 64, intra_node_bandwidth_bytes_per_s=2e9)
    lay = Layout(tp=8, pp=4, interleave=2, sequence_parallel=True)
    p = plan(MODEL, slow, TRAIN, lay, framework="nemo")
    gemm = p.time.matmul_s - p.time.cp_s  # cp_s is 0; attention is inside matmul_s
    assert p.time.tp_s > 0
    assert 0 < p.time.tp_hidden_s <= gemm
    assert p.time.tp_hidden_s < p.time.tp_s + p.time.tp_hidden_s


def test_overlaps_are_overridable_and_checked():
    lay = Layout(tp=8, pp=4, interleave=2, sequence_parallel=True)
    meg = plan(MODEL, CLUSTER, TRAIN, lay, framework="megatron")
    # nemo is megatron with the overlaps on and its optimizer's 16-bit master remainders (its memory conventions)
    off = plan(MODEL, CLUSTER, TRAIN, lay, framework="nemo", tp_overlap=0.0, pp_overlap=0.0,
               memory_conventions=FRAMEWORKS["megatron"].memory)
    assert off.step_time_s == pytest.approx(meg.step_time_s)
    half = plan(MODEL, CLUSTER, TRAIN, lay, framework="megatron", pp_overlap=0.5)
    assert half.time.pp_hidden_s == pytest.approx(0.5 * meg.time.pp_s)
    for bad in (-0.1, 1.5):
        with pytest.raises(ConfigError, match="tp_overlap"):
            plan(MODEL, CLUSTER, TRAIN, lay, tp_overlap=bad)
        with pytest.raises(ConfigError, match="pp_overlap"):
            plan(MODEL, CLUSTER, TRAIN, lay, pp_overlap=bad)


def test_only_the_nemo_profile_sets_tp_and_pp_overlap():
    """Rows of teams that did not document these overlaps (Megatron-LM 2021-22, Meta's Llama 3, torchtitan,
    DeepSpeed, DeepSeek) keep their traffic on the critical path."""
    for name, prof in FRAMEWORKS.items():
        assert (prof.tp_overlap, prof.pp_overlap) == ((1.0, 1.0) if name == "nemo" else (0.0, 0.0)), name
    runs = load()["runs"]
    assert {r["id"] for r in runs if r["framework"] == "nemo"} == {
        f"nemo-405b-{p}-{n}" for p in ("bf16", "fp8") for n in (576, 1152, 2304)}


@pytest.mark.parametrize("tp,pp,sp", [(8, 4, True), (4, 8, True), (8, 2, True), (8, 4, False)])
def test_bounds_with_overlaps_stay_below_the_model(tp, pp, sp):
    """The group bound <= every member's bound <= plan()'s step time with the nemo overlaps on, also where
    the TP traffic outlasts its GEMMs (a slow link)."""
    prof = get_framework("nemo")
    for cluster in (CLUSTER, get_cluster("h100-sxm", 64, intra_node_bandwidth_bytes_per_s=5e9)):
        dp = cluster.n_gpus // (tp * pp)
        base = Layout(dp=dp, tp=tp, pp=pp, sequence_parallel=sp)
        opts = []
        for rc in ("none", "selective", "full"):
            f = flops_per_step(MODEL, TRAIN, recompute=rc)
            opts.append((rc, f.hardware, attention_hardware_flops(f, rc)))
        mbs, vs = [1, 2], [1, 2, 4]
        g = group_step_time_lower_bound(MODEL, cluster, TRAIN, base, dp=dp, options=opts, micro_batches=mbs,
                                        interleaves=vs, tp_overlap=prof.tp_overlap, pp_overlap=prof.pp_overlap)
        lay0 = base.model_copy(update={"zero": 1, "recompute": "full"})
        bound = StepTimeBound(MODEL, cluster, TRAIN, lay0, dp=dp, dp_comm=comm_per_step(MODEL, cluster, TRAIN, lay0,
                                                                                        dp=dp),
                              tp_overlap=prof.tp_overlap, pp_overlap=prof.pp_overlap)
        for (rc, hw, att), mb, v in itertools.product(opts, mbs, vs):
            if (MODEL.n_layers % (pp * v)) and v > 1:
                continue
            lb = bound(rc, mb, v, hardware_flops=hw, attention_flops=att)
            assert g <= lb * (1 + 1e-9), (rc, mb, v)
            lay = lay0.model_copy(update={"recompute": rc, "micro_batch": mb, "interleave": v})
            p = plan(MODEL, cluster, TRAIN, lay, framework="nemo", memory_limit_bytes=1e15)
            assert lb <= p.step_time_s * (1 + 1e-9), (rc, mb, v, lb, p.step_time_s)
            assert critical_comm_floor_s(MODEL, cluster, TRAIN, lay, dp=dp, tp_overlap=1.0, pp_overlap=1.0) <= (
                p.time.tp_s + p.time.pp_s) * (1 + 1e-9)


def test_nemo_search_agrees_with_exhaustive_evaluation():
    """Branch and bound with the overlaps (floors reduced) keeps the exhaustive best."""
    model, cluster, train = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 16), TrainSpec(seq_len=8192,
                                                                                                global_batch=32)
    kw = dict(allow_offload=False, max_interleave=2, max_cp=1, max_micro_batch=2, zero_stages=(1,),
              recompute=("none", "full"), framework="nemo")
    r = search_layouts(model, cluster, train, top=1, **kw)
    best = None
    for tp, pp, v, rc, mb in itertools.product((1, 2, 4, 8), (1, 2, 4), (1, 2), ("none", "full"), (1, 2)):
        if v > 1 and (pp == 1 or model.n_layers % (pp * v)):
            continue
        lay = Layout(tp=tp, pp=pp, interleave=v, zero=1, recompute=rc, micro_batch=mb, sequence_parallel=tp > 1)
        p = plan(model, cluster, train, lay, framework="nemo")
        if p.feasible and (best is None or p.step_time_s < best.step_time_s):
            best = p
    assert best is not None and r.best
    assert r.best[0].step_time_s == pytest.approx(best.step_time_s)


@pytest.mark.parametrize("framework", [None, "nemo", "torchtitan"])
def test_explain_plans_the_other_layout_as_the_search_did(framework):
    """explain_layout re-plans with the search's own options, framework included: the best layout
    explained against itself has the same step time (it used to drop the framework, so under nemo the
    'other' plan charged the TP and PP traffic the best had hidden)."""
    from scalelab.planner import explain_layout

    model, cluster = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 64)
    r = search_layouts(model, cluster, TrainSpec(seq_len=4096, global_batch=256), top=3, framework=framework)
    for p in r.best:
        cmp = explain_layout(r, p.layout)
        assert cmp.other.step_time_s == pytest.approx(p.step_time_s), (framework, p.layout.short())


def test_a_profile_can_charge_the_sms_hidden_dp_traffic_holds():
    """FrameworkProfile.dp_comm_sm_fraction f (0 in every shipped profile): hiding h seconds of DP/ZeRO
    traffic behind compute costs h f / (1 - f), in plan() and in the search alike, and is part of the plan's
    options (its config hash); a share of 1 or more is refused by name."""
    import dataclasses

    from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
    from scalelab.errors import ConfigError
    from scalelab.planner import search_layouts
    from scalelab.planner.frameworks import FRAMEWORKS, get_framework

    assert all(p.dp_comm_sm_fraction == 0.0 for p in FRAMEWORKS.values())
    model, cluster = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 64)
    train, lay = TrainSpec(seq_len=4096, global_batch=128), Layout(zero=3, micro_batch=2)
    base_prof = get_framework("torchtitan")
    f = 0.2
    prof = dataclasses.replace(base_prof, name="torchtitan-sm", dp_comm_sm_fraction=f)
    base = plan(model, cluster, train, lay, framework=base_prof)
    charged = plan(model, cluster, train, lay, framework=prof)
    hidden = base.time.dp_total_s - base.time.dp_exposed_s
    assert hidden > 0
    assert charged.step_time_s - base.step_time_s == pytest.approx(hidden * f / (1 - f))
    assert charged.options["dp_comm_sm_fraction"] == f and "dp_comm_sm_fraction" not in base.options
    assert charged.config_hash != base.config_hash
    r = search_layouts(model, cluster, train, top=3, framework=prof)
    for p in r.best:
        assert p.step_time_s == plan(model, cluster, train, p.layout, framework=prof).step_time_s
    with pytest.raises(ConfigError, match="dp_comm_sm_fraction"):
        plan(model, cluster, train, lay, framework=dataclasses.replace(prof, dp_comm_sm_fraction=1.0))


def test_token_dispatcher_tp_traffic_stays_exposed_under_the_nemo_tp_overlap():
    """The nemo profile hides TP collectives behind their GEMMs (Transformer Engine userbuffers), but its MoE
    layers' expert-TP gathers and scatters are the token dispatcher's plain NCCL calls (moe_tp_dispatch
    "alltoall", group etp): all of their time reaches the step's TP term. With the dense-like accounting
    ("gemm") the same layout's TP term is smaller, and a dense model plans exactly as before."""
    import dataclasses

    model = get_model("mixtral-8x7b")
    cluster = get_cluster("h100-sxm", 64)
    train = TrainSpec(seq_len=4096, global_batch=256)
    lay = Layout(tp=4, ep=8, sequence_parallel=True, zero=1)
    nemo = get_framework("nemo")
    assert nemo.moe_tp_dispatch == "alltoall"
    p = plan(model, cluster, train, lay, framework=nemo)
    etp = p.comm.by_group()["etp"]
    assert etp > 0 and p.time.tp_s >= etp - 1e-12
    as_gemm = plan(model, cluster, train, lay, framework=dataclasses.replace(nemo, moe_tp_dispatch="gemm"))
    assert "etp" not in as_gemm.comm.by_group() and as_gemm.time.tp_s < p.time.tp_s
    assert p.options["moe_tp_dispatch"] == "alltoall" and "moe_tp_dispatch" not in as_gemm.options
    dense = get_model("llama-3.1-8b")
    a = plan(dense, cluster, train, Layout(tp=4, sequence_parallel=True), framework=nemo)
    b = plan(dense, cluster, train, Layout(tp=4, sequence_parallel=True),
             framework=dataclasses.replace(nemo, moe_tp_dispatch="gemm"))
    assert a.step_time_s == b.step_time_s and a.options == b.options  # and the same config hash
