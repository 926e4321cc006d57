"""``scalelab fit``, ``forecast``, ``laws`` and ``laws show`` through typer's CliRunner, and the error
path through ``main`` (one message, exit 1, no traceback)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from scalelab.cli.app import app, main
from scalelab.errors import ConfigError
from scalelab.laws import ChinchillaLaw

runner = CliRunner()


@pytest.fixture
def runs_csv(tmp_path):
    X, y = ChinchillaLaw._example_data(np.random.default_rng(0), n=60)
    p = tmp_path / "runs.csv"
    lines = ["n_params,flops,val_loss"] + [f"{n},{6 * n * d},{loss}" for n, d, loss in zip(X[0], X[1], y, strict=True)]
    p.write_text("\n".join(lines) + "\n")
    return p


def test_laws_list_and_show():
    res = runner.invoke(app, ["laws", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert any(r["name"] == "chinchilla" and "Hoffmann" in r["citation"] for r in rows)
    res = runner.invoke(app, ["laws", "show", "chinchilla", "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["params"] == ["E", "A", "B", "alpha", "beta"]
    assert d["presets"]["besiroglu2024"]["params"]["alpha"] == pytest.approx(0.34781)
    res = runner.invoke(app, ["laws"])
    assert res.exit_code == 0 and "chinchilla" in res.output


def test_fit_then_forecast(runs_csv, tmp_path):
    out = tmp_path / "fit.json"
    plot = tmp_path / "fit.png"
    res = runner.invoke(app, ["fit", str(runs_csv), "--law", "chinchilla", "--n", "n_params", "--compute", "flops",
                              "--loss", "val_loss", "--init", "coarse", "--bootstrap", "30", "--seed", "1",
                              "--n-convention", "total", "--out", str(out), "--plot", str(plot),
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["law"] == "chinchilla" and d["params"]["alpha"] == pytest.approx(0.35, abs=0.1)
    assert d["intervals"]["alpha"][0] < d["params"]["alpha"] < d["intervals"]["alpha"][1]
    assert "D derived as C / (6 N)" in d["data"]["notes"]
    assert out.exists() and plot.stat().st_size > 1000
    res = runner.invoke(app, ["forecast", str(out), "--compute", "1e21", "--format", "json"])
    assert res.exit_code == 0, res.output
    f = json.loads(res.output)
    law = ChinchillaLaw.load(out)
    assert f["N_opt"][0] == pytest.approx(float(law.compute_optimal(1e21).N_opt[0]))
    assert f["bands"]["N_opt"]["low"][0] < f["N_opt"][0] < f["bands"]["N_opt"]["high"][0]
    res = runner.invoke(app, ["forecast", str(out), "--params", "1e9", "--tokens", "2e10"])
    assert res.exit_code == 0, res.output
    assert "95% new-run band" in res.output and "95% mean-law band" in res.output and "extrapolation" in res.output


def test_forecast_preset_reproduces_40b():
    res = runner.invoke(app, ["forecast", "chinchilla:hoffmann2022", "--compute", "5.76e23", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert round(json.loads(res.output)["N_opt"][0] / 1e9) == 40


def test_cli_errors_are_one_message(runs_csv, capsys):
    code = main(["fit", str(runs_csv), "--loss", "nope"])
    err = capsys.readouterr().err
    assert code == 1 and "Unusable data" in err and "n_params" in err and "Traceback" not in err
    code = main(["fit", str(runs_csv), "--law", "chinchila"])
    assert code == 1 and "did you mean" in capsys.readouterr().err
    code = main(["forecast", "chinchilla:hoffmann2022"])
    assert code == 1 and "--compute" in capsys.readouterr().err
    code = main(["fit"])
    assert code == 1 and "no runs given" in capsys.readouterr().err


def test_fit_and_backtest_drop_runs_below_a_token_per_param_on_request(tmp_path):
    rng = np.random.default_rng(0)
    N = np.repeat([2e7, 5e7, 1e8, 2e8, 4e8], 4)
    D = N * np.tile([5.0, 20.0, 40.0, 80.0], 5)
    y = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(0.003 * rng.standard_normal(N.size))
    rows = [*zip(N, D, y, strict=True), (4e8, 2e7, 8.5), (2e8, 4e7, 6.9)]    # two runs read early in training
    p = tmp_path / "runs.csv"
    p.write_text("params,tokens,loss\n" + "".join(f"{n},{d},{loss}\n" for n, d, loss in rows))
    base = [str(p), "--n", "params", "--d", "tokens", "--loss", "loss"]
    res = runner.invoke(app, ["fit", *base, "--init", "coarse", "--format", "json"])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.output)["data"]["notes"]
    assert any("2 run(s) saw fewer tokens than parameters" in n and "--min-tokens-per-param 1" in n for n in notes)
    res = runner.invoke(app, ["fit", *base, "--init", "coarse", "--min-tokens-per-param", "1", "--format", "json"])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.output)["data"]["notes"]
    assert any(n.startswith("dropped 2 run(s) below 1 token(s) per parameter") for n in notes)
    assert not any("fewer tokens than parameters" in n for n in notes)
    res = runner.invoke(app, ["backtest", *base, "--min-tokens-per-param", "1", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert all(s["n_train"] + s["n_test"] <= 20 for s in json.loads(res.output)["splits"])


def test_fit_imports_only_its_own_command_module(runs_csv):
    """`scalelab fit` builds only the laws' command module (the root lists the others by name), and a fit
    of a CSV file loads neither the planner, nor the pydantic spec base (its content hash lives in
    scalelab._hash), nor the other laws' modules: each cost `scalelab fit` start-up time (docs/laws.md,
    benchmarks/fit_startup.py)."""
    import subprocess
    import sys

    code = ("import sys; from scalelab.cli.app import COMMANDS, main\n"
            f"code = main(['fit', {str(runs_csv)!r}, '--n', 'n_params', '--compute', 'flops', '--loss', 'val_loss',"
            " '--init', 'coarse', '--format', 'json'])\n"
            "others = sorted(f'scalelab.cli.{m}' for m in set(COMMANDS.values()) - {'laws'})\n"
            "print(code, 'scalelab.cli.laws' in sys.modules, [m for m in others if m in sys.modules],"
            " sorted(m for m in sys.modules if m.startswith(('scalelab.planner', 'scalelab._spec', 'scalelab.tunnel',"
            " 'scalelab.laws.kaplan', 'scalelab.laws.muennighoff', 'scalelab.laws.hyperparams'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 True [] []", out.stdout[-500:]


def test_fit_takes_the_prior_on_the_exponents_and_reports_it(runs_csv, capsys):
    base = ["fit", str(runs_csv), "--law", "chinchilla", "--n", "n_params", "--compute", "flops", "--loss",
            "val_loss", "--init", "coarse"]
    res = runner.invoke(app, base)
    assert res.exit_code == 0, res.output
    assert "prior (hoffmann2022, a MAP fit): alpha ~ N(0.339" in res.output
    res = runner.invoke(app, [*base, "--param-prior", "none", "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert "prior" not in d["fit_info"] and "param_prior" not in d["options"]
    res = runner.invoke(app, [*base, "--param-prior", "besiroglu2024", "--format", "json"])
    assert json.loads(res.output)["fit_info"]["prior"]["centre"]["beta"] == pytest.approx(0.36585)
    assert main([*base, "--param-prior", "kaplan"]) == 1
    err = capsys.readouterr().err
    assert "unknown param_prior" in err and "besiroglu2024" in err and "Traceback" not in err
    code = main(["fit", str(runs_csv), "--law", "kaplan", "--n", "n_params", "--compute", "flops", "--loss",
                 "val_loss", "--param-prior", "none"])
    assert code == 1 and "--param-prior applies to the chinchilla law" in capsys.readouterr().err


def test_fit_keeps_the_fit_when_the_plot_path_cannot_be_written(runs_csv, tmp_path, monkeypatch, capsys):
    # --plot into a missing folder used to end in "File not found" after the fit, which was lost with it
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    code = main(["fit", str(runs_csv), "--n", "n_params", "--compute", "flops", "--loss", "val_loss",
                 "--init", "coarse", "--plot", str(tmp_path / "no-such-folder" / "fit.png"), "--format", "json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["params"]["alpha"] > 0
    assert "could not write" in out.err and (tmp_path / "fit.png").stat().st_size > 1000
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []  # the figure of the failed first save was closed too


def test_forecast_refuses_a_level_that_is_no_band_and_conflicting_targets(capsys):
    # --level 1 gave finite "100%" bands and --level 0 zero-width ones (exit 0); with --params/--tokens the
    # level error was swallowed into a note; --compute with --params/--tokens silently ignored the latter
    for args in (["--compute", "1e22", "--level", "1"], ["--params", "1e9", "--tokens", "2e10", "--level", "0"]):
        assert main(["forecast", "chinchilla:besiroglu2024", *args]) == 1
        assert "level must be a coverage strictly between 0 and 1" in capsys.readouterr().err
    both = ["--compute", "1e22", "--params", "1e9", "--tokens", "2e10"]
    assert main(["forecast", "chinchilla:besiroglu2024", *both]) == 1
    assert "not both" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="level must be a coverage strictly between 0 and 1"):
        ChinchillaLaw.preset("besiroglu2024").compute_optimal(1e22, level=1.0)


def test_fit_refuses_a_runs_file_and_a_store_together(runs_csv, tmp_path, capsys):
    # `fit runs.csv --store runs.sqlite` fitted the store alone and dropped the file's runs without a word
    assert main(["fit", str(runs_csv), "--store", str(tmp_path / "runs.sqlite")]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "runs given twice: a runs file and --store" in err and "runs.csv" in err


@pytest.mark.parametrize("pair", ["=n_params", "N=", "N"])
def test_col_needs_a_name_and_a_column(runs_csv, capsys, pair):
    # "--col =x" mapped column x to the name "" ("column 'x' (mapped to ) is not in ...")
    assert main(["fit", str(runs_csv), "--col", pair]) == 1
    assert "--col takes NAME=COLUMN" in capsys.readouterr().err


def test_forecast_of_a_bare_law_name_points_at_its_presets(capsys, tmp_path, monkeypatch):
    # `scalelab forecast chinchilla` said "no such file: chinchilla"
    monkeypatch.chdir(tmp_path)
    assert main(["forecast", "chinchilla", "--compute", "1e22"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "'chinchilla' is a law, not a fit file" in err and "scalelab forecast chinchilla:" in err


def test_fit_refuses_to_write_over_its_own_runs(runs_csv, capsys):
    # `fit runs.csv --out runs.csv` replaced the user's runs with the fit's JSON
    before = runs_csv.read_bytes()
    for flag in ("--out", "--plot"):
        assert main(["fit", str(runs_csv), "--n", "n_params", "--compute", "flops", "--loss", "val_loss",
                     flag, str(runs_csv)]) == 1
        assert f"{flag} would overwrite the runs file it reads" in " ".join(capsys.readouterr().err.split())
    assert runs_csv.read_bytes() == before


def test_fit_plot_without_matplotlib_fails_before_the_fit(runs_csv, tmp_path, capsys, monkeypatch):
    # without the report extra, --plot failed after the fit (a long bootstrap) and threw the fit away
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    monkeypatch.setattr(ChinchillaLaw, "fit", lambda *a, **k: pytest.fail("fitted before checking matplotlib"))
    assert main(["fit", str(runs_csv), "--n", "n_params", "--compute", "flops", "--loss", "val_loss",
                 "--plot", str(tmp_path / "fit.png")]) == 1
    assert "scalelab[report]" in capsys.readouterr().err
