"""Accelerators and clusters: ``GPUSpec``, ``ClusterSpec`` and the device catalog."""

from .spec import ClusterSpec, GPUSpec

__all__ = ["ClusterSpec", "GPUSpec"]
