"""`ts24-migrate fleet ...`: every site at a glance, and the daily check by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ts24_migrate.core.errors import VerificationError
from ts24_migrate.runs.app import App, pass_app

if TYPE_CHECKING:  # the control store (SQLAlchemy) loads when a command runs, not for --help
    from ts24_migrate.runs.fleet_status import FleetStatus, SiteStatus

_COLUMNS = (
    ("ATTENTION", 9),
    ("SITE", 12),
    ("STATE", 19),
    ("LAST RUN", 31),
    ("BACKED UP", 10),
    ("LOADED", 9),
    ("REJECTED", 8),
    ("FLAGGED", 7),
    ("IN FLIGHT", 9),
    ("FORECAST", 16),
    ("CHECK", 6),
)


@click.group("fleet")
def fleet() -> None:
    """The inventory's sites together: status for agency IT, the daily check."""


def _figure(value: Any) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def _cells(site: SiteStatus) -> list[str]:
    from ts24_migrate.runs.fleet_status import LIFE

    last = site.last_run
    last_text = f"{last.stage} {last.outcome} {(last.finished_at or last.started_at):%m-%d %H:%M}" if last else "-"
    check = "-" if site.check is None else "ok" if site.check.outcome == "succeeded" else site.check.outcome
    return [
        site.attention.label,
        site.site_id,
        f"{site.state} {site.step}/{len(LIFE)}",
        last_text,
        _figure(site.backed_up),
        _figure(site.loaded),
        _figure(site.rejected),
        _figure(site.flagged),
        _figure(site.in_flight),
        site.forecast_drain_date or "-",
        check,
    ]


def _human(status: FleetStatus, page: str | None) -> str:
    totals = status.totals
    rows = totals["rows"]
    lines = [
        f"fleet: {totals['sites']} sites as of {status.generated_at:%Y-%m-%d %H:%M:%S} UTC; "
        + ", ".join(f"{label} {n}" for label, n in totals["attention"].items()),
        f"  validated or later {totals['validated_or_later']}, drained or later {totals['drained_or_later']}; "
        f"waiting on: " + (", ".join(f"{who} {n}" for who, n in totals["waiting_on"].items()) or "nobody"),
        f"  rows backed up {_figure(rows['backed_up'])}, loaded {_figure(rows['loaded'])}, rejected "
        f"{_figure(rows['rejected'])}, flagged {_figure(rows['flagged'])}; dossiers in flight "
        f"{_figure(totals['in_flight'])} (last forecast drain date {totals['last_forecast_drain_date'] or '-'})",
        f"  daily checks: {totals['checks']['passed']} passed, {totals['checks']['failed']} failed, "
        f"{totals['checks']['never']} never run",
        "",
    ]
    lines.append(" ".join(f"{name:<{width}}" for name, width in _COLUMNS) + " NEXT")
    for site in status.sites:
        cells = _cells(site)
        lines.append(
            " ".join(f"{cell:<{width}}" for cell, (_, width) in zip(cells, _COLUMNS))
            + f" {site.next.who or '-'}: {site.next.action}"
        )
        if site.next.command:
            lines.append(f"{'':>10}run: {site.next.command}")
        for blocker in site.blockers:
            lines.append(f"{'':>10}blocked by {blocker.error_class} in {blocker.stage}: {blocker.message}")
    if page:
        lines += ["", f"page: {page}"]
    return "\n".join(lines)


@fleet.command("status")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON output.")
@click.option("--no-page", is_flag=True, help="Do not write the HTML page into the work folder.")
@pass_app
def status_command(app: App, json_output: bool, no_page: bool) -> None:
    """Every site of the inventory at a glance: its state in the site's life, its last run and how it
    ended, rows backed up, loaded, rejected and flagged, dossiers still in flight and the drain
    forecast, what comes next and who does it (IT, custodian, approver, operator), and what blocks
    it (with the error's class). Totals first; sites that need attention first (blocked, failed,
    waiting for someone, to do, running, draining, done).

    Reads the control store only. Also writes the page WORK_DIR/fleet/fleet-status.html (and
    .json), which the flows publish as the Prefect artifact `ts24-fleet-status`.

    \b
    Example:
      ts24-migrate -i sites.yaml fleet status
      ts24-migrate -i sites.yaml fleet status --json | jq '.sites[] | select(.attention == "blocked")'
    """
    from ts24_migrate.core.report_paths import PathNames
    from ts24_migrate.runs.fleet_page import write_fleet_page
    from ts24_migrate.runs.fleet_status import read_fleet_status

    app.json_output = app.json_output or json_output
    status = read_fleet_status(app.control_store, app.inventory)
    page = None
    if not no_page:
        paths = write_fleet_page(status, app.inventory)
        page = str(paths["html"])
    data = PathNames.for_inventory(app.inventory).scrub(status.to_dict())
    app.emit({**data, "page": page}, _human(status, page))


@fleet.command("check")
@click.argument("site_ids", metavar="[SITE]...", nargs=-1)
@pass_app
def check_command(app: App, site_ids: tuple[str, ...]) -> None:
    """Verify each site's backup chain (signatures, parent links, the SHA-256 of every encrypted part)
    and audit ledger (every event's hash, signature and place), without any key, and record the
    result for fleet status: a failure marks the site blocked until a later check passes. The
    check-sites deployment runs it daily. Default: every site with a backup or a ledger.
    Exit code 1 when any site fails.

    \b
    Example:
      ts24-migrate -i sites.yaml fleet check
      ts24-migrate -i sites.yaml fleet check hn-01 hn-02
    """
    from ts24_migrate.runs.check import check_step, sites_to_check

    for site_id in site_ids:
        app.site(site_id)
    chosen = list(site_ids) or sites_to_check(app)
    results, failed, lines = [], [], []
    for site_id in chosen:
        try:
            result = check_step(app, site_id)
            results.append({"site_id": site_id, "ok": True, **result.to_dict()})
            lines.append(
                f"site {site_id}: OK ({result.chain.checked}: {result.chain.backups} "
                f"backups, {result.chain.parts_checked} parts; ledger: {result.ledger.events} events)"
            )
        except VerificationError as exc:
            problems = list(exc.problems) or [str(exc)]
            results.append({"site_id": site_id, "ok": False, "problems": problems})
            failed.append(site_id)
            lines.append(f"site {site_id}: BLOCKED, {len(problems)} problem(s)")
            lines += [f"  {problem}" for problem in problems[:20]]
    app.emit({"sites": results}, "\n".join(lines) or "no site has a backup or a ledger to check")
    if failed:
        raise VerificationError(f"{len(failed)} of {len(chosen)} sites failed the check: {', '.join(failed)}")


COMMANDS = [fleet]
