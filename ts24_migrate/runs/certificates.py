"""`certificate summary`: one page (HTML + JSON) of the fleet's certificates of sanitization.

For every site of the inventory: its state and, once certified, the server,
the date, the certificate's SHA-256 and whether the media sanitization and
the handover are recorded (done or pending). Read from each site's purge
folder (runs.purge_life); signatures are not checked here: `certificate
verify` does that, per certificate, and the page says so.

Example::

    summary, paths = write_certificate_summary(app)  # WORK_DIR/certificates/summary.{json,html}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ts24_migrate.core.report_paths import PathNames
from ts24_migrate.core.reporting import render, write_report
from ts24_migrate.runs.app import App

from .purge_life import PurgeFacts

SUMMARY_STEM = "summary"


def _certificate_body(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text(encoding="utf-8")).get("body")
    except (OSError, ValueError, AttributeError):
        return {}
    return body if isinstance(body, dict) else {}


def certificate_summary(app: App) -> dict[str, Any]:
    rows = []
    for site in app.inventory.sites:
        facts = PurgeFacts.read(app, site.id)
        row: dict[str, Any] = {
            "site_id": site.id,
            "office": site.office,
            "state": app.control_store.state(site.id).value,
            "certified": False,
        }
        if facts.certificate is not None:
            body = _certificate_body(facts.certificate)
            server = (body.get("media") or {}).get("server") or {}
            row.update(
                {
                    "certified": True,
                    "date": body.get("date"),
                    "server": {k: server.get(k) for k in ("kind", "host", "port", "database")},
                    "certificate": str(facts.certificate),
                    "certificate_sha256": facts.certificate_sha256,
                    "media_attestation": "done" if facts.media_attestation else "pending",
                    "handover": "done" if facts.handover else "pending",
                    "addenda": [str(p) for p in (facts.media_attestation, facts.handover) if p],
                }
            )
        rows.append(row)
    certified = [r for r in rows if r["certified"]]
    return {
        "sites": rows,
        "total": len(rows),
        "certified": len(certified),
        "retired": sum(1 for r in certified if r["handover"] == "done"),
        "media_pending": sum(1 for r in certified if r["media_attestation"] == "pending"),
        "handover_pending": sum(1 for r in certified if r["handover"] == "pending"),
    }


def _server(row: dict[str, Any]) -> str:
    server = row.get("server") or {}
    where = f"{server.get('host') or ''}:{server.get('port')}" if server.get("port") else (server.get("host") or "")
    return " ".join(p for p in (server.get("kind"), where, server.get("database")) if p)


def summary_html(summary: dict[str, Any]) -> str:
    """The page (ts24_migrate/runs/templates/certificate_summary.html.j2) over the summary."""
    certified = [r for r in summary["sites"] if r["certified"]]
    return render(
        "ts24_migrate.runs",
        "certificate_summary.html.j2",
        title="Certificates of sanitization",
        subtitle="One row per certified site of the inventory.",
        certified=summary["certified"],
        total=summary["total"],
        retired=summary["retired"],
        media_pending=summary["media_pending"],
        handover_pending=summary["handover_pending"],
        certified_rows=[
            (r["site_id"], _server(r), r["date"], r["certificate_sha256"], r["media_attestation"], r["handover"])
            for r in certified
        ],
        others=[(r["site_id"], r["state"]) for r in summary["sites"] if not r["certified"]],
    )


def write_certificate_summary(app: App, out: Path | None = None) -> tuple[dict[str, Any], dict[str, Path]]:
    """(the summary, the paths of summary.json and summary.html)."""
    folder = out or app.inventory.work_path / "certificates"
    summary = certificate_summary(app)
    return summary, write_report(
        folder, SUMMARY_STEM, summary, summary_html(summary), names=PathNames.for_inventory(app.inventory)
    )
