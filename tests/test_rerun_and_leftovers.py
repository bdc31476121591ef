"""Re-runs do no needless work, and a failure leaves nothing half-made behind.

- a migration run again reuses the verified backup whose fingerprints equal the live source
  (and says why), and makes a new one when anything changed;
- the first reconciliation after a migration carries nothing over when nothing changed;
- a failed restore deletes what it wrote (SQLite, PostgreSQL, the attachment folder) and the same
  command then works;
- a failed backup that stored nothing leaves no folder; one killed after storing parts stays
  resumable, and `backup list` says how to resume it;
- `demo` refuses a scale <= 0 before writing anything and removes a folder it could not finish.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_stages_support import through

from ts24_migrate.cli.main import main
from ts24_migrate.core.errors import ExitCode
from ts24_migrate.runs.app import App
from ts24_migrate.runs.backup import backup_step
from ts24_migrate.runs.reconcile import reconcile_step

SITE = "demo"


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() and p.name != ".lock"
    }


def _legacy_write(site, statement: str) -> None:
    with sqlite3.connect(site.folder / "legacy" / f"{SITE}.sqlite") as conn:
        conn.execute(statement)


def test_a_backup_run_again_on_an_unchanged_source_is_reused_and_writes_nothing(demo_site):
    site = demo_site(scale=0.03)
    app = App(site.inventory)
    through(app, SITE, "assess", "backup", "verify")
    backups = site.folder / "backups"
    before = _files(backups)
    first = app.control_store.latest_run(SITE, "backup").figures["backup_id"]

    again = backup_step(app, SITE, reuse_unchanged=True)
    assert again.reused and again.backup_id == first
    assert again.reuse_note is not None and again.reuse_note.startswith("the source is unchanged")
    assert _files(backups) == before  # not one byte written
    run = app.control_store.latest_run(SITE, "backup")
    assert run.figures["reused"] and run.figures["backup_id"] == first
    assert app.control_store.table_figures(run.run_id)["HO_SO"]["rows"] > 0  # what validation reads

    # One legacy row changes: the backup no longer equals the source, a new one is written.
    _legacy_write(site, "UPDATE HO_SO SET MA_THU_TUC = 'X' WHERE ID_HO_SO = (SELECT MIN(ID_HO_SO) FROM HO_SO)")
    changed = backup_step(app, SITE, reuse_unchanged=True)
    assert not changed.reused and changed.backup_id != first
    assert len([p for p in (backups / SITE).iterdir() if p.is_dir()]) == 2
    app.close()


def test_an_unverified_or_changed_backup_is_not_reused_and_the_reason_is_given(demo_site):
    site = demo_site(scale=0.03)
    app = App(site.inventory)
    through(app, SITE, "assess", "backup")  # never verified
    first = app.control_store.latest_run(SITE, "backup").figures["backup_id"]
    second = backup_step(app, SITE, reuse_unchanged=True)
    assert not second.reused and f"backup {first} is never verified" == second.reuse_note
    through(app, SITE, "verify")
    (site.folder / "attachments" / SITE / "new-scan.pdf").write_bytes(b"%PDF- a file added after the backup")
    third = backup_step(app, SITE, reuse_unchanged=True)
    assert not third.reused and "the attachment folder changed since the backup" in (third.reuse_note or "")
    app.close()


@pytest.mark.slow
def test_the_first_reconciliation_after_a_migration_carries_nothing_over_when_nothing_changed(demo_site):
    site = demo_site(scale=0.05)
    app = App(site.inventory)
    through(app, SITE, "assess", "backup", "verify-identity", "load", "validate", identity=site.identity)
    first = reconcile_step(app, SITE)
    assert first.mode == "baseline"
    assert (first.rows_changed, first.carried_over) == (0, 0), first
    # Something does change: the next run carries exactly that over.
    assert main(["-i", str(site.inventory), "demo-advance", SITE, "--days", "3"]) == ExitCode.OK
    second = reconcile_step(app, SITE)
    assert second.rows_changed > 0 and second.carried_over > 0
    app.close()


@pytest.mark.slow
def test_a_baseline_after_a_change_stores_what_changed_and_a_sweep_then_finds_the_chain_whole(demo_site):
    site = demo_site(scale=0.05)
    app = App(site.inventory)
    through(app, SITE, "assess", "backup", "verify-identity", "load", "validate", identity=site.identity)
    assert main(["-i", str(site.inventory), "demo-advance", SITE, "--days", "3"]) == ExitCode.OK
    baseline = reconcile_step(app, SITE)
    assert baseline.mode == "baseline" and baseline.rows_changed > 0 and baseline.carried_over > 0
    sweep = reconcile_step(app, SITE, sweep=True)
    assert (sweep.mode, sweep.rows_changed, sweep.carried_over) == ("sweep", 0, 0)
    app.close()


def _damaged(site) -> tuple[Path, bytes]:
    """Damage the first part of the dossier files' table; returns it and its good bytes."""
    part = sorted((site.folder / "backups" / SITE).rglob("parts/HO_SO_TEP/part-000001.parquet.age"))[0]
    good = part.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    part.write_bytes(bytes(bad))
    return part, good


def test_a_failed_restore_into_sqlite_leaves_nothing_and_the_same_command_then_works(demo_site, capsys, tmp_path):
    site = demo_site(scale=0.03)
    app = App(site.inventory)
    through(app, SITE, "assess", "backup")
    app.close()
    part, good = _damaged(site)
    out = tmp_path / "out"
    out.mkdir()
    scratch, files = out / "restored.sqlite", out / "restored-files"
    args = [
        "-i",
        str(site.inventory),
        "backup",
        "restore",
        SITE,
        "--identity",
        str(site.identity),
        "--into-sqlite",
        str(scratch),
        "--files",
        str(files),
    ]
    capsys.readouterr()
    assert main(args) == ExitCode.VERDICT_FAILED
    err = capsys.readouterr().err
    assert (
        "does not match" in err
        and "the partial restore (database copy for restored.sqlite, attachment files) "
        "was deleted, so the same command can run again"
        in err
    )
    assert not scratch.exists() and not files.exists()
    assert list(out.iterdir()) == []  # no hidden leftovers either

    part.write_bytes(good)
    assert main(args) == ExitCode.OK
    assert scratch.is_file() and any(files.rglob("*"))
    with sqlite3.connect(scratch) as conn:
        assert conn.execute("SELECT COUNT(*) FROM HO_SO").fetchone()[0] > 0


@pytest.mark.postgres
def test_a_failed_restore_into_postgresql_drops_its_tables(demo_site, capsys, tmp_path, pg_url, monkeypatch):
    site = demo_site(scale=0.03)
    app = App(site.inventory)
    through(app, SITE, "assess", "backup")
    app.close()
    part, good = _damaged(site)
    scratch = sa.create_engine(pg_url)
    with scratch.begin() as conn:  # a table of someone else's in the scratch database is left alone
        conn.execute(sa.text("CREATE TABLE notes_of_the_dba (id int)"))
    monkeypatch.setenv("TS24_T_SCRATCH", pg_url)
    args = [
        "-i",
        str(site.inventory),
        "backup",
        "restore",
        SITE,
        "--identity",
        str(site.identity),
        "--into-url-env",
        "TS24_T_SCRATCH",
        "--files",
        str(tmp_path / "files"),
    ]
    capsys.readouterr()
    assert main(args) == ExitCode.VERDICT_FAILED
    assert "table(s) in the scratch database" in capsys.readouterr().err
    assert sa.inspect(scratch).get_table_names() == ["notes_of_the_dba"]
    part.write_bytes(good)
    assert main(args) == ExitCode.OK
    assert "HO_SO" in sa.inspect(scratch).get_table_names()
    scratch.dispose()


def test_a_backup_that_fails_before_storing_anything_leaves_no_folder(demo_site, capsys):
    site = demo_site(scale=0.03)
    app = App(site.inventory)
    through(app, SITE, "assess")
    app.close()
    attachments = site.folder / "attachments" / SITE
    attachments.rename(attachments.with_name("moved-away"))
    capsys.readouterr()
    assert main(["-i", str(site.inventory), "backup", SITE]) == ExitCode.UNREACHABLE
    assert "does not exist" in capsys.readouterr().err
    assert [p for p in (site.folder / "backups" / SITE).iterdir() if p.is_dir()] == []
    assert main(["-i", str(site.inventory), "backup", "list", SITE]) == ExitCode.OK
    assert "has no backups" in capsys.readouterr().out
    attachments.with_name("moved-away").rename(attachments)
    assert main(["-i", str(site.inventory), "backup", SITE]) == ExitCode.OK


@pytest.mark.slow
def test_a_killed_backup_stays_resumable_and_backup_list_says_how(demo_site, capsys):
    site = demo_site(scale=0.05)
    app = App(site.inventory)
    through(app, SITE, "assess")
    app.close()
    command = [sys.executable, "-m", "ts24_migrate", "-i", str(site.inventory), "backup", SITE, "--chunk-rows", "5"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    site_dir = site.folder / "backups" / SITE
    while process.poll() is None and time.monotonic() < deadline:
        if len(list(site_dir.rglob("part-*.parquet.age"))) >= 3:
            break
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the backup ended before the kill"

    capsys.readouterr()
    assert main(["-i", str(site.inventory), "backup", "list", SITE]) == ExitCode.OK
    out = capsys.readouterr().out
    assert " incomplete " in out
    hint = next(line for line in out.splitlines() if line.startswith("incomplete: "))
    resume = hint.split("`")[1].split()
    assert resume[:2] == ["ts24-migrate", "-i"] and resume[-2:] == ["backup", SITE]
    assert main(["--json", *resume[1:], "--chunk-rows", "5"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["resumed"] is True


def test_demo_refuses_a_scale_below_zero_before_writing_anything(tmp_path, capsys):
    folder = tmp_path / "demo"
    assert main(["demo", "--folder", str(folder), "--scale", "-1"]) == ExitCode.USAGE
    assert "--scale" in capsys.readouterr().err and not folder.exists()
    assert main(["demo", "--folder", str(folder), "--scale", "0"]) == ExitCode.USAGE
    assert not folder.exists()


def test_a_demo_that_cannot_be_made_leaves_no_half_made_folder(tmp_path, capsys):
    folder = tmp_path / "demo"
    assert main(["demo", "--folder", str(folder), "--scale", "0.03", "--site", "Not An Id"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"the half-made demo folder {folder} was removed" in err and "field id" in err
    assert not folder.exists()
