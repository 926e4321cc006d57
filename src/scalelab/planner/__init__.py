"""The planner: memory, FLOPs, communication, step time, cost and layout search."""

from .band import StepTimeBand, step_time_band
from .comm import CommBreakdown, RingRecipe, comm_per_step
from .explain import LayoutComparison, explain_layout, parse_layout
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
from .plan import Plan, check_layout, plan
from .search import Rejected, SearchResult, bounded_candidates, search_layouts
from .step_time import Float8Recipe, StepTime

__all__ = [
    "CommBreakdown",
    "Float8Recipe",
    "FlopConventions",
    "FlopsBreakdown",
    "Layout",
    "LayoutComparison",
    "LoRASpec",
    "MemoryBreakdown",
    "MemoryConventions",
    "Plan",
    "Rejected",
    "RingRecipe",
    "SearchResult",
    "StepTime",
    "StepTimeBand",
    "TrainSpec",
    "activation_bytes_per_layer",
    "bounded_candidates",
    "check_layout",
    "comm_per_step",
    "explain_layout",
    "flops_per_step",
    "flops_per_token",
    "inference_weights_bytes",
    "lora_trainable_params",
    "memory_per_gpu",
    "parse_layout",
    "plan",
    "search_layouts",
    "step_time_band",
    "zero_model_states_bytes",
]
