"""Framework profiles: the memory conventions, save-policy meanings and overlaps a training stack is
known to have, so that ``plan(..., framework="torchtitan")`` answers for that stack.

Every number a profile sets is a default: anything passed explicitly to :func:`~scalelab.planner.plan.plan`
(``memory_conventions``, ``dp_overlap``, ``ep_overlap``, ``efficiency``...) wins. What each profile
sets, and why:

- ``megatron`` (Megatron-LM / Megatron-Core): fused SwiGLU saves 3 widths of f, the vocab-parallel
  cross-entropy keeps one fp32 buffer of the logits (``fused_vocab_parallel_cross_entropy``: softmax
  and its gradient in place). The planner's defaults are this profile. Its TP and PP traffic stays on
  the critical path (``tp_overlap = pp_overlap = 0``), as in the Megatron-LM 2021-2022 runs the device
  efficiencies were set on (Narayanan et al. 2021, Korthikanti et al. 2022), which predate
  ``overlap_p2p_comm`` and TP overlap; today's Megatron-Core turns ``overlap_p2p_comm`` on by default
  for interleaved schedules: pass ``pp_overlap=1`` (or use ``nemo``) for a run that kept it.
- ``nemo`` (NeMo 24.x: Megatron-Core with Transformer Engine, as NVIDIA's recipes run it): the
  ``megatron`` conventions, plus Transformer Engine's TP communication overlap (``ub_tp_comm_overlap``,
  userbuffers: each sequence-parallel all-gather and reduce-scatter is split into chunks that run beside
  the chunks of the GEMM it feeds or drains; ``tp_overlap=1``, hidden up to that GEMM time, since no
  published source gives the share it hides; with sequence parallelism only, which Megatron-LM requires
  for it) and ``overlap_p2p_comm`` with interleaved schedules
  (``pp_overlap=1``). Both are on in NVIDIA/dgxc-benchmarking's Llama 3.1 recipes
  (``llama3.1/llama3.1_405b.yaml``: ``ub_tp_comm_overlap: true``, ``overlap_p2p_comm: true``). Its FP8
  recipe is Transformer Engine's delayed scaling; no published figure separates its cast costs, so the
  profile keeps torchao's :data:`~scalelab.planner.step_time.FLOAT8_TORCHAO_TENSORWISE` costs. Its
  optimizer, ``distributed_fused_adam`` with fp32 states over bf16 weights, keeps no fp32 master copy but
  the low 16 bits of each one (``store_param_remainders``: the bf16 weight is the high half), so the master
  weights cost 2 bytes (``master_weight_bytes=2``); a run with ``fp8_params`` stores full fp32 masters
  (``store_params``) and needs ``master_weight_bytes=4`` (NeMo v2.0.0 = 24.09,
  ``megatron_base_model.py`` ``setup_optimization``).
- ``megatron-deepspeed`` (BLOOM, MT-NLG): Megatron's layers and loss with DeepSpeed's ZeRO-1 optimizer;
  the same memory conventions.
- ``torchtitan`` (FSDP2, eager or compiled PyTorch): ``selective`` means its op-level SAC
  (``torchtitan-op``); eager SwiGLU saves 4 widths (gate, ``silu(gate)``, up and the product); the loss is
  ``F.cross_entropy(logits.float())``: the bf16 head output, an fp32 log-softmax output and the two fp32
  gradients of backward (``logits_copies=3``, ``logits_output_bytes=2``); with pipeline parallelism its
  FSDP keeps parameters unsharded across micro-batches and accumulates unsharded fp32 gradients
  (``pp_zero3_gather="step"``; ``torchtitan/parallelisms/parallelize_llama.py`` ``apply_fsdp``); its
  DTensor sequence parallelism gathers before the column-parallel linears, which save the gathered input
  (``sp_saves_gathered_inputs``; AsyncTP's fused all-gather-matmul does not, and ``async_tp=True`` turns it off);
  with TP its loss is DTensor's loss parallel, whose fused backward holds four fp32 logits buffers at once
  (``loss_parallel_logits_copies=4``); under PP, PyTorch's pipeline stage keeps every micro-batch's
  output, so the last stage holds all the step's bf16 logits (``pp_keeps_stage_outputs``); FSDP's Float8
  all-gather (a row's ``zero3_gather_weight_bytes=1``) is only switched on with a data-parallel shard
  degree above 1, so FSDP over CP ranks alone gathers bf16 (``low_precision_gather_needs_dp_shard``;
  ``torchtitan/float8.py`` ``Float8Handler``), and only the blocks' ``Float8Linear`` weights gather in fp8,
  the embeddings, norms and the bf16 head in bf16 (``low_precision_gather_linears_only``); FSDP2 keeps
  fp32 parameter and gradient shards and no master or fp8 copy, 16 bytes per sharded parameter with Adam
  in bf16 and fp8 alike (``fp32_param_shards``); under an interleaved schedule of one round each stage
  reduces and frees its fp32 accumulators at its own last backward (``pp_reduce_per_stage``); without
  PP, FSDP2's root group (embedding, final norm, head) stays gathered for the whole step and the head's
  gradient unsharded through backward (``fsdp_root_unsharded``); FSDP2 reduce-scatters gradients in fp32
  (``grad_reduce_bytes=4``: ``MixedPrecisionPolicy(reduce_dtype=torch.float32)``, hard-coded in
  ``apply_fsdp`` at 1ea476e, April 2024, then ``training.mixed_precision_reduce``'s default), which also
  sets the bytes of its unsharded gradient accumulators under PP. Its attention runs ``wq``, ``wk``, ``wv``
  as three GEMMs (``separate_qkv``; Megatron's profiles fuse them), which the per-GEMM roofline
  (:mod:`~scalelab.planner.gemm`) times apart.
- ``torchtitan-compile``: the same with ``torch.compile``, whose fused kernels move the elementwise
  bytes Megatron's fused kernels do (torchtitan as its docs/performance.md ran it, commit 9dec370 of
  December 2024: the loss stays eager, ``train.py``'s ``torch.compile(loss_fn)`` is commented out).
- ``torchtitan-compile-2025``: torchtitan with ``--training.compile`` from April 2025 on, which compiles
  the loss too (commit bbb1b616e, pull request #1033: ``build_cross_entropy_loss`` wraps
  ``cross_entropy(pred.float())`` in ``torch.compile``; the commits of the June 2025 benchmarks, 820504e and
  e7c0cae, have it). Inductor fuses the upcast, log-softmax and its backward: the loss saves the bf16
  logits and two fp32 statistics per row, and backward writes one bf16 gradient, so the vocabulary-wide
  bytes at the loss's peak are 2 + 2 per element where the eager loss holds 2 + 3 x 4
  (``logits_copies=0.5``: one bf16 buffer is half an fp32 one, beside ``logits_output_bytes=2``). With TP
  the loss is DTensor's loss parallel, whose compiled form still saves an fp32 log-softmax output, so
  ``loss_parallel_logits_copies=4`` stays. Both measured with torch's own compiler in
  ``tests/planner/test_compiled_loss.py``.
- ``deepspeed`` (Hugging Face models with DeepSpeed ZeRO): eager layers (4 SwiGLU widths),
  Hugging Face's fp32 upcast of the logits and separate ``q_proj``, ``k_proj``, ``v_proj`` GEMMs, as torchtitan.
- ``llm-foundry`` (MosaicML llm-foundry / Composer with PyTorch FSDP): eager layers, as ``deepspeed``, but
  its loss is flash-attn's fused cross-entropy on the head's bf16 output (``loss_fn: fused_crossentropy``,
  the default of ``llmfoundry/models/mpt/modeling_mpt.py`` at v0.3.0; flash-attn 1.0.9's
  ``losses/cross_entropy.py`` saves the bf16 logits and an fp32 log-sum-exp per row, and its backward writes
  one bf16 gradient): 2 + 2 bytes per logit at the loss's peak where the ``deepspeed`` profile counts
  2 + 3 x 4; MPT's attention runs one fused ``Wqkv`` GEMM. Added after the held-out check on llm-foundry's
  published MPT tables found the ``deepspeed`` profile rejecting 89 of their 216 runs as out of memory for
  its loss alone (docs/planner.md); only that convention and the fused QKV were read from the code. Its
  attention is ``attn_impl: flash`` (flash-attn's kernel, FlashAttention-2 in current llm-foundry, at the
  device's attention efficiency).
- ``llm-foundry-triton``: the same with ``attn_impl: triton``, the attention of llm-foundry's
  ``flash_attn_triton.py`` (FlashAttention written in Triton, "copied from" HazyResearch's), the default of
  the benchmark scripts that measured its 2023 MPT tables. That kernel reaches ``attention_efficiency_scale
  = 0.64`` of the device's FlashAttention-2 figure: fitted on one table (A100 40GB, 78 runs: the median
  |step-time error| is lowest there) and checked on the three other Triton tables (H100 BF16, H100 FP8,
  A100 80GB), which were not used (``benchmarks/planner_validation.py``, the llm-foundry section;
  docs/planner.md).
- ``deepseek-v3`` (HAI-LLM, DeepSeek-V3 report arXiv:2412.19437 §3.2-3.3): ``selective`` means its
  policy (norms, MLA up-projections and SwiGLU recomputed, FP8 caches), Adam moments in bf16
  (``optimizer_state_bytes=2``), DualPipe hides the expert all-to-all (``ep_overlap=1``), and
  node-limited routing sends each token to at most 4 nodes, once per node (``ep_nodes_per_token=4``,
  report sec. 2.1.2, 3.2.2); the kernels that hide it hold 20 of 132 SMs (``comm_sm_fraction``, sec. 3.2.2)
  and place the tokens themselves, so no separate permutation kernels run (``moe_fused_dispatch``).

Every other profile charges a MoE layer's token permutations as Megatron-Core's alltoall dispatcher runs
them, four memory-bound kernels per layer around the all-to-alls (Megatron-LM
``megatron/core/transformer/moe/token_dispatcher.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..errors import ConfigError, explain
from .async_tp import ASYNC_TP_HIDING_EFFICIENCY
from .comm import RING_TORCH_ALLGATHER, RING_TRANSFORMER_ENGINE, RingRecipe
from .layout import Layout
from .memory import MemoryConventions
from .step_time import FLOAT8_TORCHAO_TENSORWISE, Float8Recipe

__all__ = ["FRAMEWORKS", "LLM_FOUNDRY_TRITON_ATTENTION", "FrameworkProfile", "get_framework"]


@dataclass(frozen=True)
class FrameworkProfile:
    """Defaults of one training framework.

    Attributes
    ----------
    name : str
    memory : MemoryConventions
        Memory bookkeeping of its layers, loss and sharding.
    policy_aliases : tuple of (str, str)
        What the framework means by a generic save-policy name, e.g. ``("selective", "torchtitan-op")``.
    dp_overlap, ep_overlap : float
        Overlap of DP/ZeRO and of expert all-to-all traffic with compute (see :mod:`~scalelab.planner.step_time`).
    tp_overlap : float
        Share of TP collectives hidden behind the GEMMs they are split against, at most those GEMMs'
        time (Transformer Engine's userbuffers overlap; ``model_step_time``).
    pp_overlap : float
        Share of pipeline sends hidden behind compute with interleaved schedules (Megatron-Core's
        ``overlap_p2p_comm``, off without interleaving whatever this says).
    comm_sm_fraction : float
        Share of SMs held by overlapped all-to-all kernels (see ``model_step_time``).
    dp_comm_sm_fraction : float
        Share of SMs held by the kernels of DP/ZeRO collectives while compute hides them: hiding ``h``
        seconds costs ``h f / (1 - f)`` (:func:`~scalelab.planner.step_time.dp_exposed_s`). 0 (nothing
        charged) unless the framework's published runs are calibrated with it.
    ep_nodes_per_token : int or None
        Node-limited expert routing with one network copy per node (see ``comm_per_step``).
    fused_elementwise : bool
        Norms, activations, rotary and residual adds run as fused kernels (Megatron, ``torch.compile``);
        False: one eager PyTorch kernel per op (see ``eager_elementwise_bytes_per_token_layer``).
    efficiency_scale : float
        Multiplies the device's matmul and attention efficiencies: what this framework's kernels reach
        relative to Megatron-LM's, calibrated on the calibration split of its published runs
        (``tests/assets/planner_published_runs.json``, ``benchmarks/planner_validation.py``).
    attention_efficiency_scale : float
        Multiplies the device's attention efficiency (after ``efficiency_scale``): what this framework's
        attention kernel reaches relative to the catalog's figure, which is FlashAttention-2's (H100, A100)
        or cuDNN's (Blackwell). 1 unless the framework runs another kernel and its published runs were
        calibrated on it (``llm-foundry-triton``). Devices without an attention figure time attention at the
        matmul efficiency, which this does not scale.
    pp_zero3_gather : str or None
        ``Layout.zero3_gather`` this framework uses with ZeRO-3 under pipeline parallelism (torchtitan:
        ``step``, its ``apply_fsdp`` turns reshard-after-forward off when PP is on "to avoid
        per-microbatch all-gathers", and PyTorch's pipeline schedule syncs gradients on the last
        micro-batch only); ``None`` leaves the layout's.
    float8 : Float8Recipe
        What FP8 training (``precision="fp8"``) costs besides GEMMs at the fp8 peak: casts to fp8, the
        fp8 GEMMs' efficiency, a bf16 LM head (:class:`~scalelab.planner.step_time.Float8Recipe`; every
        profile: torchao's tensorwise Float8 as torchtitan's published runs used it). Override with
        ``dataclasses.replace(get_framework(name), float8=Float8Recipe(...))``; ``FLOAT8_IDEAL`` charges nothing.
    separate_qkv : bool
        Its attention runs the query, key and value projections as three GEMMs (torchtitan's ``wq``,
        ``wk``, ``wv``; Hugging Face's ``q_proj``, ``k_proj``, ``v_proj``) rather than Megatron-LM's fused
        ``linear_qkv``: with GQA and TP the key and value GEMMs are narrow (Llama 3.1 8B at TP8: N = 128)
        and the per-GEMM roofline finds them memory-bound (:mod:`~scalelab.planner.gemm`).
    async_tp : bool
        torch's AsyncTP is on (torchtitan ``parallelism.enable_async_tensor_parallel``; off in every profile,
        as in torchtitan's defaults): :mod:`~scalelab.planner.async_tp` models what it hides. Turn it on per
        run (``plan(..., async_tp=True)``, ``--async-tp``).
    async_tp_hiding : float
        Share of the chunk GEMMs' time under which AsyncTP's transfers hide
        (:data:`~scalelab.planner.async_tp.ASYNC_TP_HIDING_EFFICIENCY`, fitted on torchtitan's Table 4 pair).
    cp_ring : RingRecipe
        What its context parallelism moves between ranks and, per ring step, in HBM
        (:class:`~scalelab.planner.comm.RingRecipe`): TransformerEngine's ring of K,V sends and fused
        corrections by default; for torchtitan torch's one K,V all-gather per pass, fp32 dK,dV sends and
        eager fp32 merges, with K,V at every query head.
    moe_tp_dispatch : str
        How a MoE layer's experts move their tensor-parallel traffic when ``etp > 1``
        (:data:`~scalelab.planner.comm.MOE_TP_DISPATCH`): ``"gemm"`` (default) like a dense MLP's, under
        ``tp_overlap``; ``"alltoall"`` (nemo) Megatron-Core's alltoall token dispatcher, which all-gathers the
        ``top_k`` routed copies over the expert's TP ranks and reduce-scatters the output with plain
        collectives outside Transformer Engine's GEMM overlap (exposed).
    moe_fused_dispatch : bool
        Its expert dispatch and combine kernels write tokens straight into their expert-grouped place
        (DeepSeek-V3's, report sec. 3.2.2), so no separate token permutations run; False (default): the
        permutations Megatron-Core's alltoall dispatcher runs as kernels of their own are charged as
        memory-bound time (:func:`~scalelab.planner.step_time.moe_permute_bytes_per_token_layer`).
    sources : tuple of str
        Where the settings come from.
    """

    name: str
    memory: MemoryConventions = field(default_factory=MemoryConventions)
    policy_aliases: tuple[tuple[str, str], ...] = ()
    dp_overlap: float = 1.0
    ep_overlap: float = 0.0
    tp_overlap: float = 0.0
    pp_overlap: float = 0.0
    fused_elementwise: bool = True
    ep_nodes_per_token: int | None = None
    comm_sm_fraction: float = 0.0
    dp_comm_sm_fraction: float = 0.0
    efficiency_scale: float = 1.0
    attention_efficiency_scale: float = 1.0
    pp_zero3_gather: str | None = None
    float8: Float8Recipe = FLOAT8_TORCHAO_TENSORWISE
    separate_qkv: bool = False
    cp_ring: RingRecipe = RING_TRANSFORMER_ENGINE
    async_tp: bool = False
    async_tp_hiding: float = ASYNC_TP_HIDING_EFFICIENCY
    moe_tp_dispatch: str = "gemm"
    moe_fused_dispatch: bool = False
    sources: tuple[str, ...] = ()

    def resolve_layout(self, layout: Layout) -> Layout:
        """``layout`` with its save policy translated into what this framework runs, and ZeRO-3's
        gather schedule under pipeline parallelism set to the framework's unless the layout sets it."""
        upd = self.layout_defaults(layout.pp, layout.zero)
        if "zero3_gather" in layout.model_fields_set:
            upd.pop("zero3_gather", None)
        target = dict(self.policy_aliases).get(layout.recompute)
        if target is not None:
            upd["recompute"] = target
        return layout.model_copy(update=upd) if upd else layout

    def layout_defaults(self, pp: int, zero: int) -> dict[str, str]:
        """Layout fields this framework sets for given degrees: ``zero3_gather`` under pipeline parallelism."""
        if self.pp_zero3_gather is not None and pp > 1 and zero == 3:
            return {"zero3_gather": self.pp_zero3_gather}
        return {}


_EAGER = MemoryConventions(swiglu_saved_widths=4.0, logits_bytes=4.0, logits_copies=3.0, logits_output_bytes=2.0)
#: torchtitan: eager conventions, and DTensor sequence parallelism saves the gathered linear inputs
_TORCHTITAN = dataclasses.replace(_EAGER, sp_saves_gathered_inputs=True, loss_parallel_logits_copies=4.0,
                                  pp_keeps_stage_outputs=True, pp_microbatch_buffers=True,
                                  pp_stage_split="torchtitan", low_precision_gather_needs_dp_shard=True,
                                  fp32_param_shards=True, low_precision_gather_linears_only=True,
                                  pp_reduce_per_stage=True, fsdp_root_unsharded=True, grad_reduce_bytes=4.0)

#: torchtitan since April 2025 with --training.compile: the loss is compiled too (2 + 2 bytes per logit)
#: (one bf16 gradient = half an fp32 buffer; with TP, DTensor loss parallel's four fp32 buffers stay)
_TORCHTITAN_COMPILED_LOSS = dataclasses.replace(_TORCHTITAN, logits_copies=0.5)

#: llm-foundry: eager layers, flash-attn's fused cross-entropy on bf16 logits (2 + 2 bytes per logit)
_FUSED_CROSS_ENTROPY = dataclasses.replace(_EAGER, logits_bytes=2.0, logits_copies=1.0, logits_output_bytes=2.0)

#: Transformer Engine's linears under an fp8 recipe (Megatron-Core's, so the megatron and nemo profiles): the
#: fp8 GEMM input saved for backward (1 byte), and the fp8 weight with its transpose cached for the step (2 bytes
#: per parameter beside the bf16 weight). Rows that keep fp8 parameters (fp8_params) set their own weight bytes.
_TRANSFORMER_ENGINE = MemoryConventions(fp8_saves_quantized_linear_inputs=True, fp8_weight_copy_bytes=2.0)

_LLM_FOUNDRY = FrameworkProfile("llm-foundry", memory=_FUSED_CROSS_ENTROPY, fused_elementwise=False, sources=(
    "mosaicml/llm-foundry v0.3.0 llmfoundry/models/mpt/modeling_mpt.py lines 721-737 (loss_fn "
    "'fused_crossentropy': flash_attn.losses.cross_entropy.CrossEntropyLoss; setup.py pins flash-attn==1.0.9), "
    "its attention's single Wqkv linear; flash-attn v1.0.9 flash_attn/losses/cross_entropy.py "
    "(save_for_backward(logits, lse, labels); backward returns one gradient of the logits' dtype)",))

#: The Triton attention's share of the device's FlashAttention-2 efficiency, fitted on llm-foundry's A100 40GB
#: table (``_heldout_llm_foundry.calibrate_triton_attention``; a test refits it).
LLM_FOUNDRY_TRITON_ATTENTION = 0.64

#: The built-in profiles.
FRAMEWORKS: dict[str, FrameworkProfile] = {p.name: p for p in (
    FrameworkProfile("megatron", memory=_TRANSFORMER_ENGINE, sources=(
        "Megatron-LM megatron/core/fusions/fused_bias_swiglu.py (gate, up saved; product rebuilt by TE/fused "
        "kernels when asked), megatron/core/tensor_parallel/cross_entropy.py (vocab-parallel CE in fp32)",
        "NVIDIA/TransformerEngine v1.8 transformer_engine/pytorch/module/linear.py (under fp8 saved_inputmat is "
        "the fp8 cast of the input) and layernorm_linear.py (the norm writes ln_out in fp8, which is saved); "
        "v2.8 the same through its quantizers: fp8_saves_quantized_linear_inputs",
        "NVIDIA/TransformerEngine v1.8 module/linear.py: with grad enabled the fp8 weight is cast into a "
        "workspace with its transpose (with_transpose), cached across micro-batches (cache_name 'weight') "
        "whenever Megatron-Core passes is_first_microbatch, which it does unless "
        "disable_parameter_transpose_cache (core_v0.9.0 extensions/transformer_engine.py): "
        "fp8_weight_copy_bytes 2",)),
    FrameworkProfile("nemo", memory=dataclasses.replace(_TRANSFORMER_ENGINE, master_weight_bytes=2.0, grad_bytes=2.0),
                     tp_overlap=1.0, pp_overlap=1.0,
                     moe_tp_dispatch="alltoall", sources=(
        "NVIDIA/dgxc-benchmarking v24.11.1 llama3.1/llama3.1_405b.yaml (NeMo 24.09): ub_tp_comm_overlap true "
        "with its ub_tp_comm_overlap_cfg (ring_exchange, pipeline and bulk methods per GEMM), overlap_p2p_comm "
        "true, batch_p2p_comm false",
        "NeMo Framework user guide, Communication Overlap: TP collectives overlapped in bulk with independent "
        "GEMMs and pipelined (chunked) with dependent ones; no hidden share published",
        "Megatron-LM megatron/training/arguments.py: overlap_p2p_comm on by default, forced off without a "
        "virtual pipeline ('non-interleaved schedule does not support overlapping p2p communication')",
        "NVIDIA/NeMo v2.0.0 (the 24.09 container) nemo/collections/nlp/models/language_modeling/megatron_base_model.py "
        "setup_optimization: distributed_fused_adam with optimizer dtype fp32 and a bf16 model (megatron_amp_O2) "
        "sets store_params=False, store_param_remainders=True (master_weight_bytes=2); with fp8_params, "
        "store_params=True (a full master copy in the optimizer dtype)",
        "a bf16 gradient buffer (grad_bytes=2, whatever the precision recipe; --gradient-dtype fp32 for NeMo 2.0's "
        "default grad_reduce_in_fp32): every NVIDIA performance configuration of NeMo sets it: Apex "
        "DistributedFusedAdam's grad_sync_dtype bf16 in dgxc-benchmarking v24.11.1's seven NeMo recipes "
        "(llama3.1 8b/70b/405b, gpt3_175b_hydra, nemotron4-15b/340b, grok1_314b), in NeMo-Framework-Launcher 24.07's "
        "one FP8 pretraining config (gpt3/175b_fp8.yaml) and nemotron_340b.yaml, and in NVIDIA's MLPerf Training "
        "v4.0 GPT-3 implementation (conf/optim/distributed_fused_adam.yaml); Megatron-Bridge 25.11's performance "
        "recipes set grad_reduce_in_fp32 False. Apex allocates its contiguous buffer in grad_sync_dtype "
        "(_init_grad_buffer); the launcher's generic configs (fp8: False) leave Apex's fp32 default",
        "Megatron-LM core_v0.9.0 megatron/core/transformer/moe/token_dispatcher.py MoEAlltoAllTokenDispatcher "
        "(NeMo's moe_token_dispatcher_type alltoall, e.g. dgxc-benchmarking v24.11.1 grok1/grok1_314b.yaml): "
        "token_permutation all-gathers the routed tokens over TP (gather_from_sequence_parallel_region) after "
        "the EP all-to-all, token_unpermutation reduce-scatters them; plain collectives, not userbuffers",)),
    FrameworkProfile("megatron-deepspeed", sources=(
        "bigscience-workshop/Megatron-DeepSpeed: Megatron layers and loss, DeepSpeed ZeRO-1 bf16 optimizer "
        "(BLOOM, Le Scao et al. 2022 sec. 3.4)",)),
    FrameworkProfile("torchtitan", memory=_TORCHTITAN, fused_elementwise=False, pp_zero3_gather="step",
                     separate_qkv=True,
                     cp_ring=RING_TORCH_ALLGATHER, policy_aliases=(("selective", "torchtitan-op"),), sources=(
        "pytorch/torchtitan models/llama3/infra/parallelize.py (op SAC save list), components/loss.py "
        "(cross_entropy on logits.float()), docs/performance.md (measured memory); eager by default "
        "(compile off): one kernel per elementwise op",
        "torchtitan 1ea476e (2024-04-24) torchtitan/parallelisms/parallelize_llama.py: FSDP2 "
        "MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32), hard-coded; from 5c69c02 "
        "(2024-05-20) training.mixed_precision_reduce, default 'float32' (grad_reduce_bytes=4)",)),
    FrameworkProfile("torchtitan-compile", memory=_TORCHTITAN, pp_zero3_gather="step", cp_ring=RING_TORCH_ALLGATHER,
                     separate_qkv=True,
                     policy_aliases=(("selective", "torchtitan-op"),), sources=(
        "torchtitan with --compile: torch.compile fuses each block's elementwise chains (docs/performance.md: "
        "Llama 3.1 8B on 8 H100 5,762 -> 6,667 tokens/s/GPU from compile alone)",)),
    FrameworkProfile("torchtitan-compile-2025", memory=_TORCHTITAN_COMPILED_LOSS, pp_zero3_gather="step",
                     separate_qkv=True,
                     cp_ring=RING_TORCH_ALLGATHER, policy_aliases=(("selective", "torchtitan-op"),), sources=(
        "torchtitan bbb1b616e (2025-04-02, pull request #1033) torchtitan/components/loss.py "
        "build_cross_entropy_loss: torch.compile(loss_fn) with --training.compile ('compiled saved more "
        "memory than chunked loss ever could', the pull request's discussion); the loss's saved tensors "
        "measured in tests/planner/test_compiled_loss.py",)),
    FrameworkProfile("deepspeed", memory=_EAGER, fused_elementwise=False, separate_qkv=True, sources=(
        "Hugging Face transformers LlamaForCausalLM (logits.float() before the loss), DeepSpeed ZeRO",)),
    _LLM_FOUNDRY,
    dataclasses.replace(_LLM_FOUNDRY, name="llm-foundry-triton",
                        attention_efficiency_scale=LLM_FOUNDRY_TRITON_ATTENTION, sources=(*_LLM_FOUNDRY.sources,
        "mosaicml/llm-foundry scripts/train/benchmarking/submit_benchmarks.py at b2a43a1 and ef350d9: --attn_impl "
        "defaults to triton (llmfoundry/models/layers/flash_attn_triton.py, 'Copied from' HazyResearch's "
        "flash_attn_triton.py); attention_efficiency_scale fitted on the README's A100 40GB table and checked on "
        "its H100 BF16, H100 FP8 and A100 80GB tables (benchmarks/planner_validation.py)")),
    FrameworkProfile("deepseek-v3", memory=MemoryConventions(optimizer_state_bytes=2.0),
                     policy_aliases=(("selective", "deepseek-v3"),), ep_overlap=1.0,
                     ep_nodes_per_token=4, comm_sm_fraction=20 / 132, moe_fused_dispatch=True, sources=(
        "DeepSeek-V3 technical report (arXiv:2412.19437) sec. 3.2.1 DualPipe, 3.2.3 memory savings "
        "(recompute RMSNorm and MLA up-projections, bf16 AdamW moments), 3.3.3 FP8 activation caching",)),
)}


def get_framework(name: str | FrameworkProfile) -> FrameworkProfile:
    """The profile called ``name`` (see :data:`FRAMEWORKS`).

    >>> get_framework("torchtitan").memory.logits_copies
    3.0
    """
    if isinstance(name, FrameworkProfile):
        return name
    try:
        return FRAMEWORKS[str(name).strip().lower()]
    except KeyError:
        raise ConfigError(explain("unknown framework", value=name, allowed=", ".join(FRAMEWORKS),
                                  fix="pass one of them, or set memory_conventions and overlaps yourself")) from None
