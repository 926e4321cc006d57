"""Input checks of a fit: options, covariates, target, weights, design, duplicates, and the canonical row
order every fit sees its runs in.

The functions take the law (for its covariates, target and options) and raise
:class:`~scalelab.errors.DataError` / :class:`~scalelab.errors.ConfigError` with a message that says what
to do. :class:`~scalelab.laws.base.ScalingLaw` calls them from its ``_check_*`` methods, which a law may
extend (e.g. Muennighoff's check that unique tokens do not exceed tokens seen).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._checks import check_level
from ..errors import ConfigError, DataError, explain
from .data import bad_value_hint, shown_name

__all__ = ["DUPLICATES", "LOSSES", "canonical_order"]

#: Objectives the fitter knows (see :mod:`scalelab.laws.fitting`).
LOSSES = ("huber", "ls", "asymmetric")
#: What ``fit(..., duplicates=)`` does with repeated runs (see :func:`handle_duplicates`).
DUPLICATES = ("error", "drop", "average", "keep")


def _as_float_array(x: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise DataError(explain(f"{what} must be numbers", value=type(x).__name__)) from None
    return arr


def canonical_order(X: tuple[np.ndarray, ...], y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """The permutation that sorts runs by their covariates (in ``covariates`` order), then the target, then
    the weight: the one order every fit sees its runs in.

    Optimisers, multi-start pruning and bootstrap resamples all depend on row order at the last bit (and a
    local optimiser can stop in a different place of a flat valley); putting the runs in one canonical
    order first makes the same runs give the same fit, whatever order they were read in. Rows equal in
    every column are interchangeable, so the stable sort's choice among them does not matter.

    >>> canonical_order((np.array([3.0, 1.0, 2.0]),), np.array([1.0, 1.0, 1.0])).tolist()
    [1, 2, 0]
    """
    keys = [y] if w is None else [w, y]
    keys += [x for x in reversed(X)]
    return np.lexsort(keys)  # the last key is the primary one


def check_options(law: Any) -> None:
    """Validate the constructor options of ``law`` (loss, space, delta, level, n_bootstrap, ...)."""
    if law.loss not in LOSSES:
        raise ConfigError(explain("unknown loss", value=law.loss, allowed=", ".join(LOSSES)))
    if law.space not in ("log", "linear"):
        raise ConfigError(explain("unknown space", value=law.space, allowed="log, linear"))
    if not (isinstance(law.delta, (int, float)) and law.delta > 0):
        raise ConfigError(explain("delta must be a positive number", value=law.delta))
    check_level(law.level)
    nb = law.n_bootstrap
    whole = isinstance(nb, (int, float, np.integer, np.floating)) and not isinstance(nb, bool) \
        and np.isfinite(nb) and nb >= 0 and float(nb).is_integer()
    if not whole:
        raise ConfigError(explain("n_bootstrap must be a whole number >= 0", value=nb,
                                  fix="e.g. n_bootstrap=200 for bootstrap intervals, 0 for asymptotic ones"))
    if not isinstance(law.random_state, np.random.Generator):
        try:  # what the bootstrap will do with it (scalelab.laws.uncertainty._rng)
            np.random.default_rng(law.random_state)
        except (TypeError, ValueError):
            raise ConfigError(explain("random_state must be None, a non-negative int seed or a numpy Generator",
                                      value=law.random_state, fix="e.g. random_state=0")) from None
    if not (law.extrapolation_factor is None or float(law.extrapolation_factor) >= 1):
        raise ConfigError(explain("extrapolation_factor must be >= 1 (or None to never warn)",
                                  value=law.extrapolation_factor))


def split_xy(law: Any, args: tuple[Any, ...], y: Any,
             columns: Mapping[str, Any] | None = None) -> tuple[tuple[Any, ...], Any, Any]:
    """Accept ``fit(N, D, L)``, ``fit(N, D, y=L)``, ``fit(runs)`` (a :class:`~scalelab.laws.data.Runs`)
    or ``fit(df, n="params", d="tokens", loss="loss")`` (a DataFrame or a dict of columns)."""
    from .data import is_table, load_table, table_covariates

    weights = None
    if len(args) == 1 and is_table(args[0]):
        if y is not None:
            return table_covariates(args[0], law, columns or {}), y, None
        args = (load_table(args[0], law, columns or {}),)
    elif columns:
        raise ConfigError(explain(
            "column names were given, but the runs are not a table",
            value=sorted(columns), allowed="column names only with a DataFrame or dict of columns",
            fix="pass the DataFrame as the only positional argument: fit(df, n='params', d='tokens', "
                "loss='loss'), or pass arrays without column names: fit(N, D, L)"))
    if len(args) == 1 and hasattr(args[0], "law_inputs"):
        X, y_r, weights = args[0].law_inputs(law)
        return X, (y if y is not None else y_r), weights
    k = len(law.covariates)
    if y is None:
        if len(args) != k + 1:
            raise DataError(explain(
                f"{type(law).__name__}.fit needs {k} covariate(s) ({', '.join(law.covariates)}) and the "
                f"target {law.target}", value=f"{len(args)} positional arrays",
                fix=f"call fit({', '.join(law.covariates)}, {law.target})"))
        return tuple(args[:k]), args[k], weights
    if len(args) != k:
        raise DataError(explain(f"{type(law).__name__}.fit needs {k} covariate array(s) "
                                f"({', '.join(law.covariates)})", value=f"{len(args)} arrays"))
    return tuple(args), y, weights


def check_X(law: Any, X: Sequence[Any], *, fitting: bool) -> tuple[np.ndarray, ...]:
    """Covariate arrays as float vectors (equal lengths when fitting, broadcast when predicting)."""
    if len(X) != len(law.covariates):
        raise DataError(explain(
            f"{type(law).__name__} takes {len(law.covariates)} covariate(s) "
            f"({', '.join(law.covariates)})", value=f"{len(X)} array(s)"))
    arrs = [_as_float_array(x, c) for x, c in zip(X, law.covariates, strict=True)]
    if fitting:
        arrs = [a.ravel() for a in arrs]
        n = {a.size for a in arrs}
        if len(n) > 1:
            raise DataError(explain("covariate arrays differ in length",
                                    value={c: a.size for c, a in zip(law.covariates, arrs, strict=True)}))
    else:
        try:
            arrs = [a.ravel() for a in np.broadcast_arrays(*[np.atleast_1d(a) for a in arrs])]
        except ValueError:  # numpy's "shape mismatch" names neither the covariates nor the fix
            raise DataError(explain("covariate arrays differ in length and do not broadcast",
                                    value={c: a.shape for c, a in zip(law.covariates, arrs, strict=True)},
                                    allowed="equal shapes, or a single value for one of them",
                                    fix="pass one value per prediction for each covariate")) from None
    positive = law.covariates if law.positive_covariates is None else law.positive_covariates
    for c, a in zip(law.covariates, arrs, strict=True):
        bad = np.flatnonzero(~np.isfinite(a) | ((a <= 0) if c in positive else False))
        if bad.size:
            raise DataError(explain(
                f"{shown_name(c)} has NaN, infinite{' or non-positive' if c in positive else ''} values at rows "
                f"{_rows(bad)}", value=[float(a[i]) for i in bad[:5]],
                allowed="finite" + (" positive numbers" if c in positive else " numbers"),
                fix=f"drop or correct those rows{bad_value_hint(c, a[bad])}"))
    return tuple(arrs)


def check_y(law: Any, y: Any, n: int) -> np.ndarray:
    """The target as a float vector of ``n`` finite positive values."""
    y = _as_float_array(y, law.target).ravel()
    if y.size != n:
        raise DataError(explain(f"target {shown_name(law.target)} has a different length from the covariates",
                                value=f"{y.size} vs {n}"))
    bad = np.flatnonzero(~np.isfinite(y) | (y <= 0))
    if bad.size:
        raise DataError(explain(f"{shown_name(law.target)} has NaN, infinite or non-positive values at rows "
                                f"{_rows(bad)}", value=[float(y[i]) for i in bad[:5]],
                                allowed="finite positive numbers",
                                fix=f"drop or correct those runs{bad_value_hint(law.target, y[bad])}"))
    return y


def check_design(law: Any, X: tuple[np.ndarray, ...], y: np.ndarray) -> None:
    """Enough runs for the parameters, and enough distinct values of each covariate."""
    P = len(law.param_names)
    if y.size <= P:
        raise DataError(explain(f"too few points to fit {P} parameters of {law.name}", value=y.size,
                                allowed=f"more than {P} runs (several times more for useful intervals)",
                                fix="add runs, or fit a law with fewer parameters"))
    for c, a in zip(law.covariates, X, strict=True):
        # an exponent in N, D or C needs at least two distinct values to be identified at all
        need = law.min_distinct.get(c, 2 if c in ("N", "D", "C") else 1)
        got = np.unique(a).size
        if got < need:
            raise DataError(explain(
                f"{law.name} needs at least {need} distinct values of {c} to identify its exponent",
                value=f"{got} distinct value(s)",
                fix=f"add runs at other {c} (e.g. several model sizes)"))


def handle_duplicates(law: Any, X: tuple[np.ndarray, ...], y: np.ndarray, w: np.ndarray | None,
                      order: np.ndarray, policy: str
                      ) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray | None, str | None]:
    """Runs in canonical order; equal design points (every covariate equal) sit next to each other.

    ``"error"``: identical rows (every covariate *and* the loss equal; laws of the loss only) raise
    :class:`DataError`: a copied row counts twice in the objective and in every bootstrap resample, so the
    bands narrow by about the square root of the copies. Replicates (same covariates, different losses, e.g. seeds)
    are kept: they carry run-to-run noise. ``"drop"``: the copies are dropped (the first of each kept) and
    replicates kept, every run counted once. ``"average"``: every group of equal design points becomes
    one point at the geometric mean of its losses (the fit works on log-loss), weight the mean weight:
    replicates then count as one run, and the robust objective sees their mean instead of each of them.
    Returns ``(X, y, w, note)``; ``note`` says how many runs were dropped or averaged (None when none were).
    """
    n = y.size
    same_x = np.ones(max(n - 1, 0), dtype=bool)
    for a in X:
        same_x &= a[1:] == a[:-1]
    if policy in ("error", "drop"):
        if law.target != "L":
            # a hyperparameter law's target (a learning rate, a batch size) takes grid values: two
            # runs that differ only in an unmodelled knob share it exactly without being copies
            return X, y, w, None
        # canonical order sorts by covariates, then the loss: a copy sits right after its original
        dup = np.flatnonzero(same_x & (y[1:] == y[:-1])) + 1
        if dup.size and policy == "drop":
            keep = np.ones(n, dtype=bool)
            keep[dup] = False
            note = f"{dup.size} copied run(s) dropped, {n - dup.size} runs kept"
            return tuple(a[keep] for a in X), y[keep], None if w is None else w[keep], note
        if dup.size:
            rows = np.sort(order[dup])
            raise DataError(explain(
                f"{dup.size} run(s) repeat another run exactly (every covariate and the loss), at rows "
                f"{_rows(rows)}: copies count twice and narrow the bands by about the square root of "
                "the copies", value=[float(y[i]) for i in dup[:5]],
                allowed="one row per run; replicates (same design point, different loss) are fine",
                fix="drop the copies (duplicates='drop', CLI --duplicates drop, keeps the replicates), or "
                    "average equal design points with duplicates='average'"))
        return X, y, w, None
    starts = np.flatnonzero(np.concatenate([[True], ~same_x]))
    if starts.size == n:
        return X, y, w, None
    note = f"{n} runs averaged into {starts.size} distinct design points"
    counts = np.diff(np.append(starts, n))
    ly = np.add.reduceat(np.log(y), starts) / counts
    wa = None if w is None else np.add.reduceat(w, starts) / counts
    return tuple(a[starts] for a in X), np.exp(ly), wa, note


def _rows(idx: np.ndarray, limit: int = 10) -> str:
    """Row numbers as the user counts them (0-based data rows), truncated."""
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return shown + (f" ... ({idx.size} rows)" if idx.size > limit else "")

