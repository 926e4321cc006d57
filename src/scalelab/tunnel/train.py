"""Train one wind-tunnel run: :class:`RunConfig` in, :class:`TrainResult` out.

The loop, top to bottom: resolve device and dtype, seed, build the :class:`~scalelab.tunnel.model.GPT`,
AdamW, optionally resume from a checkpoint, then for each step draw the step's batch (a pure function of
``(seed, step)``), set the learning rate from the schedule, forward (bf16 autocast where supported),
backward, clip, step; evaluate on held-out tokens at a cadence; take WSD decay branches when the run
passes a branch point; stop with status ``"diverged"`` on NaN or runaway loss.

**Optimizer.** AdamW (Loshchilov & Hutter 2019, decoupled weight decay) with betas (0.9, 0.95) and
eps 1e-8 as in GPT-3 (Brown et al. 2020, App. B); decay applies to weight matrices only: norms, biases
and embedding tables are not decayed (nanoGPT/Megatron practice; see ``GPT.param_groups``). Gradients
are clipped to a global L2 norm of ``grad_clip`` (0 disables).

**Schedules** (all with linear warmup over ``warmup_tokens``, then, with ``lr_min = min_lr_ratio * lr``):

* ``cosine``: half-cosine from ``lr`` to ``lr_min`` over the remaining tokens (Loshchilov & Hutter 2017).
* ``constant``: ``lr`` after warmup.
* ``wsd``: warmup-stable-decay (MiniCPM, Hu et al. 2024, arXiv:2404.06395 eq. 1): ``lr`` until the last
  ``decay_fraction`` of tokens, then an exponential decay ``lr * (lr_min/lr)^p`` over decay progress
  ``p in [0, 1]`` (MiniCPM's f is exponential, Fig. 8; this form reaches ``lr_min`` exactly at the end).
* ``power``: Power scheduler (Shen et al. 2024, arXiv:2408.13359): ``min(lr, a * beta * n^b)`` with
  ``n`` tokens seen and ``beta`` the batch size in sequences (``power_a = 4.6``, ``power_b = -0.51``
  as transcribed in shared/reference/laws.md §9; not confirmed from the paper), followed by the same
  exponential decay as WSD over the last ``decay_fraction``, down to ``min_lr_ratio`` times the
  learning rate at which the decay starts.

**Decay branches** (MiniCPM §4.1): for ``wsd``/``power`` runs, ``decay_branches`` lists token counts in
the stable phase. When the run reaches one, its model and optimizer state are copied, a decay of
``at * decay_fraction / (1 - decay_fraction)`` tokens is trained on the same data stream the main run
would see, the branch is evaluated and recorded as a :class:`BranchResult`, and the main run continues
from the copied state. A branch is exactly the from-scratch run ``config.branch_config(at)`` (same
seeds, same data, same learning rates), for a fraction of its cost.

**Determinism.** Model init uses ``torch.manual_seed(seed)``; batches use a numpy generator seeded by
``(seed, step)``; there is no dropout. On CPU, two runs of one config give identical curves, and a run
resumed from a checkpoint continues exactly as if uninterrupted.

Example
-------
>>> from scalelab.arch import ModelSpec
>>> cfg = RunConfig(model=ModelSpec(n_layers=2, d_model=32, n_heads=2, d_ff=64, vocab_size=256, seq_len=32),
...                 seq_len=32, batch_size=4, n_tokens=4096, lr=3e-3)
>>> result = train(cfg)                                   # doctest: +SKIP
>>> result.status, result.final_val_loss                  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import Field, PositiveInt, model_validator

from .._spec import Spec
from ..arch.spec import ModelSpec
from ..errors import ConfigError, ScalelabWarning, explain
from .records import MeasuredPerf, env_number

__all__ = ["BranchResult", "RunConfig", "StopRun", "TrainResult", "auto_num_threads", "lr_at", "resolve_device",
           "train"]

log = logging.getLogger(__name__)

#: A run whose training loss exceeds this multiple of ln(vocab) (the loss of a uniform guess) is diverged.
DIVERGENCE_FACTOR = 2.0

#: How a run (or a branch) ended.
RunStatus = Literal["completed", "diverged", "pruned"]


class StopRun(Exception):
    """Raised by a ``progress`` callback to stop the run after the point it was told of (a sweep's pruner,
    :mod:`scalelab.tunnel.pruning`). The run ends with status ``"pruned"``; ``decision`` (a dict: why) is
    kept in :attr:`TrainResult.pruned`."""

    def __init__(self, decision: dict[str, Any]) -> None:
        super().__init__(decision.get("reason", "stopped early"))
        self.decision = decision


class RunConfig(Spec):
    """Everything that determines one wind-tunnel run; ``content_hash()`` keys it in the store."""

    model: ModelSpec
    """Architecture of the model to train (dense or MoE; MLA is not supported by the tunnel)."""
    corpus: str = "stdlib"
    """``"stdlib"`` (the Python standard library source) or a path, glob, JSONL, Parquet or saved HF dataset."""
    tokenizer: Literal["byte", "bpe"] = "byte"
    """UTF-8 bytes (vocabulary 256) or a byte-level BPE trained locally on the corpus."""
    bpe_vocab_size: PositiveInt = 4096
    """Vocabulary size of the BPE tokenizer (tokens); the model's ``vocab_size`` must be at least this."""
    seq_len: PositiveInt
    """Tokens per training sequence; at most ``model.seq_len``."""
    batch_size: PositiveInt
    """Sequences per optimizer step."""
    n_tokens: PositiveInt
    """Training tokens; the run takes ``n_tokens // (batch_size * seq_len)`` steps."""
    lr: float = Field(gt=0)
    """Peak learning rate (AdamW); ``eta_max`` of the Power scheduler."""
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    """Final learning rate as a fraction of ``lr`` (cosine, WSD and Power decays)."""
    warmup_tokens: int = Field(0, ge=0)
    """Tokens of linear warmup from 0 to ``lr``."""
    weight_decay: float = Field(0.1, ge=0)
    """Decoupled AdamW weight decay on weight matrices (not on norms, biases, embeddings)."""
    grad_clip: float = Field(1.0, ge=0)
    """Global L2 gradient-norm clip; 0 disables clipping."""
    schedule: Literal["cosine", "constant", "wsd", "power"] = "cosine"
    """Learning-rate schedule after warmup (see the module docstring)."""
    decay_fraction: float = Field(0.2, gt=0, lt=1)
    """Final fraction of tokens spent decaying (``wsd`` and ``power``; MiniCPM finds ~10% enough)."""
    decay_branches: tuple[int, ...] = ()
    """Token counts in the stable phase at which WSD decay branches are taken (``wsd``/``power`` only)."""
    power_a: float = Field(4.6, gt=0)
    """Power scheduler coefficient ``a`` (Shen et al. 2024; laws.md §9, unconfirmed constant)."""
    power_b: float = -0.51
    """Power scheduler exponent ``b`` on tokens seen (Shen et al. 2024; laws.md §9)."""
    eval_every_steps: int = Field(0, ge=0)
    """Evaluate validation loss every this many steps (0: only at the end)."""
    eval_tokens: PositiveInt = 32768
    """Held-out tokens per evaluation (rounded down to whole sequences, at least one)."""
    seed: int = 0
    """Seed of model initialisation and of the data order."""
    device: str = "auto"
    """``"auto"`` (CUDA, then MPS, then CPU) or a torch device string."""
    dtype: Literal["auto", "fp32", "bf16"] = "auto"
    """Compute dtype: ``auto`` is bf16 autocast on GPUs that support it, fp32 elsewhere."""
    compile: bool = False
    """Wrap the model in ``torch.compile`` (worth it on GPUs for runs of more than a few hundred steps)."""
    domain_weights: dict[str, float] | None = None
    """Sampling weight per corpus domain (a mixture); ``None`` samples domains in proportion to size."""
    parametrization: Literal["sp", "mup"] = "sp"
    """``sp``: the standard (GPT-2) parametrisation; ``mup``: maximal update (:mod:`scalelab.tunnel.mup`)."""
    mup_base_d_model: PositiveInt = 64
    """Base width of muP: at this ``d_model`` muP and SP coincide (up to the attention scale)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form; the muP fields are left out under ``sp`` so runs stored before they existed keep
        their content hash."""
        d = super().to_dict()
        if d.get("parametrization") == "sp":
            d.pop("parametrization", None)
            d.pop("mup_base_d_model", None)
        return d

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        m = self.model
        tps = self.batch_size * self.seq_len
        if self.seq_len > m.seq_len:
            raise ValueError(explain("seq_len exceeds the model's context", value=self.seq_len,
                                     allowed=f"at most model.seq_len={m.seq_len}",
                                     fix="raise model.seq_len or lower seq_len"))
        if self.n_tokens < tps:
            raise ValueError(explain("n_tokens is less than one step", value=self.n_tokens,
                                     allowed=f"at least batch_size * seq_len = {tps}",
                                     fix="raise n_tokens or lower batch_size/seq_len"))
        if self.decay_branches:
            if self.schedule not in ("wsd", "power"):
                raise ValueError(explain("decay_branches need a schedule with a stable phase",
                                         value=self.schedule, allowed="'wsd' or 'power'",
                                         fix="set schedule='wsd' or drop decay_branches"))
            stable_end = self.stable_end_tokens
            bad = [b for b in self.decay_branches if not (max(tps, self.warmup_tokens) <= b < stable_end)]
            if bad:
                raise ValueError(explain("decay branch points must lie in the stable phase", value=bad,
                                         allowed=f"token counts in [{max(tps, self.warmup_tokens)}, {stable_end})",
                                         fix="branch after warmup and before the final decay starts"))
            if len({-(-x // tps) for x in self.decay_branches}) != len(self.decay_branches):
                raise ValueError(explain("decay branch points repeat or fall in the same optimizer step",
                                         value=self.decay_branches, allowed=f"points at least {tps} tokens apart",
                                         fix="list each token count once, one step (batch_size * seq_len) apart"))
        return self

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def n_steps(self) -> int:
        """Optimizer steps of the run."""
        return self.n_tokens // self.tokens_per_step

    @property
    def stable_end_tokens(self) -> float:
        """Tokens at which the final decay begins (``wsd``/``power``)."""
        return self.n_tokens * (1.0 - self.decay_fraction)

    def branch_decay_tokens(self, at_tokens: int) -> int:
        """Decay length of the branch taken at ``at_tokens``: the branch run's last ``decay_fraction``."""
        return round(at_tokens * self.decay_fraction / (1.0 - self.decay_fraction))

    def branch_config(self, at_tokens: int) -> RunConfig:
        """The from-scratch run a decay branch at ``at_tokens`` reproduces: ``n_tokens = at + decay``,
        the same ``decay_fraction``, no branches. Its ``content_hash()`` identifies the branch's point."""
        return self.model_copy(update={"n_tokens": int(at_tokens) + self.branch_decay_tokens(at_tokens),
                                       "decay_branches": ()})


# ---- learning-rate schedules ----------------------------------------------------------------------
def lr_at(config: RunConfig, tokens: float) -> float:
    """Learning rate after ``tokens`` training tokens (see the module docstring for the formulas).

    >>> from scalelab.arch import ModelSpec
    >>> m = ModelSpec(n_layers=1, d_model=8, n_heads=2, d_ff=8, vocab_size=256, seq_len=16)
    >>> c = RunConfig(model=m, seq_len=10, batch_size=1, n_tokens=1000, lr=1.0, schedule="wsd",
    ...               warmup_tokens=100, decay_fraction=0.2, min_lr_ratio=0.1)
    >>> lr_at(c, 40), lr_at(c, 500), round(lr_at(c, 900), 4), round(lr_at(c, 1000), 4)
    (0.5, 1.0, 0.3162, 0.1)
    """
    w = config.warmup_tokens
    if w > 0 and tokens < w:
        # Linear warmup to the schedule's value at the end of warmup (eta_max, or the Power law's value);
        # the step about to run counts, so the first step does not waste a zero learning rate.
        return _after_warmup(config, w) * min(1.0, (tokens + config.tokens_per_step) / w)
    return _after_warmup(config, tokens)


def _after_warmup(config: RunConfig, tokens: float) -> float:
    lr, n, w = config.lr, config.n_tokens, config.warmup_tokens
    lr_min = config.min_lr_ratio * lr
    s = config.schedule
    if s == "constant":
        return lr
    if s == "cosine":
        p = min(1.0, max(0.0, (tokens - w) / max(1.0, n - w)))
        return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * p))
    if s == "power":
        # Shen et al. 2024: eta(n) = min(eta_max, beta * a * n^b), beta in sequences (laws.md §9).
        peak = min(lr, config.batch_size * config.power_a * max(tokens, 1.0) ** config.power_b)
    else:
        peak = lr
    start = config.stable_end_tokens
    if tokens < start:
        return peak
    if s == "power":
        # The decay starts from the power-law value, so the floor is relative to it, not to eta_max.
        peak = min(lr, config.batch_size * config.power_a * max(start, 1.0) ** config.power_b)
        lr_min = config.min_lr_ratio * peak
    p = min(1.0, (tokens - start) / max(1.0, n - start))
    if lr_min <= 0:
        return peak * (1.0 - p)  # exponential decay cannot reach 0: fall back to linear
    # Exponential decay (MiniCPM Fig. 8) from the stable value to lr_min: peak * (lr_min/peak)^p.
    return peak * (lr_min / peak) ** p if lr_min < peak else peak


# ---- results ---------------------------------------------------------------------------------------
@dataclass
class BranchResult:
    """One WSD decay branch: branched at ``at_tokens`` from its parent run, decayed for ``decay_tokens``.

    ``curve`` holds the branch's own points (steps after the branch point); ``config_hash`` is the hash
    of ``RunConfig.branch_config(at_tokens)``, the from-scratch run this branch stands for.
    """

    at_tokens: int
    decay_tokens: int
    final_val_loss: float | None
    final_train_loss: float | None
    tokens_seen: int
    steps: int
    status: RunStatus
    config_hash: str
    curve: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult(MeasuredPerf):
    """Outcome of :func:`train`: status, final losses, throughput, counts and the loss curve.

    ``final_val_loss_by_domain`` holds each corpus domain's held-out loss at the end (multi-domain
    corpora only). ``curve`` entries are ``{"step", "tokens", "train_loss", "val_loss", "lr"}``: ``step`` counts
    completed optimizer steps, ``train_loss`` is the mean training cross-entropy (nats/token) since the
    previous point, ``val_loss`` is set where an evaluation ran (else ``None``), ``lr`` is the last
    learning rate used. ``flops_per_token`` is the planner's training FLOPs per token (forward +
    backward, ``scalelab.planner.flops.flops_per_token`` with its default conventions).
    ``step_s``, ``saved_tensor_bytes``, ``peak_rss_bytes`` and ``peak_mem_bytes`` are measured, ``pred_*``
    the planner's prediction for the same model, batch and device (:mod:`scalelab.tunnel.perf`).
    """

    status: RunStatus
    final_train_loss: float | None
    final_val_loss: float | None
    tokens_seen: int
    steps: int
    wall_s: float
    tokens_per_s: float
    n_params: int
    flops_per_token: float
    curve: list[dict[str, Any]] = field(default_factory=list)
    branches: list[BranchResult] = field(default_factory=list)
    config_hash: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    dtype: str = "fp32"
    error: str | None = None
    resumed_from_step: int = 0
    version: str = ""
    final_val_loss_by_domain: dict[str, float] = field(default_factory=dict)
    pruned: dict[str, Any] | None = None

    @property
    def flops(self) -> float:
        """Training FLOPs of the whole run (``flops_per_token * tokens_seen``; branches not included)."""
        return self.flops_per_token * self.tokens_seen

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["branches"] = [b.to_dict() for b in self.branches]
        d["flops"] = self.flops
        return d

    def report(self) -> str:
        """A short text summary."""
        from ..units import format_count

        lines = [
            f"run {self.config_hash}  {self.status}  ({self.device}, {self.dtype})",
            f"  params           {format_count(self.n_params)}",
            f"  tokens           {format_count(self.tokens_seen)} in {self.steps} steps",
            f"  final loss       train {self.final_train_loss}  val {self.final_val_loss}",
            f"  throughput       {self.tokens_per_s:.4g} tokens/s, wall {self.wall_s:.3g} s",
            f"  FLOPs            {self.flops:.3g} ({self.flops_per_token:.3g} per token)",
        ]
        for b in self.branches:
            lines.append(f"  branch @ {format_count(b.at_tokens)} (+{format_count(b.decay_tokens)} decay): "
                         f"val {b.final_val_loss}  [{b.status}]")
        if self.error:
            lines.append(f"  error            {self.error}")
        return "\n".join(lines)


# ---- device helpers --------------------------------------------------------------------------------
def resolve_device(device: str = "auto", dtype: str = "auto") -> tuple[str, str]:
    """``("cuda"|"mps"|"cpu"|..., "bf16"|"fp32")`` for a config's ``device`` and ``dtype``."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ConfigError(explain("unknown device", value=device, allowed="auto, cpu, cuda, cuda:N, mps")) from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(explain("CUDA was requested but is not available", value=device,
                                  fix="use device='auto' or 'cpu'"))
    if dtype == "auto":
        dtype = "bf16" if dev.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return device, dtype


def _planner_flops_per_token(model: ModelSpec, seq_len: int) -> float:
    from ..planner.flops import flops_per_token

    return float(flops_per_token(model, seq_len).model)


# ---- the loop -------------------------------------------------------------------------------------
class _Run:
    """State of one training run (kept in an object so branches can snapshot and restore it)."""

    def __init__(self, config: RunConfig, data, device: str, dtype: str):
        import torch

        from .model import GPT

        self.config, self.data, self.device, self.dtype = config, data, device, dtype
        with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
            torch.manual_seed(config.seed)
            self.raw = GPT(config.model).to(device)
            if config.parametrization == "mup":
                from .mup import apply_mup

                apply_mup(self.raw, config.mup_base_d_model)
        self.model: torch.nn.Module = self.raw
        if config.compile:
            # torch.compile types its result as a plain callable; for a module it is an OptimizedModule.
            self.model = cast(torch.nn.Module, torch.compile(self.raw))
        fused = torch.device(device).type == "cuda"
        if config.parametrization == "mup":
            from .mup import mup_param_groups

            groups = mup_param_groups(self.raw, config.weight_decay, config.mup_base_d_model)
        else:
            groups = self.raw.param_groups(config.weight_decay)
        self.opt = torch.optim.AdamW(groups, lr=config.lr,
                                     betas=(0.9, 0.95), eps=1e-8, **({"fused": True} if fused else {}))
        dev_type = torch.device(device).type
        self.autocast = (torch.autocast(device_type=dev_type, dtype=torch.bfloat16)
                         if dtype == "bf16" else None)
        self.diverge_above = DIVERGENCE_FACTOR * math.log(config.model.vocab_size)
        self._val: torch.Tensor | None = None
        self.eval_s = 0.0  # time spent evaluating, excluded from tokens/s
        self.step_times: list[float] = []  # wall seconds of each training step (plan -> prove, perf.py)
        self.saved_tensor_bytes: int | None = None  # measured on the first step this process trains

    def _ctx(self):
        import contextlib

        return self.autocast if self.autocast is not None else contextlib.nullcontext()

    def step(self, step: int, cfg: RunConfig) -> tuple[float, float]:
        """One optimizer step (the ``step``-th, 0-based) under ``cfg``'s schedule; returns (loss, lr)."""
        import torch

        lr = lr_at(cfg, step * cfg.tokens_per_step)
        for g in self.opt.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)  # muP scales some groups' LR (tunnel/mup.py)
        x, y = self.data.train_batch(cfg.batch_size, cfg.seq_len, cfg.seed, step, cfg.domain_weights)
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        meter = None
        if self.saved_tensor_bytes is None:
            from .perf import SavedTensorMeter

            meter = SavedTensorMeter(exclude=self.raw.parameters())
        with meter() if meter is not None else contextlib.nullcontext(), self._ctx():
            _, loss, aux = self.model(x, y)
        if meter is not None:
            self.saved_tensor_bytes = meter.bytes
        (loss + aux).backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.raw.parameters(), cfg.grad_clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return float(loss.detach()), lr

    def evaluate(self, domain: str | None = None) -> float:
        """Mean validation cross-entropy on the fixed windows (of one domain, or of all)."""
        import torch

        cfg = self.config
        t0 = time.perf_counter()
        if domain is not None:
            val = torch.from_numpy(self.data.val_windows(cfg.seq_len, cfg.eval_tokens, domain))
        else:
            if self._val is None:
                self._val = torch.from_numpy(self.data.val_windows(cfg.seq_len, cfg.eval_tokens))
            val = self._val
        self.model.eval()
        total, n = 0.0, 0
        with torch.no_grad(), self._ctx():
            for i in range(0, len(val), cfg.batch_size):
                rows = val[i : i + cfg.batch_size].to(self.device)
                _, loss, _ = self.model(rows[:, :-1], rows[:, 1:])
                total += float(loss) * len(rows)
                n += len(rows)
        self.model.train()
        self.eval_s += time.perf_counter() - t0
        return total / n

    def diverged(self, loss: float) -> bool:
        return not math.isfinite(loss) or loss > self.diverge_above

    def snapshot(self) -> dict:
        return {"model": copy.deepcopy(self.raw.state_dict()), "opt": copy.deepcopy(self.opt.state_dict())}

    def restore(self, snap: dict) -> None:
        self.raw.load_state_dict(snap["model"])
        self.opt.load_state_dict(snap["opt"])


def _segment(run: _Run, cfg: RunConfig, start: int, stop: int, curve: list, log_every: int,
             progress, event: str,
             on_step: Callable[[int], None] | None = None) -> tuple[RunStatus, float | None, str | None]:
    """Train steps ``[start, stop)`` under ``cfg``; append curve points; returns (status, last train loss, error)."""
    acc, n_acc, last_loss = 0.0, 0, None
    t0, tok0 = time.perf_counter(), start
    for s in range(start, stop):
        t_step = time.perf_counter()
        loss, lr = run.step(s, cfg)  # returns a Python float: the device has finished the step
        run.step_times.append(time.perf_counter() - t_step)
        done = s + 1
        if run.diverged(loss):
            curve.append({"step": done, "tokens": done * cfg.tokens_per_step,
                          "train_loss": loss if math.isfinite(loss) else None, "val_loss": None, "lr": lr})
            return "diverged", None, (f"training loss {loss:.4g} at step {done} is not finite or above "
                                      f"{run.diverge_above:.3g} ({DIVERGENCE_FACTOR} x ln vocab)")
        acc, n_acc, last_loss = acc + loss, n_acc + 1, loss
        is_eval = done == stop or (cfg.eval_every_steps and done % cfg.eval_every_steps == 0)
        if is_eval or done % log_every == 0:
            point = {"step": done, "tokens": done * cfg.tokens_per_step, "train_loss": acc / n_acc,
                     "val_loss": run.evaluate() if is_eval else None, "lr": lr}
            curve.append(point)
            acc, n_acc = 0.0, 0
            if progress is not None:
                dt = time.perf_counter() - t0
                progress(dict(point, event=event, steps=stop,
                              tokens_per_s=(done - tok0) * cfg.tokens_per_step / dt if dt > 0 else None))
        if on_step is not None:
            on_step(done)
    return "completed", last_loss, None


def train(config: RunConfig, *, progress: Callable[[dict], None] | None = None,
          checkpoint_path: str | Path | None = None, checkpoint_every_steps: int = 0,
          num_threads: int | None = None) -> TrainResult:
    """Train one run and return its :class:`TrainResult` (``status="diverged"`` on NaN/runaway loss).

    Parameters
    ----------
    config : RunConfig
        The run.
    progress : callable, optional
        Called with a dict (``event``, ``step``, ``steps``, ``tokens``, ``train_loss``, ``val_loss``,
        ``lr``, ``tokens_per_s``) at each curve point.
    checkpoint_path : path, optional
        If the file exists and was written for the same config hash, training resumes from it; every
        ``checkpoint_every_steps`` steps (0: never) the run's state is written there atomically.
    num_threads : int, optional
        CPU threads for PyTorch during this call (restored afterwards); default ``$SCALELAB_NUM_THREADS``,
        else :func:`auto_num_threads` on CPU, capped at the current setting (a grid worker may have set it).

    Raises
    ------
    ConfigError
        The model cannot be built (MLA) or its vocabulary is smaller than the tokenizer's.
    CorpusError
        The corpus is missing, unreadable, empty or too short for one sequence.
    """
    import torch

    import scalelab

    from .data import load_corpus
    from .model import check_buildable

    t_start = time.perf_counter()
    check_buildable(config.model)
    device, dtype = resolve_device(config.device, config.dtype)
    data = load_corpus(config.corpus, config.tokenizer, config.bpe_vocab_size)
    if config.model.vocab_size < data.vocab_size:
        raise ConfigError(explain("the model's vocabulary is smaller than the tokenizer's",
                                  value=config.model.vocab_size, allowed=f">= {data.vocab_size} ({config.tokenizer})",
                                  fix=f"set model.vocab_size={data.vocab_size} or more"))
    data.check(config.seq_len, config.domain_weights)  # fail before building anything
    prev_threads = torch.get_num_threads()
    threads = num_threads or int(env_number("SCALELAB_NUM_THREADS", 0))
    if threads <= 0 and torch.device(device).type == "cpu":
        # Never more than already set: a grid worker may have given this process its share of the cores.
        threads = min(auto_num_threads(config), prev_threads)
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        return _train(config, data, device, dtype, progress, checkpoint_path, checkpoint_every_steps,
                      t_start, scalelab.__version__)
    finally:
        if threads > 0:
            torch.set_num_threads(prev_threads)


#: Training FLOPs per optimizer step that justify one more CPU thread (see :func:`auto_num_threads`).
FLOPS_PER_STEP_PER_THREAD = 1e10


def auto_num_threads(config: RunConfig) -> int:
    """CPU threads for a run: one per ``FLOPS_PER_STEP_PER_THREAD`` of work per step, at most the cores
    this process may use.

    Tiny wind-tunnel steps do not amortise thread synchronisation: on a 2-core machine a 2-layer,
    d_model 64 model (2.2 GFLOP per step) trained 3x faster on one thread than on two
    (``benchmarks/tunnel_throughput.py --threads``), and grids run several workers side by side. The
    choice depends only on the config and the machine, so a run's numerics do not vary with load.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS/Windows
        cores = os.cpu_count() or 1
    step_flops = _planner_flops_per_token(config.model, config.seq_len) * config.tokens_per_step
    return max(1, min(cores, int(step_flops // FLOPS_PER_STEP_PER_THREAD)))


def _train(config, data, device, dtype, progress, checkpoint_path, checkpoint_every_steps, t_start, version, *,
           run_cls: type = _Run, writes_checkpoints: bool = True, device_label: str | None = None):
    """The training loop shared by :func:`train` and each rank of :mod:`scalelab.tunnel.ddp` (which passes
    its DDP run class, writes checkpoints from rank 0 only, and labels the device with the world size)."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(torch.device(device))
    run = run_cls(config, data, device, dtype)
    chash = config.content_hash()
    steps = config.n_steps
    tps = config.tokens_per_step
    log_every = max(1, steps // 500)
    curve: list[dict] = []
    branches: list[BranchResult] = []
    start = 0
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        if state.get("config_hash") == chash:
            run.restore(state)
            start, curve = state["step"], state["curve"]
            branches = [BranchResult(**b) for b in state["branches"]]
            log.info("resumed run %s from step %d", chash, start)
        else:
            warnings.warn(f"checkpoint {ckpt} belongs to another config ({state.get('config_hash')}); "
                          "starting from scratch", ScalelabWarning, stacklevel=3)
    resumed_from = start

    def save(done: int) -> None:
        if not writes_checkpoints or ckpt is None:
            return
        tmp = ckpt.with_name(ckpt.name + ".tmp")
        torch.save({"config_hash": chash, "step": done, "curve": curve, "branches": [b.to_dict() for b in branches],
                    **run.snapshot()}, tmp)
        os.replace(tmp, ckpt)

    # Branch points in steps: the branch starts from the state after this many steps.
    todo = sorted(b for b in config.decay_branches)
    branch_steps = {-(-b // tps): b for b in todo}
    stops = sorted(s for s in branch_steps
                   if start <= s < steps and branch_steps[s] not in {x.at_tokens for x in branches})

    status: RunStatus
    status, last_loss, error = "completed", None, None
    t_train = 0.0
    seg_start = start
    pruned: dict[str, Any] | None = None
    for stop in [*stops, steps]:
        t0, ev0 = time.perf_counter(), run.eval_s

        def on_step(done: int) -> None:
            if ckpt is not None and checkpoint_every_steps and done % checkpoint_every_steps == 0:
                save(done)

        try:
            status, last_loss, error = _segment(run, config, seg_start, stop, curve, log_every, progress, "step",
                                                on_step)
        except StopRun as e:  # a pruner stopped the run after the curve point it was shown
            status, last_loss, error, pruned = "pruned", None, None, e.decision
        t_train += time.perf_counter() - t0 - (run.eval_s - ev0)  # training steps only, no evaluation
        seg_start = stop
        if status != "completed":
            break
        if stop in branch_steps and stop < steps:
            branches.append(_branch(run, config, stop, branch_steps[stop], progress))
            if ckpt is not None and checkpoint_every_steps:
                save(stop)

    done_steps = curve[-1]["step"] if curve else start
    if status in ("completed", "pruned"):  # a pruned run's last evaluation stands as its final loss
        final_val = next((p["val_loss"] for p in reversed(curve) if p["val_loss"] is not None), None)
        final_train = curve[-1]["train_loss"] if curve else last_loss
    else:
        final_val, final_train = None, None
    trained_tokens = (done_steps - resumed_from) * tps
    by_domain: dict[str, float] = {}
    if status == "completed" and len(data.domains) > 1:
        # Per-domain held-out loss at the end, for data-mixture laws (RegMix, Ye et al. 2024).
        by_domain = {d: run.evaluate(d) for d in data.domains if len(data.val[d]) > config.seq_len}
    from .perf import measured_memory, median_step_s, planned_or_empty

    perf = {"step_s": median_step_s(run.step_times),
            **measured_memory(run.raw, run.opt, device, run.saved_tensor_bytes),
            **planned_or_empty(config, device, dtype)}
    return TrainResult(
        **perf,
        status=status,
        final_train_loss=final_train,
        final_val_loss=final_val,
        tokens_seen=done_steps * tps,
        steps=done_steps,
        wall_s=time.perf_counter() - t_start,
        tokens_per_s=trained_tokens / t_train if t_train > 0 else 0.0,
        n_params=run.raw.n_params(),
        flops_per_token=_planner_flops_per_token(config.model, config.seq_len),
        curve=curve,
        branches=branches,
        config_hash=chash,
        config=config.to_dict(),
        device=device_label or device,
        dtype=dtype,
        error=error,
        resumed_from_step=resumed_from,
        version=version,
        final_val_loss_by_domain=by_domain,
        pruned=pruned,
    )


def _branch(run: _Run, config: RunConfig, at_step: int, at_tokens: int, progress) -> BranchResult:
    """Decay from the state after ``at_step`` steps under ``config.branch_config(at_tokens)``, record
    it, and restore the stable-phase state."""
    bcfg = config.branch_config(at_tokens)
    snap = run.snapshot()
    curve: list[dict] = []
    try:
        status, _, _ = _segment(run, bcfg, at_step, bcfg.n_steps, curve, max(1, bcfg.n_steps // 500),
                                progress, "branch")
    finally:
        run.restore(snap)
    final_val = next((p["val_loss"] for p in reversed(curve) if p["val_loss"] is not None), None)
    return BranchResult(
        at_tokens=at_tokens,
        decay_tokens=bcfg.n_tokens - at_tokens,
        final_val_loss=final_val if status == "completed" else None,
        final_train_loss=curve[-1]["train_loss"] if curve and status == "completed" else None,
        tokens_seen=bcfg.n_steps * bcfg.tokens_per_step,
        steps=bcfg.n_steps,
        status=status,
        config_hash=bcfg.content_hash(),
        curve=curve,
    )
