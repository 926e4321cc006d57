"""The registry of scaling laws: :func:`register_law`, :func:`get_law`, :func:`list_laws`.

A :class:`~scalelab.laws.base.ScalingLaw` subclass that sets ``name`` registers itself on definition. The
built-in laws live in the modules of ``scalelab.laws`` that are not machinery (:data:`_NOT_LAW_MODULES`);
they are imported on the first lookup of a law not yet registered (or the first listing), so that ``import
scalelab.laws`` and a fit of an already imported law (``get_law("chinchilla")``) stay cheap.

Families of laws built on demand (e.g. ``power_law("N", "D")``, registered as ``"power-law[N,D]"``) add a
*name builder* with :func:`register_name_builder`, so that a fit saved in another process under such a
name loads again; this module imports no law module by name.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, UnknownNameError, explain

if TYPE_CHECKING:
    from .base import ScalingLaw

__all__ = ["get_law", "list_laws", "register_law", "register_name_builder"]

_REGISTRY: dict[str, type[ScalingLaw]] = {}
#: Name prefix -> function that builds the law class for a name with that prefix (see :func:`get_law`).
_NAME_BUILDERS: dict[str, Callable[[str], type[ScalingLaw] | None]] = {}
#: Modules of this package that hold machinery, not laws; every other module is imported on demand so
#: that its law classes register themselves.
_NOT_LAW_MODULES = frozenset({"base", "registry", "validation", "io", "result", "fitting", "uncertainty", "data",
                              "approaches", "forecast", "quality", "backtest", "calibration"})
_builtins_loaded = False


def register_law(cls: type[ScalingLaw]) -> type[ScalingLaw]:
    """Class decorator that adds a law to the registry (subclasses that set ``name`` join automatically)."""
    key = cls.__dict__.get("name")
    if not key:
        raise ConfigError(explain("a registered law needs a class attribute `name`", value=cls.__name__))
    other = _REGISTRY.get(key)
    if other is not None and other.__qualname__ != cls.__qualname__:
        raise ConfigError(explain(f"two laws share the registry name {key!r}",
                                  value=f"{other.__module__}.{other.__qualname__} and "
                                        f"{cls.__module__}.{cls.__qualname__}",
                                  fix="give one of them another `name`"))
    _REGISTRY[key] = cls
    return cls


def register_name_builder(prefix: str, build: Callable[[str], type[ScalingLaw] | None]) -> None:
    """Let :func:`get_law` build the class of an unregistered name that starts with ``prefix`` (a family
    of laws made on demand, such as ``power-law[N,D]``): ``build(name)`` returns the class, or None when
    the name is not one of the family's."""
    _NAME_BUILDERS[prefix] = build


def _load_builtins() -> None:
    """Import every law module of ``scalelab.laws`` once, so their classes register themselves."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    from . import __path__ as pkg_path

    for mod in pkgutil.iter_modules(pkg_path):
        if mod.name.startswith("_") or mod.name in _NOT_LAW_MODULES:
            continue
        importlib.import_module(f"{__package__}.{mod.name}")


def _is_law_class(obj: Any) -> bool:
    """A ScalingLaw subclass, told without importing :mod:`scalelab.laws.base` (it imports this module)."""
    return isinstance(obj, type) and any(k.__name__ == "ScalingLaw" and k.__module__ == f"{__package__}.base"
                                         for k in obj.__mro__)


def get_law(name: str) -> type[ScalingLaw]:
    """The law class registered under ``name`` (``get_law("chinchilla") is ChinchillaLaw``).

    Raises
    ------
    UnknownNameError
        with the closest registered names.
    """
    if _is_law_class(name):
        return name  # type: ignore[return-value]
    raw = str(name).strip()
    if raw in _REGISTRY:  # already imported (ChinchillaLaw always is): the other law modules are not needed
        return _REGISTRY[raw]
    _load_builtins()
    if raw in _REGISTRY:
        return _REGISTRY[raw]
    for key, klass in _REGISTRY.items():
        if key.lower() == raw.lower():
            return klass
    # A law built on demand and saved in another process: rebuild its class from the name it was saved under.
    for prefix, build in _NAME_BUILDERS.items():
        built = build(raw) if raw.startswith(prefix) else None
        if built is not None:
            return built
    raise UnknownNameError("law", str(name), _REGISTRY, fix="run `scalelab laws` to list the built-in laws")


def list_laws() -> list[type[ScalingLaw]]:
    """Every registered law class, sorted by registry name."""
    _load_builtins()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
