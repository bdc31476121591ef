"""Backup steps: extract + encrypt a site (resumable), verify a backup, restore-check it.

Each runs the backups package inside a stage run (control store + ledger) and
returns a typed result (core.results) for the CLI and the migrate-site flow:
its fields are named and ordered as the CLI's --json output shows them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from backups.backup import BackupResult, backup_site
from backups.catalog import find_backup, list_backups
from backups.manifest import BackupManifest, read_manifest
from backups.repair_complete import repair_backup
from backups.restore import restore_backup
from backups.reuse import backup_still_current
from backups.verify import as_identity, verify_backup
from extract.objects import object_counts
from purge.remaining_copies import SCRATCH, scratch_record
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import ConfigError, UnreachableError, UsageError, VerificationError
from ts24_migrate.core.labels import attachment_findings, nul_text_rows
from ts24_migrate.core.results import StageResult
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.signing import load_public_key, public_key_path
from ts24_migrate.core.site_states import skips
from ts24_migrate.core.stage_runs import stage_run
from ts24_migrate.runs.app import App

from .gates import require_assessed, require_backup
from .latest import updates_latest
from .scratch import scratch_output
from .server_check import check_legacy_server
from .site_life import Verification, backup_verification

Progress = Callable[[str, int, int], None]


class BackupSummary(StageResult):
    """The run and the backup's manifest summary (backups.manifest.BackupManifest.summary), in its order."""

    run_id: str
    backup_id: str
    site_id: str
    kind: str | None
    created_at: str | None
    completed_at: str | None
    manifest_fingerprint: str
    tables: int | None
    rows: int | None
    parts: int | None
    ciphertext_bytes: int | None
    attachment_files: int | None  # None: the site has no attachment folder
    objects: int


class BackupCreated(BackupSummary):
    """What backup_step returns (`backup create`, the migration's backup stage)."""

    resumed: bool
    warnings: list[str]
    backup_dir: str
    reused: bool
    reuse_note: str | None
    repairs: list[dict[str, Any]]  # backups.repair: one per damaged part a resumed backup found
    table_figures: dict[str, dict[str, Any]]  # as the control store records them per table
    object_items: list[dict[str, Any]] | None
    objects_note: str | None
    attachment_references: dict[str, Any] | None
    attachment_findings: dict[str, int] | None
    nul_text: list[list[Any]]  # [table, column, rows]
    missing_files: list[dict[str, Any]]
    md5_mismatch: list[dict[str, Any]]


class BackupRepaired(BackupSummary):
    """What repair_step returns (`backup repair`)."""

    repair_of: str
    repairs: list[dict[str, Any]]
    warnings: list[str]
    backup_dir: str
    object_items: list[dict[str, Any]] | None
    objects_note: str | None
    attachment_references: dict[str, Any] | None
    attachment_findings: dict[str, int] | None
    nul_text: list[list[Any]]


class BackupVerified(StageResult):
    """What verify_step returns: the run and backups.verify.VerifyReport.to_json()."""

    run_id: str
    backup_id: str | None  # None: the manifest was unreadable
    site_id: str | None
    backup_dir: str
    manifest_fingerprint: str | None
    mode: str  # decrypted | signature+ciphertext
    ok: bool
    problems: list[str]
    warnings: list[str]
    parts_checked: int
    rows_checked: int
    files_checked: int
    objects_checked: int
    ciphertext_bytes: int


class BackupRestored(StageResult):
    """What restore_step returns: the run, backups.restore.RestoreReport.to_json() and the live comparison's note."""

    run_id: str
    backup_id: str
    manifest_fingerprint: str
    ok: bool
    tables: dict[str, dict[str, Any]]  # name -> rows, fingerprint, matches_live...
    files: dict[str, Any] | None
    objects: dict[str, dict[str, Any]] | None  # None: the backup recorded no objects
    problems: list[str]
    live_note: str | None  # why the live source was not compared


# -- steps (shared with flows) ----------------------------------------------------------------


@updates_latest
def backup_step(
    app: App,
    site_id: str,
    *,
    chunk_rows: int = 50_000,
    progress: Progress | None = None,
    parent_run_id: str | None = None,
    reuse_unchanged: bool = False,
) -> BackupCreated:
    """Extract and back up a site (resuming an interrupted backup); state BACKED_UP on success.

    With `reuse_unchanged` (a migration run again), the latest backup is reused
    instead when it passed its verification and every table and file of the
    source still has its fingerprint: nothing is written but the run's record.
    """
    site = app.site(site_id)
    if not site.backup_recipients:
        raise ConfigError(
            "no backup_recipients: add the custodians' age1... keys",
            path=str(app.inventory.source_path),
            site=site_id,
            field="backup_recipients",
        )
    facts = require_assessed(app, site_id)
    signing_key = app.signing_key
    legacy = app.legacy_engine(site)
    ledger = app.ledger(site_id)
    store = app.control_store
    reuse, reuse_note = None, None
    if reuse_unchanged:
        reuse, reuse_note = _current_backup(app, site_id, facts, chunk_rows)
    with stage_run(
        store, ledger, site_id, "backup", success_state=SiteState.BACKED_UP, parent_run_id=parent_run_id
    ) as run:
        check_legacy_server(app, site_id, run)
        if reuse is not None:
            manifest = read_manifest(reuse)
            result = BackupResult(manifest, resumed=False, warnings=list(manifest.data.get("warnings") or []))
            ledger.append(
                site_id, "backup", "backup.reused", {**result.manifest.summary(), "why": reuse_note}, run_id=run.run_id
            )
        else:
            result = backup_site(
                legacy,
                app.inventory.attachments_path(site),
                app.inventory.backup_path,
                site_id=site_id,
                run_id=run.run_id,
                recipients=list(site.backup_recipients),
                signing_key=signing_key,
                chunk_rows=chunk_rows,
                progress=progress,
                ledger=ledger,
            )
        for name, figures in result.table_figures().items():
            store.record_table(site_id, run.run_id, name, figures)
        summary = {
            **result.manifest.summary(),
            "resumed": result.resumed,
            "warnings": result.warnings,
            "backup_dir": str(result.backup_dir),
            "reused": reuse is not None,
            "reuse_note": reuse_note,
            "repairs": result.repairs,
        }
        run.figures.update({k: v for k, v in summary.items() if k not in ("warnings", "repairs")})
        run.figures.update(warnings=len(result.warnings), repaired=len(result.repairs))
        run.figures["warning_messages"] = list(result.warnings)  # the auditor report lists them
        # What the auditor report shows of the backup beyond tables: from here, never recomputed.
        run.figures.update(backup_findings(result.manifest))
        store.advance_state(site_id, SiteState.EXTRACTED, run.run_id)  # extraction and backup are one stream
    references = (result.manifest.attachments or {}).get("references") or {}
    return BackupCreated(
        run_id=run.run_id,
        **summary,
        table_figures=result.table_figures(),
        **backup_findings(result.manifest),
        missing_files=references.get("missing", []),
        md5_mismatch=references.get("md5_mismatch", []),
    )


def backup_findings(manifest: BackupManifest) -> dict[str, Any]:
    """Objects (names and fingerprints), the attachment folder's findings and NUL text, as recorded."""
    references = (manifest.attachments or {}).get("references")
    objects = manifest.objects
    return {
        "object_items": (objects or {}).get("items") if objects is not None else None,
        "objects_note": (objects or {}).get("note"),
        "attachment_references": references,
        "attachment_findings": (
            {key: count for key, _label, count in attachment_findings(references)} if references is not None else None
        ),
        "nul_text": [list(row) for row in nul_text_rows(manifest.tables)],
    }


def _current_backup(app: App, site_id: str, facts, chunk_rows: int) -> tuple[Path | None, str]:
    """The latest backup, if it passed its verification and still equals the source; and why (not)."""
    backup = facts.backup
    if backup is None:
        return None, "no earlier complete backup"
    if backup.verification not in (Verification.CHECKED, Verification.DECRYPTED):
        return None, f"backup {backup.backup_id} is {backup.verification.value}"
    site = app.site(site_id)
    check = backup_still_current(
        backup.backup_dir,
        app.legacy_engine(site),
        app.inventory.attachments_path(site),
        public_key_b64=trusted_public_key(app, None),
        recipients=list(site.backup_recipients),
        chunk_rows=chunk_rows,
    )
    if not check.current:
        return None, f"backup {backup.backup_id} is not reused: {check.reason}"
    return backup.backup_dir, check.reason


# What `backup list` shows of a complete backup, by its verification (steps.site_life):
# never plain "complete" once its latest check found it damaged.
_LISTED = {
    Verification.NONE: "complete",
    Verification.CHECKED: "checked",
    Verification.DECRYPTED: "verified",
    Verification.DAMAGED: "verify-failed",
}


def listed_backup(store, site_id: str, backup_id: str, status: str) -> tuple[str, dict[str, Any] | None]:
    """The status `backup list` shows and the verify run that decides it (for a complete backup)."""
    if status != "complete":
        return status, None
    verification, run = backup_verification(store, site_id, backup_id)
    decided = (
        None
        if run is None
        else {
            "run_id": run.run_id,
            "outcome": run.outcome,
            "mode": run.figures.get("mode"),
            "finished_at": run.finished_at,
            "error": run.error,
        }
    )
    return _LISTED[verification], decided


@updates_latest
def repair_step(
    app: App, site_id: str, *, backup_id: str, progress: Progress | None = None, parent_run_id: str | None = None
) -> BackupRepaired:
    """A new backup from a damaged complete one: its intact parts kept, its damaged ones read again."""
    site = app.site(site_id)
    signing_key = app.signing_key
    public_key = trusted_public_key(app, None)
    backup_dir = find_backup(app.inventory.backup_path, site_id, backup_id)
    legacy = app.legacy_engine(site)
    ledger = app.ledger(site_id)
    with stage_run(
        app.control_store, ledger, site_id, "backup", success_state=SiteState.BACKED_UP, parent_run_id=parent_run_id
    ) as run:
        check_legacy_server(app, site_id, run)
        result = repair_backup(
            legacy,
            app.inventory.attachments_path(site),
            app.inventory.backup_path,
            site_id=site_id,
            backup_id=backup_dir.name,
            run_id=run.run_id,
            signing_key=signing_key,
            public_key_b64=public_key,
            progress=progress,
            ledger=ledger,
        )
        for name, figures in result.table_figures().items():
            app.control_store.record_table(site_id, run.run_id, name, figures)
        summary = {
            **result.manifest.summary(),
            "repair_of": backup_dir.name,
            "repairs": result.repairs,
            "warnings": result.warnings,
            "backup_dir": str(result.backup_dir),
        }
        run.figures.update({k: v for k, v in summary.items() if k not in ("warnings", "repairs")})
        run.figures.update(warnings=len(result.warnings), repaired=len(result.repairs))
        run.figures["warning_messages"] = list(result.warnings)
        run.figures.update(backup_findings(result.manifest))
    return BackupRepaired(run_id=run.run_id, **summary, **backup_findings(result.manifest))


def trusted_public_key(app: App, public_key: str | Path | None) -> str:
    """The signing public key to check manifests with: given, or the inventory key's .pub file."""
    if public_key is not None:
        return load_public_key(public_key)
    path = app.inventory.signing_key_path
    if path is None:
        raise ConfigError(
            "the inventory has no signing_key: give --public-key FILE",
            path=str(app.inventory.source_path),
            field="signing_key",
        )
    return load_public_key(public_key_path(path))


def _custodian_identity(backup_dir: Path, identity: Path):
    """The identity, read and matched with the backup's recipients before anything is recorded.

    A key that is not a recipient is the operator's mistake, not a verdict on the
    backup: a usage error (exit 2), and no verification run is recorded.
    """
    key = as_identity(identity)
    try:
        recipients = read_manifest(backup_dir).recipients
    except VerificationError:
        return key  # an unreadable manifest is the backup's problem: the verification reports it
    if str(key.to_public()) not in recipients:
        raise UsageError(
            f"wrong key: the identity {identity} is not one of the {len(recipients)} recipient(s) of "
            f"backup {backup_dir.name}, so it cannot decrypt it; use the age identity of a custodian "
            f"listed in the site's backup_recipients (nothing was recorded)"
        )
    return key


@updates_latest
def verify_step(
    app: App,
    site_id: str,
    *,
    backup_id: str | None = None,
    identity: Path | None = None,
    public_key: str | Path | None = None,
    progress: Progress | None = None,
    parent_run_id: str | None = None,
) -> BackupVerified:
    """Verify a backup; with a custodian identity a passing check moves BACKED_UP to BACKUP_VERIFIED.

    A failed check raises VerificationError listing every problem (its `problems`).
    """
    app.site(site_id)
    if backup_id is None:
        require_backup(app, site_id, "backup verify")
    backup_dir = find_backup(app.inventory.backup_path, site_id, backup_id)
    key = trusted_public_key(app, public_key)
    custodian = _custodian_identity(backup_dir, identity) if identity is not None else None
    ledger = app.ledger(site_id)
    state = SiteState.BACKUP_VERIFIED if identity is not None else None
    if state is not None and skips(app.control_store.state(site_id), state):
        # A custodian's own control store, which never saw the backup run (require_backup): the
        # verification is recorded, but it is no step of a life this store has not seen.
        state = None
    with stage_run(
        app.control_store, ledger, site_id, "verify-backup", success_state=state, parent_run_id=parent_run_id
    ) as run:
        report = verify_backup(backup_dir, public_key_b64=key, identity=custodian, progress=progress)
        figures = {k: v for k, v in report.to_json().items() if k not in ("problems", "warnings")}
        figures["backup_id"] = figures["backup_id"] or backup_dir.name  # an unreadable manifest names none
        figures["problems"] = len(report.problems)
        run.figures.update(figures)
        ledger.append(
            site_id,
            "backup",
            "backup.verified" if report.ok else "backup.verification_failed",
            figures,
            run_id=run.run_id,
        )
        if not report.ok:
            try:
                report.raise_if_failed()
            except VerificationError as exc:
                raise VerificationError(
                    f"{exc}; {repair_hint(site_id, backup_dir.name)}", problems=report.problems
                ) from None
    return BackupVerified(run_id=run.run_id, **report.to_json())


def repair_hint(site_id: str, backup_id: str) -> str:
    """How to get a good backup again, printed under a failed verification."""
    return (
        f"to repair: `ts24-migrate backup repair {site_id} --backup {backup_id}` (a new backup of its intact "
        f"parts and the damaged ones read again) or a new full backup (`ts24-migrate backup create {site_id}`)"
    )


@updates_latest
def restore_step(
    app: App,
    site_id: str,
    *,
    identity: Path,
    into_url: Secret,
    files_dir: Path | None,
    backup_id: str | None = None,
    public_key: str | Path | None = None,
    compare_live: bool = True,
    progress: Progress | None = None,
    parent_run_id: str | None = None,
    into_url_env: str | None = None,
) -> BackupRestored:
    """Restore a backup into a scratch database and folder and compare fingerprints (manifest, live).

    What a failed or differing restore wrote is deleted (steps.scratch): nothing half-made stays.
    The scratch copy is recorded before anything is written into it (purge.remaining_copies), so that
    it is destroyed with the site even if this run is killed; `into_url_env` names the variable that
    held a server scratch database's URL.
    """
    site = app.site(site_id)
    if backup_id is None:
        require_backup(app, site_id, "backup restore")
    backup_dir = find_backup(app.inventory.backup_path, site_id, backup_id)
    key = trusted_public_key(app, public_key)
    live, live_files, live_note = None, None, None
    if compare_live:
        try:
            live = app.legacy_engine(site)
        except (UnreachableError, ConfigError) as exc:  # e.g. an auditor's machine without the secret
            live_note = f"live source not compared: {exc}"
        attachments = app.inventory.attachments_path(site)
        if attachments is not None and attachments.is_dir():
            live_files = attachments
    ledger = app.ledger(site_id)
    tables = _manifest_tables(backup_dir)
    with scratch_output(into_url, files_dir, tables=tables) as scratch:
        with stage_run(app.control_store, ledger, site_id, "restore-check", parent_run_id=parent_run_id) as run:
            record_scratch(
                app.control_store, run, scratch_record(into_url, files_dir, tables=tables, url_env=into_url_env)
            )
            report = restore_backup(
                backup_dir,
                identity,
                scratch.engine,
                scratch.files_dir,
                public_key_b64=key,
                live=live,
                live_attachments=live_files,
                progress=progress,
                ledger=ledger,
                run_id=run.run_id,
            )
            run.figures.update(
                {
                    "backup_id": report.backup_id,
                    "manifest_fingerprint": report.manifest_fingerprint,
                    "ok": report.ok,
                    "tables": len(report.tables),
                    "problems": len(report.problems),
                }
            )
            if not report.ok:
                raise VerificationError(
                    f"restore of backup {report.backup_id} does not match: "
                    f"{report.problems[0]}"
                    + (f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""),
                    problems=report.problems,
                )
    return BackupRestored(run_id=run.run_id, **report.to_json(), live_note=live_note)


def record_scratch(store, run, record: dict[str, Any]) -> None:
    """Name the scratch copy a restore run is about to make, durably, before it makes it."""
    run.figures[SCRATCH] = record
    store.record_figures(run.run_id, run.figures)


def _manifest_tables(backup_dir: Path) -> list[str]:
    try:
        return list(read_manifest(backup_dir).tables)
    except VerificationError:
        return []  # the restore itself reports the unreadable manifest; it creates no table then


# -- commands ---------------------------------------------------------------------------------


def listed_backups(app: App, site_id: str) -> list[dict[str, Any]]:
    """`backup list`: each backup of the site in its folder, with the status its last verification decides."""
    app.site(site_id)
    store = app.control_store
    rows = [
        {"backup_id": e.backup_id, "status": e.status, "path": str(e.path), **e.summary, "verification": None}
        for e in list_backups(app.inventory.backup_path, site_id)
    ]
    for row in rows:
        row["status"], row["verification"] = listed_backup(store, site_id, row["backup_id"], row["status"])
    return rows


def object_figures(items: list[dict[str, Any]] | None) -> dict[str, int]:
    """How many views, triggers, procedures and sequences a backup's @objects part holds, by kind."""
    return object_counts(items or [])
