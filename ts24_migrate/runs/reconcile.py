"""Reconcile steps: one reconcile run (increment, carry-over, report), chain verify and restore.

Each returns a typed result (core.results) whose fields are named and ordered
as the CLI's --json output shows them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backups.chain import load_chain, restore_chain, verify_chain
from purge.remaining_copies import scratch_record
from reconcile.burndown import BurndownPoint
from reconcile.report import write_reconciliation_report
from reconcile.site_reconcile import reconcile_site
from reconcile.state import ReconcileState
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import ConfigError, UnreachableError, VerificationError
from ts24_migrate.core.report_paths import PathNames
from ts24_migrate.core.results import StageResult
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.stage_runs import stage_run
from ts24_migrate.runs.app import App

from .backup import record_scratch, trusted_public_key
from .gates import refuse, require_validated
from .latest import updates_latest
from .scratch import scratch_output
from .server_check import check_legacy_server

Progress = Callable[[str, int, int], None]
STAGE = "reconcile"


class DrainCriterion(StageResult):
    """One criterion of the drained verdict (reconcile.site_reconcile.Criterion)."""

    name: str
    holds: bool
    detail: str


class ReconcileResult(StageResult):
    """What reconcile_step returns: the run, reconcile.site_reconcile.Reconciliation.summary() (what the run
    records as its figures) in its order, then the criteria, the carry-over per table, the reports and warnings."""

    run_id: str
    site_id: str
    mode: str  # baseline | delta | sweep
    as_of: str  # the legacy clock, "YYYY-MM-DD HH:MM:SS"
    drained: bool
    in_flight: int | None
    in_flight_by_status: dict[str, int]
    overdue: int | None
    received_after_cutover: int
    drift: int
    likely_duplicates: int
    must_reregister: int
    registered: int
    not_registered: int
    rows_changed: int
    carried_over: int
    blocked: int
    increment: str | None  # the increment's backup id; None: nothing new
    manifest_fingerprint: str | None
    chain_ok: bool
    completes_run: str | None  # the killed run this one finishes
    forecast_drain_date: str | None
    seconds: float
    criteria: list[DrainCriterion]
    carry_over: dict[str, dict[str, int]]  # legacy table -> carried, blocked...
    reports: dict[str, str]  # html, json (and outreach_csv): their paths
    warnings: list[str]

    def failed_criteria(self) -> list[str]:
        return [c.name for c in self.criteria if not c.holds]


class ChainVerified(StageResult):
    """What verify_chain_step returns: the run and backups.chain.ChainReport.to_json()."""

    run_id: str
    site_id: str
    ok: bool
    backups: list[dict[str, Any]]  # backup_id, kind, manifest_fingerprint, ok, rows: oldest first
    problems: list[str]
    parts_checked: int


class ChainRestored(StageResult):
    """What restore_chain_step returns: the run, backups.chain.ChainRestoreReport.to_json() and the live
    comparison's note."""

    run_id: str
    site_id: str
    ok: bool
    backups: list[str]  # the backup ids restored, oldest first
    tables: dict[str, dict[str, Any]]
    files: dict[str, Any] | None
    problems: list[str]
    live_note: str | None  # why the live source was not compared


def burndown_history(app: App, site_id: str) -> list[BurndownPoint]:
    """(as_of, in_flight) of every successful reconcile run of the site, oldest first."""
    points = []
    for run in app.control_store.runs(site_id, STAGE):
        figures = run.figures
        if run.outcome == "succeeded" and figures.get("as_of") and figures.get("in_flight") is not None:
            points.append(BurndownPoint(dt.datetime.fromisoformat(figures["as_of"]), int(figures["in_flight"])))
    return sorted(points, key=lambda p: p.as_of)


@updates_latest
def reconcile_step(
    app: App,
    site_id: str,
    *,
    chunk_rows: int = 50_000,
    sweep: bool | None = None,
    as_of: dt.datetime | None = None,
    progress: Progress | None = None,
    parent_run_id: str | None = None,
) -> ReconcileResult:
    """One reconciliation of a site; state RECONCILING, or DRAINED when every criterion holds."""
    site = app.site(site_id)
    if not site.backup_recipients:
        raise ConfigError(
            "no backup_recipients: increments are encrypted like full backups",
            path=str(app.inventory.source_path),
            site=site_id,
            field="backup_recipients",
        )
    require_validated(app, site_id)
    signing_key = app.signing_key
    public_key = trusted_public_key(app, None)
    legacy = app.legacy_engine(site)
    target = app.current_target()
    store = app.control_store
    ledger = app.ledger(site_id)
    history = burndown_history(app, site_id)
    with stage_run(
        store, ledger, site_id, STAGE, success_state=SiteState.RECONCILING, parent_run_id=parent_run_id
    ) as run:
        check_legacy_server(app, site_id, run)
        result = reconcile_site(
            legacy,
            target,
            ReconcileState(store.engine),
            site_id=site_id,
            run_id=run.run_id,
            cutover=site.cutover,
            attachments_dir=app.inventory.attachments_path(site),
            backup_root=app.inventory.backup_path,
            recipients=list(site.backup_recipients),
            signing_key=signing_key,
            public_key_b64=public_key,
            chunk_rows=chunk_rows,
            sweep=sweep,
            as_of=as_of,
            history=history,
            progress=progress,
        )
        if result.increment is not None:  # first: a run killed before this line is finished by the next
            ledger.append(
                site_id,
                STAGE,
                "backup.increment_created",
                {
                    **result.increment,
                    "parent": result.chain.backups[-2]["backup_id"] if len(result.chain.backups) > 1 else None,
                },
                run_id=run.run_id,
            )
        paths = write_reconciliation_report(
            result,
            app.reports_dir(site_id) / run.run_id,
            names=PathNames.for_inventory(app.inventory),
            masking=app.inventory.masking,
        )
        for name, figures in result.tables.items():
            store.record_table(site_id, run.run_id, name, {k: v for k, v in figures.items() if k != "changed_keys"})
        summary = result.summary()
        run.figures.update(summary)
        run.figures["report"] = str(paths["html"])
        if result.drained:
            run.success_state = SiteState.DRAINED
    return ReconcileResult(
        run_id=run.run_id,
        site_id=site_id,
        **summary,
        criteria=[DrainCriterion(**c.to_dict()) for c in result.criteria],
        carry_over=result.carried.tables,
        reports={k: str(v) for k, v in paths.items()},
        warnings=result.warnings,
    )


def _chain_links(app: App, site_id: str, stage: str):
    links = ReconcileState(app.control_store.engine).chain(site_id)
    if not links:
        raise refuse(app, site_id, stage, "the site has no backup chain yet (its first reconciliation starts it)")
    return links


@updates_latest
def verify_chain_step(
    app: App, site_id: str, *, public_key: str | Path | None = None, parent_run_id: str | None = None
) -> ChainVerified:
    """Verify the site's whole backup chain without a key: signatures, links, every part's hash."""
    app.site(site_id)
    key = trusted_public_key(app, public_key)
    links = _chain_links(app, site_id, "reconcile verify-chain")
    with stage_run(app.control_store, app.ledger(site_id), site_id, "verify-chain", parent_run_id=parent_run_id) as run:
        report = verify_chain(
            load_chain(app.inventory.backup_path, site_id, links), public_key_b64=key, links=links, ciphertext="all"
        )
        run.figures.update(
            {
                "ok": report.ok,
                "backups": len(report.backups),
                "parts_checked": report.parts_checked,
                "problems": len(report.problems),
            }
        )
        if not report.ok:
            raise VerificationError(
                f"the backup chain of site {site_id} does not verify: {report.problems[0]}", problems=report.problems
            )
    return ChainVerified(run_id=run.run_id, site_id=site_id, **report.to_json())


@updates_latest
def restore_chain_step(
    app: App,
    site_id: str,
    *,
    identity: Path,
    into_url: Secret,
    files_dir: Path | None,
    public_key: str | Path | None = None,
    compare_live: bool = True,
    parent_run_id: str | None = None,
    into_url_env: str | None = None,
) -> ChainRestored:
    """Restore the full backup and every increment into a scratch database and folder; compare. The
    scratch copy is recorded first (see backup.restore_step)."""
    site = app.site(site_id)
    key = trusted_public_key(app, public_key)
    links = _chain_links(app, site_id, "reconcile restore-chain")
    manifests = load_chain(app.inventory.backup_path, site_id, links)
    live, live_files, note = None, None, None
    if compare_live:
        try:
            live = app.legacy_engine(site)
            attachments = app.inventory.attachments_path(site)
            live_files = attachments if attachments is not None and attachments.is_dir() else None
        except (UnreachableError, ConfigError) as exc:
            note = f"live source not compared: {exc}"
    tables = {name for manifest in manifests for name in manifest.tables}
    with scratch_output(into_url, files_dir, tables=tables) as scratch:
        with stage_run(
            app.control_store, app.ledger(site_id), site_id, "restore-chain", parent_run_id=parent_run_id
        ) as run:
            record_scratch(
                app.control_store, run, scratch_record(into_url, files_dir, tables=tables, url_env=into_url_env)
            )
            report = restore_chain(
                manifests,
                identity,
                scratch.engine,
                scratch.files_dir,
                public_key_b64=key,
                live=live,
                live_attachments=live_files,
            )
            run.figures.update({"ok": report.ok, "backups": len(report.backups), "problems": len(report.problems)})
            if not report.ok:
                raise VerificationError(
                    f"the restored chain of site {site_id} does not match: {report.problems[0]}",
                    problems=report.problems,
                )
    return ChainRestored(run_id=run.run_id, site_id=site_id, **report.to_json(), live_note=note)


# -- commands ---------------------------------------------------------------------------------
