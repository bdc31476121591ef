"""The `migrate-fleet` flow: migrate many sites of one inventory.

Deployed (`via_deployment="migrate-site/migrate-site"`), it submits one
`migrate-site` flow run per site to the work pool and returns at once: more
workers on more hosts migrate more sites at the same time. Run locally, it
migrates the sites one after the other as subflows. Either way one site's
failure never stops the others; the fleet run fails at the end if any site did.

Example::

    migrate_fleet(inventory="/etc/ts24/sites.yaml", sites=["hn-01", "hn-02"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment

from ts24_migrate.config import load_inventory
from ts24_migrate.errors import VerificationError

from .artifacts import publish_table
from .inventory import inventory_path
from .migrate_site import migrate_site


@flow(name="migrate-fleet")
def migrate_fleet(inventory: str | None = None, sites: list[str] | None = None,
                  via_deployment: str | None = None, chunk_rows: int = 50_000,
                  custodian_identity: str | None = None, legacy_sample_rows: int | None = None) -> dict[str, Any]:
    """Migrate `sites` (default: every site of the inventory). `inventory` defaults to
    $TS24_INVENTORY; sites submitted `via_deployment` get it only when given here, else each run
    reads its own worker's $TS24_INVENTORY. `legacy_sample_rows` as in migrate-site."""
    logger = get_run_logger()
    given = inventory
    inventory = inventory_path(inventory)
    known = load_inventory(Path(inventory))
    site_ids = list(sites) if sites else [s.id for s in known.sites]
    for site_id in site_ids:
        known.site(site_id)  # an unknown site fails the fleet before anything starts
    outcomes: dict[str, Any] = {}
    for site_id in site_ids:
        parameters = {"site_id": site_id, "inventory": inventory, "chunk_rows": chunk_rows,
                      "legacy_sample_rows": legacy_sample_rows}
        if via_deployment:
            if given is None:
                del parameters["inventory"]
            flow_run = run_deployment(via_deployment, parameters=parameters, timeout=0)
            outcomes[site_id] = {"submitted": str(flow_run.id)}
            continue
        try:
            result = migrate_site(**parameters, custodian_identity=custodian_identity)
            outcomes[site_id] = {"outcome": "validated" if result["validate"]["passed"] else "failed"}
        except Exception as exc:  # one site's failure is recorded; the others go on
            logger.error("site %s failed: %s", site_id, exc)
            outcomes[site_id] = {"outcome": "failed", "error": f"{type(exc).__name__}: {exc}"[:300]}
    publish_table("fleet", "migrate", [{"site": s, **o} for s, o in outcomes.items()], "migrate-fleet outcomes")
    failed = sorted(s for s, o in outcomes.items() if o.get("outcome") == "failed")
    if failed:
        raise VerificationError(f"{len(failed)} of {len(site_ids)} sites failed: {', '.join(failed)}")
    return outcomes
