"""Learning rate x batch sweeps at several (N, D): the data for hyperparameter laws of your own.

:func:`sweep_grid` is one :func:`~scalelab.tunnel.grid.lr_batch_grid` per (model size, token count) cell,
joined into one grid named ``sweep:NAME``. The runs are stored as normal runs whose ``grid`` column is
that name (the sweep tag); ``scalelab fit --law hyperparams --store RUNS [--grid sweep:NAME]`` picks the best
LR and batch of each cell and fits Step-Law-style and DeepSeek-style laws
(:func:`scalelab.laws.hpfit.fit_hyperparams`).

>>> g = sweep_grid([2e4, 4e4], lrs=[1e-3, 4e-3], batch_sizes=[8], tokens_per_param=[20],
...                defaults={"seq_len": 32, "batch_size": 8}, model_defaults={"d_head": 8})
>>> g.name, len(g)
('sweep:sweep', 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..arch.spec import ModelSpec
from ..errors import ConfigError, explain
from .grid import Grid, _dedupe, _models, _seq_and_batch, lr_batch_grid

__all__ = ["SWEEP_PREFIX", "sweep_grid", "sweep_table"]

#: Grid names of sweeps start with this tag; ``fit --law hyperparams`` reads every such grid by default.
SWEEP_PREFIX = "sweep:"


def sweep_grid(sizes: Sequence[float | ModelSpec | dict[str, Any]], *, lrs: Sequence[float], batch_sizes: Sequence[int],
               n_tokens: Sequence[float] | None = None, tokens_per_param: Sequence[float] | None = None,
               defaults: dict[str, Any] | None = None, model_defaults: dict[str, Any] | None = None,
               name: str = "sweep") -> Grid:
    """LR x batch grids at every (size, token count) cell, as one grid named ``sweep:NAME``.

    Parameters
    ----------
    sizes : target parameter counts (the tunnel family's rule turns each into a shape)
    lrs, batch_sizes : the grid of each cell (use a factor-2 LR ladder: a law is judged in grid steps)
    n_tokens : token counts, each trained at every size; or
    tokens_per_param : ``D = k N`` per size for each ``k`` (``N`` the shape's total parameters)
    defaults, model_defaults : as for the other builders (``seq_len`` and ``batch_size`` are needed)
    """
    if (n_tokens is None) == (tokens_per_param is None):
        raise ConfigError(explain("a sweep needs its token counts one way", value={"n_tokens": n_tokens,
                                  "tokens_per_param": tokens_per_param},
                                  fix="pass n_tokens (the same for every size) or tokens_per_param (D = k N)"))
    if not lrs or not batch_sizes or not sizes:
        raise ConfigError(explain("a sweep needs sizes, learning rates and batch sizes",
                                  value={"sizes": list(sizes), "lrs": list(lrs), "batch_sizes": list(batch_sizes)}))
    defaults = dict(defaults or {})
    md = dict(model_defaults or {})
    seq, _ = _seq_and_batch(defaults)
    configs: list[Any] = []
    labels: list[str] = []
    for m in _models(list(sizes), md, seq):
        toks = list(n_tokens) if n_tokens is not None else [float(k) * m.n_params().total
                                                            for k in (tokens_per_param or [])]
        for D in toks:
            g = lr_batch_grid(m, D, lrs, batch_sizes, defaults=defaults)
            configs += g.configs
            labels += [f"N={m.n_params().total:.3g} D={float(D):.3g} {lab}" for lab in g.labels]
    tag = name if name.startswith(SWEEP_PREFIX) else SWEEP_PREFIX + name
    return _dedupe(Grid(tag, configs, labels=labels))


def sweep_table(store: Any, grid: str | None = None) -> dict[str, Any]:
    """The completed runs of one sweep (``grid``) or of every ``sweep:*`` grid of a run store, as the
    columns :func:`scalelab.laws.hpfit.fit_hyperparams` reads."""
    from .store import load_runs_for_fit

    cols = load_runs_for_fit(store, grid=grid)
    if grid is None:
        keep = [str(g).startswith(SWEEP_PREFIX) for g in cols["grid"]]
        cols = {k: v[keep] for k, v in cols.items()}
    if len(cols["loss"]) == 0:
        raise ConfigError(explain(f"the store holds no completed sweep runs{f' in grid {grid!r}' if grid else ''}",
                                  value=str(store),
                                  fix="run `scalelab tunnel sweep ...` first, or name the grid with --grid"))
    return cols
