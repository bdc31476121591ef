"""The `migrate-fleet` flow: migrate many sites of one inventory.

Deployed (`via_deployment="migrate-site/migrate-site"`), it submits one
`migrate-site` flow run per site to the work pool and returns at once: more
workers on more hosts migrate more sites at the same time, within the
concurrency limits (flows.limits). Run locally, it migrates the sites one
after the other as subflows. Either way one site's failure never stops the
others; a local fleet run fails at the end if any site did.

A site already VALIDATED (or further on) is left alone unless
`redo_validated`, so running the fleet again after a crash or a fix finishes
what is left: each site's run resumes from its durable checkpoints, and a site
whose earlier run still holds it (a killed worker's run, until its slot's lease
runs out) is taken up once that run is gone. Each run ends by refreshing the
fleet status page and artifact (flows.fleet_status).

Example::

    migrate_fleet(inventory="/etc/ts24/sites.yaml", sites=["hn-01", "hn-02"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from ts24_migrate.core.config import load_inventory
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import VerificationError
from ts24_migrate.runs.app import App
from ts24_migrate.runs.fleet_status import site_states

from .artifacts import publish_table
from .fleet_status import refresh_fleet_status
from .inventory import inventory_path
from .migrate_site import migrate_site


@flow(name="migrate-fleet")
def migrate_fleet(
    inventory: str | None = None,
    sites: list[str] | None = None,
    via_deployment: str | None = None,
    chunk_rows: int = 50_000,
    custodian_identity: str | None = None,
    legacy_sample_rows: int | None = None,
    redo_validated: bool = False,
) -> dict[str, Any]:
    """Migrate `sites` (default: every site of the inventory) that are not validated yet (all of
    them with `redo_validated`). `inventory` defaults to $TS24_INVENTORY; sites submitted
    `via_deployment` get it only when given here, else each run reads its own worker's
    $TS24_INVENTORY. `custodian_identity`, when given, must be a path on every worker.
    `legacy_sample_rows` as in migrate-site."""
    logger = get_run_logger()
    given = inventory
    inventory = inventory_path(inventory)
    known = load_inventory(Path(inventory))
    site_ids = list(sites) if sites else [s.id for s in known.sites]
    for site_id in site_ids:
        known.site(site_id)  # an unknown site fails the fleet before anything starts
    done = set() if redo_validated else validated_sites(inventory, site_ids)
    outcomes: dict[str, Any] = {site_id: {"outcome": "already validated"} for site_id in site_ids if site_id in done}
    for site_id in (s for s in site_ids if s not in done):
        parameters: dict[str, Any] = {
            "site_id": site_id,
            "inventory": inventory,
            "chunk_rows": chunk_rows,
            "legacy_sample_rows": legacy_sample_rows,
            "custodian_identity": custodian_identity,
            "skip_validated": not redo_validated,
        }
        if via_deployment:
            if given is None:
                del parameters["inventory"]
            # Called from a sync flow, Prefect's dual sync/async API returns the flow run, not a coroutine.
            flow_run = cast(FlowRun, run_deployment(via_deployment, parameters=parameters, timeout=0))
            outcomes[site_id] = {"outcome": "submitted", "flow_run": str(flow_run.id)}
            continue
        try:
            result = migrate_site(**parameters)
            outcomes[site_id] = {
                "outcome": "already validated"
                if result.get("skipped")
                else "validated"
                if result["validate"].passed
                else "failed"
            }
        except Exception as exc:  # one site's failure is recorded; the others go on
            logger.error("site %s failed: %s", site_id, exc)
            outcomes[site_id] = {"outcome": "failed", "error": f"{type(exc).__name__}: {exc}"[:300]}
    outcomes = {site_id: outcomes[site_id] for site_id in site_ids}
    publish_table("fleet", "migrate", [{"site": s, **o} for s, o in outcomes.items()], "migrate-fleet outcomes")
    refresh_fleet_status(inventory)
    failed = sorted(s for s, o in outcomes.items() if o.get("outcome") == "failed")
    if failed:
        raise VerificationError(f"{len(failed)} of {len(site_ids)} sites failed: {', '.join(failed)}")
    return outcomes


def validated_sites(inventory: str, site_ids: list[str]) -> set[str]:
    """The sites whose state is VALIDATED or further on (one query)."""
    app = App(Path(inventory))
    try:
        states = site_states(app.control_store, site_ids)
    finally:
        app.close()
    life = list(SiteState)
    return {site_id for site_id, (state, _) in states.items() if life.index(state) >= life.index(SiteState.VALIDATED)}
