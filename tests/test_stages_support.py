"""Take a site through the stages a test is not about, in the order the gates ask for.

Each stage refuses until the one before it is done (ts24_migrate.runs.gates),
so a test of a later stage first runs the real earlier ones, through the same
step functions the CLI and the flows run:

    through(app, "demo", "assess", "backup", "verify")          # ready to load
    through(app, "demo", "load", "verify-identity", "validate", identity=key)

"verify" checks the signature and ciphertext hashes (enough to load);
"verify-identity" decrypts with a custodian identity (needed for a verdict).
"""

from __future__ import annotations

from pathlib import Path

from ts24_migrate.runs.app import App

READY_TO_LOAD = ("assess", "backup", "verify")


def through(app: App, site_id: str, *stages: str, identity: Path | None = None) -> None:
    from ts24_migrate.runs.assess import assess_step
    from ts24_migrate.runs.backup import backup_step, verify_step
    from ts24_migrate.runs.load import load_step
    from ts24_migrate.runs.validate import validate_step

    steps = {
        "assess": lambda: assess_step(app, site_id),
        "backup": lambda: backup_step(app, site_id),
        "verify": lambda: verify_step(app, site_id),
        "verify-identity": lambda: verify_step(app, site_id, identity=identity),
        "load": lambda: load_step(app, site_id),
        "validate": lambda: validate_step(app, site_id),
    }
    for stage in stages:
        steps[stage]()


def through_inventory(inventory: Path, site_id: str, *stages: str, identity: Path | None = None) -> None:
    app = App(Path(inventory))
    try:
        through(app, site_id, *stages, identity=identity)
    finally:
        app.close()
