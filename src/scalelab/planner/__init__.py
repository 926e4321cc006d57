"""The planner: memory, FLOPs, communication, step time, cost and layout search."""

from .flops import FlopConventions, FlopsBreakdown, flops_per_step, flops_per_token
from .comm import CommBreakdown, comm_per_step
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
from .plan import Plan, check_layout, plan
from .search import Rejected, SearchResult, search_layouts
from .step_time import StepTime

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
    # comm.py, step_time.py, plan.py, search.py
    "CommBreakdown",
    "comm_per_step",
    "StepTime",
    "Plan",
    "plan",
    "check_layout",
    "SearchResult",
    "Rejected",
    "search_layouts",
]
