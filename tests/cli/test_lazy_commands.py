"""The root command lists every command from ``COMMANDS`` and imports a command's module only when the
command is asked for (``scalelab fit`` does not pay for the wind tunnel's, catalog's or planner's modules)."""

from __future__ import annotations

import subprocess
import sys

import typer
from typer.testing import CliRunner

from scalelab.cli.app import COMMANDS, app, command_app


def test_the_table_names_exactly_what_each_module_registers():
    for module in set(COMMANDS.values()):
        sub = command_app(module)
        names = {info.name or info.callback.__name__ for info in sub.registered_commands}
        names |= {g.name or g.typer_instance.info.name for g in sub.registered_groups}
        assert names == {c for c, m in COMMANDS.items() if m == module}, module


def test_help_lists_every_command_in_table_order():
    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0, res.output
    listed = [line.split()[0] for line in res.output.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == list(COMMANDS)


def test_each_command_is_reachable_with_its_own_help():
    root = typer.main.get_command(app)
    for name in COMMANDS:
        res = CliRunner().invoke(app, [name, "--help"])
        assert res.exit_code == 0, (name, res.output)
        assert root.get_command(None, name) is not None  # type: ignore[attr-defined]


def test_one_command_imports_its_module_alone():
    code = ("import sys; from scalelab.cli.app import COMMANDS, main; main(['laws', '--format', 'json']); "
            "print(sorted(m for m in set(COMMANDS.values()) if f'scalelab.cli.{m}' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "['laws']"


def test_every_command_module_is_in_the_table_or_registered_by_one_that_is():
    """A module of scalelab.cli with a ``register(app)`` that neither the table names nor another command module
    registers (as ``tunnel`` registers ``sweep``) would be silently missing from ``scalelab --help``."""
    import ast
    import pkgutil
    from pathlib import Path

    import scalelab.cli as cli

    folder = Path(cli.__file__).parent
    trees = {m.name: ast.parse((folder / f"{m.name}.py").read_text()) for m in pkgutil.iter_modules(cli.__path__)
             if (folder / f"{m.name}.py").exists()}
    registering = {name for name, tree in trees.items()
                   if any(isinstance(n, ast.FunctionDef) and n.name == "register" for n in tree.body)}

    def registered_by(name: str) -> set[str]:  # the modules that call ``<name>.register(...)``
        return {other for other, tree in trees.items() for n in ast.walk(tree)
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "register"
                and isinstance(n.func.value, ast.Name) and n.func.value.id == name}

    assert registering >= set(COMMANDS.values())
    missing = {m for m in registering - set(COMMANDS.values()) if not registered_by(m) & set(COMMANDS.values())}
    assert not missing, f"command modules missing from COMMANDS in scalelab/cli/app.py: {sorted(missing)}"
