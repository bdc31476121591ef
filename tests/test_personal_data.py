"""Personal data masked by one rule per kind (ts24_migrate/core/personal_data.py), files owner-only
(ts24_migrate/core/private_files.py), and the transform's key store leaving no readable file.

The rules are checked on the values the README's table promises, masking is
idempotent (a report rebuilt from masked figures is masked the same), a
message about a personal row loses the values it repeats, and Great
Expectations' Data Docs, built for real, show masked unexpected values only.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from ts24_migrate.core.personal_data import (
    BIRTH_DATE,
    CITIZEN_ID,
    EMAIL,
    FIELD_KINDS,
    MASKED_NOTICE,
    NAME,
    PHONE,
    SHOWN_NOTICE,
    SOCIAL_INSURANCE_NO,
    Masking,
    mask_as,
    mask_example,
    mask_legacy_key,
    mask_value,
    masking_for,
)
from ts24_migrate.core.private_files import (
    loose_modes,
    make_private_dirs,
    make_tree_private,
    private_dir,
    private_sqlite_file,
    write_private_text,
)


@pytest.fixture
def umask_022():
    """The umask most hosts run with: modes must not depend on it."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.parametrize(
    "field, value, shown",
    [
        ("MA_SO_BHXH", "0101234567", "01****4567"),
        ("social_insurance_no", "010359984", "01****984"),  # 9 characters: at least 4 hidden
        ("MA_SO_BHXH", "01O10", "0****"),
        ("SO_CCCD", "001085012345", "00******2345"),
        ("citizen_id", "012345678", "01****678"),
        ("HO_TEN", "Nguyễn Văn Đức", "N. V. Đ."),
        ("full_name", "  Trần  Thị Bích ", "  T. T. B. "),  # stray whitespace (a defect) kept
        ("NGUOI_LIEN_HE", "Lê An", "L. A."),
        ("NGAY_SINH", "15/03/1985", "**/**/1985"),
        ("NGAY_SINH", "03/1985", "**/1985"),
        ("NGAY_SINH", "1985", "1985"),
        ("NGAY_SINH", "31/02/1985", "**/**/1985"),
        ("NGAY_SINH", "15/08/85", "**/**/85"),  # a two-digit year: still the year only
        ("birth_date", dt.date(1985, 3, 15), "1985-**-**"),
        ("EMAIL", "nguyen.van.a@gmail.com", "n***@gmail.com"),
        ("email", "not-an-address", "n***"),
        ("DIEN_THOAI", "0912 345 678", "**** *** 678"),
        ("phone", "+84912345678", "+********678"),
        ("DIA_CHI", "Số 13 Bà Triệu, phường Dịch Vọng, thành phố Hà Nội", "***, thành phố Hà Nội"),
        ("CAN_BO_XU_LY", "cb.hoa", "c***"),
        ("GHI_CHU", "gọi cho anh Nam 0912345678", "(hidden: 26 characters)"),
        ("NOI_DUNG", b"<xml>...</xml>", "(hidden: 14 bytes)"),
        ("MAT_KHAU_HASH", "$2b$12$abc", "(hidden)"),
        ("MA_SO_THUE", "0101234567", "0101234567"),  # an enterprise's tax code is public
        ("MA_SO_THUE", "0101234567-001", "0101234567-001"),
        ("tax_code", "001085012345", "00******2345"),  # shaped like a citizen ID: masked as one
        ("HO_TEN", "", ""),  # an empty value is the defect shown
        ("HO_TEN", None, None),
        ("TEN_DV", "Công ty TNHH Hòa Bình", "Công ty TNHH Hòa Bình"),  # not personal
        ("units.email", "ketoan@x.vn", "k***@x.vn"),  # a qualified field
    ],
)
def test_each_kind_has_its_rule(field, value, shown):
    assert mask_value(field, value) == shown


def test_legacy_keys_of_insured_persons_are_masked_and_others_are_not():
    assert mask_legacy_key("NGUOI_LAO_DONG", "0101234567") == "01****4567"
    assert mask_legacy_key("insured_persons", "0101234567") == "01****4567"
    assert mask_legacy_key("HO_SO", "1000042") == "1000042"
    assert mask_legacy_key("DM_DONVI", "DN010013") == "DN010013"
    assert mask_legacy_key("NGUOI_LAO_DONG", "NULL#1a2b3c4d") == "NULL#1a2b3c4d"  # a digest, not a person


def test_an_example_loses_the_personal_values_its_message_repeats():
    example = {
        "legacy_key": "0101234567",
        "field": "NGAY_SINH",
        "value": "31/11/1975",
        "message": "'31/11/1975' is not a date on the calendar",
    }
    assert mask_example(example, table="NGUOI_LAO_DONG") == {
        "legacy_key": "01****4567",
        "field": "NGAY_SINH",
        "value": "**/**/1975",
        "message": "'**/**/1975' is not a date on the calendar",
    }
    duplicate = mask_example(
        {
            "legacy_key": "0101000099",
            "field": "MA_SO_BHXH",
            "value": "0101000001 ",
            "reason_code": "DUPLICATE_KEY",
            "message": "person '0101000001' is already loaded from legacy key '0101000001'",
        },
        table="NGUOI_LAO_DONG",
    )
    assert duplicate["value"] == "01****0001 " and "0101000001" not in duplicate["message"]
    assert duplicate["reason_code"] == "DUPLICATE_KEY"
    # A flag's example (another helper's section): every value key is masked by the field's rule.
    flagged = mask_example(
        {
            "legacy_key": "0101234567",
            "field": "HO_TEN",
            "original_value": "NguyÔn V¨n An",
            "value_loaded": "Nguyễn Văn An",
        },
        table="NGUOI_LAO_DONG",
    )
    assert flagged == {
        "legacy_key": "01****4567",
        "field": "HO_TEN",
        "original_value": "N. V. A.",
        "value_loaded": "N. V. A.",
    }
    # A unit's tax code is not personal: value and message kept.
    unit = {
        "legacy_key": "DN01",
        "field": "MA_SO_THUE",
        "value": "0101234568",
        "message": "tax code '0101234568' has a wrong check digit",
    }
    assert mask_example(unit, table="DM_DONVI") == unit


def test_a_message_naming_an_identifier_or_address_not_given_is_still_scrubbed():
    masked = mask_example(
        {
            "legacy_key": "0101234567",
            "field": "SO_CCCD",
            "value": "0011733105",
            "message": "citizen ID 001173310512 of 0101234567, mail a.b@c.vn, born 01/02/1980",
        },
        table="NGUOI_LAO_DONG",
    )
    assert masked["message"] == "citizen ID 00******0512 of 01****4567, mail a***@c.vn, born **/**/1980"


def test_shown_on_request_and_said_so():
    shown = Masking(show=True)
    assert shown.value("HO_TEN", "Nguyễn Văn An") == "Nguyễn Văn An" and shown.notice == SHOWN_NOTICE
    assert shown.legacy_key("NGUOI_LAO_DONG", "0101234567") == "0101234567"
    assert masking_for("shown").show and not masking_for("masked").show
    assert not masking_for(None).show and masking_for(None).notice == MASKED_NOTICE  # older runs: masked


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(set(FIELD_KINDS.values()))), text=st.text(max_size=40))
def test_masking_a_masked_value_changes_nothing(kind, text):
    once = mask_as(kind, text)
    assert mask_as(kind, once) == once


_DIRTY = st.text(st.sampled_from(list("0123456789abN *@.,/-ễĐ'")), max_size=30)


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(["HO_TEN", "NGAY_SINH", "MA_SO_BHXH", "EMAIL", "DIA_CHI", "MA_SO_THUE", "MA_DV"]),
    value=_DIRTY,
    message=_DIRTY,
    key=_DIRTY,
)
def test_a_report_rebuilt_from_masked_examples_masks_them_the_same(field, value, message, key):
    example = {"legacy_key": key, "field": field, "value": value, "message": message}
    once = mask_example(example, table="NGUOI_LAO_DONG")
    assert mask_example(once, table="NGUOI_LAO_DONG") == once


@settings(max_examples=200, deadline=None)
@given(digits=st.text(alphabet="0123456789", min_size=9, max_size=12))
def test_at_least_four_digits_of_an_identifier_are_hidden(digits):
    for kind in (SOCIAL_INSURANCE_NO, CITIZEN_ID):
        masked = mask_as(kind, digits)
        assert len(masked) == len(digits) and masked.count("*") >= max(4, round(0.4 * len(digits)))


@settings(max_examples=100, deadline=None)
@given(day=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2025, 12, 31)))
def test_a_birth_date_keeps_its_year_only(day):
    for kind, value in ((BIRTH_DATE, day.strftime("%d/%m/%Y")), (BIRTH_DATE, day)):
        masked = mask_as(kind, value)
        assert str(day.year) in masked and sum(c.isdigit() for c in masked) == 4


def test_other_kinds_keep_little():
    assert mask_as(NAME, "Nguyễn Văn An") == "N. V. A."
    assert mask_as(EMAIL, "an@x.vn").startswith("a***@")
    assert sum(c.isdigit() for c in mask_as(PHONE, "0912345678")) == 3


# -- files readable by their owner only ----------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_private_files_ignore_the_umask(tmp_path, umask_022):
    folder = private_dir(tmp_path / "work" / "sites" / "hn-01" / "reports" / "run")
    report = write_private_text(folder / "report.json", "{}")
    assert _mode(folder) == 0o700 and _mode(report) == 0o600
    assert all(_mode(p) == 0o700 for p in (tmp_path / "work", tmp_path / "work" / "sites"))
    report.chmod(0o644)
    write_private_text(report, "{}")  # an existing file is tightened as it is rewritten
    assert _mode(report) == 0o600
    database = private_sqlite_file(tmp_path / "work" / "control.sqlite")
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.exec_driver_sql("CREATE TABLE t (x)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        companions = [Path(f"{database}{s}") for s in ("-wal", "-shm") if Path(f"{database}{s}").exists()]
        assert companions and all(_mode(p) == 0o600 for p in companions)  # SQLite copies the database's mode
    engine.dispose()
    assert _mode(database) == 0o600
    assert loose_modes(tmp_path / "work") == []


def test_a_scratch_folder_elsewhere_leaves_its_existing_parents_alone(tmp_path, umask_022):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    made = make_private_dirs(shared / "restore" / "2019" / "06")
    assert _mode(shared) == 0o755  # not ours: untouched
    assert all(_mode(p) == 0o700 for p in (shared / "restore", shared / "restore" / "2019", made))


def test_a_tree_another_library_wrote_is_made_private(tmp_path, umask_022):
    (tmp_path / "docs" / "static").mkdir(parents=True)
    (tmp_path / "docs" / "index.html").write_text("x")
    (tmp_path / "docs" / "static" / "a.css").write_text("x")
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    outside.chmod(0o644)
    (tmp_path / "docs" / "link").symlink_to(outside)
    assert loose_modes(tmp_path / "docs")
    make_tree_private(tmp_path / "docs")
    assert loose_modes(tmp_path / "docs") == []
    assert _mode(outside) == 0o644  # a link is never followed


def test_the_key_store_database_is_owner_only_and_has_no_name(tmp_path):
    from ts24_migrate.core.key_store import KeyStore

    store = KeyStore(memory_entries=2)
    for number in ("0101234567", "0101234568", "0101234569"):
        store[number] = "legacy"  # the third moves the entries to the database on disk
    opened = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if "keys.sqlite" in target:
            opened.append((target, os.fstat(int(fd))))
    assert opened, "the key store did not move its entries to disk"
    for target, info in opened:
        assert target.endswith("(deleted)") and info.st_nlink == 0  # unlinked: nothing to open, nothing left
        assert stat.S_IMODE(info.st_mode) == 0o600
    assert store.get("0101234567") == "legacy" and len(store) == 3
    store.close()


# -- Great Expectations: results and Data Docs --------------------------------------------------


def _persons(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'persons.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE insured_persons (social_insurance_no TEXT, full_name TEXT)")
        conn.exec_driver_sql(
            "INSERT INTO insured_persons VALUES ('0101234567', 'Nguyễn Văn Đức'), "
            "('0101234567', 'Trần Thị Bích'), ('9876543', 'Lê Hữu Phúc')"
        )
    return engine


def _docs_text(folder: Path) -> str:
    return "".join(p.read_text(encoding="utf-8", errors="replace") for p in folder.rglob("*.html"))


@pytest.mark.slow
@pytest.mark.parametrize("show", [False, True])
def test_data_docs_and_results_show_masked_unexpected_values(tmp_path, umask_022, show):
    import great_expectations.expectations as gxe

    from validation.gx_runner import run_suites

    engine = _persons(tmp_path)
    suites = {
        "insured_persons": [
            gxe.ExpectColumnValuesToMatchRegex(column="social_insurance_no", regex=r"^[0-9]{10}$"),
            gxe.ExpectColumnValuesToBeUnique(column="social_insurance_no"),
            gxe.ExpectColumnValuesToMatchRegex(column="full_name", regex=r"^Z"),
        ]
    }
    docs = tmp_path / "reports" / "run" / "data-docs" / "target"
    results = run_suites(engine, suites, docs_dir=docs, kind="target", run_name="t", masking=Masking(show=show))
    examples = {e.expectation + ":" + e.column: e.examples for e in results.suite("insured_persons").expectations}
    text = _docs_text(docs)
    raw = ("0101234567", "9876543", "Nguyễn Văn Đức", "Trần Thị Bích", "Lê Hữu Phúc")
    if show:
        assert "0101234567" in examples["expect_column_values_to_be_unique:social_insurance_no"]
        assert all(value in text for value in raw)
    else:
        assert examples["expect_column_values_to_be_unique:social_insurance_no"] == ["01****4567", "01****4567"]
        assert examples["expect_column_values_to_match_regex:social_insurance_no"] == ["98****3"]
        assert sorted(examples["expect_column_values_to_match_regex:full_name"]) == ["L. H. P.", "N. V. Đ.", "T. T. B."]
        assert not [value for value in raw if value in text]
        assert "01****4567" in text and "N. V. Đ." in text  # the Data Docs still show what is wrong
    assert loose_modes(tmp_path / "reports") == []
    engine.dispose()
