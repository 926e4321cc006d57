"""torchtitan's compiled loss (``torchtitan-compile-2025``) against what torch's compiler really keeps.

Since April 2025 torchtitan compiles ``cross_entropy(pred.float(), labels)`` with ``--training.compile``
(commit bbb1b616e). The bytes of the vocabulary width that the loss holds are what autograd packs for
backward (``torch.autograd.graph.saved_tensors_hooks``) plus the gradient it hands back; the profile's
``logits_bytes * logits_copies + logits_output_bytes`` must equal them per logit. The eager loss, and
DTensor's loss parallel (TP) compiled or not, save an fp32 log-softmax output, which the profiles count with
the buffers of its backward.
"""

from __future__ import annotations

import shutil

import pytest

from scalelab.planner.frameworks import get_framework

torch = pytest.importorskip("torch")

N, V = 64, 512  # rows and vocabulary of the toy logits: big enough to tell per-row statistics apart
needs_compiler = pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")),
                                    reason="torch.compile's CPU backend needs a C++ compiler, none on PATH")


def _cross_entropy(pred, labels):
    """torchtitan's ``cross_entropy_loss`` (torchtitan/components/loss.py at e7c0cae)."""
    return torch.nn.functional.cross_entropy(pred.flatten(0, 1).float(), labels.flatten(0, 1))


def _vocab_wide_bytes(loss_fn, mesh=None) -> tuple[float, float, object]:
    """(saved bytes of tensors with N x V elements, bytes of the gradient handed back, its dtype) for one
    forward and backward of ``loss_fn`` on bf16 logits; storages saved twice count once. With ``mesh``, the
    logits are a DTensor sharded over the vocabulary and the loss runs under ``loss_parallel``."""
    import contextlib

    saved: dict[int, float] = {}

    def local(t):
        return t.to_local() if hasattr(t, "to_local") else t

    def pack(t):
        lt = local(t)
        if lt.numel() >= N * V:
            saved[lt.untyped_storage().data_ptr()] = lt.numel() * lt.element_size()
        return t

    pred = torch.randn(2, N // 2, V, dtype=torch.bfloat16)
    labels = torch.randint(0, V, (2, N // 2))
    ctx = contextlib.nullcontext()
    if mesh is not None:
        from torch.distributed.tensor import Replicate, Shard, distribute_tensor
        from torch.distributed.tensor.parallel import loss_parallel

        pred, labels = distribute_tensor(pred, mesh, [Shard(-1)]), distribute_tensor(labels, mesh, [Replicate()])
        ctx = loss_parallel()
    pred.requires_grad_()
    with ctx:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = loss_fn(pred, labels)
        loss.backward()
    g = local(pred.grad)
    return sum(saved.values()), g.numel() * g.element_size(), g.dtype


@pytest.mark.slow
@needs_compiler
def test_compiled_loss_holds_the_bytes_the_profile_counts():
    saved, grad, dtype = _vocab_wide_bytes(torch.compile(_cross_entropy))
    conv = get_framework("torchtitan-compile-2025").memory
    assert dtype == torch.bfloat16
    assert saved == pytest.approx(2 * N * V)  # the bf16 logits; the row statistics are not vocabulary-wide
    assert (saved + grad) / (N * V) == pytest.approx(conv.logits_bytes * conv.logits_copies + conv.logits_output_bytes)
    eager_saved, _, _ = _vocab_wide_bytes(_cross_entropy)
    assert eager_saved >= 4 * N * V  # eager keeps an fp32 log-softmax output
    eager = get_framework("torchtitan-compile").memory
    assert eager.logits_bytes * eager.logits_copies > conv.logits_bytes * conv.logits_copies


@pytest.mark.slow
@needs_compiler
def test_compiled_loss_parallel_still_saves_fp32_logits():
    """With TP torchtitan's loss is DTensor's loss parallel; compiled, it still saves the fp32 log-softmax
    output (one rank of a gloo group on the CPU runs the same graph), so the profile keeps its fp32 buffers."""
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available():
        pytest.skip("torch.distributed is not built in this torch")
    from torch.distributed.device_mesh import init_device_mesh

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        mesh = init_device_mesh("cpu", (1,))
        saved, _, _ = _vocab_wide_bytes(torch.compile(_cross_entropy), mesh)
    finally:
        dist.destroy_process_group()
    conv = get_framework("torchtitan-compile-2025").memory
    assert saved >= 4 * N * V
    assert conv.loss_parallel_logits_copies == get_framework("torchtitan-compile").memory.loss_parallel_logits_copies
    assert conv.logits_bytes == 4.0


def test_compiled_loss_profile_differs_only_in_the_loss():
    """The 2025 profile changes the loss's buffers without TP and nothing else of torchtitan-compile."""
    old, new = get_framework("torchtitan-compile"), get_framework("torchtitan-compile-2025")
    changed = {k for k, v in old.memory.to_dict().items() if new.memory.to_dict()[k] != v}
    assert changed == {"logits_copies"}
    assert (new.fused_elementwise, new.pp_zero3_gather, new.policy_aliases, new.float8, new.cp_ring) == (
        old.fused_elementwise, old.pp_zero3_gather, old.policy_aliases, old.float8, old.cp_ring)
