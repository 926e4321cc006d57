"""`scalelab plan` and `scalelab search`: JSON output, config-file precedence, and every error-table row
the planner commands can hit (exit 1, a heading, the value, what is allowed, no traceback)."""

from __future__ import annotations

import json

import pytest

from scalelab.cli.app import main

BASE = ["--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--n-gpus", "64", "--seq-len", "8192", "--global-batch", "512"]


def run(argv, capsys, monkeypatch):
    monkeypatch.delenv("SCALELAB_DEBUG", raising=False)
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_plan_json(capsys, monkeypatch):
    code, out, err = run(["plan", *BASE, "--tp", "2", "--zero", "1", "--recompute", "selective", "--tokens", "1e12",
                          "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    for k in ("feasible", "reasons", "layout", "memory_per_gpu_bytes", "flops_per_step", "step_time_s",
              "tokens_per_s", "mfu", "hfu", "training_days", "gpu_hours", "conventions"):
        assert k in d
    assert d["feasible"] is True
    assert d["layout"]["tp"] == 2 and d["layout"]["dp"] == 32 and d["layout"]["sequence_parallel"] is True
    assert d["training_days"] > 0 and set(d["memory_per_gpu_bytes"]) >= {"weights", "total"}
    band = d["step_time_bands"]["0.8"]  # the empirical band (scalelab.planner.band) around the modelled figures
    assert band["step_time_s"][0] < d["step_time_s"] < band["step_time_s"][1]
    assert band["training_days"][0] < d["training_days"] < band["training_days"][1]
    assert d["step_time_bands"]["0.95"]["step_time_s"][1] > band["step_time_s"][1]


def test_plan_human_and_measured(capsys, monkeypatch):
    code, out, _ = run(["plan", *BASE, "--tp", "2", "--zero", "1", "--measured-step-time", "5"], capsys, monkeypatch)
    assert code == 0
    assert "measured_step_time" in out and "MFU" in out
    assert "band" not in out  # the band is of the model's step time, not of a measured one
    code, out, _ = run(["plan", *BASE, "--tp", "2", "--zero", "1", "--tokens", "1e12"], capsys, monkeypatch)
    assert code == 0 and "(model; 80% band " in out and " published runs)" in out
    assert out.count("80% band ") == 2  # the step time and the training line (days, GPU-hours, cost)


def test_a_device_without_an_attention_figure_says_so_and_takes_attention_efficiency(capsys, monkeypatch):
    """mi300x has no published attention-kernel figure in the catalog: the plan times attention at the matmul
    efficiency and says so; --attention-efficiency sets it (a slower kernel, a longer step) and the note goes."""
    mi300x = ["plan", "--model", "llama-3.1-8b", "--gpu", "mi300x", "--n-gpus", "8", "--seq-len", "8192",
            "--global-batch", "64"]
    code, out, err = run([*mi300x, "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    fallback = json.loads(out)["step_time_s"]
    code, out, _ = run(mi300x, capsys, monkeypatch)
    assert code == 0 and "attention at matmul efficiency (no mi300x attention figure" in out
    code, out, err = run([*mi300x, "--attention-efficiency", "0.4", "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out)["step_time_s"] > fallback
    code, out, _ = run([*mi300x, "--attention-efficiency", "0.4"], capsys, monkeypatch)
    assert code == 0 and "attention at matmul efficiency" not in out
    code, out, _ = run(["plan", *BASE, "--tp", "2"], capsys, monkeypatch)  # h100-sxm has its own figure
    assert code == 0 and "attention at matmul efficiency" not in out


def test_plan_out_of_memory_is_reported_not_an_error(capsys, monkeypatch):
    code, out, _ = run(["plan", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--n-gpus", "8", "--seq-len", "4096",
                        "--global-batch", "8", "--format", "json"], capsys, monkeypatch)
    assert code == 0
    d = json.loads(out)
    assert d["feasible"] is False and d["reasons"][0].startswith("out of memory by")


def test_global_batch_tokens_and_config_precedence(tmp_path, capsys, monkeypatch):
    cfg = tmp_path / "run.toml"
    cfg.write_text('model = "llama-3.1-8b"\n[cluster]\ngpu = "h100-sxm"\nn_gpus = 64\n'
                   '[train]\nseq_len = 8192\nglobal_batch = 512\n[layout]\ntp = 4\nzero = 1\n')
    code, out, err = run(["plan", "--config", str(cfg), "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out)["layout"]["tp"] == 4
    code, out, _ = run(["plan", "--config", str(cfg), "--tp", "2", "--global-batch-tokens", str(8192 * 256),
                        "--format", "json"], capsys, monkeypatch)
    d = json.loads(out)
    assert d["layout"]["tp"] == 2 and d["train"]["global_batch"] == 256  # flags win


def test_search_json(capsys, monkeypatch):
    code, out, err = run(["search", *BASE, "--top", "3", "--objective", "step_time", "--format", "json"],
                         capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    assert 1 <= len(d["best"]) <= 3 and d["n_explored"] > 0
    assert d["best"][0]["step_time_s"] <= d["best"][-1]["step_time_s"]
    assert d["rejected_counts"]


def test_search_fixed_flags(capsys, monkeypatch):
    code, out, _ = run(["search", *BASE, "--top", "2", "--tp", "4", "--format", "json"], capsys, monkeypatch)
    assert code == 0
    assert all(p["layout"]["tp"] == 4 for p in json.loads(out)["best"])


def test_search_explain(capsys, monkeypatch):
    """`search --explain LAYOUT`: the layout against the best plan, term by term, in JSON and as text."""
    code, out, err = run(["search", *BASE, "--explain", "tp8 pp4 z1 sp sel mb1", "--format", "json"],
                         capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    assert d["other"]["layout"]["tp"] == 8 and d["other"]["layout"]["pp"] == 4
    total = sum(t["difference"] for t in d["step_terms_s"])
    assert total == pytest.approx(d["other"]["step_time_s"] - d["best"]["step_time_s"], rel=1e-6)
    code, out, _ = run(["search", *BASE, "--explain", "tp8 pp4 z1 sp sel mb1"], capsys, monkeypatch)
    assert code == 0 and "deciding terms" in out and "bubble" in out


@pytest.mark.parametrize("argv, heading, fragments", [
    (["plan", "--model", "llama-3.1-80b", "--gpu", "h100-sxm", "--n-gpus", "8"], "Unknown name", ["llama-3.1-8b"]),
    (["plan", "--model", "llama-3.1-8b", "--gpu", "h1000", "--n-gpus", "8"], "Unknown name", ["h100"]),
    (["plan", *BASE, "--tp", "3"], "Impossible layout", ["tp=3 does not divide n_heads=32", "allowed: tp in"]),
    (["plan", *BASE, "--pp", "64"], "Impossible layout", ["pp=64 exceeds n_layers=32"]),
    (["plan", *BASE, "--tp", "8", "--dp", "16"], "Impossible layout", ["more than the cluster's n_gpus=64"]),
    (["plan", *BASE, "--cp", "3"], "Impossible layout", ["cp=3 does not divide seq_len=8192"]),
    (["plan", *BASE, "--micro-batch", "3"], "Impossible layout", ["not divisible by dp*micro_batch"]),
    (["plan", "--model", "mixtral-8x7b", "--gpu", "h100-sxm", "--n-gpus", "64", "--ep", "3"], "Impossible layout",
     ["ep=3 does not divide n_experts=8"]),
    (["plan", *BASE, "--zero", "1", "--offload-params", "cpu"], "Impossible layout", ["needs zero=3"]),
    (["plan", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--n-gpus", "0"], "Invalid configuration", ["n_gpus"]),
    (["plan", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--n-gpus", "-8"], "Invalid configuration",
     ["--n-gpus", "-8"]),
    (["plan", *BASE, "--tp", "0"], "Invalid configuration", ["tp"]),
    (["plan", *BASE, "--seq-len", "-1"], "Invalid configuration", ["--seq-len", "-1"]),
    (["plan", *BASE, "--efficiency", "1.5"], "Invalid configuration", ["efficiency", "1.5"]),
    (["plan", *BASE, "--measured-step-time", "-2"], "Invalid configuration", ["-2"]),
    (["plan", *BASE, "--precision", "fp7"], "Invalid configuration", ["precision"]),
    (["plan", "--gpu", "h100-sxm", "--n-gpus", "8"], "Invalid configuration", ["no model given"]),
    (["plan", "--model", "llama-3.1-8b"], "Invalid configuration", ["--gpu NAME --n-gpus N"]),
    (["plan", "--config", "/nonexistent/run.toml"], "File not found", ["/nonexistent/run.toml"]),
    (["search", *BASE, "--top", "0"], "Invalid configuration", ["top"]),
    (["search", *BASE, "--explain", "tp8 warp9"], "Invalid configuration", ["warp9", "allowed"]),
])
def test_errors(argv, heading, fragments, capsys, monkeypatch):
    code, out, err = run(argv, capsys, monkeypatch)
    assert code == 1, (out, err)
    flat = " ".join(err.split())
    assert heading in flat
    for f in fragments:
        assert f in flat, flat
    assert "Traceback" not in err


def test_malformed_config_files(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_text("[cluster\ngpu = 'h100-sxm'\n")
    code, _, err = run(["plan", "--config", str(bad)], capsys, monkeypatch)
    assert code == 1 and "not valid TOML" in " ".join(err.split())
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('model = "llama-3.1-8b"\n[cluster]\ngpu = "h100-sxm"\nn_gpus = 8\ncolour = "red"\n')
    code, _, err = run(["plan", "--config", str(unknown)], capsys, monkeypatch)
    assert code == 1 and "colour" in err


def test_debug_shows_traceback(capsys, monkeypatch):
    monkeypatch.setenv("SCALELAB_DEBUG", "1")
    code = main(["plan", *BASE, "--tp", "3"])
    assert code == 1 and "Traceback" in capsys.readouterr().err


def test_plan_command_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from scalelab.cli.app import main; "
            "main(['plan', '--model', 'llama-3.1-8b', '--gpu', 'h100-sxm', '--n-gpus', '8', '--format', 'json']); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_plan_memory_flags_reach_the_model(capsys, monkeypatch, tmp_path):
    """--framework, --save-policy, the dtype flags, --memory-reserve-gib and a [memory] table change the
    numbers the plan reports (issue 9: the conventions were unreachable from the CLI)."""
    def plan_json(*extra):
        code, out, err = run(["plan", *BASE, "--zero", "1", "--format", "json", *extra], capsys, monkeypatch)
        assert code == 0, err
        return json.loads(out)

    base = plan_json()
    tt = plan_json("--framework", "torchtitan", "--save-policy", "selective")
    assert tt["layout"]["recompute"] == "torchtitan-op" and tt["options"]["framework"] == "torchtitan"
    bf16 = plan_json("--optimizer-state-dtype", "bf16")
    assert bf16["memory_per_gpu_bytes"]["optimizer"] < base["memory_per_gpu_bytes"]["optimizer"]
    act8 = plan_json("--activation-dtype", "fp8", "--logits-dtype", "bf16")
    assert act8["memory_per_gpu_bytes"]["activations"] == pytest.approx(
        base["memory_per_gpu_bytes"]["activations"] / 2, rel=0.05)
    reserve = plan_json("--memory-reserve-gib", "10")
    assert base["memory_limit_bytes"] - reserve["memory_limit_bytes"] == pytest.approx(9 * 2**30)
    cfg = tmp_path / "run.toml"
    cfg.write_text("[memory]\noptimizer_state_bytes = 2\n")
    assert plan_json("--config", str(cfg))["memory_per_gpu_bytes"] == bf16["memory_per_gpu_bytes"]


@pytest.mark.parametrize("extra, needle", [
    (["--save-policy", "most"], "unknown save policy"),
    (["--framework", "jax"], "unknown framework"),
    (["--optimizer-state-dtype", "fp7"], "unknown dtype"),
])
def test_plan_memory_flag_errors(capsys, monkeypatch, extra, needle):
    code, _, err = run(["plan", *BASE, *extra], capsys, monkeypatch)
    assert code == 1 and needle in err and "Traceback" not in err


@pytest.mark.parametrize("line", ['fsdp_root_unsharded = "false"', "pp_reduce_per_stage = 1",
                                  'low_precision_gather_needs_dp_shard = "no"'])
def test_memory_table_switches_must_be_booleans(tmp_path, capsys, monkeypatch, line):
    """A [memory] switch written as a string or a number is an error naming it, not silently on."""
    cfg = tmp_path / "run.toml"
    cfg.write_text(f"[memory]\n{line}\n")
    code, _, err = run(["plan", *BASE, "--framework", "torchtitan", "--zero", "3", "--config", str(cfg)],
                       capsys, monkeypatch)
    flat = " ".join(err.split())
    assert code == 1 and line.split()[0] in flat and "true or false" in flat and "Traceback" not in err


@pytest.mark.parametrize("command", ["plan", "search"])
def test_framework_help_lists_every_profile(command, capsys, monkeypatch):
    """--help names every built-in framework profile (torchtitan-compile-2025 was missing)."""
    from scalelab.planner.frameworks import FRAMEWORKS

    assert main([command, "--help"]) == 0
    out = "".join(capsys.readouterr().out.split())  # names hold no spaces; the help wraps at hyphens
    listed = out.split("Frameworkprofile:")[1].split(".")[0]
    assert set(listed.split(",")) == set(FRAMEWORKS)


@pytest.mark.parametrize("command", ["plan", "search"])
def test_async_tp_in_a_config_file_must_be_a_boolean(tmp_path, capsys, monkeypatch, command):
    """[plan] async_tp = "false" was read as on (a non-empty string); now an error naming the value."""
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[{command}]\nasync_tp = "false"\n')
    code, _, err = run([command, *BASE, "--framework", "torchtitan-compile", "--tp", "8", "--config", str(cfg)],
                       capsys, monkeypatch)
    flat = " ".join(err.split())
    assert code == 1 and "async_tp must be true or false" in flat and "'false'" in flat and "Traceback" not in err


def test_plan_zero3_gather_flag_and_torchtitan_default_under_pp(capsys, monkeypatch):
    """--zero3-gather step keeps the stage unsharded (more memory, fewer collectives); the torchtitan
    profile chooses it under PP unless the flag says otherwise."""
    def plan_json(*extra):
        code, out, err = run(["plan", *BASE, "--zero", "3", "--tp", "4", "--pp", "2", "--micro-batch", "2",
                              "--format", "json", *extra], capsys, monkeypatch)
        assert code == 0, err
        return json.loads(out)

    per_mb, per_step = plan_json(), plan_json("--zero3-gather", "step")
    assert per_mb["layout"]["zero3_gather"] == "micro-batch" and per_step["layout"]["zero3_gather"] == "step"
    assert per_step["memory_per_gpu_bytes"]["total"] > per_mb["memory_per_gpu_bytes"]["total"]
    assert plan_json("--framework", "torchtitan")["layout"]["zero3_gather"] == "step"
    assert plan_json("--framework", "torchtitan", "--zero3-gather", "micro-batch")["layout"]["zero3_gather"] \
        == "micro-batch"


def test_overlap_flags_and_nemo_profile_reach_plan_and_search(capsys, monkeypatch):
    """--framework nemo hides TP traffic and interleaved PP sends; --tp-overlap/--pp-overlap override it,
    in plan and in search; an overlap outside [0, 1] is an error with its name."""
    lay = ["--tp", "8", "--pp", "2", "--interleave", "2", "--sequence-parallel", "--zero", "1"]

    def plan_json(*extra):
        code, out, err = run(["plan", *BASE, *lay, "--format", "json", *extra], capsys, monkeypatch)
        assert code == 0, err
        return json.loads(out)

    meg, nemo = plan_json(), plan_json("--framework", "nemo")
    off = plan_json("--framework", "nemo", "--tp-overlap", "0", "--pp-overlap", "0")
    assert nemo["step_time_s"] < meg["step_time_s"]
    # with the overlaps off, nemo differs from megatron only in its optimizer's master weights (16-bit remainders)
    def without_optimizer(d):
        return d["step_time_s"] - d["step_time_breakdown_s"]["optimizer_s"]

    assert without_optimizer(off) == pytest.approx(without_optimizer(meg))
    assert off["step_time_breakdown_s"]["optimizer_s"] < meg["step_time_breakdown_s"]["optimizer_s"]
    assert plan_json("--tp-overlap", "1")["step_time_s"] < meg["step_time_s"]
    code, out, err = run(["search", *BASE, "--framework", "nemo", "--tp-overlap", "0", "--pp-overlap", "0",
                          "--top", "1", "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    code2, out2, err2 = run(["search", *BASE, "--top", "1", "--format", "json"], capsys, monkeypatch)
    assert code2 == 0, err2
    a, b = json.loads(out)["best"][0], json.loads(out2)["best"][0]
    assert a["layout_short"] == b["layout_short"] and without_optimizer(a) == pytest.approx(without_optimizer(b))
    code, _, err = run(["plan", *BASE, *lay, "--pp-overlap", "1.5"], capsys, monkeypatch)
    assert code == 1 and "pp_overlap" in err and "Traceback" not in err


def test_async_tp_flag_reaches_plan_and_search(capsys, monkeypatch):
    """--async-tp plans torch's AsyncTP (faster, and recorded in the plan's options) in plan and in search;
    with --tp-overlap it is an error that names both."""
    lay = ["--tp", "8", "--sequence-parallel", "--zero", "3", "--framework", "torchtitan-compile-2025"]

    def plan_json(*extra):
        code, out, err = run(["plan", *BASE, *lay, "--format", "json", *extra], capsys, monkeypatch)
        assert code == 0, err
        return json.loads(out)

    off, on = plan_json(), plan_json("--async-tp")
    assert on["step_time_s"] < off["step_time_s"]
    assert on["options"]["async_tp"] is True and "async_tp" not in off["options"]
    code, out, err = run(["search", *BASE, "--framework", "torchtitan-compile-2025", "--async-tp", "--tp", "8",
                          "--top", "1", "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out)["best"][0]["options"]["async_tp"] is True
    code, _, err = run(["plan", *BASE, *lay, "--async-tp", "--tp-overlap", "1"], capsys, monkeypatch)
    assert code == 1 and "async_tp" in err and "tp_overlap" in err and "Traceback" not in err


def test_plan_offloads_activations_from_the_command_line_and_the_config_file(capsys, monkeypatch, tmp_path):
    code, out, err = run(["plan", *BASE, "--zero", "3", "--offload-activation-layers", "16"], capsys, monkeypatch)
    assert code == 0, err
    flat = " ".join(out.split())  # the human report wraps at the terminal's width
    assert "mb1 oa16" in flat and "of activations)" in flat
    cfg = tmp_path / "run.toml"
    cfg.write_text("[layout]\nzero = 3\noffload_activation_layers = 16\n")
    code, out, err = run(["plan", *BASE, "--config", str(cfg), "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    assert d["layout"]["offload_activation_layers"] == 16
    code, out, err = run(["plan", *BASE, "--pp", "2", "--offload-activation-layers", "16"], capsys, monkeypatch)
    assert code == 1 and "offload_activation_layers=16 needs pp=1 (got pp=2)" in " ".join(err.split())


def test_gradient_dtype_overrides_the_profiles_gradient_buffer(capsys, monkeypatch):
    """--gradient-dtype sets MemoryConventions.grad_bytes over the framework's: the nemo profile keeps bf16
    gradients (NVIDIA's performance recipes), fp32 for NeMo 2.0's default grad_reduce_in_fp32."""
    args = ["plan", *BASE, "--framework", "nemo", "--precision", "fp8", "--zero", "1", "--format", "json"]
    grads = {}
    for extra in ([], ["--gradient-dtype", "fp32"]):
        code, out, err = run([*args, *extra], capsys, monkeypatch)
        assert code == 0, err
        grads[len(extra)] = json.loads(out)["memory_per_gpu_bytes"]["gradients"]
    assert grads[2] == pytest.approx(2 * grads[0])
