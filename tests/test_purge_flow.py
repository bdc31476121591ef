"""The purge-site Prefect flow on a real (ephemeral) Prefect server: it plans, publishes the plan's summary,
pauses for the approval, and only an approval of that plan, given as the run's input, lets it destroy;
a pause that times out destroys nothing."""

from __future__ import annotations

import json
import threading
import time

import pytest
from test_purge_support import SITE, copy_site, run_cli, template

from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import ExitCode

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


class FlowThread(threading.Thread):
    def __init__(self, **parameters):
        super().__init__(daemon=True)
        self.parameters, self.result, self.error = parameters, None, None

    def run(self) -> None:
        from flows.purge_site import purge_site

        try:
            self.result = purge_site(**self.parameters)
        except BaseException as exc:  # the test looks at it
            self.error = exc


def _purge_runs(client):
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    return client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["purge-site"])))


def _wait_for_pause(client, known: set, deadline: float = 180):
    """The new purge-site run once it is Paused (runs of other tests on the shared server are `known`)."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        paused = [r for r in _purge_runs(client) if r.id not in known and r.state and r.state.is_paused()]
        if paused:
            (run,) = paused
            return run
        time.sleep(0.5)
    raise AssertionError("the purge-site run never paused")


def test_the_flow_pauses_for_the_approval_then_purges_and_certifies(prefect_server, tmp_path_factory, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.flow_runs import resume_flow_run

    from flows.artifacts import artifact_key

    site = copy_site(template(tmp_path_factory), tmp_path / "site")
    legacy_before = site.legacy.read_bytes()
    with get_client(sync_client=True) as client:
        known = {r.id for r in _purge_runs(client)}
        runner = FlowThread(
            site_id=SITE,
            operator_key=str(site.key("operator")),
            inventory=str(site.inventory),
            approval_timeout_seconds=300,
            poll_interval_seconds=1,
        )
        runner.start()
        paused = _wait_for_pause(client, known)
        # Paused: the plan exists, nothing is destroyed, and the artifact holds figures, gates and the hash only.
        (plan_path,) = (site.folder / "work" / "sites" / SITE / "purge").glob("*/plan.json")
        assert site.legacy.read_bytes() == legacy_before
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[artifact_key(SITE, "purge-plan")]))
        )
        code, approved, err = run_cli(
            site.inventory,
            "purge",
            "approve",
            str(plan_path),
            "--key",
            str(site.key("approver-b")),
            "--out",
            str(tmp_path / "approval.json"),
        )
        assert code == ExitCode.OK, err
        plan_hash = approved["plan_sha256"]
        (artifact,) = [a for a in artifacts if plan_hash in (a.data or "")]
        assert "Gates" in artifact.data and "Nguyen" not in artifact.data and str(site.folder) not in artifact.data
        document = json.loads((tmp_path / "approval.json").read_text(encoding="utf-8"))
        resume_flow_run(paused.id, run_input={"plan_sha256": plan_hash, "approvals": [document]})
    runner.join(timeout=300)
    assert not runner.is_alive() and runner.error is None, runner.error
    result = runner.result
    assert result.state == SiteState.CERTIFIED.value and result.plan_sha256 == plan_hash
    assert not site.legacy.exists() and not any(site.files.rglob("*"))
    code, _, err = run_cli(
        site.inventory,
        "certificate",
        "verify",
        result.certificate,
        "--public-key",
        str(site.public_key),
        "--ledger",
        str(site.ledger),
    )
    assert code == ExitCode.OK, err


def test_an_approval_that_never_comes_destroys_nothing(prefect_server, tmp_path_factory, tmp_path):
    from prefect.client.orchestration import get_client

    from ts24_migrate.core.errors import GateRefused

    site = copy_site(template(tmp_path_factory), tmp_path / "site")
    before = site.snapshot()
    with get_client(sync_client=True) as client:
        known = {r.id for r in _purge_runs(client)}
        runner = FlowThread(
            site_id=SITE,
            operator_key=str(site.key("operator")),
            inventory=str(site.inventory),
            approval_timeout_seconds=3,
            poll_interval_seconds=1,
        )
        runner.start()
        runner.join(timeout=120)
        assert not runner.is_alive()
        assert isinstance(runner.error, GateRefused) and "was not approved within 3 s" in str(runner.error)
        (run,) = [r for r in _purge_runs(client) if r.id not in known]
        assert run.state.is_failed()
    assert site.snapshot() == before  # not a byte of the site changed
    assert site.store().state(SITE) is SiteState.FINAL_BACKUP_VERIFIED
    assert not list((site.folder / "work" / "sites" / SITE / "purge").glob("*/journal.jsonl"))


def test_an_input_naming_another_plan_destroys_nothing(prefect_server, tmp_path_factory, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    from ts24_migrate.core.errors import GateRefused

    site = copy_site(template(tmp_path_factory), tmp_path / "site")
    before = site.snapshot()
    with get_client(sync_client=True) as client:
        known = {r.id for r in _purge_runs(client)}
        runner = FlowThread(
            site_id=SITE,
            operator_key=str(site.key("operator")),
            inventory=str(site.inventory),
            approval_timeout_seconds=300,
            poll_interval_seconds=1,
        )
        runner.start()
        paused = _wait_for_pause(client, known)
        resume_flow_run(paused.id, run_input={"plan_sha256": "0" * 64, "approvals": []})
    runner.join(timeout=120)
    assert not runner.is_alive()
    assert isinstance(runner.error, GateRefused) and "names plan 000" in str(runner.error)
    assert site.snapshot() == before
    assert site.store().state(SITE) is SiteState.FINAL_BACKUP_VERIFIED
