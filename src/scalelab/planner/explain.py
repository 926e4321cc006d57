"""Why the search prefers its best layout over another: the two plans term by term.

:func:`explain_layout` evaluates a layout the user names (e.g. the one a published run used) with the
same options as the search, and puts its step-time terms (compute, each communication axis, bubble,
exposed DP traffic, optimizer, offload) and its memory terms beside those of the search's best plan.
The differences add up to the difference in step time, so the table says which terms decide.

:func:`parse_layout` reads the short form that ``str(layout)`` prints (``dp128 tp8 pp16 v4 z1 sp sel mb1``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, explain
from ..units import GiB
from .layout import Layout
from .plan import Plan, plan
from .policy import SAVE_POLICIES, get_save_policy

if TYPE_CHECKING:
    from .search import SearchResult

__all__ = ["LayoutComparison", "explain_layout", "parse_layout"]

_SHORT_POLICY = {"norc": "none", "sel": "selective", "full": "full"}
_TOKEN = re.compile(r"^(dp|tp|pp|v|cp|ep|etp|mb|oa)(\d+)$")

STEP_TERMS = (("matmul (incl. attention)", "matmul_s"), ("elementwise", "elementwise_s"), ("tp comm", "tp_s"),
              ("cp ring", "cp_s"), ("ep all-to-all", "ep_s"), ("pp send/recv", "pp_s"), ("bubble", "bubble_s"),
              ("dp/zero exposed", "dp_exposed_s"), ("optimizer", "optimizer_s"),
              ("offload exposed", "offload_exposed_s"), ("cpu optimizer", "host_optimizer_s"))
"""(label, StepTime field) of every term that adds up to the step time."""

MEMORY_TERMS = (("weights", "weights_bytes"), ("gradients", "gradients_bytes"), ("optimizer", "optimizer_bytes"),
                ("activations", "activations_bytes"), ("other", "other_bytes"))


def parse_layout(text: str) -> Layout:
    """The :class:`Layout` of a short form as ``str(layout)`` prints it.

    Tokens: ``dpN tpN ppN vN cpN epN etpN mbN``, ``zN`` (``zNh`` for HSDP; ``z3s``, ``z3hs`` for ZeRO-3
    gathering once per step), ``sp``, a save policy
    (``norc``, ``sel``, ``full`` or any policy name), ``oo-cpu|nvme``, ``op-cpu|nvme``, ``oaN`` (the first N
    layers' activations offloaded to the CPU); ``dp*`` leaves dp to fill the cluster. Sequence parallelism is on
    only with ``sp``.

    >>> str(parse_layout("dp128 tp8 pp16 v4 z1 sp sel mb1"))
    'dp128 tp8 pp16 v4 z1 sp sel mb1'
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(explain("empty layout", fix="e.g. 'dp128 tp8 pp16 v4 z1 sp sel mb1'"))
    names = {"dp": "dp", "tp": "tp", "pp": "pp", "v": "interleave", "cp": "cp", "ep": "ep", "etp": "etp",
             "mb": "micro_batch", "oa": "offload_activation_layers"}
    fields: dict[str, Any] = {"sequence_parallel": False}
    for tok in text.replace(",", " ").split():
        t = tok.strip().lower()
        hit = _TOKEN.match(t)
        if hit:
            fields[names[hit.group(1)]] = int(hit.group(2))
        elif t == "dp*":
            fields.pop("dp", None)
        elif re.fullmatch(r"z[0-3]h?|z3h?s", t):
            fields["zero"] = int(t[1])
            fields["shard_group"] = "node" if "h" in t else "dp"
            fields["zero3_gather"] = "step" if t.endswith("s") else "micro-batch"
        elif t == "sp":
            fields["sequence_parallel"] = True
        elif t.startswith(("oo-", "op-")):
            fields["offload_optimizer" if t.startswith("oo-") else "offload_params"] = t[3:]
        elif t in _SHORT_POLICY or t in SAVE_POLICIES or "+" in t:
            fields["recompute"] = get_save_policy(_SHORT_POLICY.get(t, t)).name
        else:
            raise ConfigError(explain("unknown token in layout", value=tok,
                                      allowed="dpN tpN ppN vN cpN epN etpN mbN zN[h] z3[h]s sp norc|sel|full|<policy> "
                                              "oo-cpu op-cpu oaN",
                                      fix="write it as `scalelab search` prints layouts"))
    return Layout(**fields)


_BOUNDS = (("tp", "max_tp"), ("pp", "max_pp"), ("cp", "max_cp"), ("micro_batch", "max_micro_batch"),
           ("interleave", "max_interleave"))


def outside_space(layout: Layout, constraints: dict[str, Any]) -> list[str]:
    """The bounds of a search (``SearchResult.constraints``) that ``layout`` lies outside, as text.

    >>> outside_space(Layout(pp=16, interleave=8), {"max_interleave": 4, "max_cp": 16})
    ['interleave=8 > max_interleave=4']
    """
    out = [f"{field}={getattr(layout, field)} > {key}={constraints[key]}" for field, key in _BOUNDS
           if constraints.get(key) is not None and getattr(layout, field) > constraints[key]]
    for key, allowed, value in (("zero_stages", constraints.get("zero_stages"), layout.zero),
                                ("recompute", constraints.get("recompute"), layout.recompute)):
        if allowed is not None and value not in allowed:
            out.append(f"{value!r} not in {key}={list(allowed)}")
    if constraints.get("allow_hsdp") is False and layout.shard_group == "node":
        out.append("HSDP (shard_group='node') but allow_hsdp=False")
    offloaded = layout.offload_optimizer != "none" or layout.offload_params != "none"
    if constraints.get("allow_offload") is False and offloaded:
        out.append("offload but allow_offload=False")
    if layout.offload_activation_layers and not constraints.get("activation_offload"):
        out.append(f"offload_activation_layers={layout.offload_activation_layers}: the search did not try "
                   f"activation offloading (activation_offload=False, `--activation-offload`)")
    if constraints.get("flash_attention") is not None and layout.flash_attention != constraints["flash_attention"]:
        out.append(f"flash_attention={layout.flash_attention} but the search used {constraints['flash_attention']}")
    for field, value in (constraints.get("fixed") or {}).items():
        if getattr(layout, field, value) != value:
            out.append(f"{field}={getattr(layout, field)} but the search held {field}={value}")
    return out


@dataclass(frozen=True)
class LayoutComparison:
    """The search's best plan and another plan, side by side, term by term."""

    best: Plan
    other: Plan
    outside: tuple[str, ...] = ()
    """The search bounds the other layout lies outside (:func:`outside_space`); empty when inside."""

    def _side_by_side(self, part: str, terms: tuple[tuple[str, str], ...]) -> list[tuple[str, float, float]]:
        nan = float("nan")
        objs = (getattr(self.best, part), getattr(self.other, part))
        def val(obj: Any, name: str) -> float:
            return float(getattr(obj, name, nan)) if obj is not None else nan

        return [(label, val(objs[0], name), val(objs[1], name)) for label, name in terms]

    def step_terms(self) -> list[tuple[str, float, float]]:
        """(term, best seconds, other seconds) for every step-time term; NaN when a plan has no model time."""
        return self._side_by_side("time", STEP_TERMS)

    def memory_terms(self) -> list[tuple[str, float, float]]:
        """(term, best bytes, other bytes) per GPU."""
        return self._side_by_side("memory", MEMORY_TERMS)

    @property
    def slowdown(self) -> float:
        """other / best step time - 1."""
        return self.other.step_time_s / self.best.step_time_s - 1.0

    def deciding_terms(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` terms with the largest |other - best| seconds, largest first."""
        diffs = [(k, b - a) for k, a, b in self.step_terms() if a == a and b == b]
        return sorted(diffs, key=lambda kv: -abs(kv[1]))[:n]

    def to_dict(self) -> dict[str, Any]:
        return {"best": self.best.to_dict(), "other": self.other.to_dict(), "slowdown": self.slowdown,
                "step_terms_s": [{"term": k, "best": a, "other": b, "difference": b - a}
                                 for k, a, b in self.step_terms()],
                "memory_terms_bytes": [{"term": k, "best": a, "other": b, "difference": b - a}
                                       for k, a, b in self.memory_terms()]}

    def report(self) -> str:
        b, o = self.best, self.other
        lines = [f"Why {b.layout.short()} (search's best) over {o.layout.short()}",
                 f"  {b.model.name} on {b.cluster.n_gpus} x {b.cluster.gpu.name}, "
                 f"{b.train.global_batch_tokens / 1e6:.3g}M tokens per step"]
        if not o.feasible:
            lines.append("  the other layout cannot run: " + "; ".join(o.reasons))
        if o.time is None and o.memory is None:  # impossible degrees: a table of NaN would explain nothing
            lines.append("  it is impossible rather than slower, so there are no terms to compare: change its "
                         "degrees as the reasons say, or start from one of the layouts `scalelab search` lists")
            return "\n".join(lines)
        lines.append(f"  {'step time, s':<26}{'best':>9}{'other':>9}{'other-best':>12}")
        for k, x, y in self.step_terms():
            if x or y:
                lines.append(f"  {k:<26}{x:9.3f}{y:9.3f}{y - x:+12.3f}")
        lines.append(f"  {'total':<26}{b.step_time_s:9.3f}{o.step_time_s:9.3f}{o.step_time_s - b.step_time_s:+12.3f}"
                     f"  ({self.slowdown * 100:+.1f}%)")
        if b.time is not None and o.time is not None:
            m_b = max(1, b.train.global_batch // (b.layout.dp or 1) // b.layout.micro_batch)
            m_o = max(1, o.train.global_batch // (o.layout.dp or 1) // o.layout.micro_batch)
            lines.append(f"  micro-batches per step {m_b} vs {m_o}; bubble (p-1)/(v m) "
                         f"{(b.layout.pp - 1) / (b.layout.interleave * m_b):.3f} vs "
                         f"{(o.layout.pp - 1) / (o.layout.interleave * m_o):.3f} of the ideal time")
        lines.append(f"  {'memory per GPU, GiB':<26}{'best':>9}{'other':>9}{'other-best':>12}")
        for k, x, y in self.memory_terms():
            lines.append(f"  {k:<26}{x / GiB:9.2f}{y / GiB:9.2f}{(y - x) / GiB:+12.2f}")
        if b.memory is not None and o.memory is not None:
            lines.append(f"  {'total':<26}{b.memory.total_bytes / GiB:9.2f}{o.memory.total_bytes / GiB:9.2f}"
                         f"{(o.memory.total_bytes - b.memory.total_bytes) / GiB:+12.2f}"
                         f"  (limit {b.memory_limit_bytes / GiB:.2f})")
        top = ", ".join(f"{k} {d:+.3f} s" for k, d in self.deciding_terms())
        lines.append(f"  deciding terms: {top}")
        if self.outside:
            lines.append("  the other layout is outside the searched space: " + "; ".join(self.outside))
        elif o.feasible and self.slowdown < -1e-9:
            lines.append("  the other layout is faster than the search's best: it makes a choice the search does")
            lines.append("  not vary (a micro-batch that is not a power of two, ZeRO-3 gathering once per step, ...),")
            lines.append("  or the search pruned it wrongly (please report that)")
        return "\n".join(lines)


def explain_layout(result: SearchResult, layout: Layout | str, **plan_options: Any) -> LayoutComparison:
    """Compare ``layout`` with the best plan of a search, term by term.

    Parameters
    ----------
    result
        A :func:`~scalelab.planner.search.search_layouts` result with at least one plan.
    layout
        The layout to explain, or its short form (:func:`parse_layout`); ``dp`` fills the cluster when
        left out.
    plan_options
        Options for :func:`~scalelab.planner.plan.plan`; by default those the search evaluated with.

    Examples
    --------
    >>> from scalelab import get_model, get_cluster  # doctest: +SKIP
    >>> r = search_layouts(get_model("llama-3.1-405b"), get_cluster("h100-sxm", 16384),
    ...                    TrainSpec(seq_len=8192, global_batch=2048))  # doctest: +SKIP
    >>> print(explain_layout(r, "tp8 pp16 v4 z1 sp norc mb1").report())  # doctest: +SKIP
    """
    if not result.best:
        raise ConfigError(explain("the search found no plan to compare with", fix="relax the search constraints"))
    best = result.best[0]
    lay = parse_layout(layout) if isinstance(layout, str) else layout
    if result.plan_options:  # what the search planned with, framework included
        opts = dict(result.plan_options)
    else:  # a result built by hand: the options its best plan records
        opts = {k: v for k, v in best.options.items()
                if k in ("efficiency", "dp_overlap", "memory_limit_bytes", "attention_efficiency", "ep_overlap",
                         "tp_overlap", "pp_overlap", "async_tp")}
        if best.options.get("memory_conventions") is not None:
            from .memory import MemoryConventions

            opts["memory_conventions"] = MemoryConventions(**best.options["memory_conventions"])
        opts["conventions"] = best.conventions
    opts.update(plan_options)
    other = plan(best.model, best.cluster, best.train, lay, **opts)
    return LayoutComparison(best=best, other=other, outside=tuple(outside_space(lay, result.constraints)))
