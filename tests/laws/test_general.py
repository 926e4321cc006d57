"""General power law plus constant: recovers known parameters from synthetic data in any covariates."""

from __future__ import annotations

import numpy as np
import pytest

from scalelab.errors import ConfigError, DataError
from scalelab.laws import get_law
from scalelab.laws.general import PowerLawPlusConstant, power_law


def test_recovers_chinchilla_like_truth():
    Law = power_law("N", "D")
    truth = {"E": 1.8, "A_N": 480.0, "alpha_N": 0.35, "A_D": 2100.0, "alpha_D": 0.37}
    rng = np.random.default_rng(7)
    N = np.exp(rng.uniform(np.log(5e7), np.log(2e10), 150))
    D = np.exp(rng.uniform(np.log(1e9), np.log(4e11), 150))
    L = (truth["E"] + truth["A_N"] / N ** truth["alpha_N"] + truth["A_D"] / D ** truth["alpha_D"])
    L = L * np.exp(0.002 * rng.standard_normal(N.size))
    law = Law().fit(N, D, L)
    assert law.params_["E"] == pytest.approx(1.8, rel=0.02)
    assert law.params_["alpha_N"] == pytest.approx(0.35, rel=0.05)
    assert law.params_["alpha_D"] == pytest.approx(0.37, rel=0.05)
    assert law.params_["A_N"] == pytest.approx(480, rel=0.5)


def test_three_covariates_and_registry():
    Law = power_law("N", "D", "U")
    assert Law is power_law("N", "D", "U")                 # built once, then reused
    assert get_law("power-law[n,d,u]") is Law
    assert Law.param_names == ("E", "A_N", "alpha_N", "A_D", "alpha_D", "A_U", "alpha_U")
    X, y = Law._example_data(np.random.default_rng(3))
    law = Law().fit(*X, y)
    assert np.max(np.abs(np.log(law.predict(*X) / y))) < 0.05
    assert power_law("X") is PowerLawPlusConstant


def test_one_covariate_closed_form():
    law = PowerLawPlusConstant()
    law.params_ = {"E": 2.0, "A_X": 100.0, "alpha_X": 0.5}
    law.theta_ = law._to_theta(law.params_)[0]
    assert float(law.predict(100.0)) == pytest.approx(2.0 + 100.0 / 10.0)


def test_bad_input():
    with pytest.raises(ConfigError):
        power_law()
    with pytest.raises(ConfigError):
        power_law("N", "N")
    with pytest.raises(ConfigError):
        power_law("not an identifier")
    with pytest.raises(DataError, match="loss has NaN"):
        power_law("N", "D")().fit([1e8, 2e8, 4e8, 8e8, 1e9, 2e9, 4e9], [1e10] * 6 + [2e10],
                                  [3.0, 2.9, np.nan, 2.7, 2.6, 2.5, 2.4])


def test_saved_power_law_reloads_in_a_fresh_process(tmp_path):
    """A user's power law is registered when first built; a fit saved from it must load where it was not."""
    import subprocess
    import sys

    Law = power_law("N", "D")
    X, y = Law._example_data(np.random.default_rng(0))
    path = Law().fit(*X, y).save(tmp_path / "fit.json")
    code = f"from scalelab.laws import load_fit; print(sorted(load_fit({str(path)!r}).params_))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(sorted(Law.param_names))
