"""Errors classified once: every user-facing failure maps to one exit code.

Stage code raises these; the CLI turns them into one clear line and the exit
code below, and Prefect retries only the transient ones.
"""

from __future__ import annotations


class ExitCode:
    OK = 0
    VERDICT_FAILED = 1  # the work ran, and what it checked does not hold
    USAGE = 2  # bad arguments, bad inventory, missing secret
    UNREACHABLE = 3  # a database or folder could not be reached
    REFUSED = 4  # a safety gate refused the operation
    INTERNAL = 70  # a bug: rerun with --debug and report it


class Ts24Error(Exception):
    """Base of every error that is the user's to fix; carries its exit code."""

    exit_code = ExitCode.INTERNAL


class ConfigError(Ts24Error):
    """The inventory or a secret reference is wrong."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, path: str | None = None, site: str | None = None,
                 field: str | None = None):
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


class UnreachableError(Ts24Error):
    """A database, folder or Prefect server could not be reached (transient)."""

    exit_code = ExitCode.UNREACHABLE


class VerificationError(Ts24Error):
    """Something we checked (signature, hash, count, ledger) does not hold."""

    exit_code = ExitCode.VERDICT_FAILED


class GateRefused(Ts24Error):
    """A safety gate (e.g. a purge precondition) refused the operation."""

    exit_code = ExitCode.REFUSED


class UsageError(Ts24Error):
    exit_code = ExitCode.USAGE
