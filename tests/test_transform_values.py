"""Value-level rules: legacy dates and periods, identifiers, codes."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.vn import mst

from transform.dates import AGENCY_FOUNDED, parse_legacy_date, parse_period, parse_period_date
from transform.identifiers import check_citizen_id, check_social_insurance_no, check_tax_code, spec_check_digit
from transform.normalize import as_int, normalize_codes, strip_blanks

REFERENCE = date(2025, 7, 31)


@pytest.mark.parametrize(
    "text, value, precision, form",
    [
        ("15/08/1985", date(1985, 8, 15), "day", "dd/mm/yyyy"),
        ("1/2/1990", date(1990, 2, 1), "day", "dd/mm/yyyy"),
        (" 29/02/2024 ", date(2024, 2, 29), "day", "dd/mm/yyyy"),
        ("08/1985", date(1985, 8, 1), "month", "mm/yyyy"),
        ("1985", date(1985, 1, 1), "year", "yyyy"),
        ("31/07/2025", date(2025, 7, 31), "day", "dd/mm/yyyy"),
        ("07/2025", date(2025, 7, 1), "month", "mm/yyyy"),
        # the variants hand-entered data holds
        ("15-08-1985", date(1985, 8, 15), "day", "dd-mm-yyyy"),
        ("5-8-1985", date(1985, 8, 5), "day", "dd-mm-yyyy"),
        ("15.08.1985", date(1985, 8, 15), "day", "dd.mm.yyyy"),
        ("1985-08-15", date(1985, 8, 15), "day", "yyyy-mm-dd"),
        ("08-1985", date(1985, 8, 1), "month", "mm-yyyy"),
        ("8.1985", date(1985, 8, 1), "month", "mm.yyyy"),
        ("1985-08", date(1985, 8, 1), "month", "yyyy-mm"),
    ],
)
def test_dates_parse_with_their_precision_and_form(text, value, precision, form):
    parsed = parse_legacy_date(text, reference_date=REFERENCE)
    assert (parsed.value, parsed.precision, parsed.reason, parsed.form) == (value, precision, None, form)
    assert parsed.variant == (form not in ("dd/mm/yyyy", "mm/yyyy", "yyyy"))


@pytest.mark.parametrize(
    "text, reason, form",
    [
        ("31/02/1990", "impossible", "dd/mm/yyyy"),
        ("30/02/2019", "impossible", "dd/mm/yyyy"),
        ("29/02/2023", "impossible", "dd/mm/yyyy"),
        ("15/13/1990", "impossible", "dd/mm/yyyy"),
        ("00/06/1990", "impossible", "dd/mm/yyyy"),
        ("13/1990", "impossible", "mm/yyyy"),
        ("31/04/2001", "impossible", "dd/mm/yyyy"),
        ("12/25/1990", "impossible", "dd/mm/yyyy"),  # month first
        ("31-02-1990", "impossible", "dd-mm-yyyy"),
        ("1990-02-30", "impossible", "yyyy-mm-dd"),
        ("32.01.1990", "impossible", "dd.mm.yyyy"),
        ("1990-13", "impossible", "yyyy-mm"),
        ("1899", "out_of_range", "yyyy"),
        ("31/12/1899", "out_of_range", "dd/mm/yyyy"),
        ("01/08/2025", "out_of_range", "dd/mm/yyyy"),
        ("2026", "out_of_range", "yyyy"),
        ("2025-08-01", "out_of_range", "yyyy-mm-dd"),
        # two-digit birth years: the century is never certain
        ("05/07/85", "two_digit_year", "dd/mm/yy"),
        ("5-7-85", "two_digit_year", "dd-mm-yy"),
        ("05.07.85", "two_digit_year", "dd.mm.yy"),
        ("07/85", "two_digit_year", "mm/yy"),
        ("85", "two_digit_year", "yy"),
        # neither of the accepted forms
        ("12/05-1990", "format", None),
        ("15.08-1985", "format", None),
        ("1990/05/12", "format", None),
        ("15 08 1985", "format", None),
        ("abc", "format", None),
        ("15/Aug/1985", "format", None),
        ("١٩٨٥", "format", None),  # Arabic-Indic digits are not legacy digits
    ],
)
def test_ambiguous_and_impossible_dates_are_refused_with_a_reason_naming_the_form(text, reason, form):
    parsed = parse_legacy_date(text, reference_date=REFERENCE)
    assert parsed.value is None and parsed.reason == reason and parsed.form == form
    assert text.strip() in parsed.message
    assert form is None or f"form {form}" in parsed.message or reason == "out_of_range"


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(1900, 1, 1), max_value=REFERENCE))
def test_property_every_real_date_parses_back_in_every_form(day):
    for fmt in ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d"):
        assert parse_legacy_date(day.strftime(fmt), reference_date=REFERENCE).value == day
    for fmt in ("%m/%Y", "%m-%Y", "%m.%Y", "%Y-%m"):
        assert parse_legacy_date(day.strftime(fmt), reference_date=REFERENCE).value == day.replace(day=1)
    assert parse_legacy_date(day.strftime("%d/%m/%y"), reference_date=REFERENCE).reason == "two_digit_year"


def test_periods_become_yyyy_mm():
    assert parse_period("07/2024", reference_date=REFERENCE) == ("2024-07", None)
    assert parse_period("7/2024", reference_date=REFERENCE) == ("2024-07", None)
    for variant in ("07-2024", "07.2024", "2024-07", "2024-7"):
        assert parse_period(variant, reference_date=REFERENCE) == ("2024-07", None)
    for bad in ("13/2024", "00/2024", "08/2025", "07/1899", "2024", "15/07/2024", "07/2024/1"):
        period, problem = parse_period(bad, reference_date=REFERENCE)
        assert period is None and problem


@pytest.mark.parametrize(
    "text, expected",
    [
        ("07/24", "2024-07"),
        ("7/24", "2024-07"),
        ("07-24", "2024-07"),
        ("12.99", "1999-12"),
        ("01/95", "1995-01"),
        ("06/25", "2025-06"),
    ],
)
def test_two_digit_period_years_take_the_one_century_the_agency_s_life_allows(text, expected):
    """A period cannot precede Vietnam Social Security (1995) nor follow the reference date:
    two digits fit exactly one year of that window."""
    assert parse_period(text, reference_date=REFERENCE) == (expected, None)
    assert parse_period_date(text, reference_date=REFERENCE).variant


@pytest.mark.parametrize(
    "text, words",
    [
        ("07/94", "fits no year"),  # 1994 is before the agency, 2094 after the reference date
        ("08/25", "after the reference"),  # 2025-08, past REFERENCE
        ("13/24", "month 13"),
    ],
)
def test_two_digit_period_years_that_fit_no_year_are_refused(text, words):
    period, problem = parse_period(text, reference_date=REFERENCE)
    assert period is None and words in problem


def test_two_digit_years_are_refused_when_the_window_would_hold_two_centuries():
    late = date(2096, 1, 1)  # 1995 .. 2096: `95` is 1995 or 2095
    parsed = parse_legacy_date("07/95", reference_date=late, century_from=AGENCY_FOUNDED)
    assert parsed.reason == "two_digit_year" and "more than one" in parsed.message


# --- tax codes: python-stdnum held to the spec --------------------------------------


def _spec_valid(ten_digits: str) -> bool:
    check = spec_check_digit(ten_digits[:9])
    return check is not None and check == int(ten_digits[9])


def test_spec_check_digit_worked_examples():
    # 0100233488: 0*31+1*29+0*23+0*19+2*17+3*13+3*7+4*5+8*3 = 167; 167 mod 11 = 2; 10-2 = 8
    assert spec_check_digit("010023348") == 8
    assert check_tax_code("0100233488") == ("0100233488", None)
    # a sum divisible by 11 has no valid check digit
    nine = "000010010"  # 1*17 + 1*5 = 22 = 2 * 11
    assert spec_check_digit(nine) is None
    assert all(check_tax_code(nine + d)[1] == "TAX_CODE_CHECK_DIGIT" for d in "0123456789")
    assert mst.calc_check_digit(nine) == "10"  # stdnum: never equal to one digit, so invalid too


@settings(max_examples=500, deadline=None)
@given(st.from_regex(r"[0-9]{9}", fullmatch=True), st.integers(0, 9))
def test_property_stdnum_agrees_with_the_spec(nine, last):
    number = nine + str(last)
    spec = _spec_valid(number)
    assert (mst.calc_check_digit(nine) == str(last)) == spec
    normalized, problem = check_tax_code(number)
    if nine[2:9] == "0000000":  # stdnum also refuses serial 0000000 (no real MST has it)
        assert problem == "TAX_CODE_MALFORMED"
    else:
        assert (problem is None) == spec
        assert problem in (None, "TAX_CODE_CHECK_DIGIT")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0100233488", ("0100233488", None)),
        (" 0100233488-001 ", ("0100233488-001", None)),
        ("0100233488001", ("0100233488-001", None)),
        ("0100233480", (None, "TAX_CODE_CHECK_DIGIT")),
        ("0100233488-000", (None, "TAX_CODE_MALFORMED")),
        ("010023348", (None, "TAX_CODE_MALFORMED")),
        ("01002334A8", (None, "TAX_CODE_MALFORMED")),
        ("0100233488-01", (None, "TAX_CODE_MALFORMED")),
        ("0100.233.488", (None, "TAX_CODE_MALFORMED")),
    ],
)
def test_tax_codes(text, expected):
    assert check_tax_code(text) == expected


def test_social_insurance_numbers_and_citizen_ids():
    assert check_social_insurance_no("0123456789 ") == "0123456789"
    for bad in ("012345678", "01234567890", "01234O6789", "０１２３４５６７８９"):
        assert check_social_insurance_no(bad) is None
    assert check_citizen_id("001085012345") == "001085012345"
    assert check_citizen_id("012345678") == "012345678"
    for bad in ("01234567", "0010850123", "00108501234A", "0123456789"):
        assert check_citizen_id(bad) is None


def test_codes_are_trimmed_recased_and_blanks_become_null():
    assert normalize_codes(["ab123 ", "AB124", "  ", None, 42]) == (["AB123", "AB124", None, None, "42"], [0], [2])
    assert normalize_codes([" 600A"], case="lower") == (["600a"], [0], [])
    assert strip_blanks([" x ", "", "\t", None, 3]) == (["x", None, None, None, 3], [1, 2])
    assert [as_int(v) for v in (1, "2", " 3 ", 4.0, 4.5, "x", None, True)] == [1, 2, 3, 4, None, None, None, None]
