"""The batched fitter's shortcuts change no bit of its answer: evaluating a cheap Jacobian with every trial
step (``cheap_jacobian``), skipping it in the iteration that prunes, and keeping the trial arrays when most
steps are accepted give the same rows, objectives, flags and iteration count as evaluating the Jacobian
again for the accepted rows alone."""

from __future__ import annotations

import numpy as np
import pytest

from scalelab.laws import ChinchillaLaw
from scalelab.laws.fitting import Objective, fit_batch, resolve_init


class _LazyJacobianChinchilla(ChinchillaLaw):
    name = None  # not registered
    cheap_jacobian = False


@pytest.mark.parametrize("init, prune, space, weights", [
    ("coarse", None, "log", None), ("grid", 2, "log", None),
    # the linear-space residual keeps its derivative (dr/df = exp f), and bootstrap rows weigh the points
    ("coarse", None, "linear", None), ("coarse", None, "log", "bootstrap"), ("coarse", None, "linear", "bootstrap"),
])
def test_cheap_jacobian_path_gives_the_same_bits(init, prune, space, weights):
    X, y = ChinchillaLaw._example_data(np.random.default_rng(3), n=80)
    starts = resolve_init(ChinchillaLaw, init, X, y)
    w = None if weights is None else np.random.default_rng(4).multinomial(
        y.size, np.full(y.size, 1 / y.size), size=len(starts)).astype(float)
    kw = dict(obj=Objective("huber", 1e-3), max_iter=60, prune_after=prune, keep=64 if prune else None,
              patience=5 if prune else None, space=space, w=w)
    fast = fit_batch(ChinchillaLaw, X, y, starts, **kw)
    slow = fit_batch(_LazyJacobianChinchilla, X, y, starts, **kw)
    assert ChinchillaLaw.cheap_jacobian and not _LazyJacobianChinchilla.cheap_jacobian
    for a, b in zip(fast[:3], slow[:3], strict=True):
        np.testing.assert_array_equal(a, b)
    assert fast[3] == slow[3]
