"""The estimator contract every scaling law follows, and the registry of built-in laws.

A law is a scikit-learn-shaped estimator (DESIGN.md principle 4): hyperparameters are stored unchanged
in ``__init__``; ``fit`` returns ``self``; fitted state ends in ``_``; ``predict`` before ``fit`` (or
:meth:`ScalingLaw.preset`) raises :class:`~scalelab.errors.NotFittedError`; ``predict_interval`` gives
bands; ``random_state`` makes the bootstrap reproducible.

Writing a new law
-----------------
Subclass :class:`ScalingLaw`, set the class variables and implement ``_form`` (or ``_log_form``)::

    class MyLaw(ScalingLaw):
        name = "my-law"                      # registry key; setting it registers the class
        citation = "Doe et al. 2025, eq. 3"
        equation = "L(N) = E + A / N^alpha"
        covariates = ("N",)
        covariate_units = {"N": "parameters (total)"}
        param_names = ("E", "A", "alpha")
        log_params = ("E", "A")              # fitted as log(E), log(A): keeps them positive
        bounds = {"alpha": (0.0, 3.0)}
        presets = {"doe2025": {"params": {...}, "source": "Doe et al. 2025, Table 2"}}
        _example_params = {"E": 1.8, "A": 400.0, "alpha": 0.34}
        _example_ranges = {"N": (1e7, 1e10)}

        @classmethod
        def _form(cls, p, X):
            (N,) = X
            return p["E"] + p["A"] / N ** p["alpha"]

Hooks (all classmethods, vectorised over ``k`` parameter vectors at once so the fitter can run many
starts or bootstrap replicates in one numpy call):

``_form(p, X)``
    ``p`` maps each parameter name to an array of shape ``(k, 1)``; ``X`` is a tuple of covariate arrays
    of shape ``(n,)``. Returns the prediction, shape ``(k, n)``.
``_log_form(p, X)``
    log of the prediction; defaults to ``log(_form)``. Override for a stabler form (log-sum-exp).
``_log_model(theta, X)``
    the fitter's entry point: ``theta`` is ``(k, P)`` in the *fitting* parameterisation (log of the
    ``log_params``), returns ``(log prediction (k, n), Jacobian (k, P, n))``. The default uses central
    finite differences; override with an analytic Jacobian for speed (see ``chinchilla.py``).
``_init_grid(X, y)``
    starting points, an array ``(m, P)`` in public units (default: a small grid around
    ``_example_params``).
``_derived(p)``
    derived quantities (e.g. ``a = beta/(alpha+beta)``) from a dict of ``(k,)`` arrays; they get
    bootstrap intervals like the parameters.
``_example_data(rng)``
    a small synthetic data set ``(X, y)`` drawn from ``_example_params``; the contract test in
    ``tests/laws/test_contract.py`` fits every registered law on it.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import logging
import math
import pkgutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from ..errors import (
    ConfigError,
    DataError,
    ExtrapolationWarning,
    NotFittedError,
    UnknownNameError,
    explain,
)

__all__ = [
    "LOSSES",
    "ScalingLaw",
    "canonical_order",
    "get_law",
    "list_laws",
    "register_law",
]

log = logging.getLogger(__name__)

#: Objectives the fitter knows (see :mod:`scalelab.laws.fitting`).
LOSSES = ("huber", "ls", "asymmetric")
#: What ``fit(..., duplicates=)`` does with repeated runs (see :meth:`ScalingLaw._handle_duplicates`).
DUPLICATES = ("error", "average", "keep")
#: Bands of ``predict_interval``: the mean law; a new run if the law is right; a new run, calibrated.
INTERVAL_KINDS = ("mean", "noise", "new")

_REGISTRY: dict[str, type[ScalingLaw]] = {}
#: Modules of this package that hold machinery, not laws; every other module is imported on demand so
#: that its law classes register themselves.
_NOT_LAW_MODULES = frozenset({"base", "fitting", "uncertainty", "data", "approaches", "forecast", "quality",
                              "backtest", "calibration"})
_builtins_loaded = False


def register_law(cls: type[ScalingLaw]) -> type[ScalingLaw]:
    """Class decorator that adds a law to the registry (subclasses that set ``name`` join automatically)."""
    key = cls.__dict__.get("name")
    if not key:
        raise ConfigError(explain("a registered law needs a class attribute `name`", value=cls.__name__))
    other = _REGISTRY.get(key)
    if other is not None and other.__qualname__ != cls.__qualname__:
        raise ConfigError(explain(f"two laws share the registry name {key!r}",
                                  value=f"{other.__module__}.{other.__qualname__} and "
                                        f"{cls.__module__}.{cls.__qualname__}",
                                  fix="give one of them another `name`"))
    _REGISTRY[key] = cls
    return cls


def _load_builtins() -> None:
    """Import every law module of ``scalelab.laws`` once, so their classes register themselves."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    from . import __path__ as pkg_path

    for mod in pkgutil.iter_modules(pkg_path):
        if mod.name.startswith("_") or mod.name in _NOT_LAW_MODULES:
            continue
        importlib.import_module(f"{__package__}.{mod.name}")


def get_law(name: str) -> type[ScalingLaw]:
    """The law class registered under ``name`` (``get_law("chinchilla") is ChinchillaLaw``).

    Raises
    ------
    UnknownNameError
        with the closest registered names.
    """
    _load_builtins()
    if isinstance(name, type) and issubclass(name, ScalingLaw):
        return name
    raw = str(name).strip()
    if raw in _REGISTRY:
        return _REGISTRY[raw]
    for key, klass in _REGISTRY.items():
        if key.lower() == raw.lower():
            return klass
    # A user's power law saved in another process: rebuild its class from the name it was saved under.
    if raw.startswith("power-law[") and raw.endswith("]"):
        from .general import power_law

        return power_law(*(c.strip() for c in raw[len("power-law["):-1].split(",")))
    raise UnknownNameError("law", str(name), _REGISTRY, fix="run `scalelab laws` to list the built-in laws")


def list_laws() -> list[type[ScalingLaw]]:
    """Every registered law class, sorted by registry name."""
    _load_builtins()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


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


class ScalingLaw:
    """Base class of every scaling law (an estimator: ``fit`` / ``predict`` / ``predict_interval``).

    Parameters
    ----------
    loss : {"huber", "ls", "asymmetric"}
        Objective. ``"huber"``: Huber on the log residual ``log L_hat - log L``, **summed** over points
        (Hoffmann et al. 2022 App. D.2; Besiroglu et al. 2024 showed that averaging stops L-BFGS early).
        ``"ls"``: least squares. ``"asymmetric"``: weighted absolute error with over-predictions
        penalised ``asymmetry`` times (the lower-envelope fit of the ``chinchilla`` package).
    delta : float
        Huber threshold (default 1e-3, as Hoffmann et al.).
    space : {"log", "linear"}
        Residuals on log-loss (default) or on loss.
    asymmetry : float
        Weight on over-predictions for ``loss="asymmetric"`` (10 in the ``chinchilla`` package).
    init : "grid", "coarse", array (m, P) or dict name -> values
        Starting points. ``"grid"`` is the law's default grid (Hoffmann's 4,500 points for Chinchilla).
    n_bootstrap : int
        Bootstrap refits over runs for standard errors and intervals (0: asymptotic only).
    level : float
        Default coverage of intervals.
    random_state : int, numpy Generator or None
        Seed of the bootstrap.
    extrapolation_factor : float
        Predictions further than this factor outside the fitted range of any covariate warn with
        :class:`~scalelab.errors.ExtrapolationWarning`.
    max_iter : int
        Iteration cap of the batched optimizer.
    n_jobs : int
        Threads used by the bootstrap (numpy releases the GIL in its kernels).
    """

    # ----- class-level description (each law sets these) -----
    name: ClassVar[str | None] = None
    citation: ClassVar[str] = ""
    equation: ClassVar[str] = ""
    covariates: ClassVar[tuple[str, ...]] = ()
    covariate_units: ClassVar[dict[str, str]] = {}
    target: ClassVar[str] = "L"
    target_units: ClassVar[str] = "loss, nats/token"
    param_names: ClassVar[tuple[str, ...]] = ()
    param_units: ClassVar[dict[str, str]] = {}
    log_params: ClassVar[tuple[str, ...]] = ()
    bounds: ClassVar[dict[str, tuple[float, float]]] = {}
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    conventions: ClassVar[dict[str, str]] = {}
    #: Default parameters and covariate ranges for ``_example_data`` (synthetic data with known truth).
    _example_params: ClassVar[dict[str, float]] = {}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {}
    _example_noise: ClassVar[float] = 0.01
    _example_n: ClassVar[int] = 60
    #: Covariates that must be > 0 (all by default; a law with e.g. a repetition count of 0 lists fewer).
    positive_covariates: ClassVar[tuple[str, ...] | None] = None
    #: Fewest distinct values each covariate needs (e.g. several model sizes for an exponent in N).
    min_distinct: ClassVar[dict[str, int]] = {}
    #: Parameters checked by the fit-quality verdict (:mod:`scalelab.laws.quality`). ``None``: for a law of
    #: the loss, ``E``/``L_inf`` are the irreducible loss and ``alpha*``/``beta*`` the exponents.
    irreducible_params: ClassVar[tuple[str, ...] | None] = None
    exponent_params: ClassVar[tuple[str, ...] | None] = None

    # ----- fitted state: set by fit(), preset() or from_dict() -----
    # Annotations without values create no attribute, so ``hasattr(law, "params_")`` still tells a fitted
    # law from one that is not; the optional ones are absent when the source did not provide them.
    params_: dict[str, float]
    theta_: np.ndarray
    X_range_: dict[str, tuple[float, ...]] | None  # covariate -> (min, max) of the runs
    objective_: float
    fit_info_: dict[str, Any]
    n_samples_: int
    residuals_: np.ndarray
    gof_: dict[str, float]
    data_hash_: str
    preset_: str
    source_: str | None
    stderr_: dict[str, float]
    intervals_: dict[str, tuple[float, ...]]  # (low, high)
    derived_intervals_: dict[str, tuple[float, ...]]  # (low, high)
    interval_method_: str | None
    cov_theta_: np.ndarray
    bootstrap_params_: np.ndarray
    #: Where the runs came from (``Runs.to_dict()``), when the CLI fitted the law.
    data_source_: dict[str, Any]
    #: Fit-quality verdict ``{"verdict": "ok" | "suspect", "issues": [...]}`` (:mod:`scalelab.laws.quality`).
    quality_: dict[str, Any]
    #: Backtested extrapolation scores behind the calibrated new-run band (:mod:`scalelab.laws.calibration`).
    calibration_: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            register_law(cls)

    def __init__(
        self,
        *,
        loss: str = "huber",
        delta: float = 1e-3,
        space: str = "log",
        asymmetry: float = 10.0,
        init: Any = "grid",
        n_bootstrap: int = 0,
        level: float = 0.95,
        random_state: Any = None,
        extrapolation_factor: float = 10.0,
        max_iter: int = 200,
        n_jobs: int = 1,
    ) -> None:
        self.loss = loss
        self.delta = delta
        self.space = space
        self.asymmetry = asymmetry
        self.init = init
        self.n_bootstrap = n_bootstrap
        self.level = level
        self.random_state = random_state
        self.extrapolation_factor = extrapolation_factor
        self.max_iter = max_iter
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ sklearn plumbing
    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as given (scikit-learn convention)."""
        return {k: getattr(self, k) for k in self._get_param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor arguments; unknown names raise :class:`ConfigError`. Returns ``self``."""
        valid = set(self._get_param_names())
        for k, v in params.items():
            if k not in valid:
                raise ConfigError(explain(f"{type(self).__name__} has no option {k!r}",
                                          allowed=", ".join(sorted(valid))))
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if not (isinstance(v, (int, float, str, type(None))) and defaults.get(k) == v)]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _check_options(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(explain("unknown loss", value=self.loss, allowed=", ".join(LOSSES)))
        if self.space not in ("log", "linear"):
            raise ConfigError(explain("unknown space", value=self.space, allowed="log, linear"))
        if not (isinstance(self.delta, (int, float)) and self.delta > 0):
            raise ConfigError(explain("delta must be a positive number", value=self.delta))
        if not (0 < float(self.level) < 1):
            raise ConfigError(explain("level must lie strictly between 0 and 1", value=self.level,
                                      fix="use e.g. 0.95 for a 95% interval"))
        if int(self.n_bootstrap) < 0:
            raise ConfigError(explain("n_bootstrap must be >= 0", value=self.n_bootstrap))
        if not (self.extrapolation_factor is None or float(self.extrapolation_factor) >= 1):
            raise ConfigError(explain("extrapolation_factor must be >= 1 (or None to never warn)",
                                      value=self.extrapolation_factor))

    # ------------------------------------------------------------------ parameterisation
    @classmethod
    def _log_mask(cls) -> np.ndarray:
        return np.array([n in cls.log_params for n in cls.param_names])

    @classmethod
    def _to_theta(cls, params: Mapping[str, Any] | np.ndarray) -> np.ndarray:
        """Public parameters (dict or (k, P) array) -> fitting space (log of ``log_params``), (k, P)."""
        if isinstance(params, Mapping):
            arr = np.array([[float(params[n]) for n in cls.param_names]])
        else:
            arr = np.atleast_2d(np.asarray(params, dtype=float)).copy()
        arr = arr.copy()
        m = cls._log_mask()
        with np.errstate(divide="ignore", invalid="ignore"):
            arr[:, m] = np.log(arr[:, m])
        return arr

    @classmethod
    def _from_theta(cls, theta: np.ndarray) -> np.ndarray:
        """Fitting space (k, P) -> public parameters (k, P)."""
        out = np.array(theta, dtype=float, copy=True, ndmin=2)
        m = cls._log_mask()
        out[:, m] = np.exp(out[:, m])
        return out

    @classmethod
    def _theta_bounds(cls) -> tuple[np.ndarray, np.ndarray]:
        lo = np.full(len(cls.param_names), -np.inf)
        hi = np.full(len(cls.param_names), np.inf)
        for i, n in enumerate(cls.param_names):
            b = cls.bounds.get(n)
            if n in cls.log_params:
                blo, bhi = b if b else (1e-30, 1e30)
                lo[i], hi[i] = math.log(max(blo, 1e-300)), math.log(bhi)
            elif b:
                lo[i], hi[i] = b
        return lo, hi

    @classmethod
    def _irreducible_names(cls) -> tuple[str, ...]:
        if cls.irreducible_params is not None:
            return cls.irreducible_params
        return tuple(n for n in cls.param_names if n in ("E", "L_inf")) if cls.target == "L" else ()

    @classmethod
    def _exponent_names(cls) -> tuple[str, ...]:
        if cls.exponent_params is not None:
            return cls.exponent_params
        if cls.target != "L":
            return ()
        return tuple(n for n in cls.param_names if n.startswith(("alpha", "beta")) and n not in cls.log_params)

    @classmethod
    def _pdict(cls, public: np.ndarray) -> dict[str, np.ndarray]:
        """(k, P) public array -> {name: (k, 1)} for ``_form``."""
        public = np.atleast_2d(public)
        return {n: public[:, i : i + 1] for i, n in enumerate(cls.param_names)}

    # ------------------------------------------------------------------ hooks
    @classmethod
    def _form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        raise NotImplementedError(f"{cls.__name__} must implement _form or _log_form")

    @classmethod
    def _log_form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.log(cls._form(p, X))

    @classmethod
    def _log_model(cls, theta: np.ndarray, X: tuple[np.ndarray, ...],
                   jac: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """log prediction (k, n) and its Jacobian in fitting space (k, P, n); finite differences here."""
        theta = np.atleast_2d(theta)

        def f(th: np.ndarray) -> np.ndarray:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                return cls._log_form(cls._pdict(cls._from_theta(th)), X)

        f0 = f(theta)
        if not jac:
            return f0, None
        k, P = theta.shape
        h = 1e-6 * np.maximum(1.0, np.abs(theta))
        # All 2P perturbed copies in one call: (2P*k, P).
        plus = np.repeat(theta[None], P, axis=0)
        minus = plus.copy()
        idx = np.arange(P)
        plus[idx, :, idx] += h.T
        minus[idx, :, idx] -= h.T
        fp = f(plus.reshape(P * k, P)).reshape(P, k, -1)
        fm = f(minus.reshape(P * k, P)).reshape(P, k, -1)
        J = (fp - fm) / (2 * h.T[:, :, None])
        return f0, np.ascontiguousarray(np.moveaxis(J, 0, 1))

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        """Starting points (m, P), public units. Default: 3 values per parameter around the example."""
        base = cls._example_params
        if not base:
            raise NotImplementedError(f"{cls.__name__} must implement _init_grid or set _example_params")
        axes = []
        for n in cls.param_names:
            v = float(base[n])
            if n in cls.log_params:
                axes.append([v / 10, v, v * 10])
            else:
                axes.append([v * 0.5, v, v * 1.5] if v != 0 else [-0.5, 0.0, 0.5])
        grid = np.array(np.meshgrid(*axes, indexing="ij")).reshape(len(axes), -1).T
        return grid

    @classmethod
    def _coarse_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        """A smaller set of starts (bootstrap, quick fits); defaults to ``_init_grid``."""
        return cls._init_grid(X, y)

    @classmethod
    def _derived(cls, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Derived quantities from parameter arrays of shape (k,); none by default."""
        return {}

    @classmethod
    def _example_data(cls, rng: np.random.Generator,
                      n: int | None = None) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """Synthetic data ``(X, y)`` from ``_example_params`` with multiplicative log-normal noise.

        Covariates are drawn log-uniformly in ``_example_ranges``; the noise s.d. on log-loss is
        ``_example_noise``.
        """
        if not cls._example_params or not cls._example_ranges:
            raise NotImplementedError(f"{cls.__name__} must set _example_params/_example_ranges "
                                      "or override _example_data")
        n = n or cls._example_n
        X = tuple(np.exp(rng.uniform(math.log(cls._example_ranges[c][0]),
                                     math.log(cls._example_ranges[c][1]), n)) for c in cls.covariates)
        pub = np.array([[cls._example_params[k] for k in cls.param_names]])
        y = np.exp(cls._log_form(cls._pdict(pub), X)[0] + cls._example_noise * rng.standard_normal(n))
        return X, y

    # ------------------------------------------------------------------ input handling
    def _split_xy(self, args: tuple[Any, ...], y: Any,
                  columns: Mapping[str, Any] | None = None) -> tuple[tuple[Any, ...], Any, Any]:
        """Accept ``fit(N, D, L)``, ``fit(N, D, y=L)``, ``fit(runs)`` (a :class:`~scalelab.laws.data.Runs`)
        or ``fit(df, n="params", d="tokens", loss="loss")`` (a DataFrame or a dict of columns)."""
        from .data import is_table, load_table, table_covariates

        weights = None
        if len(args) == 1 and is_table(args[0]):
            if y is not None:
                return table_covariates(args[0], self, columns or {}), y, None
            args = (load_table(args[0], self, columns or {}),)
        elif columns:
            raise ConfigError(explain(
                "column names were given, but the runs are not a table",
                value=sorted(columns), allowed="column names only with a DataFrame or dict of columns",
                fix="pass the DataFrame as the only positional argument: fit(df, n='params', d='tokens', "
                    "loss='loss'), or pass arrays without column names: fit(N, D, L)"))
        if len(args) == 1 and hasattr(args[0], "law_inputs"):
            X, y_r, weights = args[0].law_inputs(self)
            return X, (y if y is not None else y_r), weights
        k = len(self.covariates)
        if y is None:
            if len(args) != k + 1:
                raise DataError(explain(
                    f"{type(self).__name__}.fit needs {k} covariate(s) ({', '.join(self.covariates)}) and the "
                    f"target {self.target}", value=f"{len(args)} positional arrays",
                    fix=f"call fit({', '.join(self.covariates)}, {self.target})"))
            return tuple(args[:k]), args[k], weights
        if len(args) != k:
            raise DataError(explain(f"{type(self).__name__}.fit needs {k} covariate array(s) "
                                    f"({', '.join(self.covariates)})", value=f"{len(args)} arrays"))
        return tuple(args), y, weights

    def _check_X(self, X: Sequence[Any], *, fitting: bool) -> tuple[np.ndarray, ...]:
        if len(X) != len(self.covariates):
            raise DataError(explain(
                f"{type(self).__name__} takes {len(self.covariates)} covariate(s) "
                f"({', '.join(self.covariates)})", value=f"{len(X)} array(s)"))
        arrs = [_as_float_array(x, c) for x, c in zip(X, self.covariates, strict=True)]
        if fitting:
            arrs = [a.ravel() for a in arrs]
            n = {a.size for a in arrs}
            if len(n) > 1:
                raise DataError(explain("covariate arrays differ in length",
                                        value={c: a.size for c, a in zip(self.covariates, arrs, strict=True)}))
        else:
            arrs = [a.ravel() for a in np.broadcast_arrays(*[np.atleast_1d(a) for a in arrs])]
        positive = self.covariates if self.positive_covariates is None else self.positive_covariates
        for c, a in zip(self.covariates, arrs, strict=True):
            bad = np.flatnonzero(~np.isfinite(a) | ((a <= 0) if c in positive else False))
            if bad.size:
                raise DataError(explain(
                    f"{c} has NaN, infinite{' or non-positive' if c in positive else ''} values at rows "
                    f"{_rows(bad)}", value=[float(a[i]) for i in bad[:5]],
                    allowed="finite" + (" positive numbers" if c in positive else " numbers"),
                    fix="drop or correct those rows"))
        return tuple(arrs)

    def _check_y(self, y: Any, n: int) -> np.ndarray:
        y = _as_float_array(y, self.target).ravel()
        if y.size != n:
            raise DataError(explain(f"target {self.target} has a different length from the covariates",
                                    value=f"{y.size} vs {n}"))
        bad = np.flatnonzero(~np.isfinite(y) | (y <= 0))
        if bad.size:
            raise DataError(explain(f"{self.target} has NaN or non-positive values at rows {_rows(bad)}",
                                    value=[float(y[i]) for i in bad[:5]], allowed="finite positive numbers",
                                    fix="drop those runs (a diverged run has no usable final loss)"))
        return y

    def _check_design(self, X: tuple[np.ndarray, ...], y: np.ndarray) -> None:
        P = len(self.param_names)
        if y.size <= P:
            raise DataError(explain(f"too few points to fit {P} parameters of {self.name}", value=y.size,
                                    allowed=f"more than {P} runs (several times more for useful intervals)",
                                    fix="add runs, or fit a law with fewer parameters"))
        for c, a in zip(self.covariates, X, strict=True):
            # an exponent in N, D or C needs at least two distinct values to be identified at all
            need = self.min_distinct.get(c, 2 if c in ("N", "D", "C") else 1)
            got = np.unique(a).size
            if got < need:
                raise DataError(explain(
                    f"{self.name} needs at least {need} distinct values of {c} to identify its exponent",
                    value=f"{got} distinct value(s)",
                    fix=f"add runs at other {c} (e.g. several model sizes)"))

    # ------------------------------------------------------------------ fit
    def _prepare_fit(self, X: tuple[Any, ...], y: Any, sample_weight: Any, duplicates: str = "error",
                     columns: Mapping[str, Any] | None = None
                     ) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray | None]:
        """Validate options, covariates, target and weights for ``fit``, check the design, and forget any
        previous fit (attributes ending in ``_``). Returns ``(X arrays, y, weights or None)`` in the
        canonical row order (duplicate design points averaged when ``duplicates="average"``)."""
        self._check_options()
        if duplicates not in DUPLICATES:
            raise ConfigError(explain("unknown duplicates policy", value=duplicates, allowed=", ".join(DUPLICATES),
                                      fix="use 'error' (default), 'average' or 'keep'"))
        Xr, yr, w_runs = self._split_xy(X, y, columns)
        Xa = self._check_X(Xr, fitting=True)
        ya = self._check_y(yr, Xa[0].size if Xa else 0)
        if sample_weight is None:
            sample_weight = w_runs
        w = None
        if sample_weight is not None:
            w = _as_float_array(sample_weight, "sample_weight").ravel()
            if w.size != ya.size or np.any(~np.isfinite(w)) or np.any(w < 0):
                raise DataError(explain("sample_weight must be finite, non-negative, one per run",
                                        value=f"{w.size} weights for {ya.size} runs"))
        self._check_design(Xa, ya)
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, attr)
        order = canonical_order(Xa, ya, w)
        self._row_order: np.ndarray | None = order
        Xs, ys, ws = tuple(a[order] for a in Xa), ya[order], (None if w is None else w[order])
        self._duplicates_note: str | None = None
        if duplicates != "keep":
            Xs, ys, ws = self._handle_duplicates(Xs, ys, ws, order, duplicates)
        return Xs, ys, ws

    def _handle_duplicates(self, X: tuple[np.ndarray, ...], y: np.ndarray, w: np.ndarray | None,
                           order: np.ndarray, policy: str
                           ) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray | None]:
        """Runs in canonical order; equal design points (every covariate equal) sit next to each other.

        ``"error"``: identical rows (every covariate *and* the loss equal; laws of the loss only) raise
        :class:`DataError`: a
        copied row counts twice in the objective and in every bootstrap resample, so the bands narrow by
        about the square root of the copies. Replicates (same covariates, different losses, e.g. seeds)
        are kept: they carry run-to-run noise. ``"average"``: every group of equal design points becomes
        one point at the geometric mean of its losses (the fit works on log-loss), weight the mean weight.
        """
        n = y.size
        same_x = np.ones(max(n - 1, 0), dtype=bool)
        for a in X:
            same_x &= a[1:] == a[:-1]
        if policy == "error":
            if self.target != "L":
                # a hyperparameter law's target (a learning rate, a batch size) takes grid values: two
                # runs that differ only in an unmodelled knob share it exactly without being copies
                return X, y, w
            dup = np.flatnonzero(same_x & (y[1:] == y[:-1])) + 1
            if dup.size:
                rows = np.sort(order[dup])
                raise DataError(explain(
                    f"{dup.size} run(s) repeat another run exactly (every covariate and the loss), at rows "
                    f"{_rows(rows)}: copies count twice and narrow the bands by about the square root of "
                    "the copies", value=[float(y[i]) for i in dup[:5]],
                    allowed="one row per run; replicates (same design point, different loss) are fine",
                    fix="drop the copies, or average equal design points with duplicates='average' "
                        "(CLI: --duplicates average)"))
            return X, y, w
        starts = np.flatnonzero(np.concatenate([[True], ~same_x]))
        if starts.size == n:
            return X, y, w
        self._duplicates_note = f"{n} runs averaged into {starts.size} distinct design points"
        self._row_order = None  # residuals now belong to the averaged points, not to the user's rows
        counts = np.diff(np.append(starts, n))
        ly = np.add.reduceat(np.log(y), starts) / counts
        wa = None if w is None else np.add.reduceat(w, starts) / counts
        return tuple(a[starts] for a in X), np.exp(ly), wa

    def _set_residuals(self, residuals_canonical: np.ndarray) -> None:
        """Store log residuals (computed in the canonical order) in the order the user gave the runs
        (in canonical order of the averaged points when duplicates were averaged)."""
        if getattr(self, "_row_order", None) is None:
            self.residuals_ = np.array(residuals_canonical, copy=True)
            return
        out = np.empty_like(residuals_canonical)
        out[self._row_order] = residuals_canonical
        self.residuals_ = out

    def _fitted_ranges(self, X: tuple[np.ndarray, ...]) -> dict[str, tuple[float, ...]]:
        """(min, max) of every covariate, plus compute ``C = 6 N D`` for a law in ``N`` and ``D``: an
        extrapolation 4x in N and 4x in D is 16x in compute, which no single covariate shows."""
        rng: dict[str, tuple[float, ...]] = {c: (float(a.min()), float(a.max()))
                                             for c, a in zip(self.covariates, X, strict=True)}
        if "N" in self.covariates and "D" in self.covariates and "C" not in self.covariates:
            C = 6.0 * X[self.covariates.index("N")] * X[self.covariates.index("D")]
            rng["C"] = (float(C.min()), float(C.max()))
        return rng

    def _finish_fit(self, y: np.ndarray) -> None:
        """Record how duplicates were handled and the fit-quality verdict (warns when suspect)."""
        from . import quality

        if getattr(self, "_duplicates_note", None):
            self.fit_info_["duplicates"] = self._duplicates_note
        quality.check(self, y, stacklevel=4)

    def fit(self, *X: Any, y: Any = None, sample_weight: Any = None, duplicates: str = "error",
            **columns: Any) -> Self:
        """Fit the law to runs and return ``self``.

        Parameters
        ----------
        *X : array-like
            The covariates in the order of ``covariates`` (e.g. ``N, D``), optionally followed by the
            target when ``y`` is not given; or a single :class:`~scalelab.laws.data.Runs`.
        y : array-like, optional
            Observed target (final loss).
        sample_weight : array-like, optional
            Non-negative weight per run, multiplying its term in the objective.
        duplicates : {"error", "average", "keep"}
            Runs identical in every covariate and the loss are an error by default (copies narrow the
            bands); ``"average"`` fits one point per design point (geometric mean of its losses).
        **columns : str
            With a pandas DataFrame (or dict of columns) as the only positional argument: the column of
            each covariate and of the target, by canonical name or alias (``n="params", d="tokens",
            loss="loss"``); columns named as ``load_runs`` recognises them need no mapping.

        Examples
        --------
        >>> from scalelab.laws import ChinchillaLaw
        >>> law = ChinchillaLaw().fit(N, D, loss)          # doctest: +SKIP
        >>> law.params_["alpha"]                            # doctest: +SKIP
        """
        from . import fitting, uncertainty

        Xa, ya, w = self._prepare_fit(X, y, sample_weight, duplicates, columns)  # in canonical row order

        starts = fitting.resolve_init(type(self), self.init, Xa, ya)
        res = fitting.fit_starts(type(self), Xa, ya, starts, w=w, loss=self.loss, delta=self.delta,
                                 space=self.space, asymmetry=self.asymmetry, max_iter=self.max_iter)
        self.theta_ = res.theta
        self.params_ = dict(zip(self.param_names, map(float, self._from_theta(res.theta)[0]), strict=True))
        self.objective_ = float(res.objective)
        self.fit_info_ = res.info
        self.n_samples_ = int(ya.size)
        self.X_range_ = self._fitted_ranges(Xa)
        logpred = self._log_model(res.theta[None], Xa, jac=False)[0][0]
        self._set_residuals(np.log(ya) - logpred)  # log(observed / predicted)
        self.gof_ = fitting.goodness_of_fit(ya, np.exp(logpred), len(self.param_names), self.objective_)
        self.data_hash_ = _data_hash(Xa, ya, w)
        self._fit_data = (Xa, ya, w)
        uncertainty.attach(self, Xa, ya, w)
        self._finish_fit(ya)
        return self

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset(cls, name: str, **options: Any) -> Self:
        """A law carrying published constants, ready to ``predict`` (no data needed).

        ``presets[name]`` holds ``params`` (public units), ``source`` and optionally ``stderr`` and
        ``range`` (covariate -> (min, max) of the runs behind the constants, for extrapolation notes).
        """
        if name not in cls.presets:
            raise UnknownNameError(f"{cls.name} preset", name, cls.presets,
                                   fix=f"see `scalelab laws show {cls.name}` for the presets")
        spec = cls.presets[name]
        law = cls(**options)
        law.params_ = {k: float(spec["params"][k]) for k in cls.param_names}
        law.theta_ = cls._to_theta(law.params_)[0]
        law.preset_ = name
        law.source_ = spec.get("source", "")
        law.stderr_ = {k: float(v) for k, v in spec.get("stderr", {}).items()}
        law.intervals_ = {k: tuple(map(float, v)) for k, v in spec.get("intervals", {}).items()}
        rng = spec.get("range")
        law.X_range_ = {c: tuple(map(float, rng[c])) for c in cls.covariates} if rng else None
        return law

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(explain(
                f"this {type(self).__name__} has no parameters yet",
                fix=f"call .fit(...) with runs, or use {type(self).__name__}.preset(name) "
                    f"(presets: {', '.join(self.presets) or 'none'})"))

    def _public_array(self) -> np.ndarray:
        return np.array([[self.params_[n] for n in self.param_names]])

    def extrapolation(self, *X: Any) -> np.ndarray:
        """How far each point lies outside the fitted range: max over covariates (and compute ``6 N D`` for
        a law in ``N`` and ``D``) of the ratio to the nearest edge (1.0 inside the range; NaN when the
        range is unknown, e.g. a preset without one)."""
        self._check_fitted()
        Xa = self._check_X(X, fitting=False)
        shape = np.broadcast_shapes(*[np.shape(x) for x in X])
        fac = self._extrapolation(Xa)
        return fac.reshape(shape) if shape else fac.reshape(())[()]

    def _extrapolation(self, Xa: tuple[np.ndarray, ...]) -> np.ndarray:
        rng = getattr(self, "X_range_", None)
        if not rng:
            return np.full(Xa[0].shape, np.nan)
        fac = np.ones(Xa[0].shape)
        pairs = list(zip(self.covariates, Xa, strict=True))
        if "C" in rng and "C" not in self.covariates and "N" in self.covariates and "D" in self.covariates:
            pairs.append(("C", 6.0 * Xa[self.covariates.index("N")] * Xa[self.covariates.index("D")]))
        for c, a in pairs:
            if c not in rng:
                continue
            lo, hi = rng[c]
            with np.errstate(divide="ignore", invalid="ignore"):
                if lo > 0:
                    ratio = np.where(a > hi, a / hi, np.where(a < lo, lo / a, 1.0))
                else:
                    ratio = np.where(a > hi, 1 + (a - hi) / max(hi - lo, 1e-300),
                                     np.where(a < lo, 1 + (lo - a) / max(hi - lo, 1e-300), 1.0))
            fac = np.maximum(fac, ratio)
        return fac

    def _warn_extrapolation(self, Xa: tuple[np.ndarray, ...], stacklevel: int = 3) -> np.ndarray:
        fac = self._extrapolation(Xa)
        lim = self.extrapolation_factor
        if lim is not None and np.any(fac > lim):
            worst = float(np.nanmax(fac))
            warnings.warn(explain(
                f"{int(np.sum(fac > lim))} prediction(s) lie up to {worst:.3g}x outside the fitted range "
                f"({_fmt_range(self.X_range_)})", allowed=f"within {lim:g}x (extrapolation_factor)",
                fix="treat these as extrapolations: add runs closer to the target, or widen the interval"),
                ExtrapolationWarning, stacklevel=stacklevel)
        return fac

    def _table_X(self, X: tuple[Any, ...], columns: Mapping[str, Any]) -> tuple[Any, ...]:
        """``(df,)`` or ``(dict of columns,)`` -> the covariate arrays; anything else unchanged."""
        from .data import is_table, table_covariates

        if len(X) == 1 and is_table(X[0]):
            return table_covariates(X[0], self, columns)
        if columns:
            raise ConfigError(explain("column names were given, but the points are not a table",
                                      value=sorted(columns),
                                      fix="pass a DataFrame as the only positional argument, e.g. "
                                          "predict(df, n='params', d='tokens')"))
        return X

    def predict(self, *X: Any, **columns: Any) -> np.ndarray:
        """Predicted target (loss) at the covariates; broadcasts scalars and arrays. A DataFrame (or dict
        of columns) is read as :meth:`fit` reads it: ``predict(df, n="params", d="tokens")``.

        Warns :class:`~scalelab.errors.ExtrapolationWarning` when a point lies more than
        ``extrapolation_factor`` outside the fitted range (see :meth:`extrapolation`).
        """
        self._check_fitted()
        X = self._table_X(X, columns)
        Xa = self._check_X(X, fitting=False)
        self._warn_extrapolation(Xa)
        shape = np.broadcast_shapes(*[np.shape(x) for x in X])
        out = np.exp(self._log_model(self._to_theta(self.params_), Xa, jac=False)[0][0])
        return out.reshape(shape) if shape else out.reshape(())[()]

    def predict_interval(self, *X: Any, level: float | None = None, kind: str = "mean",
                         **columns: Any) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds at ``level``.

        ``kind="mean"``: the mean law (parameter uncertainty only). ``kind="noise"``: a new run *if the law
        were exactly right*: the mean-law band plus the spread of the fit's residuals (run-to-run noise).
        ``kind="new"`` (calibrated, for forecasting a new run): the noise band joined with the law's own
        backtested extrapolation errors on its runs, growing with the distance from the fitted range
        (:mod:`scalelab.laws.calibration`); it covers misspecification, not only noise. Parameter
        uncertainty comes from the bootstrap draws when ``n_bootstrap > 0``, else from the asymptotic
        (Gauss-Newton) covariance.
        """
        from . import calibration, uncertainty

        self._check_fitted()
        if kind not in INTERVAL_KINDS:
            raise ConfigError(explain("unknown interval kind", value=kind, allowed=", ".join(INTERVAL_KINDS),
                                      fix="mean: the law; noise: a new run if the law is right; new: a new run, "
                                          "calibrated on backtests"))
        X = self._table_X(X, columns)
        Xa = self._check_X(X, fitting=False)
        self._warn_extrapolation(Xa)
        lvl = float(self.level if level is None else level)
        if not 0 < lvl < 1:
            raise ConfigError(explain("level must lie strictly between 0 and 1", value=level))
        if kind == "new":
            lo, hi = calibration.new_run_interval(self, Xa, lvl)
        else:
            lo, hi = uncertainty.prediction_interval(self, Xa, lvl, "new" if kind == "noise" else "mean")
        shape = np.broadcast_shapes(*[np.shape(x) for x in X])
        return lo.reshape(shape), hi.reshape(shape)

    def derived(self) -> dict[str, float]:
        """Derived quantities at the fitted parameters (e.g. ``a``, ``b`` for Chinchilla)."""
        self._check_fitted()
        pub = self._public_array()
        d = self._derived({n: pub[:, i] for i, n in enumerate(self.param_names)})
        return {k: float(np.asarray(v).ravel()[0]) for k, v in d.items()}

    # ------------------------------------------------------------------ reports and files
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to reload a working law: parameters, intervals, options, data hash, version."""
        from .. import __version__

        self._check_fitted()
        d: dict[str, Any] = {
            "law": self.name,
            "class": type(self).__name__,
            "citation": self.citation,
            "equation": self.equation,
            "covariates": {c: self.covariate_units.get(c, "") for c in self.covariates},
            "conventions": dict(self.conventions),
            "options": {k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
                        for k, v in self.get_params().items()},
            "params": dict(self.params_),
            "stderr": dict(getattr(self, "stderr_", {}) or {}),
            "intervals": {k: list(v) for k, v in (getattr(self, "intervals_", {}) or {}).items()},
            "interval_level": float(self.level),
            "interval_method": getattr(self, "interval_method_", None),
            "derived": self.derived(),
            "derived_intervals": {k: list(v) for k, v in (getattr(self, "derived_intervals_", {}) or {}).items()},
            "preset": getattr(self, "preset_", None),
            "source": getattr(self, "source_", None),
            "fitted_range": {c: list(v) for c, v in (getattr(self, "X_range_", None) or {}).items()} or None,
            "n_samples": getattr(self, "n_samples_", None),
            "objective": getattr(self, "objective_", None),
            "goodness_of_fit": getattr(self, "gof_", None),
            "fit_info": getattr(self, "fit_info_", None),
            "data_hash": getattr(self, "data_hash_", None),
            "quality": getattr(self, "quality_", None),
            "calibration": getattr(self, "calibration_", None),
            "scalelab_version": __version__,
        }
        cov = getattr(self, "cov_theta_", None)
        d["cov_theta"] = None if cov is None else np.asarray(cov).tolist()
        res = getattr(self, "residuals_", None)
        d["residuals"] = None if res is None else [float(r) for r in res]
        bp = getattr(self, "bootstrap_params_", None)
        d["bootstrap_params"] = None if bp is None else np.asarray(bp).tolist()
        d["config_hash"] = _stable_hash({k: d[k] for k in ("law", "options", "data_hash", "preset")})
        return d

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (NaN/inf become null)."""
        path = Path(path)
        path.write_text(json.dumps(_jsonable(self.to_dict()), indent=2, allow_nan=False))
        return path

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScalingLaw:
        """Rebuild a working law from :meth:`to_dict` output (the class is looked up by ``d["law"]``)."""
        klass = get_law(d["law"]) if cls is ScalingLaw or cls.name != d.get("law") else cls
        valid = set(klass._get_param_names())
        opts: dict[str, Any] = {k: v for k, v in (d.get("options") or {}).items()
                if k in valid and isinstance(v, (int, float, str, bool, type(None)))
                and not (k == "init" and v not in ("grid", "coarse"))}
        law = klass(**opts)
        law.params_ = {k: float(d["params"][k]) for k in klass.param_names}
        law.theta_ = klass._to_theta(law.params_)[0]
        law.stderr_ = {k: (float("nan") if v is None else float(v)) for k, v in (d.get("stderr") or {}).items()}
        law.intervals_ = {k: tuple(float("nan") if x is None else x for x in v)
                          for k, v in (d.get("intervals") or {}).items()}
        law.derived_intervals_ = {k: tuple(v) for k, v in (d.get("derived_intervals") or {}).items()}
        law.interval_method_ = d.get("interval_method")
        fr = d.get("fitted_range")
        law.X_range_ = {c: tuple(v) for c, v in fr.items()} if fr else None
        if d.get("preset"):
            law.preset_ = d["preset"]
            law.source_ = d.get("source")
        for key, attr in (("n_samples", "n_samples_"), ("objective", "objective_"),
                          ("goodness_of_fit", "gof_"), ("fit_info", "fit_info_"), ("data_hash", "data_hash_"),
                          ("quality", "quality_"), ("calibration", "calibration_")):
            if d.get(key) is not None:
                setattr(law, attr, d[key])
        if d.get("residuals") is not None:
            law.residuals_ = np.asarray(d["residuals"], dtype=float)
        if d.get("bootstrap_params") is not None:
            law.bootstrap_params_ = np.asarray(d["bootstrap_params"], dtype=float).reshape(-1, len(klass.param_names))
        if d.get("cov_theta") is not None:
            law.cov_theta_ = np.asarray(d["cov_theta"], dtype=float)
        return law

    @classmethod
    def load(cls, path: str | Path) -> ScalingLaw:
        """Read a law saved with :meth:`save`."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(explain(f"{path} is not a saved fit (invalid JSON: {e.msg} at line {e.lineno})",
                                    fix="pass the file written by `scalelab fit --out` or law.save()")) from None
        if not isinstance(d, dict) or "law" not in d or "params" not in d:
            raise DataError(explain(f"{path} is not a saved fit (no 'law'/'params' keys)",
                                    fix="pass the file written by `scalelab fit --out` or law.save()"))
        return cls.from_dict(d)

    def report(self) -> str:
        """A plain-text fit report: parameters with intervals, derived quantities, goodness of fit."""
        self._check_fitted()
        lines = [f"{type(self).__name__} ({self.name}): {self.equation}", f"  source: {self.citation}"]
        if getattr(self, "preset_", None):
            lines.append(f"  preset {self.preset_!r}: {getattr(self, 'source_', '')}")
        else:
            info = getattr(self, "fit_info_", None) or {}
            lines.append(f"  fit: {getattr(self, 'n_samples_', '?')} runs, loss={self.loss}"
                         + (f" (delta={self.delta:g})" if self.loss == "huber" else "")
                         + f", space={self.space}, starts={info.get('n_starts')}, "
                         f"objective={_g(getattr(self, 'objective_', None))}")
        lvl = round(100 * self.level)
        method = getattr(self, "interval_method_", None)
        lines.append(f"  {'param':<10}{'value':>14}{'std err':>12}   {lvl}% interval"
                     + (f" ({method})" if method else ""))
        se, iv = getattr(self, "stderr_", {}) or {}, getattr(self, "intervals_", {}) or {}
        for n in self.param_names:
            s = se.get(n)
            i = iv.get(n)
            lines.append(f"  {n:<10}{self.params_[n]:>14.6g}{_g(s):>12}   "
                         + (f"[{_g(i[0])}, {_g(i[1])}]" if i else "-"))
        der = self.derived()
        if der:
            di = getattr(self, "derived_intervals_", {}) or {}
            lines.append("  derived:")
            for k, v in der.items():
                i = di.get(k)
                lines.append(f"  {k:<10}{v:>14.6g}{'':>12}   " + (f"[{_g(i[0])}, {_g(i[1])}]" if i else "-"))
        gof = getattr(self, "gof_", None)
        if gof:
            lines.append("  goodness of fit: " + ", ".join(f"{k}={_g(v)}" for k, v in gof.items()))
        if getattr(self, "X_range_", None):
            lines.append(f"  fitted range: {_fmt_range(self.X_range_)}")
        for note in (getattr(self, "fit_info_", None) or {}).get("warnings", []):
            lines.append(f"  warning: {note}")
        q = getattr(self, "quality_", None)
        if q:
            issues = "" if not q["issues"] else " (" + "; ".join(q["issues"]) + ")"
            lines.append(f"  quality: {q['verdict']}{issues}")
        return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    """Plain JSON types for a saved fit: numpy scalars and arrays unwrapped, NaN and inf as null."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _g(v: Any) -> str:
    if v is None:
        return "-"
    try:
        fv = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "nan" if not math.isfinite(fv) else f"{fv:.4g}"


def _rows(idx: np.ndarray, limit: int = 10) -> str:
    """Row numbers as the user counts them (0-based data rows), truncated."""
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return shown + (f" ... ({idx.size} rows)" if idx.size > limit else "")


def _fmt_range(rng: Mapping[str, tuple[float, ...]] | None) -> str:
    if not rng:
        return "unknown"
    return ", ".join(f"{c} in [{lo:.3g}, {hi:.3g}]" for c, (lo, hi) in rng.items())


def _data_hash(X: tuple[np.ndarray, ...], y: np.ndarray, w: np.ndarray | None) -> str:
    h = hashlib.sha256()
    for a in (*X, y) + ((w,) if w is not None else ()):
        h.update(np.ascontiguousarray(a, dtype=float).tobytes())
    return h.hexdigest()[:16]


def _stable_hash(obj: Any) -> str:
    from .._spec import stable_hash

    return stable_hash(obj)

