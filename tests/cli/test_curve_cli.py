"""``scalelab curve forecast``: the JSON contract of issue 11."""

from __future__ import annotations

import numpy as np

from scalelab.cli.app import main


def test_forecast_contract(tmp_path, cli_json):
    t = np.arange(1, 11) * 100
    L = 2 + 1.5 * (t / 100) ** -0.4
    f = tmp_path / "c.csv"
    f.write_text("step,train_loss\n" + "".join(f"{s},{v}\n" for s, v in zip(t[:5], L[:5], strict=True)))
    out = cli_json(["curve", "forecast", str(f), "--step", "step", "--loss", "train_loss", "--total-steps", "1000",
                    "--at", "800", "--format", "json"])
    assert out["step"] == 1000 and out["loss_lo"] <= out["loss"] <= out["loss_hi"]
    assert abs(out["loss"] - L[-1]) < 0.01
    assert [a["step"] for a in out["at"]] == [800, 1000]
    ref = tmp_path / "ref.csv"
    rows = ["run,step,train_loss,total_steps"]
    for i, a in enumerate(np.linspace(1, 2, 10)):
        rows += [f"r{i},{s},{2 + a * (s / 100) ** -0.4},1000" for s in t]
    ref.write_text("\n".join(rows) + "\n")
    out = cli_json(["curve", "forecast", str(f), "--step", "step", "--loss", "train_loss", "--total-steps", "1000",
                    "--reference", str(ref), "--format", "json"])
    assert abs(out["loss"] - L[-1]) < 0.01 and out["method"].startswith("cross-run")


def test_missing_column_exits_1(tmp_path, capsys):
    f = tmp_path / "c.csv"
    f.write_text("step,loss\n1,3\n2,2.9\n3,2.8\n")
    assert main(["curve", "forecast", str(f), "--step", "step", "--loss", "los", "--total-steps", "10"]) == 1
    assert "'loss'" in capsys.readouterr().err


def test_checkpoint_law_fits_and_predicts(tmp_path, cli_json):
    rows = ["N,step,loss"]
    for n in (1e7, 3e7, 1e8):
        rows += [f"{n},{s},{1.8 + 400 * n ** -0.35 + 20 * s ** -0.5}" for s in np.geomspace(100, 1e4, 15)]
    f = tmp_path / "ckpt.csv"
    f.write_text("\n".join(rows) + "\n")
    out = cli_json(["curve", "law", str(f), "--n", "N", "--step", "step", "--loss", "loss", "--at", "1e9:1e5",
                    "--format", "json"])
    assert abs(out["E"] - 1.8) < 0.02 and abs(out["alpha"] - 0.35) < 0.02 and abs(out["beta"] - 0.5) < 0.02
    truth = 1.8 + 400 * 1e9 ** -0.35 + 20 * 1e5 ** -0.5
    assert out["at"][0]["step"] == 1e5 and abs(out["at"][0]["loss"] / truth - 1) < 0.005
    assert main(["curve", "law", str(f), "--n", "N", "--step", "step", "--loss", "loss", "--at", "1e9"]) == 1
