"""plan() and search_layouts() given names or dicts where specs belong, and a TrainSpec whose two batch
sizes disagree: a ConfigError naming the argument and the fix, not an AttributeError or a silent choice."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from scalelab import get_cluster, get_model
from scalelab.errors import ConfigError
from scalelab.planner import Layout, TrainSpec, plan, search_layouts


@pytest.fixture(scope="module")
def specs():
    return get_model("llama-3.1-8b"), get_cluster("h100-sxm", 8), TrainSpec(seq_len=4096, global_batch=64)


@pytest.mark.parametrize(("slot", "value", "match"), [
    (0, "llama-3.1-8b", r"model must be a ModelSpec, not str \(got 'llama-3.1-8b'\).*get_model\('llama-3.1-8b'\)"),
    (1, "h100-sxm", r"cluster must be a ClusterSpec, not str.*get_cluster\('h100-sxm', n_gpus=8\)"),
    (2, {"seq_len": 4096}, r"train must be a TrainSpec, not dict"),
    (3, "tp2", r"layout must be a Layout, not str.*parse_layout\('tp2'\)"),
])
def test_plan_names_the_argument_that_is_not_a_spec(specs, slot, value, match):
    args = [*specs, Layout()]
    args[slot] = value
    with pytest.raises(ConfigError, match=match):
        plan(*args)
    if slot < 3:
        with pytest.raises(ConfigError, match=match):
            search_layouts(*args[:3])


def test_train_spec_refuses_two_batch_sizes_that_disagree():
    # global_batch=64 with global_batch_tokens=1e6 kept 64 x 4096 = 262144 tokens and dropped the 1e6 unsaid
    with pytest.raises(ValidationError, match=r"global_batch and global_batch_tokens disagree.*= 262144"):
        TrainSpec(seq_len=4096, global_batch=64, global_batch_tokens=1_000_000)
    assert TrainSpec(seq_len=4096, global_batch=64, global_batch_tokens=262_144).global_batch == 64
    t = TrainSpec(seq_len=8192, global_batch_tokens=16_000_000)  # not a multiple: rounded to whole sequences
    assert TrainSpec(**t.to_dict()) == t


def test_a_huge_token_count_gives_a_readable_training_line(specs):
    # the days were printed with :.1f, 290 digits long, wrapped over four lines
    model, cluster, _ = specs
    p = plan(model, cluster, TrainSpec(seq_len=4096, global_batch=64, total_tokens=1e300), Layout(zero=3))
    line = next(x for x in p.report().splitlines() if x.strip().startswith("training"))
    assert "e+290 days" in line and len(line) < 120
