"""The purge's server statements as SQLAlchemy constructs, compiled per dialect with its own quoting.

SQLAlchemy has no construct for DROP DATABASE, REVOKE or ALTER DATABASE;
these small DDL elements are that construct: names go through the dialect's
identifier preparer, account names through its string literal processor,
never through string formatting of raw input.

Example::

    conn.execute(DropDatabase("ts24_hn01"))          # MariaDB: DROP DATABASE `ts24_hn01`
    str(DropDatabase("TS24").compile(dialect=mssql.dialect()))   # 'DROP DATABASE [TS24]'
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import DDLElement
from sqlalchemy.sql.compiler import DDLCompiler

# What the TS24 software could change the site's database with (MariaDB/MySQL privilege names), on the
# database and on one table; MariaDB also has DELETE HISTORY (system-versioned tables).
DATABASE_WRITE_PRIVILEGES = (
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "INDEX",
    "CREATE VIEW",
    "TRIGGER",
    "CREATE ROUTINE",
    "ALTER ROUTINE",
    "EXECUTE",
    "EVENT",
    "LOCK TABLES",
)
TABLE_WRITE_PRIVILEGES = ("INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX", "CREATE VIEW", "TRIGGER")
MARIADB_ONLY_PRIVILEGES = ("DELETE HISTORY",)
WRITE_PRIVILEGES = frozenset(DATABASE_WRITE_PRIVILEGES + MARIADB_ONLY_PRIVILEGES)


def _literal(compiler: DDLCompiler, value: str) -> str:
    # Through the statement compiler, as a bound literal would be: MySQL/MariaDB's also doubles backslashes
    # (String's literal_processor alone does not, and an account named `ab\` would end the quoted string early).
    return str(compiler.sql_compiler.render_literal_value(value, sa.String()))


class DropDatabase(DDLElement):
    inherit_cache = False

    def __init__(self, name: str):
        self.name = name


class UseDatabase(DDLElement):
    inherit_cache = False

    def __init__(self, name: str):
        self.name = name


class SetSingleUser(DDLElement):
    """SQL Server: end every other session of the database (rolled back) before it is dropped."""

    inherit_cache = False

    def __init__(self, name: str):
        self.name = name


class SetReadOnly(DDLElement):
    """SQL Server: the site's database alone becomes read-only (the write stop)."""

    inherit_cache = False

    def __init__(self, name: str):
        self.name = name


class RevokeWrites(DDLElement):
    """MariaDB/MySQL: take the write privileges on one database (or one of its tables) from an account."""

    inherit_cache = False

    def __init__(self, database: str, user: str, host: str, privileges: tuple[str, ...], table: str | None = None):
        if not privileges or any(p not in WRITE_PRIVILEGES for p in privileges):
            raise ValueError(f"not write privileges: {privileges!r}")
        self.database, self.user, self.host, self.table = database, user, host, table
        self.privileges = tuple(privileges)


class KillConnection(DDLElement):
    inherit_cache = False

    def __init__(self, connection_id: int):
        self.connection_id = int(connection_id)


@compiles(DropDatabase)
def _drop(element: DropDatabase, compiler: DDLCompiler, **kw: Any) -> str:
    return f"DROP DATABASE {compiler.preparer.quote_identifier(element.name)}"


@compiles(UseDatabase)
def _use(element: UseDatabase, compiler: DDLCompiler, **kw: Any) -> str:
    return f"USE {compiler.preparer.quote_identifier(element.name)}"


@compiles(SetSingleUser)
def _single_user(element: SetSingleUser, compiler: DDLCompiler, **kw: Any) -> str:
    return f"ALTER DATABASE {compiler.preparer.quote_identifier(element.name)} SET SINGLE_USER WITH ROLLBACK IMMEDIATE"


@compiles(SetReadOnly)
def _read_only(element: SetReadOnly, compiler: DDLCompiler, **kw: Any) -> str:
    return f"ALTER DATABASE {compiler.preparer.quote_identifier(element.name)} SET READ_ONLY WITH ROLLBACK IMMEDIATE"


@compiles(RevokeWrites)
def _revoke(element: RevokeWrites, compiler: DDLCompiler, **kw: Any) -> str:
    quote = compiler.preparer.quote_identifier
    target = quote(element.database) + "." + (quote(element.table) if element.table else "*")
    return (
        f"REVOKE {', '.join(element.privileges)} ON {target} FROM "
        f"{_literal(compiler, element.user)}@{_literal(compiler, element.host)}"
    )


@compiles(KillConnection)
def _kill(element: KillConnection, compiler: DDLCompiler, **kw: Any) -> str:
    return f"KILL CONNECTION {element.connection_id:d}"
