"""The wind tunnel: train grids of tiny GPTs with PyTorch, store every run, prove forecasts.

Names load lazily so that ``import scalelab.tunnel`` does not import torch until a run needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "RunConfig": "scalelab.tunnel.train",
    "TrainResult": "scalelab.tunnel.train",
    "train": "scalelab.tunnel.train",
    "RunStore": "scalelab.tunnel.store",
    "RunRecord": "scalelab.tunnel.store",
    "load_runs_for_fit": "scalelab.tunnel.store",
    "runs_table": "scalelab.tunnel.table",
    "RUN_TABLE_COLUMNS": "scalelab.tunnel.table",
    "Grid": "scalelab.tunnel.grid",
    "load_grid": "scalelab.tunnel.grid",
    "isoflop_grid": "scalelab.tunnel.grid",
    "product_grid": "scalelab.tunnel.grid",
    "lr_batch_grid": "scalelab.tunnel.grid",
    "dense_vs_moe_grid": "scalelab.tunnel.grid",
    "model_for_params": "scalelab.tunnel.grid",
    "run_grid": "scalelab.tunnel.runner",
    "RunOptions": "scalelab.tunnel.runner",
    "run_ddp": "scalelab.tunnel.ddp",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'scalelab.tunnel' has no attribute {name!r}")
