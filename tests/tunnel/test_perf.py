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
