"""Engines built from configuration: the only place that opens connections.

Stage code receives an Engine or Connection; it never builds one.
The legacy engine is read-only wherever the driver lets us say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from .errors import ConfigError, FolderUnusable, LoginRefused, UnreachableError, classify, is_login_refused
from .odbc import odbc_connection_string
from .private_files import private_sqlite_file
from .secrets import Secret, redact_url, scrub


def parse_url(url: Secret, *, what: str) -> URL:
    try:
        return make_url(url.reveal())
    except Exception:
        raise ConfigError(f"{what}: not a valid database URL") from None


def legacy_engine(url: Secret, *, read_only: bool = True) -> Engine:
    """Engine on a TS24 legacy database; read-only unless the purge asks otherwise."""
    parsed = parse_url(url, what="legacy connection")
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if not Path(database).exists():
            raise UnreachableError(f"legacy database {database} does not exist")
        if read_only:
            # mode=ro makes SQLite itself refuse any write.
            parsed = parsed.set(
                database=f"file:{Path(database).resolve()}?mode=ro", query={**parsed.query, "uri": "true"}
            )
        return sa.create_engine(parsed)
    if backend == "mssql" and read_only:
        parsed = parsed.difference_update_query(
            [k for k in parsed.query if k.lower() == "applicationintent"]
        ).update_query_dict({"ApplicationIntent": "ReadOnly"})
    engine = _server_engine(parsed)
    if backend in ("mysql", "mariadb") and read_only:

        @sa.event.listens_for(engine, "connect")
        def _read_only_session(
            dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry
        ) -> None:  # pragma: no branch
            cursor = dbapi_connection.cursor()
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            cursor.close()

    return engine


def legacy_arrow_connection(conn: Connection) -> Any | None:
    """A read-only connection for Arrow-native reads (extract.arrow_reader) on the same legacy
    database as `conn`: ADBC for a SQLite file, arrow-odbc for MariaDB over ODBC; None where there is
    none to open (another database, an in-memory one, a driver not installed). The caller closes it.

    Whatever the engine was made with, it is opened read-only: SQLite with mode=ro, MariaDB with a
    read-only session, as legacy_engine does.
    """
    if conn.dialect.name == "sqlite":
        return _sqlite_arrow_connection(conn.engine.url.database or "")
    if conn.dialect.name in ("mysql", "mariadb") and conn.engine.url.get_driver_name() == "pyodbc":
        try:
            import arrow_odbc  # loaded only when the Arrow path is used
        except ImportError:
            return None
        odbc = arrow_odbc.connect(odbc_connection_string(conn.engine.url))
        odbc.execute("SET SESSION TRANSACTION READ ONLY")
        return odbc
    return None


def _sqlite_arrow_connection(database: str) -> Any | None:
    if database.startswith("file:"):  # a URI already (legacy_engine's read-only one)
        path = unquote(urlsplit(database).path)
    elif database and database != ":memory:":
        path = database
    else:
        return None
    if not path or not Path(path).is_file():
        return None
    try:
        import adbc_driver_sqlite.dbapi  # loaded only when the Arrow path is used
    except ImportError:  # an install without the driver reads the current way
        return None
    return adbc_driver_sqlite.dbapi.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro")


def store_engine(url: Secret) -> Engine:
    """Engine on the target system or the control store (SQLite or PostgreSQL)."""
    parsed = parse_url(url, what="store connection")
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        # It holds legacy data (the new system's rows, the control store's figures, a scratch restore):
        # readable by its owner only, and so are the -wal and -shm files SQLite makes beside it.
        private_sqlite_file(Path(parsed.database))
        engine = sa.create_engine(parsed, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets the report read while a flow writes; foreign keys as on PostgreSQL.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return _server_engine(parsed)


def _server_engine(parsed: URL) -> Engine:
    """An engine on a database server that connects exactly where `parsed` says.

    Over ODBC the connection string is ours (odbc.py), not SQLAlchemy's, whose
    ``Server=host,port`` MariaDB Connector/ODBC reads as a host name on port 3306.
    """
    engine = sa.create_engine(parsed, pool_pre_ping=True)
    if parsed.get_driver_name() == "pyodbc":
        connection_string = odbc_connection_string(parsed)  # a bad URL is a ConfigError now, not at connect

        @sa.event.listens_for(engine, "do_connect")
        def _exact_odbc_target(
            _dialect: Dialect, _record: ConnectionPoolEntry, cargs: list[Any], _cparams: dict[str, Any]
        ) -> None:
            cargs[:] = [connection_string]

    return engine


def check_reachable(engine: Engine, *, what: str, url: Secret | None = None) -> None:
    """Open one connection now, so that an unreachable server is one clear line."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:
        detail = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        detail = scrub(detail, url) if url is not None else redact_url(detail)
        where = redact_url(engine.url.render_as_string(hide_password=True))
        # Not every failed connection is transient: a refused login or an unwritable folder is not retried.
        if is_login_refused(exc):
            raise LoginRefused(f"{what} at {where} refused the login: {detail}") from None
        if isinstance(classify(exc), FolderUnusable):
            raise FolderUnusable(
                f"{what} at {where} cannot be opened: {detail} (check the permissions and free space of its folder)"
            ) from None
        raise UnreachableError(f"{what} unreachable at {where}: {detail}") from None
