"""A learning-rate sweep of one tiny GPT, for early stopping (``--prune``; docs/pruning.md).

Twelve peak learning rates, log-spaced from 3e-4 to 1e-1, of a one-layer, d_model 32 model trained for
240 steps of 8 x 32 byte tokens under a cosine schedule, evaluated every 12 steps. The runs train in a
seeded random order (the order a pruner sees them in matters). About 2 s a run on one CPU core.

    scalelab tunnel run recipes/lr_sweep_tiny.py --prune forecast
"""

import numpy as np

from scalelab.arch import ModelSpec
from scalelab.tunnel.grid import Grid
from scalelab.tunnel.train import RunConfig

NAME = "lr-sweep-tiny"
LRS = np.geomspace(3e-4, 1e-1, 12)
STEPS, BATCH, SEQ = 240, 8, 32


def sweep(seed: int = 0, steps: int = STEPS, lrs=LRS) -> Grid:
    """The sweep's runs (model seed ``seed``) in a random order drawn from ``seed``."""
    model = ModelSpec(n_layers=1, d_model=32, n_heads=2, d_ff=96, vocab_size=256, seq_len=SEQ)
    configs = [RunConfig(model=model, seq_len=SEQ, batch_size=BATCH, n_tokens=steps * BATCH * SEQ, lr=float(lr),
                         warmup_tokens=max(1, steps // 20) * BATCH * SEQ, eval_every_steps=max(1, steps // 20),
                         eval_tokens=2048, seed=seed) for lr in lrs]
    order = np.random.default_rng(seed).permutation(len(configs))
    return Grid(f"{NAME}-s{seed}", [configs[i] for i in order], labels=[f"lr={lrs[i]:.2e}" for i in order])


def grid() -> Grid:
    return sweep(0)
