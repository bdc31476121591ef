"""Load one site: every mapped legacy table, in dependency order, in durable chunks.

Tables go in dependency order (offices, units, persons, dossiers, files,
history). Each chunk of legacy rows is read in key order (extract.reader),
transformed, then merged into its business table with its bookkeeping
(load.merge) and recorded in the ledger, all in one target transaction. A
thread reads and transforms the next chunks (two ahead at most) while the current one is merged.
A killed run re-run later skips what the ledger holds and resumes after the
last durable chunk's key, so it ends in the same state as an uninterrupted
run; re-running a finished site changes nothing.

Resuming must also give the transform the memory an uninterrupted run would
have (the codes and ids earlier chunks accepted, for orphan and duplicate
checks): the columns it remembers (transform.remembered_columns) of the rows
loaded before are read back from the target, each through an index, and
handed to the transform's `remember_accepted` -- only for the tables that the
tables still to load consult (transform.consulted_tables): a load resumed in
the history reads back the offices, units and dossiers, never the persons,
files or history. The few rows the transform
accepted but the load rejected (conflicts, ...) are read again from the
legacy database and transformed once more. So a resume costs the work left
plus one indexed read of the codes loaded before, not a pass over what is
done per chunk.

Example::

    summary = load_site(legacy, target, site_id="hn-01", run_id=run_id, cutover=date(2025, 7, 1),
                        attachments_dir=Path("/srv/ts24/hn-01/files"))
    summary.tables["HO_SO"]   # {'source_rows': 2000, 'loaded': 1985, 'rejected': 15, ...}
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from extract.arrow_reader import iter_row_pages
from extract.discovery import TableInfo, discover_tables
from extract.reader import iter_table_rows, read_batch
from transform import (
    TransformContext,
    TransformResult,
    consulted_tables,
    remembered_columns,
    target_table_for,
    transform_batch,
)
from transform.tables.common import legacy_key_texts
from ts24_migrate.core.errors import ConfigError, VerificationError
from ts24_migrate.core.key_store import DEFAULT_MEMORY_ENTRIES
from ts24_migrate.core.legacy.schema import MAPPED_TABLES
from ts24_migrate.core.rows.fingerprint import TableFingerprint, row_digest

from . import ledger, merge, reasons
from .bookkeeping import crosswalk, rejects
from .chunking import ChunkLimits, table_chunks
from .flag_records import flag_counts, record_flags, rejected_now
from .interpreter import fewer_collections
from .planner_stats import PlannerStats
from .prefetch import prefetched
from .row_hash import register_sqlite_functions
from .schema_version import prepare_target
from .staging import to_stage_arrow
from .target_map import TargetSpec, target_spec
from .transactions import write_transaction

Progress = Callable[[str, int, int], None]  # (legacy table, rows done, rows in the table)

__all__ = ["LoadSummary", "load_site", "prepare_target"]

# Keys looked up per query when re-reading rows the load rejected.
_KEYS_PER_QUERY = 500


@dataclass
class LoadSummary:
    site_id: str
    run_id: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    chunks_loaded: int = 0  # by this run
    chunks_skipped: int = 0  # already in the ledger
    seconds: float = 0.0
    # Chunks of this run with a parent key, by how the database checked it besides the set-based check
    # (load.foreign_keys): "replica" (not again per row), or "per-row: <why not>".
    foreign_key_checks: Counter[str] = field(default_factory=Counter)

    @property
    def accounting_ok(self) -> bool:
        return all(t["source_rows"] == t["loaded"] + t["rejected"] for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "run_id": self.run_id,
            "accounting_ok": self.accounting_ok,
            "chunks_loaded": self.chunks_loaded,
            "chunks_skipped": self.chunks_skipped,
            "seconds": round(self.seconds, 3),
            "foreign_key_checks": dict(sorted(self.foreign_key_checks.items())),
            "tables": self.tables,
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def mapped_legacy_tables(legacy: Engine | Connection, site_id: str) -> list[TableInfo]:
    """The mapped tables of the legacy database, in dependency order."""
    found = {info.name.upper(): info for info in discover_tables(legacy)}
    missing = [name for name in MAPPED_TABLES if name not in found]
    if missing:
        raise ConfigError(
            f"legacy database of site {site_id} has no table {', '.join(missing)}: is it a TS24 database?"
        )
    return [found[name] for name in MAPPED_TABLES]


def load_site(
    legacy: Engine,
    target: Engine,
    *,
    site_id: str,
    run_id: str,
    cutover: dt.date,
    attachments_dir: Path | None,
    chunk_rows: int = 50_000,
    progress: Progress | None = None,
    reference_date: dt.date | None = None,
    chunk_content_bytes: int = ChunkLimits.content_bytes,
    keys_in_memory: int = DEFAULT_MEMORY_ENTRIES,
) -> LoadSummary:
    """Load every mapped table of a site into the target; resumes from the ledger.

    A chunk holds at most `chunk_rows` rows, and about `chunk_content_bytes` of file
    contents (load.chunking). What the transform remembers across chunks keeps at most
    `keys_in_memory` entries per kind in memory, the rest on disk (ts24_migrate.core.key_store).
    """
    limits = ChunkLimits(chunk_rows, chunk_content_bytes)
    if target.dialect.name not in ("postgresql", "sqlite"):
        raise ConfigError(f"the target database must be PostgreSQL or SQLite, not {target.dialect.name}")
    started = time.perf_counter()
    register_sqlite_functions(target)
    prepare_target(target)
    tables = [
        _TableLoad(info, target_spec(target_table_for(info.name.upper())))
        for info in mapped_legacy_tables(legacy, site_id)
    ]
    ctx = TransformContext(
        site_id,
        cutover=cutover,
        attachments_dir=attachments_dir,
        reference_date=reference_date or dt.date.today(),
        keys_in_memory=keys_in_memory,
    )
    summary = LoadSummary(site_id, run_id)
    with target.connect() as conn:
        for table in tables:
            table.start(
                ledger.table_progress(conn, site_id, table.legacy_table),
                ledger.table_figures(conn, site_id, table.legacy_table),
            )
    summary.chunks_skipped = sum(t.done.chunks_done for t in tables)
    if not all(t.done.complete for t in tables):
        stats = PlannerStats(target)
        seeded = _tables_to_seed(tables)
        # Statistics as the killed run left them may say "no rows of this site yet": planned
        # from them, the seed would scan a business table once per crosswalk row.
        stats.refresh([crosswalk.name, *(t.spec.name for t in seeded)])
        for table in seeded:  # in dependency order, before the transform sees any new row
            _seed_context(ctx, legacy, target, table.info, table.spec, site_id=site_id)
        summary.chunks_loaded = _load_tables(
            legacy,
            target,
            [t for t in tables if not t.done.complete],
            ctx,
            stats,
            site_id=site_id,
            run_id=run_id,
            cutover=cutover,
            limits=limits,
            progress=progress,
            foreign_key_checks=summary.foreign_key_checks,
        )
    with target.connect() as conn:
        for table in tables:
            summary.tables[table.legacy_table] = _checked_figures(conn, site_id, table.legacy_table, table.spec.name)
    summary.seconds = time.perf_counter() - started
    return summary


def _checked_figures(conn: Connection, site_id: str, legacy_table: str, target_table: str) -> dict[str, Any]:
    """The table's figures, after checking that the bookkeeping agrees with the ledger."""
    figures = ledger.table_figures(conn, site_id, legacy_table)
    recorded_rejects = sum(figures["rejects_by_reason"].values())
    if (
        figures["crosswalk_rows"] != figures["loaded"]
        or recorded_rejects != figures["rejected"]
        or figures["source_rows"] != figures["loaded"] + figures["rejected"]
    ):
        raise VerificationError(
            f"load accounting of {legacy_table} (site {site_id}) does not hold: ledger says "
            f"{figures['source_rows']} read = {figures['loaded']} loaded + {figures['rejected']} rejected; "
            f"bookkeeping holds {figures['crosswalk_rows']} crosswalk rows and {recorded_rejects} rejects"
        )
    del figures["crosswalk_rows"]
    flagged = flag_counts(conn, site_id=site_id, legacy_table=legacy_table).get(legacy_table, {})
    return {"target_table": target_table, **figures, "flags_by_code": flagged}


class _TableLoad:
    """One mapped table's progress during a load: what the ledger held, and what this run adds."""

    def __init__(self, info: TableInfo, spec: TargetSpec):
        self.info, self.spec = info, spec
        self.legacy_table = info.name.upper()
        self.fingerprint = TableFingerprint()

    def start(self, done: ledger.TableProgress, figures: dict[str, Any]) -> None:
        self.done = done
        # Every crosswalk row of the table comes from a ledger chunk, and those keys precede
        # the keys still to load: no new chunk can find its keys there, skip looking.
        self.may_be_loaded = figures["crosswalk_rows"] != figures["loaded"]
        self.fingerprint.merge(done.fingerprint)
        self.next_chunk_no, self.rows_done, self.rows_total = done.next_chunk_no, done.rows_done, 0


@dataclass
class _PreparedChunk:
    """One chunk read, transformed, checked and typed for staging: all that needs no target."""

    table: _TableLoad
    chunk_no: int
    rows_in: int
    first_key: str
    last_key: str
    resume_after: list[Any] | None
    fingerprint: TableFingerprint
    staged: pa.Table
    rejects: list[dict[str, Any]]  # the transform's, and values the target cannot store
    flags: list[dict[str, Any]]  # the flagged values of the rows accepted (transform.verdicts.FLAG_COLUMNS)


@dataclass
class _TableRead:
    """Every row of the table has been prepared."""

    table: _TableLoad


def _prepare_chunks(
    legacy: Engine, tables: list[_TableLoad], ctx: TransformContext, limits: ChunkLimits
) -> Iterator[_PreparedChunk | _TableRead]:
    """Read and transform table after table: the transform remembers each table's rows for the next."""
    with legacy.connect() as source:
        for table in tables:
            chunk_no = table.done.next_chunk_no
            null_keys_seen: Counter[str] = Counter()  # across the table's chunks, skipped ones included
            for rows in _chunks_to_load(source, table.info, table.done, limits, null_keys_seen):
                columns = [list(values) for values in zip(*rows)]  # the batch's values, by column
                keys = _legacy_keys(table.info, rows, columns, null_keys_seen)
                batch = read_batch(table.info, rows, None, columns)
                result = transform_batch(table.legacy_table, batch, ctx, columns, keys)
                _check_every_row_accounted(table.legacy_table, chunk_no, keys, result)
                staged, unstorable = to_stage_arrow(result.rows, table.spec)
                yield _PreparedChunk(
                    table=table,
                    chunk_no=chunk_no,
                    rows_in=len(rows),
                    first_key=keys[0],
                    last_key=keys[-1],
                    resume_after=_key_values(table.info, rows[-1]) if table.info.primary_key else None,
                    fingerprint=_chunk_fingerprint(table.legacy_table, rows, keys, result.rows),
                    staged=staged,
                    rejects=[*result.rejects.to_dict("records"), *unstorable],
                    flags=result.flags.to_dict("records"),
                )
                chunk_no += 1
            yield _TableRead(table)


def _load_tables(
    legacy: Engine,
    target: Engine,
    tables: list[_TableLoad],
    ctx: TransformContext,
    stats: PlannerStats,
    *,
    site_id: str,
    run_id: str,
    cutover: dt.date,
    limits: ChunkLimits,
    progress: Progress | None,
    foreign_key_checks: Counter[str],
) -> int:
    """Load the chunks the ledger does not hold; returns how many (and counts their `foreign_key_checks`)."""
    with legacy.connect() as source:
        for table in tables:
            table.rows_total = source.execute(sa.select(sa.func.count()).select_from(table.info.table)).scalar_one()
    loaded_chunks = 0
    if progress and tables:
        progress(tables[0].legacy_table, tables[0].rows_done, tables[0].rows_total)
    # Reading and transforming the next chunk (even of the next table) overlaps with merging this one;
    # the collector runs less often meanwhile (load.interpreter).
    with fewer_collections():
        for item in prefetched(_prepare_chunks(legacy, tables, ctx, limits), depth=2):
            loaded_chunks += _load_item(
                target,
                item,
                stats,
                site_id=site_id,
                run_id=run_id,
                cutover=cutover,
                progress=progress,
                foreign_key_checks=foreign_key_checks,
            )
    return loaded_chunks


def _load_item(
    target: Engine,
    item: _PreparedChunk | _TableRead,
    stats: PlannerStats,
    *,
    site_id: str,
    run_id: str,
    cutover: dt.date,
    progress: Progress | None,
    foreign_key_checks: Counter[str],
) -> int:
    """Merge one prepared chunk, or record a table as complete; returns the chunks loaded (0 or 1)."""
    table = item.table
    if isinstance(item, _TableRead):
        with write_transaction(target) as conn:
            ledger.complete_table(
                conn,
                site_id=site_id,
                legacy_table=table.legacy_table,
                target_table=table.spec.name,
                fingerprint=table.fingerprint,
                chunks=table.next_chunk_no,
                run_id=run_id,
                now=_now(),
            )
        return 0
    grown_tables = [table.spec.name, crosswalk.name]
    stats.refresh(grown_tables)
    checked = _merge_prepared(target, item, site_id=site_id, run_id=run_id, cutover=cutover)
    if checked:
        foreign_key_checks[checked] += 1
    stats.grew(grown_tables, item.rows_in)
    table.fingerprint.merge(item.fingerprint)
    table.next_chunk_no, table.rows_done = item.chunk_no + 1, table.rows_done + item.rows_in
    if progress:
        progress(table.legacy_table, table.rows_done, table.rows_total)
    return 1


def _merge_prepared(
    target: Engine, chunk: _PreparedChunk, *, site_id: str, run_id: str, cutover: dt.date
) -> str | None:
    """One chunk, its bookkeeping and its ledger row, in one transaction; returns how its foreign key
    was checked (merge.ChunkOutcome.foreign_key_checks)."""
    legacy_table, now = chunk.table.legacy_table, _now()
    with write_transaction(target) as conn:
        outcome = merge.merge_chunk(
            conn,
            chunk.table.spec,
            chunk.staged,
            legacy_table=legacy_table,
            site_id=site_id,
            run_id=run_id,
            cutover=cutover,
            now=now,
            may_be_loaded=chunk.table.may_be_loaded,
        )
        merge.record_rejects(conn, chunk.rejects, legacy_table=legacy_table, site_id=site_id, run_id=run_id, now=now)
        # flags only of the rows written: not of those the target cannot store, nor the load refused
        refused = {str(r["legacy_key"]) for r in chunk.rejects}
        if outcome.rejected:
            refused |= rejected_now(conn, legacy_table=legacy_table, site_id=site_id, now=now)
        record_flags(
            conn, chunk.flags, legacy_table=legacy_table, site_id=site_id, run_id=run_id, now=now, skip_keys=refused
        )
        rejected = len(chunk.rejects) + outcome.rejected
        if outcome.loaded + rejected != chunk.rows_in:
            raise VerificationError(
                f"{legacy_table} chunk {chunk.chunk_no}: {chunk.rows_in} rows read, "
                f"{outcome.loaded} loaded + {rejected} rejected"
            )
        ledger.record_chunk(
            conn,
            site_id=site_id,
            legacy_table=legacy_table,
            chunk_no=chunk.chunk_no,
            first_key=chunk.first_key,
            last_key=chunk.last_key,
            rows_in=chunk.rows_in,
            loaded=outcome.loaded,
            rejected=rejected,
            conflicts=outcome.conflicts,
            run_id=run_id,
            fingerprint=chunk.fingerprint,
            resume_after=chunk.resume_after,
            now=now,
        )
    return outcome.foreign_key_checks


def _chunks_to_load(
    source: Connection,
    info: TableInfo,
    done: ledger.TableProgress,
    limits: ChunkLimits,
    null_keys_seen: Counter[str],
) -> Iterator[list[tuple[Any, ...]]]:
    resume_after = done.resume_after
    page_rows = limits.page_rows(info)
    if info.primary_key and not (resume_after and any(value is None for value in resume_after)):
        # Read the Arrow way where the TS24_ARROW_READS setting and the table allow it (extract.arrow_reader):
        # the same rows, fetched and converted by the driver rather than row by row in Python.
        pages = iter_row_pages(source, info, chunk_rows=page_rows, start_after=resume_after)
        yield from table_chunks(pages, info, limits)
        return
    # A keyless table is read in one pass, in the same order each time: skip the chunks done. So are
    # the rows whose key holds NULL (SQLite lets a key column hold it), ahead of the others: a load
    # stopped in that pass has no key to resume after, and starts over skipping the chunks done.
    pages = iter_table_rows(source, info, chunk_rows=page_rows)
    for chunk_no, rows in enumerate(table_chunks(pages, info, limits)):
        if chunk_no >= done.chunks_done:
            yield rows
        else:  # its NULL keys were given before: the rows identical to them after rank behind them
            _legacy_keys(info, rows, [list(values) for values in zip(*rows)], null_keys_seen)


def _key_values(info: TableInfo, row: Sequence[Any]) -> list[Any]:
    return [row[info.column_names.index(name)] for name in info.primary_key]


def _legacy_keys(
    info: TableInfo, rows: list[tuple[Any, ...]], columns: list[list[Any]], null_keys_seen: Counter[str]
) -> list[str]:
    """The legacy key of each row as text (composite keys joined), handed to the transform."""
    key_columns = [columns[info.column_names.index(name)] for name in info.primary_key]
    return legacy_key_texts(key_columns, rows.__getitem__, len(rows), null_keys_seen)


def _typed_key(info: TableInfo, values: Sequence[Any]) -> list[Any]:
    """Legacy key values from their text (mig_rejects.legacy_key), as the key columns' Python type."""
    typed = []
    for name, value in zip(info.primary_key, values):
        try:
            python_type = info.table.c[name].type.python_type
        except NotImplementedError:
            python_type = type(value)
        typed.append(value if value is None or isinstance(value, python_type) else python_type(value))
    return typed


def _check_every_row_accounted(legacy_table: str, chunk_no: int, keys: list[str], result: TransformResult) -> None:
    out = list(result.rows["legacy_key"]) + list(result.rejects["legacy_key"])
    if len(out) != len(keys) or set(out) != set(keys):
        unknown = sorted(set(out) - set(keys))[:3]
        lost = sorted(set(keys) - set(out))[:3]
        raise VerificationError(
            f"transform of {legacy_table} chunk {chunk_no} does not account for every row: {len(keys)} read, "
            f"{len(result.rows)} rows + {len(result.rejects)} rejects out (lost e.g. {lost}, unknown {unknown})"
        )


def _chunk_fingerprint(
    legacy_table: str, rows: list[tuple[Any, ...]], keys: list[str], transformed: pd.DataFrame
) -> TableFingerprint:
    """The chunk's TableFingerprint over the rows as read.

    The transform already hashed every accepted row with the same row_digest
    (its lineage hash); only rejected rows are hashed here. The first reused
    digest is recomputed, so a transform that hashed other values is caught.
    """
    digests = dict(zip(transformed["legacy_key"], transformed["legacy_row_hash"]))
    fingerprint = TableFingerprint()
    reused: list[str] = []
    for key, row in zip(keys, rows):
        known = digests.get(key)
        if known is None:
            fingerprint.add(row)
            continue
        if not reused and row_digest(row).hex() != known:
            raise VerificationError(
                f"{legacy_table} row {key}: the transform's legacy_row_hash is not the digest of the row as read"
            )
        reused.append(known)
    fingerprint.add_digests([bytes.fromhex(known) for known in reused])  # summed at once
    return fingerprint


# -- resuming: give the transform the memory an uninterrupted run would have ----------------
def _tables_to_seed(tables: list[_TableLoad]) -> list[_TableLoad]:
    """The tables, with chunks done, whose remembered rows the tables still to load consult.

    Closed over what those tables consult in turn: seeding a table transforms again the rows
    the load refused, and their transform checks them against the tables it consults.
    """
    needed: set[str] = set()
    wanted = [name for t in tables if not t.done.complete for name in consulted_tables(t.legacy_table)]
    while wanted:
        name = wanted.pop()
        if name not in needed:
            needed.add(name)
            wanted.extend(consulted_tables(name))
    return [t for t in tables if t.legacy_table in needed and t.done.chunks_done]


def _seed_context(
    ctx: TransformContext, legacy: Engine, target: Engine, info: TableInfo, spec: TargetSpec, *, site_id: str
) -> None:
    legacy_table = info.name.upper()
    remembered = remembered_columns(legacy_table)
    if not remembered:
        return  # nothing after this table depends on its rows (files, history): read none of them back
    with target.connect() as conn:
        query = loaded_rows_query(spec, remembered, site_id=site_id, legacy_table=legacy_table)
        for frame in _frames(conn, query):
            ctx.remember_accepted(legacy_table, frame)
        load_rejected = (
            conn.execute(
                sa.select(rejects.c.legacy_key)
                .where(
                    rejects.c.site_id == site_id,
                    rejects.c.legacy_table == legacy_table,
                    rejects.c.reason_code.in_(list(reasons.LOAD_REASON_CODES)),
                )
                .order_by(rejects.c.legacy_key)
            )
            .scalars()
            .all()
        )
    if not load_rejected:
        return
    if len(info.primary_key) != 1:
        raise VerificationError(f"cannot resume {legacy_table}: rows rejected by the load need a one-column key")
    key_column = info.table.c[info.primary_key[0]]
    with legacy.connect() as source:
        for i in range(0, len(load_rejected), _KEYS_PER_QUERY):
            keys = [_typed_key(info, [k])[0] for k in load_rejected[i : i + _KEYS_PER_QUERY]]
            for rows in iter_table_rows(source, info, where=key_column.in_(keys)):
                transform_batch(legacy_table, read_batch(info, rows, None), ctx)  # remembers what it accepts


def loaded_rows_query(
    spec: TargetSpec, columns: Sequence[str], *, site_id: str, legacy_table: str
) -> sa.Select[*tuple[Any, ...]]:
    """`columns` and the legacy key of the rows this site loaded from `legacy_table`.

    The crosswalk's primary key (site, legacy table, legacy key) finds the site's rows, and
    each reaches its business row through the business table's primary key: the crosswalk's
    text key is cast to the key's type, never the key to text, which would leave the planner
    no index and (SQLite) read the whole business table once per crosswalk row.
    """
    t = spec.table
    target_key: sa.ColumnElement[Any] = crosswalk.c.target_key
    if not isinstance(spec.key.type, sa.String):
        target_key = sa.cast(target_key, spec.key.type)
    return (
        sa.select(*[t.c[name] for name in columns], crosswalk.c.legacy_key)
        .select_from(crosswalk.join(t, spec.key == target_key))
        .where(
            crosswalk.c.site_id == site_id, crosswalk.c.legacy_table == legacy_table, crosswalk.c.target_table == t.name
        )
    )


def _frames(
    conn: Connection, query: sa.Select[*tuple[Any, ...]], rows_per_frame: int = 50_000
) -> Iterator[pd.DataFrame]:
    if conn.dialect.name == "postgresql":
        # A streamed result is a server-side cursor, which PostgreSQL plans for its first tenth:
        # a nested loop scanning the business table per crosswalk row. Every row is read here.
        conn.execute(sa.text("SET LOCAL cursor_tuple_fraction = 1.0"))
    result = conn.execution_options(stream_results=True, yield_per=rows_per_frame).execute(query)
    names = list(result.keys())
    for part in result.partitions(rows_per_frame):
        yield pd.DataFrame.from_records([tuple(r) for r in part], columns=names).astype(object)
