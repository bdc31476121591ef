"""Backup steps: extract + encrypt a site (resumable), verify a backup, restore-check it.

Each runs the backups package inside a stage run (control store + ledger) and
returns a JSON-able summary for the CLI and the migrate-site flow.
"""

from __future__ import annotations


from pathlib import Path
from typing import Any, Callable


from backups.backup import backup_site
from backups.catalog import find_backup
from backups.manifest import BackupManifest
from backups.keys import load_public_key, public_key_path
from backups.restore import restore_backup
from backups.verify import verify_backup

from ..app import App
from ..control_store import SiteState
from ..labels import attachment_findings, nul_text_rows
from ..db import check_reachable, store_engine
from ..errors import ConfigError, UnreachableError, VerificationError
from ..secrets import Secret
from ..stage_runs import stage_run
from .server_check import check_legacy_server

Progress = Callable[[str, int, int], None]



# -- steps (shared with flows) ----------------------------------------------------------------

def backup_step(app: App, site_id: str, *, chunk_rows: int = 50_000, progress: Progress | None = None,
                parent_run_id: str | None = None) -> dict[str, Any]:
    """Extract and back up a site (resuming an interrupted backup); state BACKED_UP on success."""
    site = app.site(site_id)
    if not site.backup_recipients:
        raise ConfigError("no backup_recipients: add the custodians' age1... keys",
                          path=str(app.inventory.source_path), site=site_id, field="backup_recipients")
    signing_key = app.signing_key
    legacy = app.legacy_engine(site)
    ledger = app.ledger(site_id)
    store = app.control_store
    with stage_run(store, ledger, site_id, "backup", success_state=SiteState.BACKED_UP,
                   parent_run_id=parent_run_id) as run:
        check_legacy_server(app, site_id, run)
        result = backup_site(legacy, app.inventory.attachments_path(site), app.inventory.backup_path,
                             site_id=site_id, run_id=run.run_id, recipients=list(site.backup_recipients),
                             signing_key=signing_key, chunk_rows=chunk_rows, progress=progress, ledger=ledger)
        for name, figures in result.table_figures().items():
            store.record_table(site_id, run.run_id, name, figures)
        summary = {**result.manifest.summary(), "resumed": result.resumed, "warnings": result.warnings,
                   "backup_dir": str(result.backup_dir)}
        run.figures.update({k: v for k, v in summary.items() if k != "warnings"})
        run.figures["warnings"] = len(result.warnings)
        run.figures["warning_messages"] = list(result.warnings)  # the auditor report lists them
        # What the auditor report shows of the backup beyond tables: from here, never recomputed.
        run.figures.update(backup_findings(result.manifest))
        if list(SiteState).index(store.state(site_id)) < list(SiteState).index(SiteState.EXTRACTED):
            store.set_state(site_id, SiteState.EXTRACTED, run.run_id)  # extraction and backup are one stream
    references = (result.manifest.attachments or {}).get("references") or {}
    return {"run_id": run.run_id, **summary, "table_figures": result.table_figures(),
            **backup_findings(result.manifest),
            "missing_files": references.get("missing", []), "md5_mismatch": references.get("md5_mismatch", [])}


def backup_findings(manifest: BackupManifest) -> dict[str, Any]:
    """Objects (names and fingerprints), the attachment folder's findings and NUL text, as recorded."""
    references = (manifest.attachments or {}).get("references")
    objects = manifest.objects
    return {
        "object_items": (objects or {}).get("items") if objects is not None else None,
        "objects_note": (objects or {}).get("note"),
        "attachment_references": references,
        "attachment_findings": ({key: count for key, _label, count in attachment_findings(references)}
                                if references is not None else None),
        "nul_text": [list(row) for row in nul_text_rows(manifest.tables)],
    }


def trusted_public_key(app: App, public_key: str | Path | None) -> str:
    """The signing public key to check manifests with: given, or the inventory key's .pub file."""
    if public_key is not None:
        return load_public_key(public_key)
    path = app.inventory.signing_key_path
    if path is None:
        raise ConfigError("the inventory has no signing_key: give --public-key FILE",
                          path=str(app.inventory.source_path), field="signing_key")
    return load_public_key(public_key_path(path))


def verify_step(app: App, site_id: str, *, backup_id: str | None = None, identity: Path | None = None,
                public_key: str | Path | None = None, progress: Progress | None = None,
                parent_run_id: str | None = None) -> dict[str, Any]:
    """Verify a backup; with a custodian identity a passing check moves BACKED_UP to BACKUP_VERIFIED.

    A failed check raises VerificationError whose `report` holds every problem.
    """
    app.site(site_id)
    backup_dir = find_backup(app.inventory.backup_path, site_id, backup_id)
    key = trusted_public_key(app, public_key)
    ledger = app.ledger(site_id)
    state = SiteState.BACKUP_VERIFIED if identity is not None else None
    with stage_run(app.control_store, ledger, site_id, "verify-backup", success_state=state,
                   parent_run_id=parent_run_id) as run:
        report = verify_backup(backup_dir, public_key_b64=key, identity=identity, progress=progress)
        figures = {k: v for k, v in report.to_json().items() if k not in ("problems", "warnings")}
        figures["problems"] = len(report.problems)
        run.figures.update(figures)
        ledger.append(site_id, "backup", "backup.verified" if report.ok else "backup.verification_failed",
                      figures, run_id=run.run_id)
        if not report.ok:
            try:
                report.raise_if_failed()
            except VerificationError as exc:
                exc.report = report  # type: ignore[attr-defined]
                raise
    return {"run_id": run.run_id, **report.to_json()}


def restore_step(app: App, site_id: str, *, identity: Path, into_url: Secret, files_dir: Path | None,
                 backup_id: str | None = None, public_key: str | Path | None = None, compare_live: bool = True,
                 progress: Progress | None = None, parent_run_id: str | None = None) -> dict[str, Any]:
    """Restore a backup into a scratch database and folder and compare fingerprints (manifest, live)."""
    site = app.site(site_id)
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
    into = store_engine(into_url)
    check_reachable(into, what="scratch database", url=into_url)
    ledger = app.ledger(site_id)
    try:
        with stage_run(app.control_store, ledger, site_id, "restore-check", parent_run_id=parent_run_id) as run:
            report = restore_backup(backup_dir, identity, into, files_dir, public_key_b64=key, live=live,
                                    live_attachments=live_files, progress=progress, ledger=ledger,
                                    run_id=run.run_id)
            run.figures.update({"backup_id": report.backup_id, "manifest_fingerprint": report.manifest_fingerprint,
                                "ok": report.ok, "tables": len(report.tables), "problems": len(report.problems)})
            if not report.ok:
                exc = VerificationError(f"restore of backup {report.backup_id} does not match: "
                                        f"{report.problems[0]}" + (f" (and {len(report.problems) - 1} more)"
                                                                    if len(report.problems) > 1 else ""))
                exc.report = report  # type: ignore[attr-defined]
                raise exc
    finally:
        into.dispose()
    return {"run_id": run.run_id, **report.to_json(), "live_note": live_note}


# -- commands ---------------------------------------------------------------------------------
