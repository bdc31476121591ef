"""DM_DONVI -> units."""

from __future__ import annotations

import datetime as dt
import re
from functools import partial
from typing import Any

import pandas as pd

from ..columns import parse_distinct
from ..context import TransformContext
from ..dates import AGENCY_FOUNDED, DAY, parse_legacy_date
from ..identifiers import check_tax_code
from ..mappings import TRANSACTION_MODES, UNIT_ACTIVE
from .common import TableBatch, claim_key

LEGACY_TABLE = "DM_DONVI"
TARGET_TABLE = "units"
KEY_COLUMNS = ("MA_DV",)
LEGACY_COLUMNS = (
    "MA_DV",
    "TEN_DV",
    "MA_SO_THUE",
    "DIA_CHI",
    "MA_CQ",
    "NGUOI_LIEN_HE",
    "DIEN_THOAI",
    "EMAIL",
    "PHUONG_THUC_GD",
    "MA_IVAN",
    "SERIAL_CTS",
    "CTS_TU_NGAY",
    "CTS_DEN_NGAY",
    "NGAY_DANG_KY",
    "TRANG_THAI",
    "NGAY_CAP_NHAT",
)
# Which target column each legacy column becomes.
COLUMN_MAP = {
    "MA_DV": "unit_code",
    "TEN_DV": "name",
    "MA_SO_THUE": "tax_code",
    "DIA_CHI": "address",
    "MA_CQ": "office_code",
    "NGUOI_LIEN_HE": "contact_name",
    "DIEN_THOAI": "phone",
    "EMAIL": "email",
    "PHUONG_THUC_GD": "transaction_mode",
    "MA_IVAN": "ivan_code",
    "SERIAL_CTS": "cert_serial",
    "CTS_TU_NGAY": "cert_valid_from",
    "CTS_DEN_NGAY": "cert_valid_to",
    "NGAY_DANG_KY": "registered_on",
    "TRANG_THAI": "active",
    "NGAY_CAP_NHAT": "updated_at",
}
OUTPUT_COLUMNS = (
    "unit_code",
    "name",
    "tax_code",
    "address",
    "office_code",
    "contact_name",
    "phone",
    "email",
    "transaction_mode",
    "ivan_code",
    "cert_serial",
    "cert_valid_from",
    "cert_valid_to",
    "registered_on",
    "active",
    "dq_flags",
    "updated_at",
)
# What remember() reads of an accepted row (besides legacy_key): a resumed load reads back only these.
REMEMBERED_COLUMNS = ("unit_code",)
# Whose remembered rows this table's transform consults: what a resumed load must seed before it.
CONSULTS = ("DM_COQUAN_BHXH", "DM_DONVI")  # office codes (orphans), its own codes (duplicates)

_UNIT_CODE = re.compile(r"[0-9A-Z]{1,15}")
_IVAN_CODE = re.compile(r"[0-9]{5}")


def transform(tb: TableBatch) -> dict[str, list[Any]]:
    v, ctx = tb.verdicts, tb.ctx
    codes = tb.code("MA_DV")
    for i, code in enumerate(codes):
        if code is None:
            v.reject(i, "KEY_MISSING", "MA_DV", tb.raw("MA_DV")[i], "unit code is empty")
        elif not _UNIT_CODE.fullmatch(code):
            v.reject(
                i,
                "UNIT_CODE_INVALID",
                "MA_DV",
                tb.raw("MA_DV")[i],
                f"unit code {code!r} is not 1-15 letters and digits",
            )
    names = tb.text("TEN_DV")
    tb.require("TEN_DV", names)
    modes = [TRANSACTION_MODES.get(m) for m in tb.integers("PHUONG_THUC_GD")]
    tb.reject_where(
        "PHUONG_THUC_GD",
        [m is None for m in modes],
        "TRANSACTION_MODE_INVALID",
        "transaction mode {value!r} is not 1, 2 or 3",
    )
    active = [UNIT_ACTIVE.get(s) for s in tb.integers("TRANG_THAI")]
    tb.reject_where(
        "TRANG_THAI",
        [a is None for a in active],
        "UNIT_STATUS_INVALID",
        "unit status {value!r} is not 1 (active) or 0 (stopped)",
    )
    updated = tb.datetimes("NGAY_CAP_NHAT")
    tb.require("NGAY_CAP_NHAT", updated)

    tax_codes: list[str | None] = []
    for i, raw in enumerate(tb.plain("MA_SO_THUE")):
        if raw is None:
            tax_codes.append(None)
            continue
        tax_code, problem = check_tax_code(str(raw))
        tax_codes.append(tax_code)
        if problem:
            v.flag(i, problem, "MA_SO_THUE", tb.raw("MA_SO_THUE")[i], None)
        elif tax_code != str(raw):  # spaces inside removed, or the branch's dash put back
            v.flag(i, "TAX_CODE_NORMALIZED", "MA_SO_THUE", tb.raw("MA_SO_THUE")[i], tax_code)

    ivan_codes = tb.code("MA_IVAN")
    for i, ivan in enumerate(ivan_codes):
        if ivan is not None and not _IVAN_CODE.fullmatch(ivan):
            ivan_codes[i] = None
            v.flag(i, "IVAN_CODE_INVALID", "MA_IVAN", tb.raw("MA_IVAN")[i], None)
        if modes[i] == "ivan" and ivan_codes[i] is None:
            v.flag(i, "IVAN_CODE_MISSING", "MA_IVAN", tb.raw("MA_IVAN")[i], None)

    offices = tb.clear_unknown("MA_CQ", tb.code("MA_CQ"), ctx.known_office_codes, "ORPHAN_OFFICE_CLEARED")

    registered: list[dt.date | None] = []
    for i, parsed in enumerate(
        parse_distinct(
            tb.plain("NGAY_DANG_KY"),
            partial(parse_legacy_date, reference_date=ctx.reference_date, century_from=AGENCY_FOUNDED),
        )
    ):
        if parsed is not None and (not parsed.ok or parsed.precision != DAY):
            v.flag(i, "REGISTRATION_DATE_INVALID", "NGAY_DANG_KY", tb.raw("NGAY_DANG_KY")[i], None)
            parsed = None
        elif parsed is not None and parsed.variant:
            v.flag(i, "DATE_FORM_VARIANT", "NGAY_DANG_KY", tb.raw("NGAY_DANG_KY")[i], parsed.value)
        registered.append(parsed.value if parsed else None)

    seen = ctx.keys_of(LEGACY_TABLE)
    seen.warm(codes)
    for i, code in enumerate(codes):
        if code is not None and not v.is_rejected(i):  # (a row without a code is rejected already)
            claim_key(seen, i, code, tb, v, column="MA_DV", noun="unit")

    return {
        "unit_code": codes,
        "name": names,
        "tax_code": tax_codes,
        "address": tb.text("DIA_CHI"),
        "office_code": offices,
        "contact_name": tb.text("NGUOI_LIEN_HE"),
        "phone": tb.plain("DIEN_THOAI"),
        "email": tb.plain("EMAIL"),
        "transaction_mode": modes,
        "ivan_code": ivan_codes,
        "cert_serial": tb.plain("SERIAL_CTS"),
        "cert_valid_from": tb.datetimes("CTS_TU_NGAY"),
        "cert_valid_to": tb.datetimes("CTS_DEN_NGAY"),
        "registered_on": registered,
        "active": active,
        "updated_at": updated,
    }


def remember(ctx: TransformContext, rows: pd.DataFrame) -> None:
    keys = ctx.keys_of(LEGACY_TABLE)
    for code, legacy_key in zip(rows["unit_code"], rows["legacy_key"]):
        keys.setdefault(code, legacy_key)
        ctx.known_unit_codes.add(code)
