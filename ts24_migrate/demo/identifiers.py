"""Identifiers of the demo site: unit codes, tax codes, insurance numbers, citizen IDs.

Each clean identifier is a bijective function of a row index, so two rows
never share one by chance: a duplicate in the generated data is always one
we planted (and recorded), never a coincidence that would make the truth
file wrong.

Example::

    tax_code(province="01", index=7)      # '0100070005' style: 10 digits, valid check digit
    is_valid_tax_code("0100233488")      # True
"""

from __future__ import annotations

import random

TAX_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)
UNIT_PREFIXES = ("TA", "YN", "HB", "DN", "TC", "XD", "GD", "YT", "KT", "VT")
ORPHAN_UNIT_PREFIX = "ZZ"  # never used for a real unit: references with it are orphans
PORTAL_UNIT_PREFIX = "PN"  # units that exist only on the new portal


def _permute(index: int, modulus: int, multiplier: int, offset: int) -> int:
    """A bijection of [0, modulus) when gcd(multiplier, modulus) = 1 (odd and not a multiple of 5)."""
    return (index * multiplier + offset) % modulus


def unit_code(office_code: str, index: int, width: int, prefix: str | None = None) -> str:
    """Clean unit code (MA_DV): letters, the office code, the index: 'TA0100012'."""
    letters = prefix or UNIT_PREFIXES[index % len(UNIT_PREFIXES)]
    return f"{letters}{office_code}{index:0{width}d}"


def tax_check_digit(first_nine: str) -> int | None:
    """The spec's check digit: 10 - (weighted sum mod 11); None when the sum mod 11 is 0 (no valid code)."""
    remainder = sum(w * int(d) for w, d in zip(TAX_WEIGHTS, first_nine)) % 11
    return None if remainder == 0 else (10 - remainder) % 10


def is_valid_tax_code(code: str) -> bool:
    head, _, branch = code.partition("-")
    if len(head) != 10 or not head.isdigit() or head[2:9] == "0000000":
        return False
    if branch and (len(branch) != 3 or not branch.isdigit() or branch == "000"):
        return False
    return tax_check_digit(head[:9]) == int(head[9])


def tax_code(province: str, index: int) -> str:
    """A valid 10-digit tax code, unique per index (< 10**6)."""
    middle = f"{_permute(index, 10**6, 7919, 104729):06d}"
    for last in "0123456789":
        body = f"{province}{middle}{last}"
        check = tax_check_digit(body)
        if check is not None and body[2:9] != "0000000":
            return f"{body}{check}"
    raise AssertionError("unreachable: some last digit always gives a valid code")


def with_wrong_check_digit(code: str, rng: random.Random) -> str:
    head, sep, branch = code.partition("-")
    wrong = rng.choice([d for d in "0123456789" if d != head[9]])
    return f"{head[:9]}{wrong}{sep}{branch}"


def malformed_tax_code(code: str, variant: int) -> str:
    """A tax code that is not of the form 10 digits or 10-3 digits (at most 14 characters)."""
    head = code.partition("-")[0]
    forms = (
        head[:9],  # a digit lost
        head + "9",  # a digit too many
        head[:4] + "O" + head[5:],  # a letter O typed for a digit
        head + "-01",
    )  # branch suffix of 2 digits
    return forms[variant % len(forms)]


def social_insurance_no(province: str, index: int) -> str:
    """10 digits: province + 8 digits, unique per index (< 10**8)."""
    return f"{province}{_permute(index, 10**8, 48271, 1234567):08d}"


def citizen_id(province: str, index: int, birth_year: int, male: bool) -> str:
    """New 12-digit citizen ID: 0 + province + century/sex + year + 6 digits (unique per index < 10**6)."""
    century_sex = (0 if male else 1) + (2 if birth_year >= 2000 else 0)
    return f"0{province}{century_sex}{birth_year % 100:02d}{_permute(index, 10**6, 9973, 31337):06d}"


def old_id_card(province: str, index: int) -> str:
    """Old 9-digit ID card number (unique per index < 10**7)."""
    return f"{province}{_permute(index, 10**7, 6007, 4242):07d}"
