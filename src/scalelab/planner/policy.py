"""Activation save policies: what a transformer layer keeps for backward, and what it recomputes.

One type, :class:`SavePolicy`, replaces the ``"none" | "selective" | "full"`` strings that the memory,
FLOP, communication and step-time models used to spell out each on their own. ``Layout.recompute`` names a
policy; :func:`get_save_policy` resolves it.

A policy is a set of recomputed modules, in Megatron-Core's ``--recompute-modules`` vocabulary
(``megatron/core/transformer/transformer_config.py``), plus two policies of other frameworks:

=============  ============================================================================================
module         what is dropped from the saved tensors and rebuilt in backward
=============  ============================================================================================
``core_attn``  the attention core (scores, softmax, dropout): Korthikanti et al. 2022 §5 "selective"
``act``        the MLP activation output: SwiGLU keeps gate and up and recomputes ``silu(gate) * up``;
               GELU keeps the fc1 output and recomputes ``gelu`` (Megatron ``moe_act``; the SwiGLU
               intermediates are about 60% of a Llama 3 layer's saved bytes)
``layernorm``  the norm outputs (the inputs of QKV and of the MLP); the norm inputs stay
``mla_up_proj`` MLA's up-projected Q, K and V, rebuilt from the latents (DeepSeek-V3 report §3.2.3)
``layer``      everything but the layer input: full recompute (Chen et al. 2016; Korthikanti §4.3)
=============  ============================================================================================

Named policies (``SAVE_POLICIES``): ``none``, ``selective`` (core_attn), ``full`` (layer), ``act``,
``selective-act``, ``deepseek-v3`` (layernorm + mla_up_proj + act, MoE inputs and SwiGLU inputs cached
in FP8: report §3.2.3 and §3.3.3) and ``torchtitan-op`` (torchtitan's op-level selective AC: it saves
the outputs of every other matmul, of SDPA and of the TP reduce-scatters and recomputes the rest;
``torchtitan/models/llama3/infra/parallelize.py``, ``_save_list`` and ``_custom_policy``). Any other
name may be written as recomputed modules joined by ``+``, e.g. ``"core_attn+act+layernorm"``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from ..errors import ConfigError, explain

__all__ = ["MODULES", "SAVE_POLICIES", "SavePolicy", "get_save_policy", "policy_names"]

MODULES = ("core_attn", "act", "layernorm", "mla_up_proj", "layer")
"""Modules a policy may recompute (Megatron-Core's names; ``layer`` = full recompute)."""


@dataclass(frozen=True)
class SavePolicy:
    """What one transformer layer saves for backward.

    Attributes
    ----------
    name : str
        The policy's name (``Layout.recompute``).
    recompute : frozenset of str
        Modules whose outputs are dropped and rebuilt during backward (see :data:`MODULES`).
    moe_cache_bytes : float or None
        Bytes per element of the cached MoE expert inputs and SwiGLU inputs (DeepSeek-V3 caches them
        in FP8: 1); ``None`` uses the activation dtype.
    op_sac : bool
        torchtitan's op-level selective AC instead of tensor bookkeeping by module.
    description : str
        One line for reports and ``--help``.
    """

    name: str
    recompute: frozenset[str] = field(default_factory=frozenset)
    moe_cache_bytes: float | None = None
    op_sac: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        bad = sorted(set(self.recompute) - set(MODULES))
        if bad:
            raise ConfigError(explain("unknown recompute module", value=bad, allowed=", ".join(MODULES)))
        if self.moe_cache_bytes is not None and not self.moe_cache_bytes > 0:
            raise ConfigError(explain("moe_cache_bytes must be > 0", value=self.moe_cache_bytes))

    @property
    def full(self) -> bool:
        """Only the layer input is kept (full recompute)."""
        return "layer" in self.recompute

    def recomputes(self, module: str) -> bool:
        """Whether ``module`` is rebuilt in backward (full recompute rebuilds every module)."""
        return self.full or module in self.recompute

    @property
    def reruns_tp_forward(self) -> bool:
        """Full recompute reruns the layer's forward TP collectives (and EP all-to-alls)."""
        return self.full

    @property
    def reruns_tp_all_gathers(self) -> bool:
        """The backward gathers the sequence-parallel linear inputs again while the forward's other TP
        collectives are not rerun: torchtitan's op-level SAC saves the outputs of ``reduce_scatter_tensor``
        but not of ``all_gather_into_tensor`` (``_save_list`` in ``parallelize_llama.py``), so rebuilding
        the column-parallel linears' inputs for their backward re-gathers them, two all-gathers per layer
        and micro-batch. PyTorch lets collectives be recomputed inside a checkpointed region
        (``torch/_functorch/partitioners.py`` of torch 2.13, the version read here: ``force_save_collectives``
        skips nodes tagged for recompute; in eager mode the SAC dispatch mode replays them). Full recompute
        reruns every forward collective (:attr:`reruns_tp_forward`)."""
        return self.op_sac and not self.full

    @property
    def reruns_attention(self) -> bool:
        """The attention core runs again in backward (CP gathers K, V again)."""
        return self.full or "core_attn" in self.recompute

    @property
    def short(self) -> str:
        """Label in ``str(layout)``: ``norc``, ``sel``, ``full`` or the name."""
        return {"none": "norc", "selective": "sel", "full": "full"}.get(self.name, self.name)


def _p(name: str, modules: tuple[str, ...], description: str, **kw) -> SavePolicy:
    return SavePolicy(name=name, recompute=frozenset(modules), description=description, **kw)


#: The named policies, least recomputation first.
SAVE_POLICIES: dict[str, SavePolicy] = {p.name: p for p in (
    _p("none", (), "save every tensor backward needs"),
    _p("act", ("act",), "recompute the MLP activation (SwiGLU: keep gate and up, rebuild their product)"),
    _p("selective", ("core_attn",), "recompute the attention core (Megatron selective; Korthikanti 2022)"),
    _p("selective-act", ("core_attn", "act"), "selective plus the MLP activation"),
    _p("torchtitan-op", (), "torchtitan op-level SAC: save every other matmul output, SDPA and TP "
       "reduce-scatter outputs", op_sac=True),
    _p("deepseek-v3", ("layernorm", "mla_up_proj", "act"), "DeepSeek-V3: recompute norms, MLA up-projections "
       "and SwiGLU; MoE and SwiGLU inputs cached in FP8 (report sec. 3.2.3, 3.3.3)", moe_cache_bytes=1.0),
    _p("full", ("layer",), "keep each layer's input only, recompute the rest (full recompute)"),
)}


def policy_names() -> tuple[str, ...]:
    """Names of the built-in policies, least recomputation first."""
    return tuple(SAVE_POLICIES)


@functools.lru_cache(maxsize=256)
def get_save_policy(name: str | SavePolicy) -> SavePolicy:
    """The policy called ``name``: a built-in name or recomputed modules joined by ``+``.

    >>> get_save_policy("selective").recompute
    frozenset({'core_attn'})
    >>> sorted(get_save_policy("act+layernorm").recompute)
    ['act', 'layernorm']
    """
    if isinstance(name, SavePolicy):
        return name
    if not isinstance(name, str):
        raise ConfigError(explain("a save policy is a name", value=name, allowed=", ".join(SAVE_POLICIES)))
    key = name.strip().lower()
    if key in SAVE_POLICIES:
        return SAVE_POLICIES[key]
    parts = [p.strip() for p in key.split("+") if p.strip()]
    if parts and all(p in MODULES for p in parts):
        for known in SAVE_POLICIES.values():  # the same modules as a named policy: use its name
            if known.recompute == frozenset(parts) and not known.op_sac and known.moe_cache_bytes is None:
                return known
        return SavePolicy(name=key, recompute=frozenset(parts), description="recompute " + ", ".join(parts))
    raise ConfigError(explain("unknown save policy (recompute)", value=name,
                              allowed=", ".join(SAVE_POLICIES) + "; or modules joined by '+' from "
                              + ", ".join(MODULES),
                              fix="e.g. recompute='selective' or 'core_attn+act'"))
