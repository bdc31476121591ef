"""Ctrl-C (SIGINT) delivered to real `load`, `backup` and `migrate` processes in the middle of their
work: each exits 130 within seconds with one clear line (and one JSON object), and running the same
command again resumes from where it stopped and completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from load import bookkeeping as bk
from ts24_migrate.cli.main import main
from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import ExitCode
from ts24_migrate.runs.app import App

SITE = "demo"
STOP_SECONDS = 15  # from Ctrl-C to the end of the process, on a busy 2-core CI machine
CHUNK_ROWS = "10"  # small chunks: many durable steps, so the signal lands in the middle of the work


class Started:
    def __init__(self, process: subprocess.Popen, out: Path, err: Path):
        self.process, self.out, self.err = process, out, err

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"ended before {what}: {self.err.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no {what} after {timeout} s"
            time.sleep(0.05)

    def interrupt(self, *, whole_group: bool = False) -> dict:
        """Send SIGINT (to the process, or to its whole group as a terminal's Ctrl-C does) and return
        the JSON object it printed, once it has exited 130 in time, by itself."""
        if whole_group:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"still running {STOP_SECONDS} s after Ctrl-C: {self.err.read_text()[-2000:]}")
        err = self.err.read_text()
        assert self.process.returncode == ExitCode.INTERRUPTED, err[-2000:]
        assert "Traceback" not in err and "stopping took longer" not in err, err[-2000:]
        assert err.strip().splitlines()[-1] == "error: interrupted; run the same command again to resume"
        print(f"stopped {time.monotonic() - sent:.1f} s after Ctrl-C")
        document = json.loads(self.out.read_text())
        assert document["exit_code"] == 130 and document["error"]["class"] == "Interrupted", document
        return document


def start(tmp_path: Path, *args: str, whole_group: bool = False, env: dict[str, str] | None = None) -> Started:
    # Output into files, not pipes: a full pipe would block the process we are about to interrupt.
    out, err = tmp_path / f"out-{time.monotonic_ns()}.json", tmp_path / f"err-{time.monotonic_ns()}.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "ts24_migrate", "--json", *args],
            stdout=stdout,
            stderr=stderr,
            start_new_session=whole_group,
            env=env,
        )
    return Started(process, out, err)


def rerun(*args: str, env: dict[str, str] | None = None) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "ts24_migrate", "--json", *args], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def loaded_chunks(site) -> int:
    engine = sa.create_engine(f"sqlite:///{site.folder / 'new-system' / 'target.sqlite'}")
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(bk.load_ledger.name):
                return 0
            return conn.execute(sa.select(sa.func.count()).select_from(bk.load_ledger)).scalar_one()
    finally:
        engine.dispose()


def ledger_has(site, stage: str, event: str) -> bool:
    path = site.folder / "work" / "ledger" / f"{SITE}.jsonl"
    return path.exists() and f'"stage":"{stage}","event":"{event}"' in path.read_text(encoding="utf-8")


def latest_run(site, stage: str):
    return App(site.inventory).control_store.runs(SITE, stage)[-1]


@pytest.mark.slow
def test_ctrl_c_during_load_exits_130_and_the_rerun_resumes(demo_site, tmp_path):
    site = demo_site(scale=0.05, seed=31)
    inventory = str(site.inventory)
    for step in (["assess", SITE], ["backup", SITE], ["backup", "verify", SITE, "--identity", str(site.identity)]):
        assert main(["-i", inventory, *step]) == 0

    load = start(tmp_path, "-i", inventory, "load", SITE, "--chunk-rows", CHUNK_ROWS)
    load.wait_until(lambda: loaded_chunks(site) >= 3, "three chunks loaded")
    load.interrupt()
    done = loaded_chunks(site)
    run = latest_run(site, "load")
    assert run.outcome == "failed" and "KeyboardInterrupt" in run.error
    assert ledger_has(site, "load", "failed")

    summary = rerun("-i", inventory, "load", SITE, "--chunk-rows", CHUNK_ROWS)
    assert summary["chunks_skipped"] == done and summary["chunks_loaded"] > 0 and summary["accounting_ok"]
    assert App(site.inventory).control_store.state(SITE) is SiteState.LOADED


@pytest.mark.slow
def test_ctrl_c_during_backup_exits_130_and_the_rerun_resumes(demo_site, tmp_path):
    # Big enough that the backup's parts take seconds after the third (some 700 parts at this scale and
    # chunk size): at scale 0.05 the rest took under a second here, and a busy CI machine saw the
    # backup finish (exit 0) before the Ctrl-C arrived.
    site = demo_site(scale=0.2, seed=32)
    inventory = str(site.inventory)
    backups = site.folder / "backups" / SITE
    assert main(["-i", inventory, "assess", SITE]) == 0

    backup = start(tmp_path, "-i", inventory, "backup", SITE, "--chunk-rows", "5")
    backup.wait_until(lambda: len(list(backups.rglob("*.age"))) >= 3, "three encrypted parts")
    backup.interrupt()
    assert not list(backups.rglob("manifest*.json")), "an interrupted backup must not look complete"
    assert latest_run(site, "backup").outcome == "failed"

    summary = rerun("-i", inventory, "backup", SITE, "--chunk-rows", "5")
    assert summary["resumed"] is True
    verified = rerun("-i", inventory, "backup", "verify", SITE, "--identity", str(site.identity))
    assert verified["mode"] == "decrypted" and verified["rows_checked"] == sum(
        t["rows"] for t in site.truth["tables"].values()
    )


@pytest.mark.slow
def test_ctrl_c_during_migrate_exits_130_and_the_rerun_completes(demo_site, tmp_path):
    site = demo_site(scale=0.05, seed=33)
    command = ["-i", str(site.inventory), "migrate", SITE, "--identity", str(site.identity), "--chunk-rows", CHUNK_ROWS]
    migrate = start(tmp_path, *command)
    migrate.wait_until(lambda: ledger_has(site, "load", "started") and loaded_chunks(site) >= 2, "the load under way")
    migrate.interrupt()
    assert App(site.inventory).control_store.state(SITE) is SiteState.BACKUP_VERIFIED

    result = rerun(*command)
    assert result["validate"]["passed"] is True, result["validate"]["reasons"]
    assert App(site.inventory).control_store.state(SITE) is SiteState.VALIDATED


@pytest.mark.slow
@pytest.mark.prefect
def test_ctrl_c_in_a_terminal_during_a_flow_run_on_a_temporary_server(demo_site, tmp_path):
    """A terminal's Ctrl-C reaches the whole foreground process group, the temporary Prefect server
    included: the flow run still stops at once (no waiting on a dead server) and the server is gone."""
    site = demo_site(scale=0.05, seed=34)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # a server database of its own
    command = [
        "-i",
        str(site.inventory),
        "migrate",
        SITE,
        "--identity",
        str(site.identity),
        "--chunk-rows",
        CHUNK_ROWS,
        "--via-prefect",
    ]
    migrate = start(tmp_path, *command, whole_group=True, env=env)
    migrate.wait_until(
        lambda: ledger_has(site, "load", "started") and loaded_chunks(site) >= 2, "the load under way", timeout=600
    )
    migrate.interrupt(whole_group=True)  # and stdout held nothing but the JSON object
    deadline = time.monotonic() + 10
    while True:  # nothing of the process group is left: the temporary server was stopped too
        try:
            os.killpg(migrate.process.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the temporary Prefect server outlived the command"
        time.sleep(0.2)
    assert latest_run(site, "load").outcome == "failed"

    result = rerun(*command[:-1], env=env)  # directly this time: same stages, same records
    assert result["validate"]["passed"] is True


def test_the_database_library_s_own_complaints_are_one_line_and_silent_after_ctrl_c(capfd):
    """SQLAlchemy logs "Error closing cursor" with a traceback when a Ctrl-C lands inside a fetch (it
    closes the connection first); a command prints library warnings as one line, and none after Ctrl-C.
    (The real signal is not raised here: its watchdog would end the test process.)"""
    import logging

    from ts24_migrate.cli import interrupts

    pool_log = logging.getLogger("sqlalchemy.pool.impl.QueuePool")
    handler = interrupts._Handler()
    library_log = interrupts._LibraryLog(handler)
    logging.getLogger("sqlalchemy").addHandler(library_log)
    try:
        for interrupted in (False, True):
            handler.interrupted = interrupted
            try:
                raise RuntimeError("closed database")
            except RuntimeError:
                pool_log.error("Error closing cursor", exc_info=True)
            expected = "" if interrupted else "warning (sqlalchemy.pool.impl.QueuePool): Error closing cursor\n"
            assert capfd.readouterr().err == expected
    finally:
        logging.getLogger("sqlalchemy").removeHandler(library_log)
