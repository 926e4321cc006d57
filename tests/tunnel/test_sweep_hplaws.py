"""Sweeps (tunnel/sweep.py), hyperparameter laws fitted to them (laws/hpfit.py), and grids whose LR or
batch comes from a law (tunnel/hplaws.py)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from scalelab.arch import ModelSpec
from scalelab.errors import ConfigError, DataError
from scalelab.laws.hpfit import NEEDED, best_per_cell, fit_hyperparams, load_hyperparam_fit
from scalelab.laws.hyperparams import DeepSeekLRLaw, StepLawLRLaw, deepseek_model_scale
from scalelab.tunnel.grid import grid_from_dict, make_config
from scalelab.tunnel.hplaws import resolve_batch_size, resolve_lr
from scalelab.tunnel.sweep import sweep_grid


def _synthetic(a=0.5, b=-0.4, c=0.1, lrs=None, noise=0.0, seed=0):
    """A sweep table whose loss is a bowl in log LR around eta* = a N^b D^c (known truth)."""
    rng = np.random.default_rng(seed)
    lrs = lrs or [2.0 ** k for k in range(-12, -1)]
    rows = []
    for n_layers, d in ((1, 32), (2, 64), (4, 128)):
        N = 12 * n_layers * d * d
        for D in (1e6, 4e6):
            opt = a * N ** b * D ** c
            for lr in lrs:
                for bs in (8, 16):
                    loss = 2 + 0.05 * (math.log(lr / opt)) ** 2 + 0.01 * (bs == 16) + noise * rng.normal()
                    rows.append((N, D * (1 + 0.01 * (bs == 16)), lr, bs, 64, loss, n_layers, d))
    return dict(zip(NEEDED, np.array(rows).T, strict=True))


def test_fit_recovers_known_lr_exponents_from_refined_cell_optima():
    fit = fit_hyperparams(_synthetic())
    p = fit.laws["steplaw-lr"].params_
    assert float(p["p_N"]) == pytest.approx(-0.4, abs=0.03)
    assert float(p["p_D"]) == pytest.approx(0.1, abs=0.03)
    assert fit.cells["N"].size == 6  # D differing by 1% between batch sizes stays one cell
    assert set(fit.cells["batch_tokens_grid"]) == {8 * 64}
    assert "deepseek-lr" in fit.laws and "deepseek-batch" in fit.laws


def test_refinement_beats_the_grid_point_and_edges_are_flagged():
    t = _synthetic()
    grid = best_per_cell(t, refine=False)
    ref = best_per_cell(t, refine=True)
    truth = 0.5 * ref["N"] ** -0.4 * ref["D"] ** 0.1
    assert np.all(np.abs(np.log(ref["lr"] / truth)) <= np.abs(np.log(grid["lr"] / truth)) + 1e-9)
    assert np.median(np.abs(np.log2(ref["lr"] / truth))) < 0.1
    narrow = best_per_cell(_synthetic(lrs=[2.0 ** -12, 2.0 ** -11, 2.0 ** -10]))
    assert narrow["lr_at_edge"].all()


def test_collinear_n_and_d_skip_the_steplaw_lr_form_with_a_reason(tmp_path):
    t = _synthetic()
    keep = t["D"] < 2e6
    one_d = {k: v[keep] for k, v in t.items()}
    fit = fit_hyperparams(one_d)
    assert "steplaw-lr" not in fit.laws and any("steplaw-lr" in n for n in fit.notes)
    # the DeepSeek form still predicts, and the fit round-trips through JSON
    path = fit.save(tmp_path / "hp.json")
    back = load_hyperparam_fit(path)
    M = float(deepseek_model_scale(2, 64, 64))
    assert back.predict_lr(N=12 * 2 * 64 * 64, D=1e6, M=M) == pytest.approx(fit.predict_lr(N=1, D=1e6, M=M))
    with pytest.raises(ConfigError, match="steplaw-lr"):
        back.predict_lr(N=1e5, D=1e6, form="steplaw")


def test_fit_refuses_a_single_cell_and_missing_columns():
    t = _synthetic()
    one = {k: v[:10] for k, v in t.items()}
    with pytest.raises(DataError, match="two or more"):
        fit_hyperparams(one)
    with pytest.raises(DataError, match="lacks columns"):
        fit_hyperparams({"loss": [1.0]})


def test_sweep_grid_cells_names_and_tokens_per_param():
    g = sweep_grid([2e4, 4e4], lrs=[1e-3, 2e-3, 4e-3], batch_sizes=[4, 8], tokens_per_param=[10, 20],
                   defaults={"seq_len": 32, "batch_size": 8}, model_defaults={"d_head": 8})
    assert g.name == "sweep:sweep" and len(g) == 2 * 2 * 3 * 2
    Ns = {c.model.n_params().total for c in g.configs}
    assert len(Ns) == 2
    for c in g.configs:
        k = c.n_tokens / c.model.n_params().total
        assert min(abs(k - 10), abs(k - 20)) < 0.2 * k
    with pytest.raises(ConfigError, match="token counts"):
        sweep_grid([2e4], lrs=[1e-3], batch_sizes=[4], defaults={"seq_len": 32, "batch_size": 8})


def _m() -> ModelSpec:
    return ModelSpec(n_layers=2, d_model=64, n_heads=4, d_ff=176, vocab_size=256, seq_len=64)


def test_grid_lr_from_published_laws_matches_the_laws_in_their_conventions():
    m = _m()
    D = 64 * 8 * 100
    warnings.simplefilter("ignore")  # published laws at a 1e5-parameter model: extrapolation by design
    c = make_config(m, D, {"seq_len": 64, "batch_size": 8, "lr": "law:li2025"})
    ref = float(StepLawLRLaw.preset("li2025").predict(m.n_params().non_embedding, D))
    assert c.lr == pytest.approx(ref, rel=1e-9)
    c = make_config(m, D, {"seq_len": 64, "batch_size": 8, "lr": "law:deepseek"})
    ref = float(DeepSeekLRLaw.preset("bi2024").predict(deepseek_model_scale(2, 64, 64) * D))
    assert c.lr == pytest.approx(ref, rel=1e-9)
    g = grid_from_dict({"defaults": {"seq_len": 64, "batch_size": "law:deepseek", "lr": "law:bi2024",
                                     "model": {"vocab_size": 256, "d_head": 16}},
                        "isoflop": {"budgets_flops": [1e12], "n_params": [5e4]}})
    cfg = g.configs[0]
    # resolved on the budget's tokens before they are rounded to whole steps of that batch
    assert abs(cfg.batch_size - resolve_batch_size("law:deepseek", cfg.model, cfg.n_tokens, 64)) <= 1
    assert cfg.batch_size > 1
    assert cfg.n_tokens % (cfg.batch_size * 64) == 0


def test_grid_lr_from_a_saved_fit_and_bad_names(tmp_path):
    fit = fit_hyperparams(_synthetic())
    path = fit.save(tmp_path / "hp.json")
    m = _m()
    c = make_config(m, 51200, {"seq_len": 64, "batch_size": 8, "lr": str(path)})
    assert c.lr == pytest.approx(fit.predict_lr(N=m.n_params().non_embedding, D=51200), rel=1e-9)
    with pytest.raises(ConfigError, match="unknown hyperparameter law"):
        resolve_lr("law:nope", m, 1e6, 64)
    with pytest.raises(ConfigError, match=r"unknown hyperparameter law|bad value"):
        grid_from_dict({"defaults": {"seq_len": 64, "batch_size": 8, "lr": "law:nope"},
                        "product": {"n_params": [5e4], "n_tokens": [1e5]}})
