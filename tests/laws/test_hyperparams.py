"""Hyperparameter laws: presets reproduce published configurations and the laws.md test vectors; the
Step Law recipe refit on the released grid (anchors/steplaw, step-law/steplaw @efbab63b) reproduces what
the repository's issue #10 reports, which differs from the paper's formula."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from scalelab.errors import ConfigError, DataError
from scalelab.laws.hyperparams import (
    DeepSeekBatchLaw,
    DeepSeekLRLaw,
    DeepSeekScaleLaw,
    KaplanCriticalBatchLaw,
    MiniCPMBatchLaw,
    StepLawBatchLaw,
    StepLawLRLaw,
    deepseek_model_scale,
    steplaw_near_optimal,
)


@pytest.mark.parametrize("N, D, lr, bs", [
    # laws.md §7 test vectors (computed from eta = 1.79 N^-0.713 D^0.307, B = 0.58 D^0.571 tokens)
    (1e9, 1e11, 1.632e-3, 1.108e6),
    (4e8, 4e10, 2.368e-3, 6.57e5),
    (7e9, 2e12, 1.023e-3, 6.13e6),
])
def test_steplaw_presets(N, D, lr, bs):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # 7e9 / 2e12 is an extrapolation
        assert float(StepLawLRLaw.preset("li2025").predict(N, D)) == pytest.approx(lr, rel=1e-3)
        assert float(StepLawBatchLaw.preset("li2025").predict(D)) == pytest.approx(bs, rel=2e-3)
        # the bootstrap mean rounds to the printed formula
        assert float(StepLawLRLaw.preset("li2025-bootstrap").predict(N, D)) == pytest.approx(lr, rel=0.03)


def test_deepseek_reproduces_released_configs():
    # DeepSeek LLM 7B (30 layers, d 4096) and 67B (95 layers, d 8192), 4096-token context, 2T tokens:
    # released LR 4.2e-4 / 3.2e-4 (laws.md §8: the law gives 4.29e-4 / 3.13e-4 and 9.0e6 / 2.04e7 tokens)
    import warnings

    lr, bs = DeepSeekLRLaw.preset("bi2024"), DeepSeekBatchLaw.preset("bi2024")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # 7.85e22 FLOPs is far beyond the 3e20 fitted range
        for layers, d, want_lr, want_bs, released_lr in ((30, 4096, 4.29e-4, 9.0e6, 4.2e-4),
                                                          (95, 8192, 3.13e-4, 2.04e7, 3.2e-4)):
            C = deepseek_model_scale(layers, d, 4096) * 2e12
            assert float(lr.predict(C)) == pytest.approx(want_lr, rel=3e-3)
            assert float(bs.predict(C)) == pytest.approx(want_bs, rel=6e-3)
            assert float(lr.predict(C)) == pytest.approx(released_lr, rel=0.05)
    assert deepseek_model_scale(30, 4096, 4096) == pytest.approx(3.93e10, rel=2e-3)


def test_deepseek_allocation_at_1e20():
    opt = DeepSeekScaleLaw.preset("bi2024").compute_optimal(1e20)
    assert opt["M_opt"][0] == pytest.approx(5.25e9, rel=2e-3)
    assert opt["D_opt"][0] == pytest.approx(1.91e10, rel=3e-3)     # eq. 4: 5.8316 C^0.4757
    assert float(DeepSeekLRLaw.preset("bi2024").predict(1e20)) == pytest.approx(9.86e-4, rel=1e-3)
    assert float(DeepSeekBatchLaw.preset("bi2024").predict(1e20)) == pytest.approx(1.02e6, rel=3e-3)
    # Tian et al. 2025 Table 1: the MoE optimum is smaller than the dense one at the same budget
    moe = DeepSeekScaleLaw.preset("tian2025-moe").compute_optimal(1e20)["M_opt"][0]
    dense = DeepSeekScaleLaw.preset("tian2025-dense").compute_optimal(1e20)["M_opt"][0]
    assert moe < dense


@pytest.mark.parametrize("L, bs", [(3.0, 1.28e6), (2.5, 3.98e6), (3.5, 4.87e5), (4.0, 2.12e5)])
def test_minicpm_batch(L, bs):
    # laws.md §9 test vectors of bs = 1.21e9 / L^6.24 (tokens)
    assert float(MiniCPMBatchLaw.preset("hu2024").predict(L)) == pytest.approx(bs, rel=4e-3)


def test_kaplan_critical_batch_is_exported():
    assert float(KaplanCriticalBatchLaw.preset("kaplan2020").predict(3.0)) == pytest.approx(1.07e6, rel=3e-3)


@pytest.fixture(scope="module")
def steplaw_grid(anchor_file):
    path = anchor_file("steplaw/data/dense_lr_bs_loss.csv",
                       "Step Law's released dense LR x batch-size grid (Li et al. 2025)")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[c]) for r in rows]) for k, c in
            (("N", "N"), ("D", "D"), ("lr", "lr"), ("bs", "bs"), ("loss", "smooth loss"))}


def test_steplaw_recipe_on_released_grid(steplaw_grid):
    g = steplaw_grid
    sel = steplaw_near_optimal(g["N"], g["D"], g["lr"], g["bs"], g["loss"])   # 0.25%, bs x 2048 tokens
    lr = StepLawLRLaw().fit(sel["N"], sel["D"], sel["lr"])
    # step-law/steplaw issue #10: rerunning the released script gives lr_coefN -0.7669, lr_coefD 0.1967
    assert lr.params_["p_N"] == pytest.approx(-0.7669, abs=0.005)
    assert lr.params_["p_D"] == pytest.approx(0.1967, abs=0.005)
    # ... which is not the paper's D exponent (0.307, bootstrap 95% range 0.271-0.345)
    assert not 0.2712 <= lr.params_["p_D"] <= 0.3451
    bs = StepLawBatchLaw().fit(sel["D"], sel["batch_tokens"])
    assert 0.55 < bs.params_["p_D"] < 0.65            # paper 0.571; issue #10 (N and D) 0.624


def test_refit_recovers_synthetic(rng):
    X, y = DeepSeekLRLaw._example_data(rng)
    law = DeepSeekLRLaw().fit(*X, y)
    assert law.params_["p_C"] == pytest.approx(-0.125, abs=0.02)
    lo, hi = law.intervals_["p_C"]
    assert lo < law.params_["p_C"] < hi


def test_bad_input():
    with pytest.raises(DataError, match="rows"):
        steplaw_near_optimal([1e9, 1e9], [1e10, 1e10], [1e-3, -1.0], [256, 512], [2.5, 2.4])
    with pytest.raises(DataError, match="one value per run"):
        steplaw_near_optimal([1e9], [1e10, 1e10], [1e-3, 2e-3], [256, 512], [2.5, 2.4])
    with pytest.raises(ConfigError):
        steplaw_near_optimal([1e9], [1e10], [1e-3], [256], [2.5], threshold=2.0)
    with pytest.raises(ConfigError):
        deepseek_model_scale(0, 4096, 4096)
    with pytest.raises(ConfigError):
        DeepSeekScaleLaw.preset("bi2024").compute_optimal(-1.0)
