"""``scalelab.budget``: kept so ``from scalelab.budget import budget, BudgetRun, ...`` goes on working.

The code lives in :mod:`scalelab.budgeting`. ``scalelab.budget(...)`` is the function
:func:`scalelab.budgeting.budget`: the package attribute resolves to it lazily, and once this module has
been imported (which makes the import system bind ``scalelab.budget`` to the module), the module itself
is callable and forwards the call, so ``import scalelab; scalelab.budget(flops=1e22)`` works either way.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from . import budgeting
from .budgeting import BudgetRun, budget, shape_for_params

__all__ = ["BudgetRun", "budget", "shape_for_params"]


class _CallableModule(types.ModuleType):
    """This module, callable as :func:`scalelab.budgeting.budget`."""

    def __call__(self, *args: Any, **kwargs: Any) -> BudgetRun:
        return budgeting.budget(*args, **kwargs)


def __getattr__(name: str) -> Any:  # the rest of the old module's names (``_Allocator`` ...)
    return getattr(budgeting, name)


sys.modules[__name__].__class__ = _CallableModule
