"""Prefect artifacts for stage results: key figures as markdown/tables, live progress.

Artifacts only ever receive figures and report paths, never connection URLs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)


def artifact_key(*parts: str) -> str:
    """Prefect keys allow lower-case letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")[:100]


def publish_markdown(site_id: str, stage: str, markdown: str, description: str) -> None:
    create_markdown_artifact(markdown=markdown, key=artifact_key(site_id, stage), description=description)


def publish_table(site_id: str, stage: str, rows: list[dict[str, Any]], description: str) -> None:
    create_table_artifact(table=rows, key=artifact_key(site_id, stage, "table"), description=description)


def publish_report_artifacts(site_id: str, artifacts: Any) -> None:
    """Publish a report's summary (a validation.report_artifacts.ReportArtifacts, built by the run)."""
    publish_markdown(site_id, artifacts.stage, artifacts.markdown, artifacts.markdown_description)
    publish_table(site_id, artifacts.stage, artifacts.rows, artifacts.table_description)


def progress_reporter(site_id: str, stage: str) -> Callable[[str, int, int], None]:
    """A progress callback(item, done, total) that drives a Prefect progress artifact."""
    # Called from sync code, Prefect's dual sync/async API returns the id itself, not a coroutine.
    artifact_id = cast(
        UUID,
        create_progress_artifact(
            progress=0.0,
            key=artifact_key(site_id, stage, "progress"),
            description=f"{stage} progress for site {site_id}",
        ),
    )

    def update(item: str, done: int, total: int) -> None:
        if total:
            update_progress_artifact(
                artifact_id=artifact_id,
                progress=round(100.0 * done / total, 1),
                description=f"{stage} {site_id}: {item} ({done}/{total})",
            )

    return update
