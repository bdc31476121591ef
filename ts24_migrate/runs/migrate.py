"""A site's whole migration, in order: assess, back up, verify the backup, load, validate.

The one definition of the sequence, shared by the `migrate-site` Prefect flow
(each stage a task, with retries, artifacts and concurrency slots) and by
`ts24-migrate migrate` run without Prefect (each step called directly). Either
way every stage is the same step inside its own recorded stage run, so the
control store and the ledger hold the same runs and events.

Example::

    results = migrate_directly(app, "hn-01", chunk_rows=50_000, custodian_identity=None)
    results["validate"].passed             # a ValidationSummary (runs.validate)
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ts24_migrate.runs.app import App

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class MigrationStage:
    key: str  # where its summary goes in the migration's result
    stage: str  # the stage's name in the control store and the ledger
    uses_target: bool  # loads into or validates against the target (its concurrency slot is held)


MIGRATION = (
    MigrationStage("assess", "assess", uses_target=False),
    MigrationStage("backup", "backup", uses_target=False),
    MigrationStage("verify_backup", "verify-backup", uses_target=False),
    MigrationStage("load", "load", uses_target=True),
    MigrationStage("validate", "validate", uses_target=True),
)


def stage_arguments(
    stage: MigrationStage, *, chunk_rows: int, custodian_identity: str | None, legacy_sample_rows: int | None = None
) -> dict[str, Any]:
    """What the stage's step takes besides the app and the site (plain values: Prefect task parameters)."""
    if stage.stage in ("backup", "load"):
        return {"chunk_rows": chunk_rows}
    if stage.stage == "verify-backup":
        return {"identity": custodian_identity}
    if stage.stage == "validate":
        return {"legacy_sample_rows": legacy_sample_rows}
    return {}


def run_migration(
    run_stage: Callable[[MigrationStage], Any],
    hold_target: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> dict[str, Any]:
    """Run every stage in order with `run_stage`; each stage's result (a dict, or a typed result such as
    runs.validate.ValidationSummary) under its key. The stages that use the target run inside
    `hold_target()` (one slot of the target's concurrency limit in the flow). A failing stage stops
    the migration: its exception propagates, after the stage run has recorded it."""
    results: dict[str, Any] = {}
    holding_target = False
    with ExitStack() as held:
        for stage in MIGRATION:
            if stage.uses_target and not holding_target:  # from the first such stage to the end
                held.enter_context(hold_target())
                holding_target = True
            results[stage.key] = run_stage(stage)
    return results


def step_function(stage: MigrationStage) -> Callable[..., Any]:
    """The step that runs `stage` (imported when needed: each pulls in its stage packages)."""
    if stage.stage == "assess":
        from .assess import assess_step

        return assess_step
    if stage.stage == "backup":
        from .backup import BackupCreated, backup_step

        def backup(app: App, site_id: str, **kwargs: Any) -> BackupCreated:
            # A migration run again reuses the verified backup when the source is unchanged since.
            return backup_step(app, site_id, reuse_unchanged=True, **kwargs)

        return backup
    if stage.stage == "verify-backup":
        from .backup import BackupVerified, verify_step

        def verify(app: App, site_id: str, *, identity: str | None = None, **kwargs: Any) -> BackupVerified:
            return verify_step(app, site_id, identity=Path(identity) if identity else None, **kwargs)

        return verify
    if stage.stage == "load":
        from .load import load_step

        return load_step
    if stage.stage == "validate":
        from .validate import validate_step

        return validate_step
    raise ValueError(f"no step for stage {stage.stage!r}")


def stage_named(name: str) -> MigrationStage:
    return next(stage for stage in MIGRATION if stage.stage == name)


def stage_note(stage: MigrationStage, site_id: str, result: Any) -> str | None:
    """What the log says after a stage, beyond its result (the flow's log, the CLI's stderr)."""
    if stage.stage == "assess":
        return f"site {site_id} assessed: {result.summary.tables} tables"
    if stage.stage == "backup" and result.reused:
        return f"site {site_id}: backup {result.backup_id} reused: {result.reuse_note}"
    return None


def migrate_directly(
    app: App,
    site_id: str,
    *,
    chunk_rows: int = 50_000,
    custodian_identity: str | None = None,
    legacy_sample_rows: int | None = None,
    progress_for: Callable[[str], AbstractContextManager[Progress | None]] | None = None,
    tell: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Migrate one site in this process, without Prefect (and without concurrency slots, as every
    command run by hand). `progress_for(stage)` may give each stage a progress callback; `tell`
    receives what the flow would log (stage_note)."""

    def run_stage(stage: MigrationStage) -> Any:
        step = step_function(stage)
        arguments = stage_arguments(
            stage, chunk_rows=chunk_rows, custodian_identity=custodian_identity, legacy_sample_rows=legacy_sample_rows
        )
        with progress_for(stage.stage) if progress_for else nullcontext() as progress:
            result = step(app, site_id, progress=progress, **arguments)
        note = stage_note(stage, site_id, result)
        if note and tell:
            tell(note)
        return result

    return run_migration(run_stage)
