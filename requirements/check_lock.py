"""Check that the running environment holds exactly the versions of a lock file.

Usage: ``python requirements/check_lock.py [--report-drift] LOCK [ALSO_LOCK ...]``

Every package pinned in LOCK must be installed at its pinned version, torch at the version pinned in
``requirements/torch.in`` (a local build label such as ``+cpu`` is allowed), and nothing else may be
installed except pip, scalelab itself, what torch's own build needs (a CUDA build brings nvidia-*
packages the CPU build does not) and packages pinned, at the installed version, in an ALSO_LOCK (`make
demo` after `make test` finds the dev lock's extra packages in .venv, at the versions the demo lock
shares). Exit status 1 names each difference and how to fix it.

With ``--report-drift`` the differences are printed as information and the exit status is 0: `make
test-latest` uses it to show how far the newest allowed versions have moved from the lock.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
#: Installed by the Makefile around the lock, not by it.
_NOT_LOCKED = {"pip", "scalelab", "torch"}


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """``name == version`` pins of a requirements/lock file, by canonical name (comments, hashes skipped)."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = _PIN.match(line.strip())
        if m:
            pins[canonical(m.group(1))] = m.group(2)
    return pins


def installed() -> dict[str, str]:
    """Canonical name -> version of every distribution the running interpreter sees."""
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}


def _requirement_names(dist: str) -> set[str]:
    try:
        reqs = metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return set()
    out = set()
    for r in reqs:
        if "extra ==" in r:
            continue
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", r)
        if m:
            out.add(canonical(m.group(1)))
    return out


def torch_closure(have: dict[str, str]) -> set[str]:
    """torch and everything its installed build requires, transitively (only what is installed)."""
    seen: set[str] = set()
    todo = ["torch"]
    while todo:
        name = todo.pop()
        if name in seen or name not in have:
            continue
        seen.add(name)
        todo.extend(_requirement_names(name))
    return seen


def differences(lock: Path, also: tuple[Path, ...] = ()) -> list[str]:
    """One line per difference between the environment and the lock (empty: they agree); packages pinned
    at their installed version in one of the ``also`` locks are not extra."""
    pins = read_pins(lock)
    torch_pin = read_pins(lock.parent / "torch.in").get("torch")
    have = installed()
    problems = []
    for name, version in sorted(pins.items()):
        got = have.get(name)
        if got != version:
            problems.append(f"{name}: locked {version}, installed {got or 'nothing'}")
    if torch_pin and "torch" in have and have["torch"].split("+")[0] != torch_pin:
        problems.append(f"torch: pinned {torch_pin} (requirements/torch.in), installed {have['torch']}")
    allowed = set(pins) | _NOT_LOCKED | torch_closure(have)
    for other in also:
        allowed |= {n for n, v in read_pins(other).items() if have.get(n) == v}
    for name in sorted(set(have) - allowed):
        problems.append(f"{name}: installed {have[name]}, not in {lock.name}")
    return problems


def main(argv: list[str]) -> int:
    drift = "--report-drift" in argv
    paths = [a for a in argv if not a.startswith("--")]
    if not paths:
        print("usage: check_lock.py [--report-drift] LOCK [ALSO_LOCK ...]", file=sys.stderr)
        return 2
    lock, *also = (Path(a) for a in paths)
    for f in (lock, *also):
        if not f.is_file():
            print(f"check_lock: lock file {f} not found; run `make lock` to create it", file=sys.stderr)
            return 2
    problems = differences(lock, tuple(also))
    if drift:
        print(f"{len(problems)} difference(s) from {lock}" + (":" if problems else ""))
        for p in problems:
            print(f"  {p}")
        return 0
    if problems:
        print(f"check_lock: this environment differs from {lock}:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        print("fix: `make clean` then `make test` to rebuild .venv from the lock (or `make lock` if "
              "pyproject.toml changed)", file=sys.stderr)
        return 1
    print(f"check_lock: {len(read_pins(lock))} packages match {lock}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
