"""Parity between the load's lineage and the live target, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_validation_data import NOW, build_target

from load import target_schema as ts
from load.bookkeeping import crosswalk
from load.row_hash import register_sqlite_functions
from ts24_migrate.core.errors import UsageError
from validation import key_ranges
from validation.key_ranges import DiffSide, diff_by_key_ranges
from validation.parity import parity_for_site, parity_for_table


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target(request, sqlite_url):
    if request.param == "sqlite":
        engine = sa.create_engine(sqlite_url("target"))
    else:
        engine = sa.create_engine(request.getfixturevalue("pg_database")())
    yield engine
    engine.dispose()


def _tamper(engine: sa.Engine, built) -> dict:
    """Behind the pipeline's back: delete a unit, change a dossier, add a ts24 dossier and an office."""
    deleted_unit = built.unit_ids[3]
    changed_dossier = built.dossier_ids[17]
    with engine.begin() as conn:
        conn.execute(
            ts.insured_persons.update()
            .where(
                ts.insured_persons.c.unit_code
                == sa.select(ts.units.c.unit_code).where(ts.units.c.unit_id == deleted_unit).scalar_subquery()
            )
            .values(unit_code=None)
        )
        conn.execute(ts.units.delete().where(ts.units.c.unit_id == deleted_unit))
        conn.execute(ts.dossiers.update().where(ts.dossiers.c.dossier_id == changed_dossier).values(notes="sửa tay"))
        added = conn.execute(
            ts.dossiers.insert()
            .values(
                dossier_no="01-99999999",
                unit_code="TS01000000",
                procedure_code="600",
                submitted_at=NOW,
                status="done",
                source="ts24",
                updated_at=NOW,
            )
            .returning(ts.dossiers.c.dossier_id)
        ).scalar_one()
        # A dossier filed on the new portal is not the migration's business: never "extra".
        conn.execute(
            ts.dossiers.insert().values(
                dossier_no="P-1",
                unit_code="TS01000000",
                procedure_code="600",
                submitted_at=NOW,
                status="submitted",
                source="portal",
                updated_at=NOW,
            )
        )
        # An office has no `source`: a row no crosswalk row of the site knows is not claimed.
        conn.execute(ts.offices.update().where(ts.offices.c.office_code == "01").values(name="BHXH Hà Nội"))
        conn.execute(ts.offices.insert().values(office_code="0198", name="Portal", level="district"))
    return {"deleted_unit": deleted_unit, "changed_dossier": changed_dossier, "added_dossier": added}


def test_clean_load_is_exact_and_costs_one_range_per_table(target):
    build_target(target, units=30, persons=50, dossiers=80)
    report = parity_for_site(target, site_id="hn-01")
    assert report.exact
    for name, table in report.tables.items():
        assert table.ranges_checked == 1, name  # one checksum per side, no bisection
        assert table.rows_fetched == 0, name  # no row travelled to Python
        assert table.lineage_rows == table.target_rows > 0, name
    assert report.to_dict()["differences"] == 0


def test_tampering_names_exactly_the_keys_with_legacy_keys(target):
    built = build_target(target, units=30, persons=50, dossiers=300)
    done = _tamper(target, built)
    report = parity_for_site(target, site_id="hn-01", max_buckets=4, leaf_rows=8)
    assert not report.exact
    units, dossiers, offices = report.tables["units"], report.tables["dossiers"], report.tables["offices"]
    assert units.missing == [{"target_key": done["deleted_unit"], "legacy_key": "TS01000003"}]
    assert units.extra == units.changed == []
    assert dossiers.changed == [{"target_key": done["changed_dossier"], "legacy_key": "18"}]
    assert dossiers.extra == [{"target_key": done["added_dossier"], "legacy_key": None}]
    assert dossiers.missing == []
    assert offices.extra == []
    assert offices.changed == [{"target_key": "01", "legacy_key": "01"}] and offices.missing == []
    # The persons whose unit was cleared changed too: parity sees every edit, not only the planted ones.
    assert {c["target_key"] for c in report.tables["insured_persons"].changed} == {
        built.person_ids[3],
        built.person_ids[33],
    }
    # Bisection narrowed the diff: far fewer rows fetched than the table holds.
    assert 0 < dossiers.rows_fetched < 60
    assert report.tables["dossier_files"].exact and report.tables["dossier_history"].exact
    assert report.to_dict()["differences"] == 6


def test_each_site_sees_only_its_own_rows(target):
    build_target(target, "hn-01", units=10, persons=10, dossiers=20, province="01")
    other = build_target(target, "hp-01", units=10, persons=10, dossiers=20, province="31", seed=2, key_base=5000)
    assert parity_for_site(target, site_id="hn-01").exact
    assert parity_for_site(target, site_id="hp-01").exact
    with target.begin() as conn:
        conn.execute(ts.units.update().where(ts.units.c.unit_id == other.unit_ids[0]).values(name="X"))
    assert parity_for_site(target, site_id="hn-01").exact
    changed = parity_for_table(target, "units", site_id="hp-01").changed
    assert changed == [{"target_key": other.unit_ids[0], "legacy_key": "TS31005000"}]


def test_a_lost_crosswalk_row_makes_its_target_row_extra(target):
    built = build_target(target, units=10, persons=10, dossiers=10)
    with target.begin() as conn:
        conn.execute(
            crosswalk.delete().where(
                crosswalk.c.target_table == "units", crosswalk.c.target_key == str(built.unit_ids[4])
            )
        )
    units = parity_for_table(target, "units", site_id="hn-01")
    assert units.extra == [{"target_key": built.unit_ids[4], "legacy_key": None}]
    assert units.lineage_rows == 9 and units.target_rows == 10


def test_bad_requests_are_one_line_usage_errors(sqlite_url):
    engine = sa.create_engine(sqlite_url("t"))
    with pytest.raises(UsageError, match="re_registrations"):
        parity_for_table(engine, "re_registrations", site_id="hn-01")
    with pytest.raises(UsageError, match="no table 'units': nothing was loaded"):
        parity_for_table(engine, "units", site_id="hn-01")


# -- the range diff itself, against a plain set comparison ---------------------

_key_tables = sa.MetaData()
_int_sides = [
    sa.Table(f"int_{name}", _key_tables, sa.Column("k", sa.Integer, primary_key=True), sa.Column("h", sa.String(32)))
    for name in ("left", "right")
]
_str_sides = [
    sa.Table(f"str_{name}", _key_tables, sa.Column("k", sa.String(20), primary_key=True), sa.Column("h", sa.String(32)))
    for name in ("left", "right")
]


@pytest.fixture(scope="module")
def diff_engine(tmp_path_factory):
    engine = sa.create_engine(f"sqlite:///{tmp_path_factory.mktemp('ranges') / 'ranges.sqlite'}")
    register_sqlite_functions(engine)
    _key_tables.create_all(engine)
    yield engine
    engine.dispose()


def _hash(n: int) -> str:
    return hashlib.md5(str(n).encode()).hexdigest()


_changes = st.dictionaries(
    st.integers(-(10**12), 10**12), st.sampled_from(["missing", "extra", "changed"]), max_size=25
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    common=st.sets(st.integers(-(10**12), 10**12), min_size=10, max_size=120),
    changes=_changes,
    max_buckets=st.sampled_from([2, 3, 32, 65_536]),
    leaf_rows=st.sampled_from([1, 4, 1000]),
    in_list=st.sampled_from([(1, 4), (1000, 4), (1000, 0)]),
    string_keys=st.booleans(),
)
def test_range_diff_names_the_same_keys_as_a_set_comparison(
    diff_engine, monkeypatch, common, changes, max_buckets, leaf_rows, in_list, string_keys
):
    # Tiny IN-list limits drive the batched and the single-pass paths with small data.
    monkeypatch.setattr(key_ranges, "IN_LIST_MAX", in_list[0])
    monkeypatch.setattr(key_ranges, "IN_BATCHES_MAX", in_list[1])
    left, right = _str_sides if string_keys else _int_sides
    key = (lambda n: f"k{n:+014d}") if string_keys else (lambda n: n)
    left_rows = {n: _hash(n) for n in common}
    right_rows = dict(left_rows)
    for n, change in changes.items():
        if change == "missing":
            left_rows[n] = _hash(n)
            right_rows.pop(n, None)
        elif change == "extra":
            right_rows[n] = _hash(n)
            left_rows.pop(n, None)
        else:
            left_rows[n], right_rows[n] = _hash(n), _hash(n + 1)
    with diff_engine.begin() as conn:
        for table, rows in ((left, left_rows), (right, right_rows)):
            conn.execute(table.delete())
            if rows:
                conn.execute(table.insert(), [{"k": key(n), "h": h} for n, h in rows.items()])
        diff = diff_by_key_ranges(
            conn,
            DiffSide(left.c.k, left.c.h, sa.true()),
            DiffSide(right.c.k, right.c.h, sa.true()),
            integer_keys=not string_keys,
            max_buckets=max_buckets,
            leaf_rows=leaf_rows,
        )
    assert diff.missing == sorted(key(n) for n in left_rows.keys() - right_rows.keys())
    assert diff.extra == sorted(key(n) for n in right_rows.keys() - left_rows.keys())
    assert diff.changed == sorted(key(n) for n in left_rows.keys() & right_rows.keys() if left_rows[n] != right_rows[n])
    if diff.exact:
        assert diff.ranges_checked == 1 and diff.rows_fetched == 0


def test_a_changed_date_is_a_changed_row(target):
    """Dates are part of the row hash on both dialects (the target stores them in its own types)."""
    build_target(target, units=3, persons=3, dossiers=3)
    with target.begin() as conn:
        conn.execute(ts.insured_persons.update().values(birth_date=dt.date(1999, 12, 31)))
    changed = parity_for_table(target, "insured_persons", site_id="hn-01").changed
    assert len(changed) == 3
