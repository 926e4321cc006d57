"""Issue 12 part 6: runs out to a real MLflow tracking store and back into `fit` (the real `mlflow` package,
no mocks; no torch: the runs are stored as the trainer would store them)."""

from __future__ import annotations

import json

import pytest

from scalelab.cli.app import main
from scalelab.errors import ConfigError, DataError, UnknownNameError

mlflow = pytest.importorskip("mlflow", reason="needs the tracking extra (pip install 'scalelab[tracking]')")

from scalelab.tunnel.mlflow_io import export_to_mlflow, read_mlflow_runs, tracking_uri  # noqa: E402
from scalelab.tunnel.store import RunStore  # noqa: E402

#: Losses on a Chinchilla surface (Hoffmann et al. 2022's fitted constants), with a small seeded wobble.
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28


def _finish(st: RunStore, layers: int, mult: int, *, seed: int = 0, status: str = "completed") -> str:
    model = {"n_layers": layers, "d_model": 64, "n_heads": 4, "d_ff": 176, "vocab_size": 256, "seq_len": 32}
    rec = st.add({"model": model, "n_tokens": 4096 * mult, "lr": 1e-3, "seed": seed, "seq_len": 32,
                  "batch_size": 4, "schedule": "cosine"}, grid="isoflop")
    N, D = rec.n_params, rec.n_tokens
    loss = (E + A / N**ALPHA + B / D**BETA) * (1 + 0.003 * ((layers * 7 + mult) % 5 - 2))
    steps = D // 128
    curve = [{"step": s, "tokens": s * 128, "train_loss": loss + 2.0 / s, "val_loss": loss + 1.9 / s if i % 2
              else None, "lr": 1e-3 * (1 - s / (steps + 1))} for i, s in enumerate(range(1, steps + 1, 16))]
    claim = st.claim([rec.hash])
    st.finish(rec.hash, {"status": status, "final_val_loss": loss if status == "completed" else None,
                         "final_train_loss": loss - 0.01, "tokens_seen": D, "steps": steps, "wall_s": 2.0,
                         "tokens_per_s": D / 2.0, "flops_per_token": 6.0 * N, "curve": curve, "branches": []},
              claim_id=claim.claim_id)
    return rec.hash


@pytest.fixture
def store(tmp_path):
    """12 completed runs (4 sizes x 3 token counts), one diverged and one pending run."""
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as st:
        for layers in (1, 2, 3, 4):
            for mult in (1, 2, 4):
                _finish(st, layers, mult)
        _finish(st, 2, 8, seed=1, status="diverged")
        st.add({"model": {"n_layers": 5, "d_model": 64, "n_heads": 4, "d_ff": 176, "vocab_size": 256,
                          "seq_len": 32}, "n_tokens": 4096, "lr": 1e-3}, grid="isoflop")
    return path


def _fit_json(args, capsys) -> dict:
    assert main(["fit", *args, "--init", "coarse", "--format", "json"]) == 0  # coarse: quicker, same for both
    return json.loads(capsys.readouterr().out)


def _round_trip(store, uri, capsys):
    assert main(["tunnel", "export", "--store", str(store), "--mlflow", uri]) == 0
    err = " ".join(capsys.readouterr().err.split())  # the console wraps at its width
    assert "13 runs logged, 0 already there" in err and "1 not finished" in err
    from_store = _fit_json(["--store", str(store)], capsys)
    from_mlflow = _fit_json(["--from", "mlflow:scalelab", "--mlflow-uri", uri], capsys)
    assert from_store["data"]["n_runs"] == from_mlflow["data"]["n_runs"] == 12  # the diverged run is out
    assert from_mlflow["data"]["n_convention"] == "total"
    for k in ("params", "intervals", "objective", "data_hash", "goodness_of_fit", "calibration"):
        assert json.dumps(from_mlflow[k], sort_keys=True) == json.dumps(from_store[k], sort_keys=True), k
    return from_store


def test_export_to_mlflow_then_fit_from_it_gives_the_fit_from_the_store(store, tmp_path, capsys):
    """The acceptance round trip in-process (the CLI's JSON is compared in the slow tests below)."""
    from scalelab.laws import ChinchillaLaw, load_runs
    from scalelab.tunnel import runs_table

    uri = (tmp_path / "mlruns").as_uri()  # MLflow's file backend: no database to create, so quick
    assert main(["tunnel", "export", "--store", str(store), "--mlflow", uri]) == 0
    err = " ".join(capsys.readouterr().err.split())  # the console wraps at its width
    assert "13 runs logged, 0 already there" in err and "1 not finished" in err
    cols, label, conv = read_mlflow_runs(uri, "scalelab")
    tables = {"store": load_runs(store=runs_table(store)),
              "mlflow": load_runs(cols, n_convention=conv, source_label=label)}
    hashes = {"store": RunStore(store, readonly=True).runs_table()["hash"], "mlflow": cols["hash"]}
    assert len(tables["mlflow"]) == len(tables["store"]) == 12  # FINISHED only: the diverged run is out
    assert tables["mlflow"].n_convention == "total"
    for k in ("N", "D", "C", "L"):
        a, b = (dict(zip(hashes[s], tables[s][k].tolist(), strict=True)) for s in ("store", "mlflow"))
        assert a == b, k  # bit for bit, run by run
    fits = {s: ChinchillaLaw(init="coarse").fit(t) for s, t in tables.items()}
    for k, v in fits["store"].result_.params.items():
        assert fits["mlflow"].result_.params[k] == v, k
    assert fits["mlflow"].result_.objective == fits["store"].result_.objective
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("scalelab")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    assert sorted(r.info.status for r in runs).count("FINISHED") == 12
    with RunStore(store, readonly=True) as st:
        rec = st.runs(status="completed")[5]
        curve = st.curve(rec.hash)
        (run,) = [r for r in runs if r.data.tags.get("scalelab.hash") == rec.hash]
        assert run.data.tags["scalelab.grid"] == "isoflop" and run.data.tags["scalelab.status"] == "completed"
        assert json.loads(run.data.tags["scalelab.config"]) == rec.config
        p = run.data.params
        assert (int(p["N"]), int(p["D"]), float(p["lr"]), int(p["batch_size"]), int(p["seed"])) == (
            rec.n_params, rec.tokens_seen, 1e-3, 4, 0)
        assert (int(p["n_layers"]), int(p["d_model"]), p["schedule"]) == (rec.config["model"]["n_layers"], 64, "cosine")
        assert run.data.metrics["loss"] == rec.final_val_loss
        assert run.data.metrics["final_train_loss"] == rec.final_train_loss
        hist = client.get_metric_history(run.info.run_id, "train_loss")
        assert [(m.step, m.value) for m in sorted(hist, key=lambda m: m.step)] == [
            (c["step"], c["train_loss"]) for c in curve]
        val = client.get_metric_history(run.info.run_id, "val_loss")
        assert len(val) == sum(c["val_loss"] is not None for c in curve) > 0


def test_exporting_again_changes_nothing_and_adds_only_new_runs(store, tmp_path):
    uri = (tmp_path / "mlruns").as_uri()
    client = mlflow.MlflowClient(tracking_uri=uri)

    def snapshot():
        exp = client.get_experiment_by_name("scalelab")
        return {r.info.run_id: (r.info.status, r.info.end_time, r.data.params, r.data.metrics, r.data.tags)
                for r in client.search_runs([exp.experiment_id], max_results=100)}

    with RunStore(store, readonly=True) as st:
        first = export_to_mlflow(st, uri)
        before = snapshot()
        again = export_to_mlflow(st, uri)
    assert (first["logged"], again["logged"], again["already"]) == (13, 0, 13)
    assert snapshot() == before
    with RunStore(store) as st:
        new = _finish(st, 5, 1)
        third = export_to_mlflow(st, uri)
    assert (third["logged"], third["already"]) == (1, 13)
    after = snapshot()
    assert {k: v for k, v in after.items() if k in before} == before
    (added,) = set(after) - set(before)
    assert after[added][4]["scalelab.hash"] == new


def test_a_half_exported_run_is_redone(store, tmp_path):
    uri = (tmp_path / "mlruns").as_uri()
    with RunStore(store, readonly=True) as st:
        h = st.runs(status="completed")[0].hash
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment("scalelab")
    stub = client.create_run(exp_id, tags={"scalelab.hash": h})  # stopped before its params and metrics
    with RunStore(store, readonly=True) as st:
        done = export_to_mlflow(st, uri)
    assert (done["logged"], done["redone"]) == (13, 1)
    assert client.get_run(stub.info.run_id).info.lifecycle_stage == "deleted"
    runs = [r for r in client.search_runs([exp_id]) if r.data.tags["scalelab.hash"] == h]
    assert len(runs) == 1 and runs[0].info.status == "FINISHED" and "N" in runs[0].data.params


def test_runs_logged_by_hand_are_read_by_their_own_names(tmp_path):
    """A user's own MLflow runs (no scalelab tags): params and metrics are columns; only FINISHED runs count."""
    uri = (tmp_path / "mlruns").as_uri()
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment("mine")
    for i, status in enumerate(["FINISHED", "FINISHED", "KILLED"]):
        r = client.create_run(exp_id, start_time=1000 + i)
        client.log_param(r.info.run_id, "params", 1e6 * (i + 1))
        client.log_metric(r.info.run_id, "eval_loss", 3.0 - i, step=7)
        client.set_terminated(r.info.run_id, status=status)
    cols, label, conv = read_mlflow_runs(uri, "mine")
    assert cols["params"] == ["1000000.0", "2000000.0"] and cols["eval_loss"] == [3.0, 2.0]
    assert conv is None and "1 runs not FINISHED left out" in label
    with pytest.raises(UnknownNameError, match="mine"):
        read_mlflow_runs(uri, "mien")


def test_mlflow_misuse_gives_one_clear_line(store, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ConfigError, match="MLFLOW_TRACKING_URI"):
        tracking_uri(None)
    assert tracking_uri(str(tmp_path / "m.db")) == f"sqlite:///{tmp_path / 'm.db'}"
    assert tracking_uri(str(tmp_path / "mlruns")) == (tmp_path / "mlruns").as_uri()
    with RunStore(store, readonly=True) as st, pytest.raises(ConfigError, match="only finished runs"):
        export_to_mlflow(st, (tmp_path / "mlruns").as_uri(), status="pending")
    uri = (tmp_path / "empty").as_uri()
    mlflow.MlflowClient(tracking_uri=uri).create_experiment("nothing")
    with pytest.raises(DataError, match="no finished runs"):
        read_mlflow_runs(uri, "nothing")
    missing = tmp_path / "nowhere" / "m.db"
    with pytest.raises(ConfigError, match="no MLflow tracking store at this path"):
        read_mlflow_runs(f"sqlite:///{missing}", "x")
    assert not missing.parent.exists()  # reading created nothing
    for args, words in ((["--from", "wandb:x"], "--from takes TRACKER:NAME"),
                        (["--from", "mlflow:scalelab", "--store", str(store)], "one source too many"),
                        (["--from", "mlflow:scalelab"], "MLFLOW_TRACKING_URI")):
        assert main(["fit", *args]) != 0
        err = " ".join(capsys.readouterr().err.split())
        assert words in err and "Traceback" not in err, err
    assert main(["tunnel", "export", "--store", str(store)]) != 0
    assert "nothing to export to" in " ".join(capsys.readouterr().err.split())


@pytest.mark.slow  # two CLI fits with their calibration backtests, and MLflow's SQLite schema (~40 Alembic
# migrations): 10-30 s on 2 busy cores
@pytest.mark.parametrize("backend", ["file", "sqlite"])
def test_cli_round_trip_gives_the_same_fit_json(backend, store, tmp_path, capsys):
    if backend == "sqlite":
        pytest.importorskip("sqlalchemy")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}" if backend == "sqlite" else (tmp_path / "mlruns").as_uri()
    _round_trip(store, uri, capsys)
    assert main(["tunnel", "export", "--store", str(store), "--mlflow", uri]) == 0
    assert "0 runs logged, 13 already there" in " ".join(capsys.readouterr().err.split())
