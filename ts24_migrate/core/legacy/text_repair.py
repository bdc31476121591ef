"""Repair legacy Vietnamese text to Unicode NFC, and say what it was.

Each value is classified as one of:

- ``ascii``: nothing to do;
- ``nfc``: valid composed Unicode (Vietnamese, or a foreign name such as
  `Søren` or `José`): left exactly as it is;
- ``nfd``: decomposed Unicode ("tổ hợp"): composed to NFC;
- ``tcvn3`` / ``vni``: legacy bytes read as Windows-1252 (`Hµ Néi`,
  `Haø Noäi`): decoded to NFC;
- ``ambiguous``: not Vietnamese as it stands, but both decodings give equally
  good Vietnamese (`Cöa` is `Cửa` in TCVN3 and `Cưa` in VNI): left unchanged
  for a person to decide, rather than guessed;
- ``suspect``: looks like legacy bytes, but no decoding makes all of it
  Vietnamese: it holds control characters that only TCVN 5712 capital codes
  produce (`B\x81O` for `BẢO`), or a decoding makes some of its words
  Vietnamese and not the others (`Hµ NÉI`: TCVN3 upper-cased by software,
  whose É is no longer the é of `Néi`). Left unchanged for a person to check.

Mojibake is only decoded when the evidence is clear both ways: the decoded
text must be Vietnamese (every word that is not plain ASCII is a possible
Vietnamese syllable) and the original must not be (at least one such word is
not). Valid Vietnamese is therefore never touched, whatever characters it
uses, and a foreign name whose decoding is not Vietnamese (`José` would decode
to `Josộ`) is left alone, and not suspected either. The price of never touching valid text: mojibake
that happens to spell valid Vietnamese (`Thò` is VNI for `Thị`, and also a
word) cannot be told from it and stays as it is; so does a lone word whose
last letter is a TCVN 5712 capital that Windows-1252 shows as punctuation
(`H€` for `HÀ`: a word followed by `€`, as far as anyone can tell).

Example::

    >>> repair_text("Hµ Néi")
    ('Hà Nội', 'tcvn3')
    >>> repair_text("Søren")
    ('Søren', 'nfc')
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from ts24_migrate.core.legacy.encodings import (
    TCVN3_CAPITAL_CONTROLS,
    TCVN3_CAPITAL_PUNCTUATION,
    TCVN3_CAPITALS_TO_UNICODE,
    TCVN3_TO_UNICODE,
    VNI_TO_UNICODE,
    decode_tcvn3_mojibake,
    decode_vni_mojibake,
)

from .syllables import is_vietnamese_syllable

ASCII, NFC, NFD, TCVN3, VNI, AMBIGUOUS, SUSPECT = "ascii", "nfc", "nfd", "tcvn3", "vni", "ambiguous", "suspect"
ENCODINGS = (ASCII, NFC, NFD, TCVN3, VNI, AMBIGUOUS, SUSPECT)

# Characters that legacy mojibake is made of, letters or not (`·`, `¶`, `§`, controls): they
# belong to a word, so a word like `x·` is judged as a whole. The punctuation of TCVN 5712
# capitals (`€`, `—`, `“`) belongs to a word only next to a letter: `N—I` is one, `12–14` none.
_MOJIBAKE_CHARS = "".join(
    sorted(
        (set(TCVN3_TO_UNICODE) | set(TCVN3_CAPITALS_TO_UNICODE) | set("".join(VNI_TO_UNICODE)))
        - TCVN3_CAPITAL_PUNCTUATION
    )
)
_PUNCTUATION = re.escape("".join(sorted(TCVN3_CAPITAL_PUNCTUATION)))
_WORD = re.compile(f"(?:[{_PUNCTUATION}]*(?:[^\\W\\d_]|[{re.escape(_MOJIBAKE_CHARS)}]))+[{_PUNCTUATION}]*")
_EDGE_PUNCTUATION = "".join(sorted(TCVN3_CAPITAL_PUNCTUATION))
_CAPITAL_CONTROL = re.compile(f"[{re.escape(''.join(sorted(TCVN3_CAPITAL_CONTROLS)))}]")


def _legacy_chars_only(text: str) -> bool:
    """Could `text` be legacy bytes as a client read them: Windows-1252 characters, and the
    control characters of TCVN 5712 capitals? Anything else is real Unicode."""
    try:
        _CAPITAL_CONTROL.sub("", text).encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _syllable_verdicts(text: str) -> tuple[int, int]:
    """(valid, invalid) counts over the words that are not plain ASCII (a TCVN 5712 capital's
    control character is ASCII, and no plain text).

    Punctuation at a word's edges is left out (`Mau…`, `“Hà`): real text puts it there, and
    a word of mojibake shows itself inside (`N—I`) or in its other characters.
    """
    valid = invalid = 0
    for found in _WORD.findall(text):
        word = found.strip(_EDGE_PUNCTUATION)
        if not word or word.isascii() and word.isprintable():
            continue
        if is_vietnamese_syllable(word):
            valid += 1
        else:
            invalid += 1
    return valid, invalid


@lru_cache(maxsize=131072)
def _repair_non_ascii(text: str) -> tuple[str, str]:
    if not unicodedata.is_normalized("NFC", text):
        return unicodedata.normalize("NFC", text), NFD
    # Mojibake consists of legacy characters only; anything else is real Unicode.
    if not _legacy_chars_only(text):
        return text, NFC
    original_valid, original_invalid = _syllable_verdicts(text)
    if original_invalid == 0:
        return text, NFC
    candidates: list[tuple[int, str, str]] = []
    improved = False
    for encoding, decode in ((TCVN3, decode_tcvn3_mojibake), (VNI, decode_vni_mojibake)):
        decoded = decode(text)
        if decoded == text:
            continue
        valid, invalid = _syllable_verdicts(decoded)
        if invalid == 0 and valid > 0:
            candidates.append((valid, decoded, encoding))
        elif invalid < original_invalid and valid > original_valid:
            improved = True
    if not candidates:
        # No decoding holds: legacy bytes still show in control characters (never in real
        # text), or in words that a decoding makes Vietnamese. Say so; a foreign name shows neither.
        return text, SUSPECT if improved or _CAPITAL_CONTROL.search(text) else NFC
    candidates.sort(reverse=True)
    if len(candidates) > 1 and candidates[0][0] == candidates[1][0]:
        return text, AMBIGUOUS
    return candidates[0][1], candidates[0][2]


def repair_text(text: str) -> tuple[str, str]:
    """(NFC text, detected encoding) for one non-null value; see the module doc."""
    # ASCII holds nothing to repair, but the control characters of TCVN 5712 capitals
    # are ASCII too (0x01 Ú ... 0x17 Ỵ): printable text cannot hold them.
    if text.isascii() and (text.isprintable() or not _CAPITAL_CONTROL.search(text)):
        return text, ASCII
    return _repair_non_ascii(text)


def repair_text_values(values: Sequence[str | None]) -> tuple[list[str | None], list[str | None]]:
    """Repair a column: (repaired values, detected encodings); None stays None with encoding None."""
    repaired: list[str | None] = []
    detected: list[str | None] = []
    for value in values:
        if value is None:
            repaired.append(None)
            detected.append(None)
        else:
            text, encoding = repair_text(value)
            repaired.append(text)
            detected.append(encoding)
    return repaired, detected
