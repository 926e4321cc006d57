"""A self-contained HTML report: one file, plots embedded as base64 PNG, no scripts, no server, no internet.

It reads from a 390 px phone to a desktop: a viewport tag, tables that scroll inside their own box, and
every plot drawn twice, wide for desktops and narrow for phones (a ``<picture>`` chooses by the page's
width, so no script is needed), so plot text stays about as large as the page's own small print.

>>> r = HtmlReport("demo")
>>> r.heading("Summary"); r.table([{"run": "a", "loss": 2.5}])
>>> "<table" in r.render()
True
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

#: Pages at most this wide (CSS px) get the narrow drawing of each plot.
NARROW_MAX_PX = 640
#: Dots per inch of the embedded PNGs: wide ones are shown at their natural size on a desktop, narrow
#: ones are scaled down to the phone's width (about 360 CSS px), so they are drawn finer for its screen.
WIDE_DPI, NARROW_DPI = 110, 200
#: matplotlib settings for every plot in a report: no text below 9 pt.
PLOT_RC: dict[str, Any] = {"font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10, "xtick.labelsize": 9,
           "ytick.labelsize": 9, "legend.fontsize": 9, "figure.titlesize": 10.5}

_STYLE = """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:1.5em auto;
padding:0 1em;color:#1d2430;line-height:1.45;overflow-wrap:break-word}
h1{font-size:1.7em;line-height:1.2;border-bottom:2px solid #3b6ea5;padding-bottom:.2em}
h2{font-size:1.25em;margin-top:1.8em;color:#274b73}
.scroll{overflow-x:auto;max-width:100%;margin:.8em 0}
table{border-collapse:collapse;font-size:.92em}
th,td{border:1px solid #c9d3de;padding:.3em .7em;text-align:right;white-space:nowrap}
th{background:#eef3f8}.fields th{font-weight:normal;text-align:left}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figcaption{font-size:.9em;color:#4a5566}
picture{display:block}
img{display:block;max-width:100%;height:auto;border:1px solid #e1e6ec}
.note{background:#f6f8fa;border-left:4px solid #3b6ea5;padding:.5em 1em}
.meta{font-size:.8em;color:#6a7482}
code{font-size:.92em}
@media (max-width:640px){body{padding:0 .75em;margin:1em auto}h1{font-size:1.4em}img{width:100%}
th,td{padding:.25em .5em}th:first-child,td:first-child,.fields td{white-space:normal;min-width:9em}}
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        return f"{v:.4g}"
    return str(v)


def _png(fig: Any, dpi: int) -> tuple[str, float]:
    """The figure as base64 PNG (then closed), and the size of its smallest visible text in points."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode(), float(min(sizes, default=0.0))


class HtmlReport:
    """Accumulates sections and writes one HTML file that opens anywhere."""

    def __init__(self, title: str):
        self.title = title
        self._parts: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, cls: str | None = None) -> None:
        c = f' class="{cls}"' if cls else ""
        self._parts.append(f"<p{c}>{html.escape(text)}</p>")

    def table(self, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
        """A table of ``rows`` (keys are the column headings, shown as given), in a box that scrolls
        sideways on a narrow page instead of widening it."""
        if not rows:
            return
        columns = columns or list(rows[0])
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows
        )
        self._parts.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
                           "</table></div>")

    def fields(self, values: dict[str, Any]) -> None:
        """One record as a two-column table, a heading cell and a value per row: reads on a phone where a
        one-row table with many columns would need scrolling."""
        rows = "".join(f'<tr><th scope="row">{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>'
                       for k, v in values.items())
        self._parts.append(f'<div class="scroll"><table class="fields"><tbody>{rows}</tbody></table></div>')

    def figure(self, draw: Callable[[bool], Any], caption: str = "") -> None:
        """Embed the matplotlib figure that ``draw(narrow)`` returns, drawn twice: ``draw(False)`` for wide
        pages and ``draw(True)`` for pages up to :data:`NARROW_MAX_PX` wide. Both are closed after.

        The ``img`` carries ``data-text-pt`` (smallest text of the wide and the narrow drawing, points)
        and ``data-dpi`` so a browser test can check how large the plot text is on screen."""
        import matplotlib.pyplot as plt

        with plt.rc_context(cast(Any, PLOT_RC)):  # matplotlib types the keys as a Literal of every rc name
            wide, wide_pt = _png(draw(False), WIDE_DPI)
            narrow, narrow_pt = _png(draw(True), NARROW_DPI)
        alt = html.escape(caption)
        cap = f"<figcaption>{alt}</figcaption>" if caption else ""
        self._parts.append(
            f'<figure><picture><source media="(max-width: {NARROW_MAX_PX}px)" '
            f'srcset="data:image/png;base64,{narrow}">'
            f'<img alt="{alt}" src="data:image/png;base64,{wide}" data-text-pt="{wide_pt:g} {narrow_pt:g}" '
            f'data-dpi="{WIDE_DPI} {NARROW_DPI}"></picture>{cap}</figure>')

    def preformatted(self, text: str) -> None:
        self._parts.append(f'<div class="scroll"><pre>{html.escape(text)}</pre></div>')

    def render(self) -> str:
        from .. import __version__

        body = "\n".join(self._parts)
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(self.title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>\n{body}\n"
            f"<p class='meta'>Written by scalelab {__version__}. Self-contained: no scripts, no network.</p>"
            "</body></html>"
        )

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(), encoding="utf-8")
        return path


def display_path(path: str | Path) -> str:
    """How a report names a file without giving away absolute paths: ``~/...`` under the user's home,
    else the file name alone.

    >>> display_path("/somewhere/else/runs.sqlite")
    'runs.sqlite'
    """
    p = Path(path).expanduser()
    try:
        return "~/" + p.resolve().relative_to(Path.home().resolve()).as_posix()
    except (ValueError, RuntimeError, OSError):
        return p.name
