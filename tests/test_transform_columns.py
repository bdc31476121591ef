"""The column-wise (Arrow) cleaning gives what the per-value path gives, on any text."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st
from test_transform_text_repair import _ENCODERS, legacy_encodable_text, vietnamese_text

from transform.columns import clean_text_column, clean_text_values, normalize_code_column
from transform.normalize import normalize_codes
from ts24_migrate.core.legacy.encodings import TCVN3_CAPITAL_CONTROLS

# Legacy forms of Vietnamese: TCVN3 (lower-case and capital codes), VNI, decomposed.
_legacy_text = st.builds(
    lambda text, encode: encode(text), legacy_encodable_text, st.sampled_from(list(_ENCODERS.values()))
)
_nfd_text = vietnamese_text.map(lambda text: unicodedata.normalize("NFD", text))
# Characters at the edges of what the Arrow tests let pass: whitespace of every kind, C0/C1
# controls (TCVN3 capitals among them), Windows-1252's own letters of the Latin blocks,
# combining marks, no-break space, letters outside the Latin blocks.
_edge_chars = st.sampled_from(
    sorted(TCVN3_CAPITAL_CONTROLS)
    + list(" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2003\u3000")
    + list("ŒœŠšŸŽžƒ€…–—“”\u0300\u0323\u00ad")
    + list("ơưđộÆøßĳǅ")
    + list("ΩЖ北ﬁ")
)
_mixed = st.lists(st.one_of(_edge_chars, st.characters(max_codepoint=0x2FF), st.characters()), max_size=12).map("".join)
# short strings of those next to a few letters: where a too-wide test would show
_tricky = st.text(st.one_of(_edge_chars, st.sampled_from("aAđÂ ")), max_size=5)
_any_text = st.one_of(st.text(), _mixed, _tricky, vietnamese_text, _legacy_text, _nfd_text)
_padded = st.builds(
    lambda pre, text, post: pre + text + post,
    st.sampled_from(["", " ", "  ", "\t", "\xa0"]),
    _any_text,
    st.sampled_from(["", " ", "\n", " \t ", "\u3000"]),
)
_column = st.lists(st.one_of(st.none(), st.just(""), _any_text, _padded), max_size=20)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(_tricky, _mixed, _padded))
def test_property_vectorised_text_cleaning_agrees_on_each_value(value):
    assert clean_text_column([value])[:4] == clean_text_values([value])


@settings(max_examples=100, deadline=None)
@given(_column)
def test_property_vectorised_text_cleaning_agrees_with_the_scalar_path(values):
    repaired, detected, blanks, trimmed, examined = clean_text_column(values)
    assert (repaired, detected, blanks, trimmed) == clean_text_values(values)
    # what the per-value path did not examine it left as it was, and plain or composed
    skipped = set(range(len(values))) - set(examined)
    assert all(repaired[i] is values[i] and detected[i] in ("ascii", "nfc", None) for i in skipped)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), _any_text, _padded, st.from_regex(r"\s*[A-Za-z0-9-]{0,8}\s*", fullmatch=True)), max_size=30
    ),
    st.sampled_from(["upper", "lower", "keep"]),
)
def test_property_vectorised_codes_agree_with_the_scalar_path(values, case):
    assert normalize_code_column(values, case=case) == normalize_codes(values, case=case)


def test_columns_arrow_cannot_hold_take_the_scalar_path_whole():
    # bytes (SQLite text that is not UTF-8), integers in a code column, a lone surrogate
    for values in ([b"H\xb5 N\xe9i", "Hà Nội", None], [12, "ab ", None], ["\ud800x", "ok"]):
        repaired, detected, blanks, trimmed, examined = clean_text_column(values)
        assert (repaired, detected, blanks, trimmed) == clean_text_values(values)
        assert examined == list(range(len(values)))
    assert normalize_code_column([12, "ab ", None]) == (["12", "AB", None], [1], [])


def test_plain_values_skip_the_per_value_path_and_others_do_not():
    values = ["Hà Nội", "ABC 12", "Hµ Néi", " x", "a  b", "Søren", "Dvořák", None, "", "Œuvre đường"]
    repaired, detected, _, _, examined = clean_text_column(values)
    # Søren is Windows-1252 only (could be legacy bytes): looked at; Dvořák and Œuvre đường cannot be
    assert examined == [2, 3, 4, 5, 8]
    assert detected == ["nfc", "ascii", "tcvn3", "ascii", "ascii", "nfc", "nfc", None, None, "nfc"]
    assert repaired[2] == "Hà Nội" and repaired[8] is None


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(["07/2024", "7-2024", "13/2024", "2024", " 07/24 "]),
            st.integers(1990, 2030),
            st.text(max_size=6),
        ),
        max_size=20,
    )
)
def test_property_parsing_once_per_distinct_text_is_parsing_each_value(values):
    from datetime import date

    from transform.columns import parse_distinct
    from transform.dates import parse_period_date

    def parse(text):
        return parse_period_date(text, reference_date=date(2025, 7, 1))

    assert parse_distinct(values, parse) == [None if v is None else parse(str(v)) for v in values]
