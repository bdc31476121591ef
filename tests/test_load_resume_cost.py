"""A resumed load reads back only what the tables still to load consult, each row once, through indexes.

Before, a load resumed in the history table read back every table loaded before it, files and
history included, joined to the crosswalk on a key cast to text: SQLite then scanned the business
table once per crosswalk row (60 s for 12,000 history rows). These tests count what the resume
reads (statements, and on PostgreSQL the tuples its statistics say were read) and look at the
plans SQLite makes: they fail on that code.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_load_support import open_target

from load.site_load import load_site, loaded_rows_query
from load.target_map import target_spec
from transform import remembered_columns, target_table_for
from ts24_migrate.core.db import legacy_engine
from ts24_migrate.core.secrets import Secret
from ts24_migrate.demo import generate_site

CUTOVER = dt.date(2025, 7, 1)
CHUNK_ROWS = 100
SEEDED = ("DM_COQUAN_BHXH", "DM_DONVI", "HO_SO")  # what the history consults, closed over
NOT_READ = ("insured_persons", "dossier_files", "dossier_history")


class _Stop(Exception):
    pass


def _stop_in_history(after_rows: int):
    def progress(table: str, done: int, total: int) -> None:
        if table == "HO_SO_LICH_SU" and done >= after_rows:
            raise _Stop

    return progress


def _stop_at_first_progress(table: str, done: int, total: int) -> None:
    raise _Stop  # the first call comes after the seeding, before any chunk is read


def _load(legacy: sa.Engine, target: sa.Engine, files: Path, progress) -> None:
    with pytest.raises(_Stop):
        load_site(
            legacy,
            target,
            site_id="demo",
            run_id=str(uuid.uuid4()),
            cutover=CUTOVER,
            attachments_dir=files,
            chunk_rows=CHUNK_ROWS,
            progress=progress,
        )


def _site_stopped_in_history(tmp_path: Path, target_url: str) -> tuple[sa.Engine, sa.Engine, Path]:
    legacy_url = f"sqlite:///{tmp_path / 'legacy.sqlite'}"
    generate_site(
        sa.create_engine(legacy_url),
        tmp_path / "files",
        target=sa.create_engine(target_url),
        seed=42,
        scale=0.2,
        cutover=CUTOVER,
    )
    legacy, target = legacy_engine(Secret(legacy_url)), open_target(target_url)
    _load(legacy, target, tmp_path / "files", _stop_in_history(3 * CHUNK_ROWS))
    return legacy, target, tmp_path / "files"


def _statements_of(target: sa.Engine, action) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    sa.event.listen(target, "before_cursor_execute", record)
    try:
        action()
    finally:
        sa.event.remove(target, "before_cursor_execute", record)
    return seen


def _reads(statements: list[str], table: str) -> list[str]:
    name = re.compile(rf'\b"?{table}"?\b')
    return [s for s in statements if s.lstrip().upper().startswith("SELECT") and name.search(s)]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_resume_in_the_history_reads_back_only_what_the_history_consults(tmp_path, sqlite_url, backend, request):
    url = sqlite_url("target") if backend == "sqlite" else request.getfixturevalue("pg_database")()
    legacy, target, files = _site_stopped_in_history(tmp_path, url)

    statements = _statements_of(target, lambda: _load(legacy, target, files, _stop_at_first_progress))
    for table in NOT_READ:
        assert _reads(statements, table) == [], f"the resume read back {table}"
    for legacy_table in SEEDED:  # the tables it needs are read, each in one statement
        assert len(_reads(statements, target_table_for(legacy_table))) == 1, legacy_table

    # And it still ends where an uninterrupted load does (test_load_kill compares whole targets).
    summary = load_site(
        legacy,
        target,
        site_id="demo",
        run_id=str(uuid.uuid4()),
        cutover=CUTOVER,
        attachments_dir=files,
        chunk_rows=CHUNK_ROWS,
    )
    assert summary.accounting_ok and summary.chunks_skipped > 0


def _tuples_read(conn: sa.Connection) -> dict[str, int]:
    conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
    rows = conn.execute(
        sa.text("SELECT relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables")
    ).all()
    return {name: int(read) for name, read in rows}


def _settled_tuples_read(engine: sa.Engine) -> dict[str, int]:
    """The statistics once every closed backend has reported (they flush on exit, asynchronously)."""
    with engine.connect() as conn:
        before = _tuples_read(conn)
        for _ in range(40):
            time.sleep(0.25)
            now = _tuples_read(conn)
            if now == before:
                return now
            before = now
    return before


@pytest.mark.slow
@pytest.mark.postgres
def test_a_resume_reads_each_row_it_needs_once_on_postgresql(tmp_path, pg_database):
    url = pg_database()
    legacy, target, files = _site_stopped_in_history(tmp_path, url)
    observer = sa.create_engine(url)
    with target.connect() as conn:
        sizes = {
            t: conn.execute(sa.select(sa.func.count()).select_from(sa.table(t))).scalar_one()
            for t in ("offices", "units", "dossiers", *NOT_READ)
        }
    target.dispose()
    before = _settled_tuples_read(observer)

    _load(legacy, target, files, _stop_at_first_progress)
    target.dispose()  # its backends exit and report their statistics
    after = _settled_tuples_read(observer)
    observer.dispose()

    read = {t: after.get(t, 0) - before.get(t, 0) for t in sizes}
    assert read["dossiers"] > 0, "no statistics reported: nothing shows what the resume read"
    for table in NOT_READ:
        assert read[table] == 0, (table, read)
    # At most one pass over the units and dossiers: never a scan per crosswalk row. (The offices,
    # a handful of rows, PostgreSQL may well scan per row: that costs nothing.)
    for table in ("units", "dossiers"):
        assert read[table] <= sizes[table], (table, read, sizes)


def test_the_seed_reaches_every_business_row_by_its_key_on_sqlite(sqlite_url):
    """SQLite's plan: the crosswalk by its primary key, the business table SEARCHed by its key, never SCANned."""
    target = open_target(sqlite_url("target"))
    with target.connect() as conn:
        for legacy_table in ("DM_COQUAN_BHXH", "DM_DONVI", "NGUOI_LAO_DONG", "HO_SO"):
            table = target_table_for(legacy_table)
            query = loaded_rows_query(
                target_spec(table), remembered_columns(legacy_table), site_id="demo", legacy_table=legacy_table
            )
            compiled = query.compile(dialect=target.dialect, compile_kwargs={"literal_binds": True})
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
            assert any(
                re.match(rf"SEARCH {table} USING (INTEGER PRIMARY KEY|(COVERING )?INDEX)", step) for step in plan
            ), (legacy_table, plan)
            assert not any(step.startswith(f"SCAN {table}") for step in plan), (legacy_table, plan)
            assert any(step.startswith("SEARCH mig_crosswalk USING") for step in plan), (legacy_table, plan)
