"""Plan -> prove: each run measures its step time and memory, and the planner's prediction for the same
model, batch and device is stored beside them (scalelab.tunnel.perf, scalelab calibrate)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from scalelab.arch.spec import ModelSpec  # noqa: E402
from scalelab.tunnel.perf import SavedTensorMeter, median_step_s, planned  # noqa: E402
from scalelab.tunnel.train import RunConfig, train  # noqa: E402


def _tiny(corpus, **kw) -> RunConfig:
    model = ModelSpec(n_layers=2, d_model=32, n_heads=2, d_ff=128, vocab_size=256, seq_len=32)
    base = dict(model=model, seq_len=32, batch_size=4, n_tokens=8 * 128, lr=1e-2, eval_tokens=512,
                corpus=str(corpus), device="cpu", dtype="fp32")
    return RunConfig(**{**base, **kw})


def test_the_meter_counts_saved_activations_once_and_not_parameters():
    w = torch.nn.Parameter(torch.randn(16, 8))
    x = torch.randn(32, 16, requires_grad=True)
    meter = SavedTensorMeter(exclude=[w])
    with meter():
        h = x @ w          # saves x (and w, a parameter: not counted)
        y = (h * h).sum()  # saves h (twice, one storage: counted once)
    y.backward()
    assert meter.bytes == 32 * 16 * 4 + 32 * 8 * 4


def test_the_meter_leaves_the_numbers_alone():
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 8)
    x = torch.randn(4, 8)
    plain = torch.autograd.grad(lin(x).pow(2).sum(), lin.weight)[0]
    with SavedTensorMeter(exclude=lin.parameters())():
        metered = torch.autograd.grad(lin(x).pow(2).sum(), lin.weight)[0]
    assert torch.equal(plain, metered)


def test_median_step_time_drops_the_warmup_steps():
    assert median_step_s([9.0, 9.0, 1.0, 2.0, 3.0]) == 2.0
    assert median_step_s([5.0, 1.0]) == 3.0  # too few steps to drop any
    assert median_step_s([]) is None


def test_a_run_without_a_profile_measures_and_plans_nothing(corpus):
    r = train(_tiny(corpus), num_threads=1)
    assert r.step_s is not None and 0 < r.step_s < r.wall_s
    assert r.saved_tensor_bytes and r.peak_rss_bytes and r.peak_rss_bytes > r.saved_tensor_bytes
    states = 4 * sum(p.numel() for p in _gpt(r).parameters()) * 4  # weights, grads, two AdamW moments (fp32)
    assert r.peak_mem_bytes == states + r.saved_tensor_bytes
    assert r.pred_step_s is None and r.pred_device is None


def _gpt(r):
    from scalelab.tunnel.model import GPT

    return GPT(ModelSpec.model_validate(r.config["model"]))


def test_after_calibrate_a_run_stores_the_planners_prediction(corpus, tmp_path, monkeypatch):
    from scalelab.cli.app import main
    from scalelab.tunnel.store import RunStore

    assert main(["calibrate", "--quick"]) == 0
    cfg = _tiny(corpus)
    with RunStore(tmp_path / "runs.sqlite") as store:
        rec = store.add(cfg)
        c = store.claim([rec.hash])
        store.finish(c.hash, train(cfg, num_threads=1), claim_id=c.claim_id)
        got = store.get(rec.hash)
        table = store.runs_table()
    assert got.pred_device and got.pred_device.startswith("cpu-") and got.device == "cpu"
    assert got.pred_step_s and got.pred_step_s > 0 and got.step_s and got.step_s > 0
    # memory has no load noise: the planner's activations and total agree with the measured bytes
    assert got.pred_activation_bytes == pytest.approx(got.saved_tensor_bytes, rel=0.25)
    assert got.pred_mem_bytes == pytest.approx(got.peak_mem_bytes, rel=0.25)
    assert table["pred_step_s"] == [got.pred_step_s] and table["step_s"] == [got.step_s]
    assert "step time" in got.report() and "planned" in got.report()


def test_calibrate_writes_a_profile_that_plan_accepts(tmp_path, capsys):
    from scalelab.cli.app import main
    from scalelab.hardware.catalog import get_gpu

    out = tmp_path / "my-device.toml"
    assert main(["calibrate", "--quick", "--out", str(out), "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    spec = get_gpu(str(out))
    assert spec.peak("fp32") == pytest.approx(d["matmul_median_flops_per_s"]["fp32"], rel=1e-5)
    assert spec.memory_bandwidth_bytes_per_s > d["copy_bytes_per_s"]  # stored / HBM_EFFICIENCY
    assert spec.eager_elementwise_bytes_per_s == pytest.approx(d["eager_bytes_per_s"], rel=1e-5)
    assert spec.optimizer_tensor_overhead_s == pytest.approx(d["optimizer_tensor_overhead_s"], rel=1e-5)
    assert main(["plan", "-m", "llama-3.1-8b", "--gpu", str(out), "-n", "1", "--seq-len", "64",
                 "--global-batch", "1", "--precision", "fp32", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["gpu"] == spec.name and plan["step_time_s"] > 0


def test_planned_step_time_follows_the_profile(tmp_path):
    """Twice the matmul rate and bandwidth: half the planned step time (the planner reads the profile)."""
    from scalelab.hardware.catalog import get_gpu

    base = {"name": "cpu-test", "fp32_tflops": 0.02, "tf32_tflops": 0.02, "memory_gb": 16,
            "hbm_bandwidth_tb_per_s": 0.01, "intra_node_gb_per_s": 10, "nic_gbit_per_s": 10,
            "gpus_per_node": 1, "matmul_efficiency": 1.0}
    paths = []
    for k, scale in (("slow", 1.0), ("fast", 2.0)):
        d = dict(base, fp32_tflops=0.02 * scale, tf32_tflops=0.02 * scale, hbm_bandwidth_tb_per_s=0.01 * scale)
        p = tmp_path / f"{k}.toml"
        p.write_text("\n".join(f"{a} = {json.dumps(v)}" for a, v in d.items()))
        paths.append(p)
    cfg = RunConfig(model=ModelSpec(n_layers=2, d_model=64, n_heads=4, d_ff=256, vocab_size=256), seq_len=64,
                    batch_size=8, n_tokens=64 * 8 * 4, lr=1e-3)
    slow, fast = (planned(cfg, get_gpu(str(p)), "fp32") for p in paths)
    assert slow["pred_step_s"] == pytest.approx(2 * fast["pred_step_s"], rel=1e-6)
    assert slow["pred_mem_bytes"] == fast["pred_mem_bytes"]


def _profile(tmp_path, name, **extra):
    from scalelab.hardware.catalog import get_gpu

    d = {"name": "cpu-test", "fp32_tflops": 0.02, "tf32_tflops": 0.02, "memory_gb": 16,
         "hbm_bandwidth_tb_per_s": 0.01, "intra_node_gb_per_s": 10, "nic_gbit_per_s": 10,
         "gpus_per_node": 1, "matmul_efficiency": 1.0, **extra}
    p = tmp_path / f"{name}.toml"
    p.write_text("\n".join(f"{a} = {json.dumps(v)}" for a, v in d.items()))
    return get_gpu(str(p))


def _step(gpu, model, *, batch=8, fused=False):
    from scalelab.hardware.spec import ClusterSpec
    from scalelab.planner.frameworks import FrameworkProfile
    from scalelab.planner.layout import Layout, TrainSpec
    from scalelab.planner.plan import plan
    from scalelab.tunnel.perf import TUNNEL_FRAMEWORK

    fw = TUNNEL_FRAMEWORK if not fused else FrameworkProfile("fused", fused_elementwise=True)
    return plan(model, ClusterSpec(gpu=gpu, n_gpus=1), TrainSpec(seq_len=64, global_batch=batch, precision="fp32"),
                Layout(micro_batch=batch, flash_attention=True), framework=fw,
                memory_limit_bytes=float("inf")).time


def test_a_calibrated_eager_rate_times_the_layers_loss_and_optimizer(tmp_path):
    """With the eager fields, eager elementwise work (layers and loss) runs at the calibrated rate plus a
    fixed cost per layer, and the optimizer pays per parameter tensor; the numbers follow the formulas."""
    from scalelab.planner.layout import Layout
    from scalelab.planner.step_time import (
        eager_elementwise_bytes_per_token_layer,
        eager_loss_bytes_per_token,
        parameter_tensor_count,
    )

    model = ModelSpec(n_layers=3, d_model=64, n_heads=4, d_ff=256, vocab_size=256)
    base = _step(_profile(tmp_path, "base"), model)
    cal = _step(_profile(tmp_path, "cal", eager_elementwise_gb_per_s=2.0, eager_layer_overhead_us=500.0,
                         optimizer_tensor_overhead_us=40.0), model)
    tokens = 8 * 64
    per_token = eager_elementwise_bytes_per_token_layer(model, Layout(flash_attention=True), 64, "fp32") * 3
    want = 3 * (per_token * tokens + eager_loss_bytes_per_token(model, Layout()) * tokens) / 2e9 + 3 * 500e-6
    assert cal.elementwise_s == pytest.approx(want, rel=1e-9)
    assert cal.matmul_s == base.matmul_s
    assert cal.optimizer_s - base.optimizer_s == pytest.approx(40e-6 * parameter_tensor_count(model), rel=1e-9)
    assert parameter_tensor_count(model) == 21


def test_eager_fields_leave_fused_and_catalog_plans_alone(tmp_path):
    """Fused elementwise kernels (the GPU recipes) ignore the CPU's eager fields."""
    model = ModelSpec(n_layers=2, d_model=64, n_heads=4, d_ff=256, vocab_size=256)
    plain = _step(_profile(tmp_path, "plain"), model, fused=True)
    cal = _step(_profile(tmp_path, "cal", eager_elementwise_gb_per_s=0.5, eager_layer_overhead_us=900.0,
                         optimizer_tensor_overhead_us=90.0), model, fused=True)
    assert cal.step_time_s == plain.step_time_s


@pytest.mark.parametrize("kw", [{}, {"norm_kind": "layernorm", "attn_bias": "all", "mlp_bias": True,
                                      "ffn_kind": "gelu", "position_kind": "learned", "tied_embeddings": True},
                                {"qk_norm": True, "embedding_norm": True, "attn_bias": "qkv"}])
def test_parameter_tensor_count_matches_the_tunnel_model(kw):
    from scalelab.planner.step_time import parameter_tensor_count
    from scalelab.tunnel.model import GPT

    spec = ModelSpec(n_layers=3, d_model=32, n_heads=4, d_ff=64, vocab_size=64, **kw)
    assert parameter_tensor_count(spec) == len(list(GPT(spec).parameters()))


def test_the_eager_fit_recovers_a_line_and_falls_back_on_noise():
    from scalelab.arch.spec import ModelSpec as M
    from scalelab.planner.layout import Layout
    from scalelab.planner.step_time import eager_elementwise_bytes_per_token_layer
    from scalelab.tunnel.calibrate import _eager_fit

    def counted(w):
        return 3 * 1024 * eager_elementwise_bytes_per_token_layer(M(n_layers=1, d_model=w, n_heads=4, d_ff=4 * w,
                                                                    vocab_size=256), Layout(), 64, "fp32")

    rate, fixed = _eager_fit(1024, {w: 3e-4 + counted(w) / 5e9 for w in (64, 128, 256)}, 3e-4)
    assert rate == pytest.approx(5e9, rel=1e-9) and fixed == pytest.approx(3e-4, rel=1e-9)
    # a fixed cost measured during a load spike is capped at half the smallest time
    rate, fixed = _eager_fit(1024, {64: 2e-3, 128: 4e-3}, 5e-3)
    assert fixed == 1e-3 and rate == pytest.approx((counted(64) + counted(128)) / 4e-3, rel=1e-9)


def test_calibrated_attention_counts_the_causal_kernels_share(monkeypatch):
    """The attention rate counts the FLOPs the planner times (its flash_attention_work share of the dense
    count), so that the planned attention time is the measured one."""
    from scalelab.planner.policy import get_save_policy
    from scalelab.planner.step_time import flash_attention_work
    from scalelab.tunnel import calibrate as cal

    monkeypatch.setattr(cal, "_timer", lambda *a, **k: 1e-3)
    got = cal.calibrate(quick=True)
    (b, h, s, dh), = cal.QUICK_ATTENTION_SIZES
    work = flash_attention_work(get_save_policy("none"))
    assert got.attention_flops_per_s[f"{b}x{h}x{s}x{dh}"] == pytest.approx(12 * b * s * s * h * dh * work / 1e-3)
    assert got.optimizer_tensor_overhead_s == pytest.approx(1e-3 / cal.OPTIMIZER_TENSORS[0])
    assert got.eager_bytes_per_s and got.eager_layer_overhead_s == pytest.approx(0.5e-3)  # capped at half
