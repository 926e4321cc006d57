"""Runs in from every supported source, and bad input reported with row numbers and a remedy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalelab.errors import ConfigError, DataError
from scalelab.laws import ChinchillaLaw, Runs, load_runs


def _table(n: int = 30, seed: int = 0) -> dict[str, np.ndarray]:
    X, y = ChinchillaLaw._example_data(np.random.default_rng(seed), n=n)
    return {"params": X[0], "tokens": X[1], "final_loss": y}


def _write_csv(path, cols, header=None):
    keys = header or list(cols)
    lines = [",".join(keys)]
    for i in range(len(next(iter(cols.values())))):
        lines.append(",".join(str(cols[k][i]) for k in cols))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_sources_agree(tmp_path):
    import pandas as pd

    cols = _table()
    df = pd.DataFrame(cols)
    csv = _write_csv(tmp_path / "runs.csv", cols)
    pq = tmp_path / "runs.parquet"
    df.to_parquet(pq)
    js = tmp_path / "runs.json"
    js.write_text(json.dumps(df.to_dict(orient="records")))
    for src in (cols, df, csv, pq, js):
        r = load_runs(src, n_convention="total")
        np.testing.assert_allclose(r["N"], cols["params"])
        np.testing.assert_allclose(r["D"], cols["tokens"])
        np.testing.assert_allclose(r["L"], cols["final_loss"])
        assert r.n_convention == "total"


def test_tokens_derived_from_compute():
    cols = _table()
    r = load_runs({"N": cols["params"], "flops": 6 * cols["params"] * cols["tokens"], "loss": cols["final_loss"]})
    np.testing.assert_allclose(r["D"], cols["tokens"], rtol=1e-12)
    assert "D derived as C / (6 N)" in r.notes


def test_toml_mapping(tmp_path):
    cols = {"size": [1e8, 2e8], "toks": [1e9, 2e9], "xent": [3.0, 2.9]}
    cfg = tmp_path / "cols.toml"
    cfg.write_text('[columns]\nN = "size"\nD = "toks"\nloss = "xent"\n\n[conventions]\nN = "non-embedding"\n')
    r = load_runs(cols, config=cfg)
    assert r["N"].tolist() == [1e8, 2e8] and r["L"].tolist() == [3.0, 2.9]
    assert r.n_convention == "non-embedding"
    cfg.write_text("[colums]\nN='size'\n")
    with pytest.raises(ConfigError, match="unknown tables"):
        load_runs(cols, config=cfg)


def test_missing_column_lists_what_was_found():
    with pytest.raises(DataError, match=r"no loss column.*'params'.*'tokens'"):
        load_runs({"params": [1.0, 2.0], "tokens": [3.0, 4.0]})
    with pytest.raises(DataError, match=r"'Model size' \(mapped to N\) is not in.*Fix"):
        load_runs(_table(), n="Model size")
    runs = load_runs({"params": [1e8, 2e8], "loss": [3.0, 2.9]})
    with pytest.raises(DataError, match=r"no column for 'D'.*--col D="):
        ChinchillaLaw().fit(runs)


def test_nan_and_non_positive_rows_are_named(tmp_path):
    cols = _table(12)
    cols["final_loss"][3] = np.nan
    cols["params"][7] = -1.0
    csv = _write_csv(tmp_path / "bad.csv", cols)
    runs = load_runs(csv)
    # messages name the user's columns, not the canonical N and L
    with pytest.raises(DataError, match=r"'params' has NaN, infinite or non-positive values at CSV lines 9"):
        ChinchillaLaw().fit(runs)
    cols["params"][7] = 1e8
    runs = load_runs(cols)
    with pytest.raises(DataError, match=r"'final_loss' has NaN, infinite or non-positive values at data rows "
                                         r"\(0-based\) 3"):
        ChinchillaLaw().fit(runs)
    # arrays straight into fit: same check, array row numbers
    c = _table(12)
    y = c["final_loss"].copy()
    y[[2, 5]] = 0.0
    with pytest.raises(DataError, match="rows 2, 5"):
        ChinchillaLaw().fit(c["params"], c["tokens"], y)


def test_bad_value_hints_apply_only_where_they_fit(tmp_path):
    """Issue 12: "a diverged run has no usable loss" was shown for a negative N."""
    cols = _table(12)
    cols["params"][4] = -1e8
    with pytest.raises(DataError) as e:
        ChinchillaLaw().fit(load_runs(cols))
    assert "'params'" in str(e.value) and "diverged" not in str(e.value)
    assert "a parameter count is positive" in str(e.value)
    cols = _table(12)
    cols["final_loss"][4] = -2.0
    with pytest.raises(DataError) as e:
        ChinchillaLaw().fit(load_runs(cols))
    assert "'final_loss'" in str(e.value) and "diverged run has no usable loss" in str(e.value)
    # arrays: the target is named loss, never the internal L
    c = _table(12)
    with pytest.raises(DataError) as e:
        ChinchillaLaw().fit(c["params"], -c["tokens"], c["final_loss"])
    assert str(e.value).startswith("D has") and "token count is positive" in str(e.value)
    assert "diverged" not in str(e.value)
    y = c["final_loss"].copy()
    y[0] = np.nan
    with pytest.raises(DataError, match=r"^loss has NaN.*diverged run has no usable loss"):
        ChinchillaLaw().fit(c["params"], c["tokens"], y)


def test_messages_name_the_loss_column_as_the_user_does():
    with pytest.raises(DataError, match=r"'my_loss' \(mapped to loss\) is not in"):
        load_runs(_table(), loss="my_loss")
    with pytest.raises(DataError, match="no column for 'loss'"):
        Runs({"N": np.array([1e8, 2e8])}).column("L")


def test_argument_spellings_follow_the_caller():
    """The library names its argument (n_convention=), the CLI its flag (--n-convention)."""
    assert any("pass n_convention=" in n for n in load_runs(_table()).notes)
    cli = load_runs(_table(), spellings={"n_convention": "--n-convention"})
    assert any("pass --n-convention)" in n for n in cli.notes)
    assert not any("n_convention=" in n for n in cli.notes)
    with pytest.raises(ConfigError, match=r"\(--n-convention\) \(got 'bogus'\)"):
        load_runs(_table(), n_convention="bogus", spellings={"n_convention": "--n-convention"})


def test_non_numeric_cells_are_named(tmp_path):
    p = tmp_path / "runs.csv"
    p.write_text("N,D,loss\n1e8,1e9,3.0\n2e8,abc,2.9\n")
    with pytest.raises(DataError, match=r"'D' has non-numbers at CSV lines 3"):
        load_runs(p)


def test_too_few_points_and_single_model_size():
    c = _table(5)
    with pytest.raises(DataError, match="too few points to fit 5 parameters"):
        ChinchillaLaw().fit(c["params"], c["tokens"], c["final_loss"])
    c = _table(30)
    n_one = np.full(30, 1e9)
    with pytest.raises(DataError, match=r"at least 3 distinct values of N.*several model sizes"):
        ChinchillaLaw().fit(n_one, c["tokens"], c["final_loss"])


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_runs(tmp_path / "nope.csv")
    p = tmp_path / "runs.xlsx"
    p.write_text("x")
    with pytest.raises(DataError, match=r"\.csv, \.tsv, \.parquet"):
        load_runs(p)
    p = tmp_path / "runs.json"
    p.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_runs(p)
    p = tmp_path / "short.csv"
    p.write_text("N,D,loss\n1,2\n")
    with pytest.raises(DataError, match="line 2 has 2 fields"):
        load_runs(p)


def test_damaged_json_jsonl_and_parquet_files_are_named(tmp_path):
    # each of these used to end in a traceback (ragged columns, a cut Parquet file) or blame line 1
    rows = [{"params": 1e6 * (i + 1), "tokens": 2e7, "loss": 3.0 - 0.1 * i} for i in range(6)]
    p = tmp_path / "runs.jsonl"
    p.write_text("\n".join([*(json.dumps(r) for r in rows[:4]), '{"params": 5e6, "tokens": ', json.dumps(rows[5])]))
    with pytest.raises(DataError, match=r"runs.jsonl is not valid JSON \(.*line 5\)"):
        load_runs(p)
    p = tmp_path / "cols.json"
    p.write_text(json.dumps({"params": [1e6, 2e6, 3e6], "tokens": [1e7, 2e7], "loss": [3.0, 2.9, 2.8]}))
    with pytest.raises(DataError, match=r"columns of .*cols.json differ in length \(got \{'params': 3, 'tokens': 2"):
        load_runs(p)
    with pytest.raises(DataError, match="differ in length"):
        load_runs({"params": np.array([1e6, 2e6]), "tokens": np.array([1e7]), "loss": np.array([3.0, 2.9])})
    pytest.importorskip("pyarrow")
    import pandas as pd

    good = tmp_path / "runs.parquet"
    pd.DataFrame(rows).to_parquet(good)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataError, match=r"cut.parquet is not a readable Parquet file.*written completely"):
        load_runs(cut)
    assert len(load_runs(good)) == 6


def test_bad_options():
    c = _table(30)
    with pytest.raises(ConfigError, match="unknown loss"):
        ChinchillaLaw(loss="l1").fit(c["params"], c["tokens"], c["final_loss"])
    with pytest.raises(ConfigError, match="level"):
        ChinchillaLaw(level=95).fit(c["params"], c["tokens"], c["final_loss"])
    with pytest.raises(DataError, match="differ in length"):
        ChinchillaLaw().fit(c["params"][:-1], c["tokens"], y=c["final_loss"][:-1][:-1])
    with pytest.raises(ConfigError, match="N convention"):
        load_runs(c, n_convention="embedding")


@pytest.mark.parametrize(("option", "value", "match"), [
    ("n_bootstrap", "x", r"n_bootstrap must be a whole number >= 0 \(got 'x'\)"),
    ("n_bootstrap", 2.5, r"n_bootstrap must be a whole number >= 0 \(got 2.5\)"),
    ("n_bootstrap", float("inf"), "n_bootstrap must be a whole number"),
    ("random_state", "x", r"random_state must be None, a non-negative int seed or a numpy Generator \(got 'x'\)"),
    ("random_state", -1, r"random_state must be .* \(got -1\)"),
])
def test_bad_bootstrap_options_are_config_errors(option, value, match):
    # n_bootstrap="x" raised int()'s ValueError and random_state="x" numpy's TypeError, from deep in fit
    c = _table(30)
    with pytest.raises(ConfigError, match=match):
        ChinchillaLaw(**{option: value}).fit(c["params"], c["tokens"], c["final_loss"])


def test_predicting_at_arrays_that_do_not_broadcast_names_the_covariates():
    law = ChinchillaLaw.preset("besiroglu2024")
    with pytest.raises(DataError, match=r"covariate arrays differ in length.*\{'N': \(2,\), 'D': \(3,\)\}"):
        law.predict([1e9, 2e9], [1e10, 2e10, 3e10])
    assert law.predict([1e9, 2e9], 1e10).shape == (2,)


def test_save_load_roundtrip(tmp_path):
    c = _table(40)
    law = ChinchillaLaw(init="coarse", n_bootstrap=20, random_state=1).fit(c["params"], c["tokens"], c["final_loss"])
    path = law.save(tmp_path / "fit.json")
    from scalelab.laws import load_fit

    back = load_fit(path)
    np.testing.assert_allclose(back.predict(1e9, 2e10), law.predict(1e9, 2e10))
    np.testing.assert_allclose(back.predict_interval(1e9, 2e10), law.predict_interval(1e9, 2e10))
    assert back.data_hash_ == law.data_hash_
    d = json.loads(path.read_text())
    assert d["scalelab_version"] and d["options"]["n_bootstrap"] == 20 and d["config_hash"]
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="not a saved fit"):
        load_fit(tmp_path / "junk.json")


def test_saved_fit_readers_share_one_reader_and_its_errors(tmp_path):
    # load_fit and load_hyperparam_fit read through scalelab.laws.io.read_saved: a missing file names its
    # path, a file that is not JSON names the file, the JSON error and each reader's own fix
    from scalelab.laws import load_fit
    from scalelab.laws.hpfit import load_hyperparam_fit

    bad = tmp_path / "bad.json"
    bad.write_text('{"law": ')
    with pytest.raises(DataError, match=r"bad.json is not a saved fit \(invalid JSON: .* line 1\).*law.save\(\)"):
        load_fit(bad)
    with pytest.raises(DataError, match=r"bad.json is not a saved fit \(invalid JSON.*--law hyperparams"):
        load_hyperparam_fit(bad)
    for reader in (load_fit, load_hyperparam_fit):
        with pytest.raises(FileNotFoundError) as e:
            reader(tmp_path / "missing.json")
        assert e.value.filename == str(tmp_path / "missing.json")
    (tmp_path / "fit.json").write_text('{"law": "chinchilla", "params": {}}')
    with pytest.raises(ConfigError, match="not a hyperparameter fit"):
        load_hyperparam_fit(tmp_path / "fit.json")


def test_token_multiplier_derived_for_laws_in_m():
    r = load_runs({"N": [1e8, 2e8], "D": [2e9, 8e9], "loss": [3.0, 2.8]})
    np.testing.assert_allclose(r.column("M"), [20.0, 40.0])


def _with_undertrained(seed: int = 0) -> dict[str, np.ndarray]:
    """30 runs at 5-80 tokens per parameter, then three at 0.05-0.5 with early-training losses (Porian-like)."""
    rng = np.random.default_rng(seed)
    N = np.repeat([2e7, 5e7, 1e8, 2e8, 4e8], 6)
    D = N * np.tile([5.0, 10.0, 20.0, 40.0, 60.0, 80.0], 5)
    y = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(0.003 * rng.standard_normal(N.size))
    Nu = np.array([2e8, 4e8, 8e8])
    return {"params": np.concatenate([N, Nu]), "tokens": np.concatenate([D, Nu * np.array([0.5, 0.2, 0.05])]),
            "final_loss": np.concatenate([y, [6.0, 7.5, 9.0]])}


def test_runs_below_one_token_per_param_are_named_then_dropped_on_request():
    cols = _with_undertrained()
    kept = load_runs(cols, n="params", d="tokens", loss="final_loss")
    assert len(kept) == 33
    note = next(n for n in kept.notes if "fewer tokens than parameters" in n)
    assert note.startswith("3 run(s)") and "30, 31, 32" in note       # the rows, as the table numbers them
    assert "min_tokens_per_param=1" in note                        # says how to drop them
    runs = load_runs(cols, n="params", d="tokens", loss="final_loss", min_tokens_per_param=1)
    assert len(runs) == 30 and np.all(runs.column("D") / runs.column("N") >= 1)
    assert not any("fewer tokens than parameters" in n for n in runs.notes)
    assert any(n.startswith("dropped 3 run(s) below 1 token(s) per parameter") for n in runs.notes)
    # the same runs in another order: the same runs are dropped
    order = np.random.default_rng(1).permutation(33)
    shuffled = load_runs({k: v[order] for k, v in cols.items()}, n="params", d="tokens", loss="final_loss",
                         min_tokens_per_param=1)
    assert sorted(shuffled.column("L")) == sorted(runs.column("L"))
    # a higher minimum drops more; the threshold is D/N itself, not a count
    assert len(load_runs(cols, n="params", d="tokens", loss="final_loss", min_tokens_per_param=40)) < 30


def test_min_tokens_per_param_needs_tokens_and_a_positive_value():
    cols = _with_undertrained()
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(DataError, match="must be a positive number"):
            load_runs(cols, n="params", d="tokens", loss="final_loss", min_tokens_per_param=bad)
    with pytest.raises(DataError, match="every run is below"):
        load_runs(cols, n="params", d="tokens", loss="final_loss", min_tokens_per_param=1e6)
    with pytest.raises(DataError, match="needs both N and D"):
        load_runs({"C": cols["params"] * 6, "final_loss": cols["final_loss"]}, loss="final_loss",
                  min_tokens_per_param=1)
    # the CLI's spelling in its messages
    with pytest.raises(DataError, match="--min-tokens-per-param must"):
        load_runs(cols, n="params", d="tokens", loss="final_loss", min_tokens_per_param=0,
                  spellings={"min_tokens_per_param": "--min-tokens-per-param "})


def test_a_saved_fit_given_as_runs_says_what_it_is(tmp_path):
    # `scalelab fit fit.json` (the fit's own --out file) said its columns cov_theta and residuals differ in length
    c = _table(30)
    path = ChinchillaLaw(init="coarse").fit(c["params"], c["tokens"], c["final_loss"]).save(tmp_path / "fit.json")
    with pytest.raises(DataError, match=r"fit.json is a saved fit \(of the chinchilla law\), not a table of runs"):
        load_runs(path)


def test_one_column_mapped_to_two_quantities_is_named():
    # n="params", d="params" fitted N against itself without a word (every parameter ended on a bound)
    c = _table(30)
    with pytest.raises(DataError, match=r"column 'params' is mapped to N and D"):
        load_runs(c, n="params", d="params", loss="final_loss")
