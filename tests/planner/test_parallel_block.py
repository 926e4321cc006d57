"""The parallel attention + MLP block (``ModelSpec.parallel_block``: GPT-J, GPT-NeoX, PaLM, Falcon): one TP
collective per block and direction instead of two, the block input saved once, FLOPs unchanged; the
search's bounds stay below plan() and its best layout is the exhaustive best."""

from __future__ import annotations

import itertools

import pytest

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.planner import bounded_candidates, search_layouts
from scalelab.planner.async_tp import async_tp_unfused_rs_per_layer
from scalelab.planner.comm import comm_per_step
from scalelab.planner.flops import flops_per_step
from scalelab.planner.memory import MemoryConventions, activation_bytes_per_layer
from scalelab.planner.step_time import critical_comm_floor_s

SEQ = get_model("llama-3.1-8b", n_layers=8)
PAR = get_model(SEQ, parallel_block=True)
PAR1 = get_model(SEQ, parallel_block=True, parallel_block_norms=1)
CLUSTER = get_cluster("h100-sxm", 16)
TRAIN = TrainSpec(seq_len=4096, global_batch=16)


def _tp_calls(model, layout, train=TRAIN) -> dict[str, float]:
    cb = comm_per_step(model, CLUSTER, train, layout)
    return {c.name: c.calls_per_step for c in cb.collectives if c.group == "tp"}


@pytest.mark.parametrize("layout", [Layout(tp=4), Layout(tp=4, sequence_parallel=True),
                                    Layout(tp=8, sequence_parallel=True, recompute="full", micro_batch=2),
                                    Layout(tp=2, pp=2, recompute="full")],
                         ids=["tp4", "tp4-sp", "tp8-sp-full", "tp2-pp2-full"])
@pytest.mark.parametrize("model", [PAR, PAR1], ids=["two-norms", "one-norm"])
def test_tp_calls_per_step_halve_for_a_parallel_block(model, layout):
    seq, par = _tp_calls(SEQ, layout), _tp_calls(model, layout)
    assert seq and seq.keys() == par.keys()
    assert par == {k: v / 2 for k, v in seq.items()}


def test_op_level_sac_regathers_halve_too():
    lay = Layout(tp=4, sequence_parallel=True, recompute="torchtitan-op")
    assert _tp_calls(PAR, lay) == {k: v / 2 for k, v in _tp_calls(SEQ, lay).items()}


def test_no_tp_traffic_and_same_flops_at_tp1():
    lay = Layout(pp=2)
    assert _tp_calls(SEQ, lay) == _tp_calls(PAR, lay) == {}
    f_seq, f_par = flops_per_step(SEQ, TRAIN), flops_per_step(PAR, TRAIN)
    assert f_seq == f_par
    assert plan(SEQ, CLUSTER, TRAIN, lay).step_time_s == pytest.approx(plan(PAR, CLUSTER, TRAIN, lay).step_time_s)


def test_moe_layers_without_expert_tp_keep_one_collective():
    moe = get_model("mixtral-8x7b", n_layers=4)
    lay = Layout(tp=2, ep=4, etp=1)
    assert _tp_calls(get_model(moe, parallel_block=True), lay) == _tp_calls(moe, lay)


def test_plan_charges_half_the_tp_time():
    lay = Layout(tp=8, sequence_parallel=True, micro_batch=1)
    seq, par = plan(SEQ, CLUSTER, TRAIN, lay), plan(PAR, CLUSTER, TRAIN, lay)
    assert par.time.tp_s == pytest.approx(seq.time.tp_s / 2)
    assert par.step_time_s < seq.step_time_s


def test_tp_floor_halves_and_stays_below_the_plan():
    lay = Layout(tp=8, pp=2, sequence_parallel=True)
    seq = critical_comm_floor_s(SEQ, CLUSTER, TRAIN, lay, dp=1)
    par = critical_comm_floor_s(PAR, CLUSTER, TRAIN, lay, dp=1)
    pp_only = critical_comm_floor_s(SEQ, CLUSTER, TRAIN, Layout(tp=1, pp=2), dp=8)
    assert 0 < par < seq
    p = plan(PAR, CLUSTER, TRAIN, lay)
    assert par <= (p.time.tp_s + p.time.pp_s) * (1 + 1e-9)
    assert pp_only > 0


def test_async_tp_leaves_both_reduce_scatters_of_a_parallel_block():
    assert async_tp_unfused_rs_per_layer(PAR, separate_qkv=True) == 2
    assert async_tp_unfused_rs_per_layer(SEQ, separate_qkv=True) == 2
    assert async_tp_unfused_rs_per_layer(SEQ, separate_qkv=False) == 1
    train = TrainSpec(seq_len=4096, global_batch=16, precision="fp8")
    lay = Layout(tp=8, sequence_parallel=True)
    for model in (PAR, PAR1):
        p = plan(model, CLUSTER, train, lay, framework="torchtitan-compile", async_tp=True)
        bare = plan(model, CLUSTER, train, lay, framework="torchtitan-compile")
        assert p.feasible and p.step_time_s <= bare.step_time_s


def test_memory_saves_the_block_input_once():
    """Korthikanti et al. 2022's count with TP + SP + selective recompute is 34 s b h / t per layer; a parallel
    block with one norm saves one norm input and one linear input fewer (30), with two norms one norm input
    fewer (32)."""
    m = get_model("llama-3.1-8b", n_layers=1, d_model=6144, n_heads=64, n_kv_heads=64, d_ff=4 * 6144,
                  ffn_kind="gelu", norm_kind="layernorm")
    lay = Layout(tp=8, sequence_parallel=True, recompute="selective", flash_attention=False)
    conv = MemoryConventions.korthikanti()

    def per(model):
        return activation_bytes_per_layer(model, 2048, 1, lay, conventions=conv) / (2048 * 6144) * 8

    assert per(m) == pytest.approx(34)
    assert per(get_model(m, parallel_block=True)) == pytest.approx(32)
    assert per(get_model(m, parallel_block=True, parallel_block_norms=1)) == pytest.approx(30)


def test_search_bounds_stay_below_plan_for_a_parallel_block():
    for model, async_tp, fw in ((PAR, False, None), (PAR1, True, "torchtitan-compile")):
        rows = bounded_candidates(model, CLUSTER, TRAIN, memory_limit_bytes=1e15, framework=fw, async_tp=async_tp,
                                  max_pp=2, max_cp=1, max_micro_batch=2, max_interleave=1, zero_stages=(1, 3),
                                  allow_offload=False, recompute=("none", "full"))
        feasible = [(p, g, lb) for p, g, lb in rows if p.feasible]
        assert any(p.layout.tp > 1 for p, _, _ in feasible)
        bad = [(str(p.layout), g, lb, p.step_time_s) for p, g, lb in feasible
               if not (g <= lb * (1 + 1e-9) and lb <= p.step_time_s * (1 + 1e-9))]
        assert not bad, bad[:3]


def test_search_keeps_the_exhaustive_best_for_a_parallel_block():
    model = get_model(PAR, n_layers=16)
    kw = dict(allow_offload=False, max_interleave=1, max_cp=1, max_micro_batch=2, max_pp=4, zero_stages=(1, 3),
              recompute=("none", "full"))
    r = search_layouts(model, CLUSTER, TRAIN, top=1, **kw)
    best = None
    for tp, pp, z, rc, mb in itertools.product((1, 2, 4, 8), (1, 2, 4), (1, 3), ("none", "full"), (1, 2)):
        p = plan(model, CLUSTER, TRAIN, Layout(tp=tp, pp=pp, zero=z, recompute=rc, micro_batch=mb,
                                               sequence_parallel=tp > 1))
        if p.feasible and (best is None or p.step_time_s < best.step_time_s):
            best = p
    assert best is not None and r.best
    assert r.best[0].step_time_s == pytest.approx(best.step_time_s)


def test_elementwise_norm_traffic_follows_the_norms():
    """One shared norm moves half a sequential block's norm bytes; two norms on the input gathered once are
    not split over tp (with sequence parallelism), and are split like any norm without it."""
    from scalelab.planner.step_time import elementwise_bytes_per_token_layer, rerun_elementwise_bytes_per_token_layer

    sp, plain = Layout(tp=8, sequence_parallel=True), Layout(tp=8)
    seq_ln, par_ln, par1_ln = (rerun_elementwise_bytes_per_token_layer(m, sp, "bf16")["layernorm"]
                               for m in (SEQ, PAR, PAR1))
    assert par1_ln == pytest.approx(seq_ln / 2) and par_ln == pytest.approx(seq_ln * 8)
    assert rerun_elementwise_bytes_per_token_layer(PAR, plain, "bf16") == \
        rerun_elementwise_bytes_per_token_layer(SEQ, plain, "bf16")
    for fused in (True, False):
        seq = elementwise_bytes_per_token_layer(SEQ, sp, 4096, "bf16", fused=fused)
        assert elementwise_bytes_per_token_layer(PAR1, sp, 4096, "bf16", fused=fused) < seq
        assert elementwise_bytes_per_token_layer(PAR, sp, 4096, "bf16", fused=fused) > seq
