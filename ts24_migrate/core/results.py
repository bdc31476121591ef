"""Typed stage results: frozen models that the CLI's --json, the flows and the reports take as they are.

A stage's step returns a `StageResult` (a frozen pydantic model defined next
to the step that makes it) instead of a dict read by string keys elsewhere.
`jsonable` is the one place such results become plain JSON data: a model
dumps to exactly the dict the step returned before, so the CLI's --json
output and the stored figures keep their shape.

Example::

    class CheckResult(StageResult):
        run_id: str
        ok: bool

    jsonable({"check": CheckResult(run_id="r1", ok=True)})   # {"check": {"run_id": "r1", "ok": True}}
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class StageResult(BaseModel):
    """A result of one step: immutable, and only the fields it declares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what --json prints and the figures store)."""
        return self.model_dump(by_alias=True)


def jsonable(value: Any) -> Any:
    """`value` with every StageResult in it (in dicts, lists, tuples) turned into plain data."""
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True)
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value
