"""Memory per GPU for training (and the weights alone for inference): model states, activations, buffers.

Symbols: L = n_layers, h = d_model, a = n_heads, f = d_ff, V = vocab_size, s = sequence length,
b = micro-batch, t = tp, p = pp, v = interleave, c = cp, e = ep, d = dp, Psi = parameters.
All results are bytes per GPU for the peak pipeline stage (the stage whose total is largest).

Sources
-------
- Model states per parameter and ZeRO sharding: Rajbhandari et al. 2020 (ZeRO), §5 and Table 1:
  ``(2 + 2 + K) Psi`` for DDP, ``4 Psi + K Psi / N_d`` (stage 1), ``2 Psi + (2 + K) Psi / N_d``
  (stage 2), ``(4 + K) Psi / N_d`` (stage 3), K = 12 for mixed-precision Adam.
- Megatron's 18 bytes/param (bf16 weight, fp32 main grad, fp32 master, Adam m and v):
  Megatron-LM ``theoretical_memory_usage.py``; Korthikanti et al. 2022 Fig. 1.
- Activations: Korthikanti et al. 2022 (arXiv:2205.05198) §4, Table 2, written as a sum of the tensors a
  layer saves for backward so that GQA, MLA, SwiGLU, MoE, FlashAttention and CP follow from the same
  bookkeeping; pipeline in-flight microbatches from the 1F1B and interleaved schedules
  (Narayanan et al. 2021; Megatron-LM ``schedules.py``: warm-up microbatches per rank).
- Offload: ZeRO-Offload (Ren et al. 2021) and ZeRO-Infinity (Rajbhandari et al. 2021).
- LoRA (Hu et al. 2021) and QLoRA (Dettmers et al. 2023, §3: NF4 with block size 64, double
  quantisation of the scales to 0.127 bits/param).
- Optimizers: 8-bit Adam (Dettmers et al. 2022, block-wise scales of 2048), Adafactor (Shazeer & Stern
  2018, factored second moment, no first moment), GaLore (Zhao et al. 2024, states ``m r + 2 n r`` for an
  ``m x n`` matrix, m <= n).

See ``docs/memory-and-flops.md`` for every convention and what is not modelled.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Literal, NamedTuple

from ..errors import ConfigError, explain
from ..units import GiB
from .flops import lora_params_by_layer
from .policy import SavePolicy, get_save_policy

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterator

    from ..arch.spec import ModelSpec
    from .layout import Layout, LoRASpec, TrainSpec

__all__ = [
    "PRECISION_RECIPES",
    "MemoryBreakdown",
    "MemoryConventions",
    "PrecisionRecipe",
    "activation_bytes_per_layer",
    "activation_offload_bytes",
    "cp_ring_buffer_bytes",
    "embedding_activation_bytes",
    "fsdp_root_unsharded_bytes",
    "inference_weights_bytes",
    "linear_input_bytes",
    "logits_buffer_bytes",
    "lora_trainable_params",
    "memory_per_gpu",
    "offload_terms",
    "offloaded_state_bytes_by_rank",
    "pipeline_buffer_bytes",
    "pipeline_kept_outputs_bytes",
    "pipeline_microbatch_buffers_bytes",
    "quantized_bytes_per_param",
    "zero3_gather_bytes",
    "zero3_gather_weight_bytes_per_param",
    "zero_model_states_bytes",
]


# ---- conventions and recipes -------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryConventions:
    """Bookkeeping conventions of the memory model. Defaults describe a modern Megatron/TE-style run.

    Attributes
    ----------
    activation_bytes : float or None
        Bytes per stored activation element; ``None`` takes it from the precision recipe (4 for fp32,
        else 2: Korthikanti et al. store 16-bit activations).
    dropout : bool
        The layer applies dropout (attention probabilities, attention output, MLP output, embedding),
        storing 1-byte masks and the dropped-out probabilities (GPT-3/Megatron: yes; Llama: no).
    dropout_mask_bytes : float
        Bytes per dropout-mask element (Korthikanti et al. 2022: 1).
    norm_stats : bool
        Count the fp32 per-token statistics a norm saves (mean and rstd for LayerNorm, rstd for RMSNorm).
    swiglu_saved_widths : float
        Tensors of width f a SwiGLU MLP saves: 3 with a fused activation (gate and up outputs, then the
        product that feeds the down projection; Megatron ``bias_swiglu``), 4 in eager PyTorch (also
        ``silu(gate)``).
    attention_output_copy : bool
        The attention kernel saves its output in a layout that is a separate copy from the
        output-projection input (eager PyTorch with a (b, a, s, d) layout); False for Megatron/TE.
    logits_bytes : float
        Bytes per element of the logits the loss computes in (``--logits-dtype``; Megatron's
        vocab-parallel cross-entropy and PyTorch's ``cross_entropy(logits.float())``: 4, fp32).
    logits_copies : float
        Buffers of the vocabulary width (in ``logits_bytes``) alive at the loss's peak. Megatron's fused
        vocab-parallel cross-entropy: 1 (softmax and its gradient are written in place). Eager
        ``F.cross_entropy`` on an fp32 copy (torchtitan): 3 (the log-softmax output, the gradient coming
        in and the one going out; the caching allocator keeps the forward's blocks reserved).
    logits_output_bytes : float
        Bytes per element of the head's own output kept beside them (bf16 logits cast to fp32: 2).
    loss_parallel_logits_copies : float or None
        ``logits_copies`` when the head and the loss are split over the vocabulary by TP (t > 1) and the
        framework's vocab-parallel loss allocates differently; ``None``: ``logits_copies``. PyTorch's
        DTensor loss parallel (torchtitan with TP): 4. Its fused backward
        (``torch/distributed/tensor/parallel/loss.py``, ``_nll_loss_and_log_softmax_backward``) returns
        ``(zeros_like(x) + exp(x)) * grad``: the saved log-softmax output, the zeros, their sum and the
        product are alive at once, where eager ``F.cross_entropy`` needs three.
    pp_keeps_stage_outputs : bool
        With pipeline parallelism the last stage keeps every micro-batch's output (the head's logits, in
        ``logits_output_bytes``) until the step ends: PyTorch's pipelining appends each forward's output
        to ``output_chunks`` for the schedule's return value (``torch.distributed.pipelining``
        ``stage.py`` ``forward_one_chunk``); torchtitan's last stage outputs the logits.
    pp_microbatch_buffers : bool
        With pipeline parallelism, the stage-boundary buffers are per micro-batch, not one each way
        (``torch.distributed.pipelining`` as torchtitan ran it, torch nightly of 2024-12-23): a receive
        buffer per micro-batch on every stage but the first (``PipelineStage._prepare_forward_infra``)
        and a gradient receive buffer per micro-batch on every stage but the last
        (``_prepare_backward_infra``), both allocated once and kept; every forward output kept in
        ``output_chunks`` until the next step (``forward_one_chunk`` appended it on every stage until
        pytorch/pytorch#153383, May 2025); and each backward's input gradient left in its receive
        buffer's ``.grad`` until ``clear_runtime_states`` at the next step (``stage_backward``; freed
        early only since pytorch/pytorch#164329). See :func:`pipeline_microbatch_buffers_bytes`.
    pp_stage_split : str
        How the layers are split over pipeline stages: ``"even"`` (contiguous, extra layers on the last
        stages) or ``"torchtitan"`` (``generate_split_points``: first stage ``L // (p v)`` layers, middle
        stages one more while the remainder lasts, the last stage the rest; Llama 3.1 405B on PP8:
        15, 16 x 6, 15).
    loss_chunks : int
        Chunked (fused linear) cross-entropy computes the loss ``loss_chunks`` token blocks at a time, so
        only one block's logits are alive (Liger kernel, Megatron ``--cross-entropy-loss-fusion``).
    master_weight_bytes : float or None
        Bytes per parameter of the optimizer's master copy; ``None`` takes the precision recipe's (fp32
        master: 4). 0 when the weights themselves are fp32 (FSDP2 shards fp32 parameters and casts them
        to bf16 per layer: pass ``master_weight_bytes=0`` with ``weight_bytes=4``).
    weight_bytes : float or None
        Bytes per stored (sharded) parameter; ``None`` takes the recipe's (2 for bf16).
    grad_bytes : float or None
        Bytes per element of the stored gradients the optimizer reads (the gradient buffer); ``None`` takes
        the recipe's (4 for ``bf16-fp32-grad``, ``fp8`` and ``fp4``: fp32 main gradients; 2 for ``bf16``).
        Apex's ``DistributedFusedAdam`` (NeMo's ``distributed_fused_adam``) allocates its contiguous gradient
        buffer in ``grad_sync_dtype`` (``_init_grad_buffer``: ``torch.zeros([buffer_size],
        dtype=grad_sync_dtype)``; apex 59b80ee, July 2024), which defaults to the optimizer's ``dtype``
        (fp32): a NeMo config with ``grad_sync_dtype: bf16`` keeps 2-byte gradients.
    recompute_working_set : bool
        With full recomputation, add the activations of the one layer being recomputed during backward.
    zero3_tiles : int
        ZeRO-Infinity's memory-centric tiling (Rajbhandari et al. 2021 §5.1.3): a layer's operators are
        split into this many tiles, gathered and reduced one at a time, so ZeRO-3 buffers hold
        ``1 / zero3_tiles`` of a layer.
    zero3_prefetch_layers : int
        Unsharded layers held by ZeRO-3/FSDP at once (the one computing and the one prefetched).
    fp8_weight_copy_bytes : float
        Bytes per weight of the low-precision working copy kept beside the bf16 weights by the fp8
        recipe (Transformer Engine caches the fp8 weight; 2 if the transpose is cached too).
    fp4_weight_copy_bytes : float
        The same for the NVFP4 recipe: 4-bit values plus an e4m3 scale per 16 (0.5 + 1/16).
    optimizer_state_bytes : float
        Bytes per optimizer-state element for Adam/SGD/GaLore/Adafactor states (fp32: 4; DeepSeek-V3
        keeps Adam moments in bf16: 2).
    comm_buffer_bytes : float
        Extra communication buckets per GPU (e.g. a DDP bucket), bytes.
    zero3_gather_weight_bytes : float or None
        Bytes per parameter of the unsharded copy that ZeRO-3/FSDP gathers; ``None``: the 16-bit
        working copy (4 for fp32 training). FSDP2's Float8 all-gather gathers fp8 weights (1;
        torchtitan ``enable_fsdp_float8_all_gather``).
    low_precision_gather_needs_dp_shard : bool
        The low-precision gather of ``zero3_gather_weight_bytes`` (below the 16-bit copy) is only switched
        on when the weights are sharded over data-parallel ranks, not over context-parallel ranks alone:
        with a data-parallel shard degree (excluding CP) of 1 the gathered copy is 16-bit. torchtitan at
        9dec370 (December 2024): ``torchtitan/float8.py`` ``Float8Handler.__init__`` sets
        ``enable_fsdp_float8_all_gather = parallel_dims.dp_shard_enabled and
        float8_config.enable_fsdp_float8_all_gather`` and ``parallel_dims.py`` has ``dp_shard_enabled =
        dp_shard > 1``, while ``parallelize_llama.py`` still applies FSDP over the ``dp_shard_cp`` mesh when
        CP is on; so FSDP 1 x CP 8 gathers bf16 weights whatever the config asks. See
        :func:`zero3_gather_weight_bytes_per_param`.
    sp_saves_gathered_inputs : bool
        With sequence parallelism, the column-parallel linears (QKV, MLP in) save the all-gathered input
        (all T tokens, not T / tp): DTensor's ``SequenceParallel`` + ``ColwiseParallel`` in eager PyTorch
        (torchtitan without AsyncTP) gathers before the linear, which saves what it receives. Megatron
        (False) saves the sharded input and gathers it again in backward (Korthikanti et al. 2022 §4.2.2).
    fp8_saves_quantized_linear_inputs : bool
        Under the ``fp8`` precision recipe the linear layers save their input for the weight gradient as
        the fp8 tensor their GEMM ran on (1 byte per element), not the bf16 activation: Transformer Engine
        (v1.8 ``module/linear.py``: ``saved_inputmat = inputmat``, the fp8 cast, and
        ``module/layernorm_linear.py``: the norm kernel writes ``ln_out`` in fp8 and that is saved; v2.8 the
        same through its quantizers, the column-wise copy or, with sequence parallelism, the local shard).
        Counted at 1 byte: the QKV and MLP-in inputs (norm outputs), the MLP-out input (the SwiGLU product
        or GELU output) and the output projection's input, which under FlashAttention is an extra fp8 copy
        beside the bf16 output the attention kernel keeps; a MoE layer's expert inputs and products
        likewise. The megatron and nemo profiles set it (Megatron-Core's linears are Transformer Engine's).
    grad_reduce_bytes : float or None
        Bytes per gradient element that the data-parallel reduction moves (the DP all-reduce, the ZeRO/FSDP
        reduce-scatter and HSDP's replica all-reduce): the reduce dtype. ``None`` takes the precision
        recipe's (:func:`~scalelab.planner.comm.gradient_reduce_bytes`: 4 for ``fp32`` and
        ``bf16-fp32-grad``, else 2). FSDP2 casts each gradient to ``MixedPrecisionPolicy.reduce_dtype``
        before its reduce-scatter; torchtitan sets it to fp32 (4): hard-coded
        ``MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)`` in
        ``torchtitan/parallelisms/parallelize_llama.py`` at 1ea476e (April 2024, the commit of its A100
        table, "TODO: Expose `reduce_dtype` as a config option"), then ``training.mixed_precision_reduce``
        (5c69c02, May 2024), default ``"float32"``. Also the default of ``zero3_unsharded_grad_bytes``.
    zero3_unsharded_grad_bytes : float or None
        Bytes per element of the unsharded gradients that accumulate across micro-batches when ZeRO-3
        gathers once per step (``Layout.zero3_gather="step"``): FSDP2 upcasts them to its reduce dtype
        (``FSDPParam.to_accumulated_grad_if_needed``). ``None``: ``grad_reduce_bytes`` when that is set,
        else 4 (FSDP2's fp32 reduce dtype as torchtitan runs it); see :meth:`unsharded_grad_bytes`.
    fsdp_root_unsharded : bool
        ZeRO-3 gathering per micro-batch: the parameters outside the wrapped transformer blocks (the
        embedding, final norm and head: FSDP2's root group) stay gathered from their forward to the end of
        backward, and the head's unsharded (16-bit) gradient from the head's backward to the end of
        backward. torch's FSDP2 never reshards the root after forward (``FSDPState._lazy_init``: "For the
        root, do not reshard after forward since for training, the parameters would be freed and
        all-gathered immediately": ``post_forward_mesh_info = None``), and a group whose forward inputs
        need no gradient (the root's token ids) gets no post-backward hook
        (``FSDPParamGroup._register_post_backward_hook``) and reduces in the final callback
        (``_root_post_backward_final_callback``). torchtitan wraps each block and then the whole model
        (``apply_fsdp``: ``fully_shard(model, ...)``), whose own parameters are ``tok_embeddings``, ``norm``
        and ``output``. Under pipeline parallelism with ``zero3_gather="step"`` they are counted with the
        stage's unsharded parameters already. Counted at the 16-bit copy (the head and embedding gather in
        bf16 under torchtitan's Float8) unless ``low_precision_gather_linears_only`` is off.
    fp32_param_shards : bool
        The stored (sharded) parameters are the fp32 ones the optimizer updates: 4 bytes of weight and 4
        of (fp32, sharded) gradient per parameter besides the optimizer states, no master copy and no
        persistent low-precision working copy, whatever the precision recipe says; the copy that ZeRO-3
        gathers is counted at :func:`zero3_gather_weight_bytes_per_param` (bf16, or fp8 with a Float8
        all-gather), never at the stored fp32. FSDP2 as torchtitan runs it: the model is built in fp32
        (``train.py`` at 9dec370), ``apply_fsdp`` (``torchtitan/parallelisms/parallelize_llama.py``) shards
        it with ``MixedPrecisionPolicy(param_dtype=bfloat16, reduce_dtype=float32)`` (config_manager's
        ``mixed_precision_param`` / ``mixed_precision_reduce`` defaults), which casts to bf16 only in the
        all-gather and writes the reduce-scatter's fp32 output into the fp32 sharded ``.grad``; torchao's
        dynamic-scaling ``Float8Linear`` (eab345c) casts its weight to fp8 in every forward and caches no
        fp8 copy (with ``enable_fsdp_float8_all_gather`` ``WeightWithDynamicFloat8CastTensor.
        fsdp_pre_all_gather`` casts the fp32 shard). Adam: 4 + 4 + 8 = 16 bytes per sharded parameter
        for bf16 and fp8 alike, where the ``fp8`` recipe's Transformer Engine convention (bf16 weight,
        cached fp8 copy, fp32 master and gradient) counts 19. Applies without LoRA.
    low_precision_gather_linears_only : bool
        The low-precision gather of ``zero3_gather_weight_bytes`` covers only the transformer blocks'
        weight matrices; embeddings, norms (and the router) and the LM head are gathered as the 16-bit
        copy. torchao's ``convert_to_float8_training`` swaps ``nn.Linear`` modules only, and torchtitan's
        ``Float8Handler.convert_to_float8_training`` (``torchtitan/float8.py`` at 9dec370) skips the head
        (``module_filter_fn=lambda mod, fqn: fqn != "output"``): only ``Float8Linear`` weights are
        ``WeightWithDynamicFloat8CastTensor`` and gather in fp8; ``tok_embeddings`` (``nn.Embedding``), the
        RMSNorm weights and ``output`` gather in bf16. Used by the memory model and by the ZeRO-3
        all-gather bytes of :func:`~scalelab.planner.comm.comm_per_step`.
    pp_reduce_per_stage : bool
        With an interleaved schedule (``interleave > 1``) whose micro-batches make one round
        (``m < 2 pp``), a pipeline rank never holds two of its stages' unsharded fp32 gradient
        accumulators at once: only its largest stage's are counted (``Layout.zero3_gather="step"``).
        torch's ``PipelineScheduleMulti._step_microbatches`` counts ``last_backward`` per stage
        (``backward_counter[stage_index] == n_microbatches``) and the stage's ``backward_maybe_with_nosync``
        then calls FSDP's ``run_post_backward`` on that stage's module alone (each stage module is its
        own FSDP root), which reduce-scatters and frees its accumulators; ``ScheduleInterleaved1F1B``
        orders a rank's backwards by ``backward_stage_index``, its last local stage first for one round
        of ``microbatches_per_round`` micro-batches (``number_of_rounds = max(1, m // pp)``), so with one
        round every backward of a later stage ends before the first of an earlier one.
    """

    activation_bytes: float | None = None
    dropout: bool = False
    dropout_mask_bytes: float = 1.0
    norm_stats: bool = True
    swiglu_saved_widths: float = 3.0
    attention_output_copy: bool = False
    logits_bytes: float = 4.0
    logits_copies: float = 1.0
    logits_output_bytes: float = 0.0
    loss_parallel_logits_copies: float | None = None
    pp_keeps_stage_outputs: bool = False
    pp_microbatch_buffers: bool = False
    pp_stage_split: str = "even"
    loss_chunks: int = 1
    master_weight_bytes: float | None = None
    weight_bytes: float | None = None
    grad_bytes: float | None = None
    recompute_working_set: bool = True
    zero3_prefetch_layers: int = 2
    zero3_tiles: int = 1
    fp8_weight_copy_bytes: float = 1.0
    fp4_weight_copy_bytes: float = 0.5 + 1.0 / 16
    optimizer_state_bytes: float = 4.0
    comm_buffer_bytes: float = 0.0
    zero3_gather_weight_bytes: float | None = None
    grad_reduce_bytes: float | None = None
    zero3_unsharded_grad_bytes: float | None = None
    low_precision_gather_needs_dp_shard: bool = False
    sp_saves_gathered_inputs: bool = False
    fp8_saves_quantized_linear_inputs: bool = False
    fp32_param_shards: bool = False
    low_precision_gather_linears_only: bool = False
    pp_reduce_per_stage: bool = False
    fsdp_root_unsharded: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            # a switch given as "false" or 2 (a config file's [memory] table) must not read as on
            if f.type in (bool, "bool") and not isinstance(getattr(self, f.name), bool):
                raise ConfigError(explain(f"memory convention {f.name} must be true or false",
                                          value=getattr(self, f.name), allowed="true, false",
                                          fix=f"write {f.name} = true (or false) without quotes"))
        for name in ("dropout_mask_bytes", "swiglu_saved_widths", "logits_bytes", "fp8_weight_copy_bytes",
                     "fp4_weight_copy_bytes", "optimizer_state_bytes", "comm_buffer_bytes", "logits_copies",
                     "logits_output_bytes"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise ConfigError(explain(f"memory convention {name} must be a finite number >= 0", value=v))
        if self.activation_bytes is not None and not self.activation_bytes > 0:
            raise ConfigError(explain("activation_bytes must be > 0", value=self.activation_bytes,
                                      fix="use 2 (bf16) or 4 (fp32), or None to follow the precision"))
        for name in ("master_weight_bytes", "weight_bytes", "grad_bytes", "zero3_gather_weight_bytes",
                     "loss_parallel_logits_copies", "grad_reduce_bytes", "zero3_unsharded_grad_bytes"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise ConfigError(explain(f"memory convention {name} must be a number >= 0 or None", value=v))
        if self.pp_stage_split not in ("even", "torchtitan"):
            raise ConfigError(explain("pp_stage_split must be 'even' or 'torchtitan'", value=self.pp_stage_split))
        if isinstance(self.loss_chunks, bool) or not isinstance(self.loss_chunks, int) or self.loss_chunks < 1:
            raise ConfigError(explain("loss_chunks must be a positive integer", value=self.loss_chunks))
        if isinstance(self.zero3_tiles, bool) or not isinstance(self.zero3_tiles, int) or self.zero3_tiles < 1:
            raise ConfigError(explain("zero3_tiles must be a positive integer", value=self.zero3_tiles))
        if self.zero3_prefetch_layers < 1:
            raise ConfigError(explain("zero3_prefetch_layers must be >= 1", value=self.zero3_prefetch_layers))

    def unsharded_grad_bytes(self) -> float:
        """Bytes per element of ZeRO-3's unsharded gradient accumulators (``zero3_unsharded_grad_bytes``,
        else ``grad_reduce_bytes``, else 4).

        >>> MemoryConventions().unsharded_grad_bytes(), MemoryConventions(grad_reduce_bytes=2).unsharded_grad_bytes()
        (4.0, 2.0)
        """
        for v in (self.zero3_unsharded_grad_bytes, self.grad_reduce_bytes):
            if v is not None:
                return float(v)
        return 4.0

    @classmethod
    def korthikanti(cls) -> MemoryConventions:
        """Korthikanti et al. 2022's setting: GPT layers with dropout, 1-byte masks, 16-bit activations."""
        return cls(activation_bytes=2.0, dropout=True, dropout_mask_bytes=1.0, norm_stats=False)

    def to_dict(self, *, fp8: bool = True) -> dict:
        """Plain form; ``grad_bytes`` only when set and ``fp8_saves_quantized_linear_inputs`` only when on and
        (``fp8=False`` for a recipe other than fp8) when it acts, so plans made before they existed keep their
        config hashes."""
        d = asdict(self)
        if d.get("grad_bytes") is None:
            d.pop("grad_bytes", None)
        if not (fp8 and d.get("fp8_saves_quantized_linear_inputs")):
            d.pop("fp8_saves_quantized_linear_inputs", None)
        return d


@dataclass(frozen=True)
class PrecisionRecipe:
    """Bytes per trainable parameter for each model state (optimizer states are set by the optimizer)."""

    weight_bytes: float
    grad_bytes: float
    master_bytes: float
    activation_bytes: float
    working_copy: Literal["none", "fp8", "fp4"] = "none"


#: The recipes of :data:`scalelab.planner.layout.Precision`.
PRECISION_RECIPES: dict[str, PrecisionRecipe] = {
    "fp32": PrecisionRecipe(4.0, 4.0, 0.0, 4.0),
    "bf16": PrecisionRecipe(2.0, 2.0, 4.0, 2.0),            # ZeRO paper: 2 + 2 + K (K = 12 with Adam)
    "bf16-fp32-grad": PrecisionRecipe(2.0, 4.0, 4.0, 2.0),  # Megatron: 18 bytes/param with Adam
    "fp8": PrecisionRecipe(2.0, 4.0, 4.0, 2.0, "fp8"),      # TE / DeepSeek-V3: fp32 main grads + fp8 copy
    "fp4": PrecisionRecipe(2.0, 4.0, 4.0, 2.0, "fp4"),      # NVFP4: bf16 weights + fp4 working copy
}


def _recipe(precision: str) -> PrecisionRecipe:
    try:
        return PRECISION_RECIPES[precision]
    except KeyError:
        raise ConfigError(explain("unknown precision recipe", value=precision, allowed=", ".join(PRECISION_RECIPES),
                                  fix="choose one of the listed recipes")) from None


# ---- results ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per GPU at the peak pipeline stage.

    ``weights/gradients/optimizer`` include the embedding and head on the stages that hold them
    (``optimizer`` holds fp32 master weights and the optimizer states); ``activations`` are the
    transformer layers' saved tensors for all in-flight microbatches; ``other`` holds the embedding and
    loss activations, logits, ZeRO-3 gather buffers, pipeline/CP communication buffers.
    ``detail`` splits every figure further (keys end in ``_bytes``).
    """

    weights_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    other_bytes: float
    total_bytes: float
    host_bytes: float = 0.0
    nvme_bytes: float = 0.0
    offload_bytes_per_step: float = 0.0
    trainable_params: int = 0
    notes: tuple[str, ...] = ()
    peak_stage: int = 0
    pcie_bytes_per_step: float = 0.0
    nvme_bytes_per_step: float = 0.0
    in_flight_microbatches: float = 1.0
    detail: tuple[tuple[str, float], ...] = ()
    conventions: MemoryConventions = field(default_factory=MemoryConventions)
    host_activations_bytes: float = 0.0
    """The part of ``host_bytes`` that is offloaded activations (``Layout.offload_activation_layers``), not
    model states: the CPU optimizer step does not read it."""
    activation_offload_bytes_per_step: float = 0.0
    """The part of ``pcie_bytes_per_step`` that is offloaded activations, out and back once per micro-batch."""

    @property
    def model_states_bytes(self) -> float:
        """Weights + gradients + optimizer states (the ZeRO paper's "model states")."""
        return self.weights_bytes + self.gradients_bytes + self.optimizer_bytes

    def offload_bandwidth_needed(self, overlap_time_s: float) -> dict[str, float]:
        """Host-link and NVMe bandwidth (bytes/s per GPU) that hides the offload traffic behind
        ``overlap_time_s`` of compute per step (ZeRO-Infinity §5's bandwidth requirement; calculon
        reports the same figure).

        >>> MemoryBreakdown(0, 0, 0, 0, 0, 0, pcie_bytes_per_step=8e9).offload_bandwidth_needed(2.0)["pcie"]
        4000000000.0
        """
        if not overlap_time_s > 0:
            raise ConfigError(explain("overlap_time_s must be > 0", value=overlap_time_s,
                                      fix="pass the step's compute time in seconds"))
        return {"pcie": self.pcie_bytes_per_step / overlap_time_s,
                "nvme": self.nvme_bytes_per_step / overlap_time_s}

    def get(self, key: str) -> float:
        """One entry of ``detail`` (0 when absent)."""
        return dict(self.detail).get(key, 0.0)

    def to_dict(self) -> dict:
        return {
            "weights": self.weights_bytes,
            "gradients": self.gradients_bytes,
            "optimizer": self.optimizer_bytes,
            "activations": self.activations_bytes,
            "other": self.other_bytes,
            "total": self.total_bytes,
            "host": self.host_bytes,
            "host_activations": self.host_activations_bytes,
            "activation_offload_bytes_per_step": self.activation_offload_bytes_per_step,
            "nvme": self.nvme_bytes,
            "offload_bytes_per_step": self.offload_bytes_per_step,
            "pcie_bytes_per_step": self.pcie_bytes_per_step,
            "nvme_bytes_per_step": self.nvme_bytes_per_step,
            "trainable_params": self.trainable_params,
            "peak_stage": self.peak_stage,
            "in_flight_microbatches": self.in_flight_microbatches,
            "notes": list(self.notes),
            "detail": dict(self.detail),
            "conventions": self.conventions.to_dict(),
            "unit": "bytes",
        }

    def report(self) -> str:
        lines = [f"Memory per GPU (pipeline stage {self.peak_stage}, GiB = 2^30 bytes)"]
        for k in ("weights", "gradients", "optimizer", "activations", "other", "total"):
            lines.append(f"  {k:<12} {getattr(self, k + '_bytes') / GiB:10.3f} GiB")
        if self.host_bytes or self.nvme_bytes:
            lines.append(f"  host (CPU)   {self.host_bytes / GiB:10.3f} GiB"
                         + (f" ({self.host_activations_bytes / GiB:.3f} of activations)"
                            if self.host_activations_bytes else ""))
            lines.append(f"  nvme         {self.nvme_bytes / GiB:10.3f} GiB")
            lines.append(f"  offload traffic {self.offload_bytes_per_step / GiB:.3f} GiB/step")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


# ---- helpers: quantised storage, optimizer states --------------------------------------------------

def quantized_bytes_per_param(dtype: str, *, double_quant: bool = True) -> float:
    """Storage bytes per weight, block scales included.

    - ``fp32`` 4, ``bf16``/``fp16`` 2, ``fp8`` 1;
    - ``int8``: 1 (LLM.int8 row-wise scales are negligible and not counted);
    - ``nf4``/``fp4`` as in bitsandbytes/QLoRA (Dettmers et al. 2023 §3): 4 bits plus an fp32 absmax per
      block of 64 (0.5 bit/param), or with double quantisation an 8-bit absmax per 64 plus an fp32 scale
      per 256 blocks (8/64 + 32/(64*256) = 0.127 bit/param);
    - ``nvfp4``: 4 bits plus an e4m3 scale per 16 values (NVIDIA Blackwell NVFP4);
    - ``sub1bit``: 0.8 bit/param, QMoE (Frantar & Alistarh 2023: 1.6T parameters in under 160 GB).

    >>> round(quantized_bytes_per_param("nf4") * 8, 3)
    4.127
    """
    d = dtype.lower()
    if d in ("fp32", "tf32"):
        return 4.0
    if d in ("bf16", "fp16"):
        return 2.0
    if d in ("fp8", "int8"):
        return 1.0
    if d in ("nf4", "fp4"):
        scale_bits = (8 / 64 + 32 / (64 * 256)) if double_quant else 32 / 64
        return (4 + scale_bits) / 8
    if d == "nvfp4":
        return (4 + 8 / 16) / 8
    if d == "sub1bit":
        return 0.8 / 8
    raise ConfigError(explain("unknown weight storage dtype", value=dtype,
                              allowed="fp32, bf16, fp16, fp8, int8, nf4, fp4, nvfp4, sub1bit",
                              fix="choose one of the listed formats"))


def _matrices(model: ModelSpec) -> dict[str, list[tuple[int, int]]]:
    """(d_in, d_out) of every weight matrix in one layer, by bucket (one routed expert for ``expert``)."""
    h, a = model.d_model, model.n_heads
    if model.mla is not None:
        m = model.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        q = [(h, m.q_lora_rank), (m.q_lora_rank, a * qk)] if m.q_lora_rank else [(h, a * qk)]
        attn = [*q, (h, m.kv_lora_rank + m.qk_rope_head_dim),
                (m.kv_lora_rank, a * (m.qk_nope_head_dim + m.v_head_dim)), (a * m.v_head_dim, h)]
    else:
        dh, g = model.d_head, model.n_kv_heads
        attn = [(h, a * dh), (h, g * dh), (h, g * dh), (a * dh, h)]

    def mlp(width: int) -> list[tuple[int, int]]:
        return ([(h, width), (h, width)] if model.ffn_kind == "swiglu" else [(h, width)]) + [(width, h)]

    out = {"attention": attn, "dense_mlp": mlp(model.d_ff), "expert": [], "shared": [], "router": []}
    if model.moe is not None:
        e = model.moe
        out["expert"] = mlp(e.d_expert)
        out["shared"] = mlp(e.shared_width) * e.n_shared_experts
        out["router"] = [(h, e.n_experts + e.n_zero_experts)]
    return out


def _state_elems_per_param(train: TrainSpec, mats: list[tuple[int, int]], n_params: float) -> float:
    """Optimizer-state elements per parameter for a bucket of matrices (plus non-matrix params)."""
    opt = train.optimizer
    if opt == "adamw":
        return 2.0
    if opt == "sgd":
        return 1.0
    if n_params <= 0:
        return 0.0
    mat_params = sum(i * o for i, o in mats)
    rest = max(0.0, n_params - mat_params)  # norms and biases: unfactored
    if opt == "adam8bit":
        return 2.0  # handled in bytes (1 byte per state), see _optimizer_bytes_per_param
    if opt == "adafactor":
        # Shazeer & Stern 2018: a row and a column accumulator per matrix, full v for vectors, no momentum.
        return (sum(i + o for i, o in mats) + rest) / n_params
    if opt == "galore":
        # Zhao et al. 2024 §4: projector m x r plus Adam moments r x n for an m x n matrix (m <= n).
        total = 0.0
        for i, o in mats:
            lo, hi = min(i, o), max(i, o)
            r = min(train.galore_rank, lo)
            total += 2 * i * o if r >= lo else r * lo + 2 * r * hi
        return (total + 2 * rest) / n_params
    raise ConfigError(explain("unknown optimizer", value=opt, allowed="adamw, adam8bit, adafactor, sgd, galore"))


def _optimizer_bytes_per_param(train: TrainSpec, conv: MemoryConventions,
                               mats: list[tuple[int, int]], n_params: float) -> float:
    if train.optimizer == "adam8bit":
        # bitsandbytes 8-bit Adam: two 1-byte states plus an fp32 absmax per block of 2048.
        return 2.0 * (1.0 + 4.0 / 2048)
    return _state_elems_per_param(train, mats, n_params) * conv.optimizer_state_bytes


def zero_model_states_bytes(n_params: float, *, zero: int, n_d: int, k: float = 12.0,
                            weight_bytes: float = 2.0, grad_bytes: float = 2.0) -> dict[str, float]:
    """Model-state bytes per device under ZeRO (Rajbhandari et al. 2020, §5.1-5.3 and Table 1).

    ``K`` bytes/param of optimizer state (12 for mixed-precision Adam: fp32 master, m, v) are sharded
    from stage 1, gradients from stage 2, weights at stage 3, over ``n_d`` data-parallel ranks.

    >>> round(zero_model_states_bytes(7.5e9, zero=1, n_d=64)["total"] / 1e9, 1)
    31.4
    """
    if zero not in (0, 1, 2, 3):
        raise ConfigError(explain("ZeRO stage must be 0, 1, 2 or 3", value=zero))
    if not (n_d >= 1 and n_params > 0):
        raise ConfigError(explain("need n_params > 0 and n_d >= 1", value=(n_params, n_d)))
    w = weight_bytes * n_params / (n_d if zero >= 3 else 1)
    g = grad_bytes * n_params / (n_d if zero >= 2 else 1)
    o = k * n_params / (n_d if zero >= 1 else 1)
    return {"weights": w, "gradients": g, "optimizer": o, "total": w + g + o}


def lora_trainable_params(model: ModelSpec, lora: LoRASpec) -> int:
    """Trainable LoRA adapter parameters of the whole model (Hu et al. 2021 §4.1: ``r (d_in + d_out)``
    per adapted matrix). MoE layers adapt every expert they target.

    >>> from scalelab.arch.spec import ModelSpec
    >>> from scalelab.planner.layout import LoRASpec
    >>> gpt3 = ModelSpec(n_layers=96, d_model=12288, n_heads=96, d_ff=49152, vocab_size=50257)
    >>> lora_trainable_params(gpt3, LoRASpec(rank=4, target_modules=("q", "v")))  # LoRA paper: 18.9M
    18874368
    """
    lp = lora_params_by_layer(model, lora)
    return int(model.n_dense_mlp_layers * lp["dense_mlp"] + model.n_moe_layers * lp["moe_total"]
               + model.n_layers * lp["attention"])


def inference_weights_bytes(model: ModelSpec, dtype: str, *, quantize_embeddings: bool = False,
                            double_quant: bool = True) -> float:
    """Bytes to hold a model's weights for inference (reference only: no KV cache or activations).

    Quantised formats (``int8``, ``nf4``, ``fp4``, ``nvfp4``) apply to the transformer blocks' matrices;
    embeddings, the head, norms and the router stay 16-bit unless ``quantize_embeddings`` (bitsandbytes
    and QLoRA keep them in 16 bits). ``sub1bit`` (QMoE, ~0.8 bit/param) compresses routed experts only;
    for a dense model it applies to the blocks' matrices.

    >>> from scalelab.arch.spec import ModelSpec
    >>> m = ModelSpec(n_layers=32, d_model=4096, n_heads=32, n_kv_heads=8, d_ff=14336, vocab_size=128256)
    >>> round(inference_weights_bytes(m, "bf16") / 1e9, 2)
    16.06
    """
    c = model.n_params()
    q = quantized_bytes_per_param(dtype, double_quant=double_quant)
    if dtype.lower() in ("fp32", "tf32", "bf16", "fp16"):
        return q * c.total
    mats = _matrices(model)
    per_attn = sum(i * o for i, o in mats["attention"])
    dense_mm = model.n_layers * per_attn + model.n_dense_mlp_layers * sum(i * o for i, o in mats["dense_mlp"])
    expert_mm = float(c.experts_routed)  # routed expert matrices (biases are negligible)
    shared_mm = model.n_moe_layers * sum(i * o for i, o in mats["shared"])
    if dtype.lower() == "sub1bit" and model.is_moe:
        quantised = expert_mm
    else:
        quantised = dense_mm + expert_mm + shared_mm
    if quantize_embeddings:
        quantised += c.embedding
    quantised = min(quantised, c.total)
    return q * quantised + 2.0 * (c.total - quantised)


# ---- activations ----------------------------------------------------------------------------------

def _check_positive_int(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ConfigError(explain(f"{name} must be a positive integer", value=v))
    return v


def _op_sac_terms(model: ModelSpec, T: float, rep: float, t: int, act: float, moe_layer: bool,
                  flash: bool) -> dict[str, float]:
    """torchtitan's op-level selective AC: the layer input, the outputs of the odd-numbered matmuls
    (Q, V, then gate and down for SwiGLU, fc1 for GELU), SDPA's output and log-sum-exp, and the
    outputs of TP reduce-scatters (``torchtitan/models/llama3/infra/parallelize.py``, ``_save_list``)."""
    h, a = model.d_model, model.n_heads
    if moe_layer and model.moe is not None:
        f, rows = model.moe.d_expert, T * min(model.moe.top_k, model.moe.n_experts)
    else:
        f, rows = model.d_ff, T
    d_v = model.mla.v_head_dim if model.mla is not None else model.d_head
    terms = {"layer_input": rep * h * act,
             "saved_mm_outputs": T * (model.q_dim + model.v_dim) * act / t,
             "sdpa_outputs": T * a * d_v * act / t + (a * T * 4.0 / t if flash else a * T * model.seq_len * act / t)}
    # mm order in the MLP: SwiGLU w1 (5), w3 (6), w2 (7): gate and down saved; GELU fc1 (5), fc2 (6).
    # (the down projection's output is a full-width partial sum before its reduce-scatter)
    terms["mlp_saved_mm_outputs"] = rows * (f * act / t + (h * act if model.ffn_kind == "swiglu" else 0.0))
    if t > 1:  # reduce-scatter outputs after the output projection and the MLP (sequence parallel); one
        # per block, of the summed outputs, in a parallel block
        terms["tp_reduce_scatter_outputs"] = (1 if model.parallel_block else 2) * rep * h * act
    return terms


def _attention_terms(model: ModelSpec, T: float, rep: float, seq_len: int, layout: Layout, act: float,
                     conv: MemoryConventions, policy: SavePolicy, lin: float) -> dict[str, float]:
    """Saved tensors of the attention block for one microbatch (Korthikanti et al. 2022 Table 2); ``lin``:
    bytes per element of what a linear layer saves of its input (``act``, or 1 for quantized fp8 inputs)."""
    t = layout.tp
    h, a = model.d_model, model.n_heads
    mask = conv.dropout_mask_bytes if conv.dropout else 0.0
    nstat = (8.0 if model.norm_kind == "layernorm" else 4.0) if conv.norm_stats else 0.0
    d_v = model.mla.v_head_dim if model.mla is not None else model.d_head
    norm_out = 0.0 if policy.recomputes("layernorm") else 1.0  # the norm output feeding QKV
    linear_in = T if conv.sp_saves_gathered_inputs else rep  # what the QKV and MLP-in linears save
    # A sequential block saves two norm inputs (and statistics) and two linear inputs. A parallel block saves
    # its one input once; a shared norm's output feeds both QKV and the MLP and is saved once; two norms run on
    # the input gathered once (comm.tp_collectives_per_layer), which is saved, like their two outputs, as the
    # linears save their inputs (sharded and gathered again in backward, or whole: sp_saves_gathered_inputs).
    n_inputs, norm_tokens, n_norms, mlp_in = 2, rep, 2, linear_in
    if model.parallel_block:
        n_inputs, n_norms = 1, model.parallel_block_norms
        norm_tokens, mlp_in = (rep, 0.0) if n_norms == 1 else (linear_in, linear_in)
    terms = {"norm_inputs": n_inputs * norm_tokens * h * act + n_norms * norm_tokens * nstat * norm_out,
             "attn_input": linear_in * h * lin * norm_out}
    if model.mla is not None:
        m = model.mla
        # Latent paths: the down-projection outputs are normed and up-projected (norm input + up input).
        terms["mla_latents"] = rep * act * ((1 + norm_out) * ((m.q_lora_rank or 0) + m.kv_lora_rank)
                                            + m.qk_rope_head_dim)
    up_proj_dropped = model.mla is not None and policy.recomputes("mla_up_proj")
    terms["qkv"] = 0.0 if up_proj_dropped else T * (model.q_dim + model.kv_dim + model.v_dim) * act / t
    core = 0.0
    if not policy.recomputes("core_attn"):
        if layout.flash_attention:
            core = a * T * 4.0 / t  # fp32 log-sum-exp per head and query (Dao et al. 2022)
            if conv.attention_output_copy:
                core += T * a * d_v * act / t
        else:
            # Scores: each query attends to all s keys (CP: local queries x all keys, ring by blocks).
            scores = a * T * seq_len / t
            core = scores * act + (scores * mask + scores * act if conv.dropout else 0.0)
    terms["attn_core"] = core
    # the output projection's input: the attention output, shared with FlashAttention's saved output unless
    # the projection keeps a quantized copy of its own beside it
    shared = layout.flash_attention and lin != act and not policy.recomputes("core_attn")
    terms["attn_out_input"] = T * a * d_v * (lin + (act if shared else 0.0)) / t
    terms["dropout_masks"] = 2 * rep * h * mask
    terms["mlp_input"] = mlp_in * h * lin * norm_out
    return terms


def _mlp_terms(model: ModelSpec, T: float, rep: float, layout: Layout, act: float, conv: MemoryConventions,
               policy: SavePolicy, moe_layer: bool, lin: float) -> dict[str, float]:
    """Saved tensors of the MLP (or MoE) block for one microbatch: intermediates of width f, of which the
    MLP-out linear's input (the SwiGLU product or GELU output, when saved) at ``lin`` bytes."""
    t = layout.tp
    sp = layout.sequence_parallel and t > 1
    h = model.d_model
    if model.ffn_kind == "swiglu":
        # Fused SwiGLU keeps gate, up and their product (3 widths); recomputing the product keeps 2.
        widths = 2.0 if policy.recomputes("act") else conv.swiglu_saved_widths
    else:
        widths = 1.0 if policy.recomputes("act") else 2.0  # fc1 output (and its GELU)
    # the product (GELU output) is the last width when it is saved; fp8 recipes keep it quantized
    product = 1.0 if widths > (2.0 if model.ffn_kind == "swiglu" else 1.0) else 0.0
    width_bytes = (widths - product) * act + product * lin
    terms: dict[str, float] = {}
    if moe_layer and model.moe is not None:
        e = model.moe
        et = layout.expert_tp
        cache = policy.moe_cache_bytes or act
        # Routed rows per rank: k copies of each local token (x capacity factor when not dropless); EP
        # exchanges tokens but balanced routing keeps the count (Lepikhin et al. 2020; Fedus et al. 2021).
        k_eff = min(e.top_k, e.n_experts) * (e.capacity_factor or 1.0)
        rows = k_eff * (T * et / t if sp else T)
        terms["router"] = rep * (e.n_experts + e.n_zero_experts) * 4.0 + rep * e.top_k * 4.0
        terms["expert_inputs"] = rows * h * (policy.moe_cache_bytes or lin)
        terms["expert_intermediates"] = rows * e.d_expert * (
            widths * cache if policy.moe_cache_bytes else width_bytes) / et
        terms["expert_outputs"] = rows * h * act  # kept for the gradient of the combine weights
        if e.n_shared_experts:
            terms["shared_expert_intermediates"] = T * e.n_shared_experts * e.shared_width * width_bytes / t
    else:
        terms["mlp_intermediates"] = T * model.d_ff * width_bytes / t
    return terms


def _layer_activation_terms(model: ModelSpec, seq_len: int, micro_batch: int, layout: Layout,
                            act: float, conv: MemoryConventions, moe_layer: bool,
                            recompute: str | SavePolicy, lin: float | None = None) -> dict[str, float]:
    """Bytes one layer saves for backward for one microbatch, by tensor group (Korthikanti Table 2);
    ``lin``: bytes per element of a linear layer's saved input (default ``act``)."""
    policy = get_save_policy(recompute)
    t, c = layout.tp, layout.cp
    sp = layout.sequence_parallel and t > 1
    T = seq_len / c * micro_batch            # local tokens per CP rank
    rep = T / t if sp else T                  # token count of tensors not split by TP without SP
    if policy.full:  # only the layer input survives (SP shards it; Korthikanti §4.3)
        return {"layer_input": rep * model.d_model * act}
    if policy.op_sac:
        return _op_sac_terms(model, T, rep, t, act, moe_layer, layout.flash_attention)
    lin = act if lin is None else lin
    return {**_attention_terms(model, T, rep, seq_len, layout, act, conv, policy, lin),
            **_mlp_terms(model, T, rep, layout, act, conv, policy, moe_layer, lin)}


def activation_bytes_per_layer(model: ModelSpec, seq_len: int, micro_batch: int, layout: Layout, *,
                               dtype_bytes: float = 2.0,
                               conventions: MemoryConventions = MemoryConventions(),
                               moe_layer: bool | None = None, recompute: str | None = None) -> float:
    """Bytes one transformer layer stores for backward for one microbatch on one GPU.

    Korthikanti et al. 2022 Table 2 as a sum of saved tensors: with dropout and 1-byte masks, MHA, a
    4h GELU MLP and no FlashAttention this is ``s b h (10 + 24/t + 5 a s/(h t))`` (TP),
    ``s b h (34/t + 5 a s / (h t))`` (TP + SP), ``34 s b h / t`` (TP + SP + selective) and ``2 s b h``
    (full recompute). ``layout`` gives tp, cp, sequence_parallel, flash_attention, recompute and etp.

    Parameters
    ----------
    moe_layer : bool, optional
        Whether the layer is a MoE layer (default: the model has experts and this is not one of its
        leading dense layers, i.e. True for MoE models).
    recompute : str, optional
        Override ``layout.recompute``.

    Examples
    --------
    >>> from scalelab.arch.spec import ModelSpec
    >>> from scalelab.planner.layout import Layout
    >>> m = ModelSpec(n_layers=1, d_model=6144, n_heads=64, d_ff=4 * 6144, vocab_size=51200,
    ...               ffn_kind="gelu", norm_kind="layernorm")
    >>> lay = Layout(tp=8, sequence_parallel=True, recompute="selective", flash_attention=False)
    >>> activation_bytes_per_layer(m, 2048, 1, lay, conventions=MemoryConventions.korthikanti()) / (2048 * 6144)
    4.25
    """
    _check_positive_int("seq_len", seq_len)
    _check_positive_int("micro_batch", micro_batch)
    if not dtype_bytes > 0:
        raise ConfigError(explain("dtype_bytes must be > 0", value=dtype_bytes))
    act = conventions.activation_bytes or dtype_bytes
    rc = get_save_policy(recompute or layout.recompute)
    is_moe = model.is_moe if moe_layer is None else (moe_layer and model.is_moe)
    return sum(_layer_activation_terms(model, seq_len, micro_batch, layout, act, conventions, is_moe, rc).values())


# ---- memory per GPU -------------------------------------------------------------------------------

def _logits_bytes(model: ModelSpec, tokens: float, tp: int, conv: MemoryConventions) -> float:
    """Vocabulary-wide buffers of the loss at its peak, per GPU: ``tokens / loss_chunks`` rows of
    ``V / tp`` (vocab-parallel) columns, ``logits_copies`` of them in ``logits_bytes`` (with t > 1,
    ``loss_parallel_logits_copies`` when set) plus the head's output in ``logits_output_bytes``."""
    rows = tokens / conv.loss_chunks
    copies = conv.logits_copies
    if tp > 1 and conv.loss_parallel_logits_copies is not None:
        copies = conv.loss_parallel_logits_copies
    return rows * model.vocab_size / tp * (copies * conv.logits_bytes + conv.logits_output_bytes)


def _stage_layers(n_layers: int, pp: int, v: int = 1, split: str = "even") -> list[list[tuple[int, int]]]:
    """[start, end) layer ranges held by each pipeline rank.

    ``"even"``: ``pp`` contiguous blocks, an even split with the extra layers on the last ranks.
    ``"torchtitan"``: ``pp v`` stages split as torchtitan's ``generate_split_points``
    (``torchtitan/parallelisms/pipelining_utils.py`` at 9dec370): the first stage gets
    ``n_layers // (pp v)``, the middle stages one more while the remainder lasts, the last stage what is
    left; rank r holds stages r, r + pp, ... (``stage_ids_this_rank``, loop style).

    >>> _stage_layers(126, 8, 1, "torchtitan")[0], _stage_layers(126, 8, 1, "torchtitan")[7]
    ([(0, 15)], [(111, 126)])
    >>> [sum(h - lo for lo, h in r) for r in _stage_layers(126, 8, 2, "torchtitan")]
    [15, 16, 16, 16, 16, 16, 16, 15]
    """
    if split == "torchtitan":
        total = pp * v
        base, extra = divmod(n_layers, total)
        sizes = [base]
        for _ in range(1, total - 1):
            sizes.append(base + (1 if extra > 0 else 0))
            extra -= 1 if extra > 0 else 0
        sizes.append(n_layers - sum(sizes))
        ranks: list[list[tuple[int, int]]] = [[] for _ in range(pp)]
        start = 0
        for stage, n in enumerate(sizes):
            ranks[stage % pp].append((start, start + n))
            start += n
        return ranks
    base, extra = divmod(n_layers, pp)
    out, start = [], 0
    for i in range(pp):
        n = base + (1 if i >= pp - extra else 0)
        out.append([(start, start + n)])
        start += n
    return out


def _in_flight(stage: int, pp: int, v: int, m: int) -> float:
    """Microbatches whose activations a stage holds at its peak, in units of the whole stage's layers.

    1F1B: stage i holds min(p - i, m) (Narayanan et al. 2021). Interleaved with v chunks: Megatron warms
    up ``2 (p - i - 1) + (v - 1) p`` chunk-microbatches and holds one more, i.e. ``(1 + (p-1)/(p v)) p``
    stage-microbatches on the first stage (Korthikanti et al. 2022 §4.2.3).
    """
    if pp == 1:
        return 1.0
    if v <= 1:
        return float(min(pp - stage, m))
    chunks = min(2 * (pp - stage - 1) + (v - 1) * pp + 1, m * v)
    return chunks / v


def _micro_batch_tokens(train: TrainSpec, layout: Layout) -> tuple[float, float]:
    """(tokens of one micro-batch on one CP rank, the same for tensors that TP splits only with SP)."""
    t = layout.tp
    T = train.seq_len / layout.cp * layout.micro_batch
    return T, (T / t if (layout.sequence_parallel and t > 1) else T)


def embedding_activation_bytes(model: ModelSpec, train: TrainSpec, layout: Layout, conv: MemoryConventions,
                               in_flight: float) -> float:
    """First stage: token ids (int64) and the embedding-dropout mask per in-flight micro-batch (Megatron)."""
    T, rep = _micro_batch_tokens(train, layout)
    mask = conv.dropout_mask_bytes if conv.dropout else 0.0
    return in_flight * (8.0 * T + rep * model.d_model * mask)


def logits_buffer_bytes(model: ModelSpec, train: TrainSpec, layout: Layout, conv: MemoryConventions,
                        act: float) -> float:
    """Last stage: final-norm input, head input and the loss's logits buffers (Korthikanti §4.1)."""
    T, rep = _micro_batch_tokens(train, layout)
    return 2 * rep * model.d_model * act + _logits_bytes(model, T, layout.tp, conv)


def pipeline_kept_outputs_bytes(model: ModelSpec, train: TrainSpec, layout: Layout, conv: MemoryConventions,
                                micro_batches: int) -> float:
    """Last pipeline stage with ``pp_keeps_stage_outputs``: the logits of the step's other micro-batches,
    kept in ``logits_output_bytes`` until the step ends (the current one is in ``logits_buffer_bytes``).

    >>> from scalelab.arch.spec import ModelSpec
    >>> from scalelab.planner.layout import Layout, TrainSpec
    >>> m = ModelSpec(n_layers=8, d_model=1024, n_heads=8, d_ff=4096, vocab_size=1000)
    >>> conv = MemoryConventions(logits_output_bytes=2.0, pp_keeps_stage_outputs=True)
    >>> pipeline_kept_outputs_bytes(m, TrainSpec(seq_len=100, global_batch=8), Layout(pp=2), conv, 8)
    1400000.0
    """
    if layout.pp <= 1 or not conv.pp_keeps_stage_outputs:
        return 0.0
    T, _ = _micro_batch_tokens(train, layout)
    return (micro_batches - 1) * T * model.vocab_size / layout.tp * conv.logits_output_bytes


def zero3_gather_bytes(full_layer_weight_bytes: float, full_layer_grad_bytes: float,
                       conv: MemoryConventions) -> float:
    """ZeRO-3/FSDP: the unsharded weights of the layers being computed and prefetched, and one layer's
    unsharded gradients before their reduce-scatter (DeepSpeed's live parameters), per tile."""
    return (conv.zero3_prefetch_layers * full_layer_weight_bytes + full_layer_grad_bytes) / conv.zero3_tiles


def zero3_gather_weight_bytes_per_param(conv: MemoryConventions, precision: str,
                                        dp_shard: float | None = None) -> float:
    """Bytes per parameter of the unsharded copy ZeRO-3/FSDP gathers: ``zero3_gather_weight_bytes``, or
    the 16-bit working copy (4 for fp32 training) when that is ``None``, or when
    ``low_precision_gather_needs_dp_shard`` is set and the weights are sharded over no data-parallel rank
    (``dp_shard``, the shard degree excluding CP, is 1; ``None``: not known, taken as sharded).

    >>> tt = MemoryConventions(zero3_gather_weight_bytes=1.0, low_precision_gather_needs_dp_shard=True)
    >>> [zero3_gather_weight_bytes_per_param(tt, "fp8", dp_shard=d) for d in (8, 1)]
    [1.0, 2.0]
    """
    sixteen_bit = 4.0 if precision == "fp32" else 2.0
    gw = conv.zero3_gather_weight_bytes
    if gw is None:
        return sixteen_bit
    if conv.low_precision_gather_needs_dp_shard and gw < sixteen_bit and dp_shard is not None and dp_shard <= 1:
        return sixteen_bit
    return gw


def fsdp_root_unsharded_bytes(n_root: float, n_head_grad: float, conv: MemoryConventions, precision: str,
                              dp_shard: float | None = None) -> float:
    """ZeRO-3 gathering per micro-batch with ``fsdp_root_unsharded``: the gathered copy of the ``n_root``
    parameters outside the wrapped blocks (embedding, final norm, head on this rank, after TP), kept for
    the whole step, and the 16-bit unsharded gradient of the ``n_head_grad`` head parameters, kept from
    the head's backward to the end of backward, bytes. The copy is 16-bit with
    ``low_precision_gather_linears_only`` (torchao converts no embedding and torchtitan skips the head),
    else :func:`zero3_gather_weight_bytes_per_param`.

    >>> round(fsdp_root_unsharded_bytes(1e9, 5e8, MemoryConventions(), "bf16") / 1e9, 3)
    3.0
    """
    sixteen_bit = 4.0 if precision == "fp32" else 2.0
    gw = sixteen_bit if conv.low_precision_gather_linears_only else zero3_gather_weight_bytes_per_param(
        conv, precision, dp_shard)
    return n_root * gw + n_head_grad * sixteen_bit


def zero3_unsharded_stage_bytes(*, n_params: float, n_trainable: float, layer_grad_bytes: float,
                                conv: MemoryConventions, precision: str,
                                dp_shard: float | None = None, n_sixteen_bit: float = 0.0) -> tuple[float, float]:
    """ZeRO-3 gathering once per step (``Layout.zero3_gather="step"``): the stage's parameters stay
    unsharded across the micro-batches, and their gradients accumulate unsharded until the last
    micro-batch's reduce-scatter (FSDP2 with ``reshard_after_forward=False`` and
    ``set_requires_gradient_sync(False)``: torchtitan under pipeline parallelism, whose schedule sets
    both). Returns (unsharded weights, unsharded gradients) in bytes: the gathered copy at
    :func:`zero3_gather_weight_bytes_per_param` (default 2, fp32 training 4; ``dp_shard`` is the
    data-parallel shard degree excluding CP; ``n_sixteen_bit`` of the ``n_params`` always at the 16-bit
    copy: with ``low_precision_gather_linears_only`` the embeddings, norms and head), the accumulators at
    :meth:`MemoryConventions.unsharded_grad_bytes` plus one layer's gradients in the compute dtype before
    the upcast.

    >>> zero3_unsharded_stage_bytes(n_params=1e9, n_trainable=1e9, layer_grad_bytes=0.0,
    ...                             conv=MemoryConventions(), precision="bf16")
    (2000000000.0, 4000000000.0)
    >>> fp8_gather = MemoryConventions(zero3_gather_weight_bytes=1.0)
    >>> zero3_unsharded_stage_bytes(n_params=1e9, n_trainable=0.0, layer_grad_bytes=0.0, conv=fp8_gather,
    ...                             precision="fp8", n_sixteen_bit=1e8)[0]
    1100000000.0
    """
    gw = zero3_gather_weight_bytes_per_param(conv, precision, dp_shard)
    sixteen_bit = 4.0 if precision == "fp32" else 2.0
    weights = (n_params - n_sixteen_bit) * gw + n_sixteen_bit * sixteen_bit
    return weights, n_trainable * conv.unsharded_grad_bytes() + layer_grad_bytes


def pipeline_buffer_bytes(model: ModelSpec, train: TrainSpec, layout: Layout, act: float) -> float:
    """Send and receive buffers for one activation each way (0 without pipeline parallelism)."""
    if layout.pp <= 1:
        return 0.0
    _, rep = _micro_batch_tokens(train, layout)
    return 2 * rep * model.d_model * act


def pipeline_microbatch_buffers_bytes(model: ModelSpec, train: TrainSpec, layout: Layout, act: float, *,
                                      rank: int, micro_batches: int, in_flight: float) -> float:
    """Stage-boundary buffers per micro-batch on pipeline rank ``rank`` (``pp_microbatch_buffers``).

    For each of the rank's ``v`` stages (global index ``rank + j p``), in micro-batch activations
    (one stage output: ``micro_batch x seq / cp`` tokens, ``/ tp`` with SP, of ``d_model`` in ``act``
    bytes): ``m`` gradient receive buffers and the ``m`` kept forward outputs unless it is the last
    stage (whose outputs are the logits, :func:`pipeline_kept_outputs_bytes`); unless it is the first,
    the ``m`` receive buffers less the in-flight ones (already counted as their first layer's saved
    input) and the input gradients of the backwards done. Counted at the rank's last forward, the
    latest moment its activations are at their peak (1F1B's steady state keeps ``in_flight``
    constant): all forwards done and ``m - in_flight`` backwards per stage. 0 without pipeline
    parallelism.

    >>> from scalelab.arch.spec import ModelSpec
    >>> from scalelab.planner.layout import Layout, TrainSpec
    >>> m = ModelSpec(n_layers=8, d_model=1000, n_heads=8, d_ff=4096, vocab_size=1000)
    >>> lay, train = Layout(pp=4), TrainSpec(seq_len=100, global_batch=8)
    >>> a = 100 * 1000 * 2.0   # one stage output
    >>> [pipeline_microbatch_buffers_bytes(m, train, lay, 2.0, rank=i, micro_batches=8,
    ...                                    in_flight=4 - i) / a for i in range(4)]
    [16.0, 26.0, 28.0, 14.0]
    """
    p, v, m = layout.pp, layout.interleave, micro_batches
    if p <= 1:
        return 0.0
    _, rep = _micro_batch_tokens(train, layout)
    idle = max(0.0, m - in_flight)  # per local stage: receive buffers not in flight, backwards done
    units = 0.0
    for j in range(v):
        s = rank + j * p
        first, last = s == 0, s == p * v - 1
        if not first:
            units += 2 * idle  # receive buffers not in flight, input gradients in their .grad
        if not last:
            units += 2 * m  # gradient receive buffers, kept outputs
    return units * rep * model.d_model * act


def cp_ring_buffer_bytes(model: ModelSpec, train: TrainSpec, layout: Layout, act: float) -> float:
    """Ring attention: a K/V block in flight while the next is received (0 without CP)."""
    if layout.cp <= 1:
        return 0.0
    T, _ = _micro_batch_tokens(train, layout)
    return 2 * T * (model.kv_dim + model.v_dim) * act / layout.tp


def offload_terms(layout: Layout, *, w: float, g: float, o: float, n_opt: float, weight_bytes: float,
                  grad_bytes: float, grad_buffer_bytes: float) -> dict[str, float]:
    """What ZeRO-Offload / ZeRO-Infinity move off the GPU: the GPU's weights, gradients and optimizer
    bytes after offload (``w, g, o``), host and NVMe bytes, PCIe and NVMe traffic per step, and the
    gradient bucket kept on the GPU (``grad_buffer``)."""
    host = nvme = pcie = nvme_io = buf = 0.0
    if layout.offload_optimizer != "none":
        # Master weights and optimizer states leave the GPU; fp32 gradients are held on the host for
        # the CPU Adam step; each step sends gradients down and parameters back (Ren et al. 2021 §4).
        host_grads = 4.0 * n_opt  # fp32 gradient partition for CPU Adam
        if layout.offload_optimizer == "cpu":
            host += o + host_grads
        else:
            # ZeRO-Infinity keeps the fp32 gradient partition with the states on NVMe and streams
            # both through pinned host buffers (Rajbhandari et al. 2021 §5.1, §6.2).
            nvme += o + host_grads
            nvme_io += 2.0 * o + host_grads  # states read and written, gradients written once
        pcie += (grad_bytes + weight_bytes) * n_opt
        # Gradients stream to the host bucket by bucket as backward produces them: the GPU keeps
        # about one layer's worth (DeepSpeed's ZeRO-2 offload estimate keeps only the 2-byte params);
        # ZeRO-Infinity streams tiles.
        buf = grad_buffer_bytes
        o, g = 0.0, 0.0
    if layout.offload_params != "none" and layout.zero >= 3:
        # Parameters live off the GPU and are fetched for forward and again for backward.
        if layout.offload_params == "cpu":
            host += w
        else:
            nvme += w
            nvme_io += 2.0 * w
        pcie += 2.0 * w
        w = 0.0
    return {"w": w, "g": g, "o": o, "host": host, "nvme": nvme, "pcie": pcie, "nvme_io": nvme_io,
            "grad_buffer": buf}


class _StateBytes(NamedTuple):
    """Bytes per parameter of each model state (:func:`_state_bytes_per_param`)."""

    weight: float
    """The stored weights."""
    grad: float
    """The gradients as reduced (and as ZeRO-3 holds them unsharded)."""
    master: float
    """The fp32 master copy."""
    copy: float
    """A low-precision working copy of the weights (fp8, fp4), 0 without."""
    grad_kept: float
    """The gradients a rank keeps (sharded from ZeRO-2)."""
    gather_matrix: float
    """The copy ZeRO-3 gathers of the blocks' weight matrices."""
    gather_rest: float
    """The copy ZeRO-3 gathers of the other parameters (norms, router, embeddings)."""
    fp32_shards: bool
    """FSDP2 keeps fp32 parameter shards (``MemoryConventions.fp32_param_shards``, not with LoRA)."""


def _state_bytes_per_param(precision: str, conv: MemoryConventions, rec: PrecisionRecipe, dp_shard: float, *,
                           lora: bool) -> _StateBytes:
    """Bytes per parameter of each model state under ``rec`` and ``conv`` (a convention overrides the
    recipe), for :func:`_model_states`; ``dp_shard`` is ZeRO's shard degree excluding CP."""
    wb = rec.weight_bytes if conv.weight_bytes is None else conv.weight_bytes
    gb = rec.grad_bytes if conv.grad_bytes is None else conv.grad_bytes  # the stored gradients (and ZeRO-3's)
    mb = rec.master_bytes if conv.master_weight_bytes is None else conv.master_weight_bytes
    copy = {"none": 0.0, "fp8": conv.fp8_weight_copy_bytes, "fp4": conv.fp4_weight_copy_bytes}[rec.working_copy]
    gb_kept = gb  # the gradients a rank keeps (sharded from ZeRO-2)
    # the copy ZeRO-3 gathers, bytes per parameter: matrices (low-precision gather) and the rest
    g16 = 4.0 if precision == "fp32" else 2.0
    g_mat = zero3_gather_weight_bytes_per_param(conv, precision, dp_shard)
    g_rest = g16 if conv.low_precision_gather_linears_only else g_mat
    fp32_shards = conv.fp32_param_shards and not lora
    if fp32_shards:  # FSDP2 with fp32 parameters (MemoryConventions.fp32_param_shards)
        wb = 4.0 if conv.weight_bytes is None else conv.weight_bytes
        mb = 0.0 if conv.master_weight_bytes is None else conv.master_weight_bytes
        gb_kept, copy = 4.0, 0.0
    return _StateBytes(wb, gb, mb, copy, gb_kept, g_mat, g_rest, fp32_shards)


def _model_states(model: ModelSpec, train: TrainSpec, layout: Layout, conv: MemoryConventions,
                  rec: PrecisionRecipe, dense_z: float, expert_z: float) -> dict:
    """Model states per layer and for the embedding and head, after ZeRO: weights, gradients and
    optimizer bytes of one dense and one MoE layer (``dense_layer``, ``moe_layer``), ``embed_states``
    for a stage's embedding or head, and the trainable parameter count."""
    t, ep, et, zero = layout.tp, layout.ep, layout.expert_tp, layout.zero
    counts = model.n_params()
    mats = _matrices(model)
    is_moe = model.is_moe
    n_moe_layers = model.n_moe_layers
    # --- per-layer parameter buckets (unsharded counts) ---
    final_norm = (2 if model.norm_kind == "layernorm" else 1) * model.d_model
    norm_per_layer = (counts.norms - final_norm) / model.n_layers
    attn_per_layer = counts.per_layer_attention
    dense_mlp = counts.per_layer_dense_mlp
    routed_per_layer = counts.experts_routed / n_moe_layers if n_moe_layers else 0.0
    shared_per_layer = counts.experts_shared / n_moe_layers if n_moe_layers else 0.0
    router_per_layer = counts.router / n_moe_layers if n_moe_layers else 0.0
    emb_in = model.vocab_size * model.d_model
    pos = model.seq_len * model.d_model if model.position_kind == "learned" else 0
    head = model.vocab_size * model.d_model

    # --- trainable parameters and bytes per parameter ---
    lora = train.lora
    if lora is not None:
        lp = lora_params_by_layer(model, lora)
        trainable = lora_trainable_params(model, lora)
        base_q = quantized_bytes_per_param(lora.base_dtype, double_quant=lora.double_quant)
    else:
        lp = None
        trainable = counts.total
        base_q = 0.0
    wb, gb, mb, copy, gb_kept, g_mat, g_rest, fp32_shards = _state_bytes_per_param(
        train.precision, conv, rec, dense_z / layout.cp, lora=lora is not None)
    # The low-precision working copy (fp8 weight and transpose cache) and low-precision parameters (fp8 params)
    # are the blocks' GEMM weights only: Transformer Engine casts and caches its modules' GEMM weights, and
    # fp8_model_init quantises only those; the embedding, the output layer (Megatron-Core's ColumnParallelLinear,
    # not a TE module) and the norms keep one 16-bit (fp32 for fp32 training) copy.
    wb_rest = max(wb, 4.0 if train.precision == "fp32" else 2.0)

    def opt_b(kind_mats: list[tuple[int, int]], n: float) -> float:
        return _optimizer_bytes_per_param(train, conv, kind_mats, n)

    opt_attn = opt_b(mats["attention"], attn_per_layer)
    opt_mlp = opt_b(mats["dense_mlp"], dense_mlp)
    opt_exp = opt_b(mats["expert"], routed_per_layer / model.moe.n_experts) if model.moe is not None else 0.0
    opt_shared = opt_b(mats["shared"], shared_per_layer) if is_moe else 0.0
    opt_router = opt_b(mats["router"], router_per_layer) if is_moe else 0.0
    opt_vec = opt_b([], 1.0)  # norms, biases, adapters: unfactored states
    opt_emb = opt_b([(model.vocab_size, model.d_model)], emb_in)

    # A bucket: (local params before ZeRO, optimizer bytes/param, shards with experts?, local LoRA
    # params, matrices that a QLoRA base quantises?).
    Bucket = tuple[float, float, bool, float, bool]

    def layer_buckets(moe_layer: bool) -> list[Bucket]:
        out: list[Bucket] = [
            (attn_per_layer / t, opt_attn, False, (lp["attention"] / t) if lp else 0.0, True),
            (norm_per_layer, opt_vec, False, 0.0, False)]
        if moe_layer:
            out.append((routed_per_layer / (ep * et), opt_exp, True,
                        (lp["moe_routed"] / (ep * et)) if lp else 0.0, True))
            out.append((shared_per_layer / t, opt_shared, False, (lp["moe_shared"] / t) if lp else 0.0, True))
            out.append((router_per_layer, opt_router, False, 0.0, False))
        else:
            out.append((dense_mlp / t, opt_mlp, False, (lp["dense_mlp"] / t) if lp else 0.0, True))
        return out

    def states(buckets: list[Bucket]) -> dict[str, float]:
        """Weights, grads, optimizer bytes after ZeRO, unsharded weight bytes (for ZeRO-3 gathers), and
        the parameters whose optimizer states this rank owns (for offload traffic)."""
        w = g = o = full_w = full_g = n_opt = full_n = full_n_train = full_n_16 = 0.0
        for n, ob, is_exp, n_lora, quantisable in buckets:
            full_n += n + n_lora
            full_n_train += n if lp is None else n_lora
            if not quantisable and conv.low_precision_gather_linears_only:
                full_n_16 += n + n_lora
            z = expert_z if is_exp else dense_z
            zw, zg, zo = (z if zero >= 3 else 1), (z if zero >= 2 else 1), (z if zero >= 1 else 1)
            if lp is None:
                stored = wb + copy if quantisable else wb_rest
                w += stored * n / zw
                # the gathered copy: zero3_gather_weight_bytes where set (what comm's all-gathers move), FSDP2's
                # 16-bit cast of its fp32 shards, else the stored weights and their fp8 copy
                gathered = fp32_shards or conv.zero3_gather_weight_bytes is not None
                full_w += ((g_mat if quantisable else g_rest) if gathered else stored) * n
                g += gb_kept * n / zg
                full_g += gb * n
                o += (mb + ob) * n / zo
                n_opt += n / zo
            else:
                # LoRA: frozen base at its storage dtype (QLoRA quantises the blocks' matrices, norms and
                # router stay 16-bit); adapters trained with the recipe (Hu et al. 2021; Dettmers et al. 2023).
                base = n * (base_q if quantisable else 2.0)
                w += (base + wb * n_lora) / zw
                full_w += base + wb * n_lora
                g += gb * n_lora / zg
                full_g += gb * n_lora
                o += (mb + opt_vec) * n_lora / zo
                n_opt += n_lora / zo
        return {"w": w, "g": g, "o": o, "full_w": full_w, "full_g": full_g, "n_opt": n_opt, "full_n": full_n,
                "full_n_train": full_n_train, "full_n_16": full_n_16}

    dense_layer = states(layer_buckets(False))
    moe_layer_st = states(layer_buckets(True)) if is_moe else dense_layer

    opt_pos = opt_b([(model.seq_len, model.d_model)], pos) if pos else 0.0

    def embed_states(n_tp: float, n_rep: float, opt_rep: float) -> dict[str, float]:
        """Embedding or head (vocab-parallel over tp) plus replicated extras (positions, final norm)."""
        n = n_tp / t + n_rep
        zw, zg, zo = (dense_z if zero >= 3 else 1), (dense_z if zero >= 2 else 1), (dense_z if zero >= 1 else 1)
        if lp is not None:  # frozen and kept 16-bit by LoRA/QLoRA
            return {"w": 2.0 * n / zw, "g": 0.0, "o": 0.0, "n_opt": 0.0}
        o = (mb * n + opt_emb * n_tp / t + opt_rep * n_rep) / zo
        return {"w": wb_rest * n / zw, "g": gb_kept * n / zg, "o": o, "n_opt": n / zo}

    return {"dense_layer": dense_layer, "moe_layer": moe_layer_st, "embed_states": embed_states,
            "trainable": trainable, "emb_in": emb_in, "pos": pos, "head": head, "final_norm": final_norm,
            "opt_pos": opt_pos, "opt_vec": opt_vec, "weight_bytes": wb, "grad_bytes": gb}



def _shard_degrees(layout: Layout, dp: int, gpus_per_node: int) -> tuple[float, float]:
    """(dense, expert) ZeRO shard degrees, in ranks: dense states shard over the ``dp * cp`` ranks that
    hold the same weights, routed experts over the expert-data-parallel group
    ``dp * cp * tp / (ep * etp)``; HSDP (``shard_group="node"``) keeps each shard group inside a node."""
    t, c, ep, et = layout.tp, layout.cp, layout.ep, layout.expert_tp
    dense_dp = dp * c
    expert_dp = max(1.0, dp * c * t / (ep * et))
    if layout.shard_group == "node":
        dense_z = min(dense_dp, max(1, gpus_per_node // t))
        expert_z = min(expert_dp, max(1.0, gpus_per_node / (ep * et)))
    else:
        dense_z, expert_z = dense_dp, expert_dp
    return dense_z, expert_z


def linear_input_bytes(precision: str, act: float, conv: MemoryConventions) -> float:
    """Bytes per element of what a linear layer saves of its input for backward: 1 under the ``fp8`` recipe
    when the framework saves the quantized GEMM input
    (:attr:`MemoryConventions.fp8_saves_quantized_linear_inputs`), else the activation bytes ``act``.

    >>> linear_input_bytes("fp8", 2.0, MemoryConventions(fp8_saves_quantized_linear_inputs=True))
    1.0
    >>> linear_input_bytes("bf16", 2.0, MemoryConventions(fp8_saves_quantized_linear_inputs=True))
    2.0
    """
    return min(act, 1.0) if precision == "fp8" and conv.fp8_saves_quantized_linear_inputs else act


def _layer_activations(model: ModelSpec, train: TrainSpec, layout: Layout, act: float,
                       conv: MemoryConventions) -> tuple[float, float, float, float]:
    """Activation bytes of one layer for one micro-batch: (saved by a dense layer, saved by an MoE layer,
    working set of a dense layer, of an MoE layer). The working sets are 0 unless full recompute counts
    the one layer it reruns at a time (``recompute_working_set``)."""
    s, b, is_moe = train.seq_len, layout.micro_batch, model.is_moe
    lin = linear_input_bytes(train.precision, act, conv)
    act_dense = sum(_layer_activation_terms(model, s, b, layout, act, conv, False, layout.recompute, lin).values())
    act_moe = (sum(_layer_activation_terms(model, s, b, layout, act, conv, True, layout.recompute, lin).values())
               if is_moe else act_dense)
    if layout.recompute == "full" and conv.recompute_working_set:
        work_dense = sum(_layer_activation_terms(model, s, b, layout, act, conv, False, "none", lin).values())
        work_moe = (sum(_layer_activation_terms(model, s, b, layout, act, conv, True, "none", lin).values())
                    if is_moe else work_dense)
    else:
        work_dense = work_moe = 0.0
    return act_dense, act_moe, work_dense, work_moe


@dataclass(slots=True)
class _StageInputs:
    """What every pipeline stage's memory is computed from: the inputs of :func:`memory_per_gpu`, the
    activation bytes per element ``act``, the micro-batches per step ``m_micro``, the model states of
    :func:`_model_states`, the per-layer activations of :func:`_layer_activations` (bytes) and the dense
    weights' data-parallel shard degree excluding CP, ``dp_shard`` (:func:`_shard_degrees`' over ``cp``).
    A plain slotted record, not frozen: a search builds one per candidate layout."""

    model: ModelSpec
    train: TrainSpec
    layout: Layout
    conv: MemoryConventions
    act: float
    m_micro: int
    states: dict
    act_dense: float
    act_moe: float
    work_dense: float
    work_moe: float
    dp_shard: float = 1.0


def _stage_model_states(x: _StageInputs, n_dense: int, n_moe: int, first: bool, last: bool,
                        r: dict[str, float]) -> tuple[float, float, float, float]:
    """Weights, gradients and optimizer bytes of a stage's layers plus its embedding (first stage) and
    head (last stage), after ZeRO, and the parameters whose optimizer states it owns: ``(w, g, o, n_opt)``.
    Records the layer and embedding parts in ``r``."""
    ms, p = x.states, x.layout.pp
    dense_layer, moe_layer_st, embed_states = ms["dense_layer"], ms["moe_layer"], ms["embed_states"]
    lay = {k: n_dense * dense_layer[k] + n_moe * moe_layer_st[k] for k in ("w", "g", "o", "n_opt")}
    r["layer_weights_bytes"], r["layer_gradients_bytes"] = lay["w"], lay["g"]
    r["layer_optimizer_bytes"] = lay["o"]
    emb = {"w": 0.0, "g": 0.0, "o": 0.0, "n_opt": 0.0}
    if first:
        emb = {k: emb[k] + v for k, v in embed_states(ms["emb_in"], ms["pos"], ms["opt_pos"]).items()}
    if last:  # tied embeddings with pp > 1 keep a copy of the matrix on the last stage (Megatron)
        n_head = ms["head"] if (not x.model.tied_embeddings or p > 1) else 0.0
        emb = {k: emb[k] + v for k, v in embed_states(n_head, ms["final_norm"], ms["opt_vec"]).items()}
    r["embedding_weights_bytes"], r["embedding_gradients_bytes"] = emb["w"], emb["g"]
    r["embedding_optimizer_bytes"] = emb["o"]
    return lay["w"] + emb["w"], lay["g"] + emb["g"], lay["o"] + emb["o"], lay["n_opt"] + emb["n_opt"]


def activation_offload_bytes(layers: int, *, n_dense: int, n_moe: int, act_dense: float, act_moe: float,
                             inflight: float = 1.0) -> float:
    """Saved activations of one micro-batch's first ``layers`` layers of a rank holding ``n_dense`` dense layers
    followed by ``n_moe`` MoE layers (``act_dense``, ``act_moe`` bytes each per micro-batch; ``inflight``
    micro-batches), bytes: what CPU activation offloading (:attr:`Layout.offload_activation_layers`) moves to host
    memory, and what it takes off the GPU's peak.

    Transformer Engine's offload schedule (``transformer_engine/pytorch/cpu_offload.py``: v2.9's
    ``AsyncDoubleBufferGroupOffloadHandler`` frees offloaded layer ``i``'s GPU copy by layer ``(L // N)(i + 1) - 1``
    of the forward; from Nov 2025 ``DefaultOffloadSynchronizer``, documented as keeping ``(L - N) x T``) holds at
    most the other ``L - N`` layers' activations at once, and reloads each offloaded layer just before its backward.
    The recompute working set and the embedding and logits buffers are not offloaded.

    >>> activation_offload_bytes(40, n_dense=80, n_moe=0, act_dense=3.0, act_moe=0.0)
    120.0
    >>> activation_offload_bytes(5, n_dense=3, n_moe=10, act_dense=1.0, act_moe=2.0, inflight=2)
    14.0
    """
    k_dense = min(layers, n_dense)
    k_moe = min(layers - k_dense, n_moe)
    return inflight * (k_dense * act_dense + k_moe * act_moe)


def _stage_activation_bytes(x: _StageInputs, n_dense: int, n_moe: int, inflight: float) -> float:
    """Saved activations of a stage's layers for its ``inflight`` micro-batches, plus the working set of
    the one layer full recompute reruns (an MoE one when the stage has any), bytes."""
    acts = inflight * (n_dense * x.act_dense + n_moe * x.act_moe)
    if n_moe and x.work_moe:
        acts += x.work_moe
    elif n_dense and x.work_dense:
        acts += x.work_dense
    return acts


def _stage_edge_bytes(x: _StageInputs, first: bool, last: bool, inflight: float, r: dict[str, float]) -> float:
    """First- and last-stage extras, bytes: the embedding's activations (first), the logits buffers and
    the kept stage outputs (last); 0 for a middle stage. Records each in ``r``."""
    model, train, layout, conv = x.model, x.train, x.layout, x.conv
    other = 0.0
    if first:
        r["embedding_activations_bytes"] = embedding_activation_bytes(model, train, layout, conv, inflight)
        other += r["embedding_activations_bytes"]
    if last:
        r["logits_bytes"] = logits_buffer_bytes(model, train, layout, conv, x.act)
        other += r["logits_bytes"]
        kept = pipeline_kept_outputs_bytes(model, train, layout, conv, x.m_micro)
        if kept:
            r["pipeline_kept_outputs_bytes"] = kept
            other += kept
    return other


def _stage_zero3_bytes(x: _StageInputs, n_dense: int, n_moe: int, first: bool, last: bool, big: dict,
                       r: dict[str, float], stages: tuple[tuple[int, int], ...] = ()) -> float:
    """ZeRO-3 buffers of a stage, bytes: its unsharded weights and gradients when gathering once per step
    (``zero3_gather="step"``), else the gather buffers of the largest layer ``big``. ``stages``: the
    (dense, MoE) layer counts of each of the rank's local stages, in order (for ``pp_reduce_per_stage``).
    Records them in ``r``. Only for ``zero == 3``."""
    layout, ms, conv = x.layout, x.states, x.conv
    t, p = layout.tp, layout.pp
    emb_first = ms["emb_in"] / t + ms["pos"]
    head_n = (ms["head"] if (not x.model.tied_embeddings or p > 1) else 0.0) / t
    emb_last = head_n + ms["final_norm"]
    emb_n = (emb_first if first else 0.0) + (emb_last if last else 0.0)
    lora = x.train.lora is not None
    if layout.zero3_gather != "step":
        r["zero3_gather_bytes"] = zero3_gather_bytes(big["full_w"], big["full_g"], conv)
        if conv.fsdp_root_unsharded and emb_n:
            # the head's gradient: with tied embeddings (one stage) the shared matrix's, from the head's backward
            r["zero3_root_unsharded_bytes"] = fsdp_root_unsharded_bytes(
                emb_n, 0.0 if (lora or not last) else ms["head"] / t, conv, x.train.precision, x.dp_shard)
            return r["zero3_gather_bytes"] + r["zero3_root_unsharded_bytes"]
        return r["zero3_gather_bytes"]
    dense_layer, moe_layer_st = ms["dense_layer"], ms["moe_layer"]

    def trainable(nd: int, nm: int, emb: float) -> float:
        return nd * dense_layer["full_n_train"] + nm * moe_layer_st["full_n_train"] + (0.0 if lora else emb)

    n_trainable = trainable(n_dense, n_moe, emb_n)
    if conv.pp_reduce_per_stage and layout.interleave > 1 and x.m_micro < 2 * p and len(stages) > 1:
        # one round: each local stage reduces and frees its accumulators before the next one's first backward
        v = len(stages)
        n_trainable = max(trainable(nd, nm, (emb_first if first and j == 0 else 0.0)
                                    + (emb_last if last and j == v - 1 else 0.0))
                          for j, (nd, nm) in enumerate(stages))
    un = zero3_unsharded_stage_bytes(
        n_params=(n_dense * dense_layer["full_n"] + n_moe * moe_layer_st["full_n"] + emb_n),
        n_trainable=n_trainable, layer_grad_bytes=big["full_g"], conv=conv, precision=x.train.precision,
        dp_shard=x.dp_shard,
        n_sixteen_bit=(n_dense * dense_layer["full_n_16"] + n_moe * moe_layer_st["full_n_16"]
                       + (emb_n if conv.low_precision_gather_linears_only else 0.0)))
    r["zero3_unsharded_weights_bytes"], r["zero3_unsharded_grads_bytes"] = un
    return sum(un)


def _stage_pipeline_bytes(x: _StageInputs, rank: int, inflight: float, r: dict[str, float]) -> float:
    """Pipeline send/receive buffers of pipeline rank ``rank``, bytes: per micro-batch with
    ``pp_microbatch_buffers``, else one activation each way. Records them in ``r``. Only for ``pp > 1``."""
    model, train, layout, act = x.model, x.train, x.layout, x.act
    if x.conv.pp_microbatch_buffers:
        r["pipeline_buffers_bytes"] = pipeline_microbatch_buffers_bytes(
            model, train, layout, act, rank=rank, micro_batches=x.m_micro, in_flight=inflight)
    else:
        r["pipeline_buffers_bytes"] = pipeline_buffer_bytes(model, train, layout, act)
    return r["pipeline_buffers_bytes"]


def _stage_cp_bytes(x: _StageInputs, r: dict[str, float]) -> float:
    """Ring-attention K/V buffers, bytes. Records them in ``r``. Only for ``cp > 1``."""
    r["cp_ring_buffers_bytes"] = cp_ring_buffer_bytes(x.model, x.train, x.layout, x.act)
    return r["cp_ring_buffers_bytes"]


def _stage_memory(x: _StageInputs, rank: int, n_dense: int, n_moe: int,
                  stages: tuple[tuple[int, int], ...] = ()) -> dict:
    """Memory of pipeline rank ``rank`` holding ``n_dense`` dense and ``n_moe`` MoE layers (``stages``: the
    (dense, MoE) layers of each of its local stages), bytes per GPU:
    weights ``w``, gradients ``g``, optimizer ``o`` (after offload), activations ``acts``, everything else
    ``other``, their ``total``, host and NVMe bytes, PCIe and NVMe traffic per step, and ``detail``.
    The terms that a layout does not have are skipped here rather than in their functions: ``other`` is a
    running sum in a fixed order, and a search calls this for every candidate stage."""
    layout, conv, ms = x.layout, x.conv, x.states
    p, zero = layout.pp, layout.zero
    first, last = rank == 0, rank == p - 1
    inflight = _in_flight(rank, p, layout.interleave, x.m_micro)
    r: dict[str, float] = {}
    w, g, o, n_opt = _stage_model_states(x, n_dense, n_moe, first, last, r)
    acts = _stage_activation_bytes(x, n_dense, n_moe, inflight)
    offloaded_acts = 0.0
    if layout.offload_activation_layers:
        offloaded_acts = activation_offload_bytes(layout.offload_activation_layers, n_dense=n_dense, n_moe=n_moe,
                                                  act_dense=x.act_dense, act_moe=x.act_moe, inflight=inflight)
        acts -= offloaded_acts
        r["offloaded_activations_bytes"] = offloaded_acts
    r["layer_activations_bytes"] = acts
    dense_layer, moe_layer_st = ms["dense_layer"], ms["moe_layer"]
    big = moe_layer_st if (n_moe and moe_layer_st["full_w"] >= dense_layer["full_w"]) else dense_layer
    other = _stage_edge_bytes(x, first, last, inflight, r) if (first or last) else 0.0
    if zero >= 3:
        other += _stage_zero3_bytes(x, n_dense, n_moe, first, last, big, r, stages)
    if p > 1:
        other += _stage_pipeline_bytes(x, rank, inflight, r)
    if layout.cp > 1:
        other += _stage_cp_bytes(x, r)
    other += conv.comm_buffer_bytes

    off = offload_terms(layout, w=w, g=g, o=o, n_opt=n_opt, weight_bytes=ms["weight_bytes"],
                        grad_bytes=ms["grad_bytes"],
                        grad_buffer_bytes=big["full_g"] / (conv.zero3_tiles if zero >= 3 else 1))
    w, g, o = off["w"], off["g"], off["o"]
    if layout.offload_optimizer != "none":
        r["offload_grad_buffer_bytes"] = off["grad_buffer"]
        other += off["grad_buffer"]
    # offloaded activations: host memory for one micro-batch's, sent out and back once per micro-batch
    act_pcie = 2.0 * offloaded_acts * x.m_micro / inflight
    host, pcie = off["host"] + offloaded_acts, off["pcie"] + act_pcie
    r["pcie_bytes_per_step"], r["nvme_bytes_per_step"] = pcie, off["nvme_io"]
    total = w + g + o + acts + other
    return dict(w=w, g=g, o=o, acts=acts, other=other, total=total, host=host, nvme=off["nvme"],
                pcie=pcie, nvme_io=off["nvme_io"], host_acts=offloaded_acts, act_pcie=act_pcie, stage=rank,
                inflight=inflight,
                detail=r)


def _stage_inputs(model: ModelSpec, train: TrainSpec, layout: Layout, *, dp: int, gpus_per_node: int,
                  conventions: MemoryConventions) -> tuple[_StageInputs, list[str]]:
    """What every pipeline rank's memory is computed from (:class:`_StageInputs`), and the notes that
    :func:`memory_per_gpu` reports about the inputs."""
    dp = _check_positive_int("dp", dp)
    gpus_per_node = _check_positive_int("gpus_per_node", gpus_per_node)
    rec = _recipe(train.precision)
    conv = conventions
    act = conv.activation_bytes or rec.activation_bytes
    notes: list[str] = []
    b = layout.micro_batch
    dense_z, expert_z = _shard_degrees(layout, dp, gpus_per_node)
    if layout.offload_params != "none" and layout.zero < 3:
        notes.append("offload_params needs zero=3 (ZeRO-Infinity); parameters kept on the GPU")
    ms = _model_states(model, train, layout, conv, rec, dense_z, expert_z)
    m_micro = max(1, math.ceil(train.global_batch / (dp * b)))
    if train.global_batch % (dp * b):
        notes.append(f"global_batch={train.global_batch} is not a multiple of dp*micro_batch={dp * b}")
    x = _StageInputs(model, train, layout, conv, act, m_micro, ms, *_layer_activations(model, train, layout, act, conv),
                     dp_shard=dense_z / layout.cp)
    return x, notes


def _distinct_ranks(model: ModelSpec, layout: Layout,
                    conv: MemoryConventions) -> Iterator[tuple[int, int, int, tuple[tuple[int, int], ...]]]:
    """``(rank, dense layers, MoE layers, (dense, MoE) layers of each local stage)`` of the pipeline ranks
    whose memory can differ: among ranks with the same layers that are neither first nor last, only the
    earliest (in-flight micro-batches never grow with the rank index, so it holds the most; this keeps
    large pp cheap for the search)."""
    p, v = layout.pp, layout.interleave
    first_moe = model.n_layers - model.n_moe_layers
    seen: set[tuple] = set()
    for i, ranges in enumerate(_stage_layers(model.n_layers, p, v, conv.pp_stage_split)):
        if len(ranges) == 1:  # one stage per rank (no interleaving, or the even split): the common case
            lo, hi = ranges[0]
            n_moe_i = hi - lo if lo >= first_moe else max(0, hi - first_moe)
            n_dense_i = hi - lo - n_moe_i
            stages: tuple[tuple[int, int], ...] = ((n_dense_i, n_moe_i),)
        else:
            stages = tuple((hi - lo - max(0, hi - max(lo, first_moe)), max(0, hi - max(lo, first_moe)))
                           for lo, hi in ranges)
            n_dense_i, n_moe_i = sum(d for d, _ in stages), sum(e for _, e in stages)
        key = (stages, i == 0, i == p - 1)
        if key in seen:
            continue
        seen.add(key)
        yield i, n_dense_i, n_moe_i, stages


def offloaded_state_bytes_by_rank(model: ModelSpec, train: TrainSpec, layout: Layout, *, dp: int,
                                  gpus_per_node: int = 8, conventions: MemoryConventions = MemoryConventions(),
                                  ) -> tuple[tuple[float, float], ...]:
    """``(host, nvme)`` bytes of offloaded model states on each pipeline rank whose states can differ (the
    first and last hold the embedding and head, an uneven split gives some ranks more layers).

    :func:`memory_per_gpu` reports the largest host and NVMe bytes and offload traffic over the ranks (every
    rank must fit in host memory, and the step waits for the rank that moves the most); these do not depend
    on the activations (save policy, micro-batch), so their least is a lower bound on what
    :func:`memory_per_gpu` reports for any save policy and micro-batch of ``layout``.

    >>> from scalelab.arch.spec import ModelSpec
    >>> from scalelab.planner.layout import Layout, TrainSpec
    >>> m = ModelSpec(n_layers=8, d_model=1024, n_heads=8, d_ff=4096, vocab_size=32000)
    >>> lay = Layout(pp=2, zero=1, offload_optimizer="cpu")
    >>> by_rank = offloaded_state_bytes_by_rank(m, TrainSpec(seq_len=1024, global_batch=8), lay, dp=4)
    >>> len(by_rank), by_rank[0][0] != by_rank[1][0], by_rank[0][1]
    (2, True, 0.0)
    """
    dp = _check_positive_int("dp", dp)
    dense_z, expert_z = _shard_degrees(layout, dp, _check_positive_int("gpus_per_node", gpus_per_node))
    ms = _model_states(model, train, layout, conventions, _recipe(train.precision), dense_z, expert_z)
    # the model states only (what _stage_memory offloads), without the activations a search does not need here
    x = _StageInputs(model, train, layout, conventions, 0.0, 1, ms, 0.0, 0.0, 0.0, 0.0, dp_shard=dense_z / layout.cp)
    out = []
    for i, n_dense_i, n_moe_i, _ in _distinct_ranks(model, layout, conventions):
        w, g, o, n_opt = _stage_model_states(x, n_dense_i, n_moe_i, i == 0, i == layout.pp - 1, {})
        off = offload_terms(layout, w=w, g=g, o=o, n_opt=n_opt, weight_bytes=ms["weight_bytes"],
                            grad_bytes=ms["grad_bytes"], grad_buffer_bytes=0.0)
        out.append((off["host"], off["nvme"]))
    return tuple(out)


def memory_per_gpu(model: ModelSpec, train: TrainSpec, layout: Layout, *, dp: int,
                   gpus_per_node: int = 8,
                   conventions: MemoryConventions = MemoryConventions()) -> MemoryBreakdown:
    """Training memory per GPU at the peak pipeline stage.

    Parameters
    ----------
    model, train, layout
        What is trained, how, and the parallel layout (``layout.dp`` may be ``None``).
    dp : int
        The resolved data-parallel degree (``n_gpus / (tp * pp * cp)``).
    gpus_per_node : int
        For HSDP (``layout.shard_group == "node"``): ZeRO shards over the DP ranks inside a node; ranks
        are ordered tp, cp, dp, pp from the innermost (Megatron-LM's default).
    conventions : MemoryConventions
        Bookkeeping conventions (dropout, fused activations, logits dtype...).

    Returns
    -------
    MemoryBreakdown

    Notes
    -----
    Sharding (Megatron-Bridge's three buckets): attention, dense MLP, shared experts, embedding and head
    are split over ``tp``; norms and the router are replicated; routed experts are split over
    ``ep * etp``. Dense model states are ZeRO-sharded over the ``dp * cp`` ranks that hold the same
    weights, routed experts over the expert-data-parallel group ``dp * cp * tp / (ep * etp)``.

    Examples
    --------
    >>> from scalelab.arch.spec import ModelSpec
    >>> from scalelab.planner.layout import Layout, TrainSpec
    >>> m = ModelSpec(n_layers=32, d_model=4096, n_heads=32, n_kv_heads=8, d_ff=14336, vocab_size=128256)
    >>> mem = memory_per_gpu(m, TrainSpec(seq_len=8192, global_batch=64), Layout(zero=3), dp=64)
    >>> round(mem.model_states_bytes / 1e9, 2)   # 16 bytes x 8.03B / 64
    2.01
    """
    x, notes = _stage_inputs(model, train, layout, dp=dp, gpus_per_node=gpus_per_node, conventions=conventions)
    best: dict = {}
    # offload: every rank's states must fit in host memory and the step waits for the rank that moves the
    # most, which need not be the rank that peaks in GPU memory: the largest of each over the ranks
    most = {"host": 0.0, "nvme": 0.0, "pcie": 0.0, "nvme_io": 0.0, "host_acts": 0.0, "act_pcie": 0.0}
    for i, n_dense_i, n_moe_i, stages in _distinct_ranks(model, layout, conventions):
        res = _stage_memory(x, i, n_dense_i, n_moe_i, stages)
        if not best or res["total"] > best["total"]:
            best = res
        for k in most:
            most[k] = max(most[k], res[k])

    if layout.offload_optimizer != "none" or layout.offload_params != "none" or layout.offload_activation_layers:
        notes.append("offload traffic is per GPU per step; hiding it needs pcie_bytes_per_step / compute time")
    if model.is_moe:
        notes.append("MoE activations assume balanced routing (expected tokens per expert)")
    return MemoryBreakdown(
        weights_bytes=best["w"], gradients_bytes=best["g"], optimizer_bytes=best["o"],
        activations_bytes=best["acts"], other_bytes=best["other"], total_bytes=best["total"],
        host_bytes=most["host"], nvme_bytes=most["nvme"],
        offload_bytes_per_step=most["pcie"] + most["nvme_io"], trainable_params=int(x.states["trainable"]),
        notes=tuple(notes), peak_stage=best["stage"], pcie_bytes_per_step=most["pcie"],
        nvme_bytes_per_step=most["nvme_io"], in_flight_microbatches=best["inflight"],
        detail=tuple(sorted(best["detail"].items())), conventions=conventions, host_activations_bytes=most["host_acts"],
        activation_offload_bytes_per_step=most["act_pcie"],
    )
