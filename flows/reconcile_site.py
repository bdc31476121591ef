"""The `reconcile-site` flow: reconcile one site, or every site still draining, on a schedule.

Each site is one task: it rebuilds the App from the inventory path, runs
ts24_migrate.cli.commands.reconcile.reconcile_step (delta, incremental backup,
carry-over, report) and publishes the verdict, the in-flight figures and the
forecast as Prefect artifacts (figures and report paths only: no dossier
contents, no contact details).

Without `site_id`, the flow reconciles every site of the inventory whose
state is VALIDATED, RECONCILING or DRAINED (a drained site is still watched
until its purge: a late change must not go unnoticed) and whose latest load
passed its validation; a site the reconcile gate refuses (steps.gates) is
named in the log with the step it needs first, and the others go on. A site
that another run holds (its migration, flows.limits), or, with `limits:` in the
inventory, whose legacy server or target has no free slot, is put back and
reconciled after the others, so one busy site does not hold up the sweep.

Example::

    from flows.reconcile_site import reconcile_site
    reconcile_site(site_id="hn-01", inventory="/etc/ts24/sites.yaml")  # or $TS24_INVENTORY
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from ts24_migrate.core.config import Inventory, load_inventory
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import GateRefused
from ts24_migrate.runs.app import App
from ts24_migrate.runs.gates import require_validated
from ts24_migrate.runs.reconcile import ReconcileResult, reconcile_step

from .artifacts import artifact_key, progress_reporter, publish_markdown, publish_table
from .inventory import inventory_path
from .limits import SlotBusy, site_slots
from .retries import retry_if_transient

WATCHED_STATES = (SiteState.VALIDATED, SiteState.RECONCILING, SiteState.DRAINED)


def _app(inventory: str) -> App:
    return App(Path(inventory))


def reconciliation_markdown(site_id: str, result: ReconcileResult) -> str:
    verdict = "**DRAINED**" if result.drained else "**not drained**"
    lines = [
        f"# Reconciliation of {site_id}: {verdict}",
        f"run `{result.run_id}`, mode {result.mode}, as of {result.as_of} (legacy clock)",
        "",
    ]
    lines += [f"- {'✅' if c.holds else '❌'} {c.name}: {c.detail}" for c in result.criteria]
    lines += [
        "",
        f"- in flight: **{result.in_flight}**, overdue: {result.overdue}",
        f"- received on TS24 after cut-over (violations): **{result.received_after_cutover}**",
        f"- drift: {result.drift}, likely duplicates on the portal: {result.likely_duplicates}",
        f"- re-registration: {result.registered} of {result.must_reregister} done, {result.not_registered} to contact",
        f"- rows backed up: {result.rows_changed} (increment {result.increment or 'none'}), "
        f"carried over: {result.carried_over}, blocked: {result.blocked}",
        f"- forecast drain date: {result.forecast_drain_date or 'none'}",
        f"- report: `{result.reports['html']}`",
    ]
    return "\n".join(lines)


@task(name="reconcile", retries=2, retry_delay_seconds=30, retry_condition_fn=retry_if_transient)
def reconcile_task(site_id: str, inventory: str, sweep: bool | None = None) -> ReconcileResult:
    app = _app(inventory)
    try:
        result = reconcile_step(app, site_id, sweep=sweep, progress=progress_reporter(site_id, "reconcile"))
    finally:
        app.close()
    publish_markdown(site_id, "reconciliation", reconciliation_markdown(site_id, result), "reconciliation verdict")
    publish_table(
        site_id,
        "reconciliation",
        [{"criterion": c.name, "holds": c.holds, "detail": c.detail} for c in result.criteria],
        "drained criteria",
    )
    create_table_artifact(
        table=[{"status": status, "dossiers": count} for status, count in result.in_flight_by_status.items()],
        key=artifact_key(site_id, "reconcile", "in-flight"),
        description=f"in-flight dossiers of {site_id}",
    )
    return result


@task(name="sites to reconcile")
def sites_to_reconcile(inventory: str) -> list[str]:
    app = _app(inventory)
    try:
        store = app.control_store
        watched = []
        for site in app.inventory.sites:
            if store.state(site.id) not in WATCHED_STATES:
                continue
            try:
                require_validated(app, site.id)
            except GateRefused as refused:
                get_run_logger().warning("site %s is not reconciled: %s", site.id, refused)
                continue
            watched.append(site.id)
        return watched
    finally:
        app.close()


@flow(name="reconcile-site")
def reconcile_site(
    site_id: str | None = None, inventory: str | None = None, sweep: bool | None = None
) -> dict[str, Any]:
    """Reconcile `site_id`, or every site still draining; returns each site's summary.
    `inventory` defaults to $TS24_INVENTORY (flows/inventory.py)."""
    logger = get_run_logger()
    inventory = inventory_path(inventory)
    site_ids = [site_id] if site_id else sites_to_reconcile(inventory)
    results: dict[str, Any] = {}
    known = load_inventory(Path(inventory))
    busy: list[str] = []
    for current in site_ids:
        try:  # in a sweep, a site whose slot is taken waits until the others are done
            results[current] = _reconcile(known, current, inventory, sweep, wait=len(site_ids) == 1)
        except SlotBusy as taken:
            logger.info("site %s: %s; it is reconciled after the other sites", current, taken)
            busy.append(current)
    for current in busy:
        results[current] = _reconcile(known, current, inventory, sweep, wait=True)
    return results


def _reconcile(known: Inventory, site_id: str, inventory: str, sweep: bool | None, *, wait: bool) -> ReconcileResult:
    # A reconciliation reads the site's legacy server and carries dossiers into the target.
    with site_slots(known, known.site(site_id), target=True, wait=wait):
        result = reconcile_task(site_id, inventory, sweep)
    get_run_logger().info(
        "site %s: %s, %s in flight", site_id, "drained" if result.drained else "not drained", result.in_flight
    )
    return result
