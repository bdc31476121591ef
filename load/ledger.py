"""The load ledger: which chunks of which table are durably loaded, and the figures.

One row per chunk (mig_load_ledger), written in the chunk's own transaction,
so a chunk is either loaded with its ledger row or not at all. A re-run
resumes after the last chunk's key; a finished table (mig_load_tables) is
skipped. The site's figures are read back from here, so a resumed run
reports the whole site, not only what it loaded itself.

Example::

    progress = table_progress(conn, "hn-01", "HO_SO")
    progress.next_chunk_no, progress.resume_after      # 3, [150000]
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ts24_migrate.core.rows.fingerprint import TableFingerprint

from .bookkeeping import crosswalk, load_ledger, load_tables, rejects


@dataclass
class TableProgress:
    chunks_done: int = 0
    next_chunk_no: int = 0
    rows_done: int = 0
    resume_after: list[Any] | None = None
    fingerprint: TableFingerprint = field(default_factory=TableFingerprint)
    complete: bool = False


def table_progress(conn: Connection, site_id: str, legacy_table: str) -> TableProgress:
    """What the ledger holds for one table of a site."""
    progress = TableProgress()
    progress.complete = (
        conn.execute(
            sa.select(load_tables.c.chunks).where(
                load_tables.c.site_id == site_id, load_tables.c.legacy_table == legacy_table
            )
        ).first()
        is not None
    )
    chunks = conn.execute(
        sa.select(load_ledger.c.chunk_no, load_ledger.c.rows_in, load_ledger.c.fingerprint, load_ledger.c.resume_after)
        .where(load_ledger.c.site_id == site_id, load_ledger.c.legacy_table == legacy_table)
        .order_by(load_ledger.c.chunk_no)
    ).all()
    for chunk_no, rows_in, fingerprint, resume_after in chunks:
        progress.chunks_done += 1
        progress.rows_done += rows_in
        progress.next_chunk_no = chunk_no + 1
        progress.resume_after = decode_key(resume_after) if resume_after else None
        progress.fingerprint.merge(TableFingerprint.parse(fingerprint))
    return progress


def record_chunk(
    conn: Connection,
    *,
    site_id: str,
    legacy_table: str,
    chunk_no: int,
    first_key: str | None,
    last_key: str | None,
    rows_in: int,
    loaded: int,
    rejected: int,
    conflicts: int,
    run_id: str,
    fingerprint: TableFingerprint,
    resume_after: Sequence[Any] | None,
    now: dt.datetime,
) -> None:
    conn.execute(
        load_ledger.insert().values(
            site_id=site_id,
            legacy_table=legacy_table,
            chunk_no=chunk_no,
            first_key=first_key,
            last_key=last_key,
            rows_in=rows_in,
            loaded=loaded,
            rejected=rejected,
            conflicts=conflicts,
            run_id=run_id,
            done_at=now,
            fingerprint=fingerprint.hexdigest(),
            resume_after=encode_key(resume_after) if resume_after is not None else None,
        )
    )


# Key values as tagged JSON, so a resumed read binds exactly the value it stopped after
# (an int stays an int, a dirty legacy key read as bytes stays bytes).
_KEY_ENCODERS: list[tuple[type, str, Any]] = [
    (bool, "i", int),
    (int, "i", int),
    (float, "f", repr),
    (decimal.Decimal, "n", str),
    (str, "s", str),
    (bytes, "b", bytes.hex),
    (dt.datetime, "t", dt.datetime.isoformat),
    (dt.date, "d", dt.date.isoformat),
]
_KEY_DECODERS: dict[str, Callable[[str], object]] = {
    "i": int,
    "f": float,
    "n": decimal.Decimal,
    "s": str,
    "b": bytes.fromhex,
    "t": dt.datetime.fromisoformat,
    "d": dt.date.fromisoformat,
}


def encode_key(values: Sequence[Any]) -> str:
    """encode_key([12, 'AB']) == '[["i", 12], ["s", "AB"]]'; decode_key gives the values back."""
    encoded: list[list[Any]] = []
    for value in values:
        if value is None:  # only SQLite lets a key hold NULL; the reader refuses to resume after one
            encoded.append(["z", None])
            continue
        for kind, tag, convert in _KEY_ENCODERS:
            if isinstance(value, kind):
                encoded.append([tag, convert(value)])
                break
        else:
            raise TypeError(f"cannot record a legacy key of type {type(value).__name__}")
    return json.dumps(encoded, ensure_ascii=False)


def decode_key(text: str) -> list[Any]:
    return [None if tag == "z" else _KEY_DECODERS[tag](value) for tag, value in json.loads(text)]


def complete_table(
    conn: Connection,
    *,
    site_id: str,
    legacy_table: str,
    target_table: str,
    fingerprint: TableFingerprint,
    chunks: int,
    run_id: str,
    now: dt.datetime,
) -> None:
    conn.execute(
        load_tables.insert().values(
            site_id=site_id,
            legacy_table=legacy_table,
            target_table=target_table,
            source_fingerprint=fingerprint.hexdigest(),
            chunks=chunks,
            run_id=run_id,
            completed_at=now,
        )
    )


def table_figures(conn: Connection, site_id: str, legacy_table: str) -> dict[str, Any]:
    """The accounting of one table over every run of the site, from the ledger and the rejects."""
    sums = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(load_ledger.c.rows_in), 0),
            sa.func.coalesce(sa.func.sum(load_ledger.c.loaded), 0),
            sa.func.coalesce(sa.func.sum(load_ledger.c.rejected), 0),
            sa.func.coalesce(sa.func.sum(load_ledger.c.conflicts), 0),
        ).where(load_ledger.c.site_id == site_id, load_ledger.c.legacy_table == legacy_table)
    ).one()
    by_reason = conn.execute(
        sa.select(rejects.c.reason_code, sa.func.count())
        .where(rejects.c.site_id == site_id, rejects.c.legacy_table == legacy_table)
        .group_by(rejects.c.reason_code)
    ).all()
    finished = conn.execute(
        sa.select(load_tables.c.source_fingerprint).where(
            load_tables.c.site_id == site_id, load_tables.c.legacy_table == legacy_table
        )
    ).scalar()
    crosswalked = conn.execute(
        sa.select(sa.func.count())
        .select_from(crosswalk)
        .where(crosswalk.c.site_id == site_id, crosswalk.c.legacy_table == legacy_table)
    ).scalar_one()
    chunks, rows_in, loaded, rejected, conflicts = (int(v) for v in sums)
    return {
        "source_rows": rows_in,
        "loaded": loaded,
        "rejected": rejected,
        "conflicts": conflicts,
        "rejects_by_reason": dict(sorted(Counter(dict(by_reason)).items())),
        "source_fingerprint": finished,
        "chunks": chunks,
        "complete": finished is not None,
        "crosswalk_rows": crosswalked,
    }
