"""From a budget to a run: GPUs x days (or dollars, GPU-hours, FLOPs) -> N, D, shape, LR, batch, layout, loss.

Legend (symbols and units used in this module):

=========  ==================================================================================
``C``      training compute in the allocation law's convention, FLOPs, ``C = 6 N D``
``N``      parameters as the allocation law counts them (Chinchilla: total, embeddings included)
``D``      training tokens (all epochs)
``U``      unique tokens available (repetition costed by Muennighoff et al. 2023)
``M``      DeepSeek LLM's model scale, non-embedding FLOPs/token (Bi et al. 2024 eq. 2); its hyperparameter
           laws take ``C_ds = M D``, not ``6 N D``
``T``      the budget's wall-clock seconds
=========  ==================================================================================

The pieces, each documented in ``docs/budget.md``:

1. **Allocation**: the law's compute-optimal ``N(C)``, ``D(C)`` (closed form for Chinchilla-form laws,
   power laws for Hoffmann's approach 1/2 fits), or, with ``unique_tokens``, the loss-minimising ``N`` at
   ``C`` with repeated data and excess parameters discounted as in Muennighoff et al. 2023 eq. 5-6.
2. **Shape** (:func:`shape_for_params`): heads of 128 dimensions, ``d_model / n_layers`` near 128, SwiGLU
   width near ``8/3 d_model`` adjusted so the exact parameter count lands on ``N``.
3. **Hyperparameters**: DeepSeek LLM's ``eta = 0.3118 C_ds^-0.1250``, ``B = 0.2920 C_ds^0.3271`` tokens, or
   Step Law's ``eta = 1.79 N^-0.713 D^0.307``, ``B = 0.58 D^0.571``, each with its own schedule.
4. **Closed loop** (days, dollars or GPU-hours): the modelled throughput of the best layout, not
   ``6 N D`` at peak, decides how many FLOPs fit in ``T``; iterate ``C -> size -> layout -> C`` until
   stable, then trim ``D`` so the planned days never exceed the budget.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, explain
from .units import format_count

__all__ = ["BudgetRun", "budget", "shape_for_params"]

SECONDS_PER_DAY = 86400.0
#: Training FLOPs per parameter per token (Kaplan et al. 2020 §2.1); the allocation laws' convention.
FLOPS_PER_PARAM_TOKEN = 6.0
#: Width of one attention head (Llama 3, DeepSeek LLM, Chinchilla's larger models: 128).
HEAD_DIM = 128
#: Target ``d_model / n_layers``: Kaplan et al. 2020 §3.1 (Fig. 5) find loss within a few percent for
#: aspect ratios 20-200 at fixed N; Llama 3 405B (16384/126) and 8B (4096/32) sit at 128-130.
ASPECT_RATIO = 128.0
#: SwiGLU inner width as a multiple of d_model (Shazeer 2020: 2/3 of 4 d, same FLOPs as a GELU MLP).
FFN_RATIO = 8.0 / 3.0
#: Key/value heads for grouped-query attention (Llama 3: 8 at every size).
KV_HEADS = 8
HYPERPARAM_LAWS = ("deepseek", "steplaw")
#: Why a preset's run carries no N, D or loss band (printed with it; docs/budget.md "Bands").
PRESET_NO_BAND = (
    "no band: a published preset has no joint parameter uncertainty (papers give standard errors without "
    "their covariances, and independent draws ignore the strong A-alpha and B-beta correlations, giving "
    "bands orders of magnitude too wide) and no runs of its own to calibrate an extrapolation band on; "
    "for a band, fit the law with --bootstrap (`scalelab fit RUNS --bootstrap 200 --out fit.json`) and pass "
    "--law fit.json"
)
_LOOP_TOL = 0.005
_MAX_LOOPS = 12


# ------------------------------------------------------------------------------------------------ law
@dataclass
class _Allocator:
    """One interface over the allocation laws: ``allocate(C)`` and, for parametric laws, ``loss(N, D)``."""

    name: str
    law: Any
    kind: str  # "chinchilla" (parametric) or "powerlaw" (approach 1/2 fit)

    def allocate(self, C: float, unique_tokens: float | None) -> tuple[float, float, dict[str, list[float]]]:
        if self.kind == "powerlaw":
            n, d = self.law.predict(C)
            return float(n), float(d), {}
        if unique_tokens is not None:
            n = _data_constrained_n(self.law.params_, C, unique_tokens)
            return n, C / (FLOPS_PER_PARAM_TOKEN * n), {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the extrapolation is reported once, in the run's notes
            co = self.law.compute_optimal(C)
        bands = {k: [float(co.bands[k][0][0]), float(co.bands[k][1][0])] for k in ("N_opt", "D_opt")
                 if k in co.bands}
        return float(co.N_opt[0]), float(co.D_opt[0]), bands

    def loss(self, N: float, D: float, unique_tokens: float | None) -> tuple[float | None, float | None,
                                                                              float | None, str]:
        """Loss at (N, D) and its band; ``(None, None, None, why)`` when the law has no loss model."""
        if self.kind == "powerlaw":
            return None, None, None, "an approach 1/2 allocation has no loss model"
        p = self.law.params_
        if unique_tokens is not None:
            Ne, De = _effective(p, N, D, unique_tokens)
            return float(p["E"] + p["A"] / Ne ** p["alpha"] + p["B"] / De ** p["beta"]), None, None, \
                "no band under repetition (Muennighoff decay constants carry no covariance here)"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mid = float(self.law.predict(N, D))
            try:
                lo, hi = self.law.predict_interval(N, D, kind="new")
            except Exception as exc:  # noqa: BLE001 - a preset without covariance simply has no band
                if getattr(getattr(self.law, "result_", None), "preset", None):
                    return mid, None, None, PRESET_NO_BAND
                return mid, None, None, f"no loss band: {str(exc).split('. Fix:')[0]}"
        return mid, float(lo), float(hi), f"calibrated band for a new run at {round(100 * self.law.level)}%"


def _resolve_law(law: Any) -> _Allocator:
    from .laws.approaches import PowerLawAllocation
    from .laws.chinchilla import ChinchillaLaw

    if isinstance(law, PowerLawAllocation):
        return _Allocator(law.method, law, "powerlaw")
    if isinstance(law, ChinchillaLaw):
        return _Allocator(f"chinchilla ({law.result_.preset or 'fitted'})" if hasattr(law, "result_")
                          else "chinchilla", law, "chinchilla")
    if not isinstance(law, (str, Path)):
        raise ConfigError(explain("law must be a preset name, a saved fit file or a fitted law",
                                  value=type(law).__name__, allowed=_law_choices()))
    s = str(law)
    name = s.split(":", 1)[1] if s.lower().startswith("chinchilla:") else s
    if name in ChinchillaLaw.presets:
        return _Allocator(f"chinchilla:{name}", ChinchillaLaw.preset(name), "chinchilla")
    p = Path(s).expanduser()
    if s.lower().endswith(".json") or p.exists():
        return _law_from_file(p)
    raise ConfigError(explain("unknown law", value=s, allowed=_law_choices(),
                              fix="pass a Chinchilla preset name or the JSON written by `scalelab fit --out`"))


def _law_choices() -> str:
    from .laws.chinchilla import ChinchillaLaw

    return ("Chinchilla presets " + ", ".join(ChinchillaLaw.presets)
            + " (hoffmann2022 = Hoffmann's approach 3); a saved fit (.json) of the chinchilla law; "
            "or an approach 1/2 allocation saved from PowerLawAllocation.to_dict()")


def _law_from_file(p: Path) -> _Allocator:
    from .laws.approaches import PowerLawAllocation
    from .laws.chinchilla import ChinchillaLaw
    from .laws.io import law_from_saved, read_saved

    p, d = read_saved(p)
    if isinstance(d, dict) and {"a", "b", "k_N", "k_D"} <= set(d):
        import numpy as np

        pts = d.get("points") or {}
        arr = {k: np.asarray(pts.get(k, []), dtype=float) for k in ("C_flops", "N_opt", "D_opt", "L_opt")}
        alloc = PowerLawAllocation(str(d.get("method", "power-law allocation")), float(d["a"]), float(d["b"]),
                                   float(d["k_N"]), float(d["k_D"]), arr["C_flops"], arr["N_opt"],
                                   arr["D_opt"], arr["L_opt"])
        return _Allocator(f"{alloc.method} ({p.name})", alloc, "powerlaw")
    if isinstance(d, dict) and d.get("law") == "chinchilla":
        return _Allocator(f"chinchilla fit ({p.name})", law_from_saved(ChinchillaLaw, p, d), "chinchilla")
    got = d.get("law") if isinstance(d, dict) else type(d).__name__
    raise ConfigError(explain(f"{p} holds no allocation law budget can use", value=got, allowed=_law_choices(),
                              fix="fit the chinchilla law (`scalelab fit --law chinchilla --out fit.json`)"))


def _effective(p: dict[str, float], N: float, D: float, U: float) -> tuple[float, float]:
    """Muennighoff et al. 2023 eq. 5-6 with the law's own base and the paper's decay constants."""
    from .laws.muennighoff import MuennighoffLaw, effective_data, effective_params, optimal_params_for_tokens

    mp = MuennighoffLaw.presets["muennighoff2023"]["params"]
    Un = optimal_params_for_tokens(U, p["A"], p["B"], p["alpha"], p["beta"])
    return (float(effective_params(N, Un, mp["R_N_star"])), float(effective_data(D, U, mp["R_D_star"])))


def _data_constrained_n(p: dict[str, float], C: float, U: float) -> float:
    """The N minimising the law's loss at C = 6ND with D' and N' discounted for repetition (bounded search)."""
    from scipy.optimize import minimize_scalar

    def loss(ln: float) -> float:
        n = math.exp(ln)
        Ne, De = _effective(p, n, C / (FLOPS_PER_PARAM_TOKEN * n), U)
        return float(p["A"] / Ne ** p["alpha"] + p["B"] / De ** p["beta"])

    mid = math.log(C / FLOPS_PER_PARAM_TOKEN) / 2
    lo, hi = mid - 12.0, mid + 12.0
    r = minimize_scalar(loss, bounds=(lo, hi), method="bounded", options={"xatol": 1e-9})
    if min(float(r.x) - lo, hi - float(r.x)) < 1e-3:
        # no interior minimum: with so few unique tokens the discounted loss keeps falling to the search's edge
        # (a model ~1e5x past the unconstrained size), which is the repetition law's breakdown, not an answer
        raise ConfigError(explain(
            "the unique-token limit leaves no best model size for this budget", value=format_count(U),
            fix=f"raise --unique-tokens toward the tokens a compute-optimal run of {C:.3g} FLOPs trains on (with "
                f"this limit the repetition-discounted loss keeps falling to the search's edge, N = "
                f"{math.exp(float(r.x)):.3g} parameters), or drop it"))
    return math.exp(float(r.x))


# ------------------------------------------------------------------------------------------------ shape
def shape_for_params(n_params: float, *, vocab_size: int = 128256, seq_len: int = 4096,
                     name: str | None = None) -> Any:
    """A dense Llama-style ``ModelSpec`` with ``n_params().total`` close to ``n_params``.

    Rule (docs/budget.md): heads of ``HEAD_DIM`` = 128 dimensions, a multiple of 8 of them with 8 KV heads
    (GQA, as Llama 3 at every size; below 8 heads, multi-head attention), so that tensor parallelism of 2, 4
    and 8 divides them; ``n_layers`` within 0.75-1.34x of ``d_model / 128`` (Kaplan et al. 2020's flat
    aspect-ratio region; Llama 3's 8B and 405B sit at 128); untied embeddings; the SwiGLU width, a multiple
    of 128, solved for the remaining parameters. The pair (width, depth) minimising
    ``|log(d_ff / (8/3 d_model))| + 0.5 |log(aspect / 128)|`` wins.

    Examples
    --------
    >>> m = shape_for_params(405e9)
    >>> m.d_model, m.n_layers, m.n_heads
    (17408, 131, 136)
    """
    from .arch import ModelSpec

    if not (math.isfinite(n_params) and n_params > 0):
        raise ConfigError(explain("n_params must be a positive, finite count", value=n_params))
    best: tuple[float, Any] | None = None
    for heads in [*range(1, KV_HEADS), *range(KV_HEADS, 1025, KV_HEADS)]:
        d = heads * HEAD_DIM
        kv = min(heads, KV_HEADS)
        aim = d / ASPECT_RATIO
        for layers in range(max(2, math.floor(0.75 * aim)), max(3, math.ceil(1.34 * aim)) + 1):
            # per layer: q, o (d x d), k, v (d x kv*128), two RMSNorms; untied embeddings; a final norm
            fixed = 2 * vocab_size * d + d + layers * (2 * d * d + 2 * d * kv * HEAD_DIM + 2 * d)
            ff = (n_params - fixed) / (3 * d * layers)
            if ff < d:  # a SwiGLU narrower than the residual stream: too wide or too deep for N
                continue
            ff_r = max(HEAD_DIM, HEAD_DIM * round(ff / HEAD_DIM))
            score = abs(math.log(ff_r / (FFN_RATIO * d))) + 0.5 * abs(math.log(d / layers / ASPECT_RATIO))
            if best is None or score < best[0]:
                best = (score, (layers, d, heads, kv, ff_r))
    if best is None:
        raise ConfigError(explain(f"{n_params:.3g} parameters leave no room beside a {vocab_size}-token "
                                  "embedding", value=n_params, fix="lower --vocab-size or raise the budget"))
    layers, d, heads, kv, ff_r = best[1]
    # named by its size as the CLI prints sizes (budget-96b, budget-3.32t), never in e-notation
    return ModelSpec(name=name or f"budget-{format_count(n_params).lower()}", n_layers=layers, d_model=d, n_heads=heads,
                     n_kv_heads=kv, d_ff=ff_r, vocab_size=vocab_size, seq_len=seq_len)


# ------------------------------------------------------------------------------------------------ hyperparams
def _hyperparams(kind: str, model: Any, n_tokens: float, seq_len: int) -> dict[str, Any]:
    """Peak LR, batch (tokens) and schedule from the chosen law, in that law's own conventions."""
    from .laws.hyperparams import (
        DeepSeekBatchLaw,
        DeepSeekLRLaw,
        StepLawBatchLaw,
        StepLawLRLaw,
        deepseek_model_scale,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # extrapolation far beyond the laws' fitted compute is the normal case
        if kind == "deepseek":
            M = float(deepseek_model_scale(model.n_layers, model.d_model, seq_len))
            C = M * n_tokens
            lr = float(DeepSeekLRLaw.preset("bi2024").predict(C))
            bt = float(DeepSeekBatchLaw.preset("bi2024").predict(C))
            sched = {"kind": "multi-step", "warmup_steps": 2000, "steps_at": [0.8, 0.9],
                     "factors": [0.316, 0.1],
                     "source": "Bi et al. 2024 §2.3: 2000 warmup steps, x0.316 at 80% and x0.1 at 90% of tokens"}
            return {"law": "deepseek (Bi et al. 2024 eq. 1, C = M D)", "M_flops_per_token": M, "C_hyper": C,
                    "lr": lr, "batch_tokens_law": bt, "schedule": sched}
        if kind == "steplaw":
            n = float(model.n_params().non_embedding)
            lr = float(StepLawLRLaw.preset("li2025").predict(n, n_tokens))
            bt = float(StepLawBatchLaw.preset("li2025").predict(n_tokens))
            sched = {"kind": "cosine", "warmup_steps": 2000, "min_lr": 1e-5,
                     "source": "Li et al. 2025 (Step Law): 2000 warmup steps, cosine to a fixed min LR 1e-5"}
            return {"law": "steplaw (Li et al. 2025, N non-embedding)", "lr": lr, "batch_tokens_law": bt,
                    "schedule": sched}
        return _own_hyperparams(kind, model, n_tokens, seq_len)


def _own_hyperparams(path: str, model: Any, n_tokens: float, seq_len: int) -> dict[str, Any]:
    """LR and batch from a hyperparameter fit of your own sweeps (``scalelab fit --law hyperparams``)."""
    from .laws.hpfit import load_hyperparam_fit
    from .laws.hyperparams import deepseek_model_scale

    fit = load_hyperparam_fit(path)
    M = float(deepseek_model_scale(model.n_layers, model.d_model, seq_len))
    n = float(model.n_params().non_embedding)
    sched = {"kind": "cosine", "warmup_fraction": 0.1, "min_lr_ratio": 0.1,
             "source": "as in the tunnel sweeps the law was fitted on: 10% warmup, cosine to 0.1 x LR"}
    return {"law": f"own fit ({Path(path).name}; {'Step-Law' if 'steplaw-lr' in fit.laws else 'DeepSeek'} form)",
            "lr": fit.predict_lr(N=n, D=n_tokens, M=M), "batch_tokens_law": fit.predict_batch_tokens(D=n_tokens, M=M),
            "schedule": sched}


def _batch_sequences(batch_tokens: float, seq_len: int, n_gpus: int | None) -> int:
    """The law's batch in whole sequences, a multiple of a power of two that divides the GPU count (so a
    data-parallel degree can split it), that power at most 1/8 of the batch (rounding error <= 6%)."""
    seqs = max(1.0, batch_tokens / seq_len)
    g = 1
    if n_gpus:
        while n_gpus % (2 * g) == 0 and 2 * g <= seqs / 8:
            g *= 2
    return max(g, g * round(seqs / g))


# ------------------------------------------------------------------------------------------------ result
@dataclass
class BudgetRun:
    """A complete run for a budget: allocation, shape, hyperparameters, layout, time, cost and loss."""

    law: str
    budget: dict[str, Any]
    flops_budget: float
    """FLOPs (C = 6ND) the budget allows: given, or what the chosen layout's throughput fits in the days."""
    n_params: float
    """Parameters the law allocates (its own convention)."""
    n_tokens: float
    """Training tokens of the returned run (the law's D, trimmed to the days when a time budget binds)."""
    model: Any
    hyper: dict[str, Any]
    global_batch: int
    seq_len: int
    plan: Any = None
    bands: dict[str, list[float]] = field(default_factory=dict)
    loss: float | None = None
    loss_lo: float | None = None
    loss_hi: float | None = None
    loss_note: str = ""
    unique_tokens: float | None = None
    inference: dict[str, Any] | None = None
    """Inference-aware sizing (Sardana et al. 2024), when ``inference_tokens`` was given: the target loss,
    the Chinchilla-optimal run of that loss, lifetime FLOPs of both and the saving."""
    iterations: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def flops(self) -> float:
        """Training FLOPs of the returned run, ``6 N D`` in the allocation law's convention."""
        return FLOPS_PER_PARAM_TOKEN * self.n_params * self.n_tokens

    @property
    def batch_tokens(self) -> int:
        return self.global_batch * self.seq_len

    def _plan_value(self, name: str) -> float | None:
        return None if self.plan is None else float(getattr(self.plan, name))

    @property
    def training_days(self) -> float | None:
        return self._plan_value("training_days")

    @property
    def gpu_hours(self) -> float | None:
        return self._plan_value("gpu_hours")

    @property
    def cost_usd(self) -> float | None:
        return self._plan_value("cost_usd")

    @property
    def mfu(self) -> float | None:
        return self._plan_value("mfu")

    @property
    def flops_used_fraction(self) -> float | None:
        """Share of what the layout's throughput allows in the budget's days that the run uses."""
        days = self.budget.get("days")
        if self.plan is None or not days:
            return None
        return self.n_tokens / (self.plan.tokens_per_s * days * SECONDS_PER_DAY)

    def to_dict(self) -> dict[str, Any]:
        from . import __version__

        p = self.plan
        m = self.model
        return {
            "law": self.law, "budget": dict(self.budget), "flops_budget": self.flops_budget,
            "n_params": self.n_params, "n_tokens": self.n_tokens, "flops": self.flops,
            "n_params_lo": self.bands.get("N_opt", [None, None])[0],
            "n_params_hi": self.bands.get("N_opt", [None, None])[1],
            "n_tokens_lo": self.bands.get("D_opt", [None, None])[0],
            "n_tokens_hi": self.bands.get("D_opt", [None, None])[1],
            "tokens_per_param": self.n_tokens / self.n_params, "unique_tokens": self.unique_tokens,
            "epochs": None if self.unique_tokens is None else self.n_tokens / self.unique_tokens,
            "model": m.model_dump(exclude_none=True), "model_n_params": m.n_params().total,
            "lr": self.hyper["lr"], "batch_tokens": self.batch_tokens, "global_batch": self.global_batch,
            "seq_len": self.seq_len, "hyperparams": dict(self.hyper),
            "layout": None if p is None else p.layout.short(),
            "layout_fields": None if p is None else p.layout.model_dump(exclude_none=True),
            "training_days": self.training_days, "gpu_hours": self.gpu_hours, "cost_usd": self.cost_usd,
            "mfu": self.mfu,
            "tokens_per_s": self._plan_value("tokens_per_s"), "flops_used_fraction": self.flops_used_fraction,
            "loss": self.loss, "loss_lo": self.loss_lo, "loss_hi": self.loss_hi, "loss_note": self.loss_note,
            "inference_tokens": None if self.inference is None else self.inference["inference_tokens"],
            "inference": None if self.inference is None else dict(self.inference),
            "iterations": list(self.iterations), "notes": list(self.notes), "scalelab_version": __version__,
        }

    def report(self) -> str:
        from .units import format_count

        m = self.model
        d = self.to_dict()
        band = (f" [{format_count(d['n_params_lo'])}, {format_count(d['n_params_hi'])}]"
                if d["n_params_lo"] is not None else "")
        lines = [f"budget: {_describe_budget(self.budget)} -> {self.flops_budget:.3g} FLOPs ({self.law})",
                 f"  N = {format_count(self.n_params)}{band}, D = {format_count(self.n_tokens)} "
                 f"(D/N = {self.n_tokens / self.n_params:.3g}), C = 6ND = {self.flops:.3g} FLOPs",
                 f"  model: {m.n_layers} layers, d_model {m.d_model}, {m.n_heads} heads ({m.n_kv_heads} KV) of "
                 f"{m.d_head}, SwiGLU {m.d_ff}, vocab {m.vocab_size}: {format_count(m.n_params().total)} params",
                 f"  LR {self.hyper['lr']:.3g}, batch {self.global_batch} x {self.seq_len} = "
                 f"{format_count(self.batch_tokens)} tokens ({self.hyper['law']}); "
                 f"schedule: {self.hyper['schedule']['source']}"]
        if self.plan is not None:
            p = self.plan
            lines.append(f"  layout {p.layout.short()}: {p.training_days:.2f} days, {p.gpu_hours:,.0f} GPU-hours, "
                         f"${p.cost_usd:,.0f}, MFU {p.mfu:.1%}, {p.tokens_per_s:,.0f} tokens/s")
        if self.loss is not None:
            lb = f" [{self.loss_lo:.4g}, {self.loss_hi:.4g}]" if self.loss_lo is not None else ""
            lines.append(f"  loss at the end of training: {self.loss:.4g}{lb} nats/token ({self.loss_note})")
        else:
            lines.append(f"  loss: not forecast ({self.loss_note})")
        if self.inference is not None:
            i = self.inference
            lines.append(f"  inference-aware (Sardana et al. 2024): {i['inference_tokens']:.3g} inference tokens at "
                         f"2N FLOPs each; lifetime {i['lifetime_flops']:.3g} FLOPs against "
                         f"{i['chinchilla_lifetime_flops']:.3g} for the Chinchilla-optimal "
                         f"{format_count(i['chinchilla_n_params'])} model of the same loss {i['loss']:.4g} "
                         f"({100 * i['saving']:.1f}% saved; training takes {i['train_flops']:.3g} FLOPs)")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_toml(self) -> str:
        """A recipe ``scalelab plan --config`` accepts: [model], [cluster], [train], [layout]; the
        hyperparameters, which plan does not read, go in comments."""
        if self.plan is None:
            raise ConfigError(explain("a recipe needs a cluster and a layout", value=self.budget,
                                      fix="give --gpu and --n-gpus so budget can search a layout"))
        c = self.plan.cluster
        h = self.hyper
        head = [f"# scalelab budget: {_describe_budget(self.budget)} ({self.law})",
                f"# N = {self.n_params:.6g}, D = {self.n_tokens:.6g}, C = {self.flops:.6g} FLOPs",
                f"# peak LR {h['lr']:.4g} ({h['law']}); schedule: {h['schedule']['source']}"]
        if self.loss is not None:
            head.append(f"# forecast loss {self.loss:.4g} nats/token")
        lay = self.plan.layout.model_dump(exclude_none=True)
        tables = {
            "model": self.model.model_dump(exclude_none=True),
            "cluster": {"gpu": c.gpu.name, "n_gpus": c.n_gpus, "gpus_per_node": c.gpus_per_node,
                        **({"price_per_gpu_hour": c.price_per_gpu_hour} if c.price_per_gpu_hour is not None
                           else {})},
            "train": {"seq_len": self.seq_len, "global_batch": self.global_batch, "total_tokens": self.n_tokens,
                      "precision": self.plan.train.precision, "optimizer": self.plan.train.optimizer},
            "layout": lay,
        }
        out = [*head, ""]
        for name, values in tables.items():
            out.append(f"[{name}]")
            out += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
            out.append("")
        return "\n".join(out)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    raise ConfigError(explain("budget cannot write this value to TOML", value=v, allowed="str, int, float, bool"))


def _describe_budget(b: dict[str, Any]) -> str:
    gpus = f"{b['n_gpus']} x {b['gpu']}" if b.get("gpu") else "no cluster"
    for key, unit in (("days", "days"), ("dollars", "USD"), ("gpu_hours", "GPU-hours"), ("flops", "FLOPs")):
        if b.get(key) is not None and key in b.get("given", key):
            return f"{gpus}, {b[key]:.4g} {unit}"
    return gpus


# ------------------------------------------------------------------------------------------------ budget
def _positive(name: str, v: Any, flag: str) -> float | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        x = math.nan
    if not (math.isfinite(x) and x > 0):
        raise ConfigError(explain(f"{name} must be a positive, finite number", value=v,
                                  fix=f"pass {flag} with a value above 0"))
    return x


def _budget_inputs(gpu: Any, n_gpus: Any, days: Any, dollars: Any, gpu_hours: Any,
                   flops: Any, price: Any, gpus_per_node: Any) -> tuple[dict[str, Any], Any]:
    """Validate the budget; returns its description (days filled in) and the cluster (or None)."""
    from .hardware import get_cluster

    given = {k: v for k, v in (("days", days), ("dollars", dollars), ("gpu_hours", gpu_hours),
                               ("flops", flops)) if v is not None}
    if len(given) != 1:
        raise ConfigError(explain("give exactly one budget", value=sorted(given) or None,
                                  allowed="days, dollars, gpu_hours or flops",
                                  fix="pass one of --days, --dollars, --gpu-hours, --flops"))
    key = next(iter(given))
    flag = "--" + key.replace("_", "-")
    amount = _positive(key, given[key], flag)
    if (gpu is None) != (n_gpus is None):
        raise ConfigError(explain("a cluster needs both a GPU type and a GPU count",
                                  value={"gpu": gpu, "n_gpus": n_gpus},
                                  fix="pass --gpu NAME and --n-gpus N (see `scalelab gpus`)"))
    if gpu is None and key != "flops":
        raise ConfigError(explain(f"a budget in {key} needs a cluster", value=given[key],
                                  fix="pass --gpu NAME and --n-gpus N, or give the budget in --flops"))
    if n_gpus is not None and (isinstance(n_gpus, bool) or not isinstance(n_gpus, int) or n_gpus < 1):
        raise ConfigError(explain("n_gpus must be a whole number of GPUs, at least 1", value=n_gpus,
                                  fix="pass --n-gpus with the number of GPUs in the job, e.g. --n-gpus 8"))
    _positive("price_per_gpu_hour", price, "--price")
    cluster = None if gpu is None or n_gpus is None else get_cluster(gpu, n_gpus, gpus_per_node, price)
    b: dict[str, Any] = {"given": key, key: amount, "gpu": None if cluster is None else cluster.gpu.name,
                         "n_gpus": n_gpus}
    if key == "dollars":
        price_h = cluster.price_per_gpu_hour if cluster is not None else None
        if not price_h:
            raise ConfigError(explain(f"{cluster.gpu.name if cluster else gpu} has no price per GPU-hour",
                                      value=price_h, fix="pass --price USD_PER_GPU_HOUR"))
        b["gpu_hours"] = amount / price_h  # type: ignore[operator]
    if key in ("dollars", "gpu_hours"):
        b["days"] = b["gpu_hours"] / (int(n_gpus or 1) * 24.0)
    return b, cluster


@dataclass
class _Sized:
    C: float
    n_params: float
    n_tokens: float
    bands: dict[str, list[float]]
    model: Any
    hyper: dict[str, Any]
    global_batch: int


def _size(alloc: _Allocator, C: float, U: float | None, hyper: str, seq_len: int, vocab_size: int,
          n_gpus: int | None) -> _Sized:
    n, d, bands = alloc.allocate(C, U)
    model = shape_for_params(n, vocab_size=vocab_size, seq_len=seq_len)
    h = _hyperparams(hyper, model, d, seq_len)
    return _Sized(C, n, d, bands, model, h, _batch_sequences(h["batch_tokens_law"], seq_len, n_gpus))


def _train(s: _Sized, seq_len: int, tokens: float) -> Any:
    from .planner import TrainSpec

    return TrainSpec(seq_len=seq_len, global_batch=s.global_batch, total_tokens=tokens)


#: A narrower search for the loop's first guess (about 5x faster); the settled size gets the full search.
_QUICK_SEARCH = {"zero_stages": (1, 2), "max_micro_batch": 2, "max_interleave": 2}


def _plan_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The options ``plan()`` takes (``framework``, ``efficiency`` ...): search-only ones such as
    ``zero_stages`` or ``max_micro_batch`` narrow the search and mean nothing to one plan."""
    import inspect

    from .planner import plan

    params = inspect.signature(plan).parameters
    return {k: v for k, v in opts.items() if k in params}


def _best_plan(s: _Sized, cluster: Any, seq_len: int, layout: Any, opts: dict[str, Any],
               quick: bool = False) -> Any:
    """The plan of ``layout`` for this size (cheap), or of the best layout a search finds."""
    from .planner import plan, search_layouts

    if quick:
        opts = {**_QUICK_SEARCH, **opts}

    train = _train(s, seq_len, s.n_tokens)
    if layout is not None:
        p = plan(s.model, cluster, train, layout, **_plan_options(opts))
        if p.feasible:
            return p
    res = search_layouts(s.model, cluster, train, top=1, **opts)
    if not res.best:
        raise ConfigError(explain(f"no layout of a {s.n_params:.3g}-parameter model fits on {cluster.n_gpus} "
                                  f"x {cluster.gpu.name}", value=dict(res.rejected_counts),
                                  fix="add GPUs, use GPUs with more memory, or shorten --seq-len"))
    return res.best[0]


def _close_loop(alloc: _Allocator, cluster: Any, seconds: float, args: dict[str, Any], mfu_guess: float,
                opts: dict[str, Any]) -> tuple[_Sized, Any, list[dict[str, float]]]:
    """Iterate C -> size -> layout -> C = 6 N (tokens/s) T to a fixed point. The first passes reuse the
    incumbent layout (one plan each); a full search at the settled size confirms or replaces it."""
    peak = cluster.gpu.peak_flops_per_s.get("bf16") or max(cluster.gpu.peak_flops_per_s.values())
    C = cluster.n_gpus * peak * seconds * mfu_guess
    layout, searched_at, trace = None, None, []
    for _ in range(_MAX_LOOPS):
        s = _size(alloc, C, **args)
        p = _best_plan(s, cluster, args["seq_len"], layout, opts, quick=layout is None)
        layout = p.layout
        C_new = FLOPS_PER_PARAM_TOKEN * s.n_params * p.tokens_per_s * seconds
        trace.append({"C": C, "n_params": s.n_params, "tokens_per_s": p.tokens_per_s, "mfu": p.mfu,
                      "C_allowed": C_new, "layout": p.layout.short()})
        if abs(C_new / C - 1) < _LOOP_TOL:
            if searched_at is not None and abs(searched_at / C - 1) < _LOOP_TOL:
                return s, p, trace
            full = _best_plan(s, cluster, args["seq_len"], None, opts)
            searched_at = C
            if full.tokens_per_s <= p.tokens_per_s * (1 + 1e-9):
                return s, p, trace
            layout = full.layout  # a better layout: the FLOPs it allows differ, go round again
            C = FLOPS_PER_PARAM_TOKEN * s.n_params * full.tokens_per_s * seconds
            continue
        C = C_new
    return s, p, trace


def _inference_inputs(inference_tokens: Any, b: dict[str, Any], alloc: _Allocator, U: float | None) -> float | None:
    if inference_tokens is None:
        return None
    try:
        D_inf = float(inference_tokens)
    except (TypeError, ValueError):
        D_inf = math.nan
    if not (math.isfinite(D_inf) and D_inf >= 0):
        raise ConfigError(explain("inference tokens must be a finite count >= 0", value=inference_tokens,
                                  fix="pass --inference-tokens with the tokens served over the model's life"))
    if "flops" not in b:
        raise ConfigError(explain("inference-aware sizing needs a FLOPs budget", value=b["given"],
                                  fix="pass --flops: the inference-aware run trains longer than the budget's "
                                      "Chinchilla-optimal run, which a time or money budget does not allow"))
    if alloc.kind != "chinchilla" or U is not None:
        raise ConfigError(explain("inference-aware sizing needs a Chinchilla-form law and no unique-token limit",
                                  value=alloc.name, fix="pass a Chinchilla preset or fit; drop --unique-tokens"))
    return D_inf


def _inference_aware(alloc: _Allocator, s: _Sized, D_inf: float, args: dict[str, Any]) -> tuple[_Sized, dict[str, Any]]:
    """Sardana et al. 2024: the run reaching the loss of the Chinchilla-optimal ``s`` with the least
    ``6 N D + 2 N D_inf`` FLOPs, sized, shaped and given hyperparameters like ``s``."""
    from .laws.inference import inference_optimal

    p = alloc.law.params_
    target = float(p["E"] + p["A"] / s.n_params ** p["alpha"] + p["B"] / s.n_tokens ** p["beta"])
    r = inference_optimal(p, target, D_inf)
    model = shape_for_params(r.n_params, vocab_size=args["vocab_size"], seq_len=args["seq_len"])
    h = _hyperparams(args["hyper"], model, r.train_tokens, args["seq_len"])
    sized = _Sized(s.C, r.n_params, r.train_tokens, {}, model, h,
                   _batch_sequences(h["batch_tokens_law"], args["seq_len"], args["n_gpus"]))
    return sized, r.to_dict()


def budget(*, gpu: Any = None, n_gpus: int | None = None, days: float | None = None, dollars: float | None = None,
           gpu_hours: float | None = None, flops: float | None = None, law: Any = "besiroglu2024",
           unique_tokens: float | None = None, inference_tokens: float | None = None,
           hyperparams: str = "deepseek", seq_len: int = 4096,
           vocab_size: int = 128256, price_per_gpu_hour: float | None = None, gpus_per_node: int | None = None,
           mfu_guess: float = 0.4, **search_options: Any) -> BudgetRun:
    """Turn a budget into a run: N and D from ``law``, a shape, LR/batch/schedule, the best layout, loss.

    Parameters
    ----------
    gpu, n_gpus
        The cluster (a catalog name or file, and a count). Needed for every budget but ``flops``.
    days, dollars, gpu_hours, flops
        Exactly one budget. Days, dollars and GPU-hours are turned into FLOPs by the closed loop: the
        chosen layout's modelled throughput decides what fits.
    law
        A Chinchilla preset (``"hoffmann2022"`` is Hoffmann's approach 3; ``"besiroglu2024"`` the Epoch
        refit), a saved fit file, a fitted :class:`~scalelab.laws.ChinchillaLaw`, or an approach 1/2
        :class:`~scalelab.laws.approaches.PowerLawAllocation`.
    unique_tokens
        Unique tokens available; repetition and excess parameters are costed by Muennighoff et al. 2023
        (the law's own base, the paper's decay constants R_D* = 15.4, R_N* = 5.3).
    inference_tokens
        Tokens the model will serve over its life. The run is then the one that reaches the loss of the
        budget's Chinchilla-optimal run with the least training + inference FLOPs (``6 N D + 2 N D_inf``;
        Sardana et al. 2024): a smaller model trained longer, whose training FLOPs exceed ``flops``. Needs a
        ``flops`` budget (a time or money budget fixes the training FLOPs) and a Chinchilla-form law.
    hyperparams
        ``"deepseek"`` (Bi et al. 2024, in its own compute convention ``C = M D``) or ``"steplaw"``.
    search_options
        Passed to :func:`~scalelab.planner.search_layouts` and :func:`~scalelab.planner.plan`
        (e.g. ``framework``, ``efficiency``).

    Examples
    --------
    >>> run = budget(flops=5.76e23, law="hoffmann2022")
    >>> round(run.n_params / 1e9)
    40
    """
    from .laws.chinchilla import ChinchillaLaw

    b, cluster = _budget_inputs(gpu, n_gpus, days, dollars, gpu_hours, flops, price_per_gpu_hour, gpus_per_node)
    for name, v, fl in (("seq_len", seq_len, "--seq-len"), ("vocab_size", vocab_size, "--vocab-size")):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(explain(f"{name} must be a whole number of tokens, at least 1", value=v,
                                      fix=f"pass {fl} with a positive integer"))
    if hyperparams not in HYPERPARAM_LAWS and not str(hyperparams).endswith(".json"):
        raise ConfigError(explain("unknown hyperparameter law", value=hyperparams,
                                  allowed=", ".join(HYPERPARAM_LAWS) + ", or a hyperparameter fit (.json)",
                                  fix="pass --hyperparams deepseek, steplaw, or the file written by "
                                      "`scalelab fit --law hyperparams --out hp.json`"))
    if not 0 < mfu_guess <= 1:
        raise ConfigError(explain("mfu_guess must be a fraction in (0, 1]", value=mfu_guess))
    U = _positive("unique_tokens", unique_tokens, "--unique-tokens")
    alloc = _resolve_law(law)
    if U is not None and alloc.kind != "chinchilla":
        raise ConfigError(explain("a unique-token limit needs a parametric (Chinchilla-form) law", value=alloc.name,
                                  fix="pass a Chinchilla preset or fit, or drop --unique-tokens"))
    D_inf = _inference_inputs(inference_tokens, b, alloc, U)
    args: dict[str, Any] = {"U": U, "hyper": hyperparams, "seq_len": seq_len, "vocab_size": vocab_size,
            "n_gpus": None if cluster is None else cluster.n_gpus}
    trace: list[dict[str, Any]] = []
    if "flops" in b:
        s = _size(alloc, b["flops"], **args)
        inference = None
        if D_inf is not None:
            s, inference = _inference_aware(alloc, s, D_inf, args)
        p = None if cluster is None else _best_plan(s, cluster, seq_len, None, search_options)
        n_tokens = s.n_tokens
    else:
        seconds = b["days"] * SECONDS_PER_DAY
        s, p, trace = _close_loop(alloc, cluster, seconds, args, mfu_guess, search_options)
        # Trim D to what the layout processes in the days (never more), in whole optimizer steps.
        steps = math.floor(min(s.n_tokens, p.tokens_per_s * seconds) / (s.global_batch * seq_len))
        n_tokens = float(steps * s.global_batch * seq_len)
        if n_tokens <= 0:
            raise ConfigError(explain("the budget does not cover one optimizer step", value=b,
                                      fix="raise the budget or use more GPUs"))
    if p is not None:
        from .planner import plan

        p = plan(s.model, cluster, _train(s, seq_len, n_tokens), p.layout, **_plan_options(search_options))
    run = BudgetRun(alloc.name, b, s.C, s.n_params, n_tokens, s.model, s.hyper, s.global_batch, seq_len, p,
                    bands=s.bands, unique_tokens=U, iterations=trace,
                    inference=inference if "flops" in b else None)
    run.loss, run.loss_lo, run.loss_hi, run.loss_note = alloc.loss(s.n_params, n_tokens, U)
    _add_notes(run, alloc, ChinchillaLaw)
    return run


def _add_notes(run: BudgetRun, alloc: _Allocator, chinchilla: Any) -> None:
    law = alloc.law
    if isinstance(law, chinchilla):
        # the law's own measure: the largest ratio to its fitted range over N, D and compute (NaN when the
        # range is unknown, e.g. a preset published without one)
        fac = float(law.extrapolation(run.n_params, run.n_tokens))
        if math.isfinite(fac) and fac > float(law.extrapolation_factor or math.inf):
            run.notes.append(f"(N, D) lies {fac:.3g}x outside the range the law was fitted on: an extrapolation")
    actual = run.model.n_params().total
    if abs(actual / run.n_params - 1) > 0.01:
        run.notes.append(f"the shape has {actual:.4g} parameters, {100 * (actual / run.n_params - 1):+.1f}% "
                         "from the allocation")
    if run.unique_tokens is not None and run.n_tokens > run.unique_tokens:
        run.notes.append(f"{run.n_tokens / run.unique_tokens:.2f} epochs over {run.unique_tokens:.3g} unique tokens")
