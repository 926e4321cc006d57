"""Saved fits: a law to and from a plain dict and a JSON file (``law.save`` / ``scalelab fit --out``).

The file holds the law's description (name, class, citation, equation, covariates, options), its
:class:`~scalelab.laws.result.FitResult` (parameters, intervals, goodness of fit, quality, calibration,
residuals, bootstrap draws, ...), the scalelab version and a config hash. The layout is the one files had
before the result was typed, so files written by earlier versions load, and files written now load there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError, ScalelabError, explain
from .registry import get_law
from .result import FitResult

if TYPE_CHECKING:
    from .base import ScalingLaw

__all__ = ["SAVED_FIT_FIX", "law_from_dict", "law_from_saved", "law_to_dict", "load_law", "read_saved",
           "save_law"]

#: Keys of a saved fit written after ``scalelab_version`` (the big arrays go last).
_TAIL = ("cov_theta", "residuals", "bootstrap_params")


def law_to_dict(law: ScalingLaw) -> dict[str, Any]:
    """Everything needed to reload a working law: description, options, the fit result, version, hashes."""
    from .. import __version__

    result = law.result_
    d: dict[str, Any] = {
        "law": law.name,
        "class": type(law).__name__,
        "citation": law.citation,
        "equation": law.equation,
        "covariates": {c: law.covariate_units.get(c, "") for c in law.covariates},
        "conventions": dict(law.conventions),
        "options": _saved_options(law),
    }
    r = result.to_dict()
    d.update({k: v for k, v in r.items() if k not in _TAIL})
    d["derived"] = law.derived()
    d["scalelab_version"] = __version__
    d.update({k: r[k] for k in _TAIL})
    d["config_hash"] = _stable_hash({k: d[k] for k in ("law", "options", "data_hash", "preset")})
    return d


def _saved_options(law: ScalingLaw) -> dict[str, Any]:
    """The law's options as JSON: an option newer than saved fits (``options_since``) only when it differs from
    the value that reproduces them, so those fits keep their config hashes; a dict of numbers stays a dict."""
    since = type(law).options_since
    out: dict[str, Any] = {}
    for k, v in law.get_params().items():
        if k in since and _same(v, since[k]):
            continue
        if isinstance(v, Mapping):
            try:
                v = {str(a): [float(x) for x in b] for a, b in v.items()}
            except (TypeError, ValueError):
                v = repr(v)
        out[k] = v if isinstance(v, (int, float, str, bool, type(None), dict)) else repr(v)
    return out


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def law_from_dict(cls: type[ScalingLaw], d: Mapping[str, Any], source: str = "the saved fit") -> ScalingLaw:
    """Rebuild a working law from :func:`law_to_dict` output (the class is looked up by ``d["law"]``
    unless ``cls`` is that law; ``ScalingLaw`` itself has no name).

    A dict that is not such output (a file edited by hand, cut short, or saved for another law) raises a
    DataError naming ``source``, the field and what it should hold, never a bare KeyError or TypeError."""
    if not isinstance(d, Mapping) or "law" not in d or "params" not in d:
        raise DataError(explain(f"{source} is not a saved fit (no 'law'/'params' keys)", fix=SAVED_FIT_FIX))
    klass = get_law(d["law"]) if cls.name is None or cls.name != d.get("law") else cls
    _check_saved(d, klass, source)
    try:
        return _law_from_checked(klass, d)
    except ScalelabError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise DataError(explain(f"{source} is a damaged saved fit of the {klass.name} law",
                                value=f"{type(e).__name__}: {e}", fix=_REFIT_FIX.format(law=klass.name))) from e


#: How to replace a saved fit that cannot be read back.
_REFIT_FIX = ("restore the file, or write it again with `scalelab fit RUNS --law {law} --out FILE` "
              "(law.save() in Python)")

#: Fields of a saved fit that hold a table (a JSON object) or null.
_MAPPING_FIELDS = ("options", "stderr", "intervals", "derived", "derived_intervals",
                   "goodness_of_fit", "quality", "calibration", "fitted_range", "fit_info")


def _check_saved(d: Mapping[str, Any], klass: type[ScalingLaw], source: str) -> None:
    """Raise a DataError naming the first field of ``d`` that :func:`law_to_dict` could not have written."""
    law, names = klass.name, klass.param_names

    def bad(problem: str, value: object, allowed: str) -> DataError:
        return DataError(explain(f"{source}: {problem}", value=value, allowed=allowed,
                                 fix=_REFIT_FIX.format(law=law)))

    params = d["params"]
    if not isinstance(params, Mapping):
        raise bad("'params' is not a table of parameter values", type(params).__name__,
                  f"an object with {', '.join(names)}")
    missing = [n for n in names if n not in params]
    if missing:
        raise bad(f"the {law} law needs parameters {', '.join(missing)}, which the file lacks "
                  "(edited, or saved for another law?)", sorted(params), f"the parameters {', '.join(names)}")
    for n in names:
        v = params[n]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise bad(f"parameter {n!r} is not a finite number", v, "a finite number")
    for key in _MAPPING_FIELDS:
        if d.get(key) is not None and not isinstance(d[key], Mapping):
            raise bad(f"field {key!r} is not a table", d[key], "a JSON object or null")
    for key, ranges in (("fitted_range", d.get("fitted_range")), ("intervals", d.get("intervals"))):
        for k, v in (ranges or {}).items():
            if not (isinstance(v, (list, tuple)) and len(v) == 2
                    and all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in v)):
                raise bad(f"{key}[{k!r}] is not a [low, high] pair of numbers", v, "[low, high]")
    for key in ("interval_level", "objective", "n_samples"):
        v = d.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise bad(f"field {key!r} is not a number", v, "a number or null")
    shapes = {"cov_theta": (len(names), len(names)), "residuals": None, "bootstrap_params": None}
    for key, shape in shapes.items():
        if d.get(key) is None:
            continue
        try:
            a = np.asarray(d[key], dtype=float)
        except (TypeError, ValueError):
            raise bad(f"field {key!r} is not an array of numbers", _short(d[key]), "numbers or null") from None
        if (shape is not None and a.shape != shape) or (key == "bootstrap_params" and a.size % len(names)):
            want = f"shape {shape}" if shape else f"a multiple of {len(names)} values"
            raise bad(f"field {key!r} has the wrong shape", list(a.shape), want)


def _short(v: object) -> object:
    """A value short enough to quote in a message."""
    r = repr(v)
    return v if len(r) <= 60 else r[:57] + "..."


def _law_from_checked(klass: type[ScalingLaw], d: Mapping[str, Any]) -> ScalingLaw:
    """The law ``d`` describes, once :func:`_check_saved` has passed it."""
    valid = set(klass._get_param_names())
    since = klass.options_since  # absent from a file saved before they existed: the value that made it
    opts: dict[str, Any] = {k: v for k, v in (d.get("options") or {}).items()
                            if k in valid and (isinstance(v, (int, float, str, bool, type(None)))
                                               or (k in since and isinstance(v, dict)))
                            and not (k == "init" and v not in ("grid", "coarse"))}
    law = klass(**{**since, **opts})
    result = FitResult.from_dict(d, klass.param_names, interval_level=float(law.level))
    law.theta_ = klass._to_theta(result.params)[0]
    law.result_ = result.replace(derived=law._derived_at(result.params))
    return law


def save_law(law: ScalingLaw, path: str | Path) -> Path:
    """Write :func:`law_to_dict` as JSON (NaN/inf become null).

    A fitted law's calibrated new-run band needs the backtest scores of its own runs, and a saved law no
    longer has the runs: they are computed here first if nothing asked for that band yet."""
    if law.result_.calibration is None and getattr(law, "_fit_data", None) is not None:
        from .calibration import calibrate

        calibrate(law)
    path = Path(path)
    path.write_text(json.dumps(_jsonable(law_to_dict(law)), indent=2, allow_nan=False))
    return path


def load_law(cls: type[ScalingLaw], path: str | Path) -> ScalingLaw:
    """Read a law saved with :func:`save_law`."""
    return law_from_saved(cls, *read_saved(path))


#: What to do with a file that is not a saved fit (the default ``fix`` of :func:`read_saved`).
SAVED_FIT_FIX = "pass the file written by `scalelab fit --out` or law.save()"


def read_saved(path: str | Path, fix: str = SAVED_FIT_FIX) -> tuple[Path, Any]:
    """``(path, parsed JSON)`` of a saved-fit file, ``~`` expanded: the one reader of saved fits, for
    :func:`load_law`, budget's allocation laws and hyperparameter fits. A missing file raises
    FileNotFoundError with its path (a directory, IsADirectoryError); a file that is not JSON text, a
    DataError naming the file, the JSON error and ``fix``."""
    p = Path(path).expanduser()
    try:
        return p, json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        why = f"invalid JSON: {e.msg} at line {e.lineno}"
    except UnicodeDecodeError as e:
        why = f"not UTF-8 text: byte {e.start}"
    raise DataError(explain(f"{p} is not a saved fit ({why})", fix=fix))


def law_from_saved(cls: type[ScalingLaw], path: Path, d: Any) -> ScalingLaw:
    """:func:`law_from_dict` of ``d``, the JSON :func:`read_saved` read from ``path``; a DataError naming
    the file when ``d`` holds no fit, or a damaged one."""
    return law_from_dict(cls, d, source=str(path))


def _jsonable(obj: Any) -> Any:
    """Plain JSON types for a saved fit: numpy scalars and arrays unwrapped, NaN and inf as null."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _stable_hash(obj: Any) -> str:
    from .._hash import stable_hash  # not scalelab._spec, which builds the pydantic spec base class

    return stable_hash(obj)
