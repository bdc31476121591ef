"""Read a legacy table in bounded, key-ordered chunks as Arrow record batches.

This is the one read path over legacy data: backup, load, validation and
reconcile all read through it, so every stage sees the same rows the same way.

Keyed tables are read by keyset pagination (WHERE key > last ORDER BY key
LIMIT n): each chunk is its own short query, so memory is bounded by the
chunk size and a resumed read can start after any key. A table without a
primary key is read in one consistent pass, streamed from a server-side cursor.

Example::

    with engine.connect() as conn:
        for batch in iter_table_batches(conn, table_info, chunk_rows=50_000):
            ...
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .discovery import TableInfo


def _ordered_select(table: TableInfo) -> sa.Select:
    t = table.table
    query = sa.select(*t.columns)
    if table.primary_key:
        query = query.order_by(*[t.c[name] for name in table.primary_key])
    return query


def _after_key(table: TableInfo, last_key: Sequence[Any]) -> sa.ColumnElement[bool]:
    columns = [table.table.c[name] for name in table.primary_key]
    if len(columns) == 1:
        return columns[0] > last_key[0]
    # Row-value comparison spelled out, since not every dialect supports (a, b) > (x, y).
    clauses = []
    for i, column in enumerate(columns):
        equal_prefix = [columns[j] == last_key[j] for j in range(i)]
        clauses.append(sa.and_(*equal_prefix, column > last_key[i]))
    return sa.or_(*clauses)


def _batch(table: TableInfo, rows: Sequence[Sequence[Any]], schema: pa.Schema | None) -> pa.RecordBatch:
    names = list(table.column_names)
    columns = list(zip(*rows)) if rows else [[] for _ in names]
    arrays = [pa.array(list(col), type=schema.field(i).type if schema else None)
              for i, col in enumerate(columns)]
    return pa.RecordBatch.from_arrays(arrays, names=names)


def iter_table_rows(conn: Connection, table: TableInfo, *, chunk_rows: int = 50_000,
                    where: sa.ColumnElement[bool] | None = None,
                    start_after: Sequence[Any] | None = None) -> Iterator[list[tuple]]:
    """Yield lists of row tuples (column order of `table`), at most `chunk_rows` each."""
    if chunk_rows <= 0:
        raise ValueError("chunk_rows must be positive")
    base = _ordered_select(table)
    if where is not None:
        base = base.where(where)
    if not table.primary_key:
        result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(base)
        for partition in result.partitions(chunk_rows):
            yield [tuple(r) for r in partition]
        return
    last_key = list(start_after) if start_after is not None else None
    key_positions = [table.column_names.index(name) for name in table.primary_key]
    while True:
        query = base if last_key is None else base.where(_after_key(table, last_key))
        rows = [tuple(r) for r in conn.execute(query.limit(chunk_rows))]
        if not rows:
            return
        yield rows
        if len(rows) < chunk_rows:
            return
        last_key = [rows[-1][i] for i in key_positions]


def iter_table_batches(conn: Connection, table: TableInfo, *, chunk_rows: int = 50_000,
                       where: sa.ColumnElement[bool] | None = None,
                       start_after: Sequence[Any] | None = None,
                       schema: pa.Schema | None = None) -> Iterator[pa.RecordBatch]:
    """Like iter_table_rows, as Arrow record batches (types inferred unless `schema` given)."""
    for rows in iter_table_rows(conn, table, chunk_rows=chunk_rows, where=where, start_after=start_after):
        yield _batch(table, rows, schema)
