"""A self-contained HTML report: one file, plots embedded as base64 PNG, no server, no internet.

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
from pathlib import Path
from typing import Any

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d2430;line-height:1.45}
h1{font-size:1.7em;border-bottom:2px solid #3b6ea5;padding-bottom:.2em}
h2{font-size:1.25em;margin-top:1.8em;color:#274b73}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{border:1px solid #c9d3de;padding:.3em .7em;text-align:right}
th{background:#eef3f8}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figcaption{font-size:.9em;color:#4a5566}
img{max-width:100%;height:auto;border:1px solid #e1e6ec}
.note{background:#f6f8fa;border-left:4px solid #3b6ea5;padding:.5em 1em}
.meta{font-size:.8em;color:#6a7482}
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        return f"{v:.4g}"
    return str(v)


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
        if not rows:
            return
        columns = columns or list(rows[0])
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows
        )
        self._parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def figure(self, fig: Any, caption: str = "") -> None:
        """Embed a matplotlib figure as a base64 PNG (and close it)."""
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        data = base64.b64encode(buf.getvalue()).decode()
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                           f'{cap}</figure>')

    def preformatted(self, text: str) -> None:
        self._parts.append(f"<pre>{html.escape(text)}</pre>")

    def render(self) -> str:
        from .. import __version__

        body = "\n".join(self._parts)
        return (
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>\n{body}\n"
            f"<p class='meta'>Written by scalelab {__version__}. Self-contained: no scripts, no network.</p>"
            "</body></html>"
        )

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(), encoding="utf-8")
        return path
