"""Back up a site: extract every table and the attachment folder into encrypted, signed parts.

Extraction and encryption are one stream: each part is built as Parquet in
memory, encrypted to the custodians' age recipients straight into a
write-once file, and only then journaled, so no unencrypted legacy data ever
touches the disk and memory holds one part at a time.

Layout::

    <backup_root>/<site>/<backup_id>/
        manifest.json  manifest.json.sig          (written last: a backup without them is incomplete)
        parts/<TABLE>/part-000001.parquet.age      (<TABLE>: see table_folder)
        parts/@files/part-000001.parquet.age       (the attachment folder)
        parts/@objects/part-000001.parquet.age     (definitions of views, triggers, procedures, sequences)
        journal.jsonl                              (only while in progress)

A run that is killed leaves an incomplete backup with its journal; the next
run for the site resumes it (same recipients and chunk size): finished tables
are skipped, a keyed table continues after the last stored key, a table
without a key is read again in one pass under new part numbers (its earlier
parts are discarded), the attachment folder continues at the file and byte
where it stopped. Half-written and unjournaled files are removed, never
counted; part numbers are never reused. Before it goes on, a resumed backup
hashes every part the journal records again and writes a damaged or missing
one anew from the source, the damaged file moved to quarantine/
(backups.repair); the manifest lists each repair.

Example::

    result = backup_site(legacy, Path("/srv/ts24/files"), Path("backups"), site_id="hn-01",
                         run_id=run_id, recipients=["age1..."], signing_key=load_signing_key(key_path))
    result.manifest.fingerprint      # cite this
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import io
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyrage
import sqlalchemy as sa
from pyrage import x25519
from sqlalchemy.engine import Engine

from extract.attachments import (
    PART_BYTES,
    AttachmentPart,
    Position,
    check_references,
    describe_skipped,
    iter_attachment_parts,
)
from extract.discovery import TableInfo, column_plan, discover_tables
from extract.extraction import ExtractedPart, count_rows, iter_table_parts
from extract.json_values import from_json_row, from_json_value, json_row, json_value
from extract.objects import OBJECTS_KEY, discover_objects, objects_parquet
from ts24_migrate import TOOL_NAME, __version__
from ts24_migrate.core.errors import ConfigError, UnreachableError, UsageError
from ts24_migrate.core.file_names import object_file_stem
from ts24_migrate.core.labels import attachment_findings, finding_line
from ts24_migrate.core.private_files import make_private_dirs, private_dir
from ts24_migrate.core.rows.arrow_types import schema_id
from ts24_migrate.core.rows.fingerprint import TableFingerprint
from ts24_migrate.core.secrets import redact_url
from ts24_migrate.core.signing import canonical_json

from .manifest import (
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
from .part_store import Journal, remove_temporary_files, write_once
from .repair import PartRepairs, files_summary

# progress(item, done, total): the table (or "attachments") being stored, rows done, rows in all tables.
# The CLI draws a progress bar from it; a flow passes flows.artifacts.progress_reporter.
ProgressCallback = Callable[[str, int, int], None]

JOURNAL_NAME = "journal.jsonl"
LOCK_NAME = ".lock"
_PART_NAME = re.compile(r"^part-(\d{6,})\.parquet\.age$")


@dataclass
class BackupResult:
    manifest: BackupManifest
    resumed: bool
    warnings: list[str]
    repairs: list[dict[str, Any]] = field(default_factory=list)  # made by this run (backups.repair)

    @property
    def backup_dir(self) -> Path:
        return self.manifest.path

    @property
    def fingerprint(self) -> str:
        return self.manifest.fingerprint

    def table_figures(self) -> dict[str, dict[str, Any]]:
        """Per-table figures as the control store records them."""
        return {
            name: {
                "rows": t["rows"],
                "fingerprint": t["fingerprint"],
                "parts": len(t["parts"]),
                "role": t["role"],
                "count_at_start": t["count_at_start"],
                "watermark": (t["watermark"] or {}).get("max"),
                "ciphertext_bytes": sum(p["ciphertext_bytes"] for p in t["parts"]),
                "nul_text": t.get("nul_text") or {},
            }
            for name, t in self.manifest.tables.items()
        }


def table_folder(name: str) -> str:
    """The folder of a table's parts: its name when that is plain, else a safe name with a hash
    of the exact name (ts24_migrate.core.file_names), so it never escapes parts/ and never clashes."""
    return object_file_stem(name)


def parse_recipients(recipients: list[str]) -> list[x25519.Recipient]:
    if not recipients:
        raise ConfigError("no backup recipients: a backup must be encrypted to at least one custodian key")
    parsed = []
    for text in recipients:
        try:
            parsed.append(x25519.Recipient.from_str(text.strip()))
        except Exception:
            raise ConfigError(f"backup recipient {text[:12]}... is not an age X25519 public key") from None
    return parsed


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@contextmanager
def site_lock(site_dir: Path) -> Iterator[None]:
    """One backup at a time per site; a second one is refused rather than interleaved."""
    private_dir(site_dir.parent)  # the backup folder: encrypted parts, but clear-text manifests
    private_dir(site_dir)
    handle = os.fdopen(os.open(site_dir / LOCK_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600), "a")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another backup of this site is running (lock {site_dir / LOCK_NAME})") from None
        yield
    finally:
        handle.close()


@dataclass
class _Replay:
    """What the journal of an incomplete backup says is durably done."""

    header: dict[str, Any] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    table_parts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tables_done: dict[str, dict[str, Any]] = field(default_factory=dict)
    file_parts: list[dict[str, Any]] = field(default_factory=list)
    files_done: dict[str, Any] | None = None
    objects_done: dict[str, Any] | None = None
    highest_seq: dict[str, int] = field(default_factory=dict)  # per parts/ folder, ever used
    repairs: list[dict[str, Any]] = field(default_factory=list)  # damaged parts found on resume

    @classmethod
    def read(cls, journal: Journal) -> _Replay:
        replay = cls()
        for entry in journal.entries():
            event = entry.get("event")
            if event == "begin":
                replay.header = entry
                replay.runs.append(entry["run_id"])
            elif event == "resume":
                replay.runs.append(entry["run_id"])
            elif event == "part":
                replay.table_parts.setdefault(entry["table"], []).append(entry["part"])
                replay.note_part_name(entry["part"]["path"])
            elif event == "table_restart":
                replay.table_parts.pop(entry["table"], None)
                replay.tables_done.pop(entry["table"], None)  # a done table restarts to repair a part
            elif event == "part_replaced":  # a damaged part, written again over the same key range
                replay.table_parts[entry["table"]][entry["index"]] = entry["part"]
                replay.note_part_name(entry["part"]["path"])
            elif event == "files_part_replaced":
                replay.file_parts[entry["index"]] = entry["part"]
                replay.note_part_name(entry["part"]["path"])
            elif event == "files_restart":
                replay.file_parts, replay.files_done = [], None
            elif event == "objects_restart":
                replay.objects_done = None
            elif event == "table_done":
                replay.tables_done[entry["table"]["name"]] = entry["table"]
            elif event == "files_part":
                replay.file_parts.append(entry["part"])
                replay.note_part_name(entry["part"]["path"])
            elif event == "files_done":
                replay.files_done = entry["summary"]
            elif event == "objects_done":
                replay.objects_done = entry["objects"]
                for part in entry["objects"]["parts"]:
                    replay.note_part_name(part["path"])
            if event in ("part_replaced", "files_part_replaced", "table_restart", "files_restart", "objects_restart"):
                replay.repairs += [{**d, "action": entry.get("action")} for d in entry.get("damaged", [])]
        return replay

    def note_part_name(self, relpath: str) -> None:
        """Note a part file name ('parts/<folder>/part-N...'): N is never used again in that folder."""
        *_, folder, name = relpath.split("/")
        match = _PART_NAME.match(name)
        if match:
            self.highest_seq[folder] = max(self.highest_seq.get(folder, 0), int(match.group(1)))

    def current_paths(self) -> set[str]:
        paths = {p["path"] for parts in self.table_parts.values() for p in parts}
        paths |= {p["path"] for p in (self.objects_done or {}).get("parts", [])}
        return paths | {p["path"] for p in self.file_parts}


class _SiteBackup(PartRepairs):
    def __init__(
        self,
        legacy: Engine,
        attachments_dir: Path | None,
        backup_dir: Path,
        *,
        site_id: str,
        run_id: str,
        recipients: list[str],
        signing_key: Any,
        chunk_rows: int,
        attachment_part_bytes: int,
        progress: ProgressCallback | None,
    ):
        self.legacy, self.attachments_dir, self.backup_dir = legacy, attachments_dir, backup_dir
        self.site_id, self.run_id, self.recipients = site_id, run_id, recipients
        self.age_recipients = parse_recipients(recipients)
        self.signing_key, self.chunk_rows = signing_key, chunk_rows
        self.attachment_part_bytes, self.progress = attachment_part_bytes, progress
        self.journal = Journal(backup_dir / JOURNAL_NAME)
        self.replay = _Replay.read(self.journal)
        self.warnings: list[str] = []
        self.repairs: list[dict[str, Any]] = []  # this run's (backups.repair)
        self.rows_done = self.rows_total = 0

    # -- parts --------------------------------------------------------------------------------
    def _next_path(self, folder: str) -> str:
        seq = self.replay.highest_seq.get(folder, 0) + 1
        self.replay.highest_seq[folder] = seq
        return f"{PARTS_DIR}/{folder}/part-{seq:06d}.parquet.age"

    def _store(self, relpath: str, plaintext: bytes) -> tuple[str, int]:
        recipients = self.age_recipients

        def encrypt(writer: Any) -> None:
            pyrage.encrypt_io(io.BytesIO(plaintext), writer, recipients)

        return write_once(self.backup_dir / relpath, encrypt)

    def _report(self, item: str) -> None:
        if self.progress:
            self.progress(item, self.rows_done, self.rows_total)

    def _clean_leftovers(self) -> None:
        """Remove half-written and unjournaled part files; keep their numbers from being reused."""
        remove_temporary_files(self.backup_dir)
        (self.backup_dir / SIGNATURE_NAME).unlink(missing_ok=True)  # a signature without its manifest
        keep = self.replay.current_paths()
        parts_root = self.backup_dir / PARTS_DIR
        if not parts_root.exists():
            return
        for path in sorted(parts_root.rglob("*")):
            if not path.is_file():
                continue
            relpath = path.relative_to(self.backup_dir).as_posix()
            self.replay.note_part_name(relpath)
            if relpath not in keep:
                path.unlink()

    # -- tables -------------------------------------------------------------------------------
    def back_up_table(self, conn: Any, table: TableInfo, count_at_start: int) -> None:
        name = table.name
        if name in self.replay.tables_done:
            self.rows_done += self.replay.tables_done[name]["rows"]
            return
        parts = self.replay.table_parts.get(name, [])
        last_key = ((parts[-1].get("key_range") or {}).get("last") or [None]) if parts else []
        if parts and (not table.primary_key or None in last_key):
            # A keyless table cannot be resumed mid-way, nor one whose last part ended among the
            # rows with a NULL key (read in their own pass, with no order to resume in): read it
            # again in one pass.
            for part in parts:
                (self.backup_dir / part["path"]).unlink(missing_ok=True)
            self.journal.append({"event": "table_restart", "table": name, "discarded": [p["path"] for p in parts]})
            parts = []
        start_after = from_json_row(parts[-1]["key_range"]["last"]) if parts else None
        self.rows_done += sum(p["rows"] for p in parts)
        schemas: dict[str, list[list[str]]] = {}
        for part in parts:
            schemas[part["schema"]] = part["schema_layout"]
        self._report(name)
        for extracted in iter_table_parts(conn, table, chunk_rows=self.chunk_rows, start_after=start_after):
            entry = self._stored_table_part(table, extracted)
            schemas[entry["schema"]] = extracted.schema
            self.journal.append({"event": "part", "table": name, "part": entry})
            parts.append(entry)
            self.rows_done += extracted.rows
            self._report(name)
        entry = self._table_entry(table, parts, schemas, count_at_start)
        self.journal.append({"event": "table_done", "table": entry})
        self.replay.tables_done[name] = entry

    def _stored_table_part(self, table: TableInfo, extracted: ExtractedPart) -> dict[str, Any]:
        """Encrypt and store one extracted part under the next part number; its journal entry."""
        relpath = self._next_path(table_folder(table.name))
        sha, size = self._store(relpath, extracted.parquet)
        entry = {
            "path": relpath,
            "rows": extracted.rows,
            "key_range": (
                {"first": json_row(extracted.first_key), "last": json_row(extracted.last_key)}
                if table.primary_key
                else None
            ),
            "schema": schema_id(extracted.schema),
            "schema_layout": extracted.schema,
            "fingerprint": extracted.fingerprint.hexdigest(),
            "watermark": json_value(extracted.watermark),
            "plaintext_sha256": extracted.plaintext_sha256,
            "plaintext_bytes": len(extracted.parquet),
            "ciphertext_sha256": sha,
            "ciphertext_bytes": size,
        }
        if extracted.nul_text:
            entry["nul_text"] = extracted.nul_text
        return entry

    def _table_entry(
        self, table: TableInfo, parts: list[dict[str, Any]], schemas: dict[str, list[list[str]]], count_at_start: int
    ) -> dict[str, Any]:
        fingerprint = TableFingerprint()
        for part in parts:
            fingerprint.merge(TableFingerprint.parse(part["fingerprint"]))
        watermarks = [from_json_value(p["watermark"]) for p in parts if p["watermark"] is not None]
        try:
            highest = max(watermarks) if watermarks else None
        except TypeError:
            highest = None
        listed = [
            {"index": index, **{k: v for k, v in p.items() if k != "schema_layout"}}
            for index, p in enumerate(parts, start=1)
        ]
        nul_text: dict[str, int] = {}
        for part in parts:
            for column, rows in (part.get("nul_text") or {}).items():
                nul_text[column] = nul_text.get(column, 0) + rows
        return {
            "name": table.name,
            "db_schema": table.schema,
            "role": table.role,
            "primary_key": list(table.primary_key),
            "read": "keyset" if table.primary_key else "single_pass",
            "columns": [plan.describe() for plan in column_plan(table)],
            "schemas": schemas,
            "mode": "full",
            "since": None,
            "rows": fingerprint.rows,
            "count_at_start": count_at_start,
            "fingerprint": fingerprint.hexdigest(),
            "watermark": (
                {"column": table.watermark_column, "max": json_value(highest)} if table.watermark_column else None
            ),
            # Text columns whose values held NUL: kept as framed binary in those parts (column -> rows).
            "nul_text": dict(sorted(nul_text.items())),
            "parts": listed,
        }

    # -- attachments --------------------------------------------------------------------------
    def back_up_attachments(self) -> None:
        if self.attachments_dir is None or self.replay.files_done is not None:
            return
        root = Path(self.attachments_dir)
        parts = list(self.replay.file_parts)
        resume = Position.from_json(parts[-1]["position"]) if parts else None
        skipped: list[bytes] = []
        files = sum(p["files"] for p in parts)
        self._report(f"attachments ({files} files)")
        for extracted in iter_attachment_parts(
            root, part_bytes=self.attachment_part_bytes, part_rows=self.chunk_rows, resume=resume, skipped=skipped
        ):
            entry = self._stored_file_part(extracted)
            self.journal.append({"event": "files_part", "part": entry})
            parts.append(entry)
            files += extracted.files
            self._report(f"attachments ({files} files)")
        summary = files_summary(parts, [describe_skipped(root, p) for p in skipped])
        self.journal.append({"event": "files_done", "summary": summary})
        self.replay.files_done = summary

    # -- views, triggers, procedures, sequences -----------------------------------------------
    def back_up_objects(self, conn: Any) -> None:
        """Their definitions in one encrypted part (they may hold literals: never in the clear-text
        manifest); names and fingerprints in the manifest. A view's rows are not extracted."""
        if self.replay.objects_done is not None:
            return
        self._report("views, triggers, procedures")
        found = discover_objects(conn)
        parts = []
        if found.objects:
            plaintext = objects_parquet(found.objects)
            relpath = self._next_path(OBJECTS_KEY)
            sha, size = self._store(relpath, plaintext)
            parts.append(
                {
                    "index": 1,
                    "path": relpath,
                    "rows": len(found.objects),
                    "plaintext_sha256": hashlib.sha256(plaintext).hexdigest(),
                    "plaintext_bytes": len(plaintext),
                    "ciphertext_sha256": sha,
                    "ciphertext_bytes": size,
                }
            )
        objects = {"items": found.listing(), "note": found.note, "parts": parts}
        self.journal.append({"event": "objects_done", "objects": objects})
        self.replay.objects_done = objects

    def _stored_file_part(self, extracted: AttachmentPart) -> dict[str, Any]:
        """Encrypt and store one attachment part under the next part number; its journal entry."""
        relpath = self._next_path(FILES_DIR)
        sha, size = self._store(relpath, extracted.parquet)
        return {
            "path": relpath,
            "rows": extracted.rows,
            "files": extracted.files,
            "content_bytes": extracted.content_bytes,
            "fingerprint": extracted.fingerprint.hexdigest(),
            "position": extracted.position.to_json(),
            "plaintext_sha256": extracted.plaintext_sha256,
            "plaintext_bytes": len(extracted.parquet),
            "ciphertext_sha256": sha,
            "ciphertext_bytes": size,
        }

    # -- the whole site -----------------------------------------------------------------------
    def run(self) -> BackupManifest:
        if self.attachments_dir is not None and not Path(self.attachments_dir).is_dir():
            raise UnreachableError(f"attachment folder {self.attachments_dir} does not exist or is not a folder")
        resumed = self.journal.exists()
        if resumed:
            self.journal.append({"event": "resume", "run_id": self.run_id, "at": _now()})
            self.replay.runs.append(self.run_id)
            self._clean_leftovers()
        else:
            make_private_dirs(self.backup_dir / PARTS_DIR)
            header = {
                "event": "begin",
                "format": FORMAT,
                "site_id": self.site_id,
                "backup_id": self.backup_dir.name,
                "run_id": self.run_id,
                "at": _now(),
                "recipients": self.recipients,
                "chunk_rows": self.chunk_rows,
                "attachment_part_bytes": self.attachment_part_bytes,
            }
            self.journal.append(header)
            self.replay.header = header
            self.replay.runs.append(self.run_id)
        with self.legacy.connect() as conn:
            tables = discover_tables(conn)
            if resumed:
                self.repair_damaged_parts(conn, tables)
            counts = {
                t.name: self.replay.tables_done[t.name]["rows"]
                if t.name in self.replay.tables_done
                else count_rows(conn, t)
                for t in tables
            }
            self.rows_total = sum(counts.values())
            for table in tables:
                self.back_up_table(conn, table, counts[table.name])
            self.back_up_objects(conn)
            self.back_up_attachments()
            self._report("checking file references")
            references = None
            if self.attachments_dir is not None:
                references = check_references(
                    conn, tables, Path(self.attachments_dir), chunk_rows=self.chunk_rows
                ).to_json()
        return self._finish(references)

    def _finish(self, references: dict[str, Any] | None) -> BackupManifest:
        tables = self.replay.tables_done
        for name, table in sorted(tables.items()):
            if table["rows"] != table["count_at_start"]:
                self.warnings.append(
                    f"{name}: {table['rows']} rows read, but COUNT(*) said "
                    f"{table['count_at_start']} when the read started (the table changed "
                    f"during the backup)"
                )
        attachments = None
        if self.replay.files_done is not None:
            # Part positions name files: they stay in the journal, out of the clear-text manifest.
            parts = [
                {"index": index, **{k: v for k, v in p.items() if k != "position"}}
                for index, p in enumerate(self.replay.files_done["parts"], start=1)
            ]
            attachments = {**self.replay.files_done, "parts": parts, "references": references}
            # One wording and one count per finding, as every other output shows it (ts24_migrate.core.labels).
            # Links and special files are also under attachments.skipped: what the backup's walk left out.
            for kind, _label, count in attachment_findings(references):
                if count:
                    self.warnings.append(
                        f"attachments: {finding_line(kind, count)} (listed under attachments.references.{kind})"
                    )
        objects = self.replay.objects_done
        all_parts = (
            [p for t in tables.values() for p in t["parts"]]
            + (attachments or {}).get("parts", [])
            + (objects or {}).get("parts", [])
        )
        if objects is not None and objects.get("note"):
            self.warnings.append(f"objects: {objects['note']}")
        unreadable = [o for o in (objects or {}).get("items", []) if o["fingerprint"] is None]
        if unreadable:
            self.warnings.append(
                f"objects: {len(unreadable)} definition(s) not readable with this account "
                f"(listed under objects.items with a note)"
            )
        manifest = {
            "format": FORMAT,
            "kind": "full",
            "parent": None,
            "site_id": self.site_id,
            "backup_id": self.backup_dir.name,
            "runs": self.replay.runs,
            "created_at": self.replay.header.get("at"),
            "completed_at": _now(),
            "tool": {"name": TOOL_NAME, "version": __version__},
            "source": {"dialect": self.legacy.dialect.name},
            "encryption": {"format": AGE_FORMAT, "recipients": self.recipients},
            "signing_key": {
                "algorithm": "ed25519",
                "key_id": self.signing_key.key_id,
                "public_key": self.signing_key.public_key_b64,
            },
            "chunk_rows": self.chunk_rows,
            "tables": tables,
            "attachments": attachments,
            "objects": objects,
            "totals": {
                "tables": len(tables),
                "rows": sum(t["rows"] for t in tables.values()),
                "parts": len(all_parts),
                "plaintext_bytes": sum(p["plaintext_bytes"] for p in all_parts),
                "ciphertext_bytes": sum(p["ciphertext_bytes"] for p in all_parts),
            },
            "warnings": self.warnings,
        }
        if self.replay.repairs:
            manifest["repairs"] = self.replay.repairs
        if self.replay.header.get("repair_of"):
            manifest["repair_of"] = self.replay.header["repair_of"]
        raw = canonical_json(manifest)
        # The signature first, the manifest last: manifest.json is the mark of a complete backup.
        write_once(self.backup_dir / SIGNATURE_NAME, lambda out: out.write(signature_document(raw, self.signing_key)))
        write_once(self.backup_dir / MANIFEST_NAME, lambda out: out.write(raw))
        self.journal.path.unlink(missing_ok=True)
        self._report("done")
        return read_manifest(self.backup_dir)


def incomplete_backups(site_dir: Path) -> list[Path]:
    """Backup folders of a site that have a journal and no manifest, oldest first."""
    if not site_dir.is_dir():
        return []
    return sorted(
        p for p in site_dir.iterdir() if p.is_dir() and (p / JOURNAL_NAME).exists() and not (p / MANIFEST_NAME).exists()
    )


def new_backup_id() -> str:
    """UTC creation time to the microsecond, then a random suffix: ids sort in creation order."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(3)}"


def backup_site(
    legacy: Engine,
    attachments_dir: Path | None,
    backup_root: Path,
    *,
    site_id: str,
    run_id: str,
    recipients: list[str],
    signing_key: Any,
    chunk_rows: int = 50_000,
    attachment_part_bytes: int = PART_BYTES,
    progress: ProgressCallback | None = None,
    ledger: Any = None,
) -> BackupResult:
    """Back up every table and the attachment folder of a site; resume an incomplete backup if any."""
    if chunk_rows <= 0 or attachment_part_bytes <= 0:
        raise UsageError("chunk_rows and attachment_part_bytes must be positive")
    parse_recipients(recipients)
    site_dir = Path(backup_root) / site_id
    with site_lock(site_dir):
        for complete in site_dir.glob(f"*/{MANIFEST_NAME}"):
            (complete.parent / JOURNAL_NAME).unlink(missing_ok=True)  # killed just after completing
        backup_dir, resumed = None, False
        for candidate in reversed(incomplete_backups(site_dir)):
            header = _Replay.read(Journal(candidate / JOURNAL_NAME)).header
            if (
                header.get("recipients") == list(recipients)
                and header.get("chunk_rows") == chunk_rows
                and header.get("attachment_part_bytes") == attachment_part_bytes
            ):
                backup_dir, resumed = candidate, True
                break
        if backup_dir is None:
            backup_dir = site_dir / new_backup_id()
            backup_dir.mkdir(mode=0o700)
        job = _SiteBackup(
            legacy,
            attachments_dir,
            backup_dir,
            site_id=site_id,
            run_id=run_id,
            recipients=list(recipients),
            signing_key=signing_key,
            chunk_rows=chunk_rows,
            attachment_part_bytes=attachment_part_bytes,
            progress=progress,
        )
        try:
            manifest = _run_job(job, site_id)
        except BaseException:
            if not resumed:
                _discard_if_nothing_stored(backup_dir)
            raise
    return _result(job, manifest, resumed, ledger)


def _run_job(job: _SiteBackup, site_id: str) -> BackupManifest:
    try:
        return job.run()
    except sa.exc.DBAPIError as exc:
        detail = redact_url(str(exc.orig or exc).splitlines()[0][:200])
        raise UnreachableError(
            f"backup of site {site_id} stopped: the legacy database failed ({detail}); run it again to resume"
        ) from None
    except OSError as exc:
        raise UnreachableError(
            f"backup of site {site_id} stopped: {exc.strerror or type(exc).__name__}"
            f"{f' ({exc.filename})' if exc.filename else ''}; run it again to resume"
        ) from None


def _result(job: _SiteBackup, manifest: BackupManifest, resumed: bool, ledger: Any) -> BackupResult:
    result = BackupResult(manifest, resumed, job.warnings, job.repairs)
    if ledger is not None:
        ledger.append(
            job.site_id,
            "backup",
            "backup.created",
            {
                **manifest.summary(),
                "resumed": resumed,
                "warnings": len(job.warnings),
                "repaired": len(job.repairs),
                "repair_of": (manifest.data.get("repair_of") or {}).get("backup_id"),
                "missing_files": len(((manifest.attachments or {}).get("references") or {}).get("missing") or []),
                "objects": len((manifest.objects or {}).get("items") or []),
                "attachment_findings": {
                    key: count
                    for key, _label, count in attachment_findings((manifest.attachments or {}).get("references"))
                },
            },
            run_id=job.run_id,
        )
    return result


_DURABLE_EVENTS = ("part", "table_done", "files_part", "files_done")


def _discard_if_nothing_stored(backup_dir: Path) -> None:
    """A backup that failed before storing anything leaves no folder behind (it would list as an
    empty incomplete backup, or not at all); one with a stored part stays, to be resumed."""
    if (backup_dir / MANIFEST_NAME).exists():
        return
    try:
        stored = any(e.get("event") in _DURABLE_EVENTS for e in Journal(backup_dir / JOURNAL_NAME).entries())
    except Exception:
        return  # a journal we cannot read is left for the resume to judge
    if not stored:
        shutil.rmtree(backup_dir, ignore_errors=True)


def discard_incomplete(site_dir: Path, backup_id: str) -> None:
    """Delete an incomplete backup (no manifest): its parts were never part of a signed backup."""
    folder = Path(site_dir) / backup_id
    if (folder / MANIFEST_NAME).exists():
        raise UsageError(f"backup {backup_id} is complete; complete backups are never deleted by this tool")
    shutil.rmtree(folder)
