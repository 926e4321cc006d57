"""Grids: the size -> shape family rule, tokens derived from compute budgets, TOML and Python recipes,
and impossible shapes rejected at load time, before anything trains."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalelab.arch import ModelSpec
from scalelab.errors import ConfigError
from scalelab.tunnel.grid import (
    Grid,
    dense_vs_moe_grid,
    isoflop_grid,
    load_grid,
    lr_batch_grid,
    model_for_params,
    product_grid,
    tokens_for_budget,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = {"seq_len": 32, "batch_size": 4, "lr": 3e-3, "warmup_fraction": 0.1}


@settings(max_examples=15, deadline=None)
@given(st.floats(min_value=3e4, max_value=3e7))
def test_family_rule_lands_near_the_target_with_valid_shapes(target):
    m = model_for_params(target, vocab_size=256, seq_len=128, d_head=16)
    n = m.n_params().total
    # Granularity of the family: one head (16 wide) or one layer; within 25% everywhere in this range.
    assert abs(math.log(n / target)) < math.log(1.25)
    assert m.d_model % m.n_heads == 0 and m.d_model == 16 * m.n_heads
    assert 16 <= m.d_model / m.n_layers <= 64 or m.n_layers == 1
    assert m.d_ff % 16 == 0 and m.d_ff >= 8 * m.d_model / 3


def test_family_rule_is_monotone_and_counts_non_embedding_on_request():
    sizes = [3e4, 1e5, 3e5, 1e6, 3e6]
    ns = [model_for_params(s, seq_len=64).n_params().total for s in sizes]
    assert ns == sorted(ns)
    m = model_for_params(1e6, seq_len=64, count="non_embedding", vocab_size=4096)
    assert abs(math.log(m.n_params().non_embedding / 1e6)) < math.log(1.35)
    with pytest.raises(ConfigError, match="positive number of parameters"):
        model_for_params(-5)


def test_tokens_for_budget_spends_the_budget_in_whole_steps():
    m = ModelSpec(n_layers=2, d_model=64, n_heads=4, d_ff=176, vocab_size=256, seq_len=32)
    C = 1e10
    D = tokens_for_budget(m, C, seq_len=32, batch_size=4)
    assert D % 128 == 0
    # C = 6 N D (Hoffmann et al. 2022 sec. 3.2) within half a step.
    assert abs(6 * m.n_params().active * D - C) <= 6 * m.n_params().active * 64
    from scalelab.planner.flops import flops_per_token

    Dp = tokens_for_budget(m, C, seq_len=32, batch_size=4, flops="planner")
    per = flops_per_token(m, 32).model
    assert abs(per * Dp - C) <= per * 64
    with pytest.raises(ConfigError):
        tokens_for_budget(m, -1.0, seq_len=32, batch_size=4)


def test_isoflop_grid_holds_compute_constant_per_budget():
    g = isoflop_grid([1e10, 4e10], [2e4, 5e4, 1e5], defaults=DEFAULTS, model_defaults={"d_head": 16})
    assert len(g) == 6 and len(set(g.hashes())) == 6
    for c in g:
        C = 6 * c.model.n_params().active * c.n_tokens
        assert min(abs(C / 1e10 - 1), abs(C / 4e10 - 1)) < 0.05
        assert c.warmup_tokens == int(0.1 * c.n_tokens)
        assert c.model.seq_len == c.seq_len == 32


def test_product_sweep_and_dense_vs_moe_grids():
    p = product_grid([2e4, 5e4], [1280, 2560, 5120], defaults=DEFAULTS, model_defaults={"d_head": 16})
    assert len(p) == 6 and sorted({c.n_tokens for c in p}) == [1280, 2560, 5120]
    s = lr_batch_grid(2e4, 5120, [1e-3, 3e-3], [2, 4, 8], defaults=DEFAULTS, model_defaults={"d_head": 16})
    assert sorted((c.lr, c.batch_size) for c in s) == sorted((lr, b) for lr in (1e-3, 3e-3) for b in (2, 4, 8))
    assert all(c.n_tokens % (c.batch_size * 32) == 0 for c in s)
    # a token count that rounds to no step is named (it used to train one step silently); half a step is not enough
    for bad in (1, 2 * 32 / 2):
        with pytest.raises(ConfigError, match=r"below half an optimizer step.*more than 32 tokens"):
            lr_batch_grid(2e4, bad, [1e-3], [2], defaults=DEFAULTS, model_defaults={"d_head": 16})
    with pytest.raises(ConfigError, match=r"below half an optimizer step"):
        product_grid([2e4], [10], defaults=DEFAULTS, model_defaults={"d_head": 16})
    just = lr_batch_grid(2e4, 33, [1e-3], [2], defaults=DEFAULTS, model_defaults={"d_head": 16})
    assert just.configs[0].n_tokens == 64
    dm = dense_vs_moe_grid([1e10], [5e4], n_experts=4, top_k=2, defaults=DEFAULTS, model_defaults={"d_head": 16})
    dense, moe = [c for c in dm if c.model.moe is None], [c for c in dm if c.model.moe is not None]
    assert len(dense) == len(moe) == 1
    # Equal active size (experts of width d_ff/top_k, plus a small router), hence ~equal tokens at equal C.
    na, nm = dense[0].model.n_params().active, moe[0].model.n_params().active
    assert abs(nm / na - 1) < 0.05
    assert abs(moe[0].n_tokens / dense[0].n_tokens - 1) < 0.06
    mm = moe[0].model
    # The idle experts are the only extra parameters: (E - k) experts of 3 h f_e (SwiGLU) per layer.
    assert mm.n_params().total - mm.n_params().active == mm.n_layers * (4 - 2) * 3 * mm.d_model * mm.moe.d_expert
    assert (mm.d_model, mm.n_layers, mm.moe.d_expert) == (dense[0].model.d_model, dense[0].model.n_layers,
                                                          dense[0].model.d_ff // 2)


def test_toml_grid_loads_every_block(tmp_path):
    f = tmp_path / "grid.toml"
    f.write_text("""
name = "mixed"
[defaults]
seq_len = 32
batch_size = 4
lr = 3e-3
[defaults.model]
vocab_size = 256
d_head = 16

[[isoflop]]
budgets_flops = [1e10]
n_params = [2e4, 5e4]

[[product]]
n_params = [2e4]
n_tokens = [1280, 2560]

[[sweep]]
n_params = 2e4
n_tokens = 2560
lr = [1e-3, 1e-2]
batch_size = [4]

[[run]]
model = {n_layers = 2, d_model = 64, n_heads = 4, d_ff = 176}
n_tokens = 1280
schedule = "wsd"
decay_fraction = 0.25
decay_branches = [256, 512]
""")
    g = load_grid(f)
    assert g.name == "mixed" and g.source == str(f)
    # The sweep's lr=3e-3 is not in [1e-3, 1e-2], so no duplicates are expected among the 7 runs.
    assert len(g) == 2 + 2 + 2 + 1
    wsd = next(c for c in g if c.schedule == "wsd")
    assert wsd.decay_branches == (256, 512) and wsd.model.d_model == 64 and wsd.model.vocab_size == 256


def test_duplicate_runs_collapse_to_one_key(tmp_path):
    f = tmp_path / "dup.toml"
    f.write_text("""
[defaults]
seq_len = 32
batch_size = 4
lr = 3e-3
[[product]]
n_params = [2e4]
n_tokens = [1280]
model_defaults = {d_head = 16}
[[run]]
model = {n_layers = 1, d_model = 32, n_heads = 2, d_ff = 96, vocab_size = 256}
n_tokens = 1280
[[run]]
model = {n_layers = 1, d_model = 32, n_heads = 2, d_ff = 96, vocab_size = 256}
n_tokens = 1280
""")
    assert len(load_grid(f)) == 2


def test_impossible_shape_in_toml_fails_at_load_time(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("""
[defaults]
seq_len = 32
batch_size = 4
lr = 3e-3
[[run]]
model = {n_layers = 2, d_model = 64, n_heads = 5, d_ff = 176, vocab_size = 256}
n_tokens = 1280
""")
    with pytest.raises(ConfigError) as e:
        load_grid(f)
    msg = str(e.value)
    assert "[[run]] #1" in msg and "n_heads=5 does not divide d_model=64" in msg


def test_bad_grid_files_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_grid(tmp_path / "missing.toml")
    (tmp_path / "typo.toml").write_text("[[isoflops]]\nbudgets_flops = [1e10]\n")
    with pytest.raises(ConfigError, match="unknown top-level keys"):
        load_grid(tmp_path / "typo.toml")
    (tmp_path / "empty.toml").write_text("name = 'x'\n")
    with pytest.raises(ConfigError, match="has no runs"):
        load_grid(tmp_path / "empty.toml")
    (tmp_path / "broken.toml").write_text("[defaults\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_grid(tmp_path / "broken.toml")
    (tmp_path / "nokey.toml").write_text("[[isoflop]]\nn_params = [2e4]\n")
    with pytest.raises(ConfigError, match="missing a key"):
        load_grid(tmp_path / "nokey.toml")
    (tmp_path / "grid.txt").write_text("")
    with pytest.raises(ConfigError, match=r"\.toml file or a \.py recipe"):
        load_grid(tmp_path / "grid.txt")
    # seq_len longer than the explicit model's context is impossible too.
    (tmp_path / "ctx.toml").write_text("""
[[run]]
model = {n_layers = 1, d_model = 32, n_heads = 2, d_ff = 96, vocab_size = 256, seq_len = 16}
n_tokens = 1280
seq_len = 32
batch_size = 4
lr = 1e-3
""")
    with pytest.raises(ConfigError, match="seq_len exceeds"):
        load_grid(tmp_path / "ctx.toml")
    # A byte-level model needs all 256 byte values in its vocabulary.
    (tmp_path / "vocab.toml").write_text("""
[[run]]
model = {n_layers = 1, d_model = 32, n_heads = 2, d_ff = 96, vocab_size = 100, seq_len = 32}
n_tokens = 1280
seq_len = 32
batch_size = 4
lr = 1e-3
""")
    with pytest.raises(ConfigError, match="vocabulary is smaller"):
        load_grid(tmp_path / "vocab.toml")


def test_python_recipes_load_and_bad_recipes_fail(tmp_path):
    g = load_grid(ROOT / "recipes" / "isoflop_tiny.py")
    assert g.name == "isoflop-tiny" and len(g) == 12
    budgets = {round(6 * c.model.n_params().active * c.n_tokens, -10) for c in g}
    assert len(budgets) >= 3
    assert len(load_grid(ROOT / "recipes" / "wsd_branches_tiny.py").configs[0].decay_branches) == 3
    assert len(load_grid(ROOT / "recipes" / "isoflop_tiny.toml")) > 6

    bad = tmp_path / "bad_recipe.py"
    bad.write_text(
        "from scalelab.arch import ModelSpec\n"
        "from scalelab.tunnel.train import RunConfig\n"
        "def grid():\n"
        "    m = ModelSpec(n_layers=1, d_model=48, n_heads=5, d_ff=96, vocab_size=256, seq_len=32)\n"
        "    return [RunConfig(model=m, seq_len=32, batch_size=4, n_tokens=1280, lr=1e-3)]\n"
    )
    with pytest.raises(ConfigError, match="n_heads=5 does not divide d_model=48"):
        load_grid(bad)
    (tmp_path / "nofunc.py").write_text("X = 1\n")
    with pytest.raises(ConfigError, match="no function 'grid'"):
        load_grid(tmp_path / "nofunc.py")
    (tmp_path / "other.py").write_text(
        "from scalelab.tunnel.grid import product_grid\n"
        "def small():\n"
        "    return product_grid([2e4], [1280], defaults={'seq_len': 32, 'batch_size': 4, 'lr': 1e-3})\n")
    assert len(load_grid(f"{tmp_path / 'other.py'}:small")) == 1


def test_grid_reports_itself():
    g = isoflop_grid([1e10], [2e4], defaults=DEFAULTS, model_defaults={"d_head": 16})
    assert isinstance(g, Grid)
    d = g.to_dict()
    assert d["n_runs"] == 1 and d["runs"][0]["hash"] == g.configs[0].content_hash()
    assert d["total_flops"] == pytest.approx(6 * g.configs[0].model.n_params().active * g.configs[0].n_tokens)
    assert g.configs[0].content_hash()[:10] in g.report()
