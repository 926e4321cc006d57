"""The demo report in a real browser: headless Chromium from the system's package (no download), at a
390 px phone and a 1400 px desktop. At each width: no console errors, every image loaded, the page no
wider than the viewport (tables scroll in their own box), laid out at the device width (the viewport
tag), plot text at least 10 CSS px on screen, and a full-page screenshot kept as an artifact in
``$SCALELAB_TEST_ARTIFACTS`` (default: pytest's temporary folder; never the repository).

Slow: building the report (a real fit with 20 bootstrap refits, eight PNGs) and starting Chromium take
about 10 s on 2 busy cores."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from . import browser

pytestmark = pytest.mark.slow

RAW_FIELDS = ("budget_flops", "val_loss", "n_params", "tokens_per_s", "step_time_s", "mfu")
MIN_TEXT_PX = 10.0


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    out = os.environ.get("SCALELAB_TEST_ARTIFACTS")
    return Path(out) if out else tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def driver():
    reason = browser.missing()
    if reason:
        pytest.skip(f"the report's browser test needs headless Chromium: {reason}")
    with browser.chromium() as d:
        yield d


def test_report_names_the_store_from_home_and_uses_words(report_file):
    path, store = report_file
    page = Path(path).read_text()
    assert str(store) not in page and str(store.parent.parent) not in page
    assert "Runs are kept in ~/.scalelab/runs.sqlite" in page
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", page)
    assert heads and not [h for h in heads if h in RAW_FIELDS or "_" in h]
    assert page.count("<picture>") == 4 and "<script" not in page
    assert "http://" not in page and "https://" not in page


@pytest.mark.parametrize("width", [browser.PHONE, browser.DESKTOP])
def test_report_in_chromium(driver, report_file, artifacts, width):
    path, _store = report_file
    browser.console_errors(driver)  # drop anything logged before this page
    browser.open_at(driver, path, width)
    m = browser.measure(driver)
    shot = browser.full_page_screenshot(driver, width, artifacts / f"report-{width}.png")
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 0
    assert browser.console_errors(driver) == []
    assert m["inner"] == width, f"laid out {m['inner']} px wide on a {width} px screen: no viewport tag?"
    assert m["scroll"] <= m["inner"], f"page is {m['scroll']} px wide in a {m['inner']} px viewport"
    assert len(m["images"]) == 4
    for i, img in enumerate(m["images"]):
        assert img["complete"] and img["natural"] > 0, f"image {i} did not render: {img}"
        assert img["shown"] <= width
        assert img["text_px"] >= MIN_TEXT_PX, f"image {i}: smallest text {img['text_px']:.1f} px at {width} px"
        assert img["wide"] == (width == browser.DESKTOP)  # a phone gets the narrow drawing
