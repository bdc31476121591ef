"""Read what changed in one legacy table since the chain's last increment.

Only the rows a change could have touched are read:

- a table with a change column (legacy_schema.WATERMARK_COLUMNS: NGAY_CAP_NHAT,
  HO_SO_LICH_SU.THOI_GIAN): rows whose change column is at or after the last
  watermark (minus a short look-back, for clocks and transactions that commit
  late), or whose key is above the highest key seen;
- any other keyed table: rows whose key is above the highest key seen (new
  rows), and for HO_SO_TEP also the files of the dossiers that changed;
- a table without a key: read whole, and replaced whole when its fingerprint
  changed.

Each row read is hashed as the backup hashes it (ts24_migrate.core.rows.fingerprint over the
values as stored, extract.extraction.as_stored) and compared with the digest
the chain holds for its key (reconcile.state): only new and changed rows go
to the increment, so reading a few rows twice costs nothing but the read.
The chain's fingerprint moves by subtracting the old digest and adding the
new one. A COUNT(*) per table tells when rows were deleted (or slipped past
the watermark): then the keys are compared in full and the deleted keys go to
the increment as tombstones.

Three modes: "delta" (the scheduled run), "sweep" (every row read and
compared: catches edits that no change column shows; run when the site looks
drained) and "baseline" (the chain's first increment: the digests of every
row are recorded; when the table's fingerprint equals the full backup's,
nothing changed and nothing is stored; otherwise what changed since the full
backup is told by its watermarks, with a day of look-back, because the full
backup's row digests are inside its encrypted parts).

Example::

    delta = table_delta(conn, table_info, previous_state, state, "hn-01", mode="delta",
                        emit=writer.add_rows)
    delta.new, delta.changed, delta.deleted_keys, delta.state.chain.hexdigest()
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from extract.discovery import TableInfo
from extract.extraction import as_stored, count_rows
from extract.reader import iter_table_rows
from ts24_migrate.core.rows.batch_digest import row_digests
from ts24_migrate.core.rows.fingerprint import TableFingerprint

from .state import KEYS_PER_QUERY, DigestChange, Key, ReconcileState, TableState, key_text, key_values

LOOKBACK = dt.timedelta(hours=1)
BASELINE_LOOKBACK = dt.timedelta(days=1)
MODES = ("delta", "sweep", "baseline")

# Rows of a table that belong to a row of another table: when the parent changes, they are
# read again (a supplement can replace a dossier's files without a change column of their own).
DEPENDENT_ROWS = {"HO_SO_TEP": ("ID_HO_SO", "HO_SO")}
# Parents per read of their dependent rows: the legacy has no index on the parent column, so each
# read scans the table; one scan takes a day's changed dossiers (bound parameters: SQLite allows
# 32,766, PostgreSQL and MariaDB 65,535).
PARENTS_PER_SCAN = 5_000

# A legacy row's values, in the column order of its table.
Row = tuple[Any, ...]
Emit = Callable[[list[Row]], None]


@dataclass
class Since:
    """Where a delta starts: the highest change-column value and key already in the chain."""

    watermark: Any = None
    max_key: Key | None = None
    everything: bool = False  # a table the chain does not hold yet: every row is new
    base_fingerprint: str | None = None  # baseline: the full backup's fingerprint of the table


@dataclass
class TableDelta:
    name: str
    mode: str  # "delta": changed rows replace theirs by key; "full": the table is replaced whole
    rows_read: int = 0
    new: int = 0
    changed: int = 0
    deleted_keys: list[Key] = field(default_factory=list)
    fingerprint: TableFingerprint = field(default_factory=TableFingerprint)  # of the rows emitted
    state: TableState | None = None  # after this delta
    changes: list[DigestChange] = field(default_factory=list)
    changed_keys: list[Key] = field(default_factory=list)  # typed key values of new and changed rows
    live_rows: int = 0
    key_check: bool = False  # True when the keys were compared in full

    @property
    def emitted(self) -> int:
        return self.fingerprint.rows

    def figures(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "rows_read": self.rows_read,
            "new": self.new,
            "changed": self.changed,
            "deleted": len(self.deleted_keys),
            "live_rows": self.live_rows,
            "chain_rows": self.state.chain.rows if self.state else None,
            "key_check": self.key_check,
        }


def _later(current: Any, candidate: Any) -> Any:
    """The later of two watermark values; values of another type (dirty data) are ignored."""
    if candidate is None or not isinstance(candidate, (dt.datetime, dt.date)):
        return current
    if current is None:
        return candidate
    try:
        return candidate if candidate > current else current
    except TypeError:
        return current


def _key_above(table: TableInfo, key: Sequence[Any]) -> sa.ColumnElement[bool]:
    columns = [table.table.c[name] for name in table.primary_key]
    clauses = []
    for i, column in enumerate(columns):
        clauses.append(sa.and_(*[columns[j] == key[j] for j in range(i)], column > key[i]))
    return sa.or_(*clauses)


def _greater(a: Sequence[Any], b: Sequence[Any] | None) -> bool:
    if b is None:
        return True
    try:
        return tuple(a) > tuple(b)
    except TypeError:
        return True  # keys of mixed types: treat as new, the digest decides


class _Reader:
    """One table's delta in progress."""

    def __init__(
        self,
        conn: Connection,
        table: TableInfo,
        previous: TableState,
        state: ReconcileState,
        site_id: str,
        mode: str,
        since: Since,
        parent_keys: dict[str, list[Key]],
        chunk_rows: int,
        emit: Emit,
    ):
        self.conn, self.table, self.state, self.site_id = conn, table, state, site_id
        self.stored = as_stored(table)
        self.mode, self.since, self.chunk_rows, self.emit = mode, since, chunk_rows, emit
        self.key_positions = [table.column_names.index(k) for k in table.primary_key]
        watermark = table.watermark_column
        self.watermark_position = table.column_names.index(watermark) if watermark else None
        dependent = DEPENDENT_ROWS.get(table.name.upper())
        self.dependent = None
        if dependent and dependent[0] in table.column_names:
            self.dependent = (dependent[0], {k[0] for k in parent_keys.get(dependent[1], []) if len(k) == 1})
        self.chain = TableFingerprint(previous.chain.rows, previous.chain.total)
        self.result = TableDelta(table.name, "delta")
        self.next = TableState(table.name, previous.watermark, previous.max_key)
        self.seen_known = 0  # rows read whose key the chain holds
        self.seen: set[str] = set()  # keys read (only kept when a second read could see them again)
        # baseline: rows its watermarks select, {key text: (key, digest)}, stored only if the table changed
        self.candidates: dict[str, tuple[Key, bytes]] = {}

    # -- what to read -----------------------------------------------------------------------
    def _where(self) -> sa.ColumnElement[bool] | None:
        if self.mode != "delta" or self.since.everything:
            return None
        clauses = []
        if (watermark := self.table.watermark_column) is not None and self.since.watermark is not None:
            column = self.stored.table.c[watermark]
            clauses.append(column >= self.since.watermark - LOOKBACK)
        if self.since.max_key is not None:
            clauses.append(_key_above(self.stored, self.since.max_key))
        if not clauses:
            return None  # nothing to start from: read everything (the digests decide)
        return sa.or_(*clauses)

    def _baseline_selects(self, row: Row, key: Key) -> bool:
        """At the first increment: did this row change since the full backup (by its watermarks)?"""
        if self.since.everything:
            return True
        if self.watermark_position is not None and self.since.watermark is not None:
            value = row[self.watermark_position]
            if value is not None:
                try:
                    if value >= self.since.watermark - BASELINE_LOOKBACK:
                        return True
                except TypeError:
                    return True  # a value the column should not hold: keep it, it costs one row
        if self.since.max_key is not None and _greater(key, self.since.max_key):
            return True
        if self.dependent is not None and row[self.table.column_names.index(self.dependent[0])] in self.dependent[1]:
            return True
        return False

    # -- reading ----------------------------------------------------------------------------
    def run(self) -> TableDelta:
        before = self.chain.rows  # the chain holds one digest per row
        for rows in iter_table_rows(self.conn, self.stored, chunk_rows=self.chunk_rows, where=self._where()):
            self._take(rows)
        if self.mode == "baseline" and self.candidates:
            self._store_baseline_candidates()
        if self.mode == "delta" and self.dependent is not None and self.dependent[1]:
            column = self.stored.table.c[self.dependent[0]]
            parents = sorted(self.dependent[1], key=repr)
            for i in range(0, len(parents), PARENTS_PER_SCAN):
                for rows in iter_table_rows(
                    self.conn,
                    self.stored,
                    chunk_rows=self.chunk_rows,
                    where=column.in_(parents[i : i + PARENTS_PER_SCAN]),
                ):
                    self._take([r for r in rows if self._key(r) not in self.seen])
        self.result.live_rows = count_rows(self.conn, self.table)
        if self.mode != "baseline":
            expected = before + self.result.new
            if self.result.live_rows != expected or (self.mode == "sweep" and self.seen_known != before):
                self._compare_keys()
        self.next.chain = self.chain
        self.result.state = self.next
        return self.result

    def _key(self, row: Row) -> str:
        return key_text([row[i] for i in self.key_positions])

    def _take(self, rows: list[Row]) -> None:
        if not rows:
            return
        self.result.rows_read += len(rows)
        keys = [self._key(r) for r in rows]
        digests = row_digests(rows)
        for row in rows:
            if self.watermark_position is not None:
                self.next.watermark = _later(self.next.watermark, row[self.watermark_position])
        last_key = tuple(rows[-1][i] for i in self.key_positions)
        if _greater(last_key, self.next.max_key):
            self.next.max_key = last_key
        if self.mode == "delta" and self.dependent is not None:
            self.seen.update(keys)
        if self.mode == "baseline":
            self._take_baseline(rows, keys, digests)
            return
        known = self.state.digests_of(self.site_id, self.table.name, keys)
        out = []
        for row, key, digest in zip(rows, keys, digests):
            old = known.get(key)
            if old is not None:
                self.seen_known += 1
                if old[0] == digest.hex():
                    continue
                self.chain.remove_digest(bytes.fromhex(old[0]))
                self.result.changed += 1
            else:
                self.result.new += 1
            self.chain.add_digest(digest)
            self.result.changes.append(DigestChange(self.table.name, key, digest.hex()))
            self.result.changed_keys.append(tuple(row[i] for i in self.key_positions))
            self.result.fingerprint.add_digest(digest)
            out.append(row)
        if out:
            self.emit(out)

    def _take_baseline(self, rows: list[Row], keys: list[str], digests: list[bytes]) -> None:
        self.state.write_baseline_digests(
            self.site_id, self.table.name, [(k, d.hex(), None) for k, d in zip(keys, digests)]
        )
        out = []
        for row, key_string, digest in zip(rows, keys, digests):
            self.chain.add_digest(digest)
            key = tuple(row[i] for i in self.key_positions)
            if self.since.everything:  # not in the full backup: every row is stored, as it is read
                self.result.changed_keys.append(key)
                self.result.fingerprint.add_digest(digest)
                out.append(row)
            elif self._baseline_selects(row, key):
                self.candidates[key_string] = (key, digest)
        self.result.changed += len(out)
        if out:
            self.emit(out)

    def _store_baseline_candidates(self) -> None:
        """The baseline's selected rows, stored only when the table differs from the full backup.

        A table whose fingerprint equals the full backup's did not change since it:
        what its watermarks select was backed up and loaded already. Otherwise the
        selected rows are read again by key and stored; a row that changed between
        the two reads is stored as read now, and its digest moves with it.
        """
        candidates, self.candidates = self.candidates, {}
        if self.since.base_fingerprint is not None and self.chain.hexdigest() == self.since.base_fingerprint:
            return
        keys = [key for key, _digest in candidates.values()]
        columns = [self.stored.table.c[name] for name in self.table.primary_key]
        for i in range(0, len(keys), KEYS_PER_QUERY):
            batch = keys[i : i + KEYS_PER_QUERY]
            where: sa.ColumnElement[bool] | None
            if any(v is None for key in batch for v in key):
                where = None  # a NULL key (SQLite) cannot be looked up: this batch reads the table
            elif len(columns) == 1:
                where = columns[0].in_([k[0] for k in batch])
            else:
                where = sa.or_(*[sa.and_(*[c == v for c, v in zip(columns, k)]) for k in batch])
            wanted = {key_text(k) for k in batch}
            for rows in iter_table_rows(self.conn, self.stored, chunk_rows=self.chunk_rows, where=where):
                rows = [r for r in rows if self._key(r) in wanted]
                out = []
                for row, digest in zip(rows, row_digests(rows)):
                    key_string = self._key(row)
                    wanted.discard(key_string)
                    first = candidates[key_string][1]
                    if digest != first:
                        self.chain.remove_digest(first)
                        self.chain.add_digest(digest)
                        self.result.changes.append(DigestChange(self.table.name, key_string, digest.hex()))
                    self.result.changed_keys.append(tuple(row[i] for i in self.key_positions))
                    self.result.fingerprint.add_digest(digest)
                    out.append(row)
                self.result.changed += len(out)
                if out:
                    self.emit(out)

    def _compare_keys(self) -> None:
        """Rows were deleted, or slipped past the watermark: compare every key with the chain's."""
        self.result.key_check = True
        narrow = _key_columns(self.stored)
        live: set[str] = set()
        for rows in iter_table_rows(self.conn, narrow, chunk_rows=self.chunk_rows):
            live.update(key_text(r) for r in rows)
        changed_now = {c.key for c in self.result.changes}
        for batch in self.state.iter_digests(self.site_id, self.table.name):
            for key, digest, _stamp in batch:
                if key not in live and key not in changed_now:
                    self.chain.remove_digest(bytes.fromhex(digest))
                    self.result.deleted_keys.append(key_values(key))
                    self.result.changes.append(DigestChange(self.table.name, key, None))
                live.discard(key)
        missed = sorted(live - changed_now)
        if missed:  # live rows the chain does not hold and the delta did not read: read them now
            self._read_keys([key_values(k) for k in missed])

    def _read_keys(self, keys: list[Key]) -> None:
        columns = [self.stored.table.c[name] for name in self.table.primary_key]
        for i in range(0, len(keys), KEYS_PER_QUERY):
            batch = keys[i : i + KEYS_PER_QUERY]
            where = (
                columns[0].in_([k[0] for k in batch])
                if len(columns) == 1
                else sa.or_(*[sa.and_(*[c == v for c, v in zip(columns, k)]) for k in batch])
            )
            for rows in iter_table_rows(self.conn, self.stored, chunk_rows=self.chunk_rows, where=where):
                self._take(rows)


def _key_columns(table: TableInfo) -> TableInfo:
    """The table narrowed to its key columns (no blobs read to compare keys)."""
    metadata = sa.MetaData()
    columns = [
        sa.Column(c.name, c.type, key=c.key, primary_key=True)
        for c in table.table.columns
        if c.name in table.primary_key
    ]
    columns.sort(key=lambda c: table.primary_key.index(c.name))
    narrow = sa.Table(table.table.name, metadata, *columns, schema=table.table.schema)
    infos = tuple(
        sorted((c for c in table.columns if c.name in table.primary_key), key=lambda c: table.primary_key.index(c.name))
    )
    return TableInfo(table.name, table.schema, infos, table.primary_key, narrow)


def keyed_table_delta(
    conn: Connection,
    table: TableInfo,
    previous: TableState,
    state: ReconcileState,
    site_id: str,
    *,
    mode: str,
    since: Since,
    parent_keys: dict[str, list[Key]],
    chunk_rows: int,
    emit: Emit,
) -> TableDelta:
    if mode not in MODES:
        raise ValueError(f"unknown delta mode {mode!r}")
    return _Reader(conn, table, previous, state, site_id, mode, since, parent_keys, chunk_rows, emit).run()


def keyless_table_delta(
    conn: Connection, table: TableInfo, previous: TableState, *, chunk_rows: int, emit: Emit
) -> TableDelta:
    """A table without a key: fingerprinted whole; replaced whole in the increment when it changed."""
    stored = as_stored(table)
    live = TableFingerprint()
    for rows in iter_table_rows(conn, stored, chunk_rows=chunk_rows):
        live.add_rows(rows)
    result = TableDelta(table.name, "delta", rows_read=live.rows, live_rows=live.rows)
    if live != previous.chain:
        # Read again to store it: what is stored is what the chain records, even if it moved meanwhile.
        result.mode = "full"
        result.rows_read += live.rows
        for rows in iter_table_rows(conn, stored, chunk_rows=chunk_rows):
            result.fingerprint.add_rows(rows)
            emit(rows)
        result.changed = result.fingerprint.rows
        result.live_rows = result.fingerprint.rows
    chain = result.fingerprint if result.mode == "full" else previous.chain
    result.state = TableState(table.name, None, None, TableFingerprint(chain.rows, chain.total))
    return result


def parent_keys_of(deltas: Iterable[TableDelta]) -> dict[str, list[Key]]:
    return {d.name.upper(): d.changed_keys for d in deltas}
