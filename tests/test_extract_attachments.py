"""The attachment folder: every file, in bounded parts, resumable at any part, and its references."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from backups.verify import FileStream, PartRef
from extract.attachments import attachment_fingerprint, check_references, iter_attachment_parts, legacy_relative_path
from extract.discovery import discover_tables
from ts24_migrate.core.db import legacy_engine
from ts24_migrate.core.legacy.schema import HO_SO_TEP
from ts24_migrate.core.rows.fingerprint import TableFingerprint
from ts24_migrate.core.secrets import Secret


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    (root / "2020" / "HS1").mkdir(parents=True)
    (root / "2020" / "HS1" / "tờ khai.xml").write_bytes("<x>Hà Nội</x>".encode())
    (root / "2020" / "empty.pdf").write_bytes(b"")
    (root / "big.bin").write_bytes(os.urandom(10_000))  # larger than a part: spans several
    (root / "a.txt").write_bytes(b"a" * 700)
    (root / os.fsdecode(b"latin1-\xe9.pdf")).write_bytes(b"\x00\x01")  # a name that is not UTF-8
    (root / "link.pdf").symlink_to(root / "a.txt")
    return root


def _chunks(parts) -> list[tuple]:
    rows = []
    for part in parts:
        table = pq.read_table(io.BytesIO(part.parquet))
        rows += list(zip(*[table.column(n).to_pylist() for n in ("path", "offset", "data", "size", "sha256")]))
    return rows


def test_every_regular_file_in_bounded_parts(folder: Path) -> None:
    skipped: list[bytes] = []
    parts = list(iter_attachment_parts(folder, part_bytes=3000, chunk_bytes=1024, skipped=skipped))
    assert skipped == [b"link.pdf"]
    assert len(parts) >= 4
    assert all(len(row[2]) <= 1024 for row in _chunks(parts))
    assert all(p.content_bytes <= 3000 + 1024 for p in parts)
    rebuilt: dict[bytes, bytearray] = {}

    def sink(path: bytes, offset: int, data: bytes) -> None:
        buffer = rebuilt.setdefault(path, bytearray())
        assert offset == len(buffer)
        buffer += data

    stream = FileStream(sink)
    for index, part in enumerate(parts, start=1):
        ref = PartRef(
            f"attachments part {index}", None, {"rows": part.rows, "fingerprint": part.fingerprint.hexdigest()}
        )
        stream.feed(ref, part.parquet)
    stream.finish()
    on_disk = {
        os.fsencode(p.relative_to(folder).as_posix()): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink()
    }
    assert {k: bytes(v) for k, v in rebuilt.items()} == on_disk
    total = TableFingerprint()
    for part in parts:
        total.merge(part.fingerprint)
    live = attachment_fingerprint(folder)
    assert total == live.fingerprint and live.files == 5 and live.bytes == sum(map(len, on_disk.values()))
    last_rows = {row[0]: row for row in _chunks(parts) if row[3] is not None}
    assert last_rows[b"a.txt"][3:] == (700, hashlib.sha256(b"a" * 700).hexdigest())
    many_small = list(iter_attachment_parts(folder, part_bytes=10**9, part_rows=2))
    assert [p.rows for p in many_small][:-1] == [2] * (len(many_small) - 1)


def test_resuming_after_any_part_gives_the_same_chunks(folder: Path) -> None:
    whole = list(iter_attachment_parts(folder, part_bytes=3000, chunk_bytes=1024))
    expected = _chunks(whole)
    assert any(not p.position.file_done for p in whole)  # some part ends inside big.bin
    for cut in range(1, len(whole)):
        resumed = list(iter_attachment_parts(folder, part_bytes=3000, chunk_bytes=1024, resume=whole[cut - 1].position))
        assert _chunks(whole[:cut] + resumed) == expected, cut


def test_a_changed_file_is_noticed_on_the_next_fingerprint(folder: Path) -> None:
    before = attachment_fingerprint(folder).fingerprint
    (folder / "a.txt").write_bytes(b"a" * 699 + b"b")
    assert attachment_fingerprint(folder).fingerprint != before


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2020\\HS1\\to_khai.xml", b"2020/HS1/to_khai.xml"),
        ("./a//b.pdf", b"a/b.pdf"),
        ("  x.pdf ", b"x.pdf"),
        ("../etc/passwd", None),
        ("a/../../b", None),
        ("C:\\TS24\\files\\x.pdf", None),
        ("", None),
        ("/srv/ts24/x.pdf", b"srv/ts24/x.pdf"),
    ],
)
def test_legacy_paths_stay_inside_the_folder(text: str, expected: bytes | None) -> None:
    assert legacy_relative_path(text) == expected


def test_references_report_missing_files_and_wrong_checksums(folder: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'legacy.sqlite'}"
    writable = sa.create_engine(url)
    HO_SO_TEP.create(writable)
    a_md5 = hashlib.md5(b"a" * 700).hexdigest()
    rows = [
        (1, "a.txt", a_md5.upper() + " ", 700),
        (2, "2020\\HS1\\tờ khai.xml", "0" * 32, None),
        (3, "gone.pdf", a_md5, 1),
        (4, "a.txt", a_md5, 5),
        (5, "../../etc/passwd", None, None),
        (6, None, None, None),
        (7, "", None, None),
    ]
    with writable.begin() as conn:
        conn.execute(
            HO_SO_TEP.insert(),
            [{"ID_TEP": i, "DUONG_DAN": p, "MD5": m, "KICH_THUOC": k, "NOI_DUNG": b"\x00" * 10} for i, p, m, k in rows],
        )
    with legacy_engine(Secret(url)).connect() as conn:
        check = check_references(conn, discover_tables(conn), folder, chunk_rows=2)
    assert (check.referenced, check.found) == (5, 3)
    assert [m["key"] for m in check.missing] == [{"ID_TEP": 3}]
    assert [(m["key"], m["expected"]) for m in check.md5_mismatch] == [({"ID_TEP": 2}, "0" * 32)]
    assert [(m["key"], m["expected"], m["actual"]) for m in check.size_mismatch] == [({"ID_TEP": 4}, 5, 700)]
    assert [m["path"] for m in check.outside_folder] == ["../../etc/passwd"]


def test_no_file_table_is_a_note_not_an_error(tmp_path: Path, folder: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE X (A INTEGER)")
    with legacy_engine(Secret(url)).connect() as conn:
        check = check_references(conn, discover_tables(conn), folder)
    assert check.referenced == 0 and check.note.startswith("no HO_SO_TEP table with a DUONG_DAN column")
