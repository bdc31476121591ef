"""Files that hold legacy data are readable by their owner only: folders 0700, files 0600.

Reports, Data Docs, the SQLite target and control store, the ledger, scratch
restores and backup folders all hold legacy data (or describe it). The
process umask is often 022, which would leave them readable by every account
on the pipeline host, so modes are set explicitly where a file or folder is
made, never left to the umask. Great Expectations writes its Data Docs with
the umask: `make_tree_private` fixes them up after it has written.

Example::

    folder = private_dir(Path("work/sites/hn-01/reports/run-1"))   # missing folders made 0700
    write_private_text(folder / "report.json", "{}")               # 0600
    make_tree_private(folder / "data-docs")                         # after another library wrote it
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")  # files SQLite keeps next to a database


def make_private_dirs(path: Path) -> Path:
    """Create `path` and its missing parents, each one made here 0700; folders that exist are left as
    they are (a scratch restore into /tmp/x must never touch /tmp)."""
    path = Path(path)
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process; its maker sets its mode
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode is filtered by the umask
    return path


def private_dir(path: Path) -> Path:
    """`path` as a folder of the tool's own: made (with missing parents) 0700, or tightened to 0700."""
    path = make_private_dirs(path)
    _tighten(path, FOLDER_MODE)
    return path


def _tighten(path: Path, mode: int) -> None:
    """Take away what `mode` does not grant (group and others), never add a right: a folder an
    operator made read-only stays read-only, and the write then fails as it should."""
    info = path.lstat()
    current = stat.S_IMODE(info.st_mode)
    tightened = current & mode
    if stat.S_ISLNK(info.st_mode) or tightened == current:
        return
    if info.st_uid == os.geteuid():
        os.chmod(path, tightened)


def write_private_bytes(path: Path, data: bytes) -> Path:
    """Write `data` into `path` (replacing it), mode 0600 whatever the umask and whatever it was."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # an existing file keeps its old mode through O_CREAT
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            handle.write(data)
    finally:
        if fd >= 0:
            os.close(fd)
    return path


def write_private_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    return write_private_bytes(path, text.encode(encoding))


def make_tree_private(root: Path) -> None:
    """Every folder under `root` (and `root`) 0700, every file 0600; links are neither followed nor
    changed. For trees another library wrote with the umask (Great Expectations' Data Docs)."""
    root = Path(root)
    if not root.exists():
        return
    _tighten(root, FOLDER_MODE if root.is_dir() and not root.is_symlink() else FILE_MODE)
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs:
            _tighten(Path(folder) / name, FOLDER_MODE)
        for name in files:
            _tighten(Path(folder) / name, FILE_MODE)


def private_sqlite_file(path: Path) -> Path:
    """A SQLite database file readable by its owner only, before SQLite opens it.

    SQLite makes its -wal, -shm and -journal files with the database file's own
    mode, so a 0600 database keeps them 0600; companions left by an earlier,
    laxer run are tightened too.
    """
    path = Path(path)
    make_private_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.fchmod(fd, FILE_MODE)
        os.close(fd)
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in SQLITE_COMPANIONS)):
        if candidate.exists():
            _tighten(candidate, FILE_MODE)
    return path


def loose_modes(root: Path) -> list[tuple[Path, int]]:
    """(path, mode) of every folder under `root` not 0700 and every file not 0600 (links skipped)."""
    found = []
    root = Path(root)
    for path in [root, *root.rglob("*")] if root.exists() else []:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue
        wanted = FOLDER_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
        if stat.S_IMODE(info.st_mode) != wanted:
            found.append((path, stat.S_IMODE(info.st_mode)))
    return found
