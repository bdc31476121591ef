"""What reconcile remembers between runs, in the control store: chain, watermarks, row digests.

- rec_sites:   the full backup the site's chain starts from
- rec_chain:   the backups of the chain, in order (the full one, then each increment)
- rec_tables:  per legacy table, where the next delta starts (watermark, highest key)
               and what the chain holds (rows, fingerprint)
- rec_digests: one row digest (ts24_migrate.core.rows.fingerprint.row_digest) per legacy row the
               chain holds, and per attachment file: the delta drops rows whose
               digest did not change, and a changed row's old digest is subtracted
               from the chain fingerprint
- rec_pending: legacy rows backed up by an increment but not yet carried over to
               the new system (written in the same transaction as the chain)
- rec_open_runs: the run whose increment is chained but whose verdict is not yet
               made (written with the chain, removed when the run has its verdict):
               a run killed in between is finished by the next one

Row keys are the typed JSON of the key values (extract.json_values), so a
composite key or a key holding '|' round-trips exactly; attachment files are
keyed by their relative path in hex.

The chain, the digests and the pending rows change together in one
transaction (`commit_increment`), after the increment's manifest is durable:
a run killed before that commit leaves an unchained increment on disk, which
the next run reports and ignores.

Example::

    state = ReconcileState(control_store.engine)
    state.chain("hn-01")                 # [ChainLink(seq=0, backup_id=..., kind='full'), ...]
    state.table_states("hn-01")["HO_SO"].watermark
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from backups.chain import ChainLink
from extract.json_values import from_json_row, from_json_value, json_row, json_value
from ts24_migrate.core.rows.fingerprint import TableFingerprint

metadata = sa.MetaData()

sites = sa.Table(
    "rec_sites",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("base_backup_id", sa.String(64), nullable=False),
    sa.Column("base_fingerprint", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

chain_links = sa.Table(
    "rec_chain",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("backup_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # full | incremental
    sa.Column("manifest_fingerprint", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(36)),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

tables = sa.Table(
    "rec_tables",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(128), primary_key=True),
    sa.Column("watermark", sa.Text),  # typed JSON value, or null
    sa.Column("max_key", sa.Text),  # typed JSON list, or null
    sa.Column("chain_rows", sa.BigInteger, nullable=False),
    sa.Column("chain_fingerprint", sa.Text, nullable=False),
)

digests = sa.Table(
    "rec_digests",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(128), primary_key=True),
    sa.Column("row_key", sa.Text, primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("stamp", sa.String(64)),  # files only: "size:mtime_ns", to skip hashing unchanged files
)

pending = sa.Table(
    "rec_pending",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(128), primary_key=True),
    sa.Column("row_key", sa.Text, primary_key=True),
    sa.Column("backup_id", sa.String(64), nullable=False),
)

open_runs = sa.Table(
    "rec_open_runs",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),  # baseline | sweep | delta
    sa.Column("backup_id", sa.String(64), nullable=False),  # its increment
    sa.Column("committed_at", sa.DateTime, nullable=False),
)

# Keys per IN (...) list: well under every dialect's bound-parameter limit.
KEYS_PER_QUERY = 500

# A row's key: its typed values, in primary-key order (`key_text` stores it, `key_values` reads it back).
Key = tuple[Any, ...]


def key_text(values: Sequence[Any]) -> str:
    """A row key as stored here: typed JSON of the key values.

    >>> key_text([1000042])
    '[1000042]'
    """
    if all(type(v) is int for v in values):  # the common case, spelled as json.dumps would
        return "[" + ",".join(map(str, values)) + "]"
    return json.dumps(json_row(values), separators=(",", ":"), ensure_ascii=False)


def key_values(text: str) -> Key:
    return from_json_row(json.loads(text)) or ()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class OpenRun:
    """A run that chained its increment and has not made its verdict (yet, or ever: killed)."""

    run_id: str
    mode: str
    backup_id: str


@dataclass
class TableState:
    name: str
    watermark: Any = None
    max_key: Key | None = None
    chain: TableFingerprint = field(default_factory=TableFingerprint)

    def to_row(self, site_id: str) -> dict[str, Any]:
        return {
            "site_id": site_id,
            "table_name": self.name,
            "watermark": json.dumps(json_value(self.watermark)) if self.watermark is not None else None,
            "max_key": json.dumps(json_row(self.max_key)) if self.max_key is not None else None,
            "chain_rows": self.chain.rows,
            "chain_fingerprint": self.chain.hexdigest(),
        }


@dataclass
class DigestChange:
    """A row (or file) the increment replaces, adds or deletes: its new digest, None when deleted."""

    table: str
    key: str
    digest: str | None
    stamp: str | None = None


class ReconcileState:
    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine, checkfirst=True)

    # -- chain ------------------------------------------------------------------------------
    def base(self, site_id: str) -> tuple[str, str] | None:
        """(backup id, manifest fingerprint) of the full backup the chain starts from."""
        with self.engine.connect() as c:
            row = c.execute(
                sa.select(sites.c.base_backup_id, sites.c.base_fingerprint).where(sites.c.site_id == site_id)
            ).first()
        return (row[0], row[1]) if row else None

    def chain(self, site_id: str) -> list[ChainLink]:
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(chain_links).where(chain_links.c.site_id == site_id).order_by(chain_links.c.seq)
            ).all()
        return [ChainLink(r.seq, r.backup_id, r.kind, r.manifest_fingerprint, r.run_id) for r in rows]

    def start_chain(self, site_id: str, backup_id: str, fingerprint: str) -> None:
        """Forget any earlier chain of the site and start one on full backup `backup_id`.

        The carry-over queue is kept: it is owed to the new system, whatever the chain."""
        with self.engine.begin() as c:
            for table in (digests, tables, chain_links, sites, open_runs):
                c.execute(table.delete().where(table.c.site_id == site_id))
            c.execute(
                sites.insert().values(
                    site_id=site_id, base_backup_id=backup_id, base_fingerprint=fingerprint, updated_at=_now()
                )
            )
            c.execute(
                chain_links.insert().values(
                    site_id=site_id,
                    seq=0,
                    backup_id=backup_id,
                    kind="full",
                    manifest_fingerprint=fingerprint,
                    run_id=None,
                    created_at=_now(),
                )
            )

    # -- tables -----------------------------------------------------------------------------
    def table_states(self, site_id: str) -> dict[str, TableState]:
        with self.engine.connect() as c:
            rows = c.execute(sa.select(tables).where(tables.c.site_id == site_id)).all()
        found = {}
        for r in rows:
            found[r.table_name] = TableState(
                r.table_name,
                from_json_value(json.loads(r.watermark)) if r.watermark else None,
                from_json_row(json.loads(r.max_key)) if r.max_key else None,
                TableFingerprint.parse(r.chain_fingerprint),
            )
        return found

    # -- digests ----------------------------------------------------------------------------
    def digests_of(self, site_id: str, table: str, keys: Iterable[str]) -> dict[str, tuple[str, str | None]]:
        """{key: (digest, stamp)} for the keys the chain holds."""
        keys = list(keys)
        found: dict[str, tuple[str, str | None]] = {}
        with self.engine.connect() as c:
            for i in range(0, len(keys), KEYS_PER_QUERY):
                rows = c.execute(
                    sa.select(digests.c.row_key, digests.c.digest, digests.c.stamp).where(
                        digests.c.site_id == site_id,
                        digests.c.table_name == table,
                        digests.c.row_key.in_(keys[i : i + KEYS_PER_QUERY]),
                    )
                )
                found.update({k: (d, s) for k, d, s in rows})
        return found

    def iter_digests(
        self, site_id: str, table: str, *, batch: int = 10_000
    ) -> Iterator[list[tuple[str, str, str | None]]]:
        """(key, digest, stamp) of every row of `table` the chain holds, in batches."""
        with self.engine.connect() as c:
            result = c.execution_options(stream_results=True, yield_per=batch).execute(
                sa.select(digests.c.row_key, digests.c.digest, digests.c.stamp).where(
                    digests.c.site_id == site_id, digests.c.table_name == table
                )
            )
            for part in result.partitions(batch):
                yield [tuple(r) for r in part]

    def digest_count(self, site_id: str, table: str) -> int:
        with self.engine.connect() as c:
            return int(
                c.execute(
                    sa.select(sa.func.count())
                    .select_from(digests)
                    .where(digests.c.site_id == site_id, digests.c.table_name == table)
                ).scalar_one()
            )

    def write_baseline_digests(self, site_id: str, table: str, rows: Sequence[tuple[str, str, str | None]]) -> None:
        """Record digests while the first run reads every row (its own transaction per batch)."""
        if rows:
            with self.engine.begin() as c:
                c.execute(
                    digests.insert(),
                    [
                        {"site_id": site_id, "table_name": table, "row_key": k, "digest": d, "stamp": s}
                        for k, d, s in rows
                    ],
                )

    def clear_digests(self, site_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(digests.delete().where(digests.c.site_id == site_id))

    # -- the commit of one increment --------------------------------------------------------
    def commit_increment(
        self,
        site_id: str,
        link: ChainLink,
        table_states: Iterable[TableState],
        changes: Iterable[DigestChange],
        pending_keys: Iterable[tuple[str, str]],
        *,
        mode: str = "delta",
    ) -> None:
        """Chain the increment, move the watermarks, apply the digest changes, queue the carry-over,
        and note the run (of `mode`) as open until its verdict is made (`close_runs`)."""
        changes = list(changes)
        with self.engine.begin() as c:
            c.execute(open_runs.delete().where(open_runs.c.site_id == site_id))
            c.execute(
                open_runs.insert().values(
                    site_id=site_id, run_id=link.run_id or "", mode=mode, backup_id=link.backup_id, committed_at=_now()
                )
            )
            c.execute(
                chain_links.insert().values(
                    site_id=site_id,
                    seq=link.seq,
                    backup_id=link.backup_id,
                    kind=link.kind,
                    manifest_fingerprint=link.manifest_fingerprint,
                    run_id=link.run_id,
                    created_at=_now(),
                )
            )
            rows = [state.to_row(site_id) for state in table_states]
            names = [row["table_name"] for row in rows]
            for i in range(0, len(names), KEYS_PER_QUERY):  # two statements for every table, not two per table
                c.execute(
                    tables.delete().where(
                        tables.c.site_id == site_id, tables.c.table_name.in_(names[i : i + KEYS_PER_QUERY])
                    )
                )
            if rows:
                c.execute(tables.insert(), rows)
            by_table: dict[str, list[DigestChange]] = {}
            for change in changes:
                by_table.setdefault(change.table, []).append(change)
            for table, group in by_table.items():
                keys = [ch.key for ch in group]
                for i in range(0, len(keys), KEYS_PER_QUERY):
                    c.execute(
                        digests.delete().where(
                            digests.c.site_id == site_id,
                            digests.c.table_name == table,
                            digests.c.row_key.in_(keys[i : i + KEYS_PER_QUERY]),
                        )
                    )
                kept = [
                    {"site_id": site_id, "table_name": table, "row_key": ch.key, "digest": ch.digest, "stamp": ch.stamp}
                    for ch in group
                    if ch.digest is not None
                ]
                if kept:
                    c.execute(digests.insert(), kept)
            queued = [
                {"site_id": site_id, "table_name": t, "row_key": k, "backup_id": link.backup_id}
                for t, k in dict.fromkeys(pending_keys)
            ]
            if queued:
                _add_pending(c, site_id, queued)

    # -- runs killed after their increment --------------------------------------------------
    def open_run(self, site_id: str) -> OpenRun | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(open_runs).where(open_runs.c.site_id == site_id)).first()
        return OpenRun(row.run_id, row.mode, row.backup_id) if row else None

    def close_runs(self, site_id: str) -> None:
        """The site's verdict is made: no run is left to finish."""
        with self.engine.begin() as c:
            c.execute(open_runs.delete().where(open_runs.c.site_id == site_id))

    # -- carry-over queue -------------------------------------------------------------------
    def pending(self, site_id: str) -> dict[str, list[str]]:
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(pending.c.table_name, pending.c.row_key)
                .where(pending.c.site_id == site_id)
                .order_by(pending.c.table_name, pending.c.row_key)
            ).all()
        found: dict[str, list[str]] = {}
        for table, key in rows:
            found.setdefault(table, []).append(key)
        return found

    def done_pending(self, site_id: str, table: str, keys: Sequence[str]) -> None:
        self.done_pending_tables(site_id, [(table, keys)])

    def done_pending_tables(self, site_id: str, carried: Iterable[tuple[str, Sequence[str]]]) -> None:
        """Take (table, keys) off the carry-over queue, every table in one transaction."""
        with self.engine.begin() as c:
            for table, keys in carried:
                for i in range(0, len(keys), KEYS_PER_QUERY):
                    c.execute(
                        pending.delete().where(
                            pending.c.site_id == site_id,
                            pending.c.table_name == table,
                            pending.c.row_key.in_(list(keys[i : i + KEYS_PER_QUERY])),
                        )
                    )


def _add_pending(c: Connection, site_id: str, queued: list[dict[str, Any]]) -> None:
    by_table: dict[str, list[str]] = {}
    for row in queued:
        by_table.setdefault(row["table_name"], []).append(row["row_key"])
    for table, keys in by_table.items():
        for i in range(0, len(keys), KEYS_PER_QUERY):
            c.execute(
                pending.delete().where(
                    pending.c.site_id == site_id,
                    pending.c.table_name == table,
                    pending.c.row_key.in_(keys[i : i + KEYS_PER_QUERY]),
                )
            )
    c.execute(pending.insert(), queued)
