"""Learning-curve forecasts: a run's loss at a later step, with a band, from the part of its curve seen
so far, either from the shape of completed reference runs (:class:`CrossRunForecaster`) or from a power
law fitted to the prefix (:class:`PrefixForecaster`). See docs/curves.md for measured accuracy."""

from .checkpoint_law import CheckpointLaw
from .forecast import MIN_POINTS, CrossRunForecaster, Forecast, PrefixForecaster, check_curve
from .ratio import RatioForecaster, loglog_floor
from .schedule import SCHEDULES, cumulative_lr, lr_at

__all__ = ["MIN_POINTS", "SCHEDULES", "CheckpointLaw", "CrossRunForecaster", "Forecast", "PrefixForecaster",
           "RatioForecaster", "check_curve", "cumulative_lr", "loglog_floor", "lr_at"]
