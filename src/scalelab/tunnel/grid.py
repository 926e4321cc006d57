"""Grids of wind-tunnel runs: isoFLOP, size x tokens, learning rate x batch, dense vs MoE.

A grid is a list of ``RunConfig``. It comes from a TOML file (:func:`load_grid`), a Python recipe (a
``.py`` file whose ``grid()`` function returns configs; see ``recipes/``) or the builder functions here.
Every config is validated when the grid is loaded, so an impossible shape (heads not dividing
``d_model``) fails before anything trains. Each run is keyed by ``RunConfig.content_hash()``; the store
skips keys it has already finished.

Model family
------------
:func:`model_for_params` turns a target parameter count into a shape with one small rule, so grids can
name sizes instead of shapes:

* heads have width ``d_head`` (default 32), so ``d_model = n_heads * d_head``;
* the MLP width is ``d_ff = ffn_mult * d_model`` rounded up to a multiple of ``multiple_of`` (SwiGLU's
  8/3 keeps its three matrices at the cost of a 4x GELU MLP; Llama, Touvron et al. 2023 §2.2);
* depth follows a target aspect ratio ``d_model / n_layers`` (default 32; the small models of Kaplan
  et al. 2020 Fig. 5 and MiniCPM's wind tunnel sit between 16 and 100, where loss is flat in shape);
* among all ``(n_heads, n_layers)`` with ``d_model / n_layers`` within a factor 2 of the target (one
  layer at least), the
  shape whose parameter count is closest to the target in log space wins; ties go to the aspect ratio
  closer to the target. ``count`` says which N is targeted (``"total"``, Chinchilla's, by default).

Tokens of an isoFLOP point
--------------------------
``D = C / (6 N)`` with ``N`` the active parameters (Hoffmann et al. 2022 §3.2; Kaplan et al. 2020 eq.
2.1), or ``D = C / F`` with ``F`` the planner's exact training FLOPs per token (``flops="planner"``;
:func:`scalelab.planner.flops.flops_per_token`). ``D`` is rounded to whole optimizer steps.

TOML format
-----------
::

    name = "isoflop-tiny"
    [defaults]                 # RunConfig fields shared by every run
    seq_len = 64
    batch_size = 8
    lr = 3e-3                  # or a law: "law:li2025", "law:deepseek", "fit.json" (tunnel/hplaws.py)
    warmup_fraction = 0.1      # grid helper: warmup_tokens = 0.1 * n_tokens
    [defaults.model]           # ModelSpec fields shared by every model (or family-rule knobs)
    vocab_size = 256

    [[isoflop]]                # compute budgets x model sizes, tokens derived
    budgets_flops = [3e11, 1e12]
    n_params = [1e5, 2e5, 4e5]

    [[product]]                # sizes x token counts
    n_params = [1e5, 3e5]
    n_tokens = [2e5, 8e5]

    [[sweep]]                  # learning rate x batch size at one size and token count
    n_params = 2e5
    n_tokens = 4e5
    lr = [1e-3, 3e-3]
    batch_size = [4, 8]

    [[dense_vs_moe]]           # dense and MoE of equal active size at equal compute
    budgets_flops = [1e12]
    n_params = [2e5]
    n_experts = 8
    top_k = 2

    [[run]]                    # one explicit run
    model = {n_layers = 2, d_model = 64, n_heads = 4, d_ff = 192}
    n_tokens = 100000

Any other key inside a block overrides ``[defaults]`` for that block; ``models = [{...}, ...]`` gives
explicit shapes instead of ``n_params``.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from ..arch.spec import ModelSpec, MoESpec
from ..errors import ConfigError, ScalelabError, explain
from ..planner.flops import training_flops

if TYPE_CHECKING:
    from .train import RunConfig

__all__ = [
    "Grid",
    "dense_vs_moe_grid",
    "isoflop_grid",
    "load_grid",
    "lr_batch_grid",
    "make_config",
    "model_for_params",
    "moe_twin",
    "product_grid",
    "tokens_for_budget",
]

#: Keys of ``[defaults]`` that are grid helpers, not RunConfig fields.
_HELPER_KEYS = ("warmup_fraction",)
#: Keys of ``[defaults.model]`` that steer the family rule instead of fixing a ModelSpec field.
_FAMILY_KEYS = ("d_head", "aspect_ratio", "ffn_mult", "multiple_of", "count", "max_layers")


def _run_config_cls() -> type[RunConfig]:
    from .train import RunConfig

    return RunConfig


def _ffn_width(d_model: int, ffn_kind: str, ffn_mult: float | None, multiple_of: int) -> int:
    mult = ffn_mult if ffn_mult is not None else (8.0 / 3.0 if ffn_kind == "swiglu" else 4.0)
    return int(multiple_of * math.ceil(mult * d_model / multiple_of))


def model_for_params(
    n_params: float,
    *,
    vocab_size: int = 256,
    seq_len: int = 2048,
    d_head: int = 32,
    aspect_ratio: float = 32.0,
    ffn_kind: Literal["gelu", "swiglu"] = "swiglu",
    ffn_mult: float | None = None,
    multiple_of: int = 16,
    count: Literal["total", "non_embedding"] = "total",
    max_layers: int = 64,
    moe: MoESpec | dict[str, Any] | None = None,
    **fields: Any,
) -> ModelSpec:
    """The family's shape closest to ``n_params`` parameters (rule in the module docstring).

    Parameters
    ----------
    n_params : float
        Target parameter count (total, or non-embedding with ``count="non_embedding"``).
    vocab_size, seq_len : int
        Fixed by the tokenizer and the run.
    d_head : int
        Width of one attention head; ``d_model`` is a multiple of it, so heads always divide ``d_model``.
    aspect_ratio : float
        Target ``d_model / n_layers``.
    ffn_kind, ffn_mult, multiple_of
        MLP type, width multiplier (8/3 for SwiGLU, 4 for GELU by default) and rounding.
    moe : MoESpec or dict, optional
        Turn every layer's MLP into experts; ``d_expert`` defaults to ``d_ff // top_k`` so the active
        MLP width, and hence the active parameters, match the dense model of the same shape.
    **fields
        Other :class:`ModelSpec` fields (``norm_kind``, ``tied_embeddings``, ``n_kv_heads`` ...).

    Examples
    --------
    >>> m = model_for_params(1e6, vocab_size=256, seq_len=128)
    >>> 0.8e6 < m.n_params().total < 1.25e6 and m.d_model % m.n_heads == 0
    True
    """
    if not (isinstance(n_params, (int, float)) and math.isfinite(n_params) and n_params > 0):
        raise ConfigError(explain("a target model size must be a positive number of parameters", value=n_params,
                                  fix="use e.g. n_params = 1e6"))
    if d_head <= 0 or aspect_ratio <= 0:
        raise ConfigError(explain("d_head and aspect_ratio must be positive", value=(d_head, aspect_ratio)))
    if count not in ("total", "non_embedding"):
        raise ConfigError(explain("unknown parameter count convention", value=count, allowed="total, non_embedding"))
    n_dense = int((moe.n_dense_layers if isinstance(moe, MoESpec) else (moe or {}).get("n_dense_layers", 0)) or 0)
    best: tuple[float, float, int, int] | None = None

    def count_at(d_model: int, n_heads: int, L: int) -> int:
        c = _family_spec(d_model, L, n_heads, vocab_size, seq_len, ffn_kind, ffn_mult, multiple_of, moe,
                         fields).n_params()
        return c.total if count == "total" else c.non_embedding

    for n_heads in range(1, 257):
        d_model = n_heads * d_head
        lo = max(1, n_dense, math.ceil(d_model / (2 * aspect_ratio)))
        hi = max(lo, min(max_layers, math.floor(2 * d_model / aspect_ratio)))
        # The count is linear in n_layers (once the leading dense layers are in): read its intercept and
        # slope from two specs instead of building one per depth.
        n_lo = count_at(d_model, n_heads, lo)
        slope = count_at(d_model, n_heads, lo + 1) - n_lo
        for n_layers in range(lo, hi + 1):
            n = n_lo + slope * (n_layers - lo)
            score = abs(math.log(n / n_params))
            tie = abs(math.log((d_model / n_layers) / aspect_ratio))
            if best is None or (score, tie) < best[:2]:
                best = (score, tie, n_heads, n_layers)
        if _too_big(n_heads, d_head, vocab_size, n_params, count):
            break
    assert best is not None  # the loop always visits n_heads=1
    _, _, n_heads, n_layers = best
    return _family_spec(n_heads * d_head, n_layers, n_heads, vocab_size, seq_len, ffn_kind, ffn_mult, multiple_of,
                        moe, fields)


def _too_big(n_heads: int, d_head: int, vocab_size: int, target: float, count: str) -> bool:
    # One layer of width d already has ~12 d^2 parameters (+ 2 V d of embeddings): stop once even the
    # shallowest shape is 4x over the target.
    d = n_heads * d_head
    n = 12 * d * d + (2 * vocab_size * d if count == "total" else 0)
    return n > 4 * target


def _family_spec(d_model: int, n_layers: int, n_heads: int, vocab_size: int, seq_len: int, ffn_kind: str,
                 ffn_mult: float | None, multiple_of: int, moe: MoESpec | dict[str, Any] | None,
                 fields: dict[str, Any]) -> ModelSpec:
    d_ff = _ffn_width(d_model, ffn_kind, ffn_mult, multiple_of)
    moe_spec = None
    if moe is not None:
        m = moe.to_dict() if isinstance(moe, MoESpec) else dict(moe)
        m.setdefault("d_expert", max(1, d_ff // int(m.get("top_k", 1))))
        moe_spec = MoESpec(**m)
    rest = {k: v for k, v in fields.items() if k != "name"}
    return ModelSpec(name=fields.get("name") or f"tunnel-L{n_layers}-d{d_model}" + ("-moe" if moe_spec else ""),
                     n_layers=n_layers, d_model=d_model, n_heads=n_heads, d_ff=d_ff, vocab_size=vocab_size,
                     seq_len=seq_len, ffn_kind=ffn_kind, moe=moe_spec, **rest)


def tokens_for_budget(model: ModelSpec, budget_flops: float, *, seq_len: int, batch_size: int,
                      flops: Literal["6N", "planner"] = "6N") -> int:
    """Tokens ``D`` that spend ``budget_flops`` on ``model``, rounded to whole steps (at least one).

    ``6N``: ``D = C / (6 N_active)`` (Hoffmann et al. 2022 §3.2). ``planner``: ``D = C / F`` with ``F``
    the exact training FLOPs per token of :func:`scalelab.planner.flops.flops_per_token` (attention
    scores and LM head included), which is what the trainer reports.

    >>> m = ModelSpec(n_layers=2, d_model=64, n_heads=2, d_ff=176, vocab_size=256)
    >>> tokens_for_budget(m, 6 * m.n_params().active * 10_000, seq_len=50, batch_size=2)
    10000
    """
    if not (math.isfinite(budget_flops) and budget_flops > 0):
        raise ConfigError(explain("a compute budget must be a positive number of FLOPs", value=budget_flops))
    if flops == "6N":
        per_token = training_flops(model.n_params().active, 1)
    elif flops == "planner":
        from ..planner.flops import flops_per_token

        per_token = flops_per_token(model, seq_len).model
    else:
        raise ConfigError(explain("unknown FLOP rule", value=flops, allowed="6N, planner"))
    step = seq_len * batch_size
    return int(step * max(1, round(budget_flops / per_token / step)))


#: How far the FLOPs a run actually spends may stray from its budget (whole steps round the tokens).
BUDGET_TOLERANCE = 0.25


def _check_budget_realised(model: ModelSpec, budget_flops: float, n_tokens: int, seq_len: int, batch_size: int,
                           flops: Literal["6N", "planner"]) -> None:
    """Refuse a run whose whole-step token count misses its compute budget by more than
    :data:`BUDGET_TOLERANCE`: with too many tokens per step (``seq_len = 100000``) every size collapses
    to one step, the runs share one D, and the budget labels would be false."""
    if flops == "planner":
        from ..planner.flops import flops_per_token

        per_token = flops_per_token(model, seq_len).model
    else:
        per_token = training_flops(model.n_params().active, 1)
    spent = per_token * n_tokens
    if abs(spent - budget_flops) > BUDGET_TOLERANCE * budget_flops:
        step = seq_len * batch_size
        raise ConfigError(explain(
            f"a grid run cannot realise its compute budget: a model of {model.n_params().active:,} active "
            f"parameters at {step:,} tokens per step (seq_len x batch_size) spends {spent:.3g} FLOPs in whole "
            "steps", value=f"C={budget_flops:.3g}", allowed=f"within {BUDGET_TOLERANCE:.0%} of the budget",
            fix=f"lower seq_len or batch_size, use budgets of at least {per_token * step * 4:.2g} FLOPs "
                "(four steps), or smaller models"))


def make_config(model: ModelSpec, n_tokens: int, defaults: dict[str, Any] | None = None, **overrides: Any) -> Any:
    """A ``RunConfig`` for ``model`` trained on ``n_tokens`` with shared ``defaults`` and ``overrides``.

    ``warmup_fraction`` (a grid helper) becomes ``warmup_tokens = warmup_fraction * n_tokens``.
    """
    kw = dict(defaults or {})
    kw.update(overrides)
    kw.pop("model", None)
    if isinstance(kw.get("batch_size"), str) or isinstance(kw.get("lr"), str):
        n_tokens = _apply_hyperparam_laws(kw, model, n_tokens)
    frac = kw.pop("warmup_fraction", None)
    if frac is not None:
        kw["warmup_tokens"] = int(float(frac) * n_tokens)
    if "decay_branches" in kw and kw["decay_branches"] is not None:
        kw["decay_branches"] = tuple(int(x) for x in kw["decay_branches"])
    return _run_config_cls()(model=model, n_tokens=int(n_tokens), **kw)


@dataclass
class Grid:
    """A named list of run configs, in the order they will be run."""

    name: str
    configs: list[Any]
    source: str | None = None
    labels: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.configs)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.configs)

    def hashes(self) -> list[str]:
        return [c.content_hash() for c in self.configs]

    def total_flops(self) -> float:
        """``sum 6 N_active D`` over the grid (the Chinchilla count, FLOPs)."""
        return float(sum(training_flops(c.model.n_params().active, c.n_tokens) for c in self.configs))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "n_runs": len(self), "total_flops": self.total_flops(),
                "runs": [{"hash": c.content_hash(), "label": lab, **_brief(c)}
                         for c, lab in zip(self.configs, self.labels or [""] * len(self), strict=False)]}

    def report(self) -> str:
        from ..units import format_count

        lines = [f"grid {self.name}: {len(self)} runs, {self.total_flops():.3g} FLOPs (6ND)"]
        for c, lab in zip(self.configs, self.labels or [""] * len(self), strict=False):
            b = _brief(c)
            lines.append(f"  {c.content_hash()[:10]}  {lab:<18} N={format_count(b['n_params'])} "
                         f"D={format_count(b['n_tokens'])} lr={b['lr']} bs={b['batch_size']}")
        return "\n".join(lines)


def _brief(c: Any) -> dict[str, Any]:
    return {"n_params": c.model.n_params().total, "n_params_active": c.model.n_params().active,
            "n_tokens": c.n_tokens, "lr": c.lr, "batch_size": c.batch_size, "moe": c.model.moe is not None}


# ---- builders -----------------------------------------------------------------------------------------
def _models(sizes: Iterable[float | ModelSpec | dict[str, Any]] | None, model_defaults: dict[str, Any],
            seq_len: int, moe: dict[str, Any] | None = None) -> list[ModelSpec]:
    out = []
    for s in sizes or []:
        if isinstance(s, ModelSpec):
            out.append(s)
        elif isinstance(s, dict):
            kw = {k: v for k, v in model_defaults.items() if k not in _FAMILY_KEYS}
            kw.update(s)
            kw.setdefault("seq_len", seq_len)
            out.append(ModelSpec(**kw))
        else:
            kw = dict(model_defaults)
            kw.setdefault("seq_len", seq_len)
            out.append(model_for_params(float(s), moe=moe, **kw))
    return out


def _seq_and_batch(defaults: dict[str, Any]) -> tuple[int, int]:
    missing = [k for k in ("seq_len", "batch_size") if k not in defaults]
    if missing:
        raise ConfigError(explain("a grid needs seq_len and batch_size to derive token counts", value=missing,
                                  fix="set them under [defaults] (or in the block, or the builder's defaults=)"))
    bs = defaults["batch_size"]
    # A batch from a law is resolved per run by make_config, which rounds the tokens to its whole steps.
    return int(defaults["seq_len"]), 1 if isinstance(bs, str) else int(bs)


def _whole_steps(n_tokens: float, step: int) -> int:
    """A requested token count in whole optimizer steps of ``step`` tokens (``batch_size x seq_len``), rounded; a
    count that rounds to no step is an error naming it, where it used to become one step silently."""
    k = round(float(n_tokens) / step)
    if k < 1:
        raise ConfigError(explain("token count below half an optimizer step", value=n_tokens,
                                  allowed=f"more than {step / 2:g} tokens (one step is batch_size x seq_len = "
                                          f"{step} tokens)",
                                  fix="raise the token count (--n-tokens, tokens in a grid file), or lower the "
                                      "batch size or sequence length"))
    return int(step * k)


def _apply_hyperparam_laws(kw: dict[str, Any], model: ModelSpec, n_tokens: int) -> int:
    """Replace ``lr`` / ``batch_size`` given as a law (``"law:li2025"``, ``"law:deepseek"``, a saved fit;
    :mod:`scalelab.tunnel.hplaws`) by their values for this run; return the tokens in whole steps."""
    from .hplaws import resolve_batch_size, resolve_lr

    seq = int(kw.get("seq_len") or model.seq_len)
    if isinstance(kw.get("batch_size"), str):
        kw["batch_size"] = resolve_batch_size(kw["batch_size"], model, n_tokens, seq)
        n_tokens = _whole_steps(n_tokens, seq * kw["batch_size"])
    if isinstance(kw.get("lr"), str):
        kw["lr"] = resolve_lr(kw["lr"], model, n_tokens, seq)
    return int(n_tokens)


def isoflop_grid(budgets_flops: Sequence[float], sizes: Sequence[float | ModelSpec | dict[str, Any]], *,
                 defaults: dict[str, Any] | None = None, model_defaults: dict[str, Any] | None = None,
                 flops: Literal["6N", "planner"] = "6N", moe: dict[str, Any] | None = None) -> Grid:
    """Compute budgets x model sizes; each run's tokens are derived from its budget (Hoffmann et al. 2022
    approach 2, the isoFLOP profiles of their Fig. 3).

    >>> g = isoflop_grid([1e11], [5e4, 1e5], defaults={"seq_len": 32, "batch_size": 4})  # doctest: +SKIP
    """
    defaults = dict(defaults or {})
    seq, bs = _seq_and_batch(defaults)
    models = _models(sizes, dict(model_defaults or {}), seq, moe)
    configs, labels = [], []
    for C in budgets_flops:
        for m in models:
            D = tokens_for_budget(m, float(C), seq_len=seq, batch_size=bs, flops=flops)
            _check_budget_realised(m, float(C), D, seq, bs, flops)
            configs.append(make_config(m, D, defaults))
            labels.append(f"C={float(C):.2g}" + (" moe" if m.moe else ""))
    return Grid("isoflop", configs, labels=labels)


def product_grid(sizes: Sequence[float | ModelSpec | dict[str, Any]], tokens: Sequence[float], *,
                 defaults: dict[str, Any] | None = None, model_defaults: dict[str, Any] | None = None) -> Grid:
    """Every model size trained on every token count (Hoffmann et al. 2022 approach 3 data)."""
    defaults = dict(defaults or {})
    seq, bs = _seq_and_batch(defaults)
    models = _models(sizes, dict(model_defaults or {}), seq)
    configs, labels = [], []
    for m, D in itertools.product(models, tokens):
        configs.append(make_config(m, _whole_steps(D, seq * bs), defaults))
        labels.append(f"D={float(D):.2g}")
    return Grid("product", configs, labels=labels)


def lr_batch_grid(size: float | ModelSpec | dict[str, Any], n_tokens: float, lrs: Sequence[float],
                  batch_sizes: Sequence[int], *, defaults: dict[str, Any] | None = None,
                  model_defaults: dict[str, Any] | None = None) -> Grid:
    """Learning rate x batch size at one model size and token count (DeepSeek LLM §3.1's sweep)."""
    defaults = dict(defaults or {})
    seq, _ = _seq_and_batch(defaults)
    (m,) = _models([size], dict(model_defaults or {}), seq)
    configs, labels = [], []
    for lr, bs in itertools.product(lrs, batch_sizes):
        configs.append(make_config(m, _whole_steps(n_tokens, seq * int(bs)), defaults, lr=float(lr),
                                   batch_size=int(bs)))
        labels.append(f"lr={lr:g} bs={bs}")
    return Grid("lr_batch", configs, labels=labels)


def dense_vs_moe_grid(budgets_flops: Sequence[float], sizes: Sequence[float], *, n_experts: int = 8, top_k: int = 2,
                      defaults: dict[str, Any] | None = None, model_defaults: dict[str, Any] | None = None,
                      flops: Literal["6N", "planner"] = "6N", **moe: Any) -> Grid:
    """Dense models and MoE models of the same active size, each pair at the same compute budget.

    The MoE twin keeps the dense shape and splits its MLP into ``n_experts`` experts of width
    ``d_ff // top_k``, so active parameters (and so ``D`` at equal ``C``) match (Clark et al. 2022's
    unified scaling laws compare at equal active compute).
    """
    moe_cfg = {"n_experts": n_experts, "top_k": top_k, **moe}
    defaults = dict(defaults or {})
    seq, _ = _seq_and_batch(defaults)
    dense_models = _models(sizes, dict(model_defaults or {}), seq)
    twins = [moe_twin(m, moe_cfg) for m in dense_models]
    dense = isoflop_grid(budgets_flops, dense_models, defaults=defaults, flops=flops)
    sparse = isoflop_grid(budgets_flops, twins, defaults=defaults, flops=flops)
    return Grid("dense_vs_moe", dense.configs + sparse.configs, labels=dense.labels + sparse.labels)


def moe_twin(model: ModelSpec, moe: MoESpec | dict[str, Any]) -> ModelSpec:
    """``model`` with every MLP split into experts; ``d_expert`` defaults to ``d_ff // top_k`` so the
    active MLP width (and the active parameter count, up to the router) is unchanged."""
    m = moe.to_dict() if isinstance(moe, MoESpec) else dict(moe)
    m.setdefault("d_expert", max(1, model.d_ff // int(m.get("top_k", 1))))
    return model.model_copy(update={"moe": MoESpec(**m), "name": model.name + "-moe"})


# ---- loading ------------------------------------------------------------------------------------------
def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _block_grid(kind: str, block: dict[str, Any], defaults: dict[str, Any], model_defaults: dict[str, Any]) -> Grid:
    b = dict(block)
    md = dict(model_defaults)
    md.update(b.pop("model_defaults", {}) or {})
    sizes = b.pop("models", None) or b.pop("n_params", None)
    flops = b.pop("flops", "6N")
    if kind == "isoflop":
        budgets = _as_list(b.pop("budgets_flops"))
        return isoflop_grid(budgets, _as_list(sizes), defaults={**defaults, **b}, model_defaults=md, flops=flops)
    if kind == "product":
        tokens = _as_list(b.pop("n_tokens"))
        return product_grid(_as_list(sizes), tokens, defaults={**defaults, **b}, model_defaults=md)
    if kind == "sweep":
        lrs, bss = _as_list(b.pop("lr")), _as_list(b.pop("batch_size"))
        n_tokens = b.pop("n_tokens")
        (size,) = _as_list(sizes)[:1] or [None]
        return lr_batch_grid(size, n_tokens, lrs, bss, defaults={**defaults, **b}, model_defaults=md)
    if kind == "dense_vs_moe":
        budgets = _as_list(b.pop("budgets_flops"))
        moe_keys = {k: b.pop(k) for k in list(b) if k in MoESpec.model_fields}
        return dense_vs_moe_grid(budgets, _as_list(sizes), defaults={**defaults, **b}, model_defaults=md, flops=flops,
                                 **moe_keys)
    if kind == "run":
        model = b.pop("model")
        seq = b.get("seq_len", defaults.get("seq_len"))
        if seq is None:
            raise ConfigError(explain("a [[run]] needs seq_len", fix="set seq_len in the block or under [defaults]"))
        (m,) = _models([model], md, int(seq))
        return Grid("run", [make_config(m, int(b.pop("n_tokens")), defaults, **b)], labels=["run"])
    raise ConfigError(explain("unknown grid block", value=kind, allowed="isoflop, product, sweep, dense_vs_moe, run"))


_BLOCKS = ("isoflop", "product", "sweep", "dense_vs_moe", "run")


def grid_from_dict(doc: dict[str, Any], *, name: str | None = None, source: str | None = None) -> Grid:
    """Build a grid from the parsed TOML document (see the module docstring for the format)."""
    unknown = set(doc) - {"name", "defaults", *_BLOCKS}
    if unknown:
        raise ConfigError(explain(f"grid {source or name}: unknown top-level keys", value=sorted(unknown),
                                  allowed="name, defaults, " + ", ".join(_BLOCKS)))
    defaults = dict(doc.get("defaults", {}))
    model_defaults = dict(defaults.pop("model", {}) or {})
    gname = str(doc.get("name") or name or "grid")
    configs, labels = [], []
    for kind in _BLOCKS:
        for i, block in enumerate(_as_list(doc.get(kind, []))):
            where = f"grid {gname!r}, [[{kind}]] #{i + 1}"
            try:
                g = _block_grid(kind, block, defaults, model_defaults)
            except KeyError as e:
                raise ConfigError(explain(f"{where} is missing a key", value=e.args[0],
                                          fix="see `scalelab.tunnel.grid` for the block format")) from None
            except ValidationError as e:
                raise ConfigError(explain(f"{where} describes an impossible run", value=_validation_text(e),
                                          fix="fix the shape or value named above; nothing has run")) from None
            except (TypeError, ValueError) as e:
                if isinstance(e, ConfigError):
                    raise ConfigError(f"{where}: {e}") from None
                raise ConfigError(explain(f"{where} has a bad value", value=str(e))) from None
            configs += g.configs
            labels += [f"{kind} {lab}" for lab in g.labels]
    if not configs:
        raise ConfigError(explain(f"grid {gname!r} has no runs", allowed="at least one of " + ", ".join(_BLOCKS),
                                  fix="add an [[isoflop]] or [[run]] block"))
    return _dedupe(Grid(gname, configs, source=source, labels=labels))


def _validation_text(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _dedupe(grid: Grid) -> Grid:
    seen: set[str] = set()
    configs, labels = [], []
    for c, lab in zip(grid.configs, grid.labels or [""] * len(grid), strict=False):
        h = c.content_hash()
        if h not in seen:
            seen.add(h)
            configs.append(c)
            labels.append(lab)
    return Grid(grid.name, configs, source=grid.source, labels=labels)


def load_grid(source: str | Path | Grid | Sequence[Any] | Callable[[], Any], *, name: str | None = None) -> Grid:
    """Load a grid from a TOML file, a Python recipe (``file.py`` or ``file.py:function``), a function,
    a :class:`Grid` or a list of ``RunConfig``. Every run is validated here, before anything trains.

    A recipe file defines ``grid()`` (or the function named after ``:``) returning a list of
    ``RunConfig`` or a :class:`Grid`.
    """
    if isinstance(source, Grid):
        return _check(source)
    if callable(source) and not isinstance(source, (str, Path)):
        return _from_recipe_value(source, str(name or getattr(source, "__name__", "recipe")), None)
    if isinstance(source, (list, tuple)):
        return _check(Grid(name or "grid", list(source), labels=[""] * len(source)))
    text = str(source)
    func = "grid"
    path_s = text
    if ":" in text and not Path(text).exists():
        path_s, func = text.rsplit(":", 1)
    path = Path(path_s).expanduser()
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(path))
    if path.suffix == ".toml":
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(explain(f"grid file {path} is not valid TOML", value=str(e))) from None
        return _check(grid_from_dict(doc, name=name or path.stem, source=str(path)))
    if path.suffix == ".py":
        spec = importlib.util.spec_from_file_location(f"scalelab_recipe_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ConfigError(explain("cannot import the recipe", value=str(path)))
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except ValidationError as e:
            raise ConfigError(explain(f"recipe {path} describes an impossible run",
                                      value=_validation_text(e))) from None
        except Exception as e:  # the user's code: one line saying where it failed, not a traceback
            raise _recipe_error(path, "importing it", e) from e
        fn = getattr(module, func, None)
        if not callable(fn):
            raise ConfigError(explain(f"recipe {path} has no function {func!r}", allowed="a grid() function",
                                      fix="define `def grid(): return [...]` or pass file.py:function"))
        return _from_recipe_value(fn, str(name or getattr(module, "NAME", path.stem)), str(path))
    raise ConfigError(explain("a grid must be a .toml file or a .py recipe", value=str(path)))


def _from_recipe_value(fn: Callable[[], Any], name: str, source: str | None) -> Grid:
    try:
        value = fn()
    except ValidationError as e:
        raise ConfigError(explain(f"recipe {source or name} describes an impossible run",
                                  value=_validation_text(e),
                                  fix="fix the shape or value named above; nothing has run")) from None
    except ScalelabError:
        raise
    except Exception as e:  # the user's code: one line saying where it failed, not a traceback
        raise _recipe_error(Path(source) if source else None, f"calling {getattr(fn, '__name__', 'grid')}()",
                            e) from e
    if isinstance(value, Grid):
        value.source = value.source or source
        if name and value.name in ("isoflop", "product", "lr_batch", "dense_vs_moe", "grid"):
            value.name = name
        return _check(_dedupe(value))
    if isinstance(value, dict):
        return _check(grid_from_dict(value, name=name, source=source))
    where = f"recipe {source or name}"
    allowed = "a Grid, a dict laid out as a grid TOML, or a list of RunConfig"
    try:
        configs = list(value)
    except TypeError:  # list(5) said only "'int' object is not iterable"
        raise ConfigError(explain(f"{where} did not return runs", value=f"{type(value).__name__} {value!r:.60}",
                                  allowed=allowed, fix="return isoflop_grid(...) or [make_config(...), ...]")) from None
    kind = _run_config_cls()
    bad = [(i, c) for i, c in enumerate(configs) if not isinstance(c, kind)]
    if bad:  # caught here, before "'dict' object has no attribute 'content_hash'" deep in the store
        i, c = bad[0]
        raise ConfigError(explain(f"item {i} of the list {where} returned is not a RunConfig",
                                  value=f"{type(c).__name__} {c!r:.60}", allowed=allowed,
                                  fix="build each run with make_config(model, n_tokens, defaults) or "
                                      "RunConfig(**fields)"))
    return _check(_dedupe(Grid(name, configs, source=source, labels=[""] * len(configs))))


def _recipe_error(path: Path | None, doing: str, exc: BaseException) -> ConfigError:
    """One line for an exception raised by a recipe's own code: which file and line, which error."""
    import traceback

    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, SyntaxError) and exc.lineno:
        where = f" at line {exc.lineno}"
    elif path is not None:
        mine = [f for f in frames if Path(f.filename).resolve() == path.resolve()]
        if mine:
            where = f" at line {mine[-1].lineno}"
    message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return ConfigError(explain(f"recipe {path or '(function)'} failed while {doing}{where}",
                               value=f"{type(exc).__name__}: {message}",
                               fix="fix the recipe at that line; nothing has run"))


def _check(grid: Grid) -> Grid:
    """Validate every config once more (a hand-made list may hold dicts or unbuildable models)."""
    cls = _run_config_cls()
    out = []
    for i, c in enumerate(grid.configs):
        try:
            cfg = c if isinstance(c, cls) else cls.model_validate(c)
        except ValidationError as e:
            raise ConfigError(explain(f"grid {grid.name!r}, run #{i + 1} is impossible", value=_validation_text(e),
                                      fix="fix the shape or value named above; nothing has run")) from None
        _check_buildable(cfg.model, f"grid {grid.name!r}, run #{i + 1}")
        need = 256 if cfg.tokenizer == "byte" else getattr(cfg, "bpe_vocab_size", 0)
        if cfg.model.vocab_size < need:
            raise ConfigError(explain(f"grid {grid.name!r}, run #{i + 1}: the model's vocabulary is smaller than "
                                      f"the {cfg.tokenizer} tokenizer's", value=cfg.model.vocab_size,
                                      allowed=f">= {need}", fix=f"set vocab_size = {need} (or more) for the model"))
        out.append(cfg)
    if not out:
        raise ConfigError(explain(f"grid {grid.name!r} has no runs", fix="return at least one RunConfig"))
    grid.configs = out
    if len(grid.labels) != len(out):
        grid.labels = [""] * len(out)
    return grid


def _check_buildable(model: ModelSpec, where: str) -> None:
    if model.mla is not None:
        raise ConfigError(explain(f"{where}: the wind tunnel does not build multi-head latent attention",
                                  value="mla", fix="drop `mla` from the model"))
