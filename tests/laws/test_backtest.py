"""Issue 8 parts 1, 2 and 4: backtesting as a feature, the calibrated new-run band, ``--law auto``."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from scalelab.errors import ConfigError
from scalelab.laws import ChinchillaLaw, load_runs
from scalelab.laws.backtest import BacktestComparison, backtest, interval_score, level_splits, split_runs


def kaplan_form(N, D):
    """Kaplan et al. 2020 eq. 1.5 with their constants, plus a floor: a law Chinchilla's form does not contain."""
    return 1.2 + ((8.8e13 / N) ** (0.076 / 0.095) + 5.4e13 / D) ** 0.095


def _runs(seed=0, n=60, form=None):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e9), n))
    D = N * np.exp(rng.uniform(np.log(5), np.log(100), n))
    y = (form or (lambda N, D: 1.8 + 480 / N**0.35 + 2100 / D**0.37))(N, D) * np.exp(0.005 * rng.standard_normal(n))
    return N, D, y


def test_interval_score_charges_width_and_misses():
    assert float(interval_score(1.0, 2.0, 1.5, 0.95)) == pytest.approx(1.0)
    assert float(interval_score(1.0, 2.0, 2.5, 0.95)) == pytest.approx(1.0 + 40 * 0.5)
    assert float(interval_score(1.0, 2.0, 0.5, 0.9)) == pytest.approx(1.0 + 20 * 0.5)


def test_splits_train_below_and_test_at_or_above_the_cutoff():
    axis = np.repeat([1.0, 2.0, 4.0, 8.0, 16.0], 3)
    sp = split_runs(axis, "n", 3)
    assert [c for _, _, c in sp] == [4.0, 8.0, 16.0]
    for tr, te, c in sp:
        assert axis[tr].max() < c and axis[te].min() == c
    rolling = split_runs(axis, "rolling", 2)
    assert [int(te.sum()) for _, te, _ in rolling] == [3, 3]
    assert len(split_runs(axis, "largest")) == 1
    # the masks come from level_splits over level indices; on one level there is nothing to split
    lev = np.repeat(np.arange(5), 3)
    for (tr, te, _), (ltr, lte) in zip(rolling, level_splits(lev, "rolling", 2), strict=True):
        assert (tr == ltr).all() and (te == lte).all()
    assert level_splits(np.zeros(4, dtype=int), "rolling", 3) == []
    with pytest.raises(ConfigError, match="unknown split"):
        split_runs(axis, "random")


def test_backtest_reports_splits_and_pooled_scores():
    N, D, y = _runs()
    runs = load_runs({"N": N, "D": D, "loss": y})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = backtest(runs, ChinchillaLaw(init="coarse"), n_splits=2)
    d = json.loads(json.dumps(res.to_dict(), default=float))
    assert len(d["splits"]) == 2
    assert {"median_abs_pct_error", "coverage", "interval_score"} <= set(d["pooled"])
    s = d["splits"][0]
    assert s["n_test"] == len(s["runs"]["pct_error"]) and s["n_train"] + s["n_test"] <= N.size
    # the scores are what the forecasts say: recompute one split by hand
    tr, te, _ = split_runs(N, "n", 2)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = ChinchillaLaw(init="coarse").fit(N[tr], D[tr], y[tr])
        pred = law.predict(N[te], D[te])
    assert s["median_abs_pct_error"] == pytest.approx(float(np.median(np.abs(100 * (pred / y[te] - 1)))), rel=1e-9)
    assert "pooled over 2 splits" in res.report()


def test_comparison_picks_the_lower_error_and_says_why():
    N, D, y = _runs(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = backtest({"params": N, "tokens": D, "loss": y}, ["chinchilla", "henighan-c"], n_splits=2,
                       options={"init": "coarse"}, n="params", d="tokens")
    assert isinstance(res, BacktestComparison)
    errs = {r.law: r.pooled["median_abs_pct_error"] for r in res.results}
    assert res.best == min(errs, key=errs.get)
    assert "lowest backtested median error" in res.reason and set(res.to_dict()["by_law"]) == set(errs)


def test_calibrated_band_exists_without_a_covariance_and_covers_the_misspecified_extrapolation():
    # Kaplan's form has no floor the Chinchilla fit can find: E goes to its bound, the covariance is singular,
    # so the noise band does not exist; the calibrated one still does, from the backtest alone.
    N, D, y = _runs(seed=2, form=kaplan_form)
    Nt = np.full(10, 3e9)
    Dt = Nt * np.geomspace(5, 100, 10)
    yt = kaplan_form(Nt, Dt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = ChinchillaLaw(init="coarse").fit(N, D, y)
        lo, hi = law.predict_interval(Nt, Dt, kind="new")
    assert law.quality_["verdict"] == "suspect"
    assert np.mean((lo <= yt) & (yt <= hi)) >= 0.85


@pytest.mark.slow
def test_calibrated_band_covers_a_misspecified_extrapolation():
    # data from Kaplan's form, fitted with Chinchilla's on N <= 1e9, forecast at N = 3e9 (about 10x in compute)
    N, D, y = _runs(seed=2, form=kaplan_form)
    rng = np.random.default_rng(12)
    Nt = np.full(20, 3e9)
    Dt = Nt * np.exp(rng.uniform(np.log(5), np.log(100), 20))
    yt = kaplan_form(Nt, Dt) * np.exp(0.005 * rng.standard_normal(20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = ChinchillaLaw(init="coarse", n_bootstrap=50, random_state=0).fit(N, D, y)
        lo_n, hi_n = law.predict_interval(Nt, Dt, kind="noise")
        lo, hi = law.predict_interval(Nt, Dt, kind="new")
        pred = law.predict(Nt, Dt)
    assert law.calibration_["n_steps"] >= 1 and "calibrated" in law.calibration_["method"]
    # the calibrated band is y_hat exp(+- q log(1 + r)): symmetric in log around the forecast
    np.testing.assert_allclose(np.log(hi / pred), np.log(pred / lo), rtol=1e-9)
    cover_new = np.mean((lo <= yt) & (yt <= hi))
    cover_noise = np.mean((lo_n <= yt) & (yt <= hi_n))
    assert cover_new >= 0.85 and cover_new > cover_noise
    # the scores travel with a saved fit
    back = ChinchillaLaw.from_dict(json.loads(json.dumps(law.to_dict(), default=float)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(back.predict_interval(Nt, Dt, kind="new")[1], hi, rtol=1e-6)


def test_cli_backtest_json_and_fit_auto(tmp_path):
    from scalelab.cli.app import app

    N, D, y = _runs(seed=3, n=40)
    csv = tmp_path / "runs.csv"
    csv.write_text("params,tokens,loss\n" + "\n".join(f"{a},{b},{c}" for a, b, c in zip(N, D, y, strict=True)))
    runner = CliRunner()
    res = runner.invoke(app, ["backtest", str(csv), "--n", "params", "--d", "tokens", "--n-splits", "2",
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert len(d["splits"]) == 2 and d["pooled"]["coverage"] is not None
    res = runner.invoke(app, ["fit", str(csv), "--law", "auto", "--n", "params", "--d", "tokens", "--init", "coarse",
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["law"] == d["law_selection"]["chosen"] and "backtested" in d["law_selection"]["reason"]
    res = runner.invoke(app, ["backtest", str(csv), "--split", "random"])
    assert isinstance(res.exception, ConfigError) and "unknown split" in str(res.exception)


def test_the_loss_column_keyword_is_read_as_fit_reads_it(tmp_path):
    """backtest(path, ..., y="my_loss") names the loss as fit(df, y=...) does (it once became a column 'Y')."""
    N, D, y = _runs(seed=4, n=40)
    csv = tmp_path / "runs.csv"
    csv.write_text("params,tokens,my_loss\n" + "\n".join(f"{a},{b},{c}" for a, b, c in zip(N, D, y, strict=True)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = backtest(csv, ChinchillaLaw(init="coarse"), n_splits=2, n="params", d="tokens", y="my_loss")
        b = backtest(csv, ChinchillaLaw(init="coarse"), n_splits=2, n="params", d="tokens", loss="my_loss")
    assert a.pooled == b.pooled


def _few_sizes(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three model sizes: too few levels below the last to backtest a fit on them (it needs three)."""
    rng = np.random.default_rng(seed)
    N = np.repeat([1e8, 2e8, 4e8], 4)
    D = N * np.tile([10.0, 20.0, 40.0, 80.0], 3)
    y = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(0.003 * rng.standard_normal(N.size))
    return N, D, y


def test_runs_too_few_to_backtest_get_the_prior_band_growing_with_distance():
    from scalelab.laws import calibration

    N, D, y = _few_sizes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = ChinchillaLaw(init="coarse").fit(N, D, y)
        Nt = np.array([1.6e9, 1.6e10])
        lo, hi = law.predict_interval(Nt, 20 * Nt, kind="new")
        pred = law.predict(Nt, 20 * Nt)
        r = law.extrapolation(Nt, 20 * Nt)
        lo80, hi80 = law.predict_interval(Nt, 20 * Nt, kind="new", level=0.8)
    cal = law.calibration_
    assert cal["source"] == "prior" and cal["n_steps"] == 0 and "prior" in cal["method"], cal
    want = calibration.prior_quantile(0.95) * np.log1p(r)
    np.testing.assert_allclose(np.log(hi / pred), want, rtol=1e-9)
    np.testing.assert_allclose(np.log(pred / lo), want, rtol=1e-9)
    assert hi[1] / lo[1] > hi[0] / lo[0]                       # further out, wider
    # the prior table is increasing in the level, and a lower level gives a narrower band
    qs = [q for _, q in calibration.PRIOR_QUANTILES]
    assert all(np.diff(qs) > 0)
    assert np.all(hi80 < hi) and np.all(lo80 > lo)


def test_prior_band_survives_a_fit_without_covariance():
    # the first Gadre split had no band at all (a singular fit, no own backtests): the prior still gives one
    N, D, y = _few_sizes(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = ChinchillaLaw(init="coarse").fit(N, D, y)
        law.result_ = law.result_.replace(cov_theta=np.full((5, 5), np.nan))   # as a singular fit leaves it
        lo, hi = law.predict_interval(np.array([1.6e9]), np.array([3.2e10]), kind="new")
    assert law.calibration_["source"] == "prior"
    assert np.isfinite(lo).all() and np.isfinite(hi).all() and lo[0] < hi[0]


def test_each_split_says_where_its_band_came_from():
    # 3 sizes below the first cutoff (too few to backtest: the prior), many below the last (its own backtests)
    N, D, y = _few_sizes()
    N = np.concatenate([N, np.repeat([8e8, 1.6e9], 4)])
    D = np.concatenate([D, N[-8:] * np.tile([10.0, 20.0, 40.0, 80.0], 2)])
    y = np.concatenate([y, 1.8 + 480 / N[-8:] ** 0.35 + 2100 / D[-8:] ** 0.37])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = backtest(load_runs({"N": N, "D": D, "loss": y}), ChinchillaLaw(init="coarse"), n_splits=2)
        noise = backtest(load_runs({"N": N, "D": D, "loss": y}), ChinchillaLaw(init="coarse"), n_splits=1,
                         kind="noise")
    assert [s["band_source"] for s in res.splits] == ["prior", "own"]
    assert noise.splits[0]["band_source"] is None


@pytest.mark.parametrize("split", ["rolling", "largest", "n"])
def test_splits_skip_empty_log_bins(split):
    # more than MAX_LEVELS sizes with a gap: the log bins between 1e8 and 1e10 hold no runs. Rolling and
    # largest splits used to get an empty test set (ValueError from np.min) and "n" two identical splits.
    axis = np.r_[np.geomspace(1e7, 1e8, 20), 1e10]
    splits = split_runs(axis, split, 3)
    assert all(test.any() and train.any() for train, test, _ in splits)
    assert len({tuple(test) for _, test, _ in splits}) == len(splits)
    assert splits[-1][2] == 1e10


@pytest.mark.parametrize(("kind", "label"), [("new", "95% new-run"), ("noise", "95% noise"), ("mean", "95% mean-law")])
def test_report_and_json_name_the_band_scored(kind, label):
    # `--band noise` used to print "95% noise-run band" and an unnamed coverage; each label names the band used
    from scalelab.laws.backtest import BacktestResult

    pooled = {"n_splits": 1, "n_test": 3, "median_abs_pct_error": 1.0, "coverage": 0.5, "interval_score": 0.1}
    res = BacktestResult("chinchilla", "n", 0.95, kind, [], pooled)
    text = res.report()
    assert f"{label} band)" in text and f"{label} coverage 50.0%" in text
    assert "run band" not in text.replace("new-run band", "")
    assert res.to_dict()["band"] == kind and res.to_dict()["band_label"] == f"{label} band"


def test_cli_backtest_names_the_noise_band(tmp_path):
    from scalelab.cli.app import app

    N, D, y = _runs(seed=3, n=30)
    csv = tmp_path / "runs.csv"
    csv.write_text("params,tokens,loss\n" + "\n".join(f"{a},{b},{c}" for a, b, c in zip(N, D, y, strict=True)))
    res = CliRunner().invoke(app, ["backtest", str(csv), "--n", "params", "--d", "tokens", "--n-splits", "1",
                                   "--band", "noise"])
    assert res.exit_code == 0, res.output
    assert "95% noise band" in res.stdout and "95% noise coverage" in res.stdout and "new-run" not in res.stdout
    res = CliRunner().invoke(app, ["backtest", str(csv), "--band", "wide"])
    assert isinstance(res.exception, ConfigError) and "'wide'" in str(res.exception)


def test_zero_splits_is_an_error_not_an_empty_backtest():
    # n_splits=0 (`--n-splits 0`) printed "pooled over 0 splits, 0 forecasts" and exited 0
    with pytest.raises(ConfigError, match=r"n_splits must be a whole number of cutoffs, at least 1 \(got 0\)"):
        split_runs(np.array([1e6, 2e6, 4e6, 8e6]), "n", 0)
    assert len(split_runs(np.array([1e6, 2e6, 4e6, 8e6]), "n", 2)) == 2
