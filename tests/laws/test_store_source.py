"""Runs from the wind tunnel's run store (``scalelab fit --store``), through the documented run table
(``scalelab.tunnel.runs_table``, docs/run-table.md): total N, tokens seen, final validation loss. The
laws never open the store themselves: a path needs the reader the CLI sets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from scalelab.cli.app import app
from scalelab.laws import ChinchillaLaw, load_runs

store_mod = pytest.importorskip("scalelab.tunnel.store")


@pytest.fixture
def store_path(tmp_path):
    law = ChinchillaLaw.preset("besiroglu2024")
    path = tmp_path / "runs.sqlite"
    with store_mod.RunStore(path, timeout_s=1.0) as s:
        i = 0
        for d_model in (64, 96, 128, 192):
            for n_tokens in (2e6, 8e6, 3.2e7):
                model = {"n_layers": 2, "d_model": d_model, "n_heads": 4, "d_ff": 4 * d_model,
                         "vocab_size": 256, "seq_len": 32}
                rec = s.add({"model": model, "n_tokens": int(n_tokens), "lr": 1e-3, "seed": i, "seq_len": 32,
                             "batch_size": 4})
                c = s.claim([rec.hash])
                loss = float(law.predict(rec.n_params, n_tokens)) * (1 + 0.003 * np.sin(i))
                s.finish(c.hash, {"status": "completed", "final_val_loss": loss, "final_train_loss": loss,
                                  "tokens_seen": int(n_tokens), "steps": 10, "wall_s": 1.0, "tokens_per_s": 1.0,
                                  "n_params": rec.n_params, "flops_per_token": 6.0 * rec.n_params, "curve": [],
                                  "branches": []}, claim_id=c.claim_id)
                i += 1
        s.add({"model": model, "n_tokens": 1, "lr": 1e-3, "seed": 99, "seq_len": 32, "batch_size": 4})  # pending
    return path


def test_load_runs_from_the_run_table(store_path):
    runs = load_runs(store=store_mod.runs_table(store_path))
    assert len(runs) == 12  # the pending run is not a fit point
    assert runs.n_convention == "total"
    assert np.unique(runs["N"]).size == 4 and np.all(runs["L"] > 0)
    assert np.allclose(runs["C"], 6.0 * runs["N_active"] * runs["D"])


def test_a_store_path_needs_the_reader_a_higher_layer_sets(store_path, monkeypatch):
    from scalelab.errors import DataError
    from scalelab.laws import data as data_mod

    monkeypatch.setattr(data_mod, "_store_reader", None)
    with pytest.raises(DataError, match="run table"):
        load_runs(store_path)
    data_mod.set_store_reader(store_mod.runs_table)
    assert len(load_runs(store_path)) == 12 and load_runs(store_path).n_convention == "total"


def test_laws_never_import_the_tunnel():
    """Layers (HELPERS.md): laws/ reads runs through the run table, not by importing tunnel/."""
    import ast
    from pathlib import Path

    import scalelab.laws

    bad = []
    for f in Path(scalelab.laws.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{f.name}: {n}" for n in names if "tunnel" in n.split(".")]
    assert bad == []


def test_cli_fit_from_store(store_path):
    res = CliRunner().invoke(app, ["fit", "--store", str(store_path), "--init", "coarse", "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["n_samples"] == 12 and d["data"]["n_convention"] == "total"
