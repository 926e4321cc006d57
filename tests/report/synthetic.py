"""A demo result for the report tests, built from a real fit without training: the isoFLOP grid's final
losses come from a Chinchilla law with the constants the full demo fitted (plus 0.5% noise), the law
is fitted to them by the demo's own :func:`scalelab.demo.fit_and_forecast`, and the production plan is
the demo's :func:`scalelab.demo.plan_production`. Training would take minutes; this takes seconds."""

from __future__ import annotations

from typing import Any

import numpy as np

#: The full demo's fit (docs/tunnel.md): the lowest budget's optimum falls below the smallest trained
#: model, the case where the isoFLOP plot once drew its star off its line.
TRUE = {"E": 0.4297, "A": 9.921, "B": 178.4, "alpha": 0.2378, "beta": 0.4184}
#: Parameter counts of the full demo's four grid models, and its budgets.
SIZES = (29792, 43168, 80112, 183744)
BUDGETS = (3e10, 1e11, 3e11, 1e12)


def true_loss(n: float, d: float) -> float:
    return TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]


def grid_rows(noise: float = 0.005, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for c in BUDGETS:
        for i, n in enumerate(SIZES):
            d = c / (6 * n)
            rows.append({"hash": f"{i}{c:.0e}", "model": f"L{i + 1} d{32 * (i + 1)}", "n_params": n, "tokens": d,
                         "val_loss": true_loss(n, d) * float(np.exp(rng.normal(0, noise))), "status": "completed",
                         "tokens_per_s": 2e4 / (i + 1), "wall_s": 10.0, "budget_flops": c})
    return rows


def settings(n_bootstrap: int) -> Any:
    from scalelab.demo import DemoSettings

    return DemoSettings(budgets_flops=BUDGETS, sizes=tuple(float(s) for s in SIZES), holdout_flops=2e12,
                        n_bootstrap=n_bootstrap, production_n_gpus=256)


def fitted_result(store_path: str, n_bootstrap: int = 20) -> tuple[Any, Any]:
    """``(DemoResult, law)`` from a real fit of the synthetic grid; the held-out run's loss is the true law's."""
    from scalelab.demo import DemoResult, fit_and_forecast, plan_production

    s = settings(n_bootstrap)
    runs = grid_rows()
    fitted = fit_and_forecast(runs, s, seed=0)
    n_hold = float(fitted.model.n_params().total)
    holdout = {"hash": "holdout", "model": fitted.model.name, "n_params": n_hold, "tokens": fitted.n_tokens,
               "val_loss": true_loss(n_hold, fitted.n_tokens), "status": "completed", "tokens_per_s": 1e4,
               "wall_s": 30.0}
    production = {**plan_production(s), "tiny_law_a": fitted.fit["a"], "fitted": plan_production(s, law=fitted.law)}
    result = DemoResult(settings=s, seed=0, store_path=store_path, grid_runs=runs, fit=fitted.fit,
                        forecast=fitted.forecast, holdout=holdout, production=production,
                        timings_s={"grid": 0.0, "fit": 1.0}, notes=fitted.notes)
    return result, fitted.law
