"""`ts24-migrate reconcile ...`: follow a site's in-flight dossiers until it drains.

The step functions (`reconcile_step`, `verify_chain_step`, `restore_chain_step`)
run the reconcile package inside a stage run (control store + ledger) and
return a typed result (runs.reconcile); the commands only print it, and the
`reconcile-site` flow calls the same steps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ts24_migrate.core.errors import VerificationError
from ts24_migrate.runs.app import App, pass_app

from .outcome import stage_outcome
from .progress import table_progress
from .restore_common import print_problems, restore_options, restored_lines, scratch_url
from .slots import command_slots

if TYPE_CHECKING:  # the reconcile steps load the stage packages: only when a command runs
    from ts24_migrate.runs.reconcile import ReconcileResult

Progress = Callable[[str, int, int], None]
STAGE = "reconcile"


@click.group("reconcile")
def reconcile() -> None:
    """Follow a site's in-flight dossiers after cut-over until the site drains.

    Each run backs up what changed on TS24 (an encrypted increment chained to
    the full backup), carries finished and changed dossiers over to the new
    system and writes the reconciliation report.

    \b
    Example:
      ts24-migrate -i sites.yaml reconcile run hn-01
      ts24-migrate -i sites.yaml reconcile verify-chain hn-01
    """


@reconcile.command("run")
@click.argument("site_id", metavar="SITE")
@click.option(
    "--sweep/--no-sweep",
    default=None,
    help="Compare every legacy row with the chain [default: only when no dossier is in flight].",
)
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    help="Judge overdue dossiers and plot the burndown at this moment [default: the legacy's "
    "latest recorded activity].",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=50_000,
    show_default=True,
    help="Rows per read and per increment part.",
)
@click.option("--expect-drained", is_flag=True, help="Exit with code 1 when the site is not drained.")
@pass_app
def run_command(
    app: App, site_id: str, sweep: bool | None, as_of: dt.datetime | None, chunk_rows: int, expect_drained: bool
) -> None:
    """Reconcile SITE once: back up what changed on TS24 since the last run, carry it over to the new
    system, and report in-flight, overdue and forbidden dossiers, drift, likely duplicates and
    re-registrations, with the drained verdict and its criteria.

    Reads the legacy database only. Writes the report (HTML, JSON, and a CSV of units to contact)
    under WORK_DIR/sites/SITE/reports/RUN_ID/. The site moves to RECONCILING, or DRAINED when every
    criterion holds.

    \b
    Example:
      ts24-migrate -i sites.yaml reconcile run hn-01
      ts24-migrate -i sites.yaml --json reconcile run hn-01 --expect-drained | jq .criteria
    """
    from ts24_migrate.runs.reconcile import reconcile_step

    with stage_outcome(app, site_id) as outcome:
        with command_slots(app, site_id, target=True), table_progress(app, "reading changes") as progress:
            result = reconcile_step(app, site_id, chunk_rows=chunk_rows, sweep=sweep, as_of=as_of, progress=progress)
        missed = expect_drained and not result.drained
        outcome.emit(result, _human(result), verdict="FAILED" if missed else "DONE", report=result.reports["html"])
    if missed:
        raise VerificationError(f"site {site_id} is not drained: {', '.join(result.failed_criteria())}")


def _human(result: ReconcileResult) -> str:
    verdict = "DRAINED" if result.drained else "not drained"
    lines = [f"site {result.site_id}: {verdict} (run {result.run_id}, {result.mode}, as of {result.as_of})"]
    lines += [f"  [{'x' if c.holds else ' '}] {c.name}: {c.detail}" for c in result.criteria]
    by_status = ", ".join(f"{k} {v}" for k, v in result.in_flight_by_status.items())
    lines.append(
        f"  in flight: {result.in_flight} ({by_status}); overdue {result.overdue}; "
        f"received after cut-over {result.received_after_cutover}; drift {result.drift}; "
        f"likely duplicates {result.likely_duplicates}"
    )
    lines.append(
        f"  re-registration: {result.registered} of {result.must_reregister} done, {result.not_registered} to contact"
    )
    increment = result.increment
    lines.append(
        f"  changes: {result.rows_changed} rows backed up"
        + (f" in increment {increment}" if increment else " (nothing new: no increment)")
        + f"; {result.carried_over} carried over, {result.blocked} blocked"
    )
    if result.forecast_drain_date:
        lines.append(f"  forecast drain date: {result.forecast_drain_date}")
    lines += [f"  warning: {w}" for w in result.warnings]
    lines.append(f"  report: {result.reports['html']}")
    if "outreach_csv" in result.reports:
        lines.append(f"  outreach list: {result.reports['outreach_csv']}")
    return "\n".join(lines)


@reconcile.command("verify-chain")
@click.argument("site_id", metavar="SITE")
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Signing public key to trust [default: the .pub next to the inventory's signing_key].",
)
@pass_app
def verify_chain_command(app: App, site_id: str, public_key: Path | None) -> None:
    """Verify SITE's backup chain (the full backup and every increment) without a key: each
    manifest's signature, each increment's link to its parent, the SHA-256 of every part.
    Exit code 1 on any problem.

    \b
    Example:
      ts24-migrate -i sites.yaml reconcile verify-chain hn-01
    """
    from ts24_migrate.runs.reconcile import verify_chain_step

    with stage_outcome(app, site_id) as outcome:
        try:
            result = verify_chain_step(app, site_id, public_key=public_key)
        except VerificationError as exc:
            print_problems(exc)
            raise
        lines = [
            f"backup chain of site {site_id}: OK, {len(result.backups)} backups, {result.parts_checked} parts checked"
        ]
        lines += [f"  {b['kind']:<12} {b['backup_id']}  {b['manifest_fingerprint']}" for b in result.backups]
        outcome.emit(result, "\n".join(lines), verdict="PASSED")


@reconcile.command("restore-chain")
@click.argument("site_id", metavar="SITE")
@restore_options
@click.option("--no-live", is_flag=True, help="Do not compare with the live legacy database and folder.")
@pass_app
def restore_chain_command(
    app: App,
    site_id: str,
    identity: Path,
    into_sqlite: Path | None,
    into_url_env: str | None,
    files_dir: Path | None,
    no_live: bool,
) -> None:
    """Restore SITE's full backup plus every increment into a scratch database and folder, then prove
    it: every table and the folder, read back, must equal the chain's fingerprints (and the live
    source, when reachable). Exit code 1 if anything differs.

    \b
    Example:
      ts24-migrate -i sites.yaml reconcile restore-chain hn-01 --identity keys/alice.age-identity \\
          --into-sqlite /tmp/hn-01-chain.sqlite --files /tmp/hn-01-chain-files
    """
    from ts24_migrate.runs.reconcile import restore_chain_step

    url = scratch_url(into_sqlite, into_url_env)
    with stage_outcome(app, site_id) as outcome:
        try:
            result = restore_chain_step(
                app,
                site_id,
                identity=identity,
                into_url=url,
                files_dir=files_dir,
                compare_live=not no_live,
                into_url_env=into_url_env,
            )
        except VerificationError as exc:
            print_problems(exc)
            raise
        lines = [f"backup chain of site {site_id} ({len(result.backups)} backups) restored and matches"]
        lines += restored_lines(result.tables, result.files, live_note=result.live_note)
        outcome.emit(result, "\n".join(lines), verdict="PASSED")


COMMANDS = [reconcile]
