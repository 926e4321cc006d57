"""Early stopping in sweeps: the pruners' decisions on synthetic curves, the replay's bookkeeping, pruned
runs in the store (including a store made before ``pruned`` existed), and one tiny real sweep in which a
run is stopped and stored ``pruned`` with the forecast behind it."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from scalelab.errors import ConfigError
from scalelab.tunnel.pruning import (
    ForecastPruner,
    MedianPruner,
    SuccessiveHalvingPruner,
    Trial,
    TrialCurve,
    make_pruner,
    replay,
)

T = 200
STEPS = np.arange(10, T + 1, 10)


def _curve(E: float, A: float, alpha: float = 0.5) -> np.ndarray:
    return E + A * (STEPS / 10.0) ** -alpha


def _done(key: str, values: np.ndarray) -> TrialCurve:
    return TrialCurve(key, STEPS.astype(float), values, T, "complete")


def _first_prune(pruner, values: np.ndarray, others: list[TrialCurve]) -> tuple[int | None, Trial]:
    trial = Trial(pruner, T, others=others)
    for s, v in zip(STEPS, values, strict=True):
        trial.report(int(s), float(v))
        if trial.should_prune():
            return int(s), trial
    return None, trial


def test_forecast_pruner_stops_a_clearly_worse_run_and_keeps_a_better_one():
    best = _done("best", _curve(2.0, 1.0))
    step, trial = _first_prune(ForecastPruner(), _curve(3.0, 1.0), [best])
    assert step is not None and step < T / 2
    d = trial.decision
    assert d.pruner == "forecast" and d.best == {"key": "best", "final_loss": pytest.approx(best.values[-1])}
    assert d.forecast["loss_lo"] > best.values[-1]  # the stop is justified by the band
    assert _first_prune(ForecastPruner(), _curve(1.9, 1.0), [best])[0] is None


def test_forecast_pruner_keeps_a_run_still_falling_faster_than_the_references():
    # The reference flattened early (a high LR); this run is behind at first but falls much faster: its
    # own log-log slope must keep it alive although the reference's ratio says it loses.
    ref = _done("ref", _curve(2.2, 0.3, alpha=1.5))
    slow = 1.0 + 4.0 * (STEPS / 10.0) ** -0.6
    assert slow[-1] < ref.values[-1] and slow[3] > ref.values[3]
    assert _first_prune(ForecastPruner(), slow, [ref])[0] is None


def test_forecast_pruner_waits_for_min_fraction_and_startup_runs():
    worse = _curve(3.0, 1.0)
    assert _first_prune(ForecastPruner(), worse, [])[0] is None
    step, _ = _first_prune(ForecastPruner(min_fraction=0.5), worse, [_done("b", _curve(2.0, 1.0))])
    assert step == T / 2


def test_median_pruner_compares_with_the_median_at_the_same_step():
    others = [_done(f"r{i}", _curve(2.0 + 0.1 * i, 1.0)) for i in range(3)]
    assert _first_prune(MedianPruner(n_startup_trials=3), _curve(2.5, 1.0), others)[0] == 10
    assert _first_prune(MedianPruner(n_startup_trials=3), _curve(2.05, 1.0), others)[0] is None
    assert _first_prune(MedianPruner(n_startup_trials=4), _curve(2.5, 1.0), others)[0] is None
    assert _first_prune(MedianPruner(n_startup_trials=3, n_warmup_steps=50), _curve(2.5, 1.0), others)[0] == 50


def test_successive_halving_keeps_the_best_third_at_each_rung():
    p = SuccessiveHalvingPruner(min_resource=10, reduction_factor=3)
    assert p.rungs(T) == [10, 30, 90]
    others = [_done(f"r{i}", _curve(2.0 + 0.1 * i, 1.0)) for i in range(5)]
    assert _first_prune(p, _curve(2.15, 1.0), others)[0] == 10  # 6 runs at the rung: only the best 2 go on
    assert _first_prune(p, _curve(2.05, 1.0), others)[0] is None
    with pytest.raises(ConfigError, match="reduction_factor"):
        SuccessiveHalvingPruner(reduction_factor=1)


def test_replay_counts_compute_and_whether_the_best_survived():
    curves = {"good": (STEPS, _curve(2.0, 1.0), T), "bad": (STEPS, _curve(3.0, 1.0), T),
              "mid": (STEPS, _curve(2.4, 1.0), T)}
    r = replay(ForecastPruner(), curves, ["good", "bad", "mid"])
    assert r.best_key == "good" and r.best_survived
    assert r.stopped_at["good"] == T and r.stopped_at["bad"] < T and set(r.decisions) <= {"bad", "mid"}
    assert r.saved_fraction == pytest.approx(1 - sum(r.stopped_at.values()) / (3 * T))
    # The best trained last against a worse first run: a pruner that stopped it would be caught here.
    r2 = replay(MedianPruner(n_startup_trials=1), curves, ["bad", "mid", "good"])
    assert r2.best_survived and r2.stopped_at["good"] == T


def test_make_pruner_names_the_choices():
    assert isinstance(make_pruner("median", n_startup_trials=1), MedianPruner)
    with pytest.raises(ConfigError, match=r"unknown pruner.*forecast, median, halving"):
        make_pruner("medain")
    with pytest.raises(ConfigError, match="bad option"):
        make_pruner("forecast", nope=1)
    with pytest.raises(ConfigError, match="level"):
        ForecastPruner(level=95)


# ---- the store --------------------------------------------------------------------------------------------
def test_a_store_made_before_pruned_existed_learns_the_status(tmp_path):
    """The old-format store committed under tests/assets (written by the code before user_version) refuses
    status 'pruned' as it is, and accepts it once scalelab has opened (migrated) it; its runs are kept."""
    import shutil
    from pathlib import Path

    from scalelab.tunnel.store import RunStore

    path = tmp_path / "old.sqlite"
    shutil.copy(Path(__file__).parents[1] / "assets" / "stores" / "store_v1.sqlite", path)
    con = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError):
        con.execute("INSERT INTO runs (hash, status, config_json, created_at) VALUES ('x', 'pruned', '{}', 0)")
    before = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    con.close()
    st = RunStore(path)
    st._conn.execute("INSERT INTO runs (hash, status, config_json, created_at) VALUES ('x', 'pruned', '{}', 0)")
    assert st.counts()["pruned"] == 1 and len(st) == before + 1
    st.close()


# ---- a real sweep -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_tiny_sweep_stores_a_pruned_run_with_its_forecast(corpus, tmp_path):
    pytest.importorskip("torch")
    from scalelab.arch import ModelSpec
    from scalelab.tunnel.grid import Grid
    from scalelab.tunnel.pruning import sweep_summary
    from scalelab.tunnel.runner import RunOptions, run_grid
    from scalelab.tunnel.store import RunStore
    from scalelab.tunnel.train import RunConfig

    model = ModelSpec(n_layers=1, d_model=16, n_heads=2, d_ff=32, vocab_size=256, seq_len=16)
    # A good LR first, then one so small the model barely moves: the second is confidently worse.
    cfgs = [RunConfig(model=model, corpus=str(corpus), seq_len=16, batch_size=4, n_tokens=40 * 64, lr=lr,
                      eval_every_steps=4, eval_tokens=128) for lr in (1e-2, 1e-6)]
    store = RunStore(tmp_path / "runs.sqlite")
    records = run_grid(Grid("sweep", cfgs), store, quiet=True, options=RunOptions(pruner=ForecastPruner()))
    assert [r.status for r in records] == ["completed", "pruned"]
    pruned = store.get(records[1].hash, with_curve=True)
    assert pruned.steps < 40 and pruned.tokens_seen == pruned.steps * 64
    assert pruned.pruned["pruner"] == "forecast" and pruned.pruned["step"] == pruned.steps
    assert pruned.pruned["forecast"]["loss_lo"] > records[0].final_val_loss
    assert pruned.final_val_loss == pruned.curve[-1]["val_loss"]
    s = sweep_summary(records)
    assert s["pruned"] == 1 and 0 < s["saved_fraction"] < 0.5 and s["best"]["hash"] == records[0].hash
    # a second run of the grid keeps the pruned run as it is
    again = run_grid(Grid("sweep", cfgs), store, quiet=True)
    assert [r.status for r in again] == ["completed", "pruned"]
    assert "pruned at step" in store.get(records[1].hash).report()


def test_cli_names_the_pruners_on_a_typo(capsys):
    from pathlib import Path

    from scalelab.cli.app import main

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "lr_sweep_tiny.py"
    assert main(["tunnel", "run", str(recipe), "--prune", "medain", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "medain" in err and "median" in err


def test_a_grid_without_evaluations_cannot_be_pruned_and_nothing_is_written(tmp_path):
    from scalelab.arch import ModelSpec
    from scalelab.tunnel.runner import RunOptions, run_grid
    from scalelab.tunnel.store import RunStore
    from scalelab.tunnel.train import RunConfig

    model = ModelSpec(n_layers=1, d_model=16, n_heads=2, d_ff=32, vocab_size=256, seq_len=16)
    cfg = RunConfig(model=model, seq_len=16, batch_size=4, n_tokens=640, lr=1e-2)
    store = RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(ConfigError, match="eval_every_steps"):
        run_grid([cfg], store, quiet=True, options=RunOptions(pruner=MedianPruner()))
    assert len(store) == 0
