"""The validation report's key figures as Prefect artifacts (markdown and a table).

The flow publishes them next to the run in the Prefect UI; the full report is
the HTML/JSON file whose path the markdown gives. Only figures and paths go
into artifacts, never connection details.

Example::

    report = build_site_report(store, "hn-01", run_id=result["run_id"])
    artifacts = report_artifacts("hn-01", report)  # published by flows.artifacts.publish_report_artifacts
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .report import SiteReport

STAGE = "validation"


def report_markdown(report: SiteReport) -> str:
    """Verdict, reasons and key figures, for the Prefect UI."""
    data = report.to_dict()
    verdict, totals = data["verdict"], data["accounting"]["totals"]
    parity, target, backup = data["parity"], data["expectations"]["target"], data["backup"]
    lines = [f"# Validation of site {report.site_id}: {'PASSED' if verdict['passed'] else 'FAILED'}", ""]
    lines += [f"- fails: {reason}" for reason in verdict["reasons"]]
    lines += [
        f"- accounting: **{totals.get('source')}** source rows in {totals.get('tables')} tables, "
        f"**{totals.get('backed_up')}** backed up; mapped: **{totals.get('loaded')}** loaded + "
        f"**{totals.get('rejected')}** rejected ({totals.get('conflicts')} conflicts): "
        + ("adds up" if totals.get("ok") else "**does not add up**"),
        "- parity: "
        + (
            "exact"
            if parity.get("exact")
            else f"**{parity.get('differences')} differences** ({parity.get('missing')} missing, "
            f"{parity.get('extra')} extra, {parity.get('changed')} changed)"
        ),
        f"- target expectations: {(target.get('evaluated') or 0) - (target.get('failed') or 0)} of "
        f"{target.get('evaluated')} hold",
        f"- backup `{backup.get('backup_id')}`: "
        + ("verified" if backup.get("verified") else "**not verified**")
        + f", manifest SHA-256 `{backup.get('manifest_fingerprint')}`",
        "- rejected rows by reason: "
        + (", ".join(f"{reason} {n}" for reason, n in data["rejects"]["by_reason"].items()) or "none"),
        "- rows loaded with flags, by code: "
        + (", ".join(f"{code} {n}" for code, n in (data.get("flags") or {}).get("by_code", {}).items()) or "none"),
        f"- audit-ledger head: `{data['ledger'].get('hash')}` (seq {data['ledger'].get('seq')})",
        f"- report: `{data['recorded_paths'].get('html')}`",
        f"- validate run: `{report.run_id}`",
    ]
    return "\n".join(lines)


def accounting_rows(report: SiteReport) -> list[dict[str, Any]]:
    """One row per legacy table: the accounting as the report shows it."""
    return [
        {
            "table": row["table"],
            "role": row.get("role"),
            "source": row["source"],
            "backed_up": row["backed_up"],
            "loaded": row["loaded"],
            "rejected": row["rejected"],
            "conflicts": row["conflicts"],
            "adds_up": row["ok"],
            "problems": "; ".join(row["problems"]),
        }
        for row in report.to_dict()["accounting"]["tables"]
    ]


@dataclass(frozen=True)
class ReportArtifacts:
    """What the flow publishes next to its run: the markdown summary and the per-table accounting."""

    stage: str
    markdown: str
    markdown_description: str
    rows: list[dict[str, Any]]
    table_description: str


def report_artifacts(site_id: str, report: SiteReport) -> ReportArtifacts:
    verdict = "passed" if report.passed else "failed"
    return ReportArtifacts(
        STAGE,
        report_markdown(report),
        f"validation of {site_id}: {verdict}",
        accounting_rows(report),
        f"per-table accounting of {site_id}",
    )
