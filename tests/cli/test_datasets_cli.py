"""`scalelab datasets`: the list (human and JSON), one table's page, export by suffix, and the errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from scalelab.cli.app import app, main
from scalelab.datasets import get_dataset, list_datasets

runner = CliRunner()


def test_list_json_has_every_table_with_rows_licence_and_citation(cli_json):
    rows = cli_json(["datasets", "--format", "json"])
    assert [r["name"] for r in rows] == [d.name for d in list_datasets()]
    by_name = {r["name"]: r for r in rows}
    assert by_name["porian2024"]["rows"] == 1745 and by_name["porian2024"]["licence"] == "MIT"
    assert by_name["muennighoff2023"]["licence"] == "Apache-2.0"
    assert "arXiv:2305.16264" in by_name["muennighoff2023"]["citation"]
    assert by_name["gadre2024"]["law_columns"]["L"] == "loss_c4_val"


def test_list_table_shows_names_rows_and_licences():
    r = runner.invoke(app, ["datasets"], env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    for text in ("gadre2024", "regmix-1b-configs", "chinchilla-package-example", "1,745", "Apache-2.0"):
        assert text in r.stdout


def test_show_gives_columns_and_provenance(cli_json):
    d = cli_json(["datasets", "show", "muennighoff2023", "-f", "json"])
    assert d["rows"] == 182 and d["columns"]["unique_tokens"].startswith("U_D")
    assert "13701315b163f1c54642b94ad237b2699187c3ee" in d["source"]
    human = runner.invoke(app, ["datasets", "show", "chinchilla-table-a9"], env={"COLUMNS": "160"})
    assert human.exit_code == 0 and "kv_size" in human.stdout and "MIT" in human.stdout


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet"])
def test_export_by_suffix(tmp_path, suffix, cli_json):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow", reason="Parquet export needs the data extra (pandas, pyarrow)")
    out = tmp_path / f"t{suffix}"
    d = cli_json(["datasets", "export", "regmix-1b-test", str(out), "--format", "json"])
    assert out.is_file() and d["rows"] == 64 and d["path"] == str(out) and d["licence"] == "MIT"
    assert d["licence_file"].endswith("LICENSE")
    if suffix == ".json":
        records = json.loads(out.read_text())
        assert len(records) == 64 and records[0]["index"] == 0


def test_export_human_reminds_of_the_licence(tmp_path):
    out = tmp_path / "a9.csv"
    r = runner.invoke(app, ["datasets", "export", "chinchilla-table-a9", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text().splitlines()[0] == ",".join(get_dataset("chinchilla-table-a9").data)
    assert "licence MIT" in " ".join(r.stderr.split())


@pytest.mark.parametrize("args, heading, fragment", [
    (["datasets", "export", "gadre2024", "OUT.xlsx"], "Invalid configuration", ".csv, .json, .parquet"),
    (["datasets", "export", "gadre", "out.csv"], "Unknown name", "did you mean 'gadre2024'"),
    (["datasets", "show", "porian"], "Unknown name", "did you mean"),
])
def test_errors_exit_1_with_what_is_allowed(args, heading, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCALELAB_DEBUG", raising=False)
    assert main(args) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert heading in err and fragment in err
    assert not list(tmp_path.iterdir())  # nothing written
