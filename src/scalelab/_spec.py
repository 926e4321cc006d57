"""The base class of every input spec: frozen, strict pydantic models with a stable content hash.

Specs are immutable (``frozen=True``), reject unknown fields (``extra="forbid"``) and read each field's
docstring as its description, so ``scalelab ... --help`` and the docs show units (DESIGN.md principle 3).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict


def stable_hash(obj: Any, length: int = 16) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys, no whitespace), first ``length`` hex digits."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


class Spec(BaseModel):
    """Frozen, strict pydantic model with ``to_dict()`` and ``content_hash()``."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the spec (nested specs included)."""
        return self.model_dump(mode="json")

    def content_hash(self) -> str:
        """A stable hash of the resolved spec: equal specs give equal hashes across runs and machines."""
        return stable_hash(self.to_dict())
