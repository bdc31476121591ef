"""The `check-sites` flow: every day, each site's backup chain and audit ledger verified without keys.

For every site with a backup or a ledger (or the `sites` given), one task runs
ts24_migrate.runs.check.check_step: signatures, parent links and the
ciphertext hash of every part of the backup chain, and every event of the
audit ledger. Each result is a `check` run in the control store; a failure
marks the site blocked in fleet status until a later check passes. One site's
failure never stops the others; the flow run fails at the end naming them.
It needs no key and takes no concurrency slot (it reads only the backup
folder, the ledger and the control store).

Example::

    from flows.check_sites import check_sites
    check_sites()                               # the inventory at $TS24_INVENTORY
    check_sites(inventory="/etc/ts24/sites.yaml", sites=["hn-01"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from ts24_migrate.core.errors import VerificationError
from ts24_migrate.runs.app import App
from ts24_migrate.runs.check import CheckResult, check_step, sites_to_check

from .artifacts import publish_table
from .fleet_status import refresh_fleet_status
from .inventory import inventory_path


@task(name="check")
def check_task(site_id: str, inventory: str) -> CheckResult:
    app = App(Path(inventory))
    try:
        return check_step(app, site_id)
    finally:
        app.close()


@flow(name="check-sites")
def check_sites(inventory: str | None = None, sites: list[str] | None = None) -> dict[str, Any]:
    """Check `sites` (default: every site with a backup or a ledger); returns each site's outcome.
    `inventory` defaults to $TS24_INVENTORY (flows/inventory.py)."""
    logger = get_run_logger()
    inventory = inventory_path(inventory)
    app = App(Path(inventory))
    try:
        site_ids = list(sites) if sites else sites_to_check(app)
        for site_id in site_ids:
            app.site(site_id)  # an unknown site fails the run before anything is checked
    finally:
        app.close()
    outcomes: dict[str, Any] = {}
    for site_id in site_ids:
        try:
            result = check_task(site_id, inventory)
            outcomes[site_id] = {
                "outcome": "passed",
                "parts_checked": result.chain.parts_checked,
                "ledger_events": result.ledger.events,
            }
        except Exception as exc:  # one site's finding is recorded; the others are checked all the same
            logger.error("site %s: %s", site_id, exc)
            outcomes[site_id] = {"outcome": "failed", "error": f"{type(exc).__name__}: {exc}"[:300]}
    publish_table("fleet", "check", [{"site": s, **o} for s, o in outcomes.items()], "daily check of every site")
    refresh_fleet_status(inventory)
    failed = sorted(s for s, o in outcomes.items() if o["outcome"] == "failed")
    if failed:
        raise VerificationError(f"{len(failed)} of {len(site_ids)} sites failed the daily check: {', '.join(failed)}")
    return outcomes
