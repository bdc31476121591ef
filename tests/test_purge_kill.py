"""`purge execute` killed for real (SIGKILL) at several points and run again: it resumes from its journal,
completes, certifies, and nothing outside the plan's scope is touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from test_purge_support import OUTSIDE_SECRET, SITE, cli_process, copy_site, run_cli, run_process, template

from ts24_migrate.core.control_store import SiteState
from ts24_migrate.core.errors import ExitCode

pytestmark = pytest.mark.slow


def _journal_lines(journal: Path) -> int:
    try:
        return journal.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _killed_after(command: list[str], journal: Path, lines: int) -> int:
    """Start the purge, SIGKILL it once its journal holds `lines` records; returns the records it left."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while process.poll() is None and _journal_lines(journal) < lines:
            time.sleep(0.001)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        _, err = process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL, f"the purge ended before the kill: {err.decode()[-800:]}"
    return _journal_lines(journal)


def _in_scope(path: str) -> bool:
    """The plan's scope: the legacy database file and the site's attachment folder (and the temporary names
    purge gives their files between overwriting and unlinking them)."""
    name = path.rsplit("/", 1)[-1]
    return (
        path == "legacy/demo.sqlite"
        or (path.startswith("legacy/") and name.startswith(".ts24-purge-"))
        or path.startswith(f"attachments/{SITE}/")
    )


def test_killed_at_several_points_then_rerun_completes_and_certifies(tmp_path_factory, tmp_path, capsys):
    site = copy_site(template(tmp_path_factory), tmp_path / "site")
    plan = site.plan(capsys)
    approval = site.approve(plan["plan"], capsys=capsys)
    journal = Path(plan["plan"]).parent / "journal.jsonl"
    before = site.snapshot()
    in_scope = {p for p in before if _in_scope(p)}
    execute = ["purge", "execute", SITE, "--plan", plan["plan"], "--approval", approval]
    totals = plan["totals"]
    steps = 2 * (totals["database_files"] + totals["files"] + totals["links"] + totals["directories"])

    # 1: right after the gates passed and the purge started (nothing destroyed yet);
    # 4: the database file destroyed, the first attachment begun; then mid-files (an odd count is a step
    # begun and not done: a file overwritten, renamed or unlinked only in part); then among the folders.
    left = 0
    for lines in (1, 4, steps // 2 + 1, steps - 3):
        left_now = _killed_after(cli_process(site.inventory, *execute), journal, lines)
        assert left_now >= max(lines, left)
        left = left_now
        after_kill = site.snapshot()
        # Whatever the kill interrupted, nothing outside the scope changed (inside it, a file the kill caught
        # between its rename and its unlink stands under its temporary name until the re-run removes it).
        assert {p: v for p, v in after_kill.items() if not _in_scope(p)} == {
            p: v for p, v in before.items() if not _in_scope(p)
        }
    assert site.store().state(SITE) == SiteState.PURGE_APPROVED

    # The same command without the approval: a started purge needs none while what is left is unchanged.
    finished = run_process(site.inventory, "purge", "execute", SITE, "--plan", plan["plan"])
    assert finished.returncode == ExitCode.OK, finished.stderr.decode()[-1000:]
    result = json.loads(finished.stdout)
    assert result["state"] == "CERTIFIED" and result["resumed"]
    assert result["figures"]["files_overwritten"] == plan["totals"]["files"]
    assert result["figures"]["bytes_overwritten"] == plan["totals"]["file_bytes"]
    assert result["figures"]["directories_removed"] == plan["totals"]["directories"]

    after = site.snapshot()
    assert set(before) - set(after) == in_scope
    assert {p: v for p, v in before.items() if p not in in_scope} == after
    assert (site.folder / "attachments" / "outside" / "secret.txt").read_bytes() == OUTSIDE_SECRET
    assert not any(name.startswith(".ts24-purge-") for name in os.listdir(site.folder / "legacy"))
    code, check, err = run_cli(
        site.inventory,
        "certificate",
        "verify",
        result["certificate"],
        "--public-key",
        str(site.public_key),
        "--backups",
        str(site.folder / "backups"),
        "--ledger",
        str(site.ledger),
        capsys=capsys,
    )
    assert code == ExitCode.OK and check["ok"], err


def test_a_restore_drill_left_by_a_killed_prepare_is_shredded_by_the_next_one(tmp_path_factory, tmp_path, capsys):
    """A prepare killed during its restore drill never shreds its private scratch (decrypted legacy
    data); the next prepare does, before its own drill, so no copy outlives the purge."""
    site = copy_site(template(tmp_path_factory, prepared=False), tmp_path / "site")
    purge_folder = site.folder / "work" / "sites" / SITE / "purge"
    left = purge_folder / f".restore-drill-{uuid.uuid4()}"  # a run id no prepare is running under
    left.mkdir(parents=True)
    (left / "drill.sqlite").write_bytes(b"SQLite format 3\x00 decrypted legacy rows")
    code, prepared, err = run_cli(
        site.inventory, "purge", "prepare", SITE, "--identity", str(site.identity), capsys=capsys
    )
    assert code == ExitCode.OK, err
    assert not left.exists()
    assert [p.name for p in purge_folder.iterdir() if p.name.startswith(".restore-drill-")] == []
    assert site.store().state(SITE) == SiteState.FINAL_BACKUP_VERIFIED
