"""An isoFLOP grid of tiny dense GPTs on the embedded corpus (the Python standard library's source).

Three compute budgets x four model sizes; each run's tokens follow from ``C = 6 N D`` (Hoffmann et al.
2022 approach 2). Sizes are turned into shapes by the tunnel's family rule
(:func:`scalelab.tunnel.grid.model_for_params`). On 2 CPU cores the grid trains in a few minutes.

    scalelab tunnel run recipes/isoflop_tiny.py --workers 2
"""

from scalelab.tunnel.grid import isoflop_grid

NAME = "isoflop-tiny"

#: Shared by every run: byte tokens, short sequences, a cosine schedule with 10% warmup.
DEFAULTS = {
    "corpus": "stdlib",
    "tokenizer": "byte",
    "seq_len": 64,
    "batch_size": 16,
    "lr": 3e-3,
    "min_lr_ratio": 0.1,
    "warmup_fraction": 0.1,
    "schedule": "cosine",
    "eval_tokens": 16384,
    "seed": 0,
}

#: Budgets (FLOPs) and target sizes (total parameters) of the isoFLOP profiles.
BUDGETS_FLOPS = [3e11, 1e12, 3e12]
SIZES = [5e4, 1e5, 2e5, 4e5]


def grid():
    return isoflop_grid(BUDGETS_FLOPS, SIZES, defaults=DEFAULTS,
                        model_defaults={"d_head": 16, "aspect_ratio": 32, "vocab_size": 256})
