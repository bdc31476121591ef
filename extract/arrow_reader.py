"""Read keyed SQLite legacy tables as Arrow record batches through ADBC, without Python row objects.

The batches are the very batches the current path makes (extract.reader's
rows through ts24_migrate.core.rows.arrow_types.rows_to_batch): same pages,
same Arrow types, same values, same native/canonical encoding per column, so
every fingerprint, row digest and Parquet part is the same byte for byte.
SQLAlchemy still discovers the table and writes the query; ADBC only runs it.

ADBC (adbc-driver-sqlite) does not hand back what the current reader does by
itself: it infers one Arrow type per column from the first rows, so a column
whose values are not all of one SQLite storage class comes back altered
(12.5 next to 'n/a' as the text '1.250000e+01'); it does not check that text
is UTF-8; and DATETIME and DATE columns come back as their text. So each page
is also asked for every value's storage class (typeof()), and per column:

- values all of one storage class, as the declared type expects (INTEGER
  integers, REAL reals, text in text, DATETIME and DATE columns text in
  ISO form, BLOB blobs) are taken as ADBC gives them, converted by Arrow
  where needed (ISO text -> timestamp/date, which Arrow parses as
  `fromisoformat` does for that one form; other text goes the Python way);
- values of one storage class that need Python's conversion (a DATETIME
  text in another form, text that is not UTF-8 or holds NUL, a NUMERIC(p, s)
  as Decimal) are converted value by value with the current reader's own
  converters (reader.as_stored semantics);
- a column mixing storage classes (dirty data ADBC would alter): the whole
  page is read again through the current path.

Tables the Arrow path does not take, read wholly by the current path: other
databases (SQL Server, MariaDB: see docs/performance.md), tables without a
primary key (a single pass whose failed chunk could not be read again),
and keys that are not plain INTEGER or text columns.

Example::

    with legacy.connect() as conn:
        for batch in iter_stored_batches(conn, table_info, chunk_rows=50_000, arrow_reads=True):
            ...  # == rows_to_batch(column_plan(table_info), rows) of the current path
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.engine import processors as sa_processors

from ts24_migrate.core.db import legacy_arrow_connection
from ts24_migrate.core.rows.arrow_types import ColumnPlan, batch_to_rows, column_array, native_field, rows_to_batch

from .discovery import TableInfo, column_plan
from .reader import (
    check_resumable,
    declared_converter,
    iter_table_rows,
    keyset_conditions,
    keyset_page,
    null_key_rows,
    stored_converter,
    text_or_bytes,
)

# "0" (or "false", "no", "off") turns Arrow-native reads off where no caller says otherwise.
ARROW_READS_ENV = "TS24_ARROW_READS"

_ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{6})?$"
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
# Storage classes a kind is taken natively from, and the Arrow type ADBC gives that class.
_NATIVE_CLASS = {"int": "integer", "float": "real", "string": "text", "binary": "blob"}
_ADBC_TYPE = {"integer": pa.int64(), "real": pa.float64(), "text": pa.string(), "blob": pa.binary()}


def arrow_reads_wanted(arrow_reads: bool | None) -> bool:
    """The caller's choice, else the TS24_ARROW_READS setting (on unless it says off)."""
    if arrow_reads is not None:
        return arrow_reads
    return os.environ.get(ARROW_READS_ENV, "").strip().lower() not in ("0", "false", "no", "off")


@dataclass
class ArrowReadStats:
    """How a read went: pages by path, and why pages or tables went the current way."""

    arrow_pages: int = 0
    fallback_pages: int = 0
    python_columns: int = 0  # columns of Arrow pages converted value by value
    reasons: dict[str, int] = field(default_factory=dict)

    def note(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def iter_stored_batches(
    conn: Connection,
    table: TableInfo,
    *,
    chunk_rows: int = 50_000,
    start_after: Sequence[Any] | None = None,
    arrow_reads: bool | None = None,
    stats: ArrowReadStats | None = None,
) -> Iterator[pa.RecordBatch]:
    """The table in key order, as the batches rows_to_batch makes of extract.reader's pages.

    With `arrow_reads` (default: the TS24_ARROW_READS setting, on) pages are read
    through ADBC where the table allows it; otherwise, and for any page the
    Arrow path cannot give exactly, through the current reader.
    """
    plans = column_plan(table)
    stats = stats if stats is not None else ArrowReadStats()
    refusal = _not_arrow_readable(conn, table) if arrow_reads_wanted(arrow_reads) else "Arrow reads off"
    adbc = None
    if refusal is None:
        try:
            adbc = legacy_arrow_connection(conn)
        except Exception as exc:  # noqa: BLE001 - the current path reads what ADBC could not open
            refusal = f"ADBC could not open the database ({type(exc).__name__})"
    if adbc is None:
        stats.note(f"table: {refusal or 'no file for ADBC to open'}")
        for rows in iter_table_rows(conn, table, chunk_rows=chunk_rows, start_after=start_after):
            stats.fallback_pages += 1
            yield rows_to_batch(plans, rows)
        return
    if chunk_rows <= 0:
        raise ValueError("chunk_rows must be positive")
    check_resumable(table, start_after)
    with closing(adbc):
        if start_after is None:  # few rows, SQLite only: the current path reads them
            for rows in null_key_rows(conn, table, chunk_rows):
                stats.fallback_pages += 1
                yield rows_to_batch(plans, rows)
        last_key = list(start_after) if start_after is not None else None
        queries = _PageQueries(conn, table, chunk_rows)
        while True:
            batch = _arrow_page(adbc, conn, table, plans, queries, last_key, stats)
            read_by_arrow = batch is not None
            if batch is None:
                batch = rows_to_batch(plans, keyset_page(conn, table, last_key, chunk_rows))
            if batch.num_rows == 0:
                return
            if read_by_arrow:
                stats.arrow_pages += 1
            else:
                stats.fallback_pages += 1
            yield batch
            if batch.num_rows < chunk_rows:
                return
            last_key = _last_key(table, plans, batch)


def _not_arrow_readable(conn: Connection, table: TableInfo) -> str | None:
    """Why the Arrow path does not take this table, or None when it does."""
    if conn.dialect.name != "sqlite":
        return f"no exact Arrow reader for {conn.dialect.name}"
    if not table.primary_key:
        return "no primary key"
    kinds = {plan.name: plan.kind for plan in column_plan(table)}
    for name in table.primary_key:
        column_type = table.table.c[name].type
        # The last key read is bound as it is for the next page: only keys whose values bind unchanged.
        if declared_converter(column_type, conn.dialect) is not None or kinds[name] not in ("int", "string"):
            return f"key column {name} of type {column_type}"
    return None


def _last_key(table: TableInfo, plans: Sequence[ColumnPlan], batch: pa.RecordBatch) -> list[Any]:
    # Only the last row becomes Python values: the key the next page starts after.
    [last] = batch_to_rows(batch.slice(batch.num_rows - 1, 1))
    names = [plan.name for plan in plans]
    return [last[names.index(name)] for name in table.primary_key]


class _PageQueries:
    """A table's keyset page as SQL for ADBC, compiled once: the first page, and any page after a key.

    Each value comes with its storage class (typeof()), which tells whether ADBC's value is exact."""

    def __init__(self, conn: Connection, table: TableInfo, chunk_rows: int):
        columns = list(table.table.columns)
        query = (
            sa.select(*columns, *[sa.func.typeof(c) for c in columns])
            .order_by(*[table.table.c[name] for name in table.primary_key])
            .limit(chunk_rows)
        )
        self.first = query.where(*keyset_conditions(table, None)).compile(dialect=conn.dialect)
        self.after = query.where(*keyset_conditions(table, None, named_after=True)).compile(dialect=conn.dialect)

    def sql(self, last_key: Sequence[Any] | None) -> tuple[str, list[Any]]:
        compiled = self.first if last_key is None else self.after
        given = {} if last_key is None else {f"after_{i}": value for i, value in enumerate(last_key)}
        values = compiled.construct_params(given)
        return str(compiled), [values[name] for name in getattr(compiled, "positiontup", None) or ()]


def _arrow_page(
    adbc: Any,
    conn: Connection,
    table: TableInfo,
    plans: Sequence[ColumnPlan],
    queries: _PageQueries,
    last_key: Sequence[Any] | None,
    stats: ArrowReadStats,
) -> pa.RecordBatch | None:
    """One keyset page through ADBC as rows_to_batch would store it; None to read it the current way."""
    columns = list(table.table.columns)
    sql, parameters = queries.sql(last_key)
    cursor = adbc.cursor()
    try:
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "65536"})
        cursor.execute(sql, parameters)
        result = cursor.fetch_arrow_table()
    except Exception as exc:  # noqa: BLE001 - e.g. a later batch whose values do not fit the inferred type
        stats.note(f"page: ADBC refused ({type(exc).__name__})")
        return None
    finally:
        cursor.close()
    width = len(columns)
    arrays, fields = [], []
    for index, (plan, column) in enumerate(zip(plans, columns)):
        raw = result.column(index).combine_chunks()
        classes = set(pc.unique(result.column(width + index)).to_pylist()) - {"null", None}
        converted = _column(
            plan,
            raw,
            classes,
            declared_converter(column.type, conn.dialect),
            stored_converter(column.type, conn.dialect),
        )
        if converted is None:
            stats.note(f"page: {plan.name} holds {'/'.join(sorted(classes))}")
            return None
        if isinstance(converted, list):
            stats.python_columns += 1
            array, stored_field = column_array(plan, converted)
        else:
            array, stored_field = converted, native_field(plan)
        arrays.append(array)
        fields.append(stored_field)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _column(
    plan: ColumnPlan,
    raw: pa.Array,
    classes: set[str],
    declared: Callable[[Any], Any] | None,
    convert: Callable[[Any], Any] | None,
) -> pa.Array | list[Any] | None:
    """One column: a native array (the plan's type), Python values (column_array stores them as
    rows_to_batch would), or None when ADBC's values are not exactly the stored ones.

    `declared`: the column type's own converter (tells which one it is); `convert`: the same as
    the current reader applies it (a value it cannot convert kept as stored)."""
    if not classes:  # every value NULL: stored natively whatever the kind
        return pa.nulls(len(raw), plan.arrow_type) if plan.arrow_type is not None else [None] * len(raw)
    if len(classes) > 1:
        return None  # ADBC coerces mixed storage classes into one type, altering values
    (storage,) = classes
    if storage not in _ADBC_TYPE:
        return None
    if storage in ("text", "blob") and not (pa.types.is_string(raw.type) or pa.types.is_binary(raw.type)):
        return None
    if storage in ("integer", "real") and raw.type != _ADBC_TYPE[storage]:
        return None
    text = _utf8_text(raw) if storage == "text" else None
    if storage == "text" and text is None:  # not all UTF-8: as the current reader, bytes for those
        return _converted(raw.cast(pa.binary()).to_pylist(), convert, text_or_bytes)
    values = raw if text is None else text
    native = _native(plan, values, storage, declared)
    if native is not None:
        return native
    return _converted(values.to_pylist(), convert, None)


def _utf8_text(raw: pa.Array) -> pa.Array | None:
    """The array as text when every value is valid UTF-8 (ADBC does not check), else None."""
    text = raw if pa.types.is_string(raw.type) else raw.cast(pa.string(), safe=False)
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return text


def _native(plan: ColumnPlan, raw: pa.Array, storage: str, declared: Callable[[Any], Any] | None) -> pa.Array | None:
    """The column in the plan's Arrow type without a Python value, where that is exact; else None."""
    if declared is None and _NATIVE_CLASS.get(plan.kind) == storage:
        if plan.kind == "string" and pc.any(pc.match_substring(raw, "\x00")).as_py():
            return None  # text holding NUL is stored canonically: column_array decides
        assert plan.arrow_type is not None
        return raw.cast(plan.arrow_type)
    if storage != "text" or declared not in (sa_processors.str_to_datetime, sa_processors.str_to_date):
        return None
    # fromisoformat's result for the ISO form SQLAlchemy writes, which Arrow parses alike; a
    # year 0000 Arrow takes and Python does not; an impossible date Arrow refuses (-> Python).
    target, pattern = (
        (pa.timestamp("us"), _ISO_DATETIME) if declared is sa_processors.str_to_datetime else (pa.date32(), _ISO_DATE)
    )
    if plan.arrow_type != target:
        return None
    present = raw.drop_null()
    if (
        not pc.all(pc.match_substring_regex(present, pattern)).as_py()
        or pc.any(pc.starts_with(present, "0000")).as_py()
    ):
        return None
    try:
        return raw.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _converted(
    values: list[Any], convert: Callable[[Any], Any] | None, decode: Callable[[bytes], Any] | None
) -> list[Any]:
    """Python values exactly as the current reader gives them: decoded as its text factory, then
    through the column's converter, a value it cannot convert kept as stored."""
    if decode is not None:
        values = [None if v is None else decode(v) for v in values]
    if convert is None:
        return values
    return [convert(v) for v in values]
