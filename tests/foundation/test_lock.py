"""The committed locks (requirements/*.lock) are complete, consistent and hashed, and the checker that
`make test` runs after installing them finds a difference when there is one (issue 7)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
REQ = ROOT / "requirements"


def _checker():
    spec = importlib.util.spec_from_file_location("check_lock", REQ / "check_lock.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


check_lock = _checker()


def _blocks(lock: Path) -> dict[str, list[str]]:
    """Pinned name -> the --hash lines that follow it."""
    out: dict[str, list[str]] = {}
    name = None
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if m:
            name = check_lock.canonical(m.group(1))
            out[name] = []
        elif name and line.strip().startswith("--hash=sha256:"):
            out[name].append(line.strip())
        elif not line.startswith(" "):
            name = None
    return out


def _declared(extras: list[str]) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for e in extras:
        reqs += project["optional-dependencies"][e]
    return {check_lock.canonical(Requirement(r).name) for r in reqs} - {"scalelab"}


@pytest.mark.parametrize("lock", ["dev.lock", "demo.lock"])
def test_every_pin_carries_hashes_and_torch_stays_outside(lock):
    blocks = _blocks(REQ / lock)
    assert len(blocks) > 20
    assert all(blocks[n] for n in blocks), [n for n in blocks if not blocks[n]]
    assert "torch" not in blocks  # pinned apart (requirements/torch.in), so a user's machine gets its build
    assert "scalelab" not in blocks


def test_locks_cover_what_pyproject_declares():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev_extras = [e for e in project["optional-dependencies"] if e != "all"]
    dev = check_lock.read_pins(REQ / "dev.lock")
    demo = check_lock.read_pins(REQ / "demo.lock")
    assert _declared(dev_extras) - {"torch"} <= set(dev)
    assert _declared(["tunnel", "report", "data"]) - {"torch"} <= set(demo)


def test_demo_lock_agrees_with_dev_lock():
    dev = check_lock.read_pins(REQ / "dev.lock")
    demo = check_lock.read_pins(REQ / "demo.lock")
    assert {n: v for n, v in demo.items() if dev.get(n) != v} == {}


def test_torch_pin_is_the_one_the_makefile_installs():
    pin = check_lock.read_pins(REQ / "torch.in")["torch"]
    assert f"TORCH ?= torch=={pin}" in (ROOT / "Makefile").read_text()


def test_checker_reports_a_wrong_version_and_a_missing_package(tmp_path):
    have = check_lock.installed()
    name, version = next((n, v) for n, v in sorted(have.items()) if n not in ("pip", "torch", "scalelab"))
    (tmp_path / "torch.in").write_text((REQ / "torch.in").read_text())
    lock = tmp_path / "x.lock"
    lock.write_text(f"{name}=={version}0 \\\n    --hash=sha256:00\nno-such-package-xyz==1.0\n")
    problems = check_lock.differences(lock)
    assert any(p.startswith(f"{name}: locked {version}0, installed {version}") for p in problems)
    assert "no-such-package-xyz: locked 1.0, installed nothing" in problems
    # everything else installed here is not in this two-line lock, so it is reported as extra...
    extra = [p for p in problems if "not in x.lock" in p]
    assert extra
    # ...unless another lock pins it at the installed version (the demo lock checked after the dev lock)
    other = tmp_path / "other.lock"
    other.write_text("".join(f"{p.split(':')[0]}=={p.split('installed ')[1].split(',')[0]}\n" for p in extra))
    assert not [p for p in check_lock.differences(lock, (other,)) if "not in x.lock" in p]
