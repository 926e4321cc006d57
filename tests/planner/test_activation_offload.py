"""CPU activation offloading (``Layout.offload_activation_layers``; issue 9): Megatron-Core's
``cpu_offloading_num_layers`` with Transformer Engine's offload schedule, which keeps at most the other layers'
saved activations on the GPU and moves the offloaded ones to host memory and back once per micro-batch."""

from __future__ import annotations

import copy

import pytest
from _held_out_megatron_bridge import load, plan_row  # benchmarks/ (conftest.py)

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan, search_layouts
from scalelab.errors import ConfigError
from scalelab.planner.explain import outside_space, parse_layout
from scalelab.planner.memory import activation_offload_bytes

GiB = 2.0**30
MODEL = get_model("llama-3.1-8b")
TRAIN = TrainSpec(seq_len=8192, global_batch=64)


def _plan(n: int, **layout):
    return plan(MODEL, get_cluster("h100-sxm", 8), TRAIN,
                Layout(zero=3, micro_batch=2, offload_activation_layers=n, **layout))


def test_offloaded_layers_leave_the_gpu_and_go_to_the_host():
    base, half = _plan(0), _plan(16)
    moved = half.memory.get("offloaded_activations_bytes")
    # the layers' saved activations, less the recompute working set (none here), are 32 equal layers
    per_layer = base.memory.get("layer_activations_bytes") / MODEL.n_layers
    assert moved == pytest.approx(16 * per_layer)
    assert half.memory.activations_bytes == pytest.approx(base.memory.activations_bytes - moved)
    assert half.memory.total_bytes == pytest.approx(base.memory.total_bytes - moved)
    assert half.memory.host_bytes == pytest.approx(moved) == pytest.approx(half.memory.host_activations_bytes)
    micro_batches = TRAIN.global_batch // (8 * 2)
    assert half.memory.pcie_bytes_per_step == pytest.approx(2 * moved * micro_batches)  # out and back
    assert base.memory.host_bytes == 0 and base.memory.pcie_bytes_per_step == 0


def test_offloaded_activations_are_not_optimizer_states():
    """The CPU optimizer step reads offloaded optimizer states only: activation offloading alone costs no host
    optimizer time, and its traffic hides behind the compute on an H100's PCIe link."""
    t0, t1 = _plan(0).time, _plan(16).time
    assert t1.host_optimizer_s == 0 and t1.offload_total_s > 0 and t1.offload_exposed_s == 0
    assert t1.step_time_s == pytest.approx(t0.step_time_s)


def test_activation_traffic_hides_only_behind_its_own_pass():
    """Out during the forward (a third of the compute), back during the backward: a transfer the whole step
    would hide shows once it outlasts the forward."""
    p = _plan(16)
    compute = p.time.matmul_s + p.time.elementwise_s
    each_way = compute / 3 * 1.5  # half as long again as the forward
    bw = 2 * p.memory.activation_offload_bytes_per_step / (2 * each_way)
    q = plan(MODEL, get_cluster("h100-sxm", 8, pcie_bandwidth_bytes_per_s=bw / 2), TRAIN,
             Layout(zero=3, micro_batch=2, offload_activation_layers=16))
    assert q.time.offload_total_s == pytest.approx(2 * each_way, rel=1e-6)
    assert q.time.offload_exposed_s == pytest.approx(each_way - compute / 3, rel=1e-3)  # the backward hides its half


def test_traffic_is_exposed_when_the_host_link_is_slow():
    cluster = get_cluster("h100-sxm", 8, pcie_bandwidth_bytes_per_s=1e9)
    p = plan(MODEL, cluster, TRAIN, Layout(zero=3, micro_batch=2, offload_activation_layers=16))
    assert p.time.offload_exposed_s > 0
    assert p.time.step_time_s == pytest.approx(_plan(0).time.step_time_s + p.time.offload_exposed_s, rel=1e-6)


def test_the_first_layers_are_offloaded_dense_before_moe():
    assert activation_offload_bytes(4, n_dense=3, n_moe=5, act_dense=1.0, act_moe=10.0) == 13.0
    assert activation_offload_bytes(2, n_dense=3, n_moe=5, act_dense=1.0, act_moe=10.0, inflight=3) == 6.0


@pytest.mark.parametrize("n, layout, reason", [
    (8, {"pp": 2}, "needs pp=1"),
    (32, {}, "must be below the model's n_layers=32"),
])
def test_impossible_offloads_name_the_value(n, layout, reason):
    p = _plan(n, **layout)
    assert not p.feasible and any(reason in r and f"offload_activation_layers={n}" in r for r in p.reasons)


def test_short_form_round_trips_and_old_hashes_stay():
    lay = Layout(tp=2, zero=1, offload_activation_layers=12)
    assert "oa12" in str(lay) and parse_layout(str(lay)) == lay.model_copy(update={"dp": None})
    assert "offload_activation_layers" not in Layout().to_dict()
    assert lay.to_dict()["offload_activation_layers"] == 12
    assert outside_space(lay, {}) == ["offload_activation_layers=12: the search did not try activation offloading "
                                      "(activation_offload=False, `--activation-offload`)"]
    assert outside_space(lay, {"activation_offload": True}) == []
    with pytest.raises(ValueError):
        Layout(offload_activation_layers=-1)


def test_megatron_bridge_70b_on_gb200_fits_only_with_its_offloaded_layers():
    """The recipe offloads 40 of 80 layers' activations (cpu_offloading_num_layers 40); without it the layout
    needs about 320 GiB of a GB200's 184."""
    run = next(r for r in load()["runs"] if r["id"] == "mbridge-25.11-gb200-llama3-70b-fp8-cs-64")
    assert run["layout"]["offload_activation_layers"] == 40
    without = copy.deepcopy(run)
    del without["layout"]["offload_activation_layers"]
    p, q = plan_row(run), plan_row(without)
    assert p.feasible and not q.feasible
    assert p.time.step_time_s == pytest.approx(q.time.step_time_s)  # the C2C traffic hides behind the compute
    assert p.memory.host_activations_bytes / GiB == pytest.approx(
        q.memory.activations_bytes / GiB / 2, rel=0.01)  # half the layers, the working set aside


def test_search_refuses_to_hold_activation_offloading_rather_than_ignore_it():
    with pytest.raises(ConfigError, match=r"does not hold activation offloading fixed.*got 40.*--activation-offload"):
        search_layouts(MODEL, get_cluster("h100-sxm", 8), TRAIN, fixed={"offload_activation_layers": 40})


def test_search_offloads_the_fewest_layers_that_make_a_layout_fit():
    """With activation_offload the search keeps layouts without PP that fit only with offloading, each with the
    fewest offloaded layers (one fewer does not fit), and finds Megatron-Bridge's GB200 recipe: FSDP at
    micro-batch 2 with about half the layers offloaded. Without it, no layout offloads; and a search where the
    best layouts fit anyway gives the same plans either way."""
    run = next(r for r in load()["runs"] if r["id"] == "mbridge-25.11-gb200-llama3-70b-fp8-cs-64")
    p = plan_row(run)
    args = (p.model, p.cluster, p.train)
    off = search_layouts(*args, framework="nemo", activation_offload=True, top=5)
    base = search_layouts(*args, framework="nemo", top=5)
    assert not any(b.layout.offload_activation_layers for b in base.best)
    top = off.best[0]
    n = top.layout.offload_activation_layers
    assert top.layout.pp == 1 and top.layout.micro_batch >= 2 and 30 <= n < p.model.n_layers
    assert top.step_time_s <= base.best[0].step_time_s
    fewer = plan(*args, top.layout.model_copy(update={"offload_activation_layers": n - 1}), framework="nemo")
    assert not fewer.feasible and fewer.reasons[0].startswith("out of memory")
    assert off.constraints["activation_offload"] is True
    # 8B on 8 H100 fits without offloading: the best plan is the same; offloaded layouts rank only as fast as it,
    # none with the PCIe traffic exposed beyond its pass (out in the forward, back in the backward)
    small = (MODEL, get_cluster("h100-sxm", 8), TRAIN)
    with_off, without = search_layouts(*small, activation_offload=True), search_layouts(*small)
    assert with_off.best[0].layout == without.best[0].layout
    for b in with_off.best:
        assert b.step_time_s >= with_off.best[0].step_time_s
        if b.layout.offload_activation_layers:
            assert b.time.offload_total_s > 0 and b.time.offload_exposed_s == 0
