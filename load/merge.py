"""Merge one staged chunk into a business table, with its bookkeeping, in set-based SQL.

Every statement works on the whole chunk at once (no per-row round trips),
and the same statements run on PostgreSQL and SQLite:

0. a file or history row's dossier: its new key is looked up in the
   crosswalk once per distinct dossier of the chunk, and its row in the
   dossiers table, locked (load.parent_keys): the foreign key checked as a set;
1. the plan: one INSERT ... SELECT decides, for every staged row, with outer
   joins on the crosswalk (by legacy key, and by target row: its owner) and the
   business table:
   - a file or history row whose dossier was not loaded (rejected, or in
     conflict) is rejected: PARENT_NOT_LOADED;
   - a legacy key loaded before (crosswalk) updates its row: a re-run;
   - a natural key (unit_code, ...) the new system already holds:
     - changed after the cut-over, and not written by the migration: left
       alone and reported, CONFLICT_CHANGED_AFTER_CUTOVER;
     - written for another site (or legacy table): CONFLICT_OTHER_SITE;
     - written for another legacy key of this site, or twice in the chunk:
       DUPLICATE_TARGET_KEY;
     - otherwise (held before the cut-over) taken over: TS24 is the reference;
   - anything else is inserted, with a new key from the table's sequence
     (PostgreSQL) or max + n (SQLite, whose single writer makes that safe);
   The plan table carries the staged values along, so every statement after
   it reads that one table (no join back to the stage). When only the parent
   decides (a fresh load's files and history: every row is new), Python
   writes the plan itself, with keys drawn from the sequence in one query,
   and there is no stage;
2. the business rows: INSERT the new, UPDATE the others (source = 'ts24');
   for files and history, without the per-row foreign-key checks where the
   database role permits (load.foreign_keys): step 0 proved the key;
3. one crosswalk row per written row, with its lineage: the run, the legacy
   row hash and the row hash the target computes over the row as written
   (load.row_hash); rejects and conflicts.

The caller owns the transaction: the chunk, its bookkeeping and its ledger
row commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import REGCLASS
from sqlalchemy.engine import Connection
from sqlalchemy.sql.selectable import NamedFromClause  # what .alias() gives: a FROM with a name

from . import foreign_keys, reasons, staging
from .bookkeeping import LINEAGE_COLUMNS, conflicts, crosswalk, rejects
from .parent_keys import parent_ids
from .row_hash import row_md5
from .target_map import TS24_SOURCE, TargetSpec

INSERT, UPDATE, REJECT = "insert", "update", "reject"
_WRITTEN = (INSERT, UPDATE)

_REASON_MESSAGES = {
    reasons.CONFLICT_CHANGED_AFTER_CUTOVER: "the new system changed this row after the cut-over; not overwritten",
    reasons.CONFLICT_OTHER_SITE: "the new system's row was loaded from another site or legacy table; not overwritten",
    reasons.DUPLICATE_TARGET_KEY: "another legacy row of this site already holds this key in the new system",
    reasons.PARENT_NOT_LOADED: "the dossier of this row was not loaded, or the new system no longer holds it",
}


@dataclass
class ChunkOutcome:
    """What happened to the rows of one chunk (after the transform)."""

    loaded: int = 0
    inserted: int = 0
    rejects_by_reason: Counter[str] = field(default_factory=Counter)
    conflicts: int = 0
    # How the rows' foreign key was checked beyond the set-based check (load.foreign_keys); None: no parent.
    foreign_key_checks: str | None = None

    @property
    def rejected(self) -> int:
        return sum(self.rejects_by_reason.values())


def upsert(conn: Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the target must be PostgreSQL or SQLite, not {conn.dialect.name}")


def _decision_columns(spec: TargetSpec) -> list[sa.Column[Any]]:
    columns: list[sa.Column[Any]] = [
        sa.Column("stage_seq", sa.Integer, nullable=False),
        sa.Column("action", sa.String(8), nullable=False),  # insert | update | reject
        sa.Column("reason_code", sa.String(48)),
        sa.Column("target_id", spec.key.type),  # the business row written
        sa.Column("existing_id", spec.key.type),  # the row already holding the natural key
        sa.Column("crosswalked", sa.Boolean, nullable=False),  # the crosswalk knows this legacy key
    ]
    if spec.parent:
        columns.append(sa.Column("parent_id", spec.table.c[spec.parent.column].type))
    return columns


def plan_table(spec: TargetSpec) -> sa.Table:
    """What the merge decided for each staged row, next to the staged values themselves.

    The plan carries the stage's data columns, so every statement after it reads one
    table: joining plan and stage again for each of them cost as much as the writes.
    """
    decisions = _decision_columns(spec)
    taken = {c.name for c in decisions}
    data = [sa.Column(c.name, c.type) for c in staging.stage_data_columns(spec) if c.name not in taken]
    return staging.temporary_table(f"ts24_plan_{spec.name}", decisions + data)


def merge_chunk(
    conn: Connection,
    spec: TargetSpec,
    data: pa.Table,
    *,
    legacy_table: str,
    site_id: str,
    run_id: str,
    cutover: dt.date,
    now: dt.datetime,
    may_be_loaded: bool = True,
) -> ChunkOutcome:
    """Stage and merge one chunk of transformed rows, already typed by staging.to_stage_arrow.

    `may_be_loaded=False` says that no legacy key of the chunk can be in the crosswalk
    (the caller knows every crosswalk row of the table comes from earlier chunks, whose
    keys precede these), which saves a lookup per row.
    """
    if conn.dialect.name == "postgresql":
        # Every statement here is a short pass over one chunk: once a big chunk's estimate
        # passes jit_above_cost, compiling it (JIT) takes longer than running it. The notice
        # is "relation already exists" of a temporary table the session kept (staging).
        conn.execute(
            sa.select(
                sa.func.set_config("jit", "off", True),
                sa.func.set_config("work_mem", "256MB", True),
                sa.func.set_config("client_min_messages", "warning", True),
            )
        )
    if spec.parent:
        data = data.append_column(
            "parent_id",
            parent_ids(
                conn,
                spec.parent,
                spec.table.c[spec.parent.column],
                site_id=site_id,
                legacy_keys=data.column(spec.parent.legacy_column),
            ),
        )
    plan = plan_table(spec)
    merge = _Merge(
        conn,
        spec,
        plan,
        legacy_table=legacy_table,
        site_id=site_id,
        run_id=run_id,
        cutover_start=dt.datetime.combine(cutover, dt.time.min),
        now=now,
        may_be_loaded=may_be_loaded,
    )
    staging.create_temporary(conn, plan)
    if merge.decided_in_python:
        staging.write_stage(conn, plan, merge.python_plan(data))
    else:
        stage = staging.stage_table(spec)
        staging.create_temporary(conn, stage)
        staging.write_stage(conn, stage, data)
        merge.plan_from(stage)
        staging.drop_temporary(conn, stage)
    outcome = merge.run()
    staging.drop_temporary(conn, plan)
    return outcome


class _Merge:
    def __init__(
        self,
        conn: Connection,
        spec: TargetSpec,
        plan: sa.Table,
        *,
        legacy_table: str,
        site_id: str,
        run_id: str,
        cutover_start: dt.datetime,
        now: dt.datetime,
        may_be_loaded: bool,
    ):
        self.conn, self.spec, self.p, self.t = conn, spec, plan, spec.table
        self.may_be_loaded = may_be_loaded
        self.legacy_table, self.site_id, self.run_id = legacy_table, site_id, run_id
        self.cutover_start, self.now = cutover_start, now
        self.key = spec.key
        # The staged values the plan carries along (all but stage_seq, which it has anyway).
        self.data_names = [c.name for c in plan.columns if c.name not in {d.name for d in _decision_columns(spec)}]

    @property
    def decided_in_python(self) -> bool:
        """Every row is new and only its parent decides: no lookup left for SQL to make.

        That is a fresh load's file or history chunk (no natural key, and no legacy
        key the crosswalk can know). The rules of `_rules` then reduce to: rejected
        when the parent was not loaded, inserted otherwise; Python writes that plan
        directly and the merge skips the stage and the plan's query.
        """
        return not self.may_be_loaded and self.spec.natural_key is None and self.spec.surrogate

    def python_plan(self, data: pa.Table) -> pa.Table:
        """The plan of a chunk that is `decided_in_python`, as Arrow columns named like the plan's."""
        rows = data.num_rows
        if self.spec.parent:
            loaded = pc.is_valid(data.column("parent_id")).to_numpy(zero_copy_only=False)
        else:
            loaded = np.ones(rows, dtype=bool)
        new_keys = np.full(rows, None, dtype=object)
        new_keys[loaded] = self._allocate_keys(int(loaded.sum()))
        decided = {
            "action": pa.array(np.where(loaded, INSERT, REJECT), pa.large_string()),
            # numpy's stubs leave None out of where()'s arguments; it makes an object array (NULL where loaded)
            "reason_code": pa.array(
                np.where(loaded, None, reasons.PARENT_NOT_LOADED),  # type: ignore[call-overload]
                pa.large_string(),
            ),
            "target_id": pa.array(new_keys, pa.int64()),
            "existing_id": pa.nulls(rows, pa.int64()),
            "crosswalked": pa.array(np.zeros(rows, dtype=bool)),
        }
        columns = [decided[c.name] if c.name in decided else data.column(c.name) for c in self.p.columns]
        return pa.Table.from_arrays(columns, names=[c.name for c in self.p.columns])

    def _allocate_keys(self, count: int) -> list[int]:
        """`count` new surrogate keys, ascending (given to the rows in legacy key order), as _new_key would."""
        if not count:
            return []
        if self.conn.dialect.name == "postgresql":
            # As one array: a row per key cost ten times as much to fetch as drawing the keys.
            series = sa.func.generate_series(1, count).table_valued("n")
            keys = self.conn.execute(
                sa.select(sa.func.array_agg(sa.func.nextval(self._sequence()))).select_from(series)
            ).scalar_one()
            return sorted(keys)
        highest = self.conn.execute(sa.select(sa.func.coalesce(sa.func.max(self.key), 0))).scalar_one()
        return list(range(highest + 1, highest + count + 1))

    def plan_from(self, stage: sa.Table) -> None:
        """Decide, in SQL, what happens to each staged row (the plan table)."""
        plan_columns = [c.name for c in _decision_columns(self.spec)] + self.data_names
        self.conn.execute(self.p.insert().from_select(plan_columns, self._plan_query(stage)))

    def run(self) -> ChunkOutcome:
        """Carry out the plan: business rows, bookkeeping; returns what happened."""
        if self.spec.parent:  # parent_ids proved (and locked) every parent the plan writes
            proved = self.t.c[self.spec.parent.column]
            with foreign_keys.per_row_checks_skipped(self.conn, self.t, proved) as path:
                self._write_business_rows()
        else:
            path = None
            self._write_business_rows()
        self._write_bookkeeping()
        outcome = self._outcome()
        outcome.foreign_key_checks = path
        return outcome

    # -- deciding ---------------------------------------------------------
    def _facts(self, s: sa.Table) -> sa.Subquery:
        """Per staged row, what the target already holds: one pass of outer joins."""
        t, spec = self.t, self.spec
        joins: sa.FromClause = s
        columns: list[sa.ColumnElement[Any]] = [s.c.stage_seq, s.c.legacy_key]
        if self.may_be_loaded:  # the row this legacy key was loaded into before, if it still exists
            own_cw, own_row = crosswalk.alias("own"), t.alias("own_row")
            joins, own = self._lookup(
                joins,
                own_cw,
                [own_cw.c.target_key],
                sa.and_(
                    own_cw.c.site_id == self.site_id,
                    own_cw.c.legacy_table == self.legacy_table,
                    own_cw.c.legacy_key == s.c.legacy_key,
                ),
            )
            joins, row = self._lookup(
                joins,
                own_row,
                [own_row.c[self.key.name]],
                own_row.c[self.key.name] == self._key_from_text(own.c.target_key),
            )
            columns += [row.c[self.key.name].label("own_id"), own.c.target_key.isnot(None).label("crosswalked")]
        else:
            columns += [sa.cast(sa.null(), self.key.type).label("own_id"), sa.false().label("crosswalked")]
        if not spec.surrogate:
            columns.append(s.c[self.key.name].label("code_key"))
        if spec.parent:  # looked up before staging (load.parent_keys)
            columns.append(s.c.parent_id)
        if spec.natural_key:
            held_row, owner_row = t.alias("held"), crosswalk.alias("owner")
            held_columns = [held_row.c[self.key.name]] + ([held_row.c.updated_at] if spec.guarded else [])
            joins, held = self._lookup(
                joins, held_row, held_columns, held_row.c[spec.natural_key] == s.c[spec.natural_key]
            )
            joins, owner = self._lookup(
                joins,
                owner_row,
                [owner_row.c.site_id, owner_row.c.legacy_table, owner_row.c.legacy_key],
                sa.and_(
                    owner_row.c.target_table == t.name,
                    owner_row.c.target_key == sa.cast(held.c[self.key.name], sa.String),
                ),
            )
            columns += [
                held.c[self.key.name].label("existing_id"),
                (held.c.updated_at if spec.guarded else sa.null()).label("existing_updated_at"),
                owner.c.site_id.label("owner_site"),
                owner.c.legacy_table.label("owner_table"),
                owner.c.legacy_key.label("owner_key"),
                sa.func.row_number().over(partition_by=s.c[spec.natural_key], order_by=s.c.stage_seq).label("rank"),
            ]
        columns += [s.c[name].label(f"data_{name}") for name in self.data_names]
        return sa.select(*columns).select_from(joins).subquery("facts")

    def _lookup(
        self,
        joins: sa.FromClause,
        table: NamedFromClause[Any],
        columns: Sequence[sa.ColumnElement[Any]],
        onclause: sa.ColumnElement[bool],
    ) -> tuple[sa.FromClause, sa.FromClause]:
        """Outer-join at most one row of `table` per staged row; returns the join and the columns' source.

        On PostgreSQL each staged row probes the index (a LATERAL subquery): left to
        itself the planner hashes the whole crosswalk or business table for every
        chunk once they outgrow a chunk, which makes a load quadratic in its size.
        SQLite probes its indexes anyway.
        """
        if self.conn.dialect.name != "postgresql":
            return joins.outerjoin(table, onclause), table
        probe = sa.select(*columns).where(onclause).limit(1).lateral(f"{table.name}_probe")
        return joins.outerjoin(probe, sa.true()), probe

    def _rules(self, f: sa.Subquery) -> list[tuple[sa.ColumnElement[bool], str, str | None]]:
        """(condition, action, reason) in priority order; the first that holds decides."""
        rules: list[tuple[sa.ColumnElement[bool], str, str | None]] = []
        if self.spec.parent:  # its dossier was rejected or is in conflict
            rules.append((f.c.parent_id.is_(None), REJECT, reasons.PARENT_NOT_LOADED))
        if not self.spec.natural_key:
            return rules + [(f.c.own_id.isnot(None), UPDATE, None), (sa.true(), INSERT, None)]
        ours = sa.and_(f.c.owner_site == self.site_id, f.c.owner_table == self.legacy_table)
        rules += [
            (f.c.rank > 1, REJECT, reasons.DUPLICATE_TARGET_KEY),  # twice in this chunk
            (sa.and_(f.c.existing_id.is_(None), f.c.own_id.isnot(None)), UPDATE, None),  # natural key renamed
            (f.c.existing_id.is_(None), INSERT, None),
            (f.c.existing_id == f.c.own_id, UPDATE, None),  # loaded before: a re-run
            (f.c.own_id.isnot(None), REJECT, reasons.DUPLICATE_TARGET_KEY),
            (sa.and_(ours, f.c.owner_key == f.c.legacy_key), UPDATE, None),  # loaded before, crosswalk lost
            (ours, REJECT, reasons.DUPLICATE_TARGET_KEY),  # another legacy row of this site holds it
            (f.c.owner_site.isnot(None), REJECT, reasons.CONFLICT_OTHER_SITE),
        ]
        if self.spec.guarded:
            rules.append((f.c.existing_updated_at > self.cutover_start, REJECT, reasons.CONFLICT_CHANGED_AFTER_CUTOVER))
        # Held by the new system and unchanged since the cut-over: TS24 is the reference, take it over.
        return rules + [(sa.true(), UPDATE, None)]

    def _plan_query(self, stage: sa.Table) -> sa.Select[*tuple[Any, ...]]:
        f = self._facts(stage)
        rules = self._rules(f)
        action = sa.case(*[(cond, sa.literal(act)) for cond, act, _ in rules]).label("action")
        reason = sa.case(*[(cond, sa.literal(why)) for cond, _, why in rules if why], else_=sa.null()).label(
            "reason_code"
        )
        existing = f.c.existing_id if self.spec.natural_key else sa.cast(sa.null(), self.key.type)
        decided_columns = [
            f.c.stage_seq,
            action,
            reason,
            sa.func.coalesce(f.c.own_id, existing).label("known_id"),
            existing.label("existing_id"),
            f.c.crosswalked,
        ]
        if self.spec.parent:
            decided_columns.append(f.c.parent_id)
        if not self.spec.surrogate:
            decided_columns.append(f.c.code_key)
        decided_columns += [f.c[f"data_{name}"] for name in self.data_names]
        d = sa.select(*decided_columns).subquery("decided")
        target_id = sa.case(
            (d.c.action == INSERT, self._new_key(d)), (d.c.action == UPDATE, d.c.known_id), else_=sa.null()
        )
        columns = [d.c.stage_seq, d.c.action, d.c.reason_code, target_id, d.c.existing_id, d.c.crosswalked]
        if self.spec.parent:
            columns.append(d.c.parent_id)
        columns += [d.c[f"data_{name}"] for name in self.data_names]
        return sa.select(*columns).order_by(d.c.stage_seq)

    def _new_key(self, d: sa.Subquery) -> sa.ColumnElement[Any]:
        """The key of a new row: its code, or the next surrogate in legacy key order."""
        if not self.spec.surrogate:
            return d.c.code_key
        if self.conn.dialect.name == "postgresql":
            # The table's own sequence, so rows the new system inserts later never collide.
            return sa.func.nextval(self._sequence())
        # SQLite has one writer at a time: the highest key plus the row's rank among new rows.
        highest = sa.select(sa.func.coalesce(sa.func.max(self.key), 0)).scalar_subquery()
        return highest + sa.func.row_number().over(partition_by=d.c.action == INSERT, order_by=d.c.stage_seq)

    def _sequence(self) -> sa.ColumnElement[Any]:
        """PostgreSQL: the key's sequence, named by its oid, looked up once (pg_get_serial_sequence
        per row cost more than nextval itself)."""
        sequence = self.conn.execute(
            sa.select(
                sa.cast(sa.cast(sa.func.pg_get_serial_sequence(self.t.name, self.key.name), REGCLASS), sa.Integer)
            )
        ).scalar_one()
        return sa.cast(sa.literal(sequence, sa.Integer), REGCLASS)

    def _key_from_text(self, text: sa.ColumnElement[str]) -> sa.ColumnElement[Any]:
        return sa.cast(text, self.key.type) if self.spec.surrogate else text

    # -- writing ----------------------------------------------------------
    def _business_values(self) -> dict[str, sa.ColumnElement[Any]]:
        values: dict[str, sa.ColumnElement[Any]] = {c.name: self.p.c[c.name] for c in self.spec.row_columns()}
        if self.spec.parent:
            values[self.spec.parent.column] = self.p.c.parent_id
        if "source" in self.t.c:
            values["source"] = sa.literal(TS24_SOURCE, sa.String)
        return values

    def _write_business_rows(self) -> None:
        p, values = self.p, self._business_values()
        if self.spec.surrogate:
            values = {self.key.name: p.c.target_id, **values}
        rows = sa.select(*[v.label(k) for k, v in values.items()]).where(p.c.action == INSERT).order_by(p.c.stage_seq)
        self.conn.execute(self.t.insert().from_select(list(values), rows))
        changes = {k: v for k, v in self._business_values().items() if k != self.key.name}
        self.conn.execute(self.t.update().where(self.key == p.c.target_id, p.c.action == UPDATE).values(changes))

    def _write_bookkeeping(self) -> None:
        p, t, conn = self.p, self.t, self.conn
        target_key = sa.cast(p.c.target_id, sa.String)

        # One crosswalk row per written row, its lineage included (load.bookkeeping).
        # New rows get plain INSERTs (an upsert costs a third more per row); rows the
        # bookkeeping may already hold (re-runs, taken-over rows) get an upsert.
        # Rows go in in primary key order: neighbours land on the same index pages, one after the other.
        crosswalk_rows = sa.select(
            sa.literal(self.site_id),
            sa.literal(self.legacy_table),
            p.c.legacy_key,
            sa.literal(t.name),
            target_key,
            sa.literal(self.run_id),
            p.c.legacy_row_hash,
            self._written_row_md5(),
            sa.literal(self.now, sa.DateTime),
            p.c.dq_flags,
        ).order_by(p.c.legacy_key)
        # A key from the PostgreSQL sequence was never used before; a code, or max + n on SQLite
        # after someone deleted the highest row, may still be claimed by another legacy key whose
        # row the new system deleted: that claim is stale, and the row's new owner takes its place.
        if not (self.spec.surrogate and conn.dialect.name == "postgresql"):
            self._release_stale_claims(target_key)
        self._write(
            crosswalk,
            ["site_id", "legacy_table", "legacy_key", "target_table", "target_key", *LINEAGE_COLUMNS],
            crosswalk_rows,
            new=sa.and_(p.c.action == INSERT, ~p.c.crosswalked),
            known=sa.and_(p.c.action.in_(_WRITTEN), sa.or_(p.c.action == UPDATE, p.c.crosswalked)),
            changing=["target_table", "target_key", *LINEAGE_COLUMNS],
        )

        rejected = p.c.action == REJECT
        field_name, value = self._reject_field()
        reject_rows = sa.select(
            sa.literal(self.site_id),
            sa.literal(self.legacy_table),
            p.c.legacy_key,
            sa.literal(self.run_id),
            p.c.reason_code,
            field_name,
            value,
            sa.case(_REASON_MESSAGES, value=p.c.reason_code),
            sa.literal(self.now, sa.DateTime),
        )
        self._write(
            rejects,
            [
                "site_id",
                "legacy_table",
                "legacy_key",
                "run_id",
                "reason_code",
                "field",
                "original_value",
                "message",
                "rejected_at",
            ],
            reject_rows,
            new=None,
            known=rejected,
            changing=["run_id", "reason_code", "field", "original_value", "message", "rejected_at"],
        )

        conflict_rows = sa.select(
            sa.literal(self.site_id),
            sa.literal(self.legacy_table),
            p.c.legacy_key,
            sa.literal(t.name),
            sa.cast(p.c.existing_id, sa.String),
            sa.literal(self.run_id),
            sa.case(_conflict_reasons(self.cutover_start), value=p.c.reason_code),
            sa.literal(self.now, sa.DateTime),
        )
        self._write(
            conflicts,
            ["site_id", "legacy_table", "legacy_key", "target_table", "target_key", "run_id", "reason", "detected_at"],
            conflict_rows,
            new=None,
            known=sa.and_(rejected, p.c.reason_code.in_(reasons.CONFLICT_CODES)),
            changing=["target_table", "target_key", "run_id", "reason", "detected_at"],
        )

    def _release_stale_claims(self, target_key: sa.ColumnElement[str]) -> None:
        """Remove the crosswalk rows that claim a target row this chunk writes for another legacy key.

        Only a claim by the same legacy key on the same target row stays (a re-run); any other
        is stale (its row was deleted and the key reused), including the row's own legacy key
        moving to a new target row in this chunk: its upsert below writes the row again.
        """
        p, claim = self.p, crosswalk
        written = p.c.action.in_(_WRITTEN)
        kept = sa.and_(
            claim.c.site_id == self.site_id,
            claim.c.legacy_table == self.legacy_table,
            sa.tuple_(claim.c.legacy_key, claim.c.target_key).in_(sa.select(p.c.legacy_key, target_key).where(written)),
        )
        self.conn.execute(
            claim.delete().where(
                claim.c.target_table == self.t.name, claim.c.target_key.in_(sa.select(target_key).where(written)), ~kept
            )
        )

    def _written_row_md5(self) -> sa.ColumnElement[str]:
        """load.row_hash over the values just written, taken from the stage and the plan.

        The staged columns have the business columns' own types, so the database
        renders and hashes them exactly as it does the stored row (parity recomputes
        it from the table and the tests hold the two equal), without joining the
        growing business table again for every chunk.
        """
        values = self._business_values()
        values[self.key.name] = self.p.c.target_id
        return row_md5(
            self.conn.dialect.name,
            [
                sa.cast(values[c.name], c.type) if c.name == "source" else values[c.name]
                for c in self.spec.hashed_columns()
            ],
        )

    def _write(
        self,
        table: sa.Table,
        columns: list[str],
        rows: sa.Select[*tuple[Any, ...]],
        *,
        new: sa.ColumnElement[bool] | None,
        known: sa.ColumnElement[bool],
        changing: list[str],
    ) -> None:
        """Insert the `new` rows; upsert the `known` ones, which the table may hold already (by primary key)."""
        if new is not None:
            self.conn.execute(table.insert().from_select(columns, rows.where(new)))
        statement = upsert(self.conn, table).from_select(columns, rows.where(known))
        self.conn.execute(
            statement.on_conflict_do_update(
                index_elements=list(table.primary_key.columns.keys()), set_={c: statement.excluded[c] for c in changing}
            )
        )

    def _reject_field(self) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
        """The column a load-side reject is about, and its value (natural key or parent key)."""
        p = self.p
        if self.spec.parent:
            return sa.literal(self.spec.parent.column), p.c[self.spec.parent.legacy_column]
        if self.spec.natural_key:
            return sa.literal(self.spec.natural_key), sa.cast(p.c[self.spec.natural_key], sa.Text)
        return sa.null(), sa.null()

    def _outcome(self) -> ChunkOutcome:
        p = self.p
        counts = self.conn.execute(
            sa.select(p.c.action, p.c.reason_code, sa.func.count()).group_by(p.c.action, p.c.reason_code)
        ).all()
        outcome = ChunkOutcome()
        for action, reason, n in counts:
            if action in _WRITTEN:
                outcome.loaded += n
                outcome.inserted += n if action == INSERT else 0
            else:
                outcome.rejects_by_reason[reason] += n
                outcome.conflicts += n if reason in reasons.CONFLICT_CODES else 0
        return outcome


def _conflict_reasons(cutover_start: dt.datetime) -> dict[str, str]:
    return {
        reasons.CONFLICT_CHANGED_AFTER_CUTOVER: f"the new system changed this row after the cut-over ({cutover_start:%Y-%m-%d}); "
        "TS24's version was not loaded over it",
        reasons.CONFLICT_OTHER_SITE: "the new system's row with this key was loaded from another site or legacy table; not overwritten",
    }


def record_rejects(
    conn: Connection, rows: Iterable[dict[str, Any]], *, legacy_table: str, site_id: str, run_id: str, now: dt.datetime
) -> int:
    """Write rejects decided outside SQL (transform, unstorable values); returns how many."""
    records = [
        {
            "site_id": site_id,
            "legacy_table": legacy_table,
            "legacy_key": str(r["legacy_key"]),
            "run_id": run_id,
            "reason_code": r["reason_code"],
            "field": _text(r.get("field")),
            "original_value": _text(r.get("original_value")),
            "message": _text(r.get("message")),
            "rejected_at": now,
        }
        for r in rows
    ]
    if not records:
        return 0
    statement = upsert(conn, rejects)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=list(rejects.primary_key.columns.keys()),
            set_={
                c: statement.excluded[c]
                for c in ("run_id", "reason_code", "field", "original_value", "message", "rejected_at")
            },
        ),
        records,
    )
    return len(records)


def _text(value: Any) -> str | None:
    """Reject details as text PostgreSQL can store (no NUL), None for missing values."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value).replace("\x00", "\\x00")
