"""What the Arrow page readers share: how a read went, and a page's columns made into the stored batch.

A page reader (extract.arrow_sqlite, extract.arrow_mariadb) turns each column of
a page into either a native array of the column's Arrow type, or the Python
values the current reader would give (stored by column_array exactly as
rows_to_batch stores them), or refuses the page (None), which is then read
the current way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from ts24_migrate.core.rows.arrow_types import ColumnPlan, column_array, native_field

from .discovery import TableInfo
from .reader import declared_converter

# One column of a page: native array, Python values, or None (the page goes the current way).
PageColumn = pa.Array | list[Any] | None


@dataclass
class ArrowReadStats:
    """How a read went: pages by path, and why pages or tables went the current way."""

    arrow_pages: int = 0
    fallback_pages: int = 0
    python_columns: int = 0  # columns of Arrow pages converted value by value
    reasons: dict[str, int] = field(default_factory=dict)

    def note(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


class PageReader(Protocol):
    def page(self, last_key: Sequence[Any] | None) -> pa.RecordBatch | None: ...

    def close(self) -> None: ...


def stored_batch(
    plans: Sequence[ColumnPlan], columns: Sequence[pa.Array | list[Any]], stats: ArrowReadStats
) -> pa.RecordBatch:
    """The page as rows_to_batch would store it, from its converted columns."""
    arrays, fields = [], []
    for plan, converted in zip(plans, columns):
        if isinstance(converted, list):
            stats.python_columns += 1
            array, stored_field = column_array(plan, converted)
        else:
            array, stored_field = converted, native_field(plan)
        arrays.append(array)
        fields.append(stored_field)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def all_null(plan: ColumnPlan, length: int) -> pa.Array | list[Any]:
    """A column of NULLs only: stored natively whatever the kind (canonically for a "dynamic" one)."""
    return pa.nulls(length, plan.arrow_type) if plan.arrow_type is not None else [None] * length


def converted(
    values: list[Any], convert: Callable[[Any], Any] | None, decode: Callable[[bytes], Any] | None = None
) -> list[Any]:
    """Python values exactly as the current reader gives them: decoded as its text factory, then
    through the column's converter, a value it cannot convert kept as stored."""
    if decode is not None:
        values = [None if v is None else decode(v) for v in values]
    if convert is None:
        return values
    return [convert(v) for v in values]


def key_refusal(table: TableInfo, plans: Sequence[ColumnPlan], dialect: Dialect) -> str | None:
    """Why the table's key cannot drive Arrow keyset pages, or None."""
    if not table.primary_key:
        return "no primary key"  # a single pass: a chunk it could not give could not be read again
    kinds = {plan.name: plan.kind for plan in plans}
    for name in table.primary_key:
        column_type: sa.types.TypeEngine[Any] = table.table.c[name].type
        # The last key read is bound as it is for the next page: only keys whose values bind unchanged.
        if declared_converter(column_type, dialect) is not None or kinds[name] not in ("int", "string"):
            return f"key column {name} of type {column_type}"
    return None
