"""The report tests' fixture: the demo report written from a real fit (see :mod:`.synthetic`)."""

from __future__ import annotations

from typing import Any

import pytest

from .synthetic import fitted_result


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> tuple[Any, Any]:
    """The demo report written from :func:`fitted_result`, its store in a home folder of its own:
    ``(path, store_path)``."""
    pytest.importorskip("matplotlib")
    from scalelab.report.demo_report import write_demo_report

    home = tmp_path_factory.mktemp("home")
    store = home / ".scalelab" / "runs.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        result, law = fitted_result(str(store))
        path = write_demo_report(result, law, tmp_path_factory.mktemp("report") / "report.html")
    return path, store
