"""The one CSV reader (scalelab._csv) that runs, mixtures, curves and the shipped data sets go through."""

from __future__ import annotations

import pytest

from scalelab._csv import read_csv_columns, read_csv_text, to_floats
from scalelab.errors import DataError


def test_names_made_unique_blank_lines_skipped_cells_stripped(tmp_path):
    f = tmp_path / "runs.csv"
    f.write_text("\ufeffN, lr ,lr\n1e6, 3e-4 ,1e-3\n\n2e6,1e-4,2e-3\n", encoding="utf-8")
    cols = read_csv_columns(f)
    assert cols == {"N": ["1e6", "2e6"], "lr": ["3e-4", "1e-4"], "lr.1": ["1e-3", "2e-3"]}
    tsv = tmp_path / "runs.tsv"
    tsv.write_text("a\tb\n1\t2\n")
    assert read_csv_columns(tsv) == {"a": ["1"], "b": ["2"]}


@pytest.mark.parametrize("text, needle", [
    ("", "is empty"),
    ("N,D\n", "has a header but no data rows"),
    ("N,D\n1,2\n3\n4,5,6\n", r"t.csv line 3 has 1 fields, the header has 2 \(and lines \[4\]\)"),
])
def test_malformed_text_is_one_clear_error(text, needle):
    with pytest.raises(DataError, match=needle):
        read_csv_text(text, "t.csv")


def test_a_header_alone_is_accepted_when_asked_and_a_shipped_file_gets_its_own_fix():
    assert read_csv_text("a,b\n", "t.csv", need_rows=False) == {"a": [], "b": []}
    with pytest.raises(DataError, match="reinstall scalelab"):
        read_csv_text("a,b\n1\n", "shipped file x.csv", fix="the file is damaged: reinstall scalelab")


def test_non_utf8_file_and_non_numeric_cells(tmp_path):
    f = tmp_path / "latin.csv"
    f.write_bytes("name,loss\ncaf\xe9,2.0\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not UTF-8 text \(byte 0xe9.*iconv"):
        read_csv_columns(f)
    with pytest.raises(DataError, match="column 'loss', data row 2, is not a number"):
        to_floats(["2.0", "two"], "column 'loss'")
    with pytest.raises(DataError, match="is not finite"):
        to_floats(["inf"], "column 'loss'")


def test_a_bad_value_is_named_truly_when_blank_lines_were_skipped(tmp_path):
    """The runs reader names bad cells by CSV line; after a skipped blank line, counting rows named the
    wrong line, so it names data rows instead."""
    from scalelab.laws import load_runs

    plain, gappy = tmp_path / "plain.csv", tmp_path / "gappy.csv"
    plain.write_text("N,D,loss\n1e6,2e7,3.0\n2e6,4e7,oops\n")
    gappy.write_text("N,D,loss\n1e6,2e7,3.0\n\n2e6,4e7,oops\n")
    with pytest.raises(DataError, match="non-numbers at CSV lines 3"):
        load_runs(plain)
    with pytest.raises(DataError, match=r"non-numbers at data rows \(1-based, blank lines not counted\) 2"):
        load_runs(gappy)


@pytest.mark.parametrize(("text", "needle"), [
    ("params;tokens;loss\n1e6;2e7;3.1\n", "looks separated by ';', not ','"),
    ("params\ttokens\tloss\n1e6\t2e7\t3.1\n", "looks separated by tabs, not ','"),
])
def test_a_file_separated_by_something_else_says_so(text, needle):
    # a spreadsheet's ';' export read as one column "params;tokens;loss", then "no loss column"
    with pytest.raises(DataError, match=needle):
        read_csv_text(text, "runs.csv")
    assert read_csv_text("name\nA;B\n", "x.csv") == {"name": ["A;B"]}  # a ';' in a cell is still a cell
