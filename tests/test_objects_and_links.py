"""Objects and folder entries the backup must account for without treating them as data.

- Symbolic links in the attachment folder are reported with their target text and never
  followed: a link to a file outside the folder, a link to a FIFO (opening it would block
  the test: proof that nothing opens it) and a linked folder.
- Views and triggers restored from a SQLite backup into SQLite are recreated and match their
  fingerprints; into PostgreSQL they are listed as not recreated; a live definition changed
  since the backup is a restore problem.
- Text holding NUL is counted where the backup kept it as framed binary, and restored exactly.
- SQL Server: the discovery queries compile for the dialect (no SQL Server here to run them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql
from test_backup_support import make_demo_site, make_keys

from backups.backup import backup_site
from backups.restore import restore_backup
from backups.verify import decrypt_part, manifest_parts, read_ciphertext, verify_backup
from extract.attachments import check_references
from extract.discovery import discover_tables
from extract.findings_report import attachments_section
from extract.objects import (
    discover_objects,
    mssql_module,
    mssql_queries,
    mssql_sequence_definition,
    objects_parquet,
    read_objects_part,
)
from ts24_migrate.core.db import legacy_engine, store_engine
from ts24_migrate.core.keys import load_identity
from ts24_migrate.core.labels import finding_line
from ts24_migrate.core.legacy.schema import HO_SO_TEP
from ts24_migrate.core.secrets import Secret

SECRET = b"outside-the-folder: never read, never backed up"


@pytest.fixture
def linked_folder(tmp_path: Path) -> tuple[Path, Path]:
    outside = tmp_path / "outside"
    (outside / "private").mkdir(parents=True)
    (outside / "secret.pdf").write_bytes(SECRET)
    (outside / "private" / "inner.pdf").write_bytes(SECRET)
    os.mkfifo(outside / "pipe")
    root = tmp_path / "files"
    (root / "2020").mkdir(parents=True)
    (root / "2020" / "real.pdf").write_bytes(b"%PDF real")
    (root / "2020" / "to-secret.pdf").symlink_to(outside / "secret.pdf")
    (root / "to-pipe.pdf").symlink_to(outside / "pipe")
    (root / "linked-folder").symlink_to(outside / "private", target_is_directory=True)
    return root, outside


@pytest.mark.timeout(120)  # a followed link to the FIFO would block here until the timeout
def test_links_are_reported_with_their_target_and_never_followed(linked_folder, tmp_path):
    root, outside = linked_folder
    url = f"sqlite:///{tmp_path / 'legacy.sqlite'}"
    writable = sa.create_engine(url)
    HO_SO_TEP.create(writable)
    with writable.begin() as conn:  # rows that point at the links: they must not be read through them
        conn.execute(
            HO_SO_TEP.insert(),
            [
                {"ID_TEP": 1, "DUONG_DAN": "2020/real.pdf", "MD5": None, "KICH_THUOC": 9},
                {"ID_TEP": 2, "DUONG_DAN": "2020\\to-secret.pdf", "MD5": "0" * 32, "KICH_THUOC": 1},
                {"ID_TEP": 3, "DUONG_DAN": "linked-folder/inner.pdf", "MD5": "0" * 32, "KICH_THUOC": 1},
                {"ID_TEP": 4, "DUONG_DAN": "to-pipe.pdf", "MD5": "0" * 32, "KICH_THUOC": 1},
            ],
        )
    writable.dispose()
    legacy = legacy_engine(Secret(url))
    with legacy.connect() as conn:
        check = check_references(conn, discover_tables(conn), root).to_json()
    assert check["links"] == [
        {"path": "2020/to-secret.pdf", "target": str(outside / "secret.pdf")},
        {"path": "linked-folder", "target": str(outside / "private")},
        {"path": "to-pipe.pdf", "target": str(outside / "pipe")},
    ]
    assert {(e["key"]["ID_TEP"], e["target"]) for e in check["linked"]} == {
        (2, str(outside / "secret.pdf")),
        (3, str(outside / "private")),
        (4, str(outside / "pipe")),
    }
    assert check["found"] == 1 and check["md5_mismatch"] == [] and check["missing"] == []
    assert check["files_in_folder"] == 1 and check["unreferenced"] == []

    keys = make_keys(tmp_path)
    result = backup_site(
        legacy,
        root,
        tmp_path / "backups",
        site_id="links",
        run_id="run-1",
        recipients=[keys.recipient],
        signing_key=keys.signing,
    )
    manifest = result.manifest
    assert manifest.attachments["files"] == 1
    assert manifest.attachments["skipped"] == [
        {"path": "2020/to-secret.pdf", "kind": "symlink", "target": str(outside / "secret.pdf")},
        {"path": "linked-folder", "kind": "symlink", "target": str(outside / "private")},
        {"path": "to-pipe.pdf", "kind": "symlink", "target": str(outside / "pipe")},
    ]
    assert manifest.attachments["references"]["links"] == check["links"]
    assert any(finding_line("links", 3) in w for w in manifest.data["warnings"])
    # Nothing from outside the folder is in any part, decrypted.
    identity = load_identity(keys.identity)
    for ref in manifest_parts(manifest):
        assert SECRET not in decrypt_part(read_ciphertext(manifest.path, ref), ref, identity)
    assert verify_backup(manifest.path, public_key_b64=keys.signing.public_key_b64, identity=keys.identity).ok
    # The auditor's page names each link with its target.
    html = attachments_section(manifest.attachments["references"])
    assert "linked-folder -&gt; " + str(outside / "private") in html
    legacy.dispose()


def test_sqlite_views_and_triggers_are_recreated_and_a_changed_live_view_is_a_problem(tmp_path):
    legacy_url = f"sqlite:///{tmp_path / 'legacy.sqlite'}"
    site = make_demo_site(tmp_path, legacy_url)
    keys = make_keys(tmp_path)
    result = backup_site(
        site.legacy,
        site.attachments,
        tmp_path / "backups",
        site_id="demo",
        run_id="run-1",
        recipients=[keys.recipient],
        signing_key=keys.signing,
    )
    into = store_engine(Secret(f"sqlite:///{tmp_path / 'scratch.sqlite'}"))
    report = restore_backup(
        result.backup_dir,
        keys.identity,
        into,
        tmp_path / "restored",
        public_key_b64=keys.signing.public_key_b64,
        live=site.legacy,
        live_attachments=site.attachments,
    )
    assert report.ok, report.problems
    assert {k: (o["recreated"], o["matches_manifest"], o["matches_live"]) for k, o in report.objects.items()} == {
        "view:V_HO_SO_DANG_XU_LY": (True, True, True),
        "trigger:TRG_HT_NHAT_KY_CHI_GHI_THEM": (True, True, True),
    }
    with into.connect() as conn:
        in_flight = conn.exec_driver_sql("SELECT COUNT(*) FROM V_HO_SO_DANG_XU_LY").scalar_one()
        assert in_flight == site.truth["in_flight_dossiers"]  # the view works over the restored rows
        assert "V_HO_SO_DANG_XU_LY" not in sa.inspect(conn).get_table_names()
    into.dispose()

    # The live view changes after the backup: the next restore says so (the purge gate's comparison).
    writable = sa.create_engine(legacy_url)
    with writable.begin() as conn:
        conn.exec_driver_sql("DROP VIEW V_HO_SO_DANG_XU_LY")
        conn.exec_driver_sql("CREATE VIEW V_HO_SO_DANG_XU_LY AS SELECT ID_HO_SO FROM HO_SO")
        conn.exec_driver_sql("CREATE VIEW V_MOI AS SELECT 1 AS X")
    writable.dispose()
    again = store_engine(Secret(f"sqlite:///{tmp_path / 'scratch2.sqlite'}"))
    report = restore_backup(
        result.backup_dir,
        keys.identity,
        again,
        tmp_path / "restored2",
        public_key_b64=keys.signing.public_key_b64,
        live=site.legacy,
    )
    again.dispose()
    assert report.problems == [
        "view:V_MOI: an object of the live source that is not in the backup",
        "view:V_HO_SO_DANG_XU_LY: the live definition differs from the backup (it changed since)",
    ]
    assert report.objects["view:V_HO_SO_DANG_XU_LY"]["matches_live"] is False


@pytest.mark.postgres
def test_objects_of_a_sqlite_backup_are_listed_not_recreated_in_postgresql(tmp_path, pg_url):
    site = make_demo_site(tmp_path, f"sqlite:///{tmp_path / 'legacy.sqlite'}")
    keys = make_keys(tmp_path)
    result = backup_site(
        site.legacy,
        site.attachments,
        tmp_path / "backups",
        site_id="demo",
        run_id="run-1",
        recipients=[keys.recipient],
        signing_key=keys.signing,
    )
    into = store_engine(Secret(pg_url))
    report = restore_backup(
        result.backup_dir, keys.identity, into, tmp_path / "restored", public_key_b64=keys.signing.public_key_b64
    )
    with into.connect() as conn:
        views = sa.inspect(conn).get_view_names()
    into.dispose()
    assert report.ok, report.problems
    assert views == []
    assert {o["recreated"] for o in report.objects.values()} == {False}
    assert all(
        o["note"].startswith("not recreated: the backup comes from sqlite, the scratch database is postgresql")
        for o in report.objects.values()
    )


def test_text_holding_nul_is_counted_where_it_was_kept_as_framed_binary(tmp_path):
    url = f"sqlite:///{tmp_path / 'nul.sqlite'}"
    writable = sa.create_engine(url)
    with writable.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE GHI_CHU (ID INTEGER PRIMARY KEY, NOI_DUNG VARCHAR(50), KHAC VARCHAR(5))")
        conn.execute(
            sa.text("INSERT INTO GHI_CHU VALUES (:i, :t, 'x')"),
            [{"i": i, "t": f"dòng {i}\x00cuối" if i in (2, 5, 8) else f"dòng {i}"} for i in range(1, 10)],
        )
    writable.dispose()
    legacy = legacy_engine(Secret(url))
    keys = make_keys(tmp_path)
    result = backup_site(
        legacy,
        None,
        tmp_path / "backups",
        site_id="nul",
        run_id="run-1",
        chunk_rows=4,
        recipients=[keys.recipient],
        signing_key=keys.signing,
    )
    table = result.manifest.tables["GHI_CHU"]
    assert table["nul_text"] == {"NOI_DUNG": 3}  # rows 2 (part 1), 5 and 8 (part 2); part 3 holds none
    assert [p.get("nul_text") for p in table["parts"]] == [{"NOI_DUNG": 1}, {"NOI_DUNG": 2}, None]
    assert result.table_figures()["GHI_CHU"]["nul_text"] == {"NOI_DUNG": 3}
    into = store_engine(Secret(f"sqlite:///{tmp_path / 'scratch.sqlite'}"))
    report = restore_backup(
        result.backup_dir, keys.identity, into, public_key_b64=keys.signing.public_key_b64, live=legacy
    )
    assert report.ok, report.problems
    into.dispose()
    legacy.dispose()


def test_objects_part_round_trips_any_definition_text():
    from extract.objects import SchemaObject

    objects = [
        SchemaObject("view", "V", None, None, "CREATE VIEW V AS SELECT 'Hà Nội' AS X"),
        SchemaObject("procedure", "P", "dbo", None, None),  # not readable: kept without a definition
        SchemaObject("trigger", "T", None, "HO_SO", "CREATE TRIGGER T ... \udcff"),
    ]
    assert read_objects_part(objects_parquet(objects)) == objects
    assert objects[1].fingerprint is None and objects[1].listing()["note"]


def test_sqlite_discovery_lists_views_and_triggers_but_not_tables(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE T (ID INTEGER PRIMARY KEY AUTOINCREMENT, X TEXT)")
        conn.exec_driver_sql("CREATE INDEX T_X ON T (X)")
        conn.exec_driver_sql("CREATE VIEW B_VIEW AS SELECT X FROM T")
        conn.exec_driver_sql("CREATE TRIGGER A_TRG AFTER INSERT ON T BEGIN SELECT 1; END")
    with engine.connect() as conn:
        found = discover_objects(conn)
        assert [t.name for t in discover_tables(conn)] == ["T"]
    assert [(o.kind, o.name, o.table) for o in found.objects] == [("view", "B_VIEW", None), ("trigger", "A_TRG", "T")]
    assert found.objects[0].definition == "CREATE VIEW B_VIEW AS SELECT X FROM T"
    engine.dispose()


def test_sql_server_discovery_compiles_for_the_dialect():
    compiled = {
        name: str(query.compile(dialect=mssql.dialect(), compile_kwargs={"literal_binds": True}))
        for name, query in mssql_queries().items()
    }
    modules = compiled["modules"]
    assert "FROM sys.objects JOIN sys.schemas ON sys.schemas.schema_id = sys.objects.schema_id" in modules
    assert "LEFT OUTER JOIN sys.sql_modules ON sys.sql_modules.object_id = sys.objects.object_id" in modules
    assert "LEFT OUTER JOIN sys.objects AS parent ON parent.object_id = sys.objects.parent_object_id" in modules
    assert "sys.objects.type IN ('FN', 'FS', 'FT', 'IF', 'P', 'PC', 'TF', 'TR', 'V')" in modules
    assert "sys.objects.is_ms_shipped = 0" in modules
    assert "FROM sys.triggers LEFT OUTER JOIN sys.sql_modules" in compiled["database_triggers"]
    assert "sys.triggers.parent_class = 0" in compiled["database_triggers"]
    assert "FROM sys.sequences JOIN sys.schemas" in compiled["sequences"]
    assert "JOIN sys.types ON sys.types.user_type_id = sys.sequences.user_type_id" in compiled["sequences"]
    # Rows as SQL Server returns them (type codes padded to CHAR(2)) become objects.
    trigger = mssql_module("dbo", "TRG_X", "TR", "HO_SO", "CREATE TRIGGER TRG_X ON HO_SO AFTER UPDATE AS ...")
    assert (trigger.kind, trigger.table, trigger.key) == ("trigger", "HO_SO", "trigger:dbo.TRG_X")
    assert mssql_module("dbo", "V_X", "V ", "ignored", "CREATE VIEW V_X AS SELECT 1 AS A").table is None
    assert mssql_module("dbo", "F_X", "IF", None, None).kind == "function"
    assert mssql_module("rpt", "P_X", "P ", None, None).fingerprint is None  # WITH ENCRYPTION: listed all the same
    assert mssql_sequence_definition("dbo", "SEQ", "bigint", 1, 1, 1, 10, False, True, 50) == (
        "CREATE SEQUENCE [dbo].[SEQ] AS bigint START WITH 1 INCREMENT BY 1 MINVALUE 1 MAXVALUE 10 NO CYCLE CACHE 50"
    )
