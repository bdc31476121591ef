"""HO_SO -> dossiers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from ..columns import parse_distinct
from ..context import TransformContext
from ..dates import ParsedDate, parse_period_date
from ..mappings import DOSSIER_STATUSES
from ..normalize import as_int
from .common import TableBatch, as_date

LEGACY_TABLE = "HO_SO"
TARGET_TABLE = "dossiers"
KEY_COLUMNS = ("ID_HO_SO",)
LEGACY_COLUMNS = (
    "ID_HO_SO",
    "SO_HO_SO",
    "MA_DV",
    "MA_THU_TUC",
    "KY_KE_KHAI",
    "NGAY_NOP",
    "NGAY_TIEP_NHAN",
    "NGAY_HEN_TRA",
    "NGAY_TRA_KQ",
    "TRANG_THAI",
    "MA_CQ",
    "CAN_BO_XU_LY",
    "SO_KET_QUA",
    "GHI_CHU",
    "NGAY_CAP_NHAT",
)
# Which target column each legacy column becomes.
COLUMN_MAP = {
    "SO_HO_SO": "dossier_no",
    "MA_DV": "unit_code",
    "MA_THU_TUC": "procedure_code",
    "KY_KE_KHAI": "declaration_period",
    "NGAY_NOP": "submitted_at",
    "NGAY_TIEP_NHAN": "received_at",
    "NGAY_HEN_TRA": "due_date",
    "NGAY_TRA_KQ": "returned_at",
    "TRANG_THAI": "status",
    "MA_CQ": "office_code",
    "CAN_BO_XU_LY": "officer",
    "SO_KET_QUA": "result_no",
    "GHI_CHU": "notes",
    "NGAY_CAP_NHAT": "updated_at",
}
OUTPUT_COLUMNS = (
    "dossier_no",
    "unit_code",
    "procedure_code",
    "declaration_period",
    "submitted_at",
    "received_at",
    "due_date",
    "returned_at",
    "status",
    "office_code",
    "officer",
    "result_no",
    "notes",
    "dq_flags",
    "updated_at",
)
# What remember() reads of an accepted row (besides legacy_key): a resumed load reads back only these.
REMEMBERED_COLUMNS = ("dossier_no",)
# Whose remembered rows this table's transform consults: what a resumed load must seed before it.
CONSULTS = ("DM_COQUAN_BHXH", "DM_DONVI", "HO_SO")  # office and unit codes, its own numbers


def received_after_cutover(received_at: dt.datetime | None, cutover: dt.date) -> bool:
    """NGAY_TIEP_NHAN > cut-over date (from its first instant): TS24 may not receive dossiers any more."""
    return received_at is not None and received_at > dt.datetime.combine(cutover, dt.time.min)


def transform(tb: TableBatch) -> dict[str, list[Any]]:
    v, ctx = tb.verdicts, tb.ctx
    ids = tb.integers("ID_HO_SO")
    tb.reject_where("ID_HO_SO", [i is None for i in ids], "KEY_MISSING", "dossier id {value!r} is not a number")
    numbers = tb.code("SO_HO_SO", case="keep")
    tb.require("SO_HO_SO", numbers)
    units = tb.code("MA_DV")
    tb.require("MA_DV", units)
    ctx.known_unit_codes.warm(units)
    for i, unit in enumerate(units):
        if unit is not None and unit not in ctx.known_unit_codes:
            v.reject(i, "ORPHAN_UNIT", "MA_DV", tb.raw("MA_DV")[i], f"unit {unit!r} is not an accepted unit")
    # Procedure codes are written `600a` in the spec and on the new portal: lower case is their form.
    procedures = tb.code("MA_THU_TUC", case="lower")
    tb.require("MA_THU_TUC", procedures)
    submitted = tb.datetimes("NGAY_NOP")
    tb.require("NGAY_NOP", submitted)
    statuses = [DOSSIER_STATUSES.get(s) for s in tb.integers("TRANG_THAI")]
    tb.reject_where(
        "TRANG_THAI", [s is None for s in statuses], "STATUS_INVALID", "dossier status {value!r} is not one of 0-6"
    )
    updated = tb.datetimes("NGAY_CAP_NHAT")
    tb.require("NGAY_CAP_NHAT", updated)

    def period_of(text: str) -> tuple[ParsedDate, str | None]:
        parsed = parse_period_date(text, reference_date=ctx.reference_date)
        if parsed.ok and parsed.value is not None:  # (an ok parse always holds its date)
            return parsed, f"{parsed.value.year:04d}-{parsed.value.month:02d}"
        return parsed, None

    # once per distinct text: a column holds a few hundred months
    parsed_periods = parse_distinct(tb.plain("KY_KE_KHAI"), period_of)
    periods = [None if found is None else found[1] for found in parsed_periods]
    flagged = [
        i for i, found in enumerate(parsed_periods) if found is not None and (not found[0].ok or found[0].variant)
    ]
    for i in flagged:
        parsed, period = parsed_periods[i]
        if not parsed.ok:
            v.flag(i, "DECLARATION_PERIOD_INVALID", "KY_KE_KHAI", tb.raw("KY_KE_KHAI")[i], None)
        else:
            v.flag(i, "DATE_FORM_VARIANT", "KY_KE_KHAI", tb.raw("KY_KE_KHAI")[i], period)

    received = tb.datetimes("NGAY_TIEP_NHAN")
    returned = tb.datetimes("NGAY_TRA_KQ")
    for i in range(tb.n):
        if received_after_cutover(received[i], ctx.cutover):
            v.flag(i, "RECEIVED_AFTER_CUTOVER", "NGAY_TIEP_NHAN", tb.raw("NGAY_TIEP_NHAN")[i], received[i])
        got, sent, back = received[i], submitted[i], returned[i]
        if (got and sent and got < sent) or (back and got and back < got):
            v.flag(i, "DATES_OUT_OF_ORDER", "NGAY_TIEP_NHAN", tb.raw("NGAY_TIEP_NHAN")[i], received[i])

    offices = tb.clear_unknown("MA_CQ", tb.code("MA_CQ"), ctx.known_office_codes, "ORPHAN_OFFICE_CLEARED")

    seen_numbers = ctx.accepted_dossier_numbers
    seen_numbers.warm([None if number is None else number.upper() for number in numbers])
    for i, number in enumerate(numbers):
        if number is None or v.is_rejected(i):  # (a row without a number is rejected already)
            continue
        key = number.upper()
        first = seen_numbers.get(key)
        if first is not None and first != tb.legacy_keys[i]:
            v.reject(
                i,
                "DUPLICATE_DOSSIER_NO",
                "SO_HO_SO",
                tb.raw("SO_HO_SO")[i],
                f"dossier number {number!r} is already loaded from dossier {first!r}",
            )
        else:
            seen_numbers[key] = tb.legacy_keys[i]

    return {
        "dossier_no": numbers,
        "unit_code": units,
        "procedure_code": procedures,
        "declaration_period": periods,
        "submitted_at": submitted,
        "received_at": received,
        "due_date": [as_date(d) for d in tb.raw("NGAY_HEN_TRA")],
        "returned_at": returned,
        "status": statuses,
        "office_code": offices,
        "officer": tb.plain("CAN_BO_XU_LY"),
        "result_no": tb.plain("SO_KET_QUA"),
        "notes": tb.text("GHI_CHU"),
        "updated_at": updated,
    }


def remember(ctx: TransformContext, rows: pd.DataFrame) -> None:
    for number, legacy_key in zip(rows["dossier_no"], rows["legacy_key"]):
        ctx.accepted_dossier_numbers.setdefault(number.upper(), legacy_key)
        # as files and history spell their ID_HO_SO (an integer written out)
        ctx.known_dossier_ids.add(str(as_int(legacy_key)))
