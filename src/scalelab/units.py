"""Units, constants and formatting. SI inside; every output says decimal (GB) or binary (GiB).

Counts (parameters, tokens, FLOPs) always use decimal prefixes (K, M, B, T): a "7B" model has 7e9
parameters. Bytes are formatted in decimal GB by default and in binary GiB on request, and the unit
string always says which.
"""

from __future__ import annotations

import math
from typing import Any

KB, MB, GB, TB = 1e3, 1e6, 1e9, 1e12
KiB, MiB, GiB, TiB = 2.0**10, 2.0**20, 2.0**30, 2.0**40
TERA, PETA = 1e12, 1e15
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0

#: Bytes per element of each storage dtype. Sub-byte formats are fractional: NF4/FP4 pack two values
#: per byte (their block scales are accounted for separately where a formula needs them).
DTYPE_BYTES: dict[str, float] = {
    "fp64": 8.0,
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5,
    "nf4": 0.5,
    "int4": 0.5,
}


def dtype_bytes(dtype: str) -> float:
    """Bytes per element of ``dtype`` (``"bf16"`` -> 2.0).

    >>> dtype_bytes("fp8")
    1.0
    """
    from .errors import ConfigError, explain

    try:
        return DTYPE_BYTES[dtype.lower()]
    except KeyError:
        raise ConfigError(
            explain("unknown dtype", value=dtype, allowed=", ".join(DTYPE_BYTES), fix="use one of the names listed")
        ) from None


def format_count(x: float, digits: int = 3) -> str:
    """Decimal-prefixed count: ``format_count(8.03e9) == '8.03B'`` (parameters, tokens)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= div:
            return f"{x / div:.{digits}g}{suffix}"
    return f"{x:.{digits}g}"


def format_days(x: float) -> str:
    """Days with one decimal, or three significant digits past a million (``--tokens 15e120``, a typo,
    printed a 290-digit number of days): ``format_days(393.25) == '393.2'``."""
    return f"{x:.1f}" if not math.isfinite(x) or abs(x) < 1e6 else f"{x:.3g}"


def format_bytes(x: float, binary: bool = False, digits: int = 4) -> str:
    """Bytes in GB (decimal, default) or GiB (binary); the unit string says which.

    >>> format_bytes(80e9), format_bytes(2**30, binary=True)
    ('80 GB', '1 GiB')
    """
    steps = ((TiB, "TiB"), (GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")) if binary else (
        (TB, "TB"), (GB, "GB"), (MB, "MB"), (KB, "kB"))
    for div, suffix in steps:
        if abs(x) >= div:
            return f"{x / div:.{digits}g} {suffix}"
    return f"{x:.{digits}g} B"


def format_flops(x: float, digits: int = 3) -> str:
    """FLOPs in scientific notation, the way papers quote budgets: ``'5.76e+23 FLOPs'``."""
    return f"{x:.{digits}g} FLOPs"


def format_duration(seconds: float) -> str:
    """Human duration: seconds under a minute, then minutes, hours, days."""
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.3g} min"
    if seconds < SECONDS_PER_DAY:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / SECONDS_PER_DAY:.3g} days"


#: Training FLOPs per parameter per token in the compute convention of scaling laws: forward 2, backward 4
#: (Kaplan et al. 2020 eq. 2.1; Hoffmann et al. 2022 §3).
FLOPS_PER_PARAM_TOKEN = 6.0

#: Inference FLOPs per parameter per token: the forward pass only (Kaplan et al. 2020 §2.1; Sardana et al. 2024).
INFERENCE_FLOPS_PER_PARAM_TOKEN = 2.0


def training_flops(n_params: Any, n_tokens: Any) -> Any:
    """Training compute ``C = 6 N D`` of ``n_params`` (active) parameters trained on ``n_tokens`` tokens.

    The one place the laws, the planner, the wind tunnel and the reports take ``C`` from (numbers or numpy
    arrays); it lives here, in the lowest layer, so a law fit does not load the planner to get it.
    It ignores attention scores and counts the LM head as a parameter;
    :func:`scalelab.planner.flops.flops_per_token` with ``FlopConventions(method="6N")`` is the per-token
    form, the ``exact`` method the matmul count.

    >>> training_flops(70e9, 1.4e12)   # Chinchilla: 5.88e23 FLOPs
    5.88e+23
    """
    return FLOPS_PER_PARAM_TOKEN * n_params * n_tokens


def tokens_for_training_flops(flops: Any, n_params: Any) -> Any:
    """The tokens ``D = C / 6N`` that ``flops`` of training buy a model of ``n_params`` parameters."""
    return flops / (FLOPS_PER_PARAM_TOKEN * n_params)
