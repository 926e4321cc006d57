"""Plots of fitted scaling laws (matplotlib, imported lazily; the ``report`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..planner.flops import training_flops

__all__ = ["plot_fit"]


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - declared extra
        from ..errors import MissingDependencyError

        raise MissingDependencyError("matplotlib", "report") from e
    return plt


def plot_fit(law: Any, X: tuple[np.ndarray, ...], y: np.ndarray, path: str | Path | None = None,
             level: float | None = None) -> Any:
    """Draw the data, the fitted law and its bands; save to ``path`` (PNG) when given; return the figure.

    Left: observed loss against the law's first covariate (or against compute ``6 N D`` for laws over
    ``N`` and ``D``, with the compute-optimal frontier and its band). Right: observed vs predicted with
    the new-run band of the log residuals.
    """
    import warnings

    from ..errors import ExtrapolationWarning

    plt = _plt()
    lvl = float(law.level if level is None else level)
    X = tuple(np.asarray(x, dtype=float) for x in X)
    y = np.asarray(y, dtype=float)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        pred = np.asarray(law.predict(*X), dtype=float)
        if tuple(law.covariates) == ("N", "D") and hasattr(law, "compute_optimal"):
            C = training_flops(X[0], X[1])
            sc = ax1.scatter(C, y, c=np.log10(X[0]), s=12, cmap="viridis", label="runs")
            fig.colorbar(sc, ax=ax1, label="log10 N")
            Cg = np.geomspace(C.min(), C.max() * 30, 80)
            co = law.compute_optimal(Cg, level=lvl)
            ax1.plot(Cg, co.loss, "k-", label="compute-optimal frontier")
            if "loss" in co.bands:
                lo, hi = co.bands["loss"]
                ax1.fill_between(Cg, lo, hi, color="k", alpha=0.15, label=f"{int(lvl * 100)}% band")
            ax1.set_xlabel("compute C = 6ND (FLOPs)")
        else:
            x0 = X[0]
            ax1.scatter(x0, y, s=12, label="runs")
            if len(X) == 1:
                xg = np.geomspace(x0.min(), x0.max() * 10, 80)
                ax1.plot(xg, law.predict(xg), "k-", label="fit")
                try:
                    lo, hi = law.predict_interval(xg, level=lvl)
                    ax1.fill_between(xg, lo, hi, color="k", alpha=0.15, label=f"{int(lvl * 100)}% band")
                except Exception:  # noqa: BLE001 - no uncertainty available: draw the line only
                    pass
            ax1.set_xlabel(law.covariates[0])
    ax1.set_xscale("log")  # loss stays on a linear axis: its range is narrow
    ax1.set_ylabel(law.target)
    ax1.set_title(f"{law.name}: {law.equation}", fontsize=9)
    ax1.legend(fontsize=8)
    ax2.scatter(pred, y, s=12)
    lim = [min(pred.min(), y.min()), max(pred.max(), y.max())]
    ax2.plot(lim, lim, "k-", lw=1)
    res = getattr(law, "residuals_", None)
    if res is not None and len(res):
        q = np.percentile(res, [100 * (1 - lvl) / 2, 100 * (1 + lvl) / 2])
        g = np.array(lim)
        ax2.fill_between(g, g * np.exp(q[0]), g * np.exp(q[1]), color="k", alpha=0.1,
                         label=f"{int(lvl * 100)}% of residuals")
        ax2.legend(fontsize=8)
    ax2.set_xlabel(f"predicted {law.target}")
    ax2.set_ylabel(f"observed {law.target}")
    fig.tight_layout()
    if path is not None:
        try:
            fig.savefig(path, dpi=120)
        finally:  # a path that cannot be written (fit --plot retries elsewhere) must not leave the figure open
            plt.close(fig)
    return fig
