"""`ts24-migrate assess SITE`: what a legacy site holds, read-only."""

from __future__ import annotations

import click

from ..steps.assess import assess_step
from ..app import App, pass_app
from .progress import table_progress


@click.command("assess")
@click.argument("site_id", metavar="SITE")
@pass_app
def assess(app: App, site_id: str) -> None:
    """Assess a site's legacy database: every table, row counts, keys, column types,
    legacy text encodings, in-flight dossiers, dossiers received after cut-over.

    Writes assessment.json, assessment.html and assessment.md under
    WORK_DIR/sites/SITE/reports/RUN_ID/. Only reads the legacy database.

    \b
    Example:
      ts24-migrate -i sites.yaml assess hn-01
      ts24-migrate -i sites.yaml --json assess hn-01 | jq .summary
    """
    with table_progress(app, "assessing") as progress:
        result = assess_step(app, site_id, progress=progress)
    summary = result["summary"]
    human = "\n".join([
        f"site {site_id}: {summary['tables']} tables, {summary['rows']} rows",
        f"  unmapped tables: {', '.join(summary['unmapped_tables']) or 'none'}",
        f"  tables without primary key: {', '.join(summary['tables_without_primary_key']) or 'none'}",
        f"  in-flight dossiers: {summary['in_flight_dossiers']}; received after cut-over: "
        f"{summary['received_after_cutover']}",
        f"  legacy text values: " + ", ".join(f"{k} {v}" for k, v in summary["legacy_text_values"].items()),
        f"report: {result['reports']['html']}",
    ])
    app.emit(result, human)


COMMANDS = [assess]
