"""The search's branch and bound: the group bound is below every member's bound and every member's step
time, the expert all-to-all floor is below what plan() charges, and a MoE search with overlapped
all-to-alls still finds the exhaustive best."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.planner import search_layouts
from scalelab.planner.comm import comm_per_step
from scalelab.planner.flops import flops_per_step
from scalelab.planner.frameworks import get_framework
from scalelab.planner.step_time import (
    StepTimeBound,
    attention_hardware_flops,
    ep_exposed_floor_s,
    group_step_time_lower_bound,
)

MIXTRAL = get_model("mixtral-8x7b")
CLUSTER = get_cluster("h800", 32)
TRAIN = TrainSpec(seq_len=4096, global_batch=64)
POLICIES = ("none", "selective", "full")
# DeepSeek-V3's overlap settings (DualPipe hides the all-to-alls, 20 of 132 SMs) on the generic policies
DUALPIPE = dataclasses.replace(get_framework("deepseek-v3"), policy_aliases=())


def _opts():
    out = []
    for rc in POLICIES:
        f = flops_per_step(MIXTRAL, TRAIN, recompute=rc)
        out.append((rc, f.hardware, attention_hardware_flops(f, rc)))
    return out


@pytest.mark.parametrize("tp,pp,cp,ep", [(1, 1, 1, 8), (2, 2, 1, 4), (4, 2, 2, 2), (1, 4, 2, 4)])
def test_group_bound_is_below_every_member(tp, pp, cp, ep):
    dp = CLUSTER.n_gpus // (tp * pp * cp)
    base = Layout(dp=dp, tp=tp, pp=pp, cp=cp, ep=ep, sequence_parallel=tp > 1)
    opts = _opts()
    mbs, vs = [1, 2], [1, 2] if pp > 1 else [1]
    comm0 = comm_per_step(MIXTRAL, CLUSTER, TRAIN, base.model_copy(update={"recompute": "full"}), dp=dp)
    floor = ep_exposed_floor_s(comm0, CLUSTER, ep_overlap=1.0, comm_sm_fraction=20 / 132, volume_floor=0.5)
    permute = not DUALPIPE.moe_fused_dispatch  # the bounds take the profile's options as plan() does
    g = group_step_time_lower_bound(MIXTRAL, CLUSTER, TRAIN, base, dp=dp, options=opts, micro_batches=mbs,
                                    interleaves=vs, ep_floor_s=floor, moe_permute=permute)
    assert g > 0
    for z in (1, 3):
        lay0 = base.model_copy(update={"zero": z, "recompute": "full"})
        bound = StepTimeBound(MIXTRAL, CLUSTER, TRAIN, lay0, dp=dp, dp_comm=comm_per_step(
            MIXTRAL, CLUSTER, TRAIN, lay0, dp=dp), ep_overlap=1.0, comm_sm_fraction=20 / 132, ep_volume_floor=0.5,
            moe_permute=permute)
        for (rc, hw, att), mb, v in itertools.product(opts, mbs, vs):
            lb = bound(rc, mb, v, hardware_flops=hw, attention_flops=att)
            assert g <= lb * (1 + 1e-9), (z, rc, mb, v)
            lay = lay0.model_copy(update={"recompute": rc, "micro_batch": mb, "interleave": v})
            p = plan(MIXTRAL, CLUSTER, TRAIN, lay, framework=DUALPIPE, memory_limit_bytes=1e15)
            assert lb <= p.step_time_s * (1 + 1e-9), (z, rc, mb, v, lb, p.step_time_s)


def test_ep_floor_is_below_the_charged_all_to_all():
    """What the bound keeps of the all-to-alls is no more than plan() charges, with and without overlap."""
    lay = Layout(ep=8, recompute="full")
    comm = comm_per_step(MIXTRAL, CLUSTER, TRAIN, lay, dp=32)
    for ov, f in ((0.0, 0.0), (1.0, 20 / 132), (0.5, 0.1), (1.0, 0.0)):
        prof = dataclasses.replace(DUALPIPE, ep_overlap=ov, comm_sm_fraction=f, ep_nodes_per_token=None)
        p = plan(MIXTRAL, CLUSTER, TRAIN, lay, framework=prof, memory_limit_bytes=1e15)
        floor = ep_exposed_floor_s(comm, CLUSTER, ep_overlap=ov, comm_sm_fraction=f)
        assert 0 <= floor <= p.time.ep_s * (1 + 1e-9), (ov, f)
        assert (floor > 0) == (ov < 1 or f > 0)
        if ov == 0.0:  # nothing hidden: the floor is the bandwidth part of all of it
            assert floor == pytest.approx(p.time.ep_s, rel=0.2) and floor > 0


def test_moe_search_with_overlap_agrees_with_exhaustive_evaluation():
    """Branch and bound with DualPipe-style overlap (deepseek-v3 profile) keeps the exhaustive best."""
    kw = dict(allow_offload=False, max_interleave=1, max_cp=1, max_micro_batch=2, zero_stages=(1, 3),
              recompute=POLICIES, framework="deepseek-v3")
    r = search_layouts(MIXTRAL, CLUSTER, TRAIN, top=1, **kw)
    best = None
    for tp, pp, ep, z, rc, mb in itertools.product((1, 2, 4, 8), (1, 2, 4, 8), (1, 2, 4, 8), (1, 3), POLICIES,
                                                   (1, 2)):
        if tp * pp > 32 or (32 // (tp * pp)) % ep:
            continue
        for etp in ({tp, 1} if tp > 1 and ep > 1 else {None}):
            lay = Layout(tp=tp, pp=pp, ep=ep, etp=None if etp == tp else etp, zero=z, recompute=rc,
                         micro_batch=mb, sequence_parallel=tp > 1)
            p = plan(MIXTRAL, CLUSTER, TRAIN, lay, framework="deepseek-v3")
            if p.feasible and (best is None or p.step_time_s < best.step_time_s):
                best = p
    assert best is not None and r.best
    assert r.best[0].step_time_s == pytest.approx(best.step_time_s)
    assert r.n_pruned_by_bound > 0


def test_bound_stays_below_a_tp_group_across_nodes():
    """TP16 over two 8-GPU nodes: the bound's TP floor times the ring at the bandwidth comm_per_step gives
    it (the NICs of the group's 8 ranks in a node, ``comm.group_bandwidth_bytes_per_s``), so it stays a
    lower bound of plan()'s step time."""
    m, cl = get_model("llama-3.1-70b"), get_cluster("h100-sxm", 64)
    tr = TrainSpec(seq_len=4096, global_batch=64)
    lay = Layout(tp=16, pp=2, zero=1, sequence_parallel=True, recompute="full")
    f = flops_per_step(m, tr, recompute="full")
    bound = StepTimeBound(m, cl, tr, lay, dp=2, dp_comm=comm_per_step(m, cl, tr, lay, dp=2))
    lb = bound("full", 1, 1, hardware_flops=f.hardware, attention_flops=attention_hardware_flops(f, "full"))
    p = plan(m, cl, tr, lay, memory_limit_bytes=1e15)
    assert 0 < lb <= p.step_time_s * (1 + 1e-9)
