"""Memory model: recipes, optimizers, sharding, pipeline schedules, MoE, offload, inference, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalelab.arch.spec import MLASpec, ModelSpec, MoESpec
from scalelab.errors import ConfigError
from scalelab.planner import (
    Layout,
    LoRASpec,
    MemoryConventions,
    TrainSpec,
    activation_bytes_per_layer,
    inference_weights_bytes,
    lora_trainable_params,
    memory_per_gpu,
    zero_model_states_bytes,
)
from scalelab.planner.memory import quantized_bytes_per_param

DENSE = ModelSpec(name="dense", n_layers=8, d_model=512, n_heads=8, n_kv_heads=2, d_ff=1536, vocab_size=32000)
MOE = ModelSpec(name="moe", n_layers=8, d_model=512, n_heads=8, d_ff=1536, vocab_size=32000,
                moe=MoESpec(n_experts=16, top_k=2, d_expert=256, n_shared_experts=1, n_dense_layers=1))
TRAIN = TrainSpec(seq_len=1024, global_batch=64)


def _states_per_param(model, train, **layout):
    mem = memory_per_gpu(model, train, Layout(**layout), dp=1)
    return mem.model_states_bytes / model.n_params().total


@pytest.mark.parametrize("precision, gemm, rest", [
    ("fp32", 16.0, 16.0),             # 4 + 4 + Adam 8
    ("bf16", 16.0, 16.0),             # ZeRO paper: 2 + 2 + K (K = 12)
    ("bf16-fp32-grad", 18.0, 18.0),   # Megatron theoretical_memory_usage.py
    ("fp8", 19.0, 18.0),              # + 1-byte fp8 working copy of the blocks' GEMM weights
    ("fp4", 18.5625, 18.0),           # + NVFP4 copy of them: 4 bits + e4m3 scale per 16
])
def test_precision_recipes_bytes_per_param(precision, gemm, rest):
    """The low-precision working copy is of the blocks' GEMM weights only: Transformer Engine casts its modules'
    weights; the embedding, the output layer and the norms are not cast."""
    counts = DENSE.n_params()
    n_gemm = DENSE.n_layers * (counts.per_layer_attention + counts.per_layer_dense_mlp)
    expected = (gemm * n_gemm + rest * (counts.total - n_gemm)) / counts.total
    assert _states_per_param(DENSE, TrainSpec(precision=precision)) == pytest.approx(expected, rel=1e-12)


def test_optimizer_states():
    sgd = _states_per_param(DENSE, TrainSpec(optimizer="sgd"))
    a8 = _states_per_param(DENSE, TrainSpec(optimizer="adam8bit"))
    assert sgd == pytest.approx(2 + 2 + 4 + 4)
    assert a8 == pytest.approx(2 + 2 + 4 + 2 * (1 + 4 / 2048))
    # Adafactor: a row and a column accumulator per matrix (Shazeer & Stern 2018), fp32.
    m = ModelSpec(n_layers=1, d_model=64, n_heads=4, d_ff=256, vocab_size=100, ffn_kind="gelu")
    mem = memory_per_gpu(m, TrainSpec(optimizer="adafactor"), Layout(), dp=1)
    mats = [(64, 64)] * 4 + [(64, 256), (256, 64)]
    vectors = m.n_params().norms
    emb = [(100, 64), (100, 64)]  # embedding and untied head
    expected_states = sum(i + o for i, o in mats + emb) + vectors
    assert mem.optimizer_bytes == pytest.approx(4 * m.n_params().total + 4 * expected_states)
    # GaLore: projector m r plus moments 2 n r per m x n matrix (Zhao et al. 2024)
    gal = memory_per_gpu(m, TrainSpec(optimizer="galore", galore_rank=16), Layout(), dp=1)
    proj = sum(16 * min(i, o) + 2 * 16 * max(i, o) for i, o in mats + emb)
    assert gal.optimizer_bytes == pytest.approx(4 * m.n_params().total + 4 * (proj + 2 * vectors))
    assert gal.optimizer_bytes < memory_per_gpu(m, TrainSpec(), Layout(), dp=1).optimizer_bytes


def test_zero3_gather_buffers_and_hsdp():
    full = memory_per_gpu(DENSE, TRAIN, Layout(zero=3), dp=64)
    n = DENSE.n_params().total
    assert full.weights_bytes == pytest.approx(2 * n / 64)
    assert full.get("zero3_gather_bytes") > 0
    assert memory_per_gpu(DENSE, TRAIN, Layout(zero=2), dp=64).get("zero3_gather_bytes") == 0
    # HSDP: shard over the 8 ranks of a node, replicate across nodes
    hsdp = memory_per_gpu(DENSE, TRAIN, Layout(zero=3, shard_group="node"), dp=64, gpus_per_node=8)
    assert hsdp.optimizer_bytes == pytest.approx(12 * n / 8)
    # with tp=4 only 2 DP ranks share a node
    hsdp_tp = memory_per_gpu(DENSE, TRAIN, Layout(zero=1, tp=4, shard_group="node"), dp=16, gpus_per_node=8)
    plain_tp = memory_per_gpu(DENSE, TRAIN, Layout(zero=0, tp=4), dp=16)
    assert hsdp_tp.optimizer_bytes == pytest.approx(plain_tp.optimizer_bytes / 2)


def test_tensor_parallel_splits_weights_but_not_norms():
    one = memory_per_gpu(DENSE, TRAIN, Layout(), dp=1)
    four = memory_per_gpu(DENSE, TRAIN, Layout(tp=4), dp=1)
    c = DENSE.n_params()
    replicated = c.norms
    assert four.weights_bytes == pytest.approx(2 * ((c.total - replicated) / 4 + replicated))
    assert four.activations_bytes < one.activations_bytes
    sp = memory_per_gpu(DENSE, TRAIN, Layout(tp=4, sequence_parallel=True), dp=1)
    assert sp.activations_bytes < four.activations_bytes


def test_pipeline_in_flight_microbatches():
    m = ModelSpec(n_layers=16, d_model=256, n_heads=4, d_ff=1024, vocab_size=1000)
    train = TrainSpec(seq_len=512, global_batch=64)
    per_layer = activation_bytes_per_layer(m, 512, 1, Layout())
    p4 = memory_per_gpu(m, train, Layout(pp=4), dp=1)
    assert p4.peak_stage == 0 and p4.in_flight_microbatches == 4  # 1F1B: the first stage holds p
    assert p4.activations_bytes == pytest.approx(4 * 4 * per_layer)
    # interleaved: (1 + (p - 1)/(p v)) p stage-microbatches on the first stage (Korthikanti §4.2.3)
    v2 = memory_per_gpu(m, train, Layout(pp=4, interleave=2), dp=1)
    assert v2.in_flight_microbatches == pytest.approx(4 * (1 + 3 / 8))
    # fewer microbatches than stages: the pipeline never fills
    few = memory_per_gpu(m, TrainSpec(seq_len=512, global_batch=2), Layout(pp=4), dp=1)
    assert few.in_flight_microbatches == 2
    # pp = 1 runs microbatches one after another
    assert memory_per_gpu(m, train, Layout(), dp=1).in_flight_microbatches == 1


def test_peak_stage_can_be_a_middle_stage():
    """Uneven layer splits and leading dense layers: the peak stage is the one with the most memory."""
    m = ModelSpec(n_layers=10, d_model=256, n_heads=4, d_ff=512, vocab_size=1000,
                  moe=MoESpec(n_experts=64, top_k=2, d_expert=512, n_dense_layers=3))
    mem = memory_per_gpu(m, TrainSpec(seq_len=256, global_batch=1), Layout(pp=4), dp=1)
    assert mem.peak_stage != 0  # stage 0 holds 3 dense layers, later stages hold heavy MoE layers


def test_context_parallel_splits_tokens():
    lay = Layout(recompute="none")
    a1 = activation_bytes_per_layer(DENSE, 4096, 1, lay)
    a4 = activation_bytes_per_layer(DENSE, 4096, 1, Layout(cp=4))
    assert a4 == pytest.approx(a1 / 4)
    mem = memory_per_gpu(DENSE, TrainSpec(seq_len=4096, global_batch=8), Layout(cp=4, zero=1), dp=2)
    ref = memory_per_gpu(DENSE, TrainSpec(seq_len=4096, global_batch=8), Layout(zero=1), dp=8)
    assert mem.optimizer_bytes == pytest.approx(ref.optimizer_bytes)  # ZeRO shards over dp * cp
    assert mem.get("cp_ring_buffers_bytes") > 0


def test_gqa_and_mla_shrink_kv_activations():
    mha = ModelSpec(n_layers=1, d_model=512, n_heads=8, d_ff=1024, vocab_size=100)
    gqa = ModelSpec(n_layers=1, d_model=512, n_heads=8, n_kv_heads=1, d_ff=1024, vocab_size=100)
    diff = activation_bytes_per_layer(mha, 128, 1, Layout()) - activation_bytes_per_layer(gqa, 128, 1, Layout())
    assert diff == pytest.approx(2 * 128 * (512 - 64) * 2)  # K and V at 2 bytes
    mla = ModelSpec(n_layers=1, d_model=512, n_heads=8, d_ff=1024, vocab_size=100,
                    mla=MLASpec(q_lora_rank=128, kv_lora_rank=64, qk_nope_head_dim=32, qk_rope_head_dim=16,
                                v_head_dim=32))
    assert activation_bytes_per_layer(mla, 128, 1, Layout()) > 0


def test_expert_parallelism_and_capacity():
    one = memory_per_gpu(MOE, TRAIN, Layout(zero=1), dp=8)
    ep8 = memory_per_gpu(MOE, TRAIN, Layout(zero=1, ep=8), dp=8)
    c = MOE.n_params()
    assert one.weights_bytes - ep8.weights_bytes == pytest.approx(2 * c.experts_routed * (1 - 1 / 8))
    # with ep = dp the expert-data-parallel group is 1: expert optimizer states are not sharded
    expert_opt = 12 * c.experts_routed / 8
    assert ep8.optimizer_bytes == pytest.approx(expert_opt + 12 * (c.total - c.experts_routed) / 8)
    # capacity factor 1.25 pads the routed tokens (Fedus et al. 2021)
    cf = MOE.model_copy(update={"moe": MOE.moe.model_copy(update={"capacity_factor": 1.25})})
    a_drop = activation_bytes_per_layer(MOE, 512, 1, Layout())
    a_cf = activation_bytes_per_layer(cf, 512, 1, Layout())
    assert a_cf > a_drop
    dense_layer = activation_bytes_per_layer(MOE, 512, 1, Layout(), moe_layer=False)
    assert dense_layer != a_drop


def test_full_recompute_keeps_layer_inputs_plus_one_layer():
    m = ModelSpec(n_layers=12, d_model=256, n_heads=4, d_ff=1024, vocab_size=1000)
    none = activation_bytes_per_layer(m, 512, 2, Layout())
    mem = memory_per_gpu(m, TrainSpec(seq_len=512, global_batch=2), Layout(recompute="full", micro_batch=2), dp=1)
    assert mem.activations_bytes == pytest.approx(12 * 512 * 2 * 256 * 2 + none)
    off = memory_per_gpu(m, TrainSpec(seq_len=512, global_batch=2), Layout(recompute="full", micro_batch=2), dp=1,
                         conventions=MemoryConventions(recompute_working_set=False))
    assert off.activations_bytes == pytest.approx(12 * 512 * 2 * 256 * 2)


def test_logits_on_last_stage_in_other():
    mem = memory_per_gpu(DENSE, TrainSpec(seq_len=1024, global_batch=8), Layout(pp=2), dp=1)
    stage_last = memory_per_gpu(DENSE, TrainSpec(seq_len=1024, global_batch=8), Layout(), dp=1)
    assert stage_last.get("logits_bytes") == pytest.approx(2 * 1024 * 512 * 2 + 1024 * 32000 * 4)
    assert mem.other_bytes > 0


def test_lora_gradients_and_optimizer_only_for_adapters():
    lora = LoRASpec(rank=8, target_modules=("q", "k", "v", "o"))
    n_lora = lora_trainable_params(DENSE, lora)
    assert n_lora == 8 * 8 * ((512 + 512) + 2 * (512 + 128) + (512 + 512))
    mem = memory_per_gpu(DENSE, TrainSpec(lora=lora), Layout(), dp=1)
    assert mem.trainable_params == n_lora
    assert mem.gradients_bytes == pytest.approx(2 * n_lora)
    assert mem.optimizer_bytes == pytest.approx(12 * n_lora)
    assert mem.weights_bytes == pytest.approx(2 * DENSE.n_params().total + 2 * n_lora)
    all_mods = lora_trainable_params(MOE, LoRASpec(rank=4, target_modules=("all",)))
    assert all_mods > lora_trainable_params(MOE, LoRASpec(rank=4, target_modules=("q",)))


def test_inference_weights():
    c = DENSE.n_params()
    assert inference_weights_bytes(DENSE, "bf16") == 2 * c.total
    assert inference_weights_bytes(DENSE, "fp32") == 4 * c.total
    i8 = inference_weights_bytes(DENSE, "int8")
    nf4 = inference_weights_bytes(DENSE, "nf4")
    assert nf4 < i8 < 2 * c.total
    # matrices at 4 + 0.127 bits (QLoRA NF4 with double quantisation), embeddings and norms 16-bit
    matrices = c.total - c.embedding - c.norms
    assert nf4 == pytest.approx(matrices * (4 + 8 / 64 + 32 / (64 * 256)) / 8 + 2 * (c.embedding + c.norms))
    assert quantized_bytes_per_param("nf4", double_quant=False) == pytest.approx(4.5 / 8)
    assert quantized_bytes_per_param("nvfp4") == pytest.approx(4.5 / 8)
    # QMoE-style sub-1-bit experts: 0.8 bit per routed-expert weight, the rest 16-bit
    m = MOE.n_params()
    assert inference_weights_bytes(MOE, "sub1bit") == pytest.approx(0.1 * m.experts_routed
                                                                    + 2 * (m.total - m.experts_routed))
    assert inference_weights_bytes(DENSE, "nf4", quantize_embeddings=True) < nf4


def test_breakdown_outputs():
    mem = memory_per_gpu(MOE, TRAIN, Layout(zero=1, ep=2, pp=2), dp=4)
    d = mem.to_dict()
    for k in ("weights", "gradients", "optimizer", "activations", "other", "total"):
        assert k in d
    assert d["total"] == pytest.approx(sum(d[k] for k in ("weights", "gradients", "optimizer", "activations",
                                                          "other")))
    assert "GiB" in mem.report() and d["conventions"]["dropout"] is False
    assert any("MoE" in n for n in mem.notes)


@settings(max_examples=40, deadline=None)
@given(tp=st.sampled_from([1, 2, 4]), pp=st.sampled_from([1, 2, 4]), zero=st.sampled_from([0, 1, 2, 3]),
       mb=st.integers(1, 4), rc=st.sampled_from(["none", "selective", "full"]), sp=st.booleans(),
       flash=st.booleans())
def test_properties(tp, pp, zero, mb, rc, sp, flash):
    lay = Layout(tp=tp, pp=pp, zero=zero, micro_batch=mb, recompute=rc, sequence_parallel=sp and tp > 1,
                 flash_attention=flash)
    mem = memory_per_gpu(DENSE, TRAIN, lay, dp=4)
    parts = [mem.weights_bytes, mem.gradients_bytes, mem.optimizer_bytes, mem.activations_bytes, mem.other_bytes]
    assert all(x >= 0 for x in parts)
    assert mem.total_bytes == pytest.approx(sum(parts))
    # more ZeRO never costs more model states; bigger micro-batches never cost fewer activations
    if zero < 3:
        more = memory_per_gpu(DENSE, TRAIN, lay.model_copy(update={"zero": zero + 1}), dp=4)
        assert more.model_states_bytes <= mem.model_states_bytes + 1e-6
    bigger = memory_per_gpu(DENSE, TRAIN, lay.model_copy(update={"micro_batch": mb + 1}), dp=4)
    assert bigger.activations_bytes >= mem.activations_bytes * (mb + 1) / mb / max(pp, 1) - 1e-6


@pytest.mark.parametrize("call", [
    lambda: memory_per_gpu(DENSE, TRAIN, Layout(), dp=0),
    lambda: memory_per_gpu(DENSE, TRAIN, Layout(), dp=2.5),
    lambda: memory_per_gpu(DENSE, TRAIN, Layout(), dp=1, gpus_per_node=0),
    lambda: activation_bytes_per_layer(DENSE, 0, 1, Layout()),
    lambda: activation_bytes_per_layer(DENSE, 128, -1, Layout()),
    lambda: activation_bytes_per_layer(DENSE, 128, 1, Layout(), dtype_bytes=0),
    lambda: activation_bytes_per_layer(DENSE, 128, 1, Layout(), recompute="most"),
    lambda: MemoryConventions(dropout_mask_bytes=-1),
    lambda: MemoryConventions(activation_bytes=0),
    lambda: MemoryConventions(logits_bytes=float("nan")),
    lambda: MemoryConventions(zero3_prefetch_layers=0),
    lambda: MemoryConventions(fsdp_root_unsharded="false"),  # a truthy string must not switch it on
    lambda: MemoryConventions(fp32_param_shards=1),
    lambda: MemoryConventions(low_precision_gather_linears_only=None),
    lambda: MemoryConventions(sp_saves_gathered_inputs="yes"),
    lambda: inference_weights_bytes(DENSE, "int3"),
    lambda: zero_model_states_bytes(7.5e9, zero=4, n_d=8),
    lambda: zero_model_states_bytes(-1, zero=1, n_d=8),
    lambda: lora_trainable_params(DENSE, LoRASpec(target_modules=("attn",))),
])
def test_bad_input_raises_config_error(call):
    with pytest.raises(ConfigError) as e:
        call()
    assert "got" in str(e.value) or "allowed" in str(e.value)


def test_each_memory_term_can_be_called_alone_and_is_what_memory_per_gpu_adds():
    """memory_per_gpu's buffer and offload terms are functions of their own (llm-analysis style): each,
    called alone, gives the entry memory_per_gpu reports, and follows its formula."""
    from scalelab import get_model
    from scalelab.planner.memory import (
        MemoryConventions,
        cp_ring_buffer_bytes,
        logits_buffer_bytes,
        memory_per_gpu,
        offload_terms,
        pipeline_buffer_bytes,
        zero3_gather_bytes,
    )

    model = get_model("llama-3.1-8b")
    train = TrainSpec(seq_len=8192, global_batch=64)
    lay = Layout(tp=2, pp=2, cp=2, zero=3, sequence_parallel=True, micro_batch=2, offload_optimizer="cpu")
    conv = MemoryConventions()
    mem = memory_per_gpu(model, train, lay, dp=4, conventions=conv)
    T = 8192 / 2 * 2  # tokens of a micro-batch on one CP rank
    assert pipeline_buffer_bytes(model, train, lay, 2.0) == 2 * (T / 2) * model.d_model * 2.0
    assert pipeline_buffer_bytes(model, train, lay.model_copy(update={"pp": 1}), 2.0) == 0.0
    assert cp_ring_buffer_bytes(model, train, lay, 2.0) == 2 * T * (model.kv_dim + model.v_dim) * 2.0 / 2
    assert mem.get("pipeline_buffers_bytes") == pipeline_buffer_bytes(model, train, lay, 2.0)
    assert mem.get("cp_ring_buffers_bytes") == cp_ring_buffer_bytes(model, train, lay, 2.0)
    if mem.peak_stage == 1:  # the last stage holds the loss's buffers
        assert mem.get("logits_bytes") == logits_buffer_bytes(model, train, lay, conv, 2.0)
    assert zero3_gather_bytes(10.0, 4.0, MemoryConventions(zero3_prefetch_layers=2, zero3_tiles=4)) == 6.0
    off = offload_terms(lay, w=1.0, g=2.0, o=12.0, n_opt=1.0, weight_bytes=2.0, grad_bytes=4.0,
                        grad_buffer_bytes=0.5)
    assert (off["g"], off["o"], off["host"], off["pcie"], off["grad_buffer"]) == (0.0, 0.0, 16.0, 6.0, 0.5)
    assert mem.host_bytes > 0 and mem.get("offload_grad_buffer_bytes") > 0


def test_dtensor_sequence_parallel_saves_the_gathered_linear_inputs():
    """torchtitan's DTensor SP gathers before the QKV and MLP-in linears, which save all T tokens; Megatron
    saves the T / tp shard. The difference is 2 (T - T / tp) h bytes per layer, and nothing without SP."""
    import dataclasses

    from scalelab import get_model
    from scalelab.planner.memory import MemoryConventions, activation_bytes_per_layer

    model = get_model("llama-3.1-70b")
    meg = MemoryConventions()
    dt = dataclasses.replace(meg, sp_saves_gathered_inputs=True)
    lay = Layout(tp=8, sequence_parallel=True, recompute="none")
    a = activation_bytes_per_layer(model, 8192, 2, lay, conventions=meg)
    b = activation_bytes_per_layer(model, 8192, 2, lay, conventions=dt)
    T = 8192 * 2
    assert b - a == pytest.approx(2 * (T - T / 8) * model.d_model * 2)
    no_sp = Layout(tp=8, sequence_parallel=False, recompute="none")
    assert activation_bytes_per_layer(model, 8192, 2, no_sp, conventions=dt) == \
        activation_bytes_per_layer(model, 8192, 2, no_sp, conventions=meg)


def test_pipelining_per_microbatch_buffers_follow_torch_pipelining_of_torchtitans_runs():
    """``pp_microbatch_buffers``: m gradient receive buffers and m kept outputs (not on the last stage);
    the receive buffers not in flight (the in-flight ones are their first layer's saved input) and the
    input gradients of the backwards done (not on the first), counted at the rank's last forward;
    memory_per_gpu reports that instead of one buffer each way."""
    import dataclasses

    from scalelab import get_model
    from scalelab.planner.memory import (
        MemoryConventions,
        memory_per_gpu,
        pipeline_buffer_bytes,
        pipeline_microbatch_buffers_bytes,
    )

    model = get_model("llama-3.1-8b")
    train = TrainSpec(seq_len=4096, global_batch=16)
    lay = Layout(tp=2, pp=4, sequence_parallel=True, micro_batch=2)
    unit = 2 * 4096 / 2 * model.d_model * 2.0  # one stage output: micro-batch x seq / tp x d, bf16

    def units(rank: int, m: int, inflight: float, layout: Layout = lay) -> float:
        return pipeline_microbatch_buffers_bytes(model, train, layout, 2.0, rank=rank, micro_batches=m,
                                                 in_flight=inflight) / unit

    assert units(0, 8, 4) == 16  # first stage: gradient receive buffers and kept outputs
    assert units(1, 8, 3) == 5 + 5 + 16  # 5 idle receive buffers, 5 input gradients, gradient buffers, outputs
    assert units(3, 8, 1) == 7 + 7  # last stage: idle receive buffers and 7 input gradients
    inter = lay.model_copy(update={"interleave": 2})
    # rank 3 of 4 with v=2 holds stages 3 and 7 (the last): 2 (m - 4.5) + 2 m, then 2 (m - 4.5)
    assert units(3, 8, 4.5, inter) == (3.5 + 3.5 + 16) + (3.5 + 3.5)
    assert units(0, 8, 1, lay.model_copy(update={"pp": 1})) == 0.0
    conv = MemoryConventions()
    old = memory_per_gpu(model, train, lay, dp=1, conventions=conv)
    new = memory_per_gpu(model, train, lay, dp=1,
                         conventions=dataclasses.replace(conv, pp_microbatch_buffers=True))
    assert old.get("pipeline_buffers_bytes") == pipeline_buffer_bytes(model, train, lay, 2.0)
    assert new.peak_stage == old.peak_stage == 0
    assert new.get("pipeline_buffers_bytes") == units(0, 8, 4) * unit  # m = 16 / (1 x 2)
    assert new.total_bytes - old.total_bytes == new.get("pipeline_buffers_bytes") - old.get(
        "pipeline_buffers_bytes")


def test_torchtitan_stage_split_puts_the_remainder_on_the_middle_stages():
    """``pp_stage_split="torchtitan"`` splits as torchtitan's generate_split_points: first stage
    L // (p v), middle stages one more while the remainder lasts, the last stage the rest; rank r holds
    stages r, r + p, ...; the default keeps the even split with extras on the last stages."""
    from scalelab.planner.memory import MemoryConventions, _stage_layers, memory_per_gpu

    def counts(split: str, v: int = 1) -> list[int]:
        return [sum(hi - lo for lo, hi in r) for r in _stage_layers(126, 8, v, split)]

    assert counts("torchtitan") == [15, 16, 16, 16, 16, 16, 16, 15]
    assert counts("even") == [15, 15, 16, 16, 16, 16, 16, 16]
    assert _stage_layers(126, 8, 2, "torchtitan")[7] == [(55, 63), (119, 126)]
    assert counts("torchtitan", 2) == [15, 16, 16, 16, 16, 16, 16, 15]
    with pytest.raises(ConfigError, match="pp_stage_split"):
        MemoryConventions(pp_stage_split="balanced")
    # 7 layers on 3 stages, one micro-batch: the even split puts 3 layers on the last stage, torchtitan's
    # on the middle one, which becomes the peak (a small vocabulary keeps the head light)
    toy = ModelSpec(n_layers=7, d_model=512, n_heads=8, d_ff=2048, vocab_size=256)
    train = TrainSpec(seq_len=1024, global_batch=1)
    lay = Layout(pp=3)
    even = memory_per_gpu(toy, train, lay, dp=1, conventions=MemoryConventions())
    tt = memory_per_gpu(toy, train, lay, dp=1, conventions=MemoryConventions(pp_stage_split="torchtitan"))
    assert (even.peak_stage, tt.peak_stage) == (2, 1)
    assert tt.get("layer_weights_bytes") == even.get("layer_weights_bytes")
    assert tt.total_bytes < even.total_bytes


def test_float8_all_gather_falls_back_to_bf16_without_a_data_parallel_shard():
    """``low_precision_gather_needs_dp_shard`` (torchtitan's Float8Handler: FSDP's Float8 all-gather only
    with dp_shard > 1): FSDP over CP ranks alone gathers the 16-bit copy, twice the bytes of the Float8
    gather; with a data-parallel shard, or without the convention, the row's 1 byte stands."""
    import dataclasses

    from scalelab import get_model
    from scalelab.planner.frameworks import get_framework
    from scalelab.planner.memory import MemoryConventions, memory_per_gpu

    model = get_model("llama-3.1-8b")
    train = TrainSpec(seq_len=8192, global_batch=16, precision="fp8")
    lay = Layout(pp=2, cp=2, zero=3, zero3_gather="step", recompute="full")
    fp8 = MemoryConventions(zero3_gather_weight_bytes=1.0)
    tt = dataclasses.replace(fp8, low_precision_gather_needs_dp_shard=True)

    def gathered(conv: MemoryConventions, dp: int) -> float:
        return memory_per_gpu(model, train, lay, dp=dp, conventions=conv).get("zero3_unsharded_weights_bytes")

    assert gathered(tt, dp=1) == pytest.approx(2 * gathered(fp8, dp=1))  # FSDP 1 x CP 2: bf16
    assert gathered(tt, dp=2) == gathered(fp8, dp=2) == gathered(fp8, dp=1)  # FSDP 2 x CP 2: Float8
    bf16 = MemoryConventions(low_precision_gather_needs_dp_shard=True)  # nothing to fall back from
    assert gathered(bf16, dp=1) == gathered(MemoryConventions(), dp=1) == gathered(tt, dp=1)
    assert get_framework("torchtitan").memory.low_precision_gather_needs_dp_shard
    assert not get_framework("megatron").memory.low_precision_gather_needs_dp_shard


def test_offload_is_charged_for_the_rank_that_offloads_most_not_the_gpu_peak():
    """With PP, the first and last ranks hold the embedding and head: more offloaded states than a middle
    rank. When a middle rank peaks in GPU memory (no recompute: the first stages hold the most micro-batches'
    activations), host memory and the CPU optimizer's traffic must still be those of the rank with the most
    offloaded states (every rank must fit in host memory; the step waits for the slowest). Fails when
    memory_per_gpu reports the GPU-peak rank's offload."""
    from scalelab.planner.memory import offloaded_state_bytes_by_rank

    m = ModelSpec(n_layers=28, d_model=3584, n_heads=28, n_kv_heads=4, d_ff=18944, vocab_size=152064)
    train = TrainSpec(seq_len=4096, global_batch=256)
    lay = Layout(pp=8, zero=3, micro_batch=4, recompute="none", offload_optimizer="cpu", offload_params="cpu")
    by_rank = offloaded_state_bytes_by_rank(m, train, lay, dp=8)
    hosts = [h for h, _ in by_rank]
    assert max(hosts) > min(hosts) * 1.1          # the ranks really differ
    mem = memory_per_gpu(m, train, lay, dp=8)
    assert mem.host_bytes == pytest.approx(max(hosts))
