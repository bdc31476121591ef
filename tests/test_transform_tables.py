"""transform_batch table by table: what each defect does, and the cross-batch memory."""

from __future__ import annotations

import datetime as dt
import hashlib
import os

import pandas as pd
import pyarrow as pa
import pytest

from load.target_schema import metadata as target_metadata
from transform import REASON_CODES, TransformContext, target_table_for, transform_batch
from transform.tables import TABLES
from ts24_migrate.core.legacy.schema import metadata as legacy_metadata
from ts24_migrate.core.rows.fingerprint import row_digest

CUTOVER = dt.date(2025, 7, 1)
NOW = dt.datetime(2025, 6, 1, 8, 30)


def legacy_columns(table: str) -> list[str]:
    return [c.name for c in legacy_metadata.tables[table].columns]


def batch(table: str, *rows: dict) -> pa.RecordBatch:
    """A batch with the legacy table's columns in legacy order (missing values None)."""
    names = legacy_columns(table)
    return pa.RecordBatch.from_pylist(
        [{n: r.get(n) for n in names} for r in rows],
        schema=None if rows else pa.schema([(n, pa.null()) for n in names]),
    )


def office(code="01", **kw):
    return {
        "MA_CQ": code,
        "TEN_CQ": "BHXH thành phố Hà Nội",
        "CAP": 1 if len(code.strip()) == 2 else 2,
        "MA_TINH": "01",
        **kw,
    }


def unit(code="DN0001", **kw):
    return {
        "MA_DV": code,
        "TEN_DV": "Công ty TNHH Thăng Long",
        "MA_SO_THUE": "0100233488",
        "DIA_CHI": "Số 1 Lê Lợi",
        "MA_CQ": "01",
        "NGUOI_LIEN_HE": "Lê Văn An",
        "DIEN_THOAI": "0912345678",
        "EMAIL": "a@b.vn",
        "PHUONG_THUC_GD": 3,
        "MA_IVAN": "00040",
        "SERIAL_CTS": "5401AB",
        "CTS_TU_NGAY": dt.datetime(2024, 1, 1),
        "CTS_DEN_NGAY": dt.datetime(2026, 1, 1),
        "NGAY_DANG_KY": "15/03/2010",
        "TRANG_THAI": 1,
        "NGAY_CAP_NHAT": NOW,
        **kw,
    }


def person(number="0101234567", **kw):
    return {
        "MA_SO_BHXH": number,
        "HO_TEN": "Nguyễn Thị Ánh",
        "NGAY_SINH": "15/08/1985",
        "GIOI_TINH": 0,
        "SO_CCCD": "001185012345",
        "MA_DV": "DN0001",
        "NGAY_CAP_NHAT": NOW,
        **kw,
    }


def dossier(dossier_id=1000, **kw):
    return {
        "ID_HO_SO": dossier_id,
        "SO_HO_SO": f"HS-{dossier_id}",
        "MA_DV": "DN0001",
        "MA_THU_TUC": "600a",
        "KY_KE_KHAI": "05/2025",
        "NGAY_NOP": dt.datetime(2025, 5, 2, 9),
        "NGAY_TIEP_NHAN": dt.datetime(2025, 5, 3, 9),
        "NGAY_HEN_TRA": dt.date(2025, 5, 20),
        "NGAY_TRA_KQ": None,
        "TRANG_THAI": 2,
        "MA_CQ": "01",
        "CAN_BO_XU_LY": "cb01",
        "SO_KET_QUA": None,
        "GHI_CHU": "Bổ sung hồ sơ",
        "NGAY_CAP_NHAT": NOW,
        **kw,
    }


def file_row(file_id=1, content=b"<xml/>", **kw):
    row = {
        "ID_TEP": file_id,
        "ID_HO_SO": 1000,
        "MA_TO_KHAI": "C70a-HD",
        "TEN_TEP": "tờ khai.xml",
        "LOAI_TEP": "xml",
        "NOI_DUNG": content,
        "DUONG_DAN": None,
        "KICH_THUOC": len(content or b""),
        "MD5": hashlib.md5(content or b"").hexdigest(),
    }
    row.update(kw)
    return row


def history(history_id=1, **kw):
    return {
        "ID": history_id,
        "ID_HO_SO": 1000,
        "THOI_GIAN": NOW,
        "TRANG_THAI_CU": 1,
        "TRANG_THAI_MOI": 2,
        "NGUOI_THUC_HIEN": "cb01",
        "NOI_DUNG": "Chuyển bộ phận xử lý",
        **kw,
    }


@pytest.fixture
def ctx(tmp_path) -> TransformContext:
    context = TransformContext("site-01", CUTOVER, tmp_path / "files", dt.date(2025, 7, 31))
    (tmp_path / "files").mkdir()
    return context


@pytest.fixture
def seeded(ctx) -> TransformContext:
    """A context that has accepted office 01, unit DN0001 and dossier 1000."""
    transform_batch("DM_COQUAN_BHXH", batch("DM_COQUAN_BHXH", office()), ctx)
    transform_batch("DM_DONVI", batch("DM_DONVI", unit()), ctx)
    transform_batch("HO_SO", batch("HO_SO", dossier()), ctx)
    return ctx


def only_reject(result):
    assert len(result.rows) == 0 and len(result.rejects) == 1
    return result.rejects.iloc[0]


def flags(result, row=0) -> set[str]:
    value = result.rows["dq_flags"].iloc[row]
    return set(value.split(";")) if value else set()


# --- shape ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "legacy_table, row",
    [
        ("DM_COQUAN_BHXH", office()),
        ("DM_DONVI", unit()),
        ("NGUOI_LAO_DONG", person()),
        ("HO_SO", dossier()),
        ("HO_SO_TEP", file_row()),
        ("HO_SO_LICH_SU", history()),
    ],
)
def test_clean_rows_have_the_target_business_columns_lineage_and_no_flags(seeded, legacy_table, row):
    result = transform_batch(legacy_table, batch(legacy_table, row), seeded)
    assert len(result.rows) == 1 and len(result.rejects) == 0
    target = target_metadata.tables[target_table_for(legacy_table)]
    surrogate = {c.name for c in target.columns if c.primary_key and c.name.endswith("_id")}
    business = [c.name for c in target.columns if c.name not in surrogate | {"source", "dossier_id"}]
    assert [c for c in result.rows.columns if c in business] == business
    extra = set(result.rows.columns) - set(business)
    assert extra - {"legacy_dossier_id"} == {"legacy_key", "legacy_row_hash"} | ({"dq_flags"} - set(business))
    assert ("legacy_dossier_id" in extra) == (legacy_table in ("HO_SO_TEP", "HO_SO_LICH_SU"))
    assert result.rows["dq_flags"].iloc[0] is None
    values = [row.get(c) for c in legacy_columns(legacy_table)]
    assert result.rows["legacy_row_hash"].iloc[0] == row_digest(values).hex()
    assert all(dtype is pd.api.types.pandas_dtype(object) for dtype in result.rows.dtypes)


def test_mapping_of_tables():
    assert target_table_for("HO_SO") == "dossiers"
    assert {t: target_table_for(t) for t in TABLES} == {
        "DM_COQUAN_BHXH": "offices",
        "DM_DONVI": "units",
        "NGUOI_LAO_DONG": "insured_persons",
        "HO_SO": "dossiers",
        "HO_SO_TEP": "dossier_files",
        "HO_SO_LICH_SU": "dossier_history",
    }


@pytest.mark.parametrize("table", ["HT_NGUOI_DUNG", "HT_NHAT_KY", "ht_nguoi_dung", "IMPORT_TAM"])
def test_system_and_unmapped_tables_are_never_transformed(ctx, table):
    with pytest.raises(ValueError, match="system table|not a mapped table"):
        transform_batch(table, pa.RecordBatch.from_pylist([{"X": 1}]), ctx)
    with pytest.raises(ValueError):
        target_table_for(table)


def test_a_batch_missing_a_legacy_column_is_refused(ctx):
    with pytest.raises(ValueError, match="lacks legacy columns TEN_CQ"):
        transform_batch("DM_COQUAN_BHXH", pa.RecordBatch.from_pylist([{"MA_CQ": "01"}]), ctx)


def test_an_empty_batch_gives_empty_frames(ctx):
    result = transform_batch("DM_DONVI", batch("DM_DONVI"), ctx)
    assert len(result.rows) == 0 and len(result.rejects) == 0


# --- offices, units ----------------------------------------------------------------------


def test_office_levels_and_codes(ctx):
    result = transform_batch(
        "DM_COQUAN_BHXH",
        batch(
            "DM_COQUAN_BHXH",
            office("01"),
            office("0101"),
            office("011", CAP=2),
            office("0102", CAP=1),
            office("02", CAP=7),
            office("  "),
        ),
        ctx,
    )
    assert list(result.rows["level"]) == ["province", "district"]
    assert list(result.rejects["reason_code"]) == [
        "OFFICE_CODE_INVALID",
        "OFFICE_LEVEL_INVALID",
        "OFFICE_LEVEL_INVALID",
        "KEY_MISSING",
    ]
    assert ctx.known_office_codes == {"01", "0101"}


def test_unit_codes_are_normalized_and_duplicates_after_normalization_rejected(seeded):
    result = transform_batch("DM_DONVI", batch("DM_DONVI", unit("ab123 "), unit("AB123"), unit(" dn0001")), seeded)
    assert list(result.rows["unit_code"]) == ["AB123"]
    assert flags(result) == {"CODE_NORMALIZED"}
    assert list(result.rejects["reason_code"]) == ["DUPLICATE_KEY", "DUPLICATE_KEY"]
    assert list(result.rejects["legacy_key"]) == ["AB123", " dn0001"]
    assert "'ab123 '" in result.rejects["message"].iloc[0]
    # the same legacy row seen again (a retried chunk) is not a duplicate of itself
    again = transform_batch("DM_DONVI", batch("DM_DONVI", unit("ab123 ")), seeded)
    assert len(again.rows) == 1


def test_unit_value_rules(seeded):
    result = transform_batch(
        "DM_DONVI",
        batch(
            "DM_DONVI",
            unit("U1", MA_SO_THUE="0100233480", NGAY_DANG_KY="30/02/2019", MA_CQ="99", MA_IVAN=None, EMAIL=""),
            unit("U2", MA_SO_THUE="01002", PHUONG_THUC_GD=1, MA_IVAN="40", NGAY_DANG_KY="03/2010"),
            unit("U3", MA_SO_THUE=" 0100233488-001 ", PHUONG_THUC_GD=2, TRANG_THAI=0),
            unit("U4", PHUONG_THUC_GD=4),
            unit("U5", TRANG_THAI=3),
            unit("U6", TEN_DV="  "),
            unit("U-7"),
            unit("U8", NGAY_CAP_NHAT=None),
        ),
        seeded,
    )
    rows = result.rows.set_index("unit_code")
    assert flags(result, 0) == {
        "TAX_CODE_CHECK_DIGIT",
        "REGISTRATION_DATE_INVALID",
        "ORPHAN_OFFICE_CLEARED",
        "IVAN_CODE_MISSING",
        "EMPTY_AS_NULL",
    }
    assert rows.loc["U1", ["tax_code", "registered_on", "office_code", "email"]].isna().all()
    assert flags(result, 1) == {"TAX_CODE_MALFORMED", "IVAN_CODE_INVALID", "REGISTRATION_DATE_INVALID"}
    assert rows.loc["U2", "transaction_mode"] == "portal"
    assert rows.loc["U3", "tax_code"] == "0100233488-001" and rows.loc["U3", "active"] is False
    assert rows.loc["U3", "transaction_mode"] == "network_unsigned"
    assert rows.loc["U3", "registered_on"] == dt.date(2010, 3, 15)
    assert dict(zip(result.rejects["legacy_key"], result.rejects["reason_code"])) == {
        "U4": "TRANSACTION_MODE_INVALID",
        "U5": "UNIT_STATUS_INVALID",
        "U6": "REQUIRED_MISSING",
        "U-7": "UNIT_CODE_INVALID",
        "U8": "REQUIRED_MISSING",
    }


def test_a_row_with_several_defects_is_rejected_once_and_the_message_lists_the_rest(seeded):
    result = transform_batch(
        "DM_DONVI", batch("DM_DONVI", unit("U9", TEN_DV=None, PHUONG_THUC_GD=9, TRANG_THAI=None)), seeded
    )
    reject = only_reject(result)
    assert (reject.reason_code, reject.field) == ("REQUIRED_MISSING", "TEN_DV")
    assert "TRANSACTION_MODE_INVALID on PHUONG_THUC_GD" in reject.message
    assert "UNIT_STATUS_INVALID on TRANG_THAI" in reject.message


def test_text_is_repaired_flagged_and_counted(seeded):
    result = transform_batch(
        "DM_DONVI",
        batch(
            "DM_DONVI",
            unit("T1", TEN_DV="C«ng ty TNHH Th¨ng Long", DIA_CHI="Sè 1 Lª Lîi"),
            unit("T2", TEN_DV="Coâng ty TNHH Thaêng Long", NGUOI_LIEN_HE="  Lê  Văn\tAn "),
            unit("T3", TEN_DV="Co\u0302ng ty TNHH Tha\u0306ng Long"),
        ),
        seeded,
    )
    assert set(result.rows["name"]) == {"Công ty TNHH Thăng Long"}
    assert result.rows["address"].iloc[0] == "Số 1 Lê Lợi"
    assert result.rows["contact_name"].iloc[1] == "Lê Văn An"
    assert [flags(result, i) for i in range(3)] == [
        {"TEXT_REPAIRED_TCVN3"},
        {"TEXT_REPAIRED_VNI", "WHITESPACE_TRIMMED"},
        {"TEXT_REPAIRED_NFD"},
    ]
    # every flagged value keeps its field, the original and the value loaded
    details = {
        (r.legacy_key, r.flag_code, r.field): (r.original_value, r.loaded_value) for r in result.flags.itertuples()
    }
    assert details[("T1", "TEXT_REPAIRED_TCVN3", "DIA_CHI")] == ("Sè 1 Lª Lîi", "Số 1 Lê Lợi")
    assert details[("T2", "TEXT_REPAIRED_VNI", "TEN_DV")] == ("Coâng ty TNHH Thaêng Long", "Công ty TNHH Thăng Long")
    assert details[("T2", "WHITESPACE_TRIMMED", "NGUOI_LIEN_HE")] == ("  Lê  Văn\tAn ", "Lê Văn An")
    assert len(details) == 5  # T1 TEN_DV + DIA_CHI, T2 two, T3 one
    assert result.text_repairs[("DM_DONVI", "TEN_DV", "tcvn3")] == 1
    assert result.text_repairs[("DM_DONVI", "TEN_DV", "vni")] == 1
    assert result.text_repairs[("DM_DONVI", "TEN_DV", "nfd")] == 1
    assert result.text_repairs[("DM_DONVI", "DIA_CHI", "tcvn3")] == 1


def test_text_handed_over_as_bytes_is_decoded_not_crashed_on(seeded):
    result = transform_batch(
        "HO_SO_LICH_SU",
        batch(
            "HO_SO_LICH_SU",
            history(1, NOI_DUNG="Tiếp nhận".encode()),
            history(2, NOI_DUNG="TiÕp nhËn".encode("cp1252")),
        ),
        seeded,
    )
    assert list(result.rows["note"]) == ["Tiếp nhận", "Tiếp nhận"]
    assert set(result.rows["dq_flags"]) == {None, "TEXT_REPAIRED_TCVN3"}
    numbers = transform_batch("HO_SO_LICH_SU", batch("HO_SO_LICH_SU", history(3, NOI_DUNG=42)), seeded)
    assert list(numbers.rows["note"]) == ["42"]


# --- persons -------------------------------------------------------------------------


def test_person_rules(seeded):
    result = transform_batch(
        "NGUOI_LAO_DONG",
        batch(
            "NGUOI_LAO_DONG",
            person("0100000001", NGAY_SINH="08/1985", GIOI_TINH=1, MA_DV="dn0001 "),
            person("0100000002", NGAY_SINH="1985", SO_CCCD="12345", MA_DV="ZZ999", GIOI_TINH=7),
            person("0100000003", NGAY_SINH="31/02/1990"),
            person("010000004"),
            person("  "),
            person("0100000005", HO_TEN=""),
            person("0100000006", NGAY_SINH="", SO_CCCD=None, MA_DV=None, GIOI_TINH=None),
        ),
        seeded,
    )
    rows = result.rows.set_index("social_insurance_no")
    assert (rows.loc["0100000001", "birth_date"], rows.loc["0100000001", "birth_date_precision"]) == (
        dt.date(1985, 8, 1),
        "month",
    )
    assert rows.loc["0100000001", "sex"] == "M" and rows.loc["0100000001", "unit_code"] == "DN0001"
    assert flags(result, 0) == {"BIRTH_DATE_PARTIAL", "CODE_NORMALIZED"}
    assert rows.loc["0100000002", "birth_date_precision"] == "year"
    assert rows.loc["0100000002", ["citizen_id", "unit_code", "sex"]].isna().all()
    assert flags(result, 1) == {"BIRTH_DATE_PARTIAL", "CITIZEN_ID_INVALID", "ORPHAN_UNIT_CLEARED", "SEX_INVALID"}
    assert rows.loc["0100000006", ["birth_date", "birth_date_precision", "sex"]].isna().all()
    assert flags(result, 2) == {"EMPTY_AS_NULL"}
    assert dict(zip(result.rejects["legacy_key"], result.rejects["reason_code"])) == {
        "0100000003": "BIRTH_DATE_INVALID",
        "010000004": "SI_NUMBER_INVALID",
        "  ": "KEY_MISSING",
        "0100000005": "REQUIRED_MISSING",
    }
    assert "31/02/1990" in result.rejects.set_index("legacy_key").loc["0100000003", "message"]


def test_the_same_person_under_two_numbers_is_flagged_across_batches(seeded):
    first = transform_batch("NGUOI_LAO_DONG", batch("NGUOI_LAO_DONG", person("0100000001")), seeded)
    twin = transform_batch(
        "NGUOI_LAO_DONG",
        batch(
            "NGUOI_LAO_DONG",
            person("0100000099"),
            person("0100000098", SO_CCCD=None),
            person("0100000097", HO_TEN="Trần Văn Bình", SO_CCCD="001085099999"),
        ),
        seeded,
    )
    assert flags(first) == set()
    assert [flags(twin, i) for i in range(3)] == [{"POSSIBLE_DUPLICATE_PERSON"}] * 2 + [set()]


# --- dossiers -----------------------------------------------------------------------


def test_dossier_rules(seeded):
    result = transform_batch(
        "HO_SO",
        batch(
            "HO_SO",
            dossier(1, NGAY_TIEP_NHAN=dt.datetime(2025, 7, 2, 9), MA_THU_TUC=" 600A", KY_KE_KHAI="13/2025", MA_CQ="77"),
            dossier(2, NGAY_TIEP_NHAN=dt.datetime(2025, 5, 1), TRANG_THAI=4, NGAY_TRA_KQ=dt.datetime(2025, 5, 20)),
            dossier(3, MA_DV="NOPE"),
            dossier(4, TRANG_THAI=9),
            dossier(5, SO_HO_SO="hs-1000"),
            dossier(6, NGAY_NOP=None),
            dossier(7, MA_DV=" "),
            dossier(8, MA_THU_TUC=""),
        ),
        seeded,
    )
    rows = result.rows.set_index("legacy_key")
    assert flags(result, 0) == {
        "RECEIVED_AFTER_CUTOVER",
        "CODE_NORMALIZED",
        "DECLARATION_PERIOD_INVALID",
        "ORPHAN_OFFICE_CLEARED",
    }
    assert rows.loc["1", "procedure_code"] == "600a" and rows.loc["1", "declaration_period"] is None
    assert flags(result, 1) == {"DATES_OUT_OF_ORDER"}
    assert (rows.loc["2", "status"], rows.loc["2", "declaration_period"]) == ("done", "2025-05")
    assert dict(zip(result.rejects["legacy_key"], result.rejects["reason_code"])) == {
        "3": "ORPHAN_UNIT",
        "4": "STATUS_INVALID",
        "5": "DUPLICATE_DOSSIER_NO",
        "6": "REQUIRED_MISSING",
        "7": "REQUIRED_MISSING",
        "8": "REQUIRED_MISSING",
    }
    assert seeded.known_dossier_ids == {"1000", "1", "2"}


def test_received_on_the_cutover_day_counts_as_after_only_past_midnight(seeded):
    result = transform_batch(
        "HO_SO",
        batch(
            "HO_SO",
            dossier(1, NGAY_TIEP_NHAN=dt.datetime(2025, 7, 1)),
            dossier(2, NGAY_TIEP_NHAN=dt.datetime(2025, 6, 30, 23, 59)),
        ),
        seeded,
    )
    assert [flags(result, i) for i in range(2)] == [set(), set()]


# --- files ---------------------------------------------------------------------------


def test_file_content_from_the_database(seeded):
    blob = bytes(range(256)) + b"\x00\xff"
    result = transform_batch(
        "HO_SO_TEP",
        batch(
            "HO_SO_TEP",
            file_row(1, blob),
            file_row(2, blob, MD5="0" * 32),
            file_row(3, blob, KICH_THUOC=1),
            file_row(4, blob, MD5=hashlib.md5(blob).hexdigest().upper()),
            file_row(5, blob, MD5=None),
            file_row(6, None),
            file_row(7, blob, ID_HO_SO=424242),
        ),
        seeded,
    )
    rows = result.rows.set_index("legacy_key")
    assert rows.loc["1", "content"] == blob and rows.loc["1", "size_bytes"] == len(blob)
    assert rows.loc["1", "md5"] == hashlib.md5(blob).hexdigest()
    assert rows.loc["1", "sha256"] == hashlib.sha256(blob).hexdigest()
    assert rows.loc["1", "legacy_dossier_id"] == "1000" and rows.loc["1", "form_code"] == "C70a-HD"
    assert flags(result, 1) == {"ATTACHMENT_SIZE_MISMATCH"} and rows.loc["3", "size_bytes"] == len(blob)
    assert flags(result, 2) == set()  # an upper-case checksum is the same checksum
    assert flags(result, 3) == {"ATTACHMENT_MD5_MISSING"}
    rejects = result.rejects.set_index("legacy_key")
    assert dict(rejects["reason_code"]) == {
        "2": "ATTACHMENT_MD5_MISMATCH",
        "6": "ATTACHMENT_MISSING",
        "7": "ORPHAN_DOSSIER",
    }
    assert rejects.loc["2", "field"] == "MD5" and rejects.loc["2", "original_value"] == "0" * 32


def test_file_content_from_the_attachment_folder(seeded, tmp_path):
    folder = seeded.attachments_dir
    (folder / "2020" / "01").mkdir(parents=True)
    content = "Tờ khai".encode()
    (folder / "2020" / "01" / "tờ khai 1.xml").write_bytes(content)
    (tmp_path / "secret.txt").write_bytes(content)
    os.symlink(tmp_path / "secret.txt", folder / "link.xml")
    md5 = hashlib.md5(content).hexdigest()
    rows = [
        file_row(1, None, DUONG_DAN="2020/01/tờ khai 1.xml", MD5=md5, KICH_THUOC=len(content)),
        file_row(2, None, DUONG_DAN="2020\\01\\tờ khai 1.xml", MD5=md5, KICH_THUOC=len(content)),
        file_row(3, None, DUONG_DAN="2020/01/missing.xml", MD5=md5),
        file_row(4, None, DUONG_DAN="../secret.txt", MD5=md5),
        file_row(5, None, DUONG_DAN="/etc/passwd", MD5=md5),
        file_row(6, None, DUONG_DAN="C:\\TS24\\files\\a.xml", MD5=md5),
        file_row(7, None, DUONG_DAN="link.xml", MD5=md5),
        file_row(8, None, DUONG_DAN="2020/01/tờ khai 1.xml", MD5="f" * 32),
        file_row(9, None, DUONG_DAN="2020", MD5=md5),
    ]
    result = transform_batch("HO_SO_TEP", batch("HO_SO_TEP", *rows), seeded)
    assert list(result.rows["content"]) == [content, content]
    assert dict(zip(result.rejects["legacy_key"], result.rejects["reason_code"])) == {
        "3": "ATTACHMENT_MISSING",
        "4": "ATTACHMENT_PATH_INVALID",
        "5": "ATTACHMENT_PATH_INVALID",
        "6": "ATTACHMENT_PATH_INVALID",
        "7": "ATTACHMENT_PATH_INVALID",
        "8": "ATTACHMENT_MD5_MISMATCH",
        "9": "ATTACHMENT_MISSING",
    }
    assert set(result.rejects["field"]) == {"DUONG_DAN", "MD5"}


def test_files_on_disk_without_an_attachment_folder_are_missing(tmp_path):
    ctx = TransformContext("s", CUTOVER, None, dt.date(2025, 7, 31))
    ctx.known_dossier_ids.add("1000")  # pre-seeded, as a delta run would
    result = transform_batch("HO_SO_TEP", batch("HO_SO_TEP", file_row(1, None, DUONG_DAN="a.xml")), ctx)
    assert only_reject(result).reason_code == "ATTACHMENT_MISSING"


# --- history and memory across tables ------------------------------------------------


def test_history_rules(seeded):
    result = transform_batch(
        "HO_SO_LICH_SU",
        batch(
            "HO_SO_LICH_SU",
            history(1, TRANG_THAI_CU=None, TRANG_THAI_MOI=0),
            history(2, ID_HO_SO=5),
            history(3, TRANG_THAI_MOI=8),
            history(4, TRANG_THAI_CU=8),
            history(5, THOI_GIAN=None),
        ),
        seeded,
    )
    assert (result.rows["status_from"].iloc[0], result.rows["status_to"].iloc[0]) == (None, "submitted")
    assert list(result.rejects["reason_code"]) == [
        "ORPHAN_DOSSIER",
        "STATUS_INVALID",
        "STATUS_INVALID",
        "REQUIRED_MISSING",
    ]


def test_rejected_parents_make_orphans_and_pre_seeding_resumes_the_memory(ctx):
    transform_batch("DM_COQUAN_BHXH", batch("DM_COQUAN_BHXH", office()), ctx)
    units = transform_batch("DM_DONVI", batch("DM_DONVI", unit("GOOD"), unit("BAD", PHUONG_THUC_GD=0)), ctx)
    dossiers = transform_batch("HO_SO", batch("HO_SO", dossier(1, MA_DV="GOOD"), dossier(2, MA_DV="BAD")), ctx)
    assert list(dossiers.rejects["reason_code"]) == ["ORPHAN_UNIT"]
    # A fresh context seeded from the rows accepted before gives the same verdicts.
    fresh = TransformContext("site-01", CUTOVER, None, dt.date(2025, 7, 31))
    fresh.known_office_codes.add("01")
    fresh.remember_accepted("DM_DONVI", units.rows)
    fresh.remember_accepted("HO_SO", dossiers.rows)
    again = transform_batch(
        "HO_SO", batch("HO_SO", dossier(3, MA_DV="GOOD", SO_HO_SO="HS-1"), dossier(4, MA_DV="BAD")), fresh
    )
    assert list(again.rejects["reason_code"]) == ["DUPLICATE_DOSSIER_NO", "ORPHAN_UNIT"]
    files = transform_batch("HO_SO_TEP", batch("HO_SO_TEP", file_row(1, ID_HO_SO=1), file_row(2, ID_HO_SO=2)), fresh)
    assert list(files.rejects["reason_code"]) == ["ORPHAN_DOSSIER"]


def test_every_reason_code_a_transform_can_give_is_documented():
    import pathlib
    import re

    source = "\n".join(p.read_text() for p in pathlib.Path("transform").rglob("*.py"))
    used = set(re.findall(r'"([A-Z][A-Z0-9_]{4,})"', source)) - {"MA_CQ"}
    used = {
        c
        for c in used
        if c in REASON_CODES
        or c.endswith(("_INVALID", "_MISSING", "_MISMATCH"))
        and not c.startswith(("MA_", "NGAY", "TEN_", "SO_"))
    }
    assert used <= set(REASON_CODES), used - set(REASON_CODES)
    assert set(REASON_CODES) <= used, set(REASON_CODES) - used  # no code documented but never given


def test_a_person_read_back_from_the_target_has_the_identity_it_was_loaded_with():
    """A resumed load remembers persons from the target: dates come back as datetimes, a missing unit as NaN."""
    from transform.tables.persons import _identity

    loaded = _identity("Nguyễn Văn An", dt.date(1990, 1, 2), "day", None)
    assert loaded == _identity("Nguyễn Văn An", pd.Timestamp("1990-01-02"), "day", float("nan"))
    assert loaded != _identity("Nguyễn Văn An", dt.date(1990, 1, 2), "day", "DN0001")
    assert _identity("Nguyễn Văn An", dt.date(1990, 1, 1), "year", None) is None  # a year alone identifies nobody


# --- legacy date variants and value normalizations: parsed or refused, flagged with the original ------


def test_legacy_date_variants_through_the_transform(seeded):
    births = [
        "15-08-1985",
        "1985-08-15",
        "15.08.1985",
        "8-1985",
        "5/8/1985",
        "15/08/85",
        "08/85",
        "12/05-1990",
        "12/25/1990",
    ]
    given_names = ["An", "Bình", "Cường", "Dũng", "Hà", "Lan", "Minh", "Nam", "Phúc"]  # nine different people
    persons = transform_batch(
        "NGUOI_LAO_DONG",
        batch(
            "NGUOI_LAO_DONG",
            *[
                person(f"01000000{11 + k}", NGAY_SINH=birth, SO_CCCD=None, HO_TEN=f"Nguyễn Văn {given_names[k]}")
                for k, birth in enumerate(births)
            ],
        ),
        seeded,
    )
    rows = persons.rows.set_index("social_insurance_no")
    assert list(rows["birth_date"].iloc[:3]) == [dt.date(1985, 8, 15)] * 3
    assert [flags(persons, i) for i in range(5)] == [{"DATE_FORM_VARIANT"}] * 3 + [
        {"DATE_FORM_VARIANT", "BIRTH_DATE_PARTIAL"},
        set(),
    ]  # 5/8/1985 is the spec's form, unpadded
    details = {
        (r.legacy_key, r.flag_code): (r.field, r.original_value, r.loaded_value) for r in persons.flags.itertuples()
    }
    assert details[("0100000012", "DATE_FORM_VARIANT")] == ("NGAY_SINH", "1985-08-15", "1985-08-15")
    assert details[("0100000013", "DATE_FORM_VARIANT")] == ("NGAY_SINH", "15.08.1985", "1985-08-15")
    rejects = persons.rejects.set_index("legacy_key")
    assert dict(rejects["reason_code"]) == {
        "0100000016": "BIRTH_DATE_TWO_DIGIT_YEAR",
        "0100000017": "BIRTH_DATE_TWO_DIGIT_YEAR",
        "0100000018": "BIRTH_DATE_INVALID",
        "0100000019": "BIRTH_DATE_INVALID",
    }
    assert "form dd/mm/yy" in rejects.loc["0100000016", "message"]
    assert "form mm/yy" in rejects.loc["0100000017", "message"]
    assert "mixes separators" in rejects.loc["0100000018", "message"]
    assert "month 25" in rejects.loc["0100000019", "message"]

    units = transform_batch(
        "DM_DONVI",
        batch(
            "DM_DONVI",
            unit("R1", NGAY_DANG_KY="15-03-2010"),
            unit("R2", NGAY_DANG_KY="15/03/10"),
            unit("R3", NGAY_DANG_KY="15/03/90"),
            unit("R4", NGAY_DANG_KY="2010-03-15"),
        ),
        seeded,
    )
    registered = dict(zip(units.rows["unit_code"], units.rows["registered_on"]))
    assert registered == {
        "R1": dt.date(2010, 3, 15),
        "R2": dt.date(2010, 3, 15),
        "R3": None,
        "R4": dt.date(2010, 3, 15),
    }
    assert [flags(units, i) for i in range(4)] == [
        {"DATE_FORM_VARIANT"},
        {"DATE_FORM_VARIANT"},
        {"REGISTRATION_DATE_INVALID"},
        {"DATE_FORM_VARIANT"},
    ]

    dossiers = transform_batch(
        "HO_SO",
        batch(
            "HO_SO",
            dossier(21, KY_KE_KHAI="05/25"),
            dossier(22, KY_KE_KHAI="2025-05"),
            dossier(23, KY_KE_KHAI="05/94"),
            dossier(24, KY_KE_KHAI="5/2025"),
        ),
        seeded,
    )
    assert list(dossiers.rows["declaration_period"]) == ["2025-05", "2025-05", None, "2025-05"]
    assert [flags(dossiers, i) for i in range(4)] == [
        {"DATE_FORM_VARIANT"},
        {"DATE_FORM_VARIANT"},
        {"DECLARATION_PERIOD_INVALID"},
        set(),
    ]


def test_every_normalization_that_changes_a_value_is_flagged_with_the_original(seeded):
    units = transform_batch(
        "DM_DONVI",
        batch(
            "DM_DONVI",
            unit("N1", MA_SO_THUE="0100233488 001"),
            unit("n2 ", MA_SO_THUE="0100233488001"),
            unit("N3", MA_SO_THUE=" 0100233488 ", DIEN_THOAI=" 0912345678 "),
            unit("N4"),
        ),
        seeded,
    )
    details = {
        (r.legacy_key, r.flag_code, r.field): (r.original_value, r.loaded_value) for r in units.flags.itertuples()
    }
    assert details == {
        ("N1", "TAX_CODE_NORMALIZED", "MA_SO_THUE"): ("0100233488 001", "0100233488-001"),
        ("n2 ", "TAX_CODE_NORMALIZED", "MA_SO_THUE"): ("0100233488001", "0100233488-001"),
        ("n2 ", "CODE_NORMALIZED", "MA_DV"): ("n2 ", "N2"),
        ("N3", "WHITESPACE_TRIMMED", "MA_SO_THUE"): (" 0100233488 ", "0100233488"),
        ("N3", "WHITESPACE_TRIMMED", "DIEN_THOAI"): (" 0912345678 ", "0912345678"),
    }
    assert flags(units, 3) == set()  # a clean row: nothing changed, nothing flagged
    persons = transform_batch(
        "NGUOI_LAO_DONG",
        batch("NGUOI_LAO_DONG", person("0100000031", SO_CCCD="001 185 012345", HO_TEN=" Lê  Văn An")),
        seeded,
    )
    details = {(r.flag_code, r.field): (r.original_value, r.loaded_value) for r in persons.flags.itertuples()}
    assert details == {
        ("CITIZEN_ID_NORMALIZED", "SO_CCCD"): ("001 185 012345", "001185012345"),
        ("WHITESPACE_TRIMMED", "HO_TEN"): (" Lê  Văn An", "Lê Văn An"),
    }
    # every flag code of a row is in its dq_flags, and every detail's code is a documented flag
    for result in (units, persons):
        for row in result.flags.itertuples():
            assert row.flag_code in result.rows.set_index("legacy_key").loc[row.legacy_key, "dq_flags"].split(";")
            assert REASON_CODES[row.flag_code][0] == "flag"
