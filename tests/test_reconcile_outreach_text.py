"""The re-registration outreach list never carries garbled names: repaired, or marked for a person to check."""

from __future__ import annotations

import csv
import datetime as dt
from types import SimpleNamespace

import sqlalchemy as sa

from load import target_schema as ts
from load.schema_version import prepare_target
from reconcile.findings import CONTACT_FIELDS, reregistration
from reconcile.report import write_outreach_csv
from ts24_migrate.core.legacy.encodings import encode_as_tcvn3_mojibake, encode_as_vni_mojibake
from ts24_migrate.core.legacy.schema import DM_DONVI
from ts24_migrate.core.legacy.schema import metadata as legacy_metadata

NOW = dt.datetime(2025, 6, 1, 8, 30)


def _unit(code: str, name: str, **values):
    return {
        "MA_DV": code,
        "TEN_DV": name,
        "MA_SO_THUE": None,
        "DIA_CHI": "Số 1 Lê Lợi",
        "MA_CQ": "01",
        "NGUOI_LIEN_HE": "Lê Văn An",
        "DIEN_THOAI": "0912345678",
        "EMAIL": "a@b.vn",
        "PHUONG_THUC_GD": 1,
        "MA_IVAN": None,
        "SERIAL_CTS": None,
        "CTS_TU_NGAY": None,
        "CTS_DEN_NGAY": None,
        "NGAY_DANG_KY": "15/03/2010",
        "TRANG_THAI": 1,
        "NGAY_CAP_NHAT": NOW,
        **values,
    }


def test_outreach_names_are_repaired_or_marked_never_garbled(sqlite_url, tmp_path):
    legacy = sa.create_engine(sqlite_url("legacy"))
    legacy_metadata.create_all(legacy, tables=[DM_DONVI])
    target = sa.create_engine(sqlite_url("target"))
    prepare_target(target)
    suspect = "B\x81O H\x81\x81M X‚ H—I"
    with legacy.begin() as conn:
        conn.execute(
            DM_DONVI.insert(),
            [
                # not loaded into the new system: the legacy row as it is, in capitals
                _unit(
                    "U1",
                    encode_as_tcvn3_mojibake("CÔNG TY TNHH ĐỒNG THÁP", capital_codes=True),
                    NGUOI_LIEN_HE=encode_as_tcvn3_mojibake("NGUYỄN VĂN ĐỨC", capital_codes=True),
                ),
                _unit(
                    "U2", encode_as_vni_mojibake("HỢP TÁC XÃ HÀ NỘI"), DIA_CHI=encode_as_tcvn3_mojibake("Số 2 Hà Nội")
                ),
                _unit("U3", suspect),  # no decoding repairs it
                _unit("U4", "Cöa Nam"),  # TCVN3 or VNI? both are Vietnamese
                _unit("U5", "Công ty TNHH Thăng Long"),  # clean
                # loaded: the new system's (repaired) copy is used
                _unit("U6", encode_as_tcvn3_mojibake("BẢO HIỂM XÃ HỘI", capital_codes=True)),
            ],
        )
    with target.begin() as conn:
        conn.execute(
            ts.units.insert().values(
                unit_code="U6",
                name="BẢO HIỂM XÃ HỘI",
                transaction_mode="portal",
                active=True,
                source="ts24",
                updated_at=NOW,
            )
        )
    with legacy.connect() as source, target.connect() as new_system:
        found = reregistration(source, new_system)
    rows = {r["unit_code"]: r for r in found.missing}
    assert set(rows) == {"U1", "U2", "U3", "U4", "U5", "U6"}
    assert (rows["U1"]["name"], rows["U1"]["contact_name"]) == ("CÔNG TY TNHH ĐỒNG THÁP", "NGUYỄN VĂN ĐỨC")
    assert (rows["U2"]["name"], rows["U2"]["address"]) == ("HỢP TÁC XÃ HÀ NỘI", "Số 2 Hà Nội")
    assert rows["U3"]["name"] == suspect and rows["U3"]["text_check"] == "name: TEXT_ENCODING_SUSPECT"
    assert rows["U4"]["name"] == "Cöa Nam" and rows["U4"]["text_check"] == "name: TEXT_ENCODING_AMBIGUOUS"
    assert rows["U5"]["name"] == "Công ty TNHH Thăng Long" and rows["U5"]["text_check"] is None
    assert rows["U6"]["name"] == "BẢO HIỂM XÃ HỘI"
    assert all(rows[c]["text_check"] is None for c in ("U1", "U2", "U5", "U6"))

    path = write_outreach_csv(SimpleNamespace(reregistration=found), tmp_path)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert list(written[0]) == list(CONTACT_FIELDS) and CONTACT_FIELDS[-1] == "text_check"
    assert [r["name"] for r in written] == [rows[c]["name"] for c in sorted(rows)]
    legacy.dispose()
    target.dispose()
