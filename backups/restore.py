"""Restore a backup into a scratch database and folder, and prove it equals the manifest.

Every table of the manifest is created in the scratch database (SQLite or
PostgreSQL) and filled from its decrypted parts; every attachment file is
rebuilt under the scratch folder. Then the restore is *read back*: each
table's fingerprint is recomputed from the scratch database, the folder's
from the files on disk, and both are compared with the manifest, and with
the live source when it is reachable.

Views and triggers are recreated from their saved definitions when the
backup comes from SQLite and the scratch database is SQLite too (the same
engine: the definition text runs as it is), then read back and held against
their fingerprints. Otherwise (a MariaDB or SQL Server backup restored into
SQLite or PostgreSQL) their definitions cannot run as they are: the restore
lists each object as "not recreated" with the reason, which is not a
problem; the definitions stay in the backup (parts/@objects) and `backup
verify --identity` has checked them against their fingerprints. Either way a
view's rows are never restored as a table: they derive from the tables.

Column types come from what the backup stored, not from the legacy DDL, so
the restored values are the very Python values the extraction read: text
stays text with its padding, numbers stay exact (a decimal is kept as text
on SQLite, which has no exact decimal type), and a column whose values did not
fit their declared type is restored as a binary column holding each value's
canonical encoding (decoded again when read back).

Example::

    report = restore_backup(backup_dir, Path("custodian.key"), scratch_engine, Path("restored-files"),
                            public_key_b64=pub, live=legacy_engine, live_attachments=Path("/srv/files"))
    report.ok, report.tables["HO_SO"]
"""

from __future__ import annotations

import decimal
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pyrage import x25519
from sqlalchemy.engine import Engine

from extract.attachments import ATTACHMENTS_KEY, attachment_fingerprint
from extract.discovery import ColumnInfo, TableInfo
from extract.extraction import live_fingerprints
from extract.objects import SchemaObject, discover_objects, sqlite_objects_query
from extract.reader import iter_table_rows
from ts24_migrate.core.errors import UsageError, VerificationError
from ts24_migrate.core.private_files import make_private_dirs
from ts24_migrate.core.rows.arrow_types import CANONICAL, decode_canonical, stored_value
from ts24_migrate.core.rows.fingerprint import TableFingerprint

from .manifest import BackupManifest, check_signature, read_manifest
from .verify import (
    FileStream,
    as_identity,
    check_arithmetic,
    check_objects_part,
    check_table_rows,
    decrypt_part,
    manifest_parts,
    read_ciphertext,
)


class ExactDecimal(sa.types.TypeDecorator[decimal.Decimal]):
    """NUMERIC(p, s) where the database has it; text on SQLite, so no digit is ever rounded."""

    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String())
        numeric = self.impl_instance  # `impl` as an instance: the Numeric(precision, scale) given
        assert isinstance(numeric, sa.Numeric)
        return dialect.type_descriptor(sa.Numeric(numeric.precision, numeric.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        return str(value) if value is not None and dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        return decimal.Decimal(value) if value is not None and dialect.name == "sqlite" else value


def _column_type(column: dict[str, Any], canonical: bool) -> sa.types.TypeEngine[Any]:
    kind = column["kind"]
    if canonical or kind == "dynamic":
        return sa.LargeBinary()
    if kind == "decimal":
        return ExactDecimal(column["precision"], column["scale"])
    plain_types: dict[str, type[sa.types.TypeEngine[Any]]] = {
        "int": sa.BigInteger,
        "bool": sa.Boolean,
        "float": sa.Double,
        "datetime": sa.DateTime,
        "date": sa.Date,
        "time": sa.Time,
        "string": sa.Text,
        "binary": sa.LargeBinary,
    }
    return plain_types[kind]()


def canonical_columns(table: dict[str, Any]) -> set[str]:
    """Columns stored in the canonical encoding in at least one part."""
    return {
        name for layout in table["schemas"].values() for name, _type, encoding in layout if encoding == CANONICAL
    } | {c["name"] for c in table["columns"] if c["kind"] == "dynamic"}


def scratch_table(metadata: sa.MetaData, table: dict[str, Any]) -> tuple[sa.Table, set[str]]:
    """The scratch table a backed-up table is restored into.

    Its key is a UNIQUE constraint, not a PRIMARY KEY: SQLite lets a legacy key column
    hold NULL (several times), which a primary key refuses on PostgreSQL; a unique
    constraint still refuses a key restored twice, and NULLs are never equal to each other.
    """
    canonical = canonical_columns(table)
    key = list(table["primary_key"])
    columns = [
        sa.Column(c["name"], _column_type(c, c["name"] in canonical), autoincrement=False) for c in table["columns"]
    ]
    constraints = [sa.UniqueConstraint(*key)] if key else []
    return sa.Table(table["name"], metadata, *columns, *constraints), canonical


@dataclass
class RestoreReport:
    backup_id: str
    manifest_fingerprint: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, Any] | None = None
    # object key -> {kind, name, recreated, matches_manifest, matches_live, note}; None: the backup
    # recorded no objects (made before they were recorded)
    objects: dict[str, dict[str, Any]] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "manifest_fingerprint": self.manifest_fingerprint,
            "ok": self.ok,
            "tables": self.tables,
            "files": self.files,
            "objects": self.objects,
            "problems": self.problems,
        }


def read_restored_table(
    conn: sa.Connection, entry: dict[str, Any], *, chunk_rows: int = 50_000
) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of a restored table (manifest entry `entry`) as the extraction read them."""
    table, canonical = scratch_table(sa.MetaData(), entry)
    info = TableInfo(
        table.name,
        None,
        tuple(ColumnInfo(c.name, str(c.type), bool(c.nullable)) for c in table.columns),
        tuple(entry["primary_key"]),
        table,
    )
    positions = [i for i, c in enumerate(table.columns) if c.name in canonical]
    for rows in iter_table_rows(conn, info, chunk_rows=chunk_rows):
        if positions:
            rows = [
                tuple(decode_canonical(v) if i in positions and v is not None else v for i, v in enumerate(row))
                for row in rows
            ]
        yield rows


def _read_back(conn: sa.Connection, entry: dict[str, Any], chunk_rows: int) -> TableFingerprint:
    fingerprint = TableFingerprint()
    for rows in read_restored_table(conn, entry, chunk_rows=chunk_rows):
        fingerprint.add_rows(rows)
    return fingerprint


def _write_chunk(files_dir: Path) -> Callable[[bytes, int, bytes], None]:
    def sink(relpath: bytes, offset: int, data: bytes) -> None:
        parts = relpath.split(b"/")
        if relpath.startswith(b"/") or any(p in (b"", b".", b"..") for p in parts):
            raise VerificationError(f"attachments: refusing to write outside the folder: {relpath!r}")
        target = files_dir / os.fsdecode(relpath)
        make_private_dirs(target.parent)  # each folder made here 0700, not only the last
        fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, data, offset)
        finally:
            os.close(fd)

    return sink


def _preconditions(manifest: BackupManifest, into: Engine, files_dir: Path | None) -> None:
    inspector = sa.inspect(into)
    existing = set(inspector.get_table_names()) | set(inspector.get_view_names())
    clash = sorted(existing & (set(manifest.tables) | {o["name"] for o in (manifest.objects or {}).get("items", [])}))
    if clash:
        more = f" and {len(clash) - 1} more of the backup's tables" if len(clash) > 1 else ""
        raise UsageError(f"the scratch database already has table {clash[0]}{more}: restore into an empty database")
    if manifest.attachments is not None and manifest.attachments["files"]:
        if files_dir is None:
            raise UsageError(
                f"the backup holds {manifest.attachments['files']} attachment files: give a folder "
                f"to restore them into (--files DIR)"
            )
        if files_dir.exists() and (not files_dir.is_dir() or any(files_dir.iterdir())):
            raise UsageError(f"{files_dir} is not empty: restore attachments into an empty folder")


def restore_backup(
    backup_dir: Path,
    identity: Path | str | x25519.Identity,
    into: Engine,
    files_dir: Path | None = None,
    *,
    public_key_b64: str | None = None,
    live: Engine | None = None,
    live_attachments: Path | None = None,
    chunk_rows: int = 50_000,
    progress: Callable[[str, int, int], None] | None = None,
    ledger: Any = None,
    run_id: str | None = None,
) -> RestoreReport:
    """Rebuild the backup's tables in `into` and its files in `files_dir`, then compare fingerprints."""
    backup_dir = Path(backup_dir)
    if public_key_b64 is not None:
        problems = check_signature(backup_dir, public_key_b64)
        if problems:
            raise VerificationError(f"refusing to restore backup {backup_dir.name}: {problems[0]}")
    manifest = read_manifest(backup_dir)
    problems = check_arithmetic(manifest)
    if problems:
        raise VerificationError(f"refusing to restore backup {manifest.backup_id}: {problems[0]}")
    key = as_identity(identity)
    if str(key.to_public()) not in manifest.recipients:
        raise VerificationError(f"the identity given is not one of the recipients of backup {manifest.backup_id}")
    files_dir = Path(files_dir) if files_dir is not None else None
    _preconditions(manifest, into, files_dir)

    report = RestoreReport(manifest.backup_id, manifest.fingerprint)
    refs = list(manifest_parts(manifest))
    parts_done = 0
    metadata = sa.MetaData()
    for name in sorted(manifest.tables):
        entry = manifest.tables[name]
        table, canonical = scratch_table(metadata, entry)
        keys = [c.name for c in table.columns]
        try:
            with into.begin() as conn:
                table.create(conn)
                for ref in (r for r in refs if r.table == name):
                    rows = check_table_rows(ref, decrypt_part(read_ciphertext(backup_dir, ref), ref, key))
                    if canonical:
                        rows = [
                            tuple(stored_value(v) if k in canonical and v is not None else v for k, v in zip(keys, row))
                            for row in rows
                        ]
                    if rows:
                        conn.execute(table.insert(), [dict(zip(keys, row)) for row in rows])
                    parts_done += 1
                    if progress:
                        progress(name, parts_done, len(refs))
            with into.connect() as conn:
                restored = _read_back(conn, entry, chunk_rows)
        except VerificationError as exc:
            report.problems.append(str(exc))
            continue
        except sa.exc.DBAPIError as exc:
            detail = str(exc.orig).splitlines()[0][:200] if exc.orig else type(exc).__name__
            report.problems.append(f"{name}: could not be restored into {into.dialect.name}: {detail}")
            continue
        matches = restored.hexdigest() == entry["fingerprint"]
        report.tables[name] = {
            "rows": restored.rows,
            "fingerprint": restored.hexdigest(),
            "matches_manifest": matches,
            "matches_live": None,
        }
        if not matches:
            report.problems.append(
                f"{name}: the restored table's fingerprint ({restored.rows} rows) does not "
                f"match the manifest ({entry['rows']} rows)"
            )

    if manifest.attachments is not None and files_dir is not None:
        make_private_dirs(files_dir)
        stream = FileStream(_write_chunk(files_dir))
        try:
            for ref in (r for r in refs if r.files):
                stream.feed(ref, decrypt_part(read_ciphertext(backup_dir, ref), ref, key))
                parts_done += 1
                if progress:
                    progress("attachments", parts_done, len(refs))
            stream.finish()
        except VerificationError as exc:
            report.problems.append(str(exc))
        on_disk = attachment_fingerprint(files_dir)
        matches = on_disk.fingerprint.hexdigest() == manifest.attachments["fingerprint"]
        report.files = {
            "files": on_disk.files,
            "bytes": on_disk.bytes,
            "fingerprint": on_disk.fingerprint.hexdigest(),
            "matches_manifest": matches,
            "matches_live": None,
        }
        if not matches:
            report.problems.append(
                f"attachments: the restored folder ({on_disk.files} files) does not match "
                f"the manifest ({manifest.attachments['files']} files)"
            )

    if manifest.objects is not None:
        try:
            objects = [
                o
                for ref in refs
                if ref.objects
                for o in check_objects_part(ref, decrypt_part(read_ciphertext(backup_dir, ref), ref, key), manifest)
            ]
            report.objects = recreate_objects(
                into, objects, source_dialect=manifest.data["source"]["dialect"], problems=report.problems
            )
        except VerificationError as exc:
            report.problems.append(str(exc))
    if live is not None or live_attachments is not None:
        _compare_live(report, manifest, live, live_attachments, chunk_rows)
    if ledger is not None:
        ledger.append(
            manifest.site_id,
            "backup",
            "backup.restored",
            {
                "backup_id": manifest.backup_id,
                "manifest_fingerprint": manifest.fingerprint,
                "ok": report.ok,
                "into": into.dialect.name,
                "tables": len(report.tables),
                "rows": sum(t["rows"] for t in report.tables.values()),
                "files": (report.files or {}).get("files"),
                "objects_recreated": sum(bool(o["recreated"]) for o in (report.objects or {}).values()),
                "problems": len(report.problems),
            },
            run_id=run_id,
        )
    return report


# Kinds whose SQLite definition can run again as it is, in the order that lets later ones refer to earlier ones.
_RECREATED_ON_SQLITE = ("view", "trigger")


def recreate_objects(
    into: Engine, objects: list[SchemaObject], *, source_dialect: str, problems: list[str]
) -> dict[str, dict[str, Any]]:
    """Recreate views and triggers in a scratch database of the backup's own engine (SQLite), and
    hold each against its fingerprint; on another engine, list each object as not recreated."""
    result = {
        o.key: {
            "kind": o.kind,
            "name": o.name,
            "recreated": False,
            "matches_manifest": None,
            "matches_live": None,
            "note": None,
        }
        for o in objects
    }
    if not (source_dialect == into.dialect.name == "sqlite"):
        for entry in result.values():
            entry["note"] = (
                f"not recreated: the backup comes from {source_dialect}, the scratch database is "
                f"{into.dialect.name}; the definition is kept in the backup"
            )
        return result
    pending = [o for kind in _RECREATED_ON_SQLITE for o in objects if o.kind == kind and o.definition]
    for o in objects:
        if o not in pending:
            result[o.key]["note"] = "not recreated: no definition SQLite can run"
    errors: dict[str, str] = {}
    while pending:  # a view may select from a view created after it in name order: retry until stuck
        created = []
        for o in pending:
            try:
                with into.begin() as conn:
                    assert o.definition  # pending holds only objects that have one
                    conn.exec_driver_sql(o.definition)
                created.append(o)
            except sa.exc.DBAPIError as exc:
                errors[o.key] = str(exc.orig or exc).splitlines()[0][:200]
        if not created:
            break
        pending = [o for o in pending if o not in created]
        for o in created:
            errors.pop(o.key, None)
            result[o.key]["recreated"] = True
    with into.connect() as conn:
        read_back = [
            SchemaObject(kind, name, None, None, sql)
            for kind, name, _table, sql in conn.execute(sqlite_objects_query())
        ]
    restored = {o.key: o.fingerprint for o in read_back}
    for o in objects:
        entry = result[o.key]
        if o.key in errors:
            entry["note"] = f"could not be recreated: {errors[o.key]}"
            problems.append(f"{o.key}: could not be recreated in the scratch database: {errors[o.key]}")
        elif entry["recreated"]:
            entry["matches_manifest"] = restored.get(o.key) == o.fingerprint
            if not entry["matches_manifest"]:
                problems.append(f"{o.key}: the recreated definition does not match its fingerprint")
    return result


def _compare_live(
    report: RestoreReport, manifest: BackupManifest, live: Engine | None, live_attachments: Path | None, chunk_rows: int
) -> None:
    """The live source now versus the backup: equal unless the legacy data changed since."""
    current = live_fingerprints(live, None, chunk_rows=chunk_rows) if live is not None else {}
    if live_attachments is not None:
        current[ATTACHMENTS_KEY] = attachment_fingerprint(live_attachments).fingerprint.hexdigest()
    expected = manifest.fingerprints()
    if live is not None:
        for name in sorted(set(current) - set(expected) - {ATTACHMENTS_KEY}):
            report.problems.append(f"{name}: a table of the live source that is not in the backup")
        for name, entry in report.tables.items():
            entry["matches_live"] = current.get(name) == expected[name]
            if name not in current:
                report.problems.append(f"{name}: no longer in the live source")
            elif not entry["matches_live"]:
                report.problems.append(f"{name}: the live source differs from the backup (it changed since)")
    if live is not None and manifest.objects is not None:
        with live.connect() as conn:
            live_objects = discover_objects(conn).fingerprints()
        backed_up = manifest.object_fingerprints()
        for name in sorted(set(live_objects) - set(backed_up)):
            report.problems.append(f"{name}: an object of the live source that is not in the backup")
        for name, fingerprint in sorted(backed_up.items()):
            if name not in live_objects:
                report.problems.append(f"{name}: no longer in the live source")
            elif live_objects[name] != fingerprint:
                report.problems.append(f"{name}: the live definition differs from the backup (it changed since)")
            if report.objects is not None and name in report.objects:
                report.objects[name]["matches_live"] = live_objects.get(name) == fingerprint
    if live_attachments is not None and report.files is not None:
        report.files["matches_live"] = current[ATTACHMENTS_KEY] == expected.get(ATTACHMENTS_KEY)
        if not report.files["matches_live"]:
            report.problems.append("attachments: the live folder differs from the backup (it changed since)")
