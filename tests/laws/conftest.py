"""Fixtures for the laws tests. Epoch AI's digitised Chinchilla runs have no stated licence, so they are read
from ../shared/anchors (skipped when absent); licensed tables come from ``scalelab.datasets``."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def epoch_runs(anchor_file):
    """Besiroglu et al. 2024's 245 digitised Chinchilla runs, the 5 highest losses dropped (240 left),
    as their data_analysis.ipynb does (analyzing-chinchilla @92258837, PROVENANCE.md)."""
    from scalelab.laws import load_runs

    path = anchor_file("analyzing-chinchilla/data/svg_extracted_data.csv",
                       "Epoch AI's 245 digitised Chinchilla runs (Besiroglu et al. 2024)")
    return load_runs(path, n="Model Size", compute="Training FLOP", loss="loss", drop_top_loss=5,
                     n_convention="total")


@pytest.fixture(scope="session")
def epoch_fit(epoch_runs):
    """The default fit (Hoffmann grid, Huber 1e-3 summed) with 1,000 bootstrap refits, seed 0."""
    from scalelab.laws import ChinchillaLaw

    return ChinchillaLaw(n_bootstrap=1000, random_state=0).fit(epoch_runs)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
