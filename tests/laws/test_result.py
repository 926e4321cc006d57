"""The typed fit result (``law.result_``), saved fits in today's and earlier layouts, and the module graph
of ``scalelab.laws``."""

from __future__ import annotations

import ast
import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import scalelab.laws
from scalelab.errors import NotFittedError
from scalelab.laws import ChinchillaLaw, ScalingLaw, load_fit
from scalelab.laws.result import FitResult

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "laws"
LAWS_DIR = Path(scalelab.laws.__file__).parent


def _fit(**options):
    X, y = ChinchillaLaw._example_data(np.random.default_rng(5), n=24)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ChinchillaLaw(init="coarse", **options).fit(*X, y)


def test_a_fit_sets_one_frozen_result_and_theta():
    law = _fit(n_bootstrap=5, random_state=0)
    public = sorted(a for a in vars(law) if a.endswith("_") and not a.startswith("_"))
    assert public == ["result_", "theta_"]
    r = law.result_
    assert isinstance(r, FitResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.params = {}  # type: ignore[misc]
    assert law.params_ is r.params and law.intervals_ is r.intervals and law.quality_ is r.quality
    assert law.gof_ is r.goodness_of_fit and law.X_range_ is r.fitted_range
    assert law.bootstrap_params_ is r.bootstrap_params and r.bootstrap_params.shape == (5, 5)
    assert r.interval_level == 0.95 and r.interval_method.startswith("bootstrap percentile")
    assert r.derived == law.derived() and {"a", "b"} <= set(r.derived)


def test_fitted_views_are_read_only_and_absent_before_fit():
    law = ChinchillaLaw()
    assert not hasattr(law, "params_") and not hasattr(law, "result_")
    assert getattr(law, "intervals_", None) is None
    with pytest.raises(NotFittedError, match="no parameters yet"):
        law.predict(1e9, 2e10)
    law = _fit()
    with pytest.raises(AttributeError, match="read-only"):
        law.intervals_ = {}
    # params_ stays settable by hand (a law with chosen constants): it makes a new result
    old = law.result_
    law.params_ = {**law.params_, "E": 2.0}
    assert law.result_ is not old and law.result_.params["E"] == 2.0 and old.params["E"] != 2.0
    assert law.result_.derived == law.derived()
    assert float(law.predict(1e9, 2e10)) > float(old.params["E"])


def test_refit_forgets_the_previous_result():
    law = _fit(n_bootstrap=4, random_state=1)
    X, y = ChinchillaLaw._example_data(np.random.default_rng(6), n=24)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law.set_params(n_bootstrap=0).fit(*X, y)
    assert law.result_.bootstrap_params is None and law.result_.interval_method.startswith("asymptotic")


def test_result_to_dict_from_dict_and_report():
    law = _fit()
    r = law.result_
    back = FitResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back.params == r.params and back.intervals == r.intervals and back.data_hash == r.data_hash
    np.testing.assert_array_equal(back.residuals, r.residuals)
    np.testing.assert_array_equal(back.cov_theta, r.cov_theta)
    text = r.report()
    assert "95% interval" in text and "alpha" in text and "quality: ok" in text
    assert law.report().endswith(text)


def test_a_file_saved_before_the_result_was_typed_loads_and_saves_the_same(tmp_path):
    """``chinchilla_fit_v1.json`` was written by ``law.save`` when the fit was ~18 attributes (scalelab
    0.x, before ``FitResult``); it must load into a working law and save back unchanged."""
    path = ASSETS / "chinchilla_fit_v1.json"
    saved = json.loads(path.read_text())
    law = load_fit(path)
    assert isinstance(law, ChinchillaLaw)
    assert law.params_ == saved["params"]
    assert law.result_.interval_level == saved["interval_level"]
    assert law.quality_ == saved["quality"] and law.calibration_ == saved["calibration"]
    assert float(law.predict(1e10, 2e11)) == pytest.approx(2.076480567117796, rel=1e-12)
    lo, hi = law.predict_interval(1e10, 2e11, kind="new")
    assert lo < 2.0764 < hi
    again = json.loads(law.save(tmp_path / "again.json").read_text())
    for d in (saved, again):
        d.pop("scalelab_version")
    assert again == saved
    assert list(again) == list(saved)  # same layout, key for key


def test_base_still_exports_what_it_did():
    from scalelab.laws.base import ScalingLaw as S
    from scalelab.laws.base import canonical_order, get_law, list_laws

    assert S is ScalingLaw and get_law("chinchilla") is ChinchillaLaw and ChinchillaLaw in list_laws()
    assert canonical_order((np.array([2.0, 1.0]),), np.array([1.0, 1.0])).tolist() == [1, 0]


def _imports(path: Path) -> set[str]:
    """Modules a file imports at run time (not under ``TYPE_CHECKING``), as dotted names relative to
    ``scalelab`` (``laws.base``, ``cli._output``)."""
    out: set[str] = set()
    tree = ast.parse(path.read_text())
    type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                 for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 1:
                names = [f"laws.{mod}"] if mod else [f"laws.{a.name}" for a in node.names]
            elif node.level == 2:
                names = [mod]
            else:
                names = [mod.removeprefix("scalelab.")]
            out.update(names)
        elif isinstance(node, ast.Import):
            out.update(a.name.removeprefix("scalelab.") for a in node.names)
    return out


def test_laws_import_nothing_from_cli_and_base_and_general_not_each_other():
    graph = {p.stem: _imports(p) for p in LAWS_DIR.glob("*.py")}
    assert not any(m.startswith("cli") for deps in graph.values() for m in deps), graph
    assert "laws.general" not in graph["base"] and "laws.base" not in graph["registry"]
    # general builds on base (a power law is a ScalingLaw); base must not reach back
    assert "laws.base" in graph["general"]
    for machinery in ("registry", "validation", "result", "io"):
        assert "laws.base" not in graph[machinery], machinery
