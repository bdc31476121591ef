"""Which server a connection actually reached, as the server itself reports it.

The assessment records the identity of the legacy server it read; every later
stage records the one it reached and refuses another (runs/server_check.py).
Facts come from the server, not from the URL, so that two URLs reaching one
server (an IP address and a host name) agree, and one URL reaching another
server (a wrong port, a moved DNS name) does not.

Compared (must all be equal): kind, host, port, database, server_id.
Recorded only: version (a patch release changes it on the same server) and
details (sizes, times, the raw facts behind server_id).

| kind | host | port | database | server_id |
|---|---|---|---|---|
| mariadb | ``@@hostname`` | ``@@port`` | ``DATABASE()`` | SHA-256 of hostname, port, datadir and ``@@server_id`` (MariaDB has no server UUID) |
| mysql | ``@@hostname`` | ``@@port`` | ``DATABASE()`` | ``@@server_uuid`` |
| mssql | ``SERVERPROPERTY('MachineName')`` | the connection's ``local_tcp_port`` | ``DB_NAME()`` | ``@@SERVERNAME`` and the database's ``service_broker_guid`` |
| postgresql | (none: PostgreSQL reports addresses, which differ by route) | setting ``port`` | ``current_database()`` | ``system_identifier`` of ``pg_control_system()`` |
| sqlite | (none) | (none) | the resolved file path | device and inode of the file |

Example::

    with engine.connect() as conn:
        reached = probe_server_identity(conn)
    reached == ServerIdentity.from_dict(assessment_figures["server"])
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

COMPARED_FIELDS = ("kind", "host", "port", "database", "server_id")


@dataclass(frozen=True)
class ServerIdentity:
    kind: str
    host: str | None
    port: int | None
    database: str | None
    server_id: str | None
    version: str | None = field(default=None, compare=False)
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def differences(self, expected: ServerIdentity) -> list[str]:
        """The compared fields that differ from `expected`, e.g. ``['port 3399 (expected 3306)']``."""
        return [
            f"{name} {getattr(self, name)} (expected {getattr(expected, name)})"
            for name in COMPARED_FIELDS
            if getattr(self, name) != getattr(expected, name)
        ]

    def describe(self) -> str:
        """One line for people, e.g. ``mariadb vm:3306, database ts24, server id 3f1c..., version 10.11.6``."""
        if self.host is not None:
            where = self.host + (f":{self.port}" if self.port is not None else "")
        else:
            where = f"port {self.port}" if self.port is not None else ""
        parts = [f"{self.kind} {where}".strip()]
        if self.database is not None:
            parts.append(f"database {self.database}")
        if self.server_id is not None:
            parts.append(f"server id {self.server_id}")
        if self.version is not None:
            parts.append(f"version {self.version}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "server_id": self.server_id,
            "version": self.version,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerIdentity:
        return cls(
            kind=data["kind"],
            host=data.get("host"),
            port=data.get("port"),
            database=data.get("database"),
            server_id=data.get("server_id"),
            version=data.get("version"),
            details=dict(data.get("details") or {}),
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _mysql(conn: Connection) -> ServerIdentity:
    hostname, port, version, database, number, datadir = conn.execute(
        sa.text("SELECT @@hostname, @@port, @@version, DATABASE(), @@server_id, @@datadir")
    ).one()
    details = {"server_id": _int(number), "datadir": _text(datadir)}
    server_id: str | None
    if "mariadb" in str(version).lower():
        kind = "mariadb"
        facts = "\n".join(str(v) for v in (hostname, port, datadir, number))
        server_id = hashlib.sha256(facts.encode("utf-8")).hexdigest()[:32]
        details["server_id_from"] = "sha256 of @@hostname, @@port, @@datadir, @@server_id"
    else:
        kind = "mysql"
        server_id = _text(conn.execute(sa.text("SELECT @@server_uuid")).scalar_one())
    return ServerIdentity(kind, _text(hostname), _int(port), _text(database), server_id, _text(version), details)


def _mssql(conn: Connection) -> ServerIdentity:
    machine, server_name, version, database, broker, port = conn.execute(
        sa.text(
            "SELECT CAST(SERVERPROPERTY('MachineName') AS nvarchar(128)), @@SERVERNAME, "
            "CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)), DB_NAME(), "
            "(SELECT CAST(service_broker_guid AS nvarchar(36)) FROM sys.databases WHERE name = DB_NAME()), "
            "CAST(CONNECTIONPROPERTY('local_tcp_port') AS int)"
        )
    ).one()
    details = {"server_name": _text(server_name), "service_broker_guid": _text(broker)}
    return ServerIdentity(
        "mssql", _text(machine), _int(port), _text(database), f"{server_name}/{broker}", _text(version), details
    )


def _postgresql(conn: Connection) -> ServerIdentity:
    address, address_port, port, version, database, can_read_control = conn.execute(
        sa.text(
            "SELECT host(inet_server_addr()), inet_server_port(), current_setting('port'), version(), "
            "current_database(), has_function_privilege('pg_control_system()', 'EXECUTE')"
        )
    ).one()
    system_identifier = None
    if can_read_control:  # asked first: a refused call would abort the transaction
        system_identifier = conn.execute(sa.text("SELECT system_identifier FROM pg_control_system()")).scalar_one()
    details = {"address": _text(address) or "local socket", "address_port": _int(address_port)}
    return ServerIdentity(
        "postgresql", None, _int(port), _text(database), _text(system_identifier), _text(version), details
    )


def _sqlite(conn: Connection) -> ServerIdentity:
    files = {name: path for _seq, name, path in conn.execute(sa.text("PRAGMA database_list"))}
    path = files.get("main") or ""
    version = conn.execute(sa.text("SELECT sqlite_version()")).scalar_one()
    if not path:  # an in-memory database: nothing outlives the connection
        return ServerIdentity("sqlite", None, None, ":memory:", None, _text(version), {})
    resolved = os.path.realpath(path)
    facts = os.stat(resolved)
    # Device and inode name the file itself; a copy put in its place is another file. Size and
    # modification time change whenever TS24 writes (it does until the site drains): recorded only.
    details = {
        "size_bytes": facts.st_size,
        "device": facts.st_dev,
        "inode": facts.st_ino,
        "modified": dt.datetime.fromtimestamp(facts.st_mtime, dt.UTC).isoformat(timespec="seconds"),
    }
    return ServerIdentity(
        "sqlite", None, None, resolved, f"device {facts.st_dev}, inode {facts.st_ino}", _text(version), details
    )


_PROBES = {"mysql": _mysql, "mariadb": _mysql, "mssql": _mssql, "postgresql": _postgresql, "sqlite": _sqlite}


def probe_server_identity(conn: Connection) -> ServerIdentity:
    """Ask the server behind `conn` who it is (read-only queries)."""
    probe = _PROBES.get(conn.dialect.name)
    if probe is None:  # no way to ask: say so rather than pretend (compares only by what the URL says)
        url = conn.engine.url
        return ServerIdentity(
            conn.dialect.name,
            url.host,
            url.port,
            url.database,
            None,
            None,
            {"note": "taken from the URL: this kind of server is not asked"},
        )
    return probe(conn)
