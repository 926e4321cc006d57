"""Progress of a grid: a live rich display for terminals, log lines for CI.

The grid bar advances in training FLOPs (``6 N_active D``) rather than in runs, because the runs of an
isoFLOP grid differ in size by orders of magnitude and FLOPs per second stay roughly constant across
sizes, which makes the ETA honest. The description shows runs done and the current run's tokens/s.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("scalelab.tunnel")

__all__ = ["GridProgress", "LogProgress", "RichProgress", "make_progress"]


class GridProgress:
    """What the runner reports while a grid trains. The base class reports nothing."""

    def start(self, *, name: str, total_runs: int, done_runs: int, total_flops: float) -> None:
        """The grid begins: ``total_runs`` in all, ``done_runs`` of them already stored."""

    def run_started(self, run_hash: str, label: str, n_tokens: int, flops: float) -> None:
        """A run was claimed and starts (or resumes) training."""

    def run_progress(self, run_hash: str, tokens: int, tokens_per_s: float | None) -> None:
        """A run reached ``tokens`` tokens."""

    def run_finished(self, run_hash: str, status: str, val_loss: float | None, wall_s: float | None) -> None:
        """A run ended as completed, diverged or failed."""

    def close(self) -> None:
        """The grid ended (or was interrupted)."""


class LogProgress(GridProgress):
    """Quiet mode: one log line per run start and end (INFO on the ``scalelab.tunnel`` logger); each end
    line carries the grid's ETA, from the FLOPs trained so far in this session (see the module docstring)."""

    def __init__(self) -> None:
        self.total = self.done = 0
        self._flops_total = self._flops_done = 0.0
        self._run_flops: dict[str, float] = {}
        self._t0 = time.monotonic()

    def start(self, *, name: str, total_runs: int, done_runs: int, total_flops: float) -> None:
        self.total, self.done = total_runs, done_runs
        self._flops_total, self._t0 = total_flops, time.monotonic()
        log.info("grid %s: %d runs, %d already stored, %.3g FLOPs to train", name, total_runs, done_runs, total_flops)

    def run_started(self, run_hash: str, label: str, n_tokens: int, flops: float) -> None:
        self._run_flops[run_hash] = flops
        log.info("run %s %s: training on %d tokens", run_hash[:10], label, n_tokens)

    def run_finished(self, run_hash: str, status: str, val_loss: float | None, wall_s: float | None) -> None:
        self.done += 1
        self._flops_done += self._run_flops.pop(run_hash, 0.0)
        log.info("run %s %s (val loss %s, %.1f s) [%d/%d] ETA %s", run_hash[:10], status,
                 "-" if val_loss is None else f"{val_loss:.4f}", wall_s or 0.0, self.done, self.total,
                 self.eta(time.monotonic() - self._t0))

    def eta(self, elapsed_s: float) -> str:
        """Time left at the FLOP rate so far: ``4m05s``, ``done``, or ``?`` before anything was trained."""
        left = max(self._flops_total - self._flops_done, 0.0)
        if self.done >= self.total or left == 0:
            return "done"
        if self._flops_done <= 0 or elapsed_s <= 0:
            return "?"
        s = round(elapsed_s * left / self._flops_done)
        return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class RichProgress(GridProgress):
    """A live display on stderr: a bar in FLOPs with ETA, runs done, the current run's tokens/s."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("runs {task.fields[runs]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task: Any = None
        self._total_runs = self._done_runs = 0
        self._run_flops: dict[str, tuple[float, int, float]] = {}  # hash -> (flops, n_tokens, advanced)
        self._rates: dict[str, float] = {}

    def start(self, *, name: str, total_runs: int, done_runs: int, total_flops: float) -> None:
        self._total_runs, self._done_runs = total_runs, done_runs
        self._progress.start()
        self._task = self._progress.add_task(name, total=max(total_flops, 1.0), runs=f"{done_runs}/{total_runs}",
                                             rate="")

    def _update(self) -> None:
        rate = " ".join(f"{r:,.0f} tok/s" for r in list(self._rates.values())[-2:])
        self._progress.update(self._task, runs=f"{self._done_runs}/{self._total_runs}", rate=rate)

    def run_started(self, run_hash: str, label: str, n_tokens: int, flops: float) -> None:
        self._run_flops[run_hash] = (flops, max(n_tokens, 1), 0.0)
        self._update()

    def run_progress(self, run_hash: str, tokens: int, tokens_per_s: float | None) -> None:
        if run_hash not in self._run_flops or self._task is None:
            return
        flops, n_tokens, advanced = self._run_flops[run_hash]
        target = flops * min(tokens, n_tokens) / n_tokens
        if target > advanced:
            self._progress.advance(self._task, target - advanced)
            self._run_flops[run_hash] = (flops, n_tokens, target)
        if tokens_per_s:
            self._rates[run_hash] = tokens_per_s
        self._update()

    def run_finished(self, run_hash: str, status: str, val_loss: float | None, wall_s: float | None) -> None:
        self._done_runs += 1
        if run_hash in self._run_flops and self._task is not None:
            flops, _, advanced = self._run_flops.pop(run_hash)
            self._progress.advance(self._task, max(0.0, flops - advanced))
        self._rates.pop(run_hash, None)
        self._update()

    def close(self) -> None:
        if self._task is not None:
            self._progress.stop()
            self._task = None


def make_progress(quiet: bool) -> GridProgress:
    """The display for ``quiet``: log lines, or the live rich display."""
    return LogProgress() if quiet else RichProgress()


class _Rate:
    """Tokens per second of a run from successive (time, tokens) observations."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.tok0 = 0

    def update(self, tokens: int) -> float | None:
        now = time.perf_counter()
        if self.t0 is None:
            self.t0, self.tok0 = now, tokens
            return None
        dt = now - self.t0
        return (tokens - self.tok0) / dt if dt > 0 else None
