"""Model architectures: ``ModelSpec`` (dense and MoE), presets of public models, HF config import."""

from .spec import MLASpec, ModelSpec, MoESpec, ParamCounts

__all__ = ["MLASpec", "ModelSpec", "MoESpec", "ParamCounts"]
