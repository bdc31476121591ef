"""Failures of the world around the tool, in real processes: folders we may not write (exit 3,
naming the folder) and a database login refused (exit 2, never retried by Prefect)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from ts24_migrate.cli.main import main
from ts24_migrate.core.errors import (
    ExitCode,
    FolderUnusable,
    LoginRefused,
    UnreachableError,
    VerificationError,
    classify,
    is_transient,
)

SITE = "demo"
# root writes through any mode bits; without CAP_DAC_OVERRIDE it obeys them like everyone else.
_AS_ORDINARY_USER = (
    ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]
    if os.geteuid() == 0
    else []
)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    if _AS_ORDINARY_USER and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: mode bits cannot make a folder unwritable")
    return subprocess.run(
        [*_AS_ORDINARY_USER, sys.executable, "-m", "ts24_migrate", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr[-2000:]
    return lines[0]


def _read_only(*folders: Path, recursive: bool = False) -> None:
    for folder in folders:
        for path in [*folder.rglob("*"), folder] if recursive else [folder]:
            path.chmod(path.stat().st_mode & ~0o222)


def _writable(*folders: Path) -> None:
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)


def test_a_read_only_work_folder_exits_3_naming_it(demo_site):
    site = demo_site(scale=0.03, seed=21)
    work = site.folder / "work"
    work.mkdir()
    _read_only(work)
    try:
        result = cli("-i", str(site.inventory), "sites", "list")
        assert result.returncode == ExitCode.UNREACHABLE
        line = _one_error_line(result)
        # The control store (or, first, making its file owner-only) names the folder it cannot use.
        assert line.startswith("error: ") and str(work) in line, line

        result = cli("-i", str(site.inventory), "sites", "list", "--json")
        assert result.returncode == ExitCode.UNREACHABLE
        document = json.loads(result.stdout)
        assert document["exit_code"] == 3 and document["error"]["class"] == "FolderUnusable"
    finally:
        _writable(work)

    # A work tree that exists, made read-only after the first stage: the next stage cannot record itself.
    assert main(["-i", str(site.inventory), "assess", SITE]) == 0
    _read_only(work, recursive=True)
    try:
        result = cli("-i", str(site.inventory), "assess", SITE)
        assert result.returncode == ExitCode.UNREACHABLE
        line = _one_error_line(result)
        assert ("cannot be written" in line or "Permission denied" in line) and str(work) in line, line
    finally:
        _writable(work)
    assert cli("-i", str(site.inventory), "assess", SITE).returncode == 0


@pytest.mark.slow
def test_read_only_backup_folder_and_report_out_exit_3(demo_site, tmp_path):
    site = demo_site(scale=0.03, seed=22)
    assert main(["-i", str(site.inventory), "migrate", SITE, "--identity", str(site.identity)]) == 0
    backups = site.folder / "backups" / SITE
    unwritable = tmp_path / "unwritable"
    unwritable.mkdir()
    _read_only(backups, unwritable)
    try:
        result = cli("-i", str(site.inventory), "backup", SITE)
        assert result.returncode == ExitCode.UNREACHABLE
        line = _one_error_line(result)
        assert line.startswith(f"error: folder {backups}: Permission denied"), line

        for out in (unwritable, unwritable / "report"):
            result = cli("-i", str(site.inventory), "report", SITE, "--out", str(out))
            assert result.returncode == ExitCode.UNREACHABLE
            assert _one_error_line(result).startswith(f"error: folder {unwritable}: Permission denied")
    finally:
        _writable(backups, unwritable)
    assert cli("-i", str(site.inventory), "report", SITE, "--out", str(unwritable)).returncode == 0


@pytest.fixture
def mariadb_login(mariadb_database, _mariadb_admin):
    """A MariaDB user with a password, allowed on a fresh database: (database URL, user, password)."""
    url = sa.engine.make_url(mariadb_database())
    user, password = f"ts24_t_{uuid.uuid4().hex[:10]}", f"Right-{uuid.uuid4().hex[:8]}"
    with _mariadb_admin.connect() as conn:
        conn.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
        conn.execute(sa.text(f"GRANT SELECT ON `{url.database}`.* TO '{user}'@'%'"))
    yield url, user, password
    with _mariadb_admin.connect() as conn:
        conn.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'%'"))


def _inventory_with_legacy(folder: Path, reference: str) -> Path:
    inventory = folder / "sites.yaml"
    inventory.write_text(
        f"""
sites:
  - id: {SITE}
    office: "01"
    legacy: {reference}
    cutover: 2025-07-01
""",
        encoding="utf-8",
    )
    return inventory


@pytest.mark.mariadb
def test_a_wrong_password_is_a_configuration_error_exit_2_without_the_password(mariadb_login, tmp_path):
    url, user, password = mariadb_login
    wrong = f"Wrong-{uuid.uuid4().hex[:8]}"
    inventory = _inventory_with_legacy(tmp_path, "env:TS24_T_LEGACY")
    right_url = url.set(username=user, password=password).render_as_string(hide_password=False)
    wrong_url = url.set(username=user, password=wrong).render_as_string(hide_password=False)

    result = cli("-i", str(inventory), "assess", SITE, env={"TS24_T_LEGACY": wrong_url})
    assert result.returncode == ExitCode.USAGE
    line = _one_error_line(result)
    assert "refused the login" in line and "Access denied" in line, line
    assert wrong not in result.stdout + result.stderr

    result = cli("-i", str(inventory), "--json", "assess", SITE, env={"TS24_T_LEGACY": wrong_url})
    document = json.loads(result.stdout)
    assert document["exit_code"] == 2 and document["error"]["class"] == "LoginRefused"
    assert wrong not in result.stdout + result.stderr

    # The right password gets past the login (the empty database then fails the assessment otherwise).
    result = cli("-i", str(inventory), "assess", SITE, env={"TS24_T_LEGACY": right_url})
    assert "refused the login" not in result.stderr


@pytest.mark.mariadb
@pytest.mark.prefect
def test_prefect_does_not_retry_a_refused_login(mariadb_login, tmp_path, prefect_server, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.migrate_site import migrate_site

    url, user, _ = mariadb_login
    monkeypatch.setenv(
        "TS24_T_LEGACY", url.set(username=user, password="Wrong-pw").render_as_string(hide_password=False)
    )
    inventory = _inventory_with_legacy(tmp_path, "env:TS24_T_LEGACY")
    state = migrate_site(site_id=SITE, inventory=str(inventory), return_state=True)
    assert state.is_failed()
    with pytest.raises(LoginRefused):
        state.result()
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    assess = [run for run in runs if run.name.startswith("assess")]
    assert len(assess) == 1 and assess[0].run_count == 1, [(r.name, r.run_count, r.state_name) for r in runs]
    assert assess[0].state_name == "Failed"


def test_only_transient_failures_are_retried(tmp_path):
    """The classes Prefect's retry condition (flows.retries) sees, from real failures."""
    from ts24_migrate.core.db import check_reachable, store_engine
    from ts24_migrate.core.secrets import Secret

    closed_port = Secret("postgresql+psycopg://nobody:pw@127.0.0.1:1/none")
    with pytest.raises(UnreachableError) as unreachable:
        check_reachable(store_engine(closed_port), what="target database", url=closed_port)
    assert is_transient(unreachable.value)

    denied = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "control.sqlite"))
    known = classify(denied)
    assert isinstance(known, FolderUnusable) and known.exit_code == 3 and not is_transient(denied)
    assert str(known) == f"folder {tmp_path}: Permission denied ({tmp_path / 'control.sqlite'})"

    for error in (LoginRefused("refused"), VerificationError("tampered"), ZeroDivisionError(), KeyboardInterrupt()):
        assert not is_transient(error)
