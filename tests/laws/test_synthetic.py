"""Acceptance 6 (small version): data drawn from known Chinchilla parameters plus noise are fitted back,
and the bootstrap 95% intervals cover the truth about as often as they claim. The >= 200-trial version
is ``benchmarks/laws_coverage.py``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from scalelab.errors import ExtrapolationWarning
from scalelab.laws import ChinchillaLaw

TRUTH = ChinchillaLaw._example_params


def test_parameters_recovered_from_noiseless_data():
    X, _ = ChinchillaLaw._example_data(np.random.default_rng(0), n=60)
    y = ChinchillaLaw.preset("besiroglu2024").predict(*X)  # exact law, no noise
    law = ChinchillaLaw().fit(*X, y)
    ref = ChinchillaLaw.presets["besiroglu2024"]["params"]
    for k, v in ref.items():
        assert law.params_[k] == pytest.approx(v, rel=1e-4), k


def test_bootstrap_intervals_cover_truth():
    hits, total = 0, 0
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        X, y = ChinchillaLaw._example_data(rng, n=80)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            law = ChinchillaLaw(init="coarse", n_bootstrap=200, random_state=seed).fit(*X, y)
        assert law.params_["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.1)
        assert law.params_["beta"] == pytest.approx(TRUTH["beta"], abs=0.1)
        for k, (lo, hi) in law.intervals_.items():
            hits += lo <= TRUTH[k] <= hi
            total += 1
    # 40 intervals at 95%: P(fewer than 33 hits) < 0.1% for a calibrated method
    assert hits >= 33, f"coverage {hits}/{total}"


def test_prediction_intervals_new_run_wider_than_mean():
    X, y = ChinchillaLaw._example_data(np.random.default_rng(3), n=80)
    law = ChinchillaLaw(init="coarse", n_bootstrap=100, random_state=0).fit(*X, y)
    N, D = np.array([1e9, 5e9]), np.array([2e10, 1e11])
    lo_m, hi_m = law.predict_interval(N, D, kind="mean")
    lo_n, hi_n = law.predict_interval(N, D, kind="new")
    pred = law.predict(N, D)
    assert np.all((lo_m <= pred) & (pred <= hi_m))
    assert np.all(hi_n - lo_n > hi_m - lo_m)
    # a new run's band reflects the 1% noise on log-loss: about +-2% at 95%
    assert np.all((hi_n / pred - 1) > 0.01) and np.all((hi_n / pred - 1) < 0.05)


def test_extrapolation_is_reported_and_warned():
    X, y = ChinchillaLaw._example_data(np.random.default_rng(4), n=60)
    law = ChinchillaLaw(init="coarse", extrapolation_factor=5.0).fit(*X, y)
    inside = law.extrapolation(1e9, 1e10)
    assert inside == 1.0
    far = law.extrapolation(2e12, 1e10)  # 100x the largest N of 2e10
    assert far == pytest.approx(2e12 / law.X_range_["N"][1])
    with pytest.warns(ExtrapolationWarning, match="outside the fitted range"):
        law.predict(2e12, 1e10)
    co = law.compute_optimal(1e26)
    assert co.extrapolation[0] > 5


def test_asymptotic_intervals_without_bootstrap():
    X, y = ChinchillaLaw._example_data(np.random.default_rng(5), n=80)
    law = ChinchillaLaw(init="coarse").fit(*X, y)
    assert "asymptotic" in law.interval_method_
    for k in law.param_names:
        lo, hi = law.intervals_[k]
        assert lo < law.params_[k] < hi
        assert np.isfinite(law.stderr_[k]) and law.stderr_[k] > 0


def test_least_squares_objective_recovers_parameters():
    X, y = ChinchillaLaw._example_data(np.random.default_rng(6), n=120)
    law = ChinchillaLaw(loss="ls", init="coarse").fit(*X, y)
    assert law.params_["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.08)
    assert law.params_["E"] == pytest.approx(TRUTH["E"], rel=0.1)


def test_inference_aware_allocation_prefers_smaller_models():
    law = ChinchillaLaw.preset("besiroglu2024")
    base = law.inference_optimal(2.0, 0.0)
    # with no inference, the cheapest model for a loss is the training-compute-optimal one
    co = law.compute_optimal(6 * base.N * base.D)
    assert base.N == pytest.approx(co.N_opt[0], rel=1e-3)
    heavy = law.inference_optimal(2.0, 1e13)  # 10T tokens served
    assert heavy.N < base.N and heavy.D > base.D
    assert heavy.total_flops <= heavy.chinchilla_total_flops
    assert float(law.predict(heavy.N, heavy.D)) == pytest.approx(2.0, rel=1e-6)


def test_isoloss_and_isoflop_curves_are_consistent():
    law = ChinchillaLaw.preset("besiroglu2024")
    N, D = law.isoloss(2.1)
    np.testing.assert_allclose(law.predict(N, D), 2.1, rtol=1e-9)
    Nf, Df, Lf = law.isoflop(1e21)
    np.testing.assert_allclose(6 * Nf * Df, 1e21, rtol=1e-12)
    n_best = Nf[np.argmin(Lf)]
    assert n_best == pytest.approx(law.compute_optimal(1e21).N_opt[0], rel=0.05)


def test_unidentified_term_warns_with_remedy():
    # data with no D dependence at all: B runs to its lower bound and the covariance is singular
    from scalelab.errors import ConvergenceWarning

    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(1e8), np.log(1e10), 40))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e11), 40))
    y = 1.8 + 400 / N**0.34
    with pytest.warns(ConvergenceWarning) as rec:
        law = ChinchillaLaw(init="coarse").fit(N, D, y)
    msgs = " | ".join(str(r.message) for r in rec)
    assert "bound of B" in msgs and "Fix:" in msgs
    assert "singular" in msgs
    assert law.params_["alpha"] == pytest.approx(0.34, rel=1e-4)
    assert any("bound of B" in n for n in law.fit_info_["warnings"])


def test_failed_polish_at_a_non_stationary_point_warns(monkeypatch):
    # DESIGN principle 6: every scipy result is checked. Simulate a solver that gives up immediately.
    from types import SimpleNamespace

    from scalelab.errors import ConvergenceWarning
    from scalelab.laws import fitting

    def give_up(law_cls, X, y, theta0, w, obj, space, prior=None):
        return SimpleNamespace(success=False, message="ABNORMAL_TERMINATION_IN_LNSRCH", fun=np.inf, x=theta0, nit=0)

    monkeypatch.setattr(fitting, "_scipy_polish", give_up)
    X, y = ChinchillaLaw._example_data(np.random.default_rng(7), n=60)
    start = [[3.0, 50.0, 50.0, 0.1, 0.1]]  # far from the truth; one batched iteration cannot get there
    with pytest.warns(ConvergenceWarning, match="ABNORMAL_TERMINATION_IN_LNSRCH.*Fix"):
        law = ChinchillaLaw(init=start, max_iter=1).fit(*X, y)
    assert not law.fit_info_["stationary"]
