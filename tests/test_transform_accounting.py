"""Every input row comes out exactly once, whatever the batch holds (Hypothesis)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transform import MAPPED_TABLES, REASON_CODES, TransformContext, transform_batch
from ts24_migrate.core.legacy.schema import metadata as legacy_metadata

TEXT = st.sampled_from(
    [
        None,
        "",
        "  ",
        "Hà Nội",
        "Hµ Néi",
        "Haø Noäi",
        "Ha\u0300 No\u0323\u0302i",
        "Søren",
        "Cöa Nam",
        "x" * 300,
        "\x00nul",
        "Thò",
    ]
)
CODES = st.sampled_from([None, "", " ", "01", "0101", "011", "DN0001", "dn0001 ", "AB-1", "ZZ9", "01 "])
INTS = st.sampled_from([None, 0, 1, 2, 3, 4, 6, 7, -1])
DATE_TEXT = st.sampled_from(
    [None, "", "15/08/1985", "08/1985", "1985", "31/02/1990", "15/13/1990", "1899", "2099", "abc", "05/2025", "13/2025"]
)
MOMENTS = st.sampled_from([None, dt.datetime(2020, 1, 1, 8), dt.datetime(2025, 7, 2, 9), dt.datetime(2025, 6, 30)])
TAX = st.sampled_from([None, "", "0100233488", "0100233480", "0100233488-001", "12", "01002334AB"])
IDS = st.integers(1, 40)
BLOB = st.sampled_from([None, b"", b"<xml/>", b"\x00\xff\xfe"])

COLUMN_VALUES = {
    "MA_CQ": CODES,
    "TEN_CQ": TEXT,
    "CAP": INTS,
    "MA_TINH": CODES,
    "MA_DV": CODES,
    "TEN_DV": TEXT,
    "MA_SO_THUE": TAX,
    "DIA_CHI": TEXT,
    "NGUOI_LIEN_HE": TEXT,
    "DIEN_THOAI": TEXT,
    "EMAIL": TEXT,
    "PHUONG_THUC_GD": INTS,
    "MA_IVAN": st.sampled_from([None, "00040", "40", ""]),
    "SERIAL_CTS": TEXT,
    "CTS_TU_NGAY": MOMENTS,
    "CTS_DEN_NGAY": MOMENTS,
    "NGAY_DANG_KY": DATE_TEXT,
    "TRANG_THAI": INTS,
    "NGAY_CAP_NHAT": MOMENTS,
    "MA_SO_BHXH": st.sampled_from(["0100000001", "0100000002", "010000003", " ", "0100000004 "]),
    "HO_TEN": TEXT,
    "NGAY_SINH": DATE_TEXT,
    "GIOI_TINH": INTS,
    "SO_CCCD": st.sampled_from([None, "", "001185012345", "012345678", "123"]),
    "SO_HO_SO": CODES,
    "MA_THU_TUC": st.sampled_from([None, "", "600", "600A ", "630a"]),
    "KY_KE_KHAI": DATE_TEXT,
    "NGAY_NOP": MOMENTS,
    "NGAY_TIEP_NHAN": MOMENTS,
    "NGAY_HEN_TRA": st.sampled_from([None, dt.date(2025, 5, 1)]),
    "NGAY_TRA_KQ": MOMENTS,
    "CAN_BO_XU_LY": TEXT,
    "SO_KET_QUA": TEXT,
    "GHI_CHU": TEXT,
    "ID_HO_SO": IDS,
    "MA_TO_KHAI": CODES,
    "TEN_TEP": TEXT,
    "LOAI_TEP": st.sampled_from([None, "xml", "PDF ", "doc"]),
    "NOI_DUNG": BLOB,
    "DUONG_DAN": st.sampled_from([None, "", "a.xml", "../x", "/etc/passwd"]),
    "KICH_THUOC": st.sampled_from([None, 0, 6]),
    "MD5": st.sampled_from([None, hashlib.md5(b"<xml/>").hexdigest(), "x"]),
    "THOI_GIAN": MOMENTS,
    "TRANG_THAI_CU": INTS,
    "TRANG_THAI_MOI": INTS,
    "NGUOI_THUC_HIEN": TEXT,
    "ID": IDS,
    "ID_TEP": IDS,
}


@st.composite
def legacy_rows(draw, table: str):
    columns = [c.name for c in legacy_metadata.tables[table].columns]
    key = legacy_metadata.tables[table].primary_key.columns.keys()[0]
    values = dict(COLUMN_VALUES, NOI_DUNG=BLOB if table == "HO_SO_TEP" else TEXT)
    n = draw(st.integers(0, 12))
    rows, keys = [], set()
    for _ in range(n):
        row = {c: draw(values[c]) for c in columns}
        if row[key] is None or row[key] in keys:  # a real primary key: present and unique
            continue
        keys.add(row[key])
        rows.append(row)
    return columns, rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_property_rows_in_equal_rows_out_plus_rejects(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("files")
    (folder / "a.xml").write_bytes(b"<xml/>")
    ctx = TransformContext("site", dt.date(2025, 7, 1), folder, dt.date(2025, 7, 31))
    for table in MAPPED_TABLES:
        for _ in range(data.draw(st.integers(1, 2), label=f"{table} batches")):
            columns, rows = data.draw(legacy_rows(table), label=table)
            batch = (
                pa.RecordBatch.from_pylist(rows, schema=None)
                if rows
                else pa.RecordBatch.from_pylist([], schema=pa.schema([(c, pa.null()) for c in columns]))
            )
            result = transform_batch(table, batch, ctx)
            keys_in = Counter(str(r[legacy_metadata.tables[table].primary_key.columns.keys()[0]]) for r in rows)
            keys_out = Counter(result.rows["legacy_key"]) + Counter(result.rejects["legacy_key"])
            assert keys_out == keys_in
            assert len(result.rows) + len(result.rejects) == len(rows)
            assert all(REASON_CODES[c][0] == "reject" for c in result.rejects["reason_code"])
            assert all(
                REASON_CODES[f][0] == "flag" for flags in result.rows["dq_flags"] if flags for f in flags.split(";")
            )
            assert result.rejects["message"].map(bool).all()
