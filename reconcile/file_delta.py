"""What changed in the attachment folder since the chain's last increment.

The chain keeps, per file, the digest of its fingerprint row (relative path,
size, SHA-256: extract.attachments.file_row) and a stamp (size and
modification time). A delta run walks the folder and stats every file, and
hashes only files that are new or whose stamp moved; a sweep hashes them all.
A file whose content is unchanged but whose stamp moved gets its new stamp
and stays out of the increment. Deleted files are found by count, then by
comparing paths, and become tombstones.

At the first increment (baseline) every file is hashed; if the folder's
fingerprint equals the full backup's, nothing changed; otherwise the files
modified since the full backup started (with a day of look-back) go to the
increment.

Example::

    delta = folder_delta(Path("/srv/ts24/files"), previous_chain, state, "hn-01", mode="delta")
    delta.files          # [(b'2025/08/1000201_307.xml', PosixPath(...)), ...] to store
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backups.part_store import sha256_file
from extract.attachments import ATTACHMENTS_KEY, file_row, iter_attachment_files
from ts24_migrate.core.rows.fingerprint import TableFingerprint, row_digest

from .delta import BASELINE_LOOKBACK
from .state import KEYS_PER_QUERY, DigestChange, ReconcileState

FILES_TABLE = ATTACHMENTS_KEY  # the name the chain's digests and states use for the folder


@dataclass
class FileDelta:
    files: list[tuple[bytes, Path]] = field(default_factory=list)  # new and changed, to store
    new: int = 0
    changed: int = 0
    deleted: list[bytes] = field(default_factory=list)
    changes: list[DigestChange] = field(default_factory=list)
    chain: TableFingerprint = field(default_factory=TableFingerprint)
    live_files: int = 0
    hashed: int = 0
    skipped: list[str] = field(default_factory=list)
    stamp: str | None = None  # folder_stamp() of the folder as this run found it

    def figures(self) -> dict[str, int]:
        return {
            "new": self.new,
            "changed": self.changed,
            "deleted": len(self.deleted),
            "live_files": self.live_files,
            "hashed": self.hashed,
            "chain_files": self.chain.rows,
            "skipped": len(self.skipped),
        }


def _stamp(path: Path) -> tuple[str, int]:
    info = path.stat()
    return f"{info.st_size}:{info.st_mtime_ns}", info.st_mtime_ns


def _stamp_walk(directory: bytes, prefix: bytes, digest: Any) -> int:
    """Hash "len:relpath:size:mtime_ns" of every regular file under `directory`, in
    extract.attachments' walk order (names sorted as bytes); returns the file count.

    A stamp walk visits every file of the folder on every run: names are read as bytes (no
    decoding and encoding per file) and each directory's lines go to the hash at once."""
    with os.scandir(directory) as entries:
        ordered = sorted(entries, key=lambda e: e.name)
    lines, files = [], 0
    for entry in ordered:
        info = entry.stat(follow_symlinks=False)
        relpath = prefix + entry.name
        if stat.S_ISDIR(info.st_mode):
            files += _stamp_walk(entry.path, relpath + b"/", digest)
        elif stat.S_ISREG(info.st_mode):
            lines.append(b"%d:%b:%d:%d\n" % (len(relpath), relpath, info.st_size, info.st_mtime_ns))
    digest.update(b"".join(lines))
    return files + len(lines)


def folder_stamp(root: Path) -> tuple[str, int]:
    """SHA-256 over every file's path, size and modification time, in walk order; and the file count.

    Equal to the previous run's: no file was added, removed, resized or touched, and a delta run
    stops there (a sweep hashes every file regardless)."""
    digest = hashlib.sha256()
    files = _stamp_walk(os.fsencode(root), b"", digest)
    return digest.hexdigest(), files


def folder_delta(
    root: Path,
    previous_chain: TableFingerprint,
    state: ReconcileState,
    site_id: str,
    *,
    mode: str,
    base_fingerprint: str | None = None,
    base_started: dt.datetime | None = None,
    previous_stamp: str | None = None,
    batch: int = KEYS_PER_QUERY,
) -> FileDelta:
    root = Path(root)
    delta = FileDelta(chain=TableFingerprint(previous_chain.rows, previous_chain.total))
    delta.stamp, delta.live_files = folder_stamp(root)
    if mode == "delta" and previous_stamp is not None and delta.stamp == previous_stamp:
        return delta
    delta.live_files = 0
    skipped: list[bytes] = []
    before = previous_chain.rows if mode != "baseline" else 0  # the chain holds one digest per file
    seen_known = 0
    since_ns = None
    if mode == "baseline" and base_started is not None:
        since_ns = int((base_started - BASELINE_LOOKBACK).timestamp() * 1_000_000_000)
    candidates: list[tuple[bytes, Path, int]] = []  # baseline: (relpath, path, mtime_ns)
    pending: list[tuple[bytes, Path]] = []

    def settle(group: list[tuple[bytes, Path]]) -> None:
        nonlocal seen_known
        keys = [relpath.hex() for relpath, _ in group]
        known = state.digests_of(site_id, FILES_TABLE, keys) if mode != "baseline" else {}
        baseline_rows = []
        for (relpath, path), key in zip(group, keys):
            stamp, mtime_ns = _stamp(path)
            delta.live_files += 1
            old = known.get(key)
            if old is not None:
                seen_known += 1
                if mode == "delta" and old[1] == stamp:
                    continue
            sha_hex, size = sha256_file(path)
            delta.hashed += 1
            digest = row_digest(file_row(relpath, size, sha_hex))
            if mode == "baseline":
                delta.chain.add_digest(digest)
                baseline_rows.append((key, digest.hex(), stamp))
                if since_ns is None or mtime_ns >= since_ns:
                    candidates.append((relpath, path, mtime_ns))
                continue
            if old is not None and old[0] == digest.hex():
                if old[1] != stamp:
                    delta.changes.append(DigestChange(FILES_TABLE, key, old[0], stamp))
                continue
            if old is not None:
                delta.chain.remove_digest(bytes.fromhex(old[0]))
                delta.changed += 1
            else:
                delta.new += 1
            delta.chain.add_digest(digest)
            delta.changes.append(DigestChange(FILES_TABLE, key, digest.hex(), stamp))
            delta.files.append((relpath, path))
        if baseline_rows:
            state.write_baseline_digests(site_id, FILES_TABLE, baseline_rows)

    for relpath, path in iter_attachment_files(root, skipped):
        pending.append((relpath, path))
        if len(pending) >= batch:
            settle(pending)
            pending = []
    settle(pending)
    delta.skipped = [os.fsdecode(p) for p in skipped]

    if mode == "baseline":
        if base_fingerprint is None or delta.chain.hexdigest() != base_fingerprint:
            delta.files = [(r, p) for r, p, _m in candidates]
            delta.changed = len(delta.files)
        return delta

    if seen_known != before:
        live = {relpath.hex() for relpath, _ in iter_attachment_files(root)}
        for rows in state.iter_digests(site_id, FILES_TABLE):
            for key, digest, _stamp_text in rows:
                if key not in live:
                    delta.chain.remove_digest(bytes.fromhex(digest))
                    delta.deleted.append(bytes.fromhex(key))
                    delta.changes.append(DigestChange(FILES_TABLE, key, None))
    return delta
