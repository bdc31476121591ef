"""Errors classified once: every user-facing failure maps to one exit code.

Stage code raises these; the CLI turns them into one clear line and the exit
code below (the same with --debug and --json), and Prefect retries only the
transient ones (`is_transient`). `classify` is the one place where failures
raised by Python, the OS or a database driver get their class: a folder we
may not write, a login the server refused, a connection lost, a lock not
granted in time, Ctrl-C.
Anything it does not know is a bug (exit 70).

This module imports nothing heavy: the CLI loads it before any command runs.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Sequence
from pathlib import Path


class ExitCode:
    OK = 0
    VERDICT_FAILED = 1  # the work ran, and what it checked does not hold
    USAGE = 2  # bad arguments, bad inventory, missing secret, refused login
    UNREACHABLE = 3  # a database or folder could not be reached (or written)
    REFUSED = 4  # a safety gate refused the operation
    INTERNAL = 70  # a bug: rerun with --debug and report it
    INTERRUPTED = 130  # Ctrl-C (SIGINT): stopped at a safe point; a re-run resumes


class Ts24Error(Exception):
    """Base of every error that is the user's to fix; carries its exit code."""

    exit_code = ExitCode.INTERNAL
    # Whether running the same thing again, unchanged, may succeed: Prefect retries only these.
    transient = False


class ConfigError(Ts24Error):
    """The inventory or a secret reference is wrong."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, path: str | None = None, site: str | None = None, field: str | None = None):
        where = []
        if path:
            where.append(str(path))
        if site:
            where.append(f"site {site}")
        if field:
            where.append(f"field {field}")
        prefix = ": ".join([", ".join(where)]) + ": " if where else ""
        super().__init__(prefix + message)
        self.path, self.site, self.field = path, site, field


class LoginRefused(ConfigError):
    """A server answered and refused the credentials (or the driver is unknown): fix the secret, not the network."""


class UnreachableError(Ts24Error):
    """A database, folder or Prefect server could not be reached (transient)."""

    exit_code = ExitCode.UNREACHABLE
    transient = True


class FolderUnusable(UnreachableError):
    """One of our folders (work, backup, reports) cannot be written or read: permissions, a read-only
    or full file system. Exit code 3 like any unreachable place, but not retried: it does not heal
    by itself."""

    transient = False

    def __init__(self, message: str, *, folder: Path | None = None):
        super().__init__(message)
        self.folder = folder  # None when the failure did not say which (a SQLite message)


class VerificationError(Ts24Error):
    """Something we checked (signature, hash, count, ledger) does not hold."""

    exit_code = ExitCode.VERDICT_FAILED

    def __init__(self, message: str, *, problems: Sequence[str] = ()):
        super().__init__(message)
        # Every problem the check found, the message naming the first: a command lists the others.
        self.problems: tuple[str, ...] = tuple(problems)


class GateRefused(Ts24Error):
    """A safety gate (e.g. a purge precondition) refused the operation."""

    exit_code = ExitCode.REFUSED


class UsageError(Ts24Error):
    exit_code = ExitCode.USAGE


class Interrupted(Ts24Error):
    """Ctrl-C (SIGINT): the work stopped at a safe point; running it again resumes."""

    exit_code = ExitCode.INTERRUPTED


# errno values that say "this folder cannot be used", not "the program is wrong".
_FOLDER_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EIO}
# SQLite's words for a database file it may not write (its folder is read-only, full or gone).
_SQLITE_FOLDER_MESSAGES = (
    "attempt to write a readonly database",
    "unable to open database file",
    "database or disk is full",
    "disk i/o error",
)
# A server that answered and refused the login: SQLSTATE class 28 (PostgreSQL, MariaDB, SQL Server);
# an ODBC driver manager that does not know the driver or DSN (IM002).
_LOGIN_SQLSTATES = ("28", "IM002")
_LOGIN_MESSAGES = (
    "password authentication failed",
    "access denied for user",
    "login failed for user",
    "no pg_hba.conf entry",
    "data source name not found",
)


# A connection lost or not granted now (SQLSTATE class 08, a server shutting down or starting up), or a
# lock not granted in time or given up to break a deadlock: the same work, run again, may succeed.
_TRANSIENT_SQLSTATES = ("08", "57P01", "57P02", "57P03", "55P03", "40P01", "40001")
_LOCK_MESSAGES = (
    "lock wait timeout exceeded",  # MariaDB / MySQL 1205 (SQLSTATE HY000)
    "deadlock found when trying to get lock",  # MariaDB / MySQL 1213
    "database is locked",  # SQLite: another process held its lock longer than the busy timeout
    "database table is locked",
    "lock timeout",  # SQL Server 1222
)


def _driver_error(exc: BaseException) -> BaseException:
    return getattr(exc, "orig", None) or exc


def _sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a driver error: psycopg's `.sqlstate`, pyodbc's first argument."""
    orig = _driver_error(exc)
    state = getattr(orig, "sqlstate", None)
    if not state and orig.args and isinstance(orig.args[0], str) and len(orig.args[0]) == 5:
        state = orig.args[0]
    return state or ""


def _first_line(exc: BaseException) -> str:
    text = str(_driver_error(exc)).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def is_login_refused(exc: BaseException) -> bool:
    """Did the database server refuse the credentials (a configuration error, never worth a retry)?"""
    state = _sqlstate(exc)
    if any(state.startswith(prefix) for prefix in _LOGIN_SQLSTATES):
        return True
    return any(words in _first_line(exc).lower() for words in _LOGIN_MESSAGES)


def _folder_of(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def classify(exc: BaseException) -> Ts24Error | None:
    """The Ts24Error this failure is (a new one carrying a one-line, secret-free message), or None
    for a bug. `exc` itself is returned when it is already a Ts24Error."""
    if isinstance(exc, Ts24Error):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted("interrupted; run the same command again to resume")
    if isinstance(exc, OSError) and exc.errno in _FOLDER_ERRNOS and exc.filename:
        path = Path(exc.filename)
        folder = _folder_of(path)
        return FolderUnusable(f"folder {folder}: {exc.strerror or type(exc).__name__} ({path})", folder=folder)
    sa_exc = sys.modules.get("sqlalchemy.exc")  # a SQLAlchemy error is only possible once it is imported
    if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError):
        from .secrets import redact_url

        detail = redact_url(_first_line(exc))
        if type(_driver_error(exc)).__module__ == "sqlite3" and any(
            words in detail.lower() for words in _SQLITE_FOLDER_MESSAGES
        ):
            return FolderUnusable(f"a SQLite database file cannot be written: {detail}")
        if is_login_refused(exc):
            return LoginRefused(f"the database server refused the login: {detail}")
        if exc.connection_invalidated or _sqlstate(exc).startswith("08"):
            return UnreachableError(f"the database connection was lost: {detail}; run it again to resume")
        if any(_sqlstate(exc).startswith(state) for state in _TRANSIENT_SQLSTATES) or any(
            words in detail.lower() for words in _LOCK_MESSAGES
        ):
            return UnreachableError(f"the database is busy (a lock was not granted): {detail}; run it again to resume")
    return None


def documented_class(error: Ts24Error) -> str:
    """The error's class as the README documents it for --json: a subclass a stage defines for its own
    use (a refusal of one stage, a part that exists) is named by the documented class above it."""
    for cls in type(error).__mro__:
        if cls.__module__ == __name__ and issubclass(cls, Ts24Error) and cls is not Ts24Error:
            return cls.__name__
    return type(error).__name__


def is_transient(exc: BaseException) -> bool:
    """Worth retrying unchanged (Prefect's retry condition): an unreachable server, a lost connection or a
    lock not granted in time."""
    known = classify(exc)
    return known is not None and known.transient
