"""Legacy Vietnamese encodings: the spec's examples, full tables, round trips."""

from __future__ import annotations

import unicodedata

import pytest

from ts24_migrate.core.legacy.encodings import (
    TCVN3_CAPITAL_CONTROLS,
    TCVN3_CAPITALS_TO_UNICODE,
    TCVN3_TO_UNICODE,
    VIETNAMESE_LETTERS,
    VNI_TO_UNICODE,
    decode_tcvn3_mojibake,
    decode_vni_mojibake,
    encode_as_tcvn3_mojibake,
    encode_as_vni_mojibake,
)

# Sentences whose legacy forms are well known from documents of the time.
KNOWN = [
    ("Hà Nội", "Hµ Néi", "Haø Noäi"),
    (
        "Cộng hoà xã hội chủ nghĩa Việt Nam",
        "Céng hoµ x· héi chñ nghÜa ViÖt Nam",
        "Coäng hoaø xaõ hoäi chuû nghóa Vieät Nam",
    ),
    ("Độc lập - Tự do - Hạnh phúc", "§éc lËp - Tù do - H¹nh phóc", "Ñoäc laäp - Töï do - Haïnh phuùc"),
    ("Bảo hiểm xã hội Việt Nam", "B¶o hiÓm x· héi ViÖt Nam", "Baûo hieåm xaõ hoäi Vieät Nam"),
    ("Thừa Thiên Huế", "Thõa Thiªn HuÕ", "Thöøa Thieân Hueá"),
    ("Đà Nẵng", "§µ N½ng", "Ñaø Naüng"),
    ("Nguyễn Thị Ánh", "NguyÔn ThÞ ¸nh", "Nguyeãn Thò AÙnh"),
]


def test_the_spec_examples():
    assert encode_as_tcvn3_mojibake("Hà Nội") == "Hµ Néi"
    assert encode_as_vni_mojibake("Hà Nội") == "Haø Noäi"
    assert decode_tcvn3_mojibake("Hµ Néi") == "Hà Nội"
    assert decode_vni_mojibake("Haø Noäi") == "Hà Nội"


@pytest.mark.parametrize("unicode_text, tcvn3, vni", KNOWN)
def test_known_sentences_both_ways(unicode_text, tcvn3, vni):
    assert encode_as_tcvn3_mojibake(unicode_text) == tcvn3
    assert encode_as_vni_mojibake(unicode_text) == vni
    assert decode_tcvn3_mojibake(tcvn3) == unicode_text
    assert decode_vni_mojibake(vni) == unicode_text


def test_there_are_134_letters_all_nfc_and_distinct():
    assert len(VIETNAMESE_LETTERS) == len(set(VIETNAMESE_LETTERS)) == 134
    assert all(unicodedata.is_normalized("NFC", c) and len(c) == 1 and not c.isascii() for c in VIETNAMESE_LETTERS)
    assert sum(c.islower() for c in VIETNAMESE_LETTERS) == 67


def test_tcvn3_table_is_single_byte_in_the_documented_ranges():
    codes = {ch.encode("cp1252")[0]: letter for ch, letter in TCVN3_TO_UNICODE.items()}
    assert len(codes) == 67 + 7
    capitals = {letter for code, letter in codes.items() if 0xA1 <= code <= 0xA7}
    assert capitals == set("ĂÂÊÔƠƯĐ")
    assert all(0xA8 <= code <= 0xFE and letter.islower() for code, letter in codes.items() if code > 0xA7)


def test_vni_round_trips_all_134_letters():
    for letter in VIETNAMESE_LETTERS:
        encoded = encode_as_vni_mojibake(letter)
        assert encoded != letter or letter in "ìíÌÍ", letter
        assert all(ord(c) < 256 for c in encoded), letter  # Windows-1252 characters from Latin-1
        assert 1 <= len(encoded) <= 2
        assert decode_vni_mojibake(encoded) == letter


def test_vni_sequences_are_unambiguous():
    encoded = [encode_as_vni_mojibake(c) for c in VIETNAMESE_LETTERS]
    assert len(set(encoded)) == 134
    assert len(VNI_TO_UNICODE) == 130  # ì í Ì Í are the same characters in VNI and Unicode


def test_tcvn3_round_trips_the_74_letters_it_has():
    distinct = [c for c in VIETNAMESE_LETTERS if c.islower() or c in "ĂÂÊÔƠƯĐ"]
    assert len(distinct) == 74
    for letter in distinct:
        assert decode_tcvn3_mojibake(encode_as_tcvn3_mojibake(letter)) == letter


def test_tcvn3_upper_case_toned_letters_share_lower_case_codes_and_case_comes_back_from_context():
    for letter in VIETNAMESE_LETTERS:
        if letter.isupper() and letter not in "ĂÂÊÔƠƯĐ":
            assert encode_as_tcvn3_mojibake(letter) == encode_as_tcvn3_mojibake(letter.lower())
            # alone, case is lost (documented); inside an upper-case word it is restored
            assert decode_tcvn3_mojibake(encode_as_tcvn3_mojibake(letter)) == letter.lower()
        word = f"NG{letter.upper()}N"
        assert decode_tcvn3_mojibake(encode_as_tcvn3_mojibake(word)) == word
        word = f"ng{letter.lower()}n"
        assert decode_tcvn3_mojibake(encode_as_tcvn3_mojibake(word)) == word


@pytest.mark.parametrize(
    "text", ["NGUYỄN VĂN ỨNG", "Nguyễn Thị Ánh", "Ấn Độ", "hồ sơ đã tiếp nhận", "Số 12 đường Láng, quận Đống Đa"]
)
def test_tcvn3_case_restoration(text):
    assert decode_tcvn3_mojibake(encode_as_tcvn3_mojibake(text)) == text


def test_encoding_decomposed_input_equals_encoding_composed():
    text = "Nguyễn Thị Ánh, Hà Nội"
    nfd = unicodedata.normalize("NFD", text)
    assert encode_as_tcvn3_mojibake(nfd) == encode_as_tcvn3_mojibake(text)
    assert encode_as_vni_mojibake(nfd) == encode_as_vni_mojibake(text)


def test_characters_without_legacy_code_are_refused_or_kept_on_request():
    with pytest.raises(ValueError, match="no TCVN3 encoding"):
        encode_as_tcvn3_mojibake("Müller")
    with pytest.raises(ValueError, match="no VNI encoding"):
        encode_as_vni_mojibake("€")
    assert encode_as_vni_mojibake("Müller Hà", errors="keep") == "Müller Haø"


def test_ascii_is_the_same_in_every_encoding():
    text = "".join(chr(i) for i in range(32, 127))
    for function in (encode_as_tcvn3_mojibake, encode_as_vni_mojibake, decode_tcvn3_mojibake, decode_vni_mojibake):
        assert function(text) == text


# --- TCVN 5712 capitals -------------------------------------------------------------


def _vn1_byte(char: str) -> int:
    """The byte behind a character of TCVN3_CAPITALS_TO_UNICODE (Windows-1252, else a control)."""
    try:
        return char.encode("cp1252")[0]
    except UnicodeEncodeError:
        return ord(char)


def test_tcvn3_capital_table_has_the_60_upper_case_toned_letters_at_positions_vn3_leaves_free():
    upper_toned = {c for c in VIETNAMESE_LETTERS if c.isupper() and c not in "ĂÂÊÔƠƯĐ"}
    assert len(upper_toned) == 60
    assert set(TCVN3_CAPITALS_TO_UNICODE.values()) == upper_toned
    by_byte: dict[int, set[str]] = {}
    for char, letter in TCVN3_CAPITALS_TO_UNICODE.items():
        by_byte.setdefault(_vn1_byte(char), set()).add(letter)
    assert len(by_byte) == 60 and all(len(letters) == 1 for letters in by_byte.values())
    vn3_bytes = {ch.encode("cp1252")[0] for ch in TCVN3_TO_UNICODE}
    assert not set(by_byte) & vn3_bytes
    # 0x80-0x9F, 12 C0 positions, 16 in 0xA0-0xFF
    assert sum(0x80 <= b <= 0x9F for b in by_byte) == 32 and sum(b < 0x20 for b in by_byte) == 12
    assert TCVN3_CAPITAL_CONTROLS == {c for c in TCVN3_CAPITALS_TO_UNICODE if ord(c) < 0x20 or 0x80 <= ord(c) <= 0x9F}


def test_tcvn3_capital_table_agrees_with_the_systems_iconv():
    """glibc's TCVN5712-1 converter is an independent implementation of the same standard."""
    import shutil
    import subprocess

    if shutil.which("iconv") is None:
        pytest.skip("no iconv on this machine")
    probe = subprocess.run(["iconv", "-f", "TCVN5712-1", "-t", "UTF-8"], input=b"\x80", capture_output=True)
    if probe.returncode != 0:
        pytest.skip("this iconv has no TCVN5712-1")
    for char, letter in TCVN3_CAPITALS_TO_UNICODE.items():
        out = subprocess.run(
            ["iconv", "-f", "TCVN5712-1", "-t", "UTF-8"],
            input=bytes([_vn1_byte(char)]),
            capture_output=True,
            check=True,
        ).stdout.decode()
        assert unicodedata.normalize("NFC", out) == letter, (hex(_vn1_byte(char)), out, letter)
    for char, letter in TCVN3_TO_UNICODE.items():  # and VN3, the table of the lower-case letters
        out = subprocess.run(
            ["iconv", "-f", "TCVN5712-1", "-t", "UTF-8"], input=char.encode("cp1252"), capture_output=True, check=True
        ).stdout.decode()
        assert unicodedata.normalize("NFC", out) == letter


@pytest.mark.parametrize(
    "text, legacy",
    [
        ("HÀ NỘI", "H€ N—I"),
        ("BẢO HIỂM XÃ HỘI", "B\x81O HIÍM X‚ H—I"),
        ("ĐỒNG THÁP", "§ÛNG THƒP"),
        ("CÔNG TY TNHH", "C¤NG TY TNHH"),
        ("NGUYỄN VĂN ĐỨC", "NGUYÙN V¡N §\x11C"),
        ("Ý KIẾN", "\x16 KIÚN"),
    ],
)
def test_tcvn3_capital_codes_both_ways(text, legacy):
    assert encode_as_tcvn3_mojibake(text, capital_codes=True) == legacy
    assert decode_tcvn3_mojibake(legacy) == text


def test_tcvn3_capital_punctuation_decodes_only_next_to_a_letter():
    assert decode_tcvn3_mojibake("N—I 12–14 – x") == "NỘI 12–14 – x"


def test_every_upper_case_letter_round_trips_through_capital_codes():
    for letter in VIETNAMESE_LETTERS:
        assert (
            decode_tcvn3_mojibake(encode_as_tcvn3_mojibake(f"NG{letter.upper()}N", capital_codes=True))
            == f"NG{letter.upper()}N"
        )
