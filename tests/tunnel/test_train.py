"""The training loop: golden tiny-run curve (issue 4, acceptance 1), schedules pinned to their papers,
WSD decay branches, exact resume, divergence, and bad configs."""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import pytest

from scalelab.arch import MLASpec, ModelSpec, MoESpec
from scalelab.errors import ConfigError, CorpusError
from scalelab.tunnel.train import RunConfig, TrainResult, auto_num_threads, lr_at, train


def _golden_module(assets):
    spec = importlib.util.spec_from_file_location("make_golden_curve", assets / "make_golden_curve.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_golden_curve"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def golden_run(assets, tmp_path_factory):
    mod = _golden_module(assets)
    cfg = mod.golden_config(assets / "golden_corpus.txt")
    with pytest.MonkeyPatch.context() as mp:  # module scope runs before the per-test SCALELAB_HOME
        mp.setenv("SCALELAB_HOME", str(tmp_path_factory.mktemp("golden_home")))
        result = train(cfg, num_threads=1)
    return cfg, result, json.loads((assets / "golden_tiny_curve.json").read_text())


def tiny(**kw) -> RunConfig:
    """A 2-layer byte-level model on the golden corpus: ~0.3 s per 20 steps on one core."""
    model = kw.pop("model", ModelSpec(n_layers=2, d_model=32, n_heads=2, d_ff=64, vocab_size=256, seq_len=32))
    base = dict(model=model, seq_len=32, batch_size=4, n_tokens=24 * 128, lr=1e-2, warmup_tokens=2 * 128,
                eval_every_steps=6, eval_tokens=1024, device="cpu", dtype="fp32")
    base.update(kw)
    return RunConfig(**base)


@pytest.fixture
def corpus(assets):
    return str(assets / "golden_corpus.txt")


def test_golden_curve_matches_and_loss_decreases(golden_run):
    """Acceptance 1: same seed, CPU, one thread, fp32. The tolerance (0.02 nats) covers float
    reassociation across CPU instruction sets; an actual change to the model, data order, init or
    optimizer moves these losses by far more."""
    _cfg, result, golden = golden_run
    assert result.status == golden["status"] == "completed"
    assert [p["step"] for p in result.curve] == [p["step"] for p in golden["curve"]]
    for got, want in zip(result.curve, golden["curve"], strict=True):
        assert got["train_loss"] == pytest.approx(want["train_loss"], abs=0.02), got["step"]
        assert got["lr"] == pytest.approx(want["lr"], rel=1e-9)
        if want["val_loss"] is not None:
            assert got["val_loss"] == pytest.approx(want["val_loss"], abs=0.02), got["step"]
    vals = [p["val_loss"] for p in result.curve if p["val_loss"] is not None]
    assert vals == sorted(vals, reverse=True)  # held-out loss decreases at every evaluation
    assert result.curve[0]["train_loss"] > math.log(256) - 0.1  # starts at the uniform guess...
    assert result.final_val_loss < result.curve[0]["train_loss"] - 2.0  # ...and learns the grammar


def test_result_fields_and_counts(golden_run):
    from scalelab.planner.flops import flops_per_token

    cfg, r, _ = golden_run
    assert isinstance(r, TrainResult)
    assert r.steps == 40 and r.tokens_seen == 40 * 128 == cfg.n_tokens
    assert r.n_params == cfg.model.n_params().total
    assert r.flops_per_token == flops_per_token(cfg.model, cfg.seq_len).model
    assert r.config_hash == cfg.content_hash()
    d = r.to_dict()
    assert d["flops"] == r.flops_per_token * r.tokens_seen
    json.dumps(d)  # plain JSON for the store
    assert "completed" in r.report()


def test_schedule_formulas():
    c = tiny(n_tokens=1000 * 128, warmup_tokens=100 * 128, schedule="cosine", min_lr_ratio=0.1, lr=1.0)
    assert lr_at(c, 0) == pytest.approx(0.01)  # first warmup step
    assert lr_at(c, 100 * 128) == pytest.approx(1.0)
    assert lr_at(c, 550 * 128) == pytest.approx(0.55)  # cosine midpoint: (1 + 0.1) / 2
    assert lr_at(c, 1000 * 128) == pytest.approx(0.1)
    w = c.model_copy(update={"schedule": "wsd", "decay_fraction": 0.1})
    assert lr_at(w, 899 * 128) == 1.0  # stable until the last 10%
    # MiniCPM-style exponential decay: halfway through the decay, sqrt(min_lr_ratio)
    assert lr_at(w, 950 * 128) == pytest.approx(math.sqrt(0.1))
    assert lr_at(w, 1000 * 128) == pytest.approx(0.1)
    assert lr_at(c.model_copy(update={"schedule": "constant"}), 999 * 128) == 1.0


def test_power_scheduler_pinned_to_reference_vector():
    """Shen et al. 2024 (arXiv:2408.13359) as transcribed in shared/reference/laws.md §9:
    eta = beta * a * T^b with a = 4.6, b = -0.51, beta = 1024 sequences, T = 1e12 tokens -> 3.57e-3."""
    model = ModelSpec(n_layers=1, d_model=8, n_heads=2, d_ff=8, vocab_size=256, seq_len=8)
    c = RunConfig(model=model, seq_len=8, batch_size=1024, n_tokens=2 * 10**12, lr=0.02, schedule="power",
                  decay_fraction=0.1)
    assert lr_at(c, 1e12) == pytest.approx(3.57e-3, rel=2e-3)
    assert lr_at(c, 1e3) == 0.02  # capped at eta_max early on
    assert lr_at(c, 2e12) == pytest.approx(0.1 * lr_at(c, 1.8e12), rel=1e-9)  # decays to min_lr_ratio
    # Warmup climbs to the power-law value at its end, not to eta_max (no jump after warmup).
    cw = c.model_copy(update={"warmup_tokens": 10**12})
    assert lr_at(cw, 0.5e12 - cw.tokens_per_step) == pytest.approx(0.5 * lr_at(cw, 1e12), rel=1e-9)


def test_auto_threads_grow_with_work_per_step(monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert auto_num_threads(tiny()) == 1  # ~1e8 FLOPs per step: one thread
    big = ModelSpec(n_layers=12, d_model=768, n_heads=12, d_ff=3072, vocab_size=256, seq_len=1024)
    assert auto_num_threads(tiny(model=big, seq_len=1024, batch_size=8, n_tokens=8 * 1024)) == 8


def test_runs_are_deterministic(corpus):
    a = train(tiny(corpus=corpus), num_threads=1)
    b = train(tiny(corpus=corpus), num_threads=1)
    assert a.curve == b.curve


def test_wsd_branches_are_distinct_and_equal_from_scratch_runs(corpus):
    """MiniCPM §4.1: one stable run with decays branched off gives several (N, D) points. Each branch
    is exactly the from-scratch WSD run of its length (same data and learning rates), so it can be
    stored as its own point linked to the parent."""
    cfg = tiny(corpus=corpus, schedule="wsd", decay_fraction=0.25, n_tokens=32 * 128,
               decay_branches=(6 * 128, 12 * 128))
    r = train(cfg, num_threads=1)
    assert r.status == "completed"
    assert [b.at_tokens for b in r.branches] == [6 * 128, 12 * 128]
    assert [b.decay_tokens for b in r.branches] == [2 * 128, 4 * 128]
    assert len({b.config_hash for b in r.branches} | {r.config_hash}) == 3
    assert r.branches[0].final_val_loss != r.branches[1].final_val_loss
    assert r.branches[1].final_val_loss < r.branches[0].final_val_loss  # more tokens, lower loss
    # The main run is unaffected by taking branches.
    plain = train(cfg.model_copy(update={"decay_branches": ()}), num_threads=1)
    assert [p["train_loss"] for p in plain.curve] == [p["train_loss"] for p in r.curve if p["step"] in
                                                       {q["step"] for q in plain.curve}]
    scratch = train(cfg.branch_config(12 * 128), num_threads=1)
    assert scratch.config_hash == r.branches[1].config_hash
    assert scratch.final_val_loss == pytest.approx(r.branches[1].final_val_loss, abs=1e-6)
    assert scratch.curve[-len(r.branches[1].curve):] == r.branches[1].curve


def test_resume_from_checkpoint_continues_exactly(corpus, tmp_path):
    cfg = tiny(corpus=corpus)
    full = train(cfg, num_threads=1)
    ckpt = tmp_path / "run.pt"

    class Interrupt(Exception):
        pass

    def stop_at_15(p):
        if p["step"] == 15:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg, checkpoint_path=ckpt, checkpoint_every_steps=4, progress=stop_at_15, num_threads=1)
    assert ckpt.exists()
    resumed = train(cfg, checkpoint_path=ckpt, checkpoint_every_steps=4, num_threads=1)
    assert resumed.resumed_from_step == 12
    assert resumed.curve == full.curve
    assert resumed.final_val_loss == full.final_val_loss


def test_checkpoint_of_another_config_is_ignored(corpus, tmp_path):
    ckpt = tmp_path / "run.pt"
    train(tiny(corpus=corpus, n_tokens=8 * 128), checkpoint_path=ckpt, checkpoint_every_steps=4, num_threads=1)
    with pytest.warns(UserWarning, match="another config"):
        r = train(tiny(corpus=corpus, n_tokens=8 * 128, seed=1), checkpoint_path=ckpt, num_threads=1)
    assert r.resumed_from_step == 0


def test_huge_learning_rate_is_reported_as_diverged(corpus):
    r = train(tiny(corpus=corpus, lr=100.0, warmup_tokens=0), num_threads=1)
    assert r.status == "diverged"
    assert r.final_val_loss is None and r.steps < 24
    assert "not finite or above" in r.error


def test_moe_run_trains(corpus):
    model = ModelSpec(n_layers=2, d_model=32, n_heads=2, d_ff=64, vocab_size=256, seq_len=32,
                      moe=MoESpec(n_experts=4, top_k=2, d_expert=32, n_zero_experts=1, n_shared_experts=1))
    r = train(tiny(corpus=corpus, model=model), num_threads=1)
    assert r.status == "completed"
    assert r.n_params == model.n_params().total
    assert r.final_val_loss < r.curve[0]["train_loss"] - 1.0


def test_domain_weights_run(tmp_path):
    (tmp_path / "a.txt").write_text("abcabcabc " * 2000)
    (tmp_path / "b.txt").write_text("zyx zyx " * 2000)
    cfg = tiny(corpus=f"a={tmp_path / 'a.txt'};b={tmp_path / 'b.txt'}", domain_weights={"a": 1.0, "b": 0.0},
               n_tokens=8 * 128)
    r = train(cfg, num_threads=1)
    assert r.status == "completed"
    # Trained on domain a only: its held-out loss is far below the unseen domain b's.
    assert set(r.final_val_loss_by_domain) == {"a", "b"}
    assert r.final_val_loss_by_domain["a"] < r.final_val_loss_by_domain["b"] - 1.0
    with pytest.raises(ConfigError, match="unknown domains"):
        train(cfg.model_copy(update={"domain_weights": {"c": 1.0}}), num_threads=1)


def test_bf16_autocast_on_cpu_trains(corpus):
    r = train(tiny(corpus=corpus, dtype="bf16", n_tokens=12 * 128), num_threads=1)
    assert (r.status, r.dtype) == ("completed", "bf16")
    assert r.final_val_loss < math.log(256) - 1.0


@pytest.mark.slow
def test_torch_compile_matches_eager(corpus):
    eager = train(tiny(corpus=corpus, n_tokens=8 * 128), num_threads=1)
    compiled = train(tiny(corpus=corpus, n_tokens=8 * 128, compile=True), num_threads=1)
    assert compiled.final_val_loss == pytest.approx(eager.final_val_loss, abs=1e-3)


# ---- bad input ---------------------------------------------------------------------------------------
def test_vocab_smaller_than_tokenizer(corpus):
    small = ModelSpec(n_layers=1, d_model=32, n_heads=2, d_ff=32, vocab_size=100, seq_len=32)
    with pytest.raises(ConfigError, match="vocabulary is smaller"):
        train(tiny(corpus=corpus, model=small))


def test_mla_model_is_rejected(corpus):
    mla = ModelSpec(n_layers=1, d_model=32, n_heads=2, d_ff=32, vocab_size=256, seq_len=32,
                    mla=MLASpec(kv_lora_rank=8, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8))
    with pytest.raises(ConfigError, match="latent attention"):
        train(tiny(corpus=corpus, model=mla))


def test_bad_corpus_stops_before_training(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        train(tiny(corpus=str(tmp_path / "missing.txt")))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CorpusError, match="holds no text"):
        train(tiny(corpus=str(tmp_path / "empty.txt")))


def test_corpus_without_room_for_a_validation_sequence_fails_before_training(tmp_path):
    (tmp_path / "small.txt").write_text("short text, " * 50)  # 600 bytes: 5% held out < one sequence
    calls = []
    with pytest.raises(CorpusError, match="validation split is too short"):
        train(tiny(corpus=str(tmp_path / "small.txt")), progress=calls.append)
    assert calls == []


def test_heads_not_dividing_d_model_fails_in_a_run_config():
    with pytest.raises(ValueError, match="does not divide d_model"):
        RunConfig(model={"n_layers": 2, "d_model": 30, "n_heads": 4, "d_ff": 64, "vocab_size": 256},
                  seq_len=32, batch_size=2, n_tokens=1024, lr=1e-3)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"seq_len": 64}, "exceeds the model's context"),
        ({"n_tokens": 100}, "less than one step"),
        ({"decay_branches": (1024,)}, "need a schedule with a stable phase"),
        ({"schedule": "wsd", "decay_branches": (3000,)}, "must lie in the stable phase"),
        ({"lr": 0.0}, "greater than 0"),
        ({"schedule": "linear"}, "Input should be"),
    ],
)
def test_invalid_run_configs(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kw)
