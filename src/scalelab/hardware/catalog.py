"""The accelerator catalog: one TOML file per device under ``hardware/catalog/``, human units in the
field names, converted to SI once here (DESIGN.md principle 7).

A user's own device is a file with the same fields, passed by path wherever a GPU name is accepted
(``get_gpu("my-gpu.toml")``, ``scalelab plan --gpu my-gpu.toml``). Every figure can also be overridden
per call: ``get_gpu("h100-sxm", matmul_efficiency=0.55)``.

Catalog fields (units in the names)
-----------------------------------
``fp32_tflops, tf32_tflops, bf16_tflops, fp16_tflops, fp8_tflops, fp4_tflops``
    Dense peak TFLOP/s per compute dtype (never the 2:4-sparse figure); give only those the device has.
``memory_gb``, ``memory_mib``
    HBM capacity: the nominal decimal GB of the datasheet, and the MiB that ``nvidia-smi`` and
    ``torch.cuda.mem_get_info`` report (an "80 GB" H100 reports 81,559 MiB = 79.6 GiB). The planner
    uses ``memory_mib`` where a device file gives it, else ``memory_gb``.
``memory_reserve_gib``
    Bytes kept back from the capacity for the CUDA context, NCCL and cuBLAS workspaces (default
    ``GPUSpec.memory_reserve_bytes``, 1 GiB); the planner fits layouts into capacity minus reserve.
``hbm_bandwidth_tb_per_s``
    HBM bandwidth in TB/s (decimal).
``intra_node_gb_per_s``
    Per-GPU bandwidth to the other GPUs of its node, GB/s *per direction* (NVLink's quoted figure is
    bidirectional: H100's "900 GB/s" is 450 here).
``nic_gbit_per_s``
    Scale-out network per GPU in Gb/s (bits, as NICs are sold: 400 for one NDR port per GPU).
``gpus_per_node``, ``pcie_gb_per_s``, ``host_memory_gb_per_gpu``, ``nvme_gb_per_s``, ``power_w``
    Node shape, host link and offload resources.
``matmul_efficiency``, ``attention_efficiency``, ``network_efficiency``, ``link_latency_us``
    Defaults for the step-time model, with ``efficiency_source`` saying what public data set them
    (``attention_efficiency`` is optional: the fused attention kernel, else ``matmul_efficiency``).
``eager_elementwise_gb_per_s``, ``eager_layer_overhead_us``, ``optimizer_tensor_overhead_us``
    Optional, measured by ``scalelab calibrate`` on a CPU: eager (unfused) elementwise rate in
    planner-counted GB/s, fixed cost per layer, and the optimizer's cost per parameter tensor
    (docs/plan-vs-measured.md). Absent: the bandwidth model alone (every catalog GPU).
``price_per_hour``, ``price_source``
    Indicative USD per GPU-hour; always pass your own for a real budget.
``name``, ``display_name``, ``aliases``, ``source``
    Identity and the datasheets the figures come from.
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
from .spec import ClusterSpec, GPUSpec

__all__ = ["GPUEntry", "get_cluster", "get_gpu", "gpu_from_dict", "list_gpu_entries", "list_gpus"]

#: Catalog peak fields -> GPUSpec.peak_flops_per_s keys.
_PEAK_FIELDS = {f"{d}_tflops": d for d in ("fp32", "tf32", "bf16", "fp16", "fp8", "fp4")}

#: Catalog field -> (GPUSpec field, multiplier to SI). One conversion table, applied once.
_SCALAR_FIELDS: dict[str, tuple[str, float]] = {
    "memory_gb": ("memory_bytes", 1e9),
    "memory_mib": ("memory_bytes", 2.0**20),  # after memory_gb: what the device reports wins
    "memory_reserve_gib": ("memory_reserve_bytes", 2.0**30),
    "hbm_bandwidth_tb_per_s": ("memory_bandwidth_bytes_per_s", 1e12),
    "intra_node_gb_per_s": ("intra_node_bandwidth_bytes_per_s", 1e9),
    "nic_gbit_per_s": ("inter_node_bandwidth_bytes_per_s", 1e9 / 8),
    "pcie_gb_per_s": ("pcie_bandwidth_bytes_per_s", 1e9),
    "host_memory_gb_per_gpu": ("host_memory_bytes_per_gpu", 1e9),
    "nvme_gb_per_s": ("nvme_bandwidth_bytes_per_s", 1e9),
    "link_latency_us": ("link_latency_s", 1e-6),
    "gpus_per_node": ("gpus_per_node", 1),
    "power_w": ("power_w", 1),
    "matmul_efficiency": ("matmul_efficiency", 1),
    "attention_efficiency": ("attention_efficiency", 1),
    "network_efficiency": ("network_efficiency", 1),
    "price_per_hour": ("price_per_hour", 1),
    "eager_elementwise_gb_per_s": ("eager_elementwise_bytes_per_s", 1e9),
    "eager_layer_overhead_us": ("eager_layer_overhead_s", 1e-6),
    "optimizer_tensor_overhead_us": ("optimizer_tensor_overhead_s", 1e-6),
}
_META_FIELDS = ("name", "display_name", "aliases", "source", "efficiency_source", "price_source")
_REQUIRED = ("name", "memory_gb", "hbm_bandwidth_tb_per_s", "intra_node_gb_per_s", "nic_gbit_per_s")
ALLOWED_FIELDS: tuple[str, ...] = (*_META_FIELDS, *_PEAK_FIELDS, *_SCALAR_FIELDS)


@dataclass(frozen=True)
class GPUEntry:
    """A catalog entry: the ``GPUSpec`` plus its display name, aliases and sources."""

    spec: GPUSpec
    display_name: str = ""
    aliases: tuple[str, ...] = ()
    efficiency_source: str = ""
    price_source: str = ""
    file: str = field(default="", compare=False)
    nominal_memory_gb: float | None = None
    """The datasheet's decimal GB (``memory_gb``), shown in tables; the spec holds what the device reports."""

    @property
    def name(self) -> str:
        return self.spec.name

    def summary(self) -> dict[str, Any]:
        """Human-unit row for tables (TFLOP/s, GB, TB/s, GB/s per direction)."""
        g = self.spec
        p = g.peak_flops_per_s
        return {
            "name": g.name,
            "display_name": self.display_name,
            "bf16_tflops": _tf(p.get("bf16")),
            "fp16_tflops": _tf(p.get("fp16")),
            "fp8_tflops": _tf(p.get("fp8")),
            "fp4_tflops": _tf(p.get("fp4")),
            "memory_gb": self.nominal_memory_gb or g.memory_bytes / 1e9,
            "memory_mib": g.memory_bytes / 2**20,
            "hbm_tb_per_s": g.memory_bandwidth_bytes_per_s / 1e12,
            "intra_node_gb_per_s": g.intra_node_bandwidth_bytes_per_s / 1e9,
            "nic_gb_per_s": g.inter_node_bandwidth_bytes_per_s / 1e9,
            "gpus_per_node": g.gpus_per_node,
            "matmul_efficiency": g.matmul_efficiency,
            "network_efficiency": g.network_efficiency,
            "price_per_hour": g.price_per_hour,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "aliases": list(self.aliases), "source": self.spec.source,
                "efficiency_source": self.efficiency_source, "price_source": self.price_source,
                "spec": self.spec.to_dict()}


def _tf(x: float | None) -> float | None:
    return None if x is None else x / 1e12


def gpu_from_dict(data: dict[str, Any], where: str = "GPU file") -> GPUEntry:
    """Convert one catalog record (human units) into a ``GPUEntry`` (SI ``GPUSpec`` inside).

    Unknown fields, missing required ones, non-numbers and zero or negative sizes raise ``ConfigError``
    naming the field, the value and what is allowed.
    """
    unknown = [k for k in data if k not in ALLOWED_FIELDS]
    if unknown:
        from ..errors import suggest

        hints = {k: suggest(k, ALLOWED_FIELDS, n=1) for k in unknown}
        hint = "; ".join(f"{k!r} -> did you mean {v[0]!r}?" for k, v in hints.items() if v)
        raise ConfigError(explain(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}",
                                  allowed="fields " + ", ".join(ALLOWED_FIELDS),
                                  fix=hint or "remove them or rename to a listed field"))
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ConfigError(explain(f"{where}: missing required field(s) {', '.join(map(repr, missing))}",
                                  fix="add them, in the units their names give (see docs/models-and-hardware.md)"))
    peaks: dict[str, float] = {}
    for key, dtype in _PEAK_FIELDS.items():
        if key in data:
            peaks[dtype] = _number(data[key], key, where) * 1e12
    if not peaks:
        raise ConfigError(explain(f"{where}: no peak FLOP/s given", allowed=", ".join(_PEAK_FIELDS),
                                  fix="add at least bf16_tflops (dense, not the sparse figure)"))
    kwargs: dict[str, Any] = {"name": str(data["name"]), "peak_flops_per_s": peaks,
                              "source": str(data.get("source", ""))}
    for key, (target, scale) in _SCALAR_FIELDS.items():
        if key in data:
            v = _number(data[key], key, where)
            kwargs[target] = int(v) if target == "gpus_per_node" and float(v).is_integer() else v * scale
    try:
        spec = GPUSpec(**kwargs)
    except ValidationError as e:
        raise config_error_from_validation(e, where) from None
    aliases = data.get("aliases", [])
    if isinstance(aliases, str) or not all(isinstance(a, str) for a in aliases):
        raise ConfigError(explain(f"{where}: 'aliases' must be a list of names", value=aliases))
    return GPUEntry(spec=spec, display_name=str(data.get("display_name", spec.name)), aliases=tuple(aliases),
                    efficiency_source=str(data.get("efficiency_source", "")),
                    price_source=str(data.get("price_source", "")),
                    nominal_memory_gb=float(data["memory_gb"]))


def _number(v: Any, key: str, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(explain(f"{where}: {key} must be a number", value=v, fix=f"write {key} = <number>"))
    if v != v or v in (float("inf"), float("-inf")):
        raise ConfigError(explain(f"{where}: {key} must be finite", value=v))
    if v <= 0 and key != "link_latency_us":
        raise ConfigError(explain(f"{where}: {key} must be positive", value=v, allowed="a number > 0",
                                  fix=f"give the device's real {key}"))
    return float(v)


def _catalog_files() -> list[Any]:
    folder = resources.files("scalelab.hardware") / "catalog"
    return sorted((f for f in folder.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)


@functools.cache
def _catalog() -> dict[str, GPUEntry]:
    out: dict[str, GPUEntry] = {}
    for f in _catalog_files():
        entry = gpu_from_dict(tomllib.loads(f.read_text(encoding="utf-8")), where=f"catalog file {f.name}")
        out[entry.name.lower()] = GPUEntry(**{**entry.__dict__, "file": f.name})
    return out


@functools.cache
def _alias_index() -> dict[str, str]:
    idx: dict[str, str] = {}
    for key, e in _catalog().items():
        idx[key] = key
        for a in e.aliases:
            idx.setdefault(a.lower(), key)
    return idx


def list_gpu_entries() -> list[GPUEntry]:
    """Every catalog entry with its sources, in file-name order."""
    return list(_catalog().values())


def list_gpus() -> list[GPUSpec]:
    """Every catalog device as a ``GPUSpec``.

    >>> "h100-sxm" in [g.name for g in list_gpus()]
    True
    """
    return [e.spec for e in _catalog().values()]


def get_gpu_entry(name_or_path: str | Path) -> GPUEntry:
    """The catalog entry for a name or alias (case-insensitive), or a user's TOML/JSON file."""
    if isinstance(name_or_path, str):
        key = _alias_index().get(name_or_path.strip().lower())
        if key is not None:
            return _catalog()[key]
    if looks_like_path(name_or_path):
        return gpu_from_dict(read_config_file(name_or_path), where=str(name_or_path))
    raise UnknownNameError("gpu", str(name_or_path), [e.name for e in _catalog().values()],
                           fix="run `scalelab gpus` to list them, or pass a .toml file with the catalog fields")


def get_gpu(name_or_path: str | Path | GPUSpec, **overrides: Any) -> GPUSpec:
    """A ``GPUSpec`` by catalog name, alias or file path; ``overrides`` replace GPUSpec fields (SI units).

    Examples
    --------
    >>> get_gpu("h100-sxm").peak("bf16") / 1e12
    989.4
    >>> get_gpu("H100", matmul_efficiency=0.55).matmul_efficiency
    0.55
    """
    spec = name_or_path if isinstance(name_or_path, GPUSpec) else get_gpu_entry(name_or_path).spec
    if not overrides:
        return spec
    bad = [k for k in overrides if k not in GPUSpec.model_fields]
    if bad:
        raise ConfigError(explain(f"unknown GPUSpec field(s) {', '.join(map(repr, bad))}",
                                  allowed=", ".join(GPUSpec.model_fields), fix="use GPUSpec field names (SI units)"))
    try:
        return GPUSpec(**{**spec.model_dump(), **overrides})
    except ValidationError as e:
        raise config_error_from_validation(e, f"overrides of {spec.name!r}") from None


def get_cluster(
    gpu: str | Path | GPUSpec,
    n_gpus: int,
    gpus_per_node: int | None = None,
    price_per_gpu_hour: float | None = None,
    **gpu_overrides: Any,
) -> ClusterSpec:
    """A cluster of ``n_gpus`` copies of one device (by name, file or ``GPUSpec``).

    Parameters
    ----------
    gpu
        Catalog name or alias, a TOML/JSON file, or a ``GPUSpec``.
    n_gpus
        Total accelerators in the job (> 0).
    gpus_per_node
        GPUs per node; defaults to the catalog value (capped at ``n_gpus``).
    price_per_gpu_hour
        USD per GPU-hour; defaults to the catalog's indicative price (``None`` where it has none).
    **gpu_overrides
        GPUSpec fields to override, e.g. ``matmul_efficiency=0.5``.

    Examples
    --------
    >>> c = get_cluster("h100-sxm", n_gpus=512)
    >>> c.n_nodes, c.gpus_per_node
    (64, 8)
    """
    for label, v in (("n_gpus", n_gpus), ("gpus_per_node", gpus_per_node)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
            raise ConfigError(explain(f"{label} must be a positive whole number", value=v, allowed="an integer >= 1",
                                      fix=f"pass {label}=8 or another count of GPUs"))
    if price_per_gpu_hour is not None and not (price_per_gpu_hour >= 0):
        raise ConfigError(explain("price_per_gpu_hour must be >= 0", value=price_per_gpu_hour,
                                  fix="pass the USD price of one GPU-hour"))
    spec = get_gpu(gpu, **gpu_overrides)
    try:
        return ClusterSpec(gpu=spec, n_gpus=n_gpus, gpus_per_node=gpus_per_node, price_per_gpu_hour=price_per_gpu_hour)
    except ValidationError as e:
        raise config_error_from_validation(e, "cluster") from None
