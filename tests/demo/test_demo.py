"""The demo end to end on a miniature grid: runs stored once, law fitted, held-out run trained and
compared, production plan made, HTML report self-contained; a second call reuses every stored run."""

from __future__ import annotations

import math
import re

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from scalelab.demo import DemoSettings, run_demo
from scalelab.tunnel.store import RunStore

TINY = DemoSettings(budgets_flops=(2e9, 5e9), sizes=(1.2e4, 3e4, 5e4), holdout_flops=1.2e10, n_bootstrap=30,
                    production_n_gpus=256)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    res = run_demo(settings=TINY, seed=0, store=d / "runs.sqlite", out=d / "report.html", workers=2, quiet=True)
    return res, d


def test_demo_trains_fits_forecasts_and_plans(demo_run):
    res, _d = demo_run
    assert len(res.grid_runs) == 6 and all(r["status"] == "completed" for r in res.grid_runs)
    # every isoFLOP run spent its budget: 6 N D within one optimizer step of C
    for r in res.grid_runs:
        assert r["budget_flops"] in TINY.budgets_flops
        assert 6 * r["n_params"] * r["tokens"] == pytest.approx(r["budget_flops"], rel=0.15)
    assert set(res.fit["params"]) == {"E", "A", "B", "alpha", "beta"}
    f = res.forecast
    assert f["C_flops"] == TINY.holdout_flops and f["loss_lo"] < f["loss"] < f["loss_hi"]
    h = res.holdout
    assert h["status"] == "completed" and math.isfinite(h["val_loss"])
    assert res.forecast_error == pytest.approx((h["val_loss"] - f["loss"]) / h["val_loss"])
    p = res.production
    assert p["feasible"] and p["training_days"] > 0 and p["memory_total_bytes"] <= p["gpu_memory_bytes"]
    text = res.report()
    assert "held-out" in text and f"{h['val_loss']:.4f}" in text
    # three model sizes are too few to backtest the fit on its own runs: the band says where its width is from
    assert f["band_source"] == "prior" and "too few to backtest this fit" in text
    # the law just fitted drives a second production plan, through budget, with the transfer caveat
    q = p["fitted"]
    assert q["law"] == "the demo's fitted law" and "caveat" in q and "nats per byte" in q["caveat"]
    if q["feasible"]:  # N_opt of the fitted law's own closed form (Hoffmann et al. 2022 eq. 4)
        fp = res.fit["params"]
        al, be = fp["alpha"], fp["beta"]
        G = (al * fp["A"] / (be * fp["B"])) ** (1 / (al + be))
        assert q["N_opt"] == pytest.approx(G * (TINY.production_flops / 6) ** (be / (al + be)), rel=0.01)
        assert q["training_days"] > 0
    else:
        assert q["reason"]
    assert "the law fitted above" in text and "caveat:" in text
    d_json = res.to_dict()
    assert d_json["inside_interval"] == res.inside_interval


def test_report_is_self_contained(demo_run):
    _res, d = demo_run
    html = (d / "report.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 4  # isoFLOP, law, forecast, memory
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "name='viewport'" in html  # laid out at a phone's width, not shrunk from 980 px
    assert str(d) not in html and "runs.sqlite" in html  # the store by name, not by absolute path
    assert "budget_flops" not in html and "val_loss" not in html  # headings in words


def test_second_demo_reuses_stored_runs(demo_run):
    res, d = demo_run
    n_before = len(RunStore(d / "runs.sqlite").runs())
    again = run_demo(settings=TINY, seed=0, store=d / "runs.sqlite", out=None, workers=1, quiet=True)
    assert len(RunStore(d / "runs.sqlite").runs()) == n_before
    assert [r["val_loss"] for r in again.grid_runs] == [r["val_loss"] for r in res.grid_runs]
    assert again.holdout["val_loss"] == res.holdout["val_loss"]


def test_holdout_budget_must_exceed_grid(tmp_path):
    from scalelab.errors import ConfigError

    bad = DemoSettings(budgets_flops=(1e10,), sizes=(1e4,), holdout_flops=5e9, n_bootstrap=0)
    with pytest.raises(ConfigError, match="held-out budget must exceed"):
        run_demo(settings=bad, store=tmp_path / "s.sqlite", out=None)


def test_a_report_path_that_cannot_be_written_is_refused_before_training(tmp_path):
    # --out into a missing folder used to fail only when the report was written, after every run trained
    from scalelab.errors import ConfigError

    store = tmp_path / "s.sqlite"
    with pytest.raises(ConfigError, match=r"folder of the demo's report does not exist.*mkdir -p"):
        run_demo(settings=TINY, store=store, out=tmp_path / "missing" / "report.html")
    with pytest.raises(ConfigError, match=r"report path is a folder.*scalelab-report.html"):
        run_demo(settings=TINY, store=store, out=tmp_path)
    assert not store.exists()


def test_a_report_that_cannot_be_drawn_is_refused_before_training(tmp_path, monkeypatch):
    import importlib.util

    from scalelab.errors import MissingDependencyError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"scalelab\[report\]"):
        run_demo(settings=TINY, store=tmp_path / "s.sqlite", out=tmp_path / "report.html")
    assert not (tmp_path / "s.sqlite").exists()
