"""The report's "Planned against measured" section, from the run table (no torch needed)."""

from __future__ import annotations

from scalelab.report.html import HtmlReport
from scalelab.report.plan_vs_measured import add_plan_vs_measured_section, plan_vs_measured_rows


def _table(**over):
    t = {"hash": ["a", "b"], "n_layers": [2, 4], "d_model": [64, 128], "N": [164160, 1115264],
         "batch_size": [16, 16], "seq_len": [64, 64], "device": ["cpu", "cpu"], "pred_device": ["cpu-x", "cpu-x"],
         "step_s": [0.10, None], "pred_step_s": [0.12, 0.5], "saved_tensor_bytes": [2**24, None],
         "pred_activation_bytes": [2**24 + 2**20, None], "peak_mem_bytes": [2**25, None],
         "pred_mem_bytes": [2**25, None]}
    t.update(over)
    return t


def test_rows_pair_planned_with_measured_and_skip_unmeasured_runs():
    rows = plan_vs_measured_rows(_table())
    assert len(rows) == 1
    r = rows[0]
    assert r["model"] == "L2 d64" and r["batch x seq"] == "16 x 64"
    assert abs(r["step planned/measured"] - 1.2) < 1e-12 and r["memory planned/measured"] == 1.0
    assert r["activations MiB measured"] == 16.0 and r["activations MiB planned"] == 17.0


def test_the_section_is_added_only_when_something_was_measured():
    rep = HtmlReport("t")
    assert add_plan_vs_measured_section(rep, _table()) is True
    html = rep.render()
    assert "Planned against measured" in html and "cpu-x" in html
    empty = HtmlReport("t")
    assert add_plan_vs_measured_section(empty, _table(step_s=[None, None])) is False
    assert "Planned against measured" not in empty.render()


def test_without_a_profile_the_section_says_to_calibrate():
    rep = HtmlReport("t")
    add_plan_vs_measured_section(rep, [{"model": "L2 d64", "step_s": 0.1, "pred_step_s": None}])
    assert "scalelab calibrate" in rep.render()
