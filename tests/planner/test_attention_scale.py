"""A framework's attention kernel (``FrameworkProfile.attention_efficiency_scale``; ``llm-foundry-triton``):
it slows the attention core only, an explicit ``attention_efficiency`` wins, a device without an attention
figure keeps its matmul fallback, and the search times layouts as plan() does."""

from __future__ import annotations

import dataclasses

import pytest

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.planner import search_layouts
from scalelab.planner.frameworks import get_framework
from scalelab.planner.plan import framework_options

MODEL = get_model("llama-3.1-8b")
TRAIN = TrainSpec(seq_len=16384, global_batch=64)
LAYOUT = Layout(zero=3, micro_batch=1, recompute="full")


def test_the_scale_multiplies_the_attention_efficiency_only():
    cluster = get_cluster("a100-80gb", 8)
    base, tri = framework_options("llm-foundry", cluster), framework_options("llm-foundry-triton", cluster)
    scale = get_framework("llm-foundry-triton").attention_efficiency_scale
    assert 0 < scale < 1
    assert base.attention_efficiency is None and base.efficiency is None  # the device's own figures
    assert tri.attention_efficiency == pytest.approx(cluster.gpu.attention_efficiency * scale)
    assert tri.efficiency is None  # the GEMMs keep the device's matmul efficiency
    # it composes with efficiency_scale, which scales both
    both = dataclasses.replace(get_framework("llm-foundry-triton"), efficiency_scale=0.9)
    o = framework_options(both, cluster)
    assert o.efficiency == pytest.approx(cluster.gpu.matmul_efficiency * 0.9)
    assert o.attention_efficiency == pytest.approx(cluster.gpu.attention_efficiency * 0.9 * scale)


def test_the_slower_kernel_costs_attention_time_and_nothing_else():
    cluster = get_cluster("a100-80gb", 8)
    a = plan(MODEL, cluster, TRAIN, LAYOUT, framework="llm-foundry")
    b = plan(MODEL, cluster, TRAIN, LAYOUT, framework="llm-foundry-triton")
    assert b.step_time_s > a.step_time_s * 1.1  # 16K tokens: attention is a large share of the step
    assert b.memory.total_bytes == a.memory.total_bytes
    assert b.flops_per_step == a.flops_per_step
    # a given attention efficiency wins over the profile's
    c = plan(MODEL, cluster, TRAIN, LAYOUT, framework="llm-foundry-triton",
             attention_efficiency=cluster.gpu.attention_efficiency)
    assert c.step_time_s == pytest.approx(a.step_time_s)


def test_a_device_without_an_attention_figure_keeps_the_matmul_fallback():
    cluster = get_cluster("a100-80gb", 8)
    bare = cluster.model_copy(update={"gpu": cluster.gpu.model_copy(update={"attention_efficiency": None})})
    o = framework_options("llm-foundry-triton", bare)
    assert o.attention_efficiency is None
    p = plan(MODEL, bare, TRAIN, LAYOUT, framework="llm-foundry-triton")
    assert p.attention_at_matmul_efficiency


def test_the_search_times_layouts_as_plan_does_under_the_slower_attention():
    """The search reads the profile's attention efficiency through the same options as plan(): its best layouts
    are slower than with FlashAttention-2's figure, and each is timed as plan() times it."""
    res = search_layouts(MODEL, get_cluster("a100-80gb", 16), TRAIN, framework="llm-foundry-triton", top=5)
    ref = search_layouts(MODEL, get_cluster("a100-80gb", 16), TRAIN, framework="llm-foundry", top=5)
    assert res.best[0].step_time_s > ref.best[0].step_time_s
    for p in res.best:
        again = plan(MODEL, get_cluster("a100-80gb", 16), TRAIN, p.layout, framework="llm-foundry-triton")
        assert again.step_time_s == pytest.approx(p.step_time_s)


def test_the_report_names_an_attention_efficiency_that_is_not_the_devices():
    cluster = get_cluster("a100-80gb", 8)
    tri = plan(MODEL, cluster, TRAIN, LAYOUT, framework="llm-foundry-triton").report()
    scaled = cluster.gpu.attention_efficiency * get_framework("llm-foundry-triton").attention_efficiency_scale
    assert f"attention efficiency {scaled:.2f} (the device's figure: {cluster.gpu.attention_efficiency:.2f})" in tri
    assert "attention efficiency" not in plan(MODEL, cluster, TRAIN, LAYOUT, framework="llm-foundry").report()
