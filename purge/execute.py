"""Destroy exactly the plan's scope, one journaled step at a time; a killed run resumes where it stopped.

Order: the database (SQLite: its file and side files; a server: DROP DATABASE
of the site's database), then the attachment entries (files, links, special
files), then the folder's subdirectories, deepest first. The attachment folder
itself stays, empty.

A file is overwritten once with random data (opened with O_NOFOLLOW, checked
to be the very inode the plan listed), fsynced, renamed to a random name,
unlinked, and its directory fsynced. A link or special file is unlinked,
never opened; a file with a hard link outside the folder is only unlinked
(its content is not the site's alone to overwrite). Every path is reached from
the folder's descriptor one component at a time without following links, so
nothing outside the folder can be reached even if a subfolder is swapped for
a link meanwhile.

Example::

    figures = destroy(scope, journal, drop_database=drop)   # DestructionFigures
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ts24_migrate.core.errors import GateRefused

from .journal import PurgeJournal
from .plan import LiveScope
from .scope import FolderEntry, iter_removal_order, open_directory, open_parent

_BLOCK = 1024 * 1024
TEMPORARY_PREFIX = ".ts24-purge-"


@dataclass
class DestructionFigures:
    database_dropped: bool = False
    tables_dropped: int = 0
    objects_dropped: int = 0
    database_files_overwritten: int = 0
    database_bytes_overwritten: int = 0
    files_overwritten: int = 0
    bytes_overwritten: int = 0
    files_unlinked_only: int = 0
    links_removed: int = 0
    special_removed: int = 0
    directories_removed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def database_step(scope: LiveScope) -> str:
    return f"database:{scope.database}"


def steps_of(scope: LiveScope) -> list[str]:
    """Every step of the plan, in execution order."""
    if scope.engine == "sqlite":
        steps = [f"database-file:{e.path}" for e in scope.database_files]
    else:
        steps = [database_step(scope)]
    return steps + [f"attachment:{e.path}" for e in iter_removal_order(scope.attachments)]


def _changed(where: str, what: str) -> GateRefused:
    return GateRefused(
        f"{where}: {what}; it is not what the plan listed, so it is left as it is. Check who "
        f"changes the site during its purge, then make a new plan"
    )


def _open_checked(dir_fd: int, name: str, entry: FolderEntry, flags: int, where: str) -> int:
    fd = os.open(name, flags | os.O_NOFOLLOW, dir_fd=dir_fd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != (entry.device, entry.inode):
        os.close(fd)
        raise _changed(where, "another file took the place of the one planned")
    return fd


def _overwrite(dir_fd: int, name: str, entry: FolderEntry, where: str) -> int:
    """Overwrite the file's bytes once with random data and fsync; returns the bytes written."""
    fd = _open_checked(dir_fd, name, entry, os.O_RDONLY | os.O_NONBLOCK, where)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if not mode & stat.S_IWUSR:  # the write stop (or TS24) made it read-only
            os.fchmod(fd, mode | stat.S_IWUSR)
    finally:
        os.close(fd)
    fd = _open_checked(dir_fd, name, entry, os.O_WRONLY, where)
    try:
        size = os.fstat(fd).st_size
        offset = 0
        while offset < size:
            block = os.urandom(min(_BLOCK, size - offset))
            offset += os.pwrite(fd, block, offset)
        os.fsync(fd)
        return size
    finally:
        os.close(fd)


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _destroy_file(
    dir_fd: int, name: str, entry: FolderEntry, step: str, journal: PurgeJournal, where: str, overwrite: bool
) -> int:
    """Overwrite (unless `overwrite` is False), rename, unlink; resumes a step a kill interrupted.

    Returns the bytes overwritten: the planned size (a resumed step may have overwritten them before the kill:
    the rename comes only after the overwrite is on disk)."""
    begun = journal.begun_record(step)
    temporary = begun["temporary"] if begun else f"{TEMPORARY_PREFIX}{secrets.token_hex(8)}"
    current = _lstat(dir_fd, name)
    if begun is None:
        if current is None or (current.st_dev, current.st_ino) != (entry.device, entry.inode):
            raise _changed(where, "it is missing or another file took its place")
        journal.record("begun", step=step, temporary=temporary)
    if current is not None:
        if (current.st_dev, current.st_ino) != (entry.device, entry.inode):
            raise _changed(where, "another file took its place")
        if overwrite:
            _overwrite(dir_fd, name, entry, where)
        os.rename(name, temporary, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.fsync(dir_fd)
    renamed = _lstat(dir_fd, temporary)
    if renamed is not None:
        if (renamed.st_dev, renamed.st_ino) != (entry.device, entry.inode):
            raise _changed(where, f"the temporary name {temporary} holds another file")
        os.unlink(temporary, dir_fd=dir_fd)
        os.fsync(dir_fd)
    return int(entry.size or 0) if overwrite else 0


def _destroy_entry(root_fd: int, entry: FolderEntry, step: str, journal: PurgeJournal) -> dict[str, Any]:
    where = f"attachment {entry.path}"
    try:
        dir_fd, name = open_parent(root_fd, entry.path)
    except FileNotFoundError:
        if journal.state(step) == "begun":
            return {"kind": entry.kind, "bytes": 0}  # its folder is gone: the entry went before the kill
        raise _changed(where, "its folder is gone") from None
    except NotADirectoryError:
        raise _changed(where, "one of its folders was replaced by a link or a file") from None
    except OSError as exc:
        raise _changed(where, f"its folder cannot be opened without following a link ({exc.strerror})") from None
    try:
        if entry.kind == "file":
            overwrite = not entry.outside_links
            written = _destroy_file(dir_fd, name, entry, step, journal, where, overwrite)
            return {"kind": "file", "bytes": written, "overwritten": overwrite}
        current = _lstat(dir_fd, name)
        if journal.state(step) is None:
            journal.record("begun", step=step)
        if current is None:
            return {"kind": entry.kind, "bytes": 0}
        if entry.kind == "link":
            if not stat.S_ISLNK(current.st_mode) or os.readlink(name, dir_fd=dir_fd) != entry.link_target:
                raise _changed(where, "it is no longer the link the plan listed")
            os.unlink(name, dir_fd=dir_fd)
        elif entry.kind == "directory":
            if not stat.S_ISDIR(current.st_mode):
                raise _changed(where, "it is no longer a directory")
            try:
                os.rmdir(name, dir_fd=dir_fd)
            except OSError:
                raise _changed(where, "it still holds something the plan did not list") from None
        else:
            if stat.S_ISDIR(current.st_mode) or stat.S_ISREG(current.st_mode) or stat.S_ISLNK(current.st_mode):
                raise _changed(where, "it is no longer the special file the plan listed")
            os.unlink(name, dir_fd=dir_fd)
        os.fsync(dir_fd)
        return {"kind": entry.kind, "bytes": 0}
    finally:
        os.close(dir_fd)


def destroy(
    scope: LiveScope,
    journal: PurgeJournal,
    *,
    drop_database: Callable[[], bool] | None,
    progress: Callable[[str, int, int], None] | None = None,
) -> DestructionFigures:
    """Run (or resume) every step of the plan's scope; returns the figures of the whole purge."""
    steps = steps_of(scope)
    done = 0
    if scope.engine == "sqlite":
        for entry in scope.database_files:
            step = f"database-file:{entry.path}"
            if journal.state(step) != "done":
                path = Path(entry.path)
                dir_fd = open_directory(path.parent)
                try:
                    written = _destroy_file(
                        dir_fd, path.name, entry, step, journal, f"database file {path}", overwrite=True
                    )
                finally:
                    os.close(dir_fd)
                journal.record("done", step=step, kind="database-file", bytes=written)
            done += 1
            if progress:
                progress("database", done, len(steps))
    else:
        step = database_step(scope)
        if journal.state(step) != "done":
            if drop_database is None:
                raise ValueError("a server database needs drop_database")
            if journal.state(step) is None:
                journal.record("begun", step=step)
            existed = drop_database()
            journal.record("done", step=step, kind="database", existed=existed)
        done += 1
    if scope.attachments_root is not None and scope.attachments:
        root_fd = open_directory(Path(scope.attachments_root))
        try:
            for entry in iter_removal_order(scope.attachments):
                step = f"attachment:{entry.path}"
                if journal.state(step) != "done":
                    result = _destroy_entry(root_fd, entry, step, journal)
                    journal.record("done", step=step, **result)
                done += 1
                if progress:
                    progress("attachments", done, len(steps))
            os.fsync(root_fd)
        finally:
            os.close(root_fd)
    return figures_from_journal(scope, journal)


def figures_from_journal(scope: LiveScope, journal: PurgeJournal) -> DestructionFigures:
    """The purge's figures from its journal, so a resumed run counts what earlier runs did too."""
    figures = DestructionFigures()
    for record in journal.done_records():
        kind = record.get("kind")
        if kind == "database":
            figures.database_dropped = True
        elif kind == "database-file":
            figures.database_files_overwritten += 1
            figures.database_bytes_overwritten += int(record.get("bytes") or 0)
        elif kind == "file":
            if record.get("overwritten", True):
                figures.files_overwritten += 1
                figures.bytes_overwritten += int(record.get("bytes") or 0)
            else:
                figures.files_unlinked_only += 1
        elif kind == "link":
            figures.links_removed += 1
        elif kind == "directory":
            figures.directories_removed += 1
        elif kind == "special":
            figures.special_removed += 1
    if scope.engine == "sqlite" and figures.database_files_overwritten == len(scope.database_files):
        figures.database_dropped = True
    if figures.database_dropped:
        figures.tables_dropped, figures.objects_dropped = len(scope.tables), len(scope.objects)
    return figures


def shred_folder(root: Path) -> int:
    """Overwrite and remove everything under `root`, then `root` itself (the restore drill's private scratch,
    which holds decrypted legacy data). Returns the files shredded."""
    from .scope import walk_folder

    entries = walk_folder(root)
    root_fd = open_directory(root)
    shredded = 0
    try:
        for entry in iter_removal_order(entries):
            dir_fd, name = open_parent(root_fd, entry.path)
            try:
                if entry.kind == "file" and not entry.outside_links:
                    _overwrite(dir_fd, name, entry, f"scratch file {entry.path}")
                    shredded += 1
                if entry.kind == "directory":
                    os.rmdir(name, dir_fd=dir_fd)
                else:
                    os.unlink(name, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        os.close(root_fd)
    os.rmdir(root)
    return shredded
