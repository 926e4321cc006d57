"""The published run tables shipped in ``scalelab.datasets``: row counts and values as the sources'
PROVENANCE.md give them (shared/anchors/<folder>/PROVENANCE.md), every column documented, the licence and
attribution beside every data folder, the files declared as package data, and export round trips."""

from __future__ import annotations

import csv
import fnmatch
import json
import math
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from scalelab import datasets as sd
from scalelab.errors import ConfigError, MissingDependencyError, UnknownNameError

ROOT = Path(__file__).resolve().parents[2]

# name -> (loader call, rows as PROVENANCE.md counts them, columns the tests and the laws rely on)
EXPECTED = {
    "gadre2024": (lambda: sd.load_gadre2024(), 104,
                  ("dataset_name", "model", "params", "tokens", "chinchilla_multiplier", "loss_c4_val", "acc_mmlu")),
    "gadre2024-grid": (lambda: sd.load_gadre2024(table="grid"), 435, ("width", "layers", "tokens", "loss")),
    "porian2024": (lambda: sd.load_porian2024(), 1745, ("label", "dataset", "param_count", "flops", "n", "t", "loss")),
    "porian2024-optimal-pairs": (lambda: sd.load_porian2024(table="optimal_pairs"), 177,
                                 ("flops", "n_star", "t_star", "loss_star", "n_star_std")),
    "porian2024-exponents": (lambda: sd.load_porian2024(table="exponents"), 15,
                             ("label", "a_n_exponent_bs_median_weighted", "a_CI95_low", "a_CI95_high")),
    "muennighoff2023": (lambda: sd.load_muennighoff2023(), 182, ("params", "tokens", "unique_tokens", "val_loss")),
    "muennighoff2023-all": (lambda: sd.load_muennighoff2023(table="all"), 296,
                            ("run_key", "params", "tokens", "unique_tokens", "epochs", "val_loss")),
    "regmix-1m-train": (lambda: sd.load_regmix(), 512, ("index", "train_the_pile_pile_cc",
                                                        "metric/the_pile_pile_cc_val_loss")),
    "regmix-1m-test": (lambda: sd.load_regmix("1m", "test"), 256, ("index", "train_the_pile_arxiv")),
    "regmix-60m-test": (lambda: sd.load_regmix(scale="60m", split="test"), 256, ("index", "train_the_pile_arxiv")),
    "regmix-1b-test": (lambda: sd.load_regmix(scale="1B", split="test"), 64, ("index", "train_the_pile_github")),
    "regmix-1b-configs": (lambda: sd.load_regmix_configs(), 4, ("name", "train_the_pile_pile_cc")),
    "chinchilla-table3": (lambda: sd.load_chinchilla_table3(), 9, ("params", "tokens_approach1", "tokens_approach2")),
    "chinchilla-table-a9": (lambda: sd.load_chinchilla_table_a9(), 50,
                            ("params_reported", "d_model", "ffw_size", "kv_size", "n_heads", "n_layers")),
    "chinchilla-package-example": (lambda: sd.load_chinchilla_package_example(), 234, ("C", "N", "D", "loss")),
}


def test_registry_is_exactly_the_expected_tables():
    assert [d.name for d in sd.list_datasets()] == list(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_loader_rows_columns_and_metadata(name):
    load, rows, needed = EXPECTED[name]
    ds = load()
    assert ds.name == name and len(ds) == rows
    assert all(a.shape == (rows,) for a in ds.data.values())
    assert set(needed) <= set(ds.data)
    # every column is documented; metadata is filled and names a real commit
    assert ds.columns.keys() == ds.data.keys()
    assert all(ds.columns.values()), [c for c, d in ds.columns.items() if not d]
    assert ds.title and ds.description and ds.citation and ds.short_citation
    assert ds.licence in ("MIT", "Apache-2.0")
    assert re.match(r"https://github\.com/[\w.-]+/[\w.-]+ @ [0-9a-f]{40}", ds.source)
    assert set(ds.law_columns.values()) <= set(ds.data)
    assert set(ds.feature_names) | set(ds.target_names) <= set(ds.data)
    assert ds.loader.startswith("load_")
    # get_dataset gives the same table
    again = sd.get_dataset(name)
    for col, arr in ds.data.items():
        np.testing.assert_array_equal(again.data[col], arr)


@pytest.mark.parametrize("info", sd.list_datasets(), ids=lambda d: d.name)
def test_licence_and_attribution_beside_the_data(info):
    licence = info.licence_file.read_text(encoding="utf-8")
    notice = info.notice_file.read_text(encoding="utf-8")
    if info.licence == "MIT":
        assert licence.startswith("MIT License") and "Copyright (c) " in licence
        assert "Permission is hereby granted, free of charge" in licence
    else:
        assert "Apache License" in licence and "Version 2.0, January 2004" in licence
        assert "END OF TERMS AND CONDITIONS" in licence
    repo, commit = re.match(r"(https://github\.com/\S+) @ ([0-9a-f]{40})", info.source).groups()
    assert repo in notice and commit in notice
    for f in info.files:
        assert f in notice, f"{f} is not named in {info.folder}/NOTICE"


def test_every_shipped_file_is_loaded_and_declared_as_package_data():
    data = resources.files("scalelab.datasets") / "data"
    used = {f"{d.folder}/{f}" for d in sd.list_datasets() for f in d.files}
    shipped: set[str] = set()
    for folder in data.iterdir():
        if not folder.is_dir() or folder.name.startswith("__"):
            continue
        names = {f.name for f in folder.iterdir()}
        assert {"LICENSE", "NOTICE", "tables.toml"} <= names, folder.name
        shipped |= {f"{folder.name}/{n}" for n in names if n.endswith(".csv")}
    assert shipped == used  # no unused copy of anyone's data, no table without its file
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["scalelab"]
    beside = ("LICENSE", "NOTICE", "tables.toml")
    for rel in sorted(shipped) + [f"{f}/{n}" for f in {u.split('/')[0] for u in used} for n in beside]:
        path = f"datasets/data/{rel}"
        assert any(fnmatch.fnmatch(path, p) for p in patterns), f"{path} would not ship in the wheel"


def test_values_match_provenance():
    # resolving-scaling-law-discrepancies/PROVENANCE.md: RefinedWeb, "Reproducing Kaplan et al.", a = 0.8353
    ex = sd.load_porian2024("exponents").data
    i = int(np.flatnonzero((ex["label"] == "Reproducing Kaplan et al.") & (ex["dataset"] == "rw"))[0])
    assert ex["a_n_exponent_bs_median_weighted"][i] == pytest.approx(0.8353, abs=1e-4)
    iso = sd.load_porian2024().data
    assert iso["flops"].min() == pytest.approx(1.25e16) and iso["flops"].max() == pytest.approx(2.56e19)
    assert int(np.isnan(sd.load_porian2024("optimal_pairs").data["n_star"]).sum()) == 4
    # datablations/PROVENANCE.md: N 7.1e6-8.67e9 in 20 sizes, epochs 1-9000, seed replicates present
    allr = sd.load_muennighoff2023("all").data
    assert allr["params"].min() == pytest.approx(7.1e6, rel=1e-3) and allr["params"].max() == pytest.approx(8.67e9)
    assert np.unique(allr["params"]).size == 20 and allr["epochs"].max() == pytest.approx(9000)
    assert "2b855b11bc4seed1" in set(allr["run_key"].tolist())
    fit = sd.load_muennighoff2023().data
    np.testing.assert_allclose(fit["epochs"], fit["tokens"] / fit["unique_tokens"], rtol=1e-9)
    # mlfoundations-scaling/PROVENANCE.md: the 4 small shapes, the 1.4B and the 6.9B model, 3 corpora
    g = sd.load_gadre2024().data
    assert set(np.unique(g["params"]).tolist()) == {10_569_312, 78_914_048, 153_677_376, 411_616_256,
                                                    1_439_795_200, 6_889_410_560}
    assert set(g["dataset_name"].tolist()) == {"c4_original", "rpj", "rw_original"}
    assert int(np.isnan(g["seed"]).sum()) == 92
    # regmix/PROVENANCE.md: regmix.yaml's optimum puts 0.8701 on pile_cc; 1B ids are 0-63
    cfg = sd.load_regmix_configs()
    assert cfg.data["name"].tolist() == ["human", "doremi", "pile_cc_only", "regmix"]
    assert cfg.data["train_the_pile_pile_cc"][3] == pytest.approx(0.8701, abs=1e-4)
    assert sd.load_regmix("1b", "test").data["index"].tolist() == list(range(64))
    train = sd.load_regmix()
    np.testing.assert_allclose(np.column_stack([train.data[c] for c in train.feature_names]).sum(axis=1), 1, atol=0.01)
    assert len(train.feature_names) == 17 and len(train.target_names) == 13  # issue #4: 13 domains logged
    assert cfg.feature_names == train.feature_names and cfg.target_names == []
    # nanogpt/PROVENANCE.md: Table A9 spans 44M-16.183B; Table 3 starts at 400M params, 8.0B tokens
    a9 = sd.load_chinchilla_table_a9().data["params_reported"]
    assert a9.min() == pytest.approx(44e6) and a9.max() == pytest.approx(16.183e9)
    t3 = sd.load_chinchilla_table3().data
    assert (t3["params"][0], t3["tokens_approach1"][0]) == (4e8, 8e9)
    # chinchilla-kyo-takano/PROVENANCE.md: loss 2.077-3.406, D = C / (6 N)
    ex2 = sd.load_chinchilla_package_example().data
    assert ex2["loss"].min() == pytest.approx(2.077, abs=1e-3) and ex2["loss"].max() == pytest.approx(3.406, abs=1e-3)
    np.testing.assert_allclose(ex2["D"], ex2["C"] / (6 * ex2["N"]), rtol=1e-6)


@pytest.mark.parametrize("name", [n for n in EXPECTED if "L" in sd.get_dataset(n).law_columns])
def test_law_columns_feed_load_runs(name):
    from scalelab.laws import load_runs

    ds = sd.get_dataset(name)
    runs = load_runs(ds.data, columns=ds.law_columns, n_convention=ds.n_convention)
    assert len(runs) == len(ds)
    for canon, col in ds.law_columns.items():
        np.testing.assert_array_equal(runs[canon], ds.data[col].astype(float))


def test_frame_carries_metadata():
    ds = sd.load_muennighoff2023()
    df = ds.frame
    assert df.shape == (182, 8) and df.attrs["licence"] == "Apache-2.0" and df.attrs["citation"] == ds.citation
    df.loc[0, "val_loss"] = -1.0  # a fresh copy: the Dataset is not changed through it
    assert ds.data["val_loss"][0] > 0


def _assert_same_table(back: dict[str, list], ds: sd.Dataset) -> None:
    """``back`` (column -> values read from an export) holds exactly ``ds``'s table; NaN and empty strings
    may come back as None (or NaN), numbers as their text."""
    assert list(back) == list(ds.data)
    for col, arr in ds.data.items():
        got = list(back[col])
        assert len(got) == len(arr), col
        if arr.dtype.kind in "iuf":
            vals = np.array([np.nan if v is None else float(v) for v in got])
            np.testing.assert_array_equal(vals, arr.astype(float), err_msg=col)
        else:
            blank = [("" if v is None or (isinstance(v, float) and math.isnan(v)) else v) for v in got]
            assert blank == arr.tolist(), col


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet"])
@pytest.mark.parametrize("name", ["gadre2024", "porian2024-optimal-pairs", "muennighoff2023", "regmix-1b-test"])
def test_export_round_trip(tmp_path, name, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow", reason="Parquet export needs the data extra (pandas, pyarrow)")
    ds = sd.get_dataset(name)
    out = ds.export(tmp_path / f"{name}{suffix}")
    if suffix == ".csv":
        with out.open(newline="") as fh:  # the csv module: text exactly as written, no parser's rounding
            rows = list(csv.reader(fh))
        back = {c: [r[j] or None for r in rows[1:]] for j, c in enumerate(rows[0])}
    elif suffix == ".json":
        records = json.loads(out.read_text())
        back = {c: [r[c] for r in records] for c in records[0]}
    else:
        import pandas as pd

        df = pd.read_parquet(out)
        back = {c: df[c].tolist() for c in df.columns}
    _assert_same_table(back, ds)


def test_bad_names_and_arguments_say_what_exists(tmp_path):
    with pytest.raises(UnknownNameError, match="did you mean 'regmix-1b-test'"):
        sd.get_dataset("regmix1b")
    with pytest.raises(ConfigError, match="'isoflops', 'optimal_pairs', 'exponents'"):
        sd.load_porian2024(table="pairs")
    with pytest.raises(ConfigError, match="only the 1m scale has a train split"):
        sd.load_regmix("1b", "train")
    out = tmp_path / "t.xlsx"
    with pytest.raises(ConfigError, match=r"\.csv, \.json, \.parquet"):
        sd.load_chinchilla_table3().export(out)
    assert not out.exists()


def test_loading_needs_no_pandas_and_frame_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    ds = sd.load_chinchilla_table_a9()
    assert len(ds) == 50
    with pytest.raises(MissingDependencyError, match=r"scalelab\[data\]"):
        _ = ds.frame


def test_import_stays_light():
    # DESIGN.md: datasets imports nothing above units/errors (and the shared CSV reader, _csv, which sits at
    # their level), and `import scalelab` never imports pandas
    code = ("import sys, scalelab, scalelab.datasets as d; d.load_gadre2024(); "
            "print(sorted(m for m in sys.modules if m.startswith(('scalelab', 'pandas'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(eval(out))
    assert not {m for m in loaded if m.startswith("pandas")}
    assert loaded <= {"scalelab", "scalelab.errors", "scalelab.units", "scalelab._csv", "scalelab.datasets",
                      "scalelab.datasets._dataset", "scalelab.datasets._registry"}, loaded
