"""Carry the rows an increment backed up over to the new system: transform, merge, account.

The rows come from the carry-over queue (reconcile.state: rec_pending), not
from the run's own delta, so a run killed after its increment was chained
still carries them over next time. Each mapped table's queued rows are read
again from the legacy database (their latest version), transformed with a
context that knows what the load accepted before (load.site_load seeds it the
way a resumed load does), and merged by load.merge with their history and
files: a table's rows in one set-based pass (a queue longer than CARRY_ROWS,
or files of more than CARRY_CONTENT_BYTES, in several), every table in one
target transaction when the queue holds at most CARRY_ROWS rows.

The accounting stays that of a single full migration of the site as it is
now: a row loaded before is updated in place (crosswalk); a new row is
loaded or rejected with a reason; a row rejected before and accepted now
loses its reject. Each batch that changes the accounting writes a
mig_load_ledger chunk holding the difference (new rows read, loaded and
rejected), so the load's own figures still add up.

A row loaded before whose latest version the transform (or the new system)
refuses is *blocked*: the new system keeps the version it has, nothing is
written, the row stays queued, and the reconciliation reports it as drift
until the legacy row is corrected. A queued row that no longer exists on
TS24 is reported as gone.

Example::

    result = carry_over(legacy, target, state, site_id="hn-01", run_id=run_id, cutover=date(2025, 7, 1),
                        attachments_dir=Path("/srv/ts24/hn-01/files"))
    result.tables["HO_SO"]        # {'queued': 25, 'updated': 24, 'inserted': 1, 'rejected': 0, ...}
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from extract.discovery import TableInfo
from extract.reader import iter_table_rows, read_batch
from load import ledger, merge
from load.bookkeeping import conflicts, crosswalk, rejects
from load.chunking import content_weigher
from load.flag_records import forget_flags, record_flags
from load.row_hash import register_sqlite_functions
from load.schema_version import prepare_target
from load.site_load import mapped_legacy_tables
from load.staging import to_stage_arrow
from load.target_map import TargetSpec, target_spec
from transform import TransformContext, target_table_for, transform_batch
from transform.tables.common import legacy_key_text
from ts24_migrate.core.legacy.schema import MAPPED_TABLES
from ts24_migrate.core.rows.fingerprint import TableFingerprint, row_digest

from .context_seed import ContextSeeder
from .state import KEYS_PER_QUERY, ReconcileState, key_values

# Queued rows of a table merged in one set-based pass (and one target transaction): a day's
# changes fit in one, a backlog is taken in passes of this size so memory stays bounded; dossier
# files also by their content, as the load cuts its chunks (load.chunking).
CARRY_ROWS = 20_000
CARRY_CONTENT_BYTES = 32 * 2**20


@dataclass
class CarryOverResult:
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    blocked: list[dict[str, Any]] = field(default_factory=list)  # loaded before, refused now
    gone: list[dict[str, Any]] = field(default_factory=list)  # queued, no longer on TS24

    @property
    def carried(self) -> int:
        return sum(t["updated"] + t["inserted"] + t["rejected"] for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {"tables": self.tables, "carried": self.carried, "blocked": self.blocked, "gone": self.gone}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _existing(conn: Connection, table: sa.Table, site_id: str, legacy_table: str, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), KEYS_PER_QUERY):
        found.update(
            conn.execute(
                sa.select(table.c.legacy_key).where(
                    table.c.site_id == site_id,
                    table.c.legacy_table == legacy_table,
                    table.c.legacy_key.in_(keys[i : i + KEYS_PER_QUERY]),
                )
            ).scalars()
        )
    return found


def _forget(conn: Connection, table: sa.Table, site_id: str, legacy_table: str, keys: list[str]) -> None:
    for i in range(0, len(keys), KEYS_PER_QUERY):
        conn.execute(
            table.delete().where(
                table.c.site_id == site_id,
                table.c.legacy_table == legacy_table,
                table.c.legacy_key.in_(keys[i : i + KEYS_PER_QUERY]),
            )
        )


def carry_over(
    legacy: Engine,
    target: Engine,
    state: ReconcileState,
    *,
    site_id: str,
    run_id: str,
    cutover: dt.date,
    attachments_dir: Path | None,
    reference_date: dt.date | None = None,
    tables: dict[str, TableInfo] | None = None,
) -> CarryOverResult:
    """Carry every queued row of the site over to the target; see the module docstring.

    `tables`: the legacy tables as the run discovered them (upper-case name -> TableInfo), so
    that a run reflects the legacy schema once; discovered here when not given."""
    result = CarryOverResult()
    queued = {t: keys for t, keys in state.pending(site_id).items() if t.upper() in MAPPED_TABLES}
    if not queued:
        return result
    register_sqlite_functions(target)
    prepare_target(target)
    if tables is None or any(name not in tables for name in MAPPED_TABLES):
        infos = {info.name.upper(): info for info in mapped_legacy_tables(legacy, site_id)}  # or a clear error
    else:
        infos = {name: tables[name] for name in MAPPED_TABLES}
    ctx = TransformContext(
        site_id, cutover=cutover, attachments_dir=attachments_dir, reference_date=reference_date or dt.date.today()
    )
    # A day's changes (at most CARRY_ROWS rows) are carried over in one target transaction, whose
    # reads see its own writes (the history rows see the dossiers just merged); a longer queue
    # commits each pass. The queue entries are taken off once their rows are committed.
    one_transaction = sum(len(k) for k in queued.values()) <= CARRY_ROWS
    passes = _Passes(target, state, site_id)
    with target.connect() as conn, conn.begin() if one_transaction else contextlib.nullcontext():
        passes.shared = conn if one_transaction else None
        seeder = ContextSeeder(conn, ctx, site_id)
        for name in MAPPED_TABLES:
            keys = next((k for t, k in queued.items() if t.upper() == name), None)
            if not keys:
                continue
            if name == "NGUOI_LAO_DONG":  # duplicate persons are judged against the whole table
                seeder.persons(legacy, infos[name])
            result.tables[name] = _carry_table(
                legacy,
                passes,
                infos[name],
                keys,
                ctx,
                seeder,
                result,
                site_id=site_id,
                run_id=run_id,
                cutover=cutover,
            )
    passes.take_off_queue()
    return result


class _Passes:
    """Where the carry-over's passes write, and when their rows leave the carry-over queue."""

    def __init__(self, target: Engine, state: ReconcileState, site_id: str):
        self.target, self.state, self.site_id = target, state, site_id
        self.shared: Connection | None = None  # the run's one transaction, when it has one
        self.carried: list[tuple[str, list[str]]] = []  # (queued table name, queue keys) to take off

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        if self.shared is not None:
            yield self.shared
            return
        with self.target.begin() as conn:
            yield conn

    def carried_over(self, table: str, keys: list[str]) -> None:
        if self.shared is not None:
            self.carried.append((table, keys))  # taken off when the shared transaction has committed
        else:
            self.state.done_pending(self.site_id, table, keys)

    def take_off_queue(self) -> None:
        if self.carried:
            self.state.done_pending_tables(self.site_id, self.carried)
        self.carried = []


def _carry_table(
    legacy: Engine,
    passes: _Passes,
    info: TableInfo,
    keys: list[str],
    ctx: TransformContext,
    seeder: ContextSeeder,
    result: CarryOverResult,
    *,
    site_id: str,
    run_id: str,
    cutover: dt.date,
) -> dict[str, int]:
    legacy_table = info.name.upper()
    spec = target_spec(target_table_for(legacy_table))
    figures = {
        "queued": len(keys),
        "updated": 0,
        "inserted": 0,
        "rejected": 0,
        "accepted_again": 0,
        "blocked": 0,
        "gone": 0,
    }
    key_columns = [info.table.c[k] for k in info.primary_key]
    if not key_columns:
        raise ValueError(f"{legacy_table} has no primary key: its rows cannot be carried over by key")
    weigh = content_weigher(info)  # file contents, which bound a pass by bytes as well

    def carry_pass(rows: list[tuple[Any, ...]], by_legacy_key: dict[str, str]) -> list[str]:
        """Merge `rows` in one set-based pass: the merge's cost per pass (stage and plan tables,
        statements, a transaction) is paid once, not once per key list. Returns their legacy keys."""
        batch = read_batch(info, rows)
        records = batch.to_pylist()
        rows = [tuple(r.values()) for r in records]
        seeder.before(legacy_table, [{k.upper(): v for k, v in r.items()} for r in records])
        positions = [info.column_names.index(k) for k in info.primary_key]
        legacy_keys = [legacy_key_text([row[p] for p in positions]) for row in rows]
        done = _merge_batch(
            passes,
            spec,
            legacy_table,
            batch,
            rows,
            legacy_keys,
            ctx,
            result,
            figures,
            site_id=site_id,
            run_id=run_id,
            cutover=cutover,
        )
        passes.carried_over(info.name, [by_legacy_key[k] for k in done if k in by_legacy_key])
        return legacy_keys

    for start in range(0, len(keys), CARRY_ROWS):
        group = keys[start : start + CARRY_ROWS]
        by_legacy_key: dict[str, str] = {}
        found: set[str] = set()
        rows: list[tuple[Any, ...]] = []
        content = 0
        with legacy.connect() as source:
            for i in range(0, len(group), KEYS_PER_QUERY):
                batch_keys = [key_values(k) for k in group[i : i + KEYS_PER_QUERY]]
                where = (
                    key_columns[0].in_([k[0] for k in batch_keys])
                    if len(key_columns) == 1
                    else sa.or_(*[sa.and_(*[c == v for c, v in zip(key_columns, k)]) for k in batch_keys])
                )
                by_legacy_key.update(
                    {legacy_key_text(k): text for k, text in zip(batch_keys, group[i : i + KEYS_PER_QUERY])}
                )
                for chunk in iter_table_rows(source, info, chunk_rows=KEYS_PER_QUERY, where=where):
                    if weigh is None:
                        rows += chunk
                        continue
                    for row in chunk:
                        rows.append(row)
                        content += weigh(row)
                        if content >= CARRY_CONTENT_BYTES:
                            found.update(carry_pass(rows, by_legacy_key))
                            rows, content = [], 0
            if rows:
                found.update(carry_pass(rows, by_legacy_key))
        gone = [k for k in by_legacy_key if k not in found]
        for legacy_key in gone:
            result.gone.append({"table": legacy_table, "legacy_key": legacy_key})
        figures["gone"] += len(gone)
        passes.carried_over(info.name, [by_legacy_key[k] for k in gone])
    return figures


def _merge_batch(
    passes: _Passes,
    spec: TargetSpec,
    legacy_table: str,
    batch: pa.RecordBatch,
    rows: list[tuple[Any, ...]],
    legacy_keys: list[str],
    ctx: TransformContext,
    result: CarryOverResult,
    figures: dict[str, int],
    *,
    site_id: str,
    run_id: str,
    cutover: dt.date,
) -> list[str]:
    """Transform and merge one batch; returns the legacy keys carried over (not blocked)."""
    transformed = transform_batch(legacy_table, batch, ctx)
    now = _now()
    with passes.transaction() as conn:
        loaded_before = _existing(conn, crosswalk, site_id, legacy_table, legacy_keys)
        rejected_before = _existing(conn, rejects, site_id, legacy_table, legacy_keys)
        conflicts_before = _existing(conn, conflicts, site_id, legacy_table, legacy_keys)
        refused = transformed.rejects
        blocked = refused[refused["legacy_key"].isin(loaded_before)]
        refused = refused[~refused["legacy_key"].isin(loaded_before)]
        unstorable: list[dict[str, Any]] = []
        if len(transformed.rows):
            staged, unstorable = to_stage_arrow(transformed.rows, spec)
            merge.merge_chunk(
                conn, spec, staged, legacy_table=legacy_table, site_id=site_id, run_id=run_id, cutover=cutover, now=now
            )
        blocked_rows = blocked.to_dict("records") + [u for u in unstorable if u["legacy_key"] in loaded_before]
        unstorable = [u for u in unstorable if u["legacy_key"] not in loaded_before]
        merge.record_rejects(
            conn,
            [*refused.to_dict("records"), *unstorable],
            legacy_table=legacy_table,
            site_id=site_id,
            run_id=run_id,
            now=now,
        )
        loaded_after = _existing(conn, crosswalk, site_id, legacy_table, legacy_keys)
        rejected_after = _existing(conn, rejects, site_id, legacy_table, legacy_keys)
        # A key is loaded or rejected, never both: a reject of a loaded key is either stale (it is
        # accepted now) or the new system refusing the latest version of a loaded row (blocked).
        both = sorted(loaded_after & rejected_after)
        for key in both:
            if key in loaded_before:
                # One row: the key is among rejected_after, and it is the reject's primary key.
                reason = conn.execute(
                    sa.select(rejects.c.reason_code, rejects.c.message).where(
                        rejects.c.site_id == site_id,
                        rejects.c.legacy_table == legacy_table,
                        rejects.c.legacy_key == key,
                    )
                ).one()
                blocked_rows.append({"legacy_key": key, "reason_code": reason[0], "message": reason[1]})
        _forget(conn, rejects, site_id, legacy_table, both)
        _forget(conn, conflicts, site_id, legacy_table, both)
        rejected_after -= set(both)
        blocked_keys = {str(r["legacy_key"]) for r in blocked_rows}
        # The rows written now carry the flags of their new version; a blocked row keeps its old ones.
        written = (loaded_after & set(legacy_keys)) - blocked_keys
        forget_flags(conn, legacy_table=legacy_table, site_id=site_id, keys=written)
        record_flags(
            conn,
            transformed.flags.to_dict("records"),
            legacy_table=legacy_table,
            site_id=site_id,
            run_id=run_id,
            now=now,
            skip_keys=set(legacy_keys) - written,
        )
        new_keys = [k for k in legacy_keys if k not in loaded_before and k not in rejected_before]
        conflicts_after = _existing(conn, conflicts, site_id, legacy_table, legacy_keys)
        loaded_delta = len(loaded_after) - len(loaded_before)
        rejected_delta = len(rejected_after) - len(rejected_before)
        if new_keys or loaded_delta or rejected_delta:
            progress = ledger.table_progress(conn, site_id, legacy_table)
            fingerprint = TableFingerprint()  # of the rows new to the accounting, as read
            fresh = set(new_keys)
            for key, row in zip(legacy_keys, rows):
                if key in fresh:
                    fingerprint.add_digest(row_digest(row))
            ledger.record_chunk(
                conn,
                site_id=site_id,
                legacy_table=legacy_table,
                chunk_no=progress.next_chunk_no,
                first_key=new_keys[0] if new_keys else None,
                last_key=new_keys[-1] if new_keys else None,
                rows_in=len(new_keys),
                loaded=loaded_delta,
                rejected=rejected_delta,
                conflicts=len(conflicts_after) - len(conflicts_before),
                run_id=run_id,
                fingerprint=fingerprint,
                resume_after=None,
                now=now,
            )
    for row in blocked_rows:
        result.blocked.append(
            {
                "table": legacy_table,
                "legacy_key": str(row["legacy_key"]),
                "reason_code": row.get("reason_code"),
                "field": row.get("field"),
                "message": row.get("message"),
            }
        )
    figures["blocked"] += len(blocked_keys)
    figures["updated"] += len((loaded_before & loaded_after) - blocked_keys)
    figures["inserted"] += len(loaded_after - loaded_before)
    figures["accepted_again"] += len((loaded_after - loaded_before) & rejected_before)
    figures["rejected"] += len(rejected_after - loaded_before)
    return [k for k in legacy_keys if k not in blocked_keys]
