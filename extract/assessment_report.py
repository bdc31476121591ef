"""Render a site assessment as JSON, HTML and Markdown for people and schedulers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ts24_migrate.core import reporting as r
from ts24_migrate.core.labels import IN_FLIGHT_LABEL, RECEIVED_AFTER_CUTOVER_LABEL, object_counts_text
from ts24_migrate.core.report_paths import PathNames

from .assessment import LEGACY_ENCODINGS, SUSPECTED_TEXT, SiteAssessment
from .findings_report import attachment_findings_markdown, attachments_section, objects_section


def _table_rows(assessment: SiteAssessment) -> list[list[object]]:
    rows: list[list[object]] = []
    for t in assessment.tables:
        legacy = {e: sum(c.get(e, 0) for c in t.legacy_text.values()) for e in LEGACY_ENCODINGS}
        rows.append(
            [
                t.name,
                t.role,
                t.rows,
                ", ".join(t.primary_key) or "NONE (no primary key)",
                len(t.columns),
                legacy["tcvn3"],
                legacy["vni"],
                legacy["nfd"],
            ]
        )
    return rows


def _columns_not_loaded(summary: dict[str, Any]) -> str:
    return (
        "; ".join(f"{table}: {', '.join(columns)}" for table, columns in summary["columns_not_loaded"].items())
        or "none"
    )


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|")  # a name may hold '|', which would split a Markdown cell


_HEADERS = ["table", "role", "rows", "primary key", "columns", "TCVN3 text", "VNI text", "NFD text"]
_TEXT_HEADERS = ["table", "column", "TCVN3", "VNI", "NFD", "ambiguous", "suspect"]


def render_html(assessment: SiteAssessment) -> str:
    """The page (extract/templates/assessment.html.j2) over the assessment's data."""
    data = assessment.to_dict()
    summary = data["summary"]
    no_pk = summary["tables_without_primary_key"]
    overview = [
        ["tables found", summary["tables"]],
        ["rows in all tables", summary["rows"]],
        ["unmapped tables (backed up and purged, not loaded)", ", ".join(summary["unmapped_tables"]) or "none"],
        ["tables without a primary key", ", ".join(no_pk) or "none"],
        ["columns of mapped tables not in the TS24 schema (backed up, not loaded)", _columns_not_loaded(summary)],
        [IN_FLIGHT_LABEL, summary["in_flight_dossiers"]],
        [RECEIVED_AFTER_CUTOVER_LABEL, summary["received_after_cutover"]],
        ["views, triggers, procedures, sequences", object_counts_text(summary["objects"])],
        *[[f"text values in {e.upper()}", n] for e, n in summary["legacy_text_values"].items()],
        *[[f"text values {k} (loaded unchanged, flagged)", n] for k, n in summary["uncertain_text_values"].items()],
    ]
    server = assessment.server
    server_rows: list[list[object]] = [
        ["kind", server.kind],
        ["host (as the server names itself)", server.host or "-"],
        ["port", server.port or "-"],
        ["database", server.database or "-"],
        ["server id", server.server_id or "-"],
        ["version", server.version or "-"],
        *[[name, value] for name, value in server.details.items()],
    ]
    return r.render(
        "extract",
        "assessment.html.j2",
        title=f"Assessment of site {assessment.site_id}",
        subtitle=f"cut-over {data['cutover']} · assessed {r.timestamp(data['assessed_at'])} · {data['dialect']} · "
        "read-only",
        overview=overview,
        server=server_rows,
        table_headers=_HEADERS,
        tables=_table_rows(assessment),
        text_headers=_TEXT_HEADERS,
        text_by_column=[
            [c["table"], c["column"], *(c[k] for k in SUSPECTED_TEXT)] for c in data["suspected_text_by_column"]
        ],
        by_status=[[name, n] for name, n in data["dossiers_by_status"].items()],
        received_after_cutover=data["received_after_cutover_ids"],
        objects=objects_section(assessment.objects, assessment.objects_note),
        attachments=attachments_section(assessment.attachments),
        columns=[
            {"name": t.name, "rows": [[c["name"], c["type"], c["nullable"]] for c in t.columns]}
            for t in assessment.tables
        ],
    )


def render_markdown(assessment: SiteAssessment) -> str:
    data = assessment.to_dict()
    summary = data["summary"]
    lines = [
        f"# Assessment of site {assessment.site_id}",
        "",
        f"- server: {assessment.server.describe()}",
        f"- tables: {summary['tables']} ({summary['rows']} rows)",
        f"- unmapped: {', '.join(summary['unmapped_tables']) or 'none'}",
        f"- without primary key: {', '.join(summary['tables_without_primary_key']) or 'none'}",
        f"- columns of mapped tables not loaded: {_columns_not_loaded(summary)}",
        f"- {IN_FLIGHT_LABEL}: {summary['in_flight_dossiers']}",
        f"- {RECEIVED_AFTER_CUTOVER_LABEL}: {summary['received_after_cutover']}",
        f"- views, triggers, procedures, sequences: {object_counts_text(summary['objects'])}",
        *[
            f"  - {o['kind']} `{o['name']}`"
            + (f" on {o['table']}" if o.get("table") else "")
            + f": {o['fingerprint'] or 'definition not readable'}"
            for o in assessment.objects
        ],
        *attachment_findings_markdown(assessment.attachments),
        "",
        "| " + " | ".join(_HEADERS) + " |",
        "|" + "---|" * len(_HEADERS),
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in _table_rows(assessment)]
    by_column = data["suspected_text_by_column"]
    if by_column:
        lines += [
            "",
            "Suspected legacy text by column:",
            "",
            "| " + " | ".join(_TEXT_HEADERS) + " |",
            "|" + "---|" * len(_TEXT_HEADERS),
        ]
        lines += [
            "| " + " | ".join(_cell(c[k]) for k in ("table", "column", *SUSPECTED_TEXT)) + " |" for c in by_column
        ]
    return "\n".join(lines) + "\n"


def write_assessment_report(
    assessment: SiteAssessment, folder: Path, *, names: PathNames | None = None
) -> dict[str, Path]:
    """assessment.json, .html and .md; with `names`, files are named from the inventory's folder."""
    return r.write_report(
        folder, "assessment", assessment.to_dict(), render_html(assessment), render_markdown(assessment), names=names
    )
