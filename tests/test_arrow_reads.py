"""Arrow-native reads (extract.arrow_reader) give the very batches, parts and fingerprints of the
current reader, over the dirty demo TS24 sites and Hypothesis-made SQLite tables of any storage class;
and the pages they cannot give exactly go the current way, for the reasons documented there."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql

from extract.arrow_reader import ARROW_READS_ENV, ArrowReadStats, arrow_reads_wanted, iter_stored_batches
from extract.discovery import discover_tables
from extract.extraction import iter_table_parts, table_fingerprint
from ts24_migrate.core.db import legacy_arrow_connection, legacy_engine
from ts24_migrate.core.rows.batch_digest import batch_row_digests
from ts24_migrate.core.secrets import Secret
from ts24_migrate.demo import generate_site


def _same_batches(conn: sa.Connection, table, chunk_rows: int, **options) -> ArrowReadStats:
    """Both paths over the table: equal batches (values, types, encodings), digests and parts."""
    stats = ArrowReadStats()
    current = list(iter_stored_batches(conn, table, chunk_rows=chunk_rows, arrow_reads=False, **options))
    arrow = list(iter_stored_batches(conn, table, chunk_rows=chunk_rows, arrow_reads=True, stats=stats, **options))
    assert [b.num_rows for b in arrow] == [b.num_rows for b in current]
    for ours, theirs in zip(arrow, current):
        assert ours.schema.equals(theirs.schema, check_metadata=True), (ours.schema, theirs.schema)
        assert ours.equals(theirs)
        assert ours.to_pylist() == theirs.to_pylist()
        assert batch_row_digests(ours) == batch_row_digests(theirs)
    return stats


def _parts(conn: sa.Connection, table, chunk_rows: int, arrow_reads: bool) -> list[dict]:
    parts = iter_table_parts(conn, table, chunk_rows=chunk_rows, arrow_reads=arrow_reads)
    return [{**dataclasses.asdict(p), "fingerprint": p.fingerprint.hexdigest()} for p in parts]


def test_a_dirty_demo_site_reads_the_same_parts_and_fingerprints_through_arrow(tmp_path: Path) -> None:
    writable = sa.create_engine(f"sqlite:///{tmp_path / 'legacy.sqlite'}")
    generate_site(writable, tmp_path / "files", seed=7, scale=0.05, cutover=dt.date(2025, 7, 1))
    writable.dispose()
    legacy = legacy_engine(Secret(f"sqlite:///{tmp_path / 'legacy.sqlite'}"))  # read-only, as in a run
    with legacy.connect() as conn:
        tables = discover_tables(conn)
        assert len([t for t in tables if t.primary_key]) >= 6
        for table in tables:
            stats = _same_batches(conn, table, chunk_rows=31)
            if table.primary_key:  # clean and dirty (text) values alike go the Arrow way on the demo
                assert stats.fallback_pages == 0 and stats.arrow_pages >= 1, (table.name, stats)
            assert _parts(conn, table, 61, arrow_reads=True) == _parts(conn, table, 61, arrow_reads=False)
            assert table_fingerprint(conn, table, chunk_rows=500, arrow_reads=True) == table_fingerprint(
                conn, table, chunk_rows=500, arrow_reads=False
            )


def test_the_setting_reads_sqlite_the_arrow_way_unless_told_otherwise(monkeypatch) -> None:
    monkeypatch.delenv(ARROW_READS_ENV, raising=False)
    assert arrow_reads_wanted(None, "sqlite") and not arrow_reads_wanted(None, "mysql")
    monkeypatch.setenv(ARROW_READS_ENV, "all")  # MariaDB too: its pages then share no snapshot
    assert arrow_reads_wanted(None, "sqlite") and arrow_reads_wanted(None, "mysql")
    monkeypatch.setenv(ARROW_READS_ENV, "off")
    assert not arrow_reads_wanted(None, "sqlite") and not arrow_reads_wanted(None, "mysql")
    assert arrow_reads_wanted(True, "mysql") and not arrow_reads_wanted(False, "sqlite")  # the caller's choice


def test_the_arrow_connection_is_read_only(tmp_path: Path) -> None:
    path = tmp_path / "legacy.sqlite"
    with sqlite3.connect(path) as db:
        db.execute('CREATE TABLE "T" ("K" INTEGER PRIMARY KEY)')
    engine = sa.create_engine(f"sqlite:///{path}")  # even from a writable engine
    with engine.connect() as conn:
        adbc = legacy_arrow_connection(conn)
        assert adbc is not None
        cursor = adbc.cursor()
        with pytest.raises(Exception, match="readonly"):
            cursor.execute('INSERT INTO "T" VALUES (1)')
        cursor.close()
        adbc.close()
    with sa.create_engine("sqlite://").connect() as conn:
        assert legacy_arrow_connection(conn) is None


# A value for a column, and how it is written: a parameter SQLite stores with its own storage class,
# or text made from bytes that may not be UTF-8 (the legacy encodings).
_ISO = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31))
_STORED = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=6),
    _ISO.map(lambda d: d.isoformat(sep=" ", timespec="microseconds")),
    _ISO.map(lambda d: d.isoformat(sep=" ", timespec="seconds")),
    _ISO.map(lambda d: d.date().isoformat()),
    st.sampled_from(["31/02/2019", "2019-02-30", "0000-01-01", "2025-07-01T08:00", "20250701", "n/a", "a\x00b"]),
    st.binary(max_size=6).map(lambda b: ("text", b + b"\xb5")),  # text that is not UTF-8
)
_DECLARED = ["DATETIME", "DATE", "NUMERIC(10, 2)", "TEXT", "VARCHAR(20)", "BLOB", "REAL", "INTEGER", "BOOLEAN"]
# How often a column holds values of one kind only: the common, clean case the Arrow path takes.
_CLEAN = {
    "DATETIME": _ISO.map(lambda d: d.isoformat(sep=" ", timespec="microseconds")),
    "DATE": _ISO.map(lambda d: d.date().isoformat()),
    "NUMERIC(10, 2)": st.floats(-1e6, 1e6),
    "TEXT": st.text(max_size=8),
    "VARCHAR(20)": st.text(max_size=8),
    "BLOB": st.binary(max_size=6),
    "REAL": st.floats(allow_nan=False),
    "INTEGER": st.integers(-(2**63), 2**63 - 1),
    "BOOLEAN": st.integers(0, 1),
}


@st.composite
def _tables(draw):
    key = draw(st.sampled_from(["INTEGER PRIMARY KEY", "VARCHAR(10) PRIMARY KEY"]))
    declared = draw(st.lists(st.sampled_from(_DECLARED), min_size=1, max_size=5))
    column_values = [st.one_of(st.none(), _CLEAN[d]) if draw(st.integers(0, 2)) else _STORED for d in declared]
    rows = draw(st.lists(st.tuples(*column_values), max_size=12))
    if key.startswith("INTEGER"):
        keys = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=len(rows), max_size=len(rows), unique=True))
    else:
        keys = draw(
            st.lists(st.one_of(st.none(), st.text(max_size=4)), min_size=len(rows), max_size=len(rows)).filter(
                lambda ks: len([k for k in ks if k is not None]) == len({k for k in ks if k is not None})
            )
        )
    return key, declared, [(k, *r) for k, r in zip(keys, rows)], draw(st.integers(1, 5))


def _write(path: Path, key: str, declared: list[str], rows: list[tuple]) -> None:
    columns = ", ".join([f'"K" {key}', *[f'"C{i}" {d}' for i, d in enumerate(declared)]])
    with sqlite3.connect(path) as db:
        db.execute(f'CREATE TABLE "T" ({columns})')
        for row in rows:
            marks = ["CAST(? AS TEXT)" if isinstance(v, tuple) else "?" for v in row]
            params = [v[1] if isinstance(v, tuple) else v for v in row]
            db.execute(f'INSERT INTO "T" VALUES ({", ".join(marks)})', params)
    db.close()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=_tables())
def test_any_sqlite_values_read_the_same_through_arrow(tmp_path_factory, table) -> None:
    key, declared, rows, chunk_rows = table
    path = tmp_path_factory.mktemp("arrow") / "legacy.sqlite"
    _write(path, key, declared, rows)
    legacy = legacy_engine(Secret(f"sqlite:///{path}"))
    try:
        with legacy.connect() as conn:
            [info] = discover_tables(conn)
            _same_batches(conn, info, chunk_rows)
            if rows and rows[-1][0] is not None:
                _same_batches(conn, info, chunk_rows, start_after=[min(r[0] for r in rows if r[0] is not None)])
    finally:
        legacy.dispose()


def test_what_goes_the_current_way_and_why(tmp_path: Path) -> None:
    """The documented fallbacks: a column mixing storage classes sends its page the current way;
    tables without a key and other databases never take the Arrow path; the rest is taken,
    converted value by value where Arrow cannot parse (non-ISO dates, non-UTF-8 text, decimals)."""
    path = tmp_path / "legacy.sqlite"
    with sqlite3.connect(path) as db:
        db.execute('CREATE TABLE "T" ("K" INTEGER PRIMARY KEY, "WHEN" DATETIME, "AMOUNT" NUMERIC(10, 2), "NAME" TEXT)')
        db.execute(
            "INSERT INTO \"T\" VALUES (1, '2025-07-01 08:00:00', 12.5, 'Hà Nội'), "
            "(2, '31/02/2019', 7.25, CAST(x'48b5204ee969' AS TEXT)), "  # page 1: one class per column
            "(3, '2025-07-02 00:00:00', 12.5, 'a'), (4, '2025-07-03 00:00:00', 'n/a', 'b')"  # page 2: real + text
        )
        db.execute('CREATE TABLE "NOKEY" ("A" INTEGER)')
        db.execute('INSERT INTO "NOKEY" VALUES (1), (2)')
    db.close()
    legacy = legacy_engine(Secret(f"sqlite:///{path}"))
    with legacy.connect() as conn:
        tables = {t.name: t for t in discover_tables(conn)}
        stats = _same_batches(conn, tables["T"], chunk_rows=2)
        assert (stats.arrow_pages, stats.fallback_pages) == (1, 1), stats
        assert stats.reasons == {"page: AMOUNT holds real/text": 1}
        assert stats.python_columns == 3  # WHEN (a non-ISO date), AMOUNT (Decimal), NAME (not UTF-8)
        [first, _] = list(iter_stored_batches(conn, tables["T"], chunk_rows=2, arrow_reads=True))
        assert first.column("NAME").type == pa.large_binary()  # canonical: str next to bytes
        keyless = _same_batches(conn, tables["NOKEY"], chunk_rows=1)
        assert keyless.reasons == {"table: no primary key": 1} and keyless.arrow_pages == 0


# --- MariaDB over ODBC (arrow-odbc) ------------------------------------------------------------------

_MARIADB_COLUMNS = [
    sa.Column("ID", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("WHEN", mysql.DATETIME(fsp=6)),
    sa.Column("WHEN_S", sa.DateTime),
    sa.Column("DAY", sa.Date),
    sa.Column("AMOUNT", sa.Numeric(12, 3)),
    sa.Column("RATE", mysql.DOUBLE),
    sa.Column("NAME", sa.Unicode(50)),
    sa.Column("NOTE", mysql.TEXT),
    sa.Column("OLD_NAME", mysql.VARCHAR(50, charset="latin1")),  # legacy bytes kept as latin1 text
    sa.Column("BODY", mysql.BLOB),
    sa.Column("STATE", sa.SmallInteger),
]
_MARIADB_VALUES = {
    "WHEN": st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31)),
    "WHEN_S": st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31)).map(
        lambda d: d.replace(microsecond=0)
    ),
    "DAY": st.dates(min_value=dt.date(1000, 1, 1)),
    "AMOUNT": st.decimals(places=3, min_value=-(10**8), max_value=10**8, allow_nan=False, allow_infinity=False),
    "RATE": st.floats(allow_nan=False, allow_infinity=False),
    "NAME": st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
    "NOTE": st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=30), st.just("ư" * 5000)),
    "OLD_NAME": st.text(st.characters(max_codepoint=255, exclude_categories=("Cs", "Cc")), max_size=20),
    "BODY": st.one_of(st.binary(max_size=20), st.just(b"\x00\xff" * 32_000)),
    "STATE": st.integers(-(2**15), 2**15 - 1),
}


def _mariadb_table(metadata: sa.MetaData, text_key: bool = False) -> sa.Table:
    columns = [c.copy() for c in _MARIADB_COLUMNS]
    if text_key:  # a code as key, compared by the column's collation on both paths
        columns[0] = sa.Column("ID", sa.Unicode(20), primary_key=True)
    return sa.Table("T", metadata, *columns, mysql_charset="utf8mb4", mysql_collate="utf8mb4_bin")


@pytest.mark.mariadb
def test_a_mariadb_table_reads_the_same_through_arrow_odbc(mariadb_database) -> None:
    writable = sa.create_engine(mariadb_database())
    metadata = sa.MetaData()
    table = _mariadb_table(metadata)
    metadata.create_all(writable)
    rows = [
        {
            "ID": i,
            "WHEN": dt.datetime(2025, 7, 1, 8, 0, 0, i) if i % 3 else None,
            "WHEN_S": dt.datetime(1000 + i, 1, 1, 23, 59, 59),
            "DAY": dt.date(1000 + i, 1, 1),
            "AMOUNT": decimal.Decimal(i) / 8,
            "RATE": i / 3,
            "NAME": ["Hà Nội", "Haø Noäi", "😀 emoji", None, "a\x00b"][i % 5],
            "NOTE": "ư" * (i * 100),
            "OLD_NAME": ["Hµ Néi", "Haø Noäi", None][i % 3],
            "BODY": bytes([0, i % 256, 0]) * (i * 500) if i % 5 else None,
            "STATE": i - 20,
        }
        for i in range(1, 41)
    ]
    with writable.begin() as conn:
        conn.execute(table.insert(), rows)
        conn.exec_driver_sql("SET SESSION sql_mode = ''")
        conn.exec_driver_sql("UPDATE T SET `WHEN` = '0000-00-00 00:00:00', `DAY` = '0000-00-00' WHERE ID = 7")
    writable.dispose()
    legacy = legacy_engine(Secret(writable.url.render_as_string(hide_password=False)))
    try:
        with legacy.connect() as conn:
            [info] = discover_tables(conn)
            stats = _same_batches(conn, info, chunk_rows=7)
            # Pages whose text holds NUL are converted value by value (stored canonically): not refused.
            assert stats.arrow_pages == 6 and stats.fallback_pages == 0, stats
            assert _parts(conn, info, 9, arrow_reads=True) == _parts(conn, info, 9, arrow_reads=False)
            [batch, *_] = iter_stored_batches(conn, info, chunk_rows=7, arrow_reads=True)
            assert batch.column("NAME").type == pa.large_binary()  # 'a\x00b' in the first page: canonical
            odbc = legacy_arrow_connection(conn)
            with pytest.raises(Exception, match="READ ONLY"):  # a read-only session, as legacy_engine's
                odbc.execute("INSERT INTO T (ID) VALUES (999)")
        with writable.begin() as conn:  # (the writable engine, disposed above, connects again)
            conn.exec_driver_sql("CREATE TABLE LOBS (ID INT PRIMARY KEY, BODY LONGBLOB, RATE FLOAT)")
            conn.exec_driver_sql("INSERT INTO LOBS VALUES (1, 'x', 1.5)")
        with legacy.connect() as conn:
            lobs = next(t for t in discover_tables(conn) if t.name == "LOBS")
            assert _same_batches(conn, lobs, chunk_rows=7).reasons == {
                "table: column BODY of type LONGBLOB (values up to 16 MiB or 4 GiB)": 1
            }
    finally:
        writable.dispose()
        legacy.dispose()


@pytest.mark.mariadb
def test_a_dirty_demo_site_on_mariadb_reads_the_same_through_arrow_odbc(mariadb_database, tmp_path: Path) -> None:
    writable = sa.create_engine(mariadb_database())
    generate_site(writable, tmp_path / "files", seed=7, scale=0.02, cutover=dt.date(2025, 7, 1))
    writable.dispose()
    legacy = legacy_engine(Secret(writable.url.render_as_string(hide_password=False)))
    try:
        with legacy.connect() as conn:
            taken = 0
            for table in discover_tables(conn):
                stats = _same_batches(conn, table, chunk_rows=53)
                taken += stats.arrow_pages
                assert _parts(conn, table, 101, arrow_reads=True) == _parts(conn, table, 101, arrow_reads=False)
                assert table_fingerprint(conn, table, arrow_reads=True) == table_fingerprint(
                    conn, table, arrow_reads=False
                )
            assert taken >= 6
    finally:
        legacy.dispose()


@pytest.mark.mariadb
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_typed_mariadb_values_read_the_same_through_arrow_odbc(mariadb_url_fixture, data) -> None:
    writable = sa.create_engine(mariadb_url_fixture)
    metadata = sa.MetaData()
    text_key = data.draw(st.booleans())
    table = _mariadb_table(metadata, text_key)
    metadata.drop_all(writable)
    metadata.create_all(writable)
    count = data.draw(st.integers(0, 8))
    # Text keys with quotes, backslashes, '?' and non-ASCII: the key is written into the page's SQL.
    key_values = (
        st.text(st.sampled_from("aZ9 '\\?%_\"ưÀ😀;-"), min_size=1, max_size=6)
        if text_key
        else st.integers(-(2**63), 2**63 - 1)
    )
    # (utf8mb4_bin pads with spaces: 'a' and 'a ' are the same key)
    unique_key = (lambda k: k.rstrip(" ")) if text_key else (lambda k: k)
    keys = data.draw(st.lists(key_values, min_size=count, max_size=count, unique_by=unique_key))
    rows = [
        {"ID": key, **{name: data.draw(st.one_of(st.none(), values)) for name, values in _MARIADB_VALUES.items()}}
        for key in keys
    ]
    if rows:
        with writable.begin() as conn:
            conn.execute(table.insert(), rows)
    writable.dispose()
    legacy = legacy_engine(Secret(mariadb_url_fixture))
    try:
        with legacy.connect() as conn:
            [info] = discover_tables(conn)
            _same_batches(conn, info, chunk_rows=data.draw(st.integers(1, 4)))
    finally:
        legacy.dispose()
