"""Each row of the CLI's exception -> message table gives exit code 1, a heading and the message;
tracebacks only with SCALELAB_DEBUG=1."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from scalelab import errors
from scalelab.arch import ModelSpec
from scalelab.cli import _errors


def _validation_error() -> ValidationError:
    try:
        ModelSpec(n_layers=-1, d_model=64, n_heads=4, d_ff=256, vocab_size=256)
    except ValidationError as e:
        return e
    raise AssertionError("ModelSpec accepted n_layers=-1")


CASES = [
    (errors.UnknownNameError("gpu", "h1000", ["h100-sxm", "h200"]), "Unknown name", "h100-sxm"),
    (errors.LayoutError("tp=3 does not divide n_heads=32"), "Impossible layout", "tp=3"),
    (errors.ConfigError("bad value"), "Invalid configuration", "bad value"),
    (errors.DataError("rows 3, 7 have NaN loss"), "Unusable data", "rows 3, 7"),
    (errors.NotFittedError("call fit first"), "Law not fitted", "call fit first"),
    (errors.FitError("every start failed"), "Fit failed", "every start failed"),
    (errors.StoreLockedError("locked by pid 12"), "Run store is locked", "pid 12"),
    (errors.SchemaVersionError("schema 9 > 1"), "newer scalelab", "schema 9"),
    (errors.StoreError("cannot open"), "Run store error", "cannot open"),
    (errors.CorpusError("empty corpus"), "Corpus error", "empty corpus"),
    (errors.MissingDependencyError("torch", "tunnel"), "Missing optional dependency", "scalelab[tunnel]"),
    (_validation_error(), "Invalid configuration", "n_layers"),
    (FileNotFoundError(2, "No such file", "runs.csv"), "File not found", "runs.csv"),
    (IsADirectoryError(21, "Is a directory", "runs/"), "Expected a file", "Is a directory"),
    (PermissionError("denied"), "Permission denied", "denied"),
    (errors.ScalelabError("generic"), "Error", "generic"),
]


@pytest.mark.parametrize("exc, heading, fragment", CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_each_row_gives_exit_1_and_clear_message(exc, heading, fragment, capsys, monkeypatch):
    monkeypatch.delenv("SCALELAB_DEBUG", raising=False)
    assert _errors.handle(exc) == 1
    err = capsys.readouterr().err
    assert heading in err and fragment in err
    assert "Traceback" not in err and "SCALELAB_DEBUG=1" in err


def test_every_table_row_is_exercised():
    covered = {type(c[0]) for c in CASES}
    for typ, _ in _errors.ERROR_TABLE:
        assert any(issubclass(c, typ) for c in covered), f"no test case for {typ.__name__}"


def test_debug_shows_traceback(capsys, monkeypatch):
    monkeypatch.setenv("SCALELAB_DEBUG", "1")
    try:
        raise errors.ConfigError("boom")
    except errors.ConfigError as e:
        assert _errors.handle(e) == 1
    assert "Traceback" in capsys.readouterr().err


def test_unexpected_errors_are_not_swallowed():
    with pytest.raises(ZeroDivisionError):
        _errors.handle(ZeroDivisionError("bug"))


def test_a_missing_folder_is_named_as_a_folder(tmp_path, capsys, monkeypatch):
    # an output path in a folder that does not exist used to read "no such file: OUT", sending users to look
    # for a file they meant to create
    monkeypatch.delenv("SCALELAB_DEBUG", raising=False)
    out = tmp_path / "missing" / "run.toml"
    assert _errors.handle(FileNotFoundError(2, "No such file or directory", str(out))) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"no such folder: {out.parent}" in err and "mkdir -p" in err
    assert _errors.handle(FileNotFoundError(2, "No such file or directory", str(tmp_path / "runs.csv"))) == 1
    assert "no such file:" in " ".join(capsys.readouterr().err.split())
