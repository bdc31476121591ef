"""A stage run whose process was killed is marked `abandoned`, with when it was noticed; a live one never.

Before, every killed stage left its run `running` in the control store for ever. Now each run
records its host, pid and start token, and a heartbeat; `sites list` and the next run of the site
mark the runs whose process is gone (same host: by pid and start token; another host: by a
heartbeat older than STALE_AFTER) and write an `abandoned` ledger event for each.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from audit import read_events, verify_ledger
from ts24_migrate.cli.commands.demo_data import write_demo_inventory
from ts24_migrate.cli.main import main
from ts24_migrate.core.control_store import ControlStore, runs
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.run_liveness import STALE_AFTER, ProcessIdentity, start_token
from ts24_migrate.core.signing import generate_signing_key
from ts24_migrate.runs.app import App

REPO = Path(__file__).resolve().parents[1]
# A stage run that works for a minute: long enough to be killed in the middle.
CHILD = """
import sys, time
from ts24_migrate.runs.app import App
from ts24_migrate.core.stage_runs import stage_run
app = App(sys.argv[1])
with stage_run(app.control_store, app.ledger("demo"), "demo", "assess") as run:
    print(run.run_id, flush=True)
    time.sleep(60)
"""


@pytest.fixture
def inventory(tmp_path: Path) -> str:
    recipient = generate_custodian_identity(tmp_path / "keys" / "alice.age-identity")
    generate_signing_key(tmp_path / "keys" / "signing.key")
    return str(
        write_demo_inventory(
            tmp_path / "site", scale=0.05, backup_recipients=[recipient], signing_key=tmp_path / "keys" / "signing.key"
        )
    )


def _sites(capsys, inventory: str) -> dict:
    code = main(["-i", inventory, "--json", "sites", "list"])
    out, err = capsys.readouterr()
    assert code == 0, err
    [site] = json.loads(out)["sites"]
    return site


def _killed_run(inventory: str) -> str:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, inventory], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    run_id = child.stdout.readline().strip()
    os.kill(child.pid, signal.SIGKILL)
    _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL and run_id, err[-2000:]
    return run_id


@pytest.mark.slow
def test_a_killed_run_is_marked_abandoned_by_sites_list_and_by_the_next_run(inventory, capsys):
    store = App(Path(inventory)).control_store
    run_id = _killed_run(inventory)
    assert store.run(run_id).outcome == "running"  # what the kill left

    site = _sites(capsys, inventory)
    [abandoned] = site["abandoned"]
    assert abandoned["run_id"] == run_id and abandoned["stage"] == "assess" and site["running"] == []
    record = store.run(run_id)
    assert record.outcome == "abandoned" and record.finished_at is None
    assert record.abandoned_at is not None and record.host == ProcessIdentity.current().host
    assert "is gone" in record.error
    main(["-i", inventory, "sites", "list"])
    human, _ = capsys.readouterr()
    assert f"abandoned: assess run {run_id}" in human
    # Once: a second listing finds nothing more to mark, and the ledger holds one event for it.
    assert _sites(capsys, inventory)["abandoned"] == [abandoned]
    ledger = App(Path(inventory)).ledger_path("demo")
    events = [e for _, e, _ in read_events(ledger) if e is not None and e.run_id == run_id]
    assert [e.event for e in events] == ["started", "abandoned"]
    assert verify_ledger(ledger, [App(Path(inventory)).signing_key.public_key_b64]).ok

    # The next run of the site marks a killed run without anyone listing.
    second = _killed_run(inventory)
    code = main(["-i", inventory, "assess", "demo"])
    capsys.readouterr()
    assert code == 0
    assert store.run(second).outcome == "abandoned"
    assert [r.outcome for r in store.runs("demo", "assess")] == ["abandoned", "abandoned", "succeeded"]


def _insert_running(store: ControlStore, *, host: str, pid: int, token: str | None, heartbeat_at: dt.datetime) -> str:
    run_id = str(uuid.uuid4())
    with store.engine.begin() as c:
        c.execute(
            runs.insert().values(
                run_id=run_id,
                site_id="demo",
                stage="load",
                outcome="running",
                started_at=heartbeat_at,
                host=host,
                pid=pid,
                start_token=token,
                heartbeat_at=heartbeat_at,
            )
        )
    return run_id


def test_the_rule_abandons_only_runs_whose_process_is_decidably_gone(sqlite_url):
    store = ControlStore(sa.create_engine(sqlite_url("control")))
    me = ProcessIdentity.current()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    alive = _insert_running(store, host=me.host, pid=me.pid, token=me.start_token, heartbeat_at=now - 2 * STALE_AFTER)
    reused = _insert_running(store, host=me.host, pid=me.pid, token="another-boot:1", heartbeat_at=now)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        token = start_token(sleeper.pid)
        gone_pid = sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()
    gone = _insert_running(store, host=me.host, pid=gone_pid, token=token, heartbeat_at=now)
    # Another host's runs cannot be asked: a recent heartbeat keeps one, an old one abandons it,
    # even when a process of this host happens to have its pid.
    elsewhere_alive = _insert_running(store, host="worker-7", pid=1, token="x:1", heartbeat_at=now)
    elsewhere_silent = _insert_running(
        store, host="worker-7", pid=1, token="x:1", heartbeat_at=now - STALE_AFTER - dt.timedelta(minutes=1)
    )

    closed = {r.run_id for r in store.close_abandoned_runs()}
    assert closed == {reused, gone, elsewhere_silent}
    assert store.run(alive).outcome == "running"  # a long run on this host is never judged by age
    assert store.run(elsewhere_alive).outcome == "running"
    # A run cut off that finishes after all records its real outcome.
    store.finish_run(elsewhere_silent, "succeeded", {})
    assert store.run(elsewhere_silent).outcome == "succeeded"


def test_a_control_store_of_an_earlier_release_gets_the_new_columns(sqlite_url):
    url = sqlite_url("old-control")
    engine = sa.create_engine(url)
    with engine.begin() as c:  # ctl_runs as the first release made it
        c.exec_driver_sql(
            "CREATE TABLE ctl_runs (run_id VARCHAR(36) PRIMARY KEY, site_id VARCHAR(64) NOT NULL, "
            "stage VARCHAR(32) NOT NULL, outcome VARCHAR(16) NOT NULL, started_at DATETIME NOT NULL, "
            "finished_at DATETIME, figures TEXT, error TEXT, parent_run_id VARCHAR(36))"
        )
        c.exec_driver_sql(
            "INSERT INTO ctl_runs (run_id, site_id, stage, outcome, started_at) "
            "VALUES ('old-run', 'demo', 'load', 'running', '2025-01-01 00:00:00')"
        )
    store = ControlStore(engine)
    assert {"host", "pid", "start_token", "heartbeat_at", "abandoned_at"} <= {
        c["name"] for c in sa.inspect(engine).get_columns("ctl_runs")
    }
    # A run recorded before hosts were: judged by its age, like another host's.
    assert [r.run_id for r in store.close_abandoned_runs("demo")] == ["old-run"]
    new = store.start_run("demo", "load")
    assert store.run(new).pid == os.getpid()
    time.sleep(0)  # no heartbeat needed to stay running: this process is alive
    assert store.close_abandoned_runs("demo") == []
