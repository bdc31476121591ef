"""Vietnamese legacy 8-bit encodings as they show up in TS24 text columns.

Before Unicode, Vietnamese offices typed with font-based encodings. When such
bytes were later stored in an NVARCHAR column through a Windows-1252 client,
each byte became the Windows-1252 character with that code: the "mojibake"
we find in legacy rows. The two encodings seen in TS24 are:

TCVN3 (ABC, TCVN 5712:1993 "VN3")
    One byte per letter. Lower-case precomposed letters sit in 0xA8-0xFE,
    the seven upper-case base letters Ă Â Ê Ô Ơ Ư Đ in 0xA1-0xA7, ASCII is
    unchanged. VN3 has NO code points for upper-case letters with a tone
    mark: typists used the lower-case code points with an all-caps font
    (.VnTimeH), so case is lost in the bytes. Our choice, documented here:
    encoding writes an upper-case toned letter with its lower-case code
    point (what the legacy keyboards did); decoding restores upper case
    from context (see `_restore_case`): in an all-caps string (no lower-case
    evidence, at least two upper-case letters), for the first letter of a
    word in a string whose other words are capitalised, and for the first
    letter of a string of several words (names, addresses and notes start
    with a capital). A lone word such as "Ánh" cannot be told from "ánh" and
    decodes lower-case.

VNI-Windows
    A base letter followed by one or two trailing accent bytes ("ô" = o + â,
    "ộ" = o + ä), with single bytes for ơ ư đ and the toned i / ỵ letters.
    Upper-case letters have their own codes, so VNI round-trips all 134
    Vietnamese letters.

Example::

    >>> encode_as_tcvn3_mojibake("Hà Nội")
    'Hµ Néi'
    >>> decode_vni_mojibake("Haø Noäi")
    'Hà Nội'
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "VIETNAMESE_LETTERS",
    "TCVN3_TO_UNICODE",
    "VNI_TO_UNICODE",
    "encode_as_tcvn3_mojibake",
    "encode_as_vni_mojibake",
    "decode_tcvn3_mojibake",
    "decode_vni_mojibake",
]

# Tone marks in the order the tables below list them.
_TONES = ("\u0300", "\u0309", "\u0303", "\u0301", "\u0323")  # huyền, hỏi, ngã, sắc, nặng
_VOWELS = "aăâeêioôơuưy"


def _toned(base: str, tone: str) -> str:
    return unicodedata.normalize("NFC", base + tone)


def _all_letters() -> tuple[str, ...]:
    lower = [_toned(v, t) for v in _VOWELS for t in ("",) + _TONES]
    lower.append("đ")
    lower = [c for c in lower if not c.isascii()]
    return tuple(lower + [c.upper() for c in lower])


#: The 134 precomposed (NFC) Vietnamese letters outside ASCII: 67 lower, 67 upper.
VIETNAMESE_LETTERS: tuple[str, ...] = _all_letters()

# --- TCVN3 -----------------------------------------------------------------
# byte codes per vowel, tones in _TONES order; bases that are not ASCII first.
_TCVN3_BASES = {"ă": 0xA8, "â": 0xA9, "ê": 0xAA, "ô": 0xAB, "ơ": 0xAC, "ư": 0xAD, "đ": 0xAE,
                "Ă": 0xA1, "Â": 0xA2, "Ê": 0xA3, "Ô": 0xA4, "Ơ": 0xA5, "Ư": 0xA6, "Đ": 0xA7}
_TCVN3_TONED = {
    "a": (0xB5, 0xB6, 0xB7, 0xB8, 0xB9),
    "ă": (0xBB, 0xBC, 0xBD, 0xBE, 0xC6),
    "â": (0xC7, 0xC8, 0xC9, 0xCA, 0xCB),
    "e": (0xCC, 0xCE, 0xCF, 0xD0, 0xD1),
    "ê": (0xD2, 0xD3, 0xD4, 0xD5, 0xD6),
    "i": (0xD7, 0xD8, 0xDC, 0xDD, 0xDE),
    "o": (0xDF, 0xE1, 0xE2, 0xE3, 0xE4),
    "ô": (0xE5, 0xE6, 0xE7, 0xE8, 0xE9),
    "ơ": (0xEA, 0xEB, 0xEC, 0xED, 0xEE),
    "u": (0xEF, 0xF1, 0xF2, 0xF3, 0xF4),
    "ư": (0xF5, 0xF6, 0xF7, 0xF8, 0xF9),
    "y": (0xFA, 0xFB, 0xFC, 0xFD, 0xFE),
}


def _cp1252(byte: int) -> str:
    return bytes([byte]).decode("cp1252")


def _tcvn3_tables() -> tuple[dict[str, str], dict[str, str]]:
    decode: dict[str, str] = {}
    for letter, byte in _TCVN3_BASES.items():
        decode[_cp1252(byte)] = letter
    for vowel, codes in _TCVN3_TONED.items():
        for tone, byte in zip(_TONES, codes):
            decode[_cp1252(byte)] = _toned(vowel, tone)
    encode = {letter: char for char, letter in decode.items()}
    # VN3 convention: upper-case toned letters reuse the lower-case code points.
    for letter in VIETNAMESE_LETTERS:
        if letter not in encode:
            encode[letter] = encode[letter.lower()]
    return decode, encode


#: Windows-1252 character (as found in legacy rows) -> Unicode letter.
TCVN3_TO_UNICODE, _UNICODE_TO_TCVN3 = _tcvn3_tables()
# Letters whose case the TCVN3 bytes cannot carry (the 60 lower-case toned ones).
_CASELESS_IN_TCVN3 = frozenset(
    TCVN3_TO_UNICODE[_cp1252(b)] for codes in _TCVN3_TONED.values() for b in codes)

# --- VNI-Windows -----------------------------------------------------------
_VNI_BASE = {"a": "a", "ă": "aê", "â": "aâ", "e": "e", "ê": "eâ", "o": "o", "ô": "oâ",
             "ơ": "ô", "u": "u", "ư": "ö", "y": "y"}
_VNI_TONE_MARK = ("ø", "û", "õ", "ù", "ï")          # after a, e, o, u, y, ơ, ư
_VNI_CIRCUMFLEX_TONED = ("à", "å", "ã", "á", "ä")   # replaces the â of â ê ô
_VNI_BREVE_TONED = ("è", "ú", "ü", "é", "ë")        # replaces the ê of ă
_VNI_SINGLE = {"đ": "ñ", "ì": "ì", "ỉ": "æ", "ĩ": "ó", "í": "í", "ị": "ò", "ỵ": "î"}


def _vni_tables() -> tuple[dict[str, str], dict[str, str]]:
    encode: dict[str, str] = dict(_VNI_SINGLE)
    for vowel, seq in _VNI_BASE.items():
        encode[vowel] = seq
        for i, tone in enumerate(_TONES):
            letter = _toned(vowel, tone)
            if letter in encode:
                continue
            if vowel in "âêô":
                encode[letter] = seq[0] + _VNI_CIRCUMFLEX_TONED[i]
            elif vowel == "ă":
                encode[letter] = seq[0] + _VNI_BREVE_TONED[i]
            else:
                encode[letter] = seq + _VNI_TONE_MARK[i]
    # Upper case: the same sequence with each Latin-1 character upper-cased.
    for letter, seq in list(encode.items()):
        encode[letter.upper()] = seq.upper()
    # ASCII bases and ì í Ì Í encode as themselves; only real sequences decode.
    decode = {seq: letter for letter, seq in encode.items() if seq != letter}
    return decode, encode


#: VNI character sequence (as Windows-1252 characters) -> Unicode letter.
VNI_TO_UNICODE, _UNICODE_TO_VNI = _vni_tables()
_VNI_PATTERN = re.compile("|".join(re.escape(s) for s in sorted(VNI_TO_UNICODE, key=len, reverse=True)))


def _encode(text: str, table: dict[str, str], name: str, errors: str) -> str:
    out = []
    for char in unicodedata.normalize("NFC", text):
        mapped = table.get(char)
        if mapped is not None:
            out.append(mapped)
        elif char.isascii() or errors == "keep":
            out.append(char)
        else:
            raise ValueError(f"{char!r} (U+{ord(char):04X}) has no {name} encoding")
    return "".join(out)


def encode_as_tcvn3_mojibake(text: str, errors: str = "strict") -> str:
    """NFC Vietnamese -> TCVN3 bytes read as Windows-1252: 'Hà Nội' -> 'Hµ Néi'.

    Characters that are neither ASCII nor Vietnamese letters raise ValueError,
    or are copied unchanged with errors="keep".
    """
    return _encode(text, _UNICODE_TO_TCVN3, "TCVN3", errors)


def encode_as_vni_mojibake(text: str, errors: str = "strict") -> str:
    """NFC Vietnamese -> VNI-Windows bytes read as Windows-1252: 'Hà Nội' -> 'Haø Noäi'."""
    return _encode(text, _UNICODE_TO_VNI, "VNI", errors)


_WORD = re.compile(r"\w+")


def _restore_case(decoded: str) -> str:
    """Upper-case TCVN3's caseless letters where the context shows capitals."""
    evidence = [c for c in decoded if c.isalpha() and c not in _CASELESS_IN_TCVN3]
    if evidence and not any(c.islower() for c in evidence) and sum(c.isupper() for c in evidence) >= 2:
        return "".join(c.upper() if c in _CASELESS_IN_TCVN3 else c for c in decoded)
    words = list(_WORD.finditer(decoded))
    initials = [w.group(0)[0] for w in words if w.group(0)[0] not in _CASELESS_IN_TCVN3 and w.group(0)[0].isalpha()]
    title_case = bool(initials) and all(c.isupper() for c in initials)
    out = list(decoded)
    for n, word in enumerate(words):
        first = word.group(0)[0]
        # Title Case strings, and the first word of a sentence of several words, start upper-case.
        if first in _CASELESS_IN_TCVN3 and (title_case or (n == 0 and len(words) > 1)):
            out[word.start()] = first.upper()
    return "".join(out)


def decode_tcvn3_mojibake(text: str) -> str:
    """Inverse of encode_as_tcvn3_mojibake: 'Hµ Néi' -> 'Hà Nội' (case restored from context)."""
    decoded = "".join(TCVN3_TO_UNICODE.get(c, c) for c in text)
    return _restore_case(decoded)


def decode_vni_mojibake(text: str) -> str:
    """Inverse of encode_as_vni_mojibake: 'Haø Noäi' -> 'Hà Nội'."""
    return _VNI_PATTERN.sub(lambda m: VNI_TO_UNICODE[m.group(0)], text)
