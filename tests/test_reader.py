"""The shared legacy reader returns every row exactly once, values as stored, whatever the data holds."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
from collections import Counter

import pytest
import sqlalchemy as sa

from extract.discovery import discover_tables
from extract.reader import as_stored, iter_table_batches, iter_table_rows
from transform import TransformContext, transform_batch
from ts24_migrate.core.db import legacy_engine
from ts24_migrate.core.errors import UsageError
from ts24_migrate.core.legacy.schema import HO_SO
from ts24_migrate.core.rows.fingerprint import row_digest
from ts24_migrate.core.secrets import Secret


def _sqlite(tmp_path, *statements: str) -> tuple[sa.Engine, str]:
    path = tmp_path / "legacy.sqlite"
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement)
    return legacy_engine(Secret(f"sqlite:///{path}")), str(path)


def _raw_rows(path: str, table: str) -> Counter:
    """The table as SQLite holds it, read by sqlite3 alone (text as bytes, so nothing can fail)."""
    with sqlite3.connect(path) as db:
        db.text_factory = bytes
        return Counter(db.execute(f'SELECT * FROM "{table}"').fetchall())


def _read(engine: sa.Engine, chunk_rows: int, **options) -> tuple[list[list[tuple]], sa.Table]:
    with engine.connect() as conn:
        [table] = discover_tables(conn)
        return list(iter_table_rows(conn, table, chunk_rows=chunk_rows, **options)), table


def test_dirty_values_come_back_as_stored_and_clean_ones_typed(tmp_path) -> None:
    engine, _ = _sqlite(
        tmp_path,
        'CREATE TABLE "T" ("ID" INTEGER PRIMARY KEY, "WHEN" DATETIME, "AMOUNT" NUMERIC(10, 2), "NAME" TEXT)',
        "INSERT INTO \"T\" VALUES (1, '2025-07-01 08:00:00.000000', 12.5, 'Hà Nội'), "
        "(2, '31/02/2019', 'n/a', CAST(x'48b5204ee969' AS TEXT)), (3, NULL, NULL, NULL)",
    )
    chunks, _ = _read(engine, 2)
    assert [len(c) for c in chunks] == [2, 1]
    assert [r for c in chunks for r in c] == [
        (1, dt.datetime(2025, 7, 1, 8), decimal.Decimal("12.50"), "Hà Nội"),
        (2, "31/02/2019", "n/a", b"H\xb5 N\xe9i"),  # not UTF-8: the bytes stored
        (3, None, None, None),
    ]


def test_a_where_on_the_reflected_columns_and_a_dirty_resume_key_still_apply(tmp_path) -> None:
    engine, _ = _sqlite(
        tmp_path,
        'CREATE TABLE "T" ("WHEN" DATETIME PRIMARY KEY, "N" INTEGER)',
        "INSERT INTO \"T\" VALUES ('2025-07-01 00:00:00.000000', 1), "
        "('2025-07-02 00:00:00.000000', 2), ('31/02/2019', 3), ('zz', 4)",
    )
    with engine.connect() as conn:
        [table] = discover_tables(conn)
        where = table.table.c["N"] > 1  # built on the caller's own table, as the load and reconcile do
        rows = [r for c in iter_table_rows(conn, table, chunk_rows=1, where=where) for r in c]
        resumed = [r for c in iter_table_rows(conn, table, chunk_rows=1, start_after=["31/02/2019"]) for r in c]
        stored = as_stored(table)
        assert as_stored(stored).table.c["N"].type.__class__ is stored.table.c["N"].type.__class__  # idempotent
        narrowed = [r for c in iter_table_rows(conn, stored, where=stored.table.c["N"] == 3) for r in c]
    assert rows == [(dt.datetime(2025, 7, 2), 2), ("31/02/2019", 3), ("zz", 4)]
    assert resumed == [("zz", 4)]
    assert narrowed == [("31/02/2019", 3)]


NULL_KEYS = [
    # one-column key, NULL keys among others
    (
        'CREATE TABLE "T" ("K" VARCHAR(10) PRIMARY KEY, "V" INTEGER)',
        "INSERT INTO \"T\" VALUES (NULL, 1), ('b', 2), (NULL, 3), ('a', 4), ('c', 5), (NULL, 6), ('', 7)",
    ),
    # composite key with a NULL in either part
    (
        'CREATE TABLE "T" ("A" TEXT, "B" TEXT, "V" INTEGER, PRIMARY KEY ("A", "B"))',
        (
            "INSERT INTO \"T\" VALUES ('x', NULL, 1), (NULL, 'y', 2), ('x', 'y', 3), (NULL, NULL, 4), ('w', 'z', 5), "
            "('x', 'a', 6), ('x', NULL, 7)"
        ),
    ),
]


@pytest.mark.parametrize("schema, rows", NULL_KEYS, ids=["one-column", "composite"])
@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 100])
def test_rows_with_a_null_key_are_read_exactly_once(tmp_path, schema, rows, chunk_rows) -> None:
    engine, path = _sqlite(tmp_path, schema, rows)
    chunks, table = _read(engine, chunk_rows)
    read = [r for c in chunks for r in c]
    assert all(0 < len(c) <= chunk_rows for c in chunks)
    assert Counter(tuple(v.encode() if isinstance(v, str) else v for v in r) for r in read) == _raw_rows(path, "T")
    key_positions = [table.column_names.index(k) for k in table.primary_key]
    keys = [tuple(r[i] for i in key_positions) for r in read]
    with_null = [k for k in keys if None in k]
    assert keys[: len(with_null)] == with_null  # NULL-key rows first, then the rest in key order
    assert keys[len(with_null) :] == sorted(keys[len(with_null) :])


def test_a_resume_after_a_null_key_is_refused_and_after_a_real_key_skips_the_null_pass(tmp_path) -> None:
    engine, _ = _sqlite(tmp_path, *NULL_KEYS[0])
    with pytest.raises(UsageError, match="NULL"):
        _read(engine, 2, start_after=[None])
    chunks, _ = _read(engine, 2, start_after=["a"])
    assert [r for c in chunks for r in c] == [("b", 2), ("c", 5)]


def test_a_dirty_dossier_becomes_a_reject_not_a_crash(tmp_path) -> None:
    """The load and reconcile read through iter_table_batches into the transform."""
    path = tmp_path / "legacy.sqlite"
    HO_SO.create(sa.create_engine(f"sqlite:///{path}"))
    with sqlite3.connect(path) as db:
        db.executemany(
            'INSERT INTO "HO_SO" ("ID_HO_SO", "SO_HO_SO", "MA_DV", "MA_THU_TUC", "KY_KE_KHAI", '
            '"NGAY_NOP", "TRANG_THAI", "MA_CQ", "NGAY_CAP_NHAT") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
            [
                (
                    1,
                    "HS-1",
                    "DN0001",
                    "600",
                    "05/2025",
                    "2025-05-02 09:00:00.000000",
                    2,
                    "01",
                    "2025-05-02 09:00:00.000000",
                ),
                (2, "HS-2", "DN0001", "600", "05/2025", "31/02/2019", 2, "01", "2025-05-02 09:00:00.000000"),
            ],
        )
    engine = legacy_engine(Secret(f"sqlite:///{path}"))
    ctx = TransformContext(
        "site-01", cutover=dt.date(2025, 7, 1), attachments_dir=None, reference_date=dt.date(2025, 7, 31)
    )
    ctx.known_office_codes.add("01")
    ctx.known_unit_codes.add("DN0001")
    with engine.connect() as conn:
        table = next(t for t in discover_tables(conn) if t.name == "HO_SO")
        [batch] = list(iter_table_batches(conn, table))
        [rows] = list(iter_table_rows(conn, table))
    assert batch.column("NGAY_NOP").to_pylist() == [dt.datetime(2025, 5, 2, 9), "31/02/2019"]
    result = transform_batch("HO_SO", batch, ctx)
    assert list(result.rejects["legacy_key"]) == ["2"]
    assert list(result.rejects["reason_code"]) == ["REQUIRED_MISSING"]
    assert list(result.rows["legacy_row_hash"]) == [row_digest(rows[0]).hex()]


@pytest.mark.mariadb
def test_keys_that_cannot_be_null_are_read_without_a_null_pass(mariadb_database) -> None:
    writable = sa.create_engine(mariadb_database())
    with writable.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE T (A VARCHAR(5), B INT, V INT, PRIMARY KEY (A, B))")
        conn.exec_driver_sql("INSERT INTO T VALUES " + ", ".join(f"('k{i % 4}', {i}, {i})" for i in range(23)))
    writable.dispose()
    engine = legacy_engine(Secret(writable.url.render_as_string(hide_password=False)))
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        chunks, _ = _read(engine, 5)
    finally:
        engine.dispose()
    read = [r for c in chunks for r in c]
    assert read == sorted((f"k{i % 4}", i, i) for i in range(23))
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "LIMIT" in s.upper()]
    assert len(selects) == 5 and not any("IS NULL" in s.upper() for s in selects)
