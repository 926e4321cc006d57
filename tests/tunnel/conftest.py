"""Shared helpers of the wind-tunnel tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

STEP = 16 * 4  # tokens per step of the tiny runs: seq_len 16, batch 4


def _grid_toml(corpus: Path, steps: list[int], name: str = "killed") -> str:
    """A TOML grid of tiny one-layer runs on ``corpus``, one per entry of ``steps`` (its length in steps)."""
    runs = "".join(
        f"[[run]]\nmodel = {{n_layers = 1, d_model = 32, n_heads = 2, d_ff = 96, vocab_size = 256, seq_len = 16}}\n"
        f"n_tokens = {s * STEP}\nseed = {i}\n\n" for i, s in enumerate(steps))
    return (f'name = "{name}"\n[defaults]\ncorpus = "{corpus}"\nseq_len = 16\nbatch_size = 4\nlr = 3e-3\n'
            f"eval_tokens = 256\n\n{runs}")


@pytest.fixture
def grid_toml() -> Callable[..., str]:
    """The text of a tiny TOML grid: ``grid_toml(corpus, [steps, ...], name=...)``."""
    return _grid_toml
