"""Model architectures: ``ModelSpec`` (dense and MoE), presets of public models, HF config import.

>>> from scalelab.arch import get_model
>>> m = get_model("mixtral-8x7b")
>>> round(m.n_params().total / 1e9, 1), round(m.n_params().active / 1e9, 1)
(46.7, 12.9)
"""

from .hf import from_hf_config, to_hf_config
from .loader import Preset, get_model, get_preset, list_models, list_presets, load_model_file
from .spec import MLASpec, ModelSpec, MoESpec, ParamCounts

__all__ = [
    "MLASpec",
    "MoESpec",
    "ModelSpec",
    "ParamCounts",
    "Preset",
    "from_hf_config",
    "get_model",
    "get_preset",
    "list_models",
    "list_presets",
    "load_model_file",
    "to_hf_config",
]
