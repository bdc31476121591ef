"""Verify a backup offline: without a key, its signature and every ciphertext; with a
custodian identity, everything inside too.

Without a key: the manifest signature (against the public key the caller
trusts, never the one written in the manifest), the manifest's own arithmetic
(parts add up to each table's rows and fingerprint), and the size and SHA-256
of every part file. With an age identity: every part is decrypted in memory
(never written out), and its plaintext SHA-256, schema, row count and the
fingerprint of its rows are recomputed; attachment files are reassembled as a
hash stream and checked against their SHA-256; the definitions of views,
triggers, procedures and sequences are held against their fingerprints.

Every problem is one line naming the table and part; the report is returned,
`raise_if_failed()` turns it into a VerificationError.

Example::

    report = verify_backup(backup_dir, public_key_b64=pub, identity=Path("custodian.key"))
    report.ok, report.problems, report.rows_checked
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pyrage
from pyrage import x25519

from extract.attachments import file_row
from extract.extraction import read_parquet_rows
from ts24_migrate.core.errors import VerificationError
from ts24_migrate.core.rows.arrow_types import schema_id, schema_layout
from ts24_migrate.core.rows.fingerprint import TableFingerprint

from .manifest import MANIFEST_NAME, SIGNATURE_NAME, BackupManifest, check_signature, read_manifest
from .repair import quarantined_files

_PART_PATH = re.compile(r"^parts/[^/]+/part-\d{6,}\.parquet\.age$")


@dataclass
class VerifyReport:
    backup_dir: Path
    backup_id: str | None = None
    site_id: str | None = None
    manifest_fingerprint: str | None = None
    decrypted: bool = False  # True when an identity was given and parts were decrypted
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    parts_checked: int = 0
    rows_checked: int = 0  # rows decrypted and recounted (0 without an identity)
    files_checked: int = 0
    objects_checked: int = 0  # object definitions decrypted and held against their fingerprints
    ciphertext_bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def mode(self) -> str:
        return "decrypted" if self.decrypted else "signature+ciphertext"

    def to_json(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "site_id": self.site_id,
            "backup_dir": str(self.backup_dir),
            "manifest_fingerprint": self.manifest_fingerprint,
            "mode": self.mode,
            "ok": self.ok,
            "problems": self.problems,
            "warnings": self.warnings,
            "parts_checked": self.parts_checked,
            "rows_checked": self.rows_checked,
            "files_checked": self.files_checked,
            "objects_checked": self.objects_checked,
            "ciphertext_bytes": self.ciphertext_bytes,
        }

    def raise_if_failed(self) -> None:
        if self.problems:
            more = f" (and {len(self.problems) - 1} more problem(s))" if len(self.problems) > 1 else ""
            raise VerificationError(
                f"backup {self.backup_id or self.backup_dir} failed verification: {self.problems[0]}{more}",
                problems=self.problems,
            )


def as_identity(identity: Path | str | x25519.Identity) -> x25519.Identity:
    if isinstance(identity, x25519.Identity):
        return identity
    from ts24_migrate.core.keys import load_identity

    return load_identity(Path(identity))


@dataclass(frozen=True)
class PartRef:
    """One part of the manifest, with a name for messages."""

    label: str  # e.g. "HO_SO part 3", "attachments part 1" or "objects part 1"
    table: str | None  # None for attachment and object parts
    entry: dict[str, Any]
    objects: bool = False  # the definitions of views, triggers, procedures, sequences

    @property
    def files(self) -> bool:
        """An attachment part (file chunks)."""
        return self.table is None and not self.objects


def manifest_parts(manifest: BackupManifest) -> Iterator[PartRef]:
    for name in sorted(manifest.tables):
        for part in manifest.tables[name]["parts"]:
            yield PartRef(f"{name} part {part['index']}", name, part)
    for part in (manifest.attachments or {}).get("parts", []):
        yield PartRef(f"attachments part {part['index']}", None, part)
    for part in (manifest.objects or {}).get("parts", []):
        yield PartRef(f"objects part {part['index']}", None, part, objects=True)


def check_objects_part(ref: PartRef, plaintext: bytes, manifest: BackupManifest) -> list[Any]:
    """The objects of a decrypted objects part, after checking them against the manifest's list:
    same objects, and each definition's SHA-256 equal to the fingerprint the manifest gives."""
    from extract.objects import listing_key, read_objects_part

    try:
        objects = read_objects_part(plaintext)
    except Exception as exc:
        raise VerificationError(f"{ref.label}: not a readable objects part ({type(exc).__name__})") from None
    if len(objects) != ref.entry["rows"]:
        raise VerificationError(f"{ref.label}: holds {len(objects)} objects, the manifest says {ref.entry['rows']}")
    listed = manifest.object_fingerprints()
    found = {o.key: o.fingerprint for o in objects}
    if found != listed:
        differing = sorted(k for k in set(found) | set(listed) if found.get(k, "?") != listed.get(k, "?"))
        raise VerificationError(
            f"{ref.label}: its definitions do not match the manifest's fingerprints ({', '.join(differing[:3])})"
        )
    assert manifest.objects is not None  # the manifest that lists this objects part
    if len({listing_key(i) for i in manifest.objects["items"]}) != len(manifest.objects["items"]):
        raise VerificationError(f"{ref.label}: the manifest lists an object twice")
    return objects


def read_ciphertext(backup_dir: Path, ref: PartRef) -> bytes:
    """The part's ciphertext, after checking its path, size and SHA-256 against the manifest."""
    relpath: str = ref.entry["path"]
    if not _PART_PATH.match(relpath):
        raise VerificationError(f"{ref.label}: the manifest gives an unexpected path {relpath!r}")
    path = Path(backup_dir) / relpath
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise VerificationError(f"{ref.label} ({relpath}) is missing") from None
    if len(data) != ref.entry["ciphertext_bytes"] or hashlib.sha256(data).hexdigest() != ref.entry["ciphertext_sha256"]:
        raise VerificationError(
            f"{ref.label} ({relpath}): ciphertext SHA-256 or size does not match the "
            f"manifest (the file was changed or damaged)"
        )
    return data


def decrypt_part(ciphertext: bytes, ref: PartRef, identity: x25519.Identity) -> bytes:
    try:
        plaintext: bytes = pyrage.decrypt(ciphertext, [identity])
    except pyrage.DecryptError as exc:
        raise VerificationError(
            f"{ref.label} ({ref.entry['path']}) cannot be decrypted with this identity: "
            f"{str(exc).splitlines()[0][:120]}"
        ) from None
    if (
        len(plaintext) != ref.entry["plaintext_bytes"]
        or hashlib.sha256(plaintext).hexdigest() != ref.entry["plaintext_sha256"]
    ):
        raise VerificationError(
            f"{ref.label} ({ref.entry['path']}): plaintext SHA-256 or size does not match the manifest"
        )
    return plaintext


def check_table_rows(ref: PartRef, plaintext: bytes) -> list[tuple[Any, ...]]:
    """Rows of a decrypted table part, after checking its schema, row count and fingerprint."""
    try:
        schema, rows = read_parquet_rows(plaintext)
    except Exception as exc:
        raise VerificationError(f"{ref.label}: not a readable Parquet part ({type(exc).__name__})") from None
    if schema_id(schema_layout(schema)) != ref.entry["schema"]:
        raise VerificationError(f"{ref.label}: its schema differs from the one the manifest names")
    if len(rows) != ref.entry["rows"]:
        raise VerificationError(f"{ref.label}: holds {len(rows)} rows, the manifest says {ref.entry['rows']}")
    fingerprint = TableFingerprint()
    fingerprint.add_rows(rows)
    if fingerprint.hexdigest() != ref.entry["fingerprint"]:
        raise VerificationError(f"{ref.label}: the fingerprint of its rows does not match the manifest")
    return rows


class FileStream:
    """Reassembles attachment files chunk by chunk across parts, checking offsets and SHA-256.

    `sink(path, offset, data)` receives each chunk (a restore writes it; a verify passes None).
    """

    def __init__(self, sink: Any = None):
        self.sink = sink
        self.path: bytes | None = None
        self.sha = hashlib.sha256()
        self.offset = 0
        self.files = 0
        self.bytes = 0

    def feed(self, ref: PartRef, plaintext: bytes) -> TableFingerprint:
        try:
            table = pq.read_table(io.BytesIO(plaintext))
            columns = {name: table.column(name).to_pylist() for name in ("path", "offset", "data", "size", "sha256")}
        except Exception as exc:
            raise VerificationError(f"{ref.label}: not a readable attachment part ({type(exc).__name__})") from None
        if table.num_rows != ref.entry["rows"]:
            raise VerificationError(
                f"{ref.label}: holds {table.num_rows} chunks, the manifest says {ref.entry['rows']}"
            )
        completed = TableFingerprint()
        for path, offset, data, size, sha_hex in zip(
            columns["path"], columns["offset"], columns["data"], columns["size"], columns["sha256"]
        ):
            if path != self.path:
                if self.path is not None or offset != 0:
                    raise VerificationError(
                        f"{ref.label}: a file starts at byte {offset} or the previous "
                        f"file has no last chunk (chunks out of order)"
                    )
                self.path, self.sha, self.offset = path, hashlib.sha256(), 0
            if offset != self.offset:
                raise VerificationError(f"{ref.label}: chunk at byte {offset}, expected {self.offset}")
            self.sha.update(data)
            if self.sink is not None:
                self.sink(path, offset, data)
            self.offset += len(data)
            if sha_hex is not None:
                if size != self.offset or self.sha.hexdigest() != sha_hex:
                    raise VerificationError(
                        f"{ref.label}: a file's content does not match its SHA-256 "
                        f"(file #{self.files + 1} in backup order)"
                    )
                completed.add(file_row(path, size, sha_hex))
                self.files += 1
                self.bytes += size
                self.path = None
        if completed.hexdigest() != ref.entry["fingerprint"]:
            raise VerificationError(f"{ref.label}: the fingerprint of its files does not match the manifest")
        return completed

    def finish(self) -> None:
        if self.path is not None:
            raise VerificationError("attachments: the last file has no last chunk (the backup is truncated)")


def check_arithmetic(manifest: BackupManifest) -> list[str]:
    """The manifest's own sums: parts add up to each table's rows and fingerprint."""
    problems = []
    for name, table in sorted(manifest.tables.items()):
        total = TableFingerprint()
        for part in table["parts"]:
            total.merge(TableFingerprint.parse(part["fingerprint"]))
        if total.rows != table["rows"] or sum(p["rows"] for p in table["parts"]) != table["rows"]:
            problems.append(f"{name}: its parts hold {total.rows} rows, the manifest says {table['rows']}")
        elif total.hexdigest() != table["fingerprint"]:
            problems.append(f"{name}: its parts' fingerprints do not add up to the table fingerprint")
    if manifest.attachments is not None:
        total = TableFingerprint()
        for part in manifest.attachments["parts"]:
            total.merge(TableFingerprint.parse(part["fingerprint"]))
        if total.hexdigest() != manifest.attachments["fingerprint"] or total.rows != manifest.attachments["files"]:
            problems.append("attachments: the parts' fingerprints do not add up to the folder fingerprint")
    if manifest.objects is not None:
        in_parts = sum(p["rows"] for p in manifest.objects["parts"])
        if in_parts != len(manifest.objects["items"]):
            problems.append(
                f"objects: the parts hold {in_parts} definitions, the manifest lists "
                f"{len(manifest.objects['items'])} objects"
            )
    return problems


def _unlisted(backup_dir: Path, manifest: BackupManifest) -> list[str]:
    # Damaged parts a resumed backup moved aside are listed under the manifest's repairs.
    listed = {ref.entry["path"] for ref in manifest_parts(manifest)} | quarantined_files(manifest.data)
    extra = []
    for path in sorted(Path(backup_dir).rglob("*")):
        relpath = path.relative_to(backup_dir).as_posix()
        if path.is_file() and relpath not in listed and relpath not in (MANIFEST_NAME, SIGNATURE_NAME):
            extra.append(relpath)
    return extra


def verify_backup(
    backup_dir: Path,
    *,
    public_key_b64: str,
    identity: Path | str | x25519.Identity | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> VerifyReport:
    """Check the backup in `backup_dir`; decrypt and recount everything when `identity` is given.

    `progress(item, done, total)` counts parts."""
    backup_dir = Path(backup_dir)
    report = VerifyReport(backup_dir)
    report.problems += check_signature(backup_dir, public_key_b64)
    try:
        manifest = read_manifest(backup_dir)
    except VerificationError as exc:
        report.problems.append(str(exc))
        return report
    report.backup_id, report.site_id = manifest.data.get("backup_id"), manifest.data.get("site_id")
    report.manifest_fingerprint = manifest.fingerprint
    report.problems += check_arithmetic(manifest)
    for relpath in _unlisted(backup_dir, manifest):
        report.warnings.append(f"{relpath} is in the backup folder but not in the manifest (ignored)")

    key = None
    if identity is not None:
        key = as_identity(identity)
        if str(key.to_public()) not in manifest.recipients:
            report.problems.append(
                "the identity given is not one of this backup's recipients "
                f"({len(manifest.recipients)} custodian key(s)): it cannot decrypt the parts"
            )
            key = None
        else:
            report.decrypted = True
    refs = list(manifest_parts(manifest))
    files, files_broken = FileStream(), False
    for ref in refs:
        try:
            ciphertext = read_ciphertext(backup_dir, ref)
            report.parts_checked += 1
            report.ciphertext_bytes += len(ciphertext)
            if key is not None:
                plaintext = decrypt_part(ciphertext, ref, key)
                if ref.table is not None:
                    report.rows_checked += len(check_table_rows(ref, plaintext))
                elif ref.objects:
                    report.objects_checked += len(check_objects_part(ref, plaintext, manifest))
                elif not files_broken:  # after a bad part, later chunks cannot be put in order
                    files.feed(ref, plaintext)
        except VerificationError as exc:
            report.problems.append(str(exc))
            files_broken = files_broken or ref.files
        if progress:
            progress(ref.table or ("objects" if ref.objects else "attachments"), report.parts_checked, len(refs))
    if key is not None and manifest.attachments is not None and not files_broken:
        try:
            files.finish()
            if files.files != manifest.attachments["files"]:
                report.problems.append(
                    f"attachments: {files.files} files in the parts, the manifest says {manifest.attachments['files']}"
                )
        except VerificationError as exc:
            report.problems.append(str(exc))
        report.files_checked = files.files
    return report
