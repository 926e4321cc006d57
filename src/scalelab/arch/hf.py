"""Placeholder; replaced below."""
def from_hf_config(x):  # pragma: no cover
    raise NotImplementedError
def to_hf_config(x):  # pragma: no cover
    raise NotImplementedError
