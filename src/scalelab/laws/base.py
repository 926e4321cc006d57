"""The estimator contract every scaling law follows: :class:`ScalingLaw`.

The rest of the machinery has rooms of its own: the registry (:mod:`scalelab.laws.registry`), input
checks and the canonical row order (:mod:`scalelab.laws.validation`), the typed fit result
(:mod:`scalelab.laws.result`) and saved fits (:mod:`scalelab.laws.io`). Their public names are
re-exported here, so ``from scalelab.laws.base import ScalingLaw, get_law, list_laws, canonical_order``
keeps working.

A law is a scikit-learn-shaped estimator (DESIGN.md principle 4): hyperparameters are stored unchanged
in ``__init__``; ``fit`` returns ``self``; the fitted state is one frozen
:class:`~scalelab.laws.result.FitResult` at ``result_`` (plus ``theta_``; the other attributes ending in
``_`` are read-only views of the result); ``predict`` before ``fit`` (or :meth:`ScalingLaw.preset`) raises
:class:`~scalelab.errors.NotFittedError`; ``predict_interval`` gives bands; ``random_state`` makes the
bootstrap reproducible.

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
    of shape ``(n,)``. Returns the prediction, shape ``(k, n)``; defaults to ``exp(_log_form)``.
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

import functools
import inspect
import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar

import numpy as np

from ..errors import ConfigError, DataError, ExtrapolationWarning, NotFittedError, UnknownNameError, explain
from . import io as _io
from . import validation
from .registry import _NOT_LAW_MODULES, _REGISTRY, _load_builtins, get_law, list_laws, register_law
from .result import FitResult, _g
from .result import data_hash as _data_hash
from .result import fmt_range as _fmt_range
from .validation import DUPLICATES, LOSSES, _as_float_array, _rows, canonical_order

__all__ = [
    "LOSSES",
    "FitResult",
    "ScalingLaw",
    "canonical_order",
    "get_law",
    "list_laws",
    "register_law",
]
# Kept importable from here for code written before the split (``from .base import _rows`` etc.).
_COMPAT = (DUPLICATES, _NOT_LAW_MODULES, _REGISTRY, _load_builtins, _as_float_array, _rows, _data_hash)

log = logging.getLogger(__name__)

#: Bands of ``predict_interval``: the mean law; a new run if the law is right; a new run, calibrated.
INTERVAL_KINDS = ("mean", "noise", "new")
#: What each band is called in headers and labels (:func:`band_label`), so that output names the band it used.
BAND_NAMES = {"mean": "mean-law", "noise": "noise", "new": "new-run"}
INTERVAL_KINDS_FIX = "mean: the law; noise: a new run if the law is right; new: a new run, calibrated on backtests"


def check_interval_kind(kind: str) -> None:
    """A :class:`ConfigError` naming ``kind`` and the allowed bands unless it is one of :data:`INTERVAL_KINDS`."""
    if kind not in INTERVAL_KINDS:
        raise ConfigError(explain("unknown interval kind", value=kind, allowed=", ".join(INTERVAL_KINDS),
                                  fix=INTERVAL_KINDS_FIX))


def band_label(kind: str, level: float, what: str = "band") -> str:
    """``"95% new-run band"``, ``"95% noise coverage"``...: the one label of a band of ``kind`` at ``level``.

    >>> band_label("noise", 0.95), band_label("mean", 0.9, "coverage")
    ('95% noise band', '90% mean-law coverage')
    """
    check_interval_kind(kind)
    return f"{round(100 * float(level))}% {BAND_NAMES[kind]} {what}"


T = TypeVar("T")


class _FromResult(Generic[T]):
    """A fitted attribute (``params_``, ``intervals_``, ...) read from one field of ``law.result_``.

    Absent (``AttributeError``, so ``hasattr`` and ``getattr(law, name, None)`` work as for any fitted
    attribute) before a fit, and when the field is None unless ``none_ok``. Read-only: a fit, ``preset``
    or ``from_dict`` sets ``result_`` as a whole."""

    def __init__(self, field: str, none_ok: bool = False) -> None:
        self.field = field
        self.none_ok = none_ok
        self.name = field

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, law: Any, owner: type | None = None) -> T:
        if law is None:
            return self  # type: ignore[return-value]
        result = law.__dict__.get("result_")
        value = None if result is None else getattr(result, self.field)
        if value is None and (result is None or not self.none_ok):
            raise AttributeError(f"{type(law).__name__} has no {self.name}"
                                 + (" (not fitted)" if result is None else ""))
        return value  # type: ignore[return-value]

    def __set__(self, law: Any, value: Any) -> None:
        raise AttributeError(f"{self.name} is read-only: it reads law.result_.{self.field}; "
                             f"make a new result with law.result_.replace({self.field}=...)")


class _Params(_FromResult[dict[str, float]]):
    """``params_``: settable by hand (a law with chosen constants), which makes a new ``result_`` whose
    parameters (and derived quantities) are those; nothing else of the fit changes."""

    def __set__(self, law: Any, value: Any) -> None:
        params = {k: float(v) for k, v in dict(value).items()}
        result = law.__dict__.get("result_")
        if result is None:
            result = FitResult(params=params, interval_level=float(law.level))
        law.result_ = result.replace(params=params, derived=law._derived_at(params))



_F = TypeVar("_F", bound=Callable[..., Any])


def log_sum_exp(T: np.ndarray, weights: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """``log sum_i exp(T[i])`` over the first axis, the largest term factored out so it stays finite (the
    stable form of sums of power laws, Hoffmann et al. 2022 App. D.2), and with ``weights`` each term's
    share ``exp(T[i]) / sum`` (the softmax: the derivative of the result by each term), else None."""
    m = T.max(axis=0)
    ex = np.exp(T - m)
    s = ex.sum(axis=0)
    return m + np.log(s), (ex / s if weights else None)


def keeps_previous_fit(fit: _F) -> _F:
    """Decorator for ``fit``: a fit that raises (bad input, a failed optimiser) leaves the law exactly as it
    was, so a user's previous fitted result is not lost."""

    @functools.wraps(fit)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        saved = dict(vars(self))
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            vars(self).clear()
            vars(self).update(saved)
            raise

    return wrapper  # type: ignore[return-value]


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
    #: The Jacobian of ``_log_model`` costs little next to the prediction itself (an analytic one), so the
    #: batched fitter evaluates it with every trial step instead of again for the steps it accepts (the
    #: finite-difference default costs ``2P`` more predictions: it is evaluated for accepted steps only).
    cheap_jacobian: ClassVar[bool] = False
    #: Options added after fits were first saved, with the value that reproduces those fits: a saved file
    #: without one loads with that value, and a law at that value does not write it (config hashes stay).
    options_since: ClassVar[dict[str, Any]] = {}

    # ----- fitted state: set by fit(), preset() or from_dict() -----
    #: Everything the fit (or preset, or saved file) says; the attributes below read from it.
    result_: FitResult
    theta_: np.ndarray  # the parameters in fitting space (log of ``log_params``)
    params_ = _Params("params")
    stderr_: _FromResult[dict[str, float]] = _FromResult("stderr")
    intervals_: _FromResult[dict[str, tuple[float, ...]]] = _FromResult("intervals")  # (low, high)
    derived_intervals_: _FromResult[dict[str, tuple[float, ...]]] = _FromResult("derived_intervals")
    interval_method_: _FromResult[str | None] = _FromResult("interval_method", none_ok=True)
    X_range_: _FromResult[dict[str, tuple[float, ...]] | None] = _FromResult("fitted_range", none_ok=True)
    objective_: _FromResult[float] = _FromResult("objective")
    fit_info_: _FromResult[dict[str, Any]] = _FromResult("fit_info")
    n_samples_: _FromResult[int] = _FromResult("n_samples")
    residuals_: _FromResult[np.ndarray] = _FromResult("residuals")
    gof_: _FromResult[dict[str, float]] = _FromResult("goodness_of_fit")
    data_hash_: _FromResult[str] = _FromResult("data_hash")
    preset_: _FromResult[str] = _FromResult("preset")
    source_: _FromResult[str | None] = _FromResult("source")
    cov_theta_: _FromResult[np.ndarray] = _FromResult("cov_theta")
    bootstrap_params_: _FromResult[np.ndarray] = _FromResult("bootstrap_params")
    #: Where the runs came from (``Runs.to_dict()``), when the CLI fitted the law.
    data_source_: _FromResult[dict[str, Any]] = _FromResult("data_source")
    #: Fit-quality verdict ``{"verdict": "ok" | "suspect", "issues": [...]}`` (:mod:`scalelab.laws.quality`).
    quality_: _FromResult[dict[str, Any]] = _FromResult("quality")
    #: Backtested extrapolation scores behind the calibrated new-run band (:mod:`scalelab.laws.calibration`).
    calibration_: _FromResult[dict[str, Any]] = _FromResult("calibration")


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
        validation.check_options(self)

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
        if cls._log_form.__func__ is ScalingLaw._log_form.__func__:  # type: ignore[attr-defined]
            raise NotImplementedError(f"{cls.__name__} must implement _form or _log_form")
        return np.exp(cls._log_form(p, X))  # a law written in log (log-sum-exp forms)

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
    # Thin methods over :mod:`scalelab.laws.validation`, so that a law can extend a check (``super()``).
    def _split_xy(self, args: tuple[Any, ...], y: Any,
                  columns: Mapping[str, Any] | None = None) -> tuple[tuple[Any, ...], Any, Any]:
        return validation.split_xy(self, args, y, columns)

    def _check_X(self, X: Sequence[Any], *, fitting: bool) -> tuple[np.ndarray, ...]:
        return validation.check_X(self, X, fitting=fitting)

    def _check_y(self, y: Any, n: int) -> np.ndarray:
        return validation.check_y(self, y, n)

    def _check_design(self, X: tuple[np.ndarray, ...], y: np.ndarray) -> None:
        validation.check_design(self, X, y)

    # ------------------------------------------------------------------ fit
    def _prepare_fit(self, X: tuple[Any, ...], y: Any, sample_weight: Any, duplicates: str = "error",
                     columns: Mapping[str, Any] | None = None
                     ) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray | None]:
        """Validate options, covariates, target and weights for ``fit``, check the design, and forget any
        previous fit (attributes ending in ``_``). Returns ``(X arrays, y, weights or None)`` in the
        canonical row order (copies dropped with ``duplicates="drop"``, equal design points averaged with
        ``"average"``)."""
        self._check_options()
        if duplicates not in DUPLICATES:
            raise ConfigError(explain("unknown duplicates policy", value=duplicates, allowed=", ".join(DUPLICATES),
                                      fix="use 'error' (default), 'drop', 'average' or 'keep'"))
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
        """:func:`scalelab.laws.validation.handle_duplicates`; remembers the note for ``fit_info``."""
        Xs, ys, ws, note = validation.handle_duplicates(self, X, y, w, order, policy)
        if note is not None:
            self._duplicates_note = note
            self._row_order = None  # residuals now belong to the averaged points, not to the user's rows
        return Xs, ys, ws

    def _user_order(self, residuals_canonical: np.ndarray) -> np.ndarray:
        """Log residuals (computed in the canonical order) in the order the user gave the runs (in
        canonical order of the remaining points when copies were dropped or duplicates averaged)."""
        if getattr(self, "_row_order", None) is None:
            return np.array(residuals_canonical, copy=True)
        out = np.empty_like(residuals_canonical)
        out[self._row_order] = residuals_canonical
        return out

    def _derived_at(self, params: Mapping[str, float]) -> dict[str, float]:
        """Derived quantities (``_derived``) at one parameter vector, as floats."""
        d = self._derived({n: np.array([float(params[n])]) for n in self.param_names})
        return {k: float(np.asarray(v).ravel()[0]) for k, v in d.items()}

    def _new_result(self, params: Mapping[str, float], **fields: Any) -> FitResult:
        """A :class:`FitResult` for ``params`` (in ``param_names`` order, derived quantities filled in)."""
        p = {n: float(params[n]) for n in self.param_names}
        fields.setdefault("interval_level", float(self.level))
        return FitResult(params=p, derived=self._derived_at(p), **fields)

    def _fitted_ranges(self, X: tuple[np.ndarray, ...]) -> dict[str, tuple[float, ...]]:
        """(min, max) of every covariate, plus compute ``C = 6 N D`` for a law in ``N`` and ``D``: an
        extrapolation 4x in N and 4x in D is 16x in compute, which no single covariate shows."""
        rng: dict[str, tuple[float, ...]] = {c: (float(a.min()), float(a.max()))
                                             for c, a in zip(self.covariates, X, strict=True)}
        if "N" in self.covariates and "D" in self.covariates and "C" not in self.covariates:
            from ..units import training_flops

            C = training_flops(X[self.covariates.index("N")], X[self.covariates.index("D")])
            rng["C"] = (float(C.min()), float(C.max()))
        return rng

    def _finish_fit(self, y: np.ndarray) -> None:
        """Record how duplicates were handled and the fit-quality verdict (warns when suspect)."""
        from . import quality

        if getattr(self, "_duplicates_note", None):
            self.result_ = self.result_.replace(fit_info={**(self.result_.fit_info or {}),
                                                          "duplicates": self._duplicates_note})
        quality.check(self, y, stacklevel=4)

    @keeps_previous_fit
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
        duplicates : {"error", "drop", "average", "keep"}
            Runs identical in every covariate and the loss are an error by default (copies narrow the
            bands); ``"drop"`` drops the copies and keeps replicates (same design point, other loss);
            ``"average"`` fits one point per design point (geometric mean of its losses).
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
        prior, prior_info = self._objective_prior(Xa, ya, w)
        res = fitting.fit_starts(type(self), Xa, ya, starts, w=w, loss=self.loss, delta=self.delta,
                                 space=self.space, asymmetry=self.asymmetry, max_iter=self.max_iter,
                                 prior=prior)
        self._fit_prior = res.prior  # the bootstrap refits with the same penalty
        objective = float(res.objective)
        if res.prior is not None and prior_info is not None:
            # objective_ stays the data's term (comparable with an unpenalised fit); the penalty is recorded
            prior_info["penalty"] = float(res.prior.value(res.theta))
            objective -= prior_info["penalty"]
            res.info["prior"] = prior_info
        self.theta_ = res.theta
        params = dict(zip(self.param_names, map(float, self._from_theta(res.theta)[0]), strict=True))
        logpred = self._log_model(res.theta[None], Xa, jac=False)[0][0]
        self.result_ = self._new_result(
            params, objective=objective, fit_info=res.info, n_samples=int(ya.size),
            fitted_range=self._fitted_ranges(Xa),
            residuals=self._user_order(np.log(ya) - logpred),  # log(observed / predicted)
            goodness_of_fit=fitting.goodness_of_fit(ya, np.exp(logpred), len(self.param_names), objective),
            data_hash=_data_hash(Xa, ya, w))
        self._fit_data = (Xa, ya, w)
        self.result_ = self.result_.replace(**uncertainty.estimate(self, Xa, ya, w, self.result_.fit_info))
        self._finish_fit(ya)
        return self

    def _objective_prior(self, X: tuple[np.ndarray, ...], y: np.ndarray,
                         w: np.ndarray | None) -> tuple[Any, dict[str, Any] | None]:
        """A penalty for the fit's objective (a :class:`~scalelab.laws.fitting.Prior`, or a function of the
        unpenalised objective's best value that returns one) and its record for ``fit_info``; none here (a
        law with a prior option overrides this)."""
        return None, None

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
        params = {k: float(spec["params"][k]) for k in cls.param_names}
        law.theta_ = cls._to_theta(params)[0]
        rng = spec.get("range")
        law.result_ = law._new_result(
            params, preset=name, source=spec.get("source", ""),
            stderr={k: float(v) for k, v in spec.get("stderr", {}).items()},
            intervals={k: tuple(map(float, v)) for k, v in spec.get("intervals", {}).items()},
            fitted_range={c: tuple(map(float, rng[c])) for c in cls.covariates} if rng else None)
        return law

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if "result_" not in self.__dict__:
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
            from ..units import training_flops

            pairs.append(("C", training_flops(Xa[self.covariates.index("N")], Xa[self.covariates.index("D")])))
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
        """Warn when a point lies more than ``extrapolation_factor`` outside the fitted range of a
        covariate, of compute, or of a product or ratio of two covariates (tokens per parameter ``D/N``:
        inside the box of N and D but off the runs' diagonal); returns the per-covariate factor."""
        from .calibration import fitted_joint_ranges, joint_extrapolation

        fac = self._extrapolation(Xa)
        lim = self.extrapolation_factor
        if lim is None:
            return fac
        joint, label = joint_extrapolation(self, Xa, fitted_joint_ranges(self))
        both = np.fmax(fac, joint)
        if np.any(both > lim):
            worst = float(np.nanmax(both))
            where = f"({_fmt_range(self.X_range_)})" if getattr(self, "X_range_", None) else ""
            if label is not None and float(np.max(joint)) > lim:
                where += f"; jointly, {label}"
            warnings.warn(explain(
                f"{int(np.sum(both > lim))} prediction(s) lie up to {worst:.3g}x outside the fitted range "
                f"{where}", allowed=f"within {lim:g}x (extrapolation_factor)",
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
        ``kind="new"`` (calibrated, for forecasting a new run): the law's own backtested extrapolation
        errors on its runs pooled with those of other public data sets (theirs alone when the runs are too
        few sizes to backtest), growing with the distance from the runs (:mod:`scalelab.laws.calibration`); it covers
        misspecification, not only noise. Parameter
        uncertainty comes from the bootstrap draws when ``n_bootstrap > 0``, else from the asymptotic
        (Gauss-Newton) covariance.
        """
        from . import calibration, uncertainty

        self._check_fitted()
        check_interval_kind(kind)
        X = self._table_X(X, columns)
        Xa = self._check_X(X, fitting=False)
        self._warn_extrapolation(Xa)
        lvl = validation.check_level(self.level if level is None else level)
        if kind == "new":
            lo, hi = calibration.new_run_interval(self, Xa, lvl)
        else:
            lo, hi = uncertainty.prediction_interval(self, Xa, lvl, "new" if kind == "noise" else "mean")
        shape = np.broadcast_shapes(*[np.shape(x) for x in X])
        return lo.reshape(shape), hi.reshape(shape)

    def derived(self) -> dict[str, float]:
        """Derived quantities at the fitted parameters (e.g. ``a``, ``b`` for Chinchilla)."""
        self._check_fitted()
        return self._derived_at(self.params_)

    # ------------------------------------------------------------------ reports and files
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to reload a working law: parameters, intervals, options, data hash, version
        (the law's description and options around ``result_.to_dict()``; see :mod:`scalelab.laws.io`)."""
        self._check_fitted()
        return _io.law_to_dict(self)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (NaN/inf become null)."""
        self._check_fitted()
        return _io.save_law(self, path)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScalingLaw:
        """Rebuild a working law from :meth:`to_dict` output (the class is looked up by ``d["law"]``)."""
        return _io.law_from_dict(cls, d)

    @classmethod
    def load(cls, path: str | Path) -> ScalingLaw:
        """Read a law saved with :meth:`save`."""
        return _io.load_law(cls, path)

    def report(self) -> str:
        """A plain-text fit report: parameters with intervals, derived quantities, goodness of fit."""
        self._check_fitted()
        r = self.result_
        lines = [f"{type(self).__name__} ({self.name}): {self.equation}", f"  source: {self.citation}"]
        if r.preset:
            lines.append(f"  preset {r.preset!r}: {r.source}")
        else:
            info = r.fit_info or {}
            lines.append(f"  fit: {r.n_samples if r.n_samples is not None else '?'} runs, loss={self.loss}"
                         + (f" (delta={self.delta:g})" if self.loss == "huber" else "")
                         + f", space={self.space}, starts={info.get('n_starts')}, "
                         f"objective={_g(r.objective)}")
            pr = info.get("prior")
            if pr:
                lines.append(f"  prior ({pr.get('name')}, a MAP fit): "
                             + ", ".join(f"{k} ~ N({_g(c)}, {_g(pr['width'][k])}^2)" for k, c in pr["centre"].items())
                             + f"; penalty {_g(pr.get('penalty'))}")
        return "\n".join(lines + r.replace(derived=self.derived())._report_lines())

