"""Loading the demo site: accounting, conflicts, re-runs, fingerprints, SQLite vs PostgreSQL, ODBC legacy."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid

import pytest
import sqlalchemy as sa
from test_load_support import CUTOVER, demo_site, open_target, raw_tables, rows_of, snapshot, target_url

from extract.arrow_reader import ARROW_READS_ENV, ArrowReadStats, iter_stored_batches
from extract.discovery import discover_tables
from extract.reader import iter_table_rows
from load import bookkeeping as bk
from load import reasons
from load import target_schema as ts
from load.site_load import load_site
from load.target_map import TS24_SOURCE
from ts24_migrate.core.errors import ConfigError
from ts24_migrate.core.legacy.schema import MAPPED_TABLES
from ts24_migrate.core.rows.fingerprint import TableFingerprint
from validation.parity import parity_for_site

__all__ = ["target_url"]  # a fixture, used by name


def _load(legacy, target, files, *, site_id="demo", chunk_rows=40, **options):
    return load_site(
        legacy,
        target,
        site_id=site_id,
        run_id=str(uuid.uuid4()),
        cutover=CUTOVER,
        attachments_dir=files,
        chunk_rows=chunk_rows,
        **options,
    )


@pytest.fixture
def site(tmp_path, target_url):
    target = open_target(target_url)
    legacy, files, truth = demo_site(tmp_path, f"sqlite:///{tmp_path / 'legacy.sqlite'}", target)
    yield legacy, target, files, truth
    legacy.dispose()
    target.dispose()


def test_every_legacy_row_is_loaded_or_rejected_with_a_reason(site):
    legacy, target, files, truth = site
    seen: dict[str, tuple[int, int]] = {}
    summary = _load(legacy, target, files, progress=lambda table, done, total: seen.__setitem__(table, (done, total)))

    assert list(summary.tables) == list(MAPPED_TABLES)
    assert seen == {t: (f["source_rows"], f["source_rows"]) for t, f in summary.tables.items()}
    for legacy_table, figures in summary.tables.items():
        assert figures["source_rows"] == truth.tables[legacy_table]["rows"], legacy_table
        assert figures["source_rows"] == figures["loaded"] + figures["rejected"], legacy_table
        assert sum(figures["rejects_by_reason"].values()) == figures["rejected"], legacy_table
        with target.connect() as conn:
            rejected = conn.execute(
                sa.select(sa.func.count())
                .select_from(bk.rejects)
                .where(bk.rejects.c.site_id == "demo", bk.rejects.c.legacy_table == legacy_table)
            ).scalar()
            business = ts.metadata.tables[figures["target_table"]]
            query = sa.select(sa.func.count()).select_from(business)
            if "source" in business.c:
                query = query.where(business.c.source == TS24_SOURCE)
            assert conn.execute(query).scalar() == figures["loaded"], legacy_table
        assert rejected == figures["rejected"], legacy_table
    assert summary.accounting_ok and summary.chunks_skipped == 0
    # The demo plants defects of every kind: the load must have rejected some rows of most tables.
    assert sum(f["rejected"] for f in summary.tables.values()) > 0
    # The load's row hashes are the ones validation recomputes: parity is exact right after a load.
    assert parity_for_site(target, site_id="demo").exact


def test_units_the_portal_changed_after_cutover_are_reported_and_left_alone(site):
    legacy, target, files, truth = site
    assert truth.target_conflicts  # the demo plants some
    portal_before = {r.unit_code: r for r in rows_of(target, ts.units, ts.units.c.source == "portal")}
    summary = _load(legacy, target, files)

    units = summary.tables["DM_DONVI"]
    assert units["conflicts"] == len(truth.target_conflicts)
    assert units["rejects_by_reason"][reasons.CONFLICT_CHANGED_AFTER_CUTOVER] == len(truth.target_conflicts)
    conflicts = rows_of(target, bk.conflicts)
    assert len(conflicts) == len(truth.target_conflicts)
    rejected_codes = {
        r.original_value
        for r in rows_of(target, bk.rejects, bk.rejects.c.reason_code == reasons.CONFLICT_CHANGED_AFTER_CUTOVER)
    }
    assert rejected_codes == set(truth.target_conflicts)
    portal_after = {r.unit_code: r for r in rows_of(target, ts.units, ts.units.c.source == "portal")}
    assert portal_after == portal_before  # not one portal unit touched
    assert {c.target_key for c in conflicts} == {str(portal_before[code].unit_id) for code in truth.target_conflicts}


def test_a_second_load_of_a_finished_site_changes_nothing(site):
    legacy, target, files, truth = site
    first = _load(legacy, target, files)
    before = raw_tables(target)
    second = _load(legacy, target, files, chunk_rows=7)  # even with another chunk size

    assert second.chunks_loaded == 0 and second.chunks_skipped == first.chunks_loaded
    assert second.tables == first.tables
    assert raw_tables(target) == before


def test_a_lost_ledger_reloads_in_place_without_duplicates(site):
    legacy, target, files, truth = site
    first = _load(legacy, target, files)
    before = snapshot(target)
    with target.begin() as conn:  # the ledger of two tables is lost; their rows and crosswalk are not
        for table in (bk.load_ledger, bk.load_tables):
            conn.execute(table.delete().where(table.c.legacy_table.in_(["DM_DONVI", "HO_SO_LICH_SU"])))
    again = _load(legacy, target, files)
    assert again.chunks_loaded > 0 and again.tables == first.tables
    assert snapshot(target) == before


def test_the_recorded_fingerprint_is_the_source_table_fingerprint(site):
    legacy, target, files, truth = site
    summary = _load(legacy, target, files)
    with legacy.connect() as conn:
        for info in discover_tables(conn):
            if info.name not in MAPPED_TABLES:
                continue
            expected = TableFingerprint()
            for rows in iter_table_rows(conn, info, chunk_rows=1000):
                expected.add_rows(rows)
            assert summary.tables[info.name]["source_fingerprint"] == expected.hexdigest(), info.name


def test_a_database_that_is_not_ts24_is_refused_in_one_line(tmp_path, sqlite_url):
    not_ts24 = sa.create_engine(sqlite_url("other"))
    with not_ts24.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
    with pytest.raises(ConfigError, match="has no table DM_COQUAN_BHXH.*is it a TS24 database"):
        _load(not_ts24, open_target(sqlite_url("target")), None)


@pytest.mark.postgres
def test_sqlite_and_postgresql_targets_end_up_identical(tmp_path, sqlite_url, pg_database):
    targets = []
    for name, url in (("sqlite", sqlite_url("target")), ("postgresql", pg_database())):
        target = open_target(url)
        legacy, files, _ = demo_site(tmp_path / name, f"sqlite:///{tmp_path / (name + '.sqlite')}", target)
        _load(legacy, target, files)
        targets.append(target)
    sqlite_snapshot, postgres_snapshot = (snapshot(t) for t in targets)
    for table in sqlite_snapshot:
        assert sqlite_snapshot[table] == postgres_snapshot[table], table


@pytest.mark.mariadb
def test_a_legacy_database_over_odbc_loads_like_sqlite(tmp_path, sqlite_url, mariadb_database):
    results = []
    for name, legacy_url in (("sqlite", sqlite_url("legacy")), ("mariadb", mariadb_database())):
        target = open_target(sqlite_url(f"target-{name}"))
        legacy, files, _ = demo_site(tmp_path / name, legacy_url, target)
        summary = _load(legacy, target, files, chunk_rows=60)
        results.append((summary.tables, snapshot(target)))
        legacy.dispose()
    (sqlite_tables, sqlite_snapshot), (mariadb_tables, mariadb_snapshot) = results
    assert mariadb_tables == sqlite_tables  # same figures and the same source fingerprints
    for table in sqlite_snapshot:
        assert mariadb_snapshot[table] == sqlite_snapshot[table], table


class _Interrupted(Exception):
    pass


def test_file_contents_bound_the_chunks_and_an_interrupted_load_resumes_to_the_same_target(tmp_path, sqlite_url):
    """Chunks of dossier files are cut by bytes of content too; a load stopped inside the files
    (its last chunks committed, the rest not) and run again ends where one plain load does."""
    legacy, files, _ = demo_site(tmp_path, f"sqlite:///{tmp_path / 'legacy.sqlite'}", None)
    budget, chunk_rows = 5_000, 40
    bounded, plain = open_target(sqlite_url("bounded")), open_target(sqlite_url("plain"))
    stopped_at = {}

    def stop_inside_the_files(table, done, total):
        if table == "HO_SO_TEP" and done >= total // 2 and not stopped_at:
            stopped_at[table] = done
            raise _Interrupted()

    with pytest.raises(_Interrupted):
        _load(legacy, bounded, files, chunk_rows=chunk_rows, chunk_content_bytes=budget, progress=stop_inside_the_files)
    resumed = _load(legacy, bounded, files, chunk_rows=chunk_rows, chunk_content_bytes=budget)
    reference = _load(legacy, plain, files, chunk_rows=chunk_rows)
    assert resumed.chunks_skipped > 0 and resumed.accounting_ok

    def figures(summary):  # all but the chunk counts, which the content bound changes
        return {table: {k: v for k, v in t.items() if k != "chunks"} for table, t in summary.tables.items()}

    assert figures(resumed) == figures(reference)

    def loaded(target):  # business rows and their bookkeeping; the ledger's chunks differ, by design
        return {k: v for k, v in snapshot(target).items() if k not in (bk.load_ledger.name, bk.load_tables.name)}

    assert loaded(bounded) == loaded(plain)

    # Each chunk of files holds at most `budget` bytes of content, unless its last row alone passes it.
    info = next(i for i in discover_tables(legacy) if i.name.upper() == "HO_SO_TEP")
    with legacy.connect() as conn:
        weights = {
            str(r.ID_TEP): len(r.NOI_DUNG) if r.NOI_DUNG is not None else max(r.KICH_THUOC or 0, 0)
            for r in conn.execute(sa.select(info.table.c.ID_TEP, info.table.c.NOI_DUNG, info.table.c.KICH_THUOC))
        }
    with bounded.connect() as conn:
        chunks = conn.execute(
            sa.select(bk.load_ledger.c.first_key, bk.load_ledger.c.last_key, bk.load_ledger.c.rows_in)
            .where(bk.load_ledger.c.legacy_table == "HO_SO_TEP")
            .order_by(bk.load_ledger.c.chunk_no)
        ).all()
    keys = sorted(weights, key=int)
    assert sum(rows for _, _, rows in chunks) == len(keys)
    assert len(chunks) > -(-len(keys) // chunk_rows)  # more chunks than rows alone would make
    position = 0
    for first_key, last_key, rows in chunks:
        in_chunk = keys[position : position + rows]
        assert (in_chunk[0], in_chunk[-1]) == (first_key, last_key)
        assert rows <= chunk_rows and sum(weights[k] for k in in_chunk[:-1]) < budget
        position += rows
    legacy.dispose()


def _allow_a_null_unit_code(legacy_path, copies: tuple[int, ...] = (0, 1)) -> None:
    """DM_DONVI as SQLite lets a careless copy hold it: MA_DV without NOT NULL, and units without a
    code, in this order: a copy of the first unit (but for its code) for each 0 in `copies`, of the
    second unit for each 1."""
    with sqlite3.connect(legacy_path) as db:
        ddl = db.execute("SELECT sql FROM sqlite_master WHERE name = 'DM_DONVI'").fetchone()[0]
        db.execute("PRAGMA legacy_alter_table = ON")  # the other tables keep referring to DM_DONVI
        db.execute('ALTER TABLE "DM_DONVI" RENAME TO "DM_DONVI_OLD"')
        db.execute(ddl.replace('"MA_DV" VARCHAR(15) NOT NULL', '"MA_DV" VARCHAR(15)'))
        db.execute('INSERT INTO "DM_DONVI" SELECT * FROM "DM_DONVI_OLD"')
        for offset in copies:
            db.execute(
                'INSERT INTO "DM_DONVI" SELECT NULL, "TEN_DV", "MA_SO_THUE", "DIA_CHI", "MA_CQ", '
                '"NGUOI_LIEN_HE", "DIEN_THOAI", "EMAIL", "PHUONG_THUC_GD", "MA_IVAN", "SERIAL_CTS", '
                '"CTS_TU_NGAY", "CTS_DEN_NGAY", "NGAY_DANG_KY", "TRANG_THAI", "NGAY_CAP_NHAT" '
                f'FROM "DM_DONVI_OLD" ORDER BY rowid LIMIT 1 OFFSET {offset}'
            )
        db.execute('DROP TABLE "DM_DONVI_OLD"')


@pytest.mark.parametrize(
    "copies, stop_at",
    [
        ((0, 1), 2),  # two different units: the first chunk holds both
        ((0,) * 41 + (1,), 40),  # 41 identical ones, and the 41st comes after the stop, in the next chunk
    ],
    ids=["different", "identical"],
)
def test_a_load_stopped_among_rows_whose_key_is_null_resumes(tmp_path, sqlite_url, copies, stop_at):
    """SQLite lets a key column hold NULL: such rows are read first, with no key to resume after.
    Each gets a reject of its own, also rows identical in every column, across a resume."""
    legacy_path = tmp_path / "legacy.sqlite"
    legacy, files, _ = demo_site(tmp_path, f"sqlite:///{legacy_path}", None)
    legacy.dispose()
    _allow_a_null_unit_code(legacy_path, copies)
    legacy = sa.create_engine(f"sqlite:///{legacy_path}")
    stopped, plain = open_target(sqlite_url("stopped")), open_target(sqlite_url("plain"))

    def stop_among_the_null_keys(table, done, total):
        if table == "DM_DONVI" and done == stop_at:  # the units without a code come first
            raise _Interrupted()

    with pytest.raises(_Interrupted):
        _load(legacy, stopped, files, progress=stop_among_the_null_keys)  # chunks of 40 rows
    resumed = _load(legacy, stopped, files)
    reference = _load(legacy, plain, files)
    assert resumed.chunks_skipped > 0 and resumed.accounting_ok
    assert resumed.tables == reference.tables
    assert resumed.tables["DM_DONVI"]["rejects_by_reason"]["KEY_MISSING"] == len(copies)  # each its own
    with stopped.connect() as conn:
        null_keys = (
            conn.execute(
                sa.select(bk.rejects.c.legacy_key).where(
                    bk.rejects.c.legacy_table == "DM_DONVI", bk.rejects.c.reason_code == "KEY_MISSING"
                )
            )
            .scalars()
            .all()
        )
    assert len(set(null_keys)) == len(copies) and all(k.startswith("NULL#") for k in null_keys)
    ranked = sorted(k.partition("#")[2].partition("#")[2] for k in null_keys)  # "" for the first of its kind
    assert ranked == sorted(["", ""] + [str(rank) for rank in range(2, copies.count(0) + 1)])
    assert raw_tables(stopped) == raw_tables(plain)
    legacy.dispose()


def test_arrow_reads_load_the_same_target_as_the_row_reader(tmp_path, sqlite_url, monkeypatch):
    """The demo site's dirty rows read through ADBC (extract.arrow_reader) load exactly what the
    SQLAlchemy row reader loads: business rows, crosswalk with lineage hashes, rejects, flags, ledger."""
    legacy, files, _ = demo_site(tmp_path, f"sqlite:///{tmp_path / 'legacy.sqlite'}", None)
    by_rows, by_arrow = open_target(sqlite_url("by_rows")), open_target(sqlite_url("by_arrow"))
    monkeypatch.setenv(ARROW_READS_ENV, "off")
    reference = _load(legacy, by_rows, files)
    monkeypatch.setenv(ARROW_READS_ENV, "sqlite")
    read_by_arrow = _load(legacy, by_arrow, files)
    assert read_by_arrow.accounting_ok and read_by_arrow.tables == reference.tables
    assert raw_tables(by_arrow) == raw_tables(by_rows)
    # ... and the Arrow path did read this site: pages of every mapped table came through the driver.
    with legacy.connect() as conn:
        for info in discover_tables(conn):
            if info.name.upper() in MAPPED_TABLES:
                stats = ArrowReadStats()
                for _ in iter_stored_batches(conn, info, chunk_rows=40, stats=stats):
                    pass
                assert stats.arrow_pages > 0, (info.name, stats.reasons)
    legacy.dispose()


def test_a_transform_memory_kept_mostly_on_disk_loads_the_same_target(tmp_path, sqlite_url):
    """With three entries per kind in memory, every duplicate and orphan check asks the disk."""
    legacy, files, _ = demo_site(tmp_path, f"sqlite:///{tmp_path / 'legacy.sqlite'}", None)
    on_disk, in_memory = open_target(sqlite_url("on_disk")), open_target(sqlite_url("in_memory"))
    spilled = _load(legacy, on_disk, files, keys_in_memory=3)
    reference = _load(legacy, in_memory, files)
    assert spilled.accounting_ok and spilled.tables == reference.tables
    assert raw_tables(on_disk) == raw_tables(in_memory)
    legacy.dispose()


def test_flagged_values_are_kept_for_exactly_the_rows_loaded_with_flags(site):
    """mig_flags holds, per flagged value, the field, the original and the value loaded; the codes
    match the crosswalk rows' dq_flags row by row, and rows the load itself refused have none."""
    legacy, target, files, truth = site
    # a unit the transform flags (its code was lower case) that the new system changed after the
    # cut-over: the load refuses it, and its flags must not be kept
    lowered = next(
        d
        for d in truth.defects
        if d["kind"] == "lower_case_code"
        and d["table"] == "DM_DONVI"
        and d["clean_value"] not in truth.target_conflicts
    )
    with target.begin() as conn:
        conn.execute(
            ts.units.insert().values(
                unit_code=lowered["clean_value"],
                name="Công ty trên cổng mới",
                transaction_mode="portal",
                active=True,
                source="portal",
                updated_at=dt.datetime.combine(CUTOVER, dt.time(10)),
            )
        )
    summary = _load(legacy, target, files)
    assert any(
        r.legacy_key == lowered["key"] and r.reason_code == reasons.CONFLICT_CHANGED_AFTER_CUTOVER
        for r in rows_of(target, bk.rejects)
    )
    assert not rows_of(target, bk.flags, bk.flags.c.legacy_key == lowered["key"])
    lineage_flags = {
        (r.legacy_table, r.legacy_key): set(r.dq_flags.split(";"))
        for r in rows_of(target, bk.crosswalk, bk.crosswalk.c.dq_flags.is_not(None))
    }
    recorded: dict[tuple[str, str], set[str]] = {}
    for r in rows_of(target, bk.flags):
        recorded.setdefault((r.legacy_table, r.legacy_key), set()).add(r.flag_code)
        assert r.site_id == "demo" and r.field
    assert recorded == lineage_flags and recorded
    refused = {(r.legacy_table, r.legacy_key) for r in rows_of(target, bk.rejects)}
    assert not refused & set(recorded)
    # the conflicts the demo plants are units the transform accepted (some with flags) and the load refused
    assert {(r.legacy_table, r.legacy_key) for r in rows_of(target, bk.conflicts)} <= refused
    # the load's figures count the rows flagged per code, from the same records
    for legacy_table, figures in summary.tables.items():
        counts: dict[str, int] = {}
        for (table, _key), codes in recorded.items():
            if table == legacy_table:
                for code in codes:
                    counts[code] = counts.get(code, 0) + 1
        assert figures["flags_by_code"] == dict(sorted(counts.items())), legacy_table
    # a planted TCVN3 value: its original and the repaired value loaded
    planted = next(d for d in truth.defects if d["kind"] == "text_tcvn3" and d["table"] == "DM_DONVI")
    row = next(
        r
        for r in rows_of(target, bk.flags, bk.flags.c.legacy_key == planted["key"])
        if r.flag_code == "TEXT_REPAIRED_TCVN3"
    )
    assert (row.field, row.original_value, row.loaded_value) == (
        planted["column"],
        planted["value"],
        planted["clean_value"],
    )
