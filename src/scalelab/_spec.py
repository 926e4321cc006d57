"""The base class of every input spec: frozen, strict pydantic models with a stable content hash.

Specs are immutable (``frozen=True``), reject unknown fields (``extra="forbid"``) and read each field's
docstring as its description, so ``scalelab ... --help`` and the docs show units (DESIGN.md principle 3).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidatorFunctionWrapHandler, WrapValidator

from ._hash import stable_hash

__all__ = ["Derived", "Spec", "stable_hash"]


def _none_until_resolved(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    return None if value is None else handler(value)


#: Marks a field that the spec derives from its other fields when it is omitted or ``None`` (``d_head``
#: from ``d_model // n_heads``, ...): ``None`` skips the field's own checks and the spec's
#: ``mode="after"`` validator fills the value in. Declared as
#: ``d_head: Annotated[PositiveInt, Derived] = Field(default=None, validate_default=True)``, the attribute
#: is typed without ``None`` because no constructed spec holds one, so code that reads it needs no
#: narrowing. (``validate_default`` sends the default down the same path; it is also the form of ``Field``
#: whose default type checkers do not compare with the field's type.)
Derived = WrapValidator(_none_until_resolved)


class Spec(BaseModel):
    """Frozen, strict pydantic model with ``to_dict()`` and ``content_hash()``."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the spec (nested specs included)."""
        return self.model_dump(mode="json")

    def content_hash(self) -> str:
        """A stable hash of the resolved spec: equal specs give equal hashes across runs and machines."""
        return stable_hash(self.to_dict())
