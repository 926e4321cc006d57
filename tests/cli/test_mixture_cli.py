"""``scalelab mixture fit|predict|optimize``: the contract scripts rely on (issue 11)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from scalelab.cli.app import app, main

DOMAINS = ["code", "web", "books"]


def write_tables(tmp_path, n=60, seed=0, shuffle_losses=False):
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(3), n)
    y = 2 + np.exp(-1.2 * W[:, 0] + 0.3 * W[:, 2]) + rng.normal(0, 1e-3, n)
    mix, loss = tmp_path / "mix.csv", tmp_path / "loss.csv"
    with mix.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", *DOMAINS])
        w.writerows([[i, *row] for i, row in enumerate(W)])
    order = rng.permutation(n) if shuffle_losses else np.arange(n)
    with loss.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "val_loss", "other"])
        w.writerows([[i, y[i], 1.0] for i in order])
    return mix, loss, W, y


@pytest.mark.parametrize("model", ["linear", "law"])
def test_fit_predict_optimize_contract(tmp_path, cli_json, model):
    mix, loss, _, y = write_tables(tmp_path, shuffle_losses=True)  # pairs by index, not by order
    out = tmp_path / "m.json"
    fit = cli_json(["mixture", "fit", "--mixtures", str(mix), "--losses", str(loss), "--target", "val_loss",
                    "--model", model, "--out", str(out), "--format", "json"])
    assert fit["n_train"] == 60 and out.is_file() and fit["train_spearman"] > 0.95
    rows = cli_json(["mixture", "predict", str(out), "--mixtures", str(mix), "--format", "json"])
    assert len(rows) == 60
    pred = np.array([r["loss"] for r in rows])
    assert all(r["loss_lo"] <= r["loss"] <= r["loss_hi"] for r in rows)
    assert np.corrcoef(pred, y)[0, 1] > 0.95  # file order kept: row i is mixture i
    opt = cli_json(["mixture", "optimize", str(out), "--prior", str(mix), "--samples", "5000", "--top-k", "16",
                    "--format", "json"])
    assert set(opt["weights"]) == set(DOMAINS) and sum(opt["weights"].values()) == pytest.approx(1)
    assert opt["weights"]["code"] == max(opt["weights"].values())
    assert opt["loss"] <= pred.min() + 0.05


def test_fit_lightgbm_by_default(tmp_path, cli_json):
    pytest.importorskip("lightgbm", reason="the lightgbm model needs scalelab[mixtures]")
    mix, loss, _, _ = write_tables(tmp_path, n=40)
    out = tmp_path / "m.json"
    fit = cli_json(["mixture", "fit", "--mixtures", str(mix), "--losses", str(loss), "--target", "val_loss",
                    "--out", str(out), "--format", "json"])
    assert fit["model"] == "lightgbm" and json.loads(out.read_text())["backend"]["kind"] == "lightgbm"


def test_bad_inputs_exit_1_with_a_fix(tmp_path, capsys):
    mix, loss, _, _ = write_tables(tmp_path, n=20)
    code = main(["mixture", "fit", "--mixtures", str(mix), "--losses", str(loss), "--target", "val_los",
                 "--model", "linear", "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert code == 1 and "val_los" in err and "val_loss" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("index,code,web\n0,0.5,0.5\n")
    assert main(["mixture", "fit", "--mixtures", str(mix), "--losses", str(loss), "--target", "val_loss",
                 "--model", "linear", "--out", str(tmp_path / "m.json")]) == 0
    assert main(["mixture", "predict", str(tmp_path / "m.json"), "--mixtures", str(bad)]) == 1
    assert "books" in capsys.readouterr().err
    r = CliRunner().invoke(app, ["mixture", "fit", "--mixtures", str(mix), "--losses", str(loss), "--target",
                                 "val_loss", "--model", "forest", "--out", "x.json"])
    assert r.exit_code == 2


def test_fit_keeps_the_model_when_out_cannot_be_written(tmp_path, capsys, monkeypatch):
    # --out into a missing folder ended in "File not found" and the fitted model was lost, as `fit` once did
    mix, loss, _, _ = write_tables(tmp_path, n=20)
    monkeypatch.chdir(tmp_path)
    code = main(["mixture", "fit", "--mixtures", str(mix), "--losses", str(loss), "--target", "val_loss",
                 "--model", "linear", "--out", str(tmp_path / "missing" / "m.json"), "--format", "json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "could not write" in out.err and json.loads(out.out)["out"] == str(tmp_path / "m.json")
    assert (tmp_path / "m.json").is_file()


def test_fit_refuses_to_write_the_model_over_an_input(tmp_path, capsys):
    mix, loss, _, _ = write_tables(tmp_path, n=20)
    before = loss.read_bytes()
    assert main(["mixture", "fit", "--mixtures", str(mix), "--losses", str(loss), "--target", "val_loss",
                 "--model", "linear", "--out", str(loss)]) == 1
    assert "--out would overwrite the losses file it reads" in " ".join(capsys.readouterr().err.split())
    assert loss.read_bytes() == before
