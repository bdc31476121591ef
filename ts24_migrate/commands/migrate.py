"""`ts24-migrate migrate SITE`: run the migrate-site Prefect flow for one site."""

from __future__ import annotations

import click

from ..app import App, pass_app


@click.command("migrate")
@click.argument("site_id", metavar="SITE")
@pass_app
def migrate(app: App, site_id: str) -> None:
    """Run the whole `migrate-site` flow for SITE (assess, back up, verify, load, validate, report)
    as a Prefect flow run: on the Prefect server of PREFECT_API_URL, or a temporary local one.

    \b
    Example:
      ts24-migrate -i sites.yaml migrate hn-01
    """
    from flows.migrate_site import migrate_site

    app.site(site_id)  # fail fast on an unknown site, before Prefect starts
    result = migrate_site(site_id=site_id, inventory=str(app.inventory.source_path))
    app.emit(result, _summary(site_id, result))


def _summary(site_id: str, result: dict) -> str:
    lines = [f"site {site_id} migrated:"]
    for step, outcome in result.items():
        reports = outcome.get("reports", {}) if isinstance(outcome, dict) else {}
        report = reports.get("html")
        lines.append(f"  {step}: done" + (f"  (report: {report})" if report else ""))
    return "\n".join(lines)


COMMANDS = [migrate]
