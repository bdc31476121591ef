"""NGUOI_LAO_DONG -> insured_persons."""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import partial
from typing import Any

import pandas as pd

from ..columns import parse_distinct
from ..context import TransformContext
from ..dates import DAY, TWO_DIGIT_YEAR, parse_legacy_date
from ..identifiers import check_citizen_id, check_social_insurance_no
from ..mappings import SEXES
from .common import TableBatch, claim_key

LEGACY_TABLE = "NGUOI_LAO_DONG"
TARGET_TABLE = "insured_persons"
KEY_COLUMNS = ("MA_SO_BHXH",)
LEGACY_COLUMNS = ("MA_SO_BHXH", "HO_TEN", "NGAY_SINH", "GIOI_TINH", "SO_CCCD", "MA_DV", "NGAY_CAP_NHAT")
# Which target column each legacy column becomes.
COLUMN_MAP = {
    "MA_SO_BHXH": "social_insurance_no",
    "HO_TEN": "full_name",
    "NGAY_SINH": "birth_date",
    "GIOI_TINH": "sex",
    "SO_CCCD": "citizen_id",
    "MA_DV": "unit_code",
    "NGAY_CAP_NHAT": "updated_at",
}
OUTPUT_COLUMNS = (
    "social_insurance_no",
    "full_name",
    "birth_date",
    "birth_date_precision",
    "sex",
    "citizen_id",
    "unit_code",
    "dq_flags",
    "updated_at",
)
# What remember() reads of an accepted row (besides legacy_key): a resumed load reads back only these.
REMEMBERED_COLUMNS = (
    "social_insurance_no",
    "citizen_id",
    "full_name",
    "birth_date",
    "birth_date_precision",
    "unit_code",
)
# Whose remembered rows this table's transform consults: what a resumed load must seed before it.
CONSULTS = ("DM_DONVI", "NGUOI_LAO_DONG")  # unit codes (orphans), its own numbers and identities


def _identity(
    name: str | None, birth_date: dt.date | None, precision: str | None, unit_code: str | float | None
) -> str | None:
    """Name + full birth date + unit: two numbers with the same identity are probably one person.

    As a digest (a KeyStore key: short, and no names in the transform's temporary
    files). Rows read back from the target (a resumed load) may hold a datetime for the
    date and NaN for a missing unit: they give the same digest.
    """
    if name is None or birth_date is None or precision != DAY:
        return None
    day = birth_date.date() if isinstance(birth_date, dt.datetime) else birth_date
    text = "\x1f".join((name.casefold(), day.isoformat(), unit_code if isinstance(unit_code, str) else ""))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def transform(tb: TableBatch) -> dict[str, list[Any]]:
    v, ctx = tb.verdicts, tb.ctx
    numbers: list[str | None] = []
    for i, raw in enumerate(tb.plain("MA_SO_BHXH")):
        if raw is None:
            v.reject(i, "KEY_MISSING", "MA_SO_BHXH", tb.raw("MA_SO_BHXH")[i], "social insurance number is empty")
            numbers.append(None)
            continue
        number = check_social_insurance_no(str(raw))
        if number is None:
            v.reject(
                i,
                "SI_NUMBER_INVALID",
                "MA_SO_BHXH",
                tb.raw("MA_SO_BHXH")[i],
                f"social insurance number {raw!r} is not 10 digits",
            )
        numbers.append(number)
    names = tb.text("HO_TEN")
    tb.require("HO_TEN", names)

    birth_dates: list[dt.date | None] = []
    precisions: list[str | None] = []
    # once per distinct text: birth dates repeat
    for i, parsed in enumerate(
        parse_distinct(tb.plain("NGAY_SINH"), partial(parse_legacy_date, reference_date=ctx.reference_date))
    ):
        if parsed is not None and not parsed.ok:
            code = "BIRTH_DATE_TWO_DIGIT_YEAR" if parsed.reason == TWO_DIGIT_YEAR else "BIRTH_DATE_INVALID"
            v.reject(i, code, "NGAY_SINH", tb.raw("NGAY_SINH")[i], parsed.message)
            parsed = None
        elif parsed is not None:
            if parsed.precision != DAY:
                v.flag(i, "BIRTH_DATE_PARTIAL", "NGAY_SINH", tb.raw("NGAY_SINH")[i], parsed.value)
            if parsed.variant:
                v.flag(i, "DATE_FORM_VARIANT", "NGAY_SINH", tb.raw("NGAY_SINH")[i], parsed.value)
        birth_dates.append(parsed.value if parsed else None)
        precisions.append(parsed.precision if parsed else None)
    updated = tb.datetimes("NGAY_CAP_NHAT")
    tb.require("NGAY_CAP_NHAT", updated)

    sexes: list[str | None] = []
    for i, (raw, sex_code) in enumerate(zip(tb.plain("GIOI_TINH"), tb.integers("GIOI_TINH"))):
        sex = SEXES.get(sex_code)
        if raw is not None and sex is None:
            v.flag(i, "SEX_INVALID", "GIOI_TINH", tb.raw("GIOI_TINH")[i], None)
        sexes.append(sex)

    citizen_ids: list[str | None] = []
    for i, raw in enumerate(tb.plain("SO_CCCD")):
        citizen_id = check_citizen_id(str(raw)) if raw is not None else None
        if raw is not None and citizen_id is None:
            v.flag(i, "CITIZEN_ID_INVALID", "SO_CCCD", tb.raw("SO_CCCD")[i], None)
        elif raw is not None and citizen_id != str(raw):
            v.flag(i, "CITIZEN_ID_NORMALIZED", "SO_CCCD", tb.raw("SO_CCCD")[i], citizen_id)
        citizen_ids.append(citizen_id)

    units = tb.clear_unknown("MA_DV", tb.code("MA_DV"), ctx.known_unit_codes, "ORPHAN_UNIT_CLEARED")

    seen = ctx.keys_of(LEGACY_TABLE)
    identities = [_identity(*person) for person in zip(names, birth_dates, precisions, units)]
    seen.warm(numbers)
    ctx.persons_by_citizen_id.warm(citizen_ids)
    ctx.persons_by_name_birth_unit.warm(identities)
    for i, number in enumerate(numbers):
        # (a row without a number is rejected already)
        if (
            number is None
            or v.is_rejected(i)
            or not claim_key(seen, i, number, tb, v, column="MA_SO_BHXH", noun="person")
        ):
            continue
        # The same person under two numbers: flag the later one, load both.
        other = ctx.persons_by_citizen_id.get(citizen_ids[i]) if citizen_ids[i] else None
        identity = identities[i]
        if other is None and identity is not None:
            other = ctx.persons_by_name_birth_unit.get(identity)
        if other is not None and other != number:
            v.flag(i, "POSSIBLE_DUPLICATE_PERSON", "MA_SO_BHXH", number, number)
        _remember_person(ctx, number, citizen_ids[i], identity)

    return {
        "social_insurance_no": numbers,
        "full_name": names,
        "birth_date": birth_dates,
        "birth_date_precision": precisions,
        "sex": sexes,
        "citizen_id": citizen_ids,
        "unit_code": units,
        "updated_at": updated,
    }


def _remember_person(ctx: TransformContext, number: str, citizen_id: str | None, identity: str | None) -> None:
    if citizen_id:
        ctx.persons_by_citizen_id.setdefault(citizen_id, number)
    if identity is not None:
        ctx.persons_by_name_birth_unit.setdefault(identity, number)


def remember(ctx: TransformContext, rows: pd.DataFrame) -> None:
    keys = ctx.keys_of(LEGACY_TABLE)
    for number, legacy_key, citizen_id, name, birth, precision, unit in zip(
        rows["social_insurance_no"],
        rows["legacy_key"],
        rows["citizen_id"],
        rows["full_name"],
        rows["birth_date"],
        rows["birth_date_precision"],
        rows["unit_code"],
    ):
        keys.setdefault(number, legacy_key)
        _remember_person(ctx, number, citizen_id, _identity(name, birth, precision, unit))
