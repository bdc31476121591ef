"""Legacy text dates: `dd/mm/yyyy`, `mm/yyyy`, `yyyy`, and periods `mm/yyyy`.

TS24 keeps birth dates and registration dates as text, sometimes only the
month or the year. A parsed date keeps its precision (day, month, year); a
partial date stands for the first day of its month or year. A date is
rejected with a reason when it cannot exist (31/02/1990, month 13), is not in
one of the three shapes, is before 1900 or lies after the reference date.

Example::

    >>> parse_legacy_date("07/1985", reference_date=date(2025, 7, 1))
    ParsedDate(value=datetime.date(1985, 7, 1), precision='month', reason=None, message=None)
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

# Parse-level reasons; each table maps them to its own reason code.
FORMAT = "format"          # not one of the accepted shapes
IMPOSSIBLE = "impossible"  # day or month that cannot exist
OUT_OF_RANGE = "out_of_range"  # before 1900 or after the reference date

_SHAPES = (
    (re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})", re.ASCII), DAY),
    (re.compile(r"(\d{1,2})/(\d{4})", re.ASCII), MONTH),
    (re.compile(r"(\d{4})", re.ASCII), YEAR),
)


@dataclass(frozen=True)
class ParsedDate:
    value: date | None
    precision: str | None
    reason: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def _fail(reason: str, message: str) -> ParsedDate:
    return ParsedDate(None, None, reason, message)


@lru_cache(maxsize=65536)
def parse_legacy_date(text: str, *, reference_date: date) -> ParsedDate:
    """Parse one non-empty legacy date text; see the module doc."""
    cleaned = text.strip()
    for pattern, precision in _SHAPES:
        match = pattern.fullmatch(cleaned)
        if match is None:
            continue
        parts = [int(p) for p in match.groups()]
        if precision == DAY:
            day, month, year = parts
        elif precision == MONTH:
            day, month, year = 1, parts[0], parts[1]
        else:
            day, month, year = 1, 1, parts[0]
        if not 1 <= month <= 12:
            return _fail(IMPOSSIBLE, f"month {month} does not exist in {cleaned!r}")
        try:
            value = date(year, month, day)
        except ValueError:
            return _fail(IMPOSSIBLE, f"{cleaned!r} is not a date on the calendar")
        if year < MIN_YEAR:
            return _fail(OUT_OF_RANGE, f"{cleaned!r} is before {MIN_YEAR}")
        if value > reference_date:
            return _fail(OUT_OF_RANGE, f"{cleaned!r} is after the reference date {reference_date.isoformat()}")
        return ParsedDate(value, precision)
    return _fail(FORMAT, f"{cleaned!r} is not dd/mm/yyyy, mm/yyyy or yyyy")


@lru_cache(maxsize=16384)
def parse_period(text: str, *, reference_date: date) -> tuple[str | None, str | None]:
    """A declaration period `mm/yyyy` as `yyyy-mm`; (None, message) when impossible."""
    cleaned = text.strip()
    match = _SHAPES[1][0].fullmatch(cleaned)
    if match is None:
        return None, f"{cleaned!r} is not mm/yyyy"
    month, year = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        return None, f"month {month} does not exist in {cleaned!r}"
    if year < MIN_YEAR or date(year, month, 1) > reference_date:
        return None, f"{cleaned!r} is outside {MIN_YEAR} .. {reference_date.isoformat()}"
    return f"{year:04d}-{month:02d}", None
