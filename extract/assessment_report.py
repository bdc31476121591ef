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
    data = assessment.to_dict()
    summary = data["summary"]
    no_pk = summary["tables_without_primary_key"]
    overview = r.table(
        ["figure", "value"],
        [
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
        ],
    )
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
    by_column = [[c["table"], c["column"], *(c[k] for k in SUSPECTED_TEXT)] for c in data["suspected_text_by_column"]]
    status_rows = [[name, n] for name, n in data["dossiers_by_status"].items()]
    columns = [
        r.section(
            f"Columns of {t.name}",
            r.table(["column", "type", "nullable"], [[c["name"], c["type"], c["nullable"]] for c in t.columns]),
        )
        for t in assessment.tables
    ]
    return r.page(
        f"Assessment of site {assessment.site_id}",
        [
            r.section("Overview", overview),
            r.section(
                "Server reached",
                r.table(["fact", "value"], server_rows),
                r.paragraph(
                    "As the legacy server reports itself. Every later stage asks again and refuses "
                    "another server: kind, host, port, database and server id must be equal; the "
                    "version may change with a patch.",
                    "muted",
                ),
            ),
            r.section(
                "Tables",
                r.table(_HEADERS, _table_rows(assessment), numeric=(2, 4, 5, 6, 7)),
                r.paragraph(
                    "Role: mapped tables are loaded into the new system; system tables "
                    "(accounts, access log) are backed up and purged but never loaded; "
                    "unmapped tables are backed up and purged.",
                    "muted",
                ),
            ),
            r.section(
                "Suspected legacy text by column",
                r.table(_TEXT_HEADERS, by_column, numeric=(2, 3, 4, 5, 6))
                if by_column
                else r.paragraph("No text value looks like a legacy encoding."),
                r.paragraph(
                    "TCVN3 (all-caps TCVN3 included), VNI and NFD values are repaired to Unicode by "
                    "the load, and flagged. Ambiguous ones (TCVN3 or VNI?) and suspect ones (garbled "
                    "beyond any decoding) are loaded unchanged with a flag for a person to check.",
                    "muted",
                ),
            ),
            r.section("Dossiers by status", r.table(["status", "dossiers"], status_rows, numeric=(1,))),
            r.section(
                "Dossiers received after cut-over", r.paragraph(", ".join(data["received_after_cutover_ids"]) or "none")
            ),
            objects_section(assessment.objects, assessment.objects_note),
            attachments_section(assessment.attachments),
            *columns,
        ],
        subtitle=f"cut-over {data['cutover']} · assessed {r.timestamp(data['assessed_at'])} · {data['dialect']} · "
        "read-only",
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
