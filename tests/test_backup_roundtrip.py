"""Legacy -> encrypted backup -> restore gives back identical rows and files (SQLite, MariaDB, PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_backup_support import (
    folder_files,
    make_demo_site,
    make_keys,
    restored_rows,
    run_backup,
    source_rows,
    sqlite_legacy,
)

from backups.backup import backup_site
from backups.manifest import MANIFEST_NAME, read_manifest
from backups.restore import restore_backup
from backups.verify import verify_backup
from extract.attachments import ATTACHMENTS_KEY
from extract.extraction import live_fingerprints
from ts24_migrate.core.db import legacy_engine
from ts24_migrate.core.secrets import Secret


def assert_round_trip(tmp_path: Path, legacy_url: str, scratch: sa.Engine) -> None:
    site = make_demo_site(tmp_path, legacy_url)
    keys = make_keys(tmp_path)
    result = run_backup(site, tmp_path / "backups", keys)
    manifest = result.manifest

    # Accounting: every table of the database, mapped or not, with the demo's exact row counts.
    truth_tables = site.truth["tables"]
    assert set(manifest.tables) == set(truth_tables)
    for name, figures in truth_tables.items():
        assert manifest.tables[name]["rows"] == figures["rows"], name
        assert manifest.tables[name]["role"] == figures["role"], name
    keyless = [n for n, t in manifest.tables.items() if not t["primary_key"]]
    assert keyless and all(manifest.tables[n]["read"] == "single_pass" for n in keyless)
    assert any(t["role"] == "unmapped" for t in manifest.tables.values())
    # Parts are bounded by chunk_rows; key ranges follow each other in key order.
    for table in manifest.tables.values():
        assert all(p["rows"] <= 60 for p in table["parts"])
    history = manifest.tables["HO_SO_LICH_SU"]["parts"]
    assert len(history) > 1
    assert all(a["key_range"]["last"] < b["key_range"]["first"] for a, b in zip(history, history[1:]))
    assert manifest.tables["HO_SO"]["watermark"]["column"] == "NGAY_CAP_NHAT"
    assert manifest.tables["HO_SO"]["watermark"]["max"] is not None

    # The planted attachment defects are recorded, not fatal.
    references = manifest.attachments["references"]
    assert {str(m["key"]["ID_TEP"]) for m in references["missing"]} == set(site.truth["attachments"]["missing_on_disk"])
    assert {str(m["key"]["ID_TEP"]) for m in references["md5_mismatch"]} == set(
        site.truth["attachments"]["md5_mismatch"]
    )
    assert manifest.attachments["files"] == len(folder_files(site.attachments))

    # No unencrypted data on disk: only ciphertext parts, the manifest and its signature.
    backup_files = {p.relative_to(result.backup_dir).as_posix() for p in result.backup_dir.rglob("*") if p.is_file()}
    assert backup_files == {"manifest.json", "manifest.json.sig"} | {
        p["path"] for t in manifest.tables.values() for p in t["parts"]
    } | {p["path"] for p in manifest.attachments["parts"]} | {p["path"] for p in manifest.objects["parts"]}
    for path in result.backup_dir.rglob("*.age"):
        assert path.read_bytes().startswith(b"age-encryption.org/v1\n")

    report = verify_backup(result.backup_dir, public_key_b64=keys.signing.public_key_b64, identity=keys.identity)
    assert report.ok, report.problems
    assert report.rows_checked == sum(t["rows"] for t in truth_tables.values())

    restore = restore_backup(
        result.backup_dir,
        keys.identity,
        scratch,
        tmp_path / "restored",
        public_key_b64=keys.signing.public_key_b64,
        live=site.legacy,
        live_attachments=site.attachments,
    )
    assert restore.ok, restore.problems
    assert all(t["matches_manifest"] and t["matches_live"] for t in restore.tables.values())
    # Identical rows (value and Python type), duplicates of the keyless table included.
    assert restored_rows(scratch, manifest.tables) == source_rows(site.legacy)
    assert folder_files(tmp_path / "restored") == folder_files(site.attachments)
    assert live_fingerprints(site.legacy, site.attachments) == manifest.fingerprints()


def test_demo_site_round_trip_sqlite(tmp_path: Path, sqlite_url) -> None:
    scratch = sa.create_engine(sqlite_url("scratch"))
    assert_round_trip(tmp_path, sqlite_url("legacy"), scratch)


@pytest.mark.mariadb
def test_demo_site_round_trip_mariadb_over_odbc(tmp_path: Path, mariadb_database, sqlite_url) -> None:
    scratch = sa.create_engine(sqlite_url("scratch"))
    assert_round_trip(tmp_path, mariadb_database(), scratch)


@pytest.mark.postgres
def test_demo_site_restores_into_postgresql(tmp_path: Path, sqlite_url, pg_url: str) -> None:
    scratch = sa.create_engine(pg_url)
    try:
        assert_round_trip(tmp_path, sqlite_url("legacy"), scratch)
    finally:
        scratch.dispose()


def test_restore_refuses_a_non_empty_scratch_database(tmp_path: Path, sqlite_url) -> None:
    site = make_demo_site(tmp_path, sqlite_url("legacy"))
    keys = make_keys(tmp_path)
    result = run_backup(site, tmp_path / "backups", keys)
    scratch = sa.create_engine(sqlite_url("scratch"))
    first = restore_backup(result.backup_dir, keys.identity, scratch, tmp_path / "r1")
    assert first.ok
    from ts24_migrate.core.errors import UsageError

    with pytest.raises(UsageError, match="already has table"):
        restore_backup(result.backup_dir, keys.identity, scratch, tmp_path / "r2")


def test_live_source_that_changed_is_reported(tmp_path: Path, sqlite_url) -> None:
    url = sqlite_url("legacy")
    site = make_demo_site(tmp_path, url)
    keys = make_keys(tmp_path)
    result = run_backup(site, tmp_path / "backups", keys)
    writable = sa.create_engine(url)
    with writable.begin() as conn:
        conn.execute(
            sa.text(
                'UPDATE "HO_SO" SET "GHI_CHU" = \'changed\' WHERE "ID_HO_SO" = (SELECT MIN("ID_HO_SO") FROM "HO_SO")'
            )
        )
    writable.dispose()
    report = restore_backup(
        result.backup_dir,
        keys.identity,
        sa.create_engine(sqlite_url("scratch")),
        tmp_path / "restored",
        live=site.legacy,
        live_attachments=site.attachments,
    )
    assert report.tables["HO_SO"]["matches_manifest"] is True
    assert report.tables["HO_SO"]["matches_live"] is False
    assert report.tables["DM_DONVI"]["matches_live"] is True
    assert report.problems == ["HO_SO: the live source differs from the backup (it changed since)"]


# -- property: any rows, any declared types --------------------------------------------------

_TEXT = st.text(max_size=30)  # includes NUL and any non-surrogate code point
_SQLITE_INT = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_DATETIME = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1))
_ANY = st.one_of(
    st.none(), _SQLITE_INT, _TEXT, st.binary(max_size=30), st.floats(allow_nan=False)
)  # SQLite stores NaN as NULL
_ROW = st.tuples(
    st.one_of(st.none(), _TEXT),
    st.one_of(st.none(), st.binary(max_size=40)),
    st.one_of(st.none(), st.floats(allow_nan=False)),
    st.one_of(st.none(), _DATETIME),
    st.one_of(
        st.none(), st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False, allow_infinity=False)
    ),
    _ANY,
    st.one_of(st.none(), _SQLITE_INT, _TEXT),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_ROW, max_size=25), keyed=st.booleans())
def test_round_trip_of_generated_rows(tmp_path_factory, rows, keyed) -> None:
    folder = tmp_path_factory.mktemp("prop")
    url = f"sqlite:///{folder / 'legacy.sqlite'}"
    writable = sa.create_engine(url)
    key = '"ID" INTEGER PRIMARY KEY, ' if keyed else ""
    with writable.begin() as conn:
        # DATETIME and NUMERIC are read through SQLAlchemy's converters, ANYTHING has no declared
        # type, and NUMBER is declared INTEGER but also gets text (SQLite allows it).
        conn.exec_driver_sql(
            f'CREATE TABLE "T" ({key}"TXT" NVARCHAR(50), "BLB" BLOB, "FLT" FLOAT, '
            f'"WHEN" DATETIME, "AMOUNT" NUMERIC(12, 2), "ANYTHING", "NUMBER" INTEGER)'
        )
        for i, row in enumerate(rows):
            values = list(row)
            values[3] = values[3].isoformat(sep=" ", timespec="microseconds") if values[3] else None
            values[4] = str(values[4]) if values[4] is not None else None
            marks = ", ".join("?" * (len(values) + keyed))
            conn.exec_driver_sql(f'INSERT INTO "T" VALUES ({marks})', tuple(([i] if keyed else []) + values))
    writable.dispose()
    legacy = legacy_engine(Secret(url))
    keys = make_keys(folder)
    result = backup_site(
        legacy,
        None,
        folder / "backups",
        site_id="prop",
        run_id=str(uuid.uuid4()),
        recipients=[keys.recipient],
        signing_key=keys.signing,
        chunk_rows=7,
    )
    assert result.manifest.tables["T"]["rows"] == len(rows)
    scratch = sa.create_engine(f"sqlite:///{folder / 'scratch.sqlite'}")
    report = restore_backup(result.backup_dir, keys.identity, scratch, None, live=legacy)
    assert report.ok, report.problems
    assert restored_rows(scratch, result.manifest.tables) == source_rows(legacy)
    scratch.dispose()
    legacy.dispose()


def test_manifest_is_canonical_and_names_its_parts(tmp_path: Path, sqlite_url) -> None:
    site = make_demo_site(tmp_path, sqlite_url("legacy"))
    result = run_backup(site, tmp_path / "backups", make_keys(tmp_path))
    raw = (result.backup_dir / MANIFEST_NAME).read_bytes()
    data = json.loads(raw)
    assert raw == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    assert read_manifest(result.backup_dir).fingerprint == result.fingerprint
    assert data["kind"] == "full" and data["parent"] is None
    part = data["tables"]["HO_SO"]["parts"][0]
    assert set(part) >= {
        "path",
        "rows",
        "key_range",
        "schema",
        "fingerprint",
        "plaintext_sha256",
        "ciphertext_sha256",
        "plaintext_bytes",
        "ciphertext_bytes",
    }
    assert part["schema"] in data["tables"]["HO_SO"]["schemas"]
    # File names are legacy data: the clear-text manifest names only referenced-but-missing ones.
    assert "position" not in json.dumps(data["attachments"]["parts"])
    assert ATTACHMENTS_KEY in read_manifest(result.backup_dir).fingerprints()
    assert os.stat(result.backup_dir).st_mode & 0o077 == 0


@pytest.mark.parametrize("into", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_rows_whose_key_is_null_restore_too(tmp_path: Path, into: str, request) -> None:
    """SQLite lets a key column hold NULL, several times: the backup keeps such rows, the restore too."""
    legacy = legacy_engine(
        Secret(
            sqlite_legacy(
                tmp_path / "legacy.sqlite",
                'CREATE TABLE "T" ("CODE" VARCHAR(10) PRIMARY KEY, "NAME" TEXT)',
                """INSERT INTO "T" VALUES (NULL, 'first'), ('b', 'bee'), (NULL, 'second'), ('a', 'ay')""",
            )
        )
    )
    keys = make_keys(tmp_path)
    result = backup_site(
        legacy,
        None,
        tmp_path / "backups",
        site_id="nulls",
        run_id=str(uuid.uuid4()),
        recipients=[keys.recipient],
        signing_key=keys.signing,
        chunk_rows=2,
    )
    scratch_url = (
        f"sqlite:///{tmp_path / 'scratch.sqlite'}" if into == "sqlite" else request.getfixturevalue("pg_database")()
    )
    scratch = sa.create_engine(scratch_url)
    report = restore_backup(result.backup_dir, keys.identity, scratch, None, live=legacy)
    assert report.ok, report.problems
    assert restored_rows(scratch, result.manifest.tables) == source_rows(legacy)
    scratch.dispose()
    legacy.dispose()
