"""The HTML report's pieces, without a browser: the viewport tag and scrolling tables, every plot drawn
wide and narrow, human headings with one unit per quantity, the isoFLOP stars on their lines, and no
absolute paths."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from scalelab.report.demo_report import _grid_rows, _production_rows, isoflop_figure, isoflop_optima
from scalelab.report.html import HtmlReport, display_path

from .synthetic import BUDGETS, SIZES, grid_rows

RAW_FIELDS = ("budget_flops", "val_loss", "n_params", "tokens_per_s", "step_time_s", "mfu", "days")


def test_page_has_a_viewport_tag_and_tables_scroll_in_their_own_box():
    r = HtmlReport("t")
    r.table([{"a": 1.0, "b": "x"}])
    r.fields({"what": "value"})
    page = r.render()
    assert '<meta name=\'viewport\' content=\'width=device-width, initial-scale=1\'>' in page
    assert page.count('<div class="scroll"><table') == 2
    assert re.search(r"\.scroll\{overflow-x:auto", page)
    assert "<script" not in page


def test_each_figure_is_drawn_wide_and_narrow_with_readable_text():
    import matplotlib.pyplot as plt

    calls = []

    def draw(narrow: bool):
        calls.append(narrow)
        fig, ax = plt.subplots(figsize=(3 if narrow else 6, 2))
        ax.plot([1, 2], [3, 4], label="line")
        ax.set_xlabel("x")
        ax.legend()
        return fig

    r = HtmlReport("t")
    r.figure(draw, "cap")
    page = r.render()
    assert calls == [False, True]
    assert '<source media="(max-width: 640px)" srcset="data:image/png;base64,' in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 1
    pts = [float(x) for x in re.search(r'data-text-pt="([^"]+)"', page).group(1).split()]
    assert len(pts) == 2 and min(pts) >= 9  # PLOT_RC's smallest text, in both drawings
    assert plt.get_fignums() == []  # both closed


def test_display_path_never_shows_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert display_path(tmp_path / ".scalelab" / "runs.sqlite") == "~/.scalelab/runs.sqlite"
    assert display_path("/elsewhere/x/runs.sqlite") == "runs.sqlite"


def test_table_headings_are_words_and_mfu_is_a_percentage_everywhere():
    grid = _grid_rows(SimpleNamespace(grid_runs=grid_rows()))
    heads = list(grid[0])
    assert not any(raw in heads for raw in RAW_FIELDS) and not any("_" in h for h in heads)
    p = {"top_layouts": [{"layout": "dp8 tp8", "step_time_s": 7.2412, "mfu": 0.34123, "days": 34.66}],
         "model": "m", "n_params": 9.6e10, "n_gpus": 1024, "gpu": "h100-sxm", "layout": "dp8 tp8",
         "step_time_s": 7.2412, "mfu": 0.34123, "training_days": 34.66, "gpu_hours": 8.53e5, "cost_usd": 2.55e6}
    layouts, plan = _production_rows(p)
    assert layouts[0]["MFU (%)"] == plan["MFU (%)"] == "34.1"
    assert layouts[0]["step time (s)"] == plan["step time (s)"] == "7.24"
    assert layouts[0]["training days"] == plan["training days"] == "34.7"
    assert not any(raw in list(layouts[0]) + list(plan) for raw in RAW_FIELDS)


def _line(ax, gid):
    (line,) = [ln for ln in ax.get_lines() if ln.get_gid() == gid]
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def _star(ax, gid):
    (coll,) = [c for c in ax.collections if c.get_gid() == gid]
    return coll.get_offsets()[0]


def test_isoflop_stars_lie_on_their_lines_and_every_budget_has_a_legend_entry():
    from scalelab.laws import ChinchillaLaw

    rows = grid_rows()
    law = ChinchillaLaw(n_bootstrap=0).fit(np.array([r["n_params"] for r in rows], float),
                                            np.array([r["tokens"] for r in rows], float),
                                            np.array([r["val_loss"] for r in rows], float))
    c_hold = 2e12
    optima = isoflop_optima(law, [*BUDGETS, c_hold])
    # the case this test is about: the lowest budget's optimum lies below the smallest trained model
    assert optima[0][0] < min(SIZES) / 3
    result = SimpleNamespace(grid_runs=rows, forecast={"C_flops": c_hold},
                             holdout={"n_params": 1.1e5, "val_loss": 1.37})
    fig = isoflop_figure(result, law)
    ax = fig.axes[0]
    for c, (n_opt, l_opt) in zip([*BUDGETS, c_hold], optima, strict=True):
        x, y = _line(ax, f"isoflop-{c:g}")
        sx, sy = _star(ax, f"optimum-{c:g}")
        assert sx == pytest.approx(n_opt) and sy == pytest.approx(l_opt)
        assert x.min() < sx < x.max(), f"C={c:g}: star at N={sx:.3g} outside its line [{x.min():.3g}, {x.max():.3g}]"
        on_line = np.interp(np.log(sx), np.log(x), y)
        assert sy == pytest.approx(on_line, rel=1e-3), f"C={c:g}: star {sy:.4f}, line {on_line:.4f}"
        assert sy == pytest.approx(float(np.ravel(law.compute_optimal(c).loss)[0]), rel=1e-9)
        assert sy <= y.min() + 1e-9  # the star is its line's minimum
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert sum(f"C = {c:.0e}" in t for t in labels for c in [*BUDGETS, c_hold]) == len(BUDGETS) + 1
    assert any("held-out budget" in t for t in labels)
    import matplotlib.pyplot as plt

    plt.close(fig)
