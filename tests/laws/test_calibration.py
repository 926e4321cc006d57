"""The calibrated new-run band's width (issue 8): a fit's own backtests pooled with the prior by the number of
backtest steps, and a distance that sees forecasts outside the runs jointly (``scalelab.laws.calibration``)."""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from scalelab.laws import ChinchillaLaw, calibration, load_runs
from scalelab.laws.backtest import backtest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


def _law() -> tuple[ChinchillaLaw, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Four model sizes (three below the last: one rolling backtest step) at 10-80 tokens per parameter."""
    rng = np.random.default_rng(0)
    N = np.repeat([1e8, 2e8, 4e8, 8e8], 4)
    D = N * np.tile([10.0, 20.0, 40.0, 80.0], 4)
    y = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(0.003 * rng.standard_normal(N.size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ChinchillaLaw(init="coarse").fit(N, D, y), (N, D, y)


def _half_width(law: ChinchillaLaw, N: np.ndarray, D: np.ndarray, level: float = 0.95) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lo, hi = law.predict_interval(N, D, kind="new", level=level)
    return np.log(hi / lo) / 2


def test_one_backtest_step_is_pooled_with_the_prior():
    # one refit's forecasts are one draw of how the fit extrapolates: its conformal quantile alone is not
    # trusted, it is pooled in log with the prior's, one step each
    law, _ = _law()
    Nt, Dt = np.array([3.2e9]), np.array([6.4e10])
    hw = _half_width(law, Nt, Dt)
    cal = law.calibration_
    assert cal["source"] == "own" and cal["n_steps"] == 1 and "pooled" in cal["method"], cal
    q_own = calibration.conformal_quantile(cal["scores"], 0.95)
    q_prior = calibration.prior_quantile(0.95, "chinchilla")
    assert q_own < q_prior        # a well-specified law on clean runs: its own backtest is the narrower
    r = law.extrapolation(Nt, Dt)
    np.testing.assert_allclose(hw, math.sqrt(q_own * q_prior) * np.log1p(r), rtol=1e-9)
    assert q_own * np.log1p(r) < hw < q_prior * np.log1p(r)


def test_more_backtest_steps_weigh_more_against_the_prior():
    scores = list(np.linspace(0.001, 0.01, 30))
    q_own = calibration.conformal_quantile(scores, 0.9)
    q_prior = calibration.prior_quantile(0.9)
    qs = [calibration.pooled_quantile({"n_steps": m, "scores": scores}, 0.9) for m in (0, 1, 2, 3, 50)]
    assert qs[0] == pytest.approx(q_prior)
    assert all(np.diff(qs) < 0) and q_own < qs[-1] < qs[1] < q_prior
    w = calibration.PRIOR_WEIGHT
    assert qs[3] == pytest.approx(math.exp((3 * math.log(q_own) + w * math.log(q_prior)) / (3 + w)), rel=1e-12)


def test_a_forecast_outside_the_runs_jointly_gets_a_wider_band():
    # N, D and compute all inside the fitted ranges, but 1.3 tokens per parameter where the runs had 10 to 80
    law, _ = _law()
    inside = (np.array([5e8]), np.array([2e10]))
    joint = (np.array([7.5e8]), np.array([1e9]))
    assert float(law.extrapolation(*joint)[0]) == 1.0 and float(law.extrapolation(*inside)[0]) == 1.0
    hw_joint, hw_inside = _half_width(law, *joint), _half_width(law, *inside)     # calibrates the fit
    cal = law.calibration_
    r = calibration.band_distance(law, joint, cal["joint_range"])
    assert float(r[0]) == pytest.approx(10 / (1e9 / 7.5e8), rel=1e-9)           # D/N 1.33 against 10
    assert float(calibration.band_distance(law, inside, cal["joint_range"])[0]) == 1.0
    np.testing.assert_allclose(hw_joint / hw_inside, np.log1p(r) / np.log(2), rtol=1e-9)
    # the joint ranges travel with a saved fit, so a reloaded fit draws the same band
    back = ChinchillaLaw.from_dict(json.loads(json.dumps(law.to_dict(), default=float)))
    np.testing.assert_allclose(_half_width(back, *joint), hw_joint, rtol=1e-9)


def test_joint_ranges_skip_covariates_that_are_not_positive():
    X = (np.array([1.0, 2.0, 4.0]), np.array([-1.0, 0.0, 1.0]), np.array([10.0, 20.0, 80.0]))
    got = calibration.joint_ranges(("N", "X", "D"), X)
    assert [(a, op, b) for a, op, b, _, _ in got] == [("N", "*", "D"), ("N", "/", "D")]
    assert got[1][3:] == [10.0, 20.0]                 # D / N over the runs


def _sld_moe() -> dict:
    import forecast_backtest as fb

    return next(d for d in fb.datasets() if d["family"] == "sld-moe")


def test_sld_moe_held_out_coverage(anchor_file):
    """SLD's MoE runs (a family held out while the band was chosen): Clark's MoE law fitted on the smaller
    dense-equivalent sizes. The split with one backtest step covered 1 of 20 when its 9 forecasts set the
    band alone; the family must cover at least 75% (issue 8's floor)."""
    anchor_file("SLD/data/moe_scaling_law/data.csv", "SLDBench's routed-LM loss curves (Clark et al. 2022's)")
    ds = _sld_moe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = backtest(load_runs(ds["cols"], n_convention="total"), "clark-moe", split="n", n_splits=3,
                       duplicates="average")
    assert [s["band_source"] for s in res.splits] == ["prior", "own", "own"]
    assert res.pooled["coverage"] >= 0.75, [s["coverage"] for s in res.splits]
    assert res.splits[1]["coverage"] >= 0.75


@pytest.mark.slow
def test_epoch_protocol_band(anchor_file):
    """Epoch's points fitted below 1e9 parameters, forecast at 1e9 and above: median error at most 0.9%,
    the 95% new-run band covers at least 90% (issue 8)."""
    import forecast_backtest as fb

    anchor_file("analyzing-chinchilla/data/svg_extracted_data.csv", "Epoch AI's digitised Chinchilla runs")
    got = fb.epoch_protocol({})
    assert got is not None and got["n_test"] == 122
    assert got["median_abs_pct_error"] <= 0.9 and got["coverage"] >= 0.9, got


def test_own_backtests_use_the_rolling_split_of_the_backtest_module():
    # the calibrated band's own backtests and `scalelab backtest --split rolling` cut the runs the same way
    # (one function, backtest.level_splits): the scores are the forecasts of the rolling splits whose
    # training runs span three or more sizes
    from scalelab.laws.backtest import split_runs

    law, (N, _, _) = _law()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores, steps = calibration.own_scores(law)
    usable = [(tr, te) for tr, te, _ in split_runs(N, "rolling", calibration.N_STEPS) if np.unique(N[tr]).size >= 3]
    assert steps == len(usable) == 1
    assert len(scores) == sum(int(te.sum()) for _, te in usable) == 4


def test_a_law_with_its_own_prior_uses_it_and_the_others_the_pooled_one():
    # Chinchilla's prior comes from Chinchilla fits alone (Epoch, Porian); a law without a table of its own
    # (here Kaplan's, Muennighoff's) falls back to the prior pooled over every family
    pooled = dict(calibration.PRIOR_QUANTILES)
    own = dict(calibration.PRIOR_QUANTILES_BY_LAW["chinchilla"])
    for lv in (0.5, 0.8, 0.95):
        assert calibration.prior_quantile(lv, "chinchilla") == pytest.approx(own[lv])
        assert calibration.prior_quantile(lv, "kaplan") == pytest.approx(pooled[lv])
        assert calibration.prior_quantile(lv, None) == pytest.approx(pooled[lv])
    # between tabulated levels: linear, and monotone in the level for every table
    mid = calibration.prior_quantile(0.925, "chinchilla")
    assert own[0.9] < mid < own[0.95]
    scores = [0.001] * 10
    assert calibration.pooled_quantile({"n_steps": 0, "scores": []}, 0.95, "chinchilla") == pytest.approx(own[0.95])
    assert (calibration.pooled_quantile({"n_steps": 2, "scores": scores}, 0.95, "chinchilla")
            < calibration.pooled_quantile({"n_steps": 2, "scores": scores}, 0.95, "muennighoff"))


def test_a_fit_with_too_few_sizes_names_its_own_prior():
    N = np.repeat([1e8, 2e8, 4e8], 4)
    D = N * np.tile([10.0, 20.0, 40.0, 80.0], 3)
    y = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(0.003 * np.random.default_rng(0).standard_normal(N.size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = ChinchillaLaw(init="coarse").fit(N, D, y)
        law.predict_interval(np.array([1.6e9]), np.array([3.2e10]), kind="new")
    assert law.calibration_["source"] == "prior"
    assert calibration.PRIOR_SOURCE_BY_LAW["chinchilla"] in law.calibration_["method"]
