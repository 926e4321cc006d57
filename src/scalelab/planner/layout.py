"""The training setup (``TrainSpec``) and the parallel layout (``Layout``) that the planner evaluates.

Mesh axes (Megatron-LM / torchtitan naming). The world of ``n_gpus`` ranks factors as
``dp * cp * tp * pp``:

- ``tp``: tensor parallelism, splits each matmul's weights across ranks (usually inside a node);
- ``pp``: pipeline parallelism, splits the layers into ``pp`` stages (``interleave`` virtual stages each);
- ``cp``: context parallelism, splits each sequence across ranks (ring attention);
- ``dp``: data parallelism over the rest; ``zero`` shards model states over the DP group
  (over a node only with ``shard_group="node"``, i.e. HSDP);
- ``ep``: expert parallelism for MoE layers, with ``etp`` the tensor-parallel degree of each expert (defaults
  to ``tp``): Megatron-Core folds ``etp * ep`` (times the expert data parallelism) over a stage's
  ``tp * dp * cp`` ranks, so with ``etp=1`` EP may span the TP ranks too (``ep`` beyond ``dp * cp``).

Degrees are checked for positivity here; whether they divide the model and the cluster is checked
against a ``ModelSpec`` and a ``ClusterSpec`` in :func:`scalelab.planner.plan.check_layout`, which
returns reasons instead of raising, so a search can explain every rejected layout.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from .._spec import Derived, Spec
from ..errors import ConfigError, explain
from .policy import SavePolicy, get_save_policy

Precision = Literal["fp32", "bf16", "bf16-fp32-grad", "fp8", "fp4"]
"""Training precision recipe (bytes per parameter with Adam in parentheses):

- ``fp32``: fp32 weights, gradients, Adam states (16);
- ``bf16``: bf16 weights and gradients, fp32 master and Adam m, v (16; ZeRO paper's K=12);
- ``bf16-fp32-grad``: as bf16 but gradients accumulated in fp32 (18; Megatron's main_grad);
- ``fp8``: fp8 matmuls (Transformer Engine / DeepSeek-V3), bf16 weights plus fp8 working copies;
- ``fp4``: NVFP4 matmuls with bf16 weights and fp4 working copies.
"""

Optimizer = Literal["adamw", "adam8bit", "adafactor", "sgd", "galore"]
Recompute = str
"""A save-policy name (:data:`scalelab.planner.policy.SAVE_POLICIES`: none, act, selective, selective-act,
torchtitan-op, deepseek-v3, full) or recomputed modules joined by ``+``."""
Offload = Literal["none", "cpu", "nvme"]


class LoRASpec(Spec):
    """LoRA / QLoRA fine-tuning: frozen base weights plus trainable low-rank adapters."""

    rank: PositiveInt = 16
    """Adapter rank r; each adapted matrix W (m x n) gains r * (m + n) trainable parameters."""
    target_modules: tuple[str, ...] = ("q", "k", "v", "o")
    """Which projections get adapters: any of q, k, v, o, gate, up, down (or ``all``)."""
    base_dtype: Literal["bf16", "fp16", "int8", "nf4", "fp4"] = "bf16"
    """Storage of the frozen base weights; nf4/fp4 is QLoRA (Dettmers et al. 2023)."""
    double_quant: bool = True
    """QLoRA double quantisation of the block scales (0.127 instead of 0.5 bits per parameter)."""


class TrainSpec(Spec):
    """What one training run does: sequence length, batch, total tokens, precision, optimizer."""

    seq_len: PositiveInt = 2048
    """Tokens per sequence."""
    global_batch: Annotated[PositiveInt, Derived] = Field(default=None, validate_default=True)
    """Sequences per optimizer step; derived from ``global_batch_tokens`` when omitted."""
    global_batch_tokens: Annotated[PositiveInt, Derived] = Field(default=None, validate_default=True)
    """Tokens per optimizer step (``global_batch * seq_len``); give one of the two."""
    total_tokens: float | None = Field(None, gt=0)
    """Tokens to train on in total (for days, GPU-hours and cost)."""
    precision: Precision = "bf16"
    """Precision recipe, see :data:`Precision`."""
    optimizer: Optimizer = "adamw"
    """Optimizer whose states are held: AdamW (2 states), 8-bit Adam, Adafactor (factored second
    moment), SGD with momentum (1 state), or GaLore (Adam states in a rank-``galore_rank`` subspace)."""
    galore_rank: PositiveInt = 128
    """Projection rank for GaLore optimizer states (Zhao et al. 2024)."""
    lora: LoRASpec | None = None
    """LoRA/QLoRA fine-tuning; ``None`` trains every parameter."""
    document_tokens: PositiveInt | None = None
    """Packed sequences with a document mask: the length-weighted mean document length in tokens,
    sum(l^2) / sum(l) over the documents packed into a sequence. Each token attends within its own
    document only (NeMo's packed fine-tuning, TransformerEngine's THD format with cu_seqlens,
    FlexAttention document masks), so the attention core does ``document_tokens / seq_len`` of the whole
    sequence's work, in kernels that see that many keys. ``None``: attention over the whole sequence."""

    @model_validator(mode="after")
    def _check_documents(self) -> TrainSpec:
        if self.document_tokens is not None and self.document_tokens > self.seq_len:
            raise ConfigError(explain("document_tokens cannot exceed seq_len", value=self.document_tokens,
                                      allowed=f"1..{self.seq_len}",
                                      fix="pass the packed documents' sum(l^2)/sum(l), or leave it out"))
        return self

    def to_dict(self) -> dict:
        """Plain-JSON form; ``document_tokens`` only when set, so specs written before it existed keep their
        content and config hashes."""
        d = super().to_dict()
        if self.document_tokens is None:
            d.pop("document_tokens", None)
        return d

    @property
    def attention_tokens(self) -> int:
        """Keys each query's attention spans at most: ``document_tokens`` or the whole sequence."""
        return self.document_tokens or self.seq_len

    @model_validator(mode="after")
    def _resolve_batch(self) -> TrainSpec:
        gb, gbt = self.global_batch, self.global_batch_tokens
        if gb is not None and gbt is not None and gbt != gb * self.seq_len:
            # one of the two was silently dropped (the tokens), so the plan ran a batch nobody asked for
            raise ConfigError(explain("global_batch and global_batch_tokens disagree", value={
                "global_batch": gb, "seq_len": self.seq_len, "global_batch_tokens": gbt},
                allowed=f"global_batch_tokens = global_batch * seq_len = {gb * self.seq_len}",
                fix="give one of the two (the other is derived)"))
        if self.global_batch is None and self.global_batch_tokens is None:
            object.__setattr__(self, "global_batch_tokens", self.seq_len * 512)
        if self.global_batch is None:
            object.__setattr__(self, "global_batch", max(1, self.global_batch_tokens // self.seq_len))
        object.__setattr__(self, "global_batch_tokens", self.global_batch * self.seq_len)
        return self


class Layout(Spec):
    """A parallel layout. ``dp=None`` fills the remaining ranks: ``n_gpus / (tp * pp * cp)``."""

    dp: PositiveInt | None = None
    """Data-parallel degree; ``None`` = whatever the cluster leaves after tp, pp and cp."""
    tp: PositiveInt = 1
    """Tensor-parallel degree (must divide n_heads and n_kv_heads or be a multiple of the latter)."""
    pp: PositiveInt = 1
    """Pipeline-parallel stages (must not exceed n_layers)."""
    cp: PositiveInt = 1
    """Context-parallel degree (must divide seq_len)."""
    ep: PositiveInt = 1
    """Expert-parallel degree (must divide n_experts; ``etp * ep`` must divide ``tp * dp * cp``)."""
    etp: PositiveInt | None = None
    """Tensor-parallel degree inside each expert; defaults to ``tp``."""
    zero: Literal[0, 1, 2, 3] = 0
    """ZeRO stage: 0 replicate, 1 shard optimizer states, 2 + gradients, 3 + parameters (= FSDP)."""
    shard_group: Literal["dp", "node"] = "dp"
    """Group that ZeRO shards over: the whole DP group, or only the ranks in a node (HSDP)."""
    zero3_gather: Literal["micro-batch", "step"] = "micro-batch"
    """When ZeRO-3/FSDP gathers parameters and reduces gradients. ``micro-batch``: gathered for the forward
    and again for the backward of every micro-batch, gradients reduce-scattered after each backward
    (FSDP's reshard-after-forward, Zhao et al. 2023; DeepSpeed ZeRO-3). ``step``: gathered once per step
    and kept unsharded across the micro-batches, gradients accumulated unsharded and reduce-scattered
    after the last one (FSDP2 ``reshard_after_forward=False`` with gradient sync only on the last
    micro-batch: what torchtitan does under pipeline parallelism). Fewer collectives, more memory."""
    sequence_parallel: bool = False
    """Megatron sequence parallelism: shard norm/dropout activations over tp (needs tp > 1)."""
    recompute: Recompute = "none"
    """Activation save policy (what is recomputed): ``none``, ``selective`` (attention core, Korthikanti
    et al. 2022), ``full``, ``act``, ``selective-act``, ``torchtitan-op``, ``deepseek-v3``, or modules
    joined by ``+`` (see :mod:`scalelab.planner.policy`)."""
    flash_attention: bool = True
    """Fused attention that never stores the s x s score matrix (Dao et al. 2022)."""
    micro_batch: PositiveInt = 1
    """Sequences per micro-batch on each DP rank."""
    interleave: PositiveInt = 1
    """Virtual pipeline stages per rank (1 = plain 1F1B; >1 = interleaved 1F1B, Narayanan et al. 2021)."""
    offload_optimizer: Offload = "none"
    """Where optimizer states (and fp32 master weights) live: GPU, CPU DRAM or NVMe (ZeRO-Offload/Infinity)."""
    offload_params: Offload = "none"
    """Where parameters live between uses (ZeRO-Infinity; needs zero=3)."""
    offload_activation_layers: int = Field(0, ge=0)
    """Transformer layers whose saved activations are copied to host memory during the forward and back for
    the backward: the first N (Megatron-Core ``cpu_offloading_num_layers`` with Transformer Engine's CPU
    offload, whose schedule keeps at most the other layers' activations on the GPU at once). 0 = none.
    Needs ``pp=1`` and fewer layers than the model has, as Megatron-Core does."""

    def to_dict(self) -> dict:
        """Plain-JSON form; ``offload_activation_layers`` only when set, so layouts written before it existed keep
        their content and config hashes."""
        d = super().to_dict()
        if not self.offload_activation_layers:
            d.pop("offload_activation_layers", None)
        return d

    @field_validator("recompute", mode="before")
    @classmethod
    def _check_recompute(cls, v: object) -> str:
        return get_save_policy(v).name

    @property
    def save_policy(self) -> SavePolicy:
        """The :class:`~scalelab.planner.policy.SavePolicy` that ``recompute`` names."""
        return get_save_policy(self.recompute)

    @property
    def expert_tp(self) -> int:
        return self.etp or self.tp

    def stage_layers(self, n_layers: int) -> int:
        """Layers on the most-loaded pipeline stage, ceil(n_layers / pp).

        >>> Layout(pp=3).stage_layers(32)
        11
        """
        return -(-n_layers // self.pp)

    def model_parallel_size(self) -> int:
        """Ranks that hold one replica's shards: tp * pp * cp."""
        return self.tp * self.pp * self.cp

    def short(self) -> str:
        """Compact label, e.g. ``'dp128 tp8 pp16 z1 sel mb1'``."""
        parts = [f"dp{self.dp}" if self.dp else "dp*", f"tp{self.tp}", f"pp{self.pp}"]
        if self.interleave > 1:
            parts.append(f"v{self.interleave}")
        if self.cp > 1:
            parts.append(f"cp{self.cp}")
        if self.ep > 1:
            parts.append(f"ep{self.ep}")
        if self.etp is not None and self.etp != self.tp:
            parts.append(f"etp{self.etp}")
        parts.append(f"z{self.zero}" + ("h" if self.shard_group == "node" else "")
                     + ("s" if self.zero == 3 and self.zero3_gather == "step" else ""))
        if self.sequence_parallel:
            parts.append("sp")
        parts.append(self.save_policy.short)
        parts.append(f"mb{self.micro_batch}")
        if self.offload_optimizer != "none":
            parts.append(f"oo-{self.offload_optimizer}")
        if self.offload_params != "none":
            parts.append(f"op-{self.offload_params}")
        if self.offload_activation_layers:
            parts.append(f"oa{self.offload_activation_layers}")
        return " ".join(parts)

    def __str__(self) -> str:
        return self.short()
