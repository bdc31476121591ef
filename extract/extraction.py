"""Extract legacy tables into bounded Parquet parts, with the figures the backup records.

A part is one chunk of a table (at most `chunk_rows` rows) serialised as a
Parquet file *in memory*: the backup encrypts it before anything touches the
disk, so unencrypted legacy data is never written out. Each part carries its
row count, the fingerprint of its rows (ts24_migrate.core.rows.fingerprint, computed over the
values exactly as the driver returned them), its key range and the highest
watermark it saw; a table's figures are the merge of its parts' figures.

Keyed tables are read in key order by keyset pagination, so a killed backup
can resume after the last key it stored; a table without a key is read in one
consistent pass (extract.reader).

Example::

    with legacy.connect() as conn:
        for part in iter_table_parts(conn, table_info, chunk_rows=50_000):
            store(part.parquet)          # part.rows, part.fingerprint.hexdigest(), part.last_key
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from extract.discovery import column_plan
from ts24_migrate.core.rows.arrow_types import batch_columns, batch_to_rows, nul_text_counts, schema_layout
from ts24_migrate.core.rows.batch_digest import batch_row_digests
from ts24_migrate.core.rows.fingerprint import TableFingerprint

from .arrow_reader import arrow_reads_wanted, iter_stored_batches
from .attachments import ATTACHMENTS_KEY, attachment_fingerprint
from .discovery import TableInfo, discover_tables
from .reader import as_stored, iter_table_rows

__all__ = [
    "ExtractedPart",
    "as_stored",
    "count_rows",
    "iter_table_parts",
    "live_fingerprints",
    "parquet_bytes",
    "read_parquet_rows",
    "table_fingerprint",
]

PARQUET_COMPRESSION = "zstd"


@dataclass(frozen=True)
class ExtractedPart:
    """One chunk of a table, as plaintext Parquet bytes plus its figures."""

    table: str
    rows: int
    parquet: bytes
    plaintext_sha256: str
    fingerprint: TableFingerprint
    first_key: tuple[Any, ...] | None  # None for a table without a primary key
    last_key: tuple[Any, ...] | None
    watermark: Any  # highest value of the table's watermark column in this part, if any
    schema: list[list[str]]  # [[column, arrow type, encoding], ...]
    # {column: rows} whose text holds NUL, stored as framed binary in this part (ts24_migrate.core.rows.arrow_types)
    nul_text: dict[str, int] = field(default_factory=dict)


def parquet_bytes(batch: pa.RecordBatch, *, table_name: str) -> bytes:
    table = pa.Table.from_batches([batch])
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"ts24.table": table_name.encode()})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=PARQUET_COMPRESSION)
    return sink.getvalue()


def read_parquet_rows(data: bytes) -> tuple[pa.Schema, list[tuple[Any, ...]]]:
    """The schema and rows of a part written by parquet_bytes, values as originally read."""
    table = pq.read_table(io.BytesIO(data))
    return table.schema, batch_to_rows(table)


def count_rows(conn: Connection, table: TableInfo) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table.table)).scalar_one())


def _highest(values: Iterable[Any]) -> Any:
    present = [v for v in values if v is not None]
    try:
        return max(present) if present else None
    except TypeError:  # mixed types in a dirty column: no meaningful watermark
        return None


def iter_table_parts(
    conn: Connection,
    table: TableInfo,
    *,
    chunk_rows: int = 50_000,
    start_after: Sequence[Any] | None = None,
    arrow_reads: bool | None = None,
) -> Iterator[ExtractedPart]:
    """Yield the table as parts of at most `chunk_rows` rows, in key order where there is a key.

    `arrow_reads`: read through ADBC where it gives the same values (extract.arrow_reader; default:
    the TS24_ARROW_READS setting: SQLite only unless it says otherwise); the parts are the same either way.
    """
    plans = column_plan(table)
    key_positions = [table.column_names.index(name) for name in table.primary_key]
    watermark_column = table.watermark_column
    watermark_position = table.column_names.index(watermark_column) if watermark_column else None
    batches = iter_stored_batches(conn, table, chunk_rows=chunk_rows, start_after=start_after, arrow_reads=arrow_reads)
    for batch in batches:
        fingerprint = TableFingerprint()
        # Digested column-wise from the very batch the part is made of: the values read, as stored.
        fingerprint.add_digests(batch_row_digests(batch))
        data = parquet_bytes(batch, table_name=table.name)
        first_key = last_key = None
        if key_positions:
            [first], [last] = batch_to_rows(batch.slice(0, 1)), batch_to_rows(batch.slice(batch.num_rows - 1, 1))
            first_key, last_key = tuple(first[i] for i in key_positions), tuple(last[i] for i in key_positions)
        watermark = None
        if watermark_position is not None:
            [watermark_values] = batch_columns(batch.select([watermark_position]))
            watermark = _highest(watermark_values)
        yield ExtractedPart(
            table.name,
            batch.num_rows,
            data,
            hashlib.sha256(data).hexdigest(),
            fingerprint,
            first_key,
            last_key,
            watermark,
            schema_layout(batch.schema),
            nul_text_counts(plans, batch),
        )


def table_fingerprint(
    conn: Connection, table: TableInfo, *, chunk_rows: int = 50_000, arrow_reads: bool | None = None
) -> TableFingerprint:
    """The fingerprint of a table as it is now, read the same way the extraction reads it."""
    fingerprint = TableFingerprint()
    if not arrow_reads_wanted(arrow_reads, conn.dialect.name):
        for rows in iter_table_rows(conn, table, chunk_rows=chunk_rows):
            fingerprint.add_rows(rows)
        return fingerprint
    for batch in iter_stored_batches(conn, table, chunk_rows=chunk_rows, arrow_reads=True):
        fingerprint.add_digests(batch_row_digests(batch))
    return fingerprint


def live_fingerprints(
    legacy: Engine | Connection,
    attachments_dir: Path | None = None,
    *,
    chunk_rows: int = 50_000,
    tables: Iterable[str] | None = None,
) -> dict[str, str]:
    """Fingerprint of every table (or of `tables`) and of the attachment folder, from the live source.

    This is what the restore check and the purge gate compare with a backup
    manifest: ``{"HO_SO": "rows=2000;sum=...", ..., "@attachments": "rows=...;sum=..."}``.
    """
    wanted = set(tables) if tables is not None else None
    result: dict[str, str] = {}
    connection_context = legacy.connect() if isinstance(legacy, Engine) else _borrowed(legacy)
    with connection_context as conn:
        for table in discover_tables(conn):
            if wanted is None or table.name in wanted:
                result[table.name] = table_fingerprint(conn, table, chunk_rows=chunk_rows).hexdigest()
    if attachments_dir is not None:
        result[ATTACHMENTS_KEY] = attachment_fingerprint(attachments_dir).fingerprint.hexdigest()
    return result


class _borrowed:
    """A connection the caller owns: used as a context manager without closing it."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def __enter__(self) -> Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        return None
