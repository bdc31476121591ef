"""What a purge may destroy, and where it must stop: the attachment folder walked without following
anything, the SQLite database files, and the rules that keep the scope inside the site.

The folder is walked through directory file descriptors (``openat`` with
``O_NOFOLLOW``): a symbolic link is listed as a link (its target is never
opened), a subfolder swapped for a link between two steps is refused rather
than followed. A regular file with more hard links than the folder holds has
a name outside the folder: its content is not ours to overwrite, only its name
inside the folder is removed.

Example::

    entries = walk_folder(Path("/srv/ts24/hn-01/files"))
    [(e.path, e.kind, e.size) for e in entries]     # [('2020', 'directory', None), ('2020/a.pdf', 'file', 5120)]
    scope_problems(attachments=..., protected={"backup folder": ...}, other_sites={...})
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from extract.attachments import file_row
from ts24_migrate.core.errors import GateRefused
from ts24_migrate.core.rows.fingerprint import TableFingerprint

SQLITE_SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class FolderEntry:
    path: str  # relative to the folder, '/'-separated, as os.fsdecode gives it
    kind: str  # file | link | directory | special
    size: int | None = None
    sha256: str | None = None
    link_target: str | None = None
    device: int | None = None
    inode: int | None = None
    links: int | None = None  # hard links of a file
    outside_links: bool = False  # a file with a hard link outside the folder: not overwritten

    @property
    def method(self) -> str:
        if self.kind == "file":
            return (
                "unlink only (hard-linked outside the folder; contents left for media sanitization)"
                if self.outside_links
                else "overwrite once with random data, fsync, rename, unlink"
            )
        if self.kind == "link":
            return "unlink the link itself (its target is never followed)"
        if self.kind == "directory":
            return "remove once empty"
        return "unlink (never opened)"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "method": self.method}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FolderEntry:
        return cls(
            path=data["path"],  # every entry has a path and a kind (to_dict writes them)
            kind=data["kind"],
            size=data.get("size"),
            sha256=data.get("sha256"),
            link_target=data.get("link_target"),
            device=data.get("device"),
            inode=data.get("inode"),
            links=data.get("links"),
            outside_links=bool(data.get("outside_links")),
        )

    def same_content(self, other: FolderEntry) -> bool:
        """Equal for the purge: kind, size, content hash, link target (not inode or link counts)."""
        return (self.kind, self.size, self.sha256, self.link_target) == (
            other.kind,
            other.size,
            other.sha256,
            other.link_target,
        )


def relative_parts(relpath: str) -> list[str]:
    """The components of a relative path from a plan; anything that could leave the folder is refused."""
    parts = relpath.split("/")
    if relpath.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\x00" in relpath:
        raise GateRefused(f"refusing the path {relpath!r}: a purge path must stay inside its folder")
    return parts


def open_directory(path: Path) -> int:
    """A descriptor on a directory given by an absolute path; its last component must not be a link."""
    return os.open(path, _DIRECTORY_FLAGS)


def open_parent(root_fd: int, relpath: str) -> tuple[int, str]:
    """(descriptor of the entry's directory, entry name), descending without following any link."""
    parts = relative_parts(relpath)
    fd = os.dup(root_fd)
    try:
        for part in parts[:-1]:
            child = os.open(part, _DIRECTORY_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except OSError:
        os.close(fd)
        raise
    return fd, parts[-1]


def hash_regular_file(dir_fd: int, name: str, expected: os.stat_result) -> tuple[int, str]:
    """(size, SHA-256 hex) of a regular file opened without following links; must be `expected`'s inode."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (expected.st_dev, expected.st_ino):
            raise GateRefused(f"{name} changed while it was read (another file took its place)")
        sha, size = hashlib.sha256(), 0
        while block := os.read(fd, _BLOCK):
            sha.update(block)
            size += len(block)
        return size, sha.hexdigest()
    finally:
        os.close(fd)


def walk_folder(root: Path) -> list[FolderEntry]:
    """Every entry under `root` (not `root` itself), directories before their contents, names in byte order."""
    entries: list[FolderEntry] = []
    root_fd = open_directory(root)
    try:
        _walk(root_fd, "", entries)
    finally:
        os.close(root_fd)
    inside: dict[tuple[int | None, int | None], int] = {}  # (device, inode) of a file -> its names inside
    for entry in entries:
        if entry.kind == "file":
            inside[(entry.device, entry.inode)] = inside.get((entry.device, entry.inode), 0) + 1
    return [
        FolderEntry(**{**asdict(e), "outside_links": (e.links or 1) > inside[(e.device, e.inode)]})
        if e.kind == "file"
        else e
        for e in entries
    ]


def _walk(dir_fd: int, prefix: str, entries: list[FolderEntry]) -> None:
    for name in sorted(os.listdir(dir_fd), key=os.fsencode):
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        relpath = prefix + name
        device, inode = info.st_dev, info.st_ino
        if stat.S_ISDIR(info.st_mode):
            entries.append(FolderEntry(relpath, "directory", device=device, inode=inode))
            child = os.open(name, _DIRECTORY_FLAGS, dir_fd=dir_fd)
            try:
                _walk(child, relpath + "/", entries)
            finally:
                os.close(child)
        elif stat.S_ISLNK(info.st_mode):
            link_target = os.readlink(name, dir_fd=dir_fd)
            entries.append(FolderEntry(relpath, "link", link_target=link_target, device=device, inode=inode))
        elif stat.S_ISREG(info.st_mode):
            size, sha = hash_regular_file(dir_fd, name, info)
            entries.append(
                FolderEntry(relpath, "file", size=size, sha256=sha, links=info.st_nlink, device=device, inode=inode)
            )
        else:
            entries.append(FolderEntry(relpath, "special", device=device, inode=inode))


def folder_fingerprint(entries: list[FolderEntry]) -> str:
    """The folder's fingerprint as the backup computes it (extract.attachments): regular files only."""
    fingerprint = TableFingerprint()
    for entry in entries:
        if entry.kind == "file":
            if entry.size is None or entry.sha256 is None:  # walked files have both; so do plans written here
                raise GateRefused(f"{entry.path}: a file entry without its size or content hash (a damaged plan?)")
            fingerprint.add(file_row(os.fsencode(entry.path), entry.size, entry.sha256))
    return fingerprint.hexdigest()


def sqlite_files(database: Path) -> list[FolderEntry]:
    """The SQLite database file and the side files next to it (-wal, -shm, -journal) that exist now.

    Paths are absolute; each is listed with its size, content hash and inode."""
    found = []
    for path in [database, *(database.with_name(database.name + s) for s in SQLITE_SIDE_SUFFIXES)]:
        try:
            info = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode):
            raise GateRefused(f"{path} is not a regular file: refusing to treat it as the legacy database")
        parent = open_directory(path.parent)
        try:
            size, sha = hash_regular_file(parent, path.name, info)
        finally:
            os.close(parent)
        found.append(
            FolderEntry(
                str(path),
                "file",
                size=size,
                sha256=sha,
                device=info.st_dev,
                inode=info.st_ino,
                links=info.st_nlink,
                outside_links=info.st_nlink > 1,
            )
        )
    return found


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def scope_problems(
    *,
    attachments: Path | None,
    protected: Mapping[str, Path | None],
    other_sites: Mapping[str, Path],
    legacy_file: Path | None = None,
) -> list[str]:
    """Why this scope is unsafe to purge (empty when it is safe). Paths are resolved first.

    `protected`: folders and files the purge must never reach (backup folder, work folder, control
    store, target); `other_sites`: the other sites' attachment folders."""
    problems = []
    root = Path(os.path.realpath(attachments)) if attachments is not None else None
    if root is not None:
        if root == Path(root.anchor):
            problems.append(f"the attachment folder is the file-system root {root}")
        for what, path in protected.items():
            if path is not None and _overlap(root, Path(os.path.realpath(path))):
                problems.append(
                    f"the attachment folder {root} and the {what} ({os.path.realpath(path)}) overlap: "
                    f"move one of them so that neither holds the other"
                )
        for site, path in sorted(other_sites.items()):
            if _overlap(root, Path(os.path.realpath(path))):
                problems.append(f"the attachment folder {root} overlaps site {site}'s ({os.path.realpath(path)})")
    if legacy_file is not None:
        resolved = Path(os.path.realpath(legacy_file))
        if root is not None and root in resolved.parents:
            problems.append(f"the legacy database {resolved} is inside the attachment folder")
        for what, path in protected.items():
            if path is not None and _overlap(resolved, Path(os.path.realpath(path))):
                problems.append(f"the legacy database {resolved} is the {what} or inside it")
    return problems


def iter_removal_order(entries: list[FolderEntry]) -> Iterator[FolderEntry]:
    """Non-directories in plan order, then directories deepest first."""
    yield from (e for e in entries if e.kind != "directory")
    yield from sorted((e for e in entries if e.kind == "directory"), key=lambda e: e.path.count("/"), reverse=True)
