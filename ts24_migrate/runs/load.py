"""The load step: transform and load a site into the new system, recorded per table."""

from __future__ import annotations

from typing import Any

from load.site_load import Progress, load_site
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.results import StageResult
from ts24_migrate.core.stage_runs import stage_run
from ts24_migrate.runs.app import App

from .gates import require_loadable_backup
from .latest import updates_latest
from .server_check import check_legacy_server


class LoadResult(StageResult):
    """What load_step returns: load.site_load.LoadSummary.to_dict(), in its order."""

    site_id: str
    run_id: str
    accounting_ok: bool  # read = loaded + rejected for every table
    chunks_loaded: int  # by this run
    chunks_skipped: int  # already in the load ledger
    seconds: float
    # chunks of this run with a parent key, by how the database checked it besides the set-based check
    # (load.foreign_keys): "replica", or "per-row: <why not>"
    foreign_key_checks: dict[str, int]
    # legacy table -> target_table, source_rows, loaded, rejected, conflicts, rejects_by_reason (and
    # flags_by_code when rows were loaded with flags), as load.ledger counts them
    tables: dict[str, dict[str, Any]]


@updates_latest
def load_step(
    app: App,
    site_id: str,
    *,
    chunk_rows: int = 50_000,
    progress: Progress | None = None,
    parent_run_id: str | None = None,
) -> LoadResult:
    """Run the load stage for one site: a recorded run, per-table figures, state LOADED.

    Refused (steps.gates) until the site has a complete backup that passed a verification.
    """
    site = app.site(site_id)
    require_loadable_backup(app, site_id)
    legacy = app.legacy_engine(site)
    target = app.target_engine()
    with stage_run(
        app.control_store,
        app.ledger(site_id),
        site_id,
        "load",
        success_state=SiteState.LOADED,
        parent_run_id=parent_run_id,
    ) as run:
        check_legacy_server(app, site_id, run)
        summary = load_site(
            legacy,
            target,
            site_id=site_id,
            run_id=run.run_id,
            cutover=site.cutover,
            attachments_dir=app.inventory.attachments_path(site),
            chunk_rows=chunk_rows,
            progress=progress,
        )
        for legacy_table, figures in summary.tables.items():
            app.control_store.record_table(site_id, run.run_id, legacy_table, figures)
        data = summary.to_dict()
        run.figures.update({k: v for k, v in data.items() if k != "tables"})
        run.figures.update(
            {k: sum(t[k] for t in summary.tables.values()) for k in ("source_rows", "loaded", "rejected", "conflicts")}
        )
    return LoadResult(**data)
