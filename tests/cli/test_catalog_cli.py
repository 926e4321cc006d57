"""`scalelab models` and `scalelab gpus`: tables, JSON with exact numbers, one-item views, errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from scalelab.arch import get_model, list_models
from scalelab.cli.app import app, main
from scalelab.hardware import get_gpu, list_gpus

runner = CliRunner()


def test_models_json_has_every_preset_with_exact_counts(cli_json):
    rows = cli_json(["models", "--format", "json"])
    assert [r["name"] for r in rows] == [m.name for m in list_models()]
    by_name = {r["name"]: r for r in rows}
    c = get_model("mixtral-8x7b").n_params()
    assert by_name["mixtral-8x7b"]["params_total"] == c.total
    assert by_name["mixtral-8x7b"]["params_active"] == c.active
    assert by_name["llama-3.1-8b"]["params_non_embedding"] == get_model("llama-3.1-8b").n_params().non_embedding
    assert by_name["deepseek-v3"]["source"]


def test_models_table_lists_names_and_counts():
    r = runner.invoke(app, ["models"], env={"COLUMNS": "120"})
    assert r.exit_code == 0
    for name in ("llama-3.1-405b", "deepseek-v3", "tiny-moe"):
        assert name in r.stdout
    assert "46.7B" in r.stdout and "12.88B" in r.stdout  # Mixtral total / active


def test_models_family_filter(cli_json):
    rows = cli_json(["models", "--family", "mixtral", "-f", "json"])
    assert [r["name"] for r in rows] == ["mixtral-8x7b", "mixtral-8x22b"]


def test_show_one_model_by_name_and_by_hf_config(assets, cli_json):
    d = cli_json(["models", "Qwen3-30B-A3B", "--format", "json"])
    assert d["params"]["total"] == get_model("qwen3-30b-a3b").n_params().total
    assert d["spec"]["moe"]["n_experts"] == 128 and d["family"] == "qwen3_moe"
    f = cli_json(["models", str(assets / "hf_configs" / "qwen3-30b-a3b.json"), "--format", "json"])
    assert f["params"] == d["params"]
    human = runner.invoke(app, ["models", "chinchilla-70b"], env={"COLUMNS": "120"})
    assert human.exit_code == 0 and "relative" in human.stdout  # the known gap is shown


def test_gpus_json_matches_catalog_in_human_units(cli_json):
    rows = cli_json(["gpus", "--format", "json"])
    assert {r["name"] for r in rows} == {g.name for g in list_gpus()}
    h100 = next(r for r in rows if r["name"] == "h100-sxm")
    assert h100["bf16_tflops"] == pytest.approx(989.4)
    assert h100["fp8_tflops"] == pytest.approx(1978.9)
    assert h100["memory_gb"] == 80 and h100["nic_gb_per_s"] == 50 and h100["gpus_per_node"] == 8


def test_gpus_table_and_detail(cli_json):
    r = runner.invoke(app, ["gpus"], env={"COLUMNS": "120"})
    assert r.exit_code == 0 and "mi300x" in r.stdout and "1,307" in r.stdout
    d = cli_json(["gpus", "h100", "-f", "json"])
    assert d["name"] == "h100-sxm" and "datasheet" in d["source"] and d["efficiency_source"]
    assert d["spec"]["peak_flops_per_s"]["bf16"] == get_gpu("h100-sxm").peak("bf16")


def test_user_gpu_file(tmp_path, cli_json):
    p = tmp_path / "gpu.toml"
    p.write_text('name = "lab-gpu"\nbf16_tflops = 400\nmemory_gb = 48\nhbm_bandwidth_tb_per_s = 1\n'
                 'intra_node_gb_per_s = 100\nnic_gbit_per_s = 100\n')
    d = cli_json(["gpus", str(p), "--format", "json"])
    assert d["name"] == "lab-gpu" and d["bf16_tflops"] == 400


@pytest.mark.parametrize("args, fragment", [
    (["models", "lama-3.1-8b"], "did you mean 'llama-3.1-8b'"),
    (["gpus", "h1000"], "unknown gpu 'h1000'"),
])
def test_unknown_names_exit_1_with_suggestions(args, fragment, capsys, monkeypatch):
    monkeypatch.delenv("SCALELAB_DEBUG", raising=False)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Unknown name" in err and fragment in " ".join(err.split())


def test_malformed_model_file_exits_1(tmp_path, capsys):
    p = tmp_path / "m.toml"
    p.write_text("n_layers = -1\nd_model = 64\nn_heads = 4\nd_ff = 256\nvocab_size = 256\n")
    assert main(["models", str(p)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "Invalid configuration" in err and "n_layers" in err and "-1" in err


def test_gpu_detail_prints_memory_in_whole_mib():
    """`scalelab gpus NAME` shows the MiB nvidia-smi reports as written (49,140), not rounded to 4 digits."""
    r = runner.invoke(app, ["gpus", "rtx-a6000"], env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.output
    assert "49,140" in r.output and "e+04" not in r.output
