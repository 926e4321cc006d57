"""Issue 12: a property test over the fit table reader (`load_runs` and `scalelab fit FILE.csv`).

Arbitrary numeric tables (NaN, inf, negatives, zero, huge, empty, one row, every row duplicated) give
either a fit or one clear error: exit 0 or 1, never a traceback, and no inf or NaN in the JSON output.
"""

from __future__ import annotations

import json
import math
import warnings

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scalelab.cli.app import main
from scalelab.errors import ScalelabError
from scalelab.laws import load_runs

_value = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -1.0, 1e6, 1e8, 1e9, 1e11, 2.5, 3.1, 1e400, -0.0]),
    st.floats(min_value=1e6, max_value=1e10), st.floats(min_value=1.5, max_value=5.0),
)
_row = st.tuples(_value, _value, _value)
_table = st.tuples(st.lists(_row, min_size=0, max_size=10), st.booleans())
#: A table that fits, so the property also covers the success path's output, and its every row copied.
_GOOD = [(1e6, 2e9, 3.1), (2e6, 4e9, 3.0), (4e6, 8e9, 2.9), (8e6, 1.6e10, 2.8), (1.6e7, 3.2e10, 2.7),
         (3.2e7, 6.4e10, 2.6), (1e6, 4e9, 3.0), (2e6, 8e9, 2.9)]


def _csv(rows: list[tuple[float, float, float]], duplicate: bool) -> str:
    rows = rows + rows if duplicate else rows
    return "params,tokens,loss\n" + "".join(f"{n!r},{d!r},{y!r}\n" for n, d, y in rows)


def _no_nonfinite(text: str) -> object:
    def refuse(name: str) -> object:
        raise AssertionError(f"JSON holds {name}")

    return json.loads(text, parse_constant=refuse)


def _finite_everywhere(obj: object) -> None:
    if isinstance(obj, float):
        assert math.isfinite(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _finite_everywhere(v)
    elif isinstance(obj, list):
        for v in obj:
            _finite_everywhere(v)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=_table)
def test_load_runs_reads_any_numeric_table_or_says_why(table, tmp_path_factory):
    rows, duplicate = table
    path = tmp_path_factory.mktemp("t") / "runs.csv"
    path.write_text(_csv(rows, duplicate))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no numpy overflow noise on the user's screen
            runs = load_runs(path)
    except ScalelabError as e:
        msg = str(e)   # one clear line: what was wrong, then how to fix it; numbers, not numpy reprs
        assert "Fix:" in msg and msg.count("Fix:") == 1 and "array(" not in msg and "\n" not in msg.strip()
        return
    assert len(runs) == len(rows) * (2 if duplicate else 1)
    json.dumps(runs.to_dict(), allow_nan=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=_table)
@example(table=(_GOOD, False))
@example(table=(_GOOD, True))
@example(table=(_GOOD[:1], False))
@example(table=([], False))
def test_fit_on_any_numeric_table_exits_cleanly_with_finite_output(table, tmp_path_factory, capsys, monkeypatch):
    rows, duplicate = table
    path = tmp_path_factory.mktemp("t") / "runs.csv"
    path.write_text(_csv(rows, duplicate))
    monkeypatch.delenv("SCALELAB_DEBUG", raising=False)
    code = main(["fit", str(path), "--init", "coarse", "--format", "json"])
    out = capsys.readouterr()
    assert code in (0, 1), out.err
    assert "Traceback" not in out.err and "Traceback" not in out.out
    if table == (_GOOD, False):
        assert code == 0, out.err
    if code == 0:
        _finite_everywhere(_no_nonfinite(out.out))
    else:
        assert out.out == "" and out.err.strip()
