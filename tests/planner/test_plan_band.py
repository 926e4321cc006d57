"""The plans' empirical step-time band (scalelab.planner.band): its stored quantiles are what benchmarks/plan_band.py
computes from the validation assets with the planner as it is now, and the band behaves as documented."""

from __future__ import annotations

import json
import math

import pytest
from plan_band import LEVELS, leave_one_source_out, quantiles, residuals  # benchmarks/ (tests/planner/conftest.py)

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.errors import ConfigError
from scalelab.planner.band import BAND_QUANTILES, BAND_SOURCES, equal_weight_quantile, step_time_band

REGEN = ("the planner's residuals on the published runs changed: rerun `PYTHONPATH=src python "
         "benchmarks/plan_band.py` and store its output in src/scalelab/planner/band.py (BAND_QUANTILES, BAND_SOURCES, "
         "BAND_PROVENANCE)")


@pytest.fixture(scope="module")
def by_source() -> dict[str, list[float]]:
    return residuals()


def test_stored_quantiles_are_the_generators(by_source):
    assert {k: len(v) for k, v in by_source.items()} == BAND_SOURCES, REGEN
    got = quantiles(by_source)
    assert set(got) == set(BAND_QUANTILES) == set(LEVELS)
    for lv, (lo, hi) in got.items():
        assert BAND_QUANTILES[lv] == pytest.approx((lo, hi), abs=1e-9), f"{lv}: stored {BAND_QUANTILES[lv]}, " \
                                                                        f"now {(lo, hi)}; {REGEN}"


def test_leave_one_source_out_covers_each_source_with_the_others_band(by_source):
    rows = leave_one_source_out(by_source)
    assert [r["source"] for r in rows] == list(by_source)
    for r in rows:
        for lv in LEVELS:
            lo, hi, cov = r[lv]
            assert lo < 1 < hi and 0 <= cov <= 1
        assert r[0.95][0] <= r[0.8][0] and r[0.8][1] <= r[0.95][1]  # nested bands


def test_equal_weight_quantile_weights_sources_not_rows():
    many = {"big": [2.0] * 100, "small": [1.0]}
    assert equal_weight_quantile(many, 0.4) == 1.0  # pooled by rows, 1.0 would be below the 1% quantile
    assert equal_weight_quantile(many, 0.6) == 2.0
    assert equal_weight_quantile({"a": [3.0, 1.0, 2.0]}, 0.5) == 2.0


@pytest.fixture(scope="module")
def p():
    return plan(get_model("llama-3.1-8b"), get_cluster("h100-sxm", 64),
                TrainSpec(seq_len=8192, global_batch=256, total_tokens=1e12), Layout(tp=2, zero=1))


@pytest.mark.parametrize("level", LEVELS)
def test_band_contains_the_point_and_scales_with_it(p, level):
    b = p.step_time_band(level)
    assert b is not None and b.level == level
    for name in ("step_time_s", "training_days", "gpu_hours"):
        lo, hi = getattr(b, name)
        x = getattr(p, name)
        assert lo < x < hi
        assert (lo / x, hi / x) == pytest.approx(BAND_QUANTILES[level])
    slower = plan(p.model, p.cluster, p.train, p.layout, efficiency=0.3)
    b2 = slower.step_time_band(level)
    assert b2 is not None
    assert b2.step_time_s[1] / b.step_time_s[1] == pytest.approx(slower.step_time_s / p.step_time_s)
    assert p.step_time_band(0.95).step_time_s[0] <= p.step_time_band(0.8).step_time_s[0]


def test_band_is_none_for_a_measured_step_time(p):
    measured = plan(p.model, p.cluster, p.train, p.layout, measured_step_time_s=5.0)
    assert measured.step_time_band() is None
    assert measured.to_dict()["step_time_bands"] is None


def test_plan_json_and_report_carry_the_band(p):
    d = json.loads(json.dumps(p.to_dict()))
    band = d["step_time_bands"]["0.8"]
    assert band["step_time_s"] == pytest.approx([p.step_time_s * f for f in BAND_QUANTILES[0.8]])
    assert "not a guarantee" in band["method"] and set(d["step_time_bands"]) == {f"{lv:g}" for lv in LEVELS}
    lo, hi = p.step_time_band().step_time_s
    assert f"80% band {lo:.4g}-{hi:.4g} s from {sum(BAND_SOURCES.values())} published runs" in p.report()


@pytest.mark.parametrize("level", [0.5, 0.9, 1.0, 95, -0.8, math.nan, True, "0.8", None])
def test_bad_level_names_value_and_allowed(p, level):
    with pytest.raises(ConfigError) as e:
        step_time_band(p, level)
    msg = str(e.value)
    assert repr(level) in msg and "0.8 or 0.95" in msg
