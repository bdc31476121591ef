"""The reconciliation report: JSON, self-contained HTML, and the outreach CSV.

The figures are those of the run (reconcile.site_reconcile.Reconciliation),
never recomputed for display. The CSV lists the units that must re-register
and have not, with their contact details, for the office's outreach; it holds
personal contact data, so it is written readable by its owner only (0600)
and its content never goes into the JSON, the HTML or Prefect artifacts
(they give the count and the file's path). Rows the carry-over blocked or
found gone are listed by legacy key, masked where the key is personal (an
insured person's social insurance number; ts24_migrate/core/personal_data.py).

Example::

    paths = write_reconciliation_report(result, Path("work/sites/hn-01/reports") / run_id)
    paths["html"], paths["json"], paths["outreach_csv"]
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from markupsafe import Markup

from ts24_migrate.core.personal_data import MASKED, Masking
from ts24_migrate.core.private_files import private_dir, write_private_text
from ts24_migrate.core.report_paths import PathNames
from ts24_migrate.core.reporting import render, write_report

from .burndown import burndown_svg
from .findings import CONTACT_FIELDS, LISTED, InFlight
from .site_reconcile import Reconciliation

REPORT_STEM = "reconciliation"
OUTREACH_CSV = "reregistration-outreach.csv"


def _carry_over(result: Reconciliation, masking: Masking) -> dict[str, Any]:
    carried = result.carried.to_dict()
    return {
        **carried,
        "blocked": [masking.example(b, table=b.get("table")) for b in carried["blocked"]],
        "gone": [masking.example(g, table=g.get("table")) for g in carried["gone"]],
    }


def report_data(result: Reconciliation, masking: Masking = MASKED) -> dict[str, Any]:
    flights = _in_flight(result)
    return {
        "site_id": result.site_id,
        "run_id": result.run_id,
        "summary": result.summary(),
        "drained": result.drained,
        "criteria": [c.to_dict() for c in result.criteria],
        "increment": result.increment,
        "tables": {name: {k: v for k, v in t.items() if k != "changed_keys"} for name, t in result.tables.items()},
        "attachments": result.files,
        "carry_over": _carry_over(result, masking),
        "in_flight": {
            "count": flights.count,
            "by_status": flights.by_status,
            "dossiers": [d.to_dict() for d in flights.dossiers],
        },
        "overdue": [d.to_dict() for d in flights.overdue],
        "received_after_cutover": [d.to_dict() for d in result.forbidden],
        "drift": result.account.drift,
        "dossier_account": {
            "dossiers": result.account.dossiers,
            "current": result.account.current,
            "rejected": result.account.rejected,
            "drifting": len(result.account.drift),
        },
        "likely_duplicates": result.duplicates,
        "reregistration": {
            **result.reregistration.summary(),
            "registered": result.reregistration.registered,
            "not_registered": [u["unit_code"] for u in result.reregistration.missing],
        },
        "accounting": result.accounting,
        "chain": result.chain.to_json(),
        "burndown": [
            {"as_of": p.as_of.isoformat(sep=" ", timespec="seconds"), "in_flight": p.in_flight} for p in result.burndown
        ],
        "forecast": result.prediction.to_dict() if result.prediction else None,
        "unread": result.unread,
        "warnings": result.warnings,
        "personal_data": {"examples": masking.label, "notice": masking.notice},
    }


def _dossier_rows(dossiers: list[Any], limit: int = LISTED) -> list[list[Any]]:
    return [
        [
            d.legacy_id,
            d.number,
            d.unit,
            d.procedure,
            d.period,
            d.status,
            d.received_at.strftime("%Y-%m-%d %H:%M") if d.received_at else "",
            d.due_date.isoformat() if d.due_date else "",
        ]
        for d in dossiers[:limit]
    ]


_DOSSIER_HEADERS = ["legacy id", "dossier no", "unit", "procedure", "period", "status", "received", "due"]


def _listed(items: list[Any], rows: list[list[Any]]) -> dict[str, Any]:
    """The first LISTED of `items` as table rows, and how many there are (the page says how many more)."""
    return {"count": len(items), "rows": rows}


def report_html(result: Reconciliation, outreach_csv: Path | None, masking: Masking = MASKED) -> str:
    """The page (reconcile/templates/reconciliation.html.j2) over the run's figures."""
    flights = _in_flight(result)
    state = "DRAINED" if result.drained else "NOT DRAINED"
    run_text = (
        f"Run {result.run_id}, mode {result.mode}, as of {result.as_of:%Y-%m-%d %H:%M} (legacy clock); "
        f"cut-over {result.cutover.isoformat()}."
        + (
            f" It finishes run {result.completes_run}, killed after its increment was chained."
            if result.completes_run
            else ""
        )
    )
    increment = result.increment
    increment_text = (
        f"Incremental backup {increment['backup_id']} (chain place {increment.get('chain_seq')}), "
        f"manifest fingerprint {increment['manifest_fingerprint']}: {increment['rows']} rows"
        + (f", written by run {increment['written_by_run']}." if increment.get("written_by_run") else ".")
        if increment
        else "Nothing changed since the last increment: no backup written."
    )
    files = result.files
    files_text = (
        f"Attachment folder: {files['new']} new, {files['changed']} changed, {files['deleted']} deleted "
        f"of {files['live_files']} files ({files['hashed']} hashed)."
        if files
        else "No attachment folder."
    )
    carried = result.carried
    prediction = result.prediction
    forecast_text = (
        f"Forecast drain date: {prediction.drain_date:%Y-%m-%d} ({prediction.note}"
        + (f", about {prediction.per_day:.1f} dossiers finished a day" if prediction.per_day else "")
        + ")."
        if prediction and prediction.drain_date
        else f"No forecast: {prediction.note}."
        if prediction
        else ""
    )
    reg = result.reregistration
    return render(
        "reconcile",
        "reconciliation.html.j2",
        title=f"Reconciliation of {result.site_id}",
        subtitle=f"{state} — run {result.run_id}",
        listed=LISTED,
        drained=result.drained,
        state=state,
        criteria=[[c.name, "yes" if c.holds else "NO", c.detail] for c in result.criteria],
        run_text=run_text,
        personal_data_notice=masking.notice,
        by_status=[[k, v] for k, v in flights.by_status.items()],
        in_flight=flights.count,
        burndown=Markup(burndown_svg(result.burndown, prediction)) if prediction else "",  # escaped SVG
        forecast_text=forecast_text,
        dossier_headers=_DOSSIER_HEADERS,
        overdue=_listed(flights.overdue, _dossier_rows(flights.overdue)),
        cutover=result.cutover.isoformat(),
        forbidden=_listed(result.forbidden, _dossier_rows(result.forbidden)),
        account={
            "current": result.account.current,
            "rejected": result.account.rejected,
            "dossiers": result.account.dossiers,
        },
        drift=_listed(
            result.account.drift,
            [
                [d["legacy_id"], d["dossier_no"], d["kind"], d["legacy_status"], d["target_status"]]
                for d in result.account.drift[:LISTED]
            ],
        ),
        duplicates=_listed(
            result.duplicates,
            [
                [
                    p["legacy_id"],
                    p["legacy_dossier_no"],
                    p["legacy_status"],
                    p["portal_dossier_no"],
                    p["portal_status"],
                    p["unit_code"],
                    p["procedure_code"],
                    p["declaration_period"],
                ]
                for p in result.duplicates[:LISTED]
            ],
        ),
        reregistration={
            "must": reg.must,
            "missing": len(reg.missing),
            "registered": _listed(
                reg.registered,
                [[u["unit_code"], u["filed_on"], u["transaction_mode"]] for u in reg.registered[:LISTED]],
            ),
        },
        outreach_csv=outreach_csv.name if outreach_csv is not None else None,
        increment_text=increment_text,
        tables=[
            [n, t["mode"], t["rows_read"], t["new"], t["changed"], t["deleted"], t["live_rows"], t["chain_rows"]]
            for n, t in result.tables.items()
        ],
        files_text=files_text,
        carry_over={
            "tables": [
                [
                    n,
                    t["queued"],
                    t["updated"],
                    t["inserted"],
                    t["rejected"],
                    t["accepted_again"],
                    t["blocked"],
                    t["gone"],
                ]
                for n, t in carried.tables.items()
            ],
            "blocked": [
                [b["table"], b["legacy_key"], b["reason_code"], b["message"]]
                for b in _carry_over(result, masking)["blocked"]
            ],  # legacy keys masked where personal
            "gone": len(carried.gone),
        },
        accounting=[
            [
                a["table"],
                a["source"],
                a["backed_up"],
                a["loaded"],
                a["rejected"],
                "yes" if a["ok"] else "NO",
                "; ".join(a["problems"]),
            ]
            for a in result.accounting
        ],
        chain=[
            [b["backup_id"], b["kind"], b["manifest_fingerprint"], b["rows"], "yes" if b["ok"] else "NO"]
            for b in result.chain.backups
        ],
        chain_problems=result.chain.problems,
        warnings=result.warnings,
    )


def write_outreach_csv(result: Reconciliation, folder: Path) -> Path | None:
    if not result.reregistration.missing:
        return None
    private_dir(folder)
    path = folder / OUTREACH_CSV
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(CONTACT_FIELDS))
    writer.writeheader()
    writer.writerows(result.reregistration.missing)
    return write_private_text(path, text.getvalue(), encoding="utf-8-sig")  # BOM: Excel reads UTF-8


def write_reconciliation_report(
    result: Reconciliation, folder: Path, *, names: PathNames | None = None, masking: Masking = MASKED
) -> dict[str, Path]:
    """reconciliation.json and .html (and the outreach CSV); with `names`, files are named from the
    inventory's folder (ts24_migrate/core/report_paths.py); personal data as `masking` says."""
    outreach = write_outreach_csv(result, folder)
    data = report_data(result, masking)
    data["outreach_csv"] = outreach.name if outreach else None  # beside the report
    paths = write_report(folder, REPORT_STEM, data, report_html(result, outreach, masking), names=names)
    if outreach is not None:
        paths["outreach_csv"] = outreach
    return paths


def _in_flight(result: Reconciliation) -> InFlight:
    """The run's in-flight dossiers: a reconciliation is reported only once it has counted them."""
    if result.in_flight is None:
        raise ValueError(f"reconciliation {result.run_id} has not counted its in-flight dossiers yet")
    return result.in_flight
