"""Is a complete backup still a backup of the source as it is now? Then a re-run need not write another.

A backup equals the live source when every table the source holds is in the
backup with the same fingerprint, and the attachment folder too
(ts24_migrate.core.rows.fingerprint: row count plus the sum of row digests, the same figure
the restore check and the purge gate compare). Row counts are compared first:
a table that gained or lost rows answers "changed" after one COUNT(*), before
any row is read. The check reads the legacy database and the folder and
writes nothing.

It is only ever asked about a backup whose signature holds and that is
encrypted to today's recipients: a backup the current custodians cannot
decrypt is no backup of theirs, whatever its content.

Example::

    check = backup_still_current(backup_dir, legacy, attachments, public_key_b64=pub, recipients=["age1..."])
    check.current, check.reason     # (False, "HO_SO: 1,203 rows now, 1,200 in the backup")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from extract.attachments import ATTACHMENTS_KEY
from extract.discovery import discover_tables
from extract.extraction import count_rows, live_fingerprints

from .manifest import check_signature, read_manifest
from .verify import check_arithmetic


@dataclass(frozen=True)
class CurrentCheck:
    current: bool
    reason: str  # why it is (or is not) the source as it is now


def backup_still_current(
    backup_dir: Path,
    legacy: Engine,
    attachments_dir: Path | None,
    *,
    public_key_b64: str,
    recipients: list[str],
    chunk_rows: int = 50_000,
) -> CurrentCheck:
    problems = check_signature(backup_dir, public_key_b64)
    if problems:
        return CurrentCheck(False, f"its signature does not hold: {problems[0]}")
    manifest = read_manifest(backup_dir)
    if manifest.data.get("kind") != "full" or check_arithmetic(manifest):
        return CurrentCheck(False, "it is not a sound full backup")
    if sorted(manifest.recipients) != sorted(recipients):
        return CurrentCheck(False, "it is encrypted to other recipients than the inventory's backup_recipients")
    backed_up = manifest.tables
    with legacy.connect() as conn:
        tables = discover_tables(conn)
        names = {t.name for t in tables}
        if names != set(backed_up):
            added, gone = sorted(names - set(backed_up)), sorted(set(backed_up) - names)
            return CurrentCheck(
                False,
                "the source's tables differ from the backup's"
                + (f" (new: {', '.join(added[:5])})" if added else "")
                + (f" (gone: {', '.join(gone[:5])})" if gone else ""),
            )
        for table in tables:
            rows = count_rows(conn, table)
            if rows != backed_up[table.name]["rows"]:
                return CurrentCheck(
                    False, f"{table.name}: {rows:,} rows now, {backed_up[table.name]['rows']:,} in the backup"
                )
    if attachments_dir is not None and not Path(attachments_dir).is_dir():
        return CurrentCheck(False, f"the attachment folder {attachments_dir} is not there")
    if (attachments_dir is None) != (manifest.attachments is None):
        return CurrentCheck(False, "the attachment folder is configured differently from the backup's")
    live = live_fingerprints(legacy, attachments_dir, chunk_rows=chunk_rows)
    expected = manifest.fingerprints()
    for name in sorted(expected):
        if live.get(name) != expected[name]:
            what = "the attachment folder" if name == ATTACHMENTS_KEY else name
            return CurrentCheck(False, f"{what} changed since the backup (its fingerprint differs)")
    return CurrentCheck(True, "the source is unchanged: every table and file has the fingerprint its manifest records")
