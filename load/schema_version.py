"""Create and upgrade the target database: business tables and migration bookkeeping.

Schema changes are numbered steps applied in order, each in its own
transaction, and recorded in mig_schema_version (like Alembic's version table
or sqlite-utils' _sqlite_migrations). A database already at the latest step
is left alone; one made by a newer release of the tool is refused rather
than written with an older idea of its shape.

A step must be safe on a database whose tables already exist (the demo
generator, or the new system itself, creates the business tables first):
step 1 creates only what is missing.

Example::

    prepare_target(target_engine)
    schema_version_of(target_engine)   # 1
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ts24_migrate import __version__
from ts24_migrate.core.errors import ConfigError

from . import bookkeeping, target_schema
from .transactions import write_transaction


@dataclass(frozen=True)
class SchemaStep:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_tables(conn: Connection) -> None:
    target_schema.metadata.create_all(conn, checkfirst=True)
    bookkeeping.metadata.create_all(conn, checkfirst=True)


def _drop_crosswalk_target_index(conn: Connection) -> None:
    conn.execute(sa.text("DROP INDEX IF EXISTS ix_mig_crosswalk_target"))


def _create_flags(conn: Connection) -> None:
    bookkeeping.flags.create(conn, checkfirst=True)


def _lineage_into_crosswalk(conn: Connection) -> None:
    """Step 4: one bookkeeping row per loaded legacy row (see lineage_merge)."""
    from .lineage_merge import merge_lineage_into_crosswalk

    merge_lineage_into_crosswalk(conn)


SCHEMA_STEPS: tuple[SchemaStep, ...] = (
    SchemaStep(
        1,
        "business tables and migration bookkeeping (crosswalk, lineage, rejects, conflicts, load ledger)",
        _create_tables,
    ),
    SchemaStep(
        2,
        "mig_crosswalk without its (target_table, target_key) index: mig_lineage's key serves that lookup",
        _drop_crosswalk_target_index,
    ),
    SchemaStep(3, "mig_flags: the flagged values of loaded rows (field, original, value loaded)", _create_flags),
    SchemaStep(
        4,
        "mig_lineage merged into mig_crosswalk: one bookkeeping row per loaded legacy row, indexed by target row; "
        "lineage rows of target rows written again since are kept in mig_lineage_superseded",
        _lineage_into_crosswalk,
    ),
)

LATEST_VERSION = SCHEMA_STEPS[-1].version
_UPGRADE_LOCK_ID = 0x7473_3234  # 'ts24'


def schema_version_of(bind: Engine | Connection) -> int:
    """The highest schema step applied to this database (0 when none)."""
    if not sa.inspect(bind).has_table(bookkeeping.schema_version.name):
        return 0
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return schema_version_of(conn)
    version: int = bind.execute(
        sa.select(sa.func.coalesce(sa.func.max(bookkeeping.schema_version.c.version), 0))
    ).scalar_one()
    return version


def prepare_target(target: Engine, *, steps: tuple[SchemaStep, ...] = SCHEMA_STEPS) -> list[int]:
    """Bring the target database to the latest schema; returns the versions applied now.

    Raises ConfigError when the database is newer than this tool.
    """
    latest = steps[-1].version
    applied: list[int] = []
    for step in steps:
        with write_transaction(target) as conn:
            if conn.dialect.name == "postgresql":
                # Sites of a fleet load into one target at once: let one of them upgrade it.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_UPGRADE_LOCK_ID)))
            # The version table is created outside the steps: it records them.
            bookkeeping.schema_version.create(conn, checkfirst=True)
            current = schema_version_of(conn)
            if current > latest:
                raise ConfigError(
                    f"target database schema is at version {current}, newer than this ts24-migrate "
                    f"({__version__}) knows ({latest}); upgrade ts24-migrate"
                )
            if step.version <= current:
                continue
            step.apply(conn)
            conn.execute(
                bookkeeping.schema_version.insert().values(
                    version=step.version,
                    description=step.description,
                    tool_version=__version__,
                    applied_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                )
            )
            applied.append(step.version)
    return applied
