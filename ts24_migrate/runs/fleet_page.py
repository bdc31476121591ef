"""The fleet status as a page (Jinja2 template over core's base layout), as JSON and as Markdown for a Prefect artifact.

The page is written into the work folder (`work/fleet/fleet-status.html` and
`.json`), replaced whole each time (several workers may write it at once: each
writes a file of its own and renames it over the old one). Like every report,
it names files from the inventory's folder, never by a host's paths.

Example::

    paths = write_fleet_page(read_fleet_status(store, inventory), inventory)
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from ts24_migrate.core.config import Inventory
from ts24_migrate.core.report_paths import PathNames
from ts24_migrate.core.reporting import templates

from .fleet_status import FleetStatus

FOLDER = "fleet"
STEM = "fleet-status"
ATTENTION_SHOWN = 50  # sites listed in the Markdown artifact; the page and the JSON list all


def _figure(value: Any) -> str:
    return "—" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


_TEMPLATES = templates("ts24_migrate.runs")  # its templates/ folder, then core's base layout
_TEMPLATES.filters["figure"] = _figure


def fleet_html(status: FleetStatus) -> str:
    data = status.to_dict()
    return _TEMPLATES.get_template("fleet_status.html.j2").render(title="TS24 fleet status", **data)


def fleet_markdown(status: FleetStatus, page: str | None = None) -> str:
    """Totals, then the sites that need attention first (at most ATTENTION_SHOWN)."""
    totals = status.totals
    rows = totals["rows"]
    lines = [
        f"# TS24 fleet: {totals['sites']} sites",
        f"as of {status.generated_at:%Y-%m-%d %H:%M:%S} UTC" + (f"; page: `{page}`" if page else ""),
        "",
        "- " + ", ".join(f"{label}: **{n}**" for label, n in totals["attention"].items()),
        f"- validated or later: **{totals['validated_or_later']}**, drained or later: {totals['drained_or_later']}",
        f"- rows backed up {_figure(rows['backed_up'])}, loaded {_figure(rows['loaded'])}, rejected "
        f"{_figure(rows['rejected'])}, flagged {_figure(rows['flagged'])}",
        f"- dossiers in flight: {_figure(totals['in_flight'])}; last forecast drain date: "
        f"{totals['last_forecast_drain_date'] or '—'}",
        f"- daily checks: {totals['checks']['passed']} passed, {totals['checks']['failed']} failed, "
        f"{totals['checks']['never']} never run",
        "",
        "| attention | site | state | next (who) | blocker |",
        "|---|---|---|---|---|",
    ]
    for site in status.sites[:ATTENTION_SHOWN]:
        blocker = site.blockers[0] if site.blockers else None
        cells = [
            site.attention.label,
            site.site_id,
            site.state,
            f"{site.next.who or '—'}: {site.next.action}",
            f"{blocker.error_class} in {blocker.stage}" if blocker else "—",
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    if len(status.sites) > ATTENTION_SHOWN:
        lines.append(f"\n... and {len(status.sites) - ATTENTION_SHOWN} more sites on the page")
    return "\n".join(lines)


def fleet_page_path(inventory: Inventory) -> Path:
    return inventory.work_path / FOLDER / f"{STEM}.html"


def write_fleet_page(status: FleetStatus, inventory: Inventory) -> dict[str, Path]:
    """Write fleet-status.html and .json into work/fleet/; returns their paths."""
    names = PathNames.for_inventory(inventory)
    html_path = fleet_page_path(inventory)
    paths = {"html": html_path, "json": html_path.with_suffix(".json")}
    texts = {
        "html": names.scrub_text(fleet_html(status)),
        "json": json.dumps(names.scrub(status.to_dict()), indent=2, ensure_ascii=False),
    }
    html_path.parent.mkdir(parents=True, exist_ok=True)
    for kind, path in paths.items():
        _replace(path, texts[kind])
    return paths


def _replace(path: Path, text: str) -> None:
    """Write a file of this process's own, then rename it over `path`: readers see one whole page."""
    temporary = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
