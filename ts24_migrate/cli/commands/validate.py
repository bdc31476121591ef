"""`ts24-migrate validate SITE` and `ts24-migrate report SITE`: the verdict on a migrated site.

`validate_step` holds the stages' figures against each other and against the
target (accounting, parity, target expectations, the backup's verification),
profiles the legacy data (descriptive), records every result in the control
store, then writes the auditor's report from the control store alone
(validation/report.py). The verdict fails, after everything is recorded, when
any target expectation fails, parity is not exact, the accounting does not add
up, or the latest backup is not verified: a VerificationError, exit code 1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ts24_migrate.runs.app import App, pass_app

from .outcome import stage_outcome
from .progress import table_progress
from .slots import command_slots

if TYPE_CHECKING:  # the validate step loads Great Expectations: only when the command runs
    from ts24_migrate.runs.validate import ValidationSummary

Progress = Callable[[str, int, int], None]


# -- commands ---------------------------------------------------------------------------------


def _human(site_id: str, result: ValidationSummary) -> str:
    accounting, parity = result.accounting, result.parity
    expectations = result.target_expectations
    lines = [
        f"site {site_id}: validation {result.verdict.upper()} (run {result.run_id})",
        f"  accounting: {accounting.tables} tables, {accounting.source} source rows = "
        f"{accounting.backed_up} backed up; mapped: {accounting.loaded} loaded + "
        f"{accounting.rejected} rejected" + ("" if accounting.ok else "  DOES NOT ADD UP"),
        "  parity: "
        + (
            "exact"
            if parity.exact
            else f"{parity.differences} differences ({parity.missing} missing, "
            f"{parity.extra} extra, {parity.changed} changed)"
        ),
        f"  target expectations: {expectations.evaluated - expectations.failed} of {expectations.evaluated} hold",
        f"  backup {result.backup.backup_id}: " + ("verified" if result.backup.verified else "NOT verified"),
    ]
    lines += [f"  fails: {reason}" for reason in result.reasons]
    lines.append(f"report: {result.reports.html}")
    return "\n".join(lines)


@click.command("validate")
@click.argument("site_id", metavar="SITE")
@click.option(
    "--legacy-sample-rows",
    type=click.IntRange(min=1),
    help="Profile only the first N rows of each legacy table [default: every row].",
)
@pass_app
def validate(app: App, site_id: str, legacy_sample_rows: int | None) -> None:
    """Validate SITE after its load and write the auditor's report (HTML and JSON, with Great
    Expectations Data Docs next to it).

    Checks: every target expectation holds; parity is exact (the target still
    holds exactly the rows the load wrote: missing, extra and changed keys are
    named); the accounting adds up (source = backed up, and loaded + rejected for
    mapped tables); the latest backup is verified (decrypted by a custodian) and
    its manifest signature holds. The legacy data is profiled too, descriptively.
    Exit code 0 when every check holds, 1 when one does not; the report is
    written either way and its path printed.

    \b
    Example:
      ts24-migrate -i sites.yaml validate hn-01
      ts24-migrate -i sites.yaml --json validate hn-01 | jq .reports.html
    """
    from ts24_migrate.runs.validate import ValidationFailed, validate_step

    with stage_outcome(app, site_id) as outcome:
        with command_slots(app, site_id, target=True), table_progress(app, "validating") as progress:
            try:
                result = validate_step(app, site_id, progress=progress, legacy_sample_rows=legacy_sample_rows)
            except ValidationFailed as exc:
                if exc.result is not None:  # the report exists: the failed outcome names it
                    app.failed_outcome = outcome.emit(
                        exc.result, _human(site_id, exc.result), verdict="FAILED", report=exc.result.reports.html
                    ).to_dict()
                raise
        outcome.emit(result, _human(site_id, result), verdict="PASSED", report=result.reports.html)


@click.command("report")
@click.argument("site_id", metavar="SITE")
@click.option("--run", "run_id", metavar="RUN_ID", help="A validate run [default: the latest with a verdict].")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write a self-contained folder for an auditor: the report (HTML, JSON, charts) and the "
    "run's Great Expectations Data Docs, static and offline [default: the run's own report "
    "folder].",
)
@pass_app
def report(app: App, site_id: str, run_id: str | None, out: Path | None) -> None:
    """Rebuild the validation report of SITE from the control store alone (no legacy database,
    target or backup folder needed), e.g. on an auditor's machine with a copy of the control
    store. With --out, write a folder to hand to an auditor: it opens offline on any machine
    (nothing is fetched from the internet; files are named from the inventory's folder, never
    by this host's paths), with the run's Data Docs copied along when this host has them.
    Exit code 0 when the report is written, whatever its verdict says.

    \b
    Example:
      ts24-migrate -i sites.yaml report hn-01
      ts24-migrate -i sites.yaml report hn-01 --run 0b6f... --out /tmp/hn-01-report
    """
    from ts24_migrate.runs.validate import rebuild_report

    with stage_outcome(app, site_id) as outcome:
        data = rebuild_report(app, site_id, run_id, out)
        paths = data["reports"]
        outcome.emit(
            data,
            f"site {site_id}: validation {data['verdict'].upper()} (run {data['run_id']})\n"
            f"report: {paths['html']}\njson:   {paths['json']}",
            verdict="PASSED" if data["passed"] else "FAILED",
            report=paths["html"],
        )


COMMANDS = [validate, report]
