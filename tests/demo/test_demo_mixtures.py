"""``scalelab demo --mixtures`` on miniature settings: proxies trained on mixtures of the stdlib corpus'
domains, a fit, a chosen mixture that is a valid mixture, and its check among random ones at a larger size."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from scalelab.demo_mixtures import MixtureDemoSettings, run_mixture_demo

TINY = MixtureDemoSettings(n_proxies=6, proxy_steps=8, n_checks=2, check_steps=8, seq_len=16, batch_size=4,
                           eval_tokens=256, model="linear",
                           check_model={"n_layers": 1, "d_model": 32, "n_heads": 2, "d_ff": 64})


@pytest.mark.slow
def test_mixture_demo_end_to_end():
    res = run_mixture_demo(settings=TINY, seed=1)
    assert res.domains == ["code", "docs", "tests"]
    assert res.proxy_losses.shape == (6,) and np.all(np.isfinite(res.proxy_losses))
    w = np.array([res.chosen[d] for d in res.domains])
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    lo, mid, hi = res.chosen_predicted
    assert lo <= mid <= hi
    assert 1 <= res.chosen_rank <= 3 and res.check_losses.shape == (2,)
    d = res.to_dict()
    assert d["larger_proxy"]["of"] == 3 and "chosen lands" in res.report()
