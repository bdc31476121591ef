"""Write-once files and the resumable journal of a backup in progress.

A part is written to a hidden temporary name, flushed and fsynced, then
hard-linked to its final name: link() fails if the name exists, so nothing is
ever overwritten, and a part either exists complete under its final name or
not at all. Temporary files left by a killed run never count; the next run
removes them.

The journal (journal.jsonl in the backup folder) records each part once its
final file is durable, and each finished table; a re-run replays it to skip
what is done and resume a table after its last stored key. A line cut short
by a kill, or by a full disk, is ignored, and cut before the next append.

Example::

    sha256, size = write_once(folder / "part-000001.parquet.age", lambda out: out.write(data))
    journal = Journal(folder / "journal.jsonl"); journal.append({"event": "part", ...})
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ts24_migrate.core.durable import fsync_dir
from ts24_migrate.core.errors import GateRefused, VerificationError
from ts24_migrate.core.private_files import make_private_dirs

TEMP_PREFIX = ".tmp-"


class PartExists(GateRefused):
    """A write-once name is already taken: refusing to overwrite it."""


class _HashingWriter:
    """A file wrapper that hashes and counts what goes through it (pyrage writes here)."""

    def __init__(self, handle: BinaryIO):
        self.handle, self.sha256, self.size = handle, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()

    def writable(self) -> bool:
        return True


def write_once(final: Path, produce: Callable[[Any], None]) -> tuple[str, int]:
    """Write a new file through `produce(writer)`; returns (SHA-256 hex, size) of what was written."""
    final = Path(final)
    if final.exists():
        raise PartExists(f"{final} already exists: backups are write-once, refusing to overwrite it")
    make_private_dirs(final.parent)
    # Host and pid: on a backup folder shared by several worker hosts, no two writers share a name.
    temp = final.with_name(f"{TEMP_PREFIX}{final.name}.{socket.gethostname()}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            writer = _HashingWriter(handle)
            produce(writer)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, final)
        except FileExistsError:
            raise PartExists(f"{final} already exists: backups are write-once, refusing to overwrite it") from None
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(final.parent)
    return writer.sha256.hexdigest(), writer.size


def remove_temporary_files(folder: Path) -> list[Path]:
    """Delete half-written parts left by a killed run; returns what was removed."""
    removed = []
    for path in Path(folder).rglob(f"{TEMP_PREFIX}*"):
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def sha256_file(path: Path) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while block := handle.read(1024 * 1024):
            sha.update(block)
            size += len(block)
    return sha.hexdigest(), size


def _drop_partial_line(fd: int) -> int:
    """Cut a last line without its newline (a write cut short: it never happened); returns the size."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    block = 64 * 1024
    end = size
    while end > 0:
        start = max(0, end - block)
        found = os.pread(fd, end - start, start).rfind(b"\n")
        if found >= 0:
            keep = start + found + 1
            break
        end = start
    else:
        keep = 0
    os.ftruncate(fd, keep)
    return keep


class Journal:
    """Append-only JSON lines, each durable (fsync) before append() returns."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.exists()

    def append(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n").encode("ascii")
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            start = _drop_partial_line(fd)
            try:
                written = os.write(fd, line)
                if written != len(line):  # a full disk may take part of it
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, start)  # the entry was never made: no half line for the next run to trip on
                raise
        finally:
            os.close(fd)

    def entries(self) -> Iterator[dict[str, Any]]:
        try:
            lines = self.path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError:
                if number == len(lines):
                    return  # the last line without its newline, cut short by a kill: it never happened
                raise VerificationError(f"{self.path}: line {number} is damaged") from None
