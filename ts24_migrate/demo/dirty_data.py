"""The dirty data of a TS24 site: which defects exist, where they go, what was planted.

A `DefectPlan` decides up front, per table, which row indices carry which
defect (disjoint rows, so one defect never hides another); the table writers
ask it while they stream rows, and record every planted value in the
`DefectLog`, which becomes the truth file's `defects`, `defect_counts` and
`encodings`.

Example::

    plan = DefectPlan.for_table(rng, rows=1000, slots=[(TEXT_TCVN3, "HO_TEN", 0.02)])
    plan.at(17)                      # ('text_tcvn3', 'HO_TEN') or None
"""

from __future__ import annotations

import random
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ts24_migrate.core.legacy.encodings import (
    decode_tcvn3_mojibake,
    decode_vni_mojibake,
    encode_as_tcvn3_mojibake,
    encode_as_vni_mojibake,
)

# Defect kinds, as named in the truth file.
TEXT_TCVN3 = "text_tcvn3"
# All capitals typed with TCVN 5712's capital codes ('CÔNG TY ...' as 'C¤NG TY ...', 'HÀ' as 'H€').
TEXT_TCVN3_CAPS = "text_tcvn3_caps"
TEXT_VNI = "text_vni"
TEXT_NFD = "text_nfd"
BIRTH_DATE_MONTH_ONLY = "birth_date_month_only"
BIRTH_DATE_YEAR_ONLY = "birth_date_year_only"
IMPOSSIBLE_DATE = "impossible_date"
TAX_CODE_BAD_CHECK_DIGIT = "tax_code_bad_check_digit"
TAX_CODE_MALFORMED = "tax_code_malformed"
EMPTY_STRING_AS_NULL = "empty_string_as_null"
STRAY_WHITESPACE = "stray_whitespace"
LOWER_CASE_CODE = "lower_case_code"
DUPLICATE_UNIT_CODE = "duplicate_unit_code"
DUPLICATE_PERSON = "duplicate_person"
ORPHAN_UNIT_REFERENCE = "orphan_unit_reference"
ORPHAN_DOSSIER_REFERENCE = "orphan_dossier_reference"
BAD_SOCIAL_INSURANCE_NO = "bad_social_insurance_no"
BAD_CITIZEN_ID = "bad_citizen_id"
RECEIVED_AFTER_CUTOVER = "received_after_cutover"
ATTACHMENT_MD5_MISMATCH = "attachment_md5_mismatch"
ATTACHMENT_MISSING = "attachment_missing"
DUPLICATE_ROW = "duplicate_row"

ALL_KINDS = (
    TEXT_TCVN3,
    TEXT_TCVN3_CAPS,
    TEXT_VNI,
    TEXT_NFD,
    BIRTH_DATE_MONTH_ONLY,
    BIRTH_DATE_YEAR_ONLY,
    IMPOSSIBLE_DATE,
    TAX_CODE_BAD_CHECK_DIGIT,
    TAX_CODE_MALFORMED,
    EMPTY_STRING_AS_NULL,
    STRAY_WHITESPACE,
    LOWER_CASE_CODE,
    DUPLICATE_UNIT_CODE,
    DUPLICATE_PERSON,
    ORPHAN_UNIT_REFERENCE,
    ORPHAN_DOSSIER_REFERENCE,
    BAD_SOCIAL_INSURANCE_NO,
    BAD_CITIZEN_ID,
    RECEIVED_AFTER_CUTOVER,
    ATTACHMENT_MD5_MISMATCH,
    ATTACHMENT_MISSING,
    DUPLICATE_ROW,
)

# Text-encoding kinds and their name in the truth file's `encodings`.
ENCODING_KINDS = {TEXT_TCVN3: "tcvn3", TEXT_TCVN3_CAPS: "tcvn3", TEXT_VNI: "vni", TEXT_NFD: "nfd"}

_NO_CLEAN = object()


def count_for(rate: float, rows: int) -> int:
    """How many rows get a defect: proportional to the table, at least one."""
    return max(1, round(rate * rows))


@dataclass
class DefectPlan:
    """Row index -> (kind, column) for one table; rows never carry two planned defects."""

    assigned: dict[int, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def for_table(
        cls, rng: random.Random, rows: int, slots: Iterable[tuple[str, str, float]], *, exclude: Iterable[int] = ()
    ) -> DefectPlan:
        """`slots` are (kind, column, rate); each gets count_for(rate, rows) distinct rows."""
        wanted = [(kind, column, count_for(rate, rows)) for kind, column, rate in slots]
        excluded = set(exclude)
        total = sum(n for _, _, n in wanted)
        if total > rows - len(excluded):
            raise ValueError(f"{total} planned defects do not fit in {rows} rows")
        # Sample a few extra indices so the excluded ones can be skipped.
        picked = [i for i in rng.sample(range(rows), min(rows, total + len(excluded))) if i not in excluded]
        plan = cls()
        position = 0
        for kind, column, n in wanted:
            for index in picked[position : position + n]:
                plan.assigned[index] = (kind, column)
            position += n
        return plan

    def at(self, index: int) -> tuple[str, str] | None:
        return self.assigned.get(index)

    def rows_with(self, kind: str) -> list[int]:
        return sorted(i for i, (k, _) in self.assigned.items() if k == kind)

    def used(self) -> set[int]:
        return set(self.assigned)


@dataclass
class DefectLog:
    """Every planted defect, in the order written; the truth file's source of figures."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    encodings: dict[str, dict[str, Counter]] = field(default_factory=lambda: defaultdict(dict))

    def add(
        self, table: str, key: Any, column: str | None, kind: str, value: Any, clean_value: Any = _NO_CLEAN
    ) -> None:
        entry = {"table": table, "key": str(key), "column": column, "kind": kind, "value": value}
        if clean_value is not _NO_CLEAN:
            entry["clean_value"] = clean_value
        self.entries.append(entry)
        self.counts[kind] += 1
        if kind in ENCODING_KINDS and column is not None:
            per_column = self.encodings[table].setdefault(column, Counter())
            per_column[ENCODING_KINDS[kind]] += 1

    def encodings_dict(self) -> dict[str, dict[str, dict[str, int]]]:
        return {
            table: {
                column: {name: counter.get(name, 0) for name in ENCODING_KINDS.values()}
                for column, counter in sorted(columns.items())
            }
            for table, columns in sorted(self.encodings.items())
        }

    def counts_dict(self) -> dict[str, int]:
        return {kind: self.counts[kind] for kind in ALL_KINDS if self.counts[kind]}


def legacy_text(kind: str, clean: str) -> str | None:
    """`clean` as the legacy encoding `kind` stores it, or None when that would not be a
    provable defect (no diacritics to damage, or a decoder could not give `clean` back)."""
    if kind == TEXT_NFD:
        planted = unicodedata.normalize("NFD", clean)
        return planted if planted != clean else None
    if kind == TEXT_TCVN3:
        planted, decode = encode_as_tcvn3_mojibake(clean), decode_tcvn3_mojibake
    elif kind == TEXT_VNI:
        planted, decode = encode_as_vni_mojibake(clean), decode_vni_mojibake
    else:
        raise ValueError(f"not a text-encoding defect: {kind}")
    return planted if planted != clean and decode(planted) == clean else None


def all_caps_tcvn3(clean: str) -> tuple[str, str] | None:
    """(planted, clean) for `clean` written in capitals with TCVN 5712's capital codes, or None
    when that would not be a provable defect."""
    upper = clean.upper()
    planted = encode_as_tcvn3_mojibake(upper, capital_codes=True)
    return (planted, upper) if planted != upper and decode_tcvn3_mojibake(planted) == upper else None


def plant_text(kind: str, make_clean: Callable[[], str], attempts: int = 200) -> tuple[str, str]:
    """(planted, clean): draws clean texts until one carries the defect provably."""
    for _ in range(attempts):
        clean = make_clean()
        planted = legacy_text(kind, clean)
        if planted is not None:
            return planted, clean
    raise RuntimeError(f"no text from this vocabulary can carry {kind}")


def stray_whitespace(clean: str, variant: int) -> str:
    forms = (f" {clean}", f"{clean}  ", clean.replace(" ", "  ", 1) if " " in clean else f" {clean}", f"\t{clean} ")
    return forms[variant % len(forms)]


def impossible_date(year: int, variant: int) -> str:
    """A dd/mm/yyyy text that no calendar has: '31/02/1990', '30/02/2019', '31/04/...', '15/13/...'."""
    forms = (f"31/02/{year}", f"30/02/{year}", f"31/04/{year}", f"15/13/{year}", f"00/06/{year}", f"31/11/{year}")
    return forms[variant % len(forms)]
