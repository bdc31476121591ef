"""Shared helpers of the reconcile tests (no tests here): a demo site migrated, backed up and
reconciled once, on real databases, with real keys.

`make_site` generates a demo site (legacy + new system), loads it, backs it
up and runs the first reconciliation (the chain's baseline), as a site is
when its scheduled reconciliations start. `twin_site` generates the same
site again elsewhere: advanced with the same seeds, it is the legacy a
*fresh* full migration starts from.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from backups.backup import backup_site
from backups.chain import load_chain
from load import bookkeeping, target_schema
from load.site_load import load_site
from reconcile.site_reconcile import Reconciliation, reconcile_site
from reconcile.state import ReconcileState
from ts24_migrate.core.db import legacy_engine, store_engine
from ts24_migrate.core.keys import generate_custodian_identity
from ts24_migrate.core.secrets import Secret
from ts24_migrate.core.signing import SigningKey
from ts24_migrate.demo import generate_site
from ts24_migrate.demo.advance import AdvanceTruth, advance_site

SITE = "demo"
# Bookkeeping columns that name the run or the moment: they differ between two migrations.
RUN_COLUMNS = {"run_id", "loaded_at", "rejected_at", "detected_at", "done_at", "completed_at", "flagged_at"}


@dataclass
class ReconcileSite:
    folder: Path
    writable: sa.Engine  # the legacy database as TS24 itself writes it (the demo's advance)
    legacy: sa.Engine  # read-only, as the stages get it
    target: sa.Engine
    control: sa.Engine
    state: ReconcileState
    files: Path
    backups: Path
    identity: Path
    recipient: str
    signing: SigningKey
    truth: Any

    def reconcile(self, **options: Any) -> Reconciliation:
        options.setdefault("chunk_rows", 200)
        return reconcile_site(
            self.legacy,
            self.target,
            self.state,
            site_id=SITE,
            run_id=str(uuid.uuid4()),
            cutover=self.truth.cutover,
            attachments_dir=self.files,
            backup_root=self.backups,
            recipients=[self.recipient],
            signing_key=self.signing,
            **options,
        )

    def advance(self, **options: Any) -> AdvanceTruth:
        return advance_site(self.writable, self.target, self.files, **options)

    def chain(self):
        return load_chain(self.backups, SITE, self.state.chain(SITE))

    def dispose(self) -> None:
        for engine in (self.writable, self.legacy, self.target, self.control):
            engine.dispose()


def _generated(folder: Path, legacy_url: str, target_url: str, *, scale: float, seed: int):
    folder.mkdir(parents=True, exist_ok=True)
    writable = sa.create_engine(legacy_url)
    target = store_engine(Secret(target_url))
    truth = generate_site(writable, folder / "files", target=target, seed=seed, scale=scale)
    return writable, target, truth


def make_site(
    folder: Path,
    *,
    legacy_url: str,
    target_url: str,
    control_url: str,
    scale: float = 0.05,
    seed: int = 42,
    baseline: bool = True,
) -> ReconcileSite:
    writable, target, truth = _generated(folder, legacy_url, target_url, scale=scale, seed=seed)
    legacy = legacy_engine(Secret(legacy_url))
    load_site(
        legacy,
        target,
        site_id=SITE,
        run_id=str(uuid.uuid4()),
        cutover=truth.cutover,
        attachments_dir=folder / "files",
        chunk_rows=200,
    )
    identity = folder / "custodian.age-identity"
    recipient = generate_custodian_identity(identity)
    signing = SigningKey.generate()
    backup_site(
        legacy,
        folder / "files",
        folder / "backups",
        site_id=SITE,
        run_id=str(uuid.uuid4()),
        recipients=[recipient],
        signing_key=signing,
        chunk_rows=200,
    )
    control = store_engine(Secret(control_url))
    site = ReconcileSite(
        folder,
        writable,
        legacy,
        target,
        control,
        ReconcileState(control),
        folder / "files",
        folder / "backups",
        identity,
        recipient,
        signing,
        truth,
    )
    if baseline:
        site.reconcile()
    return site


def sqlite_site(tmp_path: Path, sqlite_url, *, baseline: bool = True) -> Iterator[ReconcileSite]:
    """A reconcile site on SQLite databases from the `sqlite_url` fixture, disposed of afterwards
    (the body of the test modules' `site` fixtures)."""
    made = make_site(
        tmp_path / "site",
        legacy_url=sqlite_url("legacy"),
        target_url=sqlite_url("target"),
        control_url=sqlite_url("control"),
        baseline=baseline,
    )
    yield made
    made.dispose()


def twin_site(folder: Path, *, legacy_url: str, target_url: str, scale: float = 0.05, seed: int = 42):
    """The same demo site generated again (legacy, files and new system), not loaded."""
    writable, target, truth = _generated(folder, legacy_url, target_url, scale=scale, seed=seed)
    return writable, target, truth


def fresh_migration(folder: Path, writable: sa.Engine, target: sa.Engine, legacy_url: str, truth: Any) -> None:
    legacy = legacy_engine(Secret(legacy_url))
    try:
        load_site(
            legacy,
            target,
            site_id=SITE,
            run_id=str(uuid.uuid4()),
            cutover=truth.cutover,
            attachments_dir=folder / "files",
            chunk_rows=200,
        )
    finally:
        legacy.dispose()


def table_contents(engine: sa.Engine, table: sa.Table) -> list[tuple]:
    """Every row of `table` without the run-specific columns, sorted."""
    columns = [c for c in table.columns if c.name not in RUN_COLUMNS]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*columns)).all()
    return sorted((tuple(r) for r in rows), key=repr)


def compared_tables() -> list[sa.Table]:
    """The new system's business tables and the migration's bookkeeping of what was loaded or rejected."""
    return [
        *target_schema.metadata.sorted_tables,
        bookkeeping.crosswalk,
        bookkeeping.rejects,
        bookkeeping.conflicts,
        bookkeeping.flags,
    ]


def reconcile_refused_by_the_new_system(site: ReconcileSite) -> None:
    """A reconcile whose target refuses writes (SQLite's query_only): it reads and chains the
    change, then fails before carrying it over, so the changed rows wait in the carry-over queue."""
    import pytest

    writable_target = site.target
    site.target = store_engine(Secret(str(writable_target.url)))
    sa.event.listen(site.target, "connect", lambda dbapi, _record: dbapi.execute("PRAGMA query_only = ON"))
    try:
        with pytest.raises(sa.exc.OperationalError, match="readonly"):
            site.reconcile()
    finally:
        site.target.dispose()
        site.target = writable_target
