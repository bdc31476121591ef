"""The assess step: read-only assessment of a site, recorded and reported.

A step takes the `App` (inventory, engines, control store, ledger) and a site
id, runs the stage package's logic inside `stage_run`, writes its report and
returns a JSON-able summary. CLI commands print the summary; flow tasks turn
it into Prefect artifacts. Neither holds stage logic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from extract.assessment import assess_site
from extract.assessment_report import write_assessment_report
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import UnreachableError
from ts24_migrate.core.report_paths import PathNames
from ts24_migrate.core.stage_runs import stage_run
from ts24_migrate.runs.app import App

from .latest import updates_latest
from .server_check import check_legacy_server

Progress = Callable[[str, int, int], None]


@updates_latest
def assess_step(
    app: App,
    site_id: str,
    *,
    progress: Progress | None = None,
    parent_run_id: str | None = None,
    server_moved: bool = False,
) -> dict[str, Any]:
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
        data = assessment.to_dict()
        for table in assessment.tables:
            app.control_store.record_table(
                site_id,
                run.run_id,
                table.name,
                {"rows": table.rows, "role": table.role, "primary_key": table.primary_key},
            )
        run.figures.update(data["summary"])
        run.figures["report"] = str(paths["html"])
    return {
        "run_id": run.run_id,
        "summary": data["summary"],
        "server": data["server"],
        "server_moved_from": run.figures.get("server_moved_from"),
        "tables": {t.name: {"rows": t.rows, "role": t.role, "primary_key": t.primary_key} for t in assessment.tables},
        "reports": {k: str(v) for k, v in paths.items()},
    }
