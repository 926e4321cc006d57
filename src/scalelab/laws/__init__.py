"""Scaling laws as scikit-learn-shaped estimators: fit, predict, intervals, compute-optimal allocation."""
