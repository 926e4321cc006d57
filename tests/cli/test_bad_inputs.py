"""Issue 12: every bad input a new user tried gives one clear line (what was wrong, the value as typed,
the fix) and exit 1; no traceback and no silent nonsense (inf in a report, a file named .xlsx holding
CSV, a typo that creates an empty store)."""

from __future__ import annotations

import json
import math

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalelab.cli.app import COMMANDS, app, command_app, main
from scalelab.errors import UnknownNameError, explain

PLAN = ["plan", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--n-gpus", "64"]


def run(argv, capsys, monkeypatch):
    monkeypatch.delenv("SCALELAB_DEBUG", raising=False)
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "1e400", "-1"])
def test_plan_tokens_not_finite_or_negative_is_an_error_naming_the_flag(value, capsys, monkeypatch):
    code, out, err = run([*PLAN, "--tokens", value, "--format", "json"], capsys, monkeypatch)
    assert code == 1 and out == ""
    assert "--tokens must be" in err and "Traceback" not in err
    assert "inf" in err.lower() or "nan" in err.lower() or "-1" in err


def _numeric_options() -> list[tuple[list[str], str]]:
    """(command path, flag) for every int/float option of every command, found from the app itself."""
    import typing

    found = []

    def walk(t: typer.Typer, path: list[str]) -> None:
        for info in t.registered_commands:
            cmd_path = [*path, info.name or info.callback.__name__]
            hints = typing.get_type_hints(info.callback, include_extras=True)
            for name, hint in hints.items():
                base = typing.get_args(hint)[0] if hasattr(hint, "__metadata__") else hint
                if any(a in (int, float) for a in (base, *typing.get_args(base))) or base in (list[float],) or \
                        float in typing.get_args(typing.get_args(base)[0] if typing.get_args(base) else base):
                    # inside Annotated, typer keeps the first declaration as the OptionInfo's default
                    decls = [d for m in hint.__metadata__
                             for d in (getattr(m, "default", None), *(getattr(m, "param_decls", None) or ()))
                             if isinstance(d, str) and d.startswith("--")]
                    found.append((cmd_path, decls[0] if decls else "--" + name.replace("_", "-")))
        for g in t.registered_groups:
            walk(g.typer_instance, [*path, g.name])

    for module in dict.fromkeys(COMMANDS.values()):  # each command module, which the root builds on first use
        walk(command_app(module), [])
    return found


NUMERIC = _numeric_options()


@pytest.fixture(scope="module")
def root_command():
    return typer.main.get_command(app)


def test_the_numeric_option_list_is_real():
    flags = {f for _, f in NUMERIC}
    assert {"--tokens", "--price", "--compute", "--level", "--workers", "--top", "--galore-rank"} <= flags


_CASES = [(p, f, ["nan", "inf", "-3", "1e400"][i % 4]) for i, (p, f) in enumerate(NUMERIC)]


@pytest.mark.parametrize("path, flag, value", _CASES, ids=[" ".join(p) + f" {f} {v}" for p, f, v in _CASES])
def test_every_numeric_option_refuses_nan_inf_and_negative(path, flag, value, capsys, monkeypatch, root_command):
    # The guard runs before the command body, so dummy values for the required parameters are enough.
    cmd = root_command
    for name in path:
        cmd = cmd.get_command(typer.Context(cmd), name)
    assert any(flag in p.opts for p in cmd.params), f"{flag} is not an option of {' '.join(path)}"
    required: list[str] = []
    for p in cmd.params:
        if p.required and p.opts[0] != flag:
            required += ["x"] if p.param_type_name == "argument" else [p.opts[0], "1"]
    code, _, err = run([*path, *required, flag, value], capsys, monkeypatch)
    assert code in (1, 2), err  # 2: typer's own range check (min=1) caught it first
    assert flag in err and "Traceback" not in err


def test_export_by_extension(tmp_path, capsys, monkeypatch, ro_store):
    code, _, err = run(["tunnel", "export", str(tmp_path / "out.xlsx"), "--store", str(ro_store)], capsys, monkeypatch)
    assert code == 1 and "out.xlsx" in err and ".csv, .parquet or .json" in err
    assert not (tmp_path / "out.xlsx").exists()
    code, _, err = run(["tunnel", "export", str(tmp_path / "out.json"), "--store", str(ro_store)], capsys, monkeypatch)
    assert code == 0, err
    rows = json.loads((tmp_path / "out.json").read_text())
    assert len(rows) == 6 and all(r["loss"] > 0 for r in rows)


def test_ls_on_a_missing_store_is_an_error_and_creates_nothing(tmp_path, capsys, monkeypatch):
    typo = tmp_path / "typo.sqlite"
    for cmd in (["tunnel", "ls"], ["tunnel", "show", "abc"], ["tunnel", "export", str(tmp_path / "o.csv")],
                ["tunnel", "rm", "abcdef", "--yes"]):
        code, _, err = run([*cmd, "--store", str(typo)], capsys, monkeypatch)
        assert code == 1 and "no run store at this path" in err and str(typo) in err.replace("\n", "")
    assert not typo.exists()


def test_laws_group_format_is_honoured(capsys, monkeypatch):
    code, out, _ = run(["laws", "-f", "json", "show", "chinchilla"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["name"] == "chinchilla"


def test_search_with_no_feasible_layout_exits_1(capsys, monkeypatch):
    code, out, err = run(["search", "--model", "llama-3.1-405b", "--gpu", "h100-sxm", "--n-gpus", "8"],
                         capsys, monkeypatch)
    assert code == 1 and "no layout of llama-3.1-405b fits on 8 GPUs" in err.replace("\n", " ")
    assert "0 fit" in out and "add GPUs" in err


def test_search_over_more_gpus_than_the_batch_can_use_does_not_say_add_gpus(capsys, monkeypatch):
    # nothing ran out of memory here: every layout was rejected for divisibility, yet the fix said "add GPUs"
    code, _, err = run(["search", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--n-gpus", "1000000000",
                        "--global-batch", "64"], capsys, monkeypatch)
    err = " ".join(err.split())
    assert code == 1 and "add GPUs" not in err and "use fewer GPUs" in err and "64 sequences" in err


def test_messages_do_not_name_commands_that_do_not_exist():
    msg = str(UnknownNameError("run", "zzz", ["abc", "abd"]))
    assert "scalelab runs" not in msg and "one of abc, abd" in msg
    msg = str(UnknownNameError("chinchilla preset", "x", [f"p{i}" for i in range(30)]))
    assert "`scalelab" not in msg and "30 names" in msg
    assert "`scalelab gpus`" in str(UnknownNameError("gpu", "zzz", [f"g{i}" for i in range(30)]))


def test_fix_appears_once_and_numpy_values_read_plainly():
    import numpy as np

    inner = explain("n_heads=3 does not divide d_model=32", fix="choose 2 or 4")
    msg = explain("grid.toml has a bad value", value=inner, fix="nothing has run")
    assert msg.count("Fix:") == 1 and "choose 2 or 4; nothing has run" in msg
    assert explain("bad loss", value=np.array([math.nan])) == "bad loss (got [nan])."
    assert "?." not in explain("unknown", allowed="did you mean 'a'?")


def test_fit_out_into_an_unwritable_place_keeps_the_result(tmp_path, capsys, monkeypatch, ro_store):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["fit", str(ro_store), "--out", str(blocker / "fit.json"), "--format", "json"],
                         capsys, monkeypatch)
    assert code == 0, err
    saved = json.loads(out)["saved_to"]
    assert saved == str(tmp_path / "fit.json") and "could not write" in err
    assert json.loads((tmp_path / "fit.json").read_text())["law"] == "chinchilla"


def test_rm_needs_yes_and_a_long_enough_prefix(ro_store, capsys, monkeypatch):
    from scalelab.tunnel.store import RunStore

    with RunStore(ro_store) as st:
        hashes = [r.hash for r in st.runs()]
    first = hashes[0]
    k = next(k for k in range(1, 17) if sum(h.startswith(first[:k]) for h in hashes) == 1)
    assert k < 6
    code, _, err = run(["tunnel", "rm", first[:k], "--store", str(ro_store), "--yes"], capsys, monkeypatch)
    assert code == 1 and "at least 6 characters" in err  # a short prefix that matches exactly one run
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = run(["tunnel", "rm", first, "--store", str(ro_store)], capsys, monkeypatch)
    assert code == 1 and "--yes" in err
    with RunStore(ro_store) as st:
        assert len(st) == 6
    code, out, err = run(["tunnel", "rm", first[:8], "--store", str(ro_store), "--yes", "-f", "json"],
                         capsys, monkeypatch)
    assert code == 0 and json.loads(out)["removed"] == [first]


def _commands(cmd, path=()):
    yield list(path), cmd
    if hasattr(cmd, "list_commands"):  # a group: its commands as the CLI resolves them (plan and search lazily)
        for name in cmd.list_commands(typer.Context(cmd)):
            yield from _commands(cmd.get_command(typer.Context(cmd), name), (*path, name))


def test_help_at_80_columns_shows_every_flag_in_full(root_command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    checked = 0
    for path, cmd in _commands(root_command):
        code, out, err = run([*path, "--help"], capsys, monkeypatch)
        assert code == 0, err
        assert "…" not in out, (path, out)
        for p in cmd.params:
            for flag in [*p.opts, *p.secondary_opts]:
                if flag.startswith("--"):
                    assert flag in out, (path, flag)
                    checked += 1
        assert max(len(line) for line in out.splitlines()) <= 80, path
    assert checked > 100
    _, out, _ = run(["plan", "--help"], capsys, monkeypatch)
    assert "[cluster], [train], [layout]" in " ".join(out.split())  # not eaten as markup
    _, out, _ = run(["--help"], capsys, monkeypatch)
    assert "--install-completion" in out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(["--tokens", "--price", "--efficiency", "--memory-reserve-gib", "--measured-tflops"]),
       value=st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(["1e400", "-1e400", "-0"]))
def test_plan_numeric_options_never_trace_back_or_print_inf(flag, value, capsys, monkeypatch):
    text = value if isinstance(value, str) else repr(value)
    code, out, err = run([*PLAN, flag, text, "--format", "json"], capsys, monkeypatch)
    assert code in (0, 1), err
    assert "Traceback" not in err
    if code == 0:
        assert "infinity" not in out.lower() and "nan" not in out.lower()
        assert "inf days" not in out and json.loads(out)
    else:
        assert err.strip() and out == ""


def test_fit_messages_name_the_users_loss_column_and_the_cli_flag(tmp_path, capsys, monkeypatch):
    """Issue 12 wording: the internal 'L' was shown for the user's loss column, `n_convention=` for the
    flag, and "a diverged run has no usable loss" for a negative N."""
    rows = [(1e6, 2e9, 3.1), (2e6, 4e9, 3.0), (4e6, 8e9, 2.9), (8e6, 1.6e10, 2.8), (1.6e7, 3.2e10, 2.7),
            (3.2e7, 6.4e10, 2.6), (1e6, 4e9, 3.0), (2e6, 8e9, 2.9)]
    bad_loss = tmp_path / "bad_loss.csv"
    bad_loss.write_text("params,tokens,my_loss\n" + "\n".join(f"{n},{d},{-y if i == 1 else y}"
                                                              for i, (n, d, y) in enumerate(rows)) + "\n")
    code, out, err = run(["fit", str(bad_loss), "--loss", "my_loss"], capsys, monkeypatch)
    assert code == 1 and "'my_loss'" in err and "'L'" not in err and "diverged run" in err
    bad_n = tmp_path / "bad_n.csv"
    bad_n.write_text("params,tokens,loss\n" + "\n".join(f"{-n if i == 0 else n},{d},{y}"
                                                        for i, (n, d, y) in enumerate(rows)) + "\n")
    code, out, err = run(["fit", str(bad_n)], capsys, monkeypatch)
    assert code == 1 and "'params'" in err and "diverged" not in err and "parameter count" in err
    good = tmp_path / "good.csv"
    good.write_text("params,tokens,loss\n" + "\n".join(f"{n},{d},{y}" for n, d, y in rows) + "\n")
    code, out, err = run(["fit", str(good), "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    notes = " ".join(json.loads(out)["data"]["notes"])
    assert "--n-convention" in notes and "n_convention=" not in notes


def test_export_never_overwrites_the_store_it_reads(tmp_path, capsys, monkeypatch, ro_store):
    before = ro_store.read_bytes()
    code, _, err = run(["tunnel", "export", str(ro_store), "--format", "csv", "--store", str(ro_store)],
                       capsys, monkeypatch)
    assert code == 1 and "would overwrite the run store itself" in err
    assert ro_store.read_bytes() == before
    code, out, _ = run(["tunnel", "ls", "--store", str(ro_store), "--format", "json"], capsys, monkeypatch)
    assert code == 0 and len(json.loads(out)) == 6
    assert not list(tmp_path.glob("*.partial"))


def test_export_format_that_contradicts_the_file_name_is_an_error(tmp_path, capsys, monkeypatch, ro_store):
    out = tmp_path / "x.csv"
    argv = ["tunnel", "export", str(out), "--format", "json", "--store", str(ro_store)]
    code, _, err = run(argv, capsys, monkeypatch)
    assert code == 1 and "--format json disagrees with the file name" in err and not out.exists()


def test_a_mistyped_command_gets_close_names(capsys, monkeypatch):
    # typer suggests from the commands built so far, none of the lazy ones: `scalelab fti` had no suggestion
    code, _, err = run(["fti"], capsys, monkeypatch)
    assert code == 2 and "No such command 'fti'. Did you mean 'fit'?" in err
    code, _, err = run(["zzzz"], capsys, monkeypatch)
    assert code == 2 and "No such command 'zzzz'" in err and "Did you mean" not in err
