"""The site's attachment folder: every file in it, in bounded Parquet parts, and its fingerprint.

Every regular file under the folder is backed up, referenced by a legacy row
or not. Files are walked in a fixed order (names compared as bytes, component
by component) so that a killed backup can resume at the exact file and byte
where its last stored part ended. A part is a Parquet table of file *chunks*
(path, offset, data), at most `chunk_bytes` each, so memory is bounded by the
part size however large a file is; the row holding a file's last chunk also
carries its size, SHA-256 and MD5.

The folder's fingerprint is an extract.fingerprint.TableFingerprint over one
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

import hashlib
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .discovery import TableInfo
from .fingerprint import TableFingerprint
from .json_values import json_value
from .reader import iter_table_rows

ATTACHMENTS_KEY = "@attachments"  # the attachment folder's entry beside table names
FILE_CHUNK_BYTES = 4 * 1024 * 1024
PART_BYTES = 32 * 1024 * 1024
PART_ROWS = 10_000
_READ_BLOCK = 1024 * 1024

PART_SCHEMA = pa.schema([
    pa.field("path", pa.large_binary(), nullable=False),  # relative, '/'-separated, bytes as on disk
    pa.field("offset", pa.int64(), nullable=False),
    pa.field("data", pa.large_binary(), nullable=False),
    pa.field("size", pa.int64()),  # the next three only on a file's last chunk
    pa.field("sha256", pa.string()),
    pa.field("md5", pa.string()),
])


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
    skipped: list[bytes] = field(default_factory=list)


def _hash_file(path: Path) -> tuple[int, str, str]:
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as handle:
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
    def from_json(cls, data: dict[str, Any]) -> "Position":
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


def attachment_parquet(rows: list[tuple]) -> bytes:
    """One attachment part's plaintext: PART_SCHEMA rows (path, offset, chunk, size, sha256, md5) as Parquet."""
    columns = list(zip(*rows))
    table = pa.Table.from_arrays([pa.array(list(c), type=f.type) for c, f in zip(columns, PART_SCHEMA)],
                                 schema=PART_SCHEMA)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _part(rows: list[tuple]) -> AttachmentPart:
    data = attachment_parquet(rows)
    fingerprint, content = TableFingerprint(), 0
    for path, _offset, chunk, size, sha_hex, _md5_hex in rows:
        content += len(chunk)
        if sha_hex is not None:
            fingerprint.add(file_row(path, size, sha_hex))
    last_path, last_offset, last_chunk, _, last_sha, _ = rows[-1]
    position = Position(last_path, last_offset + len(last_chunk), last_sha is not None)
    return AttachmentPart(len(rows), fingerprint.rows, content, data, hashlib.sha256(data).hexdigest(),
                          fingerprint, position)


def iter_attachment_parts(root: Path, *, part_bytes: int = PART_BYTES, chunk_bytes: int = FILE_CHUNK_BYTES,
                          part_rows: int = PART_ROWS, resume: Position | None = None,
                          skipped: list[bytes] | None = None) -> Iterator[AttachmentPart]:
    """Yield the folder as parts of about `part_bytes` of file content (or `part_rows` chunks, for
    many small files), resuming after `resume`."""
    chunk_bytes = max(1, min(chunk_bytes, part_bytes))
    rows: list[tuple] = []
    pending = 0
    resume_key = _walk_key(resume.path) if resume else None
    for relpath, path in iter_attachment_files(root, skipped):
        start = 0
        if resume_key is not None:
            key = _walk_key(relpath)
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


def file_chunks(relpath: bytes, path: Path, start: int = 0, chunk_bytes: int = FILE_CHUNK_BYTES) -> Iterator[tuple]:
    """(path, offset, data, size, sha256, md5) rows of one file from `start` on, `chunk_bytes` of data
    each; the last row carries the size and the hashes of the whole file."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
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


@dataclass
class ReferenceCheck:
    """Files that legacy rows refer to, compared with the folder."""

    table: str | None = None
    referenced: int = 0
    found: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    md5_mismatch: list[dict[str, Any]] = field(default_factory=list)
    size_mismatch: list[dict[str, Any]] = field(default_factory=list)
    outside_folder: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "referenced": self.referenced, "found": self.found,
                "missing": self.missing, "md5_mismatch": self.md5_mismatch,
                "size_mismatch": self.size_mismatch, "outside_folder": self.outside_folder,
                "note": self.note}


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


def check_references(conn: Connection, tables: list[TableInfo], root: Path, *,
                     chunk_rows: int = 50_000) -> ReferenceCheck:
    """Compare every HO_SO_TEP.DUONG_DAN with the folder: missing files, wrong MD5 or size.

    Each referenced file is read again for its MD5 rather than keeping every
    file's MD5 from the backup pass: memory stays bounded by the chunk size
    however many files the folder holds, at the cost of reading referenced
    files twice.
    """
    table = next((t for t in tables if t.name.upper() == FILE_TABLE), None)
    if table is None or PATH_COLUMN not in table.column_names:
        return ReferenceCheck(note=f"no {FILE_TABLE} table with a {PATH_COLUMN} column")
    optional = [c for c in (MD5_COLUMN, SIZE_COLUMN) if c in table.column_names]
    names = list(table.primary_key) + [PATH_COLUMN] + optional
    narrow = _narrow(table, names)
    check = ReferenceCheck(table=table.name)
    root = Path(root)
    for rows in iter_table_rows(conn, narrow, chunk_rows=chunk_rows):
        for row in rows:
            values = dict(zip(names, row))
            text = values[PATH_COLUMN]
            if not isinstance(text, str) or not text.strip():
                continue
            check.referenced += 1
            entry = {"table": table.name, "path": text,
                     "key": {k: json_value(values[k]) for k in table.primary_key}}
            relpath = legacy_relative_path(text)
            if relpath is None:
                check.outside_folder.append(entry)
                continue
            full = root / os.fsdecode(relpath)
            if not full.is_file():
                check.missing.append(entry)
                continue
            actual_size, _, md5_hex = _hash_file(full)
            check.found += 1
            expected_md5 = values.get(MD5_COLUMN)
            if isinstance(expected_md5, str) and expected_md5.strip() and \
                    expected_md5.strip().lower() != md5_hex:
                check.md5_mismatch.append({**entry, "expected": expected_md5.strip(), "actual": md5_hex})
            expected_size = values.get(SIZE_COLUMN)
            if isinstance(expected_size, int) and actual_size != expected_size:
                check.size_mismatch.append({**entry, "expected": expected_size, "actual": actual_size})
    return check
