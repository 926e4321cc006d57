"""Layout search: ranking, explained rejections, exhaustive agreement on a small space, and the
Llama 3 405B layout (Dubey et al. 2024, arXiv:2407.21783, Table 4: TP8 x CP1 x PP16 x DP128 at 8K)."""

from __future__ import annotations

import itertools

import pytest

from scalelab import get_cluster, get_model
from scalelab.errors import ConfigError
from scalelab.planner import Layout, SearchResult, TrainSpec, plan, search_layouts


@pytest.fixture(scope="module")
def small():
    return get_model("llama-3.1-8b"), get_cluster("h100-sxm", 16), TrainSpec(seq_len=4096, global_batch=64,
                                                                             total_tokens=1e11)


def test_search_ranks_feasible_plans_and_accounts_for_every_layout(small):
    r = search_layouts(*small, top=5)
    assert isinstance(r, SearchResult)
    assert 1 <= len(r.best) <= 5
    times = [p.step_time_s for p in r.best]
    assert times == sorted(times)
    assert all(p.feasible for p in r.best)
    assert r.n_explored == r.n_feasible + r.n_rejected + r.n_pruned_by_bound
    assert r.rejected and all(rej.reasons for rej in r.rejected)
    d = r.to_dict()
    assert d["best"][0]["feasible"] and d["n_explored"] == r.n_explored
    assert "rejected, by reason" in r.report()


def test_search_agrees_with_exhaustive_evaluation(small):
    """The best plan found equals the best of every layout evaluated one by one (same space)."""
    model, cluster, train = small
    r = search_layouts(model, cluster, train, top=1, allow_offload=False, max_interleave=1, max_cp=2,
                       max_micro_batch=4, zero_stages=(1, 2, 3), recompute=("none", "selective", "full"))
    best = None
    for tp, pp, cp, z, rc, mb in itertools.product((1, 2, 4, 8), (1, 2, 4, 8, 16), (1, 2), (1, 2, 3),
                                                   ("none", "selective", "full"), (1, 2, 4)):
        if tp * pp * cp > 16:
            continue
        p = plan(model, cluster, train, Layout(tp=tp, pp=pp, cp=cp, zero=z, recompute=rc, micro_batch=mb,
                                               sequence_parallel=tp > 1))
        if p.feasible and (best is None or p.step_time_s < best.step_time_s):
            best = p
    assert r.best[0].step_time_s == pytest.approx(best.step_time_s)


def test_nothing_fits_gives_reasons():
    r = search_layouts(get_model("llama-3.1-405b"), get_cluster("h100-sxm", 8), TrainSpec(seq_len=8192, global_batch=8))
    assert r.best == ()
    assert r.rejected_counts.get("out of memory", 0) > 0
    assert "no layout fits" in r.report()


def test_moe_search_prefers_expert_parallelism():
    """Mixtral-8x7B on 32 H100: sharding experts (EP8 inside a node) beats replicating them, whose 47B
    parameters push every ep=1 layout into pipeline or tensor parallelism."""
    args = (get_model("mixtral-8x7b"), get_cluster("h100-sxm", 32), TrainSpec(seq_len=4096, global_batch=64))
    kw = dict(top=1, allow_offload=False, max_cp=2, max_interleave=2)
    r = search_layouts(*args, **kw)
    no_ep = search_layouts(*args, fixed={"ep": 1}, **kw)
    assert r.best[0].layout.ep > 1
    assert r.best[0].step_time_s < no_ep.best[0].step_time_s


def test_fixed_fields_are_respected(small):
    r = search_layouts(*small, top=3, fixed={"tp": 2, "zero": 1})
    assert r.best and all(p.layout.tp == 2 and p.layout.zero == 1 for p in r.best)


@pytest.mark.parametrize("kw", [{"top": 0}, {"objective": "speed"}, {"max_tp": 0}, {"zero_stages": (4,)},
                                {"recompute": ("some",)}, {"fixed": {"color": 1}}, {"efficiency": 1.5},
                                {"dp_overlap": -1}, {"ep_overlap": 2}, {"attention_efficiency": 0},
                                {"memory_limit_bytes": -5}])
def test_bad_search_arguments(small, kw):
    with pytest.raises(ConfigError):
        search_layouts(*small, **kw)


def test_cost_objective_ranks_like_step_time_on_a_fixed_cluster(small):
    a = search_layouts(*small, top=3)
    b = search_layouts(*small, top=3, objective="cost")
    assert [p.layout for p in a.best] == [p.layout for p in b.best]


def test_llama3_405b_layout_is_feasible_and_explained():
    """Llama 3 405B on 16,384 H100 with 16M-token batches of 8K sequences. Its layout (TP8 PP16 DP128) fits
    in our memory model; the search ranks layouts that trade DP for CP/PP first, because with only 16
    micro-batches per pipeline the 1F1B bubble costs (p-1)/(v m) = 15/(4*16) of the step. Every ranked plan
    must be at least as fast as the best plan with Llama 3's degrees."""
    model, cluster = get_model("llama-3.1-405b"), get_cluster("h100-sxm", 16384)
    train = TrainSpec(seq_len=8192, global_batch_tokens=16 * 1024 * 1024)
    r = search_layouts(model, cluster, train, top=5)
    llama3 = search_layouts(model, cluster, train, top=1, fixed={"tp": 8, "pp": 16, "cp": 1})
    assert llama3.best and llama3.best[0].layout.dp == 128
    assert 0.35 < llama3.best[0].mfu < 0.45  # Llama 3 reports 38-43% BF16 MFU (Table 4)
    assert r.best[0].step_time_s <= llama3.best[0].step_time_s
    bubble = llama3.best[0].time.bubble_s / llama3.best[0].step_time_s
    assert bubble > r.best[0].time.bubble_s / r.best[0].step_time_s
    assert r.n_explored > 10_000


def _space_layouts():
    from hypothesis import strategies as st

    @st.composite
    def layouts(draw):
        tp = draw(st.sampled_from([1, 2, 4, 8]))
        pp = draw(st.sampled_from([1, 2, 4]))
        cp = draw(st.sampled_from([1, 2]))
        z = draw(st.sampled_from([0, 1, 2, 3]))
        oo = draw(st.sampled_from(["none", "cpu"]))
        return Layout(tp=tp, pp=pp, cp=cp, zero=z, offload_optimizer=oo,
                      offload_params=draw(st.sampled_from(["none", "cpu"])) if z == 3 else "none",
                      recompute=draw(st.sampled_from(["none", "selective", "full"])),
                      micro_batch=draw(st.sampled_from([1, 2, 4])),
                      interleave=draw(st.sampled_from([1, 2])) if pp > 1 else 1,
                      sequence_parallel=tp > 1)

    return layouts()


def test_no_layout_of_the_space_beats_the_search():
    """Property: every feasible layout drawn from the searched space is at most as fast as the search's best
    (the step-time bound and the dominance rules never discard a faster layout)."""
    from hypothesis import HealthCheck, given, settings

    model, cluster = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 16)
    train = TrainSpec(seq_len=4096, global_batch=64)
    r = search_layouts(model, cluster, train, top=1, max_cp=2, max_interleave=2, max_micro_batch=4, max_pp=4)
    best = r.best[0].step_time_s

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_space_layouts())
    def check(layout):
        p = plan(model, cluster, train, layout)
        assert bool(p.reasons) != p.feasible
        if p.feasible:
            assert p.step_time_s >= best * (1 - 1e-9), (layout.short(), p.step_time_s, best)
            assert 0 < p.mfu < 1 and p.memory.total_bytes > 0

    check()


def test_layout_str_is_the_short_form_and_search_has_a_frame():
    """str(layout) is what the CLI prints; SearchResult.to_frame() has one row per plan, best first."""
    from scalelab import get_cluster, get_model

    lay = Layout(dp=16, tp=8, pp=4, zero=1, sequence_parallel=True, recompute="selective")
    assert str(lay) == "dp16 tp8 pp4 z1 sp sel mb1" == lay.short()
    pd = pytest.importorskip("pandas")
    r = search_layouts(get_model("llama-3.1-8b"), get_cluster("h100-sxm", 16), TrainSpec(seq_len=4096, global_batch=64),
                       top=3, fixed={"tp": 2})
    df = r.to_frame()
    assert isinstance(df, pd.DataFrame) and len(df) == len(r.best) == 3
    assert list(df["layout"]) == [str(p.layout) for p in r.best]
    assert df["step_s"].is_monotonic_increasing and (df["tp"] == 2).all()


def test_parse_layout_reads_what_str_prints():
    from scalelab.planner import parse_layout

    for lay in (Layout(dp=16, tp=8, pp=4, interleave=2, cp=2, zero=1, sequence_parallel=True, recompute="selective"),
                Layout(dp=8, zero=3, shard_group="node", recompute="full", micro_batch=4, offload_optimizer="cpu",
                       offload_params="cpu"),
                Layout(dp=4, tp=2, ep=4, etp=1, recompute="torchtitan-op")):
        assert parse_layout(str(lay)) == lay
    assert parse_layout("tp8 pp16").dp is None
    with pytest.raises(ConfigError):
        parse_layout("tp8 warp9")


def test_explain_compares_term_by_term_and_the_terms_add_up(small):
    """search --explain: the other layout's terms minus the best's add up to the step-time difference,
    and the bubble and memory of a pipelined layout show where it loses."""
    from scalelab.planner import explain_layout

    r = search_layouts(*small, top=1)
    cmp = explain_layout(r, "tp2 pp4 z1 sp full mb1")
    assert cmp.best is r.best[0] and cmp.other.layout.pp == 4 and cmp.other.layout.dp == 2
    diff = sum(b - a for _, a, b in cmp.step_terms())
    assert diff == pytest.approx(cmp.other.step_time_s - cmp.best.step_time_s, rel=1e-9, abs=1e-12)
    assert cmp.slowdown >= 0  # the search's best is at least as fast
    terms = dict((k, b - a) for k, a, b in cmp.step_terms())
    assert terms["bubble"] > 0  # pp4 against the best
    assert dict(cmp.deciding_terms(11)) == pytest.approx(terms)
    assert "deciding terms" in cmp.report() and cmp.to_dict()["slowdown"] == pytest.approx(cmp.slowdown)
    # The best against itself: every term equal.
    same = explain_layout(r, r.best[0].layout)
    assert same.slowdown == pytest.approx(0.0) and all(a == pytest.approx(b) for _, a, b in same.step_terms())


def test_explain_of_an_impossible_layout_gives_its_reasons_not_a_table_of_nan(small):
    # --explain "dp3 tp1" on 16 GPUs used to print every step and memory term as nan and "deciding terms: "
    from scalelab.planner import explain_layout

    r = search_layouts(*small, top=1)
    text = explain_layout(r, "dp3 tp1").report()
    assert "cannot run" in text and "does not use all n_gpus=16" in text and "impossible rather than slower" in text
    assert "nan" not in text and "deciding terms" not in text


@pytest.mark.parametrize("framework", [None, "nemo"])
@pytest.mark.parametrize("n_gpus", [16384, 8192])
def test_llama3_degrees_rank_in_the_top_five_when_within_three_percent(n_gpus, framework):
    """Issue 9 acceptance: when the model puts Llama 3's TP8 PP16 CP1 (Dubey et al. 2024, Table 4: DP128 on
    16,384 H100, DP64 on 8,192) within 3% of the best layout at 8K, those degrees rank in the top 5.
    With interleave up to 8 and the planner's default (Megatron-LM 2021-22: TP and PP traffic exposed)
    the model puts them 9-10% behind TP4 PP8 CP2; what decides is the exposed TP traffic of TP8 and the
    pipeline's p2p sends at PP16 (once the data-parallel rings of TP4 use both NICs their ranks hold in a
    node, ``comm.group_bandwidth_bytes_per_s``, TP4's larger gradient shards cost no more network time
    than TP8's). The test pins that diagnosis, so a change that closes the gap must also rank them. With
    the nemo profile's overlaps (TP collectives and pipeline sends hidden) the gap is 0.6-1.5% and the
    degrees rank (5th and 2nd)."""
    from scalelab.planner import explain_layout

    model, cluster = get_model("llama-3.1-405b"), get_cluster("h100-sxm", n_gpus)
    train = TrainSpec(seq_len=8192, global_batch=2048)
    r = search_layouts(model, cluster, train, top=5, framework=framework)
    llama3 = search_layouts(model, cluster, train, top=1, fixed={"tp": 8, "pp": 16, "cp": 1},
                            framework=framework).best[0]
    assert llama3.layout.dp == n_gpus // 128
    gap = llama3.step_time_s / r.best[0].step_time_s - 1
    assert gap >= 0  # the unconstrained search is at least as fast
    ranked = any((p.layout.tp, p.layout.pp, p.layout.cp) == (8, 16, 1) for p in r.best)
    if gap <= 0.03:
        assert ranked, f"Llama 3's degrees are {gap:.1%} from the best but not in the top 5"
    else:
        cmp = explain_layout(r, llama3.layout)
        assert not cmp.outside  # the searched space holds them
        assert {k for k, _ in cmp.deciding_terms(2)} == {"tp comm", "pp send/recv"}
        assert cmp.slowdown == pytest.approx(gap)
    # CP ranks only where the ring's attention covers its transfers: exposed ring time is a small part.
    for p in r.best:
        assert p.time.cp_exposed_s <= 0.25 * max(p.time.cp_transfer_s, 1e-12)


@pytest.mark.parametrize("framework", ["torchtitan", "deepseek-v3", "scaled", "nemo"])
def test_search_times_layouts_as_plan_does_under_a_framework(framework):
    """With framework=, every plan the search returns equals plan() of the same layout with the same
    framework: step time, memory and options (elementwise fusion, efficiency scale, node-limited routing
    and the SM share of overlapped all-to-alls included; these once reached plan() only)."""
    from scalelab.planner.frameworks import FrameworkProfile, get_framework

    if framework == "deepseek-v3":  # a MoE model, where ep_nodes_per_token and comm_sm_fraction matter
        model, cluster = get_model("mixtral-8x7b"), get_cluster("h800", 64)
        train = TrainSpec(seq_len=4096, global_batch=256)
    else:
        model, cluster = get_model("llama-3.1-8b"), get_cluster("h100-sxm", 16)
        train = TrainSpec(seq_len=4096, global_batch=64)
    prof = (FrameworkProfile("scaled", efficiency_scale=0.8, fused_elementwise=False) if framework == "scaled"
            else get_framework(framework))
    r = search_layouts(model, cluster, train, top=4, framework=prof)
    plain = search_layouts(model, cluster, train, top=4)
    assert len(r.best) >= 2
    for p in r.best:
        q = plan(model, cluster, train, p.layout, framework=prof)
        assert q.feasible
        assert p.step_time_s == q.step_time_s, (p.layout.short(), p.step_time_s, q.step_time_s)
        assert p.memory.total_bytes == q.memory.total_bytes
        assert p.options == q.options and p.config_hash == q.config_hash
    # the framework changes the timing (else this test could not tell the two apart)
    assert [p.step_time_s for p in r.best] != [p.step_time_s for p in plain.best]


def test_a_search_where_nothing_fits_reports_the_memory_it_needs_as_a_range(small):
    """Rejections are grouped by kind, and the report shows the numbers of each kind as a range (issue
    12: "needs # GiB" was printed with literal placeholders)."""
    import re

    model, cluster, train = small
    r = search_layouts(model, cluster, train, top=3, memory_limit_bytes=2 * 2**30, allow_offload=False)
    assert not r.best and r.rejected_counts["out of memory"] > 0
    label = r.rejected_labels["out of memory"]
    m = re.fullmatch(r"out of memory \(needs (\d+\.\d)-(\d+\.\d) GiB of 2\.00 GiB\)", label)
    assert m, label
    assert 2.0 < float(m.group(1)) < float(m.group(2))
    report = r.report()
    assert label in report and "#" not in report.split("rejected, by reason:")[1]
    assert r.to_dict()["rejected_labels"] == r.rejected_labels


def test_rejection_labels_keep_the_grouping_and_show_each_number_as_a_range():
    from scalelab.planner.search import _Rejections

    rej = _Rejections(max_examples=1, limit_bytes=80 * 2**30)
    lay = Layout(tp=2)
    rej.add(lay, ["offload needs 120.5 GiB of host memory per GPU, more than 100.0 GiB"], 3)
    rej.add(lay, ["offload needs 300.0 GiB of host memory per GPU, more than 100.0 GiB"])
    rej.add(lay, ["tp=3 does not divide n_heads=32"])
    assert rej.counts == {"offload needs # GiB of host memory per GPU, more than # GiB": 4,
                          "tp does not divide n_heads": 1}
    assert rej.labels() == {
        "offload needs # GiB of host memory per GPU, more than # GiB":
            "offload needs 120.5-300.0 GiB of host memory per GPU, more than 100.0 GiB",
        "tp does not divide n_heads": "tp does not divide n_heads"}
    assert len(rej.examples["tp does not divide n_heads"]) == 1 and rej.n == 5


def test_no_candidate_has_more_virtual_stages_than_layers_plus_embedding_and_head():
    """Interleaving needs a layer (or the embedding, or the LM head) in every virtual stage: p v <= L + 2
    (torchtitan's ``generate_llm_fqn_per_model_part``; Megatron-Core's account_for_embedding/loss split).
    5 layers on PP4: ceil(5/4) = 2 layers per stage would allow v = 2, i.e. 8 virtual stages for 7 slots."""
    from scalelab.arch.spec import ModelSpec
    from scalelab.planner.plan import check_layout, interleave_reason

    model = ModelSpec(name="five", n_layers=5, d_model=1024, n_heads=8, d_ff=4096, vocab_size=32000)
    cluster, train = get_cluster("h100-sxm", 8), TrainSpec(seq_len=2048, global_batch=64)
    assert "virtual stages" in " ".join(check_layout(model, cluster, train, Layout(pp=4, dp=2, interleave=2)))
    assert interleave_reason(5, 4, 2) and interleave_reason(126, 32, 4) is None  # Llama 405B: 128 = 126 + 2
    assert interleave_reason(126, 16, 8) is None and interleave_reason(126, 64, 2) is None
    r = search_layouts(model, cluster, train, top=1000, allow_offload=False, max_cp=1, max_interleave=4)
    assert any(p.layout.pp == 4 for p in r.best)  # pp4 is in the space, only without interleave
    assert all(p.layout.pp * p.layout.interleave <= model.n_layers + 2 for p in r.best)
    assert any(p.layout.interleave > 1 for p in r.best)  # pp2 v3 (3 layers per stage, 6 virtual stages)


def test_explain_says_when_the_layout_is_outside_the_searched_space():
    from scalelab.planner import explain_layout
    from scalelab.planner.explain import outside_space

    model, cluster = get_model("llama-3.1-405b"), get_cluster("h100-sxm", 16384)
    train = TrainSpec(seq_len=8192, global_batch=2048)
    r = search_layouts(model, cluster, train, top=1, max_interleave=4)
    cmp = explain_layout(r, "dp128 tp8 pp16 v8 z2 sp norc mb1")
    assert cmp.outside == ("interleave=8 > max_interleave=4",)
    assert "outside the searched space: interleave=8 > max_interleave=4" in cmp.report()
    assert outside_space(Layout(tp=8, pp=16, interleave=8), {"max_interleave": 8, "fixed": {"tp": 4}}) == [
        "tp=8 but the search held tp=4"]
    small = search_layouts(get_model("llama-3.1-8b"), get_cluster("h100-sxm", 16),
                           TrainSpec(seq_len=4096, global_batch=48), top=1)
    odd = explain_layout(small, "dp16 tp1 pp1 z3 norc mb3")  # micro-batch 3: not a searched choice
    assert not odd.outside and (odd.slowdown >= 0 or "faster than the search's best" in odd.report())
    assert outside_space(Layout(zero=1, shard_group="node", offload_optimizer="cpu"),
                         {"allow_hsdp": False, "allow_offload": False}) == [
        "HSDP (shard_group='node') but allow_hsdp=False", "offload but allow_offload=False"]


def test_nvidia_405b_cp2_layout_ranks_in_the_top_five_when_within_three_percent():
    """NVIDIA's DGX Cloud Benchmarking recipe (NeMo 24.09, NVIDIA/dgxc-benchmarking llama3.1/README_405b.md)
    ran Llama 3.1 405B at 8K on 576 H100 as TP8 PP9 CP2 VP7 with 252 sequences per step (17.20 s per
    step measured, BF16). Issue 9's acceptance: when the model puts it within 3% of its best, it ranks
    in the top 5. A search capped at 4 virtual stages per rank could not reach VP7 and ranked these
    degrees 10th, 1.5% behind; a fixed interleave beyond the cap was silently searched as 1."""
    model, cluster = get_model("llama-3.1-405b"), get_cluster("h100-sxm", 576)
    train = TrainSpec(seq_len=8192, global_batch=252)
    degrees = {"tp": 8, "pp": 9, "cp": 2, "interleave": 7}
    r = search_layouts(model, cluster, train, top=5)
    pub = search_layouts(model, cluster, train, top=1, fixed=degrees).best[0]
    assert (pub.layout.tp, pub.layout.pp, pub.layout.cp, pub.layout.interleave) == (8, 9, 2, 7)
    gap = pub.step_time_s / r.best[0].step_time_s - 1
    assert gap >= 0
    if gap <= 0.03:
        assert any((p.layout.tp, p.layout.pp, p.layout.cp, p.layout.interleave) == (8, 9, 2, 7) for p in r.best)
    held = search_layouts(model, cluster, train, top=1, max_interleave=2, fixed={"interleave": 7}).best[0]
    assert held.layout.interleave == 7  # fixed beyond max_interleave is still what is searched


def test_nvidia_405b_cp2_layout_under_the_nemo_profile():
    """The same recipe under the profile of the framework that ran it (nemo: TP overlap and overlapped
    pipeline sends, as its yaml sets them): within 3% of the best, so in the top 5 (it is the best today)."""
    model, cluster = get_model("llama-3.1-405b"), get_cluster("h100-sxm", 576)
    train = TrainSpec(seq_len=8192, global_batch=252)
    degrees = {"tp": 8, "pp": 9, "cp": 2, "interleave": 7}
    r = search_layouts(model, cluster, train, top=5, framework="nemo")
    pub = search_layouts(model, cluster, train, top=1, fixed=degrees, framework="nemo").best[0]
    gap = pub.step_time_s / r.best[0].step_time_s - 1
    assert 0 <= gap <= 0.03
    assert any((p.layout.tp, p.layout.pp, p.layout.cp, p.layout.interleave) == (8, 9, 2, 7) for p in r.best)
