"""scalelab: predict, plan and prove large-language-model training runs.

- Predict: :mod:`scalelab.laws` fits scaling laws to small runs and forecasts large ones.
- Plan: :mod:`scalelab.planner` computes memory, FLOPs, communication, step time and cost per layout.
- Prove: :mod:`scalelab.tunnel` trains grids of tiny GPTs and checks forecasts against held-out runs.

Public names are loaded lazily, so ``import scalelab`` stays cheap and never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "ModelSpec": "scalelab.arch",
    "MoESpec": "scalelab.arch",
    "MLASpec": "scalelab.arch",
    "get_model": "scalelab.arch",
    "list_models": "scalelab.arch",
    "GPUSpec": "scalelab.hardware",
    "ClusterSpec": "scalelab.hardware",
    "get_gpu": "scalelab.hardware",
    "get_cluster": "scalelab.hardware",
    "list_gpus": "scalelab.hardware",
    "Layout": "scalelab.planner",
    "TrainSpec": "scalelab.planner",
    "LoRASpec": "scalelab.planner",
    "Plan": "scalelab.planner",
    "plan": "scalelab.planner",
    "search_layouts": "scalelab.planner",
    "ChinchillaLaw": "scalelab.laws",
    "get_law": "scalelab.laws",
    "list_laws": "scalelab.laws",
    "load_runs": "scalelab.laws",
    "load_fit": "scalelab.laws",
    "run_demo": "scalelab.demo",
    "budget": "scalelab.budgeting",
    "BudgetRun": "scalelab.budgeting",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'scalelab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
