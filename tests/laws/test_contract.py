"""Acceptance 7: one contract test over every registered law (scikit-learn's ``parametrize_with_checks``
idea, DESIGN.md principle 4). New laws join automatically by registering; each provides synthetic data
through ``_example_data(rng)``."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from scalelab.errors import ConfigError, NotFittedError
from scalelab.laws import ScalingLaw, get_law, list_laws

LAWS = list_laws()


def test_registry_lists_chinchilla_and_finds_by_name():
    names = [c.name for c in LAWS]
    assert "chinchilla" in names
    assert get_law("Chinchilla").name == "chinchilla"
    with pytest.raises(KeyError, match=r"chinchila|chinchilla"):
        get_law("chinchila")


@pytest.mark.parametrize("cls", LAWS, ids=[c.name for c in LAWS])
def test_law_contract(cls):
    # class description is complete
    assert cls.name and cls.citation and cls.equation
    assert cls.covariates and cls.param_names
    assert set(cls.log_params) <= set(cls.param_names)
    # construct with defaults; get/set params round-trip; unknown option rejected
    law = cls()
    params = law.get_params()
    assert {"loss", "delta", "n_bootstrap", "random_state"} <= set(params)
    clone = cls(**params)
    assert clone.get_params() == params
    assert law.set_params(n_bootstrap=3) is law and law.n_bootstrap == 3
    with pytest.raises(ConfigError):
        law.set_params(not_an_option=1)
    # predict before fit
    X, y = cls._example_data(np.random.default_rng(0))
    with pytest.raises(NotFittedError):
        cls().predict(*X)
    # fit returns self; inputs are not mutated
    X_copy, y_copy = tuple(np.array(x, copy=True) for x in X), np.array(y, copy=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = cls(n_bootstrap=8, random_state=0)
        assert law.fit(*X, y) is law
        for a, b in zip(X, X_copy, strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(y, y_copy)
        assert set(law.params_) == set(cls.param_names)
        pred = law.predict(*X)
        assert pred.shape == y.shape and np.all(np.isfinite(pred))
        # same seed, same result
        again = cls(n_bootstrap=8, random_state=0).fit(*X, y)
        np.testing.assert_allclose(again.bootstrap_params_, law.bootstrap_params_, rtol=1e-12)
        # intervals bracket the prediction
        lo, hi = law.predict_interval(*X)
        assert np.all(lo <= hi)
        # save / load gives a working law with the same predictions
        d = json.loads(json.dumps(law.to_dict(), default=float, allow_nan=True))
        back = ScalingLaw.from_dict(d)
        assert type(back) is cls
        np.testing.assert_allclose(back.predict(*X), pred, rtol=1e-10)
    assert isinstance(law.report(), str) and cls.name in law.report()


@pytest.mark.parametrize("cls", LAWS, ids=[c.name for c in LAWS])
def test_presets_predict_without_data(cls):
    for name in cls.presets:
        law = cls.preset(name)
        X, _ = cls._example_data(np.random.default_rng(1), n=5) if _accepts_n(cls) else cls._example_data(
            np.random.default_rng(1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = law.predict(*X)
        assert np.all(np.isfinite(pred)), name
    with pytest.raises(KeyError):
        cls.preset("no-such-preset")


def _accepts_n(cls) -> bool:
    import inspect

    return "n" in inspect.signature(cls._example_data).parameters


def test_a_law_needs_form_or_log_form_and_either_gives_the_other():
    # a law written in log (_log_form only) predicts exp of it through the inherited _form; a law with
    # neither hook says which to write
    class _LogOnly(ScalingLaw):
        covariates = ("N",)
        param_names = ("a",)

        @classmethod
        def _log_form(cls, p, X):
            return p["a"] * np.log(X[0])[None, :]

    class _Neither(ScalingLaw):
        covariates = ("N",)
        param_names = ("a",)

    p, X = {"a": np.array([[0.5]])}, (np.array([4.0, 9.0]),)
    np.testing.assert_allclose(_LogOnly._form(p, X), [[2.0, 3.0]])
    with pytest.raises(NotImplementedError, match="_Neither must implement _form or _log_form"):
        _Neither._form(p, X)


def test_log_sum_exp_is_finite_where_the_plain_sum_overflows_and_its_weights_are_the_softmax():
    # the one log-sum-exp behind the power-law-sum laws (general, Muennighoff, Krajewski's MoE)
    from scalelab.laws.base import log_sum_exp

    T = np.array([[0.0, 1.0, 800.0], [np.log(3.0), -2.0, 799.0]])
    f, w = log_sum_exp(T, weights=True)
    np.testing.assert_allclose(f[:2], np.log(np.exp(T[:, :2]).sum(axis=0)), rtol=1e-12)
    assert np.isfinite(f[2]) and f[2] == pytest.approx(800.0 + np.log1p(np.exp(-1.0)), rel=1e-12)
    np.testing.assert_allclose(w[:, 0], [0.25, 0.75], rtol=1e-12)
    np.testing.assert_allclose(w.sum(axis=0), 1.0, rtol=1e-12)
    assert log_sum_exp(T)[1] is None
