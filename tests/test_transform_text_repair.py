"""Text repair to NFC: known pairs, foreign names left alone, and properties over generated text."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ts24_migrate.core.legacy.encodings import (
    TCVN3_CAPITAL_CONTROLS,
    decode_tcvn3_mojibake,
    encode_as_tcvn3_mojibake,
    encode_as_vni_mojibake,
)
from ts24_migrate.core.legacy.syllables import FINALS, INITIALS, NUCLEI, is_vietnamese_syllable
from ts24_migrate.core.legacy.text_repair import repair_text, repair_text_values

REAL_VIETNAMESE = [
    "Hà Nội",
    "Nguyễn Thị Ánh",
    "Trần Quốc Tuấn",
    "Phạm Thị Thu Thủy",
    "Huỳnh Văn Quỳnh",
    "Đặng Ngọc Yến",
    "Công ty TNHH Xây dựng Thăng Long",
    "Công ty Cổ phần Chế biến Thực phẩm Hưng Thịnh",
    "Số 12 đường Láng, phường Láng Thượng, quận Đống Đa, thành phố Hà Nội",
    "Thành phố Hồ Chí Minh",
    "tỉnh Đắk Lắk",
    "huyện Krông Pắc",
    "Thừa Thiên Huế",
    "Bà Rịa - Vũng Tàu",
    "Bổ sung hồ sơ theo yêu cầu của cơ quan bảo hiểm",
    "Đề nghị cấp lại sổ bảo hiểm xã hội",
    "Người lao động nghỉ ốm dài ngày",
    "Uỷ ban nhân dân",
    "Ủy ban nhân dân",
    "giếng nước",
    "khuya lắm",
    "quyển",
    "Cộng hoà xã hội chủ nghĩa Việt Nam",
    "Độc lập - Tự do - Hạnh phúc",
    "NGUYỄN VĂN ỨNG",
]
FOREIGN = [
    "Søren Kierkegaard",
    "José Gómez",
    "Müller GmbH",
    "François Hollande",
    "Zoë",
    "Ångström",
    "µg/l",
    "Renée Zoë",
    "Bjørn Æsir",
    "Señor Muñoz",
    "naïve café",
    "Dvořák",
    "Москва",
    "北京",
    "“Hà Nội”",
    "Công ty TNHH Müller Việt Nam",
    "Œuvre",
    "Straße",
    "Chloé Noël",
]


@pytest.mark.parametrize(
    "legacy, expected, encoding",
    [
        ("Hµ Néi", "Hà Nội", "tcvn3"),
        ("Haø Noäi", "Hà Nội", "vni"),
        ("Céng hoµ x· héi chñ nghÜa ViÖt Nam", "Cộng hoà xã hội chủ nghĩa Việt Nam", "tcvn3"),
        ("Coäng hoaø xaõ hoäi chuû nghóa Vieät Nam", "Cộng hoà xã hội chủ nghĩa Việt Nam", "vni"),
        ("NguyÔn V¨n An", "Nguyễn Văn An", "tcvn3"),
        ("NGUYÔN V¡N øNG", "NGUYỄN VĂN ỨNG", "tcvn3"),
        ("Nguyeãn Vaên An", "Nguyễn Văn An", "vni"),
        ("Sè 12 ®\u00adêng L¸ng, quËn §èng §a", "Số 12 đường Láng, quận Đống Đa", "tcvn3"),
        ("Soá 12 ñöôøng Laùng, quaän Ñoáng Ña", "Số 12 đường Láng, quận Đống Đa", "vni"),
        ("Coâng ty", "Công ty", "vni"),
        ("Uyû ban nhaân daân", "Uỷ ban nhân dân", "vni"),
        (unicodedata.normalize("NFD", "Nguyễn Thị Ánh"), "Nguyễn Thị Ánh", "nfd"),
        (unicodedata.normalize("NFD", "Bảo hiểm xã hội"), "Bảo hiểm xã hội", "nfd"),
        ("Hoa\u0300 Bi\u0300nh", "Hoà Bình", "nfd"),  # partly decomposed
    ],
)
def test_known_pairs(legacy, expected, encoding):
    assert repair_text(legacy) == (expected, encoding)


@pytest.mark.parametrize("text", REAL_VIETNAMESE)
def test_real_vietnamese_is_valid_and_unchanged(text):
    assert repair_text(text) == (text, "nfc")
    words = [w.strip(",.-") for w in text.split()]
    assert all(is_vietnamese_syllable(w) for w in words if w and not w.isascii())


@pytest.mark.parametrize("text", REAL_VIETNAMESE)
def test_real_vietnamese_survives_both_legacy_encodings(text):
    for encoding, encode in (("tcvn3", encode_as_tcvn3_mojibake), ("vni", encode_as_vni_mojibake)):
        assert repair_text(encode(text)) == (text, encoding)


@pytest.mark.parametrize("text", FOREIGN)
def test_foreign_names_with_latin1_letters_are_not_mistaken_for_mojibake(text):
    assert repair_text(text) == (text, "nfc")


# All-caps text of the kind typed with the ABC capital fonts (.VnTimeH) or in VNI caps.
ALL_CAPS = [
    "BẢO HIỂM XÃ HỘI",
    "ĐỒNG THÁP",
    "CÔNG TY TNHH",
    "HÀ NỘI",
    "NGUYỄN VĂN ĐỨC",
    "TRẦN THỊ HƯƠNG",
    "CÔNG TY CỔ PHẦN XÂY DỰNG SỐ 1",
    "ỦY BAN NHÂN DÂN TỈNH ĐẮK LẮK",
    "BỆNH VIỆN ĐA KHOA TỈNH",
    "LÊ THỊ NGỌC ÁNH",
    "PHẠM QUỐC HUY",
    "HUỲNH VĂN ỨNG",
    "TRƯỜNG TIỂU HỌC ĐOÀN KẾT",
    "SỞ LAO ĐỘNG - THƯƠNG BINH VÀ XÃ HỘI",
    "XÍ NGHIỆP MAY XUẤT KHẨU",
    "ĐẶNG THỊ YẾN",
]


@pytest.mark.parametrize(
    "legacy, expected",
    [
        # TCVN 5712 capital codes as a Windows-1252 client shows them: 0x80 À is `€`, 0x97 Ộ is `—`,
        # 0x81 Ả (undefined in Windows-1252) is the C1 control U+0081, 0x11 Ứ a C0 control.
        ("H€ N—I", "HÀ NỘI"),
        ("B\x81O HIÍM X‚ H—I", "BẢO HIỂM XÃ HỘI"),
        ("§ÛNG THƒP", "ĐỒNG THÁP"),
        ("NGUYÙN V¡N §\x11C", "NGUYỄN VĂN ĐỨC"),
        ("TRÁN TH‘ H¦¥NG", "TRẦN THỊ HƯƠNG"),
        ("H\x80 N\x97I", "HÀ NỘI"),  # the same bytes read as Latin-1: C1 controls
        # the capital font's way: VN3's lower-case codes in an all-caps string
        ("B¶O HIÓM X· HéI", "BẢO HIỂM XÃ HỘI"),
        ("§åNG TH¸P", "ĐỒNG THÁP"),
        ("C¤NG TY TNHH", "CÔNG TY TNHH"),
        ("NGUYÔN V¡N §øC", "NGUYỄN VĂN ĐỨC"),
    ],
)
def test_all_caps_tcvn3_pairs(legacy, expected):
    assert repair_text(legacy) == (expected, "tcvn3")


@pytest.mark.parametrize(
    "legacy, expected",
    [
        ("BAÛO HIEÅM XAÕ HOÄI", "BẢO HIỂM XÃ HỘI"),
        ("ÑOÀNG THAÙP", "ĐỒNG THÁP"),
        ("COÂNG TY TNHH", "CÔNG TY TNHH"),
        ("HAØ NOÄI", "HÀ NỘI"),
        ("NGUYEÃN VAÊN ÑÖÙC", "NGUYỄN VĂN ĐỨC"),
    ],
)
def test_all_caps_vni_pairs(legacy, expected):
    assert repair_text(legacy) == (expected, "vni")


@pytest.mark.parametrize("text", ALL_CAPS)
def test_all_caps_survive_every_legacy_form(text):
    assert repair_text(text) == (text, "nfc")
    forms = {
        "tcvn3 (capital font)": (encode_as_tcvn3_mojibake(text), "tcvn3"),
        "tcvn3 (capital codes)": (encode_as_tcvn3_mojibake(text, capital_codes=True), "tcvn3"),
        "vni": (encode_as_vni_mojibake(text), "vni"),
    }
    for form, (legacy, encoding) in forms.items():
        assert repair_text(legacy) == (text, encoding), form


@pytest.mark.parametrize(
    "text",
    [
        "So 12–14 Hang Bai",
        "Cong ty ABC – chi nhanh",
        "“Ha Noi” 2024",
        "Nam…",
        "Cà Mau X–",
        "100 € / thang",
        "Sony™ Viet Nam",
        "• muc 1",
        "‘A’ va ‘B’",
    ],
)
def test_punctuation_that_tcvn3_capitals_share_is_left_alone_in_real_text(text):
    assert repair_text(text) == (text, "nfc" if not text.isascii() else "ascii")


@pytest.mark.parametrize(
    "text",
    [
        "Hµ NÉI",  # TCVN3 upper-cased by software: É is no longer the é of `Néi`
        "B\x81O H\x81\x81M",  # a TCVN 5712 capital's control character, and no decoding holds
        "abc\x11 def",
        "NguyÔn Søren",  # one word decodes, the other does not
    ],
)
def test_garbled_text_that_cannot_be_repaired_is_suspected_not_passed_as_valid(text):
    assert repair_text(text) == (text, "suspect")


def test_ambiguous_mojibake_is_left_unchanged_and_labelled():
    # `Cöa` is TCVN3 for Cửa and VNI for Cưa: both are Vietnamese, so no guess.
    assert repair_text("Cöa Nam") == ("Cöa Nam", "ambiguous")


def test_mojibake_that_spells_valid_vietnamese_cannot_be_told_apart():
    # VNI `Thò` (Thị) is also the word thò: valid text is never touched, by design.
    assert repair_text("Thò") == ("Thò", "nfc")


def test_column_repair_keeps_nulls_and_order():
    assert repair_text_values([None, "Hµ Néi", "abc"]) == ([None, "Hà Nội", "abc"], [None, "tcvn3", "ascii"])


# --- properties -------------------------------------------------------------------

_TONES = ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")


@lru_cache(maxsize=1)
def _valid_syllables() -> list[str]:
    """Every syllable the parts allow, tone on any vowel, kept when it is spelled right (~30k)."""
    found = set()
    for initial in ("",) + INITIALS:
        for nucleus in NUCLEI:
            for final in ("",) + FINALS:
                for tone in _TONES:
                    for at in range(len(nucleus) if tone else 1):
                        word = (
                            initial
                            + nucleus[:at]
                            + unicodedata.normalize("NFC", nucleus[at] + tone)
                            + nucleus[at + 1 :]
                            + final
                        )
                        if is_vietnamese_syllable(word):
                            found.add(word)
    return sorted(found)


VALID_SYLLABLES = _valid_syllables()


@st.composite
def vietnamese_words(draw):
    word = draw(st.sampled_from(VALID_SYLLABLES))
    case = draw(st.sampled_from(("lower", "title", "upper")))
    return word.upper() if case == "upper" else word.capitalize() if case == "title" else word


_words = st.one_of(vietnamese_words(), vietnamese_words(), st.sampled_from(["TNHH", "12", "A", "B2", "CP"]))
_ASCII_SEPARATORS = [" ", ", ", " - ", "\n", "/", ". ", " (", ") "]
# Punctuation that TCVN 5712 capital codes share with real text (dashes, quotes, ellipsis).
_UNICODE_SEPARATORS = [" – ", "… ", " “", "” ", "—", "–"]


def _joined(separators):
    return st.lists(st.tuples(_words, st.sampled_from(separators)), min_size=1, max_size=8).map(
        lambda pairs: "".join(word + separator for word, separator in pairs[:-1]) + pairs[-1][0]
    )


vietnamese_text = _joined(_ASCII_SEPARATORS + _UNICODE_SEPARATORS)
# what a legacy encoding can write: no Unicode punctuation
legacy_encodable_text = _joined(_ASCII_SEPARATORS)

_ENCODERS = {
    "tcvn3": encode_as_tcvn3_mojibake,
    "vni": encode_as_vni_mojibake,
    "tcvn3-capitals": lambda text: encode_as_tcvn3_mojibake(text, capital_codes=True),
}


@settings(max_examples=150, deadline=None)
@given(vietnamese_text)
def test_property_valid_nfc_vietnamese_never_changes(text):
    repaired, encoding = repair_text(text)
    assert repaired == text
    assert encoding in ("ascii", "nfc")


@settings(max_examples=100, deadline=None)
@given(vietnamese_text.map(str.upper))
def test_property_valid_all_caps_vietnamese_never_changes(text):
    repaired, encoding = repair_text(text)
    assert repaired == text and encoding in ("ascii", "nfc")


@settings(max_examples=100, deadline=None)
@given(legacy_encodable_text.map(str.upper), st.sampled_from(sorted(_ENCODERS)))
def test_property_all_caps_mojibake_is_repaired_exactly_or_reported(text, encoding):
    """Capitals in every legacy form (TCVN 5712 capital codes, VN3 codes in a capital font, VNI):
    the original comes back letter for letter (and case for case, but for the capital font, whose
    bytes carry no case: `D¶` is `DẢ` or `Dả`), or the value is left as it is with a label that
    says so; plain-looking text is left alone only when it is itself Vietnamese."""
    legacy = _ENCODERS[encoding](text)
    repaired, detected = repair_text(legacy)
    if repaired != legacy:
        assert detected == encoding.split("-")[0]
        assert repaired == text if encoding != "tcvn3" else repaired.casefold() == text.casefold()
    elif detected in ("ascii", "nfc"):
        assert legacy == text or all(
            is_vietnamese_syllable(w) for w in legacy.split() if not w.isascii() and w.isalpha()
        )


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from("\t\n\r")))
def test_property_ascii_never_changes(text):
    assert repair_text(text) == (text, "ascii")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127)))
def test_property_ascii_with_control_characters_is_unchanged_or_reported(text):
    """A TCVN 5712 capital's control character (0x01 Ú ... 0x17 Ỵ) is ASCII but never real text:
    such a value is decoded as TCVN3 or suspected, never passed on as plain ASCII."""
    repaired, encoding = repair_text(text)
    if encoding == "ascii":
        assert repaired == text and not (set(text) & TCVN3_CAPITAL_CONTROLS)
    else:
        assert set(text) & TCVN3_CAPITAL_CONTROLS and encoding in ("tcvn3", "suspect")
        assert encoding == "suspect" or repaired == decode_tcvn3_mojibake(text)


@settings(max_examples=100, deadline=None)
@given(vietnamese_text)
def test_property_nfd_comes_back_as_the_nfc_original(text):
    decomposed = unicodedata.normalize("NFD", text)
    expected = "ascii" if text.isascii() else "nfd" if decomposed != text else "nfc"
    assert repair_text(decomposed) == (text, expected)


@settings(max_examples=150, deadline=None)
@given(legacy_encodable_text, st.sampled_from(sorted(_ENCODERS)))
def test_property_mojibake_is_repaired_or_left_alone_never_garbled(text, encoding):
    legacy = _ENCODERS[encoding](text)
    repaired, detected = repair_text(legacy)
    if repaired == legacy:
        assert detected in ("ascii", "nfc", "ambiguous", "suspect")
    else:
        assert detected == encoding.split("-")[0]
        # VN3 has no upper-case toned letters: case may come back differently, letters may not.
        assert repaired == text if encoding == "vni" else repaired.casefold() == text.casefold()


def test_demo_style_names_are_mostly_repaired():
    """Over realistic names, the unavoidable misses (mojibake that is itself Vietnamese) stay rare."""
    import random

    family = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ")
    middle = ("Văn", "Thị", "Hữu", "Đức", "Ngọc", "Minh", "Thu", "Quang")
    given_names = ("An", "Bình", "Cường", "Dũng", "Hà", "Hạnh", "Hương", "Lan", "Quỳnh", "Thảo", "Yến", "Ánh")
    rng = random.Random(7)
    names = {f"{rng.choice(family)} {rng.choice(middle)} {rng.choice(given_names)}" for _ in range(600)}
    for encode, _encoding in ((encode_as_tcvn3_mojibake, "tcvn3"), (encode_as_vni_mojibake, "vni")):
        outcomes = [repair_text(encode(name)) for name in names]
        wrong = [(n, o) for n, o in zip(names, outcomes) if o[0] != n and o[0] != encode(n)]
        missed = [n for n, o in zip(names, outcomes) if o[0] == encode(n)]
        assert wrong == []
        assert len(missed) <= 0.05 * len(names), missed[:10]
