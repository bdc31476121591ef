"""Prefect retries only what may heal by itself, on the real migrate-site tasks and a real Prefect server.

A lock not granted in time (a real PostgreSQL lock on the control store) is
retried as configured; a configuration error (a secret that is not set) and a
failed verdict (a tampered backup) fail at once, with their own class. Each
task runs with its own retry settings, the delay between tries set to zero.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from ts24_migrate.core.control_store import ControlStore
from ts24_migrate.core.db import store_engine
from ts24_migrate.core.errors import ConfigError, UnreachableError, VerificationError, classify, is_transient
from ts24_migrate.core.secrets import Secret
from ts24_migrate.runs.app import App


def _attempts(task, **parameters) -> tuple[BaseException, list[int]]:
    """Run `task` (with its own retries, no delay between them) in a flow of its own: the error it
    ended with and how many times each of its task runs ran."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    quick = task.with_options(retry_delay_seconds=0)

    @flow(name="retry-probe")
    def probe() -> None:
        quick(**parameters)

    state = probe(return_state=True)
    assert state.is_failed()
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - the error the flow ended with is what is checked
        error = exc
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    assert all(run.state_name == "Failed" for run in runs), [(r.name, r.state_name) for r in runs]
    return error, [run.run_count for run in runs]


def _with_control_store(inventory: Path, reference: str) -> None:
    document = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    document["control_store"] = reference
    inventory.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


@pytest.mark.prefect
@pytest.mark.postgres
def test_a_lock_not_granted_in_time_is_retried(prefect_server, demo_site, pg_url, monkeypatch):
    from flows.migrate_site import assess_task

    site = demo_site(scale=0.01, seed=3)
    # The control store on PostgreSQL, where a statement waits at most 300 ms for a lock.
    control = sa.engine.make_url(pg_url).update_query_dict({"options": "-c lock_timeout=300"})
    monkeypatch.setenv("TS24_T_CONTROL", control.render_as_string(hide_password=False))
    _with_control_store(site.inventory, "env:TS24_T_CONTROL")
    ControlStore(store_engine(Secret(pg_url))).engine.dispose()  # its tables exist before another session locks one

    holder = sa.create_engine(pg_url)
    try:
        with holder.begin() as c:
            c.execute(sa.text("LOCK TABLE ctl_runs IN ACCESS EXCLUSIVE MODE"))  # e.g. a long migration
            error, run_counts = _attempts(assess_task, site_id=site.site_id, inventory=str(site.inventory))
    finally:
        holder.dispose()
    assert isinstance(error, UnreachableError) and error.transient and error.exit_code == 3
    assert "a lock was not granted" in str(error) and "lock timeout" in str(error)
    assert run_counts == [1 + assess_task.retries] == [3]


@pytest.mark.prefect
def test_a_configuration_error_is_not_retried(prefect_server, demo_site, monkeypatch):
    from flows.migrate_site import assess_task

    site = demo_site(scale=0.01, seed=4)
    monkeypatch.delenv("TS24_T_UNSET_CONTROL", raising=False)
    _with_control_store(site.inventory, "env:TS24_T_UNSET_CONTROL")
    error, run_counts = _attempts(assess_task, site_id=site.site_id, inventory=str(site.inventory))
    assert isinstance(error, ConfigError) and error.exit_code == 2 and "TS24_T_UNSET_CONTROL" in str(error)
    assert assess_task.retries == 2 and run_counts == [1]


@pytest.mark.prefect
def test_a_failed_verdict_is_not_retried(prefect_server, demo_site):
    from flows.migrate_site import verify_backup_task
    from ts24_migrate.runs.assess import assess_step
    from ts24_migrate.runs.backup import backup_step

    site = demo_site(scale=0.01, seed=5)
    app = App(site.inventory)
    try:
        assess_step(app, site.site_id)
        backup = backup_step(app, site.site_id)
    finally:
        app.close()
    part = next(Path(backup.backup_dir).rglob("*.age"))
    data = bytearray(part.read_bytes())
    data[-1] ^= 0xFF  # one bit flipped on the backup disk
    part.write_bytes(bytes(data))

    error, run_counts = _attempts(
        verify_backup_task, site_id=site.site_id, inventory=str(site.inventory), identity=str(site.identity)
    )
    assert isinstance(error, VerificationError) and error.exit_code == 1
    assert verify_backup_task.retries == 1 and run_counts == [1]


def test_a_sqlite_database_locked_too_long_is_transient(tmp_path):
    path = tmp_path / "busy.sqlite"
    holder = sa.create_engine(f"sqlite:///{path}")
    waiter = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.2})
    try:
        with holder.connect() as c:
            c.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            c.commit()
            c.exec_driver_sql("BEGIN EXCLUSIVE")
            with pytest.raises(sa.exc.OperationalError) as locked, waiter.begin() as w:
                w.exec_driver_sql("INSERT INTO t VALUES (1)")
            c.rollback()
    finally:
        holder.dispose()
        waiter.dispose()
    known = classify(locked.value)
    assert isinstance(known, UnreachableError) and is_transient(locked.value)
    assert "database is locked" in str(known)


@pytest.mark.mariadb
def test_a_mariadb_lock_wait_timeout_is_transient(mariadb_url_fixture):
    engine = sa.create_engine(mariadb_url_fixture)
    try:
        with engine.begin() as c:
            c.exec_driver_sql("CREATE TABLE t (id INT PRIMARY KEY, x INT) ENGINE=InnoDB")
            c.exec_driver_sql("INSERT INTO t VALUES (1, 0)")
        with engine.connect() as holder, engine.connect() as waiter:
            holder.exec_driver_sql("UPDATE t SET x = 1 WHERE id = 1")  # its transaction keeps the row lock
            waiter.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")
            with pytest.raises(sa.exc.DBAPIError) as timed_out:
                waiter.exec_driver_sql("UPDATE t SET x = 2 WHERE id = 1")
            holder.rollback()
    finally:
        engine.dispose()
    known = classify(timed_out.value)
    assert isinstance(known, UnreachableError) and is_transient(timed_out.value)
    assert "lock wait timeout exceeded" in str(known).lower()
