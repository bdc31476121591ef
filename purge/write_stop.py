"""Writes to the site's legacy database stopped for the purge, on that database only, and checked.

The stop is put in place before the final backup increment and must hold
until the database is dropped; the plan and the execution both check it, and
the fingerprint gate (live data = the verified chain, re-read immediately
before the first destructive step) catches any write that got through.

| engine | how writes are stopped | what is checked |
|---|---|---|
| SQLite | the database file and its side files lose every write permission (``chmod a-w``); the tool reads it with ``mode=ro`` | no write bit on any of those files |
| MariaDB/MySQL | the write privileges of the accounts the TS24 software uses (inventory: ``purge.application_accounts``) on the site's database and its tables are revoked, and their open connections killed | those accounts hold no write privilege on the database (database, table or global level, wildcard grants included) and have no connection older than the revocation |
| SQL Server | ``ALTER DATABASE <site db> SET READ_ONLY WITH ROLLBACK IMMEDIATE`` (that database only) | ``sys.databases.is_read_only`` |

A connection opened before the revocation keeps its database privileges
until it changes database (MariaDB caches them per connection), hence the
kill; one opened after it (TS24 reconnecting) has none, and is allowed:
connection ids only grow, so "older" is an id at most the one the stop
recorded.

Never a server-wide switch (``read_only``, ``FLUSH TABLES WITH READ LOCK``):
other databases on the same server keep working. A grant held at the global
level (``INSERT ON *.*``) or through a wildcard database pattern cannot be
taken from one database alone: the check refuses and says so, and the DBA
narrows the grant.

Example::

    done = stop_writes(conn, kind="mariadb", database="ts24_hn01", files=[], accounts=["ts24app@%"])
    check_writes_stopped(conn, kind="mariadb", database="ts24_hn01", files=[], accounts=["ts24app@%"]).holds
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .statements import (
    DATABASE_WRITE_PRIVILEGES,
    MARIADB_ONLY_PRIVILEGES,
    TABLE_WRITE_PRIVILEGES,
    WRITE_PRIVILEGES,
    KillConnection,
    RevokeWrites,
    SetReadOnly,
    UseDatabase,
)

METHODS = {
    "sqlite": "file mode: write permission removed from the database file and its side files (chmod a-w); "
    "read by the tool with mode=ro",
    "mariadb": "the TS24 application accounts' write privileges on the site's database revoked and their "
    "connections ended (no server-wide setting)",
    "mysql": "the TS24 application accounts' write privileges on the site's database revoked and their "
    "connections ended (no server-wide setting)",
    "mssql": "ALTER DATABASE ... SET READ_ONLY WITH ROLLBACK IMMEDIATE on the site's database only",
}
NO_WRITE = ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
_IS = "information_schema"
USER_PRIVILEGES = sa.table("USER_PRIVILEGES", sa.column("GRANTEE"), sa.column("PRIVILEGE_TYPE"), schema=_IS)
SCHEMA_PRIVILEGES = sa.table(
    "SCHEMA_PRIVILEGES", sa.column("GRANTEE"), sa.column("TABLE_SCHEMA"), sa.column("PRIVILEGE_TYPE"), schema=_IS
)
TABLE_PRIVILEGES = sa.table(
    "TABLE_PRIVILEGES",
    sa.column("GRANTEE"),
    sa.column("TABLE_SCHEMA"),
    sa.column("TABLE_NAME"),
    sa.column("PRIVILEGE_TYPE"),
    schema=_IS,
)
PROCESSLIST = sa.table("PROCESSLIST", sa.column("ID"), sa.column("USER"), sa.column("DB"), schema=_IS)
SYS_DATABASES = sa.table("databases", sa.column("name"), sa.column("is_read_only"), schema="sys")
NO_SUCH_GRANT = ("1141", "1147")  # MariaDB/MySQL: no such grant defined (database / table level)


@dataclass
class WriteStopCheck:
    holds: bool
    method: str
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)


def split_account(account: str) -> tuple[str, str]:
    user, _, host = account.rpartition("@")
    return user, host


def _grantee(account: str) -> str:
    user, host = split_account(account)
    return f"'{user}'@'{host}'"


def stop_writes(
    conn: Connection | None, *, kind: str, database: str | None, files: Sequence[Path], accounts: Sequence[str]
) -> dict[str, Any]:
    """Put the write stop in place (idempotent); returns what was done, for the ledger."""
    if kind == "sqlite":
        changed = []
        for path in files:
            mode = stat.S_IMODE(os.stat(path, follow_symlinks=False).st_mode)
            if mode & ~NO_WRITE:
                os.chmod(path, mode & NO_WRITE)
                changed.append({"path": str(path), "mode_before": f"{mode:04o}", "mode": f"{mode & NO_WRITE:04o}"})
        return {"method": METHODS[kind], "files": changed}
    if kind in ("mariadb", "mysql"):
        assert conn is not None and database is not None
        privileges = DATABASE_WRITE_PRIVILEGES + (MARIADB_ONLY_PRIVILEGES if kind == "mariadb" else ())
        table_privileges = TABLE_WRITE_PRIVILEGES + (MARIADB_ONLY_PRIVILEGES if kind == "mariadb" else ())
        revoked, killed = [], []
        for account in accounts:
            user, host = split_account(account)
            if _revoke(conn, RevokeWrites(database, user, host, privileges)):
                revoked.append({"account": account, "on": f"{database}.*"})
            tables = conn.execute(
                sa.select(TABLE_PRIVILEGES.c.TABLE_NAME)
                .distinct()
                .where(TABLE_PRIVILEGES.c.GRANTEE == _grantee(account), TABLE_PRIVILEGES.c.TABLE_SCHEMA == database)
            ).scalars()
            for table in sorted(tables):
                if _revoke(conn, RevokeWrites(database, user, host, table_privileges, table=table)):
                    revoked.append({"account": account, "on": f"{database}.{table}"})
            own = conn.execute(sa.select(sa.func.connection_id())).scalar_one()
            for connection_id in conn.execute(sa.select(PROCESSLIST.c.ID).where(PROCESSLIST.c.USER == user)).scalars():
                if int(connection_id) != int(own):
                    try:
                        conn.execute(KillConnection(connection_id))
                        killed.append(int(connection_id))
                    except sa.exc.DBAPIError:
                        pass  # it ended by itself meanwhile
        # Connection ids grow: any application connection above this one was opened after the revocation.
        last = conn.execute(sa.select(sa.func.connection_id())).scalar_one()
        return {"method": METHODS[kind], "revoked": revoked, "connections_ended": killed, "connection_id": int(last)}
    if kind == "mssql":
        assert conn is not None and database is not None
        conn.execute(UseDatabase("master"))
        conn.execute(SetReadOnly(database))
        return {"method": METHODS[kind], "database": database}
    raise ValueError(f"no write stop for {kind}")


def _revoke(conn: Connection, statement: RevokeWrites) -> bool:
    try:
        conn.execute(statement)
        return True
    except sa.exc.DBAPIError as exc:
        if any(code in str(exc.orig) for code in NO_SUCH_GRANT):
            return False
        raise


def check_writes_stopped(
    conn: Connection | None,
    *,
    kind: str,
    database: str | None,
    files: Sequence[Path],
    accounts: Sequence[str],
    stopped_at_connection: int | None = None,
) -> WriteStopCheck:
    """Whether the stop holds; MariaDB needs `stopped_at_connection` (the id stop_writes recorded)."""
    method = METHODS.get(kind, f"no write stop is known for {kind}")
    if kind == "sqlite":
        writable = []
        for path in files:
            try:
                mode = stat.S_IMODE(os.stat(path, follow_symlinks=False).st_mode)
            except FileNotFoundError:
                continue
            if mode & ~NO_WRITE:
                writable.append(f"{path} (mode {mode:04o})")
        if writable:
            return WriteStopCheck(False, method, f"writable: {', '.join(writable)}")
        return WriteStopCheck(
            True, method, f"{len(files)} file(s) without write permission", {"files": [str(p) for p in files]}
        )
    if kind in ("mariadb", "mysql"):
        assert conn is not None and database is not None
        if not accounts:
            return WriteStopCheck(
                False,
                method,
                "the inventory names no application account: list the accounts "
                "the TS24 software writes with under the site's "
                "purge.application_accounts",
            )
        if stopped_at_connection is None:
            return WriteStopCheck(False, method, "writes were never stopped for the purge")
        problems = []
        writes = sorted(WRITE_PRIVILEGES)
        for account in accounts:
            grantee = _grantee(account)
            found = (
                conn.execute(
                    sa.select(USER_PRIVILEGES.c.PRIVILEGE_TYPE).where(
                        USER_PRIVILEGES.c.GRANTEE == grantee, USER_PRIVILEGES.c.PRIVILEGE_TYPE.in_(writes)
                    )
                )
                .scalars()
                .all()
            )
            if found:
                problems.append(
                    f"{account} holds {', '.join(sorted(found))} on *.* (server-wide: the DBA must "
                    f"narrow it, the purge never changes other databases)"
                )
            s = SCHEMA_PRIVILEGES.c
            for schema, privilege in conn.execute(
                sa.select(s.TABLE_SCHEMA, s.PRIVILEGE_TYPE).where(
                    s.GRANTEE == grantee,
                    s.PRIVILEGE_TYPE.in_(writes),
                    sa.or_(s.TABLE_SCHEMA == database, sa.literal(database).like(s.TABLE_SCHEMA)),
                )
            ):
                problems.append(
                    f"{account} holds {privilege} on {schema}.*"
                    + (" (a wildcard grant: the DBA must narrow it)" if schema != database else "")
                )
            t = TABLE_PRIVILEGES.c
            for table, privilege in conn.execute(
                sa.select(t.TABLE_NAME, t.PRIVILEGE_TYPE).where(
                    t.GRANTEE == grantee, t.TABLE_SCHEMA == database, t.PRIVILEGE_TYPE.in_(writes)
                )
            ):
                problems.append(f"{account} holds {privilege} on {database}.{table}")
            user, _host = split_account(account)
            older = conn.execute(
                sa.select(sa.func.count())
                .select_from(PROCESSLIST)
                .where(PROCESSLIST.c.USER == user, PROCESSLIST.c.ID <= stopped_at_connection)
            ).scalar_one()
            if older:
                problems.append(f"{account} has {older} connection(s) open from before the write stop")
        if problems:
            return WriteStopCheck(False, method, "; ".join(problems[:5]))
        return WriteStopCheck(
            True,
            method,
            f"no write privilege and no connection from before the stop for {', '.join(accounts)} on {database}",
            {"accounts": list(accounts)},
        )
    if kind == "mssql":
        assert conn is not None and database is not None
        read_only = conn.execute(
            sa.select(SYS_DATABASES.c.is_read_only).where(SYS_DATABASES.c.name == database)
        ).scalar()
        return WriteStopCheck(
            bool(read_only), method, "the database is READ_ONLY" if read_only else "the database is writable"
        )
    return WriteStopCheck(False, method, f"the purge does not know how to stop writes on {kind}")
