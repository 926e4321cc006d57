"""Early stopping in tunnel sweeps: stop a run once it is confidently going to lose.

A *pruner* looks at the run being trained (its loss at each evaluation so far) and at the other runs of
the same sweep (their stored curves), and says whether to stop the run now. The interface mirrors
Optuna's (``optuna.pruners.BasePruner.prune(study, trial)`` and ``trial.report(value, step)`` /
``trial.should_prune()``) without depending on it: a :class:`Trial` is told ``report(step, value)`` and
asked ``should_prune()``; the pruner's :meth:`~Pruner.prune` gets the trial and the other runs.

Three pruners:

* :class:`ForecastPruner` (default): forecast this run's final loss with a band (:mod:`scalelab.curves`)
  and stop it when even the band's optimistic end is worse than the best completed run's final loss.
* :class:`MedianPruner`: stop when the run's best loss so far is worse than the median of the other
  runs' losses at the same step (Golovin et al. 2017, "Google Vizier", median stopping rule).
* :class:`SuccessiveHalvingPruner`: asynchronous successive halving (Li et al. 2020, "A System for
  Massively Parallel Hyperparameter Tuning"): at rungs ``min_resource * eta^k`` steps, keep a run only if
  its loss is in the best ``1/eta`` of the runs that reached that rung.

A pruned run is stored with status ``pruned``, its curve up to the stop, and the decision (the forecast
that justified it) in the store's ``prunes`` table (:func:`prune_decision`). Pruning only ever stops runs,
so replaying a pruner on full curves in the order the runs would train (:func:`replay`) gives exactly
the decisions of a sequential sweep; ``benchmarks/pruning_sweep.py`` measures the compute saved that way.

>>> t = np.arange(1, 11) * 10
>>> good = TrialCurve("good", t, 2 + 2 * (t / 10.0) ** -0.5, 100, "complete")
>>> trial = Trial(MedianPruner(n_startup_trials=1), total_steps=100, others=[good])
>>> trial.report(10, 5.0)
>>> trial.should_prune(), trial.decision.pruner
(True, 'median')
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from ..errors import ConfigError, explain

__all__ = ["PRUNERS", "ForecastPruner", "MedianPruner", "PruneDecision", "Pruner", "ReplayResult", "StoreWatch",
           "SuccessiveHalvingPruner", "Trial", "TrialCurve", "check_prunable", "make_pruner", "replay",
           "sweep_summary"]

TrialState = Literal["complete", "pruned", "running"]


@dataclass(frozen=True)
class TrialCurve:
    """Another run of the sweep, as a pruner sees it: evaluated losses at steps, and how it ended."""

    key: str
    steps: np.ndarray
    values: np.ndarray
    total_steps: int
    state: TrialState

    @property
    def final(self) -> float | None:
        """The final loss of a completed run (else ``None``)."""
        if self.state != "complete" or self.steps.size == 0 or self.steps[-1] < self.total_steps:
            return None
        return float(self.values[-1])

    def value_at(self, step: float) -> float | None:
        """Loss at ``step`` (interpolated between evaluations; ``None`` when the run did not get there)."""
        if self.steps.size == 0 or step > self.steps[-1] or step < self.steps[0]:
            return None
        return float(np.interp(step, self.steps, self.values))


@dataclass(frozen=True)
class PruneDecision:
    """Why a run was stopped: the pruner, where, the value seen, and the evidence (forecast, best run)."""

    pruner: str
    step: int
    total_steps: int
    value: float
    reason: str
    forecast: dict[str, Any] | None = None
    best: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Pruner(Protocol):
    """What :class:`Trial` needs of a pruner (``optuna.pruners.BasePruner.prune`` with the sweep as a list)."""

    name: str

    def prune(self, trial: Trial, others: Sequence[TrialCurve]) -> PruneDecision | None: ...


class Trial:
    """The run being trained: ``report(step, value)`` at each evaluation, then ask ``should_prune()``.

    ``others`` is the list of the sweep's other runs, or a function returning it (called at each
    ``should_prune``, so a store-backed sweep sees runs that finished meanwhile).
    """

    def __init__(self, pruner: Pruner, total_steps: int,
                 others: Sequence[TrialCurve] | Callable[[], Sequence[TrialCurve]] = ()) -> None:
        self.pruner = pruner
        self.total_steps = int(total_steps)
        self._others = others
        self.steps: list[int] = []
        self.values: list[float] = []
        self.decision: PruneDecision | None = None

    def report(self, step: int, value: float) -> None:
        """Record the evaluated loss at ``step`` (a repeated step replaces the earlier value)."""
        if not math.isfinite(value):
            return
        if self.steps and step <= self.steps[-1]:
            keep = [i for i, s in enumerate(self.steps) if s < step]
            self.steps, self.values = [self.steps[i] for i in keep], [self.values[i] for i in keep]
        self.steps.append(int(step))
        self.values.append(float(value))

    def should_prune(self) -> bool:
        """Whether the pruner says stop now; the reason is kept in :attr:`decision`."""
        if not self.steps or self.steps[-1] >= self.total_steps:
            return False
        others = self._others() if callable(self._others) else self._others
        self.decision = self.pruner.prune(self, list(others))
        return self.decision is not None

    @property
    def curve(self) -> TrialCurve:
        return TrialCurve("this run", np.asarray(self.steps, float), np.asarray(self.values, float),
                          self.total_steps, "running")


def _check_positive(name: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0) and (not integer or float(value).is_integer())
    if not ok:
        kind = "an integer" if integer else "a number"
        raise ConfigError(explain(f"{name} must be {kind} {'>= 0' if allow_zero else '> 0'}", value=value,
                                  fix=f"pass a valid {name}"))


@dataclass
class MedianPruner:
    """Median stopping: prune when the run's best loss so far is worse than the median of the other runs'
    losses at the same step (runs that reached it, completed or pruned).

    ``n_startup_trials``: no pruning until this many other runs have finished (completed or pruned).
    ``n_warmup_steps``: no pruning before this step of the run.
    """

    n_startup_trials: int = 3
    n_warmup_steps: int = 0
    name: str = field(default="median", init=False)

    def __post_init__(self) -> None:
        _check_positive("n_startup_trials", self.n_startup_trials, integer=True, allow_zero=True)
        _check_positive("n_warmup_steps", self.n_warmup_steps, integer=True, allow_zero=True)

    def prune(self, trial: Trial, others: Sequence[TrialCurve]) -> PruneDecision | None:
        step, best = trial.steps[-1], min(trial.values)
        done = [o for o in others if o.state != "running"]
        if step < self.n_warmup_steps or len(done) < max(self.n_startup_trials, 1):
            return None
        at = [v for o in done if (v := o.value_at(step)) is not None]
        if not at:
            return None
        med = float(np.median(at))
        if best <= med:
            return None
        return PruneDecision(self.name, step, trial.total_steps, trial.values[-1],
                             f"best loss so far {best:.4f} > median {med:.4f} of {len(at)} runs at step {step}",
                             best={"median": med, "n_runs": len(at)})


@dataclass
class SuccessiveHalvingPruner:
    """Asynchronous successive halving: rungs at ``min_resource * reduction_factor**k`` steps; at each rung
    a run goes on only if its loss there is among the best ``1/reduction_factor`` of the runs that reached
    the rung (itself included). While fewer than ``reduction_factor`` runs reached a rung, only the best
    goes on (as Optuna's implementation does, since a run cannot be paused and resumed).

    ``min_resource``: steps of the first rung, or a fraction of the run's steps when below 1.
    """

    min_resource: float = 1 / 27
    reduction_factor: int = 3
    name: str = field(default="halving", init=False)

    def __post_init__(self) -> None:
        _check_positive("min_resource", self.min_resource)
        if not (isinstance(self.reduction_factor, int) and self.reduction_factor >= 2):
            raise ConfigError(explain("reduction_factor must be an integer >= 2", value=self.reduction_factor,
                                      fix="use 3 (keep the best third at each rung)"))

    def rungs(self, total_steps: int) -> list[int]:
        """The rung steps of a run of ``total_steps`` steps."""
        r0 = self.min_resource * total_steps if self.min_resource < 1 else self.min_resource
        out, r = [], float(r0)
        while r < total_steps:
            out.append(max(1, round(r)))
            r *= self.reduction_factor
        return sorted(set(out))

    def prune(self, trial: Trial, others: Sequence[TrialCurve]) -> PruneDecision | None:
        step = trial.steps[-1]
        passed = [r for r in self.rungs(trial.total_steps) if r <= step]
        if not passed:
            return None
        rung = passed[-1]
        if len(trial.steps) > 1 and trial.steps[-2] >= rung:
            return None  # this rung was judged at an earlier report
        value = float(np.interp(rung, trial.steps, trial.values))
        seen = [o.value_at(rung) for o in others if o.state != "running"]
        competing = sorted([value] + [v for v in seen if v is not None])
        if len(competing) == 1:
            return None
        k = max(len(competing) // self.reduction_factor, 1)
        cut = competing[k - 1]
        if value <= cut:
            return None
        return PruneDecision(self.name, step, trial.total_steps, trial.values[-1],
                             f"loss {value:.4f} at rung {rung} is not among the best {k} of {len(competing)} "
                             f"runs there (cut {cut:.4f})", best={"rung": rung, "cut": cut, "n_runs": len(competing)})


@dataclass
class ForecastPruner:
    """Prune a run when its forecast band is confidently worse than the best completed run.

    At each report after ``min_fraction`` of the run, the run's final loss is forecast from its curve so
    far by learning the curve's remaining fall from the sweep's completed runs
    (:class:`scalelab.curves.CrossRunForecaster` once ``min_references`` runs completed; before that the
    ratio of final to partway loss of the completed runs, :class:`scalelab.curves.RatioForecaster`).
    The run stops when the band's lower end, ``loss_lo``, is above ``(1 + margin)`` times the best
    completed run's final loss: even the most optimistic forecast loses.

    ``level``: coverage of the band (its lower end sits at ``(1 - level) / 2``).
    ``n_startup_trials``: completed runs needed before anything is pruned.
    """

    level: float = 0.95
    min_fraction: float = 0.1
    margin: float = 0.0
    n_startup_trials: int = 1
    min_references: int = 8
    name: str = field(default="forecast", init=False)

    def __post_init__(self) -> None:
        from .._checks import check_level

        check_level(self.level)
        if not 0 <= self.min_fraction < 1:
            raise ConfigError(explain("min_fraction must be in [0, 1)", value=self.min_fraction,
                                      fix="use 0.1 to start judging runs after a tenth of their steps"))
        _check_positive("margin", self.margin, allow_zero=True)
        _check_positive("n_startup_trials", self.n_startup_trials, integer=True)

    def forecast(self, trial: Trial, complete: Sequence[TrialCurve]) -> Any:
        """The trial's :class:`~scalelab.curves.Forecast` at its end, from the completed runs, with the
        band's lower end taken down to :func:`~scalelab.curves.loglog_floor` when that is lower."""
        from ..curves import CrossRunForecaster, Forecast, RatioForecaster, loglog_floor

        refs = [(o.steps, o.values, o.total_steps) for o in complete]
        t, v = np.asarray(trial.steps, float), np.asarray(trial.values, float)
        fc = None
        if len(refs) >= self.min_references:
            try:
                fc = CrossRunForecaster(level=self.level, min_references=self.min_references).fit(
                    refs).forecast(t, v, trial.total_steps)
            except ValueError:  # too few references reach this fraction with enough points
                fc = None
        if fc is None:
            fc = RatioForecaster(level=self.level).fit(refs).forecast(t, v, trial.total_steps)
        # The references' ratios say nothing about a run whose LR leaves more to fall than theirs did
        # (a sweep's first completed runs are often the high-LR ones that flatten early): the run's own
        # slope, carried to the end, bounds how far it can still fall.
        floor = loglog_floor(t, v, trial.total_steps)
        lo = np.minimum(fc.loss_lo, floor)
        return Forecast(steps=fc.steps, loss=np.maximum(fc.loss, lo), loss_lo=lo, loss_hi=np.maximum(fc.loss_hi, lo),
                        level=fc.level, method=fc.method + ", lower end <= own log-log slope to the end",
                        observed_steps=fc.observed_steps, total_steps=fc.total_steps)

    def prune(self, trial: Trial, others: Sequence[TrialCurve]) -> PruneDecision | None:
        from ..curves import MIN_POINTS

        step = trial.steps[-1]
        complete = [o for o in others if o.final is not None]
        if step < self.min_fraction * trial.total_steps or len(complete) < self.n_startup_trials:
            return None
        if len(trial.steps) < MIN_POINTS:
            return None
        best = min(complete, key=lambda o: o.final or math.inf)
        best_final = float(best.final or math.inf)
        fc = self.forecast(trial, complete)
        lo = float(fc.loss_lo[-1])
        if lo <= best_final * (1 + self.margin):
            return None
        return PruneDecision(
            self.name, step, trial.total_steps, trial.values[-1],
            f"forecast final loss {float(fc.loss[-1]):.4f}, {fc.level:.0%} band [{lo:.4f}, "
            f"{float(fc.loss_hi[-1]):.4f}], is above the best run's {best_final:.4f}",
            forecast=fc.to_dict(), best={"key": best.key, "final_loss": best_final})


PRUNERS: dict[str, type] = {"forecast": ForecastPruner, "median": MedianPruner, "halving": SuccessiveHalvingPruner}


def make_pruner(name: str, **options: Any) -> Pruner:
    """A pruner by name: ``forecast``, ``median`` or ``halving`` (options as the classes take them)."""
    if name not in PRUNERS:
        from ..errors import suggest

        close = suggest(name, list(PRUNERS))
        raise ConfigError(explain("unknown pruner", value=name, allowed=", ".join(PRUNERS),
                                  fix=f"did you mean {close[0]!r}?" if close else "pass --prune forecast"))
    try:
        pruner: Pruner = PRUNERS[name](**options)
    except TypeError as e:
        raise ConfigError(explain(f"bad option for the {name} pruner", value=str(e),
                                  fix=f"see help(scalelab.tunnel.pruning.{PRUNERS[name].__name__})")) from None
    return pruner


# ---- replay on full curves -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplayResult:
    """Outcome of :func:`replay`: where each run stopped, the compute used, and whether the best survived."""

    keys: list[str]
    stopped_at: dict[str, int]
    decisions: dict[str, PruneDecision]
    total_steps: dict[str, int]
    best_key: str
    best_survived: bool
    saved_fraction: float

    def to_dict(self) -> dict[str, Any]:
        return {"order": self.keys, "stopped_at": self.stopped_at, "best_key": self.best_key,
                "best_survived": self.best_survived, "saved_fraction": self.saved_fraction,
                "decisions": {k: d.to_dict() for k, d in self.decisions.items()}}


def replay(pruner: Pruner, curves: dict[str, tuple[Any, Any, int]], order: Sequence[str] | None = None,
           cost: dict[str, float] | None = None) -> ReplayResult:
    """Replay a sequential sweep: train the runs of ``curves`` (``key -> (steps, losses, total_steps)``,
    full curves) one after another in ``order``, reporting each evaluation to ``pruner``.

    Exact for a sequential sweep, since a pruner only stops runs: a run's curve up to its stop is the
    same as its full curve's. ``cost`` is the compute per step of each run (default 1); the saved
    fraction is ``1 - used / (all runs to the end)``. The best run is the lowest final loss of the full
    curves; it *survived* when it was not pruned.
    """
    order = list(order if order is not None else curves)
    cost = cost or {}
    done: list[TrialCurve] = []
    stopped: dict[str, int] = {}
    decisions: dict[str, PruneDecision] = {}
    for key in order:
        t, v, total = curves[key]
        t, v = np.asarray(t, float), np.asarray(v, float)
        trial = Trial(pruner, int(total), others=done)
        stop = int(total)
        for s, x in zip(t, v, strict=True):
            trial.report(int(s), float(x))
            if trial.should_prune():
                assert trial.decision is not None
                stop, decisions[key] = int(s), trial.decision
                break
        keep = t <= stop
        done.append(TrialCurve(key, t[keep], v[keep], int(total), "pruned" if key in decisions else "complete"))
        stopped[key] = stop
    totals = {k: int(curves[k][2]) for k in order}
    used = sum(stopped[k] * cost.get(k, 1.0) for k in order)
    full = sum(totals[k] * cost.get(k, 1.0) for k in order)
    best = min(order, key=lambda k: float(np.asarray(curves[k][1], float)[-1]))
    return ReplayResult(order, stopped, decisions, totals, best, best not in decisions, 1 - used / full)


def decision_json(decision: PruneDecision) -> str:
    """The decision as stored (JSON text)."""
    return json.dumps(decision.to_dict(), sort_keys=True, default=float)


# ---- a sweep in the run store ------------------------------------------------------------------------------
def _n_steps(config: dict[str, Any]) -> int:
    return int(config["n_tokens"]) // (int(config["batch_size"]) * int(config["seq_len"]))


def check_prunable(configs: Sequence[Any]) -> None:
    """Pruning judges evaluated losses: every run must evaluate during training (``eval_every_steps``)."""
    bad = [i for i, c in enumerate(configs) if not int(getattr(c, "eval_every_steps", 0) or 0)]
    if bad:
        raise ConfigError(explain("pruning needs evaluations during each run", value=f"runs {bad[:5]} have none",
                                  allowed="eval_every_steps > 0 in every run's config",
                                  fix="set eval_every_steps (e.g. a twentieth of the run's steps), or drop --prune"))


class StoreWatch:
    """The hook between one training run and its sweep's pruner (``RunOptions(pruner=...)``).

    The sweep is the store's other runs of the same grid and the same number of steps, completed or
    pruned; their curves' evaluated losses are what the pruner compares with. :meth:`check` is given each
    curve point of the run and raises :class:`~scalelab.tunnel.train.StopRun` when the pruner says stop.
    """

    def __init__(self, store: Any, rec: Any, pruner: Pruner) -> None:
        self.store, self.rec = store, rec
        self.total = _n_steps(rec.config)
        self._cache: dict[str, TrialCurve] = {}
        self.trial = Trial(pruner, self.total, others=self.others)

    def others(self) -> list[TrialCurve]:
        """The sweep's finished runs comparable with this one (stored curves, evaluated points only)."""
        out = []
        for r in self.store.runs(grid=self.rec.grid, kind="run", status=("completed", "pruned")):
            if r.hash == self.rec.hash or _n_steps(r.config) != self.total:
                continue
            if r.hash not in self._cache:
                pts = [(p["step"], p["val_loss"]) for p in self.store.curve(r.hash) if p.get("val_loss") is not None]
                a = np.asarray(pts, dtype=float).reshape(-1, 2)
                self._cache[r.hash] = TrialCurve(r.hash, a[:, 0], a[:, 1], self.total,
                                                 "complete" if r.status == "completed" else "pruned")
            out.append(self._cache[r.hash])
        return out

    def check(self, point: dict[str, Any]) -> None:
        """Report an evaluated point of the main run; raise ``StopRun`` when the pruner stops it."""
        from .train import StopRun

        if point.get("event", "step") != "step" or point.get("val_loss") is None:
            return
        self.trial.report(int(point["step"]), float(point["val_loss"]))
        if self.trial.should_prune():
            assert self.trial.decision is not None
            raise StopRun(self.trial.decision.to_dict())


def sweep_summary(records: Sequence[Any]) -> dict[str, Any]:
    """Compute a sweep used against running every run to the end, and its best completed run.

    ``records``: the sweep's stored runs. Compute is training FLOPs (``flops_per_token`` times tokens);
    a run's planned compute is its ``n_tokens`` at the same FLOPs per token.
    """
    used = planned = 0.0
    for r in records:
        fpt = r.flops_per_token or 0.0
        planned += fpt * float(r.n_tokens or 0)
        used += fpt * float(r.tokens_seen if r.tokens_seen is not None else 0)
    done = [r for r in records if r.status == "completed" and r.final_val_loss is not None]
    best = min(done, key=lambda r: r.final_val_loss) if done else None
    return {"runs": len(records), "pruned": sum(r.status == "pruned" for r in records),
            "completed": len(done), "flops_used": used, "flops_planned": planned,
            "saved_fraction": 1 - used / planned if planned else 0.0,
            "best": None if best is None else {"hash": best.hash, "final_val_loss": best.final_val_loss,
                                               "lr": best.config.get("lr")}}
