"""A row hash that the database computes itself, for lineage and parity.

The load records, for every row it writes, the hash the target database
computes over that row's business columns; parity later recomputes the same
expression over the live table and compares range sums. Both sides run the
same SQL on the same database, so formatting of dates or numbers cannot make
them disagree, and a range checksum costs about as much as a scan (no rows
travel to Python when nothing differs).

PostgreSQL uses md5() over the row's text form; SQLite gets a deterministic
user function registered on connect (see `register_sqlite_functions`).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.engine import Engine
from sqlalchemy.pool import ConnectionPoolEntry

from ts24_migrate.core.rows.fingerprint import canonical_value

SQLITE_ROW_MD5 = "ts24_row_md5"
SQLITE_HEX28 = "ts24_hex28"


def _sqlite_row_md5(*values: object) -> str:
    h = hashlib.md5(usedforsecurity=False)
    for value in values:
        h.update(canonical_value(value))
    return h.hexdigest()


def _hex_to_int(text: str | None) -> int | None:
    return int(text, 16) if text else None


def register_sqlite_functions(engine: Engine) -> None:
    """Make ts24_row_md5() and ts24_hex28() available on every SQLite connection of `engine` (idempotent)."""
    if engine.dialect.name != "sqlite" or getattr(engine, "_ts24_row_md5", False):
        return

    @sa.event.listens_for(engine, "connect")
    def _register(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.create_function(SQLITE_ROW_MD5, -1, _sqlite_row_md5, deterministic=True)
        dbapi_connection.create_function(SQLITE_HEX28, 1, _hex_to_int, deterministic=True)

    # A mark of our own on the engine (Engine declares no such attribute): registered already.
    engine._ts24_row_md5 = True  # type: ignore[attr-defined]
    engine.pool.dispose()  # connections opened before now lack the function


def row_md5(dialect_name: str, columns: Sequence[sa.ColumnElement[Any]]) -> sa.ColumnElement[str]:
    """SQL expression: 32-hex-digit md5 of the row made of `columns`."""
    if dialect_name == "postgresql":
        return sa.func.md5(sa.cast(sa.tuple_(*columns), sa.Text))
    if dialect_name == "sqlite":
        md5: sa.ColumnElement[str] = getattr(sa.func, SQLITE_ROW_MD5)(*columns)  # our function, by its name
        return md5
    raise NotImplementedError(f"row hashes are computed on PostgreSQL and SQLite targets, not {dialect_name}")


def md5_prefix_int(dialect_name: str, md5_hex: sa.ColumnElement[str]) -> sa.ColumnElement[int]:
    """SQL expression: the first 28 bits of a hex md5 as an integer.

    Summed over a key range with the row count, it tells whether the range
    holds the same rows on both sides. 28 bits keep the sum below 2**63 for up
    to 2**35 rows, so SQLite's integer sum cannot overflow.
    """
    prefix = sa.func.substr(md5_hex, 1, 7)
    if dialect_name == "postgresql":
        hex_text = sa.literal("x", sa.Text).concat(prefix)
        return sa.cast(sa.cast(hex_text, BIT(28)), sa.Integer)
    if dialect_name == "sqlite":
        as_int: sa.ColumnElement[int] = getattr(sa.func, SQLITE_HEX28)(prefix)  # our function, by its name
        return as_int
    raise NotImplementedError(f"row hashes are computed on PostgreSQL and SQLite targets, not {dialect_name}")
