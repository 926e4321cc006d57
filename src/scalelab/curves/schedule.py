"""Learning-rate schedules as the curve forms need them: the cumulative learning rate (Tissue et al. 2024's
"forward area" S1) of warmup + constant, cosine or WSD (warmup-stable-decay) schedules, peak LR = 1."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, explain

__all__ = ["SCHEDULES", "cumulative_lr", "lr_at"]

SCHEDULES = ("constant", "cosine", "wsd")


def lr_at(step: Any, total_steps: int, schedule: str, *, warmup_steps: int = 0, decay_fraction: float = 0.2,
          final_fraction: float = 0.0) -> np.ndarray:
    """Learning rate (relative to the peak) at ``step``: linear warmup, then the schedule's body.

    ``cosine`` decays to ``final_fraction`` at ``total_steps``; ``wsd`` holds the peak and decays linearly
    over the last ``decay_fraction`` of the run.
    """
    if schedule not in SCHEDULES:
        raise ConfigError(explain("unknown LR schedule", value=schedule, allowed=", ".join(SCHEDULES),
                                  fix="pass --schedule cosine, wsd or constant"))
    s = np.asarray(step, dtype=float)
    w = max(int(warmup_steps), 0)
    if w >= total_steps:  # --warmup-steps 99999 of a 5,000-step run was used as given: all warmup, no schedule
        raise ConfigError(explain("the warmup is as long as the run or longer", value=int(warmup_steps),
                                  allowed=f"fewer than total_steps = {total_steps:,}",
                                  fix="pass the schedule's warmup steps (--warmup-steps), e.g. 1-5% of the run"))
    warm = np.minimum(1.0, (s + 1) / w) if w else np.ones_like(s)
    if schedule == "constant":
        body = np.ones_like(s)
    elif schedule == "cosine":
        prog = np.clip((s - w) / max(total_steps - w, 1), 0, 1)
        body = final_fraction + (1 - final_fraction) * 0.5 * (1 + np.cos(np.pi * prog))
    else:
        start = total_steps * (1 - decay_fraction)
        prog = np.clip((s - start) / max(total_steps - start, 1), 0, 1)
        body = 1 - (1 - final_fraction) * prog
    return np.where(s < w, warm, body)


def cumulative_lr(step: Any, total_steps: int, schedule: str, *, warmup_steps: int = 0,
                  decay_fraction: float = 0.2) -> np.ndarray:
    """Sum of the learning rate over steps ``0 .. step-1`` (relative to the peak); S1 of Tissue et al. 2024.

    >>> float(cumulative_lr(100, 100, "constant")[()])
    100.0
    >>> round(float(cumulative_lr(100, 100, "cosine")[()]), 1)
    50.5
    """
    s = np.atleast_1d(np.asarray(step, dtype=float))
    grid = np.arange(int(np.max(s)) + 1)
    c = np.concatenate([[0.0], np.cumsum(lr_at(grid, total_steps, schedule, warmup_steps=warmup_steps,
                                                decay_fraction=decay_fraction))])
    out = np.interp(s, np.arange(c.size), c)
    return out.reshape(np.shape(step)) if np.ndim(step) else out[0:1].reshape(())
