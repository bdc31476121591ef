"""The purge's parts on their own: the folder walk that never follows a link, the scope rules, the
statements per dialect, signed documents, the journal, the residue scan."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql
from sqlalchemy.dialects.mysql import pyodbc as mysql

from extract.attachments import attachment_fingerprint
from purge.approvals import ListedApprover, approval_document, check_approvals
from purge.documents import read_document, write_document
from purge.execute import destroy, shred_folder
from purge.journal import PurgeJournal
from purge.plan import LiveScope
from purge.residue import keyed_hash, scan_paths
from purge.scope import folder_fingerprint, open_directory, open_parent, relative_parts, scope_problems, walk_folder
from purge.statements import (
    DATABASE_WRITE_PRIVILEGES,
    DropDatabase,
    KillConnection,
    RevokeWrites,
    SetReadOnly,
    SetSingleUser,
    UseDatabase,
)
from purge.write_stop import check_writes_stopped, stop_writes
from ts24_migrate.core.errors import GateRefused
from ts24_migrate.core.signing import SigningKey, canonical_json, checked_document, document_hash, signed_document


def _folder(root: Path) -> Path:
    files = root / "files"
    (files / "2020" / "06").mkdir(parents=True)
    (files / "2020" / "06" / "a.pdf").write_bytes(b"%PDF a")
    (files / "b.xml").write_bytes(b"<b/>")
    (root / "outside").mkdir()
    (root / "outside" / "keep.txt").write_bytes(b"keep me")
    os.symlink("../outside/keep.txt", files / "link-file")
    os.symlink(str(root / "outside"), files / "2020" / "link-dir")
    os.mkfifo(files / "pipe")
    return files


def test_the_walk_lists_links_as_links_and_never_follows_them(tmp_path):
    files = _folder(tmp_path)
    entries = {e.path: e for e in walk_folder(files)}
    assert set(entries) == {"2020", "2020/06", "2020/06/a.pdf", "2020/link-dir", "b.xml", "link-file", "pipe"}
    assert entries["2020/link-dir"].kind == "link" and entries["link-file"].link_target == "../outside/keep.txt"
    assert entries["pipe"].kind == "special"  # listed, never opened (opening a FIFO would block)
    assert entries["b.xml"].size == 4 and entries["b.xml"].sha256 is not None
    # The folder fingerprint is the backup's: regular files only.
    assert folder_fingerprint(list(entries.values())) == attachment_fingerprint(files).fingerprint.hexdigest()


def test_destroy_removes_exactly_the_listed_entries_and_never_a_links_target(tmp_path):
    files = _folder(tmp_path)
    scope = LiveScope("mariadb", "unused", attachments_root=str(files), attachments=walk_folder(files))
    figures = destroy(scope, PurgeJournal(tmp_path / "journal.jsonl"), drop_database=lambda: True)
    assert list(files.iterdir()) == []
    assert (tmp_path / "outside" / "keep.txt").read_bytes() == b"keep me"
    assert (
        figures.files_overwritten,
        figures.bytes_overwritten,
        figures.links_removed,
        figures.special_removed,
        figures.directories_removed,
        figures.database_dropped,
    ) == (2, 10, 2, 1, 2, True)


def test_a_folder_swapped_for_a_link_after_the_plan_is_refused_not_followed(tmp_path):
    files = _folder(tmp_path)
    scope = LiveScope("mariadb", "unused", attachments_root=str(files), attachments=walk_folder(files))
    # Between plan and execution someone replaces 2020/06 by a link to the outside folder.
    (files / "2020" / "06" / "a.pdf").unlink()
    (files / "2020" / "06").rmdir()
    os.symlink(str(tmp_path / "outside"), files / "2020" / "06")
    (tmp_path / "outside" / "a.pdf").write_bytes(b"%PDF a")
    with pytest.raises(GateRefused, match="replaced by a link"):
        destroy(scope, PurgeJournal(tmp_path / "journal.jsonl"), drop_database=lambda: True)
    assert (tmp_path / "outside" / "a.pdf").read_bytes() == b"%PDF a"
    assert (tmp_path / "outside" / "keep.txt").read_bytes() == b"keep me"


def test_a_file_replaced_after_the_plan_is_left_alone(tmp_path):
    files = _folder(tmp_path)
    scope = LiveScope("mariadb", "unused", attachments_root=str(files), attachments=walk_folder(files))
    (files / "b.xml").rename(tmp_path / "outside" / "b.xml")  # moved out of the folder (its inode lives on)
    (files / "b.xml").write_bytes(b"<b/>")  # same content, another file (another inode)
    with pytest.raises(GateRefused, match="another file took its place"):
        destroy(scope, PurgeJournal(tmp_path / "journal.jsonl"), drop_database=lambda: True)
    assert (files / "b.xml").read_bytes() == b"<b/>" and (tmp_path / "outside" / "b.xml").read_bytes() == b"<b/>"


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "a//b", "./a", ""])
def test_a_plan_path_that_could_leave_the_folder_is_refused(path):
    with pytest.raises(GateRefused):
        relative_parts(path)


def test_open_parent_never_follows_a_link_on_the_way(tmp_path):
    files = _folder(tmp_path)
    root = open_directory(files)
    try:
        with pytest.raises(OSError):
            open_parent(root, "2020/link-dir/keep.txt")
    finally:
        os.close(root)


def test_scope_rules_refuse_overlaps_with_protected_folders_and_other_sites(tmp_path):
    site = tmp_path / "srv" / "hn-01"
    backups = site / "backups"
    assert scope_problems(
        attachments=site, protected={"backup folder": backups, "work folder": tmp_path / "w"}, other_sites={}
    )[0].startswith("the attachment folder")
    assert (
        "overlaps site hn-02" in scope_problems(attachments=site, protected={}, other_sites={"hn-02": site / "sub"})[0]
    )
    assert (
        "inside the attachment folder"
        in scope_problems(attachments=site, protected={}, other_sites={}, legacy_file=site / "ts24.sqlite")[0]
    )
    assert (
        scope_problems(
            attachments=tmp_path / "srv" / "files",
            protected={"backup folder": backups},
            other_sites={"hn-02": tmp_path / "srv" / "files-2"},
        )
        == []
    )
    assert "file-system root" in scope_problems(attachments=Path("/"), protected={}, other_sites={})[0]


def test_statements_quote_names_through_each_dialect():
    def sql(element, dialect) -> str:
        return str(element.compile(dialect=dialect))

    assert sql(DropDatabase("ts24`x"), mysql.dialect()) == "DROP DATABASE `ts24``x`"
    assert sql(DropDatabase("TS24 HN]"), mssql.dialect()) == "DROP DATABASE [TS24 HN]]]"
    assert (
        sql(SetSingleUser("TS24"), mssql.dialect()) == "ALTER DATABASE [TS24] SET SINGLE_USER WITH ROLLBACK IMMEDIATE"
    )
    assert sql(SetReadOnly("TS24"), mssql.dialect()) == "ALTER DATABASE [TS24] SET READ_ONLY WITH ROLLBACK IMMEDIATE"
    assert sql(UseDatabase("master"), mssql.dialect()) == "USE [master]"
    revoke = sql(RevokeWrites("ts24", "app'x", "%", ("INSERT", "UPDATE"), table="HO_SO"), mysql.dialect())
    assert revoke == "REVOKE INSERT, UPDATE ON `ts24`.`HO_SO` FROM 'app''x'@'%'"
    assert sql(RevokeWrites("ts24", "app", "%", DATABASE_WRITE_PRIVILEGES), mysql.dialect()).startswith(
        "REVOKE INSERT, UPDATE, DELETE, CREATE, DROP"
    )
    assert sql(KillConnection(42), mysql.dialect()) == "KILL CONNECTION 42"
    with pytest.raises(ValueError):
        RevokeWrites("ts24", "app", "%", ("SELECT",))  # only write privileges are ever revoked
    # MariaDB reads a backslash in a quoted string as an escape: doubled, or the name would end the string.
    assert sql(RevokeWrites("ts24", "ab\\", "h", ("INSERT",)), mysql.dialect()) == (
        "REVOKE INSERT ON `ts24`.* FROM 'ab\\\\'@'h'"
    )


@pytest.mark.mariadb
def test_a_revoke_reaches_an_account_whose_name_holds_quotes_and_a_backslash(mariadb_database, _mariadb_admin):
    """The account names come from the server's own grant list: any name MariaDB allows must be revoked
    exactly, never break the statement or reach another account."""
    database = mariadb_database().rsplit("/", 1)[1].split("?", 1)[0]
    # The names as MariaDB literals, written out by hand (CREATE USER takes no bound parameters).
    odd, plain = "ts24 o'dd\\", "ts24_plain"
    accounts = {odd: "'ts24 o''dd\\\\'@'localhost'", plain: "'ts24_plain'@'localhost'"}
    with _mariadb_admin.connect() as c:
        for account in accounts.values():
            c.execute(sa.text(f"CREATE USER {account}"))
            c.execute(sa.text(f"GRANT INSERT, SELECT ON `{database}`.* TO {account}"))
        try:
            c.execute(RevokeWrites(database, odd, "localhost", ("INSERT",)))
            grants = {
                user: " ".join(r[0] for r in c.execute(sa.text(f"SHOW GRANTS FOR {account}")))
                for user, account in accounts.items()
            }
        finally:
            for account in accounts.values():
                c.execute(sa.text(f"DROP USER IF EXISTS {account}"))
    assert "INSERT" not in grants[odd] and "SELECT" in grants[odd], grants
    assert "INSERT" in grants[plain], grants


def test_the_sqlite_write_stop_is_the_file_mode(tmp_path):
    database = tmp_path / "ts24.sqlite"
    sa.create_engine(f"sqlite:///{database}").connect().close()
    database.chmod(0o664)
    assert not check_writes_stopped(None, kind="sqlite", database=str(database), files=[database], accounts=[]).holds
    done = stop_writes(None, kind="sqlite", database=str(database), files=[database], accounts=[])
    assert done["files"][0]["mode_before"] == "0664" and stat.S_IMODE(database.stat().st_mode) == 0o444
    assert check_writes_stopped(None, kind="sqlite", database=str(database), files=[database], accounts=[]).holds


def test_signed_documents_refuse_any_edit_and_name_the_file(tmp_path):
    key = SigningKey.generate()
    document = signed_document({"format": "x", "rows": 12}, [("pipeline", key)])
    path = tmp_path / "doc.json"
    digest = write_document(path, document)
    assert digest == document_hash({"format": "x", "rows": 12})
    with pytest.raises(Exception, match="exists"):
        write_document(path, document)  # never overwritten
    body, checked = checked_document(read_document(path, what="plan"), {"pipeline": key.public_key_b64}, what="plan")
    assert body["rows"] == 12 and checked == digest
    path.unlink()
    path.write_bytes(canonical_json(document).replace(b'"rows":12', b'"rows":13'))
    with pytest.raises(GateRefused, match="signature does not verify"):
        checked_document(read_document(path, what="plan"), {"pipeline": key.public_key_b64}, what="plan")
    path.write_bytes(json.dumps(document, indent=1).encode())
    with pytest.raises(GateRefused, match="canonical"):
        read_document(path, what="plan")
    other = SigningKey.generate()
    with pytest.raises(GateRefused, match="not the trusted key"):
        checked_document(document, {"pipeline": other.public_key_b64}, what="plan")


def test_approvals_count_listed_distinct_approvers_other_than_the_author():
    author, b, c, stranger = (SigningKey.generate() for _ in range(4))
    pipeline = SigningKey.generate()
    body = {
        "site": {"id": "hn-01"},
        "created_at": "2025-08-01T00:00:00Z",
        "author": {"name": "A", "key_id": author.key_id, "public_key": author.public_key_b64},
    }
    plan_hash = document_hash(body)
    listed = [
        ListedApprover("B", None, b.public_key_b64),
        ListedApprover("C", None, c.public_key_b64),
        ListedApprover("A", None, author.public_key_b64),
    ]

    def approve(key, **options):
        return approval_document(
            body,
            plan_hash,
            key=key,
            name="x",
            role=None,
            valid_for=options.pop("valid_for", dt.timedelta(hours=1)),
            **options,
        )

    documents = [
        ("b", approve(b)),
        ("b-again", approve(b)),
        ("c", approve(c)),
        ("author", approve(author)),
        ("stranger", approve(stranger)),
        ("old", approve(c, now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=3))),
    ]
    other_plan = approval_document(
        {**body, "created_at": "2025-08-02T00:00:00Z"},
        "0" * 64,
        key=b,
        name="B",
        role=None,
        valid_for=dt.timedelta(hours=1),
    )
    documents.append(("other", other_plan))
    check = check_approvals(
        documents, plan_hash=plan_hash, plan_body=body, approvers=listed, pipeline_key=pipeline.public_key_b64
    )
    assert [v["approver"] for v in check.valid] == ["B", "C"]
    problems = " | ".join(check.problems)
    for expected in (
        "b-again: a second approval",
        "author: signed by the plan's own author",
        "stranger: signed by key",
        "old: expired",
        "other: approves another plan",
    ):
        assert expected in problems


def test_the_journal_drops_a_line_cut_by_a_kill(tmp_path):
    journal = PurgeJournal(tmp_path / "journal.jsonl")
    journal.record("begun", step="a", temporary=".t")
    with open(journal.path, "ab") as handle:
        handle.write(b'{"event":"done","st')  # a kill in the middle of a write
    again = PurgeJournal(journal.path)
    assert again.state("a") == "begun"
    again.record("done", step="a", kind="file", bytes=3)
    assert PurgeJournal(journal.path).state("a") == "done"
    assert all(json.loads(line) for line in journal.path.read_bytes().splitlines())


def test_the_residue_scan_finds_sampled_values_as_utf8_and_utf16_and_nothing_else(tmp_path):
    salt = os.urandom(32)
    values = [b"0123456789", b"079123456789"]
    sample = {"items": [{"hash": keyed_hash(v, salt), "bytes": len(v)} for v in values]}
    (tmp_path / "a").mkdir()
    # Stored next to other digits (a neighbouring numeric column), as ASCII and as UTF-16LE.
    (tmp_path / "a" / "page.bin").write_bytes(b"\x00\x07" + b"xx5550123456789" + b"\x00" * 5000)
    (tmp_path / "a" / "log.bin").write_bytes("…Số CCCD 079123456789…".encode("utf-16-le"))
    (tmp_path / "a" / "clean.bin").write_bytes(b"0123456788 079123456780")
    report = scan_paths([{"what": "folder", "path": str(tmp_path / "a"), "recursive": True}], sample, salt)
    found = {Path(hit["file"]).name: hit["values"] for hit in report.hits}
    assert found == {"page.bin": 1, "log.bin": 1}
    assert report.files == 3 and report.to_dict()["values_found"] == 2


def test_the_restore_drill_scratch_is_shredded(tmp_path):
    scratch = tmp_path / "drill"
    (scratch / "files" / "x").mkdir(parents=True)
    (scratch / "drill.sqlite").write_bytes(b"decrypted legacy rows")
    (scratch / "files" / "x" / "a.pdf").write_bytes(b"decrypted file")
    assert shred_folder(scratch) == 2 and not scratch.exists()
