"""Is a word a possible Vietnamese syllable? The yardstick of text repair.

Vietnamese is written in syllables: an optional initial consonant, a vowel
nucleus, an optional final consonant, and at most one tone mark, placed on a
given vowel of the nucleus. A few rules of the spelling make the check
sharper: a syllable closed by a stop (-c, -ch, -p, -t) only takes the sắc or
nặng tone; -ch / -nh only follow a, ê, i, y, and -c / -ng never follow a bare
i or ê; nuclei ending in a glide (ai, ao, ...) take no final consonant. Mojibake
breaks that shape (`Néi`, `Haø`), so "every word is a syllable" is a strong,
cheap sign that a decoding produced real Vietnamese. The check is permissive
(it accepts some syllables no dictionary has) because it only has to tell
Vietnamese from garbage, not spell-check.

Example::

    >>> is_vietnamese_syllable("Nội"), is_vietnamese_syllable("Néi")
    (True, False)
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from ts24_migrate.core.legacy.encodings import VIETNAMESE_LETTERS

TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")  # huyền, sắc, ngã, hỏi, nặng
STOP_TONES = frozenset("\u0301\u0323")  # sắc, nặng: the only tones of a syllable ending in a stop

# `kr` and a final `k` occur in place names from minority languages (Krông Pắc, Đắk Lắk).
INITIALS = (
    "ngh",
    "ng",
    "nh",
    "ch",
    "gh",
    "gi",
    "kh",
    "kr",
    "ph",
    "th",
    "tr",
    "qu",
    "b",
    "c",
    "d",
    "đ",
    "g",
    "h",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "x",
)
# Nuclei that may be followed by a final consonant; those in NEED_FINAL must be
# (`ăn`, `tiên`, `muốn`: never a bare `ă`, `tiê`, `muô`).
OPEN_NUCLEI = (
    "a",
    "ă",
    "â",
    "e",
    "ê",
    "i",
    "o",
    "ô",
    "ơ",
    "u",
    "ư",
    "iê",
    "oa",
    "oă",
    "oe",
    "uâ",
    "uê",
    "uô",
    "uơ",
    "uy",
    "ươ",
    "yê",
    "uyê",
)
NEED_FINAL = frozenset(("ă", "â", "iê", "oă", "uâ", "uô", "ươ", "yê", "uyê"))
# Nuclei that end in a glide (or in the -a of ia/ua/ưa) and take no final consonant.
CLOSED_NUCLEI = (
    "y",
    "ai",
    "ao",
    "au",
    "ay",
    "âu",
    "ây",
    "eo",
    "êu",
    "ia",
    "iu",
    "oi",
    "ôi",
    "ơi",
    "ua",
    "ui",
    "ưa",
    "ưi",
    "ưu",
    "iêu",
    "oai",
    "oao",
    "oay",
    "oeo",
    "uây",
    "uôi",
    "uya",
    "uyu",
    "ươi",
    "ươu",
    "yêu",
)
NUCLEI = OPEN_NUCLEI + CLOSED_NUCLEI
FINALS = ("ch", "ng", "nh", "c", "k", "m", "n", "p", "t")
# Where the tone mark sits inside the nucleus (0 = first vowel). Single vowels and
# the other two-vowel nuclei: 0; three-vowel nuclei: 1. `hóa` and `hoá` are both in use.
_TONE_POSITIONS = {
    "oa": (0, 1),
    "oe": (0, 1),
    "uy": (0, 1),
    "uê": (1,),
    "iê": (1,),
    "yê": (1,),
    "uô": (1,),
    "ươ": (1,),
    "uâ": (1,),
    "oă": (1,),
    "uơ": (1,),
    "uyê": (2,),
}


def _alternation(parts: tuple[str, ...]) -> str:
    return "|".join(sorted(parts, key=len, reverse=True))


_SYLLABLE = re.compile(
    f"(?P<initial>{_alternation(INITIALS)})?(?P<nucleus>{_alternation(NUCLEI)})(?P<final>{_alternation(FINALS)})?"
)
_STOPS = ("c", "ch", "k", "p", "t")
# The Vietnamese alphabet in lower case: no f, j, w, z; only the precomposed Vietnamese letters.
_LETTERS = frozenset("abcdeghiklmnopqrstuvxy") | frozenset(c for c in VIETNAMESE_LETTERS if c.islower())


@lru_cache(maxsize=65536)
def is_vietnamese_syllable(word: str) -> bool:
    """True when `word` (NFC or NFD; lower, Title or UPPER case) has the shape of one Vietnamese syllable.

    Mixed case inside a word (`TuÊn`, `NguyÔn`) is refused: it is what TCVN3
    bytes look like, never how Vietnamese is written.
    """
    if not (word.islower() or word.isupper() or word[:1].isupper() and word[1:].islower() or len(word) == 1):
        return False
    lower = unicodedata.normalize("NFC", word.lower())
    if not all(c in _LETTERS for c in lower):
        return False
    decomposed = unicodedata.normalize("NFD", lower)
    tones = [c for c in decomposed if c in TONE_MARKS]
    if len(tones) > 1:
        return False
    toned_at = next(
        (i for i, c in enumerate(lower) if any(m in TONE_MARKS for m in unicodedata.normalize("NFD", c))), None
    )
    toneless = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in TONE_MARKS))
    match = _SYLLABLE.fullmatch(toneless)
    if match is None:
        return False
    initial, nucleus, final = match.group("initial"), match.group("nucleus"), match.group("final")
    if toned_at is not None:
        default = (1,) if len(nucleus) == 3 else (0,)
        if toned_at - match.start("nucleus") not in _TONE_POSITIONS.get(nucleus, default):
            return False
    if initial == "qu":
        # the u of qu- is the glide already: no quo-a, quu-; but quy- closes like uy (Quỳnh)
        if nucleus[0] in "uư" or (nucleus[0] == "o" and len(nucleus) > 1):
            return False
        if nucleus == "y":
            nucleus = "uy"
    if initial == "gi" and nucleus == "ê":
        nucleus = "iê"  # giếng: the i of gi- is also the i of iê
    if final is None and nucleus in NEED_FINAL:
        return False
    if final is not None and nucleus in CLOSED_NUCLEI:
        return False
    if final in _STOPS and not (tones and tones[0] in STOP_TONES):
        return False
    if final in ("ch", "nh") and nucleus[-1] not in "aêiy":
        return False
    return not (final in ("c", "ng") and nucleus in ("i", "ê", "y"))  # -ich, -inh, -êch, -ênh instead
