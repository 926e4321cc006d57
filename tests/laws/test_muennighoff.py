"""Muennighoff et al. 2023 on its own runs (datablations, 182 default-fit runs; App. A and
utils/parametric_fit.ipynb @13701315). Stage 1 is the paper's C4 base (fitted on Chinchilla's C4 isoFLOP
points, which are not published with the runs), so it is the fixed base here.

What is robust, and tested: the published constants give the notebook's printed objective; R_D* lies in a
long flat valley that these runs do not pin down; the paper's procedure stops somewhere in that valley, no
worse than the published point; scalelab's global search goes further down it. Where exactly L-BFGS stops
is not tested: it depends on floating point (issue 7)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scalelab.errors import ConfigError, DataError
from scalelab.laws.muennighoff import MuennighoffLaw, effective_data, effective_params


@pytest.fixture(scope="module")
def datablations():
    """The 182 default-fit runs, shipped (Apache-2.0) as ``scalelab.datasets.load_muennighoff2023()``."""
    from scalelab.datasets import load_muennighoff2023

    ds = load_muennighoff2023()
    cols = {k: ds.data[c].astype(float) for k, c in ds.law_columns.items()}   # N, D, U, L
    assert cols["N"].size == 182
    return cols


#: The notebook's printed minimum of its objective (summed Huber on log-loss, delta 1e-3), at the published
#: constants (utils/parametric_fit.ipynb @13701315).
PUBLISHED_OBJECTIVE = 0.015825936570763588
PUBLISHED = {"R_D_star": 15.387756, "R_N_star": 5.309743}


def _objective_at(d, R_D_star, R_N_star):
    """Summed Huber (delta 1e-3) on log-loss of the C4 base with the given decay constants."""
    law = MuennighoffLaw.preset("muennighoff2023")
    law.params_ = {**law.params_, "R_D_star": R_D_star, "R_N_star": R_N_star}
    r = np.log(law.predict(d["N"], d["D"], d["U"])) - np.log(d["L"])
    a = np.abs(r)
    return float(np.sum(np.where(a <= 1e-3, 0.5 * r * r, 1e-3 * (a - 0.5e-3))))


def test_published_constants_give_the_published_objective(datablations):
    """What the paper's procedure reproduces, exactly: its objective at its constants."""
    assert _objective_at(datablations, **PUBLISHED) == pytest.approx(PUBLISHED_OBJECTIVE, rel=1e-5)


def test_decay_constants_lie_in_a_flat_valley(datablations):
    """The runs do not identify R_D*: points far apart along the valley (the published constants, where
    L-BFGS stops on some machines, scalelab's global optimum, and beyond) are within 0.2% in objective."""
    valley = [(15.387756, 5.309743), (28.0, 2.78), (46.99, 2.33), (100.0, 1.68)]
    objs = [_objective_at(datablations, rd, rn) for rd, rn in valley]
    assert max(objs) / min(objs) < 1.002
    # ...while leaving the valley costs clearly more
    assert _objective_at(datablations, 5.0, 19.1) > 1.01 * min(objs)


def test_paper_procedure_stops_in_the_valley_at_no_worse_than_published(datablations):
    """The paper's L-BFGS-B from its grid of starts: where it stops along the flat valley depends on the
    last bits of floating point (R_D* 15.4 on one machine, 28.0 on another before fits sorted their
    runs), so this asserts what is robust: an objective no worse than the published one, a point in the
    valley, and the same answer whatever the row order."""
    d = datablations
    law = MuennighoffLaw(base="muennighoff2023", stage2="paper").fit(d["N"], d["D"], d["U"], d["L"])
    assert law.objective_ <= PUBLISHED_OBJECTIVE * (1 + 1e-6)
    assert 10.0 < law.params_["R_D_star"] < 200.0
    assert 1.0 < law.params_["R_N_star"] < 8.0
    assert law.objective_ == pytest.approx(_objective_at(d, law.params_["R_D_star"], law.params_["R_N_star"]),
                                           rel=1e-9)
    rev = slice(None, None, -1)
    again = MuennighoffLaw(base="muennighoff2023", stage2="paper").fit(d["N"][rev], d["D"][rev], d["U"][rev],
                                                                       d["L"][rev])
    assert again.params_ == law.params_


def test_global_search_finds_a_lower_objective_than_published(datablations):
    """The paper's L-BFGS stops in a flat valley: scalelab's default search goes further down it. The
    published constants are not the minimum of their own objective; the interval on R_D* shows how weakly
    the runs identify it (this pins the finding, see docs/laws-catalog.md)."""
    d = datablations
    law = MuennighoffLaw(base="muennighoff2023").fit(d["N"], d["D"], d["U"], d["L"])
    assert law.objective_ < PUBLISHED_OBJECTIVE - 1e-5
    lo, hi = law.intervals_["R_D_star"]
    assert lo < 15.39 < hi and hi / lo > 5
    assert law.params_["R_N_star"] < 5.31


def test_preset_reproduces_readme_examples():
    # datablations README: L(6.34e9, 242e9, 25e9) and L(8.67e9, 178e9, 25e9); 1e22 FLOPs with 25B unique
    # tokens -> 237,336,955,477 tokens and 7,022,364,736 parameters
    law = MuennighoffLaw.preset("muennighoff2023")
    assert float(law.predict(6.34e9, 242e9, 25e9)) == pytest.approx(2.2256440889984477, abs=1e-6)
    assert float(law.predict(8.67e9, 178e9, 25e9)) == pytest.approx(2.2269634075087867, abs=1e-6)
    opt = law.compute_optimal(1e22, 25e9)
    assert float(opt.D_opt[0]) == pytest.approx(237_336_955_477, rel=2e-3)
    assert float(opt.N_opt[0]) == pytest.approx(7_022_364_736, rel=2e-3)


def test_effective_data_table():
    # laws.md §6: value of repeated data, D'/D at 4 / 16 epochs = 0.931 / 0.661; limit (1 + R_D*) U
    rd = 15.387756
    assert float(effective_data(4e9, 1e9, rd) / 4e9) == pytest.approx(0.931, abs=1e-3)
    assert float(effective_data(16e9, 1e9, rd) / 16e9) == pytest.approx(0.661, abs=1e-3)
    assert float(effective_data(1e15, 1e9, rd) / 1e9) == pytest.approx(1 + rd, rel=1e-6)
    assert float(effective_data(1e9, 1e9, rd)) == pytest.approx(1e9)          # one epoch loses nothing
    assert float(effective_params(1e9, 1e9, 5.3)) == pytest.approx(1e9)       # no excess parameters
    # U_N = 0.051 U_D with the C4 base (App. A eq. 17)
    p = MuennighoffLaw.presets["muennighoff2023"]["params"]
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    assert G**2 == pytest.approx(0.051, abs=5e-4)


def test_recovers_synthetic_parameters(rng):
    X, y = MuennighoffLaw._example_data(rng)
    law = MuennighoffLaw().fit(*X, y)
    for k, v in MuennighoffLaw._example_params.items():
        assert law.params_[k] == pytest.approx(v, rel=0.15), k
    assert law.fit_info_["stage1"].startswith("fitted on")


def test_bad_input(rng):
    X, y = MuennighoffLaw._example_data(rng)
    N, D, U = X
    many = D > U * 1.5
    with pytest.raises(DataError, match="single-epoch"):
        MuennighoffLaw().fit(N[many], D[many], U[many], y[many])
    with pytest.raises(ConfigError, match="base"):
        MuennighoffLaw(base="no-such").fit(*X, y)
    with pytest.raises(ConfigError, match="base dict"):
        MuennighoffLaw(base={"E": 1.0}).fit(*X, y)
    with pytest.raises(ConfigError, match="stage2"):
        MuennighoffLaw(base="muennighoff2023", stage2="lbfgs").fit(*X, y)
    with pytest.raises(DataError, match="U has NaN"):
        MuennighoffLaw().fit(N, D, np.where(np.arange(U.size) == 3, math.nan, U), y)
