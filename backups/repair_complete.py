"""Repair a complete backup that fails verification: a new backup of its intact parts and its damaged ones.

A complete backup is write-once: its manifest is signed and cited, so it is
never changed. `repair_backup` makes a new backup folder that holds the same
parts (hard links: a write-once part can be shared), with a journal rebuilt
from the damaged backup's signed manifest, and resumes it like any backup:
the resume hashes every part (backups.repair), quarantines the damaged ones
and reads their rows again from the source, then signs a new manifest that
names the backup it repairs (`repair_of`) and lists the repairs. It is
refused when the damaged backup's manifest signature does not verify: its
list of parts cannot be trusted then.

Example::

    result = repair_backup(legacy, files, Path("backups"), site_id="hn-01", backup_id=damaged_id,
                           run_id=run_id, signing_key=key, public_key_b64=key.public_key_b64)
    result.manifest.data["repair_of"], result.repairs
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from extract.attachments import PART_BYTES
from ts24_migrate.core.errors import UsageError, VerificationError

from .backup import (
    JOURNAL_NAME,
    BackupResult,
    ProgressCallback,
    _Replay,
    _result,
    _run_job,
    _SiteBackup,
    incomplete_backups,
    new_backup_id,
    site_lock,
)
from .manifest import FORMAT, PARTS_DIR, BackupManifest, check_signature, read_manifest
from .part_store import Journal
from .repair import files_summary, part_problem


def repair_backup(
    legacy: Engine,
    attachments_dir: Path | None,
    backup_root: Path,
    *,
    site_id: str,
    backup_id: str,
    run_id: str,
    signing_key: Any,
    public_key_b64: str,
    attachment_part_bytes: int = PART_BYTES,
    progress: ProgressCallback | None = None,
    ledger: Any = None,
) -> BackupResult:
    """A new backup made of a complete backup's intact parts and its damaged ones read again.

    The complete backup is write-once and stays as it is; the new one (backups.repair) is
    resumed like any backup if this is killed, and its manifest names the backup it repairs.
    """
    site_dir = Path(backup_root) / site_id
    with site_lock(site_dir):
        damaged = read_manifest(site_dir / backup_id)
        if check_signature(damaged.path, public_key_b64):
            raise VerificationError(
                f"backup {backup_id}: its manifest's signature does not verify, so its list of "
                f"parts cannot be trusted to repair from: take a new full backup "
                f"(`ts24-migrate backup create {site_id}`)"
            )
        if damaged.data.get("kind", "full") != "full":
            raise UsageError(f"backup {backup_id} is an increment: `reconcile verify-chain` checks increments")
        backup_dir = _open_repair(site_dir, damaged)
        resumed = (backup_dir / JOURNAL_NAME).exists()
        if not resumed:
            if not any(part_problem(damaged.path, ref) for ref in _manifest_part_entries(damaged)):
                backup_dir.rmdir()
                raise UsageError(
                    f"backup {backup_id} has no damaged part: every part's size and SHA-256 are those "
                    f"its signed manifest lists; nothing to repair"
                )
            seed_repair(damaged, backup_dir, attachment_part_bytes=attachment_part_bytes)
        job = _SiteBackup(
            legacy,
            attachments_dir,
            backup_dir,
            site_id=site_id,
            run_id=run_id,
            recipients=damaged.recipients,
            signing_key=signing_key,
            chunk_rows=damaged.data["chunk_rows"],
            attachment_part_bytes=attachment_part_bytes,
            progress=progress,
        )
        manifest = _run_job(job, site_id)
    return _result(job, manifest, True, ledger)


def _open_repair(site_dir: Path, damaged: BackupManifest) -> Path:
    """The incomplete repair of `damaged` a killed run left, or a new folder for it."""
    for candidate in reversed(incomplete_backups(site_dir)):
        header = _Replay.read(Journal(candidate / JOURNAL_NAME)).header
        if (header.get("repair_of") or {}).get("manifest_fingerprint") == damaged.fingerprint:
            return candidate
    folder = site_dir / new_backup_id()
    folder.mkdir(mode=0o700)
    return folder


def _manifest_part_entries(manifest: BackupManifest) -> list[dict[str, Any]]:
    return (
        [p for t in manifest.tables.values() for p in t["parts"]]
        + list((manifest.attachments or {}).get("parts", []))
        + list((manifest.objects or {}).get("parts", []))
    )


def seed_repair(damaged: BackupManifest, backup_dir: Path, *, attachment_part_bytes: int) -> None:
    """Make `backup_dir` an incomplete backup holding what `damaged` holds: its parts hard-linked (a
    write-once part can be shared), and a journal rebuilt from its signed manifest. Resuming it
    then finds the damaged parts by their hashes and writes them again."""
    data = damaged.data
    journal = Journal(backup_dir / JOURNAL_NAME)
    (backup_dir / PARTS_DIR).mkdir(exist_ok=True)
    for entry in _manifest_part_entries(damaged):
        source, copy = damaged.path / entry["path"], backup_dir / entry["path"]
        copy.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, copy)
        except FileNotFoundError:
            continue  # a missing part: the resume writes it again
        except OSError:  # a file system without hard links
            shutil.copyfile(source, copy)
    runs = list(data.get("runs") or [])
    journal.append(
        {
            "event": "begin",
            "format": FORMAT,
            "site_id": data["site_id"],
            "backup_id": backup_dir.name,
            "run_id": runs[0] if runs else "unknown",
            "at": data.get("created_at"),
            "recipients": damaged.recipients,
            "chunk_rows": data["chunk_rows"],
            "attachment_part_bytes": attachment_part_bytes,
            "repair_of": {"backup_id": damaged.backup_id, "manifest_fingerprint": damaged.fingerprint},
        }
    )
    for run in runs[1:]:
        journal.append({"event": "resume", "run_id": run, "at": None})
    for name, table in sorted(damaged.tables.items()):
        for part in table["parts"]:
            entry = {k: v for k, v in part.items() if k != "index"}
            journal.append(
                {"event": "part", "table": name, "part": {**entry, "schema_layout": table["schemas"][part["schema"]]}}
            )
        journal.append({"event": "table_done", "table": table})
    if damaged.objects is not None:
        journal.append({"event": "objects_done", "objects": damaged.objects})
    attachments = damaged.attachments
    if attachments is not None:  # positions stay out of manifests: a damaged part means reading the folder again
        parts = [{k: v for k, v in p.items() if k != "index"} for p in attachments["parts"]]
        for part in parts:
            journal.append({"event": "files_part", "part": part})
        journal.append({"event": "files_done", "summary": {**files_summary(parts, attachments["skipped"])}})
