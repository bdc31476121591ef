"""NGUOI_LAO_DONG: the insured persons, with their planted defects."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy.engine import Engine

from ts24_migrate.core.legacy.schema import NGUOI_LAO_DONG

from . import dirty_data as dd
from .identifiers import citizen_id, old_id_card, social_insurance_no
from .names import FAMILY_NAMES, person_name
from .units import UnitDirectory
from .world import World, random_moment
from .writer import ChunkedInserter, Progress

_DUPLICATE_ORIGINAL = "role:duplicate_original"

_PERSON_DEFECT_SLOTS = (
    (dd.TEXT_TCVN3, "HO_TEN", 0.01),
    (dd.TEXT_VNI, "HO_TEN", 0.01),
    (dd.TEXT_NFD, "HO_TEN", 0.01),
    (dd.STRAY_WHITESPACE, "HO_TEN", 0.01),
    (dd.BIRTH_DATE_MONTH_ONLY, "NGAY_SINH", 0.02),
    (dd.BIRTH_DATE_YEAR_ONLY, "NGAY_SINH", 0.01),
    (dd.IMPOSSIBLE_DATE, "NGAY_SINH", 0.005),
    (dd.BAD_SOCIAL_INSURANCE_NO, "MA_SO_BHXH", 0.005),
    (dd.BAD_CITIZEN_ID, "SO_CCCD", 0.01),
    (dd.EMPTY_STRING_AS_NULL, "SO_CCCD", 0.01),
    (dd.ORPHAN_UNIT_REFERENCE, "MA_DV", 0.005),
    (_DUPLICATE_ORIGINAL, "MA_SO_BHXH", 0.003),
)
_BIRTH_FIRST = dt.date(1960, 1, 1).toordinal()
_BIRTH_LAST = dt.date(2006, 12, 31).toordinal()


def write_persons(
    legacy: Engine, world: World, units: UnitDirectory, defects: dd.DefectLog, *, progress: Progress | None = None
) -> int:
    n = world.sizes.persons
    province = world.province_code
    plan = dd.DefectPlan.for_table(world.rng("plan:NGUOI_LAO_DONG"), n, _PERSON_DEFECT_SLOTS)
    rng = world.rng("NGUOI_LAO_DONG")
    bad_numbers: set[str] = set()
    originals: list[dict] = []
    orphans = 0
    with ChunkedInserter(legacy, NGUOI_LAO_DONG, progress=progress, expected_rows=n) as out:
        for index in range(n):
            male = rng.random() < 0.5
            birth = dt.date.fromordinal(rng.randint(_BIRTH_FIRST, _BIRTH_LAST))
            roll = rng.random()
            if roll < 0.75:
                card = citizen_id(province, index, birth.year, male)
            elif roll < 0.9:
                card = old_id_card(province, index)
            else:
                card = None
            row = {
                "MA_SO_BHXH": social_insurance_no(province, index),
                "HO_TEN": person_name(rng, male),
                "NGAY_SINH": birth.strftime("%d/%m/%Y"),
                "GIOI_TINH": 1 if male else 0,
                "SO_CCCD": card,
                "MA_DV": units.stored_code(units.random_referable(rng)),
                "NGAY_CAP_NHAT": random_moment(rng, world.history_start, world.cutover_at - dt.timedelta(days=1)),
            }
            kind, column = plan.at(index) or (None, "")
            if kind == _DUPLICATE_ORIGINAL:
                originals.append(dict(row))
            elif kind == dd.ORPHAN_UNIT_REFERENCE:
                row["MA_DV"] = units.orphan_code(orphans)
                orphans += 1
                defects.add(NGUOI_LAO_DONG.name, row["MA_SO_BHXH"], column, kind, row["MA_DV"])
            elif kind is not None:
                _plant_person_defect(row, kind, column, index, birth, male, rng, bad_numbers, defects)
            out.add(row)
        # The same person entered twice under two numbers: name, birth date and ID card agree.
        for k, original in enumerate(originals):
            twin = dict(original)
            twin["MA_SO_BHXH"] = social_insurance_no(province, n + k)
            twin["NGAY_CAP_NHAT"] = min(
                original["NGAY_CAP_NHAT"] + dt.timedelta(days=rng.randint(1, 400)),
                world.cutover_at - dt.timedelta(hours=1),
            )
            defects.add(
                NGUOI_LAO_DONG.name,
                twin["MA_SO_BHXH"],
                "MA_SO_BHXH",
                dd.DUPLICATE_PERSON,
                twin["MA_SO_BHXH"],
                original["MA_SO_BHXH"],
            )
            out.add(twin)
    return out.rows_written


def _plant_person_defect(
    row: dict,
    kind: str,
    column: str,
    index: int,
    birth: dt.date,
    male: bool,
    rng: random.Random,
    bad_numbers: set[str],
    defects: dd.DefectLog,
) -> None:
    table = NGUOI_LAO_DONG.name
    number = row["MA_SO_BHXH"]
    if kind in dd.ENCODING_KINDS:
        # A family name with diacritics, so the encoding damages something.
        planted, clean = dd.plant_text(
            kind, lambda: f"{rng.choice(FAMILY_NAMES[:6])} {person_name(rng, male).split(' ', 1)[1]}"
        )
        row[column] = planted
        defects.add(table, number, column, kind, planted, clean)
    elif kind == dd.STRAY_WHITESPACE:
        clean = row[column]
        row[column] = dd.stray_whitespace(clean, index)
        defects.add(table, number, column, kind, row[column], clean)
    elif kind == dd.BIRTH_DATE_MONTH_ONLY:
        row[column] = birth.strftime("%m/%Y")
        defects.add(table, number, column, kind, row[column])
    elif kind == dd.BIRTH_DATE_YEAR_ONLY:
        row[column] = birth.strftime("%Y")
        defects.add(table, number, column, kind, row[column])
    elif kind == dd.IMPOSSIBLE_DATE:
        row[column] = dd.impossible_date(birth.year, index)
        defects.add(table, number, column, kind, row[column])
    elif kind == dd.BAD_SOCIAL_INSURANCE_NO:
        # Not 10 digits: a digit lost, or a letter typed for a digit. Kept unique: it is the key.
        candidates = (number[:9], number[1:], number[:5] + "O" + number[6:], number[:3] + "I" + number[4:])
        planted = next(c for c in candidates if c not in bad_numbers)
        bad_numbers.add(planted)
        row[column] = planted
        defects.add(table, planted, column, kind, planted, number)
    elif kind == dd.BAD_CITIZEN_ID:
        clean = row[column] or citizen_id(number[:2], index, birth.year, male)
        forms = (clean[:-1], clean[:-2], clean[:4] + "A" + clean[5:])  # too short, or a letter
        row[column] = forms[index % len(forms)]
        defects.add(table, number, column, kind, row[column], clean)
    elif kind == dd.EMPTY_STRING_AS_NULL:
        row[column] = ""
        defects.add(table, number, column, kind, "")
    else:
        raise AssertionError(f"unplanned person defect {kind}")
