"""Write an incremental backup: the delta's rows and files, encrypted and signed like a full backup.

The format is the full backup's (backups.manifest, `ts24-backup/1`): parts are
Parquet encrypted to the custodians' age recipients, written once
(backups.part_store.write_once), listed in a canonical manifest signed with
Ed25519, so `backups.verify.verify_backup` checks an increment as it checks a
full backup. What differs:

- `kind` is "incremental" and `parent` names the backup it extends (id and
  manifest fingerprint); `chain_seq` is its place in the chain (the full
  backup is 0);
- every table of the legacy database is listed, with `mode` "delta" (its rows
  replace the chain's rows with the same key; zero rows when nothing changed)
  or "full" (a table without a key, replaced whole), `since` (where the delta
  started) and `chain`: the rows and fingerprint of the table once this
  increment is applied, which is what the live table must equal;
- deleted keys are tombstones in an extra entry named `@deleted:<table>`
  (`role` "deleted_keys"; the attachment folder's are `@deleted:@attachments`),
  so that no key is ever written in clear text outside an encrypted part;
- `attachments` holds the new and changed files only, with its own `chain`.

Increments live apart from full backups, under
`<backup_root>/<site>/increments/<backup_id>/`, so that tools that pick "the
latest complete backup" of a site keep finding a full one. An increment
without a manifest was never signed: the next run deletes it and starts over.

Example::

    writer = IncrementWriter(backup_root, "hn-01", parent=link, seq=1, run_id=run_id,
                             recipients=["age1..."], signing_key=key)
    tw = writer.table(table_info); tw.add_rows(rows); writer.finish_table(tw, extra)
    manifest = writer.finish()
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyrage
import sqlalchemy as sa

from backups.backup import new_backup_id, parse_recipients, table_folder
from backups.manifest import (
    AGE_FORMAT,
    FILES_DIR,
    FORMAT,
    MANIFEST_NAME,
    PARTS_DIR,
    SIGNATURE_NAME,
    BackupManifest,
    read_manifest,
    signature_document,
)
from backups.part_store import write_once
from extract.attachments import attachment_parquet, file_chunks, file_row
from extract.discovery import ColumnInfo, TableInfo, column_plan
from extract.extraction import parquet_bytes
from extract.json_values import json_row
from ts24_migrate import TOOL_NAME, __version__
from ts24_migrate.core.errors import VerificationError
from ts24_migrate.core.private_files import private_dir
from ts24_migrate.core.rows.arrow_types import ColumnPlan, rows_to_batch, schema_id, schema_layout
from ts24_migrate.core.rows.fingerprint import TableFingerprint
from ts24_migrate.core.signing import canonical_json

INCREMENTS_DIR = "increments"
DELETED_PREFIX = "@deleted:"


def increments_dir(backup_root: Path, site_id: str) -> Path:
    return Path(backup_root) / site_id / INCREMENTS_DIR


def deleted_entry_name(table: str) -> str:
    return f"{DELETED_PREFIX}{table}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class TableParts:
    """The parts of one table (or tombstone list) in the increment, written as rows arrive."""

    def __init__(
        self,
        writer: IncrementWriter,
        name: str,
        folder: str,
        plans: list[ColumnPlan],
        primary_key: Sequence[str],
        key_positions: list[int],
    ):
        self.writer, self.name, self.folder, self.plans = writer, name, folder, plans
        self.primary_key, self.key_positions = list(primary_key), key_positions
        self.buffer: list[tuple[Any, ...]] = []
        self.parts: list[dict[str, Any]] = []
        self.schemas: dict[str, list[list[str]]] = {}
        self.fingerprint = TableFingerprint()

    def add_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.buffer.extend(rows)
        while len(self.buffer) >= self.writer.chunk_rows:
            chunk, self.buffer = self.buffer[: self.writer.chunk_rows], self.buffer[self.writer.chunk_rows :]
            self._store(chunk)

    def flush(self) -> None:
        if self.buffer:
            self._store(self.buffer)
            self.buffer = []

    def _store(self, rows: list[tuple[Any, ...]]) -> None:
        fingerprint = TableFingerprint()
        fingerprint.add_rows(rows)
        batch = rows_to_batch(self.plans, rows)
        data = parquet_bytes(batch, table_name=self.name)
        relpath, sha, size = self.writer.store_part(self.folder, data)
        layout = schema_layout(batch.schema)
        self.schemas[schema_id(layout)] = layout
        self.parts.append(
            {
                "index": len(self.parts) + 1,
                "path": relpath,
                "rows": len(rows),
                "key_range": self._key_range(rows),
                "schema": schema_id(layout),
                "fingerprint": fingerprint.hexdigest(),
                "watermark": None,
                "plaintext_sha256": hashlib.sha256(data).hexdigest(),
                "plaintext_bytes": len(data),
                "ciphertext_sha256": sha,
                "ciphertext_bytes": size,
            }
        )
        self.fingerprint.merge(fingerprint)

    def _key_range(self, rows: list[tuple[Any, ...]]) -> dict[str, Any] | None:
        if not self.key_positions:
            return None
        keys = [tuple(r[i] for i in self.key_positions) for r in rows]
        try:
            first, last = min(keys), max(keys)
        except TypeError:  # keys of mixed types (dirty data): the rows' own order
            first, last = keys[0], keys[-1]
        return {"first": json_row(first), "last": json_row(last)}


class IncrementWriter:
    def __init__(
        self,
        backup_root: Path,
        site_id: str,
        *,
        parent: BackupManifest,
        seq: int,
        run_id: str,
        recipients: list[str],
        signing_key: Any,
        source_dialect: str,
        chunk_rows: int = 50_000,
    ):
        if chunk_rows <= 0:
            raise ValueError("chunk_rows must be positive")
        self.site_id, self.parent, self.seq, self.run_id = site_id, parent, seq, run_id
        self.recipients, self.age_recipients = list(recipients), parse_recipients(list(recipients))
        self.signing_key, self.chunk_rows, self.source_dialect = signing_key, chunk_rows, source_dialect
        self.site_dir = Path(backup_root) / site_id
        self.root = increments_dir(backup_root, site_id)
        private_dir(self.root)
        self.backup_id = new_backup_id()
        self.folder = self.root / self.backup_id
        self.folder.mkdir(mode=0o700)
        self.created_at = _now()
        self.sequence: dict[str, int] = {}
        self.tables: dict[str, dict[str, Any]] = {}
        self.attachments: dict[str, Any] | None = None
        self.warnings: list[str] = []

    # -- parts ------------------------------------------------------------------------------
    def store_part(self, folder: str, plaintext: bytes) -> tuple[str, str, int]:
        seq = self.sequence.get(folder, 0) + 1
        self.sequence[folder] = seq
        relpath = f"{PARTS_DIR}/{folder}/part-{seq:06d}.parquet.age"
        recipients = self.age_recipients

        def encrypt(out: Any) -> None:
            pyrage.encrypt_io(io.BytesIO(plaintext), out, recipients)

        sha, size = write_once(self.folder / relpath, encrypt)
        return relpath, sha, size

    def table(self, table: TableInfo) -> TableParts:
        positions = [table.column_names.index(k) for k in table.primary_key]
        return TableParts(self, table.name, table_folder(table.name), column_plan(table), table.primary_key, positions)

    def tombstones(self, table: TableInfo) -> TableParts:
        """Parts listing the deleted keys of `table` (key columns only)."""
        narrow = _key_table(table)
        name = deleted_entry_name(table.name)
        return TableParts(
            self, name, table_folder(name), column_plan(narrow), table.primary_key, list(range(len(table.primary_key)))
        )

    def finish_table(self, parts: TableParts, entry: dict[str, Any], *, table: TableInfo | None = None) -> None:
        """Record a table's entry: the parts' figures plus `entry` (mode, since, chain, ...)."""
        parts.flush()
        columns = [p.describe() for p in parts.plans]
        self.tables[parts.name] = {
            "name": parts.name,
            "db_schema": table.schema if table is not None else None,
            "role": table.role if table is not None else "deleted_keys",
            "primary_key": parts.primary_key,
            "read": "keyset" if parts.primary_key else "single_pass",
            "columns": columns,
            "schemas": parts.schemas,
            "rows": parts.fingerprint.rows,
            "fingerprint": parts.fingerprint.hexdigest(),
            "parts": parts.parts,
            **entry,
        }

    # -- attachment files -------------------------------------------------------------------
    def add_files(self, files: list[tuple[bytes, Path]], entry: dict[str, Any]) -> TableFingerprint:
        """Store new and changed files (relative path, absolute path) as attachment parts."""
        rows: list[tuple[Any, ...]] = []
        pending = 0
        parts: list[dict[str, Any]] = []
        total = TableFingerprint()
        content = 0
        for relpath, path in files:
            for row in file_chunks(relpath, path):
                rows.append(row)
                pending += len(row[2])
                if pending >= self.chunk_bytes_per_part:
                    parts.append(self._file_part(rows, len(parts) + 1, total))
                    content += pending
                    rows, pending = [], 0
        if rows:
            parts.append(self._file_part(rows, len(parts) + 1, total))
            content += pending
        self.attachments = {
            "files": total.rows,
            "bytes": content,
            "fingerprint": total.hexdigest(),
            "skipped": [],
            "parts": parts,
            "references": None,
            **entry,
        }
        return total

    chunk_bytes_per_part = 32 * 1024 * 1024

    def _file_part(self, rows: list[tuple[Any, ...]], index: int, total: TableFingerprint) -> dict[str, Any]:
        data = attachment_parquet(rows)
        fingerprint = TableFingerprint()
        for path, _offset, _chunk, size, sha_hex, _md5 in rows:
            if sha_hex is not None:
                fingerprint.add(file_row(path, size, sha_hex))
        relpath, sha, size = self.store_part(FILES_DIR, data)
        total.merge(fingerprint)
        return {
            "index": index,
            "path": relpath,
            "rows": len(rows),
            "files": fingerprint.rows,
            "content_bytes": sum(len(r[2]) for r in rows),
            "fingerprint": fingerprint.hexdigest(),
            "plaintext_sha256": hashlib.sha256(data).hexdigest(),
            "plaintext_bytes": len(data),
            "ciphertext_sha256": sha,
            "ciphertext_bytes": size,
        }

    # -- the manifest -----------------------------------------------------------------------
    def finish(self, extra: dict[str, Any] | None = None) -> BackupManifest:
        all_parts = [p for t in self.tables.values() for p in t["parts"]] + (self.attachments or {}).get("parts", [])
        manifest = {
            "format": FORMAT,
            "kind": "incremental",
            "parent": {"backup_id": self.parent.backup_id, "manifest_fingerprint": self.parent.fingerprint},
            "chain_seq": self.seq,
            "site_id": self.site_id,
            "backup_id": self.backup_id,
            "runs": [self.run_id],
            "created_at": self.created_at,
            "completed_at": _now(),
            "tool": {"name": TOOL_NAME, "version": __version__},
            "source": {"dialect": self.source_dialect},
            "encryption": {"format": AGE_FORMAT, "recipients": self.recipients},
            "signing_key": {
                "algorithm": "ed25519",
                "key_id": self.signing_key.key_id,
                "public_key": self.signing_key.public_key_b64,
            },
            "chunk_rows": self.chunk_rows,
            "tables": self.tables,
            "attachments": self.attachments,
            "totals": {
                "tables": len(self.tables),
                "rows": sum(t["rows"] for t in self.tables.values()),
                "parts": len(all_parts),
                "plaintext_bytes": sum(p["plaintext_bytes"] for p in all_parts),
                "ciphertext_bytes": sum(p["ciphertext_bytes"] for p in all_parts),
            },
            "warnings": self.warnings,
            **(extra or {}),
        }
        raw = canonical_json(manifest)
        write_once(self.folder / SIGNATURE_NAME, lambda out: out.write(signature_document(raw, self.signing_key)))
        write_once(self.folder / MANIFEST_NAME, lambda out: out.write(raw))
        return read_manifest(self.folder)

    def discard(self) -> None:
        """Remove this unsigned increment (a failed run); a signed one is never removed."""
        if not (self.folder / MANIFEST_NAME).exists():
            shutil.rmtree(self.folder, ignore_errors=True)


def discard_unsigned(backup_root: Path, site_id: str) -> list[str]:
    """Delete increments a killed run left without a manifest (never signed, never chained).

    The caller holds the site's backup lock (backups.backup.site_lock)."""
    root = increments_dir(backup_root, site_id)
    removed = []
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if not (folder / MANIFEST_NAME).exists():
                shutil.rmtree(folder)
                removed.append(folder.name)
    return removed


def discard_unchained(backup_root: Path, site_id: str, *, head_backup_id: str, head_seq: int) -> list[str]:
    """Delete signed increments that extend the chain's head: a run killed between signing its increment
    and chaining it (one control store transaction) left it. Nothing refers to it, the next run reads
    the same delta again and writes its own; kept, it would be a second copy of legacy rows outside
    the chain, which a purge's account of the chain's copies does not list. Increments of an earlier
    chain, and any whose manifest cannot be read, are left alone.

    The caller holds the site's backup lock (backups.backup.site_lock), so no live run is between
    signing and chaining."""
    root = increments_dir(backup_root, site_id)
    removed = []
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
            try:
                data = read_manifest(folder).data
            except VerificationError:
                continue
            extends_head = (data.get("parent") or {}).get("backup_id") == head_backup_id
            if extends_head and data.get("chain_seq") == head_seq + 1 and folder.name != head_backup_id:
                shutil.rmtree(folder)
                removed.append(folder.name)
    return removed


def _key_table(table: TableInfo) -> TableInfo:
    metadata = sa.MetaData()
    order = list(table.primary_key)
    columns = sorted((c for c in table.table.columns if c.name in order), key=lambda c: order.index(c.name))
    narrow = sa.Table(table.table.name, metadata, *[sa.Column(c.name, c.type, primary_key=True) for c in columns])
    infos = tuple(sorted((c for c in table.columns if c.name in order), key=lambda c: order.index(c.name)))
    return TableInfo(table.name, table.schema, infos, table.primary_key, narrow)


def file_key_table() -> TableInfo:
    """The tombstone layout of attachment files: their relative path, as bytes."""
    metadata = sa.MetaData()
    table = sa.Table("@attachments", metadata, sa.Column("path", sa.LargeBinary, primary_key=True))
    return TableInfo("@attachments", None, (ColumnInfo("path", "BLOB", False),), ("path",), table)
