"""The assess step: read-only assessment of a site, recorded and reported.

A step takes the `App` (inventory, engines, control store, ledger) and a site
id, runs the stage package's logic inside `stage_run`, writes its report and
returns a typed result (core.results). CLI commands print it; flow tasks turn
it into Prefect artifacts. Neither holds stage logic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from extract.assessment import AssessmentSummary as AssessmentSummary  # re-exported: part of AssessResult
from extract.assessment import assess_site
from extract.assessment_report import write_assessment_report
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import UnreachableError
from ts24_migrate.core.report_paths import PathNames
from ts24_migrate.core.results import StageResult
from ts24_migrate.core.stage_runs import stage_run
from ts24_migrate.runs.app import App

from .latest import updates_latest
from .server_check import check_legacy_server

Progress = Callable[[str, int, int], None]


class AssessedTable(StageResult):
    rows: int
    role: str  # mapped | system | unmapped
    primary_key: list[str]


class AssessResult(StageResult):
    run_id: str
    summary: AssessmentSummary
    server: dict[str, Any]  # ServerIdentity.to_dict(): who answered
    server_moved_from: dict[str, Any] | None  # the server assessed before, when --server-moved accepted another
    tables: dict[str, AssessedTable]
    reports: dict[str, str]  # json, html (and md): their paths

    @property
    def report_html(self) -> str:
        return self.reports["html"]


@updates_latest
def assess_step(
    app: App,
    site_id: str,
    *,
    progress: Progress | None = None,
    parent_run_id: str | None = None,
    server_moved: bool = False,
) -> AssessResult:
    """Assess a site; `server_moved` accepts a legacy server other than the one assessed before."""
    site = app.site(site_id)
    legacy = app.legacy_engine(site)
    attachments = app.inventory.attachments_path(site)
    if attachments is not None and not attachments.is_dir():
        raise UnreachableError(f"attachment folder {attachments} does not exist or is not a folder")
    with stage_run(
        app.control_store,
        app.ledger(site_id),
        site_id,
        "assess",
        success_state=SiteState.ASSESSED,
        parent_run_id=parent_run_id,
    ) as run:
        server = check_legacy_server(app, site_id, run, server_moved=server_moved)
        with legacy.connect() as conn:
            assessment = assess_site(
                conn,
                site_id=site_id,
                cutover=site.cutover,
                progress=progress,
                server=server,
                attachments_dir=attachments,
            )
        paths = write_assessment_report(
            assessment, app.reports_dir(site_id) / run.run_id, names=PathNames.for_inventory(app.inventory)
        )
        summary = assessment.summary()
        tables = {t.name: AssessedTable(rows=t.rows, role=t.role, primary_key=t.primary_key) for t in assessment.tables}
        for name, figures in tables.items():
            app.control_store.record_table(site_id, run.run_id, name, figures)
        run.figures.update(summary.to_dict())
        run.figures["report"] = str(paths["html"])
        moved_from = run.figures.get("server_moved_from")  # check_legacy_server's own record
    return AssessResult(
        run_id=run.run_id,
        summary=summary,
        server=assessment.server.to_dict(),
        server_moved_from=moved_from,
        tables=tables,
        reports={k: str(v) for k, v in paths.items()},
    )
