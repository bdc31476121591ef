"""Bounded, chunked inserts that work the same on SQLite, MariaDB and SQL Server.

Rows are buffered and written every `chunk_rows` rows (or `chunk_bytes` of
blobs), one transaction per chunk, so memory never holds a whole table.
SQLite takes a plain executemany. Over ODBC an executemany is one round trip
per row, so there rows go as multi-row INSERT ... VALUES statements, kept
under SQL Server's limit of 2,100 parameters per statement.

Example::

    with ChunkedInserter(engine, HO_SO, progress=report) as out:
        for row in rows:
            out.add(row)
    out.rows_written
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

#: progress(table_name, rows_written_so_far, rows_expected_or_None)
Progress = Callable[[str, int, "int | None"], None]

MAX_PARAMETERS_PER_STATEMENT = 2000


def insert_rows(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        conn.execute(table.insert(), rows)
        return
    per_statement = max(1, MAX_PARAMETERS_PER_STATEMENT // len(rows[0]))
    for start in range(0, len(rows), per_statement):
        conn.execute(table.insert().values(rows[start : start + per_statement]))


class ChunkedInserter:
    def __init__(
        self,
        engine: Engine,
        table: sa.Table,
        *,
        chunk_rows: int = 10_000,
        chunk_bytes: int = 16 << 20,
        progress: Progress | None = None,
        expected_rows: int | None = None,
    ):
        self.engine = engine
        self.table = table
        self.chunk_rows = chunk_rows
        self.chunk_bytes = chunk_bytes
        self.progress = progress
        self.expected_rows = expected_rows
        self.rows_written = 0
        self._buffer: list[dict[str, Any]] = []
        self._buffered_bytes = 0

    def add(self, row: dict[str, Any], blob_bytes: int = 0) -> None:
        self._buffer.append(row)
        self._buffered_bytes += blob_bytes
        if len(self._buffer) >= self.chunk_rows or self._buffered_bytes >= self.chunk_bytes:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        with self.engine.begin() as conn:
            insert_rows(conn, self.table, self._buffer)
        self.rows_written += len(self._buffer)
        self._buffer = []
        self._buffered_bytes = 0
        if self.progress is not None:
            self.progress(self.table.name, self.rows_written, self.expected_rows)

    def __enter__(self) -> ChunkedInserter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.flush()
