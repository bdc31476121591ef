"""The register of a site's remaining copies (`sites copies`) and the copies it records (`report --out`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from purge.remaining_copies import REPORT_COPY_STAGE, RemainingCopy, destroy_scratch_copies, remaining_copies
from ts24_migrate.runs.app import App


def site_copies(app: App, site_id: str, *, destroy_scratch: bool) -> tuple[dict[str, Any] | None, list[RemainingCopy]]:
    """Every copy of the site's data the tool knows of; with destroy_scratch, the scratch restores (and staging
    leftovers) the tool made are destroyed first (the run doing it is recorded): (destroyed or None, copies)."""
    destroyed = destroy_scratch_copies(app, site_id) if destroy_scratch else None
    return destroyed, remaining_copies(app, site_id)


def record_report_copy(app: App, site_id: str, validate_run: str, out: Path, personal_data: Any) -> None:
    """A copy of a report leaves the work folder: recorded, so the register of copies names it. Control
    store only: this may run on an auditor's machine, without the signing key."""
    store = app.control_store
    run_id = store.start_run(site_id, REPORT_COPY_STAGE)
    store.finish_run(
        run_id,
        "succeeded",
        {"folder": str(out.resolve()), "validate_run": validate_run, "personal_data": personal_data},
    )
