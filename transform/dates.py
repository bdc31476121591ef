"""Legacy text dates: the spec's `dd/mm/yyyy`, `mm/yyyy`, `yyyy`, the variants hand-entered data holds, and periods.

TS24 keeps birth dates and registration dates as text, sometimes only the
month or the year. A parsed date keeps its precision (day, month, year); a
partial date stands for the first day of its month or year.

Accepted forms (`FORMS`). Day and month need not be padded (`7/5/1990`); the
separator is one of `/`, `-`, `.`, the same throughout:

| precision | the spec's form | variants also accepted                         |
|-----------|-----------------|------------------------------------------------|
| day       | `dd/mm/yyyy`    | `dd-mm-yyyy`, `dd.mm.yyyy`, ISO `yyyy-mm-dd`   |
| month     | `mm/yyyy`       | `mm-yyyy`, `mm.yyyy`, ISO `yyyy-mm`            |
| year      | `yyyy`          |                                                |

Day comes before month, as the spec and Vietnamese usage have it; a
month-first date (`12/25/1990`) is impossible and says so. A variant is
parsed and reported (`ParsedDate.variant`, the DATE_FORM_VARIANT flag), so an
auditor sees which rows did not follow the spec.

Two-digit years (`05/07/85`, `07/85`) are accepted only where the century is
certain, which the caller says with `century_from`, the earliest year the
value may stand for: the year is the one year ending in those two digits
between `century_from` and the reference date. A birth year is never certain
(people born in 1925 and 2025 both have records): `century_from=None`, and a
two-digit birth year is refused (TWO_DIGIT_YEAR). A declaration period or a
unit's registration date cannot precede Vietnam Social Security itself
(founded 1995, Nghị định 19/CP): `century_from=AGENCY_FOUNDED`, so `07/24` is
07/2024, and while the window spans fewer than 100 years exactly one year fits.

A date is refused with a reason, whose message names the form, when it is
in no accepted form or mixes separators (FORMAT), has a two-digit year of
uncertain century (TWO_DIGIT_YEAR), cannot exist (31/02/1990, month 13:
IMPOSSIBLE), or is before 1900 or after the reference date (OUT_OF_RANGE).

Example::

    >>> parse_legacy_date("07/1985", reference_date=date(2025, 7, 1))
    ParsedDate(value=datetime.date(1985, 7, 1), precision='month', reason=None, message=None, form='mm/yyyy')
    >>> parse_period("7/2024", reference_date=date(2025, 7, 1))
    ('2024-07', None)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

DAY, MONTH, YEAR = "day", "month", "year"
MIN_YEAR = 1900
# Vietnam Social Security was founded in 1995: no period declared to it, no unit registered
# with it, comes before. Bounds the century of a two-digit period or registration year.
AGENCY_FOUNDED = 1995

# Parse-level reasons; each table maps them to its own reason code.
FORMAT = "format"  # not one of the accepted forms
TWO_DIGIT_YEAR = "two_digit_year"  # a two-digit year whose century is not certain
IMPOSSIBLE = "impossible"  # day or month that cannot exist
OUT_OF_RANGE = "out_of_range"  # before 1900 or after the reference date

SPEC_FORMS = ("dd/mm/yyyy", "mm/yyyy", "yyyy")
FORMS = {
    DAY: ("dd/mm/yyyy", "dd-mm-yyyy", "dd.mm.yyyy", "yyyy-mm-dd"),
    MONTH: ("mm/yyyy", "mm-yyyy", "mm.yyyy", "yyyy-mm"),
    YEAR: ("yyyy",),
}

# (pattern, precision, group order) ; day-first forms use one separator throughout (\2)
_DAY_FIRST = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})", re.ASCII)
_ISO_DAY = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})", re.ASCII)
_MONTH_FIRST = re.compile(r"(\d{1,2})([/.-])(\d{4}|\d{2})", re.ASCII)
_ISO_MONTH = re.compile(r"(\d{4})-(\d{1,2})", re.ASCII)
_YEAR = re.compile(r"(\d{4}|\d{2})", re.ASCII)
_THREE_PARTS = re.compile(r"\d{1,4}([/.-])\d{1,2}([/.-])\d{1,4}", re.ASCII)


@dataclass(frozen=True)
class ParsedDate:
    value: date | None
    precision: str | None
    reason: str | None = None
    message: str | None = None
    form: str | None = None  # the form the text was written in, e.g. 'dd-mm-yyyy' or 'dd/mm/yy'

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def variant(self) -> bool:
        """Parsed from another form than the spec's (dd-mm-yyyy, ISO, a two-digit year, ...)."""
        return self.ok and self.form not in SPEC_FORMS


def _fail(reason: str, message: str, form: str | None = None) -> ParsedDate:
    return ParsedDate(None, None, reason, message, form)


def _shape(cleaned: str) -> tuple[str, str, tuple[str, str, str]] | None:
    """(precision, form, (day, month, year) as text) of the first form `cleaned` is written in."""
    if match := _DAY_FIRST.fullmatch(cleaned):
        day, sep, month, year = match.groups()
        return DAY, f"dd{sep}mm{sep}{'y' * len(year)}", (day, month, year)
    if match := _ISO_DAY.fullmatch(cleaned):
        year, month, day = match.groups()
        return DAY, "yyyy-mm-dd", (day, month, year)
    if match := _MONTH_FIRST.fullmatch(cleaned):
        month, sep, year = match.groups()
        return MONTH, f"mm{sep}{'y' * len(year)}", ("1", month, year)
    if match := _ISO_MONTH.fullmatch(cleaned):
        year, month = match.groups()
        return MONTH, "yyyy-mm", ("1", month, year)
    if match := _YEAR.fullmatch(cleaned):
        return YEAR, "y" * len(match.group(1)), ("1", "1", match.group(1))
    return None


def _full_year(
    two_digits: int, form: str, cleaned: str, *, century_from: int | None, reference_date: date
) -> int | ParsedDate:
    """The year a two-digit year stands for, or the failure saying why it is not certain."""
    if century_from is None:
        return _fail(
            TWO_DIGIT_YEAR,
            f"{cleaned!r} (form {form}) has a two-digit year: the century of a birth year is never certain",
            form,
        )
    fitting = [
        y for y in (1900 + two_digits, 2000 + two_digits, 2100 + two_digits) if century_from <= y <= reference_date.year
    ]
    if len(fitting) != 1:
        return _fail(
            TWO_DIGIT_YEAR,
            f"{cleaned!r} (form {form}) has a two-digit year that fits "
            f"{'no' if not fitting else 'more than one'} year of {century_from} .. "
            f"{reference_date.year}",
            form,
        )
    return fitting[0]


@lru_cache(maxsize=65536)
def parse_legacy_date(text: str, *, reference_date: date, century_from: int | None = None) -> ParsedDate:
    """Parse one non-empty legacy date text; see the module doc. `century_from`: the earliest year
    a two-digit year may stand for (None: a two-digit year is never certain)."""
    cleaned = text.strip()
    shape = _shape(cleaned)
    if shape is None:
        parts = _THREE_PARTS.fullmatch(cleaned)
        if parts and parts.group(1) != parts.group(2):
            return _fail(FORMAT, f"{cleaned!r} mixes separators; a date uses one of / - . throughout")
        return _fail(
            FORMAT,
            f"{cleaned!r} is not dd/mm/yyyy, mm/yyyy or yyyy (nor dd-mm-yyyy, dd.mm.yyyy, "
            "yyyy-mm-dd, mm-yyyy, mm.yyyy, yyyy-mm)",
        )
    precision, form, (day_text, month_text, year_text) = shape
    day, month, year = int(day_text), int(month_text), int(year_text)
    if len(year_text) == 2:
        year_or_failure = _full_year(year, form, cleaned, century_from=century_from, reference_date=reference_date)
        if isinstance(year_or_failure, ParsedDate):
            return year_or_failure
        year = year_or_failure
    if not 1 <= month <= 12:
        return _fail(IMPOSSIBLE, f"month {month} does not exist in {cleaned!r} (form {form})", form)
    try:
        value = date(year, month, day)
    except ValueError:
        return _fail(IMPOSSIBLE, f"{cleaned!r} (form {form}) is not a date on the calendar", form)
    if year < MIN_YEAR:
        return _fail(OUT_OF_RANGE, f"{cleaned!r} is before {MIN_YEAR}", form)
    if value > reference_date:
        return _fail(OUT_OF_RANGE, f"{cleaned!r} is after the reference date {reference_date.isoformat()}", form)
    return ParsedDate(value, precision, form=form)


@lru_cache(maxsize=16384)
def parse_period_date(text: str, *, reference_date: date) -> ParsedDate:
    """A declaration period (month precision), in any accepted month form; a two-digit year
    stands for the one year of AGENCY_FOUNDED .. the reference date it fits."""
    parsed = parse_legacy_date(text, reference_date=reference_date, century_from=AGENCY_FOUNDED)
    if parsed.ok and parsed.precision != MONTH:
        return _fail(FORMAT, f"{text.strip()!r} (form {parsed.form}) is not a month: mm/yyyy", parsed.form)
    return parsed


def parse_period(text: str, *, reference_date: date) -> tuple[str | None, str | None]:
    """A declaration period `mm/yyyy` (or a month variant) as `yyyy-mm`; (None, message) when it is not one."""
    parsed = parse_period_date(text, reference_date=reference_date)
    if not parsed.ok:
        return None, parsed.message
    assert parsed.value is not None  # a parse that is ok holds its date
    return f"{parsed.value.year:04d}-{parsed.value.month:02d}", None
