"""Henighan et al. 2020: Table 1 presets against the laws.md test vectors (computed from the constants)."""

from __future__ import annotations

import numpy as np
import pytest

from scalelab.errors import DataError
from scalelab.laws.henighan import HenighanComputeLaw, HenighanOptimalSizeLaw, HenighanSizeLaw
from scalelab.laws.kaplan import compute_efficient_frontier


def test_language_row():
    # laws.md §4 test vectors: L(N = 1e9) = 2.300, L(C = 1 PF-day) = 2.570, N_opt(1 PF-day) = 1.29e9
    assert float(HenighanSizeLaw.preset("henighan2020-language").predict(1e9)) == pytest.approx(2.300, abs=5e-4)
    assert float(HenighanComputeLaw.preset("henighan2020-language").predict(1.0)) == pytest.approx(2.570, abs=5e-4)
    nopt = HenighanOptimalSizeLaw.preset("henighan2020-language")
    assert float(nopt.predict(1.0)) == pytest.approx(1.29e9, rel=3e-3)
    # cross-check: Kaplan's Table 6 gives 1.3e9 at the same budget
    assert float(nopt.predict(1.0)) == pytest.approx(float(compute_efficient_frontier(1.0).N_opt[0]), rel=0.01)
    assert nopt.C_N() == pytest.approx(3.3e-13)


def test_image_8x8_optimal_size():
    law = HenighanOptimalSizeLaw.preset("henighan2020-image-8x8")
    np.testing.assert_allclose(law.predict([1.0, 100.0]), [3.14e8, 5.98e9], rtol=3e-3)


def test_exponent_near_universal():
    # abstract: N_opt ∝ C^beta with beta ≈ 0.7 in every domain
    betas = [HenighanOptimalSizeLaw.preset(p).params_["beta_N"] for p in HenighanOptimalSizeLaw.presets]
    assert min(betas) >= 0.6 and max(betas) <= 0.8


def test_irreducible_loss_recovered(rng):
    X, y = HenighanComputeLaw._example_data(rng)
    law = HenighanComputeLaw().fit(*X, y)
    assert law.params_["L_inf"] == pytest.approx(2.6, rel=0.01)
    assert law.params_["alpha_C"] == pytest.approx(0.16, rel=0.1)


def test_bad_input():
    with pytest.raises(DataError, match="too few"):
        HenighanComputeLaw().fit([1.0, 2.0, 3.0], [3.0, 2.9, 2.8])
