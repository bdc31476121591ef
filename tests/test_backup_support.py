"""Shared helpers of the extract/backup tests (no tests here): a demo site, keys, row readers."""

from __future__ import annotations

import decimal
import sqlite3
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from backups.backup import BackupResult, backup_site
from backups.restore import read_restored_table
from extract.discovery import discover_tables
from extract.extraction import as_stored
from extract.reader import iter_table_rows
from ts24_migrate.core.db import legacy_engine
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.rows.arrow_types import stored_value
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.signing import SigningKey


@dataclass
class Keys:
    identity: Path
    recipient: str
    signing: SigningKey


def make_keys(folder: Path, name: str = "custodian") -> Keys:
    identity = folder / f"{name}.age-identity"
    recipient = generate_custodian_identity(identity)
    return Keys(identity, recipient, SigningKey.generate())


@dataclass
class DemoSite:
    url: str
    legacy: sa.Engine  # read-only, as the backup gets it
    attachments: Path
    truth: dict[str, Any]


def make_demo_site(folder: Path, url: str, *, scale: float = 0.05, seed: int = 42) -> DemoSite:
    from ts24_migrate.demo import generate_site

    writable = sa.create_engine(url)
    try:
        truth = generate_site(writable, folder / "files", seed=seed, scale=scale)
    finally:
        writable.dispose()
    return DemoSite(url, legacy_engine(Secret(url)), folder / "files", truth.to_dict())


def run_backup(site: DemoSite, root: Path, keys: Keys, **options: Any) -> BackupResult:
    options.setdefault("chunk_rows", 60)
    options.setdefault("recipients", [keys.recipient])
    return backup_site(
        site.legacy,
        site.attachments,
        root,
        site_id="demo",
        run_id=str(uuid.uuid4()),
        signing_key=keys.signing,
        **options,
    )


def typed(row: tuple) -> tuple:
    """A row as (type, exact form) pairs, so 1 and 1.0, 'x' and b'x', 0.0 and -0.0 never compare equal
    (decimals by value: a DECIMAL(p, s) column gives them its scale)."""
    return tuple((type(v).__name__, v if isinstance(v, decimal.Decimal) else stored_value(v)) for v in row)


def source_rows(engine: sa.Engine) -> dict[str, Counter]:
    """Every table of a legacy database as a multiset of typed rows, read as the backup reads them."""
    result = {}
    with engine.connect() as conn:
        for table in discover_tables(conn):
            rows: Counter = Counter()
            for chunk in iter_table_rows(conn, as_stored(table), chunk_rows=500):
                rows.update(typed(r) for r in chunk)
            result[table.name] = rows
    return result


def restored_rows(engine: sa.Engine, manifest_tables: dict[str, dict[str, Any]]) -> dict[str, Counter]:
    result = {}
    with engine.connect() as conn:
        for name, entry in manifest_tables.items():
            rows: Counter = Counter()
            for chunk in read_restored_table(conn, entry, chunk_rows=500):
                rows.update(typed(r) for r in chunk)
            result[name] = rows
    return result


def folder_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def sqlite_legacy(path: Path, *statements: str) -> str:
    """A SQLite legacy database made of `statements` (DDL and inserts); returns its URL."""
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement)
    return f"sqlite:///{path}"
