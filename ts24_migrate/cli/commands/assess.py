"""`ts24-migrate assess SITE`: what a legacy site holds, read-only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ts24_migrate.core.labels import (
    ATTACHMENT_FINDINGS,
    IN_FLIGHT_LABEL,
    RECEIVED_AFTER_CUTOVER_LABEL,
    finding_line,
    object_counts_text,
)
from ts24_migrate.runs.app import App, pass_app

from .outcome import stage_outcome
from .progress import table_progress

if TYPE_CHECKING:  # the assess step loads the stage packages: only when the command runs
    from ts24_migrate.runs.assess import AssessmentSummary


def finding_lines(summary: AssessmentSummary) -> list[str]:
    """The attachment folder's figures, worded as every other output words them."""
    findings = summary.attachment_findings
    if findings is None:
        return ["  attachment folder: not configured"]
    return [f"  attachment folder: {summary.attachment_files} files"] + [
        f"    {finding_line(key, findings[key])}" for key in ATTACHMENT_FINDINGS if findings.get(key)
    ]


@click.command("assess")
@click.argument("site_id", metavar="SITE")
@click.option(
    "--server-moved",
    is_flag=True,
    help="The legacy database really moved to another server since the last assessment: "
    "accept the server reached now (and record the move).",
)
@pass_app
def assess(app: App, site_id: str, server_moved: bool) -> None:
    """Assess a site's legacy database: the server reached, every table, row counts, keys,
    column types, legacy text encodings, in-flight dossiers, dossiers received after cut-over;
    every view, trigger, procedure and sequence (with the fingerprint of its definition); and
    the attachment folder against the rows: missing files, wrong checksums, files no row
    references (path, size, SHA-256), symbolic links (never followed).

    Writes assessment.json, assessment.html and assessment.md under
    WORK_DIR/sites/SITE/reports/RUN_ID/. Only reads the legacy database. Every
    later stage refuses (exit code 4) a legacy server other than the one assessed;
    once a site is backed up, re-assessing on another server needs --server-moved.

    \b
    Example:
      ts24-migrate -i sites.yaml assess hn-01
      ts24-migrate -i sites.yaml --json assess hn-01 | jq .server
      ts24-migrate -i sites.yaml assess hn-01 --server-moved
    """
    from ts24_migrate.core.server_identity import ServerIdentity
    from ts24_migrate.runs.assess import assess_step

    with stage_outcome(app, site_id) as outcome, table_progress(app, "assessing") as progress:
        result = assess_step(app, site_id, progress=progress, server_moved=server_moved)
    summary = result.summary
    server = ServerIdentity.from_dict(result.server)
    moved = result.server_moved_from
    human = "\n".join(
        [
            f"site {site_id}: {summary.tables} tables, {summary.rows} rows",
            f"  server: {server.describe()}",
            *([f"  moved from: {ServerIdentity.from_dict(moved).describe()}"] if moved else []),
            f"  unmapped tables: {', '.join(summary.unmapped_tables) or 'none'}",
            f"  tables without primary key: {', '.join(summary.tables_without_primary_key) or 'none'}",
            f"  {IN_FLIGHT_LABEL}: {summary.in_flight_dossiers}; {RECEIVED_AFTER_CUTOVER_LABEL}: "
            f"{summary.received_after_cutover}",
            "  legacy text values: "
            + ", ".join(f"{k} {v}" for k, v in summary.legacy_text_values.items())
            + "; to check by hand: "
            + ", ".join(f"{k} {v}" for k, v in summary.uncertain_text_values.items()),
            f"  views, triggers, procedures, sequences: {object_counts_text(summary.objects)}",
            *finding_lines(summary),
            f"report: {result.report_html}",
        ]
    )
    outcome.emit(result, human, report=result.report_html)


COMMANDS = [assess]
