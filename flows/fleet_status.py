"""The fleet status in Prefect: the page in the work folder and the artifacts agency IT opens.

`migrate-fleet`, `check-sites` and each `migrate-site` run end by refreshing it,
so the Prefect UI's artifact `ts24-fleet-status` is the fleet as of the latest
of them. Figures only: no URL, no dossier content, no host path.

Example::

    publish_fleet_status("/etc/ts24/sites.yaml")
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from ts24_migrate.core.report_paths import PathNames
from ts24_migrate.runs.app import App
from ts24_migrate.runs.fleet_page import fleet_markdown, write_fleet_page
from ts24_migrate.runs.fleet_status import read_fleet_status

ARTIFACT_KEY = "ts24-fleet-status"


def publish_fleet_status(inventory: str) -> dict[str, str]:
    """Write the page and publish the artifacts; returns the page's paths."""
    app = App(Path(inventory))
    try:
        status = read_fleet_status(app.control_store, app.inventory)
        paths = write_fleet_page(status, app.inventory)
        page = PathNames.for_inventory(app.inventory).name(paths["html"])
    finally:
        app.close()
    create_markdown_artifact(
        markdown=fleet_markdown(status, page=page),
        key=ARTIFACT_KEY,
        description="TS24 fleet status: totals and the sites that need attention first",
    )
    create_table_artifact(
        key=f"{ARTIFACT_KEY}-sites",
        description="TS24 fleet status, one row per site",
        table=[
            {
                "site": s.site_id,
                "attention": s.attention.label,
                "state": s.state,
                "next": s.next.who,
                "action": s.next.action,
                "blocker": f"{s.blockers[0].error_class} in {s.blockers[0].stage}" if s.blockers else "",
                "in_flight": s.in_flight,
                "forecast": s.forecast_drain_date,
            }
            for s in status.sites
        ],
    )
    return {kind: str(path) for kind, path in paths.items()}


def refresh_fleet_status(inventory: str) -> None:
    """publish_fleet_status, never failing the run that calls it (its own work is what counts)."""
    try:
        publish_fleet_status(inventory)
    except Exception as exc:  # a status page is not worth a failed migration
        get_run_logger().warning(
            "the fleet status was not refreshed: %s: %s",
            type(exc).__name__,
            str(exc).splitlines()[0][:200] if str(exc) else "",
        )
