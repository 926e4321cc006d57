"""MoE laws: Tian et al. 2025's efficiency leverage (preset flagged unconfirmed), Clark 2022 and
Krajewski 2024 as refittable forms (no presets: laws.md marks their constants unconfirmed)."""

from __future__ import annotations

import numpy as np
import pytest

from scalelab.errors import ConventionWarning, NotFittedError
from scalelab.laws.moe import ClarkMoELaw, EfficiencyLeverageLaw, KrajewskiMoELaw, saturating_transform


def test_tian_preset_warns_and_gives_regression_values():
    with pytest.warns(ConventionWarning, match="not confirmed"):
        law = EfficiencyLeverageLaw.preset("tian2025")
    # laws.md §11a (computed, log10 reading): EL(A = 3.1%, G = 12, C = 1e22) = 5.37; EL(A = 1) = 0.99
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert float(law.predict(0.031, 12, 1e22)) == pytest.approx(5.37, abs=0.01)
        assert float(law.predict(1.0, 12, 1e22)) == pytest.approx(0.99, abs=0.01)
        # leverage grows as the activation ratio falls and as compute grows (the paper's findings)
        el = law.predict([0.2, 0.05, 0.02], 12, 1e20)
        assert np.all(np.diff(el) > 0)
        assert float(law.predict(0.05, 12, 1e21)) > float(law.predict(0.05, 12, 1e19))


def test_clark_and_krajewski_have_no_presets():
    assert ClarkMoELaw.presets == {} and KrajewskiMoELaw.presets == {}
    with pytest.raises(NotFittedError, match="presets: none"):
        ClarkMoELaw().predict(1e8, 8)


def test_saturating_transform():
    # at E = 1 the Clark transform gives E_start; it saturates at E_max
    assert float(saturating_transform(1.0, 1.847, 314.5, offset=1.0)) == pytest.approx(1.847)
    assert float(saturating_transform(1e9, 1.847, 314.5, offset=1.0)) == pytest.approx(314.5, rel=1e-4)


@pytest.mark.parametrize("cls", [ClarkMoELaw, KrajewskiMoELaw, EfficiencyLeverageLaw])
def test_forms_refit_synthetic(cls, rng):
    X, y = cls._example_data(rng)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = cls().fit(*X, y)
    pred = law.predict(*X)
    assert np.max(np.abs(np.log(pred / y))) < 5 * cls._example_noise
    # exponents come back (scales of saturating terms are weakly identified and not checked)
    for k in {"a", "alpha", "beta", "d"} & set(cls.param_names):
        assert law.params_[k] == pytest.approx(cls._example_params[k], rel=0.1, abs=0.01), k


def test_krajewski_matches_transcribed_vectors():
    # laws.md §11c (computed from the transcribed constants, used here only to check the form's algebra)
    p = {"c": 0.47, "a": 18.1, "g": 2.1, "gamma": 0.58, "alpha": 0.115, "b": 30.8, "beta": 0.147}
    pub = np.array([[p[k] for k in KrajewskiMoELaw.param_names]])
    out = KrajewskiMoELaw._form(KrajewskiMoELaw._pdict(pub),
                                (np.array([1e9] * 3), np.array([2e10] * 3), np.array([1.0, 8.0, 64.0])))
    np.testing.assert_allclose(out[0], [3.276, 3.140, 3.100], atol=1e-3)


def test_clark_form_fits_routed_lm_runs(anchor_file):
    """SLDBench's copy of the routed-LM runs (anchors/SLD, identified as Clark et al. 2022's; final step):
    the dense runs plus S-BASE at k = 1, routing every other layer. The form fits them to < 1% (log rmse),
    and the refit lands near the transcribed S-BASE row (a -0.082, b -0.108, c 0.009, d 1.104), which is
    support for that transcription and its base-10 logs, not a confirmation (so still no preset)."""
    import csv

    path = anchor_file("SLD/data/moe_scaling_law/data.csv",
                       "SLDBench's routed-LM loss curves (identified as Clark et al. 2022's)")
    last: dict[str, dict] = {}
    with path.open() as f:
        for r in csv.DictReader(f):
            if r["hyper_id"] not in last or float(r["step"]) > float(last[r["hyper_id"]]["step"]):
                last[r["hyper_id"]] = r
    rows = [r for r in last.values() if float(r["k"]) == 1 and float(r["routing_frequency"]) == 0.5 and (
        (r["router_type"] == "Dense" and r["total_parameter_count"] == r["dense_parameter_count"])
        or r["router_type"] == "S-Base")]
    N = np.array([float(r["dense_parameter_count"]) for r in rows])
    E = np.array([float(r["num_experts"]) for r in rows])
    L = np.array([float(r["loss_validation"]) for r in rows])
    assert N.size == 61
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = ClarkMoELaw().fit(N, E, L)
    assert law.gof_["rmse_log"] < 0.01
    assert law.params_["a"] == pytest.approx(-0.082, abs=0.01)
    assert law.params_["b"] == pytest.approx(-0.108, abs=0.04)
    assert law.params_["c"] == pytest.approx(0.009, abs=0.005)
    assert law.params_["d"] == pytest.approx(1.104, abs=0.06)
