"""Issue 12 part 6: `fit` reads the runs table a W&B user downloads (Name, State, ..., config and summary keys)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from scalelab.cli.app import main
from scalelab.errors import DataError
from scalelab.laws import load_runs

HEADER = ["Name", "State", "Notes", "User", "Tags", "Created", "Runtime", "Sweep", "batch_size", "lr",
          "model.d_model", "model.n_layers", "model.n_params", "n_tokens", "seed", "_runtime", "_step",
          "_timestamp", "train/loss", "val/loss"]


def _runs():
    """10 finished runs on a Chinchilla surface (Hoffmann et al. 2022's constants), one crashed, one running."""
    out = []
    for i, (layers, d_model) in enumerate([(2, 128), (4, 256), (6, 384), (8, 512), (12, 768)]):
        n = 12 * layers * d_model**2 + 50257 * d_model
        for j, tpp in enumerate((10, 40)):
            d = tpp * n
            loss = 1.69 + 406.4 / n**0.34 + 410.7 / d**0.28 + 0.002 * ((i + j) % 3 - 1)
            out.append({"Name": f"gpt-L{layers}-tpp{tpp}", "State": "finished", "N": n, "D": d, "loss": loss,
                        "layers": layers, "d_model": d_model, "step": d // 2048})
    out.append({**out[3], "Name": "gpt-crashed", "State": "crashed", "loss": None})
    out.append({**out[4], "Name": "gpt-running", "State": "running", "loss": None})
    return out


def _write(path, runs, header=HEADER, drop=()):
    header = [h for h in header if h not in drop]
    with open(path, "w", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)  # as W&B writes it
        w.writerow(header)
        for k, r in enumerate(runs):
            row = {"Name": r["Name"], "State": r["State"], "Notes": "-", "User": "ada", "Tags": "isoflop, tiny",
                   "Created": f"2025-05-0{1 + k % 9}T10:11:12.000Z", "Runtime": 600 + k, "Sweep": "",
                   "batch_size": 32, "lr": 3e-4, "model.d_model": r["d_model"], "model.n_layers": r["layers"],
                   "model.n_params": r["N"], "n_tokens": r["D"], "seed": 0, "_runtime": 600.5 + k,
                   "_step": r["step"], "_timestamp": 1.7e9 + k,
                   "train/loss": "" if r["loss"] is None else r["loss"] - 0.05,
                   "val/loss": "" if r["loss"] is None else repr(r["loss"])}
            w.writerow([row[h] for h in header])
    return path


def test_a_wandb_export_fits_like_the_same_runs_given_as_columns(tmp_path, capsys):
    runs = _runs()
    path = _write(tmp_path / "wandb_export_2025-05-09.csv", runs)
    t = load_runs(path)
    done = [r for r in runs if r["State"] == "finished"]
    assert len(t) == 10  # crashed and running runs have no final loss
    assert t["N"].tolist() == [float(r["N"]) for r in done] and t["D"].tolist() == [float(r["D"]) for r in done]
    assert t["L"].tolist() == [r["loss"] for r in done]  # val/loss, not train/loss
    notes = " | ".join(t.notes)
    assert "10 finished runs kept, 2 left out (1 crashed, 1 running)" in notes
    assert "loss from W&B column 'val/loss' (also found 'train/loss'" in notes
    assert "N from W&B column 'model.n_params'" in notes and "D from W&B column 'n_tokens'" in notes
    assert "_step" not in (t.names.values())
    # the same fit as from plain columns
    plain = {"N": [r["N"] for r in done], "D": [r["D"] for r in done], "loss": [r["loss"] for r in done]}
    assert main(["fit", str(path), "--init", "coarse", "--format", "json"]) == 0
    from_wandb = json.loads(capsys.readouterr().out)
    (tmp_path / "plain.json").write_text(json.dumps(plain))
    assert main(["fit", str(tmp_path / "plain.json"), "--init", "coarse", "--format", "json"]) == 0
    from_plain = json.loads(capsys.readouterr().out)
    assert from_wandb["params"] == from_plain["params"] and from_wandb["data"]["n_runs"] == 10


def test_the_users_mapping_wins_and_lines_are_named_in_the_file(tmp_path):
    runs = _runs()
    path = _write(tmp_path / "w.csv", runs)
    t = load_runs(path, loss="train/loss")
    assert np.allclose(t["L"], [r["loss"] - 0.05 for r in runs if r["State"] == "finished"])
    assert not any("loss from W&B" in n for n in t.notes)
    text = path.read_text().splitlines()
    text[3] = text[3].replace(f'"{runs[2]["N"]}"', '"124M"')  # the third run, on CSV line 4
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"'model.n_params' has non-numbers at CSV lines 4"):
        load_runs(path)


def test_what_is_missing_is_named(tmp_path, capsys):
    runs = _runs()
    no_loss = _write(tmp_path / "a.csv", runs, drop=("train/loss", "val/loss"))
    with pytest.raises(DataError, match="has no loss column") as e:
        load_runs(no_loss)
    assert "val/loss" in str(e.value) and "model.n_params" in str(e.value) and "--loss" in str(e.value)
    unfinished = _write(tmp_path / "b.csv", [r for r in runs if r["State"] != "finished"])
    with pytest.raises(DataError, match=r"no finished runs.*1 crashed, 1 running"):
        load_runs(unfinished)
    no_n = _write(tmp_path / "c.csv", runs, drop=("model.n_params",))
    assert main(["fit", str(no_n)]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "no column for 'N'" in err and "--col N=" in err and "Traceback" not in err


def test_only_a_wandb_export_is_read_as_one(tmp_path):
    """A CSV of the user's own with a Name and a State column (no other W&B column) stays a plain table."""
    p = tmp_path / "mine.csv"
    p.write_text("Name,State,N,D,loss\na,CA,1e6,2e7,3.1\nb,NY,2e6,4e7,2.9\n")
    t = load_runs(p)
    assert len(t) == 2 and not any("W&B" in n for n in t.notes)


def test_a_key_named_twice_keeps_both_columns(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("Name,State,Runtime,lr,lr,N,D,loss\na,finished,5,1e-3,2e-3,1e6,2e7,3.1\n")
    t = load_runs(p)
    assert t["lr"].tolist() == [1e-3] and t["lr.1"].tolist() == [2e-3]
