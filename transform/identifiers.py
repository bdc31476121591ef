"""Vietnamese identifiers: tax code (MST), social insurance number, citizen ID.

The tax code check uses python-stdnum (`stdnum.vn.mst`), whose algorithm is
the one the spec gives: weights 31,29,23,19,17,13,7,5,3 over the first nine
digits, check = 10 - (sum mod 11), and a sum divisible by 11 is invalid
(stdnum computes "10", which no single digit equals). `spec_check_digit`
spells the spec out so tests can hold stdnum to it. stdnum also refuses a
serial of 0000000 and a branch of 000, which no real MST has; those count as
malformed.

Example::

    >>> check_tax_code(" 0100233488-001 ")
    ('0100233488-001', None)
    >>> check_tax_code("0100233480")[1]
    'TAX_CODE_CHECK_DIGIT'
"""

from __future__ import annotations

import re
from functools import lru_cache

from stdnum import exceptions as stdnum_errors
from stdnum.vn import mst

TAX_CODE_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)
_TAX_CODE = re.compile(r"[0-9]{10}(?:-?[0-9]{3})?")
_DIGITS = re.compile(r"[0-9]+")


def spec_check_digit(first_nine: str) -> int | None:
    """The spec's check digit of a tax code's first nine digits; None when the sum is divisible by 11."""
    remainder = sum(w * int(d) for w, d in zip(TAX_CODE_WEIGHTS, first_nine, strict=True)) % 11
    return None if remainder == 0 else 10 - remainder


@lru_cache(maxsize=65536)
def check_tax_code(text: str) -> tuple[str | None, str | None]:
    """(normalized `dddddddddd` or `dddddddddd-ddd`, None) or (None, reason code)."""
    compact = "".join(text.split())
    if not _TAX_CODE.fullmatch(compact):
        return None, "TAX_CODE_MALFORMED"
    try:
        digits = mst.validate(compact)
    except stdnum_errors.InvalidChecksum:
        return None, "TAX_CODE_CHECK_DIGIT"
    except stdnum_errors.ValidationError:
        return None, "TAX_CODE_MALFORMED"
    return (digits if len(digits) == 10 else f"{digits[:10]}-{digits[10:]}"), None


def check_social_insurance_no(text: str) -> str | None:
    """The 10-digit social insurance number, or None when it is not exactly 10 digits."""
    compact = text.strip()
    return compact if len(compact) == 10 and _DIGITS.fullmatch(compact) else None


def check_citizen_id(text: str) -> str | None:
    """The citizen ID (12 digits, or the old 9-digit ID), or None when it is neither."""
    compact = "".join(text.split())
    return compact if len(compact) in (9, 12) and _DIGITS.fullmatch(compact) else None
