"""The planner: memory, FLOPs, communication, step time, cost and layout search."""

from .layout import Layout, LoRASpec, TrainSpec

__all__ = ["Layout", "LoRASpec", "TrainSpec"]
