"""Packed sequences with a document mask (``TrainSpec.document_tokens``): attention spans each document,
not the pack, so its FLOPs scale with document_tokens / seq_len and its kernels see fewer keys."""

from __future__ import annotations

import pytest

from scalelab import Layout, TrainSpec, get_cluster, get_model, plan
from scalelab.planner.flops import flops_per_step
from scalelab.planner.step_time import flash_tile_efficiency

MODEL = get_model("llama-2-7b")
CLUSTER = get_cluster("h100-sxm", 8)


def _train(doc: int | None) -> TrainSpec:
    return TrainSpec(seq_len=4096, global_batch=32, document_tokens=doc)


def test_only_the_attention_scores_shrink_with_the_document_length():
    full, doc = (dict(flops_per_step(MODEL, _train(d)).detail) for d in (None, 512))
    assert doc["attention_scores"] == pytest.approx(full["attention_scores"] * 512 / 4096)
    assert {k: v for k, v in doc.items() if k != "attention_scores"} == \
        {k: v for k, v in full.items() if k != "attention_scores"}
    # a document as long as the sequence is the unmasked case
    assert flops_per_step(MODEL, _train(4096)).model == flops_per_step(MODEL, _train(None)).model


def test_short_documents_run_faster_but_their_kernels_less_efficiently():
    from scalelab.planner.policy import get_save_policy
    from scalelab.planner.step_time import _ComputeModel

    lay = Layout(zero=1)
    t_full, t_doc = (plan(MODEL, CLUSTER, _train(d), lay).step_time_s for d in (None, 512))
    assert t_doc < t_full
    # the same attention FLOPs take longer in 512-key kernels: their fixed tiles weigh more
    att = [_ComputeModel(MODEL, CLUSTER, _train(d), lay, dp=8, efficiency=None, attention_efficiency=None,
                         fused_elementwise=True).terms(1e16, 1e15, get_save_policy("none"))[1] for d in (None, 512)]
    assert att[1] / att[0] == pytest.approx(flash_tile_efficiency(2048) / flash_tile_efficiency(256))
    assert att[1] > att[0]


def test_a_document_longer_than_the_sequence_is_refused_by_name():
    with pytest.raises(ValueError, match="document_tokens cannot exceed seq_len"):
        _train(8192)


def test_specs_without_the_new_fields_keep_their_hashes():
    """document_tokens (TrainSpec) and grad_bytes (MemoryConventions) are written only when set, so a spec or
    a plan made before they existed keeps its content / config hash (these two once changed every plan's hash)."""
    from scalelab.planner.memory import MemoryConventions

    assert "document_tokens" not in _train(None).to_dict() and _train(512).to_dict()["document_tokens"] == 512
    assert _train(None).content_hash() != _train(512).content_hash()
    assert "grad_bytes" not in MemoryConventions().to_dict()
    assert MemoryConventions(grad_bytes=2.0).to_dict()["grad_bytes"] == 2.0
    # the hash of a plain plan as of the sessions before these fields existed (a6c4e07)
    p = plan(get_model("llama-3.1-70b"), get_cluster("h100-sxm", 512),
             TrainSpec(seq_len=8192, global_batch=2048, total_tokens=15e12),
             Layout(tp=8, pp=4, zero=1, recompute="selective"))
    assert p.config_hash == "712ab6da54bd4532"
