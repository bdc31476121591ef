"""The validation report as one self-contained HTML page (no script, no external asset).

Everything shown is read from the `SiteReport` (validation/report.py), the
same data as the JSON beside it; nothing is computed here but the page's view
of it, which validation/templates/validation_report.html.j2 lays out. Sections
carry ids (verdict, accounting, rejects, flags, backup, objects, attachments,
nul-text, expectations, parity, dossiers, ledger, runs, codes) so that a reader,
or a test, can jump to them. Every moment is written one way
(reporting.timestamp), every file by its name from the inventory's folder,
every code with its meaning.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from extract.findings_report import attachments_section, nul_text_section, objects_section
from ts24_migrate.core.labels import IN_FLIGHT_LABEL, RECEIVED_AFTER_CUTOVER_LABEL
from ts24_migrate.core.reporting import render, timestamp

from .charts import Bar, Segment, bar_chart, simple_bars
from .code_legend import meaning
from .expectation_words import plain_words

if TYPE_CHECKING:  # validation/report.py imports this module when it writes the page
    from .report import SiteReport

KEYS_LISTED = 50  # parity keys listed per kind and table in the page (the JSON keeps what was recorded)


def _verdict(data: dict[str, Any]) -> dict[str, Any]:
    verdict = data["verdict"]
    failed = len(verdict["reasons"])
    text = (
        "PASSED: every check holds"
        if verdict["passed"]
        else f"FAILED: {failed} check{' does' if failed == 1 else 's do'} not hold"
    )
    return {"passed": verdict["passed"], "text": text, "reasons": verdict["reasons"]}


def _cards(data: dict[str, Any]) -> list[dict[str, Any]]:
    acc, parity, target = data["accounting"]["totals"], data["parity"], data["expectations"]["target"]
    return [
        {
            "label": "accounting",
            "value": f"{acc.get('source')} rows in {acc.get('tables')} tables",
            "ok": acc.get("ok"),
        },
        {
            "label": "parity with the target",
            "value": "exact" if parity.get("exact") else f"{parity.get('differences')} differences",
            "ok": parity.get("exact"),
        },
        {
            "label": "target expectations",
            "value": f"{(target.get('evaluated') or 0) - (target.get('failed') or 0)} of {target.get('evaluated')} hold",
            "ok": target.get("success"),
        },
        {
            "label": "backup verified",
            "value": str(data["backup"].get("backup_id")),
            "ok": data["backup"].get("verified"),
        },
    ]


def _personal_data(data: dict[str, Any]) -> dict[str, Any]:
    """Whether examples mask personal data (the default) or show it (internal use only): said at the top."""
    personal = data.get("personal_data") or {}
    return {"shown": personal.get("examples") == "shown", "notice": personal.get("notice")}


def _charts(data: dict[str, Any]) -> dict[str, Markup]:
    """The inline SVG charts (validation/charts.py escapes what they write)."""
    accounting = [
        Bar(
            row["table"],
            (
                Segment("loaded", row["loaded"] or 0),
                Segment("rejected", row["rejected"] or 0),
                Segment("backed up only (not mapped)", 0 if row["mapped"] else row["backed_up"] or 0),
            ),
        )
        for row in data["accounting"]["tables"]
    ]
    rejects = simple_bars(list(data["rejects"]["by_reason"].items()), "rejected rows")
    dossiers = simple_bars(list(data["dossiers_by_status"].items()), "dossiers")
    return {
        "accounting": Markup(bar_chart("Rows per legacy table", accounting)),
        "rejects": Markup(bar_chart("Rejected rows by reason", rejects)),
        "dossiers": Markup(bar_chart("Dossiers by status", dossiers)),
    }


def _rejects(data: dict[str, Any]) -> dict[str, Any]:
    rejects = data["rejects"]
    return {"rows": _coded_rows(rejects["tables"], "by_reason"), "total": rejects["total"]}


def _flags(data: dict[str, Any]) -> list[dict[str, Any]]:
    flags = data.get("flags") or {"by_code": {}, "tables": {}}
    return _coded_rows(flags["tables"], "rows_flagged")


def _coded_rows(tables: dict[str, Any], counts: str) -> list[dict[str, Any]]:
    """One row per table and code (a reject reason or a flag): its meaning, how many rows, examples."""
    return [
        {
            "table": table,
            "code": code,
            "meaning": meaning(code),
            "count": count,
            "examples": entry["examples"].get(code) or [],
        }
        for table, entry in tables.items()
        for code, count in entry[counts].items()
    ]


def _words(e: dict[str, Any]) -> str:
    """The expectation in plain words: as recorded, or (older runs) made from its type and column."""
    return e.get("description") or plain_words(e["expectation"], {"column": e.get("column")})


def _example(value: Any) -> str:
    return "(empty)" if value is None or str(value).strip() == "" else str(value)


def _expectation_rows(tables: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per expectation: every one for the target (all kept), the failed ones for the legacy
    profile (which keeps only those, and its counts)."""
    rows: list[dict[str, Any]] = []
    for table, suite in tables.items():
        listed = suite.get("expectations")
        if listed is None:
            listed = suite.get("failed_expectations") or []
        for e in listed:
            count = e.get("unexpected_count")
            rows.append(
                {
                    "table": table,
                    "words": _words(e),
                    "holds": bool(e["success"]),
                    "more": False,
                    "count_text": f"{count} row does not" if count == 1 else f"{count} rows do not" if count else "",
                    "examples": ", ".join(map(_example, e.get("examples") or [])),
                    "error": e.get("error"),
                }
            )
        kept = len(listed)
        if kept < (suite.get("evaluated") or 0):
            rows.append(
                {"table": table, "words": f"{suite['evaluated'] - kept} more expectations", "holds": True, "more": True}
            )
    return rows


def _data_docs(target: str | None, folder: Path, text: str) -> dict[str, Any]:
    """A link relative to the report's folder (the Data Docs sit beside the report), and whether it is there."""
    if not target:
        return {"href": None, "text": text, "present": False}
    return {"href": target, "text": text, "present": (folder / target).exists()}


def _keys(entries: list[dict[str, Any]], count: int) -> str:
    shown = ", ".join(
        f"{e['target_key']}" + (f" (legacy {e['legacy_key']})" if e.get("legacy_key") else "")
        for e in entries[:KEYS_LISTED]
    )
    more = count - min(len(entries), KEYS_LISTED)
    return shown + (f" … and {more} more" if more > 0 else "")


def _parity(data: dict[str, Any]) -> dict[str, Any]:
    parity = data["parity"]
    rows, listing = [], []
    for table, entry in parity["tables"].items():
        counts = {kind: entry.get(f"{kind}_count", len(entry[kind])) for kind in ("missing", "extra", "changed")}
        rows.append(
            {
                "table": table,
                "lineage_rows": entry["lineage_rows"],
                "target_rows": entry["target_rows"],
                **counts,
                "exact": entry["exact"],
            }
        )
    for table, entry in parity["tables"].items():
        for kind in ("missing", "extra", "changed"):
            if entry[kind]:
                count = entry.get(f"{kind}_count", len(entry[kind]))
                listing.append({"table": table, "kind": kind, "shown": _keys(entry[kind], count)})
    return {"rows": rows, "listing": listing, "notes": parity.get("notes") or []}


def _runs(data: dict[str, Any]) -> list[list[Any]]:
    runs = [("validate", data["validation"]), *data["runs"].items()]
    return [
        [stage, run["run_id"], run["outcome"], timestamp(run["finished_at"])] if run else [stage, "none", "", ""]
        for stage, run in runs
    ]


def _abandoned(data: dict[str, Any]) -> str:
    return "; ".join(
        f"{a['stage']} {a['run_id']} (started {timestamp(a['started_at'])}, noticed {timestamp(a['abandoned_at'])})"
        for a in (data.get("abandoned_runs") or [])[:10]
    )


def _codes(data: dict[str, Any]) -> list[dict[str, Any]]:
    codes = data.get("codes") or {}
    shown = codes.get("in_this_report") or {}
    known = codes.get("all") or {}
    rows = [
        {
            "code": code,
            "action": entry["action"],
            "stage": entry.get("stage") or "",
            "meaning": entry.get("meaning") or meaning(code),
            "shown": "yes" if code in shown else "",
        }
        for code, entry in known.items()
    ]
    rows += [
        {"code": code, "action": entry["action"], "stage": "", "meaning": meaning(code), "shown": "yes"}
        for code, entry in shown.items()
        if code not in known
    ]
    return rows


def _backup_findings(data: dict[str, Any]) -> list[Markup]:
    """Objects, the attachment folder and NUL text as the backup recorded them (shared with the assessment)."""
    backup = data["backup"]
    return [
        objects_section(backup.get("object_items"), backup.get("objects_note")),
        attachments_section(
            backup.get("attachment_references"),
            rejects_by_reason=data["rejects"]["by_reason"],
            files_backed_up=backup.get("attachment_files"),
        ),
        nul_text_section([tuple(row) for row in backup.get("nul_text") or []]),
    ]


def render_html(report: SiteReport, *, folder: Path) -> str:
    """The page for a SiteReport written into `folder` (links to Data Docs are relative to it)."""
    data = report.to_dict()
    validation = data["validation"]
    folder = Path(folder)
    expectations = data["expectations"]
    return render(
        "validation",
        "validation_report.html.j2",
        title=f"Validation report of site {data['site_id']}",
        subtitle=f"validate run {validation['run_id']} · finished {timestamp(validation['finished_at'])} · site "
        f"state {data['site_state']} · rebuilt {timestamp(data['rebuilt_at'])} from the control store",
        site_id=data["site_id"],
        verdict=_verdict(data),
        cards=_cards(data),
        personal_data=_personal_data(data),
        accounting=data["accounting"],
        charts=_charts(data),
        rejects=_rejects(data),
        flags=_flags(data),
        backup=data["backup"],
        backup_findings=_backup_findings(data),
        expectations=expectations,
        data_docs={
            "target": _data_docs(expectations["target"].get("data_docs"), folder, "target Data Docs"),
            "legacy": _data_docs(expectations["legacy"].get("data_docs"), folder, "legacy profile Data Docs"),
        },
        expectation_rows_of={
            kind: _expectation_rows(expectations[kind].get("tables") or {}) for kind in ("target", "legacy")
        },
        parity=_parity(data),
        dossiers_by_status=[[s, n] for s, n in data["dossiers_by_status"].items()],
        ledger=data["ledger"],
        runs=_runs(data),
        abandoned_count=len(data.get("abandoned_runs") or []),
        abandoned=_abandoned(data),
        assessment=data.get("assessment") or {},
        in_flight_label=IN_FLIGHT_LABEL,
        received_after_cutover_label=RECEIVED_AFTER_CUTOVER_LABEL,
        codes=_codes(data),
    )
