"""The deployments' pull step: enter this worker host's checkout of ts24-migrate.

A deployment's entrypoint (`flows/migrate_site.py:...`) is a path from the
checkout, and every worker host has its own: `$TS24_MIGRATE_HOME` in the
worker's environment names it, else the checkout this package is installed
from (`make venv` installs it editable). It is read when the flow run starts,
on the worker, never when `prefect deploy` runs, so the deploying host's path
is not baked into the deployments.

In prefect.yaml::

    pull:
      - flows.checkout.enter_checkout: {}
"""

from __future__ import annotations

import os
from pathlib import Path

from ts24_migrate.core.errors import ConfigError

HOME_ENV = "TS24_MIGRATE_HOME"


def checkout_folder() -> Path:
    """Where this host's checkout is: $TS24_MIGRATE_HOME, else the one this package comes from."""
    chosen = os.environ.get(HOME_ENV, "").strip()
    folder = Path(chosen).expanduser() if chosen else Path(__file__).resolve().parents[1]
    if not (folder / "flows" / "migrate_site.py").is_file():
        where = f"{HOME_ENV}={chosen}" if chosen else f"the package's folder {folder}"
        raise ConfigError(
            f"{where} is not a checkout of ts24-migrate (no flows/migrate_site.py): set {HOME_ENV} "
            f"in the worker's environment to this host's checkout"
        )
    return folder


def enter_checkout() -> dict[str, str]:
    """Pull step: change into the checkout; returns it as `directory` for later steps."""
    folder = checkout_folder()
    os.chdir(folder)
    return {"directory": str(folder)}
