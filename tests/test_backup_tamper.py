"""Tampering and mistakes are detected with a clear message; the stock `age` tool interoperates."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from test_backup_support import make_demo_site, make_keys, run_backup

from backups.manifest import MANIFEST_NAME, SIGNATURE_NAME, signature_document
from backups.part_store import PartExists, write_once
from backups.restore import restore_backup
from backups.verify import verify_backup
from ts24_migrate.core.errors import VerificationError
from ts24_migrate.core.signing import canonical_json

AGE = shutil.which("age")


@pytest.fixture
def backup(tmp_path: Path, sqlite_url):
    site = make_demo_site(tmp_path, sqlite_url("legacy"))
    keys = make_keys(tmp_path)
    result = run_backup(site, tmp_path / "backups", keys)
    return result, keys


def _verify(result, keys, identity=True):
    return verify_backup(
        result.backup_dir, public_key_b64=keys.signing.public_key_b64, identity=keys.identity if identity else None
    )


def _first_part(result) -> tuple[str, dict]:
    part = result.manifest.tables["HO_SO"]["parts"][0]
    return part["path"], part


def _rewrite_manifest(result, keys, change) -> None:
    """What an operator holding the signing key could do: edit and re-sign the manifest."""
    data = json.loads((result.backup_dir / MANIFEST_NAME).read_bytes())
    change(data)
    raw = canonical_json(data)
    (result.backup_dir / MANIFEST_NAME).write_bytes(raw)
    (result.backup_dir / SIGNATURE_NAME).write_bytes(signature_document(raw, keys.signing))


def test_untouched_backup_verifies_with_and_without_a_key(backup) -> None:
    result, keys = backup
    without = _verify(result, keys, identity=False)
    assert without.ok and without.mode == "signature+ciphertext" and without.rows_checked == 0
    with_key = _verify(result, keys)
    assert with_key.ok and with_key.mode == "decrypted" and with_key.rows_checked > 0
    assert without.parts_checked == with_key.parts_checked == result.manifest.data["totals"]["parts"]


def test_one_flipped_byte_in_a_part_is_detected_without_a_key(backup) -> None:
    result, keys = backup
    relpath, _ = _first_part(result)
    path = result.backup_dir / relpath
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = _verify(result, keys, identity=False)
    assert not report.ok
    assert report.problems == [
        f"HO_SO part 1 ({relpath}): ciphertext SHA-256 or size does not match the manifest "
        f"(the file was changed or damaged)"
    ]
    with pytest.raises(VerificationError, match="HO_SO part 1"):
        report.raise_if_failed()


def test_an_edited_manifest_fails_its_signature(backup) -> None:
    result, keys = backup
    path = result.backup_dir / MANIFEST_NAME
    data = json.loads(path.read_bytes())
    data["tables"]["HO_SO"]["rows"] -= 1
    path.write_bytes(canonical_json(data))
    report = _verify(result, keys, identity=False)
    assert not report.ok
    assert any("manifest signature does not verify" in p for p in report.problems)
    with pytest.raises(VerificationError, match="refusing to restore"):
        restore_backup(
            result.backup_dir,
            keys.identity,
            sa.create_engine("sqlite://"),
            None,
            public_key_b64=keys.signing.public_key_b64,
        )


def test_a_missing_part_is_named(backup) -> None:
    result, keys = backup
    relpath, _ = _first_part(result)
    (result.backup_dir / relpath).unlink()
    report = _verify(result, keys, identity=False)
    assert report.problems == [f"HO_SO part 1 ({relpath}) is missing"]


def test_a_wrong_identity_or_public_key_is_refused(backup, tmp_path: Path) -> None:
    result, keys = backup
    stranger = make_keys(tmp_path, "stranger")
    report = verify_backup(result.backup_dir, public_key_b64=keys.signing.public_key_b64, identity=stranger.identity)
    assert not report.ok
    assert report.problems == [
        "the identity given is not one of this backup's recipients (1 custodian key(s)): it cannot decrypt the parts"
    ]
    report = verify_backup(result.backup_dir, public_key_b64=stranger.signing.public_key_b64)
    assert not report.ok and "signed by another key" in report.problems[0]
    with pytest.raises(VerificationError, match="not one of the recipients"):
        restore_backup(result.backup_dir, stranger.identity, sa.create_engine("sqlite://"), None)


def test_a_swapped_plaintext_is_caught_even_with_a_resigned_manifest(backup, tmp_path: Path) -> None:
    """Someone with the signing key replaces a part by a valid encryption of other rows."""
    result, keys = backup
    (first_path, first), (second_path, second) = [(p["path"], p) for p in result.manifest.tables["HO_SO"]["parts"][:2]]
    shutil.copy(result.backup_dir / second_path, result.backup_dir / first_path)

    def swap_hashes(data):
        part = data["tables"]["HO_SO"]["parts"][0]
        part["ciphertext_sha256"], part["ciphertext_bytes"] = second["ciphertext_sha256"], second["ciphertext_bytes"]

    _rewrite_manifest(result, keys, swap_hashes)
    assert _verify(result, keys, identity=False).ok  # the ciphertext check alone cannot know
    report = _verify(result, keys)
    assert report.problems == [f"HO_SO part 1 ({first_path}): plaintext SHA-256 or size does not match the manifest"]


def test_parts_are_write_once(backup) -> None:
    result, _ = backup
    relpath, _ = _first_part(result)
    before = (result.backup_dir / relpath).read_bytes()
    with pytest.raises(PartExists, match="write-once"):
        write_once(result.backup_dir / relpath, lambda out: out.write(b"other"))
    assert (result.backup_dir / relpath).read_bytes() == before


def test_an_extra_file_is_a_warning_not_a_part(backup) -> None:
    result, keys = backup
    (result.backup_dir / "parts" / "HO_SO" / "part-999999.parquet.age").write_bytes(b"junk")
    report = _verify(result, keys)
    assert report.ok
    assert report.warnings == [
        "parts/HO_SO/part-999999.parquet.age is in the backup folder but not in the manifest (ignored)"
    ]


@pytest.mark.skipif(AGE is None, reason="the Debian `age` package is not installed")
def test_stock_age_decrypts_our_parts(backup, tmp_path: Path) -> None:
    result, keys = backup
    relpath, part = _first_part(result)
    out = tmp_path / "part.parquet"
    subprocess.run(
        [AGE, "-d", "-i", str(keys.identity), "-o", str(out), str(result.backup_dir / relpath)],
        check=True,
        capture_output=True,
    )
    assert hashlib.sha256(out.read_bytes()).hexdigest() == part["plaintext_sha256"]
    assert pq.read_table(out).num_rows == part["rows"]


@pytest.mark.skipif(AGE is None, reason="the Debian `age` package is not installed")
def test_we_read_parts_that_stock_age_encrypted(backup, tmp_path: Path) -> None:
    """Re-encrypt every part with `age -r`, re-sign the manifest: verify and restore still pass."""
    result, keys = backup
    new_hashes = {}
    for path in sorted(result.backup_dir.rglob("*.age")):
        plain = tmp_path / "plain"
        subprocess.run([AGE, "-d", "-i", str(keys.identity), "-o", str(plain), str(path)], check=True)
        path.unlink()
        subprocess.run([AGE, "-r", keys.recipient, "-o", str(path), str(plain)], check=True)
        plain.unlink()
        data = path.read_bytes()
        new_hashes[path.relative_to(result.backup_dir).as_posix()] = (hashlib.sha256(data).hexdigest(), len(data))

    def new_ciphertexts(data):
        parts = (
            [p for t in data["tables"].values() for p in t["parts"]]
            + data["attachments"]["parts"]
            + data["objects"]["parts"]
        )
        for part in parts:
            part["ciphertext_sha256"], part["ciphertext_bytes"] = new_hashes[part["path"]]

    _rewrite_manifest(result, keys, new_ciphertexts)
    report = _verify(result, keys)
    assert report.ok, report.problems
    assert report.rows_checked == result.manifest.data["totals"]["rows"]
    restore = restore_backup(
        result.backup_dir,
        keys.identity,
        sa.create_engine("sqlite://"),
        tmp_path / "restored-files",
        public_key_b64=keys.signing.public_key_b64,
    )
    assert restore.ok, restore.problems


def test_each_of_several_custodians_can_decrypt(tmp_path: Path, sqlite_url) -> None:
    site = make_demo_site(tmp_path, sqlite_url("legacy"))
    alice, bob = make_keys(tmp_path, "alice"), make_keys(tmp_path, "bob")
    result = run_backup(site, tmp_path / "backups", alice, recipients=[alice.recipient, bob.recipient])
    assert result.manifest.recipients == [alice.recipient, bob.recipient]
    for custodian in (alice, bob):
        report = verify_backup(
            result.backup_dir, public_key_b64=alice.signing.public_key_b64, identity=custodian.identity
        )
        assert report.ok and report.rows_checked == result.manifest.data["totals"]["rows"]
