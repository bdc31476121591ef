"""Read a legacy table in bounded, key-ordered chunks, values exactly as stored.

This is the one read path over legacy data: backup, load, validation and
reconcile all read through it, so every stage sees the same rows the same way.

Keyed tables are read by keyset pagination (WHERE key > last ORDER BY key
LIMIT n): each chunk is its own short query, so memory is bounded by the
chunk size and a resumed read can start after any key. A table without a
primary key is read in one consistent pass, streamed from a server-side cursor.

Legacy data does not always obey its declared types, and the reader never
stops on a row for that (a dirty value is the transform's to reject, row by
row, and the backup's to keep):

- a value the column's converter cannot take (text in a SQLite DATETIME or
  NUMERIC column) comes back as stored, clean values converted as usual: a
  page that holds one is read again with tolerant converters (`as_stored`),
  so clean pages cost no more than a plain SELECT;
- SQLite text that is not UTF-8 comes back as its bytes;
- SQLite lets a non-INTEGER primary key hold NULL, which `key > last` never
  matches: rows with a NULL in their key are read first, in one pass of their
  own, then the rest by keyset, so every row comes back exactly once.

Example::

    with engine.connect() as conn:
        for rows in iter_table_rows(conn, table_info, chunk_rows=50_000):
            ...
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

if TYPE_CHECKING:
    # The converter types TypeEngine's processor methods are declared with (typing only).
    from sqlalchemy.sql.type_api import _BindProcessorType, _ResultProcessorType

from ts24_migrate.core.errors import UsageError

from .discovery import TableInfo


class _AsStored(sa.types.TypeDecorator[Any]):
    """The column's own type, except that a value it cannot convert is returned as stored.

    SQLite keeps any value in any column: a DATETIME column may hold '31/02/2019'
    and a NUMERIC one 'n/a'. SQLAlchemy's converters would raise on such a row and
    stop the read; the reader hands the value over exactly as the database holds it.
    A UUID (SQL Server UNIQUEIDENTIFIER) is kept as its text.
    """

    # The class names the type TypeDecorator requires; each instance holds the declared type instead.
    impl: sa.types.TypeEngine[Any] | type[sa.types.TypeEngine[Any]] = sa.types.NullType
    cache_ok = True

    def __init__(self, declared: sa.types.TypeEngine[Any]):
        super().__init__()
        self.impl = declared

    def result_processor(self, dialect: Dialect, coltype: object) -> _ResultProcessorType[Any] | None:
        # impl_instance is `impl` as an instance (SQLAlchemy's own typed view of it).
        convert = self.impl_instance.dialect_impl(dialect).result_processor(dialect, coltype)
        if convert is None:
            return None

        def process(value: Any) -> Any:
            try:
                converted = convert(value)
            except (ValueError, TypeError, ArithmeticError):
                return value
            # SQL Server UNIQUEIDENTIFIER: kept as its text, which fingerprints and stores as is.
            return str(converted) if isinstance(converted, uuid.UUID) else converted

        return process

    def bind_processor(self, dialect: Dialect) -> _BindProcessorType[Any] | None:
        # Keyset pagination binds the last key read, which may itself be "as stored".
        convert = self.impl_instance.dialect_impl(dialect).bind_processor(dialect)
        is_uuid = isinstance(self.impl_instance, sa.Uuid)
        if convert is None and not is_uuid:
            return None

        def process(value: Any) -> Any:
            if is_uuid and isinstance(value, str):
                value = uuid.UUID(value)
            if convert is None:
                return value
            try:
                return convert(value)
            except (ValueError, TypeError, AttributeError, ArithmeticError):
                return value

        return process


def declared_converter(type_: sa.types.TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """The converter the column's declared type applies to a value read (None: taken as it is)."""
    declared = type_.impl_instance if isinstance(type_, _AsStored) else type_
    return declared.dialect_impl(dialect).result_processor(dialect, None)


def stored_converter(type_: sa.types.TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """What this reader applies to a value of the column: the declared converter, a value it
    cannot convert kept as stored (None: values are taken as they are)."""
    return _stored_type(type_).result_processor(dialect, None)


def _stored_type(type_: sa.types.TypeEngine[Any]) -> _AsStored:
    return type_ if isinstance(type_, _AsStored) else _AsStored(type_)


def as_stored(table: TableInfo) -> TableInfo:
    """The same table on its own sa.Table whose columns read values as stored.

    The reader already returns values as stored for any table; this is for
    callers that build their own queries on the columns.
    """
    metadata = sa.MetaData()
    columns: list[sa.Column[Any]] = [
        sa.Column(c.name, _stored_type(c.type), key=c.key, primary_key=c.primary_key, nullable=c.nullable)
        for c in table.table.columns
    ]
    return TableInfo(
        table.name,
        table.schema,
        table.columns,
        table.primary_key,
        sa.Table(table.table.name, metadata, *columns, schema=table.table.schema),
    )


def _stored_column(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    # type_coerce keeps the FROM on the caller's table, so a `where` built on its columns still applies.
    if isinstance(column.type, _AsStored):
        return column
    return sa.type_coerce(column, _AsStored(column.type)).label(column.name)


def _select(table: TableInfo, where: sa.ColumnElement[bool] | None, *, stored: bool) -> sa.Select[*tuple[Any, ...]]:
    """The table's columns in key order; `stored`: every column read as stored, else only a UUID
    (always read as its text, so that every page of a table gives the same types)."""
    t = table.table
    query = sa.select(*[_stored_column(c) if stored or isinstance(c.type, sa.Uuid) else c for c in t.columns])
    if where is not None:
        query = query.where(where)
    if table.primary_key:
        query = query.order_by(*[t.c[name] for name in table.primary_key])
    return query


def _key_columns(table: TableInfo) -> list[sa.Column[Any]]:
    return [table.table.c[name] for name in table.primary_key]


def _after_key(table: TableInfo, last_key: Sequence[Any] | None) -> sa.ColumnElement[bool]:
    """key > last_key; with last_key None, the key bound as parameters named after_0, after_1, ...
    (a statement compiled once for every page)."""
    columns = _key_columns(table)
    # Bound with the tolerant type: the last key read may itself be a value "as stored".
    if last_key is None:
        bound = [sa.bindparam(f"after_{i}", type_=_stored_type(c.type)) for i, c in enumerate(columns)]
    else:
        bound = [sa.bindparam(None, value, type_=_stored_type(c.type)) for c, value in zip(columns, last_key)]
    if len(columns) == 1:
        return columns[0] > bound[0]
    # Row-value comparison spelled out, since not every dialect supports (a, b) > (x, y).
    clauses = []
    for i, column in enumerate(columns):
        equal_prefix = [columns[j] == bound[j] for j in range(i)]
        clauses.append(sa.and_(*equal_prefix, column > bound[i]))
    return sa.or_(*clauses)


def text_or_bytes(data: bytes) -> str | bytes:
    """SQLite text as this reader hands it over: decoded where it is UTF-8, else its bytes."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data  # not UTF-8: handed over as the bytes stored, for the backup to keep as they are


@contextmanager
def _undecodable_text_as_bytes(conn: Connection) -> Iterator[bool]:
    """While open, SQLite hands over non-UTF-8 text as bytes instead of failing the query;
    yields whether it had to switch (only SQLite decodes text this way).

    There is no per-query switch: it is set on the DBAPI connection and put back
    on exit. It costs a Python call per text value, which is why keyset pages
    only read with it when they fail without it (_fetch).
    """
    dbapi_connection = conn.connection.dbapi_connection if conn.dialect.name == "sqlite" else None
    if not isinstance(dbapi_connection, sqlite3.Connection) or dbapi_connection.text_factory is not str:
        yield False
        return
    dbapi_connection.text_factory = text_or_bytes
    try:
        yield True
    finally:
        dbapi_connection.text_factory = str


def _fetch(conn: Connection, query: sa.Select[*tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    try:
        return _all_rows(conn, query)
    except sa.exc.OperationalError:  # SQLite: "Could not decode to UTF-8 column ..."
        with _undecodable_text_as_bytes(conn) as switched:
            if not switched:
                raise
            return _all_rows(conn, query)


def _all_rows(conn: Connection, query: sa.Select[*tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    result = conn.execute(query)
    try:
        return list(map(tuple, result))  # (a tenth faster than a comprehension)
    finally:
        result.close()  # also when a row fails: ODBC drivers refuse a new query while a cursor is open


def _page(
    conn: Connection, plain: sa.Select[*tuple[Any, ...]], stored: sa.Select[*tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """One keyset page. Read with the columns' own converters, which cost nothing extra; a page
    holding a value they cannot take is read again as stored (the same values for clean rows)."""
    try:
        return _fetch(conn, plain)
    except (ValueError, TypeError, ArithmeticError):
        return _fetch(conn, stored)


def iter_table_rows(
    conn: Connection,
    table: TableInfo,
    *,
    chunk_rows: int = 50_000,
    where: sa.ColumnElement[bool] | None = None,
    start_after: Sequence[Any] | None = None,
) -> Iterator[list[tuple[Any, ...]]]:
    """Yield lists of row tuples (column order of `table`), at most `chunk_rows` each.

    `where` may be built on the columns of `table.table`; `start_after` resumes a
    keyed read after that key (a key holding NULL cannot be resumed after: rows
    with a NULL key have no order to resume in, read the table from the start).
    """
    if chunk_rows <= 0:
        raise ValueError("chunk_rows must be positive")
    if not table.primary_key:
        yield from _single_pass(conn, _select(table, where, stored=True), chunk_rows)
        return
    check_resumable(table, start_after)
    if start_after is None:  # NULL-key rows come first: a resumed read has them already
        yield from null_key_rows(conn, table, chunk_rows, where)
    last_key = list(start_after) if start_after is not None else None
    while True:
        rows = keyset_page(conn, table, last_key, chunk_rows, where)
        if not rows:
            return
        yield rows
        if len(rows) < chunk_rows:
            return
        last_key = key_of(table, rows[-1])


def check_resumable(table: TableInfo, start_after: Sequence[Any] | None) -> None:
    if start_after is not None and any(value is None for value in start_after):
        raise UsageError(
            f"{table.name}: cannot resume a read after a key holding NULL "
            f"({', '.join(table.primary_key)}); read the table again from the start"
        )


def key_of(table: TableInfo, row: Sequence[Any]) -> list[Any]:
    """The key values of a row read by this reader (column order of `table`)."""
    return [row[table.column_names.index(name)] for name in table.primary_key]


def null_key_rows(
    conn: Connection, table: TableInfo, chunk_rows: int, where: sa.ColumnElement[bool] | None = None
) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of a keyed table whose key holds NULL, in one pass; only SQLite lets a key column
    hold NULL, which `key > last` never matches, so these are read before the keyset pages."""
    keys = _key_columns(table)
    if any(column.nullable for column in keys):
        stored = _select(table, where, stored=True).where(sa.or_(*[c.is_(None) for c in keys]))
        yield from _single_pass(conn, stored, chunk_rows)


def keyset_page(
    conn: Connection,
    table: TableInfo,
    last_key: Sequence[Any] | None,
    chunk_rows: int,
    where: sa.ColumnElement[bool] | None = None,
) -> list[tuple[Any, ...]]:
    """The next `chunk_rows` rows of a keyed table after `last_key` (from the first key when None),
    in key order, NULL keys left out (null_key_rows)."""
    plain, stored = _select(table, where, stored=False), _select(table, where, stored=True)
    conditions = keyset_conditions(table, last_key)
    return _page(conn, plain.where(*conditions).limit(chunk_rows), stored.where(*conditions).limit(chunk_rows))


def keyset_conditions(
    table: TableInfo, last_key: Sequence[Any] | None, *, named_after: bool = False
) -> list[sa.ColumnElement[bool]]:
    """What a keyset page asks of its rows: no NULL in the key (where one may be), after `last_key`
    (`named_after`: after the key given at execution as parameters after_0, after_1, ...)."""
    keys = _key_columns(table)
    conditions: list[sa.ColumnElement[bool]] = [c.is_not(None) for c in keys] if any(c.nullable for c in keys) else []
    if named_after:
        conditions.append(_after_key(table, None))
    elif last_key is not None:
        conditions.append(_after_key(table, last_key))
    return conditions


def _single_pass(
    conn: Connection, query: sa.Select[*tuple[Any, ...]], chunk_rows: int
) -> Iterator[list[tuple[Any, ...]]]:
    # A stream cannot be read again from where it failed: it takes non-UTF-8 text throughout.
    with _undecodable_text_as_bytes(conn):
        # Options on the statement: Connection.execution_options would keep them for later queries.
        result = conn.execute(query.execution_options(stream_results=True, yield_per=chunk_rows))
        for partition in result.partitions(chunk_rows):
            yield list(map(tuple, partition))


def read_batch(
    table: TableInfo,
    rows: Sequence[Sequence[Any]],
    schema: pa.Schema | None = None,
    columns: Sequence[Sequence[Any]] | None = None,
) -> pa.RecordBatch:
    """Rows as read, as one Arrow record batch whose to_pylist() gives back the very same values.

    Column types are inferred (or taken from `schema`). A column whose values are
    not all of one Python type (a datetime column holding text as stored, an
    integer next to a float) becomes a dense union with one child per type, so no
    value is coerced into another: the transform sees what the database holds.
    `columns`: the same rows by column, when the caller has them already.
    """
    names = list(table.column_names)
    if columns is None:
        columns = list(zip(*rows)) if rows else [() for _ in names]
    arrays = [
        pa.array(list(values), type=schema.field(i).type) if schema else _inferred(values)
        for i, values in enumerate(columns)
    ]
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _inferred(values: Sequence[Any]) -> pa.Array:
    kinds = set(map(type, values))
    kinds.discard(type(None))
    aware = dt.datetime in kinds and any(v.tzinfo is not None for v in values if type(v) is dt.datetime)
    if len(kinds) <= 1 and not aware:
        return pa.array(list(values))
    # One child per Python type (per UTC offset for aware datetimes, which Arrow would otherwise
    # convert to the first one's zone), in order of first appearance; a NULL goes to the first child.
    children: dict[Any, list[Any]] = {}
    kind_of_value = [None if v is None else _kind(v) for v in values]
    for kind in kind_of_value:
        if kind is not None:
            children.setdefault(kind, [])
    order = {kind: index for index, kind in enumerate(children)}
    first = next(iter(children))
    type_ids, offsets = [], []
    for value, kind in zip(values, kind_of_value):
        child = children[first if kind is None else kind]
        type_ids.append(order[first if kind is None else kind])
        offsets.append(len(child))
        child.append(value)
    arrays = [pa.array(child, _child_type(kind)) for kind, child in children.items()]
    return pa.UnionArray.from_dense(
        pa.array(type_ids, pa.int8()),
        pa.array(offsets, pa.int32()),
        arrays,
        [str(index) for index in range(len(arrays))],
    )


def _kind(value: Any) -> Any:
    if type(value) is dt.datetime and value.tzinfo is not None:
        return dt.datetime, value.utcoffset()
    return type(value)


def _child_type(kind: Any) -> pa.DataType | None:
    if isinstance(kind, tuple):  # an aware datetime: its own fixed offset, e.g. '+07:00'
        offset = kind[1]
        if offset.seconds % 60 or offset.microseconds:
            raise ValueError(f"no Arrow type keeps a datetime whose UTC offset is {offset} (not whole minutes)")
        minutes = int(offset.total_seconds() // 60)
        return pa.timestamp("us", tz=f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}")
    return None


def iter_table_batches(
    conn: Connection,
    table: TableInfo,
    *,
    chunk_rows: int = 50_000,
    where: sa.ColumnElement[bool] | None = None,
    start_after: Sequence[Any] | None = None,
    schema: pa.Schema | None = None,
) -> Iterator[pa.RecordBatch]:
    """Like iter_table_rows, as Arrow record batches (see read_batch)."""
    for rows in iter_table_rows(conn, table, chunk_rows=chunk_rows, where=where, start_after=start_after):
        yield read_batch(table, rows, schema)
