"""Commands run by hand take the flows' concurrency slots when a Prefect API is configured.

With an API (here the suite's Prefect server), `backup SITE` waits while a flow run holds the
site and says so; with none configured there is nothing to coordinate with and it runs at once;
with one configured that does not answer it refuses to run uncoordinated (exit code 3).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from deployment_support import clean_environment, free_port

from flows.limits import Limit, write_limit
from ts24_migrate.cli.main import main
from ts24_migrate.core.errors import ExitCode
from ts24_migrate.runs.app import App

BIN = Path(sys.executable).parent


def _cli(inventory: Path, site_id: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "ts24-migrate"), "-i", str(inventory), "--json", "backup", site_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.prefect
@pytest.mark.slow
def test_a_manual_backup_waits_for_the_site_a_flow_run_holds(prefect_server, demo_site, tmp_path, capsys):
    from prefect.concurrency.sync import concurrency

    site_id = f"slots-{uuid.uuid4().hex[:6]}"  # the suite's server outlives this test: limits of its own
    site = demo_site(scale=0.02, site_id=site_id)
    assert main(["-i", str(site.inventory), "--json", "assess", site_id]) == ExitCode.OK
    store = App(site.inventory).control_store
    write_limit(Limit(f"ts24-site-{site_id}", 1, "test"))
    finished: dict[str, object] = {}
    with concurrency(f"ts24-site-{site_id}", occupy=1, strict=True):  # a flow run is working on the site
        context = contextvars.copy_context()  # the suite's Prefect settings, in the command's thread too
        runner = threading.Thread(
            target=lambda: finished.setdefault(
                "code", context.run(main, ["-i", str(site.inventory), "--json", "backup", site_id])
            )
        )
        runner.start()
        time.sleep(6)
        assert runner.is_alive() and store.runs(site_id, "backup") == []
        # Without a Prefect API there is nothing to wait for: the same command runs at once.
        alone = _cli(site.inventory, site_id, clean_environment(PREFECT_HOME=str(tmp_path / "no-api")))
        assert alone.returncode == ExitCode.OK, alone.stderr
        assert "waiting for a slot" not in alone.stderr
        released = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    runner.join(timeout=180)
    assert not runner.is_alive() and finished["code"] == ExitCode.OK
    assert f"site {site_id}: waiting for a slot of site {site_id}" in capsys.readouterr().err
    by_hand, waited = store.runs(site_id, "backup")
    assert by_hand.finished_at <= released <= waited.started_at


def test_a_configured_api_that_does_not_answer_is_exit_code_3(demo_site, tmp_path):
    site = demo_site(scale=0.02)
    api = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    refused = _cli(
        site.inventory, "demo", clean_environment(PREFECT_API_URL=api, PREFECT_HOME=str(tmp_path / "prefect"))
    )
    assert refused.returncode == ExitCode.UNREACHABLE, refused.stderr
    assert refused.stderr.startswith(f"error: the Prefect API at {api} did not answer")
    assert "unset PREFECT_API_URL to run without them" in refused.stderr
    assert App(site.inventory).control_store.runs("demo") == []  # nothing ran
