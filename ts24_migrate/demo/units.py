"""DM_COQUAN_BHXH and DM_DONVI: the offices and the employer units of the site.

Units are written first; what later tables need to know about them (the
stored code of each unit, who must re-register, which units are reserved
for planted duplicates or target conflicts) is kept in a `UnitDirectory`
that is small next to the table: per-unit facts are recomputed from the
index, only the planted exceptions are stored.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from ts24_migrate.core.legacy.schema import DM_COQUAN_BHXH, DM_DONVI

from . import dirty_data as dd
from .identifiers import ORPHAN_UNIT_PREFIX, malformed_tax_code, tax_code, unit_code, with_wrong_check_digit
from .names import DISTRICTS, address, company_name, person_name, province_name
from .world import World, random_moment
from .writer import ChunkedInserter, Progress

IVAN_PROVIDERS = ("00040", "00016", "00031", "00066", "00113")
MODE_WEIGHTS = ((1, 30), (2, 30), (3, 40))
NEW_SYSTEM_MODES = {1: "portal", 2: "network_unsigned", 3: "ivan"}

# Roles planned like defects (on rows that carry no other defect), but not defects.
_TWIN_ORIGINAL = "role:twin_original"
_RESERVED_FOR_DUPLICATE = "role:reserved_for_duplicate"
_TARGET_CONFLICT = "role:target_conflict"

_UNIT_DEFECT_SLOTS = (
    (dd.TEXT_TCVN3, "TEN_DV", 0.02),
    (dd.TEXT_VNI, "TEN_DV", 0.02),
    (dd.TEXT_NFD, "TEN_DV", 0.02),
    (dd.TEXT_TCVN3, "DIA_CHI", 0.015),
    (dd.TEXT_VNI, "DIA_CHI", 0.015),
    (dd.TEXT_NFD, "DIA_CHI", 0.015),
    (dd.TAX_CODE_BAD_CHECK_DIGIT, "MA_SO_THUE", 0.015),
    (dd.TAX_CODE_MALFORMED, "MA_SO_THUE", 0.01),
    (dd.EMPTY_STRING_AS_NULL, "MA_SO_THUE", 0.01),
    (dd.EMPTY_STRING_AS_NULL, "EMAIL", 0.02),
    (dd.STRAY_WHITESPACE, "MA_DV", 0.01),
    (dd.LOWER_CASE_CODE, "MA_DV", 0.015),
    (dd.IMPOSSIBLE_DATE, "NGAY_DANG_KY", 0.01),
    (_TWIN_ORIGINAL, "MA_DV", 0.005),
    (_TARGET_CONFLICT, "MA_DV", 0.01),
)


def normalize_code(code: str) -> str:
    """How every later stage compares codes: trimmed and upper-cased."""
    return code.strip().upper()


@dataclass
class UnitFacts:
    """The clean facts of one unit (what the new system would hold)."""

    code: str
    name: str
    tax_code: str | None
    address: str
    office_code: str
    mode: int
    active: bool
    ivan_code: str | None
    cert_serial: str | None
    cert_valid_from: dt.datetime | None
    cert_valid_to: dt.datetime | None
    registered_on: dt.date


@dataclass
class UnitDirectory:
    office_code: str
    base_units: int
    width: int
    stored_overrides: dict[int, str] = field(default_factory=dict)
    # Units whose only dossier is a planted likely duplicate: nothing else may use their
    # (unit, procedure, period), so the truth's list of likely duplicates is exact.
    reserved_for_duplicates: list[int] = field(default_factory=list)
    reserved_set: frozenset[int] = frozenset()
    # normalized code -> clean tax code, of the active units in mode 1 or 2
    must_reregister: dict[str, str | None] = field(default_factory=dict)
    conflict_units: list[UnitFacts] = field(default_factory=list)
    twins: int = 0

    def clean_code(self, index: int) -> str:
        return unit_code(self.office_code, index, self.width)

    def stored_code(self, index: int) -> str:
        return self.stored_overrides.get(index) or self.clean_code(index)

    def orphan_code(self, k: int) -> str:
        """A code that matches no unit, even after trimming and upper-casing."""
        return unit_code(self.office_code, k, self.width, prefix=ORPHAN_UNIT_PREFIX)

    def random_referable(self, rng: random.Random) -> int:
        """A unit index that persons and dossiers may reference (not one reserved for a duplicate)."""
        while True:
            index = rng.randrange(self.base_units)
            if index not in self.reserved_set:
                return index


def write_offices(legacy: Engine, world: World, defects: dd.DefectLog) -> int:
    rows = []
    for position, code in enumerate(world.offices):
        if len(code) == 2:
            name, level = f"Bảo hiểm xã hội {province_name(code)}", 1
        else:
            name, level = f"Bảo hiểm xã hội quận {DISTRICTS[int(code[2:]) % len(DISTRICTS)]}", 2
        if position == 1:  # one district office typed in decomposed Unicode
            planted = unicodedata.normalize("NFD", name)
            defects.add(DM_COQUAN_BHXH.name, code, "TEN_CQ", dd.TEXT_NFD, planted, name)
            name = planted
        rows.append({"MA_CQ": code, "TEN_CQ": name, "CAP": level, "MA_TINH": world.province_code})
    with ChunkedInserter(legacy, DM_COQUAN_BHXH) as out:
        for row in rows:
            out.add(row)
    return len(rows)


def _unit_facts(rng: random.Random, world: World, index: int, code: str) -> UnitFacts:
    mode = rng.choices([m for m, _ in MODE_WEIGHTS], weights=[w for _, w in MODE_WEIGHTS])[0]
    if index < len(MODE_WEIGHTS):  # every transaction mode exists, whatever the seed
        mode = MODE_WEIGHTS[index][0]
    registered = world.cutover - dt.timedelta(days=rng.randint(365, 365 * 17))
    roll = rng.random()
    if roll < 0.08:
        tax = None
    elif roll < 0.15:
        tax = f"{tax_code(world.province_code, index)}-{rng.randint(1, 12):03d}"  # a branch
    else:
        tax = tax_code(world.province_code, index)
    cert_from = cert_to = serial = ivan = None
    if mode == 3:
        ivan = rng.choice(IVAN_PROVIDERS)
        serial = f"{rng.getrandbits(128):032X}"
        cert_from = random_moment(
            rng, world.cutover_at - dt.timedelta(days=3 * 365), world.cutover_at - dt.timedelta(days=30)
        )
        cert_to = cert_from + dt.timedelta(days=3 * 365)
    return UnitFacts(
        code=code,
        name=company_name(rng),
        tax_code=tax,
        address=address(rng, world.province_code),
        office_code=rng.choice(world.offices),
        mode=mode,
        active=rng.random() < 0.9,
        ivan_code=ivan,
        cert_serial=serial,
        cert_valid_from=cert_from,
        cert_valid_to=cert_to,
        registered_on=registered,
    )


def _unit_row(facts: UnitFacts, stored_code: str, rng: random.Random, world: World) -> dict:
    updated = random_moment(
        rng, dt.datetime.combine(facts.registered_on, dt.time(8)), world.cutover_at - dt.timedelta(days=1)
    )
    return {
        "MA_DV": stored_code,
        "TEN_DV": facts.name,
        "MA_SO_THUE": facts.tax_code,
        "DIA_CHI": facts.address,
        "MA_CQ": facts.office_code,
        "NGUOI_LIEN_HE": person_name(rng, rng.random() < 0.5),
        "DIEN_THOAI": f"09{rng.randrange(10**8):08d}",
        "EMAIL": f"ketoan.{facts.code.lower()}@example.vn",
        "PHUONG_THUC_GD": facts.mode,
        "MA_IVAN": facts.ivan_code,
        "SERIAL_CTS": facts.cert_serial,
        "CTS_TU_NGAY": facts.cert_valid_from,
        "CTS_DEN_NGAY": facts.cert_valid_to,
        "NGAY_DANG_KY": facts.registered_on.strftime("%d/%m/%Y"),
        "TRANG_THAI": 1 if facts.active else 0,
        "NGAY_CAP_NHAT": updated,
    }


def plan_units(world: World, reserved_for_duplicates: int) -> dd.DefectPlan:
    n = world.sizes.units
    slots = (*_UNIT_DEFECT_SLOTS, (_RESERVED_FOR_DUPLICATE, "MA_DV", reserved_for_duplicates / n))
    return dd.DefectPlan.for_table(world.rng("plan:DM_DONVI"), n, slots)


def target_conflict_codes(world: World, plan: dd.DefectPlan) -> list[str]:
    """The codes of the units the new system will already hold (known before anything is written)."""
    width = max(4, len(str(world.sizes.units)))
    return [unit_code(world.office_code, i, width) for i in plan.rows_with(_TARGET_CONFLICT)]


def write_units(
    legacy: Engine, world: World, plan: dd.DefectPlan, defects: dd.DefectLog, *, progress: Progress | None = None
) -> UnitDirectory:
    n = world.sizes.units
    directory = UnitDirectory(world.office_code, n, width=max(4, len(str(n))))
    directory.reserved_for_duplicates = plan.rows_with(_RESERVED_FOR_DUPLICATE)
    directory.reserved_set = frozenset(directory.reserved_for_duplicates)
    rng = world.rng("DM_DONVI")
    table = DM_DONVI.name
    twin_rows: list[tuple[UnitFacts, dict]] = []
    planted: Counter = Counter()  # (kind, column) -> how many so far
    with ChunkedInserter(legacy, DM_DONVI, progress=progress, expected_rows=n) as out:
        for index in range(n):
            clean = directory.clean_code(index)
            facts = _unit_facts(rng, world, index, clean)
            row = _unit_row(facts, clean, rng, world)
            kind, column = plan.at(index) or (None, "")
            if kind is not None and not kind.startswith("role:"):
                _plant_unit_defect(row, facts, kind, column, index, rng, world, defects, planted)
                if column == "MA_DV":
                    directory.stored_overrides[index] = row["MA_DV"]
            elif kind == _TWIN_ORIGINAL:
                twin_rows.append((facts, dict(row)))
            elif kind == _TARGET_CONFLICT:
                directory.conflict_units.append(facts)
            if facts.mode in (1, 2) and facts.active:
                directory.must_reregister[clean] = facts.tax_code
            out.add(row)
        # Duplicate-looking rows: the same unit keyed again in lower case with a trailing
        # space ('ta0100012 ' beside 'TA0100012'); they collide once codes are normalized.
        for facts, original in twin_rows:
            twin = dict(original)
            twin["MA_DV"] = f"{facts.code.lower()} "
            twin["NGAY_CAP_NHAT"] = original["NGAY_CAP_NHAT"] - dt.timedelta(days=rng.randint(30, 900))
            for kind in (dd.DUPLICATE_UNIT_CODE, dd.LOWER_CASE_CODE, dd.STRAY_WHITESPACE):
                defects.add(table, twin["MA_DV"], "MA_DV", kind, twin["MA_DV"], facts.code)
            out.add(twin)
            directory.twins += 1
    return directory


def _plant_unit_defect(
    row: dict,
    facts: UnitFacts,
    kind: str,
    column: str,
    index: int,
    rng: random.Random,
    world: World,
    defects: dd.DefectLog,
    planted_before: Counter,
) -> None:
    table = DM_DONVI.name
    key = facts.code  # default; codes planted below change the key itself
    if kind in dd.ENCODING_KINDS:
        make = (lambda: company_name(rng)) if column == "TEN_DV" else (lambda: address(rng, world.province_code))
        planted, clean = dd.plant_text(kind, make)
        # Every other TCVN3 unit name (the first included) is in capitals, with TCVN 5712's capital
        # codes: drawn like the others, so the random streams and every other row stay the same.
        caps = dd.all_caps_tcvn3(clean) if kind == dd.TEXT_TCVN3 and column == "TEN_DV" else None
        turn = planted_before[(kind, column)]
        planted_before[(kind, column)] += 1
        if caps is not None and turn % 2 == 0:
            (planted, clean), kind = caps, dd.TEXT_TCVN3_CAPS
        if column == "TEN_DV":
            facts.name = clean
        else:
            facts.address = clean
        row[column] = planted
        defects.add(table, key, column, kind, planted, clean)
    elif kind == dd.TAX_CODE_BAD_CHECK_DIGIT:
        clean = facts.tax_code or tax_code(world.province_code, index)
        facts.tax_code = clean
        row[column] = with_wrong_check_digit(clean, rng)
        defects.add(table, key, column, kind, row[column], clean)
    elif kind == dd.TAX_CODE_MALFORMED:
        clean = facts.tax_code or tax_code(world.province_code, index)
        facts.tax_code = clean
        row[column] = malformed_tax_code(clean, index)
        defects.add(table, key, column, kind, row[column], clean)
    elif kind == dd.EMPTY_STRING_AS_NULL:
        if column == "MA_SO_THUE":
            facts.tax_code = None
        row[column] = ""
        defects.add(table, key, column, kind, "")
    elif kind in (dd.STRAY_WHITESPACE, dd.LOWER_CASE_CODE):
        planted = dd.stray_whitespace(facts.code, index) if kind == dd.STRAY_WHITESPACE else facts.code.lower()
        row[column] = planted
        defects.add(table, planted, column, kind, planted, facts.code)
    elif kind == dd.IMPOSSIBLE_DATE:
        row[column] = dd.impossible_date(facts.registered_on.year, index)
        defects.add(table, key, column, kind, row[column])
    else:
        raise AssertionError(f"unplanned unit defect {kind}")
