"""Data-mixture regression (RegMix-style): predict a validation loss from domain weights, rank mixtures,
and search for the best one under constraints.

Usage, with ``W_train`` / ``W_test`` mixture weights (rows sum to 1), ``y_train`` / ``y_test`` losses and
``names`` the domains (not run here; docs/mixtures.md runs it on RegMix's data)::

    from scalelab.mixtures import MixtureRegressor, optimize_mixture
    m = MixtureRegressor(model="lightgbm").fit(W_train, y_train, domains=names)
    m.predict(W_test), m.predict_interval(W_test), m.score(W_test, y_test)
    optimize_mixture(m, n_samples=100_000, top_k=128).weights

See docs/mixtures.md for the measured accuracy on the RegMix data.
"""

from ._backends import MODELS
from ._io import read_mixtures, read_target
from .regressor import UNCERTAINTIES, MixtureRegressor, spearman
from .search import MixtureSearchResult, optimize_mixture

__all__ = ["MODELS", "UNCERTAINTIES", "MixtureRegressor", "MixtureSearchResult", "optimize_mixture",
           "read_mixtures", "read_target", "spearman"]
