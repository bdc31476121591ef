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
    evidence, at least two upper-case letters), in an all-caps word of at
    least two other capitals (`DOẼ` in `a DOẼ`), for the first letter of a
    word in a string whose other words are capitalised, and for the first
    letter of a string of several words (names, addresses and notes start
    with a capital). A lone word such as "Ánh" cannot be told from "ánh" and
    decodes lower-case.

TCVN3 capitals (TCVN 5712:1993, the VN1/VN2 tables)
    The same standard also gives the 60 upper-case toned letters byte
    positions of their own, which ABC-era software and fonts used for
    capitals: 0x80-0x9F, sixteen positions VN3 leaves free in 0xA0-0xFF, and
    twelve C0 control positions (0x01 Ú ... 0x17 Ỵ). Read as Windows-1252,
    0x80-0x9F become `€ ‚ ƒ „ …` and the like, and the five bytes Windows-1252
    does not define (0x81 0x8D 0x8F 0x90 0x9D) become the C1 controls U+0081 ...;
    a Latin-1 reading gives C1 controls for all 32. C0 positions arrive as
    control characters. So `HÀ NỘI` may arrive as `H€ N—I` and `ĐỨC` as
    `§\x11C`. Decoding accepts both kinds of capitals (and VN3's lower-case
    codes in an all-caps string) in one text; `encode_as_tcvn3_mojibake(...,
    capital_codes=True)` writes them, for tests and the demo.

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
    "TCVN3_CAPITALS_TO_UNICODE",
    "TCVN3_CAPITAL_CONTROLS",
    "TCVN3_CAPITAL_PUNCTUATION",
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
_TCVN3_BASES = {
    "ă": 0xA8,
    "â": 0xA9,
    "ê": 0xAA,
    "ô": 0xAB,
    "ơ": 0xAC,
    "ư": 0xAD,
    "đ": 0xAE,
    "Ă": 0xA1,
    "Â": 0xA2,
    "Ê": 0xA3,
    "Ô": 0xA4,
    "Ơ": 0xA5,
    "Ư": 0xA6,
    "Đ": 0xA7,
}
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


# TCVN 5712:1993 (VN1) positions of the upper-case toned letters, tones in _TONES order.
# VN2 has those in 0xA0-0xFF; VN1 adds 0x80-0x9F and the C0 positions (0x01-0x17).
_TCVN3_CAPITAL_TONED = {
    "A": (0x80, 0x81, 0x82, 0x83, 0x84),
    "Ă": (0xAF, 0xBA, 0xBF, 0xC0, 0x85),
    "Â": (0xC1, 0xC2, 0xC3, 0xC4, 0x86),
    "E": (0x87, 0x88, 0x89, 0x8A, 0x8B),
    "Ê": (0xC5, 0xCD, 0xD9, 0xDA, 0x8C),
    "I": (0x8D, 0x8E, 0x8F, 0x90, 0x91),
    "O": (0x92, 0x93, 0x94, 0x95, 0x96),
    "Ô": (0xDB, 0xE0, 0xF0, 0xFF, 0x97),
    "Ơ": (0x98, 0x99, 0x9A, 0x9B, 0x9C),
    "U": (0x9D, 0x9E, 0x9F, 0x01, 0x02),
    "Ư": (0x04, 0x05, 0x06, 0x11, 0x12),
    "Y": (0x13, 0x14, 0x15, 0x16, 0x17),
}


def _cp1252(byte: int) -> str:
    """The character a Windows-1252 client makes of `byte`; the five bytes it leaves
    undefined (0x81 0x8D 0x8F 0x90 0x9D) become the C1 control of the same number,
    as Windows and MariaDB's latin1 convert them."""
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)


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
_CASELESS_IN_TCVN3 = frozenset(TCVN3_TO_UNICODE[_cp1252(b)] for codes in _TCVN3_TONED.values() for b in codes)


def _tcvn3_capital_tables() -> tuple[dict[str, str], dict[str, str]]:
    decode: dict[str, str] = {}
    encode: dict[str, str] = {}
    for vowel, codes in _TCVN3_CAPITAL_TONED.items():
        for tone, byte in zip(_TONES, codes):
            letter = _toned(vowel, tone)
            encode[letter] = decode_as = _cp1252(byte)
            decode[decode_as] = letter
            if 0x80 <= byte <= 0x9F:  # the same byte read as Latin-1: a C1 control
                decode[chr(byte)] = letter
    return decode, encode


#: TCVN 5712 capital positions, as found in legacy rows (Windows-1252 characters, C1 and C0
#: controls) -> the upper-case toned letter. Disjoint from TCVN3_TO_UNICODE.
TCVN3_CAPITALS_TO_UNICODE, _UNICODE_TO_TCVN3_CAPITALS = _tcvn3_capital_tables()
#: The control characters among them (C0 and C1): never part of real text.
TCVN3_CAPITAL_CONTROLS = frozenset(c for c in TCVN3_CAPITALS_TO_UNICODE if not c.isprintable())
#: The punctuation among them (`€ … ‘ ’ “ ” – — ™ ¯ º ¿` ...), which real text uses too: one of
#: these is a letter only next to a letter (`N—I` is NỘI; `12–14` keeps its dash).
TCVN3_CAPITAL_PUNCTUATION = frozenset(c for c in TCVN3_CAPITALS_TO_UNICODE if c.isprintable() and not c.isalpha())
_TCVN3_DECODE = {**TCVN3_TO_UNICODE, **TCVN3_CAPITALS_TO_UNICODE}

# --- VNI-Windows -----------------------------------------------------------
_VNI_BASE = {
    "a": "a",
    "ă": "aê",
    "â": "aâ",
    "e": "e",
    "ê": "eâ",
    "o": "o",
    "ô": "oâ",
    "ơ": "ô",
    "u": "u",
    "ư": "ö",
    "y": "y",
}
_VNI_TONE_MARK = ("ø", "û", "õ", "ù", "ï")  # after a, e, o, u, y, ơ, ư
_VNI_CIRCUMFLEX_TONED = ("à", "å", "ã", "á", "ä")  # replaces the â of â ê ô
_VNI_BREVE_TONED = ("è", "ú", "ü", "é", "ë")  # replaces the ê of ă
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


def encode_as_tcvn3_mojibake(text: str, errors: str = "strict", *, capital_codes: bool = False) -> str:
    """NFC Vietnamese -> TCVN3 bytes read as Windows-1252: 'Hà Nội' -> 'Hµ Néi'.

    Upper-case toned letters take the lower-case codes (an all-caps font's way:
    'HÀ NỘI' -> 'Hµ NéI'), or with `capital_codes` their TCVN 5712 capital
    positions ('HÀ NỘI' -> 'H€ N—I'). Characters that are neither ASCII nor
    Vietnamese letters raise ValueError, or are copied unchanged with errors="keep".
    """
    table = {**_UNICODE_TO_TCVN3, **_UNICODE_TO_TCVN3_CAPITALS} if capital_codes else _UNICODE_TO_TCVN3
    return _encode(text, table, "TCVN3", errors)


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
        capitals = [c for c in word.group(0) if c.isalpha() and c not in _CASELESS_IN_TCVN3]
        if len(capitals) >= 2 and all(c.isupper() for c in capitals):  # one word in capitals: `ĐỒNG` in `xã ĐỒNG`
            for i in range(word.start(), word.end()):
                if out[i] in _CASELESS_IN_TCVN3:
                    out[i] = out[i].upper()
            continue
        # Title Case strings, and the first word of a sentence of several words, start upper-case.
        if first in _CASELESS_IN_TCVN3 and (title_case or (n == 0 and len(words) > 1)):
            out[word.start()] = first.upper()
    return "".join(out)


def decode_tcvn3_mojibake(text: str) -> str:
    """Inverse of encode_as_tcvn3_mojibake: 'Hµ Néi' -> 'Hà Nội', 'H€ N—I' -> 'HÀ NỘI' (the case of
    VN3's lower-case codes restored from context)."""
    decoded = [_TCVN3_DECODE.get(c, c) for c in text]
    for i, c in enumerate(text):
        if c in TCVN3_CAPITAL_PUNCTUATION and not (_letter_like(text, i - 1) or _letter_like(text, i + 1)):
            decoded[i] = c  # punctuation between digits or spaces: `12–14`, ` – `
    return _restore_case("".join(decoded))


def _letter_like(text: str, i: int) -> bool:
    """Is text[i] a letter, or a TCVN3 code other than punctuation (`§`, `\x11`)?"""
    if not 0 <= i < len(text):
        return False
    c = text[i]
    return c.isalpha() or (c in _TCVN3_DECODE and c not in TCVN3_CAPITAL_PUNCTUATION)


def decode_vni_mojibake(text: str) -> str:
    """Inverse of encode_as_vni_mojibake: 'Haø Noäi' -> 'Hà Nội'."""
    return _VNI_PATTERN.sub(lambda m: VNI_TO_UNICODE[m.group(0)], text)
