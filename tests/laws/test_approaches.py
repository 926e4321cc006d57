"""Acceptance 5: approach 2 on Porian et al. 2024's isoFLOP points gives their compute-optimal exponent
``a`` (their MIT-licensed tables, shipped as ``scalelab.datasets.load_porian2024``; values from their stored
fits, anchors/resolving-scaling-law-discrepancies/PROVENANCE.md), and approach 1 recovers a known allocation
from synthetic training curves."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from scalelab.datasets import load_porian2024
from scalelab.laws import ChinchillaLaw
from scalelab.laws.approaches import approach1, approach2

KEYS = ("source_file", "label", "dataset", "hparams", "warmup", "decay", "param_count", "val")


@pytest.mark.parametrize("vertex,tol", [("parabola", 0.03), ("akima", 0.02)])
def test_approach2_matches_porian_exponents(vertex, tol):
    points, settings = load_porian2024().data, load_porian2024(table="exponents").data
    assert settings["label"].size == 15
    for i in range(settings["label"].size):
        sub = np.logical_and.reduce([points[k] == settings[k][i] for k in KEYS])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = approach2(points["flops"][sub], points["n"][sub], points["loss"][sub], D=points["t"][sub],
                            vertex=vertex, n_bootstrap=0)
        a_pub = float(settings["a_n_exponent_bs_median_weighted"][i])
        label = f"{settings['label'][i]} ({settings['dataset'][i]})"
        assert res.a == pytest.approx(a_pub, abs=tol), f"{label}: {res.a:.4f} vs {a_pub:.4f}"


def test_approach2_on_synthetic_isoflops_recovers_closed_form():
    law = ChinchillaLaw.preset("besiroglu2024")
    C, N, L = [], [], []
    for c in np.geomspace(1e18, 1e21, 7):
        n_opt = law.compute_optimal(c).N_opt[0]
        for n in n_opt * np.geomspace(1 / 3, 3, 9):
            C.append(c)
            N.append(n)
            L.append(float(law.predict(n, c / (6 * n))))
    res = approach2(C, N, L, n_bootstrap=200, random_state=0)
    assert res.a == pytest.approx(law.derived()["a"], abs=0.01)
    assert res.a + res.b == pytest.approx(1.0, abs=1e-9)  # D_opt = C / (6 N_opt)
    lo, hi = res.intervals["a"]
    assert lo <= res.a <= hi


def test_approach1_on_synthetic_curves():
    # Hoffmann et al. §3.1: each size is trained to horizons spanning 16x in tokens around its optimum.
    law = ChinchillaLaw.preset("besiroglu2024")
    d = law.derived()
    run, N, D, L = [], [], [], []
    for i, n in enumerate(np.geomspace(7e7, 1.6e10, 24)):
        c_opt = 6 * (n / d["G"]) ** (1 / d["a"])  # invert N_opt = G (C/6)^a
        d_opt = c_opt / (6 * n)
        toks = np.geomspace(d_opt / 4, d_opt * 4, 40)
        run += [i] * toks.size
        N += [n] * toks.size
        D += list(toks)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            L += list(law.predict(np.full(toks.size, n), toks))
    res = approach1(run, N, D, L, n_bootstrap=0)
    assert res.a == pytest.approx(d["a"], abs=0.02)


def test_approach2_warns_when_minimum_not_bracketed():
    C = [1e18] * 4 + [1e19] * 4
    N = [1e7, 2e7, 4e7, 8e7] * 2
    L = [3.0, 2.9, 2.8, 2.7, 3.0, 2.8, 2.7, 2.75]
    with pytest.warns(Warning, match="not bracketed"):
        with pytest.raises(Exception, match="fewer than two"):
            approach2(C, N, L, n_bootstrap=0)
