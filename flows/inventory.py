"""Which inventory a flow run reads: its `inventory` parameter, else `$TS24_INVENTORY`.

Deployments in prefect.yaml pass no inventory: a scheduled run starts in the
code checkout on a worker host, where no `sites.yaml` sits, so the inventory's
path comes from the environment of the flow run, set once per work pool (its
base job template's `env`) or per worker (`TS24_INVENTORY=... prefect worker
start ...`), next to the variables the inventory's `env:` secrets name.

Example::

    inventory_path(None)             # $TS24_INVENTORY, else ./sites.yaml if it exists
    inventory_path("/etc/ts24/sites.yaml")
"""

from __future__ import annotations

import os
from pathlib import Path

from ts24_migrate.core.errors import ConfigError
from ts24_migrate.runs.app import DEFAULT_INVENTORY

INVENTORY_ENV = "TS24_INVENTORY"


def inventory_path(inventory: str | None) -> str:
    """The absolute path of the inventory a run reads; a clear error when none is configured."""
    chosen = inventory or os.environ.get(INVENTORY_ENV)
    if not chosen:
        if not Path(DEFAULT_INVENTORY).is_file():
            raise ConfigError(
                f"no inventory: set {INVENTORY_ENV} in the work pool's or the worker's "
                f"environment, or pass the flow's `inventory` parameter (no {DEFAULT_INVENTORY} "
                f"in {Path.cwd()})"
            )
        chosen = DEFAULT_INVENTORY
    return str(Path(chosen).expanduser().resolve())
