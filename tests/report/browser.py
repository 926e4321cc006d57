"""Headless Chromium from the system's package (Debian's ``chromium`` and ``chromium-driver``), driven
by Selenium, for the HTML report's browser test and for the screenshots in docs/img.

Nothing is downloaded: the browser and its driver are the installed binaries (``$SCALELAB_CHROMIUM`` and
``$SCALELAB_CHROMEDRIVER`` override the paths), and Chromium starts with the background services that
would try the network switched off, in a fresh profile.

Screenshots of a report, as in docs/img::

    python tests/report/browser.py scalelab-report.html docs/img
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The two widths the report is checked at: a phone (CSS px, laid out as a mobile viewport) and a desktop.
PHONE, DESKTOP = 390, 1400
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def _which(env: str, names: tuple[str, ...]) -> str | None:
    if os.environ.get(env):
        given = os.environ[env]
        return given if os.path.isfile(given) and os.access(given, os.X_OK) else None
    for n in names:
        found = shutil.which(n)
        if found:
            return found
    return None


def missing() -> str | None:
    """Why the browser test cannot run here (``None`` when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the `test` extra: pip install 'scalelab[test]')"
    for env in ("SCALELAB_CHROMIUM", "SCALELAB_CHROMEDRIVER"):
        if os.environ.get(env) and _which(env, ()) is None:
            return f"{env}={os.environ[env]} is not an executable file"
    if _which("SCALELAB_CHROMIUM", ("chromium", "chromium-browser")) is None:
        return ("no Chromium installed (Debian: apt-get install chromium chromium-driver; or set "
                "SCALELAB_CHROMIUM)")
    if _which("SCALELAB_CHROMEDRIVER", ("chromedriver",)) is None:
        return "no chromedriver installed (Debian: apt-get install chromium-driver; or set SCALELAB_CHROMEDRIVER)"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile, quit (and the profile removed) on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = _which("SCALELAB_CHROMIUM", ("chromium", "chromium-browser"))
    driver_bin = _which("SCALELAB_CHROMEDRIVER", ("chromedriver",))
    assert browser and driver_bin, missing()
    with tempfile.TemporaryDirectory(prefix="scalelab-chromium-") as profile:
        opts = webdriver.ChromeOptions()
        opts.binary_location = browser
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            opts.add_argument(flag)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=opts, service=Service(driver_bin))
        try:
            yield driver
        finally:
            driver.quit()


def open_at(driver: Any, path: str | Path, width: int, height: int = 900) -> None:
    """Load the file at ``path`` in a viewport ``width`` CSS px wide; below 700 px as a phone (a mobile
    viewport, where a page without a viewport tag is laid out 980 px wide and shrunk)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700})
    driver.get(Path(path).resolve().as_uri())


#: What the page looks like to the checks: viewport and document widths, and per image its natural and
#: shown width, whether the wide drawing was chosen, and its smallest text on screen (CSS px).
_MEASURE = """
const imgs = Array.from(document.images).map(i => {
  const wide = i.currentSrc === i.src, k = wide ? 0 : 1;
  const pt = (i.dataset.textPt || '').split(' ').map(Number), dpi = (i.dataset.dpi || '').split(' ').map(Number);
  return {complete: i.complete, natural: i.naturalWidth, shown: i.clientWidth, wide: wide,
          text_px: pt[k] / 72 * dpi[k] * i.clientWidth / i.naturalWidth};
});
return {inner: window.innerWidth, scroll: document.documentElement.scrollWidth,
        height: document.documentElement.scrollHeight, images: imgs};
"""


def measure(driver: Any) -> dict[str, Any]:
    return dict(driver.execute_script(_MEASURE))


def console_errors(driver: Any) -> list[dict[str, Any]]:
    """Console errors and failed loads since the last call (Chromium reports both as SEVERE)."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def full_page_screenshot(driver: Any, width: int, out: str | Path) -> Path:
    """Stretch the viewport to the whole page and save it as PNG (the page keeps its layout width)."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out))
    return out


def shrink(png: Path) -> None:
    """Reduce a screenshot to 256 colours (about a third of the bytes) for the docs, when Pillow is there."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(png) as im:
        q = im.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    q.save(png, optimize=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    report, outdir = Path(argv[0]), Path(argv[1])
    reason = missing()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    with chromium() as driver:
        for width in (PHONE, DESKTOP):
            open_at(driver, report, width)
            print(width, measure(driver), console_errors(driver))
            shot = full_page_screenshot(driver, width, outdir / f"report-{width}.png")
            shrink(shot)
            print(shot)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
