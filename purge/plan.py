"""The purge plan: exactly what will be destroyed, and everything the destruction relies on.

`survey_live` reads the scope as it is now (every table with its rows and
fingerprint, every view, trigger, procedure and sequence with the hash of its
definition, the SQLite database and side files, and every entry of the
attachment folder with its size and SHA-256); `plan_body` adds the backup
chain, the custodian's verification, the write stop, the ledger head, the
validation, the server identity and every gate result. The plan is a signed
document (purge/documents.py), signed by the pipeline key and by its author;
its hash is what approvals and the certificate cite. Nothing outside the plan
is ever destroyed, and execution refuses when the site no longer matches it
(`scope_differences`).

Example::

    live = survey_live(conn, attachments_root=Path("/srv/ts24/hn-01/files"), sqlite_path=None)
    body = plan_body(site=..., author=..., live=live, ...)
    write_document(folder / "plan.json", signed_document(body, [("pipeline", key), ("author", operator_key)]))
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from extract.attachments import ATTACHMENTS_KEY
from extract.discovery import discover_tables
from extract.extraction import table_fingerprint

from .gates import GateResult
from .objects import discover_objects
from .scope import FolderEntry, folder_fingerprint, sqlite_files, walk_folder

PLAN_FORMAT = "ts24-purge-plan/1"
DATABASE_METHODS = {
    "sqlite": "overwrite the database file and its side files once with random data, fsync, rename, unlink",
    "mariadb": "DROP DATABASE of the site's database only",
    "mysql": "DROP DATABASE of the site's database only",
    "mssql": "ALTER DATABASE ... SET SINGLE_USER WITH ROLLBACK IMMEDIATE, then DROP DATABASE (from master)",
}
TABLE_METHOD = {
    "sqlite": "destroyed with the database file",
    "mariadb": "dropped with the database",
    "mysql": "dropped with the database",
    "mssql": "dropped with the database",
}


@dataclass
class LiveScope:
    engine: str
    database: str  # the resolved file of a SQLite database, else the database name
    tables: list[dict[str, Any]] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    database_files: list[FolderEntry] = field(default_factory=list)
    attachments_root: str | None = None
    attachments: list[FolderEntry] = field(default_factory=list)

    def table_fingerprints(self) -> dict[str, str]:
        result = {t["name"]: t["fingerprint"] for t in self.tables}
        if self.attachments_root is not None:
            result[ATTACHMENTS_KEY] = folder_fingerprint(self.attachments)
        return result

    def object_fingerprints(self) -> dict[str, str | None]:
        return {o["key"]: o["fingerprint"] for o in self.objects}

    def to_dict(self) -> dict[str, Any]:
        table_method = TABLE_METHOD.get(self.engine, "dropped with the database")
        return {
            "database": {
                "engine": self.engine,
                "name": self.database,
                "method": DATABASE_METHODS.get(self.engine, "not supported"),
            },
            "tables": [{**t, "method": table_method} for t in self.tables],
            "objects": [{**o, "method": table_method} for o in self.objects],
            "database_files": [e.to_dict() for e in self.database_files],
            "attachments": {
                "root": self.attachments_root,
                "entries": [e.to_dict() for e in self.attachments],
                "fingerprint": (folder_fingerprint(self.attachments) if self.attachments_root is not None else None),
            },
        }

    @classmethod
    def from_plan(cls, body: Mapping[str, Any]) -> LiveScope:
        def strip(d: Mapping[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in d.items() if k != "method"}

        return cls(
            body["database"]["engine"],
            body["database"]["name"],
            [strip(t) for t in body["tables"]],
            [strip(o) for o in body["objects"]],
            [FolderEntry.from_dict(e) for e in body["database_files"]],
            body["attachments"]["root"],
            [FolderEntry.from_dict(e) for e in body["attachments"]["entries"]],
        )

    def totals(self) -> dict[str, int]:
        files = [e for e in self.attachments if e.kind == "file"]
        return {
            "tables": len(self.tables),
            "rows": sum(t["rows"] for t in self.tables),
            "objects": len(self.objects),
            "database_files": len(self.database_files),
            "database_bytes": sum(e.size or 0 for e in self.database_files),
            "files": len(files),
            "file_bytes": sum(e.size or 0 for e in files),
            "links": sum(e.kind == "link" for e in self.attachments),
            "directories": sum(e.kind == "directory" for e in self.attachments),
            "special": sum(e.kind == "special" for e in self.attachments),
        }


def survey_live(
    conn: Connection,
    *,
    kind: str,
    database: str,
    attachments_root: Path | None,
    sqlite_path: Path | None,
    chunk_rows: int = 50_000,
) -> LiveScope:
    """The scope as it is now: tables (rows, fingerprint), objects, database files, folder entries."""
    scope = LiveScope(kind, database)
    for table in discover_tables(conn):
        fingerprint = table_fingerprint(conn, table, chunk_rows=chunk_rows)
        scope.tables.append(
            {
                "name": table.name,
                "schema": table.schema,
                "role": table.role,
                "rows": fingerprint.rows,
                "fingerprint": fingerprint.hexdigest(),
            }
        )
    found = discover_objects(conn)
    scope.objects = [
        {
            "key": o.key,
            "kind": o.kind,
            "name": o.name,
            "schema": o.schema,
            "table": o.table,
            "fingerprint": o.fingerprint,
        }
        for o in found.objects
    ]
    if sqlite_path is not None:
        scope.database_files = sqlite_files(sqlite_path)
    if attachments_root is not None:
        scope.attachments_root = os.path.realpath(attachments_root)
        scope.attachments = walk_folder(Path(scope.attachments_root))
    return scope


def scope_differences(planned: LiveScope, now: LiveScope, *, limit: int = 8) -> list[str]:
    """What differs between the plan's scope and the site now (empty: the plan still holds)."""
    lines: list[str] = []
    if (planned.engine, planned.database, planned.attachments_root) != (now.engine, now.database, now.attachments_root):
        lines.append(f"the database or attachment folder is not the plan's ({now.database}, {now.attachments_root})")
    pairs: list[tuple[str, Mapping[str, object], Mapping[str, object]]] = [  # (what, planned, now)
        (
            "table",
            {t["name"]: (t["rows"], t["fingerprint"]) for t in planned.tables},
            {t["name"]: (t["rows"], t["fingerprint"]) for t in now.tables},
        ),
        ("object", planned.object_fingerprints(), now.object_fingerprints()),
        (
            "database file",
            {e.path: (e.size, e.sha256) for e in planned.database_files},
            {e.path: (e.size, e.sha256) for e in now.database_files},
        ),
        (
            "attachment",
            {e.path: (e.kind, e.size, e.sha256, e.link_target) for e in planned.attachments},
            {e.path: (e.kind, e.size, e.sha256, e.link_target) for e in now.attachments},
        ),
    ]
    for what, expected, found in pairs:
        for name in sorted(set(expected) | set(found)):
            if name not in found:
                lines.append(f"{what} {name} is gone")
            elif name not in expected:
                lines.append(f"{what} {name} is not in the plan")
            elif expected[name] != found[name]:
                lines.append(f"{what} {name} changed")
    return lines[:limit] + ([f"and {len(lines) - limit} more"] if len(lines) > limit else [])


def plan_body(
    *,
    site: Mapping[str, Any],
    author: Mapping[str, Any],
    created_at: str,
    tool: Mapping[str, str],
    server: Mapping[str, Any],
    live: LiveScope,
    chain: Sequence[Mapping[str, Any]],
    chain_fingerprints: Mapping[str, str],
    objects_compared_with: str,
    custodian_verification: Mapping[str, Any],
    write_stop: Mapping[str, Any],
    ledger_head: Mapping[str, Any],
    validation: Mapping[str, Any],
    gates: Sequence[GateResult],
    approvals_required: int,
    approvers: Sequence[Mapping[str, Any]],
    residue: Mapping[str, Any],
    residues_outside_reach: Sequence[str],
    remaining_copies: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    return {
        "format": PLAN_FORMAT,
        "site": dict(site),
        "created_at": created_at,
        "tool": dict(tool),
        "author": dict(author),
        "server": dict(server),
        **live.to_dict(),
        "totals": live.totals(),
        "backup_chain": {
            "backups": [dict(b) for b in chain],
            "head": dict(chain[-1]) if chain else None,
            "fingerprints": dict(chain_fingerprints),
            "objects_compared_with": objects_compared_with,
            "custodian_verification": dict(custodian_verification),
        },
        "write_stop": dict(write_stop),
        "ledger_head": dict(ledger_head),
        "validation": dict(validation),
        "gates": [g.to_dict() for g in gates],
        "approvals": {"required": approvals_required, "approvers": [dict(a) for a in approvers]},
        "residue": {"sample": dict(residue), "outside_reach": list(residues_outside_reach)},
        # Where the site's data remains besides the server, and why (purge.remaining_copies).
        "remaining_copies": [dict(c) for c in remaining_copies],
        "statement": "Dry run: nothing was changed. `purge execute` destroys exactly the tables, objects, "
        "database files and attachment entries listed here, and refuses if the site no longer "
        "matches this plan.",
    }
