"""A backup killed at any point and run again ends complete and valid: nothing lost, nothing doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_backup_support import make_demo_site, make_keys, restored_rows, source_rows

from backups.backup import JOURNAL_NAME, backup_site, site_lock
from backups.catalog import list_backups
from backups.restore import restore_backup
from backups.verify import verify_backup
from ts24_migrate.core.errors import UsageError
from ts24_migrate.core.signing import generate_signing_key, load_signing_key

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time, uuid
from pathlib import Path
from backups.backup import backup_site
from ts24_migrate.core.signing import load_signing_key
from ts24_migrate.core.db import legacy_engine
from ts24_migrate.core.secrets import Secret
args = json.loads(sys.argv[1])
def progress(item, done, total):
    print(item, flush=True)
    phase = "attachments" if item.startswith("attachments") else "checking" if item.startswith("checking") else "tables"
    time.sleep(args["pause"].get(phase, 0))
backup_site(legacy_engine(Secret(args["url"])), Path(args["files"]), Path(args["root"]), site_id="demo",
            run_id=str(uuid.uuid4()), recipients=[args["recipient"]], signing_key=load_signing_key(Path(args["key"])),
            chunk_rows=args["chunk_rows"], attachment_part_bytes=args["part_bytes"], progress=progress)
print("DONE", flush=True)
"""

CHUNK_ROWS, PART_BYTES = 8, 2048


def _kill_when(args: dict, should_kill) -> list[str]:
    """Run a backup in a child process and SIGKILL it as soon as should_kill(lines seen) is true."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    assert child.stdout is not None
    for line in child.stdout:
        seen.append(line.strip())
        if should_kill(seen):
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=120)
    assert child.returncode == -signal.SIGKILL, (child.returncode, seen[-3:], child.stderr.read()[-2000:])
    assert "DONE" not in seen
    return seen


@pytest.mark.slow
def test_sigkill_mid_extract_mid_attachments_and_before_the_manifest(tmp_path: Path, sqlite_url) -> None:
    url = sqlite_url("legacy")
    site = make_demo_site(tmp_path, url)
    keys = make_keys(tmp_path)
    key_path = tmp_path / "signing.key"
    generate_signing_key(key_path)
    root = tmp_path / "backups"
    args = {
        "url": url,
        "files": str(site.attachments),
        "root": str(root),
        "recipient": keys.recipient,
        "key": str(key_path),
        "chunk_rows": CHUNK_ROWS,
        "part_bytes": PART_BYTES,
        "pause": {},
    }

    # 1. killed while extracting a large keyed table (no pause: the kill lands mid-part).
    _kill_when(args, lambda seen: seen.count("HO_SO_LICH_SU") >= 5)
    [incomplete] = list_backups(root, "demo")
    assert incomplete.status == "incomplete"
    # 2. resumed, then killed while storing the attachment folder.
    _kill_when(
        {**args, "pause": {"attachments": 0.05}}, lambda seen: sum(s.startswith("attachments") for s in seen) >= 3
    )
    # 3. resumed, then killed after every part is stored, before the manifest is written.
    _kill_when({**args, "pause": {"checking": 30}}, lambda seen: seen[-1].startswith("checking"))
    assert [b.status for b in list_backups(root, "demo")] == ["incomplete"]

    # 4. run to the end.
    result = backup_site(
        site.legacy,
        site.attachments,
        root,
        site_id="demo",
        run_id=str(uuid.uuid4()),
        recipients=[keys.recipient],
        signing_key=load_signing_key(key_path),
        chunk_rows=CHUNK_ROWS,
        attachment_part_bytes=PART_BYTES,
    )
    assert result.resumed
    assert result.backup_dir == incomplete.path
    assert len(result.manifest.data["runs"]) == 4
    assert [b.status for b in list_backups(root, "demo")] == ["complete"]
    for name, figures in site.truth["tables"].items():
        assert result.manifest.tables[name]["rows"] == figures["rows"], name
    # No half-written or unlisted file is left, and part numbers were never reused.
    assert not (result.backup_dir / JOURNAL_NAME).exists()
    assert not [p for p in result.backup_dir.rglob(".tmp-*")]
    report = verify_backup(
        result.backup_dir, public_key_b64=load_signing_key(key_path).public_key_b64, identity=keys.identity
    )
    assert report.ok and report.warnings == [], (report.problems, report.warnings)
    for table in result.manifest.tables.values():
        paths = [p["path"] for p in table["parts"]]
        assert paths == sorted(paths) and len(set(paths)) == len(paths)
    scratch = sa.create_engine(sqlite_url("scratch"))
    restore = restore_backup(
        result.backup_dir,
        keys.identity,
        scratch,
        tmp_path / "restored",
        live=site.legacy,
        live_attachments=site.attachments,
    )
    assert restore.ok, restore.problems
    assert restored_rows(scratch, result.manifest.tables) == source_rows(site.legacy)


class _Interrupt(Exception):
    pass


def _interrupt_at(item: str, calls: int):
    seen = Counter()

    def progress(current: str, done: int, total: int) -> None:
        seen[current] += 1
        if current == item and seen[current] == calls:
            raise _Interrupt(item)

    return progress


@pytest.mark.slow
def test_keyless_table_is_read_again_under_new_part_numbers(tmp_path: Path, sqlite_url) -> None:
    site = make_demo_site(tmp_path, sqlite_url("legacy"))
    keys = make_keys(tmp_path)
    root = tmp_path / "backups"
    options = dict(site_id="demo", recipients=[keys.recipient], signing_key=keys.signing, chunk_rows=4)
    with pytest.raises(_Interrupt):  # after IMPORT_TAM's first part is stored and journaled
        backup_site(
            site.legacy, site.attachments, root, run_id="run-1", progress=_interrupt_at("IMPORT_TAM", 2), **options
        )
    [incomplete] = list_backups(root, "demo")
    first = incomplete.path / "parts" / "IMPORT_TAM" / "part-000001.parquet.age"
    assert first.exists()
    # Leftovers of a kill: a half-written part, and a complete part the journal never recorded.
    half = incomplete.path / "parts" / "IMPORT_TAM" / ".tmp-part-000002.parquet.age.999"
    half.write_bytes(b"half")
    stray = incomplete.path / "parts" / "IMPORT_TAM" / "part-000007.parquet.age"
    stray.write_bytes(b"never journaled")

    result = backup_site(site.legacy, site.attachments, root, run_id="run-2", **options)
    assert result.resumed
    parts = result.manifest.tables["IMPORT_TAM"]["parts"]
    assert [p["path"].rsplit("/", 1)[1] for p in parts] == [
        "part-000008.parquet.age",
        "part-000009.parquet.age",
        "part-000010.parquet.age",
    ]
    assert not first.exists() and not half.exists() and not stray.exists()
    assert result.manifest.tables["IMPORT_TAM"]["rows"] == site.truth["tables"]["IMPORT_TAM"]["rows"]
    report = verify_backup(result.backup_dir, public_key_b64=keys.signing.public_key_b64, identity=keys.identity)
    assert report.ok and report.warnings == []
    scratch = sa.create_engine(sqlite_url("scratch"))
    assert restore_backup(result.backup_dir, keys.identity, scratch, tmp_path / "restored").ok
    assert restored_rows(scratch, result.manifest.tables) == source_rows(site.legacy)


def test_keyed_table_resumes_after_its_last_stored_key(tmp_path: Path, sqlite_url) -> None:
    site = make_demo_site(tmp_path, sqlite_url("legacy"))
    keys = make_keys(tmp_path)
    root = tmp_path / "backups"
    options = dict(site_id="demo", recipients=[keys.recipient], signing_key=keys.signing, chunk_rows=50)
    with pytest.raises(_Interrupt):
        backup_site(
            site.legacy, site.attachments, root, run_id="run-1", progress=_interrupt_at("HO_SO_LICH_SU", 4), **options
        )
    [incomplete] = list_backups(root, "demo")
    kept = sorted((incomplete.path / "parts" / "HO_SO_LICH_SU").iterdir())
    assert len(kept) == 3
    before = {p.name: p.read_bytes() for p in kept}
    result = backup_site(site.legacy, site.attachments, root, run_id="run-2", **options)
    parts = result.manifest.tables["HO_SO_LICH_SU"]["parts"]
    # The three stored parts are kept as they were; the read went on after their last key.
    assert {p.name: p.read_bytes() for p in kept} == before
    assert [p["path"].rsplit("/", 1)[1] for p in parts][:3] == [p.name for p in kept]
    assert all(a["key_range"]["last"] < b["key_range"]["first"] for a, b in zip(parts, parts[1:]))
    assert sum(p["rows"] for p in parts) == site.truth["tables"]["HO_SO_LICH_SU"]["rows"]
    assert verify_backup(result.backup_dir, public_key_b64=keys.signing.public_key_b64, identity=keys.identity).ok


def test_other_recipients_start_a_new_backup_and_a_second_run_is_locked_out(tmp_path: Path, sqlite_url) -> None:
    site = make_demo_site(tmp_path, sqlite_url("legacy"))
    keys, other = make_keys(tmp_path), make_keys(tmp_path, "other")
    root = tmp_path / "backups"
    with pytest.raises(_Interrupt):
        backup_site(
            site.legacy,
            site.attachments,
            root,
            site_id="demo",
            run_id="run-1",
            recipients=[keys.recipient],
            signing_key=keys.signing,
            progress=_interrupt_at("HO_SO", 1),
        )
    result = backup_site(
        site.legacy,
        site.attachments,
        root,
        site_id="demo",
        run_id="run-2",
        recipients=[other.recipient],
        signing_key=keys.signing,
    )
    assert not result.resumed
    assert [b.status for b in list_backups(root, "demo")] == ["incomplete", "complete"]
    with site_lock(root / "demo"):
        with pytest.raises(UsageError, match="another backup of this site is running"):
            backup_site(
                site.legacy,
                site.attachments,
                root,
                site_id="demo",
                run_id="run-3",
                recipients=[keys.recipient],
                signing_key=keys.signing,
            )
