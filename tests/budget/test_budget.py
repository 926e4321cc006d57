"""Issue 10 part 1: `scalelab budget` / `scalelab.budget(...)` against Chinchilla Table 3, Llama 3's
isoFLOP fit, DeepSeek LLM's hyperparameter law, and the closed loop on 1,024 H100 over 30 days."""

from __future__ import annotations

import csv
import json
import math
import warnings

import numpy as np
import pytest

from scalelab.budget import budget, shape_for_params
from scalelab.cli.app import main
from scalelab.datasets import load_chinchilla_table3
from scalelab.errors import ConfigError
from scalelab.laws import ChinchillaLaw
from scalelab.planner import Layout, TrainSpec, plan


def _cli(argv, capsys, monkeypatch):
    monkeypatch.delenv("SCALELAB_DEBUG", raising=False)
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------ Chinchilla Table 3 (approach 3 preset)
def test_table3_budgets_match_the_approach3_preset_closed_form_within_1pct():
    t = load_chinchilla_table3().data
    law = ChinchillaLaw.preset("hoffmann2022")
    for n_tab, d_tab in zip(t["params"], t["tokens_approach1"], strict=True):
        C = 6.0 * float(n_tab) * float(d_tab)
        run = budget(flops=C, law="hoffmann2022")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            co = law.compute_optimal(C)
        assert run.n_params == pytest.approx(float(co.N_opt[0]), rel=0.01)
        assert run.n_tokens == pytest.approx(float(co.D_opt[0]), rel=0.01)
        assert run.flops == pytest.approx(C, rel=0.01)
        # the shape built for N carries N parameters (to 1%)
        assert run.model.n_params().total == pytest.approx(run.n_params, rel=0.01)


@pytest.mark.parametrize(("n", "vocab"), [(1e8, 32000), (4e8, 128256), (7e9, 128256), (7e10, 128256),
                                          (4.05e11, 128256), (1e13, 128256)])
def test_shape_rule_hits_n_with_128_dim_heads_and_tp_friendly_heads(n, vocab):
    m = shape_for_params(n, vocab_size=vocab)
    assert m.d_head == 128 and m.d_model == 128 * m.n_heads
    assert m.n_params().total == pytest.approx(n, rel=0.01)
    if m.n_heads >= 8:
        assert m.n_heads % 8 == 0 and m.n_kv_heads == 8
    assert 0.75 * m.d_model / 128 - 1 <= m.n_layers <= 1.34 * m.d_model / 128 + 1
    assert 1.0 <= m.d_ff / m.d_model <= 4.0


# ------------------------------------------------------------------ Llama 3 (Dubey et al. 2024 §3.2.1)
def test_llama3_isoflop_fit_gives_402b_and_16_55t_at_3_8e25(anchor_file, tmp_path):
    from scalelab.laws.approaches import approach2

    path = anchor_file("scaling-law-analysis/data/isoflops/extract/llama_3/isoflops.csv",
                       "the digitised Llama 3 isoFLOP profiles (Dubey et al. 2024 Fig. 2)")
    rows = [r for r in csv.DictReader(path.open()) if r["condition"] == "raw_loss"]
    C, N, D, L = (np.array([float(r[k]) for r in rows]) for k in ("budget", "params", "tokens", "loss"))
    # Llama 3 fitted a second-degree polynomial to each whole isoFLOP curve (§3.2.1): window=None.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alloc = approach2(C, N, L, D=D, window=None, n_bootstrap=0)
    run = budget(flops=3.8e25, law=alloc)
    assert run.n_params == pytest.approx(402e9, rel=0.15)
    assert run.n_tokens == pytest.approx(16.55e12, rel=0.15)
    # the same allocation, saved and passed as a file
    f = tmp_path / "llama3-approach2.json"
    f.write_text(json.dumps(alloc.to_dict()))
    again = budget(flops=3.8e25, law=str(f))
    assert again.n_params == pytest.approx(run.n_params, rel=1e-9)
    assert again.loss is None and "no loss model" in again.loss_note


# ------------------------------------------------------------------ DeepSeek LLM (Bi et al. 2024)
def test_deepseek_hyperparameters_use_its_own_compute_convention():
    run = budget(flops=1e23, law="besiroglu2024", hyperparams="deepseek", seq_len=4096)
    m = run.model
    M = 72 * m.n_layers * m.d_model**2 + 6 * m.n_layers * m.d_model * 4096  # eq. 2, no vocabulary
    C_ds = M * run.n_tokens
    assert run.hyper["lr"] == pytest.approx(0.3118 * C_ds**-0.1250, rel=1e-9)
    assert run.hyper["batch_tokens_law"] == pytest.approx(0.2920 * C_ds**0.3271, rel=1e-9)
    assert run.batch_tokens == pytest.approx(0.2920 * C_ds**0.3271, rel=0.07)  # whole sequences, rounded
    # C_ds is not 6ND: the convention matters (M excludes the vocabulary, includes attention)
    assert abs(C_ds / run.flops - 1) > 0.01


@pytest.mark.parametrize(("layers", "d", "lr", "batch_seqs"), [(30, 4096, 4.2e-4, 2304), (95, 8192, 3.2e-4, 4608)])
def test_deepseek_law_reproduces_its_released_7b_and_67b_settings(layers, d, lr, batch_seqs):
    from scalelab.laws.hyperparams import DeepSeekBatchLaw, DeepSeekLRLaw, deepseek_model_scale

    C = deepseek_model_scale(layers, d, 4096) * 2e12  # both trained on 2T tokens at 4096 context (Table 2)
    assert float(DeepSeekLRLaw.preset("bi2024").predict(C)) == pytest.approx(lr, rel=0.05)
    assert float(DeepSeekBatchLaw.preset("bi2024").predict(C)) == pytest.approx(batch_seqs * 4096, rel=0.10)


def test_steplaw_uses_non_embedding_n():
    run = budget(flops=1e21, law="hoffmann2022", hyperparams="steplaw")
    n = run.model.n_params().non_embedding
    assert run.hyper["lr"] == pytest.approx(1.79 * n**-0.713 * run.n_tokens**0.307, rel=1e-9)
    assert run.hyper["schedule"]["kind"] == "cosine"


# ------------------------------------------------------------------ repetition (Muennighoff et al. 2023)
def test_unique_token_limit_repeats_data_at_the_discounted_optimum():
    from scalelab.budgeting import _Allocator

    free = budget(flops=1e22, law="hoffmann2022")
    tight = budget(flops=1e22, law="hoffmann2022", unique_tokens=25e9)
    assert tight.n_tokens > 25e9 and tight.loss > free.loss
    alloc = _Allocator("h", ChinchillaLaw.preset("hoffmann2022"), "chinchilla")
    for f in (0.8, 1.25):  # the chosen N beats its neighbours on the same budget under repetition
        n = tight.n_params * f
        assert alloc.loss(n, 1e22 / (6 * n), 25e9)[0] > tight.loss
    loose = budget(flops=1e22, law="hoffmann2022", unique_tokens=1e15)  # never binds
    assert loose.n_params == pytest.approx(free.n_params, rel=1e-3)


@pytest.mark.parametrize("unique_tokens", [1.0, 100.0])
def test_a_unique_token_limit_with_no_optimum_is_an_error_not_a_huge_model(unique_tokens):
    """With a few unique tokens the discounted loss keeps falling to the edge of the size search; that edge is not
    an answer (it was returned as a ~1e16-parameter model)."""
    with pytest.raises(ConfigError, match=r"no best model size.*raise --unique-tokens"):
        budget(flops=1e22, law="hoffmann2022", unique_tokens=unique_tokens)


# ------------------------------------------------------------------ closed loop in days
@pytest.fixture(scope="module")
def h100_month():
    return budget(gpu="h100-sxm", n_gpus=1024, days=30, law="hoffmann2022")


def test_1024_h100_for_30_days_fits_and_uses_the_layouts_throughput(h100_month):
    run = h100_month
    assert run.training_days <= 30.0
    assert run.flops_used_fraction >= 0.90
    # the FLOPs follow the layout's modelled throughput, not 6ND at peak: re-plan it independently
    p = plan(run.model, run.plan.cluster, TrainSpec(seq_len=run.seq_len, global_batch=run.global_batch,
                                                    total_tokens=run.n_tokens), Layout(**run.plan.layout.model_dump()))
    assert p.training_days == pytest.approx(run.training_days, rel=1e-9)
    allowed = 6 * run.n_params * p.tokens_per_s * 30 * 86400
    assert run.flops / allowed >= 0.90
    peak = 1024 * run.plan.cluster.gpu.peak_flops_per_s["bf16"] * 30 * 86400
    assert run.flops < 0.8 * peak
    d = run.to_dict()
    for key in ("n_params", "n_tokens", "flops", "lr", "batch_tokens", "layout", "training_days", "gpu_hours",
                "cost_usd", "loss", "loss_lo", "loss_hi"):
        assert key in d
    assert d["cost_usd"] == pytest.approx(d["gpu_hours"] * 2.99, rel=1e-6)


def test_recipe_round_trips_through_plan_config(h100_month, tmp_path, capsys, monkeypatch):
    f = tmp_path / "recipe.toml"
    f.write_text(h100_month.to_toml())
    code, out, err = _cli(["plan", "--config", str(f), "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    assert d["training_days"] == pytest.approx(h100_month.training_days, rel=1e-9)
    assert d["mfu"] == pytest.approx(h100_month.plan.mfu, rel=1e-9)


def test_dollars_become_gpu_hours_and_days_on_a_small_cluster():
    run = budget(gpu="h100-sxm", n_gpus=8, dollars=20000.0, price_per_gpu_hour=2.0, law="besiroglu2024")
    assert run.budget["gpu_hours"] == pytest.approx(10000.0)
    assert run.budget["days"] == pytest.approx(10000.0 / 8 / 24)
    assert run.training_days <= run.budget["days"] and run.cost_usd <= 20000.0
    assert run.flops_used_fraction >= 0.90


# ------------------------------------------------------------------ CLI
def test_cli_json_has_the_tool_keys(capsys, monkeypatch):
    code, out, err = _cli(["budget", "--flops", "1e21", "--law", "hoffmann2022", "--format", "json"],
                          capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    assert d["n_params"] * d["n_tokens"] * 6 == pytest.approx(1e21, rel=1e-9)
    assert d["layout"] is None and math.isfinite(d["loss"])


@pytest.mark.parametrize(("argv", "needle"), [
    (["budget", "--law", "hoffmann2022"], "give exactly one budget"),
    (["budget", "--flops", "1e21", "--days", "3", "--gpu", "h100-sxm", "-n", "8"], "give exactly one budget"),
    (["budget", "--days", "30"], "needs a cluster"),
    (["budget", "--days", "30", "--gpu", "h100-sxm"], "both a GPU type and a GPU count"),
    (["budget", "--flops", "-1e21"], "--flops must be"),
    (["budget", "--flops", "1e21", "--law", "chinchila"], "unknown law"),
    (["budget", "--flops", "1e21", "--hyperparams", "adam"], "unknown hyperparameter law"),
    (["budget", "--flops", "1e21", "--unique-tokens", "0"], "unique_tokens must be a positive"),
    # a limit so small that the repetition-discounted loss has no minimum: it used to end in a 1e16-parameter model
    (["budget", "--flops", "1e21", "--unique-tokens", "1"], "the unique-token limit leaves no best model size"),
    (["budget", "--flops", "1e21", "--seq-len", "0"], "seq_len must be"),
    (["budget", "--flops", "1e21", "--law", "missing-fit.json"], "not found"),
    (["budget", "--days", "30", "--gpu", "h100-sxm", "-n", "0"], "at least 1 (got 0). Fix: pass --n-gpus"),
])
def test_cli_bad_inputs_name_the_value_and_the_fix(argv, needle, capsys, monkeypatch):
    code, out, err = _cli(argv, capsys, monkeypatch)
    assert code == 1 and out == ""
    flat = " ".join(err.split())
    assert needle in flat.lower() or needle in flat, flat
    assert "Traceback" not in err



@pytest.mark.parametrize(("content", "needle"), [
    ("{not json", "is not a saved fit (invalid json: expecting property name"),
    (b"\xff\xfe\x00", "is not a saved fit (not utf-8 text"),
    ('{"law": "chinchilla", "options": {}}', "is not a saved fit (no 'law'/'params' keys)"),
    ('{"law": "kaplan", "params": {}}', "holds no allocation law budget can use"),
    (None, "expected a file, got a directory"),
])
def test_cli_bad_law_files_name_the_file_and_the_fix(content, needle, tmp_path, capsys, monkeypatch):
    # budget reads --law files with the laws' own reader (scalelab.laws.io.read_saved): every bad file is
    # named with what is wrong and what to pass instead, never a traceback
    f = tmp_path / "fit.json"
    if content is None:
        f.mkdir()
    elif isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content)
    code, out, err = _cli(["budget", "--flops", "1e21", "--law", str(f)], capsys, monkeypatch)
    flat = " ".join(err.split())
    assert code == 1 and out == "" and "Traceback" not in err, flat
    assert needle in flat.lower() and "fit.json" in flat, flat
    if content is not None:
        assert "Fix:" in flat, flat

def test_a_budget_far_beyond_the_fitted_runs_says_it_extrapolates():
    """A law fitted on N <= 2e10 asked for 1e26 FLOPs: the run's notes say how far outside it lies."""
    X, y = ChinchillaLaw._example_data(np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = ChinchillaLaw(init="coarse").fit(*X, y)
        inside = budget(flops=6.0 * 1e9 * 2e10, law=law)
        far = budget(flops=1e26, law=law)
    assert not any("outside the range" in n for n in inside.notes)
    assert any("outside the range the law was fitted on" in n for n in far.notes), far.notes


def test_search_only_options_narrow_the_search_and_are_not_passed_to_plan():
    # zero_stages / max_micro_batch mean nothing to one plan(); budget used to pass them on and fail
    run = budget(flops=1e22, gpu="h100-sxm", n_gpus=64, law="hoffmann2022", zero_stages=(1,), max_micro_batch=1)
    assert run.plan is not None and run.plan.layout.zero == 1 and run.plan.layout.micro_batch == 1


# ------------------------------------------------------------------ inference-aware sizing (Sardana et al. 2024)
def _chinchilla_13b_budget() -> float:
    """C at which Hoffmann's approach-3 law puts N_opt at 13B (eq. 4 inverted)."""
    p = ChinchillaLaw.preset("hoffmann2022").params_
    a, b = p["alpha"], p["beta"]
    G = (a * p["A"] / (b * p["B"])) ** (1 / (a + b))
    return 6.0 * (13e9 / G) ** ((a + b) / b)


def test_inference_aware_sizing_reproduces_sardana_fig1():
    # Sardana et al. 2024 Fig. 1: a Chinchilla-optimal 13B model with 2T tokens of inference demand; a 7B model
    # trained on more data reaches the same quality for 1.7e22 fewer FLOPs (17%).
    C = _chinchilla_13b_budget()
    ref = budget(flops=C, law="hoffmann2022")
    run = budget(flops=C, law="hoffmann2022", inference_tokens=2e12)
    assert ref.n_params == pytest.approx(13e9, rel=1e-3)
    i = run.inference
    assert run.n_params == pytest.approx(7e9, rel=0.05)
    assert run.n_tokens > ref.n_tokens and run.flops > C  # trains longer than the budget's Chinchilla run
    assert i["chinchilla_n_params"] == pytest.approx(ref.n_params, rel=1e-3)
    assert i["chinchilla_lifetime_flops"] - i["lifetime_flops"] == pytest.approx(1.7e22, rel=0.1)
    assert i["saving"] == pytest.approx(0.17, abs=0.015)
    assert run.loss == pytest.approx(ref.loss, rel=1e-6)  # the same quality
    assert budget(flops=C, law="hoffmann2022", inference_tokens=0).n_params == pytest.approx(ref.n_params, rel=1e-3)


def test_inference_aware_sizing_refuses_time_budgets_and_repetition():
    with pytest.raises(ConfigError, match="FLOPs budget"):
        budget(gpu="h100-sxm", n_gpus=8, days=1, law="hoffmann2022", inference_tokens=1e12)
    with pytest.raises(ConfigError, match="unique-token"):
        budget(flops=1e22, law="hoffmann2022", inference_tokens=1e12, unique_tokens=1e10)
    with pytest.raises(ConfigError, match="finite count"):
        budget(flops=1e22, law="hoffmann2022", inference_tokens=-1)


def test_a_preset_run_says_why_it_has_no_band():
    from scalelab.budgeting import PRESET_NO_BAND

    run = budget(flops=1e23, law="besiroglu2024")
    d = run.to_dict()
    assert d["loss"] is not None and d["loss_lo"] is None and d["n_params_lo"] is None
    assert run.loss_note == PRESET_NO_BAND and "covariances" in run.report()


def test_hyperparams_from_an_own_sweep_fit(tmp_path):
    from scalelab.laws.hpfit import NEEDED, fit_hyperparams
    from scalelab.laws.hyperparams import deepseek_model_scale

    rows = [(12 * L * d * d, D, lr, 8, 64, 2 + 0.05 * math.log(lr / (0.02 * (L * d * d * D) ** -0.1)) ** 2, L, d)
            for L, d in ((1, 32), (2, 64), (4, 128)) for D in (1e6, 4e6) for lr in [2.0 ** k for k in range(-14, 0)]]
    fit = fit_hyperparams(dict(zip(NEEDED, np.array(rows).T, strict=True)))
    path = fit.save(tmp_path / "hp.json")
    run = budget(flops=1e21, law="hoffmann2022", hyperparams=str(path), seq_len=2048, vocab_size=32000)
    m = run.model
    M = float(deepseek_model_scale(m.n_layers, m.d_model, 2048))
    assert run.hyper["lr"] == pytest.approx(fit.predict_lr(N=m.n_params().non_embedding, D=run.n_tokens, M=M))
    assert "own fit" in run.hyper["law"]


@pytest.mark.parametrize("n, name", [(96e9, "budget-96b"), (20.5e9, "budget-20.5b"), (3.32e12, "budget-3.32t"),
                                     (4.5e8, "budget-450m")])
def test_a_shape_is_named_by_its_size_as_the_cli_prints_it(n, name):
    """The demo printed 'budget-3.32e+03b' for a 3.3T-parameter shape."""
    from scalelab.budget import shape_for_params

    assert shape_for_params(n).name == name


def test_recipe_refuses_to_write_over_the_law_file_it_reads(tmp_path, capsys, monkeypatch):
    # `budget --law fit.json --recipe fit.json` replaced the saved fit with the recipe
    from scalelab.laws import ChinchillaLaw

    rng = np.random.default_rng(0)
    N, D = np.repeat([1e6, 3e6, 1e7, 3e7], 4), np.tile([2e7, 6e7, 2e8, 6e8], 4)
    L = (1.7 + 400 / N**0.34 + 410 / D**0.28) * (1 + rng.normal(0, 0.003, N.size))
    fit = ChinchillaLaw(init="coarse").fit(N, D, L).save(tmp_path / "fit.json")
    before = fit.read_bytes()
    code, _, err = _cli(["budget", "--flops", "1e21", "--law", str(fit), "--recipe", str(fit)], capsys, monkeypatch)
    assert code == 1 and "--recipe would overwrite the --law file it reads" in " ".join(err.split())
    assert fit.read_bytes() == before
