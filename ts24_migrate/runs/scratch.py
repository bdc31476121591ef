"""Where a restore check writes, made whole or not at all.

A restore writes a plaintext copy of legacy data. When it fails, or finds a
difference, what it wrote must neither stay behind (it is personal data in
clear) nor block the retry (restores refuse a database or folder that is not
empty). So:

- a new SQLite file is written under a hidden temporary name next to it and
  renamed to the name asked for only when the restore matched;
- the attachment folder likewise (an empty folder asked for is replaced);
- in another database (e.g. PostgreSQL), the tables the restore created are
  dropped again after a failure.

`Scratch.cleanup_note` says what was removed, for the error message.

Example::

    with scratch_output(url, Path("/tmp/files"), tables=manifest.tables) as scratch:
        report = restore_backup(backup_dir, identity, scratch.engine, scratch.files_dir, ...)
        if not report.ok:
            raise VerificationError(...)      # the partial output is deleted, and the error says so
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ts24_migrate.core.db import check_reachable, parse_url, store_engine
from ts24_migrate.core.errors import Ts24Error, UsageError
from ts24_migrate.core.secrets import Secret


@dataclass
class Scratch:
    engine: Engine
    files_dir: Path | None
    removed: list[str] = field(default_factory=list)  # what a failed restore had written, now deleted

    @property
    def cleanup_note(self) -> str:
        return (
            f"the partial restore ({', '.join(self.removed)}) was deleted, so the same command can run again"
            if self.removed
            else ""
        )


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")  # fixed: a killed run's leftovers are found again


@contextmanager
def scratch_output(into_url: Secret, files_dir: Path | None, *, tables: Iterable[str]) -> Iterator[Scratch]:
    parsed = parse_url(into_url, what="scratch database")
    sqlite_file = Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None
    if files_dir is not None and files_dir.exists() and (not files_dir.is_dir() or any(files_dir.iterdir())):
        raise UsageError(f"{files_dir} is not empty: restore attachments into an empty folder")
    url = into_url
    if sqlite_file is not None:
        temporary_db = _temporary(sqlite_file)
        for leftover in (temporary_db, *(temporary_db.with_name(temporary_db.name + s) for s in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)  # from a run of ours that was killed
        url = Secret(parsed.set(database=str(temporary_db)).render_as_string(hide_password=False))
    temporary_files = _temporary(files_dir) if files_dir is not None else None
    if temporary_files is not None and temporary_files.exists():
        shutil.rmtree(temporary_files)
    engine = store_engine(url)
    check_reachable(engine, what="scratch database", url=url)
    existing = set(sa.inspect(engine).get_table_names())
    scratch = Scratch(engine, temporary_files)
    try:
        yield scratch
    except BaseException as exc:
        engine.dispose()
        _remove_partial(scratch, sqlite_file, into_url, set(tables) - existing)
        if scratch.removed:
            _tell(exc, scratch.cleanup_note)
        raise
    engine.dispose()
    if sqlite_file is not None:
        _single_file(temporary_db)
        os.replace(temporary_db, sqlite_file)
    if temporary_files is not None and files_dir is not None and temporary_files.exists():
        if files_dir.exists():
            files_dir.rmdir()  # empty, as checked above
        os.replace(temporary_files, files_dir)


def _single_file(database: Path) -> None:
    """Fold SQLite's write-ahead log into the file, so the file renamed is the whole database."""
    conn = sqlite3.connect(database)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


def _tell(exc: BaseException, note: str) -> None:
    """Add `note` to the one line the CLI prints for `exc` (a Ts24Error), or as a note otherwise."""
    if isinstance(exc, Ts24Error) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        exc.args = (f"{exc.args[0]}; {note}",)
    else:
        exc.add_note(note)


def _remove_partial(scratch: Scratch, sqlite_file: Path | None, into_url: Secret, created: set[str]) -> None:
    if sqlite_file is not None:
        temporary_db = _temporary(sqlite_file)
        if temporary_db.exists():
            scratch.removed.append(f"database copy for {sqlite_file.name}")
        for path in (temporary_db, *(temporary_db.with_name(temporary_db.name + s) for s in ("-wal", "-shm"))):
            path.unlink(missing_ok=True)
    elif created:
        engine = store_engine(into_url)
        try:
            present = set(sa.inspect(engine).get_table_names()) & created
            if present:
                metadata = sa.MetaData()
                for name in sorted(present):
                    sa.Table(name, metadata)
                with engine.begin() as conn:
                    metadata.drop_all(conn)
                scratch.removed.append(f"{len(present)} table(s) in the scratch database")
        finally:
            engine.dispose()
    if scratch.files_dir is not None and scratch.files_dir.exists():
        shutil.rmtree(scratch.files_dir)
        scratch.removed.append("attachment files")
