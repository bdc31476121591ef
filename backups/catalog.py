"""The backups of a site on disk: list them, find one by id, or the latest complete one.

Example::

    for entry in list_backups(Path("backups"), "hn-01"):
        print(entry.backup_id, entry.status)
    backup_dir = find_backup(Path("backups"), "hn-01")        # latest complete backup
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ts24_migrate.core.errors import UsageError, VerificationError

from .backup import JOURNAL_NAME
from .manifest import MANIFEST_NAME, read_manifest


@dataclass(frozen=True)
class BackupListing:
    backup_id: str
    path: Path
    status: str  # complete | incomplete (resumable) | damaged
    summary: dict[str, Any]


def list_backups(backup_root: Path, site_id: str) -> list[BackupListing]:
    """Every backup folder of the site, oldest first (backup ids sort by creation time)."""
    site_dir = Path(backup_root) / site_id
    if not site_dir.is_dir():
        return []
    found = []
    for folder in sorted(p for p in site_dir.iterdir() if p.is_dir()):
        if (folder / MANIFEST_NAME).exists():
            try:
                found.append(BackupListing(folder.name, folder, "complete", read_manifest(folder).summary()))
            except VerificationError as exc:
                found.append(BackupListing(folder.name, folder, "damaged", {"error": str(exc)}))
        elif (folder / JOURNAL_NAME).exists():
            found.append(BackupListing(folder.name, folder, "incomplete", {"backup_id": folder.name}))
    return found


def find_backup(backup_root: Path, site_id: str, backup_id: str | None = None) -> Path:
    """The folder of backup `backup_id`, or of the latest complete backup of the site."""
    listings = list_backups(backup_root, site_id)
    if backup_id is not None:
        for entry in listings:
            if entry.backup_id == backup_id:
                return entry.path
        raise UsageError(f"site {site_id} has no backup {backup_id!r} under {Path(backup_root) / site_id}")
    complete = [e for e in listings if e.status == "complete"]
    if not complete:
        raise UsageError(f"site {site_id} has no complete backup under {Path(backup_root) / site_id}")
    return complete[-1].path
