"""The site's attachment folder: every file in it, in bounded Parquet parts, and its fingerprint.

Every regular file under the folder is backed up, referenced by a legacy row
or not. Files are walked in a fixed order (names compared as bytes, component
by component) so that a killed backup can resume at the exact file and byte
where its last stored part ended. A part is a Parquet table of file *chunks*
(path, offset, data), at most `chunk_bytes` each, so memory is bounded by the
part size however large a file is; the row holding a file's last chunk also
carries its size, SHA-256 and MD5.

The folder's fingerprint is an ts24_migrate.core.rows.fingerprint.TableFingerprint over one
row per file: (relative path as bytes, size, SHA-256 hex). The purge gate
recomputes it from the live folder (`attachment_fingerprint`).

`check_references` compares the files that HO_SO_TEP rows point to
(DUONG_DAN, MD5, KICH_THUOC) with what is on disk, so a missing file or a
wrong checksum is reported with the row that refers to it.

Example::

    for part in iter_attachment_parts(Path("/srv/ts24/files")):
        store(part.parquet)      # part.files, part.content_bytes, part.position
"""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ts24_migrate.core.rows.fingerprint import TableFingerprint

from .discovery import TableInfo
from .json_values import json_value
from .reader import iter_table_rows

ATTACHMENTS_KEY = "@attachments"  # the attachment folder's entry beside table names
FILE_CHUNK_BYTES = 4 * 1024 * 1024
PART_BYTES = 32 * 1024 * 1024
PART_ROWS = 10_000
_READ_BLOCK = 1024 * 1024

PART_SCHEMA = pa.schema(
    [
        pa.field("path", pa.large_binary(), nullable=False),  # relative, '/'-separated, bytes as on disk
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("data", pa.large_binary(), nullable=False),
        pa.field("size", pa.int64()),  # the next three only on a file's last chunk
        pa.field("sha256", pa.string()),
        pa.field("md5", pa.string()),
    ]
)


def _walk_key(relpath: bytes) -> tuple[bytes, ...]:
    return tuple(relpath.split(b"/"))


def iter_attachment_files(root: Path, skipped: list[bytes] | None = None) -> Iterator[tuple[bytes, Path]]:
    """(relative path as bytes, absolute path) of every regular file, in walk order.

    Symbolic links and special files are not followed; their paths go to `skipped`.
    """

    def walk(directory: Path, prefix: bytes) -> Iterator[tuple[bytes, Path]]:
        with os.scandir(directory) as entries:
            ordered = sorted(entries, key=lambda e: os.fsencode(e.name))
        for entry in ordered:
            relpath = prefix + os.fsencode(entry.name)
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                yield from walk(Path(entry.path), relpath + b"/")
            elif stat.S_ISREG(mode):
                yield relpath, Path(entry.path)
            elif skipped is not None:
                skipped.append(relpath)

    yield from walk(Path(root), b"")


def file_row(relpath: bytes, size: int, sha256_hex: str) -> tuple[bytes, int, str]:
    """The row the folder fingerprint holds for one file."""
    return (relpath, size, sha256_hex)


@dataclass
class AttachmentSummary:
    files: int = 0
    bytes: int = 0
    fingerprint: TableFingerprint = field(default_factory=TableFingerprint)
    skipped: list[builtins.bytes] = field(default_factory=list)  # builtins: `bytes` is a field here


def _no_follow(path: Any, flags: int) -> int:
    """open() opener that refuses a symbolic link in the last component (a link swapped in after
    the walk looked at the entry is never followed)."""
    return os.open(path, flags | os.O_NOFOLLOW)


def _hash_file(path: Path) -> tuple[int, str, str]:
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb", opener=_no_follow) as handle:
        while block := handle.read(_READ_BLOCK):
            sha.update(block)
            md5.update(block)
            size += len(block)
    return size, sha.hexdigest(), md5.hexdigest()


def attachment_fingerprint(root: Path) -> AttachmentSummary:
    """Files, bytes and fingerprint of the live attachment folder."""
    summary = AttachmentSummary()
    for relpath, path in iter_attachment_files(root, summary.skipped):
        size, sha_hex, _ = _hash_file(path)
        summary.files += 1
        summary.bytes += size
        summary.fingerprint.add(file_row(relpath, size, sha_hex))
    return summary


@dataclass(frozen=True)
class Position:
    """Where a part ended: in file `path` after `offset` bytes; `file_done` once its last chunk is stored."""

    path: bytes
    offset: int
    file_done: bool

    def to_json(self) -> dict[str, Any]:
        return {"path_hex": self.path.hex(), "offset": self.offset, "file_done": self.file_done}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Position:
        return cls(bytes.fromhex(data["path_hex"]), int(data["offset"]), bool(data["file_done"]))


@dataclass(frozen=True)
class AttachmentPart:
    rows: int  # chunks
    files: int  # files whose last chunk is in this part
    content_bytes: int
    parquet: bytes
    plaintext_sha256: str
    fingerprint: TableFingerprint  # over the files completed in this part
    position: Position


def attachment_parquet(rows: list[tuple[Any, ...]]) -> bytes:
    """One attachment part's plaintext: PART_SCHEMA rows (path, offset, chunk, size, sha256, md5) as Parquet."""
    columns = list(zip(*rows))
    table = pa.Table.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(columns, PART_SCHEMA)], schema=PART_SCHEMA
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _part(rows: list[tuple[Any, ...]]) -> AttachmentPart:
    data = attachment_parquet(rows)
    fingerprint, content = TableFingerprint(), 0
    for path, _offset, chunk, size, sha_hex, _md5_hex in rows:
        content += len(chunk)
        if sha_hex is not None:
            fingerprint.add(file_row(path, size, sha_hex))
    last_path, last_offset, last_chunk, _, last_sha, _ = rows[-1]
    position = Position(last_path, last_offset + len(last_chunk), last_sha is not None)
    return AttachmentPart(
        len(rows), fingerprint.rows, content, data, hashlib.sha256(data).hexdigest(), fingerprint, position
    )


def iter_attachment_parts(
    root: Path,
    *,
    part_bytes: int = PART_BYTES,
    chunk_bytes: int = FILE_CHUNK_BYTES,
    part_rows: int = PART_ROWS,
    resume: Position | None = None,
    skipped: list[bytes] | None = None,
) -> Iterator[AttachmentPart]:
    """Yield the folder as parts of about `part_bytes` of file content (or `part_rows` chunks, for
    many small files), resuming after `resume`."""
    chunk_bytes = max(1, min(chunk_bytes, part_bytes))
    rows: list[tuple[Any, ...]] = []
    pending = 0
    resume_key = _walk_key(resume.path) if resume else None
    for relpath, path in iter_attachment_files(root, skipped):
        start = 0
        if resume_key is not None:
            key = _walk_key(relpath)
            assert resume is not None  # resume_key is resume's
            if key < resume_key or (key == resume_key and resume.file_done):
                continue
            if key == resume_key:
                start = resume.offset
        for row in file_chunks(relpath, path, start, chunk_bytes):
            rows.append(row)
            pending += len(row[2])
            if pending >= part_bytes or len(rows) >= part_rows:
                yield _part(rows)
                rows, pending = [], 0
    if rows:
        yield _part(rows)


def file_chunks(
    relpath: bytes, path: Path, start: int = 0, chunk_bytes: int = FILE_CHUNK_BYTES
) -> Iterator[tuple[Any, ...]]:
    """(path, offset, data, size, sha256, md5) rows of one file from `start` on, `chunk_bytes` of data
    each; the last row carries the size and the hashes of the whole file."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb", opener=_no_follow) as handle:
        offset = 0
        while offset < start:  # a resumed file: hash the part already stored, emit the rest
            block = handle.read(min(_READ_BLOCK, start - offset))
            if not block:
                break
            sha.update(block)
            md5.update(block)
            offset += len(block)
        current = handle.read(chunk_bytes)
        while True:
            following = handle.read(chunk_bytes) if current else b""
            sha.update(current)
            md5.update(current)
            if not following:
                size = offset + len(current)
                yield (relpath, offset, current, size, sha.hexdigest(), md5.hexdigest())
                return
            yield (relpath, offset, current, None, None, None)
            offset += len(current)
            current = following


# -- references from legacy rows -------------------------------------------------------------

FILE_TABLE, PATH_COLUMN, MD5_COLUMN, SIZE_COLUMN = "HO_SO_TEP", "DUONG_DAN", "MD5", "KICH_THUOC"
CONTENT_COLUMN = "NOI_DUNG"  # content kept in the database instead of on disk
# Unreferenced files named in a report (in walk order); the count and bytes always cover them all,
# and every one of them is in the backup's attachment parts like any other file.
UNREFERENCED_LISTED = 1000


@dataclass
class ReferenceCheck:
    """Files that legacy rows refer to, compared with the folder, and the folder's other entries.

    The kinds of finding (`FINDINGS` in ts24_migrate.core.labels) are each a list here; every report
    counts a finding as the length of its list, under the same label.
    """

    table: str | None = None
    referenced: int = 0
    found: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    md5_mismatch: list[dict[str, Any]] = field(default_factory=list)
    size_mismatch: list[dict[str, Any]] = field(default_factory=list)
    outside_folder: list[dict[str, Any]] = field(default_factory=list)
    linked: list[dict[str, Any]] = field(default_factory=list)  # a referenced path through a symbolic link
    unreferenced: list[dict[str, Any]] = field(default_factory=list)  # at most UNREFERENCED_LISTED
    unreferenced_files: int = 0
    unreferenced_bytes: int = 0
    links: list[dict[str, Any]] = field(default_factory=list)  # symbolic links in the folder, never followed
    special: list[dict[str, Any]] = field(default_factory=list)  # sockets, pipes, devices
    files_in_folder: int = 0
    bytes_in_folder: int = 0
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "referenced": self.referenced,
            "found": self.found,
            "missing": self.missing,
            "md5_mismatch": self.md5_mismatch,
            "size_mismatch": self.size_mismatch,
            "outside_folder": self.outside_folder,
            "linked": self.linked,
            "unreferenced": self.unreferenced,
            "unreferenced_files": self.unreferenced_files,
            "unreferenced_bytes": self.unreferenced_bytes,
            "unreferenced_listed_at_most": UNREFERENCED_LISTED,
            "links": self.links,
            "special": self.special,
            "files_in_folder": self.files_in_folder,
            "bytes_in_folder": self.bytes_in_folder,
            "note": self.note,
        }


def legacy_relative_path(text: str) -> bytes | None:
    """DUONG_DAN as a folder-relative path; None when it would leave the folder.

    >>> legacy_relative_path('2020\\\\HS1\\\\to_khai.xml')
    b'2020/HS1/to_khai.xml'
    """
    parts = [p for p in text.strip().replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts or ":" in parts[0]:
        return None
    return os.fsencode("/".join(parts))


def _narrow(table: TableInfo, names: list[str]) -> TableInfo:
    """The same table restricted to `names` (primary key first), so blobs are not read."""
    metadata = sa.MetaData()
    columns = [sa.Column(n, table.table.c[n].type, primary_key=n in table.primary_key) for n in names]
    narrow = sa.Table(table.name, metadata, *columns, schema=table.schema)
    infos = tuple(c for c in table.columns if c.name in names)
    infos = tuple(sorted(infos, key=lambda c: names.index(c.name)))
    return TableInfo(table.name, table.schema, infos, table.primary_key, narrow)


def _entry_kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISBLK(mode) or stat.S_ISCHR(mode):
        return "device"
    return "other"


def describe_skipped(root: Path, relpath: bytes) -> dict[str, Any]:
    """A folder entry that is not a regular file or folder: its kind and, for a link, its target text.

    The link itself is read (readlink), never what it points to.
    """
    full = os.path.join(os.fsencode(root), relpath)
    try:
        mode = os.lstat(full).st_mode
    except OSError:
        return {"path": os.fsdecode(relpath), "kind": "gone", "target": None}
    target = os.fsdecode(os.readlink(full)) if stat.S_ISLNK(mode) else None
    return {"path": os.fsdecode(relpath), "kind": _entry_kind(mode), "target": target}


def _lookup(root: Path, relpath: bytes) -> tuple[str, str | None]:
    """('file' | 'missing' | 'link' | 'other', link target) for a path, never following a link.

    Every component is checked with lstat: a link anywhere on the way (a linked folder too)
    stops the lookup, so nothing outside the folder is ever reached through one.
    """
    current = os.fsencode(root)
    parts = relpath.split(b"/")
    for index, part in enumerate(parts):
        current = os.path.join(current, part)
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return "missing", None
        except NotADirectoryError:
            return "missing", None
        if stat.S_ISLNK(mode):
            return "link", os.fsdecode(os.readlink(current))
        last = index == len(parts) - 1
        if last:
            return ("file" if stat.S_ISREG(mode) else "other"), None
        if not stat.S_ISDIR(mode):
            return "missing", None
    return "missing", None


def check_references(
    conn: Connection, tables: list[TableInfo], root: Path, *, chunk_rows: int = 50_000
) -> ReferenceCheck:
    """Compare every HO_SO_TEP row with the folder, and the folder with the rows.

    Per row: the file DUONG_DAN names is missing, has another MD5 or size than
    the row recorded, leaves the folder, or goes through a symbolic link (not
    followed); content kept in NOI_DUNG (a row without DUONG_DAN) is checked
    against MD5 and KICH_THUOC the same way, as the load checks it. Then the folder: files no row refers to (named with size and
    SHA-256), symbolic links (with the text they point to, never followed) and
    special files.

    Each referenced file is read again for its MD5 rather than keeping every
    file's MD5 from the backup pass, and the referenced paths are remembered in a
    key store that spills to a temporary SQLite database: memory stays bounded by
    the chunk size however many files the folder holds.
    """
    from ts24_migrate.core.key_store import KeyStore

    root = Path(root)
    table = next((t for t in tables if t.name.upper() == FILE_TABLE), None)
    referenced = KeyStore()
    try:
        if table is None or PATH_COLUMN not in table.column_names:
            check = ReferenceCheck(
                note=f"no {FILE_TABLE} table with a {PATH_COLUMN} column: every file of the folder is unreferenced"
            )
        else:
            check = ReferenceCheck(table=table.name)
            _check_rows(conn, table, root, check, referenced, chunk_rows)
        _check_folder(root, check, referenced)
    finally:
        referenced.close()
    return check


def _check_rows(
    conn: Connection, table: TableInfo, root: Path, check: ReferenceCheck, referenced: Any, chunk_rows: int
) -> None:
    optional = [c for c in (MD5_COLUMN, SIZE_COLUMN, CONTENT_COLUMN) if c in table.column_names]
    names = list(table.primary_key) + [PATH_COLUMN] + optional
    narrow = _narrow(table, names)
    for rows in iter_table_rows(conn, narrow, chunk_rows=chunk_rows):
        for row in rows:
            values = dict(zip(names, row))
            key = {k: json_value(values[k]) for k in table.primary_key}
            text = values[PATH_COLUMN]
            if not isinstance(text, str) or not text.strip():
                content = values.get(CONTENT_COLUMN)
                if isinstance(content, (bytes, bytearray, memoryview)):
                    # Kept in the database: checked like a file, as the load checks it.
                    content = bytes(content)
                    md5_hex = hashlib.md5(content, usedforsecurity=False).hexdigest()
                    _compare(
                        check,
                        {"table": table.name, "path": None, "key": key, "stored": "database"},
                        values,
                        len(content),
                        md5_hex,
                    )
                continue
            check.referenced += 1
            entry = {"table": table.name, "path": text, "key": key, "stored": "disk"}
            relpath = legacy_relative_path(text)
            if relpath is None:
                check.outside_folder.append(entry)
                continue
            referenced.add(relpath.hex())
            state, target = _lookup(root, relpath)
            if state == "link":
                check.linked.append({**entry, "target": target})
                continue
            if state != "file":
                check.missing.append(entry)
                continue
            actual_size, _, md5_hex = _hash_file(root / os.fsdecode(relpath))
            check.found += 1
            _compare(check, entry, values, actual_size, md5_hex)


def _compare(
    check: ReferenceCheck, entry: dict[str, Any], values: dict[str, Any], actual_size: int, md5_hex: str
) -> None:
    expected_md5 = values.get(MD5_COLUMN)
    if isinstance(expected_md5, str) and expected_md5.strip() and expected_md5.strip().lower() != md5_hex:
        check.md5_mismatch.append({**entry, "expected": expected_md5.strip(), "actual": md5_hex})
    expected_size = values.get(SIZE_COLUMN)
    if isinstance(expected_size, int) and actual_size != expected_size:
        check.size_mismatch.append({**entry, "expected": expected_size, "actual": actual_size})


def _check_folder(root: Path, check: ReferenceCheck, referenced: Any) -> None:
    skipped: list[bytes] = []
    for relpath, path in iter_attachment_files(root, skipped):
        size = path.stat(follow_symlinks=False).st_size
        check.files_in_folder += 1
        check.bytes_in_folder += size
        if relpath.hex() in referenced:
            continue
        size, sha_hex, _ = _hash_file(path)
        check.unreferenced_files += 1
        check.unreferenced_bytes += size
        if len(check.unreferenced) < UNREFERENCED_LISTED:
            check.unreferenced.append({"path": os.fsdecode(relpath), "size": size, "sha256": sha_hex})
    for relpath in skipped:
        described = describe_skipped(root, relpath)
        if described["kind"] == "symlink":
            check.links.append({"path": described["path"], "target": described["target"]})
        else:
            check.special.append({"path": described["path"], "kind": described["kind"]})
