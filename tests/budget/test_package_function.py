"""`scalelab.budget(...)` is a function at package level, and `from scalelab.budget import ...` still works."""

from __future__ import annotations

import subprocess
import sys

import scalelab
from scalelab import budgeting


def test_package_attribute_is_callable_and_returns_the_same_run_as_the_function():
    run = scalelab.budget(flops=1e22, law="hoffmann2022")
    ref = budgeting.budget(flops=1e22, law="hoffmann2022")
    assert isinstance(run, budgeting.BudgetRun)
    assert run.n_params == ref.n_params and run.n_tokens == ref.n_tokens and run.hyper["lr"] == ref.hyper["lr"]


def test_old_import_path_keeps_working_and_stays_callable_after_it(tmp_path):
    # A fresh interpreter: importing the submodule rebinds the package attribute to the module, which must
    # still be callable (and still export the old names).
    code = ("import scalelab\nfrom scalelab.budget import budget, BudgetRun, shape_for_params, _Allocator\n"
            "import scalelab.budget\nr = scalelab.budget(flops=1e21, law='hoffmann2022')\n"
            "assert isinstance(r, BudgetRun) and r.n_params == budget(flops=1e21, law='hoffmann2022').n_params\n"
            "print('ok', type(scalelab.budget).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")
