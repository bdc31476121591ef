"""The `migrate-site` flow: one site, every stage in order, each a Prefect task.

Each task rebuilds the App from the inventory path (engines are not shared
across tasks), runs one step (the same step functions the CLI runs) and
publishes its key figures as artifacts. A failed flow run is simply run again:
every step resumes from its own durable checkpoint (backup journal, load
ledger), and steps already done change nothing. The run holds its site's own
slot throughout; with `limits:` in the inventory, it first waits for a slot of
its legacy server, and loads and validates holding one of the target
(flows.limits). It ends by refreshing the fleet status (flows.fleet_status).

Example::

    from flows.migrate_site import migrate_site
    migrate_site(site_id="hn-01", inventory="sites.yaml")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from ts24_migrate.core.config import load_inventory
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import classify
from ts24_migrate.core.labels import IN_FLIGHT_LABEL, RECEIVED_AFTER_CUTOVER_LABEL, object_counts_text
from ts24_migrate.core.server_identity import ServerIdentity
from ts24_migrate.runs.app import App
from ts24_migrate.runs.assess import AssessResult, assess_step
from ts24_migrate.runs.migrate import run_migration, stage_arguments, stage_named, stage_note, step_function

from .artifacts import progress_reporter, publish_markdown, publish_table
from .fleet_status import refresh_fleet_status
from .inventory import inventory_path
from .limits import holding, legacy_server_limit, site_limit, target_limit
from .retries import retry_if_transient

if TYPE_CHECKING:
    from ts24_migrate.runs.backup import BackupCreated, BackupVerified
    from ts24_migrate.runs.load import LoadResult
    from ts24_migrate.runs.validate import ValidationSummary

SITE_LIFE = list(SiteState)


def already_validated(inventory: str, site_id: str) -> bool:
    app = App(Path(inventory))
    try:
        return SITE_LIFE.index(app.control_store.state(site_id)) >= SITE_LIFE.index(SiteState.VALIDATED)
    finally:
        app.close()


def run_step(step: Callable[..., Any], site_id: str, inventory: str, stage: str, **kwargs: Any) -> Any:
    """The step's result (a dict, or a typed result: runs.assess, runs.validate)."""
    app = App(Path(inventory))
    try:
        return step(app, site_id, progress=progress_reporter(site_id, stage), **kwargs)
    except Exception as exc:
        known = classify(exc)
        if known is None:
            raise  # a bug: Prefect logs its traceback
        # One clear line in the Prefect UI; the stage run already recorded it in the control store.
        get_run_logger().error("site %s, %s: %s", site_id, stage, known)
        if known is exc:
            raise
        raise known from exc  # its class decides the retry (flows.retries) and the exit code
    finally:
        app.close()


@task(name="assess", retries=2, retry_delay_seconds=10, retry_condition_fn=retry_if_transient)
def assess_task(site_id: str, inventory: str) -> AssessResult:
    result = run_step(assess_step, site_id, inventory, "assess")
    summary = result.summary
    get_run_logger().info(stage_note(stage_named("assess"), site_id, result))
    publish_markdown(
        site_id,
        "assessment",
        "\n".join(
            [
                f"# Assessment of {site_id}",
                f"- server: {ServerIdentity.from_dict(result.server).describe()}",
                f"- tables: **{summary.tables}**, rows: **{summary.rows}**",
                f"- unmapped: {', '.join(summary.unmapped_tables) or 'none'}",
                f"- without primary key: {', '.join(summary.tables_without_primary_key) or 'none'}",
                f"- {IN_FLIGHT_LABEL}: {summary.in_flight_dossiers}",
                f"- {RECEIVED_AFTER_CUTOVER_LABEL}: {summary.received_after_cutover}",
                f"- views, triggers, procedures, sequences: {object_counts_text(summary.objects)}",
                f"- report: `{result.report_html}`",
            ]
        ),
        "assessment summary",
    )
    publish_table(
        site_id,
        "assessment",
        [{"table": name, **figures.to_dict()} for name, figures in result.tables.items()],
        "rows per legacy table",
    )
    return result


@task(name="backup", retries=2, retry_delay_seconds=10, retry_condition_fn=retry_if_transient)
def backup_task(site_id: str, inventory: str, chunk_rows: int) -> BackupCreated:
    stage = stage_named("backup")  # a migration run again reuses the verified backup of an unchanged source
    result = run_step(step_function(stage), site_id, inventory, "backup", chunk_rows=chunk_rows)
    note = stage_note(stage, site_id, result)
    if note:
        get_run_logger().info(note)
    publish_table(
        site_id,
        "backup",
        [
            {"table": name, **{k: v for k, v in figures.items() if not isinstance(v, (dict, list))}}
            for name, figures in result.table_figures.items()
        ],
        f"backup {result.backup_id}: rows and parts per table",
    )
    return result


@task(name="verify-backup", retries=1, retry_delay_seconds=10, retry_condition_fn=retry_if_transient)
def verify_backup_task(site_id: str, inventory: str, identity: str | None) -> BackupVerified:
    from ts24_migrate.runs.backup import verify_step

    result = run_step(verify_step, site_id, inventory, "verify-backup", identity=Path(identity) if identity else None)
    publish_markdown(
        site_id,
        "verify-backup",
        "\n".join(
            [
                f"# Backup verification of {site_id}",
                *(f"- {k}: {v}" for k, v in result.to_dict().items() if not isinstance(v, (dict, list))),
            ]
        ),
        "backup verification",
    )
    return result


@task(name="load", retries=2, retry_delay_seconds=10, retry_condition_fn=retry_if_transient)
def load_task(site_id: str, inventory: str, chunk_rows: int) -> LoadResult:
    from ts24_migrate.runs.load import load_step

    result = run_step(load_step, site_id, inventory, "load", chunk_rows=chunk_rows)
    publish_table(
        site_id,
        "load",
        [
            {"table": name, **{k: v for k, v in figures.items() if not isinstance(v, (dict, list))}}
            for name, figures in result.tables.items()
        ],
        "loaded and rejected rows per legacy table",
    )
    return result


@task(name="validate", retries=1, retry_delay_seconds=10, retry_condition_fn=retry_if_transient)
def validate_task(site_id: str, inventory: str, legacy_sample_rows: int | None = None) -> ValidationSummary:
    from ts24_migrate.runs.validate import ValidationFailed, validate_step, validation_artifacts

    from .artifacts import publish_report_artifacts

    def publish(result: ValidationSummary) -> None:
        app = App(Path(inventory))
        try:
            publish_report_artifacts(site_id, validation_artifacts(app, site_id, result.run_id))
        finally:
            app.close()

    try:
        result = run_step(validate_step, site_id, inventory, "validate", legacy_sample_rows=legacy_sample_rows)
    except ValidationFailed as exc:
        # The verdict failed: the report exists and is what the operator must read.
        if exc.result is not None:
            publish(exc.result)
        raise
    publish(result)
    return result


@flow(name="migrate-site")
def migrate_site(
    site_id: str,
    inventory: str | None = None,
    chunk_rows: int = 50_000,
    custodian_identity: str | None = None,
    legacy_sample_rows: int | None = None,
    skip_validated: bool = False,
) -> dict[str, Any]:
    """Assess, extract and back up (encrypted), verify the backup, transform and load, validate
    and report one site. `custodian_identity` (a path) lets the verify step decrypt every part;
    without it, the verification checks signatures and ciphertext hashes only. `inventory`
    defaults to $TS24_INVENTORY (flows/inventory.py). `legacy_sample_rows` profiles only the
    first rows of each legacy table (descriptive; the verdict never depends on it), for sites
    where a full profile takes too long. `skip_validated` (as migrate-fleet sends it): a site
    already VALIDATED, or further on, is left as it is."""
    logger = get_run_logger()
    inventory = inventory_path(inventory)
    known = load_inventory(Path(inventory))
    site = known.site(site_id)
    results: dict[str, Any] = {"flow_run": str(flow_run.get_id() or "")}
    tasks: dict[str, Any] = {  # the stage's task (each has its own parameters, hence Any)
        "assess": assess_task,
        "backup": backup_task,
        "verify-backup": verify_backup_task,
        "load": load_task,
        "validate": validate_task,
    }

    def run_stage(stage) -> Any:
        arguments = stage_arguments(
            stage, chunk_rows=chunk_rows, custodian_identity=custodian_identity, legacy_sample_rows=legacy_sample_rows
        )
        return tasks[stage.stage](site_id, inventory, **arguments)

    # The site's own slot first: another run of it (one submitted again while a killed worker's
    # run held the site) waits here, and then finds the work done or resumes it.
    try:
        with holding(site_limit(site)):
            if skip_validated and already_validated(inventory, site_id):
                logger.info("site %s is already validated: nothing to do", site_id)
                return {**results, "skipped": "already validated"}
            with holding(legacy_server_limit(known, site)):  # every stage reads the legacy server
                results.update(run_migration(run_stage, hold_target=lambda: holding(target_limit(known))))
        return results
    finally:
        refresh_fleet_status(inventory)  # the fleet at a glance, as of this site's end
