"""``scalelab tunnel sweep`` and ``scalelab fit --law hyperparams``: a tiny sweep end to end, the fit written
and read back by a grid and by ``budget``, and clear errors (exit 1)."""

from __future__ import annotations

import json

import pytest

from scalelab.cli.app import main

pytest.importorskip("torch")


def _run(argv, capsys, monkeypatch):
    monkeypatch.delenv("SCALELAB_DEBUG", raising=False)
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _sweep_args(corpus, store):
    return ["tunnel", "sweep", "--n-params", "6e3,2.4e4", "--n-tokens", "1280,2560", "--lr", "1e-3,4e-3,1.6e-2",
            "--batch-size", "4", "--seq-len", "16", "--d-head", "8", "--corpus", str(corpus), "--eval-tokens",
            "256", "--name", "t", "--store", str(store), "-q"]


def test_sweep_dry_run_lists_the_tagged_grid(tmp_path, corpus, capsys, monkeypatch):
    code, out, _ = _run([*_sweep_args(corpus, tmp_path / "s.sqlite"), "--dry-run", "--format", "json"], capsys,
                        monkeypatch)
    assert code == 0
    d = json.loads(out)
    assert d["name"] == "sweep:t" and d["n_runs"] == 2 * 2 * 3
    assert not (tmp_path / "s.sqlite").exists()


def test_fit_hyperparams_errors_are_one_line(tmp_path, capsys, monkeypatch):
    csvf = tmp_path / "runs.csv"
    csvf.write_text("N,D,loss\n1,2,3\n")
    code, _, err = _run(["fit", str(csvf), "--grid", "sweep:x"], capsys, monkeypatch)
    assert code == 1 and "--law hyperparams" in err
    code, _, err = _run(["fit", str(csvf), "--law", "hyperparams"], capsys, monkeypatch)
    assert code == 1 and "run store" in err
    code, _, err = _run(["tunnel", "sweep", "--n-params", "1e4", "--lr", "x", "--n-tokens", "1e3"], capsys,
                        monkeypatch)
    assert code == 1 and "--lr" in err


@pytest.mark.slow
def test_sweep_then_fit_then_use_the_fit(tmp_path, corpus, capsys, monkeypatch):
    store = tmp_path / "s.sqlite"
    code, out, err = _run([*_sweep_args(corpus, store), "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    cells = json.loads(out)
    assert len(cells) == 4 and all(c["n_runs"] == 3 for c in cells)
    hp = tmp_path / "hp.json"
    code, out, err = _run(["fit", "--law", "hyperparams", "--store", str(store), "--grid", "sweep:t", "--out",
                           str(hp), "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    assert d["law"] == "hyperparams" and {"steplaw-lr", "deepseek-lr"} <= set(d["laws"]) and hp.exists()
    # a grid takes its LR from the fit
    from scalelab.laws.hpfit import load_hyperparam_fit
    from scalelab.tunnel.grid import make_config, model_for_params

    m = model_for_params(1.2e4, vocab_size=256, seq_len=16, d_head=8)
    cfg = make_config(m, 1280, {"seq_len": 16, "batch_size": 4, "lr": str(hp)})
    assert cfg.lr == pytest.approx(load_hyperparam_fit(hp).predict_lr(N=m.n_params().non_embedding, D=1280))
    code, out, err = _run(["budget", "--flops", "1e20", "--law", "hoffmann2022", "--hyperparams", str(hp),
                           "--vocab-size", "32000", "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    assert "own fit" in json.loads(out)["hyperparams"]["law"]


@pytest.mark.parametrize(("flag", "example"), [("--n-params", "1e4,3e4,1e5"), ("--batch-size", "8,16,32")])
def test_a_bad_list_flag_gets_an_example_of_its_own_kind(tmp_path, capsys, flag, example):
    # the fix for --n-params 0 said "e.g. --n-params 1e-3,2e-3,4e-3", a learning-rate list
    args = {"--n-params": "1e4", "--lr": "1e-3", "--batch-size": "8", "--n-tokens": "2e4", flag: "0"}
    argv = ["tunnel", "sweep", *[x for kv in args.items() for x in kv], "--dry-run",
            "--store", str(tmp_path / "s.sqlite")]
    assert main(argv) == 1
    assert f"e.g. {flag} {example}" in " ".join(capsys.readouterr().err.split())
