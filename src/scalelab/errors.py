"""Every exception and warning that scalelab raises, in one place.

Each error message says what was wrong, the value received, what is allowed and how to fix it
(DESIGN.md principle 5). Build messages with :func:`explain` so they all read the same way. The CLI maps
these types to exit messages in one table (``scalelab.cli._errors``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ConfigError",
    "ConventionWarning",
    "ConvergenceWarning",
    "CorpusError",
    "DataError",
    "ExtrapolationWarning",
    "FitError",
    "FitQualityWarning",
    "GridInterrupted",
    "LayoutError",
    "MissingDependencyError",
    "NotFittedError",
    "ScalelabError",
    "ScalelabWarning",
    "SchemaVersionError",
    "StoreError",
    "StoreLockedError",
    "UnknownNameError",
    "explain",
    "suggest",
]


def explain(problem: str, *, value: object = None, allowed: str | None = None, fix: str | None = None) -> str:
    """Compose an error message: the problem, the value received, what is allowed, how to fix it.

    >>> explain("tp must divide n_heads", value=3, allowed="a divisor of 32", fix="use --tp 4")
    'tp must divide n_heads (got 3); allowed: a divisor of 32. Fix: use --tp 4'
    """
    value = _plain(value)
    fixes = []
    # A message built around another error's message (a validator's, a nested explain) carries its own
    # "Fix:"; hoist it so the user reads one "Fix:", the inner (more specific) advice first.
    if isinstance(value, str) and " Fix: " in value:
        value, inner = value.split(" Fix: ", 1)
        value = value.rstrip(". ")
        fixes.append(inner.rstrip(". "))
    if " Fix: " in problem:
        problem, inner = problem.split(" Fix: ", 1)
        fixes.append(inner.rstrip(". "))
    if fix:
        fixes.append(fix.removeprefix("Fix: "))
    msg = problem.rstrip(". ") if fixes or value is not None or allowed else problem
    if value is not None:
        msg += f" (got {value!r})"
    if allowed:
        msg += f"; allowed: {allowed}"
    if not msg.endswith(("?", ".", "!")):
        msg += "."
    if fixes:
        msg += " Fix: " + "; ".join(fixes)
    return msg


def _plain(value: object) -> object:
    """numpy arrays and scalars as plain Python values, so messages read ``[nan]``, not ``array([nan])``."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and type(value).__module__.startswith("numpy"):
        return tolist()
    return value


def suggest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The closest names to ``name`` among ``choices`` (case-insensitive), best first."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    # Substring matches catch "405b" -> "llama-3.1-405b", which difflib's ratio misses.
    subs = [c for c in choices if name.lower() in c.lower() and c.lower() not in hits]
    return [lowered[h] for h in hits] + subs[: max(0, n - len(hits))]


class ScalelabError(Exception):
    """Base class of every error scalelab raises on purpose."""


class ConfigError(ScalelabError, ValueError):
    """A spec, option or config file holds a value that is not allowed (negative size, bad field...)."""


class UnknownNameError(ScalelabError, KeyError):
    """A model, GPU, law, preset or run name is not in the catalog; the message lists the closest names."""

    def __init__(self, kind: str, name: str, choices: Iterable[str], fix: str | None = None):
        choices = sorted(choices)
        close = suggest(name, choices)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else None
        self.kind, self.name, self.suggestions = kind, name, close
        listing = _LISTING_COMMANDS.get(kind)
        if hint:
            allowed = hint
        elif choices and len(choices) <= 12:
            allowed = "one of " + ", ".join(choices)
        else:
            allowed = f"one of {len(choices)} names" + (f", listed by `{listing}`" if listing else "")
        msg = explain(
            f"unknown {kind} {name!r}", allowed=allowed,
            fix=fix or (f"run `{listing}` to list them, or pass a file path" if listing else "check the spelling"),
        )
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


#: The command that lists each kind of name (messages only point at commands that exist).
_LISTING_COMMANDS = {"model": "scalelab models", "gpu": "scalelab gpus", "law": "scalelab laws",
                     "dataset": "scalelab datasets"}


class LayoutError(ConfigError):
    """A parallel layout is impossible: degrees don't divide the model or the cluster."""


class DataError(ScalelabError, ValueError):
    """Input runs or tables are unusable: missing columns, NaN or non-positive values, too few points."""


class NotFittedError(ScalelabError, ValueError, AttributeError):
    """A law was asked to predict before ``fit`` (or a preset) gave it parameters."""


class FitError(ScalelabError, RuntimeError):
    """The optimizer could not produce any usable fit (every start failed)."""


class StoreError(ScalelabError, RuntimeError):
    """The run store (SQLite) cannot be opened or written."""


class StoreLockedError(StoreError):
    """Another process holds the store's write lock for longer than the timeout."""


class SchemaVersionError(StoreError):
    """The store was written by a newer scalelab whose schema this version cannot read safely."""


class CorpusError(ScalelabError, ValueError):
    """A training corpus is missing, unreadable or empty."""


class GridInterrupted(KeyboardInterrupt):
    """A grid stopped by Ctrl-C (``signum`` 2) or SIGTERM (15): ``stored`` of its ``total`` runs are in the
    store (completed or diverged), and running the same grid again resumes the rest from checkpoints.

    A :class:`KeyboardInterrupt`, so code that stops on Ctrl-C still stops; the CLI turns it into one line
    and exit code ``128 + signum``.
    """

    def __init__(self, stored: int | None, total: int, signum: int = 2):
        self.stored, self.total, self.signum = stored, total, signum
        super().__init__(f"interrupted: {'?' if stored is None else stored} of {total} runs stored; "
                         "rerun the same command to resume")


class MissingDependencyError(ScalelabError, ImportError):
    """An optional dependency (an extra such as ``scalelab[tunnel]``) is not installed."""

    def __init__(self, package: str, extra: str):
        super().__init__(
            explain(
                f"this feature needs the optional package {package!r}, which is not installed",
                fix=f"pip install 'scalelab[{extra}]'",
            )
        )


class ScalelabWarning(UserWarning):
    """Base class of every warning scalelab emits."""


class ConvergenceWarning(ScalelabWarning):
    """An optimizer stopped without converging or on a bound; the message says what to try."""


class ExtrapolationWarning(ScalelabWarning):
    """A prediction lies further outside the fitted range than the configured factor."""


class ConventionWarning(ScalelabWarning):
    """Inputs mix conventions (e.g. total vs non-embedding N) in a way that changes the answer."""


class FitQualityWarning(ScalelabWarning):
    """A fit converged but is implausible: the irreducible loss at 0 or on its bound, an exponent at its
    bound or >= 1, a coefficient on its bound, or an interval spanning orders of magnitude. Forecasts from
    such fits were 5-13% off in backtests; the message says what to do, and ``law.quality_`` records it."""
