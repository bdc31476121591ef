"""The staging table of one chunk: transformed rows, typed, checked, bulk-written.

A chunk's transformed rows go first into a temporary table shaped like the
business table (plus the legacy key, its row hash and flags); the merge (load.merge) then
works on it with set-based SQL only. PostgreSQL gets binary COPY, SQLite
batched inserts; everything after that is the same SQL on both.

Before staging, each row is checked against what the new system can store
(required columns, column lengths, NUL in text): a row that does not fit is
rejected with a reason instead of failing the whole chunk, and SQLite (which
checks neither length nor NUL) accepts exactly what PostgreSQL accepts.

Example::

    data, unstorable = to_stage_arrow(frame, spec)
    stage = stage_table(spec)
    create_temporary(conn, stage)
    write_stage(conn, stage, data)
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import reasons
from .copy_postgres import copy_arrow
from .target_map import TargetSpec

_SQLITE_BATCH_ROWS = 5_000
# Reject messages carry at most this much of the offending value.
_VALUE_PREVIEW = 200


def stage_data_columns(spec: TargetSpec) -> list[sa.Column[Any]]:
    """The stage columns filled from the transformed rows, in stage order."""
    # No index: the merge reads the stage once, from start to end.
    columns: list[sa.Column[Any]] = [sa.Column("stage_seq", sa.Integer, nullable=False)]
    columns += [sa.Column(c.name, c.type) for c in spec.row_columns()]
    columns += [sa.Column("legacy_key", sa.String(200)), sa.Column("legacy_row_hash", sa.String(64))]
    if "dq_flags" not in spec.table.c:
        columns.append(sa.Column("dq_flags", sa.Text))
    if spec.parent:
        columns.append(sa.Column(spec.parent.legacy_column, sa.String(200)))
    return columns


def stage_table(spec: TargetSpec) -> sa.Table:
    """A temporary table for one chunk of `spec`'s transformed rows (see temporary_table).

    After the transformed rows' own columns it holds `parent_id`, the new key of the
    row's parent, which the merge looks up before staging (load.parent_keys).
    """
    columns = stage_data_columns(spec)
    if spec.parent:
        columns.append(sa.Column("parent_id", spec.table.c[spec.parent.column].type))
    return temporary_table(f"ts24_stage_{spec.name}", columns)


def temporary_table(prefix: str, columns: list[sa.Column[Any]]) -> sa.Table:
    """A TEMPORARY table named after its prefix and its shape, the same for every chunk.

    On PostgreSQL a session keeps it (ON COMMIT DELETE ROWS) and every chunk reuses
    it: no table created and dropped in the catalog per chunk, and the merge's
    statements, always on the same names, are compiled once (SQLAlchemy's cache).
    SQLite creates and drops it with each chunk (create_temporary, drop_temporary).
    """
    shape = repr([(c.name, repr(c.type), c.nullable) for c in columns])
    name = f"{prefix}_{hashlib.sha256(shape.encode()).hexdigest()[:8]}"
    return sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DELETE ROWS")


_USED_IN = "ts24_temporary_tables_used_in"  # Connection.info key: table name -> id of the transaction


def create_temporary(conn: Connection, table: sa.Table) -> None:
    """Make the temporary table ready, empty, for a chunk."""
    if conn.dialect.name != "postgresql":
        table.create(conn)
        return
    # Kept by the session since an earlier chunk, or made now; empty, since a commit emptied it,
    # unless a chunk before this one ran in the same transaction.
    conn.execute(sa.schema.CreateTable(table, if_not_exists=True))
    used_in = conn.info.setdefault(_USED_IN, {})
    transaction = id(conn.get_transaction())
    if used_in.get(table.name) == transaction:  # (an id reused by a later transaction only costs a DELETE)
        conn.execute(table.delete())
    used_in[table.name] = transaction


def _arrow_type(column: sa.Column[Any]) -> pa.DataType:
    t = column.type
    if isinstance(t, sa.Boolean):
        return pa.bool_()
    if isinstance(t, sa.Integer):
        return pa.int64()
    if isinstance(t, sa.DateTime):
        return pa.timestamp("us")
    if isinstance(t, sa.Date):
        return pa.date32()
    if isinstance(t, sa.LargeBinary):
        return pa.large_binary()
    if isinstance(t, sa.String):  # Text too
        return pa.large_string()
    raise NotImplementedError(f"no Arrow type for {column.name} {t!r}")


def _key_text(series: pd.Series) -> pd.Series:
    """Legacy keys as text: '12345', never '12345.0' when pandas made a nullable int a float."""
    if all(type(v) is str for v in series):  # as the transform writes them
        return series
    return pd.Series(
        [None if v is None or (not isinstance(v, str) and pd.isna(v)) else _one_key_text(v) for v in series],
        dtype=object,
    )


def _one_key_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _arrow_column(series: pd.Series, column: sa.Column[Any], table_name: str) -> pa.Array:
    target = _arrow_type(column)
    try:
        array = pa.array(series, type=target, from_pandas=True)
        return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        pass
    try:  # e.g. datetime64 values for a date column: a safe cast refuses to drop a time of day
        return pa.array(series, from_pandas=True).cast(target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
        raise ValueError(
            f"transformed column {table_name}.{column.name} cannot be stored as "
            f"{column.type}: {str(exc).splitlines()[0][:200]}"
        ) from None


def to_stage_arrow(frame: pd.DataFrame, spec: TargetSpec) -> tuple[pa.Table, list[dict[str, Any]]]:
    """The transformed rows as an Arrow table of the stage's data columns, and the rows that do not fit.

    Raises ValueError when the frame lacks a column the contract requires
    (a defect of the transform, not of the data).
    """
    columns = stage_data_columns(spec)[1:]
    missing = [c.name for c in columns if c.name not in frame.columns]
    if missing:
        raise ValueError(f"transformed rows for {spec.name} lack column(s) {', '.join(missing)}")
    key_columns = {"legacy_key"} | ({spec.parent.legacy_column} if spec.parent else set())
    arrays = [pa.array(np.arange(len(frame), dtype=np.int64))]
    for column in columns:
        series = frame[column.name].reset_index(drop=True)
        if column.name in key_columns:
            series = _key_text(series)
        arrays.append(_arrow_column(series, column, spec.name))
    data = pa.Table.from_arrays(arrays, names=["stage_seq"] + [c.name for c in columns])
    for name in ("legacy_key", "legacy_row_hash"):
        if data.column(name).null_count:
            raise ValueError(f"transformed rows for {spec.name} have rows without {name}")
    return _split_unstorable(data, spec)


def _split_unstorable(data: pa.Table, spec: TargetSpec) -> tuple[pa.Table, list[dict[str, Any]]]:
    """Rows whose values the business table cannot hold become rejects (first failing column)."""
    failed = np.zeros(data.num_rows, dtype=bool)
    reason = np.full(data.num_rows, None, dtype=object)
    field = np.full(data.num_rows, None, dtype=object)
    for column in spec.row_columns():
        values = data.column(column.name)
        checks = []
        if not column.nullable and column.server_default is None:
            checks.append((reasons.TARGET_REQUIRED_MISSING, pc.is_null(values)))
        if pa.types.is_large_string(values.type):
            length = getattr(column.type, "length", None)
            if length:
                checks.append((reasons.TARGET_VALUE_TOO_LONG, pc.greater(pc.utf8_length(values), length)))
            checks.append((reasons.TARGET_TEXT_NUL, pc.match_substring(values, "\x00")))
        for code, mask in checks:
            hits = pc.fill_null(mask, False).to_numpy(zero_copy_only=False) & ~failed
            if hits.any():
                reason[hits], field[hits] = code, column.name
                failed |= hits
    if not failed.any():
        return data, []
    rejected = np.flatnonzero(failed)
    keys = data.column("legacy_key").take(pa.array(rejected)).to_pylist()
    rejects = []
    for position, key in zip(rejected, keys):
        name = field[position]
        value = data.column(name)[int(position)].as_py()
        rejects.append(_unstorable_reject(key, reason[position], name, value, spec))
    return data.filter(pa.array(~failed)), rejects


def _unstorable_reject(key: str, code: str, column: str, value: Any, spec: TargetSpec) -> dict[str, Any]:
    if code == reasons.TARGET_REQUIRED_MISSING:
        message = f"{spec.name}.{column} is required by the new system and is empty"
    elif code == reasons.TARGET_VALUE_TOO_LONG:
        text_type = spec.table.c[column].type
        assert isinstance(text_type, sa.String)  # only a text column has a length to exceed
        message = f"{spec.name}.{column} holds at most {text_type.length} characters; this value has {len(value)}"
    else:
        message = f"{spec.name}.{column} contains a NUL character"
    return {
        "legacy_key": key,
        "reason_code": code,
        "field": column,
        "original_value": None if value is None else str(value)[:_VALUE_PREVIEW],
        "message": message,
    }


def drop_temporary(conn: Connection, table: sa.Table) -> None:
    """Done with a chunk's temporary table: SQLite drops it; PostgreSQL keeps it for the next chunk."""
    if conn.dialect.name != "postgresql":
        table.drop(conn)


def write_stage(conn: Connection, stage: sa.Table, data: pa.Table) -> None:
    """Bulk-write the Arrow rows into the stage: binary COPY on PostgreSQL, batched inserts elsewhere."""
    if data.num_rows == 0:
        return
    if conn.dialect.name == "postgresql":
        copy_arrow(conn, stage, data)
        return
    names = data.column_names
    insert = stage.insert()
    for batch in data.to_batches(max_chunksize=_SQLITE_BATCH_ROWS):
        columns = [column.to_pylist() for column in batch.columns]
        conn.execute(insert, [dict(zip(names, row)) for row in zip(*columns)])
