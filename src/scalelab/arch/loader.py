"""Find a ``ModelSpec`` by preset name or load one from a file.

``get_model`` accepts, in this order:

1. a preset name or alias, case-insensitive (``"llama-3.1-8b"``, ``"Llama-3.1-8B"``, or the Hugging Face
   repository id ``"meta-llama/Llama-3.1-8B"``);
2. a path to a ``.toml`` or ``.json`` file, whose content decides how it is read: a Hugging Face
   ``config.json`` (it has ``model_type``) goes through :func:`scalelab.arch.hf.from_hf_config`; anything
   else is a ``ModelSpec`` written out field by field (top level or under a ``[model]`` table), optionally
   starting from a preset with ``base = "llama-3.1-8b"``.

Presets live as data in ``arch/presets/*.toml`` (one file per family), each with the public source of its
shape. Published parameter totals are pinned in ``tests/arch/test_presets.py``.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._config_files import config_error_from_validation, looks_like_path, read_config_file
from ..errors import ConfigError, UnknownNameError, explain
from .spec import ModelSpec

__all__ = ["Preset", "get_model", "get_preset", "list_models", "list_presets", "load_model_file", "model_from_dict"]

#: Keys of a preset entry that describe it rather than the model; everything else is a ModelSpec field.
_META_KEYS = ("aliases", "family", "source", "notes")


@dataclass(frozen=True)
class Preset:
    """A catalog entry: the spec plus where its numbers come from."""

    spec: ModelSpec
    """The model."""
    family: str
    """Architecture family (``llama``, ``mixtral``, ``qwen3_moe``, ``gpt``...)."""
    source: str
    """Public source of the shape (config file, paper and table)."""
    aliases: tuple[str, ...] = ()
    """Other accepted names, including the Hugging Face repository id where there is one."""
    notes: str = ""
    """Known differences from the published model (e.g. a module ModelSpec cannot express)."""
    file: str = field(default="", compare=False)
    """Catalog file the preset was read from."""

    @property
    def name(self) -> str:
        return self.spec.name

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "source": self.source, "aliases": list(self.aliases),
                "notes": self.notes, **self.spec.summary(), "spec": self.spec.to_dict()}


#: Listing order of the preset files (roughly chronological); files not named here come after, by name.
_FILE_ORDER = ("gpt", "deepmind", "llama", "falcon", "mistral", "qwen", "deepseek", "tiny")


def _preset_files() -> list[Any]:
    folder = resources.files("scalelab.arch") / "presets"
    files = [f for f in folder.iterdir() if f.name.endswith(".toml")]
    rank = {stem: i for i, stem in enumerate(_FILE_ORDER)}
    return sorted(files, key=lambda f: (rank.get(f.name.removesuffix(".toml"), len(rank)), f.name))


@functools.cache
def _catalog() -> dict[str, Preset]:
    presets: dict[str, Preset] = {}
    for f in _preset_files():
        data = tomllib.loads(f.read_text(encoding="utf-8"))
        for entry in data.get("preset", []):
            entry = dict(entry)
            meta = {k: entry.pop(k) for k in _META_KEYS if k in entry}
            try:
                spec = ModelSpec(**entry)
            except ValidationError as e:  # a broken catalog file is a packaging bug: say which entry
                raise config_error_from_validation(e, f"preset {entry.get('name')!r} in {f.name}") from None
            if spec.name.lower() in presets:
                raise ConfigError(explain(f"duplicate preset name in {f.name}", value=spec.name))
            presets[spec.name.lower()] = Preset(
                spec=spec,
                family=meta.get("family", ""),
                source=meta.get("source", ""),
                aliases=tuple(meta.get("aliases", ())),
                notes=meta.get("notes", ""),
                file=f.name,
            )
    return presets


@functools.cache
def _alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for key, p in _catalog().items():
        index[key] = key
        for a in p.aliases:
            index.setdefault(a.lower(), key)
    return index


def _normalise(name: str) -> str:
    return name.strip().lower()


def list_presets(family: str | None = None) -> list[Preset]:
    """Every preset (with its source), in catalog order; optionally only one ``family``."""
    out = list(_catalog().values())
    if family is not None:
        families = sorted({p.family for p in out})
        if family.strip().lower() not in families:
            raise UnknownNameError("model family", family, families,
                                   fix="use a family shown by `scalelab models --format json` (field 'family')")
        out = [p for p in out if p.family == family.strip().lower()]
    return out


def list_models(family: str | None = None) -> list[ModelSpec]:
    """Every preset model, in catalog order.

    >>> [m.name for m in list_models("mixtral")]
    ['mixtral-8x7b', 'mixtral-8x22b']
    """
    return [p.spec for p in list_presets(family)]


def get_preset(name: str) -> Preset:
    """The catalog entry for a preset name or alias (case-insensitive); raises ``UnknownNameError``."""
    key = _alias_index().get(_normalise(name))
    if key is None:
        raise UnknownNameError("model", name, [p.name for p in _catalog().values()],
                               fix="run `scalelab models` to list presets, or pass a .toml/.json file "
                                   "(a ModelSpec or a Hugging Face config.json)")
    return _catalog()[key]


def model_from_dict(data: dict[str, Any], where: str = "model config", name: str | None = None) -> ModelSpec:
    """Build a ``ModelSpec`` from a parsed file: a HF ``config.json`` or ModelSpec fields.

    ModelSpec fields may sit at the top level or under a ``model`` table, and ``base = "<preset>"``
    starts from a preset and overrides only the fields given.
    """
    if "model_type" in data or "architectures" in data:
        from .hf import from_hf_config

        return from_hf_config(data, name=name)
    hf_keys = sorted(k for k in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size")
                     if k in data)
    if len(hf_keys) >= 2:  # read as ModelSpec fields, it failed as "missing n_layers ... unknown hidden_size"
        from .hf import SUPPORTED_MODEL_TYPES

        raise ConfigError(explain(f"{where} looks like a Hugging Face config.json without 'model_type'",
                                  value=hf_keys, allowed="model_type one of " + ", ".join(SUPPORTED_MODEL_TYPES),
                                  fix='add "model_type" (e.g. "model_type": "llama"), as the model\'s own '
                                      "config.json has it"))
    fields = dict(data.get("model", data)) if isinstance(data.get("model"), dict) else dict(data)
    base = fields.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(explain(f"{where}: 'base' must be a preset name", value=base,
                                      fix="write base = \"llama-3.1-8b\" (see `scalelab models`)"))
        start = get_preset(base).spec.model_dump(exclude_none=True)
        if "moe" in fields and isinstance(fields["moe"], dict) and isinstance(start.get("moe"), dict):
            fields["moe"] = {**start["moe"], **fields["moe"]}
        if "mla" in fields and isinstance(fields["mla"], dict) and isinstance(start.get("mla"), dict):
            fields["mla"] = {**start["mla"], **fields["mla"]}
        fields = {**_drop_derived(start, fields), **fields}
    try:
        return ModelSpec(**fields)
    except ValidationError as e:
        raise config_error_from_validation(e, where, list(ModelSpec.model_fields)) from None
    except TypeError as e:  # e.g. a non-string key
        raise ConfigError(explain(f"{where}: {e}", fix="write ModelSpec fields as key = value")) from None


def _drop_derived(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Forget widths the base derived (d_head = d_model // n_heads, n_kv_heads = n_heads) when the
    changes alter what they were derived from, so they are derived again; explicit ones are kept."""
    base = dict(base)
    h, a = base.get("d_model"), base.get("n_heads")
    if ("n_heads" in changes or "d_model" in changes) and "d_head" not in changes and h and a:
        if base.get("d_head") == h // a:
            base.pop("d_head", None)
    if "n_heads" in changes and "n_kv_heads" not in changes and base.get("n_kv_heads") == a:
        base.pop("n_kv_heads", None)
    return base


def load_model_file(path: str | Path) -> ModelSpec:
    """Read a model from a ``.toml``/``.json`` file (ModelSpec fields, or a HF ``config.json``)."""
    data = read_config_file(path)
    p = Path(path)
    # A HF config has no name of its own: use the file name, or its folder for a plain `config.json`.
    name = p.expanduser().resolve().parent.name if p.stem == "config" else p.stem
    return model_from_dict(data, where=str(path), name=name or None)


def get_model(name_or_path: str | Path | ModelSpec, **overrides: Any) -> ModelSpec:
    """A ``ModelSpec`` from a preset name, a HF repo id alias, or a config file; ``overrides`` replace fields.

    Parameters
    ----------
    name_or_path
        Preset name or alias (case-insensitive), a path to a ``.toml``/``.json`` file, or a ``ModelSpec``.
    **overrides
        Fields to change (``n_layers=16``); the result is validated again.

    Examples
    --------
    >>> get_model("llama-3.1-8b").n_params().total
    8030261248
    >>> get_model("Mixtral-8x7B", n_layers=2).n_layers
    2
    """
    if isinstance(name_or_path, ModelSpec):
        spec = name_or_path
    elif isinstance(name_or_path, str) and _normalise(name_or_path) in _alias_index():
        spec = get_preset(name_or_path).spec
    elif looks_like_path(name_or_path):
        spec = load_model_file(name_or_path)
    else:
        spec = get_preset(str(name_or_path)).spec  # raises UnknownNameError with suggestions
    if not overrides:
        return spec
    data = _drop_derived(spec.model_dump(exclude_none=True), overrides)
    try:
        return ModelSpec(**{**data, **overrides})
    except ValidationError as e:
        raise config_error_from_validation(e, f"overrides of {spec.name!r}", list(ModelSpec.model_fields)) from None
