"""A write transaction that is atomic on SQLite too, DDL included.

Python's sqlite3 (legacy transaction mode, as SQLAlchemy's default pysqlite
engine uses it) opens a transaction only before INSERT/UPDATE/DELETE: a
CREATE before them commits on its own, and SQLite takes the write lock only
at the first write. `BEGIN IMMEDIATE` at the start makes the whole block one
transaction and takes the lock at once, so a schema step or a chunk that
fails halfway leaves nothing behind, and no other writer slips in between a
key allocation (max + n) and its insert. PostgreSQL needs nothing extra.

Example::

    with write_transaction(engine) as conn:
        conn.execute(...)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            sqlite = conn.connection.driver_connection
            assert isinstance(sqlite, sqlite3.Connection)  # pysqlite: the one SQLite driver used
            if not sqlite.in_transaction:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn
