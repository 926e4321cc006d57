"""Search the parallel layouts of a model on a cluster: the fastest (or cheapest) that fit, and why the
others don't.

The space (every combination is counted as explored, whether evaluated or pruned):

- ``tp``: divisors of n_gpus up to ``max_tp`` (default: GPUs per node, Narayanan et al. 2021's
  takeaway #1: tensor parallelism inside a node);
- ``pp``: divisors of n_gpus / tp up to min(n_layers, ``max_pp``); ``cp``: divisors of the rest up to
  ``max_cp``; ``dp`` fills the cluster;
- ``ep`` (MoE only): divisors of n_experts that divide dp * cp; ``etp`` in {tp, 1};
- ``zero`` in ``zero_stages``; optimizer offload to CPU and, with ZeRO-3, parameter offload
  (``allow_offload``); HSDP (``allow_hsdp``);
- ``recompute``: the save policies none / act / selective / selective-act / full (any names of
  :mod:`~scalelab.planner.policy`); ``micro_batch`` powers of two up to ``max_micro_batch``;
  ``interleave`` divisors of layers per stage up to ``max_interleave`` with at most L + 2 virtual
  stages (``plan.interleave_reason``).

Sequence parallelism is on whenever tp > 1: it moves the same bytes as TP's all-reduces and only saves
memory (Korthikanti et al. 2022 section 4.2.2), so a layout without it is never better in this model.

Pruning, cheapest first (every pruned layout is counted, with its reason):

1. divisibility of (tp, pp, cp) against heads, layers, sequence and batch prunes whole subtrees;
2. dominance: ZeRO-0 is dominated by ZeRO-1 when the data-parallel group has more than one rank (the
   same bytes on the wire, less memory, a sharded optimizer step); ZeRO>0 duplicates ZeRO-0 when it
   has one; offload is dominated by the same layout without it once that one fits;
3. memory lower bounds: the most sharded ZeRO/offload choice per (tp, pp, cp, ep, etp), then each
   choice, with the smallest activations (full recompute, micro-batch 1, no interleave), prune every
   recompute / micro-batch / interleave under them; an out-of-memory layout makes its larger
   micro-batches out of memory too;
4. branch and bound: each group of layouts sharing (tp, pp, cp, dp, ep, etp) gets a lower bound on all
   its members (:func:`~scalelab.planner.step_time.group_step_time_lower_bound`); groups and candidates
   share one best-first queue, a group is memory-checked and expanded into candidates only when it
   reaches the front, and each candidate carries a lower bound on its step time (matmul, attention and
   elementwise time, TP/CP/PP traffic and the bubble, the part of the expert all-to-alls overlap cannot
   hide, exposed DP/ZeRO traffic and the CPU optimizer step, each computed the way
   :mod:`~scalelab.planner.step_time` does, leaving out only terms that add time); candidates are fully
   evaluated until the front of the queue exceeds the last of the top plans.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..arch.spec import ModelSpec
from ..errors import ConfigError, explain
from ..hardware.spec import ClusterSpec
from ..units import GiB, format_days
from .comm import comm_per_step
from .flops import FlopConventions, flops_per_step
from .layout import Layout, TrainSpec
from .plan import (
    Plan,
    _check_values,
    _trainable_fraction,
    check_layout,
    check_plan_inputs,
    framework_options,
    interleave_reason,
    memory_limit,
    plan,
)
from .policy import get_save_policy
from .step_time import (
    StepTimeBound,
    ep_exposed_floor_s,
    group_step_time_lower_bound,
    host_optimizer_s,
    timing_flops,
)

if TYPE_CHECKING:
    from .frameworks import FrameworkProfile
    from .memory import MemoryConventions

__all__ = ["Rejected", "SearchResult", "bounded_candidates", "search_layouts"]

Objective = Literal["step_time", "cost"]
_RECOMPUTE_ORDER = ("none", "act", "selective", "selective-act", "full")
"""Save policies searched by default (:mod:`scalelab.planner.policy`)."""


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


@functools.lru_cache(maxsize=4096)
def reason_category(reason: str) -> str:
    """A reason with its numbers removed, for counting rejections by kind.

    >>> reason_category("out of memory by 12.3 GiB (needs 92.3 GiB per GPU, has 80.0 GiB)")
    'out of memory'
    >>> reason_category("tp=3 does not divide n_heads=32")
    'tp does not divide n_heads'
    """
    if reason.startswith("out of memory"):
        return "out of memory"
    r = re.sub(r"\([^)]*\)", "", reason)
    r = re.sub(r"=[^\s:,;]+", "", r)
    r = r.replace(" ,", ",")
    r = re.sub(r"\d+(\.\d+)?", "#", r)
    return re.sub(r"\s+", " ", r).strip()


_NUMBER = re.compile(r"\d+(\.\d+)?")


def _reason_numbers(reason: str) -> list[str]:
    """The numbers that :func:`reason_category` turns into ``#``, in order, as written."""
    r = re.sub(r"\([^)]*\)", "", reason)
    r = re.sub(r"=[^\s:,;]+", "", r)
    return [m.group(0) for m in _NUMBER.finditer(r)]


def _span(lo: tuple[float, str], hi: tuple[float, str]) -> str:
    return lo[1] if lo[0] == hi[0] else f"{lo[1]}-{hi[1]}"


class _Rejections:
    """Rejected layouts by reason kind: how many, a few examples, and the range of the numbers their
    reasons give (so a report says "needs 81.2-140.3 GiB", not "needs # GiB")."""

    def __init__(self, max_examples: int, limit_bytes: float):
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[Rejected]] = {}
        self.n = 0
        self._max_examples, self._limit = max_examples, limit_bytes
        self._ranges: dict[str, list[tuple[tuple[float, str], tuple[float, str]]]] = {}

    def add(self, make_layout: Any, reasons: list[str] | tuple[str, ...], count: int = 1,
            category: str | None = None, needs_bytes: float | None = None) -> None:
        """Count ``count`` layouts under ``reasons`` (``make_layout``: a Layout, or a callable that builds
        the example only when one is kept); ``needs_bytes``: the memory an out-of-memory one needs."""
        self.n += count
        cat = category or reason_category(reasons[0])
        self.counts[cat] += count
        if needs_bytes is not None:
            self._widen(cat, [f"{needs_bytes / GiB:.1f}"])
        elif "#" in cat:
            self._widen(cat, _reason_numbers(reasons[0]))
        ex = self.examples.setdefault(cat, [])
        if len(ex) < self._max_examples:
            lay = make_layout() if callable(make_layout) else make_layout
            ex.append(Rejected(lay, tuple(reasons), count))

    def _widen(self, cat: str, numbers: list[str]) -> None:
        vals = [(float(x), x) for x in numbers]
        old = self._ranges.get(cat)
        if old is None or len(old) != len(vals):
            self._ranges[cat] = [(v, v) for v in vals]
            return
        self._ranges[cat] = [(min(lo, v), max(hi, v)) for (lo, hi), v in zip(old, vals, strict=True)]

    def labels(self) -> dict[str, str]:
        """Each reason kind with its numbers as ranges, e.g. ``out of memory (needs 81.2-140.3 GiB of
        78.65 GiB)``."""
        out = {}
        for cat in self.counts:
            spans = [_span(lo, hi) for lo, hi in self._ranges.get(cat, [])]
            if cat == "out of memory" and spans:
                out[cat] = f"out of memory (needs {spans[0]} GiB of {self._limit / GiB:.2f} GiB)"
            elif spans and cat.count("#") == len(spans):
                parts = cat.split("#")
                out[cat] = parts[0] + "".join(sp + rest for sp, rest in zip(spans, parts[1:], strict=True))
            else:
                out[cat] = cat
        return out


@dataclass(frozen=True)
class Rejected:
    """A layout that cannot run, with the reasons (a sample is kept; all are counted)."""

    layout: Layout
    reasons: tuple[str, ...]
    count: int = 1
    """How many layouts this entry stands for (a pruned subtree shares its parent's reasons)."""

    def to_dict(self) -> dict[str, Any]:
        return {"layout": self.layout.short(), "reasons": list(self.reasons), "count": self.count}


@dataclass(frozen=True)
class SearchResult:
    """Ranked feasible plans and the explained rejections of a layout search."""

    best: tuple[Plan, ...]
    """The top feasible plans, best first."""
    rejected: tuple[Rejected, ...]
    """A sample of rejected layouts (the first few of each kind), with reasons."""
    rejected_counts: dict[str, int]
    """Number of rejected layouts per reason kind (a layout with two reasons counts under its first)."""
    n_explored: int
    """Layouts in the search space (evaluated or pruned)."""
    n_feasible: int
    """Layouts that fit."""
    n_evaluated: int
    """Layouts that reached the full plan (memory and step-time model)."""
    objective: str
    n_pruned_by_bound: int = 0
    """Layouts never evaluated because a lower bound on their step time (matmul + elementwise time
    stretched by the pipeline bubble) could not beat the last of the top plans. Their feasibility is
    unknown; they are neither feasible nor rejected in the counts."""
    constraints: dict[str, Any] = field(default_factory=dict)
    rejected_labels: dict[str, str] = field(default_factory=dict)
    """Each key of ``rejected_counts`` as a report shows it: with the range of the numbers its reasons
    gave, e.g. ``out of memory (needs 81.2-140.3 GiB of 78.65 GiB)``."""
    plan_options: dict[str, Any] = field(default_factory=dict, repr=False)
    """The keyword arguments every plan of the search was made with (framework, overlaps, efficiencies,
    memory conventions and limit): what :func:`~scalelab.planner.explain.explain_layout` plans another
    layout with, so that it is timed as the search timed its best."""

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected_counts.values())

    def to_dict(self) -> dict[str, Any]:
        from .. import __version__

        return {
            "objective": self.objective,
            "n_explored": self.n_explored,
            "n_feasible": self.n_feasible,
            "n_evaluated": self.n_evaluated,
            "n_pruned_by_bound": self.n_pruned_by_bound,
            "n_rejected": self.n_rejected,
            "best": [p.to_dict() for p in self.best],
            "rejected_counts": dict(self.rejected_counts),
            "rejected_labels": dict(self.rejected_labels),
            "rejected_examples": [r.to_dict() for r in self.rejected],
            "constraints": self.constraints,
            "scalelab_version": __version__,
        }

    def to_frame(self) -> Any:
        """The top plans as a pandas ``DataFrame``, best first: the short layout, its degrees and the
        headline figures (needs pandas, the ``data`` extra).

        >>> r.to_frame()[["layout", "step_s", "mfu"]]  # doctest: +SKIP
        """
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - pandas is in the data extra
            from ..errors import MissingDependencyError

            raise MissingDependencyError("pandas", "data") from e
        rows = []
        for rank, p in enumerate(self.best, 1):
            lay = p.layout
            rows.append({"rank": rank, **p.summary_row(), "dp": lay.dp, "tp": lay.tp, "pp": lay.pp, "cp": lay.cp,
                         "ep": lay.ep, "zero": lay.zero, "recompute": lay.recompute, "micro_batch": lay.micro_batch,
                         "interleave": lay.interleave, "tokens_per_s": p.tokens_per_s})
        return pd.DataFrame(rows)

    def report(self) -> str:
        lines = [f"Layout search ({self.objective}): {self.n_explored} layouts explored, {self.n_evaluated} evaluated,",
                 f"  {self.n_feasible} fit, {self.n_rejected} rejected, {self.n_pruned_by_bound} pruned by the "
                 f"step-time bound"]
        if self.best:
            p0 = self.best[0]
            lines.append(f"  {p0.model.name} on {p0.cluster.n_gpus} x {p0.cluster.gpu.name}, "
                         f"{p0.train.global_batch_tokens / 1e6:.3g}M tokens per step")
            lines.append(f"  {'#':>2} {'layout':<38}{'GiB':>6}{'step s':>8}{'MFU %':>7}{'days':>8}")
            for i, p in enumerate(self.best, 1):
                row = p.summary_row()
                days = "-" if math.isnan(row["days"]) else format_days(row["days"])
                lines.append(f"  {i:>2} {row['layout']:<38}{row['mem_GiB']:6.1f}{row['step_s']:8.3g}"
                             f"{row['mfu'] * 100:7.1f}{days:>8}")
        else:
            lines.append("  no layout fits; see the rejection reasons below")
        if self.rejected_counts:
            lines.append("  rejected, by reason:")
            for k, v in sorted(self.rejected_counts.items(), key=lambda kv: -kv[1]):
                lines.append(f"  {v:>8}  {self.rejected_labels.get(k, k)}")
        return "\n".join(lines)


def _order_policies(model: ModelSpec, train: TrainSpec, names: tuple[str, ...]) -> tuple[str, ...]:
    """The save policies, resolved and deduplicated, most activation memory first (the memory bounds
    take the last one as the least any of them can reach)."""
    from .memory import activation_bytes_per_layer

    policies = {get_save_policy(n).name: get_save_policy(n) for n in names}
    if not policies:
        raise ConfigError(explain("no save policy to search", fix="pass recompute=('selective', 'full')"))
    probe = Layout(tp=1)

    def act(name: str) -> tuple[bool, float]:
        return (policies[name].full, -activation_bytes_per_layer(model, train.seq_len, 1, probe, recompute=name))

    return tuple(sorted(policies, key=act))


def _check_search_args(top, objective, max_tp, max_pp, max_cp, max_micro_batch, max_interleave):
    if not isinstance(top, int) or top < 1:
        raise ConfigError(explain("top must be a positive integer", value=top, fix="e.g. top=5"))
    if objective not in ("step_time", "cost"):
        raise ConfigError(explain("unknown search objective", value=objective, allowed="step_time, cost"))
    for name, v in (("max_tp", max_tp), ("max_pp", max_pp), ("max_cp", max_cp),
                    ("max_micro_batch", max_micro_batch), ("max_interleave", max_interleave)):
        if v is not None and (not isinstance(v, int) or v < 1):
            raise ConfigError(explain(f"{name} must be a positive integer", value=v))


def search_layouts(
    model: ModelSpec,
    cluster: ClusterSpec,
    train: TrainSpec,
    *,
    top: int = 5,
    objective: Objective = "step_time",
    max_tp: int | None = None,
    max_pp: int | None = None,
    max_cp: int | None = 16,
    max_micro_batch: int = 16,
    max_interleave: int = 8,
    zero_stages: tuple[int, ...] = (0, 1, 2, 3),
    recompute: tuple[str, ...] = _RECOMPUTE_ORDER,
    allow_offload: bool = True,
    allow_hsdp: bool = False,
    flash_attention: bool = True,
    memory_limit_bytes: float | None = None,
    efficiency: float | None = None,
    attention_efficiency: float | None = None,
    conventions: FlopConventions = FlopConventions(),
    dp_overlap: float | None = None,
    ep_overlap: float | None = None,
    max_rejected_examples: int = 5,
    fixed: dict[str, Any] | None = None,
    memory_conventions: MemoryConventions | None = None,
    memory_reserve_bytes: float | None = None,
    framework: str | FrameworkProfile | None = None,
    tp_overlap: float | None = None,
    pp_overlap: float | None = None,
    async_tp: bool | None = None,
    activation_offload: bool = False,
) -> SearchResult:
    """Enumerate layouts, prune early, time the ones that fit and rank them.

    Parameters
    ----------
    model, cluster, train
        What is trained, on what, with which batch.
    top
        How many plans to return.
    objective
        ``step_time`` (fastest step) or ``cost`` (lowest USD per token; equal to step time on a fixed
        cluster unless prices differ, kept for symmetry with callers that compare clusters).
    max_tp, max_pp, max_cp, max_micro_batch, max_interleave
        Bounds of the space (``max_tp`` defaults to GPUs per node, ``max_pp`` to n_layers).
        ``max_interleave`` (8) is the deepest interleave of published runs (NVIDIA's Llama 3.1 405B
        recipes: 8 virtual stages per rank on PP8 in Megatron-Bridge and MLPerf Training v5.1, 7 on
        PP9 in DGX Cloud Benchmarking 24.09); no framework caps it, and the model's per-chunk costs are
        unmeasured beyond it (docs/planner.md, Layout search).
    zero_stages, recompute, allow_offload, allow_hsdp, flash_attention
        Which options to consider.
    memory_limit_bytes
        Usable memory per GPU (default: the GPU's capacity minus its reserve).
    efficiency, attention_efficiency, conventions, dp_overlap, ep_overlap, memory_conventions, memory_reserve_bytes
        Passed to :func:`~scalelab.planner.plan.plan`.
    tp_overlap, pp_overlap, async_tp
        Passed to :func:`~scalelab.planner.plan.plan`; the step-time bounds hide no more of the TP and
        PP traffic than they do (with ``async_tp`` they keep the reduce-scatters it cannot fuse).
    framework
        A framework profile (:mod:`~scalelab.planner.frameworks`): its memory conventions and overlaps
        are the defaults, and the save policies searched are what it runs.
    fixed
        Layout fields to hold fixed, e.g. ``{"tp": 8, "pp": 16}`` (any field of
        :class:`~scalelab.planner.layout.Layout`); the rest is searched.
    activation_offload
        Also try CPU activation offloading (:attr:`~scalelab.planner.layout.Layout.offload_activation_layers`)
        on layouts without pipeline parallelism that do not fit without it: each such layout gets the fewest
        offloaded layers that make it fit (the traffic, and so the time it can expose, grows with them).

    Returns
    -------
    SearchResult

    Examples
    --------
    >>> from scalelab import get_model, get_cluster  # doctest: +SKIP
    >>> r = search_layouts(get_model("llama-3.1-405b"), get_cluster("h100-sxm", 16384),
    ...                    TrainSpec(seq_len=8192, global_batch_tokens=16_777_216))  # doctest: +SKIP
    >>> r.best[0].layout.short()  # doctest: +SKIP
    """
    check_plan_inputs(model, cluster, train)
    _check_search_args(top, objective, max_tp, max_pp, max_cp, max_micro_batch, max_interleave)
    space = _search_space(model, cluster, train, top=top, objective=objective, max_tp=max_tp, max_pp=max_pp,
                          max_cp=max_cp, max_micro_batch=max_micro_batch, max_interleave=max_interleave,
                          zero_stages=zero_stages, recompute=recompute, allow_offload=allow_offload,
                          allow_hsdp=allow_hsdp, flash_attention=flash_attention,
                          memory_limit_bytes=memory_limit_bytes, efficiency=efficiency,
                          attention_efficiency=attention_efficiency, conventions=conventions,
                          dp_overlap=dp_overlap, ep_overlap=ep_overlap, fixed=fixed,
                          memory_conventions=memory_conventions, memory_reserve_bytes=memory_reserve_bytes,
                          framework=framework, tp_overlap=tp_overlap, pp_overlap=pp_overlap, async_tp=async_tp,
                          activation_offload=activation_offload)
    rejections = _Rejections(max_rejected_examples, space.limit)
    groups = _candidates(space, rejections)
    return _rank(space, groups, rejections)


def bounded_candidates(model: ModelSpec, cluster: ClusterSpec, train: TrainSpec,
                       **options: Any) -> list[tuple[Plan, float, float]]:
    """Every layout that :func:`search_layouts` would bound, planned, with the lower bound of its group and
    its own, in the objective's units, before the bound prunes any: what the bounds are checked against
    (each must be at most the plan's score; a bound above it could prune the best layout).

    ``options`` are :func:`search_layouts`' keyword arguments, with the same defaults (``top`` and
    ``max_rejected_examples`` are ignored). Layouts that the memory bounds or dominance rules reject are
    left out, as the search leaves them out; every other one is planned, so this costs an exhaustive search.

    >>> from scalelab import get_model, get_cluster
    >>> rows = bounded_candidates(get_model("tiny-dense"), get_cluster("h100-sxm", 4),
    ...                           TrainSpec(seq_len=256, global_batch=8), recompute=("none",), max_micro_batch=1)
    >>> all(g <= lb <= p.step_time_s for p, g, lb in rows if p.feasible), len(rows) > 0
    (True, True)
    """
    import inspect

    params = inspect.signature(search_layouts).parameters
    allowed = {k: v.default for k, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY}
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise ConfigError(explain("unknown search option", value=bad, allowed=", ".join(sorted(allowed))))
    o = {**allowed, **options}
    o.pop("max_rejected_examples")
    _check_search_args(o["top"], o["objective"], o["max_tp"], o["max_pp"], o["max_cp"], o["max_micro_batch"],
                       o["max_interleave"])
    sp = _search_space(model, cluster, train, **o)
    rej = _Rejections(0, sp.limit)
    tie = itertools.count()
    out = []
    for group in _candidates(sp, rej):
        for lb, _, base, upd in _expand(sp, rej, group, tie):
            p = plan(model, cluster, train, base.model_copy(update=upd), _flops_cache=sp.flops, **sp.plan_kw)
            out.append((p, group[0], lb))
    return out


# ---- the candidate space ---------------------------------------------------------------------------------

@dataclass
class _SearchSpace:
    """What a search enumerates and how it times a layout, with every option resolved."""

    model: ModelSpec
    cluster: ClusterSpec
    train: TrainSpec
    top: int
    objective: str
    fixed: dict[str, Any]
    recompute: tuple[str, ...]
    """Save policies, most activation memory first."""
    zero_stages: tuple[int, ...]
    zero_off: list[tuple[int, str, str, str]]
    """(zero, offload_optimizer, offload_params, shard_group) choices."""
    micro_batches: list[int]
    max_tp: int
    max_pp: int
    max_cp: int
    max_interleave: int
    flash_attention: bool
    limit: float
    """Usable bytes per GPU."""
    memory_conventions: Any
    fw: Any
    """:class:`~scalelab.planner.plan.FrameworkOptions` the bound times with."""
    plan_kw: dict[str, Any]
    """What :func:`~scalelab.planner.plan.plan` is called with."""
    flops: dict[tuple[str], Any]
    timing: dict[str, tuple[float, float]]
    """Per save policy, (hardware, attention-core) FLOPs as the time model takes them (``timing_flops``)."""
    constraints: dict[str, Any]
    profile: Any = None
    """The :class:`~scalelab.planner.frameworks.FrameworkProfile`, if any (layout fields it sets)."""
    activation_offload: bool = False
    """Try CPU activation offloading on layouts without PP that do not fit (:func:`_offload_to_fit`)."""

    def ok(self, name: str, value: Any) -> bool:
        """``value`` is allowed for a field held by ``fixed`` (or the field is free)."""
        return name not in self.fixed or self.fixed[name] == value

    def interleaves(self, pp: int) -> list[int]:
        if pp == 1:
            return [1]
        L = self.model.n_layers
        cap = max(self.max_interleave, self.fixed.get("interleave", 0))  # a fixed interleave is searched
        return [v for v in _divisors(-(-L // pp)) if v <= cap and self.ok("interleave", v)
                and interleave_reason(L, pp, v) is None] or [1]

    def ep_volume_floor(self, recompute: str) -> float:
        """The least fraction of the expert all-to-all volume of a layout with save policy ``recompute``
        that any searched save policy runs: 0.5 when it reruns the forward and another does not (FP8
        dispatch 1 of 2, else 4 of 6 all-to-alls per layer), else 1."""
        if get_save_policy(recompute).reruns_tp_forward and not all(
                get_save_policy(r).reruns_tp_forward for r in self.recompute):
            return 0.5
        return 1.0

    def score(self, step_s: float) -> float:
        """What is ranked: seconds per step, or USD per token."""
        if self.objective == "cost":
            price = self.cluster.price_per_gpu_hour or 1.0
            return step_s * self.cluster.n_gpus * price / self.train.global_batch_tokens
        return step_s

    def degrees(self):
        """(tp, pp, cp, dp) of the space, tp innermost-first as Megatron orders ranks."""
        n = self.cluster.n_gpus
        for tp in (d for d in _divisors(n) if d <= max(self.max_tp, self.fixed.get("tp", 0)) and self.ok("tp", d)):
            for pp in (d for d in _divisors(n // tp) if d <= self.max_pp and self.ok("pp", d)):
                for cp in (d for d in _divisors(n // (tp * pp)) if d <= self.max_cp and self.ok("cp", d)):
                    dp = n // (tp * pp * cp)
                    if self.ok("dp", dp):
                        yield tp, pp, cp, dp


def _search_space(model: ModelSpec, cluster: ClusterSpec, train: TrainSpec, *, top, objective, max_tp, max_pp,
                  max_cp, max_micro_batch, max_interleave, zero_stages, recompute, allow_offload, allow_hsdp,
                  flash_attention, memory_limit_bytes, efficiency, attention_efficiency, conventions, dp_overlap,
                  ep_overlap, fixed, memory_conventions, memory_reserve_bytes, framework, tp_overlap=None,
                  pp_overlap=None, async_tp=None, activation_offload=False) -> _SearchSpace:
    """Check the search's options and resolve them (framework defaults, fixed fields, bounds)."""
    from .frameworks import get_framework
    from .memory import MemoryConventions

    if framework is not None:
        aliases = dict(get_framework(framework).policy_aliases)
        recompute = tuple(aliases.get(r, r) for r in recompute)
        if fixed and "recompute" in fixed:
            fixed = {**fixed, "recompute": aliases.get(str(fixed["recompute"]), fixed["recompute"])}
    # plan() is given the user's efficiencies and the framework, and applies its defaults itself (so its
    # options, and config hash, are those of `scalelab plan` with the same framework); the bound uses
    # the same resolved values.
    fw = framework_options(framework, cluster, efficiency=efficiency, attention_efficiency=attention_efficiency,
                           dp_overlap=dp_overlap, ep_overlap=ep_overlap, memory_conventions=memory_conventions,
                           tp_overlap=tp_overlap, pp_overlap=pp_overlap, async_tp=async_tp)
    _check_values(efficiency, None, None, fw.dp_overlap, memory_limit_bytes)
    if attention_efficiency is not None and not (isinstance(attention_efficiency, (int, float))
                                                 and 0 < attention_efficiency <= 1):
        raise ConfigError(explain("attention_efficiency must be a fraction of peak in (0, 1]",
                                  value=attention_efficiency))
    if not (isinstance(fw.ep_overlap, (int, float)) and 0 <= fw.ep_overlap <= 1):
        raise ConfigError(explain("ep_overlap must be in [0, 1]", value=fw.ep_overlap))
    fixed = dict(fixed or {})
    allowed_fixed = set(Layout.model_fields)
    bad = set(fixed) - allowed_fixed
    if bad:
        raise ConfigError(explain("unknown fixed layout field", value=sorted(bad),
                                  allowed=", ".join(sorted(allowed_fixed))))
    if fixed.get("offload_activation_layers"):
        raise ConfigError(explain("the search does not hold activation offloading fixed (offload_activation_layers)",
                                  value=fixed["offload_activation_layers"], allowed="0",
                                  fix="pass activation_offload=True (`--activation-offload`) to let the search "
                                      "offload the fewest layers that make a layout fit, or plan the layout with "
                                      "`scalelab plan ... --offload-activation-layers N` (pp 1)"))
    if "zero" in fixed:
        zero_stages = (int(fixed["zero"]),)
    if "recompute" in fixed:
        recompute = (str(fixed["recompute"]),)
    if "flash_attention" in fixed:
        flash_attention = bool(fixed["flash_attention"])
    for z in zero_stages:
        if z not in (0, 1, 2, 3):
            raise ConfigError(explain("unknown ZeRO stage", value=z, allowed="0, 1, 2, 3"))
    recompute = _order_policies(model, train, recompute)

    L = model.n_layers
    limit = memory_limit(cluster, memory_limit_bytes, memory_reserve_bytes)
    mconv = fw.memory_conventions or MemoryConventions()
    max_tp = max_tp or cluster.gpus_per_node
    max_pp = min(L, max_pp or L)
    max_cp = max_cp or train.seq_len
    mbs = [b for b in (2**i for i in range(0, 20))
           if b <= max_micro_batch and ("micro_batch" not in fixed or fixed["micro_batch"] == b)]
    zero_off: list[tuple[int, str, str, str]] = []
    for z in zero_stages:
        offloads = [("none", "none")]
        if allow_offload:
            offloads += [("cpu", "none"), ("cpu", "cpu")] if z == 3 else [("cpu", "none")]
        if "offload_optimizer" in fixed or "offload_params" in fixed:
            offloads = [(fixed.get("offload_optimizer", "none"), fixed.get("offload_params", "none"))]
        groups = ("dp", "node") if (allow_hsdp and z > 0) else ("dp",)
        if "shard_group" in fixed:
            groups = (fixed["shard_group"],)
        zero_off += [(z, oo, op, g) for g in groups for oo, op in offloads]
    plan_kw: dict[str, Any] = dict(efficiency=efficiency, conventions=conventions, dp_overlap=fw.dp_overlap,
                                   memory_limit_bytes=limit, memory_conventions=mconv,
                                   attention_efficiency=attention_efficiency, ep_overlap=fw.ep_overlap,
                                   framework=framework, tp_overlap=fw.tp_overlap, pp_overlap=fw.pp_overlap,
                                   async_tp=fw.async_tp)
    flops = {(rc,): flops_per_step(model, train, recompute=rc, conventions=conventions) for rc in recompute}
    constraints = {"max_tp": max_tp, "max_pp": max_pp, "max_cp": max_cp, "max_micro_batch": max_micro_batch,
                   "max_interleave": max_interleave, "zero_stages": list(zero_stages),
                   "recompute": list(recompute), "allow_offload": allow_offload, "allow_hsdp": allow_hsdp,
                   "flash_attention": flash_attention, "memory_limit_bytes": limit, "fixed": fixed,
                   "activation_offload": bool(activation_offload)}
    return _SearchSpace(
        model=model, cluster=cluster, train=train, top=top, objective=objective, fixed=fixed, recompute=recompute,
        zero_stages=tuple(zero_stages), zero_off=zero_off, micro_batches=mbs, max_tp=max_tp, max_pp=max_pp,
        max_cp=max_cp, max_interleave=max_interleave, flash_attention=flash_attention, limit=limit,
        memory_conventions=mconv, fw=fw, plan_kw=plan_kw, flops=flops,
        timing={rc: timing_flops(flops[(rc,)], rc) for rc in recompute},
        constraints=constraints, profile=get_framework(framework) if framework is not None else None,
        activation_offload=bool(activation_offload))


# ---- pruning rules and the bound -------------------------------------------------------------------------

# A candidate: (lower bound on its score, tie-breaker, base layout, the fields to set on it).
Candidate = tuple[float, int, Layout, dict]
# A group of candidates that share tp, pp, cp, dp, ep and etp: (lower bound on every member's score,
# tie-breaker, base layout, base with ep/etp, interleaves, members before pruning).
Group = tuple[float, int, Layout, Layout, list[int], int]


def _candidates(sp: _SearchSpace, rej: _Rejections) -> list[Group]:
    """Phase 1: the groups of the space (one per tp, pp, cp, dp, ep, etp), pruned by divisibility and
    structure (each pruned subtree counted in ``rej``), each with a lower bound on the step time of every
    layout in it (:func:`~scalelab.planner.step_time.group_step_time_lower_bound`). Their memory is
    checked and their members bounded only when the ranking reaches them (:func:`_expand`)."""
    model, cluster, train = sp.model, sp.cluster, sp.train
    B = train.global_batch
    ep_all = [1] if model.moe is None else _divisors(model.moe.n_experts)
    out: list[Group] = []
    tie = itertools.count()
    options = [(rc, *sp.timing[rc]) for rc in sp.recompute]
    eff = cluster.gpu.matmul_efficiency if sp.fw.efficiency is None else sp.fw.efficiency
    for tp, pp, cp, dp in sp.degrees():
        vs = sp.interleaves(pp)
        base = Layout(dp=dp, tp=tp, pp=pp, cp=cp, sequence_parallel=sp.fixed.get("sequence_parallel", tp > 1),
                      flash_attention=sp.flash_attention)
        ep_opts = [e for e in ep_all if (dp * cp) % e == 0 and sp.ok("ep", e)] or [1]
        etp_opts = [tp] if (model.moe is None or tp == 1) else [tp, 1]
        if "etp" in sp.fixed:
            etp_opts = [sp.fixed["etp"] or tp]
        inner = len(sp.zero_off) * len(sp.recompute) * len(sp.micro_batches) * len(vs)
        subtree = inner * len(ep_opts) * len(etp_opts)
        structural = check_layout(model, cluster, train, base)
        if structural:
            rej.add(base, structural, subtree)
            continue
        if B % dp:
            rej.add(base, [f"global_batch={B} sequences is not divisible by dp={dp}"], subtree)
            continue
        mbs = [b for b in sp.micro_batches if B % (dp * b) == 0] or [1]
        for ep, etp in itertools.product(ep_opts, etp_opts):
            ew_layout = base.model_copy(update={"ep": ep, "etp": None if etp == tp else etp})
            ep_floor = 0.0
            if ep > 1:  # the all-to-alls do not depend on ZeRO or offload: one layout's bound them all
                lay = ew_layout.model_copy(update={"recompute": sp.recompute[-1]})
                ep_floor = ep_exposed_floor_s(
                    comm_per_step(model, cluster, train, lay, dp=dp, ep_nodes_per_token=sp.fw.ep_nodes_per_token),
                    cluster, ep_overlap=sp.fw.ep_overlap, comm_sm_fraction=sp.fw.comm_sm_fraction,
                    volume_floor=sp.ep_volume_floor(lay.recompute))
            g = group_step_time_lower_bound(model, cluster, train, ew_layout, dp=dp, options=options,
                                            micro_batches=mbs, interleaves=vs, efficiency=eff,
                                            attention_efficiency=sp.fw.attention_efficiency,
                                            fused_elementwise=sp.fw.fused_elementwise, ep_floor_s=ep_floor,
                                            float8=sp.fw.float8, tp_overlap=sp.fw.tp_overlap,
                                            pp_overlap=sp.fw.pp_overlap, cp_ring=sp.fw.cp_ring,
                                            separate_qkv=sp.fw.separate_qkv, async_tp=sp.fw.async_tp,
                                            moe_permute=not sp.fw.moe_fused_dispatch)
            out.append((sp.score(g), next(tie), base, ew_layout, vs, inner))
    return out


def _expand(sp: _SearchSpace, rej: _Rejections, group: Group, tie: Any) -> list[Candidate]:
    """The members of one group that pass the memory bounds and dominance rules, with their bounds."""
    _, _, base, ew_layout, vs, inner = group
    out: list[Candidate] = []
    if _fits_most_sharded(sp, rej, ew_layout, inner):
        for lay0, upd0, bound in _zero_offload_groups(sp, rej, base, ew_layout, vs):
            _bounded(sp, rej, lay0, upd0, bound, base, vs, out, tie)
    return out


def _fits_most_sharded(sp: _SearchSpace, rej: _Rejections, ew_layout: Layout, inner: int) -> bool:
    """Memory bound: the least memory any ZeRO/offload choice can reach is the most sharded one's, with
    full recompute and micro-batch 1; if even that does not fit, none of them does."""
    from .memory import memory_per_gpu

    if len(sp.zero_off) <= 1:
        return True
    z_min, oo_min, op_min, _ = max(sp.zero_off, key=lambda o: (o[0], o[1] != "none", o[2] != "none", o[3] == "dp"))
    least = ew_layout.model_copy(update={"zero": z_min, "offload_optimizer": oo_min, "offload_params": op_min,
                                         "recompute": sp.recompute[-1]})
    assert least.dp is not None  # every base layout is built with its dp
    need = memory_per_gpu(sp.model, sp.train, _most_offloaded(sp, least), dp=least.dp,
                          gpus_per_node=sp.cluster.gpus_per_node, conventions=sp.memory_conventions).total_bytes
    if need > sp.limit:
        rej.add(least, [f"out of memory by {(need - sp.limit) / GiB:.1f} GiB even with ZeRO-{z_min}, "
                        f"offload, full recompute and micro-batch 1"], inner, needs_bytes=need)
        return False
    return True


def _zero_offload_groups(sp: _SearchSpace, rej: _Rejections, base: Layout, ew_layout: Layout, vs: list[int]):
    """The ZeRO/offload choices of one (degrees, ep, etp) that survive dominance and their memory bound,
    each as (its layout with full recompute and micro-batch 1, the fields it sets, its step-time bound)."""
    from .memory import memory_per_gpu

    model, cluster, train = sp.model, sp.cluster, sp.train
    dp, cp, tp = base.dp, base.cp, base.tp
    assert dp is not None
    ep, etp = ew_layout.ep, ew_layout.expert_tp
    sub = len(sp.recompute) * len(sp.micro_batches) * len(vs)
    for z, oo, op, sg in sp.zero_off:
        edp = dp * cp * tp // (ep * etp)  # expert-data-parallel group (MoE)
        if dp * cp == 1 and edp == 1 and (z > 0 or sg != "dp") and 0 in sp.zero_stages:
            rej.add(functools.partial(base.model_copy, update={"zero": z}),
                    ["duplicate of zero=0: a data-parallel group of one has nothing to shard"], sub,
                    "ZeRO>0 with dp*cp=1 (duplicate of ZeRO-0)")
            continue
        if (dp * cp > 1 or edp > 1) and z == 0 and 1 in sp.zero_stages:
            rej.add(functools.partial(base.model_copy, update={"zero": 0, "offload_optimizer": oo}),
                    ["dominated by zero=1: the same bytes on the wire (reduce-scatter + all-gather "
                     "= all-reduce), less memory and a sharded optimizer step"], sub,
                    "ZeRO-0 (dominated by ZeRO-1: same traffic, less memory)")
            continue
        upd0 = {"ep": ep, "etp": None if etp == tp else etp, "zero": z, "offload_optimizer": oo,
                "offload_params": op, "shard_group": sg,
                **(sp.profile.layout_defaults(base.pp, z) if sp.profile is not None else {}),
                **({"zero3_gather": sp.fixed["zero3_gather"]} if "zero3_gather" in sp.fixed else {})}
        lay0 = base.model_copy(update={**upd0, "recompute": sp.recompute[-1], "micro_batch": 1, "interleave": 1})
        mem = memory_per_gpu(model, train, lay0, dp=dp, gpus_per_node=cluster.gpus_per_node,
                             conventions=sp.memory_conventions)
        least, most = mem.total_bytes, _most_offloaded(sp, lay0)
        if least > sp.limit and most is not lay0:  # the least memory activation offloading can reach
            least = memory_per_gpu(model, train, most, dp=dp, gpus_per_node=cluster.gpus_per_node,
                                   conventions=sp.memory_conventions).total_bytes
        if least > sp.limit:
            rej.add(lay0, [f"out of memory by {(least - sp.limit) / GiB:.1f} GiB even "
                           f"with full recompute and micro-batch 1"], sub, needs_bytes=least)
            continue
        host, host_opt = _least_offloaded_states(sp, lay0, mem, vs)
        host_limit = cluster.gpu.host_memory_bytes_per_gpu
        if host > host_limit:
            rej.add(lay0, [f"offload needs {host / GiB:.1f} GiB of host memory per GPU, more "
                           f"than {host_limit / GiB:.1f} GiB"], sub)
            continue
        dp_comm = comm_per_step(model, cluster, train, lay0, dp=dp,
                                trainable_fraction=_trainable_fraction(model, train, mem),
                                ep_nodes_per_token=sp.fw.ep_nodes_per_token, memory_conventions=sp.memory_conventions)
        eff = cluster.gpu.matmul_efficiency if sp.fw.efficiency is None else sp.fw.efficiency
        # the fewest all-to-alls of the save policies searched, against lay0's (the policy that recomputes most)
        ep_floor = sp.ep_volume_floor(lay0.recompute)
        bound = StepTimeBound(model, cluster, train, lay0, dp=dp, efficiency=eff,
                              attention_efficiency=sp.fw.attention_efficiency, dp_overlap=sp.fw.dp_overlap,
                              dp_comm=dp_comm, host_optimizer_s=host_opt, fused_elementwise=sp.fw.fused_elementwise,
                              ep_overlap=sp.fw.ep_overlap, comm_sm_fraction=sp.fw.comm_sm_fraction,
                              dp_comm_sm_fraction=sp.fw.dp_comm_sm_fraction, ep_volume_floor=ep_floor,
                              float8=sp.fw.float8, tp_overlap=sp.fw.tp_overlap,
                              pp_overlap=sp.fw.pp_overlap, cp_ring=sp.fw.cp_ring, separate_qkv=sp.fw.separate_qkv,
                              async_tp=sp.fw.async_tp, moe_permute=not sp.fw.moe_fused_dispatch)
        yield lay0, upd0, bound


def _most_offloaded(sp: _SearchSpace, lay: Layout) -> Layout:
    """``lay`` with every layer but one offloading its activations, when the search may offload them and ``lay``
    has no pipeline parallelism (the least memory activation offloading can reach); else ``lay`` itself."""
    if not sp.activation_offload or lay.pp != 1 or sp.model.n_layers < 2:
        return lay
    return lay.model_copy(update={"offload_activation_layers": sp.model.n_layers - 1})


def _offload_to_fit(sp: _SearchSpace, lay: Layout) -> tuple[Layout, Any] | None:
    """``lay`` (out of memory as it is) with the fewest offloaded layers that make it fit, and its memory
    (memory falls as layers are offloaded, so a bisection finds the fewest); None when the search may not
    offload activations, ``lay`` has pipeline parallelism, or even all layers but one do not make it fit."""
    from .memory import memory_per_gpu

    most = _most_offloaded(sp, lay)
    if most is lay:
        return None
    dp = lay.dp
    assert dp is not None  # every base layout is built with its dp

    def memory(n: int) -> Any:
        return memory_per_gpu(sp.model, sp.train, lay.model_copy(update={"offload_activation_layers": n}),
                              dp=dp, gpus_per_node=sp.cluster.gpus_per_node, conventions=sp.memory_conventions)

    lo, hi = 1, most.offload_activation_layers
    best = memory(hi)
    if best.total_bytes > sp.limit:
        return None
    while lo < hi:  # the fewest n whose memory fits lies in [lo, hi]
        mid = (lo + hi) // 2
        m = memory(mid)
        if m.total_bytes <= sp.limit:
            hi, best = mid, m
        else:
            lo = mid + 1
    return lay.model_copy(update={"offload_activation_layers": hi}), best


def _least_offloaded_states(sp: _SearchSpace, lay0: Layout, mem: Any, vs: list[int]) -> tuple[float, float]:
    """The least host bytes of offloaded states, and the least CPU optimizer step (seconds, never overlapped:
    a valid part of the bound), of any layout that differs from ``lay0`` in save policy, micro-batch or
    interleave (one of ``vs``). plan() takes both from the pipeline rank that offloads most, which does not
    depend on the save policy or micro-batch but, under pipeline parallelism, on the stage split: so the
    least over the interleaves of each one's largest over the ranks
    (:func:`~scalelab.planner.memory.offloaded_state_bytes_by_rank`)."""
    from .memory import offloaded_state_bytes_by_rank

    host, nvme = getattr(mem, "host_bytes", 0) or 0, getattr(mem, "nvme_bytes", 0) or 0
    if not (host or nvme):
        return 0.0, 0.0
    per_v = [(host, nvme)]
    if lay0.pp > 1:
        assert lay0.dp is not None  # every base layout is built with its dp
        per_v = []
        for v in vs:
            ranks = offloaded_state_bytes_by_rank(
                sp.model, sp.train, lay0.model_copy(update={"interleave": v}), dp=lay0.dp,
                gpus_per_node=sp.cluster.gpus_per_node, conventions=sp.memory_conventions)
            per_v.append((max(h for h, _ in ranks), max(n for _, n in ranks)))
    return (min(h for h, _ in per_v),
            min(host_optimizer_s(sp.cluster, host_state_bytes=h, nvme_state_bytes=n) for h, n in per_v))

def _bounded(sp: _SearchSpace, rej: _Rejections, lay0: Layout, upd0: dict, bound: StepTimeBound, base: Layout,
             vs: list[int], out: list[Candidate], tie: Any) -> None:
    """The save policies, micro-batches and interleaves of one ZeRO/offload group that divide the batch,
    appended to ``out`` with their step-time bound (:class:`~scalelab.planner.step_time.StepTimeBound`)."""
    B, dp, pp = sp.train.global_batch, base.dp, base.pp
    assert dp is not None
    mbs = sp.micro_batches
    for rc in sp.recompute:
        hardware, att = sp.timing[rc]
        for i, mb in enumerate(mbs):
            if B % (dp * mb):
                rej.add(functools.partial(lay0.model_copy, update={"recompute": rc, "micro_batch": mb}),
                        [f"global_batch={B} sequences is not divisible by dp*micro_batch={dp * mb}"],
                        len(vs) * (len(mbs) - i))
                break  # powers of two: every larger micro-batch fails too
            m = B // (dp * mb)
            for v in vs:
                upd = {**upd0, "recompute": rc, "micro_batch": mb, "interleave": v}
                if v > 1 and m % pp:
                    rej.add(functools.partial(lay0.model_copy, update=upd),
                            [f"the interleaved schedule needs micro-batches per step ({m}) "
                             f"to be a multiple of pp={pp}"])
                    continue
                lb = sp.score(bound(rc, mb, v, hardware_flops=hardware, attention_flops=att))
                out.append((lb, next(tie), base, upd))


# ---- ranking ---------------------------------------------------------------------------------------------

def _rank(sp: _SearchSpace, groups: list[Group], rej: _Rejections) -> SearchResult:
    """Phase 2, branch and bound: take groups and candidates best bound first; a group is expanded into
    its candidates (memory checked, each bounded), a candidate is evaluated; stop when no remaining bound
    can enter the top. Skip candidates that a smaller out-of-memory micro-batch or a fitting layout
    without offload already decides."""
    from .memory import memory_per_gpu

    model, cluster, train, limit = sp.model, sp.cluster, sp.train, sp.limit
    heap: list[tuple[float, float, int, Plan]] = []  # (-score, -memory, tie, plan): heap[0] is the worst kept
    tie = itertools.count()
    # (bound, order, candidate or None, group or None): groups and candidates in one best-first queue
    pending: list[tuple[float, int, Candidate | None, Group | None]] = [(g[0], g[1], None, g) for g in groups]
    heapq.heapify(pending)
    order = itertools.count(len(groups))
    oom: dict[tuple, list[tuple[int, int]]] = {}
    fits: set[tuple] = set()
    n_feasible = n_evaluated = n_bound = 0
    while pending:
        lb, _, cand, group = pending[0]
        if len(heap) >= sp.top and lb > -heap[0][0]:
            n_bound = sum(g[5] if g is not None else 1 for _, _, _, g in pending)
            break
        heapq.heappop(pending)
        if group is not None:
            for c in _expand(sp, rej, group, tie):
                heapq.heappush(pending, (c[0], next(order), c, None))
            continue
        assert cand is not None
        _, _, base, upd = cand
        mkey = (id(base), upd["ep"], upd["etp"], upd["zero"], upd["offload_optimizer"], upd["offload_params"],
                upd["shard_group"], upd["recompute"])
        mb, v = upd["micro_batch"], upd["interleave"]
        prev = oom.get(mkey)
        if prev and any(mb0 <= mb and (v0 == v or v0 == 1) for mb0, v0 in prev):
            # Activations grow with the micro-batch, and interleaving (v > 1) holds more in flight than
            # plain 1F1B (Narayanan 2021: x (1 + (p-1)/(p v))): a smaller one of these already failed.
            rej.add(functools.partial(base.model_copy, update=upd),
                    ["out of memory (a smaller micro-batch of this layout already is)"], 1, "out of memory")
            continue
        skey = mkey[:4] + mkey[6:] + (mb, v)  # the same layout without offload
        if (upd["offload_optimizer"] != "none" or upd["offload_params"] != "none") and skey in fits:
            rej.add(functools.partial(base.model_copy, update=upd),
                    ["dominated by the same layout without offload, which fits and moves fewer bytes"], 1,
                    "offload when the layout fits without it (dominated)")
            continue
        lay = base.model_copy(update=upd)
        assert lay.dp is not None  # every base layout is built with its dp
        n_evaluated += 1
        mem = memory_per_gpu(model, train, lay, dp=lay.dp, gpus_per_node=cluster.gpus_per_node,
                             conventions=sp.memory_conventions)
        if mem.total_bytes > limit and (rescued := _offload_to_fit(sp, lay)) is not None:
            lay, mem = rescued  # the fewest offloaded layers that make it fit
        if mem.total_bytes > limit:  # the same reason plan() gives, without timing a layout that cannot run
            rej.add(lay, [f"out of memory by {(mem.total_bytes - limit) / GiB:.1f} GiB "
                          f"(needs {mem.total_bytes / GiB:.1f} GiB per GPU, has {limit / GiB:.1f} GiB)"],
                    needs_bytes=mem.total_bytes)
            oom.setdefault(mkey, []).append((mb, v))
            continue
        p = plan(model, cluster, train, lay, _flops_cache=sp.flops, _memory=mem, **sp.plan_kw)
        if not p.feasible:
            rej.add(lay, p.reasons)
            if p.reasons[0].startswith("out of memory"):
                oom.setdefault(mkey, []).append((mb, v))
            continue
        n_feasible += 1
        if upd["offload_optimizer"] == "none" and upd["offload_params"] == "none" and not lay.offload_activation_layers:
            fits.add(skey)
        key = (-sp.score(p.step_time_s), -p.memory.total_bytes, next(tie), p)
        if len(heap) < sp.top:
            heapq.heappush(heap, key)
        elif key[:2] > heap[0][:2]:
            heapq.heapreplace(heap, key)
    best = tuple(it[3] for it in sorted(heap, key=lambda it: (-it[0], -it[1], it[2])))
    rejected = tuple(r for exs in rej.examples.values() for r in exs)
    return SearchResult(best=best, rejected=rejected, rejected_counts=dict(rej.counts),
                        n_explored=rej.n + n_feasible + n_bound, n_feasible=n_feasible, n_evaluated=n_evaluated,
                        n_pruned_by_bound=n_bound, objective=sp.objective, constraints=sp.constraints,
                        rejected_labels=rej.labels(), plan_options=dict(sp.plan_kw))
