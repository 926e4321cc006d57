"""Accelerators and clusters: ``GPUSpec``, ``ClusterSpec`` and the device catalog.

>>> from scalelab.hardware import get_cluster
>>> get_cluster("h100-sxm", n_gpus=16).n_nodes
2
"""

from .catalog import GPUEntry, get_cluster, get_gpu, get_gpu_entry, list_gpu_entries, list_gpus
from .spec import ClusterSpec, GPUSpec

__all__ = ["ClusterSpec", "GPUEntry", "GPUSpec", "get_cluster", "get_gpu", "get_gpu_entry", "list_gpu_entries",
           "list_gpus"]
