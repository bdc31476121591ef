"""Two faults a backup meets in real life: the backup folder fills up, the legacy server drops the connection.

Each stops the backup with one clear line and exit code 3 (unreachable folder or database: Prefect
retries those), and the next run resumes to a backup that verifies and restores to the source.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_backup_support import make_demo_site, make_keys, restored_rows, source_rows

from backups.backup import backup_site
from backups.catalog import list_backups
from backups.restore import restore_backup
from backups.verify import verify_backup
from ts24_migrate.cli.main import main
from ts24_migrate.core.errors import UnreachableError


@pytest.fixture
def small_filesystem(tmp_path: Path):
    """A folder on a tmpfs of 96 KiB (root mounts it; skipped where mounting is not allowed)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96k,mode=0700", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()[:200]}")

    def grow(size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)

    yield folder, grow
    subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.slow
def test_a_full_backup_folder_stops_with_exit_3_and_the_backup_resumes_once_there_is_room(
    tmp_path, small_filesystem, capsys
):
    from ts24_migrate.cli.commands.demo_data import write_demo_inventory
    from ts24_migrate.core.keys import generate_custodian_identity
    from ts24_migrate.core.signing import generate_signing_key

    folder, grow = small_filesystem
    identity = tmp_path / "keys" / "alice.age-identity"
    recipient = generate_custodian_identity(identity)
    generate_signing_key(tmp_path / "keys" / "signing.key")
    inventory = write_demo_inventory(
        tmp_path / "site", scale=0.05, backup_recipients=[recipient], signing_key=tmp_path / "keys" / "signing.key"
    )
    text = inventory.read_text()
    inventory.write_text(text.replace("backup_dir: backups", f"backup_dir: {folder}"))
    assert f"backup_dir: {folder}" in inventory.read_text()

    assert main(["-i", str(inventory), "assess", "demo"]) == 0  # a backup needs an assessment first
    capsys.readouterr()
    code = main(["-i", str(inventory), "backup", "create", "demo", "--chunk-rows", "40"])
    _, err = capsys.readouterr()
    assert code == 3
    [line] = err.strip().splitlines()
    assert line.startswith("error: backup of site demo stopped: No space left on device") and "resume" in line
    [stopped] = list_backups(folder, "demo")
    assert stopped.status == "incomplete"
    assert not list(stopped.path.rglob(".tmp-*"))  # no half-written part left behind

    grow("64m")
    code = main(["-i", str(inventory), "--json", "backup", "create", "demo", "--chunk-rows", "40"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["resumed"] and result["backup_id"] == stopped.backup_id and result["repairs"] == []
    code = main(["-i", str(inventory), "backup", "verify", "demo", "--identity", str(identity)])
    _, err = capsys.readouterr()
    assert code == 0, err


def _kill_connections(admin: sa.Engine, database: str) -> int:
    """KILL every connection to `database`, as a DBA or a network fault would end them."""
    with admin.connect() as conn:
        ids = (
            conn.execute(
                sa.text("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = :db AND ID <> CONNECTION_ID()"),
                {"db": database},
            )
            .scalars()
            .all()
        )
        for connection_id in ids:
            conn.execute(sa.text(f"KILL {int(connection_id)}"))
    return len(ids)


@pytest.mark.slow
@pytest.mark.mariadb
def test_a_legacy_connection_killed_mid_extract_stops_with_exit_3_and_resumes_exactly(
    tmp_path, mariadb_url_fixture, _mariadb_admin, sqlite_url
):
    site = make_demo_site(tmp_path, mariadb_url_fixture)
    keys = make_keys(tmp_path)
    root = tmp_path / "backups"
    database = sa.engine.make_url(mariadb_url_fixture).database
    killed: list[int] = []

    def progress(item: str, done: int, total: int) -> None:
        if item == "HO_SO" and done > 0 and not killed:
            killed.append(_kill_connections(_mariadb_admin, database))

    options = dict(site_id="demo", recipients=[keys.recipient], signing_key=keys.signing, chunk_rows=40)
    with pytest.raises(UnreachableError, match="the legacy database failed .*run it again to resume"):
        backup_site(site.legacy, site.attachments, root, run_id=str(uuid.uuid4()), progress=progress, **options)
    assert killed and killed[0] >= 1
    [stopped] = list_backups(root, "demo")
    assert stopped.status == "incomplete"

    result = backup_site(site.legacy, site.attachments, root, run_id=str(uuid.uuid4()), **options)
    assert result.resumed and result.backup_dir == stopped.path
    report = verify_backup(result.backup_dir, public_key_b64=keys.signing.public_key_b64, identity=keys.identity)
    assert report.ok and report.warnings == [], report.problems
    scratch = sa.create_engine(sqlite_url("scratch"))
    assert restore_backup(result.backup_dir, keys.identity, scratch, tmp_path / "restored").ok
    assert restored_rows(scratch, result.manifest.tables) == source_rows(site.legacy)
