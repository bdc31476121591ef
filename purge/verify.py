"""After the purge: prove nothing of the scope is left where the tool can look, and say what remains
outside its reach (for the media step).

- the database: SQLite files gone; a server's database no longer exists (or holds no object);
- the attachment folder: holds nothing;
- the residue scan (purge/residue.py): the sampled distinctive values searched for in the former
  attachment folder, the SQLite database's directory and, where this host can read it, the MariaDB data
  directory (its shared files: redo and undo logs, system tablespace, binary logs).

Example::

    facts = server_residue_facts(conn, kind="mariadb", database="ts24_hn01")   # at plan time
    locations = scan_locations(scope, facts)
    outside_reach("mariadb", facts)   # ['binary logs (log_bin ON, /var/lib/mysql/mysql-bin)', ...]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .plan import LiveScope
from .scope import walk_folder

SCHEMATA = sa.table("SCHEMATA", sa.column("SCHEMA_NAME"), schema="information_schema")
SYS_DATABASES = sa.table("databases", sa.column("name"), schema="sys")
_MARIADB_FACTS = {
    name: sa.text(f"SELECT @@global.{name}")
    for name in (  # fixed names, never input
        "datadir",
        "log_bin",
        "log_bin_basename",
        "general_log",
        "general_log_file",
        "slow_query_log",
        "slow_query_log_file",
        "innodb_undo_directory",
        "innodb_log_group_home_dir",
    )
}


def server_residue_facts(conn: Connection, *, kind: str, database: str) -> dict[str, Any]:
    """Where a server keeps copies of data outside the database's own files (read-only queries)."""
    if kind not in ("mariadb", "mysql"):
        return {}
    facts: dict[str, Any] = {}
    for name, query in _MARIADB_FACTS.items():
        try:
            facts[name] = conn.execute(query).scalar()
        except sa.exc.DBAPIError:
            facts[name] = None
    datadir = facts.get("datadir")
    # A data directory of the same path on this host may belong to another server: it counts only if the
    # site's database folder is in it now, before the drop.
    facts["datadir_readable_here"] = bool(
        datadir and os.path.isdir(os.path.join(str(datadir), database)) and os.access(str(datadir), os.R_OK)
    )
    return facts


def outside_reach(kind: str, facts: dict[str, Any]) -> list[str]:
    """Copies of the data the logical purge cannot reach: for media sanitization."""
    common = [
        "free blocks of the file system that held the data before (a deleted or overwritten file's "
        "earlier copies, file-system journal, snapshots, SSD/flash spare areas): only media sanitization "
        "reaches them"
    ]
    if kind == "sqlite":
        return [
            "earlier copies of the database made by SQLite (rollback journals or WAL files deleted before "
            "the purge) and by administrators (copies, backups outside the backup folder)",
            *common,
        ]
    if kind in ("mariadb", "mysql"):
        datadir = facts.get("datadir") or "the data directory"
        lines = [
            f"InnoDB redo log and undo logs, system tablespace and doublewrite buffer in {datadir} (hold "
            f"recent row images; shared with the server's other databases)",
            f"binary logs (log_bin {'ON' if facts.get('log_bin') in (1, '1', 'ON') else 'OFF'}"
            + (f", {facts['log_bin_basename']}" if facts.get("log_bin_basename") else "")
            + ") and the relay "
            "logs and data of any replica",
            "the general and slow query logs when enabled "
            f"(general_log {facts.get('general_log')}, slow_query_log {facts.get('slow_query_log')})",
            "the dropped tables' former data files (DROP DATABASE unlinks them without overwriting)",
            "server-made backups (mariadb-dump, mariabackup) and snapshots kept elsewhere",
        ]
        return lines + common
    if kind == "mssql":
        return [
            "the transaction log and its backups, full and differential backups (msdb backup history), "
            "log shipping and availability-group replicas, tempdb",
            "the dropped database's former .mdf/.ndf/.ldf files (DROP DATABASE deletes them without overwriting)",
            *common,
        ]
    return common


def scan_locations(scope: LiveScope, facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Where the residue scan looks after the purge: only what this host can read."""
    locations = []
    if scope.attachments_root is not None:
        locations.append({"what": "former attachment folder", "path": scope.attachments_root, "recursive": True})
    if scope.engine == "sqlite":
        locations.append(
            {"what": "SQLite database's directory", "path": str(Path(scope.database).parent), "recursive": False}
        )
    if facts.get("datadir_readable_here"):
        locations.append(
            {"what": "MariaDB data directory (shared files)", "path": str(facts["datadir"]), "recursive": False}
        )
        locations.append(
            {
                "what": "the site database's former folder",
                "path": os.path.join(str(facts["datadir"]), scope.database),
                "recursive": True,
            }
        )
    return locations


def database_absent(scope: LiveScope, server: Connection | None) -> tuple[bool, str]:
    """(holds, detail): no file of a SQLite database remains; a server has no such database any more."""
    if scope.engine == "sqlite":
        left = [e.path for e in scope.database_files if os.path.lexists(e.path)]
        main = scope.database
        if os.path.lexists(main) and main not in left:
            left.append(main)
        if left:
            return False, f"still there: {', '.join(left)}"
        return True, f"the database file and its side files no longer exist ({len(scope.database_files)} removed)"
    assert server is not None
    if scope.engine in ("mariadb", "mysql"):
        found = server.execute(
            sa.select(SCHEMATA.c.SCHEMA_NAME).where(SCHEMATA.c.SCHEMA_NAME == scope.database)
        ).first()
    else:
        found = server.execute(sa.select(SYS_DATABASES.c.name).where(SYS_DATABASES.c.name == scope.database)).first()
    if found:
        return False, f"the server still has a database {scope.database}"
    return True, f"the server has no database {scope.database} any more"


def folder_empty(scope: LiveScope) -> tuple[bool, str]:
    if scope.attachments_root is None:
        return True, "the site has no attachment folder"
    root = Path(scope.attachments_root)
    if not root.exists():
        return True, f"{root} no longer exists"
    left = walk_folder(root)
    if left:
        return False, f"{root} still holds {len(left)} entries, e.g. {left[0].path}"
    return True, f"{root} is empty"
