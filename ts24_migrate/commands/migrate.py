"""`ts24-migrate migrate SITE`: run the migrate-site Prefect flow for one site."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from ..app import App, pass_app
from ..errors import Ts24Error
from .outcome import site_outcome, verdict_of


@click.command("migrate")
@click.argument("site_id", metavar="SITE")
@click.option("--identity", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A custodian's age identity: the verify step then decrypts and recounts every part "
                   "(without it, validation waits for a custodian's `backup verify --identity`).")
@click.option("--legacy-sample-rows", type=click.IntRange(min=1),
              help="Profile only the first N rows of each legacy table in the validation (descriptive; "
                   "the verdict never depends on it) [default: every row].")
@pass_app
def migrate(app: App, site_id: str, identity: Path | None, legacy_sample_rows: int | None) -> None:
    """Run the whole `migrate-site` flow for SITE (assess, back up, verify, load, validate, report)
    as a Prefect flow run: on the Prefect server of PREFECT_API_URL, or a temporary local one.

    Run again, it redoes no needless work: the verified backup is reused when the source is
    unchanged since (it says so), and the load skips what it already loaded. Ends with the outcome
    line: verdict, the site's state, the report, and the next step.

    \b
    Example:
      ts24-migrate -i sites.yaml migrate hn-01
      ts24-migrate -i sites.yaml migrate hn-01 --identity /media/usb/alice.age-identity
    """
    from flows.migrate_site import migrate_site

    app.site(site_id)  # fail fast on an unknown site, before Prefect starts
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    try:
        result = migrate_site(site_id=site_id, inventory=str(app.inventory.source_path),
                              custodian_identity=str(identity.resolve()) if identity else None,
                              legacy_sample_rows=legacy_sample_rows)
    except Ts24Error as exc:
        outcome = _failed_outcome(app, site_id, exc, started)
        if outcome is not None:
            exc.outcome = outcome.to_dict()  # type: ignore[attr-defined]
            if not app.json_output:
                click.echo(outcome.line())
        raise
    validation = result["validate"]
    outcome = site_outcome(app, site_id, "PASSED" if validation["passed"] else "FAILED",
                           validation["reports"]["html"])
    app.emit({**result, "outcome": outcome.to_dict()}, f"{_summary(site_id, result)}\n{outcome.line()}")


def _failed_outcome(app: App, site_id: str, exc: Ts24Error, started: dt.datetime):
    """The outcome of a migration that stopped: the report of its validation if it wrote one."""
    try:
        runs = [r for r in app.control_store.runs(site_id, "validate")
                if r.started_at >= started and isinstance(r.figures.get("report"), dict)]
        report = runs[-1].figures["report"].get("html") if runs else None
        return site_outcome(app, site_id, verdict_of(exc), report)
    except Exception:  # the control store itself may be what failed: the error line says it all
        return None


def _summary(site_id: str, result: dict) -> str:
    lines = [f"site {site_id} migrated:"]
    for step, outcome in result.items():
        if not isinstance(outcome, dict):
            continue
        report = (outcome.get("reports") or {}).get("html")
        done = "reused backup " + outcome["backup_id"] + f" ({outcome['reuse_note']})" if outcome.get("reused") \
            else "done"
        lines.append(f"  {step}: {done}" + (f"  (report: {report})" if report else ""))
    return "\n".join(lines)


COMMANDS = [migrate]
