"""A saved fit that was edited by hand, cut short or written for another law is refused with a DataError that
names the file and the field, never a KeyError/TypeError traceback (forecast, budget --law FILE, load_fit)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalelab.errors import DataError
from scalelab.laws import ChinchillaLaw, load_fit


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rng = np.random.default_rng(0)
    N = np.repeat([1e6, 3e6, 1e7, 3e7], 4)
    D = np.tile([2e7, 6e7, 2e8, 6e8], 4)
    L = (1.7 + 400 / N**0.34 + 410 / D**0.28) * (1 + rng.normal(0, 0.003, N.size))
    law = ChinchillaLaw(init="coarse").fit(N, D, L)
    path = law.save(tmp_path_factory.mktemp("fit") / "fit.json")
    return json.loads(path.read_text())


def _edit(d, key, value):
    d = json.loads(json.dumps(d))
    if "." in key:
        outer, inner = key.split(".")
        d[outer][inner] = value
    else:
        d[key] = value
    return d


@pytest.mark.parametrize(("key", "value", "match"), [
    ("law", "kaplan", r"the kaplan law needs parameters N_c, D_c, alpha_N, alpha_D.*got \['A', 'B', 'E'"),
    ("params", [1, 2], r"'params' is not a table.*allowed: an object with E, A, B, alpha, beta"),
    ("params.E", "abc", r"parameter 'E' is not a finite number \(got 'abc'\)"),
    ("params.E", None, r"parameter 'E' is not a finite number"),
    ("params.alpha", float("nan"), r"parameter 'alpha' is not a finite number"),
    ("calibration", "x", r"field 'calibration' is not a table \(got 'x'\)"),
    ("options", "x", r"field 'options' is not a table"),
    ("fitted_range", {"N": "x"}, r"fitted_range\['N'\] is not a \[low, high\] pair"),
    ("interval_level", "x", r"field 'interval_level' is not a number"),
    ("cov_theta", [[1, 2], [3]], r"field 'cov_theta' is not an array of numbers"),
    ("cov_theta", [[1, 2], [3, 4]], r"field 'cov_theta' has the wrong shape \(got \[2, 2\]\); allowed: shape \(5, 5\)"),
    ("residuals", "x", r"field 'residuals' is not an array of numbers"),
])
def test_damaged_fields_are_named(tmp_path, saved, key, value, match):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(_edit(saved, key, value)))
    with pytest.raises(DataError, match=match) as e:
        load_fit(path)
    assert str(path) in str(e.value) and "scalelab fit RUNS --law" in str(e.value)


def test_an_intact_file_still_loads(tmp_path, saved):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(saved))
    assert load_fit(path).params_ == pytest.approx(saved["params"])


def test_forecast_cli_exits_1_with_the_message(tmp_path, saved):
    from scalelab.cli.app import main

    path = tmp_path / "fit.json"
    path.write_text(json.dumps(_edit(saved, "law", "kaplan")))
    assert main(["forecast", str(path), "--compute", "1e20"]) == 1
