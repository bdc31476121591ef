"""The residue scan: after the purge, look for distinctive legacy values where the tool can read.

The plan keeps a sample of distinctive values (numeric identifiers: runs of
9 to 16 digits, such as social insurance, citizen ID, tax and telephone
numbers) only as keyed hashes: BLAKE2b keyed
with a random salt that stays in the work folder (mode 0600), never in the
plan or the certificate, so neither can be used to guess a value, however few
digits it has. The scan reads files byte by byte (without following links),
takes every window of a sampled length inside runs of digits, as ASCII/UTF-8
and as UTF-16LE (SQL Server's NVARCHAR), hashes it with the same salt and
reports which files hold a sampled value. A value stored next to other digits
is still found (every window of a run is tried). It never records the value.
Digits only: runs of digits are rare in database files, so the scan stays
fast on the hundreds of megabytes of a server's logs.

Example::

    salt = residue_salt(work / "sites" / "hn-01" / "purge")
    sample = sample_values(legacy_conn, tables, salt)
    scan = scan_paths([Path("/srv/ts24/hn-01/files")], sample, salt)
    scan.hits      # [{'location': ..., 'file': ..., 'values': 3}]
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from extract.discovery import TableInfo
from extract.reader import iter_table_rows
from ts24_migrate.core.private_files import make_private_dirs

SALT_NAME = "residue.salt"
MIN_TOKEN, MAX_TOKEN = 9, 16
PER_TABLE, SAMPLE_LIMIT = 8, 64
_TOKEN = re.compile(rb"[0-9]+")
_BLOCK = 4 * 1024 * 1024


def residue_salt(folder: Path) -> bytes:
    """The site's residue salt (32 random bytes, mode 0600), made on first use."""
    path = Path(folder) / SALT_NAME
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    make_private_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(32))
        handle.flush()
        os.fsync(handle.fileno())
    return path.read_bytes()


def salt_id(salt: bytes) -> str:
    return hashlib.sha256(b"ts24-residue-salt\n" + salt).hexdigest()[:16]


def keyed_hash(token: bytes, salt: bytes) -> str:
    return hashlib.blake2b(token, key=salt, digest_size=16).hexdigest()


def distinctive_tokens(value: Any) -> list[bytes]:
    """The runs of 9-16 digits in a text or bytes value (identifiers), not of one or two digits repeated."""
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        return []
    return [
        m.group() for m in _TOKEN.finditer(data) if MIN_TOKEN <= len(m.group()) <= MAX_TOKEN and len(set(m.group())) > 2
    ]


def sample_values(conn: Connection, tables: Iterable[TableInfo], salt: bytes) -> dict[str, Any]:
    """A sample of distinctive values of the legacy tables, as keyed hashes (see the module docstring)."""
    hashes: dict[str, dict[str, Any]] = {}
    for table in tables:
        taken = 0
        for rows in iter_table_rows(conn, table, chunk_rows=200):
            for row in rows:
                for column, value in zip(table.column_names, row):
                    for token in distinctive_tokens(value):
                        digest = keyed_hash(token, salt)
                        if digest not in hashes and len(hashes) < SAMPLE_LIMIT and taken < PER_TABLE:
                            hashes[digest] = {
                                "hash": digest,
                                "bytes": len(token),
                                "table": table.name,
                                "column": column,
                            }
                            taken += 1
            break  # the first chunk is enough for a sample
    items = sorted(hashes.values(), key=lambda i: (i["table"], i["column"], i["hash"]))
    return {
        "algorithm": "blake2b-128 keyed with the site's residue salt (kept in the work folder, not here)",
        "salt_id": salt_id(salt),
        "items": items,
    }


@dataclass
class ScanReport:
    locations: list[dict[str, Any]] = field(default_factory=list)
    hits: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    unreadable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "locations": self.locations,
            "files_scanned": self.files,
            "bytes_scanned": self.bytes,
            "hits": self.hits,
            "unreadable": self.unreadable,
            "values_found": len({h for hit in self.hits for h in hit["hashes"]}),
        }


# Each byte as one of three classes: a digit '1', NUL 'z', anything else '0'. Searching the class string for
# runs (bytes.find, in C) is some ten times faster than a regular expression over the data.
_CLASSES = bytes(0x31 if 0x30 <= b <= 0x39 else (0x7A if b == 0 else 0x30) for b in range(256))


def _runs(classes: bytes, unit: bytes, shortest: int) -> Iterator[tuple[int, int]]:
    """(start, end) of every run of at least `shortest` units (b"1": ASCII digit, b"1z": UTF-16LE digit)."""
    needle = unit * shortest
    position = classes.find(needle)
    while position != -1:
        end = position + len(needle)
        while classes.startswith(unit, end):
            end += len(unit)
        yield position, end
        position = classes.find(needle, end)


class _Matcher:
    def __init__(self, sample: dict[str, Any], salt: bytes):
        self.salt = salt
        self.wanted = {i["hash"] for i in sample.get("items", [])}
        self.lengths = sorted({int(i["bytes"]) for i in sample.get("items", [])})
        self.shortest = self.lengths[0] if self.lengths else MIN_TOKEN

    def find(self, data: bytes) -> set[str]:
        found: set[str] = set()
        if not self.wanted:
            return found
        classes = data.translate(_CLASSES)
        for unit in (b"1", b"1z"):
            for start, end in _runs(classes, unit, self.shortest):
                run = data[start : end : len(unit)]
                for length in self.lengths:
                    for offset in range(0, len(run) - length + 1):
                        digest = keyed_hash(run[offset : offset + length], self.salt)
                        if digest in self.wanted:
                            found.add(digest)
        return found


def _scan_file(path: Path, matcher: _Matcher, report: ScanReport) -> set[str]:
    found: set[str] = set()
    overlap = 2 * MAX_TOKEN
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        report.unreadable.append(str(path))
        return found
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return found
        report.files += 1
        tail = b""
        while block := os.read(fd, _BLOCK):
            report.bytes += len(block)
            found |= matcher.find(tail + block)
            tail = block[-overlap:]
    except OSError:
        report.unreadable.append(str(path))
    finally:
        os.close(fd)
    return found


def _files_under(path: Path, recursive: bool) -> Iterable[Path]:
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return
    if stat.S_ISREG(info.st_mode):
        yield path
    elif stat.S_ISDIR(info.st_mode):
        try:
            names = sorted(os.listdir(path))
        except OSError:
            return
        for name in names:
            child = path / name
            child_info = os.stat(child, follow_symlinks=False)
            if stat.S_ISREG(child_info.st_mode):
                yield child
            elif stat.S_ISDIR(child_info.st_mode) and recursive:
                yield from _files_under(child, recursive)


def scan_paths(locations: Sequence[dict[str, Any]], sample: dict[str, Any], salt: bytes) -> ScanReport:
    """Scan each location ({"what", "path", "recursive"}) for the sampled values."""
    report = ScanReport()
    matcher = _Matcher(sample, salt)
    for location in locations:
        path = Path(location["path"])
        readable = os.access(path, os.R_OK) if path.exists() else None
        files_before, bytes_before = report.files, report.bytes
        for file in _files_under(path, bool(location.get("recursive"))):
            found = _scan_file(file, matcher, report)
            if found:
                report.hits.append(
                    {"location": location["what"], "file": str(file), "values": len(found), "hashes": sorted(found)}
                )
        report.locations.append(
            {
                **location,
                "exists": path.exists(),
                "readable": readable,
                "files": report.files - files_before,
                "bytes": report.bytes - bytes_before,
            }
        )
    return report
