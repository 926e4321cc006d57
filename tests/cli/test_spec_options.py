"""Issue 12 part 4 / issue 9 part 4: `plan` and `search` build their options from the specs, once.

Every Layout and TrainSpec field has a flag in both commands and a key in the config file, the two
commands differ only by their declared own options, and one rule merges a config file with the flags:
the command line beats the file, which beats the spec's default."""

from __future__ import annotations

import json
import typing

import pytest
import typer

from scalelab.cli import _spec_options as so
from scalelab.cli.app import app, main
from scalelab.planner import Layout, TrainSpec

BASE = ["--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--n-gpus", "64", "--seq-len", "8192", "--global-batch", "512"]


def _params(command: str) -> dict[str, typing.Any]:
    root = typer.main.get_command(app)
    cmd = root.get_command(typer.Context(root), command)
    assert cmd is not None
    return {p.opts[0]: p for p in cmd.params if p.param_type_name == "option"}


def _flags_of(options: list[so.SpecOption]) -> dict[tuple[str | None, str], str]:
    return {(o.table, o.field): o.flags[0].split("/")[0] for o in options}


@pytest.mark.parametrize("command", ["plan", "search"])
@pytest.mark.parametrize("table, spec", [("layout", Layout), ("train", TrainSpec)])
def test_every_layout_and_train_field_has_a_flag(command, table, spec):
    flags = _flags_of(so.command_options(command))
    params = _params(command)
    flagless = set()
    for name in spec.model_fields:
        flag = flags.get((table, name))
        if flag is None:
            flagless.add(name)
        else:
            assert flag in params, (command, name, flag)
    assert flagless == ({"lora"} if spec is TrainSpec else set())  # a nested spec: config file only


def test_plan_and_search_take_the_same_options_but_their_own():
    plan, search = set(_params("plan")), set(_params("search"))
    assert plan - search == {"--measured-step-time", "--measured-tflops"}
    assert search - plan == {"--top", "--objective", "--max-cp", "--max-interleave", "--no-offload", "--explain",
                             "--activation-offload"}
    assert len(plan & search) >= 35


def test_a_new_layout_field_gets_a_flag_without_more_code():
    class WiderLayout(Layout):
        overlap_knob: float = 0.5
        """Fraction of the new thing hidden behind compute. More text that the help leaves out."""
        placement: str = "ring"
        """Where things go (see :class:`~scalelab.planner.Layout`)."""

    opts = {o.flags[0]: o for o in so.spec_field_options("layout", WiderLayout)}
    assert opts["--overlap-knob"].type is float and opts["--overlap-knob"].field == "overlap_knob"
    assert opts["--overlap-knob"].help == "Fraction of the new thing hidden behind compute."
    assert opts["--placement"].help == "Where things go (see Layout)."
    assert opts["--flash-attention/--no-flash-attention"].type is bool
    assert [c.value for c in opts["--offload-params"].type] == ["none", "cpu", "nvme"]


def test_every_option_sets_a_key_its_config_table_takes():
    keys = so._table_keys()
    for command in ("plan", "search"):
        for o in so.command_options(command):
            if o.table in (None, "model"):
                continue
            table = command if o.table == so.RUN else o.table
            assert o.field in keys[table], (command, o.flags, table)


def _json(argv, capsys, monkeypatch):
    monkeypatch.delenv("SCALELAB_DEBUG", raising=False)
    code = main(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_flags_beat_the_file_which_beats_the_default(tmp_path, capsys, monkeypatch):
    cfg = tmp_path / "run.toml"
    cfg.write_text('model = "llama-3.1-8b"\n[cluster]\ngpu = "h100-sxm"\nn_gpus = 64\n'
                   "[train]\nseq_len = 8192\nglobal_batch = 512\ngalore_rank = 64\n"
                   '[layout]\ntp = 4\nzero = 3\nflash_attention = false\nzero3_gather = "step"\n'
                   "[plan]\nefficiency = 0.5\n")
    default = _json(["plan", *BASE, "-f", "json"], capsys, monkeypatch)
    filed = _json(["plan", "--config", str(cfg), "-f", "json"], capsys, monkeypatch)
    flagged = _json(["plan", "--config", str(cfg), "--flash-attention", "--zero3-gather", "micro-batch",
                     "--galore-rank", "32", "--efficiency", "0.7", "-f", "json"], capsys, monkeypatch)
    assert default["layout"]["flash_attention"] is True and default["train"]["galore_rank"] == 128
    assert filed["layout"]["flash_attention"] is False and filed["layout"]["zero3_gather"] == "step"
    assert filed["train"]["galore_rank"] == 64 and filed["options"]["efficiency"] == 0.5
    assert flagged["layout"]["flash_attention"] is True and flagged["layout"]["zero3_gather"] == "micro-batch"
    assert flagged["train"]["galore_rank"] == 32 and flagged["options"]["efficiency"] == 0.7
    assert flagged["layout"]["tp"] == 4  # what no flag changed stays the file's


def test_search_holds_every_layout_flag_fixed(capsys, monkeypatch):
    d = _json(["search", *BASE, "--top", "2", "--zero", "3", "--zero3-gather", "step", "--offload-optimizer", "cpu",
               "--no-sequence-parallel", "--tp", "2", "--shard-group", "node", "-f", "json"], capsys, monkeypatch)
    assert d["best"]
    for p in d["best"]:
        lay = p["layout"]
        assert (lay["zero"], lay["zero3_gather"], lay["offload_optimizer"], lay["sequence_parallel"],
                lay["shard_group"]) == (3, "step", "cpu", False, "node")


def test_other_commands_do_not_import_the_planner():
    """plan and search are built on first use, so `scalelab laws --help` (and each shell completion of
    another command) does not pay for the planner's import."""
    import subprocess
    import sys

    code = ("import sys; from scalelab.cli.app import main; main(['laws', '--help']); "
            "assert 'scalelab.planner' not in sys.modules, 'planner imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
