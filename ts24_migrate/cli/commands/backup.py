"""`ts24-migrate backup ...`: encrypted backups of a site, their verification and restore check.

The step functions (`backup_step`, `verify_step`, `restore_step`) run the
backups package inside a stage run (control store + ledger) and return a
typed result (runs.backup); the commands below only print it, and a flow task
can call the same steps.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ts24_migrate.core.errors import VerificationError
from ts24_migrate.core.labels import ATTACHMENT_FINDINGS, NUL_TEXT_LABEL, finding_line, object_counts_text
from ts24_migrate.runs.app import App, pass_app

from .outcome import stage_outcome
from .progress import table_progress
from .restore_common import print_problems, restore_options, restored_lines, scratch_url
from .slots import command_slots

if TYPE_CHECKING:  # the backup steps load the stage packages: only when a command runs
    from ts24_migrate.runs.backup import BackupCreated, BackupRepaired, BackupVerified

Progress = Callable[[str, int, int], None]


def _megabytes(size: int | None) -> str:
    return f"{(size or 0) / 1_000_000:.1f} MB"


class _BackupGroup(click.Group):
    """`backup SITE` is short for `backup create SITE`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["create", *args]
        return super().parse_args(ctx, args)


@click.group("backup", cls=_BackupGroup)
def backup() -> None:
    """Encrypted, signed backups of a site: create, list, verify, repair, restore.

    `backup SITE` is short for `backup create SITE`.

    \b
    Example:
      ts24-migrate -i sites.yaml backup hn-01
      ts24-migrate -i sites.yaml backup verify hn-01 --identity keys/alice.age-identity
    """


@backup.command("create")
@click.argument("site_id", metavar="SITE")
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=50_000,
    show_default=True,
    help="Rows per part: memory is bounded by this, not by the table size.",
)
@pass_app
def create(app: App, site_id: str, chunk_rows: int) -> None:
    """Extract every table and the attachment folder of SITE into parts encrypted to the site's
    backup_recipients, with a manifest signed by the inventory's signing key.

    An interrupted backup is resumed by running the same command again. Writes
    BACKUP_DIR/SITE/BACKUP_ID/; unencrypted data never touches the disk.

    \b
    Example:
      ts24-migrate -i sites.yaml backup hn-01
      ts24-migrate -i sites.yaml --json backup create hn-01 --chunk-rows 20000
    """
    from ts24_migrate.runs.backup import backup_step

    with stage_outcome(app, site_id) as outcome:
        with command_slots(app, site_id, target=False), table_progress(app, "backing up") as progress:
            result = backup_step(app, site_id, chunk_rows=chunk_rows, progress=progress)
        outcome.emit(result, _created_lines(site_id, result))


def _created_lines(site_id: str, result: BackupCreated) -> str:
    from ts24_migrate.runs.backup import object_figures

    lines = [
        f"site {site_id}: backup {result.backup_id}"
        + (" (resumed)" if result.resumed else "")
        + (f" reused: {result.reuse_note}" if result.reused else ""),
        f"  {result.tables} tables, {result.rows} rows, {result.parts} parts, "
        f"{_megabytes(result.ciphertext_bytes)} encrypted",
    ]
    found = object_counts_text(object_figures(result.object_items))
    lines.append(
        f"  views, triggers, procedures, sequences: {found}"
        + (" (definitions in the encrypted part parts/@objects)" if result.object_items else "")
    )
    if result.attachment_files is not None:
        # Worded and counted as the manifest, the assessment and the auditor report say it.
        findings = result.attachment_findings or {}
        lines.append(f"  attachments: {result.attachment_files} files backed up")
        lines += [f"    {finding_line(key, findings[key])}" for key in ATTACHMENT_FINDINGS if findings.get(key)]
    for missing in result.missing_files[:20]:
        lines.append(f"    missing: {missing['path']} ({missing['table']} {missing['key']})")
    for table, column, rows in result.nul_text:
        lines.append(f"  {NUL_TEXT_LABEL}: {table}.{column}, {rows} rows")
    lines += repair_lines(result.repairs)
    lines += [f"  warning: {w}" for w in result.warnings]
    lines.append(f"  manifest fingerprint: {result.manifest_fingerprint}")
    lines.append(f"  folder: {result.backup_dir}")
    return "\n".join(lines)


def repair_lines(repairs: list[dict]) -> list[str]:
    """One line per damaged part a resumed backup found: what was wrong, where it went, what replaced it."""
    lines = []
    for repair in repairs:
        where = f"moved to {repair['quarantined_as']}" if repair["quarantined_as"] else "nothing to move aside"
        lines.append(
            f"  repaired: {repair['label']} ({repair['part']}) was damaged ({repair['problem']}): "
            f"{where}; {repair['action']}"
        )
    return lines


@backup.command("repair")
@click.argument("site_id", metavar="SITE")
@click.option("--backup", "backup_id", required=True, help="The complete backup whose verification failed.")
@pass_app
def repair_command(app: App, site_id: str, backup_id: str) -> None:
    """Repair a complete backup of SITE whose parts are damaged or missing: a NEW backup keeps its
    intact parts (hard links) and reads the damaged ones again from the source; its manifest,
    signed anew, names the backup it repairs and every repair. The damaged backup stays as it is
    (backups are write-once). Refused if its manifest signature does not verify (exit 1). An
    interrupted repair is resumed by running the same command again.

    \b
    Example:
      ts24-migrate -i sites.yaml backup verify hn-01        # exit 1: a part is damaged
      ts24-migrate -i sites.yaml backup repair hn-01 --backup 20250701T020000.000000Z-1a2b3c
    """
    from ts24_migrate.runs.backup import repair_step

    with stage_outcome(app, site_id) as outcome:
        with table_progress(app, "repairing") as progress:
            result = repair_step(app, site_id, backup_id=backup_id, progress=progress)
        outcome.emit(result, _repaired_lines(site_id, result))


def _repaired_lines(site_id: str, result: BackupRepaired) -> str:
    lines = [
        f"site {site_id}: backup {result.backup_id} repairs backup {result.repair_of}",
        f"  {result.tables} tables, {result.rows} rows, {result.parts} parts, "
        f"{_megabytes(result.ciphertext_bytes)} encrypted",
    ]
    lines += repair_lines(result.repairs)
    lines += [f"  warning: {w}" for w in result.warnings]
    lines.append(f"  manifest fingerprint: {result.manifest_fingerprint}")
    lines.append(f"  folder: {result.backup_dir}")
    return "\n".join(lines)


@backup.command("list")
@click.argument("site_id", metavar="SITE")
@pass_app
def list_command(app: App, site_id: str) -> None:
    """List the backups of SITE, oldest first, with their status and figures.

    Status: incomplete (a killed backup: `backup create` resumes it), damaged (its manifest is
    unreadable), verify-failed (its latest verification found a problem: see `backup verify`),
    verified (decrypted and recounted by a custodian), checked (signature and ciphertext hashes
    checked without a key), complete (never verified).

    \b
    Example:
      ts24-migrate -i sites.yaml backup list hn-01
      ts24-migrate -i sites.yaml --json backup list hn-01
    """
    from ts24_migrate.runs.backup import listed_backups
    from ts24_migrate.runs.site_life import shown_inventory

    rows = listed_backups(app, site_id)
    lines = [f"{'BACKUP':<31} {'STATUS':<13} {'ROWS':>10} {'PARTS':>6} {'SIZE':>10}  MANIFEST FINGERPRINT"]
    for row in rows:
        lines.append(
            f"{row['backup_id']:<31} {row['status']:<13} {row.get('rows') or '':>10} "
            f"{row.get('parts') or '':>6} {_megabytes(row.get('ciphertext_bytes')):>10}  "
            f"{row.get('manifest_fingerprint') or row.get('error') or ''}"
        )
    if any(row["status"] == "incomplete" for row in rows):
        lines.append(
            f"incomplete: interrupted, resumable: `ts24-migrate -i {shown_inventory(app.inventory_path)} backup {site_id}` "
            f"resumes it"
        )
    for row in rows:
        if row["status"] == "verify-failed":
            lines.append(
                f"verify-failed: its latest verification found it damaged: `ts24-migrate -i "
                f"{shown_inventory(app.inventory_path)} backup repair {site_id} --backup {row['backup_id']}` "
                f"makes a repaired copy"
            )
    if not rows:
        lines = [f"site {site_id} has no backups under {app.inventory.backup_path / site_id}"]
    app.emit({"site": site_id, "backups": rows}, "\n".join(lines))


@backup.command("verify")
@click.argument("site_id", metavar="SITE")
@click.option("--backup", "backup_id", help="Backup id [default: the latest complete backup].")
@click.option(
    "--identity",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A custodian's age identity file: decrypt every part and recount its rows.",
)
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Signing public key to trust [default: the .pub next to the inventory's signing_key].",
)
@pass_app
def verify_command(
    app: App, site_id: str, backup_id: str | None, identity: Path | None, public_key: Path | None
) -> None:
    """Verify a backup of SITE. Without --identity: the manifest signature and the SHA-256 of every
    encrypted part. With --identity: also decrypt every part (in memory) and check plaintext
    hashes, schemas, row counts and fingerprints. Exit code 1 on any problem.

    \b
    Example:
      ts24-migrate -i sites.yaml backup verify hn-01
      ts24-migrate -i sites.yaml backup verify hn-01 --identity keys/alice.age-identity
    """
    from ts24_migrate.runs.backup import verify_step

    with stage_outcome(app, site_id) as outcome:
        with table_progress(app, "verifying") as progress:
            try:
                result = verify_step(
                    app, site_id, backup_id=backup_id, identity=identity, public_key=public_key, progress=progress
                )
            except VerificationError as exc:
                print_problems(exc)
                raise
        outcome.emit(result, _verified_text(site_id, result), verdict="PASSED")


def _verified_text(site_id: str, result: BackupVerified) -> str:
    return (
        f"backup {result.backup_id} of site {site_id}: OK ({result.mode}): "
        f"{result.parts_checked} parts, {_megabytes(result.ciphertext_bytes)}"
        + (
            f", {result.rows_checked} rows and {result.files_checked} files recounted, "
            f"{result.objects_checked} object definitions held against their fingerprints"
            if result.mode == "decrypted"
            else ""
        )
        + f"\n  manifest fingerprint: {result.manifest_fingerprint}"
        + "".join(f"\n  warning: {w}" for w in result.warnings)
    )


@backup.command("restore")
@click.argument("site_id", metavar="SITE")
@restore_options
@click.option("--backup", "backup_id", help="Backup id [default: the latest complete backup].")
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Signing public key to trust [default: the .pub next to the inventory's signing_key].",
)
@click.option("--no-live", is_flag=True, help="Do not compare with the live legacy database and folder.")
@pass_app
def restore_command(
    app: App,
    site_id: str,
    identity: Path,
    into_sqlite: Path | None,
    into_url_env: str | None,
    files_dir: Path | None,
    backup_id: str | None,
    public_key: Path | None,
    no_live: bool,
) -> None:
    """Restore a backup of SITE into a scratch database and folder, then prove it: every table's
    fingerprint read back from the scratch database, and the folder's from the files, must equal
    the manifest (and the live source, when reachable). Views and triggers of a SQLite backup are
    recreated in a SQLite scratch database and checked against their fingerprints; from another
    engine they are listed as not recreated. Exit code 1 if anything differs.

    \b
    Example:
      ts24-migrate -i sites.yaml backup restore hn-01 --identity keys/alice.age-identity \\
          --into-sqlite /tmp/hn-01-restored.sqlite --files /tmp/hn-01-files
      SCRATCH_URL=postgresql+psycopg://... ts24-migrate -i sites.yaml backup restore hn-01 \\
          --identity keys/alice.age-identity --into-url-env SCRATCH_URL --files /tmp/hn-01-files
    """
    from ts24_migrate.runs.backup import restore_step

    url = scratch_url(into_sqlite, into_url_env)
    with stage_outcome(app, site_id) as outcome:
        with table_progress(app, "restoring") as progress:
            try:
                result = restore_step(
                    app,
                    site_id,
                    identity=identity,
                    into_url=url,
                    files_dir=files_dir,
                    backup_id=backup_id,
                    public_key=public_key,
                    compare_live=not no_live,
                    progress=progress,
                    into_url_env=into_url_env,
                )
            except VerificationError as exc:
                print_problems(exc)
                raise
        lines = [f"backup {result.backup_id} of site {site_id} restored and matches its manifest"]
        lines += restored_lines(result.tables, result.files, result.objects, result.live_note)
        outcome.emit(result, "\n".join(lines), verdict="PASSED")


COMMANDS = [backup]
