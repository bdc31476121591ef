"""Keyset pages of a MariaDB legacy table through arrow-odbc, exactly as the current reader (pyodbc).

MariaDB types its values, so arrow-odbc's Arrow types are the declared ones
(timestamp, decimal128, int, string, binary). What it may get wrong is checked,
not trusted: each text and binary value's length is asked of the server too
(CHAR_LENGTH, LENGTH) and a page whose values differ in length is refused (a
value cut at a buffer limit; the extra NUL a probe once saw after text holding
NUL; UTF-16 transfers cut text at a NUL, so text travels as UTF-8). Per column:

- integers, DECIMAL(p, s), DATETIME/TIMESTAMP, DATE, text without NUL, binary:
  taken as arrow-odbc gives them (integers widened to int64, timestamps to us);
- text holding NUL, and DOUBLE (which SQLAlchemy hands over as a Decimal):
  converted value by value with the current reader's own converters.

Tables refused (read the current way): FLOAT columns (single precision came
back as 0.0 for 1.5 in a probe), UNSIGNED integers (a BIGINT UNSIGNED came back
wrapped to -1), MEDIUM/LONG TEXT and BLOB (fetched a few rows at a time: slower
than the current way), ENUM and SET, and types the backup stores canonically
(TIME, YEAR, BIT, JSON, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection

from ts24_migrate.core.rows.arrow_types import ColumnPlan

from .arrow_pages import ArrowReadStats, PageColumn, all_null, converted, stored_batch
from .discovery import TableInfo
from .reader import declared_converter, keyset_conditions, stored_converter

_TAKEN_KINDS = ("int", "decimal", "float", "datetime", "date", "string", "binary")
# Buffers for TEXT/BLOB columns (at most 64 KiB each); a longer value would fail its length check.
_MAX_TEXT_CHARS = 65_535
_MAX_BINARY_BYTES = 65_535
# MEDIUM/LONG TEXT and BLOB: arrow-odbc sizes its buffers for the largest value a column may hold, so
# such a column is fetched a few rows at a time (measured slower than pyodbc): read the current way.
_UNBOUNDED = (mysql.MEDIUMTEXT, mysql.LONGTEXT, mysql.MEDIUMBLOB, mysql.LONGBLOB)
# arrow-odbc allocates a fetch's buffers for the widest value each column may hold, for every row: a
# bound here keeps that (and the time to allocate it) small, at more round trips for wide tables.
_MAX_BYTES_PER_FETCH = 32 << 20


def mariadb_refusal(conn: Connection, table: TableInfo, plans: Sequence[ColumnPlan]) -> str | None:
    """Why arrow-odbc would not give this table's values exactly, or None."""
    if conn.engine.url.get_driver_name() != "pyodbc":
        return f"MariaDB through {conn.engine.url.get_driver_name()}, not ODBC"
    for column, plan in zip(table.table.columns, plans):
        column_type = column.type
        if getattr(column_type, "unsigned", False):
            return f"column {column.name} of type {column_type} (unsigned)"
        if isinstance(column_type, (sa.Enum, mysql.SET)) or plan.kind not in _TAKEN_KINDS:
            return f"column {column.name} of type {column_type}"
        if isinstance(column_type, sa.Float) and not isinstance(column_type, sa.Double):
            return f"column {column.name} of type {column_type} (single precision)"
        if isinstance(column_type, _UNBOUNDED):
            return f"column {column.name} of type {column_type} (values up to 16 MiB or 4 GiB)"
    return None


class MariaDbPages:
    """A table's keyset pages through one read-only arrow-odbc connection."""

    def __init__(
        self,
        odbc: Any,
        conn: Connection,
        table: TableInfo,
        plans: Sequence[ColumnPlan],
        chunk_rows: int,
        stats: ArrowReadStats,
    ):
        self.odbc, self.table, self.plans, self.stats, self.dialect = odbc, table, plans, stats, conn.dialect
        self.chunk_rows = chunk_rows
        columns = list(table.table.columns)
        self.converters = [
            (declared_converter(c.type, conn.dialect), stored_converter(c.type, conn.dialect)) for c in columns
        ]
        self.measured = [i for i, plan in enumerate(plans) if plan.kind in ("string", "binary")]
        lengths = [
            sa.func.char_length(columns[i]) if plans[i].kind == "string" else sa.func.length(columns[i])
            for i in self.measured
        ]
        self.query = (
            sa.select(*columns, *lengths)
            .order_by(*[table.table.c[name] for name in table.primary_key])
            .limit(chunk_rows)
        )

    def close(self) -> None:
        pass  # the connection is kept with the pooled connection it reads beside (arrow_reader)

    def page(self, last_key: Sequence[Any] | None) -> pa.RecordBatch | None:
        """The page after `last_key` as rows_to_batch would store it; None to read it the current way."""
        import arrow_odbc

        # The key is written into the SQL (arrow-odbc binds text only, which MariaDB would compare
        # with a BIGINT key as a double); literal values are quoted by the dialect.
        query = self.query.where(*keyset_conditions(self.table, last_key))
        sql = str(query.compile(dialect=self.dialect, compile_kwargs={"literal_binds": True}))
        try:
            reader = self.odbc.read_arrow_batches(
                sql,
                batch_size=min(self.chunk_rows, 65_535),
                max_text_size=_MAX_TEXT_CHARS,
                max_binary_size=_MAX_BINARY_BYTES,
                max_bytes_per_batch=_MAX_BYTES_PER_FETCH,
                payload_text_encoding=arrow_odbc.TextEncoding.UTF8,
                fetch_concurrently=False,
            )
            result = pa.Table.from_batches(list(reader), reader.schema)
        except Exception as exc:  # noqa: BLE001 - e.g. text the driver did not send as UTF-8
            self.stats.note(f"page: arrow-odbc refused ({type(exc).__name__}: {str(exc)[:150]})")
            return None
        width = len(self.plans)
        lengths = {i: result.column(width + k).combine_chunks() for k, i in enumerate(self.measured)}
        columns = []
        for index, (plan, (declared, convert)) in enumerate(zip(self.plans, self.converters)):
            column = _column(plan, result.column(index).combine_chunks(), lengths.get(index), declared, convert)
            if column is None:
                self.stats.note(f"page: {plan.name} read as {result.column(index).type} differs")
                return None
            columns.append(column)
        return stored_batch(self.plans, columns, self.stats)


def _column(
    plan: ColumnPlan,
    raw: pa.Array,
    length: pa.Array | None,
    declared: Callable[[Any], Any] | None,
    convert: Callable[[Any], Any] | None,
) -> PageColumn:
    """One column: native array, Python values, or None when arrow-odbc's values may not be exact."""
    kind, arrow_type = plan.kind, raw.type
    if length is not None and not _same_lengths(raw, length):
        return None
    if raw.null_count == len(raw):
        return all_null(plan, len(raw))
    if kind == "float" and pa.types.is_float64(arrow_type):
        return raw if declared is None else converted(raw.to_pylist(), convert)  # DOUBLE: Decimal
    if declared is not None:
        return None
    if kind == "int" and pa.types.is_integer(arrow_type):
        return raw.cast(pa.int64())
    if kind == "decimal" and arrow_type == plan.arrow_type:
        return raw
    if kind == "datetime" and pa.types.is_timestamp(arrow_type) and arrow_type.tz is None:
        return raw.cast(pa.timestamp("us"))
    if kind == "date" and pa.types.is_date32(arrow_type):
        return raw
    if kind == "string" and pa.types.is_string(arrow_type):
        if pc.any(pc.match_substring(raw, "\x00")).as_py():
            return converted(raw.to_pylist(), convert)  # stored canonically: column_array decides
        return raw.cast(pa.large_string())
    if kind == "binary" and pa.types.is_binary(arrow_type):
        return raw.cast(pa.large_binary())
    return None


def _same_lengths(raw: pa.Array, length: pa.Array) -> bool:
    """Every value as long as the server says (characters for text, bytes for binary), NULLs alike."""
    measured = pc.utf8_length(raw) if pa.types.is_string(raw.type) else pc.binary_length(raw)
    return bool(measured.cast(pa.int64()).equals(length.cast(pa.int64())))
