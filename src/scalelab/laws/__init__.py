"""Scaling laws as scikit-learn-shaped estimators: fit, predict, intervals, compute-optimal allocation.

Every law subclasses :class:`ScalingLaw` (``scalelab.laws.base``) and registers itself under its
``name``; :func:`get_law` and :func:`list_laws` find them. Any registered law class can also be imported
from here by its class name (``from scalelab.laws import KaplanLaw``). A fit's outcome is a
:class:`FitResult` at ``law.result_``.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from .base import ScalingLaw, get_law, list_laws, register_law
from .chinchilla import ChinchillaLaw, ComputeOptimal, InferenceAllocation
from .result import FitResult

__all__ = [
    "ChinchillaLaw",
    "ComputeOptimal",
    "FitResult",
    "InferenceAllocation",
    "PowerLawAllocation",
    "Runs",
    "ScalingLaw",
    "approach1",
    "approach2",
    "get_law",
    "list_laws",
    "load_fit",
    "load_runs",
    "register_law",
]


def load_fit(path: Any) -> ScalingLaw:
    """Load a fit saved by ``law.save`` or ``scalelab fit --out`` as a working law."""
    return ScalingLaw.load(path)


def __getattr__(name: str) -> Any:
    if name in ("load_runs", "Runs"):
        from . import data

        return getattr(data, name)
    if name in ("approach1", "approach2", "PowerLawAllocation"):
        from . import approaches

        return getattr(approaches, name)
    if name.isidentifier() and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        # a submodule not imported yet (``from . import fitting`` asks here first): the import system loads
        # it once this says no; searching the law classes would import every law module (list_laws)
        raise AttributeError(f"module 'scalelab.laws' has no attribute {name!r}")
    for cls in list_laws():
        if cls.__name__ == name:
            return cls
    raise AttributeError(f"module 'scalelab.laws' has no attribute {name!r}")
