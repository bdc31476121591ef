"""Column-wise cleaning: one Arrow test over the whole column decides which values need work.

Most legacy values need nothing: a code already trimmed and upper-case, a note in plain
ASCII or in valid composed Vietnamese. Calling the per-value cleaning on each of them
is most of the transform's cost. Here a regular expression, run by Arrow over the
whole column (C++, no Python object per value), picks out the values whose result is
known without looking (the value itself, and `ascii` or `nfc`); only the others go
through the per-value path (`clean_text_values`, `normalize.normalize_codes`), which
stays the reference: both paths give the same results (tests/test_transform_columns.py).

The tests are deliberately narrow, so that a value they pass is certain to come out
unchanged whatever the per-value path would have done:

- text: printable ASCII with no space at its edges and no run of spaces; or, for
  composed Vietnamese, letters of the Latin blocks (Latin-1 to Latin Extended-B, and
  Latin Extended Additional, where the toned Vietnamese letters live) with at least one
  that Windows-1252 cannot hold (`ộ`, `ư`, `đ`: so it cannot be legacy bytes) and no
  combining mark (so it is NFC);
- codes: printable ASCII with no space at its edges, already in the wanted case.

A column that is not all text (bytes, numbers) goes through the per-value path whole.

Example::

    >>> clean_text_column(["Hà Nội", " a  b", "Hµ Néi", None])[:2]
    (['Hà Nội', 'a b', 'Hà Nội', None], ['nfc', 'ascii', 'tcvn3', None])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ts24_migrate.core.legacy.text_repair import ASCII, NFC, repair_text_values

from .normalize import normalize_codes, strip_blanks

_SPACE_RUNS = re.compile(r"[ \t]{2,}|\t")

# Printable ASCII, no space at either edge, no two spaces in a row: trimming, collapsing
# and repair all leave it as it is, and repair calls it ascii.
_PLAIN_ASCII = r"^[\x21-\x7e](?:[\x21-\x7e]| [\x21-\x7e])*$"
# The same shape over Latin letters (no C1 controls, no no-break space U+00A0, no combining
# marks U+0300-U+036F: none of them is whitespace, and a string of them is NFC) ...
_LATIN = r"\x{21}-\x{7e}\x{a1}-\x{24f}\x{1e00}-\x{1eff}"
_PLAIN_LATIN = rf"^[{_LATIN}](?:[{_LATIN}]| [{_LATIN}])*$"
# ... holding a character Windows-1252 has no byte for, so it is real Unicode, not legacy
# bytes (Windows-1252's own characters of these blocks, Œ œ Š š Ÿ Ž ž ƒ, are left out).
_NOT_CP1252 = (
    r"[\x{100}-\x{151}\x{154}-\x{15f}\x{162}-\x{177}\x{179}-\x{17c}\x{17f}-\x{191}"
    r"\x{193}-\x{24f}\x{1e00}-\x{1eff}]"
)
# A code that trimming and re-casing leave as it is.
_PLAIN_CODE = {
    "upper": r"^[\x21-\x60\x7b-\x7e](?:[\x20-\x60\x7b-\x7e]*[\x21-\x60\x7b-\x7e])?$",
    "lower": r"^[\x21-\x40\x5b-\x7e](?:[\x20-\x40\x5b-\x7e]*[\x21-\x40\x5b-\x7e])?$",
    "keep": r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$",
}


def clean_text_values(values: Sequence[Any]) -> tuple[list[Any], list[str | None], list[int], list[int]]:
    """The per-value path: (repaired, detected encodings, blank rows, trimmed rows).

    Trimmed, runs of spaces/tabs made one space (line breaks kept), blank -> None,
    repaired to NFC (text_repair.repair_text); bytes and other values made text first.
    """
    from .tables.common import as_text  # (tables.common uses this module)

    texts = values if only_of_type(values, str) else [as_text(v) for v in values]
    stripped, blanks = strip_blanks(texts)
    # (the substring tests are what _SPACE_RUNS matches, and cost a tenth of running it)
    collapsed = [_SPACE_RUNS.sub(" ", v) if isinstance(v, str) and ("  " in v or "\t" in v) else v for v in stripped]
    repaired, detected = repair_text_values(collapsed)
    return repaired, detected, blanks, changed_rows(texts, collapsed, blanks)


def clean_text_column(values: Sequence[Any]) -> tuple[list[Any], list[str | None], list[int], list[int], list[int]]:
    """clean_text_values over a column, plus the rows the per-value path examined (the only ones
    that can have been changed or flagged); the others are plain ASCII or composed Unicode."""
    arrow = _as_arrow_text(values)
    if arrow is None:
        return (*clean_text_values(values), list(range(len(values))))
    ascii_plain = _matches(arrow, _PLAIN_ASCII)
    latin_plain = np.logical_and(_matches(arrow, _PLAIN_LATIN), _matches(arrow, _NOT_CP1252))
    examined = np.flatnonzero(~(ascii_plain | latin_plain | _nulls(arrow))).tolist()
    repaired = list(values)
    detected: list[str | None] = [None] * len(values)
    for i in np.flatnonzero(ascii_plain).tolist():
        detected[i] = ASCII
    for i in np.flatnonzero(latin_plain).tolist():
        detected[i] = NFC
    some_repaired, some_detected, some_blanks, some_trimmed = clean_text_values([values[i] for i in examined])
    for i, text, encoding in zip(examined, some_repaired, some_detected):
        repaired[i] = text
        detected[i] = encoding
    return (repaired, detected, [examined[j] for j in some_blanks], [examined[j] for j in some_trimmed], examined)


def normalize_code_column(
    values: Sequence[Any], *, case: str = "upper"
) -> tuple[list[str | None], list[int], list[int]]:
    """normalize.normalize_codes over a column: only codes that trimming or re-casing would
    change (or that are blank, or not plain ASCII) go through it."""
    arrow = _as_arrow_text(values)
    if arrow is None:
        return normalize_codes(values, case=case)
    examined = np.flatnonzero(~(_matches(arrow, _PLAIN_CODE[case]) | _nulls(arrow))).tolist()
    codes = list(values)
    some_codes, some_changed, some_blanks = normalize_codes([values[i] for i in examined], case=case)
    for i, code in zip(examined, some_codes):
        codes[i] = code
    return codes, [examined[j] for j in some_changed], [examined[j] for j in some_blanks]


def _as_arrow_text(values: Sequence[Any]) -> pa.Array | None:
    """The column as an Arrow string array, or None when it holds anything but text (or text
    Arrow cannot hold, such as a lone surrogate): the per-value path takes it whole."""
    if not only_of_type(values, str):
        return None
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowException, UnicodeError):
        return None


def _matches(arrow: pa.Array, pattern: str) -> np.ndarray:
    matched: np.ndarray = pc.match_substring_regex(arrow, pattern).fill_null(False).to_numpy(zero_copy_only=False)
    return matched


def _nulls(arrow: pa.Array) -> np.ndarray:
    nulls: np.ndarray = arrow.is_null().to_numpy(zero_copy_only=False)
    return nulls


def changed_rows(before: Sequence[Any], after: Sequence[Any], blanks: Sequence[int]) -> list[int]:
    """Rows whose string lost whitespace (blank ones aside: they are EMPTY_AS_NULL)."""
    blank = set(blanks)
    # strip() hands back the very string when it had nothing to strip: `is not` is the fast test
    return [
        i
        for i, (b, a) in enumerate(zip(before, after))
        if b is not a and isinstance(b, str) and b != a and i not in blank
    ]


def only_of_type(values: Sequence[Any], kind: type) -> bool:
    """Every value is exactly of `kind` (a bool is no int) or None."""
    return set(map(type, values)) <= {kind, type(None)}


def parse_distinct(values: Sequence[Any], parse: Callable[[str], Any]) -> list[Any]:
    """[parse(str(value)) or None for a None value]: `parse` runs once per distinct text.

    Dates and periods repeat (a column holds a few hundred distinct months and days), so the
    per-row work is one dictionary look-up; `parse` must be a pure function of the text.
    """
    texts = [value if value is None or type(value) is str else str(value) for value in values]
    results: dict[str | None, Any] = {text: parse(text) for text in set(texts) if text is not None}
    results[None] = None
    return [results[text] for text in texts]
