"""Read keyed legacy tables as Arrow record batches, without Python row objects, where a driver
gives exactly the values the current reader gives; the current reader everywhere else.

The batches are the very batches the current path makes (extract.reader's
rows through ts24_migrate.core.rows.arrow_types.rows_to_batch): same pages,
same Arrow types, same values, same native/canonical encoding per column, so
every fingerprint, row digest and Parquet part is the same byte for byte.
SQLAlchemy still discovers the table and writes each page's query; the Arrow
driver only runs it:

- SQLite through ADBC (adbc-driver-sqlite): extract.arrow_sqlite;
- MariaDB over ODBC through arrow-odbc: extract.arrow_mariadb.

Each page reader checks what its driver could get wrong (SQLite storage
classes, MariaDB value lengths) and refuses a page it cannot give exactly:
that page is read again the current way. Tables read wholly the current way:
tables without a primary key (a single pass, whose refused chunk could not be
read again), keys that are not plain integer or text columns, SQL Server
(not tried), and the column types each page reader lists. Rows whose key
holds NULL (SQLite) are read the current way, ahead of the keyset pages.

Example::

    with legacy.connect() as conn:
        for batch in iter_stored_batches(conn, table_info, chunk_rows=50_000):
            ...  # == rows_to_batch(column_plan(table_info), rows) of the current path
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
from sqlalchemy.engine import Connection

from ts24_migrate.core.db import legacy_arrow_connection
from ts24_migrate.core.rows.arrow_types import ColumnPlan, batch_to_rows, rows_to_batch

from .arrow_mariadb import MariaDbPages, mariadb_refusal
from .arrow_pages import ArrowReadStats, PageReader, key_refusal
from .arrow_sqlite import SqlitePages
from .discovery import TableInfo, column_plan
from .reader import check_resumable, iter_table_rows, keyset_page, null_key_rows

__all__ = ["ARROW_READS_ENV", "ArrowReadStats", "arrow_reads_wanted", "iter_row_pages", "iter_stored_batches"]

# Where no caller says otherwise: "sqlite" (the default) reads SQLite the Arrow way; "all" MariaDB too;
# "off" (or "0", "false", "no") neither. MariaDB is not in the default: the current reader's pages
# share its connection's transaction (one InnoDB snapshot for a whole backup), while arrow-odbc reads
# on a connection of its own, each page seeing what is committed when it runs.
ARROW_READS_ENV = "TS24_ARROW_READS"
_OFF = ("off", "0", "false", "no")


def arrow_reads_wanted(arrow_reads: bool | None, dialect: str) -> bool:
    """The caller's choice, else the TS24_ARROW_READS setting for this database (see above)."""
    if arrow_reads is not None:
        return arrow_reads
    setting = os.environ.get(ARROW_READS_ENV, "").strip().lower() or "sqlite"
    if setting in _OFF:
        return False
    return setting == "all" or dialect == "sqlite"


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

    With `arrow_reads` (default: the TS24_ARROW_READS setting) pages are read
    the Arrow way where the table allows it; otherwise, and for any page the
    Arrow path cannot give exactly, through the current reader.
    """
    if chunk_rows <= 0:
        raise ValueError("chunk_rows must be positive")
    plans = column_plan(table)
    stats = stats if stats is not None else ArrowReadStats()
    wanted = arrow_reads_wanted(arrow_reads, conn.dialect.name)
    pages = _page_reader(conn, table, plans, chunk_rows, stats) if wanted else None
    if pages is None:
        if not wanted:
            stats.note("table: Arrow reads off")
        for rows in iter_table_rows(conn, table, chunk_rows=chunk_rows, start_after=start_after):
            stats.fallback_pages += 1
            yield rows_to_batch(plans, rows)
        return
    check_resumable(table, start_after)
    try:
        if start_after is None:  # few rows, SQLite only: the current path reads them
            for rows in null_key_rows(conn, table, chunk_rows):
                stats.fallback_pages += 1
                yield rows_to_batch(plans, rows)
        last_key = list(start_after) if start_after is not None else None
        while True:
            batch = pages.page(last_key)
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
    finally:
        pages.close()


def iter_row_pages(
    conn: Connection,
    table: TableInfo,
    *,
    chunk_rows: int = 50_000,
    start_after: Sequence[Any] | None = None,
    arrow_reads: bool | None = None,
) -> Iterator[list[tuple[Any, ...]]]:
    """extract.reader.iter_table_rows's pages of a keyed table, the same rows as tuples, read the Arrow
    way where iter_stored_batches may: the driver fetches and converts in C what the current reader
    fetches row by row through SQLAlchemy's result processing (the load's transform wants Python values)."""
    for batch in iter_stored_batches(
        conn, table, chunk_rows=chunk_rows, start_after=start_after, arrow_reads=arrow_reads
    ):
        yield batch_to_rows(batch)


def _page_reader(
    conn: Connection, table: TableInfo, plans: list[ColumnPlan], chunk_rows: int, stats: ArrowReadStats
) -> PageReader | None:
    """The table's Arrow page reader, or None (the reason noted) where the table goes the current way."""
    dialect = conn.dialect.name
    refusal = key_refusal(table, plans, conn.dialect)
    if refusal is None and dialect in ("mysql", "mariadb"):
        refusal = mariadb_refusal(conn, table, plans)
    elif refusal is None and dialect != "sqlite":
        refusal = f"no exact Arrow reader for {dialect}"
    connection = None
    if refusal is None:
        try:
            connection = _arrow_connection(conn)
        except Exception as exc:  # noqa: BLE001 - the current path reads what the Arrow driver could not open
            refusal = f"the Arrow driver could not connect ({type(exc).__name__})"
    if connection is None:
        stats.note(f"table: {refusal or 'no database for the Arrow driver to open'}")
        return None
    if dialect == "sqlite":
        return SqlitePages(connection, conn, table, plans, chunk_rows, stats)
    return MariaDbPages(connection, conn, table, plans, chunk_rows, stats)


def _arrow_connection(conn: Connection) -> Any | None:
    """The Arrow driver's connection for `conn`'s database. An arrow-odbc one (a login, a session
    set read-only) is kept with the pooled connection for the next tables; an ADBC one on a
    SQLite file costs nothing to open, and is closed after each table."""
    if conn.dialect.name == "sqlite":
        return legacy_arrow_connection(conn)
    kept = conn.info.get(_KEPT_ARROW_CONNECTION)
    if kept is None:
        kept = conn.info[_KEPT_ARROW_CONNECTION] = legacy_arrow_connection(conn)
    return kept


_KEPT_ARROW_CONNECTION = "ts24.arrow_connection"


def _last_key(table: TableInfo, plans: Sequence[ColumnPlan], batch: pa.RecordBatch) -> list[Any]:
    # Only the last row becomes Python values: the key the next page starts after.
    [last] = batch_to_rows(batch.slice(batch.num_rows - 1, 1))
    names = [plan.name for plan in plans]
    return [last[names.index(name)] for name in table.primary_key]
