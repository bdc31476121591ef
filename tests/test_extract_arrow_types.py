"""Rows -> Arrow -> Parquet -> rows gives back the very values read from the source."""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mssql, mysql

from extract.discovery import discover_tables
from extract.extraction import iter_table_parts, live_fingerprints, parquet_bytes, read_parquet_rows
from extract.json_values import from_json_value, json_value
from ts24_migrate.core.db import legacy_engine
from ts24_migrate.core.rows.arrow_types import (
    CANONICAL,
    NATIVE,
    ColumnPlan,
    column_encoding,
    decode_canonical,
    kind_of,
    rows_to_batch,
    stored_value,
)
from ts24_migrate.core.rows.fingerprint import TableFingerprint, canonical_value, row_digest
from ts24_migrate.core.secrets import Secret


@pytest.mark.parametrize(
    "declared, kind",
    [
        (sa.BigInteger(), "int"),
        (mysql.TINYINT(display_width=1), "int"),
        (mssql.BIT(), "bool"),
        (sa.Float(), "float"),
        (mysql.DOUBLE(), "float"),
        (sa.Numeric(10, 2), "decimal"),
        (sa.Numeric(), "dynamic"),
        (mysql.DATETIME(fsp=6), "datetime"),
        (sa.Date(), "date"),
        (sa.Time(), "time"),
        (sa.CHAR(2), "string"),
        (sa.Unicode(200), "string"),
        (mysql.LONGBLOB(), "binary"),
        (mssql.VARBINARY("max"), "binary"),
        (sa.types.NullType(), "dynamic"),
    ],
)
def test_declared_types_get_a_storage_kind(declared, kind) -> None:
    assert kind_of(declared)[0] == kind


def _round_trip(plans: list[ColumnPlan], rows: list[tuple]) -> tuple[pa.Schema, list[tuple]]:
    data = parquet_bytes(rows_to_batch(plans, rows), table_name="T")
    return read_parquet_rows(data)


def _typed(rows):
    """Rows as (type, exact form) pairs: decimals by value (a DECIMAL(p, s) column gives them its
    scale), everything else by its lossless encoding, so -0.0 differs from 0.0 and an aware
    datetime is compared by its offset (Python never calls a time in a DST gap equal across zones)."""
    return [tuple((type(v), v if isinstance(v, decimal.Decimal) else stored_value(v)) for v in row) for row in rows]


_NAIVE = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31))
_VALUES = {  # declared type -> values a driver may hand back for it (matching or not)
    sa.BigInteger(): st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.integers(), st.text()),
    sa.Boolean(): st.booleans(),
    sa.Float(): st.one_of(st.floats(allow_nan=False), st.integers(min_value=-5, max_value=5)),
    sa.Numeric(12, 3): st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**8), max_value=10**8),
        st.decimals(allow_nan=False, allow_infinity=False),
    ),
    sa.DateTime(): st.one_of(_NAIVE, st.datetimes(timezones=st.timezones()), st.text(max_size=12)),
    sa.Date(): st.dates(),
    sa.Time(): st.times(),
    sa.Unicode(50): st.one_of(st.text(), st.binary()),
    sa.LargeBinary(): st.binary(),
    sa.types.NullType(): st.one_of(st.integers(), st.text(), st.binary(), st.dates(), st.floats(allow_nan=False)),
}
_PLANS = [ColumnPlan(f"c{i}", str(t), True, *kind_of(t)) for i, t in enumerate(_VALUES)]
_ROWS = st.lists(st.tuples(*[st.one_of(st.none(), values) for values in _VALUES.values()]), max_size=20)


@settings(max_examples=60, deadline=None)
@given(rows=_ROWS)
def test_any_values_survive_the_parquet_round_trip_with_their_types(rows) -> None:
    schema, back = _round_trip(_PLANS, rows)
    assert _typed(back) == _typed(rows)
    assert [row_digest(r) for r in back] == [row_digest(r) for r in rows]
    assert len(schema) == len(_PLANS)


def test_values_that_do_not_fit_are_stored_canonically_for_that_part_only() -> None:
    plans = [
        ColumnPlan("WHEN", "DATETIME", True, *kind_of(sa.DateTime())),
        ColumnPlan("NOTE", "NVARCHAR(50)", True, *kind_of(sa.Unicode(50))),
    ]
    clean = [(dt.datetime(2025, 7, 1, 8, 30, 0, 5), "Hà Nội")]
    dirty = [(dt.datetime(2025, 7, 1), "a\x00b"), ("31/02/2019", None)]
    clean_schema, _ = _round_trip(plans, clean)
    dirty_schema, back = _round_trip(plans, dirty)
    assert [column_encoding(f) for f in clean_schema] == [NATIVE, NATIVE]
    assert clean_schema.field("WHEN").type == pa.timestamp("us")
    assert [column_encoding(f) for f in dirty_schema] == [CANONICAL, CANONICAL]
    assert back == dirty


def test_decode_canonical_inverts_canonical_value_and_rejects_damage() -> None:
    for value in [
        None,
        0,
        -(2**80),
        1.5,
        float("inf"),
        decimal.Decimal("-0.0100"),
        "t\x00ext\udc80",
        b"\x00\xff",
        dt.datetime(2025, 7, 1, tzinfo=dt.timezone(dt.timedelta(hours=7))),
        dt.date(1, 1, 1),
        dt.time(23, 59, 59, 999999),
        decimal.Decimal("3.4709785025155070129968407289E-17"),
    ]:
        assert canonical_value(decode_canonical(canonical_value(value))) == canonical_value(value)
        back = decode_canonical(stored_value(value))
        assert type(back) is type(value) and str(back) == str(value)  # every digit, exponent included
    with pytest.raises(ValueError):
        decode_canonical(canonical_value("abc")[:-1])
    with pytest.raises(ValueError):
        decode_canonical(b"Z" + canonical_value("abc")[1:])


@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.text(),
        st.binary(),
        st.floats(allow_nan=False),
        st.decimals(allow_nan=False),
        _NAIVE,
        st.dates(),
        st.times(),
    )
)
def test_typed_json_values_round_trip(value) -> None:
    back = from_json_value(value if value is None else json_value(value))
    assert type(back) is type(value) and back == value


def test_a_dirty_sqlite_table_is_extracted_as_stored(tmp_path) -> None:
    """SQLite lets a DATETIME or NUMERIC column hold text; SQLAlchemy alone would raise on it."""
    url = f"sqlite:///{tmp_path / 'legacy.sqlite'}"
    writable = sa.create_engine(url)
    with writable.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE "T" ("ID" INTEGER PRIMARY KEY, "WHEN" DATETIME, "AMOUNT" NUMERIC(10, 2))')
        conn.exec_driver_sql(
            "INSERT INTO \"T\" VALUES (1, '2025-07-01 08:00:00.000000', 12.5), "
            "(2, '31/02/2019', 'n/a'), (3, NULL, NULL)"
        )
    legacy = legacy_engine(Secret(url))
    with legacy.connect() as conn:
        [table] = discover_tables(conn)
        [part] = list(iter_table_parts(conn, table, chunk_rows=10))
    schema, rows = read_parquet_rows(part.parquet)
    assert rows == [
        (1, dt.datetime(2025, 7, 1, 8), decimal.Decimal("12.50")),
        (2, "31/02/2019", "n/a"),
        (3, None, None),
    ]
    assert part.first_key == (1,) and part.last_key == (3,)
    expected = TableFingerprint()
    expected.add_rows(rows)
    assert part.fingerprint == expected
    assert live_fingerprints(legacy) == {"T": expected.hexdigest()}


def test_watermark_is_the_highest_value_of_the_watermark_column(tmp_path) -> None:
    from ts24_migrate.core.legacy.schema import HO_SO

    url = f"sqlite:///{tmp_path / 'legacy.sqlite'}"
    writable = sa.create_engine(url)
    HO_SO.create(writable)
    stamps = [dt.datetime(2025, 6, d) for d in (3, 29, 7)]
    with writable.begin() as conn:
        conn.execute(
            HO_SO.insert(),
            [{"ID_HO_SO": i, "SO_HO_SO": f"S{i}", "NGAY_CAP_NHAT": s} for i, s in enumerate(stamps, start=1)],
        )
    with legacy_engine(Secret(url)).connect() as conn:
        [table] = discover_tables(conn)
        parts = list(iter_table_parts(conn, table, chunk_rows=2))
    assert [p.watermark for p in parts] == [dt.datetime(2025, 6, 29), dt.datetime(2025, 6, 7)]
    assert [p.rows for p in parts] == [2, 1]


def test_a_dirty_key_does_not_stop_keyset_pagination(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'legacy.sqlite'}"
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql('CREATE TABLE "D" ("K" DATETIME PRIMARY KEY, "V" INTEGER)')
        conn.exec_driver_sql(
            "INSERT INTO \"D\" VALUES ('2020-01-01 00:00:00.000000', 1), ('31/02/2019', 2), "
            "('2021-01-01 00:00:00.000000', 3)"
        )
    with legacy_engine(Secret(url)).connect() as conn:
        [table] = discover_tables(conn)
        parts = list(iter_table_parts(conn, table, chunk_rows=1))
    assert [p.first_key for p in parts] == [(dt.datetime(2020, 1, 1),), (dt.datetime(2021, 1, 1),), ("31/02/2019",)]
