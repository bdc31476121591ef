"""The backup chain of a site: its full backup and the increments on top, verified and restored.

A chain is valid when every manifest's signature holds with the trusted key,
every manifest adds up (backups.verify.check_arithmetic), each increment's
`parent` names the backup before it by id *and* manifest fingerprint, and the
manifests on disk are the ones the control store chained (same fingerprints).
The ciphertext of every part is hashed too (all of them for a full check, the
newest increment's for the check every reconcile run does).

`chain_fingerprints` gives what the live legacy data must equal: the head
increment's per-table `chain` figures (the full backup's fingerprints when
there is no increment yet). `restore_chain` proves it: it restores the full
backup, applies each increment (rows replaced by key, tables without a key
replaced whole, tombstones deleted, files rewritten), reads every table back
and compares it with the chain and with the live source.

Example::

    manifests = load_chain(backup_root, "hn-01", state.chain("hn-01"))
    verify_chain(manifests, public_key_b64=pub).ok
    restore_chain(manifests, Path("custodian.key"), scratch, Path("files"), live=legacy).ok
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pyrage import x25519
from sqlalchemy.engine import Engine

from backups.manifest import BackupManifest, check_signature, read_manifest
from backups.restore import read_restored_table, restore_backup, scratch_table
from backups.verify import (
    FileStream,
    as_identity,
    check_arithmetic,
    check_table_rows,
    decrypt_part,
    manifest_parts,
    read_ciphertext,
)
from extract.attachments import ATTACHMENTS_KEY, attachment_fingerprint
from extract.extraction import live_fingerprints
from ts24_migrate.core.errors import UsageError, VerificationError
from ts24_migrate.core.private_files import make_private_dirs
from ts24_migrate.core.rows.fingerprint import TableFingerprint, canonical_value

from .increment import DELETED_PREFIX, increments_dir


@dataclass(frozen=True)
class ChainLink:
    """One backup of a site's chain as the control store records it: the full backup (seq 0), then each
    increment in the order it was chained."""

    seq: int
    backup_id: str
    kind: str  # "full" or "incremental"
    manifest_fingerprint: str
    run_id: str | None


def backup_folder(backup_root: Path, site_id: str, link: ChainLink) -> Path:
    if link.kind == "full":
        return Path(backup_root) / site_id / link.backup_id
    return increments_dir(backup_root, site_id) / link.backup_id


def load_chain(backup_root: Path, site_id: str, links: Sequence[ChainLink]) -> list[BackupManifest]:
    """The manifests of the chained backups, in order; raises VerificationError if one is missing."""
    if not links:
        raise UsageError(f"site {site_id} has no backup chain yet: run `ts24-migrate reconcile run {site_id}`")
    return [read_manifest(backup_folder(backup_root, site_id, link)) for link in links]


def chain_fingerprints(manifests: Sequence[BackupManifest]) -> dict[str, str]:
    """{table: fingerprint, "@attachments": fingerprint} of the legacy data the chain holds."""
    head = manifests[-1]
    if head.data.get("kind") != "incremental":
        return head.fingerprints()
    result = {
        name: entry["chain"]["fingerprint"]
        for name, entry in head.tables.items()
        if not name.startswith(DELETED_PREFIX)
    }
    if head.attachments is not None:
        result[ATTACHMENTS_KEY] = head.attachments["chain"]["fingerprint"]
    return result


@dataclass
class ChainReport:
    backups: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    parts_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "backups": self.backups, "problems": self.problems, "parts_checked": self.parts_checked}


def verify_chain(
    manifests: Sequence[BackupManifest],
    *,
    public_key_b64: str,
    links: Sequence[ChainLink] | None = None,
    ciphertext: str = "all",
) -> ChainReport:
    """Signatures, arithmetic, parent links and part hashes of the chain (no key needed).

    ciphertext: "all" hashes every part of every backup, "latest" only the head's.
    """
    if ciphertext not in ("all", "latest"):
        raise ValueError("ciphertext must be 'all' or 'latest'")
    report = ChainReport()
    for index, manifest in enumerate(manifests):
        label = f"{manifest.data.get('kind', 'full')} backup {manifest.backup_id}"
        problems = [f"{label}: {p}" for p in check_signature(manifest.path, public_key_b64)]
        problems += [f"{label}: {p}" for p in check_arithmetic(manifest)]
        expected_kind = "full" if index == 0 else "incremental"
        if manifest.data.get("kind", "full") != expected_kind:
            problems.append(f"{label}: is at place {index} of the chain, where a {expected_kind} backup belongs")
        if index > 0:
            parent = manifest.data.get("parent") or {}
            before = manifests[index - 1]
            if parent.get("backup_id") != before.backup_id or parent.get("manifest_fingerprint") != before.fingerprint:
                problems.append(
                    f"{label}: its parent is not {before.backup_id} with manifest fingerprint "
                    f"{before.fingerprint[:16]}... (the chain is broken)"
                )
        if links is not None and index < len(links) and links[index].manifest_fingerprint != manifest.fingerprint:
            problems.append(f"{label}: its manifest is not the one reconcile chained (fingerprint differs)")
        if ciphertext == "all" or index == len(manifests) - 1:
            for ref in manifest_parts(manifest):
                try:
                    read_ciphertext(manifest.path, ref)
                    report.parts_checked += 1
                except VerificationError as exc:
                    problems.append(f"{label}: {exc}")
        report.problems += problems
        report.backups.append(
            {
                "backup_id": manifest.backup_id,
                "kind": manifest.data.get("kind", "full"),
                "manifest_fingerprint": manifest.fingerprint,
                "ok": not problems,
                "rows": manifest.data.get("totals", {}).get("rows"),
            }
        )
    if links is not None and len(links) != len(manifests):
        report.problems.append(f"the control store chains {len(links)} backups, {len(manifests)} were read")
    return report


@dataclass
class ChainRestoreReport:
    backups: list[str] = field(default_factory=list)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "backups": self.backups,
            "tables": self.tables,
            "files": self.files,
            "problems": self.problems,
        }


class _Scratch:
    """The scratch tables the chain is restored into, with the entry each was created from."""

    def __init__(self, into: Engine):
        self.into, self.metadata = into, sa.MetaData()
        self.tables: dict[str, tuple[sa.Table, set[str], dict[str, Any]]] = {}

    def table(self, entry: dict[str, Any]) -> tuple[sa.Table, set[str]]:
        name = entry["name"]
        if name not in self.tables:
            table, canonical = scratch_table(self.metadata, entry)
            if not sa.inspect(self.into).has_table(name):
                table.create(self.into)
            self.tables[name] = (table, canonical, entry)
        table, canonical, _ = self.tables[name]
        return table, canonical


def _encode(row: Sequence[Any], names: list[str], canonical: set[str]) -> dict[str, Any]:
    return {
        f"b_{i}": canonical_value(v) if n in canonical and v is not None else v
        for i, (n, v) in enumerate(zip(names, row))
    }


def _apply_rows(
    conn: sa.Connection,
    table: sa.Table,
    canonical: set[str],
    key: list[str],
    rows: list[tuple[Any, ...]],
    *,
    delete_only: bool = False,
) -> None:
    names = [c.name for c in table.columns] if not delete_only else key
    positions = [names.index(k) for k in key]
    params = [_encode(row, names, canonical) for row in rows]
    if key:
        where = sa.and_(*[table.c[k] == sa.bindparam(f"b_{p}") for k, p in zip(key, positions)])
        conn.execute(table.delete().where(where), [{f"b_{p}": ps[f"b_{p}"] for p in positions} for ps in params])
    if not delete_only:
        conn.execute(table.insert().values({n: sa.bindparam(f"b_{i}") for i, n in enumerate(names)}), params)


def _file_sink(files_dir: Path) -> Callable[[bytes, int, bytes], None]:
    started: set[bytes] = set()

    def sink(relpath: bytes, offset: int, data: bytes) -> None:
        parts = relpath.split(b"/")
        if relpath.startswith(b"/") or any(p in (b"", b".", b"..") for p in parts):
            raise VerificationError(f"attachments: refusing to write outside the folder: {relpath!r}")
        target = files_dir / os.fsdecode(relpath)
        make_private_dirs(target.parent)  # each folder made here 0700, not only the last
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if relpath not in started else 0)
        started.add(relpath)
        fd = os.open(target, flags, 0o600)
        try:
            os.pwrite(fd, data, offset)
        finally:
            os.close(fd)

    return sink


def restore_chain(
    manifests: Sequence[BackupManifest],
    identity: Path | str | x25519.Identity,
    into: Engine,
    files_dir: Path | None = None,
    *,
    public_key_b64: str | None = None,
    live: Engine | None = None,
    live_attachments: Path | None = None,
    chunk_rows: int = 50_000,
) -> ChainRestoreReport:
    """Restore the full backup, apply every increment, read back and compare (chain, live)."""
    key = as_identity(identity)
    report = ChainRestoreReport()
    if public_key_b64 is not None:
        checked = verify_chain(manifests, public_key_b64=public_key_b64, ciphertext="latest")
        if not checked.ok:
            raise VerificationError(f"refusing to restore the chain: {checked.problems[0]}")
    base = restore_backup(manifests[0].path, key, into, files_dir, chunk_rows=chunk_rows)
    report.backups.append(manifests[0].backup_id)
    report.problems += base.problems
    scratch = _Scratch(into)
    for entry in manifests[0].tables.values():
        scratch.table(entry)
    for manifest in manifests[1:]:
        report.backups.append(manifest.backup_id)
        try:
            _apply_increment(manifest, key, scratch, files_dir)
        except VerificationError as exc:
            report.problems.append(f"increment {manifest.backup_id}: {exc}")
        except sa.exc.StatementError as exc:
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
            report.problems.append(f"increment {manifest.backup_id} could not be applied: {detail}")
    expected = chain_fingerprints(manifests)
    with into.connect() as conn:
        for name in sorted(n for n in expected if n != ATTACHMENTS_KEY):
            if name not in scratch.tables:
                report.problems.append(f"{name}: in the chain but not restored")
                continue
            fingerprint = TableFingerprint()
            for rows in read_restored_table(conn, scratch.tables[name][2], chunk_rows=chunk_rows):
                fingerprint.add_rows(rows)
            matches = fingerprint.hexdigest() == expected[name]
            report.tables[name] = {
                "rows": fingerprint.rows,
                "fingerprint": fingerprint.hexdigest(),
                "matches_chain": matches,
                "matches_live": None,
            }
            if not matches:
                report.problems.append(f"{name}: the restored table does not match the chain's fingerprint")
    if files_dir is not None and ATTACHMENTS_KEY in expected:
        on_disk = attachment_fingerprint(files_dir)
        matches = on_disk.fingerprint.hexdigest() == expected[ATTACHMENTS_KEY]
        report.files = {
            "files": on_disk.files,
            "fingerprint": on_disk.fingerprint.hexdigest(),
            "matches_chain": matches,
            "matches_live": None,
        }
        if not matches:
            report.problems.append("attachments: the restored folder does not match the chain's fingerprint")
    if live is not None or live_attachments is not None:
        if live is not None:
            current = live_fingerprints(live, live_attachments, chunk_rows=chunk_rows)
        else:
            assert live_attachments is not None  # one of the two, as tested above
            current = {ATTACHMENTS_KEY: attachment_fingerprint(live_attachments).fingerprint.hexdigest()}
        for name, entry in report.tables.items():
            entry["matches_live"] = current.get(name) == entry["fingerprint"]
            if not entry["matches_live"]:
                report.problems.append(f"{name}: the restored chain differs from the live source")
        if live is not None:
            for name in sorted(set(current) - set(report.tables) - {ATTACHMENTS_KEY}):
                report.problems.append(f"{name}: a table of the live source that the chain does not hold")
        if report.files is not None and ATTACHMENTS_KEY in current:
            report.files["matches_live"] = current[ATTACHMENTS_KEY] == report.files["fingerprint"]
            if not report.files["matches_live"]:
                report.problems.append("attachments: the restored folder differs from the live folder")
    return report


def _apply_increment(manifest: BackupManifest, key: x25519.Identity, scratch: _Scratch, files_dir: Path | None) -> None:
    if str(key.to_public()) not in manifest.recipients:
        raise VerificationError("the identity given is not one of its recipients")
    refs = list(manifest_parts(manifest))
    file_tombstones = f"{DELETED_PREFIX}{ATTACHMENTS_KEY}"
    with scratch.into.begin() as conn:
        for name in sorted(manifest.tables):
            if name == file_tombstones:
                continue
            entry = manifest.tables[name]
            deleted = name.startswith(DELETED_PREFIX)
            restored = name.removeprefix(DELETED_PREFIX)
            if deleted and restored not in scratch.tables:
                continue  # nothing of that table was restored: nothing to delete
            created_from = scratch.tables[restored][2] if restored in scratch.tables else entry
            table, canonical = scratch.table(created_from)
            if not deleted and [c["name"] for c in entry["columns"]] != [c.name for c in table.columns]:
                raise VerificationError(
                    f"{name}: its columns differ from the restored table's (the legacy "
                    f"table changed shape); restore this increment separately"
                )
            if entry.get("mode") == "full":
                conn.execute(table.delete())
            for ref in (r for r in refs if r.table == name):
                rows = check_table_rows(ref, decrypt_part(read_ciphertext(manifest.path, ref), ref, key))
                if rows:
                    _apply_rows(conn, table, canonical, list(created_from["primary_key"]), rows, delete_only=deleted)
    attachments = manifest.attachments
    if attachments is not None and files_dir is not None:
        stream = FileStream(_file_sink(files_dir))
        for ref in (r for r in refs if r.files):
            stream.feed(ref, decrypt_part(read_ciphertext(manifest.path, ref), ref, key))
        stream.finish()
    if file_tombstones in manifest.tables and files_dir is not None:
        for ref in (r for r in refs if r.table == file_tombstones):
            for (relpath,) in check_table_rows(ref, decrypt_part(read_ciphertext(manifest.path, ref), ref, key)):
                (files_dir / os.fsdecode(relpath)).unlink(missing_ok=True)
