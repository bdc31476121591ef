"""A resumed backup hashes every part an earlier run wrote, and writes a damaged one again before it signs.

Before, a backup killed and resumed over a truncated part said "(resumed)", signed a manifest listing
the part's original hash and exited 0; only a later `backup verify` noticed. Now the resume finds it,
moves it to quarantine/ with a note, writes the same rows again under a new part number, and the
signed manifest lists the part as it now is, with the repair.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_backup_resume import CHUNK_ROWS, PART_BYTES, _Interrupt, _kill_when
from test_backup_support import make_demo_site, make_keys, restored_rows, source_rows

from backups.backup import JOURNAL_NAME, backup_site
from backups.catalog import list_backups
from backups.restore import restore_backup
from backups.verify import verify_backup
from ts24_migrate.core.signing import generate_signing_key, load_signing_key


def _journal(backup_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (backup_dir / JOURNAL_NAME).read_text().splitlines() if line.strip()]


def _after_attachment_parts(parts: int):
    calls = []

    def progress(item: str, done: int, total: int) -> None:
        if item.startswith("attachments ("):
            calls.append(item)
            if len(calls) > parts:  # the first call comes before any part
                raise _Interrupt(item)

    return progress


def _listed_paths(manifest) -> set[str]:
    paths = {p["path"] for t in manifest.tables.values() for p in t["parts"]}
    return paths | {p["path"] for p in (manifest.attachments or {}).get("parts", [])}


@pytest.mark.slow
def test_a_part_truncated_after_a_kill_is_written_again_and_the_manifest_signs_the_new_one(tmp_path, sqlite_url):
    site = make_demo_site(tmp_path, sqlite_url("legacy"))
    keys = make_keys(tmp_path)
    key_path = tmp_path / "signing.key"
    generate_signing_key(key_path)
    root = tmp_path / "backups"
    args = {
        "url": site.url,
        "files": str(site.attachments),
        "root": str(root),
        "recipient": keys.recipient,
        "key": str(key_path),
        "chunk_rows": CHUNK_ROWS,
        "part_bytes": PART_BYTES,
        "pause": {},
    }
    _kill_when(args, lambda seen: seen.count("HO_SO_LICH_SU") >= 5)  # a real SIGKILL, mid-table
    [incomplete] = list_backups(root, "demo")
    events = _journal(incomplete.path)

    # The newest part, truncated on disk; and a part of a table finished before, gone.
    newest = [e for e in events if e["event"] == "part"][-1]["part"]
    truncated = incomplete.path / newest["path"]
    truncated.write_bytes(truncated.read_bytes()[: newest["ciphertext_bytes"] // 2])
    finished = max((e["table"] for e in events if e["event"] == "table_done"), key=lambda t: len(t["parts"]))
    assert len(finished["parts"]) >= 2
    lost = finished["parts"][1]
    (incomplete.path / lost["path"]).unlink()

    signing = load_signing_key(key_path)
    result = backup_site(
        site.legacy,
        site.attachments,
        root,
        site_id="demo",
        run_id=str(uuid.uuid4()),
        recipients=[keys.recipient],
        signing_key=signing,
        chunk_rows=CHUNK_ROWS,
        attachment_part_bytes=PART_BYTES,
    )
    assert result.resumed and result.backup_dir == incomplete.path
    # The run says which parts it repaired, and how.
    repairs = {r["part"]: r for r in result.repairs}
    assert set(repairs) == {newest["path"], lost["path"]}
    assert "bytes on disk" in repairs[newest["path"]]["problem"]
    assert repairs[lost["path"]]["problem"] == "missing" and repairs[lost["path"]]["quarantined_as"] is None
    assert all(r["action"].startswith("written again from the source as parts/") for r in repairs.values())
    # The damaged file is in quarantine, untouched, with its note; nothing under parts/ was overwritten.
    quarantined = result.backup_dir / repairs[newest["path"]]["quarantined_as"]
    assert quarantined.stat().st_size == newest["ciphertext_bytes"] // 2
    note = json.loads((result.backup_dir / repairs[newest["path"]]["note"]).read_text())
    assert note["expected"]["ciphertext_sha256"] == newest["ciphertext_sha256"]
    assert not truncated.exists()

    manifest = result.manifest
    listed = _listed_paths(manifest)
    assert newest["path"] not in listed and lost["path"] not in listed
    assert {r["part"] for r in manifest.data["repairs"]} == {newest["path"], lost["path"]}
    for table in manifest.tables.values():  # the manifest signs each part as it is on disk now
        for part in table["parts"]:
            data = (result.backup_dir / part["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == part["ciphertext_sha256"], part["path"]
    replacement = manifest.tables[finished["name"]]["parts"][1]
    assert replacement["key_range"] == lost["key_range"] and replacement["rows"] == lost["rows"]

    report = verify_backup(result.backup_dir, public_key_b64=signing.public_key_b64, identity=keys.identity)
    assert report.ok and report.warnings == [], (report.problems, report.warnings)
    assert [b.status for b in list_backups(root, "demo")] == ["complete"]
    scratch = sa.create_engine(sqlite_url("scratch"))
    assert restore_backup(
        result.backup_dir,
        keys.identity,
        scratch,
        tmp_path / "restored",
        live=site.legacy,
        live_attachments=site.attachments,
    ).ok
    assert restored_rows(scratch, manifest.tables) == source_rows(site.legacy)


@pytest.mark.slow
def test_a_range_the_source_no_longer_gives_is_read_again_whole_and_attachment_parts_are_repaired(tmp_path, sqlite_url):
    site = make_demo_site(tmp_path, sqlite_url("legacy"))
    keys = make_keys(tmp_path)
    root = tmp_path / "backups"
    options = dict(
        site_id="demo", recipients=[keys.recipient], signing_key=keys.signing, chunk_rows=50, attachment_part_bytes=4096
    )
    with pytest.raises(_Interrupt):  # every table done, the attachment folder under way
        backup_site(site.legacy, site.attachments, root, run_id="run-1", progress=_after_attachment_parts(2), **options)
    [incomplete] = list_backups(root, "demo")
    events = _journal(incomplete.path)
    history = next(e["table"] for e in events if e["event"] == "table_done" and e["table"]["name"] == "HO_SO_LICH_SU")
    damaged = history["parts"][0]
    (incomplete.path / damaged["path"]).write_bytes(b"not what was written")
    # ... and a row of that part's range deleted from the source since: the range cannot be read again alike.
    writable = sa.create_engine(site.url)
    with writable.begin() as conn:
        first = damaged["key_range"]["first"][0]
        conn.execute(sa.text('DELETE FROM "HO_SO_LICH_SU" WHERE "ID" = :id'), {"id": first})
    writable.dispose()
    file_part = [e for e in events if e["event"] == "files_part"][0]["part"]
    (incomplete.path / file_part["path"]).unlink()
    [objects_part] = [e for e in events if e["event"] == "objects_done"][0]["objects"]["parts"]
    (incomplete.path / objects_part["path"]).write_bytes(b"")

    result = backup_site(site.legacy, site.attachments, root, run_id="run-2", **options)
    repairs = {r["part"]: r for r in result.repairs}
    assert set(repairs) == {damaged["path"], file_part["path"], objects_part["path"]}
    assert repairs[objects_part["path"]]["action"].endswith("definitions read again")
    assert result.manifest.objects["parts"][0]["path"] != objects_part["path"]
    assert repairs[damaged["path"]]["action"].startswith("the whole table read again")
    assert repairs[file_part["path"]]["action"].startswith("written again from the attachment folder as parts/@files/")
    assert result.manifest.tables["HO_SO_LICH_SU"]["rows"] == site.truth["tables"]["HO_SO_LICH_SU"]["rows"] - 1
    assert damaged["path"] not in _listed_paths(result.manifest)
    report = verify_backup(result.backup_dir, public_key_b64=keys.signing.public_key_b64, identity=keys.identity)
    assert report.ok and report.warnings == [], (report.problems, report.warnings)
    scratch = sa.create_engine(sqlite_url("scratch"))
    assert restore_backup(
        result.backup_dir,
        keys.identity,
        scratch,
        tmp_path / "restored",
        live=site.legacy,
        live_attachments=site.attachments,
    ).ok


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    from ts24_migrate.cli.main import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _statuses(capsys, inventory: str) -> dict[str, str]:
    code, out, err = _cli(capsys, "-i", inventory, "--json", "backup", "list", "demo")
    assert code == 0, err
    return {b["backup_id"]: b["status"] for b in json.loads(out)["backups"]}


@pytest.mark.slow
def test_a_complete_backup_that_fails_verification_is_listed_so_and_repaired_into_a_new_one(tmp_path, capsys):
    from ts24_migrate.cli.commands.demo_data import write_demo_inventory
    from ts24_migrate.core.keys import generate_custodian_identity

    identity = tmp_path / "keys" / "alice.age-identity"
    recipient = generate_custodian_identity(identity)
    generate_signing_key(tmp_path / "keys" / "signing.key")
    inventory = str(
        write_demo_inventory(
            tmp_path / "site", scale=0.05, backup_recipients=[recipient], signing_key=tmp_path / "keys" / "signing.key"
        )
    )
    assert _cli(capsys, "-i", inventory, "assess", "demo")[0] == 0  # a backup needs an assessment first
    code, out, err = _cli(capsys, "-i", inventory, "--json", "backup", "create", "demo", "--chunk-rows", "40")
    assert code == 0, err
    created = json.loads(out)
    backup_id, backup_dir = created["backup_id"], Path(created["backup_dir"])
    assert _statuses(capsys, inventory) == {backup_id: "complete"}
    assert _cli(capsys, "-i", inventory, "backup", "verify", "demo")[0] == 0
    assert _statuses(capsys, inventory) == {backup_id: "checked"}
    assert _cli(capsys, "-i", inventory, "backup", "verify", "demo", "--identity", str(identity))[0] == 0
    assert _statuses(capsys, inventory) == {backup_id: "verified"}

    # A part damaged on disk after the backup completed (a bad sector, a careless copy).
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    damaged = manifest["tables"]["HO_SO"]["parts"][1]
    path = backup_dir / damaged["path"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    code, out, err = _cli(capsys, "-i", inventory, "backup", "verify", "demo")
    assert code == 1
    assert "ciphertext SHA-256 or size does not match" in err
    assert f"to repair: `ts24-migrate backup repair demo --backup {backup_id}`" in err
    assert _statuses(capsys, inventory) == {backup_id: "verify-failed"}  # never plain "complete" again

    code, out, err = _cli(capsys, "-i", inventory, "backup", "repair", "demo", "--backup", backup_id)
    assert code == 0, err
    assert f"repairs backup {backup_id}" in out and "repaired: HO_SO part 2" in out
    statuses = _statuses(capsys, inventory)
    [repaired_id] = [b for b in statuses if b != backup_id]
    assert statuses == {backup_id: "verify-failed", repaired_id: "complete"}
    repaired = json.loads((backup_dir.parent / repaired_id / "manifest.json").read_text())
    assert repaired["repair_of"]["backup_id"] == backup_id
    assert repaired["tables"]["HO_SO"]["rows"] == manifest["tables"]["HO_SO"]["rows"]
    new_part = repaired["tables"]["HO_SO"]["parts"][1]
    assert new_part["path"] != damaged["path"] and new_part["plaintext_sha256"] == damaged["plaintext_sha256"]
    assert path.read_bytes() == bytes(data)  # the damaged backup is left as it was: write-once
    code, out, err = _cli(capsys, "-i", inventory, "backup", "verify", "demo", "--identity", str(identity))
    assert code == 0 and repaired_id in out, err
    assert _statuses(capsys, inventory)[repaired_id] == "verified"
    # Nothing to repair in a good backup.
    code, out, err = _cli(capsys, "-i", inventory, "backup", "repair", "demo", "--backup", repaired_id)
    assert code == 2 and "nothing to repair" in err
