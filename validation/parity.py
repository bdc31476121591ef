"""Parity: does the target still hold exactly the rows the load wrote for a site?

For every target table that receives TS24 rows, the lineage snapshot (one
(target_key, row_md5) per row the load wrote, kept in `mig_crosswalk`) is diffed against
the live table, whose row hash the database recomputes with the same
expression (load.row_hash). The diff runs by key ranges (validation.key_ranges):
one aggregate scan per side when nothing differs, and the exact keys when
something does:

- missing: in the lineage, gone from the target
- extra:   a `source='ts24'` row in the target that no crosswalk row explains
           (tables without `source`, i.e. offices, have none: only the rows the
           site's crosswalk knows are compared)
- changed: in both, but the row hash differs (edited behind the pipeline's back)

Each missing or changed key is reported with its target key and its legacy key
(from the crosswalk), so an auditor can find it on both sides.

Example::

    report = parity_for_site(target_engine, site_id="hn-01")
    report.exact                          # False
    report.tables["units"].changed        # [{'target_key': 17, 'legacy_key': 'DV0017'}]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from load.bookkeeping import crosswalk
from load.row_hash import register_sqlite_functions, row_md5
from load.target_map import TARGET_SPECS, TS24_SOURCE, TargetSpec
from ts24_migrate.core.errors import UsageError

from .key_ranges import DiffSide, KeyDiff, diff_by_key_ranges

# Target tables that receive rows from TS24 (re_registrations are filed on the new portal only).
TS24_TARGET_TABLES = tuple(TARGET_SPECS)
# Keys looked up per query when attaching legacy keys to the differences.
_LOOKUP_BATCH = 500


@dataclass
class TableParity:
    table: str
    lineage_rows: int  # rows the load recorded for this site
    target_rows: int  # rows of this site (and unexplained ts24 rows) in the live table
    missing: list[dict[str, Any]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    ranges_checked: int = 0
    rows_fetched: int = 0
    seconds: float = 0.0

    @property
    def exact(self) -> bool:
        return not (self.missing or self.extra or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "exact": self.exact,
            "lineage_rows": self.lineage_rows,
            "target_rows": self.target_rows,
            "missing": self.missing,
            "extra": self.extra,
            "changed": self.changed,
            "ranges_checked": self.ranges_checked,
            "rows_fetched": self.rows_fetched,
            "seconds": round(self.seconds, 3),
        }


# Why the report has no per-column aggregates: said in the report itself.
AGGREGATES_NOTE = (
    "per-column aggregates are not compared: the load records none, and recomputing them "
    "from the source would mean transforming it again; the row-hash diff checks every "
    "value of every loaded row instead"
)


@dataclass
class ParityReport:
    site_id: str
    tables: dict[str, TableParity]
    notes: list[str] = field(default_factory=lambda: [AGGREGATES_NOTE])

    @property
    def exact(self) -> bool:
        return all(t.exact for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "exact": self.exact,
            "differences": sum(len(t.missing) + len(t.extra) + len(t.changed) for t in self.tables.values()),
            "tables": {name: t.to_dict() for name, t in self.tables.items()},
            "notes": list(self.notes),
        }


def _spec(table_name: str) -> TargetSpec:
    if table_name not in TARGET_SPECS:
        raise UsageError(
            f"{table_name!r} is not a target table that receives TS24 rows (one of: {', '.join(TARGET_SPECS)})"
        )
    return TARGET_SPECS[table_name]


def _lineage_side(spec: TargetSpec, site_id: str) -> DiffSide:
    lineage_key = sa.cast(crosswalk.c.target_key, sa.BigInteger) if spec.surrogate else crosswalk.c.target_key
    return DiffSide(
        key=lineage_key,
        md5=crosswalk.c.row_md5,
        where=sa.and_(crosswalk.c.target_table == spec.name, crosswalk.c.site_id == site_id),
    )


def _known_to_site(bookkeeping: sa.Table, spec: TargetSpec, site_id: str) -> sa.ColumnElement[bool]:
    return sa.exists().where(
        bookkeeping.c.target_table == spec.name,
        bookkeeping.c.target_key == sa.cast(spec.key, sa.String),
        bookkeeping.c.site_id == site_id,
    )


def _target_side(conn: Connection, spec: TargetSpec, site_id: str) -> DiffSide:
    table, key = spec.table, spec.key
    if "source" not in table.c:
        # Nothing tells a TS24 row from one the new system holds itself (offices): only the rows
        # this site's crosswalk knows are compared, so an unknown row is not claimed.
        where = _known_to_site(crosswalk, spec, site_id)
    else:
        where = table.c.source == TS24_SOURCE
        # Rows another site loaded belong to that site's parity. Checked once, so that a target
        # holding a single site pays nothing for the exclusion.
        other_site = conn.execute(
            sa.select(sa.literal(1))
            .where(crosswalk.c.target_table == spec.name, crosswalk.c.site_id != site_id)
            .limit(1)
        ).first()
        if other_site is not None:
            where = sa.and_(
                where,
                ~sa.exists().where(
                    crosswalk.c.target_table == spec.name,
                    crosswalk.c.target_key == sa.cast(key, sa.String),
                    crosswalk.c.site_id != site_id,
                ),
            )
    return DiffSide(key=key, md5=row_md5(conn.dialect.name, spec.hashed_columns()), where=where)


def _legacy_keys(conn: Connection, table_name: str, target_keys: list[Any], site_id: str) -> dict[str, str]:
    """target_key (as text) -> legacy_key, from the site's crosswalk."""
    found: dict[str, str] = {}
    texts = [str(k) for k in target_keys]
    for i in range(0, len(texts), _LOOKUP_BATCH):
        query = sa.select(crosswalk.c.target_key, crosswalk.c.legacy_key).where(
            crosswalk.c.target_table == table_name,
            crosswalk.c.target_key.in_(texts[i : i + _LOOKUP_BATCH]),
            crosswalk.c.site_id == site_id,
        )
        found.update(conn.execute(query).tuples().all())
    return found


def _with_legacy_keys(conn: Connection, spec: TargetSpec, diff: KeyDiff, site_id: str, parity: TableParity) -> None:
    legacy_keys = _legacy_keys(conn, spec.name, diff.missing + diff.changed, site_id)
    parity.missing = [{"target_key": k, "legacy_key": legacy_keys.get(str(k))} for k in diff.missing]
    parity.changed = [{"target_key": k, "legacy_key": legacy_keys.get(str(k))} for k in diff.changed]
    # An extra row is one no crosswalk row of any site explains: it has no legacy key to show.
    parity.extra = [{"target_key": k, "legacy_key": None} for k in diff.extra]


def _snapshot(conn: Connection) -> Connection:
    # Both sides and the follow-up lookups read one snapshot, so a load running meanwhile
    # cannot show up as a difference.
    if conn.dialect.name == "postgresql":
        return conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def _check_target(target: Engine, spec: TargetSpec) -> None:
    if target.dialect.name not in ("postgresql", "sqlite"):
        raise UsageError(f"parity runs on a PostgreSQL or SQLite target, not {target.dialect.name}")
    inspector = sa.inspect(target)
    for name in (spec.name, crosswalk.name):
        if not inspector.has_table(name):
            raise UsageError(f"the target database has no table {name!r}: nothing was loaded into it yet")


def parity_for_table(
    target: Engine, table_name: str, *, site_id: str, max_buckets: int = 8192, leaf_rows: int = 20_000
) -> TableParity:
    """Diff one target table against the site's lineage; see the module docstring.

    max_buckets and leaf_rows tune the range diff (validation.key_ranges).
    """
    spec = _spec(table_name)
    _check_target(target, spec)
    register_sqlite_functions(target)
    started = time.perf_counter()
    with target.connect() as conn:
        conn = _snapshot(conn)
        with conn.begin():
            diff = diff_by_key_ranges(
                conn,
                _lineage_side(spec, site_id),
                _target_side(conn, spec, site_id),
                integer_keys=spec.surrogate,
                max_buckets=max_buckets,
                leaf_rows=leaf_rows,
            )
            parity = TableParity(
                table=table_name,
                lineage_rows=diff.left_rows,
                target_rows=diff.right_rows,
                ranges_checked=diff.ranges_checked,
                rows_fetched=diff.rows_fetched,
            )
            _with_legacy_keys(conn, spec, diff, site_id, parity)
    parity.seconds = time.perf_counter() - started
    return parity


def parity_for_site(
    target: Engine, *, site_id: str, tables: tuple[str, ...] = TS24_TARGET_TABLES, **options: Any
) -> ParityReport:
    """Parity of every target table that receives TS24 rows, for one site."""
    return ParityReport(
        site_id=site_id, tables={name: parity_for_table(target, name, site_id=site_id, **options) for name in tables}
    )
