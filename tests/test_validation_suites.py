"""Great Expectations suites: the target must pass them, the legacy profile describes the dirt.

Real GX checkpoints on real databases; Data Docs are written and inspected.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_validation_data import NOW, build_target

from load import target_schema as ts
from ts24_migrate.core.db import legacy_engine
from ts24_migrate.core.errors import UsageError
from ts24_migrate.core.legacy import schema as ls
from ts24_migrate.core.secrets import Secret
from validation import run_legacy_profile, run_target_suites

pytestmark = pytest.mark.slow  # GX: about two seconds per checkpoint, plus its import once

AS_OF = dt.datetime(2025, 8, 1)
PASSWORD_HASH = "pbkdf2_sha256$260000$Zm9vYmFy$SECRETHASHVALUE"


def _failed(results, table: str) -> dict[str, dict]:
    """Failed expectations of one table, by 'type column' (or description for row checks)."""
    return {f"{e.expectation} {e.column or e.description}": e.to_dict() for e in results.suite(table).failed}


def _docs_text(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in folder.rglob("*.html"))


# -- target -----------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_correct_load_passes_every_target_expectation(dialect, sqlite_url, request, tmp_path):
    if dialect == "sqlite":
        url = sqlite_url("target")
    else:
        # The server trusts local connections, so this password is accepted and unused: it
        # stands for a real secret, which must reach neither the results nor the Data Docs.
        url = sa.engine.make_url(request.getfixturevalue("pg_database")()).set(password="Sup3r-S3cret-pw")
    engine = sa.create_engine(url)
    build_target(engine)
    statements = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    results = run_target_suites(engine, site_id="hn-01", docs_dir=tmp_path / "gx", as_of=AS_OF)
    assert results.success, [(s.table, _failed(results, s.table)) for s in results.suites if not s.success]
    assert {s.table for s in results.suites} == {
        "offices",
        "units",
        "insured_persons",
        "dossiers",
        "dossier_files",
        "dossier_history",
    }
    assert results.to_dict()["evaluated"] > 60 and results.to_dict()["failed"] == 0
    assert statements, "GX must run its queries on the engine we passed in"
    # Data Docs: an index and one validation page per table, under the folder we gave.
    assert results.data_docs_index == tmp_path / "gx" / "index.html" and results.data_docs_index.is_file()
    pages = list((tmp_path / "gx" / "validations").rglob("*.html"))
    assert len(pages) == 6
    assert "target.units" in results.data_docs_index.read_text(encoding="utf-8")
    everything = json.dumps(results.to_dict(), default=str) + "".join(
        p.read_text(encoding="utf-8", errors="replace")
        for p in (tmp_path / "gx").rglob("*")
        if p.is_file() and p.suffix in (".html", ".json", ".js")
    )
    assert "Sup3r-S3cret-pw" not in everything and str(engine.url.database) not in everything
    engine.dispose()


def test_each_kind_of_bad_target_row_fails_its_expectation(sqlite_url, tmp_path):
    engine = sa.create_engine(sqlite_url("target"))
    build_target(engine)
    with engine.begin() as conn:
        conn.execute(
            ts.units.insert().values(
                unit_code="ab 12",
                name="Lỗi",
                tax_code="0100109107",
                transaction_mode="fax",
                office_code="9999",
                active=True,
                source="ts24",
                updated_at=NOW,
            )
        )
        conn.execute(
            ts.insured_persons.insert().values(
                social_insurance_no="123",
                full_name="X",
                birth_date=dt.date(1890, 1, 1),
                sex="X",
                unit_code="NO_SUCH_UNIT",
                source="ts24",
                updated_at=NOW,
            )
        )
        conn.execute(
            ts.dossiers.insert().values(
                dossier_no="BAD-1",
                unit_code="NO_SUCH_UNIT",
                procedure_code="600",
                declaration_period="2024-13",
                submitted_at=dt.datetime(2031, 1, 1),
                status="lost",
                source="elsewhere",
                updated_at=NOW,
            )
        )
        conn.execute(
            ts.dossiers.insert().values(
                dossier_no="BAD-2",
                unit_code="NO_SUCH_UNIT",
                procedure_code="600",
                declaration_period="2024-12",
                submitted_at=dt.datetime(2024, 12, 5),
                status="done",
                source="ts24",
                updated_at=NOW,
            )
        )
        # Filed on the portal for a unit another site has not migrated yet: not this migration's verdict.
        conn.execute(
            ts.dossiers.insert().values(
                dossier_no="PORTAL-1",
                unit_code="OTHER_SITE_UNIT",
                procedure_code="600",
                declaration_period="2025-08",
                submitted_at=dt.datetime(2025, 8, 5),
                status="submitted",
                source="portal",
                updated_at=NOW,
            )
        )
        conn.execute(ts.offices.insert().values(office_code="012", name="Ba số", level="province"))
    results = run_target_suites(engine, site_id="hn-01", docs_dir=tmp_path / "gx", as_of=AS_OF)
    assert not results.success and not results.descriptive
    units = _failed(results, "units")
    assert set(units) == {
        "expect_column_values_to_match_regex unit_code",
        "expect_column_values_to_be_in_set transaction_mode",
        "unexpected_rows_expectation tax codes have a valid check digit",
        "unexpected_rows_expectation the managing office exists",
    }
    assert units["expect_column_values_to_match_regex unit_code"]["examples"] == ["ab 12"]
    assert units["expect_column_values_to_be_in_set transaction_mode"]["unexpected_count"] == 1
    assert units["unexpected_rows_expectation the managing office exists"]["unexpected_count"] == 1
    assert set(_failed(results, "insured_persons")) == {
        "expect_column_values_to_match_regex social_insurance_no",
        "expect_column_values_to_be_between birth_date",
        "expect_column_values_to_be_in_set sex",
        "unexpected_rows_expectation the employer unit exists",
    }
    assert set(_failed(results, "dossiers")) == {
        "expect_column_values_to_match_regex declaration_period",
        "expect_column_values_to_be_between submitted_at",
        "expect_column_values_to_be_in_set status",
        "expect_column_values_to_be_in_set source",
        "unexpected_rows_expectation the submitting unit exists",
    }
    assert (
        _failed(results, "dossiers")["unexpected_rows_expectation the submitting unit exists"]["unexpected_count"] == 1
    )  # BAD-2 (migrated); not BAD-1 (unknown source) nor PORTAL-1 (portal)
    assert set(_failed(results, "offices")) == {
        "expect_column_values_to_match_regex office_code",
        "unexpected_rows_expectation a province office has a 2-digit code, a district office a 4-digit one",
    }
    assert results.suite("dossier_files").success and results.suite("dossier_history").success
    # The figures GX saw are in the Data Docs too.
    assert "ab 12" in _docs_text(tmp_path / "gx")


def test_a_target_without_tables_is_a_usage_error(sqlite_url, tmp_path):
    with pytest.raises(UsageError, match="no table 'offices'"):
        run_target_suites(sa.create_engine(sqlite_url("empty")), site_id="hn-01", docs_dir=tmp_path)


# -- legacy profile -----------------------------------------------------------


def _dirty_legacy(engine: sa.Engine) -> None:
    """A small TS24 database with one example of each kind of dirt the spec warns of."""
    ls.metadata.create_all(engine)
    extra = sa.Table("IMPORT_TAM", sa.MetaData(), sa.Column("MA", sa.String(10)), sa.Column("GHI_CHU", sa.String(50)))
    extra.create(engine)
    changed = dt.datetime(2025, 6, 1)
    with engine.begin() as conn:
        conn.execute(
            ls.DM_COQUAN_BHXH.insert(),
            [
                {"MA_CQ": "01", "TEN_CQ": "BHXH Hà Nội", "CAP": 1, "MA_TINH": "01"},
                {"MA_CQ": "0101", "TEN_CQ": "BHXH Ba Đình", "CAP": 2, "MA_TINH": "01"},
            ],
        )
        unit = {
            "TEN_DV": "Công ty",
            "MA_CQ": "0101",
            "PHUONG_THUC_GD": 1,
            "NGAY_DANG_KY": "01/02/2015",
            "TRANG_THAI": 1,
            "NGAY_CAP_NHAT": changed,
            "MA_SO_THUE": "0100109106",
        }
        conn.execute(
            ls.DM_DONVI.insert(),
            [
                {**unit, "MA_DV": "DV001"},
                {**unit, "MA_DV": "dv002 "},  # lower case, trailing space
                {**unit, "MA_DV": "DV003", "MA_SO_THUE": "0100109107"},  # wrong check digit
                {**unit, "MA_DV": "DV004", "PHUONG_THUC_GD": 4, "TEN_DV": " "},
            ],
        )  # unknown mode, blank name
        person = {
            "HO_TEN": "Nguyễn Văn A",
            "NGAY_SINH": "01/01/1980",
            "GIOI_TINH": 1,
            "MA_DV": "DV001",
            "NGAY_CAP_NHAT": changed,
        }
        conn.execute(
            ls.NGUOI_LAO_DONG.insert(),
            [
                {**person, "MA_SO_BHXH": "0101000001"},
                {**person, "MA_SO_BHXH": "0101000002", "MA_DV": "DV999"},  # orphaned employer
                {**person, "MA_SO_BHXH": "12345", "NGAY_SINH": "1/1/80"},
            ],
        )  # bad SI number, bad date text
        dossier = {
            "MA_DV": "DV001",
            "MA_THU_TUC": "600",
            "KY_KE_KHAI": "01/2024",
            "NGAY_NOP": changed,
            "MA_CQ": "0101",
            "NGAY_CAP_NHAT": changed,
        }
        conn.execute(
            ls.HO_SO.insert(),
            [
                {**dossier, "ID_HO_SO": 1, "SO_HO_SO": "HS-1", "TRANG_THAI": 4},
                {**dossier, "ID_HO_SO": 2, "SO_HO_SO": "HS-2", "TRANG_THAI": 9},
            ],
        )  # unknown status
        conn.execute(
            ls.HO_SO_TEP.insert(),
            [
                {
                    "ID_TEP": 1,
                    "ID_HO_SO": 1,
                    "MA_TO_KHAI": "TK1-TS",
                    "TEN_TEP": "a.xml",
                    "LOAI_TEP": "xml",
                    "KICH_THUOC": 3,
                    "MD5": "0" * 32,
                },
                {
                    "ID_TEP": 2,
                    "ID_HO_SO": 77,
                    "MA_TO_KHAI": "TK1-TS",
                    "TEN_TEP": "b.xml",
                    "LOAI_TEP": "xml",
                    "KICH_THUOC": 3,
                    "MD5": "0" * 32,
                },
            ],
        )  # orphaned file
        conn.execute(
            ls.HO_SO_LICH_SU.insert().values(
                ID=1, ID_HO_SO=1, THOI_GIAN=changed, TRANG_THAI_MOI=4, NGUOI_THUC_HIEN="cb01"
            )
        )
        conn.execute(
            ls.HT_NGUOI_DUNG.insert().values(
                TEN_DANG_NHAP="admin", MAT_KHAU_HASH=PASSWORD_HASH, HO_TEN="Quản trị", MA_CQ="0101", TRANG_THAI=1
            )
        )
        conn.execute(extra.insert(), [{"MA": "x", "GHI_CHU": "tạm"}, {"MA": "x", "GHI_CHU": "tạm"}])


def _check_dirty_profile(results, docs: Path) -> None:
    assert results.descriptive and not results.success
    units = _failed(results, "DM_DONVI")
    assert set(units) == {
        "expect_column_values_to_match_regex MA_DV",
        "expect_column_values_to_be_in_set PHUONG_THUC_GD",
        "unexpected_rows_expectation tax codes have a valid check digit",
        "unexpected_rows_expectation TEN_DV is not an empty string standing for a value",
    }
    assert units["expect_column_values_to_match_regex MA_DV"]["examples"] == ["dv002 "]
    assert set(_failed(results, "NGUOI_LAO_DONG")) == {
        "expect_column_values_to_match_regex MA_SO_BHXH",
        "expect_column_values_to_match_regex NGAY_SINH",
        "unexpected_rows_expectation MA_DV names an existing DM_DONVI row",
    }
    assert set(_failed(results, "HO_SO")) == {"expect_column_values_to_be_in_set TRANG_THAI"}
    assert set(_failed(results, "HO_SO_TEP")) == {"unexpected_rows_expectation ID_HO_SO names an existing HO_SO row"}
    assert results.suite("DM_COQUAN_BHXH").success and results.suite("HO_SO_LICH_SU").success
    # System and unknown tables are counted, never read column by column.
    for table, rows in (("HT_NGUOI_DUNG", 1), ("IMPORT_TAM", 2), ("HT_NHAT_KY", 0)):
        (count,) = results.suite(table).expectations
        assert (count.expectation, count.observed_value) == ("expect_table_row_count_to_be_between", rows)
    text = _docs_text(docs)
    assert "dv002 " in text and PASSWORD_HASH not in text and "SECRETHASHVALUE" not in text


def test_legacy_profile_describes_the_dirt_read_only_and_never_raises(sqlite_url, tmp_path):
    url = sqlite_url("legacy")
    writable = sa.create_engine(url)
    _dirty_legacy(writable)
    writable.dispose()
    engine = legacy_engine(Secret(url))  # mode=ro: SQLite itself refuses any write
    results = run_legacy_profile(engine, docs_dir=tmp_path / "gx-legacy")
    _check_dirty_profile(results, tmp_path / "gx-legacy")
    assert results.data_docs_index.is_file()
    assert results.to_dict()["descriptive"] is True


def test_legacy_profile_on_a_sample_reads_only_the_first_rows(sqlite_url, tmp_path):
    url = sqlite_url("legacy")
    writable = sa.create_engine(url)
    _dirty_legacy(writable)
    writable.dispose()
    results = run_legacy_profile(legacy_engine(Secret(url)), docs_dir=tmp_path / "gx", sample_rows=1)
    (count, *_) = results.suite("DM_DONVI").expectations
    assert count.observed_value == 1  # DV001 only: the dirty rows after it are not in the sample
    assert results.suite("DM_DONVI").success
    assert any("first 1 rows" in note for note in results.notes)


@pytest.mark.mariadb
def test_legacy_profile_runs_on_mariadb_over_odbc(mariadb_database, tmp_path):
    url = mariadb_database()
    writable = sa.create_engine(url)
    _dirty_legacy(writable)
    writable.dispose()
    engine = legacy_engine(Secret(url))  # read-only session
    results = run_legacy_profile(engine, docs_dir=tmp_path / "gx")
    _check_dirty_profile(results, tmp_path / "gx")
    engine.dispose()
