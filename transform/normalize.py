"""Small normalizations shared by every table: blanks, codes, integers.

Legacy rows use empty strings for missing values and carry codes with stray
whitespace or lower case (`ab123 `). These helpers work on whole columns
(Python lists, as Arrow hands them over) and report which rows they changed,
so the caller can flag them.

Example::

    >>> normalize_codes(["ab123 ", "AB124", "  ", None])
    (['AB123', 'AB124', None, None], [0], [2])
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from typing import Any


def normalize_codes(values: Sequence[Any], *, case: str = "upper") -> tuple[list[str | None], list[int], list[int]]:
    """Trim and re-case codes; blank -> None.

    Returns (codes, rows whose code changed other than by blank -> None,
    rows that held a blank string). `case` is "upper", "lower" or "keep".
    Non-string values (an integer code) are turned into their text.
    """
    codes: list[str | None] = []
    changed: list[int] = []
    blanks: list[int] = []
    for i, value in enumerate(values):
        if value is None:
            codes.append(None)
            continue
        text = value if isinstance(value, str) else str(value)
        code = text.strip()
        if case == "upper":
            code = code.upper()
        elif case == "lower":
            code = code.lower()
        if not code:
            codes.append(None)
            blanks.append(i)
            continue
        if code != text:
            changed.append(i)
        codes.append(code)
    return codes, changed, blanks


def strip_blanks(values: Sequence[Any]) -> tuple[list[Any], list[int]]:
    """Strip surrounding whitespace of strings; blank -> None. Returns (values, rows that were blank)."""
    # Two comprehensions instead of one loop: a third of the time on a million values.
    out = [value.strip() if isinstance(value, str) else value for value in values]
    blanks = [i for i, value in enumerate(out) if isinstance(value, str) and not value]
    for i in blanks:
        out[i] = None
    return out, blanks


def as_int(value: Any) -> int | None:
    """An integer from an int, an integral Decimal/float or a digit string; None when it is none of those."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (float, decimal.Decimal)):
        return int(value) if value == int(value) else None
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit() and text.isascii():
            return int(text)
    return None


def display(value: Any, limit: int = 200) -> str | None:
    """A value as text for a reject's original_value: bounded, bytes shown as hex."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        text = data[: limit // 2].hex() + ("..." if len(data) > limit // 2 else "")
        return f"<{len(data)} bytes> {text}"
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + "..."
