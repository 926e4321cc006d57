"""Activation memory measured on a real PyTorch layer against the planner's formula (issue 2, case 6).

The bytes a layer keeps for backward are what autograd packs through
``torch.autograd.graph.saved_tensors_hooks``; tensors that share a storage (views, reshapes) are counted
once, and parameters and module buffers (weights, the causal mask) are not activations. The layer is
eager PyTorch in fp32 without dropout, so the planner is given the conventions that describe exactly
that layer: 4-byte activations, no dropout, LayerNorm statistics, an unfused SwiGLU that also keeps
``silu(gate)`` (4 tensors of width f) and an attention kernel whose output is the out-projection input.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from scalelab.arch.spec import ModelSpec, MoESpec  # noqa: E402
from scalelab.planner import Layout, MemoryConventions, activation_bytes_per_layer  # noqa: E402

EAGER_FP32 = MemoryConventions(activation_bytes=4.0, dropout=False, norm_stats=True, swiglu_saved_widths=4.0,
                               attention_output_copy=False)
TOLERANCE = 0.05  # issue 2, acceptance case 6


class Block(nn.Module):
    """A pre-norm GPT block: LayerNorm, attention (GQA-capable), LayerNorm, GELU or SwiGLU MLP or MoE."""

    def __init__(self, h, a, g, f, ffn="gelu", flash=True, seq_len=64, experts=0, top_k=1):
        super().__init__()
        self.a, self.g, self.dh, self.flash, self.ffn = a, g, h // a, flash, ffn
        self.ln1, self.ln2 = nn.LayerNorm(h), nn.LayerNorm(h)
        self.q = nn.Linear(h, a * self.dh, bias=False)
        self.k = nn.Linear(h, g * self.dh, bias=False)
        self.v = nn.Linear(h, g * self.dh, bias=False)
        self.o = nn.Linear(a * self.dh, h, bias=False)
        self.register_buffer("causal", torch.ones(seq_len, seq_len, dtype=torch.bool).tril())
        self.top_k = top_k
        if experts:
            self.router = nn.Linear(h, experts, bias=False)
            self.experts = nn.ModuleList(self._mlp(h, f, ffn) for _ in range(experts))
        else:
            self.mlp = self._mlp(h, f, ffn)

    @staticmethod
    def _mlp(h, f, ffn):
        n_in = 2 if ffn == "swiglu" else 1
        return nn.ModuleDict({"up": nn.Linear(h, n_in * f, bias=False), "down": nn.Linear(f, h, bias=False)})

    def _run_mlp(self, mlp, y):
        u = mlp["up"](y)
        if self.ffn == "swiglu":
            gate, up = u.chunk(2, dim=-1)
            return mlp["down"](F.silu(gate) * up)
        return mlp["down"](F.gelu(u))

    def forward(self, x):
        B, S, H = x.shape
        y = self.ln1(x)
        q = self.q(y).view(B, S, self.a, self.dh).transpose(1, 2)
        k = self.k(y).view(B, S, self.g, self.dh).transpose(1, 2)
        v = self.v(y).view(B, S, self.g, self.dh).transpose(1, 2)
        if self.flash:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.g < self.a)
        else:
            att = (q @ k.transpose(-2, -1)) * self.dh**-0.5
            att = att.masked_fill(~self.causal[:S, :S], float("-inf")).softmax(-1)
            o = att @ v
        x = x + self.o(o.transpose(1, 2).reshape(B, S, -1))
        y = self.ln2(x)
        if not hasattr(self, "experts"):
            return x + self._run_mlp(self.mlp, y)
        flat = y.reshape(-1, H)
        probs = self.router(flat).float().softmax(-1)
        w, idx = probs.topk(self.top_k, dim=-1)
        out = torch.zeros_like(flat)
        for e, mlp in enumerate(self.experts):
            tok, slot = (idx == e).nonzero(as_tuple=True)
            out = out.index_put((tok,), self._run_mlp(mlp, flat[tok]) * w[tok, slot, None], accumulate=True)
        return x + out.view(B, S, H)


def saved_bytes(module, x, recompute=False):
    """Bytes autograd saves for backward while running ``module(x)``, storages counted once."""
    skip = {t.untyped_storage().data_ptr() for t in list(module.parameters()) + list(module.buffers())}
    seen: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in skip and st.nbytes():
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        if recompute:
            out = torch.utils.checkpoint.checkpoint(module, x, use_reentrant=False)
        else:
            out = module(x)
    out.sum().backward()  # the graph really is trainable with what was saved
    return sum(seen.values())


CASES = [
    # (h, a, g, f, ffn, flash)
    pytest.param(64, 4, 4, 256, "gelu", True, id="mha-gelu-flash"),
    pytest.param(64, 4, 4, 256, "gelu", False, id="mha-gelu-math"),
    pytest.param(64, 8, 2, 176, "swiglu", True, id="gqa-swiglu-flash"),
    pytest.param(96, 6, 6, 256, "swiglu", False, id="mha-swiglu-math"),
]


@pytest.mark.parametrize("h, a, g, f, ffn, flash", CASES)
@pytest.mark.parametrize("recompute", ["none", "full"])
def test_saved_activations_match_formula(h, a, g, f, ffn, flash, recompute):
    torch.manual_seed(0)
    S, B = 64, 2
    if not flash and g < a:
        pytest.skip("the math path here expands K/V per query head; GQA is measured through SDPA")
    block = Block(h, a, g, f, ffn, flash, seq_len=S)
    x = torch.randn(B, S, h, requires_grad=True)
    measured = saved_bytes(block, x, recompute=recompute == "full")
    model = ModelSpec(n_layers=1, d_model=h, n_heads=a, n_kv_heads=g, d_ff=f, vocab_size=16, ffn_kind=ffn,
                      norm_kind="layernorm")
    layout = Layout(flash_attention=flash, recompute=recompute)
    planned = activation_bytes_per_layer(model, S, B, layout, conventions=EAGER_FP32)
    assert planned == pytest.approx(measured, rel=TOLERANCE)


def test_gqa_saves_less_than_mha():
    """The measured saving from GQA is the one the formula predicts (K and V shrink by g/a)."""
    torch.manual_seed(0)
    S, B, h = 64, 2, 64
    got = {}
    for g in (8, 2):
        block = Block(h, 8, g, 256, "gelu", True, seq_len=S)
        got[g] = saved_bytes(block, torch.randn(B, S, h, requires_grad=True))
    assert got[8] - got[2] == 2 * S * B * (8 - 2) * (h // 8) * 4


@pytest.mark.parametrize("ffn, top_k", [("gelu", 1), ("swiglu", 2)])
def test_moe_layer_activations_match_formula(ffn, top_k):
    """An eager top-k MoE layer (router in fp32, gather, experts, weighted scatter-add) against the MoE
    terms of the formula: router probabilities, dispatched tokens, expert intermediates and outputs.
    The eager layer also keeps int64 routing indices, which the formula leaves out (under 1% here).
    (``index_add`` would also keep its source, a second copy of the expert outputs that a fused
    unpermute does not keep; ``index_put(accumulate=True)`` does not.)"""
    torch.manual_seed(0)
    S, B, h, E = 64, 2, 64, 4
    block = Block(h, 4, 4, 128, ffn, True, seq_len=S, experts=E, top_k=top_k)
    measured = saved_bytes(block, torch.randn(B, S, h, requires_grad=True))
    model = ModelSpec(n_layers=1, d_model=h, n_heads=4, d_ff=128, vocab_size=16, ffn_kind=ffn,
                      norm_kind="layernorm", moe=MoESpec(n_experts=E, top_k=top_k, d_expert=128))
    planned = activation_bytes_per_layer(model, S, B, Layout(), conventions=EAGER_FP32)
    assert planned == pytest.approx(measured, rel=TOLERANCE)
