"""The column-wise digests (ts24_migrate.core.rows.batch_digest) equal row_digest, row by row, for every value
the extraction can produce; and the backup's part fingerprints equal the reference over the rows read."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql

from extract.discovery import ColumnInfo, TableInfo, discover_tables
from extract.extraction import iter_table_parts, live_fingerprints, parquet_bytes, table_fingerprint
from extract.reader import iter_table_rows, read_batch
from ts24_migrate.core.db import legacy_engine
from ts24_migrate.core.rows.arrow_types import ColumnPlan, kind_of, rows_to_batch
from ts24_migrate.core.rows.batch_digest import batch_row_digests, legacy_row_hashes, row_digests
from ts24_migrate.core.rows.fingerprint import TableFingerprint, row_digest
from ts24_migrate.core.secrets import Secret

_NAIVE = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31))
_TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["\udcff", "a\ud800b"]))  # lone surrogates too
# Declared type -> values a driver may hand back for it, matching or not (text in a DATETIME
# column, bytes for non-UTF-8 text, an int beyond int64, an aware datetime).
_VALUES = {
    sa.BigInteger(): st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(), st.text(max_size=4)),
    sa.Boolean(): st.booleans(),
    sa.Float(): st.one_of(st.floats(), st.integers(-5, 5)),
    sa.Numeric(12, 3): st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**8), max_value=10**8),
        st.decimals(allow_nan=False, allow_infinity=False),
    ),
    sa.DateTime(): st.one_of(_NAIVE, st.datetimes(timezones=st.timezones()), st.text(max_size=12)),
    sa.Date(): st.dates(),
    sa.Time(): st.times(),
    sa.Unicode(50): st.one_of(_TEXT, st.binary(max_size=12), st.just("a\x00b"), st.just(b"H\xb5 N\xe9i")),
    sa.LargeBinary(): st.binary(max_size=12).map(lambda b: b + b"\x00"),
    sa.types.NullType(): st.one_of(st.integers(), _TEXT, st.binary(), st.dates(), st.floats()),
}
_PLANS = [ColumnPlan(f"c{i}", str(t), True, *kind_of(t)) for i, t in enumerate(_VALUES)]
_ROWS = st.lists(st.tuples(*[st.one_of(st.none(), values) for values in _VALUES.values()]), max_size=12)


def reference(rows) -> list[bytes]:
    return [row_digest(r) for r in rows]


@settings(max_examples=150, deadline=None)
@given(rows=_ROWS)
def test_part_digests_equal_row_digest_for_every_value_the_extraction_can_read(rows) -> None:
    expected = reference(rows)
    assert row_digests(rows) == expected
    batch = rows_to_batch(_PLANS, rows)  # native columns where the chunk fits, canonical otherwise
    assert batch_row_digests(batch) == expected
    # ... and the same from the Parquet part the backup stores, read back without decoding a value.
    part = pq.read_table(io.BytesIO(parquet_bytes(batch, table_name="T")))
    assert batch_row_digests(part) == expected
    chosen = list(range(len(rows)))[1::2]
    assert batch_row_digests(batch, rows=chosen) == [expected[i] for i in chosen]


@settings(max_examples=100, deadline=None)
@given(
    columns=st.lists(st.sampled_from(list(_VALUES.values())), min_size=1, max_size=4),
    n=st.integers(0, 8),
    data=st.data(),
)
def test_reader_batches_with_mixed_columns_hash_like_the_rows_they_hold(columns, n, data) -> None:
    """A column of one Python type per chunk (the common case) or of several (dirty): same digests."""
    rows = data.draw(st.lists(st.tuples(*[st.one_of(st.none(), c) for c in columns]), min_size=n, max_size=n))
    table = _table_info(len(columns))
    try:
        batch = read_batch(table, rows)
    except (pa.ArrowException, ValueError, OverflowError, UnicodeError):
        # No Arrow type holds the value (an int beyond int64, a lone surrogate, a UTC offset of
        # 2:34:52): no batch, a clear error, nothing to hash. Never for mapped TS24 columns.
        return
    assert batch.to_pylist() == [dict(zip(table.column_names, r)) for r in rows] or _has_nan(rows)
    assert legacy_row_hashes(batch) == [d.hex() for d in reference(rows)]


def _table_info(width: int) -> TableInfo:
    names = [f"c{i}" for i in range(width)]
    return TableInfo(
        "T",
        None,
        tuple(ColumnInfo(n, "ANY", True) for n in names),
        (),
        sa.Table("T", sa.MetaData(), *[sa.Column(n, sa.types.NullType) for n in names]),
    )


def _has_nan(rows) -> bool:
    return any(isinstance(v, float) and math.isnan(v) for r in rows for v in r)


def test_table_fingerprint_add_rows_takes_lists_generators_and_ragged_rows() -> None:
    rows = [
        (i, f"dòng {i % 7}", dt.datetime(2025, 7, 1) + dt.timedelta(seconds=i), b"\x00" * (i % 3))
        for i in range(25_003)
    ]
    expected = TableFingerprint()
    for r in rows:
        expected.add_digest(row_digest(r))
    from_list, from_generator = TableFingerprint(), TableFingerprint()
    from_list.add_rows(rows)
    from_generator.add_rows(r for r in rows)  # more than one slice of rows
    assert from_list == expected == from_generator and expected.rows == 25_003
    ragged = [(1, "a"), (2,), ()]
    fingerprint = TableFingerprint()
    fingerprint.add_rows(ragged)
    assert fingerprint.total == sum(int.from_bytes(row_digest(r), "big") for r in ragged) % (1 << 256)


def _reference_fingerprint(conn, table) -> tuple[TableFingerprint, list[tuple]]:
    fingerprint, read = TableFingerprint(), []
    for rows in iter_table_rows(conn, table, chunk_rows=1000):
        read.extend(rows)
        for r in rows:
            fingerprint.add_digest(row_digest(r))
    return fingerprint, read


def test_parts_of_a_dirty_sqlite_table_fingerprint_like_row_digest(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'legacy.sqlite'}"
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql(
            'CREATE TABLE "T" ("K" VARCHAR(10) PRIMARY KEY, "WHEN" DATETIME, "DAY" DATE, '
            '"AMOUNT" NUMERIC(10, 2), "NAME" TEXT, "BLOB" BLOB, "N" INTEGER)'
        )
        conn.exec_driver_sql(
            'INSERT INTO "T" VALUES '
            "('a', '2025-07-01 08:00:00.000001', '2025-07-01', 12.5, 'Hà Nội', x'00ff00', 1), "
            "('b', '31/02/2019', 'n/a', 'n/a', CAST(x'48b5204ee969' AS TEXT), x'', 9223372036854775807), "
            "('c', NULL, NULL, NULL, 'a' || char(0) || 'b', NULL, NULL), "
            "(NULL, '2025-07-02 00:00:00.000000', '0999-01-02', -0.5, '', x'00', -1), "
            "('d', 20250701, 5, 1e400, 'x', 'text in a blob', 2.5)"
        )
    legacy = legacy_engine(Secret(url))
    with legacy.connect() as conn:
        [table] = discover_tables(conn)
        expected, read = _reference_fingerprint(conn, table)
        parts = list(iter_table_parts(conn, table, chunk_rows=2))
        assert table_fingerprint(conn, table, chunk_rows=3) == expected
    assert expected.rows == 5 and sum(p.rows for p in parts) == 5
    total = TableFingerprint()
    for part in parts:
        total.merge(part.fingerprint)
    assert total == expected
    by_key = {r[0]: r for r in read}
    assert by_key["b"][1:5] == ("31/02/2019", "n/a", "n/a", b"H\xb5 N\xe9i")  # as stored; not UTF-8 -> bytes
    assert by_key["a"][1:4] == (dt.datetime(2025, 7, 1, 8, 0, 0, 1), dt.date(2025, 7, 1), decimal.Decimal("12.50"))
    assert by_key["c"][4] == "a\x00b"
    assert live_fingerprints(legacy) == {"T": expected.hexdigest()}


@pytest.mark.mariadb
def test_parts_of_a_mariadb_table_fingerprint_like_row_digest(mariadb_database) -> None:
    writable = sa.create_engine(mariadb_database())
    metadata = sa.MetaData()
    table = sa.Table(
        "T",
        metadata,
        sa.Column("ID", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("WHEN", mysql.DATETIME(fsp=6)),
        sa.Column("AMOUNT", sa.Numeric(12, 3)),
        sa.Column("RATE", sa.Float),
        sa.Column("NAME", sa.Unicode(50)),
        sa.Column("BODY", sa.LargeBinary),
        sa.Column("DAY", sa.Date),
        sa.Column("FLAG", sa.Boolean),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    metadata.create_all(writable)
    rows = [
        {
            "ID": i,
            "WHEN": dt.datetime(2025, 7, 1, 8, 0, 0, i) if i % 3 else None,
            "AMOUNT": decimal.Decimal(i) / 8,
            "RATE": i / 3,
            "NAME": ["Hà Nội", "Haø Noäi", "Hµ Néi", None][i % 4],
            "BODY": bytes([0, i % 256, 0]) if i % 5 else None,
            "DAY": dt.date(1000 + i, 1, 1),
            "FLAG": i % 2 == 0,
        }
        for i in range(1, 41)
    ]
    with writable.begin() as conn:
        conn.execute(table.insert(), rows)
    writable.dispose()
    legacy = legacy_engine(Secret(writable.url.render_as_string(hide_password=False)))
    try:
        with legacy.connect() as conn:
            [info] = discover_tables(conn)
            expected, read = _reference_fingerprint(conn, info)
            total = TableFingerprint()
            for part in iter_table_parts(conn, info, chunk_rows=7):
                total.merge(part.fingerprint)
    finally:
        legacy.dispose()
    assert total == expected and expected.rows == 40
    assert {type(v) for r in read for v in r} >= {int, dt.datetime, decimal.Decimal, float, str, bytes, dt.date}
