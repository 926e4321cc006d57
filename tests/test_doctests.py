"""Every example in scalelab's docstrings runs and prints what it says: the docs' examples are tests.

Each module is imported and its ``>>>`` examples run with :mod:`doctest`, one test per module, so an example
that drifts from the code fails here (two had: a float printed to 17 digits and a module example using names
it never defined). Modules whose optional dependency is missing are skipped with its name."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import warnings

import pytest

import scalelab

MODULES = sorted(m.name for m in pkgutil.walk_packages(scalelab.__path__, "scalelab."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    try:
        module = importlib.import_module(name)
    except ImportError as e:  # an optional extra (ray, lightgbm, ...) not installed
        pytest.skip(f"{name} needs {e.name}, not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # examples may extrapolate on purpose
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False,
                                 report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed (above)"
