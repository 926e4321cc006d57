"""General forms for users' own laws: a power law plus a constant in any covariates, and a monomial.

Legend (symbols and units used in this module):

==============  ======================================================================================
``X_i``         any positive covariate, in the user's units (parameters, tokens, FLOPs, epochs...)
``L``           the target (a loss, nats/token unless the user's data say otherwise)
``E``           irreducible part of the target, same unit as ``L``
``A_i``         scale of the term in ``X_i`` (unit of ``L`` times ``X_i^alpha_i``)
``alpha_i``     exponent of ``X_i`` (dimensionless, > 0: the term falls as ``X_i`` grows)
``c``, ``p_i``  coefficient and signed exponents of a monomial ``y = c * prod_i X_i^p_i``
==============  ======================================================================================

Forms
-----
``PowerLawPlusConstant``: ``L = E + sum_i A_i / X_i^alpha_i`` (the additive family of Hoffmann et al. 2022
eq. 2 and Kaplan et al. 2020 eq. 1.1-1.2 generalised to any covariates), fitted like Chinchilla: Huber
(delta 1e-3) on ``log L = LSE(log E, log A_i - alpha_i log X_i)``, summed over runs, from a multi-start grid.
Build one for your covariates with :func:`power_law` (``power_law("N", "D")`` is Chinchilla's form).

``MonomialLaw``: ``y = c * prod_i X_i^p_i``, a straight line in log-log space, fitted by least squares on
``log y`` (ordinary least squares, exactly the recipe of the hyperparameter laws: Step Law, DeepSeek LLM).
It is the base of the hyperparameter and allocation laws in :mod:`scalelab.laws.hyperparams`.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, explain
from .base import ScalingLaw, log_sum_exp
from .registry import _REGISTRY, register_name_builder

__all__ = ["MonomialLaw", "PowerLawPlusConstant", "power_law"]


class MonomialLaw(ScalingLaw):
    """``y = c * prod_i X_i^p_i``: a power law without a constant (a line in log-log space).

    Not registered itself; subclasses name their covariates and parameters. ``param_names[0]`` is the
    coefficient (kept positive, fitted as its log) and ``param_names[1:]`` the signed exponents, one per
    covariate in order. The default objective is least squares on ``log y`` (``loss="ls"``), which is
    ordinary least squares in log space and converges in one Gauss-Newton step.

    Examples
    --------
    >>> from scalelab.laws.hyperparams import DeepSeekLRLaw
    >>> f"{float(DeepSeekLRLaw.preset('bi2024').predict(1e20)):.4g}"   # DeepSeek LLM eq. 1 at 1e20 FLOPs
    '0.000986'
    """

    def __init__(self, *, loss: str = "ls", delta: float = 1e-3, space: str = "log", asymmetry: float = 10.0,
                 init: Any = "grid", n_bootstrap: int = 0, level: float = 0.95, random_state: Any = None,
                 extrapolation_factor: float = 10.0, max_iter: int = 200, n_jobs: int = 1) -> None:
        super().__init__(loss=loss, delta=delta, space=space, asymmetry=asymmetry, init=init,
                         n_bootstrap=n_bootstrap, level=level, random_state=random_state,
                         extrapolation_factor=extrapolation_factor, max_iter=max_iter, n_jobs=n_jobs)

    @classmethod
    def _form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        out = p[cls.param_names[0]] * np.ones((1, X[0].size))
        for name, x in zip(cls.param_names[1:], X, strict=True):
            out = out * x ** p[name]
        return out

    @classmethod
    def _log_model(cls, theta: np.ndarray, X: tuple[np.ndarray, ...],
                   jac: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        # log y = log c + sum_i p_i log X_i: linear in the fitting parameters (log c, p_i).
        theta = np.atleast_2d(theta)
        logs = np.stack([np.log(x) for x in X])  # (m, n)
        f = theta[:, :1] + theta[:, 1:] @ logs
        if not jac:
            return f, None
        J = np.empty((theta.shape[0], theta.shape[1], logs.shape[1]))
        J[:, 0] = 1.0
        J[:, 1:] = logs[None]
        return f, J

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        # The objective is quadratic in (log c, p): one start is enough; a second guards against NaN data.
        base = [float(np.exp(np.mean(np.log(y))))] + [0.0] * len(cls.covariates)
        alt = [1.0] + [0.5] * len(cls.covariates)
        return np.array([base, alt])


class PowerLawPlusConstant(ScalingLaw):
    """``L = E + sum_i A_i / X_i^alpha_i`` in the covariates of the class (one term per covariate).

    The registered class ``"power-law"`` has one covariate ``X``; :func:`power_law` builds (and registers)
    the class for any other set, e.g. ``power_law("N", "D")`` (Chinchilla's form) or
    ``power_law("N", "D", "U")``. Parameters are ``E``, ``A_<X>``, ``alpha_<X>`` for each covariate.

    Examples
    --------
    >>> import numpy as np
    >>> Law = power_law("N", "D")
    >>> rng = np.random.default_rng(0)
    >>> (N, D), L = Law._example_data(rng)
    >>> law = Law().fit(N, D, L)
    >>> sorted(law.params_)
    ['A_D', 'A_N', 'E', 'alpha_D', 'alpha_N']
    """

    name = "power-law"
    citation = ("general additive power law plus constant (Hoffmann et al. 2022 eq. 2 generalised; "
                "Kaplan et al. 2020 eq. 1.1-1.2)")
    equation = "L = E + A_X / X^alpha_X"
    covariates: ClassVar[tuple[str, ...]] = ("X",)
    covariate_units: ClassVar[dict[str, str]] = {"X": "user's unit (positive)"}
    param_names: ClassVar[tuple[str, ...]] = ("E", "A_X", "alpha_X")
    log_params: ClassVar[tuple[str, ...]] = ("E", "A_X")
    bounds: ClassVar[dict[str, tuple[float, float]]] = {"E": (1e-8, 1e6), "A_X": (1e-12, 1e40),
                                                        "alpha_X": (0.0, 5.0)}
    conventions: ClassVar[dict[str, str]] = {"objective": "Huber on log-loss, summed (delta 1e-3)"}
    _example_params: ClassVar[dict[str, float]] = {"E": 1.7, "A_X": 300.0, "alpha_X": 0.3}
    _example_ranges: ClassVar[dict[str, tuple[float, float]]] = {"X": (1e7, 1e10)}
    _example_n = 60

    @classmethod
    def _form(cls, p: dict[str, np.ndarray], X: tuple[np.ndarray, ...]) -> np.ndarray:
        out = p["E"] * np.ones((1, X[0].size))
        for c, x in zip(cls.covariates, X, strict=True):
            out = out + p[f"A_{c}"] / x ** p[f"alpha_{c}"]
        return out

    @classmethod
    def _log_model(cls, theta: np.ndarray, X: tuple[np.ndarray, ...],
                   jac: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        # log L = LSE(e, a_i - alpha_i log X_i), the stable parameterisation of Hoffmann et al. App. D.2.
        # Parameter order: E, A_1, alpha_1, A_2, alpha_2, ... (see power_law()).
        theta = np.atleast_2d(theta)
        k, n = theta.shape[0], X[0].size
        logs = [np.log(x)[None, :] for x in X]
        terms = [np.broadcast_to(theta[:, :1], (k, n))]
        for i, lx in enumerate(logs):
            terms.append(theta[:, 1 + 2 * i : 2 + 2 * i] - theta[:, 2 + 2 * i : 3 + 2 * i] * lx)
        T = np.stack(terms)  # (m+1, k, n)
        f, w = log_sum_exp(T, weights=jac)  # w: softmax weights of the terms
        if w is None:
            return f, None
        J = np.empty((k, theta.shape[1], n))
        J[:, 0] = w[0]
        for i, lx in enumerate(logs):
            J[:, 1 + 2 * i] = w[1 + i]
            J[:, 2 + 2 * i] = -w[1 + i] * lx
        return f, J

    @classmethod
    def _init_grid(cls, X: tuple[np.ndarray, ...], y: np.ndarray) -> np.ndarray:
        # Data-driven grid: E a fraction of the smallest target; each term worth a share of the rest at the
        # median covariate, for a few exponents. 3 * 4^m starts (m covariates).
        m = len(cls.covariates)
        ymin, ymean = float(np.min(y)), float(np.mean(y))
        rows = []
        for fe in (0.3, 0.6, 0.9):
            E = fe * ymin
            share = max(ymean - E, 1e-6 * ymean) / m
            for alphas in itertools.product((0.05, 0.15, 0.35, 0.8), repeat=m):
                row = [E]
                for x, al in zip(X, alphas, strict=True):
                    row += [share * float(np.median(x)) ** al, al]
                rows.append(row)
        return np.array(rows)

    @classmethod
    def _example_data(cls, rng: np.random.Generator,
                      n: int | None = None) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        if cls.covariates == ("X",):
            return super()._example_data(rng, n)
        # Every covariate gets Chinchilla-like scales so each term matters over its range.
        n = n or cls._example_n
        X = tuple(np.exp(rng.uniform(math.log(1e7), math.log(1e11), n)) for _ in cls.covariates)
        pub = np.array([[cls._example_params[k] for k in cls.param_names]])
        y = np.exp(cls._log_form(cls._pdict(pub), X)[0] + cls._example_noise * rng.standard_normal(n))
        return X, y


def power_law(*covariates: str) -> type[PowerLawPlusConstant]:
    """The :class:`PowerLawPlusConstant` class for ``covariates`` (registered as
    ``"power-law[<c1>,<c2>,...]"``; the same class is returned on every call).

    Parameters
    ----------
    *covariates : str
        Names of the covariates, in the order ``fit``/``predict`` take them (e.g. ``"N", "D"``). Each gets
        parameters ``A_<name>`` and ``alpha_<name>``.

    Examples
    --------
    >>> power_law("N", "D").param_names
    ('E', 'A_N', 'alpha_N', 'A_D', 'alpha_D')
    """
    if not covariates:
        raise ConfigError(explain("power_law needs at least one covariate name", fix='e.g. power_law("N", "D")'))
    covs = tuple(str(c) for c in covariates)
    bad = [c for c in covs if not c.isidentifier()]
    if bad or len(set(covs)) != len(covs):
        raise ConfigError(explain("covariate names must be distinct identifiers", value=covs,
                                  fix='use names such as "N", "D", "U"'))
    if covs == ("X",):
        return PowerLawPlusConstant
    key = f"power-law[{','.join(covs)}]"  # case kept: get_law rebuilds the class from this name
    existing = _REGISTRY.get(key)
    if existing is not None and issubclass(existing, PowerLawPlusConstant) and existing.covariates == covs:
        return existing
    names: list[str] = ["E"]
    bounds: dict[str, tuple[float, float]] = {"E": (1e-8, 1e6)}
    example: dict[str, float] = {"E": 1.7}
    for i, c in enumerate(covs):
        names += [f"A_{c}", f"alpha_{c}"]
        bounds[f"A_{c}"] = (1e-12, 1e40)
        bounds[f"alpha_{c}"] = (0.0, 5.0)
        example[f"A_{c}"] = (400.0, 2000.0, 100.0, 50.0)[i % 4]
        example[f"alpha_{c}"] = (0.34, 0.37, 0.25, 0.2)[i % 4]
    attrs = {
        "name": key,
        "__doc__": f"``L = E + {' + '.join(f'A_{c} / {c}^alpha_{c}' for c in covs)}`` (see PowerLawPlusConstant).",
        "__module__": __name__,
        "equation": "L = E + " + " + ".join(f"A_{c} / {c}^alpha_{c}" for c in covs),
        "covariates": covs,
        "covariate_units": {c: "user's unit (positive)" for c in covs},
        "param_names": tuple(names),
        "log_params": ("E", *(f"A_{c}" for c in covs)),
        "bounds": bounds,
        "presets": {},
        "_example_params": example,
        "_example_ranges": {c: (1e7, 1e11) for c in covs},
        "_example_n": 40 * len(covs),
    }
    cls_name = "PowerLawPlusConstant_" + "_".join(covs)
    return type(cls_name, (PowerLawPlusConstant,), attrs)


def _rebuild(name: str) -> type[ScalingLaw] | None:
    """The class of a power law saved under ``power-law[N,D,...]`` in another process (see :func:`get_law`)."""
    if not (name.startswith("power-law[") and name.endswith("]")):
        return None
    return power_law(*(c.strip() for c in name[len("power-law["):-1].split(",")))


register_name_builder("power-law[", _rebuild)
