"""`ts24-migrate migrate SITE`: run the migrate-site Prefect flow for one site."""

from __future__ import annotations

from pathlib import Path

import click

from ..app import App, pass_app


@click.command("migrate")
@click.argument("site_id", metavar="SITE")
@click.option("--identity", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A custodian's age identity: the verify step then decrypts and recounts every part "
                   "(without it, validation waits for a custodian's `backup verify --identity`).")
@pass_app
def migrate(app: App, site_id: str, identity: Path | None) -> None:
    """Run the whole `migrate-site` flow for SITE (assess, back up, verify, load, validate, report)
    as a Prefect flow run: on the Prefect server of PREFECT_API_URL, or a temporary local one.

    \b
    Example:
      ts24-migrate -i sites.yaml migrate hn-01
      ts24-migrate -i sites.yaml migrate hn-01 --identity /media/usb/alice.age-identity
    """
    from flows.migrate_site import migrate_site

    app.site(site_id)  # fail fast on an unknown site, before Prefect starts
    result = migrate_site(site_id=site_id, inventory=str(app.inventory.source_path),
                          custodian_identity=str(identity.resolve()) if identity else None)
    app.emit(result, _summary(site_id, result))


def _summary(site_id: str, result: dict) -> str:
    lines = [f"site {site_id} migrated:"]
    for step, outcome in result.items():
        reports = outcome.get("reports", {}) if isinstance(outcome, dict) else {}
        report = reports.get("html")
        lines.append(f"  {step}: done" + (f"  (report: {report})" if report else ""))
    return "\n".join(lines)


COMMANDS = [migrate]
