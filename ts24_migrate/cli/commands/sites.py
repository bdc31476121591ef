"""`ts24-migrate sites ...`: the inventory and each site's state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ts24_migrate.core.errors import ConfigError
from ts24_migrate.runs.app import App, pass_app

if TYPE_CHECKING:  # the control store (SQLAlchemy) loads when the command runs, not for --help
    from ts24_migrate.core.control_store import RunRecord


@click.group("sites")
def sites() -> None:
    """The sites of the inventory."""


def _when(value: Any) -> str | None:
    return value.isoformat(sep=" ", timespec="seconds") if value is not None else None


def _run_entry(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "stage": run.stage,
        "host": run.host,
        "pid": run.pid,
        "started_at": _when(run.started_at),
        "abandoned_at": _when(run.abandoned_at),
    }


def _ledger_of(app: App):
    """site_id -> its ledger, or None when the inventory cannot sign (no signing_key)."""
    try:
        _ = app.signing_key  # raises ConfigError when the inventory names none
    except ConfigError:
        return None
    return app.ledger


@sites.command("list")
@pass_app
def list_sites(app: App) -> None:
    """List the inventory's sites with their state, cut-over date and next step (who runs what:
    a state never moves back, so the next step is what tells, e.g., that a validated site's latest
    validation failed), and the runs in progress or abandoned (a run whose process was killed:
    noticed here, marked `abandoned`, resumed by the next run of its stage).

    \b
    Example:
      ts24-migrate -i sites.yaml sites list --json
    """
    from ts24_migrate.core.stage_runs import close_abandoned_runs
    from ts24_migrate.runs.site_life import SiteFacts, next_step

    inventory = app.inventory
    store = app.control_store
    close_abandoned_runs(store, _ledger_of(app))
    rows: list[dict[str, Any]] = []
    shown: list[str] = []
    for s in inventory.sites:
        facts = SiteFacts.read(app, s.id)
        step = next_step(facts)
        runs = store.runs(s.id)
        rows.append(
            {
                "site": s.id,
                "office": s.office,
                "name": s.name,
                "cutover": s.cutover.isoformat(),
                "state": facts.state.value,
                "legacy": s.legacy,
                "attachments": str(inventory.attachments_path(s)) if s.attachments else None,
                "next": step.to_dict(app.inventory_path),
                "running": [_run_entry(r) for r in runs if r.outcome == "running"],
                "abandoned": [_run_entry(r) for r in runs if r.outcome == "abandoned"],
            }
        )
        shown.append(f"{step.who}: {' '.join(a for a in step.args if a != s.id)} ({step.why})")
    lines = [f"{'SITE':<16} {'OFFICE':<6} {'CUT-OVER':<10} {'STATE':<16} {'LEGACY (secret reference)':<30} NEXT"]
    for r, next_text in zip(rows, shown):
        lines.append(
            f"{r['site']:<16} {r['office']:<6} {r['cutover']:<10} {r['state']:<16} {r['legacy']:<30} {next_text}"
        )
        for run in r["running"]:
            lines.append(
                f"  running:   {run['stage']} run {run['run_id']} since {run['started_at']} UTC "
                f"(process {run['pid']} on {run['host']})"
            )
        for run in r["abandoned"]:
            lines.append(
                f"  abandoned: {run['stage']} run {run['run_id']} started {run['started_at']} UTC, "
                f"its process gone (noticed {run['abandoned_at']} UTC)"
            )
    app.emit({"sites": rows}, "\n".join(lines))


@sites.command("copies")
@click.argument("site_id", metavar="SITE")
@click.option(
    "--destroy-scratch",
    is_flag=True,
    help="First destroy the site's scratch restores and any staging table left in the target.",
)
@pass_app
def copies(app: App, site_id: str, destroy_scratch: bool) -> None:
    """List every place besides the legacy server that holds legacy data of SITE, why, and what
    becomes of it: the backup chain and the new system (by design), the control store, ledger,
    reports and Data Docs (personal data masked), outreach CSVs (delete after use), report copies
    handed over, scratch restores (destroy with the site), staging tables and the transform's
    temporary files (checked: none left). With --destroy-scratch, the scratch restores the tool
    made (and staging leftovers) are destroyed first, and the run that did it recorded.

    \b
    Example:
      ts24-migrate -i sites.yaml sites copies hn-01
      ts24-migrate -i sites.yaml --json sites copies hn-01 --destroy-scratch
    """
    from ts24_migrate.runs.copies import site_copies

    destroyed, found = site_copies(app, site_id, destroy_scratch=destroy_scratch)
    lines = []
    if destroyed is not None:
        lines.append(
            f"destroyed (run {destroyed['run_id']}): {len(destroyed['destroyed'])} scratch copies, "
            f"{len(destroyed['staging_tables_dropped'])} staging tables"
        )
        lines += [f"  not destroyed: {reason}" for reason in destroyed["not_destroyed"]]
    lines.append(f"{'COPY':<22} {'PRESENT':<8} {'DISPOSITION':<28} LOCATION")
    for copy in found:
        lines.append(
            f"{copy.kind.value:<22} {'yes' if copy.exists else 'no':<8} {copy.disposition.value:<28} {copy.location}"
        )
        lines.append(f"{'':<22} holds: {copy.holds}")
    app.emit({"site": site_id, "copies": [c.to_dict() for c in found], "destroyed": destroyed}, "\n".join(lines))


COMMANDS = [sites]
