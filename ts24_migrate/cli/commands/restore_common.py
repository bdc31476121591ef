"""What `backup restore` and `reconcile restore-chain` share: the scratch target and the output."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ts24_migrate.core.errors import ConfigError, UsageError, VerificationError
from ts24_migrate.core.secrets import Secret

COMMANDS: list = []  # helpers only; no command here


def restore_options(command):
    """The options every restore command takes: who decrypts, and where the copy goes."""
    options = [
        click.option(
            "--identity",
            required=True,
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            help="A custodian's age identity file.",
        ),
        click.option(
            "--into-sqlite",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Restore the tables into this new SQLite file.",
        ),
        click.option(
            "--into-url-env",
            metavar="VAR",
            help="Restore into the database whose URL is in environment variable VAR (e.g. PostgreSQL).",
        ),
        click.option(
            "--files",
            "files_dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Empty folder to rebuild the attachment files in.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def scratch_url(into_sqlite: Path | None, into_url_env: str | None) -> Secret:
    """The scratch database to restore into: a NEW SQLite file, or a URL kept in an environment variable."""
    if (into_sqlite is None) == (into_url_env is None):
        raise UsageError("give exactly one of --into-sqlite FILE or --into-url-env VAR")
    if into_sqlite is not None:
        if into_sqlite.exists() and into_sqlite.stat().st_size > 0:
            raise UsageError(f"{into_sqlite} already exists: restore into a new SQLite file")
        return Secret(f"sqlite:///{into_sqlite.resolve()}")
    value = os.environ.get(into_url_env or "")
    if not value:
        raise ConfigError(f"environment variable {into_url_env} is not set")
    return Secret(value)


def restored_lines(
    tables: dict[str, dict[str, Any]],
    files: dict[str, Any] | None,
    objects: dict[str, dict[str, Any]] | None = None,
    live_note: str | None = None,
) -> list[str]:
    """Per-table rows, the attachment files and the objects of a restore (a backup's or a chain's, as
    the restore reports them), each marked against the live source."""
    marks = {True: "= live", False: "differs from live", None: ""}
    lines = [
        f"  {name:<24} {table['rows']:>10} rows  {marks[table['matches_live']]}"
        for name, table in sorted(tables.items())
    ]
    if files:
        lines.append(f"  {'attachments':<24} {files['files']:>10} files {marks[files['matches_live']]}")
    for key, entry in sorted((objects or {}).items()):
        state = (
            "recreated, = its fingerprint"
            if entry["recreated"] and entry["matches_manifest"]
            else (entry["note"] or "not recreated")
        )
        lines.append(f"  {key:<24} {state} {marks[entry['matches_live']]}".rstrip())
    if live_note:
        lines.append(f"  {live_note}")
    return lines


def print_problems(exc: VerificationError) -> None:
    """The first problem is the error line itself; list the others."""
    for problem in exc.problems[1:]:
        click.echo(f"  problem: {problem}", err=True)
