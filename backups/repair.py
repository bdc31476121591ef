"""A resumed backup trusts nothing it did not check: each part an earlier run journaled is hashed again.

Before a resumed backup goes on (and so before it signs a manifest), every
part the journal records is read back: its ciphertext size and SHA-256 must be
those recorded when it was written. A part that is missing or differs is
damaged. Parts are write-once, so a damaged part is never overwritten nor
silently deleted: it is moved to `quarantine/` in the backup folder (same
sub-path as under `parts/`) next to a note (`<name>.note.json`: what was
expected, what was found, which run noticed it), and its rows are written
again from the source under a new part number:

- a part of a keyed table is read again from the key the part before it
  ended at; when the source still yields a part ending at the damaged part's
  last key, it replaces the damaged part in place in the part list;
- otherwise (rows were added or removed in that range, the table has no key,
  or the range is among rows with a NULL key), the whole table is read again,
  as a resumed keyless table is;
- an attachment part likewise, from the file position the part before it
  ended at; otherwise the whole folder is read again;
- the part of definitions (views, triggers, procedures, sequences): they are
  read again.

The signed manifest lists each repair under `repairs` (part, problem, where
the damaged file went, what replaced it), so a verification of the finished
backup knows the quarantined files and an auditor sees what happened.

Example::

    problem = part_problem(backup_dir, entry)   # None, "missing", or what differs
    quarantined = quarantine_part(backup_dir, entry, problem, run_id=run_id)
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extract.attachments import AttachmentPart, Position, iter_attachment_parts
from extract.discovery import TableInfo
from extract.extraction import ExtractedPart, iter_table_parts
from extract.json_values import from_json_row, json_row
from ts24_migrate.core.durable import fsync_dir
from ts24_migrate.core.errors import VerificationError
from ts24_migrate.core.rows.fingerprint import TableFingerprint
from ts24_migrate.core.signing import canonical_json

from .manifest import PARTS_DIR
from .part_store import Journal, sha256_file, write_once

if TYPE_CHECKING:
    from .backup import _Replay

QUARANTINE_DIR = "quarantine"
NOTE_SUFFIX = ".note.json"


def part_problem(backup_dir: Path, entry: dict[str, Any]) -> str | None:
    """What is wrong with a journaled part on disk: None when its size and SHA-256 are as recorded."""
    try:
        sha, size = sha256_file(Path(backup_dir) / entry["path"])
    except FileNotFoundError:
        return "missing"
    if size != entry["ciphertext_bytes"]:
        return f"{size} bytes on disk, {entry['ciphertext_bytes']} when it was written"
    if sha != entry["ciphertext_sha256"]:
        return "its SHA-256 differs from the one recorded when it was written"
    return None


def quarantine_part(
    backup_dir: Path, entry: dict[str, Any], problem: str, *, run_id: str, label: str
) -> dict[str, Any]:
    """Move a damaged part into quarantine/ (never overwriting anything) and write its note.

    Returns the repair record: part, problem, quarantined_as (None when the part was missing), note.
    """
    backup_dir = Path(backup_dir)
    relpath = entry["path"]
    inside = relpath[len(PARTS_DIR) + 1 :] if relpath.startswith(PARTS_DIR + "/") else relpath
    destination = backup_dir / QUARANTINE_DIR / inside
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists() or destination.with_name(destination.name + NOTE_SUFFIX).exists():
        destination = destination.with_name(f"{destination.name}.{run_id}")
    source = backup_dir / relpath
    quarantined = None
    if source.exists():
        os.rename(source, destination)  # same folder tree, same file system: atomic
        fsync_dir(destination.parent)
        fsync_dir(source.parent)
        quarantined = destination.relative_to(backup_dir).as_posix()
    note_path = destination.with_name(destination.name + NOTE_SUFFIX)
    record = {
        "part": relpath,
        "label": label,
        "problem": problem,
        "quarantined_as": quarantined,
        "note": note_path.relative_to(backup_dir).as_posix(),
        "noticed_by_run": run_id,
        "expected": {"ciphertext_bytes": entry["ciphertext_bytes"], "ciphertext_sha256": entry["ciphertext_sha256"]},
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    write_once(note_path, lambda out: out.write(canonical_json(record)))
    return record


class PartRepairs:
    """The resumed backup's side of a repair (mixed into backups.backup's site backup, whose journal,
    replay and part writers it uses): hash, quarantine, and write again or read again."""

    backup_dir: Path
    journal: Journal
    replay: _Replay
    run_id: str
    chunk_rows: int
    attachments_dir: Path | None
    attachment_part_bytes: int
    repairs: list[dict[str, Any]]

    if TYPE_CHECKING:  # the site backup's part writers (declared for the type checker only)

        def _stored_table_part(self, table: TableInfo, extracted: ExtractedPart) -> dict[str, Any]: ...
        def _stored_file_part(self, extracted: AttachmentPart) -> dict[str, Any]: ...
        def _table_entry(
            self,
            table: TableInfo,
            parts: list[dict[str, Any]],
            schemas: dict[str, list[list[str]]],
            count_at_start: int,
        ) -> dict[str, Any]: ...

    def repair_damaged_parts(self, conn: Any, tables: list[TableInfo]) -> None:
        """Hash every journaled part again; quarantine a damaged one and write its rows anew."""
        infos = {t.name: t for t in tables}
        for name in sorted(self.replay.table_parts):
            parts = self.replay.table_parts[name]
            damaged = self._quarantine_damaged(parts, f"{name} part")
            if not damaged:
                continue
            info = infos.get(name)
            if info is None:
                raise VerificationError(
                    f"backup {self.backup_dir.name}: {name} part {damaged[0][0] + 1} is damaged "
                    f"({damaged[0][1]['problem']}) and the legacy database no longer has "
                    f"table {name} to read it again: take a new backup"
                )
            if not all(self._replace_table_part(conn, info, index, record) for index, record in damaged):
                self._restart_table(info, [record for _, record in damaged])
        damaged = self._quarantine_damaged(self.replay.file_parts, "attachments part")
        if damaged and not all(self._replace_file_part(index, record) for index, record in damaged):
            self._restart_files([record for _, record in damaged])
        objects = self.replay.objects_done
        damaged = self._quarantine_damaged((objects or {}).get("parts", []), "definitions part")
        if damaged:  # one small part: the definitions are read again
            records = [record for _, record in damaged]
            action = "the views', triggers', procedures' and sequences' definitions read again"
            self.journal.append({"event": "objects_restart", "damaged": records, "action": action})
            self.replay.objects_done = None
            self._note_repairs(records, action)

    def _quarantine_damaged(self, parts: list[dict[str, Any]], label: str) -> list[tuple[int, dict[str, Any]]]:
        damaged = []
        for index, entry in enumerate(parts):
            problem = part_problem(self.backup_dir, entry)
            if problem is not None:
                damaged.append(
                    (
                        index,
                        quarantine_part(
                            self.backup_dir, entry, problem, run_id=self.run_id, label=f"{label} {index + 1}"
                        ),
                    )
                )
        return damaged

    def _note_repairs(self, records: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
        for record in records:
            self.repairs.append({**record, "action": action})
        self.replay.repairs += [{**record, "action": action} for record in records]
        return records

    def _replace_table_part(self, conn: Any, table: TableInfo, index: int, record: dict[str, Any]) -> bool:
        """Write part `index` again from the source; False when the source no longer gives the same range."""
        parts = self.replay.table_parts[table.name]
        ranges = [from_json_row((p.get("key_range") or {}).get("last")) for p in parts[: index + 1]]
        if not table.primary_key or any(r is None or None in r for r in ranges):
            return False
        start_after = ranges[index - 1] if index else None
        extracted = next(iter(iter_table_parts(conn, table, chunk_rows=self.chunk_rows, start_after=start_after)), None)
        if extracted is None or json_row(extracted.last_key) != parts[index]["key_range"]["last"]:
            return False
        entry = self._stored_table_part(table, extracted)
        action = f"written again from the source as {entry['path']}"
        self.journal.append(
            {
                "event": "part_replaced",
                "table": table.name,
                "index": index,
                "part": entry,
                "damaged": [record],
                "action": action,
            }
        )
        parts[index] = entry
        self._note_repairs([record], action)
        done = self.replay.tables_done.get(table.name)
        if done is not None:  # its figures are recomputed from the parts as they are now
            schemas = {p["schema"]: p["schema_layout"] for p in parts}
            entry = self._table_entry(table, parts, schemas, done["count_at_start"])
            self.journal.append({"event": "table_done", "table": entry})
            self.replay.tables_done[table.name] = entry
        return True

    def _restart_table(self, table: TableInfo, records: list[dict[str, Any]]) -> None:
        parts = self.replay.table_parts.get(table.name, [])
        for part in parts:  # the damaged ones are in quarantine already
            (self.backup_dir / part["path"]).unlink(missing_ok=True)
        action = "the whole table read again (the source no longer gives the damaged part's key range)"
        self.journal.append(
            {
                "event": "table_restart",
                "table": table.name,
                "discarded": [p["path"] for p in parts],
                "damaged": records,
                "action": action,
            }
        )
        self.replay.table_parts.pop(table.name, None)
        self.replay.tables_done.pop(table.name, None)
        self._note_repairs(records, action)

    def _replace_file_part(self, index: int, record: dict[str, Any]) -> bool:
        if self.attachments_dir is None:
            return False
        parts = self.replay.file_parts
        if any("position" not in p for p in parts[: index + 1]):  # parts taken from a manifest (seed_repair)
            return False
        resume = Position.from_json(parts[index - 1]["position"]) if index else None
        extracted = next(
            iter(
                iter_attachment_parts(
                    Path(self.attachments_dir),
                    part_bytes=self.attachment_part_bytes,
                    part_rows=self.chunk_rows,
                    resume=resume,
                    skipped=[],
                )
            ),
            None,
        )
        if extracted is None or extracted.position.to_json() != parts[index]["position"]:
            return False
        entry = self._stored_file_part(extracted)
        action = f"written again from the attachment folder as {entry['path']}"
        self.journal.append(
            {"event": "files_part_replaced", "index": index, "part": entry, "damaged": [record], "action": action}
        )
        parts[index] = entry
        self._note_repairs([record], action)
        if self.replay.files_done is not None:
            summary = files_summary(parts, self.replay.files_done["skipped"])
            self.journal.append({"event": "files_done", "summary": summary})
            self.replay.files_done = summary
        return True

    def _restart_files(self, records: list[dict[str, Any]]) -> None:
        for part in self.replay.file_parts:
            (self.backup_dir / part["path"]).unlink(missing_ok=True)
        action = "the whole attachment folder read again (it no longer gives the damaged part's files)"
        self.journal.append(
            {
                "event": "files_restart",
                "discarded": [p["path"] for p in self.replay.file_parts],
                "damaged": records,
                "action": action,
            }
        )
        self.replay.file_parts, self.replay.files_done = [], None
        self._note_repairs(records, action)


def files_summary(parts: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> dict[str, Any]:
    """The attachment folder's summary over its parts (the journal's files_done, the manifest's attachments)."""
    fingerprint = TableFingerprint()
    for part in parts:
        fingerprint.merge(TableFingerprint.parse(part["fingerprint"]))
    return {
        "files": fingerprint.rows,
        "bytes": sum(p["content_bytes"] for p in parts),
        "fingerprint": fingerprint.hexdigest(),
        "skipped": skipped,
        "parts": parts,
    }


def quarantined_files(manifest_data: dict[str, Any]) -> set[str]:
    """The files under quarantine/ that the manifest's repairs account for (a verify does not warn)."""
    found: set[str] = set()
    for repair in manifest_data.get("repairs") or []:
        found.update(p for p in (repair.get("quarantined_as"), repair.get("note")) if p)
    return found
