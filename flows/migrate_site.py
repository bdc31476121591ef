"""The `migrate-site` flow: one site, every stage in order, each a Prefect task.

Each task rebuilds the App from the inventory path (engines are not shared
across tasks), runs one step of ts24_migrate.site_steps and publishes its key
figures as artifacts. A failed run is re-run as a whole: every step resumes
from its own durable checkpoint.

Example::

    from flows.migrate_site import migrate_site
    migrate_site(site_id="hn-01", inventory="sites.yaml")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from ts24_migrate import site_steps
from ts24_migrate.app import App

from .artifacts import progress_reporter, publish_markdown, publish_table


def _app(inventory: str) -> App:
    return App(Path(inventory))


@task(name="assess", retries=2, retry_delay_seconds=10, retry_condition_fn=None)
def assess_task(site_id: str, inventory: str) -> dict[str, Any]:
    app = _app(inventory)
    try:
        result = site_steps.assess(app, site_id, progress=progress_reporter(site_id, "assess"))
    finally:
        app.close()
    summary = result["summary"]
    publish_markdown(site_id, "assessment", "\n".join([
        f"# Assessment of {site_id}",
        f"- tables: **{summary['tables']}**, rows: **{summary['rows']}**",
        f"- unmapped: {', '.join(summary['unmapped_tables']) or 'none'}",
        f"- without primary key: {', '.join(summary['tables_without_primary_key']) or 'none'}",
        f"- in-flight dossiers: {summary['in_flight_dossiers']}",
        f"- received after cut-over: {summary['received_after_cutover']}",
        f"- report: `{result['reports']['html']}`"]), "assessment summary")
    publish_table(site_id, "assessment", [{"table": name, **figures} for name, figures in result["tables"].items()],
                  "rows per legacy table")
    return result


@flow(name="migrate-site")
def migrate_site(site_id: str, inventory: str = "sites.yaml") -> dict[str, Any]:
    """Assess, extract and back up, verify, transform and load, validate, report."""
    logger = get_run_logger()
    results: dict[str, Any] = {}
    results["assess"] = assess_task(site_id, inventory)
    logger.info("site %s assessed: %s tables", site_id, results["assess"]["summary"]["tables"])
    return results
