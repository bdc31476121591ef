"""`ts24-migrate migrate SITE`: a site's whole migration, directly or as a migrate-site Prefect flow run."""

from __future__ import annotations

import datetime as dt
import os
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from ts24_migrate.core.errors import Ts24Error
from ts24_migrate.runs.app import App, pass_app

from .outcome import site_outcome, verdict_of
from .progress import table_progress


def via_prefect_option(command):
    return click.option(
        "--via-prefect",
        is_flag=True,
        help="Run the `migrate-site` Prefect flow (on a temporary local Prefect server unless PREFECT_API_URL "
        "is set) instead of running the stages directly. Implied by PREFECT_API_URL.",
    )(command)


def migrate_site_now(
    app: App,
    site_id: str,
    *,
    identity: Path | None,
    via_prefect: bool,
    chunk_rows: int = 50_000,
    legacy_sample_rows: int | None = None,
) -> dict[str, Any]:
    """Run every stage of `site_id`'s migration (steps.migrate): in this process, or as a flow run when
    --via-prefect is given or PREFECT_API_URL is set. Both record the same stage runs and ledger events."""
    custodian_identity = str(identity.resolve()) if identity else None
    api_url = os.environ.get("PREFECT_API_URL")
    if not (via_prefect or api_url):
        from ts24_migrate.runs.migrate import migrate_directly

        return migrate_directly(
            app,
            site_id,
            chunk_rows=chunk_rows,
            custodian_identity=custodian_identity,
            legacy_sample_rows=legacy_sample_rows,
            progress_for=lambda stage: table_progress(app, stage),
            tell=lambda line: click.echo(line, err=True),
        )
    from flows.local_server import temporary_prefect_server
    from flows.migrate_site import migrate_site

    with nullcontext() if api_url else temporary_prefect_server():
        return migrate_site(
            site_id=site_id,
            inventory=str(app.inventory.source_path),
            chunk_rows=chunk_rows,
            custodian_identity=custodian_identity,
            legacy_sample_rows=legacy_sample_rows,
        )


@click.command("migrate")
@click.argument("site_id", metavar="SITE")
@click.option(
    "--identity",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A custodian's age identity: the verify step then decrypts and recounts every part "
    "(without it, validation waits for a custodian's `backup verify --identity`).",
)
@click.option(
    "--legacy-sample-rows",
    type=click.IntRange(min=1),
    help="Profile only the first N rows of each legacy table in the validation (descriptive; "
    "the verdict never depends on it) [default: every row].",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=50_000,
    show_default=True,
    help="Rows per backup part and per load chunk.",
)
@via_prefect_option
@pass_app
def migrate(
    app: App, site_id: str, identity: Path | None, legacy_sample_rows: int | None, chunk_rows: int, via_prefect: bool
) -> None:
    """Migrate SITE: assess, back up, verify the backup, load, validate and report, in that order.

    Runs the stages directly in this process. With --via-prefect, or when
    PREFECT_API_URL is set, it runs them as the `migrate-site` Prefect flow
    instead (on that server, or on a temporary local one), with its retries,
    artifacts and concurrency limits. Either way the control store and the
    audit ledger record the same stage runs.

    Run again, it redoes no needless work: the verified backup is reused when the source is
    unchanged since (it says so), and the load skips what it already loaded. Ends with the outcome
    line: verdict, the site's state, the report, and the next step.

    \b
    Example:
      ts24-migrate -i sites.yaml migrate hn-01
      ts24-migrate -i sites.yaml migrate hn-01 --identity /media/usb/alice.age-identity
      ts24-migrate -i sites.yaml migrate hn-01 --via-prefect --json
    """
    app.site(site_id)  # fail fast on an unknown site, before anything starts
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    try:
        result = migrate_site_now(
            app,
            site_id,
            identity=identity,
            via_prefect=via_prefect,
            chunk_rows=chunk_rows,
            legacy_sample_rows=legacy_sample_rows,
        )
    except Ts24Error as exc:
        outcome = _failed_outcome(app, site_id, exc, started)
        if outcome is not None:
            app.failed_outcome = outcome.to_dict()
            if not app.json_output:
                click.echo(outcome.line())
        raise
    validation = result["validate"]
    outcome = site_outcome(app, site_id, "PASSED" if validation.passed else "FAILED", validation.reports.html)
    app.emit({**result, "outcome": outcome.to_dict()}, f"{_summary(site_id, result)}\n{outcome.line()}")


def _failed_outcome(app: App, site_id: str, exc: Ts24Error, started: dt.datetime):
    """The outcome of a migration that stopped: the report of its validation if it wrote one."""
    try:
        runs = [
            r
            for r in app.control_store.runs(site_id, "validate")
            if r.started_at >= started and isinstance(r.figures.get("report"), dict)
        ]
        report = runs[-1].figures["report"].get("html") if runs else None
        return site_outcome(app, site_id, verdict_of(exc), report)
    except Exception:  # the control store itself may be what failed: the error line says it all
        return None


def _summary(site_id: str, result: dict) -> str:
    from ts24_migrate.core.results import jsonable

    lines = [f"site {site_id} migrated:"]
    for step, outcome in jsonable(result).items():
        if not isinstance(outcome, dict):
            continue
        report = (outcome.get("reports") or {}).get("html")
        done = (
            "reused backup " + outcome["backup_id"] + f" ({outcome['reuse_note']})" if outcome.get("reused") else "done"
        )
        lines.append(f"  {step}: {done}" + (f"  (report: {report})" if report else ""))
    return "\n".join(lines)


COMMANDS = [migrate]
