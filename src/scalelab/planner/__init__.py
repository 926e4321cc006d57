"""The planner: memory, FLOPs, communication, step time, cost and layout search."""

from .flops import FlopConventions, FlopsBreakdown, flops_per_step, flops_per_token
from .layout import Layout, LoRASpec, TrainSpec
from .memory import (
    MemoryBreakdown,
    MemoryConventions,
    activation_bytes_per_layer,
    inference_weights_bytes,
    lora_trainable_params,
    memory_per_gpu,
    zero_model_states_bytes,
)

__all__ = [
    "Layout",
    "LoRASpec",
    "TrainSpec",
    # flops.py
    "FlopConventions",
    "FlopsBreakdown",
    "flops_per_token",
    "flops_per_step",
    # memory.py
    "MemoryBreakdown",
    "MemoryConventions",
    "memory_per_gpu",
    "activation_bytes_per_layer",
    "inference_weights_bytes",
    "lora_trainable_params",
    "zero_model_states_bytes",
]
