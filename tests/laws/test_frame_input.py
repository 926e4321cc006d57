"""Issue 8 part 6: tidy data in. ``law.fit(df, n="params", d="tokens", loss="loss")`` and ``predict(df)``
as a pandas user expects, next to ``fit(N, D, L)``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from scalelab.errors import ConfigError, DataError
from scalelab.laws import ChinchillaLaw, get_law

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def frame():
    (N, D), y = ChinchillaLaw._example_data(np.random.default_rng(0), n=50)
    return pd.DataFrame({"params": N, "tokens": D, "loss": y, "seed": np.arange(50)})


def _fit(law, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return law.fit(*a, **k)


def test_fit_and_predict_a_dataframe_by_column_names(frame):
    by_name = _fit(ChinchillaLaw(init="coarse"), frame, n="params", d="tokens", loss="loss")
    by_array = _fit(ChinchillaLaw(init="coarse"), frame["params"].to_numpy(), frame["tokens"].to_numpy(),
                    frame["loss"].to_numpy())
    for k, v in by_array.params_.items():
        assert by_name.params_[k] == pytest.approx(v, rel=1e-12), k
    new = pd.DataFrame({"params": [1e9, 7e9], "tokens": [2e10, 1.4e11]})
    np.testing.assert_allclose(by_name.predict(new, n="params", d="tokens"),
                               by_array.predict(new["params"].to_numpy(), new["tokens"].to_numpy()))
    # recognised names need no mapping; compute alone gives D = C / (6 N)
    np.testing.assert_allclose(by_name.predict(new), by_name.predict(new, n="params", d="tokens"))
    comp = pd.DataFrame({"params": [1e9], "flops": [6 * 1e9 * 2e10]})
    assert float(by_name.predict(comp)[0]) == pytest.approx(float(by_name.predict(1e9, 2e10)), rel=1e-12)
    lo, hi = by_name.predict_interval(new, kind="mean")
    assert np.all(lo < hi)


def test_dict_of_columns_and_other_covariates_by_name():
    cls = get_law("muennighoff")
    (N, D, U), y = cls._example_data(np.random.default_rng(1))
    cols = {"N": N, "seen": D, "unique_tokens": U, "val_loss": y}
    law = _fit(cls(base="muennighoff2023"), cols, d="seen", u="unique_tokens", loss="val_loss")
    ref = _fit(cls(base="muennighoff2023"), N, D, U, y)
    assert law.params_["R_D_star"] == pytest.approx(ref.params_["R_D_star"], rel=1e-9)


def test_frame_errors_name_the_columns(frame):
    with pytest.raises(DataError, match=r"'parameters' \(mapped to N\) is not in"):
        ChinchillaLaw().fit(frame, n="parameters", d="tokens", loss="loss")
    with pytest.raises(DataError, match="no column for D"):
        ChinchillaLaw.preset("hoffmann2022").predict(pd.DataFrame({"params": [1e9]}))
    with pytest.raises(ConfigError, match="not a table"):
        ChinchillaLaw().fit(frame["params"], frame["tokens"], frame["loss"], n="params")
