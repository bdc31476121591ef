"""Inside a Prefect flow, the backup's progress callback drives a Prefect progress artifact."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from test_backup_support import make_demo_site, make_keys

from backups.backup import backup_site


@pytest.mark.prefect
def test_backup_progress_is_a_prefect_progress_artifact(prefect_server, tmp_path: Path, sqlite_url) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.artifacts import artifact_key, progress_reporter

    site = make_demo_site(tmp_path, sqlite_url("legacy"))
    keys = make_keys(tmp_path)
    site_id = f"bk-{uuid.uuid4().hex[:8]}"

    @flow(name="backup-progress-test")
    def backup_flow() -> str:
        result = backup_site(
            site.legacy,
            site.attachments,
            tmp_path / "backups",
            site_id=site_id,
            run_id=str(uuid.uuid4()),
            recipients=[keys.recipient],
            signing_key=keys.signing,
            chunk_rows=100,
            progress=progress_reporter(site_id, "backup"),
        )
        return result.fingerprint

    fingerprint = backup_flow()
    assert len(fingerprint) == 64
    key = artifact_key(site_id, "backup", "progress")
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert [a.type for a in artifacts] == ["progress"]
    assert float(artifacts[0].data) == 100.0
